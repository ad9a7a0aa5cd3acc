//! The keys of `syslogtcp`, `multiport_syslogtcp` and `syslogudp` (docs/CONFIG.md): Flume
//! 1.11's keys and defaults, checked at start-up; the keystore is read when the source is
//! built.

use super::parse::{KeepFields, DEFAULT_EVENT_SIZE};
use crate::avro::keys as avro_keys;
use crate::avro::tls::ServerTls;
use crate::config::{ConfigError, Keys, Registered};
use crate::source::{SourceSpec, SourceType};

/// `syslogtcp` / Flume's SyslogTcpSource.
pub const TCP_TYPE: SourceType = Registered {
    alias: "syslogtcp",
    class: Some("org.apache.flume.source.SyslogTcpSource"),
    parse: parse_tcp,
    minimal: &[("host", "127.0.0.1"), ("port", "5140")],
};

/// `multiport_syslogtcp` / Flume's MultiportSyslogTCPSource.
pub const MULTIPORT_TYPE: SourceType = Registered {
    alias: "multiport_syslogtcp",
    class: Some("org.apache.flume.source.MultiportSyslogTCPSource"),
    parse: parse_multiport,
    minimal: &[("host", "127.0.0.1"), ("ports", "5140 5141")],
};

/// `syslogudp` / Flume's SyslogUDPSource.
pub const UDP_TYPE: SourceType = Registered {
    alias: "syslogudp",
    class: Some("org.apache.flume.source.SyslogUDPSource"),
    parse: parse_udp,
    minimal: &[("host", "127.0.0.1"), ("port", "5140")],
};

/// The most connections a syslog TCP source holds open at once (all ports together); one
/// more is accepted and closed at once, with a log line. Flume has no such key.
pub const MAX_CONNECTIONS: usize = 16_384;

/// The keys every syslog source shares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Common {
    /// `host` (default: every address, as Flume binds with no host).
    pub host: String,
    /// `keepFields` (default `none`).
    pub keep: KeepFields,
    /// `clientIPHeader`: the header that gets the sender's address.
    pub client_ip_header: Option<String>,
    /// `clientHostnameHeader`: the header that gets the sender's host name (reverse DNS).
    pub client_hostname_header: Option<String>,
}

fn common(keys: &mut Keys<'_>) -> Result<Common, ConfigError> {
    let host = keys.text("host", "0.0.0.0");
    let keep = KeepFields::parse(&keys.text("keepFields", "none"));
    let client_ip_header = keys.get("clientIPHeader").map(|v| v.value);
    let client_hostname_header = keys.get("clientHostnameHeader").map(|v| v.value);
    // Flume's custom `format.*` patterns (a Java regex and a SimpleDateFormat, undocumented):
    // refused rather than silently parsed differently.
    if let Some((key, v)) = keys.take_prefixed("format.").into_iter().next() {
        return Err(keys.unsupported(
            &key,
            v.line,
            "custom syslog formats (`format.regex`, `format.search`, `format.replace`, \
             `format.dateFormat`)",
            "flumen parses RFC 5424 and RFC 3164 as Flume's built-in formats do; remove the \
             `format.*` keys, or use a regex_extractor interceptor on the body",
        ));
    }
    Ok(Common {
        host,
        keep,
        client_ip_header,
        client_hostname_header,
    })
}

fn event_size(keys: &mut Keys<'_>) -> Result<usize, ConfigError> {
    keys.size("eventSize", DEFAULT_EVENT_SIZE, 1, "bytes")
}

fn tls(keys: &mut Keys<'_>) -> Result<Option<ServerTls>, ConfigError> {
    avro_keys::optional_server_tls(keys)
}

/// `syslogtcp`'s settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TcpConfig {
    pub common: Common,
    /// `port` (required).
    pub port: u16,
    /// `eventSize` (default 2500 bytes): a longer message is cut there and marked
    /// `Incomplete`; its rest becomes the next message.
    pub event_size: usize,
    /// `ssl = true` and its keystore keys, as the avro source takes them.
    pub ssl: Option<ServerTls>,
}

fn parse_tcp(keys: &mut Keys<'_>) -> Result<Box<dyn SourceSpec>, ConfigError> {
    let common = common(keys)?;
    let port = keys.port("port", "the TCP port to listen on, e.g. 5140", 0)?;
    let event_size = event_size(keys)?;
    let ssl = tls(keys)?;
    Ok(Box::new(TcpConfig {
        common,
        port,
        event_size,
        ssl,
    }))
}

/// `syslogudp`'s settings (Flume's UDP source has no `eventSize`: a datagram is at most
/// 64 KiB).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UdpConfig {
    pub common: Common,
    /// `port` (required).
    pub port: u16,
}

fn parse_udp(keys: &mut Keys<'_>) -> Result<Box<dyn SourceSpec>, ConfigError> {
    let common = common(keys)?;
    let port = keys.port("port", "the UDP port to listen on, e.g. 5140", 0)?;
    Ok(Box::new(UdpConfig { common, port }))
}

pub use crate::config::charset::Charset;

/// `multiport_syslogtcp`'s settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MultiportConfig {
    pub common: Common,
    /// `ports` (required): space-separated.
    pub ports: Vec<u16>,
    /// `eventSize` (default 2500 bytes, newline included, as Flume counts here).
    pub event_size: usize,
    /// `charset.default` (default UTF-8).
    pub charset: Charset,
    /// `charset.port.<port>`.
    pub port_charsets: Vec<(u16, Charset)>,
    /// `batchSize` (default 100): checked against the channels' `transactionCapacity`.
    pub batch_size: usize,
    /// `portHeader`: the header that gets the local port a message came in on.
    pub port_header: Option<String>,
    /// `numProcessors`: the runtime's worker threads (default: the machine's cores, at
    /// most 4).
    pub num_processors: Option<usize>,
    /// `ssl = true` and its keystore keys.
    pub ssl: Option<ServerTls>,
}

