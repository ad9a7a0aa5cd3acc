//! Sans-IO encoders for the file formats Flume's `hdfs` sink writes (`hdfs.fileType`):
//! Hadoop SequenceFile v6 (`SequenceFile`, the default), the stream of the events as the
//! `serializer` writes them (`DataStream`; TEXT, body-per-line, by default) and the same
//! stream through a compression codec (`CompressedStream`).
//!
//! The sink opens a file, calls [`Encoder::begin`], then [`Encoder::append`] per event,
//! [`Encoder::flush`] before each hsync, and [`Encoder::finish`] before close; every call
//! appends bytes to the caller's `Vec<u8>` and the sink writes them out. Invariants: this
//! module does no I/O and never panics on any event; after `flush` the bytes emitted so far
//! form a file that Hadoop's readers read completely (every appended event, nothing torn);
//! an encoder holds at most one compression block (about 1 MB, Hadoop's
//! `io.seqfile.compress.blocksize`) plus one event of uncompressed data between calls, and
//! its compressor's own bounded state (a bzip2 block is at most 900 kB).
//! Each submodule draws its byte layout; Hadoop's `SequenceFile.Writer` and Flume's
//! `HDFSSequenceFile`/`HDFSCompressedDataStream` are the behaviour matched.

mod codec;
mod seqfile;
mod stream;

use std::fmt;
use std::str::FromStr;

pub use codec::Codec;
pub use seqfile::{write_vint, SequenceFileEncoder, SYNC_INTERVAL};
pub use stream::{CompressedStreamEncoder, DataStreamEncoder};

use crate::event::Event;
use crate::sink::serializer::{SerializerError, SerializerSpec};

/// Flume's `hdfs.fileType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FileType {
    /// Hadoop SequenceFile, key `LongWritable` (the event time), value the body (Flume's
    /// default).
    #[default]
    SequenceFile,
    /// The body of each event followed by `\n`, uncompressed.
    DataStream,
    /// As `DataStream`, through `hdfs.codeC`.
    CompressedStream,
}

impl FromStr for FileType {
    type Err = FormatError;

    /// Case-insensitive, as Flume's `HDFSWriterFactory` compares.
    fn from_str(s: &str) -> Result<Self, FormatError> {
        let t = s.trim();
        if t.eq_ignore_ascii_case("SequenceFile") {
            Ok(FileType::SequenceFile)
        } else if t.eq_ignore_ascii_case("DataStream") {
            Ok(FileType::DataStream)
        } else if t.eq_ignore_ascii_case("CompressedStream") {
            Ok(FileType::CompressedStream)
        } else {
            Err(FormatError::UnknownFileType {
                name: s.to_string(),
            })
        }
    }
}

/// Flume's `hdfs.writeFormat`: the SequenceFile value class (streams ignore it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WriteFormat {
    /// `org.apache.hadoop.io.BytesWritable` (Flume's default).
    #[default]
    Writable,
    /// `org.apache.hadoop.io.Text`; the body bytes are stored as they are, unchecked, as
    /// Flume's `Text.set(byte[])` does.
    Text,
}

impl FromStr for WriteFormat {
    type Err = FormatError;

    fn from_str(s: &str) -> Result<Self, FormatError> {
        let t = s.trim();
        if t.eq_ignore_ascii_case("Writable") {
            Ok(WriteFormat::Writable)
        } else if t.eq_ignore_ascii_case("Text") {
            Ok(WriteFormat::Text)
        } else {
            Err(FormatError::UnknownWriteFormat {
                name: s.to_string(),
            })
        }
    }
}

/// SequenceFile compression when a codec is set. Flume always uses `Block`; `Record` exists
/// because Hadoop's readers accept it and it costs nothing to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SeqCompression {
    /// Keys and values of about 1 MB of records compressed together.
    #[default]
    Block,
    /// Each value compressed on its own; keys stay plain.
    Record,
}

/// Everything that decides a file's bytes: the sink's `hdfs.fileType`, `hdfs.writeFormat` and
/// `hdfs.codeC`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FormatSpec {
    pub file_type: FileType,
    pub write_format: WriteFormat,
    pub codec: Option<Codec>,
    pub seq_compression: SeqCompression,
    /// `serializer` and `serializer.*`: how the streams turn an event into bytes (a
    /// SequenceFile ignores it, as Flume's does).
    pub serializer: SerializerSpec,
}

