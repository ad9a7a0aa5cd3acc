//! Flume's KafkaChannel: a channel whose queue is a Kafka topic. A put commit produces its
//! events as records; a take reads them through a consumer group and its commit commits the
//! group's offsets. So the events live on the brokers, survive the agent, and can be shared
//! with Apache Flume agents using the same topic (`parseAsFlumeEvent = true`, the default,
//! writes each event as an AvroFlumeEvent exactly as Flume does).
//!
//! The durability rule: a put commit returns `Ok` only once the brokers acknowledged every
//! record at the producer's `acks` (`all` by default, Flume's default); a failure returns an
//! error and nothing is reported committed, although records that did land stay in the topic
//! (the retry writes them again: at-least-once, as in Flume). A take's events leave the
//! channel when its commit has committed the group's offsets past them, synchronously.
//!
//! Invariants:
//! - Producing is batched per commit: every record is handed to librdkafka, then the commit
//!   waits once for all their delivery reports (no per-record round trip).
//! - The take side (`take.rs`) keeps a local buffer of polled records. A record is handed to
//!   one take transaction at a time; rollback returns it to the head of the buffer, in order;
//!   the offset committed for a partition never passes a record that is buffered or held by
//!   an open take (several sinks may take at once), so a crash redelivers, never loses.
//! - The consumer is created on first take, not at open: an agent that only puts (no sink on
//!   this channel) never joins the group, so it never keeps partitions from the agents that
//!   drain the topic (Flume creates its consumers on first take too).
//! - Kafka unreachable, a missing topic, missing ACLs: a put commit fails with
//!   `ChannelError::Kafka` naming brokers and topic; takes find nothing, log one line per
//!   distinct failure (again at most every 30 s) and back off up to 5 s, never spinning.

mod config;
mod take;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};

pub use self::config::KafkaChannelConfig;
use super::{
    Channel, ChannelError, ChannelSpec, ChannelStats, ChannelType, PutTransaction, TakeTransaction,
};
use crate::avro::protocol::encode_flume_event;
use crate::config::{ConfigError, Keys, Registered};
use crate::event::Event;

/// `kafka` / Flume's KafkaChannel.
pub const TYPE: ChannelType = Registered {
    alias: "kafka",
    class: Some("org.apache.flume.channel.kafka.KafkaChannel"),
    parse,
    minimal: &[("kafka.bootstrap.servers", "localhost:9092")],
};

fn parse(keys: &mut Keys<'_>) -> Result<Box<dyn ChannelSpec>, ConfigError> {
    Ok(Box::new(KafkaChannelConfig::read(keys)?))
}

impl ChannelSpec for KafkaChannelConfig {
    /// Unlimited unless `transactionCapacity` is set: Flume's Kafka channel has no limit, so
    /// no batch size is refused against it.
    fn transaction_capacity(&self) -> usize {
        self.transaction_capacity.unwrap_or(usize::MAX)
    }

    fn open(&self, name: &str) -> Result<Arc<dyn Channel>, ChannelError> {
        Ok(Arc::new(KafkaChannel::open(name, self.clone())?))
    }
}

/// How long a put commit waits for room in librdkafka's queue before looking again.
const QUEUE_FULL_WAIT: Duration = Duration::from_millis(10);
/// How often the same failure may be logged again.
const RELOG_AFTER: Duration = Duration::from_secs(30);

/// Flume's KafkaChannel. A cheap handle: clones share one channel.
#[derive(Clone)]
pub struct KafkaChannel {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for KafkaChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaChannel")
            .field("name", &self.inner.name)
            .field("topic", &self.inner.cfg.topic)
            .finish_non_exhaustive()
    }
}

struct Inner {
    name: String,
    cfg: KafkaChannelConfig,
    producer: ThreadedProducer<PutContext>,
    takes: take::Takes,
    closed: AtomicBool,
    counters: Counters,
}

#[derive(Default)]
struct Counters {
    put_attempts: AtomicU64,
    put_successes: AtomicU64,
    put_errors: AtomicU64,
    take_attempts: AtomicU64,
    take_successes: AtomicU64,
    take_errors: AtomicU64,
    commits: AtomicU64,
}

