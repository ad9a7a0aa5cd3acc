//! Group commit: committers whose records are written wait until a sync covers them; the first
//! to arrive while no sync runs becomes the leader and runs one sync for everyone written so
//! far, and those arriving during it share the next one.
//!
//! Generic over the position type and knows nothing about records or files: the caller's
//! `sync` closure reports how far it made the log durable. Invariants:
//! - At most one leader runs at a time, and none runs under this module's lock, so the next
//!   group keeps forming (writing its records) while the current one syncs.
//! - A leader whose writes are complete may hand off (`handoff(p)`: everything up to `p` is
//!   written and this leader's sync will cover it) before its sync: the next leader then writes
//!   its group while that sync runs, and committers up to `p` wait for it instead of leading.
//!   Syncs may then finish out of order; that is sound because a leader hands off only after
//!   its writes completed, so a later leader's sync (started after its own writes, which
//!   started after the handoff) covers every earlier group too.
//! - `synced` only grows, and only from a sync that returned `Ok` while not poisoned.
//! - After a failed sync the group is poisoned for good: every waiter, present and future, gets
//!   an error, and no sync is attempted again (retrying fsync after a failure is unsafe: the
//!   kernel may have dropped the dirty pages it failed to write).

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Condvar;

use super::lock_order::{Rank, RankedGuard, RankedMutex};

thread_local! {
    /// Each waiting thread sleeps on its own condition variable, so that a sync's end wakes
    /// only the committers it covered, and a handoff only the one that will lead next: with
    /// one shared condvar, every waiter woke at every handoff and every sync (about 8 context
    /// switches per commit at 16 committers).
    static WAKER: Arc<Condvar> = Arc::new(Condvar::new());
}

/// Backstop for a wake-up this module failed to send: a waiter re-checks at least this often.
const RECHECK: Duration = Duration::from_millis(20);

/// Why a wait ended without durability.
#[derive(Debug, PartialEq, Eq)]
pub enum WaitError<E> {
    /// This thread's sync failed with `E`; the group is now poisoned.
    SyncFailed(E),
    /// Another thread's sync failed earlier (or now).
    Poisoned,
}

struct State<P> {
    synced: P,
    /// Written and covered by a sync in flight (a leader's handoff).
    handed: P,
    leader: bool,
    poisoned: bool,
    syncs: u64,
    /// Waiting threads, each with its target, its own condvar, and whether it may lead (those
    /// in `covered_within` never do).
    waiters: Vec<(P, Arc<Condvar>, bool)>,
}

impl<P: Ord + Copy> State<P> {
    /// Forgets every waiter now covered, or all of them once poisoned, and, if no leader
    /// runs, the first waiter that would have to lead; returns their condvars for [`notify`]
    /// to signal once the lock is released (a waiter woken under it would only block on it).
    #[must_use]
    fn wake(&mut self) -> Vec<Arc<Condvar>> {
        let (synced, poisoned) = (self.synced, self.poisoned);
        let mut woken = vec![];
        self.waiters.retain(|(target, cv, _)| {
            let done = poisoned || *target <= synced;
            if done {
                woken.push(Arc::clone(cv));
            }
            !done
        });
        if !self.leader {
            let handed = self.handed;
            if let Some(i) = self
                .waiters
                .iter()
                .position(|(t, _, may_lead)| *may_lead && *t > handed)
            {
                let (_, cv, _) = self.waiters.swap_remove(i);
                woken.push(cv);
            }
        }
        woken
    }
}

/// [`State::wake`], then the signals once the lock is released.
fn wake_and_unlock<P: Ord + Copy>(mut st: RankedGuard<'_, State<P>>) {
    let woken = st.wake();
    drop(st);
    notify(woken);
}

/// Signals the condvars [`State::wake`] picked. A late signal only makes its thread re-check:
/// every waiter re-checks the state under the lock after waking.
fn notify(woken: Vec<Arc<Condvar>>) {
    for cv in woken {
        cv.notify_one();
    }
}

/// The shared durable watermark.
pub struct GroupCommit<P> {
    state: RankedMutex<State<P>>,
}

impl<P: Ord + Copy> GroupCommit<P> {
    /// Starts with everything up to `synced` durable.
    pub fn new(synced: P) -> Self {
        GroupCommit {
            state: RankedMutex::new(
                Rank::GroupCommit,
                State {
                    synced,
                    handed: synced,
                    leader: false,
                    poisoned: false,
                    syncs: 0,
                    waiters: Vec::new(),
                },
            ),
        }
    }

