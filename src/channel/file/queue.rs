//! The file channel's in-memory queue: which committed events exist, where their batches sit
//! in the log, which are being taken, and which are gone. Pure bookkeeping, no I/O.
//!
//! Every committed put event has a sequence number (seq), assigned in log order, contiguous
//! within a batch. The queue stores one [`BatchEntry`] (16 bytes) per committed put batch, not
//! one object per event, grouped by segment; an event is found by binary search on seq.
//!
//! Invariants:
//! - Every seq in an entry is in exactly one of: available (in `returned`, or at or after
//!   `cursor`), in flight (held by an open take transaction), or done (`done`, a committed
//!   take). `returned` holds only seqs below `cursor`; nothing at or after `cursor` was ever
//!   taken.
//! - Takes hand out the lowest available seqs first, so the queue is FIFO by seq, and a
//!   rollback puts events back exactly where they were (ahead of everything never taken).
//! - A segment leaves `segs` once all its events are done; the segment file may then be
//!   deleted (by the checkpointer, subject to the checkpoint rules in docs/FORMAT.md).

use std::collections::{BTreeMap, VecDeque};

use crate::format::{BatchEntry, Position};

/// A set of u64 seqs stored as disjoint, non-adjacent half-open ranges.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct RangeSet {
    map: BTreeMap<u64, u64>,
}

impl RangeSet {
    /// Adds `[s, e)` and returns how many seqs were not already in the set.
    pub(crate) fn insert(&mut self, s: u64, e: u64) -> u64 {
        if s >= e {
            return 0;
        }
        let mut start = s;
        let mut end = e;
        let mut already = 0;
        // Ranges that overlap or touch [s, e): the one starting at or before s, and all those
        // starting inside (s, e].
        if let Some((&ps, &pe)) = self.map.range(..=s).next_back() {
            if pe >= s {
                already += pe.min(e).saturating_sub(s);
                start = ps;
                end = end.max(pe);
                self.map.remove(&ps);
            }
        }
        let inside: Vec<(u64, u64)> = self.map.range(s..=e).map(|(&a, &b)| (a, b)).collect();
        for (a, b) in inside {
            already += b.min(e).saturating_sub(a);
            end = end.max(b);
            self.map.remove(&a);
        }
        self.map.insert(start, end);
        (e - s) - already
    }

    /// Removes and returns up to `max` seqs from the lowest range.
    pub(crate) fn pop_front(&mut self, max: u64) -> Option<(u64, u64)> {
        let (&s, &e) = self.map.iter().next()?;
        self.map.remove(&s);
        let take_end = e.min(s + max);
        if take_end < e {
            self.map.insert(take_end, e);
        }
        Some((s, take_end))
    }

    /// Drops every seq below `x`.
    pub(crate) fn remove_below(&mut self, x: u64) {
        while let Some((&s, &e)) = self.map.iter().next() {
            if s >= x {
                break;
            }
            self.map.remove(&s);
            if e > x {
                self.map.insert(x, e);
                break;
            }
        }
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.map.iter().map(|(&s, &e)| (s, e))
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> u64 {
        self.map.iter().map(|(s, e)| e - s).sum()
    }

    pub(crate) fn last_end(&self) -> Option<u64> {
        self.map.iter().next_back().map(|(_, &e)| e)
    }
}

/// The live put batches of one segment.
#[derive(Debug, Clone)]
pub(crate) struct SegState {
    pub(crate) id: u64,
    pub(crate) entries: Vec<BatchEntry>,
    /// Events in `entries` not yet done.
    pub(crate) live: u64,
}

/// Segments with their batch entries, and the done ranges: what a checkpoint records.
pub(crate) type Snapshot = (Vec<(u64, Vec<BatchEntry>)>, Vec<(u64, u64)>);

/// Where a seq lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Located {
    pub(crate) segment: u64,
    pub(crate) entry: BatchEntry,
}

