//! Sinks: the components that drain one channel each, and the [`SinkRunner`] loop that drives
//! them.
//!
//! Each sink runs on its own std thread, or on its sink group's (see [`group`]: the group's
//! runner picks the sink for each batch; both runners share the one-batch step, `Drain`).
//! The agent has no async runtime yet; tokio may replace these threads later. The runner takes up to the sink's batch size in one take
//! transaction, hands the events to [`Sink::process`], and commits the take only when
//! processing succeeded, so a committed take's events have been handled (for file_roll:
//! written and fsynced). A processing error rolls the take back (the events return to the
//! head of the channel) and the runner retries: events are never lost, though they may be
//! delivered twice if the process dies between processing and the take's commit
//! (at-least-once). An empty channel is waited on with [`Channel::wait_available`] with a
//! growing timeout (Flume's SinkRunner backs off likewise).
//!
//! Failures: each [`SinkError`] says whether a retry can help ([`Retry`], decided by the sink
//! where the failure happened, see [`error`]). A retryable one is retried after a growing
//! backoff (100 ms doubling to 5 s); a permanent one (a permission, a path that is a file, an
//! event the template cannot place) after the longest, so the events stay in the channel and
//! flow once an operator fixes the cause, without a restart. Either way the log gets one line
//! when a cause starts or changes (WARN if retryable, ERROR if permanent, with what the
//! operator can do), a reminder with a count every minute while it lasts, and one line when
//! the sink delivers again (see [`report`]); every single failure is still counted and logged
//! at debug level.
//!
//! Monitoring: the runner counts into its [`ComponentCounters`] where Flume's sinks do:
//! events taken (EventDrainAttemptCount), events whose take committed
//! (EventDrainSuccessCount), each take by how full it was (BatchEmptyCount,
//! BatchUnderflowCount, BatchCompleteCount), processing errors (EventWriteFail) and failed
//! takes or take commits (ChannelReadFail).
//!
//! Shutdown: once the stop flag is set the runner finishes the batch in hand (process and
//! commit, or roll back) and stops; what is left stays in the channel.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::channel::{Channel, ChannelError};
use crate::config::{AsAny, Registered};
use crate::event::Event;
use crate::metrics::{ComponentCounters, Counter};
use crate::report::{FailureReporter, Recovered, Report, ReportPolicy};
use crate::stop::sleep_unless_stopped;

pub mod avro;
pub mod error;
pub mod file_roll;
pub mod group;
pub mod hbase;
pub mod hdfs;
pub mod kafka;
pub mod logger;
pub mod null;
mod pipeline;
pub mod retry;
mod rpc_conn;
pub mod serializer;
pub mod thrift;

pub use error::{CauseKey, Retry, SinkCause, SinkError};

