//! The syslog message parser of `syslogtcp` and `syslogudp` (Flume's SyslogUtils), sans I/O:
//! bytes in, Flume-shaped events out.
//!
//! Two steps. [`Splitter`] cuts a byte stream into messages with Flume's state machine (a
//! message starts with `<`, its priority is one to three digits, a newline ends it, a message
//! reaching `eventSize` bytes is cut there and marked incomplete, the bytes after the cut start
//! the next message). [`Shaper`] turns one message into an event: headers `Facility`,
//! `Severity`, `priority`, `version`, `timestamp` (epoch milliseconds), `host` and
//! `flume.syslog.status`, and the body Flume leaves (the text after the host name, with the
//! `keepFields` prepended; the whole message when it matches neither RFC 5424 nor RFC 3164).
//! The two RFC patterns are Flume's regular expressions with Java's meaning of `\s`, `\w`,
//! `\d` and `.`, matched against the message decoded as UTF-8 with replacement characters,
//! as Flume decodes it.
//!
//! Invariants: no I/O, no panics on any input, memory bounded by `eventSize` per splitter.
//! Where flumen deliberately differs from Flume (docs/CONFIG.md, `syslogtcp`): no header is
//! carried from one message into the next; RFC 5424 offsets and fractions are honoured when
//! the stamp has a fraction; a year-less stamp gets the year that puts it at the latest
//! instant not more than a day ahead of now; a `-` field kept in the body is written `-`.

use std::sync::LazyLock;

use jiff::civil::DateTime;
use jiff::tz::{Offset, TimeZone};
use jiff::{Span, Timestamp};
use regex::Regex;

use crate::event::{Event, Headers};

/// Flume's `flume.syslog.status` header.
pub const STATUS: &str = "flume.syslog.status";
/// The status of a message whose priority is missing or malformed.
pub const INVALID: &str = "Invalid";
/// The status of a message cut at `eventSize`.
pub const INCOMPLETE: &str = "Incomplete";

/// Flume's `eventSize` default for syslogtcp.
pub const DEFAULT_EVENT_SIZE: usize = 2500;

/// One message as the splitter cut it, before parsing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Raw {
    /// The message bytes, newline excluded.
    pub bytes: Vec<u8>,
    /// The priority was missing or malformed (Flume's "bad event").
    pub bad: bool,
    /// The message reached `eventSize` and was cut there.
    pub incomplete: bool,
    /// The priority's digits (`bytes[1..1 + prio_len]`), meaningful when not `bad`.
    pub prio_len: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Start,
    Prio,
    Data,
}

/// Cuts bytes into messages as Flume's SyslogUtils does (see the module docs).
#[derive(Debug)]
pub struct Splitter {
    max: usize,
    mode: Mode,
    cur: Raw,
}

impl Splitter {
    /// A splitter cutting messages at `max` bytes (`eventSize`; at least 1).
    pub fn new(max: usize) -> Splitter {
        Splitter {
            max: max.max(1),
            mode: Mode::Start,
            cur: Raw::default(),
        }
    }

    /// Bytes of the message in progress (for bounding memory in tests).
    pub fn pending(&self) -> usize {
        self.cur.bytes.len()
    }

