//! Rolls and space, beside the log: making a new segment (from a spare or fresh space),
//! sealing the active one before its successor is named, preallocating ahead of the writer,
//! and refusing puts below `minimumRequiredSpace`. Everything here runs under the log lock.
//!
//! Invariants:
//! - A new segment's header is synced before it gets its segment name, and the old segment
//!   is trimmed to its last record and the trim synced before that: only the last segment may
//!   end in bytes that are not records (see `spare`).
//! - An error before anything was written (ENOSPC while preallocating, a segment that could
//!   not be made) refuses the commit and leaves the channel as it was; a failed seal, trim or
//!   rename poisons.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::log::{FreeSpace, LogWriter, SegmentHandle, PREALLOC_STEP};
use super::spare::{self, Spares};
use super::{ChannelError, FileChannelConfig, Inner};
use crate::format::{segment, SEGMENT_HEADER_LEN};
use crate::io::{self, Vfs};

pub(super) fn initial_alloc(cfg: &FileChannelConfig) -> u64 {
    PREALLOC_STEP.min(cfg.max_file_size)
}

/// A new segment made but not yet part of the log: its file has the header (synced) under a
/// name recovery does not read (`seg-<id>.new`, or the spare's name). [`publish_segment`]
/// gives it the segment's name.
pub(super) struct Prepared {
    pub(super) id: u64,
    pub(super) tmp: PathBuf,
    pub(super) path: PathBuf,
}

/// Makes segment `id` in its data dir, from a spare when one is ready, else from fresh space:
/// space preallocated, header written and synced. ENOSPC is `DiskFull`. Nothing in the log
/// changes, so an error here leaves the channel as it was.
pub(super) fn prepare_segment(
    fs: &Arc<dyn Vfs>,
    name: &str,
    cfg: &FileChannelConfig,
    spares: &Spares,
    id: u64,
) -> Result<Prepared, ChannelError> {
    let dir = &cfg.data_dirs[(id % cfg.data_dirs.len() as u64) as usize];
    let path = dir.join(segment::file_name(id));
    let header = segment::encode_header(id);
    if let Some(spare) = spares.take(dir) {
        match spare::prepare(fs, &spare, &header, initial_alloc(cfg)) {
            Ok(()) => {
                return Ok(Prepared {
                    id,
                    tmp: spare,
                    path,
                })
            }
            Err(e) => {
                tracing::warn!(channel = name, file = %spare.display(), error = %e, "could not reuse a spare segment; deleting it and using fresh space");
                let _ = fs.remove(&spare);
            }
        }
    }
    let tmp = spare::new_segment_path(&path);
    let fail = |operation: &'static str, e: std::io::Error| {
        if e.raw_os_error() == Some(28) {
            let free = fs.free_space(dir).unwrap_or(0);
            ChannelError::DiskFull {
                channel: name.to_string(),
                dir: dir.clone(),
                free,
                required: initial_alloc(cfg),
            }
        } else {
            ChannelError::Io {
                channel: name.to_string(),
                file: tmp.clone(),
                operation,
                cause: e.to_string(),
            }
        }
    };
    let file = fs.open(&tmp, true).map_err(|e| fail("creating", e))?;
    let r = file
        .allocate(0, initial_alloc(cfg))
        .map_err(|e| fail("preallocating", e))
        .and_then(|()| {
            file.write_at(&header, 0)
                .map_err(|e| fail("writing the header of", e))
        })
        .and_then(|()| file.sync_data().map_err(|e| fail("syncing", e)));
    if let Err(e) = r {
        // Nothing refers to the file: remove it now (or the next open does).
        let _ = fs.remove(&tmp);
        return Err(e);
    }
    Ok(Prepared { id, tmp, path })
}

/// Gives a prepared segment its name and makes the directory entry durable. Opened again by
/// the new name: a backend may open the file a second time by path (std's `O_DIRECT`
/// descriptor), which must not meet the old name gone.
pub(super) fn publish_segment(
    fs: &Arc<dyn Vfs>,
    p: &Prepared,
) -> std::io::Result<Arc<SegmentHandle>> {
    fs.rename(&p.tmp, &p.path)?;
    if let Some(dir) = p.path.parent() {
        fs.sync_dir(dir)?;
    }
    let file = fs.open(&p.path, false)?;
    Ok(Arc::new(SegmentHandle::new(
        p.id,
        p.path.clone(),
        file,
        false,
    )))
}

impl Inner {
    /// Refuses puts below `minimumRequiredSpace`, re-reading the free space at most once a
    /// second unless the estimate gets close to the floor.
    pub(super) fn check_space(&self, log: &mut LogWriter, len: u64) -> Result<(), ChannelError> {
        let min = self.cfg.minimum_required_space;
        if min == 0 {
            return Ok(());
        }
        // The active segment's data dir, computed only off the fast path (a put that finds
        // plenty of space checks nothing but the estimate).
        let dir = |log: &LogWriter| {
            log.active
                .path
                .parent()
                .map_or_else(|| self.cfg.data_dirs[0].clone(), Path::to_path_buf)
        };
        let refresh = |log: &mut LogWriter| {
            if let Ok(free) = self.fs.free_space(&dir(log)) {
                log.free = FreeSpace {
                    checked_at: Instant::now(),
                    free,
                    written_since: 0,
                };
            }
        };
        let estimate = |f: &FreeSpace| f.free.saturating_sub(f.written_since);
        let stale = log.free.checked_at.elapsed() > Duration::from_secs(1);
        if stale || estimate(&log.free) < min.saturating_add(len).saturating_add(PREALLOC_STEP) {
            refresh(log);
        }
        let mut free = estimate(&log.free);
        if free < min.saturating_add(len) && self.spares.release_all() > 0 {
            tracing::warn!(channel = %self.name, free, minimum_required_space = min, "free space is below minimumRequiredSpace: deleted the spare segments");
            refresh(log);
            free = estimate(&log.free);
        }
        if free < min.saturating_add(len) {
            return Err(ChannelError::DiskFull {
                channel: self.name.clone(),
                dir: dir(log),
                free,
                required: min,
            });
        }
        Ok(())
    }

