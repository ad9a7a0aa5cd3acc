//! `compression-type = deflate` as Flume's Avro RPC does it (Netty's ZlibEncoder/ZlibDecoder):
//! one continuous zlib stream per connection per direction, every frame sync-flushed, so the
//! peer can decode each frame as soon as it arrives. The Avro framing bytes go inside the
//! stream. There is no negotiation: both ends must be configured alike.
//!
//! [`Inflater`] inflates at most one output chunk per call, so a caller that hands each chunk
//! to its frame decoder (which enforces the frame limits) before asking for the next never
//! holds more than one chunk of inflated bytes ahead of the decoder.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

/// The default `compression-level` (Flume's and zlib's).
pub const DEFAULT_LEVEL: u32 = 6;

/// Why the zlib stream could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum ZlibError {
    /// The bytes were not a zlib stream (or a corrupt one).
    #[error("bad deflate stream (are both ends set to compression-type = deflate?): {0}")]
    Inflate(String),
    /// Bytes after the end of the zlib stream.
    #[error("data after the end of the deflate stream")]
    Trailing,
    /// Compressing failed (should not happen).
    #[error("compressing: {0}")]
    Deflate(String),
}

/// The sending half: compresses each frame and sync-flushes it.
pub struct Deflater {
    z: Compress,
}

impl Deflater {
    /// A zlib stream (with its 2-byte header) at `level` (0-9; higher values are capped at 9).
    pub fn new(level: u32) -> Deflater {
        Deflater {
            z: Compress::new(Compression::new(level.min(9)), true),
        }
    }

    /// The compressed bytes of `data`, ending in a sync flush (`00 00 FF FF`).
    pub fn compress(&mut self, data: &[u8]) -> Result<Vec<u8>, ZlibError> {
        let mut out = Vec::with_capacity(data.len() / 2 + 64);
        let mut pos = 0;
        loop {
            if out.capacity() - out.len() < 64 {
                out.reserve(out.capacity().max(256));
            }
            let before = self.z.total_in();
            self.z
                .compress_vec(&data[pos..], &mut out, FlushCompress::Sync)
                .map_err(|e| ZlibError::Deflate(e.to_string()))?;
            pos += usize::try_from(self.z.total_in() - before).unwrap_or(0);
            // The flush is complete once all input is taken and zlib left output room unused.
            if pos >= data.len() && out.len() < out.capacity() {
                return Ok(out);
            }
        }
    }
}

/// The receiving half: buffers compressed bytes and inflates them a chunk at a time.
pub struct Inflater {
    z: Decompress,
    input: Vec<u8>,
    pos: usize,
    ended: bool,
    /// The last call filled its output: zlib may hold more inflated bytes.
    full: bool,
}

impl Default for Inflater {
    fn default() -> Self {
        Inflater::new()
    }
}

impl Inflater {
    /// Expects a zlib stream (with its header).
    pub fn new() -> Inflater {
        Inflater {
            z: Decompress::new(true),
            input: Vec::new(),
            pos: 0,
            ended: false,
            full: false,
        }
    }

    /// Adds compressed bytes as read from the peer.
    pub fn push(&mut self, data: &[u8]) {
        if self.pos > 0 {
            self.input.drain(..self.pos);
            self.pos = 0;
        }
        self.input.extend_from_slice(data);
    }

    /// Inflates into `out`, returning how many bytes were written; 0 means every byte pushed
    /// so far has been inflated (push more). Writes at most `out.len()` bytes.
    pub fn inflate(&mut self, out: &mut [u8]) -> Result<usize, ZlibError> {
        loop {
            let has_input = self.pos < self.input.len();
            if out.is_empty() || (!has_input && !self.full) {
                return Ok(0);
            }
            if self.ended {
                return if has_input {
                    Err(ZlibError::Trailing)
                } else {
                    Ok(0)
                };
            }
            let (in0, out0) = (self.z.total_in(), self.z.total_out());
            let status = self
                .z
                .decompress(&self.input[self.pos..], out, FlushDecompress::None)
                .map_err(|e| ZlibError::Inflate(e.to_string()))?;
            let consumed = usize::try_from(self.z.total_in() - in0).unwrap_or(0);
            let produced = usize::try_from(self.z.total_out() - out0).unwrap_or(0);
            self.pos += consumed;
            if status == Status::StreamEnd {
                self.ended = true;
            }
            self.full = produced == out.len();
            if produced > 0 {
                return Ok(produced);
            }
            if consumed == 0 {
                // zlib needs more input than it has to make progress.
                return Ok(0);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inflate_all(inf: &mut Inflater, chunk: usize) -> Vec<u8> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; chunk];
        loop {
            let n = inf.inflate(&mut buf).expect("inflate");
            if n == 0 {
                return out;
            }
            assert!(n <= chunk);
            out.extend_from_slice(&buf[..n]);
        }
    }

    #[test]
    fn frames_are_sync_flushed_in_one_stream() {
        let mut d = Deflater::new(DEFAULT_LEVEL);
        let a = d.compress(b"hello hello hello").expect("a");
        assert_eq!(&a[..2], &[0x78, 0x9C]);
        assert_eq!(&a[a.len() - 4..], &[0, 0, 0xFF, 0xFF]);
        let b = d.compress(b"second frame").expect("b");
        assert_ne!(&b[..2], &[0x78, 0x9C], "one stream: no second header");
        assert_eq!(&b[b.len() - 4..], &[0, 0, 0xFF, 0xFF]);
        let mut inf = Inflater::new();
        inf.push(&a);
        assert_eq!(inflate_all(&mut inf, 7), b"hello hello hello");
        inf.push(&b);
        assert_eq!(inflate_all(&mut inf, 7), b"second frame");
    }

    #[test]
    fn byte_by_byte_and_large_data() {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        for level in [0, 1, 6, 9] {
            let mut d = Deflater::new(level);
            let c = d.compress(&data).expect("compress");
            let mut inf = Inflater::new();
            let mut out = Vec::new();
            for b in c.chunks(1000) {
                inf.push(b);
                out.extend(inflate_all(&mut inf, 4096));
            }
            assert_eq!(out, data, "level {level}");
        }
        let mut d = Deflater::new(6);
        let c = d.compress(b"abc").expect("compress");
        let mut inf = Inflater::new();
        let mut out = Vec::new();
        for b in &c {
            inf.push(&[*b]);
            out.extend(inflate_all(&mut inf, 2));
        }
        assert_eq!(out, b"abc");
    }

    #[test]
    fn not_zlib_is_an_error() {
        let mut inf = Inflater::new();
        inf.push(&[0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 4]);
        let mut buf = [0u8; 64];
        assert!(matches!(inf.inflate(&mut buf), Err(ZlibError::Inflate(_))));
    }

    #[test]
    fn output_stays_bounded() {
        let data = vec![0u8; 10 << 20];
        let c = Deflater::new(9).compress(&data).expect("compress");
        assert!(c.len() < 64 * 1024);
        let mut inf = Inflater::new();
        inf.push(&c);
        let mut buf = vec![0u8; 64 * 1024];
        let mut total = 0;
        loop {
            let n = inf.inflate(&mut buf).expect("inflate");
            if n == 0 {
                break;
            }
            assert!(n <= buf.len());
            total += n;
        }
        assert_eq!(total, data.len());
    }
}
