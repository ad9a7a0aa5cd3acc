//! STUB: being written. The durable file channel.
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{Channel, ChannelError, ChannelStats, PutTransaction, TakeTransaction};

mod config;
pub mod tools;
pub use config::{CorruptionPolicy, FileChannelConfig, FsyncPolicy, MAX_SEGMENT_SIZE};

/// The durable file channel. A cheap handle: clones share one channel.
#[derive(Clone)]
pub struct FileChannel {}

impl FileChannel {
    /// Opens (recovering) or creates the channel described by `config`.
    pub fn open(name: &str, config: FileChannelConfig) -> Result<FileChannel, ChannelError> {
        let _ = (name, config);
        todo!()
    }
}

impl Channel for FileChannel {
    fn name(&self) -> &str { todo!() }
    fn put_transaction(&self) -> Box<dyn PutTransaction> { todo!() }
    fn take_transaction(&self) -> Box<dyn TakeTransaction> { todo!() }
    fn wait_available(&self, _timeout: Duration) -> bool { todo!() }
    fn stats(&self) -> ChannelStats { todo!() }
    fn close(&self) -> Result<(), ChannelError> { todo!() }
}
#[allow(dead_code)]
fn _unused(_: &Path, _: PathBuf) {}
