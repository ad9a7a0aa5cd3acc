//! The kafka sink against a real broker: what lands in the topic (bodies, keys, record headers,
//! topics, partitions, the AvroFlumeEvent encoding), what Apache Flume 1.11's own KafkaSource
//! reads from it, where keyed records land next to Flume's own KafkaSink, and what happens
//! when the broker dies, the topic is missing, the brokers cannot be reached or the client is
//! not authorized: nothing is lost, one clear log line, backoff.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use flumen::avro::blocking::{BlockingClient, Timeouts};
use flumen::avro::protocol::decode_flume_event;
use flumen::event::Event;

use crate::agent_proc::{free_port, json, start_monitored, AgentProcess, DEADLINE, POLL};
use crate::avro_capture::Capture;
use crate::flume_agent::FlumeAgent;
use crate::kafka_broker::{topic_name, KafkaBroker, Record};

const READ: Duration = Duration::from_secs(60);

/// avro source on `port` -> memory channel -> kafka sink `k1` with `sink` lines (each
/// `a1.sinks.k1.` key without its prefix, `key = value`).
fn avro_to_kafka(port: u16, sink: &[(&str, String)]) -> String {
    let mut s = format!(
        "a1.sources = r1\n\
         a1.channels = c1\n\
         a1.sinks = k1\n\
         a1.sources.r1.type = avro\n\
         a1.sources.r1.bind = 127.0.0.1\n\
         a1.sources.r1.port = {port}\n\
         a1.sources.r1.channels = c1\n\
         a1.channels.c1.type = memory\n\
         a1.channels.c1.capacity = 100000\n\
         a1.channels.c1.transactionCapacity = 1000\n\
         a1.sinks.k1.type = org.apache.flume.sink.kafka.KafkaSink\n\
         a1.sinks.k1.channel = c1\n"
    );
    for (k, v) in sink {
        s.push_str(&format!("a1.sinks.k1.{k} = {v}\n"));
    }
    s
}

fn event(body: &str, headers: &[(&str, &str)]) -> Event {
    Event::with_headers(
        headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        body.as_bytes().to_vec(),
    )
}

/// Sends `events` to the avro source on `port` (once it listens), 50 per call.
pub fn send(run: &mut Option<&mut AgentProcess>, port: u16, events: &[Event]) {
    let timeouts = Timeouts {
        connect: Duration::from_secs(20),
        request: Duration::from_secs(20),
        connect_name: "connect",
        request_name: "request",
    };
    let end = Instant::now() + DEADLINE;
    let mut client = loop {
        match BlockingClient::connect("127.0.0.1", port, &timeouts) {
            Ok(c) => break c,
            Err(e) => {
                if let Some(r) = run.as_mut() {
                    r.assert_running("waiting for the avro source");
                }
                assert!(Instant::now() < end, "the avro source on {port}: {e}");
                std::thread::sleep(POLL);
            }
        }
    };
    for batch in events.chunks(50) {
        client
            .append_batch(batch, "the test's events")
            .expect("append");
    }
    client.close();
}

