//! A `flumen agent` process for end-to-end tests: start it, read its log, wait on conditions
//! with a deadline, connect to its netcat port, SIGTERM or SIGKILL it. Shared by the agent,
//! agent_crash and metrics tests.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Upper bound for any single wait; the tests normally finish far sooner.
pub const DEADLINE: Duration = Duration::from_secs(60);
/// Pause between two checks of a condition inside a deadline.
pub const POLL: Duration = Duration::from_millis(20);

/// A port that was free a moment ago (Flume's config cannot say "port 0").
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local addr").port()
}

/// Writes `props` to `dir/<tag>.properties` and starts agent `a1` on it with monitoring on a
/// free port of 127.0.0.1 and the extra environment `env`; returns the agent and that port.
pub fn start_monitored(
    dir: &Path,
    props: &str,
    tag: &str,
    env: &[(&str, &str)],
) -> (AgentProcess, u16) {
    let conf = dir.join(format!("{tag}.properties"));
    std::fs::write(&conf, props).expect("write config");
    let mport = free_port().to_string();
    let run = AgentProcess::start_with_env(
        dir,
        &conf,
        "a1",
        tag,
        &[
            "--monitoring-bind",
            "127.0.0.1",
            "--monitoring-port",
            &mport,
        ],
        env,
    );
    (run, mport.parse().expect("port"))
}

/// netcat on 127.0.0.1:`port` -> file channel under `dir` -> file_roll into `dir/out`.
pub fn netcat_file_roll_config(dir: &Path, port: u16) -> PathBuf {
    tcp_file_roll_config(dir, "netcat", port, 7)
}

/// A TCP source of `source_type` (netcat, avro) on 127.0.0.1:`port` -> file channel under
/// `dir` -> file_roll into `dir/out` with sink batch `batch`. Returns the config file.
pub fn tcp_file_roll_config(dir: &Path, source_type: &str, port: u16, batch: usize) -> PathBuf {
    let conf = dir.join("agent.properties");
    let text = format!(
        "a1.sources = r1\n\
         a1.channels = c1\n\
         a1.sinks = k1\n\
         a1.sources.r1.type = {source_type}\n\
         a1.sources.r1.bind = 127.0.0.1\n\
         a1.sources.r1.port = {port}\n\
         a1.sources.r1.channels = c1\n\
         {tail}",
        tail = file_channel_to_file_roll(dir, batch),
    );
    std::fs::write(&conf, text).expect("write config");
    conf
}

/// The lines of agent `a1` after its source's: channel `c1`, a file channel under `dir`
/// (`checkpoint`, `data`), drained by `k1`, a file_roll sink into `dir/out` that never rolls,
/// with sink batch `batch`.
pub fn file_channel_to_file_roll(dir: &Path, batch: usize) -> String {
    format!(
        "a1.channels.c1.type = file\n\
         a1.channels.c1.checkpointDir = {cp}\n\
         a1.channels.c1.dataDirs = {data}\n\
         a1.channels.c1.minimumRequiredSpace = 1048576\n\
         a1.sinks.k1.type = file_roll\n\
         a1.sinks.k1.channel = c1\n\
         a1.sinks.k1.sink.directory = {out}\n\
         a1.sinks.k1.sink.rollInterval = 0\n\
         a1.sinks.k1.sink.batchSize = {batch}\n",
        cp = dir.join("checkpoint").display(),
        data = dir.join("data").display(),
        out = dir.join("out").display(),
    )
}

/// A process's peak resident memory (VmHWM), in KiB.
pub fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/<pid>/status")
}

/// What to run the agent through so file permissions apply to it: root reads and lists
/// anything, so when the tests run as root the agent drops to `nobody` (setpriv, util-linux).
pub fn unprivileged_prefix() -> &'static [&'static str] {
    use std::os::unix::fs::MetadataExt;
    // The owner of /proc/self is this process's effective user.
    let root = std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
    if root {
        &[
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
        ]
    } else {
        &[]
    }
}

