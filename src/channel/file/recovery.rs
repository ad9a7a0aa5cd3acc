//! Recovery on open: rebuild the queue from the newest valid checkpoint and the log written
//! after it.
//!
//! Steps: list the segments in every data dir; load the newest checkpoint that decodes and
//! whose segments all exist (else the older one, else none: full replay); replay every record
//! from the checkpoint's position, as the segment scanner (`scan`, shared with `verify`)
//! classifies it; truncate a torn final record (or a reused file's old bytes); remove a last
//! segment whose creation was cut short; apply the corruption policy to corruption, except
//! regions an earlier repair quarantined, whose loss was accepted then. Put transactions are written only at commit, so an
//! uncommitted put never reaches the log; take transactions are written only at commit, so
//! anything taken but not committed is simply still in the queue.
//!
//! IMPORTANT: a bad record is a torn tail only when it is in the last segment and no valid
//! record follows it; anywhere else it is corruption, which is never skipped silently.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::checkpoint as ckpt_files;
use super::queue::{Queue, RangeSet};
use super::scan::{self, CorruptSpot, Corruption, Record, Scanner, Tail};
use super::CorruptionPolicy;
use crate::channel::ChannelError;
use crate::format::segment;
use crate::format::{BatchEntry, SEGMENT_HEADER_LEN};
use crate::io::Vfs;

/// What recovery found and did, for logs and for `flumen channel repair`.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RecoveryReport {
    /// The checkpoint used, if any.
    pub checkpoint: Option<PathBuf>,
    /// Checkpoints that could not be used, and why.
    pub checkpoints_rejected: Vec<(PathBuf, String)>,
    /// True when no checkpoint could be used and every segment was replayed.
    pub full_replay: bool,
    pub records_replayed: u64,
    /// A torn final record, truncated (normal after a crash).
    pub torn_tail: Option<CorruptSpot>,
    /// Corrupt regions skipped (only with corruptionPolicy = skip, or read-only tools).
    pub corrupt: Vec<CorruptSpot>,
    /// Events lost in skipped regions, from the gaps in sequence numbers.
    pub events_lost: u64,
    /// Take commits applied from the take journal (their records had not reached the log
    /// when the process stopped).
    pub journal_takes: u64,
}

/// The recovered state.
pub(crate) struct Recovered {
    pub(crate) segments: BTreeMap<u64, PathBuf>,
    pub(crate) queue: Queue,
    pub(crate) next_seq: u64,
    pub(crate) next_segment_id: u64,
    /// Valid checkpoints kept on disk, newest first: (generation, oldest segment it needs).
    pub(crate) checkpoints: Vec<(u64, u64)>,
    pub(crate) next_generation: u64,
    pub(crate) report: RecoveryReport,
    /// Something was replayed, truncated or skipped: a fresh checkpoint is worth writing.
    pub(crate) dirty: bool,
}

fn io_err(channel: &str, file: &Path, operation: &'static str, e: std::io::Error) -> ChannelError {
    ChannelError::Io {
        channel: channel.to_string(),
        file: file.to_path_buf(),
        operation,
        cause: e.to_string(),
    }
}

