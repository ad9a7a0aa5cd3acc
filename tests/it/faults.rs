//! Injected I/O faults and power cuts on the in-memory filesystem (`flumen::io::mem::MemFs`):
//! failed writes and fdatasyncs poison the channel and nothing unacknowledged is reported
//! durable; ENOSPC at preallocation and `minimumRequiredSpace` refuse puts without poisoning
//! (and takes keep draining); torn appends after unsynced writes always recover.
//!
//! Every scenario runs on a fresh `MemFs`. Power loss is `MemFs::crash` (only synced bytes
//! survive) after the channel is dropped. Threads are synchronised with barriers and channels;
//! nothing sleeps.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use flumen::channel::file::{FileChannel, FileChannelConfig, FsyncPolicy, RecoveryReport};
use flumen::channel::{Channel, ChannelError};
use flumen::event::Event;
use flumen::io::mem::{FaultOp, MemFs};
use flumen::io::Vfs;

use crate::common::{parse_segment, peek_all, put_range, seq_body, take_seqs, Rng};

const EIO: i32 = 5;
const ENOSPC: i32 = 28;
const BATCH: u64 = 20;

fn mem_config() -> FileChannelConfig {
    let mut cfg = FileChannelConfig::new(Path::new("/ch"));
    cfg.max_file_size = 256 * 1024;
    cfg.minimum_required_space = 0;
    cfg.capacity = 1_000_000;
    // `peek_all` reads the whole channel in one take transaction.
    cfg.transaction_capacity = 1_000_000;
    cfg.fsync = FsyncPolicy::EveryCommit;
    cfg
}

fn open_mem(fs: &Arc<MemFs>, cfg: FileChannelConfig) -> (FileChannel, RecoveryReport) {
    let vfs: Arc<dyn Vfs> = fs.clone();
    FileChannel::open_with("faults", cfg, vfs)
        .unwrap_or_else(|e| panic!("open on MemFs failed: {e}"))
}

/// A channel on a new MemFs holding batches `0..batches`.
fn filled(batches: u64) -> (Arc<MemFs>, FileChannel) {
    let fs = Arc::new(MemFs::new());
    let (ch, _) = open_mem(&fs, mem_config());
    for i in 0..batches {
        put_batch(&ch, i).expect("put");
    }
    (fs, ch)
}

fn batch(i: u64) -> Range<u64> {
    i * BATCH..(i + 1) * BATCH
}

fn put_batch(ch: &FileChannel, i: u64) -> Result<(), ChannelError> {
    put_range(ch, batch(i), |s| (s % 97) as usize * 3)
}

/// The seqs of `batches` not in `taken`, in order.
fn untaken(batches: Range<u64>, taken: &[u64]) -> Vec<u64> {
    seqs_of(batches)
        .into_iter()
        .filter(|s| !taken.contains(s))
        .collect()
}

fn seqs_of(batches: Range<u64>) -> Vec<u64> {
    batches.flat_map(batch).collect()
}

/// Asserts `r` is `Poisoned` naming a segment file of the channel (and, if given, the
/// failed operation); returns the file.
fn assert_poisoned(
    r: Result<(), ChannelError>,
    operation: Option<&str>,
    fs: &MemFs,
    ctx: &str,
) -> PathBuf {
    match r {
        Err(ChannelError::Poisoned {
            file,
            operation: op,
            ..
        }) => {
            let name = file.file_name().and_then(|n| n.to_str()).unwrap_or("");
            let digits = name
                .strip_prefix("seg-")
                .and_then(|n| n.strip_suffix(".log"));
            let segment = file.parent() == Some(Path::new("/ch/data"))
                && digits.is_some_and(|d| d.len() == 20 && d.bytes().all(|b| b.is_ascii_digit()));
            // A take commit's first write is its copy in the take journal.
            let journal = file.parent() == Some(Path::new("/ch/checkpoint"))
                && (name == "take-journal-0.log" || name == "take-journal-1.log");
            assert!(
                segment || journal,
                "{ctx}: Poisoned names {}, neither a segment file nor the take journal",
                file.display()
            );
            assert!(
                fs.files().contains(&file),
                "{ctx}: Poisoned names {}, which does not exist",
                file.display()
            );
            if let Some(want) = operation {
                assert_eq!(op, want, "{ctx}: failed operation");
            }
            file
        }
        other => panic!("{ctx}: expected Poisoned, got {other:?}"),
    }
}

