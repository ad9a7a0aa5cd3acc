//! The http source's keys (docs/CONFIG.md, `http` source): Flume 1.11's HTTPSource keys and
//! defaults, its handlers' `handler.*` keys, Jetty's bean prefixes (`QueuedThreadPool.*`,
//! `HttpConfiguration.*`, `ServerConnector.*`, `SslContextFactory.*`: each key mapped to what
//! flumen does or ignored with a warning naming why), plus flumen's limits (`max-body-bytes`,
//! `max-connections`). Checked at start-up; the keystore itself is read when the source is
//! built.

use std::time::Duration;

use super::blob::BlobKind;
use super::HttpSource;
use crate::avro::keys as avro_keys;
use crate::avro::tls::{split_list, ServerTls};
use crate::config::{ConfigError, Keys, Registered, WarningKind};
use crate::source::{Source, SourceContext, SourceError, SourceSpec, SourceType};

/// `http` / Flume's HTTPSource.
pub const TYPE: SourceType = Registered {
    alias: "http",
    class: Some("org.apache.flume.source.http.HTTPSource"),
    parse,
    minimal: &[("bind", "127.0.0.1"), ("port", "5140")],
};

/// Flume's default handler.
pub const JSON_HANDLER: &str = "org.apache.flume.source.http.JSONHandler";
/// The blob handler Flume's user guide documents (from its morphline module).
pub const MORPHLINE_BLOB_HANDLER: &str = "org.apache.flume.sink.solr.morphline.BlobHandler";
/// flume-ng-core's own blob handler.
pub const CORE_BLOB_HANDLER: &str = "org.apache.flume.source.http.BLOBHandler";

/// The default of `max-body-bytes` (64 MiB).
pub const DEFAULT_MAX_BODY_BYTES: u64 = 64 << 20;

/// How a request body becomes events (`handler`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Handler {
    /// `org.apache.flume.source.http.JSONHandler`: a JSON array of events.
    Json,
    /// One of Flume's blob handlers: the whole body is one event.
    Blob(BlobKind),
}

/// The http source's settings (Flume key and default in each field's doc).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpSourceConfig {
    /// `bind` (default 0.0.0.0).
    pub bind: String,
    /// `port` (required).
    pub port: u16,
    /// `handler` (default JSONHandler) and its `handler.*` keys.
    pub handler: Handler,
    /// `max-body-bytes` (flumen's; default 64 MiB, or the morphline BlobHandler's
    /// `handler.maxBlobLength` of 100000000 when that handler is used and the key is unset):
    /// a larger body is answered 413 and nothing of it is put.
    pub max_body_bytes: u64,
    /// `max-connections` (flumen's; default 10000): connections beyond are accepted and
    /// closed at once, with a log line.
    pub max_connections: usize,
    /// `QueuedThreadPool.maxThreads` (Jetty's default 200): requests decoded and committed at
    /// once; more wait, their connections open, until one finishes.
    pub max_concurrent_requests: usize,
    /// `ServerConnector.idleTimeout` (Jetty's default 30000 ms): a connection that sends
    /// nothing this long (between requests, inside a request's head or body, or in its TLS
    /// handshake) is closed.
    pub idle_timeout: Duration,
    /// `HttpConfiguration.requestHeaderSize` (Jetty's default 8192 bytes; flumen's HTTP
    /// parser needs at least 8192): the largest request line and headers.
    pub max_header_bytes: usize,
    /// `HttpConfiguration.persistentConnectionsEnabled` (default true): keep-alive.
    pub keep_alive: bool,
    /// `ssl = true` (or Flume's deprecated `enableSSL`): the keystore and the protocol and
    /// cipher suite lists; `None` for `ssl = false` (the default).
    pub ssl: Option<ServerTls>,
}

impl HttpSourceConfig {
    /// Listening on `bind:port` with every other key at its default.
    pub fn new(bind: &str, port: u16) -> HttpSourceConfig {
        HttpSourceConfig {
            bind: bind.to_string(),
            port,
            handler: Handler::Json,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_connections: 10_000,
            max_concurrent_requests: 200,
            idle_timeout: Duration::from_millis(30_000),
            max_header_bytes: 8192,
            keep_alive: true,
            ssl: None,
        }
    }
}

