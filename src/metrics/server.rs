//! The monitoring HTTP server: a tiny HTTP/1.1 server that answers `GET /metrics` (JSON) and
//! `GET /metrics/prometheus`. It answers one request per connection (`Connection: close`),
//! reads at most [`MAX_REQUEST_BYTES`] of request head, answers 400/404/405 to anything it does
//! not serve, never panics on input, and stops when [`MetricsServer::stop`] is called (or the
//! server is dropped).
//!
//! It runs on one thread with a single-threaded tokio runtime, so that slow or silent clients
//! cannot queue a scrape behind them: every connection has [`CLIENT_TIMEOUT`] in all to send
//! its request and take the answer, and at most [`MAX_CONNECTIONS`] are open at once (the
//! oldest is closed to make room for a new one), which bounds both the memory a flood of
//! connections can take (each holds at most [`MAX_REQUEST_BYTES`] of head) and the file
//! descriptors it can take from the agent's channels and sinks.

use std::collections::VecDeque;
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::Registry;

/// Longest request head (request line and headers) the server reads.
pub const MAX_REQUEST_BYTES: usize = 8192;
/// How long a connection may take in all to send its request head and take the answer.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);
/// Most connections served at once; a scraper needs one, so this only bounds a flood.
pub const MAX_CONNECTIONS: usize = 256;
/// How often the accept loop looks at the stop flag.
const STOP_POLL: Duration = Duration::from_millis(50);

/// An HTTP response: status line text, content type, body.
#[derive(Debug, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Error",
    }
}

/// Answers a request whose head (request line and headers, possibly truncated) is `head`.
pub fn respond(registry: &Registry, head: &[u8]) -> Response {
    let text = |status: u16, body: &str| Response {
        status,
        content_type: "text/plain; charset=utf-8",
        body: format!("{body}\n"),
    };
    let line_end = head.iter().position(|&b| b == b'\n').unwrap_or(head.len());
    let Ok(line) = std::str::from_utf8(&head[..line_end]) else {
        return text(400, "bad request");
    };
    let mut parts = line.trim_end_matches('\r').split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return text(400, "bad request");
    };
    if !version.starts_with("HTTP/1.") || method.is_empty() || !target.starts_with('/') {
        return text(400, "bad request");
    }
    if method != "GET" && method != "HEAD" {
        return text(405, "only GET is served");
    }
    let path = target.split('?').next().unwrap_or(target);
    match path {
        "/metrics" | "/metrics/" => Response {
            status: 200,
            content_type: "application/json",
            body: registry.render_json(),
        },
        "/metrics/prometheus" => Response {
            status: 200,
            content_type: "text/plain; version=0.0.4; charset=utf-8",
            body: registry.render_prometheus(),
        },
        _ => text(404, "not found: try /metrics or /metrics/prometheus"),
    }
}

/// The running HTTP server.
pub struct MetricsServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl MetricsServer {
    /// Binds `addr` and serves `registry` on a thread until [`MetricsServer::stop`].
    pub fn start(addr: SocketAddr, registry: Arc<Registry>) -> std::io::Result<MetricsServer> {
        let listener = TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("metrics-http".into())
            .spawn(move || serve(listener, registry, &stop2))?;
        tracing::info!("monitoring: serving http://{addr}/metrics and /metrics/prometheus");
        Ok(MetricsServer {
            addr,
            stop,
            thread: Some(thread),
        })
    }

    /// The address bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops serving and waits for the thread.
    pub fn stop(mut self) {
        self.stop_inner();
    }

    fn stop_inner(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            if t.join().is_err() {
                tracing::error!("monitoring: the HTTP server thread panicked");
            }
        }
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.stop_inner();
    }
}

