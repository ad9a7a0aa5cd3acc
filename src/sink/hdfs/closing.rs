//! Closing the hdfs sink's files: finishing and renaming a full file, abandoning the files a
//! failed batch touched (cut back to their last committed byte, or deleted), and the list of
//! files whose close, cut or rename failed, retried every `hdfs.retryInterval` with lease
//! recovery, so no writer is ever dropped with its lease held and forgotten.

use std::time::{Duration, Instant};

use super::fs::FsError;
use super::HdfsSink;
use crate::metrics::Counter;
use crate::sink::SinkError;

/// How soon to look again at a lease recovery HDFS has started but not finished.
const LEASE_POLL: Duration = Duration::from_secs(1);

/// A file whose close failed (or whose failed batch's bytes could not be cut off yet): its
/// lease is recovered, it is cut to `trim_to`, and it is renamed later.
pub(super) struct Unclosed {
    in_use: String,
    target: String,
    /// The length holding only committed events, when bytes of a failed batch may follow
    /// it; 0 means no committed event at all, and the file is deleted instead of renamed.
    trim_to: Option<u64>,
    tries: u32,
    next_try: Instant,
}

impl HdfsSink {
    /// Finishes, closes and renames `bucket`'s file.
    pub(super) fn close_file(&mut self, key: &str) -> Result<(), SinkError> {
        let Some(mut f) = self.buckets.get_mut(key).and_then(|b| b.file.take()) else {
            return Ok(());
        };
        // Taken before the format's closing bytes: those belong to no batch.
        let trim_to = f.uncommitted_tail();
        let mut result = f
            .encoder
            .finish(&mut f.buf)
            .map_err(|e| self.format_err("finishing", &f.in_use, e));
        if result.is_ok() {
            result = f.write_buf().map_err(|e| self.fs_err(e));
        }
        if result.is_ok() {
            result = f.file.close().map_err(|e| self.fs_err(e));
        }
        match result {
            Ok(()) => {
                self.count(Counter::ConnectionClosedCount);
                match self.finish_closed(&f.in_use, &f.target, None, "") {
                    Ok(_) => Ok(()),
                    Err(e) => {
                        self.remember_unclosed(f.in_use, f.target, None);
                        Err(self.fs_err(e))
                    }
                }
            }
            Err(e) => {
                self.count(Counter::ConnectionFailedCount);
                self.remember_unclosed(f.in_use, f.target, trim_to);
                Err(e)
            }
        }
    }

    /// Gives a closed file its final name, first cutting off the bytes of a failed batch
    /// (`trim_to`, see [`Unclosed`]), or deletes it if it holds no committed event, and logs
    /// what it did (`how` leads the message: "recovered and " after a lease recovery).
    /// `Ok(false)` while HDFS is still cutting the file: finish it once it is closed again.
    pub(super) fn finish_closed(
        &mut self,
        in_use: &str,
        target: &str,
        trim_to: Option<u64>,
        how: &str,
    ) -> Result<bool, FsError> {
        match trim_to {
            Some(0) => {
                self.fs.delete(in_use)?;
                tracing::info!(sink = %self.name, "sink `{}`: {how}deleted {in_use} (it held only a failed batch's events, which are retried)", self.name);
                return Ok(true);
            }
            Some(len) => {
                if !self.fs.truncate(in_use, len)? {
                    return Ok(false);
                }
                tracing::info!(sink = %self.name, "sink `{}`: cut {in_use} to {len} bytes, its committed events (the failed batch is retried)", self.name);
            }
            None => {}
        }
        if in_use != target {
            self.fs.rename(in_use, target)?;
        }
        tracing::info!(sink = %self.name, "sink `{}`: {how}closed {target}", self.name);
        Ok(true)
    }

    /// Looks at a file whose lease recovery or trim HDFS is still running again soon, without
    /// counting a failed try.
    pub(super) fn poll_closing(&mut self, in_use: String, target: String) {
        tracing::info!(
            sink = %self.name,
            "sink `{}`: could not close {in_use} yet: HDFS is cutting it back to its committed \
             events; it is renamed to {target} once that is done",
            self.name
        );
        self.unclosed.push(Unclosed {
            in_use,
            target,
            trim_to: None,
            tries: 1,
            next_try: Instant::now() + LEASE_POLL,
        });
    }

