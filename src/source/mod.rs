//! Sources: the components that turn outside input into events and put them into channels.
//!
//! Each source runs on its own std thread (the agent has no async runtime yet; tokio may
//! replace these threads later). A source gets the channels it is bound to and a shared stop
//! flag; it returns from [`Source::run`] once the flag is set (or its input ends), after
//! finishing or abandoning the transaction in hand. Delivery rules shared by every source
//! live in [`put_all`]: every event goes into every bound channel (Flume's replicating
//! selector), a full channel is retried with a growing backoff (backpressure, never a drop),
//! and a put is only reported done once every channel's commit has returned.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::channel::{Channel, ChannelError};
use crate::config::{SourceConfig, SourceKind};
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

/// Builds the source `cfg` bound to `channels`, counting into `counters`. Network sources
/// bind here, so a port in use stops start-up with an error naming the source and address.
pub fn build(
    cfg: &SourceConfig,
    channels: Vec<Arc<dyn Channel>>,
    counters: Arc<ComponentCounters>,
) -> Result<Box<dyn Source>, SourceError> {
    match &cfg.kind {
        SourceKind::Seq {
            total_events,
            batch_size,
        } => Ok(Box::new(
            seq::SeqSource::new(&cfg.name, channels, *total_events, *batch_size)
                .with_counters(counters),
        )),
        SourceKind::Stress {
            size,
            max_total_events,
            batch_size,
            max_events_per_second,
        } => Ok(Box::new(
            stress::StressSource::new(
                &cfg.name,
                channels,
                *size,
                *max_total_events,
                *batch_size,
                *max_events_per_second,
            )
            .with_counters(counters),
        )),
        SourceKind::Netcat {
            bind,
            port,
            max_line_length,
            ack_every_event,
        } => Ok(Box::new(
            netcat::NetcatSource::bind(
                &cfg.name,
                channels,
                bind,
                *port,
                *max_line_length,
                *ack_every_event,
            )?
            .with_counters(counters),
        )),
        SourceKind::Avro {
            bind,
            port,
            threads: _,
            max_connections,
            max_frame_bytes,
            deflate,
            ip_filter,
            idle_timeout_secs,
            ssl,
        } => {
            // The keystore is read before the port is bound: a bad one stops start-up.
            let tls = match ssl {
                None => None,
                Some(settings) => Some(crate::avro::tls::server_config(settings).map_err(|e| {
                    SourceError::Start {
                        source_name: cfg.name.clone(),
                        message: format!("ssl: {e}"),
                    }
                })?),
            };
            Ok(Box::new(
                avro::AvroSource::bind(
                    &cfg.name,
                    channels,
                    bind,
                    *port,
                    *max_connections,
                    *max_frame_bytes,
                )?
                .with_tls(tls)
                .with_deflate(*deflate)
                .with_ip_filter(ip_filter.clone())
                .with_idle_timeout(std::time::Duration::from_secs(*idle_timeout_secs))
                .with_counters(counters),
            ))
        }
        SourceKind::Exec {
            command,
            shell,
            restart,
            restart_throttle_ms,
            batch_size,
            batch_timeout_ms,
            log_stderr,
        } => Ok(Box::new(
            exec::ExecSource::new(
                &cfg.name,
                channels,
                command,
                shell.as_deref(),
                *restart,
                *restart_throttle_ms,
                *batch_size,
                *batch_timeout_ms,
                *log_stderr,
            )?
            .with_counters(counters),
        )),
        SourceKind::Stdin { batch_size } => Ok(Box::new(
            stdin::StdinSource::new(&cfg.name, channels, *batch_size).with_counters(counters),
        )),
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
