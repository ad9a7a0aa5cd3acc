//! Reporting a failure that repeats: once when it starts, once when its cause changes, a
//! reminder with a count every so often, and once when it is over. A sink retrying a dead
//! NameNode every few seconds, or a source waiting on a full channel, would otherwise write the
//! same line on every attempt and bury everything else in the log.
//!
//! [`FailureReporter`] is sans-IO: it is told each failure (with a key naming its cause) and
//! each success, with the time, and answers what to log; the caller words the line. It keeps
//! no history beyond the current episode, so it costs a few words per component.
//!
//! An episode ends only once no failure has followed a success for [`ReportPolicy::settle`]: a
//! condition that flaps (a channel at its capacity under backpressure, a next tier that
//! refuses every other batch) is one episode with one first line and one recovery line, not a
//! pair of lines per batch. With `settle` zero the first success ends it.

use std::time::{Duration, Instant};

/// How a [`FailureReporter`] spaces its lines.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReportPolicy {
    /// A failure that goes on with the same cause is reported again, with a count, once this
    /// long has passed since the last line about it (default one minute).
    pub remind_every: Duration,
    /// How long successes must hold, with no failure, before the episode is over and its
    /// recovery reported (default 10 s; zero: at the first success).
    pub settle: Duration,
}

impl Default for ReportPolicy {
    fn default() -> Self {
        ReportPolicy {
            remind_every: Duration::from_secs(60),
            settle: Duration::from_secs(10),
        }
    }
}

/// What to log about one failure.
#[derive(Debug, PartialEq, Eq)]
pub enum Report<K> {
    /// Nothing: the same cause was reported less than `remind_every` ago (a debug line at
    /// most).
    Quiet,
    /// The first failure of an episode: report it in full. `ended` is the previous episode,
    /// when it had recovered (settled) but no call had reported that yet: report it first.
    First { ended: Option<Recovered> },
    /// The cause changed within an episode: report the new one in full. `previous` is the old
    /// cause and `failures` how many failures it had.
    Changed { previous: K, failures: u64 },
    /// The same cause goes on: a reminder. `failures` since the last line about this
    /// episode, `total` in the whole episode, `since` how long ago the episode began.
    Reminder {
        failures: u64,
        total: u64,
        since: Duration,
    },
}

/// An episode that is over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recovered {
    /// Failures in the episode, whatever their causes.
    pub failures: u64,
    /// From the first failure to the first success of the streak that ended it.
    pub lasted: Duration,
}

/// The failure episode in progress.
#[derive(Debug)]
struct Episode<K> {
    key: K,
    started: Instant,
    failures: u64,
    /// Failures with the current key.
    key_failures: u64,
    /// Failures since the last line about this episode.
    unreported: u64,
    last_line: Instant,
    /// The first success after the latest failure: the episode is over once `settle` has
    /// passed since, with no failure in between.
    ok_since: Option<Instant>,
}

/// Decides when a repeating failure is worth a log line; see the module docs.
#[derive(Debug)]
pub struct FailureReporter<K> {
    policy: ReportPolicy,
    episode: Option<Episode<K>>,
}

impl<K: PartialEq> FailureReporter<K> {
    pub fn new(policy: ReportPolicy) -> Self {
        FailureReporter {
            policy,
            episode: None,
        }
    }

    /// Whether a failure episode is in progress (including one that is settling).
    pub fn failing(&self) -> bool {
        self.episode.is_some()
    }

    /// Records a failure whose cause is `key`, at `now`, and says what to log.
    pub fn failure(&mut self, key: K, now: Instant) -> Report<K> {
        let ended = self.settled(now);
        let Some(ep) = &mut self.episode else {
            self.episode = Some(Episode {
                key,
                started: now,
                failures: 1,
                key_failures: 1,
                unreported: 0,
                last_line: now,
                ok_since: None,
            });
            return Report::First { ended };
        };
        ep.failures += 1;
        ep.ok_since = None;
        if ep.key != key {
            let previous = std::mem::replace(&mut ep.key, key);
            let failures = std::mem::replace(&mut ep.key_failures, 1);
            ep.unreported = 0;
            ep.last_line = now;
            return Report::Changed { previous, failures };
        }
        ep.key_failures += 1;
        ep.unreported += 1;
        if now.saturating_duration_since(ep.last_line) < self.policy.remind_every {
            return Report::Quiet;
        }
        let failures = std::mem::take(&mut ep.unreported);
        ep.last_line = now;
        Report::Reminder {
            failures,
            total: ep.failures,
            since: now.saturating_duration_since(ep.started),
        }
    }

