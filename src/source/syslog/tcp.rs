//! The `syslogtcp` listener, and the connection loop it shares with `multiport_syslogtcp`:
//! read what the peer sent (plain or TLS), frame it, shape the messages, deliver them
//! together, and only then read again.

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use super::config::{TcpConfig, MAX_CONNECTIONS};
use super::frame::{Cutter, Framer};
use super::parse::{Raw, Shaper, Splitter, INVALID, STATUS};
use super::{accept_loop, lookup, runtime, start_error, stop_watch, stopped, Shared, Undelivered};
use crate::event::Event;
use crate::metrics::Counter;
use crate::source::{Source, SourceContext, SourceError};

/// Bytes taken from a connection in one read.
const READ_SIZE: usize = 64 * 1024;
/// The most bytes taken from a connection for one delivery.
const MAX_BURST: usize = 1024 * 1024;
/// How long a client may take to finish its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// See the module docs.
pub struct SyslogTcpSource {
    ctx: SourceContext,
    cfg: TcpConfig,
    listener: std::net::TcpListener,
    tls: Option<TlsAcceptor>,
}

impl SyslogTcpSource {
    /// Binds now, and reads the keystore, so a bad address or store stops start-up.
    pub fn bind(ctx: SourceContext, cfg: &TcpConfig) -> Result<SyslogTcpSource, SourceError> {
        let (listener, _) = crate::source::bind_listener(&ctx.name, &cfg.common.host, cfg.port)?;
        let tls = tls_acceptor(&ctx.name, cfg.ssl.as_ref())?;
        Ok(SyslogTcpSource {
            ctx,
            cfg: cfg.clone(),
            listener,
            tls,
        })
    }
}

/// Built here, beside the source, so the configuration does not import its source.
impl crate::source::SourceSpec for TcpConfig {
    fn build(&self, ctx: SourceContext) -> Result<Box<dyn Source>, SourceError> {
        Ok(Box::new(SyslogTcpSource::bind(ctx, self)?))
    }
}

#[cfg(test)]
impl SyslogTcpSource {
    /// The address actually bound.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.local_addr().ok()
    }
}

/// The TLS acceptor for `ssl = true`.
pub(super) fn tls_acceptor(
    name: &str,
    ssl: Option<&crate::avro::tls::ServerTls>,
) -> Result<Option<TlsAcceptor>, SourceError> {
    let Some(ssl) = ssl else {
        return Ok(None);
    };
    let cfg = crate::avro::tls::server_config(ssl).map_err(|e| start_error(name, e.to_string()))?;
    Ok(Some(TlsAcceptor::from(cfg)))
}

impl Source for SyslogTcpSource {
    fn run(self: Box<Self>, stop: Arc<AtomicBool>) {
        let SyslogTcpSource {
            ctx,
            cfg,
            listener,
            tls,
        } = *self;
        let name = ctx.name.clone();
        let rt = match runtime(&name, None) {
            Ok(rt) => rt,
            Err(e) => {
                tracing::error!(source = %name, "source `{name}`: cannot start its runtime: {e}");
                return;
            }
        };
        let addr = listener.local_addr().ok();
        let Some(shared) = Shared::start(ctx, &cfg.common, stop) else {
            return;
        };
        let shared = Arc::new(shared);
        let committer = shared.committer.clone();
        let shaper = Arc::new(Shaper::new(cfg.common.keep.clone()));
        let event_size = cfg.event_size;
        rt.block_on(async move {
            tracing::info!(source = %name, "source `{name}` (syslogtcp) listening on {}{}",
                addr.map_or_else(|| "?".to_string(), |a| a.to_string()),
                if tls.is_some() { " (TLS)" } else { "" });
            let stop_rx = stop_watch(Arc::clone(&shared.stop));
            let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
            let serve_shared = Arc::clone(&shared);
            accept_loop(
                Arc::clone(&shared),
                listener,
                slots,
                stop_rx.clone(),
                move |stream, peer, permit| {
                    let shared = Arc::clone(&serve_shared);
                    let shaper = Arc::clone(&shaper);
                    let tls = tls.clone();
                    let stop_rx = stop_rx.clone();
                    async move {
                        let framer = Framer::new(Splitter::new(event_size));
                        let shape = move |raw: Raw, now: Timestamp| shaper.event(raw, now);
                        serve(shared, stream, tls, peer, framer, shape, |_| {}, stop_rx).await;
                        drop(permit);
                    }
                },
            )
            .await;
        });
        rt.shutdown_timeout(Duration::from_secs(1));
        committer.finish();
    }
}

