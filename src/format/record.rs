//! Log records: the framing every record shares, and the two record kinds.
//!
//! ```text
//! record  := len u32 | crc u32 | kind u8 | payload[len]
//! crc     := CRC32(segment_id u64 | len u32 | kind u8 | payload)
//! kind 1  PutBatch:   first_seq u64 | timestamp_ms u64 | body_bytes u64 | count u32 | event{count}
//! event   := nheaders u32 | (klen u32 | key | vlen u32 | value){nheaders} | blen u32 | body
//! kind 2  TakeCommit: body_bytes u64 | nranges u32 | (start u64 | end u64){nranges}   (half-open seq ranges)
//! body_bytes: total body bytes of the events, so recovery can restore `byteCapacity` accounting
//! without reading every event.
//! ```
//! A length field of zero marks the end of the data in a segment: it is what preallocated,
//! never-written space reads as, and no real record has an empty payload.
//!
//! A put transaction is written as ONE record at commit, so uncommitted puts never reach the
//! disk, and a torn record loses only a transaction whose commit never returned.

use super::{FormatError, Reader};
use crate::event::Headers;

/// Bytes before the payload.
pub const RECORD_HEADER_LEN: usize = 9;
/// Largest payload a record may declare (the decoder's allocation bound).
pub const MAX_RECORD_PAYLOAD: u32 = 1 << 30;
/// Bytes of a PutBatch payload before its first event.
pub const PUT_BATCH_PREFIX: usize = 28;
/// Smallest encoded event (no headers, empty body).
const MIN_EVENT_LEN: usize = 8;

/// The kinds of record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum RecordKind {
    /// A committed put transaction: its events, in order.
    PutBatch = 1,
    /// A committed take transaction: the seq ranges it removed.
    TakeCommit = 2,
}

impl RecordKind {
    fn from_u8(b: u8) -> Result<Self, FormatError> {
        match b {
            1 => Ok(RecordKind::PutBatch),
            2 => Ok(RecordKind::TakeCommit),
            other => Err(FormatError::UnknownKind(other)),
        }
    }
}

/// A record that decoded and verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordRef<'a> {
    pub kind: RecordKind,
    pub payload: &'a [u8],
    /// Header plus payload: where the next record starts, relative to this one.
    pub total_len: usize,
}

/// What is at an offset of a segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanOutcome<'a> {
    Record(RecordRef<'a>),
    /// A zero length field: no more data in this segment.
    End,
    /// Bytes that are not a valid record (torn or corrupt).
    Bad(FormatError),
}

fn record_crc(segment_id: u64, len: u32, kind: u8, payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&segment_id.to_le_bytes());
    h.update(&len.to_le_bytes());
    h.update(&[kind]);
    h.update(payload);
    h.finalize()
}

/// Decodes the record at the start of `buf`, which holds the rest of segment `segment_id`.
pub fn decode(segment_id: u64, buf: &[u8]) -> ScanOutcome<'_> {
    match decode_inner(segment_id, buf) {
        Ok(Some(r)) => ScanOutcome::Record(r),
        Ok(None) => ScanOutcome::End,
        Err(e) => ScanOutcome::Bad(e),
    }
}

fn decode_inner(segment_id: u64, buf: &[u8]) -> Result<Option<RecordRef<'_>>, FormatError> {
    let mut r = Reader::new(buf, "record header");
    if buf.len() < 4 {
        // Fewer bytes than a length field: zeros are the end, anything else is torn.
        return if buf.iter().all(|&b| b == 0) {
            Ok(None)
        } else {
            Err(FormatError::Truncated {
                what: "record header",
                needed: RECORD_HEADER_LEN as u64,
                available: buf.len() as u64,
            })
        };
    }
    let len = r.u32()?;
    if len == 0 {
        return Ok(None);
    }
    if len > MAX_RECORD_PAYLOAD {
        return Err(FormatError::TooLong {
            what: "record",
            len: len.into(),
            limit: MAX_RECORD_PAYLOAD.into(),
        });
    }
    let stored = r.u32()?;
    let kind_byte = r.u8()?;
    // The kind is checked before the CRC: a cheap filter that keeps the resync scan
    // (`find_next_valid`) from computing a CRC over a long declared length at most offsets of
    // a damaged region.
    let kind = RecordKind::from_u8(kind_byte)?;
    let payload = Reader::new(&buf[RECORD_HEADER_LEN.min(buf.len())..], "record payload")
        .bytes(len as usize)?;
    let computed = record_crc(segment_id, len, kind_byte, payload);
    FormatError::check_crc("record", stored, computed)?;
    Ok(Some(RecordRef {
        kind,
        payload,
        total_len: RECORD_HEADER_LEN + len as usize,
    }))
}

