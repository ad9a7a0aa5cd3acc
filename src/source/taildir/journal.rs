//! The position journal, `<positionFile>.journal`: where the positions go after each
//! committed batch, so the position file itself is replaced (temporary file, rename) only
//! every `writePosInterval`, when the journal grows large, and at shutdown.
//!
//! Why: replacing a file by rename after every batch costs far more than the batch on ext4
//! (renaming over an existing file starts writeback of the new one), while appending a few
//! hundred bytes to an open file costs microseconds.
//!
//! Layout (docs/FORMAT.md): records appended one after another, each `FTPJ` (4 bytes), the
//! content's length (u32 LE), the rewrite number `seq` (u64 LE), a CRC-32 (u32 LE) of the
//! `seq` bytes and the content, then the content: the position file's own bytes for that
//! moment ([`super::position::render_into`]). Invariants: a record is appended only after the
//! commits it describes; the last record whose CRC holds is the newest position, and a torn
//! or missing tail (a kill -9 inside a write, a power cut before writeback) only falls back to
//! an older record or the position file, which re-delivers lines and never skips any. The
//! journal is emptied only after the position file was replaced with positions at least as
//! new, so a position is never lost by emptying it.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 4] = b"FTPJ";
const HEADER: usize = 4 + 4 + 8 + 4;
/// The journal is folded into the position file once it is this long (or 8 records' worth).
const FOLD_AT: u64 = 1 << 20;

/// See the module docs.
pub struct Journal {
    file: File,
    path: PathBuf,
    len: u64,
}

/// The newest record found when opening: its `seq` and content.
pub struct Newest {
    pub seq: u64,
    pub content: Vec<u8>,
}

impl Journal {
    /// Opens (creating) the journal of position file `pos`, and finds its newest whole
    /// record. A journal longer than it needs to be is not read past [`FOLD_AT`] times 4.
    pub fn open(pos: &Path) -> std::io::Result<(Journal, Option<Newest>)> {
        let path = journal_path(pos);
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)?;
        let mut bytes = Vec::new();
        (&mut file).take(FOLD_AT * 4).read_to_end(&mut bytes)?;
        let (newest, valid) = newest_record(&bytes);
        // Records appended after a torn one would never be read: cut the tail first.
        if (valid as u64) < file.metadata()?.len() {
            file.set_len(valid as u64)?;
        }
        Ok((
            Journal {
                file,
                path,
                len: valid as u64,
            },
            newest,
        ))
    }

    /// Appends a record of `content` (the position file's bytes at rewrite `seq`).
    pub fn append(&mut self, seq: u64, content: &[u8]) -> std::io::Result<()> {
        let len = u32::try_from(content.len()).map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "positions over 4 GiB")
        })?;
        let mut rec = Vec::with_capacity(HEADER + content.len());
        rec.extend_from_slice(MAGIC);
        rec.extend_from_slice(&len.to_le_bytes());
        rec.extend_from_slice(&seq.to_le_bytes());
        let mut h = crc32fast::Hasher::new();
        h.update(&seq.to_le_bytes());
        h.update(content);
        rec.extend_from_slice(&h.finalize().to_le_bytes());
        rec.extend_from_slice(content);
        // One write: a kill -9 leaves it whole or cut short, and a cut one fails its CRC.
        self.file.write_all(&rec)?;
        self.len += rec.len() as u64;
        Ok(())
    }

    /// Whether the journal should be folded into the position file now (it is long against
    /// records of `content_len` bytes).
    pub fn wants_fold(&self, content_len: usize) -> bool {
        self.len >= FOLD_AT.max(8 * (HEADER + content_len) as u64)
    }

    /// Empties the journal; call only once the position file holds positions at least as new
    /// as its records.
    pub fn clear(&mut self) -> std::io::Result<()> {
        self.file.set_len(0)?;
        self.len = 0;
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The newest whole record of the journal of `pos`, read-only (`None` without one).
pub fn read_newest(pos: &Path) -> Option<Newest> {
    let mut bytes = Vec::new();
    File::open(journal_path(pos))
        .ok()?
        .take(FOLD_AT * 4)
        .read_to_end(&mut bytes)
        .ok()?;
    newest_record(&bytes).0
}

/// `<positionFile>.journal`.
pub fn journal_path(pos: &Path) -> PathBuf {
    let mut name = pos.file_name().unwrap_or_default().to_os_string();
    name.push(".journal");
    pos.with_file_name(name)
}

/// The last record of `bytes` whose header and CRC hold, and where the whole records end;
/// parsing stops at the first one that does not hold (a torn tail).
fn newest_record(bytes: &[u8]) -> (Option<Newest>, usize) {
    let mut at = 0usize;
    let mut newest = None;
    while let Some(head) = bytes.get(at..at + HEADER) {
        if &head[..4] != MAGIC {
            break;
        }
        let len = u32::from_le_bytes([head[4], head[5], head[6], head[7]]) as usize;
        let seq_bytes: [u8; 8] = [
            head[8], head[9], head[10], head[11], head[12], head[13], head[14], head[15],
        ];
        let crc = u32::from_le_bytes([head[16], head[17], head[18], head[19]]);
        let Some(content) = bytes.get(at + HEADER..at + HEADER + len) else {
            break;
        };
        let mut h = crc32fast::Hasher::new();
        h.update(&seq_bytes);
        h.update(content);
        if h.finalize() != crc {
            break;
        }
        newest = Some(Newest {
            seq: u64::from_le_bytes(seq_bytes),
            content: content.to_vec(),
        });
        at += HEADER + len;
    }
    (newest, at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_whole_record_wins_and_a_torn_tail_is_ignored() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pos = dir.path().join("p.json");
        let (mut j, newest) = Journal::open(&pos).expect("open");
        assert!(newest.is_none());
        j.append(1, b"one").expect("append");
        j.append(2, b"two").expect("append");
        drop(j);
        let (_, newest) = Journal::open(&pos).expect("open");
        let n = newest.expect("a record");
        assert_eq!((n.seq, n.content.as_slice()), (2, &b"two"[..]));
        // A record cut short by a kill, or garbage after a power cut: the previous one.
        let mut f = OpenOptions::new()
            .append(true)
            .open(journal_path(&pos))
            .expect("open");
        f.write_all(b"FTPJ\x05\x00\x00\x00\x03\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00th")
            .expect("write");
        drop(f);
        let (mut j, newest) = Journal::open(&pos).expect("open");
        assert_eq!(newest.expect("a record").seq, 2);
        // The torn tail was cut, so a record appended now is found.
        j.append(3, b"three").expect("append");
        drop(j);
        let (mut j, newest) = Journal::open(&pos).expect("open");
        assert_eq!(newest.expect("a record").seq, 3);
        j.clear().expect("clear");
        let (_, newest) = Journal::open(&pos).expect("open");
        assert!(newest.is_none());
    }
}
