//! Every component type flumen has, by kind: the one list a new component is added to (its
//! `TYPE` constant, defined in its own module next to its parser), and Flume's types flumen
//! does not have, so a file naming one gets "not supported yet" rather than "unknown type".

use crate::channel::ChannelType;
use crate::interceptor::InterceptorType;
use crate::route::SelectorType;
use crate::sink::group::SinkProcessorType;
use crate::sink::SinkType;
use crate::source::SourceType;
use crate::{channel, interceptor, route, sink, source};

/// Channel types.
pub const CHANNELS: &[ChannelType] = &[
    channel::file::TYPE,
    channel::memory::TYPE,
    channel::kafka::TYPE,
];

/// Source types.
pub const SOURCES: &[SourceType] = &[
    source::seq::TYPE,
    source::stress::TYPE,
    source::netcat::TYPE,
    source::avro::TYPE,
    source::exec::TYPE,
    source::stdin::TYPE,
    source::taildir::TYPE,
    source::spooldir::TYPE,
    source::kafka::TYPE,
    source::syslog::TCP_TYPE,
    source::syslog::MULTIPORT_TYPE,
    source::syslog::UDP_TYPE,
    source::http::TYPE,
    source::thrift::TYPE,
];

/// Sink types.
pub const SINKS: &[SinkType] = &[
    sink::logger::TYPE,
    sink::null::TYPE,
    sink::file_roll::TYPE,
    sink::hdfs::TYPE,
    sink::avro::TYPE,
    sink::kafka::TYPE,
    sink::thrift::TYPE,
    sink::hbase::HBASE2_TYPE,
    sink::hbase::HBASE_TYPE,
    sink::hbase::ASYNC_TYPE,
];

/// Sink processor types (a sink group's `processor.type`).
pub const SINK_PROCESSORS: &[SinkProcessorType] = &[
    sink::group::default::TYPE,
    sink::group::failover::TYPE,
    sink::group::load_balance::TYPE,
];

/// Interceptor types.
pub const INTERCEPTORS: &[InterceptorType] = &[
    interceptor::timestamp::TYPE,
    interceptor::host::TYPE,
    interceptor::static_header::TYPE,
    interceptor::remove_header::TYPE,
    interceptor::regex_filter::TYPE,
    interceptor::search_replace::TYPE,
    interceptor::regex_extractor::TYPE,
    interceptor::uuid::TYPE,
];

/// Channel selector types (a source's `selector.type`; replicating when absent).
pub const SELECTORS: &[SelectorType] = &[route::replicating::TYPE, route::multiplexing::TYPE];

/// Flume's channel types flumen does not have (alias, class; an empty alias: none).
pub const FLUME_ONLY_CHANNELS: &[(&str, &str)] = &[
    ("jdbc", "org.apache.flume.channel.jdbc.JdbcChannel"),
    (
        "spillablememory",
        "org.apache.flume.channel.SpillableMemoryChannel",
    ),
    ("", "org.apache.flume.channel.PseudoTxnMemoryChannel"),
];

/// Flume's source types flumen does not have.
pub const FLUME_ONLY_SOURCES: &[(&str, &str)] = &[
    ("jms", "org.apache.flume.source.jms.JMSSource"),
    ("netcatudp", "org.apache.flume.source.NetcatUdpSource"),
];

/// Flume's sink types flumen does not have.
pub const FLUME_ONLY_SINKS: &[(&str, &str)] = &[
    ("irc", "org.apache.flume.sink.irc.IRCSink"),
    (
        "elasticsearch",
        "org.apache.flume.sink.elasticsearch.ElasticSearchSink",
    ),
    (
        "morphline_solr",
        "org.apache.flume.sink.solr.morphline.MorphlineSolrSink",
    ),
    ("hive", "org.apache.flume.sink.hive.HiveSink"),
    ("http", "org.apache.flume.sink.http.HttpSink"),
];

/// Flume's interceptor types flumen does not have.
pub const FLUME_ONLY_INTERCEPTORS: &[(&str, &str)] = &[(
    "",
    "org.apache.flume.sink.solr.morphline.MorphlineInterceptor$Builder",
)];
