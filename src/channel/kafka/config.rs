//! The Kafka channel's keys: Flume 1.11's `KafkaChannel` keys with its defaults, its pre-1.7
//! keys mapped as Flume maps them (with a deprecation warning), and the client keys
//! (`kafka.producer.*`, `kafka.consumer.*`) turned into librdkafka settings by
//! `crate::kafka::client` over Flume's own client defaults.
//!
//! Invariant: every value is checked here, so opening the channel can only fail for reasons
//! outside the file (librdkafka refusing to start a client).

use std::time::Duration;

use crate::config::values::parse_bool;
use crate::config::{ConfigError, Keys, Val, WarningKind};
use crate::kafka::client::{self, ClientSettings, Role};

/// `kafka.topic` when unset (Flume's `DEFAULT_TOPIC`).
pub const DEFAULT_TOPIC: &str = "flume-channel";
/// `kafka.consumer.group.id` when unset (Flume's `DEFAULT_GROUP_ID`).
pub const DEFAULT_GROUP_ID: &str = "flume";
/// `kafka.pollTimeout` when unset, in milliseconds (Flume's `DEFAULT_POLL_TIMEOUT`).
pub const DEFAULT_POLL_TIMEOUT_MS: u64 = 500;
/// `kafka.consumer.auto.offset.reset` when unset: Flume's channel reads a new group's topic
/// from the start (Kafka's own default is `latest`).
pub const DEFAULT_AUTO_OFFSET_RESET: &str = "earliest";
/// `kafka.producer.acks` when unset: Flume's channel waits for every in-sync replica.
pub const DEFAULT_ACKS: &str = "all";
/// The event header whose value becomes the record's key, and that a taken record's key
/// becomes (Flume's `KEY_HEADER`).
pub const KEY_HEADER: &str = "key";

/// Why the ZooKeeper keys do nothing here.
const ZOOKEEPER_IGNORED: &str = "flumen reads the consumer group's offsets from Kafka only and never migrates offsets of Kafka 0.8 clients from ZooKeeper; if a group still has offsets only in ZooKeeper, run Flume 1.11 once with migrateZookeeperOffsets = true (or set the offsets with kafka-consumer-groups.sh --reset-offsets) before switching";

/// A Kafka channel's settings, with Flume's defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KafkaChannelConfig {
    /// `kafka.bootstrap.servers` (or the old `brokerList`): required.
    pub bootstrap: String,
    /// `kafka.topic` (or the old `topic`): the topic holding the channel's events
    /// (default `flume-channel`).
    pub topic: String,
    /// `kafka.consumer.group.id` (or the old `groupId`): the consumer group whose committed
    /// offsets are the channel's head (default `flume`).
    pub group_id: String,
    /// `parseAsFlumeEvent`: records are AvroFlumeEvents carrying headers and body (default
    /// true); false: records are bodies only and headers are lost, as in Flume.
    pub parse_as_flume_event: bool,
    /// `kafka.pollTimeout` (or `pollTimeout`): the longest one consumer poll blocks
    /// (default 500 ms).
    pub poll_timeout: Duration,
    /// `defaultPartitionId`: the partition every record goes to, unless the
    /// `partitionIdHeader` header says otherwise (default: Kafka's partitioner chooses).
    pub default_partition_id: Option<i32>,
    /// `partitionIdHeader`: the event header naming a record's partition (default none).
    pub partition_id_header: Option<String>,
    /// `transactionCapacity`: the most events one put or take transaction may hold (default
    /// unlimited, as Flume's Kafka channel has no limit).
    pub transaction_capacity: Option<usize>,
    /// The producer's librdkafka settings (Flume's defaults, then `kafka.producer.*`).
    pub producer: ClientSettings,
    /// The consumer's librdkafka settings (Flume's defaults, then `kafka.consumer.*`, then
    /// the group id and manual offset commits, which always win as in Flume).
    pub consumer: ClientSettings,
}

