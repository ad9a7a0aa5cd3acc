//! The message parser of `multiport_syslogtcp` (Flume's MultiportSyslogTCPSource and its
//! SyslogParser), sans I/O. Flume's multiport source is a different code base from
//! syslogtcp's and shapes events differently: lines are cut at `eventSize` bytes counting
//! the newline, decoded strictly in the port's charset (a line that does not decode is an
//! `Invalid` event with its raw bytes), and parsed by position rather than by pattern:
//! headers `Priority`, `Facility`, `Severity`, `Version` (only `1`), `timestamp` (always: the
//! receive time for `-`, `0` for an RFC 3164 stamp that does not parse; RFC 3164 stamps are
//! UTC) and `host`. A message it cannot parse is an event with only
//! `flume.syslog.status = Invalid` and the whole line as body.
//!
//! Deliberate differences from Flume (docs/CONFIG.md, `multiport_syslogtcp`): a year-less
//! stamp gets the year putting it at the latest instant at most a day ahead (Flume gives
//! 2001 to every stamp over a month old, and 1999 to one over a month ahead); inputs on which
//! Flume's parser throws an unexpected exception and loses the rest of the read (an empty
//! line, a stamp whose first 19 characters are not a valid date, a fraction ending the
//! message) are an `Invalid` event here; a NUL byte is kept (Flume's buffer ends the line
//! there).
//!
//! Invariants: no I/O, no panics, memory bounded by `eventSize` per connection.

use jiff::tz::TimeZone;
use jiff::Timestamp;

use super::config::Charset;
use super::parse::{yearless, Fields, KeepFields, Raw, INCOMPLETE, INVALID, STATUS};
use crate::event::{Event, Headers};

/// Cuts lines as Flume's multiport LineSplitter: a line of `max - 1` bytes and its newline is
/// whole; `max` bytes without a newline are a line marked incomplete, and the bytes after
/// start the next line.
#[derive(Debug)]
pub struct LineCutter {
    max: usize,
    cur: Vec<u8>,
}

impl LineCutter {
    pub fn new(max: usize) -> LineCutter {
        LineCutter {
            max: max.max(1),
            cur: Vec::new(),
        }
    }

    fn take(&mut self, incomplete: bool) -> Raw {
        Raw {
            bytes: std::mem::take(&mut self.cur),
            incomplete,
            bad: false,
            prio_len: 0,
        }
    }
}

impl super::frame::Cutter for LineCutter {
    fn feed(&mut self, mut input: &[u8], newline_ends: bool, out: &mut Vec<Raw>) {
        while !input.is_empty() {
            // Bytes this line may still take, its newline included.
            let room = self.max - self.cur.len();
            let window = &input[..input.len().min(room)];
            let nl = if newline_ends {
                memchr::memchr(b'\n', window)
            } else {
                None
            };
            match nl {
                Some(i) => {
                    self.cur.extend_from_slice(&window[..i]);
                    input = &input[i + 1..];
                    out.push(self.take(false));
                }
                None => {
                    self.cur.extend_from_slice(window);
                    input = &input[window.len()..];
                    if self.cur.len() >= self.max {
                        out.push(self.take(true));
                    }
                }
            }
        }
    }

    fn finish(&mut self) -> Option<Raw> {
        (!self.cur.is_empty()).then(|| self.take(false))
    }
}

/// Decodes `bytes` strictly (Java's decoder reporting malformed input).
pub fn decode(bytes: &[u8], charset: Charset) -> Option<String> {
    match charset {
        Charset::Utf8 => std::str::from_utf8(bytes).ok().map(str::to_owned),
        Charset::Ascii => bytes
            .is_ascii()
            .then(|| String::from_utf8_lossy(bytes).into_owned()),
        Charset::Latin1 => Some(bytes.iter().map(|&b| char::from(b)).collect()),
    }
}

/// Encodes `text` (decoded from `charset`, or made of such text) back into it.
fn encode(text: &str, charset: Charset) -> Vec<u8> {
    match charset {
        Charset::Utf8 | Charset::Ascii => text.as_bytes().to_vec(),
        Charset::Latin1 => text
            .chars()
            .map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?'))
            .collect(),
    }
}

