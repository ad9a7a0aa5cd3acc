//! The TAILDIR position file: where each tailed file's committed lines end, so a restart
//! (or a kill -9) resumes there.
//!
//! Layout (docs/FORMAT.md, "TAILDIR position file"): Flume's own JSON array
//! `[{"inode":N,"pos":N,"file":"/path"},...]`, then a second JSON value, an object
//! `{"flumen":{"version":1,"seq":N,"files":[{"inode":N,"file":"/path","dev":N,"fp_len":N,"fp_crc":N}]}}`
//! with the rewrite's number (which orders it against the journal, [`super::journal`]) and
//! each file's device and fingerprint (CRC-32 of its first `fp_len` bytes). Flume's
//! reader stops after the array, so it reads a flumen position file back; flumen reads a
//! file Flume wrote (array only) and then knows those files by inode and path, as Flume did.
//!
//! Invariants: a position is only ever written after the channel commit of the lines before
//! it; the file is replaced whole (write a temporary file, rename it over), so a crash leaves
//! the old or the new file, never a mix; [`save`] with `durable` also fsyncs the file before
//! the rename and the directory after it, so the rename survives a power cut.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// A file's first bytes, summarised: tells a file apart from another that got the same
/// inode number, and a file from its own content replaced in place (copy-truncate).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    /// How many leading bytes were summed (less than [`FINGERPRINT_BYTES`] while the file
    /// is shorter).
    pub len: u32,
    /// CRC-32 (IEEE) of those bytes.
    pub crc: u32,
}

/// Bytes summed into a fingerprint, at most (as Filebeat's default).
pub const FINGERPRINT_BYTES: u32 = 1024;

/// Who a saved position belongs to, beyond Flume's inode and path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Identity {
    pub dev: u64,
    pub fingerprint: Fingerprint,
}

/// One file's saved position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Saved {
    pub inode: u64,
    /// Offset of the first byte not yet committed (a line start, or the end of a last line
    /// put without its newline when the file went idle).
    pub pos: u64,
    pub file: PathBuf,
    /// `None` for an entry Apache Flume wrote.
    pub identity: Option<Identity>,
}

/// Why a position file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PositionError {
    #[error("cannot read the position file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the position file {path} is not a TAILDIR position file (at byte {offset}: {what}); \
         move it aside to start over (every file is then read from its start, or from its end \
         with skipToEnd = true)"
    )]
    Corrupt {
        path: PathBuf,
        offset: usize,
        what: String,
    },
}

#[derive(Deserialize)]
struct FlumeEntry {
    inode: u64,
    pos: u64,
    file: String,
}

#[derive(Deserialize)]
struct Extra {
    flumen: ExtraBody,
}

#[derive(Deserialize)]
struct ExtraBody {
    version: u32,
    /// Which rewrite this is (absent in files written before it existed: 0).
    #[serde(default)]
    seq: u64,
    files: Vec<ExtraFile>,
}

#[derive(Deserialize)]
struct ExtraFile {
    inode: u64,
    file: String,
    dev: u64,
    fp_len: u32,
    fp_crc: u32,
}

/// What a position file holds: the entries and the number of the rewrite that wrote them
/// (0 for a file Flume wrote).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Positions {
    pub entries: Vec<Saved>,
    pub seq: u64,
}

/// The newest positions a source on `path` would resume from: the position file, or its
/// journal's newest whole record when that is newer (read-only; for tests and tools).
pub fn load_current(path: &Path) -> Result<Positions, PositionError> {
    let main = load(path)?;
    match super::journal::read_newest(path) {
        Some(n) if n.seq > main.seq => {
            parse(&n.content).map_err(|(offset, what)| PositionError::Corrupt {
                path: super::journal::journal_path(path),
                offset,
                what,
            })
        }
        _ => Ok(main),
    }
}