impl KafkaChannelConfig {
    /// Reads every key of one `kafka` channel.
    pub fn read(keys: &mut Keys<'_>) -> Result<KafkaChannelConfig, ConfigError> {
        let bootstrap = client::bootstrap_servers(keys, Some("brokerList"))?;
        let topic = renamed(keys, "kafka.topic", "topic", DEFAULT_TOPIC)
            .map_or_else(|| DEFAULT_TOPIC.to_string(), |v| v.value);
        // Read as a whole with the other consumer keys below; peeked here for `groupId`.
        keys.document_default("kafka.consumer.group.id", DEFAULT_GROUP_ID);
        let group_id = match keys.peek("kafka.consumer.group.id") {
            Some(g) if !g.is_empty() => {
                let g = g.to_string();
                if let Some(old) = keys.get("groupId") {
                    keys.warn(old.line, "groupId", new_key_wins("kafka.consumer.group.id"));
                }
                g
            }
            _ => match keys.get("groupId") {
                Some(old) if !old.value.is_empty() => {
                    keys.warn(old.line, "groupId", deprecated("kafka.consumer.group.id"));
                    old.value
                }
                _ => DEFAULT_GROUP_ID.to_string(),
            },
        };

        keys.document_default(
            "kafka.consumer.auto.offset.reset",
            DEFAULT_AUTO_OFFSET_RESET,
        );
        let mut reset = DEFAULT_AUTO_OFFSET_RESET;
        if let Some((smallest, v)) = keys.parsed("readSmallestOffset", parse_bool)? {
            if keys.has("kafka.consumer.auto.offset.reset").is_some() {
                keys.warn(
                    v.line,
                    "readSmallestOffset",
                    new_key_wins("kafka.consumer.auto.offset.reset"),
                );
            } else {
                keys.warn(
                    v.line,
                    "readSmallestOffset",
                    deprecated("kafka.consumer.auto.offset.reset"),
                );
                reset = if smallest { "earliest" } else { "latest" };
            }
        }

        let parse_as_flume_event = keys.boolean("parseAsFlumeEvent", true)?;
        let poll_timeout = poll_timeout(keys)?;
        let default_partition_id = keys
            .parsed("defaultPartitionId", parse_partition)?
            .map(|(p, _)| p);
        let partition_id_header = keys.get("partitionIdHeader").map(|v| v.value);
        keys.ignore("migrateZookeeperOffsets", ZOOKEEPER_IGNORED);
        keys.ignore("zookeeperConnect", ZOOKEEPER_IGNORED);
        keys.ignore(
            "capacity",
            "Flume's Kafka channel has no capacity: the topic holds the events, bounded by its retention (retention.ms, retention.bytes)",
        );
        keys.document_default("transactionCapacity", "unlimited");
        let transaction_capacity = match keys.opt_number("transactionCapacity", 1, "events")? {
            None => None,
            Some(n) => Some(usize::try_from(n).map_err(|_| {
                keys.bad_effective(
                    "transactionCapacity",
                    n,
                    "a smaller number: it does not fit this machine's word size",
                )
            })?),
        };

        keys.document_default("kafka.producer.acks", DEFAULT_ACKS);
        let mut producer = ClientSettings::new(&bootstrap);
        producer.set("acks", DEFAULT_ACKS);
        // The Java client's defaults, which Flume's users get: no lingering (a commit waits
        // for its own records, so lingering only adds latency) and two minutes to deliver.
        producer.set("linger.ms", "0");
        producer.set("delivery.timeout.ms", "120000");
        client::read_client_keys(keys, Role::Producer, &mut producer)?;
        if producer.user_set("transactional.id") {
            let key = "kafka.producer.transactional.id";
            return Err(keys.unsupported(
                key,
                keys.line_of(key),
                "Kafka producer transactions in the Kafka channel",
                "remove the key: each put commit already waits until the brokers acknowledged every record at `kafka.producer.acks`; a failed commit is retried by the source, so readers may see a record twice (at-least-once, as with Flume without transactions)",
            ));
        }

        let mut consumer = ClientSettings::new(&bootstrap);
        consumer.set("auto.offset.reset", reset);
        client::read_client_keys(keys, Role::Consumer, &mut consumer)?;
        // These always win, as in Flume: the group is the channel's, and offsets move only
        // when a take commits.
        consumer.set("group.id", group_id.as_str());
        consumer.set("enable.auto.commit", "false");
        consumer.set("enable.auto.offset.store", "false");

        Ok(KafkaChannelConfig {
            bootstrap,
            topic,
            group_id,
            parse_as_flume_event,
            poll_timeout,
            default_partition_id,
            partition_id_header,
            transaction_capacity,
            producer,
            consumer,
        })
    }
}

