//! The commit path: put transactions, and the commit of both kinds of record.
//!
//! A put reserves room (`capacity`, `byteCapacity`), appends its record under the log lock (to
//! the stage, or straight into the file) and waits in group commit; the sync's leader writes
//! the stage as whole blocks, syncs, and applies every record that sync covered to the queue,
//! in log order, before anyone is woken. A take commit appends its TakeCommit record (a copy
//! to the take journal when staged) and returns without waiting for the disk.
//!
//! Invariants:
//! - Durable before visible: a put's events reach the queue only once a sync covers them
//!   (under the relaxed fsync policies, at once, still in log order under the log lock).
//! - A failed write or sync poisons the channel; nothing after it is reported durable.
//! - Room reserved by a put is given back exactly once: by the apply or by the failed commit.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use super::log::{LogWriter, Pending, PendingOp, SegmentHandle, StagedWrite};
use super::read::PooledRecord;
use super::{journal, now_ms, ChannelError, FsyncPolicy, Inner, WaitError};
use crate::channel::PutTransaction;
use crate::event::Event;
use crate::format::record::{self, encode_take_commit, take_commit_len};
use crate::format::{BatchEntry, Position, PutBatchEncoder};

impl Inner {
    /// Waits for room for `n` events and `bytes` body bytes, up to `keep-alive`, and
    /// reserves it.
    pub(super) fn reserve_room(&self, n: u64, bytes: u64) -> Result<(), ChannelError> {
        let deadline = Instant::now() + self.cfg.keep_alive;
        let mut q = self.queue.lock();
        loop {
            let events_ok = q.visible_size() + q.reserved_events + n <= self.cfg.capacity;
            let bytes_ok = self.cfg.byte_capacity.is_none_or(|cap| {
                q.bytes + q.reserved_bytes + bytes <= cap || q.size + q.reserved_events == 0
            });
            if events_ok && bytes_ok {
                q.reserved_events += n;
                q.reserved_bytes += bytes;
                return Ok(());
            }
            self.check_open()?;
            if q.wait_until(&self.room_cv, deadline) {
                let limit = if events_ok {
                    format!("byteCapacity {} bytes", self.cfg.byte_capacity.unwrap_or(0))
                } else {
                    format!("capacity {} events", self.cfg.capacity)
                };
                return Err(ChannelError::ChannelFull {
                    channel: self.name.clone(),
                    limit,
                    keep_alive: self.cfg.keep_alive,
                });
            }
        }
    }

    pub(super) fn release_room(&self, n: u64, bytes: u64) {
        let mut q = self.queue.lock();
        q.reserved_events -= n;
        q.reserved_bytes -= bytes;
        drop(q);
        self.room_cv.notify_all();
    }

    /// After a record was written: under every-commit it waits for its group sync; under the
    /// relaxed policies it is applied at once (still under the log lock, to keep log order).
    pub(super) fn apply_now(&self, log: &mut LogWriter) {
        let upto = log.position();
        let ops = log.drain_upto(upto);
        self.apply(ops);
    }

    /// The group-commit leader's work: sync the active segment and apply every record that
    /// sync covered, in log order, before anyone is woken.
    /// With a stage, the leader first writes every staged record (its own group's) in one
    /// block write, outside the log lock so the next group keeps staging meanwhile, then hands
    /// off leadership so the next group's write overlaps this fdatasync (one write and one
    /// flush in flight at a time measured about 1.2-1.4x a write-then-flush loop on the
    /// benchmark disk). Records are applied under the log lock, so that two leaders whose
    /// syncs finish out of order still apply in log order.
    pub(super) fn lead_sync(&self, handoff: &dyn Fn(Position)) -> Result<Position, ChannelError> {
        let (target, seg, staged, writing) = {
            let mut log = self.log.lock();
            let staged = log.take_staged();
            // Taken even with nothing to write: a take commit's write taken from the stage
            // earlier may still be running, and this sync must start after it completed.
            let writing = log.stage.is_some().then(|| self.block_write.lock());
            (log.position(), log.active.clone(), staged, writing)
        };
        if let Some(w) = &staged {
            self.write_staged(&seg, w)?;
        }
        drop(writing);
        if staged.is_some() {
            handoff(target);
        }
        if let Err(e) = seg.file.sync_data() {
            return Err(self.poison(&seg.path, "fdatasync", &e));
        }
        self.counters.fsyncs.fetch_add(1, Ordering::Relaxed);
        let mut log = self.log.lock();
        if let Some(w) = staged {
            log.recycle(w);
        }
        let ops = log.drain_upto(target);
        self.apply(ops);
        Ok(target)
    }

