//! Interceptors and channel selectors against Apache Flume 1.11 itself: the same properties
//! file run by `flumen agent` and by Flume's own `Application`, the same events sent to each
//! (an avro source fed by the test), and every event's headers, body and channel compared.
//!
//! The file chains regex_filter, regex_extractor (with the millis serializer), search_replace,
//! static, remove_header, host, timestamp and uuid (by Flume's class name, from the morphline
//! sink's jar), then a multiplexing selector with a mapping, an optional channel and a default;
//! each channel drains through an avro sink into its own collector (`avro_capture.rs`), so what
//! reached which channel is known exactly.

use std::collections::BTreeMap;
use std::time::Duration;

use flumen::avro::blocking::{BlockingClient, Timeouts};
use flumen::event::Event;

use crate::agent_proc::{free_port, AgentProcess};
use crate::avro_capture::Capture;
use crate::flume_agent::FlumeAgent;

/// The agent, with the source port and the three collectors' ports filled in.
fn properties(port: u16, sinks: [u16; 3]) -> String {
    let mut p = format!(
        "a1.sources = r1\n\
         a1.channels = c1 c2 c3\n\
         a1.sinks = k1 k2 k3\n\
         a1.sources.r1.type = avro\n\
         a1.sources.r1.bind = 127.0.0.1\n\
         a1.sources.r1.port = {port}\n\
         a1.sources.r1.channels = c1 c2 c3\n\
         a1.sources.r1.interceptors = drop extract mask dc rm host ts id\n\
         a1.sources.r1.interceptors.drop.type = regex_filter\n\
         a1.sources.r1.interceptors.drop.regex = ^drop\n\
         a1.sources.r1.interceptors.drop.excludeEvents = true\n\
         a1.sources.r1.interceptors.extract.type = regex_extractor\n\
         a1.sources.r1.interceptors.extract.regex = ^(\\\\w+):(\\\\d+):(\\\\d{{4}}-\\\\d\\\\d-\\\\d\\\\d \\\\d\\\\d:\\\\d\\\\d)\n\
         a1.sources.r1.interceptors.extract.serializers = s1 s2 s3\n\
         a1.sources.r1.interceptors.extract.serializers.s1.name = state\n\
         a1.sources.r1.interceptors.extract.serializers.s2.name = num\n\
         a1.sources.r1.interceptors.extract.serializers.s3.type = org.apache.flume.interceptor.RegexExtractorInterceptorMillisSerializer\n\
         a1.sources.r1.interceptors.extract.serializers.s3.name = when\n\
         a1.sources.r1.interceptors.extract.serializers.s3.pattern = yyyy-MM-dd HH:mm\n\
         a1.sources.r1.interceptors.mask.type = search_replace\n\
         a1.sources.r1.interceptors.mask.searchPattern = secret=[^ ]+\n\
         a1.sources.r1.interceptors.mask.replaceString = secret=***\n\
         a1.sources.r1.interceptors.dc.type = static\n\
         a1.sources.r1.interceptors.dc.key = dc\n\
         a1.sources.r1.interceptors.dc.value = NYC\n\
         a1.sources.r1.interceptors.rm.type = remove_header\n\
         a1.sources.r1.interceptors.rm.withName = tmp\n\
         a1.sources.r1.interceptors.host.type = host\n\
         a1.sources.r1.interceptors.ts.type = timestamp\n\
         a1.sources.r1.interceptors.ts.preserveExisting = true\n\
         a1.sources.r1.interceptors.id.type = org.apache.flume.sink.solr.morphline.UUIDInterceptor$Builder\n\
         a1.sources.r1.interceptors.id.headerName = eventId\n\
         a1.sources.r1.interceptors.id.prefix = ev-\n\
         a1.sources.r1.selector.type = multiplexing\n\
         a1.sources.r1.selector.header = state\n\
         a1.sources.r1.selector.mapping.CA = c1\n\
         a1.sources.r1.selector.mapping.AZ = c2\n\
         a1.sources.r1.selector.optional.CA = c3\n\
         a1.sources.r1.selector.default = c3\n"
    );
    for (i, sink_port) in sinks.iter().enumerate() {
        let n = i + 1;
        p.push_str(&format!(
            "a1.channels.c{n}.type = memory\n\
             a1.channels.c{n}.capacity = 10000\n\
             a1.channels.c{n}.transactionCapacity = 100\n\
             a1.sinks.k{n}.type = avro\n\
             a1.sinks.k{n}.hostname = 127.0.0.1\n\
             a1.sinks.k{n}.port = {sink_port}\n\
             a1.sinks.k{n}.batch-size = 50\n\
             a1.sinks.k{n}.channel = c{n}\n"
        ));
    }
    p
}

