//! The queue's memory does not grow by a heap object per event: it holds one 16-byte entry per
//! committed put batch, whatever the batch size (docs/ARCHITECTURE.md, "Memory per queued
//! event").

use flumen::channel::file::FileChannel;
use flumen::channel::Channel;
use flumen::io::IoKind;
use flumen::Event;

use crate::common::test_config;

fn index_bytes_after(batches: usize, batch: usize) -> (usize, u64) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = test_config(dir.path(), IoKind::Std);
    cfg.fsync = flumen::channel::file::FsyncPolicy::Never;
    cfg.max_file_size = 1024 * 1024;
    let ch = FileChannel::open("mem", cfg).expect("open");
    let body = vec![7u8; 100];
    for _ in 0..batches {
        let mut tx = ch.put_transaction();
        for _ in 0..batch {
            tx.put(Event::new(body.clone())).expect("put");
        }
        tx.commit().expect("commit");
    }
    let size = ch.stats().size;
    let bytes = ch.index_bytes();
    ch.close().expect("close");
    (bytes, size)
}

#[test]
fn index_is_16_bytes_per_batch_not_per_event() {
    let (small_batches, n1) = index_bytes_after(4000, 1);
    let (big_batches, n2) = index_bytes_after(4000, 50);
    assert_eq!(n1, 4000);
    assert_eq!(n2, 200_000);
    // Sealed segments' entries are exact; only the active segment's Vec has growth slack.
    let slack = 16 * 4000;
    assert!(
        small_batches <= 16 * 4000 + slack,
        "4000 batches of 1 event took {small_batches} index bytes"
    );
    // 50x the events, same number of batches: the same index size.
    assert!(
        big_batches <= 16 * 4000 + slack,
        "4000 batches of 50 events took {big_batches} index bytes"
    );
    eprintln!(
        "index bytes per queued event: {:.3} at batch 1, {:.3} at batch 50",
        small_batches as f64 / n1 as f64,
        big_batches as f64 / n2 as f64
    );
}
