//! The `failover` sink processor (Flume's FailoverSinkProcessor): every batch goes to the
//! live sink of highest priority; a sink that fails is penalised and the next one takes
//! over at once; a penalised sink is tried again once its penalty is over, and takes back
//! the traffic when it delivers.
//!
//! Flume's rules, kept: `priority.<sink>` (a higher number is preferred); the penalty after
//! the n-th failure in a row is 1 s doubled n times (2 s, 4 s, 8 s, ...) up to
//! `maxpenalty`; a delivery clears the count. Differences, each safer: a sink without a
//! priority gets -1, -2, ... in the order of the group's `sinks` (Flume numbers them in
//! hash order); two sinks with one priority are an error (Flume drops the second sink from
//! the group with a warning); a penalised sink whose penalty is over is retried when its
//! turn in priority order comes (Flume retries it before the active sink, with the same
//! result once it delivers).

use std::time::{Duration, Instant};

use super::{penalty, SinkProcessor, SinkProcessorSpec, SinkProcessorType, Switch};
use crate::config::{ConfigError, Keys, Registered, WarningKind};

/// `failover` / Flume's FailoverSinkProcessor.
pub const TYPE: SinkProcessorType = Registered {
    alias: "failover",
    class: Some("org.apache.flume.sink.FailoverSinkProcessor"),
    parse,
    minimal: &[],
};

/// The failover processor's keys (docs/CONFIG.md, `failover`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FailoverConfig {
    /// `priority.<sink>`: (sink, priority, line), in line order.
    pub priorities: Vec<(String, i64, usize)>,
    /// `maxpenalty` (30000 ms): the longest penalty of a failed sink.
    pub max_penalty: Duration,
}

impl Default for FailoverConfig {
    fn default() -> Self {
        FailoverConfig {
            priorities: Vec::new(),
            max_penalty: Duration::from_millis(30_000),
        }
    }
}

fn parse(keys: &mut Keys<'_>) -> Result<Box<dyn SinkProcessorSpec>, ConfigError> {
    let d = FailoverConfig::default();
    let max_penalty = keys.millis("maxpenalty", d.max_penalty, 1)?;
    keys.document_default("priority.<sink>", "-1, -2, ... in the order of sinks");
    let mut priorities = Vec::new();
    for (key, v) in keys.take_prefixed("priority.") {
        let sink = key["priority.".len()..].to_string();
        let Ok(p) = v.value.parse::<i64>() else {
            return Err(keys.bad(&key, &v, "a whole number (a higher one is preferred)"));
        };
        priorities.push((sink, p, v.line));
    }
    Ok(Box::new(FailoverConfig {
        priorities,
        max_penalty,
    }))
}

impl FailoverConfig {
    /// Each sink's priority, in the order of `sinks`.
    fn priorities_of(&self, sinks: &[String]) -> Vec<i64> {
        let mut next_unset = 0;
        sinks
            .iter()
            .map(|s| {
                self.priorities
                    .iter()
                    .rev()
                    .find(|(n, _, _)| n == s)
                    .map(|(_, p, _)| *p)
                    .unwrap_or_else(|| {
                        next_unset -= 1;
                        next_unset
                    })
            })
            .collect()
    }
}

impl SinkProcessorSpec for FailoverConfig {
    fn check(&self, keys: &mut Keys<'_>, sinks: &[String]) -> Result<(), ConfigError> {
        for (sink, _, line) in &self.priorities {
            if !sinks.contains(sink) {
                let reason = format!(
                    "`{sink}` is not a sink of this group ({})",
                    sinks.join(", ")
                );
                keys.warn(
                    *line,
                    &format!("priority.{sink}"),
                    WarningKind::IgnoredKey { reason },
                );
            }
        }
        let prios = self.priorities_of(sinks);
        for (i, p) in prios.iter().enumerate() {
            if let Some(j) = prios[..i].iter().position(|q| q == p) {
                let key = format!("priority.{}", sinks[i]);
                let line = self
                    .priorities
                    .iter()
                    .rev()
                    .find(|(n, _, _)| *n == sinks[i])
                    .map_or(keys.home_line(), |(_, _, l)| *l);
                return Err(ConfigError::BadValue {
                    file: keys.file().to_string(),
                    line,
                    key: keys.full(&key),
                    value: p.to_string(),
                    expected: format!(
                        "a priority no other sink of the group has: `{}` has {p} too (Flume would drop `{}` from the group)",
                        sinks[j], sinks[i]
                    ),
                });
            }
        }
        Ok(())
    }

