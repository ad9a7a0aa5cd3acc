//! Which file of the spool directory is read next: listing the eligible files (as Flume's
//! ReliableSpoolingFileEventReader filters them) and choosing one by `consumeOrder`.
//!
//! Eligible: a regular file (or a link to one) whose name does not start with `.`, does not
//! end in `fileSuffix`, matches `includePattern` and does not match `ignorePattern`; never
//! anything in the tracker directory. With `recursiveDirectorySearch`, subdirectories are
//! searched too, except hidden ones, ones matching `ignorePattern`, the tracker directory,
//! and links to directories (so a link cannot make a loop).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use super::config::{ConsumeOrder, SpoolDirConfig};

/// A file that may be read next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    pub path: PathBuf,
    /// Modification time in milliseconds, as Java's `File.lastModified` (ties are common at
    /// this resolution, and broken by path as Flume breaks them).
    pub mtime_ms: i128,
}

/// The index in `cands` of the file to read next. `random` is any number (drawn fresh per
/// choice) used by [`ConsumeOrder::Random`].
pub fn choose(cands: &[Candidate], order: ConsumeOrder, random: u64) -> Option<usize> {
    if cands.is_empty() {
        return None;
    }
    let by = |newer_wins: bool| {
        (0..cands.len()).reduce(|best, i| {
            let (b, c) = (&cands[best], &cands[i]);
            let better = match c.mtime_ms.cmp(&b.mtime_ms) {
                std::cmp::Ordering::Equal => c.path < b.path,
                std::cmp::Ordering::Less => !newer_wins,
                std::cmp::Ordering::Greater => newer_wins,
            };
            if better {
                i
            } else {
                best
            }
        })
    };
    match order {
        ConsumeOrder::Oldest => by(false),
        ConsumeOrder::Youngest => by(true),
        ConsumeOrder::Random => usize::try_from(random % cands.len() as u64).ok(),
    }
}

/// A file skipped after a failure (it could not be opened or read), by what it looked like
/// then: it is tried again once it changes (content, or its mode: a `chmod` changes ctime).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SkipMark {
    inode: u64,
    size: u64,
    mtime_ns: i64,
    ctime_ns: i64,
}

impl SkipMark {
    pub fn of(m: &std::fs::Metadata) -> SkipMark {
        use std::os::unix::fs::MetadataExt;
        let ns = |s: i64, n: i64| s.saturating_mul(1_000_000_000).saturating_add(n);
        SkipMark {
            inode: m.ino(),
            size: m.size(),
            mtime_ns: ns(m.mtime(), m.mtime_nsec()),
            ctime_ns: ns(m.ctime(), m.ctime_nsec()),
        }
    }
}

/// Lists the eligible files under `dir` (see the module docs), leaving out those in
/// `skipped` that have not changed since. Errors listing a subdirectory are logged and that
/// subdirectory left out; an error listing `dir` itself is returned.
pub fn list(
    source: &str,
    dir: &Path,
    tracker_dir: &Path,
    cfg: &SpoolDirConfig,
    skipped: &HashMap<PathBuf, SkipMark>,
) -> std::io::Result<Vec<Candidate>> {
    let mut out = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        let entries = match std::fs::read_dir(&d) {
            Ok(e) => e,
            Err(e) if d == dir => return Err(e),
            Err(e) => {
                tracing::warn!(
                    source,
                    "source `{source}` (spooldir): cannot list {}: {e}; skipped",
                    d.display()
                );
                continue;
            }
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') {
                continue;
            }
            let path = entry.path();
            if path == tracker_dir {
                continue;
            }
            let Ok(ft) = entry.file_type() else { continue };
            // Follow a link to see what it points to (a vanished target is simply skipped).
            let Ok(meta) = std::fs::metadata(&path) else {
                continue;
            };
            if meta.is_dir() {
                if cfg.recursive && !ft.is_symlink() && !cfg.ignore_pattern.matches_whole(&name) {
                    dirs.push(path);
                }
                continue;
            }
            if !meta.is_file()
                || name.ends_with(&cfg.file_suffix)
                || !cfg.include_pattern.matches_whole(&name)
                || cfg.ignore_pattern.matches_whole(&name)
            {
                continue;
            }
            if skipped.get(&path) == Some(&SkipMark::of(&meta)) {
                continue;
            }
            let mtime_ms = meta
                .modified()
                .ok()
                .map(|t| match t.duration_since(UNIX_EPOCH) {
                    Ok(d) => d.as_millis() as i128,
                    Err(e) => -(e.duration().as_millis() as i128),
                })
                .unwrap_or(0);
            out.push(Candidate { path, mtime_ms });
        }
    }
    Ok(out)
}

