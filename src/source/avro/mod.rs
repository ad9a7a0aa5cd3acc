//! The `avro` source (Flume's AvroSource): a TCP listener on `bind:port` speaking Flume's Avro
//! RPC (`AvroSourceProtocol` over Avro's Netty framing), so Flume's avro sink and the Flume
//! SDK's `RpcClient` can send to flumen unchanged. The protocol itself (framing, handshake,
//! call decoding) is the sans-I/O [`crate::avro::ServerConn`]; this module only moves bytes.
//!
//! Each connection runs on its own thread with blocking reads, up to `max-connections` at
//! once; one more is accepted and closed at once with a log line (the client sees the close
//! and fails over or retries). Requests on a connection are handled in order.
//!
//! Invariants:
//! - `Status::OK` is written only after every bound channel's commit of the call's events has
//!   returned; any channel failure (full after its keep-alive, disk full, poisoned) answers
//!   `Status::FAILED`, so the client resends. With several channels a failure on a later
//!   channel leaves the events in the earlier ones, and the resend duplicates them there (as
//!   in Flume, delivery is at least once).
//! - Bad input never panics and never closes more than its own connection: a framing error,
//!   an end of stream inside a request, or no progress for `idle-timeout` inside a request
//!   is logged once with the peer address and the connection is closed. A malformed call
//!   inside a good frame is answered with an Avro error by the protocol layer and the
//!   connection goes on; an unknown message, or an unknown handshake after our NONE, is
//!   answered and then closes the connection (see [`crate::avro::server`]).
//! - Memory per connection is bounded by `max-frame-bytes` (checked by the frame decoder as
//!   the lengths arrive, before anything is allocated for them) plus the decoded events.
//! - With `ssl = true` every connection is TLS ([`crate::avro::transport`] layers it inside
//!   deflate, as Flume 1.11). A handshake that fails (a plaintext client, a client that does
//!   not trust our certificate) is one warning naming the peer and a closed connection; a
//!   handshake not finished within `idle-timeout` is closed like a half-sent request.
//!
//! Shutdown: the accept loop waits for connections in `poll(2)` at most 50 ms at a time
//! ([`crate::net`]), and each connection reads with a 100 ms timeout, so both notice the stop
//! flag promptly. A call whose put is in progress finishes (bounded by the channels'
//! keep-alive) and is answered.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rustls::{ServerConfig, ServerConnection, StreamOwned};

use super::commit::{CommitError, Committer, Ticket, WhenFull};
use super::{OpenGuard, Source, SourceContext, SourceError};

use crate::avro::transport::{into_zlib_error, tls_error, Transport, Wire};
use crate::avro::zlib::ZlibError;
use crate::avro::{
    AnswerReason, Answered, AvroError, FrameLimits, Message, Reply, ServerConn, ServerItem, Status,
};
use crate::event::Event;
use crate::metrics::{ComponentCounters, Counter};
use crate::route::ChannelProcessor;
use crate::source::ip_filter::IpFilter;

mod config;

pub use config::{AvroSourceConfig, TYPE};

/// How often a blocked read wakes to look at the stop flag and the idle clock.
const READ_TIMEOUT: Duration = Duration::from_millis(100);
/// How long writing a response may block on a client that does not read.
const WRITE_TIMEOUT: Duration = Duration::from_secs(60);
/// Bytes read from the socket at a time.
const READ_CHUNK: usize = 64 * 1024;

/// Why a connection was closed early. Every message names the peer.
#[derive(Debug, thiserror::Error)]
pub enum ConnError {
    #[error("reading from {peer}: {source}")]
    Read {
        peer: SocketAddr,
        source: std::io::Error,
    },
    #[error("writing the response to {peer}: {source}")]
    Write {
        peer: SocketAddr,
        source: std::io::Error,
    },
    #[error("bad Avro RPC stream from {peer}, closing the connection: {source}")]
    Protocol { peer: SocketAddr, source: AvroError },
    #[error("bad compressed stream from {peer}, closing the connection: {source}")]
    Zlib { peer: SocketAddr, source: ZlibError },
    #[error("{peer} closed the connection in the middle of a request")]
    EofMidRequest { peer: SocketAddr },
    #[error("{peer} sent nothing for {}s in the middle of a request, closing the connection", .idle.as_secs())]
    IdleMidRequest { peer: SocketAddr, idle: Duration },
    #[error("TLS with {peer} failed, closing the connection: {source}{}", tls_hint(.source))]
    Tls {
        peer: SocketAddr,
        source: rustls::Error,
    },
    #[error("{peer} closed the connection during the TLS handshake; is the client set with ssl = true, and does it trust this source's certificate?")]
    HandshakeEof { peer: SocketAddr },
    #[error("{peer} did not finish the TLS handshake within {}s (idle-timeout), closing the connection; is the client set with ssl = true?", .idle.as_secs())]
    HandshakeTimeout { peer: SocketAddr, idle: Duration },
    #[error("setting up the connection from {peer}: {source}")]
    Setup {
        peer: SocketAddr,
        source: std::io::Error,
    },
}

