//! The kafka source's keys (docs/CONFIG.md, `kafka` source): Flume 1.11's KafkaSource keys and
//! defaults, its pre-1.7 keys (`topic`, `groupId`) used with a warning naming the new key, and
//! the consumer's `kafka.consumer.*` keys turned into librdkafka settings by
//! [`crate::kafka::client`], over Flume's own consumer defaults.
//!
//! Invariants: offsets are never committed by the client on its own (`enable.auto.commit` and
//! `enable.auto.offset.store` are forced off, whatever the file says, as Flume forces the
//! first); ZooKeeper is never read: `zookeeperConnect` without `kafka.bootstrap.servers` stops
//! start-up naming the key, beside it it is ignored with a warning (Flume would only migrate
//! old offsets from it once).

use std::time::Duration;

use super::KafkaSource;
use crate::config::{ConfigError, Keys, Registered, WarningKind};
use crate::kafka::client::{bootstrap_servers, read_client_keys, ClientSettings, Role};
use crate::source::{Source, SourceContext, SourceError, SourceSpec, SourceType};

/// `kafka` / Flume's KafkaSource.
pub const TYPE: SourceType = Registered {
    alias: "kafka",
    class: Some("org.apache.flume.source.kafka.KafkaSource"),
    parse,
    minimal: &[
        ("kafka.bootstrap.servers", "127.0.0.1:9092"),
        ("kafka.topics", "t1"),
    ],
};

/// What the source subscribes to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Subscription {
    /// `kafka.topics` (or the old `topic`): these topics.
    Topics(Vec<String>),
    /// `kafka.topics.regex`: every topic whose whole name matches `pattern` (as Java's
    /// `Pattern.matcher(topic).matches()`), now and as topics are created.
    Pattern {
        /// The pattern as written.
        pattern: String,
    },
}

impl Subscription {
    /// The names handed to librdkafka's subscribe: a pattern is one name starting with `^`,
    /// anchored at both ends so it matches whole topic names as Java's `matches()` does.
    pub fn rdkafka_topics(&self) -> Vec<String> {
        match self {
            Subscription::Topics(t) => t.clone(),
            Subscription::Pattern { pattern } => vec![format!("^({pattern})$")],
        }
    }

    /// The topics (or the pattern) for log lines.
    pub fn describe(&self) -> String {
        match self {
            Subscription::Topics(t) => t.join(","),
            Subscription::Pattern { pattern } => format!("/{pattern}/"),
        }
    }
}

/// The kafka source's settings (Flume key and default in each field's doc).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KafkaSourceConfig {
    /// The consumer's librdkafka settings: `kafka.bootstrap.servers`, the group id
    /// (`kafka.consumer.group.id`, else the old `groupId`, else `flume`), Flume's consumer
    /// defaults and every `kafka.consumer.*` key.
    pub client: ClientSettings,
    /// `kafka.topics.regex`, else `kafka.topics`, else the old `topic` (one is required).
    pub subscription: Subscription,
    /// The consumer group, for log lines.
    pub group_id: String,
    /// `batchSize` (default 1000): records per channel transaction at most.
    pub batch_size: usize,
    /// `batchDurationMillis` (default 1000): a batch is put once it is this old, full or not.
    pub batch_duration: Duration,
    /// `backoffSleepIncrement` (default 1000 ms): the wait after a failure grows by this.
    pub backoff_increment: Duration,
    /// `maxBackoffSleep` (default 5000 ms): the longest wait after failures.
    pub max_backoff: Duration,
    /// `useFlumeEventFormat` (default false): record values are AvroFlumeEvents (headers and
    /// body) rather than bare bodies.
    pub use_flume_event_format: bool,
    /// `setTopicHeader` (default true): put the record's topic in header `topic_header`.
    pub set_topic_header: bool,
    /// `topicHeader` (default `topic`).
    pub topic_header: String,
    /// `header.<event header> = <Kafka record header>`: Kafka record headers copied into event
    /// headers (as text), in line order.
    pub header_map: Vec<(String, String)>,
}

