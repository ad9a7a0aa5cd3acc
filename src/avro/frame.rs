//! Avro's Netty framing (`NettyTransportCodec` in Avro Java's ipc-netty), used by Flume's avro
//! source and sink:
//!
//! ```text
//! u32 BE serial | u32 BE nbuffers | nbuffers x { u32 BE len | len bytes }
//! ```
//!
//! The Avro message is the concatenation of the buffers; where the sender cut it into buffers
//! carries no meaning. The encoder writes the buffers it is given; the decoder is incremental:
//! it accepts bytes in chunks of any size (a frame split anywhere, several frames in one chunk)
//! and yields each frame once complete, with its buffers already concatenated.
//!
//! Invariant: every declared count and length is checked against [`FrameLimits`] as soon as
//! its 4 bytes arrive, before the body is waited for, and the decoder only ever holds bytes it
//! was actually given: its memory is bounded by `max_frame_bytes` plus 8 header bytes, whatever
//! the peer declares. After an error the decoder is poisoned (the stream has lost sync) and
//! every later call returns the same error; the connection must be closed.

use bytes::{Bytes, BytesMut};

/// Bounds on what a peer may declare in one frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameLimits {
    /// Most buffers in one frame. Default 10,000 (Avro Java's historical sanity limit; Java
    /// writers cut messages into 8 KiB buffers, so 64 MiB is 8,192 of them).
    pub max_buffers: u32,
    /// Most bytes in one buffer. Default 64 MiB.
    pub max_buffer_bytes: u32,
    /// Most bytes in one frame's buffers together (the Avro message): flumen's
    /// `max-frame-bytes`. Default 64 MiB.
    pub max_frame_bytes: u64,
}

impl Default for FrameLimits {
    fn default() -> Self {
        FrameLimits {
            max_buffers: 10_000,
            max_buffer_bytes: 64 << 20,
            max_frame_bytes: 64 << 20,
        }
    }
}

/// Why a byte stream is not a valid sequence of frames. Fatal for the connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// More buffers than `max_buffers`: a corrupt stream or a peer not speaking Avro's Netty
    /// framing (e.g. TLS or deflate on one side only).
    #[error("frame {serial} declares {declared} buffers, limit {limit}: is the peer speaking Avro Netty framing with the same ssl/compression settings?")]
    TooManyBuffers {
        serial: u32,
        declared: u32,
        limit: u32,
    },
    /// One buffer longer than `max_buffer_bytes`.
    #[error("frame {serial} declares a buffer of {declared} bytes, limit {limit}")]
    BufferTooLarge {
        serial: u32,
        declared: u32,
        limit: u32,
    },
    /// The buffers together exceed `max_frame_bytes`: raise `max-frame-bytes` or lower the
    /// sender's batch size.
    #[error("frame {serial} grows to {total} bytes, limit {limit} (max-frame-bytes): lower the sender's batch size or raise the limit")]
    FrameTooLarge { serial: u32, total: u64, limit: u64 },
}

/// One complete frame: the serial and the Avro message (its buffers concatenated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The request serial; a response echoes its request's.
    pub serial: u32,
    /// How many buffers the sender used (informational).
    pub buffers: u32,
    /// The message bytes.
    pub payload: Bytes,
}

/// Appends one frame holding `buffers` (in order) to `out`.
pub fn encode_frame(out: &mut Vec<u8>, serial: u32, buffers: &[&[u8]]) {
    out.extend_from_slice(&serial.to_be_bytes());
    // Our messages use two or three buffers; a count over u32 is impossible here.
    out.extend_from_slice(&(buffers.len() as u32).to_be_bytes());
    for b in buffers {
        out.extend_from_slice(&(b.len() as u32).to_be_bytes());
        out.extend_from_slice(b);
    }
}

#[derive(Debug, Clone, Copy)]
enum State {
    /// Waiting for the 8-byte frame header.
    Header,
    /// Waiting for the 4-byte length of the next buffer.
    BufferLen {
        serial: u32,
        buffers: u32,
        left: u32,
    },
    /// Copying `body_left` more bytes of the current buffer.
    BufferBody {
        serial: u32,
        buffers: u32,
        left: u32,
        body_left: u32,
    },
}

/// Incremental frame decoder; see the module docs.
#[derive(Debug)]
pub struct FrameDecoder {
    limits: FrameLimits,
    state: State,
    /// A header or length split across chunks.
    head: [u8; 8],
    head_len: usize,
    /// The message of the frame in progress.
    payload: BytesMut,
    failed: Option<FrameError>,
}

impl FrameDecoder {
    /// A decoder at the start of a stream.
    pub fn new(limits: FrameLimits) -> Self {
        FrameDecoder {
            limits,
            state: State::Header,
            head: [0; 8],
            head_len: 0,
            payload: BytesMut::new(),
            failed: None,
        }
    }

