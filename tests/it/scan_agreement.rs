//! Recovery (open) and `flumen channel verify` read a log through one scanner, so they must
//! agree on every crash image. They once had a scanner each, and disagreed: a last segment
//! with a bad header and only zeros after it (a creation cut short) was removed by recovery
//! but reported corrupt by verify (exit 1), and only recovery noticed seqs going backwards.
//!
//! Each case damages a fresh copy of one pristine log (three segments, no checkpoint, so open
//! replays every segment as verify reads it) and checks the agreement both ways: verify finds
//! nothing corrupt exactly when open (corruptionPolicy = fail) recovers; when corrupt, open
//! fails naming verify's first spot and an open with corruptionPolicy = skip skips exactly
//! verify's spots; when recoverable, both name the same torn tail, or neither does. Every case
//! also states what it must be, so a scanner that called everything clean would fail.

use std::path::{Path, PathBuf};

use flumen::channel::file::tools::{self, VerifyReport};
use flumen::channel::file::{CorruptionPolicy, FileChannel, FileChannelConfig, RecoveryReport};
use flumen::channel::{Channel, ChannelError};
use flumen::format::{PutBatchEncoder, PutBatchView, RecordKind};
use flumen::io::{self, IoKind};

use crate::common::{
    checkpoint_files, copy_dir, open_waiting_for_lock, parse_segment, put_range, segment_files,
    test_config, RawRecord, Rng, SEG_HEADER,
};

/// What a damaged image must be, whoever reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Nothing to repair.
    Clean,
    /// A torn tail at this offset of the last segment (truncated at open).
    TornAt(u64),
    /// Likewise, but records of a reused file's former life follow it.
    OldBytesAt(u64),
    /// The last segment's creation was cut short (removed at open).
    CutShort,
    /// Corrupt; the first spot is in this file at this offset.
    CorruptAt(usize, u64),
}

fn config(dir: &Path, policy: CorruptionPolicy) -> FileChannelConfig {
    let mut cfg = test_config(dir, IoKind::Std);
    cfg.corruption_policy = policy;
    cfg.checkpoint_interval = std::time::Duration::from_secs(3600);
    cfg
}

fn open(
    dir: &Path,
    policy: CorruptionPolicy,
) -> Result<(FileChannel, RecoveryReport), ChannelError> {
    open_waiting_for_lock(|| {
        FileChannel::open_with("agree", config(dir, policy), io::backend(IoKind::Std))
    })
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn write(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}

fn remove_checkpoints(dir: &Path) {
    for c in checkpoint_files(&dir.join("checkpoint")) {
        std::fs::remove_file(&c).unwrap_or_else(|e| panic!("removing {}: {e}", c.display()));
    }
}

/// A log of three segments or more, closed as by kill -9 before any checkpoint.
fn pristine(root: &Path) -> PathBuf {
    let dir = root.join("pristine");
    let (ch, _) = open(&dir, CorruptionPolicy::Fail).expect("open a new channel");
    let mut rng = Rng::new(0x5CA7);
    for b in 0..40u64 {
        put_range(&ch, b * 20..(b + 1) * 20, |_| rng.range(300, 1300) as usize).expect("put");
    }
    ch.simulate_crash();
    drop(ch);
    remove_checkpoints(&dir);
    let segs = segment_files(&dir.join("data"));
    assert!(segs.len() >= 3, "the log should span 3 segments: {segs:?}");
    dir
}

/// A put record of `segment` holding the same events as `rec` (found at `at` in `image`) but
/// starting at `first_seq`: the same length, a valid CRC.
fn rewritten_put(image: &[u8], rec: &RawRecord, segment: u64, first_seq: u64) -> Vec<u8> {
    let payload = &image[(rec.offset + 9) as usize..(rec.offset + rec.len) as usize];
    let view = PutBatchView::parse(payload).expect("a put record");
    let mut enc = PutBatchEncoder::new();
    for ev in view.events() {
        let ev = ev.expect("a valid event");
        enc.push(&Default::default(), ev.body).expect("push");
    }
    let out = enc.finish(segment, first_seq, view.timestamp_ms).to_vec();
    assert_eq!(out.len() as u64, rec.len, "same length");
    out
}

fn segment_id(path: &Path) -> u64 {
    path.file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_prefix("seg-"))
        .and_then(|n| n.strip_suffix(".log"))
        .and_then(|n| n.parse().ok())
        .expect("a segment file name")
}

/// Damages the copy whose segment files (oldest first) are given; returns what it must be.
type Damage = Box<dyn Fn(&[PathBuf]) -> Expect>;

struct Case {
    what: &'static str,
    damage: Damage,
}

