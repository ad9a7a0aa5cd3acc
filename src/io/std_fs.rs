//! The default backend: plain POSIX calls through std and rustix (pwrite, pread, fdatasync,
//! fallocate, statvfs) plus read-only mmap for sealed files.
//!
//! Invariants: every error coming from the kernel is returned as the original `io::Error`, so
//! `raw_os_error()` still says `ENOSPC`, `EIO`, … to the channel (which decides durability and
//! back-pressure on those codes); only errors this module makes up itself carry the path in
//! their message, and they keep a meaningful `ErrorKind`. The single `unsafe` (mmap) is sound
//! only because callers map files that are no longer written; see [`StdFile::map`].

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use rustix::fs::{FallocateFlags, OFlags};

use super::{FileLock, Mapped, VFile, Vfs};

/// The std backend. Stateless: every call goes straight to the kernel.
#[derive(Clone, Copy, Debug, Default)]
pub struct StdFs;

impl StdFs {
    /// Like [`Vfs::open`] but returns the concrete file, so the io_uring backend can reuse the
    /// descriptor and the non-uring operations.
    pub fn open_file(&self, path: &Path, create: bool) -> io::Result<StdFile> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(create)
            .open(path)?;
        Ok(StdFile {
            file,
            path: path.to_path_buf(),
            direct: OnceLock::new(),
        })
    }
}

impl Vfs for StdFs {
    fn open(&self, path: &Path, create: bool) -> io::Result<Arc<dyn VFile>> {
        Ok(Arc::new(self.open_file(path, create)?))
    }

    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        std::fs::create_dir_all(dir)
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            // `DirEntry::file_type` does not follow symlinks: a symlink is not a file the
            // channel created, so it is not listed.
            if entry.file_type()?.is_file() {
                out.push(entry.path());
            }
        }
        Ok(out)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        // Linux lets a read-only directory descriptor be fsynced, and that is what persists
        // the entries created, renamed or removed inside it.
        File::open(dir)?.sync_all()
    }

    fn free_space(&self, dir: &Path) -> io::Result<u64> {
        let st = rustix::fs::statvfs(dir)?;
        // f_bavail (not f_bfree): blocks reserved for root are not ours to fill.
        Ok(st.f_bavail.saturating_mul(st.f_frsize))
    }

    fn list_dirs(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            // As in `list`: a symlink is not followed.
            if entry.file_type()?.is_dir() {
                out.push(entry.path());
            }
        }
        Ok(out)
    }

    fn lock(&self, path: &Path) -> io::Result<Box<dyn FileLock>> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)?;
        // A process we fork (an exec source, a test's child) briefly shares the lock file's
        // open description until it execs, so a reopen right after a close can find the lock
        // held for a moment: retry for a bounded time before calling it taken.
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut pause = Duration::from_millis(1);
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(Box::new(StdLock { _file: file })),
                Err(std::fs::TryLockError::WouldBlock) if Instant::now() < deadline => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(100));
                }
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(io::Error::new(
                        io::ErrorKind::WouldBlock,
                        format!("{} is locked by another process", path.display()),
                    ))
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(e),
            }
        }
    }

    fn kind(&self) -> &'static str {
        "std"
    }
}

/// A held [`Vfs::lock`] of the std backend: an `flock`, released when the descriptor closes.
#[derive(Debug)]
struct StdLock {
    _file: File,
}

impl FileLock for StdLock {}

/// An open file of the std backend.
#[derive(Debug)]
pub struct StdFile {
    file: File,
    path: PathBuf,
    /// A second descriptor with `O_DIRECT` for [`VFile::write_direct`], opened on first use;
    /// `None` where the filesystem refuses `O_DIRECT` (tmpfs, some FUSE mounts), and then
    /// those writes go through the page cache. Reads always use `file`: `O_DIRECT` reads would
    /// need aligned buffers, and the kernel keeps the page cache coherent with direct writes.
    direct: OnceLock<Option<File>>,
}

impl StdFile {
    /// The underlying descriptor (the io_uring backend submits operations against it).
    pub fn file(&self) -> &File {
        &self.file
    }

