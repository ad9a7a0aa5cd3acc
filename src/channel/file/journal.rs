//! The take journal's writer and reader (format in `format::journal`).
//!
//! Why it exists: with staged block writes, a take commit's record waits in memory until the
//! next group write. A take commit has always returned without waiting for a sync (at-least-once
//! if the machine fails), but its record used to be in the kernel when it returned, so a crash
//! of the process alone never brought taken events back. The journal keeps that promise: the
//! record is also appended here (one buffered write, never synced) before the commit returns,
//! and recovery applies every journal entry the log itself does not reach.
//!
//! Invariants:
//! - Two files, `take-journal-0.log` and `take-journal-1.log`, in the checkpoint directory; one
//!   is current. A checkpoint, after its flush made every staged record durable in the log,
//!   empties the other file and makes it current. So an entry is dropped only at the second
//!   checkpoint after it was written, when its record is certainly durable in the log.
//! - An entry is applied at recovery only if its position is at or past the end of the
//!   recovered log: a record the log holds was already replayed, and applying a take twice
//!   would subtract its bytes twice.
//! - Space is reserved ahead (`JOURNAL_STEP`); when that fails for lack of space the caller
//!   writes its staged records at once instead, so a full disk still drains.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::format::journal::{self, JournalEntry, JOURNAL_HEADER_LEN};
use crate::io::{VFile, Vfs};

/// How much journal space is reserved at a time.
const JOURNAL_STEP: u64 = 1 << 20;

/// The journal files of a channel whose checkpoints live in `dir`.
pub(crate) fn paths(dir: &Path) -> [PathBuf; 2] {
    [
        dir.join("take-journal-0.log"),
        dir.join("take-journal-1.log"),
    ]
}

/// Why an append did not happen.
#[derive(Debug)]
pub(crate) enum AppendError {
    /// No space could be reserved (ENOSPC): nothing was written.
    Full,
    /// The write failed: the channel must be poisoned.
    Io(io::Error),
}

/// The writer, behind the log lock.
#[derive(Debug)]
pub(crate) struct TakeJournal {
    files: [(PathBuf, Arc<dyn VFile>); 2],
    current: usize,
    write_off: u64,
    alloc_end: u64,
    buf: Vec<u8>,
}

impl TakeJournal {
    /// Opens both files, emptied (recovery has read them and its checkpoint covers them).
    pub(crate) fn create(fs: &Arc<dyn Vfs>, dir: &Path) -> io::Result<TakeJournal> {
        let [p0, p1] = paths(dir);
        let f0 = fs.open(&p0, true)?;
        let f1 = fs.open(&p1, true)?;
        let mut j = TakeJournal {
            files: [(p0, f0), (p1, f1)],
            current: 0,
            write_off: 0,
            alloc_end: 0,
            buf: Vec::new(),
        };
        j.reset(1)?;
        j.reset(0)?;
        Ok(j)
    }

    /// Empties file `i` (a header and nothing else) and makes it current.
    fn reset(&mut self, i: usize) -> io::Result<()> {
        let file = &self.files[i].1;
        file.set_len(0)?;
        file.write_at(&journal::encode_header(), 0)?;
        self.current = i;
        self.write_off = JOURNAL_HEADER_LEN as u64;
        self.alloc_end = JOURNAL_HEADER_LEN as u64;
        Ok(())
    }

    /// The current file's path (for error messages).
    pub(crate) fn path(&self) -> &Path {
        &self.files[self.current].0
    }

    /// Appends the take commit `record`, which goes at `offset` of `segment` in the log.
    pub(crate) fn append(
        &mut self,
        segment: u64,
        offset: u64,
        record: &[u8],
    ) -> Result<(), AppendError> {
        self.buf.clear();
        journal::encode_entry(segment, offset, record, &mut self.buf);
        let len = self.buf.len() as u64;
        let file = &self.files[self.current].1;
        if self.write_off + len > self.alloc_end {
            let want = (self.write_off + len - self.alloc_end).max(JOURNAL_STEP);
            match file.allocate(self.alloc_end, want) {
                Ok(()) => self.alloc_end += want,
                Err(e) if e.raw_os_error() == Some(28) => return Err(AppendError::Full),
                Err(e) => return Err(AppendError::Io(e)),
            }
        }
        file.write_at(&self.buf, self.write_off)
            .map_err(AppendError::Io)?;
        self.write_off += len;
        Ok(())
    }

    /// Switches to the other file, emptying it: call only after a flush made every record
    /// staged so far durable in the log. A failure leaves the current file in use (it only
    /// grows) and is returned for logging.
    pub(crate) fn rotate(&mut self) -> io::Result<()> {
        let (current, off, alloc) = (self.current, self.write_off, self.alloc_end);
        self.reset(1 - current).inspect_err(|_| {
            self.current = current;
            self.write_off = off;
            self.alloc_end = alloc;
        })
    }
}

/// Every entry in the journal files of `dir` (missing files have none; a file that is not a
/// journal is reported and skipped: recovery must not fail over a side file).
pub(crate) fn read(fs: &Arc<dyn Vfs>, channel: &str, dir: &Path) -> Vec<JournalEntry> {
    let mut out = vec![];
    for path in paths(dir) {
        let file = match fs.open(&path, false) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => {
                tracing::warn!(channel, file = %path.display(), error = %e, "cannot open the take journal; takes committed just before a crash may be delivered again");
                continue;
            }
        };
        let decoded = file
            .map()
            .map_err(|e| e.to_string())
            .and_then(|m| journal::decode((*m).as_ref()).map_err(|e| e.to_string()));
        match decoded {
            Ok(entries) => out.extend(entries),
            Err(e) => {
                tracing::warn!(channel, file = %path.display(), reason = %e, "the take journal does not decode; takes committed just before a crash may be delivered again");
            }
        }
    }
    out
}
