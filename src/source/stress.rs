//! The `stress` source (Flume's StressSource): a load generator putting events of `size`
//! body bytes, `batchSize` per transaction, until `maxTotalEvents` (if set) have been put,
//! at most `maxEventsPerSecond` a second (if set).
//!
//! Each body is a fresh copy of a fixed pattern whose first bytes (up to 8) hold the event's
//! number, little-endian, so every event is distinct. As with `seq`, a batch is counted only
//! once every bound channel has committed it: a full channel slows the source down (with
//! backoff) but never makes it drop or repeat events. Flume's StressSource instead counts a
//! failed batch towards `maxTotalEvents` and moves on; see docs/CONFIG.md.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::{put_batch_counted, sleep_unless_stopped, PutError, Source};
use crate::channel::Channel;
use crate::event::Event;
use crate::metrics::{ComponentCounters, ComponentType};

/// See the module docs.
pub struct StressSource {
    name: String,
    channels: Vec<Arc<dyn Channel>>,
    size: usize,
    max_total_events: Option<u64>,
    batch_size: usize,
    max_events_per_second: u64,
    counters: Arc<ComponentCounters>,
}

impl StressSource {
    /// A source called `name` putting into `channels`; `max_events_per_second` 0 is no limit.
    pub fn new(
        name: &str,
        channels: Vec<Arc<dyn Channel>>,
        size: usize,
        max_total_events: Option<u64>,
        batch_size: usize,
        max_events_per_second: u64,
    ) -> StressSource {
        StressSource {
            name: name.to_string(),
            channels,
            size,
            max_total_events,
            batch_size: batch_size.max(1),
            max_events_per_second,
            counters: ComponentCounters::detached(name, ComponentType::Source),
        }
    }

    /// Counts into `counters` (Flume's SourceCounter) instead of detached counters.
    pub fn with_counters(mut self, counters: Arc<ComponentCounters>) -> Self {
        self.counters = counters;
        self
    }

    /// Event `i`'s body: the pattern with `i` in its first bytes.
    fn body(&self, template: &[u8], i: u64) -> Bytes {
        let mut b = template.to_vec();
        let n = b.len().min(8);
        b[..n].copy_from_slice(&i.to_le_bytes()[..n]);
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
        // Not all zeros, so nothing downstream gains from zero pages.
        let template: Vec<u8> = (0..self.size).map(|i| (i % 251) as u8).collect();
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
        let src = StressSource::new("r", vec![ch.clone()], 100, Some(250), 100, 0);
        let counters = src.counters.clone();
        Box::new(src).run(Arc::new(AtomicBool::new(false)));
        assert_eq!(ch.stats().size, 250);
        assert_eq!(counters.get(Counter::EventAcceptedCount), 250);
        let mut tx = ch.take_transaction();
        let mut seen = Vec::new();
        for _ in 0..100 {
            let e = tx.take().expect("take").expect("an event");
            assert_eq!(e.body().len(), 100);
            seen.push(u64::from_le_bytes(
                e.body()[..8].try_into().expect("8 bytes"),
            ));
        }
        tx.commit().expect("commit");
        assert_eq!(seen, (0..100).collect::<Vec<_>>());
    }
}
