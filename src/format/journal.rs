//! The take journal: a copy of each take commit's record, appended to a small side file when the
//! commit returns, for the window in which the record itself still waits in memory for its
//! group's block write (see `channel::file` and docs/FORMAT.md, "Take journal").
//!
//! ```text
//! header (16 bytes)
//! 0      8  magic "FLUMNTKJ"
//! 8      4  format version (u32 LE)
//! 12     4  CRC32 of bytes 0..12
//! entries, back to back, until the first that does not verify
//! 0      4  CRC32 of bytes 4..(20 + record length)
//! 4      8  segment id the record belongs to (u64 LE)
//! 12     8  offset of the record in that segment (u64 LE)
//! 20     …  the TakeCommit record, byte for byte as in the segment (its CRC covers the id)
//! ```
//!
//! The journal is never synced: it only has to outlive the process, not the machine. So its
//! end is wherever the process stopped writing, and decoding stops, without error, at the first
//! entry that is cut short, zero, or does not verify.

use super::record::{self, decode_take_commit, RecordKind, ScanOutcome};
use super::{FormatError, FORMAT_VERSION};

/// The first 8 bytes of a take journal file.
pub const JOURNAL_MAGIC: [u8; 8] = *b"FLUMNTKJ";
/// Entries start right after the header.
pub const JOURNAL_HEADER_LEN: usize = 16;
/// Bytes before the record in an entry.
pub const ENTRY_PREFIX_LEN: usize = 20;

/// The journal file header.
pub fn encode_header() -> [u8; JOURNAL_HEADER_LEN] {
    let mut h = [0u8; JOURNAL_HEADER_LEN];
    h[0..8].copy_from_slice(&JOURNAL_MAGIC);
    h[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    let crc = crc32fast::hash(&h[0..12]);
    h[12..16].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Appends the entry for `record` (a TakeCommit record of `segment`, at `offset`) to `out`.
pub fn encode_entry(segment: u64, offset: u64, record: &[u8], out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0u8; 4]);
    out.extend_from_slice(&segment.to_le_bytes());
    out.extend_from_slice(&offset.to_le_bytes());
    out.extend_from_slice(record);
    let crc = crc32fast::hash(&out[start + 4..]);
    out[start..start + 4].copy_from_slice(&crc.to_le_bytes());
}

/// One decoded entry: a take commit and where its record goes in the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalEntry {
    pub segment: u64,
    pub offset: u64,
    pub ranges: Vec<(u64, u64)>,
    pub body_bytes: u64,
}

/// Every entry of a journal file, in order, up to the first that does not verify. A file that
/// does not start with a valid header is an error (it is not a journal); an empty file has no
/// entries.
pub fn decode(buf: &[u8]) -> Result<Vec<JournalEntry>, FormatError> {
    if buf.is_empty() {
        return Ok(vec![]);
    }
    let Some(header) = buf.get(..JOURNAL_HEADER_LEN) else {
        return Err(FormatError::Truncated {
            what: "take journal header",
            needed: JOURNAL_HEADER_LEN as u64,
            available: buf.len() as u64,
        });
    };
    if header[0..8] != JOURNAL_MAGIC {
        return Err(FormatError::BadMagic {
            what: "take journal",
        });
    }
    let stored = u32::from_le_bytes([header[12], header[13], header[14], header[15]]);
    let computed = crc32fast::hash(&header[0..12]);
    FormatError::check_crc("take journal header", stored, computed)?;
    let version = u32::from_le_bytes([header[8], header[9], header[10], header[11]]);
    if version != FORMAT_VERSION {
        return Err(FormatError::Version {
            found: version,
            supported: FORMAT_VERSION,
        });
    }
    let mut out = vec![];
    let mut rest = &buf[JOURNAL_HEADER_LEN..];
    while let Some((entry, len)) = decode_entry(rest) {
        out.push(entry);
        rest = &rest[len..];
    }
    Ok(out)
}

/// The entry at the start of `buf` and its length, or `None` where the journal ends.
fn decode_entry(buf: &[u8]) -> Option<(JournalEntry, usize)> {
    let prefix = buf.get(..ENTRY_PREFIX_LEN)?;
    let word = |at: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&prefix[at..at + 8]);
        u64::from_le_bytes(b)
    };
    let stored = u32::from_le_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]);
    let (segment, offset) = (word(4), word(12));
    let ScanOutcome::Record(r) = record::decode(segment, &buf[ENTRY_PREFIX_LEN..]) else {
        return None;
    };
    if r.kind != RecordKind::TakeCommit {
        return None;
    }
    let len = ENTRY_PREFIX_LEN + r.total_len;
    if crc32fast::hash(&buf[4..len]) != stored {
        return None;
    }
    let (ranges, body_bytes) = decode_take_commit(r.payload).ok()?;
    Some((
        JournalEntry {
            segment,
            offset,
            ranges,
            body_bytes,
        },
        len,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::record::encode_take_commit;

    fn entry(segment: u64, offset: u64, ranges: &[(u64, u64)], out: &mut Vec<u8>) {
        let mut rec = vec![];
        encode_take_commit(segment, ranges, 77, &mut rec);
        encode_entry(segment, offset, &rec, out);
    }

    #[test]
    fn entries_round_trip_and_a_torn_last_one_ends_the_journal() {
        let mut buf = encode_header().to_vec();
        entry(3, 4096, &[(0, 10)], &mut buf);
        entry(3, 8192, &[(10, 12), (20, 30)], &mut buf);
        let whole = buf.len();
        entry(4, 32, &[(30, 31)], &mut buf);
        let got = decode(&buf).expect("decodes");
        assert_eq!(got.len(), 3);
        assert_eq!(
            got[1],
            JournalEntry {
                segment: 3,
                offset: 8192,
                ranges: vec![(10, 12), (20, 30)],
                body_bytes: 77
            }
        );
        // Cut anywhere inside the last entry: the first two remain.
        for cut in whole..buf.len() {
            assert_eq!(
                decode(&buf[..cut]).expect("decodes").len(),
                2,
                "cut at {cut}"
            );
        }
        // A flipped bit in the offset (outside the record's own CRC) ends the journal there.
        let mut bad = buf.clone();
        bad[JOURNAL_HEADER_LEN + 12] ^= 1;
        assert!(decode(&bad).expect("decodes").is_empty());
    }

    #[test]
    fn a_foreign_file_is_an_error_and_an_empty_one_has_no_entries() {
        assert!(decode(&[]).expect("empty").is_empty());
        assert!(matches!(
            decode(b"FLUMNSEG\x01\0\0\0\0\0\0\0"),
            Err(FormatError::BadMagic { .. })
        ));
        let mut h = encode_header();
        h[13] ^= 1;
        assert!(matches!(decode(&h), Err(FormatError::Checksum { .. })));
        assert!(matches!(
            decode(&h[..5]),
            Err(FormatError::Truncated { .. })
        ));
    }
}
