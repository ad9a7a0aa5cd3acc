//! The segment scanner: the one reading of a segment's bytes that recovery (open, `inspect`,
//! `repair`) and `verify` both decide from, so that they can never disagree about what a log
//! holds.
//!
//! For each segment it hands every valid record to the caller, in log order, and classifies
//! everything else ([`SegmentScan`]): how the segment ends ([`Tail`]: zeros, a torn final
//! record, old bytes of a reused spare, a creation cut short) and each corrupt region at its
//! offset ([`Corrupt`], [`Corruption`]: a bad header, a bad record, a seq going backwards, a
//! replay position past the end). It decides nothing: what to truncate, skip, quarantine or
//! report is the caller's policy, in `recovery` and `tools`.
//!
//! Invariants:
//! - Only the last segment can end in bytes that are not records (a roll trims and syncs a
//!   segment before its successor is named, see `spare`), so a bad region is a torn tail only
//!   in the last segment with no valid record after it; anywhere else it is corruption.
//! - A record whose CRC verifies was written whole, so it is never called torn: if its seqs go
//!   backwards it is corruption, wherever it is.
//! - No I/O beyond the listing helpers: the scan works on the bytes it is given.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::channel::ChannelError;
use crate::format::record::{self, decode_take_commit, find_next_valid, find_record_shape};
use crate::format::{segment, FormatError, PutBatchView, RecordKind, ScanOutcome};
use crate::format::{RecordRef, SEGMENT_HEADER_LEN};
use crate::io::Vfs;

/// A place in a segment (or checkpoint) file and what is wrong there, as reported by
/// `verify`, `repair` and recovery.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CorruptSpot {
    pub file: PathBuf,
    pub offset: u64,
    pub reason: String,
}

/// A valid record, as the scanner hands it to its caller.
#[derive(Debug)]
pub enum Record<'a> {
    /// A put batch. `gap` counts the seqs skipped since the previous put batch the scanner saw
    /// (events lost in a region skipped as corrupt); 0 for the first one.
    Put { batch: PutBatchView<'a>, gap: u64 },
    /// A take commit: the seq ranges it removed and their body bytes.
    Take {
        ranges: Vec<(u64, u64)>,
        body_bytes: u64,
    },
}

/// What kind of corruption a [`Corrupt`] region is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Corruption {
    /// The segment header is not valid, or names another segment: nothing in the file is read.
    Header,
    /// Bytes that are not a valid record, with a valid record after them (or, outside the last
    /// segment, none).
    Record,
    /// A record that verifies but whose seqs go backwards: not written by this log here.
    SeqBackwards,
    /// The position to scan from (a checkpoint's replay position) is past the end of the file.
    PastEnd,
}

/// A corrupt region of a segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Corrupt {
    pub kind: Corruption,
    pub offset: u64,
    /// Bytes up to the next valid record, or to the end of the file.
    pub len: u64,
    pub reason: String,
}

/// How a segment ends, after its last valid record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tail {
    /// Nothing, or only zeros (preallocated space, a staged write's padding): a clean end.
    Zeros,
    /// Last segment only: bytes that are not records and no valid record after them, which
    /// look like a record cut short (a commit a crash interrupted, never acknowledged).
    Torn { reason: String },
    /// Last segment only: the same, but records of the file's former life follow (a reused
    /// spare keeps its old bytes; their CRCs name their old segment, so none verifies here).
    OldBytes { reason: String },
    /// Last segment only: the header is not valid and nothing but zeros follows: a crash cut
    /// the segment's creation short; it holds no records.
    CreationCutShort,
    /// The scan stopped at corruption (a bad header, a position past the end, a bad region
    /// with no valid record after it outside the last segment): see the last [`Corrupt`].
    Corrupt,
}

/// Everything but the valid records that the scanner found in one segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentScan {
    /// Where the valid records end: where a torn or zero tail starts, and where writing could
    /// continue. `None` when nothing of the segment could be read (a bad header, a position
    /// past the end, a creation cut short).
    pub end: Option<u64>,
    pub tail: Tail,
    /// Corrupt regions, in file order.
    pub corrupt: Vec<Corrupt>,
}

/// Walks segments in log order, keeping what spans them (the next expected seq).
#[derive(Debug)]
pub struct Scanner {
    next_seq: Option<u64>,
    deep: bool,
}