impl FormatSpec {
    /// Refuses the combinations Flume refuses (a codec on `DataStream`, none on
    /// `CompressedStream`) and those Hadoop cannot read back.
    pub fn validate(&self) -> Result<(), FormatError> {
        match (self.file_type, self.codec) {
            (FileType::DataStream, Some(codec)) => Err(FormatError::CodecOnDataStream {
                codec: codec.flume_name(),
            }),
            (FileType::CompressedStream, None) => Err(FormatError::CompressedStreamWithoutCodec),
            _ => Ok(()),
        }
    }

    /// A fresh encoder for one file of this format. Call [`FormatSpec::validate`] first: an
    /// invalid spec gets the nearest valid encoder (a codec on `DataStream` is ignored, a
    /// `CompressedStream` without codec writes plain text), never a panic.
    pub fn encoder(&self) -> Box<dyn Encoder> {
        match (self.file_type, self.codec) {
            (FileType::SequenceFile, codec) => Box::new(SequenceFileEncoder::new(
                self.write_format,
                codec.map(|c| (c, self.seq_compression)),
            )),
            (FileType::CompressedStream, Some(codec)) => Box::new(
                CompressedStreamEncoder::with_serializer(codec, self.serializer.build()),
            ),
            (FileType::DataStream, _) | (FileType::CompressedStream, None) => {
                Box::new(DataStreamEncoder::with_serializer(self.serializer.build()))
            }
        }
    }

    /// The file name extension Flume appends when `hdfs.fileSuffix` is empty: the codec's
    /// default extension (`.gz`, `.deflate`, ...) for every file type, else nothing.
    pub fn default_extension(&self) -> &'static str {
        self.codec.map_or("", |c| c.default_extension())
    }
}

/// Turns events into the bytes of one file. See the module doc for the call sequence.
pub trait Encoder: Send {
    /// Bytes that start a new file: the SequenceFile header with a fresh random sync marker;
    /// nothing for streams. Calling it again starts another file with a new marker.
    fn begin(&mut self, out: &mut Vec<u8>);

    /// Appends one event. The SequenceFile key is the `timestamp` header (ms since the epoch)
    /// when it parses as an `i64`, else `now_ms`. Streams write the body and `\n`. Some bytes
    /// may stay buffered until the next `flush` or `finish`.
    fn append(&mut self, event: &Event, now_ms: i64, out: &mut Vec<u8>) -> Result<(), FormatError>;

    /// Emits everything buffered so that, after it, `out` holds all a reader needs to read
    /// every event appended so far: a SequenceFile's pending block and a sync marker (Hadoop's
    /// `Writer.sync()`, which Flume calls every batch), a compressed stream's finished member
    /// (Flume's `finish()` per batch; the next append starts a new member).
    fn flush(&mut self, out: &mut Vec<u8>) -> Result<(), FormatError>;

    /// Closes the file's format: the pending block or the final member. A compressed stream
    /// that never had an event still gets one empty member, so the file is a valid
    /// compressed file, as Flume's close leaves it.
    fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), FormatError>;
}

/// A format configuration or encoding failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FormatError {
    /// `hdfs.fileType` is not one of Flume's three.
    #[error(
        "hdfs.fileType `{name}` is not supported: use SequenceFile (the default), DataStream or \
         CompressedStream"
    )]
    UnknownFileType { name: String },
    /// `hdfs.writeFormat` is not one of Flume's two.
    #[error("hdfs.writeFormat `{name}` is not supported: use Writable (the default) or Text")]
    UnknownWriteFormat { name: String },
    /// `hdfs.codeC` names a codec flumen does not implement (or none Hadoop knows).
    #[error(
        "hdfs.codeC `{name}` is not supported{why}: choose one of {supported} (Flume's short \
         names or Hadoop's class names), or leave hdfs.codeC unset for no compression"
    )]
    UnsupportedCodec {
        name: String,
        /// Why a codec Hadoop knows is refused, or empty.
        why: &'static str,
        supported: &'static str,
    },
    /// Flume refuses a codec with `DataStream`, so the file does not get a misleading
    /// extension.
    #[error(
        "hdfs.fileType = DataStream does not compress, but hdfs.codeC = {codec} is set: remove \
         hdfs.codeC, or set hdfs.fileType = CompressedStream (or SequenceFile) to compress"
    )]
    CodecOnDataStream { codec: &'static str },
    /// `CompressedStream` needs a codec.
    #[error(
        "hdfs.fileType = CompressedStream needs hdfs.codeC (e.g. gzip): set it, or use \
         hdfs.fileType = DataStream for uncompressed text"
    )]
    CompressedStreamWithoutCodec,
    /// A SequenceFile record larger than Hadoop's 32-bit record length allows.
    #[error(
        "an event body of {len} bytes is too large for a SequenceFile record (Hadoop's limit \
         is {limit} bytes): split such events upstream or use hdfs.fileType = DataStream"
    )]
    EventTooLarge { len: usize, limit: usize },
    /// A stream's serializer failed (compressing an Avro block in memory).
    #[error(transparent)]
    Serializer(#[from] SerializerError),
    /// The compressor failed; with in-memory buffers this means a bug or memory exhaustion.
    #[error("{codec} compression failed: {source}")]
    Compression {
        codec: &'static str,
        #[source]
        source: std::io::Error,
    },
}