    /// Records a success at `now`; `Some` when it ends an episode (report the recovery).
    pub fn success(&mut self, now: Instant) -> Option<Recovered> {
        if let Some(ep) = &mut self.episode {
            ep.ok_since.get_or_insert(now);
        }
        self.settled(now)
    }

    /// Neither a failure nor a success (an idle moment): `Some` when a settling episode has
    /// now held for `settle` and is over (report the recovery).
    pub fn quiet(&mut self, now: Instant) -> Option<Recovered> {
        self.settled(now)
    }

    /// The component stops: `Some` when an episode was settling (it had succeeded since its
    /// last failure), so the recovery is reported now rather than never.
    pub fn finish(&mut self) -> Option<Recovered> {
        let ep = self.episode.take()?;
        let ok_since = ep.ok_since?;
        Some(Recovered {
            failures: ep.failures,
            lasted: ok_since.saturating_duration_since(ep.started),
        })
    }

    /// Ends the episode if its successes have held for `settle`.
    fn settled(&mut self, now: Instant) -> Option<Recovered> {
        let ep = self.episode.as_ref()?;
        let ok_since = ep.ok_since?;
        if now.saturating_duration_since(ok_since) < self.policy.settle {
            return None;
        }
        let recovered = Recovered {
            failures: ep.failures,
            lasted: ok_since.saturating_duration_since(ep.started),
        };
        self.episode = None;
        Some(recovered)
    }
}