    /// The `O_DIRECT` descriptor for block writes, opened on first use; `None` where the
    /// filesystem refuses `O_DIRECT`.
    pub(crate) fn direct_file(&self) -> Option<&File> {
        self.direct
            .get_or_init(|| {
                let r = OpenOptions::new()
                    .write(true)
                    .custom_flags(OFlags::DIRECT.bits() as i32)
                    .open(&self.path);
                match r {
                    Ok(f) => Some(f),
                    Err(e) => {
                        tracing::debug!(file = %self.path.display(), error = %e, "O_DIRECT refused here; block writes go through the page cache");
                        None
                    }
                }
            })
            .as_ref()
    }

    fn eof_error(&self, len: usize, offset: u64) -> io::Error {
        io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!(
                "{}: read of {len} bytes at offset {offset} runs past the end of the file",
                self.path.display()
            ),
        )
    }
}

/// A read-only mapping of a whole file.
struct FileMap(memmap2::Mmap);

impl AsRef<[u8]> for FileMap {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl super::MappedBytes for FileMap {
    fn release(&self, range: std::ops::Range<usize>) {
        let end = range.end.min(self.0.len());
        if range.start < end {
            // Only a hint: a refusal leaves the pages resident, nothing else changes.
            let _ = drop_pages(&self.0, range.start, end - range.start);
        }
    }
}

/// `madvise(MADV_DONTNEED)` on part of a read-only file mapping. Kept as its own item so that
/// the `unsafe` allowance covers exactly this call.
#[allow(unsafe_code)]
fn drop_pages(map: &memmap2::Mmap, offset: usize, len: usize) -> io::Result<()> {
    // SAFETY: DONTNEED on a private, read-only mapping of a file discards this process's page
    // table entries for the range; the range stays mapped, and the next access maps the page
    // again from the page cache. The bytes read then are the file's bytes, which are the bytes
    // read before: the channel maps only sealed files, never written or truncated while mapped
    // (see `map_file`), and a read-only mapping has no private modifications to lose. So every
    // `&[u8]` into the mapping stays valid and sees the same contents. The range is within the
    // mapping (`FileMap::release` clips it).
    unsafe { map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, offset, len) }
}

/// Maps the whole file read-only. Kept as its own item so that the `unsafe` allowance covers
/// exactly this call and nothing else.
#[allow(unsafe_code)]
fn map_file(file: &File) -> io::Result<memmap2::Mmap> {
    // SAFETY: `Mmap::map` is unsafe because the mapped bytes may change (or vanish, raising
    // SIGBUS) if the file is modified or truncated while mapped. The channel maps only sealed
    // segments and checkpoints, which are never written or truncated again while mapped
    // (`VFile::map` documents this for every caller; removing the file is fine, the mapping
    // keeps the inode alive). Another process truncating files in the channel directory is a
    // misuse outside the contract, as it would be for any database.
    unsafe { memmap2::Mmap::map(file) }
}

