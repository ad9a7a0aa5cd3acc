//! The `kafka` source (Flume's KafkaSource): reads records of Kafka topics as a member of a
//! consumer group and puts them into its channels in batches, `batchSize` records or
//! `batchDurationMillis` old, whichever comes first. Keys: [`config`]; a record as an event:
//! [`record`].
//!
//! IMPORTANT: offsets move only behind the channel. A batch's offsets are committed to Kafka
//! only after every required channel committed the batch; a channel that
//! refuses it for good (or stop) leaves them uncommitted and seeks every partition of the batch
//! back to the batch's first record, so the records are read again and none is skipped. A
//! rebalance is handled in the consumer's rebalance callback, before librdkafka gives the
//! revoked partitions up: the batch in hand is put and its offsets committed there, so the next
//! owner of a partition starts exactly after what reached the channel. Delivery is
//! at-least-once: a crash between the channel commit and the offset commit reads the batch
//! again.
//!
//! Failures (brokers unreachable, a topic that does not exist, a login or ACL refused) are
//! reported once per episode, naming the brokers, topics and group, with a reminder every
//! minute, and the source waits `backoffSleepIncrement`, growing to `maxBackoffSleep`, between
//! attempts, as Flume's pollable source runner does. Every wait (poll, backoff, a full channel)
//! is at most a few hundred milliseconds between looks at the stop flag.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use crate::event::Event;
use crate::kafka::describe;
use crate::metrics::{ComponentCounters, Counter};
use crate::report::{count, human, FailureReporter, Report, ReportPolicy};
use crate::route::ChannelProcessor;
use crate::source::{put_all, PutError, Source, SourceContext};
use crate::stop::sleep_unless_stopped;

pub mod config;
mod record;

pub use config::{KafkaSourceConfig, Subscription, TYPE};

/// The longest single wait in `poll`, so the stop flag is seen promptly.
const POLL_SLICE: Duration = Duration::from_millis(100);
/// How long a seek back (after a refused batch) may wait for librdkafka.
const SEEK_TIMEOUT: Duration = Duration::from_secs(5);

/// See the module docs.
pub struct KafkaSource {
    name: String,
    cfg: KafkaSourceConfig,
    channels: Arc<ChannelProcessor>,
    counters: Arc<ComponentCounters>,
}

impl KafkaSource {
    pub(crate) fn new(cfg: KafkaSourceConfig, ctx: SourceContext) -> KafkaSource {
        KafkaSource {
            name: ctx.name,
            cfg,
            channels: ctx.channels,
            counters: ctx.counters,
        }
    }
}

/// The records read and not yet committed: their events, and per partition where the batch
/// began (to seek back to) and the offset after its last record (to commit).
#[derive(Default)]
struct Batch {
    events: Vec<Event>,
    parts: Vec<Part>,
    /// Index in `parts` of the latest record's partition (records come in runs).
    last: usize,
}

struct Part {
    topic: String,
    partition: i32,
    first: i64,
    next: i64,
}

impl Batch {
    /// Notes that the record at `offset` of `topic`/`partition` belongs to the batch.
    fn note(&mut self, topic: &str, partition: i32, offset: i64) {
        let hit = |p: &Part| p.partition == partition && p.topic == topic;
        let i = match self.parts.get(self.last) {
            Some(p) if hit(p) => self.last,
            _ => match self.parts.iter().position(hit) {
                Some(i) => i,
                None => {
                    self.parts.push(Part {
                        topic: topic.to_string(),
                        partition,
                        first: offset,
                        next: offset,
                    });
                    self.parts.len() - 1
                }
            },
        };
        self.last = i;
        if let Some(p) = self.parts.get_mut(i) {
            p.next = offset + 1;
        }
    }

    fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }

    fn clear(&mut self) {
        self.events.clear();
        self.parts.clear();
        self.last = 0;
    }

    fn commit_list(&self) -> TopicPartitionList {
        let mut tpl = TopicPartitionList::with_capacity(self.parts.len());
        for p in &self.parts {
            // Cannot fail for an offset (only for an unknown variant of `Offset`).
            let _ = tpl.add_partition_offset(&p.topic, p.partition, Offset::Offset(p.next));
        }
        tpl
    }
}

