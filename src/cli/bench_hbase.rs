//! `flumen bench hbase`: the hbase2 sink against Apache Flume 1.11's hbase2 sink and HBase's own
//! Java `BufferedMutator`, on the same HBase, in one run.
//!
//! The bench starts a single-JVM HBase itself (`flumen.test.HBaseMini` from the tests/hbase
//! Maven project, whose classpath is `--java-classpath`; benches/hbase_vs_flume.sh builds it
//! and passes it), then for each round, on a fresh table each:
//! * flumen: `flumen agent` (this binary) on stress (N events of B bytes, batch K) -> file
//!   channel -> hbase2 sink (batch K; `--serializer regex`, the default, writes one put per
//!   event and nothing else, the same writes as the Java baseline; `simple` is Flume's default
//!   serializer, which adds the `incRow` counter, summed by `coalesceIncrements` into one
//!   increment per batch: Flume ignores an empty `incrementColumn`, so it cannot be turned off);
//! * Flume: Apache Flume 1.11's agent (`org.apache.flume.node.Application`, -Xmx1g) on the same
//!   properties text;
//! * Java: HBase's `BufferedMutator` writing N puts of the same shape (row `default` + UUID,
//!   family `f`, qualifier `pCol`, B bytes), flushed every K, timed inside the JVM.
//!
//! A warm-up write (half the events, by the Java client, not counted) comes first, so the
//! cluster's JIT does not penalise round 1's first writer. The agents are timed as
//! benches/compare.py times them: from the channel's start (its
//! `StartTime` in `/metrics`) until `/metrics` shows N takes committed, so JVM start-up is not
//! counted against Flume; each agent's peak RSS is its VmHWM at that moment. Every table is
//! counted afterwards (N rows each, or the run is marked unverified). Ratios are taken within a
//! round and the median reported. Output: a table (unless `--json`), then one JSON object as
//! the last stdout line; progress goes to stderr.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitCode, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Args;

use super::bench::RunDir;
use super::bench_hdfs::median;
use super::bench_net::free_port;
use super::CliError;

/// The targets: at least 3x Flume's sink and 1x HBase's Java client, at most 1/10 of
/// Flume's RSS.
const TARGET_VS_FLUME: f64 = 3.0;
const TARGET_VS_JAVA: f64 = 1.0;
const TARGET_RSS_RATIO: f64 = 0.1;

/// The JVM flags HBase 2.6 needs on JDK 17 (its own `--add-opens` set).
pub const HBASE_JVM_FLAGS: &[&str] = &[
    "--add-opens=java.base/java.lang=ALL-UNNAMED",
    "--add-opens=java.base/java.lang.reflect=ALL-UNNAMED",
    "--add-opens=java.base/java.nio=ALL-UNNAMED",
    "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED",
    "--add-opens=java.base/java.util=ALL-UNNAMED",
    "--add-opens=java.base/java.util.concurrent=ALL-UNNAMED",
    "--add-opens=java.base/java.io=ALL-UNNAMED",
    "--add-opens=java.base/java.net=ALL-UNNAMED",
    "--add-opens=java.base/jdk.internal.misc=ALL-UNNAMED",
    "--add-exports=java.base/jdk.internal.misc=ALL-UNNAMED",
    "-Dorg.apache.hbase.thirdparty.io.netty.tryReflectionSetAccessible=true",
];

/// `flumen bench hbase` options.
#[derive(Debug, Args)]
pub struct HBaseBenchArgs {
    /// Classpath of the tests/hbase Maven project (HBase's mini cluster, Apache Flume 1.11's
    /// agent and hbase2 sink).
    #[arg(long, value_name = "CP")]
    pub java_classpath: String,
    /// Directory for the cluster and the file channels (a fresh subdirectory is removed at
    /// the end).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Events per measurement.
    #[arg(long, default_value_t = 200_000)]
    pub events: u64,
    /// Body size in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 1024)]
    pub event_size: usize,
    /// Events per channel transaction and per sink batch (`batchSize`).
    #[arg(long, default_value_t = 100)]
    pub batch: usize,
    /// Rounds (each runs flumen, Flume and the Java client once).
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// The channel of both agents: `file` (the default: durable, fsync on every commit, as
    /// the shape) or `memory`, which leaves out what durability costs and shows the
    /// sink and its client alone.
    #[arg(long, default_value = "file", value_parser = ["file", "memory"])]
    pub channel: String,
    /// The agents' serializer: `regex` (the default: RegexHBase2EventSerializer with its
    /// defaults, one put per event and nothing else, the same writes as the Java baseline) or
    /// `simple` (SimpleHBase2EventSerializer, Flume's default: a put per event plus the `incRow`
    /// counter, one coalesced increment per batch, which every batch takes the row's lock for).
    #[arg(long, default_value = "regex", value_parser = ["simple", "regex"])]
    pub serializer: String,
    /// Leave Apache Flume out (flumen against the Java client only).
    #[arg(long)]
    pub no_flume: bool,
    /// Print only the JSON line.
    #[arg(long)]
    pub json: bool,
}

