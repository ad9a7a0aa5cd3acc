//! The `avro` sink, flumen to flumen in one process: agent A (seq source, 5,000 events ->
//! memory channel -> avro sink) sends to agent B (avro source on 127.0.0.1 -> memory channel,
//! no sink); the test takes everything from B's channel and checks every body arrived exactly
//! once. Also: B refusing batches (full channel, FAILED) and B not listening at all: A keeps
//! the events in its channel, counts the failures and delivers everything once B takes them.
//!
//! Every wait is a condition with a deadline.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use flumen::agent::Agent;

use crate::agent_proc::free_port;
use crate::avro_source::{start_agent_with, take_n};

const EVENTS: usize = 5_000;
const DEADLINE: Duration = Duration::from_secs(120);

/// Agent A: seq (EVENTS events, batches of 100) -> memory channel -> avro sink to `port`.
fn start_sender(port: u16) -> Agent {
    start_sender_with(port, "")
}

/// As [`start_sender`], with `extra` avro sink keys.
fn start_sender_with(port: u16, extra: &str) -> Agent {
    let text = crate::agent_proc::seq_to_avro_properties(
        EVENTS,
        port,
        &format!(
            "a1.sinks.k1.connect-timeout = 2000\n\
             a1.sinks.k1.request-timeout = 20000\n{extra}"
        ),
    );
    let (cfg, warnings) = flumen::agent::config::parse(&text, "sender.conf", "a1").expect("config");
    assert!(warnings.is_empty(), "{warnings:?}");
    Agent::start(&cfg).expect("start the sending agent")
}

/// Sink k1's counter `name`, as the monitoring endpoint reports it.
pub(crate) fn sink_counter(agent: &Agent, name: &str) -> u64 {
    let v: serde_json::Value =
        serde_json::from_str(&agent.metrics().render_json()).expect("metrics json");
    v["SINK.k1"][name]
        .as_str()
        .unwrap_or_else(|| panic!("no SINK.k1 {name} in {v}"))
        .parse()
        .expect("a number")
}

/// Waits until `cond` holds; panics naming `what` after the deadline.
pub(crate) fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + DEADLINE;
    while !cond() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Checks `events` are the bodies "0".."EVENTS-1", once each.
fn assert_exactly_once(events: &[flumen::Event]) {
    let mut seen = BTreeMap::new();
    for e in events {
        let body = String::from_utf8_lossy(e.body()).into_owned();
        let i: usize = body.parse().unwrap_or_else(|_| panic!("body {body:?}"));
        assert!(i < EVENTS, "body {body:?}");
        *seen.entry(i).or_insert(0usize) += 1;
    }
    let dups: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).take(10).collect();
    assert!(dups.is_empty(), "delivered more than once: {dups:?}");
    assert_eq!(seen.len(), EVENTS, "distinct bodies");
    assert_eq!(events.len(), EVENTS);
}

#[test]
fn flumen_to_flumen_tier_delivers_every_event_once() {
    let port = free_port();
    let b = start_agent_with(
        port,
        "",
        "a1.channels.c1.capacity = 10000\na1.channels.c1.transactionCapacity = 100\n",
    );
    let b_ch = Arc::clone(&b.channels()[0]);
    let a = start_sender(port);
    let got = take_n(b_ch.as_ref(), EVENTS);
    assert_exactly_once(&got);
    assert!(!b_ch.wait_available(Duration::from_millis(200)));
    let a_ch = Arc::clone(&a.channels()[0]);
    wait_for("A's channel to empty", || a_ch.stats().size == 0);
    assert!(sink_counter(&a, "ConnectionCreatedCount") >= 1);
    assert_eq!(sink_counter(&a, "ConnectionFailedCount"), 0);
    assert_eq!(sink_counter(&a, "EventWriteFail"), 0);
    wait_for("every take committed", || {
        sink_counter(&a, "EventDrainSuccessCount") == EVENTS as u64
    });
    a.shutdown().expect("shutdown A");
    b.shutdown().expect("shutdown B");
}

#[test]
fn refused_batches_stay_in_the_sender_and_arrive_later() {
    let port = free_port();
    // Room for one batch of 100 but not two; no waiting for room: the second batch is
    // answered FAILED until the test drains B.
    let b = start_agent_with(
        port,
        "",
        "a1.channels.c1.capacity = 150\na1.channels.c1.transactionCapacity = 100\n\
         a1.channels.c1.keep-alive = 0\n",
    );
    let b_ch = Arc::clone(&b.channels()[0]);
    let a = start_sender(port);
    let a_ch = Arc::clone(&a.channels()[0]);
    wait_for("a refused batch", || sink_counter(&a, "EventWriteFail") > 0);
    // B holds only what it accepted; A kept the rest.
    assert!(b_ch.stats().size <= 150, "{:?}", b_ch.stats());
    wait_for("A's source to put everything", || {
        a_ch.stats().put_successes == EVENTS as u64
    });
    assert!(
        a_ch.stats().size + b_ch.stats().size >= EVENTS as u64 - 100,
        "A {:?}, B {:?}",
        a_ch.stats(),
        b_ch.stats()
    );
    // Each failure dropped the connection; the retry made a new one.
    wait_for("a reconnection", || {
        sink_counter(&a, "ConnectionCreatedCount") >= 2
    });
    assert!(sink_counter(&a, "ConnectionClosedCount") >= 1);
    // FAILED means B committed nothing of that batch, so nothing is duplicated.
    let got = take_n(b_ch.as_ref(), EVENTS);
    assert_exactly_once(&got);
    wait_for("A's channel to empty", || a_ch.stats().size == 0);
    a.shutdown().expect("shutdown A");
    b.shutdown().expect("shutdown B");
}

