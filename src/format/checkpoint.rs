//! Checkpoint files: a snapshot of the queue's state so that recovery replays only the log
//! written after it.
//!
//! ```text
//! header (32 bytes)
//! 0   8  magic "FLUMNCKP"
//! 8   4  format version (u32 LE)
//! 12  4  reserved (0)
//! 16  8  body length (u64 LE)
//! 24  4  CRC32 of every byte of the file except these four
//! 28  4  reserved (0)
//! body
//!     generation u64 | written_at_ms u64 | replay_segment u64 | replay_offset u64 | next_seq u64
//!     queue_bytes u64
//!     nsegments u32 | segment{nsegments}
//!     ndone u32 | (start u64 | end u64){ndone}
//! segment := id u64 | nentries u32 | (first_seq u64 | offset u32 | count u32){nentries}
//! ```
//! The file is written whole to a temporary name, synced, and renamed into place, so a reader
//! sees either the old checkpoint or the new one; the CRC catches anything else.

use super::{FormatError, Reader, FORMAT_VERSION};

/// The first 8 bytes of every checkpoint file.
pub const CHECKPOINT_MAGIC: [u8; 8] = *b"FLUMNCKP";
const HEADER_LEN: usize = 32;

/// A place in the log: a segment and a byte offset in it. Orders as the log does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Position {
    pub segment: u64,
    pub offset: u64,
}

/// Where one committed put batch lives: its events are seqs `first_seq..first_seq + count`,
/// in the record at `offset` of its segment. The queue holds one of these per batch, not per
/// event: 16 bytes for a whole batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchEntry {
    pub first_seq: u64,
    pub offset: u32,
    pub count: u32,
}

impl BatchEntry {
    /// One past the last seq.
    pub fn end_seq(&self) -> u64 {
        self.first_seq + u64::from(self.count)
    }
}

/// The live put batches of one segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointSegment {
    pub id: u64,
    pub entries: Vec<BatchEntry>,
}

/// A decoded checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Checkpoint {
    /// Increases by one per checkpoint written; also in the file name.
    pub generation: u64,
    pub written_at_ms: u64,
    /// Replay starts here: every record before it is reflected in this checkpoint.
    pub replay: Position,
    /// The seq the next committed put event gets.
    pub next_seq: u64,
    /// Body bytes of the events not yet taken and committed (for `byteCapacity`).
    pub queue_bytes: u64,
    /// Segments holding events not yet taken and committed, oldest first.
    pub segments: Vec<CheckpointSegment>,
    /// Seq ranges already taken and committed inside those segments.
    pub done: Vec<(u64, u64)>,
}

/// Encodes a checkpoint.
pub fn encode(c: &Checkpoint) -> Vec<u8> {
    let entries: usize = c.segments.iter().map(|s| s.entries.len()).sum();
    let body_len = 48 + 4 + 12 * c.segments.len() + 16 * entries + 4 + 16 * c.done.len();
    let mut out = Vec::with_capacity(HEADER_LEN + body_len);
    out.extend_from_slice(&CHECKPOINT_MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&(body_len as u64).to_le_bytes());
    out.extend_from_slice(&[0u8; 8]);
    for v in [
        c.generation,
        c.written_at_ms,
        c.replay.segment,
        c.replay.offset,
        c.next_seq,
        c.queue_bytes,
    ] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.extend_from_slice(&(c.segments.len() as u32).to_le_bytes());
    for s in &c.segments {
        out.extend_from_slice(&s.id.to_le_bytes());
        out.extend_from_slice(&(s.entries.len() as u32).to_le_bytes());
        for e in &s.entries {
            out.extend_from_slice(&e.first_seq.to_le_bytes());
            out.extend_from_slice(&e.offset.to_le_bytes());
            out.extend_from_slice(&e.count.to_le_bytes());
        }
    }
    out.extend_from_slice(&(c.done.len() as u32).to_le_bytes());
    for &(s, e) in &c.done {
        out.extend_from_slice(&s.to_le_bytes());
        out.extend_from_slice(&e.to_le_bytes());
    }
    debug_assert_eq!(out.len(), HEADER_LEN + body_len);
    let crc = checkpoint_crc(&out);
    out[24..28].copy_from_slice(&crc.to_le_bytes());
    out
}