    fn build(&self, _group: &str, sinks: &[String]) -> Box<dyn SinkProcessor> {
        Box::new(Failover::new(&self.priorities_of(sinks), self.max_penalty))
    }
}

/// A sink's standing.
#[derive(Clone, Copy, Debug)]
struct State {
    priority: i64,
    /// Failures in a row.
    fails: u32,
    /// While penalised: when the penalty ends.
    until: Option<Instant>,
}

/// The processor. See the module docs.
#[derive(Debug)]
pub struct Failover {
    sinks: Vec<State>,
    /// Sink indexes, highest priority first.
    by_priority: Vec<usize>,
    max_penalty: Duration,
    /// The sink the group sends to: the last that delivered, at first the highest priority.
    active: usize,
}

impl Failover {
    /// A processor for sinks of `priorities` (one per sink, distinct).
    pub fn new(priorities: &[i64], max_penalty: Duration) -> Failover {
        let mut by_priority: Vec<usize> = (0..priorities.len()).collect();
        by_priority.sort_by_key(|&i| std::cmp::Reverse(priorities[i]));
        Failover {
            sinks: priorities
                .iter()
                .map(|&priority| State {
                    priority,
                    fails: 0,
                    until: None,
                })
                .collect(),
            active: by_priority.first().copied().unwrap_or(0),
            by_priority,
            max_penalty,
        }
    }

    fn ready(&self, i: usize, now: Instant) -> bool {
        self.sinks
            .get(i)
            .is_some_and(|s| s.until.is_none_or(|t| t <= now))
    }
}

impl SinkProcessor for Failover {
    fn order(&mut self, now: Instant) -> Vec<usize> {
        self.by_priority
            .iter()
            .copied()
            .filter(|&i| self.ready(i, now))
            .collect()
    }

    fn delivered(&mut self, sink: usize, _now: Instant) -> Option<Switch> {
        let s = self.sinks.get_mut(sink)?;
        s.fails = 0;
        s.until = None;
        let priority = s.priority;
        let from = self.active;
        if from == sink {
            return None;
        }
        self.active = sink;
        let back = self.sinks.get(from).is_some_and(|f| priority > f.priority);
        Some(Switch {
            from,
            to: sink,
            back,
        })
    }

    fn failed(&mut self, sink: usize, now: Instant) -> Duration {
        let Some(s) = self.sinks.get_mut(sink) else {
            return Duration::ZERO;
        };
        s.fails = s.fails.saturating_add(1);
        let wait = penalty(s.fails, self.max_penalty);
        s.until = Some(now + wait);
        wait
    }

    fn is_active(&self, sink: usize, now: Instant) -> bool {
        // The active sink, unless it is penalised (then the group has none until another
        // delivers).
        sink == self.active && self.ready(sink, now)
    }

    fn next_due(&self, now: Instant) -> Option<Duration> {
        self.sinks
            .iter()
            .filter_map(|s| s.until)
            .min()
            .map(|t| t.saturating_duration_since(now))
    }

    fn max_penalty(&self) -> Option<Duration> {
        Some(self.max_penalty)
    }

