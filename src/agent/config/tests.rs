//! Tests of the whole configuration path: text in, `AgentConfig` or `ConfigError` out,
//! through the topology, the registry and every component's own parser.

use std::path::PathBuf;
use std::time::Duration;

use super::*;
use crate::channel::file::{CorruptionPolicy, FileChannelConfig, FsyncPolicy};
use crate::channel::memory::MemoryChannelConfig;
use crate::config::{WarningKind, EMBEDDED_DEFAULT_PROPERTIES};
use crate::interceptor::host::HostConfig;
use crate::interceptor::static_header::StaticConfig;
use crate::interceptor::timestamp::TimestampConfig;
use crate::io::IoKind;
use crate::sink::avro::AvroSinkConfig;
use crate::sink::file_roll::FileRollConfig;
use crate::sink::hdfs::HdfsSinkConfig;
use crate::sink::logger::LoggerConfig;
use crate::sink::null::NullConfig;
use crate::sink::serializer::SerializerSpec;
use crate::source::avro::AvroSourceConfig;
use crate::source::exec::ExecConfig;
use crate::source::netcat::NetcatConfig;
use crate::source::seq::SeqConfig;
use crate::source::stdin::StdinConfig;
use crate::source::stress::StressConfig;

const F: &str = "flume.conf";

fn env(name: &str) -> Option<String> {
    match name {
        "NC_PORT" => Some("5140".into()),
        "CH_ROOT" => Some("/srv/flumen".into()),
        _ => None,
    }
}

fn ok(text: &str) -> (AgentConfig, Vec<ConfigWarning>) {
    match parse_with_env(text, F, "a1", &env) {
        Ok(r) => r,
        Err(e) => panic!("expected a config, got: {e}"),
    }
}

fn err(text: &str) -> ConfigError {
    match parse_with_env(text, F, "a1", &env) {
        Ok((cfg, _)) => panic!("expected an error, got {cfg:#?}"),
        Err(e) => e,
    }
}

/// Asserts the error's message names `file:line` and `key`.
fn names(e: &ConfigError, line: usize, key: &str) {
    let msg = e.to_string();
    assert!(
        msg.starts_with(&format!("{F}:{line}:")),
        "wrong line in: {msg}"
    );
    assert!(
        msg.contains(&format!("`{key}`")),
        "`{key}` not named in: {msg}"
    );
    assert_eq!(e.line(), Some(line));
}

fn file_channel(cfg: &AgentConfig, name: &str) -> FileChannelConfig {
    let c = cfg.channel(name).expect("channel exists");
    c.settings::<FileChannelConfig>()
        .unwrap_or_else(|| panic!("not a file channel: {c:?}"))
        .clone()
}

fn memory_channel(cfg: &AgentConfig, name: &str) -> MemoryChannelConfig {
    let c = cfg.channel(name).expect("channel exists");
    c.settings::<MemoryChannelConfig>()
        .unwrap_or_else(|| panic!("not a memory channel: {c:?}"))
        .clone()
}

/// Source `i`'s settings, which must be of type `T`.
fn source<T: Clone + 'static>(cfg: &AgentConfig, i: usize) -> T {
    let s = &cfg.sources[i];
    s.settings::<T>()
        .unwrap_or_else(|| panic!("source {i} is not a {}: {s:?}", std::any::type_name::<T>()))
        .clone()
}

/// Sink `i`'s settings, which must be of type `T`.
fn sink<T: Clone + 'static>(cfg: &AgentConfig, i: usize) -> T {
    let s = &cfg.sinks[i];
    s.settings::<T>()
        .unwrap_or_else(|| panic!("sink {i} is not a {}: {s:?}", std::any::type_name::<T>()))
        .clone()
}

/// The registered aliases of a kind, as error messages list them.
fn aliases<S: ?Sized>(types: &[crate::config::Registered<S>]) -> String {
    let v: Vec<&str> = types.iter().map(|t| t.alias).collect();
    v.join(", ")
}

/// Interceptor `i`'s settings, which must be of type `T`.
fn interceptor<T: Clone + 'static>(ics: &[InterceptorConfig], i: usize) -> T {
    let c = &ics[i];
    c.settings::<T>()
        .unwrap_or_else(|| {
            panic!(
                "interceptor {i} is not a {}: {c:?}",
                std::any::type_name::<T>()
            )
        })
        .clone()
}

fn warnings_of(ws: &[ConfigWarning], pred: impl Fn(&WarningKind) -> bool) -> Vec<&ConfigWarning> {
    ws.iter().filter(|w| pred(&w.kind)).collect()
}

/// A memory channel c1 and a null sink around whatever source lines the test adds.
fn with_source(source_lines: &str) -> String {
    format!(
        "a1.sources = r1\n\
         a1.channels = c1\n\
         a1.sinks = k1\n\
         a1.channels.c1.type = memory\n\
         a1.sinks.k1.type = null\n\
         a1.sinks.k1.channel = c1\n\
         {source_lines}"
    )
}

/// A netcat source r1 into c1 and whatever channel and sink lines the test adds.
fn with_channel(lines: &str) -> String {
    format!(
        "a1.sources = r1\n\
         a1.channels = c1\n\
         a1.sinks = k1\n\
         a1.sources.r1.type = netcat\n\
         a1.sources.r1.bind = 127.0.0.1\n\
         a1.sources.r1.port = 44444\n\
         a1.sources.r1.channels = c1\n\
         a1.sinks.k1.type = logger\n\
         a1.sinks.k1.channel = c1\n\
         {lines}"
    )
}

// ---------------------------------------------------------------------------------------------
// Whole files

#[test]
fn embedded_default_properties_parse_to_embedded_default() {
    let (cfg, warnings) = ok(EMBEDDED_DEFAULT_PROPERTIES);
    assert!(warnings.is_empty(), "{warnings:?}");
    let built = embedded_default().expect("the built-in configuration");
    // The same but for where each value came from.
    assert_eq!(
        format!("{cfg:?}"),
        format!("{built:?}").replace("(built-in configuration)", F)
    );
    assert_eq!(
        source::<NetcatConfig>(&cfg, 0),
        NetcatConfig::new("127.0.0.1", 44444)
    );
    let f = file_channel(&cfg, "c1");
    assert_eq!(f.checkpoint_dir, PathBuf::from("./flumen-data/checkpoint"));
    assert_eq!(f.data_dirs, vec![PathBuf::from("./flumen-data/data")]);
    let h = sink::<HdfsSinkConfig>(&cfg, 0);
    assert_eq!(h.path, "./flumen-data/out");
    assert_eq!(
        h.format.file_type,
        crate::sink::hdfs::format::FileType::DataStream
    );
    assert_eq!((h.roll_size, h.roll_count), (134_217_728, 0));
}

/// In the style of the Flume user guide: a commented file holding two agents, netcat into a
/// file channel drained by a logger.
const USER_GUIDE_STYLE: &str = r#"
# example.conf: A single-node Flume configuration

# Name the components on this agent
a1.sources = r1
a1.sinks = k1
a1.channels = c1

# Describe/configure the source
a1.sources.r1.type = netcat
a1.sources.r1.bind = localhost
a1.sources.r1.port = 44444

# Describe the sink
a1.sinks.k1.type = logger

# Use a channel which buffers events in a file
a1.channels.c1.type = file
a1.channels.c1.checkpointDir = /mnt/flume/checkpoint
a1.channels.c1.dataDirs = /mnt/flume/data, /mnt/flume2/data
a1.channels.c1.capacity = 1000000
a1.channels.c1.transactionCapacity = 10000
a1.channels.c1.checkpointInterval = 30000
a1.channels.c1.maxFileSize = 1073741824
a1.channels.c1.minimumRequiredSpace = 524288000
a1.channels.c1.keep-alive = 3

# Bind the source and sink to the channel
a1.sources.r1.channels = c1
a1.sinks.k1.channel = c1

# A second agent in the same file
agent2.sources = seqGen
agent2.channels = memoryChannel
agent2.sinks = nullSink
agent2.sources.seqGen.type = seq
agent2.sources.seqGen.totalEvents = 1000
agent2.sources.seqGen.channels = memoryChannel
agent2.channels.memoryChannel.type = memory
agent2.channels.memoryChannel.capacity = 10000
agent2.channels.memoryChannel.transactionCapacity = 100
agent2.sinks.nullSink.type = null
agent2.sinks.nullSink.channel = memoryChannel
"#;

#[test]
fn flume_user_guide_style_file_parses() {
    let (cfg, warnings) = ok(USER_GUIDE_STYLE);
    assert!(warnings.is_empty(), "{warnings:#?}");
    assert_eq!(cfg.name, "a1");
    assert_eq!(cfg.sources.len(), 1);
    assert_eq!(cfg.sources[0].name, "r1");
    assert_eq!(cfg.sources[0].channels, ["c1"]);
    assert!(cfg.sources[0].interceptors.is_empty());
    assert_eq!(
        source::<NetcatConfig>(&cfg, 0),
        NetcatConfig {
            bind: "localhost".into(),
            port: 44444,
            max_line_length: 512,
            ack_every_event: true,
            max_connections: 1024,
        }
    );
    assert_eq!(cfg.sinks.len(), 1);
    assert_eq!(
        (cfg.sinks[0].name.as_str(), cfg.sinks[0].channel.as_str()),
        ("k1", "c1")
    );
    assert_eq!(
        sink::<LoggerConfig>(&cfg, 0),
        LoggerConfig {
            max_bytes_to_log: 16
        }
    );
    let f = file_channel(&cfg, "c1");
    assert_eq!(f.checkpoint_dir, PathBuf::from("/mnt/flume/checkpoint"));
    assert_eq!(
        f.data_dirs,
        vec![
            PathBuf::from("/mnt/flume/data"),
            PathBuf::from("/mnt/flume2/data")
        ]
    );
    assert_eq!(f.capacity, 1_000_000);
    assert_eq!(f.transaction_capacity, 10_000);
    assert_eq!(f.checkpoint_interval, Duration::from_secs(30));
    assert_eq!(f.max_file_size, 1 << 30);
    assert_eq!(f.minimum_required_space, 500 << 20);
    assert_eq!(f.keep_alive, Duration::from_secs(3));
    assert_eq!(f.fsync, FsyncPolicy::EveryCommit);
}

#[test]
fn several_agents_are_selected_by_name() {
    let (cfg, warnings) = parse_with_env(USER_GUIDE_STYLE, F, "agent2", &env).expect("agent2");
    assert!(warnings.is_empty(), "{warnings:#?}");
    assert_eq!(cfg.name, "agent2");
    assert_eq!(
        source::<SeqConfig>(&cfg, 0),
        SeqConfig {
            total_events: Some(1000),
            batch_size: 1
        }
    );
    assert_eq!(memory_channel(&cfg, "memoryChannel").capacity, 10_000);
    assert_eq!(sink::<NullConfig>(&cfg, 0), NullConfig { batch_size: 100 });

    let e = parse_with_env(USER_GUIDE_STYLE, F, "a2", &env).expect_err("no a2");
    match &e {
        ConfigError::UnknownAgent { agent, found, .. } => {
            assert_eq!(agent, "a2");
            assert_eq!(found, &vec!["a1".to_string(), "agent2".to_string()]);
        }
        other => panic!("{other:?}"),
    }
    let msg = e.to_string();
    assert!(
        msg.contains("a1, agent2") && msg.contains("--name"),
        "{msg}"
    );
}

#[test]
fn components_keep_the_listed_order() {
    let text = "a1.sources = s3 s1 s2\n\
                a1.channels = cb ca\n\
                a1.sinks = kz ky\n\
                a1.sources.s1.type = seq\na1.sources.s1.channels = ca\n\
                a1.sources.s2.type = seq\na1.sources.s2.channels = ca cb\n\
                a1.sources.s3.type = stdin\na1.sources.s3.channels = cb\n\
                a1.channels.ca.type = memory\na1.channels.cb.type = memory\n\
                a1.sinks.ky.type = null\na1.sinks.ky.channel = ca\n\
                a1.sinks.kz.type = null\na1.sinks.kz.channel = cb\n";
    let (cfg, warnings) = ok(text);
    assert!(warnings.is_empty(), "{warnings:#?}");
    let names = |v: Vec<&String>| v.into_iter().cloned().collect::<Vec<_>>();
    assert_eq!(
        names(cfg.sources.iter().map(|s| &s.name).collect()),
        ["s3", "s1", "s2"]
    );
    assert_eq!(
        names(cfg.channels.iter().map(|c| &c.name).collect()),
        ["cb", "ca"]
    );
    assert_eq!(
        names(cfg.sinks.iter().map(|s| &s.name).collect()),
        ["kz", "ky"]
    );
    assert_eq!(cfg.sources[2].channels, ["ca", "cb"]);
    assert_eq!(
        source::<StdinConfig>(&cfg, 0),
        StdinConfig { batch_size: 100 }
    );
}

#[test]
fn every_properties_syntax_form_reaches_the_config() {
    let text = "a1.sources=r1\n\
                a1.channels: c1\n\
                a1.sinks k1\n\
                \t  a1.sources.r1.type\t=\tnetcat   \n\
                ! a comment\n\
                # another\n\
                \n\
                a1.sources.r1.bind = 127.0.0.1 \\\n\
                \n\
                a1.sources.r1.port = 44\\\n\
                \x20     444\n\
                a1.sources.r1.channels = \\u0063\\u0031\n\
                a1.channels.c1.type = memory\n\
                a1.sinks.k1.type = logger\r\n\
                a1.sinks.k1.channel = c1\r\n";
    let (cfg, warnings) = ok(text);
    assert!(warnings.is_empty(), "{warnings:#?}");
    assert_eq!(
        source::<NetcatConfig>(&cfg, 0),
        NetcatConfig {
            bind: "127.0.0.1".into(),
            port: 44444,
            max_line_length: 512,
            ack_every_event: true,
            max_connections: 1024,
        }
    );
    assert_eq!(cfg.sources[0].channels, ["c1"]);
}

#[test]
fn values_are_trimmed_as_flume_does() {
    // Java keeps `localhost   ` and `/out\t`; Flume (and we) trim them.
    let text = with_channel("a1.channels.c1.type = memory\n")
        .replace(
            "a1.sources.r1.bind = 127.0.0.1",
            "a1.sources.r1.bind = localhost   ",
        )
        .replace("a1.sinks.k1.type = logger", "a1.sinks.k1.type = logger \\t");
    let (cfg, _) = ok(&text);
    assert!(
        matches!(&source::<NetcatConfig>(&cfg, 0), NetcatConfig { bind, .. } if bind == "localhost")
    );
    assert!(matches!(sink::<LoggerConfig>(&cfg, 0), LoggerConfig { .. }));
}

