//! Settings of a file channel: Flume's keys and defaults (docs/CONFIG.md, `file` channel)
//! plus ours, parsed from the channel's keys and validated in one place. Every default is
//! [`FileChannelConfig::new`]'s.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use super::FileChannel;
use crate::channel::{channel_check, Channel, ChannelError, ChannelSpec, ChannelType};
use crate::config::values::{parse_bool, parse_u64};
use crate::config::{ConfigError, Keys, Registered, WarningKind, DEFAULT_DATA_ROOT};
use crate::io::IoKind;

/// `file` / Flume's FileChannel.
pub const TYPE: ChannelType = Registered {
    alias: "file",
    class: Some("org.apache.flume.channel.file.FileChannel"),
    parse,
    minimal: &[],
};

/// Flume's floor for `minimumRequiredSpace` (1 MiB); Flume raises smaller values silently.
const FLOOR_MINIMUM_REQUIRED_SPACE: u64 = 1024 * 1024;

/// Flume's `fsyncInterval` default, used with `fsyncPerTransaction = false`.
const FLUME_FSYNC_INTERVAL_SECS: u64 = 5;

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
    /// `spareSegments`: how many finished segments are kept (with their old bytes) for the
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

impl ChannelSpec for FileChannelConfig {
    fn transaction_capacity(&self) -> usize {
        self.transaction_capacity
    }

    fn directories(&self) -> Vec<(&'static str, PathBuf)> {
        let mut dirs = vec![("checkpointDir", self.checkpoint_dir.clone())];
        dirs.extend(self.data_dirs.iter().map(|d| ("dataDirs", d.clone())));
        dirs
    }

    fn has_file_counters(&self) -> bool {
        true
    }

    fn open(&self, name: &str) -> Result<Arc<dyn Channel>, ChannelError> {
        Ok(Arc::new(FileChannel::open(name, self.clone())?))
    }
}

fn from_str_key<T: FromStr<Err = String>>(
    keys: &mut Keys<'_>,
    key: &'static str,
) -> Result<Option<T>, ConfigError> {
    Ok(keys.parsed(key, |s| s.parse::<T>())?.map(|(t, _)| t))
}

