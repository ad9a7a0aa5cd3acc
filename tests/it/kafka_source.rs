//! The kafka source against a real broker (`kafka_broker`), run as `flumen agent`: every
//! record of a clean run delivered once with the headers Flume 1.11 sets, topic lists and
//! patterns, `useFlumeEventFormat`, records written by Apache Flume 1.11's own Kafka sink, no
//! loss across kill -9 (offsets committed only behind the channel), none skipped across a
//! rebalance, and the failures an operator meets (topic missing, brokers unreachable, not
//! authorized) each reported in one clear line with the source backing off.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use flumen::avro::protocol::encode_flume_event;
use flumen::event::{Event, Headers};

use crate::agent_proc::{
    complete_lines, file_channel_to_file_roll, free_port, json, newline_count, start_monitored,
    AgentProcess,
};
use crate::avro_capture::Capture;
use crate::flume_agent::FlumeAgent;
use crate::kafka_broker::{topic_name, KafkaBroker, Record};

const DEADLINE: Duration = Duration::from_secs(120);

/// Source `r1` lines: kafka on `bootstrap`, reading `topics_line` (a full `kafka.topics...`
/// line) as group `group` from the earliest offset, small batches.
fn source_lines(
    name: &str,
    bootstrap: &str,
    topics_line: &str,
    group: &str,
    extra: &str,
) -> String {
    format!(
        "a1.sources.{name}.type = kafka\n\
         a1.sources.{name}.kafka.bootstrap.servers = {bootstrap}\n\
         a1.sources.{name}.{topics_line}\n\
         a1.sources.{name}.kafka.consumer.group.id = {group}\n\
         a1.sources.{name}.kafka.consumer.auto.offset.reset = earliest\n\
         a1.sources.{name}.batchSize = 200\n\
         a1.sources.{name}.batchDurationMillis = 200\n\
         {extra}"
    )
}

/// One kafka source `r1` -> memory channel -> avro sink into `capture`.
fn to_capture(source: &str, capture: &Capture) -> String {
    format!(
        "a1.sources = r1\n\
         a1.channels = c1\n\
         a1.sinks = k1\n\
         {source}\
         a1.sources.r1.channels = c1\n\
         a1.channels.c1.type = memory\n\
         a1.channels.c1.capacity = 100000\n\
         a1.channels.c1.transactionCapacity = 1000\n\
         a1.sinks.k1.type = avro\n\
         a1.sinks.k1.hostname = 127.0.0.1\n\
         a1.sinks.k1.port = {port}\n\
         a1.sinks.k1.batch-size = 100\n\
         a1.sinks.k1.channel = c1\n",
        port = capture.port
    )
}

fn start(dir: &Path, tag: &str, props: &str) -> AgentProcess {
    let conf = dir.join(format!("{tag}.properties"));
    std::fs::write(&conf, props).expect("write config");
    AgentProcess::start(dir, &conf, "a1", tag)
}

fn wait_captured(agent: &mut AgentProcess, capture: &Capture, n: usize) {
    agent.poll(&format!("waiting for {n} events at the collector"), |_| {
        (capture.len() >= n).then_some(())
    });
}

/// Each partition's end offset, from the records read back.
fn end_offsets(records: &[Record]) -> Vec<(i32, Option<i64>)> {
    let mut ends: BTreeMap<i32, i64> = BTreeMap::new();
    for r in records {
        let e = ends.entry(r.partition).or_insert(0);
        *e = (*e).max(r.offset + 1);
    }
    ends.into_iter().map(|(p, o)| (p, Some(o))).collect()
}

