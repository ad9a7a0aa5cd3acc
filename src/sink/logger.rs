//! The `logger` sink (Flume's LoggerSink): logs each event at INFO through `tracing`, with its
//! headers and at most `maxBytesToLog` bytes of its body (shown as text, invalid UTF-8 and
//! control characters escaped).

use super::{Sink, SinkError, SinkSpec, SinkType};
use crate::config::{ConfigError, Keys, Registered};
use crate::event::Event;

/// `logger` / Flume's LoggerSink.
pub const TYPE: SinkType = Registered {
    alias: "logger",
    class: Some("org.apache.flume.sink.LoggerSink"),
    parse,
    minimal: &[],
};

/// The logger sink's keys (docs/CONFIG.md, `logger`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoggerConfig {
    /// `maxBytesToLog` (default 16): body bytes shown per event.
    pub max_bytes_to_log: usize,
}

impl Default for LoggerConfig {
    fn default() -> Self {
        LoggerConfig {
            max_bytes_to_log: 16,
        }
    }
}

fn parse(keys: &mut Keys<'_>) -> Result<Box<dyn SinkSpec>, ConfigError> {
    let d = LoggerConfig::default();
    Ok(Box::new(LoggerConfig {
        max_bytes_to_log: keys.size("maxBytesToLog", d.max_bytes_to_log, 0, "bytes")?,
    }))
}

impl SinkSpec for LoggerConfig {
    /// One event per take, as Flume's LoggerSink.
    fn batch_size(&self) -> Option<(usize, &'static str)> {
        None
    }

    fn build(&self, name: &str) -> Result<Box<dyn Sink>, SinkError> {
        Ok(Box::new(LoggerSink::new(name, self.max_bytes_to_log)))
    }
}

/// See the module docs.
pub struct LoggerSink {
    name: String,
    max_bytes_to_log: usize,
}

impl LoggerSink {
    pub fn new(name: &str, max_bytes_to_log: usize) -> LoggerSink {
        LoggerSink {
            name: name.to_string(),
            max_bytes_to_log,
        }
    }
}

impl Sink for LoggerSink {
    fn process(&mut self, events: &[Event]) -> Result<(), SinkError> {
        for e in events {
            let body = e.body();
            let shown = &body[..body.len().min(self.max_bytes_to_log)];
            let text = shown.escape_ascii().to_string();
            let more = if body.len() > shown.len() { "..." } else { "" };
            tracing::info!(
                sink = %self.name,
                "Event: {{ headers:{:?} body: {} bytes \"{text}{more}\" }}",
                e.headers(),
                body.len()
            );
        }
        Ok(())
    }
}
