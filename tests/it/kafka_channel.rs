//! The `kafka` channel (Flume's KafkaChannel) against a real broker: its keys as Flume reads
//! them, its transaction semantics through the `Channel` API on real topics, an agent
//! delivering through it, topics shared with Apache Flume 1.11's own KafkaChannel both ways, a
//! kill -9 with takes in flight, and put commits against a missing topic or unreachable
//! brokers.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use flumen::channel::kafka::KafkaChannelConfig;
use flumen::channel::{Channel, ChannelError};
use flumen::Event;

use crate::agent_proc::{free_port, AgentProcess, DEADLINE};
use crate::avro_capture::Capture;
use crate::flume_agent::FlumeAgent;
use crate::kafka_broker::{topic_name, KafkaBroker};

// ---- Configuration. ----

/// Parses a file holding one kafka channel `c1` with `lines` (below `a1.channels.c1.`).
/// Errors as their messages (what the tests check).
fn parse(lines: &[(&str, &str)]) -> Result<(KafkaChannelConfig, Vec<String>), String> {
    let mut text = String::from("a1.channels = c1\na1.channels.c1.type = kafka\n");
    for (k, v) in lines {
        text.push_str(&format!("a1.channels.c1.{k} = {v}\n"));
    }
    text.push_str("a1.sinks = k1\na1.sinks.k1.type = null\na1.sinks.k1.channel = c1\n");
    let (cfg, warnings) =
        flumen::agent::config::parse(&text, "kafka.conf", "a1").map_err(|e| e.to_string())?;
    let spec = cfg.channels[0].spec.as_ref().as_any();
    let cfg = spec
        .downcast_ref::<KafkaChannelConfig>()
        .expect("a kafka channel's spec")
        .clone();
    Ok((cfg, warnings.iter().map(ToString::to_string).collect()))
}

#[test]
fn config_has_flumes_defaults() {
    let (cfg, _) = parse(&[("kafka.bootstrap.servers", "b1:9092,b2:9092")]).expect("parses");
    assert_eq!(cfg.bootstrap, "b1:9092,b2:9092");
    assert_eq!(cfg.topic, "flume-channel");
    assert_eq!(cfg.group_id, "flume");
    assert!(cfg.parse_as_flume_event);
    assert_eq!(cfg.poll_timeout, Duration::from_millis(500));
    assert_eq!(cfg.default_partition_id, None);
    assert_eq!(cfg.partition_id_header, None);
    assert_eq!(cfg.producer.get("acks"), Some("all"));
    assert_eq!(cfg.consumer.get("auto.offset.reset"), Some("earliest"));
    assert_eq!(cfg.consumer.get("enable.auto.commit"), Some("false"));
    // No limit, so no sink's batch size is refused against it (Flume's channel has none).
    assert_eq!(
        flumen::channel::ChannelSpec::transaction_capacity(&cfg),
        usize::MAX
    );
}

#[test]
fn config_reads_every_flume_key() {
    let (cfg, warnings) = parse(&[
        ("kafka.bootstrap.servers", "b:9092"),
        ("kafka.topic", "events"),
        ("kafka.consumer.group.id", "g1"),
        ("parseAsFlumeEvent", "false"),
        ("kafka.pollTimeout", "250"),
        ("defaultPartitionId", "2"),
        ("partitionIdHeader", "part"),
        ("kafka.consumer.auto.offset.reset", "latest"),
        ("kafka.producer.acks", "1"),
        ("kafka.producer.compression.type", "lz4"),
        ("transactionCapacity", "500"),
    ])
    .expect("parses");
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(cfg.topic, "events");
    assert_eq!(cfg.group_id, "g1");
    assert_eq!(cfg.consumer.get("group.id"), Some("g1"));
    assert!(!cfg.parse_as_flume_event);
    assert_eq!(cfg.poll_timeout, Duration::from_millis(250));
    assert_eq!(cfg.default_partition_id, Some(2));
    assert_eq!(cfg.partition_id_header.as_deref(), Some("part"));
    assert_eq!(cfg.consumer.get("auto.offset.reset"), Some("latest"));
    assert_eq!(cfg.producer.get("acks"), Some("1"));
    assert_eq!(cfg.producer.get("compression.type"), Some("lz4"));
    assert_eq!(cfg.transaction_capacity, Some(500));
}

