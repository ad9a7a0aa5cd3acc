//! One server-side connection (what Flume's avro source runs per accepted socket), sans I/O.
//!
//! Feed it the bytes read from the socket; it yields a [`ServerItem`] per request frame: a
//! [`Call`] for the channel (answer it with its [`Reply`]), or an [`Answered`] request the
//! protocol layer already has the response bytes for (a handshake the client must repeat with
//! its protocol text, a ping, a malformed or unknown call).
//!
//! Handshake rules (Avro Java's `Responder`): the first request carries a `HandshakeRequest`.
//! A client we do not know (its hash is not Flume's and it sent no protocol text) gets NONE
//! with our protocol and hash, and its call is not handled; the connection stays
//! un-handshaken. Otherwise the answer is BOTH when the client guessed our hash, else CLIENT
//! (with our protocol and hash), and later requests carry no handshake. Unlike Java we decode
//! every client with our own schema: a client sending other protocol text is taken at its
//! word that it is AvroSourceProtocol, and bytes that do not fit are refused per call.
//!
//! Two refusals end the connection (unlike Java, which keeps it): a call of a message
//! AvroSourceProtocol does not have, and an unknown handshake again after our NONE. Both mean
//! the peer speaks another protocol, so every later request would be refused too, and closing
//! frees the connection slot. They are still answered first, so the peer can see why.

use super::binary::Reader;
use super::frame::{encode_frame, Frame, FrameDecoder, FrameLimits};
use super::protocol::{
    decode_call, decode_handshake_request, encode_empty_meta, encode_handshake_response,
    encode_response_payload, CallBody, HandshakeMatch, HandshakeResponse, Message, Status,
    PROTOCOL_MD5,
};
use super::AvroError;

/// One connection's decoding state; see the module docs.
#[derive(Debug)]
pub struct ServerConn {
    frames: FrameDecoder,
    /// Set by the first BOTH or CLIENT answer; later requests carry no handshake.
    handshaken: bool,
    /// A NONE answer was sent; a second unknown handshake ends the connection.
    answered_none: bool,
    /// Why the connection must close; every later `feed` returns it.
    fatal: Option<AvroError>,
}

/// What one request frame asks of the caller.
#[derive(Debug)]
pub enum ServerItem {
    /// Events for the channel.
    Call(Call),
    /// Already answered by the protocol layer: write `response`.
    Answered(Answered),
}

/// A decoded `append` or `appendBatch`.
#[derive(Debug)]
pub struct Call {
    pub message: Message,
    /// How to answer it.
    pub reply: Reply,
}

/// The response half of a call: its serial and the handshake answer the response must start
/// with (on a connection's first call). Responses may be sent in any order; the client matches
/// them by serial.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    serial: u32,
    handshake: Option<HandshakeResponse>,
}

/// A request answered without the caller: its serial, the response frame to write, and why.
#[derive(Debug)]
pub struct Answered {
    pub serial: u32,
    pub response: Vec<u8>,
    pub reason: AnswerReason,
}

/// Why a request was answered by the protocol layer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AnswerReason {
    /// Handshake NONE: the client does not use Flume's protocol hash and sent no protocol
    /// text; it will resend with the text.
    HandshakeNone,
    /// An Avro handshake ping (empty message name).
    Ping,
    /// A malformed request: answered with an error response naming the problem. Worth a log
    /// line with the peer address.
    Refused(AvroError),
    /// Answered (an error response, or NONE again), and the connection must now close: `feed`
    /// returns this error too, so the caller logs it once, when it closes.
    Closing(AvroError),
}

impl Reply {
    /// The request serial this answers.
    pub fn serial(&self) -> u32 {
        self.serial
    }

    /// The response frame returning `status` (OK, or FAILED when the channel refused).
    pub fn status(&self, status: Status) -> Vec<u8> {
        encode_response(self.serial, self.handshake.as_ref(), Ok(status))
    }

    /// The response frame raising a remote error with `message` (Avro's system error; the
    /// Java client throws an `AvroRemoteException` carrying it).
    pub fn error(&self, message: &str) -> Vec<u8> {
        encode_response(self.serial, self.handshake.as_ref(), Err(message))
    }
}

/// A response frame as Avro Java lays it out: three buffers, handshake (empty when none), call
/// meta, payload.
fn encode_response(
    serial: u32,
    handshake: Option<&HandshakeResponse>,
    result: Result<Status, &str>,
) -> Vec<u8> {
    let mut hs = Vec::new();
    if let Some(h) = handshake {
        encode_handshake_response(&mut hs, h);
    }
    let mut meta = Vec::new();
    encode_empty_meta(&mut meta);
    let mut payload = Vec::new();
    encode_response_payload(&mut payload, result);
    let mut out = Vec::with_capacity(8 + 12 + hs.len() + meta.len() + payload.len());
    encode_frame(&mut out, serial, &[&hs, &meta, &payload]);
    out
}

impl Default for ServerConn {
    fn default() -> Self {
        Self::new(FrameLimits::default())
    }
}

impl ServerConn {
    /// A fresh connection (no handshake yet).
    pub fn new(limits: FrameLimits) -> Self {
        ServerConn {
            frames: FrameDecoder::new(limits),
            handshaken: false,
            answered_none: false,
            fatal: None,
        }
    }