/// Whether `buf` starts with a header every valid record has: a known kind, and a payload
/// whose own length fields agree with the record's (a PutBatch's body bytes and event count
/// fit in it; a TakeCommit is exactly its ranges). Necessary, not sufficient: it lets the
/// resync scan skip most offsets of old or random bytes (a reused segment's former life, say)
/// without computing a CRC over a declared length at each.
fn plausible(buf: &[u8]) -> bool {
    // Little-endian unsigned field of `n` (<= 8) bytes at `at`.
    let le = |at: usize, n: usize| {
        let b = buf.get(at..at + n)?;
        Some(b.iter().rev().fold(0u64, |v, &x| (v << 8) | u64::from(x)))
    };
    let (Some(len), Some(kind)) = (le(0, 4), buf.get(8)) else {
        return false;
    };
    let p = RECORD_HEADER_LEN;
    match *kind {
        k if k == RecordKind::PutBatch as u8 => {
            len >= PUT_BATCH_PREFIX as u64
                && le(p + 16, 8).is_some_and(|body| body <= len)
                && le(p + 24, 4)
                    .is_some_and(|count| count >= 1 && count <= len / MIN_EVENT_LEN as u64)
        }
        k if k == RecordKind::TakeCommit as u8 => le(p + 8, 4).is_some_and(|n| len == 12 + 16 * n),
        _ => false,
    }
}

/// After a bad record at `from`, the offset of the next record that verifies, if any. Used to
/// tell a torn tail (nothing valid follows) from corruption in the middle of the log.
pub fn find_next_valid(segment_id: u64, buf: &[u8], from: usize) -> Option<usize> {
    let mut pos = from;
    while pos + RECORD_HEADER_LEN < buf.len() {
        // Preallocated space is zeros: skip it a word at a time rather than trying a decode at
        // every byte.
        if buf[pos] == 0 {
            match buf[pos..].iter().position(|&b| b != 0) {
                Some(nz) => {
                    // A length field is little-endian, so its first byte may be zero: back up
                    // to the three zero bytes before the non-zero one.
                    let start = (pos + nz).saturating_sub(3).max(pos);
                    for p in start..=pos + nz {
                        if let ScanOutcome::Record(_) = decode(segment_id, &buf[p..]) {
                            return Some(p);
                        }
                    }
                    pos += nz + 1;
                    continue;
                }
                None => return None,
            }
        }
        if plausible(&buf[pos..]) {
            if let ScanOutcome::Record(_) = decode(segment_id, &buf[pos..]) {
                return Some(pos);
            }
        }
        pos += 1;
    }
    None
}

/// The length (header plus payload) of the record-shaped bytes at the start of `buf`: a
/// header plausible for a valid record (as the resync scan requires), whose payload fits in
/// `buf`. The CRC is not checked: this recognises records written for another segment (a
/// reused file's former life) as well as this one's.
pub fn shape_len(buf: &[u8]) -> Option<usize> {
    if !plausible(buf) {
        return None;
    }
    let len = u32::from_le_bytes(buf.get(..4)?.try_into().ok()?);
    if len > MAX_RECORD_PAYLOAD {
        return None;
    }
    let total = RECORD_HEADER_LEN + len as usize;
    (total <= buf.len()).then_some(total)
}

