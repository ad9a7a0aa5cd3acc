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
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::channel::{Channel, ChannelError};
use crate::config::{AsAny, Registered};
use crate::event::Event;
use crate::metrics::{ComponentCounters, Counter};
use crate::report::ReportPolicy;
use crate::route::ChannelProcessor;
use crate::stop::sleep_unless_stopped;

pub mod avro;
pub mod commit;
pub mod exec;
pub mod http;
pub mod ip_filter;
pub mod kafka;
pub(crate) mod lines;
pub mod netcat;
pub mod seq;
pub mod spooldir;
pub mod stdin;
pub mod stress;
pub mod syslog;
pub mod taildir;
pub mod thrift;

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
    /// Where it puts: its interceptors, channel selector and channels.
    pub channels: Arc<ChannelProcessor>,
    /// Where it counts (Flume's SourceCounter).
    pub counters: Arc<ComponentCounters>,
}

impl SourceContext {
    /// A context whose counters belong to no agent (tests, tools).
    /// Its events go to every one of `channels`, unchanged.
    pub fn detached(name: &str, channels: Vec<Arc<dyn Channel>>) -> SourceContext {
        SourceContext {
            name: name.to_string(),
            channels: Arc::new(ChannelProcessor::replicating(name, channels)),
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

/// Counts one open connection (for `max-connections` and OpenConnectionCount) until dropped,
/// so the count goes down however the connection thread ends.
pub(crate) struct OpenGuard {
    open: Arc<AtomicUsize>,
    counters: Arc<ComponentCounters>,
}

impl OpenGuard {
    pub(crate) fn new(open: &Arc<AtomicUsize>, counters: &Arc<ComponentCounters>) -> OpenGuard {
        open.fetch_add(1, Ordering::AcqRel);
        counters.inc(Counter::OpenConnectionCount);
        OpenGuard {
            open: Arc::clone(open),
            counters: Arc::clone(counters),
        }
    }
}

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.open.fetch_sub(1, Ordering::AcqRel);
        self.counters.dec(Counter::OpenConnectionCount);
    }
}

/// First and largest wait between attempts to put into a full channel.
const PUT_BACKOFF_START: Duration = Duration::from_millis(10);
const PUT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// Puts `events` through `channels` (the source's interceptors, selector and channels; see
/// [`crate::route`]: every required channel commits the batch, or none does), retrying while
/// a channel is full (or below its free-space floor) with a growing backoff until it has room
/// or `stop` is set. Returns only once every required channel's commit has returned `Ok` (so
/// the caller may acknowledge the events), or with the reason it gave up. `source` names the
/// caller in logs.
///
/// A channel that keeps refusing is logged once per episode (per source and channel, across
/// every thread of the source), with a reminder and a count every minute and one line once
/// it accepts puts again (see the `refusals` module below).
pub fn put_all(
    source: &str,
    channels: &ChannelProcessor,
    events: &[Event],
    stop: &AtomicBool,
) -> Result<(), PutError> {
    put_all_with(
        source,
        channels,
        events,
        stop,
        ReportPolicy::default(),
        PUT_BACKOFF_MAX,
    )
}

/// [`put_all`] whose wait between attempts on a full channel grows up to `max_backoff` (a
/// source's own key, such as spooldir's `maxBackoff`) instead of the usual second.
pub fn put_all_backoff(
    source: &str,
    channels: &ChannelProcessor,
    events: &[Event],
    stop: &AtomicBool,
    max_backoff: Duration,
) -> Result<(), PutError> {
    put_all_with(
        source,
        channels,
        events,
        stop,
        ReportPolicy::default(),
        max_backoff,
    )
}

fn put_all_with(
    source: &str,
    channels: &ChannelProcessor,
    events: &[Event],
    stop: &AtomicBool,
    policy: ReportPolicy,
    max_backoff: Duration,
) -> Result<(), PutError> {
    put_with(source, channels, events, stop, policy, max_backoff, true)
}

/// [`put_all_with`], or (`wait` false) one attempt whose refusal by a full channel is
/// returned as [`PutError::Failed`] with the retryable error, still reported once per episode.
pub(crate) fn put_with(
    source: &str,
    channels: &ChannelProcessor,
    events: &[Event],
    stop: &AtomicBool,
    policy: ReportPolicy,
    max_backoff: Duration,
    wait: bool,
) -> Result<(), PutError> {
    let mut backoff = PUT_BACKOFF_START.min(max_backoff);
    let mut stopped = false;
    let put = channels.put(events, &mut |ch, e| {
        refusals::refused(source, ch, e, policy, wait);
        if !wait {
            return false;
        }
        if stop.load(Ordering::Acquire) {
            stopped = true;
            return false;
        }
        sleep_unless_stopped(backoff, stop);
        backoff = (backoff * 2).min(max_backoff);
        true
    });
    match put {
        Ok(()) => {
            for ch in channels.channels() {
                refusals::accepted(source, ch);
            }
            Ok(())
        }
        Err(e) => {
            for ch in channels.channels() {
                refusals::forget(source, ch);
            }
            if stopped {
                Err(PutError::Stopped)
            } else {
                Err(PutError::Failed(e.error))
            }
        }
    }
}

/// The refusal episodes of [`put_all`], one per (source, channel) pair that is being refused
/// now. They live here rather than in each source because `put_all` is a free function that
/// many threads of one source call (one per netcat or avro connection): a full channel is one
/// episode for the source, not one per connection or per batch.
///
/// Channels are told apart by identity, not by name, so two agents (or tests) in one process
/// with the same names keep their own episodes; an entry holds a `Weak` to its channel, which
/// keeps the address from being reused by another channel while the entry lives. An entry
/// exists only while its channel refuses (or settles); `ACTIVE` lets the common path (no
/// episode anywhere) skip the lock.
mod refusals {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Weak};
    use std::time::Instant;