/// Decodes and verifies a checkpoint file's bytes. Allocates at most in proportion to `buf`.
pub fn decode(buf: &[u8]) -> Result<Checkpoint, FormatError> {
    let mut r = Reader::new(buf, "checkpoint header");
    let magic: [u8; 8] = r.array()?;
    if magic != CHECKPOINT_MAGIC {
        return Err(FormatError::BadMagic { what: "checkpoint" });
    }
    let version = r.u32()?;
    let _reserved = r.u32()?;
    let body_len = r.u64()?;
    let stored = r.u32()?;
    let _reserved2 = r.u32()?;
    if body_len != (buf.len() - HEADER_LEN) as u64 {
        return Err(FormatError::Truncated {
            what: "checkpoint body",
            needed: body_len,
            available: (buf.len() - HEADER_LEN) as u64,
        });
    }
    let computed = checkpoint_crc(buf);
    FormatError::check_crc("checkpoint", stored, computed)?;
    if version != FORMAT_VERSION {
        return Err(FormatError::Version {
            found: version,
            supported: FORMAT_VERSION,
        });
    }
    let mut r = Reader::new(&buf[HEADER_LEN..], "checkpoint body");
    let generation = r.u64()?;
    let written_at_ms = r.u64()?;
    let replay = Position {
        segment: r.u64()?,
        offset: r.u64()?,
    };
    let next_seq = r.u64()?;
    let queue_bytes = r.u64()?;
    let nseg = r.count(12)?;
    let mut segments = Vec::with_capacity(nseg);
    let mut last_id = None;
    let mut last_end = 0u64;
    for _ in 0..nseg {
        let id = r.u64()?;
        if last_id.is_some_and(|l| id <= l) {
            return Err(malformed(format!("segment ids out of order at {id}")));
        }
        last_id = Some(id);
        let n = r.count(16)?;
        let mut entries = Vec::with_capacity(n);
        for _ in 0..n {
            let e = BatchEntry {
                first_seq: r.u64()?,
                offset: r.u32()?,
                count: r.u32()?,
            };
            if e.count == 0
                || e.first_seq < last_end
                || e.first_seq.checked_add(e.count.into()).is_none()
            {
                return Err(malformed(format!(
                    "batch entry seq {} count {} out of order or empty",
                    e.first_seq, e.count
                )));
            }
            last_end = e.end_seq();
            entries.push(e);
        }
        segments.push(CheckpointSegment { id, entries });
    }
    if last_end > next_seq {
        return Err(malformed(format!(
            "entries reach seq {last_end} past next_seq {next_seq}"
        )));
    }
    let nd = r.count(16)?;
    let mut done = Vec::with_capacity(nd);
    let mut prev_end = 0u64;
    for _ in 0..nd {
        let s = r.u64()?;
        let e = r.u64()?;
        if s >= e || s < prev_end {
            return Err(malformed(format!(
                "done range {s}..{e} empty or out of order"
            )));
        }
        prev_end = e;
        done.push((s, e));
    }
    if r.remaining() != 0 {
        return Err(malformed(format!("{} trailing bytes", r.remaining())));
    }
    Ok(Checkpoint {
        generation,
        written_at_ms,
        replay,
        next_seq,
        queue_bytes,
        segments,
        done,
    })
}

/// CRC32 of the whole file except the CRC field itself.
fn checkpoint_crc(file: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&file[0..24]);
    h.update(&file[28..]);
    h.finalize()
}

fn malformed(detail: String) -> FormatError {
    FormatError::Malformed {
        what: "checkpoint",
        detail,
    }
}

/// File name of checkpoint `generation`: fixed width so names sort by generation.
pub fn file_name(generation: u64) -> String {
    format!("checkpoint-{generation:020}")
}

/// The generation in a checkpoint file name, if it is one.
pub fn parse_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("checkpoint-")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Checkpoint {
        Checkpoint {
            generation: 3,
            written_at_ms: 99,
            replay: Position {
                segment: 2,
                offset: 4096,
            },
            next_seq: 500,
            queue_bytes: 12345,
            segments: vec![
                CheckpointSegment {
                    id: 1,
                    entries: vec![BatchEntry {
                        first_seq: 100,
                        offset: 32,
                        count: 100,
                    }],
                },
                CheckpointSegment {
                    id: 2,
                    entries: vec![
                        BatchEntry {
                            first_seq: 200,
                            offset: 32,
                            count: 50,
                        },
                        BatchEntry {
                            first_seq: 250,
                            offset: 9000,
                            count: 250,
                        },
                    ],
                },
            ],
            done: vec![(100, 150), (200, 210)],
        }
    }

    #[test]
    fn round_trips() {
        let c = sample();
        assert_eq!(decode(&encode(&c)), Ok(c));
        let empty = Checkpoint::default();
        assert_eq!(decode(&encode(&empty)), Ok(empty));
    }

    #[test]
    fn every_bit_flip_and_truncation_is_detected() {
        let bytes = encode(&sample());
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x04;
            assert!(decode(&bad).is_err(), "flip at {i} went unnoticed");
        }
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn names_round_trip() {
        assert_eq!(parse_file_name(&file_name(12)), Some(12));
        assert_eq!(parse_file_name("checkpoint-12.tmp"), None);
    }
}
