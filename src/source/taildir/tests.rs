//! The TAILDIR source on real files in a temporary directory, into a memory channel: one
//! test per behaviour the module docs promise.

use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::position::{self, Fingerprint, Identity, Saved};
use super::*;
use crate::channel::Channel;
use crate::config::java_regex;
use crate::event::Headers;
use crate::source::lines::testing::memory;

struct Run {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    ch: Arc<dyn Channel>,
    pos_file: PathBuf,
    /// The rewrite number of the positions when the source started.
    start_seq: u64,
}

impl Run {
    fn stop(mut self) -> Arc<dyn Channel> {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            t.join().expect("source thread");
        }
        Arc::clone(&self.ch)
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}

fn group(dir: &Path, pattern: &str) -> FileGroup {
    FileGroup {
        name: "f1".into(),
        dir: dir.to_path_buf(),
        pattern: java_regex::compile(pattern).expect("regex"),
        headers: Headers::new(),
    }
}

fn cfg(dir: &Path, pattern: &str) -> TaildirConfig {
    TaildirConfig {
        position_file: dir.join("pos").join("taildir_position.json"),
        idle_timeout: Duration::from_secs(60),
        backoff_increment: Duration::from_millis(10),
        max_backoff: Duration::from_millis(50),
        batch_size: 10,
        ..TaildirConfig::new(vec![group(&dir.join("logs"), pattern)], None)
    }
}

fn start(cfg: TaildirConfig) -> Run {
    let pos_file = cfg.position_file.clone();
    let start_seq = position::load_current(&pos_file).map_or(0, |p| p.seq);
    let ch = memory(100_000, 1000);
    let src = TaildirSource::new(SourceContext::detached("r1", vec![Arc::clone(&ch)]), cfg)
        .expect("source");
    let stop = Arc::new(AtomicBool::new(false));
    let s = Arc::clone(&stop);
    let thread = std::thread::spawn(move || Box::new(src).run(s));
    Run {
        stop,
        thread: Some(thread),
        ch,
        pos_file,
        start_seq,
    }
}

fn drain(ch: &dyn Channel, got: &mut Vec<Event>) {
    loop {
        let mut tx = ch.take_transaction();
        let mut out = Vec::new();
        let n = tx.take_batch(100, &mut out).expect("take");
        tx.commit().expect("commit");
        got.extend(out);
        if n == 0 {
            return;
        }
    }
}

fn bodies(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .map(|e| String::from_utf8_lossy(e.body()).into_owned())
        .collect()
}

/// Takes events until `n` arrived (panics after 20 s with what came).
fn take_n(run: &Run, n: usize) -> Vec<Event> {
    let end = Instant::now() + Duration::from_secs(20);
    let mut got = Vec::new();
    while got.len() < n {
        drain(run.ch.as_ref(), &mut got);
        assert!(
            Instant::now() < end,
            "timed out waiting for {n} events: {:?}",
            bodies(&got)
        );
        run.ch.wait_available(Duration::from_millis(20));
    }
    got
}

/// Once the source recorded (after it started) each of `files` at its position, nothing but
/// what was already taken is in the channel: a position moves only after the commit of the
/// lines before it, so a duplicate or a fragment put on the way is there by then.
fn assert_settled(run: &Run, files: &[(&Path, u64)]) {
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        let now = position::load_current(&run.pos_file).unwrap_or_default();
        let at = |f: &Path, pos: u64| {
            let ino = std::fs::metadata(f).expect("stat").ino();
            now.entries.iter().any(|e| e.inode == ino && e.pos == pos)
        };
        if now.seq > run.start_seq && files.iter().all(|&(f, pos)| at(f, pos)) {
            break;
        }
        assert!(
            Instant::now() < end,
            "timed out waiting for the positions {files:?}: {now:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut more = Vec::new();
    drain(run.ch.as_ref(), &mut more);
    assert!(more.is_empty(), "unexpected events: {:?}", bodies(&more));
}

fn size(f: &Path) -> u64 {
    std::fs::metadata(f).expect("stat").len()
}

fn append(path: &Path, text: &str) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open for append");
    f.write_all(text.as_bytes()).expect("append");
}