    use parking_lot::Mutex;

    use crate::channel::{Channel, ChannelError};
    use crate::report::{count, human, FailureReporter, Recovered, Report, ReportPolicy};

    type Key = std::mem::Discriminant<ChannelError>;

    struct Entry {
        source: String,
        channel: Weak<dyn Channel>,
        reporter: FailureReporter<Key>,
    }

    static EPISODES: Mutex<Vec<Entry>> = Mutex::new(Vec::new());
    static ACTIVE: AtomicUsize = AtomicUsize::new(0);

    fn position(entries: &[Entry], source: &str, ch: &Arc<dyn Channel>) -> Option<usize> {
        entries.iter().position(|e| {
            std::ptr::addr_eq(e.channel.as_ptr(), Arc::as_ptr(ch)) && e.source == source
        })
    }

    fn recovered(source: &str, ch: &Arc<dyn Channel>, r: Recovered) {
        tracing::info!(
            source,
            channel = ch.name(),
            "source `{source}`: channel `{}` accepts puts again after {} over {}",
            ch.name(),
            count(r.failures, "refusal", "refusals"),
            human(r.lasted)
        );
    }

    /// `ch` refused a put from `source` with the retryable `e`; the caller backs off.
    pub(super) fn refused(
        source: &str,
        ch: &Arc<dyn Channel>,
        e: &ChannelError,
        policy: ReportPolicy,
        waits: bool,
    ) {
        let now = Instant::now();
        let report = {
            let mut entries = EPISODES.lock();
            let i = match position(&entries, source, ch) {
                Some(i) => i,
                None => {
                    entries.push(Entry {
                        source: source.to_string(),
                        channel: Arc::downgrade(ch),
                        reporter: FailureReporter::new(policy),
                    });
                    ACTIVE.fetch_add(1, Ordering::Relaxed);
                    entries.len() - 1
                }
            };
            match entries.get_mut(i) {
                Some(entry) => entry.reporter.failure(std::mem::discriminant(e), now),
                None => return,
            }
        };
        let remind = human(policy.remind_every);
        match report {
            Report::Quiet => tracing::debug!(source, "source `{source}`: {e}; retrying"),
            Report::First { ended } => {
                if let Some(r) = ended {
                    recovered(source, ch, r);
                }
                let then = if waits {
                    "the source waits and retries with backoff, nothing is dropped"
                } else {
                    "the source refuses its clients' events until there is room (they resend)"
                };
                tracing::warn!(
                    source,
                    channel = ch.name(),
                    "source `{source}`: {e}; {then}; reported again every {remind} while it lasts"
                );
            }
            Report::Changed { .. } => tracing::warn!(
                source,
                channel = ch.name(),
                "source `{source}`: channel `{}` now refuses puts for another reason: {e}",
                ch.name()
            ),
            Report::Reminder {
                failures,
                total,
                since,
            } => tracing::warn!(
                source,
                channel = ch.name(),
                "source `{source}`: channel `{}` still refuses puts: {} more since the last \
                 report, {total} in {}; latest: {e}",
                ch.name(),
                count(failures, "refusal", "refusals"),
                human(since)
            ),
        }
    }

