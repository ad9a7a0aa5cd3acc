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
//! - Lock order (below): a thread takes a lock only while every lock it holds comes earlier.
//! - A checkpoint is written only for state whose records are durable; segments are deleted
//!   only once every event in them is done and no retained checkpoint needs them.
//! - Memory per queued event: 16 bytes per committed put batch (see docs/ARCHITECTURE.md), plus
//!   a bounded cache of recent records; never a heap object per event.
//!
//! Lock order, outermost first. Every lock of the channel is here, each with its rank in
//! `lock_order::Rank`; debug builds check the order on every acquisition (`lock_order`),
//! release builds compile the check out. Locks not listed are leaves below all of these: the
//! I/O backends' own (`MemFs`'s state, io_uring's per-thread ring) and the take journal,
//! which has none (it lives behind `log`).
//! 1. `ckpt` (checkpointer state): held for a whole checkpoint; takes `log` (sync, active
//!    segment), `queue` (snapshot), `segments` and `spares` (retiring segments).
//! 2. `log` (`LogWriter`: active segment, write offset, stage, pending records, journal).
//! 3. `block_write`: taken under `log` by a roll and by a group-commit leader, which keeps it
//!    after letting `log` go, while it writes the stage.
//! 4. `spares` (`Spares::ready`): taken under `log` (roll, `minimumRequiredSpace`) and `ckpt`.
//! 5. `segments` (a read-write lock): under `log` (roll) and `ckpt` (retiring).
//! 6. `recent` (the recent-record cache): under `log` when records are applied.
//! 7. `queue`, whose condvars are `available_cv` (takers) and `room_cv` (putters): under
//!    `log` when records are applied.
//! 8. `group.state` (`GroupCommit`, with each waiter's own condvar): under `log` and
//!    `block_write` when a failure poisons; a leader's sync runs with no lock held.
//! 9. `bufs` (`BufPool`): wherever the last reference to a record buffer goes (under
//!    `recent`, `queue` or `log`).
//! 10. `SegmentHandle::map` (one per segment, never two at once): taken by readers alone.
//! 11. `bg.flush_wanted` (with `bg.flush_cv`), then 12. `bg.stop` (with `bg.cv`): the
//!     background threads' signals; the flusher checks `stop` under `flush_wanted`.
//! 13. `bg_threads`, 14. `lock` (the held directory lock): taken alone, at start and stop.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use parking_lot::Condvar;

use super::{Channel, ChannelError, ChannelStats, PutTransaction, TakeTransaction};
use crate::format::{Position, PutBatchEncoder};
use crate::io::{FileLock, Vfs};

mod background;
mod checkpoint;
mod commit;
mod config;
mod group_commit;
mod journal;
mod lock_order;
mod log;
mod open;
mod queue;
mod read;
mod recovery;
mod roll;
// Public only for the fuzz crate (fuzz/fuzz_targets/segment_scan.rs); not a stable API.
#[doc(hidden)]
pub mod scan;
pub(crate) mod spare;
pub mod tools;

pub use config::{CorruptionPolicy, FileChannelConfig, FsyncPolicy, MAX_SEGMENT_SIZE, TYPE};
pub use group_commit::{GroupCommit, WaitError};
pub use recovery::RecoveryReport;

use background::Background;
use checkpoint::CheckpointState;
use commit::FilePut;
use lock_order::{RankedMutex, RankedRwLock};
use log::{LogWriter, SegmentHandle};
use queue::Queue;
use read::{BufPool, FileTake, RecentRecords};
use spare::Spares;

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

struct Inner {
    name: String,
    cfg: FileChannelConfig,
    fs: Arc<dyn Vfs>,
    log: RankedMutex<LogWriter>,
    /// Held by whoever writes staged blocks to the active segment (the group-commit leader,
    /// outside the log lock, or a roll, under it), so a roll never seals a segment while a
    /// leader's write into it is still running. Taken only under `log` (see the lock order).
    block_write: RankedMutex<()>,
    group: GroupCommit<Position>,
    queue: RankedMutex<Queue>,
    /// Signalled when events become available (takers wait here).
    available_cv: Condvar,
    /// Signalled when room frees up (putters wait here).
    room_cv: Condvar,
    segments: RankedRwLock<BTreeMap<u64, Arc<SegmentHandle>>>,
    recent: RankedMutex<RecentRecords>,
    /// Buffers of records nobody refers to any more, for the next put transactions.
    bufs: Arc<BufPool>,
    poison: OnceLock<ChannelError>,
    closed: AtomicBool,
    /// Set by `simulate_crash`: no final checkpoint, as after kill -9.
    abandoned: AtomicBool,
    counters: Counters,
    ckpt: RankedMutex<CheckpointState>,
    /// What the background threads wait on. They hold it, and only a weak reference to the
    /// channel, so that dropping the last handle closes the channel at once.
    bg: Arc<Background>,
    bg_threads: RankedMutex<Vec<std::thread::JoinHandle<()>>>,
    /// Finished segments kept for reuse (`spareSegments`).
    spares: Arc<Spares>,
    /// The lock file, held from open until close (or a simulated crash).
    lock: RankedMutex<Option<Box<dyn FileLock>>>,
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

    fn transaction_capacity(&self) -> usize {
        self.inner.cfg.transaction_capacity
    }

    fn put_transaction(&self) -> Box<dyn PutTransaction> {
        Box::new(FilePut {
            enc: PutBatchEncoder::with_buffer(self.inner.bufs.get()),
            inner: self.inner.clone(),
            reserved: (0, 0),
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
            if q.wait_until(&self.inner.available_cv, deadline) {
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