impl MultiportConfig {
    /// The charset of messages arriving on `port`.
    pub fn charset_of(&self, port: u16) -> Charset {
        self.port_charsets
            .iter()
            .find(|(p, _)| *p == port)
            .map_or(self.charset, |(_, c)| *c)
    }
}

fn charset_value(
    keys: &Keys<'_>,
    key: &str,
    v: &crate::config::Val,
) -> Result<Charset, ConfigError> {
    Charset::from_java(&v.value).ok_or_else(|| {
        keys.unsupported(
            key,
            v.line,
            format!("the charset `{}`", v.value),
            "flumen decodes UTF-8, US-ASCII and ISO-8859-1; set one of those",
        )
    })
}

fn parse_multiport(keys: &mut Keys<'_>) -> Result<Box<dyn SourceSpec>, ConfigError> {
    let common = common(keys)?;
    let ports_v = keys.required(
        "ports",
        "the TCP ports to listen on, space-separated, e.g. 5140 5141",
    )?;
    let mut ports = Vec::new();
    for p in ports_v.value.split_ascii_whitespace() {
        match p.parse::<u16>() {
            Ok(n) if !ports.contains(&n) => ports.push(n),
            Ok(_) => {}
            Err(_) => {
                return Err(keys.bad(
                    "ports",
                    &ports_v,
                    "TCP port numbers (0 to 65535) separated by spaces",
                ))
            }
        }
    }
    if ports.is_empty() {
        return Err(keys.bad("ports", &ports_v, "at least one TCP port number"));
    }
    let event_size = event_size(keys)?;
    keys.document_default("charset.default", "UTF-8");
    let charset = match keys.get("charset.default") {
        Some(v) => charset_value(keys, "charset.default", &v)?,
        None => Charset::Utf8,
    };
    let mut port_charsets = Vec::new();
    for (key, v) in keys.take_prefixed("charset.port.") {
        let port_text = key.trim_start_matches("charset.port.");
        let Ok(port) = port_text.parse::<u16>() else {
            return Err(keys.bad(&key, &v, "a key `charset.port.<port number>`"));
        };
        port_charsets.push((port, charset_value(keys, &key, &v)?));
    }
    let batch_size = keys.size("batchSize", 100, 1, "events")?;
    let port_header = keys.get("portHeader").map(|v| v.value);
    let num_processors = keys
        .opt_number("numProcessors", 1, "threads")?
        .map(|n| usize::try_from(n).unwrap_or(usize::MAX).min(64));
    // Flume's code reads `readBufferBytes`; its user guide says `readBufferSize`. Both only
    // size Flume's reads; flumen sizes its own.
    keys.number("readBufferBytes", 1024, 1, "bytes")?;
    keys.ignore(
        "readBufferSize",
        "Flume's code reads `readBufferBytes` (this name is its user guide's); flumen reads up to 64 KiB at a time either way",
    );
    let ssl = tls(keys)?;
    Ok(Box::new(MultiportConfig {
        common,
        ports,
        event_size,
        charset,
        port_charsets,
        batch_size,
        port_header,
        num_processors,
        ssl,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(ty: &SourceType, pairs: &[(&str, &str)]) -> Result<Box<dyn SourceSpec>, ConfigError> {
        let mut keys = Keys::from_pairs("sources", "r1", pairs);
        (ty.parse)(&mut keys)
    }

    #[test]
    fn syslogtcp_takes_flumes_keys_and_defaults() {
        let spec = parse(
            &TCP_TYPE,
            &[("port", "5140"), ("keepFields", "Timestamp, HostName")],
        )
        .expect("parses");
        let cfg = spec.as_any().downcast_ref::<TcpConfig>().expect("tcp");
        assert_eq!(cfg.event_size, 2500);
        assert_eq!(cfg.common.host, "0.0.0.0");
        assert!(cfg.common.keep.timestamp && cfg.common.keep.hostname && !cfg.common.keep.priority);
        assert!(parse(&TCP_TYPE, &[]).is_err(), "port is required");
        let e = parse(&TCP_TYPE, &[("port", "5140"), ("format.regex", "(.*)")])
            .expect_err("custom formats are refused");
        assert!(e.to_string().contains("format.regex"), "{e}");
    }

    #[test]
    fn multiport_reads_ports_charsets_and_batch_size() {
        let spec = parse(
            &MULTIPORT_TYPE,
            &[
                ("ports", "5140  5141 5140"),
                ("charset.default", "iso-8859-1"),
                ("charset.port.5141", "UTF-8"),
                ("portHeader", "port"),
            ],
        )
        .expect("parses");
        let cfg = spec
            .as_any()
            .downcast_ref::<MultiportConfig>()
            .expect("multiport");
        assert_eq!(cfg.ports, vec![5140, 5141]);
        assert_eq!(cfg.charset_of(5140), Charset::Latin1);
        assert_eq!(cfg.charset_of(5141), Charset::Utf8);
        assert_eq!(spec.batch_size(), Some((100, "batchSize")));
        let e = parse(
            &MULTIPORT_TYPE,
            &[("ports", "5140"), ("charset.default", "Shift_JIS")],
        )
        .expect_err("an unknown charset is refused");
        assert!(e.to_string().contains("charset.default"), "{e}");
        assert!(parse(&MULTIPORT_TYPE, &[("ports", "51x")]).is_err());
    }
}
