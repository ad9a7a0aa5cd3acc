//! The kafka sink's keys (Flume 1.11's KafkaSink, docs/CONFIG.md `kafka` sink): read with
//! Flume's defaults, its pre-1.7 keys mapped as its `translateOldProps` does (with a warning
//! naming the new key), and its `kafka.producer.*` keys turned into librdkafka settings over
//! the producer defaults Flume's Java client would have run with.
//!
//! Invariant: every value that can be checked before the first event is checked here
//! (librdkafka checks each client setting), so a mistake stops start-up naming the file, line
//! and key; what is left to the events (a partition header that is no number, a topic header
//! naming a missing topic) fails the batch, which rolls back, as in Flume.

use std::time::Duration;

use crate::config::{ConfigError, Keys, WarningKind};
use crate::kafka::client::{bootstrap_servers, read_client_keys, ClientSettings, Role};

/// Flume's topic when neither `kafka.topic` nor `topic` is set.
pub const DEFAULT_TOPIC: &str = "default-flume-topic";
/// The header whose value is the record key (Flume's `KEY_HEADER`).
pub const KEY_HEADER: &str = "key";
/// Java's `delivery.timeout.ms` default: how long a batch may wait for its acknowledgements
/// (librdkafka's own default, five minutes, would hide a dead broker longer than Flume does).
pub const DELIVERY_TIMEOUT_MS: u64 = 120_000;

/// One piece of `kafka.topic`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TopicPart {
    Literal(String),
    /// `%{name}`: the event's header `name`, empty when the event has none (as Flume's
    /// `BucketPath.escapeString`).
    Header(String),
}

/// `kafka.topic`, parsed once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Topic {
    /// No escape: every event goes to this topic (unless a topic header overrides it).
    Static(String),
    /// With `%{header}` escapes, rendered per event.
    Template(Vec<TopicPart>),
}

impl Topic {
    /// Parses `kafka.topic`: `%{header}` escapes, the rest literal. Flume's other escapes
    /// (`%Y`, `%[localhost]`, ...) cannot make a legal topic name (Kafka allows only
    /// `[a-zA-Z0-9._-]`), so any other `%` is refused, saying so.
    pub fn parse(s: &str) -> Result<Topic, String> {
        let mut parts = Vec::new();
        let mut lit = String::new();
        let mut rest = s;
        while let Some(i) = rest.find('%') {
            lit.push_str(&rest[..i]);
            let after = &rest[i + 1..];
            let Some(inner) = after.strip_prefix('{') else {
                return Err(format!(
                    "a topic name, where `%{{header}}` is the only escape (`%` at byte {} is not one: Kafka topic names hold only letters, digits, `.`, `_` and `-`)",
                    s.len() - rest.len() + i
                ));
            };
            let Some(end) = inner.find('}') else {
                return Err("a topic name with each `%{` closed by `}`".into());
            };
            if !lit.is_empty() {
                parts.push(TopicPart::Literal(std::mem::take(&mut lit)));
            }
            parts.push(TopicPart::Header(inner[..end].to_string()));
            rest = &inner[end + 1..];
        }
        lit.push_str(rest);
        if parts.is_empty() {
            return Ok(Topic::Static(lit));
        }
        if !lit.is_empty() {
            parts.push(TopicPart::Literal(lit));
        }
        Ok(Topic::Template(parts))
    }

    /// The topic as written, for messages.
    pub fn template(&self) -> String {
        match self {
            Topic::Static(s) => s.clone(),
            Topic::Template(parts) => parts
                .iter()
                .map(|p| match p {
                    TopicPart::Literal(l) => l.clone(),
                    TopicPart::Header(h) => format!("%{{{h}}}"),
                })
                .collect(),
        }
    }
}

