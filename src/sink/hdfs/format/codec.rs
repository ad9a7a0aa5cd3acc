//! Hadoop compression codecs as `hdfs.codeC` names them, and the two ways the formats use
//! them: one complete compressed unit per buffer (SequenceFile values and blocks, where
//! Hadoop resets and finishes its codec stream for every buffer) and a streaming member that
//! a compressed text file is a concatenation of.
//!
//! Only codecs whose output Hadoop's pure-Java readers decode are offered: a codec that would
//! need Hadoop's native library on every reader is refused at configuration time rather than
//! producing files nobody can read. Compression here works on memory buffers, so its errors
//! can only be bugs or memory exhaustion; they are still returned, never unwrapped.

use std::io::Write;

use flate2::write::{GzEncoder, ZlibEncoder};
use flate2::Compression;

use super::FormatError;

/// A compression codec for `hdfs.codeC`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    /// `org.apache.hadoop.io.compress.DefaultCodec`: a zlib stream (RFC 1950), `.deflate`.
    Default,
    /// `org.apache.hadoop.io.compress.DeflateCodec`: the same zlib bytes under its own class
    /// name (Hadoop's DeflateCodec is a DefaultCodec), `.deflate`.
    Deflate,
    /// `org.apache.hadoop.io.compress.GzipCodec`: gzip members (RFC 1952), `.gz`.
    Gzip,
}

/// The list shown when a name is refused.
const SUPPORTED: &str = "default (DefaultCodec), deflate (DeflateCodec), gzip (GzipCodec)";

/// Codecs Hadoop (or hadoop-lzo) defines that flumen does not write, with the reason.
const REFUSED: &[(&str, &str, &str)] = &[
    (
        "BZip2Codec",
        "org.apache.hadoop.io.compress.BZip2Codec",
        " (bzip2 is not implemented in flumen)",
    ),
    (
        "Lz4Codec",
        "org.apache.hadoop.io.compress.Lz4Codec",
        " (lz4 is not implemented in flumen)",
    ),
    (
        "SnappyCodec",
        "org.apache.hadoop.io.compress.SnappyCodec",
        " (snappy is not implemented in flumen)",
    ),
    (
        "ZStandardCodec",
        "org.apache.hadoop.io.compress.ZStandardCodec",
        " (zstd needs Hadoop's native library on every reader)",
    ),
    (
        "LzoCodec",
        "com.hadoop.compression.lzo.LzoCodec",
        " (LZO is the GPL hadoop-lzo add-on, not part of Hadoop)",
    ),
    (
        "LzopCodec",
        "com.hadoop.compression.lzo.LzopCodec",
        " (LZO is the GPL hadoop-lzo add-on, not part of Hadoop)",
    ),
];

const ALL: [Codec; 3] = [Codec::Default, Codec::Deflate, Codec::Gzip];

/// Flume's `codecMatches`: the full class name exactly, the simple class name or the simple
/// name without its `Codec` suffix, case-insensitively.
fn name_matches(name: &str, simple: &str, class: &str) -> bool {
    if name == class || name.eq_ignore_ascii_case(simple) {
        return true;
    }
    simple
        .strip_suffix("Codec")
        .is_some_and(|prefix| name.eq_ignore_ascii_case(prefix))
}

impl Codec {
    /// Parses `hdfs.codeC` as Flume does: `gzip`, `GzipCodec` and
    /// `org.apache.hadoop.io.compress.GzipCodec` all name gzip; `None` means no codec.
    pub fn from_flume_name(name: &str) -> Result<Option<Codec>, FormatError> {
        let name = name.trim();
        if name.eq_ignore_ascii_case("none") {
            return Ok(None);
        }
        if let Some(codec) = ALL
            .into_iter()
            .find(|c| name_matches(name, c.simple_name(), c.hadoop_class()))
        {
            return Ok(Some(codec));
        }
        let why = REFUSED
            .iter()
            .find(|(simple, class, _)| name_matches(name, simple, class))
            .map_or("", |(_, _, why)| why);
        Err(FormatError::UnsupportedCodec {
            name: name.to_string(),
            why,
            supported: SUPPORTED,
        })
    }

