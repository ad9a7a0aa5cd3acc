//! Interceptors: Flume's `timestamp`, `host` and `static`, which add a header to every event a
//! source puts, before the event reaches a channel.
//!
//! A source's interceptors form an [`InterceptorChain`], applied in the order of the source's
//! `interceptors` list. The chain is applied by [`InterceptingChannel`], a [`Channel`] wrapper
//! the agent hands to a source that has interceptors: its put transactions run the chain on
//! each event and then delegate; everything else (the name, takes, stats, close) is the inner
//! channel's, so metrics and logs are unchanged and sources need not know about interceptors.
//!
//! Invariants and consequences:
//! - The chain only ever sets headers; it never drops or reorders events (flumen has no
//!   filtering interceptor), so a batch's length and order are what the source put.
//! - With several channels, each channel's copy of an event is intercepted separately, so the
//!   `timestamp` header may differ by a millisecond between channels. A put retried after a
//!   full channel is intercepted again, as in Flume, where the source re-submits the batch to
//!   the channel processor.
//! - `preserveExisting` that keeps a header costs a map lookup and no allocation.
//! - The `host` header's value is computed once, when the chain is built.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::channel::{Channel, ChannelError, ChannelStats, PutTransaction, TakeTransaction};
use crate::config::{InterceptorConfig, InterceptorKind};
use crate::event::Event;

/// One built interceptor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Interceptor {
    /// Sets `header` to the current time in milliseconds since the epoch.
    Timestamp {
        header: String,
        preserve_existing: bool,
    },
    /// Sets `header` to the agent host's address or name. `value` is `None` when the host
    /// could not be found at build time; then, as in Flume, nothing is set.
    Host {
        header: String,
        value: Option<String>,
        preserve_existing: bool,
    },
    /// Sets `key` to `value`.
    Static {
        key: String,
        value: String,
        preserve_existing: bool,
    },
}

impl Interceptor {
    /// Builds the interceptor `cfg` describes; `host` looks up the agent host once (a failure
    /// is logged and leaves the `host` header unset, as Flume does).
    pub fn build(cfg: &InterceptorConfig) -> Interceptor {
        match &cfg.kind {
            InterceptorKind::Timestamp {
                header_name,
                preserve_existing,
            } => Interceptor::Timestamp {
                header: header_name.clone(),
                preserve_existing: *preserve_existing,
            },
            InterceptorKind::Host {
                host_header,
                use_ip,
                preserve_existing,
            } => {
                // Flume's: the local host's address, or its canonical (reverse-looked-up)
                // name. The lookup never fails: an unresolvable host is 127.0.0.1, as in the
                // hdfs sink's %[IP].
                let host = crate::host::HostNames::detect();
                let value = Some(if *use_ip { host.ip } else { host.fqdn });
                Interceptor::Host {
                    header: host_header.clone(),
                    value,
                    preserve_existing: *preserve_existing,
                }
            }
            InterceptorKind::Static {
                key,
                value,
                preserve_existing,
            } => Interceptor::Static {
                key: key.clone(),
                value: value.clone(),
                preserve_existing: *preserve_existing,
            },
        }
    }

    /// Sets this interceptor's header on `event`.
    pub fn intercept(&self, event: &mut Event) {
        match self {
            Interceptor::Timestamp {
                header,
                preserve_existing,
            } => {
                if !(*preserve_existing && event.header(header).is_some()) {
                    event.set_header(header.as_str(), now_millis().to_string());
                }
            }
            Interceptor::Host {
                header,
                value,
                preserve_existing,
            } => {
                if let Some(value) = value {
                    if !(*preserve_existing && event.header(header).is_some()) {
                        event.set_header(header.as_str(), value.as_str());
                    }
                }
            }
            Interceptor::Static {
                key,
                value,
                preserve_existing,
            } => {
                if !(*preserve_existing && event.header(key).is_some()) {
                    event.set_header(key.as_str(), value.as_str());
                }
            }
        }
    }
}

/// A source's interceptors, in the order of its `interceptors` list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InterceptorChain {
    interceptors: Vec<Interceptor>,
}

impl InterceptorChain {
    /// Builds every interceptor of `cfgs`, in order.
    pub fn build(cfgs: &[InterceptorConfig]) -> InterceptorChain {
        InterceptorChain {
            interceptors: cfgs.iter().map(Interceptor::build).collect(),
        }
    }

    /// A chain of already built interceptors.
    pub fn new(interceptors: Vec<Interceptor>) -> InterceptorChain {
        InterceptorChain { interceptors }
    }

    /// True when the chain leaves events as they are.
    pub fn is_empty(&self) -> bool {
        self.interceptors.is_empty()
    }

    /// Applies every interceptor to `event`, in order (a later one sees the headers an earlier
    /// one set, as in Flume).
    pub fn intercept(&self, event: &mut Event) {
        for i in &self.interceptors {
            i.intercept(event);
        }
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
        self.chain.intercept(&mut event);
        self.inner.put(event)
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

/// Milliseconds since the Unix epoch (negative before it, as Java's `currentTimeMillis`).
fn now_millis() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_millis()).map_or(i64::MIN, |m| -m),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::memory::{MemoryChannel, MemoryChannelConfig};
    use crate::event::Headers;

