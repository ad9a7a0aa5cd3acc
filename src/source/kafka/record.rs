//! A Kafka record as the event Flume 1.11's KafkaSource makes of it.
//!
//! The body is the record's value (empty for a null value), or, with `useFlumeEventFormat`,
//! the body of the AvroFlumeEvent the value holds, whose headers come along. Then, in Flume's
//! order, each header is added only where the event does not have it yet: `timestamp` (the
//! record's timestamp in milliseconds, create or log-append time, `-1` when it has none), the
//! `header.*` mapped Kafka record headers (these do replace), the topic (`topicHeader`, when
//! `setTopicHeader`), `partition`, `offset`; and `key`, the record's key as UTF-8 text (invalid
//! bytes replaced, as Java's StringDeserializer does), whenever the record has one, replacing
//! a `key` the AvroFlumeEvent carried.
//!
//! Invariant: a value that is no AvroFlumeEvent is an error for the caller to count and skip,
//! never a panic; decoding never allocates more than the value's size.

use bytes::Bytes;
use rdkafka::message::{BorrowedMessage, Headers as _, Message};

use super::KafkaSourceConfig;
use crate::avro::protocol::decode_flume_event;
use crate::event::{Event, Headers};

/// A value that `useFlumeEventFormat` cannot read.
#[derive(Debug, thiserror::Error)]
#[error("its value ({len} bytes) is no AvroFlumeEvent: {why}")]
pub struct BadRecord {
    len: usize,
    why: String,
}

/// The event Flume makes of `msg` (see the module docs).
pub fn to_event(cfg: &KafkaSourceConfig, msg: &BorrowedMessage<'_>) -> Result<Event, BadRecord> {
    let value = msg.payload().unwrap_or(&[]);
    let timestamp = msg.timestamp().to_millis().unwrap_or(-1);
    let key = msg.key();
    let kafka_headers = msg.headers();
    let lookup = |name: &str| -> Option<String> {
        let hs = kafka_headers?;
        // Flume copies every header of that name in turn, so the last one wins.
        hs.iter()
            .filter(|h| h.key == name)
            .filter_map(|h| h.value)
            .last()
            .map(|v| String::from_utf8_lossy(v).into_owned())
    };
    if cfg.use_flume_event_format {
        let mut event =
            decode_flume_event(&Bytes::copy_from_slice(value)).map_err(|e| BadRecord {
                len: value.len(),
                why: e.to_string(),
            })?;
        let has = |e: &Event, k: &str| e.header(k).is_some();
        if !has(&event, "timestamp") {
            event.set_header("timestamp", timestamp.to_string());
        }
        for (flume, kafka) in &cfg.header_map {
            if let Some(v) = lookup(kafka) {
                event.set_header(flume.as_str(), v);
            }
        }
        if cfg.set_topic_header && !has(&event, &cfg.topic_header) {
            event.set_header(cfg.topic_header.as_str(), msg.topic());
        }
        if !has(&event, "partition") {
            event.set_header("partition", msg.partition().to_string());
        }
        if !has(&event, "offset") {
            event.set_header("offset", msg.offset().to_string());
        }
        if let Some(k) = key {
            event.set_header("key", String::from_utf8_lossy(k).into_owned());
        }
        return Ok(event);
    }
    let mut headers = Headers::new();
    headers.insert("timestamp".to_string(), timestamp.to_string());
    for (flume, kafka) in &cfg.header_map {
        if let Some(v) = lookup(kafka) {
            headers.insert(flume.clone(), v);
        }
    }
    if cfg.set_topic_header && !headers.contains_key(&cfg.topic_header) {
        headers.insert(cfg.topic_header.clone(), msg.topic().to_string());
    }
    headers
        .entry("partition".to_string())
        .or_insert_with(|| msg.partition().to_string());
    headers
        .entry("offset".to_string())
        .or_insert_with(|| msg.offset().to_string());
    if let Some(k) = key {
        headers.insert("key".to_string(), String::from_utf8_lossy(k).into_owned());
    }
    Ok(Event::with_headers(headers, Bytes::copy_from_slice(value)))
}
