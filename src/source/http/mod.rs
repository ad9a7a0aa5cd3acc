//! The `http` source (Flume's HTTPSource): an HTTP/1.1 server on `bind:port` whose requests
//! become events through Flume's handlers: a JSON array of events ([`json`], Flume's
//! JSONHandler, the default) or the whole body as one event ([`blob`], Flume's blob
//! handlers). Keys in [`config`]; the wire format and status codes in docs/FORMAT.md.
//!
//! The source runs its own small tokio runtime (hyper's HTTP/1.1 server, optional TLS with
//! tokio-rustls); every connection is a task, so idle keep-alive connections cost a little
//! memory each, not a thread.
//!
//! Invariants:
//! - 200 is answered only after every required channel's commit of the request's events
//!   returned. A request's events are one transaction: all committed or none, whatever the
//!   answer. A request that is refused (4xx, 5xx) committed nothing.
//! - Requests go to the source's [`Committer`] with [`WhenFull::Refuse`]: concurrent requests
//!   share channel transactions (each still all or none), the blocking commits run on its
//!   thread, never on a runtime worker, and a full channel is answered 503 with
//!   `Retry-After` at once after the channel's own keep-alive wait: the client retries.
//! - Bounded: a body over `max-body-bytes` is answered 413 (before it is read when its
//!   Content-Length says so, else as soon as it passes the limit); a request head over
//!   `HttpConfiguration.requestHeaderSize` is answered 431 by hyper; at most
//!   `max-connections` connections (one more is closed at once, with a log line) and
//!   `QueuedThreadPool.maxThreads` requests decoded and committed at once; request bodies in
//!   memory over all connections within [`BODY_BUDGET_KIB`] (a body reserves what it holds
//!   as it arrives; one that finds the budget spent is answered 503); a connection
//!   silent for `ServerConnector.idleTimeout` (between requests, or inside a request's head,
//!   body or TLS handshake) is closed.
//! - Bad input never panics and never affects another request: each refusal names the peer
//!   and what is wrong, at warn level for the first on a connection, then at debug.
//!
//! Shutdown: the accept loop looks at the stop flag every 50 ms; then idle connections are
//! closed and requests in progress are answered, for at most [`SHUTDOWN_GRACE`]: a commit
//! already under way finishes (bounded by the channels' keep-alive) and is answered 200, a
//! request whose commit had not started is answered 503 (the committer stops with the flag).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ALLOW, CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore, SemaphorePermit};
use tokio::task::JoinSet;

use super::{Source, SourceContext, SourceError};
use crate::channel::ChannelError;
use crate::event::Event;
use crate::metrics::{ComponentCounters, Counter};
use crate::route::ChannelProcessor;
use crate::source::commit::{CommitError, Committer, WhenFull};

pub mod blob;
mod config;
pub mod json;

pub use config::{
    Handler, HttpSourceConfig, CORE_BLOB_HANDLER, DEFAULT_MAX_BODY_BYTES, JSON_HANDLER,
    MORPHLINE_BLOB_HANDLER, TYPE,
};

/// How often the accept loop looks at the stop flag.
const STOP_POLL: Duration = Duration::from_millis(50);
/// How long in-flight requests may take to finish at shutdown.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// The pause after a failed accept (out of file descriptors, ...), so it does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);
/// Bodies larger than this are decoded with the runtime told the worker blocks.
const BLOCKING_DECODE_BYTES: usize = 256 * 1024;
/// What a 503 asks the client to wait, in seconds.
const RETRY_AFTER_SECS: &str = "1";

/// Request bodies held in memory at once, over all connections (at least one largest body):
/// each body reserves what its buffer holds as it grows, so 10,000 slow uploads cost what
/// they sent, not 10,000 times `max-body-bytes`. A body that finds the budget spent is
/// answered 503 at once (waiting could deadlock bodies that each hold part of it).
const BODY_BUDGET_KIB: u64 = 256 * 1024;
/// The first buffer of a body with a Content-Length; it grows (and reserves) as bytes arrive.
const FIRST_BODY_BUFFER: u64 = 64 * 1024;

/// See the module docs.
pub struct HttpSource {
    name: String,
    channels: Arc<ChannelProcessor>,
    counters: Arc<ComponentCounters>,
    listener: std::net::TcpListener,
    addr: SocketAddr,
    cfg: HttpSourceConfig,
    tls: Option<Arc<rustls::ServerConfig>>,
}

