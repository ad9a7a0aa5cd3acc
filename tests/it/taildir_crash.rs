//! The `TAILDIR` source end to end, through the `flumen agent` binary, with real files, real
//! renames and truncations, and SIGKILL.
//!
//! 1. A crash campaign: three file groups (three directories) -> file channel -> file_roll. A
//!    writer thread appends lines (random writes, some ending mid-line) while it rotates
//!    files by rename (to a name inside the pattern or outside it), by copy-truncate, adds
//!    files and deletes old ones (so the filesystem hands their inodes to new files); the
//!    agent is SIGKILLed at random moments and restarted on the same position file and
//!    channel. At the end every line must be in the output whole, with the few lines no
//!    tailer can be expected to see counted apart, and the duplicates within what the kills
//!    can explain.
//! 2. Inode reuse across restarts (`skipToEnd = false`): with the agent stopped, files are
//!    deleted and a new file is made to get one of their inode numbers, under the old path;
//!    the new file must be read from its first line (Apache Flume keys files by inode and
//!    path alone, and would start at the old file's position).
//!
//! Each line of a test file is a pure function of its id (group, file generation, sequence
//! number): [`line_of`]. A delivered body that is not exactly `line_of` of the id it starts
//! with is a fragment (a cut line, or pieces of two lines), which fails the test.
//!
//! The output is file_roll's TEXT (bodies only), so the campaign cannot see headers; it sets
//! `fileHeader` and `headers.<g>.<key>` anyway (they must not disturb anything), and the
//! inode test reads its events with their headers from the channel itself.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use flumen::channel::file::{FileChannel, FileChannelConfig};
use flumen::channel::Channel;
use flumen::source::taildir::position;

use crate::agent_proc::{file_channel_to_file_roll, AgentProcess as Agent, DEADLINE, POLL};
use crate::common::Rng;

/// The file groups of the campaign: `f0`, `f1`, `f2`, one directory each.
const GROUPS: u32 = 3;
/// The source's `batchSize` and the sink's `sink.batchSize`.
const BATCH: usize = 50;
/// SIGKILLs in the campaign.
const CYCLES: usize = 24;
/// Files written at once in one group (the primary `app.log` and added `app-<k>.log`).
const MAX_ACTIVE: usize = 3;
/// The source's `idleTimeout` in the campaign: short enough that files left alone (rotated,
/// retired) are closed and reopened during the run, long enough that the writer always
/// finishes a line it left half-written first (it does so within [`PENDING_MAX`]); a file
/// closed on idle flushes its unterminated last line as an event, which would be a fragment.
const IDLE_TIMEOUT_MS: u64 = 5_000;
/// The longest the writer leaves a line half-written.
const PENDING_MAX: Duration = Duration::from_millis(100);

// ---------------------------------------------------------------------------------------------
// Lines
// ---------------------------------------------------------------------------------------------

/// One written line: its group, the generation of the file content it was written to (a new
/// file, or a file truncated to 0, starts a new generation), and its number within that.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Id {
    g: u32,
    gen: u32,
    seq: u32,
}

impl std::fmt::Display for Id {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}-{}", self.g, self.gen, self.seq)
    }
}

/// splitmix64's finalizer.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// FNV-1a, 64 bits.
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01B3)
    })
}

/// The text of line `id` (without its newline): `g-gen-seq-`, letters derived from the id,
/// `-` and a checksum of all that. Mostly under 150 bytes; about one line in a hundred is
/// 4 to 13 KiB, longer than one read of the file, so the tailer must join a line read in
/// pieces.
fn line_of(id: Id) -> String {
    let h = mix((u64::from(id.g) << 58) ^ (u64::from(id.gen) << 32) ^ u64::from(id.seq));
    let len = if h.is_multiple_of(97) {
        4_000 + (h >> 8) % 9_000
    } else {
        (h >> 8) % 120
    };
    let mut s = format!("{id}-");
    let mut x = h;
    for _ in 0..len {
        x = mix(x);
        s.push(char::from(b'a' + (x % 26) as u8));
    }
    let sum = fnv(s.as_bytes());
    write!(s, "-{sum:016x}").expect("write to a String");
    s
}

/// The id of a delivered body if the body is exactly that line, else `None` (a fragment).
fn parse_line(body: &[u8]) -> Option<Id> {
    let text = std::str::from_utf8(body).ok()?;
    let mut f = text.splitn(4, '-');
    let id = Id {
        g: f.next()?.parse().ok()?,
        gen: f.next()?.parse().ok()?,
        seq: f.next()?.parse().ok()?,
    };
    (line_of(id) == text).then_some(id)
}

/// A body for a failure message: long ones cut in the middle.
fn shorten(s: &str) -> String {
    if s.len() <= 120 {
        return format!("{s:?}");
    }
    let head: String = s.chars().take(60).collect();
    let tail: String = s
        .chars()
        .rev()
        .take(40)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("{head:?}..({} bytes)..{tail:?}", s.len())
}

// ---------------------------------------------------------------------------------------------
// What the sink wrote
// ---------------------------------------------------------------------------------------------

/// The file_roll output read incrementally: each file up to its last newline. A file of a run
/// killed in the middle of a write may end in a piece of a line; that batch was never
/// committed and is delivered again, and the sink starts a new file in the next run, so the
/// piece is never completed and never counted.
#[derive(Default)]
struct Output {
    read: HashMap<PathBuf, u64>,
    counts: HashMap<Id, u32>,
    /// Complete output lines that are not a whole written line: (output file, body).
    fragments: Vec<(PathBuf, String)>,
    lines: usize,
}

impl Output {
    fn update(&mut self, dir: &Path) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries {
            let path = e.expect("read an output directory entry").path();
            let from = self.read.get(&path).copied().unwrap_or(0);
            let mut f =
                File::open(&path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
            f.seek(SeekFrom::Start(from)).expect("seek in the output");
            let mut buf = vec![];
            f.read_to_end(&mut buf).expect("read the output");
            let Some(end) = buf.iter().rposition(|&b| b == b'\n') else {
                continue;
            };
            for body in buf[..end].split(|&b| b == b'\n') {
                self.lines += 1;
                match parse_line(body) {
                    Some(id) => *self.counts.entry(id).or_insert(0) += 1,
                    None => self
                        .fragments
                        .push((path.clone(), String::from_utf8_lossy(body).into_owned())),
                }
            }
            self.read.insert(path, from + end as u64 + 1);
        }
    }

    fn count(&self, id: Id) -> u32 {
        self.counts.get(&id).copied().unwrap_or(0)
    }
}

