//! The `spooldir` source's keys (Flume 1.11's SpoolDirectorySource keys and defaults), read
//! and checked once at start-up: every default is written here once, in
//! [`SpoolDirConfig::new`], and docs/CONFIG.md's `spooldir` table must say the same (the docs
//! test holds it to that). No I/O: whether the directory exists is checked when the source is
//! built.

use std::path::PathBuf;
use std::time::Duration;

use super::charset::{Charset, DecodeErrorPolicy};
use super::SpoolDirSource;
use crate::config::java_regex::{self, JavaRegex};
use crate::config::{ConfigError, Keys, Registered};
use crate::source::{Source, SourceContext, SourceError, SourceSpec, SourceType};

/// `spooldir` / Flume's SpoolDirectorySource.
pub const TYPE: SourceType = Registered {
    alias: "spooldir",
    class: Some("org.apache.flume.source.SpoolDirectorySource"),
    parse,
    minimal: &[("spoolDir", "/var/spool/flume")],
};

/// What happens to a file once all its events are committed (`deletePolicy`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeletePolicy {
    /// `never`: renamed to its name plus `fileSuffix`.
    Never,
    /// `immediate`: deleted.
    Immediate,
}

/// Which file is read next (`consumeOrder`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConsumeOrder {
    /// `oldest`: smallest modification time (in milliseconds, as Java's `lastModified`), ties
    /// to the smallest path.
    Oldest,
    /// `youngest`: largest modification time, ties to the smallest path.
    Youngest,
    /// `random`: any eligible file.
    Random,
}

/// How a file becomes events (`deserializer`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Deserializer {
    /// `LINE`: one event per line (ended by `\n`, which is not part of the body; a `\r`
    /// before it is, as in Flume). A line longer than `max_line_length` characters (Java
    /// chars: UTF-16 units) comes out as several events of at most that many characters, in
    /// order, as in Flume, with one warning per line.
    Line {
        max_line_length: usize,
        output_charset: Charset,
    },
    /// `BLOB`: the file's bytes as one event, in events of at most `max_blob_length` bytes
    /// (a longer file's rest becomes the next events, with a warning, as Flume's).
    Blob { max_blob_length: usize },
}

/// The `spooldir` source's keys (docs/CONFIG.md, `spooldir`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpoolDirConfig {
    /// `spoolDir` (required): the directory files are dropped into, complete and never
    /// written again.
    pub spool_dir: PathBuf,
    /// `fileSuffix` (default `.COMPLETED`): appended to a file's name once it is done.
    pub file_suffix: String,
    /// `deletePolicy` (default `never`).
    pub delete_policy: DeletePolicy,
    /// `fileHeader` (default false): put the file's absolute path in header
    /// `file_header_key`.
    pub file_header: bool,
    /// `fileHeaderKey` (default `file`).
    pub file_header_key: String,
    /// `basenameHeader` (default false): put the file's name in header
    /// `basename_header_key`.
    pub basename_header: bool,
    /// `basenameHeaderKey` (default `basename`).
    pub basename_header_key: String,
    /// `includePattern` (default `^.*$`): a Java regex the whole file name must match.
    pub include_pattern: JavaRegex,
    /// `ignorePattern` (default `^$`): a Java regex; matching file (and directory) names are
    /// skipped.
    pub ignore_pattern: JavaRegex,
    /// `trackerDir` (default `.flumespool`): where progress is recorded, relative to
    /// `spoolDir` unless absolute.
    pub tracker_dir: PathBuf,
    /// `consumeOrder` (default `oldest`).
    pub consume_order: ConsumeOrder,
    /// `pollDelay` (default 500 ms): wait between looks at an empty directory.
    pub poll_delay: Duration,
    /// `recursiveDirectorySearch` (default false): read files in subdirectories too.
    pub recursive: bool,
    /// `maxBackoff` (default 4000 ms): longest wait between attempts on a full channel.
    pub max_backoff: Duration,
    /// `batchSize` (default 100): events per channel transaction.
    pub batch_size: usize,
    /// `inputCharset` (default UTF-8).
    pub input_charset: Charset,
    /// `decodeErrorPolicy` (default FAIL).
    pub decode_error_policy: DecodeErrorPolicy,
    /// `deserializer` (default LINE) and its `deserializer.*` keys.
    pub deserializer: Deserializer,
}

/// `deserializer.maxLineLength` default (Flume's LineDeserializer).
pub const MAX_LINE_LENGTH: usize = 2048;
/// `deserializer.maxBlobLength` default (Flume's BlobDeserializer).
pub const MAX_BLOB_LENGTH: usize = 100_000_000;