/// Waits until group `group` has committed exactly `want` on `topic`.
fn wait_committed(
    agent: &mut AgentProcess,
    broker: &KafkaBroker,
    group: &str,
    topic: &str,
    want: &[(i32, Option<i64>)],
) {
    let mut last = Vec::new();
    let end = Instant::now() + DEADLINE;
    loop {
        let mut got = broker.committed(group, topic);
        got.sort();
        got.retain(|(p, _)| want.iter().any(|(w, _)| w == p));
        if got == want {
            return;
        }
        agent.assert_running("waiting for the committed offsets");
        assert!(
            Instant::now() < end,
            "group {group} committed {last:?} on {topic}, want the end offsets {want:?}:\n{}",
            agent.log()
        );
        last = got;
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn header<'a>(e: &'a Event, k: &str) -> &'a str {
    e.header(k)
        .unwrap_or_else(|| panic!("header `{k}` missing in {e:?}"))
}

/// Matches each event to its record by the `partition`/`offset` headers and checks the
/// headers Flume sets; returns how often each record arrived.
fn check_against(events: &[Event], records: &[Record], topic: &str) -> BTreeMap<(i32, i64), usize> {
    let by_pos: BTreeMap<(i32, i64), &Record> = records
        .iter()
        .map(|r| ((r.partition, r.offset), r))
        .collect();
    let mut seen = BTreeMap::new();
    for e in events {
        let p: i32 = header(e, "partition").parse().expect("partition header");
        let o: i64 = header(e, "offset").parse().expect("offset header");
        let r = by_pos
            .get(&(p, o))
            .unwrap_or_else(|| panic!("no record at {p}/{o} for {e:?}"));
        assert_eq!(e.body().as_ref(), r.value.as_slice(), "body of {p}/{o}");
        assert_eq!(header(e, "topic"), topic, "{e:?}");
        assert_eq!(
            header(e, "timestamp"),
            r.timestamp.expect("a record timestamp").to_string(),
            "{e:?}"
        );
        match &r.key {
            Some(k) => assert_eq!(header(e, "key"), String::from_utf8_lossy(k), "{e:?}"),
            None => assert_eq!(e.header("key"), None, "{e:?}"),
        }
        *seen.entry((p, o)).or_insert(0) += 1;
    }
    seen
}

#[test]
fn every_record_arrives_once_with_the_headers_flume_sets() {
    let broker = KafkaBroker::shared();
    let topic = topic_name("src-once");
    broker.create_topic(&topic, 3);
    let keys: Vec<String> = (0..300).map(|i| format!("key-{i}")).collect();
    let values: Vec<String> = (0..300).map(|i| format!("value-{i}")).collect();
    let records: Vec<(Option<&[u8]>, &[u8])> = (0..300)
        .map(|i| {
            let key = (i % 2 == 0).then(|| keys[i].as_bytes());
            (key, values[i].as_bytes())
        })
        .collect();
    broker.produce(&topic, &records);
    let written = broker.read_all(&topic, 300, DEADLINE);

    let dir = tempfile::tempdir().expect("tempdir");
    let capture = Capture::start();
    let group = topic_name("g-once");
    let src = source_lines(
        "r1",
        &broker.bootstrap(),
        &format!("kafka.topics = {topic}"),
        &group,
        "",
    );
    let mut agent = start(dir.path(), "once", &to_capture(&src, &capture));
    wait_captured(&mut agent, &capture, 300);
    wait_committed(&mut agent, broker, &group, &topic, &end_offsets(&written));
    let (st, log) = agent.terminate();
    assert!(st.success(), "{log}");
    capture.close();
    let seen = check_against(&capture.events(), &written, &topic);
    assert_eq!(seen.len(), 300, "every record delivered");
    let dups: usize = seen.values().map(|n| n - 1).sum();
    assert_eq!(dups, 0, "a clean run delivers each record once");
}