#[test]
fn config_maps_the_old_keys_with_deprecation_warnings() {
    let (cfg, warnings) = parse(&[
        ("brokerList", "old:9092"),
        ("topic", "old-topic"),
        ("groupId", "old-group"),
        ("readSmallestOffset", "false"),
        ("zookeeperConnect", "zk:2181"),
        ("migrateZookeeperOffsets", "true"),
    ])
    .expect("parses");
    assert_eq!(cfg.bootstrap, "old:9092");
    assert_eq!(cfg.topic, "old-topic");
    assert_eq!(cfg.group_id, "old-group");
    assert_eq!(cfg.consumer.get("auto.offset.reset"), Some("latest"));
    let all = warnings.join("\n");
    for (old, new) in [
        ("brokerList", "kafka.bootstrap.servers"),
        ("topic", "kafka.topic"),
        ("groupId", "kafka.consumer.group.id"),
        ("readSmallestOffset", "kafka.consumer.auto.offset.reset"),
    ] {
        assert!(
            warnings.iter().any(|w| w.contains(old) && w.contains(new)),
            "no warning maps `{old}` to `{new}`:\n{all}"
        );
    }
    for zk in ["zookeeperConnect", "migrateZookeeperOffsets"] {
        assert!(
            warnings
                .iter()
                .any(|w| w.contains(zk) && w.contains("ZooKeeper")),
            "no warning says why `{zk}` is ignored:\n{all}"
        );
    }
}

#[test]
fn config_new_keys_win_over_old_ones() {
    let (cfg, warnings) = parse(&[
        ("kafka.bootstrap.servers", "new:9092"),
        ("brokerList", "old:9092"),
        ("kafka.topic", "new-topic"),
        ("topic", "old-topic"),
        ("readSmallestOffset", "false"),
    ])
    .expect("parses");
    assert_eq!(cfg.bootstrap, "new:9092");
    assert_eq!(cfg.topic, "new-topic");
    // Flume's channel default wins over nothing; the old key still maps when the new is unset.
    assert_eq!(cfg.consumer.get("auto.offset.reset"), Some("latest"));
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("topic") && w.contains("wins")),
        "{warnings:?}"
    );
}

#[test]
fn config_bad_values_name_the_key_and_line() {
    for (key, value) in [
        ("defaultPartitionId", "-1"),
        ("defaultPartitionId", "one"),
        ("parseAsFlumeEvent", "yes"),
        ("kafka.pollTimeout", "soon"),
        ("transactionCapacity", "0"),
        ("kafka.producer.acks", "several"),
    ] {
        let e = parse(&[("kafka.bootstrap.servers", "b:9092"), (key, value)])
            .expect_err("refused")
            .to_string();
        assert!(
            e.contains(&format!("a1.channels.c1.{key}")) && e.contains("kafka.conf:4"),
            "{key} = {value}: {e}"
        );
    }
    let e = parse(&[]).expect_err("no brokers").to_string();
    assert!(e.contains("kafka.bootstrap.servers"), "{e}");
    let e = parse(&[
        ("kafka.bootstrap.servers", "b:9092"),
        ("kafka.producer.transactional.id", "t1"),
    ])
    .expect_err("transactions refused")
    .to_string();
    assert!(
        e.contains("kafka.producer.transactional.id") && e.contains("remove the key"),
        "{e}"
    );
}

// ---- The channel's transactions on a real topic. ----

/// Opens a kafka channel `name` on `topic` of the shared broker, consumer group `group`.
fn open(topic: &str, group: &str, extra: &[(&str, &str)]) -> Arc<dyn Channel> {
    let broker = KafkaBroker::shared();
    let bootstrap = broker.bootstrap();
    let mut lines = vec![
        ("kafka.bootstrap.servers", bootstrap.as_str()),
        ("kafka.topic", topic),
        ("kafka.consumer.group.id", group),
    ];
    lines.extend_from_slice(extra);
    let (cfg, _) = parse(&lines).expect("parses");
    flumen::channel::ChannelSpec::open(&cfg, "c1").expect("open the channel")
}

