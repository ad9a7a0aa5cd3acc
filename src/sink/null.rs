//! The `null` sink (Flume's NullSink): takes events and discards them.

use super::{Sink, SinkError, SinkSpec, SinkType};
use crate::config::{ConfigError, Keys, Registered};
use crate::event::Event;

/// `null` / Flume's NullSink.
pub const TYPE: SinkType = Registered {
    alias: "null",
    class: Some("org.apache.flume.sink.NullSink"),
    parse,
    minimal: &[],
};

/// The null sink's keys (docs/CONFIG.md, `null`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NullConfig {
    /// `batchSize` (default 100).
    pub batch_size: usize,
}

impl Default for NullConfig {
    fn default() -> Self {
        NullConfig { batch_size: 100 }
    }
}

fn parse(keys: &mut Keys<'_>) -> Result<Box<dyn SinkSpec>, ConfigError> {
    let batch_size = keys.size("batchSize", NullConfig::default().batch_size, 1, "events")?;
    keys.ignore(
        "logEveryNEvents",
        "the null sink logs nothing per event; use the metrics instead",
    );
    Ok(Box::new(NullConfig { batch_size }))
}

impl SinkSpec for NullConfig {
    fn batch_size(&self) -> Option<(usize, &'static str)> {
        Some((self.batch_size, "batchSize"))
    }

    fn build(&self, _name: &str) -> Result<Box<dyn Sink>, SinkError> {
        Ok(Box::new(NullSink))
    }
}

/// See the module docs.
pub struct NullSink;

impl Sink for NullSink {
    fn process(&mut self, _events: &[Event]) -> Result<(), SinkError> {
        Ok(())
    }
}
