//! The `exec` source (Flume's ExecSource): runs a command and turns every line of its stdout
//! into one event (the line ending, `\n` or `\r\n`, is not part of the body). Lines are put
//! in transactions of `batchSize` events; a partial batch is put once `batchTimeout` has
//! passed since its first line, so a quiet command's output still arrives. A full channel is
//! retried with a growing backoff (the command's output waits in the pipe; nothing is
//! dropped).
//!
//! With `shell` set (e.g. `/bin/sh -c`) the command is passed as the last argument of the
//! shell; a shell given without arguments (`/bin/sh`) gets `-c` added. Without `shell` the
//! command is split on whitespace and run directly. stdin is `/dev/null`; stderr is logged
//! line by line at warn with `logStdErr`, discarded otherwise. When the command's stdout
//! ends the pending batch is put, the exit status logged, and with `restart` the command runs
//! again after `restartThrottle` (a shutdown cuts that wait short); otherwise the source ends.
//!
//! Shutdown: the source stops reading, puts what it has read (one attempt: a channel still
//! full after its keep-alive loses that partial batch), kills the command (`Child::kill`,
//! SIGKILL on Unix: only the direct child, so a shell's own children are not signalled) and
//! reaps it. stdout is read on a helper thread so the batch timeout and the stop flag are
//! seen while no line arrives; that thread (and the stderr one) is left to end on its own
//! when the pipe is still held open by a grandchild.
//!
//! Reading and batching the lines is the pump the `stdin` source shares ([`super::lines`]).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};

use std::sync::Arc;

use std::time::Duration;

use super::lines::{spawn_line_reader, trim_line_end, LinePump, Pumped};
use super::{Source, SourceContext, SourceError, SourceSpec, SourceType};
use crate::config::{ConfigError, Keys, Registered};
use crate::metrics::ComponentCounters;
use crate::route::ChannelProcessor;
use crate::stop::sleep_unless_stopped;

/// Longest the pump waits for a line before looking at the stop flag again.
const STOP_POLL: Duration = Duration::from_millis(50);

/// `exec` / Flume's ExecSource.
pub const TYPE: SourceType = Registered {
    alias: "exec",
    class: Some("org.apache.flume.source.ExecSource"),
    parse,
    minimal: &[("command", "echo hello")],
};

/// The `exec` source's keys (docs/CONFIG.md, `exec`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecConfig {
    /// `command` (required).
    pub command: String,
    /// `shell` (default none: the command is split on whitespace and run directly), e.g.
    /// `/bin/sh -c`.
    pub shell: Option<String>,
    /// `restart` (default false): run the command again when it exits.
    pub restart: bool,
    /// `restartThrottle` (default 10000 ms): wait before restarting.
    pub restart_throttle: Duration,
    /// `batchSize` (default 20).
    pub batch_size: usize,
    /// `batchTimeout` (default 3000 ms): put a partial batch after this long.
    pub batch_timeout: Duration,
    /// `logStdErr` (default false): log the command's stderr.
    pub log_stderr: bool,
}

impl ExecConfig {
    /// Running `command` with every other key at its default.
    pub fn new(command: &str) -> ExecConfig {
        ExecConfig {
            command: command.to_string(),
            shell: None,
            restart: false,
            restart_throttle: Duration::from_millis(10_000),
            batch_size: 20,
            batch_timeout: Duration::from_millis(3_000),
            log_stderr: false,
        }
    }
}

fn parse(keys: &mut Keys<'_>) -> Result<Box<dyn SourceSpec>, ConfigError> {
    let command = keys.required(
        "command",
        "the command to run, e.g. `tail -F /var/log/app.log`",
    )?;
    let d = ExecConfig::new(&command.value);
    let shell = keys.get("shell").map(|v| v.value);
    let restart = keys.boolean("restart", d.restart)?;
    let restart_throttle = keys.millis("restartThrottle", d.restart_throttle, 0)?;
    let batch_size = keys.size("batchSize", d.batch_size, 1, "events")?;
    let batch_timeout = keys.millis("batchTimeout", d.batch_timeout, 1)?;
    let log_stderr = keys.boolean("logStdErr", d.log_stderr)?;
    keys.utf8_only(
        "charset",
        "the exec charset",
        "Output is read as UTF-8 bytes",
    )?;
    Ok(Box::new(ExecConfig {
        shell,
        restart,
        restart_throttle,
        batch_size,
        batch_timeout,
        log_stderr,
        ..d
    }))
}

