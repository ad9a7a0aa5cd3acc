//! The `logger` sink (Flume's LoggerSink): logs each event at INFO through `tracing`, with its
//! headers and at most `maxBytesToLog` bytes of its body (shown as text, invalid UTF-8 and
//! control characters escaped).

use super::{Sink, SinkError};
use crate::event::Event;

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
    fn type_name(&self) -> &'static str {
        "logger"
    }

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
