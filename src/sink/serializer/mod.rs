//! Flume's event serializers, shared by the `file_roll` sink (`sink.serializer`,
//! `sink.serializer.*`) and the `hdfs` sink's streams (`serializer`, `serializer.*`, read
//! by `hdfs.fileType = DataStream` and `CompressedStream`): how one event becomes bytes in
//! an output file.
//!
//! - `TEXT` ([`text`]): the body, then `\n` (`appendNewline`).
//! - `HEADER_AND_TEXT` ([`header_and_text`]): the headers as Java's `Map.toString()`, a
//!   space, the body, then `\n`.
//! - `AVRO_EVENT` ([`avro_event`]): an Avro object container file of Flume's `Event` record.
//!
//! This module owns the serializer keys: [`parse`] reads them under the names a sink passes
//! in ([`SerializerKeys`]), with Flume's aliases (any case) and class names; any other value
//! (a custom class) is refused at start-up naming the key and class. The sinks only call
//! [`SerializerSpec::build`] per file and drive the [`Serializer`].
//!
//! Invariants: no I/O, no panic on any event; after [`Serializer::flush`] the bytes emitted
//! since [`Serializer::begin`] form a file whose every appended event a reader of the format
//! reads (for Avro: whole blocks only, so a file cut at any flush is a complete container
//! file); a serializer holds at most one Avro block (`syncIntervalBytes` plus one event) of
//! unflushed bytes.

pub mod avro_event;
pub mod header_and_text;
pub mod text;

use crate::config::values::parse_bool;
use crate::config::{ConfigError, Keys, WarningKind};
use crate::event::Event;

pub use avro_event::{AvroCodec, AvroEventConfig};

/// The key names one sink uses for the serializer settings (Flume's file_roll sink prefixes
/// them with `sink.`, its HDFS sink does not).
#[derive(Debug, Clone, Copy)]
pub struct SerializerKeys {
    /// The serializer's type.
    pub serializer: &'static str,
    /// TEXT and HEADER_AND_TEXT: `appendNewline`.
    pub append_newline: &'static str,
    /// AVRO_EVENT: `compressionCodec`.
    pub compression_codec: &'static str,
    /// AVRO_EVENT: `syncIntervalBytes`.
    pub sync_interval_bytes: &'static str,
}

/// The `file_roll` sink's names.
pub const FILE_ROLL_KEYS: SerializerKeys = SerializerKeys {
    serializer: "sink.serializer",
    append_newline: "sink.serializer.appendNewline",
    compression_codec: "sink.serializer.compressionCodec",
    sync_interval_bytes: "sink.serializer.syncIntervalBytes",
};

/// The `hdfs` sink's names (no `hdfs.` prefix, as Flume reads them).
pub const HDFS_KEYS: SerializerKeys = SerializerKeys {
    serializer: "serializer",
    append_newline: "serializer.appendNewline",
    compression_codec: "serializer.compressionCodec",
    sync_interval_bytes: "serializer.syncIntervalBytes",
};

/// A parsed serializer setting: everything that decides the bytes, cheap to copy into each
/// file's [`Serializer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SerializerSpec {
    /// `TEXT` (the default).
    Text { append_newline: bool },
    /// `HEADER_AND_TEXT`.
    HeaderAndText { append_newline: bool },
    /// `AVRO_EVENT`.
    AvroEvent(AvroEventConfig),
}

impl Default for SerializerSpec {
    fn default() -> Self {
        SerializerSpec::Text {
            append_newline: true,
        }
    }
}

/// Flume's serializer names: (alias, builder class).
const TEXT: (&str, &str) = (
    "TEXT",
    "org.apache.flume.serialization.BodyTextEventSerializer$Builder",
);
const HEADER_AND_TEXT: (&str, &str) = (
    "HEADER_AND_TEXT",
    "org.apache.flume.serialization.HeaderAndBodyTextEventSerializer$Builder",
);
const AVRO_EVENT: (&str, &str) = (
    "AVRO_EVENT",
    "org.apache.flume.serialization.FlumeEventAvroEventSerializer$Builder",
);