const LINE_NAMES: &[&str] = &[
    "LINE",
    "org.apache.flume.serialization.LineDeserializer$Builder",
];
const BLOB_NAMES: &[&str] = &[
    "BLOB",
    "org.apache.flume.sink.solr.morphline.BlobDeserializer$Builder",
];
const AVRO_NAMES: &[&str] = &[
    "AVRO",
    "org.apache.flume.serialization.AvroEventDeserializer$Builder",
];

fn regex(pattern: &str) -> JavaRegex {
    // IMPORTANT: both defaults are plain patterns the translator accepts; the tests below
    // parse them, so a failure here cannot reach a user.
    java_regex::compile(pattern).unwrap_or_else(|e| panic!("built-in pattern {pattern}: {e}"))
}

impl SpoolDirConfig {
    /// Reading `spool_dir` with every other key at its default.
    pub fn new(spool_dir: impl Into<PathBuf>) -> SpoolDirConfig {
        SpoolDirConfig {
            spool_dir: spool_dir.into(),
            file_suffix: ".COMPLETED".to_string(),
            delete_policy: DeletePolicy::Never,
            file_header: false,
            file_header_key: "file".to_string(),
            basename_header: false,
            basename_header_key: "basename".to_string(),
            include_pattern: regex("^.*$"),
            ignore_pattern: regex("^$"),
            tracker_dir: PathBuf::from(".flumespool"),
            consume_order: ConsumeOrder::Oldest,
            poll_delay: Duration::from_millis(500),
            recursive: false,
            max_backoff: Duration::from_millis(4000),
            batch_size: 100,
            input_charset: Charset::Utf8,
            decode_error_policy: DecodeErrorPolicy::Fail,
            deserializer: Deserializer::Line {
                max_line_length: MAX_LINE_LENGTH,
                output_charset: Charset::Utf8,
            },
        }
    }

    /// The tracker directory as used: `trackerDir` under `spool_dir` unless absolute.
    pub fn tracker_path(&self, spool_dir: &std::path::Path) -> PathBuf {
        if self.tracker_dir.is_absolute() {
            self.tracker_dir.clone()
        } else {
            spool_dir.join(&self.tracker_dir)
        }
    }
}

/// A charset key: Java's name of a charset flumen has, or an error naming the key.
fn charset(keys: &mut Keys<'_>, key: &'static str) -> Result<Charset, ConfigError> {
    keys.document_default(key, "UTF-8");
    match keys.get(key) {
        None => Ok(Charset::Utf8),
        Some(v) => Charset::from_name(&v.value).ok_or_else(|| {
            keys.bad(
                key,
                &v,
                format!("a charset flumen reads: {}", Charset::supported()),
            )
        }),
    }
}