/// After poisoning: puts and takes commit with the same error, and stats say so.
fn assert_stays_poisoned(ch: &FileChannel, fs: &MemFs, file: &Path, ctx: &str) {
    let f = assert_poisoned(put_range(ch, 9_000_000..9_000_005, |_| 10), None, fs, ctx);
    assert_eq!(f, file, "{ctx}: a later put names the same file");
    let (tx, seqs) = take_seqs(ch, 5);
    let f = assert_poisoned(tx.commit(), None, fs, ctx);
    assert_eq!(
        f, file,
        "{ctx}: a later take ({seqs:?}) names the same file"
    );
    assert!(ch.stats().poisoned, "{ctx}: stats().poisoned");
}

/// Drops the channel, cuts the power, reopens on the same filesystem and returns the events.
fn crash_and_reopen(ch: FileChannel, fs: &Arc<MemFs>, cfg: FileChannelConfig) -> Vec<u64> {
    drop(ch);
    fs.crash();
    let (ch, _) = open_mem(fs, cfg);
    let got = peek_all(&ch);
    // The reopened channel works.
    put_range(&ch, 8_000_000..8_000_003, |_| 1).expect("put after recovery");
    got
}

// ---------------------------------------------------------------------------------------------
// (a) A failed write.

#[test]
fn write_error_poisons_and_reopen_recovers_exactly_the_acknowledged_commits() {
    for failing in ["put", "take"] {
        let ctx = format!("failed write of a {failing} commit");
        let (fs, ch) = filled(5);
        let (tx, seqs) = take_seqs(&ch, BATCH as usize);
        assert_eq!(seqs, seqs_of(0..1));
        tx.commit().expect("take commit");
        // A put commit's sync also covers the take record written before it.
        put_batch(&ch, 5).expect("put");

        fs.fail_nth(FaultOp::Write, 0, EIO);
        let file = if failing == "put" {
            assert_poisoned(put_batch(&ch, 6), Some("write"), &fs, &ctx)
        } else {
            let (tx, seqs) = take_seqs(&ch, BATCH as usize);
            assert_eq!(seqs, seqs_of(1..2));
            assert_poisoned(tx.commit(), Some("write"), &fs, &ctx)
        };
        assert_stays_poisoned(&ch, &fs, &file, &ctx);

        // Acknowledged: puts 0..=5, take of batch 0. The failed commit did nothing.
        let got = crash_and_reopen(ch, &fs, mem_config());
        assert_eq!(got, seqs_of(1..6), "{ctx}: recovered events");
    }
}

// ---------------------------------------------------------------------------------------------
// (b) A failed fdatasync.

#[test]
fn fdatasync_error_poisons_and_nothing_unsynced_is_acknowledged() {
    let ctx = "failed fdatasync of a put commit";
    let (fs, ch) = filled(4);
    let (tx, _) = take_seqs(&ch, BATCH as usize);
    tx.commit().expect("take commit");
    put_batch(&ch, 4).expect("put");

    fs.fail_nth(FaultOp::Sync, 0, EIO);
    let file = assert_poisoned(put_batch(&ch, 5), Some("fdatasync"), &fs, ctx);
    assert_stays_poisoned(&ch, &fs, &file, ctx);
    // Batch 5 was written but its sync failed: not acknowledged, and not durable.
    let got = crash_and_reopen(ch, &fs, mem_config());
    assert_eq!(got, seqs_of(1..5), "{ctx}: recovered events");
}

/// Take commits do not wait for their fdatasync (commit f6103b8: a flusher thread or the next
/// put's group sync makes them durable, at-least-once on power loss). So:
/// - once a later put commit returned Ok, the take is durable: its events never come back;
/// - if the sync after a take commit fails, the channel is poisoned and the taken events may
///   come back after the power cut, but then exactly once, in order, at the head, and no
///   acknowledged put is lost.
#[test]
fn take_commits_are_durable_after_the_next_sync_and_at_least_once_if_it_fails() {
    // A successful sync after the take commit.
    {
        let ctx = "take commit, then an acknowledged put";
        let (fs, ch) = filled(4);
        let (tx, seqs) = take_seqs(&ch, BATCH as usize);
        assert_eq!(seqs, seqs_of(0..1));
        tx.commit().expect("take commit");
        put_batch(&ch, 4).expect("put");
        let got = crash_and_reopen(ch, &fs, mem_config());
        assert_eq!(
            got,
            seqs_of(1..5),
            "{ctx}: the take came back after a power cut"
        );
    }
    // The first sync after the take commit fails.
    {
        let ctx = "failed fdatasync after a take commit";
        let (fs, ch) = filled(4);
        fs.fail_nth(FaultOp::Sync, 0, EIO);
        let (tx, seqs) = take_seqs(&ch, BATCH as usize);
        assert_eq!(seqs, seqs_of(0..1));
        let take_result = tx.commit();
        // Whatever syncs next (this put's group commit, or the flusher) fails.
        assert_poisoned(put_batch(&ch, 4), None, &fs, ctx);
        assert!(ch.stats().poisoned, "{ctx}: stats().poisoned");
        let got = crash_and_reopen(ch, &fs, mem_config());
        match take_result {
            // At-least-once: the take's record was never durable, so its events are back.
            Ok(()) => assert!(
                got == seqs_of(0..4) || got == seqs_of(1..4),
                "{ctx}: expected batches 0..4 (take undone) or 1..4, got {got:?}"
            ),
            Err(e) => {
                assert_poisoned(Err(e), Some("fdatasync"), &fs, ctx);
                assert_eq!(got, seqs_of(0..4), "{ctx}: a failed take leaves its events");
            }
        }
    }
}