/// Reads `path`; an absent file is an empty list.
pub fn load(path: &Path) -> Result<Positions, PositionError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Positions::default()),
        Err(source) => {
            return Err(PositionError::Io {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    parse(&bytes).map_err(|(offset, what)| PositionError::Corrupt {
        path: path.to_path_buf(),
        offset,
        what,
    })
}

pub fn parse(bytes: &[u8]) -> Result<Positions, (usize, String)> {
    // Flume writes an empty file before its first position; so may a crash of an old agent.
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Positions::default());
    }
    let mut stream = serde_json::Deserializer::from_slice(bytes).into_iter::<serde_json::Value>();
    let first = match stream.next() {
        Some(Ok(v)) => v,
        Some(Err(e)) => return Err((stream.byte_offset(), e.to_string())),
        None => return Ok(Positions::default()),
    };
    let entries: Vec<FlumeEntry> = serde_json::from_value(first).map_err(|e| {
        (
            0,
            format!("expected Flume's list of {{inode, pos, file}}: {e}"),
        )
    })?;
    let extra_at = stream.byte_offset();
    let (extra, seq): (Vec<ExtraFile>, u64) = match stream.next() {
        None => (Vec::new(), 0),
        Some(Ok(v)) => match serde_json::from_value::<Extra>(v) {
            Ok(x) if x.flumen.version == 1 => (x.flumen.files, x.flumen.seq),
            Ok(x) => {
                return Err((
                    extra_at,
                    format!(
                        "version {} of flumen's file identities (this flumen reads 1)",
                        x.flumen.version
                    ),
                ))
            }
            Err(e) => return Err((extra_at, format!("flumen's file identities: {e}"))),
        },
        Some(Err(e)) => return Err((stream.byte_offset(), e.to_string())),
    };
    let entries = entries
        .into_iter()
        .map(|e| {
            let identity = extra
                .iter()
                .find(|x| x.inode == e.inode && x.file == e.file)
                .map(|x| Identity {
                    dev: x.dev,
                    fingerprint: Fingerprint {
                        len: x.fp_len,
                        crc: x.fp_crc,
                    },
                });
            Saved {
                inode: e.inode,
                pos: e.pos,
                file: PathBuf::from(e.file),
                identity,
            }
        })
        .collect();
    Ok(Positions { entries, seq })
}

/// One entry as [`render_into`] takes it (borrowed, so a save clones no paths).
#[derive(Clone, Copy)]
pub struct EntryRef<'a> {
    pub inode: u64,
    pub pos: u64,
    pub file: &'a Path,
    pub identity: Option<Identity>,
}

impl<'a> From<&'a Saved> for EntryRef<'a> {
    fn from(s: &'a Saved) -> Self {
        EntryRef {
            inode: s.inode,
            pos: s.pos,
            file: &s.file,
            identity: s.identity,
        }
    }
}

/// The file's bytes for `entries`.
pub fn render(entries: &[Saved], seq: u64) -> Vec<u8> {
    let mut out = Vec::new();
    render_into(entries.iter().map(EntryRef::from), seq, &mut out);
    out
}

/// Appends the file's bytes for `entries` to `out`. Written by hand rather than through
/// serde structs: it runs after every committed batch, for every tailed file.
pub fn render_into<'a>(
    entries: impl Iterator<Item = EntryRef<'a>> + Clone,
    seq: u64,
    out: &mut Vec<u8>,
) {
    use std::io::Write as _;
    // Writing into a Vec cannot fail; a path that is not UTF-8 is written lossily (it will
    // not match its file by path after a restart, only by device, inode and fingerprint).
    let string = |out: &mut Vec<u8>, p: &Path| {
        let _ = serde_json::to_writer(&mut *out, p.to_string_lossy().as_ref());
    };
    out.push(b'[');
    for (i, e) in entries.clone().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let _ = write!(out, "{{\"inode\":{},\"pos\":{},\"file\":", e.inode, e.pos);
        string(out, e.file);
        out.push(b'}');
    }
    let _ = write!(
        out,
        "]\n{{\"flumen\":{{\"version\":1,\"seq\":{seq},\"files\":["
    );
    let mut first = true;
    for e in entries {
        let Some(id) = e.identity else { continue };
        if !first {
            out.push(b',');
        }
        first = false;
        let _ = write!(out, "{{\"inode\":{},\"file\":", e.inode);
        string(out, e.file);
        let _ = write!(
            out,
            ",\"dev\":{},\"fp_len\":{},\"fp_crc\":{}}}",
            id.dev, id.fingerprint.len, id.fingerprint.crc
        );
    }
    out.extend_from_slice(b"]}}\n");
}

