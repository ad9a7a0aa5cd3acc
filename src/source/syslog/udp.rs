//! The `syslogudp` listener: each datagram (up to 64 KiB) is parsed as syslogtcp parses a
//! stream, every line of it a message (Flume keeps only the first line of a datagram; flumen
//! deliberately keeps them all). Every datagram already queued in the socket when one
//! arrives is taken in the same burst and delivered together; the socket is not read again
//! until that delivery returned (the kernel's receive buffer absorbs what comes meanwhile,
//! and drops beyond it, as for any UDP listener).

use std::io::ErrorKind;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;

use super::config::UdpConfig;
use super::parse::{Shaper, Splitter, INVALID, STATUS};
use super::{runtime, start_error, stop_watch, stopped, NameCache, Shared, Undelivered};
use crate::source::{Source, SourceContext, SourceError};

/// The largest datagram (RFC 5426's bound, and Flume's).
const MAX_DATAGRAM: usize = 64 * 1024;
/// The most senders remembered as already warned about (then no more warnings).
const MAX_WARNED: usize = 1024;
/// The most datagrams one burst takes before delivering.
const MAX_BURST: usize = 1024;

/// See the module docs.
pub struct SyslogUdpSource {
    ctx: SourceContext,
    cfg: UdpConfig,
    socket: std::net::UdpSocket,
}

impl SyslogUdpSource {
    /// Binds now, so a bad address or a port in use stops start-up.
    pub fn bind(ctx: SourceContext, cfg: &UdpConfig) -> Result<SyslogUdpSource, SourceError> {
        let addr = format!("{}:{}", cfg.common.host, cfg.port);
        let socket = std::net::UdpSocket::bind((cfg.common.host.as_str(), cfg.port))
            .map_err(|e| start_error(&ctx.name, format!("cannot listen on UDP {addr}: {e}")))?;
        socket.set_nonblocking(true).map_err(|e| {
            start_error(
                &ctx.name,
                format!("cannot make UDP {addr} non-blocking: {e}"),
            )
        })?;
        Ok(SyslogUdpSource {
            ctx,
            cfg: cfg.clone(),
            socket,
        })
    }
}

impl Source for SyslogUdpSource {
    fn run(self: Box<Self>, stop: Arc<AtomicBool>) {
        let SyslogUdpSource { ctx, cfg, socket } = *self;
        let name = ctx.name.clone();
        let rt = match runtime(&name, Some(1)) {
            Ok(rt) => rt,
            Err(e) => {
                tracing::error!(source = %name, "source `{name}`: cannot start its runtime: {e}");
                return;
            }
        };
        let Some(shared) = Shared::start(ctx, &cfg.common, stop) else {
            return;
        };
        let shared = Arc::new(shared);
        let committer = shared.committer.clone();
        let shaper = Shaper::new(cfg.common.keep.clone());
        rt.block_on(async move {
            let socket = match tokio::net::UdpSocket::from_std(socket) {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(source = %name, "source `{name}`: cannot watch the socket: {e}");
                    return;
                }
            };
            tracing::info!(source = %name, "source `{name}` (syslogudp) listening on UDP {}",
                socket.local_addr().map_or_else(|_| "?".to_string(), |a| a.to_string()));
            let mut stop_rx = stop_watch(Arc::clone(&shared.stop));
            let mut buf = vec![0u8; MAX_DATAGRAM];
            let mut names = NameCache::default();
            let mut warned = std::collections::HashSet::new();
            let mut raws = Vec::new();
            loop {
                let first = tokio::select! {
                    r = socket.recv_from(&mut buf) => r,
                    () = stopped(&mut stop_rx) => return,
                };
                let mut events = Vec::new();
                let mut next = Some(first);
                let mut taken = 0;
                while let Some(received) = next.take() {
                    let (n, peer) = match received {
                        Ok(x) => x,
                        Err(e) => {
                            tracing::debug!(source = %name, "source `{name}`: receive: {e}");
                            break;
                        }
                    };
                    taken += 1;
                    let now = Timestamp::now();
                    Splitter::new(MAX_DATAGRAM).frame(&buf[..n], true, &mut raws);
                    let hostname = if shared.client_hostname_header.is_some() {
                        Some(names.get(peer.ip()).await)
                    } else {
                        None
                    };
                    for raw in raws.drain(..) {
                        let mut e = shaper.event(raw, now);
                        if e.header(STATUS) == Some(INVALID) && warned.len() < MAX_WARNED && warned.insert(peer.ip()) {
                            tracing::warn!(source = %name, "source `{name}`: {peer} sent a datagram that is not syslog; it is kept with {STATUS} = {INVALID} (not logged again for this sender)");
                        }
                        shared.peer_headers(&mut e, peer.ip(), hostname.as_deref());
                        events.push(e);
                    }
                    if taken < MAX_BURST {
                        match socket.try_recv_from(&mut buf) {
                            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                            r => next = Some(r),
                        }
                    }
                }
                if shared.deliver(events).await == Err(Undelivered::Stopped) {
                    return;
                }
            }
        });
        rt.shutdown_timeout(Duration::from_secs(1));
        committer.finish();
    }
}

/// Built here, beside the source, so the configuration does not import its source.
impl crate::source::SourceSpec for UdpConfig {
    fn build(&self, ctx: SourceContext) -> Result<Box<dyn Source>, SourceError> {
        Ok(Box::new(SyslogUdpSource::bind(ctx, self)?))
    }
}
