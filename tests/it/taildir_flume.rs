//! TAILDIR's position file shared with a real Apache Flume 1.11.0 agent (`flume_agent.rs`),
//! both directions, one agent after the other on the same log file and the same
//! `positionFile`, as when a host moves from Flume to flumen or back:
//!
//! - Flume -> flumen: Flume's TAILDIR reads a log of N numbered lines (memory channel ->
//!   file_roll) until its position file records the whole file, and stops; M lines are
//!   appended; `flumen agent` with TAILDIR on Flume's position file (file channel -> file_roll)
//!   delivers exactly those M lines, none of the first N and no fragment.
//! - flumen -> Flume: the same with the roles swapped. flumen's position file is Flume's JSON
//!   array followed by a second JSON value (flumen's file identities); Flume's reader stops
//!   after the array, so it resumes where flumen stopped.
//!
//! Each agent's output is compared line by line with what it owed, so a re-read (duplicates of
//! old lines), a skip (missing lines) or a torn line (a stray fragment) all fail. Every wait is
//! a condition with a deadline; a failure shows the agent's log.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::agent_proc::{file_channel_to_file_roll, newline_count, output_counts, AgentProcess};
use crate::flume_agent::FlumeAgent;

/// Lines written before the first agent runs: several TAILDIR batches (100) and several of
/// Flume's 8 KiB read buffers.
const FIRST: u64 = 2_000;
/// Lines appended between the two agents.
const APPENDED: u64 = 700;

/// Line `i` (1-based) of the log: fixed width, so a fragment cannot pass for a line.
fn line(i: u64) -> String {
    format!("line-{i:08}-abcdefghijklmnopqrstuvwxyz-0123456789")
}

/// Appends lines `from..=to` to `path` (creating it), each with its newline.
fn append_lines(path: &Path, from: u64, to: u64) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open the log");
    let mut text = String::new();
    for i in from..=to {
        text.push_str(&line(i));
        text.push('\n');
    }
    f.write_all(text.as_bytes()).expect("append to the log");
    f.sync_all().expect("sync the log");
}

/// Exactly lines `from..=to`, once each.
fn expected(from: u64, to: u64) -> BTreeMap<String, usize> {
    (from..=to).map(|i| (line(i), 1)).collect()
}

/// The directories and files of one test.
struct Layout {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    log: PathBuf,
    positions: PathBuf,
}

impl Layout {
    fn new() -> Layout {
        let tmp = tempfile::tempdir().expect("temp dir");
        // Both agents record the path they list, so give them the same canonical spelling.
        let root = tmp.path().canonicalize().expect("canonical temp dir");
        std::fs::create_dir_all(root.join("logs")).expect("create the log dir");
        Layout {
            log: root.join("logs").join("app.log"),
            positions: root.join("taildir_position.json"),
            root,
            _tmp: tmp,
        }
    }

    /// `filegroups.f1`: the log directory and a regex matching only `app.log`. `[.]` rather
    /// than `\.`, because Java's properties reader drops a backslash before `.`, and the test
    /// is about positions, not about escapes.
    fn filegroup(&self) -> String {
        format!("{}/app[.]log", self.root.join("logs").display())
    }

    /// An empty output directory for Flume's file_roll sink.
    fn out(&self, who: &str) -> PathBuf {
        let out = self.root.join(format!("out-{who}"));
        std::fs::create_dir_all(&out).expect("create the output dir");
        out
    }

    fn log_size(&self) -> u64 {
        std::fs::metadata(&self.log).expect("stat the log").len()
    }

    /// The `pos` the position file holds for the log, if it names it. Read as a stream of
    /// JSON values and only the first (the array) used, as Flume does: flumen's file carries
    /// a second value after it.
    fn recorded_pos(&self) -> Option<u64> {
        let text = std::fs::read_to_string(&self.positions).ok()?;
        let first = serde_json::Deserializer::from_str(&text)
            .into_iter::<serde_json::Value>()
            .next()?
            .ok()?;
        let log = self.log.to_str().expect("UTF-8 temp path");
        first
            .as_array()?
            .iter()
            .find(|e| e["file"].as_str() == Some(log))?["pos"]
            .as_u64()
    }

    /// The TAILDIR source `r1` both agents run unchanged.
    fn taildir_source(&self) -> String {
        format!(
            "a1.sources.r1.type = TAILDIR\n\
             a1.sources.r1.filegroups = f1\n\
             a1.sources.r1.filegroups.f1 = {group}\n\
             a1.sources.r1.positionFile = {pos}\n\
             a1.sources.r1.writePosInterval = 200\n\
             a1.sources.r1.batchSize = 100\n\
             a1.sources.r1.channels = c1\n",
            group = self.filegroup(),
            pos = self.positions.display(),
        )
    }

    /// Flume: TAILDIR -> memory channel -> file_roll into `out`.
    fn flume_properties(&self, out: &Path) -> String {
        format!(
            "a1.sources = r1\n\
             a1.channels = c1\n\
             a1.sinks = k1\n\
             {source}\
             a1.channels.c1.type = memory\n\
             a1.channels.c1.capacity = 10000\n\
             a1.channels.c1.transactionCapacity = 100\n\
             a1.sinks.k1.type = file_roll\n\
             a1.sinks.k1.channel = c1\n\
             a1.sinks.k1.sink.directory = {out}\n\
             a1.sinks.k1.sink.rollInterval = 0\n",
            source = self.taildir_source(),
            out = out.display(),
        )
    }

