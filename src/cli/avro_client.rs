//! `flumen avro-client`: Flume's `flume-ng avro-client`. Sends the lines of a file (or of
//! stdin) as events to an avro source over Flume's Avro RPC, in `appendBatch` calls.
//!
//! Like Flume's `AvroCLIClient`: one event per line (the line terminator, `\n` or `\r\n`, is
//! not part of the body; empty lines are sent as empty events), the same headers on every
//! event, batches of 5 unless `--batch-size` says otherwise, one call at a time (the next
//! batch is sent only after the previous one was answered OK). Unlike Flume's, a refusal is
//! not only logged: the command stops at the first batch the peer does not accept (status
//! FAILED or UNKNOWN, an error response, a closed connection, a timeout) and exits non-zero
//! naming `host:port` and the reason. Events of earlier batches were delivered; the refused
//! batch may or may not have been (an UNKNOWN or a timeout says nothing either way).
//!
//! Blocking I/O over one `std::net::TcpStream`; the protocol itself is the sans-I/O
//! [`ClientConn`].

use std::fs::File;
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Args;

use super::CliError;
use crate::avro::{ClientConn, ClientItem, Status};
use crate::event::{Event, Headers};

/// Flume's `AvroCLIClient` batch size.
const DEFAULT_BATCH_SIZE: u32 = 5;

/// Options of `flumen avro-client` (Flume's `flume-ng avro-client -H HOST -p PORT [-F FILE]`).
#[derive(Debug, Args)]
pub struct AvroClientArgs {
    /// Host of the avro source.
    #[arg(short = 'H', long, value_name = "HOST")]
    pub host: String,
    /// Port of the avro source.
    #[arg(short = 'p', long, value_name = "PORT")]
    pub port: u16,
    /// The file whose lines to send; stdin without it.
    #[arg(
        short = 'F',
        long = "file",
        visible_alias = "filename",
        value_name = "FILE"
    )]
    pub file: Option<PathBuf>,
    /// A header set on every event (repeatable).
    #[arg(long = "header", value_name = "KEY=VALUE", value_parser = parse_header,
          action = clap::ArgAction::Append)]
    pub headers: Vec<(String, String)>,
    /// Events per `appendBatch` call.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_BATCH_SIZE,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub batch_size: u32,
    /// Seconds to wait for the TCP connection (Flume's client: 20).
    #[arg(long, value_name = "SECONDS", default_value = "20", value_parser = parse_seconds)]
    pub connect_timeout: Duration,
    /// Seconds to wait for the answer to one call (Flume's client: 20).
    #[arg(long, value_name = "SECONDS", default_value = "20", value_parser = parse_seconds)]
    pub request_timeout: Duration,
}

/// `KEY=VALUE` with a non-empty key; the value may be empty and may contain `=`.
fn parse_header(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!(
            "{s:?}: expected KEY=VALUE, e.g. --header host=web1"
        )),
    }
}

/// A positive number of seconds, fractions allowed (`0.5`).
fn parse_seconds(s: &str) -> Result<Duration, String> {
    let secs: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?}: expected a number of seconds"))?;
    if secs.is_nan() || secs <= 0.0 {
        return Err(format!("{s:?}: must be more than 0 seconds"));
    }
    Duration::try_from_secs_f64(secs).map_err(|e| format!("{s:?}: {e}"))
}

