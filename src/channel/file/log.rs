//! The log's files: segment handles (for reading records back) and the writer's state (the
//! active segment, where the next record goes, and the records written but not yet applied).
//!
//! Invariants:
//! - Only the active segment is written, only at `write_off`, only under the log lock; a
//!   segment is sealed (synced, trimmed to its data, read through mmap from then on) before
//!   the next one is created, so sealed segments never change.
//! - A new segment's header is synced and its directory entry made durable before any record
//!   is written to it.
//! - Space is preallocated ahead of the writer, so a record write never extends the file
//!   (fdatasync then has no size metadata to flush) and `ENOSPC` surfaces at allocation, before
//!   anything was written, where it can be refused without poisoning the channel.

use std::collections::VecDeque;
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;

use crate::format::record::{MAX_RECORD_PAYLOAD, RECORD_HEADER_LEN};
use crate::format::{BatchEntry, Position};
use crate::io::{Mapped, VFile};

/// How far ahead of the writer space is reserved.
pub(crate) const PREALLOC_STEP: u64 = 8 * 1024 * 1024;

/// Readers of a sealed segment hand back the mapped pages more than this far behind the record
/// they read, so a reader walking a large segment does not keep all of it resident.
const RELEASE_STEP: usize = 4 << 20;

/// Lets a `Bytes` borrow an mmap without copying.
struct MapOwner(Mapped);

impl AsRef<[u8]> for MapOwner {
    fn as_ref(&self) -> &[u8] {
        (*self.0).as_ref()
    }
}

/// One segment file, open for reading (and, while active, for writing).
pub(crate) struct SegmentHandle {
    pub(crate) id: u64,
    pub(crate) path: PathBuf,
    pub(crate) file: Arc<dyn VFile>,
    sealed: AtomicBool,
    map: Mutex<Option<Mapped>>,
    /// Bytes of the mapping below this offset were released (see [`RELEASE_STEP`]).
    released: AtomicUsize,
}

impl std::fmt::Debug for SegmentHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SegmentHandle")
            .field("id", &self.id)
            .field("path", &self.path)
            .field("sealed", &self.sealed)
            .finish()
    }
}

impl SegmentHandle {
    pub(crate) fn new(id: u64, path: PathBuf, file: Arc<dyn VFile>, sealed: bool) -> Self {
        SegmentHandle {
            id,
            path,
            file,
            sealed: AtomicBool::new(sealed),
            map: Mutex::new(None),
            released: AtomicUsize::new(0),
        }
    }

    /// From now on reads go through an mmap of the (no longer growing) file.
    pub(crate) fn seal(&self) {
        self.sealed.store(true, Ordering::Release);
    }

    /// The bytes of the record at `offset` (header and payload), not yet verified: the caller
    /// checks them with `format::record::decode`.
    pub(crate) fn read_record(&self, offset: u32) -> io::Result<Bytes> {
        let offset = offset as usize;
        if self.sealed.load(Ordering::Acquire) {
            let map = {
                let mut m = self.map.lock();
                match &*m {
                    Some(map) => map.clone(),
                    None => {
                        let map = self.file.map()?;
                        *m = Some(map.clone());
                        map
                    }
                }
            };
            let all: &[u8] = (*map).as_ref();
            let len = record_len_at(all, offset).ok_or_else(|| self.out_of_bounds(offset))?;
            // Takers walk a segment forward: release whole steps behind this record. A record
            // read again later (a rollback, a slower taker) is simply mapped back in.
            let behind = offset.saturating_sub(RELEASE_STEP) / RELEASE_STEP * RELEASE_STEP;
            let done = self.released.load(Ordering::Relaxed);
            if behind > done
                && self
                    .released
                    .compare_exchange(done, behind, Ordering::Relaxed, Ordering::Relaxed)
                    .is_ok()
            {
                map.release(done..behind);
            }
            return Ok(Bytes::from_owner(MapOwner(map)).slice(offset..offset + len));
        }
        let mut header = [0u8; RECORD_HEADER_LEN];
        self.file.read_at(&mut header, offset as u64)?;
        let payload = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
        let file_len = self.file.len()?;
        let len = RECORD_HEADER_LEN + payload as usize;
        if payload > MAX_RECORD_PAYLOAD || (offset + len) as u64 > file_len {
            return Err(self.out_of_bounds(offset));
        }
        let mut buf = vec![0u8; len];
        self.file.read_at(&mut buf, offset as u64)?;
        Ok(Bytes::from(buf))
    }

