//! Flume's MemoryChannel: a bounded in-memory FIFO with put and take transactions and no
//! durability (everything queued is lost when the process stops).
//!
//! Invariants, all guarded by one mutex:
//! - `held` counts the events charged against `capacity`: those queued plus those taken by take
//!   transactions that have not committed yet. A taken event keeps its slot until its take
//!   commits, so a rollback can always put it back without waiting for room (Flume's
//!   `queueRemaining` semaphore works the same way). `held_bytes` does the same for body bytes.
//! - A put transaction buffers its events privately; its commit appends them all to the tail
//!   at once or, after waiting up to `keep_alive` for room, none of them (`ChannelFull`).
//! - A take transaction pops from the head; rollback (or drop) pushes its events back onto the
//!   head in their original order; commit releases their slots and wakes waiting putters.
//! - After `close`, every commit and every take fails with `Closed`; rollbacks still work, and
//!   every waiter (putters waiting for room, sinks in `wait_available`) is woken.
//!
//! Waiting is done on condition variables only (`available` for sinks, `room` for putters):
//! nothing here polls or sleeps. Waiting putters are not served in arrival order: a small batch
//! may fit before a large one that waits longer, as with Flume's semaphore.
//!
//! `byte_capacity` counts body bytes only. Flume estimates header overhead by holding back
//! `byteCapacityBufferPercentage` (20 %) of `byteCapacity` and counts bodies in 100-byte slots;
//! here the limit is exact and body-only, so to mirror a Flume setting give 80 % of its
//! `byteCapacity`. Flume's default `byteCapacity` is 80 % of the JVM heap; ours is unlimited.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, MutexGuard};

use super::{
    channel_check, Channel, ChannelError, ChannelSpec, ChannelStats, ChannelType, PutTransaction,
    TakeTransaction,
};
use crate::config::{ConfigError, Keys, Registered, WarningKind};
use crate::event::Event;

/// `memory` / Flume's MemoryChannel.
pub const TYPE: ChannelType = Registered {
    alias: "memory",
    class: Some("org.apache.flume.channel.MemoryChannel"),
    parse,
    minimal: &[],
};

/// A `byteCapacity` below this is no limit in Flume (fewer than one 100-byte slot once
/// Flume's 20% header buffer is taken off).
const FLUME_UNLIMITED_BELOW: u64 = 125;

fn parse(keys: &mut Keys<'_>) -> Result<Box<dyn ChannelSpec>, ConfigError> {
    let d = MemoryChannelConfig::default();
    let cfg = MemoryChannelConfig {
        capacity: keys.number("capacity", d.capacity, 1, "events")?,
        transaction_capacity: keys.size(
            "transactionCapacity",
            d.transaction_capacity,
            1,
            "events",
        )?,
        keep_alive: keys.secs("keep-alive", d.keep_alive, 0, "seconds")?,
        byte_capacity: {
            keys.document_default("byteCapacity", "unlimited");
            match keys.opt_number("byteCapacity", 0, "bytes")? {
                // Flume counts 100-byte slots of 80% of the value and treats fewer than one
                // as no limit at all (files use `byteCapacity = 0` for that).
                Some(b) if b < FLUME_UNLIMITED_BELOW => {
                    let line = keys.line_of("byteCapacity");
                    let advice = format!(
                        "{b} bytes is under {FLUME_UNLIMITED_BELOW}, which Flume reads as no byte limit; so does flumen. Remove the key to say so"
                    );
                    keys.warn(line, "byteCapacity", WarningKind::Surprise { advice });
                    None
                }
                b => b,
            }
        },
    };
    keys.ignore(
        "byteCapacityBufferPercentage",
        "flumen's byteCapacity counts body bytes exactly and holds nothing back for headers (to mirror Flume, give 80% of Flume's byteCapacity)",
    );
    let validated = cfg.validate(keys.name());
    let effective = [
        ("capacity", cfg.capacity.to_string()),
        ("transactionCapacity", cfg.transaction_capacity.to_string()),
    ];
    channel_check(keys, validated, &effective)?;
    Ok(Box::new(cfg))
}

impl ChannelSpec for MemoryChannelConfig {
    fn transaction_capacity(&self) -> usize {
        self.transaction_capacity
    }

    fn open(&self, name: &str) -> Result<Arc<dyn Channel>, ChannelError> {
        Ok(Arc::new(MemoryChannel::new(name, self.clone())?))
    }
}

/// A memory channel's settings, with Flume's defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemoryChannelConfig {
    /// `capacity`: most events held, queued or taken but not committed (default 100).
    pub capacity: u64,
    /// `transactionCapacity`: most events in one transaction (default 100).
    pub transaction_capacity: usize,
    /// `byteCapacity`: most body bytes held (default `None`: unlimited). See the module docs
    /// for how this differs from Flume's header-overhead estimate.
    pub byte_capacity: Option<u64>,
    /// `keep-alive`: how long a put commit waits for room before `ChannelFull` (default 3 s).
    pub keep_alive: Duration,
}

