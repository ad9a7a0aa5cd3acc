//! Monitoring: per-component counters with Flume's names and the registry that holds them,
//! rendered as Flume's JSON (`json.rs`, `GET /metrics`, what `-Dflume.monitoring.type=http`
//! serves) and as Prometheus text (`prometheus.rs`, `GET /metrics/prometheus`), served by a
//! tiny HTTP/1.1 server on a std thread (`server.rs`).
//!
//! Sources and sinks count into a [`ComponentCounters`] (lock-free `AtomicU64`s) handed to
//! them by the agent; channels are not counted here but read through [`Channel::stats`] at
//! request time. The [`Registry`] holds both, plus each component's StartTime/StopTime
//! (milliseconds since the epoch, 0 while not started/stopped, as Flume reports them), and
//! turns them into rows, one per component, that both renderings read. Each value in a row
//! is a `Field` (Flume's name, counter or gauge, HELP text) from one table in this file, so
//! the two endpoints always agree on which values exist and what they mean; the renderings
//! only name and format them. Callers use the re-exports here (`crate::metrics::X`); the
//! submodules are private.

mod json;
mod prometheus;
mod server;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::channel::Channel;

pub use server::{respond, MetricsServer, Response, MAX_REQUEST_BYTES};

/// Flume's default monitoring port.
pub const DEFAULT_PORT: u16 = 41414;

/// How a value moves, which decides how Prometheus treats it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Only goes up while the agent runs (Prometheus `counter`, name ending in `_total`).
    Counter,
    /// Goes up and down, or is a setting or a time (Prometheus `gauge`).
    Gauge,
}

/// One value a component reports: Flume's name for it, its kind and what it means.
#[derive(Debug)]
pub(crate) struct Field {
    /// Flume's name, the key in the JSON (`EventAcceptedCount`).
    pub(crate) name: &'static str,
    pub(crate) kind: Kind,
    /// What it counts, one sentence: Prometheus' `# HELP` text.
    pub(crate) help: &'static str,
}

/// A channel's values (read from [`Channel::stats`]), in the order they are rendered.
mod channel_fields {
    use super::{Field, Kind};

    pub static SIZE: Field = Field {
        name: "ChannelSize",
        kind: Kind::Gauge,
        help: "Events in the channel now.",
    };
    pub static CAPACITY: Field = Field {
        name: "ChannelCapacity",
        kind: Kind::Gauge,
        help: "Events the channel can hold (its capacity setting).",
    };
    pub static FILL_PERCENTAGE: Field = Field {
        name: "ChannelFillPercentage",
        kind: Kind::Gauge,
        help: "ChannelSize as a percentage of ChannelCapacity, 0 to 100.",
    };
    pub static PUT_ATTEMPT: Field = Field {
        name: "EventPutAttemptCount",
        kind: Kind::Counter,
        help: "Events sources tried to put into the channel.",
    };
    pub static PUT_SUCCESS: Field = Field {
        name: "EventPutSuccessCount",
        kind: Kind::Counter,
        help: "Events put into the channel by committed transactions.",
    };
    pub static TAKE_ATTEMPT: Field = Field {
        name: "EventTakeAttemptCount",
        kind: Kind::Counter,
        help: "Events sinks tried to take from the channel, counting takes that found it empty.",
    };
    pub static TAKE_SUCCESS: Field = Field {
        name: "EventTakeSuccessCount",
        kind: Kind::Counter,
        help: "Events taken from the channel.",
    };
    pub static PUT_ERROR: Field = Field {
        name: "EventPutErrorCount",
        kind: Kind::Counter,
        help: "Puts into the file channel that failed with an error.",
    };
    pub static TAKE_ERROR: Field = Field {
        name: "EventTakeErrorCount",
        kind: Kind::Counter,
        help: "Takes from the file channel that failed with an error.",
    };
    pub static UNHEALTHY: Field = Field {
        name: "Unhealthy",
        kind: Kind::Gauge,
        help: "1 once a write or sync of the file channel failed (it refuses commits until \
               the agent restarts), else 0.",
    };
    pub static COMMITS: Field = Field {
        name: "Commits",
        kind: Kind::Counter,
        help: "Transaction commits that wrote a record (file channel) or changed the queue \
               (memory channel).",
    };
    pub static FSYNCS: Field = Field {
        name: "Fsyncs",
        kind: Kind::Counter,
        help: "fdatasync calls on the channel's segment files (0 for the memory channel).",
    };
    pub static CHECKPOINTS: Field = Field {
        name: "Checkpoints",
        kind: Kind::Counter,
        help: "Checkpoints the channel wrote.",
    };
}

