//! The only code that touches file descriptors, and the only home of `unsafe` (mmap,
//! io_uring). Everything above this module sees storage through [`Vfs`] and [`VFile`], so the
//! same channel code runs on the std backend (pwrite + fdatasync), the io_uring backend, and
//! the in-memory [`mem::MemFs`] that tests use to inject faults and simulate power loss.
//!
//! Contract every backend honours (the channel's durability argument rests on it):
//! - `VFile::write_at` either writes all of `buf` or returns an error; after an error the bytes
//!   in that range are unspecified.
//! - Bytes written are durable only after a later `VFile::sync_data` on that file returns `Ok`.
//!   A failed `sync_data` leaves the durability of every unsynced byte unknown: callers must
//!   never retry it and never report those bytes durable (see `channel::file` poisoning).
//! - A file created, renamed or removed is durable in its directory only after `sync_dir` on
//!   that directory returns `Ok`.
//! - `VFile::allocate` reserves blocks (and extends the length) so later writes inside the range
//!   cannot fail for lack of space; an `ENOSPC` from it means nothing was written.
//! - `VFile::write_direct` has `write_at`'s contract for whole [`DIRECT_ALIGN`] blocks; a backend
//!   may bypass the page cache for it (the std backend uses `O_DIRECT`), and reads afterwards
//!   still see the new bytes.
//! - `Vfs::lock` is exclusive among every holder of that backend's filesystem: another process
//!   (std, io_uring: an `flock` on the file) or, for `MemFs`, another channel on the same
//!   `MemFs`. The lock is released when its guard is dropped, when the process dies, or (for
//!   `MemFs`) at a simulated crash.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub mod mem;
pub mod std_fs;
#[cfg(feature = "io-uring")]
pub mod uring;

/// Which backend a channel asks for (`io = std | uring`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum IoKind {
    /// pwrite + fdatasync through std and rustix.
    #[default]
    Std,
    /// io_uring submissions for writes and syncs; falls back to `Std` with one log line when
    /// the kernel or container refuses io_uring, or when the `io-uring` feature is off.
    Uring,
}

impl std::str::FromStr for IoKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "std" => Ok(IoKind::Std),
            "uring" | "io_uring" | "io-uring" => Ok(IoKind::Uring),
            other => Err(format!(
                "unknown io backend `{other}`: use `std` or `uring`"
            )),
        }
    }
}

/// Alignment of [`VFile::write_direct`]'s buffer address, offset and length. 4 KiB satisfies
/// `O_DIRECT` on disks with 512-byte or 4 KiB logical blocks, and is the page size, so a
/// rewritten block never shares a page with bytes outside the write.
pub const DIRECT_ALIGN: usize = 4096;

/// Whether `buf` (address and length) and `offset` meet [`VFile::write_direct`]'s alignment.
pub(crate) fn block_aligned(buf: &[u8], offset: u64) -> bool {
    (buf.as_ptr() as usize).is_multiple_of(DIRECT_ALIGN)
        && buf.len().is_multiple_of(DIRECT_ALIGN)
        && offset.is_multiple_of(DIRECT_ALIGN as u64)
}

/// Read-only bytes of a whole file: an mmap for the real backends, a copy for `MemFs`.
pub type Mapped = Arc<dyn MappedBytes>;

/// The bytes behind [`Mapped`].
pub trait MappedBytes: AsRef<[u8]> + Send + Sync {
    /// A hint that `range` will not be read again soon: an mmap drops those pages from the
    /// process's resident set (they are mapped again from the page cache if touched, with the
    /// same bytes, since mapped files never change). Without it every page a reader ever
    /// touched stays resident until the whole segment is unmapped.
    fn release(&self, _range: std::ops::Range<usize>) {}
}

impl MappedBytes for Vec<u8> {}

