//! The `regex_extractor` interceptor (Flume's RegexExtractorInterceptor): finds a Java regular
//! expression in the event body (decoded as UTF-8, invalid bytes as U+FFFD, as Java's
//! `new String(body, UTF_8)`) and sets one header per capture group, through the serializer
//! listed at the group's position in `serializers`.
//!
//! As in Flume: the pattern is searched once (`Matcher.find()`); group i (1-based) goes to the
//! i-th listed serializer; groups beyond the serializers and serializers beyond the groups are
//! ignored; headers are overwritten. Two serializers exist, Flume's pass-through (the group's
//! text) and its millis serializer (the group parsed with a Joda pattern, in the agent's local
//! time zone unless the pattern has an offset, as epoch milliseconds); other serializer classes
//! are Java code flumen cannot load and are refused at start-up.
//!
//! Where Flume's behaviour cannot be kept (docs/CONFIG.md, `regex_extractor`): a group that
//! took no part in the match is `null` in Flume, which puts a `null` header value; flumen
//! headers have no null, so the header is removed (reading it gives "absent" in both). A value
//! the millis serializer cannot parse throws out of Flume's interceptor and fails the source's
//! whole batch (which most sources then retry forever); here that one header is left as it was
//! and a warning is logged, so one odd line cannot wedge a source.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use jiff::fmt::strtime::{self, BrokenDownTime};
use jiff::tz::TimeZone;

use super::{Interceptor, InterceptorSpec, InterceptorType};
use crate::config::java_regex::JavaRegex;
use crate::config::{ConfigError, Keys, Registered, Val, WarningKind};
use crate::event::{Event, Headers};

/// `regex_extractor` / Flume's `RegexExtractorInterceptor$Builder`.
pub const TYPE: InterceptorType = Registered {
    alias: "regex_extractor",
    class: Some("org.apache.flume.interceptor.RegexExtractorInterceptor$Builder"),
    parse,
    minimal: &[
        ("regex", "(\\d+)"),
        ("serializers", "s1"),
        ("serializers.s1.name", "n"),
    ],
};

/// Flume's `serializers.<s>.type` when unset: its pass-through serializer.
const DEFAULT_TYPE: &str = "DEFAULT";
const PASS_THROUGH: &str =
    "org.apache.flume.interceptor.RegexExtractorInterceptorPassThroughSerializer";
const MILLIS: &str = "org.apache.flume.interceptor.RegexExtractorInterceptorMillisSerializer";

/// What a serializer makes of a group's text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Serializer {
    /// The text as matched.
    PassThrough,
    /// The text parsed with a Joda pattern, as epoch milliseconds.
    Millis {
        /// The Joda pattern as written (`serializers.<s>.pattern`).
        joda: String,
        /// The same pattern as a jiff strptime format.
        strptime: String,
    },
}

/// One entry of `serializers`: the header its group sets, and how.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamedSerializer {
    /// `serializers.<s>.name` (required).
    pub header: String,
    /// `serializers.<s>.type` (default `DEFAULT`, the pass-through).
    pub serializer: Serializer,
}

/// The regex_extractor interceptor's keys (docs/CONFIG.md, `regex_extractor`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegexExtractorConfig {
    /// `regex` (required): searched once in the body.
    pub regex: JavaRegex,
    /// `serializers` (required, names split on whitespace), in group order.
    pub serializers: Vec<NamedSerializer>,
}

