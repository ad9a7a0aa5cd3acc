//! `hdfs.path` / `hdfs.filePrefix` templates: Flume's escape sequences (its `BucketPath`),
//! with `hdfs.round*` rounding and `hdfs.timeZone`, turned into a directory or file name per
//! event.
//!
//! A template is parsed once, at configure time, into tokens; rendering an event walks the
//! tokens and appends to a caller-owned buffer, with no regex and no allocation beyond the
//! buffer's growth. The broken-down (civil) time is computed only when the template has a time
//! escape, and is cached per distinct timestamp-second in the [`RenderContext`], since the
//! events of a batch usually share a handful of seconds.
//!
//! Invariants:
//! - A value taken from the event (`%{header}`) or the machine (`%[localhost]`, `%[IP]`,
//!   `%[FQDN]`) can never add a path separator or a `.`/`..` component: `/`, `\`, `%`, `:`
//!   and control characters are percent-encoded (`%2F`, `%5C`, `%25`, `%3A`, `%00`, ... as
//!   UTF-8 bytes), and a whole value of `.` or `..` becomes `%2E` / `%2E%2E`. Encoding `%`
//!   keeps the mapping injective, so two different header values never share a bucket.
//!   [`ensure_within`] re-checks the rendered path against the template's static prefix as
//!   defence in depth. [`shorten_components`] cuts a component too long for a file name to
//!   its start and a hash of the whole.
//! - Rendering never panics, whatever the template or the headers; malformed input yields a
//!   [`PathError`] that names the template or header and says what to do.
//! - A template without time escapes never looks at the `timestamp` header.
//!
//! Where this deliberately differs from Flume:
//! - An unknown `%x` escape (Flume silently renders it as "") and an unknown `%[name]`
//!   (Flume throws per event) are rejected when the template is parsed.
//! - `%%` does not need a timestamp (Flume evaluates the timestamp header before looking at
//!   the escape, so a `%%` without a timestamp header fails there).
//! - Names of days, months and AM/PM are always English (Flume uses the JVM's default locale);
//!   dates before 1582 are proleptic Gregorian (Java switches to the Julian calendar).
//! - Rounding accepts timestamps <= 0 (Flume rejects them), and in a repeated hour (DST
//!   fold) never rounds to an instant later than the event's own (Java's calendar can).
//! - An unknown `hdfs.timeZone` is an error (Java silently falls back to GMT).
//! - Host values are percent-encoded like header values, so an IPv6 `%[IP]` has `%3A`s.

pub use crate::host::HostNames;
use std::fmt::Write as _;

use jiff::civil::DateTime;
use jiff::tz::{AmbiguousOffset, Offset, TimeZone};
use jiff::Timestamp;

use crate::event::Headers;

/// The header Flume reads the event time from (milliseconds since the epoch).
pub const TIMESTAMP_HEADER: &str = "timestamp";

/// What went wrong parsing or rendering a template, or reading the settings around it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error(
        "path template `{template}`: unknown escape `%{escape}` at byte {position}; supported \
         are %a %A %b %B %c %d %e %D %H %I %j %k %l %m %n %M %p %s %S %t %y %Y %z, \
         %{{header}}, %[localhost], %[IP], %[FQDN]; write `%%` for a literal `%`"
    )]
    UnknownEscape {
        template: String,
        escape: char,
        position: usize,
    },
    #[error(
        "path template `{template}`: unknown escape `%[{name}]`; supported are %[localhost], \
         %[IP] and %[FQDN] (case-insensitive)"
    )]
    UnknownHostEscape { template: String, name: String },
    #[error(
        "path template `{template}` uses time escapes but the event has no `timestamp` header; \
         set `hdfs.useLocalTimeStamp = true` or add a timestamp interceptor to the source"
    )]
    MissingTimestamp { template: String },
    #[error(
        "path template `{template}` uses time escapes but the event's `timestamp` header \
         {value:?} is not an integer number of milliseconds since the epoch; fix the producer \
         or a timestamp interceptor, or set `hdfs.useLocalTimeStamp = true`"
    )]
    InvalidTimestamp { template: String, value: String },
    #[error(
        "path template `{template}`: timestamp {millis} ms is outside the supported range \
         (years -9999 to 9999); check the event's `timestamp` header"
    )]
    TimestampOutOfRange { template: String, millis: i64 },
    #[error(
        "unknown time zone {name:?} in `hdfs.timeZone`; use an IANA name such as `UTC` or \
         `America/Los_Angeles`, or a fixed offset such as `GMT+02:00`"
    )]
    UnknownTimeZone { name: String },
    #[error("`hdfs.roundUnit` {value:?} is not one of `second`, `minute` or `hour`")]
    InvalidRoundUnit { value: String },
    #[error("`hdfs.roundValue` {value} is out of range for unit {unit}: it must be 1 to {max}")]
    InvalidRoundValue {
        value: i64,
        unit: &'static str,
        max: u32,
    },
    #[error(
        "rendered path {rendered:?} leaves its base directory {base:?}; a template literal \
         after the first escape climbs out of it with `..`, or this is a bug"
    )]
    EscapesBase { rendered: String, base: String },
}

/// The unit of `hdfs.roundUnit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoundUnit {
    Second,
    Minute,
    Hour,
}

impl RoundUnit {
    /// Parses `second`, `minute` or `hour`, case-insensitively as Flume does. (Flume itself
    /// only warns on anything else and turns rounding off; the caller chooses.)
    pub fn parse(value: &str) -> Result<RoundUnit, PathError> {
        let v = value.trim();
        if v.eq_ignore_ascii_case("second") {
            Ok(RoundUnit::Second)
        } else if v.eq_ignore_ascii_case("minute") {
            Ok(RoundUnit::Minute)
        } else if v.eq_ignore_ascii_case("hour") {
            Ok(RoundUnit::Hour)
        } else {
            Err(PathError::InvalidRoundUnit {
                value: value.to_owned(),
            })
        }
    }

    fn name(self) -> &'static str {
        match self {
            RoundUnit::Second => "second",
            RoundUnit::Minute => "minute",
            RoundUnit::Hour => "hour",
        }
    }

    fn max_value(self) -> u32 {
        match self {
            RoundUnit::Second | RoundUnit::Minute => 60,
            RoundUnit::Hour => 24,
        }
    }
}

/// `hdfs.round = true` with `hdfs.roundValue` and `hdfs.roundUnit`: the event time is rounded
/// down to the largest multiple of `value` units (of the wall clock in the sink's time zone)
/// that is not after it, before any time escape is formatted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rounding {
    /// Treated as 1 when 0 (as Flume does); use [`Rounding::new`] to validate config input.
    pub value: u32,
    pub unit: RoundUnit,
}

impl Rounding {
    /// Validates as Flume does: 1..=60 for seconds and minutes, 1..=24 for hours.
    pub fn new(value: i64, unit: RoundUnit) -> Result<Rounding, PathError> {
        let max = unit.max_value();
        match u32::try_from(value) {
            Ok(v) if (1..=max).contains(&v) => Ok(Rounding { value: v, unit }),
            _ => Err(PathError::InvalidRoundValue {
                value,
                unit: unit.name(),
                max,
            }),
        }
    }
}

