//! flumen's thrift source and sink against Apache Flume 1.11.0, through the `flumen agent`
//! binary, every direction:
//!
//! - The Flume SDK's `ThriftRpcClient` (`flumen.test.ThriftSend`, tests/avro) -> flumen's
//!   thrift source -> memory channel -> avro sink -> the test's collector: every event arrives
//!   once with its headers (UTF-8 names and values) and its binary body (bytes that are not
//!   UTF-8), in the compact protocol (Flume's default) and the binary one, and over TLS (a
//!   PKCS#12 keystore on flumen's side, Flume's client trusting it through a truststore).
//! - flumen's seq source -> thrift sink -> Flume's thrift source -> memory channel -> Flume's
//!   avro sink -> the collector: every number once, with the header a static interceptor set;
//!   also over TLS (Flume's source with a PKCS#12 keystore, flumen's sink with a truststore).
//! - Flume's seq source -> Flume's thrift sink -> flumen's thrift source -> avro sink -> the
//!   collector: every number once, with its header, in both protocols.
//! - Bad input on flumen's thrift source (an oversized frame length, an HTTP request, a frame
//!   of garbage, a frame cut short): each connection closed, each peer named once in the log,
//!   and the agent keeps serving Flume's client.
//!
//! Every wait is a condition with a deadline; a failure shows the agents' logs.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use flumen::event::Event;

use crate::agent_proc::{free_port, AgentProcess, DEADLINE, POLL};
use crate::avro_capture::Capture;
use crate::avro_tls::{make_certs, PASSWORD};
use crate::flume_agent::FlumeAgent;

/// Events per test: a few seconds of transfer with a debug flumen and a JVM on 2 cores.
const EVENTS: usize = 20_000;

/// A `flumen agent` killed when the test ends early, so no agent outlives its test.
struct Flumen(Option<AgentProcess>);

impl Flumen {
    fn start(dir: &Path, properties: &str) -> Flumen {
        let conf = dir.join("flumen.properties");
        std::fs::write(&conf, properties).expect("write flumen's config");
        Flumen(Some(AgentProcess::start(dir, &conf, "a1", "flumen")))
    }

    fn get(&mut self) -> &mut AgentProcess {
        self.0.as_mut().expect("flumen runs")
    }

    fn terminate(mut self) -> (std::process::ExitStatus, String) {
        self.0.take().expect("flumen runs").terminate()
    }
}

impl Drop for Flumen {
    fn drop(&mut self) {
        if let Some(a) = self.0.as_mut() {
            let _ = a.child.kill();
            let _ = a.child.wait();
        }
    }
}

/// flumen's agent `a1`: thrift source on `port` (`source_extra` keys) -> memory channel ->
/// avro sink to the collector on `capture`.
fn thrift_to_capture(port: u16, capture: u16, source_extra: &str) -> String {
    format!(
        "a1.sources = r1\n\
         a1.channels = c1\n\
         a1.sinks = k1\n\
         a1.sources.r1.type = thrift\n\
         a1.sources.r1.bind = 127.0.0.1\n\
         a1.sources.r1.port = {port}\n\
         {source_extra}\
         a1.sources.r1.channels = c1\n\
         a1.channels.c1.type = memory\n\
         a1.channels.c1.capacity = 100000\n\
         a1.channels.c1.transactionCapacity = 1000\n\
         a1.sinks.k1.type = avro\n\
         a1.sinks.k1.hostname = 127.0.0.1\n\
         a1.sinks.k1.port = {capture}\n\
         a1.sinks.k1.batch-size = 100\n\
         a1.sinks.k1.channel = c1\n"
    )
}

/// Runs `ThriftSend` to completion; returns (success, stdout, stderr).
fn thrift_send(port: u16, first: usize, count: usize, protocol: &str) -> (bool, String, String) {
    thrift_send_with(port, first, count, protocol, &[])
}