// ---------------------------------------------------------------------------------------------
// What the writer did
// ---------------------------------------------------------------------------------------------

/// Why a written line may legitimately never be delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Excuse {
    /// Written between a copy-truncate's copy and its truncate: in neither the copy nor the
    /// truncated file, so visible only to a tailer that happened to read in that instant.
    Window,
    /// In a file renamed to a name outside the pattern (before or after the rename), and
    /// only if no line of that file was ever delivered: a file created and rotated away
    /// before the tailer saw it (while the agent was down, or between two looks) is invisible
    /// to it. A file the tailer saw is read to its end even when it was rotated away while
    /// the agent was down, so once one of its lines is delivered, all must be.
    Outside,
}

/// One generation of file content.
#[derive(Default)]
struct Generation {
    /// Lines `0..written` exist (a line counts from its first byte written).
    written: u32,
    /// The kill cycle each line was written in.
    cycle: Vec<u16>,
    /// What happened to the file, for failure messages.
    history: Vec<String>,
    /// The names it had (and its copies'), as `logs<g>/<name>`, to find them in agent logs.
    names: Vec<String>,
}

#[derive(Default)]
struct Ledger {
    gens: BTreeMap<(u32, u32), Generation>,
    excused: HashMap<Id, Excuse>,
    /// How many copies (inside the pattern) a line was copied into: each may deliver it
    /// once more.
    copies: HashMap<Id, u32>,
    /// Operation counts, for the summary.
    ops: BTreeMap<&'static str, usize>,
    /// Inode numbers of every file the writer created, and how often one came back.
    inodes: HashSet<u64>,
    inode_reuses: usize,
}

impl Ledger {
    fn note(&mut self, g: u32, gen: u32, cycle: usize, what: String) {
        self.gens
            .entry((g, gen))
            .or_default()
            .history
            .push(format!("cycle {cycle}: {what}"));
    }

    fn named(&mut self, g: u32, gen: u32, path: &Path) {
        let n = format!("logs{g}/{}", name(path));
        self.gens.entry((g, gen)).or_default().names.push(n);
    }

    fn op(&mut self, name: &'static str) {
        *self.ops.entry(name).or_insert(0) += 1;
    }

    fn ids(&self) -> impl Iterator<Item = Id> + '_ {
        self.gens
            .iter()
            .flat_map(|(&(g, gen), info)| (0..info.written).map(move |seq| Id { g, gen, seq }))
    }

    /// A line's story for a failure message.
    fn describe(&self, id: Id) -> String {
        let info = &self.gens[&(id.g, id.gen)];
        format!(
            "line {id} (written in cycle {}; its file: {})",
            info.cycle[id.seq as usize],
            info.history.join("; ")
        )
    }
}

/// A file the writer appends to. Opened with O_APPEND, as loggers do, so after a truncate the
/// next write lands at offset 0.
struct Active {
    g: u32,
    primary: bool,
    path: PathBuf,
    file: File,
    gen: u32,
    /// The rest of a line whose start is already in the file.
    pending: Vec<u8>,
    pending_since: Instant,
}

/// A file no longer written to, kept until its lines are delivered.
struct Retired {
    path: PathBuf,
    g: u32,
    gen: u32,
    /// It holds lines `0..lines` of `gen`.
    lines: u32,
}

struct Writer {
    rng: Rng,
    dirs: Vec<PathBuf>,
    out: PathBuf,
    cycle: Arc<AtomicUsize>,
    active: Vec<Active>,
    retired: Vec<Retired>,
    ledger: Ledger,
    next_gen: u32,
    next_name: u32,
    output: Output,
}

impl Writer {
    fn cycle(&self) -> usize {
        self.cycle.load(Ordering::Relaxed)
    }

    fn new_gen(&mut self) -> u32 {
        self.next_gen += 1;
        self.next_gen
    }

    fn record_inode(&mut self, path: &Path) -> u64 {
        let ino = std::fs::metadata(path)
            .unwrap_or_else(|e| panic!("stat {}: {e}", path.display()))
            .ino();
        if !self.ledger.inodes.insert(ino) {
            self.ledger.inode_reuses += 1;
        }
        ino
    }

    /// Creates `path` (which must not exist) as a new active file.
    fn create(&mut self, g: u32, primary: bool, path: PathBuf) {
        let file = OpenOptions::new()
            .append(true)
            .create_new(true)
            .open(&path)
            .unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
        let gen = self.new_gen();
        let ino = self.record_inode(&path);
        let c = self.cycle();
        self.ledger
            .note(g, gen, c, format!("created {} (inode {ino})", name(&path)));
        self.ledger.named(g, gen, &path);
        self.active.push(Active {
            g,
            primary,
            path,
            file,
            gen,
            pending: vec![],
            pending_since: Instant::now(),
        });
    }

    /// Appends to active file `i`: the rest of a pending line, then `0..12` lines, and
    /// sometimes the start of one more, in one to three `write`s cut at random bytes.
    fn append(&mut self, i: usize, finish_only: bool) {
        let cycle = self.cycle() as u16;
        let a = &mut self.active[i];
        let mut buf = std::mem::take(&mut a.pending);
        let whole = if finish_only {
            0
        } else {
            self.rng.range(0, 12)
        };
        let partial = !finish_only && self.rng.range(0, 10) < 3;
        let info = self.ledger.gens.entry((a.g, a.gen)).or_default();
        for k in 0..whole + u64::from(partial) {
            let id = Id {
                g: a.g,
                gen: a.gen,
                seq: info.written,
            };
            info.written += 1;
            info.cycle.push(cycle);
            let mut line = line_of(id).into_bytes();
            line.push(b'\n');
            if k == whole {
                // At least one byte written and at least the newline held back.
                let cut = self.rng.range(1, line.len() as u64) as usize;
                a.pending = line.split_off(cut);
                a.pending_since = Instant::now();
            }
            buf.extend_from_slice(&line);
        }
        let mut rest = &buf[..];
        while !rest.is_empty() {
            let n = if self.rng.range(0, 3) == 0 {
                self.rng.range(1, rest.len() as u64 + 1) as usize
            } else {
                rest.len()
            };
            a.file
                .write_all(&rest[..n])
                .unwrap_or_else(|e| panic!("append to {}: {e}", a.path.display()));
            rest = &rest[n..];
        }
    }

    /// Finishes a half-written line of active file `i`, if any.
    fn finish(&mut self, i: usize) {
        if !self.active[i].pending.is_empty() {
            self.append(i, true);
        }
    }

