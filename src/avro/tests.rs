//! Protocol-level tests: Java's bytes, the handshake cases, refusals, and client <-> server
//! round trips through arbitrary chunking.

use bytes::Bytes;
use proptest::prelude::*;

use super::binary::{write_long, write_string};
use super::frame::encode_frame;
use super::protocol::{
    encode_append_batch_params, encode_call_head, encode_handshake_request,
    encode_handshake_response, HandshakeMatch, HandshakeRequest, HandshakeResponse,
};
use super::*;
use crate::event::{Event, Headers};

/// What Flume 1.11 (Avro Java's NettyTransceiver) sends for
/// `appendBatch([{headers:{timestamp:"1"}, body:"hi"}])` as a connection's first call
/// (docs/FORMAT.md, "Flume Avro RPC").
fn java_first_request() -> Vec<u8> {
    let mut head = Vec::new();
    head.extend_from_slice(&PROTOCOL_MD5);
    head.push(0x00); // clientProtocol: null
    head.extend_from_slice(&PROTOCOL_MD5);
    head.extend_from_slice(&[0x02, 0x00]); // meta: map branch, empty map
    head.push(0x00); // call meta: empty
    head.push(0x16); // "appendBatch", 11 bytes
    head.extend_from_slice(b"appendBatch");
    assert_eq!(head.len(), 0x30);
    let mut params = vec![0x02, 0x02, 0x12];
    params.extend_from_slice(b"timestamp");
    params.extend_from_slice(&[0x02, b'1', 0x00, 0x04, b'h', b'i', 0x00]);
    assert_eq!(params.len(), 0x13);
    let mut out = vec![0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 0x30];
    out.extend_from_slice(&head);
    out.extend_from_slice(&[0, 0, 0, 0x13]);
    out.extend_from_slice(&params);
    out
}

fn java_event() -> Event {
    let mut h = Headers::new();
    h.insert("timestamp".into(), "1".into());
    Event::with_headers(h, "hi")
}

fn feed_server(conn: &mut ServerConn, bytes: &[u8]) -> Vec<ServerItem> {
    let mut out = Vec::new();
    conn.feed(bytes, &mut out).expect("framing");
    out
}

fn feed_client(conn: &mut ClientConn, bytes: &[u8]) -> Vec<ClientItem> {
    let mut out = Vec::new();
    conn.feed(bytes, &mut out).expect("client feed");
    out
}

fn one_call(items: Vec<ServerItem>) -> Call {
    match <[ServerItem; 1]>::try_from(items) {
        Ok([ServerItem::Call(c)]) => c,
        other => panic!("expected one call, got {other:?}"),
    }
}

fn one_answer(items: Vec<ServerItem>) -> Answered {
    match <[ServerItem; 1]>::try_from(items) {
        Ok([ServerItem::Answered(a)]) => a,
        other => panic!("expected one answered request, got {other:?}"),
    }
}

/// A first request with an arbitrary handshake and an `append` of an empty event.
fn request_with(hs: &HandshakeRequest, serial: u32) -> Vec<u8> {
    let mut head = Vec::new();
    encode_handshake_request(&mut head, hs);
    head.extend_from_slice(&[0x00, 0x0c]);
    head.extend_from_slice(b"append");
    let mut out = Vec::new();
    encode_frame(&mut out, serial, &[&head, &[0x00, 0x00]]);
    out
}

#[test]
fn java_request_bytes_decode_and_our_response_matches_java() {
    let mut conn = ServerConn::default();
    let call = one_call(feed_server(&mut conn, &java_first_request()));
    assert!(conn.is_handshaken());
    assert_eq!(call.reply.serial(), 1);
    assert_eq!(call.message.clone().into_events(), vec![java_event()]);
    // serial 1, 3 buffers: handshake BOTH (00 00 00 00), empty meta (00), no error + OK.
    assert_eq!(
        call.reply.status(Status::Ok),
        [0, 0, 0, 1, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 2, 0, 0]
    );
    // The next call carries no handshake, and neither does its response (first buffer empty).
    let mut client = ClientConn::default();
    let _ = client.append_batch(&[java_event()]).expect("first call");
    feed_client(&mut client, &call.reply.status(Status::Ok));
    let (serial, frame) = client.append(&Event::new("x")).expect("second call");
    assert_eq!(serial, 2);
    let call = one_call(feed_server(&mut conn, &frame));
    assert_eq!(
        call.reply.status(Status::Failed),
        [0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 2, 0, 2]
    );
}

