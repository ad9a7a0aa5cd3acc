//! The `spooldir` source through the `flumen agent` binary: spool directory -> file channel ->
//! file_roll. Files dropped while the agent runs are delivered once and renamed; a kill -9
//! in the middle of a file loses nothing and repeats at most a batch; a file changed after
//! pickup and a reused completed name stop the source with the documented ERROR; each
//! `decodeErrorPolicy`; a line far longer than `maxLineLength` (split into pieces); `deletePolicy = immediate`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::agent_proc::{
    complete_lines, file_channel_to_file_roll, newline_count, peak_rss_kib, unprivileged_prefix,
    AgentProcess as Agent,
};

/// The tracker's file name in `trackerDir` (docs/FORMAT.md).
const TRACKER: &str = ".flumespool/flumen-spooldir.json";

/// spooldir on `dir/spool` (with `extra` source keys, each line ending in `\n`) -> file channel
/// under `dir` -> file_roll into `dir/out`, source and sink batches of `batch`.
fn config(dir: &Path, batch: usize, extra: &str) -> PathBuf {
    let conf = dir.join("agent.properties");
    let spool = dir.join("spool");
    std::fs::create_dir_all(&spool).expect("spool dir");
    let text = format!(
        "a1.sources = r1\n\
         a1.channels = c1\n\
         a1.sinks = k1\n\
         a1.sources.r1.type = spooldir\n\
         a1.sources.r1.spoolDir = {spool}\n\
         a1.sources.r1.pollDelay = 50\n\
         a1.sources.r1.batchSize = {batch}\n\
         {extra}\
         a1.sources.r1.channels = c1\n\
         {tail}",
        spool = spool.display(),
        tail = file_channel_to_file_roll(dir, batch),
    );
    std::fs::write(&conf, text).expect("write config");
    conf
}

/// Moves `bytes` into the spool directory as `name`, complete (written beside it, then
/// renamed in), as spooling requires.
fn drop_file(dir: &Path, name: &str, bytes: &[u8]) {
    let staging = dir.join("staging");
    std::fs::create_dir_all(&staging).expect("staging dir");
    std::fs::write(staging.join(name), bytes).expect("write staged file");
    std::fs::rename(staging.join(name), dir.join("spool").join(name)).expect("move into spool");
}

/// `n` numbered lines for file `tag`, with some padding so a file has some size.
fn numbered(tag: &str, n: usize) -> String {
    (0..n)
        .map(|i| format!("{tag}-{i:07} the quick brown fox jumps over the lazy dog\n"))
        .collect()
}

fn expected(tag: &str, n: usize) -> Vec<String> {
    numbered(tag, n).lines().map(str::to_string).collect()
}

fn assert_once(counts: &BTreeMap<String, usize>, want: &[String]) {
    for line in want {
        assert_eq!(counts.get(line), Some(&1), "line {line:?}");
    }
    assert_eq!(counts.len(), want.len(), "unexpected lines in the output");
}

#[test]
fn files_dropped_while_running_are_delivered_once_and_renamed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let conf = config(d, 50, "");
    let mut agent = Agent::start(d, &conf, "a1", "run");
    let mut want = Vec::new();
    for tag in ["a", "b", "c"] {
        drop_file(d, &format!("{tag}.log"), numbered(tag, 1000).as_bytes());
        want.extend(expected(tag, 1000));
    }
    let spool = d.join("spool");
    agent.wait_for("every file renamed .COMPLETED", |_| {
        ["a", "b", "c"]
            .iter()
            .all(|t| spool.join(format!("{t}.log.COMPLETED")).exists())
    });
    let out = d.join("out");
    agent.wait_for("every line in the output", |_| {
        newline_count(&out) >= want.len()
    });
    let (st, log) = agent.terminate();
    assert!(st.success(), "{log}");
    assert_once(&complete_lines(&out), &want);
    for t in ["a", "b", "c"] {
        assert!(!spool.join(format!("{t}.log")).exists());
    }
    assert!(
        !spool.join(TRACKER).exists(),
        "no file in progress, no tracker"
    );
}