    /// flumen: TAILDIR -> file channel -> file_roll (the tests' shared tail, under
    /// `flumen/`). Returns the config file and the output directory.
    fn flumen_config(&self) -> (PathBuf, PathBuf) {
        let dir = self.root.join("flumen");
        let out = dir.join("out");
        std::fs::create_dir_all(&out).expect("create flumen's output dir");
        let text = format!(
            "a1.sources = r1\n\
             a1.channels = c1\n\
             a1.sinks = k1\n\
             {source}{tail}",
            source = self.taildir_source(),
            tail = file_channel_to_file_roll(&dir, 100),
        );
        let conf = self.root.join("flumen.properties");
        std::fs::write(&conf, text).expect("write the flumen config");
        (conf, out)
    }
}

/// A `flumen agent` killed if the test fails while it runs, so none outlives its test.
struct Flumen(Option<AgentProcess>);

impl Flumen {
    /// Starts flumen on `l`; returns it and its output directory.
    fn start(l: &Layout) -> (Flumen, PathBuf) {
        let (conf, out) = l.flumen_config();
        let agent = AgentProcess::start(&l.root, &conf, "a1", "taildir");
        (Flumen(Some(agent)), out)
    }

    fn get(&mut self) -> &mut AgentProcess {
        self.0.as_mut().expect("flumen runs")
    }

    /// Waits until the position file records the whole log and `out` holds `lines` lines,
    /// then stops flumen with SIGTERM; returns its log.
    fn drain_and_stop(mut self, l: &Layout, out: &Path, lines: u64) -> String {
        let size = l.log_size();
        self.get().wait_for(
            &format!("for flumen's position file to record pos {size} and {lines} lines out"),
            |_| l.recorded_pos() == Some(size) && newline_count(out) as u64 >= lines,
        );
        let (st, log) = self.0.take().expect("flumen runs").terminate();
        assert!(st.success(), "flumen exited with {st}:\n{log}");
        log
    }
}

impl Drop for Flumen {
    fn drop(&mut self) {
        if let Some(a) = self.0.as_mut() {
            let _ = a.child.kill();
            let _ = a.child.wait();
        }
    }
}

/// Runs Flume's TAILDIR until its position file records the whole log and `out` holds
/// `lines` lines, then stops it (SIGTERM; its shutdown hook writes the position once more).
fn flume_drain_and_stop(l: &Layout, out: &Path, lines: u64, tag: &str) {
    let mut flume = FlumeAgent::start(&l.root, tag, &l.flume_properties(out));
    flume.wait_ready(&["SOURCE.r1", "CHANNEL.c1", "SINK.k1"], None);
    let size = l.log_size();
    flume.poll(
        &format!("waiting for Flume's position file to record pos {size} and {lines} lines out"),
        |_| (l.recorded_pos() == Some(size) && newline_count(out) as u64 >= lines).then_some(()),
    );
    // Flume's file_roll flushes each batch; its own counter agrees with the lines on disk.
    assert_eq!(flume.counter("SOURCE.r1", "EventAcceptedCount"), lines);
    flume.stop();
}

#[test]
fn flumen_resumes_from_flumes_position_file() {
    let l = Layout::new();
    append_lines(&l.log, 1, FIRST);
    let flume_out = l.out("flume");
    flume_drain_and_stop(&l, &flume_out, FIRST, "first");
    assert_eq!(
        output_counts(&flume_out),
        expected(1, FIRST),
        "Flume's own run"
    );
    assert_eq!(
        l.recorded_pos(),
        Some(l.log_size()),
        "Flume's final position"
    );

    append_lines(&l.log, FIRST + 1, FIRST + APPENDED);
    let (flumen, flumen_out) = Flumen::start(&l);
    let log = flumen.drain_and_stop(&l, &flumen_out, APPENDED);
    assert_eq!(
        output_counts(&flumen_out),
        expected(FIRST + 1, FIRST + APPENDED),
        "flumen must deliver exactly the appended lines; its log:\n{log}"
    );
}

#[test]
fn flume_resumes_from_flumens_position_file() {
    let l = Layout::new();
    append_lines(&l.log, 1, FIRST);
    let (flumen, flumen_out) = Flumen::start(&l);
    let log = flumen.drain_and_stop(&l, &flumen_out, FIRST);
    assert_eq!(
        output_counts(&flumen_out),
        expected(1, FIRST),
        "flumen's own run; its log:\n{log}"
    );
    // What Flume is about to read: its array, then flumen's second value, which Flume must
    // not trip over.
    let text = std::fs::read_to_string(&l.positions).expect("flumen's position file");
    let values = serde_json::Deserializer::from_str(&text)
        .into_iter::<serde_json::Value>()
        .collect::<Result<Vec<_>, _>>()
        .unwrap_or_else(|e| panic!("flumen's position file is JSON values: {e}: {text}"));
    assert_eq!(
        values.len(),
        2,
        "an array, then flumen's identities: {text}"
    );
    assert!(values[0].is_array() && values[1].is_object(), "{text}");

    append_lines(&l.log, FIRST + 1, FIRST + APPENDED);
    let flume_out = l.out("flume");
    flume_drain_and_stop(&l, &flume_out, APPENDED, "second");
    assert_eq!(
        output_counts(&flume_out),
        expected(FIRST + 1, FIRST + APPENDED),
        "Flume must deliver exactly the appended lines after flumen's position file"
    );
}
