//! The `search_replace` interceptor (Flume's SearchAndReplaceInterceptor): rewrites every
//! event's body, replacing each match of a Java regular expression with a replacement string,
//! as Java's `Matcher.replaceAll` does.
//!
//! The replacement is read as Java reads it, once at start-up, into literal text and group
//! references: `$n` is group `n` (after the first digit, further digits are taken while the
//! number stays a group of the pattern, so `$10` is group 1 then `0` in a pattern with fewer
//! than ten groups), `${name}` is the named group `name`, and `\x` is `x` taken literally
//! (`\$`, `\\`). A group that did not take part in a match adds nothing. Matches are found as
//! Java's `find()` finds them: after an empty match the search resumes one character further,
//! and an empty match right after a non-empty one counts (the `regex` crate's own iterator
//! skips it, so this file does not use `Regex::replace_all`).
//!
//! Differences from Flume, all refusals at start-up rather than different output:
//! - A replacement Java would throw on (a `$` not followed by a group, a group the pattern
//!   does not have, a trailing `\`) is refused naming `replaceString`; Flume throws only when
//!   an event first matches, failing that source's put.
//! - `charset` accepts UTF-8 only (the other names are refused naming the key).
//!
//! The body is decoded as Flume decodes it: bytes that are not UTF-8 become U+FFFD, and the
//! replaced text is written back as UTF-8, so such a body comes out with U+FFFD (`EF BF BD`)
//! in place of its bad bytes even where nothing matched, as in Flume. A valid body that does
//! not match is left as it is, without a copy.

use super::{Interceptor, InterceptorSpec, InterceptorType};
use crate::config::java_regex::{self, JavaRegex};
use crate::config::{ConfigError, Keys, Registered};
use crate::event::Event;
use regex::Captures;

/// `search_replace` / Flume's `SearchAndReplaceInterceptor$Builder`.
pub const TYPE: InterceptorType = Registered {
    alias: "search_replace",
    class: Some("org.apache.flume.interceptor.SearchAndReplaceInterceptor$Builder"),
    parse,
    minimal: &[("searchPattern", "x")],
};

/// One part of a replacement string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Piece {
    /// Text copied as it is.
    Text(String),
    /// The text a capture group matched (nothing when it did not take part).
    Group(usize),
}

/// The search_replace interceptor's keys (docs/CONFIG.md, `search_replace`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SearchReplaceConfig {
    /// `searchPattern` (required, not empty).
    pub search_pattern: JavaRegex,
    /// `replaceString` (default empty), as Java reads it.
    pub replacement: Vec<Piece>,
}

fn parse(keys: &mut Keys<'_>) -> Result<Box<dyn InterceptorSpec>, ConfigError> {
    let v = keys.required(
        "searchPattern",
        "the regular expression whose matches in each body are replaced",
    )?;
    if v.value.is_empty() {
        return Err(keys.bad("searchPattern", &v, "a regular expression (not empty)"));
    }
    let search_pattern =
        java_regex::compile(&v.value).map_err(|e| keys.bad("searchPattern", &v, e))?;
    keys.document_default("replaceString", "");
    let replacement = match keys.get("replaceString") {
        None => Vec::new(),
        Some(v) => read_replacement(&v.value, &search_pattern)
            .map_err(|e| keys.bad("replaceString", &v, e))?,
    };
    keys.utf8_only(
        "charset",
        "the search_replace charset",
        "Bodies are read and written as UTF-8",
    )?;
    Ok(Box::new(SearchReplaceConfig {
        search_pattern,
        replacement,
    }))
}