/// The queue. See the module docs for its invariants.
#[derive(Debug, Default)]
pub(crate) struct Queue {
    segs: VecDeque<SegState>,
    cursor: u64,
    /// One past the highest seq applied.
    end: u64,
    returned: RangeSet,
    done: RangeSet,
    /// Events committed and not done (ChannelSize).
    pub(crate) size: u64,
    /// Their body bytes.
    pub(crate) bytes: u64,
    /// Events available to take right now.
    available: u64,
    /// Every record before this position is reflected here.
    pub(crate) applied: Position,
    /// Room promised to put commits that are writing their record.
    pub(crate) reserved_events: u64,
    /// Events whose take committed (record written) but whose record is not applied yet: they
    /// no longer count towards ChannelSize or capacity.
    pub(crate) pending_taken: u64,
    pub(crate) reserved_bytes: u64,
}

impl Queue {
    /// Rebuilds a queue from recovered state: `segs` (entries only), the done ranges, the next
    /// seq, the body bytes, and the log position they reflect. Nothing is in flight after a
    /// restart, so every live event becomes available, in seq order.
    pub(crate) fn recovered(
        segs: Vec<(u64, Vec<BatchEntry>)>,
        done_ranges: &[(u64, u64)],
        next_seq: u64,
        bytes: u64,
        applied: Position,
    ) -> Queue {
        let mut q = Queue {
            end: next_seq,
            bytes,
            applied,
            ..Queue::default()
        };
        for (id, entries) in segs {
            if entries.is_empty() {
                continue;
            }
            let total = entries.iter().map(|e| u64::from(e.count)).sum();
            q.segs.push_back(SegState {
                id,
                entries,
                live: total,
            });
        }
        for &(s, e) in done_ranges {
            q.mark_done(s, e);
        }
        q.pop_done_segments();
        q.size = q.segs.iter().map(|s| s.live).sum();
        // Live seqs below the highest done seq go to `returned`; the cursor starts after it.
        let head = q.head();
        let top = q.done.last_end().unwrap_or(head).max(head);
        let mut returned = RangeSet::default();
        for seg in &q.segs {
            for e in &seg.entries {
                let s = e.first_seq.max(head);
                let en = e.end_seq().min(top);
                if s < en {
                    returned.insert(s, en);
                }
            }
        }
        for (s, e) in q.done.iter().collect::<Vec<_>>() {
            remove_range(&mut returned, s, e);
        }
        q.returned = returned;
        q.cursor = top;
        q.available = q.size;
        q
    }

    /// The lowest seq still in the queue (or `end` when empty).
    pub(crate) fn head(&self) -> u64 {
        self.segs
            .front()
            .and_then(|s| s.entries.first())
            .map_or(self.end, |e| e.first_seq)
    }

    /// One past the highest seq applied.
    pub(crate) fn end(&self) -> u64 {
        self.end
    }

    /// ChannelSize: committed puts not yet removed by a committed take.
    pub(crate) fn visible_size(&self) -> u64 {
        self.size - self.pending_taken
    }

    /// Events that a take could get now.
    pub(crate) fn available(&self) -> u64 {
        self.available
    }

    /// Id of the oldest segment holding live events, if any.
    pub(crate) fn first_live_segment(&self) -> Option<u64> {
        self.segs.front().map(|s| s.id)
    }

    /// A committed put batch becomes visible.
    pub(crate) fn apply_put(
        &mut self,
        segment: u64,
        entry: BatchEntry,
        body_bytes: u64,
        at: Position,
    ) {
        debug_assert!(entry.first_seq >= self.end, "puts apply in seq order");
        match self.segs.back_mut() {
            Some(s) if s.id == segment => {
                s.entries.push(entry);
                s.live += u64::from(entry.count);
            }
            _ => {
                // The previous segment gets no more entries: give back the Vec's growth slack
                // so the index stays at 16 bytes per batch.
                if let Some(prev) = self.segs.back_mut() {
                    prev.entries.shrink_to_fit();
                }
                self.segs.push_back(SegState {
                    id: segment,
                    entries: vec![entry],
                    live: u64::from(entry.count),
                });
            }
        }
        self.end = entry.end_seq();
        self.size += u64::from(entry.count);
        self.bytes += body_bytes;
        self.available += u64::from(entry.count);
        self.applied = at;
    }