/// A connection, plain or TLS.
enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl Stream {
    /// The next bytes the peer sent; `None` at its end. A plain connection holds no buffer
    /// while it waits.
    async fn read(&mut self) -> std::io::Result<Option<Vec<u8>>> {
        match self {
            Stream::Plain(s) => loop {
                s.readable().await?;
                let mut buf = vec![0u8; READ_SIZE];
                let mut n = match s.try_read(&mut buf) {
                    Ok(0) => return Ok(None),
                    Ok(n) => n,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => continue,
                    Err(e) => return Err(e),
                };
                // Take whatever else is already queued (up to MAX_BURST): it all goes into
                // one delivery.
                while n == buf.len() && buf.len() < MAX_BURST {
                    buf.resize(buf.len() + READ_SIZE, 0);
                    match s.try_read(&mut buf[n..]) {
                        Ok(0) | Err(_) => break,
                        Ok(m) => n += m,
                    }
                }
                buf.truncate(n);
                return Ok(Some(buf));
            },
            Stream::Tls(s) => {
                let mut buf = vec![0u8; 16 * 1024];
                let n = s.read(&mut buf).await?;
                if n == 0 {
                    return Ok(None);
                }
                buf.truncate(n);
                Ok(Some(buf))
            }
        }
    }
}