/// `replacement` read as Java's `Matcher.appendReplacement` reads it, against `pattern`'s
/// groups; the error says what Java would have thrown on.
fn read_replacement(replacement: &str, pattern: &JavaRegex) -> Result<Vec<Piece>, String> {
    // Group 0 is the whole match; `captures_len` counts it.
    let group_count = pattern.find.captures_len() - 1;
    let mut pieces = Vec::new();
    let mut text = String::new();
    let mut chars = replacement.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(escaped) => text.push(escaped),
                None => {
                    return Err(
                        "a replacement not ending in a lone `\\` (write `\\\\` for a \
                                backslash; in the properties file that is `\\\\\\\\`)"
                            .into(),
                    )
                }
            },
            '$' => {
                let group = match chars.next() {
                    Some('{') => {
                        let mut name = String::new();
                        while let Some(&n) = chars.peek().filter(|n| n.is_ascii_alphanumeric()) {
                            name.push(n);
                            chars.next();
                        }
                        if chars.next() != Some('}') || name.is_empty() {
                            return Err("`${name}` with a group name of ASCII letters and \
                                        digits (write `\\$` for a literal `$`)"
                                .into());
                        }
                        if name.starts_with(|n: char| n.is_ascii_digit()) {
                            return Err(format!(
                                "a group name not starting with a digit, not `${{{name}}}` \
                                 (write `$n` for group n)"
                            ));
                        }
                        pattern
                            .find
                            .capture_names()
                            .position(|n| n == Some(name.as_str()))
                            .ok_or_else(|| {
                                format!(
                                    "a group of the searchPattern: it has no group named \
                                     `{name}`"
                                )
                            })?
                    }
                    Some(d) if d.is_ascii_digit() => {
                        let mut n = d as usize - '0' as usize;
                        while let Some(&next) = chars.peek().filter(|c| c.is_ascii_digit()) {
                            let longer = n * 10 + (next as usize - '0' as usize);
                            if longer > group_count {
                                break;
                            }
                            n = longer;
                            chars.next();
                        }
                        if n > group_count {
                            return Err(format!(
                                "a group of the searchPattern: `${n}` but it has {group_count} \
                                 group(s)"
                            ));
                        }
                        n
                    }
                    _ => {
                        return Err("`$` followed by a group number or `{name}` (write `\\$` \
                                    for a literal `$`)"
                            .into())
                    }
                };
                if !text.is_empty() {
                    pieces.push(Piece::Text(std::mem::take(&mut text)));
                }
                pieces.push(Piece::Group(group));
            }
            _ => text.push(c),
        }
    }
    if !text.is_empty() {
        pieces.push(Piece::Text(text));
    }
    Ok(pieces)
}

impl SearchReplaceConfig {
    /// `text` with every match replaced, or `None` when nothing matches.
    fn replace_all(&self, text: &str) -> Option<String> {
        let re = &self.search_pattern.find;
        let mut out = String::new();
        let mut copied = 0;
        let mut from = 0;
        let mut any = false;
        while from <= text.len() {
            let Some(caps) = re.captures_at(text, from) else {
                break;
            };
            let Some(m) = caps.get(0) else { break };
            any = true;
            out.push_str(&text[copied..m.start()]);
            self.expand(&caps, &mut out);
            copied = m.end();
            from = if m.is_empty() {
                // Java's find() resumes one character after an empty match.
                m.end() + text[m.end()..].chars().next().map_or(1, char::len_utf8)
            } else {
                m.end()
            };
        }
        any.then(|| {
            out.push_str(&text[copied..]);
            out
        })
    }

    fn expand(&self, caps: &Captures<'_>, out: &mut String) {
        for piece in &self.replacement {
            match piece {
                Piece::Text(t) => out.push_str(t),
                Piece::Group(g) => out.push_str(caps.get(*g).map_or("", |m| m.as_str())),
            }
        }
    }
}

impl InterceptorSpec for SearchReplaceConfig {
    fn build(&self) -> Box<dyn Interceptor> {
        Box::new(self.clone())
    }
}

