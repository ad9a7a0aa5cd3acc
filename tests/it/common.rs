//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::Path;

use flumen::channel::file::{FileChannelConfig, FsyncPolicy};
use flumen::io::IoKind;

/// Both I/O backends: every storage test runs on each (uring falls back to std where the
/// kernel refuses io_uring, which the io module's own tests cover).
pub const BACKENDS: [IoKind; 2] = [IoKind::Std, IoKind::Uring];

/// A small-segment config for tests: segments roll often, so rolling, sealing, mmap reads and
/// deletion are all exercised.
pub fn test_config(dir: &Path, io: IoKind) -> FileChannelConfig {
    let mut cfg = FileChannelConfig::new(dir);
    cfg.io = io;
    cfg.max_file_size = 256 * 1024;
    cfg.minimum_required_space = 0;
    cfg.capacity = 10_000_000;
    cfg.fsync = FsyncPolicy::EveryCommit;
    cfg
}

// ---- Helpers for the crash, corruption and fault tests (appended). ----

use std::ops::Range;

use flumen::channel::{Channel, ChannelError, TakeTransaction};
use flumen::event::Event;

/// A small deterministic PRNG (splitmix64), so the tests need no `rand` crate. Tests print
/// their seed, so a failure can be replayed by fixing it.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// Seeded from the clock (and the thread), returning the seed to print.
    pub fn from_clock() -> (Rng, u64) {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let tid = format!("{:?}", std::thread::current().id());
        let seed = tid
            .bytes()
            .fold(nanos ^ u64::from(std::process::id()), |h, b| {
                h.rotate_left(5) ^ u64::from(b)
            });
        (Rng(seed), seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..hi` (`hi > lo`).
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        assert!(hi > lo, "empty range {lo}..{hi}");
        lo + self.next_u64() % (hi - lo)
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}

/// The filler byte at index `i` of event `seq`'s body: derived from both, so a body that was
/// cut, shifted or mixed with another event's does not check.
fn filler_byte(seq: u64, i: usize) -> u8 {
    (seq.wrapping_mul(0x9E37_79B9).wrapping_add(i as u64 * 7) >> 3) as u8
}

/// The body of test event `seq`: its seq as 8 big-endian bytes, then `filler` bytes derived
/// from the seq.
pub fn seq_body(seq: u64, filler: usize) -> Vec<u8> {
    let mut b = Vec::with_capacity(8 + filler);
    b.extend_from_slice(&seq.to_be_bytes());
    b.extend((0..filler).map(|i| filler_byte(seq, i)));
    b
}

/// The seq of a body made by [`seq_body`], after checking every byte of it.
pub fn body_seq(body: &[u8]) -> Result<u64, String> {
    let head: [u8; 8] = body
        .get(..8)
        .and_then(|h| h.try_into().ok())
        .ok_or_else(|| format!("body of {} bytes is too short to hold a seq", body.len()))?;
    let seq = u64::from_be_bytes(head);
    if let Some(i) = (8..body.len()).find(|&i| body[i] != filler_byte(seq, i - 8)) {
        return Err(format!("event {seq}: filler byte {} is wrong", i - 8));
    }
    Ok(seq)
}

/// The seq of an event made from [`seq_body`]; panics on a damaged body.
pub fn event_seq(e: &Event) -> u64 {
    body_seq(e.body()).unwrap_or_else(|m| panic!("damaged event body: {m}"))
}

/// Puts the events `seqs` (bodies from [`seq_body`], `filler(seq)` filler bytes each) in one
/// transaction and commits it.
pub fn put_range(
    ch: &dyn Channel,
    seqs: Range<u64>,
    mut filler: impl FnMut(u64) -> usize,
) -> Result<(), ChannelError> {
    let mut tx = ch.put_transaction();
    for s in seqs {
        tx.put(Event::new(seq_body(s, filler(s))))?;
    }
    tx.commit()
}

/// Takes up to `max` events in one transaction and returns it with their seqs.
pub fn take_seqs(ch: &dyn Channel, max: usize) -> (Box<dyn TakeTransaction>, Vec<u64>) {
    let mut tx = ch.take_transaction();
    let mut out = vec![];
    while out.len() < max {
        let want = max - out.len();
        match tx.take_batch(want, &mut out) {
            Ok(0) => break,
            Ok(_) => {}
            // Full: the caller compares with what it expected (see `peek_all`).
            Err(ChannelError::TransactionFull { .. }) => break,
            Err(e) => panic!("take_batch failed: {e}"),
        }
    }
    let seqs = out.iter().map(event_seq).collect();
    (tx, seqs)
}

/// Every event in the channel, in take order, read with one take transaction that is then
/// rolled back (so nothing changes). The transaction capacity must be large enough; checked
/// against `stats().size`.
pub fn peek_all(ch: &dyn Channel) -> Vec<u64> {
    let size = ch.stats().size;
    let (tx, seqs) = take_seqs(ch, usize::MAX);
    tx.rollback();
    assert_eq!(
        seqs.len() as u64,
        size,
        "one take transaction saw {} events but stats().size says {size}",
        seqs.len()
    );
    seqs
}

/// Recursively copies a directory tree (files and directories only).
pub fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).expect("create copy dir");
    for entry in std::fs::read_dir(src).expect("read_dir") {
        let entry = entry.expect("dir entry");
        let ty = entry.file_type().expect("file type");
        let to = dst.join(entry.file_name());
        if ty.is_dir() {
            copy_dir(&entry.path(), &to);
        } else if ty.is_file() {
            std::fs::copy(entry.path(), &to).expect("copy file");
        }
    }
}

/// One record of a segment file, as the test reads the format itself (docs: `len u32 | crc
/// u32 | kind u8 | payload`, little-endian, after a 32-byte header).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawRecord {
    pub offset: u64,
    /// Header plus payload.
    pub len: u64,
    pub kind: u8,
    /// For put batches: the test seqs of the events (from their bodies), in order.
    pub seqs: Vec<u64>,
}

/// Segment header length (bytes before the first record).
pub const SEG_HEADER: u64 = 32;
/// Record header length.
pub const REC_HEADER: u64 = 9;

/// Walks the records of a segment image up to the first zero length field (or the end). Put
/// batch payloads are `first_seq u64 | ts u64 | body_bytes u64 | count u32 | events`, each
/// event `nheaders u32 | ... | blen u32 | body`; the tests put no headers.
pub fn parse_segment(buf: &[u8]) -> Vec<RawRecord> {
    let u32_at = |o: usize| u32::from_le_bytes(buf[o..o + 4].try_into().expect("4 bytes"));
    let mut out = vec![];
    let mut off = SEG_HEADER as usize;
    while off + 4 <= buf.len() {
        let len = u32_at(off) as usize;
        if len == 0 {
            break;
        }
        let end = off + REC_HEADER as usize + len;
        assert!(end <= buf.len(), "record at {off} runs past the end");
        let kind = buf[off + 8];
        let mut seqs = vec![];
        if kind == 1 {
            let p = off + REC_HEADER as usize;
            let count = u32_at(p + 24) as usize;
            let mut e = p + 28;
            for _ in 0..count {
                assert_eq!(u32_at(e), 0, "test events have no headers");
                let blen = u32_at(e + 4) as usize;
                let body = &buf[e + 8..e + 8 + blen];
                seqs.push(body_seq(body).expect("valid body in a put record"));
                e += 8 + blen;
            }
        }
        out.push(RawRecord {
            offset: off as u64,
            len: (end - off) as u64,
            kind,
            seqs,
        });
        off = end;
    }
    out
}

/// The segment files in `dir`, sorted by name (= by id).
pub fn segment_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .expect("read data dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("seg-") && n.ends_with(".log"))
        })
        .collect();
    v.sort();
    v
}