/// Every component's start and stop times.
static START_TIME: Field = Field {
    name: "StartTime",
    kind: Kind::Gauge,
    help: "When the component started, in milliseconds since the Unix epoch (0 before).",
};
static STOP_TIME: Field = Field {
    name: "StopTime",
    kind: Kind::Gauge,
    help: "When the component stopped, in milliseconds since the Unix epoch (0 while running).",
};

/// The counters of sources and sinks, by Flume's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    // Sources (Flume's SourceCounter).
    EventReceivedCount,
    EventAcceptedCount,
    AppendReceivedCount,
    AppendAcceptedCount,
    AppendBatchReceivedCount,
    AppendBatchAcceptedCount,
    OpenConnectionCount,
    EventReadFail,
    ChannelWriteFail,
    // Sinks (Flume's SinkCounter).
    ConnectionCreatedCount,
    ConnectionClosedCount,
    ConnectionFailedCount,
    BatchEmptyCount,
    BatchUnderflowCount,
    BatchCompleteCount,
    EventDrainAttemptCount,
    EventDrainSuccessCount,
    EventWriteFail,
    ChannelReadFail,
    /// flumen's: whether the sink is one its sink group sends to.
    Active,
}

const COUNTER_SLOTS: usize = 20;

/// A source's counters, in the order they are rendered.
pub const SOURCE_COUNTERS: &[Counter] = &[
    Counter::EventReceivedCount,
    Counter::EventAcceptedCount,
    Counter::AppendReceivedCount,
    Counter::AppendAcceptedCount,
    Counter::AppendBatchReceivedCount,
    Counter::AppendBatchAcceptedCount,
    Counter::OpenConnectionCount,
    Counter::EventReadFail,
    Counter::ChannelWriteFail,
];

/// A sink's counters, in the order they are rendered.
pub const SINK_COUNTERS: &[Counter] = &[
    Counter::ConnectionCreatedCount,
    Counter::ConnectionClosedCount,
    Counter::ConnectionFailedCount,
    Counter::BatchEmptyCount,
    Counter::BatchUnderflowCount,
    Counter::BatchCompleteCount,
    Counter::EventDrainAttemptCount,
    Counter::EventDrainSuccessCount,
    Counter::EventWriteFail,
    Counter::ChannelReadFail,
    Counter::Active,
];