/// What one thread of the concurrent test did.
#[derive(Default, Debug)]
struct Log {
    attempted: Vec<Range<u64>>,
    acked: Vec<Range<u64>>,
    /// For each acknowledged range: the ticket drawn before (puts) or after (takes) commit.
    acked_tickets: Vec<u64>,
    error: Option<ChannelError>,
}

/// The message of a thread's panic.
fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_string()))
        .unwrap_or_else(|| "(non-string panic)".into())
}

#[test]
fn fdatasync_error_with_concurrent_committers_acknowledges_only_durable_batches() {
    // The interleavings differ from round to round; each round is a fresh MemFs.
    const ROUNDS: u64 = 60;
    let (mut seeder, seed) = Rng::from_clock();
    for round in 0..ROUNDS {
        concurrent_sync_failure(&mut seeder, &format!("seed {seed}, round {round}"));
    }
}

fn concurrent_sync_failure(seeder: &mut Rng, ctx: &str) {
    const PRODUCERS: u64 = 4;
    let fs = Arc::new(MemFs::new());
    let (ch, _) = open_mem(&fs, mem_config());
    // Some group syncs succeed, then one fails while several committers wait on it.
    let fail_at = seeder.range(8, 40);
    fs.fail_nth(FaultOp::Sync, fail_at, EIO);
    let ctx = format!("{ctx}, sync #{fail_at} fails");

    // Orders events across threads: a producer draws a ticket before it commits (so before
    // its record is written), the consumer draws one after its take commit returned (so after
    // its record was written). A put acknowledged with a later ticket than a take's proves that
    // take durable: its group sync covered the whole log up to the put's record.
    let tickets = Arc::new(AtomicU64::new(0));
    let start = Arc::new(Barrier::new(PRODUCERS as usize + 1));
    let producers_done = Arc::new(AtomicBool::new(false));
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|t| {
            let (ch, start, tickets) = (ch.clone(), start.clone(), tickets.clone());
            let mut rng = Rng::new(seeder.next_u64());
            std::thread::spawn(move || {
                let mut log = Log::default();
                let mut next = t * 1_000_000;
                start.wait();
                for _ in 0..100_000 {
                    let n = rng.range(1, 21);
                    let b = next..next + n;
                    next += n;
                    log.attempted.push(b.clone());
                    let mut tx = ch.put_transaction();
                    for s in b.clone() {
                        let filler = rng.range(0, 200) as usize;
                        tx.put(Event::new(seq_body(s, filler))).expect("put");
                    }
                    let ticket = tickets.fetch_add(1, Ordering::SeqCst);
                    match tx.commit() {
                        Ok(()) => {
                            log.acked.push(b);
                            log.acked_tickets.push(ticket);
                        }
                        Err(e) => {
                            log.error = Some(e);
                            return log;
                        }
                    }
                }
                log
            })
        })
        .collect();
    let consumer = {
        let (ch, done, tickets) = (ch.clone(), producers_done.clone(), tickets.clone());
        std::thread::spawn(move || {
            let mut log = Log::default();
            loop {
                if !ch.wait_available(Duration::from_millis(50)) {
                    if done.load(Ordering::Acquire) || ch.stats().poisoned {
                        return log;
                    }
                    continue;
                }
                let (tx, seqs) = take_seqs(&ch, 15);
                let ranges: Vec<Range<u64>> = seqs.iter().map(|&s| s..s + 1).collect();
                log.attempted.extend(ranges.iter().cloned());
                match tx.commit() {
                    Ok(()) => {
                        let ticket = tickets.fetch_add(1, Ordering::SeqCst);
                        log.acked_tickets.extend(ranges.iter().map(|_| ticket));
                        log.acked.extend(ranges);
                    }
                    Err(e) => {
                        log.error = Some(e);
                        return log;
                    }
                }
            }
        })
    };
    start.wait();
    let logs: Vec<Result<Log, String>> = producers
        .into_iter()
        .map(|p| p.join().map_err(|e| panic_message(&*e)))
        .collect();
    producers_done.store(true, Ordering::Release);
    let takes = consumer
        .join()
        .unwrap_or_else(|e| panic!("{ctx}: the consumer panicked: {}", panic_message(&*e)));
    let logs: Vec<Log> = logs
        .into_iter()
        .enumerate()
        .map(|(t, l)| {
            l.unwrap_or_else(|m| panic!("{ctx}: producer {t} panicked inside commit: {m}"))
        })
        .collect();

    let mut saw_sync_failure = false;
    for (t, log) in logs.iter().enumerate() {
        let e = log
            .error
            .clone()
            .unwrap_or_else(|| panic!("{ctx}: producer {t} never failed: the fault did not fire"));
        if matches!(&e, ChannelError::Poisoned { operation, .. } if *operation == "fdatasync") {
            saw_sync_failure = true;
        }
        assert_poisoned(Err(e), None, &fs, &ctx);
    }
    assert!(
        saw_sync_failure,
        "{ctx}: every producer failed, but none with fdatasync"
    );
    assert!(ch.stats().poisoned, "{ctx}: stats().poisoned");
    let acked_puts: usize = logs.iter().map(|l| l.acked.len()).sum();

    let last_put_ticket = logs
        .iter()
        .flat_map(|l| l.acked_tickets.iter().copied())
        .max()
        .unwrap_or(0);
    let got = crash_and_reopen(ch, &fs, mem_config());
    let contains = |set: &[Range<u64>], s: u64| set.iter().any(|r| r.contains(&s));
    let mut present = std::collections::HashSet::new();
    for &s in &got {
        assert!(present.insert(s), "{ctx}: event {s} recovered twice");
        let log = &logs[(s / 1_000_000) as usize];
        assert!(
            contains(&log.attempted, s),
            "{ctx}: recovered event {s} was never put"
        );
        // A take acknowledged before some acknowledged put started committing was durable.
        if let Some(i) = takes.acked.iter().position(|r| r.contains(&s)) {
            assert!(
                takes.acked_tickets[i] > last_put_ticket,
                "{ctx}: event {s} came back although its take commit returned Ok (ticket {}) \
                 and a later put commit (ticket {last_put_ticket}) returned Ok",
                takes.acked_tickets[i]
            );
        }
    }
    for log in &logs {
        for r in &log.acked {
            for s in r.clone() {
                assert!(
                    present.contains(&s) || contains(&takes.attempted, s),
                    "{ctx}: acknowledged event {s} is missing after the power cut"
                );
            }
        }
    }
    // Each producer's events come back in its commit order (FIFO).
    for t in 0..PRODUCERS {
        let mine: Vec<u64> = got.iter().copied().filter(|s| s / 1_000_000 == t).collect();
        assert!(
            mine.windows(2).all(|w| w[0] < w[1]),
            "{ctx}: producer {t}'s events out of order: {mine:?}"
        );
    }
    assert!(
        acked_puts > 0,
        "{ctx}: no put was acknowledged before the fault"
    );
}