/// The first offset at or after `from` where `buf` holds record-shaped bytes ([`shape_len`]),
/// whether or not they verify. Zeros are skipped in bulk, as in [`find_next_valid`].
pub fn find_record_shape(buf: &[u8], from: usize) -> Option<usize> {
    let mut pos = from;
    while pos + RECORD_HEADER_LEN < buf.len() {
        if buf[pos] == 0 {
            let nz = buf[pos..].iter().position(|&b| b != 0)?;
            // A length field's first bytes may be zero: back up to three zeros before.
            let start = (pos + nz).saturating_sub(3).max(pos);
            if let Some(p) = (start..=pos + nz).find(|&p| shape_len(&buf[p..]).is_some()) {
                return Some(p);
            }
            pos += nz + 1;
            continue;
        }
        if shape_len(&buf[pos..]).is_some() {
            return Some(pos);
        }
        pos += 1;
    }
    None
}

/// Builds one PutBatch record incrementally, as a put transaction's events arrive, so that
/// commit only has to fill in the header (the seq is known only then).
#[derive(Debug, Clone)]
pub struct PutBatchEncoder {
    buf: Vec<u8>,
    count: u32,
    body_bytes: u64,
    events_crc: crc32fast::Hasher,
}

impl Default for PutBatchEncoder {
    fn default() -> Self {
        Self::new()
    }
}

impl PutBatchEncoder {
    pub fn new() -> Self {
        Self::with_buffer(Vec::new())
    }

    /// An encoder writing into `buf` (its contents are discarded, its capacity kept): lets a
    /// caller recycle the buffers of records it is done with instead of growing a new one,
    /// page fault by page fault, for every batch.
    pub fn with_buffer(mut buf: Vec<u8>) -> Self {
        buf.clear();
        buf.resize(RECORD_HEADER_LEN + PUT_BATCH_PREFIX, 0);
        PutBatchEncoder {
            buf,
            count: 0,
            body_bytes: 0,
            events_crc: crc32fast::Hasher::new(),
        }
    }

    /// Appends one event. Fails, changing nothing, when the record would pass
    /// [`MAX_RECORD_PAYLOAD`] or a length would not fit its field.
    pub fn push(&mut self, headers: &Headers, body: &[u8]) -> Result<(), FormatError> {
        let mut add = 8 + body.len();
        for (k, v) in headers {
            add += 8 + k.len() + v.len();
        }
        let payload_after = self.payload_len() + add;
        if payload_after > MAX_RECORD_PAYLOAD as usize {
            return Err(FormatError::TooLong {
                what: "put transaction",
                len: payload_after as u64,
                limit: MAX_RECORD_PAYLOAD.into(),
            });
        }
        let start = self.buf.len();
        self.buf.reserve(add);
        // Lengths fit in u32: each is below MAX_RECORD_PAYLOAD, checked above.
        self.buf
            .extend_from_slice(&(headers.len() as u32).to_le_bytes());
        for (k, v) in headers {
            self.buf.extend_from_slice(&(k.len() as u32).to_le_bytes());
            self.buf.extend_from_slice(k.as_bytes());
            self.buf.extend_from_slice(&(v.len() as u32).to_le_bytes());
            self.buf.extend_from_slice(v.as_bytes());
        }
        self.buf
            .extend_from_slice(&(body.len() as u32).to_le_bytes());
        self.buf.extend_from_slice(body);
        self.events_crc.update(&self.buf[start..]);
        self.count += 1;
        self.body_bytes += body.len() as u64;
        Ok(())
    }

    /// Events pushed.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// Body bytes of the events pushed.
    pub fn body_bytes(&self) -> u64 {
        self.body_bytes
    }

    /// Whole record length once finished.
    pub fn record_len(&self) -> usize {
        self.buf.len()
    }

    /// The record's bytes, after [`finish`](Self::finish).
    pub fn into_vec(self) -> Vec<u8> {
        self.buf
    }

    /// Payload bytes so far.
    pub fn payload_len(&self) -> usize {
        self.buf.len() - RECORD_HEADER_LEN
    }

