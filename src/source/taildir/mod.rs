//! The `TAILDIR` source (Flume's TaildirSource): follows the files of its file groups as
//! they grow, rotate and appear, and puts each line as one event, resuming after a restart
//! (or a kill -9) where the committed lines end.
//!
//! One thread runs a loop: scan the groups' directories (on an inotify wake-up, or after a
//! wait that grows by `backoffSleepIncrement` up to `maxBackoffSleep` when nothing changed),
//! then read each open file in turn, up to `maxBatchCount` batches of `batchSize` whole lines,
//! putting each batch into the channels before reading the next.
//!
//! A file is known by its device and inode while the source holds it open (so a rename keeps
//! its place, and its inode cannot be reused meanwhile), and by those plus a fingerprint of
//! its first bytes across a restart or after it was closed idle ([`position`]): a saved
//! position whose file has other first bytes, or is shorter than the position, belongs to
//! another file (an inode reused, a copy-truncate), which is read from its start. A file that
//! shrinks (copy-truncate) is read again from its start, said once in the log.
//!
//! Invariants: a file's position moves only after the channel commit of the lines before it
//! ([`file`]), and the positions are recorded after every committed batch (in the journal,
//! [`journal`], folded into the position file every `writePosInterval`), so a restart
//! re-delivers at most the batch that was in flight; positions are line starts, so a restart
//! never delivers the tail of a line; a line is never cut into events except by
//! `maxLineLength` (cut, with a warning) or by the file going idle without its newline (put
//! as it is, as Flume does). A rotated-away or deleted file is read to its end through the
//! open descriptor, and forgotten once idle for `idleTimeout`.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

pub mod config;
mod file;
mod journal;
pub mod position;
mod scan;
mod watch;

#[cfg(test)]
mod tests;

pub use config::{FileGroup, TaildirConfig, TYPE};

use self::file::{Batch, FileKey, TailFile};
use self::journal::Journal;
use self::position::{Fingerprint, Saved};
use self::watch::Wakeups;
use super::{put_batch_counted, PutError, Source, SourceContext, SourceError};
use crate::event::Event;
use crate::metrics::ComponentCounters;
use crate::route::ChannelProcessor;

/// Shortest time between two looks woken by inotify while nothing was read.
const MIN_WAKE_GAP: Duration = Duration::from_millis(5);
/// Longest single wait, so the stop flag is seen promptly.
const STOP_POLL: Duration = Duration::from_millis(100);
/// Header with a line's byte offset (`byteOffsetHeader`), as Flume names it.
pub const BYTE_OFFSET_HEADER: &str = "byteoffset";

/// Why the position file is being written.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Save {
    /// Right after a batch's commit.
    AfterBatch,
    /// At the end of a read round, before waiting: whatever is pending.
    EndOfRound,
    /// With fsyncs: at start, at shutdown (and every `writePosInterval` anyway).
    Durable,
}

/// A group's directory listing, kept while the directory's modification time stays.
#[derive(Default)]
struct Listing {
    mtime: Option<SystemTime>,
    listed_at: Option<SystemTime>,
    names: Vec<std::ffi::OsString>,
    /// The last error listing it, so it is logged once until it changes.
    error: Option<String>,
}

/// See the module docs.
pub struct TaildirSource {
    name: String,
    channels: Arc<ChannelProcessor>,
    counters: Arc<ComponentCounters>,
    cfg: TaildirConfig,
    files: BTreeMap<FileKey, TailFile>,
    /// Saved positions not matched to a file yet; kept (and saved) for `idleTimeout` after
    /// start, so a file missing for a moment at start-up does not lose its place.
    restored: Vec<Saved>,
    restored_until: Instant,
    listings: Vec<Listing>,
    wake: Wakeups,
    last_durable: Instant,
    last_save: Instant,
    /// How long the last plain save took (see [`TaildirSource::save`]).
    save_cost: Duration,
    render_buf: Vec<u8>,
    journal: Journal,
    /// The number the next rewrite of the positions carries.
    seq: u64,
    dirty: bool,
    save_failing: bool,
    /// Holds the lock on `<positionFile>.lock` for the source's lifetime.
    _lock: File,
}