/// [`thrift_send`] with more `-D` options (TLS).
fn thrift_send_with(
    port: u16,
    first: usize,
    count: usize,
    protocol: &str,
    props: &[String],
) -> (bool, String, String) {
    let out = Command::new("java")
        .args(["-Xmx256m", "-XX:+UseSerialGC"])
        .arg(format!("-Dflumen.protocol={protocol}"))
        .args(props)
        .args(["-cp", crate::flume_agent::classpath()])
        .arg("flumen.test.ThriftSend")
        .args([
            "127.0.0.1".to_string(),
            port.to_string(),
            count.to_string(),
            "100".to_string(),
            first.to_string(),
        ])
        .output()
        .expect("run java");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Waits until the collector holds `n` events while flumen runs.
fn wait_captured(capture: &Capture, n: usize, flumen: &mut AgentProcess, what: &str) {
    flumen.wait_for(what, |_| capture.len() >= n);
}

/// The body `ThriftSend` gives event `i`: its decimal, then bytes that are not UTF-8.
fn send_body(i: usize) -> Vec<u8> {
    let mut b = i.to_string().into_bytes();
    b.extend_from_slice(&[0x00, 0xff, 0xfe, 0x80]);
    b
}

/// Checks `events` are exactly `first..first + n` as ThriftSend sent them, once each.
fn assert_thrift_send_events(events: &[Event], first: usize, n: usize) {
    let mut seen = BTreeMap::new();
    for e in events {
        let i: usize = e
            .header("seq")
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no seq header: {e:?}"));
        assert_eq!(e.body().as_ref(), send_body(i).as_slice(), "{e:?}");
        let want: BTreeMap<String, String> = [
            ("seq".to_string(), i.to_string()),
            ("k".to_string(), "v".to_string()),
            ("ünï".to_string(), format!("é€ {i}")),
        ]
        .into_iter()
        .collect();
        assert_eq!(e.headers(), &want, "{e:?}");
        *seen.entry(i).or_insert(0usize) += 1;
    }
    let want: BTreeMap<usize, usize> = (first..first + n).map(|i| (i, 1)).collect();
    assert!(
        seen == want,
        "{} distinct events of {n}; duplicates {:?}; missing {:?}",
        seen.len(),
        seen.iter()
            .filter(|(_, c)| **c > 1)
            .take(10)
            .collect::<Vec<_>>(),
        want.keys()
            .filter(|k| !seen.contains_key(k))
            .take(10)
            .collect::<Vec<_>>()
    );
}

/// Checks the bodies of `events` are "0".."n-1" once each, each with header `k = v`.
fn assert_numbers_once(events: &[Event], n: usize) {
    let mut seen = BTreeMap::new();
    for e in events {
        assert_eq!(e.header("k"), Some("v"), "{e:?}");
        *seen
            .entry(String::from_utf8_lossy(e.body()).into_owned())
            .or_insert(0usize) += 1;
    }
    let want: BTreeMap<String, usize> = (0..n).map(|i| (i.to_string(), 1)).collect();
    assert!(
        seen == want,
        "{} distinct bodies of {n}; duplicates {:?}; missing {:?}",
        seen.len(),
        seen.iter()
            .filter(|(_, c)| **c > 1)
            .take(10)
            .collect::<Vec<_>>(),
        want.keys()
            .filter(|k| !seen.contains_key(*k))
            .take(10)
            .collect::<Vec<_>>()
    );
}

fn flume_client_to_flumen(protocol: &str, ssl: bool) {
    let dir = tempfile::tempdir().expect("tempdir");
    crate::flume_agent::classpath();
    let capture = Capture::start();
    let port = free_port();
    let mut source_keys = format!("a1.sources.r1.protocol = {protocol}\n");
    let mut props = Vec::new();
    if ssl {
        let certs = make_certs(dir.path());
        source_keys.push_str(&format!(
            "a1.sources.r1.ssl = true\n\
             a1.sources.r1.keystore = {}\n\
             a1.sources.r1.keystore-password = {PASSWORD}\n\
             a1.sources.r1.keystore-type = PKCS12\n",
            certs.keystore.display()
        ));
        props = vec![
            "-Dflumen.ssl=true".to_string(),
            format!("-Dflumen.truststore={}", certs.truststore.display()),
            format!("-Dflumen.truststore-password={PASSWORD}"),
            "-Dflumen.truststore-type=PKCS12".to_string(),
        ];
    }
    let mut flumen = Flumen::start(
        dir.path(),
        &thrift_to_capture(port, capture.port, &source_keys),
    );
    drop(flumen.get().connect(port));
    let (ok, out, err) = thrift_send_with(port, 0, EVENTS, protocol, &props);
    assert!(
        ok,
        "ThriftSend failed:\n{out}\n{err}\n{}",
        flumen.get().log()
    );
    assert!(out.contains(&format!("SENT {EVENTS}")), "{out}");
    wait_captured(
        &capture,
        EVENTS,
        flumen.get(),
        "waiting for every event at the collector",
    );
    let (st, log) = flumen.terminate();
    assert_eq!(st.code(), Some(0), "{log}");
    capture.close();
    assert_thrift_send_events(&capture.events(), 0, EVENTS);
}

#[test]
fn flume_thrift_rpc_client_to_flumen_compact_every_event_with_headers_and_body() {
    flume_client_to_flumen("compact", false);
}

#[test]
fn flume_thrift_rpc_client_to_flumen_binary_every_event_with_headers_and_body() {
    flume_client_to_flumen("binary", false);
}

#[test]
fn flume_thrift_rpc_client_over_tls_to_flumen_every_event_with_headers_and_body() {
    flume_client_to_flumen("compact", true);
}

#[test]
fn flumen_thrift_sink_to_flume_thrift_source_every_event_once() {
    flumen_sink_to_flume_source(false);
}

#[test]
fn flumen_thrift_sink_over_tls_to_flume_thrift_source_every_event_once() {
    flumen_sink_to_flume_source(true);
}

fn flumen_sink_to_flume_source(ssl: bool) {
    let dir = tempfile::tempdir().expect("tempdir");
    let capture = Capture::start();
    let port = free_port();
    let (mut source_keys, mut sink_keys) = (String::new(), String::new());
    if ssl {
        let certs = make_certs(dir.path());
        source_keys = format!(
            "a1.sources.r1.ssl = true\n\
             a1.sources.r1.keystore = {}\n\
             a1.sources.r1.keystore-password = {PASSWORD}\n\
             a1.sources.r1.keystore-type = PKCS12\n",
            certs.keystore.display()
        );
        sink_keys = format!(
            "a1.sinks.k1.ssl = true\n\
             a1.sinks.k1.truststore = {}\n\
             a1.sinks.k1.truststore-password = {PASSWORD}\n\
             a1.sinks.k1.truststore-type = PKCS12\n",
            certs.truststore.display()
        );
    }
    let mut flume = FlumeAgent::start(
        dir.path(),
        "thrift",
        &format!(
            "a1.sources = r1\n\
             a1.channels = c1\n\
             a1.sinks = k1\n\
             a1.sources.r1.type = thrift\n\
             a1.sources.r1.bind = 127.0.0.1\n\
             a1.sources.r1.port = {port}\n\
             {source_keys}\
             a1.sources.r1.channels = c1\n\
             a1.channels.c1.type = memory\n\
             a1.channels.c1.capacity = 100000\n\
             a1.channels.c1.transactionCapacity = 1000\n\
             a1.sinks.k1.type = avro\n\
             a1.sinks.k1.hostname = 127.0.0.1\n\
             a1.sinks.k1.port = {cap}\n\
             a1.sinks.k1.batch-size = 100\n\
             a1.sinks.k1.channel = c1\n",
            cap = capture.port
        ),
    );
    flume.wait_ready(&["SOURCE.r1", "SINK.k1"], Some(port));
    let mut flumen = Flumen::start(
        dir.path(),
        &format!(
            "a1.sources = r1\n\
             a1.channels = c1\n\
             a1.sinks = k1\n\
             a1.sources.r1.type = seq\n\
             a1.sources.r1.totalEvents = {EVENTS}\n\
             a1.sources.r1.batchSize = 100\n\
             a1.sources.r1.channels = c1\n\
             a1.sources.r1.interceptors = i1\n\
             a1.sources.r1.interceptors.i1.type = static\n\
             a1.sources.r1.interceptors.i1.key = k\n\
             a1.sources.r1.interceptors.i1.value = v\n\
             a1.channels.c1.type = memory\n\
             a1.channels.c1.capacity = 100000\n\
             a1.channels.c1.transactionCapacity = 100\n\
             a1.sinks.k1.type = thrift\n\
             a1.sinks.k1.hostname = 127.0.0.1\n\
             a1.sinks.k1.port = {port}\n\
             a1.sinks.k1.batch-size = 100\n\
             {sink_keys}\
             a1.sinks.k1.channel = c1\n"
        ),
    );
    let end = Instant::now() + DEADLINE;
    while capture.len() < EVENTS {
        flume.assert_running("waiting for every event at the collector");
        flumen
            .get()
            .assert_running("waiting for every event at the collector");
        if Instant::now() > end {
            let log = flumen.get().log();
            flume.fail(&format!(
                "timed out: {} of {EVENTS} events at the collector; flumen's log:\n{log}",
                capture.len()
            ));
        }
        std::thread::sleep(POLL);
    }
    // Flume's source accepted every batch at the first attempt.
    flume.poll("waiting for Flume's source counters", |f| {
        (f.try_counter("SOURCE.r1", "EventAcceptedCount")? == EVENTS as u64).then_some(())
    });
    let (st, log) = flumen.terminate();
    assert_eq!(st.code(), Some(0), "{log}");
    assert!(!log.contains("WARN"), "flumen warned:\n{log}");
    capture.close();
    assert_numbers_once(&capture.events(), EVENTS);
}

#[test]
fn flume_thrift_sink_to_flumen_thrift_source_every_event_once() {
    flume_sink_to_flumen_source("compact");
}

#[test]
fn flume_thrift_sink_binary_to_flumen_thrift_source_every_event_once() {
    flume_sink_to_flumen_source("binary");
}

fn flume_sink_to_flumen_source(protocol: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    crate::flume_agent::classpath();
    let capture = Capture::start();
    let port = free_port();
    let mut flumen = Flumen::start(
        dir.path(),
        &thrift_to_capture(
            port,
            capture.port,
            &format!("a1.sources.r1.protocol = {protocol}\n"),
        ),
    );
    drop(flumen.get().connect(port));
    let mut flume = FlumeAgent::start(
        dir.path(),
        "seq",
        &format!(
            "a1.sources = r1\n\
             a1.channels = c1\n\
             a1.sinks = k1\n\
             a1.sources.r1.type = seq\n\
             a1.sources.r1.totalEvents = {EVENTS}\n\
             a1.sources.r1.batchSize = 100\n\
             a1.sources.r1.channels = c1\n\
             a1.sources.r1.interceptors = i1\n\
             a1.sources.r1.interceptors.i1.type = static\n\
             a1.sources.r1.interceptors.i1.key = k\n\
             a1.sources.r1.interceptors.i1.value = v\n\
             a1.channels.c1.type = memory\n\
             a1.channels.c1.capacity = 100000\n\
             a1.channels.c1.transactionCapacity = 100\n\
             a1.sinks.k1.type = thrift\n\
             a1.sinks.k1.hostname = 127.0.0.1\n\
             a1.sinks.k1.port = {port}\n\
             a1.sinks.k1.batch-size = 100\n\
             a1.sinks.k1.protocol = {protocol}\n\
             a1.sinks.k1.channel = c1\n"
        ),
    );
    let end = Instant::now() + DEADLINE;
    while capture.len() < EVENTS {
        flume.assert_running("waiting for every event at the collector");
        flumen
            .get()
            .assert_running("waiting for every event at the collector");
        if Instant::now() > end {
            let log = flumen.get().log();
            flume.fail(&format!(
                "timed out: {} of {EVENTS} events at the collector; flumen's log:\n{log}",
                capture.len()
            ));
        }
        std::thread::sleep(POLL);
    }
    // Flume's sink had every batch answered OK at the first attempt.
    flume.poll("waiting for Flume's sink counters", |f| {
        (f.try_counter("SINK.k1", "EventDrainSuccessCount")? == EVENTS as u64).then_some(())
    });
    assert_eq!(flume.counter("SINK.k1", "EventWriteFail"), 0);
    let st = flume.stop();
    assert_eq!(st.code(), Some(143), "Flume's exit after SIGTERM");
    let (st, log) = flumen.terminate();
    assert_eq!(st.code(), Some(0), "{log}");
    capture.close();
    assert_numbers_once(&capture.events(), EVENTS);
}

/// Sends `bytes` on a new connection to `port` (optionally leaving the write side open);
/// returns the local address (what the agent's log names) once the agent closed the
/// connection.
fn bad_peer(port: u16, bytes: &[u8], close_write: bool) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let me = s.local_addr().expect("local addr").to_string();
    // The agent may close before all is written: that is the point.
    let _ = s.write_all(bytes);
    if close_write {
        let _ = s.shutdown(std::net::Shutdown::Write);
    }
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let mut buf = [0u8; 256];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return me,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return me,
            Err(e) => panic!("the agent did not close the connection from {me}: {e}"),
        }
    }
}

