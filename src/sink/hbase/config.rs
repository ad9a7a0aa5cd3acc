//! The HBase sinks' keys (Flume 1.11's HBase2Sink, HBaseSink and AsyncHBaseSink; docs/CONFIG.md
//! `hbase2`, `hbase`, `asynchbase`), read with Flume's defaults into one configuration: the
//! three differ in their default serializer and in a few keys only the asynchbase sink reads
//! (`timeout`, `maxConsecutiveFails`, `async.*`) or only the other two do (`kerberos*`).
//!
//! Where Flume reads `hbase-site.xml` for an unset `zookeeperQuorum`, flumen reads no HBase
//! configuration file and uses HBase's own default, `localhost:2181`.
//!
//! Invariant: every mistake that can be seen before the first event stops start-up naming
//! the file, line and key: missing `table` or `columnFamily`, a bad number, a quorum that is no
//! `host[:port]` list, a serializer class flumen does not have, Kerberos.

use std::time::Duration;

use super::serializer::{self, Serializer};
use crate::config::{ConfigError, Keys, Val, WarningKind};
use crate::hbase::ClientConfig;

/// HBase's default quorum (`hbase.zookeeper.quorum` = localhost, client port 2181).
pub const DEFAULT_QUORUM: &str = "localhost:2181";
/// HBase's default parent znode.
pub const DEFAULT_ZNODE_PARENT: &str = "/hbase";
/// asynchbase's `timeout` default (milliseconds).
pub const DEFAULT_ASYNC_TIMEOUT_MS: u64 = 60_000;
/// asynchbase's `maxConsecutiveFails` default.
pub const DEFAULT_MAX_CONSECUTIVE_FAILS: u32 = 10;

/// Which of Flume's three sinks a configuration is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    /// `hbase2`, `org.apache.flume.sink.hbase2.HBase2Sink`.
    HBase2,
    /// `hbase`, `org.apache.flume.sink.hbase.HBaseSink`.
    HBase,
    /// `asynchbase`, `org.apache.flume.sink.hbase.AsyncHBaseSink`.
    Async,
}

impl Flavor {
    /// The serializer Flume's sink uses when `serializer` is unset.
    pub fn default_serializer(self) -> &'static str {
        match self {
            Flavor::HBase2 => serializer::SIMPLE_CLASSES[0],
            Flavor::HBase => serializer::SIMPLE_CLASSES[1],
            Flavor::Async => serializer::SIMPLE_CLASSES[2],
        }
    }
}

/// An HBase sink's configuration (see the module docs).
#[derive(Clone, Debug)]
pub struct HBaseSinkConfig {
    pub flavor: Flavor,
    /// `table` (required), `namespace:name` or `name`.
    pub table: String,
    /// `columnFamily` (required), in UTF-8 as Flume encodes it.
    pub family: Vec<u8>,
    /// `zookeeperQuorum` (`localhost:2181`), entries trimmed.
    pub quorum: String,
    /// `znodeParent` (`/hbase`).
    pub znode_parent: String,
    /// `batchSize` (100).
    pub batch_size: usize,
    /// `coalesceIncrements` (false).
    pub coalesce_increments: bool,
    /// `enableWal = false`: writes skip the write-ahead log.
    pub skip_wal: bool,
    /// One RPC's deadline: 60 s, less when asynchbase's `timeout` is shorter;
    /// `async.hbase.rpc.timeout` when set.
    pub rpc_timeout: Duration,
    /// How long one batch may take, retries included: 60 s; asynchbase's `timeout`.
    pub operation_timeout: Duration,
    /// Failed batches in a row after which the client is dropped and made anew
    /// (asynchbase's `maxConsecutiveFails`, 10; 0: never).
    pub max_consecutive_fails: u32,
    pub serializer: Serializer,
}

