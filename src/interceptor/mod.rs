//! Interceptors: Flume's interceptors, which change (or drop) each event a source puts, before
//! it reaches a channel. Each lives in its own file, holding its keys, defaults and behaviour;
//! the agent's registry lists them (`crate::agent::registry::INTERCEPTORS`).
//!
//! A source's interceptors form an [`InterceptorChain`], applied in the order of the source's
//! `interceptors` list. The chain is applied by [`InterceptingChannel`], a [`Channel`] wrapper
//! the agent hands to a source that has interceptors: its put transactions run the chain on
//! each event and then delegate; everything else (the name, takes, stats, close) is the inner
//! channel's, so metrics and logs are unchanged and sources need not know about interceptors.
//!
//! Invariants and consequences:
//! - An interceptor may change an event's headers or body, or (returning `false`) drop it
//!   (`regex_filter` does). Events are never reordered.
//! - With several channels, each channel's copy of an event is intercepted separately, so the
//!   `timestamp` header may differ by a millisecond between channels. A put retried after a
//!   full channel is intercepted again, as in Flume, where the source re-submits the batch to
//!   the channel processor.
//! - `preserveExisting` that keeps a header costs a map lookup and no allocation.
//! - Building an interceptor may do I/O once (the `host` lookup); intercepting does none.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::channel::{Channel, ChannelError, ChannelStats, PutTransaction, TakeTransaction};
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

/// A channel whose puts run an [`InterceptorChain`] on each event first. Everything else is
/// the inner channel's, including [`Channel::name`].
pub struct InterceptingChannel {
    inner: Arc<dyn Channel>,
    chain: Arc<InterceptorChain>,
}

impl InterceptingChannel {
    /// Wraps `inner` so that events put through the wrapper pass through `chain`.
    pub fn new(inner: Arc<dyn Channel>, chain: Arc<InterceptorChain>) -> Self {
        InterceptingChannel { inner, chain }
    }

    /// `channels` wrapped with `chain`, or unchanged when the chain is empty (no per-event
    /// indirection for sources without interceptors).
    pub fn wrap_all(
        channels: Vec<Arc<dyn Channel>>,
        chain: &Arc<InterceptorChain>,
    ) -> Vec<Arc<dyn Channel>> {
        if chain.is_empty() {
            return channels;
        }
        channels
            .into_iter()
            .map(|c| Arc::new(InterceptingChannel::new(c, Arc::clone(chain))) as Arc<dyn Channel>)
            .collect()
    }
}

impl Channel for InterceptingChannel {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn put_transaction(&self) -> Box<dyn PutTransaction> {
        Box::new(InterceptingPut {
            inner: self.inner.put_transaction(),
            chain: Arc::clone(&self.chain),
        })
    }

    fn take_transaction(&self) -> Box<dyn TakeTransaction> {
        self.inner.take_transaction()
    }

    fn wait_available(&self, timeout: Duration) -> bool {
        self.inner.wait_available(timeout)
    }

    fn stats(&self) -> ChannelStats {
        self.inner.stats()
    }

    fn close(&self) -> Result<(), ChannelError> {
        self.inner.close()
    }
}

/// A put transaction of an [`InterceptingChannel`].
struct InterceptingPut {
    inner: Box<dyn PutTransaction>,
    chain: Arc<InterceptorChain>,
}

impl PutTransaction for InterceptingPut {
    fn put(&mut self, mut event: Event) -> Result<(), ChannelError> {
        if self.chain.intercept(&mut event) {
            self.inner.put(event)
        } else {
            Ok(())
        }
    }

    fn len(&self) -> usize {
        self.inner.len()
    }

    fn commit(self: Box<Self>) -> Result<(), ChannelError> {
        self.inner.commit()
    }

    fn rollback(self: Box<Self>) {
        self.inner.rollback()
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
    use crate::channel::memory::{MemoryChannel, MemoryChannelConfig};
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
    fn chain_applies_in_order_and_channel_wrapper_delegates() {
        let chain = Arc::new(InterceptorChain::new(vec![
            static_header("k", "first", false),
            static_header("k", "second", true),
            TimestampConfig::default().build(),
        ]));
        let inner: Arc<dyn Channel> =
            Arc::new(MemoryChannel::new("c1", MemoryChannelConfig::default()).expect("channel"));
        let wrapped = InterceptingChannel::wrap_all(vec![Arc::clone(&inner)], &chain);
        assert_eq!(wrapped[0].name(), "c1");
        let shared = Event::new("body");
        let mut tx = wrapped[0].put_transaction();
        tx.put(shared.clone()).expect("put");
        tx.put(event_with("k", "mine")).expect("put");
        assert_eq!(tx.len(), 2);
        tx.commit().expect("commit");
        // The caller's copy is untouched (copy-on-write headers).
        assert!(shared.headers().is_empty());
        assert_eq!(wrapped[0].stats().size, 2);

        let mut tx = inner.take_transaction();
        let mut got = Vec::new();
        tx.take_batch(10, &mut got).expect("take");
        tx.commit().expect("commit");
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].header("k"), Some("first"));
        assert_eq!(got[1].header("k"), Some("first"));
        assert!(got.iter().all(|e| e.header("timestamp").is_some()));
        assert_eq!(&got[0].body()[..], b"body");
    }

    #[test]
    fn empty_chain_leaves_channels_unwrapped() {
        let inner: Arc<dyn Channel> =
            Arc::new(MemoryChannel::new("c1", MemoryChannelConfig::default()).expect("channel"));
        let out = InterceptingChannel::wrap_all(
            vec![Arc::clone(&inner)],
            &Arc::new(InterceptorChain::default()),
        );
        assert!(Arc::ptr_eq(&out[0], &inner));
    }

    #[test]
    fn rollback_discards_intercepted_events() {
        let chain = Arc::new(InterceptorChain::new(vec![static_header("k", "v", true)]));
        let inner: Arc<dyn Channel> =
            Arc::new(MemoryChannel::new("c1", MemoryChannelConfig::default()).expect("channel"));
        let wrapped = InterceptingChannel::new(Arc::clone(&inner), chain);
        let mut tx = wrapped.put_transaction();
        tx.put(Event::new("x")).expect("put");
        tx.rollback();
        assert_eq!(inner.stats().size, 0);
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
    fn a_dropped_event_is_not_put() {
        let chain = Arc::new(InterceptorChain::new(vec![
            Box::new(DropAll),
            static_header("never", "set", false),
        ]));
        let inner: Arc<dyn Channel> =
            Arc::new(MemoryChannel::new("c1", MemoryChannelConfig::default()).expect("channel"));
        let wrapped = InterceptingChannel::new(Arc::clone(&inner), chain);
        let mut tx = wrapped.put_transaction();
        tx.put(Event::new("x")).expect("put");
        assert_eq!(tx.len(), 0);
        tx.commit().expect("commit");
        assert_eq!(inner.stats().size, 0);
    }
}