    /// Rotation by rename: `app.log` -> `app.log.<k>` (inside the pattern) or
    /// `old-app.log.<k>` (outside); the logger may write a little more to its open file
    /// before it reopens `app.log`, a new file.
    fn rotate_rename(&mut self, i: usize) {
        let outside = self.rng.range(0, 10) < 3;
        self.next_name += 1;
        let old = self.active[i].path.clone();
        let to_name = if outside {
            format!("old-{}.{}", name(&old), self.next_name)
        } else {
            format!("{}.{}", name(&old), self.next_name)
        };
        let to = old.with_file_name(&to_name);
        std::fs::rename(&old, &to)
            .unwrap_or_else(|e| panic!("rename {} to {to_name}: {e}", old.display()));
        let (g, gen) = (self.active[i].g, self.active[i].gen);
        let at = self.ledger.gens[&(g, gen)].written;
        let c = self.cycle();
        self.ledger.note(
            g,
            gen,
            c,
            format!(
                "renamed to {to_name} at line {at}{}",
                if outside {
                    " (outside the pattern)"
                } else {
                    ""
                }
            ),
        );
        self.ledger.named(g, gen, &to);
        self.active[i].path = to.clone();
        if self.rng.range(0, 2) == 0 {
            self.append(i, false);
        }
        self.finish(i);
        let a = self.active.swap_remove(i);
        let lines = self.ledger.gens[&(g, gen)].written;
        if outside {
            for seq in 0..lines {
                self.ledger
                    .excused
                    .insert(Id { g, gen, seq }, Excuse::Outside);
            }
        }
        self.retired.push(Retired {
            path: to,
            g,
            gen,
            lines,
        });
        self.ledger
            .op(if outside { "rename out" } else { "rename in" });
        self.create(g, a.primary, old);
    }

    /// Rotation by copy-truncate (logrotate's `copytruncate`): copy `app.log` to
    /// `app.log.c<k>` (inside the pattern, so what the tailer had not read yet is read from
    /// the copy), write a few more lines (the window), truncate to 0 and go on writing.
    fn copy_truncate(&mut self, i: usize) {
        // A logger writes whole lines with O_APPEND; one cut by the truncate would leave its
        // tail at offset 0, a fragment in the file itself rather than the tailer's doing.
        self.finish(i);
        self.next_name += 1;
        let (g, gen, path) = (
            self.active[i].g,
            self.active[i].gen,
            self.active[i].path.clone(),
        );
        let to_name = format!("{}.c{}", name(&path), self.next_name);
        let to = path.with_file_name(&to_name);
        std::fs::copy(&path, &to)
            .unwrap_or_else(|e| panic!("copy {} to {to_name}: {e}", path.display()));
        let ino = self.record_inode(&to);
        self.ledger.named(g, gen, &to);
        let copied = self.ledger.gens[&(g, gen)].written;
        for seq in 0..copied {
            *self.ledger.copies.entry(Id { g, gen, seq }).or_insert(0) += 1;
        }
        let window = self.rng.range(0, 4) as u32;
        for _ in 0..window {
            let id = Id {
                g,
                gen,
                seq: self.ledger.gens[&(g, gen)].written,
            };
            let cycle = self.cycle() as u16;
            let info = self.ledger.gens.get_mut(&(g, gen)).expect("generation");
            info.written += 1;
            info.cycle.push(cycle);
            self.ledger.excused.insert(id, Excuse::Window);
            let mut line = line_of(id).into_bytes();
            line.push(b'\n');
            self.active[i]
                .file
                .write_all(&line)
                .unwrap_or_else(|e| panic!("append to {}: {e}", path.display()));
        }
        let old_len = self.active[i]
            .file
            .metadata()
            .unwrap_or_else(|e| panic!("stat {}: {e}", path.display()))
            .len();
        self.active[i]
            .file
            .set_len(0)
            .unwrap_or_else(|e| panic!("truncate {}: {e}", path.display()));
        let c = self.cycle();
        self.ledger.note(
            g,
            gen,
            c,
            format!("copied to {to_name} (inode {ino}) at line {copied}, {window} more lines, truncated to 0"),
        );
        self.retired.push(Retired {
            path: to,
            g,
            gen,
            lines: copied,
        });
        let new = self.new_gen();
        self.ledger.note(
            g,
            new,
            c,
            format!("{} truncated to 0, written again", name(&path)),
        );
        self.ledger.named(g, new, &path);
        self.active[i].gen = new;
        self.ledger.op("copy-truncate");
        // A busy logger may write more than the old length before the tailer looks again:
        // then the file did not shrink as far as the tailer can see, only its first bytes
        // changed.
        if self.rng.range(0, 3) == 0 {
            while self.active[i]
                .file
                .metadata()
                .expect("stat the truncated file")
                .len()
                <= old_len
            {
                self.append(i, false);
            }
            self.ledger.op("truncate + burst");
            let c = self.cycle();
            self.ledger.note(
                g,
                new,
                c,
                format!("written past the old length {old_len} at once"),
            );
        }
    }

    fn add_file(&mut self, g: u32) {
        if self.active.iter().filter(|a| a.g == g).count() >= MAX_ACTIVE {
            return;
        }
        self.next_name += 1;
        let path = self.dirs[g as usize].join(format!("app-{}.log", self.next_name));
        self.create(g, false, path);
        self.ledger.op("add");
    }

    /// Stops writing to a file other than a group's `app.log`; it stays where it is.
    fn retire(&mut self, i: usize) {
        if self.active[i].primary {
            return;
        }
        self.finish(i);
        let a = self.active.swap_remove(i);
        let lines = self.ledger.gens[&(a.g, a.gen)].written;
        self.retired.push(Retired {
            path: a.path,
            g: a.g,
            gen: a.gen,
            lines,
        });
        self.ledger.op("retire");
    }

    /// Deletes a retired file, if its lines are all delivered (a file deleted before the
    /// tailer read it loses its unread lines by definition, so the test only deletes files
    /// it knows are delivered; a file rotated out of the pattern that the tailer never saw is
    /// never deleted).
    fn delete_one(&mut self) {
        if self.retired.is_empty() {
            return;
        }
        let k = self.rng.range(0, self.retired.len() as u64) as usize;
        let r = &self.retired[k];
        self.output.update(&self.out);
        let undelivered = (0..r.lines).any(|seq| {
            let id = Id {
                g: r.g,
                gen: r.gen,
                seq,
            };
            self.ledger.excused.get(&id) != Some(&Excuse::Window) && self.output.count(id) == 0
        });
        if undelivered {
            return;
        }
        let r = self.retired.swap_remove(k);
        std::fs::remove_file(&r.path)
            .unwrap_or_else(|e| panic!("delete {}: {e}", r.path.display()));
        let c = self.cycle();
        self.ledger
            .note(r.g, r.gen, c, format!("{} deleted", name(&r.path)));
        self.ledger.op("delete");
    }

