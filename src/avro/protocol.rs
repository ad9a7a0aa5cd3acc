//! Flume's `AvroSourceProtocol` (flume-ng-sdk `flume.avdl`) as Avro RPC messages (Avro spec,
//! "Protocol Wire Format"): the handshake records, the call and response bodies, and the
//! conversion between `AvroFlumeEvent` and flumen's [`Event`].
//!
//! ```text
//! request  = [HandshakeRequest, first call only] meta:map<bytes> name:string params
//! response = [HandshakeResponse, first call only] meta:map<bytes> error:boolean
//!            (Status | union{string} message)
//! ```
//!
//! Functions here map whole messages to values and back; which message carries a handshake
//! is the connection state machines' business (`server`, `client`). No I/O.

use bytes::Bytes;

use super::binary::{write_bool, write_bytes, write_count, write_int, write_string, Reader};
use super::AvroError;
use crate::event::{Event, Headers};

/// MD5 of the protocol as Avro Java renders it (`Protocol.toString()` of flume.avdl, whose
/// licence comment becomes the `doc`). Flume's clients and servers send and expect exactly
/// this; it equals the MD5 of [`PROTOCOL_JSON`] (checked once by hand, there being no MD5 in
/// this crate's dependencies).
pub const PROTOCOL_MD5: [u8; 16] = [
    0x86, 0xaa, 0xda, 0xe2, 0xc4, 0x54, 0x74, 0xc0, 0xfe, 0x93, 0xff, 0xd0, 0xf2, 0x35, 0x0a, 0x65,
];

/// The protocol's JSON text, byte for byte as Avro Java renders it from flume.avdl. Sent only
/// on the rare handshake path where the peer does not know our hash (NONE, or a client retry).
pub const PROTOCOL_JSON: &str = concat!(
    r#"{"protocol":"AvroSourceProtocol","namespace":"org.apache.flume.source.avro","doc":"#,
    r#""* Licensed to the Apache Software Foundation (ASF) under one\n * or more contributor license agreements.  See the NOTICE file\n * distributed with this work for additional information\n * regarding copyright ownership.  The ASF licenses this file\n * to you under the Apache License, Version 2.0 (the\n * \"License\"); you may not use this file except in compliance\n * with the License.  You may obtain a copy of the License at\n *\n * http://www.apache.org/licenses/LICENSE-2.0\n *\n * Unless required by applicable law or agreed to in writing,\n * software distributed under the License is distributed on an\n * \"AS IS\" BASIS, WITHOUT WARRANTIES OR CONDITIONS OF ANY\n * KIND, either express or implied.  See the License for the\n * specific language governing permissions and limitations\n * under the License.","#,
    r#""types":[{"type":"enum","name":"Status","symbols":["OK","FAILED","UNKNOWN"]},"#,
    r#"{"type":"record","name":"AvroFlumeEvent","fields":[{"name":"headers","type":{"type":"map","values":"string"}},{"name":"body","type":"bytes"}]}],"#,
    r#""messages":{"append":{"request":[{"name":"event","type":"AvroFlumeEvent"}],"response":"Status"},"#,
    r#""appendBatch":{"request":[{"name":"events","type":{"type":"array","items":"AvroFlumeEvent"}}],"response":"Status"}}}"#,
);

/// Message name of a single-event call.
pub const APPEND: &str = "append";
/// Message name of a batch call.
pub const APPEND_BATCH: &str = "appendBatch";

/// Smallest encoding of one map entry (`map<string>` or `map<bytes>`): two empty strings.
const MIN_MAP_ENTRY: usize = 2;
/// Smallest encoding of one `AvroFlumeEvent`: an empty map and an empty body.
const MIN_EVENT: usize = 2;

/// `enum Status { OK, FAILED, UNKNOWN }`: what a call returns. Flume's source answers FAILED
/// when its channel refuses the events (the client then retries or fails over).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    Ok,
    Failed,
    Unknown,
}

impl Status {
    fn index(self) -> i32 {
        match self {
            Status::Ok => 0,
            Status::Failed => 1,
            Status::Unknown => 2,
        }
    }

    fn from_index(i: u32) -> Self {
        match i {
            0 => Status::Ok,
            1 => Status::Failed,
            _ => Status::Unknown,
        }
    }
}