/// Checkpoint files in `dir` (not `.tmp` leftovers), oldest first.
pub fn checkpoint_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .expect("read checkpoint dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("checkpoint-") && !n.ends_with(".tmp"))
        })
        .collect();
    v.sort();
    v
}

/// Runs `open` (a file channel open), and if the channel's lock file is held, waits for the
/// holder to let go (a blocking shared `flock`, bounded by a deadline) and tries again.
///
/// Why a test needs this: tests in this binary spawn processes (the kill -9 child, the
/// `flumen` CLI) from several threads at once. A process spawned by one thread gets, between
/// fork and exec, a copy of every descriptor of this process, including the lock file of a
/// channel another thread is using; close-on-exec drops the copy only at exec. A flock belongs
/// to the open file description, so for that moment the copy keeps the lock, and a reopen of
/// a channel that was just closed can find it held. A lock that stays held fails the test at
/// the deadline.
pub fn open_waiting_for_lock<T>(
    mut open: impl FnMut() -> Result<T, ChannelError>,
) -> Result<T, ChannelError> {
    for _ in 0..3 {
        match open() {
            Err(ChannelError::Locked { lock, .. }) => {
                eprintln!("{} is held; waiting for it", lock.display());
                wait_for_lock(&lock, std::time::Duration::from_secs(20));
            }
            other => return other,
        }
    }
    open()
}

/// Blocks until a shared flock on `path` can be taken (then releases it), or panics after
/// `deadline`.
fn wait_for_lock(path: &Path, deadline: std::time::Duration) {
    let (tx, rx) = std::sync::mpsc::channel();
    let p = path.to_path_buf();
    std::thread::spawn(move || {
        // Dropping the file releases the shared lock at once.
        let r = std::fs::File::open(&p).and_then(|f| f.lock_shared());
        let _ = tx.send(r);
    });
    match rx.recv_timeout(deadline) {
        Ok(Ok(())) => {}
        Ok(Err(e)) => panic!("waiting for the lock {}: {e}", path.display()),
        Err(_) => panic!(
            "the channel lock {} is still held after {deadline:?}",
            path.display()
        ),
    }
}
