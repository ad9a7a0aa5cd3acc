//! Bad input against a running `flumen agent`'s avro source, one test per kind the issue
//! lists: garbage, a buffer count or a buffer length beyond the bound, an unknown message, a
//! handshake with a protocol hash we do not speak, a peer that stalls mid-frame, more
//! connections than `max-connections`, and a flood of oversized frames.
//!
//! Each asserts what an operator sees: the offending connection is closed by the agent, the
//! agent's log has exactly one line naming that peer (address and port) and saying what was
//! wrong, and the agent still takes a good batch afterwards. The flood test also reads the
//! agent's resident memory before and after, from /proc.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use flumen::avro::frame::encode_frame;
use flumen::avro::protocol::{encode_handshake_request, HandshakeRequest};
use flumen::avro::{ClientConn, ClientItem, Status};
use flumen::Event;

use crate::agent_proc::{free_port, AgentProcess, DEADLINE, POLL};

/// A `flumen agent`: avro source (with `extra` source keys) -> memory channel -> null sink.
struct Target {
    _dir: tempfile::TempDir,
    agent: AgentProcess,
    port: u16,
}

impl Target {
    fn start(extra: &str) -> Target {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let conf: PathBuf = dir.path().join("agent.properties");
        std::fs::write(
            &conf,
            format!(
                "a1.sources = r1\na1.channels = c1\na1.sinks = k1\n\
                 a1.sources.r1.type = avro\na1.sources.r1.bind = 127.0.0.1\n\
                 a1.sources.r1.port = {port}\na1.sources.r1.channels = c1\n{extra}\
                 a1.channels.c1.type = memory\na1.channels.c1.capacity = 100000\n\
                 a1.sinks.k1.type = null\na1.sinks.k1.channel = c1\n"
            ),
        )
        .expect("write the config");
        let mut agent = AgentProcess::start(dir.path(), &conf, "a1", "bad-input");
        drop(agent.connect(port));
        Target {
            _dir: dir,
            agent,
            port,
        }
    }

    fn connect(&mut self) -> (TcpStream, SocketAddr) {
        let s = self.agent.connect(self.port);
        let me = s.local_addr().expect("local addr");
        (s, me)
    }

    /// Waits until the log has a line naming `peer` and containing `what`; then checks it is
    /// the only line naming `peer`.
    fn assert_one_line(&mut self, peer: SocketAddr, what: &str) -> String {
        let peer_s = peer.to_string();
        let line = self.agent.poll(
            &format!("waiting for a log line naming {peer_s} with {what:?}"),
            |a| {
                lines_naming(&a.log(), &peer_s)
                    .into_iter()
                    .find(|l| l.contains(what))
            },
        );
        let all = lines_naming(&self.agent.log(), &peer_s);
        assert_eq!(all.len(), 1, "one line per bad connection, got {all:#?}");
        line
    }

    /// A good appendBatch still gets OK.
    fn assert_still_serving(&mut self) {
        let (mut s, _) = self.connect();
        let mut client = ClientConn::default();
        let events: Vec<Event> = (0..10).map(|i| Event::new(format!("ok-{i}"))).collect();
        let (_, frame) = client.append_batch(&events).expect("encode");
        s.write_all(&frame).expect("send a good batch");
        assert_eq!(read_response(&mut s, &mut client), Ok(Status::Ok));
    }

    /// The agent's resident set, from /proc.
    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.agent.child.id()))
            .expect("read /proc/<pid>/status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS in /proc/<pid>/status")
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        let _ = self.agent.child.kill();
        let _ = self.agent.child.wait();
    }
}

/// Lines of `log` naming `peer` exactly (not as the prefix of a longer port).
fn lines_naming(log: &str, peer: &str) -> Vec<String> {
    log.lines()
        .filter(|l| {
            l.match_indices(peer).any(|(i, _)| {
                !l[i + peer.len()..]
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_digit())
            })
        })
        .map(str::to_string)
        .collect()
}

