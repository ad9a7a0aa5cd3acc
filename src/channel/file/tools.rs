//! STUB: being written. Offline tools behind `flumen channel verify | inspect | repair`.
use std::path::PathBuf;
use std::time::Duration;

use crate::channel::ChannelError;

/// One corrupt record or checkpoint found by `verify`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CorruptSpot {
    pub file: PathBuf,
    pub offset: u64,
    pub reason: String,
}

/// What `flumen channel verify` prints.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct VerifyReport {
    pub segments: u64,
    pub records: u64,
    /// Events in put records (committed puts), whether or not taken since.
    pub events: u64,
    /// Bytes of segment files walked.
    pub bytes: u64,
    pub checkpoints_valid: u64,
    pub corrupt: Vec<CorruptSpot>,
    /// A torn final record (normal after a crash; recovery truncates it).
    pub torn_tail: Option<CorruptSpot>,
}

/// What `flumen channel inspect` prints.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct InspectReport {
    /// Events committed and not yet taken-and-committed.
    pub queue_depth: u64,
    pub queue_bytes: u64,
    /// Segment files and their sizes on disk.
    pub segments: Vec<(PathBuf, u64)>,
    pub bytes_on_disk: u64,
    /// Age of the oldest queued event (from its commit time), if any.
    pub oldest_event_age: Option<Duration>,
}

/// Walks every segment and checkpoint found in `dirs` (and their immediate subdirectories).
pub fn verify(dirs: &[PathBuf]) -> Result<VerifyReport, ChannelError> {
    let _ = dirs;
    todo!()
}

/// Rebuilds the queue state read-only (no lock taken, nothing written).
pub fn inspect(dirs: &[PathBuf]) -> Result<InspectReport, ChannelError> {
    let _ = dirs;
    todo!()
}

/// What `flumen channel repair` did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RepairReport {
    /// Corrupt regions moved to quarantine files.
    pub quarantined: Vec<CorruptSpot>,
    /// Events lost with them (exact: from the gaps in the sequence numbers).
    pub events_lost: u64,
    /// Take records lost with them: their events may be delivered again.
    pub take_records_lost: u64,
    /// Events in the channel after the repair.
    pub queue_depth: u64,
}

/// Opens the channel with corruptionPolicy = skip, quarantining every corrupt record, then
/// writes a checkpoint past them so later opens do not meet them again.
pub fn repair(
    checkpoint_dir: &std::path::Path,
    data_dirs: &[PathBuf],
) -> Result<RepairReport, ChannelError> {
    let _ = (checkpoint_dir, data_dirs);
    todo!()
}
