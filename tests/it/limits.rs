//! The file channel's limits and modes as a user configures them: capacity with keep-alive
//! (ChannelFull, then room after a take), transactionCapacity, byteCapacity, several data
//! dirs, the relaxed fsync policies, spare segments, and what dropping a channel does.

use std::time::{Duration, Instant};

use flumen::channel::file::{FileChannel, FsyncPolicy};
use flumen::channel::{Channel, ChannelError};
use flumen::io::IoKind;

use crate::common::{peek_all, put_range, take_seqs, test_config};

#[test]
fn a_full_channel_waits_keep_alive_then_refuses_and_a_take_makes_room() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = test_config(dir.path(), IoKind::Std);
    cfg.capacity = 10;
    cfg.transaction_capacity = 10;
    cfg.keep_alive = Duration::from_millis(50);
    let ch = FileChannel::open("full", cfg).expect("open");
    put_range(&ch, 0..10, |_| 10).expect("fill to capacity");
    let t = Instant::now();
    match put_range(&ch, 10..11, |_| 10) {
        Err(ChannelError::ChannelFull { limit, .. }) => assert!(limit.contains("capacity 10")),
        other => panic!("expected ChannelFull, got {other:?}"),
    }
    assert!(
        t.elapsed() >= Duration::from_millis(50),
        "waited keep-alive"
    );
    let (tx, seqs) = take_seqs(&ch, 3);
    assert_eq!(seqs, vec![0, 1, 2]);
    tx.commit().expect("take commit");
    put_range(&ch, 10..13, |_| 10).expect("room after the take");
    assert_eq!(peek_all(&ch), (3..13).collect::<Vec<_>>());
    ch.close().expect("close");
}

#[test]
fn transaction_capacity_and_byte_capacity_are_enforced() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = test_config(dir.path(), IoKind::Std);
    cfg.transaction_capacity = 5;
    cfg.byte_capacity = Some(1000);
    cfg.keep_alive = Duration::from_millis(20);
    let ch = FileChannel::open("limits", cfg).expect("open");
    match put_range(&ch, 0..6, |_| 1) {
        Err(ChannelError::TransactionFull { capacity: 5, .. }) => {}
        other => panic!("expected TransactionFull, got {other:?}"),
    }
    // Bodies are 8 bytes of seq + filler: 5 x 150 = 750 bytes fit, 5 more do not.
    put_range(&ch, 0..5, |_| 142).expect("750 bytes");
    match put_range(&ch, 5..10, |_| 142) {
        Err(ChannelError::ChannelFull { limit, .. }) => assert!(limit.contains("byteCapacity")),
        other => panic!("expected ChannelFull on bytes, got {other:?}"),
    }
    assert_eq!(ch.stats().bytes, 750);
    ch.close().expect("close");
}

#[test]
fn segments_rotate_across_data_dirs_and_reopen_finds_them_all() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = test_config(dir.path(), IoKind::Std);
    cfg.data_dirs = vec![dir.path().join("d1"), dir.path().join("d2")];
    let ch = FileChannel::open("dirs", cfg.clone()).expect("open");
    for b in 0..60u64 {
        put_range(&ch, b * 100..(b + 1) * 100, |_| 200).expect("put");
    }
    ch.close().expect("close");
    drop(ch);
    for d in &cfg.data_dirs {
        let segs = std::fs::read_dir(d)
            .expect("data dir")
            .filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.file_name().to_string_lossy().starts_with("seg-"))
            })
            .count();
        assert!(segs >= 2, "{} holds {segs} segments", d.display());
    }
    let ch = FileChannel::open("dirs", cfg).expect("reopen");
    assert_eq!(peek_all(&ch), (0..6000).collect::<Vec<_>>());
    ch.close().expect("close");
}

/// A library user who drops a channel without `close()` gets what close gives: its final
/// checkpoint and its directory lock released at once, so the same directories reopen in the
/// same process straight away. (The background threads once kept it alive until their next
/// tick, 30 s by default, and the reopen failed as "in use by another process".)
#[test]
fn dropping_the_last_handle_closes_the_channel_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = test_config(dir.path(), IoKind::Std);
    cfg.checkpoint_interval = Duration::from_secs(3600);
    for round in 0..3u64 {
        let (ch, report) =
            FileChannel::open_with("dropped", cfg.clone(), flumen::io::backend(IoKind::Std))
                .unwrap_or_else(|e| panic!("reopen {round} after a drop: {e}"));
        if round > 0 {
            assert_eq!(
                report.records_replayed, 0,
                "dropping the channel wrote its final checkpoint"
            );
        }
        assert_eq!(peek_all(&ch), (0..round * 10).collect::<Vec<_>>());
        put_range(&ch, round * 10..(round + 1) * 10, |_| 100).expect("put");
        drop(ch);
    }
}