fn lines(prefix: &str, from: usize, to: usize) -> String {
    (from..to).map(|i| format!("{prefix}-{i}\n")).collect()
}

fn want(prefix: &str, from: usize, to: usize) -> Vec<String> {
    (from..to).map(|i| format!("{prefix}-{i}")).collect()
}

/// Polls the position file until `cond` holds on it.
/// Empties `f` in place, as copy-truncate rotation does.
fn truncate(f: &Path) {
    std::fs::OpenOptions::new()
        .write(true)
        .open(f)
        .expect("open")
        .set_len(0)
        .expect("truncate");
}

fn wait_positions(pos_file: &Path, what: &str, cond: impl Fn(&[Saved]) -> bool) -> Vec<Saved> {
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        let s = position::load_current(pos_file)
            .map(|p| p.entries)
            .unwrap_or_default();
        if cond(&s) {
            return s;
        }
        assert!(Instant::now() < end, "timed out waiting for {what}: {s:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Writes `c`'s position file as Apache Flume writes it: `f` at `pos`, by inode and path.
fn write_flume_position(c: &TaildirConfig, f: &Path, pos: u64) {
    let ino = std::fs::metadata(f).expect("stat").ino();
    std::fs::create_dir_all(c.position_file.parent().expect("parent")).expect("mkdir");
    std::fs::write(
        &c.position_file,
        format!(
            r#"[{{"inode":{ino},"pos":{pos},"file":"{}"}}]"#,
            f.display()
        ),
    )
    .expect("write the position file");
}

fn setup() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).expect("logs dir");
    (dir, logs)
}

#[test]
fn follows_growth_and_joins_lines_split_across_writes() {
    let (dir, logs) = setup();
    let f = logs.join("app.log");
    append(&f, &lines("a", 0, 25));
    append(&f, "a-25 first half");
    let run = start(cfg(dir.path(), r"app\.log"));
    let got = take_n(&run, 25);
    assert_eq!(bodies(&got), want("a", 0, 25));
    // The unterminated line is held, not put as a fragment.
    assert_settled(&run, &[(&f, size(&f) - "a-25 first half".len() as u64)]);
    append(&f, " second half\r\na-26\n");
    let got = take_n(&run, 2);
    assert_eq!(bodies(&got), ["a-25 first half second half", "a-26"]);
    run.stop();
}

#[test]
fn writes_the_position_promptly_after_each_commit() {
    let (dir, logs) = setup();
    let c = cfg(dir.path(), r"app\.log");
    let pos_file = c.position_file.clone();
    let f = logs.join("app.log");
    append(&f, &lines("a", 0, 5));
    // writePosInterval is far away: the rewrite after the commit must not wait for it.
    let run = start(TaildirConfig {
        write_pos_interval: Duration::from_secs(3600),
        ..c
    });
    take_n(&run, 5);
    let size = std::fs::metadata(&f).expect("stat").len();
    let s = wait_positions(&pos_file, "the committed position", |s| {
        s.iter().any(|e| e.pos == size)
    });
    assert_eq!(s[0].inode, std::fs::metadata(&f).expect("stat").ino());
    run.stop();
}

#[test]
fn restart_resumes_at_the_committed_position_without_rereading() {
    let (dir, logs) = setup();
    let c = cfg(dir.path(), r"app\.log");
    let f = logs.join("app.log");
    append(&f, &lines("a", 0, 30));
    let run = start(c.clone());
    assert_eq!(bodies(&take_n(&run, 30)), want("a", 0, 30));
    run.stop();
    append(&f, &lines("a", 30, 40));
    let run = start(c);
    assert_eq!(bodies(&take_n(&run, 10)), want("a", 30, 40));
    assert_settled(&run, &[(&f, size(&f))]);
    run.stop();
}

