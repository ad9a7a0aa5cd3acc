//! The `default` sink processor (Flume's DefaultSinkProcessor): a group of exactly one
//! sink, which runs as if it had no group. Flume uses it when `processor.type` is unset,
//! and refuses it for a group of several sinks (the group is then dropped, and its sinks do
//! not run at all); flumen refuses such a file, naming the key to set.

use std::time::{Duration, Instant};

use super::{SinkProcessor, SinkProcessorSpec, SinkProcessorType, Switch};
use crate::config::{ConfigError, Keys, Registered};

/// `default` / Flume's DefaultSinkProcessor.
pub const TYPE: SinkProcessorType = Registered {
    alias: "default",
    class: Some("org.apache.flume.sink.DefaultSinkProcessor"),
    parse,
    minimal: &[],
};

/// The default processor has no keys.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DefaultConfig;

fn parse(_keys: &mut Keys<'_>) -> Result<Box<dyn SinkProcessorSpec>, ConfigError> {
    Ok(Box::new(DefaultConfig))
}

impl SinkProcessorSpec for DefaultConfig {
    fn check(&self, keys: &mut Keys<'_>, sinks: &[String]) -> Result<(), ConfigError> {
        if sinks.len() == 1 {
            return Ok(());
        }
        Err(keys.missing(
            "type",
            format!(
                "the `default` processor drives one sink, and this group has {} ({}): set it to `failover` or `load_balance` (Flume would drop the group, and its sinks would not run)",
                sinks.len(),
                sinks.join(", ")
            ),
        ))
    }

    fn build(&self, _group: &str, _sinks: &[String]) -> Box<dyn SinkProcessor> {
        Box::new(Single)
    }
}

/// The processor: always the one sink.
#[derive(Debug)]
pub struct Single;

impl SinkProcessor for Single {
    fn order(&mut self, _now: Instant) -> Vec<usize> {
        vec![0]
    }

    fn delivered(&mut self, _sink: usize, _now: Instant) -> Option<Switch> {
        None
    }

    fn failed(&mut self, _sink: usize, _now: Instant) -> Duration {
        Duration::ZERO
    }

    fn is_active(&self, sink: usize, _now: Instant) -> bool {
        sink == 0
    }

    fn describe(&self) -> String {
        "default".to_string()
    }
}