fn event(i: usize) -> Event {
    let mut e = Event::new(format!("event-{i}"));
    e.set_header("n", i.to_string());
    e.set_header("origin", "test");
    e
}

fn put_all(ch: &dyn Channel, events: &[Event]) {
    let mut tx = ch.put_transaction();
    for e in events {
        tx.put(e.clone()).expect("put");
    }
    tx.commit().expect("put commit");
}

/// Takes `n` events in one transaction (waiting for them), and returns it open.
fn take_open(
    ch: &dyn Channel,
    n: usize,
) -> (Box<dyn flumen::channel::TakeTransaction>, Vec<Event>) {
    let mut tx = ch.take_transaction();
    let mut out = Vec::new();
    let end = Instant::now() + DEADLINE;
    while out.len() < n {
        assert!(Instant::now() < end, "took {} of {n} events", out.len());
        if tx.take_batch(n - out.len(), &mut out).expect("take") == 0 {
            ch.wait_available(Duration::from_millis(500));
        }
    }
    (tx, out)
}

/// Takes and commits events until `pred` holds for what was taken.
fn take_until(ch: &dyn Channel, mut pred: impl FnMut(&[Event]) -> bool) -> Vec<Event> {
    let mut all = Vec::new();
    let end = Instant::now() + DEADLINE;
    while !pred(&all) {
        assert!(
            Instant::now() < end,
            "took {} events, not what was expected",
            all.len()
        );
        if !ch.wait_available(Duration::from_millis(500)) {
            continue;
        }
        let mut tx = ch.take_transaction();
        tx.take_batch(100, &mut all).expect("take");
        tx.commit().expect("take commit");
    }
    all
}

fn body(e: &Event) -> String {
    String::from_utf8_lossy(e.body()).into_owned()
}

#[test]
fn a_put_commit_is_taken_with_headers_and_bodies() {
    let broker = KafkaBroker::shared();
    let topic = topic_name("kc-roundtrip");
    broker.create_topic(&topic, 1);
    let ch = open(&topic, &topic_name("g"), &[]);
    let events: Vec<Event> = (0..50).map(event).collect();
    put_all(&*ch, &events);
    let (tx, got) = take_open(&*ch, 50);
    tx.commit().expect("take commit");
    assert_eq!(got, events);
    let stats = ch.stats();
    assert_eq!((stats.put_successes, stats.take_successes), (50, 50));
    ch.close().expect("close");
}

#[test]
fn without_parse_as_flume_event_only_bodies_travel() {
    let broker = KafkaBroker::shared();
    let topic = topic_name("kc-plain");
    broker.create_topic(&topic, 1);
    let ch = open(&topic, &topic_name("g"), &[("parseAsFlumeEvent", "false")]);
    let mut keyed = event(0);
    keyed.set_header("key", "k0");
    put_all(&*ch, &[keyed, event(1)]);
    // The records are the bodies themselves, the `key` header the record key (as Flume).
    let records = broker.read_all(&topic, 2, DEADLINE);
    assert_eq!(records[0].value, b"event-0");
    assert_eq!(records[0].key.as_deref(), Some(&b"k0"[..]));
    assert_eq!(records[1].key, None);
    let (tx, got) = take_open(&*ch, 2);
    tx.commit().expect("take commit");
    assert_eq!(body(&got[0]), "event-0");
    assert_eq!(
        got[0].headers().len(),
        1,
        "only the key header: {:?}",
        got[0]
    );
    assert_eq!(got[0].header("key"), Some("k0"));
    assert!(got[1].headers().is_empty());
    ch.close().expect("close");
}

