//! One tailed file: its identity, its committed position, and the reading of whole lines
//! from it.
//!
//! Invariants: `pos` is the offset of the first byte whose line has not been committed, and
//! moves only through [`TailFile::commit`], after the channel commit; a batch never holds a
//! fragment of a line (a line without its newline is held until it is complete, or put whole
//! by [`TailFile::flush_partial`] once the file is idle); memory per file is bounded by one
//! read chunk plus `maxLineLength` (a longer line is cut, and the rest of it is skipped
//! without being kept).

use std::fs::File;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::Instant;

use bytes::{Bytes, BytesMut};

use super::position::{Fingerprint, Identity, FINGERPRINT_BYTES};

/// Bytes asked of the kernel per read.
const CHUNK: usize = 64 * 1024;

/// A file as the filesystem names it while it exists: device and inode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileKey {
    pub dev: u64,
    pub ino: u64,
}

impl FileKey {
    pub fn of(meta: &std::fs::Metadata) -> FileKey {
        FileKey {
            dev: meta.dev(),
            ino: meta.ino(),
        }
    }
}

/// One line read but not committed: where it starts in the file and its body.
pub struct Line {
    pub offset: u64,
    pub body: Bytes,
}

/// Lines read from one file for one transaction, and where the file's position goes once
/// they are committed.
pub struct Batch {
    pub lines: Vec<Line>,
    pub end: u64,
    /// Lines cut to `maxLineLength` in this batch (for the warning).
    pub truncated: u64,
}

/// Where the long line being skipped started and the part of it that is kept.
struct LongLine {
    offset: u64,
    kept: Bytes,
}

/// See the module docs.
pub struct TailFile {
    pub key: FileKey,
    pub path: PathBuf,
    /// Index of the file group whose pattern matched it.
    pub group: usize,
    file: Option<File>,
    pub pos: u64,
    pub fingerprint: Fingerprint,
    /// Bytes of the file from `buf_start` on, read and not yet handed out in a batch.
    buf: BytesMut,
    buf_start: u64,
    long: Option<LongLine>,
    /// Last time the file was seen to grow (or was opened).
    pub last_growth: Instant,
    /// Whether the latest directory scan found it under a matching name.
    pub matched: bool,
    /// Whether Flume saved this position (it may fall inside a line).
    pub from_flume: bool,
    /// The offset right after a last line put without its newline (idle): a newline found
    /// there ends that line, already delivered, rather than an empty one.
    flushed_at: Option<u64>,
    /// The last read failure logged for this file (see `read_error`).
    pub read_failure: Option<String>,
}

impl TailFile {
    /// `file` (already open, `key` from its metadata) at `pos`.
    pub fn new(key: FileKey, path: PathBuf, group: usize, file: File, pos: u64) -> TailFile {
        let mut t = TailFile {
            key,
            path,
            group,
            file: Some(file),
            pos,
            fingerprint: Fingerprint::default(),
            buf: BytesMut::new(),
            buf_start: pos,
            long: None,
            last_growth: Instant::now(),
            matched: true,
            from_flume: false,
            flushed_at: None,
            read_failure: None,
        };
        t.fingerprint = t.read_fingerprint(FINGERPRINT_BYTES).unwrap_or_default();
        t
    }

    pub fn is_open(&self) -> bool {
        self.file.is_some()
    }

    pub fn identity(&self) -> Identity {
        Identity {
            dev: self.key.dev,
            fingerprint: self.fingerprint,
        }
    }

    /// Reopens a closed file (found again at `path` with the same device and inode).
    pub fn reopen(&mut self, file: File) {
        self.file = Some(file);
        self.last_growth = Instant::now();
        self.reset_buffer();
    }

    /// Closes the file; its position stays.
    pub fn close(&mut self) {
        self.file = None;
        self.buf = BytesMut::new();
        self.buf_start = self.pos;
        self.long = None;
    }

    fn reset_buffer(&mut self) {
        self.buf.clear();
        self.buf_start = self.pos;
        self.long = None;
    }

    /// The file's size now; `None` once it is closed.
    pub fn size(&self) -> std::io::Result<Option<(u64, u64)>> {
        match &self.file {
            None => Ok(None),
            Some(f) => {
                let m = f.metadata()?;
                Ok(Some((m.len(), m.nlink())))
            }
        }
    }

    /// CRC-32 of the first `min(size, max)` bytes.
    pub fn read_fingerprint(&self, max: u32) -> std::io::Result<Fingerprint> {
        let Some(f) = &self.file else {
            return Ok(self.fingerprint);
        };
        fingerprint_of(f, max)
    }

