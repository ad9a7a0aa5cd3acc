//! [`Keys`]: one component's keys, as its own parser reads them.
//!
//! Every component (source, channel, sink, interceptor) parses its configuration from a
//! `Keys` holding just its keys (`capacity` for `a1.channels.c1.capacity`), through the typed
//! helpers here (numbers with a floor, sizes, booleans, durations, lists, values that must be
//! one of a set). The helpers keep the bookkeeping every component needs and none should
//! write twice:
//! - every key asked for becomes *known*, so [`Keys::finish`] can report the keys nobody read
//!   as unknown, naming the nearest known one;
//! - every default passed to a helper is *recorded* ([`Keys::documented`]), so a test can hold
//!   docs/CONFIG.md's key tables against what the code really does;
//! - errors name the file, the line and the full key (`a1.channels.c1.capacity`).
//!
//! Invariant: no I/O, and nothing here knows any component. A component's default lives in
//! its own module, once, and is handed to the helper that reads the key.

use std::time::Duration;

use super::error::{ConfigError, ConfigWarning, WarningKind};
use super::flume_keys::{self, FlumeKnows};
use super::values::{nearest, parse_bool, parse_u64};

/// One key of a component, its value substituted and trimmed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The key below the component, e.g. `capacity` in `a1.channels.c1.capacity`.
    pub key: String,
    pub value: String,
    pub line: usize,
}

/// A value read from a component, with its line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Val {
    pub value: String,
    pub line: usize,
}

/// A key as the code reads it: its name and, when it has one, its default as text (what
/// docs/CONFIG.md's Default column must say).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KnownKey {
    pub key: &'static str,
    pub default: Option<String>,
}

/// The first `${...}` reference (nested ones whole) a substituted value still holds.
fn unresolved_reference(value: &str) -> Option<&str> {
    let start = value.find("${")?;
    let mut depth = 0usize;
    let bytes = value.as_bytes();
    let mut i = start;
    while i < bytes.len() {
        if bytes[i] == b'$' && bytes.get(i + 1) == Some(&b'{') {
            depth += 1;
            i += 2;
            continue;
        }
        if bytes[i] == b'}' {
            depth -= 1;
            if depth == 0 {
                return Some(&value[start..=i]);
            }
        }
        i += 1;
    }
    None
}

fn no_env(_: &str) -> Option<String> {
    None
}

/// Reads one component's keys. See the module docs.
pub struct Keys<'a> {
    file: &'a str,
    /// `a1.channels.c1.`
    prefix: String,
    /// The component's name (`c1`).
    name: String,
    /// Where the component is listed, then (once read) the line of its `type`: missing and
    /// defaulted keys point here.
    home_line: usize,
    entries: Vec<Entry>,
    consumed: Vec<bool>,
    known: Vec<KnownKey>,
    warnings: Vec<ConfigWarning>,
    /// The process environment (`${env:NAME}` was already substituted; this is for Flume's
    /// global SSL variables, read per key as a fallback).
    env: &'a dyn Fn(&str) -> Option<String>,
}

impl std::fmt::Debug for Keys<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys")
            .field("prefix", &self.prefix)
            .field("entries", &self.entries)
            .finish_non_exhaustive()
    }
}

impl<'a> Keys<'a> {
    /// The keys `entries` of component `name`, whose full keys start with `prefix`, listed on
    /// line `home_line`.
    pub fn new(
        file: &'a str,
        prefix: String,
        name: &str,
        home_line: usize,
        entries: Vec<Entry>,
        env: &'a dyn Fn(&str) -> Option<String>,
    ) -> Self {
        let consumed = vec![false; entries.len()];
        Keys {
            file,
            prefix,
            name: name.to_string(),
            home_line,
            entries,
            consumed,
            known: Vec::new(),
            warnings: Vec::new(),
            env,
        }
    }