    /// A committed take: its ranges are done. Parts that are not (or no longer) in the queue
    /// are ignored, which replay relies on for take records about deleted segments.
    pub(crate) fn apply_take(&mut self, ranges: &[(u64, u64)], body_bytes: u64, at: Position) {
        let mut n = 0;
        for &(s, e) in ranges {
            n += self.mark_done(s, e);
        }
        self.size -= n;
        self.bytes = self.bytes.saturating_sub(body_bytes);
        self.pop_done_segments();
        self.applied = at;
    }

    /// Moves up to `max` of the lowest available seqs into a take transaction.
    pub(crate) fn reserve_take(&mut self, max: u64, out: &mut Vec<(u64, u64)>) -> u64 {
        let mut got = 0;
        while got < max {
            let Some((s, e)) = self.returned.pop_front(max - got) else {
                break;
            };
            push_merged(out, s, e);
            got += e - s;
        }
        while got < max && self.cursor < self.end {
            let Some(loc) = self.locate_at_or_after(self.cursor) else {
                self.cursor = self.end;
                break;
            };
            let s = self.cursor.max(loc.entry.first_seq);
            let e = loc.entry.end_seq().min(s + (max - got));
            push_merged(out, s, e);
            got += e - s;
            self.cursor = e;
        }
        self.available -= got;
        got
    }

    /// Rolled-back takes go back where they were.
    pub(crate) fn return_taken(&mut self, ranges: &[(u64, u64)]) {
        for &(s, e) in ranges {
            self.available += self.returned.insert(s, e);
        }
    }

    /// The entry holding `seq`, if it is live.
    pub(crate) fn locate(&self, seq: u64) -> Option<Located> {
        let loc = self.locate_at_or_after(seq)?;
        (loc.entry.first_seq <= seq).then_some(loc)
    }

    /// The entry holding `seq`, or the first one after it.
    fn locate_at_or_after(&self, seq: u64) -> Option<Located> {
        // Segments are in seq order; find the last one whose first seq is <= seq, then look in
        // it and, failing that, in the next.
        let si = self
            .segs
            .partition_point(|s| s.entries.first().is_some_and(|e| e.first_seq <= seq));
        let start = si.saturating_sub(1);
        for seg in self.segs.range(start..) {
            let ei = seg.entries.partition_point(|e| e.end_seq() <= seq);
            if let Some(entry) = seg.entries.get(ei) {
                return Some(Located {
                    segment: seg.id,
                    entry: *entry,
                });
            }
        }
        None
    }

    /// Marks `[s, e)` done; returns how many live seqs that removed.
    fn mark_done(&mut self, s: u64, e: u64) -> u64 {
        let mut removed = 0;
        let si = self
            .segs
            .partition_point(|seg| seg.entries.first().is_some_and(|en| en.first_seq <= s))
            .saturating_sub(1);
        for seg in self.segs.range_mut(si..) {
            let Some(first) = seg.entries.first() else {
                continue;
            };
            if first.first_seq >= e {
                break;
            }
            let ei = seg.entries.partition_point(|en| en.end_seq() <= s);
            for en in &seg.entries[ei..] {
                if en.first_seq >= e {
                    break;
                }
                let a = s.max(en.first_seq);
                let b = e.min(en.end_seq());
                if a < b {
                    let n = self.done.insert(a, b);
                    seg.live -= n;
                    removed += n;
                }
            }
        }
        removed
    }

    fn pop_done_segments(&mut self) {
        while self.segs.front().is_some_and(|s| s.live == 0) {
            self.segs.pop_front();
        }
        let head = self.head();
        self.done.remove_below(head);
        self.returned.remove_below(head);
    }

    /// The state a checkpoint records: segments with their entries, and done ranges.
    pub(crate) fn snapshot(&self) -> Snapshot {
        let segs = self
            .segs
            .iter()
            .map(|s| (s.id, s.entries.clone()))
            .collect();
        (segs, self.done.iter().collect())
    }

    /// Bytes of heap the queue's index uses (for docs/ARCHITECTURE.md's per-event figure).
    pub(crate) fn index_bytes(&self) -> usize {
        self.segs
            .iter()
            .map(|s| s.entries.capacity() * std::mem::size_of::<BatchEntry>())
            .sum()
    }
}

