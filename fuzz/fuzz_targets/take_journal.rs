//! Fuzzes the take journal decoder (`flumen::format::journal`): the side file that carries a
//! take commit across a process crash while its record still waits for its group's write.
//!
//! The input is decoded as a whole file, and again behind a valid header (so the entry walk is
//! reached). Whatever decodes must re-encode to exactly the bytes it came from (the journal
//! holds no slack: entries back to back), and the decoder may not return more entries than the
//! bytes could hold. Then a journal built from input-derived entries must decode back
//! unchanged, and every cut of it (the journal is never synced: a crash cuts it anywhere) must
//! decode to a prefix of those entries.

#![no_main]

use std::hint::black_box;

use flumen::format::journal::{self, JournalEntry, ENTRY_PREFIX_LEN, JOURNAL_HEADER_LEN};
use flumen::format::record::{self, RECORD_HEADER_LEN};
use flumen_fuzz::Cursor;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match journal::decode(data) {
        Ok(entries) => check_reencodes(data, &entries),
        Err(e) => {
            black_box(e.to_string());
        }
    }
    let mut framed = journal::encode_header().to_vec();
    framed.extend_from_slice(data);
    let entries = journal::decode(&framed).expect("a valid header decodes");
    assert!(entries.len() * (ENTRY_PREFIX_LEN + RECORD_HEADER_LEN) <= data.len());
    check_reencodes(&framed, &entries);
    round_trip(data);
});

fn encode(entries: &[JournalEntry], out: &mut Vec<u8>) {
    for e in entries {
        let mut rec = Vec::new();
        record::encode_take_commit(e.segment, &e.ranges, e.body_bytes, &mut rec);
        journal::encode_entry(e.segment, e.offset, &rec, out);
    }
}

/// The decoded entries, encoded again after the header, are the file's first bytes.
fn check_reencodes(file: &[u8], entries: &[JournalEntry]) {
    if file.is_empty() {
        assert!(entries.is_empty());
        return;
    }
    let mut enc = journal::encode_header().to_vec();
    encode(entries, &mut enc);
    assert!(enc.len() <= file.len(), "entries longer than the file");
    assert_eq!(
        enc[JOURNAL_HEADER_LEN..],
        file[JOURNAL_HEADER_LEN..enc.len()]
    );
}

fn round_trip(data: &[u8]) {
    let mut c = Cursor::new(data);
    let mut entries = Vec::new();
    let mut seq = c.u64() >> 8;
    for _ in 0..c.u8() % 5 {
        let mut ranges = Vec::new();
        for _ in 0..1 + c.u8() % 4 {
            seq += u64::from(c.u8());
            let end = seq + 1 + u64::from(c.u8());
            ranges.push((seq, end));
            seq = end;
        }
        entries.push(JournalEntry {
            segment: c.u64(),
            offset: c.u64(),
            ranges,
            body_bytes: c.u64(),
        });
    }
    let mut file = journal::encode_header().to_vec();
    let mut ends = Vec::new();
    for e in &entries {
        encode(std::slice::from_ref(e), &mut file);
        ends.push(file.len());
    }
    assert_eq!(
        journal::decode(&file).expect("our journal decodes"),
        entries,
        "journal does not round-trip"
    );
    // A cut anywhere after the header keeps exactly the entries that end before it.
    let cut = JOURNAL_HEADER_LEN + usize::from(c.u8()) * 7 % (file.len() - JOURNAL_HEADER_LEN + 1);
    let whole = ends.iter().filter(|&&e| e <= cut).count();
    assert_eq!(
        journal::decode(&file[..cut]).expect("a cut journal decodes"),
        entries[..whole],
        "a journal cut at {cut} does not decode to its whole entries"
    );
}
