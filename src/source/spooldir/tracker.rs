//! The spooldir tracker: one small JSON file in `trackerDir` (docs/FORMAT.md, "spooldir
//! tracker") saying which file is being read, how that file looked when it was picked up
//! (device, inode, size, modification time) and how far its events are committed (the byte
//! offset of the next unread line).
//!
//! Invariant: the tracker on disk never claims more than the channels committed. It is
//! rewritten only after a commit returned, and atomically (a temporary file, fsync, rename),
//! so a crash at any instant leaves either the old or the new tracker, never a torn one; a
//! restart then resumes at the committed offset (at most the batch in flight is delivered
//! again) and finishes the rename of a file whose events were all committed.

use std::fs::{File, Metadata};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The tracker file's name inside `trackerDir`.
pub const TRACKER_FILE: &str = "flumen-spooldir.json";
/// The format version this code writes and reads.
pub const VERSION: u32 = 1;

/// How a file looked when it was picked up; any difference later means it changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub dev: u64,
    pub inode: u64,
    pub size: u64,
    /// Modification time, nanoseconds since the Unix epoch.
    pub mtime_ns: i64,
}

impl Identity {
    pub fn of(m: &Metadata) -> Identity {
        Identity {
            dev: m.dev(),
            inode: m.ino(),
            size: m.size(),
            mtime_ns: m
                .mtime()
                .saturating_mul(1_000_000_000)
                .saturating_add(m.mtime_nsec()),
        }
    }

    /// What differs between `self` (at pickup) and `now`, in words; `None` when nothing does.
    pub fn changed(&self, now: &Identity) -> Option<String> {
        if (self.dev, self.inode) != (now.dev, now.inode) {
            Some(format!(
                "it was replaced by another file (inode {} -> {})",
                self.inode, now.inode
            ))
        } else if self.size != now.size {
            Some(format!(
                "its size went from {} to {} bytes",
                self.size, now.size
            ))
        } else if self.mtime_ns != now.mtime_ns {
            Some("its modification time changed".to_string())
        } else {
            None
        }
    }
}

/// The tracker's content. See the module docs and docs/FORMAT.md.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tracker {
    pub version: u32,
    /// The file being read, absolute. A name that is not UTF-8 is written lossily (JSON holds
    /// only text): after a restart the tracker then names no file, and that file is read
    /// again from its start (duplicates, never a loss) instead of stopping the source.
    #[serde(serialize_with = "lossy_path")]
    pub file: PathBuf,
    #[serde(flatten)]
    pub identity: Identity,
    /// Byte offset of the first byte whose events are not committed yet.
    pub committed: u64,
}

fn lossy_path<S: serde::Serializer>(p: &Path, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&p.to_string_lossy())
}

/// Why the tracker could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum TrackerError {
    #[error("cannot {what} the spooldir tracker {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the spooldir tracker {path} is not a tracker flumen can read ({why}); move it away to \
         start over (the file it names would then be read again from its start)"
    )]
    Bad { path: PathBuf, why: String },
}

/// The tracker file of one spool directory.
#[derive(Debug, Clone)]
pub struct TrackerFile {
    dir: PathBuf,
    path: PathBuf,
}

impl TrackerFile {
    /// The tracker in `dir` (which must exist).
    pub fn new(dir: &Path) -> TrackerFile {
        TrackerFile {
            dir: dir.to_path_buf(),
            path: dir.join(TRACKER_FILE),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The tracker on disk, `None` when there is none (no file was being read).
    pub fn load(&self) -> Result<Option<Tracker>, TrackerError> {
        let bytes = match std::fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(TrackerError::Io {
                    what: "read",
                    path: self.path.clone(),
                    source,
                })
            }
        };
        let t: Tracker = serde_json::from_slice(&bytes).map_err(|e| TrackerError::Bad {
            path: self.path.clone(),
            why: e.to_string(),
        })?;
        if t.version != VERSION {
            return Err(TrackerError::Bad {
                path: self.path.clone(),
                why: format!("version {}, this flumen reads {VERSION}", t.version),
            });
        }
        Ok(Some(t))
    }