#[test]
fn peer_down_keeps_events_until_it_listens() {
    let port = free_port();
    let a = start_sender(port);
    let a_ch = Arc::clone(&a.channels()[0]);
    wait_for("failed connection attempts", || {
        sink_counter(&a, "ConnectionFailedCount") > 0
    });
    wait_for("A's channel to hold every event", || {
        a_ch.stats().size == EVENTS as u64
    });
    assert_eq!(sink_counter(&a, "ConnectionCreatedCount"), 0);
    assert_eq!(sink_counter(&a, "EventDrainSuccessCount"), 0);
    let b = start_agent_with(
        port,
        "",
        "a1.channels.c1.capacity = 10000\na1.channels.c1.transactionCapacity = 100\n",
    );
    let b_ch = Arc::clone(&b.channels()[0]);
    let got = take_n(b_ch.as_ref(), EVENTS);
    assert_exactly_once(&got);
    wait_for("A's channel to empty", || a_ch.stats().size == 0);
    assert!(sink_counter(&a, "ConnectionCreatedCount") >= 1);
    a.shutdown().expect("shutdown A");
    b.shutdown().expect("shutdown B");
}

#[test]
fn deflate_tier_delivers_every_event_once() {
    let port = free_port();
    let b = start_agent_with(
        port,
        "a1.sources.r1.compression-type = deflate\n",
        "a1.channels.c1.capacity = 10000\na1.channels.c1.transactionCapacity = 100\n",
    );
    let b_ch = Arc::clone(&b.channels()[0]);
    let a = start_sender_with(
        port,
        "a1.sinks.k1.compression-type = deflate\na1.sinks.k1.compression-level = 9\n",
    );
    let got = take_n(b_ch.as_ref(), EVENTS);
    assert_exactly_once(&got);
    assert!(!b_ch.wait_available(Duration::from_millis(200)));
    wait_for("every take committed", || {
        sink_counter(&a, "EventDrainSuccessCount") == EVENTS as u64
    });
    assert_eq!(sink_counter(&a, "EventWriteFail"), 0);
    a.shutdown().expect("shutdown A");
    b.shutdown().expect("shutdown B");
}

#[test]
fn deflate_sink_to_plain_source_fails_without_hanging() {
    let port = free_port();
    let b = start_agent_with(
        port,
        "",
        "a1.channels.c1.capacity = 10000\na1.channels.c1.transactionCapacity = 100\n",
    );
    let b_ch = Arc::clone(&b.channels()[0]);
    let a = start_sender_with(port, "a1.sinks.k1.compression-type = deflate\n");
    // The source cannot read the compressed stream: nothing arrives, the sink counts
    // failures, and both agents still shut down.
    wait_for("a failed batch", || {
        sink_counter(&a, "ConnectionClosedCount") >= 1
    });
    assert!(!b_ch.wait_available(Duration::from_millis(200)));
    a.shutdown().expect("shutdown A");
    b.shutdown().expect("shutdown B");
}

/// `reset-connection-interval` (zero here: every connection is already old enough at the
/// next batch, so the test needs no wait) makes the sink reconnect between batches.
#[test]
fn reset_connection_interval_reconnects_between_batches() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let text = format!(
        "a1.sources = r1\na1.channels = c1\n\
         a1.sources.r1.type = avro\na1.sources.r1.bind = 127.0.0.1\n\
         a1.sources.r1.port = {port}\na1.sources.r1.channels = c1\n\
         a1.channels.c1.type = memory\n"
    );
    let (cfg, _) = flumen::agent::config::parse(&text, "b.conf", "a1").expect("config");
    let agent = Agent::start(&cfg).expect("agent");
    let mut sink = flumen::sink::avro::AvroSink::new(
        "k1",
        flumen::sink::avro::AvroSinkOptions {
            reset_connection_interval: Some(Duration::ZERO),
            hostname: "127.0.0.1".into(),
            port,
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(2),
            deflate: None,
            tls: None,
        },
    );
    let counters =
        flumen::metrics::ComponentCounters::detached("k1", flumen::metrics::ComponentType::Sink);
    flumen::sink::Sink::attach_counters(&mut sink, Arc::clone(&counters));
    for round in 1..=2u64 {
        flumen::sink::Sink::process(
            &mut sink,
            &[flumen::Event::new(round.to_string().into_bytes())],
        )
        .expect("accepted");
        assert_eq!(
            counters.get(flumen::metrics::Counter::ConnectionCreatedCount),
            round
        );
        assert_eq!(
            counters.get(flumen::metrics::Counter::ConnectionClosedCount),
            round - 1
        );
    }
    flumen::sink::Sink::stop(&mut sink).expect("stop");
    assert_eq!(
        counters.get(flumen::metrics::Counter::ConnectionClosedCount),
        2
    );
    assert_eq!(agent.channels()[0].stats().size, 2);
    agent.shutdown().expect("shutdown");
}
