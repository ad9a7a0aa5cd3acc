//! The Kafka channel's take side: one consumer per channel (created on the first take), a
//! local buffer of polled records, and the offsets each partition may commit.
//!
//! Invariants, all under the `State` mutex:
//! - Every polled record of a partition we own is either in `buffer` or held by exactly one
//!   open take transaction, until that take commits; its offset is in its partition's
//!   `undone` set meanwhile. A rollback (or a failed commit, or dropping the transaction)
//!   puts its records back at the head of `buffer`, in order.
//! - The offset committed for a partition is the smallest offset in `undone` other than the
//!   committing take's own, or one past the highest polled when none is left: it never
//!   passes a record that has not been taken and committed, whatever order several takes
//!   commit in. Commits run one at a time (`committer`), so no take computes that offset
//!   while another's commit is undecided.
//! - A revoked partition (a rebalance) is forgotten at once: its buffered records are
//!   dropped and its `epoch` ends, so open takes neither commit its offsets nor return its
//!   records; its new owner reads from the last committed offset (duplicates, never loss).
//! - Only one thread polls at a time (`poller`); the others wait on `available`. Polling
//!   happens in `wait_available` (blocking up to `pollTimeout` per poll while the buffer is
//!   empty) and, without blocking, in `take_batch`, and also while records are buffered
//!   (every 100 ms, up to 4,000 buffered), because the consumer serves rebalances only when
//!   polled. After a failure the channel polls again only after a backoff (100 ms doubling to
//!   5 s), and logs once per distinct failure.

use std::collections::hash_map::Entry;
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::{Condvar, Mutex, RwLock};
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::{Offset, TopicPartitionList};

use super::config::{KafkaChannelConfig, KEY_HEADER};
use super::{client_log, kafka_error, Inner, Throttle};
use crate::avro::protocol::decode_flume_event;
use crate::channel::{ChannelError, TakeTransaction};
use crate::event::Event;

/// Most records one poll round moves into the buffer.
const POLL_BATCH: usize = 1000;
/// Above this many buffered records the channel polls only once the buffer is empty (a
/// bound on memory; a rebalance then waits until the sinks drain it, as in Flume).
const BUFFER_LIMIT: usize = 4 * POLL_BATCH;
/// How often a channel with buffered records still polls.
const REPOLL_AFTER: Duration = Duration::from_millis(100);
/// The first and the longest wait after a failed poll.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// The channel's take side.
pub(super) struct Takes {
    shared: Arc<Shared>,
    consumer: RwLock<Slot>,
    /// Held by the one thread polling.
    poller: Mutex<()>,
    /// Held by the one take committing offsets.
    committer: Mutex<()>,
}

enum Slot {
    /// No take yet: the channel has not joined the group.
    NotYet,
    Open(BaseConsumer<TakeContext>),
    Closed,
}

/// What the consumer's callbacks share with the channel.
struct Shared {
    topic: String,
    parse_as_flume_event: bool,
    state: Mutex<State>,
    /// Signalled when records reach the buffer, when a backoff ends early, and on close.
    available: Condvar,
    log: Arc<Throttle>,
}

struct State {
    buffer: VecDeque<Polled>,
    parts: HashMap<i32, Part>,
    next_epoch: u64,
    /// No poll before this instant (after a failure).
    backoff_until: Option<Instant>,
    backoff: Duration,
    /// When a poll last started.
    last_poll: Instant,
    closed: bool,
}

/// One owned partition.
struct Part {
    /// Which ownership of the partition this is; records of an earlier one are stale.
    epoch: u64,
    /// Offsets polled and not yet committed by a take.
    undone: BTreeSet<i64>,
    /// One past the highest offset polled.
    next: i64,
    /// The offset last committed by the channel (-1: none yet).
    committed: i64,
}

/// A polled record.
struct Polled {
    partition: i32,
    offset: i64,
    epoch: u64,
    /// The event, or why the record's value is no event.
    event: Result<Event, Arc<str>>,
}

