//! `flumen agent` killed with SIGKILL under load, then restarted to drain its file channel:
//! no sequence number may be lost, and the duplicates (at-least-once delivery) must stay
//! within what one sink batch in flight can explain. Also: configuration mistakes reported by
//! the binary itself (exit code 2, file, line and key on stderr), and an unknown key being
//! only a warning.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::agent_proc::AgentProcess as Agent;

// ---------------------------------------------------------------------------------------------
// 1. kill -9 under load
// ---------------------------------------------------------------------------------------------

const TOTAL_EVENTS: u64 = 200_000;
const SINK_BATCH: u64 = 100;
const KILL_AFTER_LINES: usize = 20_000;

fn crash_config(dir: &Path, total_events: u64) -> PathBuf {
    let conf = dir.join(format!("agent-{total_events}.properties"));
    let text = format!(
        "a1.sources = r1\n\
         a1.channels = c1\n\
         a1.sinks = k1\n\
         a1.sources.r1.type = seq\n\
         a1.sources.r1.totalEvents = {total_events}\n\
         a1.sources.r1.batchSize = 100\n\
         a1.sources.r1.channels = c1\n\
         a1.channels.c1.type = file\n\
         a1.channels.c1.checkpointDir = {cp}\n\
         a1.channels.c1.dataDirs = {data}\n\
         a1.channels.c1.capacity = 1000000\n\
         a1.channels.c1.transactionCapacity = 1000\n\
         a1.channels.c1.minimumRequiredSpace = 1048576\n\
         a1.sinks.k1.type = file_roll\n\
         a1.sinks.k1.channel = c1\n\
         a1.sinks.k1.sink.directory = {out}\n\
         a1.sinks.k1.sink.rollInterval = 0\n\
         a1.sinks.k1.batchSize = {SINK_BATCH}\n",
        cp = dir.join("checkpoint").display(),
        data = dir.join("data").display(),
        out = dir.join("out").display(),
    );
    std::fs::write(&conf, text).expect("write config");
    conf
}

/// The output files' contents, file by file.
fn output_texts(out: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let Ok(entries) = std::fs::read_dir(out) else {
        return vec![];
    };
    let mut v: Vec<_> = entries
        .map(|e| {
            let p = e.expect("dir entry").path();
            let bytes = std::fs::read(&p).expect("read output file");
            (p, bytes)
        })
        .collect();
    v.sort();
    v
}

/// Complete lines across the output files.
fn output_line_count(out: &Path) -> usize {
    output_texts(out)
        .iter()
        .map(|(_, b)| b.iter().filter(|&&c| c == b'\n').count())
        .sum()
}

/// The numbers in the output (complete lines only), and any torn trailing fragments (a
/// write cut by the SIGKILL; that batch was never committed, so it is delivered again).
fn output_numbers(out: &Path) -> (Vec<u64>, Vec<String>) {
    let mut nums = vec![];
    let mut torn = vec![];
    for (path, bytes) in output_texts(out) {
        let text = String::from_utf8(bytes).expect("output is UTF-8");
        let complete = text.rfind('\n').map_or(0, |i| i + 1);
        if complete < text.len() {
            torn.push(format!("{}: {:?}", path.display(), &text[complete..]));
        }
        for l in text[..complete].lines() {
            let n: u64 = l
                .parse()
                .unwrap_or_else(|e| panic!("{}: line {l:?} is not a number: {e}", path.display()));
            nums.push(n);
        }
    }
    (nums, torn)
}

/// `flumen channel inspect`'s queue depth (a full read-only recovery), or why it failed.
fn inspect_depth(dirs: &[PathBuf]) -> Result<u64, String> {
    let out = Command::new(env!("CARGO_BIN_EXE_flumen"))
        .args(["channel", "inspect", "--dir"])
        .args(dirs)
        .env("RUST_LOG", "off")
        .stdin(Stdio::null())
        .output()
        .expect("run flumen channel inspect");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return Err(format!(
            "inspect exited with {}:\n{stdout}{stderr}",
            out.status
        ));
    }
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("queue depth:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| format!("no queue depth in inspect output:\n{stdout}{stderr}"))
}

