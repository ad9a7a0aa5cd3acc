//! `flumen config check` on the real-world Flume configurations in `tests/configs/` (their
//! sources are named in the README there): each file's exit status, each agent's outcome (its
//! exact topology when it checks clean, the file, line and words of its error when not) and
//! its warnings are asserted against the table below.
//!
//! The table is the corpus's contract: a file in the directory without an entry, or an entry
//! without its file, fails the test, so every configuration added stays checked. Entries
//! marked `// flumen today:` are places where flumen refuses or warns about something Flume
//! itself accepts silently; they record today's behaviour, not a decision.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

/// What `flumen config check -f FILE` must report for one agent of a file.
enum Outcome {
    /// The agent checks clean: these exact topology lines, then `agent NAME: ok`.
    Clean(&'static [&'static str]),
    /// The agent is refused: its error line names `FILE:LINE:` and contains every fragment.
    Refused(u32, &'static [&'static str]),
}

/// The expected report of one file.
struct Expect {
    file: &'static str,
    /// Environment the check runs with (on top of the test's own).
    env: &'static [(&'static str, &'static str)],
    /// Further arguments of `config check` (`-DKEY=VALUE` system properties).
    args: &'static [&'static str],
    exit: i32,
    /// Every agent the file defines, in the order the report lists them.
    agents: &'static [(&'static str, Outcome)],
    /// One fragment per expected `warning:` line; their number must match exactly.
    warnings: &'static [&'static str],
}

use Outcome::{Clean, Refused};

/// Fragments of the refusals of a type flumen does not run: a Flume type it does not have yet,
/// or a class name it does not know.
const NOT_SUPPORTED: &str = "not supported yet";
const UNKNOWN_SOURCE: &str = "unknown source type";
const UNKNOWN_SINK: &str = "unknown sink type";

