//! [`SinkError`]: why a sink could not handle a batch, typed, and whether retrying can help.
//!
//! Each sink classifies its failures where they happen (the hdfs sink from hdfs-native's error
//! and the Java exception class the NameNode sent, or from the I/O error kind of the local
//! filesystem; the avro sink from the RPC error and whether it was connecting or calling;
//! file_roll from the I/O error kind), because only there is it known what the failure means.
//! The runner only reads the verdict: [`Retry::Retryable`] failures are retried with a growing
//! backoff, [`Retry::Permanent`] ones at the longest backoff, and each is reported once per
//! change of cause (see [`super::report`]).
//!
//! IMPORTANT: "permanent" never means the events are dropped. The take is rolled back and the
//! events stay in the channel, as in Flume; it means that retrying soon will not help until an
//! operator acts (grants a permission, frees a path, fixes the producer or the
//! configuration). The runner keeps retrying, slowly, so a fix outside the agent takes effect
//! without a restart.

use std::io;
use std::path::PathBuf;

use super::hdfs::format::FormatError;
use super::hdfs::fs::FsError;
use super::hdfs::path::PathError;
pub(crate) use super::retry::{io_hint, io_key};
pub use super::retry::{io_retry, Retry};
use crate::avro::blocking::RpcError;
use crate::thrift::blocking::ThriftRpcError;

/// Why a sink could not handle a batch, with the sink's name and its [`Retry`] verdict. The
/// message names the sink and the file or peer involved.
#[derive(Debug, thiserror::Error)]
#[error("sink `{sink}`: {cause}")]
pub struct SinkError {
    sink: String,
    retry: Retry,
    /// Boxed: the causes carry paths and peers, and a small error keeps every `Result`
    /// that can hold one (the agent's start-up, each batch) small.
    #[source]
    cause: Box<SinkCause>,
}

impl SinkError {
    /// A failure described in text only, classified permanent: for settings refused at
    /// start-up and internal inconsistencies, where there is nothing to retry.
    pub fn new(sink: &str, message: impl Into<String>) -> SinkError {
        SinkError::with_retry(sink, Retry::Permanent, SinkCause::Other(message.into()))
    }

    /// `cause` with the verdict of the code that saw it fail.
    pub fn with_retry(sink: &str, retry: Retry, cause: impl Into<SinkCause>) -> SinkError {
        SinkError {
            sink: sink.to_string(),
            retry,
            cause: Box::new(cause.into()),
        }
    }

    /// An hdfs sink filesystem failure, classified by [`FsError::retry`].
    pub fn fs(sink: &str, e: FsError) -> SinkError {
        SinkError::with_retry(sink, e.retry(), SinkCause::Fs(e))
    }

    /// The sink's name.
    pub fn sink(&self) -> &str {
        &self.sink
    }

    /// What failed.
    pub fn cause(&self) -> &SinkCause {
        &self.cause
    }

    /// Whether retrying can help without anyone acting.
    pub fn retry(&self) -> Retry {
        self.retry
    }

    /// `retry() == Retry::Retryable`.
    pub fn is_retryable(&self) -> bool {
        self.retry == Retry::Retryable
    }

    /// Names the cause without what changes from one attempt to the next (file names,
    /// counters, batch sizes, which call hit it): two failures with equal keys are the same
    /// cause for reporting, so a sink retrying a dead NameNode into ever new file names is
    /// reported once.
    pub fn cause_key(&self) -> CauseKey {
        CauseKey(format!("{:?} {}", self.retry, self.cause.key()))
    }
}

/// See [`SinkError::cause_key`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CauseKey(String);

/// Whether the avro sink was connecting or calling when its RPC failed: a TLS failure while
/// connecting is the handshake (a certificate or a setting, permanent), while calling it is a
/// broken session (retryable).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RpcStage {
    /// Resolving, connecting, and the TLS handshake.
    Connect,
    /// Sending a batch and waiting for its answer.
    Call,
}

/// What failed in a sink.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SinkCause {
    /// A call on the hdfs sink's filesystem (HDFS or the local one) failed; the error names
    /// the operation, the path and the filesystem.
    #[error(transparent)]
    Fs(FsError),
    /// The hdfs sink could not place an event: rendering `key` (`hdfs.path` or
    /// `hdfs.filePrefix`, the template `template`) failed on its headers (no or a bad
    /// `timestamp` header, a directory outside the template's base).
    #[error("{key} `{template}`: {source}")]
    Render {
        key: &'static str,
        template: String,
        #[source]
        source: PathError,
    },
    /// `hdfs.filePrefix` rendered to something that is not a file name.
    #[error(
        "hdfs.filePrefix `{template}` rendered to `{rendered}`, which is not a file name: \
         remove the `/` from hdfs.filePrefix (directories belong in hdfs.path)"
    )]
    FileName { template: String, rendered: String },
    /// The hdfs sink could not encode an event, or flush or finish a file, in its format
    /// (`what` says which, `file` names the file).
    #[error("{what} {file}: {source}")]
    Format {
        what: &'static str,
        file: String,
        #[source]
        source: FormatError,
    },
    /// The avro sink's connection to, or call on, the next tier failed; the error names the
    /// peer.
    #[error("{source}")]
    Rpc {
        stage: RpcStage,
        #[source]
        source: RpcError,
    },
    /// The thrift sink's connection to, or call on, the next tier failed; the error names the
    /// peer.
    #[error("{source}")]
    Thrift {
        stage: RpcStage,
        #[source]
        source: ThriftRpcError,
    },
    /// A file operation of the file_roll sink (`op`, on `path`) failed.
    #[error("{op} {}: {source}{}", path.display(), io_hint(source))]
    File {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The kafka sink's records were not acknowledged: `message` names the brokers, the
    /// topic and what to do; `key` the failure's kind and topic, for reporting.
    #[error("{message}")]
    Kafka { message: String, key: String },
    /// Anything else, as text: settings refused at start-up, an internal inconsistency.
    #[error("{0}")]
    Other(String),
}

