//! `flumen bench hdfs`: the HDFS sink against Hadoop's own Java client, into the same HDFS, in
//! one run.
//!
//! For each file type (DataStream, SequenceFile) and each round, alternately:
//! * flumen: an agent built from properties text (stress source, N events of B bytes, batch K
//!   -> a fresh file channel with fsync on every commit -> hdfs sink, batch K, one file, no
//!   rolling, `hdfs.sync = hsync`), timed from start until every event's take committed and the
//!   agent stopped (the file closed and renamed);
//! * Hadoop: `flumen.test.HdfsWriteBench` (tests/hdfs) writes the same events into one file
//!   with `hsync` every K events (the same durability), timed inside the JVM from the first
//!   write to the close, so JVM start-up is not counted against Hadoop.
//!
//! The HDFS is given with `--url` (benches/hdfs_vs_java.sh starts a MiniDFSCluster and passes
//! it); `--java-classpath` is the classpath of the tests/hdfs Maven project. Ratios are taken
//! within a round and the median is reported. Output: a table (unless `--json`), then one JSON
//! object as the last stdout line; progress goes to stderr.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use clap::Args;

use super::bench::RunDir;
use super::CliError;
use crate::agent::{self, Agent, AgentOptions};

/// The target: flumen's sink at 0.8x Hadoop's client or better.
const TARGET_RATIO: f64 = 0.8;

/// `flumen bench hdfs` options.
#[derive(Debug, Args)]
pub struct HdfsBenchArgs {
    /// The HDFS to write to, `hdfs://host:port`.
    #[arg(long)]
    pub url: String,
    /// Classpath for the Java baseline (tests/hdfs: classes + dependencies).
    #[arg(long, value_name = "CP")]
    pub java_classpath: String,
    /// Directory for the file channels (a fresh subdirectory is removed at the end).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Events per measurement.
    #[arg(long, default_value_t = 300_000)]
    pub events: u64,
    /// Body size in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 1024)]
    pub event_size: usize,
    /// Events per channel transaction and per sync.
    #[arg(long, default_value_t = 100)]
    pub batch: usize,
    /// Rounds (each runs flumen and Hadoop once per file type).
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// How each batch is made durable, on both sides: `hsync` (flumen's default, Hadoop's
    /// `hsync()` every batch) or `none` (flumen's `hdfs.sync = none`; Hadoop's client writes
    /// without syncing until close): `none` measures what the per-batch sync costs.
    #[arg(long, default_value = "hsync", value_parser = ["hsync", "none"])]
    pub sync: String,
    /// flumen's channel: `file` (the default, fsync on every commit) or `memory`, to see what
    /// the durable channel costs in this shape.
    #[arg(long, default_value = "file", value_parser = ["file", "memory"])]
    pub channel: String,
    /// Print only the JSON line.
    #[arg(long)]
    pub json: bool,
}

/// One file type's medians.
#[derive(Debug, serde::Serialize)]
pub struct TypeResult {
    pub file_type: &'static str,
    pub flumen_events_per_sec: f64,
    pub java_events_per_sec: f64,
    pub ratio: f64,
    pub ratios: Vec<f64>,
}

/// What `flumen bench hdfs` reports (the last stdout line).
#[derive(Debug, serde::Serialize)]
pub struct HdfsBenchReport {
    pub events: u64,
    pub event_size: usize,
    pub batch: usize,
    pub rounds: usize,
    pub sync: String,
    pub channel: String,
    pub datastream_flumen_events_per_sec: f64,
    pub datastream_java_events_per_sec: f64,
    pub datastream_ratio: f64,
    pub sequencefile_flumen_events_per_sec: f64,
    pub sequencefile_java_events_per_sec: f64,
    pub sequencefile_ratio: f64,
    pub target_ratio: f64,
    pub meets_target: bool,
    pub verified: bool,
    pub detail: Vec<TypeResult>,
}

