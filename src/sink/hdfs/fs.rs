//! Where the HDFS sink's files live: a small trait over the two filesystems it writes to, HDFS
//! (through the hdfs-native crate: HDFS's own RPC and data-transfer protocols, no JVM) and the
//! local filesystem (the embedded default).
//!
//! Invariants the sink relies on:
//! - `SinkFile::sync` and `SinkFile::close` returning `Ok` mean every byte written before is
//!   durable (HDFS: on every DataNode of the pipeline, `hsync`; local: `fdatasync`, plus the
//!   directory entry). `write` returning `Ok` means nothing: hdfs-native queues the bytes.
//! - Every HDFS call is bounded by `call_timeout` (Flume's `hdfs.callTimeout`), and the client
//!   is built with short NameNode retries, so a dead NameNode surfaces as an error within
//!   seconds rather than after hdfs-native's default three minutes of retrying.
//! - `create` never overwrites: a name that exists is an error the caller resolves by picking
//!   another name, so a restarted agent cannot clobber an older file.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hdfs_native::{Client, ClientBuilder, HdfsError, WriteOptions};

use crate::sink::retry::{io_hint, io_retry, Retry};

/// A filesystem operation that failed; the message names the operation, the path and what the
/// user can check. [`FsError::retry`] says whether retrying can help.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FsError {
    /// A call on the local filesystem failed (`op` on `path`); classified by the I/O error's
    /// kind ([`io_retry`]).
    #[error("{op} `{path}` on the local filesystem: {source}{}", io_hint(source))]
    Local {
        op: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// An HDFS call failed (`op` on `path` of `fs`); `failure` is what hdfs-native's error
    /// (and the NameNode's Java exception class) says about it, `message` its first line.
    #[error("{op} `{path}` on {fs}: {message}{}", failure.hint())]
    Hdfs {
        op: &'static str,
        path: String,
        fs: String,
        failure: HdfsFailure,
        message: String,
    },
    /// An HDFS call did not finish within `hdfs.callTimeout`.
    #[error(
        "{op} `{path}` on {fs} did not finish within {timeout:?} (hdfs.callTimeout); is the \
         NameNode or DataNode reachable?"
    )]
    Timeout {
        op: &'static str,
        path: String,
        fs: String,
        timeout: Duration,
    },
    /// `path` exists already (create and rename never replace a file).
    #[error("`{path}` already exists on {fs}")]
    AlreadyExists { path: String, fs: String },
    /// The HDFS client for `url` could not be built (start-up only).
    #[error("cannot build an HDFS client for `{url}`: {message}")]
    Client { url: String, message: String },
}

impl FsError {
    /// Whether retrying the batch (into new files) can help without anyone acting.
    pub fn retry(&self) -> Retry {
        match self {
            FsError::Local { source, .. } => io_retry(source),
            FsError::Hdfs { failure, .. } => failure.retry(),
            // A slow or unreachable NameNode or DataNode: the call is bounded so the runner
            // can try again, and HDFS usually comes back (restart, failover).
            FsError::Timeout { .. } => Retry::Retryable,
            // The retry picks the next file name.
            FsError::AlreadyExists { .. } => Retry::Retryable,
            // A bad URL or Hadoop configuration: only a changed setting helps.
            FsError::Client { .. } => Retry::Permanent,
        }
    }

    /// The cause without paths and operations, for [`crate::sink::SinkError::cause_key`].
    pub(crate) fn key(&self) -> String {
        match self {
            FsError::Local { source, .. } => {
                format!("local {}", crate::sink::retry::io_key(source))
            }
            FsError::Hdfs { failure, fs, .. } => format!("hdfs {fs} {failure:?}"),
            FsError::Timeout { fs, .. } => format!("timeout {fs}"),
            FsError::AlreadyExists { fs, .. } => format!("exists {fs}"),
            FsError::Client { url, .. } => format!("client {url}"),
        }
    }
}

