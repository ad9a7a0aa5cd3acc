//! The `netcat` source (Flume's NetcatSource): a TCP listener on `bind:port`; every line a
//! client sends becomes one event, put into the bound channels in its own transaction.
//!
//! Each connection runs on its own thread. With `ack-every-event` (the default) the source
//! answers `OK\n` only after every bound channel's commit has returned, so an acknowledged
//! line is in the channel (durable, for the file channel). A full channel is retried with a
//! growing backoff while the client waits for its `OK`; nothing is dropped. A line longer
//! than `max-line-length` bytes (counting its newline, as Flume counts it) is rejected with
//! `FAILED: Event exceeds the maximum length (N chars, including newline)\n` and not put.
//! A `\r` before the newline is kept in the body, as Flume keeps it.
//!
//! Shutdown: the accept loop waits for connections in `poll(2)` at most 50 ms at a time
//! ([`crate::net`]), and each connection reads with a 100 ms timeout, so both notice the stop
//! flag promptly; a line whose put is still retrying when the flag is set is abandoned
//! unacknowledged (the client never got `OK`).

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use super::{put_all, PutError, Source, SourceError};
use crate::channel::Channel;
use crate::event::Event;
use crate::metrics::{ComponentCounters, ComponentType, Counter};

const READ_TIMEOUT: Duration = Duration::from_millis(100);

/// See the module docs.
pub struct NetcatSource {
    name: String,
    channels: Vec<Arc<dyn Channel>>,
    listener: TcpListener,
    addr: SocketAddr,
    max_line_length: usize,
    ack_every_event: bool,
    counters: Arc<ComponentCounters>,
}

impl NetcatSource {
    /// Binds `bind:port` now, so a bad address or a port in use stops start-up.
    pub fn bind(
        name: &str,
        channels: Vec<Arc<dyn Channel>>,
        bind: &str,
        port: u16,
        max_line_length: usize,
        ack_every_event: bool,
    ) -> Result<NetcatSource, SourceError> {
        let (listener, addr) = super::bind_listener(name, bind, port)?;
        Ok(NetcatSource {
            name: name.to_string(),
            channels,
            listener,
            addr,
            max_line_length: max_line_length.max(1),
            ack_every_event,
            counters: ComponentCounters::detached(name, ComponentType::Source),
        })
    }