    /// Splits `input` (newline framing), appending each finished message to `out`. Bytes
    /// after the last newline stay pending.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<Raw>) {
        self.run(input, true, out);
    }

    /// Takes bytes in which a newline is data (inside an octet-counted frame).
    pub fn feed_unframed(&mut self, input: &[u8], out: &mut Vec<Raw>) {
        self.run(input, false, out);
    }

    /// The whole of one frame (an octet-counted frame, a datagram) as messages: newlines
    /// inside end messages only when `newline_ends` (a datagram, as Flume reads one); the end
    /// of the frame ends the last.
    pub fn frame(&mut self, input: &[u8], newline_ends: bool, out: &mut Vec<Raw>) {
        self.run(input, newline_ends, out);
        if let Some(r) = self.finish() {
            out.push(r);
        }
    }

    /// The message in progress, if any, ended by the end of input (a connection closed
    /// after an unterminated last line: Flume drops it, flumen keeps it).
    pub fn finish(&mut self) -> Option<Raw> {
        match self.mode {
            Mode::Start => None,
            Mode::Prio => {
                // `<` and maybe digits, then the end: Flume parses digits as a priority
                // (a message with no '>') and fails on none; flumen marks the latter invalid.
                if self.cur.prio_len == 0 {
                    self.cur.bad = true;
                }
                Some(self.take())
            }
            Mode::Data => Some(self.take()),
        }
    }

    fn take(&mut self) -> Raw {
        self.mode = Mode::Start;
        std::mem::take(&mut self.cur)
    }

    fn run(&mut self, mut input: &[u8], newline_ends: bool, out: &mut Vec<Raw>) {
        while let Some((&b, rest)) = input.split_first() {
            match self.mode {
                Mode::Start => {
                    input = rest;
                    if b == b'<' {
                        self.cur.bytes.push(b);
                        self.mode = Mode::Prio;
                    } else if b == b'\n' {
                        // Flume skips newlines between messages.
                    } else {
                        self.cur.bad = true;
                        self.cur.bytes.push(b);
                        self.mode = Mode::Data;
                        self.check_full(out);
                    }
                }
                Mode::Prio => {
                    input = rest;
                    self.cur.bytes.push(b);
                    if b == b'>' {
                        if self.cur.prio_len == 0 {
                            self.cur.bad = true;
                        }
                        self.mode = Mode::Data;
                    } else {
                        self.cur.prio_len += 1;
                        if !b.is_ascii_digit() || self.cur.prio_len > 3 {
                            // Flume counts the byte as a priority digit, then gives up on the
                            // priority: everything from here is data, newline included.
                            self.cur.bad = true;
                            self.mode = Mode::Data;
                        }
                    }
                    self.check_full(out);
                }
                Mode::Data => {
                    let room = self.max.saturating_sub(self.cur.bytes.len());
                    let window = &input[..input.len().min(room.max(1))];
                    let nl = if newline_ends {
                        memchr::memchr(b'\n', window)
                    } else {
                        None
                    };
                    match nl {
                        Some(i) => {
                            self.cur.bytes.extend_from_slice(&window[..i]);
                            input = &input[i + 1..];
                            out.push(self.take());
                        }
                        None => {
                            self.cur.bytes.extend_from_slice(window);
                            input = &input[window.len()..];
                            self.check_full(out);
                        }
                    }
                }
            }
        }
    }

    fn check_full(&mut self, out: &mut Vec<Raw>) {
        if self.mode == Mode::Data && self.cur.bytes.len() >= self.max {
            self.cur.incomplete = true;
            out.push(self.take());
        }
    }
}

/// Which parsed fields `keepFields` puts back in front of the body.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeepFields {
    /// `all` / `true`: the body is the whole message as received.
    pub all: bool,
    pub priority: bool,
    pub version: bool,
    pub timestamp: bool,
    pub hostname: bool,
}

impl KeepFields {
    /// Reads `keepFields` as Flume does: `none`/`false`, `all`/`true`, else every field name
    /// the value contains (case-insensitively, anywhere in it).
    pub fn parse(value: &str) -> KeepFields {
        let v = value.trim().to_ascii_lowercase();
        match v.as_str() {
            "none" | "false" => KeepFields::default(),
            "all" | "true" => KeepFields {
                all: true,
                ..KeepFields::default()
            },
            _ => KeepFields {
                all: false,
                priority: v.contains("priority"),
                version: v.contains("version"),
                timestamp: v.contains("timestamp"),
                hostname: v.contains("hostname"),
            },
        }
    }