impl Takes {
    pub(super) fn new(cfg: &KafkaChannelConfig, log: Arc<Throttle>) -> Takes {
        Takes {
            shared: Arc::new(Shared {
                topic: cfg.topic.clone(),
                parse_as_flume_event: cfg.parse_as_flume_event,
                state: Mutex::new(State {
                    buffer: VecDeque::new(),
                    parts: HashMap::new(),
                    next_epoch: 0,
                    backoff_until: None,
                    backoff: Duration::ZERO,
                    last_poll: Instant::now(),
                    closed: false,
                }),
                available: Condvar::new(),
                log,
            }),
            consumer: RwLock::new(Slot::NotYet),
            poller: Mutex::new(()),
            committer: Mutex::new(()),
        }
    }

    /// Leaves the group (dropping the consumer commits nothing: offsets move only at take
    /// commits) and wakes every waiter.
    pub(super) fn close(&self) {
        self.shared.state.lock().closed = true;
        self.shared.available.notify_all();
        let old = std::mem::replace(&mut *self.consumer.write(), Slot::Closed);
        // Dropped outside the lock: closing runs the revoke callback, which locks `state`.
        drop(old);
        let mut st = self.shared.state.lock();
        st.buffer.clear();
        st.parts.clear();
    }
}

impl Inner {
    /// Runs `f` on the consumer, creating it (joining the group) on first use.
    fn with_consumer<R>(
        &self,
        f: impl FnOnce(&BaseConsumer<TakeContext>) -> R,
    ) -> Result<R, ChannelError> {
        {
            let slot = self.takes.consumer.read();
            match &*slot {
                Slot::Open(c) => return Ok(f(c)),
                Slot::Closed => return Err(self.closed_error()),
                Slot::NotYet => {}
            }
        }
        let mut slot = self.takes.consumer.write();
        if let Slot::NotYet = &*slot {
            let ctx = TakeContext {
                shared: Arc::clone(&self.takes.shared),
            };
            let consumer: BaseConsumer<TakeContext> = self
                .cfg
                .consumer
                .client_config()
                .create_with_context(ctx)
                .map_err(|e| {
                    kafka_error(&self.name, &self.cfg, "cannot start the Kafka consumer", &e)
                })?;
            consumer
                .subscribe(&[self.cfg.topic.as_str()])
                .map_err(|e| kafka_error(&self.name, &self.cfg, "cannot subscribe", &e))?;
            tracing::info!(
                channel = %self.name,
                "channel `{}` joined consumer group `{}` on topic `{}` ({})",
                self.name,
                self.cfg.group_id,
                self.cfg.topic,
                self.cfg.bootstrap
            );
            *slot = Slot::Open(consumer);
        }
        drop(slot);
        let slot = self.takes.consumer.read();
        match &*slot {
            Slot::Open(c) => Ok(f(c)),
            _ => Err(self.closed_error()),
        }
    }

    /// Moves what the consumer has into the buffer, waiting up to `timeout` for the first
    /// record. The caller holds `poller`.
    fn poll_into_buffer(&self, timeout: Duration) {
        let shared = &self.takes.shared;
        shared.state.lock().last_poll = Instant::now();
        let polled = self.with_consumer(|c| {
            let mut got = 0;
            let mut wait = timeout;
            while got < POLL_BATCH {
                match c.poll(wait) {
                    None => break,
                    Some(Ok(m)) => {
                        shared.accept(&m);
                        got += 1;
                        wait = Duration::ZERO;
                    }
                    Some(Err(e)) => return Err(e),
                }
            }
            Ok(got)
        });
        match polled {
            Ok(Ok(got)) => {
                if got > 0 {
                    let mut st = shared.state.lock();
                    let was_failing = st.backoff != Duration::ZERO;
                    st.backoff = Duration::ZERO;
                    st.backoff_until = None;
                    drop(st);
                    if was_failing {
                        shared.log.clear();
                        tracing::info!(channel = %self.name, "channel `{}` takes from Kafka again", self.name);
                    }
                    shared.available.notify_all();
                }
            }
            Ok(Err(e)) => {
                let d = crate::kafka::describe(&e, &self.cfg.bootstrap, &self.cfg.topic);
                self.poll_failed(&d.message);
            }
            Err(ChannelError::Closed { .. }) => {}
            Err(e) => self.poll_failed(&e.to_string()),
        }
    }