/// Runs `flumen avro-client`.
pub fn run(args: &AvroClientArgs) -> Result<ExitCode, CliError> {
    let peer = format!("{}:{}", args.host, args.port);
    let mut input: Box<dyn BufRead> = match &args.file {
        Some(path) => Box::new(BufReader::new(
            File::open(path).map_err(|e| CliError::io("opening", path, e))?,
        )),
        None => Box::new(std::io::stdin().lock()),
    };
    let input_name = args
        .file
        .clone()
        .unwrap_or_else(|| PathBuf::from("<stdin>"));
    let headers: Headers = args.headers.iter().cloned().collect();
    let mut client = Client::connect(&args.host, args.port, args, &peer)?;

    let batch_size = args.batch_size as usize;
    let mut batch = Vec::with_capacity(batch_size);
    let mut line = Vec::new();
    let (mut sent, mut bytes, mut calls) = (0u64, 0u64, 0u64);
    loop {
        line.clear();
        let n = input
            .read_until(b'\n', &mut line)
            .map_err(|e| CliError::io("reading", &input_name, e))?;
        if n > 0 {
            strip_terminator(&mut line);
            bytes += line.len() as u64;
            batch.push(Event::with_headers(headers.clone(), line.clone()));
        }
        if batch.len() == batch_size || (n == 0 && !batch.is_empty()) {
            client.append_batch(&batch, sent)?;
            sent += batch.len() as u64;
            calls += 1;
            batch.clear();
        }
        if n == 0 {
            break;
        }
    }
    eprintln!("avro-client: sent {sent} events ({bytes} body bytes) in {calls} appendBatch calls to {peer}");
    Ok(ExitCode::SUCCESS)
}

/// Drops a trailing `\n` or `\r\n`.
fn strip_terminator(line: &mut Vec<u8>) {
    if line.last() == Some(&b'\n') {
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
    }
}

/// One blocking connection to the avro source.
struct Client {
    stream: TcpStream,
    conn: ClientConn,
    peer: String,
    request_timeout: Duration,
    items: Vec<ClientItem>,
    buf: Vec<u8>,
}

impl Client {
    fn connect(
        host: &str,
        port: u16,
        args: &AvroClientArgs,
        peer: &str,
    ) -> Result<Client, CliError> {
        let addrs: Vec<SocketAddr> = (host, port)
            .to_socket_addrs()
            .map_err(|e| CliError::Failed(format!("resolving {peer}: {e}")))?
            .collect();
        let mut last = None;
        for addr in &addrs {
            match TcpStream::connect_timeout(addr, args.connect_timeout) {
                Ok(stream) => {
                    stream.set_nodelay(true).map_err(|e| fail(peer, e))?;
                    stream
                        .set_write_timeout(Some(args.request_timeout))
                        .map_err(|e| fail(peer, e))?;
                    return Ok(Client {
                        stream,
                        conn: ClientConn::default(),
                        peer: peer.to_string(),
                        request_timeout: args.request_timeout,
                        items: Vec::new(),
                        buf: vec![0; 64 * 1024],
                    });
                }
                Err(e) => last = Some((addr, e)),
            }
        }
        let Some((addr, e)) = last else {
            return Err(CliError::Failed(format!("resolving {peer}: no addresses")));
        };
        // The resolved address only when it says more than `peer` does.
        let via = if addr.to_string() == peer {
            String::new()
        } else {
            format!(" ({addr})")
        };
        Err(if e.kind() == ErrorKind::TimedOut {
            CliError::Failed(format!(
                "connecting to {peer}{via}: no answer within {:?} (--connect-timeout)",
                args.connect_timeout
            ))
        } else {
            CliError::Failed(format!("connecting to {peer}{via}: {e}"))
        })
    }