fn parse(keys: &mut Keys<'_>) -> Result<Box<dyn SourceSpec>, ConfigError> {
    let dir = keys.required(
        "spoolDir",
        "the directory complete files are moved into, e.g. /var/spool/flume",
    )?;
    let d = SpoolDirConfig::new(&dir.value);
    let file_suffix = keys.text("fileSuffix", &d.file_suffix);
    if file_suffix.is_empty() {
        return Err(keys.bad_effective("fileSuffix", "", "a non-empty suffix, e.g. .COMPLETED"));
    }
    keys.document_default("deletePolicy", "never");
    let delete_policy = match keys.get("deletePolicy") {
        None => d.delete_policy,
        Some(v) => match v.value.to_ascii_lowercase().as_str() {
            "never" => DeletePolicy::Never,
            "immediate" => DeletePolicy::Immediate,
            _ => return Err(keys.bad("deletePolicy", &v, "`never` or `immediate`")),
        },
    };
    let file_header = keys.boolean("fileHeader", d.file_header)?;
    let file_header_key = keys.text("fileHeaderKey", &d.file_header_key);
    let basename_header = keys.boolean("basenameHeader", d.basename_header)?;
    let basename_header_key = keys.text("basenameHeaderKey", &d.basename_header_key);
    keys.document_default("includePattern", "^.*$");
    let include_pattern = keys
        .java_regex("includePattern")?
        .unwrap_or(d.include_pattern);
    keys.document_default("ignorePattern", "^$");
    let ignore_pattern = keys
        .java_regex("ignorePattern")?
        .unwrap_or(d.ignore_pattern);
    let tracker_dir = PathBuf::from(keys.text("trackerDir", ".flumespool"));
    keys.document_default("consumeOrder", "oldest");
    let consume_order = match keys.get("consumeOrder") {
        None => d.consume_order,
        Some(v) => match v.value.to_ascii_lowercase().as_str() {
            "oldest" => ConsumeOrder::Oldest,
            "youngest" => ConsumeOrder::Youngest,
            "random" => ConsumeOrder::Random,
            _ => return Err(keys.bad("consumeOrder", &v, "`oldest`, `youngest` or `random`")),
        },
    };
    let poll_delay = keys.millis("pollDelay", d.poll_delay, 1)?;
    let recursive = keys.boolean("recursiveDirectorySearch", d.recursive)?;
    let max_backoff = keys.millis("maxBackoff", d.max_backoff, 1)?;
    let batch_size = keys.size("batchSize", d.batch_size, 1, "events")?;
    let input_charset = charset(keys, "inputCharset")?;
    keys.document_default("decodeErrorPolicy", "FAIL");
    let decode_error_policy = match keys.get("decodeErrorPolicy") {
        None => d.decode_error_policy,
        Some(v) => DecodeErrorPolicy::from_name(&v.value)
            .ok_or_else(|| keys.bad("decodeErrorPolicy", &v, "`FAIL`, `REPLACE` or `IGNORE`"))?,
    };
    keys.document_default("deserializer", "LINE");
    let deserializer = match keys.get("deserializer") {
        None => deserializer_line(keys)?,
        Some(v) if named(LINE_NAMES, &v.value) => deserializer_line(keys)?,
        Some(v) if named(BLOB_NAMES, &v.value) => Deserializer::Blob {
            max_blob_length: keys.size(
                "deserializer.maxBlobLength",
                MAX_BLOB_LENGTH,
                1,
                "bytes",
            )?,
        },
        Some(v) if named(AVRO_NAMES, &v.value) => {
            return Err(keys.unsupported(
                "deserializer",
                v.line,
                format!("the spooldir deserializer `{}`", v.value),
                "flumen's spooldir deserializers are LINE and BLOB",
            ))
        }
        Some(v) => {
            return Err(keys.bad(
                "deserializer",
                &v,
                "`LINE` or `BLOB` (or their Flume builder class names)",
            ))
        }
    };
    keys.only("trackingPolicy", &["rename"], "the spooldir trackingPolicy")?;
    keys.ignore(
        "bufferMaxLines",
        "Flume deprecated it and reads lines through the deserializer",
    );
    keys.ignore(
        "bufferMaxLineLength",
        "Flume deprecated it; use deserializer.maxLineLength",
    );
    Ok(Box::new(SpoolDirConfig {
        file_suffix,
        delete_policy,
        file_header,
        file_header_key,
        basename_header,
        basename_header_key,
        include_pattern,
        ignore_pattern,
        tracker_dir,
        consume_order,
        poll_delay,
        recursive,
        max_backoff,
        batch_size,
        input_charset,
        decode_error_policy,
        deserializer,
        ..d
    }))
}

/// Whether `value` is one of `names`: the short name in any case (Flume upper-cases it), the
/// class name exactly.
fn named(names: &[&str], value: &str) -> bool {
    names.iter().enumerate().any(|(i, n)| {
        if i == 0 {
            n.eq_ignore_ascii_case(value)
        } else {
            *n == value
        }
    })
}

fn deserializer_line(keys: &mut Keys<'_>) -> Result<Deserializer, ConfigError> {
    let max_line_length = keys.size(
        "deserializer.maxLineLength",
        MAX_LINE_LENGTH,
        1,
        "characters",
    )?;
    let output_charset = charset(keys, "deserializer.outputCharset")?;
    Ok(Deserializer::Line {
        max_line_length,
        output_charset,
    })
}

impl SourceSpec for SpoolDirConfig {
    fn batch_size(&self) -> Option<(usize, &'static str)> {
        Some((self.batch_size, "batchSize"))
    }