/// What a sink does with events.
pub trait Sink: Send {
    /// Handles a batch. `Ok` means the events are done with (for a durable sink: durable), so
    /// the runner may commit the take; `Err` makes it roll back and retry later, soon if the
    /// error is [`Retry::Retryable`], at the longest backoff if it is permanent.
    fn process(&mut self, events: &[Event]) -> Result<(), SinkError>;
    /// How many batches the sink can have handed over and not yet done. With more than one,
    /// the lone runner uses [`Sink::send`] and [`Sink::finish_oldest`] instead of `process`
    /// (see [`pipeline`]): it keeps each batch's take open until the sink reports it done, and
    /// takes the next batch meanwhile, so waiting for a peer's acknowledgement overlaps the
    /// next batch. Sink groups always use `process`. Default 1.
    fn max_in_flight(&self) -> usize {
        1
    }
    /// Hands a batch over without waiting for it to be done; `Err` fails this batch alone
    /// (batches handed over before it are still finished with `finish_oldest`). The events
    /// are not kept past the call. Default: `process`.
    fn send(&mut self, events: &[Event]) -> Result<(), SinkError> {
        self.process(events)
    }
    /// Waits for the oldest batch handed over with `send` and not yet finished: `Ok` means it
    /// is done (its take may commit), `Err` that it failed (its take rolls back). Batches
    /// finish in the order they were sent. Default: `Ok` (`send` did the work).
    fn finish_oldest(&mut self) -> Result<(), SinkError> {
        Ok(())
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

/// A sink's parsed configuration (its own keys, checked): what the agent needs to check it
/// against its channel and to start it.
pub trait SinkSpec: fmt::Debug + AsAny + Send + Sync {
    /// Events per take transaction and the key that sets it (the agent checks it against
    /// the channel's `transactionCapacity`); `None` takes one event at a time.
    fn batch_size(&self) -> Option<(usize, &'static str)>;

    /// Builds the sink called `name`. Whatever can be checked before the first event (a
    /// truststore, an output directory) is checked here, so a mistake stops start-up.
    fn build(&self, name: &str) -> Result<Box<dyn Sink>, SinkError>;
}

/// A sink type as the agent's registry lists it.
pub type SinkType = Registered<dyn SinkSpec>;

const IDLE_BACKOFF_START: Duration = Duration::from_millis(10);
/// Also bounds how long an idle sink takes to notice shutdown.
const IDLE_BACKOFF_MAX: Duration = Duration::from_millis(500);

/// How the runner waits after failures and when it logs them. The agent runs with
/// [`RunnerPolicy::default`]; tests shorten the waits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunnerPolicy {
    /// The wait after the first retryable failure (100 ms); it doubles with each failure in a
    /// row, up to `backoff_max`.
    pub backoff_start: Duration,
    /// The longest wait (5 s), and the wait after every permanent failure: slow enough not to
    /// hammer what an operator must fix, quick enough that a fix shows at once.
    pub backoff_max: Duration,
    /// When a repeating failure is logged again, and how long a recovery must hold.
    pub report: ReportPolicy,
}

impl Default for RunnerPolicy {
    fn default() -> Self {
        RunnerPolicy {
            backoff_start: Duration::from_millis(100),
            backoff_max: Duration::from_secs(5),
            report: ReportPolicy::default(),
        }
    }
}

/// The wait before the next attempt after failures in a row.
struct Backoff {
    policy: RunnerPolicy,
    next: Duration,
}

impl Backoff {
    fn new(policy: RunnerPolicy) -> Backoff {
        Backoff {
            policy,
            next: policy.backoff_start,
        }
    }

    /// The wait after a failure: growing for a retryable one, the longest for a permanent one
    /// (and the backoff stays there until a success).
    fn after_failure(&mut self, retryable: bool) -> Duration {
        if !retryable {
            self.next = self.policy.backoff_max;
        }
        let wait = self.next;
        self.next = (self.next * 2).min(self.policy.backoff_max);
        wait
    }

    /// The wait [`Backoff::after_failure`] would return, without counting a failure.
    fn peek(&self, retryable: bool) -> Duration {
        if retryable {
            self.next
        } else {
            self.policy.backoff_max
        }
    }

    fn reset(&mut self) {
        self.next = self.policy.backoff_start;
    }
}

/// Drives one sink against one channel. See the module docs.
pub struct SinkRunner {
    pub name: String,
    /// The sink's type as configured (`hdfs`, `avro`, ...), for log lines.
    pub type_name: &'static str,
    pub channel: Arc<dyn Channel>,
    pub sink: Box<dyn Sink>,
    pub batch_size: usize,
    /// Where the runner counts (Flume's SinkCounter).
    pub counters: Arc<ComponentCounters>,
}

impl SinkRunner {
    /// Runs until `stop` is set, then finishes the batch in hand and stops the sink.
    pub fn run(self, stop: Arc<AtomicBool>) {
        self.run_with(stop, RunnerPolicy::default());
    }

    /// [`SinkRunner::run`] with other waits and report intervals than the agent's.
    pub fn run_with(self, stop: Arc<AtomicBool>, policy: RunnerPolicy) {
        if self.sink.max_in_flight() > 1 {
            pipeline::run(self, &stop, policy);
            return;
        }
        let mut idle = IDLE_BACKOFF_START;
        let mut backoff = Backoff::new(policy);
        let mut drain = Drain::new(self, policy);
        drain.counters().set(Counter::Active, 1);
        while !stop.load(Ordering::Acquire) {
            drain.between_batches(Instant::now());
            let mut wait = Duration::ZERO;
            let outcome = drain.once(&mut |retryable| {
                wait = backoff.after_failure(retryable);
                wait
            });
            match outcome {
                Outcome::Closed => break,
                Outcome::Failed => sleep_unless_stopped(wait, &stop),
                Outcome::Delivered => {
                    idle = IDLE_BACKOFF_START;
                    backoff.reset();
                }
                Outcome::Empty => idle = drain.wait_for_events(idle),
            }
        }
        drain.finish();
    }
}

/// What one batch of a [`Drain`] came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The channel had no event.
    Empty,
    /// A batch was processed and its take committed.
    Delivered,
    /// The sink failed the batch (its events went back to the channel), or taking from the
    /// channel or committing the take failed.
    Failed,
    /// The channel is closed: the agent is stopping.
    Closed,
}

/// A batch taken from the channel and not yet settled: its open take transaction and size.
struct Taken {
    tx: Box<dyn crate::channel::TakeTransaction>,
    n: usize,
}

/// One sink bound to its channel, driven one batch at a time by a runner: the lone
/// [`SinkRunner`] or a sink group's runner ([`group::GroupRunner`]), which decide when to
/// retry and which sink goes next. Counts and logs each batch as the module docs say.
pub(crate) struct Drain {
    r: SinkRunner,
    log: RunnerLog,
    events: Vec<Event>,
}

impl Drain {
    pub(crate) fn new(r: SinkRunner, policy: RunnerPolicy) -> Drain {
        let log = RunnerLog {
            sink: r.name.clone(),
            kind: r.type_name,
            channel: r.channel.name().to_string(),
            policy,
            sink_failures: FailureReporter::new(policy.report),
            channel_failures: FailureReporter::new(policy.report),
        };
        let events = Vec::with_capacity(r.batch_size);
        Drain { r, log, events }
    }

