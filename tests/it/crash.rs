//! `kill -9` of a real process in the middle of puts and takes, many times over, then reopen and
//! compare with what the killed process said it had done.
//!
//! The child is this test binary re-executed to run only [`crash_child`], which does nothing
//! unless `FLUMEN_CRASH_CHILD_DIR` is set. It runs one producer and one consumer on a file
//! channel and reports on stdout, one line per step, flushed at once:
//!
//! ```text
//! A s e   about to commit a put of events [s, e)      (attempted)
//! P s e   that put's commit returned Ok                (acknowledged: must survive)
//! t s e   about to commit a take of events [s, e)      (take attempted)
//! T s e   that take's commit returned Ok               (taken: must never come back)
//! E msg   the child saw something wrong (the parent fails the test)
//! ```
//!
//! Each event's body is its seq (8 bytes, big-endian) then 0..2000 filler bytes derived from the
//! seq, so the parent can check every byte of what it reads back. The parent SIGKILLs the child
//! at a random instant once a few puts were acknowledged, reopens the channel and checks:
//! - every acknowledged event not touched by a take commit is present;
//! - every present event was attempted and no committed take returned it;
//! - present events are in strictly increasing order (one producer, FIFO), so no duplicates.
//!
//! The "t" line matters: a take commit that returned Ok just before the kill, before its "T"
//! line was printed, legitimately removes events the parent does not know were taken; those
//! are the only acknowledged events allowed to be missing.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use flumen::channel::file::{FileChannel, FileChannelConfig};
use flumen::channel::Channel;
use flumen::event::Event;
use flumen::io::IoKind;

use crate::common::{body_seq, peek_all, seq_body, test_config, Rng};

const CHILD_DIR_ENV: &str = "FLUMEN_CRASH_CHILD_DIR";
const CHILD_IO_ENV: &str = "FLUMEN_CRASH_IO";
const CHILD_NEXT_ENV: &str = "FLUMEN_CRASH_NEXT";
const CHILD_SEED_ENV: &str = "FLUMEN_CRASH_SEED";
const CYCLES_ENV: &str = "FLUMEN_CRASH_CYCLES";
const DEFAULT_CYCLES: u64 = 50;
/// The child's first line of its own. libtest may print `test crash::crash_child ... ` without
/// a newline before the test body runs, so the marker starts with one.
const READY: &str = "CRASH-CHILD-READY";
/// Acknowledged puts to wait for before choosing the kill instant.
const MIN_ACKED_LINES: usize = 3;
/// Generous bound for the child to start and acknowledge its first puts.
const CHILD_DEADLINE: Duration = Duration::from_secs(30);

/// One line of the child's protocol.
fn emit(line: &str) {
    // One write of the whole line (a pipe write under PIPE_BUF is atomic), then flush, so a
    // kill can lose a line but never leave half of one.
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(format!("{line}\n").as_bytes());
    let _ = out.flush();
}

/// Maximal runs of consecutive seqs, as half-open ranges.
fn runs(seqs: &[u64]) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = vec![];
    for &s in seqs {
        match out.last_mut() {
            Some(last) if last.1 == s => last.1 = s + 1,
            _ => out.push((s, s + 1)),
        }
    }
    out
}

/// The child process: runs only when the parent set `FLUMEN_CRASH_CHILD_DIR`; otherwise (in a
/// normal test run) it passes at once.
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var(CHILD_DIR_ENV) else {
        return;
    };
    child_main(Path::new(&dir));
}

fn child_fail(msg: String) -> ! {
    // On a line of its own even if libtest's `test ... ` is still open.
    emit(&format!("\nE {msg}"));
    panic!("{msg}");
}

