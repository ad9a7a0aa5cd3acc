//! `flumen bench load`: a load generator for a Flume-compatible network source, flumen's or
//! Apache Flume's, speaking each protocol as the sources do:
//!
//! * `netcat://HOST:PORT`: lines, each answered `OK` (or `FAILED: ...`); every client keeps up
//!   to `--in-flight` lines sent ahead of their answers, as a pipelining client does;
//! * `syslog+tcp://HOST:PORT`: RFC 5424 lines, newline-framed; syslog has no answers, so the
//!   figure is the send rate (the agent's own drain is what `flumen bench syslog` times);
//! * `http://HOST:PORT[/PATH]`: Flume's JSONHandler format, `--batch` events per POST on a
//!   keep-alive connection per client; 200 counts the batch, 503 is retried after a short
//!   pause, any other status counts the batch as failed.
//!
//! Each client is a thread with its own connection and its share of `--events`. Output: a
//! table (unless `--json`), then one JSON object as the last stdout line. The HTTP/1.1 client
//! is the few lines a keep-alive POST loop needs (one request in flight per connection, a
//! Content-Length body): a client library would add a runtime to the generator's threads.

use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Args;

use super::bench_agent::{per_sec, round3};
use super::CliError;

/// Wait before resending a batch an HTTP source refused with 503.
const RETRY_PAUSE: Duration = Duration::from_millis(5);

/// `flumen bench load` options.
#[derive(Debug, Args, Clone)]
pub struct LoadArgs {
    /// Where to send: netcat://HOST:PORT, syslog+tcp://HOST:PORT or http://HOST:PORT[/PATH].
    #[arg(long, value_name = "URL")]
    pub to: String,
    /// Events to send in all (split evenly across clients).
    #[arg(long, default_value_t = 100_000)]
    pub events: u64,
    /// Body size in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 200)]
    pub event_size: usize,
    /// Concurrent clients, each with its own connection.
    #[arg(long, default_value_t = 1)]
    pub clients: usize,
    /// netcat: lines each client sends ahead of their answers.
    #[arg(long, default_value_t = 64)]
    pub in_flight: usize,
    /// http: events per POST.
    #[arg(long, default_value_t = 100)]
    pub batch: usize,
    /// Print only the JSON line.
    #[arg(long)]
    pub json: bool,
}

/// The protocol and address of `--to`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Netcat(String),
    SyslogTcp(String),
    Http { addr: String, path: String },
}

