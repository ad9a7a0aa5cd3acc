//! The `remove_header` interceptor (Flume's RemoveHeaderInterceptor): removes headers from
//! every event, by exact name (`withName`), from a list (`fromList`, split by the regular
//! expression `fromListSeparator`) and by a regular expression the whole name must match
//! (`matching`). With none of the three set it leaves events as they are, as Flume does.
//!
//! Flume reads the separator under the key `fromListSeparator` (its user guide and the issue
//! that added it sometimes say `listSeparator`; that key is unknown to Flume and gets the
//! usual unknown-key warning here, naming `fromListSeparator`). Patterns are Java regular
//! expressions ([`crate::config::java_regex`]).

use std::collections::BTreeSet;

use super::{Interceptor, InterceptorSpec, InterceptorType};
use crate::config::java_regex::{self, JavaRegex};
use crate::config::{ConfigError, Keys, Registered};
use crate::event::{Event, Headers};

/// `remove_header` / Flume's `RemoveHeaderInterceptor$Builder`.
pub const TYPE: InterceptorType = Registered {
    alias: "remove_header",
    class: Some("org.apache.flume.interceptor.RemoveHeaderInterceptor$Builder"),
    parse,
    minimal: &[],
};

/// Flume's default `fromListSeparator`: a comma with any whitespace around it.
const DEFAULT_SEPARATOR: &str = r"\s*,\s*";

/// The remove_header interceptor's keys (docs/CONFIG.md, `remove_header`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoveHeaderConfig {
    /// `withName`: one header to remove.
    pub with_name: Option<String>,
    /// `fromList`, split by `fromListSeparator` (default `\s*,\s*`): headers to remove.
    pub from_list: BTreeSet<String>,
    /// `matching`: headers whose whole name matches are removed.
    pub matching: Option<JavaRegex>,
}

fn parse(keys: &mut Keys<'_>) -> Result<Box<dyn InterceptorSpec>, ConfigError> {
    let with_name = keys.get("withName").map(|v| v.value);
    keys.document_default("fromListSeparator", DEFAULT_SEPARATOR);
    let separator = match keys.get("fromListSeparator") {
        None => java_regex::compile(DEFAULT_SEPARATOR)
            .map_err(|e| keys.bad_effective("fromListSeparator", DEFAULT_SEPARATOR, e))?,
        Some(v) => {
            java_regex::compile(&v.value).map_err(|e| keys.bad("fromListSeparator", &v, e))?
        }
    };
    let from_list = keys
        .get("fromList")
        .map(|v| {
            separator
                .find
                .split(&v.value)
                .filter(|name| !name.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let matching = keys.java_regex("matching")?;
    Ok(Box::new(RemoveHeaderConfig {
        with_name,
        from_list,
        matching,
    }))
}

impl InterceptorSpec for RemoveHeaderConfig {
    fn build(&self) -> Box<dyn Interceptor> {
        Box::new(self.clone())
    }
}

impl RemoveHeaderConfig {
    fn removes(&self, name: &str) -> bool {
        self.with_name.as_deref() == Some(name)
            || self.from_list.contains(name)
            || self
                .matching
                .as_ref()
                .is_some_and(|r| r.matches_whole(name))
    }
}

impl Interceptor for RemoveHeaderConfig {
    fn intercept(&self, event: &mut Event) -> bool {
        // Headers are shared copy-on-write; an event that keeps all of them is not touched.
        if event.headers().keys().any(|k| self.removes(k)) {
            let kept: Headers = event
                .headers()
                .iter()
                .filter(|(k, _)| !self.removes(k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            *event = Event::with_headers(kept, event.body().clone());
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Result<RemoveHeaderConfig, ConfigError> {
        crate::interceptor::testing::parse_as(parse, pairs)
    }

    fn event(headers: &[(&str, &str)]) -> Event {
        let h: Headers = headers
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect();
        Event::with_headers(h, "body")
    }

    fn names(e: &Event) -> Vec<&str> {
        e.headers().keys().map(String::as_str).collect()
    }

    #[test]
    fn with_name_from_list_and_matching_each_remove() {
        let i = config(&[
            ("withName", "secret"),
            ("fromList", "a , b,c"),
            ("matching", r"tmp\d+"),
        ])
        .expect("config")
        .build();
        let mut e = event(&[
            ("secret", "x"),
            ("a", "1"),
            ("b", "2"),
            ("c", "3"),
            ("tmp7", "t"),
            ("tmp7x", "kept: matching is a whole-name match"),
            ("keep", "k"),
        ]);
        assert!(i.intercept(&mut e));
        assert_eq!(names(&e), ["keep", "tmp7x"]);
        assert_eq!(&e.body()[..], b"body");
    }

    #[test]
    fn nothing_set_leaves_events_alone_and_the_separator_is_a_regex() {
        let i = config(&[]).expect("config").build();
        let mut e = event(&[("a", "1")]);
        i.intercept(&mut e);
        assert_eq!(names(&e), ["a"]);

        let c =
            config(&[("fromList", "a;b ; c"), ("fromListSeparator", r"\s*;\s*")]).expect("config");
        let want: BTreeSet<String> = ["a", "b", "c"].into_iter().map(String::from).collect();
        assert_eq!(c.from_list, want);
    }

    #[test]
    fn the_callers_copy_of_the_headers_is_untouched() {
        let i = config(&[("withName", "a")]).expect("config").build();
        let original = event(&[("a", "1"), ("b", "2")]);
        let mut e = original.clone();
        i.intercept(&mut e);
        assert_eq!(names(&e), ["b"]);
        assert_eq!(names(&original), ["a", "b"]);
    }

    #[test]
    fn a_pattern_that_would_mean_something_else_is_refused_naming_the_key() {
        let e = config(&[("matching", r"\p{Alpha}+")]).expect_err("refused");
        let msg = e.to_string();
        assert!(msg.starts_with("test.conf:1:"), "{msg}");
        assert!(
            msg.contains("`a1.sources.r1.interceptors.i1.matching`"),
            "{msg}"
        );
        let e = config(&[("fromList", "a"), ("fromListSeparator", "(,")]).expect_err("refused");
        assert!(e.to_string().contains("fromListSeparator"), "{e}");
    }

    #[test]
    fn flumes_documented_but_unknown_list_separator_key_is_warned_about() {
        let mut k = Keys::from_pairs(
            "sources",
            "r1.interceptors.i1",
            &[("fromList", "a;b"), ("listSeparator", ";")],
        );
        parse(&mut k).expect("config");
        let mut warnings = Vec::new();
        k.finish(&mut warnings);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].to_string().contains("fromListSeparator"),
            "{}",
            warnings[0]
        );
    }
}
