//! Checkpoints: taking one (the checkpointer's work: snapshot the applied queue, write it, then
//! retire the segments nobody needs any more, as spares or by deleting them) and the files
//! themselves (writing and loading).
//!
//! A checkpoint is written whole to `checkpoint-<gen>.tmp`, synced, renamed to
//! `checkpoint-<gen>`, and the directory synced: a crash leaves either the previous newest
//! checkpoint or the new one, never a torn one under a final name (the CRC catches media
//! damage). The two newest are kept; loading falls back from the newest to the older one, and
//! from both to a full replay of the segments (the checkpoint is only a hint: the log alone
//! can rebuild the queue).
//!
//! IMPORTANT: a checkpoint may only point at log data that is already durable, so the
//! checkpointer syncs the log up to the checkpoint's replay position before writing it; and a
//! segment is retired only from the front of the log, once no queued event and no retained
//! checkpoint needs it.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::log::SegmentHandle;
use super::{now_ms, ChannelError, FsyncPolicy, Inner};
use crate::format::checkpoint::{self, Checkpoint};
use crate::format::{CheckpointSegment, FormatError};
use crate::io::Vfs;

/// How many checkpoints are kept.
pub(crate) const RETAINED: usize = 2;

/// A checkpoint found on disk.
#[derive(Debug)]
pub(crate) struct Found {
    pub(crate) path: PathBuf,
    pub(crate) result: Result<Checkpoint, String>,
}

/// Every checkpoint in `dir`, newest first, decoded (or why not). Leftover `.tmp` files from
/// a crash mid-write are ignored here and removed by `remove_stale`.
pub(crate) fn list(fs: &Arc<dyn Vfs>, dir: &Path) -> std::io::Result<Vec<Found>> {
    let mut gens: Vec<(u64, PathBuf)> = match fs.list(dir) {
        Ok(v) => v,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(e) => return Err(e),
    }
    .into_iter()
    .filter_map(|p| {
        let g = checkpoint::parse_file_name(p.file_name()?.to_str()?)?;
        Some((g, p))
    })
    .collect();
    gens.sort_by_key(|g| std::cmp::Reverse(g.0));
    Ok(gens
        .into_iter()
        .map(|(_, path)| {
            let result = read(fs, &path);
            Found { path, result }
        })
        .collect())
}

pub(super) fn read(fs: &Arc<dyn Vfs>, path: &Path) -> Result<Checkpoint, String> {
    let f = fs.open(path, false).map_err(|e| e.to_string())?;
    let map = f.map().map_err(|e| e.to_string())?;
    checkpoint::decode((*map).as_ref()).map_err(|e: FormatError| e.to_string())
}

/// Writes `c` durably as generation `c.generation`, then removes checkpoints older than the
/// newest [`RETAINED`].
pub(crate) fn write(fs: &Arc<dyn Vfs>, dir: &Path, c: &Checkpoint) -> std::io::Result<PathBuf> {
    let bytes = checkpoint::encode(c);
    let name = checkpoint::file_name(c.generation);
    let tmp = dir.join(format!("{name}.tmp"));
    let path = dir.join(&name);
    {
        let f = fs.open(&tmp, true)?;
        f.set_len(0)?;
        f.write_at(&bytes, 0)?;
        f.sync_data()?;
    }
    fs.rename(&tmp, &path)?;
    fs.sync_dir(dir)?;
    remove_stale(fs, dir, c.generation)?;
    Ok(path)
}

/// Removes checkpoints older than the newest [`RETAINED`] and any `.tmp` leftovers.
pub(super) fn remove_stale(fs: &Arc<dyn Vfs>, dir: &Path, newest: u64) -> std::io::Result<()> {
    for p in fs.list(dir)? {
        let Some(name) = p.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let stale = match checkpoint::parse_file_name(name) {
            Some(g) => g + (RETAINED as u64) <= newest,
            None => name.starts_with("checkpoint-") && name.ends_with(".tmp"),
        };
        if stale {
            fs.remove(&p)?;
        }
    }
    Ok(())
}

/// The oldest segment a checkpoint needs: the first it lists, or its replay segment.
pub(crate) fn keep_from(c: &Checkpoint) -> u64 {
    c.segments
        .first()
        .map_or(c.replay.segment, |s| s.id.min(c.replay.segment))
}