fn push_merged(out: &mut Vec<(u64, u64)>, s: u64, e: u64) {
    if let Some(last) = out.last_mut() {
        if last.1 == s {
            last.1 = e;
            return;
        }
    }
    out.push((s, e));
}

fn remove_range(set: &mut RangeSet, s: u64, e: u64) {
    let overlapping: Vec<(u64, u64)> = set
        .map
        .range(..e)
        .filter(|(_, &en)| en > s)
        .map(|(&a, &b)| (a, b))
        .collect();
    for (a, b) in overlapping {
        set.map.remove(&a);
        if a < s {
            set.map.insert(a, s);
        }
        if b > e {
            set.map.insert(e, b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(first_seq: u64, count: u32) -> BatchEntry {
        BatchEntry {
            first_seq,
            offset: 0,
            count,
        }
    }

    fn pos(o: u64) -> Position {
        Position {
            segment: 1,
            offset: o,
        }
    }

    #[test]
    fn rangeset_merges_and_counts_new_seqs() {
        let mut r = RangeSet::default();
        assert_eq!(r.insert(10, 20), 10);
        assert_eq!(r.insert(15, 25), 5);
        assert_eq!(r.insert(0, 5), 5);
        assert_eq!(r.insert(5, 10), 5);
        assert_eq!(r.iter().collect::<Vec<_>>(), vec![(0, 25)]);
        assert_eq!(r.insert(0, 25), 0);
        assert_eq!(r.pop_front(3), Some((0, 3)));
        r.remove_below(10);
        assert_eq!(r.iter().collect::<Vec<_>>(), vec![(10, 25)]);
        assert_eq!(r.len(), 15);
    }

    #[test]
    fn takes_are_fifo_and_rollback_restores_position() {
        let mut q = Queue::default();
        q.apply_put(1, entry(0, 10), 100, pos(1));
        q.apply_put(1, entry(10, 10), 100, pos(2));
        let mut a = vec![];
        assert_eq!(q.reserve_take(4, &mut a), 4);
        let mut b = vec![];
        assert_eq!(q.reserve_take(8, &mut b), 8);
        assert_eq!(a, vec![(0, 4)]);
        assert_eq!(b, vec![(4, 12)]);
        q.return_taken(&a);
        let mut c = vec![];
        assert_eq!(q.reserve_take(100, &mut c), 12);
        assert_eq!(c, vec![(0, 4), (12, 20)]);
        q.apply_take(&b, 80, pos(3));
        q.apply_take(&c, 80, pos(4));
        assert_eq!(q.size, 0);
        assert_eq!(q.bytes, 40);
        assert_eq!(q.first_live_segment(), None);
    }

    #[test]
    fn recovery_makes_everything_not_done_available_in_order() {
        let segs = vec![(1, vec![entry(0, 10)]), (2, vec![entry(10, 10)])];
        let mut q = Queue::recovered(segs, &[(3, 5), (12, 15)], 20, 0, pos(0));
        assert_eq!(q.size, 15);
        let mut out = vec![];
        assert_eq!(q.reserve_take(100, &mut out), 15);
        assert_eq!(out, vec![(0, 3), (5, 12), (15, 20)]);
    }

    #[test]
    fn fully_done_segments_leave_the_queue() {
        let mut q = Queue::default();
        q.apply_put(1, entry(0, 5), 0, pos(1));
        q.apply_put(2, entry(5, 5), 0, pos(2));
        q.apply_take(&[(0, 5)], 0, pos(3));
        assert_eq!(q.first_live_segment(), Some(2));
        assert_eq!(q.head(), 5);
        // A take of seqs that are already gone changes nothing.
        q.apply_take(&[(0, 5)], 0, pos(4));
        assert_eq!(q.size, 5);
    }

    #[test]
    fn gaps_between_entries_are_skipped() {
        let mut q = Queue::recovered(vec![(1, vec![entry(0, 2), entry(5, 2)])], &[], 7, 0, pos(0));
        assert_eq!(q.size, 4);
        let mut out = vec![];
        q.reserve_take(10, &mut out);
        assert_eq!(out, vec![(0, 2), (5, 7)]);
        assert_eq!(q.locate(3), None);
        assert_eq!(q.locate(6).map(|l| l.entry.first_seq), Some(5));
    }
}