#[test]
fn kill_minus_nine_under_load_loses_no_sequence_number() {
    let started = Instant::now();
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out");
    let channel_dirs = [dir.path().join("checkpoint"), dir.path().join("data")];

    // Run 1: seq -> file channel -> file_roll, killed with SIGKILL mid-stream.
    let conf = crash_config(dir.path(), TOTAL_EVENTS);
    let mut run = Agent::start(dir.path(), &conf, "a1", "1");
    run.wait_for(
        &format!("waiting for {KILL_AFTER_LINES} output lines"),
        |_| output_line_count(&out) >= KILL_AFTER_LINES,
    );
    let (st, log1) = run.kill_9();
    assert!(st.code().is_none(), "expected death by signal, got {st}");
    let (before, torn) = output_numbers(&out);
    let max_before = *before.iter().max().expect("output before the kill");
    eprintln!(
        "kill -9 after {:?}: {} lines in the output, highest number {max_before}, torn fragments: {torn:?}",
        started.elapsed(),
        before.len()
    );
    assert!(
        before.len() >= KILL_AFTER_LINES,
        "output shrank after the kill"
    );

    // Run 2: the same channel and output, but a seq source that puts nothing
    // (`totalEvents = 0` stops at once), so this run only drains the channel.
    let conf = crash_config(dir.path(), 0);
    let mut run = Agent::start(dir.path(), &conf, "a1", "2");
    let mut last_err = String::new();
    run.wait_for("waiting for the channel to drain", |a| {
        if !a.log().contains("agent `a1` started") {
            return false;
        }
        // Depth 0 means every take has committed, and the sink commits a take only after its
        // events are written and fsynced, so the output is complete.
        match inspect_depth(&channel_dirs) {
            Ok(0) => true,
            Ok(n) => {
                last_err = format!("queue depth {n}");
                false
            }
            // Inspect may race with a checkpoint or a segment deletion of the live agent.
            Err(e) => {
                last_err = e;
                false
            }
        }
    });
    let (st, log2) = run.terminate();
    assert_eq!(
        st.code(),
        Some(0),
        "second run (last poll: {last_err}):\n{log2}"
    );
    let depth = inspect_depth(&channel_dirs).expect("inspect after the second run");
    assert_eq!(depth, 0, "the channel must be drained");

    // Every number below the highest one ever output must be there: the seq source commits
    // its batches in order, so a number in the output proves every smaller one was committed.
    let (nums, torn_after) = output_numbers(&out);
    assert_eq!(
        torn_after, torn,
        "the draining run must leave no torn lines (it stopped cleanly)"
    );
    let max = *nums.iter().max().expect("output");
    assert!(
        max >= max_before,
        "highest number went down: {max} < {max_before}"
    );
    assert!(max < TOTAL_EVENTS, "number {max} was never generated");
    let mut counts = vec![0u32; max as usize + 1];
    for &n in &nums {
        counts[n as usize] += 1;
    }
    let missing: Vec<u64> = (0..=max).filter(|&n| counts[n as usize] == 0).collect();
    let dups: Vec<u64> = (0..=max).filter(|&n| counts[n as usize] > 1).collect();
    eprintln!(
        "after the drain: {} lines, numbers 0..={max} ({} committed), {} duplicates {:?}, {} missing, total {:?}",
        nums.len(),
        max + 1,
        dups.len(),
        dups.first().zip(dups.last()),
        missing.len(),
        started.elapsed()
    );
    assert!(
        missing.is_empty(),
        "{} numbers lost, first {:?}\nrun 1:\n{log1}\nrun 2:\n{log2}",
        missing.len(),
        &missing[..missing.len().min(20)]
    );

    // The duplicate bound. The agent has one sink, whose runner takes one batch (at most
    // `batchSize` = 100 events) in one take transaction, writes and fsyncs it to the output,
    // and only then commits the take; it starts the next take only after that commit returns,
    // and with the default `fsync = every-commit` a returned commit is durable. So at the
    // SIGKILL at most one batch can be in the output without a durable take commit: only
    // those <= 100 events are delivered again by the second run. The seq source cannot add
    // duplicates: each number is put once in run 1 (a put that did not reach the log is
    // simply absent and was never output), and run 2 puts nothing. Run 2 stops with SIGTERM,
    // which finishes and commits the batch in hand. And as the queue is FIFO and fed by one
    // source in order, that one batch is a contiguous run of numbers.
    assert!(
        counts.iter().all(|&c| c <= 2),
        "a number was delivered more than twice"
    );
    assert!(
        dups.len() as u64 <= SINK_BATCH,
        "{} duplicates, more than one sink batch ({SINK_BATCH}) can explain: {dups:?}",
        dups.len()
    );
    if let (Some(&lo), Some(&hi)) = (dups.first(), dups.last()) {
        assert!(
            hi - lo < SINK_BATCH && dups.len() as u64 == hi - lo + 1,
            "duplicates are not one contiguous batch: {dups:?}"
        );
        assert!(
            hi <= max_before,
            "duplicate {hi} was not in the output before the kill"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 2. Configuration errors and warnings through the binary
// ---------------------------------------------------------------------------------------------

/// Writes `text` as a config file and returns its path and the 1-based line of the first line
/// starting with `key` (`None` if `key` is empty).
fn write_conf(dir: &Path, text: &str, key: &str) -> (PathBuf, usize) {
    let conf = dir.join("agent.properties");
    std::fs::write(&conf, text).expect("write config");
    let line = if key.is_empty() {
        0
    } else {
        text.lines()
            .position(|l| l.trim_start().starts_with(key))
            .unwrap_or_else(|| panic!("no line starts with {key}"))
            + 1
    };
    (conf, line)
}

/// Runs the agent, expecting it to refuse to start; returns its exit code and stderr.
fn run_expecting_exit(dir: &Path, conf: &Path, agent: &str) -> (Option<i32>, String) {
    let (st, log) = Agent::start(dir, conf, agent, "err").wait_exit("although its config is wrong");
    (st.code(), log)
}

/// Asserts exit code 2 and an error naming `file:line:` and `key`.
fn assert_config_error(text: &str, line_key: &str, named_key: &str, also: &[&str]) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (conf, line) = write_conf(dir.path(), text, line_key);
    let (code, stderr) = run_expecting_exit(dir.path(), &conf, "a1");
    assert_eq!(code, Some(2), "exit code; stderr:\n{stderr}");
    let at = format!("{}:{line}:", conf.display());
    assert!(stderr.contains(&at), "stderr must name {at}:\n{stderr}");
    assert!(
        stderr.contains(&format!("`{named_key}`")),
        "stderr must name `{named_key}`:\n{stderr}"
    );
    for s in also {
        assert!(stderr.contains(s), "stderr must contain {s:?}:\n{stderr}");
    }
}

#[test]
fn config_error_missing_required_key_netcat_port() {
    let text = "a1.sources = r1\n\
                a1.channels = c1\n\
                a1.sinks = k1\n\
                a1.sources.r1.type = netcat\n\
                a1.sources.r1.bind = 127.0.0.1\n\
                a1.sources.r1.channels = c1\n\
                a1.channels.c1.type = memory\n\
                a1.sinks.k1.type = null\n\
                a1.sinks.k1.channel = c1\n";
    // MissingKey points at the component's `type` line.
    assert_config_error(
        text,
        "a1.sources.r1.type",
        "a1.sources.r1.port",
        &["missing required key"],
    );
}

#[test]
fn config_error_bad_capacity_value() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = format!(
        "a1.sources = r1\n\
         a1.channels = c1\n\
         a1.sinks = k1\n\
         a1.sources.r1.type = seq\n\
         a1.sources.r1.channels = c1\n\
         a1.channels.c1.type = file\n\
         a1.channels.c1.checkpointDir = {cp}\n\
         a1.channels.c1.dataDirs = {data}\n\
         a1.channels.c1.capacity = lots\n\
         a1.sinks.k1.type = null\n\
         a1.sinks.k1.channel = c1\n",
        cp = dir.path().join("cp").display(),
        data = dir.path().join("data").display(),
    );
    assert_config_error(
        &text,
        "a1.channels.c1.capacity",
        "a1.channels.c1.capacity",
        &["bad value `lots`"],
    );
}

#[test]
fn config_error_sink_bound_to_unknown_channel() {
    let text = "a1.sources = r1\n\
                a1.channels = c1\n\
                a1.sinks = k1\n\
                a1.sources.r1.type = seq\n\
                a1.sources.r1.channels = c1\n\
                a1.channels.c1.type = memory\n\
                a1.sinks.k1.type = null\n\
                a1.sinks.k1.channel = c9\n";
    assert_config_error(
        text,
        "a1.sinks.k1.channel",
        "a1.sinks.k1.channel",
        &["`c9`"],
    );
}

#[test]
fn config_error_unknown_agent_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = "a1.sources = r1\n\
                a1.channels = c1\n\
                a1.sinks = k1\n\
                a1.sources.r1.type = seq\n\
                a1.sources.r1.channels = c1\n\
                a1.channels.c1.type = memory\n\
                a1.sinks.k1.type = null\n\
                a1.sinks.k1.channel = c1\n";
    let (conf, _) = write_conf(dir.path(), text, "");
    let (code, stderr) = run_expecting_exit(dir.path(), &conf, "nosuch");
    assert_eq!(code, Some(2), "exit code; stderr:\n{stderr}");
    // This error has no line to point at (no key of that agent exists): it names the file,
    // the agent asked for, and the agents the file does define.
    let at = format!("{}:", conf.display());
    assert!(stderr.contains(&at), "stderr must name {at}:\n{stderr}");
    assert!(
        stderr.contains("`nosuch`"),
        "stderr must name the agent:\n{stderr}"
    );
    assert!(
        stderr.contains("agents defined in this file: a1"),
        "stderr must list the defined agents:\n{stderr}"
    );
}

#[test]
fn unknown_key_is_a_warning_naming_the_nearest_key_and_the_agent_runs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = "a1.sources = r1\n\
                a1.channels = c1\n\
                a1.sinks = k1\n\
                a1.sources.r1.type = seq\n\
                a1.sources.r1.totalEvents = 10\n\
                a1.sources.r1.channels = c1\n\
                a1.channels.c1.type = memory\n\
                a1.channels.c1.capacty = 1000\n\
                a1.sinks.k1.type = null\n\
                a1.sinks.k1.channel = c1\n";
    let (conf, line) = write_conf(dir.path(), text, "a1.channels.c1.capacty");
    let mut run = Agent::start(dir.path(), &conf, "a1", "warn");
    let warning = format!(
        "{}:{line}: `a1.channels.c1.capacty`: unknown key, ignored; the nearest known key is `a1.channels.c1.capacity`",
        conf.display()
    );
    run.wait_for("waiting for the unknown-key warning", |a| {
        a.log().contains(&warning)
    });
    run.wait_for("waiting for the agent to start", |a| {
        a.log().contains("agent `a1` started")
    });
    let (st, log) = run.terminate();
    assert_eq!(st.code(), Some(0), "agent with a warning:\n{log}");
}