/// Rebuilds the queue. With `read_only`, nothing on disk changes and corruption is collected
/// in the report whatever the policy.
pub(crate) fn recover(
    fs: &Arc<dyn Vfs>,
    channel: &str,
    checkpoint_dir: Option<&Path>,
    data_dirs: &[PathBuf],
    policy: CorruptionPolicy,
    read_only: bool,
    ignore_checkpoints: bool,
) -> Result<Recovered, ChannelError> {
    let segments = scan::list_segments(fs, channel, data_dirs)?;
    let mut report = RecoveryReport::default();

    // The newest usable checkpoint.
    let found = match checkpoint_dir {
        Some(dir) => ckpt_files::list(fs, dir).map_err(|e| io_err(channel, dir, "listing", e))?,
        None => vec![],
    };
    let mut chosen = None;
    // (checkpoint, segment id, events it queued there): see the missing-segment check below.
    let mut missing_segment: Option<(PathBuf, u64, u64)> = None;
    let mut valid = vec![];
    let mut max_generation = 0;
    for f in found {
        let c = match f.result {
            Ok(c) => c,
            Err(why) => {
                tracing::warn!(channel, file = %f.path.display(), reason = %why, "checkpoint is not usable; falling back to an older one or to the log");
                report.checkpoints_rejected.push((f.path, why));
                continue;
            }
        };
        max_generation = max_generation.max(c.generation);
        if let Some(missing) = c.segments.iter().find(|s| !segments.contains_key(&s.id)) {
            // Retention deletes a segment only once no retained checkpoint lists it, so a
            // missing one that still held queued events was removed from outside (or its data
            // dir was dropped from the configuration): replaying the rest would lose them.
            let queued: u64 = missing.entries.iter().map(|e| u64::from(e.count)).sum();
            if queued > 0 && chosen.is_none() && missing_segment.is_none() {
                missing_segment = Some((f.path.clone(), missing.id, queued));
            }
            let why = format!(
                "it lists segment {} ({}), which is not in any data dir",
                missing.id,
                segment::file_name(missing.id)
            );
            tracing::warn!(channel, file = %f.path.display(), reason = %why, "checkpoint is not usable");
            report.checkpoints_rejected.push((f.path, why));
            continue;
        }
        valid.push((c.generation, ckpt_files::keep_from(&c)));
        if chosen.is_none() && !ignore_checkpoints {
            chosen = Some((f.path, c));
        }
    }
    valid.truncate(ckpt_files::RETAINED);
    if let Some((checkpoint, id, queued)) = missing_segment {
        if policy == CorruptionPolicy::Fail && !read_only {
            return Err(ChannelError::MissingSegment {
                channel: channel.to_string(),
                missing: Box::new(crate::channel::MissingSegment {
                    checkpoint,
                    segment: segment::file_name(id),
                    data_dirs: data_dirs.to_vec(),
                    queued,
                }),
            });
        }
        tracing::error!(channel, segment = %segment::file_name(id), queued, "a segment holding queued events is missing from every data dir; opening without it (corruptionPolicy = skip): its events are lost");
    }

    let mut entries: BTreeMap<u64, Vec<BatchEntry>> = BTreeMap::new();
    let mut done = RangeSet::default();
    let (next_seq, mut bytes, start) = match &chosen {
        Some((path, c)) => {
            report.checkpoint = Some(path.clone());
            for s in &c.segments {
                entries.insert(s.id, s.entries.clone());
            }
            for &(s, e) in &c.done {
                done.insert(s, e);
            }
            (c.next_seq, c.queue_bytes, c.replay)
        }
        None => {
            report.full_replay = !segments.is_empty();
            let first = segments.keys().next().copied().unwrap_or(0);
            (
                0,
                0,
                crate::format::Position {
                    segment: first,
                    offset: SEGMENT_HEADER_LEN as u64,
                },
            )
        }
    };
    let mut scanner = Scanner::new(chosen.is_some().then_some(next_seq), false);
    let last_id = segments.keys().next_back().copied();
    let mut dirty = false;
    // Where each replayed segment's records end: a journal entry at or past its segment's end
    // is not in the log. Not only the last segment can end early: a crash during a roll, after
    // the next segment was created and before the staged records were written to this one,
    // leaves this one short and the next one empty.
    let mut seg_end: BTreeMap<u64, u64> = BTreeMap::new();

    for (&id, path) in segments.range(start.segment..) {
        let is_last = Some(id) == last_id;
        let file = fs
            .open(path, false)
            .map_err(|e| io_err(channel, path, "opening", e))?;
        let map = file
            .map()
            .map_err(|e| io_err(channel, path, "mapping", e))?;
        let buf: &[u8] = (*map).as_ref();
        let spot = |offset: u64, reason: &str| CorruptSpot {
            file: path.clone(),
            offset,
            reason: reason.to_string(),
        };
        let from = (id == start.segment).then_some(start.offset);
        let found = scanner.segment(id, buf, from, is_last, |offset, rec| match rec {
            Record::Put { batch, gap } => {
                report.events_lost += gap;
                entries.entry(id).or_default().push(BatchEntry {
                    first_seq: batch.first_seq,
                    offset: offset as u32,
                    count: batch.count,
                });
                bytes += batch.body_bytes;
                report.records_replayed += 1;
            }
            Record::Take { ranges, body_bytes } => {
                for (s, e) in ranges {
                    done.insert(s, e);
                }
                bytes = bytes.saturating_sub(body_bytes);
                report.records_replayed += 1;
            }
        });
        dirty |= report.records_replayed > 0;
        for c in &found.corrupt {
            if c.kind != Corruption::Header
                && c.kind != Corruption::PastEnd
                && scan::is_quarantined(fs, path, id, c.offset)
            {
                // An earlier repair quarantined this region and reported its loss.
                tracing::warn!(channel, file = %path.display(), offset = c.offset, "skipping a log region an earlier repair quarantined");
                dirty = true;
                continue;
            }
            let quarantinable = matches!(c.kind, Corruption::Record | Corruption::SeqBackwards);
            if quarantinable && !read_only && policy == CorruptionPolicy::Skip {
                let region = buf
                    .get(c.offset as usize..(c.offset + c.len) as usize)
                    .unwrap_or_default();
                quarantine(fs, channel, path, id, c.offset as usize, region)?;
            }
            skip_or_fail(
                channel,
                policy,
                read_only,
                &mut report,
                spot(c.offset, &c.reason),
            )?;
            dirty = true;
        }
        // A truncation waits until the mapping is gone: a mapped file must never shrink under
        // its mapping (see `io::std_fs`).
        let mut trim = None;
        match &found.tail {
            Tail::Zeros | Tail::Corrupt => {}
            Tail::CreationCutShort => {
                tracing::info!(channel, file = %path.display(), "removing a segment whose creation was cut short by a crash (it held no records)");
                if !read_only {
                    drop(map);
                    fs.remove(path)
                        .map_err(|e| io_err(channel, path, "removing", e))?;
                }
                continue;
            }
            Tail::Torn { reason } | Tail::OldBytes { reason } => {
                let at = found.end.unwrap_or(SEGMENT_HEADER_LEN as u64);
                let what = if matches!(found.tail, Tail::Torn { .. }) {
                    "truncating the last segment after its last valid record: a torn final record (a commit cut short by a crash, never acknowledged)"
                } else {
                    "truncating the last segment after its last valid record: old bytes of a reused segment file (records of its former life)"
                };
                tracing::warn!(channel, file = %path.display(), offset = at, reason = %reason, "{what}");
                report.torn_tail = Some(spot(at, reason));
                dirty = true;
            }
        }
        if let Some(end) = found.end {
            seg_end.insert(id, end);
            if is_last && !read_only && found.tail != Tail::Corrupt {
                // Writing continues in a new segment, so this one is sealed now: trimmed to
                // its last record and the trim synced (also when the length already matches:
                // a trim at close is not synced) before a successor exists. Only the last
                // segment may end in bytes that are not records, and a reused file may hold
                // old ones here.
                trim = Some(end);
            }
        }
        if let Some(at) = trim {
            drop(map);
            file.set_len(at)
                .and_then(|()| file.sync_data())
                .map_err(|e| io_err(channel, path, "truncating", e))?;
        }
    }
    let next_seq = scanner.next_seq().unwrap_or(next_seq);

    if let (Some(dir), Some(_)) = (checkpoint_dir, last_id) {
        for e in super::journal::read(fs, channel, dir) {
            if seg_end.get(&e.segment).is_none_or(|&end| e.offset < end) {
                continue;
            }
            if e.ranges.iter().any(|&(_, end)| end > next_seq) {
                tracing::warn!(
                    channel,
                    segment = e.segment,
                    offset = e.offset,
                    "a take journal entry names events the log does not hold; ignoring it"
                );
                continue;
            }
            for &(s, end) in &e.ranges {
                done.insert(s, end);
            }
            bytes = bytes.saturating_sub(e.body_bytes);
            report.journal_takes += 1;
            dirty = true;
        }
        if report.journal_takes > 0 {
            tracing::info!(
                channel,
                takes = report.journal_takes,
                "applied take commits from the take journal (the process stopped before their log records were written)"
            );
        }
    }

    if report.events_lost > 0 {
        tracing::error!(
            channel,
            events_lost = report.events_lost,
            regions = report.corrupt.len(),
            "corrupt log regions were skipped: these events are lost"
        );
    }
    let next_segment_id = last_id
        .unwrap_or(0)
        .max(chosen.as_ref().map_or(0, |(_, c)| c.replay.segment))
        + 1;
    let queue = Queue::recovered(
        entries.into_iter().collect(),
        &done.iter().collect::<Vec<_>>(),
        next_seq,
        bytes,
        crate::format::Position::default(),
    );
    Ok(Recovered {
        segments,
        queue,
        next_seq,
        next_segment_id,
        checkpoints: valid,
        next_generation: max_generation + 1,
        report,
        dirty,
    })
}