// ---------------------------------------------------------------------------------------------
// Types

#[test]
fn flume_class_names_and_aliases_in_any_case() {
    let text = "a1.sources = r1 r2 r3\n\
                a1.channels = c1 c2\n\
                a1.sinks = k1 k2 k3\n\
                a1.sources.r1.type = org.apache.flume.source.NetcatSource\n\
                a1.sources.r1.bind = 0.0.0.0\na1.sources.r1.port = 1\na1.sources.r1.channels = c1\n\
                a1.sources.r2.type = org.apache.flume.source.SequenceGeneratorSource\n\
                a1.sources.r2.channels = c2\n\
                a1.sources.r3.type = org.apache.flume.source.ExecSource\n\
                a1.sources.r3.command = tail -F /var/log/syslog\na1.sources.r3.channels = c1\n\
                a1.channels.c1.type = org.apache.flume.channel.file.FileChannel\n\
                a1.channels.c2.type = org.apache.flume.channel.MemoryChannel\n\
                a1.sinks.k1.type = org.apache.flume.sink.LoggerSink\na1.sinks.k1.channel = c1\n\
                a1.sinks.k2.type = org.apache.flume.sink.NullSink\na1.sinks.k2.channel = c2\n\
                a1.sinks.k3.type = org.apache.flume.sink.RollingFileSink\n\
                a1.sinks.k3.sink.directory = /tmp/out\na1.sinks.k3.channel = c2\n";
    let (cfg, warnings) = ok(text);
    assert!(warnings.is_empty(), "{warnings:#?}");
    let kinds: Vec<&str> = cfg.sources.iter().map(|s| s.type_name).collect();
    assert_eq!(kinds, ["netcat", "seq", "exec"]);
    let kinds: Vec<&str> = cfg.channels.iter().map(|c| c.type_name).collect();
    assert_eq!(kinds, ["file", "memory"]);
    let kinds: Vec<&str> = cfg.sinks.iter().map(|s| s.type_name).collect();
    assert_eq!(kinds, ["logger", "null", "file_roll"]);

    // Aliases are case-insensitive, as Flume upper-cases them.
    let (cfg, _) =
        ok(&with_channel("a1.channels.c1.type = FILE\n").replace("= logger", "= Logger"));
    assert_eq!(cfg.channels[0].type_name, "file");
}

#[test]
fn unknown_types_list_our_aliases() {
    let e = err(&with_channel("a1.channels.c1.type = fiel\n"));
    names(&e, 10, "a1.channels.c1.type");
    let msg = e.to_string();
    assert!(msg.contains("file, memory"), "{msg}");
    assert!(matches!(
        e,
        ConfigError::UnknownType {
            component: "channel",
            ..
        }
    ));

    let e = err(&with_source(
        "a1.sources.r1.type = netcatt\na1.sources.r1.channels = c1\n",
    ));
    names(&e, 7, "a1.sources.r1.type");
    assert!(
        e.to_string().contains(&aliases(super::registry::SOURCES)),
        "{e}"
    );

    // Class names are case-sensitive, as in Java.
    let e = err(&with_channel(
        "a1.channels.c1.type = org.apache.flume.channel.memorychannel\n",
    ));
    assert!(
        matches!(
            e,
            ConfigError::Unsupported { .. } | ConfigError::UnknownType { .. }
        ),
        "{e}"
    );
}

#[test]
fn flume_types_we_do_not_have_are_unsupported() {
    for (text, line, key) in [
        (
            with_channel("a1.channels.c1.type = spillablememory\n"),
            10,
            "a1.channels.c1.type",
        ),
        (
            with_channel("a1.channels.c1.type = org.apache.flume.channel.jdbc.JdbcChannel\n"),
            10,
            "a1.channels.c1.type",
        ),
        (
            with_source("a1.sources.r1.type = jms\na1.sources.r1.channels = c1\n"),
            7,
            "a1.sources.r1.type",
        ),
        (
            with_channel("a1.channels.c1.type = memory\n").replace("= logger", "= hive"),
            8,
            "a1.sinks.k1.type",
        ),
        (
            with_channel("a1.channels.c1.type = memory\n").replace(
                "= logger",
                "= org.apache.flume.sink.elasticsearch.ElasticSearchSink",
            ),
            8,
            "a1.sinks.k1.type",
        ),
    ] {
        let e = err(&text);
        assert!(matches!(e, ConfigError::Unsupported { .. }), "{e:?}");
        names(&e, line, key);
        assert!(e.to_string().contains("not supported yet"), "{e}");
    }
}

// ---------------------------------------------------------------------------------------------
// File and memory channels

#[test]
fn file_channel_keys_map_to_fields() {
    let text = with_channel(
        "a1.channels.c1.type = file\n\
         a1.channels.c1.checkpointDir = /data/cp\n\
         a1.channels.c1.dataDirs = /d1,/d2 , /d3,\n\
         a1.channels.c1.capacity = 5000\n\
         a1.channels.c1.transactionCapacity = 500\n\
         a1.channels.c1.keep-alive = 7\n\
         a1.channels.c1.maxFileSize = 2147483648\n\
         a1.channels.c1.minimumRequiredSpace = 1048576\n\
         a1.channels.c1.checkpointInterval = 1500\n\
         a1.channels.c1.byteCapacity = 1000000\n\
         a1.channels.c1.fsync = interval:250\n\
         a1.channels.c1.io = uring\n\
         a1.channels.c1.corruptionPolicy = skip\n",
    );
    let (cfg, warnings) = ok(&text);
    assert!(warnings.is_empty(), "{warnings:#?}");
    let f = file_channel(&cfg, "c1");
    assert_eq!(f.checkpoint_dir, PathBuf::from("/data/cp"));
    assert_eq!(f.data_dirs, ["/d1", "/d2", "/d3"].map(PathBuf::from));
    assert_eq!(f.capacity, 5000);
    assert_eq!(f.transaction_capacity, 500);
    assert_eq!(f.keep_alive, Duration::from_secs(7));
    assert_eq!(f.max_file_size, 2 << 30);
    assert_eq!(f.minimum_required_space, 1 << 20);
    assert_eq!(f.checkpoint_interval, Duration::from_millis(1500));
    assert_eq!(f.byte_capacity, Some(1_000_000));
    assert_eq!(f.fsync, FsyncPolicy::Interval(Duration::from_millis(250)));
    assert_eq!(f.io, IoKind::Uring);
    assert_eq!(f.corruption_policy, CorruptionPolicy::Skip);
}

#[test]
fn file_channel_defaults_put_each_channel_under_flumen_data() {
    let text = "a1.sources = r1\na1.channels = c1 c2\na1.sinks = k1 k2\n\
                a1.sources.r1.type = seq\na1.sources.r1.channels = c1 c2\n\
                a1.channels.c1.type = file\na1.channels.c2.type = file\n\
                a1.channels.c2.checkpointDir = /cp2\n\
                a1.sinks.k1.type = null\na1.sinks.k1.channel = c1\n\
                a1.sinks.k2.type = null\na1.sinks.k2.channel = c2\n";
    let (cfg, warnings) = ok(text);
    assert!(warnings.is_empty(), "{warnings:#?}");
    let c1 = file_channel(&cfg, "c1");
    assert_eq!(
        c1.checkpoint_dir,
        PathBuf::from("./flumen-data/c1/checkpoint")
    );
    assert_eq!(c1.data_dirs, [PathBuf::from("./flumen-data/c1/data")]);
    let c2 = file_channel(&cfg, "c2");
    assert_eq!(c2.checkpoint_dir, PathBuf::from("/cp2"));
    assert_eq!(c2.data_dirs, [PathBuf::from("./flumen-data/c2/data")]);
    let defaults = FileChannelConfig::new(std::path::Path::new("x"));
    assert_eq!(c1.capacity, defaults.capacity);
    assert_eq!(c1.transaction_capacity, defaults.transaction_capacity);
    assert_eq!(c1.max_file_size, defaults.max_file_size);
    assert_eq!(c1.fsync, FsyncPolicy::EveryCommit);
}

#[test]
fn two_file_channels_cannot_share_a_directory() {
    let text = "a1.sources = r1\na1.channels = c1 c2\na1.sinks = k1\n\
                a1.sources.r1.type = seq\na1.sources.r1.channels = c1 c2\n\
                a1.channels.c1.type = file\na1.channels.c1.dataDirs = /d\n\
                a1.channels.c2.type = file\na1.channels.c2.dataDirs = /e,/d\n\
                a1.sinks.k1.type = null\na1.sinks.k1.channel = c1\n";
    let e = err(text);
    names(&e, 9, "a1.channels.c2.dataDirs");
    assert!(e.to_string().contains("`c1`"), "{e}");
}

#[test]
fn flume_fsync_keys_map_to_fsync_policy() {
    let fsync_of = |lines: &str| {
        let (cfg, warnings) = ok(&with_channel(&format!(
            "a1.channels.c1.type = file\n{lines}"
        )));
        (file_channel(&cfg, "c1").fsync, warnings)
    };
    let (p, w) = fsync_of("a1.channels.c1.fsyncPerTransaction = false\n");
    assert_eq!(p, FsyncPolicy::Interval(Duration::from_secs(5)));
    assert!(w.is_empty(), "{w:?}");
    let (p, w) =
        fsync_of("a1.channels.c1.fsyncPerTransaction = false\na1.channels.c1.fsyncInterval = 2\n");
    assert_eq!(p, FsyncPolicy::Interval(Duration::from_secs(2)));
    assert!(w.is_empty(), "{w:?}");
    let (p, w) = fsync_of("a1.channels.c1.fsyncPerTransaction = TRUE\n");
    assert_eq!(p, FsyncPolicy::EveryCommit);
    assert!(w.is_empty(), "{w:?}");

    // fsyncInterval alone does nothing in Flume either: say so.
    let (p, w) = fsync_of("a1.channels.c1.fsyncInterval = 2\n");
    assert_eq!(p, FsyncPolicy::EveryCommit);
    assert_eq!(w.len(), 1);
    assert_eq!(w[0].key, "a1.channels.c1.fsyncInterval");
    assert_eq!(w[0].line, 11);
    assert!(
        w[0].to_string().contains("fsyncPerTransaction = false"),
        "{}",
        w[0]
    );

    // Our `fsync` wins over Flume's keys, with a warning for each.
    let (p, w) =
        fsync_of("a1.channels.c1.fsync = never\na1.channels.c1.fsyncPerTransaction = true\n");
    assert_eq!(p, FsyncPolicy::Never);
    assert_eq!(w.len(), 1);
    assert!(matches!(w[0].kind, WarningKind::IgnoredKey { .. }));
    assert!(w[0].to_string().contains("`fsync` (line 11)"), "{}", w[0]);
}

#[test]
fn flume_keys_accepted_but_not_acted_on_warn_once_each() {
    let text = with_channel(
        "a1.channels.c1.type = file\n\
         a1.channels.c1.useDualCheckpoints = true\n\
         a1.channels.c1.backupCheckpointDir = /backup\n\
         a1.channels.c1.checkpointOnClose = false\n\
         a1.channels.c1.use-fast-replay = true\n\
         a1.channels.c1.use-log-replay-v1 = false\n\
         a1.channels.c1.compressBackupCheckpoint = true\n",
    );
    let (_, warnings) = ok(&text);
    let ignored = warnings_of(&warnings, |k| matches!(k, WarningKind::IgnoredKey { .. }));
    assert_eq!(ignored.len(), 6, "{warnings:#?}");
    assert_eq!(ignored.len(), warnings.len());
    let lines: Vec<usize> = ignored.iter().map(|w| w.line).collect();
    assert_eq!(lines, [11, 12, 13, 14, 15, 16]);
    assert!(
        ignored[2]
            .to_string()
            .contains("always checkpoints on close"),
        "{}",
        ignored[2]
    );

    let text = "a1.sources = r1\na1.channels = c1\na1.sinks = k1\n\
                a1.sources.r1.type = seq\na1.sources.r1.channels = c1\n\
                a1.channels.c1.type = memory\n\
                a1.channels.c1.capacity = 1000\n\
                a1.channels.c1.transactionCapacity = 10\n\
                a1.channels.c1.byteCapacity = 800000\n\
                a1.channels.c1.byteCapacityBufferPercentage = 20\n\
                a1.channels.c1.keep-alive = 1\n\
                a1.sinks.k1.type = null\na1.sinks.k1.channel = c1\n\
                a1.sinks.k1.batchSize = 10\n";
    let (cfg, warnings) = ok(text);
    assert_eq!(
        memory_channel(&cfg, "c1"),
        MemoryChannelConfig {
            capacity: 1000,
            transaction_capacity: 10,
            byte_capacity: Some(800_000),
            keep_alive: Duration::from_secs(1),
        }
    );
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    assert_eq!(
        warnings[0].key,
        "a1.channels.c1.byteCapacityBufferPercentage"
    );
}

#[test]
fn encryption_is_an_error() {
    let e = err(&with_channel(
        "a1.channels.c1.type = file\n\
         a1.channels.c1.encryption.activeKey = key-0\n\
         a1.channels.c1.encryption.cipherProvider = AESCTRNOPADDING\n",
    ));
    assert!(matches!(e, ConfigError::Unsupported { .. }), "{e:?}");
    names(&e, 11, "a1.channels.c1.encryption.activeKey");
    assert!(
        e.to_string()
            .contains("not supported yet: file channel encryption"),
        "{e}"
    );
}

