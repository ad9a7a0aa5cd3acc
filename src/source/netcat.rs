//! The `netcat` source (Flume's NetcatSource): a TCP listener on `bind:port`; every line a
//! client sends becomes one event.
//!
//! Each connection runs on its own thread. The lines of one read (everything the client has
//! sent and not yet had answered, up to 64 KiB) are put together through the source's
//! [`Committer`], which groups them with other connections' into one transaction per channel:
//! one sync for all of them, where Flume syncs once per line. With `ack-every-event` (the
//! default) the source answers `OK\n` for each line, in order, only after the commit holding
//! it has returned, so an acknowledged line is in the channel (durable, for the file
//! channel). A full channel is retried with a
//! growing backoff while the client waits for its `OK`; nothing is dropped. A line longer
//! than `max-line-length` bytes (counting its newline, as Flume counts it) is rejected with
//! `FAILED: Event exceeds the maximum length (N chars, including newline)\n` and not put.
//! A `\r` before the newline is kept in the body, as Flume keeps it.
//!
//! Shutdown: the accept loop waits for connections in `poll(2)` at most 50 ms at a time
//! ([`crate::net`]), and each connection reads with a 100 ms timeout, so both notice the stop
//! flag promptly; a line whose put is still retrying when the flag is set is abandoned
//! unacknowledged (the client never got `OK`).

use std::io::{ErrorKind, Read as _, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use super::commit::{CommitError, Committer, WhenFull};
use super::{OpenGuard, Source, SourceContext, SourceError, SourceSpec, SourceType};
use crate::config::{ConfigError, Keys, Registered};
use crate::event::Event;
use crate::metrics::{ComponentCounters, Counter};
use crate::route::ChannelProcessor;

const READ_TIMEOUT: Duration = Duration::from_millis(100);
/// Bytes read at a time: the lines of one read share a commit.
const READ_CHUNK: usize = 64 * 1024;

/// `netcat` / Flume's NetcatSource.
pub const TYPE: SourceType = Registered {
    alias: "netcat",
    class: Some("org.apache.flume.source.NetcatSource"),
    parse,
    minimal: &[("bind", "127.0.0.1"), ("port", "44444")],
};

/// The `netcat` source's keys (docs/CONFIG.md, `netcat`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetcatConfig {
    /// `bind` (required): address to listen on.
    pub bind: String,
    /// `port` (required).
    pub port: u16,
    /// `max-line-length` (default 512 bytes, newline included, as Flume counts it): a longer
    /// line is refused with a `FAILED` reply, as Flume does, and not put.
    pub max_line_length: usize,
    /// `ack-every-event` (default true): answer "OK" to every line.
    pub ack_every_event: bool,
    /// `max-connections` (flumen's; default 1024): connections beyond are accepted and closed
    /// at once with a log line naming the peer, so idle or hostile clients cannot exhaust
    /// threads and memory.
    pub max_connections: usize,
}

impl NetcatConfig {
    /// Listening on `bind:port` with every other key at its default.
    pub fn new(bind: &str, port: u16) -> NetcatConfig {
        NetcatConfig {
            bind: bind.to_string(),
            port,
            max_line_length: 512,
            ack_every_event: true,
            max_connections: 1024,
        }
    }
}

fn parse(keys: &mut Keys<'_>) -> Result<Box<dyn SourceSpec>, ConfigError> {
    let bind = keys.required(
        "bind",
        "the address to listen on, e.g. 0.0.0.0 or 127.0.0.1",
    )?;
    let port = keys.port("port", "the TCP port to listen on, e.g. 44444", 0)?;
    let d = NetcatConfig::new(&bind.value, port);
    let max_line_length = keys.size("max-line-length", d.max_line_length, 1, "bytes")?;
    let ack_every_event = keys.boolean("ack-every-event", d.ack_every_event)?;
    let max_connections = keys.size("max-connections", d.max_connections, 1, "connections")?;
    keys.document_default("encoding", "utf-8");
    keys.only("encoding", &["utf-8", "utf8"], "the netcat encoding")?;
    Ok(Box::new(NetcatConfig {
        max_line_length,
        ack_every_event,
        max_connections,
        ..d
    }))
}

