//! Settings of a file channel, with Flume's key names and defaults, validated in one place.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::channel::ChannelError;
use crate::io::IoKind;

/// When commits reach the disk (`fsync = every-commit | interval:<ms> | never`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum FsyncPolicy {
    /// `commit()` returns only after an fdatasync covering the commit's record (the default;
    /// concurrent committers share one fdatasync: group commit).
    #[default]
    EveryCommit,
    /// A background thread fdatasyncs this often; a crash of the machine (not of the process)
    /// can lose up to this much of acknowledged commits.
    Interval(Duration),
    /// Never fdatasync except at segment roll and checkpoint; a machine crash can lose
    /// everything since the last checkpoint. A process crash loses nothing.
    Never,
}

impl std::str::FromStr for FsyncPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s == "every-commit" || s == "true" {
            return Ok(FsyncPolicy::EveryCommit);
        }
        if s == "never" || s == "false" {
            return Ok(FsyncPolicy::Never);
        }
        if let Some(ms) = s.strip_prefix("interval:") {
            let ms: u64 = ms.trim().parse().map_err(|_| {
                format!("`{s}`: the interval must be whole milliseconds, e.g. interval:100")
            })?;
            if ms == 0 {
                return Err("interval:0 is not an interval: use every-commit".into());
            }
            return Ok(FsyncPolicy::Interval(Duration::from_millis(ms)));
        }
        Err(format!("`{s}`: use every-commit, interval:<ms> or never"))
    }
}

/// What recovery does with a corrupt record in the middle of the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum CorruptionPolicy {
    /// Refuse to open, naming file and offset (the default).
    #[default]
    Fail,
    /// Copy the corrupt bytes to `<dataDir>/quarantine/`, skip them, and log exactly how many
    /// events were lost.
    Skip,
}

impl std::str::FromStr for CorruptionPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "fail" => Ok(CorruptionPolicy::Fail),
            "skip" => Ok(CorruptionPolicy::Skip),
            other => Err(format!("`{other}`: use fail or skip")),
        }
    }
}

/// Largest `maxFileSize` we accept: record offsets inside a segment are 32-bit.
pub const MAX_SEGMENT_SIZE: u64 = 2 * 1024 * 1024 * 1024;

/// Most spare segments a channel keeps (`spareSegments`).
pub const MAX_SPARE_SEGMENTS: usize = 64;

/// A file channel's settings. Field docs give the Flume key, the default and bounds.
#[derive(Clone, Debug)]
pub struct FileChannelConfig {
    /// `checkpointDir`: where checkpoints and the lock file live.
    pub checkpoint_dir: PathBuf,
    /// `dataDirs`: comma-separated; segments rotate across them.
    pub data_dirs: Vec<PathBuf>,
    /// `capacity`: most events held (default 1,000,000).
    pub capacity: u64,
    /// `byteCapacity`: most body bytes held (default: unlimited, as Flume's file channel).
    pub byte_capacity: Option<u64>,
    /// `transactionCapacity`: most events in one transaction (default 10,000).
    pub transaction_capacity: usize,
    /// `keep-alive`: how long a commit waits for room before ChannelFull (default 3 s).
    pub keep_alive: Duration,
    /// `maxFileSize`: segment size at which the log rolls to a new segment (default 128 MiB,
    /// at most 2 GiB). Smaller than Flume's 1.6 GB so that space is freed sooner.
    pub max_file_size: u64,
    /// `minimumRequiredSpace`: puts are refused below this much free space (default 500 MiB).
    pub minimum_required_space: u64,
    /// `checkpointInterval`: how often to checkpoint (default 30 s).
    pub checkpoint_interval: Duration,
    /// `fsync`: when commits reach the disk (default every-commit).
    pub fsync: FsyncPolicy,
    /// `io`: std or uring (default std).
    pub io: IoKind,
    /// `directIo`: under `fsync = every-commit`, each group commit's records go to the disk
    /// in one write of whole 4 KiB blocks, bypassing the page cache where the filesystem
    /// allows `O_DIRECT` (default true; false writes each record through the page cache as it
    /// commits).
    pub direct_io: bool,
    /// `spareSegments`: how many finished segments are kept, overwritten with zeros, for the
    /// log to reuse instead of deleting them (default 2, at most 64; 0 deletes every finished
    /// segment as Flume does). Writes into blocks written before need no filesystem metadata
    /// commit at each fdatasync.
    pub spare_segments: usize,
    /// `corruptionPolicy`: fail or skip (default fail).
    pub corruption_policy: CorruptionPolicy,
}

impl FileChannelConfig {
    /// Defaults with checkpoints in `dir/checkpoint` and segments in `dir/data`.
    pub fn new(dir: &Path) -> Self {
        FileChannelConfig {
            checkpoint_dir: dir.join("checkpoint"),
            data_dirs: vec![dir.join("data")],
            capacity: 1_000_000,
            byte_capacity: None,
            transaction_capacity: 10_000,
            keep_alive: Duration::from_secs(3),
            max_file_size: 128 * 1024 * 1024,
            minimum_required_space: 500 * 1024 * 1024,
            checkpoint_interval: Duration::from_secs(30),
            fsync: FsyncPolicy::EveryCommit,
            io: IoKind::Std,
            direct_io: true,
            spare_segments: 2,
            corruption_policy: CorruptionPolicy::Fail,
        }
    }

    /// Checks bounds; the error names the key.
    pub fn validate(&self, channel: &str) -> Result<(), ChannelError> {
        let bad = |key: &'static str, message: String| ChannelError::Config {
            channel: channel.to_string(),
            key,
            message,
        };
        if self.data_dirs.is_empty() {
            return Err(bad("dataDirs", "at least one directory is needed".into()));
        }
        crate::channel::check_capacities(channel, self.capacity, self.transaction_capacity)?;
        if self.max_file_size < 64 * 1024 || self.max_file_size > MAX_SEGMENT_SIZE {
            return Err(bad(
                "maxFileSize",
                format!(
                    "{} is outside 65536..={MAX_SEGMENT_SIZE}",
                    self.max_file_size
                ),
            ));
        }
        if self.spare_segments > MAX_SPARE_SEGMENTS {
            return Err(bad(
                "spareSegments",
                format!("{} is more than {MAX_SPARE_SEGMENTS}", self.spare_segments),
            ));
        }
        if self.checkpoint_interval.is_zero() {
            return Err(bad("checkpointInterval", "must be positive".into()));
        }
        Ok(())
    }
}