/// What `flumen bench hbase` reports (the last stdout line).
#[derive(Debug, serde::Serialize)]
pub struct HBaseBenchReport {
    pub events: u64,
    pub event_size: usize,
    pub batch: usize,
    pub rounds: usize,
    pub channel: String,
    pub serializer: String,
    pub flumen_events_per_sec: f64,
    pub flume_events_per_sec: Option<f64>,
    pub java_events_per_sec: f64,
    pub ratio_vs_flume: Option<f64>,
    pub ratio_vs_java: f64,
    pub flumen_peak_rss_kib: u64,
    /// Whole-process CPU microseconds per event (start-up included), medians.
    pub flumen_cpu_us_per_event: f64,
    pub flume_cpu_us_per_event: Option<f64>,
    pub flume_peak_rss_kib: Option<u64>,
    pub rss_ratio: Option<f64>,
    pub targets: Targets,
    pub meets_targets: bool,
    pub verified: bool,
    pub ratios_vs_flume: Vec<f64>,
    pub ratios_vs_java: Vec<f64>,
}

#[derive(Debug, serde::Serialize)]
pub struct Targets {
    pub vs_flume: f64,
    pub vs_java: f64,
    pub rss_ratio: f64,
}

/// The HBase the bench started: commands on stdin, answers on stdout.
struct MiniHBase {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    zk_port: u16,
    log: PathBuf,
}