#[test]
fn channel_bounds_are_errors_naming_the_key() {
    let e = err(&with_channel(
        "a1.channels.c1.type = file\na1.channels.c1.maxFileSize = 4294967296\n",
    ));
    assert!(matches!(e, ConfigError::BadValue { .. }), "{e:?}");
    names(&e, 11, "a1.channels.c1.maxFileSize");
    assert!(e.to_string().contains("2147483648"), "{e}");

    let e = err(&with_channel(
        "a1.channels.c1.type = file\na1.channels.c1.minimumRequiredSpace = 1000\n",
    ));
    names(&e, 11, "a1.channels.c1.minimumRequiredSpace");

    // Flume's rule transactionCapacity <= capacity, checked by the channel's own validation.
    let e = err(&with_channel(
        "a1.channels.c1.type = file\na1.channels.c1.capacity = 100\n",
    ));
    names(&e, 10, "a1.channels.c1.transactionCapacity");
    let msg = e.to_string();
    assert!(msg.contains("bad value `10000 (the default)`"), "{msg}");
    assert!(
        msg.contains("larger than capacity 100") && msg.contains("lower one"),
        "{msg}"
    );
    let e = err(&with_channel(
        "a1.channels.c1.type = memory\na1.channels.c1.transactionCapacity = 1000\n",
    ));
    names(&e, 11, "a1.channels.c1.transactionCapacity");

    for (line, expected) in [
        ("a1.channels.c1.capacity = 0", "at least 1"),
        ("a1.channels.c1.capacity = -5", "whole number"),
        ("a1.channels.c1.checkpointInterval = 0", "at least 1"),
        (
            "a1.channels.c1.fsync = sometimes",
            "every-commit, interval:<ms> or never",
        ),
        ("a1.channels.c1.io = aio", "std"),
        ("a1.channels.c1.corruptionPolicy = ignore", "fail or skip"),
        ("a1.channels.c1.fsyncPerTransaction = yes", "true or false"),
        ("a1.channels.c1.dataDirs = ,", "directories"),
    ] {
        let e = err(&with_channel(&format!(
            "a1.channels.c1.type = file\n{line}\n"
        )));
        assert!(matches!(e, ConfigError::BadValue { .. }), "{line}: {e:?}");
        let key = line.split(' ').next().unwrap_or_default();
        names(&e, 11, key);
        assert!(e.to_string().contains(expected), "{line}: {e}");
    }
}

// ---------------------------------------------------------------------------------------------
// Sources and sinks

#[test]
fn source_keys_and_defaults() {
    let (cfg, warnings) = ok(&with_source(
        "a1.sources.r1.type = exec\n\
         a1.sources.r1.command = tail -F /var/log/app.log\n\
         a1.sources.r1.shell = /bin/bash -c\n\
         a1.sources.r1.restart = true\n\
         a1.sources.r1.restartThrottle = 500\n\
         a1.sources.r1.batchSize = 50\n\
         a1.sources.r1.batchTimeout = 100\n\
         a1.sources.r1.logStdErr = true\n\
         a1.sources.r1.charset = UTF-8\n\
         a1.sources.r1.channels = c1\n",
    ));
    assert!(warnings.is_empty(), "{warnings:#?}");
    assert_eq!(
        source::<ExecConfig>(&cfg, 0),
        ExecConfig {
            command: "tail -F /var/log/app.log".into(),
            shell: Some("/bin/bash -c".into()),
            restart: true,
            restart_throttle: Duration::from_millis(500),
            batch_size: 50,
            batch_timeout: Duration::from_millis(100),
            log_stderr: true,
        }
    );

    let (cfg, _) = ok(&with_source(
        "a1.sources.r1.type = exec\na1.sources.r1.command = cat\na1.sources.r1.channels = c1\n",
    ));
    assert_eq!(
        source::<ExecConfig>(&cfg, 0),
        ExecConfig {
            command: "cat".into(),
            shell: None,
            restart: false,
            restart_throttle: Duration::from_millis(10_000),
            batch_size: 20,
            batch_timeout: Duration::from_millis(3_000),
            log_stderr: false,
        }
    );

    let (cfg, _) = ok(&with_source(
        "a1.sources.r1.type = netcat\na1.sources.r1.bind = ::1\na1.sources.r1.port = 0\n\
         a1.sources.r1.max-line-length = 4096\na1.sources.r1.ack-every-event = false\n\
         a1.sources.r1.channels = c1\n",
    ));
    assert_eq!(
        source::<NetcatConfig>(&cfg, 0),
        NetcatConfig {
            bind: "::1".into(),
            port: 0,
            max_line_length: 4096,
            ack_every_event: false,
            max_connections: 1024,
        }
    );

    let (cfg, _) = ok(&with_source(
        "a1.sources.r1.type = seq\na1.sources.r1.batchSize = 10\na1.sources.r1.channels = c1\n",
    ));
    assert_eq!(
        source::<SeqConfig>(&cfg, 0),
        SeqConfig {
            total_events: None,
            batch_size: 10
        }
    );

    let (cfg, _) = ok(&with_source(
        "a1.sources.r1.type = stdin\na1.sources.r1.batchSize = 7\na1.sources.r1.channels = c1\n",
    ));
    assert_eq!(
        source::<StdinConfig>(&cfg, 0),
        StdinConfig { batch_size: 7 }
    );

    // The replicating selector is the default and may be named.
    let (cfg, w) = ok(&with_source(
        "a1.sources.r1.type = seq\na1.sources.r1.channels = c1\na1.sources.r1.selector.type = replicating\n",
    ));
    assert!(w.is_empty(), "{w:?}");
    assert_eq!(cfg.sources.len(), 1);
}

#[test]
fn sink_keys_and_defaults() {
    let with_sink = |lines: &str| {
        let text = format!(
            "a1.sources = r1\na1.channels = c1\na1.sinks = k1\n\
             a1.sources.r1.type = seq\na1.sources.r1.channels = c1\n\
             a1.channels.c1.type = memory\na1.sinks.k1.channel = c1\n{lines}"
        );
        ok(&text)
    };
    let (cfg, w) = with_sink(
        "a1.sinks.k1.type = file_roll\n\
         a1.sinks.k1.sink.directory = /var/out\n\
         a1.sinks.k1.sink.rollInterval = 0\n\
         a1.sinks.k1.sink.pathManager = DEFAULT\n\
         a1.sinks.k1.sink.pathManager.prefix = events-\n\
         a1.sinks.k1.sink.pathManager.extension = log\n\
         a1.sinks.k1.sink.batchSize = 50\n\
         a1.sinks.k1.sink.serializer = TEXT\n\
         a1.sinks.k1.sink.serializer.appendNewline = true\n",
    );
    assert!(w.is_empty(), "{w:#?}");
    assert_eq!(
        sink::<FileRollConfig>(&cfg, 0),
        FileRollConfig {
            directory: "/var/out".into(),
            roll_interval: Duration::ZERO,
            prefix: "events-".into(),
            extension: "log".into(),
            batch_size: 50,
            batch_key: "sink.batchSize",
            serializer: SerializerSpec::default(),
        }
    );
    // `batchSize` is accepted too; `sink.batchSize` wins when both are set.
    let (cfg, w) = with_sink("a1.sinks.k1.type = file_roll\na1.sinks.k1.sink.directory = /o\na1.sinks.k1.batchSize = 7\n");
    assert!(w.is_empty(), "{w:#?}");
    assert_eq!(cfg.sinks[0].spec.batch_size().map(|b| b.0), Some(7));
    let (cfg, w) = with_sink(
        "a1.sinks.k1.type = file_roll\na1.sinks.k1.sink.directory = /o\n\
         a1.sinks.k1.batchSize = 7\na1.sinks.k1.sink.batchSize = 9\n",
    );
    assert_eq!(cfg.sinks[0].spec.batch_size().map(|b| b.0), Some(9));
    assert_eq!(w.len(), 1);
    assert_eq!(w[0].key, "a1.sinks.k1.batchSize");

    let (cfg, w) = with_sink("a1.sinks.k1.type = logger\na1.sinks.k1.maxBytesToLog = 64\n");
    assert!(w.is_empty(), "{w:#?}");
    assert_eq!(
        sink::<LoggerConfig>(&cfg, 0),
        LoggerConfig {
            max_bytes_to_log: 64
        }
    );

    let (cfg, w) = with_sink(
        "a1.sinks.k1.type = null\na1.sinks.k1.batchSize = 5\na1.sinks.k1.logEveryNEvents = 10\n",
    );
    assert_eq!(sink::<NullConfig>(&cfg, 0), NullConfig { batch_size: 5 });
    assert_eq!(w.len(), 1);
    assert!(matches!(w[0].kind, WarningKind::IgnoredKey { .. }));
}

#[test]
fn missing_required_keys_name_line_and_key() {
    // A listed source without a type: Flume drops it silently; we stop.
    let e = err(
        "a1.sources = r1\na1.channels = c1\na1.sinks = k1\n\
                 a1.sources.r1.channels = c1\n\
                 a1.channels.c1.type = memory\na1.sinks.k1.type = null\na1.sinks.k1.channel = c1\n",
    );
    assert!(matches!(e, ConfigError::MissingKey { .. }), "{e:?}");
    names(&e, 1, "a1.sources.r1.type");
    assert!(e.to_string().contains("silently drop"), "{e}");

    // A listed channel with no keys at all.
    let e = err("a1.sources = r1\na1.channels = c1\n\
                 a1.sources.r1.type = seq\na1.sources.r1.channels = c1\n");
    names(&e, 2, "a1.channels.c1.type");

    let e = err(&with_source("a1.sources.r1.type = seq\n"));
    names(&e, 7, "a1.sources.r1.channels");

    // `channel` on a source (Flume's singular/plural trap) is named in the hint.
    let e = err(&with_source(
        "a1.sources.r1.type = seq\na1.sources.r1.channel = c1\n",
    ));
    names(&e, 7, "a1.sources.r1.channels");
    assert!(e.to_string().contains("line 8 sets `channel`"), "{e}");

    let e = err(&with_source(
        "a1.sources.r1.type = netcat\na1.sources.r1.bind = x\na1.sources.r1.channels = c1\n",
    ));
    names(&e, 7, "a1.sources.r1.port");
    let e = err(&with_source(
        "a1.sources.r1.type = exec\na1.sources.r1.channels = c1\n",
    ));
    names(&e, 7, "a1.sources.r1.command");

    let e = err(&with_channel("a1.channels.c1.type = memory\n")
        .replace("a1.sinks.k1.channel = c1", "a1.sinks.k1.channels = c1"));
    names(&e, 8, "a1.sinks.k1.channel");
    assert!(e.to_string().contains("`channel` (singular)"), "{e}");

    let e = err(&with_channel("a1.channels.c1.type = memory\n").replace("= logger", "= file_roll"));
    names(&e, 8, "a1.sinks.k1.sink.directory");

    // Agent-level lists.
    let e = err("a1.channels = c1\na1.channels.c1.type = memory\n");
    names(&e, 1, "a1.sources");
    let e = err("a1.sources = r1\na1.sources.r1.type = seq\na1.sources.r1.channels = c1\n");
    names(&e, 1, "a1.channels");
}

#[test]
fn bad_values_list_what_is_accepted() {
    for (line, key, expected) in [
        (
            "a1.sources.r1.port = http",
            "a1.sources.r1.port",
            "0 to 65535",
        ),
        (
            "a1.sources.r1.port = 70000",
            "a1.sources.r1.port",
            "0 to 65535",
        ),
        (
            "a1.sources.r1.ack-every-event = yes",
            "a1.sources.r1.ack-every-event",
            "true or false",
        ),
        (
            "a1.sources.r1.max-line-length = 0",
            "a1.sources.r1.max-line-length",
            "at least 1",
        ),
        (
            "a1.sources.r1.selector.optional = c9",
            "a1.sources.r1.selector.optional",
            "no such channel; a selector can only name channels listed in `a1.sources.r1.channels` (c1)",
        ),
    ] {
        let e = err(&with_source(&format!(
            "a1.sources.r1.type = netcat\na1.sources.r1.bind = x\na1.sources.r1.port = 1\n\
             a1.sources.r1.channels = c1\n{line}\n"
        )));
        assert!(matches!(e, ConfigError::BadValue { .. }), "{line}: {e:?}");
        names(&e, 11, key);
        assert!(e.to_string().contains(expected), "{line}: {e}");
    }

    let e = err(&with_channel("a1.channels.c1.type = memory\n")
        .replace("a1.sinks.k1.channel = c1", "a1.sinks.k1.channel = c1 c1"));
    names(&e, 9, "a1.sinks.k1.channel");
    assert!(e.to_string().contains("exactly one channel"), "{e}");
}

#[test]
fn unknown_channels_are_errors() {
    let e = err(&with_source(
        "a1.sources.r1.type = seq\na1.sources.r1.channels = c1 c2\n",
    ));
    assert!(matches!(e, ConfigError::UnknownChannel { .. }), "{e:?}");
    names(&e, 8, "a1.sources.r1.channels");
    let msg = e.to_string();
    assert!(
        msg.contains("channel `c2`") && msg.contains("`a1.channels`"),
        "{msg}"
    );

    let e = err(&with_source(
        "a1.sources.r1.type = seq\na1.sources.r1.channels = c1,c2\n",
    ));
    assert!(e.to_string().contains("separated by spaces"), "{e}");

    let e = err(
        &with_channel("a1.channels.c1.type = memory\na1.channels.c2.type = memory\n")
            .replace("a1.sinks.k1.channel = c1", "a1.sinks.k1.channel = c2"),
    );
    names(&e, 9, "a1.sinks.k1.channel");
    assert!(
        e.to_string().contains("has settings but is not listed"),
        "{e}"
    );
}

#[test]
fn unsupported_features_are_errors() {
    let cases = [(
        "a1.sources.r1.selector.type = com.example.GeoSelector",
        "a1.sources.r1.selector.type",
    )];
    for (line, key) in cases {
        let e = err(&with_source(&format!(
            "a1.sources.r1.type = seq\na1.sources.r1.channels = c1\n{line}\n"
        )));
        assert!(
            matches!(e, ConfigError::Unsupported { .. }),
            "{line}: {e:?}"
        );
        names(&e, 9, key);
        assert!(e.to_string().contains("not supported yet"), "{e}");
        assert!(e.to_string().contains("cannot load Java classes"), "{e}");
    }
    let e = err(&with_source(
        "a1.sources.r1.type = seq
a1.sources.r1.channels = c1
a1.sources.r1.selector.type = random
",
    ));
    assert!(matches!(e, ConfigError::UnknownType { .. }), "{e:?}");
    assert!(e.to_string().contains("replicating, multiplexing"), "{e}");

    let e = err(&format!(
        "{}a1.configfilters = f1\n",
        with_channel("a1.channels.c1.type = memory\n")
    ));
    names(&e, 11, "a1.configfilters");

    for (line, key) in [
        (
            "a1.sinks.k1.sink.serializer = com.example.Custom$Builder",
            "a1.sinks.k1.sink.serializer",
        ),
        (
            "a1.sinks.k1.sink.serializer.compressionCodec = xz\na1.sinks.k1.sink.serializer = avro_event",
            "a1.sinks.k1.sink.serializer.compressionCodec",
        ),
        (
            "a1.sinks.k1.sink.pathManager = ROLLTIME",
            "a1.sinks.k1.sink.pathManager",
        ),
    ] {
        let text = with_channel(&format!(
            "a1.channels.c1.type = memory\na1.sinks.k1.sink.directory = /o\n{line}\n"
        ))
        .replace("= logger", "= file_roll");
        let e = err(&text);
        assert!(
            matches!(e, ConfigError::Unsupported { .. }),
            "{line}: {e:?}"
        );
        names(&e, 12, key);
    }

    let e = err(&with_source(
        "a1.sources.r1.type = netcat\na1.sources.r1.bind = x\na1.sources.r1.port = 1\n\
         a1.sources.r1.channels = c1\na1.sources.r1.encoding = ISO-8859-1\n",
    ));
    names(&e, 11, "a1.sources.r1.encoding");
}

