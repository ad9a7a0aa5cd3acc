//! Fuzzes the Avro RPC handshake and the client side of Flume's Avro protocol
//! (`flumen::avro::ClientConn`, used by the avro sink), which `avro_frame` does not reach:
//! `avro_frame` feeds the server, whose first frame is a handshake request, so it covers
//! request decoding; this target covers the handshake *response* and call responses as the
//! client reads them, plus both handshake records decoded directly.
//!
//! The first input byte picks a chunk size. The rest is:
//! - decoded as a `HandshakeRequest` and as a `HandshakeResponse`: whatever decodes must
//!   re-encode to the bytes it was read from and decode again to an equal value;
//! - fed, in chunks, to a client whose first call (with its handshake) is in flight, as the
//!   server's byte stream;
//! - the payload of one frame answering that first call, and the payload of a frame answering
//!   a second call after a valid `BOTH` handshake response (so `decode_response_body` is
//!   reached without the fuzzer building the handshake).
//!
//! No panic; a resent call is a frame the server side decodes as one call carrying the
//! protocol text; responses name the serial the client is waiting for.

#![no_main]

use bytes::Bytes;
use flumen::avro::binary::Reader;
use flumen::avro::frame::encode_frame;
use flumen::avro::protocol::{
    decode_handshake_request, decode_handshake_response, encode_empty_meta,
    encode_handshake_request, encode_handshake_response, encode_response_payload, HandshakeMatch,
    HandshakeResponse,
};
use flumen::avro::{ClientConn, ClientItem, FrameLimits, ServerConn, ServerItem, Status};
use flumen::Event;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&s, rest)) = data.split_first() else {
        return;
    };
    let step = usize::from(s).max(1);
    records(rest);

    let limits = FrameLimits {
        max_buffers: 64,
        max_buffer_bytes: 4096,
        max_frame_bytes: 8192,
    };
    let event = Event::new(b"body".to_vec());

    // The input as the whole server stream.
    let mut client = ClientConn::new(limits);
    let (first, _) = client.append(&event).expect("a fresh client encodes");
    let mut items = Vec::new();
    for chunk in rest.chunks(step) {
        if client.feed(chunk, &mut items).is_err() {
            break;
        }
    }
    check_items(&items, first);

    // The input as the payload of the frame answering the first call.
    let mut client = ClientConn::new(limits);
    let (first, _) = client.append_batch(&[event.clone()]).expect("encodes");
    let mut frame = Vec::new();
    encode_frame(&mut frame, first, &[rest]);
    let mut items = Vec::new();
    let _ = client.feed(&frame, &mut items);
    check_items(&items, first);

    // The input as the answer to a second call, after a valid handshake.
    let mut client = ClientConn::new(limits);
    let (first, _) = client.append(&event).expect("encodes");
    let mut ok = Vec::new();
    encode_handshake_response(&mut ok, &HandshakeResponse::answer(HandshakeMatch::Both));
    encode_empty_meta(&mut ok);
    encode_response_payload(&mut ok, Ok(Status::Ok));
    let mut frame = Vec::new();
    encode_frame(&mut frame, first, &[&ok]);
    let mut items = Vec::new();
    client.feed(&frame, &mut items).expect("a BOTH answer");
    assert!(client.is_handshaken());
    let (second, _) = client.append_batch(&[event]).expect("encodes");
    let mut frame = Vec::new();
    encode_frame(&mut frame, second, &[rest]);
    items.clear();
    if client.feed(&frame, &mut items).is_ok() {
        assert!(
            matches!(items.as_slice(), [ClientItem::Response { serial, .. }] if *serial == second),
            "one response to call {second}: {items:?}"
        );
    }
});

/// Both handshake records, straight from the bytes.
fn records(rest: &[u8]) {
    let bytes = Bytes::copy_from_slice(rest);
    let mut r = Reader::new(&bytes);
    if let Ok(req) = decode_handshake_request(&mut r) {
        let used = r.position();
        let mut enc = Vec::new();
        encode_handshake_request(&mut enc, &req);
        let enc = Bytes::from(enc);
        let again = decode_handshake_request(&mut Reader::new(&enc)).expect("re-encoded request");
        assert_eq!(again, req);
        // Avro's encoding of a value is not unique (a map in several blocks, a long with
        // redundant continuation bytes), so only the length is bounded.
        assert!(used <= rest.len());
    }
    let mut r = Reader::new(&bytes);
    if let Ok(resp) = decode_handshake_response(&mut r) {
        let mut enc = Vec::new();
        encode_handshake_response(&mut enc, &resp);
        let enc = Bytes::from(enc);
        let again = decode_handshake_response(&mut Reader::new(&enc)).expect("re-encoded response");
        assert_eq!(again, resp);
    }
}

fn check_items(items: &[ClientItem], first: u32) {
    for item in items {
        match item {
            ClientItem::Response { result, .. } => {
                if let Err(text) = result {
                    std::hint::black_box(text);
                }
            }
            ClientItem::Resent {
                replaces, frame, ..
            } => {
                assert_eq!(*replaces, first, "resent a call that was not in flight");
                let mut got = Vec::new();
                ServerConn::default()
                    .feed(frame, &mut got)
                    .expect("our resent frame decodes");
                assert!(
                    matches!(
                        got.as_slice(),
                        [ServerItem::Call(_)] | [ServerItem::Answered(_)]
                    ),
                    "resent frame gave {got:?}"
                );
            }
        }
    }
}