// ---------------------------------------------------------------------------------------------
// (c) ENOSPC while preallocating.

fn enospc_case(ctx: &str, max_file_size: u64, events_per_batch: u64, filler: usize) {
    let fs = Arc::new(MemFs::new());
    let mut cfg = mem_config();
    cfg.max_file_size = max_file_size;
    let (ch, _) = open_mem(&fs, cfg.clone());
    // The next preallocation, whenever the log needs one, fails with ENOSPC.
    fs.fail_nth(FaultOp::Allocate, 0, ENOSPC);
    let mut acked: Vec<u64> = vec![];
    let mut next = 0;
    let refused = loop {
        assert!(next < 100_000, "{ctx}: no preallocation happened");
        let b = next..next + events_per_batch;
        match put_range(&ch, b.clone(), |_| filler) {
            Ok(()) => {
                acked.extend(b);
                next += events_per_batch;
            }
            Err(e) => break (e, b),
        }
    };
    match &refused.0 {
        ChannelError::DiskFull { .. } => {}
        other => panic!("{ctx}: expected DiskFull, got {other:?}"),
    }
    let stats = ch.stats();
    assert!(
        !stats.poisoned,
        "{ctx}: ENOSPC at preallocation must not poison"
    );
    assert_eq!(
        stats.size,
        acked.len() as u64,
        "{ctx}: the refused put is not visible"
    );
    // The same events again, in a new transaction: accepted now.
    put_range(&ch, refused.1.clone(), |_| filler).expect("the next commit succeeds");
    acked.extend(refused.1.clone());
    next = refused.1.end;
    for _ in 0..5 {
        let b = next..next + events_per_batch;
        put_range(&ch, b.clone(), |_| filler).expect("later commits succeed");
        acked.extend(b);
        next += events_per_batch;
    }
    // Takes work, in order, and the events read back intact.
    let (tx, seqs) = take_seqs(&ch, events_per_batch as usize);
    assert_eq!(seqs, acked[..seqs.len()], "{ctx}: take order");
    tx.commit().expect("take commit");
    let rest = acked[events_per_batch as usize..].to_vec();
    assert_eq!(peek_all(&ch), rest, "{ctx}: before the crash");
    // A put after the take makes the take record durable (its group sync covers it).
    let b = next..next + 1;
    put_range(&ch, b.clone(), |_| 1).expect("put");
    let mut want = rest;
    want.extend(b);
    let got = crash_and_reopen(ch, &fs, cfg);
    assert_eq!(got, want, "{ctx}: after a power cut");
}

