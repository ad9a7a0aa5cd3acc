//! Flume's JSONHandler, sans I/O: a request body (a JSON array of `{"headers": {...}, "body":
//! "..."}` objects) and its Content-Type charset to events. docs/FORMAT.md, "The http
//! source's JSON", is the specification.
//!
//! Invariants:
//! - A body decodes whole or not at all: any error (charset, encoding, syntax, shape) yields
//!   no event, so the caller commits nothing of a bad request.
//! - Every error says what is wrong and where: the byte offset of an encoding error, the line
//!   and column of a JSON error (serde_json's positions, 1-based, in the decoded text).
//! - Never panics; allocates at most a few times the body's size (the decoded text, the
//!   events).
//!
//! Flume's values, kept: a header value or body written as a JSON number or boolean is taken
//! as its text (`1.50` stays `1.50`, as Gson's string adapter keeps it); a `null` or absent
//! body is an empty body; absent or `null` headers are no headers; unknown fields of an event
//! are ignored; a header named twice is an error. The body's bytes are its text encoded in the
//! request's charset (Java's `String.getBytes(charset)`: UTF-16 is big-endian with a byte
//! order mark, UTF-32 big-endian without one).

use std::borrow::Cow;
use std::fmt;

use bytes::Bytes;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use crate::event::{Event, Headers};

/// The charsets Flume's JSONHandler reads (it refuses every other one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Charset {
    Utf8,
    Utf16,
    Utf32,
}

impl Charset {
    /// The name Flume logs and encodes with.
    pub fn name(self) -> &'static str {
        match self {
            Charset::Utf8 => "UTF-8",
            Charset::Utf16 => "UTF-16",
            Charset::Utf32 => "UTF-32",
        }
    }

    /// The `charset` parameter of a Content-Type header value; UTF-8 when there is no header
    /// or no parameter (whatever the media type, as Flume). `utf8` and `utf16` are taken as
    /// Jetty normalises them.
    pub fn from_content_type(content_type: Option<&[u8]>) -> Result<Charset, JsonError> {
        let Some(ct) = content_type else {
            return Ok(Charset::Utf8);
        };
        let ct = String::from_utf8_lossy(ct);
        for param in ct.split(';').skip(1) {
            let Some((name, value)) = param.split_once('=') else {
                continue;
            };
            if !name.trim().eq_ignore_ascii_case("charset") {
                continue;
            }
            let value = value.trim().trim_matches('"').trim();
            return match value.to_ascii_lowercase().as_str() {
                "utf-8" | "utf8" => Ok(Charset::Utf8),
                "utf-16" | "utf16" => Ok(Charset::Utf16),
                "utf-32" => Ok(Charset::Utf32),
                _ => Err(JsonError::Charset(value.chars().take(64).collect())),
            };
        }
        Ok(Charset::Utf8)
    }

    /// The body's text, or where it stops being valid in this charset.
    fn decode(self, body: &[u8]) -> Result<Cow<'_, str>, JsonError> {
        match self {
            Charset::Utf8 => {
                let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
                std::str::from_utf8(body)
                    .map(Cow::Borrowed)
                    .map_err(|e| JsonError::Encoding {
                        charset: self,
                        offset: e.valid_up_to(),
                        detail: "not a UTF-8 sequence",
                    })
            }
            Charset::Utf16 => decode_utf16(body).map(Cow::Owned),
            Charset::Utf32 => decode_utf32(body).map(Cow::Owned),
        }
    }

    /// `text` as Java's `String.getBytes(charset)` writes it.
    fn encode(self, text: &str) -> Bytes {
        match self {
            Charset::Utf8 => Bytes::copy_from_slice(text.as_bytes()),
            Charset::Utf16 => {
                let mut out = Vec::with_capacity(2 + text.len() * 2);
                out.extend_from_slice(&[0xFE, 0xFF]);
                for unit in text.encode_utf16() {
                    out.extend_from_slice(&unit.to_be_bytes());
                }
                Bytes::from(out)
            }
            Charset::Utf32 => {
                let mut out = Vec::with_capacity(text.len() * 4);
                for c in text.chars() {
                    out.extend_from_slice(&u32::from(c).to_be_bytes());
                }
                Bytes::from(out)
            }
        }
    }
}

/// Java's UTF-16 decoder: a byte order mark picks the order, big-endian without one.
fn decode_utf16(body: &[u8]) -> Result<String, JsonError> {
    let (little, start) = match body {
        [0xFE, 0xFF, ..] => (false, 2),
        [0xFF, 0xFE, ..] => (true, 2),
        _ => (false, 0),
    };
    let bad = |offset, detail| JsonError::Encoding {
        charset: Charset::Utf16,
        offset,
        detail,
    };
    let rest = body.get(start..).unwrap_or_default();
    if rest.len() % 2 != 0 {
        return Err(bad(body.len() - 1, "an odd number of bytes"));
    }
    let units = rest.chunks_exact(2).map(|p| {
        let pair = [p[0], p[1]];
        if little {
            u16::from_le_bytes(pair)
        } else {
            u16::from_be_bytes(pair)
        }
    });
    let mut out = String::with_capacity(rest.len() / 2);
    let mut offset = start;
    for c in char::decode_utf16(units) {
        match c {
            Ok(c) => {
                out.push(c);
                offset += c.len_utf16() * 2;
            }
            Err(_) => return Err(bad(offset, "an unpaired surrogate")),
        }
    }
    Ok(out)
}