#[test]
fn relaxed_fsync_policies_sync_in_the_background_or_not_at_all() {
    for (policy, expect_background_syncs) in [
        (FsyncPolicy::Interval(Duration::from_millis(10)), true),
        (FsyncPolicy::Never, false),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cfg = test_config(dir.path(), IoKind::Std);
        cfg.fsync = policy;
        let ch = FileChannel::open("relaxed", cfg.clone()).expect("open");
        let before = ch.stats().fsyncs;
        put_range(&ch, 0..100, |_| 100).expect("put");
        // Visible at once, without a sync.
        assert_eq!(ch.stats().size, 100);
        if expect_background_syncs {
            let deadline = Instant::now() + Duration::from_secs(10);
            while ch.stats().fsyncs == before {
                assert!(Instant::now() < deadline, "{policy:?}: no background fsync");
                std::thread::yield_now();
            }
        } else {
            assert_eq!(
                ch.stats().fsyncs,
                before,
                "{policy:?} must not fsync on commit"
            );
        }
        // A process crash loses nothing under either policy: the page cache survives.
        ch.simulate_crash();
        drop(ch);
        let ch = FileChannel::open("relaxed", cfg).expect("reopen");
        assert_eq!(peek_all(&ch), (0..100).collect::<Vec<_>>(), "{policy:?}");
        ch.close().expect("close");
    }
}

/// Files in `dir` whose names start with `prefix`, with their inode numbers, sorted.
fn files_with_inodes(dir: &std::path::Path, prefix: &str) -> Vec<(String, u64)> {
    use std::os::unix::fs::MetadataExt;
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .expect("data dir")
        .map(|e| e.expect("entry"))
        .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
        .map(|e| {
            let ino = e.metadata().expect("metadata").ino();
            (e.file_name().to_string_lossy().into_owned(), ino)
        })
        .collect();
    v.sort();
    v
}

#[test]
fn finished_segments_are_kept_as_spares_and_reused_without_resurrecting_old_events() {
    for spares in [2usize, 0] {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cfg = test_config(dir.path(), IoKind::Std);
        cfg.spare_segments = spares;
        let data = cfg.data_dirs[0].clone();
        let ch = FileChannel::open("spares", cfg.clone()).expect("open");
        for b in 0..40u64 {
            put_range(&ch, b * 100..(b + 1) * 100, |_| 200).expect("put");
        }
        let (tx, _) = take_seqs(&ch, 4000);
        tx.commit().expect("take");
        ch.checkpoint().expect("checkpoint");
        ch.checkpoint().expect("checkpoint");
        let kept = files_with_inodes(&data, "spare-");
        assert_eq!(
            kept.len(),
            spares,
            "spareSegments = {spares}: finished segments beyond it are deleted: {kept:?}"
        );
        assert_eq!(
            files_with_inodes(&data, "seg-").len(),
            1,
            "only the active one"
        );
        let shown =
            flumen::channel::file::tools::inspect(&[dir.path().to_path_buf()]).expect("inspect");
        assert_eq!(shown.spares.len(), spares, "inspect lists the spares");

        // New segments take the spares' files (same inodes) before any fresh file. Their old
        // records (events 0..4000, all taken) must never come back: not while running, not
        // after a crash, not after a clean reopen.
        for b in 40..80u64 {
            put_range(&ch, b * 100..(b + 1) * 100, |_| 200).expect("put");
        }
        let segs = files_with_inodes(&data, "seg-");
        let reused = segs
            .iter()
            .filter(|(_, ino)| kept.iter().any(|(_, k)| k == ino))
            .count();
        assert_eq!(reused, spares, "segments {segs:?} vs spares {kept:?}");
        assert!(files_with_inodes(&data, "spare-").is_empty());
        assert_eq!(peek_all(&ch), (4000..8000).collect::<Vec<_>>());
        ch.simulate_crash();
        drop(ch);
        let ch = FileChannel::open("spares", cfg.clone()).expect("reopen after a crash");
        assert_eq!(peek_all(&ch), (4000..8000).collect::<Vec<_>>());
        ch.close().expect("close");
        let (ch, report) =
            FileChannel::open_with("spares", cfg.clone(), flumen::io::backend(IoKind::Std))
                .expect("reopen");
        assert!(
            report.torn_tail.is_none(),
            "a clean close leaves no torn tail: {report:?}"
        );
        assert_eq!(peek_all(&ch), (4000..8000).collect::<Vec<_>>());
        ch.close().expect("close");
    }
}

#[test]
fn finished_segments_are_deleted_once_no_checkpoint_needs_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = test_config(dir.path(), IoKind::Std);
    let data = cfg.data_dirs[0].clone();
    let segments = || {
        std::fs::read_dir(&data)
            .expect("data dir")
            .filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.file_name().to_string_lossy().starts_with("seg-"))
            })
            .count()
    };
    let ch = FileChannel::open("gc", cfg).expect("open");
    for b in 0..40u64 {
        put_range(&ch, b * 100..(b + 1) * 100, |_| 200).expect("put");
    }
    let before = segments();
    assert!(
        before >= 4,
        "the log should span several segments, has {before}"
    );
    // Half taken: the segments holding only taken events may go, the rest must stay.
    let (tx, _) = take_seqs(&ch, 2000);
    tx.commit().expect("take");
    ch.checkpoint().expect("checkpoint");
    ch.checkpoint().expect("checkpoint");
    let half = segments();
    assert!(
        half < before && half >= 2,
        "{before} -> {half} segments after taking half"
    );
    assert_eq!(peek_all(&ch), (2000..4000).collect::<Vec<_>>());
    let (tx, _) = take_seqs(&ch, 2000);
    tx.commit().expect("take");
    // Two checkpoints: the older retained one must no longer need the old segments either.
    ch.checkpoint().expect("checkpoint");
    ch.checkpoint().expect("checkpoint");
    assert_eq!(
        segments(),
        1,
        "only the active segment remains once everything is taken"
    );
    ch.close().expect("close");
}