impl HttpSource {
    /// Reads the keystore (with `ssl = true`) and binds `cfg.bind:cfg.port` now, so a bad
    /// keystore, a bad address or a port in use stops start-up.
    pub fn bind(ctx: SourceContext, cfg: &HttpSourceConfig) -> Result<HttpSource, SourceError> {
        let tls = match &cfg.ssl {
            Some(s) => {
                Some(
                    crate::avro::tls::server_config(s).map_err(|e| SourceError::Start {
                        source_name: ctx.name.clone(),
                        message: e.to_string(),
                    })?,
                )
            }
            None => None,
        };
        let (listener, addr) = super::bind_listener(&ctx.name, &cfg.bind, cfg.port)?;
        Ok(HttpSource {
            name: ctx.name,
            channels: ctx.channels,
            counters: ctx.counters,
            listener,
            addr,
            cfg: cfg.clone(),
            tls,
        })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Source for HttpSource {
    fn run(self: Box<Self>, stop: Arc<AtomicBool>) {
        let threads = std::thread::available_parallelism()
            .map_or(2, |n| n.get())
            .clamp(1, 4);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name(format!("{}-http", self.name))
            .enable_io()
            .enable_time()
            .build();
        let rt = match rt {
            Ok(rt) => rt,
            Err(e) => {
                tracing::error!(source = %self.name, "source `{}`: cannot start its runtime: {e}", self.name);
                return;
            }
        };
        rt.block_on(self.serve(stop));
        rt.shutdown_timeout(SHUTDOWN_GRACE);
    }
}

/// What every connection of the source shares.
struct Shared {
    source: String,
    committer: Committer,
    counters: Arc<ComponentCounters>,
    handler: Handler,
    max_body_bytes: u64,
    idle_timeout: Duration,
    max_header_bytes: usize,
    keep_alive: bool,
    /// `QueuedThreadPool.maxThreads` permits: requests decoded and committed at once.
    requests: Semaphore,
    /// KiB of request bodies in memory (see [`BODY_BUDGET_KIB`]).
    bodies: Semaphore,
    bodies_budget_kib: usize,
}

impl HttpSource {
    async fn serve(self, stop: Arc<AtomicBool>) {
        let name = self.name.clone();
        let listener = match tokio::net::TcpListener::from_std(self.listener) {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(source = %name, "source `{name}`: cannot serve {}: {e}", self.addr);
                return;
            }
        };
        tracing::info!(
            source = %name,
            "source `{name}` (http) listening on {}{}",
            self.addr,
            if self.tls.is_some() { " with TLS" } else { "" }
        );
        let committer = match Committer::start(
            &name,
            self.channels,
            Arc::clone(&self.counters),
            WhenFull::Refuse,
            Arc::clone(&stop),
        ) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(source = %name, "source `{name}`: cannot start its committer thread: {e}");
                return;
            }
        };
        let shared = Arc::new(Shared {
            source: name.clone(),
            committer: committer.clone(),
            counters: self.counters,
            handler: self.cfg.handler.clone(),
            max_body_bytes: self.cfg.max_body_bytes,
            idle_timeout: self.cfg.idle_timeout,
            max_header_bytes: self.cfg.max_header_bytes,
            keep_alive: self.cfg.keep_alive,
            requests: Semaphore::new(self.cfg.max_concurrent_requests),
            bodies: Semaphore::new(body_budget_kib(self.cfg.max_body_bytes)),
            bodies_budget_kib: body_budget_kib(self.cfg.max_body_bytes),
        });
        let tls = self.tls.map(tokio_rustls::TlsAcceptor::from);
        let max_connections = self.cfg.max_connections;
        let conns = Arc::new(Semaphore::new(max_connections));
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let mut tasks = JoinSet::new();
        let mut tick = tokio::time::interval(STOP_POLL);
        let mut turning_away = false;
        let mut accept_failing = false;
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    if stop.load(Ordering::Acquire) {
                        break;
                    }
                    while tasks.try_join_next().is_some() {}
                }
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        accept_failing = false;
                        let Ok(permit) = Arc::clone(&conns).try_acquire_owned() else {
                            if !turning_away {
                                tracing::warn!(
                                    source = %name,
                                    "source `{name}`: {max_connections} connections are open (max-connections); closing new ones until one ends, the first from {peer}"
                                );
                                turning_away = true;
                            }
                            drop(stream);
                            continue;
                        };
                        if turning_away {
                            tracing::info!(source = %name, "source `{name}`: below max-connections again, accepting connections");
                            turning_away = false;
                        }
                        tasks.spawn(connection(
                            Arc::clone(&shared),
                            tls.clone(),
                            stream,
                            peer,
                            permit,
                            shutdown_rx.clone(),
                        ));
                    }
                    Err(e) => {
                        // Out of file descriptors repeats until a connection closes: once.
                        if !accept_failing {
                            tracing::warn!(source = %name, "source `{name}`: accept on {}: {e} (retrying every {ACCEPT_BACKOFF:?}; said once until an accept succeeds)", self.addr);
                            accept_failing = true;
                        }
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                    }
                }
            }
        }
        drop(listener);
        // Idle connections close now; a request in progress finishes and is answered.
        let _ = shutdown_tx.send(true);
        let drain = async { while tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(SHUTDOWN_GRACE, drain).await.is_err() {
            tracing::warn!(
                source = %name,
                "source `{name}`: requests still in progress after {SHUTDOWN_GRACE:?} at shutdown were abandoned unanswered"
            );
            tasks.abort_all();
        }
        committer.finish();
    }
}