const DEFAULT_GROUP_ID: &str = "flume";
const DEFAULT_BATCH_SIZE: usize = 1000;
const DEFAULT_BATCH_DURATION: Duration = Duration::from_millis(1000);
const DEFAULT_BACKOFF_INCREMENT: Duration = Duration::from_millis(1000);
const DEFAULT_MAX_BACKOFF: Duration = Duration::from_millis(5000);

fn parse(keys: &mut Keys<'_>) -> Result<Box<dyn SourceSpec>, ConfigError> {
    Ok(Box::new(parse_config(keys)?))
}

/// Reads every key of the source (see [`KafkaSourceConfig`]).
pub fn parse_config(keys: &mut Keys<'_>) -> Result<KafkaSourceConfig, ConfigError> {
    let bootstrap = bootstrap(keys)?;
    let subscription = subscription(keys)?;
    let group_id = group_id(keys);
    let batch_size = keys.size("batchSize", DEFAULT_BATCH_SIZE, 1, "records")?;
    let batch_duration = keys.millis("batchDurationMillis", DEFAULT_BATCH_DURATION, 1)?;
    let backoff_increment = keys.millis("backoffSleepIncrement", DEFAULT_BACKOFF_INCREMENT, 1)?;
    let max_backoff = keys.millis("maxBackoffSleep", DEFAULT_MAX_BACKOFF, 1)?;
    let use_flume_event_format = keys.boolean("useFlumeEventFormat", false)?;
    let set_topic_header = keys.boolean("setTopicHeader", true)?;
    let topic_header = keys.text("topicHeader", "topic");
    keys.document_default("header.<name>", "none");
    let header_map = keys
        .take_prefixed("header.")
        .into_iter()
        .map(|(k, v)| (k["header.".len()..].to_string(), v.value))
        .filter(|(k, v)| !k.is_empty() && !v.is_empty())
        .collect();

    // Flume's consumer defaults, which the file's kafka.consumer.* keys override...
    let mut client = ClientSettings::new(&bootstrap);
    client.set("group.id", &group_id);
    // A source that has never committed starts at the end of its topics, as Kafka's Java
    // consumer (and so Flume) does.
    client.set("auto.offset.reset", "latest");
    // A subscribed topic that does not exist is reported (and retried) after a second
    // rather than librdkafka's 30 s, so the log says so while the operator is looking.
    client.set("topic.metadata.propagation.max.ms", "1000");
    keys.document_default("kafka.consumer.group.id", DEFAULT_GROUP_ID);
    keys.document_default("kafka.consumer.auto.offset.reset", "latest");
    read_client_keys(keys, Role::Consumer, &mut client)?;
    // ...except these, which Flume forces too: offsets move only when the channel committed.
    client.set("enable.auto.commit", "false");
    client.set("enable.auto.offset.store", "false");
    let group_id = client
        .get("group.id")
        .unwrap_or(DEFAULT_GROUP_ID)
        .to_string();
    client.check(keys)?;

    Ok(KafkaSourceConfig {
        client,
        subscription,
        group_id,
        batch_size,
        batch_duration,
        backoff_increment,
        max_backoff,
        use_flume_event_format,
        set_topic_header,
        topic_header,
        header_map,
    })
}