impl Scanner {
    /// `next_seq`: the first seq the next put batch may carry (from a checkpoint), or `None`
    /// to accept whatever the first one holds. `deep` also checks the structure of every event
    /// of every put batch (`verify`): only a writer's bug could break it in a record whose CRC
    /// verifies, so replay, which must be fast, leaves that to the take that reads it.
    pub fn new(next_seq: Option<u64>, deep: bool) -> Scanner {
        Scanner { next_seq, deep }
    }

    /// The seq after the last put batch seen (or the starting one).
    pub fn next_seq(&self) -> Option<u64> {
        self.next_seq
    }

    /// Scans segment `id`, whose whole file is `buf`, from `from` (the header's end when
    /// `None`), calling `visit` with the offset of each valid record. `is_last`: whether this
    /// is the log's last segment, the only one that may end in bytes that are not records.
    pub fn segment<'a>(
        &mut self,
        id: u64,
        buf: &'a [u8],
        from: Option<u64>,
        is_last: bool,
        mut visit: impl FnMut(u64, Record<'a>),
    ) -> SegmentScan {
        let mut corrupt = vec![];
        let whole = |kind, offset: u64, reason: String| Corrupt {
            kind,
            offset,
            len: (buf.len() as u64).saturating_sub(offset),
            reason,
        };
        let unread = |tail, corrupt| SegmentScan {
            end: None,
            tail,
            corrupt,
        };
        match segment::decode_header(buf) {
            Ok(hid) if hid == id => {}
            Ok(hid) => {
                let reason = format!("the header says segment {hid}, the name says {id}");
                return unread(Tail::Corrupt, vec![whole(Corruption::Header, 0, reason)]);
            }
            Err(e) => {
                let rest_zero = buf
                    .get(SEGMENT_HEADER_LEN..)
                    .is_none_or(|r| r.iter().all(|&b| b == 0));
                if is_last && rest_zero {
                    return unread(Tail::CreationCutShort, vec![]);
                }
                let reason = format!("segment header: {e}");
                return unread(Tail::Corrupt, vec![whole(Corruption::Header, 0, reason)]);
            }
        }
        let mut off = from.map_or(SEGMENT_HEADER_LEN, |f| f as usize);
        if off > buf.len() {
            let reason = format!(
                "the checkpoint replays from offset {off} but the file has only {} bytes (was it truncated?)",
                buf.len()
            );
            return unread(
                Tail::Corrupt,
                vec![whole(Corruption::PastEnd, off as u64, reason)],
            );
        }
        loop {
            let rest = &buf[off..];
            let (kind, bad) = match record::decode(id, rest) {
                ScanOutcome::Record(r) => match self.accept(&r) {
                    Ok(rec) => {
                        visit(off as u64, rec);
                        off += r.total_len;
                        continue;
                    }
                    Err(e @ Rejected::Backwards(_)) => {
                        // Written whole (its CRC verifies), so never a torn tail: corruption
                        // of exactly this record, and the scan goes on after it.
                        corrupt.push(Corrupt {
                            kind: Corruption::SeqBackwards,
                            offset: off as u64,
                            len: r.total_len as u64,
                            reason: e.to_string(),
                        });
                        off += r.total_len;
                        continue;
                    }
                    Err(Rejected::Malformed(e)) => (Corruption::Record, e),
                },
                ScanOutcome::End if rest.iter().all(|&b| b == 0) => {
                    return SegmentScan {
                        end: Some(off as u64),
                        tail: Tail::Zeros,
                        corrupt,
                    };
                }
                ScanOutcome::End => (
                    Corruption::Record,
                    FormatError::Malformed {
                        what: "segment",
                        detail: "non-zero bytes after the end marker".into(),
                    },
                ),
                ScanOutcome::Bad(e) => (Corruption::Record, e),
            };
            let next = find_next_valid(id, buf, off + 1);
            if next.is_none() && is_last {
                let tail = if former_life(buf, off) {
                    Tail::OldBytes {
                        reason: format!(
                            "old bytes of a reused segment file after its last record ({bad})"
                        ),
                    }
                } else {
                    Tail::Torn {
                        reason: bad.to_string(),
                    }
                };
                return SegmentScan {
                    end: Some(off as u64),
                    tail,
                    corrupt,
                };
            }
            let end = next.unwrap_or(buf.len());
            corrupt.push(Corrupt {
                kind,
                offset: off as u64,
                len: (end - off) as u64,
                reason: format!("{bad} ({} bytes up to the next valid record)", end - off),
            });
            match next {
                Some(n) => off = n,
                None => {
                    return SegmentScan {
                        end: Some(off as u64),
                        tail: Tail::Corrupt,
                        corrupt,
                    }
                }
            }
        }
    }

