//! The `thrift` source (Flume's ThriftSource): a TCP listener on `bind:port` speaking Flume's
//! `ThriftSourceProtocol` (framed transport, compact or binary protocol), so Flume's thrift
//! sink and the Flume SDK's `ThriftRpcClient` (and any Thrift client built from
//! `flume.thrift`) can send to flumen unchanged. The protocol itself is the sans-I/O
//! [`crate::thrift`]; this module only moves bytes.
//!
//! Connections are tasks on a small tokio runtime the source builds for itself, up to
//! `max-connections` at once (one more is accepted and closed at once, logged at most every
//! ten seconds); an idle connection costs a task and a few bytes of buffer.
//!
//! Invariants:
//! - `Status.OK` is written only after every bound channel's commit of the call's events has
//!   returned. Everything a connection has read and not yet answered (several pipelined
//!   calls) goes to the source's [`Committer`] together, in as few transactions as the
//!   channels' `transactionCapacity` allows and never splitting a call (each is all committed
//!   or none), and is answered in order. A channel that stays full is waited on
//!   (backpressure: the client's request timeout decides); a channel that fails answers
//!   `Status.FAILED`, so the client resends.
//! - Blocking channel commits run on the committer's thread, never on the runtime's workers.
//! - Bad input never panics and never closes more than its own connection: a frame length over
//!   `max-frame-bytes` (checked on its 4 bytes, before anything is kept for the body), a
//!   message envelope of another protocol, an end of stream inside a frame, or no progress
//!   for `idle-timeout` inside a frame is logged once with the peer address and the
//!   connection is closed. A malformed call inside a good frame is answered with a Thrift
//!   exception (as Thrift Java does) and the connection goes on.
//! - Memory per connection is bounded by `max-frame-bytes` plus one read (64 KiB) plus the
//!   decoded events, and the request bytes of all connections together by [`BUFFER_BUDGET`]
//!   (at least two frames): a read is done only once the budget has room for it, and keeps
//!   only the room of the bytes that came, so slow senders hold only what they sent. A
//!   connection in the middle of a request that waits `idle-timeout` for room is closed (so
//!   connections that all wait for room cannot wait on each other for ever).
//! - With `ssl = true` every connection is TLS from its first byte; a handshake that fails is
//!   one warning naming the peer, one not finished within `idle-timeout` is closed likewise.
//!
//! Shutdown: the stop flag is polled every 50 ms; then the accept loop ends and each
//! connection returns (a commit in progress is answered first; a request half received is
//! dropped unanswered, so its client resends it elsewhere or later).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};

use super::commit::{CommitError, Committer, WhenFull};
use super::{OpenGuard, Source, SourceContext, SourceError};
use crate::event::Event;
use crate::metrics::{ComponentCounters, Counter};
use crate::route::ChannelProcessor;
use crate::thrift::{
    decode_call, encode_reply, FrameDecoder, FrameError, Method, Protocol, Request, Status,
    ThriftError,
};

mod config;

pub use config::{ThriftSourceConfig, TYPE};

/// Most bytes read from a socket at a time.
const READ_CHUNK: usize = 64 * 1024;
/// Request bytes all connections of one source may hold at once (raised to two frames when
/// `max-frame-bytes` is larger).
pub const BUFFER_BUDGET: usize = 256 << 20;
/// How often the stop flag is looked at.
const STOP_POLL: Duration = Duration::from_millis(50);
/// Least time between two log lines about refused connections (over `max-connections`).
const REFUSAL_LOG_EVERY: Duration = Duration::from_secs(10);