fn parse(keys: &mut Keys<'_>) -> Result<Box<dyn InterceptorSpec>, ConfigError> {
    keys.document_default("regex", "required");
    let regex = keys.java_regex("regex")?.ok_or_else(|| {
        keys.missing(
            "regex",
            "the Java regular expression whose groups become headers, e.g. (\\d+):(\\d+)",
        )
    })?;
    let list = keys.required(
        "serializers",
        "the names of the serializers, one per capture group in order, e.g. `s1 s2`",
    )?;
    let names: Vec<&str> = list.value.split_whitespace().collect();
    if names.is_empty() {
        return Err(keys.bad("serializers", &list, "at least one serializer name"));
    }
    keys.document_default("serializers.<s>.name", "required");
    keys.document_default("serializers.<s>.type", DEFAULT_TYPE);
    keys.document_default("serializers.<s>.pattern", "none");
    let mut sub = keys.take_prefixed("serializers.");
    let mut serializers = Vec::with_capacity(names.len());
    for name in &names {
        let mut take = |what: &str| -> Option<(String, Val)> {
            let key = format!("serializers.{name}.{what}");
            let at = sub.iter().position(|(k, _)| *k == key)?;
            Some(sub.remove(at))
        };
        let header = take("name");
        let ty = take("type");
        let pattern = take("pattern");
        let header = match header {
            Some((_, v)) if !v.value.is_empty() => v.value,
            _ => {
                return Err(keys.missing(
                    &format!("serializers.{name}.name"),
                    format!("the header that serializer `{name}`'s group sets"),
                ))
            }
        };
        let ty_value = ty.as_ref().map_or(DEFAULT_TYPE, |(_, v)| v.value.as_str());
        let serializer = match ty_value {
            DEFAULT_TYPE | PASS_THROUGH => {
                if let Some((k, v)) = &pattern {
                    keys.warn(
                        v.line,
                        k,
                        WarningKind::IgnoredKey {
                            reason: "only the millis serializer reads `pattern`".into(),
                        },
                    );
                }
                Serializer::PassThrough
            }
            MILLIS => {
                let key = format!("serializers.{name}.pattern");
                let Some((_, v)) = pattern.filter(|(_, v)| !v.value.is_empty()) else {
                    return Err(keys.missing(
                        &key,
                        "the Joda date pattern of the group, e.g. yyyy-MM-dd HH:mm:ss",
                    ));
                };
                let strptime = joda_to_strptime(&v.value).map_err(|e| keys.bad(&key, &v, e))?;
                Serializer::Millis {
                    joda: v.value,
                    strptime,
                }
            }
            other => {
                let line = ty.as_ref().map_or(list.line, |(_, v)| v.line);
                return Err(keys.unsupported(
                    &format!("serializers.{name}.type"),
                    line,
                    format!("the custom serializer class `{other}`"),
                    format!(
                        "flumen cannot load Java classes; its serializers are {DEFAULT_TYPE} (the pass-through, also {PASS_THROUGH}) and {MILLIS}"
                    ),
                ));
            }
        };
        serializers.push(NamedSerializer { header, serializer });
    }
    for (k, v) in sub {
        keys.warn(
            v.line,
            &k,
            WarningKind::IgnoredKey {
                reason: format!(
                    "not a key of a serializer listed in `serializers` ({}): name, type, pattern",
                    names.join(", ")
                ),
            },
        );
    }
    Ok(Box::new(RegexExtractorConfig { regex, serializers }))
}

/// A Joda `DateTimeFormat` pattern as a jiff strptime format; the error names what cannot be
/// rendered with Joda's meaning.
fn joda_to_strptime(joda: &str) -> Result<String, String> {
    let chars: Vec<char> = joda.chars().collect();
    let mut out = String::new();
    let literal = |out: &mut String, c: char| {
        if c == '%' {
            out.push_str("%%");
        } else {
            out.push(c);
        }
    };
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        if c == '\'' {
            // Quoted text; '' is a quote, inside or outside quotes.
            if chars.get(i + 1) == Some(&'\'') {
                out.push('\'');
                i += 2;
                continue;
            }
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err("a pattern whose quoted text ends with a `'`".into()),
                    Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                        out.push('\'');
                        i += 2;
                    }
                    Some('\'') => {
                        i += 1;
                        break;
                    }
                    Some(&q) => {
                        literal(&mut out, q);
                        i += 1;
                    }
                }
            }
            continue;
        }
        if !c.is_ascii_alphabetic() {
            literal(&mut out, c);
            i += 1;
            continue;
        }
        let run = chars[i..].iter().take_while(|&&d| d == c).count();
        let spec = match (c, run) {
            ('y', 4) => "%Y",
            ('M', 2) => "%m",
            ('M', 3) => "%b",
            ('M', 4) => "%B",
            ('d', 2) => "%d",
            ('H', 2) => "%H",
            ('m', 2) => "%M",
            ('s', 2) => "%S",
            ('S', 3) => "%f",
            ('Z', 1) => "%z",
            ('Z', 2) => "%:z",
            _ => {
                return Err(format!(
                    "a Joda pattern flumen can render: `{}` is not one of yyyy, MM, MMM, MMMM, dd, HH, mm, ss, SSS, Z, ZZ or 'quoted text'",
                    c.to_string().repeat(run)
                ))
            }
        };
        out.push_str(spec);
        i += run;
    }
    Ok(out)
}

/// `text` parsed with `format` as Joda's `parseMillis` does: fields the pattern lacks are those
/// of 1970-01-01T00:00:00.000, and without an offset the time is the agent's local time.
fn parse_millis(format: &str, text: &str, tz: &TimeZone) -> Result<i64, jiff::Error> {
    let mut t: BrokenDownTime = strtime::parse(format, text)?;
    if t.year().is_none() {
        t.set_year(Some(1970))?;
    }
    if t.month().is_none() {
        t.set_month(Some(1))?;
    }
    if t.day().is_none() {
        t.set_day(Some(1))?;
    }
    if t.hour().is_none() {
        t.set_hour(Some(0))?;
    }
    if t.minute().is_none() {
        t.set_minute(Some(0))?;
    }
    if t.second().is_none() {
        t.set_second(Some(0))?;
    }
    let ts = match t.offset() {
        Some(_) => t.to_timestamp()?,
        None => t.to_datetime()?.to_zoned(tz.clone())?.timestamp(),
    };
    Ok(ts.as_millisecond())
}