    fn describe(&self) -> String {
        let prios: Vec<String> = self
            .by_priority
            .iter()
            .filter_map(|&i| self.sinks.get(i).map(|s| s.priority.to_string()))
            .collect();
        format!(
            "failover (priorities {}, maxpenalty {} ms)",
            prios.join(" > "),
            self.max_penalty.as_millis()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: Duration = Duration::from_secs(30);

    #[test]
    fn highest_priority_first_then_failover_in_priority_order() {
        // k0 = 5, k1 = 10, k2 = 1.
        let mut f = Failover::new(&[5, 10, 1], MAX);
        let t = Instant::now();
        assert_eq!(f.order(t), [1, 0, 2]);
        assert!(f.is_active(1, t));
        assert_eq!(f.failed(1, t), Duration::from_secs(2));
        assert_eq!(f.order(t), [0, 2]);
        assert!(!f.is_active(1, t));
        let s = f.delivered(0, t).expect("a switch");
        assert_eq!((s.from, s.to, s.back), (1, 0, false));
        assert!(f.is_active(0, t));
        assert_eq!(f.delivered(0, t), None, "logged once");
    }

    #[test]
    fn penalty_doubles_from_two_seconds_up_to_maxpenalty() {
        let mut f = Failover::new(&[2, 1], Duration::from_millis(10_000));
        let mut t = Instant::now();
        let mut waits = Vec::new();
        for _ in 0..5 {
            let w = f.failed(0, t);
            waits.push(w.as_secs());
            assert_eq!(f.order(t), [1], "penalised");
            t += w;
            assert_eq!(f.order(t), [0, 1], "due again after its penalty");
        }
        assert_eq!(waits, [2, 4, 8, 10, 10]);
    }

    #[test]
    fn returns_to_the_primary_once_it_delivers_and_resets_its_penalty() {
        let mut f = Failover::new(&[10, 5], MAX);
        let t = Instant::now();
        f.failed(0, t);
        f.delivered(1, t);
        assert!(f.is_active(1, t));
        // Still penalised: the backup keeps the traffic.
        assert_eq!(f.order(t + Duration::from_secs(1)), [1]);
        let later = t + Duration::from_secs(2);
        assert_eq!(f.order(later), [0, 1]);
        // An empty channel says nothing: the backup stays active.
        f.idle(0, later);
        assert!(f.is_active(1, later));
        let s = f.delivered(0, later).expect("back");
        assert_eq!((s.from, s.to, s.back), (1, 0, true));
        assert!(f.is_active(0, later) && !f.is_active(1, later));
        // A new failure starts again at the first penalty.
        assert_eq!(f.failed(0, later), Duration::from_secs(2));
    }

    #[test]
    fn every_sink_penalised_waits_for_the_first_penalty_to_end() {
        let mut f = Failover::new(&[1, 2], MAX);
        let t = Instant::now();
        f.failed(1, t);
        f.failed(0, t);
        f.failed(0, t);
        assert!(f.order(t).is_empty());
        assert_eq!(f.next_due(t), Some(Duration::from_secs(2)));
    }

    fn spec(pairs: &[(&str, &str)]) -> Result<FailoverConfig, ConfigError> {
        let mut keys = Keys::from_pairs("sinkgroups", "g1", pairs);
        let spec = parse(&mut keys)?;
        let cfg = spec
            .as_any()
            .downcast_ref::<FailoverConfig>()
            .expect("failover")
            .clone();
        cfg.check(&mut keys, &["k1".into(), "k2".into(), "k3".into()])?;
        Ok(cfg)
    }

    #[test]
    fn priorities_default_in_list_order_and_must_differ() {
        let cfg = spec(&[("priority.k2", "7"), ("maxpenalty", "5000")]).expect("parses");
        assert_eq!(cfg.max_penalty, Duration::from_secs(5));
        let sinks = ["k1".to_string(), "k2".into(), "k3".into()];
        assert_eq!(cfg.priorities_of(&sinks), [-1, 7, -2]);
        let e = spec(&[("priority.k1", "3"), ("priority.k3", "3")]).expect_err("duplicate");
        assert!(e.to_string().contains("priority.k3"), "{e}");
        let e = spec(&[("priority.k1", "high")]).expect_err("not a number");
        assert!(e.to_string().contains("priority.k1"), "{e}");
    }
}
