//! Damaged files on disk, on real files and both I/O backends: torn final records (truncated,
//! with garbage after them), corrupt records in the middle of the log (refused by default,
//! quarantined and counted with corruptionPolicy = skip, listed by `verify` and by the `flumen`
//! binary), and corrupt or truncated checkpoints (fallback to the older one, then to a full
//! replay).
//!
//! Each scenario builds one pristine channel directory with the public API, closes it as
//! `kill -9` would (`simulate_crash`), then works on fresh copies of it, so every damage is
//! applied to the same known log. The tests read the segment files with their own decoder of
//! the documented layout (`common::parse_segment`) to find the records to damage and the
//! events each holds.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use flumen::channel::file::{
    tools, CorruptionPolicy, FileChannel, FileChannelConfig, RecoveryReport,
};
use flumen::channel::{Channel, ChannelError};
use flumen::io::{self, IoKind, Vfs};

use crate::common::{
    checkpoint_files, copy_dir, open_waiting_for_lock, parse_segment, peek_all, put_range,
    segment_files, take_seqs, test_config, RawRecord, Rng, BACKENDS,
};

/// Events per put batch in these tests.
const BATCH: u64 = 20;

fn config(dir: &Path, io: IoKind, policy: CorruptionPolicy) -> FileChannelConfig {
    let mut cfg = test_config(dir, io);
    cfg.corruption_policy = policy;
    // `peek_all` reads the whole channel in one take transaction.
    cfg.transaction_capacity = cfg.capacity as usize;
    cfg
}

fn open(
    dir: &Path,
    io: IoKind,
    policy: CorruptionPolicy,
) -> Result<(FileChannel, RecoveryReport), ChannelError> {
    open_waiting_for_lock(|| {
        let fs: Arc<dyn Vfs> = io::backend(io);
        FileChannel::open_with("corrupt", config(dir, io, policy), fs)
    })
}

fn open_ok(dir: &Path, io: IoKind, policy: CorruptionPolicy) -> (FileChannel, RecoveryReport) {
    open(dir, io, policy)
        .unwrap_or_else(|e| panic!("{io:?}: opening {} failed: {e}", dir.display()))
}

/// A channel directory built by the test, and what it must hold.
struct Pristine {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    /// Every put batch committed, in order.
    batches: Vec<Range<u64>>,
    /// Seqs whose take committed.
    taken: Vec<u64>,
}

impl Pristine {
    /// Every committed event not taken, in order, leaving out the batches in `lost`.
    fn expected_without(&self, lost: &[Range<u64>]) -> Vec<u64> {
        self.batches
            .iter()
            .flat_map(|b| b.clone())
            .filter(|s| !self.taken.contains(s) && !lost.iter().any(|l| l.contains(s)))
            .collect()
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// A fresh copy of the directory to damage.
    fn copy(&self, parent: &Path, name: &str) -> PathBuf {
        let to = parent.join(name);
        copy_dir(&self.dir, &to);
        to
    }
}

/// Script for building a log: put `n` batches, take the oldest `n` batches, checkpoint.
enum Step {
    Put(u64),
    Take(u64),
    Checkpoint,
}

fn build(io: IoKind, seed: u64, steps: &[Step]) -> Pristine {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("ch");
    let (ch, _) = open_ok(&dir, io, CorruptionPolicy::Fail);
    let mut rng = Rng::new(seed);
    let mut batches: Vec<Range<u64>> = vec![];
    let mut taken = vec![];
    let mut next = 0;
    for step in steps {
        match *step {
            Step::Put(n) => {
                for _ in 0..n {
                    let b = next..next + BATCH;
                    put_range(&ch, b.clone(), |_| rng.range(300, 1300) as usize)
                        .expect("put commit");
                    batches.push(b);
                    next += BATCH;
                }
            }
            Step::Take(n) => {
                let (tx, seqs) = take_seqs(&ch, (n * BATCH) as usize);
                assert_eq!(seqs.len() as u64, n * BATCH, "enough events to take");
                tx.commit().expect("take commit");
                taken.extend(seqs);
            }
            Step::Checkpoint => ch.checkpoint().expect("checkpoint"),
        }
    }
    // As kill -9: no final checkpoint; the next open replays the log.
    ch.simulate_crash();
    drop(ch);
    Pristine {
        _tmp: tmp,
        dir,
        batches,
        taken,
    }
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn records(path: &Path) -> Vec<RawRecord> {
    parse_segment(&read(path))
}

fn set_len(path: &Path, len: u64) {
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|f| f.set_len(len))
        .unwrap_or_else(|e| panic!("truncating {}: {e}", path.display()));
}

fn write_at(path: &Path, offset: u64, bytes: &[u8]) {
    use std::os::unix::fs::FileExt;
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|f| f.write_all_at(bytes, offset))
        .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}