/// The least `HttpConfiguration.requestHeaderSize` hyper accepts.
const MIN_HEADER_BYTES: u64 = 8192;

fn parse(keys: &mut Keys<'_>) -> Result<Box<dyn SourceSpec>, ConfigError> {
    let bind = keys.text("bind", "0.0.0.0");
    if bind.is_empty() {
        let v = keys.get("bind").unwrap_or(crate::config::Val {
            value: String::new(),
            line: keys.home_line(),
        });
        return Err(keys.bad("bind", &v, "an address to listen on, e.g. 0.0.0.0"));
    }
    let port = keys.port("port", "the TCP port to listen on, e.g. 5140", 0)?;
    let d = HttpSourceConfig::new(&bind, port);

    let (handler, blob_limit) = handler(keys)?;
    keys.document_default("max-body-bytes", DEFAULT_MAX_BODY_BYTES.to_string());
    let max_body_bytes = match keys.opt_number("max-body-bytes", 1, "bytes")? {
        Some(n) => n.min(blob_limit.unwrap_or(u64::MAX)),
        None => blob_limit.unwrap_or(d.max_body_bytes),
    };
    let max_connections = keys.size("max-connections", d.max_connections, 1, "connections")?;

    let max_concurrent_requests = keys.size(
        "QueuedThreadPool.maxThreads",
        d.max_concurrent_requests,
        1,
        "threads",
    )?;
    ignore_prefixed(
        keys,
        "QueuedThreadPool.",
        &["QueuedThreadPool.maxThreads"],
        "flumen serves requests on its own small async runtime; only maxThreads (requests handled at once) applies",
    );
    let idle_timeout = keys.millis("ServerConnector.idleTimeout", d.idle_timeout, 1)?;
    ignore_prefixed(
        keys,
        "ServerConnector.",
        &["ServerConnector.idleTimeout"],
        "flumen's listener is not Jetty's; only idleTimeout applies (set `bind` and `port` for the address)",
    );
    let header = keys.number(
        "HttpConfiguration.requestHeaderSize",
        d.max_header_bytes as u64,
        1,
        "bytes",
    )?;
    if header < MIN_HEADER_BYTES {
        let line = keys.line_of("HttpConfiguration.requestHeaderSize");
        keys.warn(
            line,
            "HttpConfiguration.requestHeaderSize",
            WarningKind::IgnoredKey {
                reason: format!(
                    "flumen's HTTP parser needs at least {MIN_HEADER_BYTES} bytes for the request head; {MIN_HEADER_BYTES} is used"
                ),
            },
        );
    }
    let max_header_bytes = usize::try_from(header.max(MIN_HEADER_BYTES)).unwrap_or(usize::MAX);
    let keep_alive = keys.boolean(
        "HttpConfiguration.persistentConnectionsEnabled",
        d.keep_alive,
    )?;
    ignore_prefixed(
        keys,
        "HttpConfiguration.",
        &[
            "HttpConfiguration.requestHeaderSize",
            "HttpConfiguration.persistentConnectionsEnabled",
        ],
        "only requestHeaderSize and persistentConnectionsEnabled apply to flumen's HTTP server",
    );

    // Flume's HTTPSource reads these older names when the new one is unset.
    keys.rename_deprecated("enableSSL", "ssl");
    keys.rename_deprecated("keystorePassword", "keystore-password");
    keys.rename_deprecated("excludeProtocols", "exclude-protocols");
    let ssl = if keys.boolean("ssl", false)? {
        let mut tls = avro_keys::server_tls(keys)?;
        // Jetty's SslContextFactory beans are set after Flume's lists, so they win.
        let f = &mut tls.filters;
        for (key, target) in [
            ("SslContextFactory.includeProtocols", 0),
            ("SslContextFactory.excludeProtocols", 1),
            ("SslContextFactory.includeCipherSuites", 2),
            ("SslContextFactory.excludeCipherSuites", 3),
        ] {
            if let Some(v) = keys.get(key) {
                let list = split_list(&v.value);
                match target {
                    0 => f.include_protocols = Some(list),
                    1 => f.exclude_protocols = list,
                    2 => f.include_cipher_suites = Some(list),
                    _ => f.exclude_cipher_suites = list,
                }
            }
        }
        ignore_prefixed(
            keys,
            "SslContextFactory.",
            &[
                "SslContextFactory.includeProtocols",
                "SslContextFactory.excludeProtocols",
                "SslContextFactory.includeCipherSuites",
                "SslContextFactory.excludeCipherSuites",
            ],
            "flumen's TLS is rustls, set from the keystore keys; only the protocol and cipher suite lists apply",
        );
        Some(tls)
    } else {
        avro_keys::ignore_server_tls(keys);
        ignore_prefixed(
            keys,
            "SslContextFactory.",
            &[],
            "only used with `ssl = true`",
        );
        None
    };
    Ok(Box::new(HttpSourceConfig {
        handler,
        max_body_bytes,
        max_connections,
        max_concurrent_requests,
        idle_timeout,
        max_header_bytes,
        keep_alive,
        ssl,
        ..d
    }))
}

