//! An in-memory filesystem for tests: it models what survives power loss and lets a test make
//! any chosen call fail with any errno.
//!
//! Model: a file (an "inode") has a *live* image, which every read sees, and a *durable*
//! image, which is all that survives [`MemFs::crash`]. Only a successful `sync_data` on that
//! file copies live to durable. Directory entries (create, rename, remove) are deliberately
//! simplified: they take effect on both images at once, i.e. the model treats directory
//! operations as always durable, so it cannot catch a missing `sync_dir` — only missing or
//! misordered `sync_data`. Names map to inodes as on POSIX: a handle keeps working on its file
//! after a rename or an unlink, and an unlinked file disappears when its last handle is
//! dropped (or at a crash). A crash bumps a generation counter; handles from an earlier
//! generation belong to the "dead process" and every I/O through them fails, so a channel
//! that outlives a simulated crash cannot scribble on the recovered state.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;
use rustix::io::Errno;

use super::{FileLock, Mapped, VFile, Vfs};

/// Largest file the model accepts; a runaway offset in a test then fails with `EFBIG` instead
/// of trying to allocate terabytes of zeros.
const MAX_FILE_LEN: u64 = 1 << 32;

/// An operation [`MemFs::fail_nth`] can make fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FaultOp {
    /// `VFile::write_at`. A failed write writes nothing.
    Write,
    /// `VFile::sync_data`. A failed sync makes nothing durable.
    Sync,
    /// `VFile::allocate`.
    Allocate,
    /// `Vfs::open`.
    Open,
    /// `Vfs::rename`.
    Rename,
    /// `Vfs::sync_dir`.
    SyncDir,
    /// `VFile::read_at` (not `map`).
    Read,
}

/// The in-memory filesystem. Cheap to share as `Arc<MemFs>` (coercible to `Arc<dyn Vfs>`).
pub struct MemFs {
    shared: Arc<Mutex<State>>,
}

#[derive(Default)]
struct State {
    names: HashMap<PathBuf, u64>,
    inodes: HashMap<u64, Inode>,
    dirs: HashSet<PathBuf>,
    next_ino: u64,
    generation: u64,
    free_space: u64,
    syncs: u64,
    /// Calls made so far, per operation, for `fail_nth`.
    calls: HashMap<FaultOp, u64>,
    /// Pending one-shot faults: (operation, index of the call that fails, errno).
    faults: Vec<(FaultOp, u64, i32)>,
    /// Files locked with `Vfs::lock`, each with the token of its guard.
    locks: HashMap<PathBuf, u64>,
    next_lock: u64,
}

struct Inode {
    live: Vec<u8>,
    durable: Vec<u8>,
    /// Whether a name points here (there are no hard links).
    linked: bool,
    /// Handles of the current generation.
    handles: usize,
}

impl Inode {
    fn new() -> Inode {
        Inode {
            live: Vec::new(),
            durable: Vec::new(),
            linked: true,
            handles: 0,
        }
    }
}

impl fmt::Debug for MemFs {
    // File contents can be megabytes; show the shape only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.shared.lock();
        f.debug_struct("MemFs")
            .field("files", &st.names.len())
            .field("generation", &st.generation)
            .field("syncs", &st.syncs)
            .field("free_space", &st.free_space)
            .finish_non_exhaustive()
    }
}

impl Default for MemFs {
    fn default() -> Self {
        MemFs::new()
    }
}

fn not_found(what: &str, path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!(
            "{what} {}: no such file or directory (memfs)",
            path.display()
        ),
    )
}

fn to_usize(n: u64, path: &Path) -> io::Result<usize> {
    if n > MAX_FILE_LEN {
        return Err(io::Error::new(
            io::ErrorKind::FileTooLarge,
            format!(
                "{}: offset {n} beyond the memfs limit of {MAX_FILE_LEN} bytes",
                path.display()
            ),
        ));
    }
    usize::try_from(n).map_err(|_| io::Error::from_raw_os_error(Errno::FBIG.raw_os_error()))
}

impl State {
    /// Counts a call of `op` and fails it if a fault was planted for this call.
    fn fault(&mut self, op: FaultOp) -> io::Result<()> {
        let calls = self.calls.entry(op).or_insert(0);
        let index = *calls;
        *calls += 1;
        if let Some(pos) = self
            .faults
            .iter()
            .position(|&(o, at, _)| o == op && at == index)
        {
            let (_, _, errno) = self.faults.swap_remove(pos);
            return Err(io::Error::from_raw_os_error(errno));
        }
        Ok(())
    }

