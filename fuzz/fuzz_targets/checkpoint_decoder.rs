//! Fuzzes the checkpoint decoder (with an encode/decode round trip of whatever it accepts),
//! the segment header decoder, and a round trip of input-derived valid checkpoints.
//!
//! The input is decoded as it is, and again with its header repaired (magic, version, body
//! length and CRC set right) so that the body parser is fuzzed behind the checksum.

#![no_main]

use std::hint::black_box;

use flumen::format::checkpoint::{self, BatchEntry, Checkpoint, CheckpointSegment, Position};
use flumen::format::segment;
use flumen_fuzz::Cursor;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    decode_checkpoint(data);
    if let Some(fixed) = with_valid_header(data) {
        decode_checkpoint(&fixed);
    }
    decode_segment_header(data);
    round_trip(data);
});

fn decode_checkpoint(data: &[u8]) {
    match checkpoint::decode(data) {
        Ok(c) => {
            let enc = checkpoint::encode(&c);
            assert_eq!(
                checkpoint::decode(&enc).as_ref(),
                Ok(&c),
                "re-encoded checkpoint differs"
            );
            // The decoder consumed every body byte and ignores only the reserved header fields
            // (12..16, 28..32) and so the CRC (24..28): everything else must match.
            assert_eq!(enc.len(), data.len());
            assert_eq!(enc[..12], data[..12]);
            assert_eq!(enc[16..24], data[16..24]);
            assert_eq!(enc[32..], data[32..]);
        }
        Err(e) => {
            black_box(e.to_string());
        }
    }
}

/// `data` with the checkpoint header fields a decoder checks set to valid values: magic,
/// version, body length, CRC (of every byte but the CRC field, as checkpoint.rs documents).
/// The reserved fields are left as the input has them.
fn with_valid_header(data: &[u8]) -> Option<Vec<u8>> {
    if data.len() < 32 {
        return None;
    }
    let mut f = data.to_vec();
    f[0..8].copy_from_slice(b"FLUMNCKP");
    f[8..12].copy_from_slice(&flumen::format::FORMAT_VERSION.to_le_bytes());
    let body_len = (f.len() - 32) as u64;
    f[16..24].copy_from_slice(&body_len.to_le_bytes());
    let mut h = crc32fast::Hasher::new();
    h.update(&f[0..24]);
    h.update(&f[28..]);
    let crc = h.finalize();
    f[24..28].copy_from_slice(&crc.to_le_bytes());
    Some(f)
}

fn decode_segment_header(data: &[u8]) {
    match segment::decode_header(data) {
        Ok(id) => {
            assert_eq!(data[16..24], id.to_le_bytes());
            let h = segment::encode_header(id);
            assert_eq!(segment::decode_header(&h), Ok(id));
            assert_eq!(h[..12], data[..12]);
        }
        Err(e) => {
            black_box(e.to_string());
        }
    }
}

/// A checkpoint built from the input that is valid by construction must survive
/// encode -> decode unchanged.
fn round_trip(data: &[u8]) {
    let mut c = Cursor::new(data);
    let mut cp = Checkpoint {
        generation: c.u64(),
        written_at_ms: c.u64(),
        replay: Position {
            segment: c.u64(),
            offset: c.u64(),
        },
        queue_bytes: c.u64(),
        ..Checkpoint::default()
    };
    let mut id = u64::from(c.u32());
    let mut seq = u64::from(c.u32());
    for _ in 0..c.u8() % 5 {
        let mut entries = Vec::new();
        for _ in 0..c.u8() % 5 {
            seq += u64::from(c.u8());
            let count = 1 + u32::from(c.u8());
            entries.push(BatchEntry {
                first_seq: seq,
                offset: c.u32(),
                count,
            });
            seq += u64::from(count);
        }
        cp.segments.push(CheckpointSegment { id, entries });
        id += 1 + u64::from(c.u8());
    }
    cp.next_seq = seq + u64::from(c.u8());
    let mut s = u64::from(c.u32());
    for _ in 0..c.u8() % 5 {
        s += u64::from(c.u8());
        let e = s + 1 + u64::from(c.u8());
        cp.done.push((s, e));
        s = e;
    }
    let enc = checkpoint::encode(&cp);
    assert_eq!(
        checkpoint::decode(&enc),
        Ok(cp),
        "valid checkpoint does not round-trip"
    );
    // Every strict prefix is refused.
    let cut = (data.len() % enc.len().max(1)).min(enc.len().saturating_sub(1));
    assert!(
        checkpoint::decode(&enc[..cut]).is_err(),
        "prefix of {cut} bytes accepted"
    );
}
