//! `flumen agent` with a thrift source (file channel -> file_roll), SIGKILLed while pipelining
//! clients keep many `appendBatch` calls in flight (the source commits the calls read from a
//! connection together and answers after that commit): every event of a call answered OK
//! before the kill is delivered after a restart. The auditor is this test, outside the agent:
//! it counts each client's OK replies, in order, against the file_roll output of both runs.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::BytesMut;
use flumen::event::Event;
use flumen::thrift::{
    decode_reply, encode_append_batch, FrameDecoder, Method, Protocol, Reply, Status,
};

use crate::agent_proc::{
    complete_lines, free_port, tcp_file_roll_config, AgentProcess as Agent, DEADLINE,
};

const CLIENTS: usize = 2;
/// Calls each client keeps unanswered.
const IN_FLIGHT: u64 = 16;
/// Events per call.
const PER_CALL: u64 = 10;
const CYCLES: usize = 2;
/// Events acknowledged (over all clients) in a cycle before the kill.
const ACKED_BEFORE_KILL: u64 = 3_000;

/// Sends calls of `PER_CALL` events (`t{cycle}-c{client}-{n}`), keeping `IN_FLIGHT`
/// unanswered, until the connection breaks; returns how many calls were answered OK (a
/// prefix: replies come in order).
fn client(port: u16, client: usize, cycle: usize, acked_events: Arc<AtomicU64>) -> u64 {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return 0;
    };
    s.set_read_timeout(Some(DEADLINE)).expect("read timeout");
    let proto = Protocol::Compact;
    let mut decoder = FrameDecoder::new(1 << 20);
    let mut buf = BytesMut::new();
    let mut chunk = [0u8; 4096];
    let (mut sent, mut acked) = (0u64, 0u64);
    loop {
        while sent - acked < IN_FLIGHT {
            let events: Vec<Event> = (sent * PER_CALL..(sent + 1) * PER_CALL)
                .map(|n| Event::new(format!("t{cycle}-c{client}-{n}").into_bytes()))
                .collect();
            let seqid = i32::try_from(sent + 1).expect("seqid");
            let frame = encode_append_batch(proto, seqid, &events).expect("encode");
            if s.write_all(&frame).is_err() {
                return acked;
            }
            sent += 1;
        }
        let reply = loop {
            match decoder.decode(&mut buf) {
                Ok(Some(f)) => break f,
                Ok(None) => {}
                Err(e) => panic!("client {client}: bad reply frame: {e}"),
            }
            match s.read(&mut chunk) {
                Ok(n) if n > 0 => buf.extend_from_slice(&chunk[..n]),
                // The agent was killed: what was answered is what it owes.
                _ => return acked,
            }
        };
        let seqid = i32::try_from(acked + 1).expect("seqid");
        assert_eq!(
            decode_reply(proto, reply, Method::AppendBatch, seqid),
            Ok(Reply::Status(Status::Ok)),
            "client {client}: call {seqid}"
        );
        acked += 1;
        acked_events.fetch_add(PER_CALL, Ordering::Relaxed);
    }
}

#[test]
fn kill_minus_nine_with_pipelined_thrift_clients_loses_no_acknowledged_event() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let conf = tcp_file_roll_config(dir.path(), "thrift", port, 100);
    let mut owed = BTreeSet::new();
    for cycle in 0..CYCLES {
        let mut agent = Agent::start(dir.path(), &conf, "a1", &format!("run{cycle}"));
        drop(agent.connect(port));
        let acked: Vec<Arc<AtomicU64>> = (0..CLIENTS).map(|_| Arc::default()).collect();
        let clients: Vec<_> = (0..CLIENTS)
            .map(|c| {
                let a = Arc::clone(&acked[c]);
                std::thread::spawn(move || client(port, c, cycle, a))
            })
            .collect();
        agent.wait_for("events to be acknowledged before the kill", |_| {
            let each: Vec<u64> = acked.iter().map(|a| a.load(Ordering::Relaxed)).collect();
            each.iter().all(|&n| n > 0) && each.iter().sum::<u64>() >= ACKED_BEFORE_KILL
        });
        agent.kill_9();
        for (c, t) in clients.into_iter().enumerate() {
            let calls = t.join().expect("client thread");
            assert!(calls > 0, "client {c} got no OK in cycle {cycle}");
            for n in 0..calls * PER_CALL {
                owed.insert(format!("t{cycle}-c{c}-{n}"));
            }
        }
    }
    // The last restart drains what the last kill left in the channel.
    let mut agent = Agent::start(dir.path(), &conf, "a1", "drain");
    let out = dir.path().join("out");
    let mut missing = Vec::new();
    agent.poll("every acknowledged event to reach the sink", |_| {
        let got = complete_lines(&out);
        missing = owed
            .iter()
            .filter(|k| !got.contains_key(*k))
            .take(5)
            .cloned()
            .collect();
        missing.is_empty().then_some(())
    });
    agent.terminate();
    assert!(
        owed.len() as u64 >= CYCLES as u64 * ACKED_BEFORE_KILL,
        "{} acknowledged events",
        owed.len()
    );
}
