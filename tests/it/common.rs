//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::Path;

use flumen::channel::file::{FileChannelConfig, FsyncPolicy};
use flumen::io::IoKind;

/// Both I/O backends: every storage test runs on each (uring falls back to std where the
/// kernel refuses io_uring, which the io module's own tests cover).
pub const BACKENDS: [IoKind; 2] = [IoKind::Std, IoKind::Uring];

/// A small-segment config for tests: segments roll often, so rolling, sealing, mmap reads and
/// deletion are all exercised.
pub fn test_config(dir: &Path, io: IoKind) -> FileChannelConfig {
    let mut cfg = FileChannelConfig::new(dir);
    cfg.io = io;
    cfg.max_file_size = 256 * 1024;
    cfg.minimum_required_space = 0;
    cfg.capacity = 10_000_000;
    cfg.fsync = FsyncPolicy::EveryCommit;
    cfg
}