impl FormatError {
    /// Whether retrying the batch (into a new file, with a fresh encoder) can help without
    /// anyone acting.
    pub fn retry(&self) -> crate::sink::Retry {
        use crate::sink::Retry;
        match self {
            // The same event comes back on every retry and is still too large.
            FormatError::EventTooLarge { .. } => Retry::Permanent,
            // In-memory compression fails only from memory exhaustion or a fault in that
            // compressor's state; the retry starts a new file with a new compressor.
            FormatError::Compression { .. } | FormatError::Serializer(_) => Retry::Retryable,
            // Settings: checked at start-up, so they cannot change by retrying.
            FormatError::UnknownFileType { .. }
            | FormatError::UnknownWriteFormat { .. }
            | FormatError::UnsupportedCodec { .. }
            | FormatError::CodecOnDataStream { .. }
            | FormatError::CompressedStreamWithoutCodec => Retry::Permanent,
        }
    }
}

impl fmt::Display for FileType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FileType::SequenceFile => "SequenceFile",
            FileType::DataStream => "DataStream",
            FileType::CompressedStream => "CompressedStream",
        })
    }
}

/// 16 bytes that differ per file and per process, for a SequenceFile's sync marker. Hadoop
/// uses an MD5 of a UID and the time; all readers need is that the bytes are unlikely to occur
/// in the data, so a randomly keyed SipHash of the time and a counter serves.
fn fresh_sync_marker() -> [u8; 16] {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mut marker = [0u8; 16];
    for (i, half) in marker.chunks_exact_mut(8).enumerate() {
        // Each RandomState is keyed afresh (per-thread random keys, bumped per instance).
        let mut h = RandomState::new().build_hasher();
        h.write_u64(n);
        h.write_u128(nanos);
        h.write_u32(std::process::id());
        h.write_usize(i);
        half.copy_from_slice(&h.finish().to_be_bytes());
    }
    marker
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_validation_follows_flume() {
        let mut spec = FormatSpec::default();
        assert!(spec.validate().is_ok());
        assert_eq!(spec.default_extension(), "");
        spec.file_type = FileType::DataStream;
        spec.codec = Some(Codec::Gzip);
        assert!(matches!(
            spec.validate(),
            Err(FormatError::CodecOnDataStream { .. })
        ));
        spec.file_type = FileType::CompressedStream;
        assert!(spec.validate().is_ok());
        assert_eq!(spec.default_extension(), ".gz");
        spec.codec = None;
        assert!(matches!(
            spec.validate(),
            Err(FormatError::CompressedStreamWithoutCodec)
        ));
        let seq = FormatSpec {
            codec: Some(Codec::Default),
            ..FormatSpec::default()
        };
        assert_eq!(seq.default_extension(), ".deflate");
    }

    #[test]
    fn names_parse_case_insensitively() {
        assert_eq!(
            "compressedstream".parse::<FileType>().ok(),
            Some(FileType::CompressedStream)
        );
        assert_eq!("TEXT".parse::<WriteFormat>().ok(), Some(WriteFormat::Text));
        let err = "Parquet"
            .parse::<FileType>()
            .expect_err("must be refused")
            .to_string();
        assert!(err.contains("SequenceFile"), "{err}");
    }

    #[test]
    fn sync_markers_differ() {
        assert_ne!(fresh_sync_marker(), fresh_sync_marker());
    }
}
