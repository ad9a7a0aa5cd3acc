//! `flumen agent` end to end, as an operator runs it: netcat -> file channel -> file_roll,
//! lines acknowledged with `OK`, SIGTERM, restart, more lines, SIGTERM; every acknowledged
//! line must appear in the output files exactly once. Also, through the library: a source's
//! interceptors set their headers on every event, in every channel it puts into.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::agent_proc::{
    free_port, netcat_file_roll_config as write_config, output_counts, AgentProcess, DEADLINE,
};

/// Sends `lines` over one connection, reading an `OK` after each.
fn send_lines(stream: TcpStream, lines: impl Iterator<Item = String>) {
    stream
        .set_read_timeout(Some(DEADLINE))
        .expect("set read timeout");
    let mut reader = BufReader::new(stream.try_clone().expect("clone stream"));
    let mut w = stream;
    for line in lines {
        w.write_all(format!("{line}\n").as_bytes()).expect("send");
        let mut reply = String::new();
        reader.read_line(&mut reply).expect("read the ack");
        assert_eq!(reply, "OK\n", "ack for {line}");
    }
}

fn line(i: usize) -> String {
    format!("event-{i:04}")
}

#[test]
fn netcat_to_file_roll_survives_restart_exactly_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let conf = write_config(dir.path(), port);
    let out = dir.path().join("out");

    let mut run = AgentProcess::start(dir.path(), &conf, "a1", "1");
    let stream = run.connect(port);
    send_lines(stream, (0..200).map(line));
    let (st, log) = run.terminate();
    assert_eq!(st.code(), Some(0), "first run:\n{log}");

    let mut run = AgentProcess::start(dir.path(), &conf, "a1", "2");
    let stream = run.connect(port);
    send_lines(stream, (200..400).map(line));
    // Let the sink drain everything before stopping (what is left would wait for a third run).
    let end = Instant::now() + DEADLINE;
    while output_counts(&out).len() < 400 {
        assert!(
            Instant::now() < end,
            "only {} distinct lines reached the output:\n{}",
            output_counts(&out).len(),
            run.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let (st, log) = run.terminate();
    assert_eq!(st.code(), Some(0), "second run:\n{log}");

    let counts = output_counts(&out);
    for i in 0..400 {
        assert_eq!(
            counts.get(&line(i)).copied(),
            Some(1),
            "{} must appear exactly once:\n{log}",
            line(i)
        );
    }
    assert_eq!(counts.len(), 400, "unexpected lines: {counts:?}");
}

/// Takes committed events from `ch` until `n` arrived, waiting on the channel (not sleeping)
/// until the deadline.
fn take_n(ch: &dyn flumen::channel::Channel, n: usize) -> Vec<flumen::Event> {
    let end = Instant::now() + DEADLINE;
    let mut got = Vec::new();
    while got.len() < n {
        let left = end.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "only {} of {n} events arrived", got.len());
        if !ch.wait_available(left) {
            continue;
        }
        let mut tx = ch.take_transaction();
        tx.take_batch(n - got.len(), &mut got).expect("take");
        tx.commit().expect("commit take");
    }
    got
}

#[test]
fn interceptors_set_headers_on_every_event_in_every_channel() {
    let text = "\
a1.sources = r1
a1.channels = c1 c2
a1.sources.r1.type = seq
a1.sources.r1.totalEvents = 25
a1.sources.r1.batchSize = 4
a1.sources.r1.channels = c1 c2
a1.sources.r1.interceptors = i1 i2 i3
a1.sources.r1.interceptors.i1.type = timestamp
a1.sources.r1.interceptors.i2.type = host
a1.sources.r1.interceptors.i2.useIP = false
a1.sources.r1.interceptors.i2.hostHeader = hostname
a1.sources.r1.interceptors.i3.type = static
a1.sources.r1.interceptors.i3.key = datacenter
a1.sources.r1.interceptors.i3.value = NEW_YORK
a1.channels.c1.type = memory
a1.channels.c2.type = memory
";
    let (cfg, warnings) =
        flumen::agent::config::parse(text, "interceptors.conf", "a1").expect("config");
    assert!(warnings.is_empty(), "{warnings:?}");
    let before = now_millis();
    let agent = flumen::agent::Agent::start(&cfg).expect("start");
    let channels = agent.channels().to_vec();
    let hostname = flumen::host::HostNames::detect().fqdn;
    for ch in &channels {
        let got = take_n(ch.as_ref(), 25);
        let bodies: Vec<String> = got
            .iter()
            .map(|e| String::from_utf8_lossy(e.body()).into_owned())
            .collect();
        let want: Vec<String> = (0..25).map(|i: u32| i.to_string()).collect();
        assert_eq!(bodies, want, "channel {}", ch.name());
        for e in &got {
            assert_eq!(e.header("datacenter"), Some("NEW_YORK"), "{e:?}");
            let ts: i64 = e
                .header("timestamp")
                .expect("timestamp header")
                .parse()
                .expect("milliseconds");
            assert!(ts >= before && ts <= now_millis(), "{ts} {e:?}");
            assert_eq!(e.header("hostname"), Some(hostname.as_str()), "{e:?}");
        }
    }
    agent.shutdown().expect("shutdown");
}

fn now_millis() -> i64 {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970");
    i64::try_from(d.as_millis()).expect("millis fit")
}

/// `remove_header` after `static` interceptors: the headers it names (by name, list and
/// pattern) are gone from every event in every channel, the others stay.
#[test]
fn remove_header_strips_the_headers_it_names_from_every_event() {
    let text = "\
a1.sources = r1
a1.channels = c1 c2
a1.sources.r1.type = seq
a1.sources.r1.totalEvents = 10
a1.sources.r1.batchSize = 5
a1.sources.r1.channels = c1 c2
a1.sources.r1.interceptors = s1 s2 s3 s4 rm
a1.sources.r1.interceptors.s1.type = static
a1.sources.r1.interceptors.s1.key = cookie
a1.sources.r1.interceptors.s2.type = static
a1.sources.r1.interceptors.s2.key = x-debug-trace
a1.sources.r1.interceptors.s3.type = static
a1.sources.r1.interceptors.s3.key = datacenter
a1.sources.r1.interceptors.s4.type = static
a1.sources.r1.interceptors.s4.key = authorization
a1.sources.r1.interceptors.rm.type = org.apache.flume.interceptor.RemoveHeaderInterceptor$Builder
a1.sources.r1.interceptors.rm.withName = authorization
a1.sources.r1.interceptors.rm.fromList = cookie, session
a1.sources.r1.interceptors.rm.matching = x-debug-.*
a1.channels.c1.type = memory
a1.channels.c2.type = memory
";
    let (cfg, warnings) =
        flumen::agent::config::parse(text, "remove_header.conf", "a1").expect("config");
    assert!(warnings.is_empty(), "{warnings:?}");
    let agent = flumen::agent::Agent::start(&cfg).expect("start");
    for ch in agent.channels().to_vec() {
        for e in take_n(ch.as_ref(), 10) {
            let names: Vec<&str> = e.headers().keys().map(String::as_str).collect();
            assert_eq!(names, ["datacenter"], "channel {}: {e:?}", ch.name());
        }
    }
    agent.shutdown().expect("shutdown");
}
