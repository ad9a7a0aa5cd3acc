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
//! Blocking I/O over one `std::net::TcpStream` ([`BlockingClient`], shared with the `avro`
//! sink); the protocol itself is the sans-I/O [`crate::avro::ClientConn`]. `--ssl` (ours: Flume's
//! avro-client has no TLS) connects with TLS as the avro sink's `ssl = true` does, trusting
//! `--truststore`, or any certificate with `--trust-all-certs`, else the system's CA roots.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use super::CliError;
use crate::avro::blocking::{BlockingClient, Timeouts};
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
    /// Connect with TLS (the avro source has `ssl = true`).
    #[arg(long)]
    pub ssl: bool,
    /// With --ssl: trust the certificates in this PKCS#12 or PEM file (as the avro sink's
    /// `truststore`) instead of the system's CA roots.
    #[arg(long, value_name = "FILE", requires = "ssl")]
    pub truststore: Option<PathBuf>,
    /// The truststore's password.
    #[arg(long, value_name = "PASSWORD", requires = "truststore")]
    pub truststore_password: Option<String>,
    /// With --ssl: accept any certificate (as the avro sink's `trust-all-certs = true`).
    #[arg(long, requires = "ssl", conflicts_with = "truststore")]
    pub trust_all_certs: bool,
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
    let timeouts = Timeouts {
        connect: args.connect_timeout,
        request: args.request_timeout,
        connect_name: "--connect-timeout",
        request_name: "--request-timeout",
    };
    let tls = if args.ssl {
        use crate::avro::tls::{client_config, ClientTls, Filters, Secret, Store, Trust};
        let trust = match (&args.truststore, args.trust_all_certs) {
            (_, true) => Trust::All,
            (Some(path), false) => Trust::Store(Store {
                path: path.clone(),
                password: args.truststore_password.clone().map(Secret),
                store_type: None,
            }),
            (None, false) => Trust::System,
        };
        let settings = ClientTls {
            trust,
            verify_hostname: None,
            filters: Filters::default(),
        };
        // The messages name the sink's keys; here they are options of the same names.
        Some(client_config(&settings).map_err(|e| CliError::Usage(format!("--ssl: {e}")))?)
    } else {
        None
    };
    let mut client =
        BlockingClient::connect_tls(&args.host, args.port, &timeouts, None, tls.as_ref())
            .map_err(|e| CliError::Failed(e.to_string()))?;

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
            let what = format!(
                "appendBatch of events {}..={} ({sent} events delivered before)",
                sent + 1,
                sent + batch.len() as u64
            );
            client
                .append_batch(&batch, &what)
                .map_err(|e| CliError::Failed(e.to_string()))?;
            sent += batch.len() as u64;
            calls += 1;
            batch.clear();
        }
        if n == 0 {
            break;
        }
    }
    // Not eprintln!: a failure to write this summary must not turn success into a panic.
    let _ = writeln!(
        std::io::stderr(),
        "avro-client: sent {sent} events ({bytes} body bytes) in {calls} appendBatch calls to {peer}"
    );
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
        assert!(!a.ssl && a.truststore.is_none() && !a.trust_all_certs);
        for bad in [
            &["--truststore", "t.p12"][..],
            &["--trust-all-certs"][..],
            &["--ssl", "--trust-all-certs", "--truststore", "t.p12"][..],
        ] {
            let mut args = vec!["flumen", "avro-client", "-H", "h", "-p", "1"];
            args.extend_from_slice(bad);
            assert!(Cli::try_parse_from(args).is_err(), "{bad:?}");
        }
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
