//! STUB: being written. Flume properties configuration.