    /// Logs a failed poll (once per distinct failure: the client's error callback often
    /// reports the same one, and says it only if it came first) and backs off.
    fn poll_failed(&self, message: &str) {
        let shared = &self.takes.shared;
        let mut st = shared.state.lock();
        st.backoff = (st.backoff * 2).clamp(BACKOFF_MIN, BACKOFF_MAX);
        st.backoff_until = Instant::now().checked_add(st.backoff);
        let backoff = st.backoff;
        drop(st);
        if shared.log.due(message) {
            tracing::warn!(channel = %self.name, "channel `{}` cannot take: {message}; takes find nothing until it is fixed (retrying, at most every {BACKOFF_MAX:?})", self.name);
        } else {
            tracing::debug!(channel = %self.name, "{message}; retrying in {backoff:?}");
        }
    }

    /// Polls without blocking, when no other thread polls, if the buffer is empty, or if it
    /// is below [`BUFFER_LIMIT`] and the last poll is older than [`REPOLL_AFTER`]: the
    /// consumer serves rebalances and keeps its group membership only while it is polled, so
    /// a buffer that drains slowly (a sink rolling back) must not stop the polls.
    fn poll_now(&self) {
        {
            let st = self.takes.shared.state.lock();
            let now = Instant::now();
            let due = st.buffer.is_empty()
                || (st.buffer.len() < BUFFER_LIMIT
                    && now.duration_since(st.last_poll) >= REPOLL_AFTER);
            if !due || st.in_backoff(now) {
                return;
            }
        }
        if let Some(_p) = self.takes.poller.try_lock() {
            self.poll_into_buffer(Duration::ZERO);
        }
    }

    /// [`crate::channel::Channel::wait_available`]: polls (one thread at a time, at most
    /// `pollTimeout` per poll) until a record is buffered or `timeout` passes.
    pub(super) fn wait_available(&self, timeout: Duration) -> bool {
        let shared = &self.takes.shared;
        let deadline = Instant::now().checked_add(timeout);
        loop {
            let now = Instant::now();
            let mut st = shared.state.lock();
            if st.closed || self.closed.load(Ordering::SeqCst) {
                return false;
            }
            if !st.buffer.is_empty() {
                drop(st);
                self.poll_now();
                return true;
            }
            if deadline.is_some_and(|d| now >= d) {
                return false;
            }
            let slice = now + self.cfg.poll_timeout;
            let until = deadline.map_or(slice, |d| d.min(slice));
            if let Some(b) = st.backoff_until.filter(|b| *b > now) {
                shared.available.wait_until(&mut st, b.min(until));
                continue;
            }
            drop(st);
            if let Some(_p) = self.takes.poller.try_lock() {
                self.poll_into_buffer(until.saturating_duration_since(Instant::now()));
            } else {
                let mut st = shared.state.lock();
                if st.buffer.is_empty() && !st.closed {
                    shared.available.wait_until(&mut st, until);
                }
            }
        }
    }

    /// Puts `taken` back at the head of the buffer in order; stale records are dropped
    /// (their partition's new owner reads them again).
    fn return_to_head(&self, taken: Vec<Polled>) {
        if taken.is_empty() {
            return;
        }
        let shared = &self.takes.shared;
        let mut st = shared.state.lock();
        for r in taken.into_iter().rev() {
            if st.current(r.partition, r.epoch) {
                st.buffer.push_front(r);
            }
        }
        drop(st);
        shared.available.notify_all();
    }