#[test]
fn batch_size_over_transaction_capacity_names_both_keys() {
    // A source batch over its channel's transactionCapacity (Flume's rule).
    let text = with_source(
        "a1.channels.c1.transactionCapacity = 50\n\
         a1.sources.r1.type = seq\n\
         a1.sources.r1.channels = c1\n\
         a1.sources.r1.batchSize = 51\n",
    )
    .replace("a1.sinks.k1.type = null", "a1.sinks.k1.type = logger");
    let e = err(&text);
    assert!(
        matches!(e, ConfigError::BatchOverTransactionCapacity { .. }),
        "{e:?}"
    );
    names(&e, 10, "a1.sources.r1.batchSize");
    let msg = e.to_string();
    assert!(
        msg.contains("`a1.channels.c1.transactionCapacity` = 50 (line 7)"),
        "{msg}"
    );
    assert!(msg.contains("= 51"), "{msg}");

    // Defaulted on both sides: the lines are the components' type lines.
    let text = with_source(
        "a1.sources.r1.type = exec\na1.sources.r1.command = cat\na1.sources.r1.channels = c1\n",
    )
    .replace(
        "a1.channels.c1.type = memory",
        "a1.channels.c1.type = memory\na1.channels.c1.transactionCapacity = 10",
    )
    .replace("a1.sinks.k1.type = null", "a1.sinks.k1.type = logger");
    let e = err(&text);
    names(&e, 8, "a1.sources.r1.batchSize");
    assert!(e.to_string().contains("(line 5)"), "{e}");

    // A sink batch over its channel's transactionCapacity (the cause of FLUME-3107).
    let text = with_source("a1.sources.r1.type = seq\na1.sources.r1.channels = c1\n").replace(
        "a1.sinks.k1.channel = c1",
        "a1.sinks.k1.channel = c1\na1.sinks.k1.batchSize = 101",
    );
    let e = err(&text);
    names(&e, 7, "a1.sinks.k1.batchSize");
    assert!(
        e.to_string()
            .contains("`a1.channels.c1.transactionCapacity` = 100 (line 4)"),
        "{e}"
    );

    // Equal is fine.
    let text = with_source(
        "a1.sources.r1.type = seq\na1.sources.r1.channels = c1\na1.sources.r1.batchSize = 100\n",
    );
    ok(&text);
}

// ---------------------------------------------------------------------------------------------
// Warnings

#[test]
fn unknown_keys_name_the_nearest_known_key() {
    let text = with_channel(
        "a1.channels.c1.type = memory\n\
         a1.channels.c1.capacty = 100\n",
    );
    let (cfg, warnings) = ok(&text);
    assert_eq!(
        memory_channel(&cfg, "c1").capacity,
        100,
        "the misspelt key is not used"
    );
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    let w = &warnings[0];
    assert_eq!(w.line, 11);
    assert_eq!(w.key, "a1.channels.c1.capacty");
    assert_eq!(
        w.kind,
        WarningKind::UnknownKey {
            nearest: Some("a1.channels.c1.capacity".into())
        }
    );
    assert_eq!(
        w.to_string(),
        "flume.conf:11: `a1.channels.c1.capacty`: unknown key, ignored; the nearest known key is `a1.channels.c1.capacity`"
    );

    let nearest_of = |text: &str| -> Vec<(String, Option<String>)> {
        ok(text)
            .1
            .into_iter()
            .filter_map(|w| match w.kind {
                WarningKind::UnknownKey { nearest } => Some((w.key, nearest)),
                _ => None,
            })
            .collect()
    };
    let got = nearest_of(&with_channel(
        "a1.channels.c1.type = file\na1.channels.c1.checkpointdir = /x\na1.channels.c1.datadirs = /y\n",
    ));
    assert_eq!(
        got,
        [
            (
                "a1.channels.c1.checkpointdir".to_string(),
                Some("a1.channels.c1.checkpointDir".to_string())
            ),
            (
                "a1.channels.c1.datadirs".to_string(),
                Some("a1.channels.c1.dataDirs".to_string())
            ),
        ]
    );
    let got = nearest_of(&with_channel(
        "a1.channels.c1.type = memory\na1.source.r9.type = seq\na1.sinks.k1.maxBytesToLg = 3\n",
    ));
    assert_eq!(
        got,
        [
            (
                "a1.source.r9.type".to_string(),
                Some("a1.sources.r9.type".to_string())
            ),
            (
                "a1.sinks.k1.maxBytesToLg".to_string(),
                Some("a1.sinks.k1.maxBytesToLog".to_string())
            ),
        ]
    );
    // A multiplexing key under the default replicating selector says what it is, rather
    // than suggesting an unrelated key.
    let (_, warnings) = parse(
        &with_channel("a1.channels.c1.type = memory\na1.sources.r1.selector.header = h\n"),
        "flume.conf",
        "a1",
    )
    .expect("parses");
    let w = warnings
        .iter()
        .find(|w| w.key == "a1.sources.r1.selector.header")
        .expect("a warning about selector.header");
    assert!(w.to_string().contains("`multiplexing` selector"), "{w}");
}

#[test]
fn duplicate_keys_warn_and_the_later_wins() {
    let text = with_channel(
        "a1.channels.c1.type = memory\n\
         a1.channels.c1.capacity = 100\n\
         a1.channels.c1.capacity = 200\n",
    );
    let (cfg, warnings) = ok(&text);
    assert_eq!(memory_channel(&cfg, "c1").capacity, 200);
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    assert_eq!(warnings[0].line, 12);
    assert_eq!(
        warnings[0].kind,
        WarningKind::DuplicateKey { previous_line: 11 }
    );
    assert!(warnings[0]
        .to_string()
        .contains("replaces the one on line 11"));
}

