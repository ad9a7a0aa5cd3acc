//! Sources: the components that turn outside input into events and put them into channels.
//!
//! Each source runs on its own std thread (the agent has no async runtime yet; tokio may
//! replace these threads later). A source gets the channels it is bound to and a shared stop
//! flag; it returns from [`Source::run`] once the flag is set (or its input ends), after
//! finishing or abandoning the transaction in hand. Delivery rules shared by every source
//! live in [`put_all`]: every event goes into every bound channel (Flume's replicating
//! selector), a full channel is retried with a growing backoff (backpressure, never a drop),
//! and a put is only reported done once every channel's commit has returned.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::channel::{Channel, ChannelError};
use crate::config::{AsAny, Registered};
use crate::event::Event;
use crate::metrics::{ComponentCounters, Counter};

pub mod avro;
pub mod exec;
pub mod ip_filter;
pub mod netcat;
pub mod seq;
pub mod stdin;
pub mod stress;

/// Why a source could not start or had to give up on events.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The source's setup failed (binding a port, ...); names the source and what it did.
    #[error("source `{source_name}`: {message}")]
    Start {
        source_name: String,
        message: String,
    },
}

/// Why [`put_all`] gave up.
#[derive(Debug)]
pub enum PutError {
    /// Shutdown was requested while waiting for room; the events were not committed to every
    /// channel (those listed in `committed` have them).
    Stopped,
    /// A channel refused the events for a reason retrying will not fix (poisoned, closed,
    /// too large).
    Failed(ChannelError),
}

/// A running source.
pub trait Source: Send {
    /// Produces events until `stop` is set or the input ends.
    fn run(self: Box<Self>, stop: Arc<AtomicBool>);
}

/// A source's parsed configuration (its own keys, checked): what the agent needs to check it
/// against its channels and to start it.
pub trait SourceSpec: fmt::Debug + AsAny + Send + Sync {
    /// Events per channel transaction and the key that sets it, for the sources that batch
    /// (the agent checks it against each bound channel's `transactionCapacity`).
    fn batch_size(&self) -> Option<(usize, &'static str)> {
        None
    }

    /// Builds the source. Network sources bind here, so a port in use stops start-up with
    /// an error naming the source and address.
    fn build(&self, ctx: SourceContext) -> Result<Box<dyn Source>, SourceError>;
}

/// A source type as the agent's registry lists it.
pub type SourceType = Registered<dyn SourceSpec>;

/// What the agent hands a source it builds.
pub struct SourceContext {
    /// The source's name (`r1`), for logs and errors.
    pub name: String,
    /// The channels it puts into (through interceptors, when it has any).
    pub channels: Vec<Arc<dyn Channel>>,
    /// Where it counts (Flume's SourceCounter).
    pub counters: Arc<ComponentCounters>,
}

impl SourceContext {
    /// A context whose counters belong to no agent (tests, tools).
    pub fn detached(name: &str, channels: Vec<Arc<dyn Channel>>) -> SourceContext {
        SourceContext {
            name: name.to_string(),
            channels,
            counters: ComponentCounters::detached(name, crate::metrics::ComponentType::Source),
        }
    }
}

/// Binds `bind:port` for source `name`, non-blocking (so the accept loop can watch the stop
/// flag). Returns the listener and the address actually bound (port 0 picks one).
pub(crate) fn bind_listener(
    name: &str,
    bind: &str,
    port: u16,
) -> Result<(std::net::TcpListener, std::net::SocketAddr), SourceError> {
    let err = |what: &str, e: std::io::Error| SourceError::Start {
        source_name: name.to_string(),
        message: format!("{what} {bind}:{port}: {e}"),
    };
    let listener =
        std::net::TcpListener::bind((bind, port)).map_err(|e| err("cannot listen on", e))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| err("cannot make the listener non-blocking on", e))?;
    let addr = listener
        .local_addr()
        .map_err(|e| err("cannot read the address of", e))?;
    Ok((listener, addr))
}

/// First and largest wait between attempts to put into a full channel.
const PUT_BACKOFF_START: Duration = Duration::from_millis(10);
const PUT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// Puts `events` into every channel, each channel in one transaction, retrying a channel
/// that is full (or below its free-space floor) with a growing backoff until it has room or
/// `stop` is set. Returns only once every channel's commit has returned `Ok` (so the caller
/// may acknowledge the events), or with the reason it gave up. `source` names the caller
/// in logs.
pub fn put_all(
    source: &str,
    channels: &[Arc<dyn Channel>],
    events: &[Event],
    stop: &AtomicBool,
) -> Result<(), PutError> {
    for ch in channels {
        let mut backoff = PUT_BACKOFF_START;
        let mut warned = false;
        loop {
            match put_once(ch.as_ref(), events) {
                Ok(()) => break,
                Err(e @ (ChannelError::ChannelFull { .. } | ChannelError::DiskFull { .. })) => {
                    if !warned {
                        tracing::warn!(
                            source,
                            channel = ch.name(),
                            "source `{source}`: {e}; retrying with backoff"
                        );
                        warned = true;
                    }
                    if stop.load(Ordering::Acquire) {
                        return Err(PutError::Stopped);
                    }
                    sleep_unless_stopped(backoff, stop);
                    backoff = (backoff * 2).min(PUT_BACKOFF_MAX);
                }
                Err(e) => return Err(PutError::Failed(e)),
            }
        }
    }
    Ok(())
}

/// [`put_all`] for one batch of a batching source (seq, stress, exec, stdin), keeping Flume's
/// source counters (AppendBatch/Event Received and Accepted, ChannelWriteFail) and logging a
/// channel failure, after which the source stops. `kind` names the source type in logs.
pub(crate) fn put_batch_counted(
    source: &str,
    kind: &str,
    channels: &[Arc<dyn Channel>],
    batch: &[Event],
    stop: &AtomicBool,
    counters: &ComponentCounters,
) -> Result<(), PutError> {
    let n = batch.len() as u64;
    counters.inc(Counter::AppendBatchReceivedCount);
    counters.add(Counter::EventReceivedCount, n);
    let r = put_all(source, channels, batch, stop);
    match &r {
        Ok(()) => {
            counters.inc(Counter::AppendBatchAcceptedCount);
            counters.add(Counter::EventAcceptedCount, n);
        }
        Err(PutError::Stopped) => {}
        Err(PutError::Failed(e)) => {
            counters.inc(Counter::ChannelWriteFail);
            tracing::error!(source, "source `{source}` ({kind}) stops: {e}");
        }
    }
    r
}

fn put_once(ch: &dyn Channel, events: &[Event]) -> Result<(), ChannelError> {
    let mut tx = ch.put_transaction();
    for e in events {
        tx.put(e.clone())?;
    }
    tx.commit()
}

/// Sleeps for `d`, waking early (within 50 ms) once `stop` is set.
pub(crate) fn sleep_unless_stopped(d: Duration, stop: &AtomicBool) {
    let step = Duration::from_millis(50);
    let mut left = d;
    while !left.is_zero() && !stop.load(Ordering::Acquire) {
        let s = left.min(step);
        std::thread::sleep(s);
        left -= s;
    }
}
