//! Several requests in flight on one connection, as Avro's Netty transceiver allows: the avro
//! source answers each by its serial, in order, and puts every batch into the channel in the
//! order it was sent.

use std::io::{Read, Write};

use flumen::avro::{ClientConn, ClientItem, Status};
use flumen::Event;

use crate::agent_proc::{free_port, tcp_file_roll_config, AgentProcess, DEADLINE};

#[test]
fn pipelined_calls_are_answered_by_serial_and_kept_in_order() {
    const CALLS: usize = 20;
    const PER_CALL: usize = 50;
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let conf = tcp_file_roll_config(dir.path(), "avro", port, 100);
    let mut agent = AgentProcess::start(dir.path(), &conf, "a1", "pipelined");
    let mut s = agent.connect(port);
    s.set_read_timeout(Some(DEADLINE)).expect("timeout");
    let mut client = ClientConn::default();
    let mut items = Vec::new();
    let mut buf = vec![0u8; 64 << 10];

    // The first call carries the handshake and must be answered before any other is sent.
    let (first, frame) = client.append(&Event::new("0")).expect("encode");
    s.write_all(&frame).expect("send");
    while items.is_empty() {
        let n = s.read(&mut buf).expect("read");
        assert!(n > 0, "closed before the handshake was answered");
        client.feed(&buf[..n], &mut items).expect("decode");
    }
    assert_eq!(
        std::mem::take(&mut items),
        vec![ClientItem::Response {
            serial: first,
            result: Ok(Status::Ok)
        }]
    );

    // Then CALLS batches written back to back, before reading any answer.
    let mut burst = Vec::new();
    let mut serials = Vec::new();
    let mut next = 1usize;
    for _ in 0..CALLS {
        let batch: Vec<Event> = (next..next + PER_CALL)
            .map(|i| Event::new(i.to_string()))
            .collect();
        next += PER_CALL;
        let (serial, frame) = client.append_batch(&batch).expect("encode");
        serials.push(serial);
        burst.extend_from_slice(&frame);
    }
    s.write_all(&burst).expect("send the burst");
    while items.len() < CALLS {
        let n = s.read(&mut buf).expect("read the answers");
        assert!(n > 0, "closed after {} of {CALLS} answers", items.len());
        client.feed(&buf[..n], &mut items).expect("decode");
    }
    let want: Vec<ClientItem> = serials
        .iter()
        .map(|&serial| ClientItem::Response {
            serial,
            result: Ok(Status::Ok),
        })
        .collect();
    assert_eq!(items, want, "one OK per call, by serial, in order");
    drop(s);

    // Every event reaches the sink once, in the order sent.
    let out = dir.path().join("out");
    let total = 1 + CALLS * PER_CALL;
    let lines = agent.poll("waiting for every event in file_roll's output", |_| {
        let mut lines = Vec::new();
        for f in std::fs::read_dir(&out).ok()?.flatten() {
            let text = std::fs::read_to_string(f.path()).ok()?;
            lines.extend(text.lines().map(str::to_string));
        }
        (lines.len() >= total).then_some(lines)
    });
    let want: Vec<String> = (0..total).map(|i| i.to_string()).collect();
    assert_eq!(lines, want);
    let (st, log) = agent.terminate();
    assert!(st.success(), "{log}");
}
