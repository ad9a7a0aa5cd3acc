//! Hadoop compression codecs as `hdfs.codeC` names them, and the two ways the formats use
//! them: one complete compressed unit per buffer (SequenceFile values and blocks, where
//! Hadoop resets and finishes its codec stream for every buffer) and a streaming member that
//! a compressed text file is a concatenation of.
//!
//! What one unit or member is, per codec (what Hadoop's `createOutputStream` writes between
//! `resetState()` and `finish()`):
//!
//! ```text
//! default, deflate  a zlib stream (RFC 1950)
//! gzip              a gzip member (RFC 1952)
//! bzip2             a whole bzip2 stream: "BZ" (BZip2CompressionOutputStream) then "h9" and
//!                   900 kB blocks (CBZip2OutputStream, block size 9), end-of-stream marker
//! snappy            BlockCompressorStream blocks: u32 uncompressed length, then one or more
//!                   (u32 compressed length, raw Snappy block); a block takes at most
//!                   SNAPPY_MAX_INPUT bytes, except that one oversized write gets a block of
//!                   its own, split into SNAPPY_MAX_INPUT-byte Snappy blocks
//! ```
//! All lengths are big-endian. Hadoop's readers take a file of concatenated units whole:
//! gzip and zlib members, bzip2 streams (its CBZip2InputStream scans on to the next block
//! marker after an end-of-stream), and Snappy blocks one after another. One trap: a Snappy
//! block of uncompressed length 0 is the end of the file to BlockDecompressorStream, so one is
//! written only as the whole of an empty file, never after data.
//!
//! Only codecs whose output Hadoop's Java readers decode without Hadoop's native library are
//! offered (Hadoop 3.4 reads Snappy through snappy-java, which its client already depends
//! on): a codec that would need `libhadoop` on every reader is refused at configuration time
//! rather than producing files nobody can read. Compression here works on memory buffers, so
//! its errors can only be bugs or memory exhaustion; they are still returned, never
//! unwrapped.

use std::io::Write;

use bzip2::write::BzEncoder;
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
    /// `org.apache.hadoop.io.compress.BZip2Codec`: bzip2 streams with 900 kB blocks, `.bz2`.
    Bzip2,
    /// `org.apache.hadoop.io.compress.SnappyCodec`: Snappy blocks in Hadoop's
    /// BlockCompressorStream framing (not the Snappy framing format), `.snappy`.
    Snappy,
}

/// The list shown when a name is refused.
const SUPPORTED: &str = "default (DefaultCodec), deflate (DeflateCodec), gzip (GzipCodec), \
                         bzip2 (BZip2Codec), snappy (SnappyCodec)";

/// Codecs Hadoop (or hadoop-lzo) defines that flumen does not write, with the reason.
const REFUSED: &[(&str, &str, &str)] = &[
    (
        "Lz4Codec",
        "org.apache.hadoop.io.compress.Lz4Codec",
        " (lz4 is not implemented in flumen)",
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

const ALL: [Codec; 5] = [
    Codec::Default,
    Codec::Deflate,
    Codec::Gzip,
    Codec::Bzip2,
    Codec::Snappy,
];

/// Hadoop's `io.compression.codec.snappy.buffersize` default: the size of the Snappy
/// compressor's and decompressor's buffers.
const SNAPPY_BUFFER_SIZE: usize = 256 * 1024;

/// The most uncompressed bytes per Snappy block: SnappyCodec gives BlockCompressorStream the
/// buffer size less an overhead of `bufferSize / 6 + 32` (Snappy's worst-case expansion), so a
/// block's compressed form always fits the reader's `SNAPPY_BUFFER_SIZE` buffer.
const SNAPPY_MAX_INPUT: usize = SNAPPY_BUFFER_SIZE - (SNAPPY_BUFFER_SIZE / 6 + 32);

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
            Codec::Bzip2 => "org.apache.hadoop.io.compress.BZip2Codec",
            Codec::Snappy => "org.apache.hadoop.io.compress.SnappyCodec",
        }
    }

    fn simple_name(self) -> &'static str {
        match self {
            Codec::Default => "DefaultCodec",
            Codec::Deflate => "DeflateCodec",
            Codec::Gzip => "GzipCodec",
            Codec::Bzip2 => "BZip2Codec",
            Codec::Snappy => "SnappyCodec",
        }
    }

    /// The short name Flume's documentation uses.
    pub fn flume_name(self) -> &'static str {
        match self {
            Codec::Default => "default",
            Codec::Deflate => "deflate",
            Codec::Gzip => "gzip",
            Codec::Bzip2 => "bzip2",
            Codec::Snappy => "snappy",
        }
    }

    /// `CompressionCodec.getDefaultExtension()`: Flume appends it to file names, and Hadoop's
    /// `CompressionCodecFactory` picks the codec of a stream file by it.
    pub fn default_extension(self) -> &'static str {
        match self {
            Codec::Default | Codec::Deflate => ".deflate",
            Codec::Gzip => ".gz",
            Codec::Bzip2 => ".bz2",
            Codec::Snappy => ".snappy",
        }
    }

    /// Appends `data` compressed as one complete unit (a whole zlib or bzip2 stream, a gzip
    /// member, Snappy blocks), what Hadoop's codec stream produces between `resetState()` and
    /// `finish()` when the buffer is written to it in one call.
    pub(super) fn compress_unit(self, data: &[u8], out: &mut Vec<u8>) -> Result<(), FormatError> {
        let mut unit = self.member();
        unit.write(data, out)?;
        unit.finish(out)
    }

    /// A streaming compressor for one member of a compressed text file.
    pub(super) fn member(self) -> Member {
        match self {
            Codec::Default | Codec::Deflate => {
                Member::Zlib(self, ZlibEncoder::new(Vec::new(), Compression::default()))
            }
            Codec::Gzip => Member::Gzip(GzEncoder::new(Vec::new(), Compression::default())),
            Codec::Bzip2 => Member::Bzip2(BzEncoder::new(Vec::new(), bzip2::Compression::best())),
            Codec::Snappy => Member::Snappy(Box::new(SnappyBlocks::new())),
        }
    }
}