/// What an HDFS failure means for a retry, read from hdfs-native's error variant and, for an
/// error the NameNode sent, the Java exception class it names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HdfsFailure {
    /// A socket error talking to the NameNode or a DataNode; its kind decides
    /// ([`io_retry`]): refused, reset or unreachable means the node is down, restarting or
    /// failing over.
    Network(std::io::ErrorKind),
    /// The NameNode is in safe mode: it leaves it by itself once the DataNodes have reported
    /// their blocks after a start (or once an operator frees its disk).
    SafeMode,
    /// The NameNode asked the client to come back: a standby NameNode, a RetriableException,
    /// a block not replicated yet, a lease still held or being recovered, a full call queue.
    TryAgain,
    /// The DataNode write pipeline broke (a DataNode died, a bad ack or checksum): the retry
    /// writes a new file through a new pipeline.
    Pipeline,
    /// A space or namespace quota is used up: like a full disk, files moved away by
    /// downstream jobs make room.
    Quota,
    /// The file or its directory was deleted under the sink: the retry creates both anew.
    Vanished,
    /// HDFS refused access (AccessControlException, AuthorizationException, a snapshot).
    Permission,
    /// Authentication failed (SASL, Kerberos/GSSAPI, an invalid token): a ticket or keytab
    /// must be renewed or fixed.
    Authentication,
    /// HDFS refused the path or the call itself (an invalid path, a parent that is a file,
    /// too long a name, a full directory, an unsupported feature or argument).
    Refused,
    /// The answer could not be decoded: a server speaking another protocol version.
    Protocol,
    /// Anything else, such as a plain IOException ("could only be written to 0 of the 1
    /// minReplication nodes": no DataNode is up) or hdfs-native giving up waiting for a
    /// block to complete.
    Other,
}

impl HdfsFailure {
    /// Whether retrying can help without anyone acting; see each variant for why.
    pub fn retry(self) -> Retry {
        match self {
            HdfsFailure::Network(kind) => io_retry(&std::io::Error::from(kind)),
            HdfsFailure::SafeMode
            | HdfsFailure::TryAgain
            | HdfsFailure::Pipeline
            | HdfsFailure::Quota
            | HdfsFailure::Vanished
            // Unknown server-side conditions are usually the cluster's passing state (no
            // DataNode up yet); a retry costs little.
            | HdfsFailure::Other => Retry::Retryable,
            HdfsFailure::Permission
            | HdfsFailure::Authentication
            | HdfsFailure::Refused
            | HdfsFailure::Protocol => Retry::Permanent,
        }
    }

    /// What the operator can do, as a clause to append to the message (may be empty).
    fn hint(self) -> &'static str {
        match self {
            HdfsFailure::Permission => {
                " (grant the agent's HDFS user write access to the directory: hdfs dfs -chown, \
                 -chmod or -setfacl)"
            }
            HdfsFailure::Authentication => {
                " (check the agent's Kerberos ticket or keytab, e.g. kinit, or its delegation \
                 token)"
            }
            HdfsFailure::SafeMode => {
                " (the NameNode is in safe mode; it leaves it once the DataNodes have reported, \
                 see hdfs dfsadmin -safemode get)"
            }
            HdfsFailure::Quota => {
                " (raise the quota with hdfs dfsadmin -setSpaceQuota/-setQuota, or move old \
                 files away)"
            }
            _ => "",
        }
    }
}

/// Classifies an error hdfs-native returned; see [`HdfsFailure`].
fn classify_hdfs(e: &HdfsError) -> HdfsFailure {
    match e {
        HdfsError::IOError(io) => HdfsFailure::Network(io.kind()),
        HdfsError::DataTransferError(_)
        | HdfsError::ChecksumError
        | HdfsError::BlocksNotFound(_)
        | HdfsError::ErasureCodingError(_) => HdfsFailure::Pipeline,
        HdfsError::FileNotFound(_) => HdfsFailure::Vanished,
        // Resolved by picking another name (and mapped to FsError::AlreadyExists before).
        HdfsError::AlreadyExists(_) => HdfsFailure::TryAgain,
        HdfsError::InvalidPath(_)
        | HdfsError::InvalidArgument(_)
        | HdfsError::UrlParseError(_)
        | HdfsError::IsADirectoryError(_)
        | HdfsError::TrashNotEnabled
        | HdfsError::UnsupportedErasureCodingPolicy(_)
        | HdfsError::UnsupportedFeature(_)
        | HdfsError::XmlParseError(_) => HdfsFailure::Refused,
        HdfsError::InvalidRPCResponse(_) => HdfsFailure::Protocol,
        HdfsError::SASLError(_) | HdfsError::GSSAPIError(..) | HdfsError::NoSASLMechanism => {
            HdfsFailure::Authentication
        }
        HdfsError::RPCError(class, message) => {
            classify_exception(class, message).unwrap_or(HdfsFailure::Other)
        }
        // The server closed the connection over it: not a passing state unless the class
        // says so (version mismatch, a refused authentication).
        HdfsError::FatalRPCError(class, message) => {
            classify_exception(class, message).unwrap_or(HdfsFailure::Protocol)
        }
        // hdfs-native's own give-ups ("Failed to complete file in time": the block is not
        // yet minimally replicated) and inconsistencies: a fresh file starts from scratch.
        HdfsError::OperationFailed(_) | HdfsError::InternalError(_) => HdfsFailure::Other,
    }
}