impl KafkaChannel {
    /// Starts the channel's producer. The consumer joins the group on the first take.
    pub fn open(name: &str, cfg: KafkaChannelConfig) -> Result<KafkaChannel, ChannelError> {
        let log = Arc::new(Throttle::new(name, &cfg.bootstrap, &cfg.topic));
        let producer = cfg
            .producer
            .client_config()
            .create_with_context(PutContext {
                log: Arc::clone(&log),
            })
            .map_err(|e| kafka_error(name, &cfg, "cannot start the Kafka producer", &e))?;
        let takes = take::Takes::new(&cfg, log);
        Ok(KafkaChannel {
            inner: Arc::new(Inner {
                name: name.to_string(),
                cfg,
                producer,
                takes,
                closed: AtomicBool::new(false),
                counters: Counters::default(),
            }),
        })
    }

    /// The settings the channel was opened with.
    pub fn config(&self) -> &KafkaChannelConfig {
        &self.inner.cfg
    }
}

/// `e` as a `ChannelError::Kafka`, with what was being done.
fn kafka_error(
    channel: &str,
    cfg: &KafkaChannelConfig,
    doing: &str,
    e: &KafkaError,
) -> ChannelError {
    let d = crate::kafka::describe(e, &cfg.bootstrap, &cfg.topic);
    ChannelError::Kafka {
        channel: channel.to_string(),
        message: format!("{doing}: {}", d.message),
        retryable: d.retryable,
    }
}

impl Channel for KafkaChannel {
    fn name(&self) -> &str {
        &self.inner.name
    }

    fn transaction_capacity(&self) -> usize {
        crate::channel::ChannelSpec::transaction_capacity(&self.inner.cfg)
    }

    fn put_transaction(&self) -> Box<dyn PutTransaction> {
        Box::new(KafkaPut {
            ch: Arc::clone(&self.inner),
            events: Vec::new(),
        })
    }

    fn take_transaction(&self) -> Box<dyn TakeTransaction> {
        Box::new(take::KafkaTake::new(Arc::clone(&self.inner)))
    }

    fn wait_available(&self, timeout: Duration) -> bool {
        self.inner.wait_available(timeout)
    }

    /// `size` and `capacity` are 0: the events are in the topic, whose backlog for this
    /// channel is its consumer group's lag (`kafka-consumer-groups.sh --describe`), which the
    /// channel does not query.
    fn stats(&self) -> ChannelStats {
        let c = &self.inner.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        ChannelStats {
            put_attempts: get(&c.put_attempts),
            put_successes: get(&c.put_successes),
            put_errors: get(&c.put_errors),
            take_attempts: get(&c.take_attempts),
            take_successes: get(&c.take_successes),
            take_errors: get(&c.take_errors),
            commits: get(&c.commits),
            ..ChannelStats::default()
        }
    }

    fn close(&self) -> Result<(), ChannelError> {
        if self.inner.closed.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        // Put commits wait for their own records; this only bounds what is still in flight.
        let flushed = self.inner.producer.flush(Duration::from_secs(10));
        // Leaves the group, so the partitions move to the other consumers at once.
        self.inner.takes.close();
        flushed.map_err(|e| {
            kafka_error(
                &self.inner.name,
                &self.inner.cfg,
                "records still unacknowledged at close",
                &e,
            )
        })
    }
}

impl Inner {
    fn closed_error(&self) -> ChannelError {
        ChannelError::Closed {
            channel: self.name.clone(),
        }
    }

    fn transaction_full(&self, capacity: usize) -> ChannelError {
        ChannelError::TransactionFull {
            channel: self.name.clone(),
            capacity,
        }
    }

