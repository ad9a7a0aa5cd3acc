//! The durable file channel: a write-ahead log of committed transactions, an in-memory queue
//! of 16-byte batch entries, group commit, checkpoints and crash recovery.
//!
//! Data flow. A put transaction encodes its events into one record as they arrive
//! ([`PutBatchEncoder`]); `commit` appends that record to the active segment under the log
//! lock and waits in [`GroupCommit`] for an fdatasync covering it. The sync's leader applies
//! every record it covered to the [`Queue`] in log order, and only then wakes the committers,
//! so a put is visible to takers exactly when it is durable. A take reserves the lowest
//! available seqs, reads their batch records back (from a small cache of recent records, the
//! active segment by pread, or sealed segments by mmap, verifying the CRC), and at commit
//! appends a TakeCommit record the same way; rollback returns the seqs to the queue.
//!
//! Invariants:
//! - `commit()` returns `Ok` only after the record is durable (`fsync = every-commit`), and a
//!   failed write or sync poisons the channel: every waiting and later commit fails, nothing
//!   further is reported durable, no sync is retried. Reopening recovers from disk.
//! - Lock order: log, then queue; never the reverse.
//! - A checkpoint is written only for state whose records are durable; segments are deleted
//!   only once every event in them is done and no retained checkpoint needs them.
//! - Memory per queued event: 16 bytes per committed put batch (see docs/ARCHITECTURE.md), plus
//!   a bounded cache of recent records; never a heap object per event.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use parking_lot::{Condvar, Mutex, RwLock};

use super::{Channel, ChannelError, ChannelStats, PutTransaction, TakeTransaction};
use crate::event::{Event, Headers};
use crate::format::checkpoint::Checkpoint;
use crate::format::record::{self, encode_take_commit, take_commit_len, RECORD_HEADER_LEN};
use crate::format::{
    segment, BatchEntry, CheckpointSegment, Position, PutBatchEncoder, PutBatchView, ScanOutcome,
    SEGMENT_HEADER_LEN,
};
use crate::io::{self, Vfs};

mod checkpoint;
mod config;
mod group_commit;
mod journal;
mod log;
mod queue;
mod recovery;
pub(crate) mod spare;
pub mod tools;

pub use config::{CorruptionPolicy, FileChannelConfig, FsyncPolicy, MAX_SEGMENT_SIZE, TYPE};
pub use group_commit::{GroupCommit, WaitError};
pub use recovery::RecoveryReport;

use log::{
    FreeSpace, LogWriter, Pending, PendingOp, SegmentHandle, Stage, StagedWrite, PREALLOC_STEP,
};
use queue::Queue;
use spare::Spares;

/// How long the flusher waits for a put's group sync to cover a take record before syncing
/// it itself. Bounds how long a take commit stays non-durable.
const TAKE_SYNC_GRACE: Duration = Duration::from_millis(5);

/// Bytes of recent put records kept in memory so that takers right behind the writers do not
/// read them back from disk.
const RECENT_RECORDS_BYTES: usize = 64 * 1024 * 1024;

/// Record buffers kept for reuse, and the largest one worth keeping. A put record is built in
/// one buffer that then lives on (as the cached record) until its last reader drops it;
/// handing it back then, instead of freeing it, spares the next batch growing a fresh buffer
/// (a realloc copy per doubling and a zeroed page per 4 KiB: 15-20% of the put path's CPU).
const POOLED_BUFFERS: usize = 32;
const POOLED_BUFFER_MAX: usize = 4 << 20;

/// See [`POOLED_BUFFERS`].
#[derive(Default)]
struct BufPool(Mutex<Vec<Vec<u8>>>);

impl BufPool {
    fn get(&self) -> Vec<u8> {
        self.0.lock().pop().unwrap_or_default()
    }

    fn give(&self, buf: Vec<u8>) {
        if buf.capacity() == 0 || buf.capacity() > POOLED_BUFFER_MAX {
            return;
        }
        let mut pool = self.0.lock();
        if pool.len() < POOLED_BUFFERS {
            pool.push(buf);
        }
    }
}

/// A committed record's buffer behind a `Bytes`: back to the pool when the last `Bytes`
/// referring to it is dropped.
struct PooledRecord {
    buf: Vec<u8>,
    pool: Arc<BufPool>,
}

impl AsRef<[u8]> for PooledRecord {
    fn as_ref(&self) -> &[u8] {
        &self.buf
    }
}

impl Drop for PooledRecord {
    fn drop(&mut self) {
        self.pool.give(std::mem::take(&mut self.buf));
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[derive(Default)]
struct Counters {
    put_attempts: AtomicU64,
    put_successes: AtomicU64,
    take_attempts: AtomicU64,
    take_successes: AtomicU64,
    put_errors: AtomicU64,
    take_errors: AtomicU64,
    commits: AtomicU64,
    fsyncs: AtomicU64,
    checkpoints: AtomicU64,
    checkpoint_errors: AtomicU64,
    /// Events dropped as unreadable under corruptionPolicy = skip.
    events_lost: AtomicU64,
}

/// Recently written put records by (segment, offset), oldest evicted first.
#[derive(Default)]
struct RecentRecords {
    map: HashMap<(u64, u32), Bytes>,
    order: VecDeque<(u64, u32)>,
    bytes: usize,
}

impl RecentRecords {
    fn insert(&mut self, key: (u64, u32), rec: Bytes) {
        self.bytes += rec.len();
        self.map.insert(key, rec);
        self.order.push_back(key);
        while self.bytes > RECENT_RECORDS_BYTES {
            let Some(old) = self.order.pop_front() else {
                break;
            };
            if let Some(r) = self.map.remove(&old) {
                self.bytes -= r.len();
            }
        }
    }
}

struct CheckpointState {
    next_generation: u64,
    /// Retained checkpoints, newest first: (generation, oldest segment it needs).
    retained: Vec<(u64, u64)>,
}

struct Inner {
    name: String,
    cfg: FileChannelConfig,
    fs: Arc<dyn Vfs>,
    log: Mutex<LogWriter>,
    /// Held by whoever writes staged blocks to the active segment (the group-commit leader,
    /// outside the log lock, or a roll, under it), so a roll never seals a segment while a
    /// leader's write into it is still running. Lock order: `log`, then this.
    block_write: Mutex<()>,
    group: GroupCommit<Position>,
    queue: Mutex<Queue>,
    /// Signalled when events become available (takers wait here).
    available_cv: Condvar,
    /// Signalled when room frees up (putters wait here).
    room_cv: Condvar,
    segments: RwLock<BTreeMap<u64, Arc<SegmentHandle>>>,
    recent: Mutex<RecentRecords>,
    /// Buffers of records nobody refers to any more, for the next put transactions.
    bufs: Arc<BufPool>,
    poison: OnceLock<ChannelError>,
    closed: AtomicBool,
    /// Set by `simulate_crash`: no final checkpoint, as after kill -9.
    abandoned: AtomicBool,
    counters: Counters,
    ckpt: Mutex<CheckpointState>,
    /// What the background threads wait on. They hold it, and only a weak reference to the
    /// channel, so that dropping the last handle closes the channel at once.
    bg: Arc<Background>,
    bg_threads: Mutex<Vec<std::thread::JoinHandle<()>>>,
    /// Finished segments kept for reuse (`spareSegments`).
    spares: Arc<Spares>,
    /// The lock file, held from open until close (or a simulated crash).
    lock: Mutex<Option<std::fs::File>>,
}

/// The durable file channel. A cheap handle: clones share one channel.
#[derive(Clone)]
pub struct FileChannel {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for FileChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileChannel")
            .field("name", &self.inner.name)
            .finish()
    }
}

impl FileChannel {
    /// Opens (recovering) or creates the channel described by `config`, on the I/O backend it
    /// names.
    pub fn open(name: &str, config: FileChannelConfig) -> Result<FileChannel, ChannelError> {
        let fs = io::backend(config.io);
        Self::open_with(name, config, fs).map(|(c, _)| c)
    }

