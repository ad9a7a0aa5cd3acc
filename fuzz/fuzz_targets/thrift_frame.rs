//! Fuzzes Flume's Thrift RPC (`flumen::thrift`): framing, both protocols, call decoding on the
//! server side and reply decoding on the client side.
//!
//! The first input byte picks the protocol (low bit) and a chunk size; the rest is fed twice:
//! as a raw byte stream in chunks of that size through the frame decoder (with a small frame
//! limit, so the limit path is reachable), and as the message of one frame (so the protocol
//! decoders are reached without the fuzzer having to find a valid length). Every refused call
//! must carry a reply that decodes as one frame, and an accepted call's events must survive a
//! client encode -> server decode round trip.

#![no_main]

use bytes::{Bytes, BytesMut};
use flumen::thrift::{
    decode_call, decode_reply, encode_append, encode_append_batch, FrameDecoder, Method,
    Protocol, Request,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let proto = if first & 1 == 0 {
        Protocol::Compact
    } else {
        Protocol::Binary
    };
    let step = usize::from(first >> 1).max(1);

    let mut messages = Vec::new();
    let mut decoder = FrameDecoder::new(4096);
    let mut buf = BytesMut::new();
    'feed: for chunk in rest.chunks(step) {
        buf.extend_from_slice(chunk);
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(m)) => {
                    assert!(m.len() <= 4096, "a frame over the limit got through");
                    messages.push(m);
                }
                Ok(None) => break,
                Err(_) => break 'feed,
            }
        }
        assert!(buf.len() <= 4 + 4096 + step, "the buffer grew past one frame");
    }
    messages.push(Bytes::copy_from_slice(rest));

    for m in messages {
        let _ = decode_reply(proto, m.clone(), Method::AppendBatch, 1);
        match decode_call(proto, m) {
            Ok(Request::Call(call)) => round_trip(proto, call.method, &call.events),
            Ok(Request::Refused { response, .. }) => {
                let mut b = BytesMut::from(&response[..]);
                let frame = FrameDecoder::new(u32::MAX >> 1)
                    .decode(&mut b)
                    .expect("our reply frames decode");
                assert!(frame.is_some() && b.is_empty(), "one reply frame exactly");
            }
            Err(_) => {}
        }
    }
});

/// Whatever the server accepted, our client re-encodes and the server decodes back the same.
fn round_trip(proto: Protocol, method: Method, events: &[flumen::Event]) {
    let frame = match (method, events) {
        (Method::Append, [e]) => encode_append(proto, 3, e),
        (Method::Append, _) => panic!("append decoded to {} events", events.len()),
        (Method::AppendBatch, _) => encode_append_batch(proto, 3, events),
    }
    .expect("our encoder frames what we decoded");
    let mut b = BytesMut::from(&frame[..]);
    let m = FrameDecoder::new(u32::MAX >> 1)
        .decode(&mut b)
        .expect("our frame decodes")
        .expect("a whole frame");
    match decode_call(proto, m) {
        Ok(Request::Call(c)) => assert_eq!(c.events, events),
        other => panic!("round trip produced {other:?}"),
    }
}