/// Why [`Shared::deliver`] did not commit a batch.
enum Undelivered {
    /// Stop was requested while the channel was full: nothing committed, the next start
    /// reads the records again.
    Stopped,
    /// The channel refused the batch for good (logged): the records will be read again.
    Refused,
}

/// What the polling thread and the rebalance callback (which librdkafka runs inside `poll`,
/// on the same thread) share.
struct Shared {
    name: String,
    group: String,
    bootstrap: String,
    topics: String,
    channels: Arc<ChannelProcessor>,
    counters: Arc<ComponentCounters>,
    stop: Arc<AtomicBool>,
    batch: Mutex<Batch>,
    /// The latest client-level failure librdkafka reported (brokers down, login refused),
    /// for the polling loop to report and back off on.
    client_error: Mutex<Option<KafkaError>>,
    /// Batches the channel refused for good, reported once per episode.
    refusals: Mutex<FailureReporter<()>>,
}

impl Shared {
    /// Puts the batch into the channels and, once they committed it, commits its offsets:
    /// `Async` on the read loop's path (the next batch is read while the brokers store them;
    /// a commit that fails only means duplicates after a restart or rebalance, and a later
    /// commit covers it), `Sync` before partitions are given up in a rebalance. Leaves the
    /// batch empty either way; a refused batch's partitions are sought back.
    fn deliver(
        &self,
        consumer: &BaseConsumer<Shared>,
        batch: &mut Batch,
        mode: CommitMode,
    ) -> Result<usize, Undelivered> {
        if batch.is_empty() {
            return Ok(0);
        }
        let n = batch.events.len();
        if n > 0 {
            self.counters.add(Counter::EventReceivedCount, n as u64);
            match put_all(&self.name, &self.channels, &batch.events, &self.stop) {
                Ok(()) => {
                    self.counters.add(Counter::EventAcceptedCount, n as u64);
                    if let Some(r) = self.refusals.lock().success(Instant::now()) {
                        tracing::info!(
                            source = %self.name,
                            "source `{}` (kafka): the channel accepts its batches again after {} \
                             over {}",
                            self.name,
                            count(r.failures, "refusal", "refusals"),
                            human(r.lasted)
                        );
                    }
                }
                Err(PutError::Stopped) => {
                    batch.clear();
                    return Err(Undelivered::Stopped);
                }
                Err(PutError::Failed(e)) => {
                    self.counters.inc(Counter::ChannelWriteFail);
                    // The same batch is refused again after every backoff: said once, then
                    // a count every minute.
                    match self.refusals.lock().failure((), Instant::now()) {
                        Report::Quiet => {}
                        Report::Reminder {
                            failures,
                            total,
                            since,
                        } => tracing::error!(
                            source = %self.name,
                            "source `{}` (kafka): the channel still refuses the batch: {} more \
                             since the last report, {total} in {}; latest: {e}",
                            self.name,
                            count(failures, "refusal", "refusals"),
                            human(since)
                        ),
                        _ => tracing::error!(
                            source = %self.name,
                            "source `{}` (kafka): the channel refused a batch of {n} records: \
                             {e}; their offsets are not committed and they will be read again",
                            self.name
                        ),
                    }
                    self.seek_back(consumer, batch);
                    batch.clear();
                    return Err(Undelivered::Refused);
                }
            }
        }
        let tpl = batch.commit_list();
        batch.clear();
        if let Err(e) = consumer.commit(&tpl, mode) {
            // The events are in the channel: the records will be read again by whoever owns
            // the partitions next (duplicates, never a loss), unless a later commit covers
            // them first.
            let d = describe(&e, &self.bootstrap, &self.topics);
            tracing::warn!(
                source = %self.name,
                "source `{}` (kafka): committing the offsets of {n} records put into the \
                 channel failed (group `{}`): {}; they may be delivered again",
                self.name,
                self.group,
                d.message
            );
        }
        Ok(n)
    }

    /// Moves every partition of `batch` back to the batch's first record, so the records the
    /// channel did not take are fetched again.
    fn seek_back(&self, consumer: &BaseConsumer<Shared>, batch: &Batch) {
        for p in &batch.parts {
            if let Err(e) =
                consumer.seek(&p.topic, p.partition, Offset::Offset(p.first), SEEK_TIMEOUT)
            {
                // Not assigned any more (a rebalance took it): its next owner starts from
                // the committed offset, which is at most `first`.
                tracing::debug!(
                    source = %self.name,
                    "source `{}`: seek of {}[{}] back to {}: {e}",
                    self.name,
                    p.topic,
                    p.partition,
                    p.first
                );
            }
        }
    }
}