impl Default for MemoryChannelConfig {
    fn default() -> Self {
        MemoryChannelConfig {
            capacity: 100,
            transaction_capacity: 100,
            byte_capacity: None,
            keep_alive: Duration::from_secs(3),
        }
    }
}

impl MemoryChannelConfig {
    /// Checks bounds; the error names the key.
    pub fn validate(&self, channel: &str) -> Result<(), ChannelError> {
        let bad = |key: &'static str, message: String| ChannelError::Config {
            channel: channel.to_string(),
            key,
            message,
        };
        crate::channel::check_capacities(channel, self.capacity, self.transaction_capacity)?;
        if self.byte_capacity == Some(0) {
            return Err(bad(
                "byteCapacity",
                "must be at least 1 byte (leave it unset for no limit)".into(),
            ));
        }
        Ok(())
    }
}

/// Flume's MemoryChannel. A cheap handle: clones share one channel.
#[derive(Clone)]
pub struct MemoryChannel {
    inner: Arc<Inner>,
}

struct Inner {
    name: String,
    cfg: MemoryChannelConfig,
    state: Mutex<State>,
    /// Signalled when events reach the queue (put commit, take rollback) and on close.
    available: Condvar,
    /// Signalled when slots are released (take commit) and on close.
    room: Condvar,
    /// Lets tests see that a putter is really blocked before they free room.
    #[cfg(test)]
    blocked_changed: Condvar,
    /// Counted outside the lock because `put` does not take it.
    put_attempts: AtomicU64,
    put_errors: AtomicU64,
    take_attempts: AtomicU64,
    take_errors: AtomicU64,
}

struct State {
    queue: VecDeque<Event>,
    held: u64,
    held_bytes: u64,
    /// Room reserved by put transactions that have not committed yet (see
    /// `PutTransaction::reserve`): charged against the limits, not counted as held.
    reserved: u64,
    reserved_bytes: u64,
    closed: bool,
    /// Putters waiting in commit for room.
    blocked_putters: usize,
    commits: u64,
    put_successes: u64,
    take_successes: u64,
}

impl std::fmt::Debug for MemoryChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryChannel")
            .field("name", &self.inner.name)
            .field("config", &self.inner.cfg)
            .finish_non_exhaustive()
    }
}

/// `now + d`, or `None` when that is past what `Instant` can hold (wait without a deadline).
fn deadline_after(d: Duration) -> Option<Instant> {
    Instant::now().checked_add(d)
}

impl MemoryChannel {
    /// Creates an empty channel named `name`.
    pub fn new(name: &str, cfg: MemoryChannelConfig) -> Result<MemoryChannel, ChannelError> {
        cfg.validate(name)?;
        Ok(MemoryChannel {
            inner: Arc::new(Inner {
                name: name.to_string(),
                cfg,
                state: Mutex::new(State {
                    queue: VecDeque::new(),
                    held: 0,
                    held_bytes: 0,
                    reserved: 0,
                    reserved_bytes: 0,
                    closed: false,
                    blocked_putters: 0,
                    commits: 0,
                    put_successes: 0,
                    take_successes: 0,
                }),
                available: Condvar::new(),
                room: Condvar::new(),
                #[cfg(test)]
                blocked_changed: Condvar::new(),
                put_attempts: AtomicU64::new(0),
                put_errors: AtomicU64::new(0),
                take_attempts: AtomicU64::new(0),
                take_errors: AtomicU64::new(0),
            }),
        })
    }

    /// The settings the channel was created with.
    pub fn config(&self) -> &MemoryChannelConfig {
        &self.inner.cfg
    }

    fn closed_error(&self) -> ChannelError {
        ChannelError::Closed {
            channel: self.inner.name.clone(),
        }
    }

    /// Checks that a put of `bytes` body bytes could ever fit.
    fn check_fits_ever(&self, bytes: u64) -> Result<(), ChannelError> {
        let inner = &*self.inner;
        if let Some(limit) = inner.cfg.byte_capacity {
            // It could never fit: waiting out keep-alive would only delay the same answer.
            if bytes > limit {
                return Err(ChannelError::TooLarge {
                    channel: inner.name.clone(),
                    what: "a put transaction's body bytes (byteCapacity)",
                    size: bytes,
                    limit,
                });
            }
        }
        Ok(())
    }

