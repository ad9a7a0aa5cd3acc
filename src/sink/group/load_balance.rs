//! The `load_balance` sink processor (Flume's LoadBalancingSinkProcessor): each batch
//! starts at another sink, in turn (`round_robin`) or at random (`random`); a sink that
//! fails hands the batch to the next one of that order at once. With `backoff`, a failed
//! sink is left out for a while (1 s doubled per failure in a row, up to
//! `selector.maxTimeOut`), so its share moves to the others.
//!
//! Flume's rules, kept: round robin starts each batch one sink further along the sinks
//! that are not backed off; a failure counts as "in a row" when it comes within the last
//! backoff plus an hour of the previous one, else the count starts again at 1 (Flume's
//! OrderSelector); a delivery does not clear the count, so a sink that fails again within
//! the hour is left out longer, up to `selector.maxTimeOut`. A selector given as a Java class
//! cannot be loaded and is refused.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, Instant};

use super::{penalty, SinkProcessor, SinkProcessorSpec, SinkProcessorType, Switch};
use crate::config::{ConfigError, Keys, Registered, Val};

/// `load_balance` / Flume's LoadBalancingSinkProcessor.
pub const TYPE: SinkProcessorType = Registered {
    alias: "load_balance",
    class: Some("org.apache.flume.sink.LoadBalancingSinkProcessor"),
    parse,
    minimal: &[],
};

/// How the next batch's first sink is chosen (`selector`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Selector {
    RoundRobin,
    Random,
}

/// The load_balance processor's keys (docs/CONFIG.md, `load_balance`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadBalanceConfig {
    /// `selector` (round_robin).
    pub selector: Selector,
    /// `backoff` (false): leave failed sinks out for a while.
    pub backoff: bool,
    /// `selector.maxTimeOut` (30000 ms): the longest a failed sink is left out.
    pub max_timeout: Duration,
}

impl Default for LoadBalanceConfig {
    fn default() -> Self {
        LoadBalanceConfig {
            selector: Selector::RoundRobin,
            backoff: false,
            max_timeout: Duration::from_millis(30_000),
        }
    }
}

fn parse(keys: &mut Keys<'_>) -> Result<Box<dyn SinkProcessorSpec>, ConfigError> {
    let d = LoadBalanceConfig::default();
    keys.document_default("selector", "round_robin");
    let selector =
        match keys.get("selector") {
            None => d.selector,
            Some(v) if v.value.eq_ignore_ascii_case("round_robin") => Selector::RoundRobin,
            Some(v) if v.value.eq_ignore_ascii_case("random") => Selector::Random,
            Some(v) if v.value.contains('.') => return Err(keys.unsupported(
                "selector",
                v.line,
                format!("the sink selector class `{}`", v.value),
                "it is a Java class, and flumen cannot load Java classes. Use `round_robin` or \
                 `random` (with `backoff = true` to leave failed sinks out for a while)",
            )),
            Some(v) => return Err(keys.bad("selector", &v, "round_robin or random")),
        };
    let backoff = keys.boolean("backoff", d.backoff)?;
    // Flume keeps its default for 0.
    let max_timeout = match keys.millis("selector.maxTimeOut", d.max_timeout, 0)? {
        t if t.is_zero() => d.max_timeout,
        t => t,
    };
    Ok(Box::new(LoadBalanceConfig {
        selector,
        backoff,
        max_timeout,
    }))
}

impl SinkProcessorSpec for LoadBalanceConfig {
    fn check(&self, keys: &mut Keys<'_>, sinks: &[String]) -> Result<(), ConfigError> {
        if sinks.len() > 1 {
            return Ok(());
        }
        let v = Val {
            value: keys.peek("type").unwrap_or("load_balance").to_string(),
            line: keys.line_of("type"),
        };
        Err(keys.bad(
            "type",
            &v,
            "a processor for one sink: load_balance needs two sinks or more (Flume refuses the group, and its sink does not run); use `default`, or add sinks",
        ))
    }

    fn build(&self, _group: &str, sinks: &[String]) -> Box<dyn SinkProcessor> {
        let seed = RandomState::new().build_hasher().finish();
        Box::new(LoadBalance::new(sinks.len(), self.clone(), seed))
    }
}

