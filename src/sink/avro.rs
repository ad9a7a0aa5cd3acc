//! The `avro` sink (Flume's AvroSink): sends each batch to an avro source (the next tier) as
//! one `appendBatch` call over Flume's Avro RPC, through a blocking [`BlockingClient`].
//!
//! A batch succeeds only when the peer answered OK, so the runner commits the take only for
//! events the next tier has committed to its channels. Anything else (connection refused, a
//! timeout, FAILED or UNKNOWN, a closed connection, garbage) drops the connection and fails
//! the batch; the runner rolls the take back and retries after its backoff, and the next batch
//! connects again. A call that timed out may still have been accepted, so the next tier may
//! see those events twice (at-least-once, as in Flume).
//!
//! Each failure says whether a retry can help (see [`classify`]): a peer that is down, slow,
//! closing or answering FAILED (its channel is full) is retried with backoff; a handshake the
//! sink refuses (an untrusted or expired certificate, a name mismatch), a peer that does not
//! speak the protocol or the same `compression-type`, or a request the peer rejects as such
//! is permanent: the runner retries it slowly, and it is reported at ERROR once.
//!
//! Counters (Flume's): ConnectionCreatedCount for each connection made, ConnectionFailedCount
//! for each connection attempt that failed, ConnectionClosedCount for each connection closed
//! (after a failure, by `reset-connection-interval`, or at `stop`).
//!
//! `compression-type = deflate` compresses both directions of each connection (see
//! [`crate::avro::zlib`]); the source must be set alike. `ssl = true` makes each connection
//! TLS (inside deflate, as Flume 1.11), with the handshake done when connecting: a certificate
//! the sink does not trust fails the connection (ConnectionFailedCount) with a message saying
//! what to set, and the events stay in the channel.

use std::sync::Arc;
use std::time::Duration;

use super::error::{io_retry, RpcStage};
use super::rpc_conn::{Failed, RpcClient, RpcConnection};
use super::{Retry, Sink, SinkCause, SinkError, SinkSpec, SinkType};
use crate::avro::blocking::{BlockingClient, RpcError, Timeouts};
use crate::avro::keys as avro_keys;
use crate::avro::tls::ClientTls;
use crate::config::{ConfigError, Keys, Registered};
use crate::event::Event;
use crate::metrics::ComponentCounters;

/// `avro` / Flume's AvroSink.
pub const TYPE: SinkType = Registered {
    alias: "avro",
    class: Some("org.apache.flume.sink.AvroSink"),
    parse,
    minimal: &[("hostname", "127.0.0.1"), ("port", "41414")],
};

/// The avro sink's keys (docs/CONFIG.md, `avro` sink).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AvroSinkConfig {
    /// `hostname` (required).
    pub hostname: String,
    /// `port` (required).
    pub port: u16,
    /// `batch-size` (default 100): events per take and per `appendBatch`.
    pub batch_size: usize,
    /// `connect-timeout` (default 20000 ms).
    pub connect_timeout: Duration,
    /// `request-timeout` (default 20000 ms).
    pub request_timeout: Duration,
    /// `reset-connection-interval` (default 0 = never): reconnect once the connection is
    /// this many seconds old.
    pub reset_connection_interval: Duration,
    /// `compression-type = deflate`: the `compression-level` (0-9, default 6); `None` for
    /// `compression-type = none` (the default).
    pub deflate: Option<u32>,
    /// `ssl = true`: whom to trust (`trust-all-certs`, `truststore`, else the system's CA
    /// roots) and the protocol and cipher suite lists; `None` for `ssl = false`.
    pub ssl: Option<ClientTls>,
}

impl AvroSinkConfig {
    /// Sending to `hostname:port` with every other key at its default.
    pub fn new(hostname: &str, port: u16) -> AvroSinkConfig {
        AvroSinkConfig {
            hostname: hostname.to_string(),
            port,
            batch_size: 100,
            connect_timeout: Duration::from_millis(20_000),
            request_timeout: Duration::from_millis(20_000),
            reset_connection_interval: Duration::ZERO,
            deflate: None,
            ssl: None,
        }
    }
}

fn parse(keys: &mut Keys<'_>) -> Result<Box<dyn SinkSpec>, ConfigError> {
    let hostname = keys.required("hostname", "the host of the avro source to send to")?;
    let port = keys.port(
        "port",
        "the port of the avro source to send to, e.g. 41414",
        1,
    )?;
    let d = AvroSinkConfig::new(&hostname.value, port);
    let batch_size = keys.size("batch-size", d.batch_size, 1, "events")?;
    let connect_timeout = keys.millis("connect-timeout", d.connect_timeout, 1)?;
    let request_timeout = keys.millis("request-timeout", d.request_timeout, 1)?;
    let reset_connection_interval = keys.secs(
        "reset-connection-interval",
        d.reset_connection_interval,
        0,
        "seconds (0 = never reset)",
    )?;
    let deflate = avro_keys::compression(keys, "the avro sink compression-type")?;
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
        "maxIoWorkers",
        "flumen's avro sink uses one blocking connection",
    );
    Ok(Box::new(AvroSinkConfig {
        batch_size,
        connect_timeout,
        request_timeout,
        reset_connection_interval,
        deflate,
        ssl,
        ..d
    }))
}

