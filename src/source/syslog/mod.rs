//! The syslog sources: `syslogtcp`, `multiport_syslogtcp` and `syslogudp` (Flume's
//! SyslogTcpSource, MultiportSyslogTCPSource and SyslogUDPSource), with Flume's keys and
//! Flume's event shape.
//!
//! Layout: `config` (keys), `parse` (syslogtcp's and syslogudp's message parser, Flume's
//! SyslogUtils), `parse_multiport` (the multiport source's, Flume's SyslogParser), `frame`
//! (TCP framing: newline or RFC 6587 octet counting, detected per connection), and one file
//! per listener (`tcp`, `multiport`, `udp`). This module holds what the listeners share:
//! their tokio runtime, the stop signal, the connection bound, the sender headers
//! (`clientIPHeader`, `clientHostnameHeader`) and the delivery of one read burst.
//!
//! Invariants: every listener runs on its own small tokio runtime built in `run`, which
//! returns once the stop flag is set. Everything one read of a connection (or one burst of
//! datagrams) produced is delivered together, and the connection is not read again until
//! that delivery returned (backpressure: a full channel stops the reading, never drops).
//! Channel commits never run on a runtime worker. A connection holds no read buffer while
//! idle; memory per connection is bounded by `eventSize`; connections are bounded by
//! [`config::MAX_CONNECTIONS`]. Syslog has no acknowledgement: a connection that closes
//! still has what it sent committed, but events read and not yet committed when the source
//! stops are lost (the sender cannot know), as in Flume.

pub mod config;
pub mod frame;
mod multiport;
pub mod parse;
pub mod parse_multiport;
mod tcp;
mod udp;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

pub use config::{MULTIPORT_TYPE, TCP_TYPE, UDP_TYPE};

use super::commit::{CommitError, Committer, WhenFull};
use super::{SourceContext, SourceError};
use crate::event::Event;
use crate::metrics::{ComponentCounters, Counter};

/// How often the runtime looks at the agent's stop flag.
const STOP_POLL: Duration = Duration::from_millis(50);

/// Builds a listener's runtime: `threads` workers (the machine's cores, at most 4, when
/// unset).
fn runtime(name: &str, threads: Option<usize>) -> std::io::Result<tokio::runtime::Runtime> {
    let n = threads.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
            .min(4)
    });
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(n.max(1))
        .thread_name(format!("{name}-syslog"))
        .enable_io()
        .enable_time()
        .build()
}

/// A watch that turns `true` once the agent's stop flag is set (polled on the runtime).
fn stop_watch(stop: Arc<AtomicBool>) -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(STOP_POLL);
        loop {
            tick.tick().await;
            if stop.load(Ordering::Acquire) {
                let _ = tx.send(true);
                return;
            }
            if tx.is_closed() {
                return;
            }
        }
    });
    rx
}

/// Waits until `rx` says stop.
async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

/// What every listener of a source shares.
struct Shared {
    name: String,
    committer: Committer,
    counters: Arc<ComponentCounters>,
    stop: Arc<AtomicBool>,
    client_ip_header: Option<String>,
    client_hostname_header: Option<String>,
}

/// Why a delivery did not commit.
#[derive(Debug, PartialEq, Eq)]
enum Undelivered {
    /// The source is stopping.
    Stopped,
    /// A channel refused for good (logged); the events are dropped, as Flume drops them.
    Failed,
}

impl Shared {
    /// The shared state of a source, with its committer started (a thread); `None` (logged)
    /// when no thread can be had.
    fn start(ctx: SourceContext, common: &config::Common, stop: Arc<AtomicBool>) -> Option<Shared> {
        let committer = match Committer::start(
            &ctx.name,
            Arc::clone(&ctx.channels),
            Arc::clone(&ctx.counters),
            WhenFull::Wait,
            Arc::clone(&stop),
        ) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(source = %ctx.name, "source `{}` cannot start: no thread for its commits: {e}", ctx.name);
                return None;
            }
        };
        Some(Shared {
            name: ctx.name,
            committer,
            counters: ctx.counters,
            stop,
            client_ip_header: common.client_ip_header.clone(),
            client_hostname_header: common.client_hostname_header.clone(),
        })
    }

    /// Commits `events` (everything one read produced) through the source's committer, in
    /// as few requests as the channels' `transactionCapacity` allows; returns once they are
    /// committed or given up. The committer's thread does the blocking commit.
    async fn deliver(&self, mut events: Vec<Event>) -> Result<(), Undelivered> {
        if events.is_empty() {
            return Ok(());
        }
        self.counters
            .add(Counter::EventReceivedCount, events.len() as u64);
        let max = self.committer.max_batch().max(1);
        let mut tickets = Vec::new();
        while !events.is_empty() {
            let rest = events.split_off(max.min(events.len()));
            tickets.push(self.committer.submit(std::mem::replace(&mut events, rest)));
        }
        let mut result = Ok(());
        for t in tickets {
            match t.await {
                Ok(()) => {}
                Err(CommitError::Stopped) => result = Err(Undelivered::Stopped),
                Err(e) => {
                    tracing::error!(source = %self.name, "source `{}`: events dropped: {e}", self.name);
                    if result.is_ok() {
                        result = Err(Undelivered::Failed);
                    }
                }
            }
        }
        result
    }

    /// Sets the sender headers on `e` (after the parsed ones, so they win, as in Flume).
    fn peer_headers(&self, e: &mut Event, peer: IpAddr, hostname: Option<&str>) {
        if let Some(h) = &self.client_ip_header {
            e.set_header(h.clone(), java_ip(peer));
        }
        if let (Some(h), Some(name)) = (&self.client_hostname_header, hostname) {
            e.set_header(h.clone(), name.to_string());
        }
    }
}

