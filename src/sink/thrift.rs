//! The `thrift` sink (Flume's ThriftSink): sends each batch to a thrift source (the next tier:
//! a flumen or Flume agent) as one `appendBatch` call of Flume's `ThriftSourceProtocol`,
//! through a blocking [`BlockingClient`] (framed transport, compact or binary protocol).
//!
//! A batch succeeds only when the peer answered OK, so the runner commits the take only for
//! events the next tier has committed to its channels. Anything else (connection refused, a
//! timeout, FAILED, ERROR or UNKNOWN, an exception, a closed connection, garbage) drops the
//! connection and fails the batch; the runner rolls the take back and retries after its
//! backoff, and the next batch connects again. A call that timed out may still have been
//! accepted, so the next tier may see those events twice (at-least-once, as in Flume).
//!
//! Each failure says whether a retry can help ([`classify`]): a peer that is down, slow,
//! closing or answering FAILED is retried with backoff; a handshake the sink refuses, a peer
//! that answers in another protocol, or a call the peer refuses as such is permanent (retried
//! slowly, reported at ERROR once).
//!
//! Counters (Flume's): ConnectionCreatedCount, ConnectionFailedCount, ConnectionClosedCount,
//! as the avro sink counts them.

use std::sync::Arc;
use std::time::Duration;

use super::error::{io_retry, RpcStage};
use super::rpc_conn::{Failed, RpcClient, RpcConnection};
use super::{Retry, Sink, SinkCause, SinkError, SinkSpec, SinkType};
use crate::avro::keys as avro_keys;
use crate::avro::tls::ClientTls;
use crate::config::{ConfigError, Keys, Registered};
use crate::event::Event;
use crate::metrics::ComponentCounters;
use crate::thrift::blocking::{BlockingClient, ThriftRpcError};
use crate::thrift::keys as thrift_keys;
use crate::thrift::Protocol;

/// `thrift` / Flume's ThriftSink.
pub const TYPE: SinkType = Registered {
    alias: "thrift",
    class: Some("org.apache.flume.sink.ThriftSink"),
    parse,
    minimal: &[("hostname", "127.0.0.1"), ("port", "4141")],
};

/// The thrift sink's keys (docs/CONFIG.md, `thrift` sink).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ThriftSinkConfig {
    /// `hostname` (required).
    pub hostname: String,
    /// `port` (required).
    pub port: u16,
    /// `batch-size` (default 100): events per take and per `appendBatch`.
    pub batch_size: usize,
    /// `connect-timeout` (default 20000 ms).
    pub connect_timeout: Duration,
    /// `request-timeout` (default 20000 ms; Flume's client takes the default below 1000).
    pub request_timeout: Duration,
    /// `reset-connection-interval` (default 0 = never): reconnect once the connection is
    /// this many seconds old.
    pub reset_connection_interval: Duration,
    /// `protocol` (default compact).
    pub protocol: Protocol,
    /// `ssl = true`: whom to trust and the protocol and cipher suite lists.
    pub ssl: Option<ClientTls>,
}

impl ThriftSinkConfig {
    /// Sending to `hostname:port` with every other key at its default.
    pub fn new(hostname: &str, port: u16) -> ThriftSinkConfig {
        ThriftSinkConfig {
            hostname: hostname.to_string(),
            port,
            batch_size: 100,
            connect_timeout: Duration::from_millis(20_000),
            request_timeout: Duration::from_millis(20_000),
            reset_connection_interval: Duration::ZERO,
            protocol: Protocol::Compact,
            ssl: None,
        }
    }
}

fn parse(keys: &mut Keys<'_>) -> Result<Box<dyn SinkSpec>, ConfigError> {
    let hostname = keys.required("hostname", "the host of the thrift source to send to")?;
    let port = keys.port(
        "port",
        "the port of the thrift source to send to, e.g. 4141",
        1,
    )?;
    let d = ThriftSinkConfig::new(&hostname.value, port);
    let batch_size = keys.size("batch-size", d.batch_size, 1, "events")?;
    let connect_timeout = keys.millis("connect-timeout", d.connect_timeout, 1)?;
    let mut request_timeout = keys.millis("request-timeout", d.request_timeout, 1)?;
    if request_timeout < Duration::from_secs(1) {
        // Flume's ThriftRpcClient does the same, with a warning.
        let line = keys.has("request-timeout").unwrap_or(0);
        keys.warn(
            line,
            "request-timeout",
            crate::config::WarningKind::IgnoredKey {
                reason: "below 1000 ms: Flume's thrift client uses the default (20000) then, and so does flumen".into(),
            },
        );
        request_timeout = d.request_timeout;
    }
    let reset_connection_interval = keys.secs(
        "reset-connection-interval",
        d.reset_connection_interval,
        0,
        "seconds (0 = never reset)",
    )?;
    let protocol = thrift_keys::protocol(keys)?;
    thrift_keys::kerberos(
        keys,
        &["client-principal", "client-keytab", "server-principal"],
    )?;
    let ssl = if keys.boolean("ssl", false)? {
        Some(avro_keys::client_tls(keys)?)
    } else {
        for key in [
            "trust-all-certs",
            "truststore",
            "truststore-password",
            "truststore-type",
            "verify-hostname",
        ]
        .into_iter()
        .chain(avro_keys::TLS_FILTER_KEYS)
        {
            keys.ignore(key, "only used with `ssl = true`");
        }
        None
    };
    keys.ignore(
        "maxConnections",
        "Flume's ThriftSink uses a pool of one connection whatever this says, as flumen does",
    );
    Ok(Box::new(ThriftSinkConfig {
        batch_size,
        connect_timeout,
        request_timeout,
        reset_connection_interval,
        protocol,
        ssl,
        ..d
    }))
}