    /// The partition Flume's channel gives `event`: its `partitionIdHeader` header, else
    /// `defaultPartitionId`, else none (Kafka's partitioner decides).
    fn partition_of(&self, event: &Event) -> Result<Option<i32>, ChannelError> {
        if let Some(h) = &self.cfg.partition_id_header {
            if let Some(v) = event.header(h) {
                return match config::parse_partition(v) {
                    Ok(p) => Ok(Some(p)),
                    Err(expected) => Err(ChannelError::Config {
                        channel: self.name.clone(),
                        key: "partitionIdHeader",
                        message: format!(
                            "an event's `{h}` header is `{v}`, not {expected} (Flume refuses such an event too)"
                        ),
                    }),
                };
            }
        }
        Ok(self.cfg.default_partition_id)
    }

    /// Produces `events` and waits until the brokers acknowledged every one, or one failed.
    fn produce_all(&self, events: &[(Event, Option<i32>)]) -> Result<(), KafkaError> {
        let acks = Arc::new(Acks::default());
        // One buffer for every encoded value: librdkafka copies each payload on send.
        let mut buf = Vec::new();
        let mut refused = None;
        for (event, partition) in events {
            let payload: &[u8] = if self.cfg.parse_as_flume_event {
                buf.clear();
                encode_flume_event(&mut buf, event);
                &buf
            } else {
                event.body()
            };
            let mut record: BaseRecord<'_, [u8], [u8], Arc<Acks>> =
                BaseRecord::with_opaque_to(&self.cfg.topic, Arc::clone(&acks)).payload(payload);
            if let Some(k) = event.header(config::KEY_HEADER) {
                record = record.key(k.as_bytes());
            }
            if let Some(p) = partition {
                record = record.partition(*p);
            }
            acks.add();
            loop {
                match self.producer.send(record) {
                    Ok(()) => break,
                    Err((e, back))
                        if e.rdkafka_error_code() == Some(RDKafkaErrorCode::QueueFull) =>
                    {
                        acks.wait_change(QUEUE_FULL_WAIT);
                        record = back;
                    }
                    Err((e, _)) => {
                        acks.settle(None);
                        refused = Some(e);
                        break;
                    }
                }
            }
            if refused.is_some() {
                break;
            }
        }
        let failed = acks.wait_all();
        match refused.or(failed) {
            None => Ok(()),
            Some(e) => Err(e),
        }
    }
}

/// The delivery reports one put commit waits for.
#[derive(Default)]
struct Acks {
    state: Mutex<AcksState>,
    changed: Condvar,
}

#[derive(Default)]
struct AcksState {
    outstanding: usize,
    /// The first failure reported.
    failed: Option<KafkaError>,
}

impl Acks {
    fn add(&self) {
        self.state.lock().outstanding += 1;
    }

    /// One record is settled: delivered (`None`) or failed.
    fn settle(&self, failure: Option<KafkaError>) {
        let mut st = self.state.lock();
        st.outstanding -= 1;
        if st.failed.is_none() {
            st.failed = failure;
        }
        drop(st);
        self.changed.notify_all();
    }

    fn wait_change(&self, timeout: Duration) {
        let mut st = self.state.lock();
        self.changed.wait_for(&mut st, timeout);
    }

    /// Waits for every report; the first failure, if any. librdkafka reports every record
    /// within `delivery.timeout.ms`, so this ends.
    fn wait_all(&self) -> Option<KafkaError> {
        let mut st = self.state.lock();
        while st.outstanding > 0 {
            self.changed.wait(&mut st);
        }
        st.failed.take()
    }
}

/// The producer's callbacks: delivery reports to their commit, client errors to the log.
struct PutContext {
    log: Arc<Throttle>,
}

impl ClientContext for PutContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        client_log(level, fac, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.log.client_error(&error, reason);
    }
}

impl ProducerContext for PutContext {
    type DeliveryOpaque = Arc<Acks>;

    fn delivery(&self, result: &DeliveryResult<'_>, acks: Arc<Acks>) {
        acks.settle(result.as_ref().err().map(|(e, _)| e.clone()));
    }
}