impl HBaseSinkConfig {
    /// The client's configuration.
    pub fn client_config(&self) -> ClientConfig {
        let mut c = ClientConfig::new(&self.quorum, &self.znode_parent);
        c.rpc_timeout = self.rpc_timeout;
        c.operation_timeout = self.operation_timeout;
        c.skip_wal = self.skip_wal;
        c
    }
}

/// Checks a quorum: `host[:port]` entries separated by commas. A host without a port means
/// 2181, and the ports may differ (Flume's hbase and hbase2 sinks insist on a port, the same
/// on every host; its asynchbase sink does not).
fn quorum(s: &str) -> Result<String, String> {
    let mut out = Vec::new();
    for entry in s.split(',') {
        let entry = entry.trim();
        if entry.is_empty() {
            if out.is_empty() && s.trim().is_empty() {
                break;
            }
            continue;
        }
        if let Some((host, port)) = entry.rsplit_once(':') {
            if host.is_empty() || host.contains(':') {
                return Err(format!(
                    "`host[:port]` entries separated by commas (`{entry}` is not one; an IPv6 address is not supported here)"
                ));
            }
            match port.trim().parse::<u16>() {
                Ok(p) if p > 0 => {}
                _ => {
                    return Err(format!(
                        "`host[:port]` entries separated by commas, ports 1 to 65535 (`{entry}`)"
                    ))
                }
            }
        }
        out.push(entry.to_string());
    }
    if out.is_empty() {
        return Err("at least one ZooKeeper `host[:port]`".into());
    }
    Ok(out.join(","))
}

/// Whether `t` is a table name HBase accepts (`TableName.valueOf`'s rules, ASCII): an
/// optional namespace of word characters, then a name of word characters, `-` and `.`, not
/// starting with either.
fn table_name_ok(t: &str) -> bool {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let (ns, name) = match t.split_once(':') {
        Some((ns, name)) => (Some(ns), name),
        None => (None, t),
    };
    ns.is_none_or(|ns| !ns.is_empty() && ns.chars().all(word))
        && !name.is_empty()
        && !name.starts_with(['-', '.'])
        && name.chars().all(|c| word(c) || c == '-' || c == '.')
}

/// Refuses Kerberos: `key` set to a non-empty value.
fn no_kerberos(keys: &mut Keys<'_>, key: &'static str) -> Result<(), ConfigError> {
    if let Some(v) = keys.get(key) {
        if !v.value.trim().is_empty() {
            return Err(kerberos(keys, key, &v));
        }
    }
    Ok(())
}

fn kerberos(keys: &Keys<'_>, key: &str, v: &Val) -> ConfigError {
    keys.unsupported(
        key,
        v.line,
        "Kerberos (SASL) authentication to HBase",
        "flumen's HBase client authenticates with SIMPLE authentication only, as the OS user (or $USER). For a cluster with hbase.security.authentication = kerberos keep Apache Flume for this sink; for one without, remove the key",
    )
}

