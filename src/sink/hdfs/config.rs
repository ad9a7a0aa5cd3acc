//! The hdfs sink's keys: Flume's `hdfs.*` keys and defaults (docs/CONFIG.md, `hdfs`), plus
//! `hdfs.sync` and `hdfs.config.*` (ours). Templates, the time zone and the codec are checked
//! here, so a mistake stops start-up naming the key and line rather than failing every batch.
//! Every default is [`HdfsSinkConfig::new`]'s, read nowhere else.

use super::format::FormatSpec;
use super::{path, HdfsSink};
use crate::config::{ConfigError, Keys, Registered, WarningKind};
use crate::sink::serializer;
use crate::sink::{Sink, SinkError, SinkSpec, SinkType};

/// `hdfs` / Flume's HDFSEventSink.
pub const TYPE: SinkType = Registered {
    alias: "hdfs",
    class: Some("org.apache.flume.sink.hdfs.HDFSEventSink"),
    parse,
    minimal: &[("hdfs.path", "/tmp/flumen-out")],
};

/// When `hdfs.sync` makes a batch durable.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SyncMode {
    /// `hsync` (default): every file a batch touched is synced before the take commits.
    #[default]
    Hsync,
    /// `none`: no sync per batch; files are durable when they close.
    None,
}

/// The sink's settings, read from Flume's `hdfs.*` keys (see docs/CONFIG.md).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HdfsSinkConfig {
    /// `hdfs.path` (required): `hdfs://host:port/dir`, `hdfs:///dir` (the default filesystem
    /// from `HADOOP_CONF_DIR`), `file:///dir`, an absolute plain path (on `fs.defaultFS`, as in
    /// Hadoop; see `default_fs`) or a relative (local) one, with Flume's escapes.
    pub path: String,
    /// Where `hdfs.path` was set (`flume.conf:12: `a1.sinks.k1.hdfs.path``), for errors met
    /// when the sink is built; empty for a configuration not read from a file.
    pub path_origin: String,
    /// `hdfs.filePrefix` (FlumeData), escapes allowed.
    pub file_prefix: String,
    /// `hdfs.fileSuffix` (none; then the codec's extension, as Flume).
    pub file_suffix: String,
    /// `hdfs.inUsePrefix` (none).
    pub in_use_prefix: String,
    /// `hdfs.inUseSuffix` (.tmp).
    pub in_use_suffix: String,
    /// `hdfs.rollInterval` seconds (30; 0 = never).
    pub roll_interval_secs: u64,
    /// `hdfs.rollSize` body bytes (1024; 0 = never).
    pub roll_size: u64,
    /// `hdfs.rollCount` events (10; 0 = never).
    pub roll_count: u64,
    /// `hdfs.idleTimeout` seconds (0 = never): close a file nothing was written to for so long.
    pub idle_timeout_secs: u64,
    /// `hdfs.batchSize` (100): events per take transaction.
    pub batch_size: usize,
    /// `hdfs.maxOpenFiles` (5000).
    pub max_open_files: usize,
    /// `hdfs.callTimeout` milliseconds (10000): bound on each HDFS call.
    pub call_timeout_ms: u64,
    /// `hdfs.closeTries` (0 = keep trying): attempts to close and rename a file whose close
    /// failed.
    pub close_tries: u32,
    /// `hdfs.retryInterval` seconds (180): between those attempts.
    pub retry_interval_secs: u64,
    /// `hdfs.fileType`, `hdfs.writeFormat`, `hdfs.codeC` and `hdfs.compressionType`.
    pub format: FormatSpec,
    /// `hdfs.round`, `hdfs.roundValue`, `hdfs.roundUnit`.
    pub round: Option<path::Rounding>,
    /// `hdfs.timeZone` (the local zone when unset).
    pub time_zone: Option<String>,
    /// `hdfs.useLocalTimeStamp` (false).
    pub use_local_timestamp: bool,
    /// `hdfs.sync` (ours; hsync).
    pub sync: SyncMode,
    /// `hdfs.config.<key> = value` (ours): Hadoop client settings passed to hdfs-native.
    pub hadoop_config: Vec<(String, String)>,
}