impl ClientContext for Shared {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, msg: &str) {
        // librdkafka repeats itself on every reconnect; the source reports failures once.
        tracing::debug!(source = %self.name, ?level, fac, "librdkafka: {msg}");
    }

    fn error(&self, error: KafkaError, reason: &str) {
        let worth = matches!(
            error.rdkafka_error_code(),
            Some(
                RDKafkaErrorCode::AllBrokersDown
                    | RDKafkaErrorCode::Authentication
                    | RDKafkaErrorCode::SaslAuthenticationFailed
                    | RDKafkaErrorCode::Resolve
                    | RDKafkaErrorCode::TopicAuthorizationFailed
                    | RDKafkaErrorCode::GroupAuthorizationFailed
                    | RDKafkaErrorCode::ClusterAuthorizationFailed
                    | RDKafkaErrorCode::Fatal
            )
        );
        if worth {
            *self.client_error.lock() = Some(error);
        } else {
            tracing::debug!(source = %self.name, "librdkafka: {error} ({reason})");
        }
    }
}

impl ConsumerContext for Shared {
    /// The outcome of an asynchronous offset commit (the read loop's): a failure is logged;
    /// the records are in the channel, so at worst they are delivered again.
    fn commit_callback(&self, result: KafkaResult<()>, offsets: &TopicPartitionList) {
        if let Err(e) = result {
            let d = describe(&e, &self.bootstrap, &self.topics);
            tracing::warn!(
                source = %self.name,
                "source `{}` (kafka): committing offsets {} failed (group `{}`): {}; the records \
                 are in the channel and may be delivered again",
                self.name,
                partitions(offsets),
                self.group,
                d.message
            );
        }
    }

    fn pre_rebalance(&self, consumer: &BaseConsumer<Shared>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Revoke(tpl) => {
                // IMPORTANT: the batch in hand is committed (channel, then offsets) before
                // librdkafka gives the partitions up, so their next owner starts after it.
                let mut batch = self.batch.lock();
                let n = self.deliver(consumer, &mut batch, CommitMode::Sync);
                tracing::info!(
                    source = %self.name,
                    "source `{}` (kafka): partitions revoked from group `{}`: {}{}",
                    self.name,
                    self.group,
                    partitions(tpl),
                    match n {
                        Ok(0) => String::new(),
                        Ok(n) => format!("; the {n} records in hand were committed first"),
                        Err(_) => "; the records in hand were not committed and will be read again".into(),
                    }
                );
            }
            Rebalance::Assign(tpl) => tracing::info!(
                source = %self.name,
                "source `{}` (kafka): partitions assigned in group `{}`: {}",
                self.name,
                self.group,
                partitions(tpl)
            ),
            Rebalance::Error(e) => tracing::warn!(
                source = %self.name,
                "source `{}` (kafka): rebalance of group `{}` failed: {e}",
                self.name,
                self.group
            ),
        }
    }
}