impl SourceSpec for NetcatConfig {
    fn build(&self, ctx: SourceContext) -> Result<Box<dyn Source>, SourceError> {
        Ok(Box::new(NetcatSource::bind(ctx, self)?))
    }
}

/// See the module docs.
pub struct NetcatSource {
    name: String,
    channels: Arc<ChannelProcessor>,
    listener: TcpListener,
    addr: SocketAddr,
    max_line_length: usize,
    ack_every_event: bool,
    max_connections: usize,
    counters: Arc<ComponentCounters>,
}

impl NetcatSource {
    /// Binds `cfg.bind:cfg.port` now, so a bad address or a port in use stops start-up.
    pub fn bind(ctx: SourceContext, cfg: &NetcatConfig) -> Result<NetcatSource, SourceError> {
        let (listener, addr) = super::bind_listener(&ctx.name, &cfg.bind, cfg.port)?;
        Ok(NetcatSource {
            name: ctx.name,
            channels: ctx.channels,
            listener,
            addr,
            max_line_length: cfg.max_line_length.max(1),
            ack_every_event: cfg.ack_every_event,
            max_connections: cfg.max_connections.max(1),
            counters: ctx.counters,
        })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Source for NetcatSource {
    fn run(self: Box<Self>, stop: Arc<AtomicBool>) {
        tracing::info!(source = %self.name, "source `{}` (netcat) listening on {}", self.name, self.addr);
        let committer = match Committer::start(
            &self.name,
            Arc::clone(&self.channels),
            Arc::clone(&self.counters),
            WhenFull::Wait,
            Arc::clone(&stop),
        ) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(source = %self.name, "source `{}` cannot start: no thread for its commits: {e}", self.name);
                return;
            }
        };
        let conn = Arc::new(ConnSettings {
            source: self.name.clone(),
            committer: committer.clone(),
            max_line_length: self.max_line_length,
            ack_every_event: self.ack_every_event,
            counters: Arc::clone(&self.counters),
        });
        let mut workers: Vec<JoinHandle<()>> = Vec::new();
        let open = Arc::new(AtomicUsize::new(0));
        while !stop.load(Ordering::Acquire) {
            match self.listener.accept() {
                Ok((stream, peer)) => {
                    workers.retain(|w| !w.is_finished());
                    if open.load(Ordering::Acquire) >= self.max_connections {
                        tracing::warn!(
                            source = %self.name,
                            "source `{}`: refused the connection from {peer}: already {} open (max-connections)",
                            self.name,
                            self.max_connections
                        );
                        drop(stream);
                        continue;
                    }
                    let guard = OpenGuard::new(&open, &self.counters);
                    let conn = Arc::clone(&conn);
                    let stop = Arc::clone(&stop);
                    let spawned = std::thread::Builder::new()
                        .name(format!("{}-conn", self.name))
                        .spawn(move || {
                            let _guard = guard;
                            conn.serve(stream, peer, &stop)
                        });
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
        committer.finish();
    }
}

/// What a connection thread needs.
struct ConnSettings {
    source: String,
    committer: Committer,
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
            // A batch's replies go out in one write; Nagle would hold the next batch's behind
            // the client's delayed ACK.
            .and_then(|()| stream.set_nodelay(true))
        {
            tracing::warn!(source = %src, "source `{src}`: setting up the connection from {peer}: {e}");
            return;
        }
        let read = self.read_lines(&mut stream, peer, stop);
        match read {
            Ok(()) => {
                tracing::debug!(source = %src, "source `{src}`: connection from {peer} closed")
            }
            Err(e) => tracing::warn!(source = %src, "source `{src}`: connection from {peer}: {e}"),
        }
    }

    /// Reads lines until EOF, shutdown, or an error. The lines of each read are put together
    /// and acknowledged after that commit, in order.
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
        let mut chunk = vec![0u8; READ_CHUNK];
        let mut read = Read::default();
        loop {
            if stop.load(Ordering::Acquire) {
                return Ok(());
            }
            let n = match stream.read(&mut chunk) {
                Ok(0) => {
                    // A last line without a newline is still a line the client sent.
                    if !line.is_empty() && !too_long {
                        read.line(std::mem::take(&mut line));
                    }
                    self.deliver(stream, &mut read)?;
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
                let (part, newline) = match memchr::memchr(b'\n', rest) {
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
                        read.replies.push(Reply::TooLong);
                    } else {
                        read.line(std::mem::take(&mut line));
                    }
                }
            }
            if !self.deliver(stream, &mut read)? {
                return Ok(());
            }
        }
    }

    /// Puts the lines of one read (in as few transactions as the channels allow) and writes
    /// the replies in line order once the commits have returned. Returns false when shutdown
    /// abandoned them (the client got no `OK` for them).
    fn deliver(&self, stream: &mut TcpStream, read: &mut Read) -> Result<bool, String> {
        if read.replies.is_empty() {
            return Ok(true);
        }
        self.counters
            .add(Counter::EventReceivedCount, read.events.len() as u64);
        let mut outcomes: Vec<(usize, Result<(), CommitError>)> = Vec::new();
        let max = self.committer.max_batch();
        let mut tickets = Vec::new();
        while !read.events.is_empty() {
            let rest = read.events.split_off(max.min(read.events.len()));
            let batch = std::mem::replace(&mut read.events, rest);
            tickets.push((batch.len(), self.committer.submit(batch)));
        }
        for (n, t) in tickets {
            outcomes.push((n, t.wait()));
        }
        let mut out = Vec::with_capacity(read.replies.len() * 3);
        let mut outcomes = outcomes.into_iter();
        let mut current: Option<(usize, Result<(), CommitError>)> = None;
        let mut stopped = false;
        for reply in read.replies.drain(..) {
            match reply {
                Reply::TooLong => {
                    let msg = format!(
                        "FAILED: Event exceeds the maximum length ({} chars, including newline)\n",
                        self.max_line_length
                    );
                    out.extend_from_slice(msg.as_bytes());
                }
                Reply::Put => {
                    if current.as_ref().is_none_or(|(left, _)| *left == 0) {
                        current = outcomes.next();
                        if let Some((
                            _,
                            Err(e @ CommitError::Failed(_) | e @ CommitError::Full(_)),
                        )) = &current
                        {
                            tracing::error!(source = %self.source, "source `{}`: {e}", self.source);
                        }
                    }
                    let Some((left, outcome)) = current.as_mut() else {
                        break;
                    };
                    *left -= 1;
                    match outcome {
                        Ok(()) if self.ack_every_event => out.extend_from_slice(b"OK\n"),
                        Ok(()) => {}
                        Err(CommitError::Stopped) => {
                            stopped = true;
                            break;
                        }
                        Err(e) => out.extend_from_slice(format!("FAILED: {e}\n").as_bytes()),
                    }
                }
            }
        }
        read.replies.clear();
        if !out.is_empty() {
            stream.write_all(&out).map_err(|e| format!("write: {e}"))?;
        }
        Ok(!stopped)
    }
}

/// The lines of one read not yet put, and what to answer for each line in order.
#[derive(Default)]
struct Read {
    events: Vec<Event>,
    replies: Vec<Reply>,
}

impl Read {
    fn line(&mut self, body: Vec<u8>) {
        self.events.push(Event::new(body));
        self.replies.push(Reply::Put);
    }
}

/// The answer owed for one line.
enum Reply {
    /// Its put's outcome (`OK`, or `FAILED` with the channel's reason).
    Put,
    /// `FAILED`: over `max-line-length`, not put.
    TooLong,
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpStream;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    use super::*;
    use crate::channel::memory::{MemoryChannel, MemoryChannelConfig};
    use crate::channel::Channel;