fn cases() -> Vec<Case> {
    let last_record =
        |seg: &Path| -> RawRecord { parse_segment(&read(seg)).last().expect("records").clone() };
    let flip = |seg: &Path, at: u64, bit: u8| {
        let mut b = read(seg);
        b[at as usize] ^= 1 << bit;
        write(seg, &b);
    };
    let records_end = move |seg: &Path| -> u64 {
        let r = last_record(seg);
        r.offset + r.len
    };
    vec![
        Case {
            what: "no damage",
            damage: Box::new(|_| Expect::Clean),
        },
        Case {
            what: "zeros after the last record (preallocated space)",
            damage: Box::new(move |segs| {
                let last = segs.last().expect("segments");
                let mut b = read(last);
                b.truncate(records_end(last) as usize);
                b.extend(std::iter::repeat_n(0u8, 70_000));
                write(last, &b);
                Expect::Clean
            }),
        },
        Case {
            what: "the last record cut in half (torn tail)",
            damage: Box::new(move |segs| {
                let last = segs.last().expect("segments");
                let r = last_record(last);
                let mut b = read(last);
                b.truncate((r.offset + r.len / 2) as usize);
                write(last, &b);
                Expect::TornAt(r.offset)
            }),
        },
        Case {
            what: "garbage after the last record (torn tail)",
            damage: Box::new(move |segs| {
                let last = segs.last().expect("segments");
                let end = records_end(last);
                let mut b = read(last);
                b.truncate(end as usize);
                let mut rng = Rng::new(9);
                let mut g = rng.bytes(500);
                g[0] |= 1;
                b.extend_from_slice(&g);
                write(last, &b);
                Expect::TornAt(end)
            }),
        },
        Case {
            what: "a bit flip in the last record of the last segment (torn tail)",
            damage: Box::new(move |segs| {
                let last = segs.last().expect("segments");
                let r = last_record(last);
                flip(last, r.offset + r.len - 3, 2);
                Expect::TornAt(r.offset)
            }),
        },
        Case {
            what: "a reused spare's old records after the last record",
            damage: Box::new(move |segs| {
                // What segment reuse leaves: the file of an older segment, whose records name
                // that segment in their CRCs, now carries the last segment's records first.
                let last = segs.last().expect("segments");
                let end = records_end(last);
                let old = read(&segs[0]);
                let mut b = read(last);
                b.truncate(end as usize);
                b.extend_from_slice(&old[(SEG_HEADER as usize + 100)..]);
                write(last, &b);
                Expect::OldBytesAt(end)
            }),
        },
        Case {
            what: "a new last segment whose creation was cut short (bad header, only zeros)",
            damage: Box::new(|segs| {
                let last = segs.last().expect("segments");
                let next = last.with_file_name(format!("seg-{:020}.log", segment_id(last) + 1));
                write(&next, &[0u8; 8192]);
                Expect::CutShort
            }),
        },
        Case {
            what: "a bad header on the last segment, records after it",
            damage: Box::new(move |segs| {
                let n = segs.len() - 1;
                flip(&segs[n], 2, 5);
                Expect::CorruptAt(n, 0)
            }),
        },
        Case {
            what: "a bad header on an older segment",
            damage: Box::new(move |segs| {
                flip(&segs[1], 1, 0);
                Expect::CorruptAt(1, 0)
            }),
        },
        Case {
            what: "a bit flip in the last segment, valid records after it",
            damage: Box::new(move |segs| {
                let n = segs.len() - 1;
                let recs = parse_segment(&read(&segs[n]));
                assert!(recs.len() >= 2, "{recs:?}");
                flip(&segs[n], recs[0].offset + recs[0].len / 2, 6);
                Expect::CorruptAt(n, recs[0].offset)
            }),
        },
        Case {
            what: "a bit flip in an older segment",
            damage: Box::new(move |segs| {
                let recs = parse_segment(&read(&segs[0]));
                let r = &recs[recs.len() / 2];
                flip(&segs[0], r.offset + 5, 1);
                Expect::CorruptAt(0, r.offset)
            }),
        },
        Case {
            what: "seqs going backwards at the end of the last segment",
            damage: Box::new(move |segs| {
                let last = segs.last().expect("segments");
                let image = read(last);
                let r = last_record(last);
                let again = rewritten_put(&image, &r, segment_id(last), 0);
                let mut b = image;
                b.truncate((r.offset + r.len) as usize);
                b.extend_from_slice(&again);
                write(last, &b);
                Expect::CorruptAt(segs.len() - 1, r.offset + r.len)
            }),
        },
        Case {
            what: "seqs going backwards at the start of an older segment",
            damage: Box::new(move |segs| {
                let image = read(&segs[1]);
                let recs = parse_segment(&image);
                let r = &recs[0];
                assert_eq!(r.kind, RecordKind::PutBatch as u8);
                let again = rewritten_put(&image, r, segment_id(&segs[1]), 0);
                let mut b = image;
                b[r.offset as usize..(r.offset + r.len) as usize].copy_from_slice(&again);
                write(&segs[1], &b);
                Expect::CorruptAt(1, r.offset)
            }),
        },
    ]
}

fn spots(v: &[tools::CorruptSpot]) -> Vec<(PathBuf, u64)> {
    v.iter().map(|c| (c.file.clone(), c.offset)).collect()
}