    fn dir_exists(&self, dir: &Path) -> bool {
        dir.as_os_str().is_empty() || dir.parent().is_none() || self.dirs.contains(dir)
    }

    fn parent_exists(&self, path: &Path) -> bool {
        path.parent().is_none_or(|p| self.dir_exists(p))
    }

    /// Removes the name `path` (if any); the inode goes when no handle needs it any more.
    fn unlink(&mut self, path: &Path) {
        if let Some(ino) = self.names.remove(path) {
            let gone = match self.inodes.get_mut(&ino) {
                Some(inode) => {
                    inode.linked = false;
                    inode.handles == 0
                }
                None => false,
            };
            if gone {
                self.inodes.remove(&ino);
            }
        }
    }

    fn crash(&mut self, extra: usize) {
        self.generation += 1;
        // Locks die with the process that held them.
        self.locks.clear();
        // Unlinked inodes lived only through handles of the dead process.
        self.inodes.retain(|_, inode| inode.linked);
        for inode in self.inodes.values_mut() {
            inode.handles = 0;
            let appended =
                inode.live.len() > inode.durable.len() && inode.live.starts_with(&inode.durable);
            if appended {
                let extension = inode.live.len() - inode.durable.len();
                inode
                    .live
                    .truncate(inode.durable.len() + extension.min(extra));
                inode.durable.clone_from(&inode.live);
            } else {
                inode.live.clone_from(&inode.durable);
            }
        }
    }
}

impl MemFs {
    /// An empty filesystem with `u64::MAX / 2` bytes free.
    pub fn new() -> MemFs {
        MemFs {
            shared: Arc::new(Mutex::new(State {
                free_space: u64::MAX / 2,
                ..State::default()
            })),
        }
    }

    /// Simulates power loss: every file keeps only what was synced (files that exist but were
    /// never synced come back empty). Handles opened before fail from now on.
    pub fn crash(&self) {
        self.shared.lock().crash(0);
    }

    /// Like [`crash`](Self::crash), but a file whose unsynced live image only appends to its
    /// durable image keeps up to `extra` bytes of that append (a torn write at the tail).
    pub fn crash_keeping(&self, extra: usize) {
        self.shared.lock().crash(extra);
    }

    /// Makes the `n`-th future call of `op` (0 = the next one) fail with `errno`, once.
    pub fn fail_nth(&self, op: FaultOp, n: u64, errno: i32) {
        let mut st = self.shared.lock();
        let at = st.calls.get(&op).copied().unwrap_or(0) + n;
        st.faults.push((op, at, errno));
    }

    /// What `free_space` reports and `allocate` checks against.
    pub fn set_free_space(&self, bytes: u64) {
        self.shared.lock().free_space = bytes;
    }

    /// Number of successful `sync_data` calls so far.
    pub fn syncs(&self) -> u64 {
        self.shared.lock().syncs
    }

    /// Paths of every file, sorted.
    pub fn files(&self) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = self.shared.lock().names.keys().cloned().collect();
        files.sort();
        files
    }

    /// The live image (what a read would see) of `path`.
    pub fn read_live(&self, path: &Path) -> Option<Vec<u8>> {
        let st = self.shared.lock();
        let ino = st.names.get(path)?;
        st.inodes.get(ino).map(|i| i.live.clone())
    }

    /// Replaces the live image of `path` (creating the file if needed, without checking its
    /// directory): lets tests corrupt bytes behind the channel's back. Not durable until synced.
    pub fn write_live(&self, path: &Path, bytes: Vec<u8>) {
        let mut st = self.shared.lock();
        let ino = match st.names.get(path) {
            Some(&ino) => ino,
            None => {
                let ino = st.next_ino;
                st.next_ino += 1;
                st.inodes.insert(ino, Inode::new());
                st.names.insert(path.to_path_buf(), ino);
                ino
            }
        };
        if let Some(inode) = st.inodes.get_mut(&ino) {
            inode.live = bytes;
        }
    }

    /// What `path` would contain after a crash right now.
    pub fn durable_image(&self, path: &Path) -> Option<Vec<u8>> {
        let st = self.shared.lock();
        let ino = st.names.get(path)?;
        st.inodes.get(ino).map(|i| i.durable.clone())
    }
}