/// Java's UTF-32 decoder: a byte order mark picks the order, big-endian without one.
fn decode_utf32(body: &[u8]) -> Result<String, JsonError> {
    let (little, start) = match body {
        [0, 0, 0xFE, 0xFF, ..] => (false, 4),
        [0xFF, 0xFE, 0, 0, ..] => (true, 4),
        _ => (false, 0),
    };
    let bad = |offset, detail| JsonError::Encoding {
        charset: Charset::Utf32,
        offset,
        detail,
    };
    let rest = body.get(start..).unwrap_or_default();
    if rest.len() % 4 != 0 {
        return Err(bad(body.len() - rest.len() % 4, "a truncated code unit"));
    }
    let mut out = String::with_capacity(rest.len() / 4);
    for (i, q) in rest.chunks_exact(4).enumerate() {
        let quad = [q[0], q[1], q[2], q[3]];
        let v = if little {
            u32::from_le_bytes(quad)
        } else {
            u32::from_be_bytes(quad)
        };
        match char::from_u32(v) {
            Some(c) => out.push(c),
            None => return Err(bad(start + i * 4, "not a Unicode code point")),
        }
    }
    Ok(out)
}

/// Why a JSON request was refused. The source answers 415 for [`JsonError::Charset`] and 400
/// for the others, with this text as the reason.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JsonError {
    /// The Content-Type names a charset the handler does not read.
    #[error("unsupported charset `{0}` in the Content-Type: the JSON handler reads UTF-8, UTF-16 and UTF-32 (as Flume's); send one of them, or no charset for UTF-8")]
    Charset(String),
    /// The body is not text in its charset.
    #[error("the body is not valid {}: {detail} at byte {offset}", charset.name())]
    Encoding {
        charset: Charset,
        offset: usize,
        detail: &'static str,
    },
    /// Nothing but whitespace.
    #[error("the body is empty: expected a JSON array of events such as [{{\"headers\": {{\"h\": \"v\"}}, \"body\": \"text\"}}]")]
    Empty,
    /// Not JSON, or JSON of the wrong shape; serde_json's message ends with the position.
    #[error("invalid JSON: {0}")]
    Json(serde_json::Error),
}

impl JsonError {
    /// Line and column (1-based) of a JSON error, in the decoded text.
    pub fn position(&self) -> Option<(usize, usize)> {
        match self {
            JsonError::Json(e) => Some((e.line(), e.column())),
            _ => None,
        }
    }
}

/// Decodes a request body into its events, all or none.
pub fn decode(body: &[u8], charset: Charset) -> Result<Vec<Event>, JsonError> {
    let text = charset.decode(body)?;
    if text.trim().is_empty() {
        return Err(JsonError::Empty);
    }
    let mut de = serde_json::Deserializer::from_str(&text);
    let events = EventsSeed { charset }
        .deserialize(&mut de)
        .map_err(JsonError::Json)?;
    de.end().map_err(JsonError::Json)?;
    Ok(events)
}

struct EventsSeed {
    charset: Charset,
}