/// `topic[0,1,2] other[0]` for log lines.
fn partitions(tpl: &TopicPartitionList) -> String {
    let mut out: Vec<(String, Vec<i32>)> = Vec::new();
    for e in tpl.elements() {
        match out.iter_mut().find(|(t, _)| t == e.topic()) {
            Some((_, ps)) => ps.push(e.partition()),
            None => out.push((e.topic().to_string(), vec![e.partition()])),
        }
    }
    if out.is_empty() {
        return "none".into();
    }
    out.iter()
        .map(|(t, ps)| {
            let ps: Vec<String> = ps.iter().map(i32::to_string).collect();
            format!("{t}[{}]", ps.join(","))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Flume's pollable-source backoff: `increment` times the consecutive failures, at most `max`.
struct Backoff {
    increment: Duration,
    max: Duration,
    failures: u32,
}

impl Backoff {
    fn next(&mut self) -> Duration {
        self.failures = self.failures.saturating_add(1);
        (self.increment.saturating_mul(self.failures)).min(self.max)
    }

    fn reset(&mut self) {
        self.failures = 0;
    }
}

impl Source for KafkaSource {
    fn run(self: Box<Self>, stop: Arc<AtomicBool>) {
        let KafkaSource {
            name,
            cfg,
            channels,
            counters,
        } = *self;
        let shared = Shared {
            name: name.clone(),
            group: cfg.group_id.clone(),
            bootstrap: cfg.client.bootstrap().to_string(),
            topics: cfg.subscription.describe(),
            channels,
            counters,
            stop: Arc::clone(&stop),
            batch: Mutex::new(Batch::default()),
            client_error: Mutex::new(None),
            refusals: Mutex::new(FailureReporter::new(ReportPolicy::default())),
        };
        let consumer: BaseConsumer<Shared> =
            match cfg.client.client_config().create_with_context(shared) {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!(
                        source = %name,
                        "source `{name}` (kafka) cannot start its Kafka consumer: {e}"
                    );
                    return;
                }
            };
        let topics = cfg.subscription.rdkafka_topics();
        let topic_refs: Vec<&str> = topics.iter().map(String::as_str).collect();
        if let Err(e) = consumer.subscribe(&topic_refs) {
            tracing::error!(
                source = %name,
                "source `{name}` (kafka) cannot subscribe to {}: {e}",
                cfg.subscription.describe()
            );
            return;
        }
        tracing::info!(
            source = %name,
            "source `{name}` (kafka) reads {} from {} as group `{}`",
            cfg.subscription.describe(),
            cfg.client.bootstrap(),
            cfg.group_id
        );
        Poller {
            cfg: &cfg,
            consumer: &consumer,
            stop: &stop,
            failures: FailureReporter::new(ReportPolicy::default()),
            bad_records: FailureReporter::new(ReportPolicy::default()),
            backoff: Backoff {
                increment: cfg.backoff_increment,
                max: cfg.max_backoff,
                failures: 0,
            },
        }
        .run();
        // Dropping the consumer leaves the group; its revoke callback commits what is in hand.
        drop(consumer);
        tracing::info!(source = %name, "source `{name}` (kafka) stopped");
    }
}

/// The polling loop's state.
struct Poller<'a> {
    cfg: &'a KafkaSourceConfig,
    consumer: &'a BaseConsumer<Shared>,
    stop: &'a AtomicBool,
    failures: FailureReporter<Option<RDKafkaErrorCode>>,
    bad_records: FailureReporter<()>,
    backoff: Backoff,
}

impl Poller<'_> {
    fn shared(&self) -> &Shared {
        self.consumer.context()
    }

    fn run(&mut self) {
        while !self.stop.load(Ordering::Acquire) {
            let failure = self.fill();
            let delivered = {
                let shared = self.consumer.context();
                let mut batch = shared.batch.lock();
                shared.deliver(self.consumer, &mut batch, CommitMode::Async)
            };
            match delivered {
                Ok(n) if n > 0 => {
                    self.backoff.reset();
                    if let Some(r) = self.failures.success(Instant::now()) {
                        let s = self.shared();
                        tracing::info!(
                            source = %s.name,
                            "source `{}` (kafka) reads from {} again after {} over {}",
                            s.name,
                            s.bootstrap,
                            count(r.failures, "failure", "failures"),
                            human(r.lasted)
                        );
                    }
                }
                Ok(_) => {}
                Err(Undelivered::Stopped) => break,
                Err(Undelivered::Refused) => {
                    let wait = self.backoff.next();
                    sleep_unless_stopped(wait, self.stop);
                }
            }
            if let Some(e) = failure {
                self.report(&e);
                let wait = self.backoff.next();
                sleep_unless_stopped(wait, self.stop);
            }
        }
    }

    /// Polls records into the batch until it is full or `batchDurationMillis` old, a failure
    /// is met (returned) or stop is requested.
    fn fill(&mut self) -> Option<KafkaError> {
        let deadline = Instant::now() + self.cfg.batch_duration;
        loop {
            if self.stop.load(Ordering::Acquire) {
                return None;
            }
            let now = Instant::now();
            if now >= deadline || self.shared().batch.lock().events.len() >= self.cfg.batch_size {
                return None;
            }
            match self.consumer.poll((deadline - now).min(POLL_SLICE)) {
                None => {
                    if let Some(e) = self.shared().client_error.lock().take() {
                        return Some(e);
                    }
                }
                Some(Err(e)) => return Some(e),
                Some(Ok(msg)) => {
                    let shared = self.consumer.context();
                    let mut batch = shared.batch.lock();
                    batch.note(msg.topic(), msg.partition(), msg.offset());
                    match record::to_event(self.cfg, &msg) {
                        Ok(event) => batch.events.push(event),
                        Err(e) => {
                            drop(batch);
                            self.bad_record(&msg, &e);
                        }
                    }
                }
            }
        }
    }

    /// A record whose value is no AvroFlumeEvent (`useFlumeEventFormat = true`): Flume logs it
    /// and goes on past it; so does flumen, counting it (EventReadFail) and reporting the
    /// first of a run and a count every minute. Its offset is committed with the batch.
    fn bad_record(&mut self, msg: &rdkafka::message::BorrowedMessage<'_>, e: &record::BadRecord) {
        let s = self.consumer.context();
        s.counters.inc(Counter::EventReadFail);
        match self.bad_records.failure((), Instant::now()) {
            Report::First { .. } | Report::Changed { .. } => tracing::error!(
                source = %s.name,
                "source `{}` (kafka): record {}[{}]@{} is skipped: {e} (useFlumeEventFormat = \
                 true expects every value to be an AvroFlumeEvent, as Flume's Kafka sink and \
                 channel write them with useFlumeEventFormat / parseAsFlumeEvent)",
                s.name,
                msg.topic(),
                msg.partition(),
                msg.offset()
            ),
            Report::Reminder {
                failures,
                total,
                since,
            } => tracing::error!(
                source = %s.name,
                "source `{}` (kafka): {} more records skipped that are no AvroFlumeEvent ({total} in {}); latest {}[{}]@{}: {e}",
                s.name,
                failures,
                human(since),
                msg.topic(),
                msg.partition(),
                msg.offset()
            ),
            Report::Quiet => {}
        }
    }

    /// Logs a Kafka failure once per episode (and a reminder every minute).
    fn report(&mut self, e: &KafkaError) {
        let s = self.consumer.context();
        let d = describe(e, &s.bootstrap, &s.topics);
        let next = self
            .backoff
            .increment
            .saturating_mul(self.backoff.failures.saturating_add(1))
            .min(self.backoff.max);
        match self
            .failures
            .failure(e.rdkafka_error_code(), Instant::now())
        {
            Report::First { .. } | Report::Changed { .. } => tracing::warn!(
                source = %s.name,
                "source `{}` (kafka, group `{}`): {}; retrying with backoff (next in {}, at \
                 most {}); nothing is committed until records reach the channel",
                s.name,
                s.group,
                d.message,
                human(next),
                human(self.backoff.max)
            ),
            Report::Reminder {
                failures,
                total,
                since,
            } => tracing::warn!(
                source = %s.name,
                "source `{}` (kafka, group `{}`): still failing: {} more since the last report, \
                 {total} in {}; latest: {}",
                s.name,
                s.group,
                count(failures, "failure", "failures"),
                human(since),
                d.message
            ),
            Report::Quiet => tracing::debug!(source = %s.name, "{}", d.message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_commits_the_offset_after_each_partitions_last_record() {
        let mut b = Batch::default();
        for (t, p, o) in [
            ("a", 0, 5),
            ("a", 0, 6),
            ("a", 1, 9),
            ("b", 0, 1),
            ("a", 0, 7),
        ] {
            b.note(t, p, o);
        }
        let got: Vec<(String, i32, i64, i64)> = b
            .parts
            .iter()
            .map(|p| (p.topic.clone(), p.partition, p.first, p.next))
            .collect();
        assert_eq!(
            got,
            vec![
                ("a".into(), 0, 5, 8),
                ("a".into(), 1, 9, 10),
                ("b".into(), 0, 1, 2)
            ]
        );
        let tpl = b.commit_list();
        assert_eq!(tpl.count(), 3);
        b.clear();
        assert!(b.is_empty());
    }

    #[test]
    fn backoff_grows_by_the_increment_up_to_the_maximum() {
        let mut b = Backoff {
            increment: Duration::from_millis(1000),
            max: Duration::from_millis(2500),
            failures: 0,
        };
        let waits: Vec<u128> = (0..4).map(|_| b.next().as_millis()).collect();
        assert_eq!(waits, vec![1000, 2000, 2500, 2500]);
        b.reset();
        assert_eq!(b.next(), Duration::from_millis(1000));
    }
}