/// A sink's failures, for the backoff.
#[derive(Clone, Copy, Debug, Default)]
struct Failures {
    in_a_row: u32,
    last: Option<Instant>,
    /// While left out: when it is back.
    until: Option<Instant>,
}

/// The processor. See the module docs.
#[derive(Debug)]
pub struct LoadBalance {
    cfg: LoadBalanceConfig,
    sinks: Vec<Failures>,
    /// Round robin: where among the sinks not left out the next batch starts.
    next: usize,
    /// xorshift64 state for `random` (seeded per processor; the spread needs no more).
    rng: u64,
}

/// Flume's OrderSelector (CONSIDER_SEQUENTIAL_RANGE): failures further apart than the last
/// backoff plus this are not "in a row".
const IN_A_ROW_SLACK: Duration = Duration::from_secs(3600);
/// Flume's OrderSelector stops counting failures in a row here.
const MAX_IN_A_ROW: u32 = 16;

impl LoadBalance {
    /// A processor for `n` sinks; `seed` seeds the random selector.
    pub fn new(n: usize, cfg: LoadBalanceConfig, seed: u64) -> LoadBalance {
        LoadBalance {
            cfg,
            sinks: vec![Failures::default(); n],
            next: 0,
            rng: seed | 1,
        }
    }

    fn random(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        x
    }

    fn left_out(&self, i: usize, now: Instant) -> bool {
        self.sinks
            .get(i)
            .and_then(|f| f.until)
            .is_some_and(|t| t > now)
    }
}

impl SinkProcessor for LoadBalance {
    fn order(&mut self, now: Instant) -> Vec<usize> {
        let mut live: Vec<usize> = (0..self.sinks.len())
            .filter(|&i| !self.left_out(i, now))
            .collect();
        if live.is_empty() {
            return live;
        }
        match self.cfg.selector {
            Selector::RoundRobin => {
                if self.next >= live.len() {
                    self.next = 0;
                }
                live.rotate_left(self.next);
                self.next = (self.next + 1) % live.len();
            }
            Selector::Random => {
                // Fisher-Yates.
                for i in (1..live.len()).rev() {
                    let j = (self.random() % (i as u64 + 1)) as usize;
                    live.swap(i, j);
                }
            }
        }
        live
    }

    fn delivered(&mut self, _sink: usize, _now: Instant) -> Option<Switch> {
        None
    }

    fn failed(&mut self, sink: usize, now: Instant) -> Duration {
        if !self.cfg.backoff {
            return Duration::ZERO;
        }
        let max = self.cfg.max_timeout;
        let Some(f) = self.sinks.get_mut(sink) else {
            return Duration::ZERO;
        };
        let in_a_row = f.last.is_some_and(|last| {
            now.saturating_duration_since(last) < penalty(f.in_a_row, max) + IN_A_ROW_SLACK
        });
        f.in_a_row = if in_a_row {
            (f.in_a_row + 1).min(MAX_IN_A_ROW)
        } else {
            1
        };
        f.last = Some(now);
        let wait = penalty(f.in_a_row, max);
        f.until = Some(now + wait);
        wait
    }

    fn is_active(&self, sink: usize, now: Instant) -> bool {
        sink < self.sinks.len() && !self.left_out(sink, now)
    }

    fn next_due(&self, now: Instant) -> Option<Duration> {
        self.sinks
            .iter()
            .filter_map(|f| f.until)
            .min()
            .map(|t| t.saturating_duration_since(now))
    }

    fn max_penalty(&self) -> Option<Duration> {
        self.cfg.backoff.then_some(self.cfg.max_timeout)
    }