    /// Opens on a given filesystem (tests use `io::mem::MemFs`), returning what recovery did.
    pub fn open_with(
        name: &str,
        config: FileChannelConfig,
        fs: Arc<dyn Vfs>,
    ) -> Result<(FileChannel, RecoveryReport), ChannelError> {
        Self::open_inner(name, config, fs, false)
    }

    /// `full_replay` ignores the checkpoints and replays every segment: `repair` uses it to
    /// meet corruption in parts of the log a checkpoint already covers.
    pub(crate) fn open_inner(
        name: &str,
        config: FileChannelConfig,
        fs: Arc<dyn Vfs>,
        full_replay: bool,
    ) -> Result<(FileChannel, RecoveryReport), ChannelError> {
        config.validate(name)?;
        let ioe = |file: &Path, operation: &'static str, e: std::io::Error| ChannelError::Io {
            channel: name.to_string(),
            file: file.to_path_buf(),
            operation,
            cause: e.to_string(),
        };
        fs.create_dir_all(&config.checkpoint_dir)
            .map_err(|e| ioe(&config.checkpoint_dir, "creating", e))?;
        for d in &config.data_dirs {
            fs.create_dir_all(d).map_err(|e| ioe(d, "creating", e))?;
        }
        let lock = if fs.kind() == "mem" {
            None
        } else {
            Some(lock_dir(name, &config.checkpoint_dir)?)
        };
        let started = Instant::now();
        let rec = recovery::recover(
            &fs,
            name,
            Some(&config.checkpoint_dir),
            &config.data_dirs,
            config.corruption_policy,
            false,
            full_replay,
        )?;

        // Sealed segments for reading.
        let mut segments = BTreeMap::new();
        for (&id, path) in &rec.segments {
            // A segment removed by recovery (cut-short creation) is skipped.
            let Ok(file) = fs.open(path, false) else {
                continue;
            };
            segments.insert(
                id,
                Arc::new(SegmentHandle::new(id, path.clone(), file, true)),
            );
        }
        let spares = Arc::new(Spares::open(
            &fs,
            name,
            &config.data_dirs,
            config.spare_segments,
        ));
        // Writing always continues in a new segment: sealed segments never change.
        let prepared = prepare_segment(&fs, name, &config, &spares, rec.next_segment_id)?;
        let active = publish_segment(&fs, &prepared).map_err(|e| ChannelError::Io {
            channel: name.to_string(),
            file: prepared.path.clone(),
            operation: "naming the new segment",
            cause: e.to_string(),
        })?;
        segments.insert(active.id, active.clone());
        let applied = Position {
            segment: active.id,
            offset: SEGMENT_HEADER_LEN as u64,
        };
        let mut queue = rec.queue;
        queue.applied = applied;
        let free = fs.free_space(&config.data_dirs[0]).unwrap_or(u64::MAX);
        let report = rec.report;
        let inner = Arc::new(Inner {
            name: name.to_string(),
            log: Mutex::new(LogWriter {
                active: active.clone(),
                write_off: SEGMENT_HEADER_LEN as u64,
                alloc_end: initial_alloc(&config),
                next_seq: rec.next_seq,
                pending: VecDeque::new(),
                free: FreeSpace {
                    checked_at: Instant::now(),
                    free,
                    written_since: 0,
                },
                stage: (config.fsync == FsyncPolicy::EveryCommit && config.direct_io)
                    .then(|| Stage::new(&segment::encode_header(active.id))),
                spare: Vec::new(),
                journal: None,
            }),
            block_write: Mutex::new(()),
            group: GroupCommit::new(applied),
            queue: Mutex::new(queue),
            available_cv: Condvar::new(),
            room_cv: Condvar::new(),
            segments: RwLock::new(segments),
            recent: Mutex::new(RecentRecords::default()),
            bufs: Arc::default(),
            poison: OnceLock::new(),
            closed: AtomicBool::new(false),
            abandoned: AtomicBool::new(false),
            counters: Counters::default(),
            ckpt: Mutex::new(CheckpointState {
                next_generation: rec.next_generation,
                retained: rec.checkpoints,
            }),
            bg: Arc::new(Background::default()),
            bg_threads: Mutex::new(vec![]),
            spares,
            lock: Mutex::new(lock),
            cfg: config,
            fs,
        });
        let size = inner.queue.lock().size;
        tracing::info!(
            channel = name,
            events = size,
            records_replayed = report.records_replayed,
            checkpoint = ?report.checkpoint,
            full_replay = report.full_replay,
            elapsed_ms = started.elapsed().as_millis() as u64,
            io = inner.fs.kind(),
            "file channel open"
        );
        if rec.dirty {
            // Recovery did work (replay, truncation, skipped corruption): record the result so
            // the next open does not repeat it.
            inner.checkpoint()?;
        }
        // Only now, with the recovered state (journal entries included) in a checkpoint, may
        // the journal start over.
        {
            let mut log = inner.log.lock();
            if log.stage.is_some() {
                log.journal = Some(
                    journal::TakeJournal::create(&inner.fs, &inner.cfg.checkpoint_dir).map_err(
                        |e| ioe(&journal::paths(&inner.cfg.checkpoint_dir)[0], "creating", e),
                    )?,
                );
            }
        }
        start_background(&inner);
        Ok((FileChannel { inner }, report))
    }

    /// Writes a checkpoint now (also done on an interval and at close).
    pub fn checkpoint(&self) -> Result<(), ChannelError> {
        self.inner.checkpoint()
    }

    /// Stops the channel as `kill -9` would: no final checkpoint, background threads stopped.
    /// For crash tests; the next open recovers from the log.
    #[doc(hidden)]
    pub fn simulate_crash(&self) {
        self.inner.abandoned.store(true, Ordering::SeqCst);
        self.inner.closed.store(true, Ordering::SeqCst);
        self.inner.stop_background();
        self.inner.available_cv.notify_all();
        self.inner.room_cv.notify_all();
        // A killed process's lock dies with it.
        self.inner.lock.lock().take();
    }

    /// Heap bytes used by the queue's index (for the per-event memory figure).
    pub fn index_bytes(&self) -> usize {
        self.inner.queue.lock().index_bytes()
    }
}