    fn run(mut self, stop: &AtomicBool) -> Ledger {
        for g in 0..GROUPS {
            let path = self.dirs[g as usize].join("app.log");
            self.create(g, true, path);
        }
        while !stop.load(Ordering::Relaxed) {
            let i = self.rng.range(0, self.active.len() as u64) as usize;
            match self.rng.range(0, 1000) {
                0..=879 => self.append(i, false),
                880..=894 => self.rotate_rename(i),
                895..=904 => self.copy_truncate(i),
                905..=929 => {
                    let g = self.rng.range(0, u64::from(GROUPS)) as u32;
                    self.add_file(g);
                }
                930..=949 => self.retire(i),
                _ => self.delete_one(),
            }
            for i in 0..self.active.len() {
                if self.active[i].pending_since.elapsed() > PENDING_MAX {
                    self.finish(i);
                }
            }
            // Pacing, so that the agent can keep up between kills.
            std::thread::sleep(Duration::from_millis(self.rng.range(1, 5)));
        }
        for i in 0..self.active.len() {
            self.finish(i);
        }
        self.ledger
    }
}

fn name(path: &Path) -> String {
    path.file_name()
        .expect("a file name")
        .to_string_lossy()
        .into_owned()
}

// ---------------------------------------------------------------------------------------------
// 1. The crash campaign
// ---------------------------------------------------------------------------------------------

/// TAILDIR with one group per directory in `dirs` -> file channel -> file_roll into `out`.
fn campaign_config(dir: &Path, dirs: &[PathBuf]) -> PathBuf {
    // Three spellings of "app...log..." (a backslash doubled for the properties file): none
    // matches `old-...`, the names of files rotated out of the pattern.
    let patterns = [
        "app.*\\\\.log.*",
        "app.*\\\\.log(\\\\.c?[0-9]+)?",
        "app[-.0-9a-z]*",
    ];
    let mut text = String::from(
        "a1.sources = r1\n\
         a1.channels = c1\n\
         a1.sinks = k1\n\
         a1.sources.r1.type = TAILDIR\n\
         a1.sources.r1.channels = c1\n",
    );
    let groups: Vec<String> = (0..dirs.len()).map(|g| format!("f{g}")).collect();
    writeln!(text, "a1.sources.r1.filegroups = {}", groups.join(" ")).expect("write");
    for (g, d) in dirs.iter().enumerate() {
        writeln!(
            text,
            "a1.sources.r1.filegroups.f{g} = {}/{}",
            d.display(),
            patterns[g % patterns.len()]
        )
        .expect("write");
    }
    write!(
        text,
        "a1.sources.r1.headers.f1.group = one\n\
         a1.sources.r1.fileHeader = true\n\
         a1.sources.r1.positionFile = {pos}\n\
         a1.sources.r1.batchSize = {BATCH}\n\
         a1.sources.r1.idleTimeout = {IDLE_TIMEOUT_MS}\n\
         a1.sources.r1.maxBackoffSleep = 200\n\
         a1.sources.r1.backoffSleepIncrement = 50\n\
         {tail}",
        pos = dir.join("taildir_position.json").display(),
        tail = file_channel_to_file_roll(dir, BATCH),
    )
    .expect("write");
    let conf = dir.join("agent.properties");
    std::fs::write(&conf, text).expect("write config");
    conf
}

/// Where a fragment came from: the written lines it is a piece of, each with its file's
/// story, and what the agents logged about those files.
fn fragment_story(ledger: &Ledger, dir: &Path, fragment: &str) -> String {
    let whole: Vec<Id> = ledger
        .ids()
        .filter(|&id| fragment.len() >= 8 && line_of(id).contains(fragment))
        .take(3)
        .collect();
    if whole.is_empty() {
        return "    not a piece of any one written line".to_string();
    }
    let mut names: Vec<&str> = vec![];
    let mut text = String::new();
    for &id in &whole {
        let line = line_of(id);
        let at = line.find(fragment).expect("found above");
        writeln!(
            text,
            "    bytes {at}..{} of the {}-byte {}",
            at + fragment.len(),
            line.len(),
            ledger.describe(id)
        )
        .expect("write");
        names.extend(
            ledger.gens[&(id.g, id.gen)]
                .names
                .iter()
                .map(String::as_str),
        );
    }
    let mut logs: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read the test directory")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| name(p).starts_with("agent-") && name(p).ends_with(".log"))
        .collect();
    logs.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
    for log in logs {
        let body = std::fs::read_to_string(&log).unwrap_or_default();
        for l in body.lines() {
            let hit = names.iter().any(|n| {
                l.match_indices(n).any(|(i, _)| {
                    !matches!(l.as_bytes().get(i + n.len()), Some(b) if b.is_ascii_alphanumeric() || *b == b'.' || *b == b'-')
                })
            });
            if hit {
                writeln!(text, "    {}: {l}", name(&log)).expect("write");
            }
        }
    }
    text
}

/// The last `n` lines of an agent log.
fn tail(log: &str, n: usize) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Fails the test if an agent log shows a panic.
fn assert_no_panic(log: &str, seed: u64, cycle: usize) {
    assert!(
        !log.contains("panicked"),
        "seed {seed}, cycle {cycle}: the agent panicked:\n{log}"
    );
}