/// The address as Java's `getHostAddress` writes it (an IPv4-mapped IPv6 peer as IPv4).
fn java_ip(ip: IpAddr) -> String {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => v6.to_string(),
        },
        IpAddr::V4(v4) => v4.to_string(),
    }
}

/// The peer's host name as Java's `getHostName` finds it: the reverse lookup, confirmed by
/// a forward lookup, else the address. Blocking (DNS): run off the runtime's workers.
fn reverse_lookup(ip: IpAddr) -> String {
    dns_lookup::lookup_addr(&ip)
        .ok()
        .filter(|name| {
            dns_lookup::lookup_host(name)
                .map(|mut addrs| addrs.any(|a| a == ip))
                .unwrap_or(false)
        })
        .unwrap_or_else(|| java_ip(ip))
}

async fn lookup(ip: IpAddr) -> String {
    tokio::task::spawn_blocking(move || reverse_lookup(ip))
        .await
        .unwrap_or_else(|_| java_ip(ip))
}

/// Host names of datagram senders, looked up once each (bounded: cleared when full).
#[derive(Default)]
struct NameCache {
    names: HashMap<IpAddr, String>,
}

impl NameCache {
    const MAX: usize = 4096;

    async fn get(&mut self, ip: IpAddr) -> String {
        if let Some(n) = self.names.get(&ip) {
            return n.clone();
        }
        let n = lookup(ip).await;
        if self.names.len() >= Self::MAX {
            self.names.clear();
        }
        self.names.insert(ip, n.clone());
        n
    }
}

/// The "cannot start" error of a source.
fn start_error(name: &str, message: String) -> SourceError {
    SourceError::Start {
        source_name: name.to_string(),
        message,
    }
}

/// Accepts on a bound std listener until stop, handing each connection (with its slot) to
/// `serve`. Connections over the bound are closed at once; that is logged once per episode.
async fn accept_loop<F, Fut>(
    shared: Arc<Shared>,
    listener: std::net::TcpListener,
    slots: Arc<tokio::sync::Semaphore>,
    mut stop_rx: watch::Receiver<bool>,
    serve: F,
) where
    F: Fn(tokio::net::TcpStream, SocketAddr, tokio::sync::OwnedSemaphorePermit) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(source = %shared.name, "source `{}`: cannot watch the listener: {e}", shared.name);
            return;
        }
    };
    let mut refusing = false;
    let mut accept_failing = false;
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            () = stopped(&mut stop_rx) => return,
        };
        match accepted {
            Ok((stream, peer)) => match Arc::clone(&slots).try_acquire_owned() {
                Ok(permit) => {
                    refusing = false;
                    accept_failing = false;
                    tokio::spawn(serve(stream, peer, permit));
                }
                Err(_) => {
                    if !refusing {
                        refusing = true;
                        tracing::warn!(
                            source = %shared.name,
                            "source `{}`: {} connections open, the most it holds; closing new ones (first: {peer}) until one ends",
                            shared.name,
                            config::MAX_CONNECTIONS
                        );
                    }
                    drop(stream);
                }
            },
            Err(e) => {
                // Out of descriptors and the like repeats until a connection closes: said
                // once per episode, and no spinning.
                if !accept_failing {
                    accept_failing = true;
                    tracing::warn!(source = %shared.name, "source `{}`: accept: {e} (retrying every 50 ms; said once until an accept succeeds)", shared.name);
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}
