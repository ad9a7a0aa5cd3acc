//! Finding the files to tail: listing the file groups' directories, telling new files from
//! known ones (by device and inode while held open; by device, inode and fingerprint across a
//! restart or after an idle close), and applying saved positions only to the files they were
//! saved for. Part of [`TaildirSource`]; the reading and the position bookkeeping are in the
//! parent module.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use super::file::{self, FileKey, TailFile};
use super::{covers, file_fingerprint_matches, journal, lock_path, position, read_error};
use super::{Save, TaildirSource};

impl TaildirSource {
    /// Lists the files of every group and brings `files` up to date: new files, renamed
    /// ones, closed ones that changed, files that no longer match. `initial` applies the
    /// saved positions and `skipToEnd`.
    pub(super) fn scan(&mut self, initial: bool) {
        let known = self.files.len();
        let mut seen: HashSet<FileKey> = HashSet::new();
        for gi in 0..self.cfg.groups.len() {
            let dir = self.cfg.groups[gi].dir.clone();
            self.wake.watch(&dir);
            let names = self.list(gi);
            for name in names {
                if !self.cfg.groups[gi]
                    .pattern
                    .matches_whole(&name.to_string_lossy())
                {
                    continue;
                }
                let path = dir.join(&name);
                if self.is_own_file(&path) {
                    continue;
                }
                let meta = match std::fs::metadata(&path) {
                    Ok(m) if m.is_file() => m,
                    // Gone since the listing, or not a regular file.
                    _ => continue,
                };
                let key = FileKey::of(&meta);
                if !seen.insert(key) {
                    continue; // matched by an earlier group too: the first one has it
                }
                if self.files.contains_key(&key) {
                    self.update_known(key, path, gi, meta.len());
                } else {
                    self.add_new(key, path, gi, initial);
                }
            }
        }
        for (key, t) in self.files.iter_mut() {
            t.matched = seen.contains(key);
        }
        if initial {
            self.adopt_rotated_away();
        }
        // A new file is recorded (at its start position) before any of its lines is put, so
        // a kill after its first commit still finds it known if it is then rotated away.
        if self.files.len() > known {
            self.save(Save::EndOfRound);
        }
        if !self.restored.is_empty() && Instant::now() >= self.restored_until {
            self.restored.clear();
            self.dirty = true;
        }
    }

    /// The names in group `gi`'s directory (cached while its mtime stays, with
    /// `cachePatternMatching`).
    fn list(&mut self, gi: usize) -> Vec<std::ffi::OsString> {
        let dir = &self.cfg.groups[gi].dir;
        let l = &mut self.listings[gi];
        let mtime = std::fs::metadata(dir).and_then(|m| m.modified()).ok();
        let now = SystemTime::now();
        // A listing taken within a second of the directory's change may miss a file created
        // in the same timestamp granule: list again until the change is older than that.
        let fresh = l.listed_at.zip(mtime).is_some_and(|(at, m)| {
            at.duration_since(m)
                .is_ok_and(|d| d > Duration::from_secs(1))
        });
        if self.cfg.cache_pattern_matching && mtime.is_some() && l.mtime == mtime && fresh {
            return l.names.clone();
        }
        match std::fs::read_dir(dir) {
            Ok(rd) => {
                if l.error.take().is_some() {
                    tracing::info!(source = %self.name, "source `{}` (TAILDIR): directory {} is readable again", self.name, dir.display());
                }
                l.names = rd
                    .filter_map(Result::ok)
                    // A name that is not UTF-8 is matched as Java sees it (U+FFFD for each
                    // bad byte) and opened by its real bytes, rather than silently skipped.
                    .map(|e| e.file_name())
                    .collect();
                l.names.sort();
                l.mtime = mtime;
                l.listed_at = Some(now);
            }
            Err(e) => {
                let msg = e.to_string();
                if l.error.as_deref() != Some(&msg) {
                    tracing::warn!(
                        source = %self.name,
                        "source `{}` (TAILDIR): cannot list {} (file group `{}`): {msg}; its files are not tailed until it can be listed",
                        self.name,
                        dir.display(),
                        self.cfg.groups[gi].name
                    );
                    l.error = Some(msg);
                }
                l.names.clear();
                l.mtime = None;
                self.wake.forget(&self.cfg.groups[gi].dir);
            }
        }
        self.listings[gi].names.clone()
    }

    fn update_known(&mut self, key: FileKey, path: PathBuf, gi: usize, size: u64) {
        let name = self.name.clone();
        let Some(t) = self.files.get_mut(&key) else {
            return;
        };
        if t.path != path {
            tracing::debug!(source = %name, "source `{name}` (TAILDIR): {} is now {}", t.path.display(), path.display());
            t.path = path;
        }
        t.group = gi;
        if t.is_open() {
            // Copy-truncate that was followed by new writes past the position: the first
            // bytes changed.
            match t.same_content() {
                Ok(true) => {
                    if t.grow_fingerprint(size).unwrap_or(false) {
                        self.dirty = true;
                    }
                }
                Ok(false) => {
                    tracing::warn!(source = %name, "source `{name}` (TAILDIR): the first bytes of {} changed (copy-truncate?): reading it again from its start", t.path.display());
                    if let Err(e) = t.restart_from_zero() {
                        read_error(&name, t, &e);
                    }
                    self.dirty = true;
                }
                Err(e) => read_error(&name, t, &e),
            }
            return;
        }
        if size == t.pos {
            return;
        }
        match file::open(&t.path) {
            Ok((f, k, _)) if k == key => {
                t.reopen(f);
                let saved = t.fingerprint;
                match file_fingerprint_matches(t, saved) {
                    Ok(true) if size >= t.pos && covers(saved, t.pos) => {}
                    Ok(_) => {
                        tracing::info!(source = %name, "source `{name}` (TAILDIR): {} is not the file last read under its inode (other first bytes, or shorter than its position): reading it from its start", t.path.display());
                        if let Err(e) = t.restart_from_zero() {
                            read_error(&name, t, &e);
                        }
                        self.dirty = true;
                    }
                    Err(e) => read_error(&name, t, &e),
                }
            }
            Ok(_) => {} // replaced between stat and open: the next scan sees the new one
            Err(e) => {
                tracing::debug!(source = %name, "source `{name}` (TAILDIR): cannot reopen {}: {e}", t.path.display());
            }
        }
    }