/// Reads until the client decodes one response.
fn read_response(s: &mut TcpStream, client: &mut ClientConn) -> Result<Status, String> {
    s.set_read_timeout(Some(DEADLINE)).expect("read timeout");
    let mut buf = vec![0u8; 4096];
    let mut items = Vec::new();
    loop {
        let n = s.read(&mut buf).expect("read the response");
        assert!(n > 0, "the server closed the connection before answering");
        client.feed(&buf[..n], &mut items).expect("decode");
        if let Some(ClientItem::Response { result, .. }) = items.pop() {
            return result;
        }
    }
}

/// Reads (discarding anything the server answers first) until the server closes: EOF or a
/// reset. Fails if the connection is still open after `within`.
fn assert_closed_within(s: &mut TcpStream, within: Duration, what: &str) -> Vec<u8> {
    let end = Instant::now() + within;
    s.set_read_timeout(Some(POLL)).expect("read timeout");
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return got,
            Err(e) => panic!("reading after {what}: {e}"),
        }
        assert!(
            Instant::now() < end,
            "the agent did not close the connection within {within:?} after {what}"
        );
    }
}

/// A frame header: serial and buffer count.
fn header(serial: u32, buffers: u32) -> Vec<u8> {
    let mut h = serial.to_be_bytes().to_vec();
    h.extend_from_slice(&buffers.to_be_bytes());
    h
}

#[test]
fn garbage_is_logged_with_the_peer_and_closed() {
    let mut t = Target::start("");
    let (mut s, me) = t.connect();
    // What a browser or a health check pointed at the port sends: "GET " is serial
    // 0x47455420, "/ HT" a count of 790 million buffers.
    s.write_all(b"GET / HTTP/1.1\r\nHost: flumen\r\n\r\n")
        .expect("send");
    assert_closed_within(&mut s, DEADLINE, "an HTTP request");
    let line = t.assert_one_line(me, "bad Avro RPC stream");
    assert!(line.contains("buffers"), "{line}");
    t.assert_still_serving();
}

#[test]
fn a_buffer_count_beyond_the_bound_is_refused_before_any_body() {
    let mut t = Target::start("");
    let (mut s, me) = t.connect();
    // Nothing but the header: the count alone must be enough to refuse.
    s.write_all(&header(1, 2_000_000)).expect("send");
    assert_closed_within(&mut s, DEADLINE, "a count of 2,000,000 buffers");
    let line = t.assert_one_line(me, "declares 2000000 buffers");
    assert!(line.contains("limit"), "{line}");
    t.assert_still_serving();
}

#[test]
fn a_buffer_length_beyond_max_frame_bytes_is_refused_before_its_bytes() {
    let mut t = Target::start("a1.sources.r1.max-frame-bytes = 1048576\n");
    let (mut s, me) = t.connect();
    let mut frame = header(1, 1);
    frame.extend_from_slice(&(3u32 << 30).to_be_bytes());
    s.write_all(&frame).expect("send");
    assert_closed_within(&mut s, DEADLINE, "a 3 GiB buffer length");
    let line = t.assert_one_line(me, "3221225472 bytes");
    assert!(line.contains("limit 1048576"), "{line}");
    t.assert_still_serving();
}

#[test]
fn an_unknown_message_is_answered_then_closed() {
    let mut t = Target::start("");
    let (mut s, me) = t.connect();
    let mut body = Vec::new();
    encode_handshake_request(&mut body, &HandshakeRequest::flume(false));
    body.push(0x00); // empty call metadata
    body.push(2 * 5); // Avro string of length 5
    body.extend_from_slice(b"flush");
    let mut frame = Vec::new();
    encode_frame(&mut frame, 1, &[&body]);
    s.write_all(&frame).expect("send");
    // The client is told why before the close: an error response naming the message.
    let answer = assert_closed_within(&mut s, DEADLINE, "an unknown message");
    let text = String::from_utf8_lossy(&answer);
    assert!(text.contains("\"flush\""), "answered {text:?}");
    let line = t.assert_one_line(me, "no such message \"flush\"");
    assert!(line.contains("closing the connection"), "{line}");
    t.assert_still_serving();
}

