//! Channels: the queue between sources and sinks, with Flume's transaction semantics.
//!
//! A source opens a [`PutTransaction`], puts events and commits; the events become visible to
//! takers only when `commit` returns `Ok` (for the file channel, only once they are durable). A
//! sink opens a [`TakeTransaction`], takes events from the head and commits; the events leave the
//! channel only when that commit returns `Ok`. Rolling back, or dropping the transaction,
//! returns taken events to the head in their original order. Many put and take transactions
//! may run at once, from many threads.
//!
//! Sources and sinks depend on these traits only, never on a channel's insides.
//! Two implementations: [`memory::MemoryChannel`] (Flume's MemoryChannel) and
//! [`file::FileChannel`] (the durable write-ahead log).

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::config::{AsAny, ConfigError, Keys, Registered};
use crate::event::Event;

pub mod file;
pub mod kafka;
pub mod memory;

/// Everything a channel operation can fail with. Messages name the channel, and the file,
/// offset or limit involved, and say what the user can do.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ChannelError {
    /// The channel stayed at `capacity` events (or `byteCapacity` bytes) for the whole
    /// `keep-alive`; the caller should back off and retry (backpressure), not drop events.
    #[error("channel `{channel}` is full ({limit}); waited {keep_alive:?} for room. The sinks are not keeping up: retry later, add sinks, or raise the limit")]
    ChannelFull {
        channel: String,
        limit: String,
        keep_alive: Duration,
    },
    /// A transaction tried to hold more than `transactionCapacity` events.
    #[error("transaction on channel `{channel}` is over its transactionCapacity of {capacity} events: commit smaller batches or raise transactionCapacity (batch sizes must not exceed it)")]
    TransactionFull { channel: String, capacity: usize },
    /// A put was refused because the disk holding `dir` has less than `minimumRequiredSpace`
    /// free. Takes and rollbacks still work, so the channel can drain.
    #[error("channel `{channel}` refuses puts: {dir} has {free} bytes free, below minimumRequiredSpace of {required} bytes. Free disk space or let the sinks drain the channel")]
    DiskFull {
        channel: String,
        dir: PathBuf,
        free: u64,
        required: u64,
    },
    /// A write or fdatasync failed earlier; nothing since is reported durable. The process
    /// must reopen the channel (restart flumen), which recovers from what is on disk.
    #[error("channel `{channel}` is poisoned: {operation} failed on {file}: {cause}. Nothing after that point was reported durable; restart flumen to reopen and recover the channel")]
    Poisoned {
        channel: String,
        file: PathBuf,
        operation: &'static str,
        cause: String,
    },
    /// An I/O error that did not poison the channel (opening, reading, checkpointing).
    #[error("channel `{channel}`: {operation} {file}: {cause}")]
    Io {
        channel: String,
        file: PathBuf,
        operation: &'static str,
        cause: String,
    },
    /// A corrupt record or checkpoint that recovery will not skip silently.
    #[error("channel `{channel}`: corrupt data in {file} at offset {offset}: {reason}. Run `flumen channel verify --dir <dir>...` to list every corrupt record; to skip and quarantine them (losing the events they hold) reopen with corruptionPolicy = skip, e.g. `flumen channel repair --checkpoint-dir <dir> --data-dir <dir>...`")]
    Corrupt {
        channel: String,
        file: PathBuf,
        offset: u64,
        reason: String,
    },
    /// The newest checkpoint lists a segment with queued events that no data dir holds.
    #[error("channel `{channel}`: segment {} is missing from every data dir ({}), but checkpoint {} says it holds up to {} queued events, so opening without it would lose them. Put the file back into a data dir (from a backup, or restore the data dir to the configuration if it was removed), or reopen with corruptionPolicy = skip to accept the loss (it is logged and counted)", .missing.segment, join_dirs(&.missing.data_dirs, ", "), .missing.checkpoint.display(), .missing.queued)]
    MissingSegment {
        channel: String,
        /// Boxed, so that this rare variant does not make every `ChannelError` larger.
        missing: Box<MissingSegment>,
    },
    /// A take met a record that does not verify. Open replays only the log after the last
    /// checkpoint, so damage in an older part is first met here. The events stay in the
    /// channel and every retry meets the same record: the channel is stuck until repaired.
    #[error("channel `{channel}`: cannot take events: corrupt data in {file} at offset {offset}: {reason}. Nothing corrupt was delivered, and sinks will keep failing on it: stop the agent, run `flumen channel verify --dir {} --dir {}` to list every corrupt record, then `flumen channel repair --checkpoint-dir {} --data-dir {}` to quarantine them (losing the events they hold); or set corruptionPolicy = skip to drop unreadable events as takes meet them", .dirs.checkpoint_dir.display(), join_dirs(&.dirs.data_dirs, " --dir "), .dirs.checkpoint_dir.display(), join_dirs(&.dirs.data_dirs, " "))]
    CorruptTake {
        channel: String,
        file: PathBuf,
        offset: u64,
        reason: String,
        /// Boxed, so that this rare variant does not make every `ChannelError` larger.
        dirs: Box<ChannelDirs>,
    },
    /// The channel's directories are locked by another live process.
    #[error("channel `{channel}`: {dir} is in use by another process (lock file {lock} is held). Stop the other flumen using it or give this channel its own directories")]
    Locked {
        channel: String,
        dir: PathBuf,
        lock: PathBuf,
    },
    /// An event or transaction too large for the on-disk format.
    #[error("channel `{channel}`: {what} is {size} bytes, over the limit of {limit} bytes")]
    TooLarge {
        channel: String,
        what: &'static str,
        size: u64,
        limit: u64,
    },
    /// Bad configuration value.
    #[error("channel `{channel}`: bad value for `{key}`: {message}")]
    Config {
        channel: String,
        key: &'static str,
        message: String,
    },
    /// The channel was closed.
    #[error("channel `{channel}` is closed")]
    Closed { channel: String },
    /// A Kafka channel's brokers refused or did not acknowledge a put, or failed a take's
    /// offset commit. `message` names the brokers and the topic and says what to do
    /// (`crate::kafka::describe`). Nothing of the failed commit is reported committed: a put's
    /// records may still have landed (the retry then writes them twice: at-least-once), a
    /// take's events stay in the channel.
    #[error("channel `{channel}`: {message}")]
    Kafka {
        channel: String,
        message: String,
        /// Whether retrying later can succeed without anyone acting (a broker down or
        /// slow), as opposed to a missing topic, missing ACLs or a record that never fits.
        retryable: bool,
    },
}

