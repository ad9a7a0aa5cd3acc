//! The background threads: the checkpointer (every `checkpointInterval`, and early when a roll
//! wants spares), the flusher (syncs take records a put's group sync did not cover within
//! [`TAKE_SYNC_GRACE`]) and, under `fsync = interval:<ms>`, the interval fsync.
//!
//! Invariants: each thread holds only a weak reference to the channel and upgrades it only
//! while it works, so dropping the last handle closes the channel at once; they wait on the
//! signals in [`Background`], never on the channel's own locks; `stop_background` joins them,
//! except the calling thread itself (a thread that dropped the last handle).

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Condvar;

use super::lock_order::{Rank, RankedMutex};

use super::{FsyncPolicy, Inner};

/// How long the flusher waits for a put's group sync to cover a take record before syncing
/// it itself. Bounds how long a take commit stays non-durable.
const TAKE_SYNC_GRACE: Duration = Duration::from_millis(5);

/// The background threads' signals, shared with them apart from the channel itself.
pub(super) struct Background {
    pub(super) stop: RankedMutex<bool>,
    /// Cuts the tickers' waits short: at stop, and for an early checkpoint.
    pub(super) cv: Condvar,
    /// Set when a take commit wrote a record that needs syncing; the flusher waits on it.
    pub(super) flush_wanted: RankedMutex<bool>,
    pub(super) flush_cv: Condvar,
}

impl Background {
    pub(super) fn new() -> Background {
        Background {
            stop: RankedMutex::new(Rank::BackgroundStop, false),
            cv: Condvar::new(),
            flush_wanted: RankedMutex::new(Rank::FlushWanted, false),
            flush_cv: Condvar::new(),
        }
    }
}

pub(super) fn start_background(inner: &Arc<Inner>) {
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
pub(super) fn spawn_flusher(weak: Weak<Inner>, bg: Arc<Background>) -> std::thread::JoinHandle<()> {
    std::thread::Builder::new()
        .name("flumen-flusher".into())
        .spawn(move || loop {
            {
                let mut wanted = bg.flush_wanted.lock();
                while !*wanted {
                    if *bg.stop.lock() {
                        return;
                    }
                    wanted.wait(&bg.flush_cv);
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
pub(super) fn spawn_ticker(
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
                let _ = stop.wait_for(&bg.cv, every);
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
    pub(super) fn stop_background(&self) {
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
}