#[test]
fn a_handshake_with_a_foreign_protocol_hash_gets_none_then_a_close() {
    let mut t = Target::start("");
    let (mut s, me) = t.connect();
    let foreign = HandshakeRequest {
        client_hash: [0x5A; 16],
        client_protocol: None,
        server_hash: [0x5A; 16],
        meta: None,
    };
    let mut body = Vec::new();
    encode_handshake_request(&mut body, &foreign);
    body.push(0x00);
    body.push(2 * 6);
    body.extend_from_slice(b"append");
    // As Avro's Responder does, the first is answered NONE with our protocol, so a client of
    // another version could resend with its protocol text...
    let mut frame = Vec::new();
    encode_frame(&mut frame, 1, &[&body]);
    s.write_all(&frame).expect("send");
    s.set_read_timeout(Some(DEADLINE)).expect("timeout");
    let mut first = [0u8; 12];
    s.read_exact(&mut first).expect("the NONE answer");
    assert_eq!(&first[..4], &1u32.to_be_bytes(), "answers serial 1");
    // ...but the same unknown hash again means it cannot: closed, with one line.
    let mut again = Vec::new();
    encode_frame(&mut again, 2, &[&body]);
    s.write_all(&again).expect("send");
    assert_closed_within(&mut s, DEADLINE, "a second foreign handshake");
    let line = t.assert_one_line(me, &"5a".repeat(16));
    assert!(
        line.contains("does not speak Flume's avro protocol"),
        "{line}"
    );
    t.assert_still_serving();
}

#[test]
fn a_peer_that_stalls_mid_frame_is_closed_after_idle_timeout() {
    let mut t = Target::start("a1.sources.r1.idle-timeout = 1\n");
    let (mut s, me) = t.connect();
    // A frame promising 100 bytes that sends 10 and then nothing.
    let mut frame = header(1, 1);
    frame.extend_from_slice(&100u32.to_be_bytes());
    frame.extend_from_slice(&[0u8; 10]);
    s.write_all(&frame).expect("send");
    let sent = Instant::now();
    assert_closed_within(&mut s, DEADLINE, "stalling mid-frame");
    assert!(
        sent.elapsed() >= Duration::from_millis(900),
        "closed before the 1 s idle-timeout: {:?}",
        sent.elapsed()
    );
    t.assert_one_line(me, "sent nothing for 1s in the middle of a request");

    // A connection idle *between* requests is kept (Flume's clients pool theirs).
    let (mut idle, _) = t.connect();
    let mut client = ClientConn::default();
    let (_, good) = client
        .append(&Event::new("first"))
        .expect("encode a good call");
    idle.write_all(&good).expect("send");
    assert_eq!(read_response(&mut idle, &mut client), Ok(Status::Ok));
    let end = Instant::now() + Duration::from_secs(3);
    idle.set_read_timeout(Some(POLL)).expect("timeout");
    let mut buf = [0u8; 16];
    while Instant::now() < end {
        match idle.read(&mut buf) {
            Ok(0) => panic!("an idle connection between requests was closed"),
            Ok(n) => panic!("unexpected {n} bytes"),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => panic!("idle connection broke: {e}"),
        }
    }
    let (_, good) = client.append(&Event::new("after")).expect("encode");
    idle.write_all(&good).expect("send after idling");
    assert_eq!(read_response(&mut idle, &mut client), Ok(Status::Ok));
}