const EXPECTED: &[Expect] = &[
    Expect {
        file: "bigtop-smoke.conf",
        env: &[],
        args: &[],
        exit: 0,
        // Declarations (`agent.sources = ...`) come after every property and the file ends
        // without a newline: both accepted, as Flume does.
        agents: &[(
            "agent",
            Clean(&["agent agent: source tail-source (exec) -> channel memory-channel (memory) -> sinks log-sink (logger), hdfs-sink (hdfs)"]),
        )],
        warnings: &[],
    },
    Expect {
        file: "cdh-twitter.conf",
        env: &[],
        args: &[],
        exit: 1,
        agents: &[(
            "TwitterAgent",
            Refused(
                28,
                &[
                    UNKNOWN_SOURCE,
                    "`com.cloudera.flume.source.TwitterSource`",
                    "`TwitterAgent.sources.Twitter.type`",
                ],
            ),
        )],
        warnings: &[],
    },
    Expect {
        file: "cn-avro-hdfs.conf",
        env: &[],
        args: &[],
        exit: 0,
        // A tab before `=` (`keep-alive<TAB>= 1`) is accepted, as Java properties do.
        agents: &[(
            "agent",
            Clean(&["agent agent: source avroSource (avro) -> channel memoryChannel (memory) -> sink hdfsSink (hdfs)"]),
        )],
        // flumen today: the first warning is about a key given twice with the same value
        // (`memoryChannel` both times); Flume keeps the last value silently.
        warnings: &[
            "cn-avro-hdfs.conf:13: `agent.sources.avroSource.channels`: defined again",
            "cn-avro-hdfs.conf:30: `agent.channels.memoryChannel.byteCapacityBufferPercentage`: accepted for Flume compatibility but not acted on",
        ],
    },
    Expect {
        file: "cn-taildir-avro-load-balance.conf",
        env: &[],
        args: &[],
        exit: 0,
        agents: &[(
            "agent",
            Clean(&["agent agent: source taildirSource (TAILDIR) -> interceptors filter (regex_filter), extractor (regex_extractor) -> channel memoryChannel (memory) -> sink group groups (load_balance) -> sinks avroSink1 (avro), avroSink2 (avro)"]),
        )],
        // The tab before `=` in `keep-alive<TAB>= 1` is accepted, as Java properties do.
        warnings: &["cn-taildir-avro-load-balance.conf:40: `agent.channels.memoryChannel.byteCapacityBufferPercentage`: accepted for Flume compatibility but not acted on"],
    },
    Expect {
        file: "cn-taildir-hdfs.conf",
        env: &[],
        args: &[],
        exit: 0,
        // Comments in Chinese (non-ASCII), a sink group, two sinks and a source configured
        // but never listed (Flume ignores them too), and r1 configured twice.
        agents: &[(
            "a",
            Clean(&["agent a: source taildirSource (TAILDIR) -> interceptors i1 (regex_filter), i2 (regex_extractor) -> channel memoryChannel (memory) -> sink hdfsSink (hdfs)"]),
        )],
        warnings: &[
            "cn-taildir-hdfs.conf:38: `a.channels.memoryChannel.byteCapacityBufferPercentage`: accepted for Flume compatibility but not acted on",
            "cn-taildir-hdfs.conf:83: `a.sinkgroups.g1`: configured but not listed in `a.sinkgroups`",
            "cn-taildir-hdfs.conf:89: `a.sinks.k1`: configured but not listed in `a.sinks`",
            "cn-taildir-hdfs.conf:95: `a.sinks.k2`: configured but not listed in `a.sinks`",
            "cn-taildir-hdfs.conf:108: `a.sources.r1.type`: defined again; this value replaces the one on line 103",
            "cn-taildir-hdfs.conf:108: `a.sources.r1`: configured but not listed in `a.sources`",
            "cn-taildir-hdfs.conf:109: `a.sources.r1.bind`: defined again; this value replaces the one on line 104",
            "cn-taildir-hdfs.conf:110: `a.sources.r1.port`: defined again; this value replaces the one on line 105",
            "cn-taildir-hdfs.conf:111: `a.sources.r1.channels`: defined again; this value replaces the one on line 106",
        ],
    },
    Expect {
        file: "flume-bench-thrift-http.conf",
        env: &[],
        args: &[],
        exit: 1,
        agents: &[(
            "agent",
            Refused(
                34,
                &[NOT_SUPPORTED, "source type `http`", "`agent.sources.http.type`"],
            ),
        )],
        warnings: &[],
    },
    Expect {
        file: "flume-node-2786.conf",
        env: &[],
        args: &[],
        exit: 0,
        agents: &[(
            "test",
            Clean(&["agent test: source source1 (seq) -> channel channel1 (memory) -> sink sink1 (null)"]),
        )],
        warnings: &[],
    },
    Expect {
        file: "flume-node-envlookup.conf",
        env: &[("NC_PORT", "44444")],
        args: &[],
        exit: 0,
        agents: &[(
            "a1",
            Clean(&["agent a1: source r1 (netcat) -> channel c1 (memory) -> sink k1 (logger)"]),
        )],
        // flumen today: `a1.channels = c1` appears twice with the same value (lines 25 and
        // 32) and is warned about; Flume keeps the last value silently.
        warnings: &[
            "flume-node-envlookup.conf:29: `a1.channels.c1.byteCapacityBufferPercentage`: accepted for Flume compatibility but not acted on",
            "flume-node-envlookup.conf:32: `a1.channels`: defined again; this value replaces the one on line 25",
        ],
    },
    Expect {
        file: "flume-node-envvars.conf",
        // `${NC_PORT}` is resolved from the environment the way Flume's own test runs this
        // file: with EnvVarResolverProperties.
        env: &[("NC_PORT", "44444")],
        args: &["-DpropertiesImplementation=org.apache.flume.node.EnvVarResolverProperties"],
        exit: 0,
        agents: &[(
            "a1",
            Clean(&["agent a1: source r1 (netcat) -> channel c1 (memory) -> sink k1 (logger)"]),
        )],
        // flumen today: `a1.channels = c1` appears twice with the same value (lines 25 and
        // 32) and is warned about; Flume keeps the last value silently.
        warnings: &[
            "flume-node-envvars.conf:29: `a1.channels.c1.byteCapacityBufferPercentage`: accepted for Flume compatibility but not acted on",
            "flume-node-envvars.conf:32: `a1.channels`: defined again; this value replaces the one on line 25",
        ],
    },
    Expect {
        file: "flume-node-five-hosts.conf",
        env: &[],
        args: &[],
        exit: 1,
        // Flume's own test file: host1 is valid, host2..host4 are deliberately broken and
        // host5 uses a failover sink group over custom types.
        agents: &[
            (
                "host1",
                Clean(&["agent host1: source source1 (seq) -> channel channel1 (memory) -> sink sink1 (null)"]),
            ),
            ("host2", Refused(47, &["missing required key `host2.channels`"])),
            (
                "host3",
                Refused(
                    67,
                    &["`host3.sources.src1.channels` names channel `ch3`, which is not in `host3.channels`"],
                ),
            ),
            (
                "host4",
                Refused(78, &["missing required key `host4.sources.src2.channels`"]),
            ),
            // flumen today: sink3 is listed (and in the sink group) but has no channel or
            // type, and the whole agent is refused; Flume logs an error, drops sink3 (from
            // the group too) and goes on with the rest (which here fails later anyway: its
            // types are classes that do not exist).
            (
                "host5",
                Refused(98, &["missing required key `host5.sinks.sink3.channel`"]),
            ),
        ],
        warnings: &[],
    },
    Expect {
        file: "flume-node-init.conf",
        env: &[],
        args: &[],
        exit: 1,
        agents: &[(
            "host1",
            Refused(
                31,
                &[
                    NOT_SUPPORTED,
                    "Flume's source type `org.apache.flume.source.LocalSource`",
                ],
            ),
        )],
        warnings: &[],
    },
    Expect {
        file: "flume-node-recursive-lookup.conf",
        env: &[],
        // `${${sys:env}_BIND}` with env=PROD reads the file's own PROD_BIND key.
        args: &["-Denv=PROD"],
        exit: 0,
        agents: &[(
            "a1",
            Clean(&["agent a1: source r1 (netcat) -> channel c1 (memory) -> sink k1 (logger)"]),
        )],
        // flumen today: PROD_BIND and DEV_BIND are reported as "ignored" although the
        // nested reference on line 23 reads PROD_BIND; and `a1.channels = c1` given twice
        // with the same value is warned about (Flume says nothing about any of these).
        warnings: &[
            "flume-node-recursive-lookup.conf:19: `PROD_BIND`: not of the form <agent>.<sources|channels|sinks>...; ignored",
            "flume-node-recursive-lookup.conf:20: `DEV_BIND`: not of the form <agent>.<sources|channels|sinks>...; ignored",
            "flume-node-recursive-lookup.conf:31: `a1.channels.c1.byteCapacityBufferPercentage`: accepted for Flume compatibility but not acted on",
            "flume-node-recursive-lookup.conf:34: `a1.channels`: defined again; this value replaces the one on line 27",
        ],
    },
    Expect {
        file: "flume-template.conf",
        env: &[],
        args: &[],
        exit: 0,
        agents: &[(
            "agent",
            Clean(&["agent agent: source seqGenSrc (seq) -> channel memoryChannel (memory) -> sink loggerSink (logger)"]),
        )],
        warnings: &[],
    },
    Expect {
        file: "flume-rpc-client-test.conf",
        env: &[],
        args: &[],
        exit: 1,
        // An avro source without a port and an agent without sinks: Flume's AvroSource
        // refuses a missing port too.
        agents: &[(
            "rpccagent",
            Refused(21, &["missing required key `rpccagent.sources.src1.port`"]),
        )],
        warnings: &[],
    },
    Expect {
        file: "flume-twitter-solr.conf",
        env: &[],
        args: &[],
        exit: 1,
        agents: &[(
            "agent",
            Refused(
                27,
                &[
                    NOT_SUPPORTED,
                    "Flume's source type `org.apache.flume.source.twitter.TwitterSource`",
                ],
            ),
        )],
        warnings: &[],
    },
    Expect {
        file: "hbase-regex.conf",
        env: &[],
        args: &[],
        exit: 1,
        agents: &[(
            "example",
            Refused(
                13,
                &[
                    NOT_SUPPORTED,
                    "Flume's sink type `org.apache.flume.sink.hbase.HBaseSink`",
                    "`example.sinks.sink1.type`",
                ],
            ),
        )],
        warnings: &[],
    },
    Expect {
        file: "hdfs-audit-exec.conf",
        env: &[],
        args: &[],
        exit: 0,
        agents: &[(
            "audit",
            Clean(&["agent audit: source log (exec) -> interceptors timestamp (timestamp) -> channel memory (memory) -> sink hdfs (hdfs)"]),
        )],
        warnings: &[],
    },
    Expect {
        file: "inlong-dataproxy.conf",
        env: &[],
        args: &[],
        exit: 1,
        agents: &[(
            "agent1",
            Refused(
                40,
                &[
                    UNKNOWN_SOURCE,
                    "`org.apache.inlong.dataproxy.source.SimpleTcpSource`",
                    "`agent1.sources.tcp-source.type`",
                ],
            ),
        )],
        warnings: &[],
    },
    Expect {
        file: "kafka-source-hdfs.conf",
        env: &[],
        args: &[],
        exit: 1,
        agents: &[(
            "flume1",
            Refused(
                7,
                &[
                    NOT_SUPPORTED,
                    "Flume's source type `org.apache.flume.source.kafka.KafkaSource`",
                    "`flume1.sources.kafka-source-1.type`",
                ],
            ),
        )],
        warnings: &[],
    },
    Expect {
        file: "keedio-sql-kafka.conf",
        env: &[],
        args: &[],
        exit: 1,
        // The type value ends in two spaces; it is trimmed, as Flume trims it.
        agents: &[(
            "agent",
            Refused(
                8,
                &[
                    NOT_SUPPORTED,
                    "Flume's source type `org.apache.flume.source.SQLSource`",
                ],
            ),
        )],
        warnings: &[],
    },
    Expect {
        file: "kite-demo.conf",
        env: &[],
        args: &[],
        exit: 1,
        agents: &[(
            "tier1",
            Refused(
                36,
                &[
                    NOT_SUPPORTED,
                    "Flume's sink type `org.apache.flume.sink.kite.DatasetSink`",
                    "`tier1.sinks.sink-1.type`",
                ],
            ),
        )],
        warnings: &[],
    },
    Expect {
        file: "kite-json.conf",
        env: &[],
        args: &[],
        exit: 1,
        agents: &[(
            "tier1",
            Refused(
                44,
                &[
                    NOT_SUPPORTED,
                    "interceptor type `org.apache.flume.sink.solr.morphline.MorphlineInterceptor$Builder`",
                    "`tier1.sources.listener.interceptors.morphline.type`",
                ],
            ),
        )],
        warnings: &[],
    },
    Expect {
        file: "pulsar-sink.conf",
        env: &[],
        args: &[],
        exit: 1,
        agents: &[(
            "a1",
            Refused(
                33,
                &[
                    UNKNOWN_SINK,
                    "`org.apache.pulsar.io.flume.source.SinkOfFlume`",
                    "`a1.sinks.k1.type`",
                ],
            ),
        )],
        warnings: &[],
    },
    Expect {
        file: "rabbitmq-hdfs.conf",
        env: &[],
        args: &[],
        exit: 1,
        // flumen today: `byteCapacity = 0` is refused; Flume's MemoryChannel treats a
        // byteCapacity below 1 as no byte limit (Integer.MAX_VALUE). The custom RabbitMQ
        // source (line 8) is never reached.
        agents: &[(
            "a1",
            Refused(36, &["bad value `0`", "`a1.channels.c1.byteCapacity`"]),
        )],
        warnings: &[],
    },
    Expect {
        file: "rtq-hdfs-avro.conf",
        env: &[],
        args: &[],
        exit: 1,
        agents: &[(
            "agent",
            Refused(
                29,
                &[
                    "`agent.sinks.hdfs1.serializer`",
                    NOT_SUPPORTED,
                    "`com.cloudera.flume.demo.CSVAvroSerializer$Builder`",
                ],
            ),
        )],
        warnings: &[],
    },
    Expect {
        file: "stratio-apache-logs-es.conf",
        env: &[],
        args: &[],
        exit: 1,
        agents: &[(
            "a",
            Refused(
                23,
                &[
                    NOT_SUPPORTED,
                    "`org.apache.flume.sink.solr.morphline.MorphlineInterceptor$Builder`",
                    "`a.sources.src.interceptors.morphlineinterceptor.type`",
                ],
            ),
        )],
        warnings: &[],
    },
    Expect {
        file: "stratio-consolidation-agent1.conf",
        env: &[],
        args: &[],
        exit: 0,
        agents: &[(
            "agent1",
            Clean(&["agent agent1: source seqGenSrc (seq) -> channel memoryChannel (memory) -> sink avro-forward-sink (avro)"]),
        )],
        warnings: &[],
    },
    Expect {
        file: "stratio-consolidation-collector.conf",
        env: &[],
        args: &[],
        exit: 1,
        // The first line is prose without `#` ("Collector configuration (...)"); Flume reads
        // it as key `Collector`, which names no agent; flumen's report is not affected.
        agents: &[(
            "collector",
            Refused(
                20,
                &[
                    NOT_SUPPORTED,
                    "Flume's sink type `org.apache.flume.sink.elasticsearch.ElasticSearchSink`",
                    "`collector.sinks.elasticSink.type`",
                ],
            ),
        )],
        warnings: &[],
    },
    Expect {
        file: "stratio-irc.conf",
        env: &[],
        args: &[],
        exit: 1,
        agents: &[(
            "a",
            Refused(
                7,
                &[
                    UNKNOWN_SOURCE,
                    "`com.stratio.ingestion.source.irc.IRCSource`",
                    "`a.sources.irc.type`",
                ],
            ),
        )],
        warnings: &[],
    },
    Expect {
        file: "stratio-jdbc.conf",
        env: &[],
        args: &[],
        exit: 1,
        agents: &[(
            "ajbdc",
            Refused(
                14,
                &[
                    NOT_SUPPORTED,
                    "`org.apache.flume.sink.solr.morphline.MorphlineInterceptor$Builder`",
                    "`ajbdc.sources.src.interceptors.morphlineinterceptor.type`",
                ],
            ),
        )],
        warnings: &[],
    },
    Expect {
        file: "stratio-multiplexing.conf",
        env: &[],
        args: &[],
        exit: 1,
        agents: &[(
            "agent1",
            Refused(
                16,
                &[
                    NOT_SUPPORTED,
                    "`org.apache.flume.sink.solr.morphline.MorphlineInterceptor$Builder`",
                    "`agent1.sources.source1.interceptors.morphline.type`",
                ],
            ),
        )],
        warnings: &[],
    },
    Expect {
        file: "stratio-orders-agent1.conf",
        env: &[],
        args: &[],
        exit: 1,
        // flumen today: a listed sink without `channel` refuses the agent; Flume logs an
        // error, drops that sink (and then the channel nothing uses) and runs the rest.
        agents: &[(
            "a1",
            Refused(30, &["missing required key `a1.sinks.avroSink.channel`"]),
        )],
        warnings: &[],
    },
    Expect {
        file: "userguide-multiplexing.conf",
        env: &[],
        args: &[],
        exit: 1,
        // A user-guide fragment: no component has a type, Flume refuses it too.
        agents: &[(
            "agent_foo",
            Refused(
                4,
                &["missing required key `agent_foo.channels.mem-channel-1.type`"],
            ),
        )],
        warnings: &[],
    },
    Expect {
        file: "userguide-taildir.conf",
        env: &[],
        args: &[],
        exit: 1,
        // A user-guide fragment: channel c1 has no type, Flume refuses it too.
        agents: &[(
            "a1",
            Refused(2, &["missing required key `a1.channels.c1.type`"]),
        )],
        warnings: &[],
    },
    Expect {
        file: "viadeo-exec-file-roll.conf",
        env: &[],
        args: &[],
        exit: 0,
        agents: &[(
            "agent",
            Clean(&["agent agent: source execSource (exec) -> channel logChannel (memory) -> sink logSink (file_roll)"]),
        )],
        warnings: &[],
    },
    Expect {
        file: "viadeo-load-balance.conf",
        env: &[],
        args: &[],
        exit: 1,
        agents: &[(
            "agent",
            Refused(
                22,
                &[NOT_SUPPORTED, "source type `http`", "`agent.sources.httpendpoint.type`"],
            ),
        )],
        warnings: &[],
    },
];