impl TaildirSource {
    /// Takes the position file (locked, so two sources cannot share it) and reads it.
    pub fn new(ctx: SourceContext, cfg: TaildirConfig) -> Result<TaildirSource, SourceError> {
        let err = |message: String| SourceError::Start {
            source_name: ctx.name.clone(),
            message,
        };
        let pos_path = cfg.position_file.clone();
        if let Some(dir) = pos_path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                err(format!(
                    "TAILDIR: cannot create the directory of positionFile {}: {e}",
                    pos_path.display()
                ))
            })?;
        }
        let lock_path = lock_path(&pos_path);
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| err(format!("TAILDIR: cannot open {}: {e}", lock_path.display())))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(err(format!(
                    "TAILDIR: positionFile {} is in use by another TAILDIR source (in this \
                     agent or another process); give each source its own positionFile",
                    pos_path.display()
                )))
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(err(format!(
                    "TAILDIR: cannot lock {}: {e}",
                    lock_path.display()
                )))
            }
        }
        let saved = position::load(&pos_path).map_err(|e| err(format!("TAILDIR: {e}")))?;
        let (journal, newest) = Journal::open(&pos_path).map_err(|e| {
            err(format!(
                "TAILDIR: cannot open the position journal {}: {e}",
                journal::journal_path(&pos_path).display()
            ))
        })?;
        let mut seq = saved.seq;
        let mut restored = saved.entries;
        if let Some(n) = newest.filter(|n| n.seq > saved.seq) {
            match position::parse(&n.content) {
                Ok(p) => {
                    restored = p.entries;
                    seq = n.seq;
                }
                // Its CRC held, so this is not a torn write: say so, and use the older file.
                Err((offset, what)) => tracing::warn!(
                    source = %ctx.name,
                    "source `{}` (TAILDIR): the newest record of {} does not parse (byte {offset}: {what}); using {} instead",
                    ctx.name,
                    journal.path().display(),
                    pos_path.display()
                ),
            }
        }
        let wake = Wakeups::new(&ctx.name);
        let listings = cfg.groups.iter().map(|_| Listing::default()).collect();
        Ok(TaildirSource {
            name: ctx.name,
            channels: ctx.channels,
            counters: ctx.counters,
            restored_until: Instant::now() + cfg.idle_timeout,
            cfg,
            files: BTreeMap::new(),
            restored,
            listings,
            wake,
            last_durable: Instant::now(),
            last_save: Instant::now(),
            save_cost: Duration::ZERO,
            render_buf: Vec::new(),
            journal,
            seq: seq + 1,
            dirty: false,
            save_failing: false,
            _lock: lock,
        })
    }

    /// Reads every open file in turn; true when some lines were put.
    fn read_round(&mut self, stop: &AtomicBool) -> Result<bool, ()> {
        let mut progressed = false;
        let keys: Vec<FileKey> = self.files.keys().copied().collect();
        for key in keys {
            if stop.load(Ordering::Acquire) {
                return Err(());
            }
            let Some(t) = self.files.get_mut(&key) else {
                continue;
            };
            if !t.is_open() {
                continue;
            }
            match t.size() {
                Ok(Some((size, _))) if size < t.pos => {
                    tracing::warn!(source = %self.name, "source `{}` (TAILDIR): {} shrank from {} to {size} bytes (copy-truncate?): reading it again from its start", self.name, t.path.display(), t.pos);
                    if let Err(e) = t.restart_from_zero() {
                        read_error(&self.name, t, &e);
                        continue;
                    }
                    self.dirty = true;
                }
                Ok(Some((size, _))) if size == t.pos => continue,
                Ok(_) => {}
                Err(e) => {
                    read_error(&self.name, t, &e);
                    continue;
                }
            }
            let mut batches = 0u64;
            while batches < self.cfg.max_batch_count {
                let Some(t) = self.files.get_mut(&key) else {
                    break;
                };
                let batch = match t.read_batch(self.cfg.batch_size, self.cfg.max_line_length) {
                    Ok(Some(b)) => b,
                    Ok(None) => break,
                    Err(e) => {
                        read_error(&self.name, t, &e);
                        t.abort();
                        break;
                    }
                };
                let full = batch.lines.len() >= self.cfg.batch_size;
                self.put(key, batch, stop)?;
                progressed = true;
                batches += 1;
                if !full {
                    break;
                }
            }
        }
        Ok(progressed)
    }

    /// Puts `batch` (read from file `key`) into the channels; on success moves the file's
    /// position and rewrites the position file.
    fn put(&mut self, key: FileKey, batch: Batch, stop: &AtomicBool) -> Result<(), ()> {
        let Some(t) = self.files.get_mut(&key) else {
            return Ok(());
        };
        match t.still_holds(batch.end) {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(source = %self.name, "source `{}` (TAILDIR): {} was truncated or rewritten while it was read (copy-truncate?): reading it again from its start", self.name, t.path.display());
                if let Err(e) = t.restart_from_zero() {
                    read_error(&self.name, t, &e);
                }
                self.dirty = true;
                return Ok(());
            }
            Err(e) => {
                read_error(&self.name, t, &e);
                t.abort();
                return Ok(());
            }
        }
        let t = &self.files[&key];
        let events = self.events(t, &batch);
        if batch.truncated > 0 {
            tracing::warn!(source = %self.name, "source `{}` (TAILDIR): {} line(s) of {} longer than maxLineLength ({} bytes) cut to it", self.name, batch.truncated, t.path.display(), self.cfg.max_line_length);
        }
        let r = put_batch_counted(
            &self.name,
            "TAILDIR",
            &self.channels,
            &events,
            stop,
            &self.counters,
        );
        let Some(t) = self.files.get_mut(&key) else {
            return Ok(());
        };
        match r {
            Ok(()) => {
                t.commit(batch.end);
                t.read_failure = None;
                self.dirty = true;
                self.save(Save::AfterBatch);
                Ok(())
            }
            Err(PutError::Stopped) | Err(PutError::Failed(_)) => {
                t.abort();
                Err(())
            }
        }
    }

    fn events(&self, t: &TailFile, batch: &Batch) -> Vec<Event> {
        let group = &self.cfg.groups[t.group];
        let plain = group.headers.is_empty()
            && self.cfg.file_header.is_none()
            && !self.cfg.byte_offset_header;
        let path = t.path.to_string_lossy();
        batch
            .lines
            .iter()
            .map(|l| {
                if plain {
                    return Event::new(l.body.clone());
                }
                let mut h = group.headers.clone();
                if let Some(k) = &self.cfg.file_header {
                    h.insert(k.clone(), path.to_string());
                }
                if self.cfg.byte_offset_header {
                    h.insert(BYTE_OFFSET_HEADER.to_string(), l.offset.to_string());
                }
                Event::with_headers(h, l.body.clone())
            })
            .collect()
    }

    /// Files that have not grown for `idleTimeout`: an unterminated last line is put as it
    /// is, then the file is closed; one that no longer matches (rotated away, deleted) is
    /// forgotten.
    fn idle_pass(&mut self, stop: &AtomicBool) -> Result<(), ()> {
        let now = Instant::now();
        let idle: Vec<FileKey> = self
            .files
            .iter()
            .filter(|(_, t)| {
                (t.is_open() && now.duration_since(t.last_growth) >= self.cfg.idle_timeout)
                    || (!t.is_open() && !t.matched)
            })
            .map(|(k, _)| *k)
            .collect();
        for key in idle {
            let Some(t) = self.files.get_mut(&key) else {
                continue;
            };
            if t.is_open() {
                // Read what is there first: only a last line without its newline is left.
                match t.read_batch(self.cfg.batch_size, self.cfg.max_line_length) {
                    Ok(Some(b)) => {
                        self.put(key, b, stop)?;
                        continue; // not idle after all
                    }
                    Ok(None) => {}
                    Err(e) => read_error(&self.name, t, &e),
                }
                let Some(t) = self.files.get_mut(&key) else {
                    continue;
                };
                if let Some(b) = t.flush_partial() {
                    tracing::info!(source = %self.name, "source `{}` (TAILDIR): {} idle with a last line without a newline: putting it as it is", self.name, t.path.display());
                    self.put(key, b, stop)?;
                }
            }
            let Some(t) = self.files.get_mut(&key) else {
                continue;
            };
            if t.matched {
                tracing::debug!(source = %self.name, "source `{}` (TAILDIR): closing idle {}", self.name, t.path.display());
                t.close();
            } else {
                tracing::info!(source = %self.name, "source `{}` (TAILDIR): {} no longer matches (rotated away or deleted) and is idle: forgetting it", self.name, t.path.display());
                self.files.remove(&key);
                self.dirty = true;
            }
        }
        for t in self.files.values_mut() {
            t.shrink();
        }
        Ok(())
    }

    /// Rewrites the position file when something changed; `durable` (every
    /// `writePosInterval`, and at shutdown) adds the fsyncs.
    fn save(&mut self, when: Save) {
        let due = self.last_durable.elapsed() >= self.cfg.write_pos_interval;
        let durable = when == Save::Durable || due;
        if !(self.dirty || durable) {
            return;
        }
        // After a batch, a save may wait a moment when saving takes long against the time
        // since the last one (hundreds of files): at most a fifth of the time goes to it. The
        // round's end saves whatever is pending.
        if when == Save::AfterBatch && !durable && self.last_save.elapsed() < self.save_cost * 4 {
            return;
        }
        let started = Instant::now();
        let mut bytes = std::mem::take(&mut self.render_buf);
        bytes.clear();
        let entries = self
            .files
            .values()
            .map(|t| position::EntryRef {
                inode: t.key.ino,
                pos: t.pos,
                file: &t.path,
                identity: Some(t.identity()),
            })
            .chain(self.restored.iter().map(position::EntryRef::from));
        position::render_into(entries, self.seq, &mut bytes);
        let r = if durable || self.journal.wants_fold(bytes.len()) {
            // The position file first: the journal is emptied only once it is older.
            position::save_bytes(&self.cfg.position_file, &bytes, durable)
                .and_then(|()| self.journal.clear())
        } else {
            self.journal.append(self.seq, &bytes)
        };
        self.seq += 1;
        self.render_buf = bytes;
        self.last_save = Instant::now();
        if !durable {
            self.save_cost = self.last_save - started;
        }
        match r {
            Ok(()) => {
                self.dirty = false;
                if durable {
                    self.last_durable = Instant::now();
                }
                if self.save_failing {
                    self.save_failing = false;
                    tracing::info!(source = %self.name, "source `{}` (TAILDIR): the position file {} is written again", self.name, self.cfg.position_file.display());
                }
            }
            Err(e) => {
                if !self.save_failing {
                    self.save_failing = true;
                    tracing::error!(source = %self.name, "source `{}` (TAILDIR): cannot write the position file {}: {e}; positions are kept in memory and written when it works again (a restart before that re-reads lines)", self.name, self.cfg.position_file.display());
                }
            }
        }
    }

    /// Waits up to `timeout` for a change, in slices so `stop` is seen; true when woken.
    fn wait(&self, timeout: Duration, stop: &AtomicBool) -> bool {
        let end = Instant::now() + timeout;
        loop {
            let now = Instant::now();
            if now >= end || stop.load(Ordering::Acquire) {
                return false;
            }
            if self.wake.wait((end - now).min(STOP_POLL)) {
                return true;
            }
        }
    }
}