/// Verify, then open with corruptionPolicy = fail, on `dir`; asserts that they agree and
/// returns verify's report.
fn verify_then_open(dir: &Path, ctx: &str) -> VerifyReport {
    let v = tools::verify(&[dir.to_path_buf()]).unwrap_or_else(|e| panic!("{ctx}: verify: {e}"));
    match open(dir, CorruptionPolicy::Fail) {
        Ok((ch, rep)) => {
            assert!(
                v.corrupt.is_empty(),
                "{ctx}: open recovered but verify found corruption: {v:?}"
            );
            assert!(rep.corrupt.is_empty(), "{ctx}: {rep:?}");
            assert_eq!(
                rep.torn_tail.as_ref().map(|t| (t.file.clone(), t.offset)),
                v.torn_tail.as_ref().map(|t| (t.file.clone(), t.offset)),
                "{ctx}: torn tail: open {rep:?}, verify {v:?}"
            );
            if let (Some(a), Some(b)) = (&rep.torn_tail, &v.torn_tail) {
                assert_eq!(a.reason, b.reason, "{ctx}: the same classification");
            }
            if let Some(p) = &v.creation_cut_short {
                assert!(!p.exists(), "{ctx}: open removes {}", p.display());
            }
            ch.close().expect("close");
        }
        Err(ChannelError::Corrupt { file, offset, .. }) => {
            let first = v.corrupt.first().unwrap_or_else(|| {
                panic!(
                    "{ctx}: open failed on {} at {offset} but verify found nothing: {v:?}",
                    file.display()
                )
            });
            assert_eq!(
                (first.file.clone(), first.offset),
                (file, offset),
                "{ctx}: open and verify name the same first spot"
            );
        }
        Err(e) => panic!("{ctx}: open failed with {e}"),
    }
    v
}

#[test]
fn recovery_and_verify_agree_on_every_crash_image() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let pristine = pristine(tmp.path());
    for (i, case) in cases().iter().enumerate() {
        let ctx = case.what;
        let dir = tmp.path().join(format!("case{i}"));
        copy_dir(&pristine, &dir);
        let segs = segment_files(&dir.join("data"));
        let expect = (case.damage)(&segs);
        let skip_copy = tmp.path().join(format!("case{i}-skip"));
        copy_dir(&dir, &skip_copy);

        let v = verify_then_open(&dir, ctx);
        match expect {
            Expect::Clean => {
                assert!(
                    v.corrupt.is_empty() && v.torn_tail.is_none(),
                    "{ctx}: {v:?}"
                );
                assert!(v.creation_cut_short.is_none(), "{ctx}: {v:?}");
            }
            Expect::TornAt(at) | Expect::OldBytesAt(at) => {
                assert!(v.corrupt.is_empty(), "{ctx}: {v:?}");
                let t = v
                    .torn_tail
                    .as_ref()
                    .unwrap_or_else(|| panic!("{ctx}: {v:?}"));
                assert_eq!(
                    t.reason.starts_with("old bytes of a reused segment file"),
                    matches!(expect, Expect::OldBytesAt(_)),
                    "{ctx}: {t:?}"
                );
                assert_eq!(
                    (t.file.file_name(), t.offset),
                    (segs.last().and_then(|s| s.file_name()), at),
                    "{ctx}"
                );
            }
            Expect::CutShort => {
                assert!(v.corrupt.is_empty(), "{ctx}: {v:?}");
                assert!(v.creation_cut_short.is_some(), "{ctx}: {v:?}");
            }
            Expect::CorruptAt(seg, at) => {
                let first = v.corrupt.first().unwrap_or_else(|| panic!("{ctx}: {v:?}"));
                assert_eq!(
                    (first.file.file_name(), first.offset),
                    (segs[seg].file_name(), at),
                    "{ctx}: {v:?}"
                );
            }
        }
        if v.corrupt.is_empty() {
            continue;
        }

        // corruptionPolicy = skip skips exactly what verify lists, then both call the log
        // recoverable (the quarantined regions are an accepted loss), even with no checkpoint.
        let (ch, rep) = open(&skip_copy, CorruptionPolicy::Skip)
            .unwrap_or_else(|e| panic!("{ctx}: open with skip: {e}"));
        let mut want = spots(&v.corrupt);
        for w in &mut want {
            w.0 = skip_copy.join(w.0.strip_prefix(&dir).expect("under the copy"));
        }
        assert_eq!(spots(&rep.corrupt), want, "{ctx}: skip: {rep:?}");
        ch.close().expect("close");
        drop(ch);
        remove_checkpoints(&skip_copy);
        let again = verify_then_open(&skip_copy, &format!("{ctx}, after skip"));
        let header_damage = v.corrupt.iter().any(|c| c.offset == 0);
        assert_eq!(
            again.corrupt.is_empty(),
            !header_damage,
            "{ctx}: quarantined records are accepted, a bad header stays corrupt: {again:?}"
        );
    }
}
