//! The take path: take transactions, reading records back (the recent-record cache, pread of
//! the active segment, mmap of a sealed one), and the buffer pool through which a cached
//! record's buffer goes to the next put transaction.
//!
//! Invariants:
//! - A record read from disk is verified (CRC, and the seqs the index expects) before any of
//!   its events is handed out; a bad one fails the take with the file and offset, or, under
//!   `corruptionPolicy = skip`, its events are removed durably and counted as lost.
//! - The cache holds at most [`RECENT_RECORDS_BYTES`]; its copies are the very buffers that
//!   were written, so they are not verified again.
//! - A failed take returns its seqs to the head of the queue.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::lock_order::{Rank, RankedMutex};
use bytes::Bytes;

use super::{ChannelError, CorruptionPolicy, Inner};
use crate::channel::{ChannelDirs, TakeTransaction};
use crate::event::{Event, Headers};
use crate::format::record::{self, RECORD_HEADER_LEN};
use crate::format::{segment, BatchEntry, PutBatchView, ScanOutcome};

/// Bytes of recent put records kept in memory so that takers right behind the writers do not
/// read them back from disk.
const RECENT_RECORDS_BYTES: usize = 64 * 1024 * 1024;

/// Record buffers kept for reuse, and the largest one worth keeping. A put record is built in
/// one buffer that then lives on (as the cached record) until its last reader drops it;
/// handing it back then, instead of freeing it, spares the next batch growing a fresh buffer
/// (a realloc copy per doubling and a zeroed page per 4 KiB: 15-20% of the put path's CPU).
const POOLED_BUFFERS: usize = 32;
const POOLED_BUFFER_MAX: usize = 4 << 20;

/// See [`POOLED_BUFFERS`].
pub(super) struct BufPool(RankedMutex<Vec<Vec<u8>>>);

impl Default for BufPool {
    fn default() -> Self {
        BufPool(RankedMutex::new(Rank::BufPool, Vec::new()))
    }
}

impl BufPool {
    pub(super) fn get(&self) -> Vec<u8> {
        self.0.lock().pop().unwrap_or_default()
    }

    pub(super) fn give(&self, buf: Vec<u8>) {
        if buf.capacity() == 0 || buf.capacity() > POOLED_BUFFER_MAX {
            return;
        }
        let mut pool = self.0.lock();
        if pool.len() < POOLED_BUFFERS {
            pool.push(buf);
        }
    }
}

/// A committed record's buffer behind a `Bytes`: back to the pool when the last `Bytes`
/// referring to it is dropped.
pub(super) struct PooledRecord {
    pub(super) buf: Vec<u8>,
    pub(super) pool: Arc<BufPool>,
}

impl AsRef<[u8]> for PooledRecord {
    fn as_ref(&self) -> &[u8] {
        &self.buf
    }
}

impl Drop for PooledRecord {
    fn drop(&mut self) {
        self.pool.give(std::mem::take(&mut self.buf));
    }
}

/// Recently written put records by (segment, offset), oldest evicted first.
#[derive(Default)]
pub(super) struct RecentRecords {
    pub(super) map: HashMap<(u64, u32), Bytes>,
    pub(super) order: VecDeque<(u64, u32)>,
    pub(super) bytes: usize,
}

impl RecentRecords {
    pub(super) fn insert(&mut self, key: (u64, u32), rec: Bytes) {
        self.bytes += rec.len();
        self.map.insert(key, rec);
        self.order.push_back(key);
        while self.bytes > RECENT_RECORDS_BYTES {
            let Some(old) = self.order.pop_front() else {
                break;
            };
            if let Some(r) = self.map.remove(&old) {
                self.bytes -= r.len();
            }
        }
    }
}

impl Inner {
    pub(super) fn return_taken(&self, ranges: &[(u64, u64)]) {
        if ranges.is_empty() {
            return;
        }
        self.queue.lock().return_taken(ranges);
        self.available_cv.notify_all();
    }

