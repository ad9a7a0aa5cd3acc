//! STUB: being written by the cli helper.