    /// Fills in the header for segment `segment_id` and returns the whole record. May be
    /// called again with other values (after a segment roll, say).
    pub fn finish(&mut self, segment_id: u64, first_seq: u64, timestamp_ms: u64) -> &[u8] {
        let len = self.payload_len() as u32;
        let kind = RecordKind::PutBatch as u8;
        self.buf[0..4].copy_from_slice(&len.to_le_bytes());
        self.buf[8] = kind;
        let p = RECORD_HEADER_LEN;
        self.buf[p..p + 8].copy_from_slice(&first_seq.to_le_bytes());
        self.buf[p + 8..p + 16].copy_from_slice(&timestamp_ms.to_le_bytes());
        self.buf[p + 16..p + 24].copy_from_slice(&self.body_bytes.to_le_bytes());
        self.buf[p + 24..p + 28].copy_from_slice(&self.count.to_le_bytes());
        // The events' CRC was accumulated as they arrived; combining it with the CRC of the
        // header fields costs O(log n), so commit does not re-read the batch under the log
        // lock.
        let mut h = crc32fast::Hasher::new();
        h.update(&segment_id.to_le_bytes());
        h.update(&len.to_le_bytes());
        h.update(&[kind]);
        h.update(&self.buf[p..p + PUT_BATCH_PREFIX]);
        h.combine(&self.events_crc);
        let crc = h.finalize();
        self.buf[4..8].copy_from_slice(&crc.to_le_bytes());
        &self.buf
    }
}

/// A verified PutBatch payload.
#[derive(Debug, Clone, Copy)]
pub struct PutBatchView<'a> {
    pub first_seq: u64,
    pub timestamp_ms: u64,
    pub body_bytes: u64,
    pub count: u32,
    events: &'a [u8],
}

/// One event inside a PutBatch, borrowed from the payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventSpan<'a> {
    pub headers: Vec<(&'a str, &'a str)>,
    pub body: &'a [u8],
    /// Where `body` starts within the payload, so a caller holding the payload in a
    /// reference-counted buffer can slice it instead of copying.
    pub body_offset: usize,
}

impl<'a> PutBatchView<'a> {
    /// Parses the fixed part of a PutBatch payload.
    pub fn parse(payload: &'a [u8]) -> Result<Self, FormatError> {
        let mut r = Reader::new(payload, "put batch");
        let first_seq = r.u64()?;
        let timestamp_ms = r.u64()?;
        let body_bytes = r.u64()?;
        let count = r.u32()?;
        if count == 0 {
            return Err(FormatError::Malformed {
                what: "put batch",
                detail: "holds no events".into(),
            });
        }
        if (count as usize) > r.remaining() / MIN_EVENT_LEN {
            return Err(FormatError::Malformed {
                what: "put batch",
                detail: format!("declares {count} events in {} bytes", r.remaining()),
            });
        }
        if first_seq.checked_add(count.into()).is_none() {
            return Err(FormatError::Malformed {
                what: "put batch",
                detail: format!("seq {first_seq} + {count} events overflows"),
            });
        }
        Ok(PutBatchView {
            first_seq,
            timestamp_ms,
            body_bytes,
            count,
            events: &payload[PUT_BATCH_PREFIX..],
        })
    }

    /// The events in order. Yields an error (and then stops) if the bytes do not hold exactly
    /// `count` well-formed events.
    pub fn events(&self) -> EventIter<'a> {
        EventIter {
            r: Reader::new(self.events, "event"),
            left: self.count,
            failed: false,
        }
    }

    /// Checks every event's structure without building anything.
    pub fn validate(&self) -> Result<(), FormatError> {
        for e in self.events() {
            e?;
        }
        Ok(())
    }
}

/// Iterator over a PutBatch's events.
pub struct EventIter<'a> {
    r: Reader<'a>,
    left: u32,
    failed: bool,
}

impl<'a> EventIter<'a> {
    fn next_event(&mut self) -> Result<EventSpan<'a>, FormatError> {
        let nh = self.r.count(8)?;
        let mut headers = Vec::with_capacity(nh);
        for _ in 0..nh {
            let kl = self.r.u32()? as usize;
            let k = utf8(self.r.bytes(kl)?, "header key")?;
            let vl = self.r.u32()? as usize;
            let v = utf8(self.r.bytes(vl)?, "header value")?;
            headers.push((k, v));
        }
        let bl = self.r.u32()? as usize;
        let body_offset = PUT_BATCH_PREFIX + self.r.pos();
        let body = self.r.bytes(bl)?;
        Ok(EventSpan {
            headers,
            body,
            body_offset,
        })
    }
}

