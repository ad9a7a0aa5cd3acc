//! STUB: being written by the io helper.
#[derive(Debug)]
pub struct StdFs;
impl super::Vfs for StdFs {
    fn open(&self, _: &std::path::Path, _: bool) -> std::io::Result<std::sync::Arc<dyn super::VFile>> { todo!() }
    fn create_dir_all(&self, _: &std::path::Path) -> std::io::Result<()> { todo!() }
    fn list(&self, _: &std::path::Path) -> std::io::Result<Vec<std::path::PathBuf>> { todo!() }
    fn rename(&self, _: &std::path::Path, _: &std::path::Path) -> std::io::Result<()> { todo!() }
    fn remove(&self, _: &std::path::Path) -> std::io::Result<()> { todo!() }
    fn sync_dir(&self, _: &std::path::Path) -> std::io::Result<()> { todo!() }
    fn free_space(&self, _: &std::path::Path) -> std::io::Result<u64> { todo!() }
    fn kind(&self) -> &'static str { "std" }
}