fn parse(keys: &mut Keys<'_>) -> Result<Box<dyn ChannelSpec>, ConfigError> {
    let name = keys.name().to_string();
    let mut cfg = FileChannelConfig::new(&Path::new(DEFAULT_DATA_ROOT).join(&name));
    let d = cfg.clone();
    keys.document_default(
        "checkpointDir",
        format!("{DEFAULT_DATA_ROOT}/<channel>/checkpoint"),
    );
    keys.document_default("dataDirs", format!("{DEFAULT_DATA_ROOT}/<channel>/data"));

    // Flume's encryption is an error, not something to ignore: data would be stored in clear.
    if let Some((key, v)) = keys.take_prefixed("encryption.").into_iter().next() {
        return Err(ConfigError::Unsupported {
            file: keys.file().to_string(),
            line: v.line,
            key: keys.full(&key),
            feature: "file channel encryption".into(),
            hint: "flumen would store events in clear. Remove the encryption.* keys and use an encrypted filesystem (e.g. dm-crypt) for the channel directories".into(),
        });
    }

    if let Some(v) = keys.get("checkpointDir") {
        cfg.checkpoint_dir = PathBuf::from(&v.value);
    }
    if let Some(v) = keys.get("dataDirs") {
        let dirs: Vec<PathBuf> = v
            .value
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(PathBuf::from)
            .collect();
        if dirs.is_empty() {
            return Err(keys.bad(
                "dataDirs",
                &v,
                "one or more directories separated by commas",
            ));
        }
        cfg.data_dirs = dirs;
    }
    cfg.capacity = keys.number("capacity", d.capacity, 1, "events")?;
    cfg.transaction_capacity =
        keys.size("transactionCapacity", d.transaction_capacity, 1, "events")?;
    cfg.keep_alive = keys.secs("keep-alive", d.keep_alive, 0, "seconds")?;
    keys.document_default("maxFileSize", d.max_file_size.to_string());
    if let Some((n, v)) = keys.parsed("maxFileSize", |s| parse_u64(s, 64 * 1024, "bytes"))? {
        if n > MAX_SEGMENT_SIZE {
            return Err(keys.bad(
                "maxFileSize",
                &v,
                format!(
                    "at most {MAX_SEGMENT_SIZE} bytes (2 GiB): record offsets in a segment are 32-bit. (Flume silently caps it at 1623195647, Integer.MAX_VALUE - 500 MiB)"
                ),
            ));
        }
        cfg.max_file_size = n;
    }
    keys.document_default("minimumRequiredSpace", d.minimum_required_space.to_string());
    if let Some((n, v)) = keys.parsed("minimumRequiredSpace", |s| parse_u64(s, 0, "bytes"))? {
        if n < FLOOR_MINIMUM_REQUIRED_SPACE {
            return Err(keys.bad(
                "minimumRequiredSpace",
                &v,
                format!(
                    "at least {FLOOR_MINIMUM_REQUIRED_SPACE} bytes (1 MiB, Flume's floor; Flume silently raises smaller values)"
                ),
            ));
        }
        cfg.minimum_required_space = n;
    }
    cfg.checkpoint_interval = keys.millis("checkpointInterval", d.checkpoint_interval, 1)?;
    keys.document_default("byteCapacity", "unlimited");
    cfg.byte_capacity = keys.opt_number("byteCapacity", 1, "bytes")?;
    keys.document_default("io", "std");
    if let Some(io) = from_str_key::<IoKind>(keys, "io")? {
        cfg.io = io;
    }
    cfg.direct_io = keys.boolean("directIo", d.direct_io)?;
    cfg.spare_segments = keys.size("spareSegments", d.spare_segments, 0, "segments")?;
    keys.document_default("corruptionPolicy", "fail");
    if let Some(p) = from_str_key::<CorruptionPolicy>(keys, "corruptionPolicy")? {
        cfg.corruption_policy = p;
    }

    // fsync (ours) or Flume's fsyncPerTransaction + fsyncInterval.
    keys.document_default("fsync", "every-commit");
    keys.document_default("fsyncPerTransaction", "true");
    keys.document_default("fsyncInterval", FLUME_FSYNC_INTERVAL_SECS.to_string());
    let ours = from_str_key::<FsyncPolicy>(keys, "fsync")?;
    let per_txn = keys.parsed("fsyncPerTransaction", parse_bool)?;
    let interval = keys.parsed("fsyncInterval", |s| parse_u64(s, 1, "seconds"))?;
    match ours {
        Some(policy) => {
            cfg.fsync = policy;
            for (key, v) in [
                ("fsyncPerTransaction", per_txn.map(|p| p.1)),
                ("fsyncInterval", interval.map(|p| p.1)),
            ] {
                if let Some(v) = v {
                    keys.warn(
                        v.line,
                        key,
                        WarningKind::IgnoredKey {
                            reason: format!(
                                "`fsync` (line {}) decides instead",
                                keys.line_of("fsync")
                            ),
                        },
                    );
                }
            }
        }
        None => match per_txn {
            Some((false, _)) => {
                let secs = interval.map_or(FLUME_FSYNC_INTERVAL_SECS, |(s, _)| s);
                cfg.fsync = FsyncPolicy::Interval(Duration::from_secs(secs));
            }
            Some((true, _)) | None => {
                cfg.fsync = FsyncPolicy::EveryCommit;
                if let Some((_, v)) = interval {
                    keys.warn(v.line, "fsyncInterval", WarningKind::IgnoredKey {
                        reason: "it applies only with fsyncPerTransaction = false (as in Flume); commits are synced every time".into(),
                    });
                }
            }
        },
    }

    keys.ignore(
        "useDualCheckpoints",
        "flumen always keeps the two newest checkpoints in checkpointDir and falls back to the older one (or to replay) by itself",
    );
    keys.ignore(
        "backupCheckpointDir",
        "no separate backup directory: the two newest checkpoints are kept in checkpointDir",
    );
    keys.ignore(
        "compressBackupCheckpoint",
        "there is no backup checkpoint to compress",
    );
    keys.ignore("checkpointOnClose", "flumen always checkpoints on close");
    keys.ignore(
        "use-fast-replay",
        "flumen has one replay, which reads record headers, not event bodies",
    );
    keys.ignore(
        "use-log-replay-v1",
        "flumen has one log format and one replay",
    );

    let validated = cfg.validate(&name);
    let effective = [
        ("capacity", cfg.capacity.to_string()),
        ("transactionCapacity", cfg.transaction_capacity.to_string()),
        ("maxFileSize", cfg.max_file_size.to_string()),
    ];
    channel_check(keys, validated, &effective)?;
    Ok(Box::new(cfg))
}