/// `handler` and its `handler.*` keys; the second value is the handler's own body limit.
fn handler(keys: &mut Keys<'_>) -> Result<(Handler, Option<u64>), ConfigError> {
    let class = keys.text("handler", JSON_HANDLER);
    let class = class.trim();
    let out = match class {
        JSON_HANDLER => (Handler::Json, None),
        MORPHLINE_BLOB_HANDLER => {
            let max = keys.number("handler.maxBlobLength", 100_000_000, 1, "bytes")?;
            if max > i32::MAX as u64 {
                return Err(keys.bad_effective(
                    "handler.maxBlobLength",
                    max,
                    format!("a whole number of bytes, 1 to {} (a Java int)", i32::MAX),
                ));
            }
            (Handler::Blob(BlobKind::Morphline), Some(max))
        }
        CORE_BLOB_HANDLER => {
            let names = keys.text("handler.mandatoryParameters", "");
            let mandatory = names
                .split(',')
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .map(str::to_string)
                .collect();
            (Handler::Blob(BlobKind::Core { mandatory }), None)
        }
        other => {
            let line = keys.line_of("handler");
            return Err(keys.unsupported(
                "handler",
                line,
                format!("the HTTPSourceHandler class `{other}`"),
                format!(
                    "flumen runs no Java code; its handlers are {JSON_HANDLER} (the default), {MORPHLINE_BLOB_HANDLER} and {CORE_BLOB_HANDLER}"
                ),
            ));
        }
    };
    ignore_prefixed(
        keys,
        "handler.",
        match &out.0 {
            Handler::Json => &[],
            Handler::Blob(BlobKind::Morphline) => &["handler.maxBlobLength"],
            Handler::Blob(BlobKind::Core { .. }) => &["handler.mandatoryParameters"],
        },
        "this handler reads no such key (Flume's JSONHandler reads none)",
    );
    Ok(out)
}

/// Warns about every key under `prefix` but those in `read` as accepted but not acted on.
fn ignore_prefixed(keys: &mut Keys<'_>, prefix: &str, read: &[&str], reason: &str) {
    for (key, v) in keys.take_prefixed(prefix) {
        if read.contains(&key.as_str()) {
            continue;
        }
        keys.warn(
            v.line,
            &key,
            WarningKind::IgnoredKey {
                reason: reason.to_string(),
            },
        );
    }
}