/// `n` and the noun, singular for one (`1 failure`, `3 failures`).
pub fn count(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// A duration for a log line, rounded to what a reader cares about (`850ms`, `12.3s`, `4m 05s`,
/// `2h 07m`).
pub fn human(d: Duration) -> String {
    let ms = d.as_millis();
    let s = d.as_secs();
    if ms < 1000 {
        format!("{ms}ms")
    } else if s < 60 {
        format!("{:.1}s", d.as_secs_f64())
    } else if s < 3600 {
        format!("{}m {:02}s", s / 60, s % 60)
    } else {
        format!("{}h {:02}m", s / 3600, (s % 3600) / 60)
    }
}

/// Log capture for tests: runs a closure with a subscriber that writes into a buffer, on the
/// calling thread only, so tests running in parallel do not see each other's lines.
#[cfg(test)]
pub(crate) mod capture {
    use std::sync::Arc;

    use parking_lot::Mutex;

    /// The captured text, shared with the subscriber.
    #[derive(Clone, Default)]
    pub(crate) struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        pub(crate) fn text(&self) -> String {
            String::from_utf8_lossy(&self.0.lock()).into_owned()
        }

        /// The lines at `level` (`WARN`, `INFO`, ...) that contain `needle`.
        pub(crate) fn lines(&self, level: &str, needle: &str) -> Vec<String> {
            self.text()
                .lines()
                .filter(|l| l.contains(level) && l.contains(needle))
                .map(str::to_string)
                .collect()
        }
    }

    /// Runs `f` with INFO and above captured into `into`.
    pub(crate) fn with_captured<T>(into: &Captured, f: impl FnOnce() -> T) -> T {
        let w = into.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || w.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .finish();
        tracing::subscriber::with_default(subscriber, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(60);

    fn policy(settle: Duration) -> ReportPolicy {
        ReportPolicy {
            remind_every: MIN,
            settle,
        }
    }

    fn at(t0: Instant, secs: u64) -> Instant {
        t0 + Duration::from_secs(secs)
    }

    #[test]
    fn repeats_are_quiet_until_the_reminder_which_counts_them() {
        let t0 = Instant::now();
        let mut r = FailureReporter::new(policy(Duration::ZERO));
        assert_eq!(r.failure("refused", t0), Report::First { ended: None });
        for s in 1..60 {
            assert_eq!(r.failure("refused", at(t0, s)), Report::Quiet, "at {s}s");
        }
        assert_eq!(
            r.failure("refused", at(t0, 60)),
            Report::Reminder {
                failures: 60,
                total: 61,
                since: MIN
            }
        );
        // The next reminder counts from the last one.
        assert_eq!(r.failure("refused", at(t0, 61)), Report::Quiet);
        assert_eq!(
            r.failure("refused", at(t0, 120)),
            Report::Reminder {
                failures: 2,
                total: 63,
                since: 2 * MIN
            }
        );
    }

    #[test]
    fn a_new_cause_is_reported_at_once_and_starts_its_own_count() {
        let t0 = Instant::now();
        let mut r = FailureReporter::new(policy(Duration::ZERO));
        assert!(matches!(r.failure("refused", t0), Report::First { .. }));
        assert_eq!(r.failure("refused", at(t0, 1)), Report::Quiet);
        assert_eq!(
            r.failure("timeout", at(t0, 2)),
            Report::Changed {
                previous: "refused",
                failures: 2
            }
        );
        assert_eq!(r.failure("timeout", at(t0, 3)), Report::Quiet);
        // Back to the first cause: a change again, not a repeat.
        assert_eq!(
            r.failure("refused", at(t0, 4)),
            Report::Changed {
                previous: "timeout",
                failures: 2
            }
        );
        // The recovery counts every failure of the episode, whatever its cause.
        assert_eq!(
            r.success(at(t0, 5)),
            Some(Recovered {
                failures: 5,
                lasted: Duration::from_secs(5)
            })
        );
        assert!(!r.failing());
    }

    #[test]
    fn with_no_settle_time_the_first_success_ends_the_episode_once() {
        let t0 = Instant::now();
        let mut r = FailureReporter::new(policy(Duration::ZERO));
        assert_eq!(r.success(t0), None, "no episode, nothing to report");
        r.failure("full", t0);
        r.failure("full", at(t0, 1));
        assert_eq!(
            r.success(at(t0, 3)),
            Some(Recovered {
                failures: 2,
                lasted: Duration::from_secs(3)
            })
        );
        assert_eq!(r.success(at(t0, 4)), None, "reported once");
        assert_eq!(r.failure("full", at(t0, 5)), Report::First { ended: None });
    }

    #[test]
    fn a_flapping_failure_is_one_episode_until_successes_settle() {
        let t0 = Instant::now();
        let mut r = FailureReporter::new(policy(Duration::from_secs(10)));
        assert!(matches!(r.failure("full", t0), Report::First { .. }));
        // Success, failure, success, ... each within the settle time: one episode, no lines.
        for s in 1..30 {
            if s % 2 == 1 {
                assert_eq!(r.success(at(t0, s)), None, "at {s}s");
            } else {
                assert_eq!(r.failure("full", at(t0, s)), Report::Quiet, "at {s}s");
            }
        }
        assert!(r.failing());
        // Successes from 29 s on: not over at 38 s, over at 39 s (an idle tick sees it too).
        assert_eq!(r.success(at(t0, 35)), None);
        assert_eq!(r.quiet(at(t0, 38)), None);
        assert_eq!(
            r.quiet(at(t0, 39)),
            Some(Recovered {
                failures: 15,
                lasted: Duration::from_secs(29)
            })
        );
        assert!(!r.failing());
    }

    #[test]
    fn stopping_reports_a_settling_recovery_but_not_a_failure_in_progress() {
        let t0 = Instant::now();
        let mut r = FailureReporter::new(policy(Duration::from_secs(10)));
        r.failure("full", t0);
        assert_eq!(r.finish(), None, "still failing: nothing recovered");
        r.failure("full", t0);
        assert_eq!(r.success(at(t0, 2)), None);
        assert_eq!(
            r.finish(),
            Some(Recovered {
                failures: 1,
                lasted: Duration::from_secs(2)
            })
        );
        assert_eq!(r.finish(), None);
    }

    #[test]
    fn a_failure_after_an_unreported_settled_recovery_reports_both() {
        let t0 = Instant::now();
        let mut r = FailureReporter::new(policy(Duration::from_secs(10)));
        r.failure("full", t0);
        assert_eq!(r.success(at(t0, 1)), None);
        // Nobody called in between: the next failure closes the old episode first.
        assert_eq!(
            r.failure("full", at(t0, 100)),
            Report::First {
                ended: Some(Recovered {
                    failures: 1,
                    lasted: Duration::from_secs(1)
                })
            }
        );
    }

    #[test]
    fn counts_agree_with_their_noun() {
        assert_eq!(count(1, "failure", "failures"), "1 failure");
        assert_eq!(count(0, "failure", "failures"), "0 failures");
        assert_eq!(
            count(7, "failed attempt", "failed attempts"),
            "7 failed attempts"
        );
    }

    #[test]
    fn durations_are_rounded_for_people() {
        assert_eq!(human(Duration::from_millis(850)), "850ms");
        assert_eq!(human(Duration::from_millis(12_340)), "12.3s");
        assert_eq!(human(Duration::from_secs(245)), "4m 05s");
        assert_eq!(human(Duration::from_secs(7620)), "2h 07m");
    }
}