impl Counter {
    /// Flume's name.
    pub fn name(self) -> &'static str {
        self.field().name
    }

    fn slot(self) -> usize {
        self as usize
    }

    /// The counter's name, kind and description: the one table both renderings read.
    fn field(self) -> &'static Field {
        match self {
            Counter::EventReceivedCount => &Field {
                name: "EventReceivedCount",
                kind: Kind::Counter,
                help: "Events the source received.",
            },
            Counter::EventAcceptedCount => &Field {
                name: "EventAcceptedCount",
                kind: Kind::Counter,
                help: "Events the source put into its channels.",
            },
            Counter::AppendReceivedCount => &Field {
                name: "AppendReceivedCount",
                kind: Kind::Counter,
                help: "Single-event append calls the avro source received.",
            },
            Counter::AppendAcceptedCount => &Field {
                name: "AppendAcceptedCount",
                kind: Kind::Counter,
                help:
                    "Single-event append calls whose event the avro source put into its channels.",
            },
            Counter::AppendBatchReceivedCount => &Field {
                name: "AppendBatchReceivedCount",
                kind: Kind::Counter,
                help: "Event batches the source received (avro appendBatch calls, or one per put).",
            },
            Counter::AppendBatchAcceptedCount => &Field {
                name: "AppendBatchAcceptedCount",
                kind: Kind::Counter,
                help: "Event batches the source put into its channels.",
            },
            Counter::OpenConnectionCount => &Field {
                name: "OpenConnectionCount",
                kind: Kind::Gauge,
                help: "Client connections the source has open now.",
            },
            Counter::EventReadFail => &Field {
                name: "EventReadFail",
                kind: Kind::Counter,
                help: "Events the source failed to read or decode.",
            },
            Counter::ChannelWriteFail => &Field {
                name: "ChannelWriteFail",
                kind: Kind::Counter,
                help: "Failed puts of events into the channels (channel full or failing).",
            },
            Counter::ConnectionCreatedCount => &Field {
                name: "ConnectionCreatedCount",
                kind: Kind::Counter,
                help: "Connections (avro sink) or files (hdfs sink) the sink opened.",
            },
            Counter::ConnectionClosedCount => &Field {
                name: "ConnectionClosedCount",
                kind: Kind::Counter,
                help: "Connections (avro sink) or files (hdfs sink) the sink closed.",
            },
            Counter::ConnectionFailedCount => &Field {
                name: "ConnectionFailedCount",
                kind: Kind::Counter,
                help: "Connections (avro sink) or files (hdfs sink) that failed to open or close.",
            },
            Counter::BatchEmptyCount => &Field {
                name: "BatchEmptyCount",
                kind: Kind::Counter,
                help: "Takes from the channel that found it empty.",
            },
            Counter::BatchUnderflowCount => &Field {
                name: "BatchUnderflowCount",
                kind: Kind::Counter,
                help: "Takes from the channel that got fewer events than the batch size.",
            },
            Counter::BatchCompleteCount => &Field {
                name: "BatchCompleteCount",
                kind: Kind::Counter,
                help: "Takes from the channel that got a full batch.",
            },
            Counter::EventDrainAttemptCount => &Field {
                name: "EventDrainAttemptCount",
                kind: Kind::Counter,
                help: "Events the sink tried to write.",
            },
            Counter::EventDrainSuccessCount => &Field {
                name: "EventDrainSuccessCount",
                kind: Kind::Counter,
                help: "Events the sink wrote and removed from the channel.",
            },
            Counter::EventWriteFail => &Field {
                name: "EventWriteFail",
                kind: Kind::Counter,
                help: "Batches the sink failed to write (their events stay in the channel).",
            },
            Counter::ChannelReadFail => &Field {
                name: "ChannelReadFail",
                kind: Kind::Counter,
                help: "Failed takes from the channel, or failed commits of a take.",
            },
            Counter::Active => &Field {
                name: "Active",
                kind: Kind::Gauge,
                help: "1 while the sink is one its runner sends batches to (a sink on its own: \
                       while it runs; in a failover group: the sink in use; in a load_balance \
                       group: while not backed off), else 0.",
            },
        }
    }
}

/// The kind of a component, Flume's "Type".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ComponentType {
    Source,
    Channel,
    Sink,
}

impl ComponentType {
    /// `SOURCE`, `CHANNEL`, `SINK`.
    pub fn flume_name(self) -> &'static str {
        match self {
            ComponentType::Source => "SOURCE",
            ComponentType::Channel => "CHANNEL",
            ComponentType::Sink => "SINK",
        }
    }
}

/// Milliseconds since the epoch (0 if the clock is before it).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Start and stop times of a component, ms since the epoch, 0 when not (yet) set.
#[derive(Debug, Default)]
pub struct Times {
    start: AtomicU64,
    stop: AtomicU64,
}

impl Times {
    /// Records the start now (and clears a previous stop).
    pub fn started(&self) {
        self.start.store(now_ms(), Ordering::Relaxed);
        self.stop.store(0, Ordering::Relaxed);
    }
    /// Records the stop now.
    pub fn stopped(&self) {
        self.stop.store(now_ms(), Ordering::Relaxed);
    }
    fn get(&self) -> (u64, u64) {
        (
            self.start.load(Ordering::Relaxed),
            self.stop.load(Ordering::Relaxed),
        )
    }
}