    /// Flume's addFieldsToBody: `<pri>version timestamp hostname body`, each as sent.
    pub fn prefix(&self, f: &Fields<'_>, body: &str) -> String {
        let mut s = String::with_capacity(body.len() + 64);
        if self.priority {
            s.push('<');
            s.push_str(f.priority);
            s.push('>');
        }
        if self.version && !f.version.is_empty() {
            s.push_str(f.version);
            s.push(' ');
        }
        if self.timestamp {
            s.push_str(f.timestamp.unwrap_or("-"));
            s.push(' ');
        }
        if self.hostname {
            s.push_str(f.host.unwrap_or("-"));
            s.push(' ');
        }
        s.push_str(body);
        s
    }
}

/// The fields of one matched message, as sent.
#[derive(Clone, Copy, Debug)]
pub struct Fields<'a> {
    pub priority: &'a str,
    pub version: &'a str,
    pub timestamp: Option<&'a str>,
    pub host: Option<&'a str>,
}

// Java's classes, spelled out: `\s`, `\w` (ASCII), and `.` (anything but a line terminator).
macro_rules! java_pattern {
    ($($part:expr),* $(,)?) => {
        concat!($($part),*)
            .replace("S", r"[ \t\n\x0B\x0C\r]")
            .replace("W", "[A-Za-z0-9_]")
            .replace("DOT", r"[^\n\r\x{85}\x{2028}\x{2029}]")
    };
}

static RFC5424: LazyLock<Regex> = LazyLock::new(|| {
    let p = java_pattern!(
        r"\A<([0-9]{1,3})>([0-9]?)S?",
        r"(?:([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?(?:[+\-][0-9]{2}:[0-9]{2}|Z)?)|-)",
        r"S(?:(W[W.@\-]*)|-)S(DOT*)\z"
    );
    Regex::new(&p).expect("the RFC 5424 pattern is valid")
});

static RFC3164: LazyLock<Regex> = LazyLock::new(|| {
    let p = java_pattern!(
        r"\A<([0-9]{1,3})>(?:([0-9])?S?)",
        r"([A-Z][a-z][a-z]S{1,2}[0-9]{1,2}S[0-9]{2}:[0-9]{2}:[0-9]{2})",
        r"S(W[W.@\-]*)S(DOT*)\z"
    );
    Regex::new(&p).expect("the RFC 3164 pattern is valid")
});

/// How far ahead of now a year-less stamp may be before it is taken as last year's: a day
/// covers a sender in another time zone and clock skew.
const YEARLESS_AHEAD_MS: i64 = 24 * 3600 * 1000;

/// Turns messages into events (see the module docs).
#[derive(Clone, Debug)]
pub struct Shaper {
    pub keep: KeepFields,
    /// The zone of stamps that carry no offset (the agent's local zone, as Flume's JVM).
    pub tz: TimeZone,
}

impl Shaper {
    /// A shaper for `keep`, reading offset-less stamps in the system's zone.
    pub fn new(keep: KeepFields) -> Shaper {
        Shaper {
            keep,
            tz: TimeZone::system(),
        }
    }

    /// The event for `raw`, with year-less stamps resolved against `now`.
    pub fn event(&self, raw: Raw, now: Timestamp) -> Event {
        let mut headers = Headers::new();
        let (facility, severity) = if raw.bad {
            (0, 0)
        } else {
            let digits = raw.bytes.get(1..1 + raw.prio_len).unwrap_or_default();
            let pri = digits
                .iter()
                .fold(0u32, |n, d| n * 10 + u32::from(d.wrapping_sub(b'0')));
            (pri / 8, pri % 8)
        };
        headers.insert("Facility".into(), facility.to_string());
        headers.insert("Severity".into(), severity.to_string());
        let mut body: Option<Vec<u8>> = None;
        if !raw.bad {
            let text = String::from_utf8_lossy(&raw.bytes);
            if let Some(parsed) = self.parse_text(&text, now, &mut headers) {
                body = Some(parsed.into_bytes());
            }
        }
        if raw.bad {
            headers.insert(STATUS.into(), INVALID.into());
        } else if raw.incomplete {
            headers.insert(STATUS.into(), INCOMPLETE.into());
        }
        let body = match body {
            Some(b) if !b.is_empty() && !self.keep.all => b,
            _ => raw.bytes,
        };
        Event::with_headers(headers, body)
    }