    pub(crate) fn name(&self) -> &str {
        &self.r.name
    }

    pub(crate) fn counters(&self) -> &ComponentCounters {
        &self.r.counters
    }

    /// Time-based work of the sink and of its failure log; called before each batch of the
    /// runner, whichever sink the batch goes to.
    pub(crate) fn between_batches(&mut self, now: Instant) {
        self.log.quiet(now);
        self.r.sink.tick();
    }

    /// Waits up to `idle` for events in the channel; returns the next idle wait (doubled when
    /// none came).
    pub(crate) fn wait_for_events(&self, idle: Duration) -> Duration {
        if self.r.channel.wait_available(idle) {
            // Events arrived (or another taker holds them: a short pause keeps two sinks on
            // one channel from spinning).
            std::thread::sleep(Duration::from_millis(1));
            idle
        } else {
            (idle * 2).min(IDLE_BACKOFF_MAX)
        }
    }

    /// Takes one batch and processes it. On a failure `on_failure(retryable)` says how long
    /// until this sink is tried again, for the log line.
    pub(crate) fn once(&mut self, on_failure: &mut dyn FnMut(bool) -> Duration) -> Outcome {
        let taken = match self.take(on_failure) {
            Ok(t) => t,
            Err(outcome) => return outcome,
        };
        let result = self.r.sink.process(&self.events);
        self.settle(taken, result, on_failure)
    }

    /// Takes up to a batch into `self.events` and counts it. `Err` is the outcome when there
    /// is nothing to process (an empty channel, a failed take, a closed channel).
    fn take(&mut self, on_failure: &mut dyn FnMut(bool) -> Duration) -> Result<Taken, Outcome> {
        let events = &mut self.events;
        events.clear();
        let mut tx = self.r.channel.take_transaction();
        let taken = take_up_to(tx.as_mut(), self.r.batch_size, events);
        let counters = &self.r.counters;
        if let Err(e) = taken {
            tx.rollback();
            counters.inc(Counter::ChannelReadFail);
            if matches!(e, ChannelError::Closed { .. }) {
                return Err(Outcome::Closed);
            }
            let wait = on_failure(e.is_retryable());
            self.log
                .channel_failed(&e, "taking from", wait, Instant::now());
            return Err(Outcome::Failed);
        }
        let n = events.len();
        if n == 0 {
            counters.inc(Counter::BatchEmptyCount);
        } else if n < self.r.batch_size {
            counters.inc(Counter::BatchUnderflowCount);
        } else {
            counters.inc(Counter::BatchCompleteCount);
        }
        if events.is_empty() {
            tx.rollback();
            return Err(Outcome::Empty);
        }
        counters.add(Counter::EventDrainAttemptCount, n as u64);
        Ok(Taken { tx, n })
    }