/// Takes the channel's lock file so two processes never share its directories.
fn lock_dir(name: &str, dir: &Path) -> Result<std::fs::File, ChannelError> {
    let path = dir.join("in_use.lock");
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| ChannelError::Io {
            channel: name.to_string(),
            file: path.clone(),
            operation: "creating",
            cause: e.to_string(),
        })?;
    // A process we fork (an exec source, a test's child) briefly shares the lock file's open
    // description until it execs, so a reopen right after a close can find the lock held for
    // a moment: retry for a bounded time before calling it taken.
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut pause = Duration::from_millis(1);
    loop {
        match f.try_lock() {
            Ok(()) => return Ok(f),
            Err(std::fs::TryLockError::WouldBlock) if Instant::now() < deadline => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(100));
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(ChannelError::Locked {
                    channel: name.to_string(),
                    dir: dir.to_path_buf(),
                    lock: path,
                })
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(ChannelError::Io {
                    channel: name.to_string(),
                    file: path,
                    operation: "locking",
                    cause: e.to_string(),
                })
            }
        }
    }
}

fn initial_alloc(cfg: &FileChannelConfig) -> u64 {
    PREALLOC_STEP.min(cfg.max_file_size)
}

/// A new segment made but not yet part of the log: its file has the header (synced) under a
/// name recovery does not read (`seg-<id>.new`, or the spare's name). [`publish_segment`]
/// gives it the segment's name.
struct Prepared {
    id: u64,
    tmp: PathBuf,
    path: PathBuf,
}

/// Makes segment `id` in its data dir, from a spare when one is ready, else from fresh space:
/// space preallocated, header written and synced. ENOSPC is `DiskFull`. Nothing in the log
/// changes, so an error here leaves the channel as it was.
fn prepare_segment(
    fs: &Arc<dyn Vfs>,
    name: &str,
    cfg: &FileChannelConfig,
    spares: &Spares,
    id: u64,
) -> Result<Prepared, ChannelError> {
    let dir = &cfg.data_dirs[(id % cfg.data_dirs.len() as u64) as usize];
    let path = dir.join(segment::file_name(id));
    let header = segment::encode_header(id);
    if let Some(spare) = spares.take(dir) {
        match spare::prepare(fs, &spare, &header, initial_alloc(cfg)) {
            Ok(()) => {
                return Ok(Prepared {
                    id,
                    tmp: spare,
                    path,
                })
            }
            Err(e) => {
                tracing::warn!(channel = name, file = %spare.display(), error = %e, "could not reuse a spare segment; deleting it and using fresh space");
                let _ = fs.remove(&spare);
            }
        }
    }
    let tmp = spare::new_segment_path(&path);
    let fail = |operation: &'static str, e: std::io::Error| {
        if e.raw_os_error() == Some(28) {
            let free = fs.free_space(dir).unwrap_or(0);
            ChannelError::DiskFull {
                channel: name.to_string(),
                dir: dir.clone(),
                free,
                required: initial_alloc(cfg),
            }
        } else {
            ChannelError::Io {
                channel: name.to_string(),
                file: tmp.clone(),
                operation,
                cause: e.to_string(),
            }
        }
    };
    let file = fs.open(&tmp, true).map_err(|e| fail("creating", e))?;
    let r = file
        .allocate(0, initial_alloc(cfg))
        .map_err(|e| fail("preallocating", e))
        .and_then(|()| {
            file.write_at(&header, 0)
                .map_err(|e| fail("writing the header of", e))
        })
        .and_then(|()| file.sync_data().map_err(|e| fail("syncing", e)));
    if let Err(e) = r {
        // Nothing refers to the file: remove it now (or the next open does).
        let _ = fs.remove(&tmp);
        return Err(e);
    }
    Ok(Prepared { id, tmp, path })
}

/// Gives a prepared segment its name and makes the directory entry durable. Opened again by
/// the new name: a backend may open the file a second time by path (std's `O_DIRECT`
/// descriptor), which must not meet the old name gone.
fn publish_segment(fs: &Arc<dyn Vfs>, p: &Prepared) -> std::io::Result<Arc<SegmentHandle>> {
    fs.rename(&p.tmp, &p.path)?;
    if let Some(dir) = p.path.parent() {
        fs.sync_dir(dir)?;
    }
    let file = fs.open(&p.path, false)?;
    Ok(Arc::new(SegmentHandle::new(
        p.id,
        p.path.clone(),
        file,
        false,
    )))
}

/// The background threads' signals, shared with them apart from the channel itself.
#[derive(Default)]
struct Background {
    stop: Mutex<bool>,
    /// Cuts the tickers' waits short: at stop, and for an early checkpoint.
    cv: Condvar,
    /// Set when a take commit wrote a record that needs syncing; the flusher waits on it.
    flush_wanted: Mutex<bool>,
    flush_cv: Condvar,
}

fn start_background(inner: &Arc<Inner>) {
    let mut threads = inner.bg_threads.lock();
    let weak = Arc::downgrade(inner);
    let every = inner.cfg.checkpoint_interval;
    threads.push(spawn_ticker(weak.clone(), inner.bg.clone(), every, "checkpoint", |i| {
        if let Err(e) = i.checkpoint() {
            tracing::error!(channel = %i.name, error = %e, "checkpoint failed; the previous one stays valid and the log is kept until one succeeds");
        }
    }));
    if inner.cfg.fsync == FsyncPolicy::EveryCommit {
        threads.push(spawn_flusher(weak.clone(), inner.bg.clone()));
    }
    if let FsyncPolicy::Interval(every) = inner.cfg.fsync {
        threads.push(spawn_ticker(weak, inner.bg.clone(), every, "fsync", |i| {
            let _ = i.sync_now();
        }));
    }
}

/// The flusher: syncs (and so applies) take records as soon as they are written, so takes
/// never wait for the disk and still become durable within one sync. Like the tickers, it
/// holds the channel only while it works.
fn spawn_flusher(weak: Weak<Inner>, bg: Arc<Background>) -> std::thread::JoinHandle<()> {
    std::thread::Builder::new()
        .name("flumen-flusher".into())
        .spawn(move || loop {
            {
                let mut wanted = bg.flush_wanted.lock();
                while !*wanted {
                    if *bg.stop.lock() {
                        return;
                    }
                    bg.flush_cv.wait(&mut wanted);
                }
                *wanted = false;
            }
            let Some(inner) = weak.upgrade() else { return };
            // Take records are not latency-critical (their commit already returned), so give
            // a put's group sync a moment to cover them before spending a sync of our own:
            // while puts flow, takes then cost no extra fdatasync.
            let target = inner.log.lock().position();
            if inner.group.covered_within(target, TAKE_SYNC_GRACE) {
                continue;
            }
            // A simulated kill -9 stops this thread: a killed process writes nothing more.
            if inner.abandoned.load(Ordering::Acquire) {
                return;
            }
            if inner.flush().is_err() {
                // Poisoned: the error reaches every committer; nothing more to sync.
                return;
            }
        })
        .unwrap_or_else(|e| {
            tracing::error!(error = %e, "could not start the flusher thread");
            std::thread::spawn(|| {})
        })
}

/// A thread that runs `tick` every `every` until the channel stops or is dropped. It holds the
/// channel only while it ticks, so that dropping the last handle closes it at once (its
/// final checkpoint and lock release do not wait for the next tick).
fn spawn_ticker(
    weak: Weak<Inner>,
    bg: Arc<Background>,
    every: Duration,
    what: &'static str,
    tick: fn(&Inner),
) -> std::thread::JoinHandle<()> {
    std::thread::Builder::new()
        .name(format!("flumen-{what}"))
        .spawn(move || loop {
            {
                let mut stop = bg.stop.lock();
                if *stop {
                    return;
                }
                // A timed wait on the stop flag: a periodic timer that close() can cut short.
                let _ = bg.cv.wait_for(&mut stop, every);
                if *stop {
                    return;
                }
            }
            let Some(inner) = weak.upgrade() else { return };
            tick(&inner);
        })
        .unwrap_or_else(|e| {
            tracing::error!(error = %e, "could not start the {what} thread");
            std::thread::spawn(|| {})
        })
}

