//! The `stress` source (Flume's StressSource): a load generator putting events of `size`
//! body bytes, `batchSize` per transaction, until `maxTotalEvents` (if set) have been put,
//! at most `maxEventsPerSecond` a second (if set).
//!
//! Each body is a fresh copy of a fixed pattern whose first bytes (up to 8) hold the event's
//! number, 7 bits a byte, little-endian, so every event is distinct; the rest is printable
//! ASCII. So a body is valid UTF-8 text, as the log lines interceptors usually see are (and as
//! Flume's StressSource bodies are: every byte 0x7F). As with `seq`, a batch is counted only
//! once every bound channel has committed it: a full channel slows the source down (with
//! backoff) but never makes it drop or repeat events. Flume's StressSource instead counts a
//! failed batch towards `maxTotalEvents` and moves on; see docs/CONFIG.md.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::{
    put_batch_counted, PutError, Source, SourceContext, SourceError, SourceSpec, SourceType,
};
use crate::config::{ConfigError, Keys, Registered};
use crate::event::Event;
use crate::metrics::ComponentCounters;
use crate::route::ChannelProcessor;
use crate::stop::sleep_unless_stopped;

/// Flume's StressSource (Flume has no alias for it; `stress` is ours).
pub const TYPE: SourceType = Registered {
    alias: "stress",
    class: Some("org.apache.flume.source.StressSource"),
    parse,
    minimal: &[],
};

/// The `stress` source's keys (docs/CONFIG.md, `stress`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StressConfig {
    /// `size` (default 500): body bytes per event.
    pub size: usize,
    /// `maxTotalEvents` (default -1 = no limit): stop after this many.
    pub max_total_events: Option<u64>,
    /// `batchSize` (default 1).
    pub batch_size: usize,
    /// `maxEventsPerSecond` (default 0 = no limit): put at most this many events a second.
    pub max_events_per_second: u64,
}

impl Default for StressConfig {
    fn default() -> Self {
        StressConfig {
            size: 500,
            max_total_events: None,
            batch_size: 1,
            max_events_per_second: 0,
        }
    }
}

fn parse(keys: &mut Keys<'_>) -> Result<Box<dyn SourceSpec>, ConfigError> {
    let d = StressConfig::default();
    let size = keys.size("size", d.size, 0, "bytes")?;
    // Flume's default and "no limit" is -1; a negative number means the same.
    keys.document_default("maxTotalEvents", "-1");
    let max_total_events = keys
        .parsed("maxTotalEvents", |s| match s.parse::<i64>() {
            Ok(n) if n < 0 => Ok(None),
            Ok(n) => Ok(Some(n.unsigned_abs())),
            Err(_) => Err("a whole number of events, or -1 for no limit".to_string()),
        })?
        .and_then(|(n, _)| n);
    keys.ignore(
        "maxSuccessfulEvents",
        "flumen's stress source retries a full channel instead of failing events, so \
         maxTotalEvents already counts only successful events",
    );
    let batch_size = keys.size("batchSize", d.batch_size, 1, "events")?;
    keys.document_default("maxEventsPerSecond", d.max_events_per_second.to_string());
    let max_events_per_second = keys
        .parsed("maxEventsPerSecond", |s| match s.parse::<i64>() {
            Ok(n) if n <= 0 => Ok(0),
            Ok(n) => Ok(n.unsigned_abs()),
            Err(_) => Err("a whole number of events a second, 0 for no limit".to_string()),
        })?
        .map_or(d.max_events_per_second, |(n, _)| n);
    Ok(Box::new(StressConfig {
        size,
        max_total_events,
        batch_size,
        max_events_per_second,
    }))
}

impl SourceSpec for StressConfig {
    fn batch_size(&self) -> Option<(usize, &'static str)> {
        Some((self.batch_size, "batchSize"))
    }

    fn build(&self, ctx: SourceContext) -> Result<Box<dyn Source>, SourceError> {
        Ok(Box::new(StressSource::new(ctx, self)))
    }
}

/// See the module docs.
pub struct StressSource {
    name: String,
    channels: Arc<ChannelProcessor>,
    size: usize,
    max_total_events: Option<u64>,
    batch_size: usize,
    max_events_per_second: u64,
    counters: Arc<ComponentCounters>,
}