    /// Counts into `counters` (Flume's SourceCounter) instead of detached counters.
    pub fn with_counters(mut self, counters: Arc<ComponentCounters>) -> Self {
        self.counters = counters;
        self
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Source for NetcatSource {
    fn run(self: Box<Self>, stop: Arc<AtomicBool>) {
        tracing::info!(source = %self.name, "source `{}` (netcat) listening on {}", self.name, self.addr);
        let conn = Arc::new(ConnSettings {
            source: self.name.clone(),
            channels: self.channels.clone(),
            max_line_length: self.max_line_length,
            ack_every_event: self.ack_every_event,
            counters: Arc::clone(&self.counters),
        });
        let mut workers: Vec<JoinHandle<()>> = Vec::new();
        while !stop.load(Ordering::Acquire) {
            match self.listener.accept() {
                Ok((stream, peer)) => {
                    workers.retain(|w| !w.is_finished());
                    let conn = Arc::clone(&conn);
                    let stop = Arc::clone(&stop);
                    let spawned = std::thread::Builder::new()
                        .name(format!("{}-conn", self.name))
                        .spawn(move || conn.serve(stream, peer, &stop));
                    match spawned {
                        Ok(h) => workers.push(h),
                        Err(e) => tracing::error!(
                            source = %self.name,
                            "source `{}`: cannot start a thread for the connection from {peer}: {e}",
                            self.name
                        ),
                    }
                }
                Err(e) => crate::net::after_failed_accept(&self.listener, &e, |e| {
                    tracing::warn!(source = %self.name, "source `{}`: accept on {}: {e}", self.name, self.addr);
                }),
            }
        }
        drop(self.listener);
        for w in workers {
            if w.join().is_err() {
                tracing::error!(source = %self.name, "source `{}`: a connection thread panicked", self.name);
            }
        }
    }
}

/// What a connection thread needs.
struct ConnSettings {
    source: String,
    channels: Vec<Arc<dyn Channel>>,
    max_line_length: usize,
    ack_every_event: bool,
    counters: Arc<ComponentCounters>,
}

impl ConnSettings {
    fn serve(&self, mut stream: TcpStream, peer: SocketAddr, stop: &AtomicBool) {
        let src = &self.source;
        tracing::debug!(source = %src, "source `{src}`: connection from {peer}");
        if let Err(e) = stream
            .set_nonblocking(false)
            .and_then(|()| stream.set_read_timeout(Some(READ_TIMEOUT)))
        {
            tracing::warn!(source = %src, "source `{src}`: setting up the connection from {peer}: {e}");
            return;
        }
        self.counters.inc(Counter::OpenConnectionCount);
        let read = self.read_lines(&mut stream, peer, stop);
        self.counters.dec(Counter::OpenConnectionCount);
        match read {
            Ok(()) => {
                tracing::debug!(source = %src, "source `{src}`: connection from {peer} closed")
            }
            Err(e) => tracing::warn!(source = %src, "source `{src}`: connection from {peer}: {e}"),
        }
    }

    /// Reads lines until EOF, shutdown, or an error; puts and acknowledges each.
    fn read_lines(
        &self,
        stream: &mut TcpStream,
        peer: SocketAddr,
        stop: &AtomicBool,
    ) -> Result<(), String> {
        // Most body bytes: the limit counts the newline, as Flume's does.
        let max_body = self.max_line_length.saturating_sub(1);
        let mut line: Vec<u8> = Vec::new();
        let mut too_long = false;
        let mut chunk = vec![0u8; 8192];
        loop {
            if stop.load(Ordering::Acquire) {
                return Ok(());
            }
            let n = match stream.read(&mut chunk) {
                Ok(0) => {
                    // A last line without a newline is still a line the client sent.
                    if !line.is_empty() && !too_long {
                        self.deliver(stream, std::mem::take(&mut line), stop)?;
                    }
                    return Ok(());
                }
                Ok(n) => n,
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                    ) =>
                {
                    continue
                }
                Err(e) => return Err(format!("read: {e}")),
            };
            let mut rest = &chunk[..n];
            while !rest.is_empty() {
                let (part, newline) = match rest.iter().position(|&b| b == b'\n') {
                    Some(i) => (&rest[..i], true),
                    None => (rest, false),
                };
                rest = if newline {
                    &rest[part.len() + 1..]
                } else {
                    &[]
                };
                if !too_long {
                    if line.len() + part.len() > max_body {
                        too_long = true;
                        line.clear();
                    } else {
                        line.extend_from_slice(part);
                    }
                }
                if newline {
                    if too_long {
                        too_long = false;
                        tracing::warn!(
                            source = %self.source,
                            "source `{}`: rejected a line from {peer} over max-line-length {}",
                            self.source,
                            self.max_line_length
                        );
                        let msg = format!(
                            "FAILED: Event exceeds the maximum length ({} chars, including newline)\n",
                            self.max_line_length
                        );
                        stream
                            .write_all(msg.as_bytes())
                            .map_err(|e| format!("write: {e}"))?;
                    } else {
                        let body = std::mem::take(&mut line);
                        if !self.deliver(stream, body, stop)? {
                            return Ok(());
                        }
                    }
                }
            }
        }
    }

    /// Puts one line and acknowledges it. Returns false when shutdown abandoned it.
    fn deliver(
        &self,
        stream: &mut TcpStream,
        body: Vec<u8>,
        stop: &AtomicBool,
    ) -> Result<bool, String> {
        let event = [Event::new(body)];
        self.counters.inc(Counter::EventReceivedCount);
        let reply: &[u8] = match put_all(&self.source, &self.channels, &event, stop) {
            Ok(()) => {
                self.counters.inc(Counter::EventAcceptedCount);
                if !self.ack_every_event {
                    return Ok(true);
                }
                b"OK\n"
            }
            Err(PutError::Stopped) => return Ok(false),
            Err(PutError::Failed(e)) => {
                self.counters.inc(Counter::ChannelWriteFail);
                tracing::error!(source = %self.source, "source `{}`: {e}", self.source);
                let msg = format!("FAILED: {e}\n");
                stream
                    .write_all(msg.as_bytes())
                    .map_err(|e| format!("write: {e}"))?;
                return Ok(true);
            }
        };
        stream.write_all(reply).map_err(|e| format!("write: {e}"))?;
        Ok(true)
    }
}
