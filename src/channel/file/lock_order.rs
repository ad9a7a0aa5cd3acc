//! The file channel's lock order, checked in debug builds.
//!
//! Every lock of the channel is a [`RankedMutex`] or [`RankedRwLock`] with a [`Rank`]; the
//! order is written out at the top of `channel/file/mod.rs`. A thread may take a lock only
//! when every lock it already holds has a lower rank, so no two threads can ever wait for each
//! other. In debug builds (tests) each thread keeps the ranks it holds in a thread-local stack
//! and panics, naming both locks, the moment it would take one out of order, whether or not
//! another thread happens to interleave into a deadlock. In release builds the rank and the
//! stack are compiled out: a ranked lock is then the `parking_lot` lock and its guard, with
//! nothing added on the hot paths.
//!
//! Why not a crate: `tracing-mutex` (the well-kept one) learns an order from the acquisitions
//! it sees and panics on a cycle, through a global dependency graph updated on every
//! acquisition; we want the stated order checked as written, per thread, without a global lock,
//! and the project's Cargo.toml is not ours to change here.
//!
//! Invariants: a guard records its rank before it blocks on the lock and forgets it when
//! dropped, in any order (a guard may outlive one taken after it); a condition-variable wait
//! keeps the rank recorded, since the thread takes nothing else while it waits.

use std::ops::{Deref, DerefMut};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, MutexGuard, RwLockReadGuard, RwLockWriteGuard};

/// The locks of the file channel, outermost first (see the lock order in `mod.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Rank {
    /// `Inner::ckpt`: the checkpointer's state.
    Checkpoint,
    /// `Inner::log`: the writer (active segment, write offset, stage, pending records, journal).
    Log,
    /// `Inner::block_write`: writing staged blocks into the active segment.
    BlockWrite,
    /// `Spares::ready`: the spare segments.
    Spares,
    /// `Inner::segments`: segment handles by id (a read-write lock).
    Segments,
    /// `Inner::recent`: the recent-record cache.
    Recent,
    /// `Inner::queue`, with its condvars `available_cv` and `room_cv`.
    Queue,
    /// `GroupCommit::state`, with each waiter's own condvar.
    GroupCommit,
    /// `BufPool`: record buffers for reuse.
    BufPool,
    /// `SegmentHandle::map`: one sealed segment's mapping.
    SegmentMap,
    /// `Background::flush_wanted`, with `flush_cv`.
    FlushWanted,
    /// `Background::stop`, with `cv`.
    BackgroundStop,
    /// `Inner::bg_threads`: the background threads' handles.
    BackgroundThreads,
    /// `Inner::lock`: the held directory lock.
    DirLock,
}

#[cfg(debug_assertions)]
mod check {
    use std::cell::RefCell;

    use super::Rank;

    thread_local! {
        /// Ranks this thread holds, in the order taken.
        static HELD: RefCell<Vec<Rank>> = const { RefCell::new(Vec::new()) };
    }

    /// Records that this thread is about to take `rank`; panics if that breaks the order.
    pub(super) fn acquire(rank: Rank) {
        let violation = HELD.with(|h| {
            let mut held = h.borrow_mut();
            let bad = held.iter().copied().filter(|&r| r >= rank).max();
            held.push(rank);
            bad.map(|r| (r, held.clone()))
        });
        if let Some((over, held)) = violation {
            // Forget it again: the panic unwinds past the lock this thread never took.
            release(rank);
            panic!(
                "lock order violated: taking {rank:?} while holding {over:?} (held: {held:?}); \
                 see the lock order at the top of channel/file/mod.rs"
            );
        }
    }

    /// Records that this thread let go of `rank`.
    pub(super) fn release(rank: Rank) {
        HELD.with(|h| {
            let mut held = h.borrow_mut();
            if let Some(i) = held.iter().rposition(|&r| r == rank) {
                held.remove(i);
            }
        });
    }

    /// The ranks held now (for tests).
    #[cfg(test)]
    pub(super) fn held() -> Vec<Rank> {
        HELD.with(|h| h.borrow().clone())
    }
}

/// The record of one held rank: forgets it when dropped. Empty in release builds.
#[derive(Debug)]
struct Held {
    #[cfg(debug_assertions)]
    rank: Rank,
}

#[cfg(debug_assertions)]
impl Held {
    fn take(rank: Rank) -> Held {
        check::acquire(rank);
        Held { rank }
    }
}

#[cfg(debug_assertions)]
impl Drop for Held {
    fn drop(&mut self) {
        check::release(self.rank);
    }
}

/// A `parking_lot::Mutex` with a place in the lock order.
#[derive(Debug)]
pub(crate) struct RankedMutex<T> {
    #[cfg(debug_assertions)]
    rank: Rank,
    inner: parking_lot::Mutex<T>,
}

impl<T> RankedMutex<T> {
    pub(crate) fn new(_rank: Rank, value: T) -> Self {
        RankedMutex {
            #[cfg(debug_assertions)]
            rank: _rank,
            inner: parking_lot::Mutex::new(value),
        }
    }