fn start_agent(dir: &Path, props: &str, tag: &str) -> (AgentProcess, u16) {
    start_monitored(dir, props, tag, &[])
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn records_carry_keys_headers_topics_and_partitions_as_flume_sends_them() {
    let broker = KafkaBroker::shared();
    let dir = tempfile::tempdir().expect("tempdir");
    let main = topic_name("sink-main");
    let other = topic_name("sink-other");
    broker.create_topic(&main, 4);
    broker.create_topic(&other, 1);
    let port = free_port();
    let props = avro_to_kafka(
        port,
        &[
            ("kafka.bootstrap.servers", broker.bootstrap()),
            ("kafka.topic", main.clone()),
            ("kafka.producer.acks", "all".into()),
            ("partitionIdHeader", "p".into()),
            ("timestampHeader", "ts".into()),
            ("header.h1", "kafkaH1".into()),
            ("header.h2", "kafkaH2".into()),
        ],
    );
    let (mut run, _) = start_agent(dir.path(), &props, "main");
    let events = vec![
        event("keyed", &[("key", "k-1"), ("h1", "v1"), ("other", "x")]),
        event("two headers", &[("h1", "a"), ("h2", "b")]),
        event("to the other topic", &[("topic", &other)]),
        event("to partition 2", &[("p", "2"), ("ts", "1700000000123")]),
        event("plain", &[]),
    ];
    send(&mut Some(&mut run), port, &events);
    let got = broker.read_all(&main, 4, READ);
    let by_body: BTreeMap<String, &Record> = got.iter().map(|r| (text(&r.value), r)).collect();
    let keyed = by_body["keyed"];
    assert_eq!(
        keyed.key.as_deref(),
        Some(&b"k-1"[..]),
        "the key header is the record key"
    );
    assert_eq!(
        keyed.headers,
        vec![("kafkaH1".to_string(), b"v1".to_vec())],
        "only header.* headers become record headers, under their Kafka names"
    );
    let two = by_body["two headers"];
    let mut h = two.headers.clone();
    h.sort();
    assert_eq!(
        h,
        vec![
            ("kafkaH1".to_string(), b"a".to_vec()),
            ("kafkaH2".to_string(), b"b".to_vec())
        ]
    );
    assert_eq!(two.key, None);
    let p2 = by_body["to partition 2"];
    assert_eq!(p2.partition, 2, "partitionIdHeader picks the partition");
    assert_eq!(p2.timestamp, Some(1_700_000_000_123), "timestampHeader");
    assert!(by_body["plain"].headers.is_empty());
    let o = broker.read_all(&other, 1, READ);
    assert_eq!(
        text(&o[0].value),
        "to the other topic",
        "the topic header overrides"
    );
    run.terminate();
}

#[test]
fn topic_escapes_default_partition_and_disabled_override() {
    let broker = KafkaBroker::shared();
    let dir = tempfile::tempdir().expect("tempdir");
    let prefix = topic_name("sink-esc");
    let (a, b) = (format!("{prefix}-a"), format!("{prefix}-b"));
    broker.create_topic(&a, 4);
    broker.create_topic(&b, 4);
    let port = free_port();
    let props = avro_to_kafka(
        port,
        &[
            ("kafka.bootstrap.servers", broker.bootstrap()),
            ("kafka.topic", format!("{prefix}-%{{dest}}")),
            ("defaultPartitionId", "3".into()),
            ("partitionIdHeader", "p".into()),
            ("allowTopicOverride", "false".into()),
        ],
    );
    let (mut run, _) = start_agent(dir.path(), &props, "esc");
    send(
        &mut Some(&mut run),
        port,
        &[
            event("to a", &[("dest", "a"), ("topic", "ignored")]),
            event("to b", &[("dest", "b")]),
            event("to b, partition 1", &[("dest", "b"), ("p", "1")]),
        ],
    );
    let ra = broker.read_all(&a, 1, READ);
    assert_eq!(
        text(&ra[0].value),
        "to a",
        "%{{dest}} picks the topic; override off"
    );
    assert_eq!(ra[0].partition, 3, "defaultPartitionId");
    let rb = broker.read_all(&b, 2, READ);
    let parts: BTreeMap<String, i32> = rb.iter().map(|r| (text(&r.value), r.partition)).collect();
    assert_eq!(parts["to b"], 3);
    assert_eq!(
        parts["to b, partition 1"], 1,
        "the header wins over defaultPartitionId"
    );
    run.terminate();
}

#[test]
fn flume_event_format_on_and_off() {
    let broker = KafkaBroker::shared();
    let dir = tempfile::tempdir().expect("tempdir");
    for avro in [true, false] {
        let topic = topic_name("sink-fmt");
        broker.create_topic(&topic, 1);
        let port = free_port();
        let props = avro_to_kafka(
            port,
            &[
                ("kafka.bootstrap.servers", broker.bootstrap()),
                ("kafka.topic", topic.clone()),
                ("useFlumeEventFormat", avro.to_string()),
            ],
        );
        let (mut run, _) = start_agent(dir.path(), &props, &format!("fmt-{avro}"));
        let sent = vec![
            event("one", &[("a", "1"), ("b", "two")]),
            event("", &[]),
            event("ünïcode body", &[("ключ", "значение")]),
        ];
        send(&mut Some(&mut run), port, &sent);
        let got = broker.read_all(&topic, sent.len(), READ);
        for (s, r) in sent.iter().zip(&got) {
            if avro {
                let e = decode_flume_event(&r.value.clone().into())
                    .expect("the value is an AvroFlumeEvent");
                assert_eq!(e.headers(), s.headers());
                assert_eq!(e.body(), s.body());
            } else {
                assert_eq!(&r.value[..], &s.body()[..], "the value is the body alone");
            }
        }
        run.terminate();
    }
}

/// Reads `topic` from the start until `until` holds of the records read; after 180 s fails
/// the test with `context()` (the agent's log).
fn read_available(
    broker: &KafkaBroker,
    topic: &str,
    until: impl Fn(&[Record]) -> bool,
    context: impl Fn() -> String,
) -> Vec<Record> {
    broker.read_until(topic, Duration::from_secs(180), until, context)
}

fn distinct_bodies(records: &[Record]) -> BTreeSet<Vec<u8>> {
    records.iter().map(|r| r.value.clone()).collect()
}

#[test]
fn a_broker_killed_and_restarted_mid_stream_loses_nothing() {
    const N: usize = 20_000;
    let broker = KafkaBroker::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let topic = topic_name("sink-kill");
    broker.create_topic(&topic, 2);
    let props = format!(
        "a1.sources = r1\n\
         a1.channels = c1\n\
         a1.sinks = k1\n\
         a1.sources.r1.type = seq\n\
         a1.sources.r1.totalEvents = {N}\n\
         a1.sources.r1.batchSize = 100\n\
         a1.sources.r1.channels = c1\n\
         a1.channels.c1.type = file\n\
         a1.channels.c1.checkpointDir = {d}/cp\n\
         a1.channels.c1.dataDirs = {d}/data\n\
         a1.channels.c1.minimumRequiredSpace = 1048576\n\
         a1.sinks.k1.type = kafka\n\
         a1.sinks.k1.channel = c1\n\
         a1.sinks.k1.kafka.bootstrap.servers = {b}\n\
         a1.sinks.k1.kafka.topic = {topic}\n\
         a1.sinks.k1.kafka.producer.acks = all\n\
         a1.sinks.k1.flumeBatchSize = 100\n",
        d = dir.path().display(),
        b = broker.bootstrap(),
    );
    let (mut run, mport) = start_agent(dir.path(), &props, "kill");
    // Kill once records flow, well before the end.
    read_available(&broker, &topic, |r| r.len() >= 500, || run.log());
    broker.kill();
    // An outage of a fixed length (not a wait for a condition): records sent meanwhile are
    // unacknowledged and must still arrive once the broker is back.
    std::thread::sleep(Duration::from_secs(3));
    run.assert_running("the broker is down");
    broker.restart();
    // Every take committed (the channel is empty) and the broker holds at least N records;
    // then one fresh read of all of them (a consumer that lived through the restart is not
    // trusted to have read everything).
    let held = run.poll("the channel drained into the restarted broker", |a| {
        let (channel_size, _) = agent_state(mport, a);
        let total = broker.record_count(&topic);
        (channel_size == "0" && total >= N as u64).then_some(total)
    });
    let got = broker.read_all(&topic, usize::try_from(held).expect("a count"), READ);
    let distinct = distinct_bodies(&got);
    let expected: BTreeSet<Vec<u8>> = (0..N).map(|i| i.to_string().into_bytes()).collect();
    assert_eq!(distinct, expected, "every event is in the topic");
    let duplicates = got.len() - distinct.len();
    eprintln!("broker kill: {N} events, {duplicates} duplicates (at-least-once)");
    assert!(
        duplicates <= N,
        "{duplicates} duplicates of {N} events: more than one redelivery each"
    );
    run.terminate();
}

/// The channel's size (as the monitoring server says) and the agent's log, for a failure
/// message.
fn agent_state(mport: u16, run: &AgentProcess) -> (String, String) {
    let size = crate::agent_proc::try_get(mport, "/metrics")
        .and_then(|(_, body)| serde_json::from_str::<serde_json::Value>(&body).ok())
        .and_then(|v| v["CHANNEL.c1"]["ChannelSize"].as_str().map(str::to_string))
        .unwrap_or_default();
    (size, run.log())
}

/// The sink's EventWriteFail counter.
fn write_fails(run: &mut AgentProcess, mport: u16) -> u64 {
    json(run, mport)["SINK.k1"]["EventWriteFail"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// The agent logs `needle` (one line with all of `needles`), then backs off: over the next
/// 4 s the sink fails at most a handful of times.
fn assert_logged_and_backing_off(run: &mut AgentProcess, mport: u16, needles: &[&str]) {
    run.wait_for(&format!("a log line with {needles:?}"), |a| {
        a.log()
            .lines()
            .any(|l| needles.iter().all(|n| l.contains(n)))
    });
    let before = write_fails(run, mport);
    // An observation window (not a wait for a condition): the failure count over it shows
    // whether the sink backs off or spins.
    std::thread::sleep(Duration::from_secs(4));
    let after = write_fails(run, mport);
    assert!(
        after - before <= 8,
        "{} failures in 4 s: no backoff?\n{}",
        after - before,
        run.log()
    );
    let lines = run
        .log()
        .lines()
        .filter(|l| needles.iter().all(|n| l.contains(n)))
        .count();
    assert!(
        lines <= 2,
        "the cause is logged once, not per attempt ({lines} lines):\n{}",
        run.log()
    );
}

#[test]
fn a_missing_topic_is_named_and_its_events_arrive_once_it_exists() {
    let broker = KafkaBroker::shared();
    let dir = tempfile::tempdir().expect("tempdir");
    let topic = topic_name("sink-missing");
    let port = free_port();
    let props = avro_to_kafka(
        port,
        &[
            ("kafka.bootstrap.servers", broker.bootstrap()),
            ("kafka.topic", topic.clone()),
            (
                "kafka.producer.topic.metadata.propagation.max.ms",
                "1000".into(),
            ),
        ],
    );
    let (mut run, mport) = start_agent(dir.path(), &props, "missing");
    let sent: Vec<Event> = (0..30).map(|i| event(&format!("m{i}"), &[])).collect();
    send(&mut Some(&mut run), port, &sent);
    assert_logged_and_backing_off(&mut run, mport, &[&topic, "does not exist"]);
    broker.create_topic(&topic, 1);
    let got = read_available(
        broker,
        &topic,
        |r| distinct_bodies(r).len() >= sent.len(),
        || format!("the agent's log:\n{}", run.log()),
    );
    assert_eq!(distinct_bodies(&got).len(), sent.len());
    run.wait_for("the recovery logged", |a| a.log().contains("deliver"));
    run.terminate();
}

#[test]
fn unreachable_brokers_are_named_and_the_events_stay_in_the_channel() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dead = format!("127.0.0.1:{}", free_port());
    let port = free_port();
    let props = avro_to_kafka(
        port,
        &[
            ("kafka.bootstrap.servers", dead.clone()),
            ("kafka.topic", "nowhere".into()),
            ("kafka.producer.delivery.timeout.ms", "1500".into()),
        ],
    );
    let (mut run, mport) = start_agent(dir.path(), &props, "dead");
    send(&mut Some(&mut run), port, &[event("kept", &[])]);
    assert_logged_and_backing_off(&mut run, mport, &[&dead, "nowhere"]);
    let v = json(&mut run, mport);
    assert_eq!(
        v["CHANNEL.c1"]["ChannelSize"].as_str(),
        Some("1"),
        "the event stays in the channel: {v}"
    );
    run.terminate();
}

#[test]
fn an_unauthorized_client_is_told_so_and_keeps_its_events() {
    let broker = KafkaBroker::shared();
    let dir = tempfile::tempdir().expect("tempdir");
    let topic = topic_name("sink-acl");
    broker.create_topic(&topic, 1);
    let port = free_port();
    let props = avro_to_kafka(
        port,
        &[
            ("kafka.bootstrap.servers", broker.sasl_bootstrap()),
            ("kafka.topic", topic.clone()),
            ("kafka.producer.security.protocol", "SASL_PLAINTEXT".into()),
            ("kafka.producer.sasl.mechanism", "PLAIN".into()),
            (
                "kafka.producer.sasl.jaas.config",
                "org.apache.kafka.common.security.plain.PlainLoginModule required username=\"alice\" password=\"alice-secret\";".into(),
            ),
        ],
    );
    let (mut run, mport) = start_agent(dir.path(), &props, "acl");
    send(&mut Some(&mut run), port, &[event("secret", &[])]);
    assert_logged_and_backing_off(&mut run, mport, &[&topic, "not authorized"]);
    let v = json(&mut run, mport);
    assert_eq!(v["CHANNEL.c1"]["ChannelSize"].as_str(), Some("1"), "{v}");
    run.terminate();
}

/// Flume's avro source -> memory -> Flume's own KafkaSink, to `topic`.
fn flume_avro_to_kafka(port: u16, bootstrap: &str, topic: &str) -> String {
    format!(
        "a1.sources = r1\n\
         a1.channels = c1\n\
         a1.sinks = k1\n\
         a1.sources.r1.type = avro\n\
         a1.sources.r1.bind = 127.0.0.1\n\
         a1.sources.r1.port = {port}\n\
         a1.sources.r1.channels = c1\n\
         a1.channels.c1.type = memory\n\
         a1.channels.c1.capacity = 10000\n\
         a1.channels.c1.transactionCapacity = 1000\n\
         a1.sinks.k1.type = org.apache.flume.sink.kafka.KafkaSink\n\
         a1.sinks.k1.kafka.bootstrap.servers = {bootstrap}\n\
         a1.sinks.k1.kafka.topic = {topic}\n\
         a1.sinks.k1.channel = c1\n"
    )
}

#[test]
fn keyed_records_land_on_the_partition_flumes_sink_picks() {
    let broker = KafkaBroker::shared();
    let dir = tempfile::tempdir().expect("tempdir");
    let (ours, theirs) = (topic_name("sink-keys-ours"), topic_name("sink-keys-flume"));
    broker.create_topic(&ours, 4);
    broker.create_topic(&theirs, 4);
    let events: Vec<Event> = (0..64)
        .map(|i| {
            let key = format!("user-{i}");
            event(&format!("body of {key}"), &[("key", &key)])
        })
        .collect();
    let fport = free_port();
    let mut flume = FlumeAgent::start(
        dir.path(),
        "keys",
        &flume_avro_to_kafka(fport, &broker.bootstrap(), &theirs),
    );
    flume.wait_ready(&["SOURCE.r1", "SINK.k1"], Some(fport));
    send(&mut None, fport, &events);
    let port = free_port();
    let props = avro_to_kafka(
        port,
        &[
            ("kafka.bootstrap.servers", broker.bootstrap()),
            ("kafka.topic", ours.clone()),
        ],
    );
    let (mut run, _) = start_agent(dir.path(), &props, "keys");
    send(&mut Some(&mut run), port, &events);
    let placement = |topic: &str| -> BTreeMap<Vec<u8>, i32> {
        broker
            .read_all(topic, events.len(), READ)
            .into_iter()
            .map(|r| (r.key.expect("a keyed record"), r.partition))
            .collect()
    };
    let flume_placed = placement(&theirs);
    let ours_placed = placement(&ours);
    assert_eq!(
        ours_placed, flume_placed,
        "each key on the same partition as Flume's"
    );
    let used: BTreeSet<i32> = ours_placed.values().copied().collect();
    assert!(used.len() > 1, "the keys spread over partitions: {used:?}");
    run.terminate();
    flume.stop();
}

#[test]
fn flumes_kafka_source_reads_what_the_sink_sends() {
    let broker = KafkaBroker::shared();
    let dir = tempfile::tempdir().expect("tempdir");
    for avro in [true, false] {
        let topic = topic_name("sink-to-flume");
        broker.create_topic(&topic, 1);
        let sent: Vec<Event> = (0..50)
            .map(|i| {
                event(
                    &format!("event {i} ✓"),
                    &[
                        ("n", &i.to_string()),
                        ("h1", &format!("v{i}")),
                        ("key", &format!("k{i}")),
                    ],
                )
            })
            .collect();
        let port = free_port();
        let props = avro_to_kafka(
            port,
            &[
                ("kafka.bootstrap.servers", broker.bootstrap()),
                ("kafka.topic", topic.clone()),
                ("useFlumeEventFormat", avro.to_string()),
                ("header.h1", "kh1".into()),
            ],
        );
        let (mut run, _) = start_agent(dir.path(), &props, &format!("to-flume-{avro}"));
        send(&mut Some(&mut run), port, &sent);
        broker.read_all(&topic, sent.len(), READ);
        run.terminate();

        let capture = Capture::start();
        let flume_props = format!(
            "a1.sources = r1\n\
             a1.channels = c1\n\
             a1.sinks = k1\n\
             a1.sources.r1.type = org.apache.flume.source.kafka.KafkaSource\n\
             a1.sources.r1.kafka.bootstrap.servers = {b}\n\
             a1.sources.r1.kafka.topics = {topic}\n\
             a1.sources.r1.kafka.consumer.group.id = {g}\n\
             a1.sources.r1.kafka.consumer.auto.offset.reset = earliest\n\
             a1.sources.r1.useFlumeEventFormat = {avro}\n\
             a1.sources.r1.header.h1 = kh1\n\
             a1.sources.r1.batchDurationMillis = 200\n\
             a1.sources.r1.channels = c1\n\
             a1.channels.c1.type = memory\n\
             a1.channels.c1.capacity = 10000\n\
             a1.channels.c1.transactionCapacity = 1000\n\
             a1.sinks.k1.type = avro\n\
             a1.sinks.k1.hostname = 127.0.0.1\n\
             a1.sinks.k1.port = {cport}\n\
             a1.sinks.k1.channel = c1\n",
            b = broker.bootstrap(),
            g = topic_name("flume-group"),
            cport = capture.port,
        );
        let mut flume = FlumeAgent::start(dir.path(), &format!("src-{avro}"), &flume_props);
        flume.poll("Flume's source delivering every record", |_| {
            (capture.len() >= sent.len()).then_some(())
        });
        flume.stop();
        let got = capture.events();
        // What Flume's source adds to every event (when the event does not carry them).
        let added = ["topic", "partition", "offset", "timestamp"];
        let view = |e: &Event| -> (Vec<u8>, BTreeMap<String, String>) {
            let h = e
                .headers()
                .iter()
                .filter(|(k, _)| !added.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            (e.body().to_vec(), h)
        };
        let mut want: Vec<_> = sent.iter().map(view).collect();
        if !avro {
            // Without the Avro encoding only the key and the header.* headers travel.
            for (_, h) in &mut want {
                h.remove("n");
            }
        }
        let mut have: Vec<_> = got.iter().map(view).collect();
        want.sort();
        have.sort();
        assert_eq!(have, want, "useFlumeEventFormat = {avro}");
        capture.close();
    }
}