/// A file channel's directories, as an error names them in the commands it suggests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelDirs {
    pub checkpoint_dir: PathBuf,
    pub data_dirs: Vec<PathBuf>,
}

/// `dirs` as they go on a command line, separated by `sep`.
/// What [`ChannelError::MissingSegment`] names.
#[derive(Debug, Clone)]
pub struct MissingSegment {
    /// The checkpoint that lists the segment.
    pub checkpoint: PathBuf,
    /// The segment's file name.
    pub segment: String,
    pub data_dirs: Vec<PathBuf>,
    /// Events the checkpoint says the segment queued.
    pub queued: u64,
}

fn join_dirs(dirs: &[PathBuf], sep: &str) -> String {
    dirs.iter()
        .map(|d| d.display().to_string())
        .collect::<Vec<_>>()
        .join(sep)
}

impl ChannelError {
    /// Whether retrying the same operation later can succeed without anyone acting: only
    /// backpressure (`ChannelFull`, and `DiskFull`, which sinks relieve by draining the
    /// channel), and a Kafka channel's brokers being unreachable or slow (`Kafka` with
    /// `retryable`). Everything else needs an operator or a restart: a poisoned channel is
    /// reopened by restarting, a batch over `transactionCapacity` or the size limits never fits,
    /// corrupt data and a held lock stay until someone acts, a closed channel stays closed.
    /// Sources retry the retryable errors with backoff and give up on the rest; sinks retry
    /// both, the rest at their longest backoff.
    pub fn is_retryable(&self) -> bool {
        match self {
            ChannelError::ChannelFull { .. } | ChannelError::DiskFull { .. } => true,
            ChannelError::Kafka { retryable, .. } => *retryable,
            _ => false,
        }
    }
}

