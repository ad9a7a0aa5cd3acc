//! The avro source's keys (docs/CONFIG.md, `avro` source): Flume's AvroSource keys and
//! defaults, plus flumen's limits (`max-connections`, `max-frame-bytes`, `idle-timeout`).
//! Checked at start-up; the keystore itself is read when the source is built.

use std::time::Duration;

use super::AvroSource;
use crate::avro::keys as avro_keys;
use crate::avro::tls::ServerTls;
use crate::config::{ConfigError, Keys, Registered};
use crate::source::ip_filter::{self, IpFilter};
use crate::source::{Source, SourceContext, SourceError, SourceSpec, SourceType};

/// `avro` / Flume's AvroSource.
pub const TYPE: SourceType = Registered {
    alias: "avro",
    class: Some("org.apache.flume.source.AvroSource"),
    parse,
    minimal: &[("bind", "127.0.0.1"), ("port", "41414")],
};

/// The avro source's settings (Flume key and default in each field's doc).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AvroSourceConfig {
    /// `bind` (required): address to listen on.
    pub bind: String,
    /// `port` (required).
    pub port: u16,
    /// `threads` (Flume's worker-thread cap; accepted for compatibility): flumen serves
    /// each connection on its own thread, up to `max_connections`.
    pub threads: Option<usize>,
    /// `max-connections` (flumen's; default 256): connections beyond are accepted and
    /// closed at once, with a log line.
    pub max_connections: usize,
    /// `max-frame-bytes` (flumen's; default 64 MiB): the largest request a client may
    /// send; a larger one closes its connection.
    pub max_frame_bytes: u64,
    /// `compression-type = deflate`: the `compression-level` (0-9, default 6); `None` for
    /// `compression-type = none` (the default).
    pub deflate: Option<u32>,
    /// `ipFilter = true` with its `ipFilterRules`; `None` for `ipFilter = false` (the
    /// default). Checked on every accepted connection; a denied peer is closed at once.
    pub ip_filter: Option<IpFilter>,
    /// `idle-timeout` (flumen's; default 60 s): a client that leaves a request half sent
    /// (or a TLS handshake unfinished) this long is logged and disconnected. Idle time
    /// between requests is not limited (Flume's clients hold their connections for reuse).
    pub idle_timeout: Duration,
    /// `ssl = true`: the keystore (or `ssl-cert`/`ssl-key`) and the protocol and cipher
    /// suite lists; `None` for `ssl = false` (the default). Read at start-up.
    pub ssl: Option<ServerTls>,
}

impl AvroSourceConfig {
    /// Listening on `bind:port` with every other key at its default.
    pub fn new(bind: &str, port: u16) -> AvroSourceConfig {
        AvroSourceConfig {
            bind: bind.to_string(),
            port,
            threads: None,
            max_connections: 256,
            max_frame_bytes: 64 << 20,
            deflate: None,
            ip_filter: None,
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
    let port = keys.port("port", "the TCP port to listen on, e.g. 41414", 0)?;
    let d = AvroSourceConfig::new(&bind.value, port);
    let threads = keys
        .opt_number("threads", 1, "threads")?
        .map(|n| usize::try_from(n).unwrap_or(usize::MAX));
    let max_connections = keys.size("max-connections", d.max_connections, 1, "connections")?;
    let max_frame_bytes = keys.number("max-frame-bytes", d.max_frame_bytes, 1024, "bytes")?;
    if max_frame_bytes > u64::from(u32::MAX) {
        return Err(keys.bad_effective(
            "max-frame-bytes",
            max_frame_bytes,
            format!("a whole number of bytes, at most {}", u32::MAX),
        ));
    }
    let deflate = avro_keys::compression(keys, "the avro source compression-type")?;
    let ssl = avro_keys::optional_server_tls(keys)?;
    let ip_filter = if keys.boolean("ipFilter", false)? {
        // Flume's AvroSource refuses `ipFilter = true` without rules at configure time.
        let rules = keys
            .get("ipFilterRules")
            .filter(|v| !v.value.trim().is_empty());
        let Some(rules) = rules else {
            return Err(keys.missing(
                "ipFilterRules",
                format!("`ipFilter = true` needs rules: {}", ip_filter::SYNTAX),
            ));
        };
        Some(ip_filter::parse(&rules.value).map_err(|e| keys.bad("ipFilterRules", &rules, e))?)
    } else {
        keys.ignore("ipFilterRules", "they apply only with `ipFilter = true`");
        None
    };
    let idle_timeout = keys.secs("idle-timeout", d.idle_timeout, 1, "seconds")?;
    Ok(Box::new(AvroSourceConfig {
        threads,
        max_connections,
        max_frame_bytes,
        deflate,
        ip_filter,
        idle_timeout,
        ssl,
        ..d
    }))
}

impl SourceSpec for AvroSourceConfig {
    fn build(&self, ctx: SourceContext) -> Result<Box<dyn Source>, SourceError> {
        Ok(Box::new(AvroSource::bind(ctx, self)?))
    }
}