/// The kafka sink's configuration (docs/CONFIG.md, `kafka` sink).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KafkaSinkConfig {
    /// `kafka.bootstrap.servers` (or the pre-1.7 `brokerList`), required.
    pub bootstrap: String,
    /// `kafka.topic` (or `topic`), default `default-flume-topic`.
    pub topic: Topic,
    /// `flumeBatchSize` (or `batchSize`), default 100: events per take.
    pub batch_size: usize,
    /// `useFlumeEventFormat` (false): the record value is the AvroFlumeEvent encoding of the
    /// headers and body, not the body alone.
    pub use_flume_event_format: bool,
    /// `allowTopicOverride` (true): an event's `topicHeader` header names its topic.
    pub allow_topic_override: bool,
    /// `topicHeader` (`topic`).
    pub topic_header: String,
    /// `defaultPartitionId`: the partition of every record, unless `partitionIdHeader` says.
    pub default_partition_id: Option<i32>,
    /// `partitionIdHeader`: the header whose value is the record's partition.
    pub partition_id_header: Option<String>,
    /// `timestampHeader`: the header whose value (milliseconds) is the record's timestamp.
    pub timestamp_header: Option<String>,
    /// `header.<flume header> = <kafka header>`: event headers sent as record headers, in
    /// line order.
    pub record_headers: Vec<(String, String)>,
    /// The producer's librdkafka settings: flumen's defaults, then `kafka.producer.*`.
    pub client: ClientSettings,
    /// The longest a batch waits for its acknowledgements (`delivery.timeout.ms`).
    pub delivery_timeout: Duration,
}

/// The producer settings Flume's Java client starts from, as librdkafka settings: what the
/// user does not set behaves as it would under Flume.
fn producer_defaults(bootstrap: &str) -> ClientSettings {
    let mut s = ClientSettings::new(bootstrap);
    // Flume's own default (Kafka's Java default is all).
    s.set("acks", "1");
    // Kafka's Java default partitioner for keyed records (murmur2 of the key), so a key lands
    // on the partition it would under Flume; librdkafka's default is a CRC32 hash.
    s.set("partitioner", "murmur2_random");
    // Java sends at once (linger.ms 0); librdkafka's 5 ms would be added to every batch,
    // since each batch waits for its acknowledgements before the next is taken.
    s.set("linger.ms", "0");
    s.set("delivery.timeout.ms", DELIVERY_TIMEOUT_MS.to_string());
    // Java's: a restarted broker is reconnected to within a second; librdkafka's 10 s would
    // hold every batch that long after the broker is back.
    s.set("reconnect.backoff.max.ms", "1000");
    // Java's max.request.size.
    s.set("message.max.bytes", "1048576");
    s
}

pub(super) fn parse(keys: &mut Keys<'_>) -> Result<KafkaSinkConfig, ConfigError> {
    let bootstrap = bootstrap_servers(keys, Some("brokerList"))?;

    keys.document_default("kafka.topic", DEFAULT_TOPIC);
    let topic_val = renamed(keys, "kafka.topic", "topic");
    let topic = match topic_val {
        Some((key, v)) => Topic::parse(&v.value).map_err(|e| keys.bad(key, &v, e))?,
        None => Topic::Static(DEFAULT_TOPIC.to_string()),
    };

    let batch_size = match renamed(keys, "flumeBatchSize", "batchSize") {
        Some((key, v)) => match v.value.parse::<usize>() {
            Ok(n) if n >= 1 => n,
            _ => return Err(keys.bad(key, &v, "a whole number of events, at least 1")),
        },
        None => 100,
    };
    keys.document_default("flumeBatchSize", "100");

    let use_flume_event_format = keys.boolean("useFlumeEventFormat", false)?;
    let allow_topic_override = keys.boolean("allowTopicOverride", true)?;
    let topic_header = keys.text("topicHeader", "topic");
    let default_partition_id = match keys.get("defaultPartitionId") {
        None => None,
        Some(v) => Some(
            v.value
                .parse::<i32>()
                .ok()
                .filter(|p| *p >= 0)
                .ok_or_else(|| {
                    keys.bad("defaultPartitionId", &v, "a partition number, 0 or more")
                })?,
        ),
    };
    let partition_id_header = keys.get("partitionIdHeader").map(|v| v.value);
    let timestamp_header = keys.get("timestampHeader").map(|v| v.value);
    // Documents the family (docs/CONFIG.md's row); the keys themselves are taken below.
    keys.know("header.<name>");
    let record_headers = keys
        .take_prefixed("header.")
        .into_iter()
        .map(|(k, v)| (k["header.".len()..].to_string(), v.value))
        .collect();

    for old in ["serializer.class", "key.serializer.class"] {
        keys.ignore(
            old,
            "a pre-1.7 serializer class: the sink sends the key as UTF-8 text and the value as bytes, as Flume 1.11",
        );
    }

    let mut client = producer_defaults(&bootstrap);
    let new_acks = "kafka.producer.acks";
    match (keys.has(new_acks), keys.get("requiredAcks")) {
        (None, Some(v)) => {
            keys.warn(
                v.line,
                "requiredAcks",
                WarningKind::Deprecated {
                    replacement: new_acks.into(),
                },
            );
            client.set_from("acks", v.value.clone(), "requiredAcks", &v);
        }
        (Some(_), Some(v)) => keys.warn(
            v.line,
            "requiredAcks",
            WarningKind::IgnoredKey {
                reason: format!(
                    "`{new_acks}` is also set and wins (as in Flume); remove this deprecated key"
                ),
            },
        ),
        _ => {}
    }
    keys.document_default(new_acks, "1");
    read_client_keys(keys, Role::Producer, &mut client)?;
    if client.user_set("transactional.id") {
        let line = keys.line_of("kafka.producer.transactional.id");
        return Err(keys.unsupported(
            "kafka.producer.transactional.id",
            line,
            "Kafka transactions in the kafka sink",
            "remove it: Flume 1.11's KafkaSink never initializes transactions either (its producer fails every send with this key set); the take commits only after every record is acknowledged, so delivery is at-least-once without them",
        ));
    }
    let delivery_timeout = client
        .get("delivery.timeout.ms")
        .and_then(|v| v.parse::<u64>().ok())
        .map_or(
            Duration::from_millis(DELIVERY_TIMEOUT_MS),
            Duration::from_millis,
        );

    Ok(KafkaSinkConfig {
        bootstrap,
        topic,
        batch_size,
        use_flume_event_format,
        allow_topic_override,
        topic_header,
        default_partition_id,
        partition_id_header,
        timestamp_header,
        record_headers,
        client,
        delivery_timeout,
    })
}