fn child_main(dir: &Path) -> ! {
    let env = std::env::var(CHILD_IO_ENV);
    let Some(v) = VARIANTS
        .into_iter()
        .find(|v| Ok(v.name()) == env.as_deref())
    else {
        child_fail(format!(
            "{CHILD_IO_ENV} must name a variant (std, uring, std-buffered), not {env:?}"
        ))
    };
    let next: u64 = std::env::var(CHILD_NEXT_ENV)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| child_fail(format!("{CHILD_NEXT_ENV} must be a number")));
    let seed: u64 = std::env::var(CHILD_SEED_ENV)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let ch = open_waiting_for_lock(dir, v);
    emit(&format!("\n{READY}"));

    let consumer = ch.clone();
    std::thread::spawn(move || {
        let mut rng = Rng::new(seed ^ 0x5EED);
        let mut last: Option<u64> = None;
        loop {
            if !consumer.wait_available(Duration::from_millis(200)) {
                continue;
            }
            let max = rng.range(1, 51) as usize;
            let mut tx = consumer.take_transaction();
            let mut events = vec![];
            if let Err(e) = tx.take_batch(max, &mut events) {
                child_fail(format!("take_batch failed: {e}"));
            }
            if events.is_empty() {
                continue;
            }
            let mut seqs = Vec::with_capacity(events.len());
            for ev in &events {
                let s = body_seq(ev.body()).unwrap_or_else(|m| child_fail(m));
                if let Some(l) = last {
                    if s <= l {
                        child_fail(format!("take order: {s} after {l} (not FIFO)"));
                    }
                }
                last = Some(s);
                seqs.push(s);
            }
            let rs = runs(&seqs);
            for (a, b) in &rs {
                emit(&format!("t {a} {b}"));
            }
            if let Err(e) = tx.commit() {
                child_fail(format!("take commit failed: {e}"));
            }
            for (a, b) in &rs {
                emit(&format!("T {a} {b}"));
            }
        }
    });

    let mut rng = Rng::new(seed);
    let mut seq = next;
    loop {
        let n = rng.range(1, 101);
        let mut tx = ch.put_transaction();
        for s in seq..seq + n {
            let filler = rng.range(0, 2000) as usize;
            if let Err(e) = tx.put(Event::new(seq_body(s, filler))) {
                child_fail(format!("put failed: {e}"));
            }
        }
        emit(&format!("A {seq} {}", seq + n));
        if let Err(e) = tx.commit() {
            child_fail(format!("put commit failed: {e}"));
        }
        emit(&format!("P {seq} {}", seq + n));
        seq += n;
    }
}

/// Opens the channel, waiting for its lock if a sibling process briefly holds a copy of it
/// (see `common::open_waiting_for_lock`: the parent runs one thread per backend, each
/// spawning children).
fn open_waiting_for_lock(dir: &Path, v: Variant) -> FileChannel {
    crate::common::open_waiting_for_lock(|| FileChannel::open("crash", v.config(dir)))
        .unwrap_or_else(|e| child_fail(format!("open failed: {e}")))
}

/// Per-seq facts from the child's lines.
const ATTEMPTED: u8 = 1;
const ACKED: u8 = 2;
const TAKE_ATTEMPTED: u8 = 4;
const TAKEN: u8 = 8;

#[derive(Default)]
struct Model {
    flags: Vec<u8>,
    /// One past the largest attempted seq: where the next child starts numbering.
    next: u64,
}

impl Model {
    fn mark(&mut self, s: u64, e: u64, flag: u8) {
        if self.flags.len() < e as usize {
            self.flags.resize(e as usize, 0);
        }
        for f in &mut self.flags[s as usize..e as usize] {
            *f |= flag;
        }
    }

    fn get(&self, s: u64) -> u8 {
        self.flags.get(s as usize).copied().unwrap_or(0)
    }

    fn count(&self, flag: u8) -> usize {
        self.flags.iter().filter(|&&f| f & flag != 0).count()
    }
}

/// What the reader thread collected from the child's stdout.
#[derive(Default)]
struct Output {
    lines: Vec<(char, u64, u64)>,
    acked_lines: usize,
    errors: Vec<String>,
    eof: bool,
}

type Shared = Arc<(Mutex<Output>, Condvar)>;

/// Parses the child's stdout until EOF. Lines before the READY marker are libtest's; after
/// it, every complete line must follow the protocol.
fn read_child(stdout: impl Read, shared: Shared) {
    let mut r = BufReader::new(stdout);
    let mut ready = false;
    let mut buf = vec![];
    loop {
        buf.clear();
        let n = r.read_until(b'\n', &mut buf).unwrap_or(0);
        // A line cut by the kill has no newline: it never happened.
        let complete = n > 0 && buf.last() == Some(&b'\n');
        let (lock, cv) = &*shared;
        let mut out = lock.lock().expect("output lock");
        if !complete {
            out.eof = true;
            cv.notify_all();
            return;
        }
        let line = String::from_utf8_lossy(&buf[..buf.len() - 1]).into_owned();
        if let Some(msg) = line.strip_prefix("E ") {
            out.errors.push(msg.to_string());
            cv.notify_all();
            continue;
        }
        if !ready {
            ready = line == READY;
            continue;
        }
        if line.is_empty() {
            continue;
        }
        let parts: Vec<&str> = line.split(' ').collect();
        let parsed = match parts.as_slice() {
            [k, s, e] if k.len() == 1 && "APtT".contains(*k) => {
                match (s.parse::<u64>(), e.parse::<u64>()) {
                    (Ok(s), Ok(e)) if s < e => Some((k.chars().next().unwrap_or('?'), s, e)),
                    _ => None,
                }
            }
            _ => None,
        };
        match parsed {
            Some(l) => {
                if l.0 == 'P' {
                    out.acked_lines += 1;
                }
                out.lines.push(l);
            }
            None => out
                .errors
                .push(format!("unparsable line from the child: {line:?}")),
        }
        cv.notify_all();
    }
}

