//! Sink groups (Flume's SinkGroup and SinkProcessor): several sinks driven by one runner
//! thread, [`GroupRunner`], which asks the group's [`SinkProcessor`] in which order to try
//! its sinks for the next batch and tells it how each try went.
//!
//! A round: the processor names the sinks to try, best first; the runner has the first one
//! take a batch from its own channel and process it. A delivered batch or an empty channel
//! ends the round; a failure (the sink's, or its channel's) is fed to the processor, which
//! may penalise the sink, and the next sink of the order is tried at once, as Flume's
//! processors do. When every sink failed, or every one is penalised, the runner waits (a
//! growing backoff, or until the earliest penalty ends) and starts a new round. Each sink
//! keeps its own channel, counters and failure log, exactly as when it runs alone (see
//! [`super::SinkRunner`]): only the choice of the sink is the group's.
//!
//! Invariants: a failure never loses events (the take is rolled back before the processor
//! hears of it); a processor is sans-IO (it is handed the time, and only chooses), so its
//! choice logic is unit-tested without threads; the processors never name a sink type.
//!
//! Processors: [`default`] (one sink, Flume's DefaultSinkProcessor), [`failover`] (the
//! highest-priority live sink, failed sinks penalised), [`load_balance`] (round robin or
//! random, optionally backing off failed sinks). Each parses its own `processor.*` keys.
//! The metrics show which sink a group uses: each sink's `Active` gauge (see
//! [`GroupRunner`]).

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Backoff, Drain, Outcome, RunnerPolicy, SinkRunner, IDLE_BACKOFF_START};
use crate::config::{AsAny, ConfigError, Keys, Registered};
use crate::metrics::Counter;
use crate::stop::sleep_unless_stopped;

pub mod default;
pub mod failover;
pub mod load_balance;

/// A sink processor's parsed `processor.*` keys.
pub trait SinkProcessorSpec: fmt::Debug + AsAny + Send + Sync {
    /// Checks the keys against the group's sinks (`sinks`, in the order written), e.g. that
    /// each `priority.<sink>` names one; `keys` are the processor's keys, for the error's or
    /// warning's file, line and key.
    fn check(&self, keys: &mut Keys<'_>, sinks: &[String]) -> Result<(), ConfigError>;

    /// The processor for group `group` of `sinks` (indexes below are into `sinks`).
    fn build(&self, group: &str, sinks: &[String]) -> Box<dyn SinkProcessor>;
}

/// A sink processor type as the agent's registry lists it.
pub type SinkProcessorType = Registered<dyn SinkProcessorSpec>;

/// The group's sink changed from `from` to `to` (indexes into the group's sinks): what the
/// runner logs, once per change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Switch {
    pub from: usize,
    pub to: usize,
    /// `to` is preferred to `from` (a failover group returning to a higher priority): logged
    /// at INFO; a switch to a less preferred sink is logged at WARN.
    pub back: bool,
}

/// Chooses the sink of a group for each batch. Sans-IO: every call is handed the time.
pub trait SinkProcessor: Send {
    /// The sinks to try for the next batch, best first (indexes into the group's sinks);
    /// empty when every sink is penalised.
    fn order(&mut self, now: Instant) -> Vec<usize>;

    /// Sink `sink` delivered a batch. Returns the switch to log when the group now sends to
    /// another sink than before.
    fn delivered(&mut self, sink: usize, now: Instant) -> Option<Switch>;

    /// Sink `sink` found its channel empty (no sign either way of whether it works).
    fn idle(&mut self, _sink: usize, _now: Instant) {}

    /// Sink `sink` failed a batch; returns how long until it is tried again (its penalty, or
    /// zero when the processor does not penalise).
    fn failed(&mut self, sink: usize, now: Instant) -> Duration;

    /// Whether sink `sink` is one the group sends to now (the `Active` gauge).
    fn is_active(&self, sink: usize, now: Instant) -> bool;

    /// When every sink is penalised: how long until the first penalty ends.
    fn next_due(&self, _now: Instant) -> Option<Duration> {
        None
    }

    /// The longest penalty of a failed sink, when the processor has penalties: what each
    /// sink's failure reports give as the longest wait.
    fn max_penalty(&self) -> Option<Duration> {
        None
    }

