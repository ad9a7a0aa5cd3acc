//! The keys Apache Flume 1.11 reads, per component type, as data: so that a key flumen does not
//! read is reported for what it is. A key Flume reads for that very type is "Flume's key, not
//! implemented by flumen" with what happens instead ([`FlumeKey::note`]); a key Flume reads
//! only for another type of the same kind (`kafka.topic` on a memory channel, a leftover of a
//! changed `type`) says whose key it is; only a key Flume does not know either gets a
//! nearest-key guess ([`super::Keys::finish`]).
//!
//! The lists come from Flume 1.11.0's sources (each component's `configure(Context)` and its
//! `*ConfigurationConstants`), plus a few keys of older Flume releases that real files still
//! carry (`hdfs.txnEventMax`). Keys flumen reads may be listed too: they never reach the
//! report, which covers unread keys only.
//!
//! Invariant: data only. Nothing here knows flumen's components; a type is matched by Flume's
//! alias or class name, which is what a Flume file says.

/// Which part of an agent a component is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Source,
    Channel,
    Sink,
    Interceptor,
}

impl Kind {
    fn word(self) -> &'static str {
        match self {
            Kind::Source => "source",
            Kind::Channel => "channel",
            Kind::Sink => "sink",
            Kind::Interceptor => "interceptor",
        }
    }
}

/// One key Flume reads. A key ending in `.` stands for every key under that prefix.
#[derive(Clone, Copy, Debug)]
pub struct FlumeKey {
    pub key: &'static str,
    /// What flumen does instead and what to do, for a key flumen does not read; empty when
    /// flumen reads it (or the generic note is right: flumen ignores it).
    pub note: &'static str,
}

/// One Flume component type and the keys it reads.
#[derive(Clone, Copy, Debug)]
pub struct FlumeComponent {
    pub kind: Kind,
    /// Flume's alias (`memory`) and class name, as a `type` may give them.
    pub names: &'static [&'static str],
    pub keys: &'static [FlumeKey],
}

const fn k(key: &'static str) -> FlumeKey {
    FlumeKey { key, note: "" }
}

const fn n(key: &'static str, note: &'static str) -> FlumeKey {
    FlumeKey { key, note }
}

/// The generic note for a key flumen does not read and no note covers.
const IGNORED: &str = "flumen ignores it and behaves as with Flume's default; remove it, or see \
                       docs/CONFIG.md for what flumen offers instead";

const SSL_SOURCE: [FlumeKey; 8] = [
    k("ssl"),
    k("keystore"),
    k("keystore-password"),
    k("keystore-type"),
    k("exclude-protocols"),
    k("include-protocols"),
    k("exclude-cipher-suites"),
    k("include-cipher-suites"),
];

const FILE_CHANNEL: &[FlumeKey] = &[
    k("checkpointDir"),
    k("dataDirs"),
    k("capacity"),
    k("transactionCapacity"),
    k("checkpointInterval"),
    k("maxFileSize"),
    k("minimumRequiredSpace"),
    k("keep-alive"),
    n(
        "backupCheckpointDir",
        "flumen's checkpoint is written atomically (a new file, then a rename) and the log can \
         always rebuild it, so there is no backup checkpoint; remove it",
    ),
    n(
        "useDualCheckpoints",
        "flumen's checkpoint is written atomically and the log can always rebuild it, so there \
         is no second checkpoint; remove it",
    ),
    n(
        "compressBackupCheckpoint",
        "flumen keeps no backup checkpoint; remove it",
    ),
    n(
        "use-log-replay-v1",
        "flumen has one replay, over its own log format; remove it",
    ),
    n(
        "use-fast-replay",
        "flumen has one replay, over its own log format; remove it",
    ),
    n(
        "checkpointOnClose",
        "flumen always writes a checkpoint when the channel closes; remove it",
    ),
    k("fsyncPerTransaction"),
    k("fsyncInterval"),
    n(
        "encryption.",
        "flumen does not encrypt the file channel; use an encrypted filesystem",
    ),
];