fn utf8<'a>(b: &'a [u8], what: &'static str) -> Result<&'a str, FormatError> {
    std::str::from_utf8(b).map_err(|e| FormatError::Malformed {
        what,
        detail: e.to_string(),
    })
}

impl<'a> Iterator for EventIter<'a> {
    type Item = Result<EventSpan<'a>, FormatError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        if self.left == 0 {
            if self.r.remaining() != 0 {
                self.failed = true;
                return Some(Err(FormatError::Malformed {
                    what: "put batch",
                    detail: format!("{} bytes after the last event", self.r.remaining()),
                }));
            }
            return None;
        }
        self.left -= 1;
        let e = self.next_event();
        if e.is_err() {
            self.failed = true;
        }
        Some(e)
    }
}

/// Appends a TakeCommit record for `ranges` (half-open seq ranges) to `out`.
pub fn encode_take_commit(
    segment_id: u64,
    ranges: &[(u64, u64)],
    body_bytes: u64,
    out: &mut Vec<u8>,
) {
    let start = out.len();
    let len = (take_commit_len(ranges.len()) - RECORD_HEADER_LEN) as u32;
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&[0u8; 4]);
    out.push(RecordKind::TakeCommit as u8);
    out.extend_from_slice(&body_bytes.to_le_bytes());
    out.extend_from_slice(&(ranges.len() as u32).to_le_bytes());
    for &(s, e) in ranges {
        out.extend_from_slice(&s.to_le_bytes());
        out.extend_from_slice(&e.to_le_bytes());
    }
    let crc = record_crc(
        segment_id,
        len,
        RecordKind::TakeCommit as u8,
        &out[start + RECORD_HEADER_LEN..],
    );
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// Bytes a TakeCommit record for `nranges` ranges occupies.
pub fn take_commit_len(nranges: usize) -> usize {
    RECORD_HEADER_LEN + 12 + 16 * nranges
}