/// `kafka.bootstrap.servers`; `zookeeperConnect` (Flume's pre-1.7 way to find the brokers) is
/// refused when it would be the only way, and ignored with a warning otherwise.
fn bootstrap(keys: &mut Keys<'_>) -> Result<String, ConfigError> {
    let zk = keys.get("zookeeperConnect");
    let migrate = keys.boolean("migrateZookeeperOffsets", true)?;
    let has_bootstrap = keys
        .peek("kafka.bootstrap.servers")
        .is_some_and(|v| !v.is_empty());
    if let Some(zk) = zk {
        if !has_bootstrap {
            return Err(keys.unsupported(
                "zookeeperConnect",
                zk.line,
                "finding the Kafka brokers through ZooKeeper (deprecated since Flume 1.7)",
                "set kafka.bootstrap.servers to the brokers' host:port list instead; flumen does not read ZooKeeper",
            ));
        }
        let reason = if migrate {
            "flumen does not read ZooKeeper: consumer offsets kept there by Flume before 1.7 are not migrated (Flume 1.11 would copy them to Kafka once, when the group has none there); the group starts from its offsets in Kafka, else from kafka.consumer.auto.offset.reset"
        } else {
            "flumen does not read ZooKeeper (and migrateZookeeperOffsets = false asks for nothing from it); remove this deprecated key"
        };
        keys.warn(
            zk.line,
            "zookeeperConnect",
            WarningKind::IgnoredKey {
                reason: reason.into(),
            },
        );
    }
    bootstrap_servers(keys, None)
}

/// `kafka.topics.regex`, else `kafka.topics`, else the old `topic` (with a warning).
fn subscription(keys: &mut Keys<'_>) -> Result<Subscription, ConfigError> {
    keys.document_default("kafka.topics", "required (or kafka.topics.regex)");
    let old = keys.get("topic");
    let regex = keys.get("kafka.topics.regex");
    let list = keys.get("kafka.topics");
    if let Some(o) = &old {
        let kind = if regex.is_some() || list.is_some() {
            WarningKind::IgnoredKey {
                reason: "kafka.topics / kafka.topics.regex is also set and wins (as in Flume); remove this deprecated key".into(),
            }
        } else {
            WarningKind::Deprecated {
                replacement: "kafka.topics".into(),
            }
        };
        keys.warn(o.line, "topic", kind);
    }
    if let Some(r) = regex {
        if let Some(l) = &list {
            keys.warn(
                l.line,
                "kafka.topics",
                WarningKind::IgnoredKey {
                    reason: "kafka.topics.regex is also set and wins (as in Flume)".into(),
                },
            );
        }
        if let Err(why) = check_pattern(&r.value) {
            return Err(keys.bad("kafka.topics.regex", &r, why));
        }
        return Ok(Subscription::Pattern { pattern: r.value });
    }
    let (key, v) = match (list, old) {
        (Some(l), _) => ("kafka.topics", l),
        (None, Some(o)) => ("topic", o),
        (None, None) => return Err(keys.missing(
            "kafka.topics",
            "the topics to read, comma separated (or kafka.topics.regex, a pattern of topic names)",
        )),
    };
    let topics: Vec<String> = v
        .value
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect();
    if topics.is_empty() {
        return Err(keys.bad(key, &v, "one or more topic names, comma separated"));
    }
    if let Some(t) = topics.iter().find(|t| t.starts_with('^')) {
        return Err(keys.bad(
            key,
            &v,
            format!("topic names (`{t}` starts with `^`, which librdkafka would take as a pattern: use kafka.topics.regex for patterns)"),
        ));
    }
    Ok(Subscription::Topics(topics))
}

/// librdkafka matches subscription patterns with POSIX extended regular expressions, not
/// Java's: the Java-only constructs would silently match nothing (or something else), so they
/// are refused with what to write instead.
fn check_pattern(pattern: &str) -> Result<(), String> {
    if pattern.is_empty() {
        return Err("a pattern of topic names".into());
    }
    for (java, posix) in [
        ("(?", "a plain group `(...)`"),
        ("\\d", "[0-9]"),
        ("\\D", "[^0-9]"),
        ("\\w", "[A-Za-z0-9_]"),
        ("\\W", "[^A-Za-z0-9_]"),
        ("\\s", "[[:space:]]"),
        ("\\S", "[^[:space:]]"),
        ("\\b", "nothing (topic names are matched whole)"),
        ("\\Q", "the characters escaped one by one"),
        ("*?", "a greedy `*`"),
        ("+?", "a greedy `+`"),
    ] {
        if pattern.contains(java) {
            return Err(format!(
                "a POSIX extended regular expression (librdkafka matches topic patterns with one, not with Java's Pattern): write {posix} instead of `{java}`"
            ));
        }
    }
    Ok(())
}

