//! Offline tools behind `flumen channel verify | inspect | repair`.
//!
//! `verify` and `inspect` never write: they work on a live channel's directories without taking
//! its lock (what they report may then be a moment old). `repair` opens the channel for real,
//! with corruptionPolicy = skip, so it takes the lock and refuses to run beside an agent.
//!
//! `verify` reads every segment with recovery's own scanner (`scan`) and decides from the same
//! classification, so it calls a log recoverable exactly when a full replay recovers it: what
//! recovery truncates or removes (a torn tail, a reused file's old bytes, a creation cut
//! short) it reports but does not count as corruption. Unlike open, it reads the parts of the
//! log a checkpoint covers too (where a take would meet the damage) and checks every event's
//! structure.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::recovery;
use super::scan::{self, Corruption, Record, Scanner, Tail};
use super::{CorruptionPolicy, FileChannel, FileChannelConfig};
use crate::channel::{Channel, ChannelError};
use crate::format::checkpoint as ckpt_format;
use crate::format::record;
use crate::format::{segment, PutBatchView, ScanOutcome};
use crate::io::{self, IoKind, Vfs};

pub use super::scan::CorruptSpot;

/// What `flumen channel verify` prints.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct VerifyReport {
    pub segments: u64,
    pub records: u64,
    /// Events in put records (committed puts), whether or not taken since.
    pub events: u64,
    /// Events whose take was committed (from take records).
    pub events_taken: u64,
    /// Bytes of segment files walked.
    pub bytes: u64,
    pub checkpoints_valid: u64,
    pub corrupt: Vec<CorruptSpot>,
    /// Corrupt regions an earlier `repair` quarantined (their loss is accepted; not an error).
    pub quarantined: Vec<CorruptSpot>,
    /// A torn final record, or old bytes of a reused segment file after the last record
    /// (normal after a crash; opening the channel truncates them).
    pub torn_tail: Option<CorruptSpot>,
    /// A last segment whose creation a crash cut short: it holds no records, and opening the
    /// channel removes it (not corruption).
    pub creation_cut_short: Option<PathBuf>,
}

/// What `flumen channel inspect` prints.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct InspectReport {
    /// Events committed and not yet taken-and-committed.
    pub queue_depth: u64,
    pub queue_bytes: u64,
    /// Segment files and their sizes on disk.
    pub segments: Vec<(PathBuf, u64)>,
    pub bytes_on_disk: u64,
    /// Spare segments (finished segments kept for reuse; `spareSegments`) and their
    /// sizes: disk the channel holds that is not part of the queue.
    pub spares: Vec<(PathBuf, u64)>,
    /// Age of the oldest queued event (from its commit time), if any.
    pub oldest_event_age: Option<Duration>,
    /// The checkpoint recovery would start from.
    pub checkpoint: Option<PathBuf>,
}

/// What `flumen channel repair` did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RepairReport {
    /// Corrupt regions moved to quarantine files.
    pub quarantined: Vec<CorruptSpot>,
    /// Events lost with them (from the gaps in the sequence numbers).
    pub events_lost: u64,
    /// A torn final record that was truncated.
    pub torn_tail: Option<CorruptSpot>,
    /// Events in the channel after the repair.
    pub queue_depth: u64,
}

/// The given dirs and their immediate subdirectories, split into those holding checkpoints
/// and those holding segments.
fn find_dirs(fs: &Arc<dyn Vfs>, dirs: &[PathBuf]) -> (Option<PathBuf>, Vec<PathBuf>) {
    let mut candidates = vec![];
    for d in dirs {
        candidates.push(d.clone());
        if let Ok(mut subs) = fs.list_dirs(d) {
            subs.sort();
            candidates.extend(subs);
        }
    }
    let mut ckpt = None;
    let mut data = vec![];
    for c in candidates {
        let Ok(files) = fs.list(&c) else { continue };
        let names: Vec<String> = files
            .iter()
            .filter_map(|p| p.file_name()?.to_str().map(str::to_string))
            .collect();
        if ckpt.is_none()
            && names
                .iter()
                .any(|n| ckpt_format::parse_file_name(n).is_some())
        {
            ckpt = Some(c.clone());
        }
        if names.iter().any(|n| segment::parse_file_name(n).is_some()) {
            data.push(c);
        }
    }
    (ckpt, data)
}

fn no_dirs(dirs: &[PathBuf]) -> ChannelError {
    ChannelError::Io {
        channel: "-".into(),
        file: dirs.first().cloned().unwrap_or_default(),
        operation: "looking for segments in",
        cause: "no flumen segment files (seg-*.log) found there or in its subdirectories".into(),
    }
}

