//! Flume-compatible configuration: a Java-properties file read as Flume reads it, turned into
//! a typed [`AgentConfig`] for one agent.
//!
//! ```text
//! a1.sources = r1
//! a1.channels = c1
//! a1.sinks = k1
//! a1.sources.r1.type = netcat
//! a1.sources.r1.bind = 127.0.0.1
//! a1.sources.r1.port = 44444
//! a1.sources.r1.channels = c1
//! a1.channels.c1.type = file
//! a1.sinks.k1.type = logger
//! a1.sinks.k1.channel = c1
//! ```
//!
//! Layers: `properties` reads the text exactly as `java.util.Properties::load` does (keys,
//! values, escapes, continuations, line numbers, later duplicates winning); `subst` replaces
//! `${env:NAME}` in values (Flume 1.10+); `build` selects the agent, trims values (as Flume
//! does), maps Flume's keys, type aliases and class names onto our components and checks them.
//!
//! Where Flume silently drops a misconfigured component or ignores a mistake, this module
//! either stops start-up with a [`ConfigError`] naming the file, line and key, or returns a
//! [`ConfigWarning`] the runtime logs. docs/CONFIG.md lists every component, key and default.

use std::path::{Path, PathBuf};

use crate::channel::file::FileChannelConfig;
use crate::channel::memory::MemoryChannelConfig;

mod build;
mod error;
mod properties;
mod subst;
#[cfg(test)]
mod tests;

pub use build::GLOBAL_SSL;
pub use error::{ConfigError, ConfigWarning, WarningKind};

/// Where channel directories go when `checkpointDir`/`dataDirs` are unset:
/// `./flumen-data/<channel>/checkpoint` and `./flumen-data/<channel>/data` (Flume uses
/// `~/.flume/file-channel/{checkpoint,data}`, shared by every channel that leaves them unset).
pub const DEFAULT_DATA_ROOT: &str = "./flumen-data";

/// One agent's components, each list in the order of `<agent>.sources`, `.channels`, `.sinks`.
#[derive(Clone, Debug, PartialEq)]
pub struct AgentConfig {
    pub name: String,
    pub sources: Vec<SourceConfig>,
    pub channels: Vec<ChannelConfig>,
    pub sinks: Vec<SinkConfig>,
}

impl AgentConfig {
    /// The channel called `name`.
    pub fn channel(&self, name: &str) -> Option<&ChannelConfig> {
        self.channels.iter().find(|c| c.name == name)
    }
}

/// A source (`<agent>.sources.<name>.*`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceConfig {
    pub name: String,
    /// `channels`: where every event goes (the replicating selector), in the order written.
    pub channels: Vec<String>,
    pub kind: SourceKind,
    /// `interceptors` and `interceptors.<name>.*`: applied to every event, in list order
    /// (empty when the source has none).
    pub interceptors: Vec<InterceptorConfig>,
}

/// One interceptor of a source (`<agent>.sources.<source>.interceptors.<name>.*`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InterceptorConfig {
    pub name: String,
    pub kind: InterceptorKind,
}

/// The kinds of interceptor, with their settings (Flume key and default in each field's doc).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InterceptorKind {
    /// `timestamp` / `org.apache.flume.interceptor.TimestampInterceptor$Builder`: the time
    /// the event passed, in milliseconds since the epoch.
    Timestamp {
        /// `headerName` (default `timestamp`).
        header_name: String,
        /// `preserveExisting` (default false): keep a header the event already has.
        preserve_existing: bool,
    },
    /// `host` / `org.apache.flume.interceptor.HostInterceptor$Builder`: the agent host's
    /// address or name.
    Host {
        /// `hostHeader` (default `host`).
        host_header: String,
        /// `useIP` (default true): the address; false: the host name.
        use_ip: bool,
        /// `preserveExisting` (default false).
        preserve_existing: bool,
    },
    /// `static` / `org.apache.flume.interceptor.StaticInterceptor$Builder`: a fixed header.
    Static {
        /// `key` (default `key`).
        key: String,
        /// `value` (default `value`).
        value: String,
        /// `preserveExisting` (default true).
        preserve_existing: bool,
    },
}

