//! Hostile peers against the agent's listeners while a well-behaved client works: 10,000
//! connections opened and held (more than `max-connections` on each source), slow clients
//! sending a byte at a time, and a line over `max-line-length`. The well-behaved client, which
//! connected first, gets every line answered `OK`; the agent's resident memory stays bounded
//! (read from /proc, printed); the oversized line's peer is named once in the log; nothing
//! panics. The syslog listeners get the same held connections and a UDP flood of garbage.
//! (The avro source's bad frames are in avro_bad_input.rs; the http and thrift sources' held
//! connections are in http_source.rs and thrift_flume.rs.)

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;

use crate::agent_proc::{free_port, peak_rss_kib, AgentProcess, DEADLINE};

const HELD: usize = 10_000;
/// What the agent may hold in memory with every slot taken: 1,024 netcat and 256 avro
/// connection threads with their read buffers, the file channel and the runtime.
const RSS_BOUND_KIB: u64 = 768 * 1024;

/// Sends `lines` lines one at a time on `s`, each waiting for its `OK`.
fn well_behaved(s: &mut TcpStream, reader: &mut BufReader<TcpStream>, from: usize, lines: usize) {
    let mut answer = String::new();
    for i in from..from + lines {
        s.write_all(format!("good-{i}\n").as_bytes())
            .expect("the well-behaved client's line");
        answer.clear();
        reader
            .read_line(&mut answer)
            .expect("an answer for the well-behaved client");
        assert_eq!(answer, "OK\n", "line {i}");
    }
}

#[test]
fn held_connections_slow_clients_and_long_lines_do_not_stop_a_well_behaved_client() {
    let _sockets = crate::agent_proc::many_sockets();
    let dir = tempfile::tempdir().expect("tempdir");
    let (netcat, avro) = (free_port(), free_port());
    let conf = dir.path().join("agent.properties");
    std::fs::write(
        &conf,
        format!(
            "a1.sources = n a\na1.channels = c1\na1.sinks = k1\n\
             a1.sources.n.type = netcat\na1.sources.n.bind = 127.0.0.1\n\
             a1.sources.n.port = {netcat}\na1.sources.n.channels = c1\n\
             a1.sources.a.type = avro\na1.sources.a.bind = 127.0.0.1\n\
             a1.sources.a.port = {avro}\na1.sources.a.channels = c1\n\
             a1.channels.c1.type = file\n\
             a1.channels.c1.checkpointDir = {cp}\na1.channels.c1.dataDirs = {data}\n\
             a1.channels.c1.minimumRequiredSpace = 1048576\n\
             a1.sinks.k1.type = null\na1.sinks.k1.channel = c1\n",
            cp = dir.path().join("checkpoint").display(),
            data = dir.path().join("data").display(),
        ),
    )
    .expect("write the config");
    let mut agent = AgentProcess::start(dir.path(), &conf, "a1", "abuse");
    let mut good = agent.connect(netcat);
    good.set_read_timeout(Some(DEADLINE)).expect("timeout");
    let mut reader = BufReader::new(good.try_clone().expect("clone"));
    well_behaved(&mut good, &mut reader, 0, 10);

    // Slow clients: a byte every few milliseconds, never a whole line.
    let mut slow: Vec<TcpStream> = (0..20)
        .map(|_| TcpStream::connect(("127.0.0.1", netcat)).expect("slow client"))
        .collect();
    // A line far over max-line-length (512).
    let mut long = TcpStream::connect(("127.0.0.1", netcat)).expect("long-line client");
    let long_peer = long.local_addr().expect("address");
    long.set_read_timeout(Some(DEADLINE)).expect("timeout");
    long.write_all(&vec![b'x'; 1 << 20])
        .expect("send the long line");
    long.write_all(b"\n").expect("end the long line");
    let mut reply = [0u8; 64];
    let n = long.read(&mut reply).expect("the answer to the long line");
    assert!(
        reply[..n].starts_with(b"FAILED: Event exceeds the maximum length"),
        "{:?}",
        String::from_utf8_lossy(&reply[..n])
    );

    // 10,000 connections held, half on each source: beyond max-connections each is closed.
    let mut held = Vec::with_capacity(HELD);
    for i in 0..HELD {
        let port = if i % 2 == 0 { netcat } else { avro };
        if let Ok(s) = TcpStream::connect(("127.0.0.1", port)) {
            held.push(s);
        }
        if i % 500 == 0 {
            for s in &mut slow {
                let _ = s.write_all(b"s");
            }
            well_behaved(&mut good, &mut reader, 10 + i, 1);
        }
    }
    agent.assert_running("holding connections");
    well_behaved(&mut good, &mut reader, HELD + 10, 200);
    let rss = peak_rss_kib(agent.child.id());
    eprintln!(
        "agent peak RSS with {} connections held: {} MiB",
        held.len(),
        rss / 1024
    );
    assert!(
        rss < RSS_BOUND_KIB,
        "peak RSS {} MiB with {} connections held",
        rss / 1024,
        held.len()
    );
    drop(held);
    drop(slow);
    let log = agent.log();
    let peer = long_peer.to_string();
    // Only netcat's lines: the client port is reused for connections to the avro source.
    let named: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(&peer) && l.contains("source `n`"))
        .collect();
    assert_eq!(
        named.len(),
        1,
        "the long line's peer {peer}:\n{}",
        named.join("\n")
    );
    assert!(named[0].contains("max-line-length"), "{}", named[0]);
    let refused = log.matches("(max-connections)").count();
    assert!(refused > 0, "no connection refused over max-connections");
    assert!(!log.contains("panicked"), "{log}");
    agent.assert_running("after the abuse");
    agent.terminate();
}