/// Walks every segment and checkpoint found in `dirs` (and their immediate subdirectories).
pub fn verify(dirs: &[PathBuf]) -> Result<VerifyReport, ChannelError> {
    let fs = io::backend(IoKind::Std);
    let (ckpt_dir, data_dirs) = find_dirs(&fs, dirs);
    if data_dirs.is_empty() && ckpt_dir.is_none() {
        return Err(no_dirs(dirs));
    }
    let mut rep = VerifyReport::default();
    if let Some(d) = &ckpt_dir {
        for f in super::checkpoint::list(&fs, d).map_err(|e| ChannelError::Io {
            channel: "-".into(),
            file: d.clone(),
            operation: "listing",
            cause: e.to_string(),
        })? {
            match f.result {
                Ok(_) => rep.checkpoints_valid += 1,
                Err(reason) => rep.corrupt.push(CorruptSpot {
                    file: f.path,
                    offset: 0,
                    reason,
                }),
            }
        }
    }
    let segments = scan::list_segments(&fs, "-", &data_dirs)?;
    let last = segments.keys().next_back().copied();
    // The same scan recovery makes, over every segment (recovery replays only what follows
    // its checkpoint), with each event's structure checked too.
    let mut scanner = Scanner::new(None, true);
    for (&id, path) in &segments {
        rep.segments += 1;
        let spot = |offset: u64, reason: &str| CorruptSpot {
            file: path.clone(),
            offset,
            reason: reason.to_string(),
        };
        let map = fs
            .open(path, false)
            .and_then(|f| f.map())
            .map_err(|e| ChannelError::Io {
                channel: "-".into(),
                file: path.clone(),
                operation: "reading",
                cause: e.to_string(),
            })?;
        let buf: &[u8] = (*map).as_ref();
        rep.bytes += buf.len() as u64;
        let found = scanner.segment(id, buf, None, Some(id) == last, |_, rec| {
            rep.records += 1;
            match rec {
                Record::Put { batch, .. } => rep.events += u64::from(batch.count),
                Record::Take { ranges, .. } => {
                    rep.events_taken += ranges.iter().map(|(s, e)| e - s).sum::<u64>();
                }
            }
        });
        for c in &found.corrupt {
            let quarantined =
                c.kind != Corruption::Header && scan::is_quarantined(&fs, path, id, c.offset);
            if quarantined {
                rep.quarantined.push(spot(c.offset, &c.reason));
            } else {
                rep.corrupt.push(spot(c.offset, &c.reason));
            }
        }
        match &found.tail {
            Tail::Torn { reason } | Tail::OldBytes { reason } => {
                rep.torn_tail = Some(spot(found.end.unwrap_or(0), reason));
            }
            Tail::CreationCutShort => rep.creation_cut_short = Some(path.clone()),
            Tail::Zeros | Tail::Corrupt => {}
        }
    }
    Ok(rep)
}

/// Rebuilds the queue state read-only (no lock taken, nothing written).
pub fn inspect(dirs: &[PathBuf]) -> Result<InspectReport, ChannelError> {
    let fs = io::backend(IoKind::Std);
    let (ckpt_dir, data_dirs) = find_dirs(&fs, dirs);
    if data_dirs.is_empty() && ckpt_dir.is_none() {
        return Err(no_dirs(dirs));
    }
    let rec = recovery::recover(
        &fs,
        "-",
        ckpt_dir.as_deref(),
        &data_dirs,
        CorruptionPolicy::Skip,
        true,
        false,
    )?;
    let mut rep = InspectReport {
        queue_depth: rec.queue.size,
        queue_bytes: rec.queue.bytes,
        checkpoint: rec.report.checkpoint.clone(),
        ..InspectReport::default()
    };
    for path in rec.segments.values() {
        let len = fs.open(path, false).and_then(|f| f.len()).unwrap_or(0);
        rep.bytes_on_disk += len;
        rep.segments.push((path.clone(), len));
    }
    for path in super::spare::list(&fs, &data_dirs) {
        let len = fs.open(&path, false).and_then(|f| f.len()).unwrap_or(0);
        rep.spares.push((path, len));
    }
    if let Some(loc) = rec.queue.locate(rec.queue.head()) {
        if let Some(path) = rec.segments.get(&loc.segment) {
            let ts = fs
                .open(path, false)
                .and_then(|f| f.map())
                .ok()
                .and_then(|m| {
                    let buf: &[u8] = (*m).as_ref();
                    let at = buf.get(loc.entry.offset as usize..)?;
                    match record::decode(loc.segment, at) {
                        ScanOutcome::Record(r) => {
                            PutBatchView::parse(r.payload).ok().map(|v| v.timestamp_ms)
                        }
                        _ => None,
                    }
                });
            if let Some(ts) = ts {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as u64);
                rep.oldest_event_age = Some(Duration::from_millis(now.saturating_sub(ts)));
            }
        }
    }
    Ok(rep)
}

/// Opens the channel with corruptionPolicy = skip and a full replay of every segment (so that
/// corruption in parts a checkpoint covers is found too), quarantining every corrupt record,
/// then writes a checkpoint past them so later opens do not meet them again.
pub fn repair(checkpoint_dir: &Path, data_dirs: &[PathBuf]) -> Result<RepairReport, ChannelError> {
    let mut cfg = FileChannelConfig::new(checkpoint_dir);
    cfg.checkpoint_dir = checkpoint_dir.to_path_buf();
    cfg.data_dirs = data_dirs.to_vec();
    cfg.corruption_policy = CorruptionPolicy::Skip;
    cfg.minimum_required_space = 0;
    let (ch, rec) = FileChannel::open_inner("repair", cfg, io::backend(IoKind::Std), true)?;
    let queue_depth = ch.stats().size;
    ch.close()?;
    Ok(RepairReport {
        quarantined: rec.corrupt,
        events_lost: rec.events_lost,
        torn_tail: rec.torn_tail,
        queue_depth,
    })
}
