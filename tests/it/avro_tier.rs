//! A flumen -> flumen tier over Avro RPC whose downstream agent is SIGKILLed and restarted
//! mid-stream, through the `flumen agent` binary:
//!
//! ```text
//! flumen avro-client ──▶ upstream: avro source -> file channel -> avro sink ──▶
//!                        downstream: avro source (fixed port) -> file channel -> file_roll
//! ```
//!
//! A feeder thread sends numbered events to the upstream agent in chunks with `flumen
//! avro-client` and records which chunks the upstream acknowledged; it sends them in phases the
//! test releases one at a time. The test kills the downstream agent with SIGKILL once half of a
//! phase is in its output (the next phase released, so events are always still on their way),
//! lets the upstream notice, and restarts it on the same port with the same channel and output
//! directories. At the end
//! every acknowledged event must be in the downstream output (at-least-once: duplicates are
//! allowed and counted, losses are not), no line may be anything that was never sent, and the
//! upstream sink's counters must show that it lost its peer and reconnected.
//!
//! Kills: `FLUMEN_TIER_KILLS` (default 3, as in CI); more kills send more events.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crate::agent_proc::{complete_lines, newline_count};
use crate::agent_proc::{free_port, json, tcp_file_roll_config, AgentProcess, DEADLINE, POLL};

const KILLS_ENV: &str = "FLUMEN_TIER_KILLS";
const DEFAULT_KILLS: usize = 3;
/// Events per `flumen avro-client` run; each run's events are acknowledged or not as a whole
/// (the client exits non-zero on the first batch the upstream did not answer OK).
const CHUNK: usize = 1_000;

/// Upstream: avro source on `in_port` -> file channel -> avro sink to 127.0.0.1:`out_port`.
/// Short timeouts, so a dead peer is noticed (and a restarted one found) within a second or
/// two instead of Flume's 20 s.
fn upstream_config(dir: &Path, in_port: u16, out_port: u16) -> PathBuf {
    let conf = dir.join("upstream.properties");
    let text = format!(
        "a1.sources = r1\n\
         a1.channels = c1\n\
         a1.sinks = k1\n\
         a1.sources.r1.type = avro\n\
         a1.sources.r1.bind = 127.0.0.1\n\
         a1.sources.r1.port = {in_port}\n\
         a1.sources.r1.channels = c1\n\
         a1.channels.c1.type = file\n\
         a1.channels.c1.checkpointDir = {cp}\n\
         a1.channels.c1.dataDirs = {data}\n\
         a1.channels.c1.minimumRequiredSpace = 1048576\n\
         a1.sinks.k1.type = avro\n\
         a1.sinks.k1.channel = c1\n\
         a1.sinks.k1.hostname = 127.0.0.1\n\
         a1.sinks.k1.port = {out_port}\n\
         a1.sinks.k1.batch-size = 100\n\
         a1.sinks.k1.connect-timeout = 1000\n\
         a1.sinks.k1.request-timeout = 10000\n",
        cp = dir.join("checkpoint").display(),
        data = dir.join("data").display(),
    );
    std::fs::write(&conf, text).expect("write the upstream config");
    conf
}

/// What the feeder may send and what it got through: it sends events `0..allowed` (the test
/// raises `allowed` phase by phase); `acked` events `0..acked` were acknowledged by the
/// upstream source; `attempted` were handed to a client (the difference may or may not have
/// arrived).
#[derive(Default)]
struct Fed {
    allowed: AtomicUsize,
    acked: AtomicUsize,
    attempted: AtomicUsize,
    done: AtomicBool,
    error: std::sync::Mutex<Option<String>>,
}