impl SourceSpec for ExecConfig {
    fn batch_size(&self) -> Option<(usize, &'static str)> {
        Some((self.batch_size, "batchSize"))
    }

    fn build(&self, ctx: SourceContext) -> Result<Box<dyn Source>, SourceError> {
        Ok(Box::new(ExecSource::new(ctx, self)?))
    }
}

/// See the module docs.
pub struct ExecSource {
    name: String,
    channels: Arc<ChannelProcessor>,
    /// The command line: the program and its arguments, the command last when a shell runs it.
    argv: Vec<String>,
    restart: bool,
    restart_throttle: Duration,
    batch_size: usize,
    batch_timeout: Duration,
    log_stderr: bool,
    counters: Arc<ComponentCounters>,
}

impl ExecSource {
    /// A source putting into `ctx.channels` as `cfg` says; fails when the command (or the
    /// shell) is empty.
    pub fn new(ctx: SourceContext, cfg: &ExecConfig) -> Result<ExecSource, SourceError> {
        let start_err = |message: &str| SourceError::Start {
            source_name: ctx.name.clone(),
            message: message.to_string(),
        };
        if cfg.command.trim().is_empty() {
            return Err(start_err("exec: `command` is empty"));
        }
        let argv: Vec<String> = match cfg.shell.as_deref().map(str::trim) {
            Some(sh) => {
                let mut argv: Vec<String> = sh.split_whitespace().map(str::to_string).collect();
                if argv.is_empty() {
                    return Err(start_err("exec: `shell` is empty"));
                }
                if argv.len() == 1 {
                    argv.push("-c".to_string());
                }
                argv.push(cfg.command.clone());
                argv
            }
            None => cfg.command.split_whitespace().map(str::to_string).collect(),
        };
        Ok(ExecSource {
            name: ctx.name,
            channels: ctx.channels,
            argv,
            restart: cfg.restart,
            restart_throttle: cfg.restart_throttle,
            batch_size: cfg.batch_size.max(1),
            batch_timeout: cfg.batch_timeout.max(Duration::from_millis(1)),
            log_stderr: cfg.log_stderr,
            counters: ctx.counters,
        })
    }

    fn spawn(&self) -> std::io::Result<Child> {
        let (program, args) = match self.argv.split_first() {
            Some(split) => split,
            None => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "empty command",
                ))
            }
        };
        Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(if self.log_stderr {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .spawn()
    }

    /// Runs the command once. Returns true when the source should go on (restart).
    fn run_once(&self, stop: &AtomicBool) -> bool {
        let name = &self.name;
        let cmd = self.argv.join(" ");
        let mut child = match self.spawn() {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(source = %name, "source `{name}` (exec): cannot run `{cmd}`: {e}");
                return true;
            }
        };
        tracing::info!(source = %name, "source `{name}` (exec): started `{cmd}` (pid {})", child.id());
        if let Some(err) = child.stderr.take() {
            let src = name.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("{name}-stderr"))
                .spawn(move || log_stderr(&src, BufReader::new(err)));
            if let Err(e) = spawned {
                tracing::warn!(source = %name, "source `{name}` (exec): cannot start the stderr thread: {e}");
            }
        }
        let Some(out) = child.stdout.take() else {
            tracing::error!(source = %name, "source `{name}` (exec): no stdout pipe");
            kill_and_reap(name, &mut child);
            return false;
        };
        let (rx, reader) = match spawn_line_reader(name, BufReader::new(out), self.batch_size) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(source = %name, "source `{name}` (exec): cannot start the stdout thread: {e}");
                kill_and_reap(name, &mut child);
                return false;
            }
        };
        let pump = LinePump {
            source: name,
            kind: "exec",
            channels: &self.channels,
            batch_size: self.batch_size,
            batch_timeout: self.batch_timeout,
            counters: &self.counters,
        };
        match pump.run(&rx, stop) {
            Pumped::Ended { events } => {
                tracing::debug!(source = %name, "source `{name}` (exec): stdout of `{cmd}` ended after {events} events");
                // stdout is closed, so the reader thread is done.
                if reader.join().is_err() {
                    tracing::error!(source = %name, "source `{name}` (exec): the stdout thread panicked");
                }
                match wait_unless_stopped(&mut child, stop) {
                    Some(status) => log_exit(name, &cmd, status),
                    None => {
                        kill_and_reap(name, &mut child);
                        return false;
                    }
                }
                true
            }
            Pumped::Stopped => {
                drop(rx);
                kill_and_reap(name, &mut child);
                false
            }
            Pumped::Failed => {
                drop(rx);
                kill_and_reap(name, &mut child);
                false
            }
        }
    }
}