/// Checks the limits every channel shares (`capacity`, `transactionCapacity`); the error
/// names the key.
pub(crate) fn check_capacities(
    channel: &str,
    capacity: u64,
    transaction_capacity: usize,
) -> Result<(), ChannelError> {
    let bad = |key: &'static str, message: String| ChannelError::Config {
        channel: channel.to_string(),
        key,
        message,
    };
    if capacity == 0 {
        return Err(bad("capacity", "must be at least 1".into()));
    }
    if transaction_capacity == 0 {
        return Err(bad("transactionCapacity", "must be at least 1".into()));
    }
    if transaction_capacity as u64 > capacity {
        return Err(bad(
            "transactionCapacity",
            format!("{transaction_capacity} is larger than capacity {capacity}"),
        ));
    }
    Ok(())
}

/// A channel's parsed configuration (its own keys, checked): what the agent needs to check
/// sources and sinks against it and to open it.
pub trait ChannelSpec: fmt::Debug + AsAny + Send + Sync {
    /// `transactionCapacity`: the largest batch a source or sink may use with this channel.
    fn transaction_capacity(&self) -> usize;

    /// Directories the channel needs for itself, with the key each comes from: no two
    /// channels of an agent may share one.
    fn directories(&self) -> Vec<(&'static str, PathBuf)> {
        Vec::new()
    }

    /// Whether the monitoring shows the file channel's extra counters for it.
    fn has_file_counters(&self) -> bool {
        false
    }

    /// Opens the channel called `name` (a file channel recovers its queue here).
    fn open(&self, name: &str) -> Result<Arc<dyn Channel>, ChannelError>;
}

/// A channel type as the agent's registry lists it.
pub type ChannelType = Registered<dyn ChannelSpec>;

/// Turns a channel's own bounds check into an error naming our line and key. `effective`
/// gives the value in force for keys that may have been defaulted.
pub(crate) fn channel_check(
    keys: &mut Keys<'_>,
    result: Result<(), ChannelError>,
    effective: &[(&str, String)],
) -> Result<(), ConfigError> {
    match result {
        Ok(()) => Ok(()),
        Err(ChannelError::Config { key, message, .. }) => {
            let line = keys.line_of(key);
            let value = match keys.peek(key) {
                Some(v) => v.to_string(),
                None => match effective.iter().find(|(k, _)| *k == key) {
                    Some((_, v)) => format!("{v} (the default)"),
                    None => "(the default)".to_string(),
                },
            };
            let expected = if key == "transactionCapacity" || key == "capacity" {
                format!(
                    "{message}. transactionCapacity must be at least 1 and at most capacity (Flume's rule): lower one or raise the other"
                )
            } else {
                message
            };
            Err(ConfigError::BadValue {
                file: keys.file().to_string(),
                line,
                key: keys.full(key),
                value,
                expected,
            })
        }
        Err(other) => Err(ConfigError::BadValue {
            file: keys.file().to_string(),
            line: keys.home_line(),
            key: keys.full("type"),
            value: String::new(),
            expected: other.to_string(),
        }),
    }
}

