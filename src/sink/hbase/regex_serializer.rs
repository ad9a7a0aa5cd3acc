//! Flume's regex HBase serializers (`RegexHBase2EventSerializer`, `RegexHbaseEventSerializer`,
//! which behave alike): the body, decoded with `charset`, must match `regex` whole (Java's
//! `Matcher.matches()`, with `DOTALL`, and ASCII case folding when `regexIgnoreCase`); group
//! *i* goes to column `colNames[i]`, all in one put.
//!
//! Bytes, as Flume writes them: column names, deposited headers and a generated row key are
//! encoded with `charset`; the matched groups (cell values, and the row key taken from
//! `rowKeyIndex`) are always encoded in UTF-8. A generated row key is
//! `<milliseconds>-<random>-<nonce>`: the random part is 10 letters and digits drawn once per
//! process, the nonce a process-wide counter from 0 (a Java `int`, so it wraps to negative
//! after 2^31), so no two rows of one process collide.
//!
//! An event that does not match is dropped (no put), as in Flume. Invariants: the pattern is
//! run with Java's meaning ([`crate::config::java_regex`]) or refused at start-up; an event
//! never panics the sink, and one the serializer cannot write (a group that took no part in
//! the match, where Flume fails the batch on a null group) is an error naming the column.

pub use crate::config::charset::Charset;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use regex::Regex;

use crate::config::java_regex;
use crate::event::Event;
use crate::hbase::{Mutation, PutCell};

/// Flume's defaults.
pub const DEFAULT_REGEX: &str = "(.*)";
pub const DEFAULT_COL_NAMES: &str = "payload";
/// The `colNames` entry that stands for the row key (any case).
pub const ROW_KEY_NAME: &str = "ROW_KEY";

/// HBase's longest row key (`Short.MAX_VALUE` bytes).
pub const MAX_ROW_LENGTH: usize = 32_767;

/// Java's `s.split(",")`: empty fields kept, except trailing ones (so `""` is one empty field
/// and `","` none).
pub fn java_split_commas(s: &str) -> Vec<String> {
    if s.is_empty() {
        return vec![String::new()];
    }
    let mut parts: Vec<String> = s.split(',').map(str::to_string).collect();
    while parts.last().is_some_and(String::is_empty) {
        parts.pop();
    }
    parts
}

/// The pattern as Flume compiles it (`Pattern.DOTALL`, plus `CASE_INSENSITIVE` when asked):
/// Java's syntax translated by [`java_regex::compile`], then its `.` widened to any character
/// and, for ignoring case, the crate's case folding turned on. The crate folds Unicode case
/// where Java (without `UNICODE_CASE`) folds ASCII only: a pattern with non-ASCII characters
/// is therefore refused with `regexIgnoreCase`, and the two non-ASCII characters the crate
/// folds into ASCII letters (KELVIN SIGN into `k`, LONG S into `s`) are hidden from the
/// pattern when matching (see [`RegexConfig::matched`]). The error says what is refused.
pub fn compile(pattern: &str, ignore_case: bool) -> Result<Regex, String> {
    let java = java_regex::compile(pattern)?;
    if ignore_case && !pattern.is_ascii() {
        return Err(
            "a pattern of ASCII characters only with regexIgnoreCase = true (Java folds the case of ASCII letters only, flumen's regex engine that of every letter; write both cases of a non-ASCII letter in a class instead, e.g. [éÉ])"
                .into(),
        );
    }
    // java_regex writes Java's `.` as this class; DOTALL makes it any character.
    let dotall = java
        .full
        .as_str()
        .replace(r"[^\n\r\x{85}\x{2028}\x{2029}]", "(?s:.)");
    let flags = if ignore_case { "(?i)" } else { "" };
    Regex::new(&format!("{flags}{dotall}")).map_err(|e| {
        format!(
            "a Java regular expression flumen can run: {}",
            e.to_string().replace('\n', " ")
        )
    })
}

/// The random part of generated row keys, drawn once per process (Flume: once per JVM).
fn random_key() -> &'static str {
    static KEY: OnceLock<String> = OnceLock::new();
    KEY.get_or_init(|| {
        const ALNUM: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
        let bytes = uuid::Uuid::new_v4().into_bytes();
        let more = uuid::Uuid::new_v4().into_bytes();
        bytes
            .iter()
            .zip(more.iter())
            .take(10)
            .map(|(a, b)| {
                let n = usize::from(*a) << 8 | usize::from(*b);
                char::from(ALNUM[n % ALNUM.len()])
            })
            .collect()
    })
}

/// The process-wide nonce of generated row keys.
static NONCE: AtomicI32 = AtomicI32::new(0);

/// A generated row key: `<millis>-<random>-<nonce>`, as text.
fn generated_row_key() -> String {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    // fetch_add wraps on overflow, as Java's getAndIncrement does.
    let nonce = NONCE.fetch_add(1, Ordering::Relaxed);
    format!("{millis}-{}-{nonce}", random_key())
}