    /// Matches `text` against RFC 5424 then RFC 3164; on a match fills the headers and
    /// returns the body Flume would build (before the keep-all and empty-body rules).
    fn parse_text(&self, text: &str, now: Timestamp, headers: &mut Headers) -> Option<String> {
        let (caps, rfc5424) = match RFC5424.captures(text) {
            Some(c) => (c, true),
            None => (RFC3164.captures(text)?, false),
        };
        let g = |i| caps.get(i).map(|m| m.as_str());
        let f = Fields {
            priority: g(1).unwrap_or_default(),
            version: g(2).unwrap_or_default(),
            timestamp: g(3),
            host: g(4),
        };
        if !f.priority.is_empty() {
            headers.insert("priority".into(), f.priority.into());
        }
        if !f.version.is_empty() {
            headers.insert("version".into(), f.version.into());
        }
        if let Some(ts) = f.timestamp {
            let ms = if rfc5424 {
                rfc5424_millis(ts, &self.tz)
            } else {
                rfc3164_millis(ts, &self.tz, now)
            };
            if let Some(ms) = ms {
                headers.insert("timestamp".into(), ms.to_string());
            }
        }
        if let Some(h) = f.host.filter(|h| !h.is_empty()) {
            headers.insert("host".into(), h.into());
        }
        Some(self.keep.prefix(&f, g(5).unwrap_or_default()))
    }
}

/// A civil date-time from fields that may be out of range, rolled over as Java's lenient
/// calendar rolls them (month 13 is January of the next year, day 0 the last of the month
/// before, hour 24 the next day).
fn lenient(year: i64, month: i64, day: i64, h: i64, m: i64, s: i64) -> Option<DateTime> {
    let y = i16::try_from(year).ok()?;
    let base = jiff::civil::date(y, 1, 1).to_datetime(jiff::civil::Time::midnight());
    let span = Span::new()
        .try_months(month - 1)
        .ok()?
        .try_days(day - 1)
        .ok()?
        .try_hours(h)
        .ok()?
        .try_minutes(m)
        .ok()?
        .try_seconds(s)
        .ok()?;
    base.checked_add(span).ok()
}

fn num(s: &str) -> Option<i64> {
    s.parse().ok()
}

/// An RFC 5424 stamp (as the pattern admits it) in epoch milliseconds: the offset honoured
/// (`Z`, `+hh:mm`; none: `tz`), the fraction truncated to milliseconds.
pub fn rfc5424_millis(ts: &str, tz: &TimeZone) -> Option<i64> {
    let f = |a: usize, b: usize| ts.get(a..b).and_then(num);
    let dt = lenient(
        f(0, 4)?,
        f(5, 7)?,
        f(8, 10)?,
        f(11, 13)?,
        f(14, 16)?,
        f(17, 19)?,
    )?;
    let mut rest = ts.get(19..)?;
    let mut millis = 0i64;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        let d = frac.get(..digits)?;
        let mut ms = 0i64;
        for i in 0..3 {
            ms = ms * 10 + d.as_bytes().get(i).map_or(0, |b| i64::from(b - b'0'));
        }
        millis = ms;
        rest = frac.get(digits..)?;
    }
    let zoned = if rest.is_empty() {
        dt.to_zoned(tz.clone()).ok()?
    } else if rest == "Z" {
        dt.to_zoned(TimeZone::UTC).ok()?
    } else {
        let sign: i32 = if rest.starts_with('-') { -1 } else { 1 };
        let hh: i32 = rest.get(1..3)?.parse().ok()?;
        let mm: i32 = rest.get(4..6)?.parse().ok()?;
        let offset = Offset::from_seconds(sign * (hh * 3600 + mm * 60)).ok()?;
        dt.to_zoned(TimeZone::fixed(offset)).ok()?
    };
    Some(zoned.timestamp().as_millisecond() + millis)
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// The month number (1-12) of an English three-letter abbreviation, any case.
pub fn month_number(name: &str) -> Option<i64> {
    MONTHS
        .iter()
        .position(|m| m.eq_ignore_ascii_case(name))
        .and_then(|i| i64::try_from(i + 1).ok())
}