/// Why a connection was closed early. Every message names the peer.
#[derive(Debug, thiserror::Error)]
pub enum ConnError {
    #[error("reading from {peer}: {source}")]
    Read {
        peer: SocketAddr,
        source: std::io::Error,
    },
    #[error("writing the reply to {peer}: {source}")]
    Write {
        peer: SocketAddr,
        source: std::io::Error,
    },
    #[error("bad Thrift frame from {peer}, closing the connection: {source}")]
    Frame {
        peer: SocketAddr,
        source: FrameError,
    },
    #[error("bad Thrift message from {peer}, closing the connection: {source}")]
    Protocol {
        peer: SocketAddr,
        source: ThriftError,
    },
    #[error(
        "{peer} closed the connection in the middle of a request ({held} bytes of it received)"
    )]
    EofMidRequest { peer: SocketAddr, held: usize },
    #[error("{peer} sent nothing for {}s in the middle of a request, closing the connection", .idle.as_secs())]
    IdleMidRequest { peer: SocketAddr, idle: Duration },
    #[error("the source's request buffer ({} MiB for all connections) stayed full for {}s while {peer} was in the middle of a request, closing its connection: too many large requests at once (lower the senders' batch sizes or max-frame-bytes)", BUFFER_BUDGET >> 20, .idle.as_secs())]
    BudgetFull { peer: SocketAddr, idle: Duration },
    #[error("TLS handshake with {peer} failed, closing the connection: {source} (is the client set with ssl = true, and does it trust this source's certificate?)")]
    Tls {
        peer: SocketAddr,
        source: std::io::Error,
    },
    #[error("{peer} did not finish the TLS handshake within {}s (idle-timeout), closing the connection; is the client set with ssl = true?", .idle.as_secs())]
    HandshakeTimeout { peer: SocketAddr, idle: Duration },
}

/// See the module docs.
pub struct ThriftSource {
    name: String,
    listener: std::net::TcpListener,
    addr: SocketAddr,
    threads: usize,
    max_connections: usize,
    channels: Arc<ChannelProcessor>,
    counters: Arc<ComponentCounters>,
    protocol: Protocol,
    max_frame_bytes: u32,
    idle_timeout: Duration,
    tls: Option<tokio_rustls::TlsAcceptor>,
    budget: usize,
}

/// What every connection task needs.
struct ConnSettings {
    source: String,
    committer: Committer,
    counters: Arc<ComponentCounters>,
    protocol: Protocol,
    max_frame_bytes: u32,
    idle_timeout: Duration,
    tls: Option<tokio_rustls::TlsAcceptor>,
    /// Request bytes held by all connections (see [`BUFFER_BUDGET`]).
    budget: Arc<Semaphore>,
}

impl ThriftSource {
    /// Reads the keystore (with `ssl = true`), then binds `cfg.bind:cfg.port`, so a bad
    /// keystore, a bad address or a port in use stops start-up.
    pub fn bind(ctx: SourceContext, cfg: &ThriftSourceConfig) -> Result<ThriftSource, SourceError> {
        let tls = match &cfg.ssl {
            None => None,
            Some(settings) => {
                let c =
                    crate::avro::tls::server_config(settings).map_err(|e| SourceError::Start {
                        source_name: ctx.name.clone(),
                        message: format!("ssl: {e}"),
                    })?;
                Some(tokio_rustls::TlsAcceptor::from(c))
            }
        };
        let (listener, addr) = super::bind_listener(&ctx.name, &cfg.bind, cfg.port)?;
        let budget = BUFFER_BUDGET.max(2 * cfg.max_frame_bytes as usize);
        Ok(ThriftSource {
            name: ctx.name,
            listener,
            addr,
            threads: cfg.threads,
            max_connections: cfg.max_connections.max(1),
            channels: ctx.channels,
            counters: ctx.counters,
            protocol: cfg.protocol,
            max_frame_bytes: cfg.max_frame_bytes,
            idle_timeout: cfg.idle_timeout,
            tls,
            budget,
        })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Source for ThriftSource {
    fn run(self: Box<Self>, stop: Arc<AtomicBool>) {
        let src = self.name.clone();
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let workers = if self.threads == 0 {
            cpus
        } else {
            self.threads.min(cpus)
        };
        let rt = match tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers.max(1))
            .thread_name(format!("thrift-{src}"))
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => {
                tracing::error!(source = %src, "source `{src}`: cannot start its runtime: {e}");
                return;
            }
        };
        // Wait: a full channel holds the clients' replies until there is room (backpressure),
        // rather than FAILED answers that make every client resend at once.
        let committer = match Committer::start(
            &src,
            Arc::clone(&self.channels),
            Arc::clone(&self.counters),
            WhenFull::Wait,
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
            counters: Arc::clone(&self.counters),
            protocol: self.protocol,
            max_frame_bytes: self.max_frame_bytes,
            idle_timeout: self.idle_timeout,
            tls: self.tls.clone(),
            budget: Arc::new(Semaphore::new(self.budget)),
        });
        rt.block_on(self.serve(conn, stop));
        // Connections still open (a client that never sends) are dropped with the runtime.
        rt.shutdown_timeout(Duration::from_secs(1));
        committer.finish();
    }
}