/// The test's events: every kind of line the chain treats differently, each body unique.
fn events() -> Vec<Event> {
    let mut out = Vec::new();
    for n in 0..60 {
        let mut push = |body: String, headers: &[(&str, &str)]| {
            let mut e = Event::new(body);
            for (k, v) in headers {
                e.set_header(*k, *v);
            }
            out.push(e);
        };
        let minute = n % 60;
        push(
            format!("CA:{n}:2026-12-07 10:{minute:02} secret=abc{n} rest"),
            &[("tmp", "gone"), ("timestamp", "1000")],
        );
        push(
            format!("AZ:{n}:2026-12-07 11:{minute:02} secret=x{n}"),
            &[("dc", "overwritten")],
        );
        push(format!("drop this {n}"), &[]);
        push(format!("NY:{n}:2026-12-07 12:{minute:02} plain"), &[]);
        push(format!("no state here {n}"), &[("state", "AZ")]);
        push(format!("ca:{n}:2026-12-07 12:00 lower case"), &[]);
    }
    out
}

pub(crate) fn send_all(port: u16, events: &[Event]) {
    let timeouts = Timeouts {
        connect: Duration::from_secs(20),
        request: Duration::from_secs(20),
        connect_name: "connect",
        request_name: "request",
    };
    let mut client = BlockingClient::connect("127.0.0.1", port, &timeouts).expect("connect");
    for batch in events.chunks(40) {
        client
            .append_batch(batch, "the test's events")
            .expect("append");
    }
    client.close();
}

/// An event as compared: its body and its headers, the `timestamp` header replaced by
/// `<now>` where the interceptor set it (the two agents run at different instants).
type Seen = (String, BTreeMap<String, String>);

fn seen(events: &[Event], sent_timestamp: &BTreeMap<String, String>) -> Vec<Seen> {
    let mut out: Vec<Seen> = events
        .iter()
        .map(|e| {
            let body = String::from_utf8_lossy(e.body()).into_owned();
            let mut headers: BTreeMap<String, String> = e
                .headers()
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            if !sent_timestamp.contains_key(&body) {
                if let Some(ts) = headers.get_mut("timestamp") {
                    assert!(ts.parse::<u64>().is_ok(), "timestamp `{ts}` of `{body}`");
                    *ts = "<now>".into();
                }
            }
            // A random UUID (version 4, Java's `UUID.toString` form) after the prefix.
            if let Some(id) = headers.get_mut("eventId") {
                let uuid = id.strip_prefix("ev-").unwrap_or_default();
                let groups: Vec<usize> = uuid.split('-').map(str::len).collect();
                assert_eq!(groups, [8, 4, 4, 4, 12], "eventId `{id}` of `{body}`");
                assert!(
                    uuid.chars().all(|c| c == '-' || c.is_ascii_hexdigit())
                        && uuid.as_bytes()[14] == b'4',
                    "eventId `{id}` of `{body}`"
                );
                *id = "ev-<uuid>".into();
            }
            (body, headers)
        })
        .collect();
    // Order within a channel is compared separately; this compares contents.
    out.sort();
    out
}

