//! `flumen bench channel`: end-to-end channel throughput, commit latency and correctness, next
//! to a raw-disk baseline measured in the same run.
//!
//! The workload ([`run_workload`], also driven by `benches/channel.rs`): P producer threads put
//! N events in batches of K, each a fresh B-byte body copied from a template with its sequence
//! number in the first 8 bytes; C consumer threads take batches of K and commit. Every sequence
//! number must arrive exactly once with an intact body, or the run reports `verified: false`
//! and exits with 1: a fast channel that loses or duplicates events must never look good.
//!
//! The raw baseline ([`raw_baseline`]) writes the same bytes to a plain file with one
//! `fdatasync` per K×B bytes, one writer: what the disk does at the channel's commit cadence
//! with no channel in the way. Figures are only comparable within one run (`ratio_to_raw`),
//! never across machines.
//!
//! Output contract: an optional table, then the last line of stdout is one JSON object (with
//! `--json`, the only line). Progress goes to stderr. A run directory
//! `flumen-bench-<pid>-<nanos>` is created under `--dir` (or the system temp dir) and removed
//! at the end, so a bench never sees or disturbs an existing channel.

use std::fs::File;
use std::io::Write;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::{Args, ValueEnum};

use super::CliError;
use crate::channel::file::{FileChannel, FileChannelConfig, FsyncPolicy};
use crate::channel::memory::{MemoryChannel, MemoryChannelConfig};
use crate::channel::{Channel, ChannelError};
use crate::event::Event;
use crate::io::IoKind;

/// Which channel to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ChannelKind {
    File,
    Memory,
}

/// `flumen bench channel` options.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Directory on the disk to measure; a fresh subdirectory is made in it and removed at
    /// the end. Default: the system temp dir.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Events to put and take.
    #[arg(long, default_value_t = 200_000)]
    pub events: u64,
    /// Body size in bytes (at least 8: the sequence number).
    #[arg(long, value_name = "BYTES", default_value_t = 1024)]
    pub event_size: usize,
    /// Events per put and per take transaction.
    #[arg(long, default_value_t = 100)]
    pub batch: usize,
    /// Events per take transaction (default: --batch). Lets the group-commit shape (puts of
    /// one event) be measured with a consumer that is not itself the bottleneck.
    #[arg(long)]
    pub take_batch: Option<usize>,
    /// Producer threads.
    #[arg(long, default_value_t = 4)]
    pub producers: usize,
    /// Consumer threads.
    #[arg(long, default_value_t = 1)]
    pub consumers: usize,
    /// File channel I/O backend: std or uring.
    #[arg(long, default_value = "std")]
    pub io: IoKind,
    /// Channel to measure.
    #[arg(long, value_enum, default_value_t = ChannelKind::File)]
    pub channel: ChannelKind,
    /// File channel fsync policy: every-commit, interval:<ms> or never.
    #[arg(long, default_value = "every-commit")]
    pub fsync: FsyncPolicy,
    /// File channel `directIo`: true (default) writes each group commit as whole blocks with
    /// O_DIRECT; false writes each record through the page cache.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub direct_io: bool,
    /// File channel `spareSegments`: finished segments kept for reuse as new segments.
    #[arg(long, default_value_t = 2, value_name = "N")]
    pub spare_segments: usize,
    /// File channel: before the measured run, run the channel as an agent would have for a
    /// while (put and take `spareSegments + 1` segments' worth of events, checkpoint, reopen),
    /// so that it writes into reused segments, as a running agent does. `false` measures a
    /// brand-new channel.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub warmup: bool,
    /// Print only the JSON line.
    #[arg(long)]
    pub json: bool,
}

/// What [`run_workload`] does.
#[derive(Debug, Clone)]
pub struct Workload {
    pub events: u64,
    /// Body bytes per event, at least 8.
    pub event_size: usize,
    pub batch: usize,
    /// Events per take transaction.
    pub take_batch: usize,
    pub producers: usize,
    pub consumers: usize,
    /// Print a progress line on stderr every second.
    pub progress: bool,
}