    /// Background sync for `fsync = interval:<ms>`.
    pub(super) fn sync_now(&self) -> Result<(), ChannelError> {
        if self.poison.get().is_some() {
            return Err(self.poisoned_error());
        }
        let seg = self.log.lock().active.clone();
        if let Err(e) = seg.file.sync_data() {
            return Err(self.poison(&seg.path, "fdatasync", &e));
        }
        self.counters.fsyncs.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    pub(super) fn apply(&self, ops: Vec<Pending>) {
        if ops.is_empty() {
            return;
        }
        let mut puts = false;
        let mut takes = false;
        {
            let mut recent = self.recent.lock();
            for p in &ops {
                if let PendingOp::Put {
                    segment,
                    entry,
                    record,
                    ..
                } = &p.op
                {
                    recent.insert((*segment, entry.offset), record.clone());
                }
            }
        }
        let mut q = self.queue.lock();
        for p in ops {
            match p.op {
                PendingOp::Put {
                    segment,
                    entry,
                    body_bytes,
                    ..
                } => {
                    q.reserved_events -= u64::from(entry.count);
                    q.reserved_bytes -= body_bytes;
                    q.apply_put(segment, entry, body_bytes, p.end);
                    puts = true;
                }
                PendingOp::Take {
                    ranges,
                    body_bytes,
                    events,
                } => {
                    q.pending_taken -= events;
                    q.apply_take(&ranges, body_bytes, p.end);
                    takes = true;
                }
            }
        }
        drop(q);
        if puts {
            self.available_cv.notify_all();
        }
        if takes {
            self.room_cv.notify_all();
        }
    }

    /// Waits until the record ending at `end` is durable and applied.
    pub(super) fn wait_durable(&self, end: Position) -> Result<(), ChannelError> {
        if self.cfg.fsync != FsyncPolicy::EveryCommit {
            return Ok(());
        }
        self.group
            .wait(end, |handoff| self.lead_sync(handoff))
            .map_err(|e| match e {
                WaitError::SyncFailed(e) => e,
                WaitError::Poisoned => self.poisoned_error(),
            })
    }

    /// Writes blocks taken from the stage into `seg` (the caller holds `block_write`); a
    /// failure poisons.
    pub(super) fn write_staged(
        &self,
        seg: &SegmentHandle,
        w: &StagedWrite,
    ) -> Result<(), ChannelError> {
        seg.file
            .write_direct(w.bytes(), w.offset)
            .map_err(|e| self.poison(&seg.path, "write", &e))
    }

    /// Puts a record at `offset` (the writer's position): into the stage, for the leader to
    /// write, or straight into the file.
    pub(super) fn write_record(
        &self,
        log: &mut LogWriter,
        rec: &[u8],
        offset: u64,
    ) -> Result<(), ChannelError> {
        if let Some(stage) = log.stage.as_mut() {
            debug_assert_eq!(stage.end(), offset);
            stage.push(rec);
            return Ok(());
        }
        if let Err(e) = log.active.file.write_at(rec, offset) {
            return Err(self.poison(&log.active.path, "write", &e));
        }
        Ok(())
    }

    /// Commits a put whose transaction already holds room for `reserved` (events, bytes)
    /// (see `PutTransaction::reserve`): the reservation is spent here, on success or failure.
    pub(super) fn commit_put(
        &self,
        mut enc: PutBatchEncoder,
        reserved: (u64, u64),
    ) -> Result<(), ChannelError> {
        let n = u64::from(enc.count());
        let body_bytes = enc.body_bytes();
        if n == 0 {
            return Ok(());
        }
        if let Err(e) = self.check_open() {
            self.release_room(reserved.0, reserved.1);
            return Err(e);
        }
        let more = (n - reserved.0, body_bytes - reserved.1);
        if more != (0, 0) {
            if let Err(e) = self.reserve_room(more.0, more.1) {
                self.release_room(reserved.0, reserved.1);
                return Err(e);
            }
        }
        let len = enc.record_len() as u64;
        let written = (|| {
            let mut log = self.log.lock();
            self.check_open()?;
            self.check_space(&mut log, len)?;
            self.make_room(&mut log, len)?;
            let segment = log.active.id;
            let offset = log.write_off;
            let first_seq = log.next_seq;
            let rec = enc.finish(segment, first_seq, now_ms());
            self.write_record(&mut log, rec, offset)?;
            let record = Bytes::from_owner(PooledRecord {
                buf: std::mem::take(&mut enc).into_vec(),
                pool: Arc::clone(&self.bufs),
            });
            log.write_off += len;
            log.free.written_since += len;
            log.next_seq += n;
            let end = log.position();
            log.pending.push_back(Pending {
                end,
                op: PendingOp::Put {
                    segment,
                    entry: BatchEntry {
                        first_seq,
                        offset: offset as u32,
                        count: n as u32,
                    },
                    body_bytes,
                    record,
                },
            });
            if self.cfg.fsync != FsyncPolicy::EveryCommit {
                self.apply_now(&mut log);
            }
            Ok(end)
        })();
        let end = match written {
            Ok(end) => end,
            Err(e) => {
                self.release_room(n, body_bytes);
                return Err(e);
            }
        };
        if let Err(e) = self.wait_durable(end) {
            // The channel is poisoned. A leader whose sync succeeded (one handed off to can
            // still be syncing when another's fails) may have applied this record, which
            // consumed the reservation; if the record is still pending, it never will be, and
            // the reservation is ours to give back. Leaders drain and apply under the log
            // lock, so the two cannot both happen. Either way the caller sees the error: a
            // durable record reported failed is a duplicate, never a loss.
            if self.log.lock().remove_pending(end) {
                let mut q = self.queue.lock();
                q.reserved_events -= n;
                q.reserved_bytes -= body_bytes;
            }
            self.room_cv.notify_all();
            return Err(e);
        }
        self.counters.commits.fetch_add(1, Ordering::Relaxed);
        self.counters.put_successes.fetch_add(n, Ordering::Relaxed);
        Ok(())
    }

    /// Commits a take: writes its TakeCommit record (with any staged records before it) and
    /// returns. Unlike a put, it does not wait for the fdatasync: the flusher thread (or the next put's group sync) makes it
    /// durable within one sync. Nothing can be lost by that: if power fails first, the events
    /// are delivered again after recovery (at-least-once), so a sink is never held back by the
    /// disk's sync latency.
    pub(super) fn commit_take(
        &self,
        ranges: &[(u64, u64)],
        body_bytes: u64,
    ) -> Result<(), ChannelError> {
        if ranges.is_empty() {
            return Ok(());
        }
        // Takes are allowed when puts are refused for space, so that sinks can drain a full
        // disk; only poison and close stop them.
        self.check_open()?;
        let events: u64 = ranges.iter().map(|(s, e)| e - s).sum();
        // Counted before the record can be applied (which uncounts it).
        self.queue.lock().pending_taken += events;
        let len = take_commit_len(ranges.len()) as u64;
        let written = (|| {
            let mut log = self.log.lock();
            self.check_open()?;
            self.make_room(&mut log, len)?;
            let mut buf = Vec::with_capacity(len as usize);
            encode_take_commit(log.active.id, ranges, body_bytes, &mut buf);
            let offset = log.write_off;
            self.write_record(&mut log, &buf, offset)?;
            log.write_off += len;
            let end = log.position();
            log.pending.push_back(Pending {
                end,
                op: PendingOp::Take {
                    ranges: ranges.to_vec(),
                    body_bytes,
                    events,
                },
            });
            if self.cfg.fsync != FsyncPolicy::EveryCommit {
                self.apply_now(&mut log);
            }
            // A staged take record must still reach the kernel before the commit returns, as
            // an unstaged one does, so that a process crash (kill -9) cannot bring its events
            // back: the journal gets a copy. Without journal space, everything staged is
            // written now instead; the next group sync (or the flusher's) makes it durable.
            let log = &mut *log;
            if log.stage.is_none() {
                return Ok(None);
            }
            if let Some(j) = log.journal.as_mut() {
                match j.append(log.active.id, offset, &buf) {
                    Ok(()) => return Ok(None),
                    Err(journal::AppendError::Full) => {}
                    Err(journal::AppendError::Io(e)) => {
                        return Err(self.poison(j.path(), "write", &e));
                    }
                }
            }
            let Some(staged) = log.take_staged() else {
                return Ok(None);
            };
            Ok(Some((staged, log.active.clone(), self.block_write.lock())))
        })();
        let written = written.and_then(|staged| {
            let Some((w, seg, writing)) = staged else {
                return Ok(());
            };
            let r = self.write_staged(&seg, &w);
            drop(writing);
            self.log.lock().recycle(w);
            r
        });
        if let Err(e) = written {
            {
                let mut q = self.queue.lock();
                q.pending_taken -= events;
                q.return_taken(ranges);
            }
            self.available_cv.notify_all();
            return Err(e);
        }
        self.room_cv.notify_all();
        if self.cfg.fsync == FsyncPolicy::EveryCommit {
            let mut wanted = self.bg.flush_wanted.lock();
            *wanted = true;
            self.bg.flush_cv.notify_one();
        }
        self.counters.commits.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Makes everything written so far durable and applied (every-commit mode); used by the
    /// flusher thread and at close.
    pub(super) fn flush(&self) -> Result<(), ChannelError> {
        let target = self.log.lock().position();
        self.wait_durable(target)
    }
}

pub(super) struct FilePut {
    pub(super) inner: Arc<Inner>,
    pub(super) enc: PutBatchEncoder,
    /// Room held by `reserve` (events, body bytes); given back on drop unless committed.
    pub(super) reserved: (u64, u64),
}

impl Drop for FilePut {
    fn drop(&mut self) {
        if self.reserved != (0, 0) {
            self.inner.release_room(self.reserved.0, self.reserved.1);
        }
    }
}

impl PutTransaction for FilePut {
    fn put(&mut self, event: Event) -> Result<(), ChannelError> {
        self.inner
            .counters
            .put_attempts
            .fetch_add(1, Ordering::Relaxed);
        if self.enc.count() as usize >= self.inner.cfg.transaction_capacity {
            self.inner
                .counters
                .put_errors
                .fetch_add(1, Ordering::Relaxed);
            return Err(ChannelError::TransactionFull {
                channel: self.inner.name.clone(),
                capacity: self.inner.cfg.transaction_capacity,
            });
        }
        self.enc
            .push(event.headers(), event.body())
            .map_err(|e| ChannelError::TooLarge {
                channel: self.inner.name.clone(),
                what: "put transaction",
                size: match e {
                    crate::format::FormatError::TooLong { len, .. } => len,
                    _ => 0,
                },
                limit: record::MAX_RECORD_PAYLOAD.into(),
            })
    }

    fn len(&self) -> usize {
        self.enc.count() as usize
    }

    fn reserve(&mut self) -> Result<(), ChannelError> {
        let want = (u64::from(self.enc.count()), self.enc.body_bytes());
        let more = (want.0 - self.reserved.0, want.1 - self.reserved.1);
        if more == (0, 0) {
            return Ok(());
        }
        let r = self
            .inner
            .check_open()
            .and_then(|()| self.inner.reserve_room(more.0, more.1));
        match &r {
            Ok(()) => self.reserved = want,
            Err(_) => {
                self.inner
                    .counters
                    .put_errors
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
        r
    }

    fn commit(mut self: Box<Self>) -> Result<(), ChannelError> {
        let enc = std::mem::take(&mut self.enc);
        // Taken out so that Drop has no reservation left to give back: commit_put spends it.
        let reserved = std::mem::take(&mut self.reserved);
        let r = self.inner.commit_put(enc, reserved);
        if r.is_err() {
            self.inner
                .counters
                .put_errors
                .fetch_add(1, Ordering::Relaxed);
        }
        r
    }

    fn rollback(mut self: Box<Self>) {
        self.inner
            .bufs
            .give(std::mem::take(&mut self.enc).into_vec());
    }
}