/// `record AvroFlumeEvent { map<string> headers; bytes body; }`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AvroFlumeEvent {
    /// Headers; a key sent twice keeps its last value (as Java's `HashMap` does).
    pub headers: Headers,
    pub body: Bytes,
}

impl From<AvroFlumeEvent> for Event {
    fn from(e: AvroFlumeEvent) -> Self {
        Event::with_headers(e.headers, e.body)
    }
}

impl From<&Event> for AvroFlumeEvent {
    fn from(e: &Event) -> Self {
        AvroFlumeEvent {
            headers: e.headers().clone(),
            body: e.body().clone(),
        }
    }
}

/// One decoded call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// `Status append(AvroFlumeEvent event)`.
    Append(AvroFlumeEvent),
    /// `Status appendBatch(array<AvroFlumeEvent> events)`.
    AppendBatch(Vec<AvroFlumeEvent>),
}

impl Message {
    /// The message name on the wire.
    pub fn name(&self) -> &'static str {
        match self {
            Message::Append(_) => APPEND,
            Message::AppendBatch(_) => APPEND_BATCH,
        }
    }

    /// The events of the call, in order.
    pub fn into_events(self) -> Vec<Event> {
        match self {
            Message::Append(e) => vec![e.into()],
            Message::AppendBatch(es) => es.into_iter().map(Event::from).collect(),
        }
    }
}

/// Call metadata (`map<bytes>`); Flume sends it empty. Kept in wire order.
pub type Meta = Vec<(String, Bytes)>;

/// Avro's `HandshakeRequest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandshakeRequest {
    pub client_hash: [u8; 16],
    /// The client's protocol JSON; sent after a NONE answer.
    pub client_protocol: Option<String>,
    /// The client's guess of the server's hash.
    pub server_hash: [u8; 16],
    pub meta: Option<Meta>,
}

impl HandshakeRequest {
    /// What a Flume client sends first: our hash as both hashes, no text, an empty meta map
    /// (Java writes `02 00` for it, not a null).
    pub fn flume(with_text: bool) -> Self {
        HandshakeRequest {
            client_hash: PROTOCOL_MD5,
            client_protocol: with_text.then(|| PROTOCOL_JSON.to_owned()),
            server_hash: PROTOCOL_MD5,
            meta: Some(Vec::new()),
        }
    }
}

/// `enum HandshakeMatch { BOTH, CLIENT, NONE }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandshakeMatch {
    /// Both sides know each other's protocol.
    Both,
    /// The server knows the client's protocol, but the client guessed the server's hash wrong:
    /// the response carries the server's protocol and hash.
    Client,
    /// The server does not know the client's protocol: the call was not handled and the
    /// client must resend it with its protocol text.
    None,
}

/// Avro's `HandshakeResponse`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandshakeResponse {
    pub matched: HandshakeMatch,
    pub server_protocol: Option<String>,
    pub server_hash: Option<[u8; 16]>,
    pub meta: Option<Meta>,
}

impl HandshakeResponse {
    /// The answer of a Flume server (Avro Java's `Responder`): BOTH when the client guessed our
    /// hash, CLIENT otherwise; NONE when the client is unknown. Our protocol and hash ride
    /// along unless BOTH.
    pub fn answer(matched: HandshakeMatch) -> Self {
        let ours = matched != HandshakeMatch::Both;
        HandshakeResponse {
            matched,
            server_protocol: ours.then(|| PROTOCOL_JSON.to_owned()),
            server_hash: ours.then_some(PROTOCOL_MD5),
            meta: None,
        }
    }
}

fn write_meta(out: &mut Vec<u8>, meta: &Meta) {
    if !meta.is_empty() {
        write_count(out, meta.len());
        for (k, v) in meta {
            write_string(out, k);
            write_bytes(out, v);
        }
    }
    write_count(out, 0);
}

fn read_meta(r: &mut Reader<'_>, what: &'static str) -> Result<Meta, AvroError> {
    let mut meta = Vec::new();
    loop {
        let n = r.read_block_count(what, MIN_MAP_ENTRY)?;
        if n == 0 {
            return Ok(meta);
        }
        meta.reserve(n);
        for _ in 0..n {
            let k = r.read_string(what)?;
            let v = r.read_bytes(what)?;
            meta.push((k, v));
        }
    }
}