/// Replaces `path` with `entries` (see the module docs); `durable` adds the fsyncs.
pub fn save(path: &Path, entries: &[Saved], seq: u64, durable: bool) -> std::io::Result<()> {
    save_bytes(path, &render(entries, seq), durable)
}

/// Replaces `path` with `bytes` (made by [`render_into`]); `durable` adds the fsyncs.
pub fn save_bytes(path: &Path, bytes: &[u8], durable: bool) -> std::io::Result<()> {
    let tmp = temp_path(path);
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)?;
    f.write_all(bytes)?;
    if durable {
        f.sync_data()?;
    }
    drop(f);
    std::fs::rename(&tmp, path)?;
    if durable {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            File::open(dir)?.sync_all()?;
        }
    }
    Ok(())
}

/// The temporary file [`save`] writes before renaming it over `path`.
pub fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_flume_writes() {
        let got = parse(br#"[{"inode":2496275,"pos":6,"file":"/tmp/a.log"},{"inode":7,"pos":0,"file":"/tmp/b.log"}]"#)
            .expect("parse")
            .entries;
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].inode, 2496275);
        assert_eq!(got[0].pos, 6);
        assert_eq!(got[0].file, PathBuf::from("/tmp/a.log"));
        assert_eq!(got[0].identity, None);
        assert!(parse(b"").expect("empty").entries.is_empty());
    }

    #[test]
    fn round_trips_identities_and_starts_with_flumes_array() {
        let entries = vec![
            Saved {
                inode: 11,
                pos: 100,
                file: PathBuf::from("/l/a.log"),
                identity: Some(Identity {
                    dev: 2049,
                    fingerprint: Fingerprint { len: 1024, crc: 77 },
                }),
            },
            Saved {
                inode: 12,
                pos: 5,
                file: PathBuf::from("/l/b.log"),
                identity: None,
            },
        ];
        let bytes = render(&entries, 42);
        assert_eq!(
            parse(&bytes).expect("parse"),
            Positions { entries, seq: 42 }
        );
        // What Flume's reader sees: the first JSON value, its array.
        let text = String::from_utf8(bytes).expect("utf-8");
        let first_line = text.lines().next().expect("a line");
        let flume: serde_json::Value = serde_json::from_str(first_line).expect("json");
        assert_eq!(
            flume,
            serde_json::json!([{"inode":11,"pos":100,"file":"/l/a.log"},{"inode":12,"pos":5,"file":"/l/b.log"}])
        );
    }

    #[test]
    fn corrupt_files_are_named_with_the_offset() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("pos.json");
        std::fs::write(&p, b"[{\"inode\":1,\"pos\":").expect("write");
        let e = load(&p).expect_err("an error").to_string();
        assert!(e.contains("pos.json") && e.contains("at byte"), "{e}");
        std::fs::write(&p, b"{\"a\":1}").expect("write");
        assert!(load(&p).is_err());
        assert!(load(&dir.path().join("absent.json"))
            .expect("absent")
            .entries
            .is_empty());
    }

    #[test]
    fn save_replaces_the_file_whole() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("pos.json");
        let one = vec![Saved {
            inode: 1,
            pos: 2,
            file: PathBuf::from("/x"),
            identity: None,
        }];
        save(&p, &one, 1, true).expect("save");
        save(&p, &[], 2, false).expect("save");
        assert!(load(&p).expect("load").entries.is_empty());
        assert!(!temp_path(&p).exists());
    }
}
