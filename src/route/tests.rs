use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::multiplexing::MultiplexingConfig;
use super::replicating::ReplicatingConfig;
use super::*;
use crate::channel::memory::{MemoryChannel, MemoryChannelConfig};
use crate::channel::{ChannelStats, TakeTransaction};
use crate::config::Keys;
use crate::interceptor::Interceptor;

fn memory(name: &str, capacity: u64, transaction_capacity: usize) -> Arc<dyn Channel> {
    let cfg = MemoryChannelConfig {
        capacity,
        transaction_capacity: transaction_capacity.min(capacity as usize),
        keep_alive: Duration::ZERO,
        ..MemoryChannelConfig::default()
    };
    Arc::new(MemoryChannel::new(name, cfg).expect("channel"))
}

fn events(bodies: &[&str]) -> Vec<Event> {
    bodies.iter().map(|b| Event::new(b.to_string())).collect()
}

fn tagged(pairs: &[(&str, Option<&str>)]) -> Vec<Event> {
    pairs
        .iter()
        .map(|(body, state)| {
            let mut e = Event::new(body.to_string());
            if let Some(s) = state {
                e.set_header("state", *s);
            }
            e
        })
        .collect()
}

/// Takes and commits everything in `ch`; the bodies in order.
fn drain(ch: &dyn Channel) -> Vec<String> {
    let mut tx = ch.take_transaction();
    let mut out = Vec::new();
    tx.take_batch(10_000, &mut out).expect("take");
    tx.commit().expect("commit take");
    out.iter()
        .map(|e| String::from_utf8_lossy(e.body()).into_owned())
        .collect()
}

fn never_retry() -> impl FnMut(&Arc<dyn Channel>, &ChannelError) -> bool {
    |_, _| false
}

fn processor(
    channels: &[Arc<dyn Channel>],
    spec: &dyn SelectorSpec,
    chain: InterceptorChain,
) -> ChannelProcessor {
    let names: Vec<String> = channels.iter().map(|c| c.name().to_string()).collect();
    ChannelProcessor::new("r1", channels.to_vec(), chain, spec.build(&names))
}

fn multiplexing(pairs: &[(&str, &str)]) -> MultiplexingConfig {
    let mut keys = Keys::from_pairs("sources", "r1.selector", pairs);
    let spec = (multiplexing::TYPE.parse)(&mut keys).expect("parse");
    (*spec)
        .as_any()
        .downcast_ref::<MultiplexingConfig>()
        .expect("multiplexing")
        .clone()
}

#[test]
fn replicating_puts_every_event_into_every_channel() {
    let chans = [memory("c1", 100, 10), memory("c2", 100, 10)];
    let p = ChannelProcessor::replicating("r1", chans.to_vec());
    p.put(&events(&["a", "b"]), &mut never_retry())
        .expect("put");
    assert_eq!(drain(chans[0].as_ref()), ["a", "b"]);
    assert_eq!(drain(chans[1].as_ref()), ["a", "b"]);
}

#[test]
fn a_full_optional_channel_does_not_fail_the_put() {
    let chans = [memory("c1", 100, 10), memory("c2", 1, 1)];
    let spec = ReplicatingConfig {
        optional: vec!["c2".into()],
        optional_line: 1,
    };
    let p = processor(&chans, &spec, InterceptorChain::default());
    p.put(&events(&["a", "b"]), &mut never_retry())
        .expect("the optional channel's failure is not the put's");
    assert_eq!(drain(chans[0].as_ref()), ["a", "b"]);
    assert!(drain(chans[1].as_ref()).is_empty());
}

#[test]
fn a_full_required_channel_fails_the_put_and_leaves_no_copy_anywhere() {
    // c2 has room for one more event: the 2-event batch fits c1 but not c2. Flume would
    // commit c1 first; here nothing is committed, so the source's resend cannot duplicate it
    // in c1.
    let chans = [memory("c1", 100, 10), memory("c2", 2, 2)];
    let mut tx = chans[1].put_transaction();
    tx.put(Event::new("old")).expect("put");
    tx.commit().expect("commit");
    let p = ChannelProcessor::replicating("r1", chans.to_vec());
    let e = p
        .put(&events(&["a", "b"]), &mut never_retry())
        .expect_err("c2 is full");
    assert!(matches!(e.error, ChannelError::ChannelFull { .. }), "{e}");
    assert!(e.committed.is_empty());
    assert_eq!(
        chans[0].stats().size,
        0,
        "c1 must not hold the failed batch"
    );
    assert_eq!(drain(chans[1].as_ref()), ["old"]);
}

