//! The Thrift layer against bytes written out by hand from the protocol specifications (and
//! checked against Flume's own client and server by the `thrift_flume` integration tests).

use bytes::{Bytes, BytesMut};

use super::frame::FrameDecoder;
use super::message::{encode_exception, APPEND_BATCH, PROTOCOL_ERROR, UNKNOWN_METHOD};
use super::protocol::{Protocol, Reader, MAX_DEPTH};
use super::*;
use crate::event::{Event, Headers};

fn event(headers: &[(&str, &str)], body: &[u8]) -> Event {
    let h: Headers = headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Event::with_headers(h, body.to_vec())
}

/// The message of a frame (its 4-byte length checked and dropped).
fn unframe(frame: &[u8]) -> Bytes {
    let mut buf = BytesMut::from(frame);
    let msg = FrameDecoder::new(DEFAULT_MAX_FRAME_BYTES)
        .decode(&mut buf)
        .expect("valid frame")
        .expect("a whole frame");
    assert!(buf.is_empty(), "one frame exactly");
    msg
}

/// `appendBatch([{headers {a: b}, body "x"}])`, seqid 1, in the compact protocol.
const COMPACT_BATCH: &[u8] = &[
    0x82, 0x21, 0x01, 0x0b, b'a', b'p', b'p', b'e', b'n', b'd', b'B', b'a', b't', b'c', b'h', 0x19,
    0x1c, // args field 1: list, 1 struct
    0x1b, 0x01, 0x88, 0x01, b'a', 0x01, b'b', // headers: map of 1 string -> string
    0x18, 0x01, b'x', // body
    0x00, 0x00,
];

/// The same call in the binary protocol (strict header).
const BINARY_BATCH: &[u8] = &[
    0x80, 0x01, 0x00, 0x01, 0, 0, 0, 11, b'a', b'p', b'p', b'e', b'n', b'd', b'B', b'a', b't',
    b'c', b'h', 0, 0, 0, 1, // seqid
    15, 0, 1, 12, 0, 0, 0, 1, // field 1: list of 1 struct
    13, 0, 1, 11, 11, 0, 0, 0, 1, 0, 0, 0, 1, b'a', 0, 0, 0, 1, b'b', // headers
    11, 0, 2, 0, 0, 0, 1, b'x', // body
    0, 0,
];

