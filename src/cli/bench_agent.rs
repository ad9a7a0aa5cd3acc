//! `flumen bench agent`: whole agents, built from properties text through `agent::config::parse`
//! and started with [`Agent::start_with`], timed end to end, next to the bare channel on the
//! same shape:
//!
//! * shape A: stress source (N events of B bytes, batch K) -> file channel -> null sink;
//! * baseline: `run_workload` on a fresh file channel, 1 producer, 1 consumer, batch K;
//! * shape B: netcat source (a client streaming lines of B-1 bytes, `ack-every-event =
//!   false`) -> file channel -> file_roll sink;
//! * routed: stress -> 3 interceptors (timestamp, host, regex_extractor) -> a multiplexing
//!   selector over 2 file channels, each drained by a null sink;
//! * unrouted: the same shape without interceptors and selector (so every event goes to both
//!   channels, as Flume's default replicating selector sends it): the routed shape's target
//!   is against this one. The routed shape is also compared with shape A (one channel, the
//!   same events), which shows what the second channel's commits cost.
//!
//! Every file channel is fresh, in its own subdirectory of the run directory, with the
//! default fsync (every commit). A shape is done when the channel's stats show every event
//! put, taken and committed (and, for shape B, the output files hold every line); stats are
//! polled every 2 ms. Output: a table (unless `--json`), then one JSON object as the last
//! stdout line; progress goes to stderr. Exit code 1 when a shape did not deliver every event.