/// The Java exception class (`org.apache.hadoop.security.AccessControlException`) an HDFS
/// RPC error names, as an [`HdfsFailure`]; `None` for a class not known here.
fn classify_exception(class: &str, message: &str) -> Option<HdfsFailure> {
    // The simple name, also of a nested class (`SecretManager$InvalidToken`).
    let simple = class.rsplit(['.', '$']).next().unwrap_or(class);
    Some(match simple {
        "SafeModeException" => HdfsFailure::SafeMode,
        // Newer NameNodes wrap SafeModeException in a RetriableException.
        "RetriableException" if message.contains("SafeModeException") => HdfsFailure::SafeMode,
        "RetriableException"
        | "StandbyException"
        | "ObserverRetryOnActiveException"
        | "NotReplicatedYetException"
        | "LeaseExpiredException"
        | "AlreadyBeingCreatedException"
        | "RecoveryInProgressException"
        | "ServerTooBusyException"
        | "CallQueueOverflowException"
        | "RetryStartFileException" => HdfsFailure::TryAgain,
        "DSQuotaExceededException"
        | "NSQuotaExceededException"
        | "QuotaExceededException"
        | "QuotaByStorageTypeExceededException" => HdfsFailure::Quota,
        "FileNotFoundException" => HdfsFailure::Vanished,
        "AccessControlException" | "AuthorizationException" | "SnapshotAccessControlException" => {
            HdfsFailure::Permission
        }
        "SaslException" | "GSSException" | "InvalidToken" | "TokenExpiredException" => {
            HdfsFailure::Authentication
        }
        "ParentNotDirectoryException"
        | "InvalidPathException"
        | "PathComponentTooLongException"
        | "MaxDirectoryItemsExceededException"
        | "UnresolvedPathException"
        | "HadoopIllegalArgumentException"
        | "IllegalArgumentException"
        | "UnsupportedOperationException"
        | "RpcNoSuchMethodException"
        | "RpcNoSuchProtocolException" => HdfsFailure::Refused,
        "VersionMismatch" | "RpcServerException" => HdfsFailure::Protocol,
        _ => return None,
    })
}

/// A filesystem the sink writes to. Paths are absolute paths within it (no scheme).
pub trait SinkFs: Send {
    /// Creates `path` (and its missing parent directories) for writing; fails with
    /// [`FsError::AlreadyExists`] if it exists.
    fn create(&mut self, path: &str) -> Result<Box<dyn SinkFile>, FsError>;
    /// Renames `from` to `to`, refusing to replace an existing `to`.
    fn rename(&mut self, from: &str, to: &str) -> Result<(), FsError>;
    /// Whether `path` exists.
    fn exists(&mut self, path: &str) -> Result<bool, FsError>;
    /// Closes a file some writer left open (HDFS: lease recovery). `Ok(true)` once it is closed.
    fn recover_lease(&mut self, path: &str) -> Result<bool, FsError>;
    /// Cuts the closed file `path` to `len` bytes if it is longer (a failed batch's bytes).
    /// `Ok(true)` once it is done; `Ok(false)` when HDFS finishes it in the background, after
    /// which [`SinkFs::recover_lease`] reports the file closed again.
    fn truncate(&mut self, path: &str, len: u64) -> Result<bool, FsError>;
    /// Deletes the file `path`.
    fn delete(&mut self, path: &str) -> Result<(), FsError>;
    /// Names the filesystem in messages (`hdfs://nn:8020`, `the local filesystem`).
    fn describe(&self) -> String;
}