impl InterceptorKind {
    /// The type alias, for logs.
    pub fn type_name(&self) -> &'static str {
        match self {
            InterceptorKind::Timestamp { .. } => "timestamp",
            InterceptorKind::Host { .. } => "host",
            InterceptorKind::Static { .. } => "static",
        }
    }
}

/// The kinds of source, with their settings (Flume key and default in each field's doc).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SourceKind {
    /// `seq` / `org.apache.flume.source.SequenceGeneratorSource`: events whose bodies are 0, 1,
    /// 2, ... as decimal text.
    Seq {
        /// `totalEvents`: stop after this many (default: no limit).
        total_events: Option<u64>,
        /// `batchSize` (default 1).
        batch_size: usize,
    },
    /// `netcat` / `org.apache.flume.source.NetcatSource`: one event per line received on a TCP
    /// socket.
    Netcat {
        /// `bind` (required): address to listen on.
        bind: String,
        /// `port` (required).
        port: u16,
        /// `max-line-length` (default 512 bytes, newline included, as Flume counts it): a longer
        /// line is refused with a `FAILED` reply, as Flume does, and not put.
        max_line_length: usize,
        /// `ack-every-event` (default true): answer "OK" to every line.
        ack_every_event: bool,
    },
    /// `avro` / `org.apache.flume.source.AvroSource`: Flume's Avro RPC (what an avro sink or
    /// the Flume SDK's `RpcClient` sends), one connection per client.
    Avro {
        /// `bind` (required): address to listen on.
        bind: String,
        /// `port` (required).
        port: u16,
        /// `threads` (Flume's worker-thread cap; accepted for compatibility): flumen serves
        /// each connection on its own thread, up to `max_connections`.
        threads: Option<usize>,
        /// `max-connections` (flumen's; default 256): connections beyond are accepted and
        /// closed at once, with a log line.
        max_connections: usize,
        /// `max-frame-bytes` (flumen's; default 64 MiB): the largest request a client may
        /// send; a larger one closes its connection.
        max_frame_bytes: u64,
        /// `compression-type = deflate`: the `compression-level` (0-9, default 6); `None` for
        /// `compression-type = none` (the default).
        deflate: Option<u32>,
        /// `ipFilter = true` with its `ipFilterRules`; `None` for `ipFilter = false` (the
        /// default). Checked on every accepted connection; a denied peer is closed at once.
        ip_filter: Option<crate::source::ip_filter::IpFilter>,
        /// `idle-timeout` (flumen's; default 60 s): a client that leaves a request half sent
        /// (or a TLS handshake unfinished) this long is logged and disconnected. Idle time
        /// between requests is not limited.
        idle_timeout_secs: u64,
        /// `ssl = true`: the keystore (or `ssl-cert`/`ssl-key`) and the protocol and cipher
        /// suite lists; `None` for `ssl = false` (the default). Read at start-up.
        ssl: Option<crate::avro::tls::ServerTls>,
    },
    /// `exec` / `org.apache.flume.source.ExecSource`: one event per line of a command's stdout.
    Exec {
        /// `command` (required).
        command: String,
        /// `shell` (default none: the command is split on whitespace and run directly), e.g.
        /// `/bin/sh -c`.
        shell: Option<String>,
        /// `restart` (default false): run the command again when it exits.
        restart: bool,
        /// `restartThrottle` (default 10000 ms): wait before restarting.
        restart_throttle_ms: u64,
        /// `batchSize` (default 20).
        batch_size: usize,
        /// `batchTimeout` (default 3000 ms): put a partial batch after this long.
        batch_timeout_ms: u64,
        /// `logStdErr` (default false): log the command's stderr.
        log_stderr: bool,
    },
    /// `stress` / `org.apache.flume.source.StressSource`: events of `size` bytes each, as fast
    /// as the channel takes them (a load generator).
    Stress {
        /// `size` (default 500): body bytes per event.
        size: usize,
        /// `maxTotalEvents` (default -1 = no limit): stop after this many.
        max_total_events: Option<u64>,
        /// `batchSize` (default 1).
        batch_size: usize,
        /// `maxEventsPerSecond` (default 0 = no limit): put at most this many events a second.
        max_events_per_second: u64,
    },
    /// `stdin` (ours, not in Flume): one event per line of standard input.
    Stdin {
        /// `batchSize` (default 100).
        batch_size: usize,
    },
}