/// Counts a connection open while it lives, even when its task is aborted.
struct OpenConnection(Arc<ComponentCounters>);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.dec(Counter::OpenConnectionCount);
    }
}

async fn connection(
    shared: Arc<Shared>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    _slot: OwnedSemaphorePermit,
    shutdown: watch::Receiver<bool>,
) {
    shared.counters.inc(Counter::OpenConnectionCount);
    let _open = OpenConnection(Arc::clone(&shared.counters));
    // Responses are small and written whole: no reason to wait for more.
    let _ = stream.set_nodelay(true);
    let src = &shared.source;
    match tls {
        None => serve_http(&shared, stream, peer, shutdown).await,
        Some(acceptor) => {
            match tokio::time::timeout(shared.idle_timeout, acceptor.accept(stream)).await {
                Ok(Ok(s)) => serve_http(&shared, s, peer, shutdown).await,
                Ok(Err(e)) => tracing::warn!(
                    source = %src,
                    "source `{src}`: TLS handshake with {peer} failed, closing the connection: {e}"
                ),
                Err(_) => tracing::warn!(
                    source = %src,
                    "source `{src}`: TLS handshake with {peer} not finished within {:?} (ServerConnector.idleTimeout), closing the connection",
                    shared.idle_timeout
                ),
            }
        }
    }
}

/// A connection's socket, noting whether the client sent bytes since the last response: a
/// connection closed for silence with such bytes was left inside a request (a slow or stuck
/// client, worth a warning), without them it was an idle keep-alive (normal).
struct Tracked<I> {
    inner: I,
    mid_request: Arc<AtomicBool>,
}

impl<I: AsyncRead + Unpin> AsyncRead for Tracked<I> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = std::pin::Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.mid_request.store(true, Ordering::Relaxed);
        }
        r
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Tracked<I> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        data: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.mid_request.store(false, Ordering::Relaxed);
        std::pin::Pin::new(&mut self.inner).poll_write(cx, data)
    }
    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.mid_request.store(false, Ordering::Relaxed);
        std::pin::Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// One connection's state its requests share.
struct Peer {
    addr: SocketAddr,
    /// A refusal was logged at warn level on this connection already.
    warned: AtomicBool,
}