    fn build(&self, ctx: SourceContext) -> Result<Box<dyn Source>, SourceError> {
        Ok(Box::new(SpoolDirSource::new(ctx, self)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConfigError;

    fn parse_pairs(pairs: &[(&str, &str)]) -> Result<SpoolDirConfig, ConfigError> {
        let mut keys = Keys::from_pairs("sources", "r1", pairs);
        let spec = parse(&mut keys)?;
        Ok(spec
            .as_any()
            .downcast_ref::<SpoolDirConfig>()
            .expect("a spooldir config")
            .clone())
    }

    #[test]
    fn defaults_are_flumes() {
        let c = parse_pairs(&[("spoolDir", "/s")]).expect("minimal");
        assert_eq!(c, SpoolDirConfig::new("/s"));
        assert_eq!(c.file_suffix, ".COMPLETED");
        assert_eq!(c.batch_size, 100);
        assert_eq!(c.poll_delay, Duration::from_millis(500));
        assert_eq!(c.max_backoff, Duration::from_millis(4000));
        assert_eq!(
            c.tracker_path(std::path::Path::new("/s")),
            PathBuf::from("/s/.flumespool")
        );
        assert!(c.include_pattern.matches_whole("any.log"));
        assert!(!c.ignore_pattern.matches_whole("any.log"));
        assert_eq!(
            c.deserializer,
            Deserializer::Line {
                max_line_length: 2048,
                output_charset: Charset::Utf8
            }
        );
    }

    #[test]
    fn every_key_is_read() {
        let c = parse_pairs(&[
            ("spoolDir", "/s"),
            ("fileSuffix", ".DONE"),
            ("deletePolicy", "IMMEDIATE"),
            ("fileHeader", "true"),
            ("fileHeaderKey", "path"),
            ("basenameHeader", "true"),
            ("basenameHeaderKey", "name"),
            ("includePattern", "^.*\\.log$"),
            ("ignorePattern", "^skip.*$"),
            ("trackerDir", "/var/lib/tracker"),
            ("consumeOrder", "youngest"),
            ("pollDelay", "50"),
            ("recursiveDirectorySearch", "true"),
            ("maxBackoff", "100"),
            ("batchSize", "7"),
            ("inputCharset", "ISO-8859-1"),
            ("decodeErrorPolicy", "replace"),
            (
                "deserializer",
                "org.apache.flume.sink.solr.morphline.BlobDeserializer$Builder",
            ),
            ("deserializer.maxBlobLength", "1000"),
        ])
        .expect("all keys");
        assert_eq!(c.delete_policy, DeletePolicy::Immediate);
        assert_eq!(c.consume_order, ConsumeOrder::Youngest);
        assert_eq!(c.input_charset, Charset::Latin1);
        assert_eq!(c.decode_error_policy, DecodeErrorPolicy::Replace);
        assert_eq!(
            c.deserializer,
            Deserializer::Blob {
                max_blob_length: 1000
            }
        );
        assert_eq!(
            c.tracker_path(std::path::Path::new("/s")),
            PathBuf::from("/var/lib/tracker")
        );
        assert!(
            c.include_pattern.matches_whole("a.log") && !c.include_pattern.matches_whole("a.txt")
        );
        assert!(c.ignore_pattern.matches_whole("skip-me"));
        assert_eq!((c.batch_size, c.recursive, c.file_header), (7, true, true));
    }

    #[test]
    fn bad_values_name_the_key() {
        for (key, value, says) in [
            ("inputCharset", "EBCDIC", "a charset flumen reads"),
            (
                "deserializer.outputCharset",
                "KOI8-R",
                "a charset flumen reads",
            ),
            ("decodeErrorPolicy", "SKIP", "`FAIL`, `REPLACE` or `IGNORE`"),
            ("consumeOrder", "newest", "`oldest`, `youngest` or `random`"),
            ("deletePolicy", "later", "`never` or `immediate`"),
            ("deserializer", "JSON", "`LINE` or `BLOB`"),
            ("batchSize", "0", ""),
            ("deserializer.maxLineLength", "0", ""),
            ("includePattern", "(?i)x", ""),
        ] {
            let e = parse_pairs(&[("spoolDir", "/s"), (key, value)]).expect_err(key);
            let msg = e.to_string();
            assert!(msg.contains(&format!("a1.sources.r1.{key}")), "{msg}");
            assert!(msg.contains(says), "{msg}");
        }
        let e = parse_pairs(&[]).expect_err("spoolDir is required");
        assert!(e.to_string().contains("a1.sources.r1.spoolDir"), "{e}");
    }

    #[test]
    fn avro_is_not_supported_yet_and_says_so() {
        for v in [
            "avro",
            "org.apache.flume.serialization.AvroEventDeserializer$Builder",
        ] {
            let e = parse_pairs(&[("spoolDir", "/s"), ("deserializer", v)]).expect_err(v);
            let msg = e.to_string();
            assert!(msg.contains("a1.sources.r1.deserializer"), "{msg}");
            assert!(msg.contains("not supported"), "{msg}");
        }
        let e = parse_pairs(&[("spoolDir", "/s"), ("trackingPolicy", "tracker_dir")])
            .expect_err("tracker_dir policy");
        assert!(e.to_string().contains("trackingPolicy"), "{e}");
    }
}
