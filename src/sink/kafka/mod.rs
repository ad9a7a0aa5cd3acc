//! The `kafka` sink (Flume 1.11's KafkaSink): sends each event of a batch as one Kafka record
//! and lets the runner commit the take only once every record is acknowledged at the
//! configured `acks`.
//!
//! A record: its topic is the event's `topicHeader` header when `allowTopicOverride` (the
//! default), else `kafka.topic` with its `%{header}` escapes filled in (a missing header is
//! empty, as Flume's `BucketPath`); its key the `key` header (UTF-8), so Kafka's Java default
//! partitioner (murmur2, which the producer is set to) places it where Flume would; its
//! partition `partitionIdHeader`'s value, else `defaultPartitionId`, else the partitioner's
//! choice; its value the body, or with `useFlumeEventFormat` the AvroFlumeEvent encoding of
//! headers and body; its headers the `header.*` ones; its timestamp `timestampHeader`'s.
//!
//! Delivery: `send` hands every record of a batch to librdkafka without waiting;
//! `finish_oldest` waits (on a condition variable the delivery callbacks signal, from
//! librdkafka's polling thread) until each record of the oldest batch in flight has been
//! acknowledged or has failed. The runner keeps up to `MAX_IN_FLIGHT` batches in flight, each
//! with its take still open, so the wait for one batch's acknowledgements overlaps taking and
//! sending the next (`process` is `send` then `finish_oldest`, for sink groups). A callback
//! for a record of a batch given up on is ignored. Any failed record fails its batch with the
//! first failure, described by [`crate::kafka::describe`] (naming the brokers and the topic;
//! retryable or not), so the runner rolls that take back and backs off: at-least-once, as in
//! Flume. librdkafka fails a record it could not deliver within `delivery.timeout.ms` (Java's
//! 120 s by default), so the wait is bounded; a dead broker gives a clear error after that
//! (and a warning after 10 s), never a hang.
//!
//! Invariant: `Ok` from `process` or `finish_oldest` means every record of that batch was
//! acknowledged; an event
//! the sink cannot turn into a record (a partition header that is no number) fails the batch
//! naming the header, as Flume does, and is never skipped.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};

use super::{Retry, Sink, SinkCause, SinkError, SinkSpec, SinkType};
use crate::avro::protocol::encode_flume_event;
use crate::config::{ConfigError, Keys, Registered};
use crate::event::Event;
use crate::kafka::describe;

pub mod config;

pub use config::{KafkaSinkConfig, Topic, TopicPart};

/// `kafka` / Flume's KafkaSink.
pub const TYPE: SinkType = Registered {
    alias: "kafka",
    class: Some("org.apache.flume.sink.kafka.KafkaSink"),
    parse,
    minimal: &[("kafka.bootstrap.servers", "127.0.0.1:9092")],
};

fn parse(keys: &mut Keys<'_>) -> Result<Box<dyn SinkSpec>, ConfigError> {
    Ok(Box::new(config::parse(keys)?))
}

impl SinkSpec for KafkaSinkConfig {
    fn batch_size(&self) -> Option<(usize, &'static str)> {
        Some((self.batch_size, "flumeBatchSize"))
    }

    fn build(&self, name: &str) -> Result<Box<dyn Sink>, SinkError> {
        Ok(Box::new(KafkaSink::new(name, self.clone())?))
    }
}

/// What the delivery callbacks have reported for one batch in flight.
struct BatchState {
    /// The batch's id, the delivery opaque of its records.
    id: usize,
    /// Records reported (acknowledged or failed).
    done: usize,
    /// Records sent, once all are handed over (`usize::MAX` until then): the callback that
    /// makes `done` reach it wakes the sink.
    target: usize,
    /// The batch's first failure and the topic of its record.
    failure: Option<(KafkaError, String)>,
    /// Records of the batch that failed.
    failed: usize,
}

/// The batches in flight, oldest first (at most `MAX_IN_FLIGHT`).
#[derive(Default)]
struct Pending {
    batches: VecDeque<BatchState>,
}

impl Pending {
    fn get(&mut self, batch: usize) -> Option<&mut BatchState> {
        self.batches.iter_mut().find(|b| b.id == batch)
    }
}