/// Parses `hdfs.timeZone`: an IANA name (`UTC`, `America/Los_Angeles`), Java's custom
/// `GMT+h`, `GMT+hh`, `GMT+hhmm`, `GMT+hh:mm` forms, or one of Java's legacy three-letter IDs
/// (`PST`, `IST`, ...; see `java.time.ZoneId.SHORT_IDS`), so configurations written for Flume
/// keep their meaning. Anything else is an error rather than Java's silent GMT.
pub fn parse_time_zone(name: &str) -> Result<TimeZone, PathError> {
    let trimmed = name.trim();
    let unknown = || PathError::UnknownTimeZone {
        name: name.to_owned(),
    };
    if trimmed.is_empty() {
        return Err(unknown());
    }
    if let Some(rest) = trimmed.strip_prefix("GMT") {
        if rest.starts_with(['+', '-']) {
            let offset = parse_gmt_offset(rest).ok_or_else(unknown)?;
            return Ok(TimeZone::fixed(offset));
        }
    }
    if let Some(target) = java_short_id(trimmed) {
        return match target {
            ShortId::Fixed(hours) => Offset::from_hours(hours)
                .map(TimeZone::fixed)
                .map_err(|_| unknown()),
            ShortId::Zone(iana) => TimeZone::get(iana).map_err(|_| unknown()),
        };
    }
    TimeZone::get(trimmed).map_err(|_| unknown())
}

/// The zone Flume uses when `hdfs.timeZone` is not set: the system's (JVM default).
pub fn local_time_zone() -> TimeZone {
    TimeZone::system()
}

/// `+h`, `+hh`, `+hmm`, `+hhmm`, `+h:mm`, `+hh:mm` (or `-`), hours 0..=23, minutes 0..=59,
/// as Java's `TimeZone.getTimeZone` accepts after `GMT`.
fn parse_gmt_offset(rest: &str) -> Option<Offset> {
    let (negative, digits) = match rest.as_bytes().first()? {
        b'+' => (false, &rest[1..]),
        b'-' => (true, &rest[1..]),
        _ => return None,
    };
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let (hours, minutes): (&str, &str) = match digits.split_once(':') {
        Some((h, m)) => {
            if h.len() > 2 || m.len() != 2 {
                return None;
            }
            (h, m)
        }
        // Checked before splitting so that the split index is a char boundary.
        None if !all_digits(digits) => return None,
        None => match digits.len() {
            1 | 2 => (digits, "0"),
            3 | 4 => digits.split_at(digits.len() - 2),
            _ => return None,
        },
    };
    if !all_digits(hours) || !all_digits(minutes) {
        return None;
    }
    let h: i32 = hours.parse().ok()?;
    let m: i32 = minutes.parse().ok()?;
    if h > 23 || m > 59 {
        return None;
    }
    let seconds = (h * 60 + m) * 60;
    Offset::from_seconds(if negative { -seconds } else { seconds }).ok()
}

enum ShortId {
    Fixed(i8),
    Zone(&'static str),
}

/// Java's `ZoneId.SHORT_IDS`, which `java.util.TimeZone` also honours.
fn java_short_id(id: &str) -> Option<ShortId> {
    let zone = match id {
        "EST" => return Some(ShortId::Fixed(-5)),
        "MST" => return Some(ShortId::Fixed(-7)),
        "HST" => return Some(ShortId::Fixed(-10)),
        "ACT" => "Australia/Darwin",
        "AET" => "Australia/Sydney",
        "AGT" => "America/Argentina/Buenos_Aires",
        "ART" => "Africa/Cairo",
        "AST" => "America/Anchorage",
        "BET" => "America/Sao_Paulo",
        "BST" => "Asia/Dhaka",
        "CAT" => "Africa/Harare",
        "CNT" => "America/St_Johns",
        "CST" => "America/Chicago",
        "CTT" => "Asia/Shanghai",
        "EAT" => "Africa/Addis_Ababa",
        "ECT" => "Europe/Paris",
        "IET" => "America/Indiana/Indianapolis",
        "IST" => "Asia/Kolkata",
        "JST" => "Asia/Tokyo",
        "MIT" => "Pacific/Apia",
        "NET" => "Asia/Yerevan",
        "NST" => "Pacific/Auckland",
        "PLT" => "Asia/Karachi",
        "PNT" => "America/Phoenix",
        "PRT" => "America/Puerto_Rico",
        "PST" => "America/Los_Angeles",
        "SST" => "Pacific/Guadalcanal",
        "VST" => "Asia/Ho_Chi_Minh",
        _ => return None,
    };
    Some(ShortId::Zone(zone))
}

/// Everything rendering needs besides the event: the sink's settings and a per-second cache.
/// Built once per sink; set [`now_ms`](Self::now_ms) before rendering when
/// `use_local_timestamp` is on.
#[derive(Debug, Clone)]
pub struct RenderContext {
    /// The sink's clock (ms since the epoch); the event time under `hdfs.useLocalTimeStamp`.
    pub now_ms: i64,
    use_local_timestamp: bool,
    round: Option<Rounding>,
    tz: TimeZone,
    host: HostNames,
    /// `host` already encoded, in `HostKind` order, so rendering only copies.
    host_encoded: [String; 3],
    cache: Option<CachedSecond>,
}

impl RenderContext {
    pub fn new(
        tz: TimeZone,
        round: Option<Rounding>,
        use_local_timestamp: bool,
        host: HostNames,
    ) -> RenderContext {
        let encode = |v: &str| {
            let mut s = String::with_capacity(v.len());
            push_encoded(&mut s, v);
            s
        };
        let host_encoded = [
            encode(&host.localhost),
            encode(&host.ip),
            encode(&host.fqdn),
        ];
        RenderContext {
            now_ms: 0,
            use_local_timestamp,
            round,
            tz,
            host,
            host_encoded,
            cache: None,
        }
    }

    pub fn use_local_timestamp(&self) -> bool {
        self.use_local_timestamp
    }

    pub fn rounding(&self) -> Option<Rounding> {
        self.round
    }

    pub fn time_zone(&self) -> &TimeZone {
        &self.tz
    }

    pub fn host_names(&self) -> &HostNames {
        &self.host
    }

    /// The civil fields for the second holding `ts_ms`, from the cache when it is the same
    /// second as last time. Rounding zeroes milliseconds and only moves fields of a second or
    /// coarser, so its result too depends on the second alone.
    fn fields(&mut self, ts_ms: i64) -> Option<TimeFields> {
        let second = ts_ms.div_euclid(1000);
        if let Some(c) = &self.cache {
            if c.second == second {
                return Some(c.fields);
            }
        }
        let ts = Timestamp::from_second(second).ok()?;
        let ts = match self.round {
            Some(r) => round_down(ts, r, &self.tz)?,
            None => ts,
        };
        let fields = TimeFields::at(ts, &self.tz);
        self.cache = Some(CachedSecond { second, fields });
        Some(fields)
    }
}

#[derive(Debug, Clone, Copy)]
struct CachedSecond {
    second: i64,
    fields: TimeFields,
}

/// The broken-down time a template's escapes are formatted from.
#[derive(Debug, Clone, Copy)]
struct TimeFields {
    /// With rounding, the start of the event's bucket in ms (what `%s` prints); without, the
    /// start of its second (unused: `%s` then reads the event's own ms).
    rounded_ms: i64,
    year: i16,
    month: i8,
    day: i8,
    hour: i8,
    minute: i8,
    second: i8,
    /// 0 = Sunday.
    weekday: i8,
    day_of_year: i16,
    offset_seconds: i32,
}

impl TimeFields {
    fn at(ts: Timestamp, tz: &TimeZone) -> TimeFields {
        let dt = tz.to_datetime(ts);
        TimeFields {
            rounded_ms: ts.as_millisecond(),
            year: dt.year(),
            month: dt.month(),
            day: dt.day(),
            hour: dt.hour(),
            minute: dt.minute(),
            second: dt.second(),
            weekday: dt.weekday().to_sunday_zero_offset(),
            day_of_year: dt.day_of_year(),
            offset_seconds: tz.to_offset(ts).seconds(),
        }
    }