pub(super) fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn props(a: &HdfsBenchArgs, dir: &Path, hdfs_dir: &str, file_type: &str) -> String {
    let capacity = a.events.max(1_000_000);
    format!(
        "a1.sources = r1\n\
         a1.channels = c1\n\
         a1.sinks = k1\n\
         {channel}\
         a1.channels.c1.capacity = {capacity}\n\
         a1.channels.c1.transactionCapacity = {tc}\n\
         a1.sources.r1.type = stress\n\
         a1.sources.r1.size = {size}\n\
         a1.sources.r1.maxTotalEvents = {n}\n\
         a1.sources.r1.batchSize = {k}\n\
         a1.sources.r1.channels = c1\n\
         a1.sinks.k1.type = hdfs\n\
         a1.sinks.k1.channel = c1\n\
         a1.sinks.k1.hdfs.path = {url}{hdfs_dir}\n\
         a1.sinks.k1.hdfs.fileType = {file_type}\n\
         a1.sinks.k1.hdfs.batchSize = {k}\n\
         a1.sinks.k1.hdfs.rollInterval = 0\n\
         a1.sinks.k1.hdfs.rollSize = 0\n\
         a1.sinks.k1.hdfs.rollCount = 0\n\
         a1.sinks.k1.hdfs.useLocalTimeStamp = true\n\
         a1.sinks.k1.hdfs.sync = {sync}\n",
        channel = if a.channel == "memory" {
            "a1.channels.c1.type = memory\n".to_string()
        } else {
            format!(
                "a1.channels.c1.type = file\n\
                 a1.channels.c1.checkpointDir = {}\n\
                 a1.channels.c1.dataDirs = {}\n\
                 a1.channels.c1.minimumRequiredSpace = 1048576\n",
                dir.join("checkpoint").display(),
                dir.join("data").display()
            )
        },
        tc = a.batch.max(1000),
        size = a.event_size,
        n = a.events,
        k = a.batch,
        url = a.url.trim_end_matches('/'),
        sync = a.sync,
    )
}

