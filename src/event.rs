//! The unit that flows through flumen: a string map of headers and an opaque body.
//!
//! Invariant: cloning an `Event` never copies the body or the headers. Bodies are `Bytes`
//! (reference counted, sliceable, so a decoder can hand out slices of one read buffer) and the
//! headers sit behind an `Arc`, so fan-out to several channels or a retry after rollback costs a
//! reference count, not a copy. This module does no I/O.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;

/// Headers of an event. Ordered so that encoding is deterministic.
pub type Headers = BTreeMap<String, String>;

/// An event: headers plus body. Cheap to clone.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Event {
    headers: Option<Arc<Headers>>,
    body: Bytes,
}

impl Event {
    /// An event with a body and no headers.
    pub fn new(body: impl Into<Bytes>) -> Self {
        Event {
            headers: None,
            body: body.into(),
        }
    }

    /// An event with headers and a body. An empty map is stored as no map at all, so the
    /// common header-less event costs no allocation for its headers.
    pub fn with_headers(headers: Headers, body: impl Into<Bytes>) -> Self {
        Event {
            headers: if headers.is_empty() {
                None
            } else {
                Some(Arc::new(headers))
            },
            body: body.into(),
        }
    }

    /// The body bytes.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// The headers; empty when the event has none.
    pub fn headers(&self) -> &Headers {
        static EMPTY: Headers = BTreeMap::new();
        self.headers.as_deref().unwrap_or(&EMPTY)
    }

    /// One header's value.
    pub fn header(&self, key: &str) -> Option<&str> {
        self.headers().get(key).map(String::as_str)
    }

    /// Replaces or adds one header (copy-on-write when the map is shared).
    pub fn set_header(&mut self, key: impl Into<String>, value: impl Into<String>) {
        let map = self.headers.get_or_insert_with(Default::default);
        Arc::make_mut(map).insert(key.into(), value.into());
    }

    /// Replaces the body (the `search_replace` interceptor rewrites it).
    pub fn set_body(&mut self, body: impl Into<Bytes>) {
        self.body = body.into();
    }

    /// Bytes this event accounts for against a channel's `byteCapacity`: the body, as Flume
    /// counts it.
    pub fn byte_size(&self) -> u64 {
        self.body.len() as u64
    }
}

impl std::fmt::Debug for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Bodies can be large and binary: show a bounded, lossy prefix like Flume's logger sink.
        let shown = &self.body[..self.body.len().min(64)];
        f.debug_struct("Event")
            .field("headers", self.headers())
            .field("body", &String::from_utf8_lossy(shown))
            .field("body_len", &self.body.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clone_shares_body_and_headers() {
        let mut h = Headers::new();
        h.insert("host".into(), "web1".into());
        let a = Event::with_headers(h, vec![7u8; 1024]);
        let b = a.clone();
        assert_eq!(a.body().as_ptr(), b.body().as_ptr());
        assert_eq!(b.header("host"), Some("web1"));
    }

    #[test]
    fn set_header_does_not_touch_clones() {
        let a = Event::new("x");
        let mut b = a.clone();
        b.set_header("k", "v");
        assert_eq!(a.header("k"), None);
        assert_eq!(b.header("k"), Some("v"));
    }
}
