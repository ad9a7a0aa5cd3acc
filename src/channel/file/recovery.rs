//! Recovery on open: rebuild the queue from the newest valid checkpoint and the log written
//! after it.
//!
//! Steps: list the segments in every data dir; load the newest checkpoint that decodes and
//! whose segments all exist (else the older one, else none: full replay); replay every record
//! from the checkpoint's position; truncate a torn final record; apply the corruption policy
//! to anything else that does not verify. Put transactions are written only at commit, so an
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
use super::tools::CorruptSpot;
use super::CorruptionPolicy;
use crate::channel::ChannelError;
use crate::format::record::{self, decode_take_commit, find_next_valid};
use crate::format::segment;
use crate::format::{BatchEntry, PutBatchView, RecordKind, ScanOutcome, SEGMENT_HEADER_LEN};
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

/// Segment files in `data_dirs`, by id.
pub(crate) fn list_segments(
    fs: &Arc<dyn Vfs>,
    channel: &str,
    data_dirs: &[PathBuf],
) -> Result<BTreeMap<u64, PathBuf>, ChannelError> {
    let mut out = BTreeMap::new();
    for dir in data_dirs {
        let files = match fs.list(dir) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io_err(channel, dir, "listing", e)),
        };
        for p in files {
            let Some(id) = p
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(segment::parse_file_name)
            else {
                continue;
            };
            if let Some(other) = out.insert(id, p.clone()) {
                return Err(ChannelError::Corrupt {
                    channel: channel.to_string(),
                    file: p,
                    offset: 0,
                    reason: format!(
                        "segment {id} exists twice (also {}); were dataDirs copied into each other?",
                        other.display()
                    ),
                });
            }
        }
    }
    Ok(out)
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
    let segments = list_segments(fs, channel, data_dirs)?;
    let mut report = RecoveryReport::default();

    // The newest usable checkpoint.
    let found = match checkpoint_dir {
        Some(dir) => ckpt_files::list(fs, dir).map_err(|e| io_err(channel, dir, "listing", e))?,
        None => vec![],
    };
    let mut chosen = None;
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

    let mut entries: BTreeMap<u64, Vec<BatchEntry>> = BTreeMap::new();
    let mut done = RangeSet::default();
    let (mut next_seq, mut bytes, start) = match &chosen {
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
    let mut first_put_seen = chosen.is_some();
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
        let corrupt = |offset: u64, reason: String| CorruptSpot {
            file: path.clone(),
            offset,
            reason,
        };

        match segment::decode_header(buf) {
            Ok(hid) if hid == id => {}
            Ok(hid) => {
                let spot = corrupt(
                    0,
                    format!("the header says segment {hid}, the name says {id}"),
                );
                skip_or_fail(channel, policy, read_only, &mut report, spot)?;
                continue;
            }
            Err(e) => {
                let rest_zero = buf
                    .get(SEGMENT_HEADER_LEN..)
                    .is_none_or(|r| r.iter().all(|&b| b == 0));
                if is_last && rest_zero {
                    // A crash while a new segment was being created: it holds nothing.
                    tracing::info!(channel, file = %path.display(), "removing a segment whose creation was cut short by a crash (it held no records)");
                    if !read_only {
                        fs.remove(path)
                            .map_err(|e| io_err(channel, path, "removing", e))?;
                    }
                    continue;
                }
                let spot = corrupt(0, format!("segment header: {e}"));
                skip_or_fail(channel, policy, read_only, &mut report, spot)?;
                continue;
            }
        }

        let mut off = if id == start.segment {
            start.offset as usize
        } else {
            SEGMENT_HEADER_LEN
        };
        if off > buf.len() {
            let spot = corrupt(
                off as u64,
                format!("the checkpoint replays from offset {off} but the file has only {} bytes (was it truncated?)", buf.len()),
            );
            skip_or_fail(channel, policy, read_only, &mut report, spot)?;
            continue;
        }
        // A truncation waits until the mapping is gone: a mapped file must never shrink under
        // its mapping (see `io::std_fs`).
        let mut trim: Option<u64> = None;
        loop {
            let bad = match record::decode(id, &buf[off..]) {
                ScanOutcome::Record(r) => {
                    let applied = match r.kind {
                        RecordKind::PutBatch => PutBatchView::parse(r.payload).and_then(|v| {
                            if first_put_seen && v.first_seq < next_seq {
                                return Err(crate::format::FormatError::Malformed {
                                    what: "put batch",
                                    detail: format!(
                                        "seq {} goes backwards (expected {next_seq} or more)",
                                        v.first_seq
                                    ),
                                });
                            }
                            if first_put_seen && v.first_seq > next_seq {
                                report.events_lost += v.first_seq - next_seq;
                            }
                            first_put_seen = true;
                            entries.entry(id).or_default().push(BatchEntry {
                                first_seq: v.first_seq,
                                offset: off as u32,
                                count: v.count,
                            });
                            bytes += v.body_bytes;
                            next_seq = v.first_seq + u64::from(v.count);
                            Ok(())
                        }),
                        RecordKind::TakeCommit => {
                            decode_take_commit(r.payload).map(|(ranges, b)| {
                                for (s, e) in ranges {
                                    done.insert(s, e);
                                }
                                bytes = bytes.saturating_sub(b);
                            })
                        }
                    };
                    match applied {
                        Ok(()) => {
                            report.records_replayed += 1;
                            dirty = true;
                            off += r.total_len;
                            continue;
                        }
                        Err(e) => e,
                    }
                }
                ScanOutcome::End => {
                    if buf[off..].iter().all(|&b| b == 0) {
                        if is_last && !read_only {
                            // Writing continues in a new segment, so this one is sealed now:
                            // trimmed to its last record and the trim synced (also when the
                            // length already matches: a trim at close is not synced) before
                            // a successor exists. Only the last segment may end in bytes that
                            // are not records, and a reused file may hold old ones here.
                            trim = Some(off as u64);
                        }
                        break;
                    }
                    crate::format::FormatError::Malformed {
                        what: "segment",
                        detail: "non-zero bytes after the end marker".into(),
                    }
                }
                ScanOutcome::Bad(e) => e,
            };
            let next = find_next_valid(id, buf, off + 1);
            if next.is_none() && is_last {
                tracing::warn!(channel, file = %path.display(), offset = off, reason = %bad, "truncating the last segment after its last valid record: a torn final record (a commit cut short by a crash, never acknowledged) or old bytes of a reused segment file");
                report.torn_tail = Some(corrupt(off as u64, bad.to_string()));
                if !read_only {
                    trim = Some(off as u64);
                }
                dirty = true;
                break;
            }
            let end = next.unwrap_or(buf.len());
            let spot = corrupt(
                off as u64,
                format!("{bad} ({} bytes up to the next valid record)", end - off),
            );
            if !read_only && policy == CorruptionPolicy::Skip {
                quarantine(fs, channel, path, id, off, &buf[off..end])?;
            }
            skip_or_fail(channel, policy, read_only, &mut report, spot)?;
            dirty = true;
            match next {
                Some(n) => off = n,
                None => break,
            }
        }
        seg_end.insert(id, off as u64);
        if let Some(at) = trim {
            drop(map);
            file.set_len(at)
                .and_then(|()| file.sync_data())
                .map_err(|e| io_err(channel, path, "truncating", e))?;
        }
    }

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

/// Where a corrupt region of segment `id` at `offset` is copied: beside the segment, in
/// `quarantine/seg-<id>-<offset>.bin`. Its existence also marks the region as skipped.
pub(crate) fn quarantine_path(segment_path: &Path, id: u64, offset: u64) -> PathBuf {
    segment_path
        .parent()
        .unwrap_or(Path::new("."))
        .join("quarantine")
        .join(format!("seg-{id:020}-{offset}.bin"))
}

/// Copies a corrupt region to its [`quarantine_path`] for later study.
fn quarantine(
    fs: &Arc<dyn Vfs>,
    channel: &str,
    segment_path: &Path,
    id: u64,
    offset: usize,
    bytes: &[u8],
) -> Result<(), ChannelError> {
    let path = quarantine_path(segment_path, id, offset as u64);
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
