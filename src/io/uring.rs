//! The io_uring backend: writes and data syncs are submitted to an io_uring; everything else
//! (directory operations, reads, allocation, mmap) is the std backend's code unchanged.
//!
//! Each thread has its own small ring (created on first use), so writes from one thread never
//! queue behind another thread's fdatasync: the channel's group commit needs committers to keep
//! writing while a leader syncs.
//!
//! Invariants: one operation is in flight per ring at a time, and the calling thread waits for
//! its completion before returning, so a borrowed buffer is never touched by the kernel after
//! the call that lent it returns. If an operation can no longer be waited for (a failure that
//! should be impossible on a healthy ring) the process aborts rather than return and free a
//! buffer the kernel may still read. A submission that never reached the kernel poisons the
//! ring (it is dropped, so the stale entry can never be submitted later; the thread's next
//! call makes a fresh ring). Completion results are checked: a negative result is `-errno`.

use std::fmt;
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use std::cell::RefCell;

use io_uring::{opcode, squeue, types, IoUring};

use super::std_fs::{StdFile, StdFs};
use super::{FileLock, Mapped, VFile, Vfs};

/// Largest single write submitted; Linux caps one write at just under 2 GiB anyway and a short
/// write is simply resubmitted.
const MAX_CHUNK: usize = 1 << 30;

/// The io_uring backend. Rings are per thread (see the module docs): one submission and one
/// completion at a time per ring, no user_data bookkeeping, and no lock between threads.
#[derive(Debug)]
pub struct UringFs {
    _private: (),
}

thread_local! {
    /// This thread's ring; `None` until first use or after a submission failure.
    static RING: RefCell<Option<IoUring>> = const { RefCell::new(None) };
}

/// Entries per ring: one operation is ever in flight, a few spare.
const RING_ENTRIES: u32 = 8;

impl UringFs {
    /// Creates the ring and proves it works by round-tripping a NOP: containers commonly
    /// allow `io_uring_setup` but block `io_uring_enter` (or the reverse) through seccomp, and
    /// we want that refusal here rather than on the first write.
    pub fn new() -> io::Result<UringFs> {
        let res = run(&opcode::Nop::new().build())?;
        if res < 0 {
            return Err(io::Error::from_raw_os_error(-res));
        }
        Ok(UringFs { _private: () })
    }
}

/// Submits one entry and waits for its completion; returns the completion's raw result.
///
/// The caller must keep every buffer the entry points at alive until this returns (a borrow
/// spanning the call does that), and the entry must not need anything else to stay valid.
fn run(entry: &squeue::Entry) -> io::Result<i32> {
    RING.with(|cell| {
        let mut guard = cell.borrow_mut();
        if guard.is_none() {
            *guard = Some(IoUring::new(RING_ENTRIES)?);
        }
        run_on(&mut guard, entry)
    })
}

fn run_on(guard: &mut Option<IoUring>, entry: &squeue::Entry) -> io::Result<i32> {
    let Some(uring) = guard.as_mut() else {
        return Err(io::Error::other("io_uring ring missing"));
    };
    #[allow(unsafe_code)]
    // SAFETY: the entry's buffer (if any) is borrowed by our caller for the whole call, and we
    // do not return until the kernel has posted this entry's completion (loop below), or we
    // have dropped the ring with the entry still unconsumed, or we abort. So the kernel never
    // reads the buffer after it is released. The file descriptor is likewise borrowed by the
    // caller's `&self` for the duration.
    let pushed = unsafe { uring.submission().push(entry) };
    if pushed.is_err() {
        // Only reachable if an earlier call left entries behind, which the lock prevents.
        return Err(io::Error::other(
            "io_uring submission queue unexpectedly full",
        ));
    }
    loop {
        if let Err(e) = uring.submit_and_wait(1) {
            let retry = matches!(
                e.kind(),
                io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock
            ) || e.raw_os_error() == Some(rustix::io::Errno::BUSY.raw_os_error());
            if !uring.submission().is_empty() {
                if retry {
                    continue;
                }
                // The kernel never took the entry. Returning would leave it in the ring,
                // pointing at a buffer about to be freed, for the next call to submit: drop
                // the ring so that cannot happen.
                *guard = None;
                return Err(e);
            }
            if !retry {
                // The entry is in flight and we cannot wait for it: returning could let the
                // kernel read freed memory. A healthy ring never gets here.
                tracing::error!(error = %e, "io_uring wait failed with an operation in flight; aborting");
                std::process::abort();
            }
        }
        // `submit_and_wait` can return after submitting even though the wait was interrupted,
        // so a completion is only certain once we have seen it.
        if let Some(cqe) = uring.completion().next() {
            return Ok(cqe.result());
        }
    }
}