#[test]
fn a_kill_9_mid_file_loses_nothing_and_repeats_at_most_a_batch() {
    const LINES: usize = 50_000;
    const BATCH: usize = 20;
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let conf = config(d, BATCH, "");
    let spool = d.join("spool");
    drop_file(d, "big.log", numbered("big", LINES).as_bytes());
    let size = std::fs::metadata(spool.join("big.log"))
        .expect("stat")
        .len();
    let out = d.join("out");
    let mut agent = Agent::start(d, &conf, "a1", "first");
    agent.wait_for("some lines delivered", |_| newline_count(&out) >= 2_000);
    let (_, log) = agent.kill_9();
    let before = newline_count(&out);
    assert!(
        before < LINES && spool.join("big.log").exists(),
        "the kill must land mid-file ({before} of {LINES} lines delivered):\n{log}"
    );
    let tracker = std::fs::read_to_string(spool.join(TRACKER)).expect("a tracker mid-file");
    let t: serde_json::Value = serde_json::from_str(&tracker).expect("tracker JSON");
    let committed = t["committed"].as_u64().expect("committed");
    assert!(committed > 0 && committed < size, "{tracker}");

    let mut agent = Agent::start(d, &conf, "a1", "second");
    agent.wait_for("big.log renamed", |_| {
        spool.join("big.log.COMPLETED").exists()
    });
    agent.wait_for("every line delivered", |_| {
        newline_count(&out) >= LINES && complete_lines(&out).len() >= LINES
    });
    let (st, log) = agent.terminate();
    assert!(st.success(), "{log}");
    assert!(log.contains("resuming"), "{log}");
    let counts = complete_lines(&out);
    let want = expected("big", LINES);
    let missing: Vec<&String> = want.iter().filter(|l| !counts.contains_key(*l)).collect();
    assert!(
        missing.is_empty(),
        "{} lines lost: {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    assert_eq!(counts.len(), LINES, "lines that were never in the file");
    let dups: usize = counts.values().map(|c| c - 1).sum();
    // At most the source's batch in flight (committed to the channel, not yet in the tracker)
    // and the sink's (written to the output, its take not committed) come again.
    assert!(
        dups <= 2 * BATCH,
        "{dups} duplicates; one source batch and one sink batch ({BATCH} each) explain at most {}",
        2 * BATCH
    );
}

#[test]
fn a_file_changed_after_pickup_stops_the_source() {
    const LINES: usize = 100_000;
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let conf = config(d, 10, "");
    let spool = d.join("spool");
    drop_file(d, "grow.log", numbered("g", LINES).as_bytes());
    let out = d.join("out");
    let mut agent = Agent::start(d, &conf, "a1", "run");
    agent.wait_for("reading has begun", |_| newline_count(&out) >= 100);
    // The writer was not done after all.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(spool.join("grow.log"))
        .expect("the file is still being read");
    std::io::Write::write_all(&mut f, b"late line\n").expect("append");
    drop(f);
    agent.wait_for("the source stops", |a| {
        a.log().contains("(spooldir) stops: file")
    });
    let log = agent.log();
    let line = log
        .lines()
        .find(|l| l.contains("(spooldir) stops"))
        .expect("the stop line");
    assert!(line.contains("ERROR"), "{line}");
    assert!(
        line.contains("grow.log changed after it was picked up"),
        "{line}"
    );
    assert!(line.contains("its size went from"), "{line}");
    let (st, log) = agent.terminate();
    assert!(st.success(), "{log}");
    assert!(spool.join("grow.log").exists(), "never marked done");
    assert!(!spool.join("grow.log.COMPLETED").exists());
    assert!(newline_count(&out) < LINES + 1);
}

#[test]
fn a_reused_completed_name_stops_the_source_before_reading() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let conf = config(d, 10, "");
    let spool = d.join("spool");
    drop_file(d, "app.log.COMPLETED", b"yesterday\n");
    drop_file(d, "app.log", b"today\n");
    let mut agent = Agent::start(d, &conf, "a1", "run");
    agent.wait_for("the source stops", |a| a.log().contains("(spooldir) stops"));
    let log = agent.log();
    let line = log
        .lines()
        .find(|l| l.contains("(spooldir) stops"))
        .expect("the stop line");
    assert!(line.contains("ERROR"), "{line}");
    assert!(line.contains("app.log cannot be marked done"), "{line}");
    assert!(line.contains("app.log.COMPLETED already exists"), "{line}");
    let (st, log) = agent.terminate();
    assert!(st.success(), "{log}");
    assert_eq!(
        std::fs::read(spool.join("app.log")).expect("left alone"),
        b"today\n"
    );
    assert_eq!(newline_count(&d.join("out")), 0, "nothing read");
}