impl Vfs for MemFs {
    fn open(&self, path: &Path, create: bool) -> io::Result<Arc<dyn VFile>> {
        let mut st = self.shared.lock();
        st.fault(FaultOp::Open)?;
        if st.dirs.contains(path) {
            return Err(io::Error::new(
                io::ErrorKind::IsADirectory,
                format!("open {}: is a directory (memfs)", path.display()),
            ));
        }
        let ino = match st.names.get(path) {
            Some(&ino) => ino,
            None if create => {
                if !st.parent_exists(path) {
                    return Err(not_found("open", path));
                }
                let ino = st.next_ino;
                st.next_ino += 1;
                st.inodes.insert(ino, Inode::new());
                st.names.insert(path.to_path_buf(), ino);
                ino
            }
            None => return Err(not_found("open", path)),
        };
        if let Some(inode) = st.inodes.get_mut(&ino) {
            inode.handles += 1;
        }
        Ok(Arc::new(MemFile {
            shared: Arc::clone(&self.shared),
            ino,
            generation: st.generation,
            path: path.to_path_buf(),
        }))
    }

    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        let mut st = self.shared.lock();
        for d in dir.ancestors() {
            if d.as_os_str().is_empty() || d.parent().is_none() {
                continue;
            }
            if st.names.contains_key(d) {
                return Err(io::Error::new(
                    io::ErrorKind::NotADirectory,
                    format!(
                        "create_dir_all {}: {} is a file (memfs)",
                        dir.display(),
                        d.display()
                    ),
                ));
            }
            st.dirs.insert(d.to_path_buf());
        }
        Ok(())
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        let st = self.shared.lock();
        if !st.dir_exists(dir) {
            return Err(not_found("list", dir));
        }
        Ok(st
            .names
            .keys()
            .filter(|p| p.parent() == Some(dir))
            .cloned()
            .collect())
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut st = self.shared.lock();
        st.fault(FaultOp::Rename)?;
        let Some(&ino) = st.names.get(from) else {
            return Err(not_found("rename from", from));
        };
        if !st.parent_exists(to) {
            return Err(not_found("rename to", to));
        }
        if st.dirs.contains(to) {
            return Err(io::Error::new(
                io::ErrorKind::IsADirectory,
                format!("rename to {}: is a directory (memfs)", to.display()),
            ));
        }
        if from == to {
            return Ok(());
        }
        st.unlink(to);
        st.names.remove(from);
        st.names.insert(to.to_path_buf(), ino);
        Ok(())
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        let mut st = self.shared.lock();
        if !st.names.contains_key(path) {
            return Err(not_found("remove", path));
        }
        st.unlink(path);
        Ok(())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut st = self.shared.lock();
        st.fault(FaultOp::SyncDir)?;
        if !st.dir_exists(dir) {
            return Err(not_found("sync_dir", dir));
        }
        // Directory entries are always durable in this model (see the module docs).
        Ok(())
    }

    fn free_space(&self, _dir: &Path) -> io::Result<u64> {
        Ok(self.shared.lock().free_space)
    }

    fn list_dirs(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        let st = self.shared.lock();
        if !st.dir_exists(dir) {
            return Err(not_found("list_dirs", dir));
        }
        Ok(st
            .dirs
            .iter()
            .filter(|p| p.parent() == Some(dir))
            .cloned()
            .collect())
    }

    fn lock(&self, path: &Path) -> io::Result<Box<dyn FileLock>> {
        let mut st = self.shared.lock();
        // The lock file exists afterwards, as with the real backends. Not counted as an
        // `Open` for `fail_nth`: fault plans predate locking and count the channel's own opens.
        if !st.names.contains_key(path) {
            if !st.parent_exists(path) || st.dirs.contains(path) {
                return Err(not_found("lock", path));
            }
            let ino = st.next_ino;
            st.next_ino += 1;
            st.inodes.insert(ino, Inode::new());
            st.names.insert(path.to_path_buf(), ino);
        }
        if st.locks.contains_key(path) {
            return Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                format!("{} is locked (memfs)", path.display()),
            ));
        }
        let token = st.next_lock;
        st.next_lock += 1;
        st.locks.insert(path.to_path_buf(), token);
        Ok(Box::new(MemLock {
            shared: Arc::clone(&self.shared),
            path: path.to_path_buf(),
            token,
        }))
    }

    fn kind(&self) -> &'static str {
        "mem"
    }
}