impl Vfs for UringFs {
    fn open(&self, path: &Path, create: bool) -> io::Result<Arc<dyn VFile>> {
        Ok(Arc::new(UringFile {
            std: StdFs.open_file(path, create)?,
        }))
    }

    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        StdFs.create_dir_all(dir)
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        StdFs.list(dir)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        StdFs.rename(from, to)
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        StdFs.remove(path)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        StdFs.sync_dir(dir)
    }

    fn free_space(&self, dir: &Path) -> io::Result<u64> {
        StdFs.free_space(dir)
    }

    fn list_dirs(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        StdFs.list_dirs(dir)
    }

    fn lock(&self, path: &Path) -> io::Result<Box<dyn FileLock>> {
        StdFs.lock(path)
    }

    fn kind(&self) -> &'static str {
        "uring"
    }
}

/// A file whose writes and data syncs go through the calling thread's ring.
pub struct UringFile {
    std: StdFile,
}

impl fmt::Debug for UringFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UringFile")
            .field("path", &self.std.path())
            .finish_non_exhaustive()
    }
}

impl UringFile {
    fn fd(&self) -> types::Fd {
        types::Fd(self.std.file().as_raw_fd())
    }

    /// Writes all of `buf` at `offset` through the ring on `fd` (this file's, or its
    /// `O_DIRECT` twin).
    fn write_fd(&self, fd: types::Fd, buf: &[u8], offset: u64) -> io::Result<()> {
        // The kernel reads the offset as signed and takes -1 to mean "the file position", so
        // an out-of-range offset must be refused here rather than passed through.
        let fits = offset
            .checked_add(buf.len() as u64)
            .is_some_and(|end| end <= i64::MAX as u64);
        if !fits {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{}: write of {} bytes at offset {offset} is out of range",
                    self.std.path().display(),
                    buf.len()
                ),
            ));
        }
        let mut done = 0usize;
        while done < buf.len() {
            let chunk = &buf[done..buf.len().min(done + MAX_CHUNK)];
            // MAX_CHUNK fits in u32, so this never saturates.
            let len = u32::try_from(chunk.len()).unwrap_or(u32::MAX);
            let entry = opcode::Write::new(fd, chunk.as_ptr(), len)
                .offset(offset + done as u64)
                .build();
            let res = run(&entry)?;
            if res < 0 {
                return Err(io::Error::from_raw_os_error(-res));
            }
            if res == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    format!(
                        "{}: io_uring write at offset {} wrote nothing",
                        self.std.path().display(),
                        offset + done as u64
                    ),
                ));
            }
            // A short write (res < len) is legal; the loop resubmits the rest.
            done += res as usize;
        }
        Ok(())
    }
}

