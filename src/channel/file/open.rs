//! Opening and closing the channel. Open creates the directories, takes the directory lock,
//! runs recovery, starts writing in a new segment, writes a checkpoint if recovery did work,
//! and starts the background threads; close makes everything written durable, writes the
//! final checkpoint, trims the last segment and lets the lock go.
//!
//! Invariants:
//! - The directory lock is held from before recovery until close (or a simulated crash), so
//!   no other process reads or writes the log meanwhile.
//! - Writing always continues in a new segment: sealed segments never change.
//! - The take journal starts over only once the recovered state (its entries included) is in
//!   a checkpoint.

use std::collections::{BTreeMap, VecDeque};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use parking_lot::Condvar;

use super::background::{start_background, Background};
use super::checkpoint::CheckpointState;
use super::group_commit::GroupCommit;
use super::lock_order::{Rank, RankedMutex, RankedRwLock};
use super::log::{FreeSpace, LogWriter, SegmentHandle, Stage};
use super::read::RecentRecords;
use super::roll::{initial_alloc, prepare_segment, publish_segment};
use super::spare::Spares;
use super::{
    journal, recovery, ChannelError, Counters, FileChannel, FileChannelConfig, FsyncPolicy, Inner,
    RecoveryReport,
};
use crate::format::{segment, Position, SEGMENT_HEADER_LEN};
use crate::io::{self, FileLock, Vfs};

impl FileChannel {
    /// Opens (recovering) or creates the channel described by `config`, on the I/O backend it
    /// names.
    pub fn open(name: &str, config: FileChannelConfig) -> Result<FileChannel, ChannelError> {
        let fs = io::backend(config.io);
        Self::open_with(name, config, fs).map(|(c, _)| c)
    }

    /// Opens on a given filesystem (tests use `io::mem::MemFs`), returning what recovery did.
    pub fn open_with(
        name: &str,
        config: FileChannelConfig,
        fs: Arc<dyn Vfs>,
    ) -> Result<(FileChannel, RecoveryReport), ChannelError> {
        Self::open_inner(name, config, fs, false)
    }

    /// `full_replay` ignores the checkpoints and replays every segment: `repair` uses it to
    /// meet corruption in parts of the log a checkpoint already covers.
    pub(crate) fn open_inner(
        name: &str,
        config: FileChannelConfig,
        fs: Arc<dyn Vfs>,
        full_replay: bool,
    ) -> Result<(FileChannel, RecoveryReport), ChannelError> {
        config.validate(name)?;
        let ioe = |file: &Path, operation: &'static str, e: std::io::Error| ChannelError::Io {
            channel: name.to_string(),
            file: file.to_path_buf(),
            operation,
            cause: e.to_string(),
        };
        fs.create_dir_all(&config.checkpoint_dir)
            .map_err(|e| ioe(&config.checkpoint_dir, "creating", e))?;
        for d in &config.data_dirs {
            fs.create_dir_all(d).map_err(|e| ioe(d, "creating", e))?;
        }
        let lock = Some(lock_dir(&fs, name, &config.checkpoint_dir)?);
        let started = Instant::now();
        let rec = recovery::recover(
            &fs,
            name,
            Some(&config.checkpoint_dir),
            &config.data_dirs,
            config.corruption_policy,
            false,
            full_replay,
        )?;