/// A file open for writing.
pub trait SinkFile: Send {
    /// Queues `data` at the end of the file.
    fn write(&mut self, data: Bytes) -> Result<(), FsError>;
    /// Makes everything written so far durable.
    fn sync(&mut self) -> Result<(), FsError>;
    /// Makes everything durable and closes the file (HDFS: completes it, releasing the lease).
    fn close(&mut self) -> Result<(), FsError>;
}

// ---------------------------------------------------------------------------------------------
// Local filesystem

/// The local filesystem (`file://` paths or plain paths).
#[derive(Debug, Default)]
pub struct LocalFs;

fn local_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> FsError + 'a {
    move |source| FsError::Local {
        op,
        path: path.display().to_string(),
        source,
    }
}

/// Makes a directory entry (a created or renamed file) durable.
fn sync_dir(dir: &Path) -> Result<(), FsError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(local_err("syncing directory", dir))
}

impl SinkFs for LocalFs {
    fn create(&mut self, path: &str) -> Result<Box<dyn SinkFile>, FsError> {
        let p = PathBuf::from(path);
        if let Some(dir) = p.parent() {
            std::fs::create_dir_all(dir).map_err(local_err("creating directory", dir))?;
        }
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&p)
            .map_err(|source| {
                if source.kind() == std::io::ErrorKind::AlreadyExists {
                    FsError::AlreadyExists {
                        path: path.to_string(),
                        fs: self.describe(),
                    }
                } else {
                    FsError::Local {
                        op: "creating",
                        path: path.to_string(),
                        source,
                    }
                }
            })?;
        Ok(Box::new(LocalFile {
            file: Some(file),
            path: p,
            dir_synced: false,
        }))
    }

    fn rename(&mut self, from: &str, to: &str) -> Result<(), FsError> {
        let (from, to) = (Path::new(from), Path::new(to));
        // rename(2) replaces silently; the check is racy only against another writer of the
        // same names, which the unique counter in file names already rules out.
        if to.exists() {
            return Err(FsError::AlreadyExists {
                path: to.display().to_string(),
                fs: self.describe(),
            });
        }
        std::fs::rename(from, to).map_err(local_err("renaming", from))?;
        match to.parent() {
            Some(dir) => sync_dir(dir),
            None => Ok(()),
        }
    }

    fn exists(&mut self, path: &str) -> Result<bool, FsError> {
        Path::new(path)
            .try_exists()
            .map_err(local_err("checking", Path::new(path)))
    }

    fn recover_lease(&mut self, _path: &str) -> Result<bool, FsError> {
        // Local files have no leases: a file left by a crashed writer can be renamed at once.
        Ok(true)
    }

    fn truncate(&mut self, path: &str, len: u64) -> Result<bool, FsError> {
        let p = Path::new(path);
        let file = OpenOptions::new()
            .write(true)
            .open(p)
            .map_err(local_err("opening", p))?;
        let now = file.metadata().map_err(local_err("checking", p))?.len();
        if now > len {
            file.set_len(len)
                .and_then(|()| file.sync_all())
                .map_err(local_err("truncating", p))?;
        }
        Ok(true)
    }

    fn delete(&mut self, path: &str) -> Result<(), FsError> {
        let p = Path::new(path);
        std::fs::remove_file(p).map_err(local_err("deleting", p))?;
        match p.parent() {
            Some(dir) => sync_dir(dir),
            None => Ok(()),
        }
    }

    fn describe(&self) -> String {
        "the local filesystem".to_string()
    }
}

struct LocalFile {
    file: Option<File>,
    path: PathBuf,
    /// The new file's directory entry is made durable once, at the first sync.
    dir_synced: bool,
}

impl LocalFile {
    fn file(&mut self) -> Result<&mut File, FsError> {
        let path = self.path.display().to_string();
        self.file.as_mut().ok_or(FsError::Local {
            op: "writing",
            path,
            source: std::io::Error::other("the file is already closed"),
        })
    }
}

impl SinkFile for LocalFile {
    fn write(&mut self, data: Bytes) -> Result<(), FsError> {
        let path = self.path.clone();
        self.file()?
            .write_all(&data)
            .map_err(local_err("writing", &path))
    }

    fn sync(&mut self) -> Result<(), FsError> {
        let path = self.path.clone();
        self.file()?
            .sync_data()
            .map_err(local_err("syncing", &path))?;
        if !self.dir_synced {
            if let Some(dir) = path.parent() {
                sync_dir(dir)?;
            }
            self.dir_synced = true;
        }
        Ok(())
    }