    /// Keys for a test or a check: `pairs` as if written one per line from line 1 in
    /// `test.conf`, for component `a1.<kind>.<name>`.
    pub fn from_pairs(kind: &str, name: &str, pairs: &[(&str, &str)]) -> Keys<'static> {
        let entries = pairs
            .iter()
            .enumerate()
            .map(|(i, (k, v))| Entry {
                key: (*k).to_string(),
                value: (*v).to_string(),
                line: i + 1,
            })
            .collect();
        Keys::new(
            "test.conf",
            format!("a1.{kind}.{name}."),
            name,
            1,
            entries,
            &no_env,
        )
    }

    /// The file the keys come from, for messages.
    pub fn file(&self) -> &'a str {
        self.file
    }

    /// The component's name (`c1` for `a1.channels.c1.*`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The line missing and defaulted keys point at: the component's `type` line once read.
    pub fn home_line(&self) -> usize {
        self.home_line
    }

    /// Makes `line` the one missing and defaulted keys point at.
    pub fn set_home_line(&mut self, line: usize) {
        self.home_line = line;
    }

    /// `key` with the component's prefix: `a1.channels.c1.capacity`.
    pub fn full(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    /// The line of `key` if set, else the component's home line.
    pub fn line_of(&self, key: &str) -> usize {
        self.entries
            .iter()
            .find(|e| e.key == key)
            .map_or(self.home_line, |e| e.line)
    }

    /// The raw value of `key` if set, without reading it (it stays unknown unless read).
    pub fn peek(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|e| e.key == key)
            .map(|e| e.value.as_str())
    }

    /// The line of `key` if it is set, without reading it.
    pub fn has(&self, key: &str) -> Option<usize> {
        self.entries.iter().find(|e| e.key == key).map(|e| e.line)
    }

    /// Makes `key` a candidate for nearest-key suggestions (and a documented key).
    pub fn know(&mut self, key: &'static str) {
        if !self.known.iter().any(|k| k.key == key) {
            self.known.push(KnownKey { key, default: None });
        }
    }

    /// Records `default` as `key`'s default, for the docs check.
    pub fn document_default(&mut self, key: &'static str, default: impl Into<String>) {
        self.know(key);
        if let Some(k) = self.known.iter_mut().find(|k| k.key == key) {
            k.default = Some(default.into());
        }
    }

    /// Every key the component read (or made known), with its default, in the order read.
    pub fn documented(&self) -> &[KnownKey] {
        &self.known
    }

    /// The value of `key`, consuming it.
    pub fn get(&mut self, key: &'static str) -> Option<Val> {
        self.know(key);
        let i = self.entries.iter().position(|e| e.key == key)?;
        self.consumed[i] = true;
        Some(Val {
            value: self.entries[i].value.clone(),
            line: self.entries[i].line,
        })
    }

    /// The component's `key`, else Flume's global setting in the environment variable
    /// `global`, as Flume 1.9+ falls back per key for its SSL settings.
    pub fn get_or_global(&mut self, key: &'static str, global: &str) -> Option<Val> {
        self.get(key).or_else(|| {
            (self.env)(global)
                .filter(|v| !v.is_empty())
                .map(|value| Val {
                    value,
                    line: self.home_line,
                })
        })
    }

    /// Reads Flume's deprecated spelling `old` as `new` when only `old` is set (Flume's
    /// `handleDeprecatedParameter`); with both set, `new` wins and `old` is ignored with a
    /// warning.
    pub fn rename_deprecated(&mut self, old: &'static str, new: &'static str) {
        self.know(old);
        let Some(i) = self.entries.iter().position(|e| e.key == old) else {
            return;
        };
        if self.has(new).is_some() {
            self.consumed[i] = true;
            let line = self.entries[i].line;
            self.warn(
                line,
                old,
                WarningKind::IgnoredKey {
                    reason: format!(
                        "`{new}` is also set and wins (as in Flume); remove this deprecated key"
                    ),
                },
            );
        } else {
            self.entries[i].key = new.to_string();
        }
    }

    /// A text value, `default` when unset.
    pub fn text(&mut self, key: &'static str, default: &str) -> String {
        self.document_default(key, default);
        self.get(key)
            .map_or_else(|| default.to_string(), |v| v.value)
    }

    /// Consumes every key starting with `prefix`, in line order, with the keys whole.
    pub fn take_prefixed(&mut self, prefix: &str) -> Vec<(String, Val)> {
        let mut out = Vec::new();
        for (i, e) in self.entries.iter().enumerate() {
            if e.key.starts_with(prefix) {
                self.consumed[i] = true;
                out.push((
                    e.key.clone(),
                    Val {
                        value: e.value.clone(),
                        line: e.line,
                    },
                ));
            }
        }
        out.sort_by_key(|(_, v)| v.line);
        out
    }

    /// The error for a required key that is absent.
    pub fn missing(&self, key: &str, hint: impl Into<String>) -> ConfigError {
        ConfigError::MissingKey {
            file: self.file.to_string(),
            line: self.home_line,
            key: self.full(key),
            hint: hint.into(),
        }
    }

    /// The error for a value that cannot be used; `expected` says what is accepted.
    pub fn bad(&self, key: &str, v: &Val, expected: impl Into<String>) -> ConfigError {
        if let Some(reference) = unresolved_reference(&v.value) {
            // The value is wrong because a reference was left in it: say that, not "bad value".
            return ConfigError::Unresolved {
                file: self.file.to_string(),
                line: v.line,
                key: self.full(key),
                reference: reference.to_string(),
                why: format!(
                    "the value `{}` is not {}. No property of the file has that name: write \
                     ${{env:NAME}} for an environment variable (or pass \
                     -DpropertiesImplementation=org.apache.flume.node.EnvVarResolverProperties \
                     as Flume needs for a plain ${{NAME}}), or ${{sys:NAME}} with -DNAME=value",
                    v.value,
                    expected.into()
                ),
            };
        }
        ConfigError::BadValue {
            file: self.file.to_string(),
            line: v.line,
            key: self.full(key),
            value: v.value.clone(),
            expected: expected.into(),
        }
    }

    /// [`Keys::bad`] for a value that may have been defaulted: the key's own value and line
    /// if set, else `value` (the default) on the home line.
    pub fn bad_effective(
        &self,
        key: &str,
        value: impl std::fmt::Display,
        expected: impl Into<String>,
    ) -> ConfigError {
        let v = match self.entries.iter().find(|e| e.key == key) {
            Some(e) => Val {
                value: e.value.clone(),
                line: e.line,
            },
            None => Val {
                value: format!("{value} (the default)"),
                line: self.home_line,
            },
        };
        self.bad(key, &v, expected)
    }

    /// The error for a Flume feature flumen does not have.
    pub fn unsupported(
        &self,
        key: &str,
        line: usize,
        feature: impl Into<String>,
        hint: impl Into<String>,
    ) -> ConfigError {
        ConfigError::Unsupported {
            file: self.file.to_string(),
            line,
            key: self.full(key),
            feature: feature.into(),
            hint: hint.into(),
        }
    }

    /// `key`'s value, or an error saying what it is for.
    pub fn required(&mut self, key: &'static str, hint: &str) -> Result<Val, ConfigError> {
        self.document_default(key, "required");
        self.get(key).ok_or_else(|| self.missing(key, hint))
    }

    /// `key` parsed by `parse` (whose error says what is accepted), `None` when unset.
    pub fn parsed<T>(
        &mut self,
        key: &'static str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<Option<(T, Val)>, ConfigError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => match parse(&v.value) {
                Ok(t) => Ok(Some((t, v))),
                Err(expected) => Err(self.bad(key, &v, expected)),
            },
        }
    }

    /// A whole number of at least `min` `unit`s, `default` when unset.
    pub fn number(
        &mut self,
        key: &'static str,
        default: u64,
        min: u64,
        unit: &str,
    ) -> Result<u64, ConfigError> {
        self.document_default(key, default.to_string());
        Ok(self
            .parsed(key, |s| parse_u64(s, min, unit))?
            .map_or(default, |(n, _)| n))
    }

    /// A whole number of at least `min`, `None` when unset (the docs say what unset means).
    pub fn opt_number(
        &mut self,
        key: &'static str,
        min: u64,
        unit: &str,
    ) -> Result<Option<u64>, ConfigError> {
        Ok(self
            .parsed(key, |s| parse_u64(s, min, unit))?
            .map(|(n, _)| n))
    }

    /// [`Keys::number`] that must fit a `usize` (counts of things held in memory).
    pub fn size(
        &mut self,
        key: &'static str,
        default: usize,
        min: u64,
        unit: &str,
    ) -> Result<usize, ConfigError> {
        let n = self.number(key, default as u64, min, unit)?;
        usize::try_from(n).map_err(|_| {
            self.bad_effective(
                key,
                n,
                "a smaller number: it does not fit this machine's word size",
            )
        })
    }

    /// [`Keys::number`] that must fit a `u16` (a port), of at least `min`.
    pub fn port(&mut self, key: &'static str, hint: &str, min: u16) -> Result<u16, ConfigError> {
        let v = self.required(key, hint)?;
        match v.value.parse::<u16>() {
            Ok(p) if p >= min => Ok(p),
            _ => Err(self.bad(key, &v, format!("a TCP port number, {min} to 65535"))),
        }
    }

    /// A duration written as a whole number of milliseconds (Flume's usual unit).
    pub fn millis(
        &mut self,
        key: &'static str,
        default: Duration,
        min_ms: u64,
    ) -> Result<Duration, ConfigError> {
        let ms = self.number(
            key,
            u64::try_from(default.as_millis()).unwrap_or(u64::MAX),
            min_ms,
            "milliseconds",
        )?;
        Ok(Duration::from_millis(ms))
    }

    /// A duration written as a whole number of seconds.
    pub fn secs(
        &mut self,
        key: &'static str,
        default: Duration,
        min_s: u64,
        unit: &str,
    ) -> Result<Duration, ConfigError> {
        Ok(Duration::from_secs(self.number(
            key,
            default.as_secs(),
            min_s,
            unit,
        )?))
    }

    /// A Java regular expression (Flume's interceptors compile theirs with
    /// `java.util.regex.Pattern`), run with Java's meaning or refused naming the key; `None`
    /// when unset.
    pub fn java_regex(
        &mut self,
        key: &'static str,
    ) -> Result<Option<super::java_regex::JavaRegex>, ConfigError> {
        Ok(self
            .parsed(key, super::java_regex::compile)?
            .map(|(r, _)| r))
    }

    /// `true` or `false` (any case), `default` when unset.
    pub fn boolean(&mut self, key: &'static str, default: bool) -> Result<bool, ConfigError> {
        self.document_default(key, default.to_string());
        Ok(self.parsed(key, parse_bool)?.map_or(default, |(b, _)| b))
    }

    /// Warns that a Flume key is accepted but not acted on.
    pub fn ignore(&mut self, key: &'static str, reason: &str) {
        if let Some(v) = self.get(key) {
            self.warn(
                v.line,
                key,
                WarningKind::IgnoredKey {
                    reason: reason.to_string(),
                },
            );
        }
    }

    /// Records a warning about `key`.
    pub fn warn(&mut self, line: usize, key: &str, kind: WarningKind) {
        self.warnings.push(ConfigWarning {
            file: self.file.to_string(),
            line,
            key: self.full(key),
            kind,
        });
    }

    /// Accepts charset key `key` (default UTF-8) only when it names UTF-8 in one of Java's
    /// spellings; `feature` names it in the error ("the exec charset") and `why` says what
    /// flumen does instead.
    pub fn utf8_only(
        &mut self,
        key: &'static str,
        feature: &str,
        why: &str,
    ) -> Result<(), ConfigError> {
        self.document_default(key, "UTF-8");
        if let Some(v) = self.get(key) {
            if !super::values::is_utf8_name(&v.value) {
                return Err(self.unsupported(
                    key,
                    v.line,
                    format!("{feature} `{}`", v.value),
                    format!("{why}; remove the key or set it to UTF-8"),
                ));
            }
        }
        Ok(())
    }

    /// Accepts `key` only when it is absent or one of `accepted` (case-insensitively).
    pub fn only(
        &mut self,
        key: &'static str,
        accepted: &[&str],
        feature: &str,
    ) -> Result<(), ConfigError> {
        if let Some(v) = self.get(key) {
            if !accepted.iter().any(|a| a.eq_ignore_ascii_case(&v.value)) {
                return Err(self.unsupported(
                    key,
                    v.line,
                    format!("{feature} `{}`", v.value),
                    format!(
                        "Remove the key or set it to {}",
                        accepted.first().copied().unwrap_or_default()
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Reports the keys nobody read as unknown, naming the nearest known key, and hands over
    /// every warning.
    /// Which kind of Flume component the prefix names: `a1.sources.r1.interceptors.i1.` an
    /// interceptor, `a1.channels.c1.` a channel, ...
    fn flume_kind(&self) -> Option<flume_keys::Kind> {
        if self.prefix.contains(".interceptors.") {
            return Some(flume_keys::Kind::Interceptor);
        }
        match self.prefix.split('.').nth(1)? {
            "sources" => Some(flume_keys::Kind::Source),
            "channels" => Some(flume_keys::Kind::Channel),
            "sinks" => Some(flume_keys::Kind::Sink),
            _ => None,
        }
    }

    /// Hands over the warnings gathered so far, after the component's parser failed: its
    /// unread keys are not reported, since the parser stopped before reading them.
    pub fn abandon(mut self, warnings: &mut Vec<ConfigWarning>) {
        warnings.append(&mut self.warnings);
    }

    /// For a dotted key no known key is near as a whole (`intercepts.i1.type`): the key with
    /// its first segment replaced by the nearest first segment of a known key, when that is
    /// a likely typo (`interceptors.i1.type`).
    fn nearest_head(&self, key: &str) -> Option<String> {
        let (head, tail) = key.split_once('.')?;
        let heads = self
            .known
            .iter()
            .map(|k| k.key.split('.').next().unwrap_or(k.key));
        let near = nearest(head, heads).filter(|n| *n != head)?;
        Some(self.full(&format!("{near}.{tail}")))
    }

    pub fn finish(mut self, warnings: &mut Vec<ConfigWarning>) {
        let unknown: Vec<(String, usize)> = self
            .entries
            .iter()
            .zip(&self.consumed)
            .filter(|(_, used)| !**used)
            .map(|(e, _)| (e.key.clone(), e.line))
            .collect();
        let kind = self.flume_kind();
        let type_name = self.peek("type").map(str::to_string);
        for (key, line) in unknown {
            // A key Flume reads says so, rather than guessing at a typo of an unrelated key.
            let flume = match (kind, &type_name) {
                (Some(kind), Some(t)) => flume_keys::lookup(kind, t, &key),
                _ => None,
            };
            let warning = match flume {
                Some(FlumeKnows::ThisType { note }) => WarningKind::FlumeKeyNotImplemented {
                    note: note.to_string(),
                },
                Some(FlumeKnows::OtherType { other, kind }) => WarningKind::FlumeKeyOfOtherType {
                    other: other.to_string(),
                    kind: kind.to_string(),
                },
                None => {
                    let near = nearest(&key, self.known.iter().map(|k| k.key))
                        .map(|k| self.full(k))
                        .or_else(|| self.nearest_head(&key));
                    WarningKind::UnknownKey { nearest: near }
                }
            };
            self.warn(line, &key, warning);
        }
        warnings.append(&mut self.warnings);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unread_keys_are_unknown_with_the_nearest_known_key() {
        let mut k = Keys::from_pairs("channels", "c1", &[("capacty", "5"), ("type", "file")]);
        assert_eq!(k.number("capacity", 7, 1, "events").expect("default"), 7);
        assert!(k.get("type").is_some());
        let mut w = Vec::new();
        k.finish(&mut w);
        assert_eq!(w.len(), 1, "{w:?}");
        assert_eq!(w[0].key, "a1.channels.c1.capacty");
        assert_eq!(w[0].line, 1);
        assert_eq!(
            w[0].kind,
            WarningKind::UnknownKey {
                nearest: Some("a1.channels.c1.capacity".into())
            }
        );
    }

    #[test]
    fn a_misspelt_first_segment_is_suggested_with_the_rest_kept() {
        let mut k = Keys::from_pairs("sources", "r1", &[("intercepts.i1.type", "host")]);
        k.know("interceptors");
        let mut w = Vec::new();
        k.finish(&mut w);
        assert_eq!(
            w[0].kind,
            WarningKind::UnknownKey {
                nearest: Some("a1.sources.r1.interceptors.i1.type".into())
            }
        );
    }

    #[test]
    fn defaults_are_recorded_for_the_docs() {
        let mut k = Keys::from_pairs("sinks", "k1", &[("batchSize", "5")]);
        assert_eq!(k.size("batchSize", 100, 1, "events").expect("set"), 5);
        assert!(k.boolean("flag", true).expect("default"));
        let d = k.documented();
        assert_eq!(d[0].key, "batchSize");
        assert_eq!(d[0].default.as_deref(), Some("100"));
        assert_eq!(d[1].default.as_deref(), Some("true"));
    }

    #[test]
    fn bad_values_name_file_line_and_full_key() {
        let mut k = Keys::from_pairs("sources", "r1", &[("x", "1"), ("port", "99999")]);
        let e = k.port("port", "a port", 1).expect_err("too large");
        let msg = e.to_string();
        assert!(msg.starts_with("test.conf:2:"), "{msg}");
        assert!(msg.contains("`a1.sources.r1.port`"), "{msg}");
        let e = k.boolean("x", false).expect_err("not a boolean");
        assert_eq!(e.line(), Some(1));
    }
}
