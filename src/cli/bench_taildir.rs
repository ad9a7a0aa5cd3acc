//! `flumen bench taildir`: the TAILDIR source on a log it writes first (lines of `--event-size`
//! bytes plus a newline, `--gb` in all, round-robin over `--files` files), then three shapes
//! in the same run, each on the same number of events of the same size and batch:
//!
//! * `taildir_file`: TAILDIR -> file channel -> null sink (the agent a user runs);
//! * `taildir_memory`: TAILDIR -> memory channel -> null sink (the source's own ceiling);
//! * `channel`: `run_workload` on a fresh file channel, 1 producer, 1 consumer (the bare
//!   channel, as `bench agent`'s baseline).
//!
//! The agents are built from properties text through `agent::config::parse` and started as
//! `bench agent` starts its agents, each with a fresh `positionFile` and, for the file channel,
//! a fresh channel with the default fsync (every commit). A TAILDIR shape is done when the
//! channel's stats show every line put, taken and committed. For each shape the whole
//! process's CPU time (user + system, from `/proc/self/stat`) is reported per event. The log is
//! written before any shape and read back by each, so it is normally in the page cache: the
//! figures are the source's and the channel's cost, not the disk's read speed. Output: a table
//! (unless `--json`), then one JSON object as the last stdout line; progress goes to stderr.
//! Exit code 1 when a shape did not deliver every event.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Args;

use super::bench::RunDir;
use super::bench_agent::{
    bare_channel, drained, min_space, per_sec, round3, start_agent, wait_for,
};
use super::CliError;

/// The target: TAILDIR -> file channel -> null within 0.8x of the bare file channel.
const TARGET_RATIO: f64 = 0.8;

/// `/proc/self/stat` counts CPU time in USER_HZ ticks, which Linux fixes at 100 per second
/// for user space whatever the kernel's own tick rate.
const USER_HZ: u64 = 100;

/// `flumen bench taildir` options.
#[derive(Debug, Args)]
pub struct TaildirBenchArgs {
    /// Directory on the disk to measure: the log and the channels go in a fresh subdirectory,
    /// removed at the end. Default: the system temp dir.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Size of the log in GB (10^9 bytes, newlines included).
    #[arg(long, default_value_t = 2.0)]
    pub gb: f64,
    /// Bytes per line without its newline: the body of each event.
    #[arg(long, value_name = "BYTES", default_value_t = 200)]
    pub event_size: usize,
    /// Events per source and sink transaction (TAILDIR's `batchSize`).
    #[arg(long, default_value_t = 100)]
    pub batch: usize,
    /// Log files the lines are spread over, round-robin, all in one file group.
    #[arg(long, default_value_t = 1)]
    pub files: usize,
    /// Print only the JSON line.
    #[arg(long)]
    pub json: bool,
}

/// One shape's figures.
#[derive(Debug, serde::Serialize)]
pub struct ShapeReport {
    pub seconds: f64,
    pub events_per_sec: f64,
    pub mb_per_sec: f64,
    /// User + system CPU of the whole process over the shape, per event.
    pub cpu_us_per_event: f64,
    pub verified: bool,
}

/// What `flumen bench taildir` reports (the last stdout line).
#[derive(Debug, serde::Serialize)]
pub struct TaildirBenchReport {
    pub events: u64,
    pub event_size: usize,
    pub batch: usize,
    pub files: usize,
    pub log_bytes: u64,
    pub fsync: &'static str,
    pub taildir_file: ShapeReport,
    pub taildir_memory: ShapeReport,
    pub channel: ShapeReport,
    /// taildir_file events/s over channel events/s.
    pub taildir_file_vs_channel_ratio: f64,
    /// taildir_memory events/s over channel events/s.
    pub taildir_memory_vs_channel_ratio: f64,
    pub target_ratio: f64,
    pub meets_target: bool,
    pub verified: bool,
}

