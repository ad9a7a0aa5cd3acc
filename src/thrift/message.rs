//! `ThriftSourceProtocol`'s messages, each one frame (see [`super::frame`]):
//!
//! ```text
//! call   = envelope(name, CALL, seqid) args
//!          append_args      { 1: ThriftFlumeEvent event }
//!          appendBatch_args { 1: list<ThriftFlumeEvent> events }
//! reply  = envelope(name, REPLY, seqid) result { 0: Status success (i32) }
//!        | envelope(name, EXCEPTION, seqid) TApplicationException { 1: string message, 2: i32 type }
//! ThriftFlumeEvent { 1: required map<string,string> headers, 2: required binary body }
//! ```
//!
//! The server side ([`decode_call`], [`encode_reply`]) answers like Thrift Java's generated
//! processor: an unknown method or malformed arguments get a `TApplicationException` reply
//! with the call's name and seqid, and the connection goes on; an envelope it cannot read is
//! an error that closes the connection. Unknown fields are skipped, a known field of another
//! type is skipped as Thrift Java does, and a missing required field is refused.

use bytes::Bytes;

use super::frame::{finish_frame, start_frame};
use super::protocol::{
    MessageHeader, Protocol, Reader, TType, Writer, CALL, EXCEPTION, ONEWAY, REPLY,
};
use super::{Status, ThriftError};
use crate::event::{Event, Headers};

/// Method name of a single-event call.
pub const APPEND: &str = "append";
/// Method name of a batch call.
pub const APPEND_BATCH: &str = "appendBatch";

/// `TApplicationException` types this crate sends or names.
pub const UNKNOWN_METHOD: i32 = 1;
pub const INVALID_MESSAGE_TYPE: i32 = 2;
pub const PROTOCOL_ERROR: i32 = 7;

/// The smallest encoding of a `ThriftFlumeEvent` in either protocol (an empty map and an empty
/// body need at least this many bytes); bounds a list's count before anything is allocated.
const MIN_EVENT_BYTES: usize = 4;
/// Most list entries reserved ahead of decoding them.
const MAX_PREALLOC: usize = 1024;

/// One of ThriftSourceProtocol's methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `Status append(1: ThriftFlumeEvent event)`.
    Append,
    /// `Status appendBatch(1: list<ThriftFlumeEvent> events)`.
    AppendBatch,
}

impl Method {
    /// The name on the wire.
    pub fn name(self) -> &'static str {
        match self {
            Method::Append => APPEND,
            Method::AppendBatch => APPEND_BATCH,
        }
    }
}

/// A decoded call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub method: Method,
    pub seqid: i32,
    /// Sent as ONEWAY: the client expects no reply.
    pub oneway: bool,
    /// The events, in order (one for `append`).
    pub events: Vec<Event>,
}

/// What one request frame asks of the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// A call to put into the channels, then answer with [`encode_reply`].
    Call(Call),
    /// A call refused without touching the channels: `response` (a whole frame) answers it.
    Refused {
        name: String,
        seqid: i32,
        error: ThriftError,
        response: Vec<u8>,
    },
}

/// Decodes one request frame. `Err` when its envelope cannot be read (the stream speaks
/// another protocol): close the connection.
pub fn decode_call(proto: Protocol, frame: Bytes) -> Result<Request, ThriftError> {
    let mut r = Reader::new(proto, frame);
    let MessageHeader { name, kind, seqid } = r.message_begin()?;
    let refuse = |name: String, error: ThriftError, ex_type: i32| {
        let response = encode_exception(proto, &name, seqid, ex_type, &error.to_string());
        Request::Refused {
            name,
            seqid,
            error,
            response,
        }
    };
    if kind != CALL && kind != ONEWAY {
        let e = ThriftError::UnexpectedMessageType {
            expected: "CALL",
            found: kind,
        };
        return Ok(refuse(name, e, INVALID_MESSAGE_TYPE));
    }
    let method = match name.as_str() {
        APPEND => Method::Append,
        APPEND_BATCH => Method::AppendBatch,
        _ => {
            let e = ThriftError::UnknownMethod { name: name.clone() };
            return Ok(refuse(name, e, UNKNOWN_METHOD));
        }
    };
    match read_args(&mut r, method) {
        Ok(events) => Ok(Request::Call(Call {
            method,
            seqid,
            oneway: kind == ONEWAY,
            events,
        })),
        Err(e) => Ok(refuse(name, e, PROTOCOL_ERROR)),
    }
}