    /// Commits a taken batch the sink is done with, or rolls it back when the sink failed it.
    fn settle(
        &mut self,
        taken: Taken,
        result: Result<(), SinkError>,
        on_failure: &mut dyn FnMut(bool) -> Duration,
    ) -> Outcome {
        let Taken { tx, n } = taken;
        let counters = &self.r.counters;
        match result {
            Ok(()) => match tx.commit() {
                Ok(()) => {
                    counters.add(Counter::EventDrainSuccessCount, n as u64);
                    self.log.delivered(Instant::now());
                    Outcome::Delivered
                }
                Err(e) => {
                    counters.inc(Counter::ChannelReadFail);
                    // The events stay in the channel and will be processed again.
                    let wait = on_failure(e.is_retryable());
                    self.log
                        .channel_failed(&e, "committing the take of", wait, Instant::now());
                    Outcome::Failed
                }
            },
            Err(e) => {
                tx.rollback();
                counters.inc(Counter::EventWriteFail);
                let wait = on_failure(e.is_retryable());
                self.log.sink_failed(&e, n, wait, Instant::now());
                Outcome::Failed
            }
        }
    }

    /// The runner stops: reports a recovery still settling and stops the sink.
    pub(crate) fn finish(mut self) {
        self.r.counters.set(Counter::Active, 0);
        self.log.finish();
        if let Err(e) = self.r.sink.stop() {
            tracing::error!(sink = %self.r.name, "{e}");
        }
    }
}

/// What the runner logs about failures: each cause once when it starts or changes, a
/// reminder with a count every `remind_every` while it goes on, and one line when the sink
/// delivers again (see [`report`]). Every failure is still counted (EventWriteFail,
/// ChannelReadFail) and logged at debug level.
struct RunnerLog {
    sink: String,
    kind: &'static str,
    channel: String,
    policy: RunnerPolicy,
    /// The sink's failures, by [`SinkError::cause_key`].
    sink_failures: FailureReporter<CauseKey>,
    /// The channel's failures to take or commit, by error variant.
    channel_failures: FailureReporter<std::mem::Discriminant<ChannelError>>,
}

/// Logs at ERROR when `permanent`, else at WARN.
fn warn_or_error(sink: &str, permanent: bool, line: std::fmt::Arguments<'_>) {
    if permanent {
        tracing::error!(sink, "{line}");
    } else {
        tracing::warn!(sink, "{line}");
    }
}

impl RunnerLog {
    /// An idle moment: a recovery that has held long enough is reported.
    fn quiet(&mut self, now: Instant) {
        if let Some(r) = self.sink_failures.quiet(now) {
            self.sink_recovered(r);
        }
        if let Some(r) = self.channel_failures.quiet(now) {
            self.channel_recovered(r);
        }
    }

    /// The runner stops: a recovery still settling is reported now.
    fn finish(&mut self) {
        if let Some(r) = self.sink_failures.finish() {
            self.sink_recovered(r);
        }
        if let Some(r) = self.channel_failures.finish() {
            self.channel_recovered(r);
        }
    }

    /// A batch was processed and its take committed.
    fn delivered(&mut self, now: Instant) {
        if let Some(r) = self.sink_failures.success(now) {
            self.sink_recovered(r);
        }
        if let Some(r) = self.channel_failures.success(now) {
            self.channel_recovered(r);
        }
    }

    fn sink_recovered(&self, r: Recovered) {
        tracing::info!(
            sink = %self.sink,
            "sink `{}` ({}) recovered: delivering again after {} over {}",
            self.sink,
            self.kind,
            crate::report::count(r.failures, "failed attempt", "failed attempts"),
            crate::report::human(r.lasted)
        );
    }