/// Runs the agent over one file with a bad byte sequence under `policy`; returns the output
/// lines, whether the file was renamed, and the log.
fn with_policy(policy: &str) -> (BTreeMap<String, usize>, bool, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let conf = config(
        d,
        10,
        &format!("a1.sources.r1.decodeErrorPolicy = {policy}\n"),
    );
    let spool = d.join("spool");
    drop_file(d, "bad.log", b"ok1\nbad\xff\xfeline\nok2\n");
    let out = d.join("out");
    let mut agent = Agent::start(d, &conf, "a1", "run");
    if policy == "FAIL" {
        agent.wait_for("the source stops", |a| a.log().contains("(spooldir) stops"));
        agent.wait_for("ok1 delivered", |_| newline_count(&out) >= 1);
    } else {
        agent.wait_for("bad.log renamed", |_| {
            spool.join("bad.log.COMPLETED").exists()
        });
        agent.wait_for("3 lines delivered", |_| newline_count(&out) >= 3);
    }
    let (st, log) = agent.terminate();
    assert!(st.success(), "{log}");
    (
        complete_lines(&out),
        spool.join("bad.log.COMPLETED").exists(),
        log,
    )
}

#[test]
fn decode_error_policy_fail_stops_at_the_bad_bytes_naming_file_and_offset() {
    let (lines, renamed, log) = with_policy("FAIL");
    assert_eq!(lines.keys().collect::<Vec<_>>(), ["ok1"], "{log}");
    assert!(!renamed);
    let line = log
        .lines()
        .find(|l| l.contains("(spooldir) stops"))
        .expect("the stop line");
    assert!(line.contains("ERROR") && line.contains("bad.log"), "{line}");
    assert!(line.contains("offset 7"), "{line}");
}

#[test]
fn decode_error_policy_replace_and_ignore() {
    let (lines, renamed, log) = with_policy("REPLACE");
    assert!(renamed, "{log}");
    assert_eq!(
        lines.keys().collect::<Vec<_>>(),
        ["bad\u{FFFD}\u{FFFD}line", "ok1", "ok2"],
        "{log}"
    );
    let (lines, renamed, log) = with_policy("IGNORE");
    assert!(renamed, "{log}");
    assert_eq!(
        lines.keys().collect::<Vec<_>>(),
        ["badline", "ok1", "ok2"],
        "{log}"
    );
}

/// The text of the files in `dir` (file_roll's, in name order), one string.
fn output_text(dir: &Path) -> String {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read output dir")
        .map(|e| e.expect("read a directory entry").path())
        .collect();
    files.sort();
    files
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap_or_else(|e| panic!("read {}: {e}", p.display())))
        .collect()
}

#[test]
fn a_line_longer_than_max_line_length_comes_out_in_pieces_in_bounded_memory() {
    const MAX: usize = 100_000;
    // A few MiB, not a multiple of the limit: 42 pieces, the last one short.
    const LONG: usize = 4 * 1024 * 1024 + 12_345;
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let conf = config(
        d,
        10,
        &format!("a1.sources.r1.deserializer.maxLineLength = {MAX}\n"),
    );
    let spool = d.join("spool");
    // Numbered 8-character cells, so a piece out of place or lost shows.
    let mut long = String::with_capacity(LONG + 8);
    let mut i = 0u64;
    while long.len() < LONG {
        long.push_str(&format!("{i:07},"));
        i += 1;
    }
    long.truncate(LONG);
    drop_file(d, "long.log", format!("before\n{long}\nafter\n").as_bytes());
    let pieces = LONG.div_ceil(MAX);
    let out = d.join("out");
    let mut agent = Agent::start(d, &conf, "a1", "run");
    agent.wait_for("long.log renamed", |_| {
        spool.join("long.log.COMPLETED").exists()
    });
    agent.wait_for("every event delivered", |_| {
        newline_count(&out) >= pieces + 2
    });
    let peak = peak_rss_kib(agent.child.id());
    let (st, log) = agent.terminate();
    assert!(st.success(), "{log}");
    let text = output_text(&out);
    let events: Vec<&str> = text.lines().collect();
    assert_eq!(
        events.len(),
        pieces + 2,
        "one event per piece, no empty one"
    );
    assert_eq!(events.first(), Some(&"before"));
    assert_eq!(events.last(), Some(&"after"));
    let middle = &events[1..events.len() - 1];
    assert!(middle.iter().all(|p| p.len() <= MAX && !p.is_empty()));
    assert!(middle[..pieces - 1].iter().all(|p| p.len() == MAX));
    assert!(
        middle.concat() == long,
        "the pieces, in order, are the line"
    );
    assert_eq!(
        log.matches("is longer than deserializer.maxLineLength")
            .count(),
        1,
        "one warning for the line: {log}"
    );
    assert!(
        log.contains(&format!(
            "the line at byte 7 of {} is longer than deserializer.maxLineLength ({MAX}): split into pieces of at most {MAX} characters",
            spool.join("long.log").display()
        )),
        "{log}"
    );
    assert!(
        peak < 200 * 1024,
        "peak RSS {peak} KiB while reading a {LONG}-byte line"
    );
}

