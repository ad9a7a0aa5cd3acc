//! Interceptors: Flume's interceptors, which change (or drop) each event a source puts, before
//! it reaches a channel. Each lives in its own file, holding its keys, defaults and behaviour;
//! the agent's registry lists them (`crate::agent::registry::INTERCEPTORS`).
//!
//! A source's interceptors form an [`InterceptorChain`], applied in the order of the source's
//! `interceptors` list, once per batch, by the source's channel processor
//! (`crate::route::ChannelProcessor`) before its channel selector sees the events, so sources
//! need not know about interceptors.
//!
//! Invariants and consequences:
//! - An interceptor may change an event's headers or body, or (returning `false`) drop it
//!   (`regex_filter` does). Events are never reordered.
//! - Every channel gets the same intercepted copy of an event. A put retried after a full
//!   channel is intercepted again, as in Flume, where the source re-submits the batch to the
//!   channel processor.
//! - `preserveExisting` that keeps a header costs a map lookup and no allocation.
//! - Building an interceptor may do I/O once (the `host` lookup); intercepting does none.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::config::{AsAny, Registered};
use crate::event::Event;

pub mod host;
pub mod regex_extractor;
pub mod regex_filter;
pub mod remove_header;
pub mod search_replace;
pub mod static_header;
pub mod timestamp;
pub mod uuid;

/// What an interceptor does to each event.
pub trait Interceptor: fmt::Debug + Send + Sync {
    /// Changes `event` in place; returns whether it goes on (`false` drops it).
    fn intercept(&self, event: &mut Event) -> bool;
}

/// An interceptor's parsed configuration (its own keys, checked).
pub trait InterceptorSpec: fmt::Debug + AsAny + Send + Sync {
    /// Builds the interceptor, once per source at start-up.
    fn build(&self) -> Box<dyn Interceptor>;
}

/// An interceptor type as the agent's registry lists it.
pub type InterceptorType = Registered<dyn InterceptorSpec>;

/// A source's interceptors, in the order of its `interceptors` list.
#[derive(Debug, Default)]
pub struct InterceptorChain {
    interceptors: Vec<Box<dyn Interceptor>>,
}

impl InterceptorChain {
    /// A chain of built interceptors, applied in this order.
    pub fn new(interceptors: Vec<Box<dyn Interceptor>>) -> InterceptorChain {
        InterceptorChain { interceptors }
    }

    /// True when the chain leaves events as they are.
    pub fn is_empty(&self) -> bool {
        self.interceptors.is_empty()
    }

    /// Applies every interceptor to `event`, in order (a later one sees the headers an earlier
    /// one set, as in Flume); `false` as soon as one drops it.
    pub fn intercept(&self, event: &mut Event) -> bool {
        self.interceptors.iter().all(|i| i.intercept(event))
    }
}

/// Sets `header` to `value()` unless `preserve_existing` and the event has it already
/// (Flume's `preserveExisting`); `value` is not computed for an event that keeps its header.
pub(crate) fn set_header(
    event: &mut Event,
    header: &str,
    preserve_existing: bool,
    value: impl FnOnce() -> String,
) {
    if !(preserve_existing && event.header(header).is_some()) {
        event.set_header(header, value());
    }
}

/// An event body as text, as Flume's interceptors read it (`new String(body, UTF_8)`): each
/// invalid sequence becomes U+FFFD. Borrowed when the body is valid UTF-8, the usual case;
/// checked with `str::from_utf8` first because it is several times faster on valid text than
/// the lossy decoder's own scan.
pub(crate) fn body_text(body: &[u8]) -> std::borrow::Cow<'_, str> {
    match std::str::from_utf8(body) {
        Ok(s) => std::borrow::Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(body),
    }
}

/// Milliseconds since the Unix epoch (negative before it, as Java's `currentTimeMillis`).
pub(crate) fn now_millis() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_millis()).map_or(i64::MIN, |m| -m),
    }
}

/// What the interceptors' tests share.
#[cfg(test)]
pub(crate) mod testing {
    use crate::config::{ConfigError, Keys, ParseFn};
    use crate::event::{Event, Headers};

    use super::InterceptorSpec;

    /// An event with body `body` and the one header `key` = `value`.
    pub(crate) fn event_with(key: &str, value: &str) -> Event {
        let mut h = Headers::new();
        h.insert(key.into(), value.into());
        Event::with_headers(h, "body")
    }

    /// `pairs` parsed by `parse` as interceptor `i1` of source `r1`, as its settings type
    /// `T`; unknown keys fail the test.
    pub(crate) fn parse_as<T: Clone + 'static>(
        parse: ParseFn<dyn InterceptorSpec>,
        pairs: &[(&str, &str)],
    ) -> Result<T, ConfigError> {
        let mut keys = Keys::from_pairs("sources", "r1.interceptors.i1", pairs);
        let spec = parse(&mut keys)?;
        let mut warnings = Vec::new();
        keys.finish(&mut warnings);
        assert!(warnings.is_empty(), "{warnings:?}");
        Ok((*spec)
            .as_any()
            .downcast_ref::<T>()
            .unwrap_or_else(|| panic!("not a {}", std::any::type_name::<T>()))
            .clone())
    }
}

#[cfg(test)]
mod tests {
    use super::testing::event_with;
    use super::*;
    use crate::interceptor::static_header::StaticConfig;
    use crate::interceptor::timestamp::TimestampConfig;

    fn static_header(key: &str, value: &str, preserve_existing: bool) -> Box<dyn Interceptor> {
        StaticConfig {
            key: key.into(),
            value: value.into(),
            preserve_existing,
        }
        .build()
    }

    #[test]
    fn chain_applies_in_order_and_leaves_the_callers_copy_alone() {
        let chain = InterceptorChain::new(vec![
            static_header("k", "first", false),
            static_header("k", "second", true),
            TimestampConfig::default().build(),
        ]);
        let shared = Event::new("body");
        let mut a = shared.clone();
        let mut b = event_with("k", "mine");
        assert!(chain.intercept(&mut a));
        assert!(chain.intercept(&mut b));
        // The caller's copy is untouched (copy-on-write headers).
        assert!(shared.headers().is_empty());
        for e in [&a, &b] {
            assert_eq!(e.header("k"), Some("first"));
            assert!(e.header("timestamp").is_some());
        }
        assert_eq!(&a.body()[..], b"body");
    }

    /// Drops every event: stands in for a filtering interceptor.
    #[derive(Debug)]
    struct DropAll;

    impl Interceptor for DropAll {
        fn intercept(&self, _event: &mut Event) -> bool {
            false
        }
    }

    #[test]
    fn a_dropped_event_goes_no_further_down_the_chain() {
        let chain = InterceptorChain::new(vec![
            Box::new(DropAll),
            static_header("never", "set", false),
        ]);
        let mut e = Event::new("x");
        assert!(!chain.intercept(&mut e));
        assert_eq!(e.header("never"), None);
    }
}