const MEMORY_CHANNEL: &[FlumeKey] = &[
    k("capacity"),
    k("transactionCapacity"),
    k("keep-alive"),
    k("byteCapacity"),
    k("byteCapacityBufferPercentage"),
];

const KAFKA_CHANNEL: &[FlumeKey] = &[
    k("kafka."),
    k("parseAsFlumeEvent"),
    k("pollTimeout"),
    k("defaultPartitionId"),
    k("partitionIdHeader"),
    k("migrateZookeeperOffsets"),
    k("brokerList"),
    k("topic"),
    k("groupId"),
    k("zookeeperConnect"),
    k("readSmallestOffset"),
];

const NETCAT_SOURCE: &[FlumeKey] = &[
    k("bind"),
    k("port"),
    k("max-line-length"),
    k("ack-every-event"),
    k("encoding"),
];

const EXEC_SOURCE: &[FlumeKey] = &[
    k("command"),
    k("shell"),
    k("restart"),
    k("restartThrottle"),
    k("logStdErr"),
    k("batchSize"),
    k("batchTimeout"),
    k("charset"),
];

const AVRO_SOURCE: &[FlumeKey] = &[
    k("bind"),
    k("port"),
    k("threads"),
    k("compression-type"),
    k("ipFilter"),
    k("ipFilterRules"),
    SSL_SOURCE[0],
    SSL_SOURCE[1],
    SSL_SOURCE[2],
    SSL_SOURCE[3],
    SSL_SOURCE[4],
    SSL_SOURCE[5],
    SSL_SOURCE[6],
    SSL_SOURCE[7],
];

const SYSLOG_TCP_SOURCE: &[FlumeKey] = &[
    k("host"),
    k("port"),
    k("eventSize"),
    k("keepFields"),
    k("clientIPHeader"),
    k("clientHostnameHeader"),
    n(
        "format.",
        "Flume's custom syslog formats (a Java regex and a SimpleDateFormat) are refused: flumen \
         parses RFC 5424 and RFC 3164 as Flume's built-in formats do",
    ),
    SSL_SOURCE[0],
    SSL_SOURCE[1],
    SSL_SOURCE[2],
    SSL_SOURCE[3],
    SSL_SOURCE[4],
    SSL_SOURCE[5],
    SSL_SOURCE[6],
    SSL_SOURCE[7],
];

const SYSLOG_UDP_SOURCE: &[FlumeKey] = &[
    k("host"),
    k("port"),
    k("keepFields"),
    k("clientIPHeader"),
    k("clientHostnameHeader"),
    n(
        "format.",
        "Flume's custom syslog formats (a Java regex and a SimpleDateFormat) are refused: flumen \
         parses RFC 5424 and RFC 3164 as Flume's built-in formats do",
    ),
];

const MULTIPORT_SYSLOG_SOURCE: &[FlumeKey] = &[
    k("host"),
    k("ports"),
    k("numProcessors"),
    k("eventSize"),
    k("charset.default"),
    n(
        "charset.port.",
        "read per port (`charset.port.<port>`): UTF-8, US-ASCII or ISO-8859-1",
    ),
    k("batchSize"),
    k("portHeader"),
    k("clientIPHeader"),
    k("clientHostnameHeader"),
    k("readBufferBytes"),
    k("keepFields"),
    SSL_SOURCE[0],
    SSL_SOURCE[1],
    SSL_SOURCE[2],
    SSL_SOURCE[3],
    SSL_SOURCE[4],
    SSL_SOURCE[5],
    SSL_SOURCE[6],
    SSL_SOURCE[7],
];