#[test]
fn rename_rotation_reads_the_old_file_to_its_end_then_the_new_one() {
    let (dir, logs) = setup();
    let f = logs.join("app.log");
    append(&f, &lines("old", 0, 5));
    let run = start(cfg(dir.path(), r"app\.log"));
    take_n(&run, 5);
    // Rotated out of the pattern; lines written to the old file after the rename are still
    // read, through the open descriptor.
    let rotated = logs.join("app.log.1");
    std::fs::rename(&f, &rotated).expect("rename");
    append(&rotated, &lines("old", 5, 8));
    append(&f, &lines("new", 0, 4));
    let mut got = bodies(&take_n(&run, 7));
    got.sort();
    let mut expect = [want("old", 5, 8), want("new", 0, 4)].concat();
    expect.sort();
    assert_eq!(got, expect);
    run.stop();
}

#[test]
fn copy_truncate_reads_the_file_again_from_its_start() {
    let (dir, logs) = setup();
    let f = logs.join("app.log");
    append(&f, &lines("a", 0, 20));
    let run = start(cfg(dir.path(), r"app\.log"));
    take_n(&run, 20);
    truncate(&f);
    // Wait until the source saw the shrink (its position went back to 0)...
    let pos_file = dir.path().join("pos").join("taildir_position.json");
    append(&f, "b-0\n");
    let got = take_n(&run, 1);
    assert_eq!(bodies(&got), ["b-0"]);
    wait_positions(&pos_file, "position 4", |s| s.iter().any(|e| e.pos == 4));
    run.stop();
}

#[test]
fn a_position_saved_before_a_copy_truncate_is_not_applied_after_a_restart() {
    let (dir, logs) = setup();
    let c = cfg(dir.path(), r"app\.log");
    let f = logs.join("app.log");
    append(&f, &lines("a", 0, 10));
    let run = start(c.clone());
    take_n(&run, 10);
    run.stop();
    // While the agent is down: copy-truncate, then the application writes more than the old
    // position's worth of new lines. Flume would resume at the old offset, mid-way into them.
    truncate(&f);
    append(&f, &lines("b", 0, 30));
    let run = start(c);
    assert_eq!(bodies(&take_n(&run, 30)), want("b", 0, 30));
    run.stop();
}

#[test]
fn a_reused_inode_with_other_first_bytes_is_read_from_its_start() {
    let (dir, logs) = setup();
    let c = cfg(dir.path(), r"app\.log");
    let f = logs.join("app.log");
    append(&f, &lines("new", 0, 50));
    let meta = std::fs::metadata(&f).expect("stat");
    // The position file as a previous run left it for a deleted file whose inode the
    // filesystem gave to this new one: same device and inode, other first bytes, a position
    // inside this file.
    std::fs::create_dir_all(c.position_file.parent().expect("parent")).expect("mkdir");
    position::save(
        &c.position_file,
        &[Saved {
            inode: meta.ino(),
            pos: 120,
            file: f.clone(),
            identity: Some(Identity {
                dev: meta.dev(),
                fingerprint: Fingerprint { len: 1024, crc: 1 },
            }),
        }],
        1,
        true,
    )
    .expect("save");
    let run = start(c);
    assert_eq!(bodies(&take_n(&run, 50)), want("new", 0, 50));
    run.stop();
}

#[test]
fn a_saved_position_beyond_the_file_is_a_new_file() {
    let (dir, logs) = setup();
    let c = cfg(dir.path(), r"app\.log");
    let f = logs.join("app.log");
    append(&f, &lines("a", 0, 3));
    // As Flume wrote it (no identity), for this path and inode, past the end.
    write_flume_position(&c, &f, 100000);
    let run = start(c);
    assert_eq!(bodies(&take_n(&run, 3)), want("a", 0, 3));
    run.stop();
}

#[test]
fn a_flume_position_inside_a_line_resumes_at_that_lines_start() {
    let (dir, logs) = setup();
    let c = cfg(dir.path(), r"app\.log");
    let f = logs.join("app.log");
    append(&f, "first line\nsecond line\nthird\n");
    // Offset 15 is inside "second line" (which starts at 11).
    write_flume_position(&c, &f, 15);
    let run = start(c);
    assert_eq!(bodies(&take_n(&run, 2)), ["second line", "third"]);
    assert_settled(&run, &[(&f, size(&f))]);
    run.stop();
}