    fn channel_recovered(&self, r: Recovered) {
        tracing::info!(
            sink = %self.sink,
            "sink `{}` ({}): channel `{}` works again after {} over {}",
            self.sink,
            self.kind,
            self.channel,
            crate::report::count(r.failures, "failure", "failures"),
            crate::report::human(r.lasted)
        );
    }

    /// The sink failed a batch of `n` events, which went back to the channel; the runner
    /// waits `wait` before the next attempt.
    fn sink_failed(&mut self, e: &SinkError, n: usize, wait: Duration, now: Instant) {
        let (sink, kind, channel) = (&self.sink, self.kind, &self.channel);
        let cause = e.cause();
        let permanent = !e.is_retryable();
        let changed = match self.sink_failures.failure(e.cause_key(), now) {
            Report::Quiet => {
                tracing::debug!(
                    sink = %sink,
                    "sink `{sink}` ({kind}): {cause}; {n} events returned to channel \
                     `{channel}`, retrying in {}",
                    crate::report::human(wait)
                );
                return;
            }
            Report::Reminder {
                failures,
                total,
                since,
            } => {
                warn_or_error(
                    sink,
                    permanent,
                    format_args!(
                        "sink `{sink}` ({kind}) still failing: {} more since the last report, \
                         {total} in {}; channel `{channel}` keeps the events; latest: {cause}",
                        crate::report::count(failures, "failure", "failures"),
                        crate::report::human(since)
                    ),
                );
                return;
            }
            Report::First { ended } => {
                if let Some(r) = ended {
                    self.sink_recovered(r);
                }
                String::new()
            }
            Report::Changed { failures, .. } => {
                format!(
                    " differently (after {} of another kind)",
                    crate::report::count(failures, "failure", "failures")
                )
            }
        };
        let remind = crate::report::human(self.policy.report.remind_every);
        if permanent {
            tracing::error!(
                sink = %sink,
                "sink `{sink}` ({kind}) failed{changed}, and retrying will not help until this \
                 is fixed: {cause}. The {n} events were returned to channel `{channel}`, which \
                 keeps them; the sink tries again every {}, so they flow once the cause is \
                 fixed (a change to this agent's configuration needs a restart). Reported \
                 again every {remind} while it lasts",
                crate::report::human(self.policy.backoff_max)
            );
        } else {
            tracing::warn!(
                sink = %sink,
                "sink `{sink}` ({kind}) failed{changed}: {cause}; {n} events returned to \
                 channel `{channel}`, retrying in {} with backoff up to {}; reported again \
                 every {remind} while it lasts",
                crate::report::human(wait),
                crate::report::human(self.policy.backoff_max)
            );
        }
    }

    /// Taking from the channel, or committing the take (`what`), failed.
    fn channel_failed(&mut self, e: &ChannelError, what: &str, wait: Duration, now: Instant) {
        let (sink, kind, channel) = (&self.sink, self.kind, &self.channel);
        let permanent = !e.is_retryable();
        match self
            .channel_failures
            .failure(std::mem::discriminant(e), now)
        {
            Report::Quiet => tracing::debug!(
                sink = %sink,
                "sink `{sink}` ({kind}): {what} channel `{channel}` failed: {e}; retrying in {}",
                crate::report::human(wait)
            ),
            Report::Reminder {
                failures, total, ..
            } => warn_or_error(
                sink,
                permanent,
                format_args!(
                    "sink `{sink}` ({kind}): channel `{channel}` still failing: {} more since \
                     the last report, {total} in all; latest: {what} it: {e}",
                    crate::report::count(failures, "failure", "failures")
                ),
            ),
            Report::First { ended } => {
                if let Some(r) = ended {
                    self.channel_recovered(r);
                }
                warn_or_error(
                    sink,
                    permanent,
                    format_args!(
                        "sink `{sink}` ({kind}): {what} channel `{channel}` failed: {e}; the \
                         events stay in the channel, retrying in {}",
                        crate::report::human(wait)
                    ),
                );
            }
            Report::Changed { .. } => warn_or_error(
                sink,
                permanent,
                format_args!(
                    "sink `{sink}` ({kind}): {what} channel `{channel}` now fails differently: \
                     {e}; retrying in {}",
                    crate::report::human(wait)
                ),
            ),
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