const HTTP_SOURCE: &[FlumeKey] = &[
    k("bind"),
    k("port"),
    k("handler"),
    n(
        "handler.",
        "read by the handler named in `handler`: handler.maxBlobLength (morphline BlobHandler), handler.mandatoryParameters (core BLOBHandler); Flume's JSONHandler reads none",
    ),
    SSL_SOURCE[0],
    SSL_SOURCE[1],
    SSL_SOURCE[2],
    SSL_SOURCE[3],
    SSL_SOURCE[4],
    SSL_SOURCE[5],
    SSL_SOURCE[6],
    SSL_SOURCE[7],
    k("enableSSL"),
    k("keystorePassword"),
    k("excludeProtocols"),
    k("QueuedThreadPool."),
    k("HttpConfiguration."),
    n(
        "SslContextFactory.",
        "read with `ssl = true` only: the protocol and cipher suite lists apply, other Jetty settings are ignored with a warning",
    ),
    k("ServerConnector."),
];

const SPOOLDIR_SOURCE: &[FlumeKey] = &[
    k("spoolDir"),
    k("fileSuffix"),
    k("deletePolicy"),
    k("fileHeader"),
    k("fileHeaderKey"),
    k("basenameHeader"),
    k("basenameHeaderKey"),
    k("includePattern"),
    k("ignorePattern"),
    k("trackerDir"),
    k("trackingPolicy"),
    k("consumeOrder"),
    k("pollDelay"),
    k("recursiveDirectorySearch"),
    k("maxBackoff"),
    k("batchSize"),
    k("inputCharset"),
    k("decodeErrorPolicy"),
    k("deserializer"),
    k("deserializer."),
    n(
        "bufferMaxLines",
        "an obsolete Flume key that Flume 1.11 ignores too; remove it",
    ),
    n(
        "bufferMaxLineLength",
        "an obsolete Flume key (use deserializer.maxLineLength); remove it",
    ),
];

const TAILDIR_SOURCE: &[FlumeKey] = &[
    k("filegroups"),
    k("filegroups."),
    k("positionFile"),
    k("headers."),
    k("idleTimeout"),
    k("writePosInterval"),
    k("batchSize"),
    k("maxBatchCount"),
    k("skipToEnd"),
    k("byteOffsetHeader"),
    k("fileHeader"),
    k("fileHeaderKey"),
    k("cachePatternMatching"),
];

const SEQ_SOURCE: &[FlumeKey] = &[k("batchSize"), k("totalEvents")];

const KAFKA_SOURCE: &[FlumeKey] = &[
    k("kafka."),
    k("batchSize"),
    k("batchDurationMillis"),
    k("useFlumeEventFormat"),
    k("setTopicHeader"),
    k("topicHeader"),
    k("migrateZookeeperOffsets"),
    k("topic"),
    k("groupId"),
    k("zookeeperConnect"),
    k("header."),
    k("backoffSleepIncrement"),
    k("maxBackoffSleep"),
];

const HDFS_SINK: &[FlumeKey] = &[
    k("hdfs.path"),
    k("hdfs.filePrefix"),
    k("hdfs.fileSuffix"),
    k("hdfs.inUsePrefix"),
    k("hdfs.inUseSuffix"),
    n(
        "hdfs.emptyInUseSuffix",
        "flumen always names an open file with hdfs.inUseSuffix (.tmp by default), so \
         downstream jobs can tell it from a closed one; remove it",
    ),
    k("hdfs.rollInterval"),
    k("hdfs.rollSize"),
    k("hdfs.rollCount"),
    k("hdfs.idleTimeout"),
    k("hdfs.batchSize"),
    k("hdfs.codeC"),
    k("hdfs.fileType"),
    k("hdfs.writeFormat"),
    k("hdfs.compressionType"),
    k("hdfs.maxOpenFiles"),
    k("hdfs.minBlockReplicas"),
    k("hdfs.callTimeout"),
    k("hdfs.threadsPoolSize"),
    k("hdfs.rollTimerPoolSize"),
    k("hdfs.kerberosPrincipal"),
    k("hdfs.kerberosKeytab"),
    k("hdfs.proxyUser"),
    k("hdfs.round"),
    k("hdfs.roundValue"),
    k("hdfs.roundUnit"),
    k("hdfs.timeZone"),
    k("hdfs.useLocalTimeStamp"),
    k("hdfs.closeTries"),
    k("hdfs.retryInterval"),
    n(
        "hdfs.useRawLocalFileSystem",
        "flumen writes local paths with its own writer, which syncs with fdatasync; remove it",
    ),
    n(
        "hdfs.txnEventMax",
        "a key of Flume 1.2 and 1.3, replaced by hdfs.batchSize and ignored by Flume 1.11 too; \
         use hdfs.batchSize",
    ),
    k("serializer"),
    k("serializer."),
];

