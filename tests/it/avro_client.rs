//! `flumen avro-client` (the binary) against flumen's own avro source running in-process
//! (avro source -> memory channel, no sink): lines of a file or of stdin arrive as events in
//! order with the given headers; a refusing channel, a port nobody listens on, a peer that
//! never answers and a malformed `--header` all end in a non-zero exit naming the reason.

use std::io::Write;
use std::net::TcpListener;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use flumen::agent::Agent;
use flumen::channel::Channel;

use crate::agent_proc::free_port;
use crate::avro_source::{start_agent_with, take_n};

/// avro source on 127.0.0.1:`port` -> memory channel configured by `channel`.
fn start_agent(port: u16, channel: &str) -> Agent {
    start_agent_with(port, "", channel)
}

/// Takes whatever the channel holds now.
fn take_rest(ch: &dyn Channel) -> Vec<flumen::Event> {
    let mut got = Vec::new();
    let mut tx = ch.take_transaction();
    tx.take_batch(100_000, &mut got).expect("take");
    tx.commit().expect("commit take");
    got
}

fn avro_client(args: &[String], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_flumen"))
        .arg("avro-client")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn flumen avro-client");
    let mut input = child.stdin.take().expect("stdin");
    if let Some(data) = stdin {
        // The client may give up (connection refused) before it reads its input.
        if let Err(e) = input.write_all(data) {
            assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "write stdin: {e}");
        }
    }
    drop(input);
    child
        .wait_with_output()
        .expect("wait for flumen avro-client")
}

fn target(port: u16) -> Vec<String> {
    vec![
        "--host".into(),
        "127.0.0.1".into(),
        "--port".into(),
        port.to_string(),
    ]
}

fn bodies(events: &[flumen::Event]) -> Vec<String> {
    events
        .iter()
        .map(|e| String::from_utf8_lossy(e.body()).into_owned())
        .collect()
}

#[test]
fn file_lines_arrive_in_order_with_headers() {
    let port = free_port();
    let agent = start_agent(
        port,
        "a1.channels.c1.capacity = 10000\na1.channels.c1.transactionCapacity = 100\n",
    );
    let ch = Arc::clone(&agent.channels()[0]);
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("lines.txt");
    let want: Vec<String> = (0..1000).map(|i| format!("line {i}")).collect();
    std::fs::write(&file, want.join("\n") + "\n").expect("write the input");

    let mut args = target(port);
    args.extend(
        [
            "--file",
            file.to_str().expect("utf-8 path"),
            "--header",
            "k=v",
            "--header",
            "env=a=b",
            "--batch-size",
            "50",
        ]
        .map(String::from),
    );
    let out = avro_client(&args, None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?}: {stderr}", out.status);
    assert!(stderr.contains("sent 1000 events"), "{stderr}");
    assert!(stderr.contains("20 appendBatch calls"), "{stderr}");

    let got = take_n(ch.as_ref(), 1000);
    assert_eq!(bodies(&got), want);
    for e in &got {
        assert_eq!(e.header("k"), Some("v"), "{e:?}");
        assert_eq!(e.header("env"), Some("a=b"), "{e:?}");
        assert_eq!(e.headers().len(), 2, "{e:?}");
    }
    assert!(take_rest(ch.as_ref()).is_empty(), "no extra events");
    agent.shutdown().expect("shutdown");
}

#[test]
fn stdin_lines_including_empty_ones() {
    let port = free_port();
    let agent = start_agent(port, "");
    let ch = Arc::clone(&agent.channels()[0]);
    let out = avro_client(&target(port), Some(b"a\n\nb\r\nc"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?}: {stderr}", out.status);
    assert!(stderr.contains("sent 4 events"), "{stderr}");
    let got = take_n(ch.as_ref(), 4);
    assert_eq!(bodies(&got), ["a", "", "b", "c"]);
    assert!(got.iter().all(|e| e.headers().is_empty()), "{got:?}");
    agent.shutdown().expect("shutdown");
}

#[test]
fn a_full_channel_is_a_failure() {
    let port = free_port();
    let agent = start_agent(
        port,
        "a1.channels.c1.capacity = 10\n\
         a1.channels.c1.transactionCapacity = 10\n\
         a1.channels.c1.keep-alive = 0\n",
    );
    let ch = Arc::clone(&agent.channels()[0]);
    let input: String = (0..100).map(|i| format!("{i}\n")).collect();
    let out = avro_client(&target(port), Some(input.as_bytes()));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "must fail: {stderr}");
    assert!(stderr.contains("FAILED"), "{stderr}");
    assert!(stderr.contains(&format!("127.0.0.1:{port}")), "{stderr}");
    // Two batches of 5 filled the channel; the third was refused and the client stopped.
    let got = take_rest(ch.as_ref());
    assert_eq!(
        bodies(&got),
        (0..10).map(|i| i.to_string()).collect::<Vec<_>>()
    );
    agent.shutdown().expect("shutdown");
}

#[test]
fn connection_refused_names_the_peer() {
    let port = free_port();
    let out = avro_client(&target(port), Some(b"x\n"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "must fail: {stderr}");
    assert!(stderr.contains(&format!("127.0.0.1:{port}")), "{stderr}");
    assert!(stderr.to_lowercase().contains("refused"), "{stderr}");
}

#[test]
fn a_silent_peer_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let mut args = target(port);
    args.extend(["--request-timeout", "0.5"].map(String::from));
    let started = Instant::now();
    let out = avro_client(&args, Some(b"x\n"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "must fail: {stderr}");
    assert!(stderr.contains("--request-timeout"), "{stderr}");
    assert!(stderr.contains(&format!("127.0.0.1:{port}")), "{stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );
    drop(listener);
}

#[test]
fn a_malformed_header_is_a_usage_error() {
    let mut args = target(free_port());
    args.extend(["--header", "novalue"].map(String::from));
    let out = avro_client(&args, Some(b""));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("KEY=VALUE"), "{stderr}");
}