    /// `ch` accepted a put from `source`: ends a refusal episode once it has settled.
    pub(super) fn accepted(source: &str, ch: &Arc<dyn Channel>) {
        if ACTIVE.load(Ordering::Relaxed) == 0 {
            return;
        }
        let ended = {
            let mut entries = EPISODES.lock();
            let Some(i) = position(&entries, source, ch) else {
                return;
            };
            let ended = entries
                .get_mut(i)
                .and_then(|e| e.reporter.success(Instant::now()));
            if ended.is_some() {
                entries.swap_remove(i);
                ACTIVE.fetch_sub(1, Ordering::Relaxed);
            }
            ended
        };
        if let Some(r) = ended {
            recovered(source, ch, r);
        }
    }

    /// `source` gave up on `ch` (stopping, or a failure that is not a refusal): drops its
    /// episode without a recovery line.
    pub(super) fn forget(source: &str, ch: &Arc<dyn Channel>) {
        if ACTIVE.load(Ordering::Relaxed) == 0 {
            return;
        }
        let mut entries = EPISODES.lock();
        if let Some(i) = position(&entries, source, ch) {
            entries.swap_remove(i);
            ACTIVE.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// [`put_all`] for one batch of a batching source (seq, stress, exec, stdin), keeping Flume's
/// source counters (AppendBatch/Event Received and Accepted, ChannelWriteFail) and logging a
/// channel failure, after which the source stops. `kind` names the source type in logs.
pub(crate) fn put_batch_counted(
    source: &str,
    kind: &str,
    channels: &ChannelProcessor,
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

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::channel::memory::{MemoryChannel, MemoryChannelConfig};
    use crate::report::capture::{with_captured, Captured};

    const DEADLINE: Duration = Duration::from_secs(30);

    fn put_once(ch: &dyn Channel, events: &[Event]) -> Result<(), ChannelError> {
        let mut tx = ch.put_transaction();
        for e in events {
            tx.put(e.clone())?;
        }
        tx.commit()
    }

    /// A memory channel of 10 events that refuses at once when full (keep-alive 0), filled.
    fn full_channel() -> Arc<dyn Channel> {
        let cfg = MemoryChannelConfig {
            capacity: 10,
            transaction_capacity: 10,
            keep_alive: Duration::ZERO,
            ..MemoryChannelConfig::default()
        };
        let ch: Arc<dyn Channel> = Arc::new(MemoryChannel::new("c1", cfg).expect("channel"));
        put_once(ch.as_ref(), &events(10)).expect("fill");
        ch
    }

    fn events(n: usize) -> Vec<Event> {
        (0..n).map(|i| Event::new(i.to_string())).collect()
    }

    /// Waits until `ch` has refused `n` more puts than `from`.
    fn wait_refusals(ch: &dyn Channel, from: u64, n: u64) -> u64 {
        let end = Instant::now() + DEADLINE;
        loop {
            let now = ch.stats().put_errors;
            if now >= from + n {
                return now;
            }
            assert!(
                Instant::now() < end,
                "{} refusals, waited for {}",
                now - from,
                n
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Takes `n` events, making room for a waiting put.
    fn drain(ch: &dyn Channel, n: usize) {
        let mut tx = ch.take_transaction();
        let mut out = Vec::new();
        tx.take_batch(n, &mut out).expect("take");
        assert_eq!(out.len(), n);
        tx.commit().expect("commit take");
    }

    /// Runs `put_all_with` for each of `batches` on a thread that captures its log.
    fn putter(
        ch: &Arc<dyn Channel>,
        batches: usize,
        policy: ReportPolicy,
    ) -> (Captured, std::thread::JoinHandle<()>) {
        let log = Captured::default();
        let (ch, into) = (Arc::clone(ch), log.clone());
        let t = std::thread::spawn(move || {
            with_captured(&into, || {
                let stop = AtomicBool::new(false);
                for _ in 0..batches {
                    let r = put_all_with(
                        "r1",
                        &ChannelProcessor::replicating("r1", vec![Arc::clone(&ch)]),
                        &events(5),
                        &stop,
                        policy,
                        PUT_BACKOFF_MAX,
                    );
                    assert!(r.is_ok(), "put_all gave up");
                }
            });
        });
        (log, t)
    }

    #[test]
    fn a_full_channel_is_reported_once_and_its_end_once() {
        let ch = full_channel();
        let policy = ReportPolicy {
            remind_every: Duration::from_secs(3600),
            settle: Duration::ZERO,
        };
        let (log, t) = putter(&ch, 1, policy);
        wait_refusals(ch.as_ref(), 0, 4);
        drain(ch.as_ref(), 10);
        t.join().expect("putter");
        let warned = log.lines("WARN", "source `r1`: channel `c1` is full");
        assert_eq!(warned.len(), 1, "{}", log.text());
        let refusals = ch.stats().put_errors;
        let recovered = log.lines(
            "INFO",
            &format!("source `r1`: channel `c1` accepts puts again after {refusals} refusals"),
        );
        assert_eq!(recovered.len(), 1, "{}", log.text());
    }

    /// Backpressure flaps: a batch is refused, room is made, the next batch is refused again.
    /// Within the settle time that is one episode: one line, not one per batch.
    #[test]
    fn a_channel_that_stays_at_capacity_is_one_episode_across_batches() {
        let ch = full_channel();
        let policy = ReportPolicy {
            remind_every: Duration::from_secs(3600),
            settle: Duration::from_secs(3600),
        };
        let (log, t) = putter(&ch, 3, policy);
        let mut seen = 0;
        for _ in 0..3 {
            seen = wait_refusals(ch.as_ref(), seen, 2);
            // Room for exactly this batch: the next one finds the channel full again.
            drain(ch.as_ref(), 5);
        }
        t.join().expect("putter");
        assert_eq!(
            log.lines("WARN", "is full").len(),
            1,
            "one report for the whole episode:\n{}",
            log.text()
        );
        assert!(
            log.lines("INFO", "accepts puts again").is_empty(),
            "{}",
            log.text()
        );
    }

    #[test]
    fn a_failure_that_is_not_backpressure_is_returned_at_once() {
        let cfg = MemoryChannelConfig {
            capacity: 10,
            transaction_capacity: 2,
            ..MemoryChannelConfig::default()
        };
        let ch: Arc<dyn Channel> = Arc::new(MemoryChannel::new("c1", cfg).expect("channel"));
        let stop = AtomicBool::new(false);
        match put_all(
            "r1",
            &ChannelProcessor::replicating("r1", vec![ch]),
            &events(3),
            &stop,
        ) {
            Err(PutError::Failed(e @ ChannelError::TransactionFull { .. })) => {
                assert!(!e.is_retryable());
            }
            Err(PutError::Failed(e)) => panic!("{e}"),
            Err(PutError::Stopped) => panic!("stopped"),
            Ok(()) => panic!("3 events fit a transactionCapacity of 2"),
        }
    }
}
