//! flumen: a Flume-compatible ingestion agent built around a durable write-ahead-log file
//! channel. The library exposes the channel (`channel`), its sans-IO on-disk encoding
//! (`format`) and the narrow I/O layer under it (`io`); the binary in `main.rs` wires them into
//! the `flumen` command. See docs/ARCHITECTURE.md for the map.

pub mod agent;
pub mod avro;
pub mod channel;
pub mod cli;
pub mod config;
pub mod event;
pub mod format;
pub mod hbase;
pub mod host;
pub mod interceptor;
pub mod io;
pub mod kafka;
pub mod metrics;
pub(crate) mod net;
pub mod report;
pub mod route;
pub mod sink;
pub mod source;
pub(crate) mod stop;
pub mod thrift;

pub use event::Event;
