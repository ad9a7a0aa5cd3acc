//! Sinks: the components that drain one channel each, and the [`SinkRunner`] loop that drives
//! them.
//!
//! Each sink runs on its own std thread (the agent has no async runtime yet; tokio may replace
//! these threads later). The runner takes up to the sink's batch size in one take
//! transaction, hands the events to [`Sink::process`], and commits the take only when
//! processing succeeded, so a committed take's events have been handled (for file_roll:
//! written and fsynced). A processing error rolls the take back (the events return to the
//! head of the channel) and the runner retries after a growing backoff: events are never
//! lost, though they may be delivered twice if the process dies between processing and the
//! take's commit (at-least-once). An empty channel is waited on with
//! [`Channel::wait_available`] with a growing timeout (Flume's SinkRunner backs off likewise).
//!
//! Monitoring: the runner counts into its [`ComponentCounters`] where Flume's sinks do:
//! events taken (EventDrainAttemptCount), events whose take committed
//! (EventDrainSuccessCount), each take by how full it was (BatchEmptyCount,
//! BatchUnderflowCount, BatchCompleteCount), processing errors (EventWriteFail) and failed
//! takes or take commits (ChannelReadFail).
//!
//! Shutdown: once the stop flag is set the runner finishes the batch in hand (process and
//! commit, or roll back) and stops; what is left stays in the channel.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::channel::{Channel, ChannelError};
use crate::config::{SinkConfig, SinkKind};
use crate::event::Event;
use crate::metrics::{ComponentCounters, Counter};
use crate::source::sleep_unless_stopped;

pub mod avro;
pub mod error;
pub mod file_roll;
pub mod hdfs;
pub mod logger;
pub mod null;
pub mod report;

pub use error::{CauseKey, Retry, SinkCause, SinkError};

/// What a sink does with events.
pub trait Sink: Send {
    /// Handles a batch. `Ok` means the events are done with (for a durable sink: durable), so
    /// the runner may commit the take; `Err` makes it roll back and retry later.
    fn process(&mut self, events: &[Event]) -> Result<(), SinkError>;
    /// The sink's type as configured (`hdfs`, `avro`, ...), for log lines.
    fn type_name(&self) -> &'static str {
        "custom"
    }
    /// Hands the sink its counters, for the ones only the sink can move (Flume's
    /// ConnectionCreated/Closed/FailedCount: files opened, closed, failed for the hdfs sink).
    fn attach_counters(&mut self, _counters: Arc<ComponentCounters>) {}
    /// Called between batches and while the channel is idle (at least every half second), for
    /// time-based work such as rolling files by age.
    fn tick(&mut self) {}
    /// Releases resources at shutdown (closes files).
    fn stop(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
}

/// Builds the sink `cfg`. Returns it with its batch size.
pub fn build(cfg: &SinkConfig) -> Result<(Box<dyn Sink>, usize), SinkError> {
    let batch = cfg.kind.batch_size().unwrap_or(1).max(1);
    let sink: Box<dyn Sink> = match &cfg.kind {
        SinkKind::Null { .. } => Box::new(null::NullSink),
        SinkKind::Logger { max_bytes_to_log } => {
            Box::new(logger::LoggerSink::new(&cfg.name, *max_bytes_to_log))
        }
        SinkKind::FileRoll {
            directory,
            roll_interval_secs,
            prefix,
            extension,
            ..
        } => Box::new(file_roll::FileRollSink::new(
            &cfg.name,
            directory,
            Duration::from_secs(*roll_interval_secs),
            prefix,
            extension,
        )?),
        SinkKind::Hdfs(hdfs) => Box::new(hdfs::HdfsSink::new(&cfg.name, hdfs)?),
        SinkKind::Avro {
            hostname,
            port,
            connect_timeout_ms,
            request_timeout_ms,
            reset_connection_interval_secs,
            deflate,
            ssl,
            ..
        } => Box::new(avro::AvroSink::new(
            &cfg.name,
            avro::AvroSinkOptions {
                hostname: hostname.clone(),
                port: *port,
                connect_timeout: Duration::from_millis(*connect_timeout_ms),
                request_timeout: Duration::from_millis(*request_timeout_ms),
                reset_connection_interval: (*reset_connection_interval_secs > 0)
                    .then(|| Duration::from_secs(*reset_connection_interval_secs)),
                deflate: *deflate,
                // The truststore is read now: a bad one stops start-up.
                tls: match ssl {
                    None => None,
                    Some(settings) => Some(
                        crate::avro::tls::client_config(settings)
                            .map_err(|e| SinkError::new(&cfg.name, format!("ssl: {e}")))?,
                    ),
                },
            },
        )),
    };
    Ok((sink, batch))
}