/// What to add to a TLS error for the operator.
fn tls_hint(e: &rustls::Error) -> &'static str {
    match e {
        rustls::Error::InvalidMessage(_) => {
            " (the client is not speaking TLS: set ssl = true on it, or check compression-type on both sides)"
        }
        rustls::Error::AlertReceived(_) => {
            " (the client refused the handshake: does it trust this source's certificate?)"
        }
        _ => "",
    }
}

/// See the module docs.
pub struct AvroSource {
    name: String,
    channels: Arc<ChannelProcessor>,
    listener: TcpListener,
    addr: SocketAddr,
    max_connections: usize,
    limits: FrameLimits,
    counters: Arc<ComponentCounters>,
    /// `compression-type = deflate` at this `compression-level`; `None`: no compression.
    deflate: Option<u32>,
    /// `ipFilter = true`: the rules every accepted peer is checked against.
    ip_filter: Option<IpFilter>,
    /// `idle-timeout`: how long a client may leave a request half sent.
    idle_timeout: Duration,
    /// `ssl = true`: the TLS configuration (keystore read at start-up).
    tls: Option<Arc<ServerConfig>>,
}

impl AvroSource {
    /// Reads the keystore (with `ssl = true`), then binds `cfg.bind:cfg.port`, so a bad
    /// keystore, a bad address or a port in use stops start-up.
    pub fn bind(ctx: SourceContext, cfg: &AvroSourceConfig) -> Result<AvroSource, SourceError> {
        let tls =
            match &cfg.ssl {
                None => None,
                Some(settings) => Some(crate::avro::tls::server_config(settings).map_err(|e| {
                    SourceError::Start {
                        source_name: ctx.name.clone(),
                        message: format!("ssl: {e}"),
                    }
                })?),
            };
        let (listener, addr) = super::bind_listener(&ctx.name, &cfg.bind, cfg.port)?;
        let defaults = FrameLimits::default();
        let max_frame_bytes = cfg.max_frame_bytes;
        // Avro Java sends a large bytes value as one buffer of its own, so one buffer may be as
        // large as the whole request. Its writers otherwise cut 8 KiB buffers, so a larger
        // request limit needs proportionally more buffers (with room for the small buffers
        // between large ones).
        let limits = FrameLimits {
            max_buffers: u32::try_from(max_frame_bytes / 4096)
                .unwrap_or(u32::MAX)
                .max(defaults.max_buffers),
            max_buffer_bytes: u32::try_from(max_frame_bytes).unwrap_or(u32::MAX),
            max_frame_bytes,
        };
        Ok(AvroSource {
            name: ctx.name,
            channels: ctx.channels,
            listener,
            addr,
            max_connections: cfg.max_connections.max(1),
            limits,
            counters: ctx.counters,
            deflate: cfg.deflate,
            ip_filter: cfg.ip_filter.clone(),
            idle_timeout: cfg.idle_timeout,
            tls,
        })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Source for AvroSource {
    fn run(self: Box<Self>, stop: Arc<AtomicBool>) {
        let src = self.name.clone();
        let tls = if self.tls.is_some() { " with TLS" } else { "" };
        tracing::info!(source = %src, "source `{src}` (avro) listening on {}{tls}", self.addr);
        // Refuse: the channels already waited their keep-alive for room, and the client
        // resends on FAILED (waiting longer would only hold it past its request timeout).
        let committer = match Committer::start(
            &src,
            Arc::clone(&self.channels),
            Arc::clone(&self.counters),
            WhenFull::Refuse,
            Arc::clone(&stop),
        ) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(source = %src, "source `{src}` cannot start: no thread for its commits: {e}");
                return;
            }
        };
        let conn = Arc::new(ConnSettings {
            source: src.clone(),
            committer: committer.clone(),
            limits: self.limits,
            counters: Arc::clone(&self.counters),
            deflate: self.deflate,
            idle_timeout: self.idle_timeout,
            tls: self.tls.clone(),
        });
        let open = Arc::new(AtomicUsize::new(0));
        let mut workers: Vec<JoinHandle<()>> = Vec::new();
        while !stop.load(Ordering::Acquire) {
            match self.listener.accept() {
                Ok((stream, peer)) => {
                    workers.retain(|w| !w.is_finished());
                    if let Some(filter) = &self.ip_filter {
                        let verdict = filter.check(peer.ip());
                        if !verdict.allowed {
                            let rule = verdict.rule.map_or_else(String::new, ToString::to_string);
                            tracing::warn!(
                                source = %src,
                                "source `{src}`: refused the connection from {peer}: denied by ipFilterRules rule `{rule}`"
                            );
                            drop(stream);
                            continue;
                        }
                    }
                    if open.load(Ordering::Acquire) >= self.max_connections {
                        // Closing at once (rather than leaving it in the backlog) tells the
                        // client to go elsewhere instead of timing out.
                        tracing::warn!(
                            source = %src,
                            "source `{src}`: refused the connection from {peer}: already {} open (max-connections)",
                            self.max_connections
                        );
                        drop(stream);
                        continue;
                    }
                    let guard = OpenGuard::new(&open, &self.counters);
                    let conn = Arc::clone(&conn);
                    let stop = Arc::clone(&stop);
                    let spawned = std::thread::Builder::new()
                        .name(format!("{src}-conn"))
                        .spawn(move || {
                            let _guard = guard;
                            conn.serve(stream, peer, &stop);
                        });
                    match spawned {
                        Ok(h) => workers.push(h),
                        Err(e) => tracing::error!(
                            source = %src,
                            "source `{src}`: cannot start a thread for the connection from {peer}: {e}"
                        ),
                    }
                }
                Err(e) => crate::net::after_failed_accept(&self.listener, &e, |e| {
                    tracing::warn!(source = %src, "source `{src}`: accept on {}: {e}", self.addr);
                }),
            }
        }
        drop(self.listener);
        for w in workers {
            if w.join().is_err() {
                tracing::error!(source = %src, "source `{src}`: a connection thread panicked");
            }
        }
        committer.finish();
    }
}