    /// Java prints the year of the era: 1 BC (jiff's year 0) is year 1.
    fn year_of_era(&self) -> i32 {
        let y = i32::from(self.year);
        if y <= 0 {
            1 - y
        } else {
            y
        }
    }

    fn hour12(&self) -> i8 {
        match self.hour % 12 {
            0 => 12,
            h => h,
        }
    }
}

/// Flume's `TimestampRoundDownUtil`: set the unit's wall-clock field (in `tz`) to the largest
/// multiple of `value` not above it and zero the finer fields. A wall time that falls in a
/// DST gap or fold is resolved as Java's calendar does (the later instant), except that an
/// instant after the event's own is never chosen.
fn round_down(ts: Timestamp, r: Rounding, tz: &TimeZone) -> Option<Timestamp> {
    let n = i8::try_from(r.value.max(1)).unwrap_or(i8::MAX);
    let dt = tz.to_datetime(ts);
    let (h, m, s) = (dt.hour(), dt.minute(), dt.second());
    let (h, m, s) = match r.unit {
        RoundUnit::Second => (h, m, s - s % n),
        RoundUnit::Minute => (h, m - m % n, 0),
        RoundUnit::Hour => (h - h % n, 0, 0),
    };
    let wall = DateTime::new(dt.year(), dt.month(), dt.day(), h, m, s, 0).ok()?;
    let ambiguous = tz.to_ambiguous_timestamp(wall);
    match ambiguous.offset() {
        AmbiguousOffset::Unambiguous { .. } | AmbiguousOffset::Gap { .. } => ambiguous.later().ok(),
        AmbiguousOffset::Fold { .. } => {
            let later = ambiguous.later().ok()?;
            if later <= ts {
                Some(later)
            } else {
                ambiguous.earlier().ok()
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HostKind {
    Localhost = 0,
    Ip = 1,
    Fqdn = 2,
}

/// A time escape, named by Flume's `SimpleDateFormat` pattern for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TimeEscape {
    /// `%a` EEE
    WeekdayShort,
    /// `%A` EEEE
    WeekdayLong,
    /// `%b` MMM
    MonthShort,
    /// `%B` MMMM
    MonthLong,
    /// `%c` "EEE MMM d HH:mm:ss yyyy"
    DateTime,
    /// `%d` dd
    Day2,
    /// `%e` d
    Day,
    /// `%D` "MM/dd/yy" (its slashes make directories, as in Flume)
    DateShort,
    /// `%H` HH
    Hour24Padded,
    /// `%I` hh
    Hour12Padded,
    /// `%j` DDD
    DayOfYear,
    /// `%k` H
    Hour24,
    /// `%l` h
    Hour12,
    /// `%m` MM
    Month2,
    /// `%n` M
    Month,
    /// `%M` mm
    Minute2,
    /// `%p` a
    AmPm,
    /// `%s` seconds since the epoch of the (rounded) time
    UnixSeconds,
    /// `%S` ss
    Second2,
    /// `%t` the timestamp header as written (or the sink's clock), never rounded
    UnixMillis,
    /// `%y` yy
    Year2,
    /// `%Y` yyyy
    Year4,
    /// `%z` ZZZ (+hhmm)
    Offset,
}

impl TimeEscape {
    fn from_char(c: u8) -> Option<TimeEscape> {
        use TimeEscape::*;
        Some(match c {
            b'a' => WeekdayShort,
            b'A' => WeekdayLong,
            b'b' => MonthShort,
            b'B' => MonthLong,
            b'c' => DateTime,
            b'd' => Day2,
            b'e' => Day,
            b'D' => DateShort,
            b'H' => Hour24Padded,
            b'I' => Hour12Padded,
            b'j' => DayOfYear,
            b'k' => Hour24,
            b'l' => Hour12,
            b'm' => Month2,
            b'n' => Month,
            b'M' => Minute2,
            b'p' => AmPm,
            b's' => UnixSeconds,
            b'S' => Second2,
            b't' => UnixMillis,
            b'y' => Year2,
            b'Y' => Year4,
            b'z' => Offset,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Literal(String),
    Header(String),
    Host(HostKind),
    Time(TimeEscape),
}

/// A parsed `hdfs.path` or `hdfs.filePrefix` template. See the module docs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathTemplate {
    source: String,
    tokens: Vec<Token>,
    static_prefix: String,
    needs_timestamp: bool,
    needs_host_names: bool,
}

/// Java's `\w` (without the Unicode flag).
fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

impl PathTemplate {
    /// Splits `template` into literals and escapes, following Flume's tag pattern
    /// `%(\w|%)|%\{([\w.-]+)\}|%\[(\w+)\]`: a `%` that starts none of these stays literal.
    pub fn parse(template: &str) -> Result<PathTemplate, PathError> {
        let bytes = template.as_bytes();
        let mut tokens = Vec::new();
        let mut literal = String::new();
        let mut i = 0;
        while i < bytes.len() {
            let Some(offset) = template[i..].find('%') else {
                literal.push_str(&template[i..]);
                break;
            };
            let p = i + offset;
            literal.push_str(&template[i..p]);
            // Everything matched below is ASCII, so every index used to slice is a char
            // boundary.
            let escape = match bytes.get(p + 1).copied() {
                Some(b'%') => {
                    literal.push('%');
                    i = p + 2;
                    continue;
                }
                Some(c) if is_word(c) => match TimeEscape::from_char(c) {
                    Some(t) => {
                        i = p + 2;
                        Token::Time(t)
                    }
                    None => {
                        return Err(PathError::UnknownEscape {
                            template: template.to_owned(),
                            escape: char::from(c),
                            position: p,
                        })
                    }
                },
                Some(b'{') => {
                    let name_end = scan(bytes, p + 2, |b| is_word(b) || b == b'.' || b == b'-');
                    if name_end > p + 2 && bytes.get(name_end) == Some(&b'}') {
                        i = name_end + 1;
                        Token::Header(template[p + 2..name_end].to_owned())
                    } else {
                        literal.push('%');
                        i = p + 1;
                        continue;
                    }
                }
                Some(b'[') => {
                    let name_end = scan(bytes, p + 2, is_word);
                    if name_end > p + 2 && bytes.get(name_end) == Some(&b']') {
                        let name = &template[p + 2..name_end];
                        let kind = if name.eq_ignore_ascii_case("localhost") {
                            HostKind::Localhost
                        } else if name.eq_ignore_ascii_case("ip") {
                            HostKind::Ip
                        } else if name.eq_ignore_ascii_case("fqdn") {
                            HostKind::Fqdn
                        } else {
                            return Err(PathError::UnknownHostEscape {
                                template: template.to_owned(),
                                name: name.to_owned(),
                            });
                        };
                        i = name_end + 1;
                        Token::Host(kind)
                    } else {
                        literal.push('%');
                        i = p + 1;
                        continue;
                    }
                }
                _ => {
                    literal.push('%');
                    i = p + 1;
                    continue;
                }
            };
            if !literal.is_empty() {
                tokens.push(Token::Literal(std::mem::take(&mut literal)));
            }
            tokens.push(escape);
        }
        if !literal.is_empty() {
            tokens.push(Token::Literal(literal));
        }
        let static_prefix = match tokens.first() {
            Some(Token::Literal(s)) => s.clone(),
            _ => String::new(),
        };
        let needs_timestamp = tokens.iter().any(|t| matches!(t, Token::Time(_)));
        let needs_host_names = tokens.iter().any(|t| matches!(t, Token::Host(_)));
        Ok(PathTemplate {
            source: template.to_owned(),
            tokens,
            static_prefix,
            needs_timestamp,
            needs_host_names,
        })
    }

    /// The template as configured.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether rendering reads the event time (the `timestamp` header or the sink's clock).
    pub fn needs_timestamp(&self) -> bool {
        self.needs_timestamp
    }

    /// Whether the template has `%[localhost]`, `%[IP]` or `%[FQDN]`.
    pub fn needs_host_names(&self) -> bool {
        self.needs_host_names
    }

    /// Whether the template has no escapes at all (renders the same for every event).
    pub fn is_static(&self) -> bool {
        self.tokens.iter().all(|t| matches!(t, Token::Literal(_)))
    }

    /// The text every rendering starts with: the template up to its first escape, with `%%`
    /// already turned into `%`.
    pub fn static_prefix(&self) -> &str {
        &self.static_prefix
    }

    /// Appends the rendering of the template for an event with `headers` to `out`. On error
    /// `out` is left as it was.
    pub fn render(
        &self,
        headers: &Headers,
        ctx: &mut RenderContext,
        out: &mut String,
    ) -> Result<(), PathError> {
        let start = out.len();
        let result = self.render_inner(headers, ctx, out);
        if result.is_err() {
            out.truncate(start);
        }
        result
    }

    fn render_inner(
        &self,
        headers: &Headers,
        ctx: &mut RenderContext,
        out: &mut String,
    ) -> Result<(), PathError> {
        // `raw` is what `%t` prints: the header text itself, as Flume does.
        let time = if self.needs_timestamp {
            let (ts_ms, raw) = if ctx.use_local_timestamp {
                (ctx.now_ms, None)
            } else {
                let value =
                    headers
                        .get(TIMESTAMP_HEADER)
                        .ok_or_else(|| PathError::MissingTimestamp {
                            template: self.source.clone(),
                        })?;
                let ms = parse_millis(value).ok_or_else(|| PathError::InvalidTimestamp {
                    template: self.source.clone(),
                    value: truncate_for_message(value),
                })?;
                (ms, Some(value.as_str()))
            };
            let fields = ctx
                .fields(ts_ms)
                .ok_or_else(|| PathError::TimestampOutOfRange {
                    template: self.source.clone(),
                    millis: ts_ms,
                })?;
            let effective_ms = if ctx.round.is_some() {
                fields.rounded_ms
            } else {
                ts_ms
            };
            Some((ts_ms, raw, effective_ms, fields))
        } else {
            None
        };
        for token in &self.tokens {
            match token {
                Token::Literal(s) => out.push_str(s),
                Token::Header(name) => {
                    if let Some(v) = headers.get(name) {
                        push_encoded(out, v);
                    }
                }
                Token::Host(kind) => out.push_str(&ctx.host_encoded[*kind as usize]),
                Token::Time(escape) => {
                    if let Some((ts_ms, raw, effective_ms, fields)) = &time {
                        push_time(out, *escape, *ts_ms, *raw, *effective_ms, fields);
                    }
                }
            }
        }
        Ok(())
    }
}

fn scan(bytes: &[u8], from: usize, accept: impl Fn(u8) -> bool) -> usize {
    let mut j = from;
    while j < bytes.len() && accept(bytes[j]) {
        j += 1;
    }
    j
}

/// Java's `Long.valueOf` for ASCII input: optional sign, decimal digits, no spaces. Only such
/// text is ever echoed by `%t`, so it needs no encoding.
fn parse_millis(value: &str) -> Option<i64> {
    let digits = value.strip_prefix(['+', '-']).unwrap_or(value);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok()
}

fn truncate_for_message(value: &str) -> String {
    const MAX: usize = 64;
    match value.char_indices().nth(MAX) {
        Some((end, _)) => format!("{}...", &value[..end]),
        None => value.to_owned(),
    }
}

const WEEKDAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];
const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

fn weekday_name(f: &TimeFields) -> &'static str {
    WEEKDAYS
        .get(usize::try_from(f.weekday).unwrap_or(0))
        .copied()
        .unwrap_or("")
}

fn month_name(f: &TimeFields) -> &'static str {
    usize::try_from(f.month - 1)
        .ok()
        .and_then(|i| MONTHS.get(i))
        .copied()
        .unwrap_or("")
}

/// English names are ASCII, so their first three bytes are a char boundary.
fn short(name: &str) -> &str {
    name.get(..3).unwrap_or(name)
}

fn push_padded(out: &mut String, n: i64, width: usize) {
    // Writing to a String cannot fail.
    let _ = write!(out, "{n:0width$}");
}

fn push_time(
    out: &mut String,
    escape: TimeEscape,
    ts_ms: i64,
    raw: Option<&str>,
    effective_ms: i64,
    f: &TimeFields,
) {
    use TimeEscape as T;
    match escape {
        T::WeekdayShort => out.push_str(short(weekday_name(f))),
        T::WeekdayLong => out.push_str(weekday_name(f)),
        T::MonthShort => out.push_str(short(month_name(f))),
        T::MonthLong => out.push_str(month_name(f)),
        T::DateTime => {
            out.push_str(short(weekday_name(f)));
            out.push(' ');
            out.push_str(short(month_name(f)));
            out.push(' ');
            push_padded(out, f.day.into(), 1);
            out.push(' ');
            push_padded(out, f.hour.into(), 2);
            out.push(':');
            push_padded(out, f.minute.into(), 2);
            out.push(':');
            push_padded(out, f.second.into(), 2);
            out.push(' ');
            push_padded(out, f.year_of_era().into(), 4);
        }
        T::Day2 => push_padded(out, f.day.into(), 2),
        T::Day => push_padded(out, f.day.into(), 1),
        T::DateShort => {
            push_padded(out, f.month.into(), 2);
            out.push('/');
            push_padded(out, f.day.into(), 2);
            out.push('/');
            push_padded(out, (f.year_of_era() % 100).into(), 2);
        }
        T::Hour24Padded => push_padded(out, f.hour.into(), 2),
        T::Hour12Padded => push_padded(out, f.hour12().into(), 2),
        T::DayOfYear => push_padded(out, f.day_of_year.into(), 3),
        T::Hour24 => push_padded(out, f.hour.into(), 1),
        T::Hour12 => push_padded(out, f.hour12().into(), 1),
        T::Month2 => push_padded(out, f.month.into(), 2),
        T::Month => push_padded(out, f.month.into(), 1),
        T::Minute2 => push_padded(out, f.minute.into(), 2),
        T::AmPm => out.push_str(if f.hour < 12 { "AM" } else { "PM" }),
        // Java's integer division truncates toward zero.
        T::UnixSeconds => push_padded(out, effective_ms / 1000, 1),
        T::Second2 => push_padded(out, f.second.into(), 2),
        T::UnixMillis => match raw {
            Some(text) => out.push_str(text),
            None => push_padded(out, ts_ms, 1),
        },
        T::Year2 => push_padded(out, (f.year_of_era() % 100).into(), 2),
        T::Year4 => push_padded(out, f.year_of_era().into(), 4),
        T::Offset => {
            // SimpleDateFormat's Z: whole minutes, truncated toward zero.
            let minutes = f.offset_seconds / 60;
            out.push(if minutes < 0 { '-' } else { '+' });
            let minutes = minutes.abs();
            push_padded(out, i64::from((minutes / 60) * 100 + minutes % 60), 4);
        }
    }
}

/// Appends `value` with every character that could change the path's shape percent-encoded
/// (see the module docs).
fn push_encoded(out: &mut String, value: &str) {
    match value {
        "." => return out.push_str("%2E"),
        ".." => return out.push_str("%2E%2E"),
        _ => {}
    }
    let needs = |c: char| matches!(c, '/' | '\\' | '%' | ':') || c.is_control();
    if !value.chars().any(needs) {
        out.push_str(value);
        return;
    }
    let mut buf = [0u8; 4];
    for c in value.chars() {
        if needs(c) {
            for b in c.encode_utf8(&mut buf).bytes() {
                let _ = write!(out, "%{b:02X}");
            }
        } else {
            out.push(c);
        }
    }
}

/// Longest path component HDFS (`dfs.namenode.fs-limits.max-component-length`) and local
/// filesystems (`NAME_MAX`) accept, in bytes.
pub const MAX_COMPONENT_BYTES: usize = 255;

/// Shortens every `/`-separated component of `rendered` longer than `max` bytes to its first
/// bytes, `~` and a 64-bit hash of the whole component (16 hex digits), `max` bytes at most.
/// A header value too long for one file name would otherwise fail every retry of its batch
/// and halt the sink; shortened, its events land in a bucket of their own (distinct values
/// stay distinct but for a hash collision), under the same base directory.
pub fn shorten_components(rendered: &mut String, max: usize) {
    const HASH: usize = 17;
    if rendered.split('/').all(|c| c.len() <= max) {
        return;
    }
    let mut out = String::with_capacity(rendered.len());
    for (i, c) in rendered.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        if c.len() <= max {
            out.push_str(c);
            continue;
        }
        let mut keep = max.saturating_sub(HASH);
        while !c.is_char_boundary(keep) {
            keep -= 1;
        }
        // FNV-1a: stable across builds and releases, unlike std's hasher.
        let hash = c.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        });
        let _ = write!(out, "{}~{hash:016x}", &c[..keep]);
    }
    *rendered = out;
}

