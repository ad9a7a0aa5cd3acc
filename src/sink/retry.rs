//! [`Retry`]: whether retrying a failed batch can help without anyone acting, and how the
//! I/O errors every sink meets (the local filesystem, sockets) are judged, keyed and
//! explained. Kept apart from `error` so that the hdfs sink's filesystem layer can classify
//! its own errors without importing the sink error that wraps them.

use std::io;

/// Whether retrying a failed batch can help without anyone acting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Retry {
    /// A condition expected to pass by itself (a peer restarting, a network blip, a full disk
    /// being cleaned up, a NameNode in safe mode): retried with a growing backoff.
    Retryable,
    /// Retrying soon will not help until an operator acts (a permission, a path that is a
    /// file, a read-only filesystem, an event the template cannot place, a certificate the
    /// sink does not trust): retried at the longest backoff, reported at ERROR.
    Permanent,
}

/// The kind of an I/O error for a `CauseKey`: the errno where there is one (ErrorKind
/// lumps EIO and others together), else the kind.
pub(crate) fn io_key(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(errno) => format!("errno {errno}"),
        None => format!("{:?}", e.kind()),
    }
}

/// Whether retrying after the I/O error `e` can help without anyone acting. The default for
/// the local filesystem and sockets; a sink for which a kind means something else decides
/// before calling this (file_roll: a missing directory is not made again).
///
/// Retryable: a full disk or quota (ENOSPC, EDQUOT: log rotation and downstream jobs free
/// space, and the events wait safely in the channel meanwhile); timeouts and interrupted or
/// would-block calls; a peer refusing, resetting or gone (restarting, failing over);
/// unreachable networks and hosts (routing and links come back); exhausted local ports; a
/// busy device (EBUSY) or a stale NFS handle (ESTALE: a remount clears it, and the retry opens
/// afresh); a file or directory that vanished or a name that is taken (the retry creates new
/// files under new names); memory exhaustion. Anything not listed is retryable too: in a
/// long-running agent an unknown error is more often a passing state than a setting, and
/// misjudging it costs only a faster retry.
///
/// Permanent: permission denied (EACCES, EPERM: someone must grant access; and note that
/// root is not refused at all); a read-only filesystem (EROFS: needs a remount); a path
/// component that is a file (ENOTDIR), a directory where a file belongs (EISDIR), a name too
/// long (ENAMETOOLONG) or a symlink loop (ELOOP): the path itself must change; an invalid
/// argument or an operation the filesystem does not support (EINVAL, EOPNOTSUPP: a setting
/// or a filesystem choice); a file at the filesystem's size limit (EFBIG); and a device I/O
/// error (EIO: the kernel has already retried the device, a second attempt rarely succeeds
/// before someone checks the disk).
pub fn io_retry(e: &io::Error) -> Retry {
    use io::ErrorKind as K;
    use rustix::io::Errno;
    if let Some(errno) = e.raw_os_error() {
        if errno == Errno::IO.raw_os_error() || errno == Errno::LOOP.raw_os_error() {
            return Retry::Permanent;
        }
    }
    match e.kind() {
        K::PermissionDenied
        | K::ReadOnlyFilesystem
        | K::NotADirectory
        | K::IsADirectory
        | K::InvalidFilename
        | K::InvalidInput
        | K::Unsupported
        | K::FileTooLarge
        | K::TooManyLinks => Retry::Permanent,
        K::StorageFull
        | K::QuotaExceeded
        | K::TimedOut
        | K::WouldBlock
        | K::Interrupted
        | K::ConnectionRefused
        | K::ConnectionReset
        | K::ConnectionAborted
        | K::NotConnected
        | K::BrokenPipe
        | K::UnexpectedEof
        | K::HostUnreachable
        | K::NetworkUnreachable
        | K::NetworkDown
        | K::AddrNotAvailable
        | K::AddrInUse
        | K::ResourceBusy
        | K::StaleNetworkFileHandle
        | K::NotFound
        | K::AlreadyExists
        | K::OutOfMemory => Retry::Retryable,
        _ => Retry::Retryable,
    }
}

/// What the operator can do about the I/O error `e`, as a clause to append to its message
/// (empty when the error says enough).
pub(crate) fn io_hint(e: &io::Error) -> &'static str {
    use io::ErrorKind as K;
    if e.raw_os_error() == Some(rustix::io::Errno::IO.raw_os_error()) {
        return " (the device reported an I/O error: check the disk and the kernel log)";
    }
    match e.kind() {
        K::PermissionDenied => {
            " (give the agent's user write access there, or point the sink elsewhere)"
        }
        K::ReadOnlyFilesystem => {
            " (the filesystem is mounted read-only: remount it read-write, or point the sink \
             elsewhere)"
        }
        K::NotADirectory => {
            " (a component of the path is a regular file, not a directory: move it away, or \
             point the sink elsewhere)"
        }
        K::NotFound => " (a directory on the path is missing: create it)",
        K::StorageFull => " (the disk is full: free space; the events wait in the channel)",
        K::QuotaExceeded => {
            " (the disk quota is used up: raise it or free space; the events wait in the channel)"
        }
        _ => "",
    }
}