/// The checkpointer's own state, behind `Inner::ckpt`.
pub(super) struct CheckpointState {
    pub(super) next_generation: u64,
    /// Retained checkpoints, newest first: (generation, oldest segment it needs).
    pub(super) retained: Vec<(u64, u64)>,
}

impl Inner {
    /// Writes a checkpoint of the applied state, then deletes segments nobody needs.
    pub(super) fn checkpoint(&self) -> Result<(), ChannelError> {
        if self.poison.get().is_some() || self.abandoned.load(Ordering::Acquire) {
            return Ok(());
        }
        // Apply every record written so far (take records wait for a sync otherwise), so the
        // checkpoint reflects every commit that has returned.
        if self.cfg.fsync == FsyncPolicy::EveryCommit {
            self.flush()?;
            // Every record staged before that flush is durable in the log now, so the journal
            // file retired at the previous checkpoint holds nothing the log lacks.
            let mut log = self.log.lock();
            if let Some(j) = log.journal.as_mut() {
                if let Err(e) = j.rotate() {
                    tracing::warn!(channel = %self.name, file = %j.path().display(), error = %e, "could not empty the take journal; it keeps growing until the next checkpoint");
                }
            }
        }
        let mut ck = self.ckpt.lock();
        let (segs, done, applied, next_seq, bytes, first_live) = {
            let q = self.queue.lock();
            let (segs, done) = q.snapshot();
            (
                segs,
                done,
                q.applied,
                q.end(),
                q.bytes,
                q.first_live_segment(),
            )
        };
        // IMPORTANT: the checkpoint must not point past durable data. Under every-commit,
        // applied records are already durable; otherwise sync first.
        if self.cfg.fsync != FsyncPolicy::EveryCommit {
            self.sync_now()?;
        }
        let c = Checkpoint {
            generation: ck.next_generation,
            written_at_ms: now_ms(),
            replay: applied,
            next_seq,
            queue_bytes: bytes,
            segments: segs
                .into_iter()
                .map(|(id, entries)| CheckpointSegment { id, entries })
                .collect(),
            done,
        };
        let path = match write(&self.fs, &self.cfg.checkpoint_dir, &c) {
            Ok(p) => p,
            Err(e) => {
                self.counters
                    .checkpoint_errors
                    .fetch_add(1, Ordering::Relaxed);
                return Err(ChannelError::Io {
                    channel: self.name.clone(),
                    file: self
                        .cfg
                        .checkpoint_dir
                        .join(checkpoint::file_name(c.generation)),
                    operation: "writing checkpoint",
                    cause: e.to_string(),
                });
            }
        };
        ck.next_generation += 1;
        ck.retained.insert(0, (c.generation, keep_from(&c)));
        ck.retained.truncate(RETAINED);
        self.counters.checkpoints.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(channel = %self.name, file = %path.display(), "checkpoint written");

        // Segments below every retained checkpoint's needs and below the first live event.
        let active = self.log.lock().active.id;
        let mut boundary = first_live.unwrap_or(active).min(active);
        for &(_, keep) in &ck.retained {
            boundary = boundary.min(keep);
        }
        let doomed: Vec<Arc<SegmentHandle>> = {
            let mut segs = self.segments.write();
            let ids: Vec<u64> = segs.range(..boundary).map(|(&id, _)| id).collect();
            ids.into_iter().filter_map(|id| segs.remove(&id)).collect()
        };
        let mut dirs = vec![];
        let (mut kept, mut deleted) = (0, 0);
        for h in doomed {
            // Kept as a spare only when nothing else holds the segment: a reader's mapping
            // must never see the file change length when it is reused.
            let (id, path) = (h.id, h.path.clone());
            let sole = Arc::strong_count(&h) == 1;
            drop(h);
            if sole && self.spares.offer(&path, id) {
                kept += 1;
            } else if let Err(e) = self.fs.remove(&path) {
                tracing::warn!(channel = %self.name, file = %path.display(), error = %e, "could not delete a finished segment; will retry at the next open");
                continue;
            } else {
                deleted += 1;
            }
            if let Some(d) = path.parent() {
                dirs.push(d.to_path_buf());
            }
        }
        dirs.dedup();
        for d in dirs {
            let _ = self.fs.sync_dir(&d);
        }
        if kept + deleted > 0 {
            tracing::debug!(channel = %self.name, kept, deleted, "finished segments kept as spares or deleted");
        }
        Ok(())
    }
}