use std::io::{BufWriter, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Args;

use super::bench::{free_space, open_channel, run_workload, BenchArgs, ChannelKind, RunDir};
use super::bench::{Workload, WorkloadOutcome};
use super::CliError;
use crate::agent::{self, Agent, AgentOptions};
use crate::channel::file::FsyncPolicy;
use crate::channel::ChannelStats;
use crate::io::IoKind;

/// Flume's default `minimumRequiredSpace` (500 MiB).
const DEFAULT_MIN_SPACE: u64 = 524_288_000;

/// The target: the agent within 0.7x of the bare channel.
const TARGET_RATIO: f64 = 0.7;

/// The routed shape's target: at least 0.8x the same shape without interceptors and selector.
const ROUTED_TARGET_RATIO: f64 = 0.8;

/// The routed shape reads the stress body up to this byte (its regex captures bytes 33..37).
const ROUTED_MIN_EVENT_SIZE: usize = 37;

/// `flumen bench agent` options.
#[derive(Debug, Args)]
pub struct AgentBenchArgs {
    /// Directory on the disk to measure; a fresh subdirectory is made in it and removed at
    /// the end. Default: the system temp dir.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Events per shape.
    #[arg(long, default_value_t = 500_000)]
    pub events: u64,
    /// Body size in bytes (netcat lines are one byte shorter, plus the newline).
    #[arg(long, value_name = "BYTES", default_value_t = 1024)]
    pub event_size: usize,
    /// Events per source and sink transaction (netcat puts one event per transaction).
    #[arg(long, default_value_t = 1000)]
    pub batch: usize,
    /// Events for the netcat shape, which commits (and so fdatasyncs) once per line as Flume's
    /// netcat source does: a few seconds' worth by default.
    #[arg(long, default_value_t = 20_000)]
    pub netcat_events: u64,
    /// Print only the JSON line.
    #[arg(long)]
    pub json: bool,
}

/// What `flumen bench agent` reports (the last stdout line).
#[derive(Debug, serde::Serialize)]
pub struct AgentBenchReport {
    pub events: u64,
    pub event_size: usize,
    pub batch: usize,
    pub fsync: &'static str,
    pub seq_file_null_seconds: f64,
    pub seq_file_null_events_per_sec: f64,
    pub seq_file_null_mb_per_sec: f64,
    pub seq_file_null_verified: bool,
    pub channel_seconds: f64,
    pub channel_events_per_sec: f64,
    pub channel_mb_per_sec: f64,
    pub channel_verified: bool,
    pub agent_vs_channel_ratio: f64,
    pub target_ratio: f64,
    pub meets_target: bool,
    pub netcat_events: u64,
    pub netcat_file_roll_seconds: f64,
    pub netcat_file_roll_events_per_sec: f64,
    pub netcat_file_roll_mb_per_sec: f64,
    pub netcat_file_roll_lines: u64,
    pub netcat_file_roll_verified: bool,
    pub routed_seconds: f64,
    pub routed_events_per_sec: f64,
    pub routed_mb_per_sec: f64,
    /// Events the selector sent to each of the two channels.
    pub routed_split: [u64; 2],
    pub routed_verified: bool,
    pub unrouted_seconds: f64,
    pub unrouted_events_per_sec: f64,
    pub unrouted_verified: bool,
    /// Routed events/s over the unrouted shape's (same channels and sinks, every event to
    /// both channels).
    pub routed_vs_unrouted_ratio: f64,
    /// Routed events/s over shape A's (one channel, no interceptors).
    pub routed_vs_one_channel_ratio: f64,
    pub routed_target_ratio: f64,
    pub routed_meets_target: bool,
    pub verified: bool,
}

pub(super) fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

pub(super) fn per_sec(n: f64, d: Duration) -> f64 {
    let s = d.as_secs_f64();
    if s > 0.0 {
        n / s
    } else {
        0.0
    }
}

fn validate(a: &AgentBenchArgs) -> Result<(), CliError> {
    if a.events == 0 || a.batch == 0 || a.netcat_events == 0 {
        return Err(CliError::Usage(
            "--events, --netcat-events and --batch must be at least 1".into(),
        ));
    }
    if a.event_size < ROUTED_MIN_EVENT_SIZE {
        return Err(CliError::Usage(format!(
            "--event-size must be at least {ROUTED_MIN_EVENT_SIZE} (the routed shape reads that far into each body)"
        )));
    }
    if a.events.checked_mul(a.event_size as u64).is_none() {
        return Err(CliError::Usage("--events × --event-size overflows".into()));
    }
    Ok(())
}

/// `minimumRequiredSpace` for a channel in `dir`: the default, or a quarter of the free space
/// when the disk has less than the default free (as `bench channel` does).
pub(super) fn min_space(dir: &Path) -> u64 {
    match free_space(dir) {
        Ok(free) if free < DEFAULT_MIN_SPACE => {
            let lowered = (free / 4).max(1_048_576);
            progress!(
                "note: {} has {free} bytes free, below the default minimumRequiredSpace; \
                 lowering it to {lowered} bytes for this run",
                dir.display()
            );
            lowered
        }
        _ => DEFAULT_MIN_SPACE,
    }
}

/// The file channel `c1` of both agents, in `dir`.
fn channel_props(a: &AgentBenchArgs, dir: &Path) -> String {
    file_channel_props(
        dir,
        a.events.max(a.batch as u64).max(1_000_000),
        a.batch.max(10_000),
    )
}

/// A benchmark agent's one file channel `c1` in `dir` (its directories under it), with
/// `capacity` and `transactionCapacity` `tc`.
pub(super) fn file_channel_props(dir: &Path, capacity: u64, tc: usize) -> String {
    format!(
        "a1.channels = c1\n\
         a1.channels.c1.type = file\n\
         a1.channels.c1.checkpointDir = {cp}\n\
         a1.channels.c1.dataDirs = {data}\n\
         a1.channels.c1.capacity = {capacity}\n\
         a1.channels.c1.transactionCapacity = {tc}\n\
         a1.channels.c1.minimumRequiredSpace = {space}\n",
        cp = dir.join("checkpoint").display(),
        data = dir.join("data").display(),
        space = min_space(dir),
    )
}

/// Shape A's properties: stress -> file -> null.
pub fn stress_props(a: &AgentBenchArgs, dir: &Path) -> String {
    format!(
        "a1.sources = r1\n\
         a1.sinks = k1\n\
         {channel}\
         a1.sources.r1.type = stress\n\
         a1.sources.r1.size = {size}\n\
         a1.sources.r1.maxTotalEvents = {n}\n\
         a1.sources.r1.batchSize = {k}\n\
         a1.sources.r1.channels = c1\n\
         a1.sinks.k1.type = null\n\
         a1.sinks.k1.batchSize = {k}\n\
         a1.sinks.k1.channel = c1\n",
        channel = channel_props(a, dir),
        size = a.event_size,
        n = a.events,
        k = a.batch,
    )
}

/// A file channel `name` of the routed shape, in `dir/name`.
fn routed_channel(a: &AgentBenchArgs, dir: &Path, name: &str) -> String {
    channel_props(a, &dir.join(name))
        .lines()
        .filter(|l| !l.starts_with("a1.channels ="))
        .map(|l| {
            format!(
                "{}\n",
                l.replace("a1.channels.c1.", &format!("a1.channels.{name}."))
            )
        })
        .collect()
}

/// The routed shape's properties (the unrouted shape's without `routed`: no interceptors and
/// no selector): stress -> timestamp, host, regex_extractor -> multiplexing over c1 and c2
/// (file) -> a null sink each. The stress body holds the event's number in its
/// first 8 bytes, 7 bits a byte, then byte `j` is `' ' + j % 95`: bytes 33..37 read `ABCD`.
/// The regex captures them when the first byte is below 0x40 (64 events of every 128), so
/// `half = ABCD` sends those to c1 and the rest, without the header, go to the default c2.
pub fn routed_props(a: &AgentBenchArgs, dir: &Path, routed: bool) -> String {
    let text = format!(
        "a1.sources = r1\n\
         a1.channels = c1 c2\n\
         a1.sinks = k1 k2\n\
         {c1}{c2}\
         a1.sources.r1.type = stress\n\
         a1.sources.r1.size = {size}\n\
         a1.sources.r1.maxTotalEvents = {n}\n\
         a1.sources.r1.batchSize = {k}\n\
         a1.sources.r1.channels = c1 c2\n\
         a1.sources.r1.interceptors = ts host rx\n\
         a1.sources.r1.interceptors.ts.type = timestamp\n\
         a1.sources.r1.interceptors.host.type = host\n\
         a1.sources.r1.interceptors.rx.type = regex_extractor\n\
         a1.sources.r1.interceptors.rx.regex = ^[\\\\x00-\\\\x3f][\\\\s\\\\S]{{32}}(ABCD)\n\
         a1.sources.r1.interceptors.rx.serializers = s1\n\
         a1.sources.r1.interceptors.rx.serializers.s1.name = half\n\
         a1.sources.r1.selector.type = multiplexing\n\
         a1.sources.r1.selector.header = half\n\
         a1.sources.r1.selector.mapping.ABCD = c1\n\
         a1.sources.r1.selector.default = c2\n\
         a1.sinks.k1.type = null\n\
         a1.sinks.k1.batchSize = {k}\n\
         a1.sinks.k1.channel = c1\n\
         a1.sinks.k2.type = null\n\
         a1.sinks.k2.batchSize = {k}\n\
         a1.sinks.k2.channel = c2\n",
        c1 = routed_channel(a, dir, "c1"),
        c2 = routed_channel(a, dir, "c2"),
        size = a.event_size,
        n = a.events,
        k = a.batch,
    );
    if routed {
        return text;
    }
    text.lines()
        .filter(|l| !l.contains(".interceptors") && !l.contains(".selector."))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// Shape B's properties: netcat on 127.0.0.1:`port` -> file -> file_roll into `out`.
fn netcat_props(a: &AgentBenchArgs, dir: &Path, port: u16, out: &Path) -> String {
    format!(
        "a1.sources = r1\n\
         a1.sinks = k1\n\
         {channel}\
         a1.sources.r1.type = netcat\n\
         a1.sources.r1.bind = 127.0.0.1\n\
         a1.sources.r1.port = {port}\n\
         a1.sources.r1.max-line-length = {max}\n\
         a1.sources.r1.ack-every-event = false\n\
         a1.sources.r1.channels = c1\n\
         a1.sinks.k1.type = file_roll\n\
         a1.sinks.k1.sink.directory = {out}\n\
         a1.sinks.k1.sink.rollInterval = 0\n\
         a1.sinks.k1.sink.batchSize = {k}\n\
         a1.sinks.k1.channel = c1\n",
        channel = channel_props(a, dir),
        max = a.event_size,
        out = out.display(),
        k = a.batch,
    )
}

pub(super) fn start_agent(props: &str, what: &str) -> Result<Agent, CliError> {
    let (cfg, warnings) = agent::config::parse(props, what, "a1").map_err(Box::new)?;
    for w in &warnings {
        progress!("warning: {w}");
    }
    Ok(Agent::start_with(&cfg, &AgentOptions::default())?)
}

/// Every event put, taken and committed.
pub(super) fn drained(s: &ChannelStats, n: u64) -> bool {
    s.put_successes >= n && s.take_successes >= n && s.size == 0
}

/// Polls `done` every 2 ms until it holds or `deadline` passes; prints progress each second.
/// Returns whether it held.
pub(super) fn wait_for(
    what: &str,
    deadline: Duration,
    mut progress: impl FnMut() -> String,
    mut done: impl FnMut() -> bool,
) -> bool {
    let start = Instant::now();
    let mut last = start;
    loop {
        if done() {
            return true;
        }
        if start.elapsed() > deadline {
            progress!(
                "{what}: gave up after {:.0} s: {}",
                deadline.as_secs_f64(),
                progress()
            );
            return false;
        }
        if last.elapsed() >= Duration::from_secs(1) {
            last = Instant::now();
            progress!("{what}: {}", progress());
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// A generous deadline: a minute, or 2 MB/s, whichever is longer.
fn deadline(a: &AgentBenchArgs) -> Duration {
    let bytes = a.events.saturating_mul(a.event_size as u64);
    Duration::from_secs(60).max(Duration::from_secs(bytes / 2_000_000))
}

struct Shape {
    elapsed: Duration,
    delivered: bool,
    lines: u64,
}

/// Shape A: stress -> file channel -> null.
fn shape_a(a: &AgentBenchArgs, dir: &Path) -> Result<Shape, CliError> {
    std::fs::create_dir_all(dir).map_err(|e| CliError::io("creating", dir, e))?;
    let props = stress_props(a, dir);
    progress!("shape A: stress -> file channel -> null ...");
    let started = Instant::now();
    let agent = start_agent(&props, "bench-agent-stress.properties")?;
    let ch = agent.channels()[0].clone();
    let n = a.events;
    let ok = wait_for(
        "shape A",
        deadline(a),
        || {
            let s = ch.stats();
            format!("{} put, {} taken of {n}", s.put_successes, s.take_successes)
        },
        || drained(&ch.stats(), n),
    );
    let elapsed = started.elapsed();
    let s = ch.stats();
    drop(ch);
    agent.shutdown()?;
    Ok(Shape {
        elapsed,
        delivered: ok && s.put_successes == n && s.take_successes == n && s.size == 0,
        lines: 0,
    })
}

/// The routed shape (stress -> 3 interceptors -> multiplexing -> 2 file channels -> 2 null),
/// or without `routed` the unrouted one (every event to both channels). Returns the shape and
/// how many events each channel got.
fn shape_routed(
    a: &AgentBenchArgs,
    dir: &Path,
    routed: bool,
) -> Result<(Shape, [u64; 2]), CliError> {
    std::fs::create_dir_all(dir).map_err(|e| CliError::io("creating", dir, e))?;
    let props = routed_props(a, dir, routed);
    let what = if routed { "routed" } else { "unrouted" };
    if routed {
        progress!(
            "routed: stress -> 3 interceptors -> multiplexing -> 2 file channels -> null ..."
        );
    } else {
        progress!("unrouted: stress -> 2 file channels (every event to both) -> null ...");
    }
    let started = Instant::now();
    let agent = start_agent(&props, &format!("bench-agent-{what}.properties"))?;
    let chans = [agent.channels()[0].clone(), agent.channels()[1].clone()];
    // Unrouted, each channel holds every event.
    let n = if routed { a.events } else { 2 * a.events };
    let totals = |chans: &[std::sync::Arc<dyn crate::channel::Channel>; 2]| {
        let (s1, s2) = (chans[0].stats(), chans[1].stats());
        (
            s1.put_successes + s2.put_successes,
            s1.take_successes + s2.take_successes,
            s1.size + s2.size,
        )
    };
    let ok = wait_for(
        what,
        deadline(a),
        || {
            let (put, taken, _) = totals(&chans);
            format!("{put} put, {taken} taken of {n}")
        },
        || {
            let (put, taken, size) = totals(&chans);
            put >= n && taken >= n && size == 0
        },
    );
    let elapsed = started.elapsed();
    let (put, taken, size) = totals(&chans);
    let split = [
        chans[0].stats().put_successes,
        chans[1].stats().put_successes,
    ];
    drop(chans);
    agent.shutdown()?;
    Ok((
        Shape {
            elapsed,
            delivered: ok && put == n && taken == n && size == 0,
            lines: 0,
        },
        split,
    ))
}

/// The baseline: `run_workload` on a fresh file channel, same shape.
fn baseline(a: &AgentBenchArgs, dir: &Path) -> Result<(WorkloadOutcome, bool), CliError> {
    let outcome = bare_channel(dir, a.events, a.event_size, a.batch, a.json)?;
    let ok = outcome.verified(a.events);
    Ok((outcome, ok))
}

/// The bare file channel the agent benches compare against: `run_workload` on a fresh one
/// in `dir` (no warm-up, as the agents start from a brand-new channel too), 1 producer and 1
/// consumer, `events` of `event_size` bytes in batches of `batch`, fsync every commit.
pub(super) fn bare_channel(
    dir: &Path,
    events: u64,
    event_size: usize,
    batch: usize,
    json: bool,
) -> Result<WorkloadOutcome, CliError> {
    std::fs::create_dir_all(dir).map_err(|e| CliError::io("creating", dir, e))?;
    progress!("channel: bench channel, 1 producer, 1 consumer ...");
    let args = BenchArgs {
        dir: Some(dir.to_path_buf()),
        events,
        event_size,
        batch,
        take_batch: None,
        producers: 1,
        consumers: 1,
        io: IoKind::Std,
        channel: ChannelKind::File,
        fsync: FsyncPolicy::EveryCommit,
        direct_io: true,
        spare_segments: crate::channel::file::FileChannelConfig::new(dir).spare_segments,
        warmup: false,
        json,
    };
    let (ch, _) = open_channel(&args, dir)?;
    let w = Workload {
        events,
        event_size,
        batch,
        take_batch: batch,
        producers: 1,
        consumers: 1,
        progress: true,
    };
    let outcome = run_workload(&*ch, &w)?;
    ch.close()?;
    Ok(outcome)
}

/// Sends `n` lines of `len` bytes (then a newline) to `port` and closes the connection.
fn send_lines(port: u16, n: u64, len: usize) -> std::io::Result<()> {
    let stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_nodelay(true)?;
    let mut w = BufWriter::with_capacity(1 << 16, stream);
    let mut line: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
    line.push(b'\n');
    for i in 0..n {
        // Fresh content per line: the number, in decimal, at the front.
        let digits = i.to_string();
        let k = digits.len().min(len);
        line[..k].copy_from_slice(&digits.as_bytes()[..k]);
        w.write_all(&line)?;
    }
    w.flush()?;
    let stream = w.into_inner().map_err(|e| e.into_error())?;
    stream.shutdown(std::net::Shutdown::Write)?;
    // The source never writes with ack-every-event off; wait for it to close its end.
    let mut sink = Vec::new();
    let _ = (&stream).read_to_end(&mut sink);
    Ok(())
}

/// Total bytes of the files in `dir` (not recursive).
fn dir_file_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// Newlines in the files in `dir`.
fn dir_lines(dir: &Path) -> Result<u64, CliError> {
    let mut lines = 0u64;
    let rd = std::fs::read_dir(dir).map_err(|e| CliError::io("reading", dir, e))?;
    let mut buf = vec![0u8; 1 << 20];
    for e in rd.flatten() {
        let p = e.path();
        if !p.is_file() {
            continue;
        }
        let mut f = std::fs::File::open(&p).map_err(|e| CliError::io("opening", &p, e))?;
        loop {
            let n = f
                .read(&mut buf)
                .map_err(|e| CliError::io("reading", &p, e))?;
            if n == 0 {
                break;
            }
            lines += buf[..n].iter().filter(|&&b| b == b'\n').count() as u64;
        }
    }
    Ok(lines)
}

/// Shape B: netcat -> file channel -> file_roll.
fn shape_b(a: &AgentBenchArgs, dir: &Path) -> Result<Shape, CliError> {
    std::fs::create_dir_all(dir).map_err(|e| CliError::io("creating", dir, e))?;
    let out = dir.join("out");
    std::fs::create_dir_all(&out).map_err(|e| CliError::io("creating", &out, e))?;
    // A free port: bind to port 0, note the port, let it go for the agent.
    let port = {
        let l = TcpListener::bind(("127.0.0.1", 0))
            .map_err(|e| CliError::Failed(format!("finding a free port: {e}")))?;
        l.local_addr()
            .map_err(|e| CliError::Failed(format!("finding a free port: {e}")))?
            .port()
    };
    let props = netcat_props(a, dir, port, &out);
    progress!("shape B: netcat -> file channel -> file_roll (port {port}) ...");
    let n = a.netcat_events;
    let expected_bytes = n * a.event_size as u64;
    let started = Instant::now();
    let agent = start_agent(&props, "bench-agent-netcat.properties")?;
    let ch = agent.channels()[0].clone();
    let len = a.event_size - 1;
    let client = std::thread::spawn(move || send_lines(port, n, len));
    let ok = wait_for(
        "shape B",
        deadline(a),
        || {
            let s = ch.stats();
            format!(
                "{} put, {} taken of {n}; {} of {expected_bytes} bytes written",
                s.put_successes,
                s.take_successes,
                dir_file_bytes(&out)
            )
        },
        || drained(&ch.stats(), n) && dir_file_bytes(&out) >= expected_bytes,
    );
    let elapsed = started.elapsed();
    let s = ch.stats();
    drop(ch);
    agent.shutdown()?;
    let sent = client
        .join()
        .map_err(|_| CliError::Failed("the netcat client thread panicked".into()))?;
    if let Err(e) = &sent {
        progress!("shape B: the client failed: {e}");
    }
    let lines = dir_lines(&out)?;
    Ok(Shape {
        elapsed,
        delivered: ok
            && sent.is_ok()
            && s.put_successes == n
            && s.take_successes == n
            && lines == n
            && dir_file_bytes(&out) == expected_bytes,
        lines,
    })
}

/// Runs the three measurements and builds the report.
pub fn measure(a: &AgentBenchArgs) -> Result<AgentBenchReport, CliError> {
    validate(a)?;
    let parent = a.dir.clone().unwrap_or_else(std::env::temp_dir);
    let run_dir = RunDir::create(&parent)?;
    let sa = shape_a(a, &run_dir.0.join("stress"))?;
    let (base, base_ok) = baseline(a, &run_dir.0.join("channel"))?;
    let sb = shape_b(a, &run_dir.0.join("netcat"))?;
    let (sr, split) = shape_routed(a, &run_dir.0.join("routed"), true)?;
    let (su, _) = shape_routed(a, &run_dir.0.join("unrouted"), false)?;

    let n = a.events as f64;
    let mb = n * a.event_size as f64 / 1e6;
    let a_eps = per_sec(n, sa.elapsed);
    let c_eps = per_sec(n, base.elapsed);
    let ratio = if c_eps > 0.0 { a_eps / c_eps } else { 0.0 };
    let verified = sa.delivered && base_ok && sb.delivered && sr.delivered && su.delivered;
    let r_eps = per_sec(n, sr.elapsed);
    let u_eps = per_sec(n, su.elapsed);
    let routed_ratio = if u_eps > 0.0 { r_eps / u_eps } else { 0.0 };
    let one_channel_ratio = if a_eps > 0.0 { r_eps / a_eps } else { 0.0 };
    Ok(AgentBenchReport {
        events: a.events,
        event_size: a.event_size,
        batch: a.batch,
        fsync: "every-commit",
        seq_file_null_seconds: round3(sa.elapsed.as_secs_f64()),
        seq_file_null_events_per_sec: round3(a_eps),
        seq_file_null_mb_per_sec: round3(per_sec(mb, sa.elapsed)),
        seq_file_null_verified: sa.delivered,
        channel_seconds: round3(base.elapsed.as_secs_f64()),
        channel_events_per_sec: round3(c_eps),
        channel_mb_per_sec: round3(per_sec(mb, base.elapsed)),
        channel_verified: base_ok,
        agent_vs_channel_ratio: round3(ratio),
        target_ratio: TARGET_RATIO,
        meets_target: ratio >= TARGET_RATIO,
        netcat_events: a.netcat_events,
        netcat_file_roll_seconds: round3(sb.elapsed.as_secs_f64()),
        netcat_file_roll_events_per_sec: round3(per_sec(a.netcat_events as f64, sb.elapsed)),
        netcat_file_roll_mb_per_sec: round3(per_sec(
            a.netcat_events as f64 * a.event_size as f64 / 1e6,
            sb.elapsed,
        )),
        netcat_file_roll_lines: sb.lines,
        netcat_file_roll_verified: sb.delivered,
        routed_seconds: round3(sr.elapsed.as_secs_f64()),
        routed_events_per_sec: round3(r_eps),
        routed_mb_per_sec: round3(per_sec(mb, sr.elapsed)),
        routed_split: split,
        routed_verified: sr.delivered,
        unrouted_seconds: round3(su.elapsed.as_secs_f64()),
        unrouted_events_per_sec: round3(u_eps),
        unrouted_verified: su.delivered,
        routed_vs_unrouted_ratio: round3(routed_ratio),
        routed_vs_one_channel_ratio: round3(one_channel_ratio),
        routed_target_ratio: ROUTED_TARGET_RATIO,
        routed_meets_target: routed_ratio >= ROUTED_TARGET_RATIO,
        verified,
    })
}

fn write_table(out: &mut impl Write, r: &AgentBenchReport) -> std::io::Result<()> {
    writeln!(
        out,
        "agent bench: {} events × {} B, batch {}, file channel fsync {}",
        r.events, r.event_size, r.batch, r.fsync
    )?;
    writeln!(
        out,
        "  {:<34} {:>12} {:>10} {:>9} {:>9}",
        "shape", "events/s", "MB/s", "seconds", "verified"
    )?;
    let row = |out: &mut dyn Write, name: &str, eps: f64, mbps: f64, s: f64, ok: bool| {
        writeln!(
            out,
            "  {name:<34} {eps:>12.0} {mbps:>10.1} {s:>9.3} {ok:>9}"
        )
    };
    row(
        out,
        "stress -> file -> null (agent)",
        r.seq_file_null_events_per_sec,
        r.seq_file_null_mb_per_sec,
        r.seq_file_null_seconds,
        r.seq_file_null_verified,
    )?;
    row(
        out,
        "bench channel (1 prod, 1 cons)",
        r.channel_events_per_sec,
        r.channel_mb_per_sec,
        r.channel_seconds,
        r.channel_verified,
    )?;
    row(
        out,
        "netcat -> file -> file_roll (agent)",
        r.netcat_file_roll_events_per_sec,
        r.netcat_file_roll_mb_per_sec,
        r.netcat_file_roll_seconds,
        r.netcat_file_roll_verified,
    )?;
    row(
        out,
        "stress -> 3 icpt -> mux -> 2 file -> null",
        r.routed_events_per_sec,
        r.routed_mb_per_sec,
        r.routed_seconds,
        r.routed_verified,
    )?;
    row(
        out,
        "stress -> 2 file (both) -> null",
        r.unrouted_events_per_sec,
        r.unrouted_events_per_sec * r.event_size as f64 / 1e6,
        r.unrouted_seconds,
        r.unrouted_verified,
    )?;
    writeln!(
        out,
        "  agent / channel: {:.3} (target >= {}: {})",
        r.agent_vs_channel_ratio,
        r.target_ratio,
        if r.meets_target { "met" } else { "not met" }
    )?;
    writeln!(
        out,
        "  routed / unrouted: {:.3} (target >= {}: {}); routed / one channel: {:.3}; split {} / {}",
        r.routed_vs_unrouted_ratio,
        r.routed_target_ratio,
        if r.routed_meets_target {
            "met"
        } else {
            "not met"
        },
        r.routed_vs_one_channel_ratio,
        r.routed_split[0],
        r.routed_split[1]
    )
}

/// `flumen bench agent`.
pub fn run(a: &AgentBenchArgs) -> Result<ExitCode, CliError> {
    let report = measure(a)?;
    let mut out = std::io::stdout().lock();
    if !a.json {
        write_table(&mut out, &report).map_err(CliError::Output)?;
    }
    writeln!(out, "{}", serde_json::to_string(&report)?).map_err(CliError::Output)?;
    out.flush().map_err(CliError::Output)?;
    if !report.verified {
        progress!(
            "error: a shape did not deliver every event (stress: {}, channel: {}, netcat: {}, routed: {}, unrouted: {})",
            report.seq_file_null_verified,
            report.channel_verified,
            report.netcat_file_roll_verified,
            report.routed_verified,
            report.unrouted_verified
        );
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiny_run_reports_every_field_and_verifies() {
        let a = AgentBenchArgs {
            dir: None,
            events: 2000,
            event_size: 1024,
            batch: 100,
            netcat_events: 300,
            json: true,
        };
        let report = measure(&a).expect("bench runs");
        let v: serde_json::Value =
            serde_json::from_str(&serde_json::to_string(&report).expect("json")).expect("parse");
        for key in [
            "events",
            "event_size",
            "batch",
            "seq_file_null_events_per_sec",
            "seq_file_null_mb_per_sec",
            "channel_events_per_sec",
            "agent_vs_channel_ratio",
            "netcat_file_roll_events_per_sec",
            "netcat_file_roll_mb_per_sec",
            "verified",
        ] {
            assert!(v.get(key).is_some(), "missing {key} in {v}");
        }
        assert_eq!(v["events"], 2000);
        assert_eq!(v["verified"], true, "{v}");
        assert_eq!(v["netcat_file_roll_lines"], 300);
        assert_eq!(v["netcat_events"], 300);
        // The selector split the events between both channels: events 0..63 of every 128
        // have a first byte below 0x40 and go to c1.
        assert_eq!(v["routed_split"], serde_json::json!([1024, 976]), "{v}");
        assert_eq!(v["routed_verified"], true, "{v}");
        assert_eq!(v["unrouted_verified"], true, "{v}");
    }

    #[test]
    fn stress_properties_parse() {
        let a = AgentBenchArgs {
            dir: None,
            events: 10,
            event_size: 64,
            batch: 5,
            netcat_events: 10,
            json: false,
        };
        let (cfg, warnings) =
            agent::config::parse(&stress_props(&a, Path::new("/tmp/x")), "t", "a1")
                .expect("valid properties");
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(cfg.sources[0].type_name, "stress");
        let (cfg, warnings) =
            agent::config::parse(&routed_props(&a, Path::new("/tmp/x"), true), "t", "a1")
                .expect("valid routed properties");
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(cfg.channels.len(), 2);
        assert_eq!(cfg.sources[0].selector.type_name, "multiplexing");
        let (cfg, warnings) =
            agent::config::parse(&routed_props(&a, Path::new("/tmp/x"), false), "t", "a1")
                .expect("valid unrouted properties");
        assert!(warnings.is_empty(), "{warnings:?}");
        assert!(cfg.sources[0].interceptors.is_empty());
        assert_eq!(cfg.sources[0].selector.type_name, "replicating");
    }
}