#[test]
fn a_flume_position_at_a_line_start_is_taken_as_it_is() {
    let (dir, logs) = setup();
    let c = cfg(dir.path(), r"app\.log");
    let f = logs.join("app.log");
    append(&f, "first line\nsecond line\n");
    write_flume_position(&c, &f, 11);
    let run = start(c);
    assert_eq!(bodies(&take_n(&run, 1)), ["second line"]);
    assert_settled(&run, &[(&f, size(&f))]);
    run.stop();
}

#[test]
fn new_files_headers_and_skip_to_end() {
    let (dir, logs) = setup();
    let mut c = cfg(dir.path(), r".*\.log");
    c.groups[0].headers.insert("svc".into(), "web".into());
    c.file_header = Some("file".into());
    c.byte_offset_header = true;
    c.skip_to_end = true;
    let old = logs.join("old.log");
    append(&old, &lines("skipped", 0, 3));
    let run = start(c);
    // skipToEnd: what old.log had at start is not read, what comes after is.
    let pos_file = dir.path().join("pos").join("taildir_position.json");
    wait_positions(&pos_file, "old.log tracked", |s| !s.is_empty());
    append(&old, "old-more\n");
    let new = logs.join("new.log");
    append(&new, "n-0\nn-1\n");
    append(&logs.join("ignored.txt"), "not matched\n");
    let mut got = take_n(&run, 3);
    got.sort_by(|a, b| a.body().cmp(b.body()));
    assert_eq!(bodies(&got), ["n-0", "n-1", "old-more"]);
    assert_eq!(got[0].header("svc"), Some("web"));
    assert_eq!(got[0].header("file"), Some(new.to_str().expect("utf-8")));
    assert_eq!(got[1].header(BYTE_OFFSET_HEADER), Some("4"));
    assert_eq!(got[2].header(BYTE_OFFSET_HEADER), Some("30"));
    assert_settled(&run, &[(&old, size(&old)), (&new, size(&new))]);
    run.stop();
}

#[test]
fn an_idle_file_puts_its_unterminated_last_line_whole() {
    let (dir, logs) = setup();
    let f = logs.join("app.log");
    append(&f, "a-0\nno newline yet");
    let run = start(TaildirConfig {
        idle_timeout: Duration::from_millis(300),
        ..cfg(dir.path(), r"app\.log")
    });
    let got = take_n(&run, 2);
    assert_eq!(bodies(&got), ["a-0", "no newline yet"]);
    // Reopened when it grows again; the newline that ends the line already put is not an
    // empty event.
    append(&f, "\nnext\n");
    let got = take_n(&run, 1);
    assert_eq!(bodies(&got), ["next"]);
    assert_settled(&run, &[(&f, size(&f))]);
    run.stop();
}

#[test]
fn a_line_longer_than_max_line_length_is_cut_and_the_rest_skipped() {
    let (dir, logs) = setup();
    let f = logs.join("app.log");
    let long = "x".repeat(300_000);
    append(&f, &format!("before\n{long}\nafter\n"));
    let run = start(TaildirConfig {
        max_line_length: 1000,
        ..cfg(dir.path(), r"app\.log")
    });
    let got = take_n(&run, 3);
    assert_eq!(got[0].body().as_ref(), b"before");
    assert_eq!(got[1].body().len(), 1000);
    assert_eq!(got[2].body().as_ref(), b"after");
    run.stop();
}

#[test]
fn a_deleted_file_is_read_to_its_end_and_forgotten_once_idle() {
    let (dir, logs) = setup();
    let c = TaildirConfig {
        idle_timeout: Duration::from_millis(300),
        ..cfg(dir.path(), r".*\.log")
    };
    let pos_file = c.position_file.clone();
    let f = logs.join("gone.log");
    append(&f, &lines("g", 0, 5));
    let run = start(c);
    take_n(&run, 5);
    std::fs::remove_file(&f).expect("delete");
    wait_positions(&pos_file, "the deleted file's position dropped", |s| {
        s.is_empty()
    });
    run.stop();
}