#[test]
fn connections_over_max_connections_are_closed_with_a_line() {
    let mut t = Target::start("a1.sources.r1.max-connections = 2\n");
    // Two connections that have each been served hold both slots.
    let mut held = Vec::new();
    for i in 0..2 {
        let (mut s, _) = t.connect();
        let mut client = ClientConn::default();
        let (_, frame) = client
            .append(&Event::new(format!("held-{i}")))
            .expect("encode");
        s.write_all(&frame).expect("send");
        assert_eq!(read_response(&mut s, &mut client), Ok(Status::Ok));
        held.push(s);
    }
    let (mut extra, me) = t.connect();
    assert_closed_within(&mut extra, DEADLINE, "a third connection");
    let line = t.assert_one_line(me, "already 2 open (max-connections)");
    assert!(line.contains("refused the connection"), "{line}");
    // A slot frees when a held connection goes, and the agent serves again.
    drop(held.pop());
    let end = Instant::now() + DEADLINE;
    loop {
        let (mut s, _) = t.connect();
        let mut client = ClientConn::default();
        let (_, frame) = client.append(&Event::new("again")).expect("encode");
        if s.write_all(&frame).is_ok() {
            s.set_read_timeout(Some(DEADLINE)).expect("timeout");
            let mut buf = vec![0u8; 4096];
            let mut items = Vec::new();
            if let Ok(n @ 1..) = s.read(&mut buf) {
                client.feed(&buf[..n], &mut items).expect("decode");
                if let Some(ClientItem::Response { result, .. }) = items.pop() {
                    assert_eq!(result, Ok(Status::Ok));
                    break;
                }
            }
        }
        // Refused while the server had not yet noticed the close.
        assert!(Instant::now() < end, "no slot freed after a client left");
        std::thread::sleep(POLL);
    }
}

#[test]
fn a_flood_of_oversized_frames_leaves_memory_where_it_was() {
    const PER_KIND: usize = 300;
    let mut t = Target::start("a1.sources.r1.max-frame-bytes = 1048576\n");
    // Warm up (threads, the channel, the allocator) with good traffic, then measure.
    for _ in 0..20 {
        t.assert_still_serving();
    }
    let before = t.rss_kib();

    // Three kinds of oversized frame, from four threads at once: a buffer count beyond the
    // bound, a buffer length of 3 GiB, and buffers that really send 1 MiB + 64 KiB (within
    // each buffer's limit, over the frame's) so the decoder holds up to the limit each time.
    let port = t.port;
    let mut senders = Vec::new();
    for kind in 0..3u32 {
        senders.push(std::thread::spawn(move || {
            let mut peers = Vec::new();
            let chunk = vec![0x41u8; 64 << 10];
            for i in 0..PER_KIND {
                let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
                let mut frame = header(i as u32, if kind == 0 { u32::MAX } else { 17 });
                if kind == 1 {
                    frame.extend_from_slice(&(3u32 << 30).to_be_bytes());
                }
                s.write_all(&frame).expect("send the header");
                peers.push(s.local_addr().expect("local addr"));
                if kind == 2 {
                    for _ in 0..17 {
                        let mut buf = (64u32 << 10).to_be_bytes().to_vec();
                        buf.extend_from_slice(&chunk);
                        if s.write_all(&buf).is_err() {
                            break; // closed at the limit, as it should be
                        }
                    }
                }
                assert_closed_within(&mut s, DEADLINE, "an oversized frame");
            }
            peers
        }));
    }
    let mut peers = Vec::new();
    for s in senders {
        peers.extend(s.join().expect("flood thread"));
    }
    let after = t.rss_kib();
    eprintln!(
        "RSS {before} KiB before, {after} KiB after {} oversized frames",
        3 * PER_KIND
    );

    // Every connection was read and refused with its own line.
    let log = t.agent.log();
    let refused = peers
        .iter()
        .filter(|p| {
            lines_naming(&log, &p.to_string())
                .iter()
                .any(|l| l.contains("bad Avro RPC stream"))
        })
        .count();
    assert_eq!(refused, peers.len(), "every oversized frame logged once");
    t.assert_still_serving();
    assert!(
        after <= before + 32 * 1024,
        "resident memory grew from {before} KiB to {after} KiB over {} oversized frames",
        peers.len()
    );
}