#[test]
fn interceptors_and_multiplexing_match_apache_flume_event_by_event() {
    let dir = tempfile::tempdir().expect("tempdir");
    crate::flume_agent::classpath();
    let sent = events();
    let sent_timestamp: BTreeMap<String, String> = sent
        .iter()
        .filter_map(|e| {
            let body = String::from_utf8_lossy(e.body()).into_owned();
            e.header("timestamp").map(|t| (body, t.to_string()))
        })
        .collect();
    // 6 kinds x 60: CA to c1 and (optional) c3; AZ and the line whose `state` header came
    // with it to c2; NY and the lower-case `ca` lines to c3 (the default); `drop` nowhere.
    let expected = [60, 120, 180];

    let mut runs = Vec::new();
    for who in ["flumen", "flume"] {
        let captures = [Capture::start(), Capture::start(), Capture::start()];
        let port = free_port();
        let props = properties(port, [captures[0].port, captures[1].port, captures[2].port]);
        runs.push((who, port, props, captures));
    }

    let (_, flumen_port, flumen_props, flumen_caps) = &runs[0];
    let conf = dir.path().join("flumen.properties");
    std::fs::write(&conf, flumen_props).expect("write config");
    let mut flumen = AgentProcess::start(dir.path(), &conf, "a1", "flumen");
    flumen.poll("waiting for flumen's avro source", |_| {
        std::net::TcpStream::connect(("127.0.0.1", *flumen_port)).ok()
    });
    let (_, flume_port, flume_props, flume_caps) = &runs[1];
    let mut flume = FlumeAgent::start(dir.path(), "routing", flume_props);
    flume.wait_ready(&["SOURCE.r1", "SINK.k1"], Some(*flume_port));

    send_all(*flumen_port, &sent);
    send_all(*flume_port, &sent);
    let full = |caps: &[Capture; 3]| caps.iter().zip(expected).all(|(c, n)| c.len() >= n);
    flumen.poll("waiting for flumen to deliver every routed event", |_| {
        full(flumen_caps).then_some(())
    });
    flume.poll("waiting for Flume to deliver every routed event", |_| {
        full(flume_caps).then_some(())
    });
    // Both stopped, nothing more can arrive: the counts below are final, so a duplicate in
    // either shows.
    let _ = flume.stop();
    let (st, log) = flumen.terminate();
    assert_eq!(st.code(), Some(0), "{log}");

    for (i, n) in expected.iter().enumerate() {
        let ours = flumen_caps[i].events();
        let theirs = flume_caps[i].events();
        assert_eq!(ours.len(), *n, "flumen's channel c{}", i + 1);
        assert_eq!(theirs.len(), *n, "Flume's channel c{}", i + 1);
        let (ours, theirs) = (seen(&ours, &sent_timestamp), seen(&theirs, &sent_timestamp));
        for (a, b) in ours.iter().zip(&theirs) {
            assert_eq!(a, b, "channel c{}: flumen (left) and Flume (right)", i + 1);
        }
    }
    // The chain did what the file says (so both agreeing is not both doing nothing).
    let c1 = flumen_caps[0].events();
    let e = &c1[0];
    assert_eq!(e.header("state"), Some("CA"));
    assert_eq!(e.header("dc"), Some("NYC"));
    assert_eq!(e.header("tmp"), None);
    assert_eq!(e.header("timestamp"), Some("1000"));
    assert!(e.header("host").is_some());
    assert!(e.header("when").is_some_and(|w| w.parse::<i64>().is_ok()));
    assert!(String::from_utf8_lossy(e.body()).contains("secret=*** rest"));
    assert!(e.header("eventId").is_some_and(|id| id.starts_with("ev-")));
}

