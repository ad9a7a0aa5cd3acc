//! `TEXT` (Flume's `BodyTextEventSerializer`): each event's body as it is, then `\n` unless
//! `appendNewline = false`. Headers are dropped. Holds no state and buffers nothing.

use super::{Serializer, SerializerError};
use crate::event::Event;

/// See the module docs.
#[derive(Debug)]
pub struct Text {
    append_newline: bool,
}

impl Text {
    pub fn new(append_newline: bool) -> Self {
        Text { append_newline }
    }
}

impl Serializer for Text {
    fn append(&mut self, event: &Event, out: &mut Vec<u8>) -> Result<(), SerializerError> {
        out.extend_from_slice(event.body());
        if self.append_newline {
            out.push(b'\n');
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_with_and_without_newlines() {
        let events = [Event::new("a"), Event::new(""), Event::new("b\nc")];
        for (newline, want) in [(true, &b"a\n\nb\nc\n"[..]), (false, b"ab\nc")] {
            let mut s = Text::new(newline);
            let mut out = Vec::new();
            s.begin(&mut out);
            for e in &events {
                s.append(e, &mut out).expect("in memory");
            }
            s.finish(&mut out).expect("in memory");
            assert_eq!(out, want);
        }
    }
}