#[test]
fn enospc_at_preallocation_refuses_the_put_without_poisoning() {
    // Extending the preallocation inside a segment (8 MiB steps).
    enospc_case("ENOSPC extending a segment", 64 * 1024 * 1024, 8, 64 * 1024);
    // Creating the next segment at a roll.
    enospc_case("ENOSPC creating a segment", 64 * 1024, 10, 1000);
}

// ---------------------------------------------------------------------------------------------
// (d) minimumRequiredSpace.

/// With free space below the floor: puts refused, takes drain, rollback returns events.
#[test]
fn below_minimum_required_space_the_spare_segments_are_deleted_first() {
    let fs = Arc::new(MemFs::new());
    let mut cfg = mem_config();
    cfg.minimum_required_space = 100 * 1024 * 1024;
    // Close to the floor, so every put checks the free space.
    fs.set_free_space(cfg.minimum_required_space + 4 * 1024 * 1024);
    let (ch, _) = open_mem(&fs, cfg.clone());
    let spares = || {
        fs.list(Path::new("/ch/data"))
            .expect("list")
            .into_iter()
            .filter(|p| p.to_string_lossy().contains("spare-"))
            .count()
    };
    // About 3 KiB per batch: 400 span several 256 KiB segments.
    for i in 0..400 {
        put_batch(&ch, i).expect("put");
    }
    let (tx, _) = take_seqs(&ch, usize::MAX);
    tx.commit().expect("take");
    ch.checkpoint().expect("checkpoint");
    ch.checkpoint().expect("checkpoint");
    assert_eq!(spares(), 2, "finished segments kept as spares");
    fs.set_free_space(cfg.minimum_required_space - 1);
    assert!(matches!(
        put_batch(&ch, 400),
        Err(ChannelError::DiskFull { .. })
    ));
    assert_eq!(spares(), 0, "spares are given back before a put is refused");
    fs.set_free_space(cfg.minimum_required_space + 4 * 1024 * 1024);
    put_batch(&ch, 401).expect("put once space is back");
    ch.close().expect("close");
}

fn drain_below_floor(ch: &FileChannel, min: u64, first: u64, ctx: &str) {
    match put_batch(ch, 100) {
        Err(ChannelError::DiskFull { required, free, .. }) => {
            assert_eq!(required, min, "{ctx}: DiskFull.required");
            assert!(free < min, "{ctx}: DiskFull.free {free}");
        }
        other => panic!("{ctx}: expected DiskFull, got {other:?}"),
    }
    assert!(
        !ch.stats().poisoned,
        "{ctx}: refusing a put must not poison"
    );
    let (tx, seqs) = take_seqs(ch, 2 * BATCH as usize);
    assert_eq!(
        seqs,
        seqs_of(first..first + 2),
        "{ctx}: take below the floor"
    );
    tx.commit().expect("take commit below the floor");
    let (tx, seqs) = take_seqs(ch, BATCH as usize);
    assert_eq!(seqs, seqs_of(first + 2..first + 3), "{ctx}");
    tx.rollback();
    let (tx, seqs) = take_seqs(ch, BATCH as usize);
    assert_eq!(
        seqs,
        seqs_of(first + 2..first + 3),
        "{ctx}: rolled-back events come back first, in order"
    );
    tx.commit().expect("take commit below the floor");
}