/// A small xorshift generator for `consumeOrder = random` (no cryptographic need; seeded from
/// the clock and the process id).
pub struct Xorshift(u64);

impl Xorshift {
    pub fn seeded() -> Xorshift {
        let t = std::time::SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Xorshift((t ^ (u64::from(std::process::id()) << 32)) | 1)
    }

    pub fn draw(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(path: &str, mtime_ms: i128) -> Candidate {
        Candidate {
            path: PathBuf::from(path),
            mtime_ms,
        }
    }

    #[test]
    fn oldest_and_youngest_break_ties_by_the_smaller_path() {
        let cands = [
            c("/s/b", 10),
            c("/s/a", 10),
            c("/s/c", 5),
            c("/s/d", 20),
            c("/s/e", 20),
        ];
        assert_eq!(choose(&cands, ConsumeOrder::Oldest, 0), Some(2));
        assert_eq!(choose(&cands, ConsumeOrder::Youngest, 0), Some(3));
        let tied = [c("/s/b", 10), c("/s/a", 10)];
        assert_eq!(choose(&tied, ConsumeOrder::Oldest, 0), Some(1));
        assert_eq!(choose(&tied, ConsumeOrder::Youngest, 0), Some(1));
        assert_eq!(choose(&[], ConsumeOrder::Oldest, 0), None);
    }

    #[test]
    fn random_picks_every_file_eventually() {
        let cands = [c("/s/a", 1), c("/s/b", 2), c("/s/c", 3)];
        let mut rng = Xorshift::seeded();
        let mut seen = [false; 3];
        for _ in 0..200 {
            let i = choose(&cands, ConsumeOrder::Random, rng.draw()).expect("one");
            seen[i] = true;
        }
        assert_eq!(seen, [true; 3]);
    }

    #[test]
    fn listing_leaves_out_hidden_completed_ignored_and_tracker_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        for f in ["a.log", ".hidden", "b.log.COMPLETED", "skip.tmp", "c.txt"] {
            std::fs::write(d.join(f), b"x\n").expect("write");
        }
        std::fs::create_dir_all(d.join(".flumespool")).expect("tracker dir");
        std::fs::write(d.join(".flumespool/t.log"), b"x").expect("write");
        std::fs::create_dir_all(d.join("sub")).expect("sub");
        std::fs::write(d.join("sub/d.log"), b"x").expect("write");
        let mut cfg = SpoolDirConfig::new(d);
        cfg.ignore_pattern = crate::config::java_regex::compile("^.*\\.tmp$").expect("re");
        let names = |cfg: &SpoolDirConfig| {
            let mut v: Vec<String> = list("r1", d, &d.join(".flumespool"), cfg, &HashMap::new())
                .expect("list")
                .into_iter()
                .map(|c| c.path.strip_prefix(d).expect("under").display().to_string())
                .collect();
            v.sort();
            v
        };
        assert_eq!(names(&cfg), ["a.log", "c.txt"]);
        cfg.recursive = true;
        assert_eq!(names(&cfg), ["a.log", "c.txt", "sub/d.log"]);
        cfg.include_pattern = crate::config::java_regex::compile("^.*\\.log$").expect("re");
        assert_eq!(names(&cfg), ["a.log", "sub/d.log"]);
    }
}