    /// How the processor describes itself in the start-up log line.
    fn describe(&self) -> String;
}

/// Drives the sinks of one group on one thread. See the module docs.
pub struct GroupRunner {
    pub name: String,
    pub processor: Box<dyn SinkProcessor>,
    /// The group's sinks, in the order of the group's `sinks` key.
    pub sinks: Vec<SinkRunner>,
}

impl GroupRunner {
    /// Runs until `stop` is set, then finishes the batch in hand and stops every sink.
    pub fn run(self, stop: Arc<AtomicBool>) {
        self.run_with(stop, RunnerPolicy::default());
    }

    /// [`GroupRunner::run`] with other waits and report intervals than the agent's.
    pub fn run_with(self, stop: Arc<AtomicBool>, policy: RunnerPolicy) {
        let GroupRunner {
            name,
            mut processor,
            sinks,
        } = self;
        let sink_policy = RunnerPolicy {
            backoff_max: processor.max_penalty().unwrap_or(policy.backoff_max),
            ..policy
        };
        let mut sinks: Vec<Drain> = sinks
            .into_iter()
            .map(|s| Drain::new(s, sink_policy))
            .collect();
        let names: Vec<String> = sinks.iter().map(|d| d.name().to_string()).collect();
        let mut idle = IDLE_BACKOFF_START;
        let mut backoff = Backoff::new(policy);
        update_gauges(processor.as_ref(), &sinks, Instant::now());
        'rounds: while !stop.load(Ordering::Acquire) {
            let now = Instant::now();
            for d in &mut sinks {
                d.between_batches(now);
            }
            let order = processor.order(now);
            if order.is_empty() {
                update_gauges(processor.as_ref(), &sinks, now);
                let wait = processor
                    .next_due(now)
                    .unwrap_or(policy.backoff_max)
                    .clamp(Duration::from_millis(1), policy.backoff_max);
                sleep_unless_stopped(wait, &stop);
                continue;
            }
            let mut empty = None;
            let mut delivered = false;
            let mut all_retryable = true;
            for i in order {
                let Some(d) = sinks.get_mut(i) else {
                    continue;
                };
                let p = &mut processor;
                let b = &backoff;
                let outcome = d.once(&mut |retryable| {
                    all_retryable &= retryable;
                    let penalty = p.failed(i, Instant::now());
                    // A processor without penalties retries at the group's backoff.
                    if penalty.is_zero() {
                        b.peek(retryable)
                    } else {
                        penalty
                    }
                });
                match outcome {
                    Outcome::Closed => break 'rounds,
                    Outcome::Failed => continue,
                    Outcome::Empty => {
                        processor.idle(i, Instant::now());
                        empty = Some(i);
                    }
                    Outcome::Delivered => {
                        if let Some(s) = processor.delivered(i, Instant::now()) {
                            log_switch(&name, &names, s);
                        }
                        delivered = true;
                    }
                }
                break;
            }
            update_gauges(processor.as_ref(), &sinks, Instant::now());
            if delivered {
                idle = IDLE_BACKOFF_START;
                backoff.reset();
            } else if let Some(i) = empty {
                backoff.reset();
                if let Some(d) = sinks.get(i) {
                    idle = d.wait_for_events(idle);
                }
            } else {
                // Every sink tried failed (each failure is logged by its sink).
                let wait = backoff.after_failure(all_retryable);
                tracing::debug!(group = %name, "sink group `{name}`: every sink failed");
                sleep_unless_stopped(wait, &stop);
            }
        }
        for d in sinks {
            d.finish();
        }
    }
}

fn update_gauges(processor: &dyn SinkProcessor, sinks: &[Drain], now: Instant) {
    for (i, d) in sinks.iter().enumerate() {
        d.counters()
            .set(Counter::Active, u64::from(processor.is_active(i, now)));
    }
}

fn log_switch(group: &str, names: &[String], s: Switch) {
    let name = |i: usize| names.get(i).map_or("?", String::as_str);
    let (from, to) = (name(s.from), name(s.to));
    if s.back {
        tracing::info!(
            group,
            "sink group `{group}`: back to sink `{to}` from `{from}`: `{to}` delivers again"
        );
    } else {
        tracing::warn!(
            group,
            "sink group `{group}`: switched from sink `{from}` to `{to}`: `{from}` failed and \
             is retried after its penalty"
        );
    }
}