    /// Replaces the tracker with `t`: temporary file, fsync, rename. `sync_dir` also syncs
    /// the directory, so the rename itself survives a power cut (done when a file is picked
    /// up; later a lost rename only means the previous offset, so more duplicates, never a
    /// loss).
    pub fn store(&self, t: &Tracker, sync_dir: bool) -> Result<(), TrackerError> {
        let tmp = self.dir.join(format!("{TRACKER_FILE}.tmp"));
        let io = |what, path: &Path| {
            let path = path.to_path_buf();
            move |source| TrackerError::Io { what, path, source }
        };
        let mut text = serde_json::to_vec(t).map_err(|e| TrackerError::Bad {
            path: self.path.clone(),
            why: e.to_string(),
        })?;
        text.push(b'\n');
        let mut f = File::create(&tmp).map_err(io("create", &tmp))?;
        f.write_all(&text).map_err(io("write", &tmp))?;
        f.sync_all().map_err(io("fsync", &tmp))?;
        drop(f);
        std::fs::rename(&tmp, &self.path).map_err(io("rename into place", &self.path))?;
        if sync_dir {
            sync_dir_of(&self.path).map_err(io("fsync the directory of", &self.path))?;
        }
        Ok(())
    }

    /// Removes the tracker (no file is being read). A lost removal is harmless: the file it
    /// names is done, and a restart sees that.
    pub fn remove(&self) -> Result<(), TrackerError> {
        match std::fs::remove_file(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(TrackerError::Io {
                what: "remove",
                path: self.path.clone(),
                source,
            }),
        }
    }
}

/// fsyncs the directory holding `path`, so a rename or removal in it is durable.
pub fn sync_dir_of(path: &Path) -> std::io::Result<()> {
    match path.parent() {
        Some(dir) => File::open(dir)?.sync_all(),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tracker_round_trips_and_replaces_the_old_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let tf = TrackerFile::new(dir.path());
        assert_eq!(tf.load().expect("none yet"), None);
        let mut t = Tracker {
            version: VERSION,
            file: PathBuf::from("/spool/a.log"),
            identity: Identity {
                dev: 1,
                inode: 2,
                size: 300,
                mtime_ns: 1_700_000_000_123_456_789,
            },
            committed: 0,
        };
        tf.store(&t, true).expect("store");
        t.committed = 120;
        tf.store(&t, false).expect("store again");
        assert_eq!(tf.load().expect("load"), Some(t.clone()));
        let text = std::fs::read_to_string(tf.path()).expect("read");
        assert!(text.contains("\"committed\":120"), "{text}");
        assert!(text.contains("\"inode\":2"), "{text}");
        assert!(!dir.path().join(format!("{TRACKER_FILE}.tmp")).exists());
        tf.remove().expect("remove");
        assert_eq!(tf.load().expect("gone"), None);
        tf.remove().expect("removing twice is fine");
    }

    /// A spool file whose name is not UTF-8 is tracked too (it once stopped the source).
    #[test]
    fn a_file_name_that_is_not_utf8_is_tracked() {
        use std::os::unix::ffi::OsStrExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let tf = TrackerFile::new(dir.path());
        let name = std::ffi::OsStr::from_bytes(b"log-\xff\xfe.txt");
        let t = Tracker {
            version: VERSION,
            file: dir.path().join(name),
            identity: Identity {
                dev: 1,
                inode: 2,
                size: 3,
                mtime_ns: 4,
            },
            committed: 3,
        };
        tf.store(&t, true).expect("store");
        let back = tf.load().expect("load").expect("a tracker");
        assert_eq!(back.committed, 3);
        assert_eq!(back.file, dir.path().join("log-\u{fffd}\u{fffd}.txt"));
    }

    #[test]
    fn a_damaged_tracker_is_an_error_naming_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let tf = TrackerFile::new(dir.path());
        std::fs::write(tf.path(), b"{\"version\":1,\"file\":").expect("write");
        let e = tf.load().expect_err("torn");
        assert!(e.to_string().contains(TRACKER_FILE), "{e}");
        std::fs::write(
            tf.path(),
            b"{\"version\":9,\"file\":\"/a\",\"dev\":1,\"inode\":1,\"size\":1,\"mtime_ns\":1,\"committed\":0}",
        )
        .expect("write");
        assert!(tf
            .load()
            .expect_err("future")
            .to_string()
            .contains("version 9"));
    }

    #[test]
    fn identity_changes_are_named() {
        let a = Identity {
            dev: 1,
            inode: 2,
            size: 3,
            mtime_ns: 4,
        };
        assert_eq!(a.changed(&a), None);
        let grown = Identity { size: 9, ..a };
        assert!(a.changed(&grown).expect("size").contains("from 3 to 9"));
        let other = Identity { inode: 5, ..a };
        assert!(a.changed(&other).expect("inode").contains("replaced"));
        let touched = Identity { mtime_ns: 5, ..a };
        assert!(a
            .changed(&touched)
            .expect("mtime")
            .contains("modification time"));
    }
}