    /// Returns once everything up to `target` is durable. If no leader is running and no
    /// handed-off sync covers `target`, this thread leads: it runs `sync`, which must make
    /// durable at least everything written before it was called and return how far that is.
    /// `sync` may call its argument (once, after its writes and before its fdatasync) to hand
    /// off leadership early; see the module doc.
    pub fn wait<E>(
        &self,
        target: P,
        mut sync: impl FnMut(&dyn Fn(P)) -> Result<P, E>,
    ) -> Result<(), WaitError<E>> {
        let mut st = self.state.lock();
        loop {
            if st.poisoned {
                return Err(WaitError::Poisoned);
            }
            if st.synced >= target {
                return Ok(());
            }
            if st.leader || st.handed >= target {
                let cv = WAKER.with(Arc::clone);
                st.waiters.push((target, Arc::clone(&cv), true));
                let _ = st.wait_for(&cv, RECHECK);
                // Woken entries were removed by the waker; a timed-out or spurious one is not.
                st.waiters.retain(|(_, c, _)| !Arc::ptr_eq(c, &cv));
                continue;
            }
            st.leader = true;
            drop(st);
            let handed_off = std::cell::Cell::new(false);
            let handoff = |written: P| {
                if handed_off.replace(true) {
                    return;
                }
                let mut st = self.state.lock();
                st.leader = false;
                if written > st.handed {
                    st.handed = written;
                }
                wake_and_unlock(st);
            };
            let result = sync(&handoff);
            st = self.state.lock();
            if !handed_off.get() {
                st.leader = false;
            }
            match result {
                Ok(p) => {
                    st.syncs += 1;
                    if p > st.synced && !st.poisoned {
                        st.synced = p;
                    }
                    if p > st.handed {
                        st.handed = p;
                    }
                    let woken = st.wake();
                    st.unlocked(|| notify(woken));
                }
                Err(e) => {
                    st.poisoned = true;
                    wake_and_unlock(st);
                    return Err(WaitError::SyncFailed(e));
                }
            }
        }
    }

    /// Waits up to `timeout` for some other thread's sync to cover `target`, without ever
    /// leading one. True when covered.
    pub fn covered_within(&self, target: P, timeout: std::time::Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        let mut st = self.state.lock();
        // Woken only by the sync that covers `target` (or poison), not by every sync.
        let cv = WAKER.with(Arc::clone);
        while st.synced < target && !st.poisoned {
            st.waiters.push((target, Arc::clone(&cv), false));
            let timed_out = st.wait_until(&cv, deadline);
            st.waiters.retain(|(_, c, _)| !Arc::ptr_eq(c, &cv));
            if timed_out {
                break;
            }
        }
        st.synced >= target
    }

    /// Records durability achieved outside `wait` (a background interval sync, a segment
    /// seal).
    pub fn advance(&self, synced: P) {
        let mut st = self.state.lock();
        if synced > st.synced {
            st.synced = synced;
            if synced > st.handed {
                st.handed = synced;
            }
            wake_and_unlock(st);
        }
    }

    /// Poisons the group: every waiter wakes with `Poisoned`.
    pub fn poison(&self) {
        let mut st = self.state.lock();
        st.poisoned = true;
        wake_and_unlock(st);
    }

    /// Whether a sync failed.
    pub fn is_poisoned(&self) -> bool {
        self.state.lock().poisoned
    }

    /// Syncs run by leaders so far.
    pub fn syncs(&self) -> u64 {
        self.state.lock().syncs
    }