impl ThriftSource {
    async fn serve(self, conn_settings: Arc<ConnSettings>, stop: Arc<AtomicBool>) {
        let src = self.name.clone();
        let listener = match tokio::net::TcpListener::from_std(self.listener) {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(source = %src, "source `{src}`: listening on {}: {e}", self.addr);
                return;
            }
        };
        let tls = if self.tls.is_some() { " with TLS" } else { "" };
        tracing::info!(
            source = %src,
            "source `{src}` (thrift, {} protocol) listening on {}{tls}",
            self.protocol.name(),
            self.addr
        );
        let (stop_tx, stop_rx) = watch::channel(false);
        let flag = Arc::clone(&stop);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(STOP_POLL);
            while !flag.load(Ordering::Acquire) {
                tick.tick().await;
            }
            let _ = stop_tx.send(true);
        });
        let open = Arc::new(AtomicUsize::new(0));
        let refused = Refusals::default();
        let mut tasks = tokio::task::JoinSet::new();
        let mut stopping = stop_rx.clone();
        let mut accept_failing = false;
        loop {
            let accepted = tokio::select! {
                _ = stopping.wait_for(|s| *s) => break,
                a = listener.accept() => a,
            };
            // Reap finished connections, so the set does not grow with every connection.
            while tasks.try_join_next().is_some() {}
            match accepted {
                Ok((stream, peer)) => {
                    accept_failing = false;
                    if open.load(Ordering::Acquire) >= self.max_connections {
                        refused.refuse(&src, peer, self.max_connections);
                        drop(stream);
                        continue;
                    }
                    let guard = OpenGuard::new(&open, &self.counters);
                    let conn = Arc::clone(&conn_settings);
                    let stop_rx = stop_rx.clone();
                    tasks.spawn(async move {
                        conn.serve(stream, peer, stop_rx).await;
                        drop(guard);
                    });
                }
                Err(e) => {
                    // Out of file descriptors and the like repeats until a connection
                    // closes: said once per episode, and no spinning.
                    if !accept_failing {
                        accept_failing = true;
                        tracing::warn!(source = %src, "source `{src}`: accept on {}: {e} (retrying every {STOP_POLL:?}; said once until an accept succeeds)", self.addr);
                    }
                    tokio::time::sleep(STOP_POLL).await;
                }
            }
        }
        drop(listener);
        // Connections see the stop between requests; a commit in progress is answered first.
        while tasks.join_next().await.is_some() {}
    }
}

/// Log lines about connections refused over `max-connections`: the first, then at most one
/// every [`REFUSAL_LOG_EVERY`] with the count since.
#[derive(Default)]
struct Refusals {
    last: Mutex<Option<Instant>>,
    since: AtomicU64,
}

impl Refusals {
    fn refuse(&self, src: &str, peer: SocketAddr, max: usize) {
        let n = self.since.fetch_add(1, Ordering::AcqRel) + 1;
        let mut last = self.last.lock();
        if last.is_none_or(|t| t.elapsed() >= REFUSAL_LOG_EVERY) {
            *last = Some(Instant::now());
            self.since.store(0, Ordering::Release);
            tracing::warn!(
                source = %src,
                "source `{src}`: refused the connection from {peer} ({n} refused since the last such line): {max} connections are open (max-connections)"
            );
        }
    }
}

/// One answer owed to the client, in the order the requests came.
enum Owed {
    /// A call whose events are in the commit at hand: answered with its outcome.
    Call {
        method: Method,
        seqid: i32,
        oneway: bool,
        /// How many of the pending events are this call's.
        events: usize,
    },
    /// A refused call: its exception reply.
    Refused(Vec<u8>),
}