const LOGGER_SINK: &[FlumeKey] = &[k("maxBytesToLog")];

const FILE_ROLL_SINK: &[FlumeKey] = &[
    k("sink.directory"),
    k("sink.rollInterval"),
    k("sink.serializer"),
    k("sink.serializer."),
    k("sink.pathManager"),
    k("sink.pathManager."),
    k("sink.batchSize"),
];

const AVRO_SINK: &[FlumeKey] = &[
    k("hostname"),
    k("port"),
    k("batch-size"),
    k("connect-timeout"),
    k("request-timeout"),
    k("reset-connection-interval"),
    k("compression-type"),
    k("compression-level"),
    k("ssl"),
    k("trust-all-certs"),
    k("truststore"),
    k("truststore-password"),
    k("truststore-type"),
    k("exclude-protocols"),
    k("include-protocols"),
    k("exclude-cipher-suites"),
    k("include-cipher-suites"),
    n(
        "maxIoWorkers",
        "flumen's avro sink uses one connection on the sink's own thread; remove it",
    ),
];

const THRIFT_SOURCE: &[FlumeKey] = &[
    k("bind"),
    k("port"),
    k("threads"),
    k("protocol"),
    k("ssl"),
    k("keystore"),
    k("keystore-password"),
    k("keystore-type"),
    k("exclude-protocols"),
    k("include-protocols"),
    k("exclude-cipher-suites"),
    k("include-cipher-suites"),
    k("kerberos"),
    k("agent-principal"),
    k("agent-keytab"),
];

const THRIFT_SINK: &[FlumeKey] = &[
    k("hostname"),
    k("port"),
    k("batch-size"),
    k("connect-timeout"),
    k("request-timeout"),
    k("reset-connection-interval"),
    k("protocol"),
    k("ssl"),
    k("trust-all-certs"),
    k("truststore"),
    k("truststore-password"),
    k("truststore-type"),
    k("exclude-protocols"),
    k("include-protocols"),
    k("exclude-cipher-suites"),
    k("include-cipher-suites"),
    k("kerberos"),
    k("client-principal"),
    k("client-keytab"),
    k("server-principal"),
    n(
        "maxConnections",
        "Flume's ThriftSink sets its pool to one connection whatever this says, as flumen does; remove it",
    ),
];

const KAFKA_SINK: &[FlumeKey] = &[
    k("kafka."),
    k("flumeBatchSize"),
    k("useFlumeEventFormat"),
    k("allowTopicOverride"),
    k("topicHeader"),
    k("defaultPartitionId"),
    k("partitionIdHeader"),
    k("timestampHeader"),
    k("header."),
    k("brokerList"),
    k("topic"),
    k("batchSize"),
    k("requiredAcks"),
];

/// What is said of a `serializer.*` key an HBase sink's serializer does not read.
const HBASE_SERIALIZER_KEY: &str = "not a key of the sink's HBase serializer, which ignores it \
                                    (as Flume's does); check its spelling against the \
                                    serializer's keys in docs/CONFIG.md";

/// Flume's HBaseSink and HBase2Sink (the same keys).
const HBASE_SINK: &[FlumeKey] = &[
    k("table"),
    k("columnFamily"),
    k("batchSize"),
    k("serializer"),
    n("serializer.", HBASE_SERIALIZER_KEY),
    k("kerberosPrincipal"),
    k("kerberosKeytab"),
    k("enableWal"),
    k("coalesceIncrements"),
    k("zookeeperQuorum"),
    k("znodeParent"),
];

