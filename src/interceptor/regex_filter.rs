//! The `regex_filter` interceptor (Flume's RegexFilteringInterceptor): keeps only the events
//! whose body matches a Java regular expression anywhere (`Matcher.find()`), or, with
//! `excludeEvents`, drops exactly those.
//!
//! The body is read as text the way Flume's `new String(body)` reads it on a UTF-8 platform:
//! a byte sequence that is not UTF-8 becomes U+FFFD, so a pattern can match around it (and
//! `\x{FFFD}` matches it). The body itself is never changed.

use std::borrow::Cow;

use super::{Interceptor, InterceptorSpec, InterceptorType};
use crate::config::java_regex::{self, JavaRegex};
use crate::config::{ConfigError, Keys, Registered};
use crate::event::Event;

/// `regex_filter` / Flume's `RegexFilteringInterceptor$Builder`.
pub const TYPE: InterceptorType = Registered {
    alias: "regex_filter",
    class: Some("org.apache.flume.interceptor.RegexFilteringInterceptor$Builder"),
    parse,
    minimal: &[],
};

/// Flume's default `regex`: matches every body.
const DEFAULT_REGEX: &str = ".*";

/// The regex_filter interceptor's keys (docs/CONFIG.md, `regex_filter`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegexFilterConfig {
    /// `regex` (default `.*`), matched anywhere in the body.
    pub regex: JavaRegex,
    /// `excludeEvents` (default false): true drops matching events, false keeps only them.
    pub exclude_events: bool,
}

fn parse(keys: &mut Keys<'_>) -> Result<Box<dyn InterceptorSpec>, ConfigError> {
    keys.document_default("regex", DEFAULT_REGEX);
    let regex = match keys.java_regex("regex")? {
        Some(r) => r,
        None => java_regex::compile(DEFAULT_REGEX)
            .map_err(|e| keys.bad_effective("regex", DEFAULT_REGEX, e))?,
    };
    let exclude_events = keys.boolean("excludeEvents", false)?;
    Ok(Box::new(RegexFilterConfig {
        regex,
        exclude_events,
    }))
}

impl InterceptorSpec for RegexFilterConfig {
    fn build(&self) -> Box<dyn Interceptor> {
        Box::new(self.clone())
    }
}

impl Interceptor for RegexFilterConfig {
    fn intercept(&self, event: &mut Event) -> bool {
        let text: Cow<'_, str> = super::body_text(event.body());
        self.regex.find.is_match(&text) != self.exclude_events
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Result<RegexFilterConfig, ConfigError> {
        crate::interceptor::testing::parse_as(parse, pairs)
    }

    fn kept(i: &dyn Interceptor, body: &[u8]) -> bool {
        i.intercept(&mut Event::new(body.to_vec()))
    }

    #[test]
    fn keys_and_defaults() {
        let d = config(&[]).expect("defaults");
        assert_eq!(d.regex.source, ".*");
        assert!(!d.exclude_events);
        let i = d.build();
        assert!(kept(&*i, b""));
        assert!(kept(&*i, b"anything\nat all"));

        let got = config(&[("regex", "ERROR|FATAL"), ("excludeEvents", "true")]).expect("set");
        assert_eq!(got.regex.source, "ERROR|FATAL");
        assert!(got.exclude_events);
    }

    #[test]
    fn include_keeps_only_matches_anywhere_and_exclude_drops_them() {
        let include = config(&[("regex", r"(WARNING)|(ERROR)|(FATAL)")])
            .expect("config")
            .build();
        assert!(kept(&*include, b"2024 ERROR disk full"));
        assert!(!kept(&*include, b"2024 INFO all fine"));
        let exclude = config(&[("regex", r"^DEBUG\b"), ("excludeEvents", "true")])
            .expect("config")
            .build();
        assert!(!kept(&*exclude, b"DEBUG x"));
        assert!(kept(&*exclude, b"INFO DEBUG x"));
        assert!(kept(&*exclude, b"DEBUGGING"));
    }

    #[test]
    fn a_body_that_is_not_utf8_is_matched_as_java_decodes_it() {
        let i = config(&[("regex", "caf\u{FFFD} ok")])
            .expect("config")
            .build();
        let mut e = Event::new(b"caf\xe9 ok".to_vec());
        assert!(i.intercept(&mut e));
        assert_eq!(&e.body()[..], b"caf\xe9 ok", "the body is not rewritten");
    }

    #[test]
    fn patterns_java_reads_differently_are_refused_naming_the_key() {
        let e = config(&[("regex", "(?i)error")]).expect_err("refused");
        assert!(e.to_string().contains("interceptors.i1.regex"), "{e}");
        assert!(config(&[("excludeEvents", "yes")]).is_err());
    }
}