impl SinkSpec for ThriftSinkConfig {
    fn batch_size(&self) -> Option<(usize, &'static str)> {
        Some((self.batch_size, "batch-size"))
    }

    fn build(&self, name: &str) -> Result<Box<dyn Sink>, SinkError> {
        // The truststore is read now: a bad one stops start-up.
        let tls = match &self.ssl {
            None => None,
            Some(settings) => Some(
                crate::avro::tls::client_config(settings)
                    .map_err(|e| SinkError::new(name, format!("ssl: {e}")))?,
            ),
        };
        Ok(Box::new(ThriftSink::new(
            name,
            ThriftSinkOptions {
                hostname: self.hostname.clone(),
                port: self.port,
                protocol: self.protocol,
                connect_timeout: self.connect_timeout,
                request_timeout: self.request_timeout,
                reset_connection_interval: (!self.reset_connection_interval.is_zero())
                    .then_some(self.reset_connection_interval),
                tls,
            },
        )))
    }
}

/// What the sink needs from its configuration.
#[derive(Clone, Debug)]
pub struct ThriftSinkOptions {
    pub hostname: String,
    pub port: u16,
    pub protocol: Protocol,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    /// Reconnect once the connection is this old; `None`: never.
    pub reset_connection_interval: Option<Duration>,
    /// `ssl = true`: the TLS configuration (truststore already read); `None`: plain TCP.
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

/// See the module docs.
pub struct ThriftSink {
    name: String,
    opts: ThriftSinkOptions,
    conn: RpcConnection<BlockingClient>,
}

impl ThriftSink {
    /// A sink that connects on its first batch.
    pub fn new(name: &str, opts: ThriftSinkOptions) -> ThriftSink {
        ThriftSink {
            name: name.to_string(),
            conn: RpcConnection::new(name, opts.reset_connection_interval),
            opts,
        }
    }
}

impl Sink for ThriftSink {
    fn attach_counters(&mut self, counters: Arc<ComponentCounters>) {
        self.conn.attach_counters(counters);
    }

    fn process(&mut self, events: &[Event]) -> Result<(), SinkError> {
        let opts = &self.opts;
        let connect = || {
            BlockingClient::connect(
                &opts.hostname,
                opts.port,
                opts.protocol,
                opts.connect_timeout,
                opts.request_timeout,
                opts.tls.as_ref(),
            )
        };
        self.conn
            .append_batch(events, connect)
            .map_err(|f| match f {
                Failed::Connect(e) => rpc_error(&self.name, RpcStage::Connect, e),
                Failed::Call(e) => rpc_error(&self.name, RpcStage::Call, e),
            })
    }