fn serve(listener: TcpListener, registry: Arc<Registry>, stop: &AtomicBool) {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!("monitoring: cannot start the HTTP server's runtime: {e}; no metrics will be served");
            return;
        }
    };
    rt.block_on(async move {
        let listener = match tokio::net::TcpListener::from_std(listener) {
            Ok(l) => l,
            Err(e) => {
                tracing::error!("monitoring: cannot serve the bound socket: {e}; no metrics will be served");
                return;
            }
        };
        // Oldest first: the connection closed to make room is the one open the longest.
        let mut open: VecDeque<(SocketAddr, tokio::task::AbortHandle)> = VecDeque::new();
        while !stop.load(Ordering::Acquire) {
            let accepted = match tokio::time::timeout(STOP_POLL, listener.accept()).await {
                Err(_) => continue,
                Ok(r) => r,
            };
            match accepted {
                Ok((stream, peer)) => {
                    open.retain(|(_, h)| !h.is_finished());
                    if open.len() >= MAX_CONNECTIONS {
                        if let Some((old, h)) = open.pop_front() {
                            h.abort();
                            tracing::warn!("monitoring: more than {MAX_CONNECTIONS} connections open; closed the oldest, from {old}");
                        }
                    }
                    let registry = Arc::clone(&registry);
                    let task = tokio::spawn(async move {
                        match tokio::time::timeout(CLIENT_TIMEOUT, handle(stream, &registry, peer)).await
                        {
                            Ok(Ok(())) => {}
                            Ok(Err(e)) => tracing::debug!("monitoring: request from {peer}: {e}"),
                            Err(_) => tracing::warn!(
                                "monitoring: {peer} did not send a request and take the answer within {}s; closed",
                                CLIENT_TIMEOUT.as_secs()
                            ),
                        }
                    });
                    open.push_back((peer, task.abort_handle()));
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // EMFILE and the like: say so, and give the shortage time to pass.
                    tracing::warn!("monitoring: accept: {e}");
                    tokio::time::sleep(crate::net::ACCEPT_POLL).await;
                }
            }
        }
    });
}