    /// 64 lines in flight on one connection are committed together, not one sync per line,
    /// and every line is answered OK in order.
    #[test]
    fn lines_sent_together_share_a_commit() {
        let ch: Arc<dyn Channel> =
            Arc::new(MemoryChannel::new("c1", MemoryChannelConfig::default()).expect("channel"));
        let ctx = SourceContext::detached("r1", vec![Arc::clone(&ch)]);
        let src = NetcatSource::bind(ctx, &NetcatConfig::new("127.0.0.1", 0)).expect("bind");
        let addr = src.local_addr();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = Arc::clone(&stop);
        let t = std::thread::spawn(move || Box::new(src).run(stop2));

        let mut w = TcpStream::connect(addr).expect("connect");
        w.set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        let lines: String = (0..64).map(|i| format!("line {i}\n")).collect();
        w.write_all(lines.as_bytes()).expect("send");
        let mut r = BufReader::new(w.try_clone().expect("clone"));
        for _ in 0..64 {
            let mut reply = String::new();
            r.read_line(&mut reply).expect("ack");
            assert_eq!(reply, "OK\n");
        }
        let commits = ch.stats().commits;
        assert!(commits < 64, "64 lines in flight took {commits} commits");
        let mut tx = ch.take_transaction();
        let mut got = vec![];
        tx.take_batch(100, &mut got).expect("take");
        tx.commit().expect("commit");
        let bodies: Vec<String> = got
            .iter()
            .map(|e| String::from_utf8_lossy(e.body()).into_owned())
            .collect();
        let expected: Vec<String> = (0..64).map(|i| format!("line {i}")).collect();
        assert_eq!(bodies, expected);
        stop.store(true, Ordering::Release);
        t.join().expect("source thread");
    }