const ASYNC_HBASE_SINK: &[FlumeKey] = &[
    k("table"),
    k("columnFamily"),
    k("batchSize"),
    k("serializer"),
    n("serializer.", HBASE_SERIALIZER_KEY),
    k("timeout"),
    k("zookeeperQuorum"),
    k("znodeParent"),
    k("enableWal"),
    k("coalesceIncrements"),
    k("maxConsecutiveFails"),
    k("async."),
];

const TIMESTAMP_INTERCEPTOR: &[FlumeKey] = &[k("preserveExisting"), k("headerName")];
const HOST_INTERCEPTOR: &[FlumeKey] = &[k("preserveExisting"), k("useIP"), k("hostHeader")];
const STATIC_INTERCEPTOR: &[FlumeKey] = &[k("preserveExisting"), k("key"), k("value")];
const REMOVE_HEADER_INTERCEPTOR: &[FlumeKey] = &[
    k("withName"),
    k("fromList"),
    k("fromListSeparator"),
    k("matching"),
];
const SEARCH_REPLACE_INTERCEPTOR: &[FlumeKey] =
    &[k("searchPattern"), k("replaceString"), k("charset")];
const REGEX_FILTER_INTERCEPTOR: &[FlumeKey] = &[k("regex"), k("excludeEvents")];
const REGEX_EXTRACTOR_INTERCEPTOR: &[FlumeKey] = &[k("regex"), k("serializers"), k("serializers.")];