/// What [`run_workload`] measured.
#[derive(Debug, Clone, Default)]
pub struct WorkloadOutcome {
    /// From the first put to the last take commit.
    pub elapsed: Duration,
    /// Events taken and committed.
    pub consumed: u64,
    /// Sequence numbers never received.
    pub missing: u64,
    /// Events received more than once.
    pub duplicates: u64,
    /// Events whose body was not what was put (wrong size, content or sequence number).
    pub malformed: u64,
    /// Put commits refused with ChannelFull and retried.
    pub full_retries: u64,
    /// Latency of each successful put commit, microseconds, sorted ascending.
    pub commit_latencies_us: Vec<u64>,
}

impl WorkloadOutcome {
    /// Every event arrived exactly once, intact.
    pub fn verified(&self, events: u64) -> bool {
        self.missing == 0 && self.duplicates == 0 && self.malformed == 0 && self.consumed == events
    }

    /// Nearest-rank percentile of the put commit latencies (`p` in 0..=100), 0 when none.
    pub fn commit_percentile_us(&self, p: f64) -> u64 {
        percentile(&self.commit_latencies_us, p)
    }
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// A consumer that finds the channel empty this long after every producer finished gives up:
/// the events it waits for are lost, and verification will say so.
const STALL: Duration = Duration::from_secs(10);

/// Body of event `seq`: the template with `seq` in its first 8 bytes, in a fresh allocation
/// so that each event costs what a real source's would.
fn make_event(template: &[u8], seq: u64) -> Event {
    let mut body = Vec::with_capacity(template.len());
    body.extend_from_slice(template);
    body[..8].copy_from_slice(&seq.to_le_bytes());
    Event::new(body)
}

fn make_template(event_size: usize) -> Vec<u8> {
    // Not all zeros, so a channel that compresses or skips zero pages gains nothing.
    (0..event_size).map(|i| (i % 251) as u8).collect()
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// Puts `seqs` in batches of `batch`, retrying a batch refused with ChannelFull (backpressure
/// is what a source must handle, not a failure). Records each successful commit's latency.
fn produce<C: Channel + ?Sized>(
    ch: &C,
    seqs: Range<u64>,
    batch: usize,
    template: &[u8],
    abort: &AtomicBool,
    latencies: &mut Vec<u64>,
    full_retries: &AtomicU64,
) -> Result<(), ChannelError> {
    let mut next = seqs.start;
    while next < seqs.end && !abort.load(Ordering::Relaxed) {
        let end = next.saturating_add(batch as u64).min(seqs.end);
        let mut tx = ch.put_transaction();
        for s in next..end {
            tx.put(make_event(template, s))?;
        }
        let t = Instant::now();
        match tx.commit() {
            Ok(()) => {
                latencies.push(micros(t.elapsed()));
                next = end;
            }
            Err(ChannelError::ChannelFull { .. }) => {
                full_retries.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Puts events `0..events` from one thread (to prepare a channel, e.g. for a recovery
/// benchmark). Bodies are as in [`run_workload`].
pub fn fill<C: Channel + ?Sized>(
    ch: &C,
    events: u64,
    event_size: usize,
    batch: usize,
) -> Result<(), ChannelError> {
    let template = make_template(event_size.max(8));
    let mut lat = Vec::new();
    produce(
        ch,
        0..events,
        batch.max(1),
        &template,
        &AtomicBool::new(false),
        &mut lat,
        &AtomicU64::new(0),
    )
}

/// Shared state of one workload run.
struct Shared<'a> {
    events: u64,
    template: &'a [u8],
    /// Bit `s` set once sequence number `s` has been received.
    seen: Vec<AtomicU64>,
    consumed: AtomicU64,
    producers_running: AtomicUsize,
    abort: AtomicBool,
    full_retries: AtomicU64,
}

#[derive(Default)]
struct ConsumerTally {
    duplicates: u64,
    malformed: u64,
}

impl Shared<'_> {
    /// Records one received event.
    fn check(&self, e: &Event, tally: &mut ConsumerTally) {
        let body = e.body();
        if body.len() != self.template.len() || body[8..] != self.template[8..] {
            tally.malformed += 1;
            return;
        }
        let mut seq = [0u8; 8];
        seq.copy_from_slice(&body[..8]);
        let seq = u64::from_le_bytes(seq);
        if seq >= self.events {
            tally.malformed += 1;
            return;
        }
        let bit = 1u64 << (seq % 64);
        let prev = self.seen[(seq / 64) as usize].fetch_or(bit, Ordering::Relaxed);
        if prev & bit != 0 {
            tally.duplicates += 1;
        }
    }

    fn missing(&self) -> u64 {
        let full_words = self.events / 64;
        let mut set = 0u64;
        for (i, w) in self.seen.iter().enumerate() {
            let mut v = w.load(Ordering::Relaxed);
            if i as u64 == full_words {
                v &= (1u64 << (self.events % 64)) - 1;
            }
            set += u64::from(v.count_ones());
        }
        self.events - set
    }
}

fn consume<C: Channel + ?Sized>(
    ch: &C,
    sh: &Shared<'_>,
    batch: usize,
) -> Result<ConsumerTally, ChannelError> {
    let mut tally = ConsumerTally::default();
    let mut out = Vec::with_capacity(batch);
    let mut idle_since: Option<Instant> = None;
    while sh.consumed.load(Ordering::Acquire) < sh.events && !sh.abort.load(Ordering::Relaxed) {
        let mut tx = ch.take_transaction();
        out.clear();
        let n = tx.take_batch(batch, &mut out)?;
        if n == 0 {
            drop(tx);
            if sh.producers_running.load(Ordering::Acquire) == 0 {
                let since = *idle_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= STALL {
                    break;
                }
            }
            ch.wait_available(Duration::from_millis(100));
            continue;
        }
        idle_since = None;
        tx.commit()?;
        for e in &out {
            sh.check(e, &mut tally);
        }
        sh.consumed.fetch_add(n as u64, Ordering::AcqRel);
    }
    Ok(tally)
}

/// Runs the workload against `ch` (which should start empty) and checks every event.
/// Errors from the channel stop the run and are returned; lost, duplicated or damaged events
/// are not errors but are counted in the outcome (see [`WorkloadOutcome::verified`]).
pub fn run_workload<C: Channel + ?Sized>(
    ch: &C,
    w: &Workload,
) -> Result<WorkloadOutcome, ChannelError> {
    let template = make_template(w.event_size.max(8));
    let producers = w.producers.max(1);
    let consumers = w.consumers.max(1);
    let batch = w.batch.max(1);
    let sh = Shared {
        events: w.events,
        template: &template,
        seen: (0..w.events.div_ceil(64))
            .map(|_| AtomicU64::new(0))
            .collect(),
        consumed: AtomicU64::new(0),
        producers_running: AtomicUsize::new(producers),
        abort: AtomicBool::new(false),
        full_retries: AtomicU64::new(0),
    };
    let share = |p: usize| {
        let (base, rem) = (w.events / producers as u64, w.events % producers as u64);
        let p = p as u64;
        let start = p * base + p.min(rem);
        start..start + base + u64::from(p < rem)
    };

    let start = Instant::now();
    let (stop_progress, progress_rx) = mpsc::channel::<()>();
    let (latencies, tallies, first_err) = std::thread::scope(|s| {
        let sh = &sh;
        let producer_handles: Vec<_> = (0..producers)
            .map(|p| {
                let range = share(p);
                s.spawn(move || {
                    let mut lat =
                        Vec::with_capacity((range.end - range.start) as usize / batch + 1);
                    let res = produce(
                        ch,
                        range,
                        batch,
                        sh.template,
                        &sh.abort,
                        &mut lat,
                        &sh.full_retries,
                    );
                    if res.is_err() {
                        sh.abort.store(true, Ordering::Relaxed);
                    }
                    sh.producers_running.fetch_sub(1, Ordering::AcqRel);
                    res.map(|()| lat)
                })
            })
            .collect();
        let consumer_handles: Vec<_> = (0..consumers)
            .map(|_| {
                s.spawn(move || {
                    let res = consume(ch, sh, w.take_batch.max(1));
                    if res.is_err() {
                        sh.abort.store(true, Ordering::Relaxed);
                    }
                    res
                })
            })
            .collect();
        if w.progress {
            s.spawn(move || {
                let mut last = (Instant::now(), 0u64);
                while let Err(mpsc::RecvTimeoutError::Timeout) =
                    progress_rx.recv_timeout(Duration::from_secs(1))
                {
                    let now = (Instant::now(), sh.consumed.load(Ordering::Relaxed));
                    let rate = (now.1 - last.1) as f64 / (now.0 - last.0).as_secs_f64();
                    progress!(
                        "bench: {} / {} events taken ({:.0} events/s)",
                        now.1,
                        sh.events,
                        rate
                    );
                    last = now;
                }
            });
        }

        let mut first_err = None;
        let mut latencies = Vec::new();
        for h in producer_handles {
            match join(h) {
                Ok(lat) => latencies.extend(lat),
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        let mut tallies = Vec::new();
        for h in consumer_handles {
            match join(h) {
                Ok(t) => tallies.push(t),
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        drop(stop_progress);
        (latencies, tallies, first_err)
    });
    let elapsed = start.elapsed();
    if let Some(e) = first_err {
        return Err(e);
    }

    let mut latencies = latencies;
    latencies.sort_unstable();
    Ok(WorkloadOutcome {
        elapsed,
        consumed: sh.consumed.load(Ordering::Acquire),
        missing: sh.missing(),
        duplicates: tallies.iter().map(|t| t.duplicates).sum(),
        malformed: tallies.iter().map(|t| t.malformed).sum(),
        full_retries: sh.full_retries.load(Ordering::Relaxed),
        commit_latencies_us: latencies,
    })
}

/// Joins a worker, re-raising its panic: a panic there is a bug, not a measurement.
fn join<T>(h: std::thread::ScopedJoinHandle<'_, T>) -> T {
    match h.join() {
        Ok(v) => v,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// What [`raw_baseline`] measured.
#[derive(Debug, Clone, Copy)]
pub struct RawOutcome {
    pub bytes: u64,
    pub elapsed: Duration,
    pub fsyncs: u64,
}

impl RawOutcome {
    /// Megabytes (1e6 bytes) per second.
    pub fn mb_per_sec(&self) -> f64 {
        self.bytes as f64 / 1e6 / self.elapsed.as_secs_f64()
    }
}

/// Writes `bytes` to a new file in `dir` with `write_all`, calling `sync_data` after every
/// `chunk` bytes (and after the last partial chunk), from one thread; removes the file.
pub fn raw_baseline(dir: &Path, bytes: u64, chunk: usize) -> std::io::Result<RawOutcome> {
    let path = dir.join("raw-baseline.dat");
    let chunk = chunk.max(1);
    let buf: Vec<u8> = (0..chunk).map(|i| (i % 251) as u8).collect();
    let mut f = File::create(&path)?;
    let start = Instant::now();
    let mut left = bytes;
    let mut fsyncs = 0;
    while left > 0 {
        let n = left.min(chunk as u64) as usize;
        f.write_all(&buf[..n])?;
        f.sync_data()?;
        fsyncs += 1;
        left -= n as u64;
    }
    let elapsed = start.elapsed();
    drop(f);
    std::fs::remove_file(&path)?;
    Ok(RawOutcome {
        bytes,
        elapsed,
        fsyncs,
    })
}

/// The JSON line. Field names are a contract with scripts that compare runs.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BenchReport {
    pub channel: &'static str,
    pub io: String,
    pub fsync: String,
    pub direct_io: bool,
    pub spare_segments: usize,
    pub warmup: bool,
    pub events: u64,
    pub event_size: usize,
    pub batch: usize,
    pub producers: usize,
    pub consumers: usize,
    pub capacity: u64,
    pub bytes: u64,
    pub seconds: f64,
    pub events_per_sec: f64,
    pub mb_per_sec: f64,
    pub take_batch: usize,
    pub commits: u64,
    pub commits_per_sec: f64,
    /// Put commits alone (the group-commit figure).
    pub put_commits: u64,
    pub put_commits_per_sec: f64,
    pub fsyncs: u64,
    pub fsyncs_per_commit: f64,
    pub p50_commit_us: u64,
    pub p99_commit_us: u64,
    pub p999_commit_us: u64,
    pub max_commit_us: u64,
    pub channel_full_retries: u64,
    pub raw_mb_per_sec: f64,
    pub raw_fsyncs: u64,
    pub ratio_to_raw: f64,
    pub missing: u64,
    pub duplicates: u64,
    pub malformed: u64,
    pub verified: bool,
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        a / b
    } else {
        0.0
    }
}

fn io_label(io: IoKind) -> &'static str {
    match io {
        IoKind::Std => "std",
        IoKind::Uring => "uring",
    }
}

fn fsync_label(f: FsyncPolicy) -> String {
    match f {
        FsyncPolicy::EveryCommit => "every-commit".into(),
        FsyncPolicy::Interval(d) => format!("interval:{}", d.as_millis()),
        FsyncPolicy::Never => "never".into(),
    }
}

/// A directory that exists for one run and is removed, with everything in it, when dropped.
pub(crate) struct RunDir(pub(crate) PathBuf);

impl RunDir {
    pub(crate) fn create(parent: &Path) -> Result<RunDir, CliError> {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let path = parent.join(format!("flumen-bench-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&path)
            .map_err(|e| CliError::io("creating bench directory", &path, e))?;
        Ok(RunDir(path))
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.0) {
            progress!("warning: could not remove {}: {e}", self.0.display());
        }
    }
}

pub(crate) fn free_space(dir: &Path) -> std::io::Result<u64> {
    let st = rustix::fs::statvfs(dir)?;
    Ok(st.f_bavail.saturating_mul(st.f_frsize))
}

fn validate(a: &BenchArgs) -> Result<(), CliError> {
    let bad = |m: &str| Err(CliError::Usage(m.to_string()));
    if a.events == 0 {
        return bad("--events must be at least 1");
    }
    if a.event_size < 8 {
        return bad("--event-size must be at least 8 bytes (the sequence number)");
    }
    if a.batch == 0 || a.take_batch == Some(0) || a.producers == 0 || a.consumers == 0 {
        return bad("--batch, --producers and --consumers must be at least 1");
    }
    if a.events.checked_mul(a.event_size as u64).is_none() {
        return bad("--events × --event-size overflows");
    }
    Ok(())
}

/// Opens the channel to measure in `dir`, returning it and its capacity.
pub(crate) fn open_channel(a: &BenchArgs, dir: &Path) -> Result<(Box<dyn Channel>, u64), CliError> {
    match a.channel {
        ChannelKind::Memory => {
            // Bounded so a slow consumer costs at most ~100k events of memory; producers then
            // feel backpressure, as they would in an agent.
            let capacity = 100_000u64.max((a.batch as u64).saturating_mul(4));
            let cfg = MemoryChannelConfig {
                capacity,
                transaction_capacity: a.batch.max(a.take_batch.unwrap_or(0)).max(100),
                ..MemoryChannelConfig::default()
            };
            Ok((Box::new(MemoryChannel::new("bench", cfg)?), capacity))
        }
        ChannelKind::File => {
            let mut cfg = FileChannelConfig::new(dir);
            // Room for the whole run, so producers never wait on the consumer for space.
            cfg.transaction_capacity = cfg
                .transaction_capacity
                .max(a.batch)
                .max(a.take_batch.unwrap_or(0));
            cfg.capacity = cfg
                .capacity
                .max(a.events)
                .max(cfg.transaction_capacity as u64);
            cfg.fsync = a.fsync;
            cfg.io = a.io;
            cfg.direct_io = a.direct_io;
            cfg.spare_segments = a.spare_segments;
            match free_space(dir) {
                Ok(free) if free < cfg.minimum_required_space => {
                    let lowered = free / 4;
                    progress!(
                        "note: {} has {free} bytes free, below the default minimumRequiredSpace \
                         of {} bytes; lowering it to {lowered} bytes for this run",
                        dir.display(),
                        cfg.minimum_required_space
                    );
                    cfg.minimum_required_space = lowered;
                }
                Ok(_) => {}
                Err(e) => progress!(
                    "note: cannot read free space of {}: {e}; keeping minimumRequiredSpace",
                    dir.display()
                ),
            }
            let capacity = cfg.capacity;
            if a.warmup && cfg.spare_segments > 0 {
                let ch = FileChannel::open("bench", cfg.clone())?;
                warm_up(&ch, &cfg, a.event_size)?;
                ch.close()?;
            }
            Ok((Box::new(FileChannel::open("bench", cfg)?), capacity))
        }
    }
}

/// Brings a new file channel to the state of one that has run for a while: `spareSegments +
/// 1` segments' worth of events put and taken, finished segments kept as spares. After a
/// reopen, the log writes into reused segments.
fn warm_up(ch: &FileChannel, cfg: &FileChannelConfig, event_size: usize) -> Result<(), CliError> {
    let bytes = (cfg.spare_segments as u64 + 1) * cfg.max_file_size;
    let w = Workload {
        events: bytes / event_size.max(8) as u64 + 1,
        event_size,
        batch: 100,
        take_batch: 100,
        producers: 4,
        consumers: 1,
        progress: false,
    };
    progress!(
        "warming up: {} events through the channel, so that it runs on reused segments",
        w.events
    );
    let out = run_workload(ch, &w)?;
    if !out.verified(w.events) {
        return Err(CliError::Failed(format!(
            "the warm-up lost or damaged events: {} missing, {} duplicated, {} malformed",
            out.missing, out.duplicates, out.malformed
        )));
    }
    // Retires the finished segments (as spares) now rather than at the next interval.
    ch.checkpoint()?;
    Ok(())
}

/// `flumen bench channel`.
pub fn run(a: &BenchArgs) -> Result<ExitCode, CliError> {
    validate(a)?;
    let parent = a.dir.clone().unwrap_or_else(std::env::temp_dir);
    // Declared before the channel so it is removed after the channel is dropped.
    let run_dir = RunDir::create(&parent)?;
    let (ch, capacity) = open_channel(a, &run_dir.0)?;
    let w = Workload {
        events: a.events,
        event_size: a.event_size,
        batch: a.batch,
        take_batch: a.take_batch.unwrap_or(a.batch),
        producers: a.producers,
        consumers: a.consumers,
        progress: true,
    };
    let outcome = run_workload(&*ch, &w)?;
    let stats = ch.stats();
    ch.close()?;
    drop(ch);

    let bytes = a.events * a.event_size as u64;
    let chunk = a.batch.saturating_mul(a.event_size);
    let raw = raw_baseline(&run_dir.0, bytes, chunk)
        .map_err(|e| CliError::io("raw baseline write in", &run_dir.0, e))?;

    let secs = outcome.elapsed.as_secs_f64();
    let mb_per_sec = bytes as f64 / 1e6 / secs;
    let raw_mb_per_sec = raw.mb_per_sec();
    let (io, fsync) = match a.channel {
        ChannelKind::File => (io_label(a.io).to_string(), fsync_label(a.fsync)),
        ChannelKind::Memory => ("none".to_string(), "none".to_string()),
    };
    let verified = outcome.verified(a.events);
    let report = BenchReport {
        channel: match a.channel {
            ChannelKind::File => "file",
            ChannelKind::Memory => "memory",
        },
        io,
        fsync,
        direct_io: a.direct_io && a.channel == ChannelKind::File,
        spare_segments: if a.channel == ChannelKind::File {
            a.spare_segments
        } else {
            0
        },
        warmup: a.warmup && a.channel == ChannelKind::File && a.spare_segments > 0,
        events: a.events,
        event_size: a.event_size,
        batch: a.batch,
        producers: a.producers,
        consumers: a.consumers,
        capacity,
        bytes,
        seconds: round3(secs),
        events_per_sec: round3(a.events as f64 / secs),
        mb_per_sec: round3(mb_per_sec),
        take_batch: w.take_batch,
        commits: stats.commits,
        commits_per_sec: round3(stats.commits as f64 / secs),
        put_commits: outcome.commit_latencies_us.len() as u64,
        put_commits_per_sec: round3(outcome.commit_latencies_us.len() as f64 / secs),
        fsyncs: stats.fsyncs,
        fsyncs_per_commit: round3(ratio(stats.fsyncs as f64, stats.commits as f64)),
        p50_commit_us: outcome.commit_percentile_us(50.0),
        p99_commit_us: outcome.commit_percentile_us(99.0),
        p999_commit_us: outcome.commit_percentile_us(99.9),
        max_commit_us: outcome.commit_percentile_us(100.0),
        channel_full_retries: outcome.full_retries,
        raw_mb_per_sec: round3(raw_mb_per_sec),
        raw_fsyncs: raw.fsyncs,
        ratio_to_raw: round3(ratio(mb_per_sec, raw_mb_per_sec)),
        missing: outcome.missing,
        duplicates: outcome.duplicates,
        malformed: outcome.malformed,
        verified,
    };

    let mut out = std::io::stdout().lock();
    if !a.json {
        write_table(&mut out, &report).map_err(CliError::Output)?;
    }
    writeln!(out, "{}", serde_json::to_string(&report)?).map_err(CliError::Output)?;
    out.flush().map_err(CliError::Output)?;
    if !verified {
        progress!(
            "error: verification failed: {} missing, {} duplicated, {} malformed events",
            report.missing,
            report.duplicates,
            report.malformed
        );
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

fn write_table(out: &mut impl Write, r: &BenchReport) -> std::io::Result<()> {
    writeln!(
        out,
        "channel {} (io {}, fsync {}): {} events × {} B, batch {}, {} producers, {} consumers, capacity {}",
        r.channel, r.io, r.fsync, r.events, r.event_size, r.batch, r.producers, r.consumers, r.capacity
    )?;
    writeln!(
        out,
        "  throughput   {:>12.0} events/s {:>10.1} MB/s   ({:.3} s)",
        r.events_per_sec, r.mb_per_sec, r.seconds
    )?;
    writeln!(
        out,
        "  commits      {:>12} ({:.0}/s), fsyncs {} ({:.3} per commit)",
        r.commits, r.commits_per_sec, r.fsyncs, r.fsyncs_per_commit
    )?;
    writeln!(
        out,
        "  put commit   p50 {} us, p99 {} us, p99.9 {} us, max {} us; ChannelFull retries {}",
        r.p50_commit_us, r.p99_commit_us, r.p999_commit_us, r.max_commit_us, r.channel_full_retries
    )?;
    writeln!(
        out,
        "  raw disk     {:>10.1} MB/s (write_all + fdatasync every {} B, {} fsyncs); ratio {:.3}",
        r.raw_mb_per_sec,
        r.batch * r.event_size,
        r.raw_fsyncs,
        r.ratio_to_raw
    )?;
    writeln!(
        out,
        "  verified     {} (missing {}, duplicates {}, malformed {})",
        r.verified, r.missing, r.duplicates, r.malformed
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mem(capacity: u64) -> MemoryChannel {
        MemoryChannel::new(
            "t",
            MemoryChannelConfig {
                capacity,
                transaction_capacity: 100,
                ..MemoryChannelConfig::default()
            },
        )
        .expect("valid config")
    }

    #[test]
    fn workload_verifies_on_memory_channel() {
        let ch = mem(1_000);
        let w = Workload {
            events: 10_007,
            event_size: 64,
            batch: 100,
            take_batch: 37,
            producers: 3,
            consumers: 2,
            progress: false,
        };
        let o = run_workload(&ch, &w).expect("run");
        assert!(o.verified(w.events), "{o:?}");
        assert_eq!(o.missing, 0);
        assert_eq!(ch.stats().size, 0);
        assert!(!o.commit_latencies_us.is_empty());
    }

    #[test]
    fn fill_puts_events_in_order() {
        let ch = mem(1_000);
        fill(&ch, 250, 16, 100).expect("fill");
        assert_eq!(ch.stats().size, 250);
        let mut tx = ch.take_transaction();
        let mut out = Vec::new();
        tx.take_batch(3, &mut out).expect("take");
        let seqs: Vec<u64> = out
            .iter()
            .map(|e| u64::from_le_bytes(e.body()[..8].try_into().expect("8 bytes")))
            .collect();
        assert_eq!(seqs, vec![0, 1, 2]);
        assert_eq!(out[0].body().len(), 16);
    }

    #[test]
    fn shared_detects_duplicates_missing_and_damage() {
        let template = make_template(16);
        let sh = Shared {
            events: 70,
            template: &template,
            seen: (0..2).map(|_| AtomicU64::new(0)).collect(),
            consumed: AtomicU64::new(0),
            producers_running: AtomicUsize::new(0),
            abort: AtomicBool::new(false),
            full_retries: AtomicU64::new(0),
        };
        let mut t = ConsumerTally::default();
        for s in 0..69 {
            sh.check(&make_event(&template, s), &mut t);
        }
        sh.check(&make_event(&template, 5), &mut t);
        sh.check(&make_event(&template, 70), &mut t);
        let mut damaged = make_event(&template, 1).body().to_vec();
        damaged[12] ^= 1;
        sh.check(&Event::new(damaged), &mut t);
        sh.check(&Event::new(vec![0u8; 8]), &mut t);
        assert_eq!(t.duplicates, 1);
        assert_eq!(t.malformed, 3);
        assert_eq!(sh.missing(), 1);
    }

    #[test]
    fn percentiles_use_nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), 50);
        assert_eq!(percentile(&v, 99.0), 99);
        assert_eq!(percentile(&v, 100.0), 100);
        assert_eq!(percentile(&v, 0.0), 1);
        assert_eq!(percentile(&[], 50.0), 0);
    }

    #[test]
    fn raw_baseline_writes_and_cleans_up() {
        let dir = tempfile::tempdir().expect("tempdir");
        let r = raw_baseline(dir.path(), 10_000, 4096).expect("raw");
        assert_eq!(r.fsyncs, 3);
        assert_eq!(r.bytes, 10_000);
        assert!(!dir.path().join("raw-baseline.dat").exists());
    }

    #[test]
    fn run_dir_is_removed() {
        let parent = tempfile::tempdir().expect("tempdir");
        let path = {
            let d = RunDir::create(parent.path()).expect("create");
            std::fs::write(d.0.join("x"), b"x").expect("write");
            d.0.clone()
        };
        assert!(!path.exists());
    }
}