/// One source's or sink's counters. Cheap to update from any thread.
#[derive(Debug)]
pub struct ComponentCounters {
    name: String,
    ty: ComponentType,
    values: [AtomicU64; COUNTER_SLOTS],
    times: Times,
}

impl ComponentCounters {
    /// Counters of a component called `name`, not registered anywhere (what a source or sink
    /// built outside an agent counts into).
    pub fn detached(name: &str, ty: ComponentType) -> Arc<ComponentCounters> {
        Arc::new(ComponentCounters {
            name: name.to_string(),
            ty,
            values: std::array::from_fn(|_| AtomicU64::new(0)),
            times: Times::default(),
        })
    }

    /// The component name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Adds 1.
    pub fn inc(&self, c: Counter) {
        self.add(c, 1);
    }

    /// Adds `n`.
    pub fn add(&self, c: Counter, n: u64) {
        self.values[c.slot()].fetch_add(n, Ordering::Relaxed);
    }

    /// Subtracts 1, never below 0 (for gauges such as OpenConnectionCount).
    pub fn dec(&self, c: Counter) {
        let _ = self.values[c.slot()].fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
            Some(v.saturating_sub(1))
        });
    }

    /// Sets a gauge (such as Active).
    pub fn set(&self, c: Counter, v: u64) {
        self.values[c.slot()].store(v, Ordering::Relaxed);
    }

    /// The current value.
    pub fn get(&self, c: Counter) -> u64 {
        self.values[c.slot()].load(Ordering::Relaxed)
    }

    /// Start/stop times.
    pub fn times(&self) -> &Times {
        &self.times
    }

    fn counters(&self) -> &'static [Counter] {
        match self.ty {
            ComponentType::Sink => SINK_COUNTERS,
            _ => SOURCE_COUNTERS,
        }
    }
}

struct ChannelEntry {
    channel: Arc<dyn Channel>,
    /// File channels add EventPutErrorCount, EventTakeErrorCount and Unhealthy.
    is_file: bool,
    times: Times,
}

/// Every component's counters; what the HTTP server renders.
#[derive(Default)]
pub struct Registry {
    components: Mutex<Vec<Arc<ComponentCounters>>>,
    channels: Mutex<Vec<Arc<ChannelEntry>>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry").finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking holder cannot leave these vectors inconsistent; keep serving.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// One row of a rendering: the component's type and name and its values.
struct Row {
    ty: ComponentType,
    name: String,
    values: Vec<(&'static Field, Value)>,
}

#[derive(Clone, Copy)]
enum Value {
    Int(u64),
    Float(f64),
}

impl Value {
    fn render(self) -> String {
        match self {
            Value::Int(v) => v.to_string(),
            // Java's Double.toString for ordinary values: always a fraction part ("0.0").
            Value::Float(v) => format!("{v:?}"),
        }
    }
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Arc<Registry> {
        Arc::new(Registry::default())
    }

    /// Registers (and returns) the counters of a source or sink called `name`.
    pub fn component(&self, name: &str, ty: ComponentType) -> Arc<ComponentCounters> {
        let c = ComponentCounters::detached(name, ty);
        lock(&self.components).push(Arc::clone(&c));
        c
    }

    /// Registers a channel; its counters are read from [`Channel::stats`] when rendering.
    /// `is_file` adds the file channel's extra counters. Returns its start/stop times.
    pub fn channel(&self, channel: Arc<dyn Channel>, is_file: bool) -> Arc<ChannelTimes> {
        let e = Arc::new(ChannelEntry {
            channel,
            is_file,
            times: Times::default(),
        });
        lock(&self.channels).push(Arc::clone(&e));
        Arc::new(ChannelTimes(e))
    }

    /// Registers counters made with [`ComponentCounters::detached`] (the agent registers a
    /// component's counters once its thread runs).
    pub fn register(&self, counters: Arc<ComponentCounters>) {
        lock(&self.components).push(counters);
    }

    /// Removes a source's or sink's counters (the component was removed or is being
    /// replaced by a configuration reload).
    pub fn unregister(&self, counters: &Arc<ComponentCounters>) {
        lock(&self.components).retain(|c| !Arc::ptr_eq(c, counters));
    }