/// Flume 1.11's component types and the keys each reads.
pub const COMPONENTS: &[FlumeComponent] = &[
    FlumeComponent {
        kind: Kind::Channel,
        names: &["file", "org.apache.flume.channel.file.FileChannel"],
        keys: FILE_CHANNEL,
    },
    FlumeComponent {
        kind: Kind::Channel,
        names: &["memory", "org.apache.flume.channel.MemoryChannel"],
        keys: MEMORY_CHANNEL,
    },
    FlumeComponent {
        kind: Kind::Channel,
        names: &["kafka", "org.apache.flume.channel.kafka.KafkaChannel"],
        keys: KAFKA_CHANNEL,
    },
    FlumeComponent {
        kind: Kind::Source,
        names: &["netcat", "org.apache.flume.source.NetcatSource"],
        keys: NETCAT_SOURCE,
    },
    FlumeComponent {
        kind: Kind::Source,
        names: &["exec", "org.apache.flume.source.ExecSource"],
        keys: EXEC_SOURCE,
    },
    FlumeComponent {
        kind: Kind::Source,
        names: &["avro", "org.apache.flume.source.AvroSource"],
        keys: AVRO_SOURCE,
    },
    FlumeComponent {
        kind: Kind::Source,
        names: &["syslogtcp", "org.apache.flume.source.SyslogTcpSource"],
        keys: SYSLOG_TCP_SOURCE,
    },
    FlumeComponent {
        kind: Kind::Source,
        names: &["syslogudp", "org.apache.flume.source.SyslogUDPSource"],
        keys: SYSLOG_UDP_SOURCE,
    },
    FlumeComponent {
        kind: Kind::Source,
        names: &[
            "multiport_syslogtcp",
            "org.apache.flume.source.MultiportSyslogTCPSource",
        ],
        keys: MULTIPORT_SYSLOG_SOURCE,
    },
    FlumeComponent {
        kind: Kind::Source,
        names: &["http", "org.apache.flume.source.http.HTTPSource"],
        keys: HTTP_SOURCE,
    },
    FlumeComponent {
        kind: Kind::Source,
        names: &["thrift", "org.apache.flume.source.ThriftSource"],
        keys: THRIFT_SOURCE,
    },
    FlumeComponent {
        kind: Kind::Source,
        names: &["spooldir", "org.apache.flume.source.SpoolDirectorySource"],
        keys: SPOOLDIR_SOURCE,
    },
    FlumeComponent {
        kind: Kind::Source,
        names: &["TAILDIR", "org.apache.flume.source.taildir.TaildirSource"],
        keys: TAILDIR_SOURCE,
    },
    FlumeComponent {
        kind: Kind::Source,
        names: &["seq", "org.apache.flume.source.SequenceGeneratorSource"],
        keys: SEQ_SOURCE,
    },
    FlumeComponent {
        kind: Kind::Source,
        names: &["kafka", "org.apache.flume.source.kafka.KafkaSource"],
        keys: KAFKA_SOURCE,
    },
    FlumeComponent {
        kind: Kind::Sink,
        names: &["hdfs", "org.apache.flume.sink.hdfs.HDFSEventSink"],
        keys: HDFS_SINK,
    },
    FlumeComponent {
        kind: Kind::Sink,
        names: &["logger", "org.apache.flume.sink.LoggerSink"],
        keys: LOGGER_SINK,
    },
    FlumeComponent {
        kind: Kind::Sink,
        names: &["file_roll", "org.apache.flume.sink.RollingFileSink"],
        keys: FILE_ROLL_SINK,
    },
    FlumeComponent {
        kind: Kind::Sink,
        names: &["avro", "org.apache.flume.sink.AvroSink"],
        keys: AVRO_SINK,
    },
    FlumeComponent {
        kind: Kind::Sink,
        names: &["thrift", "org.apache.flume.sink.ThriftSink"],
        keys: THRIFT_SINK,
    },
    FlumeComponent {
        kind: Kind::Sink,
        names: &["null", "org.apache.flume.sink.NullSink"],
        keys: &[],
    },
    FlumeComponent {
        kind: Kind::Sink,
        names: &["kafka", "org.apache.flume.sink.kafka.KafkaSink"],
        keys: KAFKA_SINK,
    },
    FlumeComponent {
        kind: Kind::Sink,
        names: &["hbase2", "org.apache.flume.sink.hbase2.HBase2Sink"],
        keys: HBASE_SINK,
    },
    FlumeComponent {
        kind: Kind::Sink,
        names: &["hbase", "org.apache.flume.sink.hbase.HBaseSink"],
        keys: HBASE_SINK,
    },
    FlumeComponent {
        kind: Kind::Sink,
        names: &["asynchbase", "org.apache.flume.sink.hbase.AsyncHBaseSink"],
        keys: ASYNC_HBASE_SINK,
    },
    FlumeComponent {
        kind: Kind::Interceptor,
        names: &[
            "timestamp",
            "org.apache.flume.interceptor.TimestampInterceptor$Builder",
        ],
        keys: TIMESTAMP_INTERCEPTOR,
    },
    FlumeComponent {
        kind: Kind::Interceptor,
        names: &[
            "host",
            "org.apache.flume.interceptor.HostInterceptor$Builder",
        ],
        keys: HOST_INTERCEPTOR,
    },
    FlumeComponent {
        kind: Kind::Interceptor,
        names: &[
            "static",
            "org.apache.flume.interceptor.StaticInterceptor$Builder",
        ],
        keys: STATIC_INTERCEPTOR,
    },
    FlumeComponent {
        kind: Kind::Interceptor,
        names: &[
            "remove_header",
            "org.apache.flume.interceptor.RemoveHeaderInterceptor$Builder",
        ],
        keys: REMOVE_HEADER_INTERCEPTOR,
    },
    FlumeComponent {
        kind: Kind::Interceptor,
        names: &[
            "search_replace",
            "org.apache.flume.interceptor.SearchAndReplaceInterceptor$Builder",
        ],
        keys: SEARCH_REPLACE_INTERCEPTOR,
    },
    FlumeComponent {
        kind: Kind::Interceptor,
        names: &[
            "regex_filter",
            "org.apache.flume.interceptor.RegexFilteringInterceptor$Builder",
        ],
        keys: REGEX_FILTER_INTERCEPTOR,
    },
    FlumeComponent {
        kind: Kind::Interceptor,
        names: &[
            "regex_extractor",
            "org.apache.flume.interceptor.RegexExtractorInterceptor$Builder",
        ],
        keys: REGEX_EXTRACTOR_INTERCEPTOR,
    },
];

