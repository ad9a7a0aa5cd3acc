//! Segment file header: identifies a file as a flumen log segment of a given id and version.
//!
//! ```text
//! 0      8  magic "FLUMNSEG"
//! 8      4  format version (u32 LE)
//! 12     4  flags (u32 LE, 0; reserved)
//! 16     8  segment id (u64 LE)
//! 24     4  reserved (0)
//! 28     4  CRC32 of bytes 0..28
//! ```

use super::{FormatError, Reader, FORMAT_VERSION};

/// The first 8 bytes of every segment file.
pub const SEGMENT_MAGIC: [u8; 8] = *b"FLUMNSEG";
/// Records start right after the header.
pub const SEGMENT_HEADER_LEN: usize = 32;

/// The header of segment `id`.
pub fn encode_header(id: u64) -> [u8; SEGMENT_HEADER_LEN] {
    let mut h = [0u8; SEGMENT_HEADER_LEN];
    h[0..8].copy_from_slice(&SEGMENT_MAGIC);
    h[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    h[16..24].copy_from_slice(&id.to_le_bytes());
    let crc = crc32fast::hash(&h[0..28]);
    h[28..32].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Decodes a segment header and returns the segment id.
pub fn decode_header(buf: &[u8]) -> Result<u64, FormatError> {
    let mut r = Reader::new(buf, "segment header");
    let magic: [u8; 8] = r.array()?;
    if magic != SEGMENT_MAGIC {
        return Err(FormatError::BadMagic {
            what: "segment file",
        });
    }
    let version = r.u32()?;
    let _flags = r.u32()?;
    let id = r.u64()?;
    let _reserved = r.u32()?;
    let stored = r.u32()?;
    let computed = crc32fast::hash(&buf[0..28]);
    FormatError::check_crc("segment header", stored, computed)?;
    // Checked after the CRC so that a corrupt header is reported as corruption, and a real
    // header from a newer release as a version problem.
    if version != FORMAT_VERSION {
        return Err(FormatError::Version {
            found: version,
            supported: FORMAT_VERSION,
        });
    }
    Ok(id)
}

/// File name of segment `id`: fixed width so names sort by id.
pub fn file_name(id: u64) -> String {
    format!("seg-{id:020}.log")
}

/// The id in a segment file name, if it is one.
pub fn parse_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("seg-")?.strip_suffix(".log")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_and_detects_damage() {
        let h = encode_header(42);
        assert_eq!(decode_header(&h), Ok(42));
        for i in 0..SEGMENT_HEADER_LEN {
            let mut bad = h;
            bad[i] ^= 0x10;
            assert!(
                decode_header(&bad).is_err(),
                "flip at byte {i} went unnoticed"
            );
        }
        assert!(matches!(
            decode_header(&h[..10]),
            Err(FormatError::Truncated { .. })
        ));
    }

    #[test]
    fn file_names_sort_by_id_and_parse_back() {
        assert_eq!(parse_file_name(&file_name(7)), Some(7));
        assert!(file_name(9) < file_name(10));
        assert_eq!(parse_file_name("seg-1.log"), None);
        assert_eq!(parse_file_name("checkpoint-00000000000000000001"), None);
    }
}