#[test]
fn two_sources_cannot_share_a_position_file() {
    let (dir, _logs) = setup();
    let c = cfg(dir.path(), r"app\.log");
    let run = start(c.clone());
    let second = TaildirSource::new(SourceContext::detached("r2", vec![]), c);
    let Err(e) = second else {
        panic!("a second source on the same position file started")
    };
    assert!(
        e.to_string().contains("in use by another TAILDIR source"),
        "{e}"
    );
    run.stop();
}

#[test]
fn a_corrupt_position_file_stops_start_up_naming_it() {
    let (dir, _logs) = setup();
    let c = cfg(dir.path(), r"app\.log");
    std::fs::create_dir_all(c.position_file.parent().expect("parent")).expect("mkdir");
    std::fs::write(&c.position_file, b"[{\"inode\":").expect("write");
    let Err(e) = TaildirSource::new(SourceContext::detached("r1", vec![]), c) else {
        panic!("started on a corrupt position file")
    };
    let e = e.to_string();
    assert!(
        e.contains("taildir_position.json") && e.contains("move it aside"),
        "{e}"
    );
}

#[test]
fn the_journal_is_used_when_newer_than_the_position_file_and_ignored_when_older() {
    let (dir, logs) = setup();
    let c = cfg(dir.path(), r"app\.log");
    let f = logs.join("app.log");
    append(&f, &lines("a", 0, 10));
    let meta = std::fs::metadata(&f).expect("stat");
    let at = |pos: u64| Saved {
        inode: meta.ino(),
        pos,
        file: f.clone(),
        identity: Some(Identity {
            dev: meta.dev(),
            fingerprint: Fingerprint {
                len: meta.len() as u32,
                crc: crc32fast::hash(&std::fs::read(&f).expect("read")),
            },
        }),
    };
    std::fs::create_dir_all(c.position_file.parent().expect("parent")).expect("mkdir");
    // The position file says line 2 (rewrite 5); the journal's newest record, line 6
    // (rewrite 6), as a kill -9 between two position-file rewrites leaves them.
    position::save(&c.position_file, &[at(8)], 5, false).expect("save");
    let (mut j, _) = super::journal::Journal::open(&c.position_file).expect("journal");
    j.append(4, &position::render(&[at(0)], 4)).expect("append");
    j.append(6, &position::render(&[at(24)], 6))
        .expect("append");
    drop(j);
    let run = start(c.clone());
    assert_eq!(bodies(&take_n(&run, 4)), want("a", 6, 10));
    assert_settled(&run, &[(&f, 40)]);
    run.stop();
    // A clean stop folded it into the position file and emptied the journal.
    assert_eq!(
        position::load(&c.position_file).expect("load").entries[0].pos,
        40
    );
    assert!(super::journal::read_newest(&c.position_file).is_none());
    // A journal older than the position file is not applied.
    let (mut j, _) = super::journal::Journal::open(&c.position_file).expect("journal");
    j.append(1, &position::render(&[at(0)], 1)).expect("append");
    drop(j);
    let run = start(c);
    assert_settled(&run, &[(&f, 40)]);
    run.stop();
}

#[test]
fn a_file_rotated_away_while_the_agent_was_down_is_read_to_its_end() {
    let (dir, logs) = setup();
    let c = cfg(dir.path(), r"app\.log");
    let f = logs.join("app.log");
    append(&f, &lines("a", 0, 5));
    let run = start(c.clone());
    take_n(&run, 5);
    run.stop();
    // While the agent is down the application writes more, then the file is rotated to a
    // name outside the pattern and a new one started.
    append(&f, &lines("a", 5, 8));
    let rotated = logs.join("app.log-20261207");
    std::fs::rename(&f, &rotated).expect("rename");
    append(&f, &lines("b", 0, 2));
    let run = start(c);
    let mut got = bodies(&take_n(&run, 5));
    got.sort();
    let mut expect = [want("a", 5, 8), want("b", 0, 2)].concat();
    expect.sort();
    assert_eq!(got, expect);
    assert_settled(&run, &[(&f, size(&f)), (&rotated, size(&rotated))]);
    run.stop();
}