#[test]
fn taildir_kill_9_campaign_with_rotation_truncation_and_inode_reuse() {
    let started = Instant::now();
    let (mut rng, seed) = Rng::from_clock();
    eprintln!("taildir crash campaign: seed {seed}");
    let dir = tempfile::tempdir().expect("tempdir");
    let dirs: Vec<PathBuf> = (0..GROUPS)
        .map(|g| dir.path().join(format!("logs{g}")))
        .collect();
    for d in &dirs {
        std::fs::create_dir(d).expect("create a log directory");
    }
    let out = dir.path().join("out");
    let conf = campaign_config(dir.path(), &dirs);

    let cycle = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = Writer {
        rng: Rng::new(rng.next_u64()),
        dirs: dirs.clone(),
        out: out.clone(),
        cycle: Arc::clone(&cycle),
        active: vec![],
        retired: vec![],
        ledger: Ledger::default(),
        next_gen: 0,
        next_name: 0,
        output: Output::default(),
    };
    let writing = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || writer.run(&stop))
    };

    // The kill moments are random on purpose (this is not waiting for a condition): some
    // fall while the agent is still starting, most while it reads, rotates and commits. The
    // agent also stays down for a random while, during which the writer rotates, truncates
    // and deletes files the restarted agent must then recognise.
    for c in 0..CYCLES {
        cycle.store(c, Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(rng.range(0, 250)));
        let mut agent = Agent::start(dir.path(), &conf, "a1", &c.to_string());
        std::thread::sleep(Duration::from_millis(rng.range(20, 900)));
        agent.assert_running(&format!("seed {seed}, cycle {c}: running before its kill"));
        let (st, log) = agent.kill_9();
        assert!(
            st.code().is_none(),
            "seed {seed}, cycle {c}: expected death by SIGKILL, got {st}:\n{log}"
        );
        assert_no_panic(&log, seed, c);
        assert!(
            !writing.is_finished(),
            "seed {seed}, cycle {c}: the writer stopped early (see its panic above)"
        );
    }
    stop.store(true, Ordering::Relaxed);
    let ledger = writing.join().expect("the writer thread panicked");
    cycle.store(CYCLES, Ordering::Relaxed);

    // The final run: everything the tailer can see must arrive.
    let expected: Vec<Id> = ledger
        .ids()
        .filter(|id| !ledger.excused.contains_key(id))
        .collect();
    // Files rotated out of the pattern, by generation: each must end up with none of its
    // lines delivered (never seen) or all of them (see `Excuse::Outside`).
    let mut outside_gens: BTreeMap<(u32, u32), Vec<Id>> = BTreeMap::new();
    for (&id, &why) in &ledger.excused {
        if why == Excuse::Outside {
            outside_gens.entry((id.g, id.gen)).or_default().push(id);
        }
    }
    let outside_partial = |output: &Output| -> Vec<Id> {
        outside_gens
            .values()
            .filter(|ids| ids.iter().any(|&id| output.count(id) > 0))
            .flat_map(|ids| ids.iter().copied().filter(|&id| output.count(id) == 0))
            .collect()
    };
    let mut agent = Agent::start(dir.path(), &conf, "a1", "final");
    let mut output = Output::default();
    let end = Instant::now() + DEADLINE;
    // Once every expected line is there, the output must also stop growing for a while, so
    // that late duplicates are counted too (this wait bounds no correctness check: a late
    // line only makes the duplicate count larger).
    let mut quiet_polls = 0;
    let mut last_lines = usize::MAX;
    loop {
        output.update(&out);
        let complete =
            expected.iter().all(|&id| output.count(id) > 0) && outside_partial(&output).is_empty();
        quiet_polls = if output.lines == last_lines {
            quiet_polls + 1
        } else {
            0
        };
        last_lines = output.lines;
        if (complete && quiet_polls >= 25) || Instant::now() > end {
            break;
        }
        agent.assert_running(&format!("seed {seed}: draining"));
        std::thread::sleep(POLL);
    }
    let (st, log) = agent.terminate();
    assert_eq!(st.code(), Some(0), "seed {seed}: the final run:\n{log}");
    assert_no_panic(&log, seed, CYCLES);

    // Judge the output as a whole.
    let mut output = Output::default();
    output.update(&out);
    let written = ledger.ids().count();
    let mut missing: Vec<Id> = expected
        .iter()
        .copied()
        .filter(|&id| output.count(id) == 0)
        .collect();
    missing.extend(outside_partial(&output));
    let excused_count = |why: Excuse| {
        let all = ledger.excused.values().filter(|&&w| w == why).count();
        let lost = ledger
            .excused
            .iter()
            .filter(|&(&id, &w)| w == why && output.count(id) == 0)
            .count();
        (all, lost)
    };
    let (window, window_lost) = excused_count(Excuse::Window);
    let (outside, outside_lost) = excused_count(Excuse::Outside);
    let unknown: Vec<Id> = output
        .counts
        .keys()
        .copied()
        .filter(|id| {
            ledger
                .gens
                .get(&(id.g, id.gen))
                .is_none_or(|info| id.seq >= info.written)
        })
        .collect();
    let mut copy_dups = 0u64;
    let mut crash_dups = 0u64;
    let mut most = (0u32, None);
    for (&id, &n) in &output.counts {
        let allowed = 1 + ledger.copies.get(&id).copied().unwrap_or(0);
        copy_dups += u64::from(n.min(allowed) - 1);
        crash_dups += u64::from(n.saturating_sub(allowed));
        if n > most.0 {
            most = (n, Some(id));
        }
    }
    // The bound on duplicates a kill can cause. The source commits each batch (at most
    // `batchSize` lines of one file) to the channel before it records the position, and
    // rewrites the position file after every commit, so at a kill at most one committed
    // batch is not in the position file: read again after the restart. The sink writes one
    // batch (at most `sink.batchSize`) to the output before it commits the take, so at most
    // one batch is in the output and still in the channel: written again. Two batches per
    // kill; a line copied by a copy-truncate may come once more from each copy, and those
    // are counted apart (`copy_dups`).
    let factor = 2;
    let bound = (CYCLES * BATCH * factor) as u64;
    eprintln!(
        "seed {seed}: {CYCLES} kills in {:?}; {written} lines written in {} file generations; \
         operations {:?}; {} inode numbers reused; {} lines delivered; {window} lines in \
         copy-truncate windows ({window_lost} lost); {outside} lines in files renamed out of the \
         pattern ({outside_lost} lost, all from files no tailer saw); duplicates: {copy_dups} from copies, {crash_dups} from \
         kills (bound {bound} = {CYCLES} kills x {BATCH} x {factor}), most copies of one line \
         {} ({:?}); {} fragments; {} missing",
        started.elapsed(),
        ledger.gens.len(),
        ledger.ops,
        ledger.inode_reuses,
        output.lines,
        most.0,
        most.1.map(|id| id.to_string()),
        output.fragments.len(),
        missing.len(),
    );

    let log_tail = tail(&log, 40);
    assert!(
        output.fragments.is_empty(),
        "seed {seed}: {} delivered bodies are not whole written lines, e.g.\n{}\nfinal run's log:\n{log_tail}",
        output.fragments.len(),
        output
            .fragments
            .iter()
            .take(10)
            .map(|(f, b)| format!(
                "  {}: {}\n{}",
                name(f),
                shorten(b),
                fragment_story(&ledger, dir.path(), b)
            ))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        unknown.is_empty(),
        "seed {seed}: delivered lines that were never written: {unknown:?}"
    );
    assert!(
        missing.is_empty(),
        "seed {seed}: {} of {} lines never delivered (writer's cycle in each), e.g.\n{}\nfinal run's log:\n{log_tail}",
        missing.len(),
        expected.len(),
        missing
            .iter()
            .take(15)
            .map(|&id| format!("  {}", ledger.describe(id)))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        crash_dups <= bound,
        "seed {seed}: {crash_dups} duplicates beyond the copies, more than {CYCLES} kills can \
         explain ({bound}); the most repeated line came {} times: {}",
        most.0,
        most.1.map_or(String::new(), |id| ledger.describe(id))
    );
}

