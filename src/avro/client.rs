//! One client-side connection (what Flume's avro sink and `flume-ng avro-client` hold), sans
//! I/O: encodes calls, decodes responses, and runs the handshake.
//!
//! Like Avro Java's `Requestor`, the first call carries a handshake with Flume's hash as both
//! the client hash and the guess of the server hash, and no protocol text. Until its response
//! arrives no other call may be sent ([`AvroError::HandshakeInFlight`]): a server handles
//! handshakes in arrival order, and a second one would be read as a call. If the server
//! answers NONE the call was not handled; this connection re-encodes it with the protocol text
//! under a new serial and hands it back as [`ClientItem::Resent`] for the caller to write.
//! After BOTH or CLIENT, calls may be pipelined and responses matched by serial.

use super::binary::Reader;
use super::frame::{encode_frame, FrameDecoder, FrameLimits};
use super::protocol::{
    decode_handshake_response, decode_response_body, encode_append_batch_params,
    encode_append_params, encode_call_head, encode_handshake_request, HandshakeMatch,
    HandshakeRequest, Status, APPEND, APPEND_BATCH,
};
use super::AvroError;
use crate::event::Event;

#[derive(Debug)]
enum Handshake {
    /// No call sent yet.
    Needed,
    /// The call `serial` carries the handshake; `name` and `params` are kept to resend it.
    InFlight {
        serial: u32,
        with_text: bool,
        name: &'static str,
        params: Vec<u8>,
    },
    Done,
}

/// One client connection; see the module docs.
#[derive(Debug)]
pub struct ClientConn {
    frames: FrameDecoder,
    next_serial: u32,
    handshake: Handshake,
}

/// What one response frame means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientItem {
    /// The answer to call `serial`: a status, or the server's error text.
    Response {
        serial: u32,
        result: Result<Status, String>,
    },
    /// The server did not know our protocol hash and did not handle call `replaces`; write
    /// `frame` (the same call with our protocol text, under `serial`) and wait for that.
    Resent {
        replaces: u32,
        serial: u32,
        frame: Vec<u8>,
    },
}

impl Default for ClientConn {
    fn default() -> Self {
        Self::new(FrameLimits::default())
    }
}

impl ClientConn {
    /// A fresh connection; serials start at 1 as in Avro Java.
    pub fn new(limits: FrameLimits) -> Self {
        ClientConn {
            frames: FrameDecoder::new(limits),
            next_serial: 1,
            handshake: Handshake::Needed,
        }
    }

    /// True once the server accepted the handshake.
    pub fn is_handshaken(&self) -> bool {
        matches!(self.handshake, Handshake::Done)
    }

    /// Encodes `append(event)`: returns its serial and the frame to write.
    pub fn append(&mut self, event: &Event) -> Result<(u32, Vec<u8>), AvroError> {
        let mut params = Vec::new();
        encode_append_params(&mut params, event);
        self.call(APPEND, params)
    }

    /// Encodes `appendBatch(events)`: returns its serial and the frame to write.
    pub fn append_batch(&mut self, events: &[Event]) -> Result<(u32, Vec<u8>), AvroError> {
        if matches!(self.handshake, Handshake::Done) {
            // The steady state: the parameters go straight into the frame, with no copy of
            // the batch kept for a resend (only the handshake's call may be resent).
            let serial = self.take_serial();
            let mut head = Vec::new();
            encode_call_head(&mut head, APPEND_BATCH);
            let mut out = Vec::new();
            out.extend_from_slice(&serial.to_be_bytes());
            out.extend_from_slice(&2u32.to_be_bytes());
            out.extend_from_slice(&(head.len() as u32).to_be_bytes());
            out.extend_from_slice(&head);
            let len_at = out.len();
            out.extend_from_slice(&[0; 4]);
            encode_append_batch_params(&mut out, events);
            let params_len = out.len() - len_at - 4;
            let Ok(params_len) = u32::try_from(params_len) else {
                return Err(AvroError::LengthOutOfRange {
                    what: "appendBatch parameters",
                    len: params_len as i64,
                    available: u64::from(u32::MAX),
                });
            };
            out[len_at..len_at + 4].copy_from_slice(&params_len.to_be_bytes());
            return Ok((serial, out));
        }
        let mut params = Vec::new();
        encode_append_batch_params(&mut params, events);
        self.call(APPEND_BATCH, params)
    }