    /// Whether the file's first bytes are still the ones fingerprinted (false after a
    /// copy-truncate that was followed by new writes, or another file under the same inode).
    pub fn same_content(&self) -> std::io::Result<bool> {
        let Some(f) = &self.file else { return Ok(true) };
        if self.fingerprint.len == 0 {
            return Ok(true);
        }
        let now = fingerprint_of(f, self.fingerprint.len)?;
        Ok(now == self.fingerprint)
    }

    /// Checks, after reading lines that end at `end`, that the file still holds what was
    /// read: it is not shorter than `end` and its first bytes are the fingerprinted ones (a
    /// copy-truncate followed by new writes between two looks changes them). Extends the
    /// fingerprint to cover at least min(`end`, 1 KiB), so a saved position always comes with
    /// a fingerprint of the bytes before it. False: the lines read must not be put.
    pub fn still_holds(&mut self, end: u64) -> std::io::Result<bool> {
        let Some(f) = &self.file else { return Ok(true) };
        if f.metadata()?.len() < end || !self.same_content()? {
            return Ok(false);
        }
        if u64::from(self.fingerprint.len) < end.min(u64::from(FINGERPRINT_BYTES)) {
            self.fingerprint = fingerprint_of(f, FINGERPRINT_BYTES)?;
        }
        Ok(true)
    }

    /// Extends a fingerprint taken while the file was shorter than [`FINGERPRINT_BYTES`], once
    /// the bytes it covered are known to be unchanged (the caller checked); true when it grew.
    pub fn grow_fingerprint(&mut self, size: u64) -> std::io::Result<bool> {
        if self.fingerprint.len < FINGERPRINT_BYTES && size > u64::from(self.fingerprint.len) {
            self.fingerprint = self.read_fingerprint(FINGERPRINT_BYTES)?;
            return Ok(true);
        }
        Ok(false)
    }

    /// The file's content is no longer what was read (it shrank, or its first bytes
    /// changed): read it again from its start.
    pub fn restart_from_zero(&mut self) -> std::io::Result<()> {
        self.pos = 0;
        self.flushed_at = None;
        self.reset_buffer();
        self.fingerprint = self.read_fingerprint(FINGERPRINT_BYTES)?;
        Ok(())
    }

    /// Moves a position that may fall inside a line (one Flume saved) back to the start of
    /// that line, so the line is delivered whole rather than as its tail. Looks back at most
    /// `limit` bytes; a line longer than that is resumed at its next newline instead.
    pub fn align_to_line_start(&mut self, limit: usize) -> std::io::Result<()> {
        let Some(f) = &self.file else { return Ok(()) };
        if self.pos == 0 {
            return Ok(());
        }
        let back = (self.pos).min(limit as u64 + 1);
        let mut tail = vec![0u8; back as usize];
        let start = self.pos - back;
        read_exact_at(f, &mut tail, start)?;
        if tail.last() == Some(&b'\n') {
            return Ok(());
        }
        let new_pos = match tail.iter().rposition(|&b| b == b'\n') {
            Some(i) => start + i as u64 + 1,
            None if start == 0 => 0,
            None => {
                // Too long to find its start: skip to the next line instead.
                let mut probe = self.pos;
                let mut chunk = vec![0u8; CHUNK];
                loop {
                    let n = f.read_at(&mut chunk, probe)?;
                    if n == 0 {
                        break probe;
                    }
                    if let Some(i) = chunk[..n].iter().position(|&b| b == b'\n') {
                        break probe + i as u64 + 1;
                    }
                    probe += n as u64;
                }
            }
        };
        self.pos = new_pos;
        self.reset_buffer();
        Ok(())
    }