impl HdfsSinkConfig {
    /// Flume's defaults for everything but the path.
    pub fn new(path: &str) -> HdfsSinkConfig {
        HdfsSinkConfig {
            path: path.to_string(),
            path_origin: String::new(),
            file_prefix: "FlumeData".into(),
            file_suffix: String::new(),
            in_use_prefix: String::new(),
            in_use_suffix: ".tmp".into(),
            roll_interval_secs: 30,
            roll_size: 1024,
            roll_count: 10,
            idle_timeout_secs: 0,
            batch_size: 100,
            max_open_files: 5000,
            call_timeout_ms: 10_000,
            close_tries: 0,
            retry_interval_secs: 180,
            format: FormatSpec::default(),
            round: None,
            time_zone: None,
            use_local_timestamp: false,
            sync: SyncMode::Hsync,
            hadoop_config: Vec::new(),
        }
    }
}

/// Where `hdfs.path` points: the filesystem and the path template within it.
#[derive(Debug, PartialEq, Eq)]
pub struct Target {
    /// `hdfs://authority` (empty authority: the default filesystem), or `None` for local.
    pub hdfs_url: Option<String>,
    /// The path part, still with its escapes.
    pub path: String,
}

/// Splits `hdfs.path` into filesystem and path. Escapes may not appear in the scheme or the
/// authority: a header must not choose the cluster.
pub fn split_target(raw: &str) -> Result<Target, String> {
    if let Some(rest) = raw.strip_prefix("file://") {
        if !rest.starts_with('/') {
            return Err(format!(
                "`{raw}`: a file:// path must be absolute (file:///dir), or write a plain path"
            ));
        }
        return Ok(Target {
            hdfs_url: None,
            path: rest.to_string(),
        });
    }
    for scheme in ["hdfs://", "viewfs://"] {
        if let Some(rest) = raw.strip_prefix(scheme) {
            let (authority, path) = match rest.find('/') {
                Some(i) => (&rest[..i], &rest[i..]),
                None => (rest, "/"),
            };
            if authority.contains('%') {
                return Err(format!(
                    "`{raw}`: escapes are not allowed in the host part ({authority}); only in \
                     the path after it"
                ));
            }
            return Ok(Target {
                hdfs_url: Some(format!("{scheme}{authority}")),
                path: path.to_string(),
            });
        }
    }
    if let Some(i) = raw.find("://") {
        return Err(format!(
            "`{raw}`: the scheme `{}` is not supported; use hdfs://, viewfs://, file:// or a \
             plain local path",
            &raw[..i]
        ));
    }
    if raw.is_empty() {
        return Err("an empty path".into());
    }
    Ok(Target {
        hdfs_url: None,
        path: raw.to_string(),
    })
}

impl SinkSpec for HdfsSinkConfig {
    fn batch_size(&self) -> Option<(usize, &'static str)> {
        Some((self.batch_size, "hdfs.batchSize"))
    }

    fn build(&self, name: &str) -> Result<Box<dyn Sink>, SinkError> {
        Ok(Box::new(HdfsSink::new(name, self)?))
    }
}

