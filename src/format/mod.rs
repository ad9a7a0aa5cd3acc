//! The on-disk encoding of the file channel, sans I/O: segment headers, log records (put
//! batches and take commits) and checkpoints. docs/FORMAT.md draws every byte; this module is
//! its executable form.
//!
//! Invariants:
//! - No I/O here: every function maps bytes to values or values to bytes, so the decoders can be
//!   fuzzed and unit-tested without files.
//! - Decoders never panic and never allocate more than the input they were given: every length
//!   and count read from disk is checked against the bytes that remain before it is used.
//! - Every integer on disk is little-endian, whatever the host.
//! - Every record's CRC32 covers the id of the segment it lives in, so a record copied into (or
//!   left over in a reused) file under another id does not verify.

pub mod checkpoint;
pub mod journal;
pub mod record;
pub mod segment;

pub use checkpoint::{BatchEntry, Checkpoint, CheckpointSegment, Position};
pub use record::{PutBatchEncoder, PutBatchView, RecordKind, RecordRef, ScanOutcome};
pub use segment::{SEGMENT_HEADER_LEN, SEGMENT_MAGIC};

/// The format version this build writes and reads (segment and checkpoint headers).
pub const FORMAT_VERSION: u32 = 1;

/// Why bytes do not decode. Carries no file or offset: the caller, which knows both, wraps it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FormatError {
    /// Fewer bytes than the structure needs (a torn write when at the end of a file).
    #[error("truncated: {what} needs {needed} bytes but only {available} remain")]
    Truncated {
        what: &'static str,
        needed: u64,
        available: u64,
    },
    /// The file does not start with the expected magic: not a flumen file.
    #[error("bad magic: not a flumen {what}")]
    BadMagic { what: &'static str },
    /// Written by a newer (or unknown) format version.
    #[error("format version {found} is not supported by this build (it reads version {supported}); use a flumen release that supports it")]
    Version { found: u32, supported: u32 },
    /// Stored and computed CRC32 differ: the bytes changed after they were written.
    #[error("checksum mismatch in {what}: stored {stored:#010x}, computed {computed:#010x}")]
    Checksum {
        what: &'static str,
        stored: u32,
        computed: u32,
    },
    /// A declared length over the format's bound.
    #[error("{what} declares {len} bytes, over the limit of {limit}")]
    TooLong {
        what: &'static str,
        len: u64,
        limit: u64,
    },
    /// A record kind this version does not know.
    #[error("unknown record kind {0}")]
    UnknownKind(u8),
    /// Structurally invalid contents (lengths that do not add up, bad UTF-8, ...).
    #[error("malformed {what}: {detail}")]
    Malformed { what: &'static str, detail: String },
}

impl FormatError {
    /// `Ok` when the `stored` CRC32 of `what` equals the `computed` one, else `Checksum`.
    pub(crate) fn check_crc(what: &'static str, stored: u32, computed: u32) -> Result<(), Self> {
        if stored == computed {
            Ok(())
        } else {
            Err(FormatError::Checksum {
                what,
                stored,
                computed,
            })
        }
    }
}

/// Little-endian cursor over a byte slice; every read is bounds-checked.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    what: &'static str,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8], what: &'static str) -> Self {
        Reader { buf, pos: 0, what }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8], FormatError> {
        if n > self.remaining() {
            return Err(FormatError::Truncated {
                what: self.what,
                needed: n as u64,
                available: self.remaining() as u64,
            });
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], FormatError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.bytes(N)?);
        Ok(a)
    }

    pub(crate) fn u32(&mut self) -> Result<u32, FormatError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, FormatError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    pub(crate) fn u8(&mut self) -> Result<u8, FormatError> {
        Ok(self.array::<1>()?[0])
    }

    /// A count of items each at least `min_item` bytes long, checked against what remains so
    /// that a hostile count cannot drive a large allocation.
    pub(crate) fn count(&mut self, min_item: usize) -> Result<usize, FormatError> {
        let n = self.u32()? as usize;
        let fits = self.remaining() / min_item.max(1);
        if n > fits {
            return Err(FormatError::Malformed {
                what: self.what,
                detail: format!(
                    "declares {n} items but only {} bytes remain",
                    self.remaining()
                ),
            });
        }
        Ok(n)
    }
}