/// The arguments structure of `method`: its events.
fn read_args(r: &mut Reader, method: Method) -> Result<Vec<Event>, ThriftError> {
    let mut events = None;
    r.struct_begin()?;
    while let Some((t, id)) = r.field_begin()? {
        match (method, id, t) {
            (Method::Append, 1, TType::Struct) => events = Some(vec![read_event(r)?]),
            (Method::AppendBatch, 1, TType::List) => {
                let (et, n) = r.list_begin("appendBatch events")?;
                if n > 0 && et != TType::Struct {
                    return Err(ThriftError::WrongType {
                        what: "appendBatch events",
                        expected: "struct",
                        found: et.name(),
                    });
                }
                let n = n as usize;
                // The count was checked against the bytes left, one byte per element; an
                // event needs more, so reserve no more than the bytes could hold.
                let mut list =
                    Vec::with_capacity(n.min(r.remaining() / MIN_EVENT_BYTES).min(MAX_PREALLOC));
                for _ in 0..n {
                    list.push(read_event(r)?);
                }
                events = Some(list);
            }
            _ => r.skip(t)?,
        }
    }
    r.struct_end();
    let name = match method {
        Method::Append => "event",
        Method::AppendBatch => "events",
    };
    events.ok_or(ThriftError::MissingField {
        what: "the call's arguments",
        field: 1,
        name,
    })
}

/// One `ThriftFlumeEvent`.
fn read_event(r: &mut Reader) -> Result<Event, ThriftError> {
    let mut headers: Option<Headers> = None;
    let mut body: Option<Bytes> = None;
    r.struct_begin()?;
    while let Some((t, id)) = r.field_begin()? {
        match (id, t) {
            (1, TType::Map) => {
                let (types, n) = r.map_begin("event headers")?;
                if let Some((k, v)) = types {
                    if n > 0 && (k != TType::String || v != TType::String) {
                        return Err(ThriftError::WrongType {
                            what: "event headers",
                            expected: "map<string,string>",
                            found: if k != TType::String {
                                k.name()
                            } else {
                                v.name()
                            },
                        });
                    }
                }
                let mut h = Headers::new();
                for _ in 0..n {
                    let key = r.string("header name")?;
                    let value = r.string("header value")?;
                    // A repeated name: the last wins, as in the HashMap Java reads into.
                    h.insert(key, value);
                }
                headers = Some(h);
            }
            (2, TType::String) => body = Some(r.binary("event body")?),
            _ => r.skip(t)?,
        }
    }
    r.struct_end();
    let headers = headers.ok_or(ThriftError::MissingField {
        what: "ThriftFlumeEvent",
        field: 1,
        name: "headers",
    })?;
    let body = body.ok_or(ThriftError::MissingField {
        what: "ThriftFlumeEvent",
        field: 2,
        name: "body",
    })?;
    Ok(Event::with_headers(headers, body))
}

fn write_event(w: &mut Writer<'_>, e: &Event) {
    w.struct_begin();
    w.field_begin(TType::Map, 1);
    // A map of more than u32::MAX headers cannot exist in memory next to its frame.
    w.map_begin(TType::String, TType::String, e.headers().len() as u32);
    for (k, v) in e.headers() {
        w.string(k);
        w.string(v);
    }
    w.field_begin(TType::String, 2);
    w.binary(e.body());
    w.struct_end();
}

/// The frame of an `append(event)` call.
pub fn encode_append(proto: Protocol, seqid: i32, event: &Event) -> Result<Vec<u8>, ThriftError> {
    let mut out = Vec::with_capacity(64 + event.body().len());
    let at = start_frame(&mut out);
    let mut w = Writer::new(proto, &mut out);
    w.message_begin(APPEND, CALL, seqid);
    w.struct_begin();
    w.field_begin(TType::Struct, 1);
    write_event(&mut w, event);
    w.struct_end();
    finish_frame(&mut out, at, "append")?;
    Ok(out)
}

