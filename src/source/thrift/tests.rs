//! The thrift source over real sockets with a memory channel: replies only after the commit,
//! pipelined calls committed together and answered in order, both protocols, and bad input
//! closing only its own connection.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::thread::JoinHandle;

use bytes::BytesMut;

use super::*;
use crate::channel::memory::{MemoryChannel, MemoryChannelConfig};
use crate::channel::Channel;
use crate::thrift::{
    decode_reply, encode_append, encode_append_batch, Reply, DEFAULT_MAX_FRAME_BYTES,
};

struct Running {
    addr: SocketAddr,
    channel: Arc<dyn Channel>,
    counters: Arc<ComponentCounters>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Running {
    fn start(protocol: Protocol, max_frame_bytes: u32) -> Running {
        Running::start_with(
            protocol,
            max_frame_bytes,
            MemoryChannelConfig {
                capacity: 10_000,
                ..MemoryChannelConfig::default()
            },
        )
    }

    fn start_with(protocol: Protocol, max_frame_bytes: u32, cfg: MemoryChannelConfig) -> Running {
        let channel: Arc<dyn Channel> = Arc::new(MemoryChannel::new("c1", cfg).expect("channel"));
        let ctx = SourceContext::detached("r1", vec![Arc::clone(&channel)]);
        let counters = Arc::clone(&ctx.counters);
        let cfg = ThriftSourceConfig {
            protocol,
            max_frame_bytes,
            threads: 2,
            ..ThriftSourceConfig::new("127.0.0.1", 0)
        };
        let src = ThriftSource::bind(ctx, &cfg).expect("bind");
        let addr = src.local_addr();
        let stop = Arc::new(AtomicBool::new(false));
        let s = Arc::clone(&stop);
        let thread = std::thread::spawn(move || Box::new(src).run(s));
        Running {
            addr,
            channel,
            counters,
            stop,
            thread: Some(thread),
        }
    }

    fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(self.addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        s
    }

    fn drain(&self) -> Vec<Event> {
        let mut got = Vec::new();
        let mut tx = self.channel.take_transaction();
        tx.take_batch(100_000, &mut got).expect("take");
        tx.commit().expect("commit");
        got
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            t.join().expect("source thread");
        }
    }
}

/// Reads `n` reply frames.
fn replies(s: &mut TcpStream, n: usize) -> Vec<bytes::Bytes> {
    let mut dec = FrameDecoder::new(1 << 20);
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    let mut chunk = [0u8; 4096];
    while out.len() < n {
        if let Some(f) = dec.decode(&mut buf).expect("reply frame") {
            out.push(f);
            continue;
        }
        let k = s.read(&mut chunk).expect("read a reply");
        assert!(k > 0, "the source closed the connection");
        buf.extend_from_slice(&chunk[..k]);
    }
    out
}

fn ev(i: usize) -> Event {
    Event::with_headers(
        [("i".to_string(), i.to_string())].into_iter().collect(),
        vec![i as u8; i % 7],
    )
}