// ---------------------------------------------------------------------------------------------
// 2. A new file with a deleted file's inode number, across restarts
// ---------------------------------------------------------------------------------------------

/// The positions a restart would resume from (the position file, or its journal's newest
/// record) as (inode, pos, file), or `None` while there are none yet.
fn positions(path: &Path) -> Option<Vec<(u64, u64, String)>> {
    let current = position::load_current(path)
        .unwrap_or_else(|e| panic!("position file {}: {e}", path.display()));
    if current.entries.is_empty() && !path.exists() {
        return None;
    }
    Some(
        current
            .entries
            .into_iter()
            .map(|e| (e.inode, e.pos, e.file.to_string_lossy().into_owned()))
            .collect(),
    )
}

/// Writes lines of generation `gen` to a new file at `path` until it holds more than
/// `min_bytes`; returns the number of lines.
fn write_gen(path: &Path, gen: u32, min_bytes: u64) -> u32 {
    let mut text = String::new();
    let mut seq = 0;
    while text.len() as u64 <= min_bytes {
        text.push_str(&line_of(Id { g: 0, gen, seq }));
        text.push('\n');
        seq += 1;
    }
    std::fs::write(path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    seq
}

/// The tailed files in `dir` (`app-<n>.log`) with their inode and length.
fn tailed_files(dir: &Path) -> Vec<(PathBuf, u64, u64)> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .expect("read the log directory")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| {
            let n = name(p);
            n.starts_with("app-") && n.ends_with(".log")
        })
        .map(|p| {
            let m = std::fs::metadata(&p).expect("stat a log file");
            (p, m.ino(), m.len())
        })
        .collect();
    v.sort();
    v
}

#[test]
fn taildir_new_file_with_a_deleted_files_inode_is_read_from_its_first_line() {
    let rig = Rig::with_source_keys(
        "a1.sources.r1.headers.g.origin = reuse\n\
         a1.sources.r1.fileHeader = true\n\
         a1.sources.r1.skipToEnd = false\n",
    );
    let (dir, logs, pos_file, conf) = (&rig.dir, &rig.logs, &rig.pos_file, &rig.conf);

    // Round 0 writes three files; each later round, with the agent stopped, deletes every
    // file and makes new ones until one gets a deleted file's inode number, names it as that
    // file was named, and gives it more bytes (round 1) or fewer (round 2) than the deleted
    // file's recorded position: a tailer that trusts inode and path starts in the middle of
    // the new file (a fragment, lost lines) or past its end (everything lost).
    let mut gens: BTreeMap<u32, (PathBuf, u32)> = BTreeMap::new();
    let mut reused: Vec<(u32, String)> = vec![];
    let mut next_gen = 0;
    for round in 0..3 {
        if round == 0 {
            for n in 1..=3 {
                next_gen += 1;
                let path = logs.join(format!("app-{n}.log"));
                let lines = write_gen(&path, next_gen, 20_000);
                gens.insert(next_gen, (path, lines));
            }
        } else {
            let before = positions(pos_file).expect("a position file after a run");
            let old: Vec<(PathBuf, u64, u64)> = tailed_files(logs);
            for (p, _, _) in &old {
                std::fs::remove_file(p).expect("delete a log file");
            }
            // Probe files (outside the pattern) until one gets a freed inode number; keeping
            // the probes makes the filesystem move on to the next free number.
            let end = Instant::now() + Duration::from_secs(20);
            let mut probes = vec![];
            let (probe, (old_path, ino, _)) = loop {
                let p = logs.join(format!("probe-{}", probes.len()));
                File::create(&p).expect("create a probe file");
                let ino = std::fs::metadata(&p).expect("stat a probe").ino();
                if let Some(o) = old.iter().find(|o| o.1 == ino) {
                    break (p, o.clone());
                }
                probes.push(p);
                assert!(
                    Instant::now() < end,
                    "round {round}: no new file got one of the inode numbers {:?} back after \
                     {} tries; this filesystem ({}) does not reuse inode numbers soon enough \
                     for this test",
                    old.iter().map(|o| o.1).collect::<Vec<_>>(),
                    probes.len(),
                    logs.display()
                );
            };
            for p in probes {
                std::fs::remove_file(p).expect("delete a probe");
            }
            let old_pos = before
                .iter()
                .find(|e| e.0 == ino)
                .map(|e| e.1)
                .unwrap_or_else(|| panic!("inode {ino} not in the position file: {before:?}"));
            let min_bytes = if round == 1 {
                old_pos + 5_000
            } else {
                old_pos / 3
            };
            next_gen += 1;
            let lines = write_gen(&probe, next_gen, min_bytes);
            let len = std::fs::metadata(&probe).expect("stat").len();
            assert_ne!(len, old_pos, "the new file must differ in length");
            std::fs::rename(&probe, &old_path).expect("rename the probe");
            reused.push((
                next_gen,
                format!(
                    "round {round}: {} got inode {ino} back (old position {old_pos}, new length {len})",
                    name(&old_path)
                ),
            ));
            gens.insert(next_gen, (old_path.clone(), lines));
            // The other names get new files too (they may reuse inode numbers as well).
            for (p, _, _) in &old {
                if *p != old_path {
                    next_gen += 1;
                    let lines = write_gen(p, next_gen, 10_000 + u64::from(next_gen) * 997);
                    gens.insert(next_gen, (p.clone(), lines));
                }
            }
        }
        let mut agent = Agent::start(dir.path(), conf, "a1", &round.to_string());
        agent.wait_for(
            &format!("round {round}: waiting for every file's position to reach its end"),
            |_| {
                let Some(pos) = positions(pos_file) else {
                    return false;
                };
                tailed_files(logs)
                    .iter()
                    .all(|(_, ino, len)| pos.iter().any(|e| e.0 == *ino && e.1 == *len))
            },
        );
        let (st, log) = agent.terminate();
        assert_eq!(st.code(), Some(0), "round {round}:\n{log}");
        assert!(!log.contains("panicked"), "round {round}:\n{log}");
    }

    // Everything the source put, with headers, from the channel itself.
    let mut cfg = FileChannelConfig::new(dir.path());
    cfg.minimum_required_space = 0;
    let ch = crate::common::open_waiting_for_lock(|| FileChannel::open("c1", cfg.clone()))
        .expect("open the agent's channel");
    let mut events = vec![];
    loop {
        let mut tx = ch.take_transaction();
        let n = tx.take_batch(1_000, &mut events).expect("take");
        tx.commit().expect("commit the take");
        if n == 0 {
            break;
        }
    }
    let mut counts: HashMap<Id, u32> = HashMap::new();
    for e in &events {
        let body = String::from_utf8_lossy(e.body()).into_owned();
        let id = parse_line(e.body())
            .unwrap_or_else(|| panic!("not a whole written line: {}", shorten(&body)));
        let (path, lines) = gens
            .get(&id.gen)
            .unwrap_or_else(|| panic!("line {id} was never written"));
        assert!(id.seq < *lines, "line {id} was never written");
        assert_eq!(
            e.header("file"),
            Some(path.to_str().expect("a UTF-8 path")),
            "line {id}: the file header"
        );
        assert_eq!(e.header("origin"), Some("reuse"), "line {id}: group header");
        *counts.entry(id).or_insert(0) += 1;
    }
    for (gen, story) in &reused {
        let first = Id {
            g: 0,
            gen: *gen,
            seq: 0,
        };
        assert!(
            counts.contains_key(&first),
            "{story}: its first line {first} was never read"
        );
    }
    for (&gen, (path, lines)) in &gens {
        let missing: Vec<u32> = (0..*lines)
            .filter(|&seq| !counts.contains_key(&Id { g: 0, gen, seq }))
            .collect();
        assert!(
            missing.is_empty(),
            "{} (generation {gen}, {lines} lines): lines {missing:?} never read; {reused:?}",
            name(path)
        );
    }
    // Every run stopped cleanly (SIGTERM), so nothing may come twice.
    let dups: Vec<String> = counts
        .iter()
        .filter(|&(_, &n)| n > 1)
        .map(|(id, n)| format!("{id} x{n}"))
        .collect();
    assert!(dups.is_empty(), "duplicates after clean stops: {dups:?}");
    eprintln!(
        "inode reuse: {} events from {} files; {}",
        events.len(),
        gens.len(),
        reused
            .iter()
            .map(|r| r.1.as_str())
            .collect::<Vec<_>>()
            .join("; ")
    );
}