    fn take_serial(&mut self) -> u32 {
        let s = self.next_serial;
        // Java's serial is an int counter that wraps; only uniqueness among calls in flight
        // matters.
        self.next_serial = self.next_serial.wrapping_add(1);
        s
    }

    fn call(&mut self, name: &'static str, params: Vec<u8>) -> Result<(u32, Vec<u8>), AvroError> {
        match &self.handshake {
            Handshake::InFlight { serial, .. } => {
                Err(AvroError::HandshakeInFlight { serial: *serial })
            }
            Handshake::Needed => Ok(self.send_handshake(name, params, false)),
            Handshake::Done => {
                let serial = self.take_serial();
                Ok((serial, encode_request(serial, None, name, &params)))
            }
        }
    }

    fn send_handshake(
        &mut self,
        name: &'static str,
        params: Vec<u8>,
        with_text: bool,
    ) -> (u32, Vec<u8>) {
        let serial = self.take_serial();
        let hs = HandshakeRequest::flume(with_text);
        let frame = encode_request(serial, Some(&hs), name, &params);
        self.handshake = Handshake::InFlight {
            serial,
            with_text,
            name,
            params,
        };
        (serial, frame)
    }

    /// Decodes `chunk`, appending one item per complete response to `out`. Any `Err` means
    /// the server is not speaking the protocol (or lost sync): close the connection. Items
    /// decoded before the error are in `out`.
    pub fn feed(&mut self, chunk: &[u8], out: &mut Vec<ClientItem>) -> Result<(), AvroError> {
        let mut frames = Vec::new();
        let res = self.frames.decode(chunk, &mut frames);
        for f in frames {
            let mut r = Reader::new(&f.payload);
            let serial = f.serial;
            match &self.handshake {
                Handshake::Done => {}
                Handshake::Needed => {
                    return Err(AvroError::UnexpectedResponse {
                        serial,
                        expected: None,
                    })
                }
                Handshake::InFlight {
                    serial: expected, ..
                } if *expected != serial => {
                    return Err(AvroError::UnexpectedResponse {
                        serial,
                        expected: Some(*expected),
                    })
                }
                Handshake::InFlight {
                    with_text,
                    name,
                    params,
                    ..
                } => {
                    let resp = decode_handshake_response(&mut r)?;
                    if resp.matched == HandshakeMatch::None {
                        if *with_text {
                            return Err(AvroError::HandshakeRefused);
                        }
                        // A clone, once per connection at most: simpler than moving out of
                        // the borrowed state.
                        let (name, params) = (*name, params.clone());
                        let (new, frame) = self.send_handshake(name, params, true);
                        out.push(ClientItem::Resent {
                            replaces: serial,
                            serial: new,
                            frame,
                        });
                        continue;
                    }
                    // BOTH or CLIENT: the server's protocol (if sent) is Flume's or it would
                    // not have known our hash; we keep decoding with our schema.
                    self.handshake = Handshake::Done;
                }
            }
            let result = decode_response_body(&mut r)?;
            out.push(ClientItem::Response { serial, result });
        }
        res.map_err(AvroError::from)
    }
}

/// A request frame as Avro Java lays it out: two buffers, (handshake +) meta + name, then the
/// parameters.
fn encode_request(
    serial: u32,
    handshake: Option<&HandshakeRequest>,
    name: &str,
    params: &[u8],
) -> Vec<u8> {
    let mut head = Vec::new();
    if let Some(h) = handshake {
        encode_handshake_request(&mut head, h);
    }
    encode_call_head(&mut head, name);
    let mut out = Vec::with_capacity(16 + head.len() + params.len());
    encode_frame(&mut out, serial, &[&head, params]);
    out
}
