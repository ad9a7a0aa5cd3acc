//! Flume's blob handlers, sans I/O: the whole request body is one event, its headers the
//! request's query parameters. Two Flume classes, one shape:
//! - `org.apache.flume.sink.solr.morphline.BlobHandler` (the one Flume's guide documents):
//!   also a `Content-Type` header with the request's Content-Type when it has one; bodies are
//!   bounded by `handler.maxBlobLength`.
//! - `org.apache.flume.source.http.BLOBHandler` (flume-ng-core): `handler.mandatoryParameters`,
//!   comma-separated parameter names a request must carry.
//!
//! Invariants: never panics; a parameter given twice keeps its first value (the servlet API's
//! `getParameter`); percent-escapes and `+` are decoded as Jetty decodes a query string
//! (UTF-8), and a query that does not decode refuses the request rather than guessing.

use bytes::Bytes;

use crate::event::{Event, Headers};

/// Which of Flume's blob handlers, with its settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BlobKind {
    /// `org.apache.flume.sink.solr.morphline.BlobHandler`.
    Morphline,
    /// `org.apache.flume.source.http.BLOBHandler`, with its mandatory parameter names.
    Core { mandatory: Vec<String> },
}

/// Why a blob request was refused (answered 400 with this text).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum BlobError {
    /// A percent-escape that is not two hex digits, or escapes that are not UTF-8.
    #[error("the query string does not decode: {0}")]
    Query(String),
    /// `handler.mandatoryParameters` names a parameter the request lacks.
    #[error("the request has no `{0}` parameter, which handler.mandatoryParameters requires: add ?{0}=... to the URL")]
    Missing(String),
}

/// The request's event: `body` whole, headers from `query` (and `content_type` for the
/// morphline handler).
pub fn event(
    kind: &BlobKind,
    content_type: Option<&str>,
    query: Option<&str>,
    body: Bytes,
) -> Result<Event, BlobError> {
    let mut headers = Headers::new();
    if let (BlobKind::Morphline, Some(ct)) = (kind, content_type) {
        headers.insert("Content-Type".to_string(), ct.to_string());
    }
    let mut seen = Vec::new();
    for (name, value) in query_params(query.unwrap_or(""))? {
        // The first value of a name wins; the Content-Type header may be replaced by a
        // parameter of that name, as Flume puts parameters after it.
        if seen.contains(&name) {
            continue;
        }
        seen.push(name.clone());
        headers.insert(name, value);
    }
    if let BlobKind::Core { mandatory } = kind {
        if let Some(m) = mandatory.iter().find(|m| !headers.contains_key(*m)) {
            return Err(BlobError::Missing(m.clone()));
        }
    }
    Ok(Event::with_headers(headers, body))
}

/// `a=1&b=x+y&c` as (name, value) pairs, decoded; pairs with an empty name are skipped.
pub fn query_params(query: &str) -> Result<Vec<(String, String)>, BlobError> {
    let mut out = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let name = decode_component(name)?;
        if name.is_empty() {
            continue;
        }
        out.push((name, decode_component(value)?));
    }
    Ok(out)
}

fn decode_component(s: &str) -> Result<String, BlobError> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        match c {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = |j: usize| b.get(j).and_then(|c| (*c as char).to_digit(16));
                let (Some(h), Some(l)) = (hex(i + 1), hex(i + 2)) else {
                    return Err(BlobError::Query(format!(
                        "`%` at character {} of `{s}` is not followed by two hex digits",
                        i + 1
                    )));
                };
                // Both digits are below 16, so the byte fits.
                out.push(u8::try_from(h * 16 + l).unwrap_or(b'?'));
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out)
        .map_err(|_| BlobError::Query(format!("`{s}` decodes to bytes that are not UTF-8")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parameters_become_headers_first_value_wins() {
        let e = event(
            &BlobKind::Morphline,
            Some("application/octet-stream"),
            Some("resourceName=a%20b.avro&x=1&x=2&flag&=nameless&y=c+d"),
            Bytes::from_static(b"\x00\x01"),
        )
        .expect("event");
        assert_eq!(e.header("resourceName"), Some("a b.avro"));
        assert_eq!(e.header("x"), Some("1"));
        assert_eq!(e.header("flag"), Some(""));
        assert_eq!(e.header("y"), Some("c d"));
        assert_eq!(e.header("Content-Type"), Some("application/octet-stream"));
        assert_eq!(e.headers().len(), 5);
        assert_eq!(&e.body()[..], b"\x00\x01");
    }

    #[test]
    fn core_handler_checks_mandatory_parameters_and_has_no_content_type() {
        let kind = BlobKind::Core {
            mandatory: vec!["id".into()],
        };
        assert_eq!(
            event(&kind, Some("text/plain"), Some("x=1"), Bytes::new()),
            Err(BlobError::Missing("id".into()))
        );
        // Unset mandatoryParameters requires nothing (Flume's `"".split(",")` asks for a
        // parameter named "" and refuses every request).
        let none = BlobKind::Core { mandatory: vec![] };
        assert!(event(&none, None, None, Bytes::new()).is_ok());
        let e = event(&kind, Some("text/plain"), Some("id=7"), Bytes::new()).expect("ok");
        assert_eq!(e.header("Content-Type"), None);
        assert!(matches!(
            query_params("a=%zz"),
            Err(BlobError::Query(m)) if m.contains("hex")
        ));
        assert!(query_params("a=%ff").is_err());
    }
}