#[test]
fn a_retry_after_the_second_channel_refused_leaves_exactly_one_copy() {
    let chans = [memory("c1", 100, 10), memory("c2", 3, 10)];
    let p = ChannelProcessor::replicating("r1", chans.to_vec());
    // Fill c2 so that the next batch is refused there.
    let mut tx = chans[1].put_transaction();
    tx.put(Event::new("old")).expect("put");
    tx.commit().expect("commit");
    let refusals = AtomicUsize::new(0);
    let c2 = Arc::clone(&chans[1]);
    p.put(&events(&["a", "b", "c"]), &mut |ch, e| {
        assert_eq!(ch.name(), "c2");
        assert!(e.is_retryable());
        // Room is made on the first refusal; the retry then fits.
        if refusals.fetch_add(1, Ordering::SeqCst) == 0 {
            assert_eq!(drain(c2.as_ref()), ["old"]);
        }
        true
    })
    .expect("the retry fits");
    assert_eq!(refusals.load(Ordering::SeqCst), 1);
    assert_eq!(drain(chans[0].as_ref()), ["a", "b", "c"], "one copy in c1");
    assert_eq!(drain(chans[1].as_ref()), ["a", "b", "c"]);
}

#[test]
fn a_batch_over_the_second_channels_transaction_capacity_commits_nowhere() {
    let chans = [memory("c1", 100, 10), memory("c2", 100, 2)];
    let p = ChannelProcessor::replicating("r1", chans.to_vec());
    let e = p
        .put(&events(&["a", "b", "c"]), &mut |_, _| {
            panic!("TransactionFull is not retried")
        })
        .expect_err("over c2's transactionCapacity");
    assert!(
        matches!(e.error, ChannelError::TransactionFull { .. }),
        "{e}"
    );
    assert_eq!(chans[0].stats().size, 0);
}

/// A memory channel whose put commits fail with `fail(n)` for the commits `n` it returns
/// `Some` for: a channel that breaks between its reservation and its commit.
struct FailingCommits {
    inner: Arc<dyn Channel>,
    commits: Arc<AtomicUsize>,
    fail: fn(usize) -> Option<ChannelError>,
}

struct FailingPut {
    inner: Box<dyn PutTransaction>,
    commits: Arc<AtomicUsize>,
    fail: fn(usize) -> Option<ChannelError>,
}

impl PutTransaction for FailingPut {
    fn put(&mut self, event: Event) -> Result<(), ChannelError> {
        self.inner.put(event)
    }
    fn len(&self) -> usize {
        self.inner.len()
    }
    fn reserve(&mut self) -> Result<(), ChannelError> {
        self.inner.reserve()
    }
    fn commit(self: Box<Self>) -> Result<(), ChannelError> {
        let n = self.commits.fetch_add(1, Ordering::SeqCst);
        match (self.fail)(n) {
            Some(e) => Err(e),
            None => self.inner.commit(),
        }
    }
    fn rollback(self: Box<Self>) {
        self.inner.rollback()
    }
}

