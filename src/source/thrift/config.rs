//! The thrift source's keys (docs/CONFIG.md, `thrift` source): Flume's ThriftSource keys and
//! defaults (`bind`, `port`, `threads`, `protocol`, `ssl` and the keystore keys, `kerberos`
//! refused), plus flumen's limits (`max-connections`, `max-frame-bytes`, `idle-timeout`).
//! Checked at start-up; the keystore itself is read when the source is built.

use std::time::Duration;

use super::ThriftSource;
use crate::avro::keys as avro_keys;
use crate::avro::tls::ServerTls;
use crate::config::{ConfigError, Keys, Registered};
use crate::source::{Source, SourceContext, SourceError, SourceSpec, SourceType};
use crate::thrift::keys as thrift_keys;
use crate::thrift::{Protocol, DEFAULT_MAX_FRAME_BYTES};

/// `thrift` / Flume's ThriftSource.
pub const TYPE: SourceType = Registered {
    alias: "thrift",
    class: Some("org.apache.flume.source.ThriftSource"),
    parse,
    minimal: &[("bind", "127.0.0.1"), ("port", "4141")],
};

/// The thrift source's settings (Flume key and default in each field's doc).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ThriftSourceConfig {
    /// `bind` (required): address to listen on.
    pub bind: String,
    /// `port` (required).
    pub port: u16,
    /// `threads` (default 0: Flume's unbounded worker pool): flumen serves every connection
    /// on a small async runtime of `min(threads, CPUs)` workers (all CPUs when 0); the
    /// channel commits run on the source's own committing thread.
    pub threads: usize,
    /// `protocol` (default compact; compact or binary, any case).
    pub protocol: Protocol,
    /// `max-connections` (flumen's; default 10,000): connections beyond are accepted and
    /// closed at once, with a log line.
    pub max_connections: usize,
    /// `max-frame-bytes` (flumen's; default 16,384,000, Thrift Java's own frame limit): a
    /// larger request closes its connection.
    pub max_frame_bytes: u32,
    /// `idle-timeout` (flumen's; default 60 s): a client that leaves a request half sent (or
    /// a TLS handshake unfinished) this long is logged and disconnected. Idle time between
    /// requests is not limited (Flume's clients hold their connections for reuse).
    pub idle_timeout: Duration,
    /// `ssl = true`: the keystore (or `ssl-cert`/`ssl-key`) and the protocol and cipher
    /// suite lists; `None` for `ssl = false` (the default). Read at start-up.
    pub ssl: Option<ServerTls>,
}

impl ThriftSourceConfig {
    /// Listening on `bind:port` with every other key at its default.
    pub fn new(bind: &str, port: u16) -> ThriftSourceConfig {
        ThriftSourceConfig {
            bind: bind.to_string(),
            port,
            threads: 0,
            protocol: Protocol::Compact,
            max_connections: 10_000,
            max_frame_bytes: DEFAULT_MAX_FRAME_BYTES,
            idle_timeout: Duration::from_secs(60),
            ssl: None,
        }
    }
}

fn parse(keys: &mut Keys<'_>) -> Result<Box<dyn SourceSpec>, ConfigError> {
    let bind = keys.required(
        "bind",
        "the address to listen on, e.g. 0.0.0.0 or 127.0.0.1",
    )?;
    let port = keys.port("port", "the TCP port to listen on, e.g. 4141", 0)?;
    let d = ThriftSourceConfig::new(&bind.value, port);
    let threads = keys.size("threads", d.threads, 0, "threads (0 = as many as CPUs)")?;
    let protocol = thrift_keys::protocol(keys)?;
    let max_connections = keys.size("max-connections", d.max_connections, 1, "connections")?;
    let max_frame_bytes = keys.number(
        "max-frame-bytes",
        u64::from(d.max_frame_bytes),
        1024,
        "bytes",
    )?;
    let max_frame_bytes = u32::try_from(max_frame_bytes)
        .ok()
        .filter(|&n| n <= i32::MAX as u32)
        .ok_or_else(|| {
            keys.bad_effective(
                "max-frame-bytes",
                max_frame_bytes,
                format!(
                    "a whole number of bytes, at most {} (a Thrift frame's largest)",
                    i32::MAX
                ),
            )
        })?;
    let idle_timeout = keys.secs("idle-timeout", d.idle_timeout, 1, "seconds")?;
    thrift_keys::kerberos(keys, &["agent-principal", "agent-keytab"])?;
    let ssl = avro_keys::optional_server_tls(keys)?;
    Ok(Box::new(ThriftSourceConfig {
        threads,
        protocol,
        max_connections,
        max_frame_bytes,
        idle_timeout,
        ssl,
        ..d
    }))
}

impl SourceSpec for ThriftSourceConfig {
    fn build(&self, ctx: SourceContext) -> Result<Box<dyn Source>, SourceError> {
        Ok(Box::new(ThriftSource::bind(ctx, self)?))
    }
}