        // Sealed segments for reading.
        let mut segments = BTreeMap::new();
        for (&id, path) in &rec.segments {
            // A segment removed by recovery (cut-short creation) is skipped.
            let Ok(file) = fs.open(path, false) else {
                continue;
            };
            segments.insert(
                id,
                Arc::new(SegmentHandle::new(id, path.clone(), file, true)),
            );
        }
        let spares = Arc::new(Spares::open(
            &fs,
            name,
            &config.data_dirs,
            config.spare_segments,
        ));
        // Writing always continues in a new segment: sealed segments never change.
        let prepared = prepare_segment(&fs, name, &config, &spares, rec.next_segment_id)?;
        let active = publish_segment(&fs, &prepared).map_err(|e| ChannelError::Io {
            channel: name.to_string(),
            file: prepared.path.clone(),
            operation: "naming the new segment",
            cause: e.to_string(),
        })?;
        segments.insert(active.id, active.clone());
        let applied = Position {
            segment: active.id,
            offset: SEGMENT_HEADER_LEN as u64,
        };
        let mut queue = rec.queue;
        queue.applied = applied;
        let free = fs.free_space(&config.data_dirs[0]).unwrap_or(u64::MAX);
        let report = rec.report;
        let inner = Arc::new(Inner {
            name: name.to_string(),
            log: RankedMutex::new(
                Rank::Log,
                LogWriter {
                    active: active.clone(),
                    write_off: SEGMENT_HEADER_LEN as u64,
                    alloc_end: initial_alloc(&config),
                    next_seq: rec.next_seq,
                    pending: VecDeque::new(),
                    free: FreeSpace {
                        checked_at: Instant::now(),
                        free,
                        written_since: 0,
                    },
                    stage: (config.fsync == FsyncPolicy::EveryCommit && config.direct_io)
                        .then(|| Stage::new(&segment::encode_header(active.id))),
                    spare: Vec::new(),
                    journal: None,
                },
            ),
            block_write: RankedMutex::new(Rank::BlockWrite, ()),
            group: GroupCommit::new(applied),
            queue: RankedMutex::new(Rank::Queue, queue),
            available_cv: Condvar::new(),
            room_cv: Condvar::new(),
            segments: RankedRwLock::new(Rank::Segments, segments),
            recent: RankedMutex::new(Rank::Recent, RecentRecords::default()),
            bufs: Arc::default(),
            poison: OnceLock::new(),
            closed: AtomicBool::new(false),
            abandoned: AtomicBool::new(false),
            counters: Counters::default(),
            ckpt: RankedMutex::new(
                Rank::Checkpoint,
                CheckpointState {
                    next_generation: rec.next_generation,
                    retained: rec.checkpoints,
                },
            ),
            bg: Arc::new(Background::new()),
            bg_threads: RankedMutex::new(Rank::BackgroundThreads, vec![]),
            spares,
            lock: RankedMutex::new(Rank::DirLock, lock),
            cfg: config,
            fs,
        });
        let size = inner.queue.lock().size;
        tracing::info!(
            channel = name,
            events = size,
            records_replayed = report.records_replayed,
            checkpoint = ?report.checkpoint,
            full_replay = report.full_replay,
            elapsed_ms = started.elapsed().as_millis() as u64,
            io = inner.fs.kind(),
            "file channel open"
        );
        if rec.dirty {
            // Recovery did work (replay, truncation, skipped corruption): record the result so
            // the next open does not repeat it.
            inner.checkpoint()?;
        }
        // Only now, with the recovered state (journal entries included) in a checkpoint, may
        // the journal start over.
        {
            let mut log = inner.log.lock();
            if log.stage.is_some() {
                log.journal = Some(
                    journal::TakeJournal::create(&inner.fs, &inner.cfg.checkpoint_dir).map_err(
                        |e| ioe(&journal::paths(&inner.cfg.checkpoint_dir)[0], "creating", e),
                    )?,
                );
            }
        }
        start_background(&inner);
        Ok((FileChannel { inner }, report))
    }
}

/// Takes the channel's lock file so two channels (in this process or another) never share its
/// directories.
pub(super) fn lock_dir(
    fs: &Arc<dyn Vfs>,
    name: &str,
    dir: &Path,
) -> Result<Box<dyn FileLock>, ChannelError> {
    let path = dir.join("in_use.lock");
    fs.lock(&path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::WouldBlock {
            ChannelError::Locked {
                channel: name.to_string(),
                dir: dir.to_path_buf(),
                lock: path,
            }
        } else {
            ChannelError::Io {
                channel: name.to_string(),
                file: path,
                operation: "locking",
                cause: e.to_string(),
            }
        }
    })
}

impl Inner {
    pub(super) fn close(&self) -> Result<(), ChannelError> {
        if self.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        self.stop_background();
        self.available_cv.notify_all();
        self.room_cv.notify_all();
        if self.poison.get().is_some() || self.abandoned.load(Ordering::Acquire) {
            self.lock.lock().take();
            return Ok(());
        }
        // Make every written record durable and applied, so the final checkpoint covers
        // them all and the next open replays nothing.
        if self.cfg.fsync == FsyncPolicy::EveryCommit {
            if let Err(e) = self.flush() {
                self.lock.lock().take();
                return Err(e);
            }
        }
        let r = self.checkpoint();
        if r.is_ok() {
            // A reused segment holds old bytes after its last record: trimmed, the next open
            // finds a clean end instead of a torn tail. Losing this trim loses nothing.
            let log = self.log.lock();
            if let Err(e) = log.active.file.set_len(log.write_off) {
                tracing::warn!(channel = %self.name, file = %log.active.path.display(), error = %e, "could not trim the last segment at close; the next open truncates it instead");
            }
        }
        self.lock.lock().take();
        tracing::info!(channel = %self.name, "file channel closed");
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::Channel;
    use crate::io::mem::MemFs;

    fn config() -> FileChannelConfig {
        let mut cfg = FileChannelConfig::new(Path::new("/ch"));
        cfg.minimum_required_space = 0;
        cfg
    }

    /// The directory lock goes through `Vfs`, so MemFs channels are locked too: a second open
    /// of the same directories fails as it would across processes, until the first channel is
    /// closed or (as after kill -9) abandoned.
    #[test]
    fn a_second_open_of_the_same_dirs_fails_as_in_use() {
        let fs: Arc<dyn Vfs> = Arc::new(MemFs::new());
        let (first, _) = FileChannel::open_with("c1", config(), fs.clone()).expect("open");
        let err = FileChannel::open_with("c2", config(), fs.clone()).expect_err("second open");
        let msg = err.to_string();
        match err {
            ChannelError::Locked { dir, lock, .. } => {
                assert_eq!(dir, Path::new("/ch/checkpoint"));
                assert_eq!(lock, Path::new("/ch/checkpoint/in_use.lock"));
            }
            other => panic!("expected Locked, got {other:?}"),
        }
        assert!(msg.contains("in use"), "{msg}");
        first.close().expect("close");
        let (second, _) =
            FileChannel::open_with("c2", config(), fs.clone()).expect("open after close");
        second.simulate_crash();
        let (third, _) = FileChannel::open_with("c3", config(), fs).expect("open after a crash");
        third.close().expect("close");
    }
}