/// Properties for agent `a1`: `seq` (`events` numbered bodies, batch 100) -> memory channel ->
/// avro sink to 127.0.0.1:`port` at batch-size 100, with `sink_extra` lines for the sink
/// (each ending in a newline). Flume's Application and `flumen agent` both run it unchanged.
pub fn seq_to_avro_properties(events: usize, port: u16, sink_extra: &str) -> String {
    format!(
        "a1.sources = r1\n\
         a1.channels = c1\n\
         a1.sinks = k1\n\
         a1.sources.r1.type = seq\n\
         a1.sources.r1.totalEvents = {events}\n\
         a1.sources.r1.batchSize = 100\n\
         a1.sources.r1.channels = c1\n\
         a1.channels.c1.type = memory\n\
         a1.channels.c1.capacity = 100000\n\
         a1.channels.c1.transactionCapacity = 100\n\
         a1.sinks.k1.type = avro\n\
         a1.sinks.k1.hostname = 127.0.0.1\n\
         a1.sinks.k1.port = {port}\n\
         a1.sinks.k1.batch-size = 100\n\
         {sink_extra}\
         a1.sinks.k1.channel = c1\n"
    )
}

/// The polling loop behind [`AgentProcess::poll`] and `FlumeAgent::poll`: tries `cond` on `p`
/// every [`POLL`] until it yields a value; between tries `alive` panics if the process exited,
/// and after [`DEADLINE`] `timed_out` fails the test (with the process's log).
pub fn poll_process<P, T>(
    p: &mut P,
    what: &str,
    mut cond: impl FnMut(&mut P) -> Option<T>,
    alive: impl Fn(&mut P, &str),
    timed_out: impl FnOnce(&mut P),
) -> T {
    let end = Instant::now() + DEADLINE;
    loop {
        if let Some(v) = cond(p) {
            return v;
        }
        alive(p, what);
        if Instant::now() > end {
            timed_out(p);
            panic!("timed out after {DEADLINE:?} {what}");
        }
        std::thread::sleep(POLL);
    }
}

/// A running `flumen agent -f <conf> -n <agent> [extra...]`, its stderr going to a file.
pub struct AgentProcess {
    pub child: Child,
    log: PathBuf,
}

impl AgentProcess {
    pub fn start(dir: &Path, conf: &Path, agent: &str, tag: &str) -> AgentProcess {
        Self::start_with(dir, conf, agent, tag, &[])
    }

    pub fn start_with(
        dir: &Path,
        conf: &Path,
        agent: &str,
        tag: &str,
        extra: &[&str],
    ) -> AgentProcess {
        Self::start_with_env(dir, conf, agent, tag, extra, &[])
    }

    /// [`start_with`](Self::start_with) with extra environment variables.
    pub fn start_with_env(
        dir: &Path,
        conf: &Path,
        agent: &str,
        tag: &str,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> AgentProcess {
        Self::start_prefixed(dir, conf, agent, tag, extra, env, &[])
    }

    /// [`start_with_env`](Self::start_with_env) run through `prefix` (a program and its
    /// arguments that then runs flumen, e.g. `setpriv` to drop privileges); empty: directly.
    pub fn start_prefixed(
        dir: &Path,
        conf: &Path,
        agent: &str,
        tag: &str,
        extra: &[&str],
        env: &[(&str, &str)],
        prefix: &[&str],
    ) -> AgentProcess {
        let log = dir.join(format!("agent-{tag}.log"));
        let log_file = std::fs::File::create(&log).expect("create log");
        let bin = env!("CARGO_BIN_EXE_flumen");
        let mut cmd = match prefix.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(bin);
                c
            }
            None => Command::new(bin),
        };
        let child = cmd
            .args(["agent", "-f"])
            .arg(conf)
            .args(["-n", agent])
            .args(extra)
            .current_dir(dir)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .expect("start flumen agent");
        AgentProcess { child, log }
    }

    /// Everything the agent logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Panics (with the log) if the agent has exited.
    pub fn assert_running(&mut self, what: &str) {
        if let Some(st) = self.child.try_wait().expect("try_wait") {
            panic!("agent exited with {st} while {what}:\n{}", self.log());
        }
    }

    /// Polls `cond` until it yields a value; fails (killing the agent) after [`DEADLINE`] or
    /// if the agent exits.
    pub fn poll<T>(&mut self, what: &str, cond: impl FnMut(&mut Self) -> Option<T>) -> T {
        poll_process(self, what, cond, Self::assert_running, |a| {
            let _ = a.child.kill();
            let _ = a.child.wait();
            panic!("timed out {what}:\n{}", a.log());
        })
    }

    /// Polls `cond` until it holds (see [`poll`](Self::poll)).
    pub fn wait_for(&mut self, what: &str, mut cond: impl FnMut(&Self) -> bool) {
        self.poll(what, |a| cond(a).then_some(()));
    }

    /// Connects to the agent's netcat port once it listens.
    pub fn connect(&mut self, port: u16) -> TcpStream {
        self.poll(
            &format!("waiting for the agent to listen on {port}"),
            |_| TcpStream::connect(("127.0.0.1", port)).ok(),
        )
    }

    /// Waits for the process to end by itself (bounded), as when its config is refused.
    pub fn wait_exit(mut self, what: &str) -> (ExitStatus, String) {
        let end = Instant::now() + DEADLINE;
        loop {
            if let Some(st) = self.child.try_wait().expect("try_wait") {
                return (st, self.log());
            }
            if Instant::now() > end {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("agent did not exit {what}:\n{}", self.log());
            }
            std::thread::sleep(POLL);
        }
    }

    /// SIGKILL and reap.
    pub fn kill_9(mut self) -> (ExitStatus, String) {
        self.child.kill().expect("SIGKILL the agent");
        let st = self.child.wait().expect("reap the agent");
        (st, self.log())
    }

    /// SIGTERM and wait for the exit (bounded).
    pub fn terminate(self) -> (ExitStatus, String) {
        let pid = self.child.id().to_string();
        let st = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("run kill");
        assert!(st.success(), "kill -TERM {pid} failed");
        self.wait_exit("after SIGTERM")
    }
}