    fn out_of_bounds(&self, offset: usize) -> io::Error {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "record at offset {offset} of {} runs past the end of the file",
                self.path.display()
            ),
        )
    }
}

/// Length of the record at `offset` of `all`, if it fits.
fn record_len_at(all: &[u8], offset: usize) -> Option<usize> {
    let h = all.get(offset..offset.checked_add(4)?)?;
    let payload = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
    if payload > MAX_RECORD_PAYLOAD {
        return None;
    }
    let len = RECORD_HEADER_LEN + payload as usize;
    (offset.checked_add(len)? <= all.len()).then_some(len)
}

/// A record written but not yet applied to the queue (it waits for its sync).
#[derive(Debug)]
pub(crate) struct Pending {
    pub(crate) end: Position,
    pub(crate) op: PendingOp,
}

#[derive(Debug)]
pub(crate) enum PendingOp {
    Put {
        segment: u64,
        entry: BatchEntry,
        body_bytes: u64,
        record: Bytes,
    },
    Take {
        ranges: Vec<(u64, u64)>,
        body_bytes: u64,
        /// Events in `ranges`, already counted in `Queue::pending_taken`.
        events: u64,
    },
}

/// Free-space bookkeeping for `minimumRequiredSpace`, so that a put does not call statvfs.
#[derive(Debug)]
pub(crate) struct FreeSpace {
    pub(crate) checked_at: std::time::Instant,
    pub(crate) free: u64,
    pub(crate) written_since: u64,
}

/// The writer's state, behind the log lock.
#[derive(Debug)]
pub(crate) struct LogWriter {
    pub(crate) active: Arc<SegmentHandle>,
    pub(crate) write_off: u64,
    pub(crate) alloc_end: u64,
    pub(crate) next_seq: u64,
    pub(crate) pending: VecDeque<Pending>,
    pub(crate) free: FreeSpace,
}

impl LogWriter {
    /// Where the next record will start.
    pub(crate) fn position(&self) -> Position {
        Position {
            segment: self.active.id,
            offset: self.write_off,
        }
    }

    /// Pending records up to `upto`, in log order.
    pub(crate) fn drain_upto(&mut self, upto: Position) -> Vec<Pending> {
        let n = self.pending.partition_point(|p| p.end <= upto);
        self.pending.drain(..n).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_len_at_refuses_what_does_not_fit() {
        let mut buf = vec![0u8; 64];
        buf[0..4].copy_from_slice(&10u32.to_le_bytes());
        assert_eq!(record_len_at(&buf, 0), Some(19));
        buf[0..4].copy_from_slice(&100u32.to_le_bytes());
        assert_eq!(record_len_at(&buf, 0), None);
        assert_eq!(record_len_at(&buf, 62), None);
        assert_eq!(record_len_at(&buf, usize::MAX - 1), None);
    }

    /// Reading a sealed segment forward releases the mapped pages behind the reader; reading
    /// them again (a rollback) still gives the same bytes.
    #[test]
    fn released_pages_read_back_the_same_bytes() {
        use crate::io::Vfs;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("seg");
        let file = crate::io::std_fs::StdFs.open(&path, true).expect("open");
        // 24 MiB of records of 64 KiB payload, each filled with its own index.
        let payload = 64 * 1024;
        let n = 24 * 16;
        let mut data = Vec::with_capacity(n * (RECORD_HEADER_LEN + payload));
        for i in 0..n {
            data.extend_from_slice(&(payload as u32).to_le_bytes());
            data.extend_from_slice(&[0u8; RECORD_HEADER_LEN - 4]);
            data.extend(std::iter::repeat_n(i as u8, payload));
        }
        file.write_at(&data, 0).expect("write");
        let seg = SegmentHandle::new(1, path, file, true);
        let offsets: Vec<u32> = (0..n)
            .map(|i| (i * (RECORD_HEADER_LEN + payload)) as u32)
            .collect();
        let check = |i: usize| {
            let rec = seg.read_record(offsets[i]).expect("read");
            assert_eq!(rec.len(), RECORD_HEADER_LEN + payload);
            assert!(
                rec[RECORD_HEADER_LEN..].iter().all(|&b| b == i as u8),
                "record {i}"
            );
            rec
        };
        let first = check(0);
        for i in 0..n {
            check(i);
        }
        assert!(
            seg.released.load(Ordering::Relaxed) >= 16 << 20,
            "nothing released"
        );
        // A rollback reads from the start again; a record held across the release too.
        for i in 0..n {
            check(i);
        }
        assert!(first[RECORD_HEADER_LEN..].iter().all(|&b| b == 0));
    }
}