    /// True when no partial frame is held: the stream may end here cleanly. A connection
    /// closed while this is false was cut mid-frame.
    pub fn is_idle(&self) -> bool {
        matches!(self.state, State::Header) && self.head_len == 0
    }

    /// Decodes all of `chunk`, appending every frame it completes to `out`. Frames completed
    /// before an error are in `out` even when this returns `Err`.
    pub fn decode(&mut self, mut chunk: &[u8], out: &mut Vec<Frame>) -> Result<(), FrameError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let res = self.decode_inner(&mut chunk, out);
        if let Err(e) = &res {
            self.failed = Some(e.clone());
        }
        res
    }

    /// Fills `head` up to `n` bytes from `chunk`; true once it holds `n`.
    fn fill_head(&mut self, chunk: &mut &[u8], n: usize) -> bool {
        let want = n.saturating_sub(self.head_len).min(chunk.len());
        let (now, rest) = chunk.split_at(want);
        if let Some(dst) = self.head.get_mut(self.head_len..self.head_len + want) {
            dst.copy_from_slice(now);
        }
        self.head_len += want;
        *chunk = rest;
        self.head_len == n
    }

    fn head_u32(&self, at: usize) -> u32 {
        let mut b = [0u8; 4];
        if let Some(src) = self.head.get(at..at + 4) {
            b.copy_from_slice(src);
        }
        u32::from_be_bytes(b)
    }

    fn decode_inner(&mut self, chunk: &mut &[u8], out: &mut Vec<Frame>) -> Result<(), FrameError> {
        loop {
            match self.state {
                State::Header => {
                    if !self.fill_head(chunk, 8) {
                        return Ok(());
                    }
                    self.head_len = 0;
                    let serial = self.head_u32(0);
                    let buffers = self.head_u32(4);
                    if buffers > self.limits.max_buffers {
                        return Err(FrameError::TooManyBuffers {
                            serial,
                            declared: buffers,
                            limit: self.limits.max_buffers,
                        });
                    }
                    if buffers == 0 {
                        // Java never sends this (its writers always hold one buffer); it is
                        // an empty message, which the protocol layer then refuses.
                        out.push(Frame {
                            serial,
                            buffers,
                            payload: Bytes::new(),
                        });
                    } else {
                        self.state = State::BufferLen {
                            serial,
                            buffers,
                            left: buffers,
                        };
                    }
                }
                State::BufferLen {
                    serial,
                    buffers,
                    left,
                } => {
                    if !self.fill_head(chunk, 4) {
                        return Ok(());
                    }
                    self.head_len = 0;
                    let len = self.head_u32(0);
                    if len > self.limits.max_buffer_bytes {
                        return Err(FrameError::BufferTooLarge {
                            serial,
                            declared: len,
                            limit: self.limits.max_buffer_bytes,
                        });
                    }
                    // IMPORTANT: checked on the declaration, before any body byte is kept.
                    let total = self.payload.len() as u64 + u64::from(len);
                    if total > self.limits.max_frame_bytes {
                        return Err(FrameError::FrameTooLarge {
                            serial,
                            total,
                            limit: self.limits.max_frame_bytes,
                        });
                    }
                    self.state = State::BufferBody {
                        serial,
                        buffers,
                        left,
                        body_left: len,
                    };
                    self.after_body(out);
                }
                State::BufferBody {
                    serial,
                    buffers,
                    left,
                    body_left,
                } => {
                    if chunk.is_empty() {
                        return Ok(());
                    }
                    let n = (body_left as usize).min(chunk.len());
                    let (now, rest) = chunk.split_at(n);
                    self.payload.extend_from_slice(now);
                    *chunk = rest;
                    self.state = State::BufferBody {
                        serial,
                        buffers,
                        left,
                        // n <= body_left, which is a u32.
                        body_left: body_left - n as u32,
                    };
                    self.after_body(out);
                }
            }
        }
    }

    /// Moves on when the current buffer is complete: to the next buffer's length, or (after
    /// the last buffer) emits the frame and waits for the next header.
    fn after_body(&mut self, out: &mut Vec<Frame>) {
        if let State::BufferBody {
            serial,
            buffers,
            left,
            body_left: 0,
        } = self.state
        {
            let left = left.saturating_sub(1);
            if left == 0 {
                out.push(Frame {
                    serial,
                    buffers,
                    payload: self.payload.split().freeze(),
                });
                self.state = State::Header;
            } else {
                self.state = State::BufferLen {
                    serial,
                    buffers,
                    left,
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn decode_all(dec: &mut FrameDecoder, chunks: &[&[u8]]) -> Result<Vec<Frame>, FrameError> {
        let mut out = Vec::new();
        for c in chunks {
            dec.decode(c, &mut out)?;
        }
        Ok(out)
    }

    #[test]
    fn two_frames_in_one_chunk_and_byte_by_byte() {
        let mut stream = Vec::new();
        encode_frame(&mut stream, 1, &[b"ab", b"", b"c"]);
        encode_frame(&mut stream, 2, &[b"xyz"]);
        let want = vec![
            Frame {
                serial: 1,
                buffers: 3,
                payload: Bytes::from_static(b"abc"),
            },
            Frame {
                serial: 2,
                buffers: 1,
                payload: Bytes::from_static(b"xyz"),
            },
        ];
        let mut dec = FrameDecoder::new(FrameLimits::default());
        assert_eq!(decode_all(&mut dec, &[&stream]), Ok(want.clone()));
        assert!(dec.is_idle());
        let mut dec = FrameDecoder::new(FrameLimits::default());
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(decode_all(&mut dec, &bytes), Ok(want));
    }

    #[test]
    fn partial_frame_is_not_idle() {
        let mut stream = Vec::new();
        encode_frame(&mut stream, 7, &[b"hello"]);
        let mut dec = FrameDecoder::new(FrameLimits::default());
        let cut = stream.len() - 1;
        assert_eq!(decode_all(&mut dec, &[&stream[..cut]]), Ok(vec![]));
        assert!(!dec.is_idle());
    }

    #[test]
    fn huge_buffer_count_is_refused_from_the_header_alone() {
        let mut dec = FrameDecoder::new(FrameLimits::default());
        let mut hdr = 9u32.to_be_bytes().to_vec();
        hdr.extend_from_slice(&2_000_000u32.to_be_bytes());
        let err = decode_all(&mut dec, &[&hdr]).expect_err("refused");
        assert_eq!(
            err,
            FrameError::TooManyBuffers {
                serial: 9,
                declared: 2_000_000,
                limit: 10_000
            }
        );
        assert_eq!(
            err.to_string().split(':').next(),
            Some("frame 9 declares 2000000 buffers, limit 10000")
        );
        // Poisoned: even valid bytes now fail.
        let mut ok = Vec::new();
        encode_frame(&mut ok, 1, &[b"x"]);
        assert_eq!(decode_all(&mut dec, &[&ok]), Err(err));
    }

    #[test]
    fn huge_buffer_and_frame_lengths_are_refused_before_the_body() {
        let limits = FrameLimits {
            max_buffers: 4,
            max_buffer_bytes: 100,
            max_frame_bytes: 150,
        };
        // One buffer declaring u32::MAX bytes: refused on the 4 length bytes.
        let mut s = 1u32.to_be_bytes().to_vec();
        s.extend_from_slice(&1u32.to_be_bytes());
        s.extend_from_slice(&u32::MAX.to_be_bytes());
        let mut dec = FrameDecoder::new(limits);
        assert_eq!(
            decode_all(&mut dec, &[&s]),
            Err(FrameError::BufferTooLarge {
                serial: 1,
                declared: u32::MAX,
                limit: 100
            })
        );
        // Two buffers of 100 bytes: the second declaration crosses the 150 total.
        let mut s = Vec::new();
        encode_frame(&mut s, 2, &[&[0u8; 100], &[0u8; 100]]);
        let mut dec = FrameDecoder::new(limits);
        assert_eq!(
            decode_all(&mut dec, &[&s[..8 + 4 + 100 + 4]]),
            Err(FrameError::FrameTooLarge {
                serial: 2,
                total: 200,
                limit: 150
            })
        );
    }

    #[test]
    fn zero_buffer_frame_is_an_empty_message() {
        let mut s = Vec::new();
        encode_frame(&mut s, 3, &[]);
        let mut dec = FrameDecoder::new(FrameLimits::default());
        assert_eq!(
            decode_all(&mut dec, &[&s]),
            Ok(vec![Frame {
                serial: 3,
                buffers: 0,
                payload: Bytes::new()
            }])
        );
    }

    proptest! {
        /// Any chunking of a valid multi-frame stream decodes to the same frames.
        #[test]
        fn any_chunking_decodes_identically(
            frames in proptest::collection::vec(
                (any::<u32>(), proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 1..5)),
                1..6),
            cuts in proptest::collection::vec(0usize..400, 0..20),
        ) {
            let mut stream = Vec::new();
            let mut want = Vec::new();
            for (serial, bufs) in &frames {
                let refs: Vec<&[u8]> = bufs.iter().map(Vec::as_slice).collect();
                encode_frame(&mut stream, *serial, &refs);
                want.push(Frame {
                    serial: *serial,
                    buffers: bufs.len() as u32,
                    payload: Bytes::from(bufs.concat()),
                });
            }
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (stream.len() + 1)).collect();
            cuts.sort_unstable();
            let mut chunks = Vec::new();
            let mut prev = 0;
            for c in cuts {
                chunks.push(&stream[prev..c]);
                prev = c;
            }
            chunks.push(&stream[prev..]);
            let mut dec = FrameDecoder::new(FrameLimits::default());
            prop_assert_eq!(decode_all(&mut dec, &chunks), Ok(want));
            prop_assert!(dec.is_idle());
        }
    }
}
