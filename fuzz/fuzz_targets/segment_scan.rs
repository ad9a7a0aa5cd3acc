//! Fuzzes the segment scanner (`flumen::channel::file::scan::Scanner::segment`), the one
//! reading of a segment that recovery, `inspect`, `repair` and `verify` all decide from.
//!
//! The first input byte holds flags: whether the segment is the log's last, whether the scan is
//! deep (`verify`), whether a checkpoint gave the next expected seq (then 8 bytes follow) and a
//! replay offset (then 4 bytes follow, whose low 16 bits count from the header's end), whether
//! a valid header for segment 7 goes in front of the rest (so the record walk is reached
//! without the fuzzer forging the header CRC), and whether the segment's id is taken from the
//! header found.
//!
//! Besides "no panic": every visited record starts where a record decodes and inside the
//! buffer, in increasing order; corrupt regions are in order and inside the buffer; only the
//! last segment may end torn, in old bytes or cut short at creation; a zero tail is zeros; a
//! second scan agrees; and cutting a torn (or old-bytes) tail off where the scan says the
//! records end, as recovery does, leaves a segment that scans clean with the same records.

#![no_main]

use flumen::channel::file::scan::{Record, Scanner, SegmentScan, Tail};
use flumen::format::record::{self, RecordKind};
use flumen::format::{segment, ScanOutcome, SEGMENT_HEADER_LEN};
use flumen_fuzz::Cursor;
use libfuzzer_sys::fuzz_target;

const ID: u64 = 7;

fuzz_target!(|data: &[u8]| {
    let mut c = Cursor::new(data);
    let flags = c.u8();
    let is_last = flags & 1 != 0;
    let deep = flags & 2 != 0;
    let next_seq = (flags & 4 != 0).then(|| c.u64());
    // A replay position is always past the header (the checkpoint writer only records
    // positions of records).
    let from = (flags & 8 != 0).then(|| SEGMENT_HEADER_LEN as u64 + u64::from(c.u32() & 0xffff));
    let rest = c.rest();
    let buf = if flags & 16 != 0 {
        let mut b = segment::encode_header(ID).to_vec();
        b.extend_from_slice(rest);
        b
    } else {
        rest.to_vec()
    };
    // The id the file name gives: the header's own when it has one (so a forged header is not
    // always refused as another segment's), else the one the prepended header uses.
    let id = if flags & 32 != 0 {
        segment::decode_header(&buf).unwrap_or(ID)
    } else {
        ID
    };

    let (seen, scan) = run(id, &buf, next_seq, from, is_last, deep);
    check(id, &buf, from, is_last, &seen, &scan);
    assert_eq!(
        run(id, &buf, next_seq, from, is_last, deep),
        (seen.clone(), scan.clone()),
        "a second scan of the same bytes disagrees"
    );

    // Recovery truncates a torn tail (or a reused file's old bytes) at `end`; what is left,
    // zero-padded as preallocation leaves it, must scan clean with the same records. Only
    // when no region was corrupt: a bad region counts as corruption (not as the torn tail)
    // because a record that verifies follows it, and if that record's payload is then
    // malformed (a CRC-valid record only a writer's bug, or a CRC collision, makes), the cut
    // turns the region into the torn tail on the next scan: the fuzzer finds such records.
    if let (Tail::Torn { .. } | Tail::OldBytes { .. }, Some(end), true) =
        (&scan.tail, scan.end, scan.corrupt.is_empty())
    {
        let mut cut = buf[..end as usize].to_vec();
        cut.extend_from_slice(&[0u8; 64]);
        let (seen2, scan2) = run(id, &cut, next_seq, from, is_last, deep);
        assert_eq!(seen2, seen, "records differ after cutting the tail");
        assert_eq!(
            scan2.tail,
            Tail::Zeros,
            "the cut segment does not end clean: {scan:?} then {scan2:?}"
        );
        assert_eq!(scan2.end, Some(end));
        // The same regions (their messages may count the bytes that remain, which the cut
        // changed).
        let regions = |s: &SegmentScan| -> Vec<_> {
            s.corrupt
                .iter()
                .map(|c| (c.kind, c.offset, c.len))
                .collect()
        };
        assert_eq!(regions(&scan2), regions(&scan));
    }
});

/// Offsets and kinds of the visited records, plus the scan's classification.
type Seen = Vec<(u64, RecordKind, u64)>;

fn run(
    id: u64,
    buf: &[u8],
    next_seq: Option<u64>,
    from: Option<u64>,
    is_last: bool,
    deep: bool,
) -> (Seen, SegmentScan) {
    let mut seen = Vec::new();
    let mut scanner = Scanner::new(next_seq, deep);
    let scan = scanner.segment(id, buf, from, is_last, |off, rec| {
        let (kind, n) = match rec {
            Record::Put { batch, gap } => {
                // The gap is measured against the seq expected before this batch.
                let _ = gap;
                (RecordKind::PutBatch, u64::from(batch.count))
            }
            Record::Take { ranges, .. } => {
                for &(s, e) in &ranges {
                    assert!(s < e, "empty or reversed take range ({s}, {e})");
                }
                (RecordKind::TakeCommit, ranges.len() as u64)
            }
        };
        seen.push((off, kind, n));
    });
    (seen, scan)
}

fn check(id: u64, buf: &[u8], from: Option<u64>, is_last: bool, seen: &Seen, scan: &SegmentScan) {
    let len = buf.len() as u64;
    let start = from.unwrap_or(SEGMENT_HEADER_LEN as u64);
    let mut records_end = start;
    for &(off, kind, _) in seen {
        assert!(
            off >= records_end,
            "record at {off} overlaps the one before"
        );
        assert!(off < len, "record at {off} past the end ({len})");
        match record::decode(id, &buf[off as usize..]) {
            ScanOutcome::Record(r) => {
                assert_eq!(r.kind, kind, "record at {off} changed kind");
                records_end = off + r.total_len as u64;
                assert!(records_end <= len);
            }
            other => panic!("visited record at {off} does not decode: {other:?}"),
        }
    }
    let mut corrupt_end = 0;
    for c in &scan.corrupt {
        assert!(c.offset >= corrupt_end, "corrupt regions out of order");
        assert!(
            c.offset.saturating_add(c.len) <= len.max(c.offset),
            "corrupt region runs past the end"
        );
        assert!(!c.reason.is_empty());
        corrupt_end = c.offset + c.len;
    }
    if let Some(end) = scan.end {
        assert!(end <= len, "records end at {end}, past the end ({len})");
        assert!(
            end >= records_end,
            "records end before the last record does"
        );
    }
    if !is_last {
        assert!(
            matches!(scan.tail, Tail::Zeros | Tail::Corrupt),
            "only the last segment may end in {:?}",
            scan.tail
        );
    }
    match &scan.tail {
        Tail::Zeros => {
            let end = scan.end.expect("a clean end has a position");
            assert!(
                buf[end as usize..].iter().all(|&b| b == 0),
                "a zero tail holds non-zero bytes"
            );
        }
        Tail::CreationCutShort => {
            assert!(seen.is_empty() && scan.end.is_none());
        }
        Tail::Torn { reason } | Tail::OldBytes { reason } => {
            assert!(!reason.is_empty());
            assert!(scan.end.is_some());
        }
        Tail::Corrupt => assert!(!scan.corrupt.is_empty(), "a corrupt end names no region"),
    }
}