    /// Checks a record that verified and advances the expected seq past a put batch.
    fn accept<'a>(&mut self, r: &RecordRef<'a>) -> Result<Record<'a>, Rejected> {
        match r.kind {
            RecordKind::PutBatch => {
                let batch = PutBatchView::parse(r.payload).map_err(Rejected::Malformed)?;
                if self.deep {
                    batch.validate().map_err(Rejected::Malformed)?;
                }
                let gap = match self.next_seq {
                    Some(next) if batch.first_seq < next => {
                        return Err(Rejected::Backwards(format!(
                            "seq {} goes backwards (expected {next} or more)",
                            batch.first_seq
                        )));
                    }
                    Some(next) => batch.first_seq - next,
                    None => 0,
                };
                self.next_seq = Some(batch.first_seq + u64::from(batch.count));
                Ok(Record::Put { batch, gap })
            }
            RecordKind::TakeCommit => decode_take_commit(r.payload)
                .map(|(ranges, body_bytes)| Record::Take { ranges, body_bytes })
                .map_err(Rejected::Malformed),
        }
    }
}

/// Why a record that verified is not accepted.
#[derive(Debug)]
enum Rejected {
    Malformed(FormatError),
    Backwards(String),
}

impl std::fmt::Display for Rejected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rejected::Malformed(e) => e.fmt(f),
            Rejected::Backwards(s) => f.write_str(s),
        }
    }
}