impl<'de> DeserializeSeed<'de> for EventsSeed {
    type Value = Vec<Event>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Vec<Event>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for EventsSeed {
    type Value = Vec<Event>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON array of events, each {\"headers\": {...}, \"body\": \"...\"}")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<Event>, A::Error> {
        // The hint comes from the input's size, never trusted beyond a small start.
        let mut events = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(e) = seq.next_element_seed(EventSeed {
            charset: self.charset,
        })? {
            events.push(e);
        }
        Ok(events)
    }
}

struct EventSeed {
    charset: Charset,
}

impl<'de> DeserializeSeed<'de> for EventSeed {
    type Value = Event;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Event, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for EventSeed {
    type Value = Event;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an event object {\"headers\": {...}, \"body\": \"...\"}")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Event, A::Error> {
        let mut headers = Headers::new();
        let mut body: Option<String> = None;
        // Gson's reflective adapter: a field given twice keeps its last value.
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            match key.as_ref() {
                "headers" => headers = map.next_value_seed(HeadersSeed)?,
                "body" => {
                    let raw: &'de RawValue = map.next_value()?;
                    body = scalar_text(raw, "the body").map_err(de::Error::custom)?;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let body = body.map_or_else(Bytes::new, |b| self.charset.encode(&b));
        Ok(Event::with_headers(headers, body))
    }
}

struct HeadersSeed;

impl<'de> DeserializeSeed<'de> for HeadersSeed {
    type Value = Headers;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Headers, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for HeadersSeed {
    type Value = Headers;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object of header names to string values")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Headers, E> {
        Ok(Headers::new())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Headers, A::Error> {
        let mut headers = Headers::new();
        while let Some(name) = map.next_key::<String>()? {
            let raw: &'de RawValue = map.next_value()?;
            let what = format!("header `{name}`");
            let Some(value) = scalar_text(raw, &what).map_err(de::Error::custom)? else {
                return Err(de::Error::custom(format!(
                    "header `{name}` is null: a header value must be a string"
                )));
            };
            if headers.contains_key(&name) {
                return Err(de::Error::custom(format!("header `{name}` is given twice")));
            }
            headers.insert(name, value);
        }
        Ok(headers)
    }
}

/// A string as its text, a number or boolean as written (Gson's string adapter), `null` as
/// `None`; an object or array is an error naming `what`.
fn scalar_text(raw: &RawValue, what: &str) -> Result<Option<String>, String> {
    let text = raw.get();
    match text.as_bytes().first() {
        Some(b'"') => serde_json::from_str::<String>(text)
            .map(Some)
            .map_err(|e| format!("{what}: {e}")),
        Some(b'n') => Ok(None),
        Some(b'{') | Some(b'[') => Err(format!(
            "{what} is a JSON {}, expected a string",
            if text.starts_with('{') {
                "object"
            } else {
                "array"
            }
        )),
        Some(_) => Ok(Some(text.to_string())),
        None => Err(format!("{what} is missing")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(body: &str) -> Vec<Event> {
        decode(body.as_bytes(), Charset::Utf8).expect("decodes")
    }

    fn err(body: &[u8], cs: Charset) -> String {
        decode(body, cs).expect_err("refused").to_string()
    }

    #[test]
    fn events_with_headers_and_bodies() {
        let ev = ok(
            r#"[{"headers":{"a":"1","b":2.50,"c":true},"body":"hi"},{"body":"x","extra":[1]},{}]"#,
        );
        assert_eq!(ev.len(), 3);
        assert_eq!(ev[0].header("a"), Some("1"));
        assert_eq!(ev[0].header("b"), Some("2.50"));
        assert_eq!(ev[0].header("c"), Some("true"));
        assert_eq!(&ev[0].body()[..], b"hi");
        assert!(ev[1].headers().is_empty());
        assert_eq!(&ev[2].body()[..], b"");
        assert!(ok("[]").is_empty());
        assert_eq!(&ok(r#"[{"body":null,"headers":null}]"#)[0].body()[..], b"");
        assert_eq!(&ok(r#"[{"body":12e3}]"#)[0].body()[..], b"12e3");
    }

    #[test]
    fn errors_name_the_position_and_the_problem() {
        let e = decode(b"[{\"body\":\"a\"},\n {\"body\": }]", Charset::Utf8).expect_err("bad");
        assert_eq!(e.position(), Some((2, 11)), "{e}");
        assert!(err(br#"{"body":"a"}"#, Charset::Utf8).contains("expected a JSON array"));
        assert!(err(br#"[{"headers":{"a":"1","a":"2"}}]"#, Charset::Utf8).contains("twice"));
        assert!(err(br#"[{"headers":{"a":null}}]"#, Charset::Utf8).contains("null"));
        assert!(err(br#"[{"body":{"x":1}}]"#, Charset::Utf8).contains("object"));
        assert!(err(br#"[null]"#, Charset::Utf8).contains("event object"));
        assert!(err(b"  ", Charset::Utf8).contains("empty"));
        // Gson's leniency is not copied: unquoted names, single quotes, comments.
        for lenient in [&b"[{body: \"x\"}]"[..], b"[{\"body\": 'x'}]", b"[] // c"] {
            assert!(decode(lenient, Charset::Utf8).is_err(), "{lenient:?}");
        }
        assert!(err(b"[] x", Charset::Utf8).contains("trailing"));
        assert!(err(b"[{\"body\":\"\xFF\"}]", Charset::Utf8).contains("at byte 10"));
    }

    #[test]
    fn charsets_as_flume_reads_and_writes_them() {
        assert_eq!(
            Charset::from_content_type(Some(b"application/json; charset=\"utf-16\"")).expect("ok"),
            Charset::Utf16
        );
        assert_eq!(
            Charset::from_content_type(Some(b"text/plain")).expect("ok"),
            Charset::Utf8
        );
        assert!(matches!(
            Charset::from_content_type(Some(b"application/json;charset=ISO-8859-1")),
            Err(JsonError::Charset(c)) if c == "ISO-8859-1"
        ));
        let text = r#"[{"body":"é"}]"#;
        let mut le = vec![0xFF, 0xFE];
        for u in text.encode_utf16() {
            le.extend_from_slice(&u.to_le_bytes());
        }
        let ev = decode(&le, Charset::Utf16).expect("utf-16 le");
        assert_eq!(&ev[0].body()[..], &[0xFE, 0xFF, 0x00, 0xE9]);
        let be32: Vec<u8> = text
            .chars()
            .flat_map(|c| u32::from(c).to_be_bytes())
            .collect();
        let ev = decode(&be32, Charset::Utf32).expect("utf-32");
        assert_eq!(&ev[0].body()[..], &[0, 0, 0, 0xE9]);
        assert!(err(&[0xD8, 0x00, 0x00, 0x41], Charset::Utf16).contains("surrogate"));
    }
}
