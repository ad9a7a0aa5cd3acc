//! STUB: being written by the memory-channel helper.
