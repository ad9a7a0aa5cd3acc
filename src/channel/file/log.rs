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

use super::lock_order::{Rank, RankedMutex};
use crate::format::record::{MAX_RECORD_PAYLOAD, RECORD_HEADER_LEN};
use crate::format::{BatchEntry, Position};
use crate::io::{Mapped, VFile, DIRECT_ALIGN};

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
    map: RankedMutex<Option<Mapped>>,
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
            map: RankedMutex::new(Rank::SegmentMap, None),
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

/// First capacity of a stage buffer: a group of four 100-event batches of 1 KiB fits.
const STAGE_INITIAL: usize = 1 << 20;

/// Largest stage buffer kept for reuse after a group larger than usual.
const STAGE_KEEP: usize = 16 << 20;

/// Under `fsync = every-commit`, records wait here in memory, in log order, until the
/// group-commit leader writes all of them with one [`VFile::write_direct`] of whole blocks
/// and syncs. One write per group instead of one per record, and (std backend) no page-cache
/// copy, cost less than the page cache's writeback at fdatasync.
///
/// Invariants: the stage holds the active segment's bytes from `base` (a multiple of
/// [`DIRECT_ALIGN`]) to `base + len`, which is the writer's `write_off`; bytes below
/// `unwritten` are already in the file. The block holding `write_off` is written again, whole,
/// by each later group (with the same leading bytes), as databases' logs rewrite their last
/// page; the padding after `write_off` is zeros, which recovery reads as the end of the log,
/// exactly like preallocated space.
#[derive(Debug)]
pub(crate) struct Stage {
    /// Backing memory; `mem[start..]` begins on a `DIRECT_ALIGN` boundary and its length is a
    /// multiple of `DIRECT_ALIGN`, so the padded tail always fits.
    mem: Vec<u8>,
    start: usize,
    base: u64,
    len: usize,
    unwritten: u64,
}

/// Whole blocks taken from a [`Stage`] for one write.
#[derive(Debug)]
pub(crate) struct StagedWrite {
    mem: Vec<u8>,
    start: usize,
    len: usize,
    /// File offset of the first byte.
    pub(crate) offset: u64,
}

impl StagedWrite {
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.mem[self.start..self.start + self.len]
    }

    /// The buffer, for the next stage.
    pub(crate) fn into_buffer(self) -> Vec<u8> {
        self.mem
    }
}

fn align_down(x: u64) -> u64 {
    x / DIRECT_ALIGN as u64 * DIRECT_ALIGN as u64
}

fn align_up_usize(x: usize) -> usize {
    x.div_ceil(DIRECT_ALIGN) * DIRECT_ALIGN
}

/// A zeroed buffer with at least `capacity` bytes (rounded up to whole blocks) starting on a
/// block boundary, and where that boundary is.
pub(crate) fn aligned_buffer(capacity: usize) -> (Vec<u8>, usize) {
    let capacity = align_up_usize(capacity.max(DIRECT_ALIGN));
    let mem = vec![0u8; capacity + DIRECT_ALIGN];
    let misalign = mem.as_ptr() as usize % DIRECT_ALIGN;
    let start = (DIRECT_ALIGN - misalign) % DIRECT_ALIGN;
    (mem, start)
}

impl Stage {
    /// A stage for a segment whose bytes `[0, prefix.len())` are already in the file (the
    /// segment header).
    pub(crate) fn new(prefix: &[u8]) -> Stage {
        let (mem, start) = aligned_buffer(STAGE_INITIAL.max(prefix.len()));
        let mut stage = Stage {
            mem,
            start,
            base: 0,
            len: 0,
            unwritten: 0,
        };
        stage.restart(0, prefix);
        stage
    }

    /// Starts over at a block boundary `base` with `prefix`, bytes the file already holds.
    fn restart(&mut self, base: u64, prefix: &[u8]) {
        debug_assert_eq!(base % DIRECT_ALIGN as u64, 0);
        self.grow_to(prefix.len());
        self.base = base;
        self.mem[self.start..self.start + prefix.len()].copy_from_slice(prefix);
        self.len = prefix.len();
        self.unwritten = base + prefix.len() as u64;
    }

    /// Starts the next segment (its header, already written, is `prefix`).
    pub(crate) fn restart_segment(&mut self, prefix: &[u8]) {
        self.restart(0, prefix);
    }

    /// Where the next staged byte goes in the file.
    pub(crate) fn end(&self) -> u64 {
        self.base + self.len as u64
    }

    fn capacity(&self) -> usize {
        self.mem.len() - self.start - (self.mem.len() - self.start) % DIRECT_ALIGN
    }

    fn grow_to(&mut self, need: usize) {
        if need <= self.capacity() {
            return;
        }
        let (mut mem, start) = aligned_buffer(need.max(self.capacity() * 2));
        mem[start..start + self.len].copy_from_slice(&self.mem[self.start..self.start + self.len]);
        self.mem = mem;
        self.start = start;
    }