    /// Commits the offsets `taken` lets the group move to, synchronously.
    fn commit_taken(&self, taken: &[Polled]) -> Result<(), KafkaError> {
        let shared = &self.takes.shared;
        let _one = self.takes.committer.lock();
        let mut mine: HashMap<i32, Vec<i64>> = HashMap::new();
        let mut tpl = TopicPartitionList::new();
        {
            let st = shared.state.lock();
            for r in taken.iter().filter(|r| st.current(r.partition, r.epoch)) {
                mine.entry(r.partition).or_default().push(r.offset);
            }
            for (p, offsets) in &mut mine {
                offsets.sort_unstable();
                let Some(part) = st.parts.get(p) else {
                    continue;
                };
                let to = part
                    .undone
                    .iter()
                    .find(|o| offsets.binary_search(o).is_err())
                    .copied()
                    .unwrap_or(part.next);
                if to > part.committed {
                    tpl.add_partition_offset(&shared.topic, *p, Offset::Offset(to))?;
                }
            }
        }
        if tpl.count() > 0 {
            match self.with_consumer(|c| c.commit(&tpl, CommitMode::Sync)) {
                Ok(r) => r?,
                // Closed: the caller sees the channel closed.
                Err(_) => return Err(KafkaError::Canceled),
            }
        }
        let mut st = shared.state.lock();
        for (p, offsets) in &mine {
            let Some(part) = st.parts.get_mut(p) else {
                continue;
            };
            for o in offsets {
                part.undone.remove(o);
            }
        }
        for e in tpl.elements() {
            if let (Some(part), Offset::Offset(o)) = (st.parts.get_mut(&e.partition()), e.offset())
            {
                part.committed = part.committed.max(o);
            }
        }
        Ok(())
    }
}

impl State {
    /// Whether a record of `partition` polled in `epoch` still belongs to this channel.
    fn current(&self, partition: i32, epoch: u64) -> bool {
        self.parts.get(&partition).is_some_and(|p| p.epoch == epoch)
    }

    fn in_backoff(&self, now: Instant) -> bool {
        self.backoff_until.is_some_and(|b| b > now)
    }
}

impl Shared {
    /// Buffers one polled record.
    fn accept(&self, m: &BorrowedMessage<'_>) {
        let event = self.event_of(m);
        let (partition, offset) = (m.partition(), m.offset());
        let mut guard = self.state.lock();
        let st = &mut *guard;
        let part = match st.parts.entry(partition) {
            Entry::Occupied(o) => o.into_mut(),
            Entry::Vacant(v) => {
                let epoch = st.next_epoch;
                st.next_epoch += 1;
                v.insert(Part {
                    epoch,
                    undone: BTreeSet::new(),
                    next: offset,
                    committed: -1,
                })
            }
        };
        let epoch = part.epoch;
        part.undone.insert(offset);
        part.next = part.next.max(offset + 1);
        guard.buffer.push_back(Polled {
            partition,
            offset,
            epoch,
            event,
        });
    }

    /// The record's event: an AvroFlumeEvent (`parseAsFlumeEvent`) or the bare body, with
    /// the record's key as the `key` header, as Flume's channel gives it.
    fn event_of(&self, m: &BorrowedMessage<'_>) -> Result<Event, Arc<str>> {
        let value = Bytes::copy_from_slice(m.payload().unwrap_or(&[]));
        let mut event = if self.parse_as_flume_event {
            decode_flume_event(&value).map_err(|e| Arc::from(e.to_string()))?
        } else {
            Event::new(value)
        };
        if let Some(k) = m.key() {
            event.set_header(KEY_HEADER, String::from_utf8_lossy(k));
        }
        Ok(event)
    }

    /// Forgets revoked partitions.
    fn revoke(&self, tpl: &TopicPartitionList) {
        let mut st = self.state.lock();
        for e in tpl.elements().iter().filter(|e| e.topic() == self.topic) {
            let p = e.partition();
            st.parts.remove(&p);
            st.buffer.retain(|r| r.partition != p);
        }
    }
}

/// The consumer's callbacks: rebalances to the take state, client errors to the log.
struct TakeContext {
    shared: Arc<Shared>,
}

impl ClientContext for TakeContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        client_log(level, fac, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.shared.log.client_error(&error, reason);
    }
}

impl ConsumerContext for TakeContext {
    fn pre_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Revoke(tpl) => {
                tracing::info!(
                    "channel `{}`: {} partition(s) of topic `{}` revoked; their records not yet committed will be read again by their new owner",
                    self.shared.log.channel,
                    tpl.count(),
                    self.shared.topic
                );
                self.shared.revoke(tpl);
            }
            Rebalance::Assign(tpl) => tracing::info!(
                "channel `{}`: {} partition(s) of topic `{}` assigned",
                self.shared.log.channel,
                tpl.count(),
                self.shared.topic
            ),
            Rebalance::Error(e) => tracing::warn!(
                "channel `{}`: rebalance failed: {e}",
                self.shared.log.channel
            ),
        }
    }
}

