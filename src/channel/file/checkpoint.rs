//! Writing and loading checkpoint files.
//!
//! A checkpoint is written whole to `checkpoint-<gen>.tmp`, synced, renamed to
//! `checkpoint-<gen>`, and the directory synced: a crash leaves either the previous newest
//! checkpoint or the new one, never a torn one under a final name (the CRC catches media
//! damage). The two newest are kept; loading falls back from the newest to the older one, and
//! from both to a full replay of the segments (the checkpoint is only a hint: the log alone
//! can rebuild the queue).
//!
//! IMPORTANT: a checkpoint may only point at log data that is already durable, so the caller
//! syncs the log up to the checkpoint's replay position before writing it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::format::checkpoint::{self, Checkpoint};
use crate::format::FormatError;
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

fn read(fs: &Arc<dyn Vfs>, path: &Path) -> Result<Checkpoint, String> {
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
fn remove_stale(fs: &Arc<dyn Vfs>, dir: &Path, newest: u64) -> std::io::Result<()> {
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