/// A put transaction. Dropping it without `commit` rolls it back.
pub trait PutTransaction: Send {
    /// Adds one event. Fails with `TransactionFull` past `transactionCapacity`.
    fn put(&mut self, event: Event) -> Result<(), ChannelError>;
    /// Events put so far.
    fn len(&self) -> usize;
    /// True when nothing was put.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Waits (up to the channel's keep-alive) for room for the events put so far and holds
    /// it for this transaction, so that a later `commit` cannot fail for want of room
    /// (`ChannelFull`); only an I/O failure or a closed channel can then fail it. A put to
    /// several channels reserves on every one before committing any (see `crate::route`).
    /// No more events may be put afterwards. Rolling back or dropping gives the room back.
    /// The default (for channels with no limit to reserve against) does nothing.
    fn reserve(&mut self) -> Result<(), ChannelError> {
        Ok(())
    }
    /// Makes the events visible to takers. For the file channel with `fsync = every-commit`
    /// this returns only once they are durable. On `Err` nothing was made visible and the
    /// transaction is rolled back; the caller may retry with a new transaction.
    fn commit(self: Box<Self>) -> Result<(), ChannelError>;
    /// Discards the events put.
    fn rollback(self: Box<Self>);
}

/// A take transaction. Dropping it without `commit` rolls it back.
pub trait TakeTransaction: Send {
    /// Appends up to `max` events from the head of the channel to `out`, in order, and returns
    /// how many; 0 when none are available now. Never blocks for events to arrive (use
    /// [`Channel::wait_available`]). Fails with `TransactionFull` past `transactionCapacity`.
    fn take_batch(&mut self, max: usize, out: &mut Vec<Event>) -> Result<usize, ChannelError>;
    /// Takes one event, Flume style.
    fn take(&mut self) -> Result<Option<Event>, ChannelError> {
        let mut v = Vec::with_capacity(1);
        self.take_batch(1, &mut v)?;
        Ok(v.pop())
    }
    /// Events taken so far.
    fn len(&self) -> usize;
    /// True when nothing was taken.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Removes the taken events from the channel for good. On `Err` they stay in the channel
    /// (returned to the head) and will be delivered again.
    fn commit(self: Box<Self>) -> Result<(), ChannelError>;
    /// Returns the taken events to the head of the channel, in their original order.
    fn rollback(self: Box<Self>);
}

/// Counters with Flume's names (see docs/CONFIG.md for the mapping), plus the write-path
/// figures the benchmark reports.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ChannelStats {
    /// Events committed by puts and not yet removed by a committed take (ChannelSize).
    pub size: u64,
    /// `capacity` (ChannelCapacity).
    pub capacity: u64,
    /// Body bytes held (what `byteCapacity` limits).
    pub bytes: u64,
    pub put_attempts: u64,
    pub put_successes: u64,
    pub take_attempts: u64,
    pub take_successes: u64,
    pub put_errors: u64,
    pub take_errors: u64,
    /// Commits that wrote a record (file channel) or changed the queue (memory channel).
    pub commits: u64,
    /// fdatasync calls on segment files (0 for the memory channel).
    pub fsyncs: u64,
    /// Checkpoints written.
    pub checkpoints: u64,
    /// True once a write or sync failed (the file channel's Unhealthy).
    pub poisoned: bool,
}

/// A channel. Implementations are cheap handles (`Arc` inside): transactions own a clone, so
/// they are `'static` and can move across threads and tasks.
pub trait Channel: Send + Sync + 'static {
    /// The component name (`c1`).
    fn name(&self) -> &str;
    /// `transactionCapacity`: the most events one transaction may hold (a source that groups
    /// its input into transactions splits there).
    fn transaction_capacity(&self) -> usize;
    /// Starts a put transaction.
    fn put_transaction(&self) -> Box<dyn PutTransaction>;
    /// Starts a take transaction.
    fn take_transaction(&self) -> Box<dyn TakeTransaction>;
    /// Waits until at least one event is available to take, or `timeout` passes, or the
    /// channel closes. Returns true when events are available. Lets a sink sleep instead of
    /// polling an empty channel.
    fn wait_available(&self, timeout: Duration) -> bool;
    /// Current counters.
    fn stats(&self) -> ChannelStats;
    /// Stops background work and, for the file channel, writes a final checkpoint so the next
    /// open replays nothing. Open transactions fail afterwards. Idempotent.
    fn close(&self) -> Result<(), ChannelError>;
}