/// A filesystem: the directory-level operations the channel needs.
pub trait Vfs: Send + Sync + std::fmt::Debug {
    /// Opens `path` for reading and writing, creating it (empty) when `create` is true and it
    /// does not exist. Fails with `NotFound` when `create` is false and it does not exist.
    fn open(&self, path: &Path, create: bool) -> io::Result<Arc<dyn VFile>>;
    /// Creates the directory and its parents.
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// Full paths of the regular files directly inside `dir`, in no particular order.
    fn list(&self, dir: &Path) -> io::Result<Vec<PathBuf>>;
    /// Atomically renames, replacing `to` if it exists.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Removes a file.
    fn remove(&self, path: &Path) -> io::Result<()>;
    /// Makes creations, renames and removals inside `dir` durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    /// Bytes available to unprivileged writers on the filesystem holding `dir`.
    fn free_space(&self, dir: &Path) -> io::Result<u64>;
    /// Full paths of the directories directly inside `dir`, in no particular order.
    fn list_dirs(&self, dir: &Path) -> io::Result<Vec<PathBuf>>;
    /// Takes an exclusive lock on the file `path` (created, empty, if it does not exist), held
    /// until the returned guard is dropped. Fails with `ErrorKind::WouldBlock` when another
    /// holder has it (see the module docs for who counts as another holder).
    fn lock(&self, path: &Path) -> io::Result<Box<dyn FileLock>>;
    /// Which backend actually serves writes ("std", "uring", "mem"), for logs and benchmarks
    /// only: no behaviour may depend on it.
    fn kind(&self) -> &'static str;
}

/// A held [`Vfs::lock`]; dropping it releases the lock.
pub trait FileLock: Send + Sync + std::fmt::Debug {}

/// One open file.
#[allow(clippy::len_without_is_empty)]
pub trait VFile: Send + Sync + std::fmt::Debug {
    /// Writes all of `buf` at `offset` (pwrite semantics: no shared cursor).
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()>;
    /// Writes whole blocks: `buf`'s address, `buf.len()` and `offset` are multiples of
    /// [`DIRECT_ALIGN`]. Backends that can bypass the page cache do (on ext4 and xfs the
    /// fdatasync that follows then only flushes the disk's cache and the extent state, which
    /// made a group sync about 1.6x cheaper on the benchmark machine); the others write as
    /// `write_at` does.
    fn write_direct(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.write_at(buf, offset)
    }
    /// Fills all of `buf` from `offset`; `UnexpectedEof` if the file is shorter.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;
    /// fdatasync.
    fn sync_data(&self) -> io::Result<()>;
    /// Reserves `[offset, offset + len)` (fallocate mode 0: the length grows if needed).
    fn allocate(&self, offset: u64, len: u64) -> io::Result<()>;
    /// Truncates or extends (with zeros) to `len`.
    fn set_len(&self, len: u64) -> io::Result<()>;
    /// Current length in bytes.
    fn len(&self) -> io::Result<u64>;
    /// The whole file, read-only, as of now. Callers map only files that no longer grow
    /// (sealed segments, checkpoints).
    fn map(&self) -> io::Result<Mapped>;
    /// The path it was opened with (for error messages).
    fn path(&self) -> &Path;
}

/// Builds the backend for `kind`. `Uring` falls back to `Std` (logging why, once per call)
/// when io_uring cannot be used here.
pub fn backend(kind: IoKind) -> Arc<dyn Vfs> {
    match kind {
        IoKind::Std => Arc::new(std_fs::StdFs),
        IoKind::Uring => uring_or_std(),
    }
}

#[cfg(feature = "io-uring")]
fn uring_or_std() -> Arc<dyn Vfs> {
    match uring::UringFs::new() {
        Ok(fs) => Arc::new(fs),
        Err(e) => {
            tracing::warn!(error = %e, "io_uring is not available here; falling back to the std I/O backend (pwrite + fdatasync)");
            Arc::new(std_fs::StdFs)
        }
    }
}

#[cfg(not(feature = "io-uring"))]
fn uring_or_std() -> Arc<dyn Vfs> {
    tracing::warn!("flumen was built without the `io-uring` feature; using the std I/O backend");
    Arc::new(std_fs::StdFs)
}