/// Writes a `union { null, T }`: index 0 for null, 1 then the value.
fn write_optional<T>(out: &mut Vec<u8>, v: Option<&T>, write: impl FnOnce(&mut Vec<u8>, &T)) {
    match v {
        None => write_int(out, 0),
        Some(v) => {
            write_int(out, 1);
            write(out, v);
        }
    }
}

fn read_optional<T>(
    r: &mut Reader<'_>,
    what: &'static str,
    read: impl FnOnce(&mut Reader<'_>) -> Result<T, AvroError>,
) -> Result<Option<T>, AvroError> {
    match r.read_index(what, 2)? {
        0 => Ok(None),
        _ => read(r).map(Some),
    }
}

/// Appends a handshake request.
pub fn encode_handshake_request(out: &mut Vec<u8>, h: &HandshakeRequest) {
    out.extend_from_slice(&h.client_hash);
    write_optional(out, h.client_protocol.as_ref(), |o, s| write_string(o, s));
    out.extend_from_slice(&h.server_hash);
    write_optional(out, h.meta.as_ref(), write_meta);
}

/// Reads a handshake request.
pub fn decode_handshake_request(r: &mut Reader<'_>) -> Result<HandshakeRequest, AvroError> {
    Ok(HandshakeRequest {
        client_hash: r.read_fixed16("handshake clientHash")?,
        client_protocol: read_optional(r, "handshake clientProtocol", |r| {
            r.read_string("handshake clientProtocol")
        })?,
        server_hash: r.read_fixed16("handshake serverHash")?,
        meta: read_optional(r, "handshake meta", |r| read_meta(r, "handshake meta"))?,
    })
}

/// Appends a handshake response.
pub fn encode_handshake_response(out: &mut Vec<u8>, h: &HandshakeResponse) {
    write_int(
        out,
        match h.matched {
            HandshakeMatch::Both => 0,
            HandshakeMatch::Client => 1,
            HandshakeMatch::None => 2,
        },
    );
    write_optional(out, h.server_protocol.as_ref(), |o, s| write_string(o, s));
    write_optional(out, h.server_hash.as_ref(), |o, h| o.extend_from_slice(h));
    write_optional(out, h.meta.as_ref(), write_meta);
}

/// Reads a handshake response.
pub fn decode_handshake_response(r: &mut Reader<'_>) -> Result<HandshakeResponse, AvroError> {
    let matched = match r.read_index("handshake match", 3)? {
        0 => HandshakeMatch::Both,
        1 => HandshakeMatch::Client,
        _ => HandshakeMatch::None,
    };
    Ok(HandshakeResponse {
        matched,
        server_protocol: read_optional(r, "handshake serverProtocol", |r| {
            r.read_string("handshake serverProtocol")
        })?,
        server_hash: read_optional(r, "handshake serverHash", |r| {
            r.read_fixed16("handshake serverHash")
        })?,
        meta: read_optional(r, "handshake meta", |r| read_meta(r, "handshake meta"))?,
    })
}

fn write_event(out: &mut Vec<u8>, headers: &Headers, body: &[u8]) {
    if !headers.is_empty() {
        write_count(out, headers.len());
        for (k, v) in headers {
            write_string(out, k);
            write_string(out, v);
        }
    }
    write_count(out, 0);
    write_bytes(out, body);
}

/// Appends the parameters of `append(event)`, straight from an [`Event`] (no copy of its
/// headers).
pub fn encode_append_params(out: &mut Vec<u8>, event: &Event) {
    write_event(out, event.headers(), event.body());
}

/// Appends the parameters of `appendBatch(events)`: one block holding every event, then the
/// end marker (an empty batch is just the end marker).
pub fn encode_append_batch_params(out: &mut Vec<u8>, events: &[Event]) {
    // One allocation for the whole batch: growing by doubling would copy a 100-event batch of
    // 1 KiB bodies about twice over, which profiled as most of the avro sink's CPU. Each value
    // costs its bytes plus at most 10 bytes of length.
    let estimate: usize = events
        .iter()
        .map(|e| {
            let headers: usize = e
                .headers()
                .iter()
                .map(|(k, v)| k.len() + v.len() + 20)
                .sum();
            e.body().len() + headers + 20
        })
        .sum();
    out.reserve(estimate + 20);
    if !events.is_empty() {
        write_count(out, events.len());
        for e in events {
            write_event(out, e.headers(), e.body());
        }
    }
    write_count(out, 0);
}

fn read_event(r: &mut Reader<'_>) -> Result<AvroFlumeEvent, AvroError> {
    let mut headers = Headers::new();
    loop {
        let n = r.read_block_count("event headers", MIN_MAP_ENTRY)?;
        if n == 0 {
            break;
        }
        for _ in 0..n {
            let k = r.read_string("header key")?;
            let v = r.read_string("header value")?;
            headers.insert(k, v);
        }
    }
    let body = r.read_bytes("event body")?;
    Ok(AvroFlumeEvent { headers, body })
}

/// Appends one `AvroFlumeEvent` as Avro's binary encoding writes it on its own (no container,
/// no schema): what Flume's Kafka sink writes with `useFlumeEventFormat` and its Kafka channel
/// with `parseAsFlumeEvent`, so a Flume agent reads what flumen writes and back.
pub fn encode_flume_event(out: &mut Vec<u8>, event: &Event) {
    out.reserve(event.body().len() + 16);
    write_event(out, event.headers(), event.body());
}

/// Reads one `AvroFlumeEvent` that must fill `bytes` exactly (a Kafka record's value written by
/// Flume with `useFlumeEventFormat` / `parseAsFlumeEvent`). Never allocates more than `bytes`.
pub fn decode_flume_event(bytes: &Bytes) -> Result<Event, AvroError> {
    let mut r = Reader::new(bytes);
    let e = read_event(&mut r)?;
    r.finish("AvroFlumeEvent")?;
    Ok(e.into())
}

/// Appends a message's parameters (the part after its name).
pub fn encode_params(out: &mut Vec<u8>, m: &Message) {
    match m {
        Message::Append(e) => write_event(out, &e.headers, &e.body),
        Message::AppendBatch(es) => {
            if !es.is_empty() {
                write_count(out, es.len());
                for e in es {
                    write_event(out, &e.headers, &e.body);
                }
            }
            write_count(out, 0);
        }
    }
}

/// Appends the call header: empty meta, then the message name.
pub fn encode_call_head(out: &mut Vec<u8>, name: &str) {
    encode_empty_meta(out);
    write_string(out, name);
}

/// What follows the handshake in a request: a named call, or an empty name (Avro's
/// "handshake ping", answered with the handshake alone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallBody {
    Call(Message),
    Ping,
}

