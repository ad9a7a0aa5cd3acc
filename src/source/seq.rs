//! The `seq` source (Flume's SequenceGeneratorSource): events whose bodies are the decimal
//! numbers 0, 1, 2, ..., `batchSize` per transaction, stopping after `totalEvents` if set.
//! A batch is counted only once every bound channel has committed it, so a full channel
//! delays the sequence but never skips or repeats a number within one run.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::{put_batch_counted, PutError, Source};
use crate::channel::Channel;
use crate::event::Event;
use crate::metrics::{ComponentCounters, ComponentType};

/// See the module docs.
pub struct SeqSource {
    name: String,
    channels: Vec<Arc<dyn Channel>>,
    total_events: Option<u64>,
    batch_size: usize,
    counters: Arc<ComponentCounters>,
}

impl SeqSource {
    /// A source called `name` putting into `channels`.
    pub fn new(
        name: &str,
        channels: Vec<Arc<dyn Channel>>,
        total_events: Option<u64>,
        batch_size: usize,
    ) -> SeqSource {
        SeqSource {
            name: name.to_string(),
            channels,
            total_events,
            batch_size: batch_size.max(1),
            counters: ComponentCounters::detached(name, ComponentType::Source),
        }
    }

    /// Counts into `counters` (Flume's SourceCounter) instead of detached counters.
    pub fn with_counters(mut self, counters: Arc<ComponentCounters>) -> Self {
        self.counters = counters;
        self
    }
}

impl Source for SeqSource {
    fn run(self: Box<Self>, stop: Arc<AtomicBool>) {
        let mut next = 0u64;
        let mut batch = Vec::with_capacity(self.batch_size);
        while !stop.load(Ordering::Acquire) {
            let left = self.total_events.map_or(u64::MAX, |t| t - next.min(t));
            if left == 0 {
                tracing::info!(
                    source = %self.name,
                    "source `{}` (seq) put all {next} events",
                    self.name
                );
                return;
            }
            let n = (self.batch_size as u64).min(left);
            batch.clear();
            batch.extend((next..next + n).map(|i| Event::new(i.to_string().into_bytes())));
            match put_batch_counted(
                &self.name,
                "seq",
                &self.channels,
                &batch,
                &stop,
                &self.counters,
            ) {
                Ok(()) => next += n,
                Err(PutError::Stopped) => break,
                Err(PutError::Failed(_)) => return,
            }
        }
        tracing::debug!(source = %self.name, "source `{}` (seq) put {next} events", self.name);
    }
}