    fn describe(&self) -> String {
        let selector = match self.cfg.selector {
            Selector::RoundRobin => "round_robin",
            Selector::Random => "random",
        };
        if self.cfg.backoff {
            format!(
                "load_balance ({selector}, backoff up to {} ms)",
                self.cfg.max_timeout.as_millis()
            )
        } else {
            format!("load_balance ({selector}, no backoff)")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lb(n: usize, selector: Selector, backoff: bool) -> LoadBalance {
        let cfg = LoadBalanceConfig {
            selector,
            backoff,
            ..LoadBalanceConfig::default()
        };
        LoadBalance::new(n, cfg, 42)
    }

    #[test]
    fn round_robin_starts_each_batch_at_the_next_sink() {
        let mut p = lb(3, Selector::RoundRobin, false);
        let t = Instant::now();
        let firsts: Vec<usize> = (0..6).map(|_| p.order(t)[0]).collect();
        assert_eq!(firsts, [0, 1, 2, 0, 1, 2]);
        assert_eq!(p.order(t), [0, 1, 2], "every sink is in each order");
    }

    #[test]
    fn random_spreads_over_every_sink() {
        let mut p = lb(3, Selector::Random, false);
        let t = Instant::now();
        let mut firsts = [0u32; 3];
        for _ in 0..3000 {
            let o = p.order(t);
            let mut sorted = o.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, [0, 1, 2]);
            firsts[o[0]] += 1;
        }
        for n in firsts {
            assert!((800..1200).contains(&n), "{firsts:?}");
        }
    }

    #[test]
    fn without_backoff_a_failed_sink_stays_in_the_order() {
        let mut p = lb(2, Selector::RoundRobin, false);
        let t = Instant::now();
        assert_eq!(p.failed(0, t), Duration::ZERO);
        assert!(p.is_active(0, t));
        assert_eq!(p.order(t).len(), 2);
    }

    #[test]
    fn backoff_leaves_a_failed_sink_out_so_its_share_moves_to_the_others() {
        let mut p = lb(2, Selector::RoundRobin, true);
        let mut t = Instant::now();
        assert_eq!(p.failed(1, t), Duration::from_secs(2));
        assert!(!p.is_active(1, t));
        for _ in 0..4 {
            assert_eq!(p.order(t), [0], "only the live sink");
        }
        // In a row (within the last backoff plus an hour): the backoff doubles, up to the cap.
        t += Duration::from_secs(2);
        assert!(p.is_active(1, t));
        assert_eq!(p.failed(1, t), Duration::from_secs(4));
        t += Duration::from_secs(4);
        assert_eq!(p.failed(1, t), Duration::from_secs(8));
        for _ in 0..3 {
            t += Duration::from_secs(8);
            p.failed(1, t);
        }
        t += Duration::from_secs(30);
        assert_eq!(
            p.failed(1, t),
            Duration::from_secs(30),
            "capped at maxTimeOut"
        );
        // More than an hour after: the count starts again.
        t += Duration::from_secs(3700);
        assert_eq!(p.failed(1, t), Duration::from_secs(2));
        // Both out: nothing to try until the first comes back.
        p.failed(0, t);
        assert!(p.order(t).is_empty());
        assert_eq!(p.next_due(t), Some(Duration::from_secs(2)));
    }

    #[test]
    fn selector_keys() {
        let parsed = |pairs: &[(&str, &str)]| {
            let mut keys = Keys::from_pairs("sinkgroups", "g1", pairs);
            parse(&mut keys).map(|s| {
                s.as_any()
                    .downcast_ref::<LoadBalanceConfig>()
                    .expect("load_balance")
                    .clone()
            })
        };
        assert_eq!(parsed(&[]).expect("defaults"), LoadBalanceConfig::default());
        let c = parsed(&[
            ("selector", "RANDOM"),
            ("backoff", "true"),
            ("selector.maxTimeOut", "5000"),
        ])
        .expect("parses");
        assert_eq!(c.selector, Selector::Random);
        assert!(c.backoff);
        assert_eq!(c.max_timeout, Duration::from_secs(5));
        let e = parsed(&[("selector", "com.example.MySelector")]).expect_err("a class");
        let msg = e.to_string();
        assert!(
            msg.contains("Java class") && msg.contains("round_robin"),
            "{msg}"
        );
        assert!(parsed(&[("selector", "fair")]).is_err());
        let c = parsed(&[("selector.maxTimeOut", "0")]).expect("Flume's default for 0");
        assert_eq!(c.max_timeout, Duration::from_secs(30));
    }
}