impl ConnSettings {
    async fn serve(
        &self,
        stream: tokio::net::TcpStream,
        peer: SocketAddr,
        stop_rx: watch::Receiver<bool>,
    ) {
        let src = &self.source;
        tracing::debug!(source = %src, "source `{src}`: connection from {peer}");
        // Replies are small and the client waits for each: do not let Nagle hold them.
        let _ = stream.set_nodelay(true);
        let result = match &self.tls {
            None => self.run_conn(stream, peer, stop_rx).await,
            Some(acceptor) => {
                match tokio::time::timeout(self.idle_timeout, acceptor.accept(stream)).await {
                    Ok(Ok(tls)) => self.run_conn(tls, peer, stop_rx).await,
                    // A port probe: connected and closed without a byte.
                    Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(()),
                    Ok(Err(source)) => Err(ConnError::Tls { peer, source }),
                    Err(_) => Err(ConnError::HandshakeTimeout {
                        peer,
                        idle: self.idle_timeout,
                    }),
                }
            }
        };
        match result {
            Ok(()) => {
                tracing::debug!(source = %src, "source `{src}`: connection from {peer} closed")
            }
            Err(e) => tracing::warn!(source = %src, "source `{src}`: {e}"),
        }
    }

    /// Reads requests until EOF, shutdown, or an error; answers each, in order.
    async fn run_conn<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        mut stream: S,
        peer: SocketAddr,
        mut stop_rx: watch::Receiver<bool>,
    ) -> Result<(), ConnError> {
        let mut decoder = FrameDecoder::new(self.max_frame_bytes);
        let mut buf = BytesMut::new();
        // Budget held for the bytes read and not yet answered.
        let mut held: Vec<OwnedSemaphorePermit> = Vec::new();
        let mut owed = Vec::new();
        let mut events = Vec::new();
        loop {
            // Every complete request read so far, decoded; a bad frame or envelope ends the
            // connection after the requests before it are answered.
            let mut fatal = None;
            loop {
                match decoder.decode(&mut buf) {
                    Ok(Some(msg)) => match decode_call(self.protocol, msg) {
                        Ok(Request::Call(c)) => {
                            self.count_received(c.method, c.events.len());
                            owed.push(Owed::Call {
                                method: c.method,
                                seqid: c.seqid,
                                oneway: c.oneway,
                                events: c.events.len(),
                            });
                            events.extend(c.events);
                        }
                        Ok(Request::Refused {
                            name,
                            seqid,
                            error,
                            response,
                        }) => {
                            tracing::warn!(
                                source = %self.source,
                                "source `{}`: refused call {name:?} (seqid {seqid}) from {peer}: {error}",
                                self.source
                            );
                            owed.push(Owed::Refused(response));
                        }
                        Err(source) => {
                            fatal = Some(ConnError::Protocol { peer, source });
                            break;
                        }
                    },
                    Ok(None) => break,
                    Err(source) => {
                        fatal = Some(ConnError::Frame { peer, source });
                        break;
                    }
                }
            }
            if !owed.is_empty() {
                let replies = self.commit_and_answer(&mut owed, &mut events, peer).await;
                stream
                    .write_all(&replies)
                    .await
                    .map_err(|source| ConnError::Write { peer, source })?;
                stream
                    .flush()
                    .await
                    .map_err(|source| ConnError::Write { peer, source })?;
                // Answered: the budget of what was read goes back (a partial next frame still
                // in `buf`, at most one read, is not counted again).
                held.clear();
            }
            if let Some(e) = fatal {
                return Err(e);
            }
            if buf.is_empty() && *stop_rx.borrow() {
                return Ok(());
            }
            // Read what the next frame still needs, at most one chunk; once its length is
            // known (and checked), reserve it in the source's budget before reading the body.
            // Read what the next frame still needs (its length first), at most one chunk,
            // and only once the source's budget has room for those bytes: the budget counts
            // bytes actually received, so slow senders hold only what they sent.
            let wanted = decoder
                .wanted(&buf)
                .map_err(|source| ConnError::Frame { peer, source })?;
            let between = buf.is_empty();
            let want = if between {
                // Between requests: room for the next length and a small call, so idle
                // connections stay cheap and small calls need one read.
                4096
            } else {
                wanted.clamp(1, READ_CHUNK)
            };
            // Mid-request the wait is bounded like a read: connections that all wait for
            // budget to finish their frames would otherwise wait on each other for ever.
            let acquire = async {
                let a = Arc::clone(&self.budget).acquire_many_owned(want as u32);
                if between {
                    Ok(a.await)
                } else {
                    tokio::time::timeout(self.idle_timeout, a).await
                }
            };
            let mut permit = tokio::select! {
                p = acquire => match p {
                    Ok(p) => p.ok(),
                    Err(_) => {
                        return Err(ConnError::BudgetFull {
                            peer,
                            idle: self.idle_timeout,
                        })
                    }
                },
                _ = stop_rx.wait_for(|s| *s) => return Ok(()),
            };
            buf.reserve(want);
            let read = async {
                let mut limited = (&mut stream).take(want as u64);
                if between {
                    // Between requests a client may stay silent as long as it likes.
                    Ok(limited.read_buf(&mut buf).await)
                } else {
                    tokio::time::timeout(self.idle_timeout, limited.read_buf(&mut buf)).await
                }
            };
            let n = tokio::select! {
                r = read => r,
                // A request half received at shutdown was never answered: the client resends.
                _ = stop_rx.wait_for(|s| *s) => return Ok(()),
            };
            // Keep the budget of the bytes that came; the rest goes back at once.
            if let (Some(p), Ok(Ok(got))) = (permit.as_mut(), &n) {
                held.extend(p.split(*got));
            }
            drop(permit);
            match n {
                Ok(Ok(0)) if buf.is_empty() => return Ok(()),
                Ok(Ok(0)) => {
                    return Err(ConnError::EofMidRequest {
                        peer,
                        held: buf.len(),
                    })
                }
                Ok(Ok(_)) => {}
                // A TLS peer that closed without close_notify between requests.
                Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof && buf.is_empty() => {
                    return Ok(())
                }
                Ok(Err(source)) => return Err(ConnError::Read { peer, source }),
                Err(_) => {
                    return Err(ConnError::IdleMidRequest {
                        peer,
                        idle: self.idle_timeout,
                    })
                }
            }
        }
    }

    fn count_received(&self, method: Method, n: usize) {
        let c = match method {
            Method::Append => Counter::AppendReceivedCount,
            Method::AppendBatch => Counter::AppendBatchReceivedCount,
        };
        self.counters.inc(c);
        self.counters.add(Counter::EventReceivedCount, n as u64);
    }

    /// Commits `events` (the events of every call in `owed`, in order) through the source's
    /// [`Committer`] and returns the replies, in request order. The calls go in requests as
    /// large as the channels' `transactionCapacity` allows, never splitting a call, so each
    /// call is all committed or none (one call larger than that is refused by the channel, as
    /// in Flume, and answered FAILED).
    async fn commit_and_answer(
        &self,
        owed: &mut Vec<Owed>,
        events: &mut Vec<Event>,
        peer: SocketAddr,
    ) -> Vec<u8> {
        let max = self.committer.max_batch();
        let mut rest = std::mem::take(events).into_iter();
        let mut tickets = Vec::new();
        let mut batch: Vec<Event> = Vec::new();
        // Which ticket answers each call.
        let mut which = Vec::with_capacity(owed.len());
        for o in owed.iter() {
            if let Owed::Call { events: n, .. } = o {
                if !batch.is_empty() && batch.len() + n > max {
                    tickets.push(self.committer.submit(std::mem::take(&mut batch)));
                }
                which.push(tickets.len());
                batch.extend(rest.by_ref().take(*n));
            }
        }
        if !batch.is_empty() {
            tickets.push(self.committer.submit(batch));
        }
        let mut outcomes: Vec<Result<(), CommitError>> = Vec::with_capacity(tickets.len());
        for t in tickets {
            outcomes.push(t.await);
        }
        let mut out = Vec::new();
        let mut which = which.into_iter();
        for o in owed.drain(..) {
            match o {
                Owed::Refused(reply) => out.extend(reply),
                Owed::Call {
                    method,
                    seqid,
                    oneway,
                    events: n,
                } => {
                    let outcome = which.next().and_then(|i| outcomes.get(i));
                    let status = match outcome {
                        // A call without events (an empty appendBatch) has no ticket.
                        Some(Ok(())) | None => {
                            self.counters.inc(match method {
                                Method::Append => Counter::AppendAcceptedCount,
                                Method::AppendBatch => Counter::AppendBatchAcceptedCount,
                            });
                            Status::Ok
                        }
                        Some(Err(e)) => {
                            tracing::warn!(
                                source = %self.source,
                                "source `{}`: answered FAILED to {n} events from {peer} (the client will resend): {e}",
                                self.source
                            );
                            Status::Failed
                        }
                    };
                    if !oneway {
                        out.extend(encode_reply(self.protocol, method, seqid, status));
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests;