fn configs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/configs")
}

/// `flumen config check -f FILE ARGS` with `env` added: (exit code, stdout, stderr).
fn check(file: &Path, env: &[(&str, &str)], args: &[&str]) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_flumen"));
    cmd.args(["config", "check", "-f"])
        .arg(file)
        .args(args)
        .env("RUST_LOG", "off");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run the flumen binary");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Every way `out` differs from `e`, one sentence each.
fn mismatches(e: &Expect, code: i32, out: &str) -> Vec<String> {
    let mut bad = Vec::new();
    if code != e.exit {
        bad.push(format!("exit {code}, expected {}", e.exit));
    }
    let lines: Vec<&str> = out.lines().collect();
    let warnings: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| l.starts_with("warning: "))
        .collect();
    if warnings.len() != e.warnings.len() {
        bad.push(format!(
            "{} warnings, expected {}",
            warnings.len(),
            e.warnings.len()
        ));
    }
    for frag in e.warnings {
        if !warnings.iter().any(|w| w.contains(frag)) {
            bad.push(format!("no warning contains {frag:?}"));
        }
    }
    // The agents in report order: each one's last line is `ok` or its error.
    let reported: Vec<&str> = lines
        .iter()
        .filter_map(|l| {
            let rest = l.strip_prefix("agent ")?;
            let (name, verdict) = rest.split_once(": ")?;
            (verdict == "ok" || verdict.starts_with("error: ")).then_some(name)
        })
        .collect();
    let expected: Vec<&str> = e.agents.iter().map(|(a, _)| *a).collect();
    if reported != expected {
        bad.push(format!("agents {reported:?}, expected {expected:?}"));
    }
    for (agent, outcome) in e.agents {
        let prefix = format!("agent {agent}: ");
        let own: Vec<&str> = lines
            .iter()
            .copied()
            .filter(|l| l.starts_with(&prefix))
            .collect();
        match outcome {
            Clean(topology) => {
                let mut want: Vec<String> = topology.iter().map(|t| t.to_string()).collect();
                want.push(format!("agent {agent}: ok"));
                if own != want {
                    bad.push(format!("agent {agent}: lines {own:?}, expected {want:?}"));
                }
            }
            Refused(line, fragments) => {
                let error_prefix = format!("agent {agent}: error: ");
                match own.iter().find(|l| l.starts_with(&error_prefix)) {
                    None => bad.push(format!("agent {agent}: no error line")),
                    Some(err) => {
                        let at = format!("{}:{line}: ", e.file);
                        for frag in std::iter::once(&at.as_str()).chain(fragments.iter()) {
                            if !err.contains(frag) {
                                bad.push(format!("agent {agent}: error lacks {frag:?}: {err}"));
                            }
                        }
                    }
                }
            }
        }
    }
    bad
}

