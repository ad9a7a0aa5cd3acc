//! `flumen bench reopen`: how long opening a file channel takes when it holds a lot of
//! untaken events, after a clean shutdown (a checkpoint covers everything: nothing to replay)
//! and after a crash (no checkpoint since the channel was filled: the whole log is replayed,
//! the worst case a kill -9 can leave).
//!
//! The crash is `FileChannel::simulate_crash`, which leaves the files exactly as kill -9
//! would: every record written, no final checkpoint. The page cache stays warm, as it does
//! after a process crash; a machine crash would add a cold read of the log.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Args;

use super::bench::{fill, RunDir};
use super::CliError;
use crate::channel::file::{FileChannel, FileChannelConfig, FsyncPolicy};
use crate::channel::Channel;
use crate::io::IoKind;

/// `flumen bench reopen` options.
#[derive(Debug, Args)]
pub struct ReopenArgs {
    /// Directory on the disk to measure (a fresh subdirectory is made and removed).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Gigabytes (1e9 bytes) of event bodies to queue.
    #[arg(long, default_value_t = 5.0)]
    pub gb: f64,
    /// Body size in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 1024)]
    pub event_size: usize,
    /// Events per put transaction while filling.
    #[arg(long, default_value_t = 100)]
    pub batch: usize,
    /// I/O backend: std or uring.
    #[arg(long, default_value = "std")]
    pub io: IoKind,
    /// Drop the page cache before each open (needs root), to time a cold start as after a
    /// machine restart instead of a process restart.
    #[arg(long)]
    pub drop_caches: bool,
    /// Print only the JSON line.
    #[arg(long)]
    pub json: bool,
}

/// Writes back dirty pages and drops the page cache, so the next open reads from the device.
fn drop_page_cache() -> Result<(), CliError> {
    rustix::fs::sync();
    std::fs::write("/proc/sys/vm/drop_caches", "3")
        .map_err(|e| CliError::io("dropping the page cache via", "/proc/sys/vm/drop_caches", e))
}

#[derive(Debug, serde::Serialize)]
struct ReopenReport {
    events: u64,
    event_size: usize,
    batch: usize,
    io: &'static str,
    cold_cache: bool,
    bytes_on_disk: u64,
    fill_seconds: f64,
    crash_open_seconds: f64,
    clean_open_seconds: f64,
    events_after_crash: u64,
    events_after_clean: u64,
    verified: bool,
}

fn secs(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0).round() / 1000.0
}

/// Runs the benchmark.
pub fn run(a: &ReopenArgs) -> Result<ExitCode, CliError> {
    if a.gb.is_nan() || a.gb <= 0.0 || a.event_size < 8 || a.batch == 0 {
        return Err(CliError::Usage(
            "--gb must be positive, --event-size at least 8, --batch at least 1".into(),
        ));
    }
    let events = ((a.gb * 1e9) / a.event_size as f64).ceil() as u64;
    let parent = a.dir.clone().unwrap_or_else(std::env::temp_dir);
    let run_dir = RunDir::create(&parent)?;
    let mut cfg = FileChannelConfig::new(&run_dir.0);
    cfg.io = a.io;
    cfg.capacity = events.max(1);
    cfg.transaction_capacity = a.batch.min(cfg.capacity as usize);
    // Filling is not what is measured: skip the per-commit fsync (the roll and the final
    // state are synced all the same) and keep the checkpointer away, so the crash case has
    // the whole log to replay.
    cfg.fsync = FsyncPolicy::Never;
    cfg.checkpoint_interval = Duration::from_secs(24 * 3600);

    let ch = FileChannel::open("bench", cfg.clone())?;
    let started = Instant::now();
    let done = std::sync::atomic::AtomicBool::new(false);
    let progress = std::thread::scope(|s| {
        let ch2 = &ch;
        let done = &done;
        let reporter = s.spawn(|| {
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                std::thread::park_timeout(Duration::from_secs(1));
                let n = ch2.stats().size;
                progress!("filling: {n}/{events} events");
            }
        });
        let r = fill(&ch, events, a.event_size, a.batch);
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        reporter.thread().unpark();
        r
    });
    progress?;
    let fill_seconds = started.elapsed();
    let bytes_on_disk = dir_bytes(&run_dir.0);
    ch.simulate_crash();
    drop(ch);

    progress!("reopening after the simulated crash (full replay)...");
    if a.drop_caches {
        drop_page_cache()?;
    }
    let t = Instant::now();
    let ch = FileChannel::open("bench", cfg.clone())?;
    let crash_open = t.elapsed();
    let events_after_crash = ch.stats().size;
    ch.close()?;
    drop(ch);

    progress!("reopening after a clean shutdown...");
    if a.drop_caches {
        drop_page_cache()?;
    }
    let t = Instant::now();
    let ch = FileChannel::open("bench", cfg)?;
    let clean_open = t.elapsed();
    let events_after_clean = ch.stats().size;
    ch.close()?;
    drop(ch);

    let report = ReopenReport {
        events,
        event_size: a.event_size,
        batch: a.batch,
        io: match a.io {
            IoKind::Std => "std",
            IoKind::Uring => "uring",
        },
        cold_cache: a.drop_caches,
        bytes_on_disk,
        fill_seconds: secs(fill_seconds),
        crash_open_seconds: secs(crash_open),
        clean_open_seconds: secs(clean_open),
        events_after_crash,
        events_after_clean,
        verified: events_after_crash == events && events_after_clean == events,
    };
    let mut out = std::io::stdout().lock();
    let w = |e| CliError::Output(e);
    if !a.json {
        writeln!(
            out,
            "reopen: {} events x {} B ({:.2} GB on disk), filled in {:.1} s",
            events,
            a.event_size,
            bytes_on_disk as f64 / 1e9,
            report.fill_seconds
        )
        .map_err(w)?;
        writeln!(
            out,
            "  after a crash (full replay): {:.3} s, {} events",
            report.crash_open_seconds, events_after_crash
        )
        .map_err(w)?;
        writeln!(
            out,
            "  after a clean shutdown:      {:.3} s, {} events",
            report.clean_open_seconds, events_after_clean
        )
        .map_err(w)?;
    }
    writeln!(out, "{}", serde_json::to_string(&report)?).map_err(w)?;
    Ok(if report.verified {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn dir_bytes(dir: &std::path::Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            match e.metadata() {
                Ok(m) if m.is_dir() => stack.push(e.path()),
                Ok(m) => total += m.len(),
                Err(_) => {}
            }
        }
    }
    total
}
