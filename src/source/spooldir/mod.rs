//! The `spooldir` source (Flume's SpoolDirectorySource): reads the complete files dropped
//! into a directory, one at a time, turns them into events (a line each, or the file as a
//! blob), and once every event of a file is committed renames it to its name plus
//! `fileSuffix` (or deletes it, `deletePolicy = immediate`).
//!
//! Invariants:
//! - **Nothing committed is lost, nothing is marked done early.** Events go through
//!   [`put_all_backoff`] in batches of `batchSize`; after each commit the tracker
//!   ([`tracker`], docs/FORMAT.md) records the byte offset reached, atomically. A file is
//!   renamed (or deleted) only after its last batch is committed. A kill at any point
//!   resumes from the tracker: at most the batch in flight is delivered twice, and a file
//!   whose events were all committed before the kill is renamed without being read again.
//! - **Spooling assumptions violated stop the source, loudly** (as Flume's does): a file
//!   that changes after it was picked up (size, modification time, or another file under its
//!   name), or whose completed name already exists, is logged as an ERROR naming the file and
//!   why, and the source reads nothing more until the agent restarts. So is a malformed byte
//!   under `decodeErrorPolicy = FAIL` (the events before it are committed first), and a
//!   tracker that cannot be written.
//! - **One bad file does not stop the others:** a file that cannot be opened or read, or
//!   that vanishes while being read, is logged and skipped (until it changes), and the source
//!   goes on.
//!
//! The directory is polled every `pollDelay` while it holds nothing to read; a full channel
//! is retried with a backoff growing to `maxBackoff`. Reading is bounded (see
//! [`deserializer`]).

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{ErrorKind, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::channel::ChannelError;
use crate::event::Event;
use crate::metrics::{ComponentCounters, Counter};
use crate::route::ChannelProcessor;
use crate::source::{put_all_backoff, PutError, Source, SourceContext, SourceError};
use crate::stop::sleep_unless_stopped;

pub mod charset;
pub mod config;
pub mod deserializer;
pub mod select;
pub mod tracker;

pub use config::{ConsumeOrder, DeletePolicy, Deserializer, SpoolDirConfig, TYPE};

use charset::Charset;
use deserializer::{BlobReader, Body, LineReader, ReadError};
use select::{Candidate, SkipMark, Xorshift};
use tracker::{Identity, Tracker, TrackerError, TrackerFile, VERSION};

/// Why the source stops (each is logged once, as an ERROR, before the source ends).
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    /// The file changed after it was picked up.
    #[error(
        "file {file} changed after it was picked up: {what}. Files must be complete when they \
         are moved into the spool directory and never written again; move it out (and remove \
         the tracker {tracker} if it names it), then restart the agent"
    )]
    Changed {
        file: PathBuf,
        what: String,
        tracker: PathBuf,
    },
    /// The name a file would be renamed to exists.
    #[error(
        "file {file} cannot be marked done: {completed} already exists (a file name was used \
         twice in the spool directory). Rename or move one of them, then restart the agent"
    )]
    CompletedExists { file: PathBuf, completed: PathBuf },
    /// Malformed input under `decodeErrorPolicy = FAIL`.
    #[error(
        "file {file}: the bytes at offset {offset} are not valid {charset:?} \
         (decodeErrorPolicy = FAIL); the events before them were delivered. Fix the file, or \
         set decodeErrorPolicy to REPLACE or IGNORE, then restart the agent"
    )]
    Malformed {
        file: PathBuf,
        offset: u64,
        charset: Charset,
    },
    /// Renaming or deleting a finished file failed.
    #[error("cannot {what} {file}: {source}; fix the cause, then restart the agent")]
    Finish {
        what: &'static str,
        file: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Tracker(#[from] TrackerError),
    /// A channel refused the events for a reason retrying cannot fix.
    #[error("a channel refused the events of {file}: {source}")]
    Channel { file: PathBuf, source: ChannelError },
}

/// See the module docs.
pub struct SpoolDirSource {
    name: String,
    channels: Arc<ChannelProcessor>,
    counters: Arc<ComponentCounters>,
    cfg: SpoolDirConfig,
    /// `spoolDir`, absolute (as Java's `getAbsolutePath`: links are not resolved).
    dir: PathBuf,
    tracker_dir: PathBuf,
    tracker: TrackerFile,
    /// The tracker found at start: a file to finish first.
    resume: Option<Tracker>,
    skipped: HashMap<PathBuf, SkipMark>,
    /// Listing `dir` fails (logged once until it works again, not at every poll).
    list_failing: bool,
    rng: Xorshift,
}

/// The file being read.
struct Current {
    path: PathBuf,
    /// A second descriptor of the file, for `fstat` between batches.
    file: File,
    reader: Reader,
    tracker: Tracker,
    headers: BTreeMap<String, String>,
    events: u64,
}

enum Reader {
    Line(LineReader<File>),
    Blob(BlobReader<File>),
}

impl Reader {
    fn next_body(&mut self) -> Result<Option<Body>, ReadError> {
        match self {
            Reader::Line(r) => r.next_body(),
            Reader::Blob(r) => r.next_body(),
        }
    }
}

/// How one batch went.
enum Step {
    /// More to read.
    More,
    /// Every event of the file is committed.
    Done,
    /// The file was given up (logged); go on with others.
    Skip,
    /// Shutdown.
    Stopped,
}

impl SpoolDirSource {
    /// Checks the spool directory, creates the tracker directory and reads the tracker; an
    /// error names the directory (or file) and the key that set it.
    pub fn new(ctx: SourceContext, cfg: &SpoolDirConfig) -> Result<SpoolDirSource, SourceError> {
        let err = |message: String| SourceError::Start {
            source_name: ctx.name.clone(),
            message,
        };
        let dir = std::path::absolute(&cfg.spool_dir).map_err(|e| {
            err(format!(
                "spooldir: spoolDir {}: {e}",
                cfg.spool_dir.display()
            ))
        })?;
        match std::fs::metadata(&dir) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(err(format!(
                    "spooldir: spoolDir {} is not a directory",
                    dir.display()
                )))
            }
            Err(e) => {
                return Err(err(format!(
                    "spooldir: spoolDir {} cannot be used: {e}; create it (or fix the key) and \
                     start again",
                    dir.display()
                )))
            }
        }
        if let Err(e) = std::fs::read_dir(&dir) {
            return Err(err(format!(
                "spooldir: spoolDir {} cannot be listed: {e}",
                dir.display()
            )));
        }
        let tracker_dir = cfg.tracker_path(&dir);
        std::fs::create_dir_all(&tracker_dir).map_err(|e| {
            err(format!(
                "spooldir: cannot create trackerDir {}: {e}",
                tracker_dir.display()
            ))
        })?;
        let tracker = TrackerFile::new(&tracker_dir);
        let resume = tracker.load().map_err(|e| err(format!("spooldir: {e}")))?;
        Ok(SpoolDirSource {
            name: ctx.name,
            channels: ctx.channels,
            counters: ctx.counters,
            cfg: cfg.clone(),
            dir,
            tracker_dir,
            tracker,
            resume,
            skipped: HashMap::new(),
            list_failing: false,
            rng: Xorshift::seeded(),
        })
    }

    /// Runs until `stop` is set or a [`SpoolError`] stops the source.
    fn run_loop(&mut self, stop: &AtomicBool) -> Result<(), SpoolError> {
        let mut current = match self.resume.take() {
            Some(t) => self.resume_from(t)?,
            None => None,
        };
        while !stop.load(Ordering::Acquire) {
            let Some(cur) = current.as_mut() else {
                current = self.pick_next()?;
                if current.is_none() {
                    sleep_unless_stopped(self.cfg.poll_delay, stop);
                }
                continue;
            };
            match self.step(cur, stop)? {
                Step::More => {}
                Step::Stopped => return Ok(()),
                Step::Skip => current = None,
                Step::Done => {
                    if let Some(cur) = current.take() {
                        self.finish(cur)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// The file the tracker names, reopened at its committed offset; `None` when that file
    /// is gone (finished before the tracker was removed, or removed by someone).
    fn resume_from(&mut self, t: Tracker) -> Result<Option<Current>, SpoolError> {
        let name = &self.name;
        if !t.file.starts_with(&self.dir) {
            // `spoolDir` was changed while a file of the old one was in progress: that file is
            // not this source's any more.
            tracing::warn!(source = %name, "source `{name}` (spooldir): the tracker names {}, outside spoolDir {}; it is dropped ({} of that file's bytes were delivered)", t.file.display(), self.dir.display(), t.committed);
            self.tracker.remove()?;
            return Ok(None);
        }
        match std::fs::metadata(&t.file) {
            Err(e) if e.kind() == ErrorKind::NotFound => {
                let done = completed_name(&t.file, &self.cfg.file_suffix);
                if self.cfg.delete_policy == DeletePolicy::Immediate || done.exists() {
                    tracing::info!(source = %name, "source `{name}` (spooldir): {} was finished before the restart", t.file.display());
                } else {
                    tracing::warn!(source = %name, "source `{name}` (spooldir): the tracked file {} is gone ({} of its bytes were delivered); going on with the other files", t.file.display(), t.committed);
                }
                self.tracker.remove()?;
                Ok(None)
            }
            _ => {
                tracing::info!(source = %name, "source `{name}` (spooldir): resuming {} at byte {}", t.file.display(), t.committed);
                let path = t.file.clone();
                self.open(&path, Some(t))
            }
        }
    }

    /// The next file by `consumeOrder`, opened; `None` when there is none.
    fn pick_next(&mut self) -> Result<Option<Current>, SpoolError> {
        // A skipped file that is gone needs no memory.
        self.skipped.retain(|p, _| p.symlink_metadata().is_ok());
        let name = &self.name;
        let mut cands: Vec<Candidate> = match select::list(
            name,
            &self.dir,
            &self.tracker_dir,
            &self.cfg,
            &self.skipped,
        ) {
            Ok(c) => {
                if std::mem::take(&mut self.list_failing) {
                    tracing::info!(source = %name, "source `{name}` (spooldir): {} can be listed again", self.dir.display());
                }
                c
            }
            Err(e) => {
                if !std::mem::replace(&mut self.list_failing, true) {
                    tracing::error!(source = %name, "source `{name}` (spooldir): cannot list {}: {e}; trying again every {} ms (logged once)", self.dir.display(), self.cfg.poll_delay.as_millis());
                }
                return Ok(None);
            }
        };
        while let Some(i) = select::choose(&cands, self.cfg.consume_order, self.rng.draw()) {
            let c = cands.swap_remove(i);
            if let Some(cur) = self.open(&c.path, None)? {
                return Ok(Some(cur));
            }
        }
        Ok(None)
    }

    /// Opens `path` at the tracker's offset (`resume`) or its start. A file that cannot be
    /// opened is skipped (`None`, logged); one that changed since the tracker saw it, or
    /// whose completed name exists already, stops the source.
    fn open(
        &mut self,
        path: &Path,
        resume: Option<Tracker>,
    ) -> Result<Option<Current>, SpoolError> {
        let name = self.name.clone();
        let file = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == ErrorKind::NotFound && resume.is_none() => {
                tracing::debug!(source = %name, "source `{name}` (spooldir): {} vanished before it was read", path.display());
                return Ok(None);
            }
            Err(e) => {
                self.skip(path, &format!("cannot open it: {e}"));
                return Ok(None);
            }
        };
        let meta = match file.metadata() {
            Ok(m) => m,
            Err(e) => {
                self.skip(path, &format!("cannot stat it: {e}"));
                return Ok(None);
            }
        };
        let identity = Identity::of(&meta);
        let fresh = resume.is_none();
        let mut tracker = match resume {
            Some(t) => {
                if let Some(what) = t.identity.changed(&identity) {
                    return Err(self.changed(path, what));
                }
                t
            }
            None => {
                if self.cfg.delete_policy == DeletePolicy::Never {
                    let completed = completed_name(path, &self.cfg.file_suffix);
                    // Caught before reading: the rename after the last commit would fail, and
                    // stop the source, on every restart.
                    let len = completed.file_name().map_or(0, |n| n.len());
                    if len > MAX_NAME_BYTES {
                        self.skip(path, &format!("its done name would be {len} bytes, more than a file name may have ({MAX_NAME_BYTES}); rename it shorter"));
                        return Ok(None);
                    }
                    if completed.symlink_metadata().is_ok() {
                        return Err(SpoolError::CompletedExists {
                            file: path.to_path_buf(),
                            completed,
                        });
                    }
                }
                Tracker {
                    version: VERSION,
                    file: path.to_path_buf(),
                    identity,
                    committed: 0,
                }
            }
        };
        let mut start = tracker.committed;
        let mut charset = self.cfg.input_charset;
        if charset == Charset::Utf16 && matches!(self.cfg.deserializer, Deserializer::Line { .. }) {
            let mut first = [0u8; 2];
            let n = file.read_at(&mut first, 0).unwrap_or(0);
            let (cs, bom) = charset.with_bom(first.get(..n).unwrap_or_default());
            charset = cs;
            start = start.max(bom);
        }
        // A second descriptor reads; `file` stays for fstat between batches (they share an
        // offset, which only the reader uses).
        let mut reader_file = match file.try_clone() {
            Ok(clone) => clone,
            Err(e) => {
                self.skip(path, &format!("cannot open it twice: {e}"));
                return Ok(None);
            }
        };
        if let Err(e) = reader_file.seek(SeekFrom::Start(start)) {
            self.skip(path, &format!("cannot seek to byte {start}: {e}"));
            return Ok(None);
        }
        let reader = match self.cfg.deserializer {
            Deserializer::Line {
                max_line_length,
                output_charset,
            } => Reader::Line(LineReader::new(
                reader_file,
                start,
                charset,
                self.cfg.decode_error_policy,
                max_line_length,
                output_charset,
            )),
            Deserializer::Blob { max_blob_length } => {
                Reader::Blob(BlobReader::new(reader_file, start, max_blob_length))
            }
        };
        if fresh {
            tracker.committed = start;
            self.tracker.store(&tracker, true)?;
            tracing::info!(source = %name, "source `{name}` (spooldir): reading {} ({} bytes)", path.display(), identity.size);
        }
        let mut headers = BTreeMap::new();
        if self.cfg.file_header {
            headers.insert(
                self.cfg.file_header_key.clone(),
                path.to_string_lossy().into_owned(),
            );
        }
        if self.cfg.basename_header {
            let base = path.file_name().map(|n| n.to_string_lossy().into_owned());
            headers.insert(
                self.cfg.basename_header_key.clone(),
                base.unwrap_or_default(),
            );
        }
        Ok(Some(Current {
            path: path.to_path_buf(),
            file,
            reader,
            tracker,
            headers,
            events: 0,
        }))
    }

    /// Logs why `path` is left alone and remembers it, so it is tried again only once it
    /// changes.
    fn skip(&mut self, path: &Path, why: &str) {
        let name = &self.name;
        tracing::error!(source = %name, "source `{name}` (spooldir): skipping {}: {why}; it is tried again once it changes", path.display());
        if let Ok(m) = std::fs::metadata(path) {
            self.skipped.insert(path.to_path_buf(), SkipMark::of(&m));
        }
    }

    fn changed(&self, path: &Path, what: String) -> SpoolError {
        SpoolError::Changed {
            file: path.to_path_buf(),
            what,
            tracker: self.tracker.path().to_path_buf(),
        }
    }

    /// Reads one batch of `cur`, puts it, and records the offset reached.
    fn step(&mut self, cur: &mut Current, stop: &AtomicBool) -> Result<Step, SpoolError> {
        let name = self.name.clone();
        match cur.file.metadata() {
            Ok(m) => {
                if let Some(what) = cur.tracker.identity.changed(&Identity::of(&m)) {
                    return Err(self.changed(&cur.path, what));
                }
            }
            Err(e) => {
                self.skip(&cur.path, &format!("cannot stat it: {e}"));
                return Ok(Step::Skip);
            }
        }
        let blob_cap = match self.cfg.deserializer {
            Deserializer::Blob { max_blob_length } => max_blob_length,
            Deserializer::Line { .. } => usize::MAX,
        };
        let mut batch = Vec::with_capacity(self.cfg.batch_size.min(1024));
        let mut bytes = 0usize;
        let mut end = cur.tracker.committed;
        let mut at_end = false;
        let mut malformed: Option<SpoolError> = None;
        let mut read_failed: Option<String> = None;
        while batch.len() < self.cfg.batch_size && bytes < blob_cap {
            match cur.reader.next_body() {
                Ok(Some(body)) => {
                    if let Some(t) = body.split {
                        self.warn_split(&cur.path, t);
                    }
                    end = body.end;
                    bytes = bytes.saturating_add(body.bytes.len());
                    batch.push(Event::with_headers(cur.headers.clone(), body.bytes));
                }
                Ok(None) => {
                    at_end = true;
                    break;
                }
                Err(ReadError::Malformed { offset, charset }) => {
                    malformed = Some(SpoolError::Malformed {
                        file: cur.path.clone(),
                        offset,
                        charset,
                    });
                    break;
                }
                Err(ReadError::Io(e)) => {
                    read_failed = Some(format!("reading after byte {end} failed: {e}"));
                    break;
                }
            }
        }
        if !batch.is_empty() {
            let n = batch.len() as u64;
            self.counters.inc(Counter::AppendBatchReceivedCount);
            self.counters.add(Counter::EventReceivedCount, n);
            match put_all_backoff(&name, &self.channels, &batch, stop, self.cfg.max_backoff) {
                Ok(()) => {
                    self.counters.inc(Counter::AppendBatchAcceptedCount);
                    self.counters.add(Counter::EventAcceptedCount, n);
                    cur.events += n;
                    cur.tracker.committed = end;
                    self.tracker.store(&cur.tracker, false)?;
                }
                Err(PutError::Stopped) => {
                    tracing::info!(source = %name, "source `{name}` (spooldir): shutdown; {} resumes at byte {}", cur.path.display(), cur.tracker.committed);
                    return Ok(Step::Stopped);
                }
                Err(PutError::Failed(source)) => {
                    self.counters.inc(Counter::ChannelWriteFail);
                    return Err(SpoolError::Channel {
                        file: cur.path.clone(),
                        source,
                    });
                }
            }
        }
        if let Some(e) = malformed {
            return Err(e);
        }
        if let Some(why) = read_failed {
            // The events before the failure are committed and recorded.
            self.skip(&cur.path, &why);
            return Ok(Step::Skip);
        }
        Ok(if at_end { Step::Done } else { Step::More })
    }

    /// Said once per long line (the reader marks only its first piece), once per full blob.
    fn warn_split(&self, path: &Path, t: deserializer::Split) {
        let name = &self.name;
        match self.cfg.deserializer {
            Deserializer::Line {
                max_line_length, ..
            } => {
                tracing::warn!(source = %name, "source `{name}` (spooldir): the line at byte {} of {} is longer than deserializer.maxLineLength ({max_line_length}): split into pieces of at most {max_line_length} characters, one event each", t.start, path.display())
            }
            Deserializer::Blob { max_blob_length } => {
                tracing::warn!(source = %name, "source `{name}` (spooldir): {} is longer than deserializer.maxBlobLength ({max_blob_length}) at byte {}: the rest follows as another event", path.display(), t.start)
            }
        }
    }

    /// Every event of `cur` is committed: checks the file is as it was picked up, renames it
    /// (or deletes it) and drops the tracker.
    fn finish(&mut self, cur: Current) -> Result<(), SpoolError> {
        let name = &self.name;
        let path = &cur.path;
        match std::fs::metadata(path) {
            Err(e) if e.kind() == ErrorKind::NotFound => {
                tracing::warn!(source = %name, "source `{name}` (spooldir): {} was removed while it was read; its {} events were delivered", path.display(), cur.events);
                self.tracker.remove()?;
                return Ok(());
            }
            Err(e) => {
                return Err(SpoolError::Finish {
                    what: "stat",
                    file: path.clone(),
                    source: e,
                })
            }
            Ok(m) => {
                if let Some(what) = cur.tracker.identity.changed(&Identity::of(&m)) {
                    return Err(self.changed(path, what));
                }
            }
        }
        let done = match self.cfg.delete_policy {
            DeletePolicy::Never => {
                let completed = completed_name(path, &self.cfg.file_suffix);
                rename_no_replace(path, &completed).map_err(|e| {
                    if e.kind() == ErrorKind::AlreadyExists {
                        SpoolError::CompletedExists {
                            file: path.clone(),
                            completed: completed.clone(),
                        }
                    } else {
                        SpoolError::Finish {
                            what: "rename",
                            file: path.clone(),
                            source: e,
                        }
                    }
                })?;
                format!("renamed to {}", completed.display())
            }
            DeletePolicy::Immediate => {
                std::fs::remove_file(path).map_err(|e| SpoolError::Finish {
                    what: "delete",
                    file: path.clone(),
                    source: e,
                })?;
                "deleted".to_string()
            }
        };
        if let Err(e) = tracker::sync_dir_of(path) {
            tracing::warn!(source = %name, "source `{name}` (spooldir): fsync of the directory of {}: {e}", path.display());
        }
        self.tracker.remove()?;
        tracing::info!(source = %name, "source `{name}` (spooldir): done with {} ({} events this run), {done}", path.display(), cur.events);
        Ok(())
    }
}

impl Source for SpoolDirSource {
    fn run(mut self: Box<Self>, stop: Arc<AtomicBool>) {
        let name = self.name.clone();
        tracing::info!(source = %name, "source `{name}` (spooldir): watching {}", self.dir.display());
        if let Err(e) = self.run_loop(&stop) {
            tracing::error!(source = %name, "source `{name}` (spooldir) stops: {e}");
        }
        tracing::debug!(source = %name, "source `{name}` (spooldir) ends");
    }
}

/// Longest file name Linux filesystems take (`NAME_MAX`), in bytes.
const MAX_NAME_BYTES: usize = 255;

/// `path` with `suffix` appended to its file name.
fn completed_name(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(suffix);
    PathBuf::from(s)
}

/// Renames `from` to `to` unless `to` exists (`AlreadyExists`): atomically where the
/// filesystem has `RENAME_NOREPLACE`, else by looking first.
fn rename_no_replace(from: &Path, to: &Path) -> std::io::Result<()> {
    use rustix::fs::{renameat_with, RenameFlags, CWD};
    match renameat_with(CWD, from, CWD, to, RenameFlags::NOREPLACE) {
        Ok(()) => Ok(()),
        Err(e) if e == rustix::io::Errno::EXIST => Err(ErrorKind::AlreadyExists.into()),
        Err(e) if e == rustix::io::Errno::INVAL || e == rustix::io::Errno::NOSYS => {
            if to.symlink_metadata().is_ok() {
                return Err(ErrorKind::AlreadyExists.into());
            }
            std::fs::rename(from, to)
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests;
