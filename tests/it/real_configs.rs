//! `flumen config check` on the real-world Flume configurations in `tests/configs/` (their
//! sources are named in the README there): each file's exit status, each agent's outcome (its
//! exact topology when it checks clean, every error in line order when it is refused) and the
//! file's warnings, in the order they are printed, are asserted against the table below.
//!
//! The table is the corpus's contract: a file in the directory without an entry, or an entry
//! without its file, fails the test, so every configuration added stays checked. A refused
//! agent lists each of its errors, so an error flumen stops reporting (or starts reporting)
//! shows up here. Entries marked `// flumen today:` are places where flumen's report is not
//! yet what it should be (it refuses or warns about something Flume accepts silently, says it
//! in misleading words, or leaves an error of the file unreported); they record today's
//! behaviour, not a decision.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

/// One expected error line of a refused agent: it names `FILE:LINE:` and contains every
/// fragment.
type Error = (u32, &'static [&'static str]);

/// What `flumen config check -f FILE` must report for one agent of a file.
enum Outcome {
    /// The agent checks clean: these exact topology lines, then `agent NAME: ok`.
    Clean(&'static [&'static str]),
    /// The agent is refused: its lines are exactly these errors, in this order (the order of
    /// their lines in the file).
    Refused(&'static [Error]),
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
    /// One fragment per `warning:` line, in the order they are printed (refused agents'
    /// warnings included); their number must match exactly.
    warnings: &'static [&'static str],
}

use Outcome::{Clean, Refused};