    /// Waits up to `keep_alive` for room for `n` events of `bytes` and holds it.
    fn reserve(&self, n: u64, bytes: u64) -> Result<(), ChannelError> {
        self.check_fits_ever(bytes)?;
        let mut st = self.inner.state.lock();
        if !st.closed && !self.inner.fits(&st, n, bytes) {
            self.wait_for_room(&mut st, n, bytes)?;
        }
        if st.closed {
            return Err(self.closed_error());
        }
        st.reserved += n;
        st.reserved_bytes += bytes;
        Ok(())
    }

    /// Gives back room [`MemoryChannel::reserve`] held.
    fn release(&self, n: u64, bytes: u64) {
        let mut st = self.inner.state.lock();
        st.reserved -= n;
        st.reserved_bytes -= bytes;
        drop(st);
        self.inner.room.notify_all();
    }

    /// Appends a committed put's events to the tail, waiting up to `keep_alive` for room
    /// beyond what the transaction `reserved` (events, bytes) already.
    fn commit_put(
        &self,
        events: Vec<Event>,
        bytes: u64,
        reserved: (u64, u64),
    ) -> Result<(), ChannelError> {
        let inner = &*self.inner;
        let n = events.len() as u64;
        if reserved == (0, 0) {
            self.check_fits_ever(bytes)?;
        }
        let mut st = inner.state.lock();
        st.reserved -= reserved.0;
        st.reserved_bytes -= reserved.1;
        if !st.closed && !inner.fits(&st, n, bytes) {
            // Only events put after `reserve` (not how route uses it) can need more room.
            let waited = self.wait_for_room(&mut st, n, bytes);
            if let Err(e) = waited {
                drop(st);
                inner.room.notify_all();
                return Err(e);
            }
        }
        if st.closed {
            drop(st);
            inner.room.notify_all();
            return Err(self.closed_error());
        }
        if n == 0 {
            return Ok(());
        }
        st.queue.extend(events);
        st.held += n;
        st.held_bytes += bytes;
        st.commits += 1;
        st.put_successes += n;
        drop(st);
        inner.available.notify_all();
        Ok(())
    }

    /// Waits until `n` events of `bytes` fit or the channel closes (both `Ok`; the caller
    /// rechecks `closed`), or `keep_alive` passes (`ChannelFull`).
    fn wait_for_room(
        &self,
        st: &mut MutexGuard<'_, State>,
        n: u64,
        bytes: u64,
    ) -> Result<(), ChannelError> {
        let inner = &*self.inner;
        let deadline = deadline_after(inner.cfg.keep_alive);
        st.blocked_putters += 1;
        #[cfg(test)]
        inner.blocked_changed.notify_all();
        let mut timed_out = false;
        while !st.closed && !inner.fits(st, n, bytes) && !timed_out {
            timed_out = match deadline {
                Some(d) => inner.room.wait_until(st, d).timed_out(),
                None => {
                    inner.room.wait(st);
                    false
                }
            };
        }
        st.blocked_putters -= 1;
        if st.closed || inner.fits(st, n, bytes) {
            return Ok(());
        }
        let limit = match inner.cfg.byte_capacity {
            Some(limit) if st.held + st.reserved + n <= inner.cfg.capacity => {
                format!("byteCapacity of {limit} bytes")
            }
            _ => format!("capacity of {} events", inner.cfg.capacity),
        };
        Err(ChannelError::ChannelFull {
            channel: inner.name.clone(),
            limit,
            keep_alive: inner.cfg.keep_alive,
        })
    }

    /// Puts taken events back on the head, first taken first.
    fn return_to_head(&self, taken: Vec<Event>) {
        if taken.is_empty() {
            return;
        }
        let mut st = self.inner.state.lock();
        for e in taken.into_iter().rev() {
            st.queue.push_front(e);
        }
        drop(st);
        self.inner.available.notify_all();
    }

    /// Waits until `n` putters are blocked in commit waiting for room, or `timeout` passes.
    #[cfg(test)]
    fn wait_blocked_putters(&self, n: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut st = self.inner.state.lock();
        while st.blocked_putters < n {
            if self
                .inner
                .blocked_changed
                .wait_until(&mut st, deadline)
                .timed_out()
            {
                return st.blocked_putters >= n;
            }
        }
        true
    }
}

impl Inner {
    /// Whether `n` more events of `bytes` body bytes fit under both limits.
    fn fits(&self, st: &State, n: u64, bytes: u64) -> bool {
        st.held + st.reserved + n <= self.cfg.capacity
            && self
                .cfg
                .byte_capacity
                .is_none_or(|limit| st.held_bytes + st.reserved_bytes + bytes <= limit)
    }
}

impl Channel for MemoryChannel {
    fn name(&self) -> &str {
        &self.inner.name
    }

    fn transaction_capacity(&self) -> usize {
        self.inner.cfg.transaction_capacity
    }

    fn put_transaction(&self) -> Box<dyn PutTransaction> {
        Box::new(MemoryPut {
            ch: self.clone(),
            events: Vec::new(),
            bytes: 0,
            reserved: (0, 0),
        })
    }