    /// Reads up to `max` whole lines from the committed position on (each without its `\n`
    /// or `\r\n`). A line longer than `max_line` is cut to its first `max_line` bytes; the
    /// rest of it is read past, not kept. Returns `None` when no whole line is available.
    pub fn read_batch(&mut self, max: usize, max_line: usize) -> std::io::Result<Option<Batch>> {
        let Some(f) = &self.file else { return Ok(None) };
        let mut lines = Vec::new();
        let mut truncated = 0;
        // Bytes of `buf` already known to hold no newline.
        let mut scanned = 0usize;
        while lines.len() < max {
            if let Some(i) = memchr(&self.buf[scanned..]) {
                let nl = scanned + i;
                let chunk = self.buf.split_to(nl + 1).freeze();
                let offset = self.buf_start;
                self.buf_start += (nl + 1) as u64;
                scanned = 0;
                if nl == 0 && self.flushed_at.take() == Some(offset) {
                    continue;
                }
                if let Some(long) = self.long.take() {
                    // The end of a long line: what was kept is its body.
                    lines.push(Line {
                        offset: long.offset,
                        body: long.kept,
                    });
                    truncated += 1;
                    continue;
                }
                let mut end = nl;
                if end > 0 && chunk[end - 1] == b'\r' {
                    end -= 1;
                }
                if end > max_line {
                    end = max_line;
                    truncated += 1;
                }
                lines.push(Line {
                    offset,
                    body: chunk.slice(..end),
                });
                continue;
            }
            scanned = self.buf.len();
            if self.long.is_none() && self.buf.len() > max_line {
                // No newline within max_line bytes: keep the head, skip the rest as it comes.
                let kept = self.buf.split_to(max_line).freeze();
                self.long = Some(LongLine {
                    offset: self.buf_start,
                    kept,
                });
                self.buf_start += max_line as u64;
            }
            if self.long.is_some() {
                // Inside a long line: nothing read is kept.
                self.buf_start += self.buf.len() as u64;
                self.buf.clear();
                scanned = 0;
            }
            let at = self.buf_start + self.buf.len() as u64;
            let old = self.buf.len();
            self.buf.resize(old + CHUNK, 0);
            let n = match f.read_at(&mut self.buf[old..], at) {
                Ok(n) => n,
                Err(e) => {
                    self.buf.truncate(old);
                    return Err(e);
                }
            };
            self.buf.truncate(old + n);
            if n == 0 {
                break;
            }
            self.last_growth = Instant::now();
        }
        if lines.is_empty() {
            return Ok(None);
        }
        Ok(Some(Batch {
            lines,
            end: self.pending_start(),
            truncated,
        }))
    }

    /// Where the line not yet read whole starts.
    fn pending_start(&self) -> u64 {
        match &self.long {
            Some(long) => long.offset,
            None => self.buf_start,
        }
    }

    /// The batch ending at `end` is committed.
    pub fn commit(&mut self, end: u64) {
        self.pos = end;
    }

    /// The batch read was not committed: forget what was read after `pos`.
    pub fn abort(&mut self) {
        self.reset_buffer();
    }

    /// The file went idle with a last line that has no newline: returns it (cut to
    /// `max_line`) so it is put as it is, as Flume does. Call after [`read_batch`] found no
    /// whole line, so everything up to the end of the file has been read.
    ///
    /// [`read_batch`]: TailFile::read_batch
    pub fn flush_partial(&mut self) -> Option<Batch> {
        if self.file.is_none() || self.pending_start() != self.pos {
            return None;
        }
        let end = self.buf_start + self.buf.len() as u64;
        if end <= self.pos {
            return None;
        }
        let (body, truncated) = match self.long.take() {
            Some(long) => (long.kept, 1),
            None => (self.buf.split().freeze(), 0),
        };
        let offset = self.pos;
        self.buf_start = end;
        self.buf = BytesMut::new();
        self.flushed_at = Some(end);
        Some(Batch {
            lines: vec![Line { offset, body }],
            end,
            truncated,
        })
    }

    /// Drops the read buffer's memory when nothing is pending in it (an idle file keeps no
    /// chunk).
    pub fn shrink(&mut self) {
        if self.buf.is_empty() {
            self.buf = BytesMut::new();
        }
    }
}

fn memchr(b: &[u8]) -> Option<usize> {
    memchr::memchr(b'\n', b)
}

fn fingerprint_of(f: &File, max: u32) -> std::io::Result<Fingerprint> {
    let mut head = vec![0u8; max as usize];
    let mut got = 0;
    while got < head.len() {
        let n = f.read_at(&mut head[got..], got as u64)?;
        if n == 0 {
            break;
        }
        got += n;
    }
    Ok(Fingerprint {
        len: got as u32,
        crc: crc32fast::hash(&head[..got]),
    })
}

fn read_exact_at(f: &File, buf: &mut [u8], at: u64) -> std::io::Result<()> {
    f.read_exact_at(buf, at)
}

/// Opens `path` for reading, with its key.
pub fn open(path: &Path) -> std::io::Result<(File, FileKey, u64)> {
    let f = File::open(path)?;
    let m = f.metadata()?;
    Ok((f, FileKey::of(&m), m.len()))
}