/// `new` if set and not empty, else the pre-1.7 key `old` with a deprecation warning (Flume
/// 1.11 maps these the same way); a warning on `old` when both are set.
fn renamed(
    keys: &mut Keys<'_>,
    new: &'static str,
    old: &'static str,
    default: &str,
) -> Option<Val> {
    keys.document_default(new, default);
    let new_val = keys.get(new).filter(|v| !v.value.is_empty());
    let old_val = keys.get(old);
    match (new_val, old_val) {
        (Some(v), Some(o)) => {
            keys.warn(o.line, old, new_key_wins(new));
            Some(v)
        }
        (Some(v), None) => Some(v),
        (None, Some(o)) => {
            keys.warn(o.line, old, deprecated(new));
            Some(o).filter(|o| !o.value.is_empty())
        }
        (None, None) => None,
    }
}

fn deprecated(new: &str) -> WarningKind {
    WarningKind::Deprecated {
        replacement: new.to_string(),
    }
}

fn new_key_wins(new: &str) -> WarningKind {
    WarningKind::IgnoredKey {
        reason: format!("`{new}` is also set and wins (as in Flume); remove this deprecated key"),
    }
}

/// `kafka.pollTimeout` is what Flume 1.11's code reads; its user guide calls it
/// `pollTimeout`, which Flume then ignores. flumen reads both (the first wins).
fn poll_timeout(keys: &mut Keys<'_>) -> Result<Duration, ConfigError> {
    let default = Duration::from_millis(DEFAULT_POLL_TIMEOUT_MS);
    let guide = keys.millis("pollTimeout", default, 1)?;
    let code = keys.millis("kafka.pollTimeout", default, 1)?;
    Ok(if keys.has("kafka.pollTimeout").is_some() {
        code
    } else {
        guide
    })
}

/// A partition number as Flume's `Integer.parseInt` reads it, and not negative.
pub fn parse_partition(s: &str) -> Result<i32, String> {
    match s.trim().parse::<i32>() {
        Ok(p) if p >= 0 => Ok(p),
        _ => Err("a partition number (0 or more) of the channel's topic".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(pairs: &[(&str, &str)]) -> (Result<KafkaChannelConfig, ConfigError>, Vec<String>) {
        let mut keys = Keys::from_pairs("channels", "c1", pairs);
        let cfg = KafkaChannelConfig::read(&mut keys);
        let mut warnings = Vec::new();
        keys.finish(&mut warnings);
        (cfg, warnings.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn flume_defaults() {
        let (cfg, warnings) = read(&[("kafka.bootstrap.servers", "b:9092")]);
        let cfg = cfg.expect("parses");
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(cfg.topic, "flume-channel");
        assert_eq!(cfg.group_id, "flume");
        assert!(cfg.parse_as_flume_event);
        assert_eq!(cfg.poll_timeout, Duration::from_millis(500));
        assert_eq!(cfg.transaction_capacity, None);
        assert_eq!(cfg.producer.get("acks"), Some("all"));
        assert_eq!(cfg.consumer.get("auto.offset.reset"), Some("earliest"));
        assert_eq!(cfg.consumer.get("group.id"), Some("flume"));
        assert_eq!(cfg.consumer.get("enable.auto.commit"), Some("false"));
    }
}