/// The regex serializers' settings (`serializer.*`).
#[derive(Clone, Debug)]
pub struct RegexConfig {
    /// `regex` as written, for messages.
    pub source: String,
    /// `regex` compiled as [`compile`] does, anchored to the whole body.
    pub regex: Regex,
    /// `regexIgnoreCase`.
    pub ignore_case: bool,
    /// `colNames`, each encoded with `charset`.
    pub col_names: Vec<Vec<u8>>,
    /// `rowKeyIndex` when 0 or more: the column (`ROW_KEY`) whose group is the row key.
    pub row_key_index: Option<usize>,
    /// `depositHeaders`: every header becomes a cell too.
    pub deposit_headers: bool,
    /// `charset`.
    pub charset: Charset,
}

/// Why an event could not be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unwritable(pub String);

impl RegexConfig {
    /// The groups of a whole match of `text`, or `None`. With ignore-case, KELVIN SIGN and
    /// LONG S are matched as characters no ASCII letter folds to (same length in UTF-8, so
    /// the groups' offsets hold for the original text), as Java's ASCII-only folding sees
    /// them.
    fn matched(&self, text: &str) -> Option<Vec<Option<(usize, usize)>>> {
        let hidden;
        let subject = if self.ignore_case && text.contains(['\u{212A}', '\u{17F}']) {
            hidden = text
                .replace('\u{212A}', "\u{FFFD}")
                .replace('\u{17F}', "\u{D7}");
            hidden.as_str()
        } else {
            text
        };
        let caps = self.regex.captures(subject)?;
        Some(
            (1..caps.len())
                .map(|i| caps.get(i).map(|m| (m.start(), m.end())))
                .collect(),
        )
    }

    /// The put for `event`, appended to `puts`; nothing when the body does not match (or
    /// the put would have no cell: HBase refuses an empty put).
    pub fn serialize(
        &self,
        event: &Event,
        family: &[u8],
        puts: &mut Vec<Mutation>,
    ) -> Result<(), Unwritable> {
        let text = self.charset.decode(event.body());
        let Some(groups) = self.matched(&text) else {
            return Ok(());
        };
        if groups.len() != self.col_names.len() {
            return Ok(());
        }
        let group = |i: usize| -> Result<&str, Unwritable> {
            groups[i].map(|(s, e)| &text[s..e]).ok_or_else(|| {
                Unwritable(format!(
                    "group {} of serializer.regex `{}` (column `{}`) took no part in the match of an event, so it has no value; Flume fails the batch on such an event too. Make the group match the empty string instead (`(a?)`, not `(a)?`), or remove the event",
                    i + 1,
                    self.source,
                    String::from_utf8_lossy(&self.col_names[i])
                ))
            })
        };
        let row = match self.row_key_index {
            Some(i) => group(i)?.as_bytes().to_vec(),
            None => self.charset.encode(&generated_row_key()),
        };
        if row.is_empty() || row.len() > MAX_ROW_LENGTH {
            // HBase's Put refuses such a row, and Flume fails the batch on it.
            return Err(Unwritable(format!(
                "the row key of an event, group {} of serializer.regex `{}`, is {} bytes long; HBase takes 1 to {MAX_ROW_LENGTH}, and Flume fails the batch on such an event too",
                self.row_key_index.map_or(0, |i| i + 1),
                self.source,
                row.len()
            )));
        }
        let mut cells = Vec::with_capacity(self.col_names.len());
        for (i, name) in self.col_names.iter().enumerate() {
            if Some(i) == self.row_key_index {
                continue;
            }
            cells.push(PutCell {
                family: family.to_vec(),
                qualifier: name.clone(),
                value: group(i)?.as_bytes().to_vec(),
            });
        }
        if self.deposit_headers {
            for (k, v) in event.headers() {
                cells.push(PutCell {
                    family: family.to_vec(),
                    qualifier: self.charset.encode(k),
                    value: self.charset.encode(v),
                });
            }
        }
        if !cells.is_empty() {
            puts.push(Mutation::Put { row, cells });
        }
        Ok(())
    }
}