/// The value of `new`, else of the pre-1.7 key `old` with a warning naming `new` (Flume's
/// `translateOldProps`); `old` beside `new` is ignored with a warning. Returns the key read.
fn renamed(
    keys: &mut Keys<'_>,
    new: &'static str,
    old: &'static str,
) -> Option<(&'static str, crate::config::Val)> {
    let n = keys.get(new);
    let o = keys.get(old);
    match (n, o) {
        (Some(n), Some(o)) => {
            keys.warn(
                o.line,
                old,
                WarningKind::IgnoredKey {
                    reason: format!(
                        "`{new}` is also set and wins (as in Flume); remove this deprecated key"
                    ),
                },
            );
            Some((new, n))
        }
        (Some(n), None) => Some((new, n)),
        (None, Some(o)) => {
            keys.warn(
                o.line,
                old,
                WarningKind::Deprecated {
                    replacement: new.into(),
                },
            );
            Some((old, o))
        }
        (None, None) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConfigWarning;

    fn parsed(
        pairs: &[(&str, &str)],
    ) -> (Result<KafkaSinkConfig, ConfigError>, Vec<ConfigWarning>) {
        let mut k = Keys::from_pairs("sinks", "k1", pairs);
        let r = parse(&mut k);
        let mut warnings = Vec::new();
        k.finish(&mut warnings);
        (r, warnings)
    }

    #[test]
    fn defaults_are_flumes() {
        let (c, w) = parsed(&[("kafka.bootstrap.servers", "b:9092")]);
        let c = c.expect("accepted");
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(c.topic, Topic::Static(DEFAULT_TOPIC.into()));
        assert_eq!(c.batch_size, 100);
        assert!(!c.use_flume_event_format);
        assert!(c.allow_topic_override);
        assert_eq!(c.topic_header, "topic");
        assert_eq!(c.default_partition_id, None);
        assert_eq!(c.client.get("acks"), Some("1"));
        assert_eq!(c.client.get("partitioner"), Some("murmur2_random"));
        assert_eq!(c.client.get("linger.ms"), Some("0"));
        assert_eq!(c.delivery_timeout, Duration::from_secs(120));
    }

    #[test]
    fn keys_are_read() {
        let (c, _) = parsed(&[
            ("kafka.bootstrap.servers", "b:9092"),
            ("kafka.topic", "logs-%{app}-x"),
            ("flumeBatchSize", "500"),
            ("kafka.producer.acks", "all"),
            ("kafka.producer.delivery.timeout.ms", "5000"),
            ("useFlumeEventFormat", "true"),
            ("defaultPartitionId", "3"),
            ("partitionIdHeader", "p"),
            ("allowTopicOverride", "false"),
            ("topicHeader", "t"),
            ("timestampHeader", "ts"),
            ("header.host", "kafkaHost"),
        ]);
        let c = c.expect("accepted");
        assert_eq!(
            c.topic,
            Topic::Template(vec![
                TopicPart::Literal("logs-".into()),
                TopicPart::Header("app".into()),
                TopicPart::Literal("-x".into()),
            ])
        );
        assert_eq!(c.batch_size, 500);
        assert_eq!(c.client.get("acks"), Some("all"));
        assert_eq!(c.delivery_timeout, Duration::from_secs(5));
        assert!(c.use_flume_event_format);
        assert_eq!(c.default_partition_id, Some(3));
        assert_eq!(c.partition_id_header.as_deref(), Some("p"));
        assert!(!c.allow_topic_override);
        assert_eq!(c.topic_header, "t");
        assert_eq!(c.timestamp_header.as_deref(), Some("ts"));
        assert_eq!(c.record_headers, vec![("host".into(), "kafkaHost".into())]);
    }

    #[test]
    fn pre_17_keys_are_used_with_a_warning_naming_the_new_key() {
        let (c, w) = parsed(&[
            ("brokerList", "old:9092"),
            ("topic", "t1"),
            ("batchSize", "7"),
            ("requiredAcks", "-1"),
        ]);
        let c = c.expect("accepted");
        assert_eq!(c.bootstrap, "old:9092");
        assert_eq!(c.topic, Topic::Static("t1".into()));
        assert_eq!(c.batch_size, 7);
        assert_eq!(c.client.get("acks"), Some("-1"));
        let text: Vec<String> = w.iter().map(ToString::to_string).collect();
        for (old, new) in [
            ("brokerList", "kafka.bootstrap.servers"),
            ("topic", "kafka.topic"),
            ("batchSize", "flumeBatchSize"),
            ("requiredAcks", "kafka.producer.acks"),
        ] {
            assert!(
                text.iter().any(|t| t.contains(&format!("k1.{old}"))
                    && t.contains(new)
                    && t.contains("deprecated")),
                "{old}: {text:?}"
            );
        }
    }

    #[test]
    fn new_keys_win_over_old_ones() {
        let (c, w) = parsed(&[
            ("kafka.bootstrap.servers", "b:9092"),
            ("kafka.topic", "new"),
            ("topic", "old"),
            ("kafka.producer.acks", "all"),
            ("requiredAcks", "0"),
        ]);
        let c = c.expect("accepted");
        assert_eq!(c.topic, Topic::Static("new".into()));
        assert_eq!(c.client.get("acks"), Some("all"));
        assert_eq!(w.len(), 2, "{w:?}");
    }

    #[test]
    fn bad_values_name_the_key_and_line() {
        for (pairs, key, line) in [
            (
                vec![
                    ("kafka.bootstrap.servers", "b:9092"),
                    ("flumeBatchSize", "0"),
                ],
                "flumeBatchSize",
                2,
            ),
            (
                vec![
                    ("kafka.bootstrap.servers", "b:9092"),
                    ("defaultPartitionId", "x"),
                ],
                "defaultPartitionId",
                2,
            ),
            (
                vec![
                    ("kafka.bootstrap.servers", "b:9092"),
                    ("kafka.topic", "logs-%Y"),
                ],
                "kafka.topic",
                2,
            ),
            (
                vec![
                    ("kafka.bootstrap.servers", "b:9092"),
                    ("x", "y"),
                    ("requiredAcks", "several"),
                ],
                "requiredAcks",
                3,
            ),
            (
                vec![
                    ("kafka.bootstrap.servers", "b:9092"),
                    ("kafka.producer.transactional.id", "t"),
                ],
                "kafka.producer.transactional.id",
                2,
            ),
        ] {
            let (r, _) = parsed(&pairs);
            let e = r.expect_err("refused").to_string();
            assert!(e.contains(&format!("k1.{key}")), "{key}: {e}");
            assert!(e.contains(&format!(":{line}")), "{key} line {line}: {e}");
        }
        let (r, _) = parsed(&[]);
        assert!(r
            .expect_err("refused")
            .to_string()
            .contains("kafka.bootstrap.servers"));
    }

    #[test]
    fn topic_templates_parse() {
        assert_eq!(Topic::parse("a.b_c-d"), Ok(Topic::Static("a.b_c-d".into())));
        assert_eq!(
            Topic::parse("%{t}"),
            Ok(Topic::Template(vec![TopicPart::Header("t".into())]))
        );
        assert!(Topic::parse("x-%{t").is_err());
        assert!(Topic::parse("x-%[localhost]").is_err());
        assert_eq!(
            Topic::parse("a-%{t}").map(|t| t.template()),
            Ok("a-%{t}".to_string())
        );
    }
}