#[test]
fn listing_and_binding_mistakes_are_warnings() {
    let text = "a1.sources = r1 r1\n\
                a1.channels = c1 c2\n\
                a1.sinks = k1\n\
                a1.sources.r1.type = seq\n\
                a1.sources.r1.channels = c1 c1\n\
                a1.sources.r2.type = seq\n\
                a1.channels.c1.type = memory\n\
                a1.channels.c2.type = memory\n\
                a1.sinks.k1.type = null\n\
                a1.sinks.k1.channel = c1\n\
                a1.sinks.k1.batchSize =   \n\
                a1.sources.r1.interceptors.i1.type = timestamp\n\
                stray = value\n\
                a1.sources.r1 = seq\n";
    let (cfg, warnings) = ok(text);
    assert_eq!(cfg.sources.len(), 1);
    assert_eq!(cfg.sources[0].channels, ["c1"]);
    let summary: Vec<(usize, &str, &WarningKind)> = warnings
        .iter()
        .map(|w| (w.line, w.key.as_str(), &w.kind))
        .collect();
    assert_eq!(
        summary,
        [
            (
                1,
                "a1.sources",
                &WarningKind::DuplicateName { name: "r1".into() }
            ),
            (2, "a1.channels.c2", &WarningKind::UnusedChannel),
            (
                5,
                "a1.sources.r1.channels",
                &WarningKind::DuplicateName { name: "c1".into() }
            ),
            (
                6,
                "a1.sources.r2",
                &WarningKind::UnlistedComponent {
                    list_key: "a1.sources".into()
                }
            ),
            (11, "a1.sinks.k1.batchSize", &WarningKind::EmptyValue),
            (
                12,
                "a1.sources.r1.interceptors.i1",
                &WarningKind::UnlistedComponent {
                    list_key: "a1.sources.r1.interceptors".into()
                }
            ),
            (13, "stray", &WarningKind::NoAgentPrefix),
            (
                14,
                "a1.sources.r1",
                &WarningKind::UnknownKey {
                    nearest: Some("a1.sources.r1.type".into())
                }
            ),
        ]
    );
    for w in &warnings {
        assert!(
            w.to_string()
                .starts_with(&format!("flume.conf:{}: `", w.line)),
            "{w}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Interceptors

/// A seq source r1 into c1 with the interceptor lines the test adds (from line 9 on).
fn with_interceptors(lines: &str) -> String {
    with_source(&format!(
        "a1.sources.r1.type = seq\na1.sources.r1.channels = c1\n{lines}"
    ))
}

fn interceptors_of(text: &str) -> (Vec<InterceptorConfig>, Vec<ConfigWarning>) {
    let (mut cfg, warnings) = ok(text);
    (cfg.sources.remove(0).interceptors, warnings)
}

#[test]
fn interceptors_user_guide_example_parses_in_list_order() {
    let (ics, warnings) = interceptors_of(&with_interceptors(
        "a1.sources.r1.interceptors = i1 i2 i3\n\
         a1.sources.r1.interceptors.i1.type = timestamp\n\
         a1.sources.r1.interceptors.i2.type = host\n\
         a1.sources.r1.interceptors.i3.type = static\n\
         a1.sources.r1.interceptors.i3.key = datacenter\n\
         a1.sources.r1.interceptors.i3.value = NEW_YORK\n",
    ));
    assert!(warnings.is_empty(), "{warnings:#?}");
    let names: Vec<(&str, &str)> = ics.iter().map(|i| (i.name.as_str(), i.type_name)).collect();
    assert_eq!(
        names,
        [("i1", "timestamp"), ("i2", "host"), ("i3", "static")]
    );
    assert_eq!(
        interceptor::<TimestampConfig>(&ics, 0),
        TimestampConfig {
            header_name: "timestamp".into(),
            preserve_existing: false,
        }
    );
    assert_eq!(
        interceptor::<HostConfig>(&ics, 1),
        HostConfig {
            host_header: "host".into(),
            use_ip: true,
            preserve_existing: false,
        }
    );
    assert_eq!(
        interceptor::<StaticConfig>(&ics, 2),
        StaticConfig {
            key: "datacenter".into(),
            value: "NEW_YORK".into(),
            preserve_existing: true,
        }
    );
}

#[test]
fn interceptor_keys_defaults_and_class_names() {
    // The list order decides, not the order of the keys; class names and any-case aliases.
    let (ics, warnings) = interceptors_of(&with_interceptors(
        "a1.sources.r1.interceptors = s  t h\n\
         a1.sources.r1.interceptors.h.type = org.apache.flume.interceptor.HostInterceptor$Builder\n\
         a1.sources.r1.interceptors.h.useIP = false\n\
         a1.sources.r1.interceptors.h.hostHeader = hostname\n\
         a1.sources.r1.interceptors.h.preserveExisting = true\n\
         a1.sources.r1.interceptors.t.type = TIMESTAMP\n\
         a1.sources.r1.interceptors.t.headerName = ts\n\
         a1.sources.r1.interceptors.t.preserveExisting = true\n\
         a1.sources.r1.interceptors.s.type = org.apache.flume.interceptor.StaticInterceptor$Builder\n\
         a1.sources.r1.interceptors.s.preserveExisting = false\n",
    ));
    assert!(warnings.is_empty(), "{warnings:#?}");
    let names: Vec<&str> = ics.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["s", "t", "h"]);
    assert_eq!(
        interceptor::<StaticConfig>(&ics, 0),
        StaticConfig {
            key: "key".into(),
            value: "value".into(),
            preserve_existing: false,
        }
    );
    assert_eq!(
        interceptor::<TimestampConfig>(&ics, 1),
        TimestampConfig {
            header_name: "ts".into(),
            preserve_existing: true,
        }
    );
    assert_eq!(
        interceptor::<HostConfig>(&ics, 2),
        HostConfig {
            host_header: "hostname".into(),
            use_ip: false,
            preserve_existing: true,
        }
    );

    let (ics, _) = interceptors_of(&with_interceptors(
        "a1.sources.r1.interceptors = t\n\
         a1.sources.r1.interceptors.t.type = org.apache.flume.interceptor.TimestampInterceptor$Builder\n",
    ));
    assert_eq!(ics[0].type_name, "timestamp");

    // No list (or an empty one): no interceptors.
    let (ics, _) = interceptors_of(&with_interceptors(""));
    assert!(ics.is_empty());
    let (ics, _) = interceptors_of(&with_interceptors("a1.sources.r1.interceptors =\n"));
    assert!(ics.is_empty());
}

#[test]
fn listed_interceptor_without_type_is_an_error_naming_it() {
    let e = err(&with_interceptors(
        "a1.sources.r1.interceptors = i1 i2\n\
         a1.sources.r1.interceptors.i1.type = timestamp\n\
         a1.sources.r1.interceptors.i2.key = datacenter\n",
    ));
    assert!(matches!(e, ConfigError::MissingKey { .. }), "{e:?}");
    names(&e, 9, "a1.sources.r1.interceptors.i2.type");
    assert!(e.to_string().contains("interceptor `i2`"), "{e}");

    // Listed with no keys at all.
    let e = err(&with_interceptors("a1.sources.r1.interceptors = i1\n"));
    names(&e, 9, "a1.sources.r1.interceptors.i1.type");
}

#[test]
fn other_interceptor_types_are_refused() {
    for (t, unsupported) in [
        ("MORPHLINE", false),
        (
            "org.apache.flume.sink.solr.morphline.MorphlineInterceptor$Builder",
            true,
        ),
        ("com.example.MyInterceptor$Builder", true),
        ("timestmap", false),
    ] {
        let e = err(&with_interceptors(&format!(
            "a1.sources.r1.interceptors = i1\na1.sources.r1.interceptors.i1.type = {t}\n"
        )));
        names(&e, 10, "a1.sources.r1.interceptors.i1.type");
        let msg = e.to_string();
        if unsupported {
            assert!(matches!(e, ConfigError::Unsupported { .. }), "{t}: {e:?}");
            assert!(msg.contains("not supported yet"), "{msg}");
        } else {
            assert!(matches!(e, ConfigError::UnknownType { .. }), "{t}: {e:?}");
        }
        assert!(msg.contains(t), "{msg}");
        assert!(
            msg.contains(&aliases(super::registry::INTERCEPTORS)),
            "{msg}"
        );
    }
}

#[test]
fn interceptor_bad_values_and_unknown_keys() {
    let e = err(&with_interceptors(
        "a1.sources.r1.interceptors = i1\n\
         a1.sources.r1.interceptors.i1.type = static\n\
         a1.sources.r1.interceptors.i1.preserveExisting = yes\n",
    ));
    assert!(matches!(e, ConfigError::BadValue { .. }), "{e:?}");
    names(&e, 11, "a1.sources.r1.interceptors.i1.preserveExisting");

    let (ics, warnings) = interceptors_of(&with_interceptors(
        "a1.sources.r1.interceptors = i1 i1\n\
         a1.sources.r1.interceptors.i1.type = host\n\
         a1.sources.r1.interceptors.i1.useIp = false\n\
         a1.sources.r1.interceptors.i9.type = static\n\
         a1.sources.r1.interceptors.i9.key = k\n\
         a1.sources.r1.interceptors.i1 = host\n",
    ));
    assert_eq!(ics.len(), 1);
    let summary: Vec<(usize, &str, &WarningKind)> = warnings
        .iter()
        .map(|w| (w.line, w.key.as_str(), &w.kind))
        .collect();
    assert_eq!(
        summary,
        [
            (
                9,
                "a1.sources.r1.interceptors",
                &WarningKind::DuplicateName { name: "i1".into() }
            ),
            (
                11,
                "a1.sources.r1.interceptors.i1.useIp",
                &WarningKind::UnknownKey {
                    nearest: Some("a1.sources.r1.interceptors.i1.useIP".into())
                }
            ),
            (
                12,
                "a1.sources.r1.interceptors.i9",
                &WarningKind::UnlistedComponent {
                    list_key: "a1.sources.r1.interceptors".into()
                }
            ),
            (
                14,
                "a1.sources.r1.interceptors.i1",
                &WarningKind::UnknownKey {
                    nearest: Some("a1.sources.r1.interceptors.i1.type".into())
                }
            ),
        ]
    );
}

#[test]
fn keys_of_other_agents_are_left_alone() {
    // Another agent's duplicates, unknown keys and unset variables are not this agent's business.
    let text = format!(
        "{}a2.sources = x\na2.sources = y\na2.bogus = 1\na2.sources.x.port = ${{env:NOT_SET}}\n",
        with_channel("a1.channels.c1.type = memory\n")
    );
    let (_, warnings) = ok(&text);
    assert!(warnings.is_empty(), "{warnings:#?}");
}

// ---------------------------------------------------------------------------------------------
// Substitution

#[test]
fn env_substitution_in_values() {
    let text = with_channel(
        "a1.channels.c1.type = file\n\
         a1.channels.c1.checkpointDir = ${env:CH_ROOT}/checkpoint\n\
         a1.channels.c1.dataDirs = ${env:CH_ROOT}/d1,${env:DATA2:-/fallback}/d2\n",
    )
    .replace(
        "a1.sources.r1.port = 44444",
        "a1.sources.r1.port = ${env:NC_PORT}",
    );
    let (cfg, warnings) = ok(&text);
    assert!(warnings.is_empty(), "{warnings:#?}");
    assert!(matches!(
        source::<NetcatConfig>(&cfg, 0),
        NetcatConfig { port: 5140, .. }
    ));
    let f = file_channel(&cfg, "c1");
    assert_eq!(f.checkpoint_dir, PathBuf::from("/srv/flumen/checkpoint"));
    assert_eq!(
        f.data_dirs,
        ["/srv/flumen/d1", "/fallback/d2"].map(PathBuf::from)
    );
}

#[test]
fn unset_env_variable_is_an_error_naming_the_line() {
    let text = with_channel("a1.channels.c1.type = memory\n").replace(
        "a1.sources.r1.port = 44444",
        "a1.sources.r1.port = ${env:FLUMEN_TEST_UNSET_PORT}",
    );
    let e = err(&text);
    assert!(matches!(e, ConfigError::EnvVar { .. }), "{e:?}");
    names(&e, 6, "a1.sources.r1.port");
    let msg = e.to_string();
    assert!(msg.contains("`FLUMEN_TEST_UNSET_PORT` is not set"), "{msg}");
}

#[test]
fn the_process_environment_is_read() {
    // PATH is set in any environment the tests run in.
    let Ok(path) = std::env::var("PATH") else {
        return;
    };
    let text = with_source("a1.sources.r1.type = exec\na1.sources.r1.command = ${env:PATH}\na1.sources.r1.channels = c1\n");
    let (cfg, _) = parse(&text, F, "a1").expect("parses");
    assert!(
        matches!(&source::<ExecConfig>(&cfg, 0), ExecConfig { command, .. } if *command == path.trim())
    );
}

#[test]
fn a_key_outside_the_agents_that_a_reference_reads_is_not_a_stray_key() {
    let text = format!(
        "PROD_DIR = /var/log/prod\nSTRAY = 1\n{}",
        with_source(
            "a1.sources.r1.type = exec\n\
             a1.sources.r1.command = tail -F ${PROD_DIR}/app.log\n\
             a1.sources.r1.channels = c1\n",
        )
    );
    let (cfg, warnings) = ok(&text);
    assert!(
        matches!(&source::<ExecConfig>(&cfg, 0), ExecConfig { command, .. } if command == "tail -F /var/log/prod/app.log")
    );
    let stray: Vec<&str> = warnings
        .iter()
        .filter(|w| w.kind == WarningKind::NoAgentPrefix)
        .map(|w| w.key.as_str())
        .collect();
    assert_eq!(stray, ["STRAY"], "{warnings:#?}");
}

#[test]
fn plain_references_and_other_lookups() {
    let text = with_source(
        "a1.sources.r1.type = exec\n\
         a1.sources.r1.command = tail -F ${HOME}/app.log\n\
         a1.sources.r1.channels = c1\n",
    );
    let (cfg, warnings) = ok(&text);
    assert!(
        matches!(&source::<ExecConfig>(&cfg, 0), ExecConfig { command, .. } if command == "tail -F ${HOME}/app.log")
    );
    assert_eq!(
        warnings
            .iter()
            .map(|w| (&w.kind, w.line))
            .collect::<Vec<_>>(),
        [(
            &WarningKind::NotSubstituted {
                reference: "${HOME}".into()
            },
            8
        )]
    );
    // `$${HOME}` says "literal" and silences the warning.
    let (cfg, warnings) = ok(&text.replace("${HOME}", "$${HOME}"));
    assert!(warnings.is_empty(), "{warnings:#?}");
    assert!(
        matches!(&source::<ExecConfig>(&cfg, 0), ExecConfig { command, .. } if command == "tail -F ${HOME}/app.log")
    );

    // A system property that is not given (the test's environment has no -D).
    let e = err(&text.replace("${HOME}", "${sys:user.home}"));
    assert!(
        matches!(&e, ConfigError::Unresolved { reference, .. } if reference == "${sys:user.home}"),
        "{e:?}"
    );
    names(&e, 8, "a1.sources.r1.command");
    let e = err(&text.replace("${HOME}", "${java:version}"));
    assert!(matches!(e, ConfigError::Unsupported { .. }), "{e:?}");
    names(&e, 8, "a1.sources.r1.command");
}

/// Flume 1.11's lookups through `-D`: `${sys:NAME}`, a plain `${NAME}` naming another
/// property, and `-DpropertiesImplementation=...EnvVarResolverProperties` making a plain
/// `${NAME}` read the environment; a value a component refuses because it still holds a
/// reference says so, naming the key and the reference.
#[test]
fn system_properties_property_references_and_the_env_var_resolver() {
    let text = with_source(
        "a1.sources.r1.type = netcat\n\
         a1.sources.r1.bind = ${sys:bind.host}\n\
         a1.sources.r1.port = ${PORT}\n\
         a1.sources.r1.channels = c1\n\
         collector.port = 4545\n",
    );
    let sys_only = |name: &str| (name == "sys:bind.host").then(|| "127.0.0.2".to_string());
    let e = parse_with_env(&text, F, "a1", &sys_only).expect_err("${PORT} unresolved");
    assert!(
        matches!(&e, ConfigError::Unresolved { reference, key, .. }
            if reference == "${PORT}" && key == "a1.sources.r1.port"),
        "{e:?}"
    );
    let msg = e.to_string();
    assert!(msg.contains("EnvVarResolverProperties"), "{msg}");
    assert!(!msg.starts_with("bad value"), "{msg}");

    let resolver = |name: &str| match name {
        "sys:bind.host" => Some("127.0.0.2".to_string()),
        "sys:propertiesImplementation" => {
            Some("org.apache.flume.node.EnvVarResolverProperties".to_string())
        }
        "PORT" => Some("4141".to_string()),
        _ => None,
    };
    let (cfg, warnings) = parse_with_env(&text, F, "a1", &resolver).expect("parses");
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(
        source::<NetcatConfig>(&cfg, 0),
        NetcatConfig::new("127.0.0.2", 4141)
    );

    // A plain reference to another property of the file, nested in a lookup's fallback.
    let text = text.replace("${PORT}", "${env:NOPE:-${collector.port}}");
    let (cfg, _) = parse_with_env(&text, F, "a1", &sys_only).expect("parses");
    assert_eq!(
        source::<NetcatConfig>(&cfg, 0),
        NetcatConfig::new("127.0.0.2", 4545)
    );

    // A nested reference that does not resolve is quoted whole.
    let text = text.replace("${env:NOPE:-${collector.port}}", "${env:${sys:nope}}");
    let e = parse_with_env(&text, F, "a1", &sys_only).expect_err("unresolved");
    assert!(e.to_string().contains("`${env:${sys:nope}}`"), "{e}");
}

/// A key prefix close to the agent's name but no agent of the file (`agnet` beside `agent`)
/// is a warning with the suggestion, once per prefix; real agents, hyphens and capitals
/// included, are never taken for typos of each other.
#[test]
fn a_prefix_close_to_an_agent_is_a_warning_naming_it() {
    let file = |agent: &str, typo: &str| {
        format!(
            "{agent}.sources = r1\n\
             {agent}.channels = c1\n\
             {agent}.sinks = k1\n\
             {agent}.sources.r1.type = seq\n\
             {agent}.sources.r1.channels = c1\n\
             {agent}.channels.c1.type = memory\n\
             {agent}.sinks.k1.type = null\n\
             {agent}.sinks.k1.channel = c1\n\
             {typo}.sources.r1.batchSize = 5\n\
             {typo}.sinks.k1.batchSize = 5\n"
        )
    };
    for (agent, typo) in [
        ("agent", "agnet"),
        ("Web-Tier", "Web-Teir"),
        ("collector", "Collector"),
    ] {
        let (_, warnings) = parse_with_env(&file(agent, typo), F, agent, &env).expect("parses");
        assert_eq!(warnings.len(), 1, "{warnings:#?}");
        let w = &warnings[0];
        assert_eq!(
            (w.line, w.key.as_str()),
            (9, format!("{typo}.sources.r1.batchSize").as_str())
        );
        assert_eq!(
            w.kind,
            WarningKind::NearAgent {
                prefix: typo.into(),
                agent: agent.into(),
                count: 2
            }
        );
        let msg = w.to_string();
        assert!(msg.contains(&format!("did you mean `{agent}`")), "{msg}");
    }
    // Two real agents close to each other, and a far prefix: no warning.
    let two = format!("{}{}", file("web-1", "zzz"), file("web-2", "zzz"));
    for agent in ["web-1", "web-2"] {
        let (_, warnings) = parse_with_env(&two, F, agent, &env).expect("parses");
        assert!(warnings.is_empty(), "{agent}: {warnings:#?}");
    }
    // A one-letter prefix is not a typo of a one-letter agent.
    let (_, warnings) = parse_with_env(&file("a", "b"), F, "a", &env).expect("parses");
    assert!(warnings.is_empty(), "{warnings:#?}");
}

/// Trailing whitespace is trimmed, as Flume trims it; where that can change what a value says
/// (a pattern, a path, text put into events) it is a warning, elsewhere it is not.
#[test]
fn trailing_whitespace_that_may_matter_is_a_warning() {
    let text = with_source(
        "a1.sources.r1.type = seq \n\
         a1.sources.r1.channels = c1\n\
         a1.sources.r1.interceptors = i1\n\
         a1.sources.r1.interceptors.i1.type = search_replace\n\
         a1.sources.r1.interceptors.i1.searchPattern = foo \n\
         a1.sources.r1.interceptors.i1.replaceString = bar\t\n\
         a1.channels.c1.capacity = 100 \n",
    );
    let (_, warnings) = ok(&text);
    let got: Vec<(usize, &str, &WarningKind)> = warnings
        .iter()
        .map(|w| (w.line, w.key.as_str(), &w.kind))
        .collect();
    assert_eq!(
        got,
        [
            (
                11,
                "a1.sources.r1.interceptors.i1.searchPattern",
                &WarningKind::TrailingWhitespace {
                    removed: " ".into()
                }
            ),
            (
                12,
                "a1.sources.r1.interceptors.i1.replaceString",
                &WarningKind::TrailingWhitespace {
                    removed: "\\t".into()
                }
            ),
        ],
        "{warnings:#?}"
    );
    assert!(
        warnings[0].to_string().contains("ends with whitespace"),
        "{}",
        warnings[0]
    );
}

// ---------------------------------------------------------------------------------------------
// Files and syntax errors

#[test]
fn load_reads_a_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("agent.conf");
    std::fs::write(&path, EMBEDDED_DEFAULT_PROPERTIES).expect("write");
    let (cfg, warnings) = load(&path, "a1").expect("loads");
    let built = embedded_default().expect("the built-in configuration");
    assert_eq!(
        format!("{cfg:?}"),
        format!("{built:?}").replace("(built-in configuration)", &path.display().to_string())
    );
    assert!(warnings.is_empty());

    let e = load(&dir.path().join("missing.conf"), "a1").expect_err("missing file");
    assert!(matches!(e, ConfigError::Io { .. }), "{e:?}");
    assert!(e.to_string().contains("missing.conf"), "{e}");

    let e = load(&path, "agent7").expect_err("no such agent");
    assert!(
        e.to_string().starts_with(&path.display().to_string()),
        "{e}"
    );
}

#[test]
fn load_falls_back_to_latin1_like_java() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("latin1.conf");
    let mut bytes = EMBEDDED_DEFAULT_PROPERTIES
        .replace("./flumen-data/out", "/tmp/caf")
        .into_bytes();
    let at = bytes
        .windows(8)
        .rposition(|w| w == b"/tmp/caf")
        .expect("found")
        + 8;
    bytes.insert(at, 0xE9); // 'é' in ISO-8859-1; not valid UTF-8 on its own
    std::fs::write(&path, bytes).expect("write");
    let (cfg, _) = load(&path, "a1").expect("loads");
    assert_eq!(sink::<HdfsSinkConfig>(&cfg, 0).path, "/tmp/café");
}