    fn take_transaction(&self) -> Box<dyn TakeTransaction> {
        Box::new(MemoryTake {
            ch: self.clone(),
            taken: Vec::new(),
            bytes: 0,
        })
    }

    fn wait_available(&self, timeout: Duration) -> bool {
        let inner = &*self.inner;
        let mut st = inner.state.lock();
        let deadline = deadline_after(timeout);
        while st.queue.is_empty() && !st.closed {
            match deadline {
                Some(d) => {
                    if inner.available.wait_until(&mut st, d).timed_out() {
                        break;
                    }
                }
                None => inner.available.wait(&mut st),
            }
        }
        // Takes fail once closed, so "available" would send a sink into a busy loop.
        !st.queue.is_empty() && !st.closed
    }

    fn stats(&self) -> ChannelStats {
        let inner = &*self.inner;
        let st = inner.state.lock();
        ChannelStats {
            size: st.held,
            capacity: inner.cfg.capacity,
            bytes: st.held_bytes,
            put_attempts: inner.put_attempts.load(Ordering::Relaxed),
            put_successes: st.put_successes,
            take_attempts: inner.take_attempts.load(Ordering::Relaxed),
            take_successes: st.take_successes,
            put_errors: inner.put_errors.load(Ordering::Relaxed),
            take_errors: inner.take_errors.load(Ordering::Relaxed),
            commits: st.commits,
            fsyncs: 0,
            checkpoints: 0,
            poisoned: false,
        }
    }

    fn close(&self) -> Result<(), ChannelError> {
        let mut st = self.inner.state.lock();
        st.closed = true;
        drop(st);
        self.inner.available.notify_all();
        self.inner.room.notify_all();
        Ok(())
    }
}

/// A put transaction: events wait here, invisible to takers, until commit.
struct MemoryPut {
    ch: MemoryChannel,
    events: Vec<Event>,
    bytes: u64,
    /// Room held by `reserve` (events, bytes); given back on drop unless committed.
    reserved: (u64, u64),
}

impl Drop for MemoryPut {
    fn drop(&mut self) {
        if self.reserved != (0, 0) {
            self.ch.release(self.reserved.0, self.reserved.1);
        }
    }
}

impl PutTransaction for MemoryPut {
    fn put(&mut self, event: Event) -> Result<(), ChannelError> {
        let inner = &*self.ch.inner;
        inner.put_attempts.fetch_add(1, Ordering::Relaxed);
        if self.events.len() >= inner.cfg.transaction_capacity {
            inner.put_errors.fetch_add(1, Ordering::Relaxed);
            return Err(ChannelError::TransactionFull {
                channel: inner.name.clone(),
                capacity: inner.cfg.transaction_capacity,
            });
        }
        self.bytes += event.byte_size();
        self.events.push(event);
        Ok(())
    }

    fn len(&self) -> usize {
        self.events.len()
    }

    fn reserve(&mut self) -> Result<(), ChannelError> {
        let want = (self.events.len() as u64, self.bytes);
        let (more, more_bytes) = (want.0 - self.reserved.0, want.1 - self.reserved.1);
        if (more, more_bytes) == (0, 0) {
            return Ok(());
        }
        let r = self.ch.reserve(more, more_bytes);
        match &r {
            Ok(()) => self.reserved = want,
            Err(_) => {
                self.ch.inner.put_errors.fetch_add(1, Ordering::Relaxed);
            }
        }
        r
    }

    fn commit(mut self: Box<Self>) -> Result<(), ChannelError> {
        // Taken out so that Drop has no reservation left to give back: commit_put spends it.
        let reserved = std::mem::take(&mut self.reserved);
        let events = std::mem::take(&mut self.events);
        let res = self.ch.commit_put(events, self.bytes, reserved);
        if res.is_err() {
            self.ch.inner.put_errors.fetch_add(1, Ordering::Relaxed);
        }
        res
    }

    fn rollback(self: Box<Self>) {}
}

/// A take transaction: holds (clones of) the events it took so it can put them back.
struct MemoryTake {
    ch: MemoryChannel,
    taken: Vec<Event>,
    bytes: u64,
}