impl MiniHBase {
    fn start(cp: &str, dir: &Path) -> Result<MiniHBase, CliError> {
        let log = dir.join("hbase.log");
        let err = std::fs::File::create(&log).map_err(|e| CliError::io("creating", &log, e))?;
        // 2 GiB: a round's table holds every event in the memstore until it is dropped.
        let mut child = Command::new("java")
            .arg("-Xmx2g")
            .args(HBASE_JVM_FLAGS)
            .arg("-cp")
            .arg(cp)
            .arg("flumen.test.HBaseMini")
            .arg("1")
            .arg(dir.join("hbase"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(err)
            .spawn()
            .map_err(|e| CliError::io("running", Path::new("java"), e))?;
        let stdin = child.stdin.take();
        let stdout: ChildStdout = child
            .stdout
            .take()
            .ok_or_else(|| CliError::Failed("no stdout from the HBase launcher".into()))?;
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut hb = MiniHBase {
            child,
            stdin,
            lines,
            zk_port: 0,
            log,
        };
        let ready = hb.line(Duration::from_secs(300))?;
        hb.zk_port = ready
            .strip_prefix("READY ")
            .and_then(|p| p.trim().parse().ok())
            .ok_or_else(|| hb.failed(&format!("the HBase launcher said `{ready}`")))?;
        Ok(hb)
    }

    fn line(&self, wait: Duration) -> Result<String, CliError> {
        self.lines
            .recv_timeout(wait)
            .map_err(|_| self.failed("the HBase launcher did not answer"))
    }

    fn failed(&self, what: &str) -> CliError {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(30).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        CliError::Failed(format!(
            "{what}; its log ({}) ends:\n{}",
            self.log.display(),
            tail.join("\n")
        ))
    }

    /// Sends one command; returns the text after `OK`.
    fn command(&mut self, cmd: &str, wait: Duration) -> Result<String, CliError> {
        let stdin = self
            .stdin
            .as_mut()
            .ok_or_else(|| CliError::Failed("the HBase launcher's stdin is closed".into()))?;
        writeln!(stdin, "{cmd}")
            .and_then(|()| stdin.flush())
            .map_err(|e| CliError::Failed(format!("sending `{cmd}` to the HBase launcher: {e}")))?;
        loop {
            let line = self.line(wait)?;
            if let Some(rest) = line.strip_prefix("OK") {
                return Ok(rest.trim().to_string());
            }
            if let Some(rest) = line.strip_prefix("ERR") {
                return Err(self.failed(&format!("`{cmd}` failed: {}", rest.trim())));
            }
        }
    }
}

impl Drop for MiniHBase {
    fn drop(&mut self) {
        // The launcher halts when its stdin closes.
        self.stdin.take();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn props(a: &HBaseBenchArgs, dir: &Path, table: &str, zk: &str) -> String {
    format!(
        "a1.sources = r1\n\
         a1.channels = c1\n\
         a1.sinks = k1\n\
         {channel}\
         a1.channels.c1.capacity = {capacity}\n\
         a1.channels.c1.transactionCapacity = {tc}\n\
         a1.sources.r1.type = org.apache.flume.source.StressSource\n\
         a1.sources.r1.size = {size}\n\
         a1.sources.r1.maxTotalEvents = {n}\n\
         a1.sources.r1.batchSize = {k}\n\
         a1.sources.r1.channels = c1\n\
         a1.sinks.k1.type = hbase2\n\
         a1.sinks.k1.channel = c1\n\
         a1.sinks.k1.table = {table}\n\
         a1.sinks.k1.columnFamily = f\n\
         a1.sinks.k1.zookeeperQuorum = {zk}\n\
         a1.sinks.k1.batchSize = {k}\n\
         {serializer}",
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
        serializer = if a.serializer == "regex" {
            "a1.sinks.k1.serializer = org.apache.flume.sink.hbase2.RegexHBase2EventSerializer\n"
        } else {
            "a1.sinks.k1.serializer = org.apache.flume.sink.hbase2.SimpleHBase2EventSerializer\n\
             a1.sinks.k1.serializer.payloadColumn = pCol\n\
             a1.sinks.k1.coalesceIncrements = true\n"
        },
        capacity = a.events.max(1_000_000),
        tc = a.batch.max(1000),
        size = a.event_size,
        n = a.events,
        k = a.batch,
    )
}

/// `GET /metrics` on the agent's monitoring port: (takes committed on c1, c1's StartTime ms).
fn drain_state(port: u16) -> Option<(u64, u64)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let body = text.split_once("\r\n\r\n")?.1;
    let m: serde_json::Value = serde_json::from_str(body).ok()?;
    let c = m.get("CHANNEL.c1")?;
    let num = |k: &str| -> u64 {
        c.get(k)
            .and_then(|v| v.as_str().and_then(|s| s.parse().ok()).or(v.as_u64()))
            .unwrap_or(0)
    };
    Some((num("EventTakeSuccessCount"), num("StartTime")))
}

fn vm_hwm_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

/// Runs an agent command until N takes committed: (seconds from the channel's start, peak RSS
/// in KiB, CPU seconds of the whole process, start-up included).
fn run_agent(
    what: &str,
    mut cmd: Command,
    port: u16,
    n: u64,
    log: &Path,
) -> Result<(f64, u64, f64), CliError> {
    let out = std::fs::File::create(log).map_err(|e| CliError::io("creating", log, e))?;
    let err = out
        .try_clone()
        .map_err(|e| CliError::io("opening", log, e))?;
    let mut child = cmd
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(|e| CliError::Failed(format!("starting {what}: {e}")))?;
    let deadline = Instant::now() + Duration::from_secs(120) + Duration::from_millis(n / 2);
    let mut last = Instant::now();
    let result = loop {
        if let Ok(Some(status)) = child.try_wait() {
            break Err(CliError::Failed(format!(
                "{what} exited early ({status}); see {}",
                log.display()
            )));
        }
        if let Some((taken, started_ms)) = drain_state(port) {
            if taken >= n && started_ms > 0 {
                let now_ms = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_millis() as u64)
                    .unwrap_or(0);
                let secs = now_ms.saturating_sub(started_ms) as f64 / 1000.0;
                let cpu = super::bench_taildir::process_cpu_at(Path::new(&format!(
                    "/proc/{}/stat",
                    child.id()
                )))
                .map(|d| d.as_secs_f64())
                .unwrap_or(0.0);
                break Ok((secs.max(0.001), vm_hwm_kib(child.id()), cpu));
            }
            if last.elapsed() >= Duration::from_secs(5) {
                last = Instant::now();
                progress!("  {what}: {taken}/{n} events");
            }
        }
        if Instant::now() > deadline {
            break Err(CliError::Failed(format!(
                "{what}: not done before the deadline; see {}",
                log.display()
            )));
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    // SIGTERM, then SIGKILL after 60 s.
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let stop = Instant::now() + Duration::from_secs(60);
    while Instant::now() < stop {
        if matches!(child.try_wait(), Ok(Some(_))) {
            return result;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    result
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

pub fn run(a: &HBaseBenchArgs) -> Result<ExitCode, CliError> {
    if a.events == 0 || a.batch == 0 || a.rounds == 0 {
        return Err(CliError::Usage(
            "--events, --batch and --rounds must be at least 1".into(),
        ));
    }
    let parent = a.dir.clone().unwrap_or_else(std::env::temp_dir);
    let run_dir = RunDir::create(&parent)?;
    let base = run_dir.0.clone();
    let exe = std::env::current_exe()
        .map_err(|e| CliError::Failed(format!("finding this program's path: {e}")))?;
    progress!("starting HBase (a single-JVM mini cluster) ...");
    let mut hb = MiniHBase::start(&a.java_classpath, &base)?;
    let zk = format!("127.0.0.1:{}", hb.zk_port);
    progress!("HBase up, ZooKeeper at {zk}");
    let admin_wait = Duration::from_secs(120);

    // The cluster's JVM compiles its write path on the first writer: warm it with the Java
    // client (not counted), so round 1 does not penalise whichever writer goes first.
    progress!(
        "warming the cluster up ({} puts, not counted) ...",
        a.events / 2
    );
    hb.command("create bench_warmup f", admin_wait)?;
    hb.command(
        &format!(
            "bufmut bench_warmup f pCol {} {} {}",
            a.events / 2,
            a.event_size,
            a.batch
        ),
        Duration::from_secs(600),
    )?;
    hb.command("drop bench_warmup", admin_wait)?;

    let mut f_eps = Vec::new();
    let mut j_eps = Vec::new();
    let mut b_eps = Vec::new();
    let mut f_rss = Vec::new();
    let mut f_cpu = Vec::new();
    let mut j_cpu = Vec::new();
    let mut j_rss = Vec::new();
    let mut verified = true;
    for round in 1..=a.rounds {
        for who in ["flumen", "flume", "java"] {
            if who == "flume" && a.no_flume {
                continue;
            }
            let table = format!("bench_{who}_{round}");
            hb.command(&format!("create {table} f"), admin_wait)?;
            let dir = base.join(format!("{who}-{round}"));
            std::fs::create_dir_all(&dir).map_err(|e| CliError::io("creating", &dir, e))?;
            let eps = match who {
                "java" => {
                    let nanos: f64 = hb
                        .command(
                            &format!(
                                "bufmut {table} f pCol {} {} {}",
                                a.events, a.event_size, a.batch
                            ),
                            Duration::from_secs(600),
                        )?
                        .parse()
                        .map_err(|_| CliError::Failed("bufmut gave no time".into()))?;
                    let eps = a.events as f64 / (nanos / 1e9).max(1e-9);
                    b_eps.push(eps);
                    eps
                }
                _ => {
                    let conf = dir.join("agent.properties");
                    std::fs::write(&conf, props(a, &dir, &table, &zk))
                        .map_err(|e| CliError::io("writing", &conf, e))?;
                    let port = free_port()?;
                    let mut cmd;
                    if who == "flumen" {
                        cmd = Command::new(&exe);
                        cmd.arg("agent")
                            .arg("-f")
                            .arg(&conf)
                            .arg("-n")
                            .arg("a1")
                            .arg("-Dflume.monitoring.type=http")
                            .arg(format!("-Dflume.monitoring.port={port}"))
                            .env("RUST_LOG", "warn");
                    } else {
                        cmd = Command::new("java");
                        cmd.arg("-Xmx1g")
                            .args(HBASE_JVM_FLAGS)
                            .arg("-Dflume.root.level=WARN")
                            .arg("-Dflume.monitoring.type=http")
                            .arg(format!("-Dflume.monitoring.port={port}"))
                            .arg("-cp")
                            .arg(&a.java_classpath)
                            .arg("org.apache.flume.node.Application")
                            .arg("-n")
                            .arg("a1")
                            .arg("-f")
                            .arg(&conf);
                    }
                    let (secs, rss, cpu) =
                        run_agent(who, cmd, port, a.events, &dir.join("agent.log"))?;
                    let eps = a.events as f64 / secs;
                    let us = cpu * 1e6 / a.events as f64;
                    if who == "flumen" {
                        f_eps.push(eps);
                        f_rss.push(rss);
                        f_cpu.push(us);
                    } else {
                        j_eps.push(eps);
                        j_rss.push(rss);
                        j_cpu.push(us);
                    }
                    eps
                }
            };
            let rows: u64 = hb
                .command(&format!("count {table}"), Duration::from_secs(300))?
                .parse()
                .unwrap_or(0);
            // The agents' tables also hold the counter row.
            let expected = a.events + u64::from(who != "java" && a.serializer == "simple");
            if rows != expected {
                progress!("  {who}: table {table} holds {rows} rows, expected {expected}");
                verified = false;
            }
            // Free the round's memstore before the next writer.
            hb.command(&format!("drop {table}"), admin_wait)?;
            progress!("round {round}: {who} {eps:.0} events/s");
        }
    }
    drop(hb);

    let ratios_vs_java: Vec<f64> = f_eps.iter().zip(&b_eps).map(|(f, b)| f / b).collect();
    let ratios_vs_flume: Vec<f64> = f_eps.iter().zip(&j_eps).map(|(f, j)| f / j).collect();
    let flumen_rss = f_rss.iter().copied().max().unwrap_or(0);
    let flume_rss = j_rss.iter().copied().max();
    let ratio_vs_flume = (!a.no_flume).then(|| round3(median(&ratios_vs_flume)));
    let ratio_vs_java = round3(median(&ratios_vs_java));
    let rss_ratio = flume_rss.map(|j| round3(flumen_rss as f64 / j.max(1) as f64));
    let meets = ratio_vs_java >= TARGET_VS_JAVA
        && ratio_vs_flume.is_none_or(|r| r >= TARGET_VS_FLUME)
        && rss_ratio.is_none_or(|r| r <= TARGET_RSS_RATIO);
    let report = HBaseBenchReport {
        events: a.events,
        event_size: a.event_size,
        batch: a.batch,
        rounds: a.rounds,
        channel: a.channel.clone(),
        serializer: a.serializer.clone(),
        flumen_events_per_sec: median(&f_eps).round(),
        flume_events_per_sec: (!a.no_flume).then(|| median(&j_eps).round()),
        java_events_per_sec: median(&b_eps).round(),
        ratio_vs_flume,
        ratio_vs_java,
        flumen_peak_rss_kib: flumen_rss,
        flumen_cpu_us_per_event: round3(median(&f_cpu)),
        flume_cpu_us_per_event: (!a.no_flume).then(|| round3(median(&j_cpu))),
        flume_peak_rss_kib: flume_rss,
        rss_ratio,
        targets: Targets {
            vs_flume: TARGET_VS_FLUME,
            vs_java: TARGET_VS_JAVA,
            rss_ratio: TARGET_RSS_RATIO,
        },
        meets_targets: meets,
        verified,
        ratios_vs_flume: ratios_vs_flume.iter().map(|r| round3(*r)).collect(),
        ratios_vs_java: ratios_vs_java.iter().map(|r| round3(*r)).collect(),
    };
    let mut out = std::io::stdout().lock();
    if !a.json {
        writeln!(
            out,
            "hbase2 sink, {} channel, {} events of {} B, batch {}, {} rounds (medians)",
            a.channel, a.events, a.event_size, a.batch, a.rounds
        )
        .map_err(CliError::Output)?;
        writeln!(
            out,
            "  flumen {:>10.0} events/s  peak RSS {} MiB  {:.1} us CPU/event",
            report.flumen_events_per_sec,
            flumen_rss / 1024,
            report.flumen_cpu_us_per_event
        )
        .map_err(CliError::Output)?;
        if let (Some(e), Some(r)) = (report.flume_events_per_sec, flume_rss) {
            writeln!(
                out,
                "  Flume  {e:>10.0} events/s  peak RSS {} MiB",
                r / 1024
            )
            .map_err(CliError::Output)?;
        }
        writeln!(
            out,
            "  Java BufferedMutator {:>10.0} events/s",
            report.java_events_per_sec
        )
        .map_err(CliError::Output)?;
    }
    writeln!(out, "{}", serde_json::to_string(&report)?).map_err(CliError::Output)?;
    Ok(if verified {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
