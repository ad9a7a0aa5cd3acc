//! A real Apache Flume 1.11.0 agent process for interoperability tests: Flume's own agent main
//! (`org.apache.flume.node.Application`, from the `tests/avro` Maven project's classpath) run on
//! a properties file written into the test's temporary directory, its stdout and stderr going
//! to a log file there, with Flume's HTTP monitoring (`GET /metrics`, Flume's JSON) on a free
//! port. The harness waits for readiness and counters with deadlines, stops the agent with
//! SIGTERM (then SIGKILL), and kills it on drop, so no JVM outlives a failing test. Every panic
//! it raises carries the tail of Flume's log, which is where Flume says what went wrong.
//!
//! `FlumeAgent::start` runs on the `tests/avro` classpath; `FlumeAgent::start_on` runs on
//! another Maven project's classpath with extra JVM flags: `FlumeAgent::start_hbase` is Flume's
//! agent with its `hbase2` sink on the `tests/hbase` classpath (HBase 2.6's client, which
//! needs `--add-opens` on JDK 17), beside the HBase the tests run (`hbase_cluster`).
//!
//! A machine without `java` or `mvn` fails the tests that use it (`java::maven_classpath`
//! says so); they never skip.

use std::fs::File;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::agent_proc::{free_port, poll_process, POLL};

/// Upper bound for one wait on the agent, shared with flumen's agents (one minute: JVM
/// start-up on a loaded 2-core machine takes a few seconds).
pub use crate::agent_proc::DEADLINE;
/// How long SIGTERM may take before the harness uses SIGKILL. Flume's shutdown hook stops
/// sources, sinks, channels and the monitoring server one after another, which takes seconds.
const STOP_GRACE: Duration = Duration::from_secs(20);
/// Lines of Flume's log shown in a failure message.
const LOG_TAIL_LINES: usize = 60;

/// The `tests/avro` classpath (flume-ng-node and flume-taildir-source 1.11.0, log4j 2 and our
/// log4j2.xml), built once per test process.
pub fn classpath() -> &'static str {
    static CP: OnceLock<String> = OnceLock::new();
    CP.get_or_init(|| crate::java::maven_classpath("avro"))
}

/// One running Flume agent named `a1`.
pub struct FlumeAgent {
    child: Option<Child>,
    log: PathBuf,
    /// Flume's HTTP monitoring port (`-Dflume.monitoring.port`).
    pub monitoring_port: u16,
}

impl FlumeAgent {
    /// Writes `properties` (agent `a1`) to `dir/flume-<tag>.properties` and starts Flume on it.
    /// Returns at once; call [`wait_ready`](Self::wait_ready) before relying on it.
    pub fn start(dir: &Path, tag: &str, properties: &str) -> FlumeAgent {
        FlumeAgent::start_on(classpath(), &[], dir, tag, properties)
    }

    /// As [`start`](Self::start), on the `tests/hbase` classpath (Flume 1.11's agent with its
    /// `hbase2` sink and HBase 2.6's client) with the JVM flags that client needs on JDK 17.
    /// Builds that Maven project first if this process has not yet.
    pub fn start_hbase(dir: &Path, tag: &str, properties: &str) -> FlumeAgent {
        let cp = crate::hbase_cluster::hbase_classpath();
        FlumeAgent::start_on(cp, crate::hbase_cluster::JDK17_FLAGS, dir, tag, properties)
    }

    /// As [`start`](Self::start), with Flume's `Application` taken from the classpath `cp`
    /// (which must hold flume-ng-node and a log4j 2 binding) and `jvm_args` after the
    /// harness's own JVM flags (so a later `-Xmx` wins).
    pub fn start_on(
        cp: &str,
        jvm_args: &[&str],
        dir: &Path,
        tag: &str,
        properties: &str,
    ) -> FlumeAgent {
        let conf = dir.join(format!("flume-{tag}.properties"));
        std::fs::write(&conf, properties).expect("write the Flume properties file");
        let log = dir.join(format!("flume-{tag}.log"));
        let log_file = File::create(&log).expect("create the Flume log file");
        let log_err = log_file.try_clone().expect("clone the log file handle");
        let monitoring_port = free_port();
        let child = Command::new("java")
            // Small heap, serial GC and the client compiler only: these agents move tens of
            // thousands of small events, and two of them may run at once on two shared cores,
            // so start-up time and CPU matter more than peak throughput.
            .args([
                "-Xmx256m",
                "-XX:+UseSerialGC",
                "-XX:TieredStopAtLevel=1",
                "-Dflume.root.level=INFO",
                "-Dflume.monitoring.type=http",
            ])
            .arg(format!("-Dflume.monitoring.port={monitoring_port}"))
            .args(jvm_args)
            .args(["-cp", cp, "org.apache.flume.node.Application"])
            .args(["-n", "a1", "-f"])
            .arg(&conf)
            // The file is written once; Flume's default re-reads it every 30 s.
            .arg("--no-reload-conf")
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(log_file)
            .stderr(log_err)
            .spawn()
            .expect("start java (Flume's Application)");
        FlumeAgent {
            child: Some(child),
            log,
            monitoring_port,
        }
    }