#[test]
fn an_unreadable_file_is_logged_and_the_others_are_read() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let conf = config(d, 10, "");
    let spool = d.join("spool");
    for p in [d, spool.as_path()] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    }
    drop_file(d, "locked.log", b"secret\n");
    std::fs::set_permissions(
        spool.join("locked.log"),
        std::fs::Permissions::from_mode(0o000),
    )
    .expect("chmod");
    drop_file(d, "open.log", b"open-1\n");
    // Root reads any file: drop to `nobody` so the permission is real.
    let prefix = unprivileged_prefix();
    let mut agent = Agent::start_prefixed(d, &conf, "a1", "run", &[], &[], prefix);
    agent.wait_for("open.log renamed", |_| {
        spool.join("open.log.COMPLETED").exists()
    });
    // The source goes on: a file dropped later is read too.
    drop_file(d, "later.log", b"later-1\n");
    agent.wait_for("later.log renamed", |_| {
        spool.join("later.log.COMPLETED").exists()
    });
    let out = d.join("out");
    agent.wait_for("2 lines delivered", |_| newline_count(&out) >= 2);
    let (st, log) = agent.terminate();
    assert!(st.success(), "{log}");
    let line = log
        .lines()
        .find(|l| l.contains("skipping") && l.contains("locked.log"))
        .unwrap_or_else(|| panic!("no line about locked.log:\n{log}"));
    assert!(
        line.contains("ERROR") && line.contains("Permission denied"),
        "{line}"
    );
    assert_eq!(
        log.matches("skipping").count(),
        1,
        "logged once, not at every poll:\n{log}"
    );
    assert!(spool.join("locked.log").exists());
    let lines = complete_lines(&out);
    assert_eq!(lines.keys().collect::<Vec<_>>(), ["later-1", "open-1"]);
}

#[test]
fn delete_policy_immediate_removes_files_once_delivered() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let conf = config(d, 10, "a1.sources.r1.deletePolicy = immediate\n");
    let spool = d.join("spool");
    let mut agent = Agent::start(d, &conf, "a1", "run");
    drop_file(d, "gone.log", numbered("d", 100).as_bytes());
    agent.wait_for("gone.log deleted", |_| !spool.join("gone.log").exists());
    let out = d.join("out");
    agent.wait_for("100 lines delivered", |_| newline_count(&out) >= 100);
    let (st, log) = agent.terminate();
    assert!(st.success(), "{log}");
    assert!(!spool.join("gone.log.COMPLETED").exists());
    assert_once(&complete_lines(&out), &expected("d", 100));
}

#[test]
fn a_missing_spool_dir_is_a_start_error_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let conf = config(d, 10, "");
    std::fs::remove_dir(d.join("spool")).expect("remove the spool dir");
    let agent = Agent::start(d, &conf, "a1", "run");
    let (st, log) = agent.wait_exit("with no spool directory");
    assert!(!st.success(), "{log}");
    assert!(
        log.contains(&d.join("spool").display().to_string()),
        "{log}"
    );
}