/// The connection ends (EOF or reset) within the read timeout.
fn closed(s: &mut TcpStream) -> bool {
    let mut b = [0u8; 64];
    loop {
        match s.read(&mut b) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

#[test]
fn calls_are_committed_then_answered_ok_in_both_protocols() {
    for proto in [Protocol::Compact, Protocol::Binary] {
        let r = Running::start(proto, DEFAULT_MAX_FRAME_BYTES);
        let mut s = r.connect();
        let batch: Vec<Event> = (0..50).map(ev).collect();
        s.write_all(&encode_append_batch(proto, 1, &batch).expect("encode"))
            .expect("send");
        let [reply] = replies(&mut s, 1).try_into().expect("one reply");
        assert_eq!(
            decode_reply(proto, reply, Method::AppendBatch, 1),
            Ok(Reply::Status(Status::Ok))
        );
        let single = Event::new(vec![9u8; 300_000]);
        s.write_all(&encode_append(proto, 2, &single).expect("encode"))
            .expect("send");
        let [reply] = replies(&mut s, 1).try_into().expect("one reply");
        assert_eq!(
            decode_reply(proto, reply, Method::Append, 2),
            Ok(Reply::Status(Status::Ok))
        );
        let mut want = batch.clone();
        want.push(single);
        assert_eq!(r.drain(), want, "{proto:?}");
        assert_eq!(r.counters.get(Counter::EventAcceptedCount), 51);
        assert_eq!(r.counters.get(Counter::AppendBatchAcceptedCount), 1);
        assert_eq!(r.counters.get(Counter::AppendAcceptedCount), 1);
    }
}

#[test]
fn pipelined_calls_are_answered_in_order() {
    let proto = Protocol::Compact;
    let r = Running::start(proto, DEFAULT_MAX_FRAME_BYTES);
    let mut s = r.connect();
    let mut bytes = Vec::new();
    let mut want = Vec::new();
    for seqid in 1..=20 {
        let batch: Vec<Event> = (0..5).map(|i| ev(seqid as usize * 10 + i)).collect();
        bytes.extend(encode_append_batch(proto, seqid, &batch).expect("encode"));
        want.extend(batch);
    }
    s.write_all(&bytes).expect("send all at once");
    for (i, reply) in replies(&mut s, 20).into_iter().enumerate() {
        assert_eq!(
            decode_reply(proto, reply, Method::AppendBatch, i as i32 + 1),
            Ok(Reply::Status(Status::Ok))
        );
    }
    // Committed together, not call by call (the reads may have split the bytes).
    let commits = r.channel.stats().commits;
    assert!(commits < 20, "20 pipelined calls took {commits} commits");
    assert_eq!(r.drain(), want);
}

#[test]
fn bad_input_closes_only_its_connection() {
    let proto = Protocol::Compact;
    let r = Running::start(proto, 4096);
    let good = encode_append_batch(proto, 1, &[ev(1)]).expect("encode");

    // Over max-frame-bytes: closed on the length alone.
    let mut s = r.connect();
    s.write_all(&5000u32.to_be_bytes()).expect("send");
    assert!(closed(&mut s), "an oversized frame closes the connection");
    // Garbage (an HTTP request).
    let mut s = r.connect();
    let _ = s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(closed(&mut s), "garbage closes the connection");
    // A binary-protocol call to a compact source: answered nothing, closed.
    let mut s = r.connect();
    s.write_all(&encode_append_batch(Protocol::Binary, 1, &[ev(2)]).expect("encode"))
        .expect("send");
    assert!(closed(&mut s), "the wrong protocol closes the connection");
    // A truncated frame, then the client goes away.
    let mut s = r.connect();
    s.write_all(&good[..good.len() - 3]).expect("send");
    drop(s);

    // An unknown method inside a good frame is answered with an exception; the connection
    // goes on and the next call is served.
    let mut s = r.connect();
    let mut call = Vec::new();
    let at = crate::thrift::frame::start_frame(&mut call);
    {
        let mut w = crate::thrift::protocol::Writer::new(proto, &mut call);
        w.message_begin("ping", crate::thrift::protocol::CALL, 7);
        w.struct_begin();
        w.struct_end();
    }
    crate::thrift::frame::finish_frame(&mut call, at, "test").expect("frame");
    call.extend_from_slice(&good);
    s.write_all(&call).expect("send");
    let got = replies(&mut s, 2);
    let mut rd = crate::thrift::protocol::Reader::new(proto, got[0].clone());
    let h = rd.message_begin().expect("header");
    assert_eq!(
        (h.name.as_str(), h.kind, h.seqid),
        ("ping", crate::thrift::protocol::EXCEPTION, 7)
    );
    assert_eq!(
        decode_reply(proto, got[1].clone(), Method::AppendBatch, 1),
        Ok(Reply::Status(Status::Ok))
    );
    assert_eq!(r.drain(), vec![ev(1)]);
}

#[test]
fn a_call_the_channel_refuses_is_answered_failed_and_its_neighbours_ok() {
    let proto = Protocol::Compact;
    let r = Running::start_with(
        proto,
        DEFAULT_MAX_FRAME_BYTES,
        MemoryChannelConfig {
            capacity: 10_000,
            transaction_capacity: 100,
            ..MemoryChannelConfig::default()
        },
    );
    let mut s = r.connect();
    // Three pipelined calls; the middle one holds more events than a transaction may.
    let small: Vec<Event> = (0..10).map(ev).collect();
    let big: Vec<Event> = (100..250).map(ev).collect();
    let mut bytes = encode_append_batch(proto, 1, &small).expect("encode");
    bytes.extend(encode_append_batch(proto, 2, &big).expect("encode"));
    bytes.extend(encode_append_batch(proto, 3, &small).expect("encode"));
    s.write_all(&bytes).expect("send");
    let got: Vec<Result<Reply, ThriftError>> = replies(&mut s, 3)
        .into_iter()
        .zip(1..)
        .map(|(f, seqid)| decode_reply(proto, f, Method::AppendBatch, seqid))
        .collect();
    assert_eq!(
        got,
        vec![
            Ok(Reply::Status(Status::Ok)),
            Ok(Reply::Status(Status::Failed)),
            Ok(Reply::Status(Status::Ok)),
        ]
    );
    let mut want = small.clone();
    want.extend(small);
    assert_eq!(r.drain(), want, "nothing of the refused call was committed");
    assert_eq!(r.counters.get(Counter::ChannelWriteFail), 1);
}

#[test]
fn flumes_keys_and_defaults() {
    use crate::config::Keys;
    let parse = |pairs: &[(&str, &str)]| {
        let mut keys = Keys::from_pairs("sources", "r1", pairs);
        (TYPE.parse)(&mut keys)
            .map_err(|e| e.to_string())
            .map(|spec| {
                spec.as_any()
                    .downcast_ref::<ThriftSourceConfig>()
                    .expect("a thrift source spec")
                    .clone()
            })
    };
    assert_eq!(
        parse(&[("bind", "0.0.0.0"), ("port", "4141")]),
        Ok(ThriftSourceConfig::new("0.0.0.0", 4141))
    );
    let cfg = parse(&[
        ("bind", "0.0.0.0"),
        ("port", "4141"),
        ("protocol", "Binary"),
        ("threads", "3"),
    ])
    .expect("valid");
    assert_eq!((cfg.protocol, cfg.threads), (Protocol::Binary, 3));
    let e = parse(&[("bind", "0.0.0.0"), ("port", "4141"), ("protocol", "tjson")])
        .expect_err("not a protocol Flume offers");
    assert!(e.contains("compact or binary"), "{e}");
    let e = parse(&[("bind", "0.0.0.0"), ("port", "4141"), ("kerberos", "true")])
        .expect_err("kerberos is refused");
    assert!(e.contains("kerberos"), "{e}");
    let e = parse(&[("port", "4141")]).expect_err("bind is required");
    assert!(e.contains("bind"), "{e}");
}

#[test]
fn a_half_sent_request_does_not_hold_up_shutdown() {
    let mut r = Running::start(Protocol::Compact, DEFAULT_MAX_FRAME_BYTES);
    let mut s = r.connect();
    let mut part = 1000u32.to_be_bytes().to_vec();
    part.extend_from_slice(&[0x82; 10]);
    s.write_all(&part).expect("send part of a frame");
    // Let the source read it, then stop: it must return well before idle-timeout (60 s).
    let idle = r.connect();
    drop(idle);
    r.stop.store(true, Ordering::Release);
    let t = r.thread.take().expect("source thread");
    let end = std::time::Instant::now() + Duration::from_secs(20);
    while !t.is_finished() {
        assert!(
            std::time::Instant::now() < end,
            "the source did not stop with a half-sent request open"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    t.join().expect("source thread");
    assert_eq!(r.drain(), Vec::<Event>::new());
}