/// The producer's context: delivery callbacks (run on librdkafka's polling thread) and
/// librdkafka's own errors and logs.
struct Delivery {
    pending: Mutex<Pending>,
    all_done: Condvar,
    /// librdkafka's last client-wide error (a broker refusing connections), to explain a
    /// timeout.
    last_error: Mutex<Option<(Instant, String)>>,
}

impl Delivery {
    fn lock(&self) -> MutexGuard<'_, Pending> {
        // A panic while holding the lock cannot leave `Pending` inconsistent (plain counters).
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl ClientContext for Delivery {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, msg: &str) {
        // librdkafka logs each reconnect attempt; the sink reports a failure once per cause
        // through the runner, so its own lines are for debugging.
        tracing::debug!(target: "librdkafka", "{level:?} {fac} {msg}");
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::debug!(target: "librdkafka", "{error}: {reason}");
        *self
            .last_error
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) =
            Some((Instant::now(), reason.to_string()));
    }
}

impl ProducerContext for Delivery {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, batch: usize) {
        let mut pending = self.lock();
        // A record of a batch already given up on (timed out, failed to send) is ignored.
        let Some(p) = pending.get(batch) else {
            return;
        };
        p.done += 1;
        if let Err((e, msg)) = result {
            p.failed += 1;
            if p.failure.is_none() {
                p.failure = Some((e.clone(), msg.topic().to_string()));
            }
        }
        if p.done == p.target {
            self.all_done.notify_one();
        }
    }
}

/// See the module docs.
pub struct KafkaSink {
    name: String,
    config: KafkaSinkConfig,
    producer: ThreadedProducer<Delivery>,
    batch: usize,
    /// Reused per record: the rendered topic and the AvroFlumeEvent encoding.
    topic_buf: String,
    value_buf: Vec<u8>,
    /// The topic of the last record handed over, for messages naming it.
    last_topic: String,
}

impl KafkaSink {
    /// A sink whose producer is created (it connects in the background, on the first record).
    pub fn new(name: &str, config: KafkaSinkConfig) -> Result<KafkaSink, SinkError> {
        let context = Delivery {
            pending: Mutex::new(Pending::default()),
            all_done: Condvar::new(),
            last_error: Mutex::new(None),
        };
        let producer = config
            .client
            .client_config()
            .create_with_context::<_, ThreadedProducer<Delivery>>(context)
            .map_err(|e| {
                SinkError::new(
                    name,
                    format!(
                        "cannot create the Kafka producer for {}: {e}",
                        config.bootstrap
                    ),
                )
            })?;
        Ok(KafkaSink {
            name: name.to_string(),
            last_topic: config.topic.template(),
            config,
            producer,
            batch: 0,
            topic_buf: String::new(),
            value_buf: Vec::new(),
        })
    }

    /// The error for a failed record or batch, described for the log.
    fn kafka_error(&self, e: &KafkaError, topic: &str, note: &str) -> SinkError {
        let d = describe(e, &self.config.bootstrap, topic);
        let mut message = d.message;
        message.push_str(note);
        let code = e
            .rdkafka_error_code()
            .map_or_else(|| "other".to_string(), |c| format!("{c:?}"));
        SinkError::with_retry(
            &self.name,
            if d.retryable {
                Retry::Retryable
            } else {
                Retry::Permanent
            },
            SinkCause::Kafka {
                message,
                key: format!("{code} {topic}"),
            },
        )
    }

    /// Opens a batch: its records' callbacks count towards it.
    fn begin_batch(&mut self) {
        let mut p = self.producer.context().lock();
        p.batches.push_back(BatchState {
            id: self.batch,
            done: 0,
            target: usize::MAX,
            failure: None,
            failed: 0,
        });
    }

    /// Gives up on the newest batch (a record could not be handed over): the callbacks of
    /// its records already handed over are ignored; those records may still land, so the
    /// retry may duplicate them (at-least-once), never lose them.
    fn drop_newest(&mut self) {
        self.producer.context().lock().batches.pop_back();
    }