/// flumen: stress -> file channel -> hdfs sink. Returns (seconds, delivered).
fn run_flumen(
    a: &HdfsBenchArgs,
    dir: &Path,
    hdfs_dir: &str,
    file_type: &str,
) -> Result<(f64, bool), CliError> {
    std::fs::create_dir_all(dir).map_err(|e| CliError::io("creating", dir, e))?;
    let text = props(a, dir, hdfs_dir, file_type);
    let (cfg, warnings) =
        agent::config::parse(&text, "bench-hdfs.properties", "a1").map_err(Box::new)?;
    for w in &warnings {
        progress!("warning: {w}");
    }
    let started = Instant::now();
    let agent = Agent::start_with(&cfg, &AgentOptions::default())?;
    let ch = agent.channels()[0].clone();
    let n = a.events;
    let deadline = Duration::from_secs(60).max(Duration::from_secs(
        n.saturating_mul(a.event_size as u64) / 1_000_000,
    ));
    let mut last = Instant::now();
    let delivered = loop {
        let s = ch.stats();
        if s.put_successes >= n && s.take_successes >= n && s.size == 0 {
            break true;
        }
        if started.elapsed() > deadline {
            progress!(
                "flumen {file_type}: gave up after {deadline:?}: {} put, {} taken of {n}",
                s.put_successes,
                s.take_successes
            );
            break false;
        }
        if last.elapsed() >= Duration::from_secs(1) {
            last = Instant::now();
            progress!(
                "flumen {file_type}: {} put, {} taken of {n}",
                s.put_successes,
                s.take_successes
            );
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    drop(ch);
    agent.shutdown()?;
    Ok((started.elapsed().as_secs_f64(), delivered))
}

/// Hadoop's client through `flumen.test.HdfsWriteBench`. Returns its seconds.
fn run_java(a: &HdfsBenchArgs, hdfs_file: &str, file_type: &str) -> Result<f64, CliError> {
    let out = Command::new("java")
        .args([
            "-Xmx1g",
            "-cp",
            &a.java_classpath,
            "flumen.test.HdfsWriteBench",
        ])
        .arg(&a.url)
        .arg(hdfs_file)
        .arg(a.events.to_string())
        .arg(a.event_size.to_string())
        .arg(a.batch.to_string())
        .arg(file_type)
        .arg(&a.sync)
        .output()
        .map_err(|e| CliError::io("running", Path::new("java"), e))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    let parsed: Option<f64> = serde_json::from_str::<serde_json::Value>(line)
        .ok()
        .and_then(|v| v.get("seconds").and_then(serde_json::Value::as_f64));
    match (out.status.success(), parsed) {
        (true, Some(s)) => Ok(s),
        _ => Err(java_failed("the Java baseline", &out)),
    }
}

/// A Java baseline's failure: its status, stdout and the last 20 lines of its stderr.
pub(super) fn java_failed(what: &str, out: &std::process::Output) -> CliError {
    CliError::Failed(format!(
        "{what} failed ({}): {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout).trim(),
        String::from_utf8_lossy(&out.stderr)
            .lines()
            .rev()
            .take(20)
            .collect::<Vec<_>>()
            .join("\n")
    ))
}

/// `flumen bench hdfs`.
pub fn run(a: &HdfsBenchArgs) -> Result<ExitCode, CliError> {
    if a.events == 0 || a.batch == 0 || a.rounds == 0 {
        return Err(CliError::Usage(
            "--events, --batch and --rounds must be at least 1".into(),
        ));
    }
    let parent = a.dir.clone().unwrap_or_else(std::env::temp_dir);
    let run_dir = RunDir::create(&parent)?;
    let tag = std::process::id();
    // A fresh cluster's first writes are slow: warm it up untimed.
    progress!("warm-up: 64 MiB through Hadoop's client ...");
    let warm = HdfsBenchArgs {
        events: 65_536,
        ..clone_args(a)
    };
    run_java(&warm, &format!("/bench-{tag}/warmup"), "DataStream")?;

    let mut detail = Vec::new();
    let mut verified = true;
    for file_type in ["DataStream", "SequenceFile"] {
        let (mut f_eps, mut j_eps, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
        for round in 0..a.rounds {
            let name = format!("{}-{round}", file_type.to_ascii_lowercase());
            let (fs, ok) = run_flumen(
                a,
                &run_dir.0.join(&name),
                &format!("/bench-{tag}/flumen-{name}"),
                file_type,
            )?;
            verified &= ok;
            let js = run_java(a, &format!("/bench-{tag}/java-{name}"), file_type)?;
            let (fe, je) = (a.events as f64 / fs, a.events as f64 / js);
            progress!(
                "{file_type} round {}: flumen {fe:.0} events/s, Hadoop {je:.0} events/s, \
                 ratio {:.3}",
                round + 1,
                fe / je
            );
            f_eps.push(fe);
            j_eps.push(je);
            ratios.push(round3(fe / je));
        }
        detail.push(TypeResult {
            file_type,
            flumen_events_per_sec: median(&f_eps).round(),
            java_events_per_sec: median(&j_eps).round(),
            ratio: round3(median(&ratios)),
            ratios,
        });
    }
    let (ds, sf) = (&detail[0], &detail[1]);
    let report = HdfsBenchReport {
        events: a.events,
        event_size: a.event_size,
        batch: a.batch,
        rounds: a.rounds,
        sync: a.sync.clone(),
        channel: a.channel.clone(),
        datastream_flumen_events_per_sec: ds.flumen_events_per_sec,
        datastream_java_events_per_sec: ds.java_events_per_sec,
        datastream_ratio: ds.ratio,
        sequencefile_flumen_events_per_sec: sf.flumen_events_per_sec,
        sequencefile_java_events_per_sec: sf.java_events_per_sec,
        sequencefile_ratio: sf.ratio,
        target_ratio: TARGET_RATIO,
        meets_target: ds.ratio >= TARGET_RATIO && sf.ratio >= TARGET_RATIO,
        verified,
        detail,
    };
    let mut out = std::io::stdout().lock();
    if !a.json {
        writeln!(
            out,
            "hdfs bench: {} events × {} B, batch {}, {} rounds, sync {} every batch",
            a.events, a.event_size, a.batch, a.rounds, a.sync
        )
        .map_err(CliError::Output)?;
        for d in &report.detail {
            writeln!(
                out,
                "  {:<13} flumen {:>10.0} events/s   Hadoop {:>10.0} events/s   ratio {:.3}",
                d.file_type, d.flumen_events_per_sec, d.java_events_per_sec, d.ratio
            )
            .map_err(CliError::Output)?;
        }
    }
    writeln!(out, "{}", serde_json::to_string(&report)?).map_err(CliError::Output)?;
    out.flush().map_err(CliError::Output)?;
    drop(run_dir);
    Ok(if report.verified {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn clone_args(a: &HdfsBenchArgs) -> HdfsBenchArgs {
    HdfsBenchArgs {
        url: a.url.clone(),
        java_classpath: a.java_classpath.clone(),
        dir: a.dir.clone(),
        events: a.events,
        event_size: a.event_size,
        batch: a.batch,
        rounds: a.rounds,
        sync: a.sync.clone(),
        channel: a.channel.clone(),
        json: a.json,
    }
}