impl Source for ExecSource {
    fn run(self: Box<Self>, stop: Arc<AtomicBool>) {
        let name = &self.name;
        while !stop.load(Ordering::Acquire) {
            if !self.run_once(&stop) || !self.restart || stop.load(Ordering::Acquire) {
                break;
            }
            tracing::info!(
                source = %name,
                "source `{name}` (exec): restarting the command in {} ms",
                self.restart_throttle.as_millis()
            );
            sleep_unless_stopped(self.restart_throttle, &stop);
        }
        tracing::debug!(source = %name, "source `{name}` (exec) ends");
    }
}

/// Waits for `child` to exit, polling so a shutdown is seen; `None` when `stop` was set first.
fn wait_unless_stopped(child: &mut Child, stop: &AtomicBool) -> Option<ExitStatus> {
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) => {}
            Err(e) => {
                tracing::warn!("exec: waiting for pid {}: {e}", child.id());
                return None;
            }
        }
        if stop.load(Ordering::Acquire) {
            return None;
        }
        std::thread::sleep(STOP_POLL);
    }
}

fn kill_and_reap(name: &str, child: &mut Child) {
    if let Ok(Some(status)) = child.try_wait() {
        tracing::info!(source = %name, "source `{name}` (exec): command exited: {status}");
        return;
    }
    if let Err(e) = child.kill() {
        tracing::warn!(source = %name, "source `{name}` (exec): killing pid {}: {e}", child.id());
    }
    match child.wait() {
        Ok(status) => {
            tracing::info!(source = %name, "source `{name}` (exec): command stopped: {status}")
        }
        Err(e) => {
            tracing::warn!(source = %name, "source `{name}` (exec): reaping pid {}: {e}", child.id())
        }
    }
}

fn log_exit(name: &str, cmd: &str, status: ExitStatus) {
    if status.success() {
        tracing::info!(source = %name, "source `{name}` (exec): `{cmd}` exited: {status}");
    } else {
        tracing::warn!(source = %name, "source `{name}` (exec): `{cmd}` exited: {status}");
    }
}

