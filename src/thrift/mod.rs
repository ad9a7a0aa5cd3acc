//! Flume's Thrift RPC (`ThriftSourceProtocol` of flume-ng-sdk's `flume.thrift`: the `thrift`
//! source and sink, and the Flume SDK's `ThriftRpcClient`), sans I/O but for the sink's client connection. docs/FORMAT.md ("Flume
//! Thrift RPC") draws the bytes.
//!
//! Layers, bottom up:
//! - [`frame`]: Thrift's framed transport (`i32 BE length | message`), a decoder over a
//!   growing buffer that checks the declared length before any body byte is kept.
//! - [`protocol`]: the two Thrift protocols Flume offers (`protocol = compact`, its default,
//!   and `binary`): a reader over one frame and a writer, with `skip` for unknown fields.
//! - [`message`]: the calls `append(ThriftFlumeEvent)` and `appendBatch(list<ThriftFlumeEvent>)`
//!   and their `Status` replies, both sides (the source decodes calls and encodes replies; the
//!   sink encodes calls and decodes replies), and `ThriftFlumeEvent` <-> [`Event`].
//! - [`blocking`]: the client connection the `thrift` sink uses (plain TCP or TLS).
//! - [`keys`]: the `protocol` and `kerberos` keys the source and the sink share.
//!
//! Invariants:
//! - No I/O, no async, no clocks (except in [`blocking`]): callers feed bytes in and write
//!   bytes out, so every path is unit-testable and fuzzable (`fuzz/fuzz_targets/thrift_frame.rs`).
//! - Untrusted input never panics and never makes us allocate more than we were given: the
//!   frame length is checked against the limit as its 4 bytes arrive, and every length and
//!   count inside a frame is checked against the bytes left in that frame; unknown fields are
//!   skipped to a bounded depth ([`protocol::MAX_DEPTH`]).
//! - A [`FrameError`] means the stream lost sync: close the connection. A malformed call
//!   inside a good frame is answered (as Thrift Java's processor does, with a
//!   `TApplicationException`) and the connection goes on.
//!
//! [`Event`]: crate::event::Event

pub mod blocking;
pub mod frame;
pub mod keys;
pub mod message;
pub mod protocol;

#[cfg(test)]
mod tests;

pub use frame::{FrameDecoder, FrameError, DEFAULT_MAX_FRAME_BYTES};
pub use message::{
    decode_call, decode_reply, encode_append, encode_append_batch, encode_exception, encode_reply,
    Call, Method, Reply, Request,
};
pub use protocol::Protocol;

/// `enum Status { OK, FAILED, ERROR, UNKNOWN }`: what `append` and `appendBatch` return.
/// Flume's source answers FAILED when its channel refuses the events; the client resends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    Failed,
    Error,
    Unknown,
}

impl Status {
    /// The enum's value on the wire (an i32).
    pub fn value(self) -> i32 {
        match self {
            Status::Ok => 0,
            Status::Failed => 1,
            Status::Error => 2,
            Status::Unknown => 3,
        }
    }

    /// The status of a wire value, `None` for a value the enum does not have.
    pub fn from_value(v: i32) -> Option<Status> {
        match v {
            0 => Some(Status::Ok),
            1 => Some(Status::Failed),
            2 => Some(Status::Error),
            3 => Some(Status::Unknown),
            _ => None,
        }
    }

    /// The name as Flume spells it.
    pub fn name(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::Failed => "FAILED",
            Status::Error => "ERROR",
            Status::Unknown => "UNKNOWN",
        }
    }
}

/// Why a Thrift message is not acceptable. Inside a good frame, the call is answered with an
/// exception and the connection goes on; a [`ThriftError::Frame`] closes the connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ThriftError {
    /// The message ended inside a value.
    #[error("truncated {what}: needs {needed} more bytes, {available} remain in the message")]
    Truncated {
        what: &'static str,
        needed: u64,
        available: u64,
    },
    /// A varint longer than its type allows.
    #[error("{what}: varint longer than {max_bytes} bytes")]
    VarintOverflow { what: &'static str, max_bytes: u32 },
    /// A string or binary length negative or longer than the rest of the message.
    #[error("{what}: declares {len} bytes but {available} remain in the message")]
    LengthOutOfRange {
        what: &'static str,
        len: i64,
        available: u64,
    },
    /// A list, set or map count negative or more than the rest of the message can hold.
    #[error("{what}: declares {count} items but only {available} bytes remain in the message")]
    CountOutOfRange {
        what: &'static str,
        count: i64,
        available: u64,
    },
    /// A type code the protocol does not have.
    #[error("{what}: {code} is not a Thrift type code")]
    BadType { what: &'static str, code: u8 },
    /// A value of another type than the protocol declares for it.
    #[error("{what}: expected {expected}, found {found}")]
    WrongType {
        what: &'static str,
        expected: &'static str,
        found: &'static str,
    },
    /// Structures nested deeper than [`protocol::MAX_DEPTH`].
    #[error("values nested more than {limit} deep")]
    TooDeep { limit: u32 },
    /// The message header is not one of the configured protocol's.
    #[error("not a Thrift {protocol} protocol message: {detail} (is the peer set with the same `protocol`?)")]
    BadHeader {
        protocol: &'static str,
        detail: String,
    },
    /// A required field is missing.
    #[error("{what} has no field {field} ({name}), which is required")]
    MissingField {
        what: &'static str,
        field: i16,
        name: &'static str,
    },
    /// A method ThriftSourceProtocol does not have.
    #[error("no such method {name:?}: ThriftSourceProtocol has append and appendBatch")]
    UnknownMethod { name: String },
    /// A message type other than the one expected here.
    #[error("message type {found}, expected {expected}")]
    UnexpectedMessageType { expected: &'static str, found: u8 },
    /// A message too large to frame (over 2 GiB).
    #[error("{what} encodes to {len} bytes, more than a Thrift frame can hold")]
    TooLargeToFrame { what: &'static str, len: usize },
    /// The byte stream is not valid framing; close the connection.
    #[error(transparent)]
    Frame(#[from] FrameError),
}