/// Reads the request head (bounded) and writes the response; the caller bounds the time.
async fn handle(
    mut stream: tokio::net::TcpStream,
    registry: &Registry,
    peer: SocketAddr,
) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    let mut too_long = false;
    loop {
        if head.windows(4).any(|w| w == b"\r\n\r\n") || head.windows(2).any(|w| w == b"\n\n") {
            break;
        }
        if head.len() >= MAX_REQUEST_BYTES {
            too_long = true;
            break;
        }
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n.min(MAX_REQUEST_BYTES + 1 - head.len())]);
    }
    if head.is_empty() {
        // Connected and closed without a byte (a port probe, a health check): nothing to say.
        return Ok(());
    }
    let is_head = head.starts_with(b"HEAD ");
    let resp = if too_long {
        Response {
            status: 400,
            content_type: "text/plain; charset=utf-8",
            body: "request head too long\n".into(),
        }
    } else {
        respond(registry, &head)
    };
    if resp.status == 400 {
        // As every listener does: a peer sending what is not HTTP is named, so it can be found.
        tracing::warn!(
            "monitoring: answered 400 Bad Request to {peer}: {}",
            resp.body.trim_end()
        );
    }
    let mut out = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        resp.status,
        reason(resp.status),
        resp.content_type,
        resp.body.len()
    )
    .into_bytes();
    if !is_head {
        out.extend_from_slice(resp.body.as_bytes());
    }
    stream.write_all(&out).await?;
    stream.flush().await?;
    let _ = stream.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::test_support::registry;
    use super::super::Counter;
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpStream;

    #[test]
    fn routes_and_malformed_requests() {
        let (reg, _, _) = registry();
        assert_eq!(respond(&reg, b"GET /metrics HTTP/1.1\r\n\r\n").status, 200);
        let p = respond(&reg, b"GET /metrics/prometheus HTTP/1.0\r\nHost: x\r\n\r\n");
        assert_eq!(
            (p.status, p.content_type.starts_with("text/plain")),
            (200, true)
        );
        assert_eq!(respond(&reg, b"GET /nope HTTP/1.1\r\n\r\n").status, 404);
        assert_eq!(respond(&reg, b"POST /metrics HTTP/1.1\r\n\r\n").status, 405);
        for bad in [
            &b""[..],
            b"\r\n\r\n",
            b"garbage",
            b"GET\r\n\r\n",
            b"GET /metrics\r\n\r\n",
            b"GET metrics HTTP/1.1\r\n\r\n",
            b"GET /metrics HTTP/1.1 extra\r\n\r\n",
            b"GET /metrics SMTP\r\n\r\n",
            b"\xff\xfe /metrics HTTP/1.1\r\n\r\n",
        ] {
            assert_eq!(respond(&reg, bad).status, 400, "{bad:?}");
        }
    }

    fn http(addr: SocketAddr, request: &[u8]) -> String {
        let mut s = TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        s.write_all(request).expect("write");
        let _ = s.shutdown(std::net::Shutdown::Write);
        let mut out = String::new();
        s.read_to_string(&mut out).expect("read");
        out
    }

    #[test]
    fn server_answers_and_survives_bad_input() {
        let (reg, src, _) = registry();
        let server =
            MetricsServer::start("127.0.0.1:0".parse().expect("addr"), reg).expect("start");
        let addr = server.local_addr();
        let ok = http(addr, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
        assert!(ok.contains("Connection: close\r\n"), "{ok}");
        let body = ok.split("\r\n\r\n").nth(1).expect("body");
        let v: serde_json::Value = serde_json::from_str(body).expect("json");
        assert_eq!(v["SOURCE.r1"]["EventAcceptedCount"], "2");
        src.add(Counter::EventAcceptedCount, 40);
        let prom = http(addr, b"GET /metrics/prometheus HTTP/1.1\r\n\r\n");
        assert!(
            prom.contains("flumen_source_event_accepted_total{component=\"r1\"} 42\n"),
            "{prom}"
        );
        assert!(http(addr, b"\x00\x01garbage\r\n\r\n").starts_with("HTTP/1.1 400 "));
        // A connection closed without a byte (a port probe) gets no answer and no log line.
        assert_eq!(http(addr, b""), "");
        let huge = vec![b'A'; MAX_REQUEST_BYTES * 4];
        let mut s = TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        // The server may close before reading it all; only its answer matters.
        let _ = s.write_all(&huge);
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        assert!(out.is_empty() || out.starts_with("HTTP/1.1 400 "), "{out}");
        assert!(http(addr, b"GET /nope HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404 "));
        // Still serving after all that.
        assert!(http(addr, b"GET /metrics HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 200 "));
        server.stop();
        assert!(
            TcpStream::connect(addr).is_err(),
            "still listening after stop"
        );
    }

    /// Silent clients, more of them than the server keeps, do not queue a scrape behind them:
    /// the single-threaded blocking server this replaced answered it only after each of them
    /// had timed out in turn.
    #[test]
    fn silent_connections_do_not_hold_up_a_scrape() {
        let (reg, _, _) = registry();
        let server =
            MetricsServer::start("127.0.0.1:0".parse().expect("addr"), reg).expect("start");
        let addr = server.local_addr();
        let mut silent: Vec<TcpStream> = (0..MAX_CONNECTIONS + 50)
            .map(|_| TcpStream::connect(addr).expect("connect"))
            .collect();
        // Half a request from some of them: slowloris.
        for s in silent.iter_mut().take(20) {
            s.write_all(b"GET /metrics HTTP/1.1\r\nX-Slow: ")
                .expect("write");
        }
        let ok = http(addr, b"GET /metrics HTTP/1.1\r\n\r\n");
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
        // The oldest were closed to make room: the server holds at most MAX_CONNECTIONS.
        let mut closed = 0;
        let mut buf = [0u8; 16];
        for s in silent.iter_mut().take(50) {
            s.set_read_timeout(Some(Duration::from_secs(30)))
                .expect("timeout");
            if matches!(s.read(&mut buf), Ok(0) | Err(_)) {
                closed += 1;
            }
        }
        assert_eq!(closed, 50);
        server.stop();
    }
}