impl SourceKind {
    /// Events per channel transaction, for the sources that batch.
    pub fn batch_size(&self) -> Option<usize> {
        match self {
            SourceKind::Seq { batch_size, .. }
            | SourceKind::Stress { batch_size, .. }
            | SourceKind::Exec { batch_size, .. }
            | SourceKind::Stdin { batch_size } => Some(*batch_size),
            SourceKind::Netcat { .. } | SourceKind::Avro { .. } => None,
        }
    }

    /// The type alias, for logs.
    pub fn type_name(&self) -> &'static str {
        match self {
            SourceKind::Seq { .. } => "seq",
            SourceKind::Stress { .. } => "stress",
            SourceKind::Netcat { .. } => "netcat",
            SourceKind::Avro { .. } => "avro",
            SourceKind::Exec { .. } => "exec",
            SourceKind::Stdin { .. } => "stdin",
        }
    }
}

/// A channel (`<agent>.channels.<name>.*`).
#[derive(Clone, Debug, PartialEq)]
pub struct ChannelConfig {
    pub name: String,
    pub kind: ChannelKind,
}

/// The kinds of channel.
#[derive(Clone, Debug)]
pub enum ChannelKind {
    /// `file` / `org.apache.flume.channel.file.FileChannel`.
    File(FileChannelConfig),
    /// `memory` / `org.apache.flume.channel.MemoryChannel`.
    Memory(MemoryChannelConfig),
}

impl ChannelKind {
    /// `transactionCapacity`: the largest batch a source or sink may use with this channel.
    pub fn transaction_capacity(&self) -> usize {
        match self {
            ChannelKind::File(f) => f.transaction_capacity,
            ChannelKind::Memory(m) => m.transaction_capacity,
        }
    }

    /// The type alias, for logs.
    pub fn type_name(&self) -> &'static str {
        match self {
            ChannelKind::File(_) => "file",
            ChannelKind::Memory(_) => "memory",
        }
    }
}

/// Field-by-field, since `FileChannelConfig` does not implement `PartialEq`.
impl PartialEq for ChannelKind {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (ChannelKind::Memory(a), ChannelKind::Memory(b)) => a == b,
            (ChannelKind::File(a), ChannelKind::File(b)) => {
                let FileChannelConfig {
                    checkpoint_dir,
                    data_dirs,
                    capacity,
                    byte_capacity,
                    transaction_capacity,
                    keep_alive,
                    max_file_size,
                    minimum_required_space,
                    checkpoint_interval,
                    fsync,
                    io,
                    direct_io,
                    spare_segments,
                    corruption_policy,
                } = a;
                *checkpoint_dir == b.checkpoint_dir
                    && *data_dirs == b.data_dirs
                    && *capacity == b.capacity
                    && *byte_capacity == b.byte_capacity
                    && *transaction_capacity == b.transaction_capacity
                    && *keep_alive == b.keep_alive
                    && *max_file_size == b.max_file_size
                    && *minimum_required_space == b.minimum_required_space
                    && *checkpoint_interval == b.checkpoint_interval
                    && *fsync == b.fsync
                    && *io == b.io
                    && *direct_io == b.direct_io
                    && *spare_segments == b.spare_segments
                    && *corruption_policy == b.corruption_policy
            }
            _ => false,
        }
    }
}

/// A sink (`<agent>.sinks.<name>.*`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SinkConfig {
    pub name: String,
    /// `channel` (singular): the one channel this sink drains.
    pub channel: String,
    pub kind: SinkKind,
}