/// Every file in tests/configs/ has an entry and every entry a file; each file's report is
/// the expected one. All differences are reported together.
#[test]
fn real_world_configs_check_as_expected() {
    let dir = configs_dir();
    let on_disk: BTreeSet<String> = std::fs::read_dir(&dir)
        .expect("read tests/configs")
        .map(|e| {
            e.expect("directory entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|n| n != "README.md")
        .collect();
    let in_table: BTreeSet<String> = EXPECTED.iter().map(|e| e.file.to_string()).collect();
    assert_eq!(
        in_table.len(),
        EXPECTED.len(),
        "a file has two entries in EXPECTED"
    );
    let unlisted: Vec<&String> = on_disk.difference(&in_table).collect();
    let missing: Vec<&String> = in_table.difference(&on_disk).collect();
    assert!(
        unlisted.is_empty() && missing.is_empty(),
        "tests/configs/ and EXPECTED disagree: files without an entry {unlisted:?}, entries without a file {missing:?}"
    );

    let mut failures = Vec::new();
    for e in EXPECTED {
        let (code, out, err) = check(&dir.join(e.file), e.env, e.args);
        let bad = mismatches(e, code, &out);
        if !bad.is_empty() {
            failures.push(format!(
                "{}:\n  {}\n--- stdout:\n{out}--- stderr:\n{err}",
                e.file,
                bad.join("\n  ")
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// The README names every file of the corpus (its source, license and what it exercises).
#[test]
fn every_real_config_is_described_in_the_readme() {
    let readme = std::fs::read_to_string(configs_dir().join("README.md"))
        .expect("read tests/configs/README.md");
    let undescribed: Vec<&str> = EXPECTED
        .iter()
        .map(|e| e.file)
        .filter(|f| !readme.contains(&format!("`{f}`")))
        .collect();
    assert!(
        undescribed.is_empty(),
        "tests/configs/README.md does not describe {undescribed:?}"
    );
}