    fn add_new(&mut self, key: FileKey, path: PathBuf, gi: usize, initial: bool) {
        let name = self.name.clone();
        let (f, k, size) = match file::open(&path) {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(source = %name, "source `{name}` (TAILDIR): cannot open {}: {e}; trying again on the next scan", path.display());
                return;
            }
        };
        if k != key {
            return; // replaced between stat and open: the next scan sees the new one
        }
        let mut t = TailFile::new(key, path, gi, f, 0);
        let ours = self
            .restored
            .iter()
            .position(|s| s.identity.is_some_and(|id| id.dev == key.dev) && s.inode == key.ino);
        let flumes = || {
            self.restored
                .iter()
                .position(|s| s.identity.is_none() && s.inode == key.ino && s.file == t.path)
        };
        let mut start = if initial && self.cfg.skip_to_end {
            size
        } else {
            0
        };
        if let Some(i) = ours.or_else(flumes) {
            let saved = self.restored.swap_remove(i);
            let same = match saved.identity {
                Some(id) => {
                    covers(id.fingerprint, saved.pos)
                        && file_fingerprint_matches(&t, id.fingerprint).unwrap_or(false)
                }
                None => true,
            };
            if same && saved.pos <= size {
                start = saved.pos;
                t.from_flume = saved.identity.is_none();
            } else {
                tracing::info!(source = %name, "source `{name}` (TAILDIR): the saved position {} of inode {} does not belong to {} (other first bytes, or beyond its size {size}): reading it from its start", saved.pos, key.ino, t.path.display());
                start = 0;
            }
        }
        t.pos = start;
        t.abort();
        if t.from_flume {
            if let Err(e) = t.align_to_line_start(self.cfg.max_line_length) {
                read_error(&name, &mut t, &e);
            }
        }
        tracing::info!(source = %name, "source `{name}` (TAILDIR): tailing {} from byte {}", t.path.display(), t.pos);
        self.files.insert(key, t);
        self.dirty = true;
    }

    /// Whether `path` is one of the source's own files (position file, journal, lock).
    fn is_own_file(&self, path: &std::path::Path) -> bool {
        let pos = &self.cfg.position_file;
        path == pos
            || path == lock_path(pos)
            || path == journal::journal_path(pos)
            || path == position::temp_path(pos)
    }

    /// Saved positions of files that no longer match their pattern (rotated away to another
    /// name in the same directory while the agent was down): found by device, inode and
    /// fingerprint among the directories' other files, they are read to their end and then
    /// forgotten, as a file rotated away while the agent runs is. Flume forgets them, losing
    /// what was written to them after its last read.
    fn adopt_rotated_away(&mut self) {
        if !self.restored.iter().any(|s| s.identity.is_some()) {
            return;
        }
        for gi in 0..self.cfg.groups.len() {
            let dir = self.cfg.groups[gi].dir.clone();
            let names = self.listings[gi].names.clone();
            for name in names {
                if self.cfg.groups[gi]
                    .pattern
                    .matches_whole(&name.to_string_lossy())
                {
                    continue;
                }
                let path = dir.join(&name);
                if self.is_own_file(&path) {
                    continue;
                }
                let Ok(meta) = std::fs::metadata(&path) else {
                    continue;
                };
                let key = FileKey::of(&meta);
                if !meta.is_file() || self.files.contains_key(&key) {
                    continue;
                }
                let Some(i) = self.restored.iter().position(|s| {
                    s.inode == key.ino && s.identity.is_some_and(|id| id.dev == key.dev)
                }) else {
                    continue;
                };
                let Ok((f, k, size)) = file::open(&path) else {
                    continue;
                };
                if k != key {
                    continue;
                }
                let saved = self.restored[i].clone();
                let mut t = TailFile::new(key, path, gi, f, 0);
                let same = saved.identity.is_some_and(|id| {
                    covers(id.fingerprint, saved.pos)
                        && file_fingerprint_matches(&t, id.fingerprint).unwrap_or(false)
                });
                if !same || saved.pos > size {
                    continue;
                }
                self.restored.swap_remove(i);
                t.pos = saved.pos;
                t.abort();
                t.matched = false;
                let name_ = &self.name;
                tracing::info!(source = %name_, "source `{name_}` (TAILDIR): {} was renamed to {} while the agent was down: reading it to its end from byte {}", saved.file.display(), t.path.display(), t.pos);
                self.files.insert(key, t);
                self.dirty = true;
            }
        }
    }
}