fn validate(a: &TaildirBenchArgs) -> Result<u64, CliError> {
    if a.batch == 0 || a.files == 0 {
        return Err(CliError::Usage(
            "--batch and --files must be at least 1".into(),
        ));
    }
    if a.files > 10_000 {
        return Err(CliError::Usage("--files must be at most 10000".into()));
    }
    // The channel baseline stamps a sequence number in each body's first 8 bytes.
    if a.event_size < 16 {
        return Err(CliError::Usage("--event-size must be at least 16".into()));
    }
    if !(a.gb.is_finite() && a.gb > 0.0) {
        return Err(CliError::Usage(
            "--gb must be a positive number of gigabytes".into(),
        ));
    }
    let events = (a.gb * 1e9 / (a.event_size as f64 + 1.0)) as u64;
    if events == 0 {
        return Err(CliError::Usage(format!(
            "--gb {} holds no line of {} bytes",
            a.gb, a.event_size
        )));
    }
    Ok(events)
}

/// Whole-process CPU time (user + system) so far.
pub(super) fn process_cpu() -> Result<Duration, CliError> {
    process_cpu_at(Path::new("/proc/self/stat"))
}

/// The CPU time (user + system) so far of the process whose `/proc/<pid>/stat` is `path`.
pub(super) fn process_cpu_at(path: &Path) -> Result<Duration, CliError> {
    let text = std::fs::read_to_string(path).map_err(|e| CliError::io("reading", path, e))?;
    // The command name (field 2) may hold spaces and parentheses; the fields after its last
    // ')' start with field 3, so utime and stime (fields 14 and 15) are the 12th and 13th.
    let ticks = text
        .rsplit_once(')')
        .map(|(_, rest)| {
            rest.split_whitespace()
                .skip(11)
                .take(2)
                .map(|f| f.parse::<u64>().ok())
                .collect::<Option<Vec<u64>>>()
        })
        .and_then(|v| v.filter(|v| v.len() == 2))
        .ok_or_else(|| CliError::Failed(format!("unexpected {}: {text}", path.display())))?;
    let t: u64 = ticks.iter().sum();
    Ok(Duration::from_millis(t * 1000 / USER_HZ))
}

/// The log files' names: `bench-0000.log`, ... (the file group's regex matches them all).
fn log_path(dir: &Path, i: usize) -> PathBuf {
    dir.join(format!("bench-{i:04}.log"))
}