/// Defence in depth: checks that `rendered` (a path rendered from a template whose
/// [`static_prefix`](PathTemplate::static_prefix) is `static_prefix`) stays inside the
/// directory that prefix names: the prefix up to and including its last `/` (nothing if it
/// has none, i.e. a relative template must stay relative). The rest may not climb above that
/// directory at any point through `..` (empty and `.` components are ignored, as HDFS and
/// POSIX normalise them).
pub fn ensure_within(rendered: &str, static_prefix: &str) -> Result<(), PathError> {
    let base = match static_prefix.rfind('/') {
        Some(i) => &static_prefix[..=i],
        None => "",
    };
    let escapes = || PathError::EscapesBase {
        rendered: rendered.to_owned(),
        base: base.to_owned(),
    };
    let rest = rendered.strip_prefix(base).ok_or_else(escapes)?;
    if base.is_empty() && rest.starts_with('/') {
        return Err(escapes());
    }
    let mut depth: usize = 0;
    for component in rest.split('/') {
        match component {
            "" | "." => {}
            ".." => depth = depth.checked_sub(1).ok_or_else(escapes)?,
            _ => depth += 1,
        }
    }
    Ok(())
}

impl PathTemplate {
    /// [`ensure_within`] with this template's static prefix.
    pub fn ensure_within(&self, rendered: &str) -> Result<(), PathError> {
        ensure_within(rendered, &self.static_prefix)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use proptest::prelude::*;

    /// 2023-11-14T22:13:20Z, a Tuesday; 14:13:20 PST in Los Angeles.
    const TS: i64 = 1_700_000_000_000;

    fn utc() -> TimeZone {
        TimeZone::UTC
    }

    fn la() -> TimeZone {
        parse_time_zone("America/Los_Angeles").unwrap()
    }

    fn hosts() -> HostNames {
        HostNames {
            localhost: "node1".into(),
            ip: "10.0.0.7".into(),
            fqdn: "node1.example.com".into(),
        }
    }

    fn ctx(tz: TimeZone, round: Option<Rounding>) -> RenderContext {
        RenderContext::new(tz, round, false, hosts())
    }

    fn headers(pairs: &[(&str, &str)]) -> Headers {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn ts_headers(ts: i64) -> Headers {
        headers(&[("timestamp", &ts.to_string())])
    }

    fn render_with(template: &str, h: &Headers, c: &mut RenderContext) -> String {
        let t = PathTemplate::parse(template).unwrap();
        let mut out = String::new();
        t.render(h, c, &mut out).unwrap();
        out
    }

    fn render_at(template: &str, ts: i64, tz: TimeZone, round: Option<Rounding>) -> String {
        render_with(template, &ts_headers(ts), &mut ctx(tz, round))
    }

    fn ms(s: &str) -> i64 {
        s.parse::<Timestamp>().unwrap().as_millisecond()
    }

    #[test]
    fn every_time_escape_in_utc() {
        let cases = [
            ("%a", "Tue"),
            ("%A", "Tuesday"),
            ("%b", "Nov"),
            ("%B", "November"),
            ("%c", "Tue Nov 14 22:13:20 2023"),
            ("%d", "14"),
            ("%e", "14"),
            ("%D", "11/14/23"),
            ("%H", "22"),
            ("%I", "10"),
            ("%j", "318"),
            ("%k", "22"),
            ("%l", "10"),
            ("%m", "11"),
            ("%n", "11"),
            ("%M", "13"),
            ("%p", "PM"),
            ("%s", "1700000000"),
            ("%S", "20"),
            ("%t", "1700000000000"),
            ("%y", "23"),
            ("%Y", "2023"),
            ("%z", "+0000"),
            ("%%", "%"),
        ];
        for (template, want) in cases {
            assert_eq!(render_at(template, TS, utc(), None), want, "{template}");
        }
    }

    #[test]
    fn every_time_escape_in_los_angeles() {
        let got = render_at(
            "%a %A %b %B|%c|%d %e %D %H %I %j %k %l %m %n %M %p %s %S %t %y %Y %z",
            TS,
            la(),
            None,
        );
        assert_eq!(
            got,
            "Tue Tuesday Nov November|Tue Nov 14 14:13:20 2023|14 14 11/14/23 14 02 318 14 2 \
             11 11 13 PM 1700000000 20 1700000000000 23 2023 -0800"
        );
        // Summer time.
        let summer = ms("2023-07-04T16:05:09Z");
        assert_eq!(render_at("%H:%M %z", summer, la(), None), "09:05 -0700");
    }

    #[test]
    fn padding_and_unpadded_escapes() {
        let t = ms("2024-03-05T04:07:09.123Z");
        assert_eq!(
            render_at("%d|%e|%H|%k|%I|%l|%m|%n|%M|%S|%j|%p|%c", t, utc(), None),
            "05|5|04|4|04|4|03|3|07|09|065|AM|Tue Mar 5 04:07:09 2024"
        );
        // Midnight and noon on the 12-hour clock.
        let midnight = ms("2024-03-05T00:30:00Z");
        assert_eq!(render_at("%I %l %p", midnight, utc(), None), "12 12 AM");
        let noon = ms("2024-03-05T12:30:00Z");
        assert_eq!(render_at("%I %l %p", noon, utc(), None), "12 12 PM");
        // Flume's own no-padding test: %n-%e.
        assert_eq!(
            render_at("%n-%e", ms("2014-05-03T13:46:33Z"), utc(), None),
            "5-3"
        );
        assert_eq!(
            render_at("%n-%e", ms("2014-11-13T13:46:33Z"), utc(), None),
            "11-13"
        );
    }

    #[test]
    fn offsets_with_half_hours_and_fixed_zones() {
        let kolkata = parse_time_zone("Asia/Kolkata").unwrap();
        assert_eq!(render_at("%H:%M %z", TS, kolkata, None), "03:43 +0530");
        let gmt = parse_time_zone("GMT-3:30").unwrap();
        assert_eq!(render_at("%z", TS, gmt, None), "-0330");
    }

    #[test]
    fn rounding_down() {
        let t = ms("2023-11-14T22:13:27.456Z");
        let r = |v, u| Some(Rounding::new(v, u).unwrap());
        assert_eq!(
            render_at("%H:%M:%S", t, utc(), r(10, RoundUnit::Minute)),
            "22:10:00"
        );
        assert_eq!(
            render_at("%H:%M:%S", t, utc(), r(1, RoundUnit::Hour)),
            "22:00:00"
        );
        assert_eq!(
            render_at("%H:%M:%S", t, utc(), r(30, RoundUnit::Second)),
            "22:13:00"
        );
        assert_eq!(
            render_at("%H:%M:%S", t, utc(), r(5, RoundUnit::Second)),
            "22:13:25"
        );
        assert_eq!(
            render_at("%H:%M:%S", t, utc(), r(12, RoundUnit::Hour)),
            "12:00:00"
        );
        // %s follows the rounded time, %t stays the header as written.
        assert_eq!(
            render_at("%s %t", t, utc(), r(10, RoundUnit::Minute)),
            format!("{} {t}", ms("2023-11-14T22:10:00Z") / 1000)
        );
        // Flume's own: 13:46:33 rounded to 5 minutes is 13:45:00.
        assert_eq!(
            render_at(
                "%s",
                ms("2012-06-23T13:46:33.234Z"),
                utc(),
                r(5, RoundUnit::Minute)
            ),
            (ms("2012-06-23T13:45:00Z") / 1000).to_string()
        );
    }

    #[test]
    fn rounding_uses_the_wall_clock_of_the_zone() {
        // 14:13:20 in Los Angeles: 12-hour rounding gives local noon, not UTC noon.
        let r = Some(Rounding::new(12, RoundUnit::Hour).unwrap());
        assert_eq!(render_at("%H:%M %z", TS, la(), r), "12:00 -0800");
        assert_eq!(render_at("%H:%M", TS, utc(), r), "12:00");
        // Kolkata is +05:30: hour rounding lands on the local hour, half past in UTC.
        let r1 = Some(Rounding::new(1, RoundUnit::Hour).unwrap());
        let kolkata = parse_time_zone("Asia/Kolkata").unwrap();
        assert_eq!(
            render_at("%s", TS, kolkata, r1),
            (ms("2023-11-14T21:30:00Z") / 1000).to_string()
        );
    }

    #[test]
    fn rounding_across_dst_never_moves_forward() {
        let r1 = Some(Rounding::new(1, RoundUnit::Hour).unwrap());
        let r2 = Some(Rounding::new(2, RoundUnit::Hour).unwrap());
        // 2023-11-05 01:45 PDT (first 01:xx); the hour starts at 01:00 PDT.
        let first = ms("2023-11-05T08:45:00Z");
        assert_eq!(render_at("%H:%M %z", first, la(), r1), "01:00 -0700");
        // 01:45 PST (second 01:xx): Java's choice, 01:00 PST.
        let second = ms("2023-11-05T09:45:00Z");
        assert_eq!(render_at("%H:%M %z", second, la(), r1), "01:00 -0800");
        // 2023-03-12 03:10 PDT, rounded to 2 hours: wall 02:00 does not exist; like Java,
        // take the later reading, 03:00 PDT.
        let after_gap = ms("2023-03-12T10:10:00Z");
        assert_eq!(render_at("%H:%M %z", after_gap, la(), r2), "03:00 -0700");
    }

    #[test]
    fn local_timestamp_uses_the_sinks_clock() {
        let mut c = RenderContext::new(utc(), None, true, hosts());
        c.now_ms = TS;
        let t = PathTemplate::parse("%Y/%m/%d/%H %t").unwrap();
        let mut out = String::new();
        // The header is ignored, even when invalid.
        t.render(&headers(&[("timestamp", "bogus")]), &mut c, &mut out)
            .unwrap();
        assert_eq!(out, "2023/11/14/22 1700000000000");
        // Flume's race test: 02:59:59 rounded to 10 minutes is 02:50.
        let mut c = RenderContext::new(
            utc(),
            Some(Rounding::new(10, RoundUnit::Minute).unwrap()),
            true,
            hosts(),
        );
        c.now_ms = ms("2013-04-21T02:59:59Z");
        assert_eq!(render_with("%H:%M", &Headers::new(), &mut c), "02:50");
    }

    #[test]
    fn missing_or_bad_timestamp_is_a_helpful_error() {
        let t = PathTemplate::parse("/flume/%Y").unwrap();
        let mut c = ctx(utc(), None);
        let mut out = String::from("keep");
        let err = t.render(&Headers::new(), &mut c, &mut out).unwrap_err();
        assert!(matches!(err, PathError::MissingTimestamp { .. }));
        let msg = err.to_string();
        assert!(msg.contains("/flume/%Y"), "{msg}");
        assert!(msg.contains("timestamp"), "{msg}");
        assert!(msg.contains("hdfs.useLocalTimeStamp = true"), "{msg}");
        assert!(msg.contains("interceptor"), "{msg}");
        assert_eq!(out, "keep", "the buffer is restored on error");

        for bad in ["", "abc", " 1", "1.5", "+", "99999999999999999999"] {
            let err = t
                .render(&headers(&[("timestamp", bad)]), &mut c, &mut out)
                .unwrap_err();
            assert!(matches!(err, PathError::InvalidTimestamp { .. }), "{bad:?}");
            assert!(err.to_string().contains("hdfs.useLocalTimeStamp"));
        }
        let err = t
            .render(&ts_headers(i64::MAX), &mut c, &mut out)
            .unwrap_err();
        assert!(matches!(err, PathError::TimestampOutOfRange { .. }));
        // Java's Long.valueOf accepts a sign.
        assert_eq!(
            render_with(
                "%Y %t",
                &headers(&[("timestamp", "+1700000000000")]),
                &mut c
            ),
            "2023 +1700000000000"
        );
    }

    #[test]
    fn templates_without_time_need_no_timestamp() {
        let t = PathTemplate::parse("/flume/%{type}/%[localhost]/100%%").unwrap();
        assert!(!t.needs_timestamp());
        assert!(t.needs_host_names());
        let got = render_with(
            "/flume/%{type}/%[localhost]/100%%",
            &headers(&[("type", "web")]),
            &mut ctx(utc(), None),
        );
        assert_eq!(got, "/flume/web/node1/100%");
        assert!(PathTemplate::parse("/a/%H").unwrap().needs_timestamp());
        assert!(PathTemplate::parse("/a/%t").unwrap().needs_timestamp());
    }

    #[test]
    fn headers_and_missing_headers() {
        let mut c = ctx(utc(), None);
        let h = headers(&[("a.b-c_1", "x"), ("type", "web")]);
        assert_eq!(render_with("/l/%{a.b-c_1}/%{type}", &h, &mut c), "/l/x/web");
        assert_eq!(render_with("/l/%{missing}/end", &h, &mut c), "/l//end");
    }

    #[test]
    fn header_values_cannot_escape_the_base() {
        let mut c = ctx(utc(), None);
        let cases = [
            ("../../x", "..%2F..%2Fx"),
            ("..", "%2E%2E"),
            (".", "%2E"),
            ("...", "..."),
            ("a/b", "a%2Fb"),
            ("a\\b", "a%5Cb"),
            ("50%", "50%25"),
            ("%2F", "%252F"),
            ("c:d", "c%3Ad"),
            ("nul\0x", "nul%00x"),
            ("line\nx", "line%0Ax"),
            ("\u{85}", "%C2%85"),
            ("héllo", "héllo"),
        ];
        for (value, want) in cases {
            let h = headers(&[("dir", value)]);
            let got = render_with("/base/%{dir}/f", &h, &mut c);
            assert_eq!(got, format!("/base/{want}/f"), "{value:?}");
            ensure_within(&got, "/base/").unwrap();
        }
    }

    #[test]
    fn host_escapes_are_case_insensitive_and_encoded() {
        let mut c = RenderContext::new(
            utc(),
            None,
            false,
            HostNames {
                localhost: "h".into(),
                ip: "fe80::1".into(),
                fqdn: "h.example".into(),
            },
        );
        assert_eq!(
            render_with("%[localhost]/%[IP]/%[fqdn]/%[Ip]", &Headers::new(), &mut c),
            "h/fe80%3A%3A1/h.example/fe80%3A%3A1"
        );
    }

    #[test]
    fn parse_follows_flumes_tag_pattern() {
        let literal = |s: &str| {
            let t = PathTemplate::parse(s).unwrap();
            assert!(t.is_static(), "{s}");
            let mut out = String::new();
            t.render(&Headers::new(), &mut ctx(utc(), None), &mut out)
                .unwrap();
            out
        };
        // A `%` that starts no escape stays as it is.
        assert_eq!(literal("a%"), "a%");
        assert_eq!(literal("a%-b"), "a%-b");
        assert_eq!(literal("%{}"), "%{}");
        assert_eq!(literal("%{a b}"), "%{a b}");
        assert_eq!(literal("%{open"), "%{open");
        assert_eq!(literal("%[]"), "%[]");
        assert_eq!(literal("%[a.b]"), "%[a.b]");
        assert_eq!(literal("%é"), "%é");
        assert_eq!(literal("%%{x}"), "%{x}");

        let err = PathTemplate::parse("/a/%Q").unwrap_err();
        assert!(matches!(
            err,
            PathError::UnknownEscape {
                escape: 'Q',
                position: 3,
                ..
            }
        ));
        assert!(err.to_string().contains("%%"));
        let err = PathTemplate::parse("/a/%[abcdefg]").unwrap_err();
        assert!(matches!(err, PathError::UnknownHostEscape { .. }));
        assert!(err.to_string().contains("%[localhost]"));
    }

    #[test]
    fn static_prefix_is_text_before_the_first_escape() {
        let p = |s: &str| PathTemplate::parse(s).unwrap().static_prefix().to_owned();
        assert_eq!(
            p("hdfs://nn:8020/flume/events/%Y-%m-%d/%H"),
            "hdfs://nn:8020/flume/events/"
        );
        assert_eq!(p("/a/100%%/b%{x}"), "/a/100%/b");
        assert_eq!(p("%{x}/a"), "");
        assert_eq!(p("/plain/dir"), "/plain/dir");
    }

    #[test]
    fn ensure_within_rejects_climbing_out() {
        ensure_within("/base/2023/x", "/base/%Y").unwrap_or_else(|e| panic!("{e}"));
        ensure_within("/base/2023/../x", "/base/").unwrap();
        ensure_within("/base/a//b/./c", "/base/").unwrap();
        ensure_within("hdfs://nn/base/a", "hdfs://nn/base/").unwrap();
        ensure_within("rel/a", "rel/").unwrap();
        ensure_within("x/y", "").unwrap();
        for (rendered, prefix) in [
            ("/base/..", "/base/"),
            ("/base/a/../..", "/base/"),
            ("/base//../x", "/base/"),
            ("/other/x", "/base/"),
            ("/etc/passwd", ""),
            ("../x", ""),
            ("/base/x/../../y", "/base/x"),
        ] {
            let err = ensure_within(rendered, prefix).unwrap_err();
            assert!(matches!(err, PathError::EscapesBase { .. }), "{rendered}");
        }
    }

    #[test]
    fn time_zones() {
        for name in [
            "UTC",
            "GMT",
            "America/Los_Angeles",
            "Europe/Berlin",
            "Etc/GMT+2",
            "GMT+2",
            "GMT-08:00",
            "GMT+0530",
            "PST",
            "EST",
        ] {
            parse_time_zone(name).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        let at = |name: &str| render_at("%H %z", TS, parse_time_zone(name).unwrap(), None);
        assert_eq!(at("GMT+2"), "00 +0200");
        assert_eq!(at("GMT+0530"), "03 +0530");
        assert_eq!(at("PST"), "14 -0800");
        assert_eq!(at("EST"), "17 -0500");
        for bad in [
            "",
            "Mars/Olympus",
            "GMT+24",
            "GMT+1:5",
            "GMT+12345",
            "UTC+2x",
            "GMT+é1",
            "GMT+1é",
            "GMT+",
        ] {
            let err = parse_time_zone(bad).unwrap_err();
            assert!(matches!(err, PathError::UnknownTimeZone { .. }), "{bad}");
            assert!(err.to_string().contains("America/Los_Angeles"));
        }
    }

    #[test]
    fn round_settings_are_validated_like_flume() {
        assert_eq!(RoundUnit::parse("Minute").unwrap(), RoundUnit::Minute);
        assert_eq!(RoundUnit::parse("HOUR").unwrap(), RoundUnit::Hour);
        assert!(RoundUnit::parse("day").is_err());
        assert!(Rounding::new(60, RoundUnit::Minute).is_ok());
        assert!(Rounding::new(61, RoundUnit::Second).is_err());
        assert!(Rounding::new(24, RoundUnit::Hour).is_ok());
        assert!(Rounding::new(25, RoundUnit::Hour).is_err());
        assert!(Rounding::new(0, RoundUnit::Hour).is_err());
        assert!(Rounding::new(-1, RoundUnit::Hour).is_err());
        // Constructed directly with 0 it behaves as 1, as in Flume.
        let r = Some(Rounding {
            value: 0,
            unit: RoundUnit::Minute,
        });
        assert_eq!(
            render_at("%M:%S", ms("2023-11-14T22:13:27Z"), utc(), r),
            "13:00"
        );
    }

    #[test]
    fn cache_is_per_second_and_rounding_aware() {
        let mut c = ctx(utc(), None);
        let t = PathTemplate::parse("%S %s %t").unwrap();
        let mut out = String::new();
        for (ts, want) in [
            (TS, "20 1700000000 1700000000000"),
            (TS + 999, "20 1700000000 1700000000999"),
            (TS + 1000, "21 1700000001 1700000001000"),
            (TS - 1, "19 1699999999 1699999999999"),
        ] {
            out.clear();
            t.render(&ts_headers(ts), &mut c, &mut out).unwrap();
            assert_eq!(out, want);
        }
        // Before the epoch, %s truncates toward zero as Java does; fields use the floor second.
        out.clear();
        t.render(&ts_headers(-1500), &mut c, &mut out).unwrap();
        assert_eq!(out, "58 -1 -1500");
    }

    #[test]
    fn years_outside_four_digits() {
        assert_eq!(
            render_at("%Y %y", ms("0999-01-01T00:00:00Z"), utc(), None),
            "0999 99"
        );
        assert_eq!(
            render_at("%Y %y", ms("2005-01-01T00:00:00Z"), utc(), None),
            "2005 05"
        );
    }

    #[test]
    fn detect_host_names() {
        let h = HostNames::detect();
        assert!(
            !h.localhost.is_empty() && !h.ip.is_empty() && !h.fqdn.is_empty(),
            "{h:?}"
        );
        assert!(h.ip.parse::<std::net::IpAddr>().is_ok(), "{h:?}");
        assert_eq!(HostNames::detect(), h, "cached");
    }

    /// Reverses `push_encoded`, to show it loses nothing.
    fn decode(s: &str) -> String {
        let bytes = s.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%' {
                out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
                i += 3;
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        String::from_utf8(out).unwrap()
    }

    fn fragment() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-z/_-]{0,4}",
            Just("%{h1}".to_owned()),
            Just("%{h2}".to_owned()),
            Just("%[localhost]".to_owned()),
            Just("%[IP]".to_owned()),
            Just("%Y".to_owned()),
            Just("%D".to_owned()),
            Just("%c".to_owned()),
            Just("%%".to_owned()),
            Just("%".to_owned()),
            Just("%{".to_owned()),
        ]
    }

