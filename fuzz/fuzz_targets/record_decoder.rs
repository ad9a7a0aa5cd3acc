//! Fuzzes the log record decoder the way recovery drives it, plus PutBatch and TakeCommit
//! round trips.
//!
//! Input: the first 8 bytes (when present) are the segment id, little-endian; the rest is a
//! segment body (the bytes after the segment header). The body is also framed as the payload of
//! one PutBatch and one TakeCommit record with a correct CRC, so that the payload parsers are
//! fuzzed behind the checksum. The same bytes also seed a set of events that must survive
//! PutBatchEncoder -> decode unchanged. The input is also read as a take journal, as is and
//! behind a valid journal header.

#![no_main]

use std::hint::black_box;

use flumen::event::Headers;
use flumen::format::record::{
    self, PutBatchEncoder, PutBatchView, RecordKind, ScanOutcome, RECORD_HEADER_LEN,
};
use flumen_fuzz::{split_segment_input, Cursor};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (segment_id, body) = split_segment_input(data);
    walk(segment_id, body);
    framed(segment_id, body);
    round_trip(segment_id, data);
    journal(data);
});

/// The take journal decoder stops at the first entry that does not verify, never panics, and
/// returns no more entries than the bytes could hold.
fn journal(data: &[u8]) {
    use flumen::format::journal;
    let _ = black_box(journal::decode(data));
    let mut framed = journal::encode_header().to_vec();
    framed.extend_from_slice(data);
    let entries = journal::decode(&framed).expect("a valid header decodes");
    assert!(entries.len() * (journal::ENTRY_PREFIX_LEN + RECORD_HEADER_LEN) <= data.len());
}

/// Walks a segment like recovery: decode at an offset; a record advances by its length, a bad
/// record resyncs at the next valid one (or ends the walk), a zero length ends it.
fn walk(segment_id: u64, body: &[u8]) {
    let mut off = 0usize;
    loop {
        assert!(off <= body.len());
        match record::decode(segment_id, &body[off..]) {
            ScanOutcome::Record(r) => {
                assert!(
                    r.total_len > RECORD_HEADER_LEN,
                    "a record must have a payload"
                );
                assert_eq!(r.total_len, RECORD_HEADER_LEN + r.payload.len());
                assert!(
                    r.total_len <= body.len() - off,
                    "record runs past the buffer"
                );
                let bytes = &body[off..off + r.total_len];
                match r.kind {
                    RecordKind::PutBatch => touch_put_batch(segment_id, bytes, r.payload),
                    RecordKind::TakeCommit => touch_take_commit(segment_id, bytes, r.payload),
                }
                off += r.total_len;
            }
            ScanOutcome::Bad(e) => {
                black_box(e.to_string());
                assert!(off < body.len(), "an empty buffer must read as End");
                match record::find_next_valid(segment_id, body, off + 1) {
                    Some(next) => {
                        assert!(next > off && next < body.len());
                        assert!(
                            matches!(
                                record::decode(segment_id, &body[next..]),
                                ScanOutcome::Record(_)
                            ),
                            "find_next_valid returned {next}, which does not decode"
                        );
                        off = next;
                    }
                    None => break,
                }
            }
            ScanOutcome::End => break,
        }
    }
}

/// `payload` framed as a record of each kind, with the CRC computed as docs/FORMAT.md and
/// record.rs's header comment define it: CRC32(segment_id | len | kind | payload).
fn framed(segment_id: u64, payload: &[u8]) {
    let Ok(len) = u32::try_from(payload.len()) else {
        return;
    };
    if len == 0 {
        return;
    }
    for kind in [RecordKind::PutBatch, RecordKind::TakeCommit] {
        let mut h = crc32fast::Hasher::new();
        h.update(&segment_id.to_le_bytes());
        h.update(&len.to_le_bytes());
        h.update(&[kind as u8]);
        h.update(payload);
        let mut rec = Vec::with_capacity(RECORD_HEADER_LEN + payload.len());
        rec.extend_from_slice(&len.to_le_bytes());
        rec.extend_from_slice(&h.finalize().to_le_bytes());
        rec.push(kind as u8);
        rec.extend_from_slice(payload);
        let r = match record::decode(segment_id, &rec) {
            ScanOutcome::Record(r) => r,
            other => panic!("a correctly framed record does not decode: {other:?}"),
        };
        assert_eq!(r.kind, kind);
        assert_eq!(r.payload, payload);
        assert_eq!(r.total_len, rec.len());
        match kind {
            RecordKind::PutBatch => touch_put_batch(segment_id, &rec, payload),
            RecordKind::TakeCommit => touch_take_commit(segment_id, &rec, payload),
        }
    }
}

