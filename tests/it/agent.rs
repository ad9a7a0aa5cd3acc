//! `flumen agent` end to end, as an operator runs it: netcat -> file channel -> file_roll,
//! lines acknowledged with `OK`, SIGTERM, restart, more lines, SIGTERM; every acknowledged
//! line must appear in the output files exactly once.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::agent_proc::{
    free_port, netcat_file_roll_config as write_config, AgentProcess, DEADLINE,
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

/// How often each line appears across the output files.
fn output_counts(out: &Path) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    let Ok(entries) = std::fs::read_dir(out) else {
        return counts;
    };
    for e in entries {
        let text = std::fs::read_to_string(e.expect("dir entry").path()).expect("read output");
        for l in text.lines() {
            *counts.entry(l.to_string()).or_insert(0) += 1;
        }
    }
    counts
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
