//! Thrift's framed transport (`TFramedTransport` / `TFastFramedTransport`, what Flume's thrift
//! source, sink and `ThriftRpcClient` use):
//!
//! ```text
//! i32 BE length (1 ..= max) | length bytes (one protocol message)
//! ```
//!
//! The decoder works on the caller's receive buffer: it looks at the length as soon as its 4
//! bytes are there, before the caller reads (or keeps) any byte of the body, and splits a
//! complete frame off without copying. So the buffer never has to hold more than
//! `max_frame_bytes` plus the 4-byte length plus one read, whatever the peer declares.
//! After an error the stream has lost sync: the decoder is poisoned and the connection must
//! be closed.

use bytes::{Bytes, BytesMut};

/// Thrift Java's default largest frame (`TConfiguration.DEFAULT_MAX_FRAME_SIZE`, 16,384,000
/// bytes): a larger frame fails against Flume's own thrift source too.
pub const DEFAULT_MAX_FRAME_BYTES: u32 = 16_384_000;

/// Why a byte stream is not a valid sequence of frames. Fatal for the connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// A length over the limit: a client batch too large, or a peer not speaking framed Thrift
    /// (TLS or HTTP on one side only gives huge "lengths").
    #[error("frame declares {declared} bytes, limit {limit}: lower the sender's batch size, or is the peer speaking framed Thrift with the same ssl setting?")]
    TooLarge { declared: u32, limit: u32 },
    /// A zero or negative length.
    #[error("frame declares {declared} bytes: not framed Thrift")]
    BadLength { declared: i32 },
}

/// See the module docs.
#[derive(Debug, Clone)]
pub struct FrameDecoder {
    max_frame_bytes: u32,
    failed: Option<FrameError>,
}

impl FrameDecoder {
    /// A decoder accepting frames of up to `max_frame_bytes` (at least 1).
    pub fn new(max_frame_bytes: u32) -> Self {
        FrameDecoder {
            max_frame_bytes: max_frame_bytes.max(1),
            failed: None,
        }
    }

    /// The largest frame accepted.
    pub fn max_frame_bytes(&self) -> u32 {
        self.max_frame_bytes
    }

    /// Splits the next complete frame's message off the front of `buf`; `Ok(None)` when `buf`
    /// does not hold one yet (read more). The length is checked as soon as it is in `buf`.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, FrameError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let Some(len) = self.declared(buf)? else {
            return Ok(None);
        };
        let total = 4 + len as usize;
        if buf.len() < total {
            return Ok(None);
        }
        let mut frame = buf.split_to(total);
        let _ = frame.split_to(4);
        Ok(Some(frame.freeze()))
    }

    /// How many more bytes `buf` needs before the next frame is complete (the length's 4 bytes
    /// first): what a reader may reserve without trusting anything unchecked.
    pub fn wanted(&mut self, buf: &BytesMut) -> Result<usize, FrameError> {
        match self.declared(buf)? {
            None => Ok(4 - buf.len().min(4)),
            Some(len) => Ok((4 + len as usize).saturating_sub(buf.len())),
        }
    }

    /// The checked length of the frame at the front of `buf`, once its 4 bytes are there.
    fn declared(&mut self, buf: &BytesMut) -> Result<Option<u32>, FrameError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let Some(head) = buf.get(..4) else {
            return Ok(None);
        };
        let mut b = [0u8; 4];
        b.copy_from_slice(head);
        let declared = i32::from_be_bytes(b);
        let err = if declared <= 0 {
            Some(FrameError::BadLength { declared })
        } else if declared.unsigned_abs() > self.max_frame_bytes {
            Some(FrameError::TooLarge {
                declared: declared.unsigned_abs(),
                limit: self.max_frame_bytes,
            })
        } else {
            None
        };
        if let Some(e) = err {
            self.failed = Some(e.clone());
            return Err(e);
        }
        Ok(Some(declared.unsigned_abs()))
    }
}

/// True when `buf` holds no partial frame: the stream may end here cleanly. A connection
/// closed while this is false was cut mid-frame.
pub fn is_idle(buf: &BytesMut) -> bool {
    buf.is_empty()
}

/// Starts a frame in `out`: a length placeholder that [`finish_frame`] fills in. Returns where
/// the frame starts.
pub fn start_frame(out: &mut Vec<u8>) -> usize {
    let at = out.len();
    out.extend_from_slice(&[0; 4]);
    at
}

/// Fills in the length of the frame started at `at` (everything written after it).
pub fn finish_frame(
    out: &mut [u8],
    at: usize,
    what: &'static str,
) -> Result<(), super::ThriftError> {
    let len = out.len().saturating_sub(at + 4);
    let declared = i32::try_from(len)
        .ok()
        .filter(|&l| l > 0)
        .ok_or(super::ThriftError::TooLargeToFrame { what, len })?;
    if let Some(dst) = out.get_mut(at..at + 4) {
        dst.copy_from_slice(&declared.to_be_bytes());
    }
    Ok(())
}