impl Target {
    pub fn parse(to: &str) -> Result<Target, CliError> {
        let usage = || {
            CliError::Usage(format!(
                "--to {to}: expected netcat://HOST:PORT, syslog+tcp://HOST:PORT or \
                 http://HOST:PORT[/PATH]"
            ))
        };
        let (scheme, rest) = to.split_once("://").ok_or_else(usage)?;
        let (addr, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if addr.is_empty() || !addr.contains(':') {
            return Err(usage());
        }
        match scheme {
            "netcat" => Ok(Target::Netcat(addr.to_string())),
            "syslog+tcp" => Ok(Target::SyslogTcp(addr.to_string())),
            "http" => Ok(Target::Http {
                addr: addr.to_string(),
                path: path.to_string(),
            }),
            _ => Err(usage()),
        }
    }

    fn addr(&self) -> &str {
        match self {
            Target::Netcat(a) | Target::SyslogTcp(a) | Target::Http { addr: a, .. } => a,
        }
    }

    /// Whether the protocol answers each event (so `acked` means something).
    fn answers(&self) -> bool {
        !matches!(self, Target::SyslogTcp(_))
    }
}

/// What one run sent and got back.
#[derive(Debug, Default, Clone, Copy)]
pub struct Outcome {
    pub sent: u64,
    /// Events answered OK / 200 (equal to `sent` for protocols without answers).
    pub acked: u64,
    /// Events answered FAILED or with an error status.
    pub failed: u64,
    /// HTTP batches refused with 503 and resent.
    pub retried: u64,
    pub elapsed: Duration,
}

/// The last stdout line.
#[derive(Debug, serde::Serialize)]
pub struct LoadReport {
    pub to: String,
    pub clients: usize,
    pub event_size: usize,
    pub events: u64,
    pub acked: u64,
    pub failed: u64,
    pub retried: u64,
    pub seconds: f64,
    pub events_per_sec: f64,
    pub mb_per_sec: f64,
}

/// Sends `a.events` to `target` from `a.clients` connections and waits for every answer.
pub fn drive(target: &Target, a: &LoadArgs) -> Result<Outcome, CliError> {
    if a.clients == 0 || a.event_size == 0 || a.in_flight == 0 || a.batch == 0 {
        return Err(CliError::Usage(
            "--clients, --event-size, --in-flight and --batch must be at least 1".into(),
        ));
    }
    let addr = target
        .addr()
        .to_socket_addrs()
        .map_err(|e| CliError::Failed(format!("resolving {}: {e}", target.addr())))?
        .next()
        .ok_or_else(|| CliError::Failed(format!("{} resolves to no address", target.addr())))?;
    let clients = a.clients as u64;
    let start = Instant::now();
    let handles: Vec<_> = (0..clients)
        .map(|c| {
            let n = a.events / clients + u64::from(c < a.events % clients);
            let (target, a) = (target.clone(), a.clone());
            std::thread::spawn(move || -> Result<Outcome, String> {
                let stream = TcpStream::connect(addr).map_err(|e| format!("connecting: {e}"))?;
                stream
                    .set_nodelay(true)
                    .map_err(|e| format!("setting TCP_NODELAY: {e}"))?;
                let body = body(c, a.event_size);
                match &target {
                    Target::Netcat(_) => netcat(stream, n, &body, a.in_flight),
                    Target::SyslogTcp(_) => syslog_tcp(stream, n, &body),
                    Target::Http { addr, path } => {
                        http(stream, addr, path, n, &body, a.batch.min(n.max(1) as usize))
                    }
                }
                .map_err(|e| format!("client {c}: {e}"))
            })
        })
        .collect();
    let mut total = Outcome::default();
    for h in handles {
        let o = h
            .join()
            .map_err(|_| CliError::Failed("a load client panicked".into()))?
            .map_err(|e| CliError::Failed(format!("{}: {e}", target.addr())))?;
        total.sent += o.sent;
        total.acked += o.acked;
        total.failed += o.failed;
        total.retried += o.retried;
    }
    total.elapsed = start.elapsed();
    Ok(total)
}

/// A body of `size` printable bytes, different per client.
fn body(client: u64, size: usize) -> Vec<u8> {
    (0..size)
        .map(|i| b'a' + ((i as u64 + client) % 26) as u8)
        .collect()
}

/// Streams `n` lines keeping at most `in_flight` unanswered; counts the answers.
fn netcat(stream: TcpStream, n: u64, body: &[u8], in_flight: usize) -> std::io::Result<Outcome> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut w = BufWriter::with_capacity(1 << 16, stream);
    let mut line = body.to_vec();
    line.push(b'\n');
    let mut o = Outcome::default();
    let mut answer = Vec::new();
    while o.acked + o.failed < n {
        while o.sent < n && o.sent - (o.acked + o.failed) < in_flight as u64 {
            w.write_all(&line)?;
            o.sent += 1;
        }
        w.flush()?;
        // At least one answer, then whatever else has already arrived.
        loop {
            answer.clear();
            if reader.read_until(b'\n', &mut answer)? == 0 {
                return Err(std::io::Error::other(format!(
                    "the source closed the connection after {} of {n} answers",
                    o.acked + o.failed
                )));
            }
            if answer.starts_with(b"OK") {
                o.acked += 1;
            } else {
                o.failed += 1;
            }
            if reader.buffer().is_empty() {
                break;
            }
        }
    }
    Ok(o)
}

/// Streams `n` RFC 5424 lines and closes the connection.
fn syslog_tcp(stream: TcpStream, n: u64, body: &[u8]) -> std::io::Result<Outcome> {
    let mut w = BufWriter::with_capacity(1 << 16, stream);
    let head = b"<14>1 2026-12-07T10:00:00.000Z bench-host flumen-load - - - ";
    for _ in 0..n {
        w.write_all(head)?;
        w.write_all(body)?;
        w.write_all(b"\n")?;
    }
    w.flush()?;
    let stream = w.into_inner().map_err(|e| e.into_error())?;
    stream.shutdown(std::net::Shutdown::Write)?;
    Ok(Outcome {
        sent: n,
        acked: n,
        ..Outcome::default()
    })
}