/// A held [`Vfs::lock`] of a [`MemFs`].
struct MemLock {
    shared: Arc<Mutex<State>>,
    path: PathBuf,
    token: u64,
}

impl fmt::Debug for MemLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemLock").field("path", &self.path).finish()
    }
}

impl FileLock for MemLock {}

impl Drop for MemLock {
    fn drop(&mut self) {
        let mut st = self.shared.lock();
        // After a crash the lock is gone already, and may be someone else's by now.
        if st.locks.get(&self.path) == Some(&self.token) {
            st.locks.remove(&self.path);
        }
    }
}

/// A handle on one inode of a [`MemFs`].
struct MemFile {
    shared: Arc<Mutex<State>>,
    ino: u64,
    generation: u64,
    path: PathBuf,
}

impl fmt::Debug for MemFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemFile")
            .field("path", &self.path)
            .field("ino", &self.ino)
            .field("generation", &self.generation)
            .finish()
    }
}

impl MemFile {
    /// Locks the filesystem, checks this handle survived no crash, counts `op` against the
    /// planted faults, and runs `f` on the inode.
    fn with<T>(
        &self,
        op: Option<FaultOp>,
        f: impl FnOnce(&mut State, u64) -> io::Result<T>,
    ) -> io::Result<T> {
        let mut st = self.shared.lock();
        if st.generation != self.generation {
            return Err(io::Error::other(format!(
                "{}: handle from before a simulated crash (memfs)",
                self.path.display()
            )));
        }
        if let Some(op) = op {
            st.fault(op)?;
        }
        f(&mut st, self.ino)
    }

    fn inode<'a>(&self, st: &'a mut State, ino: u64) -> io::Result<&'a mut Inode> {
        // Unreachable while the handle is alive in its generation (handles pin inodes), but a
        // test bug should get an error, not a panic.
        st.inodes.get_mut(&ino).ok_or_else(|| {
            io::Error::other(format!("{}: inode vanished (memfs)", self.path.display()))
        })
    }
}

impl Drop for MemFile {
    fn drop(&mut self) {
        let mut st = self.shared.lock();
        if st.generation != self.generation {
            // The crash already forgot this handle.
            return;
        }
        let gone = match st.inodes.get_mut(&self.ino) {
            Some(inode) => {
                inode.handles = inode.handles.saturating_sub(1);
                inode.handles == 0 && !inode.linked
            }
            None => false,
        };
        if gone {
            st.inodes.remove(&self.ino);
        }
    }
}

