//! `HEADER_AND_TEXT` (Flume's `HeaderAndBodyTextEventSerializer`): per event, the headers
//! as Java's `Map.toString()` writes them (`{k1=v1, k2=v2}`, `{}` for none) in the order
//! Java's `HashMap` iterates them ([`super::java_hash_map_order`]), one space, the body as
//! it is, then `\n` unless `appendNewline = false`. Keys and values are written as they
//! are, unescaped (so a value holding `, ` or `=` reads ambiguously, as in Flume). Holds no
//! state and buffers nothing.

use super::text::Text;
use super::{java_hash_map_order, Serializer, SerializerError};
use crate::event::Event;

/// See the module docs.
#[derive(Debug)]
pub struct HeaderAndText {
    /// The body and its newline, as `TEXT` writes them.
    text: Text,
}

impl HeaderAndText {
    pub fn new(append_newline: bool) -> Self {
        HeaderAndText {
            text: Text::new(append_newline),
        }
    }
}

impl Serializer for HeaderAndText {
    fn append(&mut self, event: &Event, out: &mut Vec<u8>) -> Result<(), SerializerError> {
        out.push(b'{');
        for (i, (k, v)) in java_hash_map_order(event.headers()).into_iter().enumerate() {
            if i > 0 {
                out.extend_from_slice(b", ");
            }
            out.extend_from_slice(k.as_bytes());
            out.push(b'=');
            out.extend_from_slice(v.as_bytes());
        }
        out.extend_from_slice(b"} ");
        self.text.append(event, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Headers;

    #[test]
    fn headers_as_java_prints_them_then_the_body() {
        let mut h = Headers::new();
        h.insert("timestamp".into(), "1700000000000".into());
        h.insert("host".into(), "web1".into());
        let events = [
            Event::with_headers(h, "first line"),
            Event::new("no headers"),
        ];
        for (newline, want) in [
            (
                true,
                "{host=web1, timestamp=1700000000000} first line\n{} no headers\n",
            ),
            (
                false,
                "{host=web1, timestamp=1700000000000} first line{} no headers",
            ),
        ] {
            let mut s = HeaderAndText::new(newline);
            let mut out = Vec::new();
            s.begin(&mut out);
            for e in &events {
                s.append(e, &mut out).expect("in memory");
            }
            s.finish(&mut out).expect("in memory");
            assert_eq!(String::from_utf8(out).expect("utf-8"), want);
        }
    }
}