// ---- What a file_roll sink (flumen's or Flume's) wrote. ----

/// How many `\n` the files in `dir` hold: a cheap progress figure to poll on (the complete
/// lines written so far, duplicates included).
pub fn newline_count(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .map(|e| {
            let path = e.expect("read a directory entry").path();
            let bytes = std::fs::read(&path).unwrap_or_default();
            bytes.iter().filter(|&&b| b == b'\n').count()
        })
        .sum()
}

/// How often each line occurs across the files in `dir`, a last line without its newline
/// included (after a clean stop there must be none: a fragment then shows up as a stray line).
pub fn output_counts(dir: &Path) -> BTreeMap<String, usize> {
    line_counts(dir, false)
}

/// As [`output_counts`], but only complete lines (ended by `\n`): a file_roll sink may be in
/// the middle of writing the last one, or (flumen after SIGKILL) it belongs to a batch whose
/// take never committed and which is delivered again.
pub fn complete_lines(dir: &Path) -> BTreeMap<String, usize> {
    line_counts(dir, true)
}

fn line_counts(dir: &Path, complete_only: bool) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return counts;
    };
    for e in entries {
        let path = e.expect("read a directory entry").path();
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        let end = if complete_only {
            bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1)
        } else {
            bytes.len()
        };
        for line in bytes[..end].split_inclusive(|&b| b == b'\n') {
            let line = line.strip_suffix(b"\n").unwrap_or(line);
            *counts
                .entry(String::from_utf8_lossy(line).into_owned())
                .or_insert(0) += 1;
        }
    }
    counts
}

// ---- The monitoring server (`--monitoring-port`). ----

/// One HTTP request; `None` while the server does not answer yet.
pub fn try_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(DEADLINE)).expect("timeout");
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").as_bytes())
        .ok()?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).ok()?;
    let (head, body) = resp.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    assert!(head.contains("Connection: close"), "{head}");
    Some((status, body.to_string()))
}

/// Retries until the server answers (it starts with the agent).
pub fn get(run: &mut AgentProcess, port: u16, path: &str) -> (u16, String) {
    run.poll(&format!("waiting for an answer on {port}{path}"), |_| {
        try_get(port, path)
    })
}

pub fn json(run: &mut AgentProcess, port: u16) -> serde_json::Value {
    let (status, body) = get(run, port, "/metrics");
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("bad JSON {e}: {body}"))
}

// ---- Tests that hold thousands of sockets. ----

static MANY_SOCKETS: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Taken first by every test that opens thousands of connections: the test process's
/// descriptor limit (20,000 on these machines) fits one such test at a time, and the tests
/// run as threads of one process. A test that panicked while holding it does not block the
/// others.
pub fn many_sockets() -> std::sync::MutexGuard<'static, ()> {
    MANY_SOCKETS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