/// Fragments of the refusals of a type flumen does not run: a Flume type it does not have yet,
/// or a class name it does not know.
const NOT_SUPPORTED: &str = "not supported yet";
const UNKNOWN_SOURCE: &str = "unknown source type";
const UNKNOWN_SINK: &str = "unknown sink type";
const UNKNOWN_CHANNEL: &str = "unknown channel type";
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
        // The HDFS sink takes batches of 1000 from a memory channel whose transactions hold
        // 100: Flume drops that sink when it loads the file ("sink's batch size is greater
        // than the channels transaction capacity"; before that check, every take failed with
        // "Take list for MemoryTransaction, capacity 100 full"); flumen refuses the agent.
        agents: &[(
            "TwitterAgent",
            Refused(&[
                (
                    28,
                    &[
                        UNKNOWN_SOURCE,
                        "`com.cloudera.flume.source.TwitterSource`",
                        "`TwitterAgent.sources.Twitter.type`",
                    ],
                ),
                (
                    41,
                    &[
                        "`TwitterAgent.sinks.HDFS.hdfs.batchSize` = 1000 exceeds `TwitterAgent.channels.MemChannel.transactionCapacity` = 100 (line 47)",
                        "a batch must fit in one channel transaction",
                    ],
                ),
            ]),
        )],
        warnings: &[],
    },
    Expect {
        file: "cn-avro-hdfs.conf",
        env: &[],
        args: &[],
        exit: 0,
        // A tab before `=` (`keep-alive<TAB>= 1`) is accepted, as Java properties do. Line
        // 13 gives `agent.sources.avroSource.channels` again with the same value: nothing
        // changes, so nothing is said (as in Flume).
        agents: &[(
            "agent",
            Clean(&["agent agent: source avroSource (avro) -> channel memoryChannel (memory) -> sink hdfsSink (hdfs)"]),
        )],
        warnings: &["cn-avro-hdfs.conf:30: `agent.channels.memoryChannel.byteCapacityBufferPercentage`: accepted for Flume compatibility but not acted on"],
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
        // but never listed (Flume ignores them too), and r1 configured twice: of its second
        // block only `port` changes a value, so only `port` is warned about.
        agents: &[(
            "a",
            Clean(&["agent a: source taildirSource (TAILDIR) -> interceptors i1 (regex_filter), i2 (regex_extractor) -> channel memoryChannel (memory) -> sink hdfsSink (hdfs)"]),
        )],
        warnings: &[
            "cn-taildir-hdfs.conf:38: `a.channels.memoryChannel.byteCapacityBufferPercentage`: accepted for Flume compatibility but not acted on",
            "cn-taildir-hdfs.conf:83: `a.sinkgroups.g1`: configured but not listed in `a.sinkgroups`",
            "cn-taildir-hdfs.conf:89: `a.sinks.k1`: configured but not listed in `a.sinks`",
            "cn-taildir-hdfs.conf:95: `a.sinks.k2`: configured but not listed in `a.sinks`",
            "cn-taildir-hdfs.conf:108: `a.sources.r1`: configured but not listed in `a.sources`",
            "cn-taildir-hdfs.conf:110: `a.sources.r1.port`: defined again; this value replaces the one on line 105",
        ],
    },
    Expect {
        file: "flume-bench-thrift-http.conf",
        env: &[],
        args: &[],
        exit: 0,
        agents: &[(
            "agent",
            Clean(&["agent agent: source http (http) -> channel memoryChannel (memory) -> sink nullSink (null)", "agent agent: source avro (avro) -> channel memoryChannel (memory) -> sink nullSink (null)", "agent agent: source thrift (thrift) -> channel memoryChannel (memory) -> sink nullSink (null)"]),
        )],
        // Configured but not listed: Flume ignores them too.
        warnings: &[
            "flume-bench-thrift-http.conf:33: `agent.sources.seqGenSrc`: configured but not listed in `agent.sources`",
            "flume-bench-thrift-http.conf:39: `agent.sinks.loggerSink`: configured but not listed in `agent.sinks`",
            "flume-bench-thrift-http.conf:46: `agent.channels.fileChannel`: configured but not listed in `agent.channels`",
            "flume-bench-thrift-http.conf:50: `agent.sinks.hdfs`: configured but not listed in `agent.sinks`",
        ],
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
        // `a1.channels = c1` appears twice with the same value (lines 25 and 32): nothing
        // changes, so nothing is said (as in Flume).
        agents: &[(
            "a1",
            Clean(&["agent a1: source r1 (netcat) -> channel c1 (memory) -> sink k1 (logger)"]),
        )],
        warnings: &["flume-node-envlookup.conf:29: `a1.channels.c1.byteCapacityBufferPercentage`: accepted for Flume compatibility but not acted on"],
    },
    Expect {
        file: "flume-node-envvars.conf",
        // `${NC_PORT}` is resolved from the environment the way Flume's own test runs this
        // file: with EnvVarResolverProperties.
        env: &[("NC_PORT", "44444")],
        args: &["-DpropertiesImplementation=org.apache.flume.node.EnvVarResolverProperties"],
        exit: 0,
        // `a1.channels = c1` appears twice with the same value (lines 25 and 32): nothing
        // changes, so nothing is said (as in Flume).
        agents: &[(
            "a1",
            Clean(&["agent a1: source r1 (netcat) -> channel c1 (memory) -> sink k1 (logger)"]),
        )],
        warnings: &["flume-node-envvars.conf:29: `a1.channels.c1.byteCapacityBufferPercentage`: accepted for Flume compatibility but not acted on"],
    },
    Expect {
        file: "flume-node-five-hosts.conf",
        env: &[],
        args: &[],
        exit: 1,
        // Flume's own test file: host1 is valid, host2..host4 are deliberately broken and
        // host5 means a failover sink group over custom types (but writes `policy.*`, which
        // Flume does not read either, for `processor.*`).
        agents: &[
            (
                "host1",
                Clean(&["agent host1: source source1 (seq) -> channel channel1 (memory) -> sink sink1 (null)"]),
            ),
            // A source or sink whose binding is wrong is still read, so its own errors (a
            // type flumen does not know) come in the same run.
            (
                "host2",
                Refused(&[
                    (47, &["missing required key `host2.channels`"]),
                    (50, &["missing required key `host2.sources.src1.channels`"]),
                    (50, &[UNKNOWN_SOURCE, "`foo`", "`host2.sources.src1.type`"]),
                    (53, &["missing required key `host2.sinks.sink1.channel`"]),
                    (53, &[UNKNOWN_SINK, "`bar`", "`host2.sinks.sink1.type`"]),
                ]),
            ),
            // src2 is listed with nothing configured: no channels and no type.
            (
                "host3",
                Refused(&[
                    (62, &["missing required key `host3.sources.src2.channels`"]),
                    (62, &["missing required key `host3.sources.src2.type`"]),
                    (63, &["missing required key `host3.channels.ch1.type`"]),
                    (63, &["missing required key `host3.channels.ch2.type`"]),
                    (
                        65,
                        &[
                            UNKNOWN_SOURCE,
                            "`foo`",
                            "`host3.sources.src1.type`",
                        ],
                    ),
                    (
                        67,
                        &[
                            "`host3.sources.src1.channels` names channel `ch3`, which is not in `host3.channels`",
                            "`ch3` has settings but is not listed in `host3.channels`",
                        ],
                    ),
                ]),
            ),
            (
                "host4",
                Refused(&[
                    (78, &["missing required key `host4.sources.src2.channels`"]),
                    (78, &["missing required key `host4.sources.src2.type`"]),
                    (79, &["missing required key `host4.channels.ch1.type`"]),
                    (
                        86,
                        &[UNKNOWN_CHANNEL, "`abc`", "`host4.channels.ch2.type`"],
                    ),
                ]),
            ),
            // flumen today: sink3 is listed (and in the sink group) but has no channel or
            // type, and the whole agent is refused; Flume logs an error, drops sink3 (from
            // the group too) and goes on with the rest (which here fails later anyway: its
            // types are classes that do not exist).
            (
                "host5",
                Refused(&[
                    (98, &["missing required key `host5.sinks.sink3.channel`"]),
                    (98, &["missing required key `host5.sinks.sink3.type`"]),
                    (
                        101,
                        &[UNKNOWN_CHANNEL, "`abc`", "`host5.channels.ch1.type`"],
                    ),
                    (
                        103,
                        &[UNKNOWN_SOURCE, "`def`", "`host5.sources.src1.type`"],
                    ),
                    (106, &[UNKNOWN_SINK, "`foo`", "`host5.sinks.sink1.type`"]),
                    (108, &[UNKNOWN_SINK, "`bar`", "`host5.sinks.sink2.type`"]),
                    (
                        111,
                        &[
                            "missing required key `host5.sinkgroups.sg1.processor.type`",
                            "this group has 3 (sink1, sink2, sink3)",
                        ],
                    ),
                ]),
            ),
        ],
        warnings: &[
            "flume-node-five-hosts.conf:63: `host3.channels.ch2`: no source or sink is bound to this channel",
            "flume-node-five-hosts.conf:70: `host3.channels.ch3`: configured but not listed in `host3.channels`",
            "flume-node-five-hosts.conf:79: `host4.channels.ch1`: no source or sink is bound to this channel",
            "flume-node-five-hosts.conf:79: `host4.channels.ch2`: no source or sink is bound to this channel",
            "flume-node-five-hosts.conf:81: `host4.sources.src1`: configured but not listed in `host4.sources`",
            "flume-node-five-hosts.conf:87: `host4.channels.ch3`: configured but not listed in `host4.channels`",
            "flume-node-five-hosts.conf:112: `host5.sinkgroups.sg1.policy.type`: unknown key, ignored",
            "flume-node-five-hosts.conf:113: `host5.sinkgroups.sg1.policy.priority.sink1`: unknown key, ignored",
            "flume-node-five-hosts.conf:114: `host5.sinkgroups.sg1.policy.priority.sink2`: unknown key, ignored",
        ],
    },
    Expect {
        file: "flume-node-init.conf",
        env: &[],
        args: &[],
        exit: 1,
        // flumen today: the classes are Flume's own test classes, not types a Flume release
        // runs; flumen calls them "Flume's source/sink type ... not supported yet" only
        // because of their `org.apache.flume.` package (see stratio-orders-agent1.conf).
        agents: &[(
            "host1",
            Refused(&[
                (
                    31,
                    &[
                        NOT_SUPPORTED,
                        "Flume's source type `org.apache.flume.source.LocalSource`",
                        "`host1.sources.source1.type`",
                    ],
                ),
                (
                    36,
                    &[
                        NOT_SUPPORTED,
                        "Flume's source type `org.apache.flume.source.LocalSource`",
                        "`host1.sources.processedSource.type`",
                    ],
                ),
                (
                    46,
                    &[
                        NOT_SUPPORTED,
                        "Flume's sink type `org.apache.flume.sink.NullInitSink`",
                        "`host1.sinks.sink1.type`",
                    ],
                ),
            ]),
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
        // `a1.channels = c1` given twice with the same value (lines 27 and 34) is no
        // duplicate. PROD_BIND, which the nested reference on line 23 reads, is no stray key;
        // DEV_BIND, which nothing reads with env=PROD, is warned about (Flume says nothing).
        warnings: &[
            "flume-node-recursive-lookup.conf:20: `DEV_BIND`: not of the form <agent>.<sources|channels|sinks>...: no component reads it (a `${...}` reference in a value may)",
            "flume-node-recursive-lookup.conf:31: `a1.channels.c1.byteCapacityBufferPercentage`: accepted for Flume compatibility but not acted on",
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
            Refused(&[(21, &["missing required key `rpccagent.sources.src1.port`"])]),
        )],
        warnings: &[],
    },
    Expect {
        file: "flume-twitter-solr.conf",
        env: &[],
        args: &[],
        exit: 1,
        // The custom interceptor and deserializer classes are on sources that are configured
        // but not listed: neither Flume nor flumen reads them.
        agents: &[(
            "agent",
            Refused(&[
                (
                    27,
                    &[
                        NOT_SUPPORTED,
                        "Flume's source type `org.apache.flume.source.twitter.TwitterSource`",
                        "`agent.sources.twitterSrc.type`",
                    ],
                ),
                (
                    84,
                    &[
                        NOT_SUPPORTED,
                        "Flume's sink type `org.apache.flume.sink.solr.morphline.MorphlineSolrSink`",
                        "`agent.sinks.solrSink.type`",
                    ],
                ),
            ]),
        )],
        warnings: &[
            "flume-twitter-solr.conf:35: `agent.sources.httpSrc`: configured but not listed in `agent.sources`",
            "flume-twitter-solr.conf:46: `agent.sources.spoolSrc`: configured but not listed in `agent.sources`",
            "flume-twitter-solr.conf:61: `agent.sources.avroSrc`: configured but not listed in `agent.sources`",
        ],
    },
    Expect {
        file: "hbase-regex.conf",
        env: &[],
        args: &[],
        exit: 1,
        // The custom serializer class is refused by name (the file also lacks `table` and
        // `columnFamily`, which Flume names first; flumen reports one error per component,
        // and the class is the one to replace).
        agents: &[(
            "example",
            Refused(&[
                (
                    15,
                    &[
                        NOT_SUPPORTED,
                        "the HBase serializer class `com.cloudera.flume.sink.hbase.RegexHbaseEventRowKeySerializer`",
                        "`example.sinks.sink1.serializer`",
                        "org.apache.flume.sink.hbase.RegexHbaseEventSerializer",
                    ],
                ),
            ]),
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
        // Every source, sink and selector is an InLong class; the memory and file channels
        // check clean.
        agents: &[(
            "agent1",
            Refused(&[
                (
                    40,
                    &[
                        UNKNOWN_SOURCE,
                        "`org.apache.inlong.dataproxy.source.SimpleTcpSource`",
                        "`agent1.sources.tcp-source.type`",
                    ],
                ),
                (
                    51,
                    &[
                        NOT_SUPPORTED,
                        "custom channel selector class `org.apache.inlong.dataproxy.channel.FailoverChannelSelector`",
                        "`agent1.sources.tcp-source.selector.type`",
                    ],
                ),
                (
                    63,
                    &[
                        UNKNOWN_SOURCE,
                        "`org.apache.inlong.dataproxy.source.SimpleHttpSource`",
                        "`agent1.sources.http-source.type`",
                    ],
                ),
                (
                    74,
                    &[
                        NOT_SUPPORTED,
                        "custom channel selector class `org.apache.inlong.dataproxy.channel.FailoverChannelSelector`",
                        "`agent1.sources.http-source.selector.type`",
                    ],
                ),
                (
                    117,
                    &[
                        UNKNOWN_SINK,
                        "`org.apache.inlong.dataproxy.sink.mq.MessageQueueZoneSink`",
                        "`agent1.sinks.mq-sink-msg1.type`",
                    ],
                ),
                (
                    122,
                    &[
                        UNKNOWN_SINK,
                        "`org.apache.inlong.dataproxy.sink.mq.MessageQueueZoneSink`",
                        "`agent1.sinks.mq-sink-msg2.type`",
                    ],
                ),
                (
                    128,
                    &[
                        UNKNOWN_SINK,
                        "`org.apache.inlong.dataproxy.sink.mq.MessageQueueZoneSink`",
                        "`agent1.sinks.mq-sink-msg3.type`",
                    ],
                ),
                (
                    133,
                    &[
                        UNKNOWN_SINK,
                        "`org.apache.inlong.dataproxy.sink.mq.MessageQueueZoneSink`",
                        "`agent1.sinks.mq-sink-msg5.type`",
                    ],
                ),
                (
                    138,
                    &[
                        UNKNOWN_SINK,
                        "`org.apache.inlong.dataproxy.sink.mq.MessageQueueZoneSink`",
                        "`agent1.sinks.mq-sink-msg6.type`",
                    ],
                ),
            ]),
        )],
        warnings: &[],
    },
    Expect {
        file: "kafka-source-hdfs.conf",
        env: &[],
        args: &[],
        exit: 1,
        // flumen today: the `viprfs://` path (EMC ViPR's Hadoop file system, which Flume
        // writes to through the vendor's client jar) is called a "bad value"; it is a scheme
        // flumen does not support, and the refusal should say so in the words of the other
        // unsupported features ("not supported yet"). The kafka source finds its brokers
        // through ZooKeeper only (pre-1.7 keys), which Flume 1.11 still does and flumen
        // refuses, naming the key to set instead.
        agents: &[(
            "flume1",
            Refused(&[
                (
                    8,
                    &[
                        NOT_SUPPORTED,
                        "`flume1.sources.kafka-source-1.zookeeperConnect`",
                        "finding the Kafka brokers through ZooKeeper",
                        "set kafka.bootstrap.servers",
                    ],
                ),
                (
                    21,
                    &[
                        "bad value `viprfs://repbucket1.ns1.site1/tmp/ecs_iot_demo2/enriched_data/%Y-%m-%d/site1`",
                        "`flume1.sinks.hdfs-sink-1.hdfs.path`",
                        "the scheme `viprfs` is not supported",
                    ],
                ),
            ]),
        )],
        warnings: &[],
    },
    Expect {
        file: "keedio-sql-kafka.conf",
        env: &[],
        args: &[],
        exit: 1,
        // The type value ends in two spaces; it is trimmed, as Flume trims it. `agent.sources`
        // is given twice with the same value, which is no duplicate.
        agents: &[(
            "agent",
            Refused(&[
                (
                    8,
                    &[
                        NOT_SUPPORTED,
                        "Flume's source type `org.apache.flume.source.SQLSource`",
                        "`agent.sources.sql-source.type`",
                    ],
                ),
                // Pre-0.9 producer keys only (`metadata.broker.list`): Flume 1.11 stops too
                // ("Bootstrap Servers must be specified").
                (
                    37,
                    &[
                        "missing required key `agent.sinks.kafka-sink.kafka.bootstrap.servers`",
                        "the Kafka brokers to connect to",
                    ],
                ),
            ]),
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
            Refused(&[(
                36,
                &[
                    NOT_SUPPORTED,
                    "Flume's sink type `org.apache.flume.sink.kite.DatasetSink`",
                    "`tier1.sinks.sink-1.type`",
                ],
            )]),
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
            Refused(&[
                (
                    44,
                    &[
                        NOT_SUPPORTED,
                        "interceptor type `org.apache.flume.sink.solr.morphline.MorphlineInterceptor$Builder`",
                        "`tier1.sources.listener.interceptors.morphline.type`",
                    ],
                ),
                (
                    49,
                    &[
                        NOT_SUPPORTED,
                        "Flume's sink type `org.apache.flume.sink.kite.DatasetSink`",
                        "`tier1.sinks.user-dataset.type`",
                    ],
                ),
            ]),
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
            Refused(&[(
                33,
                &[
                    UNKNOWN_SINK,
                    "`org.apache.pulsar.io.flume.source.SinkOfFlume`",
                    "`a1.sinks.k1.type`",
                ],
            )]),
        )],
        warnings: &[],
    },
    Expect {
        file: "rabbitmq-hdfs.conf",
        env: &[],
        args: &[],
        exit: 1,
        // `byteCapacity = 0` is no byte limit, as in Flume's MemoryChannel (any value that
        // leaves less than one 100-byte slot after its 20% header buffer, i.e. under 125,
        // becomes Integer.MAX_VALUE); flumen says so in a warning. The custom RabbitMQ source
        // is what refuses the agent.
        agents: &[(
            "a1",
            Refused(&[(
                8,
                &[
                    UNKNOWN_SOURCE,
                    "`com.aweber.flume.source.rabbitmq.RabbitMQSource`",
                    "`a1.sources.r1.type`",
                ],
            )]),
        )],
        warnings: &["rabbitmq-hdfs.conf:36: `a1.channels.c1.byteCapacity`: 0 bytes is under 125, which Flume reads as no byte limit; so does flumen"],
    },
    Expect {
        file: "rtq-hdfs-avro.conf",
        env: &[],
        args: &[],
        exit: 1,
        agents: &[(
            "agent",
            Refused(&[
                (
                    29,
                    &[
                        "`agent.sinks.hdfs1.serializer`",
                        NOT_SUPPORTED,
                        "`com.cloudera.flume.demo.CSVAvroSerializer$Builder`",
                    ],
                ),
                (
                    45,
                    &[
                        "`agent.sinks.hdfs2.serializer`",
                        NOT_SUPPORTED,
                        "`com.cloudera.flume.demo.CSVAvroSerializer$Builder`",
                    ],
                ),
                (
                    61,
                    &[
                        "`agent.sinks.hdfs3.serializer`",
                        NOT_SUPPORTED,
                        "`com.cloudera.flume.demo.CSVAvroSerializer$Builder`",
                    ],
                ),
                (
                    77,
                    &[
                        "`agent.sinks.hdfs4.serializer`",
                        NOT_SUPPORTED,
                        "`com.cloudera.flume.demo.CSVAvroSerializer$Builder`",
                    ],
                ),
            ]),
        )],
        warnings: &[],
    },
    Expect {
        file: "stratio-apache-logs-es.conf",
        env: &[],
        args: &[],
        exit: 1,
        // `decodeErrorPolicy=REPLACE` asks for something flumen does not do: it is warned
        // about, not refused. A third channel and sink are configured but not listed.
        agents: &[(
            "a",
            Refused(&[
                (
                    23,
                    &[
                        NOT_SUPPORTED,
                        "`org.apache.flume.sink.solr.morphline.MorphlineInterceptor$Builder`",
                        "`a.sources.src.interceptors.morphlineinterceptor.type`",
                    ],
                ),
                (
                    54,
                    &[
                        NOT_SUPPORTED,
                        "Flume's sink type `org.apache.flume.sink.elasticsearch.ElasticSearchSink`",
                        "`a.sinks.elasticSink.type`",
                    ],
                ),
                (
                    62,
                    &[
                        UNKNOWN_SINK,
                        "`com.stratio.ingestion.sink.cassandra.CassandraSink`",
                        "`a.sinks.cassandraSink.type`",
                    ],
                ),
            ]),
        )],
        warnings: &[
            "stratio-apache-logs-es.conf:19: `a.sources.src.deserializer.decodeErrorPolicy`: Flume's key, not implemented by flumen",
            "stratio-apache-logs-es.conf:44: `a.channels.decisionChannel`: configured but not listed in `a.channels`",
            "stratio-apache-logs-es.conf:71: `a.sinks.decisionSink`: configured but not listed in `a.sinks`",
        ],
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
        // it as key `Collector`, which names no agent, and so does flumen, with a warning.
        agents: &[(
            "collector",
            Refused(&[(
                20,
                &[
                    NOT_SUPPORTED,
                    "Flume's sink type `org.apache.flume.sink.elasticsearch.ElasticSearchSink`",
                    "`collector.sinks.elasticSink.type`",
                ],
            )]),
        )],
        warnings: &["stratio-consolidation-collector.conf:1: `Collector`: not of the form <agent>.<sources|channels|sinks>...: no component reads it"],
    },
    Expect {
        file: "stratio-irc.conf",
        env: &[],
        args: &[],
        exit: 1,
        agents: &[(
            "a",
            Refused(&[(
                7,
                &[
                    UNKNOWN_SOURCE,
                    "`com.stratio.ingestion.source.irc.IRCSource`",
                    "`a.sources.irc.type`",
                ],
            )]),
        )],
        warnings: &[],
    },
    Expect {
        file: "stratio-jdbc.conf",
        env: &[],
        args: &[],
        exit: 1,
        // The JDBC sinks' SQL holds `${header.<name>:<type>}` placeholders for the sink
        // itself; no property has those names, so they stay as written (as in Flume), with a
        // warning each. The backslash continuation joins `${header\` and `.name:varchar}`
        // into one reference, reported on the key's first line.
        agents: &[(
            "ajbdc",
            Refused(&[
                (
                    14,
                    &[
                        NOT_SUPPORTED,
                        "`org.apache.flume.sink.solr.morphline.MorphlineInterceptor$Builder`",
                        "`ajbdc.sources.src.interceptors.morphlineinterceptor.type`",
                    ],
                ),
                (
                    28,
                    &[
                        UNKNOWN_SINK,
                        "`com.stratio.ingestion.sink.jdbc.JDBCSink`",
                        "`ajbdc.sinks.snkMysql.type`",
                    ],
                ),
                (
                    38,
                    &[
                        UNKNOWN_SINK,
                        "`com.stratio.ingestion.sink.jdbc.JDBCSink`",
                        "`ajbdc.sinks.snkPg.type`",
                    ],
                ),
            ]),
        )],
        warnings: &[
            "stratio-jdbc.conf:11: `ajbdc.sources.src.deserializer.decodeErrorPolicy`: Flume's key, not implemented by flumen",
            "stratio-jdbc.conf:33: `ajbdc.sinks.snkMysql.sql`: `${header.id:int}` is left as it is",
            "stratio-jdbc.conf:33: `ajbdc.sinks.snkMysql.sql`: `${header.name:varchar}` is left as it is",
            "stratio-jdbc.conf:33: `ajbdc.sinks.snkMysql.sql`: `${header.city:varchar}` is left as it is",
            "stratio-jdbc.conf:43: `ajbdc.sinks.snkPg.sql`: `${header.id:int}` is left as it is",
            "stratio-jdbc.conf:43: `ajbdc.sinks.snkPg.sql`: `${header.name:varchar}` is left as it is",
            "stratio-jdbc.conf:43: `ajbdc.sinks.snkPg.sql`: `${header.city:varchar}` is left as it is",
        ],
    },
    Expect {
        file: "stratio-multiplexing.conf",
        env: &[],
        args: &[],
        exit: 1,
        // The misspelt `intercepts.morphline.morphlineId` (line 18) gets the key with its
        // first segment fixed: `interceptors.morphline.morphlineId`.
        agents: &[(
            "agent1",
            Refused(&[
                (
                    16,
                    &[
                        NOT_SUPPORTED,
                        "`org.apache.flume.sink.solr.morphline.MorphlineInterceptor$Builder`",
                        "`agent1.sources.source1.interceptors.morphline.type`",
                    ],
                ),
                (
                    26,
                    &[
                        NOT_SUPPORTED,
                        "Flume's sink type `org.apache.flume.sink.elasticsearch.ElasticSearchSink`",
                        "`agent1.sinks.sink1.type`",
                    ],
                ),
                (
                    36,
                    &[
                        NOT_SUPPORTED,
                        "Flume's sink type `org.apache.flume.sink.elasticsearch.ElasticSearchSink`",
                        "`agent1.sinks.sink2.type`",
                    ],
                ),
            ]),
        )],
        warnings: &["stratio-multiplexing.conf:18: `agent1.sources.source1.intercepts.morphline.morphlineId`: unknown key, ignored; the nearest known key is `agent1.sources.source1.interceptors.morphline.morphlineId`"],
    },
    Expect {
        file: "stratio-orders-agent1.conf",
        env: &[],
        args: &[],
        exit: 1,
        // flumen today: a listed sink without `channel` refuses the agent; Flume logs an
        // error, drops that sink (and then the channel nothing uses) and runs the rest.
        // flumen today: the interceptor class cut off by a pager
        // (`...morphline.MorphlineInterce$`) is called "Flume's interceptor type" and "not
        // supported yet" because of its `org.apache.flume.` package; no Flume class has that
        // name (Flume fails to load it), so it should be refused as an unknown interceptor
        // type, ideally pointing at `MorphlineInterceptor$Builder`.
        agents: &[(
            "a1",
            Refused(&[
                (
                    14,
                    &[
                        NOT_SUPPORTED,
                        "Flume's interceptor type `org.apache.flume.sink.solr.morphline.MorphlineInterce$`",
                        "`a1.sources.avroSource.interceptors.morphlineinterceptor.type`",
                    ],
                ),
                (
                    25,
                    &[
                        UNKNOWN_SINK,
                        "`com.stratio.ingestion.sink.decision.StratioDecisionSink`",
                        "`a1.sinks.decisionSink.type`",
                    ],
                ),
                (30, &["missing required key `a1.sinks.avroSink.channel`"]),
                (
                    44,
                    &[
                        UNKNOWN_SINK,
                        "`com.stratio.ingestion.sink.cassandra.CassandraSink`",
                        "`a1.sinks.cassandraSink.type`",
                    ],
                ),
            ]),
        )],
        warnings: &[
            "stratio-orders-agent1.conf:5: `a1.channels.avroChannel`: no source or sink is bound to this channel",
            "stratio-orders-agent1.conf:34: `a1.sinks.hdfsSink`: configured but not listed in `a1.sinks`",
            "stratio-orders-agent1.conf:51: `a1.sinks.elasticSink`: configured but not listed in `a1.sinks`",
        ],
    },
    Expect {
        file: "userguide-multiplexing.conf",
        env: &[],
        args: &[],
        exit: 1,
        // A user-guide fragment: no component has a type, Flume refuses it too. The guide's
        // selector has no `selector.default`, which is warned about.
        agents: &[(
            "agent_foo",
            Refused(&[
                (
                    2,
                    &["missing required key `agent_foo.sources.avro-AppSrv-source1.type`"],
                ),
                (
                    3,
                    &["missing required key `agent_foo.sinks.hdfs-Cluster1-sink1.type`"],
                ),
                (
                    3,
                    &["missing required key `agent_foo.sinks.avro-forward-sink2.type`"],
                ),
                (
                    4,
                    &["missing required key `agent_foo.channels.mem-channel-1.type`"],
                ),
                (
                    4,
                    &["missing required key `agent_foo.channels.file-channel-2.type`"],
                ),
            ]),
        )],
        warnings: &["userguide-multiplexing.conf:14: `agent_foo.sources.avro-AppSrv-source1.selector.type`: no `default` channels"],
    },
    Expect {
        file: "userguide-taildir.conf",
        env: &[],
        args: &[],
        exit: 1,
        // A user-guide fragment: channel c1 has no type, Flume refuses it too. The guide's
        // typo `a1.sources.ri.maxBatchCount` configures a source `ri` that is not listed.
        agents: &[(
            "a1",
            Refused(&[(2, &["missing required key `a1.channels.c1.type`"])]),
        )],
        warnings: &["userguide-taildir.conf:13: `a1.sources.ri`: configured but not listed in `a1.sources`"],
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
        exit: 0,
        // The sink group's name is also listed in `agent.sinks`: ignored there, as Flume
        // does, with a warning.
        agents: &[(
            "agent",
            Clean(&[
                "agent agent: source avro (avro) -> interceptors host (host), timestamp (timestamp) -> channel events (file) -> sink group collectors (load_balance) -> sinks collector0 (avro), collector1 (avro)",
                "agent agent: source httpendpoint (http) -> interceptors host (host), timestamp (timestamp), type (static) -> channel events (file) -> sink group collectors (load_balance) -> sinks collector0 (avro), collector1 (avro)",
            ]),
        )],
        warnings: &["viadeo-load-balance.conf:68: `agent.sinks`: `collectors` is a sink group, not a sink, and has no sink settings: ignored here (as Flume does)"],
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
    for (i, (got, frag)) in warnings.iter().zip(e.warnings).enumerate() {
        if !got.contains(frag) {
            bad.push(format!("warning {} lacks {frag:?}: {got}", i + 1));
        }
    }
    // The agents in report order: an agent's verdict is `ok` or one line per error.
    let mut reported: Vec<&str> = Vec::new();
    for l in &lines {
        let Some((name, verdict)) = l.strip_prefix("agent ").and_then(|r| r.split_once(": "))
        else {
            continue;
        };
        if (verdict == "ok" || verdict.starts_with("error: ")) && reported.last() != Some(&name) {
            reported.push(name);
        }
    }
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
            Refused(errors) => {
                // A refused agent prints its errors and nothing else: no topology, no `ok`.
                let error_prefix = format!("agent {agent}: error: ");
                if let Some(other) = own.iter().find(|l| !l.starts_with(&error_prefix)) {
                    bad.push(format!("agent {agent}: refused, yet prints {other:?}"));
                }
                let got: Vec<&str> = own
                    .iter()
                    .copied()
                    .filter(|l| l.starts_with(&error_prefix))
                    .collect();
                if got.len() != errors.len() {
                    bad.push(format!(
                        "agent {agent}: {} errors, expected {}",
                        got.len(),
                        errors.len()
                    ));
                }
                for (i, (err, (line, fragments))) in got.iter().zip(*errors).enumerate() {
                    let at = format!("{}:{line}: ", e.file);
                    for frag in std::iter::once(&at.as_str()).chain(fragments.iter()) {
                        if !err.contains(frag) {
                            bad.push(format!(
                                "agent {agent}: error {} lacks {frag:?}: {err}",
                                i + 1
                            ));
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