/// The kinds of sink.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SinkKind {
    /// `logger` / `org.apache.flume.sink.LoggerSink`: logs each event at INFO.
    Logger {
        /// `maxBytesToLog` (default 16): body bytes shown per event.
        max_bytes_to_log: usize,
    },
    /// `null` / `org.apache.flume.sink.NullSink`: takes events and discards them.
    Null {
        /// `batchSize` (default 100).
        batch_size: usize,
    },
    /// `file_roll` / `org.apache.flume.sink.RollingFileSink`: writes events to files in a
    /// directory, starting a new file every `roll_interval_secs`.
    FileRoll {
        /// `sink.directory` (required).
        directory: PathBuf,
        /// `sink.rollInterval` (default 30 s; 0 = never roll).
        roll_interval_secs: u64,
        /// `sink.pathManager.prefix` (default empty).
        prefix: String,
        /// `sink.pathManager.extension` (default empty).
        extension: String,
        /// `sink.batchSize`, or `batchSize` (default 100).
        batch_size: usize,
        /// `sink.serializer` (default and only: TEXT).
        serializer: FileRollSerializer,
    },
    /// `hdfs` / `org.apache.flume.sink.hdfs.HDFSEventSink`: writes bucketed, rolled files to
    /// HDFS or a local path.
    Hdfs(Box<crate::sink::hdfs::HdfsSinkConfig>),
    /// `avro` / `org.apache.flume.sink.AvroSink`: sends batches to an avro source over Flume's
    /// Avro RPC (`appendBatch`).
    Avro {
        /// `hostname` (required).
        hostname: String,
        /// `port` (required).
        port: u16,
        /// `batch-size` (default 100): events per take and per `appendBatch`.
        batch_size: usize,
        /// `connect-timeout` (default 20000 ms).
        connect_timeout_ms: u64,
        /// `request-timeout` (default 20000 ms).
        request_timeout_ms: u64,
        /// `reset-connection-interval` (default 0 = never): reconnect once the connection is
        /// this many seconds old.
        reset_connection_interval_secs: u64,
        /// `compression-type = deflate`: the `compression-level` (0-9, default 6); `None` for
        /// `compression-type = none` (the default).
        deflate: Option<u32>,
        /// `ssl = true`: whom to trust (`trust-all-certs`, `truststore`, else the system's CA
        /// roots) and the protocol and cipher suite lists; `None` for `ssl = false`.
        ssl: Option<crate::avro::tls::ClientTls>,
    },
}

impl SinkKind {
    /// Events per channel transaction, for the sinks that batch (the logger takes one event
    /// per transaction, as Flume's does).
    pub fn batch_size(&self) -> Option<usize> {
        match self {
            SinkKind::Null { batch_size } | SinkKind::FileRoll { batch_size, .. } => {
                Some(*batch_size)
            }
            SinkKind::Hdfs(h) => Some(h.batch_size),
            SinkKind::Avro { batch_size, .. } => Some(*batch_size),
            SinkKind::Logger { .. } => None,
        }
    }

    /// The type alias, for logs.
    pub fn type_name(&self) -> &'static str {
        match self {
            SinkKind::Logger { .. } => "logger",
            SinkKind::Null { .. } => "null",
            SinkKind::FileRoll { .. } => "file_roll",
            SinkKind::Hdfs(_) => "hdfs",
            SinkKind::Avro { .. } => "avro",
        }
    }
}

/// How the file_roll sink writes an event (`sink.serializer`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FileRollSerializer {
    /// `TEXT`: the body, then a newline (headers are not written).
    #[default]
    Text,
}

/// Reads `path` and builds agent `agent` (Flume's `--name`). The text is read as UTF-8, or as
/// ISO-8859-1 (what Java's `Properties.load(InputStream)` assumes) when it is not valid UTF-8.
pub fn load(path: &Path, agent: &str) -> Result<(AgentConfig, Vec<ConfigWarning>), ConfigError> {
    load_with_env(path, agent, &|name| std::env::var(name).ok())
}