/// Reads call meta, message name and parameters, up to the end of the message.
pub fn decode_call(r: &mut Reader<'_>) -> Result<CallBody, AvroError> {
    read_meta(r, "call meta")?;
    let name = r.read_string("message name")?;
    let message = match name.as_str() {
        "" => return Ok(CallBody::Ping),
        APPEND => Message::Append(read_event(r)?),
        APPEND_BATCH => {
            let mut events = Vec::new();
            loop {
                let n = r.read_block_count("appendBatch events", MIN_EVENT)?;
                if n == 0 {
                    break;
                }
                events.reserve(n);
                for _ in 0..n {
                    events.push(read_event(r)?);
                }
            }
            Message::AppendBatch(events)
        }
        _ => return Err(AvroError::UnknownMessage { name }),
    };
    r.finish("request parameters")?;
    Ok(CallBody::Call(message))
}

/// Appends an empty call meta map (the only meta flumen sends, as Flume does).
pub fn encode_empty_meta(out: &mut Vec<u8>) {
    write_meta(out, &Vec::new());
}

/// Appends a response's payload (after handshake and meta): the error flag, then the status
/// or (on error) the message as Avro's system-error union `union { string }`.
pub fn encode_response_payload(out: &mut Vec<u8>, result: Result<Status, &str>) {
    match result {
        Ok(s) => {
            write_bool(out, false);
            write_int(out, s.index());
        }
        Err(msg) => {
            write_bool(out, true);
            write_int(out, 0);
            write_string(out, msg);
        }
    }
}

/// Reads a response body (after any handshake): `Ok(status)` or `Err(remote error text)`.
pub fn decode_response_body(r: &mut Reader<'_>) -> Result<Result<Status, String>, AvroError> {
    read_meta(r, "response meta")?;
    let result = if r.read_bool("response error flag")? {
        r.read_index("response error union", 1)?;
        Err(r.read_string("response error")?)
    } else {
        Ok(Status::from_index(r.read_index("response status", 3)?))
    };
    r.finish("response")?;
    Ok(result)
}