#[test]
fn syntax_errors_name_the_line() {
    let e = err("a1.sources = r1\na1.sources.r1.type = \\u00zz\n");
    assert!(matches!(e, ConfigError::Syntax { line: 2, .. }), "{e:?}");
    assert!(e.to_string().starts_with("flume.conf:2:"), "{e}");
}

#[test]
fn stress_source_keys_defaults_and_batch_check() {
    // Defaults, by Flume class name.
    let (cfg, warnings) = ok(&with_source(
        "a1.sources.r1.type = org.apache.flume.source.StressSource\n\
         a1.sources.r1.channels = c1\n",
    ));
    assert!(warnings.is_empty(), "{warnings:#?}");
    assert_eq!(
        source::<StressConfig>(&cfg, 0),
        StressConfig {
            size: 500,
            max_total_events: None,
            batch_size: 1,
            max_events_per_second: 0,
        }
    );
    assert_eq!(cfg.sources[0].type_name, "stress");

    // Every key, by alias; -1 is "no limit" as in Flume.
    let (cfg, warnings) = ok(&with_source(
        "a1.sources.r1.type = STRESS\n\
         a1.sources.r1.channels = c1\n\
         a1.sources.r1.size = 1024\n\
         a1.sources.r1.maxTotalEvents = 5000\n\
         a1.sources.r1.batchSize = 100\n\
         a1.sources.r1.maxEventsPerSecond = 2000\n",
    ));
    assert!(warnings.is_empty(), "{warnings:#?}");
    assert_eq!(
        source::<StressConfig>(&cfg, 0),
        StressConfig {
            size: 1024,
            max_total_events: Some(5000),
            batch_size: 100,
            max_events_per_second: 2000,
        }
    );
    let (cfg, _) = ok(&with_source(
        "a1.sources.r1.type = stress\n\
         a1.sources.r1.channels = c1\n\
         a1.sources.r1.maxTotalEvents = -1\n",
    ));
    assert!(matches!(
        source::<StressConfig>(&cfg, 0),
        StressConfig {
            max_total_events: None,
            ..
        }
    ));

    // A bad number names the key.
    let e = err(&with_source(
        "a1.sources.r1.type = stress\n\
         a1.sources.r1.channels = c1\n\
         a1.sources.r1.size = big\n",
    ));
    names(&e, 9, "a1.sources.r1.size");

    // batchSize over the channel's transactionCapacity (memory default 100).
    let e = err(&with_source(
        "a1.sources.r1.type = stress\n\
         a1.sources.r1.channels = c1\n\
         a1.sources.r1.batchSize = 101\n",
    ));
    assert!(
        matches!(e, ConfigError::BatchOverTransactionCapacity { .. }),
        "{e:?}"
    );
    names(&e, 9, "a1.sources.r1.batchSize");
}

// ---------------------------------------------------------------------------------------------
// The hdfs sink

fn hdfs_sink(lines: &str) -> String {
    format!(
        "a1.channels = c1\na1.sinks = k1\na1.channels.c1.type = memory\n\
         a1.sinks.k1.type = hdfs\na1.sinks.k1.channel = c1\n{lines}"
    )
}

#[test]
fn hdfs_sink_keys_and_flume_defaults() {
    let (cfg, warnings) = ok(&hdfs_sink(
        "a1.sinks.k1.hdfs.path = hdfs://nn:8020/flume/%{host}/%Y%m%d\n\
         a1.sinks.k1.hdfs.fileType = CompressedStream\n\
         a1.sinks.k1.hdfs.codeC = GzipCodec\n\
         a1.sinks.k1.hdfs.round = true\n\
         a1.sinks.k1.hdfs.roundValue = 10\n\
         a1.sinks.k1.hdfs.roundUnit = minute\n\
         a1.sinks.k1.hdfs.timeZone = America/Los_Angeles\n\
         a1.sinks.k1.hdfs.sync = none\n\
         a1.sinks.k1.hdfs.config.dfs.client.failover.max.attempts = 3\n\
         a1.sinks.k1.serializer = TEXT\n",
    ));
    assert!(warnings.is_empty(), "{warnings:?}");
    let Some(h) = cfg.sinks[0].settings::<HdfsSinkConfig>() else {
        panic!("not hdfs: {cfg:?}");
    };
    assert_eq!(
        (
            h.roll_interval_secs,
            h.roll_size,
            h.roll_count,
            h.batch_size
        ),
        (30, 1024, 10, 100),
        "Flume's rolling and batch defaults"
    );
    assert_eq!(
        (h.file_prefix.as_str(), h.in_use_suffix.as_str()),
        ("FlumeData", ".tmp")
    );
    assert_eq!(h.sync, crate::sink::hdfs::SyncMode::None);
    assert_eq!(
        h.hadoop_config,
        [(
            "dfs.client.failover.max.attempts".to_string(),
            "3".to_string()
        )]
    );
    assert!(h.round.is_some());
}

#[test]
fn hdfs_sink_mistakes_stop_start_up_naming_the_key() {
    for (line, key) in [
        (
            "a1.sinks.k1.hdfs.path = s3a://bucket/x",
            "a1.sinks.k1.hdfs.path",
        ),
        ("a1.sinks.k1.hdfs.path = /x/%Q", "a1.sinks.k1.hdfs.path"),
        (
            "a1.sinks.k1.hdfs.fileType = Parquet",
            "a1.sinks.k1.hdfs.fileType",
        ),
        ("a1.sinks.k1.hdfs.codeC = lzo", "a1.sinks.k1.hdfs.codeC"),
        (
            "a1.sinks.k1.hdfs.filePrefix = a/b",
            "a1.sinks.k1.hdfs.filePrefix",
        ),
        (
            "a1.sinks.k1.hdfs.timeZone = Mars/Olympus",
            "a1.sinks.k1.hdfs.timeZone",
        ),
        (
            "a1.sinks.k1.serializer = com.example.Custom$Builder",
            "a1.sinks.k1.serializer",
        ),
        (
            "a1.sinks.k1.hdfs.kerberosPrincipal = flume@X",
            "a1.sinks.k1.hdfs.kerberosPrincipal",
        ),
    ] {
        let mut text = hdfs_sink(line);
        if !line.contains("hdfs.path") {
            text.push_str("\na1.sinks.k1.hdfs.path = /x\n");
        }
        let e = err(&text);
        assert!(e.to_string().contains(key), "{line}: {e}");
    }
    let e = err(&hdfs_sink("a1.sinks.k1.hdfs.batchSize = 10\n"));
    assert!(e.to_string().contains("hdfs.path"), "{e}");
}

// ---------------------------------------------------------------------------------------------
// The avro source

#[test]
fn avro_source_keys() {
    let (cfg, warnings) = ok(&with_source(
        "a1.sources.r1.type = avro\na1.sources.r1.bind = 0.0.0.0\na1.sources.r1.port = 41414\n\
         a1.sources.r1.channels = c1\n",
    ));
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(
        source::<AvroSourceConfig>(&cfg, 0),
        AvroSourceConfig {
            bind: "0.0.0.0".into(),
            port: 41414,
            threads: None,
            max_connections: 256,
            max_frame_bytes: 64 << 20,
            deflate: None,
            ip_filter: None,
            idle_timeout: Duration::from_secs(60),
            ssl: None,
        }
    );
    assert_eq!(cfg.sources[0].type_name, "avro");

    let (cfg, warnings) = ok(&with_source(
        "a1.sources.r1.type = org.apache.flume.source.AvroSource\n\
         a1.sources.r1.bind = 127.0.0.1\na1.sources.r1.port = 0\n\
         a1.sources.r1.threads = 8\na1.sources.r1.max-connections = 3\n\
         a1.sources.r1.max-frame-bytes = 1048576\na1.sources.r1.compression-type = NONE\n\
         a1.sources.r1.ssl = false\na1.sources.r1.ipFilter = false\n\
         a1.sources.r1.idle-timeout = 5\na1.sources.r1.channels = c1\n",
    ));
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(
        source::<AvroSourceConfig>(&cfg, 0),
        AvroSourceConfig {
            bind: "127.0.0.1".into(),
            port: 0,
            threads: Some(8),
            max_connections: 3,
            max_frame_bytes: 1 << 20,
            deflate: None,
            ip_filter: None,
            idle_timeout: Duration::from_secs(5),
            ssl: None,
        }
    );
}

#[test]
fn avro_source_refusals() {
    let base = "a1.sources.r1.type = avro\na1.sources.r1.bind = 127.0.0.1\n\
                a1.sources.r1.port = 41414\na1.sources.r1.channels = c1\n";
    // Missing required keys.
    let e = err(&with_source(
        "a1.sources.r1.type = avro\na1.sources.r1.port = 1\na1.sources.r1.channels = c1\n",
    ));
    assert!(matches!(e, ConfigError::MissingKey { .. }), "{e:?}");
    assert!(e.to_string().contains("a1.sources.r1.bind"), "{e}");
    let e = err(&with_source(
        "a1.sources.r1.type = avro\na1.sources.r1.bind = x\na1.sources.r1.channels = c1\n",
    ));
    assert!(e.to_string().contains("a1.sources.r1.port"), "{e}");
    // Bad values.
    for (line, key) in [
        ("a1.sources.r1.port = 70000\n", "a1.sources.r1.port"),
        (
            "a1.sources.r1.max-connections = 0\n",
            "a1.sources.r1.max-connections",
        ),
        (
            "a1.sources.r1.max-frame-bytes = 10\n",
            "a1.sources.r1.max-frame-bytes",
        ),
        (
            "a1.sources.r1.max-frame-bytes = 8589934592\n",
            "a1.sources.r1.max-frame-bytes",
        ),
        ("a1.sources.r1.threads = many\n", "a1.sources.r1.threads"),
    ] {
        let e = err(&with_source(&format!("{base}{line}")));
        assert!(matches!(e, ConfigError::BadValue { .. }), "{line}: {e:?}");
        names(&e, 11, key);
    }
    // `ssl = true` needs a key and certificate.
    let e = err(&with_source(&format!("{base}a1.sources.r1.ssl = true\n")));
    assert!(matches!(e, ConfigError::MissingKey { .. }), "{e:?}");
    assert!(e.to_string().contains("a1.sources.r1.keystore"), "{e}");
    assert!(e.to_string().contains("ssl-cert"), "{e}");
}

#[test]
fn avro_source_ip_filter() {
    let base = "a1.sources.r1.type = avro\na1.sources.r1.bind = 127.0.0.1\n\
                a1.sources.r1.port = 41414\na1.sources.r1.channels = c1\n";
    let (cfg, warnings) = ok(&with_source(&format!(
        "{base}a1.sources.r1.ipFilter = true\n\
         a1.sources.r1.ipFilterRules = allow:ip:127.*,deny:name:*.example\n"
    )));
    assert!(warnings.is_empty(), "{warnings:?}");
    let ip_filter = source::<AvroSourceConfig>(&cfg, 0).ip_filter;
    let rules: Vec<String> = ip_filter
        .as_ref()
        .expect("a filter")
        .rules
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(rules, ["allow:ip:127.*", "deny:name:*.example"]);

    // Rules without `ipFilter = true` are ignored with a warning, as Flume ignores them.
    let (cfg, warnings) = ok(&with_source(&format!(
        "{base}a1.sources.r1.ipFilterRules = deny:ip:*\n"
    )));
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(matches!(
        &source::<AvroSourceConfig>(&cfg, 0),
        AvroSourceConfig {
            ip_filter: None,
            ..
        }
    ));

    // `ipFilter = true` without rules (or with blank ones) is refused, as in Flume.
    for extra in ["", "a1.sources.r1.ipFilterRules =  \n"] {
        let e = err(&with_source(&format!(
            "{base}a1.sources.r1.ipFilter = true\n{extra}"
        )));
        assert!(matches!(e, ConfigError::MissingKey { .. }), "{e:?}");
        assert!(e.to_string().contains("a1.sources.r1.ipFilterRules"), "{e}");
        assert!(e.to_string().contains("<allow|deny>"), "{e}");
    }

    // A malformed rule names itself and the syntax.
    let e = err(&with_source(&format!(
        "{base}a1.sources.r1.ipFilter = true\n\
         a1.sources.r1.ipFilterRules = allow:ip:127.*,permit:ip:*\n"
    )));
    assert!(matches!(e, ConfigError::BadValue { .. }), "{e:?}");
    names(&e, 12, "a1.sources.r1.ipFilterRules");
    let msg = e.to_string();
    assert!(msg.contains("`permit:ip:*`"), "{msg}");
    assert!(msg.contains("<allow|deny>:<ip|name>:<pattern>"), "{msg}");
}

// ---------------------------------------------------------------------------------------------
// The avro sink

/// A netcat source r1 -> memory channel c1 -> avro sink k1 with `lines` (from line 11).
fn with_avro_sink(lines: &str) -> String {
    with_channel(&format!("a1.channels.c1.type = memory\n{lines}")).replace("= logger", "= avro")
}

#[test]
fn avro_sink_keys() {
    let (cfg, warnings) = ok(&with_avro_sink(
        "a1.sinks.k1.hostname = collector\na1.sinks.k1.port = 41414\n",
    ));
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(
        sink::<AvroSinkConfig>(&cfg, 0),
        AvroSinkConfig {
            hostname: "collector".into(),
            port: 41414,
            batch_size: 100,
            connect_timeout: Duration::from_millis(20_000),
            request_timeout: Duration::from_millis(20_000),
            reset_connection_interval: Duration::from_secs(0),
            deflate: None,
            ssl: None,
        }
    );
    assert_eq!(cfg.sinks[0].type_name, "avro");
    assert_eq!(cfg.sinks[0].spec.batch_size().map(|b| b.0), Some(100));

    let (cfg, warnings) = ok(&with_avro_sink(
        "a1.sinks.k1.hostname = 10.0.0.1\na1.sinks.k1.port = 4545\n\
         a1.sinks.k1.batch-size = 50\na1.sinks.k1.connect-timeout = 1500\n\
         a1.sinks.k1.request-timeout = 2500\na1.sinks.k1.reset-connection-interval = 60\n\
         a1.sinks.k1.compression-type = NONE\na1.sinks.k1.ssl = false\n\
         a1.sinks.k1.trust-all-certs = true\na1.sinks.k1.truststore = /x.jks\n",
    )
    .replace(
        "a1.sinks.k1.type = avro",
        "a1.sinks.k1.type = org.apache.flume.sink.AvroSink",
    ));
    assert_eq!(
        sink::<AvroSinkConfig>(&cfg, 0),
        AvroSinkConfig {
            hostname: "10.0.0.1".into(),
            port: 4545,
            batch_size: 50,
            connect_timeout: Duration::from_millis(1500),
            request_timeout: Duration::from_millis(2500),
            reset_connection_interval: Duration::from_secs(60),
            deflate: None,
            ssl: None,
        }
    );
    // The TLS keys are ignored with a warning each, naming the key.
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(warnings
        .iter()
        .any(|w| w.to_string().contains("a1.sinks.k1.trust-all-certs")));
    assert!(warnings
        .iter()
        .any(|w| w.to_string().contains("a1.sinks.k1.truststore")));
}