impl VFile for StdFile {
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.file.write_all_at(buf, offset)
    }

    fn write_direct(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        let aligned = super::block_aligned(buf, offset);
        match self.direct_file() {
            Some(f) if aligned => match f.write_all_at(buf, offset) {
                // EINVAL: this filesystem or device wants a larger alignment. Nothing was
                // written by the refused call (a short write before it left whole blocks
                // written), so writing it all again through the page cache is correct.
                Err(e) if e.raw_os_error() == Some(rustix::io::Errno::INVAL.raw_os_error()) => {
                    tracing::debug!(file = %self.path.display(), offset, "O_DIRECT write refused (EINVAL); writing through the page cache");
                    self.file.write_all_at(buf, offset)
                }
                r => r,
            },
            _ => self.file.write_all_at(buf, offset),
        }
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.file.read_exact_at(buf, offset).map_err(|e| {
            // std's own EOF error says only "failed to fill whole buffer"; name the file.
            if e.kind() == io::ErrorKind::UnexpectedEof && e.raw_os_error().is_none() {
                self.eof_error(buf.len(), offset)
            } else {
                e
            }
        })
    }

    fn sync_data(&self) -> io::Result<()> {
        self.file.sync_data()
    }

    fn allocate(&self, offset: u64, len: u64) -> io::Result<()> {
        if len == 0 {
            // fallocate rejects a zero length with EINVAL; reserving nothing trivially holds.
            return Ok(());
        }
        let end = offset.checked_add(len).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{}: allocate of {len} bytes at offset {offset} overflows",
                    self.path.display()
                ),
            )
        })?;
        match rustix::fs::fallocate(&self.file, FallocateFlags::empty(), offset, len) {
            Ok(()) => Ok(()),
            Err(rustix::io::Errno::OPNOTSUPP) => {
                // Some filesystems (tmpfs on old kernels, some FUSE and network mounts) cannot
                // reserve blocks. Growing the length keeps the offsets valid; writes there may
                // still hit ENOSPC, which the channel handles as it would any write error.
                if end > self.file.metadata()?.len() {
                    self.file.set_len(end)?;
                }
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.file.set_len(len)
    }

    fn len(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }

    fn map(&self) -> io::Result<Mapped> {
        if self.file.metadata()?.len() == 0 {
            // mmap of zero bytes fails with EINVAL; an empty file is just an empty slice.
            return Ok(Arc::new(Vec::<u8>::new()));
        }
        let map = map_file(&self.file)?;
        // Mapped files are read front to back (replay, takers walking a sealed segment):
        // ask for aggressive readahead. Only a hint; a refusal changes nothing.
        let _ = map.advise(memmap2::Advice::Sequential);
        Ok(Arc::new(FileMap(map)))
    }

    fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn fs_and_dir() -> (StdFs, tempfile::TempDir) {
        (StdFs, tempfile::tempdir().expect("tempdir"))
    }

    #[test]
    fn write_read_round_trip() {
        let (fs, dir) = fs_and_dir();
        let path = dir.path().join("a");
        let f = fs.open(&path, true).expect("open");
        f.write_at(b"hello", 0).expect("write");
        f.write_at(b"world", 10).expect("write");
        f.sync_data().expect("sync");
        let mut buf = [0u8; 15];
        f.read_at(&mut buf, 0).expect("read");
        assert_eq!(&buf, b"hello\0\0\0\0\0world");
        assert_eq!(f.len().expect("len"), 15);
        assert_eq!(f.path(), path.as_path());

        let mut past = [0u8; 4];
        let err = f.read_at(&mut past, 13).expect_err("read past end");
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        assert!(err.to_string().contains(&path.display().to_string()));
    }

    #[test]
    fn open_missing_without_create_is_not_found() {
        let (fs, dir) = fs_and_dir();
        let err = fs
            .open(&dir.path().join("nope"), false)
            .expect_err("missing");
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert_eq!(err.raw_os_error(), Some(2));
    }

    #[test]
    fn allocate_grows_len_and_set_len_truncates() {
        let (fs, dir) = fs_and_dir();
        let f = fs.open(&dir.path().join("seg"), true).expect("open");
        f.allocate(0, 8192).expect("allocate");
        assert_eq!(f.len().expect("len"), 8192);
        f.allocate(4096, 8192).expect("allocate past end");
        assert_eq!(f.len().expect("len"), 12288);
        f.allocate(0, 0).expect("zero-length allocate");
        // Allocating inside the file never shrinks it.
        f.allocate(0, 10).expect("allocate inside");
        assert_eq!(f.len().expect("len"), 12288);
        let mut buf = [1u8; 16];
        f.read_at(&mut buf, 8000).expect("read allocated zeros");
        assert_eq!(buf, [0u8; 16]);
        f.set_len(100).expect("set_len");
        assert_eq!(f.len().expect("len"), 100);
    }

    #[test]
    fn map_empty_and_non_empty() {
        let (fs, dir) = fs_and_dir();
        let f = fs.open(&dir.path().join("m"), true).expect("open");
        let m = f.map().expect("map empty");
        assert!((*m).as_ref().is_empty());
        f.write_at(b"sealed bytes", 0).expect("write");
        let m = f.map().expect("map");
        assert_eq!((*m).as_ref(), b"sealed bytes");
    }

    #[test]
    fn rename_replaces_and_remove() {
        let (fs, dir) = fs_and_dir();
        let a = dir.path().join("a");
        let b = dir.path().join("b");
        fs.open(&a, true)
            .expect("a")
            .write_at(b"new", 0)
            .expect("w");
        fs.open(&b, true)
            .expect("b")
            .write_at(b"old!", 0)
            .expect("w");
        fs.rename(&a, &b).expect("rename");
        fs.sync_dir(dir.path()).expect("sync_dir");
        assert_eq!(std::fs::read(&b).expect("read b"), b"new");
        assert!(!a.exists());
        fs.remove(&b).expect("remove");
        assert!(!b.exists());
        assert_eq!(
            fs.remove(&b).expect_err("remove twice").kind(),
            io::ErrorKind::NotFound
        );
    }

    #[test]
    fn list_returns_regular_files_only() {
        let (fs, dir) = fs_and_dir();
        fs.create_dir_all(&dir.path().join("sub/deeper"))
            .expect("mkdir");
        fs.open(&dir.path().join("x"), true).expect("x");
        fs.open(&dir.path().join("y"), true).expect("y");
        fs.open(&dir.path().join("sub/z"), true).expect("z");
        std::os::unix::fs::symlink(dir.path().join("x"), dir.path().join("link")).expect("symlink");
        let mut listed = fs.list(dir.path()).expect("list");
        listed.sort();
        assert_eq!(listed, vec![dir.path().join("x"), dir.path().join("y")]);
    }

    #[test]
    fn free_space_is_positive() {
        let (fs, dir) = fs_and_dir();
        assert!(fs.free_space(dir.path()).expect("statvfs") > 0);
        assert_eq!(fs.kind(), "std");
    }

    /// Block writes (`write_direct`) of a growing log, each starting at the block holding the
    /// previous one's end and rewriting it, read back exactly through `read_at` and `map`,
    /// whichever way the backend wrote them.
    pub(crate) fn check_block_writes(f: &dyn VFile) {
        const B: usize = crate::io::DIRECT_ALIGN;
        f.allocate(0, 64 * B as u64).expect("allocate");
        // An aligned scratch buffer: a Vec with room to start on a block boundary.
        let mut mem = vec![0u8; 16 * B];
        let start = (B - mem.as_ptr() as usize % B) % B;
        let mut log: Vec<u8> = Vec::new();
        for (i, len) in [10usize, 5000, 3, 9000, 4096].into_iter().enumerate() {
            let base = log.len() / B * B;
            log.extend(std::iter::repeat_n(i as u8 + 1, len));
            let padded = (log.len() - base).div_ceil(B) * B;
            let buf = &mut mem[start..start + padded];
            buf.fill(0);
            buf[..log.len() - base].copy_from_slice(&log[base..]);
            f.write_direct(buf, base as u64).expect("block write");
            let mut back = vec![0u8; log.len()];
            f.read_at(&mut back, 0).expect("read back");
            assert_eq!(back, log, "after block write {i}");
        }
        f.sync_data().expect("sync");
        let map = f.map().expect("map");
        assert_eq!(&(*map).as_ref()[..log.len()], &log[..]);
    }

    #[test]
    fn block_writes_read_back_exactly() {
        let (fs, dir) = fs_and_dir();
        let f = fs.open(&dir.path().join("seg"), true).expect("open");
        check_block_writes(f.as_ref());
    }

    #[test]
    fn lock_is_exclusive_until_dropped_and_list_dirs_finds_subdirectories() {
        let (fs, dir) = fs_and_dir();
        let path = dir.path().join("in_use.lock");
        let held = fs.lock(&path).expect("lock");
        // flock locks belong to the open file description, so a second open in this same
        // process conflicts, as another process would (after the bounded retry).
        let err = fs.lock(&path).expect_err("held");
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
        drop(held);
        drop(fs.lock(&path).expect("released by drop"));
        std::fs::create_dir(dir.path().join("sub")).expect("mkdir");
        assert_eq!(
            fs.list_dirs(dir.path()).expect("list_dirs"),
            vec![dir.path().join("sub")]
        );
    }
}