#[test]
fn our_client_sends_javas_bytes() {
    let mut client = ClientConn::default();
    let (serial, frame) = client.append_batch(&[java_event()]).expect("call");
    assert_eq!(serial, 1);
    assert_eq!(frame, java_first_request());
    // A second call before the handshake's answer would desynchronise the server.
    assert_eq!(
        client.append(&java_event()),
        Err(AvroError::HandshakeInFlight { serial: 1 })
    );
}

#[test]
fn steady_state_batches_are_framed_as_the_general_encoder_does() {
    // Handshake done (BOTH), so appendBatch takes its direct path.
    let mut client = ClientConn::default();
    let (serial, _) = client.append(&Event::new("a")).expect("call");
    let mut both = Vec::new();
    encode_handshake_response(&mut both, &HandshakeResponse::answer(HandshakeMatch::Both));
    let mut resp = Vec::new();
    encode_frame(&mut resp, serial, &[&both, &[0x00], &[0x00, 0x00]]);
    feed_client(&mut client, &resp);
    assert!(client.is_handshaken());
    for events in [
        vec![java_event(), Event::new(vec![7u8; 3000]), Event::new("")],
        vec![],
    ] {
        let (serial, frame) = client.append_batch(&events).expect("call");
        let mut params = Vec::new();
        encode_append_batch_params(&mut params, &events);
        let mut head = Vec::new();
        encode_call_head(&mut head, "appendBatch");
        let mut want = Vec::new();
        encode_frame(&mut want, serial, &[&head, &params]);
        assert_eq!(frame, want);
    }
}

