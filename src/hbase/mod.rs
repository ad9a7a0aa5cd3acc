//! A client for HBase's native protocol, the part a sink needs: find `hbase:meta` through
//! ZooKeeper ([`zk`]), locate a table's regions by scanning it ([`region`]), and send puts and
//! increments to the region servers that hold their rows as `Multi` calls over HBase's RPC
//! ([`rpc`], with the protobuf messages in [`proto`]). [`Client`] ties them together: a region
//! cache, one connection per region server, batches grouped per server, and retries with
//! backoff when regions move or split.
//!
//! Invariants: [`Client::apply`] returns `Ok` only when every mutation it was given has been
//! acknowledged by the region server holding its row; on `Err` some may have been applied
//! (the caller retries the whole batch, so puts may be written twice with the same row key and
//! increments counted twice, as with Flume's Java sinks). Nothing here panics on what a server
//! or ZooKeeper sends: every length is bounded and every decode error is an [`HBaseError`].

pub mod client;
pub mod error;
pub mod mutation;
pub mod proto;
pub mod region;
pub mod rpc;
pub mod zk;

pub use client::{Client, ClientConfig, ClientStats, InFlight};
pub use error::HBaseError;
pub use mutation::{IncrementCell, Mutation, PutCell};