    /// Hands one event over to librdkafka.
    fn send_one(&mut self, event: &Event) -> Result<(), SinkError> {
        let c = &self.config;
        let headers = event.headers();
        let override_topic = if c.allow_topic_override {
            headers.get(&c.topic_header)
        } else {
            None
        };
        let topic: &str = match (override_topic, &c.topic) {
            (Some(t), _) => t,
            (None, Topic::Static(t)) => t,
            (None, Topic::Template(parts)) => {
                self.topic_buf.clear();
                for p in parts {
                    match p {
                        TopicPart::Literal(l) => self.topic_buf.push_str(l),
                        TopicPart::Header(h) => {
                            self.topic_buf
                                .push_str(headers.get(h).map_or("", String::as_str));
                        }
                    }
                }
                &self.topic_buf
            }
        };
        if topic.is_empty() {
            return Err(SinkError::with_retry(
                &self.name,
                Retry::Permanent,
                SinkCause::Other(format!(
                    "an event's topic is empty (kafka.topic `{}` with its headers, or its `{}` header): give the events the headers the topic needs",
                    c.topic.template(),
                    c.topic_header
                )),
            ));
        }
        if self.last_topic != topic {
            self.last_topic.clear();
            self.last_topic.push_str(topic);
        }
        let mut partition = c.default_partition_id;
        if let Some(h) = &c.partition_id_header {
            if let Some(v) = headers.get(h) {
                // Flume: Integer.parseInt, a failure fails the batch ("Non integer partition
                // id specified"); a negative one fails in ProducerRecord.
                match v.parse::<i32>() {
                    Ok(p) if p >= 0 => partition = Some(p),
                    _ => {
                        return Err(SinkError::with_retry(
                            &self.name,
                            Retry::Permanent,
                            SinkCause::Other(format!(
                                "an event's partitionIdHeader `{h}` is `{v}`, not a partition number (0 or more); the batch stays in the channel until that event is removed or its header fixed, as in Flume"
                            )),
                        ));
                    }
                }
            }
        }
        let timestamp = c
            .timestamp_header
            .as_ref()
            .and_then(|h| headers.get(h))
            .and_then(|v| match v.parse::<i64>() {
                Ok(t) => Some(t),
                Err(_) => {
                    tracing::warn!(
                        "sink `{}`: invalid timestamp `{v}` in header `{}`; the record gets the producer's time",
                        self.name,
                        c.timestamp_header.as_deref().unwrap_or("")
                    );
                    None
                }
            });
        let payload: &[u8] = if c.use_flume_event_format {
            self.value_buf.clear();
            encode_flume_event(&mut self.value_buf, event);
            &self.value_buf
        } else {
            event.body()
        };
        let mut record: BaseRecord<'_, [u8], [u8], usize> =
            BaseRecord::with_opaque_to(topic, self.batch).payload(payload);
        if let Some(k) = headers.get(config::KEY_HEADER) {
            record = record.key(k.as_bytes());
        }
        if let Some(p) = partition {
            record = record.partition(p);
        }
        if let Some(t) = timestamp {
            record = record.timestamp(t);
        }
        if !c.record_headers.is_empty() {
            let mut kh: Option<OwnedHeaders> = None;
            for (flume, kafka) in &c.record_headers {
                if let Some(v) = headers.get(flume) {
                    kh = Some(
                        kh.unwrap_or_else(|| {
                            OwnedHeaders::new_with_capacity(c.record_headers.len())
                        })
                        .insert(Header {
                            key: kafka,
                            value: Some(v.as_bytes()),
                        }),
                    );
                }
            }
            if let Some(kh) = kh {
                record = record.headers(kh);
            }
        }
        let deadline = Instant::now() + self.config.delivery_timeout;
        loop {
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r))
                    if Instant::now() < deadline =>
                {
                    // librdkafka's queue (queue.buffering.max.*) is full of this batch's
                    // records: wait for some acknowledgements.
                    record = r;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err((e, r)) => {
                    let topic = r.topic.to_string();
                    return Err(self.kafka_error(&e, &topic, ""));
                }
            }
        }
    }

    /// Waits until every record of the oldest batch in flight is reported, and closes it.
    fn wait_oldest(&mut self) -> Result<(), SinkError> {
        let ctx = Arc::clone(self.producer.context());
        // librdkafka times each record out after delivery.timeout.ms itself; the margin only
        // guards against a callback that never comes.
        let deadline = Instant::now() + self.config.delivery_timeout + Duration::from_secs(10);
        let mut warn_at = Some(Instant::now() + SLOW_BATCH);
        let mut pending = ctx.lock();
        loop {
            let Some(p) = pending.batches.front() else {
                return Ok(());
            };
            let (done, sent) = (p.done, p.target);
            if done >= sent {
                break;
            }
            let now = Instant::now();
            if warn_at.is_some_and(|w| now >= w) {
                warn_at = None;
                let waiting = sent - done;
                drop(pending);
                // The failure itself is reported by the runner once librdkafka gives up
                // (after delivery.timeout.ms); this says early why nothing moves.
                tracing::warn!(
                    sink = %self.name,
                    "sink `{}`: {waiting} of {sent} records to topic `{}` not acknowledged by the Kafka brokers {} after {}s{}; waiting up to delivery.timeout.ms ({}s) before the batch goes back to the channel",
                    self.name,
                    self.last_topic,
                    self.config.bootstrap,
                    SLOW_BATCH.as_secs(),
                    last_error_note(&ctx),
                    self.config.delivery_timeout.as_secs()
                );
                pending = ctx.lock();
                continue;
            }
            let wake = warn_at.map_or(deadline, |w| w.min(deadline));
            if now >= deadline {
                let outstanding = sent - done;
                pending.batches.pop_front();
                drop(pending);
                let topic = self.last_topic.clone();
                let e = KafkaError::MessageProduction(RDKafkaErrorCode::MessageTimedOut);
                return Err(self.kafka_error(
                    &e,
                    &topic,
                    &format!("; {outstanding} of {sent} records unanswered"),
                ));
            }
            pending = ctx
                .all_done
                .wait_timeout(pending, wake.saturating_duration_since(now))
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .0;
        }
        let Some(p) = pending.batches.pop_front() else {
            return Ok(());
        };
        drop(pending);
        let sent = p.target;
        let Some((e, topic)) = p.failure else {
            return Ok(());
        };
        let failed = p.failed;
        let mut note = format!(" ({failed} of {sent} records failed)");
        if matches!(
            e.rdkafka_error_code(),
            Some(RDKafkaErrorCode::MessageTimedOut)
        ) {
            note.push_str(&last_error_note(&ctx));
        }
        Err(self.kafka_error(&e, &topic, &note))
    }
}