/// Reads an HBase sink's keys for `flavor`.
pub fn parse(keys: &mut Keys<'_>, flavor: Flavor) -> Result<HBaseSinkConfig, ConfigError> {
    // One error per component is reported: a serializer class flumen does not have is the
    // one a user can do least about, so it is named first, before a missing key.
    let serializer = serializer::parse(keys, flavor.default_serializer())?;
    let table = keys.required(
        "table",
        "the HBase table to write to (`namespace:table` or `table`); it must exist, as in Flume",
    )?;
    let family = keys.required(
        "columnFamily",
        "the column family of `table` the serializer writes to",
    )?;
    if !table_name_ok(table.value.trim()) {
        return Err(keys.bad(
            "table",
            &table,
            "an HBase table name, `name` or `namespace:name`: letters, digits, `_`, and in the name also `-` and `.` (not first)",
        ));
    }
    let f = family.value.trim();
    if f.is_empty() || f.contains(':') || f.starts_with('.') || f.chars().any(char::is_control) {
        return Err(keys.bad(
            "columnFamily",
            &family,
            "an HBase column family name: no `:`, not starting with `.`",
        ));
    }

    keys.document_default("zookeeperQuorum", DEFAULT_QUORUM);
    let mut quorum_v = keys
        .get("zookeeperQuorum")
        .filter(|v| !v.value.trim().is_empty());
    keys.document_default("znodeParent", DEFAULT_ZNODE_PARENT);
    let mut znode_v = keys
        .get("znodeParent")
        .filter(|v| !v.value.trim().is_empty());
    let batch_size = keys.size("batchSize", 100, 1, "events")?;
    let coalesce_increments = keys.boolean("coalesceIncrements", false)?;
    let skip_wal = !keys.boolean("enableWal", true)?;
    if skip_wal {
        // Flume warns likewise when it reads the key.
        let line = keys.line_of("enableWal");
        keys.warn(
            line,
            "enableWal",
            WarningKind::Surprise {
                advice: "false: puts and increments skip the region server's write-ahead log (SKIP_WAL, as in Flume), so writes acknowledged but not yet flushed are lost if a region server dies; the sink's take commits all the same".into(),
            },
        );
    }

    let mut rpc_timeout = Duration::from_secs(60);
    let mut operation_timeout = Duration::from_secs(60);
    let mut max_consecutive_fails = DEFAULT_MAX_CONSECUTIVE_FAILS;
    match flavor {
        Flavor::HBase2 | Flavor::HBase => {
            no_kerberos(keys, "kerberosPrincipal")?;
            no_kerberos(keys, "kerberosKeytab")?;
        }
        Flavor::Async => {
            keys.document_default("timeout", DEFAULT_ASYNC_TIMEOUT_MS.to_string());
            if let Some(v) = keys.get("timeout") {
                match v.value.trim().parse::<i64>() {
                    Ok(ms) if ms > 0 => {
                        operation_timeout = Duration::from_millis(ms.unsigned_abs());
                        rpc_timeout = rpc_timeout.min(operation_timeout);
                    }
                    Ok(_) => keys.warn(
                        v.line,
                        "timeout",
                        WarningKind::Surprise {
                            advice: format!(
                                "not positive, so the default {DEFAULT_ASYNC_TIMEOUT_MS} ms is used, as in Flume"
                            ),
                        },
                    ),
                    Err(_) => {
                        return Err(keys.bad(
                            "timeout",
                            &v,
                            "milliseconds a batch may take to be acknowledged",
                        ))
                    }
                }
            }
            keys.document_default(
                "maxConsecutiveFails",
                DEFAULT_MAX_CONSECUTIVE_FAILS.to_string(),
            );
            if let Some(v) = keys.get("maxConsecutiveFails") {
                let n = v.value.trim().parse::<i32>().map_err(|_| {
                    keys.bad(
                        "maxConsecutiveFails",
                        &v,
                        "a whole number of failed batches (0 or less: never renew the client)",
                    )
                })?;
                max_consecutive_fails = u32::try_from(n).unwrap_or(0);
            }
            read_async(keys, &mut quorum_v, &mut znode_v, &mut rpc_timeout)?;
        }
    }

    let quorum = match &quorum_v {
        Some(v) => quorum(&v.value).map_err(|e| keys.bad("zookeeperQuorum", v, e))?,
        None => DEFAULT_QUORUM.to_string(),
    };
    let znode_parent = match &znode_v {
        Some(v) if !v.value.starts_with('/') || (v.value.len() > 1 && v.value.ends_with('/')) => {
            return Err(keys.bad(
                "znodeParent",
                v,
                "a ZooKeeper path: starting with `/`, not ending with one, e.g. /hbase",
            ))
        }
        Some(v) => v.value.clone(),
        None => DEFAULT_ZNODE_PARENT.to_string(),
    };

    Ok(HBaseSinkConfig {
        flavor,
        table: table.value.trim().to_string(),
        family: family.value.trim().as_bytes().to_vec(),
        quorum,
        znode_parent,
        batch_size,
        coalesce_increments,
        skip_wal,
        rpc_timeout,
        operation_timeout,
        max_consecutive_fails,
        serializer,
    })
}