    /// Sends one `appendBatch` and waits for its answer; anything but OK is an error.
    /// `before` is how many events earlier calls delivered (for the message).
    fn append_batch(&mut self, events: &[Event], before: u64) -> Result<(), CliError> {
        let what = format!(
            "appendBatch of events {}..={} ({before} events delivered before)",
            before + 1,
            before + events.len() as u64
        );
        let (mut serial, frame) = self
            .conn
            .append_batch(events)
            .map_err(|e| CliError::Failed(format!("{}: {what}: {e}", self.peer)))?;
        self.write(&frame, &what)?;
        let deadline = Instant::now() + self.request_timeout;
        loop {
            for item in std::mem::take(&mut self.items) {
                match item {
                    ClientItem::Resent {
                        replaces,
                        serial: new,
                        frame,
                    } if replaces == serial => {
                        serial = new;
                        self.write(&frame, &what)?;
                    }
                    ClientItem::Response { serial: s, result } if s == serial => {
                        return match result {
                            Ok(Status::Ok) => Ok(()),
                            Ok(status) => Err(CliError::Failed(format!(
                                "{}: the avro source answered {} to {what}",
                                self.peer,
                                status_name(status)
                            ))),
                            Err(msg) => Err(CliError::Failed(format!(
                                "{}: the avro source answered an error to {what}: {msg}",
                                self.peer
                            ))),
                        };
                    }
                    other => {
                        return Err(CliError::Failed(format!(
                        "{}: unexpected answer while waiting for call {serial} ({what}): {other:?}",
                        self.peer
                    )))
                    }
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(self.timed_out(&what));
            }
            self.stream
                .set_read_timeout(Some(left))
                .map_err(|e| fail(&self.peer, e))?;
            let n = match self.stream.read(&mut self.buf) {
                Ok(0) => {
                    return Err(CliError::Failed(format!(
                        "{}: the avro source closed the connection before answering {what}",
                        self.peer
                    )))
                }
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Err(self.timed_out(&what))
                }
                Err(e) => {
                    return Err(CliError::Failed(format!(
                        "{}: reading the answer to {what}: {e}",
                        self.peer
                    )))
                }
            };
            let mut items = std::mem::take(&mut self.items);
            let fed = self.conn.feed(&self.buf[..n], &mut items);
            self.items = items;
            fed.map_err(|e| {
                CliError::Failed(format!(
                    "{}: bad answer to {what} (is it an avro source?): {e}",
                    self.peer
                ))
            })?;
        }
    }

    fn write(&mut self, frame: &[u8], what: &str) -> Result<(), CliError> {
        self.stream.write_all(frame).map_err(|e| {
            if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) {
                self.timed_out(what)
            } else {
                CliError::Failed(format!("{}: sending {what}: {e}", self.peer))
            }
        })
    }

    fn timed_out(&self, what: &str) -> CliError {
        CliError::Failed(format!(
            "{}: no answer to {what} within {:?} (--request-timeout)",
            self.peer, self.request_timeout
        ))
    }
}

fn status_name(s: Status) -> &'static str {
    match s {
        Status::Ok => "OK",
        Status::Failed => "FAILED",
        Status::Unknown => "UNKNOWN",
    }
}

fn fail(peer: &str, e: std::io::Error) -> CliError {
    CliError::Failed(format!("{peer}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_flume() {
        use crate::cli::{Cli, Command};
        use clap::Parser;
        let cli = Cli::try_parse_from(["flumen", "avro-client", "-H", "h", "-p", "41414"])
            .expect("parses");
        let Command::AvroClient(a) = cli.command else {
            panic!("expected avro-client");
        };
        assert_eq!((a.host.as_str(), a.port), ("h", 41414));
        assert_eq!(a.batch_size, 5);
        assert_eq!(a.connect_timeout, Duration::from_secs(20));
        assert_eq!(a.request_timeout, Duration::from_secs(20));
        assert!(a.file.is_none() && a.headers.is_empty());
        for bad in [&["--batch-size", "0"][..], &["--header", "x"][..]] {
            let mut args = vec!["flumen", "avro-client", "-H", "h", "-p", "1"];
            args.extend_from_slice(bad);
            assert!(Cli::try_parse_from(args).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn headers_parse() {
        assert_eq!(parse_header("k=v=w"), Ok(("k".into(), "v=w".into())));
        assert_eq!(parse_header("k="), Ok(("k".into(), String::new())));
        assert!(parse_header("=v").is_err());
        assert!(parse_header("kv").is_err());
    }

    #[test]
    fn seconds_parse() {
        assert_eq!(parse_seconds("0.5"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_seconds("20"), Ok(Duration::from_secs(20)));
        for bad in ["0", "-1", "x", "NaN", "inf"] {
            assert!(parse_seconds(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn terminators_are_stripped() {
        for (inp, out) in [
            (&b"a\n"[..], &b"a"[..]),
            (b"a\r\n", b"a"),
            (b"a", b"a"),
            (b"\n", b""),
            (b"a\r", b"a\r"),
        ] {
            let mut v = inp.to_vec();
            strip_terminator(&mut v);
            assert_eq!(v, out);
        }
    }
}