/// The frame of an `appendBatch(events)` call.
pub fn encode_append_batch(
    proto: Protocol,
    seqid: i32,
    events: &[Event],
) -> Result<Vec<u8>, ThriftError> {
    let size: usize = events.iter().map(|e| e.body().len() + 16).sum();
    let mut out = Vec::with_capacity(64 + size);
    let at = start_frame(&mut out);
    let mut w = Writer::new(proto, &mut out);
    w.message_begin(APPEND_BATCH, CALL, seqid);
    w.struct_begin();
    w.field_begin(TType::List, 1);
    let n = u32::try_from(events.len()).map_err(|_| ThriftError::TooLargeToFrame {
        what: "appendBatch",
        len: events.len(),
    })?;
    w.list_begin(TType::Struct, n);
    for e in events {
        write_event(&mut w, e);
    }
    w.struct_end();
    finish_frame(&mut out, at, "appendBatch")?;
    Ok(out)
}

/// The reply frame to a call of `method`: its status.
pub fn encode_reply(proto: Protocol, method: Method, seqid: i32, status: Status) -> Vec<u8> {
    let mut out = Vec::with_capacity(32);
    let at = start_frame(&mut out);
    let mut w = Writer::new(proto, &mut out);
    w.message_begin(method.name(), REPLY, seqid);
    w.struct_begin();
    w.field_begin(TType::I32, 0);
    w.i32(status.value());
    w.struct_end();
    // A reply of a few bytes always fits a frame.
    let _ = finish_frame(&mut out, at, "reply");
    out
}

/// An exception reply frame (`TApplicationException`), as Thrift Java's processor sends for an
/// unknown method or unreadable arguments.
pub fn encode_exception(
    proto: Protocol,
    name: &str,
    seqid: i32,
    ex_type: i32,
    message: &str,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + name.len() + message.len());
    let at = start_frame(&mut out);
    let mut w = Writer::new(proto, &mut out);
    w.message_begin(name, EXCEPTION, seqid);
    w.struct_begin();
    w.field_begin(TType::String, 1);
    w.string(message);
    w.field_begin(TType::I32, 2);
    w.i32(ex_type);
    w.struct_end();
    // The name came from a frame under the limit, and the message is ours: it fits.
    let _ = finish_frame(&mut out, at, "exception reply");
    out
}

/// What the server answered to a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// The call's `Status`.
    Status(Status),
    /// A `TApplicationException`: the server refused the call as such.
    Exception { ex_type: i32, message: String },
}

/// Decodes the reply frame to the call `method` with `seqid`. `Err` for anything but a reply
/// to that call: the connection is out of step and must be dropped.
pub fn decode_reply(
    proto: Protocol,
    frame: Bytes,
    method: Method,
    seqid: i32,
) -> Result<Reply, ThriftError> {
    let mut r = Reader::new(proto, frame);
    let h = r.message_begin()?;
    let bad = |detail: String| ThriftError::BadHeader {
        protocol: proto.name(),
        detail,
    };
    if h.seqid != seqid {
        return Err(bad(format!(
            "a reply to call {} while waiting for call {seqid}",
            h.seqid
        )));
    }
    if h.name != method.name() {
        return Err(bad(format!(
            "a reply to {:?} while waiting for {}",
            h.name,
            method.name()
        )));
    }
    match h.kind {
        REPLY => {
            let mut status = None;
            r.struct_begin()?;
            while let Some((t, id)) = r.field_begin()? {
                if (id, t) == (0, TType::I32) {
                    let v = r.i32("reply status")?;
                    status = Some(Status::from_value(v).ok_or(ThriftError::BadHeader {
                        protocol: proto.name(),
                        detail: format!("status {v} is not one of ThriftSourceProtocol's"),
                    })?);
                } else {
                    r.skip(t)?;
                }
            }
            r.struct_end();
            status.map(Reply::Status).ok_or(ThriftError::MissingField {
                what: "the reply",
                field: 0,
                name: "success",
            })
        }
        EXCEPTION => {
            let (mut message, mut ex_type) = (String::new(), 0);
            r.struct_begin()?;
            while let Some((t, id)) = r.field_begin()? {
                match (id, t) {
                    (1, TType::String) => message = r.string("exception message")?,
                    (2, TType::I32) => ex_type = r.i32("exception type")?,
                    _ => r.skip(t)?,
                }
            }
            r.struct_end();
            Ok(Reply::Exception { ex_type, message })
        }
        other => Err(ThriftError::UnexpectedMessageType {
            expected: "REPLY or EXCEPTION",
            found: other,
        }),
    }
}