    /// True once a handshake was accepted on this connection.
    pub fn is_handshaken(&self) -> bool {
        self.handshaken
    }

    /// True when no partial request is buffered (a close here is clean).
    pub fn is_idle(&self) -> bool {
        self.frames.is_idle()
    }

    /// Decodes `chunk`, appending one item per complete request to `out`. An `Err` means the
    /// connection must close (a framing error, or a [`AnswerReason::Closing`] refusal): items
    /// for the frames before it are still in `out` (answer them if you like; the last one may
    /// be the refusal itself), then close; every later call fails the same way.
    pub fn feed(&mut self, chunk: &[u8], out: &mut Vec<ServerItem>) -> Result<(), AvroError> {
        if let Some(e) = &self.fatal {
            return Err(e.clone());
        }
        let mut frames = Vec::new();
        let res = self.frames.decode(chunk, &mut frames);
        for f in frames {
            out.push(self.handle(f));
            if let Some(e) = &self.fatal {
                // Requests after the one that ends the connection are not answered.
                return Err(e.clone());
            }
        }
        res.map_err(AvroError::from)
    }

    fn handle(&mut self, frame: Frame) -> ServerItem {
        let serial = frame.serial;
        let mut r = Reader::new(&frame.payload);
        let mut handshake = None;
        if !self.handshaken {
            let mut req_hash = [0u8; 16];
            let answer = match decode_handshake_request(&mut r) {
                Ok(req) => {
                    req_hash = req.client_hash;
                    let known = if req.client_hash == PROTOCOL_MD5 {
                        Ok(true)
                    } else if let Some(text) = &req.client_protocol {
                        check_protocol_text(text).map(|()| true)
                    } else {
                        Ok(false)
                    };
                    known.map(|known| match (known, req.server_hash == PROTOCOL_MD5) {
                        (false, _) => HandshakeMatch::None,
                        (true, true) => HandshakeMatch::Both,
                        (true, false) => HandshakeMatch::Client,
                    })
                }
                Err(e) => Err(e),
            };
            match answer {
                // As in Java, a handshake that does not decode is answered without one and
                // the connection stays un-handshaken.
                Err(e) => return refused(serial, None, e),
                Ok(HandshakeMatch::None) => {
                    let reason = if self.answered_none {
                        let e = AvroError::UnknownClientProtocol {
                            hash: hex(&req_hash),
                            ours: hex(&PROTOCOL_MD5),
                        };
                        self.fatal = Some(e.clone());
                        AnswerReason::Closing(e)
                    } else {
                        self.answered_none = true;
                        AnswerReason::HandshakeNone
                    };
                    let mut hs = Vec::new();
                    encode_handshake_response(
                        &mut hs,
                        &HandshakeResponse::answer(HandshakeMatch::None),
                    );
                    let mut response = Vec::with_capacity(hs.len() + 12);
                    encode_frame(&mut response, serial, &[&hs]);
                    return ServerItem::Answered(Answered {
                        serial,
                        response,
                        reason,
                    });
                }
                Ok(m) => {
                    // IMPORTANT: the connection counts as handshaken from here on, even if the
                    // call below is refused: Java does the same, and the client, having read
                    // a BOTH/CLIENT answer, will send no second handshake.
                    self.handshaken = true;
                    handshake = Some(HandshakeResponse::answer(m));
                }
            }
        }
        match decode_call(&mut r) {
            Ok(CallBody::Call(message)) => ServerItem::Call(Call {
                message,
                reply: Reply { serial, handshake },
            }),
            Ok(CallBody::Ping) => {
                let mut hs = Vec::new();
                if let Some(h) = &handshake {
                    encode_handshake_response(&mut hs, h);
                }
                let mut response = Vec::with_capacity(hs.len() + 12);
                encode_frame(&mut response, serial, &[&hs]);
                ServerItem::Answered(Answered {
                    serial,
                    response,
                    reason: AnswerReason::Ping,
                })
            }
            Err(e @ AvroError::UnknownMessage { .. }) => {
                self.fatal = Some(e.clone());
                let response = encode_response(serial, handshake.as_ref(), Err(&e.to_string()));
                ServerItem::Answered(Answered {
                    serial,
                    response,
                    reason: AnswerReason::Closing(e),
                })
            }
            Err(e) => refused(serial, handshake.as_ref(), e),
        }
    }
}

/// A hash as lowercase hex, for messages.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn refused(serial: u32, handshake: Option<&HandshakeResponse>, e: AvroError) -> ServerItem {
    let response = encode_response(serial, handshake, Err(&e.to_string()));
    ServerItem::Answered(Answered {
        serial,
        response,
        reason: AnswerReason::Refused(e),
    })
}

/// Java parses a client's protocol text and fails the request when it does not parse; we
/// only check that it is a JSON object naming a protocol, since we decode with our schema.
fn check_protocol_text(text: &str) -> Result<(), AvroError> {
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(v) if v.get("protocol").is_some() => Ok(()),
        Ok(_) => Err(AvroError::BadClientProtocol {
            detail: "no \"protocol\" field".into(),
        }),
        Err(e) => Err(AvroError::BadClientProtocol {
            detail: e.to_string(),
        }),
    }
}
