//! Writes a small seed corpus of valid (and deliberately damaged) inputs for each fuzz target
//! into `corpus/<target>/` (or `<dir>/<target>/` given a directory argument).
//!
//! Run once before fuzzing: `cargo run --manifest-path fuzz/Cargo.toml --bin make_seeds`.

use std::fs;
use std::path::{Path, PathBuf};

use flumen::event::Headers;
use flumen::format::checkpoint::{self, BatchEntry, Checkpoint, CheckpointSegment, Position};
use flumen::format::record::{self, PutBatchEncoder};
use flumen::format::segment;

/// An event for a seed: its headers and body.
type SeedEvent<'a> = (&'a [(&'a str, &'a str)], &'a [u8]);

fn batch(segment_id: u64, first_seq: u64, events: &[SeedEvent]) -> Vec<u8> {
    let mut enc = PutBatchEncoder::new();
    for (hs, body) in events {
        let h: Headers = hs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        enc.push(&h, body).expect("small event");
    }
    enc.finish(segment_id, first_seq, 1_700_000_000_000)
        .to_vec()
}

fn take(segment_id: u64, ranges: &[(u64, u64)]) -> Vec<u8> {
    let mut out = Vec::new();
    record::encode_take_commit(segment_id, ranges, 4096, &mut out);
    out
}

/// A record_decoder input: segment id, then the segment body.
fn segment_input(segment_id: u64, parts: &[&[u8]]) -> Vec<u8> {
    let mut v = segment_id.to_le_bytes().to_vec();
    for p in parts {
        v.extend_from_slice(p);
    }
    v
}

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    let path = dir.join(name);
    fs::write(&path, bytes).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}

fn record_seeds(dir: &Path) {
    let id = 7;
    let one = batch(id, 0, &[(&[("host", "web1")], b"hello")]);
    let many = batch(
        id,
        1,
        &[
            (&[("host", "web1"), ("topic", "logs")], b"first event body"),
            (&[], b""),
            (&[("k", "v")], b"\x00\x01\x02\xff binary"),
        ],
    );
    let tc = take(id, &[(0, 1), (1, 4)]);
    let zeros = [0u8; 64];
    write(dir, "one_batch", &segment_input(id, &[&one]));
    write(dir, "take_commit", &segment_input(id, &[&tc]));
    write(
        dir,
        "log_then_zeros",
        &segment_input(id, &[&one, &many, &tc, &zeros]),
    );
    // A torn tail: the last record cut short.
    write(
        dir,
        "torn_tail",
        &segment_input(id, &[&one, &many[..many.len() / 2]]),
    );
    // Corruption in the middle: garbage, zeros, then a valid record to resync on.
    write(
        dir,
        "resync",
        &segment_input(id, &[&[0xAB; 37], &[0; 20], &many, &zeros]),
    );
    // A bit flip inside a record.
    let mut flipped = many.clone();
    flipped[20] ^= 0x08;
    write(dir, "bit_flip", &segment_input(id, &[&one, &flipped, &tc]));
    // A record copied from another segment: its CRC does not verify here.
    write(dir, "other_segment", &segment_input(id + 1, &[&one, &tc]));
    write(dir, "empty_segment", &segment_input(id, &[&zeros]));
}

fn sample_checkpoint() -> Checkpoint {
    Checkpoint {
        generation: 3,
        written_at_ms: 99,
        replay: Position {
            segment: 2,
            offset: 4096,
        },
        next_seq: 500,
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
        ..Checkpoint::default()
    }
}

fn checkpoint_seeds(dir: &Path) {
    write(dir, "sample", &checkpoint::encode(&sample_checkpoint()));
    write(dir, "empty", &checkpoint::encode(&Checkpoint::default()));
    let mut wide = sample_checkpoint();
    wide.segments.push(CheckpointSegment {
        id: 9,
        entries: Vec::new(),
    });
    wide.done.push((300, 301));
    write(dir, "wide", &checkpoint::encode(&wide));
    let bytes = checkpoint::encode(&sample_checkpoint());
    write(dir, "truncated", &bytes[..bytes.len() - 5]);
    write(dir, "segment_header", &segment::encode_header(42));
    let mut hdr = segment::encode_header(u64::MAX).to_vec();
    hdr.extend_from_slice(&[0u8; 32]);
    write(dir, "segment_header_and_body", &hdr);
}

fn main() {
    let arg = std::env::args_os().nth(1);
    if arg
        .as_ref()
        .is_some_and(|a| a.to_string_lossy().starts_with('-'))
    {
        // Most likely `cargo fuzz run make_seeds -- ...`: this is not a fuzz target.
        eprintln!("usage: make_seeds [DIR]   (writes DIR/<target>/, default fuzz/corpus)");
        std::process::exit(2);
    }
    let root = arg
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus"));
    for (target, seeds) in [
        ("record_decoder", record_seeds as fn(&Path)),
        ("checkpoint_decoder", checkpoint_seeds),
    ] {
        let dir = root.join(target);
        fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
        seeds(&dir);
        println!("wrote seeds to {}", dir.display());
    }
}