const IDLE_BACKOFF_START: Duration = Duration::from_millis(10);
/// Also bounds how long an idle sink takes to notice shutdown.
const IDLE_BACKOFF_MAX: Duration = Duration::from_millis(500);
const ERROR_BACKOFF_START: Duration = Duration::from_millis(100);
const ERROR_BACKOFF_MAX: Duration = Duration::from_secs(5);

/// Drives one sink against one channel. See the module docs.
pub struct SinkRunner {
    pub name: String,
    pub channel: Arc<dyn Channel>,
    pub sink: Box<dyn Sink>,
    pub batch_size: usize,
    /// Where the runner counts (Flume's SinkCounter).
    pub counters: Arc<ComponentCounters>,
}

impl SinkRunner {
    /// Runs until `stop` is set, then finishes the batch in hand and stops the sink.
    pub fn run(mut self, stop: Arc<AtomicBool>) {
        let mut idle = IDLE_BACKOFF_START;
        let mut error_backoff = ERROR_BACKOFF_START;
        let mut events = Vec::with_capacity(self.batch_size);
        while !stop.load(Ordering::Acquire) {
            self.sink.tick();
            events.clear();
            let mut tx = self.channel.take_transaction();
            let taken = take_up_to(tx.as_mut(), self.batch_size, &mut events);
            let counters = &self.counters;
            if let Err(e) = taken {
                tx.rollback();
                counters.inc(Counter::ChannelReadFail);
                if matches!(e, ChannelError::Closed { .. }) {
                    break;
                }
                tracing::error!(sink = %self.name, "sink `{}`: take failed: {e}", self.name);
                sleep_unless_stopped(error_backoff, &stop);
                error_backoff = (error_backoff * 2).min(ERROR_BACKOFF_MAX);
                continue;
            }
            let n = events.len();
            if n == 0 {
                counters.inc(Counter::BatchEmptyCount);
            } else if n < self.batch_size {
                counters.inc(Counter::BatchUnderflowCount);
            } else {
                counters.inc(Counter::BatchCompleteCount);
            }
            if events.is_empty() {
                tx.rollback();
                if self.channel.wait_available(idle) {
                    // Events arrived (or another taker holds them: a short pause keeps two
                    // sinks on one channel from spinning).
                    std::thread::sleep(Duration::from_millis(1));
                } else {
                    idle = (idle * 2).min(IDLE_BACKOFF_MAX);
                }
                continue;
            }
            idle = IDLE_BACKOFF_START;
            counters.add(Counter::EventDrainAttemptCount, n as u64);
            match self.sink.process(&events) {
                Ok(()) => match tx.commit() {
                    Ok(()) => {
                        counters.add(Counter::EventDrainSuccessCount, n as u64);
                        error_backoff = ERROR_BACKOFF_START;
                    }
                    Err(e) => {
                        counters.inc(Counter::ChannelReadFail);
                        // The events stay in the channel and will be processed again.
                        tracing::error!(
                            sink = %self.name,
                            "sink `{}`: committing the take of {} events failed: {e}",
                            self.name,
                            events.len()
                        );
                        sleep_unless_stopped(error_backoff, &stop);
                        error_backoff = (error_backoff * 2).min(ERROR_BACKOFF_MAX);
                    }
                },
                Err(e) => {
                    tx.rollback();
                    counters.inc(Counter::EventWriteFail);
                    tracing::error!(
                        sink = %self.name,
                        "{e}; {} events returned to channel `{}`, retrying in {error_backoff:?}",
                        events.len(),
                        self.channel.name()
                    );
                    sleep_unless_stopped(error_backoff, &stop);
                    error_backoff = (error_backoff * 2).min(ERROR_BACKOFF_MAX);
                }
            }
        }
        if let Err(e) = self.sink.stop() {
            tracing::error!(sink = %self.name, "{e}");
        }
    }
}

/// Takes up to `max` events into `out`.
fn take_up_to(
    tx: &mut dyn crate::channel::TakeTransaction,
    max: usize,
    out: &mut Vec<Event>,
) -> Result<(), ChannelError> {
    while out.len() < max {
        if tx.take_batch(max - out.len(), out)? == 0 {
            break;
        }
    }
    Ok(())
}