impl std::fmt::Display for Codec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.flume_name())
    }
}

/// One compressed member in progress. Its output buffer is drained into the caller's after
/// every write, so it holds only the compressor's own state (a deflate window, a bzip2 block
/// of up to 900 kB, a Snappy block of up to `SNAPPY_MAX_INPUT` bytes), not the file.
pub(super) enum Member {
    Zlib(Codec, ZlibEncoder<Vec<u8>>),
    Gzip(GzEncoder<Vec<u8>>),
    Bzip2(BzEncoder<Vec<u8>>),
    /// Boxed: Snappy's encoder carries a 2 kB hash table inline.
    Snappy(Box<SnappyBlocks>),
}

impl Member {
    fn codec(&self) -> Codec {
        match self {
            Member::Zlib(codec, _) => *codec,
            Member::Gzip(_) => Codec::Gzip,
            Member::Bzip2(_) => Codec::Bzip2,
            Member::Snappy(_) => Codec::Snappy,
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
            Member::Bzip2(enc) => {
                enc.write_all(data).map_err(err)?;
                enc.get_mut()
            }
            Member::Snappy(blocks) => return blocks.write(data, out).map_err(err),
        };
        out.append(buf);
        Ok(())
    }

    /// Ends the member (final deflate block and trailer, bzip2 end-of-stream marker, pending
    /// Snappy block) into `out`.
    pub(super) fn finish(self, out: &mut Vec<u8>) -> Result<(), FormatError> {
        let err = self.err();
        let mut rest = match self {
            Member::Zlib(_, enc) => enc.finish().map_err(err)?,
            Member::Gzip(enc) => enc.finish().map_err(err)?,
            Member::Bzip2(enc) => enc.finish().map_err(err)?,
            Member::Snappy(mut blocks) => return blocks.finish(out).map_err(err),
        };
        out.append(&mut rest);
        Ok(())
    }
}

/// Hadoop's `BlockCompressorStream` over its Snappy compressor: writes gather into a pending
/// block until the next one would take it past `SNAPPY_MAX_INPUT` bytes; a write larger than
/// that on its own becomes one block of several Snappy blocks. So at most one block of
/// uncompressed bytes is held.
pub(super) struct SnappyBlocks {
    encoder: snap::raw::Encoder,
    pending: Vec<u8>,
    /// Whether a block was emitted since this member began.
    emitted: bool,
    /// Scratch for one compressed Snappy block, reused.
    scratch: Vec<u8>,
}

impl SnappyBlocks {
    fn new() -> Self {
        SnappyBlocks {
            encoder: snap::raw::Encoder::new(),
            pending: Vec::new(),
            emitted: false,
            scratch: Vec::new(),
        }
    }