/// POSTs `n` events as JSON arrays of `batch` on one keep-alive connection.
fn http(
    stream: TcpStream,
    host: &str,
    path: &str,
    n: u64,
    body: &[u8],
    batch: usize,
) -> std::io::Result<Outcome> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut w = stream;
    let event = format!(
        "{{\"headers\":{{\"bench\":\"load\"}},\"body\":\"{}\"}}",
        String::from_utf8_lossy(body)
    );
    let mut o = Outcome::default();
    let mut line = String::new();
    while o.sent < n {
        let k = (batch as u64).min(n - o.sent);
        let mut json = String::with_capacity(event.len() * k as usize + k as usize + 2);
        json.push('[');
        for i in 0..k {
            if i > 0 {
                json.push(',');
            }
            json.push_str(&event);
        }
        json.push(']');
        loop {
            let head = format!(
                "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json; \
                 charset=UTF-8\r\nContent-Length: {}\r\n\r\n",
                json.len()
            );
            w.write_all(head.as_bytes())?;
            w.write_all(json.as_bytes())?;
            let status = read_response(&mut reader, &mut line)?;
            match status {
                200 => o.acked += k,
                503 => {
                    o.retried += 1;
                    std::thread::sleep(RETRY_PAUSE);
                    continue;
                }
                _ => o.failed += k,
            }
            break;
        }
        o.sent += k;
    }
    Ok(o)
}

/// Reads one HTTP/1.1 response (status line, headers, a Content-Length body) and returns its
/// status code.
fn read_response(reader: &mut BufReader<TcpStream>, line: &mut String) -> std::io::Result<u16> {
    let bad = |what: &str| std::io::Error::other(format!("bad HTTP response: {what}"));
    line.clear();
    if reader.read_line(line)? == 0 {
        return Err(bad("the server closed the connection"));
    }
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad(line.trim_end()))?;
    let mut length = 0u64;
    let mut chunked = false;
    loop {
        line.clear();
        if reader.read_line(line)? == 0 {
            return Err(bad("the server closed the connection inside the headers"));
        }
        let h = line.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                length = v.trim().parse().map_err(|_| bad(h))?;
            } else if k.eq_ignore_ascii_case("transfer-encoding") {
                // Jetty (Flume's HTTPSource) answers with a chunked empty body.
                chunked = v.trim().eq_ignore_ascii_case("chunked");
            }
        }
    }
    if !chunked {
        std::io::copy(&mut reader.take(length), &mut std::io::sink())?;
        return Ok(status);
    }
    loop {
        line.clear();
        if reader.read_line(line)? == 0 {
            return Err(bad(
                "the server closed the connection inside a chunked body",
            ));
        }
        let size = line.trim_end().split(';').next().unwrap_or("");
        let size = u64::from_str_radix(size.trim(), 16).map_err(|_| bad(line.trim_end()))?;
        // The chunk and its CRLF; after the last (empty) chunk, the trailer's empty line.
        std::io::copy(&mut reader.take(size + 2), &mut std::io::sink())?;
        if size == 0 {
            return Ok(status);
        }
    }
}

/// Runs `flumen bench load`.
pub fn run(a: &LoadArgs) -> Result<ExitCode, CliError> {
    let target = Target::parse(&a.to)?;
    if !a.json {
        progress!(
            "sending {} events of {} bytes to {} from {} client(s) ...",
            a.events,
            a.event_size,
            a.to,
            a.clients
        );
    }
    let o = drive(&target, a)?;
    let r = LoadReport {
        to: a.to.clone(),
        clients: a.clients,
        event_size: a.event_size,
        events: o.sent,
        acked: o.acked,
        failed: o.failed,
        retried: o.retried,
        seconds: round3(o.elapsed.as_secs_f64()),
        events_per_sec: round3(per_sec(o.acked as f64, o.elapsed)),
        mb_per_sec: round3(per_sec((o.acked * a.event_size as u64) as f64, o.elapsed) / 1e6),
    };
    let mut out = std::io::stdout().lock();
    if !a.json {
        let what = if target.answers() {
            "acknowledged"
        } else {
            "sent"
        };
        writeln!(
            out,
            "{} events {what} in {:.3} s: {:.0} events/s, {:.1} MB/s ({} failed, {} resent after 503)",
            r.acked, r.seconds, r.events_per_sec, r.mb_per_sec, r.failed, r.retried
        )
        .map_err(CliError::Output)?;
    }
    writeln!(out, "{}", serde_json::to_string(&r)?).map_err(CliError::Output)?;
    Ok(if o.failed == 0 && o.acked == o.sent {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_and_bad_ones_say_what_is_expected() {
        assert_eq!(
            Target::parse("netcat://127.0.0.1:44444").expect("netcat"),
            Target::Netcat("127.0.0.1:44444".into())
        );
        assert_eq!(
            Target::parse("http://localhost:8080/flume").expect("http"),
            Target::Http {
                addr: "localhost:8080".into(),
                path: "/flume".into()
            }
        );
        for bad in ["127.0.0.1:1", "ftp://h:1", "netcat://nohost"] {
            let e = Target::parse(bad).expect_err(bad).to_string();
            assert!(e.contains("expected netcat://HOST:PORT"), "{e}");
        }
    }
}