// The expected bytes below (charsets, deposited headers, rowKeyIndex, DOTALL, ignore case,
// KELVIN SIGN and LONG S, a group without a value) were checked against Flume 1.11's
// RegexHBase2EventSerializer (with hbase-client 2.6.1) run on the same events.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Headers;

    fn config(regex: &str, cols: &str, row_key: Option<usize>) -> RegexConfig {
        let charset = Charset::Utf8;
        RegexConfig {
            source: regex.into(),
            regex: compile(regex, false).expect("compiles"),
            ignore_case: false,
            col_names: java_split_commas(cols)
                .iter()
                .map(|c| charset.encode(c))
                .collect(),
            row_key_index: row_key,
            deposit_headers: false,
            charset,
        }
    }

    /// A put's row and its cells as (qualifier, value).
    type Put = (Vec<u8>, Vec<(String, Vec<u8>)>);

    fn put_of(c: &RegexConfig, event: &Event) -> Option<Put> {
        let mut puts = Vec::new();
        c.serialize(event, b"f", &mut puts).expect("writable");
        assert!(puts.len() <= 1);
        puts.pop().map(|m| match m {
            Mutation::Put { row, cells } => (
                row,
                cells
                    .into_iter()
                    .map(|c| {
                        assert_eq!(c.family, b"f");
                        (String::from_utf8_lossy(&c.qualifier).into_owned(), c.value)
                    })
                    .collect(),
            ),
            Mutation::Increment { .. } => panic!("the regex serializer only puts"),
        })
    }

    #[test]
    fn groups_go_to_their_columns_and_the_row_key_is_generated() {
        let c = config(r"([^ ]+) ([^ ]+)", "a,b", None);
        let (row, cells) = put_of(&c, &Event::new("x1 y2")).expect("matches");
        assert_eq!(
            cells,
            vec![("a".into(), b"x1".to_vec()), ("b".into(), b"y2".to_vec())]
        );
        let row = String::from_utf8(row).expect("text");
        let parts: Vec<&str> = row.split('-').collect();
        assert_eq!(parts.len(), 3, "{row}");
        assert!(parts[0].len() >= 13 && parts[0].bytes().all(|b| b.is_ascii_digit()));
        assert_eq!(parts[1].len(), 10);
        assert!(parts[1].bytes().all(|b| b.is_ascii_alphanumeric()), "{row}");
        let n: i32 = parts[2].parse().expect("nonce");
        let (row2, _) = put_of(&c, &Event::new("x y")).expect("matches");
        let row2 = String::from_utf8(row2).expect("text");
        let parts2: Vec<&str> = row2.split('-').collect();
        assert_eq!(parts2[1], parts[1], "one random part per process");
        assert!(parts2[2].parse::<i32>().expect("nonce") > n);
    }

    #[test]
    fn the_default_puts_the_whole_body_in_payload_and_dotall_spans_lines() {
        let c = config(DEFAULT_REGEX, DEFAULT_COL_NAMES, None);
        let (_, cells) = put_of(&c, &Event::new("line1\nline2\r\u{2028}x")).expect("matches");
        assert_eq!(
            cells,
            vec![(
                "payload".into(),
                "line1\nline2\r\u{2028}x".as_bytes().to_vec()
            )]
        );
    }

    #[test]
    fn a_body_that_does_not_match_whole_is_dropped() {
        let c = config(r"(\d+)", "n", None);
        assert!(put_of(&c, &Event::new("12a")).is_none());
        assert!(put_of(&c, &Event::new("x")).is_none());
        assert!(put_of(&c, &Event::new("12")).is_some());
        // More groups than columns: Flume drops every event.
        let c = config(r"(\d)(\d)", "n", None);
        assert!(put_of(&c, &Event::new("12")).is_none());
    }

    #[test]
    fn row_key_index_takes_the_row_from_its_group() {
        let c = config(
            r"^([^\t]+)\t([^\t]+)\t([^\t]+)$",
            "col1,col2,ROW_KEY",
            Some(2),
        );
        let (row, cells) = put_of(&c, &Event::new("a\tb\tkey-é")).expect("matches");
        assert_eq!(row, "key-é".as_bytes());
        assert_eq!(
            cells,
            vec![
                ("col1".into(), b"a".to_vec()),
                ("col2".into(), b"b".to_vec())
            ]
        );
    }

    #[test]
    fn headers_are_deposited_in_the_charset() {
        let mut c = config(r"(.*)", "body", None);
        c.deposit_headers = true;
        c.charset = Charset::Latin1;
        let mut h = Headers::new();
        h.insert("host".into(), "web1".into());
        h.insert("é".into(), "ü€".into());
        // The body is decoded as Latin-1 (0xE9 is é) and its group written in UTF-8.
        let e = Event::with_headers(h, vec![b'c', b'a', b'f', 0xE9]);
        let mut puts = Vec::new();
        c.serialize(&e, b"f", &mut puts).expect("writable");
        let Some(Mutation::Put { cells, .. }) = puts.pop() else {
            panic!("a put");
        };
        let got: Vec<(Vec<u8>, Vec<u8>)> =
            cells.into_iter().map(|c| (c.qualifier, c.value)).collect();
        assert_eq!(
            got,
            vec![
                (b"body".to_vec(), "café".as_bytes().to_vec()),
                (b"host".to_vec(), b"web1".to_vec()),
                (vec![0xE9], vec![0xFC, b'?']),
            ]
        );
    }

    #[test]
    fn ignore_case_folds_ascii_only_as_java() {
        let mut c = config(r"(error) (\w+)", "level,word", None);
        assert!(put_of(&c, &Event::new("ERROR disk")).is_none());
        c.regex = compile(r"(error) (\w+)", true).expect("compiles");
        c.ignore_case = true;
        let (_, cells) = put_of(&c, &Event::new("ERROR disk")).expect("matches");
        assert_eq!(cells[0].1, b"ERROR");
        // Java does not fold KELVIN SIGN into k, nor LONG S into s.
        let mut k = config(r"(k)", "c", None);
        k.regex = compile("(k)", true).expect("compiles");
        k.ignore_case = true;
        assert!(put_of(&k, &Event::new("K")).is_some());
        assert!(put_of(&k, &Event::new("\u{212A}")).is_none());
        let mut s = config(r"(.s)", "c", None);
        s.regex = compile("(.s)", true).expect("compiles");
        s.ignore_case = true;
        let (_, cells) = put_of(&s, &Event::new("\u{17F}S")).expect("matches");
        assert_eq!(
            cells[0].1,
            "\u{17F}S".as_bytes(),
            "the original text is kept"
        );
        assert!(put_of(&s, &Event::new("a\u{17F}")).is_none());
        // Classes too: Java's `[a-z]` takes no KELVIN SIGN, its `[^a-z]` does.
        let mut class = config(r"([a-z]+)", "c", None);
        class.regex = compile("([a-z]+)", true).expect("compiles");
        class.ignore_case = true;
        assert!(put_of(&class, &Event::new("AB")).is_some());
        assert!(put_of(&class, &Event::new("AB\u{212A}")).is_none());
        let mut neg = config(r"([^a-z])", "c", None);
        neg.regex = compile("([^a-z])", true).expect("compiles");
        neg.ignore_case = true;
        assert!(put_of(&neg, &Event::new("\u{212A}")).is_some());
        assert!(put_of(&neg, &Event::new("K")).is_none());
        assert!(compile("(é)", true).is_err());
        assert!(compile("(é)", false).is_ok());
    }

    #[test]
    fn a_group_without_a_value_names_its_column() {
        let c = config(r"(a)?(b)", "first,second", None);
        let mut puts = Vec::new();
        let e = c
            .serialize(&Event::new("b"), b"f", &mut puts)
            .expect_err("no value for group 1");
        assert!(e.0.contains("group 1") && e.0.contains("`first`"), "{e:?}");
        assert!(put_of(&c, &Event::new("ab")).is_some());
    }

    #[test]
    fn a_row_key_hbase_would_refuse_fails_the_event() {
        let c = config(r"([^,]*),(.*)", "ROW_KEY,v", Some(0));
        let mut puts = Vec::new();
        let e = c
            .serialize(&Event::new(",x"), b"f", &mut puts)
            .expect_err("empty row");
        assert!(e.0.contains("0 bytes"), "{e:?}");
        let long = format!("{},x", "k".repeat(MAX_ROW_LENGTH + 1));
        assert!(c.serialize(&Event::new(long), b"f", &mut puts).is_err());
        let ok = format!("{},x", "k".repeat(MAX_ROW_LENGTH));
        c.serialize(&Event::new(ok), b"f", &mut puts)
            .expect("the longest row HBase takes");
        assert_eq!(puts.len(), 1);
    }

    #[test]
    fn a_put_without_cells_is_not_sent() {
        let c = config(r"(.*)", "ROW_KEY", Some(0));
        assert!(put_of(&c, &Event::new("k")).is_none());
    }

    #[test]
    fn charsets_decode_and_encode_as_java() {
        assert_eq!(Charset::from_java("utf8"), Some(Charset::Utf8));
        assert_eq!(Charset::from_java("ISO-8859-1"), Some(Charset::Latin1));
        assert_eq!(Charset::from_java("US-ASCII"), Some(Charset::Ascii));
        assert_eq!(Charset::from_java("UTF-16"), None);
        assert_eq!(Charset::Ascii.decode(&[b'a', 0xE9]), "a\u{FFFD}");
        assert_eq!(Charset::Utf8.decode(&[b'a', 0xFF]), "a\u{FFFD}");
        assert_eq!(Charset::Ascii.encode("aé"), b"a?");
        assert_eq!(Charset::Latin1.encode("é€"), vec![0xE9, b'?']);
    }

    #[test]
    fn col_names_split_as_java() {
        assert_eq!(java_split_commas("a,b"), vec!["a", "b"]);
        assert_eq!(java_split_commas("a,,b,,"), vec!["a", "", "b"]);
        assert_eq!(java_split_commas(" a"), vec![" a"]);
        assert_eq!(java_split_commas(""), vec![""]);
        assert!(java_split_commas(",,").is_empty());
    }
}
