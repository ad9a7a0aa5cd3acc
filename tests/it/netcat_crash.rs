//! `flumen agent` with a netcat source, SIGKILLed while pipelining clients keep many lines in
//! flight (the source commits what it read from each connection together and answers after
//! that commit): every line answered `OK` before the kill is delivered after a restart. The
//! auditor is this test, outside the agent: it counts each client's OKs, in order, against
//! the file_roll output of both runs.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::agent_proc::{
    complete_lines, free_port, tcp_file_roll_config, AgentProcess as Agent, DEADLINE,
};

const CLIENTS: usize = 4;
const IN_FLIGHT: usize = 64;
const CYCLES: usize = 3;
/// Lines acknowledged (over all clients) in a cycle before the kill.
const ACKED_BEFORE_KILL: u64 = 3_000;

/// Sends `c{client}-{n}` lines keeping `IN_FLIGHT` unanswered until the connection breaks;
/// returns how many of its lines were answered OK (always a prefix: answers come in order).
fn client(port: u16, client: usize, cycle: usize, acked_all: Arc<[AtomicU64; CLIENTS]>) -> u64 {
    let Ok(stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return 0;
    };
    stream
        .set_read_timeout(Some(DEADLINE))
        .expect("read timeout");
    let mut reader = BufReader::new(stream.try_clone().expect("clone the socket"));
    let mut w = BufWriter::new(stream);
    let (mut sent, mut acked) = (0u64, 0u64);
    let mut answer = String::new();
    loop {
        while sent - acked < IN_FLIGHT as u64 {
            if writeln!(w, "y{cycle}-c{client}-{sent}").is_err() {
                return acked;
            }
            sent += 1;
        }
        if w.flush().is_err() {
            return acked;
        }
        answer.clear();
        match reader.read_line(&mut answer) {
            Ok(n) if n > 0 => {
                assert_eq!(answer, "OK\n", "client {client}: line {acked}");
                acked += 1;
                acked_all[client].fetch_add(1, Ordering::Relaxed);
            }
            // The agent was killed: what was answered is what it owes.
            _ => return acked,
        }
    }
}

#[test]
fn kill_minus_nine_with_pipelined_netcat_clients_loses_no_acknowledged_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let conf = tcp_file_roll_config(dir.path(), "netcat", port, 100);
    let mut owed: BTreeMap<String, ()> = BTreeMap::new();
    for cycle in 0..CYCLES {
        let mut agent = Agent::start(dir.path(), &conf, "a1", &format!("run{cycle}"));
        drop(agent.connect(port));
        let acked_all: Arc<[AtomicU64; CLIENTS]> = Arc::new(Default::default());
        let clients: Vec<_> = (0..CLIENTS)
            .map(|c| {
                let acked_all = Arc::clone(&acked_all);
                std::thread::spawn(move || client(port, c, cycle, acked_all))
            })
            .collect();
        // Every client has lines acknowledged (and so many more in flight) at the kill.
        agent.wait_for("lines to be acknowledged before the kill", |_| {
            let each: Vec<u64> = acked_all
                .iter()
                .map(|a| a.load(Ordering::Relaxed))
                .collect();
            each.iter().all(|&n| n > 0) && each.iter().sum::<u64>() >= ACKED_BEFORE_KILL
        });
        agent.kill_9();
        for (c, t) in clients.into_iter().enumerate() {
            let acked = t.join().expect("client thread");
            assert!(acked > 0, "client {c} got no OK in cycle {cycle}");
            for n in 0..acked {
                owed.insert(format!("y{cycle}-c{c}-{n}"), ());
            }
        }
    }
    // The last restart drains what the last kill left in the channel.
    let mut agent = Agent::start(dir.path(), &conf, "a1", "drain");
    let out = dir.path().join("out");
    let mut missing = Vec::new();
    agent.poll("every acknowledged line to reach the sink", |_| {
        let got = complete_lines(&out);
        missing = owed
            .keys()
            .filter(|k| !got.contains_key(*k))
            .take(5)
            .cloned()
            .collect();
        missing.is_empty().then_some(())
    });
    let got = complete_lines(&out);
    let duplicates: usize = got.values().map(|n| n - 1).sum();
    agent.terminate();
    assert!(
        owed.len() as u64 >= CYCLES as u64 * ACKED_BEFORE_KILL,
        "{} acknowledged lines",
        owed.len()
    );
    // Duplicates come only from sink batches whose take did not commit before a kill.
    assert!(
        duplicates <= CYCLES * 100,
        "{duplicates} duplicate lines over {CYCLES} kills with sink batch 100"
    );
}