impl VFile for MemFile {
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.with(Some(FaultOp::Write), |st, ino| {
            let start = to_usize(offset, &self.path)?;
            let end = to_usize(offset.saturating_add(buf.len() as u64), &self.path)?;
            let inode = self.inode(st, ino)?;
            if inode.live.len() < end {
                inode.live.resize(end, 0);
            }
            inode.live[start..end].copy_from_slice(buf);
            Ok(())
        })
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.with(Some(FaultOp::Read), |st, ino| {
            let inode = self.inode(st, ino)?;
            let len = inode.live.len() as u64;
            let end = offset.saturating_add(buf.len() as u64);
            if end > len {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "{}: read of {} bytes at offset {offset} runs past the end ({len} bytes)",
                        self.path.display(),
                        buf.len()
                    ),
                ));
            }
            // Both bounds are <= live.len(), so they fit in usize.
            let start = offset as usize;
            buf.copy_from_slice(&inode.live[start..end as usize]);
            Ok(())
        })
    }

    fn sync_data(&self) -> io::Result<()> {
        self.with(Some(FaultOp::Sync), |st, ino| {
            let inode = self.inode(st, ino)?;
            inode.durable.clone_from(&inode.live);
            st.syncs += 1;
            Ok(())
        })
    }

    fn allocate(&self, offset: u64, len: u64) -> io::Result<()> {
        self.with(Some(FaultOp::Allocate), |st, ino| {
            if st.free_space < len {
                return Err(io::Error::from_raw_os_error(Errno::NOSPC.raw_os_error()));
            }
            let end = to_usize(offset.saturating_add(len), &self.path)?;
            let inode = self.inode(st, ino)?;
            if inode.live.len() < end {
                inode.live.resize(end, 0);
            }
            Ok(())
        })
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.with(None, |st, ino| {
            let len = to_usize(len, &self.path)?;
            self.inode(st, ino)?.live.resize(len, 0);
            Ok(())
        })
    }

    fn len(&self) -> io::Result<u64> {
        self.with(None, |st, ino| Ok(self.inode(st, ino)?.live.len() as u64))
    }

    fn map(&self) -> io::Result<Mapped> {
        self.with(None, |st, ino| {
            let bytes = self.inode(st, ino)?.live.clone();
            Ok(Arc::new(bytes) as Mapped)
        })
    }

    fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENOSPC: i32 = 28;
    const EIO: i32 = 5;

    fn setup() -> (Arc<MemFs>, PathBuf) {
        let fs = Arc::new(MemFs::new());
        let dir = PathBuf::from("/data/ch");
        fs.create_dir_all(&dir).expect("mkdir");
        (fs, dir)
    }

    #[test]
    fn usable_as_dyn_vfs() {
        let (fs, dir) = setup();
        let vfs: Arc<dyn Vfs> = fs.clone();
        assert_eq!(vfs.kind(), "mem");
        vfs.open(&dir.join("f"), true).expect("open");
        assert_eq!(fs.files(), vec![dir.join("f")]);
        assert!(format!("{fs:?}").contains("MemFs"));
    }

    #[test]
    fn write_read_round_trip() {
        let (fs, dir) = setup();
        let f = fs.open(&dir.join("a"), true).expect("open");
        f.write_at(b"hello", 0).expect("write");
        f.write_at(b"world", 10).expect("write");
        let mut buf = [9u8; 15];
        f.read_at(&mut buf, 0).expect("read");
        assert_eq!(&buf, b"hello\0\0\0\0\0world");
        assert_eq!(f.len().expect("len"), 15);
        let err = f.read_at(&mut [0u8; 4], 13).expect_err("past end");
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        f.read_at(&mut [], 15).expect("empty read at end");
        assert_eq!(f.path(), dir.join("a").as_path());
    }

    #[test]
    fn open_rules() {
        let (fs, dir) = setup();
        let err = fs.open(&dir.join("missing"), false).expect_err("missing");
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        let err = fs.open(Path::new("/nodir/f"), true).expect_err("no parent");
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert_eq!(
            fs.list(Path::new("/nodir")).expect_err("list").kind(),
            io::ErrorKind::NotFound
        );
    }

    #[test]
    fn allocate_len_set_len_and_enospc() {
        let (fs, dir) = setup();
        let f = fs.open(&dir.join("seg"), true).expect("open");
        f.allocate(0, 4096).expect("allocate");
        assert_eq!(f.len().expect("len"), 4096);
        f.allocate(0, 10).expect("allocate inside never shrinks");
        assert_eq!(f.len().expect("len"), 4096);
        fs.set_free_space(100);
        assert_eq!(fs.free_space(&dir).expect("free"), 100);
        let err = f.allocate(4096, 4096).expect_err("no space");
        assert_eq!(err.raw_os_error(), Some(ENOSPC));
        assert_eq!(f.len().expect("len"), 4096);
        f.set_len(10).expect("truncate");
        assert_eq!(f.len().expect("len"), 10);
    }

    #[test]
    fn map_empty_and_non_empty() {
        let (fs, dir) = setup();
        let f = fs.open(&dir.join("m"), true).expect("open");
        assert!((*f.map().expect("map")).as_ref().is_empty());
        f.write_at(b"abc", 0).expect("write");
        let m = f.map().expect("map");
        f.write_at(b"xyz", 0).expect("write after map");
        // A copy: later writes do not show through.
        assert_eq!((*m).as_ref(), b"abc");
    }

    #[test]
    fn rename_replaces_and_handles_follow_the_inode() {
        let (fs, dir) = setup();
        let (a, b) = (dir.join("a"), dir.join("b"));
        let fa = fs.open(&a, true).expect("a");
        fa.write_at(b"new", 0).expect("w");
        fs.open(&b, true)
            .expect("b")
            .write_at(b"old!", 0)
            .expect("w");
        fs.rename(&a, &b).expect("rename");
        fs.sync_dir(&dir).expect("sync_dir");
        assert_eq!(fs.read_live(&b), Some(b"new".to_vec()));
        assert_eq!(fs.read_live(&a), None);
        fa.write_at(b"NEW", 0)
            .expect("write through renamed handle");
        assert_eq!(fs.read_live(&b), Some(b"NEW".to_vec()));
        assert_eq!(
            fs.rename(&a, &b).expect_err("gone").kind(),
            io::ErrorKind::NotFound
        );
        fs.remove(&b).expect("remove");
        assert!(fs.files().is_empty());
        // Unlinked but open: still readable through the handle.
        let mut buf = [0u8; 3];
        fa.read_at(&mut buf, 0).expect("read unlinked");
        assert_eq!(&buf, b"NEW");
    }

    #[test]
    fn list_returns_files_only() {
        let (fs, dir) = setup();
        fs.create_dir_all(&dir.join("sub")).expect("mkdir");
        fs.open(&dir.join("x"), true).expect("x");
        fs.open(&dir.join("y"), true).expect("y");
        fs.open(&dir.join("sub/z"), true).expect("z");
        let mut listed = fs.list(&dir).expect("list");
        listed.sort();
        assert_eq!(listed, vec![dir.join("x"), dir.join("y")]);
    }

    #[test]
    fn crash_drops_unsynced_and_keeps_synced() {
        let (fs, dir) = setup();
        let path = dir.join("log");
        let f = fs.open(&path, true).expect("open");
        f.write_at(b"synced", 0).expect("w");
        f.sync_data().expect("sync");
        assert_eq!(fs.syncs(), 1);
        f.write_at(b"-lost", 6).expect("w");
        f.write_at(b"S", 0).expect("overwrite, unsynced");
        fs.open(&dir.join("never-synced"), true)
            .expect("open")
            .write_at(b"gone", 0)
            .expect("w");
        assert_eq!(fs.durable_image(&path), Some(b"synced".to_vec()));

        fs.crash();
        assert_eq!(fs.read_live(&path), Some(b"synced".to_vec()));
        assert_eq!(fs.read_live(&dir.join("never-synced")), Some(Vec::new()));

        // The pre-crash handle must not panic, and must not write.
        let err = f.write_at(b"zombie", 0).expect_err("stale handle");
        assert!(err.to_string().contains("before a simulated crash"));
        assert!(f.sync_data().is_err());
        drop(f);

        let g = fs.open(&path, false).expect("reopen");
        let mut buf = [0u8; 6];
        g.read_at(&mut buf, 0).expect("read");
        assert_eq!(&buf, b"synced");
    }

    #[test]
    fn crash_forgets_unlinked_files() {
        let (fs, dir) = setup();
        let f = fs.open(&dir.join("tmp"), true).expect("open");
        fs.remove(&dir.join("tmp")).expect("rm");
        fs.crash();
        assert!(fs.shared.lock().inodes.is_empty());
        drop(f);
        assert!(fs.files().is_empty());
    }

    #[test]
    fn crash_keeping_keeps_a_prefix_of_the_append() {
        let (fs, dir) = setup();
        let (p, q) = (dir.join("p"), dir.join("q"));
        let f = fs.open(&p, true).expect("p");
        f.write_at(b"base", 0).expect("w");
        f.sync_data().expect("sync");
        f.write_at(b"0123456789", 4).expect("append");
        // q diverges from its durable image rather than extending it: nothing extra kept.
        let g = fs.open(&q, true).expect("q");
        g.write_at(b"abcd", 0).expect("w");
        g.sync_data().expect("sync");
        g.write_at(b"XYZW-more", 0).expect("overwrite");

        fs.crash_keeping(3);
        assert_eq!(fs.read_live(&p), Some(b"base012".to_vec()));
        assert_eq!(fs.durable_image(&p), Some(b"base012".to_vec()));
        assert_eq!(fs.read_live(&q), Some(b"abcd".to_vec()));

        fs.crash_keeping(100);
        assert_eq!(fs.read_live(&p), Some(b"base012".to_vec()));
    }

    #[test]
    fn fail_nth_fails_exactly_once() {
        let (fs, dir) = setup();
        let f = fs.open(&dir.join("f"), true).expect("open");
        fs.fail_nth(FaultOp::Write, 1, EIO);
        f.write_at(b"a", 0).expect("call 0 succeeds");
        let err = f.write_at(b"b", 1).expect_err("call 1 fails");
        assert_eq!(err.raw_os_error(), Some(EIO));
        assert_eq!(fs.read_live(&dir.join("f")), Some(b"a".to_vec()));
        f.write_at(b"c", 1).expect("one-shot");

        fs.fail_nth(FaultOp::Sync, 0, EIO);
        assert_eq!(f.sync_data().expect_err("sync").raw_os_error(), Some(EIO));
        assert_eq!(fs.syncs(), 0);
        assert_eq!(fs.durable_image(&dir.join("f")), Some(Vec::new()));
        f.sync_data().expect("next sync works");
        assert_eq!(fs.syncs(), 1);
        assert_eq!(fs.durable_image(&dir.join("f")), Some(b"ac".to_vec()));

        fs.fail_nth(FaultOp::Open, 0, EIO);
        assert!(fs.open(&dir.join("f"), false).is_err());
        fs.fail_nth(FaultOp::Rename, 0, EIO);
        assert!(fs.rename(&dir.join("f"), &dir.join("g")).is_err());
        assert_eq!(fs.files(), vec![dir.join("f")]);
        fs.fail_nth(FaultOp::SyncDir, 0, EIO);
        assert!(fs.sync_dir(&dir).is_err());
        fs.fail_nth(FaultOp::Allocate, 0, ENOSPC);
        assert!(f.allocate(0, 10).is_err());
        assert_eq!(f.len().expect("len"), 2);
        fs.fail_nth(FaultOp::Read, 0, EIO);
        assert!(f.read_at(&mut [0u8; 1], 0).is_err());

        // Each planted fault fired once; everything works again.
        fs.open(&dir.join("f"), false).expect("open");
        fs.rename(&dir.join("f"), &dir.join("g")).expect("rename");
        fs.sync_dir(&dir).expect("sync_dir");
        f.allocate(0, 10).expect("allocate");
        f.read_at(&mut [0u8; 1], 0).expect("read");
    }

    #[test]
    fn write_live_corrupts_without_syncing() {
        let (fs, dir) = setup();
        let path = dir.join("c");
        let f = fs.open(&path, true).expect("open");
        f.write_at(b"good", 0).expect("w");
        f.sync_data().expect("sync");
        fs.write_live(&path, b"b0rk".to_vec());
        let mut buf = [0u8; 4];
        f.read_at(&mut buf, 0).expect("read");
        assert_eq!(&buf, b"b0rk");
        assert_eq!(fs.durable_image(&path), Some(b"good".to_vec()));
    }

    #[test]
    fn lock_is_exclusive_until_dropped_or_a_crash() {
        let (fs, dir) = setup();
        let path = dir.join("in_use.lock");
        let held = fs.lock(&path).expect("lock");
        assert!(fs.files().contains(&path), "the lock file exists");
        let err = fs.lock(&path).expect_err("held");
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
        drop(held);
        let again = fs.lock(&path).expect("released by drop");
        fs.crash();
        let after = fs.lock(&path).expect("a crash releases every lock");
        // The dead holder's guard must not release the new holder's lock.
        drop(again);
        assert_eq!(
            fs.lock(&path).expect_err("still held").kind(),
            io::ErrorKind::WouldBlock
        );
        drop(after);
        assert!(fs.lock(&dir.join("nodir").join("l")).is_err());
    }

    #[test]
    fn list_dirs_lists_direct_subdirectories_only() {
        let (fs, dir) = setup();
        fs.create_dir_all(&dir.join("a").join("deep"))
            .expect("mkdir");
        fs.create_dir_all(&dir.join("b")).expect("mkdir");
        fs.open(&dir.join("file"), true).expect("create");
        let mut got = fs.list_dirs(&dir).expect("list_dirs");
        got.sort();
        assert_eq!(got, vec![dir.join("a"), dir.join("b")]);
        assert!(fs.list_dirs(Path::new("/nodir")).is_err());
    }
}