#[test]
fn topic_lists_and_patterns_choose_the_topics_read() {
    let broker = KafkaBroker::shared();
    let base = topic_name("src-sub");
    let (a, b, c) = (
        format!("{base}-a"),
        format!("{base}-b"),
        format!("{base}-c"),
    );
    for t in [&a, &b, &c] {
        broker.create_topic(t, 1);
        broker.produce(t, &[(None, t.as_bytes())]);
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let (cap1, cap2) = (Capture::start(), Capture::start());
    let props = format!(
        "a1.sources = r1 r2\n\
         a1.channels = c1 c2\n\
         a1.sinks = k1 k2\n\
         {r1}{r2}\
         a1.sources.r1.channels = c1\n\
         a1.sources.r2.channels = c2\n\
         a1.channels.c1.type = memory\n\
         a1.channels.c1.capacity = 1000\n\
         a1.channels.c1.transactionCapacity = 1000\n\
         a1.channels.c2.type = memory\n\
         a1.channels.c2.capacity = 1000\n\
         a1.channels.c2.transactionCapacity = 1000\n\
         a1.sinks.k1.type = avro\n\
         a1.sinks.k1.hostname = 127.0.0.1\n\
         a1.sinks.k1.port = {p1}\n\
         a1.sinks.k1.channel = c1\n\
         a1.sinks.k2.type = avro\n\
         a1.sinks.k2.hostname = 127.0.0.1\n\
         a1.sinks.k2.port = {p2}\n\
         a1.sinks.k2.channel = c2\n",
        r1 = source_lines(
            "r1",
            &broker.bootstrap(),
            &format!("kafka.topics = {a} , {b}"),
            &topic_name("g-list"),
            ""
        ),
        r2 = source_lines(
            "r2",
            &broker.bootstrap(),
            &format!("kafka.topics.regex = {base}-(a|c)"),
            &topic_name("g-regex"),
            ""
        ),
        p1 = cap1.port,
        p2 = cap2.port,
    );
    let mut agent = start(dir.path(), "sub", &props);
    wait_captured(&mut agent, &cap1, 2);
    wait_captured(&mut agent, &cap2, 2);
    let (st, log) = agent.terminate();
    assert!(st.success(), "{log}");
    let topics = |cap: &Capture| -> BTreeSet<String> {
        cap.events()
            .iter()
            .map(|e| {
                assert_eq!(header(e, "topic").as_bytes(), e.body().as_ref());
                header(e, "topic").to_string()
            })
            .collect()
    };
    assert_eq!(topics(&cap1), BTreeSet::from([a.clone(), b]));
    assert_eq!(topics(&cap2), BTreeSet::from([a, c]));
}

#[test]
fn flume_event_format_carries_headers_and_a_bad_record_is_skipped_and_reported() {
    let broker = KafkaBroker::shared();
    let topic = topic_name("src-avro");
    broker.create_topic(&topic, 1);
    let mut values = Vec::new();
    for i in 0..20 {
        let mut h = Headers::new();
        h.insert("origin".into(), format!("o-{i}"));
        if i == 3 {
            // Flume keeps the headers an event already has.
            h.insert("timestamp".into(), "12345".into());
            h.insert("topic".into(), "from-the-event".into());
        }
        let mut v = Vec::new();
        encode_flume_event(&mut v, &Event::with_headers(h, format!("body-{i}")));
        values.push(v);
        if i == 10 {
            values.push(b"\xff\xff\xff not an avro event".to_vec());
        }
    }
    let recs: Vec<(Option<&[u8]>, &[u8])> = values
        .iter()
        .enumerate()
        .map(|(i, v)| ((i == 5).then_some(&b"k5"[..]), v.as_slice()))
        .collect();
    broker.produce(&topic, &recs);
    let written = broker.read_all(&topic, 21, DEADLINE);

    let dir = tempfile::tempdir().expect("tempdir");
    let capture = Capture::start();
    let group = topic_name("g-avro");
    let src = source_lines(
        "r1",
        &broker.bootstrap(),
        &format!("kafka.topics = {topic}"),
        &group,
        "a1.sources.r1.useFlumeEventFormat = true\n",
    );
    let mut agent = start(dir.path(), "avro", &to_capture(&src, &capture));
    wait_captured(&mut agent, &capture, 20);
    // The bad record is not read again and again: the group's offset moves past it.
    wait_committed(&mut agent, broker, &group, &topic, &end_offsets(&written));
    let (_, log) = agent.terminate();
    assert!(
        log.contains(&format!("record {topic}[0]@11 is skipped")) && log.contains("AvroFlumeEvent"),
        "{log}"
    );
    let events = capture.events();
    assert_eq!(events.len(), 20, "{events:?}");
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.body().as_ref(), format!("body-{i}").as_bytes());
        assert_eq!(header(e, "origin"), format!("o-{i}"));
        let offset = if i > 10 { i + 1 } else { i };
        assert_eq!(header(e, "offset"), offset.to_string());
        assert_eq!(header(e, "partition"), "0");
        if i == 3 {
            assert_eq!(header(e, "timestamp"), "12345");
            assert_eq!(header(e, "topic"), "from-the-event");
        } else {
            assert_eq!(header(e, "topic"), topic);
            assert_eq!(
                header(e, "timestamp"),
                written[offset].timestamp.expect("timestamp").to_string()
            );
        }
        assert_eq!(e.header("key"), (i == 5).then_some("k5"));
    }
}

