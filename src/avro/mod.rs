//! Flume's Avro RPC (the tiering protocol between an avro sink and an avro source:
//! `org.apache.flume.source.avro.AvroSourceProtocol` over Avro Java's Netty transceiver), sans
//! I/O. docs/FORMAT.md ("Flume Avro RPC") draws the bytes.
//!
//! Layers, bottom up:
//! - [`binary`]: the Avro binary values the protocol uses.
//! - [`frame`]: Netty framing (`serial | nbuffers | {len | bytes}*`), an incremental decoder fed
//!   arbitrary chunks.
//! - [`protocol`]: handshake records, call and response bodies, `AvroFlumeEvent` <-> [`Event`].
//! - [`server`] and [`client`]: one connection's state machine each (whether the handshake
//!   happened, what to answer, when to resend with the protocol text).
//! - [`zlib`], [`tls`] and [`transport`]: `compression-type = deflate` and `ssl = true`, layered
//!   on the socket as Flume 1.11 does (zlib outermost, TLS inside it, frames inside TLS).
//! - [`blocking`]: a [`ClientConn`] over a blocking [`transport::Transport`] (the avro sink,
//!   `avro-client`).
//!
//! Invariants:
//! - No I/O, no async, no clocks (except in [`blocking`], [`transport`], and [`tls`], which
//!   reads key and trust stores): callers feed bytes in and write bytes out, so every path is
//!   unit-testable and fuzzable (`fuzz/fuzz_targets/avro_frame.rs`).
//! - Untrusted input never panics and never makes us allocate more than we were given: frame
//!   counts and lengths are checked against [`FrameLimits`] as their 4 bytes arrive, and every
//!   Avro length and count inside a frame is checked against the bytes left in that frame.
//! - Errors name what was wrong. A [`FrameError`] means the stream lost sync: close the
//!   connection. A malformed call inside a good frame is answered (as Avro Java does, with an
//!   error response) and the connection goes on; a call of a message AvroSourceProtocol does
//!   not have, or a second unknown handshake, is answered and then closes the connection.
//!
//! [`Event`]: crate::event::Event

pub mod binary;
pub mod blocking;
pub mod client;
pub mod frame;
pub mod keys;
pub mod protocol;
pub mod server;
pub mod tls;
pub mod transport;
pub mod zlib;

#[cfg(test)]
mod tests;

pub use client::{ClientConn, ClientItem};
pub use frame::{Frame, FrameDecoder, FrameError, FrameLimits};
pub use protocol::{AvroFlumeEvent, Message, Status, PROTOCOL_JSON, PROTOCOL_MD5};
pub use server::{AnswerReason, Answered, Call, Reply, ServerConn, ServerItem};

/// Why an Avro RPC message (or a stream of them) is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AvroError {
    /// The message ended inside a value.
    #[error("truncated {what}: needs {needed} more bytes, {available} remain in the message")]
    Truncated {
        what: &'static str,
        needed: u64,
        available: u64,
    },
    /// A varint longer or wider than its type.
    #[error("{what}: varint wider than {bits} bits")]
    VarintOverflow { what: &'static str, bits: u32 },
    /// A boolean byte other than 0 or 1.
    #[error("{what}: byte {byte} is not a boolean (0 or 1)")]
    BadBoolean { what: &'static str, byte: u8 },
    /// An enum symbol or union branch out of range.
    #[error("{what}: index {index} is out of range 0..{count}")]
    BadIndex {
        what: &'static str,
        index: i64,
        count: u32,
    },
    /// A bytes/string length negative or longer than the rest of the message.
    #[error("{what}: declares {len} bytes but {available} remain in the message")]
    LengthOutOfRange {
        what: &'static str,
        len: i64,
        available: u64,
    },
    /// An array/map block count that the rest of the message cannot hold.
    #[error("{what}: declares {count} items but only {available} bytes remain in the message")]
    CountOutOfRange {
        what: &'static str,
        count: i64,
        available: u64,
    },
    /// Bytes left after the last value: the peer encoded another schema.
    #[error("{what}: {extra} bytes left over after the value; is the peer using another protocol than AvroSourceProtocol?")]
    TrailingBytes { what: &'static str, extra: u64 },
    /// A message name AvroSourceProtocol does not have.
    #[error("no such message {name:?}: AvroSourceProtocol has append and appendBatch")]
    UnknownMessage { name: String },
    /// A handshake carried a client protocol text that is not a JSON object.
    #[error("handshake clientProtocol is not a JSON protocol: {detail}")]
    BadClientProtocol { detail: String },
    /// The byte stream is not valid framing; close the connection.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// A client call while the first call's handshake is unanswered: a second handshake (or a
    /// call without one) would desynchronise the server.
    #[error("handshake of call {serial} is still unanswered: wait for its response before the next call")]
    HandshakeInFlight { serial: u32 },
    /// A response nobody asked for (or another than the handshake's while it is pending).
    #[error("unexpected response serial {serial} (waiting for {expected:?})")]
    UnexpectedResponse { serial: u32, expected: Option<u32> },
    /// A client that was answered NONE (with our protocol) sent another handshake we do not
    /// know: it cannot speak AvroSourceProtocol, so the server closes the connection.
    #[error("handshake with protocol hash {hash} again after our NONE answer (Flume's AvroSourceProtocol is {ours}): the peer does not speak Flume's avro protocol")]
    UnknownClientProtocol { hash: String, ours: String },
    /// The server answered NONE even to our protocol text.
    #[error("server refused the handshake even with our protocol text: it does not speak AvroSourceProtocol")]
    HandshakeRefused,
}