    fn event_with(key: &str, value: &str) -> Event {
        let mut h = Headers::new();
        h.insert(key.into(), value.into());
        Event::with_headers(h, "body")
    }

    fn cfg(kind: InterceptorKind) -> InterceptorConfig {
        InterceptorConfig {
            name: "i1".into(),
            kind,
        }
    }

    #[test]
    fn timestamp_sets_current_millis() {
        let i = Interceptor::build(&cfg(InterceptorKind::Timestamp {
            header_name: "timestamp".into(),
            preserve_existing: false,
        }));
        let before = now_millis();
        let mut e = Event::new("x");
        i.intercept(&mut e);
        let after = now_millis();
        let ts: i64 = e.header("timestamp").expect("set").parse().expect("number");
        assert!(before <= ts && ts <= after, "{before} <= {ts} <= {after}");
        assert_eq!(&e.body()[..], b"x");
    }

    #[test]
    fn timestamp_preserve_existing_both_ways() {
        let keep = Interceptor::Timestamp {
            header: "ts".into(),
            preserve_existing: true,
        };
        let replace = Interceptor::Timestamp {
            header: "ts".into(),
            preserve_existing: false,
        };
        let mut e = event_with("ts", "42");
        keep.intercept(&mut e);
        assert_eq!(e.header("ts"), Some("42"));
        replace.intercept(&mut e);
        assert_ne!(e.header("ts"), Some("42"));
        // Preserving applies only to a header that is there.
        let mut e = Event::new("x");
        keep.intercept(&mut e);
        assert!(e.header("ts").is_some());
    }

    #[test]
    fn static_preserve_existing_both_ways() {
        let keep = Interceptor::Static {
            key: "datacenter".into(),
            value: "NEW_YORK".into(),
            preserve_existing: true,
        };
        let replace = Interceptor::Static {
            key: "datacenter".into(),
            value: "NEW_YORK".into(),
            preserve_existing: false,
        };
        let mut e = event_with("datacenter", "LONDON");
        keep.intercept(&mut e);
        assert_eq!(e.header("datacenter"), Some("LONDON"));
        replace.intercept(&mut e);
        assert_eq!(e.header("datacenter"), Some("NEW_YORK"));
        let mut e = Event::new("x");
        keep.intercept(&mut e);
        assert_eq!(e.header("datacenter"), Some("NEW_YORK"));
    }

    #[test]
    fn host_preserve_existing_both_ways_and_unknown_host() {
        let mk = |preserve_existing, value: Option<&str>| Interceptor::Host {
            header: "host".into(),
            value: value.map(str::to_string),
            preserve_existing,
        };
        let mut e = event_with("host", "web1");
        mk(true, Some("10.0.0.1")).intercept(&mut e);
        assert_eq!(e.header("host"), Some("web1"));
        mk(false, Some("10.0.0.1")).intercept(&mut e);
        assert_eq!(e.header("host"), Some("10.0.0.1"));
        // A host that could not be found sets nothing and leaves what is there.
        mk(false, None).intercept(&mut e);
        assert_eq!(e.header("host"), Some("10.0.0.1"));
        let mut e = Event::new("x");
        mk(false, None).intercept(&mut e);
        assert!(e.headers().is_empty());
    }

    #[test]
    fn host_use_ip_false_gives_the_canonical_host_name() {
        let i = Interceptor::build(&cfg(InterceptorKind::Host {
            host_header: "hostname".into(),
            use_ip: false,
            preserve_existing: false,
        }));
        let mut e = Event::new("x");
        i.intercept(&mut e);
        let want = crate::host::HostNames::detect().fqdn;
        assert_eq!(e.header("hostname"), Some(want.as_str()));
    }

    #[test]
    fn host_use_ip_true_gives_an_address() {
        let i = Interceptor::build(&cfg(InterceptorKind::Host {
            host_header: "host".into(),
            use_ip: true,
            preserve_existing: false,
        }));
        let Interceptor::Host { value, .. } = &i else {
            panic!("not a host interceptor: {i:?}");
        };
        let mut e = Event::new("x");
        i.intercept(&mut e);
        assert_eq!(e.header("host"), value.as_deref());
        let v = value.as_deref().unwrap_or_default();
        assert!(v.parse::<std::net::IpAddr>().is_ok(), "not an address: {v}");
    }

    #[test]
    fn chain_applies_in_order_and_channel_wrapper_delegates() {
        let chain = Arc::new(InterceptorChain::new(vec![
            Interceptor::Static {
                key: "k".into(),
                value: "first".into(),
                preserve_existing: false,
            },
            Interceptor::Static {
                key: "k".into(),
                value: "second".into(),
                preserve_existing: true,
            },
            Interceptor::Timestamp {
                header: "timestamp".into(),
                preserve_existing: false,
            },
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
        let chain = Arc::new(InterceptorChain::new(vec![Interceptor::Static {
            key: "k".into(),
            value: "v".into(),
            preserve_existing: true,
        }]));
        let inner: Arc<dyn Channel> =
            Arc::new(MemoryChannel::new("c1", MemoryChannelConfig::default()).expect("channel"));
        let wrapped = InterceptingChannel::new(Arc::clone(&inner), chain);
        let mut tx = wrapped.put_transaction();
        tx.put(Event::new("x")).expect("put");
        tx.rollback();
        assert_eq!(inner.stats().size, 0);
    }
}