/// An RFC 3164 stamp `Mmm d HH:mm:ss` (day padded with a space or not) in `tz`, in epoch
/// milliseconds, in the year that puts it at the latest instant at most a day after `now`.
pub fn rfc3164_millis(ts: &str, tz: &TimeZone, now: Timestamp) -> Option<i64> {
    let mut parts = ts.split_ascii_whitespace();
    let month = month_number(parts.next()?)?;
    let day = num(parts.next()?)?;
    let mut hms = parts.next()?.split(':');
    let (h, m, s) = (num(hms.next()?)?, num(hms.next()?)?, num(hms.next()?)?);
    yearless(month, day, h, m, s, tz, now)
}

/// See [`rfc3164_millis`].
pub fn yearless(
    month: i64,
    day: i64,
    h: i64,
    m: i64,
    s: i64,
    tz: &TimeZone,
    now: Timestamp,
) -> Option<i64> {
    let now_ms = now.as_millisecond();
    let year = i64::from(now.to_zoned(tz.clone()).year());
    let mut fallback = None;
    for y in [year + 1, year, year - 1] {
        let Some(dt) = lenient(y, month, day, h, m, s) else {
            continue;
        };
        let Ok(z) = dt.to_zoned(tz.clone()) else {
            continue;
        };
        let ms = z.timestamp().as_millisecond();
        if ms <= now_ms + YEARLESS_AHEAD_MS {
            return Some(ms);
        }
        fallback = Some(ms);
    }
    fallback
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc() -> Shaper {
        Shaper {
            keep: KeepFields::default(),
            tz: TimeZone::UTC,
        }
    }

    fn now() -> Timestamp {
        "2026-06-15T12:00:00Z".parse().expect("now")
    }

    fn split(input: &[u8], max: usize) -> Vec<Raw> {
        let mut s = Splitter::new(max);
        let mut out = Vec::new();
        s.feed(input, &mut out);
        out
    }

    fn one(line: &str) -> Event {
        one_with(&utc(), line)
    }

    fn one_with(shaper: &Shaper, line: &str) -> Event {
        let mut raws = split(format!("{line}\n").as_bytes(), DEFAULT_EVENT_SIZE);
        assert_eq!(raws.len(), 1, "{line}");
        shaper.event(raws.remove(0), now())
    }

    fn h<'a>(e: &'a Event, k: &str) -> Option<&'a str> {
        e.header(k)
    }

    #[test]
    fn rfc5424_message_gives_flume_headers_and_keeps_structured_data_in_the_body() {
        let e = one("<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut=\"3\"] An application event");
        assert_eq!(h(&e, "Facility"), Some("20"));
        assert_eq!(h(&e, "Severity"), Some("5"));
        assert_eq!(h(&e, "priority"), Some("165"));
        assert_eq!(h(&e, "version"), Some("1"));
        assert_eq!(h(&e, "timestamp"), Some("1065910455003"));
        assert_eq!(h(&e, "host"), Some("mymachine.example.com"));
        assert_eq!(h(&e, STATUS), None);
        assert_eq!(
            &e.body()[..],
            b"evntslog - ID47 [exampleSDID@32473 iut=\"3\"] An application event"
        );
    }

    #[test]
    fn rfc3164_message_takes_the_nearest_past_year() {
        let e = one("<34>Oct 11 22:14:15 mymachine su: 'su root' failed");
        assert_eq!(h(&e, "Facility"), Some("4"));
        assert_eq!(h(&e, "Severity"), Some("2"));
        assert_eq!(h(&e, "host"), Some("mymachine"));
        // Now is 2026-06-15: October 11 was last in 2025.
        let want = rfc5424_millis("2025-10-11T22:14:15Z", &TimeZone::UTC);
        assert_eq!(h(&e, "timestamp"), want.map(|m| m.to_string()).as_deref());
        assert_eq!(&e.body()[..], b"su: 'su root' failed");
        let e = one("<34>Jun  5 01:02:03 host x");
        let want = rfc5424_millis("2026-06-05T01:02:03Z", &TimeZone::UTC);
        assert_eq!(h(&e, "timestamp"), want.map(|m| m.to_string()).as_deref());
    }

    /// Deliberate difference: Flume keeps a year-less stamp up to a month ahead of now (so a
    /// stamp from 11.5 months ago lands in the future); flumen allows one day.
    #[test]
    fn yearless_stamp_weeks_ahead_is_last_years() {
        let e = one("<34>Jul  1 00:00:00 host x");
        let want = rfc5424_millis("2025-07-01T00:00:00Z", &TimeZone::UTC);
        assert_eq!(h(&e, "timestamp"), want.map(|m| m.to_string()).as_deref());
        let e = one("<34>Jun 16 06:00:00 host x");
        let want = rfc5424_millis("2026-06-16T06:00:00Z", &TimeZone::UTC);
        assert_eq!(h(&e, "timestamp"), want.map(|m| m.to_string()).as_deref());
    }

    /// Deliberate difference: Flume ignores the offset when the stamp has a fraction and
    /// reads `.5` as 5 ms.
    #[test]
    fn rfc5424_fraction_and_offset_are_both_honoured() {
        let e = one("<13>1 2023-01-15T10:20:30.5+02:00 host app - - - msg");
        let want = rfc5424_millis("2023-01-15T08:20:30Z", &TimeZone::UTC).map(|m| m + 500);
        assert_eq!(h(&e, "timestamp"), want.map(|m| m.to_string()).as_deref());
        assert_eq!(
            rfc5424_millis("2023-01-15T10:20:30.123456-01:30", &TimeZone::UTC),
            rfc5424_millis("2023-01-15T11:50:30Z", &TimeZone::UTC).map(|m| m + 123)
        );
    }

    #[test]
    fn lenient_dates_roll_over_as_java_does() {
        assert_eq!(
            rfc5424_millis("2023-13-01T00:00:00Z", &TimeZone::UTC),
            rfc5424_millis("2024-01-01T00:00:00Z", &TimeZone::UTC)
        );
        assert_eq!(
            rfc5424_millis("2023-02-30T24:00:00Z", &TimeZone::UTC),
            rfc5424_millis("2023-03-03T00:00:00Z", &TimeZone::UTC)
        );
    }

    #[test]
    fn nil_timestamp_and_host_give_no_headers() {
        let e = one("<13>1 - - app - - - hello");
        assert_eq!(h(&e, "timestamp"), None);
        assert_eq!(h(&e, "host"), None);
        assert_eq!(&e.body()[..], b"app - - - hello");
    }

    #[test]
    fn unmatched_message_keeps_its_priority_and_whole_text() {
        let e = one("<13>hello world");
        assert_eq!(h(&e, "Facility"), Some("1"));
        assert_eq!(h(&e, "Severity"), Some("5"));
        assert_eq!(h(&e, "priority"), None);
        assert_eq!(h(&e, STATUS), None);
        assert_eq!(&e.body()[..], b"<13>hello world");
    }

    /// Deliberate difference: Flume carries the previous message's `priority` and `version`
    /// into the next message that does not match a pattern.
    #[test]
    fn no_header_is_carried_into_the_next_message() {
        let mut s = Splitter::new(100);
        let mut out = Vec::new();
        s.feed(
            b"<13>1 - host app - - - a\nnot syslog\n<14>plain\n",
            &mut out,
        );
        let events: Vec<Event> = out.into_iter().map(|r| utc().event(r, now())).collect();
        assert_eq!(h(&events[0], "priority"), Some("13"));
        assert_eq!(h(&events[1], "priority"), None);
        assert_eq!(h(&events[1], "version"), None);
        assert_eq!(h(&events[1], STATUS), Some(INVALID));
        assert_eq!(h(&events[2], "priority"), None);
        assert_eq!(h(&events[2], "version"), None);
    }

    #[test]
    fn bad_priorities_are_invalid_with_the_raw_body() {
        for line in ["hello", "<>x", "<1234>x", "<a>x", "<-1>x"] {
            let e = one(line);
            assert_eq!(h(&e, STATUS), Some(INVALID), "{line}");
            assert_eq!(h(&e, "Facility"), Some("0"));
            assert_eq!(&e.body()[..], line.as_bytes());
        }
    }

    #[test]
    fn newline_inside_a_priority_is_data_as_flume_reads_it() {
        let r = split(b"<12\nfoo\n", 100);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].bytes, b"<12\nfoo");
        assert!(r[0].bad);
    }

    #[test]
    fn carriage_return_defeats_the_patterns_as_in_flume() {
        let e = one("<13>Oct 11 22:14:15 host msg\r");
        assert_eq!(h(&e, "host"), None);
        assert_eq!(&e.body()[..], b"<13>Oct 11 22:14:15 host msg\r");
    }

    #[test]
    fn long_message_is_cut_at_event_size_and_the_rest_is_another_event() {
        let r = split(b"<13>abcdefghij\n", 10);
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].bytes, b"<13>abcdef");
        assert!(r[0].incomplete && !r[0].bad);
        assert_eq!(r[1].bytes, b"ghij");
        assert!(r[1].bad);
        let e = utc().event(r[0].clone(), now());
        assert_eq!(h(&e, STATUS), Some(INCOMPLETE));
    }

    #[test]
    fn keep_fields_prepend_as_flume_does() {
        let mut s = utc();
        s.keep = KeepFields::parse("timestamp hostname priority version");
        let e = one_with(&s, "<13>1 2023-01-15T10:20:30Z host app - - - m");
        assert_eq!(
            &e.body()[..],
            b"<13>1 2023-01-15T10:20:30Z host app - - - m"
        );
        s.keep = KeepFields::parse("all");
        let e = one_with(&s, "<13>Oct 11 22:14:15 host m");
        assert_eq!(&e.body()[..], b"<13>Oct 11 22:14:15 host m");
        assert_eq!(h(&e, "host"), Some("host"));
        // Deliberate difference: Flume writes `null` for a `-` field it keeps.
        s.keep = KeepFields::parse("hostname");
        let e = one_with(&s, "<13>1 - - app - - - m");
        assert_eq!(&e.body()[..], b"- app - - - m");
    }

    #[test]
    fn invalid_utf8_is_replaced_in_a_parsed_body_and_kept_in_a_raw_one() {
        let mut r = split(b"<13>Oct 11 22:14:15 host a\xffb\n", 100);
        let e = utc().event(r.remove(0), now());
        assert_eq!(&e.body()[..], "a\u{fffd}b".as_bytes());
        let mut r = split(b"x\xff\n", 100);
        let e = utc().event(r.remove(0), now());
        assert_eq!(&e.body()[..], b"x\xff");
    }

    #[test]
    fn datagram_lines_all_become_events() {
        let mut s = Splitter::new(65536);
        let mut out = Vec::new();
        s.frame(b"<13>a\n<14>b", true, &mut out);
        assert_eq!(out.len(), 2);
        s.frame(b"<", true, &mut out);
        assert!(out[2].bad);
        s.frame(b"\n", true, &mut out);
        assert_eq!(out.len(), 3);
    }
}