#[test]
fn a_take_rollback_returns_the_events_in_order_and_a_commit_removes_them() {
    let broker = KafkaBroker::shared();
    let topic = topic_name("kc-rollback");
    let group = topic_name("g");
    broker.create_topic(&topic, 1);
    let ch = open(&topic, &group, &[]);
    let events: Vec<Event> = (0..20).map(event).collect();
    put_all(&*ch, &events);

    let (tx, first) = take_open(&*ch, 12);
    tx.rollback();
    // Dropping an open take is a rollback too.
    let (tx, second) = take_open(&*ch, 5);
    drop(tx);
    let (tx, third) = take_open(&*ch, 20);
    assert_eq!(first, events[..12]);
    assert_eq!(second, events[..5]);
    assert_eq!(third, events);
    tx.commit().expect("take commit");
    assert_eq!(broker.committed(&group, &topic), vec![(0, Some(20))]);
    ch.close().expect("close");

    // A new channel on the same topic and group starts after the committed events.
    let again = open(&topic, &group, &[]);
    put_all(&*again, &[event(99)]);
    let got = take_until(&*again, |t| !t.is_empty());
    assert_eq!(got, vec![event(99)]);
    again.close().expect("close");
}

#[test]
fn a_put_rollback_produces_nothing() {
    let broker = KafkaBroker::shared();
    let topic = topic_name("kc-put-rollback");
    broker.create_topic(&topic, 1);
    let ch = open(&topic, &topic_name("g"), &[]);
    let mut tx = ch.put_transaction();
    tx.put(event(1)).expect("put");
    tx.rollback();
    let mut tx = ch.put_transaction();
    tx.put(event(2)).expect("put");
    drop(tx);
    put_all(&*ch, &[event(3)]);
    let records = broker.read_all(&topic, 1, DEADLINE);
    assert_eq!(records.len(), 1);
    assert_eq!(
        records[0].offset, 0,
        "the first record is the committed one"
    );
    let got = take_until(&*ch, |t| !t.is_empty());
    assert_eq!(got, vec![event(3)]);
    ch.close().expect("close");
}

#[test]
fn concurrent_takes_never_hand_out_the_same_event_and_commit_safely() {
    let broker = KafkaBroker::shared();
    let topic = topic_name("kc-concurrent");
    let group = topic_name("g");
    broker.create_topic(&topic, 3);
    let ch = open(&topic, &group, &[]);
    let events: Vec<Event> = (0..300).map(event).collect();
    put_all(&*ch, &events);
    // Two takes open at once: disjoint events.
    let (a, got_a) = take_open(&*ch, 100);
    let (b, got_b) = take_open(&*ch, 100);
    let bodies = |v: &[Event]| v.iter().map(body).collect::<BTreeSet<_>>();
    assert!(bodies(&got_a).is_disjoint(&bodies(&got_b)));
    // The later take commits first: the earlier one's events must not be committed past.
    b.commit().expect("commit b");
    a.rollback();
    let rest = take_until(&*ch, |t| t.len() >= 200);
    let mut all = bodies(&got_b);
    all.extend(bodies(&rest));
    assert_eq!(
        all,
        bodies(&events),
        "every event, once the rollback's are taken again"
    );
    assert_eq!(rest.len(), 200, "nothing taken twice");
    let committed: i64 = broker
        .committed(&group, &topic)
        .iter()
        .map(|(_, o)| o.unwrap_or(0))
        .sum();
    assert_eq!(committed, 300);
    ch.close().expect("close");
}

#[test]
fn partition_id_header_and_default_partition_choose_the_partition() {
    let broker = KafkaBroker::shared();
    let topic = topic_name("kc-partition");
    broker.create_topic(&topic, 3);
    let ch = open(
        &topic,
        &topic_name("g"),
        &[("defaultPartitionId", "1"), ("partitionIdHeader", "p")],
    );
    let mut to2 = event(0);
    to2.set_header("p", "2");
    put_all(&*ch, &[to2, event(1)]);
    let records = broker.read_all(&topic, 2, DEADLINE);
    let parts: Vec<i32> = records.iter().map(|r| r.partition).collect();
    assert_eq!(parts, vec![1, 2]);
    let mut bad = event(2);
    bad.set_header("p", "two");
    let mut tx = ch.put_transaction();
    let e = tx.put(bad).expect_err("not a partition").to_string();
    assert!(e.contains("partitionIdHeader") && e.contains("two"), "{e}");
    ch.close().expect("close");
}