impl Channel for FailingCommits {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn transaction_capacity(&self) -> usize {
        self.inner.transaction_capacity()
    }
    fn put_transaction(&self) -> Box<dyn PutTransaction> {
        Box::new(FailingPut {
            inner: self.inner.put_transaction(),
            commits: Arc::clone(&self.commits),
            fail: self.fail,
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

fn failing(name: &str, fail: fn(usize) -> Option<ChannelError>) -> Arc<dyn Channel> {
    Arc::new(FailingCommits {
        inner: memory(name, 100, 10),
        commits: Arc::new(AtomicUsize::new(0)),
        fail,
    })
}

#[test]
fn a_commit_refused_for_disk_space_is_retried_on_that_channel_alone() {
    let c1 = memory("c1", 100, 10);
    let c2 = failing("c2", |n| {
        (n == 0).then(|| ChannelError::DiskFull {
            channel: "c2".into(),
            dir: "/data".into(),
            free: 0,
            required: 1,
        })
    });
    let p = ChannelProcessor::replicating("r1", vec![Arc::clone(&c1), Arc::clone(&c2)]);
    let mut retried = Vec::new();
    p.put(&events(&["a", "b"]), &mut |ch, _| {
        retried.push(ch.name().to_string());
        true
    })
    .expect("the second commit succeeds");
    assert_eq!(retried, ["c2"]);
    assert_eq!(
        drain(c1.as_ref()),
        ["a", "b"],
        "c1 committed once, not again"
    );
    assert_eq!(drain(c2.as_ref()), ["a", "b"]);
}

#[test]
fn a_commit_that_fails_after_others_committed_names_them() {
    let c1 = memory("c1", 100, 10);
    let c2 = failing("c2", |_| {
        Some(ChannelError::Poisoned {
            channel: "c2".into(),
            file: "/data/log-1".into(),
            operation: "fdatasync",
            cause: "EIO".into(),
        })
    });
    let p = ChannelProcessor::replicating("r1", vec![Arc::clone(&c1), Arc::clone(&c2)]);
    let e = p
        .put(&events(&["a"]), &mut never_retry())
        .expect_err("c2 is poisoned");
    assert_eq!(e.committed, ["c1"]);
    assert!(e.to_string().contains("already committed to `c1`"), "{e}");
}

#[test]
fn multiplexing_routes_by_header_with_default_and_optional() {
    let chans = [
        memory("c1", 100, 10),
        memory("c2", 100, 10),
        memory("c3", 100, 10),
    ];
    let spec = multiplexing(&[
        ("header", "state"),
        ("mapping.CA", "c1"),
        ("mapping.AZ", "c2 c1"),
        ("optional.CA", "c3 c1"),
        ("default", "c3"),
    ]);
    let p = processor(&chans, &spec, InterceptorChain::default());
    let batch = tagged(&[
        ("ca", Some("CA")),
        ("az", Some("AZ")),
        ("none", None),
        ("blank", Some(" ")),
        ("ny", Some("NY")),
        ("lower", Some("ca")),
    ]);
    p.put(&batch, &mut never_retry()).expect("put");
    assert_eq!(drain(chans[0].as_ref()), ["ca", "az"]);
    assert_eq!(drain(chans[1].as_ref()), ["az"]);
    // c3: the default for the rest (values match exactly), then, in its own transaction
    // after every required channel committed, CA's optional copy (c1, required for CA, is
    // dropped from CA's optional list).
    assert_eq!(
        drain(chans[2].as_ref()),
        ["none", "blank", "ny", "lower", "ca"]
    );
}

#[test]
fn multiplexing_without_default_drops_unmatched_events_and_warns() {
    let mut keys = Keys::from_pairs(
        "sources",
        "r1.selector",
        &[("header", "state"), ("mapping.CA", "c1")],
    );
    let spec = (multiplexing::TYPE.parse)(&mut keys).expect("parse");
    let mut warnings = Vec::new();
    keys.finish(&mut warnings);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].to_string().contains("dropped"),
        "{}",
        warnings[0]
    );
    let chans = [memory("c1", 100, 10)];
    let p = processor(&chans, spec.as_ref(), InterceptorChain::default());
    p.put(
        &tagged(&[("x", Some("NY")), ("ca", Some("CA"))]),
        &mut never_retry(),
    )
    .expect("put");
    assert_eq!(drain(chans[0].as_ref()), ["ca"]);
}

/// Counts the events it sees and tags them with the count.
#[derive(Debug, Default)]
struct Counting(AtomicUsize);

impl Interceptor for Counting {
    fn intercept(&self, event: &mut Event) -> bool {
        let n = self.0.fetch_add(1, Ordering::SeqCst);
        event.set_header("seen", n.to_string());
        true
    }
}

impl Interceptor for Arc<Counting> {
    fn intercept(&self, event: &mut Event) -> bool {
        self.as_ref().intercept(event)
    }
}

#[test]
fn interceptors_run_once_per_event_and_every_channel_gets_the_same_copy() {
    let counting = Arc::new(Counting::default());
    let chain = InterceptorChain::new(vec![Box::new(Arc::clone(&counting))]);
    let chans = [memory("c1", 100, 10), memory("c2", 100, 10)];
    let spec = ReplicatingConfig::default();
    let p = processor(&chans, &spec, chain);
    p.put(&events(&["a", "b"]), &mut never_retry())
        .expect("put");
    assert_eq!(counting.0.load(Ordering::SeqCst), 2, "once per event");
    let headers = |ch: &dyn Channel| {
        let mut tx = ch.take_transaction();
        let mut out = Vec::new();
        tx.take_batch(10, &mut out).expect("take");
        tx.commit().expect("commit");
        out.iter()
            .map(|e| e.header("seen").unwrap_or_default().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(headers(chans[0].as_ref()), ["0", "1"]);
    assert_eq!(headers(chans[1].as_ref()), ["0", "1"]);
}

#[test]
fn the_header_an_interceptor_sets_is_what_multiplexing_routes_on() {
    use crate::interceptor::static_header::StaticConfig;
    use crate::interceptor::InterceptorSpec;
    let chain = InterceptorChain::new(vec![StaticConfig {
        key: "state".into(),
        value: "AZ".into(),
        preserve_existing: true,
    }
    .build()]);
    let chans = [memory("c1", 100, 10), memory("c2", 100, 10)];
    let spec = multiplexing(&[("header", "state"), ("mapping.AZ", "c2"), ("default", "c1")]);
    let p = processor(&chans, &spec, chain);
    p.put(
        &tagged(&[("tagged", None), ("ca", Some("CA"))]),
        &mut never_retry(),
    )
    .expect("put");
    assert_eq!(drain(chans[0].as_ref()), ["ca"]);
    assert_eq!(drain(chans[1].as_ref()), ["tagged"]);
}

#[test]
fn a_reservation_holds_room_until_commit_or_drop() {
    let ch = memory("c1", 2, 2);
    let mut a = ch.put_transaction();
    a.put(Event::new("a")).expect("put");
    a.put(Event::new("b")).expect("put");
    a.reserve().expect("room for two");
    let mut b = ch.put_transaction();
    b.put(Event::new("c")).expect("put");
    assert!(matches!(b.reserve(), Err(ChannelError::ChannelFull { .. })));
    drop(a);
    b.reserve().expect("the dropped reservation was given back");
    b.commit().expect("commit");
    assert_eq!(drain(ch.as_ref()), ["c"]);
}

fn file_channel(dir: &std::path::Path, name: &str, capacity: u64) -> Arc<dyn Channel> {
    use crate::channel::file::{FileChannel, FileChannelConfig};
    let mut cfg = FileChannelConfig::new(&dir.join(name));
    cfg.capacity = capacity;
    cfg.transaction_capacity = capacity as usize;
    cfg.keep_alive = Duration::ZERO;
    cfg.minimum_required_space = 0;
    Arc::new(FileChannel::open(name, cfg).expect("open file channel"))
}

#[test]
fn file_channels_reserve_room_and_a_refused_second_channel_leaves_the_first_empty() {
    let dir = tempfile::tempdir().expect("tempdir");
    let c1 = file_channel(dir.path(), "c1", 100);
    let c2 = file_channel(dir.path(), "c2", 2);
    let mut tx = c2.put_transaction();
    tx.put(Event::new("old")).expect("put");
    tx.commit().expect("commit");
    let p = ChannelProcessor::replicating("r1", vec![Arc::clone(&c1), Arc::clone(&c2)]);
    let e = p
        .put(&events(&["a", "b"]), &mut never_retry())
        .expect_err("c2 has room for one");
    assert!(matches!(e.error, ChannelError::ChannelFull { .. }), "{e}");
    assert_eq!(c1.stats().size, 0, "nothing committed to c1");
    // The refused attempt gave its reservation on c1 back: c1 still takes 100 events.
    let hundred: Vec<Event> = (0..100).map(|i| Event::new(i.to_string())).collect();
    let p1 = ChannelProcessor::replicating("r1", vec![Arc::clone(&c1)]);
    p1.put(&hundred, &mut never_retry()).expect("c1 is empty");
    assert_eq!(c1.stats().size, 100);
    assert_eq!(drain(c2.as_ref()), ["old"]);
    c1.close().expect("close");
    c2.close().expect("close");
}