impl Source for TaildirSource {
    fn run(mut self: Box<Self>, stop: Arc<AtomicBool>) {
        let name = self.name.clone();
        self.scan(true);
        self.save(Save::Durable);
        let mut backoff = Duration::ZERO;
        let mut last_wake = Instant::now();
        while !stop.load(Ordering::Acquire) {
            let progressed = match self.read_round(&stop) {
                Ok(p) => p,
                Err(()) => break,
            };
            if self.idle_pass(&stop).is_err() {
                break;
            }
            self.save(Save::EndOfRound);
            if progressed {
                backoff = Duration::ZERO;
                if self.wake.take() {
                    self.scan(false);
                }
                continue;
            }
            backoff = (backoff + self.cfg.backoff_increment).min(self.cfg.max_backoff);
            // Wake for the next idle check too.
            let next_idle = self
                .files
                .values()
                .filter(|t| t.is_open())
                .map(|t| {
                    (t.last_growth + self.cfg.idle_timeout)
                        .saturating_duration_since(Instant::now())
                })
                .min()
                .unwrap_or(backoff);
            let durable_due = self
                .cfg
                .write_pos_interval
                .saturating_sub(self.last_durable.elapsed());
            let wait = backoff.min(next_idle.max(Duration::from_millis(10)));
            let wait = if self.dirty {
                wait.min(durable_due)
            } else {
                wait
            };
            if self.wait(wait, &stop) {
                // A directory busy with files that do not match (or lines too short to
                // fill a batch) would wake the loop for every write: look at most every
                // MIN_WAKE_GAP.
                let since = last_wake.elapsed();
                if since < MIN_WAKE_GAP {
                    std::thread::sleep(MIN_WAKE_GAP - since);
                }
                last_wake = Instant::now();
            }
            self.scan(false);
        }
        self.save(Save::Durable);
        tracing::debug!(source = %name, "source `{name}` (TAILDIR) ends");
    }
}

