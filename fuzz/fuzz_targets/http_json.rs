//! Fuzzes the http source's JSON handler (`flumen::source::http::json`): a request body in
//! each charset the handler reads, and the Content-Type parser.
//!
//! The first input byte picks the charset; the rest is the body. Decoding must never panic;
//! when it succeeds, re-encoding the events as JSON in the same charset must decode to the
//! same events (headers and body bytes), so nothing is lost or altered on the way in.

#![no_main]

use flumen::source::http::json::{decode, Charset};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let _ = Charset::from_content_type(Some(body));
    let charset = match pick % 3 {
        0 => Charset::Utf8,
        1 => Charset::Utf16,
        _ => Charset::Utf32,
    };
    let Ok(events) = decode(body, charset) else {
        return;
    };
    // Back to JSON (in UTF-8, whose body bytes are the text itself) and decoded again.
    let mut json = Vec::new();
    json.push(b'[');
    for (i, e) in events.iter().enumerate() {
        if i > 0 {
            json.push(b',');
        }
        let text = body_text(e.body(), charset);
        let v = serde_json::json!({ "headers": e.headers(), "body": text });
        json.extend_from_slice(v.to_string().as_bytes());
    }
    json.push(b']');
    let again = decode(&json, Charset::Utf8).expect("re-encoded events decode");
    assert_eq!(again.len(), events.len());
    for (a, b) in again.iter().zip(&events) {
        assert_eq!(a.headers(), b.headers());
        assert_eq!(a.body().as_ref(), body_text(b.body(), charset).as_bytes());
    }
});

/// The text of a body the handler encoded in `charset`.
fn body_text(body: &[u8], charset: Charset) -> String {
    match charset {
        Charset::Utf8 => String::from_utf8(body.to_vec()).expect("UTF-8 body"),
        Charset::Utf16 => {
            let units: Vec<u16> = body
                .get(2..)
                .unwrap_or_default()
                .chunks_exact(2)
                .map(|p| u16::from_be_bytes([p[0], p[1]]))
                .collect();
            String::from_utf16(&units).expect("UTF-16 body")
        }
        Charset::Utf32 => body
            .chunks_exact(4)
            .map(|q| char::from_u32(u32::from_be_bytes([q[0], q[1], q[2], q[3]])).expect("scalar"))
            .collect(),
    }
}