fn skip_or_fail(
    channel: &str,
    policy: CorruptionPolicy,
    read_only: bool,
    report: &mut RecoveryReport,
    spot: CorruptSpot,
) -> Result<(), ChannelError> {
    if policy == CorruptionPolicy::Fail && !read_only {
        return Err(ChannelError::Corrupt {
            channel: channel.to_string(),
            file: spot.file,
            offset: spot.offset,
            reason: spot.reason,
        });
    }
    if !read_only {
        tracing::error!(channel, file = %spot.file.display(), offset = spot.offset, reason = %spot.reason, "skipping a corrupt log region (corruptionPolicy = skip)");
    }
    report.corrupt.push(spot);
    Ok(())
}

/// Copies a corrupt region to its [`scan::quarantine_path`] for later study.
fn quarantine(
    fs: &Arc<dyn Vfs>,
    channel: &str,
    segment_path: &Path,
    id: u64,
    offset: usize,
    bytes: &[u8],
) -> Result<(), ChannelError> {
    let path = scan::quarantine_path(segment_path, id, offset as u64);
    let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
    let r = fs.create_dir_all(&dir).and_then(|()| {
        let f = fs.open(&path, true)?;
        f.set_len(0)?;
        f.write_at(bytes, 0)?;
        f.sync_data()?;
        fs.sync_dir(&dir)
    });
    r.map_err(|e| io_err(channel, &path, "quarantining to", e))?;
    tracing::warn!(channel, file = %path.display(), bytes = bytes.len(), "quarantined a corrupt log region");
    Ok(())
}