/// The event for one line (see the module docs).
pub fn event(raw: Raw, charset: Charset, keep: &KeepFields, now: Timestamp) -> Event {
    let Some(text) = decode(&raw.bytes, charset) else {
        let mut h = Headers::new();
        h.insert(STATUS.into(), INVALID.into());
        return Event::with_headers(h, raw.bytes);
    };
    match parse(&text, keep, now) {
        Some((mut headers, body)) => {
            if raw.incomplete {
                headers.insert(STATUS.into(), INCOMPLETE.into());
            }
            Event::with_headers(headers, encode(&body, charset))
        }
        None => {
            let mut h = Headers::new();
            h.insert(STATUS.into(), INVALID.into());
            Event::with_headers(h, encode(&text, charset))
        }
    }
}

/// Java's `Integer.parseInt`: an optional sign and ASCII digits, within `i32`.
fn java_int(s: &str) -> Option<i32> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// The byte index just past `n` chars from `from`, if the text has them.
fn after_chars(text: &str, from: usize, n: usize) -> Option<usize> {
    let rest = text.get(from..)?;
    if n == 0 {
        return Some(from);
    }
    let (i, c) = rest.char_indices().nth(n - 1)?;
    Some(from + i + c.len_utf8())
}

/// Flume's SyslogParser.parseMessage; `None` where Flume throws.
fn parse(msg: &str, keep: &KeepFields, now: Timestamp) -> Option<(Headers, String)> {
    let mut headers = Headers::new();
    if !msg.starts_with('<') {
        return None;
    }
    let end = msg.find('>')?;
    // Flume checks the bracket's position in UTF-16 units: at most 6.
    if end == 0 || msg[..end].encode_utf16().count() > 6 {
        return None;
    }
    let priority = &msg[1..end];
    let pri = java_int(priority)?;
    headers.insert("Priority".into(), priority.into());
    headers.insert("Facility".into(), (pri / 8).to_string());
    headers.insert("Severity".into(), (pri % 8).to_string());
    let mut cur = end + 1;
    if msg.len() <= cur {
        return None;
    }
    let mut version = None;
    if msg.len() > cur + 2 && msg[cur..].starts_with("1 ") {
        version = Some("1");
        headers.insert("Version".into(), "1".into());
        cur += 2;
    }
    let first = msg[cur..].chars().next()?;
    let ts_string: &str;
    let ts: i64;
    if first == '-' {
        ts_string = "-";
        ts = now.as_millisecond();
        // Flume skips the `-` and one character, whatever it is.
        let next = after_chars(msg, cur, 2)?;
        if next >= msg.len() {
            return None;
        }
        cur = next;
    } else if first.is_ascii_uppercase() {
        let stamp_end = after_chars(msg, cur, 15)?;
        if stamp_end >= msg.len() {
            return None;
        }
        ts_string = &msg[cur..stamp_end];
        ts = rfc3164(ts_string, now).unwrap_or(0);
        cur = after_chars(msg, stamp_end, 1)?;
    } else {
        let space = cur + msg[cur..].find(' ')?;
        ts_string = &msg[cur..space];
        ts = rfc5424(ts_string)?;
        cur = space + 1;
    }
    headers.insert("timestamp".into(), ts.to_string());
    let space = cur + msg.get(cur..)?.find(' ')?;
    let host = &msg[cur..space];
    headers.insert("host".into(), host.into());
    let body = if msg.len() > space + 1 && !keep.all {
        let f = Fields {
            priority,
            version: version.unwrap_or(""),
            timestamp: Some(ts_string),
            host: Some(host),
        };
        keep.prefix(&f, &msg[space + 1..])
    } else {
        msg.to_string()
    };
    Some((headers, body))
}