impl Interceptor for SearchReplaceConfig {
    fn intercept(&self, event: &mut Event) -> bool {
        let body = super::body_text(event.body());
        match self.replace_all(&body) {
            Some(replaced) => event.set_body(replaced),
            // Flume writes back what it decoded, so bad bytes become U+FFFD even here.
            None if matches!(body, std::borrow::Cow::Owned(_)) => {
                let lossy = body.into_owned();
                event.set_body(lossy)
            }
            None => {}
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Result<SearchReplaceConfig, ConfigError> {
        crate::interceptor::testing::parse_as(parse, pairs)
    }

    fn run(pairs: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
        let i = config(pairs).expect("config").build();
        let mut e = Event::new(body.to_vec());
        assert!(i.intercept(&mut e), "never drops");
        e.body().to_vec()
    }

    fn replaced(pattern: &str, replacement: &str, body: &str) -> String {
        let out = run(
            &[("searchPattern", pattern), ("replaceString", replacement)],
            body.as_bytes(),
        );
        String::from_utf8(out).expect("utf-8")
    }

    fn refusal(pairs: &[(&str, &str)]) -> String {
        config(pairs).expect_err("refused").to_string()
    }

    #[test]
    fn keys_and_defaults() {
        let got = config(&[("searchPattern", "^INFO:")]).expect("defaults");
        assert_eq!(got.search_pattern.source, "^INFO:");
        assert!(
            got.replacement.is_empty(),
            "replaceString defaults to empty"
        );
        let got = config(&[
            ("searchPattern", "(a)(b)"),
            ("replaceString", r"x$2\$1"),
            ("charset", "utf8"),
        ])
        .expect("set");
        assert_eq!(
            got.replacement,
            [
                Piece::Text("x".into()),
                Piece::Group(2),
                Piece::Text("$1".into())
            ]
        );
    }

    #[test]
    fn search_pattern_is_required_and_not_empty() {
        let e = config(&[]).expect_err("required");
        assert!(matches!(e, ConfigError::MissingKey { .. }), "{e:?}");
        assert!(
            e.to_string().contains("interceptors.i1.searchPattern"),
            "{e}"
        );
        let msg = refusal(&[("searchPattern", "")]);
        assert!(msg.contains("searchPattern"), "{msg}");
        let msg = refusal(&[("searchPattern", "(?i)info")]);
        assert!(msg.contains("searchPattern"), "{msg}");
    }

    #[test]
    fn replaces_every_match_as_java_replace_all() {
        assert_eq!(replaced("^INFO:", "Log msg:", "INFO: up"), "Log msg: up");
        assert_eq!(replaced("[0-9]+", "#", "a1b22c333"), "a#b#c#");
        assert_eq!(replaced("o", "", "foo boo"), "f b");
        // Java's empty-match rule: "baaac".replaceAll("a*", "X") is "XbXXcX".
        assert_eq!(replaced("a*", "X", "baaac"), "XbXXcX");
        assert_eq!(replaced("x*", "-", "hé"), "-h-é-");
        assert_eq!(replaced("^", ">", "line"), ">line");
    }

    #[test]
    fn group_references_and_escapes_as_java_reads_them() {
        assert_eq!(
            replaced(r"(\w+)@(\w+)", "$2 at $1", "me@host x"),
            "host at me x"
        );
        assert_eq!(
            replaced(r"(?<user>\w+)@", "${user} at ", "me@host"),
            "me at host"
        );
        // `$10` with one group: group 1, then the text `0`.
        assert_eq!(replaced("(b)", "$10", "abc"), "ab0c");
        assert_eq!(replaced("b", r"\$0 \\ \x", "abc"), r"a$0 \ xc");
        assert_eq!(replaced("b", "[$0]", "abc"), "a[b]c");
        // A group that took no part adds nothing.
        assert_eq!(replaced("(x)?b", "<$1>", "abc"), "a<>c");
    }

    #[test]
    fn replacements_java_would_throw_on_are_refused_naming_the_key() {
        for bad in ["$", "$x", "${", "${}", "${1a}", "${nope}", "$2", r"tail\"] {
            let msg = refusal(&[("searchPattern", "(a)"), ("replaceString", bad)]);
            assert!(
                msg.contains("interceptors.i1.replaceString"),
                "{bad}: {msg}"
            );
        }
    }

    #[test]
    fn charset_other_than_utf8_is_refused_naming_it() {
        let e = config(&[("searchPattern", "a"), ("charset", "ISO-8859-1")]).expect_err("no");
        assert!(matches!(e, ConfigError::Unsupported { .. }), "{e:?}");
        assert!(e.to_string().contains("interceptors.i1.charset"), "{e}");
    }

    #[test]
    fn bodies_that_are_not_utf8_come_out_as_flume_writes_them() {
        let pairs = [("searchPattern", "caf."), ("replaceString", "tea")];
        assert_eq!(run(&pairs, b"caf\xe9 ok"), b"tea ok");
        let none = [("searchPattern", "zzz")];
        assert_eq!(run(&none, b"a\xffb"), "a\u{FFFD}b".as_bytes());
        // A valid body that does not match keeps its bytes (and its buffer).
        let i = config(&none).expect("config").build();
        let mut e = Event::new(&b"plain"[..]);
        let before = e.body().as_ptr();
        i.intercept(&mut e);
        assert_eq!(e.body().as_ptr(), before);
    }
}