#[test]
fn below_minimum_required_space_puts_are_refused_but_the_channel_drains() {
    // Free space already below the floor when the channel opens.
    {
        let ctx = "below the floor at open";
        let min = 100 * 1024 * 1024;
        let fs = Arc::new(MemFs::new());
        let mut cfg = mem_config();
        cfg.minimum_required_space = min;
        let (ch, _) = open_mem(&fs, cfg.clone());
        for i in 0..5 {
            put_batch(&ch, i).expect("put");
        }
        ch.close().expect("close");
        drop(ch);
        fs.set_free_space(min - 1);
        let (ch, _) = open_mem(&fs, cfg.clone());
        drain_below_floor(&ch, min, 0, ctx);
        assert_eq!(peek_all(&ch), seqs_of(3..5), "{ctx}");
        // Space comes back: puts are accepted again.
        fs.set_free_space(min + 1024 * 1024);
        put_batch(&ch, 5).expect("put once space is back");
        let got = crash_and_reopen(ch, &fs, cfg);
        assert_eq!(got, seqs_of(3..6), "{ctx}: after a power cut");
    }
    // Free space drops below the floor while the channel runs (it is already close to the
    // floor, so every put checks).
    {
        let ctx = "falling below the floor while running";
        let min = 1024 * 1024 * 1024;
        let fs = Arc::new(MemFs::new());
        fs.set_free_space(min + 1024 * 1024);
        let mut cfg = mem_config();
        cfg.minimum_required_space = min;
        let (ch, _) = open_mem(&fs, cfg.clone());
        for i in 0..5 {
            put_batch(&ch, i).expect("put above the floor");
        }
        fs.set_free_space(min - 1);
        drain_below_floor(&ch, min, 0, ctx);
        fs.set_free_space(min + 1024 * 1024);
        put_batch(&ch, 5).expect("put once space is back");
        let got = crash_and_reopen(ch, &fs, cfg);
        assert_eq!(got, seqs_of(3..6), "{ctx}: after a power cut");
    }
}

// ---------------------------------------------------------------------------------------------
// (e) Power cut with a torn append.

/// A channel left with synced and unsynced commits, not closed.
struct Unsynced {
    fs: Arc<MemFs>,
    cfg: FileChannelConfig,
    /// Events that must survive any crash (synced).
    synced: Vec<u64>,
    /// Batches whose records were written after the last sync, in log order.
    unsynced: Vec<Range<u64>>,
}

/// fsync = never: commits are written and applied, made durable only by the checkpoint.
fn unsynced_by_policy() -> Unsynced {
    let fs = Arc::new(MemFs::new());
    let mut cfg = mem_config();
    cfg.fsync = FsyncPolicy::Never;
    let (ch, _) = open_mem(&fs, cfg.clone());
    for i in 0..4 {
        put_batch(&ch, i).expect("put");
    }
    let (tx, _) = take_seqs(&ch, BATCH as usize);
    tx.commit().expect("take");
    ch.checkpoint().expect("checkpoint (syncs the log)");
    for i in 4..10 {
        put_batch(&ch, i).expect("put");
    }
    // As kill -9 right before the power cut: no final checkpoint.
    ch.simulate_crash();
    drop(ch);
    Unsynced {
        fs,
        cfg,
        synced: seqs_of(1..4),
        unsynced: (4..10).map(batch).collect(),
    }
}

/// fsync = every-commit, and the sync of the last commit fails (so it is written, not synced).
fn unsynced_by_failed_sync() -> Unsynced {
    let fs = Arc::new(MemFs::new());
    let cfg = mem_config();
    let (ch, _) = open_mem(&fs, cfg.clone());
    for i in 0..4 {
        put_batch(&ch, i).expect("put");
    }
    let (tx, _) = take_seqs(&ch, BATCH as usize);
    tx.commit().expect("take");
    put_batch(&ch, 4).expect("put");
    fs.fail_nth(FaultOp::Sync, 0, EIO);
    assert_poisoned(put_batch(&ch, 5), Some("fdatasync"), &fs, "setup");
    drop(ch);
    Unsynced {
        fs,
        cfg,
        synced: seqs_of(1..5),
        unsynced: vec![batch(5)],
    }
}

/// The newest segment file.
fn newest_segment(fs: &MemFs) -> PathBuf {
    fs.files()
        .into_iter()
        .filter(|p| p.parent() == Some(Path::new("/ch/data")))
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .max()
        .expect("a segment")
}

/// The newest segment's images before the power cut, and where they differ.
struct Region {
    seg: PathBuf,
    live: Vec<u8>,
    durable: Vec<u8>,
    /// The first unsynced byte (the start of the first unsynced record).
    start: u64,
    /// The unsynced records, as (offset, end).
    recs: Vec<(u64, u64)>,
}