impl SinkSpec for AvroSinkConfig {
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
        Ok(Box::new(AvroSink::new(
            name,
            AvroSinkOptions {
                hostname: self.hostname.clone(),
                port: self.port,
                connect_timeout: self.connect_timeout,
                request_timeout: self.request_timeout,
                reset_connection_interval: (!self.reset_connection_interval.is_zero())
                    .then_some(self.reset_connection_interval),
                deflate: self.deflate,
                tls,
            },
        )))
    }
}

/// What the sink needs from its configuration.
#[derive(Clone, Debug)]
pub struct AvroSinkOptions {
    pub hostname: String,
    pub port: u16,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    /// Reconnect once the connection is this old; `None`: never.
    pub reset_connection_interval: Option<Duration>,
    /// `compression-type = deflate` at this `compression-level`; `None`: no compression.
    pub deflate: Option<u32>,
    /// `ssl = true`: the TLS configuration (truststore already read); `None`: plain TCP.
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

/// See the module docs.
pub struct AvroSink {
    name: String,
    opts: AvroSinkOptions,
    timeouts: Timeouts,
    conn: RpcConnection<BlockingClient>,
}

impl AvroSink {
    /// A sink that connects on its first batch.
    pub fn new(name: &str, opts: AvroSinkOptions) -> AvroSink {
        let timeouts = Timeouts {
            connect: opts.connect_timeout,
            request: opts.request_timeout,
            connect_name: "connect-timeout",
            request_name: "request-timeout",
        };
        AvroSink {
            name: name.to_string(),
            timeouts,
            conn: RpcConnection::new(name, opts.reset_connection_interval),
            opts,
        }
    }
}

impl Sink for AvroSink {
    fn attach_counters(&mut self, counters: Arc<ComponentCounters>) {
        self.conn.attach_counters(counters);
    }

