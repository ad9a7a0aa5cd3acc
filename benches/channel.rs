//! Criterion benchmarks of the channels, driven by the same workload as `flumen bench channel`
//! (`flumen::cli::bench::run_workload`), so figures from both agree in meaning: every
//! iteration moves events through put and take transactions and checks each arrived once.
//!
//! Groups: the memory channel and the file channel (fsync every-commit and never) with one
//! producer and one consumer moving 1 KB events in batches of 100, and the file channel's
//! reopen time after a clean close holding 20,000 events. Each group keeps to 10 samples and
//! 5 s of measurement so a full run takes a couple of minutes. Channel directories are
//! tempdirs on the system temp disk; `minimumRequiredSpace` is 0 because the free-space floor
//! is not what is measured and small CI disks would otherwise refuse puts.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion, Throughput};

use flumen::channel::file::{FileChannel, FileChannelConfig, FsyncPolicy};
use flumen::channel::memory::{MemoryChannel, MemoryChannelConfig};
use flumen::channel::Channel;
use flumen::cli::bench::{fill, run_workload, Workload};

const EVENT_SIZE: usize = 1024;
const BATCH: usize = 100;
/// Events moved per iteration of the throughput benchmarks.
const EVENTS_PER_ITER: u64 = 10_000;
/// Events held by the channel whose reopen is timed.
const RECOVERY_EVENTS: u64 = 20_000;

fn small<M: criterion::measurement::Measurement>(g: &mut BenchmarkGroup<'_, M>) {
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(5));
    g.warm_up_time(Duration::from_secs(1));
}

fn workload() -> Workload {
    Workload {
        events: EVENTS_PER_ITER,
        event_size: EVENT_SIZE,
        batch: BATCH,
        take_batch: BATCH,
        producers: 1,
        consumers: 1,
        progress: false,
    }
}

fn put_take<C: Channel>(ch: &C) {
    let w = workload();
    let outcome = run_workload(ch, &w).expect("the workload runs without channel errors");
    assert!(
        outcome.verified(w.events),
        "every event must arrive exactly once: {outcome:?}"
    );
}

fn file_config(dir: &std::path::Path, fsync: FsyncPolicy) -> FileChannelConfig {
    let mut cfg = FileChannelConfig::new(dir);
    cfg.fsync = fsync;
    cfg.minimum_required_space = 0;
    cfg
}

fn memory_channel(c: &mut Criterion) {
    let mut g = c.benchmark_group("memory_channel");
    small(&mut g);
    g.throughput(Throughput::Elements(EVENTS_PER_ITER));
    let ch = MemoryChannel::new(
        "bench",
        MemoryChannelConfig {
            capacity: 100_000,
            transaction_capacity: BATCH,
            ..MemoryChannelConfig::default()
        },
    )
    .expect("valid memory channel config");
    g.bench_function("put_take_batch100_1KB", |b| b.iter(|| put_take(&ch)));
    g.finish();
    ch.close().expect("close");
}

fn file_channel(c: &mut Criterion) {
    let mut g = c.benchmark_group("file_channel");
    small(&mut g);
    g.throughput(Throughput::Elements(EVENTS_PER_ITER));
    for (label, fsync) in [
        (
            "put_take_batch100_1KB_fsync_every_commit",
            FsyncPolicy::EveryCommit,
        ),
        ("put_take_batch100_1KB_fsync_never", FsyncPolicy::Never),
    ] {
        // Opened on first use, so a filter that skips this benchmark skips the setup too.
        let mut open: Option<(tempfile::TempDir, FileChannel)> = None;
        g.bench_function(label, |b| {
            let (_, ch) = open.get_or_insert_with(|| {
                let dir = tempfile::tempdir().expect("tempdir");
                let ch = FileChannel::open("bench", file_config(dir.path(), fsync))
                    .expect("open a fresh file channel");
                (dir, ch)
            });
            b.iter(|| put_take(&*ch))
        });
        if let Some((_dir, ch)) = open {
            ch.close().expect("close");
        }
    }
    g.finish();
}

/// A directory holding a cleanly closed file channel with `RECOVERY_EVENTS` events.
fn prepare_recovery_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    // Filled without fsyncs (faster to prepare); close makes it all durable.
    let ch = FileChannel::open("bench", file_config(dir.path(), FsyncPolicy::Never))
        .expect("open a fresh file channel");
    fill(&ch, RECOVERY_EVENTS, EVENT_SIZE, BATCH).expect("fill");
    ch.close().expect("clean close");
    dir
}

fn file_channel_recovery(c: &mut Criterion) {
    let mut g = c.benchmark_group("file_channel_recovery");
    small(&mut g);
    g.throughput(Throughput::Elements(RECOVERY_EVENTS));
    let mut prepared: Option<tempfile::TempDir> = None;
    g.bench_function("open_20k_1KB_events_after_clean_close", |b| {
        let dir = prepared.get_or_insert_with(prepare_recovery_dir).path();
        b.iter(|| {
            let ch = FileChannel::open("bench", file_config(dir, FsyncPolicy::EveryCommit))
                .expect("reopen");
            assert_eq!(ch.stats().size, RECOVERY_EVENTS, "recovery lost events");
            ch.close().expect("clean close");
        })
    });
    g.finish();
}

criterion_group!(benches, memory_channel, file_channel, file_channel_recovery);
criterion_main!(benches);