/// Flume's penalty for the `fails`-th failure in a row: 1 s doubled `fails` times, at most
/// `max` (Flume's FailoverSinkProcessor and its load balancer's backoff share the formula).
pub(crate) fn penalty(fails: u32, max: Duration) -> Duration {
    let unit = Duration::from_secs(1);
    // 2^16 s is past any sensible cap; stop doubling there so the shift cannot overflow.
    unit.saturating_mul(1u32 << fails.min(16)).min(max)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    use super::load_balance::{LoadBalance, LoadBalanceConfig, Selector};
    use super::*;
    use crate::channel::memory::{MemoryChannel, MemoryChannelConfig};
    use crate::channel::Channel;
    use crate::event::Event;
    use crate::metrics::{ComponentCounters, ComponentType};
    use crate::report::ReportPolicy;
    use crate::sink::{Sink, SinkError};

    /// Records the bodies it is given, or fails every batch while `fail` is set.
    struct Recording {
        got: Arc<Mutex<Vec<String>>>,
        fail: Arc<AtomicBool>,
    }

    impl Sink for Recording {
        fn process(&mut self, events: &[Event]) -> Result<(), SinkError> {
            if self.fail.load(Ordering::SeqCst) {
                return Err(SinkError::new("test", "failing on purpose"));
            }
            let mut got = self.got.lock().expect("lock");
            got.extend(
                events
                    .iter()
                    .map(|e| String::from_utf8_lossy(e.body()).into_owned()),
            );
            Ok(())
        }
    }

    fn put(ch: &dyn Channel, from: usize, to: usize) {
        for chunk_start in (from..to).step_by(10) {
            let mut tx = ch.put_transaction();
            for i in chunk_start..(chunk_start + 10).min(to) {
                tx.put(Event::new(i.to_string())).expect("put");
            }
            tx.commit().expect("commit");
        }
    }

    fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
        let end = Instant::now() + Duration::from_secs(30);
        while !cond() {
            assert!(Instant::now() < end, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// A log line sink for one runner thread.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("lock").extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// A memory channel `c1` drained by two recording sinks `k1` and `k2` (batch 10), with
    /// what each got, a switch that makes each fail, and their counters.
    struct Fixture {
        ch: Arc<dyn Channel>,
        got: Vec<Arc<Mutex<Vec<String>>>>,
        fail: Vec<Arc<AtomicBool>>,
        counters: Vec<Arc<ComponentCounters>>,
        sinks: Vec<SinkRunner>,
    }

    fn two_recording_sinks() -> Fixture {
        let ch: Arc<dyn Channel> =
            Arc::new(MemoryChannel::new("c1", MemoryChannelConfig::default()).expect("channel"));
        let got: Vec<Arc<Mutex<Vec<String>>>> = (0..2).map(|_| Arc::default()).collect();
        let fail: Vec<Arc<AtomicBool>> = (0..2).map(|_| Arc::default()).collect();
        let counters: Vec<Arc<ComponentCounters>> = ["k1", "k2"]
            .iter()
            .map(|n| ComponentCounters::detached(n, ComponentType::Sink))
            .collect();
        let sinks = (0..2)
            .map(|i| SinkRunner {
                name: format!("k{}", i + 1),
                type_name: "test",
                channel: Arc::clone(&ch),
                sink: Box::new(Recording {
                    got: Arc::clone(&got[i]),
                    fail: Arc::clone(&fail[i]),
                }),
                batch_size: 10,
                counters: Arc::clone(&counters[i]),
            })
            .collect();
        Fixture {
            ch,
            got,
            fail,
            counters,
            sinks,
        }
    }

    impl Captured {
        fn count(&self, needle: &str) -> usize {
            String::from_utf8_lossy(&self.0.lock().expect("lock"))
                .matches(needle)
                .count()
        }
    }

    #[test]
    fn failover_switches_to_the_backup_and_back_logging_each_once() {
        use super::failover::Failover;
        let Fixture {
            ch,
            got,
            fail,
            counters,
            sinks,
        } = two_recording_sinks();
        let runner = GroupRunner {
            name: "g1".into(),
            processor: Box::new(Failover::new(&[10, 5], Duration::from_secs(30))),
            sinks,
        };
        let stop = Arc::new(AtomicBool::new(false));
        let log = Captured::default();
        let thread = {
            let (stop, w) = (Arc::clone(&stop), log.clone());
            std::thread::spawn(move || {
                let subscriber = tracing_subscriber::fmt()
                    .with_writer(move || w.clone())
                    .with_ansi(false)
                    .with_max_level(tracing::Level::INFO)
                    .finish();
                tracing::subscriber::with_default(subscriber, || runner.run(stop));
            })
        };
        let count = |i: usize| got[i].lock().expect("lock").len();
        let active = |i: usize| counters[i].get(Counter::Active);

        put(ch.as_ref(), 0, 100);
        wait_until("k1 delivers", || count(0) == 100);
        wait_until("k1 shown active", || (active(0), active(1)) == (1, 0));

        // k1 fails: its batch goes to k2 at once.
        fail[0].store(true, Ordering::SeqCst);
        put(ch.as_ref(), 100, 200);
        wait_until("k2 delivers", || count(1) == 100);
        wait_until("k2 shown active", || (active(0), active(1)) == (0, 1));
        assert_eq!(log.count("switched from sink `k1` to `k2`"), 1);

        // k1 works again; once its penalty (2 s) is over, the next batch goes to it.
        fail[0].store(false, Ordering::SeqCst);
        let mut next = 200;
        wait_until("k1 takes the traffic back", || {
            if count(0) + count(1) == next {
                put(ch.as_ref(), next, next + 10);
                next += 10;
            }
            count(0) > 100
        });
        wait_until("k1 shown active again", || (active(0), active(1)) == (1, 0));
        wait_until("everything delivered", || count(0) + count(1) == next);
        stop.store(true, Ordering::SeqCst);
        thread.join().expect("runner");
        assert_eq!(log.count("switched from sink `k1` to `k2`"), 1);
        assert_eq!(log.count("back to sink `k1` from `k2`"), 1);
        assert!(counters[0].get(Counter::EventWriteFail) >= 1);
        assert_eq!(ch.stats().size, 0);
    }

    #[test]
    fn load_balance_spreads_batches_and_moves_a_failed_sinks_share() {
        let Fixture {
            ch,
            got,
            fail,
            counters,
            sinks,
        } = two_recording_sinks();
        let cfg = LoadBalanceConfig {
            selector: Selector::RoundRobin,
            backoff: true,
            ..LoadBalanceConfig::default()
        };
        let runner = GroupRunner {
            name: "g1".into(),
            processor: Box::new(LoadBalance::new(2, cfg, 7)),
            sinks,
        };
        let stop = Arc::new(AtomicBool::new(false));
        let policy = RunnerPolicy {
            backoff_start: Duration::from_millis(5),
            backoff_max: Duration::from_millis(40),
            report: ReportPolicy::default(),
        };
        let thread = {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || runner.run_with(stop, policy))
        };
        let count = |i: usize| got[i].lock().expect("lock").len();

        // Both sinks take turns.
        put(ch.as_ref(), 0, 1000);
        wait_until("1000 events delivered", || count(0) + count(1) == 1000);
        assert!(
            count(0) >= 100 && count(1) >= 100,
            "{} {}",
            count(0),
            count(1)
        );

        // k2 fails: its batches go back to the channel and on to k1 at once, and k2 is left
        // out (backed off) meanwhile.
        fail[1].store(true, Ordering::SeqCst);
        let k2_before = count(1);
        put(ch.as_ref(), 1000, 2000);
        wait_until("2000 events delivered", || count(0) + count(1) == 2000);
        assert_eq!(count(1), k2_before, "the failing sink delivered nothing");
        assert!(counters[1].get(Counter::EventWriteFail) >= 1);

        stop.store(true, Ordering::SeqCst);
        thread.join().expect("runner");
        // Every event exactly once: a failed batch was rolled back, never lost or doubled.
        let mut all: Vec<usize> = got
            .iter()
            .flat_map(|g| g.lock().expect("lock").clone())
            .map(|s| s.parse().expect("a number"))
            .collect();
        all.sort_unstable();
        assert_eq!(all, (0..2000).collect::<Vec<_>>());
        assert_eq!(ch.stats().size, 0);
    }
}