impl SinkCause {
    /// See [`SinkError::cause_key`].
    fn key(&self) -> String {
        match self {
            SinkCause::Fs(e) => format!("fs {}", e.key()),
            SinkCause::Render { key, source, .. } => {
                format!("render {key} {:?}", std::mem::discriminant(source))
            }
            SinkCause::FileName { .. } => "file name".into(),
            SinkCause::Format { source, .. } => {
                format!("format {:?}", std::mem::discriminant(source))
            }
            SinkCause::Rpc { stage, source } => format!("rpc {stage:?} {}", rpc_key(source)),
            SinkCause::Thrift { stage, source } => {
                format!("thrift {stage:?} {}", thrift_key(source))
            }
            SinkCause::File { source, .. } => format!("file {}", io_key(source)),
            SinkCause::Kafka { key, .. } => format!("kafka {key}"),
            SinkCause::Other(m) => format!("other {m}"),
        }
    }
}

impl From<FsError> for SinkCause {
    fn from(e: FsError) -> Self {
        SinkCause::Fs(e)
    }
}

fn thrift_key(e: &ThriftRpcError) -> String {
    let kind = match e {
        ThriftRpcError::Connect { source, .. } | ThriftRpcError::Io { source, .. } => {
            io_key(source)
        }
        ThriftRpcError::Refused { status, .. } => status.name().to_string(),
        _ => String::new(),
    };
    format!("{:?} {kind}", std::mem::discriminant(e))
}

fn rpc_key(e: &RpcError) -> String {
    let kind = match e {
        RpcError::Connect { source, .. } | RpcError::Io { source, .. } => io_key(source),
        RpcError::Refused { status, .. } => (*status).to_string(),
        _ => String::new(),
    };
    format!("{:?} {kind}", std::mem::discriminant(e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustix::io::Errno;

    fn os(errno: Errno) -> io::Error {
        io::Error::from_raw_os_error(errno.raw_os_error())
    }

    #[test]
    fn io_errors_are_classified_by_what_a_retry_can_change() {
        let retryable = [
            (Errno::NOSPC, "a full disk"),
            (Errno::DQUOT, "a full quota"),
            (Errno::TIMEDOUT, "a timeout"),
            (Errno::CONNREFUSED, "a peer not listening"),
            (Errno::CONNRESET, "a peer that went away"),
            (Errno::PIPE, "a closed pipe"),
            (Errno::HOSTUNREACH, "an unreachable host"),
            (Errno::NETUNREACH, "an unreachable network"),
            (Errno::BUSY, "a busy device"),
            (Errno::STALE, "a stale NFS handle"),
            (Errno::NOENT, "a vanished file"),
            (Errno::INTR, "an interrupted call"),
        ];
        for (errno, what) in retryable {
            assert_eq!(io_retry(&os(errno)), Retry::Retryable, "{what} ({errno:?})");
        }
        let permanent = [
            (Errno::ACCESS, "permission denied"),
            (Errno::PERM, "operation not permitted"),
            (Errno::ROFS, "a read-only filesystem"),
            (Errno::NOTDIR, "a path component that is a file"),
            (Errno::ISDIR, "a directory where a file belongs"),
            (Errno::NAMETOOLONG, "too long a name"),
            (Errno::LOOP, "a symlink loop"),
            (Errno::INVAL, "an invalid argument"),
            (Errno::FBIG, "a file at its size limit"),
            (Errno::IO, "a device I/O error"),
        ];
        for (errno, what) in permanent {
            assert_eq!(io_retry(&os(errno)), Retry::Permanent, "{what} ({errno:?})");
        }
        // Errors without an errno go by their kind.
        assert_eq!(
            io_retry(&io::Error::from(io::ErrorKind::TimedOut)),
            Retry::Retryable
        );
        assert_eq!(
            io_retry(&io::Error::from(io::ErrorKind::PermissionDenied)),
            Retry::Permanent
        );
    }

    #[test]
    fn permanent_io_errors_say_what_to_do() {
        for errno in [Errno::ACCESS, Errno::ROFS, Errno::NOTDIR, Errno::IO] {
            assert!(!io_hint(&os(errno)).is_empty(), "{errno:?}");
        }
    }

    #[test]
    fn the_cause_key_ignores_paths_and_keeps_the_kind() {
        let e = |path: &str, errno: Errno| {
            SinkError::with_retry(
                "k1",
                io_retry(&os(errno)),
                SinkCause::File {
                    op: "cannot create",
                    path: path.into(),
                    source: os(errno),
                },
            )
        };
        let a = e("/out/a-1", Errno::NOTDIR);
        assert_eq!(a.retry(), Retry::Permanent);
        assert!(!a.is_retryable());
        assert_eq!(a.cause_key(), e("/out/a-2", Errno::NOTDIR).cause_key());
        assert_ne!(a.cause_key(), e("/out/a-1", Errno::ACCESS).cause_key());
        let msg = a.to_string();
        assert!(
            msg.starts_with("sink `k1`: cannot create /out/a-1: "),
            "{msg}"
        );
        assert!(msg.contains("regular file"), "{msg}");
    }

    #[test]
    fn the_text_only_constructor_is_permanent() {
        let e = SinkError::new("k1", "ssl: no truststore");
        assert_eq!(e.retry(), Retry::Permanent);
        assert_eq!(e.to_string(), "sink `k1`: ssl: no truststore");
        assert_eq!(e.sink(), "k1");
    }
}