// ---------------------------------------------------------------------------------------------
// 3. Two races the campaign found, made deterministic
// ---------------------------------------------------------------------------------------------
//
// The source reads its files in one round, in (device, inode) order, each to its end (the
// default `maxBatchCount` is unlimited), and lists the directories again only between rounds.
// A big file `busy` with the lowest inode number keeps a round going for seconds while the
// test changes a file read later in the same round.

/// TAILDIR on `logs/app-*.log` -> file channel (no sink: the test reads the channel after a
/// clean stop, headers included).
struct Rig {
    dir: tempfile::TempDir,
    logs: PathBuf,
    pos_file: PathBuf,
    conf: PathBuf,
}

impl Rig {
    fn new() -> Rig {
        Rig::with_source_keys("")
    }

    /// A rig whose source also has `extra` keys (lines ending in `\n`).
    fn with_source_keys(extra: &str) -> Rig {
        let dir = tempfile::tempdir().expect("tempdir");
        let logs = dir.path().join("logs");
        std::fs::create_dir(&logs).expect("create the log directory");
        let pos_file = dir.path().join("taildir_position.json");
        let conf = dir.path().join("agent.properties");
        std::fs::write(
            &conf,
            format!(
                "a1.sources = r1\n\
                 a1.channels = c1\n\
                 a1.sources.r1.type = TAILDIR\n\
                 a1.sources.r1.channels = c1\n\
                 a1.sources.r1.filegroups = g\n\
                 a1.sources.r1.filegroups.g = {logs}/app-.*\\\\.log\n\
                 a1.sources.r1.positionFile = {pos}\n\
                 a1.sources.r1.batchSize = {BATCH}\n\
                 {extra}\
                 a1.channels.c1.type = file\n\
                 a1.channels.c1.checkpointDir = {cp}\n\
                 a1.channels.c1.dataDirs = {data}\n\
                 a1.channels.c1.capacity = 10000000\n\
                 a1.channels.c1.minimumRequiredSpace = 1048576\n",
                logs = logs.display(),
                pos = pos_file.display(),
                cp = dir.path().join("checkpoint").display(),
                data = dir.path().join("data").display(),
            ),
        )
        .expect("write config");
        Rig {
            dir,
            logs,
            pos_file,
            conf,
        }
    }

    /// Three empty files `app-<n>.log`, ordered by inode number.
    fn three_files(&self) -> Vec<PathBuf> {
        let mut v: Vec<(u64, PathBuf)> = (1..=3)
            .map(|n| {
                let p = self.logs.join(format!("app-{n}.log"));
                File::create(&p).expect("create a log file");
                (std::fs::metadata(&p).expect("stat").ino(), p)
            })
            .collect();
        v.sort();
        v.into_iter().map(|(_, p)| p).collect()
    }

    fn start(&self, tag: &str) -> Agent {
        Agent::start(self.dir.path(), &self.conf, "a1", tag)
    }

    /// The saved position of `path`'s current inode.
    fn pos_of(&self, path: &Path) -> Option<u64> {
        let ino = std::fs::metadata(path).ok()?.ino();
        positions(&self.pos_file)?
            .into_iter()
            .find(|e| e.0 == ino)
            .map(|e| e.1)
    }

    /// flumen's fingerprint length saved for inode `ino`.
    fn fp_len_of(&self, ino: u64) -> Option<u64> {
        position::load_current(&self.pos_file)
            .ok()?
            .entries
            .into_iter()
            .find(|e| e.inode == ino)?
            .identity
            .map(|id| u64::from(id.fingerprint.len))
    }

    /// Waits until every `app-*.log` is read to its end.
    fn wait_read(&self, agent: &mut Agent, what: &str) {
        agent.wait_for(what, |_| {
            let Some(pos) = positions(&self.pos_file) else {
                return false;
            };
            tailed_files(&self.logs)
                .iter()
                .all(|(_, ino, len)| pos.iter().any(|e| e.0 == *ino && e.1 == *len))
        });
    }