/// Whether `t`'s first bytes still have `saved` as their fingerprint (a file that grew keeps
/// it: the fingerprint covers only the bytes it had).
fn file_fingerprint_matches(t: &TailFile, saved: Fingerprint) -> std::io::Result<bool> {
    if saved.len == 0 {
        return Ok(true);
    }
    Ok(t.read_fingerprint(saved.len)? == saved)
}

/// Whether a fingerprint covers enough of a file to vouch for a position in it: every byte
/// before the position, or the first 1 KiB. A shorter one (taken while the file was shorter)
/// could belong to any file, and a position is never applied on its word.
fn covers(fp: Fingerprint, pos: u64) -> bool {
    u64::from(fp.len) >= pos.min(u64::from(position::FINGERPRINT_BYTES))
}

/// Logs a read failure of `t`, once until it changes or a batch of `t` is put again (a file
/// that keeps failing is looked at every round).
fn read_error(source: &str, t: &mut TailFile, e: &std::io::Error) {
    let msg = e.to_string();
    if t.read_failure.as_deref() != Some(msg.as_str()) {
        tracing::warn!(source, "source `{source}` (TAILDIR): reading {}: {msg}; trying again on later rounds, the other files go on", t.path.display());
        t.read_failure = Some(msg);
    }
}

/// The file whose lock keeps two sources off one position file.
fn lock_path(pos: &Path) -> PathBuf {
    let mut name = pos.file_name().unwrap_or_default().to_os_string();
    name.push(".lock");
    pos.with_file_name(name)
}
