//! The `multiport_syslogtcp` listener: one runtime (`numProcessors` workers), one accept
//! loop per port, connections served by the loop syslogtcp uses, with the multiport
//! source's line cutter, parser and per-port charset, and `portHeader`.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;

use super::config::{MultiportConfig, MAX_CONNECTIONS};
use super::frame::Framer;
use super::parse::Raw;
use super::parse_multiport::{self, LineCutter};
use super::tcp::{serve, tls_acceptor};
use super::{accept_loop, runtime, stop_watch, Shared};
use crate::source::{Source, SourceContext, SourceError};

/// See the module docs.
pub struct MultiportSource {
    ctx: SourceContext,
    cfg: MultiportConfig,
    listeners: Vec<(u16, std::net::TcpListener)>,
    tls: Option<tokio_rustls::TlsAcceptor>,
}

impl MultiportSource {
    /// Binds every port now (Flume logs a port it cannot bind and goes on; flumen stops
    /// start-up naming it), and reads the keystore.
    pub fn bind(ctx: SourceContext, cfg: &MultiportConfig) -> Result<MultiportSource, SourceError> {
        let mut listeners = Vec::new();
        for &port in &cfg.ports {
            let (l, addr) = crate::source::bind_listener(&ctx.name, &cfg.common.host, port)?;
            listeners.push((addr.port(), l));
        }
        let tls = tls_acceptor(&ctx.name, cfg.ssl.as_ref())?;
        Ok(MultiportSource {
            ctx,
            cfg: cfg.clone(),
            listeners,
            tls,
        })
    }
}

impl Source for MultiportSource {
    fn run(self: Box<Self>, stop: Arc<AtomicBool>) {
        let MultiportSource {
            ctx,
            cfg,
            listeners,
            tls,
        } = *self;
        let name = ctx.name.clone();
        let rt = match runtime(&name, cfg.num_processors) {
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
        let cfg = Arc::new(cfg);
        rt.block_on(async move {
            let ports: Vec<String> = listeners.iter().map(|(p, _)| p.to_string()).collect();
            tracing::info!(source = %name, "source `{name}` (multiport_syslogtcp) listening on {} ports {}{}",
                cfg.common.host, ports.join(" "), if tls.is_some() { " (TLS)" } else { "" });
            let stop_rx = stop_watch(Arc::clone(&shared.stop));
            let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
            let mut loops = tokio::task::JoinSet::new();
            for (port, listener) in listeners {
                let serve_shared = Arc::clone(&shared);
                let cfg = Arc::clone(&cfg);
                let tls = tls.clone();
                let stop_rx2 = stop_rx.clone();
                loops.spawn(accept_loop(
                    Arc::clone(&shared),
                    listener,
                    Arc::clone(&slots),
                    stop_rx.clone(),
                    move |stream, peer, permit| {
                        let shared = Arc::clone(&serve_shared);
                        let cfg = Arc::clone(&cfg);
                        let tls = tls.clone();
                        let stop_rx = stop_rx2.clone();
                        async move {
                            let charset = cfg.charset_of(port);
                            let framer = Framer::new(LineCutter::new(cfg.event_size));
                            let keep = cfg.common.keep.clone();
                            let shape = move |raw: Raw, now: Timestamp| {
                                parse_multiport::event(raw, charset, &keep, now)
                            };
                            let port_header = cfg.port_header.clone();
                            let extra = move |e: &mut crate::event::Event| {
                                if let Some(h) = &port_header {
                                    e.set_header(h.clone(), port.to_string());
                                }
                            };
                            serve(shared, stream, tls, peer, framer, shape, extra, stop_rx).await;
                            drop(permit);
                        }
                    },
                ));
            }
            while loops.join_next().await.is_some() {}
        });
        rt.shutdown_timeout(Duration::from_secs(1));
        committer.finish();
    }
}

/// Built here, beside the source, so the configuration does not import its source.
impl crate::source::SourceSpec for MultiportConfig {
    fn batch_size(&self) -> Option<(usize, &'static str)> {
        Some((self.batch_size, "batchSize"))
    }

    fn build(&self, ctx: SourceContext) -> Result<Box<dyn Source>, SourceError> {
        Ok(Box::new(MultiportSource::bind(ctx, self)?))
    }
}