/// What a connection thread needs.
struct ConnSettings {
    source: String,
    committer: Committer,
    limits: FrameLimits,
    counters: Arc<ComponentCounters>,
    deflate: Option<u32>,
    idle_timeout: Duration,
    tls: Option<Arc<ServerConfig>>,
}

impl ConnSettings {
    fn serve(&self, stream: TcpStream, peer: SocketAddr, stop: &AtomicBool) {
        let src = &self.source;
        tracing::debug!(source = %src, "source `{src}`: connection from {peer}");
        // A second handle keeps the socket open until the outcome is logged, so the line is
        // written before the peer sees the close (tests and operators can rely on the order).
        let hold = stream.try_clone();
        match self.run_conn(stream, peer, stop) {
            Ok(()) => {
                tracing::debug!(source = %src, "source `{src}`: connection from {peer} closed")
            }
            Err(e) => tracing::warn!(source = %src, "source `{src}`: {e}"),
        }
        if let Ok(s) = hold {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }

    /// Reads requests until EOF, shutdown, or an error; answers each.
    fn run_conn(
        &self,
        stream: TcpStream,
        peer: SocketAddr,
        stop: &AtomicBool,
    ) -> Result<(), ConnError> {
        let setup = |source| ConnError::Setup { peer, source };
        stream.set_nonblocking(false).map_err(setup)?;
        stream.set_read_timeout(Some(READ_TIMEOUT)).map_err(setup)?;
        stream
            .set_write_timeout(Some(WRITE_TIMEOUT))
            .map_err(setup)?;
        // Responses are small and the client waits for each: do not let Nagle hold them.
        stream.set_nodelay(true).map_err(setup)?;
        // Deflate outside, TLS inside: Flume 1.11's pipeline order (see avro::transport).
        let wire = Wire::new(stream, self.deflate);
        let mut transport = match &self.tls {
            None => Transport::Plain(wire),
            Some(cfg) => {
                let tls = ServerConnection::new(Arc::clone(cfg))
                    .map_err(|source| ConnError::Tls { peer, source })?;
                Transport::Tls(Box::new(StreamOwned::new(tls, wire)))
            }
        };
        let mut conn = ServerConn::new(self.limits);
        // One read returns at most a chunk of plain (inflated, decrypted) bytes, and the
        // decoder (which enforces the frame limits) and the answers catch up before the next.
        let mut chunk = vec![0u8; READ_CHUNK];
        let mut items = Vec::new();
        let mut last_progress = Instant::now();
        loop {
            if stop.load(Ordering::Acquire) {
                return Ok(());
            }
            let n = match transport.read(&mut chunk) {
                Ok(0) => return end_of_stream(&conn, &transport, peer),
                Ok(n) => n,
                // A socket timeout (WouldBlock or TimedOut), or rustls waiting for the rest
                // of a record (WouldBlock): nothing is lost, read again.
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    let idle = last_progress.elapsed();
                    if idle >= self.idle_timeout {
                        if transport.is_handshaking() {
                            return Err(ConnError::HandshakeTimeout { peer, idle });
                        }
                        if !conn.is_idle() {
                            return Err(ConnError::IdleMidRequest { peer, idle });
                        }
                    }
                    continue;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                // A TLS peer that closed the socket without close_notify (or during the
                // handshake).
                Err(e) if e.kind() == ErrorKind::UnexpectedEof => {
                    return end_of_stream(&conn, &transport, peer)
                }
                Err(e) => return Err(read_error(peer, e)),
            };
            last_progress = Instant::now();
            self.feed(&mut conn, &chunk[..n], &mut items, &mut transport, peer)?;
        }
    }

    /// Feeds request bytes to the protocol, puts the events of every call they complete
    /// (together: one commit for the calls of one read, as far as the channels'
    /// `transactionCapacity` allows), and writes the answers in request order.
    fn feed(
        &self,
        conn: &mut ServerConn,
        bytes: &[u8],
        items: &mut Vec<ServerItem>,
        transport: &mut Transport<ServerConnection>,
        peer: SocketAddr,
    ) -> Result<(), ConnError> {
        let fed = conn.feed(bytes, items);
        // Requests completed before a framing error are still answered: their bytes were
        // good, and the client may be waiting on them.
        let mut answers = Vec::with_capacity(items.len());
        let mut tickets = Vec::new();
        let mut batch: Vec<Event> = Vec::new();
        let max = self.committer.max_batch();
        for item in items.drain(..) {
            match item {
                ServerItem::Answered(a) => {
                    self.log_answered(&a, peer);
                    answers.push(Answer::Ready(a.response));
                }
                ServerItem::Call(call) => {
                    let accepted = match &call.message {
                        Message::Append(_) => {
                            self.counters.inc(Counter::AppendReceivedCount);
                            Counter::AppendAcceptedCount
                        }
                        Message::AppendBatch(_) => {
                            self.counters.inc(Counter::AppendBatchReceivedCount);
                            Counter::AppendBatchAcceptedCount
                        }
                    };
                    let events = call.message.into_events();
                    self.counters
                        .add(Counter::EventReceivedCount, events.len() as u64);
                    if !batch.is_empty() && batch.len() + events.len() > max {
                        tickets.push(self.committer.submit(std::mem::take(&mut batch)));
                    }
                    answers.push(Answer::Put {
                        reply: call.reply,
                        ticket: tickets.len(),
                        events: events.len(),
                        accepted,
                    });
                    batch.extend(events);
                }
            }
        }
        if !batch.is_empty() {
            tickets.push(self.committer.submit(batch));
        }
        let outcomes: Vec<Result<(), CommitError>> =
            tickets.into_iter().map(Ticket::wait).collect();
        let mut out = Vec::new();
        for answer in answers {
            match answer {
                Answer::Ready(bytes) => out.extend_from_slice(&bytes),
                Answer::Put {
                    reply,
                    ticket,
                    events,
                    accepted,
                } => {
                    let status = match outcomes.get(ticket) {
                        Some(Ok(())) => {
                            self.counters.inc(accepted);
                            Status::Ok
                        }
                        Some(Err(e)) => {
                            tracing::warn!(
                                source = %self.source,
                                "source `{}`: answered FAILED to {events} events from {peer} (the client will resend): {e}",
                                self.source
                            );
                            Status::Failed
                        }
                        None => Status::Failed,
                    };
                    out.extend_from_slice(&reply.status(status));
                }
            }
        }
        if !out.is_empty() {
            transport
                .write_all(&out)
                .and_then(|()| transport.flush())
                .map_err(|source| ConnError::Write { peer, source })?;
        }
        fed.map_err(|source| ConnError::Protocol { peer, source })
    }

    fn log_answered(&self, a: &Answered, peer: SocketAddr) {
        let src = &self.source;
        match &a.reason {
            AnswerReason::Refused(e) => tracing::warn!(
                source = %src,
                "source `{src}`: refused request {} from {peer}: {e}",
                a.serial
            ),
            other => tracing::debug!(
                source = %src,
                "source `{src}`: answered request {} from {peer} ({other:?})",
                a.serial
            ),
        }
    }
}

/// One request's answer, in request order: ready now, or its call's status once the commit
/// holding its events (`tickets[ticket]`) has returned.
enum Answer {
    Ready(Vec<u8>),
    Put {
        reply: Reply,
        ticket: usize,
        events: usize,
        accepted: Counter,
    },
}

/// What the end of a connection's stream means: a normal close between requests (or before
/// any byte, as a port probe does), or a request or TLS handshake cut short.
fn end_of_stream(
    conn: &ServerConn,
    transport: &Transport<ServerConnection>,
    peer: SocketAddr,
) -> Result<(), ConnError> {
    if transport.is_handshaking() {
        return if transport.received() == 0 {
            Ok(())
        } else {
            Err(ConnError::HandshakeEof { peer })
        };
    }
    if conn.is_idle() {
        Ok(())
    } else {
        Err(ConnError::EofMidRequest { peer })
    }
}

/// Classifies a read error: a bad zlib stream, a TLS failure, or another I/O error.
fn read_error(peer: SocketAddr, e: std::io::Error) -> ConnError {
    let e = match into_zlib_error(e) {
        Ok(source) => return ConnError::Zlib { peer, source },
        Err(e) => e,
    };
    if let Some(source) = tls_error(&e) {
        return ConnError::Tls {
            peer,
            source: source.clone(),
        };
    }
    ConnError::Read { peer, source: e }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::avro::{ClientConn, ClientItem};
    use crate::channel::memory::{MemoryChannel, MemoryChannelConfig};
    use crate::channel::Channel;

    /// A running source on an ephemeral port with one memory channel.
    struct Running {
        addr: SocketAddr,
        channel: Arc<dyn Channel>,
        counters: Arc<ComponentCounters>,
        stop: Arc<AtomicBool>,
        thread: Option<JoinHandle<()>>,
    }

    impl Running {
        fn start(max_frame_bytes: u64) -> Running {
            let channel: Arc<dyn Channel> = Arc::new(
                MemoryChannel::new(
                    "c1",
                    MemoryChannelConfig {
                        capacity: 1000,
                        ..MemoryChannelConfig::default()
                    },
                )
                .expect("channel"),
            );
            let ctx = SourceContext::detached("r1", vec![Arc::clone(&channel)]);
            let counters = Arc::clone(&ctx.counters);
            let cfg = AvroSourceConfig {
                max_connections: 4,
                max_frame_bytes,
                ..AvroSourceConfig::new("127.0.0.1", 0)
            };
            let src = AvroSource::bind(ctx, &cfg).expect("bind");
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
            s.set_read_timeout(Some(Duration::from_secs(10)))
                .expect("timeout");
            s
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

    /// Writes `frame` and reads until the client decodes one response.
    fn call(s: &mut TcpStream, client: &mut ClientConn, frame: &[u8]) -> Result<Status, String> {
        s.write_all(frame).expect("send");
        let mut buf = vec![0u8; 4096];
        let mut items = Vec::new();
        loop {
            let n = s.read(&mut buf).expect("read the response");
            assert!(n > 0, "the server closed the connection");
            client.feed(&buf[..n], &mut items).expect("decode");
            if let Some(item) = items.pop() {
                match item {
                    ClientItem::Response { result, .. } => return result,
                    other => panic!("unexpected {other:?}"),
                }
            }
        }
    }

    #[test]
    fn append_and_append_batch_are_committed_then_acknowledged() {
        let r = Running::start(64 << 20);
        let mut s = r.connect();
        let mut client = ClientConn::default();
        // A 1 MiB body: larger than any one read, one event.
        let big = Event::with_headers(
            [("h".to_string(), "1".to_string())].into_iter().collect(),
            vec![7u8; 1 << 20],
        );
        let (_, frame) = client.append(&big).expect("encode");
        assert_eq!(call(&mut s, &mut client, &frame), Ok(Status::Ok));
        let batch: Vec<Event> = (0..5).map(|i| Event::new(format!("{i}"))).collect();
        let (_, frame) = client.append_batch(&batch).expect("encode");
        assert_eq!(call(&mut s, &mut client, &frame), Ok(Status::Ok));

        let mut got = Vec::new();
        let mut tx = r.channel.take_transaction();
        tx.take_batch(100, &mut got).expect("take");
        tx.commit().expect("commit");
        assert_eq!(got.len(), 6);
        assert_eq!(got[0], big);
        assert_eq!(&got[1..], &batch[..]);
        let c = &r.counters;
        assert_eq!(c.get(Counter::AppendReceivedCount), 1);
        assert_eq!(c.get(Counter::AppendAcceptedCount), 1);
        assert_eq!(c.get(Counter::AppendBatchReceivedCount), 1);
        assert_eq!(c.get(Counter::AppendBatchAcceptedCount), 1);
        assert_eq!(c.get(Counter::EventReceivedCount), 6);
        assert_eq!(c.get(Counter::EventAcceptedCount), 6);
        assert_eq!(c.get(Counter::OpenConnectionCount), 1);
    }

    /// A client that pipelines: ten appendBatch calls in one write are committed together
    /// (far fewer commits than calls) and each is answered OK.
    #[test]
    fn pipelined_calls_share_a_commit_and_are_all_answered() {
        let r = Running::start(64 << 20);
        let mut s = r.connect();
        let mut client = ClientConn::default();
        // The handshake rides on the first call; only then may calls be pipelined.
        let first = [Event::new("first")];
        let (_, frame) = client.append_batch(&first).expect("encode");
        assert_eq!(call(&mut s, &mut client, &frame), Ok(Status::Ok));
        let mut frames = Vec::new();
        let mut sent = first.to_vec();
        for call in 0..10 {
            let batch: Vec<Event> = (0..5).map(|i| Event::new(format!("{call}-{i}"))).collect();
            let (_, frame) = client.append_batch(&batch).expect("encode");
            frames.extend_from_slice(&frame);
            sent.extend(batch);
        }
        s.write_all(&frames).expect("send");
        let mut buf = vec![0u8; 4096];
        let mut items = Vec::new();
        let mut answered = 0;
        while answered < 10 {
            let n = s.read(&mut buf).expect("read the responses");
            assert!(n > 0, "the server closed the connection");
            client.feed(&buf[..n], &mut items).expect("decode");
            for item in items.drain(..) {
                match item {
                    ClientItem::Response { result, .. } => {
                        assert_eq!(result, Ok(Status::Ok));
                        answered += 1;
                    }
                    other => panic!("unexpected {other:?}"),
                }
            }
        }
        let commits = r.channel.stats().commits - 1;
        assert!(commits < 10, "10 pipelined calls took {commits} commits");
        let mut got = Vec::new();
        let mut tx = r.channel.take_transaction();
        tx.take_batch(100, &mut got).expect("take");
        tx.commit().expect("commit");
        assert_eq!(got, sent);
        assert_eq!(r.counters.get(Counter::AppendBatchAcceptedCount), 11);
        assert_eq!(r.counters.get(Counter::EventAcceptedCount), 51);
    }

    #[test]
    fn a_request_over_max_frame_bytes_closes_the_connection() {
        let r = Running::start(4096);
        let mut s = r.connect();
        let mut client = ClientConn::default();
        let (_, frame) = client
            .append(&Event::new(vec![1u8; 10_000]))
            .expect("encode");
        // The server may close while we are still writing: either way the write or the read
        // must end, never hang.
        let _ = s.write_all(&frame);
        let mut buf = [0u8; 64];
        match s.read(&mut buf) {
            Ok(0) => {}
            Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
            other => panic!("expected the connection to close, got {other:?}"),
        }
        assert_eq!(r.channel.stats().size, 0);
    }
}