#[test]
fn encodes_append_batch_as_the_protocols_lay_it_out() {
    let e = event(&[("a", "b")], b"x");
    for (proto, want) in [
        (Protocol::Compact, COMPACT_BATCH),
        (Protocol::Binary, BINARY_BATCH),
    ] {
        let frame = encode_append_batch(proto, 1, std::slice::from_ref(&e)).expect("encode");
        assert_eq!(&frame[..4], &(want.len() as u32).to_be_bytes());
        assert_eq!(&frame[4..], want, "{proto:?}");
        match decode_call(proto, unframe(&frame)).expect("decode") {
            Request::Call(c) => {
                assert_eq!(c.method, Method::AppendBatch);
                assert_eq!(c.seqid, 1);
                assert_eq!(c.events, vec![e.clone()]);
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn reply_bytes_and_round_trip() {
    let r = encode_reply(Protocol::Compact, Method::AppendBatch, 1, Status::Ok);
    let mut want = vec![0x82, 0x41, 0x01, 0x0b];
    want.extend_from_slice(APPEND_BATCH.as_bytes());
    want.extend_from_slice(&[0x05, 0x00, 0x00, 0x00]);
    assert_eq!(&r[4..], &want[..]);
    for proto in [Protocol::Compact, Protocol::Binary] {
        for status in [Status::Ok, Status::Failed, Status::Error, Status::Unknown] {
            for (method, seqid) in [(Method::Append, 7), (Method::AppendBatch, -3)] {
                let frame = encode_reply(proto, method, seqid, status);
                assert_eq!(
                    decode_reply(proto, unframe(&frame), method, seqid),
                    Ok(Reply::Status(status))
                );
                // Another call's reply is refused: the connection is out of step.
                assert!(decode_reply(proto, unframe(&frame), method, seqid + 1).is_err());
            }
        }
        let ex = encode_exception(proto, "append", 2, UNKNOWN_METHOD, "no");
        assert_eq!(
            decode_reply(proto, unframe(&ex), Method::Append, 2),
            Ok(Reply::Exception {
                ex_type: UNKNOWN_METHOD,
                message: "no".into()
            })
        );
    }
}

#[test]
fn round_trips_every_shape_of_event() {
    let big = vec![0xffu8; 70_000];
    let many: Vec<(String, String)> = (0..20).map(|i| (format!("k{i}"), "é".repeat(i))).collect();
    let many: Vec<(&str, &str)> = many.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let events = [
        event(&[], b""),
        event(&[("", "")], &[0, 1, 2, 0xfe]),
        event(&many, &big),
    ];
    for proto in [Protocol::Compact, Protocol::Binary] {
        // 20 events: the compact list count no longer fits the header's nibble.
        let batch: Vec<Event> = events.iter().cycle().take(20).cloned().collect();
        let frame = encode_append_batch(proto, i32::MAX, &batch).expect("encode");
        let Ok(Request::Call(c)) = decode_call(proto, unframe(&frame)) else {
            panic!("decode");
        };
        assert_eq!((c.seqid, c.events), (i32::MAX, batch));
        let frame = encode_append(proto, 0, &events[2]).expect("encode");
        let Ok(Request::Call(c)) = decode_call(proto, unframe(&frame)) else {
            panic!("decode");
        };
        assert_eq!(c.method, Method::Append);
        assert_eq!(c.events, vec![events[2].clone()]);
    }
}

#[test]
fn unknown_fields_are_skipped_and_missing_required_ones_refused() {
    // append({headers {}, 3: list<map<i32,bool>>, 5: true, 9: struct{1: double}, body "z"})
    let mut m = vec![0x82, 0x21, 0x05, 0x06];
    m.extend_from_slice(b"append");
    m.extend_from_slice(&[0x1c]); // field 1: struct
    m.extend_from_slice(&[0x1b, 0x00]); // headers: empty map
    m.extend_from_slice(&[0x29, 0x2b, 0x01, 0x51, 0x02, 0x01, 0x00]); // 3: list of 2 maps
    m.extend_from_slice(&[0x21]); // 5: bool true (value in the header)
    m.extend_from_slice(&[0x4c, 0x17, 1, 2, 3, 4, 5, 6, 7, 8, 0x00]); // 9: struct{1: double}
    m.extend_from_slice(&[0x08, 0x04, 0x01, b'z']); // field 2 by its long form: body
    m.extend_from_slice(&[0x00, 0x00]);
    match decode_call(Protocol::Compact, Bytes::from(m)).expect("decode") {
        Request::Call(c) => assert_eq!(c.events, vec![event(&[], b"z")]),
        other => panic!("{other:?}"),
    }
    // No body: answered with a protocol error naming the field, the connection goes on.
    let mut m = vec![0x82, 0x21, 0x05, 0x06];
    m.extend_from_slice(b"append");
    m.extend_from_slice(&[0x1c, 0x1b, 0x00, 0x00, 0x00]);
    match decode_call(Protocol::Compact, Bytes::from(m)).expect("decode") {
        Request::Refused {
            error, response, ..
        } => {
            assert!(error.to_string().contains("body"), "{error}");
            let Ok(Reply::Exception { ex_type, .. }) =
                decode_reply(Protocol::Compact, unframe(&response), Method::Append, 5)
            else {
                panic!("an exception reply");
            };
            assert_eq!(ex_type, PROTOCOL_ERROR);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn unknown_method_is_answered_with_its_name_and_seqid() {
    let mut m = vec![0x82, 0x21, 0x09, 0x04];
    m.extend_from_slice(b"ping");
    m.push(0x00);
    match decode_call(Protocol::Compact, Bytes::from(m)).expect("decode") {
        Request::Refused {
            name,
            seqid,
            response,
            ..
        } => {
            assert_eq!((name.as_str(), seqid), ("ping", 9));
            let mut r = Reader::new(Protocol::Compact, unframe(&response));
            let h = r.message_begin().expect("header");
            assert_eq!((h.name.as_str(), h.seqid), ("ping", 9));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn lengths_and_counts_beyond_the_message_are_refused_before_allocating() {
    let header = |proto: Protocol| {
        let mut v = Vec::new();
        let mut w = protocol::Writer::new(proto, &mut v);
        w.message_begin("appendBatch", protocol::CALL, 1);
        v
    };
    // A list of 2^31-1 events in a few bytes.
    let mut m = header(Protocol::Compact);
    m.extend_from_slice(&[0x19, 0xfc, 0xff, 0xff, 0xff, 0xff, 0x07]);
    let Ok(Request::Refused { error, .. }) = decode_call(Protocol::Compact, Bytes::from(m)) else {
        panic!("refused");
    };
    assert!(
        matches!(error, ThriftError::CountOutOfRange { .. }),
        "{error}"
    );
    // A body of 2 GiB.
    let mut m = header(Protocol::Binary);
    m.extend_from_slice(&[15, 0, 1, 12, 0, 0, 0, 1, 11, 0, 2, 0x7f, 0xff, 0xff, 0xff]);
    let Ok(Request::Refused { error, .. }) = decode_call(Protocol::Binary, Bytes::from(m)) else {
        panic!("refused");
    };
    assert!(
        matches!(error, ThriftError::LengthOutOfRange { .. }),
        "{error}"
    );
    // A negative map count.
    let mut m = header(Protocol::Binary);
    m.extend_from_slice(&[
        15, 0, 1, 12, 0, 0, 0, 1, 13, 0, 1, 11, 11, 0xff, 0xff, 0xff, 0xff,
    ]);
    let Ok(Request::Refused { error, .. }) = decode_call(Protocol::Binary, Bytes::from(m)) else {
        panic!("refused");
    };
    assert!(
        matches!(error, ThriftError::CountOutOfRange { .. }),
        "{error}"
    );
}

#[test]
fn nesting_is_bounded() {
    // An unknown field nesting lists of lists far deeper than the limit.
    let mut m = vec![0x82, 0x21, 0x01, 0x06];
    m.extend_from_slice(b"append");
    m.push(0x39); // field 3: list
    m.extend(std::iter::repeat_n(0x19, 10_000)); // list of 1 list, ...
    let Ok(Request::Refused { error, .. }) = decode_call(Protocol::Compact, Bytes::from(m)) else {
        panic!("refused");
    };
    assert_eq!(error, ThriftError::TooDeep { limit: MAX_DEPTH });
}

#[test]
fn an_envelope_of_another_protocol_is_an_error() {
    let frame = encode_append_batch(Protocol::Binary, 1, &[event(&[], b"x")]).expect("encode");
    let e = decode_call(Protocol::Compact, unframe(&frame)).expect_err("binary is not compact");
    assert!(e.to_string().contains("same `protocol`"), "{e}");
    let frame = encode_append_batch(Protocol::Compact, 1, &[event(&[], b"x")]).expect("encode");
    assert!(decode_call(Protocol::Binary, unframe(&frame)).is_err());
}

#[test]
fn non_strict_binary_headers_are_read() {
    // Old Thrift clients: name length, name, type byte, seqid.
    let mut m = vec![0, 0, 0, 6];
    m.extend_from_slice(b"append");
    m.extend_from_slice(&[1, 0, 0, 0, 4]);
    m.extend_from_slice(&[
        12, 0, 1, 13, 0, 1, 11, 11, 0, 0, 0, 0, 11, 0, 2, 0, 0, 0, 0, 0, 0,
    ]);
    match decode_call(Protocol::Binary, Bytes::from(m)).expect("decode") {
        Request::Call(c) => {
            assert_eq!(c.seqid, 4);
            assert_eq!(c.events, vec![event(&[], b"")]);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn frame_lengths_are_checked_as_they_arrive() {
    let mut d = FrameDecoder::new(100);
    let mut buf = BytesMut::new();
    buf.extend_from_slice(&[0, 0]);
    assert_eq!(d.decode(&mut buf), Ok(None));
    assert_eq!(d.wanted(&buf), Ok(2));
    buf.extend_from_slice(&[0, 3, b'a']);
    assert_eq!(d.decode(&mut buf), Ok(None));
    assert_eq!(d.wanted(&buf), Ok(2));
    buf.extend_from_slice(b"bc\0\0\0\x01z");
    assert_eq!(d.decode(&mut buf), Ok(Some(Bytes::from_static(b"abc"))));
    assert_eq!(d.decode(&mut buf), Ok(Some(Bytes::from_static(b"z"))));
    assert_eq!(d.decode(&mut buf), Ok(None));
    assert!(frame::is_idle(&buf));

    // Over the limit: refused on the length alone, and the decoder stays failed.
    buf.extend_from_slice(&101u32.to_be_bytes());
    let e = d.decode(&mut buf).expect_err("too large");
    assert_eq!(
        e,
        FrameError::TooLarge {
            declared: 101,
            limit: 100
        }
    );
    assert_eq!(d.decode(&mut BytesMut::new()), Err(e));

    for bad in [[0u8, 0, 0, 0], [0x80, 0, 0, 0], [b'G', b'E', b'T', b' ']] {
        let mut d = FrameDecoder::new(DEFAULT_MAX_FRAME_BYTES);
        let mut buf = BytesMut::from(&bad[..]);
        assert!(d.decode(&mut buf).is_err(), "{bad:?}");
    }
}

mod props {
    use proptest::prelude::*;

    use super::*;

    fn arb_event() -> impl Strategy<Value = Event> {
        (
            proptest::collection::btree_map(".{0,8}", ".{0,8}", 0..4),
            proptest::collection::vec(any::<u8>(), 0..64),
        )
            .prop_map(|(h, b)| Event::with_headers(h, b))
    }

    fn arb_proto() -> impl Strategy<Value = Protocol> {
        prop_oneof![Just(Protocol::Compact), Just(Protocol::Binary)]
    }

    proptest! {
        /// Whatever the client encodes, the server decodes back the same events.
        #[test]
        fn calls_round_trip(
            proto in arb_proto(),
            seqid in any::<i32>(),
            events in proptest::collection::vec(arb_event(), 0..20),
        ) {
            let frame = encode_append_batch(proto, seqid, &events).expect("encode");
            match decode_call(proto, unframe(&frame)) {
                Ok(Request::Call(c)) => {
                    prop_assert_eq!(c.seqid, seqid);
                    prop_assert_eq!(c.events, events);
                }
                other => prop_assert!(false, "{:?}", other),
            }
        }

        /// Arbitrary bytes, and a valid call with bytes changed, never panic, and a refused
        /// call always carries one reply frame.
        #[test]
        fn damaged_calls_never_panic(
            proto in arb_proto(),
            events in proptest::collection::vec(arb_event(), 1..5),
            flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
            junk in proptest::collection::vec(any::<u8>(), 0..200),
        ) {
            let mut msg = encode_append_batch(proto, 1, &events).expect("encode")[4..].to_vec();
            for (at, b) in flips {
                let i = at % msg.len();
                msg[i] ^= b;
            }
            for m in [msg, junk] {
                let _ = decode_reply(proto, Bytes::from(m.clone()), Method::AppendBatch, 1);
                if let Ok(Request::Refused { response, .. }) = decode_call(proto, Bytes::from(m)) {
                    let _ = unframe(&response);
                }
            }
        }
    }
}