impl Inner {
    fn check_open(&self) -> Result<(), ChannelError> {
        if let Some(p) = self.poison.get() {
            return Err(p.clone());
        }
        if self.closed.load(Ordering::Acquire) {
            return Err(ChannelError::Closed {
                channel: self.name.clone(),
            });
        }
        Ok(())
    }

    /// Poisons the channel (first failure wins) and returns the error every caller gets.
    fn poison(&self, file: &Path, operation: &'static str, e: &std::io::Error) -> ChannelError {
        let err = self
            .poison
            .get_or_init(|| {
                tracing::error!(channel = %self.name, file = %file.display(), operation, error = %e, "I/O failure: the channel is poisoned and refuses commits until it is reopened");
                ChannelError::Poisoned {
                    channel: self.name.clone(),
                    file: file.to_path_buf(),
                    operation,
                    cause: e.to_string(),
                }
            })
            .clone();
        self.group.poison();
        self.available_cv.notify_all();
        self.room_cv.notify_all();
        err
    }

    fn poisoned_error(&self) -> ChannelError {
        self.poison.get().cloned().unwrap_or(ChannelError::Closed {
            channel: self.name.clone(),
        })
    }

    /// Waits for room for `n` events and `bytes` body bytes, up to `keep-alive`, and
    /// reserves it.
    fn reserve_room(&self, n: u64, bytes: u64) -> Result<(), ChannelError> {
        let deadline = Instant::now() + self.cfg.keep_alive;
        let mut q = self.queue.lock();
        loop {
            let events_ok = q.visible_size() + q.reserved_events + n <= self.cfg.capacity;
            let bytes_ok = self.cfg.byte_capacity.is_none_or(|cap| {
                q.bytes + q.reserved_bytes + bytes <= cap || q.size + q.reserved_events == 0
            });
            if events_ok && bytes_ok {
                q.reserved_events += n;
                q.reserved_bytes += bytes;
                return Ok(());
            }
            self.check_open()?;
            if self.room_cv.wait_until(&mut q, deadline).timed_out() {
                let limit = if events_ok {
                    format!("byteCapacity {} bytes", self.cfg.byte_capacity.unwrap_or(0))
                } else {
                    format!("capacity {} events", self.cfg.capacity)
                };
                return Err(ChannelError::ChannelFull {
                    channel: self.name.clone(),
                    limit,
                    keep_alive: self.cfg.keep_alive,
                });
            }
        }
    }

    fn release_room(&self, n: u64, bytes: u64) {
        let mut q = self.queue.lock();
        q.reserved_events -= n;
        q.reserved_bytes -= bytes;
        drop(q);
        self.room_cv.notify_all();
    }

    /// Refuses puts below `minimumRequiredSpace`, re-reading the free space at most once a
    /// second unless the estimate gets close to the floor.
    fn check_space(&self, log: &mut LogWriter, len: u64) -> Result<(), ChannelError> {
        let min = self.cfg.minimum_required_space;
        if min == 0 {
            return Ok(());
        }
        // The active segment's data dir, computed only off the fast path (a put that finds
        // plenty of space checks nothing but the estimate).
        let dir = |log: &LogWriter| {
            log.active
                .path
                .parent()
                .map_or_else(|| self.cfg.data_dirs[0].clone(), Path::to_path_buf)
        };
        let refresh = |log: &mut LogWriter| {
            if let Ok(free) = self.fs.free_space(&dir(log)) {
                log.free = FreeSpace {
                    checked_at: Instant::now(),
                    free,
                    written_since: 0,
                };
            }
        };
        let estimate = |f: &FreeSpace| f.free.saturating_sub(f.written_since);
        let stale = log.free.checked_at.elapsed() > Duration::from_secs(1);
        if stale || estimate(&log.free) < min.saturating_add(len).saturating_add(PREALLOC_STEP) {
            refresh(log);
        }
        let mut free = estimate(&log.free);
        if free < min.saturating_add(len) && self.spares.release_all() > 0 {
            tracing::warn!(channel = %self.name, free, minimum_required_space = min, "free space is below minimumRequiredSpace: deleted the spare segments");
            refresh(log);
            free = estimate(&log.free);
        }
        if free < min.saturating_add(len) {
            return Err(ChannelError::DiskFull {
                channel: self.name.clone(),
                dir: dir(log),
                free,
                required: min,
            });
        }
        Ok(())
    }

    /// Makes room for a record of `len` bytes in the active segment: rolls to a new segment
    /// when this one is full, and preallocates ahead. Errors here happen before anything is
    /// written, so they refuse the commit without poisoning, except a failed seal or header
    /// sync, which poisons.
    fn make_room(&self, log: &mut LogWriter, len: u64) -> Result<(), ChannelError> {
        let first_record = log.write_off == SEGMENT_HEADER_LEN as u64;
        if log.write_off + len > self.cfg.max_file_size && !first_record {
            self.roll(log)?;
        }
        // Staged writes are padded to whole blocks: the padding must stay inside the
        // reservation too, or a write could extend the file (and meet ENOSPC) after all.
        let need = (log.write_off + len).next_multiple_of(io::DIRECT_ALIGN as u64);
        if need > log.alloc_end {
            let want = (need - log.alloc_end).max(PREALLOC_STEP);
            if let Err(e) = log.active.file.allocate(log.alloc_end, want) {
                return Err(if e.raw_os_error() == Some(28) {
                    ChannelError::DiskFull {
                        channel: self.name.clone(),
                        dir: log
                            .active
                            .path
                            .parent()
                            .map_or_else(PathBuf::new, Path::to_path_buf),
                        free: self.fs.free_space(&log.active.path).unwrap_or(0),
                        required: want,
                    }
                } else {
                    ChannelError::Io {
                        channel: self.name.clone(),
                        file: log.active.path.clone(),
                        operation: "preallocating",
                        cause: e.to_string(),
                    }
                });
            }
            log.alloc_end += want;
        }
        Ok(())
    }

    /// Seals the active segment and starts the next.
    fn roll(&self, log: &mut LogWriter) -> Result<(), ChannelError> {
        let old = log.active.clone();
        // The next segment is made (header durable) before the old one is sealed: if making it
        // fails (ENOSPC, say), the old segment stays the active one, unchanged, and a later
        // commit simply tries again.
        let next = prepare_segment(&self.fs, &self.name, &self.cfg, &self.spares, old.id + 1)?;
        // IMPORTANT: the old segment is sealed, trimmed and synced before the next one gets its
        // segment name. A reused file holds bytes of its former life after its last record,
        // and only the last segment may end in bytes that are not records (a torn tail).
        let sealed = self.seal_for_roll(log, &old);
        let published = sealed.and_then(|()| {
            publish_segment(&self.fs, &next)
                .map_err(|e| self.poison(&next.path, "naming the new segment", &e))
        });
        let next = match published {
            Ok(h) => h,
            Err(e) => {
                // Poisoned: the half-made segment is removed now or at the next open.
                let _ = self.fs.remove(&next.tmp);
                return Err(e);
            }
        };
        if let Some(stage) = log.stage.as_mut() {
            stage.restart_segment(&segment::encode_header(next.id));
        }
        old.seal();
        self.segments.write().insert(next.id, next.clone());
        log.active = next;
        log.write_off = SEGMENT_HEADER_LEN as u64;
        log.alloc_end = initial_alloc(&self.cfg);
        tracing::debug!(channel = %self.name, segment = log.active.id, "rolled to a new segment");
        if self.spares.wanted() && self.oldest_segment_finished(log.active.id) {
            // A checkpoint now rather than at the next interval turns finished segments into
            // spares while the log still needs them: under sustained load the interval alone
            // (30 s is 3 GB at 100 MB/s) would leave most new segments fresh.
            self.bg.cv.notify_all();
        }
        Ok(())
    }