    /// The class name Hadoop's readers instantiate (written into SequenceFile headers).
    pub fn hadoop_class(self) -> &'static str {
        match self {
            Codec::Default => "org.apache.hadoop.io.compress.DefaultCodec",
            Codec::Deflate => "org.apache.hadoop.io.compress.DeflateCodec",
            Codec::Gzip => "org.apache.hadoop.io.compress.GzipCodec",
        }
    }

    fn simple_name(self) -> &'static str {
        match self {
            Codec::Default => "DefaultCodec",
            Codec::Deflate => "DeflateCodec",
            Codec::Gzip => "GzipCodec",
        }
    }

    /// The short name Flume's documentation uses.
    pub fn flume_name(self) -> &'static str {
        match self {
            Codec::Default => "default",
            Codec::Deflate => "deflate",
            Codec::Gzip => "gzip",
        }
    }

    /// `CompressionCodec.getDefaultExtension()`: Flume appends it to file names, and Hadoop's
    /// `CompressionCodecFactory` picks the codec of a stream file by it.
    pub fn default_extension(self) -> &'static str {
        match self {
            Codec::Default | Codec::Deflate => ".deflate",
            Codec::Gzip => ".gz",
        }
    }

    /// Appends `data` compressed as one complete unit (a whole zlib stream or gzip member),
    /// what Hadoop's codec stream produces between `resetState()` and `finish()`.
    pub(super) fn compress_unit(self, data: &[u8], out: &mut Vec<u8>) -> Result<(), FormatError> {
        let err = |source| FormatError::Compression {
            codec: self.flume_name(),
            source,
        };
        match self {
            Codec::Default | Codec::Deflate => {
                let mut enc = ZlibEncoder::new(out, Compression::default());
                enc.write_all(data).map_err(err)?;
                enc.finish().map_err(err)?;
            }
            Codec::Gzip => {
                let mut enc = GzEncoder::new(out, Compression::default());
                enc.write_all(data).map_err(err)?;
                enc.finish().map_err(err)?;
            }
        }
        Ok(())
    }

    /// A streaming compressor for one member of a compressed text file.
    pub(super) fn member(self) -> Member {
        match self {
            Codec::Default | Codec::Deflate => {
                Member::Zlib(self, ZlibEncoder::new(Vec::new(), Compression::default()))
            }
            Codec::Gzip => Member::Gzip(GzEncoder::new(Vec::new(), Compression::default())),
        }
    }
}

impl std::fmt::Display for Codec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.flume_name())
    }
}

/// One compressed member in progress. Its output buffer is drained into the caller's after
/// every write, so it holds only the compressor's own window, not the file.
pub(super) enum Member {
    Zlib(Codec, ZlibEncoder<Vec<u8>>),
    Gzip(GzEncoder<Vec<u8>>),
}

impl Member {
    fn codec(&self) -> Codec {
        match self {
            Member::Zlib(codec, _) => *codec,
            Member::Gzip(_) => Codec::Gzip,
        }
    }

    fn err(&self) -> impl Fn(std::io::Error) -> FormatError {
        let codec = self.codec().flume_name();
        move |source| FormatError::Compression { codec, source }
    }

    /// Compresses `data`, moving whatever compressed bytes are ready into `out`.
    pub(super) fn write(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<(), FormatError> {
        let err = self.err();
        let buf = match self {
            Member::Zlib(_, enc) => {
                enc.write_all(data).map_err(err)?;
                enc.get_mut()
            }
            Member::Gzip(enc) => {
                enc.write_all(data).map_err(err)?;
                enc.get_mut()
            }
        };
        out.append(buf);
        Ok(())
    }

    /// Ends the member (final deflate block and trailer) into `out`.
    pub(super) fn finish(self, out: &mut Vec<u8>) -> Result<(), FormatError> {
        let err = self.err();
        let mut rest = match self {
            Member::Zlib(_, enc) => enc.finish().map_err(err)?,
            Member::Gzip(enc) => enc.finish().map_err(err)?,
        };
        out.append(&mut rest);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn names_match_like_flume() {
        for name in [
            "gzip",
            "GZIP",
            "GzipCodec",
            "org.apache.hadoop.io.compress.GzipCodec",
        ] {
            assert_eq!(Codec::from_flume_name(name).ok(), Some(Some(Codec::Gzip)));
        }
        assert_eq!(
            Codec::from_flume_name("default").ok(),
            Some(Some(Codec::Default))
        );
        assert_eq!(
            Codec::from_flume_name("Deflate").ok(),
            Some(Some(Codec::Deflate))
        );
        assert_eq!(Codec::from_flume_name("None").ok(), Some(None));
        // Flume compares full class names case-sensitively.
        assert!(Codec::from_flume_name("ORG.APACHE.HADOOP.IO.COMPRESS.GZIPCODEC").is_err());
    }

    #[test]
    fn refused_codecs_say_why_and_list_the_supported() {
        let msg = Codec::from_flume_name("lzo")
            .expect_err("must be refused")
            .to_string();
        assert!(msg.contains("hadoop-lzo"), "{msg}");
        assert!(msg.contains("gzip (GzipCodec)"), "{msg}");
        let msg = Codec::from_flume_name("brotli")
            .expect_err("must be refused")
            .to_string();
        assert!(
            msg.starts_with("hdfs.codeC `brotli` is not supported:"),
            "{msg}"
        );
    }

    #[test]
    fn units_and_members_decompress() {
        let mut out = Vec::new();
        Codec::Default
            .compress_unit(b"abc", &mut out)
            .expect("compress to memory");
        assert_eq!(out.first(), Some(&0x78), "a zlib header");
        let mut back = Vec::new();
        flate2::read::ZlibDecoder::new(&out[..])
            .read_to_end(&mut back)
            .expect("decode our own output");
        assert_eq!(back, b"abc");

        let mut file = Vec::new();
        for part in [&b"first\n"[..], b"second\n"] {
            let mut m = Codec::Gzip.member();
            m.write(part, &mut file).expect("compress to memory");
            m.finish(&mut file).expect("finish to memory");
        }
        let mut back = String::new();
        flate2::read::MultiGzDecoder::new(&file[..])
            .read_to_string(&mut back)
            .expect("decode our own output");
        assert_eq!(back, "first\nsecond\n");
    }
}