    #[inline]
    pub(crate) fn lock(&self) -> RankedGuard<'_, T> {
        #[cfg(debug_assertions)]
        let held = Held::take(self.rank);
        #[cfg(not(debug_assertions))]
        let held = Held {};
        RankedGuard {
            guard: self.inner.lock(),
            _held: held,
        }
    }
}

/// The guard of a [`RankedMutex`]. Field order matters: the lock is released before its rank
/// is forgotten.
#[derive(Debug)]
pub(crate) struct RankedGuard<'a, T> {
    guard: MutexGuard<'a, T>,
    _held: Held,
}

impl<T> RankedGuard<'_, T> {
    /// `cv.wait`, keeping the rank recorded.
    #[inline]
    pub(crate) fn wait(&mut self, cv: &Condvar) {
        cv.wait(&mut self.guard);
    }

    /// `cv.wait_for`; true when it timed out.
    #[inline]
    pub(crate) fn wait_for(&mut self, cv: &Condvar, timeout: Duration) -> bool {
        cv.wait_for(&mut self.guard, timeout).timed_out()
    }

    /// `cv.wait_until`; true when it timed out.
    #[inline]
    pub(crate) fn wait_until(&mut self, cv: &Condvar, deadline: Instant) -> bool {
        cv.wait_until(&mut self.guard, deadline).timed_out()
    }

    /// Runs `f` with the lock released (only to signal others: `f` must take no ranked lock
    /// of a rank at or below this one).
    #[inline]
    pub(crate) fn unlocked<U>(&mut self, f: impl FnOnce() -> U) -> U {
        MutexGuard::unlocked(&mut self.guard, f)
    }
}

impl<T> Deref for RankedGuard<'_, T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        &self.guard
    }
}

impl<T> DerefMut for RankedGuard<'_, T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        &mut self.guard
    }
}

/// A `parking_lot::RwLock` with a place in the lock order (readers and writers alike).
#[derive(Debug)]
pub(crate) struct RankedRwLock<T> {
    #[cfg(debug_assertions)]
    rank: Rank,
    inner: parking_lot::RwLock<T>,
}

impl<T> RankedRwLock<T> {
    pub(crate) fn new(_rank: Rank, value: T) -> Self {
        RankedRwLock {
            #[cfg(debug_assertions)]
            rank: _rank,
            inner: parking_lot::RwLock::new(value),
        }
    }

    #[inline]
    pub(crate) fn read(&self) -> Ranked<RwLockReadGuard<'_, T>> {
        let held = self.held();
        Ranked {
            guard: self.inner.read(),
            _held: held,
        }
    }

    #[inline]
    pub(crate) fn write(&self) -> Ranked<RwLockWriteGuard<'_, T>> {
        let held = self.held();
        Ranked {
            guard: self.inner.write(),
            _held: held,
        }
    }

    #[inline]
    fn held(&self) -> Held {
        #[cfg(debug_assertions)]
        return Held::take(self.rank);
        #[cfg(not(debug_assertions))]
        Held {}
    }
}

/// A read or write guard of a [`RankedRwLock`].
#[derive(Debug)]
pub(crate) struct Ranked<G> {
    guard: G,
    _held: Held,
}

impl<G: Deref> Deref for Ranked<G> {
    type Target = G::Target;
    #[inline]
    fn deref(&self) -> &G::Target {
        &self.guard
    }
}

impl<G: DerefMut> DerefMut for Ranked<G> {
    #[inline]
    fn deref_mut(&mut self) -> &mut G::Target {
        &mut self.guard
    }
}

#[cfg(all(test, debug_assertions))]
mod tests {
    use super::*;

    #[test]
    fn in_order_passes_and_out_of_order_panics_naming_both_locks() {
        let log = RankedMutex::new(Rank::Log, 1);
        let queue = RankedMutex::new(Rank::Queue, 2);
        let segments = RankedRwLock::new(Rank::Segments, 3);
        {
            let _l = log.lock();
            let _s = segments.read();
            let _q = queue.lock();
            assert_eq!(check::held(), vec![Rank::Log, Rank::Segments, Rank::Queue]);
        }
        assert!(check::held().is_empty());
        // Released out of order: a guard may outlive one taken after it.
        let l = log.lock();
        let q = queue.lock();
        drop(l);
        assert_eq!(check::held(), vec![Rank::Queue]);
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _l = log.lock();
        }));
        let msg = r
            .expect_err("taking the log lock under the queue lock panics")
            .downcast::<String>()
            .map(|s| *s)
            .unwrap_or_default();
        assert!(msg.contains("taking Log while holding Queue"), "{msg}");
        assert_eq!(
            check::held(),
            vec![Rank::Queue],
            "the refused lock is not recorded"
        );
        drop(q);
        // The same rank twice is refused too (two locks of one rank are never nested).
        let _a = log.lock();
        let other = RankedMutex::new(Rank::Log, 0);
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _b = other.lock();
        }));
        assert!(r.is_err());
    }

    #[test]
    fn a_condvar_wait_keeps_the_rank() {
        let m = RankedMutex::new(Rank::Queue, false);
        let cv = Condvar::new();
        let mut g = m.lock();
        assert!(g.wait_for(&cv, Duration::from_millis(1)), "timed out");
        assert_eq!(check::held(), vec![Rank::Queue]);
        *g = true;
        assert!(*g);
    }
}