async fn serve_http<I>(
    shared: &Arc<Shared>,
    io: I,
    peer: SocketAddr,
    mut shutdown: watch::Receiver<bool>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let state = Arc::new(Peer {
        addr: peer,
        warned: AtomicBool::new(false),
    });
    let svc_shared = Arc::clone(shared);
    let svc = hyper::service::service_fn(move |req| {
        let shared = Arc::clone(&svc_shared);
        let state = Arc::clone(&state);
        async move { Ok::<_, Infallible>(handle(&shared, &state, req).await) }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        // hyper starts this clock whenever it waits for a request head, so it is also the
        // keep-alive idle limit.
        .header_read_timeout(shared.idle_timeout)
        .keep_alive(shared.keep_alive)
        .max_buf_size(shared.max_header_bytes);
    let mid_request = Arc::new(AtomicBool::new(false));
    let io = Tracked {
        inner: io,
        mid_request: Arc::clone(&mid_request),
    };
    let conn = builder.serve_connection(TokioIo::new(io), svc);
    tokio::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        _ = async { shutdown.wait_for(|s| *s).await.map(|_| ()) } => {
            conn.as_mut().graceful_shutdown();
            conn.as_mut().await
        }
    };
    let src = &shared.source;
    match result {
        Ok(()) => tracing::trace!(source = %src, "source `{src}`: connection from {peer} closed"),
        Err(e) if e.is_timeout() && mid_request.load(Ordering::Relaxed) => tracing::warn!(
            source = %src,
            "source `{src}`: closed the connection from {peer}: a request head unfinished after {:?} (ServerConnector.idleTimeout)",
            shared.idle_timeout
        ),
        Err(e) if e.is_timeout() => tracing::debug!(
            source = %src,
            "source `{src}`: closed the idle connection from {peer}: nothing received for {:?} (ServerConnector.idleTimeout)",
            shared.idle_timeout
        ),
        Err(e) => tracing::warn!(source = %src, "source `{src}`: connection from {peer}: {e}"),
    }
}

type Reply = Response<Full<Bytes>>;

fn reply(status: StatusCode, text: String) -> Reply {
    let has_text = !text.is_empty();
    let mut r = Response::new(Full::new(Bytes::from(text)));
    *r.status_mut() = status;
    if has_text {
        r.headers_mut().insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
    }
    r
}

/// A refusal: logged (warn for the first on the connection, then debug) and answered.
fn refuse(shared: &Shared, peer: &Peer, status: StatusCode, reason: String) -> Reply {
    let src = &shared.source;
    let addr = peer.addr;
    if peer.warned.swap(true, Ordering::Relaxed) {
        tracing::debug!(source = %src, "source `{src}`: answered {status} to {addr}: {reason}");
    } else {
        tracing::warn!(source = %src, "source `{src}`: answered {status} to {addr}: {reason}");
    }
    reply(status, format!("{reason}\n"))
}

/// Why reading a body failed.
enum BodyError {
    TooLarge,
    Timeout,
    Read(hyper::Error),
    /// The source-wide body budget is spent.
    Busy,
}

/// The body budget in KiB: [`BODY_BUDGET_KIB`], or room for one largest body (twice it: a
/// growing buffer may hold up to double its bytes) if that is more.
fn body_budget_kib(max_body_bytes: u64) -> usize {
    let one = max_body_bytes.div_ceil(1024).saturating_mul(2);
    usize::try_from(BODY_BUDGET_KIB.max(one))
        .map_or(Semaphore::MAX_PERMITS, |k| k.min(Semaphore::MAX_PERMITS))
}

/// Reserves budget for `buf`'s capacity beyond what `held` already covers.
fn reserve<'b>(
    budget: &'b Semaphore,
    held: &mut Option<SemaphorePermit<'b>>,
    buf: &BytesMut,
) -> Result<(), BodyError> {
    let have = held.as_ref().map_or(0, |p| p.num_permits());
    let need = buf.capacity().div_ceil(1024);
    if need <= have {
        return Ok(());
    }
    let more = u32::try_from(need - have).map_err(|_| BodyError::Busy)?;
    let permit = budget.try_acquire_many(more).map_err(|_| BodyError::Busy)?;
    match held {
        Some(p) => p.merge(permit),
        None => *held = Some(permit),
    }
    Ok(())
}

/// Reads a body of at most `max` bytes, reserving its memory from `budget` as it grows; the
/// returned permit holds the reservation until the request is answered.
async fn read_body<'b>(
    mut body: Incoming,
    expected: Option<u64>,
    max: u64,
    idle: Duration,
    budget: &'b Semaphore,
) -> Result<(Bytes, Option<SemaphorePermit<'b>>), BodyError> {
    let start = expected.unwrap_or(0).min(max).min(FIRST_BODY_BUFFER);
    let mut buf = BytesMut::with_capacity(usize::try_from(start).unwrap_or(0));
    let mut held = None;
    reserve(budget, &mut held, &buf)?;
    loop {
        let frame = match tokio::time::timeout(idle, body.frame()).await {
            Err(_) => return Err(BodyError::Timeout),
            Ok(None) => break,
            Ok(Some(Err(e))) => return Err(BodyError::Read(e)),
            Ok(Some(Ok(f))) => f,
        };
        if let Ok(data) = frame.into_data() {
            if (buf.len() as u64).saturating_add(data.len() as u64) > max {
                return Err(BodyError::TooLarge);
            }
            buf.extend_from_slice(&data);
            reserve(budget, &mut held, &buf)?;
        }
    }
    Ok((buf.freeze(), held))
}