/// Apache Flume 1.11's own KafkaSink writes `n` events (Flume's seq bodies, with a static
/// `origin` header and a `key` header that becomes the record key) to `topic`.
fn flume_writes(dir: &Path, broker: &KafkaBroker, topic: &str, n: usize, flume_format: bool) {
    let props = format!(
        "a1.sources = r1\n\
         a1.channels = c1\n\
         a1.sinks = k1\n\
         a1.sources.r1.type = seq\n\
         a1.sources.r1.totalEvents = {n}\n\
         a1.sources.r1.batchSize = 50\n\
         a1.sources.r1.channels = c1\n\
         a1.sources.r1.interceptors = i1 i2\n\
         a1.sources.r1.interceptors.i1.type = static\n\
         a1.sources.r1.interceptors.i1.key = origin\n\
         a1.sources.r1.interceptors.i1.value = flume\n\
         a1.sources.r1.interceptors.i2.type = static\n\
         a1.sources.r1.interceptors.i2.key = key\n\
         a1.sources.r1.interceptors.i2.value = the-key\n\
         a1.channels.c1.type = memory\n\
         a1.channels.c1.capacity = 10000\n\
         a1.channels.c1.transactionCapacity = 100\n\
         a1.sinks.k1.type = org.apache.flume.sink.kafka.KafkaSink\n\
         a1.sinks.k1.kafka.bootstrap.servers = {b}\n\
         a1.sinks.k1.kafka.topic = {topic}\n\
         a1.sinks.k1.kafka.producer.acks = all\n\
         a1.sinks.k1.flumeBatchSize = 50\n\
         a1.sinks.k1.useFlumeEventFormat = {flume_format}\n\
         a1.sinks.k1.channel = c1\n",
        b = broker.bootstrap()
    );
    let mut flume = FlumeAgent::start(dir, "writer", &props);
    flume.wait_ready(&["SINK.k1"], None);
    flume.poll(&format!("waiting for Flume to send {n} events"), |f| {
        (f.try_counter("SINK.k1", "EventDrainSuccessCount")? >= n as u64).then_some(())
    });
    flume.stop();
}