    fn write(&mut self, data: &[u8], out: &mut Vec<u8>) -> std::io::Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        if !self.pending.is_empty() && self.pending.len() + data.len() > SNAPPY_MAX_INPUT {
            self.emit_pending(out)?;
        }
        if data.len() <= SNAPPY_MAX_INPUT {
            self.pending.extend_from_slice(data);
            return Ok(());
        }
        // Hadoop's lengths are Java ints; a write past that (never a real event) is cut into
        // blocks that each fit.
        for block in data.chunks(SNAPPY_MAX_INPUT * 8192) {
            push_len(out, block.len())?;
            for piece in block.chunks(SNAPPY_MAX_INPUT) {
                self.compress_piece(piece, out)?;
            }
        }
        self.emitted = true;
        Ok(())
    }

    /// Emits the pending bytes as one block. An empty block (length 0, no Snappy block)
    /// ends the file for Hadoop's reader, so it is written only when the member has nothing
    /// else: the whole of an empty file, as Hadoop's `finish()` leaves it. Hadoop's `finish()`
    /// also writes one after a member that ended in an oversized write, which would cut a
    /// concatenated file short; Flume never meets that (every event ends with a newline
    /// write), and flumen leaves that block out.
    fn finish(&mut self, out: &mut Vec<u8>) -> std::io::Result<()> {
        if !self.pending.is_empty() || !self.emitted {
            self.emit_pending(out)?;
        }
        Ok(())
    }

    fn emit_pending(&mut self, out: &mut Vec<u8>) -> std::io::Result<()> {
        let pending = std::mem::take(&mut self.pending);
        push_len(out, pending.len())?;
        if !pending.is_empty() {
            self.compress_piece(&pending, out)?;
        }
        self.pending = pending;
        self.pending.clear();
        self.emitted = true;
        Ok(())
    }

    /// Appends one (compressed length, raw Snappy block) pair for at most
    /// `SNAPPY_MAX_INPUT` bytes.
    fn compress_piece(&mut self, piece: &[u8], out: &mut Vec<u8>) -> std::io::Result<()> {
        let need = snap::raw::max_compress_len(piece.len());
        if self.scratch.len() < need {
            self.scratch.resize(need, 0);
        }
        let n = self
            .encoder
            .compress(piece, &mut self.scratch)
            .map_err(std::io::Error::other)?;
        let compressed = self.scratch.get(..n).unwrap_or_default();
        push_len(out, compressed.len())?;
        out.extend_from_slice(compressed);
        Ok(())
    }
}