#[test]
fn bad_input_closes_its_connection_names_the_peer_once_and_the_agent_keeps_serving() {
    let dir = tempfile::tempdir().expect("tempdir");
    crate::flume_agent::classpath();
    let capture = Capture::start();
    let port = free_port();
    let mut flumen = Flumen::start(dir.path(), &thrift_to_capture(port, capture.port, ""));
    drop(flumen.get().connect(port));

    let oversized = bad_peer(port, &0x7fff_ffffu32.to_be_bytes(), false);
    let http = bad_peer(port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", false);
    let mut garbage = 9u32.to_be_bytes().to_vec();
    garbage.extend_from_slice(b"not thrift");
    let garbage = bad_peer(port, &garbage[..13], false);
    let mut truncated = 1000u32.to_be_bytes().to_vec();
    truncated.extend_from_slice(&[0x82; 500]);
    let truncated = bad_peer(port, &truncated, true);

    // A well-behaved client is served throughout.
    let (ok, out, err) = thrift_send(port, 0, 1000, "compact");
    assert!(
        ok,
        "ThriftSend failed:\n{out}\n{err}\n{}",
        flumen.get().log()
    );
    wait_captured(
        &capture,
        1000,
        flumen.get(),
        "waiting for the good client's events",
    );

    let peers = [
        ("an oversized frame", &oversized, "limit 16384000"),
        ("an HTTP request", &http, "bad Thrift frame"),
        ("a frame of garbage", &garbage, "bad Thrift message"),
        (
            "a truncated frame",
            &truncated,
            "in the middle of a request",
        ),
    ];
    for (what, peer, _) in peers {
        flumen
            .get()
            .wait_for(&format!("the log line about {what}"), |a| {
                a.log().contains(peer.as_str())
            });
    }
    let (st, log) = flumen.terminate();
    assert_eq!(st.code(), Some(0), "{log}");
    for (what, peer, says) in peers {
        let lines: Vec<&str> = log.lines().filter(|l| l.contains(peer.as_str())).collect();
        assert_eq!(lines.len(), 1, "{what}: the peer is named once:\n{log}");
        assert!(lines[0].contains(says), "{what}: {}", lines[0]);
        assert!(lines[0].contains("WARN"), "{what}: {}", lines[0]);
    }
    capture.close();
    assert_thrift_send_events(&capture.events(), 0, 1000);
}

/// Connections the abuse test holds open at once (the figure).
const HELD: usize = 10_000;
/// Slow senders: each declares a frame of 16,000,000 bytes and sends 1,000 of them.
const SLOW: usize = 100;

#[test]
fn ten_thousand_held_connections_and_slow_senders_leave_memory_bounded_and_a_client_served() {
    let _sockets = crate::agent_proc::many_sockets();
    let dir = tempfile::tempdir().expect("tempdir");
    let capture = Capture::start();
    let port = free_port();
    let mut flumen = Flumen::start(
        dir.path(),
        &thrift_to_capture(
            port,
            capture.port,
            // A long idle-timeout: on a slow machine the slow senders must stay open until
            // every connection is accepted.
            &format!(
                "a1.sources.r1.max-connections = {}\na1.sources.r1.idle-timeout = 600\n",
                HELD + SLOW + 10
            ),
        ),
    );
    drop(flumen.get().connect(port));
    let pid = flumen.get().child.id();

    let mut held = Vec::with_capacity(HELD + SLOW);
    for _ in 0..HELD {
        held.push(TcpStream::connect(("127.0.0.1", port)).expect("hold a connection"));
    }
    for _ in 0..SLOW {
        let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect a slow sender");
        let mut part = 16_000_000u32.to_be_bytes().to_vec();
        part.extend_from_slice(&[0x82; 1000]);
        s.write_all(&part).expect("send part of a frame");
        held.push(s);
    }
    // Every connection accepted: the agent holds a descriptor for each.
    flumen
        .get()
        .wait_for("the agent to accept every connection", |_| {
            std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count()) > HELD + SLOW
        });

    // A well-behaved client is served while they are all held.
    let mut client = flumen::thrift::blocking::BlockingClient::connect(
        "127.0.0.1",
        port,
        flumen::thrift::Protocol::Compact,
        Duration::from_secs(10),
        Duration::from_secs(30),
        None,
    )
    .expect("the good client connects");
    let mut sent = Vec::new();
    for b in 0..10 {
        let batch: Vec<Event> = (b * 100..(b + 1) * 100)
            .map(|i| Event::new(i.to_string().into_bytes()))
            .collect();
        client
            .append_batch(&batch, "a batch of the good client")
            .expect("the good client's batch is answered OK");
        sent.extend(batch);
    }
    wait_captured(
        &capture,
        sent.len(),
        flumen.get(),
        "waiting for the good client's events",
    );

    let rss_mib = crate::agent_proc::peak_rss_kib(pid) / 1024;
    eprintln!("thrift source: peak RSS {rss_mib} MiB with {HELD} idle connections and {SLOW} slow senders");
    assert!(
        rss_mib < 300,
        "peak RSS {rss_mib} MiB with {HELD} held connections"
    );
    client.close();
    drop(held);
    let (st, log) = flumen.terminate();
    assert_eq!(st.code(), Some(0), "{log}");
    assert!(!log.contains("panicked"), "{log}");
    capture.close();
    assert_eq!(capture.events(), sent);
}