impl TakeTransaction for MemoryTake {
    fn take_batch(&mut self, max: usize, out: &mut Vec<Event>) -> Result<usize, ChannelError> {
        if max == 0 {
            return Ok(0);
        }
        let inner = &*self.ch.inner;
        // Ask for more than the transaction has room for and get what fits; ask again once
        // full and get TransactionFull, as Flume's one-event take() would.
        let room = inner.cfg.transaction_capacity - self.taken.len();
        if room == 0 {
            inner.take_attempts.fetch_add(1, Ordering::Relaxed);
            inner.take_errors.fetch_add(1, Ordering::Relaxed);
            return Err(ChannelError::TransactionFull {
                channel: inner.name.clone(),
                capacity: inner.cfg.transaction_capacity,
            });
        }
        let want = max.min(room);
        let mut st = inner.state.lock();
        if st.closed {
            drop(st);
            inner.take_attempts.fetch_add(1, Ordering::Relaxed);
            inner.take_errors.fetch_add(1, Ordering::Relaxed);
            return Err(self.ch.closed_error());
        }
        let n = want.min(st.queue.len());
        out.reserve(n);
        self.taken.reserve(n);
        for e in st.queue.drain(..n) {
            self.bytes += e.byte_size();
            out.push(e.clone());
            self.taken.push(e);
        }
        drop(st);
        // Counted as Flume's sink loop would: one attempt per event, plus the empty poll
        // that ended the batch early.
        let attempts = n as u64 + u64::from(n < want);
        inner.take_attempts.fetch_add(attempts, Ordering::Relaxed);
        Ok(n)
    }

    fn len(&self) -> usize {
        self.taken.len()
    }

    fn commit(mut self: Box<Self>) -> Result<(), ChannelError> {
        // Emptied first so that Drop, which runs when `self` goes out of scope, returns nothing.
        let taken = std::mem::take(&mut self.taken);
        let inner = &*self.ch.inner;
        let mut st = inner.state.lock();
        if st.closed {
            drop(st);
            inner.take_errors.fetch_add(1, Ordering::Relaxed);
            self.ch.return_to_head(taken);
            return Err(self.ch.closed_error());
        }
        if taken.is_empty() {
            return Ok(());
        }
        let n = taken.len() as u64;
        st.held -= n;
        st.held_bytes -= self.bytes;
        st.commits += 1;
        st.take_successes += n;
        drop(st);
        inner.room.notify_all();
        // Bodies are released outside the lock.
        drop(taken);
        Ok(())
    }

    fn rollback(self: Box<Self>) {
        // Drop does it.
    }
}

