//! The `null` sink (Flume's NullSink): takes events and discards them.

use super::{Sink, SinkError};
use crate::event::Event;

/// See the module docs.
pub struct NullSink;

impl Sink for NullSink {
    fn type_name(&self) -> &'static str {
        "null"
    }

    fn process(&mut self, _events: &[Event]) -> Result<(), SinkError> {
        Ok(())
    }
}