/// Reads the newest segment's live and durable images and finds the unsynced records.
fn unsynced_region(fs: &MemFs) -> Region {
    let seg = newest_segment(fs);
    let live = fs.read_live(&seg).expect("live image");
    let durable = fs.durable_image(&seg).expect("durable image");
    assert_eq!(
        live.len(),
        durable.len(),
        "the segment is preallocated: writes overwrite synced zeros, they do not append"
    );
    let recs: Vec<(u64, u64)> = parse_segment(&live)
        .into_iter()
        .map(|r| (r.offset, r.offset + r.len))
        .filter(|&(o, e)| live[o as usize..e as usize] != durable[o as usize..e as usize])
        .collect();
    let a = recs.first().expect("unsynced records").0;
    assert_eq!(
        live[..a as usize],
        durable[..a as usize],
        "only the tail is unsynced"
    );
    Region {
        seg,
        live,
        durable,
        start: a,
        recs,
    }
}

fn check_recovered(got: &[u64], u: &Unsynced, ctx: &str) {
    // synced ++ a whole-batch prefix of the unsynced batches, in order.
    assert!(
        got.len() >= u.synced.len() && got[..u.synced.len()] == u.synced[..],
        "{ctx}: synced commits missing: got {got:?}"
    );
    let mut rest = &got[u.synced.len()..];
    for b in &u.unsynced {
        if rest.is_empty() {
            break;
        }
        let want: Vec<u64> = b.clone().collect();
        assert!(
            rest.len() >= want.len() && rest[..want.len()] == want[..],
            "{ctx}: after the synced events, expected whole unsynced batches in order, got {rest:?}"
        );
        rest = &rest[want.len()..];
    }
    assert!(rest.is_empty(), "{ctx}: unexpected events {rest:?}");
}

#[test]
fn power_cut_with_a_torn_append_always_recovers_the_synced_commits() {
    type Build = fn() -> Unsynced;
    let builds: [(&str, Build); 2] = [
        ("fsync = never", unsynced_by_policy),
        ("failed fdatasync", unsynced_by_failed_sync),
    ];
    for (what, build) in builds {
        // Learn the layout once (record sizes do not depend on the run).
        let probe = build();
        let Region { start: a, recs, .. } = unsynced_region(&probe.fs);
        drop(probe);
        let total = recs.last().expect("records").1 - a;
        let mut ks: Vec<u64> = vec![0, 1, 3, 4, 8, 9, 10, 37];
        for &(o, e) in &recs {
            ks.extend([o - a + 1, e - a - 1, e - a, e - a + 1]);
        }
        ks.extend([total, total + 100, 1 << 20]);
        ks.sort_unstable();
        ks.dedup();

        for &k in &ks {
            // MemFs::crash_keeping: keeps k bytes of an append. The channel preallocates its
            // segments, so its records overwrite synced zeros rather than append, and this
            // keeps nothing of them; it must still recover the synced commits.
            let u = build();
            let ctx = format!("{what}, crash_keeping({k})");
            u.fs.crash_keeping(k as usize);
            let (ch, rep) = FileChannel::open_with("faults", u.cfg.clone(), u.fs.clone())
                .unwrap_or_else(|e| panic!("{ctx}: reopen failed: {e}"));
            assert!(rep.corrupt.is_empty(), "{ctx}: {rep:?}");
            check_recovered(&peek_all(&ch), &u, &ctx);
            drop(ch);

            // The torn write itself: the first k unsynced bytes reached the disk, the rest of
            // the preallocated tail is still zeros.
            let u = build();
            let ctx = format!("{what}, first {k} unsynced bytes kept");
            let Region {
                seg,
                live,
                durable,
                start: a,
                recs,
            } = unsynced_region(&u.fs);
            u.fs.crash();
            let cut = (a + k).min(live.len() as u64) as usize;
            let mut torn = durable[..a as usize].to_vec();
            torn.extend_from_slice(&live[a as usize..cut]);
            torn.extend_from_slice(&durable[cut..]);
            u.fs.write_live(&seg, torn);
            let (ch, rep) = FileChannel::open_with("faults", u.cfg.clone(), u.fs.clone())
                .unwrap_or_else(|e| panic!("{ctx}: reopen failed: {e}"));
            assert!(rep.corrupt.is_empty(), "{ctx}: {rep:?}");
            assert_eq!(rep.events_lost, 0, "{ctx}: {rep:?}");
            // Exactly the unsynced records that were kept whole.
            let kept = recs.iter().filter(|&&(_, e)| e as usize <= cut).count();
            let mut want = u.synced.clone();
            for b in &u.unsynced[..kept] {
                want.extend(b.clone());
            }
            assert_eq!(peek_all(&ch), want, "{ctx}: recovered events");
            // A record cut in the middle is a torn tail, reported at its start.
            let partial = recs
                .iter()
                .find(|&&(o, e)| (o as usize) < cut && cut < e as usize);
            match partial {
                Some(&(o, _)) if live[o as usize..cut].iter().any(|&b| b != 0) => {
                    let t = rep
                        .torn_tail
                        .as_ref()
                        .unwrap_or_else(|| panic!("{ctx}: no torn tail: {rep:?}"));
                    assert_eq!((t.file.as_path(), t.offset), (seg.as_path(), o), "{ctx}");
                }
                _ => assert!(rep.torn_tail.is_none(), "{ctx}: {rep:?}"),
            }
            drop(ch);
        }
    }
}