/// Logs every line of `err` at warn, until it ends.
fn log_stderr(name: &str, mut err: impl BufRead) {
    let mut line = Vec::new();
    loop {
        line.clear();
        match err.read_until(b'\n', &mut line) {
            Ok(0) => return,
            Ok(_) => {
                trim_line_end(&mut line);
                let text = String::from_utf8_lossy(&line);
                tracing::warn!(source = %name, "source `{name}` (exec) stderr: {text}");
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                tracing::debug!(source = %name, "source `{name}` (exec): reading stderr: {e}");
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use std::thread::JoinHandle;

    use super::*;
    use crate::channel::Channel;
    use crate::source::lines::testing::{collect_until, drain, memory};

    fn exec(
        channels: Vec<Arc<dyn Channel>>,
        command: &str,
        restart: bool,
        batch_size: usize,
        batch_timeout_ms: u64,
    ) -> Box<ExecSource> {
        let cfg = ExecConfig {
            shell: Some("/bin/sh".into()),
            restart,
            restart_throttle: Duration::from_millis(20),
            batch_size,
            batch_timeout: Duration::from_millis(batch_timeout_ms),
            log_stderr: true,
            ..ExecConfig::new(command)
        };
        Box::new(
            ExecSource::new(SourceContext::detached("r1", channels), &cfg).expect("exec source"),
        )
    }

    fn start(src: Box<ExecSource>) -> (Arc<AtomicBool>, JoinHandle<()>) {
        let stop = Arc::new(AtomicBool::new(false));
        let s = Arc::clone(&stop);
        (stop, std::thread::spawn(move || src.run(s)))
    }

    fn join_within(t: JoinHandle<()>, secs: u64) {
        let end = Instant::now() + Duration::from_secs(secs);
        while !t.is_finished() {
            assert!(Instant::now() < end, "source did not end in {secs} s");
            std::thread::sleep(Duration::from_millis(10));
        }
        t.join().expect("source thread");
    }

    #[test]
    fn exec_puts_every_line_in_order_through_a_small_channel() {
        // Capacity 50 < 250 lines: the source must wait for room, never drop.
        let ch = memory(50, 20);
        let src = exec(
            vec![Arc::clone(&ch)],
            "i=1; while [ $i -le 250 ]; do echo \"line $i\"; i=$((i+1)); done",
            false,
            20,
            3000,
        );
        let (_stop, t) = start(src);
        let got = collect_until(ch.as_ref(), 30, "250 lines", |g| g.len() >= 250);
        let want: Vec<String> = (1..=250).map(|i| format!("line {i}")).collect();
        assert_eq!(got, want);
        // The command exited and restart is off: the source ends by itself.
        join_within(t, 10);
        let mut rest = Vec::new();
        drain(ch.as_ref(), &mut rest);
        assert!(rest.is_empty(), "{rest:?}");
    }

    #[test]
    fn exec_restarts_the_command_when_it_exits() {
        let ch = memory(1000, 100);
        let src = exec(
            vec![Arc::clone(&ch)],
            "printf 'a\\nb\\nc\\n'",
            true,
            2,
            3000,
        );
        let (stop, t) = start(src);
        let got = collect_until(ch.as_ref(), 30, "two runs", |g| g.len() >= 6);
        assert_eq!(got[..6], ["a", "b", "c", "a", "b", "c"]);
        stop.store(true, Ordering::Release);
        join_within(t, 10);
    }

    #[test]
    fn exec_batch_timeout_puts_a_partial_batch() {
        let ch = memory(1000, 100);
        let src = exec(
            vec![Arc::clone(&ch)],
            "printf 'one\\r\\ntwo\\n'; sleep 5",
            false,
            100,
            100,
        );
        let started = Instant::now();
        let (stop, t) = start(src);
        let got = collect_until(ch.as_ref(), 4, "the partial batch", |g| g.len() >= 2);
        assert_eq!(got, ["one", "two"]);
        assert!(started.elapsed() < Duration::from_secs(4));
        // Shutdown kills the shell and returns even though `sleep` still holds stdout.
        stop.store(true, Ordering::Release);
        join_within(t, 3);
    }

    #[test]
    fn exec_without_shell_splits_the_command() {
        let ch = memory(100, 100);
        let cfg = ExecConfig {
            restart_throttle: Duration::from_millis(10),
            ..ExecConfig::new("echo  hello   world")
        };
        let src = Box::new(
            ExecSource::new(SourceContext::detached("r1", vec![Arc::clone(&ch)]), &cfg)
                .expect("exec source"),
        );
        let (_stop, t) = start(src);
        join_within(t, 10);
        let mut got = Vec::new();
        drain(ch.as_ref(), &mut got);
        assert_eq!(got, ["hello world"]);
    }

    #[test]
    fn exec_ends_when_the_command_cannot_run() {
        let ch = memory(100, 100);
        let cfg = ExecConfig {
            restart_throttle: Duration::from_millis(10),
            ..ExecConfig::new("/nonexistent/flumen-test-command")
        };
        let src = Box::new(
            ExecSource::new(SourceContext::detached("r1", vec![Arc::clone(&ch)]), &cfg)
                .expect("exec source"),
        );
        let (_stop, t) = start(src);
        join_within(t, 10);
        let blank = ExecSource::new(
            SourceContext::detached("r1", vec![]),
            &ExecConfig::new("  "),
        );
        assert!(blank.is_err());
    }
}