    fn hostile_value() -> impl Strategy<Value = String> {
        prop_oneof![
            Just(".".to_owned()),
            Just("..".to_owned()),
            Just("../..".to_owned()),
            Just("/".to_owned()),
            Just("".to_owned()),
            "[./\\\\%:a]{0,6}",
            any::<String>(),
        ]
    }

    proptest! {
        #[test]
        fn arbitrary_templates_and_headers_never_panic(
            template in any::<String>(),
            ts in any::<String>(),
            value in any::<String>(),
            now in any::<i64>(),
            local in any::<bool>(),
            round_value in 0u32..100,
            unit in 0u8..3,
            tz_name in prop_oneof![Just("UTC"), Just("America/Los_Angeles"), Just("Asia/Kolkata")],
        ) {
            let unit = [RoundUnit::Second, RoundUnit::Minute, RoundUnit::Hour][usize::from(unit)];
            let tz = parse_time_zone(tz_name).unwrap();
            let round = (round_value > 0).then_some(Rounding { value: round_value, unit });
            let mut c = RenderContext::new(tz, round, local, hosts());
            c.now_ms = now;
            if let Ok(t) = PathTemplate::parse(&template) {
                let h = headers(&[("timestamp", &ts), ("h1", &value)]);
                let mut out = String::new();
                let _ = t.render(&h, &mut c, &mut out);
                let _ = t.ensure_within(&out);
                let _ = ensure_within(&out, &template);
            }
            let _ = parse_time_zone(&template);
        }

        #[test]
        fn numeric_timestamps_render_or_error_cleanly(ts in any::<i64>(), round_value in 1u32..=24) {
            let round = Some(Rounding { value: round_value, unit: RoundUnit::Hour });
            let mut c = RenderContext::new(la(), round, false, hosts());
            let t = PathTemplate::parse("%c %s %z %j").unwrap();
            let mut out = String::new();
            match t.render(&ts_headers(ts), &mut c, &mut out) {
                Ok(()) => {}
                Err(e) => prop_assert!(matches!(e, PathError::TimestampOutOfRange { .. }), "{}", e),
            }
        }

        #[test]
        fn header_values_never_make_dot_components(
            fragments in prop::collection::vec(fragment(), 0..8),
            h1 in hostile_value(),
            h2 in hostile_value(),
        ) {
            // Literals here have no dots, so any `.`/`..` component would have come from a value.
            let template = format!("/base/{}", fragments.concat());
            // A lone `%` followed by a letter can make an unknown escape.
            let Ok(t) = PathTemplate::parse(&template) else { return Ok(()) };
            let mut c = ctx(utc(), None);
            let mut out = String::new();
            t.render(&headers(&[("timestamp", "1700000000000"), ("h1", &h1), ("h2", &h2)]), &mut c, &mut out).unwrap();
            for component in out.split('/') {
                prop_assert!(component != ".." && component != ".", "{out:?}");
            }
            prop_assert!(out.starts_with("/base/"));
            t.ensure_within(&out).unwrap();
            ensure_within(&out, "/base/").unwrap();
        }

        #[test]
        fn encoding_is_lossless(value in any::<String>()) {
            let mut out = String::new();
            push_encoded(&mut out, &value);
            prop_assert!(!out.contains(['/', '\\', ':']));
            prop_assert!(!out.chars().any(char::is_control));
            prop_assert_eq!(decode(&out), value);
        }
    }

