//! Writes a small seed corpus of valid (and deliberately damaged) inputs for each fuzz target
//! into `corpus/<target>/` (or `<dir>/<target>/` given a directory argument).
//!
//! Run once before fuzzing: `cargo run --manifest-path fuzz/Cargo.toml --bin make_seeds`.

use std::fs;
use std::path::{Path, PathBuf};

use flumen::avro::frame::encode_frame;
use flumen::avro::protocol::{
    encode_empty_meta, encode_handshake_request, encode_handshake_response,
    encode_response_payload, HandshakeMatch, HandshakeRequest, HandshakeResponse,
};
use flumen::avro::Status;
use flumen::event::Headers;
use flumen::format::checkpoint::{self, BatchEntry, Checkpoint, CheckpointSegment, Position};
use flumen::format::record::{self, PutBatchEncoder};
use flumen::format::{journal, segment};

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

/// segment_scan inputs: a flags byte (see the target), then the segment's bytes.
fn scan_seeds(dir: &Path) {
    let id = 7;
    let one = batch(id, 10, &[(&[("host", "web1")], b"hello")]);
    let two = batch(id, 11, &[(&[], b"x"), (&[("k", "v")], b"yy")]);
    let tc = take(id, &[(10, 12)]);
    let zeros = [0u8; 64];
    // 1 = last segment, 2 = deep, 4 = next seq given, 8 = replay offset given, 16 = header
    // prepended, 32 = the id from the header.
    let body = [one.as_slice(), &two, &tc, &zeros].concat();
    write(dir, "last_clean", &[&[1 | 16][..], &body].concat());
    write(dir, "sealed_clean_deep", &[&[2 | 16][..], &body].concat());
    write(
        dir,
        "torn_last",
        &[&[1 | 16][..], &one, &two[..two.len() - 3]].concat(),
    );
    write(
        dir,
        "corrupt_middle",
        &[&[16][..], &one, &[0x5A; 29], &two, &zeros].concat(),
    );
    let mut seq = vec![1 | 4 | 16];
    seq.extend_from_slice(&12u64.to_le_bytes());
    seq.extend_from_slice(&body);
    write(dir, "seq_backwards", &seq);
    let mut from = vec![1 | 8 | 16];
    // Relative to the header's end: replay from the second record.
    from.extend_from_slice(&(one.len() as u32).to_le_bytes());
    from.extend_from_slice(&body);
    write(dir, "replay_from", &from);
    let header = segment::encode_header(id);
    write(dir, "whole_file", &[&[1 | 32][..], &header, &body].concat());
    write(dir, "creation_cut_short", &[&[1][..], &[0u8; 48]].concat());
    // A reused spare: records of its former life (segment 3) after this one's last record.
    let old = [batch(3, 0, &[(&[], b"old")]), take(3, &[(0, 1)])].concat();
    write(
        dir,
        "old_bytes",
        &[&[1 | 16][..], &one, &old, &old].concat(),
    );
}

fn journal_seeds(dir: &Path) {
    let mut j = journal::encode_header().to_vec();
    for (seg, off, ranges) in [
        (3u64, 4096u64, &[(0u64, 10u64)][..]),
        (3, 8192, &[(10, 12), (20, 30)]),
    ] {
        journal::encode_entry(seg, off, &take(seg, ranges), &mut j);
    }
    write(dir, "two_entries", &j);
    write(dir, "torn", &j[..j.len() - 7]);
    // Entries only: the target decodes them again behind a valid header.
    write(dir, "entries_only", &j[journal::JOURNAL_HEADER_LEN..]);
    write(dir, "header_only", &journal::encode_header());
}

fn config_seeds(dir: &Path) {
    let configs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/configs");
    for name in [
        "flume-node-envlookup.conf",
        "userguide-taildir.conf",
        "userguide-multiplexing.conf",
    ] {
        let path = configs.join(name);
        let text = fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        write(dir, name, &[&[3u8][..], &text].concat());
    }
    write(
        dir,
        "embedded_default",
        &[
            &[0u8][..],
            flumen::config::EMBEDDED_DEFAULT_PROPERTIES.as_bytes(),
        ]
        .concat(),
    );
    // References of every kind, nested, looping and unclosed; escapes and continuations.
    let subst = "a1.sources = r1\\\n  \\u0072\\x\n\
a1.channels = c1\n\
a1.sinks : k1\n\
a1.sources.r1.type = netcat\n\
a1.sources.r1.port = ${env:A}${sys:A}${env:${env:NESTED}}\n\
a1.sources.r1.bind = ${a1.channels}-${NOPE}-${env:LOOP}-${PLAIN}\n\
a1.sources.r1.channels = ${a1.channels\n\
a1.channels.c1.type\tfile\n\
! a comment\n\
a1.sinks.k1.channel = c1\n\
a1.sinks.k1.type = ${env:DOLLARS}$${x}\n";
    write(
        dir,
        "substitution",
        &[&[3u8][..], subst.as_bytes()].concat(),
    );
}

fn handshake_seeds(dir: &Path) {
    for (name, m) in [
        ("both", HandshakeMatch::Both),
        ("client", HandshakeMatch::Client),
        ("none", HandshakeMatch::None),
    ] {
        let mut p = vec![200u8];
        encode_handshake_response(&mut p, &HandshakeResponse::answer(m));
        encode_empty_meta(&mut p);
        encode_response_payload(&mut p, Ok(Status::Ok));
        write(dir, name, &p);
    }
    let mut p = vec![7u8];
    encode_handshake_response(&mut p, &HandshakeResponse::answer(HandshakeMatch::Both));
    encode_empty_meta(&mut p);
    encode_response_payload(&mut p, Err("refused: channel full"));
    write(dir, "error_text", &p);
    // A whole server stream: one framed answer to serial 1.
    let mut payload = Vec::new();
    encode_handshake_response(
        &mut payload,
        &HandshakeResponse::answer(HandshakeMatch::Both),
    );
    encode_empty_meta(&mut payload);
    encode_response_payload(&mut payload, Ok(Status::Ok));
    let mut stream = vec![3u8];
    encode_frame(&mut stream, 1, &[&payload]);
    write(dir, "framed_stream", &stream);
    let mut req = vec![64u8];
    encode_handshake_request(&mut req, &HandshakeRequest::flume(true));
    write(dir, "request_with_text", &req);
}

/// channel_model inputs are read with `arbitrary`: any bytes are a valid operation list, so
/// a few fixed pseudo-random inputs of different lengths start it off.
fn model_seeds(dir: &Path) {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for len in [64usize, 256, 1024] {
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect();
        write(dir, &format!("random_{len}"), &bytes);
    }
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
        ("segment_scan", scan_seeds),
        ("take_journal", journal_seeds),
        ("config_properties", config_seeds),
        ("avro_handshake", handshake_seeds),
        ("channel_model", model_seeds),
    ] {
        let dir = root.join(target);
        fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
        seeds(&dir);
        println!("wrote seeds to {}", dir.display());
    }
}