impl SourceSpec for HttpSourceConfig {
    fn build(&self, ctx: SourceContext) -> Result<Box<dyn Source>, SourceError> {
        Ok(Box::new(HttpSource::bind(ctx, self)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_pairs(pairs: &[(&str, &str)]) -> (Result<HttpSourceConfig, ConfigError>, String) {
        let mut keys = Keys::from_pairs("sources", "r1", pairs);
        let r = parse(&mut keys).map(|s| {
            s.as_any()
                .downcast_ref::<HttpSourceConfig>()
                .expect("http config")
                .clone()
        });
        // The agent reads `type`, not the parser.
        let _ = keys.get("type");
        let mut warnings = Vec::new();
        keys.finish(&mut warnings);
        let w = warnings
            .iter()
            .map(|w| w.to_string())
            .collect::<Vec<_>>()
            .join("\n");
        (r, w)
    }

    #[test]
    fn flume_defaults_and_jetty_beans() {
        let (c, w) = parse_pairs(&[("type", "http"), ("port", "5140")]);
        let c = c.expect("parses");
        assert_eq!(c, HttpSourceConfig::new("0.0.0.0", 5140));
        assert!(w.is_empty(), "{w}");

        let (c, w) = parse_pairs(&[
            ("type", "http"),
            ("port", "5140"),
            ("QueuedThreadPool.maxThreads", "8"),
            ("QueuedThreadPool.minThreads", "2"),
            ("ServerConnector.idleTimeout", "5000"),
            ("HttpConfiguration.requestHeaderSize", "16384"),
            ("HttpConfiguration.sendServerVersion", "false"),
            ("handler.foo", "bar"),
        ]);
        let c = c.expect("parses");
        assert_eq!(c.max_concurrent_requests, 8);
        assert_eq!(c.idle_timeout, Duration::from_secs(5));
        assert_eq!(c.max_header_bytes, 16384);
        for k in ["minThreads", "sendServerVersion", "handler.foo"] {
            assert!(w.contains(k), "{k} not warned about: {w}");
        }
        for k in [
            "QueuedThreadPool.maxThreads",
            "ServerConnector.idleTimeout",
            "HttpConfiguration.requestHeaderSize",
        ] {
            let key = format!("`a1.sources.r1.{k}`");
            assert!(!w.contains(&key), "{k}, which applies, warned about: {w}");
        }
    }

    #[test]
    fn handlers_and_their_limits() {
        let (c, _) = parse_pairs(&[
            ("type", "http"),
            ("port", "1"),
            ("handler", MORPHLINE_BLOB_HANDLER),
        ]);
        assert_eq!(c.expect("parses").max_body_bytes, 100_000_000);
        let (c, _) = parse_pairs(&[
            ("type", "http"),
            ("port", "1"),
            ("handler", MORPHLINE_BLOB_HANDLER),
            ("handler.maxBlobLength", "10"),
            ("max-body-bytes", "1000"),
        ]);
        assert_eq!(c.expect("parses").max_body_bytes, 10);
        let (c, _) = parse_pairs(&[
            ("type", "http"),
            ("port", "1"),
            ("handler", CORE_BLOB_HANDLER),
            ("handler.mandatoryParameters", "a, b"),
        ]);
        assert_eq!(
            c.expect("parses").handler,
            Handler::Blob(BlobKind::Core {
                mandatory: vec!["a".into(), "b".into()]
            })
        );
        let (c, _) = parse_pairs(&[("type", "http"), ("port", "1"), ("handler", "com.x.Mine")]);
        let e = c.expect_err("custom handler refused").to_string();
        assert!(e.contains("com.x.Mine") && e.contains(JSON_HANDLER), "{e}");
    }

    #[test]
    fn deprecated_ssl_keys_are_read() {
        let (c, _) = parse_pairs(&[
            ("type", "http"),
            ("port", "1"),
            ("enableSSL", "true"),
            ("keystore", "/k.p12"),
            ("keystorePassword", "pw"),
            ("excludeProtocols", "TLSv1.2"),
        ]);
        let tls = c.expect("parses").ssl.expect("ssl on");
        assert_eq!(tls.filters.exclude_protocols, vec!["TLSv1.2".to_string()]);
        let crate::avro::tls::Identity::Keystore(store) = tls.identity else {
            panic!("expected a keystore identity");
        };
        assert_eq!(store.password.map(|p| p.0), Some("pw".to_string()));
    }
}