fn parse(keys: &mut Keys<'_>) -> Result<Box<dyn SinkSpec>, ConfigError> {
    use super::format::{Codec, FileType, SeqCompression, WriteFormat};
    use super::path::{self as hpath, PathTemplate, RoundUnit, Rounding};

    let path = keys.required(
        "hdfs.path",
        "the directory to write into: hdfs://namenode:8020/dir, file:///dir or a local path",
    )?;
    let target = split_target(&path.value)
        .map_err(|m| keys.bad("hdfs.path", &path, format!("a usable path: {m}")))?;
    if let Err(e) = PathTemplate::parse(&target.path) {
        return Err(keys.bad("hdfs.path", &path, format!("a valid template: {e}")));
    }
    let mut cfg = HdfsSinkConfig::new(&path.value);
    cfg.path_origin = format!(
        "{}:{}: `{}`",
        keys.file(),
        path.line,
        keys.full("hdfs.path")
    );
    let d = HdfsSinkConfig::new(&path.value);
    cfg.file_prefix = keys.text("hdfs.filePrefix", &d.file_prefix);
    if let Err(e) = PathTemplate::parse(&cfg.file_prefix) {
        return Err(keys.bad_effective(
            "hdfs.filePrefix",
            &cfg.file_prefix,
            format!("a valid template: {e}"),
        ));
    }
    if cfg.file_prefix.contains('/') {
        return Err(keys.unsupported(
            "hdfs.filePrefix",
            keys.line_of("hdfs.filePrefix"),
            "a `/` in hdfs.filePrefix",
            "Put directories in hdfs.path and keep hdfs.filePrefix a file name",
        ));
    }
    cfg.file_suffix = keys.text("hdfs.fileSuffix", &d.file_suffix);
    cfg.in_use_prefix = keys.text("hdfs.inUsePrefix", &d.in_use_prefix);
    cfg.in_use_suffix = keys.text("hdfs.inUseSuffix", &d.in_use_suffix);
    for (key, value) in [
        ("hdfs.fileSuffix", &cfg.file_suffix),
        ("hdfs.inUsePrefix", &cfg.in_use_prefix),
        ("hdfs.inUseSuffix", &cfg.in_use_suffix),
    ] {
        if value.contains('/') {
            return Err(keys.bad_effective(key, value, "a file name part without `/`"));
        }
    }
    let never = |unit: &str| format!("{unit} (0 = never)");
    cfg.roll_interval_secs = keys.number(
        "hdfs.rollInterval",
        d.roll_interval_secs,
        0,
        &never("seconds"),
    )?;
    cfg.roll_size = keys.number("hdfs.rollSize", d.roll_size, 0, &never("bytes"))?;
    cfg.roll_count = keys.number("hdfs.rollCount", d.roll_count, 0, &never("events"))?;
    cfg.idle_timeout_secs = keys.number(
        "hdfs.idleTimeout",
        d.idle_timeout_secs,
        0,
        &never("seconds"),
    )?;
    cfg.batch_size = keys.size("hdfs.batchSize", d.batch_size, 1, "events")?;
    cfg.max_open_files = keys.size("hdfs.maxOpenFiles", d.max_open_files, 1, "files")?;
    cfg.call_timeout_ms = keys.number("hdfs.callTimeout", d.call_timeout_ms, 1, "milliseconds")?;
    let tries = keys.number(
        "hdfs.closeTries",
        u64::from(d.close_tries),
        0,
        "tries (0 = forever)",
    )?;
    cfg.close_tries = u32::try_from(tries).unwrap_or(u32::MAX);
    cfg.retry_interval_secs =
        keys.number("hdfs.retryInterval", d.retry_interval_secs, 0, "seconds")?;

    keys.document_default("hdfs.fileType", "SequenceFile");
    keys.document_default("hdfs.writeFormat", "Writable");
    keys.document_default("hdfs.compressionType", "BLOCK");
    let file_type = match keys.get("hdfs.fileType") {
        None => d.format.file_type,
        Some(v) => match v.value.parse::<FileType>() {
            Ok(t) => t,
            Err(_) => {
                return Err(keys.bad(
                    "hdfs.fileType",
                    &v,
                    "SequenceFile, DataStream or CompressedStream",
                ))
            }
        },
    };
    let write_format = match keys.get("hdfs.writeFormat") {
        None => d.format.write_format,
        Some(v) => match v.value.parse::<WriteFormat>() {
            Ok(f) => f,
            Err(_) => return Err(keys.bad("hdfs.writeFormat", &v, "Writable or Text")),
        },
    };
    let codec = match keys.get("hdfs.codeC") {
        None => d.format.codec,
        Some(v) => match Codec::from_flume_name(&v.value) {
            Ok(c) => c,
            Err(e) => {
                return Err(keys.unsupported(
                    "hdfs.codeC",
                    v.line,
                    format!("the codec `{}`", v.value),
                    e.to_string(),
                ))
            }
        },
    };
    let seq_compression = match keys.get("hdfs.compressionType") {
        None => d.format.seq_compression,
        Some(v) => match v.value.to_ascii_lowercase().as_str() {
            "block" => SeqCompression::Block,
            "record" => SeqCompression::Record,
            _ => return Err(keys.bad("hdfs.compressionType", &v, "BLOCK or RECORD")),
        },
    };
    cfg.format = FormatSpec {
        file_type,
        write_format,
        codec,
        seq_compression,
        serializer: d.format.serializer,
    };
    if let Err(e) = cfg.format.validate() {
        let key = if keys.has("hdfs.codeC").is_some() {
            "hdfs.codeC"
        } else {
            "hdfs.fileType"
        };
        let line = keys.line_of(key);
        return Err(keys.unsupported(key, line, e.to_string(), "See docs/CONFIG.md, hdfs sink"));
    }
    // Flume reads the serializer keys without the `hdfs.` prefix, and only for streams.
    cfg.format.serializer = serializer::parse(keys, &serializer::HDFS_KEYS)?;
    if file_type == FileType::SequenceFile {
        if let Some(line) = keys.has("serializer") {
            keys.warn(
                line,
                "serializer",
                WarningKind::IgnoredKey {
                    reason: "hdfs.fileType = SequenceFile writes hdfs.writeFormat records; the \
                             serializer is used by DataStream and CompressedStream"
                        .into(),
                },
            );
        }
    }

    if keys.boolean("hdfs.round", false)? {
        let value = keys.number("hdfs.roundValue", 1, 1, "units")?;
        keys.document_default("hdfs.roundUnit", "second");
        let unit = match keys.get("hdfs.roundUnit") {
            None => RoundUnit::Second,
            Some(v) => match RoundUnit::parse(&v.value) {
                Ok(u) => u,
                Err(_) => return Err(keys.bad("hdfs.roundUnit", &v, "second, minute or hour")),
            },
        };
        match Rounding::new(i64::try_from(value).unwrap_or(i64::MAX), unit) {
            Ok(r) => cfg.round = Some(r),
            Err(e) => return Err(keys.bad_effective("hdfs.roundValue", value, e.to_string())),
        }
    } else {
        keys.ignore("hdfs.roundValue", "hdfs.round is not true");
        keys.ignore("hdfs.roundUnit", "hdfs.round is not true");
    }
    if let Some(v) = keys.get("hdfs.timeZone") {
        if let Err(e) = hpath::parse_time_zone(&v.value) {
            return Err(keys.bad("hdfs.timeZone", &v, format!("a time zone name: {e}")));
        }
        cfg.time_zone = Some(v.value);
    }
    cfg.use_local_timestamp = keys.boolean("hdfs.useLocalTimeStamp", d.use_local_timestamp)?;
    keys.document_default("hdfs.sync", "hsync");
    cfg.sync = match keys.get("hdfs.sync") {
        None => d.sync,
        Some(v) => match v.value.to_ascii_lowercase().as_str() {
            "hsync" => SyncMode::Hsync,
            "none" => SyncMode::None,
            _ => return Err(keys.bad("hdfs.sync", &v, "hsync or none")),
        },
    };
    for (key, v) in keys.take_prefixed("hdfs.config.") {
        let name = key.trim_start_matches("hdfs.config.").to_string();
        cfg.hadoop_config.push((name, v.value));
    }
    for key in [
        "hdfs.kerberosPrincipal",
        "hdfs.kerberosKeytab",
        "hdfs.proxyUser",
    ] {
        if let Some(v) = keys.get(key) {
            return Err(keys.unsupported(
                key,
                v.line,
                "Kerberos and proxy users",
                "Remove the key; flumen's HDFS sink connects as HADOOP_USER_NAME (or the OS user)",
            ));
        }
    }
    for key in [
        "hdfs.threadsPoolSize",
        "hdfs.rollTimerPoolSize",
        "hdfs.minBlockReplicas",
    ] {
        keys.ignore(
            key,
            "flumen's HDFS sink has no thread pools and leaves replication to HDFS",
        );
    }
    Ok(Box::new(cfg))
}
