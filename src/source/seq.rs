//! The `seq` source (Flume's SequenceGeneratorSource): events whose bodies are the decimal
//! numbers 0, 1, 2, ..., `batchSize` per transaction, stopping after `totalEvents` if set.
//! A batch is counted only once every bound channel has committed it, so a full channel
//! delays the sequence but never skips or repeats a number within one run.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::SourceType;
use super::{put_batch_counted, PutError, Source, SourceContext, SourceError, SourceSpec};
use crate::config::{ConfigError, Keys, Registered};
use crate::event::Event;
use crate::metrics::ComponentCounters;
use crate::route::ChannelProcessor;

/// `seq` / Flume's SequenceGeneratorSource.
pub const TYPE: SourceType = Registered {
    alias: "seq",
    class: Some("org.apache.flume.source.SequenceGeneratorSource"),
    parse,
    minimal: &[],
};

/// The `seq` source's keys (docs/CONFIG.md, `seq`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeqConfig {
    /// `batchSize` (default 1): events per channel transaction.
    pub batch_size: usize,
    /// `totalEvents`: stop after this many (default: no limit).
    pub total_events: Option<u64>,
}

impl Default for SeqConfig {
    fn default() -> Self {
        SeqConfig {
            batch_size: 1,
            total_events: None,
        }
    }
}

fn parse(keys: &mut Keys<'_>) -> Result<Box<dyn SourceSpec>, ConfigError> {
    let d = SeqConfig::default();
    Ok(Box::new(SeqConfig {
        batch_size: keys.size("batchSize", d.batch_size, 1, "events")?,
        total_events: keys.opt_number("totalEvents", 0, "events")?,
    }))
}

impl SourceSpec for SeqConfig {
    fn batch_size(&self) -> Option<(usize, &'static str)> {
        Some((self.batch_size, "batchSize"))
    }

    fn build(&self, ctx: SourceContext) -> Result<Box<dyn Source>, SourceError> {
        Ok(Box::new(SeqSource {
            name: ctx.name,
            channels: ctx.channels,
            total_events: self.total_events,
            batch_size: self.batch_size.max(1),
            counters: ctx.counters,
        }))
    }
}

/// See the module docs.
pub struct SeqSource {
    name: String,
    channels: Arc<ChannelProcessor>,
    total_events: Option<u64>,
    batch_size: usize,
    counters: Arc<ComponentCounters>,
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