    /// Removes a channel registered by [`Registry::channel`] (closed by a reload). Drops the
    /// registry's reference to the channel, so a reopened one can take its place.
    pub fn unregister_channel(&self, times: &ChannelTimes) {
        lock(&self.channels).retain(|e| !Arc::ptr_eq(e, &times.0));
    }

    fn rows(&self) -> Vec<Row> {
        let mut rows = Vec::new();
        for e in lock(&self.channels).iter() {
            let s = e.channel.stats();
            let fill = if s.capacity == 0 {
                0.0
            } else {
                s.size as f64 * 100.0 / s.capacity as f64
            };
            use channel_fields as f;
            let mut values = vec![
                (&f::SIZE, Value::Int(s.size)),
                (&f::CAPACITY, Value::Int(s.capacity)),
                (&f::FILL_PERCENTAGE, Value::Float(fill)),
                (&f::PUT_ATTEMPT, Value::Int(s.put_attempts)),
                (&f::PUT_SUCCESS, Value::Int(s.put_successes)),
                (&f::TAKE_ATTEMPT, Value::Int(s.take_attempts)),
                (&f::TAKE_SUCCESS, Value::Int(s.take_successes)),
            ];
            if e.is_file {
                values.extend([
                    (&f::PUT_ERROR, Value::Int(s.put_errors)),
                    (&f::TAKE_ERROR, Value::Int(s.take_errors)),
                    (&f::UNHEALTHY, Value::Int(u64::from(s.poisoned))),
                ]);
            }
            values.extend([
                (&f::COMMITS, Value::Int(s.commits)),
                (&f::FSYNCS, Value::Int(s.fsyncs)),
                (&f::CHECKPOINTS, Value::Int(s.checkpoints)),
            ]);
            push_times(&mut values, &e.times);
            rows.push(Row {
                ty: ComponentType::Channel,
                name: e.channel.name().to_string(),
                values,
            });
        }
        for c in lock(&self.components).iter() {
            let mut values: Vec<(&'static Field, Value)> = c
                .counters()
                .iter()
                .map(|&k| (k.field(), Value::Int(c.get(k))))
                .collect();
            push_times(&mut values, &c.times);
            rows.push(Row {
                ty: c.ty,
                name: c.name.clone(),
                values,
            });
        }
        rows
    }
}

/// A channel's start/stop times, recorded by the agent.
pub struct ChannelTimes(Arc<ChannelEntry>);

impl ChannelTimes {
    /// The times.
    pub fn times(&self) -> &Times {
        &self.0.times
    }
}

fn push_times(values: &mut Vec<(&'static Field, Value)>, t: &Times) {
    let (start, stop) = t.get();
    values.push((&START_TIME, Value::Int(start)));
    values.push((&STOP_TIME, Value::Int(stop)));
}

#[cfg(test)]
pub(crate) mod test_support {
    use super::*;
    use crate::channel::memory::{MemoryChannel, MemoryChannelConfig};
    use crate::event::Event;

    /// A registry with a memory channel `c1` holding one event, a source `r1` and a sink `k1`
    /// with a few counts; every rendering's tests start from it.
    pub(crate) fn registry() -> (
        Arc<Registry>,
        Arc<ComponentCounters>,
        Arc<ComponentCounters>,
    ) {
        let reg = Registry::new();
        let ch: Arc<dyn Channel> =
            Arc::new(MemoryChannel::new("c1", MemoryChannelConfig::default()).expect("channel"));
        let mut tx = ch.put_transaction();
        tx.put(Event::new(b"x".to_vec())).expect("put");
        tx.commit().expect("commit");
        reg.channel(ch, false).times().started();
        let src = reg.component("r1", ComponentType::Source);
        let sink = reg.component("k1", ComponentType::Sink);
        src.add(Counter::EventReceivedCount, 3);
        src.add(Counter::EventAcceptedCount, 2);
        src.inc(Counter::OpenConnectionCount);
        src.dec(Counter::OpenConnectionCount);
        src.dec(Counter::OpenConnectionCount);
        sink.add(Counter::EventDrainSuccessCount, 7);
        (reg, src, sink)
    }
}