/// Batches handed to librdkafka and not yet acknowledged, at most: while the oldest waits for
/// its acknowledgements the runner takes and sends the next ones; each batch's take stays open
/// until its records are acknowledged. Measured against Kafka's Java producer on one broker
/// (benches/compare.py, batch 100): 4 gave 0.98-1.26x, 8 gave 1.20-1.44x.
const MAX_IN_FLIGHT: usize = 8;

/// How long a batch waits for its acknowledgements before the sink says so in the log.
const SLOW_BATCH: Duration = Duration::from_secs(10);

/// `; the client's last error: ...` when librdkafka reported one, else empty.
fn last_error_note(ctx: &Delivery) -> String {
    ctx.last_error
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .as_ref()
        .map_or_else(String::new, |(at, last)| {
            format!(
                "; the client's last error ({}s ago): {last}",
                at.elapsed().as_secs()
            )
        })
}

impl Sink for KafkaSink {
    fn process(&mut self, events: &[Event]) -> Result<(), SinkError> {
        self.send(events)?;
        self.finish_oldest()
    }

    fn max_in_flight(&self) -> usize {
        MAX_IN_FLIGHT
    }

    fn send(&mut self, events: &[Event]) -> Result<(), SinkError> {
        self.batch = self.batch.wrapping_add(1);
        self.begin_batch();
        for event in events {
            if let Err(e) = self.send_one(event) {
                self.drop_newest();
                return Err(e);
            }
        }
        let mut p = self.producer.context().lock();
        if let Some(b) = p.batches.back_mut() {
            b.target = events.len();
            if b.done >= b.target {
                self.producer.context().all_done.notify_one();
            }
        }
        Ok(())
    }

    fn finish_oldest(&mut self) -> Result<(), SinkError> {
        self.wait_oldest()
    }

    fn stop(&mut self) -> Result<(), SinkError> {
        // The runner finishes every batch in flight before it stops the sink.
        Ok(())
    }
}