/// Replicating with an optional channel that fills up: c1 and c2 (required, room for every
/// event: Flume's sinks back off for seconds when they find a channel empty) drain into
/// collectors, c3 (optional, 100 events, no sink, keep-alive 0) fills after two batches of 40.
/// Both agents accept every batch, deliver every event to c1 and c2, and hold the same 80 in
/// c3: a full optional channel is logged, not a failed put.
#[test]
fn a_full_optional_channel_is_skipped_as_in_apache_flume() {
    let dir = tempfile::tempdir().expect("tempdir");
    crate::flume_agent::classpath();
    let sent: Vec<Event> = (0..200).map(|n| Event::new(format!("event {n}"))).collect();
    let props = |port: u16, k1: u16, k2: u16| {
        format!(
            "a1.sources = r1\n\
             a1.channels = c1 c2 c3\n\
             a1.sinks = k1 k2\n\
             a1.sources.r1.type = avro\n\
             a1.sources.r1.bind = 127.0.0.1\n\
             a1.sources.r1.port = {port}\n\
             a1.sources.r1.channels = c1 c2 c3\n\
             a1.sources.r1.selector.type = replicating\n\
             a1.sources.r1.selector.optional = c3\n\
             a1.channels.c1.type = memory\n\
             a1.channels.c1.capacity = 1000\n\
             a1.channels.c2.type = memory\n\
             a1.channels.c2.capacity = 1000\n\
             a1.channels.c3.type = memory\n\
             a1.channels.c3.capacity = 100\n\
             a1.channels.c3.transactionCapacity = 100\n\
             a1.channels.c3.keep-alive = 0\n\
             a1.sinks.k1.type = avro\n\
             a1.sinks.k1.hostname = 127.0.0.1\n\
             a1.sinks.k1.port = {k1}\n\
             a1.sinks.k1.channel = c1\n\
             a1.sinks.k2.type = avro\n\
             a1.sinks.k2.hostname = 127.0.0.1\n\
             a1.sinks.k2.port = {k2}\n\
             a1.sinks.k2.channel = c2\n"
        )
    };
    let ours = [Capture::start(), Capture::start()];
    let theirs = [Capture::start(), Capture::start()];
    let (our_port, their_port, monitoring) = (free_port(), free_port(), free_port());
    let conf = dir.path().join("flumen.properties");
    std::fs::write(&conf, props(our_port, ours[0].port, ours[1].port)).expect("write config");
    let mon = format!("-Dflume.monitoring.port={monitoring}");
    let mut flumen = AgentProcess::start_with(
        dir.path(),
        &conf,
        "a1",
        "flumen",
        &["-Dflume.monitoring.type=http", &mon],
    );
    flumen.poll("waiting for flumen's avro source", |_| {
        std::net::TcpStream::connect(("127.0.0.1", our_port)).ok()
    });
    let mut flume = FlumeAgent::start(
        dir.path(),
        "optional",
        &props(their_port, theirs[0].port, theirs[1].port),
    );
    flume.wait_ready(&["SOURCE.r1", "SINK.k1"], Some(their_port));

    // Every batch is acknowledged by both (send_all fails the test on a FAILED answer).
    send_all(our_port, &sent);
    send_all(their_port, &sent);
    let all = |caps: &[Capture; 2]| caps.iter().all(|c| c.len() >= sent.len());
    flumen.poll("waiting for flumen to deliver to c1 and c2", |_| {
        all(&ours).then_some(())
    });
    flume.poll("waiting for Flume to deliver to c1 and c2", |_| {
        all(&theirs).then_some(())
    });
    let bodies = |c: &Capture| {
        c.events()
            .iter()
            .map(|e| String::from_utf8_lossy(e.body()).into_owned())
            .collect::<Vec<_>>()
    };
    let expected: Vec<String> = (0..200).map(|n| format!("event {n}")).collect();
    for c in ours.iter().chain(&theirs) {
        assert_eq!(bodies(c), expected);
    }
    let ours_c3: u64 = crate::agent_proc::json(&mut flumen, monitoring)["CHANNEL.c3"]
        ["ChannelSize"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("flumen's CHANNEL.c3 ChannelSize");
    let theirs_c3 = flume.counter("CHANNEL.c3", "ChannelSize");
    assert_eq!((ours_c3, theirs_c3), (80, 80), "flumen, Flume");
    assert!(
        flumen
            .log()
            .contains("optional channel `c3` did not take a batch"),
        "{}",
        flumen.log()
    );

    let _ = flume.stop();
    let (st, log) = flumen.terminate();
    assert_eq!(st.code(), Some(0), "{log}");
}