impl SerializerSpec {
    /// A fresh serializer for one file.
    pub fn build(&self) -> Box<dyn Serializer> {
        match *self {
            SerializerSpec::Text { append_newline } => Box::new(text::Text::new(append_newline)),
            SerializerSpec::HeaderAndText { append_newline } => {
                Box::new(header_and_text::HeaderAndText::new(append_newline))
            }
            SerializerSpec::AvroEvent(cfg) => Box::new(avro_event::AvroEvent::new(cfg)),
        }
    }

    /// Flume's name for it, for messages.
    pub fn name(&self) -> &'static str {
        match self {
            SerializerSpec::Text { .. } => TEXT.0,
            SerializerSpec::HeaderAndText { .. } => HEADER_AND_TEXT.0,
            SerializerSpec::AvroEvent(_) => AVRO_EVENT.0,
        }
    }
}

/// Reads the serializer keys named by `k`: the type (Flume's aliases in any case, or their
/// builder class names), then the keys that type reads, with Flume's defaults. Keys another
/// type would read are warned about as ignored, as Flume ignores them.
pub fn parse(keys: &mut Keys<'_>, k: &SerializerKeys) -> Result<SerializerSpec, ConfigError> {
    keys.document_default(k.serializer, TEXT.0);
    let kind = match keys.get(k.serializer) {
        None => TEXT.0,
        Some(v) => {
            let s = v.value.as_str();
            let known = [TEXT, HEADER_AND_TEXT, AVRO_EVENT]
                .into_iter()
                .find(|(alias, class)| s.eq_ignore_ascii_case(alias) || s == *class);
            match known {
                Some((alias, _)) => alias,
                None => {
                    return Err(keys.unsupported(
                        k.serializer,
                        v.line,
                        format!("the serializer `{s}`"),
                        "flumen cannot load Java classes; use TEXT (the default), \
                         HEADER_AND_TEXT or AVRO_EVENT (or their Flume class names)",
                    ))
                }
            }
        }
    };
    let default_newline = true;
    keys.document_default(k.append_newline, default_newline.to_string());
    let avro_defaults = AvroEventConfig::default();
    keys.document_default(k.compression_codec, avro_defaults.codec.name());
    keys.document_default(
        k.sync_interval_bytes,
        avro_defaults.sync_interval_bytes.to_string(),
    );
    let ignored = |keys: &mut Keys<'_>, key: &'static str| {
        if let Some(v) = keys.get(key) {
            keys.warn(
                v.line,
                key,
                WarningKind::IgnoredKey {
                    reason: format!("the {kind} serializer does not read it"),
                },
            );
        }
    };
    if kind == AVRO_EVENT.0 {
        ignored(keys, k.append_newline);
        let codec = match keys.get(k.compression_codec) {
            None => avro_defaults.codec,
            Some(v) => match AvroCodec::from_name(&v.value) {
                Ok(c) => c,
                Err(why) => {
                    return Err(keys.unsupported(
                        k.compression_codec,
                        v.line,
                        format!("the Avro codec `{}`", v.value),
                        why,
                    ))
                }
            },
        };
        let sync = keys.number(
            k.sync_interval_bytes,
            u64::from(avro_defaults.sync_interval_bytes),
            avro_event::MIN_SYNC_INTERVAL.into(),
            "bytes",
        )?;
        let sync_interval_bytes = match u32::try_from(sync) {
            Ok(n) if n <= avro_event::MAX_SYNC_INTERVAL => n,
            _ => {
                return Err(keys.bad_effective(
                    k.sync_interval_bytes,
                    sync,
                    format!(
                        "bytes from {} to {} (Avro's limits)",
                        avro_event::MIN_SYNC_INTERVAL,
                        avro_event::MAX_SYNC_INTERVAL
                    ),
                ))
            }
        };
        return Ok(SerializerSpec::AvroEvent(AvroEventConfig {
            codec,
            sync_interval_bytes,
        }));
    }
    ignored(keys, k.compression_codec);
    ignored(keys, k.sync_interval_bytes);
    let append_newline = keys
        .parsed(k.append_newline, parse_bool)?
        .map_or(default_newline, |(b, _)| b);
    Ok(if kind == HEADER_AND_TEXT.0 {
        SerializerSpec::HeaderAndText { append_newline }
    } else {
        SerializerSpec::Text { append_newline }
    })
}