fn touch_put_batch(segment_id: u64, record_bytes: &[u8], payload: &[u8]) {
    let view = match PutBatchView::parse(payload) {
        Ok(v) => v,
        Err(e) => {
            black_box(e.to_string());
            return;
        }
    };
    let mut ok_events = 0u64;
    let mut body_sum = 0u64;
    let mut yielded = 0u64;
    let mut all_ok = true;
    let mut canonical = true;
    let mut events = Vec::new();
    for item in view.events() {
        yielded += 1;
        assert!(
            yielded <= u64::from(view.count) + 1,
            "iterator runs past count + 1"
        );
        match item {
            Ok(ev) => {
                ok_events += 1;
                let mut prev: Option<&str> = None;
                for &(k, v) in &ev.headers {
                    black_box((k.len(), v.len()));
                    if prev.is_some_and(|p| p >= k) {
                        canonical = false;
                    }
                    prev = Some(k);
                }
                black_box(ev.body.iter().fold(0u8, |a, &b| a ^ b));
                body_sum += ev.body.len() as u64;
                // body_offset must point at the body inside the payload.
                assert_eq!(
                    payload.get(ev.body_offset..ev.body_offset + ev.body.len()),
                    Some(ev.body)
                );
                events.push(ev);
            }
            Err(e) => {
                all_ok = false;
                black_box(e.to_string());
            }
        }
    }
    assert_eq!(
        view.validate().is_ok(),
        all_ok,
        "validate() disagrees with events()"
    );
    if !all_ok {
        return;
    }
    assert_eq!(ok_events, u64::from(view.count));
    // A well-formed batch whose header keys are sorted and unique and whose body_bytes is the
    // sum of its bodies (as the encoder writes them) must re-encode to exactly the same record.
    // (The decoder does not check body_bytes against the events: a CRC-valid record with a wrong
    // sum can only come from a writer bug, so it is not asserted here.)
    if canonical && view.body_bytes == body_sum {
        let mut enc = PutBatchEncoder::new();
        for ev in &events {
            let h: Headers = ev
                .headers
                .iter()
                .map(|&(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
            enc.push(&h, ev.body).expect("re-encoding a decoded batch");
        }
        assert_eq!(enc.body_bytes(), body_sum);
        let again = enc.finish(segment_id, view.first_seq, view.timestamp_ms);
        assert_eq!(
            again, record_bytes,
            "decoded batch does not re-encode to the same bytes"
        );
    }
}

fn touch_take_commit(segment_id: u64, record_bytes: &[u8], payload: &[u8]) {
    match record::decode_take_commit(payload) {
        Ok((ranges, body_bytes)) => {
            for &(s, e) in &ranges {
                assert!(s < e);
            }
            let mut out = Vec::new();
            record::encode_take_commit(segment_id, &ranges, body_bytes, &mut out);
            assert_eq!(
                out, record_bytes,
                "decoded take commit does not re-encode to the same bytes"
            );
        }
        Err(e) => {
            black_box(e.to_string());
        }
    }
}

/// Builds a batch from input-derived events and checks it decodes back to them exactly.
fn round_trip(segment_id: u64, data: &[u8]) {
    let mut c = Cursor::new(data);
    let first_seq = c.u64();
    let timestamp_ms = c.u64();
    let nevents = 1 + c.u8() as usize % 4;
    let mut expected: Vec<(Headers, Vec<u8>)> = Vec::with_capacity(nevents);
    let mut enc = PutBatchEncoder::new();
    for _ in 0..nevents {
        let mut h = Headers::new();
        for _ in 0..c.u8() % 4 {
            let k = c.string(8);
            let v = c.string(16);
            h.insert(k, v);
        }
        let body = c.bytes(64).to_vec();
        enc.push(&h, &body).expect("small event fits a record");
        expected.push((h, body));
    }
    assert_eq!(enc.count() as usize, nevents);

    // Encoded for one segment, then re-finished for another: both must verify.
    for id in [segment_id.wrapping_add(1), segment_id] {
        let rec = enc.finish(id, first_seq, timestamp_ms).to_vec();
        assert_eq!(rec.len(), RECORD_HEADER_LEN + enc.payload_len());
        check_batch(id, &rec, first_seq, timestamp_ms, &expected);
        // The CRC covers the segment id: a single bit of difference is always caught.
        assert!(
            matches!(record::decode(id ^ 1, &rec), ScanOutcome::Bad(_)),
            "record verified under the wrong segment id"
        );
    }

    // In a segment: the batch, a take commit, then preallocated zeros.
    let rec = enc.finish(segment_id, first_seq, timestamp_ms).to_vec();
    let ranges: Vec<(u64, u64)> = (0..c.u8() % 4)
        .map(|i| {
            let s = c.u32() as u64 + (u64::from(i) << 32);
            (s, s + 1 + u64::from(c.u8()))
        })
        .collect();
    let taken_bytes = c.u64();
    let mut seg = rec.clone();
    record::encode_take_commit(segment_id, &ranges, taken_bytes, &mut seg);
    assert_eq!(seg.len(), rec.len() + record::take_commit_len(ranges.len()));
    seg.extend_from_slice(&[0u8; 16]);
    let ScanOutcome::Record(r) = record::decode(segment_id, &seg) else {
        panic!("batch at the start of a segment did not decode")
    };
    assert_eq!(r.total_len, rec.len());
    let ScanOutcome::Record(t) = record::decode(segment_id, &seg[rec.len()..]) else {
        panic!("take commit after a batch did not decode")
    };
    assert_eq!(t.kind, RecordKind::TakeCommit);
    assert_eq!(
        record::decode_take_commit(t.payload),
        Ok((ranges, taken_bytes))
    );
    let end = rec.len() + t.total_len;
    assert_eq!(record::decode(segment_id, &seg[end..]), ScanOutcome::End);
    assert_eq!(record::find_next_valid(segment_id, &seg, end), None);
    // The take commit at rec.len() verifies, so a resync from inside the batch finds it or an
    // earlier record (an event body may itself hold a whole valid record).
    let resync = record::find_next_valid(segment_id, &seg, 1);
    assert!(
        matches!(resync, Some(p) if p >= 1 && p <= rec.len()),
        "resync gave {resync:?}"
    );
}

fn check_batch(
    segment_id: u64,
    rec: &[u8],
    first_seq: u64,
    timestamp_ms: u64,
    expected: &[(Headers, Vec<u8>)],
) {
    let r = match record::decode(segment_id, rec) {
        ScanOutcome::Record(r) => r,
        other => panic!("encoded batch does not decode: {other:?}"),
    };
    assert_eq!(r.kind, RecordKind::PutBatch);
    assert_eq!(r.total_len, rec.len());
    let parsed = PutBatchView::parse(r.payload);
    if first_seq.checked_add(expected.len() as u64).is_none() {
        // The decoder refuses seqs that would overflow; nothing else may fail.
        assert!(parsed.is_err(), "seq overflow accepted");
        return;
    }
    let view = parsed.expect("encoded batch parses");
    assert_eq!(view.first_seq, first_seq);
    assert_eq!(view.timestamp_ms, timestamp_ms);
    assert_eq!(view.count as usize, expected.len());
    let body_sum: u64 = expected.iter().map(|(_, b)| b.len() as u64).sum();
    assert_eq!(view.body_bytes, body_sum);
    view.validate().expect("encoded batch validates");
    let got: Vec<_> = view
        .events()
        .collect::<Result<_, _>>()
        .expect("encoded events decode");
    assert_eq!(got.len(), expected.len());
    for (ev, (h, body)) in got.iter().zip(expected) {
        let want: Vec<(&str, &str)> = h.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(ev.headers, want);
        assert_eq!(ev.body, &body[..]);
        assert_eq!(
            &r.payload[ev.body_offset..ev.body_offset + body.len()],
            &body[..]
        );
    }
}