fn flip_bit(path: &Path, offset: u64, bit: u8) {
    let mut b = read(path);
    b[offset as usize] ^= 1 << bit;
    std::fs::write(path, b).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}

/// Runs `flumen channel verify --dir <dir>`.
fn cli_verify(dir: &Path) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_flumen"))
        .args(["channel", "verify", "--dir"])
        .arg(dir)
        .env("RUST_LOG", "off")
        .output()
        .expect("run the flumen binary");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

// ---------------------------------------------------------------------------------------------
// (a) Torn final record.

/// What one damage of the last record should recover to.
struct TornCase {
    what: String,
    /// Applies the damage to the newest segment of a copy.
    damage: Box<dyn Fn(&Path)>,
    /// Where recovery must report the torn tail, if anywhere.
    torn_at: Option<u64>,
    /// Whether the last batch (the damaged or followed-by-garbage record) survives.
    last_survives: bool,
}

#[test]
fn torn_final_record_is_truncated_and_nothing_acknowledged_is_lost() {
    for io in BACKENDS {
        torn_final_record(io);
    }
}

fn torn_final_record(io: IoKind) {
    let p = build(
        io,
        11,
        &[
            Step::Put(10),
            Step::Checkpoint,
            Step::Put(3),
            Step::Take(3),
            Step::Put(17),
        ],
    );
    let segs = segment_files(&p.data_dir());
    assert!(segs.len() >= 2, "the log should span segments: {segs:?}");
    let newest_name = segs
        .last()
        .and_then(|s| s.file_name())
        .expect("a newest segment")
        .to_owned();
    let pristine_seg = p.data_dir().join(&newest_name);
    let image = read(&pristine_seg);
    let recs = parse_segment(&image);
    let last = recs
        .last()
        .expect("the newest segment holds records")
        .clone();
    let last_batch = p.batches.last().expect("batches").clone();
    assert_eq!(last.kind, 1, "the last record is the last put");
    assert_eq!(
        last.seqs,
        last_batch.clone().collect::<Vec<_>>(),
        "the last record holds the last committed batch"
    );
    let (o, len) = (last.offset, last.len);
    let end = o + len;

    let mut rng = Rng::new(0x70E2);
    let mut cuts: Vec<u64> = (1..=13).map(|d| o + d).collect();
    cuts.extend([o + len / 2, end - 2, end - 1]);
    cuts.extend((0..12).map(|_| rng.range(o + 14, end - 2)));
    let mut cases: Vec<TornCase> = cuts
        .into_iter()
        .map(|cut| {
            // A cut that kept only zero bytes of the record leaves nothing to call torn.
            let kept_nonzero = image[o as usize..cut as usize].iter().any(|&b| b != 0);
            TornCase {
                what: format!("cut at {cut} (record {o}..{end})"),
                damage: Box::new(move |seg: &Path| set_len(seg, cut)),
                torn_at: kept_nonzero.then_some(o),
                last_survives: false,
            }
        })
        .collect();
    for n in [1usize, 3, 9, 40, 300] {
        let mut garbage = rng.bytes(n);
        garbage[0] |= 1; // never a zero length field's first byte: clearly not "the end"
        let g = garbage.clone();
        cases.push(TornCase {
            what: format!(
                "{n} garbage bytes written after the last record (preallocated zeros kept)"
            ),
            damage: Box::new(move |seg: &Path| write_at(seg, end, &g)),
            torn_at: Some(end),
            last_survives: true,
        });
        cases.push(TornCase {
            what: format!("{n} garbage bytes appended to the file cut at the last record's end"),
            damage: Box::new(move |seg: &Path| {
                set_len(seg, end);
                write_at(seg, end, &garbage);
            }),
            torn_at: Some(end),
            last_survives: true,
        });
    }

    let work = tempfile::tempdir().expect("tempdir");
    for (i, case) in cases.iter().enumerate() {
        let dir = p.copy(work.path(), &format!("case{i}"));
        let seg = dir.join("data").join(&newest_name);
        (case.damage)(&seg);
        let ctx = format!("{io:?}, {}", case.what);

        if i == 0 || i == cases.len() - 1 {
            // The offline tools call it torn, not corrupt, and the CLI exits 0.
            let v = tools::verify(std::slice::from_ref(&dir)).expect("verify");
            assert!(
                v.corrupt.is_empty(),
                "{ctx}: verify found corruption: {v:?}"
            );
            if let Some(at) = case.torn_at {
                let t = v.torn_tail.as_ref().expect("verify reports the torn tail");
                assert_eq!((t.file.as_path(), t.offset), (seg.as_path(), at), "{ctx}");
            }
            let (code, stdout, stderr) = cli_verify(&dir);
            assert_eq!(code, Some(0), "{ctx}: verify exit code\n{stdout}\n{stderr}");
        }

        let (ch, rep) = open_ok(&dir, io, CorruptionPolicy::Fail);
        match case.torn_at {
            Some(at) => {
                let t = rep
                    .torn_tail
                    .as_ref()
                    .unwrap_or_else(|| panic!("{ctx}: no torn tail reported: {rep:?}"));
                assert_eq!(t.file, seg, "{ctx}: torn tail file");
                assert_eq!(t.offset, at, "{ctx}: torn tail offset");
            }
            None => assert!(rep.torn_tail.is_none(), "{ctx}: {rep:?}"),
        }
        assert!(rep.corrupt.is_empty(), "{ctx}: {rep:?}");
        assert_eq!(rep.events_lost, 0, "{ctx}: {rep:?}");
        let lost = if case.last_survives {
            vec![]
        } else {
            vec![last_batch.clone()]
        };
        let expected = p.expected_without(&lost);
        assert_eq!(peek_all(&ch), expected, "{ctx}: recovered events");

        if i == 0 || i == cases.len() - 1 {
            // The repair sticks: new commits land after it, and the next open finds no tear.
            let more = 1_000_000..1_000_000 + BATCH;
            put_range(&ch, more.clone(), |_| 100).expect("put after recovery");
            ch.close().expect("close");
            drop(ch);
            let (ch, rep) = open_ok(&dir, io, CorruptionPolicy::Fail);
            assert!(rep.torn_tail.is_none(), "{ctx}: second open: {rep:?}");
            let mut want = expected.clone();
            want.extend(more);
            assert_eq!(peek_all(&ch), want, "{ctx}: after a second open");
            ch.close().expect("close");
        } else {
            ch.close().expect("close");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// (b) Corruption in the middle of the log.

/// A put record chosen for damage.
struct Target {
    what: &'static str,
    segment: PathBuf,
    record: RawRecord,
    /// Byte (relative to the record) and bit to flip.
    at: u64,
    bit: u8,
}

#[test]
fn corrupt_record_mid_log_fails_open_then_skip_quarantines_exactly_that_batch() {
    for io in BACKENDS {
        corrupt_record_mid_log(io);
    }
}

fn corrupt_record_mid_log(io: IoKind) {
    let p = build(io, 22, &[Step::Put(6), Step::Take(2), Step::Put(34)]);
    let segs = segment_files(&p.data_dir());
    assert!(
        segs.len() >= 3,
        "the log should span at least 3 segments: {segs:?}"
    );
    let recs: Vec<Vec<RawRecord>> = segs.iter().map(|s| records(s)).collect();
    let untaken_put = |r: &RawRecord| r.kind == 1 && !r.seqs.iter().any(|s| p.taken.contains(s));

    // A put record with records before and after it, in a sealed segment.
    let first = &recs[0];
    let mid = first.len() / 2;
    assert!(
        mid > 0 && mid + 1 < first.len() && untaken_put(&first[mid]),
        "a middle record of the first segment is an untaken put: {first:?}"
    );
    // The last record of the last sealed segment.
    let sealed = &recs[recs.len() - 2];
    let sealed_last = sealed.last().expect("records").clone();
    assert!(untaken_put(&sealed_last), "{sealed_last:?}");
    // A record in the last segment with a valid one after it.
    let newest = recs.last().expect("segments");
    assert!(newest.len() >= 2 && untaken_put(&newest[0]), "{newest:?}");

    let targets = [
        Target {
            what: "a middle record of a sealed segment (payload bit)",
            segment: segs[0].clone(),
            record: first[mid].clone(),
            at: first[mid].len / 2,
            bit: 3,
        },
        Target {
            what: "the last record of a sealed segment (CRC bit)",
            segment: segs[segs.len() - 2].clone(),
            record: sealed_last,
            at: 5,
            bit: 0,
        },
        Target {
            what: "a record of the last segment followed by valid records (length bit)",
            segment: segs[segs.len() - 1].clone(),
            record: newest[0].clone(),
            at: 0,
            bit: 1,
        },
    ];

    let work = tempfile::tempdir().expect("tempdir");
    for (i, t) in targets.iter().enumerate() {
        let ctx = format!("{io:?}, {}", t.what);
        let dir = p.copy(work.path(), &format!("target{i}"));
        let name = t.segment.file_name().expect("segment name");
        let seg = dir.join("data").join(name);
        let off = t.record.offset;
        flip_bit(&seg, off + t.at, t.bit);
        let damaged = read(&seg)[off as usize..(off + t.record.len) as usize].to_vec();
        let batch = t.record.seqs[0]..t.record.seqs[0] + t.record.seqs.len() as u64;
        assert_eq!(
            t.record.seqs,
            batch.clone().collect::<Vec<_>>(),
            "one batch per record"
        );

        // verify lists exactly that spot, and so does the binary (exit code 1).
        let v = tools::verify(std::slice::from_ref(&dir)).expect("verify");
        let spots: Vec<_> = v
            .corrupt
            .iter()
            .map(|c| (c.file.clone(), c.offset))
            .collect();
        assert_eq!(spots, vec![(seg.clone(), off)], "{ctx}: verify: {v:?}");
        assert!(v.torn_tail.is_none(), "{ctx}: verify: {v:?}");
        let (code, stdout, stderr) = cli_verify(&dir);
        assert_eq!(code, Some(1), "{ctx}: CLI exit code\n{stdout}\n{stderr}");
        let needle = format!("{} at offset {off}", seg.display());
        assert!(
            stdout.contains(&needle),
            "{ctx}: CLI output lacks `{needle}`:\n{stdout}\n{stderr}"
        );

        // The default policy refuses to open, naming file and offset and the way out.
        match open(&dir, io, CorruptionPolicy::Fail) {
            Ok(_) => panic!("{ctx}: open succeeded over a corrupt record"),
            Err(e) => {
                let msg = e.to_string();
                match e {
                    ChannelError::Corrupt { file, offset, .. } => {
                        assert_eq!(file, seg, "{ctx}: Corrupt.file");
                        assert_eq!(offset, off, "{ctx}: Corrupt.offset");
                    }
                    other => panic!("{ctx}: expected Corrupt, got {other:?}"),
                }
                assert!(
                    msg.contains("flumen channel repair"),
                    "{ctx}: message does not mention the repair command: {msg}"
                );
                assert!(msg.contains("flumen channel verify"), "{ctx}: {msg}");
            }
        }

        // Skip: opens, quarantines the damaged bytes, counts exactly that batch as lost.
        let (ch, rep) = open_ok(&dir, io, CorruptionPolicy::Skip);
        assert_eq!(
            rep.events_lost,
            batch.end - batch.start,
            "{ctx}: events_lost: {rep:?}"
        );
        let spots: Vec<_> = rep
            .corrupt
            .iter()
            .map(|c| (c.file.clone(), c.offset))
            .collect();
        assert_eq!(spots, vec![(seg.clone(), off)], "{ctx}: {rep:?}");
        assert!(rep.torn_tail.is_none(), "{ctx}: {rep:?}");
        let qdir = dir.join("data").join("quarantine");
        let qfiles: Vec<PathBuf> = std::fs::read_dir(&qdir)
            .unwrap_or_else(|e| panic!("{ctx}: no quarantine dir {}: {e}", qdir.display()))
            .map(|e| e.expect("entry").path())
            .collect();
        assert_eq!(qfiles.len(), 1, "{ctx}: one quarantine file: {qfiles:?}");
        let id: u64 = name
            .to_str()
            .and_then(|n| n.strip_prefix("seg-"))
            .and_then(|n| n.strip_suffix(".log"))
            .and_then(|n| n.parse().ok())
            .expect("segment id");
        assert_eq!(
            qfiles[0],
            qdir.join(format!("seg-{id:020}-{off}.bin")),
            "{ctx}: quarantine file name"
        );
        assert_eq!(
            read(&qfiles[0]),
            damaged,
            "{ctx}: the quarantine holds exactly the damaged record"
        );
        let expected = p.expected_without(std::slice::from_ref(&batch));
        assert_eq!(
            peek_all(&ch),
            expected,
            "{ctx}: every other event is present"
        );
        ch.close().expect("close");
        drop(ch);

        // The skip is remembered: the default policy opens now, with the same events.
        let (ch, rep) = open_ok(&dir, io, CorruptionPolicy::Fail);
        assert_eq!(rep.events_lost, 0, "{ctx}: reopen after skip: {rep:?}");
        assert_eq!(peek_all(&ch), expected, "{ctx}: reopen after skip");
        ch.close().expect("close");
    }
}

// ---------------------------------------------------------------------------------------------
// (c) Checkpoints.

enum CkptDamage {
    Flip,
    Truncate,
}

fn damage_checkpoint(path: &Path, how: &CkptDamage) {
    let len = read(path).len() as u64;
    match how {
        // A bit in the body, past the header.
        CkptDamage::Flip => flip_bit(path, len - 3, 4),
        CkptDamage::Truncate => set_len(path, len / 2),
    }
}

#[test]
fn bad_checkpoints_fall_back_to_the_older_one_then_to_a_full_replay() {
    for io in BACKENDS {
        bad_checkpoints(io);
    }
}

fn bad_checkpoints(io: IoKind) {
    let p = build(
        io,
        33,
        &[
            Step::Put(20),
            Step::Take(18),
            // A put's group sync also applies the take before the checkpoint snapshots.
            Step::Put(1),
            Step::Checkpoint,
            Step::Put(15),
            Step::Take(3),
            Step::Checkpoint,
            Step::Put(10),
            Step::Take(2),
        ],
    );
    let ckpts = checkpoint_files(&p.dir.join("checkpoint"));
    assert_eq!(ckpts.len(), 2, "two checkpoints retained: {ckpts:?}");
    // The first segment's events were all taken before the first checkpoint, so it was
    // deleted: a full replay starts from a later segment whose take records refer to events
    // that are gone (this makes the full-replay case harder).
    let segs = segment_files(&p.data_dir());
    assert!(
        segs.len() >= 2
            && !segs
                .iter()
                .any(|s| s.ends_with("seg-00000000000000000001.log")),
        "setup: the first segment should have been deleted: {segs:?}"
    );
    let names: Vec<_> = ckpts
        .iter()
        .map(|c| c.file_name().expect("name").to_owned())
        .collect();
    let expected = p.expected_without(&[]);

    // (damage to older, damage to newer)
    let cases: [(&str, Option<CkptDamage>, Option<CkptDamage>); 4] = [
        ("newest has a flipped bit", None, Some(CkptDamage::Flip)),
        ("newest is truncated", None, Some(CkptDamage::Truncate)),
        (
            "both have a flipped bit",
            Some(CkptDamage::Flip),
            Some(CkptDamage::Flip),
        ),
        (
            "older truncated, newest flipped",
            Some(CkptDamage::Truncate),
            Some(CkptDamage::Flip),
        ),
    ];
    let work = tempfile::tempdir().expect("tempdir");
    for (i, (what, older, newer)) in cases.iter().enumerate() {
        let ctx = format!("{io:?}, {what}");
        let dir = p.copy(work.path(), &format!("case{i}"));
        let older_path = dir.join("checkpoint").join(&names[0]);
        let newer_path = dir.join("checkpoint").join(&names[1]);
        if let Some(d) = older {
            damage_checkpoint(&older_path, d);
        }
        if let Some(d) = newer {
            damage_checkpoint(&newer_path, d);
        }

        let v = tools::verify(std::slice::from_ref(&dir)).expect("verify");
        let bad: Vec<_> = v.corrupt.iter().map(|c| c.file.clone()).collect();
        let mut want_bad = vec![newer_path.clone()];
        if older.is_some() {
            want_bad.insert(0, older_path.clone());
        }
        let mut sorted_bad = bad.clone();
        sorted_bad.sort();
        assert_eq!(sorted_bad, want_bad, "{ctx}: verify: {v:?}");

        let (ch, rep) = open_ok(&dir, io, CorruptionPolicy::Fail);
        let rejected: Vec<_> = rep
            .checkpoints_rejected
            .iter()
            .map(|r| r.0.clone())
            .collect();
        assert!(
            rejected.contains(&newer_path),
            "{ctx}: newest not rejected: {rep:?}"
        );
        if older.is_some() {
            assert!(rejected.contains(&older_path), "{ctx}: {rep:?}");
            assert_eq!(rep.checkpoint, None, "{ctx}: {rep:?}");
            assert!(rep.full_replay, "{ctx}: full replay expected: {rep:?}");
        } else {
            assert_eq!(rep.checkpoint.as_ref(), Some(&older_path), "{ctx}: {rep:?}");
            assert!(!rep.full_replay, "{ctx}: {rep:?}");
        }
        assert_eq!(rep.events_lost, 0, "{ctx}: {rep:?}");
        assert!(rep.corrupt.is_empty(), "{ctx}: {rep:?}");
        assert_eq!(
            peek_all(&ch),
            expected,
            "{ctx}: nothing lost, nothing taken comes back"
        );
        ch.close().expect("close");
        drop(ch);

        // The new checkpoint written by that open is good.
        let (ch, rep) = open_ok(&dir, io, CorruptionPolicy::Fail);
        assert!(
            rep.checkpoints_rejected.is_empty(),
            "{ctx}: reopen: {rep:?}"
        );
        assert!(!rep.full_replay, "{ctx}: reopen: {rep:?}");
        assert_eq!(peek_all(&ch), expected, "{ctx}: reopen");
        ch.close().expect("close");
    }
}

// ---------------------------------------------------------------------------------------------
// (d) Corruption in a part of the log a checkpoint covers.

/// Open replays only the log after the newest checkpoint, so a bad record in an older,
/// checkpoint-covered segment is met by a take, not by open. The take fails naming the file
/// and offset and telling the operator to stop the agent and repair; nothing corrupt is ever
/// delivered, a retried take fails the same way, and `repair` (a full replay) quarantines the
/// record so that everything else can be taken.
#[test]
fn a_bit_flip_in_a_checkpoint_covered_segment_fails_the_take_naming_the_file_and_repair() {
    for io in BACKENDS {
        checkpoint_covered_bit_flip(io);
    }
}

fn checkpoint_covered_bit_flip(io: IoKind) {
    let p = build(io, 44, &[Step::Put(30), Step::Checkpoint, Step::Put(2)]);
    let segs = segment_files(&p.data_dir());
    assert!(segs.len() >= 2, "{segs:?}");
    let first = records(&segs[0]);
    let target = first[first.len() / 2].clone();
    assert_eq!(target.kind, 1, "{target:?}");
    let batch = target.seqs[0]..target.seqs[0] + target.seqs.len() as u64;

    let work = tempfile::tempdir().expect("tempdir");
    let dir = p.copy(work.path(), "covered");
    let seg = dir.join("data").join(segs[0].file_name().expect("name"));
    flip_bit(&seg, target.offset + target.len / 2, 2);
    let ctx = format!("{io:?}");

    let (ch, rep) = open_ok(&dir, io, CorruptionPolicy::Fail);
    assert!(
        rep.checkpoint.is_some() && !rep.full_replay,
        "{ctx}: {rep:?}"
    );
    assert!(
        rep.corrupt.is_empty(),
        "{ctx}: open does not replay that part: {rep:?}"
    );
    for attempt in 0..2 {
        let mut tx = ch.take_transaction();
        let mut got = vec![];
        let err = loop {
            let mut out = vec![];
            match tx.take_batch(BATCH as usize, &mut out) {
                Ok(0) => panic!("{ctx}: the whole channel was taken past the corrupt record"),
                Ok(_) => got.extend(out.iter().map(crate::common::event_seq)),
                Err(e) => {
                    assert!(out.is_empty(), "{ctx}: a failed take delivers nothing");
                    break e;
                }
            }
        };
        // Everything delivered is intact (event_seq checks every body byte) and comes before
        // the damaged batch.
        assert_eq!(
            got,
            (0..batch.start).collect::<Vec<_>>(),
            "{ctx}: attempt {attempt}"
        );
        let msg = err.to_string();
        match &err {
            ChannelError::CorruptTake { file, offset, .. } => {
                assert_eq!((file, *offset), (&seg, target.offset), "{ctx}: {msg}");
            }
            other => panic!("{ctx}: expected CorruptTake, got {other:?}"),
        }
        for needle in [
            "stop the agent",
            "flumen channel verify --dir",
            "flumen channel repair --checkpoint-dir",
            "corruptionPolicy = skip",
            &seg.display().to_string(),
        ] {
            assert!(
                msg.contains(needle),
                "{ctx}: message lacks `{needle}`: {msg}"
            );
        }
        // The sink rolls back and retries later: the same failure, nothing lost.
        tx.rollback();
    }
    assert_eq!(ch.stats().size, p.expected_without(&[]).len() as u64);
    ch.close().expect("close");
    drop(ch);

    let r = tools::repair(&dir.join("checkpoint"), &[dir.join("data")]).expect("repair");
    let spots: Vec<_> = r
        .quarantined
        .iter()
        .map(|c| (c.file.clone(), c.offset))
        .collect();
    assert_eq!(spots, vec![(seg.clone(), target.offset)], "{ctx}: {r:?}");
    assert_eq!(r.events_lost, batch.end - batch.start, "{ctx}: {r:?}");
    let (ch, _) = open_ok(&dir, io, CorruptionPolicy::Fail);
    assert_eq!(
        peek_all(&ch),
        p.expected_without(std::slice::from_ref(&batch)),
        "{ctx}: after repair"
    );
    ch.close().expect("close");
}

#[test]
fn a_deleted_segment_with_queued_events_fails_open_naming_it_unless_skip() {
    for io in BACKENDS {
        deleted_segment(io);
    }
}

/// A segment deleted from outside (or a data dir dropped from the configuration) while the
/// newest checkpoint still lists queued events in it: replaying the other segments would
/// deliver the rest and lose those quietly, so the default policy refuses to open, naming the
/// file, how many events it held and what to do; corruptionPolicy = skip opens without them.
fn deleted_segment(io: IoKind) {
    let p = build(io, 41, &[Step::Put(60), Step::Checkpoint, Step::Put(5)]);
    let segs = segment_files(&p.data_dir());
    assert!(segs.len() >= 3, "setup: several segments: {segs:?}");
    let victim = segs[1].clone();
    let name = victim
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    let held: Vec<u64> = records(&victim)
        .iter()
        .flat_map(|r| r.seqs.clone())
        .collect();
    assert!(!held.is_empty(), "setup: {name} holds events");

    let work = tempfile::tempdir().expect("tempdir");
    let dir = p.copy(work.path(), "deleted");
    std::fs::remove_file(dir.join("data").join(&name)).expect("delete the segment");
    let err = match open(&dir, io, CorruptionPolicy::Fail) {
        Ok(_) => panic!("{io:?}: opened with {name} missing"),
        Err(e) => e,
    };
    let msg = err.to_string();
    assert!(
        matches!(err, ChannelError::MissingSegment { .. })
            && msg.contains(&name)
            && msg.contains("corruptionPolicy = skip")
            && msg.contains(&format!("{} queued events", held.len())),
        "{io:?}: {msg}"
    );

    let (ch, _) = open_ok(&dir, io, CorruptionPolicy::Skip);
    let lost = held[0]..held[held.len() - 1] + 1;
    assert_eq!(
        peek_all(&ch),
        p.expected_without(std::slice::from_ref(&lost)),
        "{io:?}: skip opens with every event but the deleted segment's"
    );
}