    fn close(&mut self) -> Result<(), FsError> {
        if self.file.is_none() {
            return Ok(());
        }
        self.sync()?;
        self.file = None;
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// HDFS

/// NameNode retry settings that make a dead NameNode an error within about a second per call
/// (hdfs-native's defaults retry for about three minutes); the sink retries batches itself,
/// with backoff, and the channel holds the events meanwhile. Applied to `hdfs://host:port`
/// only; `hdfs.config.<key>` overrides them.
const FAST_FAIL_CONFIG: [(&str, &str); 3] = [
    ("dfs.client.failover.max.attempts", "1"),
    ("dfs.client.failover.sleep.base.millis", "200"),
    ("dfs.client.failover.sleep.max.millis", "500"),
];

/// An HDFS filesystem reached through hdfs-native. Its async calls run on a small tokio
/// runtime owned by the sink; the runtime's worker thread also keeps hdfs-native's background
/// tasks (lease renewal, packet acknowledgements) running between the sink's calls.
pub struct HdfsFs {
    client: Client,
    runtime: Arc<tokio::runtime::Runtime>,
    url: String,
    call_timeout: Duration,
}

impl HdfsFs {
    /// A client for `url` (`hdfs://host:port`, `hdfs://nameservice` or `hdfs://` for the
    /// default filesystem of `HADOOP_CONF_DIR`'s core-site.xml). `extra_config` overrides
    /// Hadoop settings (after the fast-fail retry settings, so a user can restore longer ones).
    pub fn connect(
        url: &str,
        call_timeout: Duration,
        extra_config: &[(String, String)],
    ) -> Result<HdfsFs, FsError> {
        let client_err = |message: String| FsError::Client {
            url: url.to_string(),
            message,
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("hdfs-io")
            .enable_all()
            .build()
            .map_err(|e| client_err(format!("cannot start the I/O runtime: {e}")))?;
        let runtime = Arc::new(runtime);
        // Only for a single NameNode named by host:port: with an HA nameservice (or the
        // default filesystem) the failover settings of hdfs-site.xml must stand, or the client
        // might give up before it reaches the active NameNode.
        let single_namenode = url
            .split_once("://")
            .is_some_and(|(_, authority)| authority.contains(':'));
        let mut config: Vec<(String, String)> = if single_namenode {
            FAST_FAIL_CONFIG
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        } else {
            Vec::new()
        };
        config.extend(extra_config.iter().cloned());
        let mut builder = ClientBuilder::new()
            .with_config(config)
            .with_io_runtime(runtime.handle().clone());
        // `hdfs://` (or `viewfs://`) with no authority means the default filesystem from the
        // Hadoop config.
        if !url.ends_with("://") {
            builder = builder.with_url(url);
        }
        let client = builder.build().map_err(|e| client_err(first_line(&e)))?;
        Ok(HdfsFs {
            client,
            runtime,
            url: url.to_string(),
            call_timeout,
        })
    }

    fn run<T>(
        &self,
        op: &'static str,
        path: &str,
        fut: impl std::future::Future<Output = Result<T, HdfsError>>,
    ) -> Result<T, FsError> {
        run_bounded(&self.runtime, self.call_timeout, op, path, &self.url, fut)
    }
}

/// Runs one hdfs-native call on `runtime`, bounded by `timeout`.
fn run_bounded<T>(
    runtime: &tokio::runtime::Runtime,
    timeout: Duration,
    op: &'static str,
    path: &str,
    url: &str,
    fut: impl std::future::Future<Output = Result<T, HdfsError>>,
) -> Result<T, FsError> {
    match runtime.block_on(async { tokio::time::timeout(timeout, fut).await }) {
        Ok(Ok(t)) => Ok(t),
        Ok(Err(e)) => Err(hdfs_err(op, path, url, &e)),
        Err(_) => Err(FsError::Timeout {
            op,
            path: path.to_string(),
            fs: url.to_string(),
            timeout,
        }),
    }
}

/// hdfs-native's messages carry whole Java stack traces; the first line names the exception.
fn first_line(e: &HdfsError) -> String {
    let s = e.to_string();
    s.lines().next().unwrap_or_default().trim().to_string()
}

fn hdfs_err(op: &'static str, path: &str, url: &str, e: &HdfsError) -> FsError {
    if matches!(e, HdfsError::AlreadyExists(_)) {
        return FsError::AlreadyExists {
            path: path.to_string(),
            fs: url.to_string(),
        };
    }
    let mut message = first_line(e);
    // The Java exception class name arrives in the RPC error; an existing file on create is
    // reported that way by some NameNode versions.
    if message.contains("FileAlreadyExistsException") {
        return FsError::AlreadyExists {
            path: path.to_string(),
            fs: url.to_string(),
        };
    }
    if message.is_empty() {
        message = format!("{e:?}");
    }
    FsError::Hdfs {
        op,
        path: path.to_string(),
        fs: url.to_string(),
        failure: classify_hdfs(e),
        message,
    }
}

impl SinkFs for HdfsFs {
    fn create(&mut self, path: &str) -> Result<Box<dyn SinkFile>, FsError> {
        let options = WriteOptions::default().overwrite(false).create_parent(true);
        let writer = self.run("creating", path, self.client.create(path, options))?;
        Ok(Box::new(HdfsFile {
            writer,
            runtime: Arc::clone(&self.runtime),
            url: self.url.clone(),
            path: path.to_string(),
            call_timeout: self.call_timeout,
            closed: false,
        }))
    }

    fn rename(&mut self, from: &str, to: &str) -> Result<(), FsError> {
        self.run("renaming", from, self.client.rename(from, to, false))
    }

    fn exists(&mut self, path: &str) -> Result<bool, FsError> {
        let info = async {
            match self.client.get_file_info(path).await {
                Ok(_) => Ok(true),
                Err(HdfsError::FileNotFound(_)) => Ok(false),
                Err(e) => Err(e),
            }
        };
        self.run("checking", path, info)
    }

    fn recover_lease(&mut self, path: &str) -> Result<bool, FsError> {
        self.run(
            "recovering the lease of",
            path,
            self.client.recover_lease(path),
        )
    }

    fn truncate(&mut self, path: &str, len: u64) -> Result<bool, FsError> {
        // HDFS refuses a length beyond the file's: a failed batch may have left nothing, and
        // with `hdfs.sync = none` a recovered file can even be shorter than the sink wrote.
        let cut = async {
            let now = self.client.get_file_info(path).await?.length as u64;
            if now <= len {
                return Ok(true);
            }
            self.client.truncate(path, len).await
        };
        self.run("truncating", path, cut)
    }

    fn delete(&mut self, path: &str) -> Result<(), FsError> {
        self.run("deleting", path, self.client.delete(path, false))
            .map(|_| ())
    }

    fn describe(&self) -> String {
        self.url.clone()
    }
}

struct HdfsFile {
    writer: hdfs_native::file::FileWriter,
    runtime: Arc<tokio::runtime::Runtime>,
    url: String,
    path: String,
    call_timeout: Duration,
    closed: bool,
}

impl HdfsFile {
    fn run<T>(
        &mut self,
        op: &'static str,
        f: impl for<'a> FnOnce(
            &'a mut hdfs_native::file::FileWriter,
        ) -> std::pin::Pin<
            Box<dyn std::future::Future<Output = Result<T, HdfsError>> + Send + 'a>,
        >,
    ) -> Result<T, FsError> {
        let fut = f(&mut self.writer);
        run_bounded(
            &self.runtime,
            self.call_timeout,
            op,
            &self.path,
            &self.url,
            fut,
        )
    }
}

impl SinkFile for HdfsFile {
    fn write(&mut self, data: Bytes) -> Result<(), FsError> {
        self.run("writing", |w| Box::pin(w.write_bytes(data)))
            .map(|_| ())
    }

    fn sync(&mut self) -> Result<(), FsError> {
        self.run("syncing (hsync)", |w| Box::pin(w.hsync()))
    }

    fn close(&mut self) -> Result<(), FsError> {
        if self.closed {
            return Ok(());
        }
        self.run("closing", |w| Box::pin(w.close()))?;
        self.closed = true;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::io::ErrorKind;

    use super::*;

    fn rpc(class: &str, message: &str) -> HdfsError {
        HdfsError::RPCError(class.to_string(), message.to_string())
    }

    fn fs_error(e: &HdfsError) -> FsError {
        hdfs_err("creating", "/flume/a.tmp", "hdfs://nn:8020", e)
    }

    /// Every hdfs-native error variant, and the NameNode exceptions the sink meets, get the
    /// verdict their variant docs give.
    #[test]
    fn hdfs_errors_are_classified_by_what_a_retry_can_change() {
        use HdfsFailure as F;
        use Retry::{Permanent, Retryable};
        let io = |kind: ErrorKind| HdfsError::IOError(std::io::Error::from(kind));
        let cases: Vec<(HdfsError, HdfsFailure, Retry)> = vec![
            // The NameNode or a DataNode is down, restarting or failing over.
            (io(ErrorKind::ConnectionRefused), F::Network(ErrorKind::ConnectionRefused), Retryable),
            (io(ErrorKind::ConnectionReset), F::Network(ErrorKind::ConnectionReset), Retryable),
            (io(ErrorKind::HostUnreachable), F::Network(ErrorKind::HostUnreachable), Retryable),
            (io(ErrorKind::TimedOut), F::Network(ErrorKind::TimedOut), Retryable),
            (io(ErrorKind::UnexpectedEof), F::Network(ErrorKind::UnexpectedEof), Retryable),
            (io(ErrorKind::PermissionDenied), F::Network(ErrorKind::PermissionDenied), Permanent),
            // The DataNode pipeline.
            (HdfsError::DataTransferError("bad ack".into()), F::Pipeline, Retryable),
            (HdfsError::ChecksumError, F::Pipeline, Retryable),
            (HdfsError::BlocksNotFound("/f".into()), F::Pipeline, Retryable),
            (HdfsError::ErasureCodingError("x".into()), F::Pipeline, Retryable),
            (HdfsError::FileNotFound("/f".into()), F::Vanished, Retryable),
            (HdfsError::OperationFailed("Failed to complete file in time".into()), F::Other, Retryable),
            (HdfsError::InternalError("x".into()), F::Other, Retryable),
            // Refused paths and calls, protocol and authentication.
            (HdfsError::InvalidPath("a:b".into()), F::Refused, Permanent),
            (HdfsError::InvalidArgument("x".into()), F::Refused, Permanent),
            (HdfsError::IsADirectoryError("/f".into()), F::Refused, Permanent),
            (HdfsError::UnsupportedFeature("x".into()), F::Refused, Permanent),
            (HdfsError::UnsupportedErasureCodingPolicy("x".into()), F::Refused, Permanent),
            (HdfsError::TrashNotEnabled, F::Refused, Permanent),
            (HdfsError::SASLError("x".into()), F::Authentication, Permanent),
            (HdfsError::NoSASLMechanism, F::Authentication, Permanent),
            // What the NameNode says, by its Java exception class.
            (
                rpc("org.apache.hadoop.hdfs.server.namenode.SafeModeException", "Cannot create file"),
                F::SafeMode,
                Retryable,
            ),
            (
                rpc(
                    "org.apache.hadoop.ipc.RetriableException",
                    "org.apache.hadoop.hdfs.server.namenode.SafeModeException: Name node is in safe mode.",
                ),
                F::SafeMode,
                Retryable,
            ),
            (rpc("org.apache.hadoop.ipc.StandbyException", "x"), F::TryAgain, Retryable),
            (
                rpc("org.apache.hadoop.hdfs.server.namenode.NotReplicatedYetException", "x"),
                F::TryAgain,
                Retryable,
            ),
            (
                rpc("org.apache.hadoop.hdfs.server.namenode.LeaseExpiredException", "x"),
                F::TryAgain,
                Retryable,
            ),
            (
                rpc("org.apache.hadoop.hdfs.protocol.DSQuotaExceededException", "x"),
                F::Quota,
                Retryable,
            ),
            (rpc("java.io.FileNotFoundException", "x"), F::Vanished, Retryable),
            (
                rpc("java.io.IOException", "File /f could only be written to 0 of the 1 minReplication nodes."),
                F::Other,
                Retryable,
            ),
            (
                rpc(
                    "org.apache.hadoop.security.AccessControlException",
                    "Permission denied: user=flume, access=WRITE, inode=\"/flume\":hdfs:supergroup:drwxr-xr-x",
                ),
                F::Permission,
                Permanent,
            ),
            (
                rpc("org.apache.hadoop.hdfs.protocol.SnapshotAccessControlException", "x"),
                F::Permission,
                Permanent,
            ),
            (
                rpc("org.apache.hadoop.security.token.SecretManager$InvalidToken", "x"),
                F::Authentication,
                Permanent,
            ),
            (
                rpc("org.apache.hadoop.fs.ParentNotDirectoryException", "/flume/x (is not a directory)"),
                F::Refused,
                Permanent,
            ),
            (
                rpc("org.apache.hadoop.hdfs.protocol.FSLimitException$PathComponentTooLongException", "x"),
                F::Refused,
                Permanent,
            ),
            // A fatal error closes the connection: permanent unless the class says otherwise.
            (
                HdfsError::FatalRPCError("org.apache.hadoop.ipc.RPC$VersionMismatch".into(), "x".into()),
                F::Protocol,
                Permanent,
            ),
            (
                HdfsError::FatalRPCError("org.example.Unknown".into(), "x".into()),
                F::Protocol,
                Permanent,
            ),
            (
                HdfsError::FatalRPCError("org.apache.hadoop.security.AccessControlException".into(), "SIMPLE authentication is not enabled".into()),
                F::Permission,
                Permanent,
            ),
        ];
        for (e, failure, retry) in cases {
            let what = format!("{e:?}");
            match fs_error(&e) {
                err @ FsError::Hdfs { failure: got, .. } => {
                    assert_eq!(got, failure, "{what}");
                    assert_eq!(err.retry(), retry, "{what}");
                }
                other => panic!("{what}: {other:?}"),
            }
        }
    }

    #[test]
    fn an_existing_name_a_timeout_and_a_client_error_have_their_own_variants() {
        let exists = fs_error(&HdfsError::AlreadyExists("/f".into()));
        assert!(
            matches!(exists, FsError::AlreadyExists { .. }),
            "{exists:?}"
        );
        assert_eq!(exists.retry(), Retry::Retryable, "the next name is tried");
        let exists = fs_error(&rpc(
            "org.apache.hadoop.fs.FileAlreadyExistsException",
            "/f",
        ));
        assert!(
            matches!(exists, FsError::AlreadyExists { .. }),
            "{exists:?}"
        );
        let timeout = FsError::Timeout {
            op: "syncing (hsync)",
            path: "/f".into(),
            fs: "hdfs://nn:8020".into(),
            timeout: Duration::from_secs(10),
        };
        assert_eq!(timeout.retry(), Retry::Retryable);
        let client = FsError::Client {
            url: "hdfs://".into(),
            message: "no fs.defaultFS".into(),
        };
        assert_eq!(client.retry(), Retry::Permanent);
    }

    #[test]
    fn permanent_hdfs_errors_say_what_to_do_and_keep_the_first_line() {
        let e = fs_error(&rpc(
            "org.apache.hadoop.security.AccessControlException",
            "Permission denied: user=flume, access=WRITE\n\tat org.apache.hadoop.Foo(Foo.java:1)",
        ));
        let msg = e.to_string();
        assert!(
            msg.starts_with("creating `/flume/a.tmp` on hdfs://nn:8020: "),
            "{msg}"
        );
        assert!(msg.contains("Permission denied"), "{msg}");
        assert!(msg.contains("hdfs dfs -chown"), "{msg}");
        assert!(!msg.contains("Foo.java"), "{msg}");
    }

    /// The local filesystem, as the root user meets it too: a path whose parent is a regular
    /// file fails with ENOTDIR, which no retry can change.
    #[test]
    fn a_local_path_under_a_regular_file_is_a_permanent_failure() {
        let dir = tempfile::tempdir().expect("tempdir");
        let blocker = dir.path().join("blocker");
        std::fs::write(&blocker, "a file, not a directory").expect("write");
        let path = blocker.join("out/FlumeData.1.tmp");
        let err = match LocalFs.create(&path.display().to_string()) {
            Ok(_) => panic!("created a file under a regular file"),
            Err(e) => e,
        };
        assert!(
            matches!(&err, FsError::Local { source, .. } if source.kind() == ErrorKind::NotADirectory),
            "{err:?}"
        );
        assert_eq!(err.retry(), Retry::Permanent);
        assert!(err.to_string().contains("regular file"), "{err}");
    }
}