/// The syslog listeners: 10,000 connections held on syslogtcp (some of them sending half a
/// message a byte at a time) and a flood of 100,000 garbage datagrams (invalid UTF-8) on
/// syslogudp, while a well-behaved netcat client on the same agent keeps getting `OK`. Memory
/// stays bounded, and afterwards a message on each syslog listener still reaches the sink.
#[test]
fn syslog_listeners_survive_held_connections_and_a_udp_flood() {
    let _sockets = crate::agent_proc::many_sockets();
    let dir = tempfile::tempdir().expect("tempdir");
    let (netcat, tcp, udp) = (free_port(), free_port(), free_udp_port());
    let conf = dir.path().join("agent.properties");
    std::fs::write(
        &conf,
        format!(
            "a1.sources = n t u\na1.channels = c1\na1.sinks = k1\n\
             a1.sources.n.type = netcat\na1.sources.n.bind = 127.0.0.1\n\
             a1.sources.n.port = {netcat}\na1.sources.n.channels = c1\n\
             a1.sources.t.type = syslogtcp\na1.sources.t.host = 127.0.0.1\n\
             a1.sources.t.port = {tcp}\na1.sources.t.channels = c1\n\
             a1.sources.u.type = syslogudp\na1.sources.u.host = 127.0.0.1\n\
             a1.sources.u.port = {udp}\na1.sources.u.channels = c1\n\
             {tail}",
            tail = crate::agent_proc::file_channel_to_file_roll(dir.path(), 1000),
        ),
    )
    .expect("write the config");
    let mut agent = AgentProcess::start(dir.path(), &conf, "a1", "syslog-abuse");
    let mut good = agent.connect(netcat);
    good.set_read_timeout(Some(DEADLINE)).expect("timeout");
    let mut reader = BufReader::new(good.try_clone().expect("clone"));
    well_behaved(&mut good, &mut reader, 0, 10);
    drop(agent.connect(tcp));

    let mut slow: Vec<TcpStream> = (0..20)
        .map(|_| TcpStream::connect(("127.0.0.1", tcp)).expect("slow client"))
        .collect();
    let mut held = Vec::with_capacity(HELD);
    for i in 0..HELD {
        held.push(TcpStream::connect(("127.0.0.1", tcp)).expect("hold a syslogtcp connection"));
        if i % 500 == 0 {
            for s in &mut slow {
                s.write_all(b"<").expect("a slow byte");
            }
            well_behaved(&mut good, &mut reader, 10 + i, 1);
        }
    }

    let flood = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind the flood socket");
    let garbage: Vec<u8> = (0..200u32).map(|i| (i * 37 % 256) as u8 | 0x80).collect();
    for i in 0..100_000 {
        // A full socket buffer drops datagrams: that is UDP, and the point is the agent.
        let _ = flood.send_to(&garbage, ("127.0.0.1", udp));
        if i % 10_000 == 0 {
            well_behaved(&mut good, &mut reader, HELD + i, 1);
        }
    }
    agent.assert_running("after the flood");
    well_behaved(&mut good, &mut reader, 2 * HELD + 100_000, 100);
    let rss = peak_rss_kib(agent.child.id());
    eprintln!(
        "agent peak RSS with {} syslogtcp connections held and a UDP flood: {} MiB",
        held.len(),
        rss / 1024
    );
    assert!(rss < RSS_BOUND_KIB, "peak RSS {} MiB", rss / 1024);

    // Both syslog listeners still deliver.
    let mut t = TcpStream::connect(("127.0.0.1", tcp)).expect("a fresh syslogtcp client");
    t.write_all(b"<13>1 2026-12-07T10:00:00Z host app - - - marker-tcp\n")
        .expect("the syslogtcp marker");
    let out = dir.path().join("out");
    agent.poll("both markers at the sink", |_| {
        let _ = flood.send_to(
            b"<13>1 2026-12-07T10:00:00Z host app - - - marker-udp",
            ("127.0.0.1", udp),
        );
        let got = crate::agent_proc::complete_lines(&out);
        // RFC 5424 bodies keep the app name, procid, msgid and structured data, as Flume's.
        let seen = |m: &str| got.keys().any(|l| l.ends_with(m));
        (seen("marker-tcp") && seen("marker-udp")).then_some(())
    });
    drop(held);
    drop(slow);
    let (_, log) = agent.terminate();
    assert!(!log.contains("panicked"), "{log}");
}

/// A UDP port nobody uses now.
fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("a free UDP port")
        .port()
}