impl Drop for MemoryTake {
    fn drop(&mut self) {
        let taken = std::mem::take(&mut self.taken);
        self.ch.return_to_head(taken);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::sync::atomic::AtomicBool;
    use std::sync::mpsc;
    use std::thread;

    /// Long enough never to expire in a healthy test; tests that expect expiry use SHORT.
    const LONG: Duration = Duration::from_secs(30);
    const SHORT: Duration = Duration::from_millis(50);

    fn channel(capacity: u64, tx_cap: usize, keep_alive: Duration) -> MemoryChannel {
        MemoryChannel::new(
            "c1",
            MemoryChannelConfig {
                capacity,
                transaction_capacity: tx_cap,
                byte_capacity: None,
                keep_alive,
            },
        )
        .expect("valid test config")
    }

    fn ev(i: u64) -> Event {
        Event::new(i.to_le_bytes().to_vec())
    }

    fn seq(e: &Event) -> u64 {
        let b: [u8; 8] = e.body()[..8].try_into().expect("test bodies are 8 bytes");
        u64::from_le_bytes(b)
    }

    fn put_all(ch: &MemoryChannel, range: std::ops::Range<u64>) -> Result<(), ChannelError> {
        let mut tx = ch.put_transaction();
        for i in range {
            tx.put(ev(i))?;
        }
        tx.commit()
    }

    fn take_seqs(tx: &mut dyn TakeTransaction, max: usize) -> Vec<u64> {
        let mut out = Vec::new();
        tx.take_batch(max, &mut out).expect("take");
        out.iter().map(seq).collect()
    }

    fn take_committed(ch: &MemoryChannel, max: usize) -> Vec<u64> {
        let mut tx = ch.take_transaction();
        let got = take_seqs(&mut *tx, max);
        tx.commit().expect("take commit");
        got
    }

    #[test]
    fn a_byte_capacity_flume_reads_as_no_limit_is_no_limit() {
        let mut keys = Keys::from_pairs("channels", "c1", &[("byteCapacity", "0")]);
        let spec = parse(&mut keys).expect("parses");
        let cfg = (*spec)
            .as_any()
            .downcast_ref::<MemoryChannelConfig>()
            .expect("memory")
            .clone();
        assert_eq!(cfg.byte_capacity, None);
        let mut warnings = Vec::new();
        keys.finish(&mut warnings);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].to_string().contains("no byte limit"),
            "{}",
            warnings[0]
        );
    }

    #[test]
    fn defaults_are_flumes() {
        let c = MemoryChannelConfig::default();
        assert_eq!(c.capacity, 100);
        assert_eq!(c.transaction_capacity, 100);
        assert_eq!(c.byte_capacity, None);
        assert_eq!(c.keep_alive, Duration::from_secs(3));
        assert!(c.validate("c1").is_ok());
    }

    #[test]
    fn validate_names_the_key() {
        let bad = |cfg: MemoryChannelConfig, key: &str| {
            let err = MemoryChannel::new("c9", cfg).expect_err("config must be refused");
            match &err {
                ChannelError::Config {
                    channel, key: k, ..
                } => {
                    assert_eq!(channel, "c9");
                    assert_eq!(*k, key);
                }
                other => panic!("expected Config, got {other:?}"),
            }
        };
        let d = MemoryChannelConfig::default();
        bad(
            MemoryChannelConfig {
                capacity: 0,
                ..d.clone()
            },
            "capacity",
        );
        bad(
            MemoryChannelConfig {
                transaction_capacity: 0,
                ..d.clone()
            },
            "transactionCapacity",
        );
        bad(
            MemoryChannelConfig {
                transaction_capacity: 101,
                ..d.clone()
            },
            "transactionCapacity",
        );
        bad(
            MemoryChannelConfig {
                byte_capacity: Some(0),
                ..d
            },
            "byteCapacity",
        );
    }

    #[test]
    fn fifo_order_across_batches() {
        let ch = channel(100, 100, LONG);
        put_all(&ch, 0..7).expect("put");
        put_all(&ch, 7..8).expect("put");
        put_all(&ch, 8..30).expect("put");
        let mut got = Vec::new();
        for max in [3, 1, 10, 50] {
            got.extend(take_committed(&ch, max));
        }
        assert_eq!(got, (0..30).collect::<Vec<_>>());
        assert!(take_committed(&ch, 10).is_empty());
    }

    #[test]
    fn puts_are_invisible_until_commit() {
        let ch = channel(100, 100, LONG);
        let mut put = ch.put_transaction();
        put.put(ev(1)).expect("put");
        assert!(!ch.wait_available(Duration::ZERO));
        assert!(take_committed(&ch, 10).is_empty());
        put.commit().expect("commit");
        assert!(ch.wait_available(Duration::ZERO));
        assert_eq!(take_committed(&ch, 10), vec![1]);
    }

    #[test]
    fn put_rollback_and_drop_discard() {
        let ch = channel(100, 100, LONG);
        let mut put = ch.put_transaction();
        put.put(ev(1)).expect("put");
        put.rollback();
        let mut put = ch.put_transaction();
        put.put(ev(2)).expect("put");
        drop(put);
        assert_eq!(ch.stats().size, 0);
        assert!(take_committed(&ch, 10).is_empty());
    }

    #[test]
    fn take_rollback_restores_order_at_head() {
        let ch = channel(100, 100, LONG);
        put_all(&ch, 0..10).expect("put");

        let mut tx = ch.take_transaction();
        assert_eq!(take_seqs(&mut *tx, 3), vec![0, 1, 2]);
        tx.rollback();
        assert_eq!(ch.stats().size, 10);

        // Two overlapping takers rolled back newest first: the original order comes back.
        let mut a = ch.take_transaction();
        let mut b = ch.take_transaction();
        assert_eq!(take_seqs(&mut *a, 3), vec![0, 1, 2]);
        assert_eq!(take_seqs(&mut *b, 3), vec![3, 4, 5]);
        b.rollback();
        drop(a); // dropping is rolling back
        assert_eq!(take_committed(&ch, 100), (0..10).collect::<Vec<_>>());
    }

    #[test]
    fn taken_events_hold_capacity_until_take_commits() {
        let ch = channel(4, 4, SHORT);
        put_all(&ch, 0..4).expect("put");
        let mut take = ch.take_transaction();
        assert_eq!(take_seqs(&mut *take, 2), vec![0, 1]);
        // Their slots are still held: there is no room yet.
        assert!(matches!(
            put_all(&ch, 4..5),
            Err(ChannelError::ChannelFull { .. })
        ));
        take.commit().expect("commit");
        put_all(&ch, 4..6).expect("room after the take commits");
        assert_eq!(take_committed(&ch, 10), vec![2, 3, 4, 5]);
    }

    #[test]
    fn full_channel_waits_keep_alive_then_refuses_whole_batch() {
        let ch = channel(10, 10, SHORT);
        put_all(&ch, 0..8).expect("put");
        let start = Instant::now();
        let err = put_all(&ch, 8..11).expect_err("3 more do not fit in 2 free slots");
        assert!(start.elapsed() >= SHORT, "must wait keep-alive first");
        match err {
            ChannelError::ChannelFull {
                channel,
                limit,
                keep_alive,
            } => {
                assert_eq!(channel, "c1");
                assert!(limit.contains("capacity of 10"), "{limit}");
                assert_eq!(keep_alive, SHORT);
            }
            other => panic!("expected ChannelFull, got {other:?}"),
        }
        // Nothing of the refused batch went in; a batch that fits still does.
        let s = ch.stats();
        assert_eq!(s.size, 8);
        assert_eq!(s.put_errors, 1);
        put_all(&ch, 8..10).expect("exactly fits");
        assert_eq!(take_committed(&ch, 10), (0..10).collect::<Vec<_>>());
    }

    #[test]
    fn blocked_commit_proceeds_when_a_take_frees_room() {
        let ch = channel(10, 10, LONG);
        put_all(&ch, 0..10).expect("put");
        let (done_tx, done_rx) = mpsc::channel();
        let putter = {
            let ch = ch.clone();
            thread::spawn(move || {
                let res = put_all(&ch, 10..15);
                done_tx.send(res).expect("main thread is listening");
            })
        };
        assert!(
            ch.wait_blocked_putters(1, LONG),
            "the putter must block on the full channel"
        );
        assert!(done_rx.try_recv().is_err(), "commit must not return yet");
        assert_eq!(take_committed(&ch, 5), vec![0, 1, 2, 3, 4]);
        done_rx
            .recv_timeout(LONG)
            .expect("putter finishes once room is freed")
            .expect("its commit succeeds");
        putter.join().expect("putter thread");
        assert_eq!(take_committed(&ch, 10), (5..15).collect::<Vec<_>>());
    }

    #[test]
    fn byte_capacity_counts_body_bytes() {
        let ch = MemoryChannel::new(
            "c1",
            MemoryChannelConfig {
                capacity: 100,
                transaction_capacity: 100,
                byte_capacity: Some(80),
                keep_alive: SHORT,
            },
        )
        .expect("config");
        put_all(&ch, 0..10).expect("80 bytes fit exactly");
        assert_eq!(ch.stats().bytes, 80);
        match put_all(&ch, 10..11) {
            Err(ChannelError::ChannelFull { limit, .. }) => {
                assert!(limit.contains("byteCapacity of 80"), "{limit}")
            }
            other => panic!("expected ChannelFull, got {other:?}"),
        }
        take_committed(&ch, 1);
        put_all(&ch, 10..11).expect("8 bytes freed");
        // A transaction larger than the whole limit is refused at once, not after keep-alive.
        let mut tx = ch.put_transaction();
        tx.put(Event::new(vec![0u8; 81])).expect("put buffers");
        assert!(matches!(tx.commit(), Err(ChannelError::TooLarge { .. })));
    }

    #[test]
    fn transaction_capacity_is_enforced() {
        let ch = channel(100, 3, LONG);
        let mut tx = ch.put_transaction();
        for i in 0..3 {
            tx.put(ev(i)).expect("within transactionCapacity");
        }
        match tx.put(ev(3)) {
            Err(ChannelError::TransactionFull { capacity, .. }) => assert_eq!(capacity, 3),
            other => panic!("expected TransactionFull, got {other:?}"),
        }
        assert_eq!(tx.len(), 3);
        tx.commit().expect("the 3 commit");
        put_all(&ch, 3..6).expect("put");

        let mut take = ch.take_transaction();
        // A larger request gets what fits; the next one is refused.
        assert_eq!(take_seqs(&mut *take, 5), vec![0, 1, 2]);
        let mut out = Vec::new();
        assert!(matches!(
            take.take_batch(1, &mut out),
            Err(ChannelError::TransactionFull { .. })
        ));
        assert!(out.is_empty());
        take.commit().expect("commit");
        assert_eq!(take_committed(&ch, 3), vec![3, 4, 5]);
    }

    #[test]
    fn wait_available_wakes_on_commit_and_times_out_when_empty() {
        let ch = channel(100, 100, LONG);
        let start = Instant::now();
        assert!(!ch.wait_available(SHORT));
        assert!(start.elapsed() >= SHORT);

        let waiter = {
            let ch = ch.clone();
            thread::spawn(move || ch.wait_available(LONG))
        };
        put_all(&ch, 0..1).expect("put");
        assert!(waiter.join().expect("waiter thread"));
    }

    #[test]
    fn close_fails_commits_and_wakes_waiters() {
        let ch = channel(2, 2, LONG);
        put_all(&ch, 0..2).expect("put");
        // Both events taken but not committed: the channel is full and its queue empty.
        let mut take_a = ch.take_transaction();
        let mut take_b = ch.take_transaction();
        assert_eq!(take_seqs(&mut *take_a, 1), vec![0]);
        assert_eq!(take_seqs(&mut *take_b, 1), vec![1]);

        let (done_tx, done_rx) = mpsc::channel();
        let putter = {
            let ch = ch.clone();
            thread::spawn(move || {
                done_tx
                    .send(put_all(&ch, 2..3))
                    .expect("main thread is listening");
            })
        };
        let sink = {
            let ch = ch.clone();
            thread::spawn(move || ch.wait_available(LONG))
        };
        assert!(ch.wait_blocked_putters(1, LONG));

        ch.close().expect("close");
        ch.close().expect("close is idempotent");
        assert!(matches!(
            done_rx.recv_timeout(LONG).expect("putter woken"),
            Err(ChannelError::Closed { .. })
        ));
        putter.join().expect("putter thread");
        assert!(
            !sink.join().expect("sink thread"),
            "nothing to take once closed"
        );

        // Transactions opened before close fail to commit; their events go back to the head.
        assert!(matches!(take_b.commit(), Err(ChannelError::Closed { .. })));
        assert!(matches!(take_a.commit(), Err(ChannelError::Closed { .. })));
        let s = ch.stats();
        assert_eq!(s.size, 2);
        assert_eq!(s.take_successes, 0);
        assert!(matches!(
            put_all(&ch, 5..6),
            Err(ChannelError::Closed { .. })
        ));
        let mut t = ch.take_transaction();
        let mut out = Vec::new();
        assert!(matches!(
            t.take_batch(1, &mut out),
            Err(ChannelError::Closed { .. })
        ));
        assert!(!ch.wait_available(LONG), "returns at once when closed");
    }

    #[test]
    fn stats_count_commits_and_attempts() {
        let ch = channel(100, 100, LONG);
        put_all(&ch, 0..5).expect("put");
        put_all(&ch, 5..5).expect("an empty commit changes nothing");
        let mut t = ch.take_transaction();
        let mut out = Vec::new();
        assert_eq!(t.take_batch(10, &mut out).expect("take"), 5);
        t.commit().expect("commit");
        let s = ch.stats();
        assert_eq!(s.commits, 2);
        assert_eq!(s.put_attempts, 5);
        assert_eq!(s.put_successes, 5);
        assert_eq!(s.take_attempts, 6, "5 events plus the empty poll");
        assert_eq!(s.take_successes, 5);
        assert_eq!(s.size, 0);
        assert_eq!(s.bytes, 0);
        assert_eq!(s.capacity, 100);
        assert_eq!(s.fsyncs, 0);
        assert!(!s.poisoned);
    }

    #[test]
    fn concurrent_producers_and_consumers_lose_nothing() {
        const PRODUCERS: u64 = 4;
        const PER_PRODUCER: u64 = 20_000;
        const BATCH: u64 = 50;
        const TOTAL: u64 = PRODUCERS * PER_PRODUCER;
        // Small capacity so producers really block on consumers.
        let ch = channel(500, 100, LONG);
        let consumed = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));

        let producers: Vec<_> = (0..PRODUCERS)
            .map(|p| {
                let ch = ch.clone();
                thread::spawn(move || {
                    let base = p * PER_PRODUCER;
                    let mut i = 0;
                    while i < PER_PRODUCER {
                        let end = (i + BATCH).min(PER_PRODUCER);
                        put_all(&ch, base + i..base + end).expect("put commit");
                        i = end;
                    }
                })
            })
            .collect();

        let consumers: Vec<_> = (0..3)
            .map(|c| {
                let ch = ch.clone();
                let consumed = Arc::clone(&consumed);
                let stop = Arc::clone(&stop);
                thread::spawn(move || {
                    let mut seen = Vec::new();
                    let mut round = 0u64;
                    while !stop.load(Ordering::Acquire) {
                        round += 1;
                        let mut tx = ch.take_transaction();
                        let mut out = Vec::new();
                        let n = tx.take_batch(37 + c, &mut out).expect("take");
                        if n == 0 {
                            drop(tx);
                            ch.wait_available(Duration::from_millis(20));
                            continue;
                        }
                        // Roll some back: those events must come round again, once.
                        if round.is_multiple_of(7) {
                            tx.rollback();
                            continue;
                        }
                        tx.commit().expect("take commit");
                        seen.extend(out.iter().map(seq));
                        if consumed.fetch_add(n as u64, Ordering::AcqRel) + n as u64 >= TOTAL {
                            stop.store(true, Ordering::Release);
                        }
                    }
                    seen
                })
            })
            .collect();

        for p in producers {
            p.join().expect("producer thread");
        }
        let mut all = HashSet::new();
        let mut count = 0u64;
        let mut sum = 0u64;
        for c in consumers {
            for s in c.join().expect("consumer thread") {
                assert!(all.insert(s), "event {s} delivered twice");
                count += 1;
                sum += s;
            }
        }
        assert_eq!(count, TOTAL);
        assert_eq!(sum, TOTAL * (TOTAL - 1) / 2);
        let s = ch.stats();
        assert_eq!(s.size, 0);
        assert_eq!(s.put_successes, TOTAL);
        assert_eq!(s.take_successes, TOTAL);
    }
}