/// A roll whose new segment cannot be made (ENOSPC) refuses that put without poisoning; the
/// active segment stays in use for what still fits, and a later roll succeeds once space is
/// back. (The roll makes the next segment before sealing the old one, so a sealed segment is
/// never written again.)
#[test]
fn a_failed_roll_leaves_the_active_segment_usable() {
    let fs = Arc::new(MemFs::new());
    let mut cfg = mem_config();
    cfg.max_file_size = 64 * 1024;
    let (ch, _) = open_mem(&fs, cfg.clone());
    // Six 10-event batches of ~1 KiB bodies fill most of the 64 KiB segment.
    for b in 0..6u64 {
        put_range(&ch, b * 10..(b + 1) * 10, |_| 1000).expect("fits in the first segment");
    }
    // The next allocation is the new segment's, made by the roll the 7th batch needs.
    fs.fail_nth(FaultOp::Allocate, 0, ENOSPC);
    match put_range(&ch, 60..70, |_| 1000) {
        Err(ChannelError::DiskFull { .. }) => {}
        other => panic!("expected DiskFull from the failed roll, got {other:?}"),
    }
    assert!(
        !ch.stats().poisoned,
        "ENOSPC before any write must not poison"
    );
    // A small batch still fits in the first segment, and must be readable.
    put_range(&ch, 60..61, |_| 10).expect("small put into the still-active segment");
    let (tx, seqs) = take_seqs(&ch, 100);
    assert_eq!(seqs, (0..61).collect::<Vec<_>>());
    tx.commit().expect("take commit");
    // With space back, the roll succeeds.
    put_range(&ch, 61..71, |_| 1000).expect("roll after space returns");
    assert_eq!(peek_all(&ch), (61..71).collect::<Vec<_>>());
    ch.simulate_crash();
    drop(ch);
    fs.crash();
    let (ch, _) = open_mem(&fs, cfg);
    assert_eq!(peek_all(&ch), (61..71).collect::<Vec<_>>());
}

/// A take commit returns before its record reaches the log (it waits in memory for the next
/// group write), so the take journal must carry it across a process crash: the taken events
/// never come back. The flusher writes the record within a few milliseconds, so the crash is
/// retried until one lands before that (recovery then reports the journal entry it applied);
/// every attempt must keep the taken events out.
#[test]
fn takes_committed_just_before_a_process_crash_stay_taken() {
    let mut from_journal = 0;
    for attempt in 0..50 {
        let (fs, ch) = filled(4);
        let (tx, taken) = take_seqs(&ch, BATCH as usize + 3);
        tx.commit().expect("take commit");
        // A process crash: every byte the process wrote survives (no MemFs::crash), the
        // records still staged in memory do not.
        ch.simulate_crash();
        drop(ch);
        let (ch, report) = open_mem(&fs, mem_config());
        let want = untaken(0..4, &taken);
        assert_eq!(
            peek_all(&ch),
            want,
            "attempt {attempt}: taken events came back, or others went missing"
        );
        from_journal += report.journal_takes;
        if from_journal > 0 {
            return;
        }
    }
    panic!("in 50 attempts the take record always reached the log before the crash: the journal path was never exercised");
}

/// With no space left for the take journal, a take commit writes its staged record into the
/// segment itself before returning (preallocated space), so it still succeeds, does not
/// poison, and stays taken across a process crash.
#[test]
fn a_take_commit_without_journal_space_writes_its_record_and_stays_taken() {
    let (fs, ch) = filled(3);
    // The journal's first append reserves its space: refuse that.
    fs.fail_nth(FaultOp::Allocate, 0, ENOSPC);
    let (tx, taken) = take_seqs(&ch, BATCH as usize);
    tx.commit()
        .expect("a take commit must not fail for lack of journal space");
    assert!(!ch.stats().poisoned, "no journal space must not poison");
    ch.simulate_crash();
    drop(ch);
    let (ch, report) = open_mem(&fs, mem_config());
    let want = untaken(0..3, &taken);
    assert_eq!(peek_all(&ch), want, "taken events came back");
    assert_eq!(
        report.journal_takes, 0,
        "the record was in the log, not only the journal"
    );
}