    fn stop(&mut self) -> Result<(), SinkError> {
        self.conn.close();
        Ok(())
    }
}

fn rpc_error(sink: &str, stage: RpcStage, source: ThriftRpcError) -> SinkError {
    SinkError::with_retry(
        sink,
        classify(stage, &source),
        SinkCause::Thrift { stage, source },
    )
}

/// Whether retrying after the RPC error `e` (while `stage`) can help without anyone acting.
pub fn classify(stage: RpcStage, e: &ThriftRpcError) -> Retry {
    match e {
        // The peer is down, restarting, slow or closed the connection (a name that does not
        // resolve too: DNS records come and go, and the message names the host).
        ThriftRpcError::Resolve { .. }
        | ThriftRpcError::ConnectTimeout { .. }
        | ThriftRpcError::Timeout { .. }
        | ThriftRpcError::Closed { .. } => Retry::Retryable,
        ThriftRpcError::Connect { source, .. } | ThriftRpcError::Io { source, .. } => {
            io_retry(source)
        }
        // FAILED: the next tier's channel is full or failing; it drains. ERROR and UNKNOWN,
        // which Flume's source never sends, are treated alike.
        ThriftRpcError::Refused { .. } => Retry::Retryable,
        // A handshake refused while connecting does not change by itself (a certificate, a
        // setting); mid-call a TLS error is a broken session, and a new one may do.
        ThriftRpcError::Tls { .. } => match stage {
            RpcStage::Connect => Retry::Permanent,
            RpcStage::Call => Retry::Retryable,
        },
        // The peer refused the call as such, or answers in another protocol: resending the
        // same batch to the same peer gets the same answer.
        ThriftRpcError::Exception { .. } | ThriftRpcError::Protocol { .. } => Retry::Permanent,
    }
}

/// The sink's connection keeping ([`RpcConnection`]) over this client.
impl RpcClient for BlockingClient {
    type Error = ThriftRpcError;
    fn append_batch(&mut self, events: &[Event], what: &str) -> Result<(), ThriftRpcError> {
        BlockingClient::append_batch(self, events, what)
    }
    fn close(self) {
        BlockingClient::close(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{ComponentType, Counter};

    fn opts(port: u16) -> ThriftSinkOptions {
        ThriftSinkOptions {
            hostname: "127.0.0.1".into(),
            port,
            protocol: Protocol::Compact,
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(2),
            reset_connection_interval: None,
            tls: None,
        }
    }

    fn parse_sink(pairs: &[(&str, &str)]) -> (Result<ThriftSinkConfig, String>, Vec<String>) {
        let mut keys = Keys::from_pairs("sinks", "k1", pairs);
        let parsed = parse(&mut keys).map_err(|e| e.to_string()).map(|spec| {
            spec.as_any()
                .downcast_ref::<ThriftSinkConfig>()
                .expect("a thrift sink spec")
                .clone()
        });
        let mut warnings = Vec::new();
        keys.finish(&mut warnings);
        (parsed, warnings.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn flumes_keys_and_defaults() {
        let base = [("hostname", "h"), ("port", "4141")];
        let (cfg, warnings) = parse_sink(&base);
        assert_eq!(cfg, Ok(ThriftSinkConfig::new("h", 4141)));
        assert!(warnings.is_empty(), "{warnings:?}");

        let (cfg, _) = parse_sink(&[
            ("hostname", "h"),
            ("port", "4141"),
            ("protocol", "BINARY"),
            ("batch-size", "7"),
            ("request-timeout", "500"),
            ("maxConnections", "5"),
        ]);
        let cfg = cfg.expect("valid");
        assert_eq!(cfg.protocol, Protocol::Binary);
        assert_eq!(cfg.batch_size, 7);
        // Below a second: Flume's client takes its default, and so do we (with a warning).
        assert_eq!(cfg.request_timeout, Duration::from_millis(20_000));

        let (cfg, _) = parse_sink(&[("hostname", "h"), ("port", "4141"), ("protocol", "json")]);
        let e = cfg.expect_err("json is no Thrift protocol");
        assert!(
            e.contains("protocol") && e.contains("compact or binary"),
            "{e}"
        );

        let (cfg, _) = parse_sink(&[("hostname", "h"), ("port", "4141"), ("kerberos", "true")]);
        let e = cfg.expect_err("kerberos is refused");
        assert!(e.contains("kerberos") && e.contains("ssl = true"), "{e}");
    }

    #[test]
    fn no_listener_fails_the_batch_naming_the_peer_and_counts() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("bind")
            .local_addr()
            .expect("addr")
            .port();
        let mut sink = ThriftSink::new("k1", opts(port));
        let counters = ComponentCounters::detached("k1", ComponentType::Sink);
        sink.attach_counters(Arc::clone(&counters));
        let e = sink
            .process(&[Event::new(b"x".to_vec())])
            .expect_err("nobody listens");
        let msg = e.to_string();
        assert!(msg.contains(&format!("127.0.0.1:{port}")), "{msg}");
        assert!(e.is_retryable(), "{msg}");
        assert_eq!(counters.get(Counter::ConnectionFailedCount), 1);
    }

    #[test]
    fn a_failed_answer_fails_the_batch_retryably_and_ok_succeeds() {
        use crate::thrift::{decode_call, encode_reply, FrameDecoder, Request, Status};
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        // Answers FAILED, then OK, to the calls of each connection.
        let server = std::thread::spawn(move || {
            for status in [Status::Failed, Status::Ok] {
                let (mut s, _) = listener.accept().expect("accept");
                let mut dec = FrameDecoder::new(1 << 20);
                let mut buf = bytes::BytesMut::new();
                let mut chunk = [0u8; 4096];
                let msg = loop {
                    if let Some(m) = dec.decode(&mut buf).expect("frame") {
                        break m;
                    }
                    let n = s.read(&mut chunk).expect("read");
                    assert!(n > 0, "the sink closed first");
                    buf.extend_from_slice(&chunk[..n]);
                };
                let Ok(Request::Call(c)) = decode_call(Protocol::Compact, msg) else {
                    panic!("a call");
                };
                assert_eq!(c.events.len(), 2);
                s.write_all(&encode_reply(Protocol::Compact, c.method, c.seqid, status))
                    .expect("reply");
                // Wait for the sink to close (after FAILED) before the next accept.
                let _ = s.read(&mut chunk);
            }
        });
        let mut sink = ThriftSink::new("k1", opts(port));
        let batch = [Event::new(b"a".to_vec()), Event::new(b"b".to_vec())];
        let e = sink.process(&batch).expect_err("FAILED");
        assert!(e.to_string().contains("FAILED"), "{e}");
        assert!(e.is_retryable(), "{e}");
        sink.process(&batch).expect("OK");
        sink.stop().expect("stop");
        server.join().expect("server");
    }
}