fn flume_interop(flume_format: bool) {
    let broker = KafkaBroker::shared();
    let topic = topic_name("src-flume");
    broker.create_topic(&topic, 2);
    let dir = tempfile::tempdir().expect("tempdir");
    flume_writes(dir.path(), broker, &topic, 200, flume_format);
    let written = broker.read_all(&topic, 200, DEADLINE);

    let capture = Capture::start();
    let extra = format!("a1.sources.r1.useFlumeEventFormat = {flume_format}\n");
    let src = source_lines(
        "r1",
        &broker.bootstrap(),
        &format!("kafka.topics = {topic}"),
        &topic_name("g-flume"),
        &extra,
    );
    let mut agent = start(dir.path(), "reader", &to_capture(&src, &capture));
    wait_captured(&mut agent, &capture, 200);
    let (st, log) = agent.terminate();
    assert!(st.success(), "{log}");
    capture.close();
    let events = capture.events();
    let mut bodies = BTreeSet::new();
    for e in &events {
        bodies.insert(String::from_utf8_lossy(e.body()).into_owned());
        // The record key Flume's sink took from the `key` header comes back as `key`.
        assert_eq!(header(e, "key"), "the-key", "{e:?}");
        assert_eq!(
            e.header("origin"),
            flume_format.then_some("flume"),
            "headers travel only in Flume's event format: {e:?}"
        );
    }
    if !flume_format {
        check_against(&events, &written, &topic);
    }
    let want: BTreeSet<String> = (0..200).map(|i| i.to_string()).collect();
    assert_eq!(bodies, want);
    assert_eq!(events.len(), 200, "each once");
}

#[test]
fn records_from_flumes_kafka_sink_arrive_as_flume_sent_them() {
    flume_interop(false);
}

#[test]
fn flume_event_format_records_from_flumes_kafka_sink_keep_their_headers() {
    flume_interop(true);
}

/// Source `r1` (kafka) -> file channel -> file_roll into `dir/out`.
fn to_file_roll(dir: &Path, bootstrap: &str, topic: &str, group: &str) -> String {
    format!(
        "a1.sources = r1\n\
         a1.channels = c1\n\
         a1.sinks = k1\n\
         {src}\
         a1.sources.r1.channels = c1\n\
         {tail}",
        src = source_lines(
            "r1",
            bootstrap,
            &format!("kafka.topics = {topic}"),
            group,
            ""
        ),
        tail = file_channel_to_file_roll(dir, 500),
    )
}

fn produce_numbered(broker: &KafkaBroker, topic: &str, from: usize, to: usize) {
    let values: Vec<String> = (from..to).map(|i| format!("rec-{i:07}")).collect();
    let recs: Vec<(Option<&[u8]>, &[u8])> = values.iter().map(|v| (None, v.as_bytes())).collect();
    broker.produce(topic, &recs);
}

/// Records `0..n` missing from `lines`, and the duplicates.
fn missing_and_dups(lines: &BTreeMap<String, usize>, n: usize) -> (Vec<usize>, usize) {
    let missing = (0..n)
        .filter(|i| !lines.contains_key(&format!("rec-{i:07}")))
        .collect();
    let dups = lines.values().map(|c| c - 1).sum();
    (missing, dups)
}

#[test]
fn kill_9_mid_stream_loses_no_record_and_offsets_end_at_the_topics_end() {
    let broker = KafkaBroker::shared();
    let topic = topic_name("src-kill");
    broker.create_topic(&topic, 2);
    let n = 30_000;
    produce_numbered(broker, &topic, 0, n);
    let written = broker.read_all(&topic, n, DEADLINE);
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out");
    let group = topic_name("g-kill");
    let props = to_file_roll(dir.path(), &broker.bootstrap(), &topic, &group);
    let mut first = start(dir.path(), "first", &props);
    first.wait_for("waiting for a part of the records", |_| {
        newline_count(&out) >= 2000
    });
    let (_, log) = first.kill_9();
    let before = newline_count(&out);
    assert!(
        before < n,
        "the kill came too late to test anything:\n{log}"
    );

    let mut second = start(dir.path(), "second", &props);
    second.wait_for("waiting for every record after the restart", |_| {
        missing_and_dups(&complete_lines(&out), n).0.is_empty()
    });
    wait_committed(&mut second, broker, &group, &topic, &end_offsets(&written));
    let (st, log) = second.terminate();
    assert!(st.success(), "{log}");
    let (missing, dups) = missing_and_dups(&complete_lines(&out), n);
    assert!(
        missing.is_empty(),
        "{} records lost ({dups} duplicates)",
        missing.len()
    );
}