/// Flume's parseRfc5424Date: the first 19 characters a strict UTC date-time, an optional
/// fraction (scaled to milliseconds), then `Z`, `+hh:mm`/`-hh:mm`, or anything (UTC).
fn rfc5424(ts: &str) -> Option<i64> {
    if ts.chars().count() <= 19 || !ts.is_char_boundary(19) {
        return None;
    }
    let base: jiff::civil::DateTime = ts[..19].parse().ok()?;
    let b = ts.as_bytes();
    let layout_ok = b[4] == b'-' && b[7] == b'-' && b[10] == b'T' && b[13] == b':' && b[16] == b':';
    if !layout_ok {
        return None;
    }
    let mut ms = base
        .to_zoned(TimeZone::UTC)
        .ok()?
        .timestamp()
        .as_millisecond();
    let mut cur = 19;
    if b.get(cur) == Some(&b'.') {
        let digits = b[cur + 1..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count();
        if digits == 0 {
            return None;
        }
        let frac: i64 = ts[cur + 1..cur + 1 + digits].parse().ok()?;
        let scaled = if digits > 3 {
            let div = 10i64
                .checked_pow(u32::try_from(digits - 3).ok()?)
                .unwrap_or(i64::MAX);
            frac / div
        } else {
            frac * 10i64.pow(u32::try_from(3 - digits).ok()?)
        };
        ms += scaled;
        cur += 1 + digits;
    }
    if let Some(&sign @ (b'+' | b'-')) = b.get(cur) {
        let z = b.get(cur + 1..cur + 6)?;
        if !(z[0].is_ascii_digit()
            && z[1].is_ascii_digit()
            && z[2] == b':'
            && z[3].is_ascii_digit()
            && z[4].is_ascii_digit())
        {
            return None;
        }
        let h = i64::from((z[0] - b'0') * 10 + (z[1] - b'0'));
        let m = i64::from((z[3] - b'0') * 10 + (z[4] - b'0'));
        let pol = if sign == b'+' { 1 } else { -1 };
        ms -= pol * (h * 60 + m) * 60_000;
    }
    Some(ms)
}

/// Flume's parseRfc3164Time on the 15 characters after the priority: `Mmm d HH:mm:ss` with
/// the day padded by a space, read in UTC; the year by the nearest-past rule.
fn rfc3164(ts: &str, now: Timestamp) -> Option<i64> {
    let t = ts.replacen("  ", " ", 1);
    let mut parts = t.split(' ');
    let month = super::parse::month_number(parts.next()?)?;
    let day_s = parts.next()?;
    let time = parts.next()?;
    if parts.next().is_some() || day_s.is_empty() || day_s.len() > 2 || time.len() != 8 {
        return None;
    }
    let day: i64 = day_s.parse().ok()?;
    let tb = time.as_bytes();
    if tb[2] != b':' || tb[5] != b':' {
        return None;
    }
    let (h, m, s): (i64, i64, i64) = (
        time[0..2].parse().ok()?,
        time[3..5].parse().ok()?,
        time[6..8].parse().ok()?,
    );
    // Joda checks each field (in 2000, a leap year).
    jiff::civil::Date::new(2000, i8::try_from(month).ok()?, i8::try_from(day).ok()?).ok()?;
    jiff::civil::Time::new(
        i8::try_from(h).ok()?,
        i8::try_from(m).ok()?,
        i8::try_from(s).ok()?,
        0,
    )
    .ok()?;
    yearless(month, day, h, m, s, &TimeZone::UTC, now)
}

#[cfg(test)]
mod tests {
    use super::super::frame::Cutter;
    use super::*;

    fn now() -> Timestamp {
        "2026-06-15T12:00:00Z".parse().expect("now")
    }

    fn ev(line: &str) -> Event {
        let raw = Raw {
            bytes: line.as_bytes().to_vec(),
            ..Raw::default()
        };
        event(raw, Charset::Utf8, &KeepFields::default(), now())
    }

    #[test]
    fn rfc5424_line_gets_flume_multiport_headers() {
        let e = ev("<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 - hi");
        assert_eq!(e.header("Priority"), Some("165"));
        assert_eq!(e.header("Facility"), Some("20"));
        assert_eq!(e.header("Severity"), Some("5"));
        assert_eq!(e.header("Version"), Some("1"));
        assert_eq!(e.header("timestamp"), Some("1065910455003"));
        assert_eq!(e.header("host"), Some("mymachine.example.com"));
        assert_eq!(&e.body()[..], b"evntslog - ID47 - hi");
    }

    #[test]
    fn offsets_and_fractions_as_flume_multiport_reads_them() {
        assert_eq!(
            rfc5424("2003-10-11T22:14:15.5+01:00"),
            rfc5424("2003-10-11T21:14:15Z").map(|m| m + 500)
        );
    }

    /// Deliberate difference: Flume's multiport source gives 2001 to a year-less stamp
    /// more than a month old.
    #[test]
    fn rfc3164_stamp_gets_the_nearest_past_year_in_utc() {
        let e = ev("<34>Jan  2 03:04:05 host su: x");
        let want = "2026-01-02T03:04:05Z"
            .parse::<Timestamp>()
            .expect("t")
            .as_millisecond();
        assert_eq!(e.header("timestamp"), Some(want.to_string().as_str()));
        assert_eq!(e.header("host"), Some("host"));
        assert_eq!(&e.body()[..], b"su: x");
    }

    #[test]
    fn unparsable_lines_are_invalid_with_only_the_status() {
        for line in [
            "hello",
            "<13>",
            "<13>nohost",
            "<1234567>x",
            "<ab>x y z",
            "<13>123: x y",
        ] {
            let e = ev(line);
            assert_eq!(e.header(STATUS), Some(INVALID), "{line}");
            assert_eq!(e.header("Facility"), None);
            assert_eq!(&e.body()[..], line.as_bytes());
        }
    }

    /// Deliberate difference: these throw in Flume and lose the read they came in.
    #[test]
    fn inputs_flume_throws_on_are_invalid_events() {
        for line in [
            "",
            "<13>1 2023-13-45T99:00:00Z host x",
            "<13>2023-01-01T00:00:00.5",
        ] {
            let e = ev(line);
            assert_eq!(e.header(STATUS), Some(INVALID), "{line}");
        }
    }

    /// Deliberate difference: Flume's multiport source ends the line at a NUL byte.
    #[test]
    fn nul_byte_is_kept() {
        let e = ev("<13>1 2003-10-11T22:14:15Z host app - - - a\u{0}b");
        assert_eq!(&e.body()[..], b"app - - - a\0b");
    }

    #[test]
    fn latin1_lines_are_decoded_and_the_body_encoded_back() {
        let raw = Raw {
            bytes: b"<13>1 2003-10-11T22:14:15Z h app - - - caf\xe9".to_vec(),
            ..Raw::default()
        };
        let e = event(raw, Charset::Latin1, &KeepFields::default(), now());
        assert_eq!(&e.body()[..], b"app - - - caf\xe9");
        assert_eq!(e.header("host"), Some("h"));
    }

    #[test]
    fn bad_rfc3164_stamp_is_zero() {
        let e = ev("<13>Foo 11 22:14:15 host x");
        assert_eq!(e.header("timestamp"), Some("0"));
    }

    #[test]
    fn invalid_utf8_is_invalid_with_raw_bytes() {
        let raw = Raw {
            bytes: b"<13>a\xff".to_vec(),
            ..Raw::default()
        };
        let e = event(raw, Charset::Utf8, &KeepFields::default(), now());
        assert_eq!(e.header(STATUS), Some(INVALID));
        assert_eq!(&e.body()[..], b"<13>a\xff");
    }

    #[test]
    fn line_cutter_counts_the_newline() {
        let mut c = LineCutter::new(5);
        let mut out = Vec::new();
        c.feed(b"abcd\nabcde\n", true, &mut out);
        let got: Vec<(Vec<u8>, bool)> = out.into_iter().map(|r| (r.bytes, r.incomplete)).collect();
        assert_eq!(
            got,
            vec![
                (b"abcd".to_vec(), false),
                (b"abcde".to_vec(), true),
                (b"".to_vec(), false)
            ]
        );
    }
}