    /// Makes room for a record of `len` bytes in the active segment: rolls to a new segment
    /// when this one is full, and preallocates ahead. Errors here happen before anything is
    /// written, so they refuse the commit without poisoning, except a failed seal or header
    /// sync, which poisons.
    pub(super) fn make_room(&self, log: &mut LogWriter, len: u64) -> Result<(), ChannelError> {
        let first_record = log.write_off == SEGMENT_HEADER_LEN as u64;
        if log.write_off + len > self.cfg.max_file_size && !first_record {
            self.roll(log)?;
        }
        // Staged writes are padded to whole blocks: the padding must stay inside the
        // reservation too, or a write could extend the file (and meet ENOSPC) after all.
        let need = (log.write_off + len).next_multiple_of(io::DIRECT_ALIGN as u64);
        if need > log.alloc_end {
            let want = (need - log.alloc_end).max(PREALLOC_STEP);
            if let Err(e) = log.active.file.allocate(log.alloc_end, want) {
                return Err(if e.raw_os_error() == Some(28) {
                    ChannelError::DiskFull {
                        channel: self.name.clone(),
                        dir: log
                            .active
                            .path
                            .parent()
                            .map_or_else(PathBuf::new, Path::to_path_buf),
                        free: self.fs.free_space(&log.active.path).unwrap_or(0),
                        required: want,
                    }
                } else {
                    ChannelError::Io {
                        channel: self.name.clone(),
                        file: log.active.path.clone(),
                        operation: "preallocating",
                        cause: e.to_string(),
                    }
                });
            }
            log.alloc_end += want;
        }
        Ok(())
    }

    /// Seals the active segment and starts the next.
    pub(super) fn roll(&self, log: &mut LogWriter) -> Result<(), ChannelError> {
        let old = log.active.clone();
        // The next segment is made (header durable) before the old one is sealed: if making it
        // fails (ENOSPC, say), the old segment stays the active one, unchanged, and a later
        // commit simply tries again.
        let next = prepare_segment(&self.fs, &self.name, &self.cfg, &self.spares, old.id + 1)?;
        // IMPORTANT: the old segment is sealed, trimmed and synced before the next one gets its
        // segment name. A reused file holds bytes of its former life after its last record,
        // and only the last segment may end in bytes that are not records (a torn tail).
        let sealed = self.seal_for_roll(log, &old);
        let published = sealed.and_then(|()| {
            publish_segment(&self.fs, &next)
                .map_err(|e| self.poison(&next.path, "naming the new segment", &e))
        });
        let next = match published {
            Ok(h) => h,
            Err(e) => {
                // Poisoned: the half-made segment is removed now or at the next open.
                let _ = self.fs.remove(&next.tmp);
                return Err(e);
            }
        };
        if let Some(stage) = log.stage.as_mut() {
            stage.restart_segment(&segment::encode_header(next.id));
        }
        old.seal();
        self.segments.write().insert(next.id, next.clone());
        log.active = next;
        log.write_off = SEGMENT_HEADER_LEN as u64;
        log.alloc_end = initial_alloc(&self.cfg);
        tracing::debug!(channel = %self.name, segment = log.active.id, "rolled to a new segment");
        if self.spares.wanted() && self.oldest_segment_finished(log.active.id) {
            // A checkpoint now rather than at the next interval turns finished segments into
            // spares while the log still needs them: under sustained load the interval alone
            // (30 s is 3 GB at 100 MB/s) would leave most new segments fresh.
            self.bg.cv.notify_all();
        }
        Ok(())
    }

    /// Whether the oldest segment holds no queued event any more (every one taken and
    /// committed), so that a checkpoint could retire it.
    pub(super) fn oldest_segment_finished(&self, active: u64) -> bool {
        let Some(oldest) = self.segments.read().keys().next().copied() else {
            return false;
        };
        oldest < self.queue.lock().first_live_segment().unwrap_or(active)
    }

    /// Makes the active segment `old` final on disk before a roll: the staged records no
    /// leader has written yet (after any leader's write still running into it), one sync so
    /// that a sync of the next segment is all a later group commit needs, then the trim to
    /// its last record, synced too. Any failure poisons.
    pub(super) fn seal_for_roll(
        &self,
        log: &mut LogWriter,
        old: &SegmentHandle,
    ) -> Result<(), ChannelError> {
        if log.stage.is_some() {
            let writing = self.block_write.lock();
            if let Some(w) = log.take_staged() {
                self.write_staged(old, &w)?;
                log.recycle(w);
            }
            drop(writing);
        }
        if let Err(e) = old.file.sync_data() {
            return Err(self.poison(&old.path, "fdatasync", &e));
        }
        if let Err(e) = old
            .file
            .set_len(log.write_off)
            .and_then(|()| old.file.sync_data())
        {
            return Err(self.poison(&old.path, "truncating", &e));
        }
        self.counters.fsyncs.fetch_add(2, Ordering::Relaxed);
        Ok(())
    }
}