/// Turns the events of one file into its bytes. The caller calls [`begin`](Self::begin)
/// once per file, [`append`](Self::append) per event, [`flush`](Self::flush) at the end of
/// every batch (before its sync) and [`finish`](Self::finish) before closing; every call
/// appends to the caller's buffer.
pub trait Serializer: Send {
    /// The bytes that open a file (the Avro container header; nothing for text). Calling it
    /// again starts another file.
    fn begin(&mut self, _out: &mut Vec<u8>) {}

    /// One event. Some bytes may stay buffered until the next `flush`.
    fn append(&mut self, event: &Event, out: &mut Vec<u8>) -> Result<(), SerializerError>;

    /// Everything buffered, so that `out` then holds every event appended so far in a form
    /// a reader reads (Flume's `EventSerializer.flush()`: an Avro block and sync marker).
    /// Nothing for the text serializers, which write each event whole.
    fn flush(&mut self, _out: &mut Vec<u8>) -> Result<(), SerializerError> {
        Ok(())
    }

    /// The file's closing bytes (Flume's `beforeClose()`): for every serializer here, what
    /// `flush` emits.
    fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), SerializerError> {
        self.flush(out)
    }

    /// Forgets the events appended since the last `flush` (a batch that failed is retried
    /// and must not appear twice).
    fn discard(&mut self) {}
}

/// A serializer could not encode: only compressing an Avro block can fail, and in memory
/// that means a bug or memory exhaustion.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SerializerError {
    /// The Avro block compressor failed.
    #[error("AVRO_EVENT: {codec} compression of a block failed: {source}")]
    Compression {
        codec: &'static str,
        #[source]
        source: std::io::Error,
    },
}

/// The entries of `headers` in the order Java's `HashMap.toString()` and `entrySet()` visit
/// them, for a `HashMap<String, String>` filled by inserting the entries one by one (as
/// Flume's sources and channels build event headers): bucket by bucket, a key's bucket being
/// `(h ^ (h >>> 16)) & (capacity - 1)` with `h` Java's `String.hashCode()` (over UTF-16 code
/// units) and the capacity 16, doubled while the entries exceed three quarters of it. Keys
/// sharing a bucket come in insertion order in Java; flumen does not keep insertion order, so
/// they come in key order here (docs/FORMAT.md).
pub fn java_hash_map_order(headers: &crate::event::Headers) -> Vec<(&str, &str)> {
    let mut capacity: usize = 16;
    while headers.len() > capacity / 4 * 3 && capacity < 1 << 30 {
        capacity *= 2;
    }
    let mut entries: Vec<(usize, &str, &str)> = headers
        .iter()
        .map(|(k, v)| {
            let h = java_string_hash(k) as u32;
            let bucket = ((h ^ (h >> 16)) as usize) & (capacity - 1);
            (bucket, k.as_str(), v.as_str())
        })
        .collect();
    // Stable: within a bucket the BTreeMap's key order stays.
    entries.sort_by_key(|e| e.0);
    entries.into_iter().map(|(_, k, v)| (k, v)).collect()
}