    /// Reads the events of `[s, e)` (all in one batch entry of `segment`) into `out`.
    pub(super) fn read_events(
        &self,
        segment: u64,
        entry: BatchEntry,
        s: u64,
        e: u64,
        out: &mut Vec<Event>,
    ) -> Result<u64, ChannelError> {
        let cached = self
            .recent
            .lock()
            .map
            .get(&(segment, entry.offset))
            .cloned();
        let handle = self.segments.read().get(&segment).cloned();
        let path = handle.as_ref().map_or_else(
            || PathBuf::from(segment::file_name(segment)),
            |h| h.path.clone(),
        );
        let corrupt = |reason: String| ChannelError::CorruptTake {
            channel: self.name.clone(),
            file: path.clone(),
            offset: entry.offset.into(),
            reason,
            dirs: Box::new(ChannelDirs {
                checkpoint_dir: self.cfg.checkpoint_dir.clone(),
                data_dirs: self.cfg.data_dirs.clone(),
            }),
        };
        let from_disk = cached.is_none();
        let rec = match cached {
            Some(r) => r,
            None => {
                let h = handle.ok_or_else(|| corrupt("the segment file is gone".into()))?;
                h.read_record(entry.offset).map_err(|e| {
                    // A length field damaged to run past the file's end is corruption too.
                    if e.kind() == std::io::ErrorKind::InvalidData {
                        corrupt(e.to_string())
                    } else {
                        ChannelError::Io {
                            channel: self.name.clone(),
                            file: h.path.clone(),
                            operation: "reading",
                            cause: e.to_string(),
                        }
                    }
                })?
            }
        };
        // Bytes read back from disk are verified; the cached copy is the very buffer that was
        // written, so its CRC would only re-check our own memory.
        let payload = if from_disk {
            match record::decode(segment, &rec) {
                ScanOutcome::Record(r) => r.payload,
                ScanOutcome::End => return Err(corrupt("expected a record, found zeros".into())),
                ScanOutcome::Bad(err) => return Err(corrupt(err.to_string())),
            }
        } else {
            rec.get(RECORD_HEADER_LEN..)
                .ok_or_else(|| corrupt("cached record shorter than its header".into()))?
        };
        let view = PutBatchView::parse(payload).map_err(|e| corrupt(e.to_string()))?;
        if view.first_seq != entry.first_seq || view.count != entry.count {
            return Err(corrupt(format!(
                "record holds seqs {}+{}, the index expected {}+{}",
                view.first_seq, view.count, entry.first_seq, entry.count
            )));
        }
        let mut bytes = 0;
        let skip = (s - entry.first_seq) as usize;
        for ev in view.events().skip(skip).take((e - s) as usize) {
            let ev = ev.map_err(|e| corrupt(e.to_string()))?;
            let start = RECORD_HEADER_LEN + ev.body_offset;
            let body = rec.slice(start..start + ev.body.len());
            bytes += body.len() as u64;
            let event = if ev.headers.is_empty() {
                Event::new(body)
            } else {
                let h: Headers = ev
                    .headers
                    .iter()
                    .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
                    .collect();
                Event::with_headers(h, body)
            };
            out.push(event);
        }
        Ok(bytes)
    }
}

pub(super) struct FileTake {
    pub(super) inner: Arc<Inner>,
    pub(super) ranges: Vec<(u64, u64)>,
    pub(super) count: usize,
    pub(super) body_bytes: u64,
}

impl TakeTransaction for FileTake {
    fn take_batch(&mut self, max: usize, out: &mut Vec<Event>) -> Result<usize, ChannelError> {
        let inner = &self.inner;
        inner.counters.take_attempts.fetch_add(1, Ordering::Relaxed);
        let room = inner.cfg.transaction_capacity - self.count;
        if room == 0 && max > 0 {
            inner.counters.take_errors.fetch_add(1, Ordering::Relaxed);
            return Err(ChannelError::TransactionFull {
                channel: inner.name.clone(),
                capacity: inner.cfg.transaction_capacity,
            });
        }
        let want = max.min(room) as u64;
        let mut got = vec![];
        let mut reads = vec![];
        {
            let mut q = inner.queue.lock();
            q.reserve_take(want, &mut got);
            for &(s, e) in &got {
                let mut at = s;
                while at < e {
                    let Some(loc) = q.locate(at) else {
                        break;
                    };
                    let stop = e.min(loc.entry.end_seq());
                    reads.push((loc.segment, loc.entry, at, stop));
                    at = stop;
                }
            }
        }
        let before = out.len();
        let mut bytes = 0;
        let mut kept: Vec<(u64, u64)> = Vec::with_capacity(reads.len());
        for &(segment, entry, s, e) in &reads {
            match inner.read_events(segment, entry, s, e, out) {
                Ok(b) => {
                    bytes += b;
                    match kept.last_mut() {
                        Some(last) if last.1 == s => last.1 = e,
                        _ => kept.push((s, e)),
                    }
                }
                Err(err @ ChannelError::CorruptTake { .. })
                    if inner.cfg.corruption_policy == CorruptionPolicy::Skip =>
                {
                    // corruptionPolicy = skip: these events cannot be read back, so they are
                    // removed for good (durably, by a take record) and counted, rather than
                    // wedging every sink behind them.
                    tracing::error!(channel = %inner.name, error = %err, events_lost = e - s, "dropping unreadable events (corruptionPolicy = skip)");
                    if let Err(e2) = inner.commit_take(&[(s, e)], 0) {
                        out.truncate(before);
                        inner.return_taken(&kept);
                        return Err(e2);
                    }
                    inner
                        .counters
                        .events_lost
                        .fetch_add(e - s, Ordering::Relaxed);
                }
                Err(err) => {
                    out.truncate(before);
                    inner.return_taken(&got);
                    inner.counters.take_errors.fetch_add(1, Ordering::Relaxed);
                    return Err(err);
                }
            }
        }
        let n = out.len() - before;
        for (s, e) in kept {
            match self.ranges.last_mut() {
                Some(last) if last.1 == s => last.1 = e,
                _ => self.ranges.push((s, e)),
            }
        }
        self.count += n;
        self.body_bytes += bytes;
        inner
            .counters
            .take_successes
            .fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }

    fn len(&self) -> usize {
        self.count
    }

    fn commit(mut self: Box<Self>) -> Result<(), ChannelError> {
        let ranges = std::mem::take(&mut self.ranges);
        let r = self.inner.commit_take(&ranges, self.body_bytes);
        if r.is_err() {
            self.inner
                .counters
                .take_errors
                .fetch_add(1, Ordering::Relaxed);
        }
        r
    }

    fn rollback(self: Box<Self>) {}
}

impl Drop for FileTake {
    fn drop(&mut self) {
        // Rollback, explicit or by drop: the events go back to the head of the queue.
        let ranges = std::mem::take(&mut self.ranges);
        self.inner.return_taken(&ranges);
    }
}