/// Why the channels did not take a request's events.
enum Refusal {
    /// Full (or below its free-space floor): worth a retry later (503).
    Full(String),
    /// More events than a channel's transactionCapacity: a retry cannot help (413).
    TooMany(String),
    /// Anything else (a poisoned or closed channel): 500.
    Failed(String),
    /// The source is stopping (503).
    Stopping,
}

/// Hands `events` to the source's [`Committer`] (one transaction per channel for everything
/// queued at that moment, refusing at once, after the channel's own keep-alive, when one is
/// full) and waits for its answer without blocking a runtime worker.
async fn commit(shared: &Shared, events: Vec<Event>) -> Result<(), Refusal> {
    match shared.committer.submit(events).await {
        Ok(()) => Ok(()),
        Err(CommitError::Full(e)) => Err(Refusal::Full(e.to_string())),
        Err(CommitError::Failed(e @ ChannelError::TransactionFull { .. })) => {
            Err(Refusal::TooMany(e.to_string()))
        }
        Err(CommitError::Failed(e)) => Err(Refusal::Failed(e.to_string())),
        Err(CommitError::Stopped) => Err(Refusal::Stopping),
    }
}

async fn handle(shared: &Shared, peer: &Peer, req: Request<Incoming>) -> Reply {
    // Flume's servlet answers POST and GET alike (and HEAD through GET); Jetty's constraint
    // refuses TRACE and OPTIONS; the servlet API answers 405 to the rest.
    match *req.method() {
        Method::POST | Method::GET | Method::HEAD => {}
        Method::TRACE | Method::OPTIONS => {
            return refuse(
                shared,
                peer,
                StatusCode::FORBIDDEN,
                format!("{} is not allowed (as in Flume)", req.method()),
            )
        }
        _ => {
            let mut r = refuse(
                shared,
                peer,
                StatusCode::METHOD_NOT_ALLOWED,
                format!(
                    "{} is not supported: send events with POST (or GET)",
                    req.method()
                ),
            );
            r.headers_mut()
                .insert(ALLOW, HeaderValue::from_static("POST, GET, HEAD"));
            return r;
        }
    }
    let max = shared.max_body_bytes;
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if let Some(len) = declared.filter(|len| *len > max) {
        shared.counters.inc(Counter::EventReadFail);
        return too_large(shared, peer, &format!("of {len} bytes")); // nothing read
    }
    let content_type = req
        .headers()
        .get(CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let charset = match &shared.handler {
        Handler::Json => {
            match json::Charset::from_content_type(content_type.as_deref().map(str::as_bytes)) {
                Ok(c) => Some(c),
                Err(e) => {
                    shared.counters.inc(Counter::EventReadFail);
                    return refuse(
                        shared,
                        peer,
                        StatusCode::UNSUPPORTED_MEDIA_TYPE,
                        e.to_string(),
                    );
                }
            }
        }
        Handler::Blob(_) => None,
    };
    let (parts, body) = req.into_parts();
    let (body, _reserved) =
        match read_body(body, declared, max, shared.idle_timeout, &shared.bodies).await {
            Ok(b) => b,
            Err(e) => {
                shared.counters.inc(Counter::EventReadFail);
                return match e {
                    BodyError::Busy => {
                        let mut r = refuse(
                            shared,
                            peer,
                            StatusCode::SERVICE_UNAVAILABLE,
                            format!(
                                "request bodies in memory reached the source's budget of {} MiB; \
                             retry later",
                                shared.bodies_budget_kib / 1024
                            ),
                        );
                        r.headers_mut()
                            .insert(RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_SECS));
                        r
                    }
                    BodyError::TooLarge => too_large(shared, peer, "that grew"),
                    BodyError::Timeout => refuse(
                        shared,
                        peer,
                        StatusCode::REQUEST_TIMEOUT,
                        format!(
                        "the body stopped arriving: nothing for {:?} (ServerConnector.idleTimeout)",
                        shared.idle_timeout
                    ),
                    ),
                    BodyError::Read(e) => refuse(
                        shared,
                        peer,
                        StatusCode::BAD_REQUEST,
                        format!("the body could not be read: {e}"),
                    ),
                };
            }
        };
    // Decoding and committing hold one of QueuedThreadPool.maxThreads' permits.
    let Ok(_permit) = shared.requests.acquire().await else {
        return reply(
            StatusCode::SERVICE_UNAVAILABLE,
            "the source is stopping\n".into(),
        );
    };
    let events = match (&shared.handler, charset) {
        // A large body takes a while to decode: the runtime moves its other tasks off this
        // worker meanwhile, so the other connections are not held up.
        (Handler::Json, Some(cs)) if body.len() > BLOCKING_DECODE_BYTES => {
            tokio::task::block_in_place(|| json::decode(&body, cs)).map_err(|e| e.to_string())
        }
        (Handler::Json, Some(cs)) => json::decode(&body, cs).map_err(|e| e.to_string()),
        (Handler::Blob(kind), _) => {
            blob::event(kind, content_type.as_deref(), parts.uri.query(), body)
                .map(|e| vec![e])
                .map_err(|e| e.to_string())
        }
        (Handler::Json, None) => Err("no charset".to_string()),
    };
    let events = match events {
        Ok(ev) => ev,
        Err(reason) => {
            shared.counters.inc(Counter::EventReadFail);
            return refuse(shared, peer, StatusCode::BAD_REQUEST, reason);
        }
    };
    let n = events.len() as u64;
    shared.counters.inc(Counter::AppendBatchReceivedCount);
    shared.counters.add(Counter::EventReceivedCount, n);
    let src = &shared.source;
    match commit(shared, events).await {
        // The committer counts EventAcceptedCount and ChannelWriteFail.
        Ok(()) => {
            shared.counters.inc(Counter::AppendBatchAcceptedCount);
            reply(StatusCode::OK, String::new())
        }
        Err(Refusal::Full(reason)) => {
            // The committer reports the full channel once per episode (and when it ends).
            tracing::debug!(source = %src, "source `{src}`: answered 503 to {}: {reason}", peer.addr);
            let mut r = reply(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("{reason}; nothing of this request was committed, retry it later\n"),
            );
            r.headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_SECS));
            r
        }
        Err(Refusal::TooMany(reason)) => refuse(
                shared,
                peer,
                StatusCode::PAYLOAD_TOO_LARGE,
            format!("the request's {n} events are one transaction, too many for a channel: {reason}; send smaller arrays"),
        ),
        Err(Refusal::Stopping) => reply(
            StatusCode::SERVICE_UNAVAILABLE,
            "the source is stopping; nothing of this request was committed\n".into(),
        ),
        Err(Refusal::Failed(reason)) => {
            tracing::error!(source = %src, "source `{src}`: answered 500 to {}: {reason}", peer.addr);
            reply(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("{reason}; nothing of this request was committed\n"),
            )
        }
    }
}