impl InterceptorSpec for RegexExtractorConfig {
    fn build(&self) -> Box<dyn Interceptor> {
        Box::new(RegexExtractor {
            config: self.clone(),
            tz: TimeZone::system(),
            unparsed: Arc::new(AtomicU64::new(0)),
        })
    }
}

/// A built regex_extractor: the config, and the local time zone read once at start-up.
#[derive(Debug)]
struct RegexExtractor {
    config: RegexExtractorConfig,
    tz: TimeZone,
    /// Values the millis serializer could not parse, for the rate-limited warning.
    unparsed: Arc<AtomicU64>,
}

impl Interceptor for RegexExtractor {
    fn intercept(&self, event: &mut Event) -> bool {
        self.extract(event);
        true
    }
}

impl RegexExtractor {
    fn extract<'s>(&'s self, event: &mut Event) {
        let body = super::body_text(event.body());
        let Some(caps) = self.config.regex.find.captures(&body) else {
            return;
        };
        // Each header's last value in group order (a header may be named twice); `None`: its
        // group took no part in the match.
        let mut last: Vec<(&str, Option<String>)> = Vec::new();
        let mut put = |h: &'s str, v: Option<String>| match last.iter_mut().find(|(k, _)| *k == h) {
            Some(slot) => slot.1 = v,
            None => last.push((h, v)),
        };
        for (group, named) in (1..caps.len()).zip(&self.config.serializers) {
            let Some(m) = caps.get(group) else {
                put(&named.header, None);
                continue;
            };
            match &named.serializer {
                Serializer::PassThrough => put(&named.header, Some(m.as_str().to_string())),
                Serializer::Millis { joda, strptime } => {
                    match parse_millis(strptime, m.as_str(), &self.tz) {
                        Ok(ms) => put(&named.header, Some(ms.to_string())),
                        Err(e) => {
                            let n = self.unparsed.fetch_add(1, Ordering::Relaxed);
                            // The first, then one in 10,000: a stream of odd lines must not
                            // flood the log.
                            if n.is_multiple_of(10_000) {
                                tracing::warn!(
                                    header = named.header.as_str(),
                                    value = m.as_str(),
                                    pattern = joda.as_str(),
                                    unparsed_so_far = n + 1,
                                    "regex_extractor: the group does not parse with the pattern ({e}); header left as it was"
                                );
                            }
                        }
                    }
                }
            }
        }
        drop(body);
        if last
            .iter()
            .any(|(h, v)| v.is_none() && event.header(h).is_some())
        {
            let kept: Headers = event
                .headers()
                .iter()
                .filter(|(k, _)| !last.iter().any(|(h, v)| v.is_none() && *h == k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            *event = Event::with_headers(kept, event.body().clone());
        }
        for (h, v) in last {
            if let Some(v) = v {
                event.set_header(h, v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interceptor::testing::{event_with, parse_as};

    fn config(pairs: &[(&str, &str)]) -> Result<RegexExtractorConfig, ConfigError> {
        parse_as(parse, pairs)
    }

    fn run(c: &RegexExtractorConfig, e: &mut Event) {
        assert!(c.build().intercept(e));
    }

    #[test]
    fn groups_go_to_serializers_in_order_and_extras_are_ignored() {
        let c = config(&[
            ("regex", r"(\d):(\d):(\d)"),
            ("serializers", "s1 s2"),
            ("serializers.s1.name", "one"),
            ("serializers.s2.name", "two"),
            ("serializers.s2.type", "DEFAULT"),
        ])
        .expect("config");
        let mut e =
            Event::with_headers(event_with("one", "old").headers().clone(), "1:2:3.4foobar5");
        run(&c, &mut e);
        assert_eq!(e.header("one"), Some("1"));
        assert_eq!(e.header("two"), Some("2"));
        assert_eq!(e.headers().len(), 2);
    }

    #[test]
    fn more_serializers_than_groups_and_no_match_change_nothing_else() {
        let c = config(&[
            ("regex", r"id=(\w+)"),
            ("serializers", "a b"),
            ("serializers.a.name", "id"),
            ("serializers.b.name", "never"),
        ])
        .expect("config");
        let mut e = Event::new("x id=abc y");
        run(&c, &mut e);
        assert_eq!(e.header("id"), Some("abc"));
        assert_eq!(e.header("never"), None);
        let mut e = Event::new("nothing here");
        run(&c, &mut e);
        assert!(e.headers().is_empty());
    }

    #[test]
    fn a_group_outside_the_match_removes_its_header() {
        let c = config(&[
            ("regex", r"(a)|(b)"),
            ("serializers", "s1 s2"),
            ("serializers.s1.name", "x"),
            ("serializers.s2.name", "y"),
        ])
        .expect("config");
        let mut e = event_with("x", "old");
        let mut e2 = Event::with_headers(e.headers().clone(), "b");
        run(&c, &mut e2);
        assert_eq!(e2.header("x"), None);
        assert_eq!(e2.header("y"), Some("b"));
        e = Event::with_headers(e.headers().clone(), "a");
        run(&c, &mut e);
        assert_eq!(e.header("x"), Some("a"));
    }

    #[test]
    fn millis_serializer_parses_in_the_pattern_or_local_zone() {
        let c = config(&[
            ("regex", r"^([^ ]+ [^ ]+) ([^ ]+)"),
            ("serializers", "t u"),
            ("serializers.t.name", "timestamp"),
            ("serializers.t.type", MILLIS),
            ("serializers.t.pattern", "yyyy-MM-dd HH:mm:ss,SSSZ"),
            ("serializers.u.name", "local"),
            ("serializers.u.type", MILLIS),
            ("serializers.u.pattern", "yyyy-MM-dd'T'HH:mm"),
        ])
        .expect("config");
        let mut e = Event::new("2012-10-17 14:34:44,338+0000 2012-10-17T14:34 rest");
        run(&c, &mut e);
        assert_eq!(e.header("timestamp"), Some("1350484484338"));
        let local = jiff::civil::date(2012, 10, 17)
            .at(14, 34, 0, 0)
            .to_zoned(TimeZone::system())
            .expect("local")
            .timestamp()
            .as_millisecond();
        assert_eq!(e.header("local"), Some(local.to_string().as_str()));
        // A value that does not parse leaves the header as it was.
        let mut e = Event::with_headers(
            event_with("timestamp", "keep").headers().clone(),
            "2012-99-17 14:34:44,338+0000 x",
        );
        run(&c, &mut e);
        assert_eq!(e.header("timestamp"), Some("keep"));
    }

    #[test]
    fn joda_patterns_translate_or_are_refused() {
        assert_eq!(
            joda_to_strptime("yyyy-MM-dd'T'HH:mm:ss.SSSZZ 'o''clock' 100%").as_deref(),
            Ok("%Y-%m-%dT%H:%M:%S.%f%:z o'clock 100%%")
        );
        assert!(joda_to_strptime("yy-MM-dd").is_err());
        assert!(joda_to_strptime("yyyy-MM-dd'T").is_err());
        let e = config(&[
            ("regex", "(.*)"),
            ("serializers", "s"),
            ("serializers.s.name", "t"),
            ("serializers.s.type", MILLIS),
            ("serializers.s.pattern", "dd/MMM/yyyy:HH:mm:ss XX"),
        ])
        .expect_err("X");
        assert!(e.to_string().contains("serializers.s.pattern"), "{e}");
        assert!(e.to_string().contains("`XX`"), "{e}");
    }

    #[test]
    fn keys_required_and_custom_classes_refused() {
        assert!(config(&[("serializers", "s"), ("serializers.s.name", "h")]).is_err());
        assert!(config(&[("regex", "(a)")]).is_err());
        let e = config(&[("regex", "(a)"), ("serializers", "s")]).expect_err("name");
        assert!(e.to_string().contains("serializers.s.name"), "{e}");
        let e = config(&[
            ("regex", "(a)"),
            ("serializers", "s"),
            ("serializers.s.name", "h"),
            ("serializers.s.type", MILLIS),
        ])
        .expect_err("pattern");
        assert!(e.to_string().contains("serializers.s.pattern"), "{e}");
        let e = config(&[
            ("regex", "(a)"),
            ("serializers", "s"),
            ("serializers.s.name", "h"),
            ("serializers.s.type", "com.example.MySerializer"),
        ])
        .expect_err("custom");
        assert!(e.to_string().contains("com.example.MySerializer"), "{e}");
        assert!(e.to_string().contains("cannot load Java classes"), "{e}");
        let c = config(&[
            ("regex", "(a)"),
            ("serializers", "s"),
            ("serializers.s.name", "h"),
            ("serializers.s.type", PASS_THROUGH),
        ])
        .expect("pass-through class");
        assert_eq!(c.serializers[0].serializer, Serializer::PassThrough);
    }
}