    /// The durable watermark.
    pub fn synced(&self) -> P {
        self.state.lock().synced
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use parking_lot::Mutex;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{mpsc, Arc, Barrier};

    #[test]
    fn a_lone_committer_leads_its_own_sync() {
        let gc = GroupCommit::new(0u64);
        let r: Result<(), WaitError<()>> = gc.wait(5, |_| Ok(5));
        assert_eq!(r, Ok(()));
        assert_eq!(gc.synced(), 5);
        assert_eq!(gc.syncs(), 1);
        // Already covered: no second sync.
        let r: Result<(), WaitError<()>> = gc.wait(3, |_| panic!("must not sync"));
        assert_eq!(r, Ok(()));
    }

    #[test]
    fn committers_arriving_during_a_sync_share_the_next_one() {
        // The leader's sync blocks until the followers are all waiting; they must then be
        // served by one more sync, not one each.
        let gc = Arc::new(GroupCommit::new(0u64));
        let written = Arc::new(AtomicU64::new(1));
        let (in_sync_tx, in_sync_rx) = mpsc::channel::<()>();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let release_rx = Arc::new(Mutex::new(release_rx));
        let followers = 8;
        let leader = {
            let gc = gc.clone();
            let written = written.clone();
            let release_rx = release_rx.clone();
            std::thread::spawn(move || {
                let target = written.load(Ordering::SeqCst);
                gc.wait::<()>(target, |_| {
                    let upto = written.load(Ordering::SeqCst);
                    in_sync_tx.send(()).expect("test alive");
                    release_rx.lock().recv().expect("released");
                    Ok(upto)
                })
            })
        };
        in_sync_rx.recv().expect("leader syncing");
        let start = Arc::new(Barrier::new(followers + 1));
        let handles: Vec<_> = (0..followers)
            .map(|_| {
                let gc = gc.clone();
                let written = written.clone();
                let start = start.clone();
                std::thread::spawn(move || {
                    let target = written.fetch_add(1, Ordering::SeqCst) + 1;
                    start.wait();
                    gc.wait::<()>(target, |_| Ok(written.load(Ordering::SeqCst)))
                })
            })
            .collect();
        start.wait();
        release_tx.send(()).expect("leader waiting");
        assert_eq!(leader.join().expect("leader"), Ok(()));
        for h in handles {
            assert_eq!(h.join().expect("follower"), Ok(()));
        }
        // One sync for the leader; the followers' writes all happened before the next leader
        // began its sync, so one more covers all of them.
        assert_eq!(gc.syncs(), 2);
        assert_eq!(gc.synced(), 1 + followers as u64);
    }

    /// A leader for `at` that hands off at `at` and then stays in its sync until released;
    /// returns once it is in that sync.
    fn leader_syncing_after_handoff(
        gc: &Arc<GroupCommit<u64>>,
        at: u64,
    ) -> (
        std::thread::JoinHandle<Result<(), WaitError<()>>>,
        mpsc::Sender<()>,
    ) {
        let (in_sync_tx, in_sync_rx) = mpsc::channel::<()>();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let gc = gc.clone();
        let leader = std::thread::spawn(move || {
            gc.wait::<()>(at, |handoff| {
                handoff(at);
                in_sync_tx.send(()).expect("test alive");
                release_rx.recv().expect("released");
                Ok(at)
            })
        });
        in_sync_rx.recv().expect("leader syncing");
        (leader, release_tx)
    }

    /// After a leader hands off, a committer beyond the handed-off position leads the next
    /// write and sync while the first sync still runs; one within it waits for that sync
    /// instead of leading.
    #[test]
    fn a_handoff_lets_the_next_group_sync_while_the_first_still_runs() {
        let gc = Arc::new(GroupCommit::new(0u64));
        let (first, release_tx) = leader_syncing_after_handoff(&gc, 10);
        // Beyond the handoff: leads at once, although the first sync has not returned.
        let r: Result<(), WaitError<()>> = gc.wait(20, |_| Ok(20));
        assert_eq!(r, Ok(()));
        assert_eq!(gc.synced(), 20);
        // Within it, and now covered by the second sync: returns without leading.
        let r: Result<(), WaitError<()>> = gc.wait(10, |_| panic!("must not lead"));
        assert_eq!(r, Ok(()));
        release_tx.send(()).expect("first leader waiting");
        assert_eq!(first.join().expect("first"), Ok(()));
        // The first sync finishing last does not move the watermark back.
        assert_eq!(gc.synced(), 20);
        assert_eq!(gc.syncs(), 2);
    }

    #[test]
    fn a_committer_within_a_handoff_waits_for_that_sync() {
        let gc = Arc::new(GroupCommit::new(0u64));
        let (first, release_tx) = leader_syncing_after_handoff(&gc, 10);
        let waiter = {
            let gc = gc.clone();
            std::thread::spawn(move || gc.wait::<()>(5, |_| panic!("covered by the handoff")))
        };
        release_tx.send(()).expect("first leader waiting");
        assert_eq!(first.join().expect("first"), Ok(()));
        assert_eq!(waiter.join().expect("waiter"), Ok(()));
        assert_eq!(gc.syncs(), 1);
    }

    #[test]
    fn a_failed_sync_poisons_every_later_wait() {
        let gc = GroupCommit::new(0u64);
        assert_eq!(
            gc.wait(1, |_| Err("EIO")),
            Err(WaitError::SyncFailed("EIO"))
        );
        assert!(gc.is_poisoned());
        let r: Result<(), WaitError<&str>> = gc.wait(1, |_| panic!("must never retry"));
        assert_eq!(r, Err(WaitError::Poisoned));
        // Even a target that was durable before is refused: the channel must be reopened.
        let r: Result<(), WaitError<&str>> = gc.wait(0, |_| Ok(0));
        assert_eq!(r, Err(WaitError::Poisoned));
    }

    #[test]
    fn waiters_blocked_behind_a_failing_leader_are_woken_with_an_error() {
        let gc = Arc::new(GroupCommit::new(0u64));
        let (in_sync_tx, in_sync_rx) = mpsc::channel::<()>();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let leader = {
            let gc = gc.clone();
            std::thread::spawn(move || {
                gc.wait(1, |_| {
                    in_sync_tx.send(()).expect("test alive");
                    release_rx.recv().expect("released");
                    Err("EIO")
                })
            })
        };
        in_sync_rx.recv().expect("leader syncing");
        let follower = {
            let gc = gc.clone();
            std::thread::spawn(move || gc.wait::<&str>(2, |_| Ok(2)))
        };
        release_tx.send(()).expect("leader waiting");
        assert_eq!(
            leader.join().expect("leader"),
            Err(WaitError::SyncFailed("EIO"))
        );
        assert_eq!(follower.join().expect("follower"), Err(WaitError::Poisoned));
    }
}