/// `groupId` (old, with a warning); `kafka.consumer.group.id` overrides it later, as in Flume.
fn group_id(keys: &mut Keys<'_>) -> String {
    match keys.get("groupId") {
        Some(v) => {
            let kind = if keys.peek("kafka.consumer.group.id").is_some() {
                WarningKind::IgnoredKey {
                    reason: "kafka.consumer.group.id is also set and wins (as in Flume); remove this deprecated key".into(),
                }
            } else {
                WarningKind::Deprecated {
                    replacement: "kafka.consumer.group.id".into(),
                }
            };
            keys.warn(v.line, "groupId", kind);
            v.value
        }
        None => DEFAULT_GROUP_ID.to_string(),
    }
}

impl SourceSpec for KafkaSourceConfig {
    fn batch_size(&self) -> Option<(usize, &'static str)> {
        Some((self.batch_size, "batchSize"))
    }

    fn build(&self, ctx: SourceContext) -> Result<Box<dyn Source>, SourceError> {
        Ok(Box::new(KafkaSource::new(self.clone(), ctx)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConfigWarning;

    fn parsed(pairs: &[(&str, &str)]) -> (Result<KafkaSourceConfig, ConfigError>, Vec<String>) {
        let mut keys = Keys::from_pairs("source", "r1", pairs);
        let r = parse_config(&mut keys);
        let mut warnings: Vec<ConfigWarning> = Vec::new();
        keys.finish(&mut warnings);
        (r, warnings.iter().map(|w| w.to_string()).collect())
    }

    const BOOT: (&str, &str) = ("kafka.bootstrap.servers", "b1:9092,b2:9092");

    #[test]
    fn defaults_are_flumes() {
        let (c, w) = parsed(&[BOOT, ("kafka.topics", "a")]);
        let c = c.expect("accepted");
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(c.subscription, Subscription::Topics(vec!["a".into()]));
        assert_eq!(c.group_id, "flume");
        assert_eq!(c.batch_size, 1000);
        assert_eq!(c.batch_duration, Duration::from_millis(1000));
        assert_eq!(c.backoff_increment, Duration::from_millis(1000));
        assert_eq!(c.max_backoff, Duration::from_millis(5000));
        assert!(!c.use_flume_event_format);
        assert!(c.set_topic_header);
        assert_eq!(c.topic_header, "topic");
        assert_eq!(c.client.get("bootstrap.servers"), Some("b1:9092,b2:9092"));
        assert_eq!(c.client.get("group.id"), Some("flume"));
        assert_eq!(c.client.get("enable.auto.commit"), Some("false"));
        assert_eq!(c.client.get("auto.offset.reset"), Some("latest"));
    }

    #[test]
    fn topic_lists_are_split_on_commas_with_spaces_trimmed() {
        let (c, _) = parsed(&[BOOT, ("kafka.topics", " a , b,c ")]);
        assert_eq!(
            c.expect("accepted").subscription,
            Subscription::Topics(vec!["a".into(), "b".into(), "c".into()])
        );
    }

    #[test]
    fn a_pattern_wins_over_a_list_and_is_anchored_for_librdkafka() {
        let (c, w) = parsed(&[
            BOOT,
            ("kafka.topics", "a"),
            ("kafka.topics.regex", "logs-[0-9]+"),
        ]);
        let c = c.expect("accepted");
        assert_eq!(c.subscription.rdkafka_topics(), vec!["^(logs-[0-9]+)$"]);
        assert!(
            w.iter()
                .any(|w| w.contains("kafka.topics") && w.contains("wins")),
            "{w:?}"
        );
    }

    #[test]
    fn java_only_pattern_syntax_is_refused_naming_the_key_and_line() {
        let (c, _) = parsed(&[BOOT, ("kafka.topics.regex", "logs-\\d+")]);
        let e = c.expect_err("refused").to_string();
        assert!(
            e.contains("kafka.topics.regex") && e.contains("[0-9]"),
            "{e}"
        );
        assert!(e.contains("test.conf:2"), "{e}");
    }

    #[test]
    fn old_keys_are_used_with_warnings_naming_the_new_ones() {
        let (c, w) = parsed(&[BOOT, ("topic", "old"), ("groupId", "g-old")]);
        let c = c.expect("accepted");
        assert_eq!(c.subscription, Subscription::Topics(vec!["old".into()]));
        assert_eq!(c.group_id, "g-old");
        assert_eq!(c.client.get("group.id"), Some("g-old"));
        assert!(
            w.iter()
                .any(|w| w.contains("r1.topic`") && w.contains("kafka.topics")),
            "{w:?}"
        );
        assert!(
            w.iter()
                .any(|w| w.contains("groupId") && w.contains("kafka.consumer.group.id")),
            "{w:?}"
        );
    }

    #[test]
    fn the_new_group_key_wins_over_the_old_one() {
        let (c, w) = parsed(&[
            BOOT,
            ("kafka.topics", "a"),
            ("groupId", "g-old"),
            ("kafka.consumer.group.id", "g-new"),
        ]);
        let c = c.expect("accepted");
        assert_eq!(c.group_id, "g-new");
        assert_eq!(c.client.get("group.id"), Some("g-new"));
        assert!(w.iter().any(|w| w.contains("groupId")), "{w:?}");
    }

    #[test]
    fn auto_commit_stays_off_whatever_the_file_says() {
        let (c, w) = parsed(&[
            BOOT,
            ("kafka.topics", "a"),
            ("kafka.consumer.enable.auto.commit", "true"),
            ("kafka.consumer.auto.offset.reset", "earliest"),
        ]);
        let c = c.expect("accepted");
        assert_eq!(c.client.get("enable.auto.commit"), Some("false"));
        assert_eq!(c.client.get("auto.offset.reset"), Some("earliest"));
        assert!(w.iter().any(|w| w.contains("enable.auto.commit")), "{w:?}");
    }

    #[test]
    fn zookeeper_alone_is_refused_and_beside_bootstrap_ignored() {
        let (c, _) = parsed(&[("zookeeperConnect", "zk:2181"), ("kafka.topics", "a")]);
        let e = c.expect_err("refused").to_string();
        assert!(
            e.contains("zookeeperConnect") && e.contains("kafka.bootstrap.servers"),
            "{e}"
        );
        let (c, w) = parsed(&[BOOT, ("zookeeperConnect", "zk:2181"), ("kafka.topics", "a")]);
        c.expect("accepted");
        assert!(
            w.iter()
                .any(|w| w.contains("zookeeperConnect") && w.contains("not migrated")),
            "{w:?}"
        );
    }

    #[test]
    fn bad_values_name_the_key_and_line() {
        for (key, value) in [
            ("batchSize", "0"),
            ("batchDurationMillis", "soon"),
            ("useFlumeEventFormat", "yes please"),
            ("maxBackoffSleep", "-1"),
        ] {
            let (c, _) = parsed(&[BOOT, ("kafka.topics", "a"), (key, value)]);
            let e = c.expect_err("refused").to_string();
            assert!(
                e.contains(&format!("a1.source.r1.{key}")) && e.contains("test.conf:3"),
                "{key}: {e}"
            );
        }
        let (c, _) = parsed(&[("kafka.topics", "a")]);
        let e = c.expect_err("refused").to_string();
        assert!(e.contains("kafka.bootstrap.servers"), "{e}");
        let (c, _) = parsed(&[BOOT]);
        let e = c.expect_err("refused").to_string();
        assert!(e.contains("kafka.topics"), "{e}");
    }

    #[test]
    fn kafka_headers_map_to_event_headers() {
        let (c, _) = parsed(&[BOOT, ("kafka.topics", "a"), ("header.trace", "trace-id")]);
        assert_eq!(
            c.expect("accepted").header_map,
            vec![("trace".to_string(), "trace-id".to_string())]
        );
    }
}