impl VFile for UringFile {
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.write_fd(self.fd(), buf, offset)
    }

    /// Through the ring on the std file's `O_DIRECT` descriptor, with the same fallbacks as
    /// the std backend (no `O_DIRECT` here, or EINVAL for the alignment: the page cache).
    fn write_direct(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        let aligned = super::block_aligned(buf, offset);
        let Some(direct) = self.std.direct_file().filter(|_| aligned) else {
            return self.write_at(buf, offset);
        };
        match self.write_fd(types::Fd(direct.as_raw_fd()), buf, offset) {
            Err(e) if e.raw_os_error() == Some(rustix::io::Errno::INVAL.raw_os_error()) => {
                self.write_at(buf, offset)
            }
            r => r,
        }
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.std.read_at(buf, offset)
    }

    fn sync_data(&self) -> io::Result<()> {
        let entry = opcode::Fsync::new(self.fd())
            .flags(types::FsyncFlags::DATASYNC)
            .build();
        let res = run(&entry)?;
        if res < 0 {
            return Err(io::Error::from_raw_os_error(-res));
        }
        Ok(())
    }

    fn allocate(&self, offset: u64, len: u64) -> io::Result<()> {
        self.std.allocate(offset, len)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.std.set_len(len)
    }

    fn len(&self) -> io::Result<u64> {
        self.std.len()
    }

    fn map(&self) -> io::Result<Mapped> {
        self.std.map()
    }

    fn path(&self) -> &Path {
        self.std.path()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::{backend, IoKind};

    #[test]
    fn uring_round_trip_or_fallback() {
        match UringFs::new() {
            Ok(fs) => {
                assert_eq!(fs.kind(), "uring");
                let dir = tempfile::tempdir().expect("tempdir");
                let path = dir.path().join("seg");
                let f = fs.open(&path, true).expect("open");
                f.allocate(0, 4096).expect("allocate");
                let big: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
                f.write_at(b"head", 0).expect("write");
                f.write_at(&big, 10).expect("write big");
                f.sync_data().expect("sync");
                let mut buf = vec![0u8; 4];
                f.read_at(&mut buf, 0).expect("read");
                assert_eq!(buf, b"head");
                let mut back = vec![0u8; big.len()];
                f.read_at(&mut back, 10).expect("read big");
                assert_eq!(back, big);
                assert_eq!(f.len().expect("len"), 100_010);
                assert_eq!(std::fs::read(&path).expect("std read")[..4], *b"head");
                // The backend selector must pick io_uring when it works.
                assert_eq!(backend(IoKind::Uring).kind(), "uring");
            }
            Err(e) => {
                eprintln!("io_uring unavailable here ({e}); checking the std fallback");
                assert_eq!(backend(IoKind::Uring).kind(), "std");
            }
        }
    }

    /// The io_uring backend, or `None` where the kernel refuses it (after checking that the
    /// backend selector then falls back to std).
    fn uring_or_std_fallback() -> Option<UringFs> {
        let fs = UringFs::new().ok();
        if fs.is_none() {
            assert_eq!(backend(IoKind::Uring).kind(), "std");
        }
        fs
    }

    #[test]
    fn block_writes_read_back_exactly() {
        let Some(fs) = uring_or_std_fallback() else {
            return;
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let f = fs.open(&dir.path().join("seg"), true).expect("open");
        crate::io::std_fs::tests::check_block_writes(f.as_ref());
    }

    #[test]
    fn failed_completion_is_errno_and_ring_stays_usable() {
        let Some(fs) = uring_or_std_fallback() else {
            return;
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ro");
        std::fs::write(&path, b"x").expect("create");
        let ro = std::fs::File::open(&path).expect("open read-only");
        let data = *b"y";
        let entry = opcode::Write::new(types::Fd(ro.as_raw_fd()), data.as_ptr(), 1).build();
        let res = run(&entry).expect("submitted");
        assert_eq!(res, -rustix::io::Errno::BADF.raw_os_error());

        let f = fs.open(&path, false).expect("open rw");
        f.write_at(b"z", 0)
            .expect("ring still works after a failed op");
        f.sync_data().expect("sync");
        assert_eq!(std::fs::read(&path).expect("read"), b"z");
        let err = f
            .write_at(b"w", u64::MAX)
            .expect_err("offset -1 must not reach the kernel");
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }
}