impl StressSource {
    /// A source putting into `ctx.channels` as `cfg` says.
    pub fn new(ctx: SourceContext, cfg: &StressConfig) -> StressSource {
        StressSource {
            name: ctx.name,
            channels: ctx.channels,
            size: cfg.size,
            max_total_events: cfg.max_total_events,
            batch_size: cfg.batch_size.max(1),
            max_events_per_second: cfg.max_events_per_second,
            counters: ctx.counters,
        }
    }

    /// Event `i`'s body: the pattern with `i` in its first bytes, 7 bits a byte (so each
    /// stays ASCII), lowest first.
    fn body(&self, template: &[u8], i: u64) -> Bytes {
        let mut b = template.to_vec();
        for (k, byte) in b.iter_mut().take(8).enumerate() {
            *byte = ((i >> (7 * k)) & 0x7f) as u8;
        }
        Bytes::from(b)
    }

    /// With a rate limit, sleeps until putting `done` events is within it.
    fn pace(&self, started: Instant, done: u64, stop: &AtomicBool) {
        if self.max_events_per_second == 0 {
            return;
        }
        let due = Duration::from_secs_f64(done as f64 / self.max_events_per_second as f64);
        if let Some(wait) = due.checked_sub(started.elapsed()) {
            sleep_unless_stopped(wait, stop);
        }
    }
}

impl Source for StressSource {
    fn run(self: Box<Self>, stop: Arc<AtomicBool>) {
        // Printable ASCII, from ' ' to '~' and again: not all zeros, so nothing downstream
        // gains from zero pages, and text, as a regex interceptor expects.
        let template: Vec<u8> = (0..self.size).map(|i| b' ' + (i % 95) as u8).collect();
        let mut next = 0u64;
        let mut batch = Vec::with_capacity(self.batch_size);
        let started = Instant::now();
        while !stop.load(Ordering::Acquire) {
            let left = self.max_total_events.map_or(u64::MAX, |t| t - next.min(t));
            if left == 0 {
                tracing::info!(
                    source = %self.name,
                    "source `{}` (stress) put all {next} events",
                    self.name
                );
                return;
            }
            let mut n = (self.batch_size as u64).min(left);
            if self.max_events_per_second > 0 {
                // A batch is at most one second's worth, so the pace stays smooth.
                n = n.min(self.max_events_per_second);
            }
            batch.clear();
            batch.extend((next..next + n).map(|i| Event::new(self.body(&template, i))));
            match put_batch_counted(
                &self.name,
                "stress",
                &self.channels,
                &batch,
                &stop,
                &self.counters,
            ) {
                Ok(()) => next += n,
                Err(PutError::Stopped) => break,
                Err(PutError::Failed(_)) => return,
            }
            self.pace(started, next, &stop);
        }
        tracing::debug!(
            source = %self.name,
            "source `{}` (stress) put {next} events",
            self.name
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::memory::{MemoryChannel, MemoryChannelConfig};
    use crate::channel::Channel;
    use crate::metrics::Counter;

    #[test]
    fn puts_max_total_events_of_size_bytes() {
        let ch: Arc<dyn Channel> = Arc::new(
            MemoryChannel::new(
                "c",
                MemoryChannelConfig {
                    capacity: 1_000,
                    transaction_capacity: 100,
                    ..MemoryChannelConfig::default()
                },
            )
            .expect("channel"),
        );
        let cfg = StressConfig {
            size: 100,
            max_total_events: Some(250),
            batch_size: 100,
            max_events_per_second: 0,
        };
        let src = StressSource::new(SourceContext::detached("r", vec![ch.clone()]), &cfg);
        let counters = src.counters.clone();
        Box::new(src).run(Arc::new(AtomicBool::new(false)));
        assert_eq!(ch.stats().size, 250);
        assert_eq!(counters.get(Counter::EventAcceptedCount), 250);
        let mut tx = ch.take_transaction();
        let mut seen = Vec::new();
        for _ in 0..100 {
            let e = tx.take().expect("take").expect("an event");
            assert_eq!(e.body().len(), 100);
            assert!(std::str::from_utf8(e.body()).is_ok(), "text");
            let number = e.body()[..8]
                .iter()
                .rev()
                .fold(0u64, |n, b| (n << 7) | u64::from(*b));
            seen.push(number);
        }
        tx.commit().expect("commit");
        assert_eq!(seen, (0..100).collect::<Vec<_>>());
    }
}