/// Decodes a TakeCommit payload into its ranges and their total body bytes.
pub fn decode_take_commit(payload: &[u8]) -> Result<(Vec<(u64, u64)>, u64), FormatError> {
    let mut r = Reader::new(payload, "take commit");
    let body_bytes = r.u64()?;
    let n = r.count(16)?;
    let mut ranges = Vec::with_capacity(n);
    for _ in 0..n {
        let s = r.u64()?;
        let e = r.u64()?;
        if s >= e {
            return Err(FormatError::Malformed {
                what: "take commit",
                detail: format!("empty or reversed range {s}..{e}"),
            });
        }
        ranges.push((s, e));
    }
    if r.remaining() != 0 {
        return Err(FormatError::Malformed {
            what: "take commit",
            detail: format!("{} trailing bytes", r.remaining()),
        });
    }
    Ok((ranges, body_bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestEvent<'a> = (&'a [(&'a str, &'a str)], &'a [u8]);

    fn batch(events: &[TestEvent<'_>]) -> PutBatchEncoder {
        let mut enc = PutBatchEncoder::new();
        for (hs, body) in events {
            let h: Headers = hs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            enc.push(&h, body).expect("small event");
        }
        enc
    }

    #[test]
    fn put_batch_round_trips() {
        let mut enc = batch(&[(&[("host", "a")], b"one"), (&[], b""), (&[], b"three")]);
        let rec = enc.finish(5, 100, 1234).to_vec();
        let ScanOutcome::Record(r) = decode(5, &rec) else {
            panic!("did not decode")
        };
        assert_eq!(r.kind, RecordKind::PutBatch);
        assert_eq!(r.total_len, rec.len());
        let v = PutBatchView::parse(r.payload).expect("parses");
        assert_eq!((v.first_seq, v.timestamp_ms, v.count), (100, 1234, 3));
        assert_eq!(v.body_bytes, 8);
        let evs: Vec<_> = v.events().collect::<Result<_, _>>().expect("events");
        assert_eq!(evs[0].headers, vec![("host", "a")]);
        assert_eq!(evs[0].body, b"one");
        assert_eq!(evs[2].body, b"three");
        assert_eq!(&r.payload[evs[2].body_offset..][..5], b"three");
    }

    #[test]
    fn finish_twice_gives_a_valid_record_for_the_second_segment() {
        let mut enc = batch(&[(&[], b"x")]);
        let _ = enc.finish(1, 0, 0);
        let rec = enc.finish(2, 9, 0).to_vec();
        assert!(matches!(decode(2, &rec), ScanOutcome::Record(_)));
        assert!(matches!(
            decode(1, &rec),
            ScanOutcome::Bad(FormatError::Checksum { .. })
        ));
    }

    #[test]
    fn every_bit_flip_and_truncation_is_detected() {
        let mut enc = batch(&[(&[("k", "v")], b"payload bytes")]);
        let rec = enc.finish(3, 0, 0).to_vec();
        for i in 0..rec.len() {
            for bit in 0..8 {
                let mut bad = rec.clone();
                bad[i] ^= 1 << bit;
                assert!(
                    !matches!(decode(3, &bad), ScanOutcome::Record(r) if r.payload == &rec[RECORD_HEADER_LEN..]),
                    "flip of bit {bit} at {i} went unnoticed"
                );
            }
        }
        for cut in 1..rec.len() {
            assert!(
                matches!(decode(3, &rec[..cut]), ScanOutcome::Bad(_)),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn zeros_are_the_end() {
        assert_eq!(decode(1, &[0u8; 64]), ScanOutcome::End);
        assert_eq!(decode(1, &[]), ScanOutcome::End);
    }

    #[test]
    fn take_commit_round_trips() {
        let mut out = vec![];
        encode_take_commit(4, &[(0, 10), (20, 25)], 77, &mut out);
        assert_eq!(out.len(), take_commit_len(2));
        let ScanOutcome::Record(r) = decode(4, &out) else {
            panic!("did not decode")
        };
        assert_eq!(r.kind, RecordKind::TakeCommit);
        assert_eq!(
            decode_take_commit(r.payload),
            Ok((vec![(0, 10), (20, 25)], 77))
        );
    }

    #[test]
    fn resync_skips_a_reused_files_old_records_and_finds_only_this_segments() {
        // A reused segment: records of its former life (segment 3), then one of segment 9.
        let mut seg = vec![];
        for i in 0..50u64 {
            let body = vec![(i % 7) as u8 + 1; 300];
            let mut enc = batch(&[(&[("k", "v")], &body), (&[], &body)]);
            seg.extend_from_slice(enc.finish(3, i * 2, 0));
            encode_take_commit(3, &[(i, i + 1)], 300, &mut seg);
        }
        assert_eq!(
            find_next_valid(9, &seg, 0),
            None,
            "old records never verify here"
        );
        let at = seg.len();
        let mut enc = batch(&[(&[], b"new")]);
        seg.extend_from_slice(enc.finish(9, 1000, 0));
        assert_eq!(find_next_valid(9, &seg, 0), Some(at));
        // Every record that verifies also passes the cheap header check.
        let mut off = 0;
        while let ScanOutcome::Record(r) = decode(3, &seg[off..]) {
            assert!(plausible(&seg[off..]), "record at {off}");
            off += r.total_len;
        }
        assert_eq!(off, at);
    }

    #[test]
    fn resync_finds_the_record_after_garbage() {
        let mut seg = vec![0xAB; 37];
        seg.extend_from_slice(&[0; 100]);
        let at = seg.len();
        let mut enc = batch(&[(&[], b"after")]);
        seg.extend_from_slice(enc.finish(8, 0, 0));
        seg.extend_from_slice(&[0; 50]);
        assert_eq!(find_next_valid(8, &seg, 1), Some(at));
        assert_eq!(find_next_valid(8, &seg, at + 1), None);
    }

    #[test]
    fn hostile_counts_do_not_allocate() {
        let mut p = vec![];
        p.extend_from_slice(&0u64.to_le_bytes());
        p.extend_from_slice(&0u64.to_le_bytes());
        p.extend_from_slice(&0u64.to_le_bytes());
        p.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(PutBatchView::parse(&p).is_err());
        let mut t = 0u64.to_le_bytes().to_vec();
        t.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode_take_commit(&t).is_err());
    }
}