// ---- Failures. ----

#[test]
fn a_put_to_a_missing_topic_fails_naming_topic_and_brokers() {
    let broker = KafkaBroker::shared();
    let topic = topic_name("kc-missing");
    let ch = open(
        &topic,
        &topic_name("g"),
        &[("kafka.producer.topic.metadata.propagation.max.ms", "1000")],
    );
    let mut tx = ch.put_transaction();
    tx.put(event(0)).expect("put");
    let e = tx.commit().expect_err("no such topic");
    let msg = e.to_string();
    assert!(
        msg.contains(&topic) && msg.contains(&broker.bootstrap()) && msg.contains("create it"),
        "{msg}"
    );
    assert!(
        matches!(
            e,
            ChannelError::Kafka {
                retryable: false,
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(ch.stats().put_successes, 0);
    // Takes find nothing and do not spin: wait_available returns after its timeout.
    let start = Instant::now();
    assert!(!ch.wait_available(Duration::from_millis(1500)));
    assert!(start.elapsed() >= Duration::from_millis(1500));
    ch.close().expect("close");
}

#[test]
fn a_put_to_unreachable_brokers_fails_naming_them_and_is_retryable() {
    let port = free_port();
    let bootstrap = format!("127.0.0.1:{port}");
    let (cfg, _) = parse(&[
        ("kafka.bootstrap.servers", bootstrap.as_str()),
        ("kafka.topic", "nowhere"),
        ("kafka.producer.delivery.timeout.ms", "2000"),
        ("kafka.producer.request.timeout.ms", "1000"),
    ])
    .expect("parses");
    let ch = flumen::channel::ChannelSpec::open(&cfg, "c1").expect("open");
    let mut tx = ch.put_transaction();
    tx.put(event(0)).expect("put");
    let e = tx.commit().expect_err("nothing listens");
    let msg = e.to_string();
    assert!(msg.contains(&bootstrap) && msg.contains("nowhere"), "{msg}");
    assert!(e.is_retryable(), "{e:?}");
    assert!(!ch.wait_available(Duration::from_millis(600)));
    ch.close().expect("close");
}

#[test]
fn a_broker_restart_loses_no_acknowledged_put() {
    let broker = KafkaBroker::start();
    let topic = topic_name("kc-restart");
    broker.create_topic(&topic, 1);
    let (cfg, _) = parse(&[
        ("kafka.bootstrap.servers", broker.bootstrap().as_str()),
        ("kafka.topic", topic.as_str()),
        ("kafka.producer.delivery.timeout.ms", "3000"),
        ("kafka.producer.request.timeout.ms", "1000"),
    ])
    .expect("parses");
    let ch = flumen::channel::ChannelSpec::open(&cfg, "c1").expect("open");
    let mut acknowledged = Vec::new();
    let mut failures = 0;
    for i in 0..60 {
        if i == 20 {
            broker.kill();
        }
        if i == 40 {
            broker.restart();
        }
        let mut tx = ch.put_transaction();
        tx.put(event(i)).expect("put");
        match tx.commit() {
            Ok(()) => acknowledged.push(format!("event-{i}")),
            Err(e) => {
                assert!(e.is_retryable(), "{e}");
                failures += 1;
            }
        }
    }
    assert!(failures > 0, "the broker was down for 20 puts");
    assert!(acknowledged.len() >= 30, "{acknowledged:?}");
    let got = take_until(&*ch, |t| {
        let have: BTreeSet<String> = t.iter().map(body).collect();
        acknowledged.iter().all(|a| have.contains(a))
    });
    assert!(!got.is_empty());
    ch.close().expect("close");
}

// ---- Agents. ----

/// The lines of a kafka channel `name` of agent `a1`.
fn channel_properties(name: &str, bootstrap: &str, topic: &str, group: &str) -> String {
    format!(
        "a1.channels.{name}.type = org.apache.flume.channel.kafka.KafkaChannel\n\
         a1.channels.{name}.kafka.bootstrap.servers = {bootstrap}\n\
         a1.channels.{name}.kafka.topic = {topic}\n\
         a1.channels.{name}.kafka.consumer.group.id = {group}\n"
    )
}

/// Agent `a1`: seq (`n` events, a static `origin` header) -> kafka channel, and no sink.
fn seq_to_channel(n: usize, bootstrap: &str, topic: &str, origin: &str) -> String {
    format!(
        "a1.sources = r1\n\
         a1.channels = c1\n\
         a1.sources.r1.type = seq\n\
         a1.sources.r1.totalEvents = {n}\n\
         a1.sources.r1.batchSize = 100\n\
         a1.sources.r1.channels = c1\n\
         a1.sources.r1.interceptors = i1\n\
         a1.sources.r1.interceptors.i1.type = static\n\
         a1.sources.r1.interceptors.i1.key = origin\n\
         a1.sources.r1.interceptors.i1.value = {origin}\n\
         {}",
        channel_properties("c1", bootstrap, topic, "writers")
    )
}

/// Agent `a1`: kafka channel -> avro sink to `port`, and no source.
fn channel_to_avro(bootstrap: &str, topic: &str, group: &str, port: u16) -> String {
    format!(
        "a1.channels = c1\n\
         a1.sinks = k1\n\
         a1.sinks.k1.type = avro\n\
         a1.sinks.k1.hostname = 127.0.0.1\n\
         a1.sinks.k1.port = {port}\n\
         a1.sinks.k1.batch-size = 100\n\
         a1.sinks.k1.channel = c1\n\
         {}",
        channel_properties("c1", bootstrap, topic, group)
    )
}

/// Each body the capture holds, with how often.
fn body_counts(events: &[Event]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for e in events {
        *m.entry(body(e)).or_insert(0) += 1;
    }
    m
}

fn flumen_agent(dir: &std::path::Path, tag: &str, properties: &str) -> AgentProcess {
    let conf = dir.join(format!("{tag}.conf"));
    std::fs::write(&conf, properties).expect("write the properties");
    AgentProcess::start(dir, &conf, "a1", tag)
}

/// Waits until `capture` holds every body of `0..n` (duplicates allowed).
fn wait_all_bodies(agent: &mut AgentProcess, capture: &Capture, n: usize) {
    agent.wait_for(
        &format!("waiting for all {n} events at the collector"),
        |_| body_counts(&capture.events()).len() >= n,
    );
}

#[test]
fn an_agent_delivers_every_event_through_the_channel() {
    let broker = KafkaBroker::shared();
    let topic = topic_name("kc-agent");
    broker.create_topic(&topic, 2);
    let dir = tempfile::tempdir().expect("tempdir");
    let capture = Capture::start();
    let n = 2000;
    let props = format!(
        "a1.sources = r1\n\
         a1.channels = c1\n\
         a1.sinks = k1\n\
         a1.sources.r1.type = seq\n\
         a1.sources.r1.totalEvents = {n}\n\
         a1.sources.r1.batchSize = 100\n\
         a1.sources.r1.channels = c1\n\
         a1.sinks.k1.type = avro\n\
         a1.sinks.k1.hostname = 127.0.0.1\n\
         a1.sinks.k1.port = {}\n\
         a1.sinks.k1.batch-size = 100\n\
         a1.sinks.k1.channel = c1\n\
         {}",
        capture.port,
        channel_properties("c1", &broker.bootstrap(), &topic, "agent")
    );
    let mut agent = flumen_agent(dir.path(), "agent", &props);
    wait_all_bodies(&mut agent, &capture, n);
    let (_, log) = agent.terminate();
    capture.close();
    let counts = body_counts(&capture.events());
    assert_eq!(counts.len(), n, "{log}");
    assert!(
        counts.values().all(|c| *c == 1),
        "no duplicates without a failure"
    );
}

#[test]
fn a_channel_topic_written_by_flume_is_drained_by_flumen() {
    let broker = KafkaBroker::shared();
    let topic = topic_name("kc-from-flume");
    broker.create_topic(&topic, 2);
    let dir = tempfile::tempdir().expect("tempdir");
    let n = 500;
    let mut flume = FlumeAgent::start(
        dir.path(),
        "writer",
        &seq_to_channel(n, &broker.bootstrap(), &topic, "flume"),
    );
    flume.poll("waiting for Flume's channel to hold every event", |a| {
        (a.try_counter("CHANNEL.c1", "EventPutSuccessCount")? >= n as u64).then_some(())
    });
    flume.stop();
    let capture = Capture::start();
    let mut agent = flumen_agent(
        dir.path(),
        "reader",
        &channel_to_avro(&broker.bootstrap(), &topic, "flumen-readers", capture.port),
    );
    wait_all_bodies(&mut agent, &capture, n);
    agent.terminate();
    capture.close();
    let events = capture.events();
    let expected: BTreeSet<String> = (0..n).map(|i| i.to_string()).collect();
    assert_eq!(
        body_counts(&events).into_keys().collect::<BTreeSet<_>>(),
        expected
    );
    for e in &events {
        assert_eq!(e.header("origin"), Some("flume"), "{e:?}");
        assert_eq!(e.headers().len(), 1, "{e:?}");
    }
}

#[test]
fn a_channel_topic_written_by_flumen_is_drained_by_flume() {
    let broker = KafkaBroker::shared();
    let topic = topic_name("kc-to-flume");
    broker.create_topic(&topic, 2);
    let dir = tempfile::tempdir().expect("tempdir");
    let n = 500;
    let mut agent = flumen_agent(
        dir.path(),
        "writer",
        &seq_to_channel(n, &broker.bootstrap(), &topic, "flumen"),
    );
    agent.wait_for("waiting for the topic to hold every event", |_| {
        broker.record_count(&topic) >= n as u64
    });
    agent.terminate();
    let capture = Capture::start();
    let mut flume = FlumeAgent::start(
        dir.path(),
        "reader",
        &channel_to_avro(&broker.bootstrap(), &topic, "flume-readers", capture.port),
    );
    flume.poll("waiting for Flume to deliver every event", |_| {
        (body_counts(&capture.events()).len() >= n).then_some(())
    });
    flume.stop();
    capture.close();
    let events = capture.events();
    let expected: BTreeSet<String> = (0..n).map(|i| i.to_string()).collect();
    assert_eq!(
        body_counts(&events).into_keys().collect::<BTreeSet<_>>(),
        expected
    );
    for e in &events {
        assert_eq!(e.header("origin"), Some("flumen"), "{e:?}");
        assert_eq!(e.headers().len(), 1, "{e:?}");
    }
}

#[test]
fn kill_9_with_takes_in_flight_loses_nothing() {
    let broker = KafkaBroker::shared();
    let topic = topic_name("kc-crash");
    broker.create_topic(&topic, 2);
    let n = 3000;
    let writer = open(&topic, "nobody", &[]);
    let events: Vec<Event> = (0..n).map(|i| Event::new(i.to_string())).collect();
    for chunk in events.chunks(500) {
        put_all(&*writer, chunk);
    }
    writer.close().expect("close");
    let dir = tempfile::tempdir().expect("tempdir");
    let capture = Capture::start();
    let props = channel_to_avro(&broker.bootstrap(), &topic, "crash", capture.port);
    let mut agent = flumen_agent(dir.path(), "first", &props);
    agent.wait_for("waiting for some events to be delivered", |_| {
        capture.len() >= 300
    });
    agent.kill_9();
    let mut agent = flumen_agent(dir.path(), "second", &props);
    wait_all_bodies(&mut agent, &capture, n);
    agent.terminate();
    capture.close();
    let counts = body_counts(&capture.events());
    let expected: BTreeSet<String> = (0..n).map(|i| i.to_string()).collect();
    assert_eq!(counts.into_keys().collect::<BTreeSet<_>>(), expected);
}

#[test]
fn a_put_without_authorization_fails_saying_so() {
    let broker = KafkaBroker::shared();
    let topic = topic_name("kc-denied");
    broker.create_topic(&topic, 1);
    let sasl = broker.sasl_bootstrap();
    let jaas = r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="alice" password="alice-secret";"#;
    let (cfg, _) = parse(&[
        ("kafka.bootstrap.servers", sasl.as_str()),
        ("kafka.topic", topic.as_str()),
        ("kafka.producer.security.protocol", "SASL_PLAINTEXT"),
        ("kafka.producer.sasl.mechanism", "PLAIN"),
        ("kafka.producer.sasl.jaas.config", jaas),
    ])
    .expect("parses");
    let ch = flumen::channel::ChannelSpec::open(&cfg, "c1").expect("open");
    let mut tx = ch.put_transaction();
    tx.put(event(0)).expect("put");
    let e = tx.commit().expect_err("alice may not write");
    let msg = e.to_string();
    assert!(
        msg.contains("not authorized") && msg.contains(&topic) && msg.contains(&sasl),
        "{msg}"
    );
    assert!(!e.is_retryable(), "{e:?}");
    ch.close().expect("close");
}

#[test]
fn takes_from_a_missing_topic_log_once_back_off_and_recover() {
    let broker = KafkaBroker::shared();
    let topic = topic_name("kc-late");
    let dir = tempfile::tempdir().expect("tempdir");
    let capture = Capture::start();
    let props = channel_to_avro(&broker.bootstrap(), &topic, "late", capture.port);
    let mut agent = flumen_agent(dir.path(), "late", &props);
    let said = |log: &str| {
        log.lines()
            .filter(|l| l.contains(&topic) && l.contains("does not exist"))
            .count()
    };
    agent.wait_for("waiting for the missing topic to be logged", |a| {
        said(&a.log()) > 0
    });
    broker.create_topic(&topic, 1);
    let writer = open(&topic, "nobody", &[]);
    let events: Vec<Event> = (0..100).map(|i| Event::new(i.to_string())).collect();
    put_all(&*writer, &events);
    writer.close().expect("close");
    wait_all_bodies(&mut agent, &capture, 100);
    let (_, log) = agent.terminate();
    capture.close();
    // One line per kind of failure, again at most every 30 s: not one per poll or reconnect.
    assert!(said(&log) <= 2, "{log}");
    assert!(log.contains(&broker.bootstrap()), "{log}");
}

#[test]
fn a_rebalance_loses_no_event() {
    let broker = KafkaBroker::shared();
    let topic = topic_name("kc-rebalance");
    let group = topic_name("g");
    broker.create_topic(&topic, 4);
    let writer = open(&topic, "nobody", &[]);
    let events: Vec<Event> = (0..400).map(|i| Event::new(i.to_string())).collect();
    put_all(&*writer, &events);
    writer.close().expect("close");

    let a = open(&topic, &group, &[]);
    let (open_take, held) = take_open(&*a, 50);
    // A second member joins: the group rebalances while the first holds an open take.
    let b = open(&topic, &group, &[]);
    let end = Instant::now() + DEADLINE;
    loop {
        assert!(Instant::now() < end, "the second member got no partition");
        // The first member keeps polling (serving the rebalance), taking nothing.
        a.wait_available(Duration::from_millis(100));
        if b.wait_available(Duration::from_millis(100)) {
            break;
        }
    }
    // Delivered by the sink whose take it was; records of partitions it lost come again.
    open_take.commit().expect("commit the open take");
    let mut delivered: BTreeSet<String> = held.iter().map(body).collect();
    let expected: BTreeSet<String> = events.iter().map(body).collect();
    while delivered != expected {
        assert!(
            Instant::now() < end,
            "{} of 400 events delivered after the rebalance",
            delivered.len()
        );
        for ch in [&a, &b] {
            if ch.wait_available(Duration::from_millis(100)) {
                let mut tx = ch.take_transaction();
                let mut out = Vec::new();
                tx.take_batch(50, &mut out).expect("take");
                tx.commit().expect("take commit");
                delivered.extend(out.iter().map(body));
            }
        }
    }
    a.close().expect("close");
    b.close().expect("close");
}