/// Java's `String.hashCode()`: `s[0]*31^(n-1) + ... + s[n-1]` over UTF-16 code units,
/// wrapping.
pub fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Headers;

    fn parse_pairs(pairs: &[(&str, &str)]) -> Result<SerializerSpec, ConfigError> {
        let mut keys = Keys::from_pairs("sinks", "k1", pairs);
        parse(&mut keys, &HDFS_KEYS)
    }

    #[test]
    fn names_parse_in_any_case_and_by_class() {
        assert_eq!(parse_pairs(&[]).ok(), Some(SerializerSpec::default()));
        for (v, want) in [
            ("text", SerializerSpec::default()),
            (TEXT.1, SerializerSpec::default()),
            (
                "Header_And_Text",
                SerializerSpec::HeaderAndText {
                    append_newline: true,
                },
            ),
            (
                HEADER_AND_TEXT.1,
                SerializerSpec::HeaderAndText {
                    append_newline: true,
                },
            ),
            (
                "avro_event",
                SerializerSpec::AvroEvent(AvroEventConfig::default()),
            ),
            (
                AVRO_EVENT.1,
                SerializerSpec::AvroEvent(AvroEventConfig::default()),
            ),
        ] {
            assert_eq!(parse_pairs(&[("serializer", v)]).ok(), Some(want), "{v}");
        }
    }

    #[test]
    fn keys_of_each_type_are_read() {
        let spec = parse_pairs(&[
            ("serializer", "avro_event"),
            ("serializer.compressionCodec", "deflate"),
            ("serializer.syncIntervalBytes", "4096"),
        ]);
        assert_eq!(
            spec.ok(),
            Some(SerializerSpec::AvroEvent(AvroEventConfig {
                codec: AvroCodec::Deflate,
                sync_interval_bytes: 4096
            }))
        );
        let spec = parse_pairs(&[
            ("serializer", "header_and_text"),
            ("serializer.appendNewline", "false"),
        ]);
        assert_eq!(
            spec.ok(),
            Some(SerializerSpec::HeaderAndText {
                append_newline: false
            })
        );
    }

    #[test]
    fn keys_another_type_reads_are_warned_about_as_ignored() {
        let mut keys = Keys::from_pairs(
            "sinks",
            "k1",
            &[
                ("sink.serializer", "text"),
                ("sink.serializer.compressionCodec", "deflate"),
            ],
        );
        let spec = parse(&mut keys, &FILE_ROLL_KEYS).expect("parse");
        assert_eq!(spec, SerializerSpec::default());
        let mut warnings = Vec::new();
        keys.finish(&mut warnings);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        let w = warnings[0].to_string();
        assert!(
            w.contains("sink.serializer.compressionCodec") && w.contains("TEXT"),
            "{w}"
        );
    }

    #[test]
    fn custom_classes_and_bad_values_are_refused_naming_the_key() {
        let e = parse_pairs(&[("serializer", "com.example.MySerializer$Builder")])
            .expect_err("custom class")
            .to_string();
        assert!(
            e.contains("serializer") && e.contains("com.example.MySerializer$Builder"),
            "{e}"
        );
        assert!(e.contains("AVRO_EVENT"), "{e}");
        let e = parse_pairs(&[
            ("serializer", "avro_event"),
            ("serializer.compressionCodec", "xz"),
        ])
        .expect_err("xz")
        .to_string();
        assert!(
            e.contains("compressionCodec") && e.contains("deflate"),
            "{e}"
        );
        for bad in ["31", "1073741825"] {
            let e = parse_pairs(&[
                ("serializer", "avro_event"),
                ("serializer.syncIntervalBytes", bad),
            ])
            .expect_err("out of Avro's range")
            .to_string();
            assert!(e.contains("syncIntervalBytes"), "{e}");
        }
    }

    #[test]
    fn java_hash_codes_and_map_order() {
        assert_eq!(java_string_hash(""), 0);
        assert_eq!(java_string_hash("a"), 97);
        // "hello".hashCode() in Java.
        assert_eq!(java_string_hash("hello"), 99_162_322);
        // Beyond the BMP: two UTF-16 units, as Java counts.
        assert_eq!(java_string_hash("\u{1F600}"), 0xD83D * 31 + 0xDE00);
        let mut h = Headers::new();
        for k in ["timestamp", "host", "a", "b", "zz"] {
            h.insert(k.to_string(), "v".to_string());
        }
        let order: Vec<&str> = java_hash_map_order(&h).into_iter().map(|e| e.0).collect();
        // What `new HashMap` with these five keys prints (checked against Java 17).
        assert_eq!(order, ["zz", "a", "b", "host", "timestamp"]);
    }
}