#[test]
fn a_rebalance_skips_no_record() {
    let broker = KafkaBroker::shared();
    let topic = topic_name("src-rebalance");
    broker.create_topic(&topic, 4);
    let group = topic_name("g-rebalance");
    let produced = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let producer = {
        let (topic, produced, stop) = (topic.clone(), Arc::clone(&produced), Arc::clone(&stop));
        std::thread::spawn(move || {
            let broker = KafkaBroker::shared();
            while !stop.load(Ordering::Acquire) {
                let from = produced.load(Ordering::Acquire);
                produce_numbered(broker, &topic, from, from + 200);
                produced.store(from + 200, Ordering::Release);
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let (da, db) = (
        tempfile::tempdir().expect("tempdir"),
        tempfile::tempdir().expect("tempdir"),
    );
    let (out_a, out_b) = (da.path().join("out"), db.path().join("out"));
    let mut a = start(
        da.path(),
        "a",
        &to_file_roll(da.path(), &broker.bootstrap(), &topic, &group),
    );
    a.wait_for("waiting for agent a to read", |_| newline_count(&out_a) > 0);
    let mut b = start(
        db.path(),
        "b",
        &to_file_roll(db.path(), &broker.bootstrap(), &topic, &group),
    );
    b.wait_for("waiting for agent b to get partitions", |_| {
        newline_count(&out_b) > 0
    });
    let a_at_stop = newline_count(&out_a);
    let (st, log_a) = a.terminate();
    assert!(st.success(), "{log_a}");
    let b_at_stop = newline_count(&out_b);
    b.wait_for("waiting for agent b to take a's partitions over", |_| {
        newline_count(&out_b) > b_at_stop + 1000
    });
    stop.store(true, Ordering::Release);
    producer.join().expect("producer");
    let n = produced.load(Ordering::Acquire);
    let merged = |_: &AgentProcess| {
        let mut all = complete_lines(&out_a);
        for (l, c) in complete_lines(&out_b) {
            *all.entry(l).or_insert(0) += c;
        }
        all
    };
    b.wait_for("waiting for every record across both agents", |b| {
        missing_and_dups(&merged(b), n).0.is_empty()
    });
    let (missing, dups) = missing_and_dups(&merged(&b), n);
    let (_, log_b) = b.terminate();
    assert!(
        missing.is_empty(),
        "{} of {n} records skipped ({dups} duplicates); a had {a_at_stop} lines at its stop\n{log_a}\n{log_b}",
        missing.len()
    );
    assert!(
        log_b.contains("partitions assigned") && log_a.contains("partitions revoked"),
        "{log_a}\n{log_b}"
    );
    eprintln!("rebalance: {n} records, {dups} duplicates");
}

#[test]
fn a_missing_topic_is_reported_and_read_once_it_exists() {
    let broker = KafkaBroker::shared();
    let topic = topic_name("src-missing");
    let dir = tempfile::tempdir().expect("tempdir");
    let capture = Capture::start();
    let src = source_lines(
        "r1",
        &broker.bootstrap(),
        &format!("kafka.topics = {topic}"),
        &topic_name("g-missing"),
        "a1.sources.r1.kafka.consumer.topic.metadata.refresh.interval.ms = 1000\n",
    );
    let mut agent = start(dir.path(), "missing", &to_capture(&src, &capture));
    agent.wait_for("waiting for the missing topic's report", |a| {
        a.log().contains(&format!("topic `{topic}` does not exist"))
    });
    broker.create_topic(&topic, 1);
    broker.produce(&topic, &[(None, b"late")]);
    wait_captured(&mut agent, &capture, 1);
    let (_, log) = agent.terminate();
    let reports = log.matches("does not exist").count();
    assert_eq!(
        reports, 1,
        "one line per episode, not one per retry:\n{log}"
    );
}

#[test]
fn unreachable_brokers_are_reported_once_and_stop_is_prompt() {
    let dir = tempfile::tempdir().expect("tempdir");
    let capture = Capture::start();
    let bootstrap = format!("127.0.0.1:{}", free_port());
    let src = source_lines("r1", &bootstrap, "kafka.topics = nowhere", "g", "");
    let mut agent = start(dir.path(), "down", &to_capture(&src, &capture));
    agent.wait_for("waiting for the unreachable brokers' report", |a| {
        a.log()
            .contains(&format!("cannot reach the Kafka brokers {bootstrap}"))
    });
    let asked = Instant::now();
    let (st, log) = agent.terminate();
    assert!(st.success(), "{log}");
    assert!(
        asked.elapsed() < Duration::from_secs(10),
        "stopping took {:?}",
        asked.elapsed()
    );
    assert_eq!(log.matches("cannot reach").count(), 1, "{log}");
    assert!(log.contains("retrying with backoff"), "{log}");
}

#[test]
fn an_unauthorized_consumer_is_reported_with_what_to_grant() {
    let broker = KafkaBroker::shared();
    let topic = topic_name("src-acl");
    broker.create_topic(&topic, 1);
    let dir = tempfile::tempdir().expect("tempdir");
    let capture = Capture::start();
    let src = source_lines(
        "r1",
        &broker.sasl_bootstrap(),
        &format!("kafka.topics = {topic}"),
        &topic_name("g-acl"),
        "a1.sources.r1.kafka.consumer.security.protocol = SASL_PLAINTEXT\n\
         a1.sources.r1.kafka.consumer.sasl.mechanism = PLAIN\n\
         a1.sources.r1.kafka.consumer.sasl.jaas.config = org.apache.kafka.common.security.plain.PlainLoginModule required username=\"alice\" password=\"alice-secret\";\n",
    );
    let mut agent = start(dir.path(), "acl", &to_capture(&src, &capture));
    agent.wait_for("waiting for the authorization failure's report", |a| {
        a.log().contains("not authorized")
    });
    let (st, log) = agent.terminate();
    assert!(st.success(), "{log}");
    assert!(log.contains(&broker.sasl_bootstrap()), "{log}");
    assert_eq!(capture.len(), 0);
}

#[test]
fn a_batch_the_channel_refuses_is_not_committed_and_is_read_again() {
    let broker = KafkaBroker::shared();
    let topic = topic_name("src-refused");
    broker.create_topic(&topic, 1);
    let big = vec![b'x'; 5000];
    broker.produce(&topic, &[(None, b"small"), (None, big.as_slice())]);
    let dir = tempfile::tempdir().expect("tempdir");
    let capture = Capture::start();
    let group = topic_name("g-refused");
    let src = source_lines(
        "r1",
        &broker.bootstrap(),
        &format!("kafka.topics = {topic}"),
        &group,
        "a1.sources.r1.backoffSleepIncrement = 50\n\
         a1.sources.r1.maxBackoffSleep = 100\n",
    );
    // A channel whose byteCapacity the batch can never fit: a refusal retrying cannot cure.
    let props = to_capture(&src, &capture).replace(
        "a1.channels.c1.type = memory\n",
        "a1.channels.c1.type = memory\na1.channels.c1.byteCapacity = 2000\n",
    );
    let (mut agent, port) = start_monitored(dir.path(), &props, "refused", &[]);
    // Refused, read again (the seek back) and refused again: the source's channel failures
    // grow while nothing is committed.
    agent.poll("waiting for the batch to be refused three times", |a| {
        let m = json(a, port);
        let fails = &m["SOURCE.r1"]["ChannelWriteFail"];
        let fails = fails
            .as_u64()
            .or_else(|| fails.as_str().and_then(|v| v.parse().ok()))?;
        (fails >= 3).then_some(())
    });
    let committed = broker.committed(&group, &topic);
    let (_, log) = agent.terminate();
    assert_eq!(
        log.matches("the channel refused a batch").count(),
        1,
        "reported once per episode:\n{log}"
    );
    assert_eq!(committed, vec![(0, None)], "nothing committed:\n{log}");
    assert_eq!(capture.len(), 0);
    assert!(log.contains("will be read again"), "{log}");
}