/// Serves one connection until its end, a framing error, or stop (see the module docs).
/// `extra` adds a listener's own headers to each event (multiport's `portHeader`).
#[allow(clippy::too_many_arguments)]
pub(super) async fn serve<C, S, X>(
    shared: Arc<Shared>,
    stream: TcpStream,
    tls: Option<TlsAcceptor>,
    peer: SocketAddr,
    mut framer: Framer<C>,
    shape: S,
    extra: X,
    mut stop_rx: watch::Receiver<bool>,
) where
    C: Cutter,
    S: Fn(Raw, Timestamp) -> Event,
    X: Fn(&mut Event),
{
    let name = shared.name.clone();
    let mut stream = match tls {
        None => Stream::Plain(stream),
        Some(acceptor) => {
            let hs = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream));
            let done = tokio::select! {
                r = hs => r,
                () = stopped(&mut stop_rx) => return,
            };
            match done {
                Ok(Ok(s)) => Stream::Tls(Box::new(s)),
                Ok(Err(e)) => {
                    tracing::warn!(source = %name, "source `{name}`: TLS handshake with {peer} failed: {e}");
                    return;
                }
                Err(_) => {
                    tracing::warn!(source = %name, "source `{name}`: {peer} did not finish its TLS handshake in {}s; closed", HANDSHAKE_TIMEOUT.as_secs());
                    return;
                }
            }
        }
    };
    shared.counters.inc(Counter::OpenConnectionCount);
    tracing::debug!(source = %name, "source `{name}`: connection from {peer}");
    let mut hostname: Option<String> = None;
    let mut warned_size = false;
    let mut warned_invalid = false;
    let mut raws: Vec<Raw> = Vec::new();
    loop {
        let read = tokio::select! {
            r = stream.read() => r,
            () = stopped(&mut stop_rx) => break,
        };
        let mut last = false;
        match read {
            Ok(Some(bytes)) => {
                if let Err(e) = framer.feed(&bytes, &mut raws) {
                    tracing::warn!(source = %name, "source `{name}`: {peer}: {e}; closing the connection");
                    framer.finish(&mut raws);
                    last = true;
                }
            }
            Ok(None) => {
                framer.finish(&mut raws);
                last = true;
            }
            Err(e) => {
                tracing::debug!(source = %name, "source `{name}`: connection from {peer}: {e}");
                framer.finish(&mut raws);
                last = true;
            }
        }
        if !raws.is_empty() {
            if shared.client_hostname_header.is_some() && hostname.is_none() {
                hostname = Some(lookup(peer.ip()).await);
            }
            let now = Timestamp::now();
            let mut events = Vec::with_capacity(raws.len());
            for raw in raws.drain(..) {
                if raw.incomplete && !warned_size {
                    warned_size = true;
                    tracing::warn!(source = %name, "source `{name}`: {peer} sent a message over eventSize; it is cut and marked Incomplete (not logged again for this connection)");
                }
                let mut e = shape(raw, now);
                if !warned_invalid && e.header(STATUS) == Some(INVALID) {
                    warned_invalid = true;
                    tracing::warn!(source = %name, "source `{name}`: {peer} sent a message that is not syslog; it is kept with {STATUS} = {INVALID} (not logged again for this connection)");
                }
                shared.peer_headers(&mut e, peer.ip(), hostname.as_deref());
                extra(&mut e);
                events.push(e);
            }
            if shared.deliver(events).await == Err(Undelivered::Stopped) {
                break;
            }
        }
        if last {
            break;
        }
    }
    shared.counters.dec(Counter::OpenConnectionCount);
    tracing::debug!(source = %name, "source `{name}`: connection from {peer} closed");
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::net::TcpStream as StdStream;
    use std::sync::atomic::Ordering;
    use std::time::Instant;

    use super::*;
    use crate::channel::memory::{MemoryChannel, MemoryChannelConfig};
    use crate::channel::Channel;
    use crate::source::syslog::config::Common;
    use crate::source::syslog::parse::KeepFields;

    fn start(ch: &Arc<dyn Channel>) -> (SocketAddr, Arc<AtomicBool>, std::thread::JoinHandle<()>) {
        let ctx = SourceContext::detached("r1", vec![Arc::clone(ch)]);
        let cfg = TcpConfig {
            common: Common {
                host: "127.0.0.1".into(),
                keep: KeepFields::default(),
                client_ip_header: Some("ip".into()),
                client_hostname_header: None,
            },
            port: 0,
            event_size: 2500,
            ssl: None,
        };
        let src = SyslogTcpSource::bind(ctx, &cfg).expect("bind");
        let addr = src.local_addr().expect("addr");
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = Arc::clone(&stop);
        (
            addr,
            stop,
            std::thread::spawn(move || Box::new(src).run(stop2)),
        )
    }

    /// Takes events until `n` arrived (bounded wait), in order.
    fn take(ch: &Arc<dyn Channel>, n: usize) -> Vec<Event> {
        let end = Instant::now() + Duration::from_secs(60);
        let mut got = Vec::new();
        while got.len() < n {
            assert!(
                Instant::now() < end,
                "only {} of {n} events arrived",
                got.len()
            );
            let mut tx = ch.take_transaction();
            tx.take_batch(n - got.len(), &mut got).expect("take");
            tx.commit().expect("commit");
            std::thread::sleep(Duration::from_millis(5));
        }
        got
    }

    /// 200 messages in one write are committed in a few transactions (split only at the
    /// channel's transactionCapacity), not one per message.
    #[test]
    fn messages_read_together_share_a_commit() {
        let ch: Arc<dyn Channel> = Arc::new(
            MemoryChannel::new(
                "c1",
                MemoryChannelConfig {
                    capacity: 1000,
                    ..MemoryChannelConfig::default()
                },
            )
            .expect("channel"),
        );
        let (addr, stop, t) = start(&ch);
        let mut w = StdStream::connect(addr).expect("connect");
        let lines: String = (0..200)
            .map(|i| format!("<13>Oct 11 22:14:15 host line {i}\n"))
            .collect();
        w.write_all(lines.as_bytes()).expect("send");
        let end = Instant::now() + Duration::from_secs(60);
        while ch.stats().size < 200 {
            assert!(Instant::now() < end, "the 200 messages did not arrive");
            std::thread::sleep(Duration::from_millis(5));
        }
        // Puts of 100 (transactionCapacity): two per read burst, and the 6 KiB sent in one
        // write are read in one burst or a few.
        let commits = ch.stats().commits;
        assert!(
            commits <= 6,
            "200 messages read together took {commits} commits"
        );
        let got = take(&ch, 200);
        assert_eq!(&got[199].body()[..], b"line 199");
        assert_eq!(got[0].header("ip"), Some("127.0.0.1"));
        stop.store(true, Ordering::Release);
        t.join().expect("source thread");
    }

    /// A full channel holds the connection's messages back; none is dropped, order is kept.
    #[test]
    fn full_channel_slows_the_reading_and_drops_nothing() {
        let ch: Arc<dyn Channel> = Arc::new(
            MemoryChannel::new(
                "c1",
                MemoryChannelConfig {
                    capacity: 3,
                    transaction_capacity: 3,
                    byte_capacity: None,
                    keep_alive: Duration::from_millis(10),
                },
            )
            .expect("channel"),
        );
        let (addr, stop, t) = start(&ch);
        let mut w = StdStream::connect(addr).expect("connect");
        for i in 0..30 {
            w.write_all(format!("<13>Oct 11 22:14:15 host m{i}\n").as_bytes())
                .expect("send");
        }
        let mut got = Vec::new();
        while got.len() < 30 {
            got.extend(take(&ch, 1));
        }
        let bodies: Vec<String> = got
            .iter()
            .map(|e| String::from_utf8_lossy(e.body()).into_owned())
            .collect();
        let want: Vec<String> = (0..30).map(|i| format!("m{i}")).collect();
        assert_eq!(bodies, want);
        stop.store(true, Ordering::Release);
        t.join().expect("source thread");
    }
}