/// [`load`] with the environment supplied by the caller (the agent adds Flume's global SSL
/// system properties given as `-D`).
pub fn load_with_env(
    path: &Path,
    agent: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(AgentConfig, Vec<ConfigWarning>), ConfigError> {
    let file = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| ConfigError::Io {
        file: file.clone(),
        source,
    })?;
    let text = match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => e.into_bytes().iter().map(|&b| char::from(b)).collect(),
    };
    parse_with_env(&text, &file, agent, env)
}

/// Builds agent `agent` from properties `text`; `source_name` names the text in messages
/// (usually the file path). `${env:NAME}` reads the process environment.
pub fn parse(
    text: &str,
    source_name: &str,
    agent: &str,
) -> Result<(AgentConfig, Vec<ConfigWarning>), ConfigError> {
    parse_with_env(text, source_name, agent, &|name| std::env::var(name).ok())
}

/// [`parse`] with the environment supplied by the caller (tests).
pub(crate) fn parse_with_env(
    text: &str,
    source_name: &str,
    agent: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(AgentConfig, Vec<ConfigWarning>), ConfigError> {
    let props = properties::parse(text).map_err(|e| ConfigError::Syntax {
        file: source_name.to_string(),
        line: e.line,
        message: e.message,
    })?;
    build::build(&props, source_name, agent, env)
}

/// The configuration `flumen` runs when given no file: the same as [`embedded_default`].
pub const EMBEDDED_DEFAULT_PROPERTIES: &str = "\
# flumen's built-in configuration, used when no --conf-file is given.
# netcat on 127.0.0.1:44444 -> file channel under ./flumen-data -> hdfs sink writing plain
# text files (DataStream) into the local directory ./flumen-data/out; point hdfs.path at
# hdfs://namenode:8020/... to write to HDFS instead.
a1.sources = r1
a1.channels = c1
a1.sinks = k1

a1.sources.r1.type = netcat
a1.sources.r1.bind = 127.0.0.1
a1.sources.r1.port = 44444
a1.sources.r1.channels = c1

a1.channels.c1.type = file
a1.channels.c1.checkpointDir = ./flumen-data/checkpoint
a1.channels.c1.dataDirs = ./flumen-data/data

a1.sinks.k1.type = hdfs
a1.sinks.k1.hdfs.path = ./flumen-data/out
a1.sinks.k1.hdfs.fileType = DataStream
a1.sinks.k1.hdfs.rollSize = 134217728
a1.sinks.k1.hdfs.rollCount = 0
a1.sinks.k1.channel = c1
";

/// Agent `a1`: a netcat source on 127.0.0.1:44444 into a file channel (checkpoints in
/// `./flumen-data/checkpoint`, data in `./flumen-data/data`, other settings default), drained
/// by an hdfs sink writing DataStream files into the local directory `./flumen-data/out`
/// (rolled every 30 s or 128 MiB). Equal to what
/// [`parse`] makes of [`EMBEDDED_DEFAULT_PROPERTIES`].
pub fn embedded_default() -> AgentConfig {
    AgentConfig {
        name: "a1".into(),
        sources: vec![SourceConfig {
            name: "r1".into(),
            channels: vec!["c1".into()],
            kind: SourceKind::Netcat {
                bind: "127.0.0.1".into(),
                port: 44444,
                max_line_length: 512,
                ack_every_event: true,
            },
            interceptors: Vec::new(),
        }],
        channels: vec![ChannelConfig {
            name: "c1".into(),
            kind: ChannelKind::File(FileChannelConfig::new(Path::new(DEFAULT_DATA_ROOT))),
        }],
        sinks: vec![SinkConfig {
            name: "k1".into(),
            channel: "c1".into(),
            kind: SinkKind::Hdfs(Box::new({
                let mut h = crate::sink::hdfs::HdfsSinkConfig::new("./flumen-data/out");
                h.format.file_type = crate::sink::hdfs::format::FileType::DataStream;
                h.roll_size = 134_217_728;
                h.roll_count = 0;
                h
            })),
        }],
    }
}
