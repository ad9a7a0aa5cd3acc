//! The monitoring HTTP server: a tiny HTTP/1.1 server on one std thread that answers
//! `GET /metrics` (JSON) and `GET /metrics/prometheus`. It answers one request per connection
//! (`Connection: close`), reads at most [`MAX_REQUEST_BYTES`] of request head with a timeout,
//! answers 400/404/405 to anything it does not serve, never panics on input, and stops when
//! [`MetricsServer::stop`] is called (or the server is dropped).

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use super::Registry;

/// Longest request head (request line and headers) the server reads.
pub const MAX_REQUEST_BYTES: usize = 8192;
const CLIENT_TIMEOUT: Duration = Duration::from_secs(2);

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
            .spawn(move || serve(&listener, &registry, &stop2))?;
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

fn serve(listener: &TcpListener, registry: &Registry, stop: &AtomicBool) {
    while !stop.load(Ordering::Acquire) {
        match listener.accept() {
            Ok((stream, peer)) => {
                if let Err(e) = handle(stream, registry) {
                    tracing::debug!("monitoring: request from {peer}: {e}");
                }
            }
            Err(e) => crate::net::after_failed_accept(listener, &e, |e| {
                tracing::warn!("monitoring: accept: {e}");
            }),
        }
    }
}

/// Reads the request head (bounded, with a timeout) and writes the response.
fn handle(mut stream: TcpStream, registry: &Registry) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(CLIENT_TIMEOUT))?;
    stream.set_write_timeout(Some(CLIENT_TIMEOUT))?;
    let mut head = Vec::with_capacity(1024);
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
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => head.extend_from_slice(&buf[..n.min(MAX_REQUEST_BYTES + 1 - head.len())]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
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
    stream.write_all(&out)?;
    stream.flush()?;
    let _ = stream.shutdown(std::net::Shutdown::Write);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::test_support::registry;
    use super::super::Counter;
    use super::*;

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
        assert!(http(addr, b"").starts_with("HTTP/1.1 400 "));
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
}