    pub(super) fn remember_unclosed(
        &mut self,
        in_use: String,
        target: String,
        trim_to: Option<u64>,
    ) {
        if self.cfg.close_tries == 1 {
            tracing::error!(
                sink = %self.name,
                "sink `{}`: could not close {in_use}; hdfs.closeTries = 1, so it keeps its \
                 in-use name (HDFS recovers its lease within the hour)",
                self.name
            );
            return;
        }
        tracing::warn!(
            sink = %self.name,
            "sink `{}`: could not close {in_use}; will recover its lease and rename it to \
             {target} every {}s (hdfs.retryInterval)",
            self.name,
            self.cfg.retry_interval_secs
        );
        self.unclosed.push(Unclosed {
            in_use,
            target,
            trim_to,
            tries: 1,
            next_try: Instant::now() + Duration::from_secs(self.cfg.retry_interval_secs),
        });
    }

    /// Closes files whose close failed earlier: recover the lease, then rename.
    pub(super) fn retry_unclosed(&mut self, force: bool) {
        let now = Instant::now();
        let mut pending = std::mem::take(&mut self.unclosed);
        pending.retain_mut(|u| {
            if !force && u.next_try > now {
                return true;
            }
            let done = match self.fs.recover_lease(&u.in_use) {
                Ok(true) => {
                    match self.finish_closed(&u.in_use, &u.target, u.trim_to, "recovered and ") {
                        Ok(true) => true,
                        Ok(false) => {
                            // HDFS cuts the last block in the background; the file is closed again
                            // (recover_lease says so) once it is done.
                            u.trim_to = None;
                            u.next_try = now + LEASE_POLL;
                            return true;
                        }
                        Err(e) => {
                            tracing::warn!(sink = %self.name, "sink `{}`: {e}", self.name);
                            false
                        }
                    }
                }
                Ok(false) => {
                    // Recovery started but is not finished: look again soon, and do not
                    // count it as a failed try.
                    u.next_try = now + LEASE_POLL;
                    return true;
                }
                Err(e) => {
                    tracing::warn!(sink = %self.name, "sink `{}`: {e}", self.name);
                    false
                }
            };
            if done {
                return false;
            }
            u.tries += 1;
            u.next_try = now + Duration::from_secs(self.cfg.retry_interval_secs);
            if self.cfg.close_tries > 0 && u.tries >= self.cfg.close_tries {
                tracing::error!(
                    sink = %self.name,
                    "sink `{}`: giving up on closing {} after {} tries (hdfs.closeTries); its \
                     data was synced but it keeps its in-use name",
                    self.name,
                    u.in_use,
                    self.cfg.close_tries
                );
                return false;
            }
            true
        });
        pending.append(&mut self.unclosed);
        self.unclosed = pending;
    }

    /// Abandons every file the current batch touched (see the module docs).
    pub(super) fn abandon_touched(&mut self) {
        let keys: Vec<String> = self
            .buckets
            .iter()
            .filter(|(_, b)| b.touched_in == self.batch_no && b.file.is_some())
            .map(|(k, _)| k.clone())
            .collect();
        for key in keys {
            let Some(mut f) = self.buckets.get_mut(&key).and_then(|b| b.file.take()) else {
                continue;
            };
            // The unwritten tail belongs to the failed batch, which will be retried; so do
            // any of its bytes already written, which are cut off before the rename.
            f.buf.clear();
            let trim_to = f.uncommitted_tail();
            match f.file.close() {
                Ok(()) => {
                    self.count(Counter::ConnectionClosedCount);
                    match self.finish_closed(&f.in_use, &f.target, trim_to, "") {
                        Ok(true) => {}
                        Ok(false) => self.poll_closing(f.in_use, f.target),
                        Err(e) => {
                            tracing::warn!(sink = %self.name, "sink `{}`: {e}", self.name);
                            self.remember_unclosed(f.in_use, f.target, trim_to);
                        }
                    }
                }
                Err(e) => {
                    self.count(Counter::ConnectionFailedCount);
                    tracing::warn!(sink = %self.name, "sink `{}`: {e}", self.name);
                    self.remember_unclosed(f.in_use, f.target, trim_to);
                }
            }
        }
    }
}