fn too_large(shared: &Shared, peer: &Peer, what: &str) -> Reply {
    let mut r = refuse(
        shared,
        peer,
        StatusCode::PAYLOAD_TOO_LARGE,
        format!(
            "a body {what} over the limit of {} bytes (max-body-bytes, or the BlobHandler's handler.maxBlobLength): nothing was committed",
            shared.max_body_bytes
        ),
    );
    // The rest of the body is not read, so the connection cannot carry another request.
    r.headers_mut()
        .insert(hyper::header::CONNECTION, HeaderValue::from_static("close"));
    r
}

#[cfg(test)]
mod budget_tests {
    use super::*;

    #[test]
    fn bodies_reserve_what_their_buffers_hold_and_are_refused_when_the_budget_is_spent() {
        let budget = Semaphore::new(8);
        let mut a = None;
        let mut buf = BytesMut::with_capacity(3 * 1024);
        assert!(reserve(&budget, &mut a, &buf).is_ok());
        assert_eq!(budget.available_permits(), 5);
        buf.reserve(7 * 1024);
        assert!((7 * 1024..=8 * 1024).contains(&buf.capacity()));
        let mut b = None;
        let other = BytesMut::with_capacity(2 * 1024);
        assert!(reserve(&budget, &mut b, &other).is_ok());
        // 3 KiB held by `a` and 2 by `b`: growing `a` to 7 KiB does not fit.
        assert!(matches!(
            reserve(&budget, &mut a, &buf),
            Err(BodyError::Busy)
        ));
        drop(b);
        assert!(reserve(&budget, &mut a, &buf).is_ok());
        drop(a);
        assert_eq!(budget.available_permits(), 8);
    }

    #[test]
    fn the_budget_always_fits_one_largest_body() {
        assert_eq!(body_budget_kib(1 << 20), BODY_BUDGET_KIB as usize);
        assert_eq!(body_budget_kib(1 << 30), 2 << 20);
    }
}