/// An I/O backend and whether group commits write staged blocks (`directIo`, the default) or
/// each record as it commits (`directIo = false`).
#[derive(Clone, Copy, Debug)]
struct Variant {
    io: IoKind,
    direct_io: bool,
}

const VARIANTS: [Variant; 3] = [
    Variant {
        io: IoKind::Std,
        direct_io: true,
    },
    Variant {
        io: IoKind::Uring,
        direct_io: true,
    },
    Variant {
        io: IoKind::Std,
        direct_io: false,
    },
];

impl Variant {
    fn name(self) -> &'static str {
        match (self.io, self.direct_io) {
            (IoKind::Std, true) => "std",
            (IoKind::Uring, true) => "uring",
            (IoKind::Std, false) => "std-buffered",
            (IoKind::Uring, false) => "uring-buffered",
        }
    }

    fn config(self, dir: &Path) -> FileChannelConfig {
        let mut cfg = test_config(dir, self.io);
        cfg.direct_io = self.direct_io;
        cfg
    }
}

/// Kills and reaps the child if the parent unwinds (a failed assertion), so no child outlives
/// the test.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_child(dir: &Path, v: Variant, next: u64, seed: u64) -> Child {
    Command::new(std::env::current_exe().expect("current_exe"))
        .args([
            "--exact",
            "crash::crash_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DIR_ENV, dir)
        .env(CHILD_IO_ENV, v.name())
        .env(CHILD_NEXT_ENV, next.to_string())
        .env(CHILD_SEED_ENV, seed.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the crash child (the test binary itself)")
}

fn parent_config(dir: &Path, v: Variant) -> FileChannelConfig {
    let mut cfg = v.config(dir);
    // One take transaction must be able to hold everything the channel holds (peek_all).
    cfg.transaction_capacity = cfg.capacity as usize;
    cfg
}

fn kill_cycles(v: Variant) {
    let cycles: u64 = std::env::var(CYCLES_ENV)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_CYCLES);
    let (mut rng, seed) = Rng::from_clock();
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir: PathBuf = tmp.path().to_path_buf();
    eprintln!(
        "kill -9 test ({}): seed {seed}, {cycles} cycles in {}",
        v.name(),
        dir.display()
    );
    let started = Instant::now();
    let mut model = Model::default();
    let mut unacked_recovered = 0usize;
    let mut last_present = 0usize;
    let mut lock_waits = 0usize;

    for cycle in 0..cycles {
        let mut child = KillOnDrop(spawn_child(&dir, v, model.next, rng.next_u64()));
        let stdout = child.0.stdout.take().expect("child stdout");
        let mut stderr = child.0.stderr.take().expect("child stderr");
        let shared: Shared = Arc::default();
        let reader = {
            let shared = shared.clone();
            std::thread::spawn(move || read_child(stdout, shared))
        };
        let err_reader = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stderr.read_to_string(&mut s);
            s
        });

        // Wait (with a deadline) for a few acknowledged puts, then a random extra moment.
        let deadline = Instant::now() + CHILD_DEADLINE;
        let ready = {
            let (lock, cv) = &*shared;
            let mut out = lock.lock().expect("output lock");
            loop {
                if out.acked_lines >= MIN_ACKED_LINES || out.eof || !out.errors.is_empty() {
                    break out.acked_lines >= MIN_ACKED_LINES;
                }
                let now = Instant::now();
                if now >= deadline {
                    break false;
                }
                out = cv.wait_timeout(out, deadline - now).expect("output lock").0;
            }
        };
        if ready {
            let extra = Duration::from_micros(rng.range(0, 30_000));
            let (lock, cv) = &*shared;
            let out = lock.lock().expect("output lock");
            // A timed wait on the child's output: returns early only if the child dies.
            let _ = cv
                .wait_timeout_while(out, extra, |o| !o.eof && o.errors.is_empty())
                .expect("output lock");
        }
        let exited_early = child.0.try_wait().expect("try_wait");
        // SIGKILL on unix.
        let _ = child.0.kill();
        let status = child.0.wait().expect("reap the child");
        reader.join().expect("reader thread");
        let child_stderr = err_reader.join().expect("stderr reader thread");
        let out = std::mem::take(&mut *shared.0.lock().expect("output lock"));
        lock_waits += child_stderr.matches("waiting for it").count();

        let context = || {
            format!(
                "{} cycle {cycle} (seed {seed}, dir {}): child status {status:?}\nchild errors: {:?}\nchild stderr:\n{child_stderr}",
                v.name(),
                dir.display(),
                out.errors
            )
        };
        assert!(
            out.errors.is_empty(),
            "the child reported errors: {}",
            context()
        );
        assert!(
            exited_early.is_none(),
            "the child exited by itself before the kill: {}",
            context()
        );
        assert!(
            ready,
            "no {MIN_ACKED_LINES} acknowledged puts within {CHILD_DEADLINE:?}: {}",
            context()
        );
        {
            use std::os::unix::process::ExitStatusExt;
            assert_eq!(status.signal(), Some(9), "killed by SIGKILL: {}", context());
        }

        for &(k, s, e) in &out.lines {
            let flag = match k {
                'A' => ATTEMPTED,
                'P' => ACKED,
                't' => TAKE_ATTEMPTED,
                'T' => TAKEN,
                _ => unreachable!("parsed lines have a known kind"),
            };
            if k == 'A' {
                assert!(
                    s >= model.next,
                    "attempt {s}..{e} reuses seqs below {}: {}",
                    model.next,
                    context()
                );
            }
            model.mark(s, e, flag);
            if k == 'A' {
                model.next = model.next.max(e);
            }
        }

        // Reopen in this process and compare with the model.
        let ch = crate::common::open_waiting_for_lock(|| {
            FileChannel::open("crash", parent_config(&dir, v))
        })
        .unwrap_or_else(|e| panic!("reopen after kill -9 failed: {e}\n{}", context()));
        let present = peek_all(&ch);
        for w in present.windows(2) {
            assert!(
                w[0] < w[1],
                "recovered events out of order or duplicated: {} then {}: {}",
                w[0],
                w[1],
                context()
            );
        }
        let mut is_present = vec![false; model.flags.len()];
        for &s in &present {
            let f = model.get(s);
            assert!(
                f & ATTEMPTED != 0,
                "event {s} is present but was never attempted: {}",
                context()
            );
            assert!(
                f & TAKEN == 0,
                "event {s} came back after its take committed: {}",
                context()
            );
            if f & ACKED == 0 {
                unacked_recovered += 1;
            }
            is_present[s as usize] = true;
        }
        for (s, &f) in model.flags.iter().enumerate() {
            if f & ACKED != 0 && f & TAKE_ATTEMPTED == 0 {
                assert!(
                    is_present[s],
                    "acknowledged event {s} (never taken) is missing after kill -9; {} events present: {}",
                    present.len(),
                    context()
                );
            }
        }
        last_present = present.len();
        ch.close()
            .unwrap_or_else(|e| panic!("close failed: {e}\n{}", context()));
        drop(ch);
    }
    eprintln!(
        "kill -9 test ({}): {cycles} cycles in {:.1?}; {} events attempted, {} acknowledged, {} taken and committed, {} present at the end, {} unacknowledged puts seen durable (allowed), {} child lock waits",
        v.name(),
        started.elapsed(),
        model.count(ATTEMPTED),
        model.count(ACKED),
        model.count(TAKEN),
        last_present,
        unacked_recovered,
        lock_waits
    );
}

/// One parent per variant, run side by side, each in its own directory.
#[test]
fn kill_minus_nine_loses_nothing() {
    let parents: Vec<_> = VARIANTS
        .iter()
        .map(|&v| {
            std::thread::Builder::new()
                .name(format!("kill-9-{}", v.name()))
                .spawn(move || kill_cycles(v))
                .expect("spawn a parent thread")
        })
        .collect();
    // Join every parent before reporting a failure, so none is cut short mid-cycle.
    let results: Vec<_> = parents.into_iter().map(|p| p.join()).collect();
    for r in results {
        if let Err(panic) = r {
            std::panic::resume_unwind(panic);
        }
    }
}

#[test]
fn runs_split_at_gaps() {
    assert_eq!(runs(&[3, 4, 5, 9, 10, 12]), vec![(3, 6), (9, 11), (12, 13)]);
    assert!(runs(&[]).is_empty());
}