#[test]
fn avro_sink_refusals() {
    let base = "a1.sinks.k1.hostname = h\na1.sinks.k1.port = 41414\n";
    // Missing required keys.
    let e = err(&with_avro_sink("a1.sinks.k1.port = 1\n"));
    assert!(matches!(e, ConfigError::MissingKey { .. }), "{e:?}");
    assert!(e.to_string().contains("a1.sinks.k1.hostname"), "{e}");
    let e = err(&with_avro_sink("a1.sinks.k1.hostname = h\n"));
    assert!(matches!(e, ConfigError::MissingKey { .. }), "{e:?}");
    assert!(e.to_string().contains("a1.sinks.k1.port"), "{e}");
    // Bad values (on line 13, after the two base lines).
    for (line, key) in [
        ("a1.sinks.k1.batch-size = 0\n", "a1.sinks.k1.batch-size"),
        (
            "a1.sinks.k1.connect-timeout = x\n",
            "a1.sinks.k1.connect-timeout",
        ),
        (
            "a1.sinks.k1.request-timeout = 0\n",
            "a1.sinks.k1.request-timeout",
        ),
        (
            "a1.sinks.k1.reset-connection-interval = -1\n",
            "a1.sinks.k1.reset-connection-interval",
        ),
    ] {
        let e = err(&with_avro_sink(&format!("{base}{line}")));
        assert!(matches!(e, ConfigError::BadValue { .. }), "{line}: {e:?}");
        names(&e, 13, key);
    }
    for port in ["0", "70000", "http"] {
        let e = err(&with_avro_sink(&format!(
            "a1.sinks.k1.hostname = h\na1.sinks.k1.port = {port}\n"
        )));
        assert!(matches!(e, ConfigError::BadValue { .. }), "{port}: {e:?}");
        names(&e, 12, "a1.sinks.k1.port");
    }
    // A batch larger than the channel's transactionCapacity (100 by default).
    let e = err(&with_avro_sink(&format!(
        "{base}a1.sinks.k1.batch-size = 1000\n"
    )));
    assert!(e.to_string().contains("a1.sinks.k1.batch-size"), "{e}");
    // `verify-hostname = true` cannot go with `trust-all-certs = true`.
    let e = err(&with_avro_sink(&format!(
        "{base}a1.sinks.k1.ssl = true\na1.sinks.k1.trust-all-certs = true\n\
         a1.sinks.k1.verify-hostname = true\n"
    )));
    assert!(matches!(e, ConfigError::BadValue { .. }), "{e:?}");
    names(&e, 15, "a1.sinks.k1.verify-hostname");
}

#[test]
fn avro_compression_keys() {
    let avro = "a1.sources.r1.type = avro\na1.sources.r1.bind = 127.0.0.1\n\
                  a1.sources.r1.port = 41414\na1.sources.r1.channels = c1\n";
    let deflate_of = |cfg: &AgentConfig| source::<AvroSourceConfig>(cfg, 0).deflate;
    let sink_deflate_of = |cfg: &AgentConfig| sink::<AvroSinkConfig>(cfg, 0).deflate;
    let (cfg, warnings) = ok(&with_source(&format!(
        "{avro}a1.sources.r1.compression-type = deflate\n"
    )));
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(deflate_of(&cfg), Some(6));
    for level in 0..=9u32 {
        let (cfg, _) = ok(&with_source(&format!(
            "{avro}a1.sources.r1.compression-type = DEFLATE\na1.sources.r1.compression-level = {level}\n"
        )));
        assert_eq!(deflate_of(&cfg), Some(level));
    }
    // A level without deflate is ignored with a warning.
    let (cfg, warnings) = ok(&with_source(&format!(
        "{avro}a1.sources.r1.compression-level = 3\n"
    )));
    assert_eq!(deflate_of(&cfg), None);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    for bad in ["10", "-1", "fast"] {
        let e = err(&with_source(&format!(
            "{avro}a1.sources.r1.compression-type = deflate\na1.sources.r1.compression-level = {bad}\n"
        )));
        assert!(matches!(e, ConfigError::BadValue { .. }), "{bad}: {e:?}");
        assert!(
            e.to_string().contains("a1.sources.r1.compression-level"),
            "{e}"
        );
    }
    let e = err(&with_source(&format!(
        "{avro}a1.sources.r1.compression-type = gzip\n"
    )));
    assert!(
        e.to_string().contains("a1.sources.r1.compression-type"),
        "{e}"
    );

    let (cfg, warnings) = ok(&with_avro_sink(
        "a1.sinks.k1.hostname = h\na1.sinks.k1.port = 41414\n\
         a1.sinks.k1.compression-type = deflate\na1.sinks.k1.compression-level = 1\n",
    ));
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(sink_deflate_of(&cfg), Some(1));
    let e = err(&with_avro_sink(
        "a1.sinks.k1.hostname = h\na1.sinks.k1.port = 41414\n\
         a1.sinks.k1.compression-type = deflate\na1.sinks.k1.compression-level = 12\n",
    ));
    assert!(matches!(e, ConfigError::BadValue { .. }), "{e:?}");
    assert!(
        e.to_string().contains("a1.sinks.k1.compression-level"),
        "{e}"
    );
}

// ---------------------------------------------------------------------------------------------
// TLS (`ssl = true`) on the avro source and sink

fn source_tls(cfg: &AgentConfig) -> crate::avro::tls::ServerTls {
    let s = source::<AvroSourceConfig>(cfg, 0);
    s.ssl
        .unwrap_or_else(|| panic!("no ssl in {:?}", cfg.sources[0]))
}

fn sink_tls(cfg: &AgentConfig) -> crate::avro::tls::ClientTls {
    let s = sink::<AvroSinkConfig>(cfg, 0);
    s.ssl
        .unwrap_or_else(|| panic!("no ssl in {:?}", cfg.sinks[0]))
}

const AVRO_SOURCE: &str = "a1.sources.r1.type = avro\na1.sources.r1.bind = 127.0.0.1\n\
                           a1.sources.r1.port = 41414\na1.sources.r1.channels = c1\n";

#[test]
fn avro_source_tls_keys() {
    use crate::avro::tls::{Filters, Identity, Secret, ServerTls, Store, StoreType};
    let (cfg, warnings) = ok(&with_source(&format!(
        "{AVRO_SOURCE}a1.sources.r1.ssl = true\na1.sources.r1.keystore = /etc/flume/ks.p12\n\
         a1.sources.r1.keystore-password = s3cret\na1.sources.r1.keystore-type = pkcs12\n\
         a1.sources.r1.include-protocols = TLSv1.3 TLSv1.2\n\
         a1.sources.r1.exclude-cipher-suites = TLS_AES_128_GCM_SHA256,TLS_CHACHA20_POLY1305_SHA256\n"
    )));
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(
        source_tls(&cfg),
        ServerTls {
            identity: Identity::Keystore(Store {
                path: "/etc/flume/ks.p12".into(),
                password: Some(Secret("s3cret".into())),
                store_type: Some(StoreType::Pkcs12),
            }),
            filters: Filters {
                include_protocols: Some(vec!["TLSv1.3".into(), "TLSv1.2".into()]),
                exclude_protocols: vec!["SSLv3".into()],
                include_cipher_suites: None,
                exclude_cipher_suites: vec![
                    "TLS_AES_128_GCM_SHA256".into(),
                    "TLS_CHACHA20_POLY1305_SHA256".into()
                ],
            },
        }
    );
    // The password never shows in the configuration's Debug output.
    assert!(!format!("{cfg:?}").contains("s3cret"));

    // Our PEM keys.
    let (cfg, warnings) = ok(&with_source(&format!(
        "{AVRO_SOURCE}a1.sources.r1.ssl = true\na1.sources.r1.ssl-cert = /c.pem\n\
         a1.sources.r1.ssl-key = /k.pem\n"
    )));
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(
        source_tls(&cfg).identity,
        Identity::Pem {
            cert: "/c.pem".into(),
            key: "/k.pem".into()
        }
    );

    // With `ssl = false` the TLS keys are ignored with a warning each.
    let (cfg, warnings) = ok(&with_source(&format!(
        "{AVRO_SOURCE}a1.sources.r1.keystore = /k.p12\na1.sources.r1.exclude-protocols = SSLv3\n"
    )));
    assert!(matches!(
        source::<AvroSourceConfig>(&cfg, 0),
        AvroSourceConfig { ssl: None, .. }
    ));
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(
        warnings[0].to_string().contains("ssl = true"),
        "{}",
        warnings[0]
    );
}

#[test]
fn avro_source_tls_refusals() {
    // JKS, named by keystore-type: refused with the command that converts the file.
    let e = err(&with_source(&format!(
        "{AVRO_SOURCE}a1.sources.r1.ssl = true\na1.sources.r1.keystore = /etc/ks.jks\n\
         a1.sources.r1.keystore-type = JKS\n"
    )));
    assert!(matches!(e, ConfigError::Unsupported { .. }), "{e:?}");
    names(&e, 13, "a1.sources.r1.keystore-type");
    let msg = e.to_string();
    assert!(
        msg.contains(
            "keytool -importkeystore -srckeystore /etc/ks.jks -destkeystore /etc/ks.jks.p12 -deststoretype PKCS12"
        ),
        "{msg}"
    );
    assert!(msg.contains("ssl-cert"), "{msg}");
    let e = err(&with_source(&format!(
        "{AVRO_SOURCE}a1.sources.r1.ssl = true\na1.sources.r1.keystore = /k\n\
         a1.sources.r1.keystore-type = BKS\n"
    )));
    assert!(matches!(e, ConfigError::BadValue { .. }), "{e:?}");
    // Half of the PEM pair, or both kinds at once.
    let e = err(&with_source(&format!(
        "{AVRO_SOURCE}a1.sources.r1.ssl = true\na1.sources.r1.ssl-cert = /c.pem\n"
    )));
    assert!(e.to_string().contains("a1.sources.r1.ssl-key"), "{e}");
    let e = err(&with_source(&format!(
        "{AVRO_SOURCE}a1.sources.r1.ssl = true\na1.sources.r1.keystore = /k.p12\n\
         a1.sources.r1.ssl-cert = /c.pem\na1.sources.r1.ssl-key = /k.pem\n"
    )));
    assert!(matches!(e, ConfigError::BadValue { .. }), "{e:?}");
    names(&e, 13, "a1.sources.r1.ssl-cert");
}

/// Makes a PKCS#12 keystore with keytool (the JDK's, as the project's tests need Java).
fn keytool_keystore(dir: &std::path::Path, password: &str) -> PathBuf {
    crate::avro::tls::test_keys::keytool_keystore(dir, "RSA", password)
}

/// The keystore is read when the source is built (agent start-up, not while parsing): a
/// missing file, a wrong password and a store without a private key are errors naming the key
/// and the file.
#[test]
fn avro_source_tls_keystore_errors_name_the_key_and_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ks = keytool_keystore(dir.path(), "changeit");
    let build = |path: &std::path::Path, password: &str| {
        let (cfg, _) = ok(&with_source(&format!(
            "{AVRO_SOURCE}a1.sources.r1.ssl = true\na1.sources.r1.keystore = {}\n\
             a1.sources.r1.keystore-password = {password}\n",
            path.display()
        )));
        crate::avro::tls::server_config(&source_tls(&cfg))
    };
    build(&ks, "changeit").expect("the right password works");

    let missing = dir.path().join("missing.p12");
    let e = build(&missing, "changeit").expect_err("missing file");
    assert_eq!(e.key(), "keystore");
    assert!(e.to_string().contains("missing.p12"), "{e}");

    let e = build(&ks, "wrong-pw").expect_err("wrong password");
    assert_eq!(e.key(), "keystore-password");
    let msg = e.to_string();
    assert!(
        msg.contains("wrong password") && msg.contains("ks.p12"),
        "{msg}"
    );
    assert!(!msg.contains("wrong-pw"), "the password leaked: {msg}");

    // A truststore (certificates only) is not a keystore.
    let cert = dir.path().join("c.cer");
    let ts = dir.path().join("ts.p12");
    for args in [
        vec![
            "-exportcert",
            "-alias",
            "flumen",
            "-rfc",
            "-storepass",
            "changeit",
            "-keystore",
        ],
        vec![
            "-importcert",
            "-noprompt",
            "-alias",
            "ca",
            "-storetype",
            "PKCS12",
            "-storepass",
            "changeit",
            "-keystore",
        ],
    ] {
        let mut c = std::process::Command::new("keytool");
        c.args(&args);
        if args[0] == "-exportcert" {
            c.arg(&ks).arg("-file").arg(&cert);
        } else {
            c.arg(&ts).arg("-file").arg(&cert);
        }
        let st = c
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .expect("keytool");
        assert!(st.success(), "keytool {args:?}");
    }
    let e = build(&ts, "changeit").expect_err("no private key");
    assert!(e.to_string().contains("no private key"), "{e}");
    assert!(e.to_string().contains("ts.p12"), "{e}");

    // A JKS file is refused by its bytes even when keystore-type is not set.
    let jks = dir.path().join("old.jks");
    std::fs::write(&jks, [0xFE, 0xED, 0xFE, 0xED, 0, 0, 0, 2, 0, 0, 0, 0]).expect("write");
    let e = build(&jks, "changeit").expect_err("jks");
    assert!(e.to_string().contains("keytool -importkeystore"), "{e}");
}