/// Sends "0".."total-1" to `port` in chunks of at most [`CHUNK`], one `flumen avro-client` per
/// chunk, in order, never beyond `fed.allowed`; stops at the first chunk that fails.
fn feed(port: u16, total: usize, fed: &Fed) {
    let mut next = 0;
    // Bounded, so a test that failed elsewhere does not leave this thread waiting forever.
    let give_up = Instant::now() + 4 * DEADLINE;
    while next < total {
        let allowed = fed.allowed.load(Ordering::SeqCst).min(total);
        if allowed <= next {
            if Instant::now() > give_up {
                *fed.error.lock().expect("lock") = Some("never allowed to go on".into());
                break;
            }
            std::thread::sleep(POLL);
            continue;
        }
        let end = (next + CHUNK).min(allowed);
        fed.attempted.store(end, Ordering::SeqCst);
        let mut input = String::new();
        for i in next..end {
            input.push_str(&i.to_string());
            input.push('\n');
        }
        let mut child = Command::new(env!("CARGO_BIN_EXE_flumen"))
            .args(["avro-client", "--host", "127.0.0.1", "--port"])
            .arg(port.to_string())
            .args(["--batch-size", "100"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn flumen avro-client");
        // The client may fail (and stop reading) before it has read everything.
        let _ = child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes());
        let out = child.wait_with_output().expect("wait for avro-client");
        if !out.status.success() {
            *fed.error.lock().expect("lock") = Some(format!(
                "avro-client for events {next}..{end} exited {}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ));
            break;
        }
        fed.acked.store(end, Ordering::SeqCst);
        next = end;
    }
    fed.done.store(true, Ordering::SeqCst);
}

/// The two agents, with the logs of every downstream incarnation for failure messages.
/// Dropping it (a failed test) kills whichever agent still runs.
struct Tier {
    up: Option<AgentProcess>,
    down: Option<AgentProcess>,
    down_dir: PathBuf,
    down_conf: PathBuf,
    up_metrics: u16,
    incarnation: usize,
}

impl Tier {
    fn up(&mut self) -> &mut AgentProcess {
        self.up.as_mut().expect("the upstream agent runs")
    }

    fn down(&mut self) -> &mut AgentProcess {
        self.down.as_mut().expect("the downstream agent runs")
    }

    fn start_down(&mut self) {
        self.incarnation += 1;
        let tag = format!("down-{}", self.incarnation);
        self.down = Some(AgentProcess::start(
            &self.down_dir,
            &self.down_conf,
            "a1",
            &tag,
        ));
    }

    /// Panics with `msg` and both agents' logs (killing whatever still runs).
    fn fail(&mut self, msg: &str) -> ! {
        let _ = self.up().child.kill();
        let down_log = match self.down.as_mut() {
            Some(d) => {
                let _ = d.child.kill();
                d.log()
            }
            None => String::from("(not running)"),
        };
        panic!(
            "{msg}\n--- upstream log ---\n{}\n--- downstream log (incarnation {}) ---\n{down_log}",
            self.up().log(),
            self.incarnation
        );
    }

    /// Polls `cond` while both agents run; fails after [`DEADLINE`].
    fn wait(&mut self, what: &str, mut cond: impl FnMut(&mut Self) -> bool) {
        let end = Instant::now() + DEADLINE;
        loop {
            if cond(self) {
                return;
            }
            if let Some(st) = self.up().child.try_wait().expect("try_wait") {
                self.fail(&format!("the upstream agent exited with {st} while {what}"));
            }
            if let Some(st) = self.down().child.try_wait().expect("try_wait") {
                self.fail(&format!(
                    "the downstream agent exited with {st} while {what}"
                ));
            }
            if Instant::now() > end {
                self.fail(&format!("timed out after {DEADLINE:?} {what}"));
            }
            std::thread::sleep(POLL);
        }
    }

    /// The upstream's counter `name` of `component` (e.g. `SINK.k1`).
    fn up_counter(&mut self, component: &str, name: &str) -> u64 {
        let port = self.up_metrics;
        let v = json(self.up(), port);
        v[component][name]
            .as_str()
            .unwrap_or_else(|| panic!("no {component} {name} in {v}"))
            .parse()
            .expect("a number")
    }

    /// Times the upstream sink saw its peer fail: a batch not answered OK (the peer died with
    /// the call in flight or the connection broken) or a connection attempt refused.
    fn up_failures(&mut self) -> u64 {
        self.up_counter("SINK.k1", "EventWriteFail")
            + self.up_counter("SINK.k1", "ConnectionFailedCount")
    }
}

#[test]
fn downstream_killed_and_restarted_loses_no_acknowledged_event() {
    let kills: usize = std::env::var(KILLS_ENV)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_KILLS);
    // The events go in kills + 1 phases of `share` events; the feeder may send a phase only
    // when the test allows it, so however fast the tier runs, every kill finds events still
    // to deliver: kill k comes once half of phase k-1 is in the output and phase k is allowed.
    let total = 20_000usize.max((kills + 1) * 4_000);
    let share = total / (kills + 1);

    let tmp = tempfile::tempdir().expect("tempdir");
    let up_dir = tmp.path().join("up");
    let down_dir = tmp.path().join("down");
    std::fs::create_dir_all(&up_dir).expect("mkdir up");
    std::fs::create_dir_all(&down_dir).expect("mkdir down");
    let out = down_dir.join("out");
    let (in_port, down_port, up_metrics) = (free_port(), fixed_port(), free_port());
    let up_conf = upstream_config(&up_dir, in_port, down_port);
    let down_conf = tcp_file_roll_config(&down_dir, "avro", down_port, 100);

    let up_metrics_arg = up_metrics.to_string();
    let up = AgentProcess::start_with(
        &up_dir,
        &up_conf,
        "a1",
        "up",
        &[
            "--monitoring-bind",
            "127.0.0.1",
            "--monitoring-port",
            &up_metrics_arg,
        ],
    );
    let mut tier = Tier {
        up: Some(up),
        down: None,
        down_dir,
        down_conf,
        up_metrics,
        incarnation: 0,
    };
    tier.start_down();
    drop(tier.down().connect(down_port));
    drop(tier.up().connect(in_port));

    let fed = Arc::new(Fed::default());
    fed.allowed.store(share, Ordering::SeqCst);
    let feeder = {
        let fed = Arc::clone(&fed);
        std::thread::spawn(move || feed(in_port, total, &fed))
    };

    let started = Instant::now();
    let mut backlogged = 0;
    for kill in 1..=kills {
        // Duplicates count as lines here, which can only make a kill come a little sooner.
        let target = (kill - 1) * share + share / 2;
        tier.wait(
            &format!("waiting for {target} lines before kill {kill}"),
            |_| newline_count(&out) >= target,
        );
        fed.allowed.store((kill + 1) * share, Ordering::SeqCst);
        if tier.up_counter("CHANNEL.c1", "ChannelSize") > 0 {
            backlogged += 1;
        }
        let failures = tier.up_failures();
        let (st, _) = tier.down.take().expect("downstream").kill_9();
        assert_eq!(st.code(), None, "SIGKILL ends the agent by the signal");
        // The downstream is dead; let the upstream notice (a broken call or a refused
        // connection: it has phase `kill` still to send) before bringing it back on the same
        // port (see `fixed_port` for why nothing else takes it meanwhile).
        let end = Instant::now() + DEADLINE;
        loop {
            if tier.up_failures() > failures {
                break;
            }
            if Instant::now() > end {
                tier.start_down();
                tier.fail(&format!("the upstream never noticed kill {kill}"));
            }
            std::thread::sleep(POLL);
        }
        tier.start_down();
    }

    fed.allowed.store(total, Ordering::SeqCst);
    tier.wait("waiting for the feeder", |_| {
        fed.done.load(Ordering::SeqCst)
    });
    feeder.join().expect("the feeder thread");
    if let Some(e) = fed.error.lock().expect("lock").take() {
        // The upstream was never killed and its channel has room: it must accept everything.
        tier.fail(&format!("the upstream refused events: {e}"));
    }
    let acked = fed.acked.load(Ordering::SeqCst);
    let attempted = fed.attempted.load(Ordering::SeqCst);
    assert_eq!(acked, total);

    // Everything acknowledged upstream reaches the output. A line is counted only once its
    // newline is there. After a SIGKILL the newest file may end in a torn line (rarely: the
    // sink writes a batch in one write call): flumen's file_roll writes a batch, fsyncs the
    // file and only then commits the take, so a torn line belongs to a batch whose take never
    // committed; the restarted agent delivers that batch again, into a new file (file_roll
    // never appends to an existing one), so the torn line is a partial duplicate, never the
    // only copy of an event. SIGKILL cannot lose a byte already written (it is in the page
    // cache), so a committed take cannot lose its line either.
    let mut last_len = 0;
    tier.wait("waiting for every acknowledged event downstream", |_| {
        let n = newline_count(&out);
        if n < acked || n == last_len {
            return false;
        }
        last_len = n;
        let counts = complete_lines(&out);
        (0..acked).all(|i| counts.contains_key(&i.to_string()))
    });
    tier.wait("waiting for the upstream channel to empty", |t| {
        t.up_counter("CHANNEL.c1", "ChannelSize") == 0
    });
    let created = tier.up_counter("SINK.k1", "ConnectionCreatedCount");
    let failures = tier.up_failures();
    let drained = tier.up_counter("SINK.k1", "EventDrainSuccessCount");

    // Both shut down cleanly, and the output is final.
    let (st, log) = tier.down.take().expect("downstream").terminate();
    assert_eq!(st.code(), Some(0), "{log}");
    let (st, log) = tier.up.take().expect("upstream").terminate();
    assert_eq!(st.code(), Some(0), "{log}");

    let counts: BTreeMap<String, usize> = complete_lines(&out);
    let never_sent: Vec<&String> = counts
        .keys()
        .filter(|l| l.parse::<usize>().map_or(true, |i| i >= attempted))
        .take(10)
        .collect();
    assert!(never_sent.is_empty(), "lines never sent: {never_sent:?}");
    let missing: Vec<usize> = (0..acked)
        .filter(|i| !counts.contains_key(&i.to_string()))
        .take(10)
        .collect();
    assert!(missing.is_empty(), "acknowledged but lost: {missing:?}");
    let lines: usize = counts.values().sum();
    let duplicates = lines - counts.len();
    let torn = torn_files(&out);
    eprintln!(
        "tier: {total} events, {kills} kills ({backlogged} with events queued upstream), \
         {duplicates} duplicates, {torn} files ending in a torn line, upstream sink: \
         {created} connections, {failures} failures, {drained} drained, {:.1} s",
        started.elapsed().as_secs_f64()
    );
    // The upstream lost its peer and found the new one (the first connection plus at least
    // one after a kill).
    assert!(failures >= 1, "the upstream sink never saw a failure");
    assert!(created >= 2, "the upstream sink never reconnected");
    // Every kill can cost at most the batches in flight: the upstream's one unanswered call
    // (100 events) and the downstream's uncommitted file_roll batch (100 events).
    assert!(
        duplicates <= kills * 200,
        "{duplicates} duplicates for {kills} kills"
    );
}

/// A free port below the kernel's ephemeral range, for the downstream agent, which gives it up
/// at every kill: a port from [`free_port`] is an ephemeral one, which any outgoing connection
/// (another test's, or the upstream sink's own reconnect, which would then connect to itself)
/// could be handed while the downstream is down, so its restart could not bind.
pub fn fixed_port() -> u16 {
    let low: u16 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse().ok())
        .unwrap_or(32768);
    assert!(low > 12_000, "ephemeral ports start at {low}");
    let span = u64::from(low - 11_000);
    let mut x = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_nanos() as u64
        ^ u64::from(std::process::id()) << 32;
    for _ in 0..1_000 {
        // A 64-bit LCG step: parallel tests start from different clocks and pids.
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let port = 10_000 + ((x >> 33) % span) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port between 10000 and {low}");
}

impl Drop for Tier {
    fn drop(&mut self) {
        for agent in [self.up.as_mut(), self.down.as_mut()].into_iter().flatten() {
            let _ = agent.child.kill();
            let _ = agent.child.wait();
        }
    }
}

/// Files in `dir` whose last byte is not a newline.
fn torn_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .expect("read the output directory")
        .filter(|e| {
            let bytes = std::fs::read(e.as_ref().expect("entry").path()).expect("read");
            bytes.last().is_some_and(|&b| b != b'\n')
        })
        .count()
}