    fn process(&mut self, events: &[Event]) -> Result<(), SinkError> {
        let opts = &self.opts;
        let connect = || {
            BlockingClient::connect_tls(
                &opts.hostname,
                opts.port,
                &self.timeouts,
                opts.deflate,
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

fn rpc_error(sink: &str, stage: RpcStage, source: RpcError) -> SinkError {
    SinkError::with_retry(
        sink,
        classify(stage, &source),
        SinkCause::Rpc { stage, source },
    )
}

/// Whether retrying after the RPC error `e` (while `stage`) can help without anyone acting.
pub fn classify(stage: RpcStage, e: &RpcError) -> Retry {
    match e {
        // The peer is down, restarting, slow or closed the connection: it comes back, and
        // every retry connects afresh. A name that does not resolve is retried too: DNS
        // records come and go (a peer being deployed, a resolver outage), and the message
        // names the host, so a misspelt one is plain to see.
        RpcError::Resolve { .. }
        | RpcError::ConnectTimeout { .. }
        | RpcError::Timeout { .. }
        | RpcError::Closed { .. } => Retry::Retryable,
        // By the socket error: refused, reset, unreachable -> retryable; a local firewall
        // refusing the connection (EACCES, EPERM) -> permanent.
        RpcError::Connect { source, .. } | RpcError::Io { source, .. } => io_retry(source),
        // FAILED: the next tier's channel is full or failing; it drains. (UNKNOWN, which
        // Flume's source never sends, is treated alike.)
        RpcError::Refused { .. } => Retry::Retryable,
        // The handshake failed: a certificate the sink does not trust, has expired or does not
        // name the host, a TLS version or cipher the two sides do not share, or a peer that
        // does not speak TLS. None of these changes by itself: the source's certificate must
        // be renewed or the sink's truststore or settings changed (and the truststore is read
        // at start-up, so that needs a restart). Retried slowly, a renewed certificate on the
        // peer is picked up without one. Mid-call, a TLS error is a broken session instead,
        // and a new connection starts a new one.
        RpcError::Tls { .. } => match stage {
            RpcStage::Connect => Retry::Permanent,
            RpcStage::Call => Retry::Retryable,
        },
        // The peer rejected the request itself (an Avro error, not FAILED), answered what is
        // not an answer, answers another call, or compresses differently: it is not an avro
        // source set like this sink, or the batch is one it refuses; resending the same batch
        // to the same peer gets the same answer.
        RpcError::ErrorResponse { .. }
        | RpcError::Protocol { .. }
        | RpcError::Zlib { .. }
        | RpcError::Unexpected { .. } => Retry::Permanent,
    }
}

/// The sink's connection keeping ([`RpcConnection`]) over this client.
impl RpcClient for BlockingClient {
    type Error = RpcError;
    fn append_batch(&mut self, events: &[Event], what: &str) -> Result<(), RpcError> {
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

    fn opts(port: u16) -> AvroSinkOptions {
        AvroSinkOptions {
            hostname: "127.0.0.1".into(),
            port,
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(2),
            reset_connection_interval: None,
            deflate: None,
            tls: None,
        }
    }

    #[test]
    fn no_listener_fails_the_batch_naming_the_peer_and_counts() {
        // A port nobody listens on: bind, read the port, drop the listener.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("bind")
            .local_addr()
            .expect("addr")
            .port();
        let mut sink = AvroSink::new("k1", opts(port));
        let counters = ComponentCounters::detached("k1", ComponentType::Sink);
        sink.attach_counters(Arc::clone(&counters));
        let e = sink
            .process(&[Event::new(b"x".to_vec())])
            .expect_err("nobody listens");
        let msg = e.to_string();
        assert!(msg.contains(&format!("127.0.0.1:{port}")), "{msg}");
        assert!(msg.starts_with("sink `k1`"), "{msg}");
        // The peer may be restarting: retried with backoff.
        assert!(e.is_retryable(), "{msg}");
        assert_eq!(counters.get(Counter::ConnectionFailedCount), 1);
        assert_eq!(counters.get(Counter::ConnectionCreatedCount), 0);
        sink.stop().expect("stop");
        assert_eq!(counters.get(Counter::ConnectionClosedCount), 0);
    }

    #[test]
    fn a_peer_that_closes_fails_the_batch_and_the_connection_is_closed() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let server = std::thread::spawn(move || {
            // Accept twice, closing each connection without answering.
            for _ in 0..2 {
                let (s, _) = listener.accept().expect("accept");
                drop(s);
            }
        });
        let mut sink = AvroSink::new("k1", opts(port));
        let counters = ComponentCounters::detached("k1", ComponentType::Sink);
        sink.attach_counters(Arc::clone(&counters));
        for round in 1..=2 {
            let e = sink
                .process(&[Event::new(b"x".to_vec())])
                .expect_err("the peer closes");
            assert!(e.to_string().contains(&format!("127.0.0.1:{port}")), "{e}");
            assert!(e.is_retryable(), "{e}");
            assert_eq!(counters.get(Counter::ConnectionCreatedCount), round);
            assert_eq!(counters.get(Counter::ConnectionClosedCount), round);
        }
        server.join().expect("server thread");
    }

    #[test]
    fn rpc_errors_are_classified_by_what_a_retry_can_change() {
        use std::io::ErrorKind;
        let peer = || "h:4141".to_string();
        let what = || "appendBatch of 1 events".to_string();
        let os = |errno: rustix::io::Errno| std::io::Error::from_raw_os_error(errno.raw_os_error());
        let tls = || RpcError::Tls {
            peer: peer(),
            detail: "the certificate of h:4141 is not trusted".into(),
        };
        let cases = [
            (
                RpcStage::Connect,
                RpcError::Resolve {
                    peer: peer(),
                    detail: "no such host".into(),
                },
                Retry::Retryable,
            ),
            (
                RpcStage::Connect,
                RpcError::ConnectTimeout {
                    peer: peer(),
                    via: String::new(),
                    timeout: Duration::from_secs(2),
                    name: "connect-timeout",
                },
                Retry::Retryable,
            ),
            (
                RpcStage::Connect,
                RpcError::Connect {
                    peer: peer(),
                    via: String::new(),
                    source: os(rustix::io::Errno::CONNREFUSED),
                },
                Retry::Retryable,
            ),
            (
                RpcStage::Connect,
                RpcError::Connect {
                    peer: peer(),
                    via: String::new(),
                    source: os(rustix::io::Errno::ACCESS),
                },
                Retry::Permanent,
            ),
            (
                RpcStage::Call,
                RpcError::Refused {
                    peer: peer(),
                    status: "FAILED",
                    what: what(),
                },
                Retry::Retryable,
            ),
            (
                RpcStage::Call,
                RpcError::Timeout {
                    peer: peer(),
                    what: what(),
                    timeout: Duration::from_secs(20),
                    name: "request-timeout",
                },
                Retry::Retryable,
            ),
            (
                RpcStage::Call,
                RpcError::Closed {
                    peer: peer(),
                    what: what(),
                },
                Retry::Retryable,
            ),
            (
                RpcStage::Call,
                RpcError::Io {
                    peer: peer(),
                    context: "sending".into(),
                    source: ErrorKind::BrokenPipe.into(),
                },
                Retry::Retryable,
            ),
            (RpcStage::Connect, tls(), Retry::Permanent),
            (RpcStage::Call, tls(), Retry::Retryable),
            (
                RpcStage::Call,
                RpcError::ErrorResponse {
                    peer: peer(),
                    what: what(),
                    message: "bad request".into(),
                },
                Retry::Permanent,
            ),
            (
                RpcStage::Call,
                RpcError::Unexpected {
                    peer: peer(),
                    serial: 1,
                    what: what(),
                    item: "x".into(),
                },
                Retry::Permanent,
            ),
        ];
        for (stage, e, want) in cases {
            assert_eq!(classify(stage, &e), want, "{stage:?} {e:?}");
        }
    }
}