/// librdkafka's own log lines: its errors and warnings at debug, since the channel logs each
/// failure once itself, naming brokers and topic (librdkafka repeats a broker being down on
/// every reconnect).
fn client_log(level: RDKafkaLogLevel, fac: &str, message: &str) {
    match level {
        RDKafkaLogLevel::Emerg | RDKafkaLogLevel::Alert | RDKafkaLogLevel::Critical => {
            tracing::error!("librdkafka {fac}: {message}")
        }
        RDKafkaLogLevel::Error | RDKafkaLogLevel::Warning | RDKafkaLogLevel::Notice => {
            tracing::debug!("librdkafka {fac}: {message}")
        }
        _ => tracing::trace!("librdkafka {fac}: {message}"),
    }
}

/// Logs each distinct failure once, and again only after [`RELOG_AFTER`]: a broker that stays
/// down gives a line every 30 s, not one per reconnect or poll.
struct Throttle {
    channel: String,
    bootstrap: String,
    topic: String,
    /// When each message was last logged; a handful at most (one per kind of failure).
    logged: Mutex<HashMap<String, Instant>>,
}

/// More distinct messages than this and the oldest are forgotten (bounds the map).
const THROTTLE_KEEP: usize = 32;

impl Throttle {
    fn new(channel: &str, bootstrap: &str, topic: &str) -> Throttle {
        Throttle {
            channel: channel.to_string(),
            bootstrap: bootstrap.to_string(),
            topic: topic.to_string(),
            logged: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `message` is due to be logged now (and records that it is).
    fn due(&self, message: &str) -> bool {
        let mut logged = self.logged.lock();
        let now = Instant::now();
        if logged
            .get(message)
            .is_some_and(|at| now.duration_since(*at) < RELOG_AFTER)
        {
            return false;
        }
        if logged.len() >= THROTTLE_KEEP {
            logged.retain(|_, at| now.duration_since(*at) < RELOG_AFTER);
        }
        logged.insert(message.to_string(), now);
        true
    }

    /// Forgets the failures logged, so that the next one is logged at once.
    fn clear(&self) {
        self.logged.lock().clear();
    }

    /// A librdkafka client error (a broker unreachable, a login refused).
    fn client_error(&self, error: &KafkaError, reason: &str) {
        let d = crate::kafka::describe(error, &self.bootstrap, &self.topic);
        // Keyed by the description alone, so that the same failure met by a poll or a put
        // is not logged again with librdkafka's wording.
        if self.due(&d.message) {
            tracing::warn!(channel = %self.channel, "channel `{}`: {} ({reason})", self.channel, d.message);
        }
    }
}

/// A put transaction: events are kept until commit, which produces them all at once.
struct KafkaPut {
    ch: Arc<Inner>,
    /// Each event with its partition, decided at put as Flume does.
    events: Vec<(Event, Option<i32>)>,
}

impl PutTransaction for KafkaPut {
    fn put(&mut self, event: Event) -> Result<(), ChannelError> {
        let ch = &self.ch;
        if let Some(cap) = ch.cfg.transaction_capacity {
            if self.events.len() >= cap {
                return Err(ch.transaction_full(cap));
            }
        }
        let partition = ch.partition_of(&event)?;
        ch.counters.put_attempts.fetch_add(1, Ordering::Relaxed);
        self.events.push((event, partition));
        Ok(())
    }

    fn len(&self) -> usize {
        self.events.len()
    }

    fn commit(self: Box<Self>) -> Result<(), ChannelError> {
        let ch = &self.ch;
        if self.events.is_empty() {
            return Ok(());
        }
        if ch.closed.load(Ordering::SeqCst) {
            return Err(ch.closed_error());
        }
        let n = self.events.len() as u64;
        match ch.produce_all(&self.events) {
            Ok(()) => {
                ch.counters.put_successes.fetch_add(n, Ordering::Relaxed);
                ch.counters.commits.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err(e) => {
                ch.counters.put_errors.fetch_add(n, Ordering::Relaxed);
                let doing = format!(
                    "a put of {n} events was not acknowledged, so it is not committed (records that did reach Kafka may be written again by the retry)"
                );
                Err(kafka_error(&ch.name, &ch.cfg, &doing, &e))
            }
        }
    }

    fn rollback(self: Box<Self>) {}
}
