//! `flumen bench netcat | syslog | http`: a network source -> file channel -> null agent,
//! started in this process on a free port, driven by [`super::bench_load`] until every event
//! is taken from the channel, next to the bare file channel on the same events (the same-run
//! baseline; benches/compare.py runs Apache Flume's source on the same shape).
//!
//! The shapes are the issue's: netcat with one connection keeping `--in-flight` lines
//! unanswered, syslogtcp with `--clients` connections sending 200-byte lines, http with
//! `--clients` clients posting JSON arrays of `--batch` events. The agent's time runs from
//! the first byte sent to the poll (every 2 ms) that sees every event taken and committed.
//! Output: a table (unless `--json`), then one JSON object as the last stdout line. Exit code
//! 1 when an event was not delivered or was refused.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Args;

use super::bench::RunDir;
use super::bench_agent::{
    bare_channel, drained, file_channel_props, per_sec, round3, start_agent, wait_for,
};
use super::bench_load::{drive, LoadArgs, Target};
use super::CliError;

/// Which source a run measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    Netcat,
    Syslog,
    Http,
}

impl Shape {
    fn name(self) -> &'static str {
        match self {
            Shape::Netcat => "netcat",
            Shape::Syslog => "syslogtcp",
            Shape::Http => "http",
        }
    }
}

/// `flumen bench netcat | syslog | http` options.
#[derive(Debug, Args)]
pub struct NetBenchArgs {
    /// Directory on the disk to measure; a fresh subdirectory is made in it and removed at
    /// the end. Default: the system temp dir.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Events to send.
    #[arg(long, default_value_t = 200_000)]
    pub events: u64,
    /// Body size in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 200)]
    pub event_size: usize,
    /// Connections (default: 1 for netcat, 50 for syslog, 16 for http).
    #[arg(long)]
    pub clients: Option<usize>,
    /// netcat: lines each connection keeps unanswered.
    #[arg(long, default_value_t = 64)]
    pub in_flight: usize,
    /// http: events per POST; also the sink's batch.
    #[arg(long, default_value_t = 100)]
    pub batch: usize,
    /// Print only the JSON line.
    #[arg(long)]
    pub json: bool,
}

/// The last stdout line.
#[derive(Debug, serde::Serialize)]
pub struct NetBenchReport {
    pub source: &'static str,
    pub events: u64,
    pub event_size: usize,
    pub clients: usize,
    pub agent_seconds: f64,
    pub agent_events_per_sec: f64,
    /// Channel commits of the source's puts, per event: 1.0 is one sync per event.
    pub put_commits_per_event: f64,
    pub channel_seconds: f64,
    pub channel_events_per_sec: f64,
    pub agent_vs_channel_ratio: f64,
    pub refused: u64,
    pub verified: bool,
}

fn props(shape: Shape, a: &NetBenchArgs, dir: &Path, port: u16) -> String {
    let source = match shape {
        Shape::Netcat => format!(
            "a1.sources.r1.type = netcat\n\
             a1.sources.r1.bind = 127.0.0.1\n\
             a1.sources.r1.port = {port}\n\
             a1.sources.r1.max-line-length = {}\n",
            a.event_size + 1
        ),
        Shape::Syslog => format!(
            "a1.sources.r1.type = syslogtcp\n\
             a1.sources.r1.host = 127.0.0.1\n\
             a1.sources.r1.port = {port}\n\
             a1.sources.r1.eventSize = {}\n",
            a.event_size + 128
        ),
        Shape::Http => format!(
            "a1.sources.r1.type = http\n\
             a1.sources.r1.bind = 127.0.0.1\n\
             a1.sources.r1.port = {port}\n"
        ),
    };
    format!(
        "a1.sources = r1\na1.channels = c1\na1.sinks = k1\n\
         {source}a1.sources.r1.channels = c1\n\
         {channel}\
         a1.sinks.k1.type = null\n\
         a1.sinks.k1.batchSize = {k}\n\
         a1.sinks.k1.channel = c1\n",
        channel = file_channel_props(dir, a.events.max(10_000), 10_000),
        k = a.batch,
    )
}