    /// Appends a record's bytes (the caller writes at `end()`).
    pub(crate) fn push(&mut self, bytes: &[u8]) {
        let need = self.len + bytes.len();
        self.grow_to(need);
        self.mem[self.start + self.len..self.start + need].copy_from_slice(bytes);
        self.len = need;
    }

    /// Everything not yet in the file, as whole blocks with zero padding, or `None` when
    /// nothing new was staged. The stage goes on in `spare` (or a new buffer) with a copy of
    /// the partial last block, which the next write rewrites.
    fn take(&mut self, spare: Option<Vec<u8>>) -> Option<StagedWrite> {
        let end = self.end();
        if !self.has_unwritten() {
            return None;
        }
        let padded = align_up_usize(self.len);
        self.mem[self.start + self.len..self.start + padded].fill(0);
        let (mem, start) = match spare {
            Some(mem) => {
                let start = (DIRECT_ALIGN - mem.as_ptr() as usize % DIRECT_ALIGN) % DIRECT_ALIGN;
                (mem, start)
            }
            None => aligned_buffer(self.capacity().clamp(STAGE_INITIAL, STAGE_KEEP)),
        };
        let write = StagedWrite {
            mem: std::mem::replace(&mut self.mem, mem),
            start: std::mem::replace(&mut self.start, start),
            len: padded,
            offset: self.base,
        };
        let staged = self.len;
        self.len = 0;
        let tail_base = align_down(end);
        let from = write.start + (tail_base - write.offset) as usize;
        self.restart(tail_base, &write.mem[from..write.start + staged]);
        Some(write)
    }

    fn has_unwritten(&self) -> bool {
        self.end() != self.unwritten
    }
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
    /// Records not yet in the file (`fsync = every-commit` with direct I/O; otherwise
    /// `None` and each record is written as it commits).
    pub(crate) stage: Option<Stage>,
    /// Buffers of finished staged writes, for the next ones (two leaders can each hold one).
    pub(crate) spare: Vec<Vec<u8>>,
    /// Copies of staged take records (present whenever `stage` is, once the channel is open).
    pub(crate) journal: Option<super::journal::TakeJournal>,
}

impl LogWriter {
    /// Where the next record will start.
    pub(crate) fn position(&self) -> Position {
        Position {
            segment: self.active.id,
            offset: self.write_off,
        }
    }

    /// Forgets the pending record ending at `end` (its commit failed); false if it is no longer
    /// pending (a leader applied it).
    pub(crate) fn remove_pending(&mut self, end: Position) -> bool {
        let i = self.pending.partition_point(|p| p.end < end);
        if self.pending.get(i).is_some_and(|p| p.end == end) {
            self.pending.remove(i);
            return true;
        }
        false
    }

    /// Everything staged and not yet written, as one block write (see [`Stage::take`]), on a
    /// recycled buffer when there is one; `None` without a stage or with nothing new.
    pub(crate) fn take_staged(&mut self) -> Option<StagedWrite> {
        let stage = self.stage.as_mut()?;
        if !stage.has_unwritten() {
            return None;
        }
        stage.take(self.spare.pop())
    }

    /// Keeps a finished write's buffer for a later [`LogWriter::take_staged`]: two at most
    /// (two leaders can each hold one), and none that grew past what is worth keeping.
    pub(crate) fn recycle(&mut self, w: StagedWrite) {
        let buf = w.into_buffer();
        if self.spare.len() < 2 && buf.len() <= STAGE_KEEP + DIRECT_ALIGN {
            self.spare.push(buf);
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

    /// Staged writes are whole aligned blocks holding exactly the log's bytes, the partial last
    /// block is written again (same leading bytes) by the next write, and a stage that grows
    /// past its buffer keeps every byte.
    #[test]
    fn staged_writes_are_whole_blocks_that_replay_the_log_exactly() {
        let header = [7u8; 32];
        let mut stage = Stage::new(&header);
        assert!(stage.take(None).is_none(), "nothing new to write");
        let mut file = header.to_vec();
        let mut spare: Option<Vec<u8>> = None;
        // Records of awkward sizes, including one larger than the first buffer.
        for (i, len) in [100usize, 4000, 5000, 3 << 20, 1, 9000]
            .into_iter()
            .enumerate()
        {
            let rec = vec![i as u8 + 1; len];
            assert_eq!(stage.end(), file.len() as u64);
            stage.push(&rec);
            file.extend_from_slice(&rec);
            let w = stage.take(spare.take()).expect("new bytes to write");
            let bytes = w.bytes();
            assert_eq!(w.offset % DIRECT_ALIGN as u64, 0);
            assert_eq!(bytes.len() % DIRECT_ALIGN, 0);
            assert_eq!(bytes.as_ptr() as usize % DIRECT_ALIGN, 0);
            let at = w.offset as usize;
            let real = file.len() - at;
            assert_eq!(&bytes[..real], &file[at..], "record {i}");
            assert!(bytes[real..].iter().all(|&b| b == 0), "padding is zeros");
            assert!(at <= file.len() && file.len() - at < bytes.len() + 1);
            spare = Some(w.into_buffer());
        }
    }

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
