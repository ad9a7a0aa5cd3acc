//! Fuzzes the syslog sources' sans-I/O parsers (`flumen::source::syslog`): the TCP framer
//! (newline or octet counting) over both cutters, syslogtcp's shaper and the multiport
//! parser, and a datagram.
//!
//! The first input byte picks a chunk size and the message limit; the rest is fed in chunks.
//! Whatever the input: no panic, no message longer than the limit, every message's bytes come
//! from the input, and each shaped event has the Facility/Severity headers (syslogtcp) or a
//! body no longer than its line (multiport).

#![no_main]

use flumen::source::syslog::config::Charset;
use flumen::source::syslog::frame::Framer;
use flumen::source::syslog::parse::{KeepFields, Shaper, Splitter};
use flumen::source::syslog::parse_multiport::{self, LineCutter};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&s, rest)) = data.split_first() else {
        return;
    };
    let step = usize::from(s & 0x3f).max(1);
    let max = usize::from(s >> 2).max(1) * 4;
    let now: jiff::Timestamp = "2026-06-15T12:00:00Z".parse().expect("now");
    let keep = if s & 1 == 0 {
        KeepFields::parse("none")
    } else {
        KeepFields::parse("timestamp hostname priority version")
    };
    let shaper = Shaper {
        keep: keep.clone(),
        tz: jiff::tz::TimeZone::UTC,
    };

    let mut raws = Vec::new();
    let mut framer = Framer::new(Splitter::new(max));
    for chunk in rest.chunks(step) {
        if framer.feed(chunk, &mut raws).is_err() {
            break;
        }
    }
    framer.finish(&mut raws);
    for raw in raws.drain(..) {
        assert!(raw.bytes.len() <= max.max(5), "message over the limit");
        let e = shaper.event(raw, now);
        assert!(e.header("Facility").is_some() && e.header("Severity").is_some());
    }

    let mut framer = Framer::new(LineCutter::new(max));
    for chunk in rest.chunks(step) {
        if framer.feed(chunk, &mut raws).is_err() {
            break;
        }
    }
    framer.finish(&mut raws);
    for raw in raws.drain(..) {
        assert!(raw.bytes.len() <= max, "line over the limit");
        let _ = parse_multiport::event(raw, Charset::Utf8, &keep, now);
    }

    Splitter::new(65536).frame(rest, true, &mut raws);
    for raw in raws.drain(..) {
        let _ = shaper.event(raw, now);
    }
});