    /// The last lines of Flume's log.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let from = lines.len().saturating_sub(LOG_TAIL_LINES);
        format!(
            "--- last {} lines of {} ---\n{}",
            lines.len() - from,
            self.log.display(),
            lines[from..].join("\n")
        )
    }

    /// Kills the agent and panics with `msg` and the tail of its log.
    pub fn fail(&mut self, msg: &str) -> ! {
        self.kill();
        panic!("{msg}\n{}", self.log_tail());
    }

    /// Panics (with the log) if the JVM has exited.
    pub fn assert_running(&mut self, what: &str) {
        let child = self.child.as_mut().expect("the agent was stopped");
        if let Some(st) = child.try_wait().expect("try_wait on java") {
            self.child = None;
            panic!("Flume exited with {st} while {what}\n{}", self.log_tail());
        }
    }

    /// Polls `cond` until it yields a value; fails after [`DEADLINE`] or if Flume exits.
    pub fn poll<T>(&mut self, what: &str, cond: impl FnMut(&mut Self) -> Option<T>) -> T {
        poll_process(self, what, cond, Self::assert_running, |f| {
            f.fail(&format!("timed out after {DEADLINE:?} {what}"))
        })
    }

    /// Waits until the monitoring server answers with JSON in which every component in
    /// `components` (e.g. `SOURCE.r1`, `SINK.k1`) is registered (Flume registers each when it
    /// starts, the source last), and, if given, until `avro_port` accepts connections.
    pub fn wait_ready(&mut self, components: &[&str], avro_port: Option<u16>) {
        let what = format!("waiting for Flume to start {components:?} (avro port {avro_port:?})");
        self.poll(&what, |a| {
            let m = a.try_metrics()?;
            let all = components.iter().all(|c| m.get(c).is_some());
            let listening = avro_port.is_none_or(|p| TcpStream::connect(("127.0.0.1", p)).is_ok());
            (all && listening).then_some(())
        });
    }

    /// `GET /metrics` once; `None` while the server does not answer (yet).
    pub fn try_metrics(&self) -> Option<serde_json::Value> {
        let mut s = TcpStream::connect(("127.0.0.1", self.monitoring_port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
        // HTTP/1.0: Jetty answers without chunking and closes, so reading to EOF is the body.
        s.write_all(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            .ok()?;
        let mut resp = String::new();
        s.read_to_string(&mut resp).ok()?;
        let (head, body) = resp.split_once("\r\n\r\n")?;
        if head.split(' ').nth(1) != Some("200") {
            return None;
        }
        serde_json::from_str(body).ok()
    }

    /// `component`'s counter `name` (Flume serves every value as a string); `None` while the
    /// component is not registered or the server does not answer.
    pub fn try_counter(&self, component: &str, name: &str) -> Option<u64> {
        self.try_metrics()?[component][name].as_str()?.parse().ok()
    }

    /// As [`try_counter`](Self::try_counter), waiting (bounded) for an answer.
    pub fn counter(&mut self, component: &str, name: &str) -> u64 {
        self.poll(&format!("reading {component} {name}"), |a| {
            a.try_counter(component, name)
        })
    }

    /// SIGTERM, then waits up to [`STOP_GRACE`] for the JVM to exit, then SIGKILL. Returns the
    /// exit status; Flume exits with 143 (128 + SIGTERM) after its shutdown hook ran.
    pub fn stop(mut self) -> ExitStatus {
        let mut child = self.child.take().expect("the agent was stopped");
        let pid = child.id().to_string();
        // std has no SIGTERM; `kill` is in every base system.
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let end = Instant::now() + STOP_GRACE;
        loop {
            if let Some(st) = child.try_wait().expect("try_wait on java") {
                return st;
            }
            if Instant::now() > end {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "Flume did not exit within {STOP_GRACE:?} of SIGTERM\n{}",
                    self.log_tail()
                );
            }
            std::thread::sleep(POLL);
        }
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for FlumeAgent {
    fn drop(&mut self) {
        self.kill();
    }
}