/// A take transaction.
pub(super) struct KafkaTake {
    ch: Arc<Inner>,
    taken: Vec<Polled>,
}

impl KafkaTake {
    pub(super) fn new(ch: Arc<Inner>) -> KafkaTake {
        KafkaTake {
            ch,
            taken: Vec::new(),
        }
    }

    fn undecodable(&self, r: &Polled, why: &str) -> ChannelError {
        ChannelError::Kafka {
            channel: self.ch.name.clone(),
            message: format!(
                "the record at partition {} offset {} of topic `{}` on {} is not an AvroFlumeEvent ({why}), which parseAsFlumeEvent = true expects. If the topic holds plain records, set parseAsFlumeEvent = false; otherwise move the group `{}` past it (kafka-consumer-groups.sh --reset-offsets --shift-by 1). Takes stop at this record until then",
                r.partition, r.offset, self.ch.cfg.topic, self.ch.cfg.bootstrap, self.ch.cfg.group_id
            ),
            retryable: false,
        }
    }
}

impl TakeTransaction for KafkaTake {
    fn take_batch(&mut self, max: usize, out: &mut Vec<Event>) -> Result<usize, ChannelError> {
        let ch = Arc::clone(&self.ch);
        if ch.closed.load(Ordering::SeqCst) {
            return Err(ch.closed_error());
        }
        let mut room = max;
        if let Some(cap) = ch.cfg.transaction_capacity {
            room = room.min(cap.saturating_sub(self.taken.len()));
            if room == 0 && max > 0 {
                return Err(ch.transaction_full(cap));
            }
        }
        ch.counters.take_attempts.fetch_add(1, Ordering::Relaxed);
        let shared = &ch.takes.shared;
        ch.poll_now();
        let mut st = shared.state.lock();
        let mut n = 0;
        while n < room {
            let Some(front) = st.buffer.front() else {
                break;
            };
            if let Err(why) = &front.event {
                if n > 0 {
                    break;
                }
                let e = self.undecodable(front, why);
                drop(st);
                ch.counters.take_errors.fetch_add(1, Ordering::Relaxed);
                return Err(e);
            }
            let Some(r) = st.buffer.pop_front() else {
                break;
            };
            if let Ok(e) = &r.event {
                out.push(e.clone());
            }
            self.taken.push(r);
            n += 1;
        }
        Ok(n)
    }

    fn len(&self) -> usize {
        self.taken.len()
    }

    fn commit(mut self: Box<Self>) -> Result<(), ChannelError> {
        let taken = std::mem::take(&mut self.taken);
        if taken.is_empty() {
            return Ok(());
        }
        let ch = Arc::clone(&self.ch);
        if ch.closed.load(Ordering::SeqCst) {
            ch.return_to_head(taken);
            return Err(ch.closed_error());
        }
        match ch.commit_taken(&taken) {
            Ok(()) => {
                let n = taken.len() as u64;
                ch.counters.take_successes.fetch_add(n, Ordering::Relaxed);
                ch.counters.commits.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err(e) => {
                ch.counters.take_errors.fetch_add(1, Ordering::Relaxed);
                ch.return_to_head(taken);
                if ch.closed.load(Ordering::SeqCst) {
                    return Err(ch.closed_error());
                }
                Err(kafka_error(
                    &ch.name,
                    &ch.cfg,
                    "a take's offsets could not be committed, so its events stay in the channel and will be taken again",
                    &e,
                ))
            }
        }
    }

    fn rollback(mut self: Box<Self>) {
        let taken = std::mem::take(&mut self.taken);
        self.ch.return_to_head(taken);
    }
}

impl Drop for KafkaTake {
    fn drop(&mut self) {
        let taken = std::mem::take(&mut self.taken);
        self.ch.return_to_head(taken);
    }
}