    #[test]
    fn netcat_waits_for_room_instead_of_dropping() {
        let ch: Arc<dyn Channel> = Arc::new(
            MemoryChannel::new(
                "c1",
                MemoryChannelConfig {
                    capacity: 2,
                    transaction_capacity: 2,
                    byte_capacity: None,
                    keep_alive: Duration::from_millis(20),
                },
            )
            .expect("channel"),
        );
        let ctx = SourceContext::detached("r1", vec![Arc::clone(&ch)]);
        let src = NetcatSource::bind(ctx, &NetcatConfig::new("127.0.0.1", 0)).expect("bind");
        let addr = src.local_addr();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = Arc::clone(&stop);
        let t = std::thread::spawn(move || Box::new(src).run(stop2));

        let mut w = TcpStream::connect(addr).expect("connect");
        w.set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        let mut r = BufReader::new(w.try_clone().expect("clone"));
        let mut reply = String::new();
        for l in ["a", "b"] {
            w.write_all(format!("{l}\n").as_bytes()).expect("send");
            reply.clear();
            r.read_line(&mut reply).expect("ack");
            assert_eq!(reply, "OK\n");
        }
        // The channel is full: the third line is held, unacknowledged, not dropped.
        w.write_all(b"c\n").expect("send");
        w.set_read_timeout(Some(Duration::from_millis(200)))
            .expect("timeout");
        reply.clear();
        assert!(
            r.read_line(&mut reply).is_err(),
            "acked while full: {reply:?}"
        );
        let mut tx = ch.take_transaction();
        let mut got = vec![];
        tx.take_batch(2, &mut got).expect("take");
        tx.commit().expect("commit");
        w.set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        reply.clear();
        r.read_line(&mut reply).expect("ack after room");
        assert_eq!(reply, "OK\n");
        let mut tx = ch.take_transaction();
        tx.take_batch(2, &mut got).expect("take");
        tx.commit().expect("commit");
        let bodies: Vec<&[u8]> = got.iter().map(|e| &e.body()[..]).collect();
        assert_eq!(bodies, [&b"a"[..], b"b", b"c"]);

        stop.store(true, Ordering::Release);
        t.join().expect("source thread");
    }
}