/// A port free on 127.0.0.1 just now (for an agent's listener or monitoring server).
pub(super) fn free_port() -> Result<u16, CliError> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|e| CliError::Failed(format!("finding a free port: {e}")))?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(|e| CliError::Failed(format!("finding a free port: {e}")))
}

/// Runs one shape.
pub fn run(shape: Shape, a: &NetBenchArgs) -> Result<ExitCode, CliError> {
    let clients = a.clients.unwrap_or(match shape {
        Shape::Netcat => 1,
        Shape::Syslog => 50,
        Shape::Http => 16,
    });
    let parent = a.dir.clone().unwrap_or_else(std::env::temp_dir);
    let run_dir = RunDir::create(&parent)?;
    let dir = run_dir.0.join("agent");
    let port = free_port()?;
    let agent = start_agent(&props(shape, a, &dir, port), shape.name())?;
    let ch = agent
        .channels()
        .first()
        .cloned()
        .ok_or_else(|| CliError::Failed("the bench agent has no channel".into()))?;
    let to = match shape {
        Shape::Netcat => format!("netcat://127.0.0.1:{port}"),
        Shape::Syslog => format!("syslog+tcp://127.0.0.1:{port}"),
        Shape::Http => format!("http://127.0.0.1:{port}/"),
    };
    let load = LoadArgs {
        to: to.clone(),
        events: a.events,
        event_size: a.event_size,
        clients,
        in_flight: a.in_flight,
        batch: a.batch,
        json: true,
    };
    progress!(
        "{}: {} events from {clients} client(s) ...",
        shape.name(),
        a.events
    );
    let start = Instant::now();
    let sent = drive(&Target::parse(&to)?, &load)?;
    let deadline = Duration::from_secs(60).max(Duration::from_secs(a.events / 2_000));
    let ok = wait_for(
        shape.name(),
        deadline,
        || format!("{} of {} taken", ch.stats().take_successes, a.events),
        || drained(&ch.stats(), a.events),
    );
    let elapsed = start.elapsed();
    let stats = ch.stats();
    // Take commits are the sink's: batches of `batch`.
    let take_commits = stats.take_successes.div_ceil(a.batch as u64);
    let put_commits = stats.commits.saturating_sub(take_commits);
    agent.shutdown()?;
    let channel = bare_channel(
        &run_dir.0.join("channel"),
        a.events,
        a.event_size,
        a.batch,
        a.json,
    )?;
    let r = NetBenchReport {
        source: shape.name(),
        events: a.events,
        event_size: a.event_size,
        clients,
        agent_seconds: round3(elapsed.as_secs_f64()),
        agent_events_per_sec: round3(per_sec(a.events as f64, elapsed)),
        put_commits_per_event: round3(put_commits as f64 / a.events.max(1) as f64),
        channel_seconds: round3(channel.elapsed.as_secs_f64()),
        channel_events_per_sec: round3(per_sec(a.events as f64, channel.elapsed)),
        agent_vs_channel_ratio: round3(
            channel.elapsed.as_secs_f64() / elapsed.as_secs_f64().max(1e-9),
        ),
        refused: sent.failed,
        verified: ok && sent.failed == 0 && channel.verified(a.events),
    };
    let mut out = std::io::stdout().lock();
    if !a.json {
        writeln!(
            out,
            "{} -> file channel -> null: {:.0} events/s ({:.3} s, {:.3} put commits per event); \
             bare file channel {:.0} events/s; ratio {:.3}",
            r.source,
            r.agent_events_per_sec,
            r.agent_seconds,
            r.put_commits_per_event,
            r.channel_events_per_sec,
            r.agent_vs_channel_ratio
        )
        .map_err(CliError::Output)?;
    }
    writeln!(out, "{}", serde_json::to_string(&r)?).map_err(CliError::Output)?;
    Ok(if r.verified {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