/// Flume's global SSL settings (Flume 1.9+): each TLS key a component leaves unset falls back
/// to its `FLUME_SSL_*` variable; a component key wins; the PEM keys (ours) are never mixed
/// with a global keystore.
#[test]
fn avro_tls_keys_fall_back_to_flumes_global_ssl_settings() {
    use crate::avro::tls::{Identity, Secret, Store, StoreType, Trust};
    let global = |name: &str| -> Option<String> {
        Some(
            match name {
                "FLUME_SSL_KEYSTORE_PATH" => "/etc/flume/global-ks.p12",
                "FLUME_SSL_KEYSTORE_PASSWORD" => "global-pw",
                "FLUME_SSL_KEYSTORE_TYPE" => "PKCS12",
                "FLUME_SSL_TRUSTSTORE_PATH" => "/etc/flume/global-ts.p12",
                "FLUME_SSL_TRUSTSTORE_PASSWORD" => "global-tpw",
                "FLUME_SSL_INCLUDE_PROTOCOLS" => "TLSv1.3",
                _ => return None,
            }
            .to_string(),
        )
    };
    let build = |text: &str| parse_with_env(text, F, "a1", &global);

    let (cfg, warnings) = build(&with_source(&format!(
        "{AVRO_SOURCE}a1.sources.r1.ssl = true
"
    )))
    .expect("source");
    assert!(warnings.is_empty(), "{warnings:?}");
    let t = source_tls(&cfg);
    assert_eq!(
        t.identity,
        Identity::Keystore(Store {
            path: "/etc/flume/global-ks.p12".into(),
            password: Some(Secret("global-pw".into())),
            store_type: Some(StoreType::Pkcs12),
        })
    );
    assert_eq!(t.filters.include_protocols, Some(vec!["TLSv1.3".into()]));

    // A component key wins, key by key.
    let (cfg, _) = build(&with_source(&format!(
        "{AVRO_SOURCE}a1.sources.r1.ssl = true
a1.sources.r1.keystore = /own.p12
"
    )))
    .expect("own keystore");
    assert_eq!(
        source_tls(&cfg).identity,
        Identity::Keystore(Store {
            path: "/own.p12".into(),
            password: Some(Secret("global-pw".into())),
            store_type: Some(StoreType::Pkcs12),
        })
    );
    // PEM files of the component's own: the global keystore stays out of it.
    let (cfg, _) = build(&with_source(&format!(
        "{AVRO_SOURCE}a1.sources.r1.ssl = true
a1.sources.r1.ssl-cert = /c.pem
         a1.sources.r1.ssl-key = /k.pem
"
    )))
    .expect("pem");
    assert!(matches!(source_tls(&cfg).identity, Identity::Pem { .. }));

    // The sink's truststore.
    let (cfg, _) = build(&with_avro_sink(
        "a1.sinks.k1.hostname = h
a1.sinks.k1.port = 41414
a1.sinks.k1.ssl = true
",
    ))
    .expect("sink");
    assert_eq!(
        sink_tls(&cfg).trust,
        Trust::Store(Store {
            path: "/etc/flume/global-ts.p12".into(),
            password: Some(Secret("global-tpw".into())),
            store_type: None,
        })
    );

    // A JKS type from the environment is refused, naming where the value came from.
    let jks = |name: &str| match name {
        "FLUME_SSL_KEYSTORE_PATH" => Some("/etc/flume/ks.jks".to_string()),
        "FLUME_SSL_KEYSTORE_TYPE" => Some("JKS".to_string()),
        _ => None,
    };
    let e = parse_with_env(
        &with_source(&format!(
            "{AVRO_SOURCE}a1.sources.r1.ssl = true
"
        )),
        F,
        "a1",
        &jks,
    )
    .expect_err("jks");
    let msg = e.to_string();
    assert!(
        msg.contains("FLUME_SSL_KEYSTORE_TYPE") && msg.contains("keytool -importkeystore"),
        "{msg}"
    );

    // Without any keystore, the error names the global variables too.
    let e = err(&with_source(&format!(
        "{AVRO_SOURCE}a1.sources.r1.ssl = true
"
    )));
    assert!(e.to_string().contains("FLUME_SSL_KEYSTORE_PATH"), "{e}");
}

#[test]
fn avro_sink_tls_keys() {
    use crate::avro::tls::{Secret, Store, StoreType, Trust};
    let base = "a1.sinks.k1.hostname = h\na1.sinks.k1.port = 41414\na1.sinks.k1.ssl = true\n";
    // No truststore: the system's roots, with host names checked.
    let (cfg, warnings) = ok(&with_avro_sink(base));
    assert!(warnings.is_empty(), "{warnings:?}");
    let t = sink_tls(&cfg);
    assert_eq!(t.trust, Trust::System);
    assert!(t.verifies_hostname());
    // A truststore: as Flume, names are not checked unless asked.
    let (cfg, warnings) = ok(&with_avro_sink(&format!(
        "{base}a1.sinks.k1.truststore = /ts.p12\na1.sinks.k1.truststore-password = pw\n\
         a1.sinks.k1.truststore-type = PKCS12\na1.sinks.k1.exclude-protocols = SSLv3 TLSv1.2\n"
    )));
    assert!(warnings.is_empty(), "{warnings:?}");
    let t = sink_tls(&cfg);
    assert_eq!(
        t.trust,
        Trust::Store(Store {
            path: "/ts.p12".into(),
            password: Some(Secret("pw".into())),
            store_type: Some(StoreType::Pkcs12),
        })
    );
    assert!(!t.verifies_hostname());
    assert_eq!(t.filters.exclude_protocols, ["SSLv3", "TLSv1.2"]);
    let (cfg, _) = ok(&with_avro_sink(&format!(
        "{base}a1.sinks.k1.truststore = /ts.p12\na1.sinks.k1.verify-hostname = true\n"
    )));
    assert!(sink_tls(&cfg).verifies_hostname());
    // trust-all-certs wins over a truststore, which is ignored with a warning.
    let (cfg, warnings) = ok(&with_avro_sink(&format!(
        "{base}a1.sinks.k1.trust-all-certs = true\na1.sinks.k1.truststore = /ts.p12\n"
    )));
    assert_eq!(sink_tls(&cfg).trust, Trust::All);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    // JKS truststores are refused with the conversion command.
    let e = err(&with_avro_sink(&format!(
        "{base}a1.sinks.k1.truststore = /ts.jks\na1.sinks.k1.truststore-type = jks\n"
    )));
    assert!(matches!(e, ConfigError::Unsupported { .. }), "{e:?}");
    names(&e, 15, "a1.sinks.k1.truststore-type");
    assert!(e.to_string().contains("-srckeystore /ts.jks"), "{e}");
    // A truststore that does not exist is an error naming it when the sink is built.
    let (cfg, _) = ok(&with_avro_sink(&format!(
        "{base}a1.sinks.k1.truststore = /nonexistent/ts.p12\n"
    )));
    let e = crate::avro::tls::client_config(&sink_tls(&cfg)).expect_err("missing");
    assert_eq!(e.key(), "truststore");
    assert!(e.to_string().contains("/nonexistent/ts.p12"), "{e}");
}

// ---------------------------------------------------------------------------------------------
// Sink groups

/// Sinks k1, k2, k3 (null) on c1 and the group lines the test adds (from line 12).
fn with_sinks(group_lines: &str) -> String {
    format!(
        "a1.sources = r1\n\
         a1.channels = c1\n\
         a1.sinks = k1 k2 k3\n\
         a1.sources.r1.type = seq\n\
         a1.sources.r1.channels = c1\n\
         a1.channels.c1.type = memory\n\
         a1.sinks.k1.type = null\n\
         a1.sinks.k1.channel = c1\n\
         a1.sinks.k2.type = null\n\
         a1.sinks.k2.channel = c1\n\
         a1.sinks.k3.type = null\n\
         a1.sinks.k3.channel = c1\n\
         {group_lines}"
    )
}

#[test]
fn sink_groups_name_their_sinks_and_processor() {
    use crate::sink::group::failover::FailoverConfig;
    use crate::sink::group::load_balance::{LoadBalanceConfig, Selector};
    let (cfg, warnings) = ok(&with_sinks(
        "a1.sinkgroups = g1 g2\n\
         a1.sinkgroups.g1.sinks = k2 k1\n\
         a1.sinkgroups.g1.processor.type = failover\n\
         a1.sinkgroups.g1.processor.priority.k1 = 10\n\
         a1.sinkgroups.g1.processor.priority.k2 = 5\n\
         a1.sinkgroups.g1.processor.maxpenalty = 10000\n\
         a1.sinkgroups.g2.sinks = k3\n",
    ));
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(cfg.sinkgroups.len(), 2);
    let g1 = &cfg.sinkgroups[0];
    assert_eq!((g1.name.as_str(), g1.type_name), ("g1", "failover"));
    assert_eq!(g1.sinks, ["k2", "k1"]);
    let f = g1.settings::<FailoverConfig>().expect("failover");
    assert_eq!(f.max_penalty, Duration::from_secs(10));
    assert_eq!(f.priorities.len(), 2);
    // No processor.type: Flume's default processor, for one sink.
    assert_eq!(cfg.sinkgroups[1].type_name, "default");
    // Every sink is still built; the agent runs grouped ones on their group's thread.
    assert_eq!(cfg.sinks.len(), 3);

    let (cfg, _) = ok(&with_sinks(
        "a1.sinkgroups = g2\n\
         a1.sinkgroups.g2.sinks = k3 k1\n\
         a1.sinkgroups.g2.processor.type = org.apache.flume.sink.LoadBalancingSinkProcessor\n\
         a1.sinkgroups.g2.processor.selector = random\n",
    ));
    let g2 = &cfg.sinkgroups[0];
    assert_eq!(g2.type_name, "load_balance");
    let lb = g2.settings::<LoadBalanceConfig>().expect("load_balance");
    assert_eq!(lb.selector, Selector::Random);
}

#[test]
fn sink_group_mistakes_flume_would_run_differently_are_errors() {
    // A sink not listed in the agent's sinks (Flume drops it from the group).
    let e = err(&with_sinks(
        "a1.sinkgroups = g1\na1.sinkgroups.g1.sinks = k1 k9\na1.sinkgroups.g1.processor.type = failover\n",
    ));
    names(&e, 14, "a1.sinkgroups.g1.sinks");
    assert!(e.to_string().contains("k9"), "{e}");
    // A sink in two groups (Flume leaves it out of the second).
    let e = err(&with_sinks(
        "a1.sinkgroups = g1 g2\na1.sinkgroups.g1.sinks = k1 k2\na1.sinkgroups.g1.processor.type = failover\n\
         a1.sinkgroups.g2.sinks = k2 k3\na1.sinkgroups.g2.processor.type = load_balance\n",
    ));
    names(&e, 16, "a1.sinkgroups.g2.sinks");
    assert!(e.to_string().contains("already in group `g1`"), "{e}");
    // A listed group without sinks (Flume drops the group).
    let e = err(&with_sinks("a1.sinkgroups = g1\n"));
    names(&e, 13, "a1.sinkgroups.g1.sinks");
    // The default processor with several sinks (Flume drops the group and its sinks).
    let e = err(&with_sinks(
        "a1.sinkgroups = g1\na1.sinkgroups.g1.sinks = k1 k2\n",
    ));
    assert!(
        e.to_string().contains("a1.sinkgroups.g1.processor.type"),
        "{e}"
    );
    // A Java class as processor or selector cannot be loaded.
    let e = err(&with_sinks(
        "a1.sinkgroups = g1\na1.sinkgroups.g1.sinks = k1 k2\na1.sinkgroups.g1.processor.type = com.example.MyProcessor\n",
    ));
    names(&e, 15, "a1.sinkgroups.g1.processor.type");
    assert!(e.to_string().contains("Java class"), "{e}");
    let e = err(&with_sinks(
        "a1.sinkgroups = g1\na1.sinkgroups.g1.sinks = k1 k2\na1.sinkgroups.g1.processor.type = load_balance\n\
         a1.sinkgroups.g1.processor.selector = com.example.Sel\n",
    ));
    names(&e, 16, "a1.sinkgroups.g1.processor.selector");
    // load_balance with one sink (Flume refuses the group, and the sink does not run).
    let e = err(&with_sinks(
        "a1.sinkgroups = g1\na1.sinkgroups.g1.sinks = k1\na1.sinkgroups.g1.processor.type = load_balance\n",
    ));
    names(&e, 15, "a1.sinkgroups.g1.processor.type");
    assert!(e.to_string().contains("two sinks or more"), "{e}");
    // Two sinks with one priority (Flume drops the second).
    let e = err(&with_sinks(
        "a1.sinkgroups = g1\na1.sinkgroups.g1.sinks = k1 k2\na1.sinkgroups.g1.processor.type = failover\n\
         a1.sinkgroups.g1.processor.priority.k1 = 3\na1.sinkgroups.g1.processor.priority.k2 = 3\n",
    ));
    names(&e, 17, "a1.sinkgroups.g1.processor.priority.k2");
}

#[test]
fn sink_group_warnings() {
    let (cfg, warnings) = ok(&with_sinks(
        "a1.sinkgroups = g1\na1.sinkgroups.g1.sinks = k1 k2\na1.sinkgroups.g1.processor.type = failover\n\
         a1.sinkgroups.g1.processor.priority.k3 = 3\n\
         a1.sinkgroups.g1.processor.maxpenality = 3\n\
         a1.sinkgroups.g1.sink = k1\n\
         a1.sinkgroups.g9.sinks = k3\n",
    ));
    assert_eq!(cfg.sinkgroups.len(), 1);
    let keys: Vec<&str> = warnings.iter().map(|w| w.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "a1.sinkgroups.g1.processor.priority.k3",
            "a1.sinkgroups.g1.processor.maxpenality",
            "a1.sinkgroups.g1.sink",
            "a1.sinkgroups.g9",
        ],
        "{warnings:#?}"
    );

    // A group's name listed among the sinks, without sink keys: ignored there, as in Flume.
    let text = with_sinks(
        "a1.sinkgroups = g1\na1.sinkgroups.g1.sinks = k1 k2\na1.sinkgroups.g1.processor.type = failover\n",
    )
    .replace("a1.sinks = k1 k2 k3\n", "a1.sinks = k1 k2 k3 g1\n");
    let (cfg, warnings) = ok(&text);
    assert_eq!(cfg.sinks.len(), 3);
    assert_eq!(cfg.sinkgroups[0].sinks, ["k1", "k2"]);
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    assert_eq!(
        (warnings[0].line, warnings[0].key.as_str()),
        (3, "a1.sinks")
    );
    assert!(warnings[0].to_string().contains("is a sink group"));

    // A group named like a sink that runs on its own: Flume would run only one of them.
    let (_, warnings) = ok(&with_sinks(
        "a1.sinkgroups = k3\na1.sinkgroups.k3.sinks = k1 k2\na1.sinkgroups.k3.processor.type = failover\n",
    ));
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    assert_eq!(warnings[0].key, "a1.sinkgroups.k3");
    assert!(warnings[0].to_string().contains("Flume would run only one"));
}
