//! STUB: being written by the io helper.
#[derive(Debug, Default)]
pub struct MemFs;