/// Writes `events` lines of `event_size` bytes plus a newline, round-robin over `files` files
/// in `dir`; each line starts with its number in decimal; syncs them. Returns the bytes
/// written.
fn write_log(dir: &Path, events: u64, event_size: usize, files: usize) -> Result<u64, CliError> {
    std::fs::create_dir_all(dir).map_err(|e| CliError::io("creating", dir, e))?;
    let mut writers = (0..files)
        .map(|i| {
            let p = log_path(dir, i);
            File::create(&p)
                .map(|f| (p.clone(), BufWriter::with_capacity(1 << 20, f)))
                .map_err(|e| CliError::io("creating", &p, e))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut line: Vec<u8> = (0..event_size).map(|i| b'a' + (i % 26) as u8).collect();
    line.push(b'\n');
    let started = Instant::now();
    let mut last = started;
    for i in 0..events {
        let digits = i.to_string();
        line[..digits.len()].copy_from_slice(digits.as_bytes());
        let (p, w) = &mut writers[(i % files as u64) as usize];
        w.write_all(&line)
            .map_err(|e| CliError::io("writing", p.as_path(), e))?;
        if i % 65_536 == 0 && last.elapsed() >= Duration::from_secs(1) {
            last = Instant::now();
            progress!("writing the log: {i} of {events} lines");
        }
    }
    // Synced before any shape starts: otherwise the kernel's writeback of the fresh log
    // competes with the first shape's channel fsyncs.
    for (p, w) in writers {
        w.into_inner()
            .map_err(|e| CliError::io("writing", &p, e.into_error()))?
            .sync_all()
            .map_err(|e| CliError::io("syncing", &p, e))?;
    }
    Ok(events * (event_size as u64 + 1))
}

/// The TAILDIR source `r1` on every log file in `logs`, with its position file in `dir`.
fn source_props(a: &TaildirBenchArgs, logs: &Path, dir: &Path) -> String {
    format!(
        "a1.sources = r1\n\
         a1.sinks = k1\n\
         a1.sources.r1.type = TAILDIR\n\
         a1.sources.r1.filegroups = f1\n\
         a1.sources.r1.filegroups.f1 = {logs}/bench-[0-9]+[.]log\n\
         a1.sources.r1.positionFile = {pos}\n\
         a1.sources.r1.batchSize = {k}\n\
         a1.sources.r1.channels = c1\n\
         a1.sinks.k1.type = null\n\
         a1.sinks.k1.batchSize = {k}\n\
         a1.sinks.k1.channel = c1\n",
        logs = logs.display(),
        pos = dir.join("taildir_position.json").display(),
        k = a.batch,
    )
}

/// TAILDIR -> file channel in `dir` -> null.
pub fn file_props(a: &TaildirBenchArgs, logs: &Path, dir: &Path, events: u64) -> String {
    format!(
        "{source}\
         a1.channels = c1\n\
         a1.channels.c1.type = file\n\
         a1.channels.c1.checkpointDir = {cp}\n\
         a1.channels.c1.dataDirs = {data}\n\
         a1.channels.c1.capacity = {capacity}\n\
         a1.channels.c1.transactionCapacity = {tc}\n\
         a1.channels.c1.minimumRequiredSpace = {space}\n",
        source = source_props(a, logs, dir),
        cp = dir.join("checkpoint").display(),
        data = dir.join("data").display(),
        // Room for a lagging sink without a checkpoint sized for the whole log.
        capacity = events.clamp(1_000_000, 10_000_000),
        tc = a.batch.max(10_000),
        space = min_space(dir),
    )
}

/// TAILDIR -> memory channel -> null.
pub fn memory_props(a: &TaildirBenchArgs, logs: &Path, dir: &Path) -> String {
    format!(
        "{source}\
         a1.channels = c1\n\
         a1.channels.c1.type = memory\n\
         a1.channels.c1.capacity = {capacity}\n\
         a1.channels.c1.transactionCapacity = {tc}\n",
        source = source_props(a, logs, dir),
        capacity = (a.batch * 100).max(100_000),
        tc = a.batch.max(100),
    )
}

/// A generous deadline: a minute, or 2 MB/s, whichever is longer.
fn deadline(log_bytes: u64) -> Duration {
    Duration::from_secs(60).max(Duration::from_secs(log_bytes / 2_000_000))
}

struct Measured {
    elapsed: Duration,
    cpu: Duration,
    verified: bool,
}

/// Runs one TAILDIR agent until its channel has taken and committed `events` events.
fn taildir_shape(
    what: &str,
    props: &str,
    events: u64,
    log_bytes: u64,
) -> Result<Measured, CliError> {
    progress!("{what} ...");
    let cpu0 = process_cpu()?;
    let started = Instant::now();
    let agent = start_agent(props, &format!("bench-{what}.properties"))?;
    let ch = agent.channels()[0].clone();
    let ok = wait_for(
        what,
        deadline(log_bytes),
        || {
            let s = ch.stats();
            format!(
                "{} put, {} taken of {events}",
                s.put_successes, s.take_successes
            )
        },
        || drained(&ch.stats(), events),
    );
    let elapsed = started.elapsed();
    let cpu = process_cpu()?.saturating_sub(cpu0);
    let s = ch.stats();
    drop(ch);
    agent.shutdown()?;
    Ok(Measured {
        elapsed,
        cpu,
        verified: ok && s.put_successes == events && s.take_successes == events && s.size == 0,
    })
}

/// The bare file channel: `run_workload`, 1 producer, 1 consumer, same events and batch.
fn channel_shape(a: &TaildirBenchArgs, dir: &Path, events: u64) -> Result<Measured, CliError> {
    let cpu0 = process_cpu()?;
    let outcome = bare_channel(dir, events, a.event_size, a.batch, a.json)?;
    Ok(Measured {
        elapsed: outcome.elapsed,
        cpu: process_cpu()?.saturating_sub(cpu0),
        verified: outcome.verified(events),
    })
}

fn shape_report(m: &Measured, events: u64, event_size: usize) -> ShapeReport {
    let n = events as f64;
    ShapeReport {
        seconds: round3(m.elapsed.as_secs_f64()),
        events_per_sec: round3(per_sec(n, m.elapsed)),
        mb_per_sec: round3(per_sec(n * event_size as f64 / 1e6, m.elapsed)),
        cpu_us_per_event: round3(m.cpu.as_secs_f64() * 1e6 / n),
        verified: m.verified,
    }
}

/// Writes the log, runs the three shapes and builds the report.
pub fn measure(a: &TaildirBenchArgs) -> Result<TaildirBenchReport, CliError> {
    let events = validate(a)?;
    let parent = a.dir.clone().unwrap_or_else(std::env::temp_dir);
    let run_dir = RunDir::create(&parent)?;
    let logs = run_dir.0.join("logs");
    progress!(
        "writing {events} lines of {} bytes over {} file(s) ...",
        a.event_size,
        a.files
    );
    let log_bytes = write_log(&logs, events, a.event_size, a.files)?;

    let shape_dir = |name: &str| -> Result<PathBuf, CliError> {
        let d = run_dir.0.join(name);
        std::fs::create_dir_all(&d).map_err(|e| CliError::io("creating", &d, e))?;
        Ok(d)
    };
    let d = shape_dir("taildir-file")?;
    let tf = taildir_shape(
        "taildir -> file channel -> null",
        &file_props(a, &logs, &d, events),
        events,
        log_bytes,
    )?;
    // Each shape's channel is gone before the next starts: two copies of a 2 GB log would
    // otherwise share the disk with the one being measured.
    let _ = std::fs::remove_dir_all(&d);
    let d = shape_dir("taildir-memory")?;
    let tm = taildir_shape(
        "taildir -> memory channel -> null",
        &memory_props(a, &logs, &d),
        events,
        log_bytes,
    )?;
    let d = shape_dir("channel")?;
    let ch = channel_shape(a, &d, events)?;

    let tf = shape_report(&tf, events, a.event_size);
    let tm = shape_report(&tm, events, a.event_size);
    let ch = shape_report(&ch, events, a.event_size);
    let ratio = |x: f64| {
        if ch.events_per_sec > 0.0 {
            round3(x / ch.events_per_sec)
        } else {
            0.0
        }
    };
    let file_ratio = ratio(tf.events_per_sec);
    Ok(TaildirBenchReport {
        events,
        event_size: a.event_size,
        batch: a.batch,
        files: a.files,
        log_bytes,
        fsync: "every-commit",
        taildir_file_vs_channel_ratio: file_ratio,
        taildir_memory_vs_channel_ratio: ratio(tm.events_per_sec),
        target_ratio: TARGET_RATIO,
        meets_target: file_ratio >= TARGET_RATIO,
        verified: tf.verified && tm.verified && ch.verified,
        taildir_file: tf,
        taildir_memory: tm,
        channel: ch,
    })
}

fn write_table(out: &mut impl Write, r: &TaildirBenchReport) -> std::io::Result<()> {
    writeln!(
        out,
        "taildir bench: {} lines × {} B (+ newline) in {} file(s), {} bytes, batch {}, \
         file channel fsync {}",
        r.events, r.event_size, r.files, r.log_bytes, r.batch, r.fsync
    )?;
    writeln!(
        out,
        "  {:<34} {:>12} {:>10} {:>9} {:>11} {:>9}",
        "shape", "events/s", "MB/s", "seconds", "CPU µs/ev", "verified"
    )?;
    for (name, s) in [
        ("taildir -> file -> null", &r.taildir_file),
        ("taildir -> memory -> null", &r.taildir_memory),
        ("bench channel (1 prod, 1 cons)", &r.channel),
    ] {
        writeln!(
            out,
            "  {name:<34} {:>12.0} {:>10.1} {:>9.3} {:>11.3} {:>9}",
            s.events_per_sec, s.mb_per_sec, s.seconds, s.cpu_us_per_event, s.verified
        )?;
    }
    writeln!(
        out,
        "  taildir_file / channel: {:.3} (target >= {}: {}); taildir_memory / channel: {:.3}",
        r.taildir_file_vs_channel_ratio,
        r.target_ratio,
        if r.meets_target { "met" } else { "not met" },
        r.taildir_memory_vs_channel_ratio
    )
}

/// `flumen bench taildir`.
pub fn run(a: &TaildirBenchArgs) -> Result<ExitCode, CliError> {
    let report = measure(a)?;
    let mut out = std::io::stdout().lock();
    if !a.json {
        write_table(&mut out, &report).map_err(CliError::Output)?;
    }
    writeln!(out, "{}", serde_json::to_string(&report)?).map_err(CliError::Output)?;
    out.flush().map_err(CliError::Output)?;
    if !report.verified {
        progress!(
            "error: a shape did not deliver every event (taildir_file: {}, taildir_memory: {}, \
             channel: {})",
            report.taildir_file.verified,
            report.taildir_memory.verified,
            report.channel.verified
        );
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent;

    fn args(gb: f64, files: usize) -> TaildirBenchArgs {
        TaildirBenchArgs {
            dir: None,
            gb,
            event_size: 200,
            batch: 100,
            files,
            json: true,
        }
    }

    #[test]
    fn tiny_run_over_three_files_verifies_every_shape() {
        // 3,000 lines of 201 bytes.
        let report = measure(&args(0.000_603, 3)).expect("bench runs");
        let v = serde_json::to_value(&report).expect("json");
        assert_eq!(v["events"], 3000, "{v}");
        assert_eq!(v["log_bytes"], 603_000, "{v}");
        for shape in ["taildir_file", "taildir_memory", "channel"] {
            assert_eq!(v[shape]["verified"], true, "{shape}: {v}");
            assert!(v[shape]["cpu_us_per_event"].is_number(), "{shape}: {v}");
        }
        assert!(v["taildir_file_vs_channel_ratio"].is_number(), "{v}");
        assert_eq!(v["verified"], true, "{v}");
    }

    #[test]
    fn both_agents_parse_without_warnings() {
        let a = args(1.0, 1);
        let (logs, d) = (Path::new("/tmp/logs"), Path::new("/tmp/x"));
        for props in [file_props(&a, logs, d, 10), memory_props(&a, logs, d)] {
            let (cfg, warnings) = agent::config::parse(&props, "t", "a1").expect("valid");
            assert!(warnings.is_empty(), "{warnings:?}");
            assert_eq!(cfg.sources[0].type_name.to_ascii_lowercase(), "taildir");
        }
    }

    #[test]
    fn bad_sizes_are_usage_errors() {
        for a in [
            args(0.0, 1),
            args(f64::NAN, 1),
            args(1.0, 0),
            args(1e-12, 1),
        ] {
            assert!(matches!(validate(&a), Err(CliError::Usage(_))), "{a:?}");
        }
    }

    #[test]
    fn cpu_time_reads() {
        process_cpu().expect("/proc/self/stat parses");
    }
}
