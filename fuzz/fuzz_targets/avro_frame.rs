//! Fuzzes the Flume Avro RPC server side (`flumen::avro::ServerConn`): Netty framing, the
//! handshake, and call decoding.
//!
//! The first input byte picks a chunk size; the rest is fed twice: as a raw byte stream in
//! chunks of that size (framing and handshake), and as the body of one valid frame behind a
//! valid Flume handshake (so the call decoder is reached without the fuzzer having to find the
//! MD5). Every item must yield a response frame that decodes as exactly one frame, and an
//! accepted call's events must survive a client encode -> server decode round trip.

#![no_main]

use flumen::avro::frame::encode_frame;
use flumen::avro::protocol::{encode_handshake_request, HandshakeRequest};
use flumen::avro::{
    ClientConn, FrameDecoder, FrameLimits, Message, ServerConn, ServerItem, Status,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (step, rest) = match data.split_first() {
        Some((&s, rest)) => (usize::from(s).max(1), rest),
        None => return,
    };
    // Small limits so that the limit paths are reachable with small inputs.
    let limits = FrameLimits {
        max_buffers: 64,
        max_buffer_bytes: 4096,
        max_frame_bytes: 8192,
    };
    let mut items = Vec::new();
    let mut conn = ServerConn::new(limits);
    for chunk in rest.chunks(step) {
        if conn.feed(chunk, &mut items).is_err() {
            break;
        }
    }
    let mut head = Vec::new();
    encode_handshake_request(&mut head, &HandshakeRequest::flume(false));
    let mut frame = Vec::new();
    encode_frame(&mut frame, 1, &[&head, rest]);
    let _ = ServerConn::default().feed(&frame, &mut items);

    for item in items {
        let response = match item {
            ServerItem::Call(call) => {
                check_round_trip(&call.message);
                call.reply.status(Status::Ok)
            }
            ServerItem::Answered(a) => a.response,
        };
        let mut frames = Vec::new();
        FrameDecoder::new(FrameLimits::default())
            .decode(&response, &mut frames)
            .expect("our response frames decode");
        assert_eq!(frames.len(), 1, "one response frame per request");
    }
});

/// Whatever the server accepted, our client re-encodes and the server decodes back the same.
fn check_round_trip(message: &Message) {
    let events = message.clone().into_events();
    let mut client = ClientConn::default();
    let (_, frame) = match message {
        Message::Append(_) => match events.first() {
            Some(e) => client.append(e),
            None => return,
        },
        Message::AppendBatch(_) => client.append_batch(&events),
    }
    .expect("a fresh client encodes");
    let mut items = Vec::new();
    ServerConn::default()
        .feed(&frame, &mut items)
        .expect("our frame decodes");
    match items.as_slice() {
        [ServerItem::Call(c)] => assert_eq!(c.message.clone().into_events(), events),
        other => panic!("round trip produced {other:?}"),
    }
}