    /// Whether the oldest segment holds no queued event any more (every one taken and
    /// committed), so that a checkpoint could retire it.
    fn oldest_segment_finished(&self, active: u64) -> bool {
        let Some(oldest) = self.segments.read().keys().next().copied() else {
            return false;
        };
        oldest < self.queue.lock().first_live_segment().unwrap_or(active)
    }

    /// Makes the active segment `old` final on disk before a roll: the staged records no
    /// leader has written yet (after any leader's write still running into it), one sync so
    /// that a sync of the next segment is all a later group commit needs, then the trim to
    /// its last record, synced too. Any failure poisons.
    fn seal_for_roll(&self, log: &mut LogWriter, old: &SegmentHandle) -> Result<(), ChannelError> {
        if log.stage.is_some() {
            let writing = self.block_write.lock();
            if let Some(w) = log.take_staged() {
                self.write_staged(old, &w)?;
                log.recycle(w);
            }
            drop(writing);
        }
        if let Err(e) = old.file.sync_data() {
            return Err(self.poison(&old.path, "fdatasync", &e));
        }
        if let Err(e) = old
            .file
            .set_len(log.write_off)
            .and_then(|()| old.file.sync_data())
        {
            return Err(self.poison(&old.path, "truncating", &e));
        }
        self.counters.fsyncs.fetch_add(2, Ordering::Relaxed);
        Ok(())
    }

    /// After a record was written: under every-commit it waits for its group sync; under the
    /// relaxed policies it is applied at once (still under the log lock, to keep log order).
    fn apply_now(&self, log: &mut LogWriter) {
        let upto = log.position();
        let ops = log.drain_upto(upto);
        self.apply(ops);
    }

    /// The group-commit leader's work: sync the active segment and apply every record that
    /// sync covered, in log order, before anyone is woken.
    /// With a stage, the leader first writes every staged record (its own group's) in one
    /// block write, outside the log lock so the next group keeps staging meanwhile, then hands
    /// off leadership so the next group's write overlaps this fdatasync (one write and one
    /// flush in flight at a time measured about 1.2-1.4x a write-then-flush loop on the
    /// benchmark disk). Records are applied under the log lock, so that two leaders whose
    /// syncs finish out of order still apply in log order.
    fn lead_sync(&self, handoff: &dyn Fn(Position)) -> Result<Position, ChannelError> {
        let (target, seg, staged, writing) = {
            let mut log = self.log.lock();
            let staged = log.take_staged();
            // Taken even with nothing to write: a take commit's write taken from the stage
            // earlier may still be running, and this sync must start after it completed.
            let writing = log.stage.is_some().then(|| self.block_write.lock());
            (log.position(), log.active.clone(), staged, writing)
        };
        if let Some(w) = &staged {
            self.write_staged(&seg, w)?;
        }
        drop(writing);
        if staged.is_some() {
            handoff(target);
        }
        if let Err(e) = seg.file.sync_data() {
            return Err(self.poison(&seg.path, "fdatasync", &e));
        }
        self.counters.fsyncs.fetch_add(1, Ordering::Relaxed);
        let mut log = self.log.lock();
        if let Some(w) = staged {
            log.recycle(w);
        }
        let ops = log.drain_upto(target);
        self.apply(ops);
        Ok(target)
    }