/// Whether the bytes from `off` (the last segment's tail, where nothing verifies) hold records
/// of the file's former life rather than one record cut short: something shaped like a record
/// (a plausible header whose payload fits) after the bad record at `off`. A torn write leaves
/// at most one such shape, the record it cut short; a reused spare leaves its old records.
/// A best guess, for the message only: both are truncated alike.
fn former_life(buf: &[u8], off: usize) -> bool {
    let after = match find_record_shape(buf, off) {
        Some(at) if at == off => record::shape_len(&buf[off..]).map_or(off + 1, |l| off + l),
        _ => off + 1,
    };
    find_record_shape(buf, after).is_some()
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
            Err(e) => {
                return Err(ChannelError::Io {
                    channel: channel.to_string(),
                    file: dir.clone(),
                    operation: "listing",
                    cause: e.to_string(),
                })
            }
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

/// Where a corrupt region of segment `id` at `offset` is copied: beside the segment, in
/// `quarantine/seg-<id>-<offset>.bin`. Its existence also marks the region as skipped for
/// good: recovery and `verify` accept the loss an earlier repair reported.
pub(crate) fn quarantine_path(segment_path: &Path, id: u64, offset: u64) -> PathBuf {
    segment_path
        .parent()
        .unwrap_or(Path::new("."))
        .join("quarantine")
        .join(format!("seg-{id:020}-{offset}.bin"))
}

/// Whether an earlier repair quarantined the region of segment `id` at `offset`.
pub(crate) fn is_quarantined(fs: &Arc<dyn Vfs>, segment_path: &Path, id: u64, offset: u64) -> bool {
    fs.open(&quarantine_path(segment_path, id, offset), false)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::record::encode_take_commit;
    use crate::format::PutBatchEncoder;

    fn put(id: u64, first_seq: u64, n: u32) -> Vec<u8> {
        let mut enc = PutBatchEncoder::new();
        let headers = crate::event::Headers::new();
        for i in 0..n {
            enc.push(&headers, &[i as u8; 40]).expect("push");
        }
        enc.finish(id, first_seq, 1).to_vec()
    }

    fn segment_bytes(id: u64, records: &[Vec<u8>], zeros: usize) -> Vec<u8> {
        let mut b = segment::encode_header(id).to_vec();
        for r in records {
            b.extend_from_slice(r);
        }
        b.extend(std::iter::repeat_n(0u8, zeros));
        b
    }

    /// Scans `buf` as segment `id` and returns the offsets of its valid records.
    fn scan(id: u64, buf: &[u8], is_last: bool) -> (Vec<u64>, SegmentScan) {
        let mut seen = vec![];
        let s = Scanner::new(None, true).segment(id, buf, None, is_last, |o, _| seen.push(o));
        (seen, s)
    }

    #[test]
    fn clean_segment_ends_in_zeros() {
        let b = segment_bytes(3, &[put(3, 0, 2), put(3, 2, 1)], 100);
        let (seen, s) = scan(3, &b, true);
        assert_eq!(seen.len(), 2);
        assert_eq!(s.tail, Tail::Zeros);
        assert!(s.corrupt.is_empty());
        assert_eq!(s.end, Some((b.len() - 100) as u64));
    }

    #[test]
    fn a_cut_record_is_a_torn_tail_only_in_the_last_segment() {
        let mut b = segment_bytes(3, &[put(3, 0, 2), put(3, 2, 3)], 0);
        b.truncate(b.len() - 10);
        let at = (SEGMENT_HEADER_LEN + put(3, 0, 2).len()) as u64;
        let (_, s) = scan(3, &b, true);
        assert!(matches!(s.tail, Tail::Torn { .. }), "{s:?}");
        assert_eq!(s.end, Some(at));
        let (_, s) = scan(3, &b, false);
        assert_eq!(s.tail, Tail::Corrupt);
        assert_eq!(s.corrupt.len(), 1);
        assert_eq!(
            (s.corrupt[0].kind, s.corrupt[0].offset),
            (Corruption::Record, at)
        );
    }

    #[test]
    fn old_records_of_a_reused_file_after_the_last_record_are_old_bytes() {
        // Segment 9 reused the file of segment 4: after 9's record, 4's records remain.
        let mine = put(9, 50, 1);
        let mut b = segment_bytes(9, std::slice::from_ref(&mine), 0);
        b.extend_from_slice(&put(4, 10, 3)[7..]);
        b.extend_from_slice(&put(4, 13, 3));
        b.extend_from_slice(&put(4, 16, 3));
        let (seen, s) = scan(9, &b, true);
        assert_eq!(seen, vec![SEGMENT_HEADER_LEN as u64]);
        assert!(matches!(s.tail, Tail::OldBytes { .. }), "{s:?}");
        assert_eq!(s.end, Some((SEGMENT_HEADER_LEN + mine.len()) as u64));
    }

    #[test]
    fn a_seq_going_backwards_is_corruption_even_at_the_end() {
        let b = segment_bytes(3, &[put(3, 10, 2), put(3, 5, 1)], 64);
        let (seen, s) = scan(3, &b, true);
        assert_eq!(seen.len(), 1);
        assert_eq!(s.tail, Tail::Zeros);
        assert_eq!(s.corrupt.len(), 1);
        assert_eq!(s.corrupt[0].kind, Corruption::SeqBackwards);
        assert!(s.corrupt[0].reason.contains("goes backwards"), "{s:?}");
    }

    #[test]
    fn a_bad_header_with_only_zeros_after_it_is_a_creation_cut_short_in_the_last_segment() {
        let b = vec![0u8; 4096];
        let (_, s) = scan(3, &b, true);
        assert_eq!(s.tail, Tail::CreationCutShort);
        assert!(s.corrupt.is_empty());
        let (_, s) = scan(3, &b, false);
        assert_eq!(s.tail, Tail::Corrupt);
        assert_eq!(s.corrupt[0].kind, Corruption::Header);
        let (_, s) = scan(4, &segment_bytes(3, &[], 10), true);
        assert_eq!(s.corrupt[0].kind, Corruption::Header);
    }

    #[test]
    fn a_bad_record_followed_by_valid_ones_is_corruption_and_the_scan_resumes() {
        let first = put(3, 0, 2);
        let mut b = segment_bytes(3, &[first.clone(), put(3, 2, 1)], 0);
        let mut take = vec![];
        encode_take_commit(3, &[(0, 2)], 80, &mut take);
        b.extend_from_slice(&take);
        b[SEGMENT_HEADER_LEN + 20] ^= 0x10;
        let (seen, s) = scan(3, &b, true);
        assert_eq!(seen.len(), 2, "the second put and the take");
        assert_eq!(s.corrupt.len(), 1);
        assert_eq!(s.corrupt[0].offset, SEGMENT_HEADER_LEN as u64);
        assert_eq!(s.corrupt[0].len, first.len() as u64);
        assert_eq!(s.tail, Tail::Zeros);
    }

    #[test]
    fn a_start_past_the_end_is_corruption() {
        let b = segment_bytes(3, &[put(3, 0, 1)], 0);
        let mut sc = Scanner::new(Some(0), false);
        let s = sc.segment(3, &b, Some(b.len() as u64 + 1), true, |_, _| {});
        assert_eq!(s.corrupt[0].kind, Corruption::PastEnd);
        assert_eq!(s.end, None);
    }
}