    /// Every event in the channel (the agent stopped), as ids; a fragment fails.
    fn delivered(&self) -> HashMap<Id, u32> {
        let mut cfg = FileChannelConfig::new(self.dir.path());
        cfg.minimum_required_space = 0;
        let ch = crate::common::open_waiting_for_lock(|| FileChannel::open("c1", cfg.clone()))
            .expect("open the agent's channel");
        let mut counts = HashMap::new();
        let mut fragments = vec![];
        loop {
            let mut events = vec![];
            let mut tx = ch.take_transaction();
            let n = tx.take_batch(1_000, &mut events).expect("take");
            tx.commit().expect("commit the take");
            for e in &events {
                match parse_line(e.body()) {
                    Some(id) => *counts.entry(id).or_insert(0) += 1,
                    None => fragments.push(shorten(&String::from_utf8_lossy(e.body()))),
                }
            }
            if n == 0 {
                break;
            }
        }
        assert!(
            fragments.is_empty(),
            "{} delivered bodies are not whole written lines: {:?}",
            fragments.len(),
            &fragments[..fragments.len().min(5)]
        );
        counts
    }
}

/// Lines `0..n` of generation `gen` (group 0), each with its newline.
fn gen_text(gen: u32, n: u32) -> String {
    (0..n)
        .map(|seq| line_of(Id { g: 0, gen, seq }) + "\n")
        .collect()
}

fn assert_all_delivered(counts: &HashMap<Id, u32>, gen: u32, n: u32, what: &str) {
    let missing: Vec<u32> = (0..n)
        .filter(|&seq| !counts.contains_key(&Id { g: 0, gen, seq }))
        .collect();
    assert!(
        missing.is_empty(),
        "{what}: {} of its {n} lines never delivered: {:?}",
        missing.len(),
        &missing[..missing.len().min(20)]
    );
}

/// Copy-truncate followed at once by more bytes than the old position, while the source is
/// busy: the file never looks shorter than the position, only its first bytes differ. It
/// must be read again from its start, not from the old position (the middle of a line of
/// the new content).
#[test]
fn taildir_truncated_and_rewritten_past_the_position_in_one_round_is_read_from_the_start() {
    let rig = Rig::new();
    let files = rig.three_files();
    let (busy, target) = (&files[0], &files[1]);
    std::fs::write(target, gen_text(1, 200)).expect("write");
    let mut agent = rig.start("0");
    rig.wait_read(&mut agent, "waiting for the first lines");

    let busy_lines = 60_000;
    std::fs::write(busy, gen_text(2, busy_lines)).expect("write");
    let busy_len = std::fs::metadata(busy).expect("stat").len();
    agent.wait_for("waiting for the source to be inside the big file", |_| {
        rig.pos_of(busy).is_some_and(|p| p > 0)
    });
    let old_len = std::fs::metadata(target).expect("stat").len();
    let mut f = OpenOptions::new()
        .append(true)
        .open(target)
        .expect("open the target");
    f.set_len(0).expect("truncate");
    let new_lines = 400;
    f.write_all(gen_text(3, new_lines).as_bytes())
        .expect("rewrite");
    let new_len = f.metadata().expect("stat").len();
    assert!(new_len > old_len);
    let busy_pos = rig.pos_of(busy).expect("busy's position");
    assert!(
        busy_pos < busy_len,
        "the source finished the big file ({busy_len} bytes) before the target was rewritten; \
         make it bigger"
    );
    rig.wait_read(&mut agent, "waiting for everything to be read");
    let (st, log) = agent.terminate();
    assert_eq!(st.code(), Some(0), "{log}");

    let counts = rig.delivered();
    assert_all_delivered(&counts, 1, 200, "the first content");
    assert_all_delivered(&counts, 2, busy_lines, "the big file");
    assert_all_delivered(&counts, 3, new_lines, "the content after the truncate");
}

/// A file the source first saw empty, read and killed before it listed the directory again:
/// its saved fingerprint covers fewer bytes than its position (none at all), so after the
/// file is deleted and a new one gets its inode number, the new file must still be read from
/// its first line.
#[test]
fn taildir_position_saved_with_a_short_fingerprint_does_not_fit_a_new_file_with_its_inode() {
    let rig = Rig::new();
    let files = rig.three_files();
    let (busy, target, after) = (&files[0], &files[1], &files[2]);
    let target_ino = std::fs::metadata(target).expect("stat").ino();
    // All three are empty when the source starts: fingerprints of 0 bytes.
    let mut agent = rig.start("0");
    rig.wait_read(&mut agent, "waiting for the empty files to be known");

    // One round: `busy` (seconds), then `target` (its lines committed), then `after`
    // (seconds more, in which the position file keeps the target's short fingerprint).
    std::fs::write(busy, gen_text(1, 30_000)).expect("write");
    agent.wait_for("waiting for the source to be inside the big file", |_| {
        rig.pos_of(busy).is_some_and(|p| p > 0)
    });
    let target_lines = 100;
    std::fs::write(target, gen_text(2, target_lines)).expect("write");
    std::fs::write(after, gen_text(3, 60_000)).expect("write");
    let target_len = std::fs::metadata(target).expect("stat").len();
    let fp_len = agent.poll("waiting for the target's lines to be committed", |_| {
        (rig.pos_of(target) == Some(target_len)).then(|| rig.fp_len_of(target_ino))
    });
    let (st, log) = agent.kill_9();
    assert!(st.code().is_none(), "{log}");
    eprintln!(
        "saved: position {target_len} of inode {target_ino} with a fingerprint of {fp_len:?} bytes"
    );

    // The agent is down: the target goes, a new file gets its inode number and name.
    std::fs::remove_file(target).expect("delete the target");
    let end = Instant::now() + Duration::from_secs(20);
    let mut probes = vec![];
    let probe = loop {
        let p = rig.logs.join(format!("probe-{}", probes.len()));
        File::create(&p).expect("create a probe file");
        if std::fs::metadata(&p).expect("stat").ino() == target_ino {
            break p;
        }
        probes.push(p);
        assert!(
            Instant::now() < end,
            "inode {target_ino} did not come back in {} files",
            probes.len()
        );
    };
    for p in probes {
        std::fs::remove_file(p).expect("delete a probe");
    }
    let new_lines = 300;
    std::fs::write(&probe, gen_text(4, new_lines)).expect("write");
    std::fs::rename(&probe, target).expect("rename");

    let mut agent = rig.start("1");
    rig.wait_read(&mut agent, "waiting for the new file to be read");
    let (st, log) = agent.terminate();
    assert_eq!(st.code(), Some(0), "{log}");
    let counts = rig.delivered();
    assert_all_delivered(&counts, 2, target_lines, "the deleted file");
    assert_all_delivered(
        &counts,
        4,
        new_lines,
        &format!(
            "the new file with inode {target_ino} (the old one's saved position {target_len}, \
             fingerprint {fp_len:?} bytes)"
        ),
    );
}