    #[test]
    fn long_components_are_shortened_distinctly() {
        let mut short = String::from("hdfs://nn/base/east/x");
        shorten_components(&mut short, MAX_COMPONENT_BYTES);
        assert_eq!(short, "hdfs://nn/base/east/x");
        let long = |c: &str| format!("/base/{}/d", c.repeat(300));
        let (mut a, mut b) = (long("a"), long("a"));
        b.push('x');
        shorten_components(&mut a, MAX_COMPONENT_BYTES);
        shorten_components(&mut b, MAX_COMPONENT_BYTES);
        assert!(a.starts_with("/base/aaa") && a.ends_with("/d"), "{a}");
        assert!(a.split('/').all(|c| c.len() <= MAX_COMPONENT_BYTES), "{a}");
        let mut a2 = long("a");
        shorten_components(&mut a2, MAX_COMPONENT_BYTES);
        assert_eq!(a, a2, "the same value, the same bucket");
        let mut c = long("b");
        shorten_components(&mut c, MAX_COMPONENT_BYTES);
        assert_ne!(a, c);
        // Multi-byte characters are cut at a character boundary.
        let mut u = long("é");
        shorten_components(&mut u, MAX_COMPONENT_BYTES);
        assert!(u.split('/').all(|c| c.len() <= MAX_COMPONENT_BYTES), "{u}");
        ensure_within(&u, "/base/").expect("still under the base");
    }
}