/// What Flume makes of a key flumen did not read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FlumeKnows {
    /// Flume reads it for this very type; `note` says what flumen does instead.
    ThisType { note: &'static str },
    /// Flume reads it only for `other` (`kafka`), another type of the same kind.
    OtherType {
        other: &'static str,
        kind: &'static str,
    },
}

fn matches(k: &FlumeKey, key: &str) -> bool {
    if k.key.ends_with('.') {
        key.starts_with(k.key)
    } else {
        k.key == key
    }
}

/// What Flume 1.11 makes of `key` on a `kind` component whose `type` is `type_name` (alias or
/// class, any case for an alias); `None` when Flume does not read it either, or has no such
/// type.
pub fn lookup(kind: Kind, type_name: &str, key: &str) -> Option<FlumeKnows> {
    let is = |c: &FlumeComponent| {
        c.names
            .iter()
            .any(|n| n.eq_ignore_ascii_case(type_name) || *n == type_name)
    };
    let of_kind = || COMPONENTS.iter().filter(|c| c.kind == kind);
    // A type Flume does not have (flumen's own `stress`) has no Flume keys to compare with.
    let c = of_kind().find(|c| is(c))?;
    if let Some(fk) = c.keys.iter().find(|fk| matches(fk, key)) {
        let note = if fk.note.is_empty() { IGNORED } else { fk.note };
        return Some(FlumeKnows::ThisType { note });
    }
    of_kind()
        .filter(|c| !is(c))
        .find(|c| c.keys.iter().any(|fk| matches(fk, key)))
        .map(|c| FlumeKnows::OtherType {
            other: c.names[0],
            kind: kind.word(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_of_this_type_of_another_type_or_of_none() {
        assert_eq!(
            lookup(Kind::Sink, "hdfs", "hdfs.txnEventMax"),
            Some(FlumeKnows::ThisType {
                note: HDFS_SINK
                    .iter()
                    .find(|k| k.key == "hdfs.txnEventMax")
                    .map(|k| k.note)
                    .unwrap_or_default()
            })
        );
        assert!(matches!(
            lookup(Kind::Sink, "org.apache.flume.sink.hdfs.HDFSEventSink", "hdfs.emptyInUseSuffix"),
            Some(FlumeKnows::ThisType { note }) if note.contains("inUseSuffix")
        ));
        assert_eq!(
            lookup(Kind::Channel, "memory", "kafka.bootstrap.servers"),
            Some(FlumeKnows::OtherType {
                other: "kafka",
                kind: "channel"
            })
        );
        assert_eq!(
            lookup(Kind::Channel, "memory", "checkpointDir"),
            Some(FlumeKnows::OtherType {
                other: "file",
                kind: "channel"
            })
        );
        // Taildir's alias is upper case in Flume; a file may write it in any case.
        assert!(matches!(
            lookup(Kind::Source, "taildir", "cachePatternMatching"),
            Some(FlumeKnows::ThisType { .. })
        ));
        assert_eq!(lookup(Kind::Channel, "memory", "capacty"), None);
        // Kinds do not mix: `hdfs.path` is no source's key.
        assert_eq!(lookup(Kind::Source, "exec", "hdfs.path"), None);
        // A type Flume lacks is compared with nothing.
        assert_eq!(lookup(Kind::Source, "stress", "bind"), None);
    }

    #[test]
    fn every_type_names_its_alias_first_and_no_key_twice() {
        for c in COMPONENTS {
            assert!(!c.names[0].contains('.'), "{:?}", c.names);
            for (i, a) in c.keys.iter().enumerate() {
                assert!(
                    !c.keys[i + 1..].iter().any(|b| b.key == a.key),
                    "{} twice in {:?}",
                    a.key,
                    c.names
                );
            }
        }
    }
}