/// Appends a length as the big-endian Java int BlockCompressorStream writes.
fn push_len(out: &mut Vec<u8>, len: usize) -> std::io::Result<()> {
    let len = i32::try_from(len).map_err(std::io::Error::other)?;
    out.extend_from_slice(&len.to_be_bytes());
    Ok(())
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
        for name in [
            "bzip2",
            "BZIP2",
            "bzip2codec",
            "BZip2Codec",
            "org.apache.hadoop.io.compress.BZip2Codec",
        ] {
            assert_eq!(Codec::from_flume_name(name).ok(), Some(Some(Codec::Bzip2)));
        }
        for name in [
            "snappy",
            "Snappy",
            "SnappyCodec",
            "org.apache.hadoop.io.compress.SnappyCodec",
        ] {
            assert_eq!(Codec::from_flume_name(name).ok(), Some(Some(Codec::Snappy)));
        }
        assert_eq!(Codec::Bzip2.default_extension(), ".bz2");
        assert_eq!(Codec::Snappy.default_extension(), ".snappy");
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
        assert!(msg.contains("snappy (SnappyCodec)"), "{msg}");
        let msg = Codec::from_flume_name("Lz4Codec")
            .expect_err("must be refused")
            .to_string();
        assert!(msg.contains("lz4 is not implemented"), "{msg}");
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

    #[test]
    fn bzip2_units_are_whole_streams_with_900k_blocks() {
        let mut out = Vec::new();
        Codec::Bzip2
            .compress_unit(b"abc", &mut out)
            .expect("compress to memory");
        assert!(out.starts_with(b"BZh9"), "{out:?}");
        let mut back = Vec::new();
        bzip2::read::BzDecoder::new(&out[..])
            .read_to_end(&mut back)
            .expect("decode our own output");
        assert_eq!(back, b"abc");

        // Nothing written still makes a whole (empty) stream, as Hadoop's finish() does.
        out.clear();
        Codec::Bzip2
            .compress_unit(b"", &mut out)
            .expect("compress to memory");
        assert_eq!(
            out, b"BZh9\x17\x72\x45\x38\x50\x90\x00\x00\x00\x00",
            "header, end-of-stream marker, combined CRC 0"
        );

        let mut file = Vec::new();
        for part in [&b"first\n"[..], b"second\n"] {
            let mut m = Codec::Bzip2.member();
            m.write(part, &mut file).expect("compress to memory");
            m.finish(&mut file).expect("finish to memory");
        }
        let mut back = String::new();
        bzip2::read::MultiBzDecoder::new(&file[..])
            .read_to_string(&mut back)
            .expect("decode our own output");
        assert_eq!(back, "first\nsecond\n");
    }

    /// Reads Hadoop's BlockDecompressorStream framing as Hadoop does (test oracle): returns
    /// the bytes and the uncompressed length of every block; a block of length 0 ends it.
    fn unsnappy(mut buf: &[u8]) -> (Vec<u8>, Vec<usize>) {
        fn int(buf: &mut &[u8]) -> usize {
            let (head, rest) = buf.split_at(4);
            *buf = rest;
            i32::from_be_bytes(head.try_into().expect("4 bytes")) as usize
        }
        let mut out = Vec::new();
        let mut blocks = Vec::new();
        while !buf.is_empty() {
            let total = int(&mut buf);
            blocks.push(total);
            if total == 0 {
                break;
            }
            let mut got = 0;
            while got < total {
                let len = int(&mut buf);
                assert!(len <= SNAPPY_BUFFER_SIZE, "fits the reader's buffer");
                let piece = snap::raw::Decoder::new()
                    .decompress_vec(&buf[..len])
                    .expect("decode our own output");
                assert!(piece.len() <= SNAPPY_BUFFER_SIZE);
                got += piece.len();
                out.extend_from_slice(&piece);
                buf = &buf[len..];
            }
            assert_eq!(got, total, "a block holds exactly its length");
        }
        assert!(buf.is_empty(), "nothing after an empty block");
        (out, blocks)
    }

    #[test]
    fn snappy_frames_blocks_as_block_compressor_stream() {
        assert_eq!(SNAPPY_MAX_INPUT, 218_422);
        assert!(snap::raw::max_compress_len(SNAPPY_MAX_INPUT) <= SNAPPY_BUFFER_SIZE);

        let mut out = Vec::new();
        Codec::Snappy
            .compress_unit(b"hello hello hello", &mut out)
            .expect("compress to memory");
        assert_eq!(&out[..4], &[0, 0, 0, 17], "uncompressed length first");
        let clen = i32::from_be_bytes(out[4..8].try_into().expect("4 bytes")) as usize;
        assert_eq!(out.len(), 8 + clen, "one block, one Snappy block");
        assert_eq!(unsnappy(&out).0, b"hello hello hello");

        // An empty unit is the single empty block Hadoop's finish() writes.
        out.clear();
        Codec::Snappy
            .compress_unit(b"", &mut out)
            .expect("compress to memory");
        assert_eq!(out, [0, 0, 0, 0]);

        // A unit past the limit is one block of several Snappy blocks, with no empty block
        // after it.
        let big: Vec<u8> = (0..SNAPPY_MAX_INPUT * 2 + 5)
            .map(|i| (i * 7 % 251) as u8)
            .collect();
        out.clear();
        Codec::Snappy
            .compress_unit(&big, &mut out)
            .expect("compress to memory");
        let (back, blocks) = unsnappy(&out);
        assert_eq!(back, big);
        assert_eq!(blocks, [big.len()]);
    }

    #[test]
    fn snappy_members_gather_writes_and_cut_before_the_limit() {
        let line = vec![b'q'; 100_000];
        let mut m = Codec::Snappy.member();
        let mut file = Vec::new();
        let mut expected = Vec::new();
        for _ in 0..3 {
            m.write(&line, &mut file).expect("compress to memory");
            m.write(b"\n", &mut file).expect("compress to memory");
            expected.extend_from_slice(&line);
            expected.push(b'\n');
        }
        // Two lines and their newlines fit; the third line would pass the limit, so the block
        // is cut before it, and its newline joins it.
        assert!(!file.is_empty(), "the first block is out before finish");
        m.finish(&mut file).expect("finish to memory");
        let (back, blocks) = unsnappy(&file);
        assert_eq!(back, expected);
        assert_eq!(blocks, [200_002, 100_001]);

        // Members concatenate; an oversized write followed by nothing leaves no empty block.
        let mut m = Codec::Snappy.member();
        let big = vec![b'z'; SNAPPY_MAX_INPUT + 1];
        m.write(b"x", &mut file).expect("compress to memory");
        m.write(&big, &mut file).expect("compress to memory");
        m.finish(&mut file).expect("finish to memory");
        expected.push(b'x');
        expected.extend_from_slice(&big);
        let (back, blocks) = unsnappy(&file);
        assert_eq!(back, expected);
        assert_eq!(blocks, [200_002, 100_001, 1, SNAPPY_MAX_INPUT + 1]);
    }
}