    /// Background sync for `fsync = interval:<ms>`.
    fn sync_now(&self) -> Result<(), ChannelError> {
        if self.poison.get().is_some() {
            return Err(self.poisoned_error());
        }
        let seg = self.log.lock().active.clone();
        if let Err(e) = seg.file.sync_data() {
            return Err(self.poison(&seg.path, "fdatasync", &e));
        }
        self.counters.fsyncs.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn apply(&self, ops: Vec<Pending>) {
        if ops.is_empty() {
            return;
        }
        let mut puts = false;
        let mut takes = false;
        {
            let mut recent = self.recent.lock();
            for p in &ops {
                if let PendingOp::Put {
                    segment,
                    entry,
                    record,
                    ..
                } = &p.op
                {
                    recent.insert((*segment, entry.offset), record.clone());
                }
            }
        }
        let mut q = self.queue.lock();
        for p in ops {
            match p.op {
                PendingOp::Put {
                    segment,
                    entry,
                    body_bytes,
                    ..
                } => {
                    q.reserved_events -= u64::from(entry.count);
                    q.reserved_bytes -= body_bytes;
                    q.apply_put(segment, entry, body_bytes, p.end);
                    puts = true;
                }
                PendingOp::Take {
                    ranges,
                    body_bytes,
                    events,
                } => {
                    q.pending_taken -= events;
                    q.apply_take(&ranges, body_bytes, p.end);
                    takes = true;
                }
            }
        }
        drop(q);
        if puts {
            self.available_cv.notify_all();
        }
        if takes {
            self.room_cv.notify_all();
        }
    }

    /// Waits until the record ending at `end` is durable and applied.
    fn wait_durable(&self, end: Position) -> Result<(), ChannelError> {
        if self.cfg.fsync != FsyncPolicy::EveryCommit {
            return Ok(());
        }
        self.group
            .wait(end, |handoff| self.lead_sync(handoff))
            .map_err(|e| match e {
                WaitError::SyncFailed(e) => e,
                WaitError::Poisoned => self.poisoned_error(),
            })
    }

    /// Writes blocks taken from the stage into `seg` (the caller holds `block_write`); a
    /// failure poisons.
    fn write_staged(&self, seg: &SegmentHandle, w: &StagedWrite) -> Result<(), ChannelError> {
        seg.file
            .write_direct(w.bytes(), w.offset)
            .map_err(|e| self.poison(&seg.path, "write", &e))
    }

    /// Puts a record at `offset` (the writer's position): into the stage, for the leader to
    /// write, or straight into the file.
    fn write_record(
        &self,
        log: &mut LogWriter,
        rec: &[u8],
        offset: u64,
    ) -> Result<(), ChannelError> {
        if let Some(stage) = log.stage.as_mut() {
            debug_assert_eq!(stage.end(), offset);
            stage.push(rec);
            return Ok(());
        }
        if let Err(e) = log.active.file.write_at(rec, offset) {
            return Err(self.poison(&log.active.path, "write", &e));
        }
        Ok(())
    }

    fn commit_put(&self, mut enc: PutBatchEncoder) -> Result<(), ChannelError> {
        let n = u64::from(enc.count());
        if n == 0 {
            return Ok(());
        }
        self.check_open()?;
        let body_bytes = enc.body_bytes();
        self.reserve_room(n, body_bytes)?;
        let len = enc.record_len() as u64;
        let written = (|| {
            let mut log = self.log.lock();
            self.check_open()?;
            self.check_space(&mut log, len)?;
            self.make_room(&mut log, len)?;
            let segment = log.active.id;
            let offset = log.write_off;
            let first_seq = log.next_seq;
            let rec = enc.finish(segment, first_seq, now_ms());
            self.write_record(&mut log, rec, offset)?;
            let record = Bytes::from_owner(PooledRecord {
                buf: std::mem::take(&mut enc).into_vec(),
                pool: Arc::clone(&self.bufs),
            });
            log.write_off += len;
            log.free.written_since += len;
            log.next_seq += n;
            let end = log.position();
            log.pending.push_back(Pending {
                end,
                op: PendingOp::Put {
                    segment,
                    entry: BatchEntry {
                        first_seq,
                        offset: offset as u32,
                        count: n as u32,
                    },
                    body_bytes,
                    record,
                },
            });
            if self.cfg.fsync != FsyncPolicy::EveryCommit {
                self.apply_now(&mut log);
            }
            Ok(end)
        })();
        let end = match written {
            Ok(end) => end,
            Err(e) => {
                self.release_room(n, body_bytes);
                return Err(e);
            }
        };
        if let Err(e) = self.wait_durable(end) {
            // The channel is poisoned. A leader whose sync succeeded (one handed off to can
            // still be syncing when another's fails) may have applied this record, which
            // consumed the reservation; if the record is still pending, it never will be, and
            // the reservation is ours to give back. Leaders drain and apply under the log
            // lock, so the two cannot both happen. Either way the caller sees the error: a
            // durable record reported failed is a duplicate, never a loss.
            if self.log.lock().remove_pending(end) {
                let mut q = self.queue.lock();
                q.reserved_events -= n;
                q.reserved_bytes -= body_bytes;
            }
            self.room_cv.notify_all();
            return Err(e);
        }
        self.counters.commits.fetch_add(1, Ordering::Relaxed);
        self.counters.put_successes.fetch_add(n, Ordering::Relaxed);
        Ok(())
    }

    /// Commits a take: writes its TakeCommit record (with any staged records before it) and
    /// returns. Unlike a put, it does not wait for the fdatasync: the flusher thread (or the next put's group sync) makes it
    /// durable within one sync. Nothing can be lost by that: if power fails first, the events
    /// are delivered again after recovery (at-least-once), so a sink is never held back by the
    /// disk's sync latency.
    fn commit_take(&self, ranges: &[(u64, u64)], body_bytes: u64) -> Result<(), ChannelError> {
        if ranges.is_empty() {
            return Ok(());
        }
        // Takes are allowed when puts are refused for space, so that sinks can drain a full
        // disk; only poison and close stop them.
        self.check_open()?;
        let events: u64 = ranges.iter().map(|(s, e)| e - s).sum();
        // Counted before the record can be applied (which uncounts it).
        self.queue.lock().pending_taken += events;
        let len = take_commit_len(ranges.len()) as u64;
        let written = (|| {
            let mut log = self.log.lock();
            self.check_open()?;
            self.make_room(&mut log, len)?;
            let mut buf = Vec::with_capacity(len as usize);
            encode_take_commit(log.active.id, ranges, body_bytes, &mut buf);
            let offset = log.write_off;
            self.write_record(&mut log, &buf, offset)?;
            log.write_off += len;
            let end = log.position();
            log.pending.push_back(Pending {
                end,
                op: PendingOp::Take {
                    ranges: ranges.to_vec(),
                    body_bytes,
                    events,
                },
            });
            if self.cfg.fsync != FsyncPolicy::EveryCommit {
                self.apply_now(&mut log);
            }
            // A staged take record must still reach the kernel before the commit returns, as
            // an unstaged one does, so that a process crash (kill -9) cannot bring its events
            // back: the journal gets a copy. Without journal space, everything staged is
            // written now instead; the next group sync (or the flusher's) makes it durable.
            let log = &mut *log;
            if log.stage.is_none() {
                return Ok(None);
            }
            if let Some(j) = log.journal.as_mut() {
                match j.append(log.active.id, offset, &buf) {
                    Ok(()) => return Ok(None),
                    Err(journal::AppendError::Full) => {}
                    Err(journal::AppendError::Io(e)) => {
                        return Err(self.poison(j.path(), "write", &e));
                    }
                }
            }
            let Some(staged) = log.take_staged() else {
                return Ok(None);
            };
            Ok(Some((staged, log.active.clone(), self.block_write.lock())))
        })();
        let written = written.and_then(|staged| {
            let Some((w, seg, writing)) = staged else {
                return Ok(());
            };
            let r = self.write_staged(&seg, &w);
            drop(writing);
            self.log.lock().recycle(w);
            r
        });
        if let Err(e) = written {
            {
                let mut q = self.queue.lock();
                q.pending_taken -= events;
                q.return_taken(ranges);
            }
            self.available_cv.notify_all();
            return Err(e);
        }
        self.room_cv.notify_all();
        if self.cfg.fsync == FsyncPolicy::EveryCommit {
            let mut wanted = self.bg.flush_wanted.lock();
            *wanted = true;
            self.bg.flush_cv.notify_one();
        }
        self.counters.commits.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Makes everything written so far durable and applied (every-commit mode); used by the
    /// flusher thread and at close.
    fn flush(&self) -> Result<(), ChannelError> {
        let target = self.log.lock().position();
        self.wait_durable(target)
    }

    fn return_taken(&self, ranges: &[(u64, u64)]) {
        if ranges.is_empty() {
            return;
        }
        self.queue.lock().return_taken(ranges);
        self.available_cv.notify_all();
    }

    /// Reads the events of `[s, e)` (all in one batch entry of `segment`) into `out`.
    fn read_events(
        &self,
        segment: u64,
        entry: BatchEntry,
        s: u64,
        e: u64,
        out: &mut Vec<Event>,
    ) -> Result<u64, ChannelError> {
        let cached = self
            .recent
            .lock()
            .map
            .get(&(segment, entry.offset))
            .cloned();
        let handle = self.segments.read().get(&segment).cloned();
        let path = handle.as_ref().map_or_else(
            || PathBuf::from(segment::file_name(segment)),
            |h| h.path.clone(),
        );
        let corrupt = |reason: String| ChannelError::Corrupt {
            channel: self.name.clone(),
            file: path.clone(),
            offset: entry.offset.into(),
            reason,
        };
        let from_disk = cached.is_none();
        let rec = match cached {
            Some(r) => r,
            None => {
                let h = handle.ok_or_else(|| corrupt("the segment file is gone".into()))?;
                h.read_record(entry.offset).map_err(|e| ChannelError::Io {
                    channel: self.name.clone(),
                    file: h.path.clone(),
                    operation: "reading",
                    cause: e.to_string(),
                })?
            }
        };
        // Bytes read back from disk are verified; the cached copy is the very buffer that was
        // written, so its CRC would only re-check our own memory.
        let payload = if from_disk {
            match record::decode(segment, &rec) {
                ScanOutcome::Record(r) => r.payload,
                ScanOutcome::End => return Err(corrupt("expected a record, found zeros".into())),
                ScanOutcome::Bad(err) => return Err(corrupt(err.to_string())),
            }
        } else {
            rec.get(RECORD_HEADER_LEN..)
                .ok_or_else(|| corrupt("cached record shorter than its header".into()))?
        };
        let view = PutBatchView::parse(payload).map_err(|e| corrupt(e.to_string()))?;
        if view.first_seq != entry.first_seq || view.count != entry.count {
            return Err(corrupt(format!(
                "record holds seqs {}+{}, the index expected {}+{}",
                view.first_seq, view.count, entry.first_seq, entry.count
            )));
        }
        let mut bytes = 0;
        let skip = (s - entry.first_seq) as usize;
        for ev in view.events().skip(skip).take((e - s) as usize) {
            let ev = ev.map_err(|e| corrupt(e.to_string()))?;
            let start = RECORD_HEADER_LEN + ev.body_offset;
            let body = rec.slice(start..start + ev.body.len());
            bytes += body.len() as u64;
            let event = if ev.headers.is_empty() {
                Event::new(body)
            } else {
                let h: Headers = ev
                    .headers
                    .iter()
                    .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
                    .collect();
                Event::with_headers(h, body)
            };
            out.push(event);
        }
        Ok(bytes)
    }

    /// Writes a checkpoint of the applied state, then deletes segments nobody needs.
    fn checkpoint(&self) -> Result<(), ChannelError> {
        if self.poison.get().is_some() || self.abandoned.load(Ordering::Acquire) {
            return Ok(());
        }
        // Apply every record written so far (take records wait for a sync otherwise), so the
        // checkpoint reflects every commit that has returned.
        if self.cfg.fsync == FsyncPolicy::EveryCommit {
            self.flush()?;
            // Every record staged before that flush is durable in the log now, so the journal
            // file retired at the previous checkpoint holds nothing the log lacks.
            let mut log = self.log.lock();
            if let Some(j) = log.journal.as_mut() {
                if let Err(e) = j.rotate() {
                    tracing::warn!(channel = %self.name, file = %j.path().display(), error = %e, "could not empty the take journal; it keeps growing until the next checkpoint");
                }
            }
        }
        let mut ck = self.ckpt.lock();
        let (segs, done, applied, next_seq, bytes, first_live) = {
            let q = self.queue.lock();
            let (segs, done) = q.snapshot();
            (
                segs,
                done,
                q.applied,
                q.end(),
                q.bytes,
                q.first_live_segment(),
            )
        };
        // IMPORTANT: the checkpoint must not point past durable data. Under every-commit,
        // applied records are already durable; otherwise sync first.
        if self.cfg.fsync != FsyncPolicy::EveryCommit {
            self.sync_now()?;
        }
        let c = Checkpoint {
            generation: ck.next_generation,
            written_at_ms: now_ms(),
            replay: applied,
            next_seq,
            queue_bytes: bytes,
            segments: segs
                .into_iter()
                .map(|(id, entries)| CheckpointSegment { id, entries })
                .collect(),
            done,
        };
        let path = match checkpoint::write(&self.fs, &self.cfg.checkpoint_dir, &c) {
            Ok(p) => p,
            Err(e) => {
                self.counters
                    .checkpoint_errors
                    .fetch_add(1, Ordering::Relaxed);
                return Err(ChannelError::Io {
                    channel: self.name.clone(),
                    file: self
                        .cfg
                        .checkpoint_dir
                        .join(crate::format::checkpoint::file_name(c.generation)),
                    operation: "writing checkpoint",
                    cause: e.to_string(),
                });
            }
        };
        ck.next_generation += 1;
        ck.retained
            .insert(0, (c.generation, checkpoint::keep_from(&c)));
        ck.retained.truncate(checkpoint::RETAINED);
        self.counters.checkpoints.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(channel = %self.name, file = %path.display(), "checkpoint written");

        // Segments below every retained checkpoint's needs and below the first live event.
        let active = self.log.lock().active.id;
        let mut boundary = first_live.unwrap_or(active).min(active);
        for &(_, keep) in &ck.retained {
            boundary = boundary.min(keep);
        }
        let doomed: Vec<Arc<SegmentHandle>> = {
            let mut segs = self.segments.write();
            let ids: Vec<u64> = segs.range(..boundary).map(|(&id, _)| id).collect();
            ids.into_iter().filter_map(|id| segs.remove(&id)).collect()
        };
        let mut dirs = vec![];
        let (mut kept, mut deleted) = (0, 0);
        for h in doomed {
            // Kept as a spare only when nothing else holds the segment: a reader's mapping
            // must never see the file change length when it is reused.
            let (id, path) = (h.id, h.path.clone());
            let sole = Arc::strong_count(&h) == 1;
            drop(h);
            if sole && self.spares.offer(&path, id) {
                kept += 1;
            } else if let Err(e) = self.fs.remove(&path) {
                tracing::warn!(channel = %self.name, file = %path.display(), error = %e, "could not delete a finished segment; will retry at the next open");
                continue;
            } else {
                deleted += 1;
            }
            if let Some(d) = path.parent() {
                dirs.push(d.to_path_buf());
            }
        }
        dirs.dedup();
        for d in dirs {
            let _ = self.fs.sync_dir(&d);
        }
        if kept + deleted > 0 {
            tracing::debug!(channel = %self.name, kept, deleted, "finished segments kept as spares or deleted");
        }
        Ok(())
    }

    fn stop_background(&self) {
        *self.bg.stop.lock() = true;
        self.bg.cv.notify_all();
        {
            // Under the flusher's mutex, so it is either about to see the stop flag or already
            // waiting for this notification.
            let _wanted = self.bg.flush_wanted.lock();
            self.bg.flush_cv.notify_all();
        }
        let threads: Vec<_> = self.bg_threads.lock().drain(..).collect();
        let me = std::thread::current().id();
        for t in threads {
            // The last handle can be dropped by a background thread itself (it upgraded its
            // weak reference): never join oneself.
            if t.thread().id() != me {
                let _ = t.join();
            }
        }
    }

    fn close(&self) -> Result<(), ChannelError> {
        if self.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        self.stop_background();
        self.available_cv.notify_all();
        self.room_cv.notify_all();
        if self.poison.get().is_some() || self.abandoned.load(Ordering::Acquire) {
            self.lock.lock().take();
            return Ok(());
        }
        // Make every written record durable and applied, so the final checkpoint covers
        // them all and the next open replays nothing.
        if self.cfg.fsync == FsyncPolicy::EveryCommit {
            if let Err(e) = self.flush() {
                self.lock.lock().take();
                return Err(e);
            }
        }
        let r = self.checkpoint();
        if r.is_ok() {
            // A reused segment holds old bytes after its last record: trimmed, the next open
            // finds a clean end instead of a torn tail. Losing this trim loses nothing.
            let log = self.log.lock();
            if let Err(e) = log.active.file.set_len(log.write_off) {
                tracing::warn!(channel = %self.name, file = %log.active.path.display(), error = %e, "could not trim the last segment at close; the next open truncates it instead");
            }
        }
        self.lock.lock().take();
        tracing::info!(channel = %self.name, "file channel closed");
        r
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Err(e) = self.close() {
            tracing::error!(channel = %self.name, error = %e, "final checkpoint failed; the next open replays the log");
        }
    }
}

impl Channel for FileChannel {
    fn name(&self) -> &str {
        &self.inner.name
    }

    fn put_transaction(&self) -> Box<dyn PutTransaction> {
        Box::new(FilePut {
            enc: PutBatchEncoder::with_buffer(self.inner.bufs.get()),
            inner: self.inner.clone(),
        })
    }

    fn take_transaction(&self) -> Box<dyn TakeTransaction> {
        Box::new(FileTake {
            inner: self.inner.clone(),
            ranges: vec![],
            count: 0,
            body_bytes: 0,
        })
    }

    fn wait_available(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut q = self.inner.queue.lock();
        loop {
            if q.available() > 0 {
                return true;
            }
            if self.inner.closed.load(Ordering::Acquire) || self.inner.poison.get().is_some() {
                return false;
            }
            if self
                .inner
                .available_cv
                .wait_until(&mut q, deadline)
                .timed_out()
            {
                return q.available() > 0;
            }
        }
    }

    fn stats(&self) -> ChannelStats {
        let c = &self.inner.counters;
        let (size, bytes) = {
            let q = self.inner.queue.lock();
            (q.visible_size(), q.bytes)
        };
        ChannelStats {
            size,
            capacity: self.inner.cfg.capacity,
            bytes,
            put_attempts: c.put_attempts.load(Ordering::Relaxed),
            put_successes: c.put_successes.load(Ordering::Relaxed),
            take_attempts: c.take_attempts.load(Ordering::Relaxed),
            take_successes: c.take_successes.load(Ordering::Relaxed),
            put_errors: c.put_errors.load(Ordering::Relaxed),
            take_errors: c.take_errors.load(Ordering::Relaxed),
            commits: c.commits.load(Ordering::Relaxed),
            fsyncs: c.fsyncs.load(Ordering::Relaxed),
            checkpoints: c.checkpoints.load(Ordering::Relaxed),
            poisoned: self.inner.poison.get().is_some(),
        }
    }

    fn close(&self) -> Result<(), ChannelError> {
        self.inner.close()
    }
}

struct FilePut {
    inner: Arc<Inner>,
    enc: PutBatchEncoder,
}

impl PutTransaction for FilePut {
    fn put(&mut self, event: Event) -> Result<(), ChannelError> {
        self.inner
            .counters
            .put_attempts
            .fetch_add(1, Ordering::Relaxed);
        if self.enc.count() as usize >= self.inner.cfg.transaction_capacity {
            self.inner
                .counters
                .put_errors
                .fetch_add(1, Ordering::Relaxed);
            return Err(ChannelError::TransactionFull {
                channel: self.inner.name.clone(),
                capacity: self.inner.cfg.transaction_capacity,
            });
        }
        self.enc
            .push(event.headers(), event.body())
            .map_err(|e| ChannelError::TooLarge {
                channel: self.inner.name.clone(),
                what: "put transaction",
                size: match e {
                    crate::format::FormatError::TooLong { len, .. } => len,
                    _ => 0,
                },
                limit: record::MAX_RECORD_PAYLOAD.into(),
            })
    }

    fn len(&self) -> usize {
        self.enc.count() as usize
    }

    fn commit(mut self: Box<Self>) -> Result<(), ChannelError> {
        let enc = std::mem::take(&mut self.enc);
        let r = self.inner.commit_put(enc);
        if r.is_err() {
            self.inner
                .counters
                .put_errors
                .fetch_add(1, Ordering::Relaxed);
        }
        r
    }

    fn rollback(mut self: Box<Self>) {
        self.inner
            .bufs
            .give(std::mem::take(&mut self.enc).into_vec());
    }
}

struct FileTake {
    inner: Arc<Inner>,
    ranges: Vec<(u64, u64)>,
    count: usize,
    body_bytes: u64,
}

impl TakeTransaction for FileTake {
    fn take_batch(&mut self, max: usize, out: &mut Vec<Event>) -> Result<usize, ChannelError> {
        let inner = &self.inner;
        inner.counters.take_attempts.fetch_add(1, Ordering::Relaxed);
        let room = inner.cfg.transaction_capacity - self.count;
        if room == 0 && max > 0 {
            inner.counters.take_errors.fetch_add(1, Ordering::Relaxed);
            return Err(ChannelError::TransactionFull {
                channel: inner.name.clone(),
                capacity: inner.cfg.transaction_capacity,
            });
        }
        let want = max.min(room) as u64;
        let mut got = vec![];
        let mut reads = vec![];
        {
            let mut q = inner.queue.lock();
            q.reserve_take(want, &mut got);
            for &(s, e) in &got {
                let mut at = s;
                while at < e {
                    let Some(loc) = q.locate(at) else {
                        break;
                    };
                    let stop = e.min(loc.entry.end_seq());
                    reads.push((loc.segment, loc.entry, at, stop));
                    at = stop;
                }
            }
        }
        let before = out.len();
        let mut bytes = 0;
        let mut kept: Vec<(u64, u64)> = Vec::with_capacity(reads.len());
        for &(segment, entry, s, e) in &reads {
            match inner.read_events(segment, entry, s, e, out) {
                Ok(b) => {
                    bytes += b;
                    match kept.last_mut() {
                        Some(last) if last.1 == s => last.1 = e,
                        _ => kept.push((s, e)),
                    }
                }
                Err(err @ ChannelError::Corrupt { .. })
                    if inner.cfg.corruption_policy == CorruptionPolicy::Skip =>
                {
                    // corruptionPolicy = skip: these events cannot be read back, so they are
                    // removed for good (durably, by a take record) and counted, rather than
                    // wedging every sink behind them.
                    tracing::error!(channel = %inner.name, error = %err, events_lost = e - s, "dropping unreadable events (corruptionPolicy = skip)");
                    if let Err(e2) = inner.commit_take(&[(s, e)], 0) {
                        out.truncate(before);
                        inner.return_taken(&kept);
                        return Err(e2);
                    }
                    inner
                        .counters
                        .events_lost
                        .fetch_add(e - s, Ordering::Relaxed);
                }
                Err(err) => {
                    out.truncate(before);
                    inner.return_taken(&got);
                    inner.counters.take_errors.fetch_add(1, Ordering::Relaxed);
                    return Err(err);
                }
            }
        }
        let n = out.len() - before;
        for (s, e) in kept {
            match self.ranges.last_mut() {
                Some(last) if last.1 == s => last.1 = e,
                _ => self.ranges.push((s, e)),
            }
        }
        self.count += n;
        self.body_bytes += bytes;
        inner
            .counters
            .take_successes
            .fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }

    fn len(&self) -> usize {
        self.count
    }

    fn commit(mut self: Box<Self>) -> Result<(), ChannelError> {
        let ranges = std::mem::take(&mut self.ranges);
        let r = self.inner.commit_take(&ranges, self.body_bytes);
        if r.is_err() {
            self.inner
                .counters
                .take_errors
                .fetch_add(1, Ordering::Relaxed);
        }
        r
    }

    fn rollback(self: Box<Self>) {}
}

impl Drop for FileTake {
    fn drop(&mut self) {
        // Rollback, explicit or by drop: the events go back to the head of the queue.
        let ranges = std::mem::take(&mut self.ranges);
        self.inner.return_taken(&ranges);
    }
}