#[test]
fn handshake_none_then_retry_with_text() {
    let other = [7u8; 16];
    let mut conn = ServerConn::default();
    let hs = HandshakeRequest {
        client_hash: other,
        client_protocol: None,
        server_hash: PROTOCOL_MD5,
        meta: None,
    };
    let a = one_answer(feed_server(&mut conn, &request_with(&hs, 1)));
    assert_eq!(a.reason, AnswerReason::HandshakeNone);
    assert!(!conn.is_handshaken());
    // One buffer: NONE (04), our protocol, our hash, null meta.
    let mut hs_bytes = vec![0x04, 0x02];
    write_string(&mut hs_bytes, PROTOCOL_JSON);
    hs_bytes.push(0x02);
    hs_bytes.extend_from_slice(&PROTOCOL_MD5);
    hs_bytes.push(0x00);
    let mut want = Vec::new();
    encode_frame(&mut want, 1, &[&hs_bytes]);
    assert_eq!(a.response, want);

    // The retry with protocol text is accepted: BOTH, since it guessed our hash.
    let retry = HandshakeRequest {
        client_protocol: Some(r#"{"protocol":"Other"}"#.into()),
        ..hs
    };
    let call = one_call(feed_server(&mut conn, &request_with(&retry, 2)));
    assert!(conn.is_handshaken());
    assert_eq!(call.message, Message::Append(AvroFlumeEvent::default()));
    let resp = call.reply.status(Status::Ok);
    assert_eq!(
        &resp[12..16],
        &[0, 0, 0, 0],
        "BOTH, no protocol, no hash, no meta"
    );
}

#[test]
fn handshake_client_when_server_hash_guess_is_wrong() {
    let mut conn = ServerConn::default();
    let hs = HandshakeRequest {
        server_hash: [9u8; 16],
        ..HandshakeRequest::flume(false)
    };
    let call = one_call(feed_server(&mut conn, &request_with(&hs, 5)));
    let mut want_hs = Vec::new();
    encode_handshake_response(
        &mut want_hs,
        &HandshakeResponse::answer(HandshakeMatch::Client),
    );
    assert_eq!(want_hs.first(), Some(&0x02));
    let mut want = Vec::new();
    encode_frame(&mut want, 5, &[&want_hs, &[0x00], &[0x00, 0x00]]);
    assert_eq!(call.reply.status(Status::Ok), want);
    // Our client accepts CLIENT as established.
    let mut client = ClientConn::default();
    let (serial, _) = client.append(&Event::new("a")).expect("call");
    let mut resp = Vec::new();
    encode_frame(&mut resp, serial, &[&want_hs, &[0x00], &[0x00, 0x00]]);
    assert_eq!(
        feed_client(&mut client, &resp),
        vec![ClientItem::Response {
            serial,
            result: Ok(Status::Ok)
        }]
    );
    assert!(client.is_handshaken());
}

#[test]
fn client_resends_with_text_on_none() {
    let mut client = ClientConn::default();
    let (serial, first) = client.append_batch(&[java_event()]).expect("call");
    let mut none = Vec::new();
    encode_handshake_response(&mut none, &HandshakeResponse::answer(HandshakeMatch::None));
    let mut resp = Vec::new();
    encode_frame(&mut resp, serial, &[&none]);
    let items = feed_client(&mut client, &resp);
    let [ClientItem::Resent {
        replaces,
        serial: new,
        frame,
    }] = <[ClientItem; 1]>::try_from(items).expect("one item")
    else {
        panic!("expected a resend");
    };
    assert_eq!((replaces, new), (1, 2));
    assert!(frame.len() > first.len() + PROTOCOL_JSON.len());
    // The resent frame carries the text and the same call; our server takes it.
    let mut conn = ServerConn::default();
    let call = one_call(feed_server(&mut conn, &frame));
    assert_eq!(call.message.into_events(), vec![java_event()]);
    // A second NONE, even with our text, is a refusal.
    let mut resp = Vec::new();
    encode_frame(&mut resp, 2, &[&none]);
    let mut out = Vec::new();
    assert_eq!(
        client.feed(&resp, &mut out),
        Err(AvroError::HandshakeRefused)
    );
}

#[test]
fn bad_protocol_text_is_refused_and_not_handshaken() {
    let mut conn = ServerConn::default();
    let hs = HandshakeRequest {
        client_hash: [1; 16],
        client_protocol: Some("not json".into()),
        server_hash: PROTOCOL_MD5,
        meta: None,
    };
    let a = one_answer(feed_server(&mut conn, &request_with(&hs, 1)));
    assert!(matches!(
        a.reason,
        AnswerReason::Refused(AvroError::BadClientProtocol { .. })
    ));
    assert!(!conn.is_handshaken());
    // The error response has an empty handshake buffer, as Java's does.
    assert_eq!(&a.response[..12], &[0, 0, 0, 1, 0, 0, 0, 3, 0, 0, 0, 0]);
}

#[test]
fn unknown_message_is_answered_by_name_and_then_closes_the_connection() {
    let mut conn = ServerConn::default();
    let mut head = Vec::new();
    encode_handshake_request(&mut head, &HandshakeRequest::flume(false));
    head.push(0x00);
    write_string(&mut head, "appendBatchX");
    let mut frame = Vec::new();
    encode_frame(&mut frame, 1, &[&head]);
    // A request right behind it in the same chunk is not answered: the peer speaks another
    // protocol.
    let mut client = ClientConn::default();
    let _ = client.append(&Event::new("x")).expect("call");
    let mut next = Vec::new();
    encode_frame(&mut next, 2, &[&head]);
    let mut bytes = frame.clone();
    bytes.extend_from_slice(&next);
    let mut items = Vec::new();
    let unknown = AvroError::UnknownMessage {
        name: "appendBatchX".into(),
    };
    assert_eq!(conn.feed(&bytes, &mut items), Err(unknown.clone()));
    let a = one_answer(items);
    assert_eq!(a.reason, AnswerReason::Closing(unknown.clone()));
    // The client sees the error text, after a BOTH handshake.
    let items = feed_client(&mut client, &a.response);
    let [ClientItem::Response {
        serial: 1,
        result: Err(msg),
    }] = <[ClientItem; 1]>::try_from(items).expect("one item")
    else {
        panic!("expected an error response");
    };
    assert!(msg.contains("\"appendBatchX\""), "{msg}");
    // Every later feed fails the same way.
    let mut items = Vec::new();
    assert_eq!(conn.feed(&next, &mut items), Err(unknown));
    assert!(items.is_empty());
}

#[test]
fn a_second_unknown_handshake_after_none_closes_the_connection() {
    let mut conn = ServerConn::default();
    let hs = HandshakeRequest {
        client_hash: [0xEE; 16],
        client_protocol: None,
        server_hash: [0xEE; 16],
        meta: None,
    };
    let a = one_answer(feed_server(&mut conn, &request_with(&hs, 1)));
    assert_eq!(a.reason, AnswerReason::HandshakeNone);
    let mut items = Vec::new();
    let err = conn
        .feed(&request_with(&hs, 2), &mut items)
        .expect_err("a second unknown handshake ends the connection");
    let msg = err.to_string();
    assert!(msg.contains(&"ee".repeat(16)), "{msg}");
    assert!(matches!(err, AvroError::UnknownClientProtocol { .. }));
    // Answered NONE again, so a client waiting on serial 2 is not left hanging.
    let a = one_answer(items);
    assert!(matches!(a.reason, AnswerReason::Closing(_)));
    assert_eq!(&a.response[..4], &2u32.to_be_bytes());
    assert!(!conn.is_handshaken());
}

#[test]
fn ping_is_answered_with_the_handshake_alone() {
    let mut conn = ServerConn::default();
    let mut head = Vec::new();
    encode_handshake_request(&mut head, &HandshakeRequest::flume(false));
    head.extend_from_slice(&[0x00, 0x00]);
    let mut frame = Vec::new();
    encode_frame(&mut frame, 3, &[&head]);
    let a = one_answer(feed_server(&mut conn, &frame));
    assert_eq!(a.reason, AnswerReason::Ping);
    assert_eq!(a.response, [0, 0, 0, 3, 0, 0, 0, 1, 0, 0, 0, 4, 0, 0, 0, 0]);
}

/// An `appendBatch` call after a handshake, with hand-written parameters.
fn batch_frame(params: &[u8]) -> Vec<u8> {
    let mut head = Vec::new();
    encode_handshake_request(&mut head, &HandshakeRequest::flume(false));
    head.push(0x00);
    write_string(&mut head, "appendBatch");
    let mut frame = Vec::new();
    encode_frame(&mut frame, 1, &[&head, params]);
    frame
}

#[test]
fn negative_block_counts_decode() {
    // Array block of -1 item (byte size 12), whose headers map is a block of -1 entry (size
    // 4): {a: "b"}, body "xy"; then an empty positive block... then the end.
    let mut p = Vec::new();
    write_long(&mut p, -1);
    write_long(&mut p, 12);
    write_long(&mut p, -1);
    write_long(&mut p, 4);
    write_string(&mut p, "a");
    write_string(&mut p, "b");
    p.push(0x00);
    write_string(&mut p, "xy");
    p.push(0x00);
    let call = one_call(feed_server(&mut ServerConn::default(), &batch_frame(&p)));
    let mut h = Headers::new();
    h.insert("a".into(), "b".into());
    assert_eq!(
        call.message.into_events(),
        vec![Event::with_headers(h, "xy")]
    );
}

#[test]
fn huge_counts_and_lengths_are_refused_without_allocating() {
    for params in [
        // 2^40 events declared in 2 bytes.
        {
            let mut p = Vec::new();
            write_long(&mut p, 1 << 40);
            p
        },
        // One event whose body declares i64::MAX bytes.
        {
            let mut p = vec![0x02, 0x00];
            write_long(&mut p, i64::MAX);
            p
        },
        // A header map declaring -(2^62) entries.
        {
            let mut p = vec![0x02];
            write_long(&mut p, -(1 << 62));
            write_long(&mut p, 0);
            p
        },
    ] {
        let a = one_answer(feed_server(
            &mut ServerConn::default(),
            &batch_frame(&params),
        ));
        assert!(
            matches!(
                a.reason,
                AnswerReason::Refused(
                    AvroError::CountOutOfRange { .. } | AvroError::LengthOutOfRange { .. }
                )
            ),
            "{:?}",
            a.reason
        );
    }
}

#[test]
fn trailing_bytes_and_truncation_are_refused() {
    let a = one_answer(feed_server(
        &mut ServerConn::default(),
        &batch_frame(&[0x00, 0x00]),
    ));
    assert_eq!(
        a.reason,
        AnswerReason::Refused(AvroError::TrailingBytes {
            what: "request parameters",
            extra: 1
        })
    );
    let a = one_answer(feed_server(
        &mut ServerConn::default(),
        &batch_frame(&[0x02, 0x00, 0x00]),
    ));
    assert!(matches!(
        a.reason,
        AnswerReason::Refused(AvroError::Truncated { .. })
    ));
}

#[test]
fn framing_error_is_fatal_and_named() {
    let mut conn = ServerConn::default();
    let mut bytes = Vec::new();
    encode_frame(&mut bytes, 1, &[b"\x00"]);
    bytes.extend_from_slice(&[0, 0, 0, 2, 0x7f, 0xff, 0xff, 0xff]);
    let mut out = Vec::new();
    let err = conn.feed(&bytes, &mut out).expect_err("refused");
    assert_eq!(out.len(), 1, "the frame before the error is still answered");
    assert_eq!(
        err.to_string().split(':').next(),
        Some("frame 2 declares 2147483647 buffers, limit 10000")
    );
}

#[test]
fn protocol_json_is_flumes_protocol() {
    let v: serde_json::Value = serde_json::from_str(PROTOCOL_JSON).expect("valid JSON");
    assert_eq!(v["protocol"], "AvroSourceProtocol");
    assert_eq!(v["namespace"], "org.apache.flume.source.avro");
    assert!(v["messages"]["append"].is_object());
    assert!(v["messages"]["appendBatch"].is_object());
    assert!(v["doc"]
        .as_str()
        .is_some_and(|d| d.starts_with("* Licensed to the Apache")));
}

#[test]
fn invalid_utf8_header_is_replaced_like_flume() {
    let p = [0x02, 0x02, 0x02, 0xff, 0x02, b'v', 0x00, 0x00, 0x00];
    let call = one_call(feed_server(&mut ServerConn::default(), &batch_frame(&p)));
    assert_eq!(call.message.into_events()[0].header("\u{fffd}"), Some("v"));
}

fn arb_event() -> impl Strategy<Value = Event> {
    (
        proptest::collection::btree_map(".{0,8}", ".{0,8}", 0..4),
        proptest::collection::vec(any::<u8>(), 0..64),
    )
        .prop_map(|(h, b)| Event::with_headers(h, Bytes::from(b)))
}

fn chunked(bytes: &[u8], step: usize) -> Vec<&[u8]> {
    bytes.chunks(step.max(1)).collect()
}

proptest! {
    /// Client encoder -> server decoder (any chunking) -> server response -> client decoder.
    #[test]
    fn round_trip(
        calls in proptest::collection::vec(
            (proptest::collection::vec(arb_event(), 0..5), any::<bool>(), 0u8..3), 1..5),
        step in 1usize..50,
    ) {
        let mut client = ClientConn::default();
        let mut server = ServerConn::default();
        for (events, single, status) in calls {
            let status = match status { 0 => Status::Ok, 1 => Status::Failed, _ => Status::Unknown };
            let (serial, frame) = if single {
                let e = events.first().cloned().unwrap_or_default();
                let (s, f) = client.append(&e).expect("encode");
                (s, (f, vec![e]))
            } else {
                let (s, f) = client.append_batch(&events).expect("encode");
                (s, (f, events.clone()))
            };
            let (frame, want) = frame;
            let mut items = Vec::new();
            for c in chunked(&frame, step) {
                server.feed(c, &mut items).expect("framing");
            }
            let call = one_call(items);
            prop_assert_eq!(call.reply.serial(), serial);
            prop_assert_eq!(call.message.name(), if single { "append" } else { "appendBatch" });
            prop_assert_eq!(call.message.into_events(), want);
            let resp = call.reply.status(status);
            let mut got = Vec::new();
            for c in chunked(&resp, step) {
                client.feed(c, &mut got).expect("client");
            }
            prop_assert_eq!(got, vec![ClientItem::Response { serial, result: Ok(status) }]);
        }
    }

    /// Arbitrary bytes never panic the server, and a refused call still gets a response
    /// that our client side can frame.
    #[test]
    fn arbitrary_bytes_never_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..300),
        step in 1usize..40,
    ) {
        let mut conn = ServerConn::default();
        let mut items = Vec::new();
        for c in chunked(&bytes, step) {
            if conn.feed(c, &mut items).is_err() {
                break;
            }
        }
        // Also behind a valid handshake, so the call decoder is reached.
        let mut head = Vec::new();
        encode_handshake_request(&mut head, &HandshakeRequest::flume(false));
        head.extend_from_slice(&bytes);
        let mut frame = Vec::new();
        encode_frame(&mut frame, 1, &[&head]);
        let _ = ServerConn::default().feed(&frame, &mut items);
        for item in items {
            let response = match item {
                ServerItem::Call(c) => c.reply.status(Status::Ok),
                ServerItem::Answered(a) => a.response,
            };
            let mut dec = FrameDecoder::new(FrameLimits::default());
            let mut frames = Vec::new();
            prop_assert!(dec.decode(&response, &mut frames).is_ok());
            prop_assert_eq!(frames.len(), 1);
        }
    }
}