/// asynchbase's `async.*` keys, which Flume hands to the asynchbase client and which win over
/// `zookeeperQuorum` and `znodeParent`: those two, its RPC timeout and its authentication
/// switches have a meaning here; the rest tune asynchbase itself and are ignored with a
/// warning.
fn read_async(
    keys: &mut Keys<'_>,
    quorum: &mut Option<Val>,
    znode: &mut Option<Val>,
    rpc_timeout: &mut Duration,
) -> Result<(), ConfigError> {
    if let Some(v) = keys.get("async.hbase.zookeeper.quorum") {
        *quorum = Some(v);
    }
    if let Some(v) = keys.get("async.hbase.zookeeper.znode.parent") {
        *znode = Some(v);
    }
    if let Some(v) = keys.get("async.hbase.rpc.timeout") {
        match v.value.trim().parse::<u64>() {
            // asynchbase's 0: no per-RPC deadline; the batch's `timeout` still bounds it.
            Ok(0) => {}
            Ok(ms) => *rpc_timeout = Duration::from_millis(ms),
            Err(_) => return Err(keys.bad("async.hbase.rpc.timeout", &v, "milliseconds")),
        }
    }
    if let Some(v) = keys.get("async.hbase.security.auth.enable") {
        if v.value.trim().eq_ignore_ascii_case("true") {
            return Err(kerberos(keys, "async.hbase.security.auth.enable", &v));
        }
    }
    if let Some(v) = keys.get("async.hbase.security.authentication") {
        if !v.value.trim().eq_ignore_ascii_case("simple") {
            return Err(kerberos(keys, "async.hbase.security.authentication", &v));
        }
    }
    keys.know("async.<property>");
    const READ: &[&str] = &[
        "async.hbase.zookeeper.quorum",
        "async.hbase.zookeeper.znode.parent",
        "async.hbase.rpc.timeout",
        "async.hbase.security.auth.enable",
        "async.hbase.security.authentication",
    ];
    for (key, v) in keys.take_prefixed("async.") {
        if READ.contains(&key.as_str()) {
            continue;
        }
        keys.warn(
            v.line,
            &key,
            WarningKind::IgnoredKey {
                reason: "an asynchbase client setting with no counterpart in flumen's HBase client (only async.hbase.zookeeper.quorum, async.hbase.zookeeper.znode.parent, async.hbase.rpc.timeout and the authentication switches are read); remove it".into(),
            },
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConfigWarning;
    use crate::sink::hbase::serializer::REGEX_CLASSES;

    fn parsed(
        flavor: Flavor,
        pairs: &[(&str, &str)],
    ) -> (Result<HBaseSinkConfig, ConfigError>, Vec<ConfigWarning>) {
        let mut all = vec![("table", "t"), ("columnFamily", "cf")];
        all.extend_from_slice(pairs);
        let mut k = Keys::from_pairs("sinks", "k1", &all);
        let r = parse(&mut k, flavor);
        let mut w = Vec::new();
        k.finish(&mut w);
        (r, w)
    }

    #[test]
    fn defaults_are_flumes_and_hbases() {
        for flavor in [Flavor::HBase2, Flavor::HBase, Flavor::Async] {
            let (c, w) = parsed(flavor, &[]);
            let c = c.expect("accepted");
            assert!(w.is_empty(), "{w:?}");
            assert_eq!(c.table, "t");
            assert_eq!(c.family, b"cf");
            assert_eq!(c.quorum, "localhost:2181");
            assert_eq!(c.znode_parent, "/hbase");
            assert_eq!(c.batch_size, 100);
            assert!(!c.coalesce_increments);
            assert_eq!(c.operation_timeout, Duration::from_secs(60));
            assert_eq!(c.rpc_timeout, Duration::from_secs(60));
            assert_eq!(c.max_consecutive_fails, 10);
            assert!(matches!(c.serializer, Serializer::Simple(_)));
        }
        assert_eq!(
            Flavor::Async.default_serializer(),
            "org.apache.flume.sink.hbase.SimpleAsyncHbaseEventSerializer"
        );
        assert_eq!(
            Flavor::HBase2.default_serializer(),
            "org.apache.flume.sink.hbase2.SimpleHBase2EventSerializer"
        );
    }

    #[test]
    fn keys_are_read() {
        let (c, w) = parsed(
            Flavor::HBase2,
            &[
                ("zookeeperQuorum", "zk1:2181, zk2:2182,zk3"),
                ("znodeParent", "/hbase-unsecure"),
                ("batchSize", "500"),
                ("coalesceIncrements", "true"),
                ("enableWal", "true"),
                ("kerberosPrincipal", ""),
                ("serializer", REGEX_CLASSES[0]),
            ],
        );
        let c = c.expect("accepted");
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(c.quorum, "zk1:2181,zk2:2182,zk3");
        assert_eq!(c.znode_parent, "/hbase-unsecure");
        assert_eq!(c.batch_size, 500);
        assert!(c.coalesce_increments);
        assert!(matches!(c.serializer, Serializer::Regex(_)));
        let cc = c.client_config();
        assert_eq!(cc.quorum, "zk1:2181,zk2:2182,zk3");
        assert_eq!(cc.znode_parent, "/hbase-unsecure");
    }

    #[test]
    fn asynchbase_timeout_and_async_keys() {
        let (c, w) = parsed(
            Flavor::Async,
            &[
                ("timeout", "5000"),
                ("maxConsecutiveFails", "0"),
                ("zookeeperQuorum", "old:2181"),
                ("async.hbase.zookeeper.quorum", "new:2181"),
                ("async.hbase.zookeeper.znode.parent", "/hb"),
                ("async.hbase.rpcs.batch.size", "10"),
            ],
        );
        let c = c.expect("accepted");
        assert_eq!(c.operation_timeout, Duration::from_secs(5));
        assert_eq!(c.rpc_timeout, Duration::from_secs(5));
        assert_eq!(c.max_consecutive_fails, 0);
        assert_eq!(c.quorum, "new:2181", "async.* wins, as in Flume");
        assert_eq!(c.znode_parent, "/hb");
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].key.ends_with("async.hbase.rpcs.batch.size"), "{w:?}");

        let (c, w) = parsed(
            Flavor::Async,
            &[("timeout", "0"), ("async.hbase.rpc.timeout", "2000")],
        );
        let c = c.expect("accepted");
        assert_eq!(c.operation_timeout, Duration::from_secs(60));
        assert_eq!(c.rpc_timeout, Duration::from_secs(2));
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].to_string().contains("60000 ms"), "{}", w[0]);
    }

    #[test]
    fn enable_wal_false_skips_the_wal_with_a_warning() {
        let (c, w) = parsed(Flavor::HBase, &[("enableWal", "false")]);
        let c = c.expect("accepted");
        assert!(c.skip_wal && c.client_config().skip_wal);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].to_string().contains("write-ahead log"), "{}", w[0]);
        let (c, _) = parsed(Flavor::HBase, &[]);
        assert!(!c.expect("accepted").client_config().skip_wal);
    }

    #[test]
    fn kerberos_is_refused_saying_what_to_do() {
        for (flavor, key, value) in [
            (
                Flavor::HBase2,
                "kerberosPrincipal",
                "flume/_HOST@EXAMPLE.COM",
            ),
            (Flavor::HBase, "kerberosKeytab", "/etc/flume.keytab"),
            (Flavor::Async, "async.hbase.security.auth.enable", "true"),
            (
                Flavor::Async,
                "async.hbase.security.authentication",
                "kerberos",
            ),
        ] {
            let (r, _) = parsed(flavor, &[(key, value)]);
            let e = r.expect_err("refused").to_string();
            assert!(e.contains(&format!("a1.sinks.k1.{key}")), "{e}");
            assert!(e.contains(":3:"), "{e}");
            assert!(e.contains("Kerberos") && e.contains("SIMPLE"), "{e}");
        }
    }

    #[test]
    fn missing_and_bad_values_name_the_key() {
        let mut k = Keys::from_pairs("sinks", "k1", &[]);
        let e = parse(&mut k, Flavor::HBase2)
            .expect_err("refused")
            .to_string();
        assert!(
            e.contains("missing required key `a1.sinks.k1.table`"),
            "{e}"
        );
        let mut k = Keys::from_pairs("sinks", "k1", &[("table", "t")]);
        let e = parse(&mut k, Flavor::HBase2)
            .expect_err("refused")
            .to_string();
        assert!(e.contains("`a1.sinks.k1.columnFamily`"), "{e}");

        // The serializer class is named before a missing key.
        let mut k = Keys::from_pairs("sinks", "k1", &[("serializer", "com.example.S")]);
        let e = parse(&mut k, Flavor::HBase)
            .expect_err("refused")
            .to_string();
        assert!(e.contains("com.example.S"), "{e}");

        for (key, value, fragment) in [
            ("batchSize", "0", "at least 1"),
            ("batchSize", "many", "events"),
            ("zookeeperQuorum", "zk1:21x81", "host[:port]"),
            ("zookeeperQuorum", ":2181", "host[:port]"),
            ("znodeParent", "hbase", "starting with `/`"),
            ("coalesceIncrements", "yes", "true or false"),
        ] {
            let (r, _) = parsed(Flavor::HBase2, &[(key, value)]);
            let e = r.expect_err("refused").to_string();
            assert!(e.contains(&format!("a1.sinks.k1.{key}")), "{key}: {e}");
            assert!(e.contains(":3:"), "{key}: {e}");
            assert!(e.contains(fragment), "{key}: {e}");
        }
        let (r, _) = parsed(Flavor::Async, &[("timeout", "soon")]);
        assert!(r.expect_err("refused").to_string().contains("timeout"));
    }

    #[test]
    fn table_names_follow_hbases_rules() {
        for ok in ["t", "ns:t", "web_logs-2024.v1", "default:t"] {
            assert!(table_name_ok(ok), "{ok}");
        }
        for bad in ["", ":t", "ns:", "a b", "-t", ".t", "a:b:c", "ns-1:t"] {
            assert!(!table_name_ok(bad), "{bad}");
        }
        let mut k = Keys::from_pairs("sinks", "k1", &[("columnFamily", "f"), ("table", "my t")]);
        let e = parse(&mut k, Flavor::HBase2)
            .expect_err("refused")
            .to_string();
        assert!(e.contains("a1.sinks.k1.table") && e.contains(":2:"), "{e}");
        let mut k = Keys::from_pairs("sinks", "k1", &[("table", "t"), ("columnFamily", "a:b")]);
        let e = parse(&mut k, Flavor::HBase2)
            .expect_err("refused")
            .to_string();
        assert!(
            e.contains("a1.sinks.k1.columnFamily") && e.contains(":2:"),
            "{e}"
        );
    }

    #[test]
    fn quorums_are_host_port_lists() {
        assert_eq!(quorum("a").as_deref(), Ok("a"));
        assert_eq!(quorum(" a:1 , b:2 ,").as_deref(), Ok("a:1,b:2"));
        assert!(quorum("a:0").is_err());
        assert!(quorum("a:65536").is_err());
        assert!(quorum(",").is_err());
        assert!(quorum("::1").is_err());
    }
}
