//! Wake-ups for the TAILDIR loop: an inotify watch (through the `notify` crate) on each file
//! group's directory, so a write, a new file, a rename or a delete ends the loop's wait at
//! once; where a watch cannot be set (a directory that does not exist yet, a filesystem
//! without inotify, too many watches), the wait's timeout is the fallback and the loop polls.
//!
//! Events carry no data the loop uses: they are coalesced into one pending wake-up (a
//! channel of capacity one, written with `try_send`), so a busy log costs one wake-up per
//! loop turn, not one per write.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender};
use std::time::Duration;

use notify::{RecursiveMode, Watcher};

/// See the module docs.
pub struct Wakeups {
    watcher: Option<notify::RecommendedWatcher>,
    rx: Receiver<()>,
    watched: BTreeSet<PathBuf>,
    source: String,
}

impl Wakeups {
    /// Wake-ups for source `source`; without inotify it only times out.
    pub fn new(source: &str) -> Wakeups {
        let (tx, rx) = sync_channel::<()>(1);
        let watcher = make_watcher(tx)
            .map_err(|e| {
                tracing::warn!(
                    source,
                    "source `{source}` (TAILDIR): no inotify ({e}); polling the directories instead"
                );
            })
            .ok();
        Wakeups {
            watcher,
            rx,
            watched: BTreeSet::new(),
            source: source.to_string(),
        }
    }

    /// Watches `dir` if it is not watched yet; false when it cannot be (the caller polls).
    pub fn watch(&mut self, dir: &Path) -> bool {
        if self.watched.contains(dir) {
            return true;
        }
        let Some(w) = self.watcher.as_mut() else {
            return false;
        };
        match w.watch(dir, RecursiveMode::NonRecursive) {
            Ok(()) => {
                self.watched.insert(dir.to_path_buf());
                true
            }
            Err(e) => {
                let source = &self.source;
                tracing::debug!(source = %source, "source `{source}` (TAILDIR): cannot watch {}: {e}", dir.display());
                false
            }
        }
    }

    /// Forgets a directory that went away (its watch is gone with it).
    pub fn forget(&mut self, dir: &Path) {
        if self.watched.remove(dir) {
            if let Some(w) = self.watcher.as_mut() {
                let _ = w.unwatch(dir);
            }
        }
    }

    /// Waits until something changed in a watched directory or `timeout` passed; true when
    /// woken by a change.
    pub fn wait(&self, timeout: Duration) -> bool {
        match self.rx.recv_timeout(timeout) {
            Ok(()) => true,
            Err(RecvTimeoutError::Timeout) => false,
            // The watcher's thread is gone: behave as a poll.
            Err(RecvTimeoutError::Disconnected) => {
                std::thread::sleep(timeout);
                false
            }
        }
    }

    /// Takes a pending wake-up without waiting.
    pub fn take(&self) -> bool {
        self.rx.try_recv().is_ok()
    }
}

fn make_watcher(tx: SyncSender<()>) -> notify::Result<notify::RecommendedWatcher> {
    notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        // Opening a file is not a change (and the loop's own opens would wake it); errors
        // are: an overflowed inotify queue means "something changed", so look.
        if let Ok(ev) = &res {
            if matches!(ev.kind, notify::EventKind::Access(_)) {
                return;
            }
        }
        let _ = tx.try_send(());
    })
}
