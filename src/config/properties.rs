//! A reader for Java's `.properties` format, faithful to `java.util.Properties::load` for
//! everything Flume configuration files use.
//!
//! What `load` does, and so what this does:
//! - A *natural line* ends at `\n`, `\r` or `\r\n`. Leading spaces, tabs and form feeds are
//!   skipped. A natural line that is then empty, or starts with `#` or `!`, is skipped (a
//!   comment never continues onto the next line, even if it ends with a backslash).
//! - A natural line ending in an odd number of backslashes continues on the next natural line:
//!   the backslash and the line break are dropped, and so is the next line's leading
//!   whitespace. A continuation line that is empty (or only whitespace) ends the logical line;
//!   a continuation line starting with `#` is content, not a comment. A backslash at the very
//!   end of the file is dropped.
//! - The key runs to the first unescaped `=`, `:`, space, tab or form feed. Whitespace after it
//!   is skipped, then at most one `=` or `:`, then more whitespace; the rest of the logical line
//!   is the value, *trailing whitespace included* (the Flume layer trims it, as Flume does).
//! - Escapes in keys and values: `\t \n \r \f`, `\uHHHH` (exactly four hex digits; UTF-16
//!   surrogate pairs are combined), and `\` before any other character stands for that
//!   character (`\\`, `\=`, `\:`, `\ `, `\#`).
//! - A later occurrence of a key replaces the earlier one; we record each replacement so the
//!   caller can warn about it.
//!
//! Differences from Java: `load(InputStream)` decodes ISO-8859-1; [`super::load`] decodes
//! UTF-8 and falls back to ISO-8859-1 only when the file is not valid UTF-8. A lone UTF-16
//! surrogate from `\uHHHH` (which a Java `String` could hold) is an error here.

/// One key with its final value and the line its (last) definition starts on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Property {
    pub key: String,
    /// The value exactly as Java would hold it: escapes decoded, trailing whitespace kept.
    pub value: String,
    /// 1-based line on which the logical line defining the key starts.
    pub line: usize,
}

/// A key defined more than once: `line` replaced the value from `previous_line`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Duplicate {
    pub key: String,
    pub line: usize,
    pub previous_line: usize,
}

/// A malformed escape; `line` is where its logical line starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SyntaxError {
    pub line: usize,
    pub message: String,
}

/// The parsed file: keys in order of first appearance, each with its final value.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Properties {
    pub entries: Vec<Property>,
    pub duplicates: Vec<Duplicate>,
}

impl Properties {
    /// The final value of `key`, if defined.
    #[cfg(test)]
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|p| p.key == key)
            .map(|p| p.value.as_str())
    }
}

/// Whitespace as `Properties.load` defines it.
fn is_ws(c: char) -> bool {
    c == ' ' || c == '\t' || c == '\x0c'
}

/// Splits `text` into natural lines at `\n`, `\r\n` and `\r`.
fn natural_lines(text: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    let bytes = text.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\n' => {
                lines.push(&text[start..i]);
                i += 1;
                start = i;
            }
            b'\r' => {
                lines.push(&text[start..i]);
                i += 1;
                if i < bytes.len() && bytes[i] == b'\n' {
                    i += 1;
                }
                start = i;
            }
            _ => i += 1,
        }
    }
    if start < bytes.len() {
        lines.push(&text[start..]);
    }
    lines
}

/// True when `s` ends in an odd number of backslashes (a line continuation).
fn continues(s: &str) -> bool {
    s.bytes().rev().take_while(|&b| b == b'\\').count() % 2 == 1
}

/// Logical lines with the line number each starts on; escapes are still encoded.
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let lines = natural_lines(text);
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line_no = i + 1;
        let first = lines[i].trim_start_matches(is_ws);
        i += 1;
        if first.is_empty() || first.starts_with('#') || first.starts_with('!') {
            continue;
        }
        let mut buf = String::new();
        let mut cur = first;
        loop {
            if !continues(cur) {
                buf.push_str(cur);
                break;
            }
            buf.push_str(&cur[..cur.len() - 1]);
            let Some(next) = lines.get(i) else {
                break; // a backslash at the end of the file is dropped
            };
            i += 1;
            let next = next.trim_start_matches(is_ws);
            if next.is_empty() {
                break; // an empty continuation line ends the logical line
            }
            cur = next;
        }
        out.push((line_no, buf));
    }
    out
}

/// Splits a logical line into its (still escaped) key and value, as `Properties.load0` does.
fn split_key_value(line: &str) -> (&str, &str) {
    let mut key_end = line.len();
    let mut value_start = line.len();
    let mut has_sep = false;
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        if !escaped && (c == '=' || c == ':') {
            key_end = i;
            value_start = i + 1;
            has_sep = true;
            break;
        }
        if !escaped && is_ws(c) {
            key_end = i;
            value_start = i + 1;
            break;
        }
        escaped = c == '\\' && !escaped;
    }
    let rest = &line[value_start..];
    let mut skip = 0;
    for (i, c) in rest.char_indices() {
        if is_ws(c) {
            skip = i + 1;
            continue;
        }
        if !has_sep && (c == '=' || c == ':') {
            has_sep = true;
            skip = i + 1;
            continue;
        }
        skip = i;
        break;
    }
    // `skip` is past the whitespace and the one separator consumed (all of `rest` if nothing else).
    (&line[..key_end], &rest[skip..])
}

/// Decodes `\` escapes as `Properties.loadConvert` does.
fn unescape(s: &str, line: usize) -> Result<String, SyntaxError> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    let malformed = |what: String| SyntaxError {
        line,
        message: format!(
            "malformed \\uHHHH escape ({what}): write exactly four hex digits, e.g. \\u00e9"
        ),
    };
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let Some(e) = chars.next() else {
            break; // a lone trailing backslash stands for nothing
        };
        match e {
            't' => out.push('\t'),
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            'f' => out.push('\x0c'),
            'u' => {
                let unit = read_hex4(&mut chars).map_err(&malformed)?;
                if (0xD800..0xDC00).contains(&unit) {
                    // A high surrogate must be followed by a `\uHHHH` low surrogate.
                    let mut probe = chars.clone();
                    let low = if probe.next() == Some('\\') && probe.next() == Some('u') {
                        read_hex4(&mut probe).ok()
                    } else {
                        None
                    };
                    match low {
                        Some(low) if (0xDC00..0xE000).contains(&low) => {
                            chars = probe;
                            let code = 0x10000
                                + ((u32::from(unit) - 0xD800) << 10)
                                + (u32::from(low) - 0xDC00);
                            match char::from_u32(code) {
                                Some(ch) => out.push(ch),
                                None => return Err(malformed(format!("U+{code:X}"))),
                            }
                        }
                        _ => {
                            return Err(malformed(format!(
                                "\\u{unit:04X} is a high surrogate without a low surrogate after it"
                            )))
                        }
                    }
                } else {
                    match char::from_u32(u32::from(unit)) {
                        Some(ch) => out.push(ch),
                        None => {
                            return Err(malformed(format!("\\u{unit:04X} is a lone low surrogate")))
                        }
                    }
                }
            }
            other => out.push(other),
        }
    }
    Ok(out)
}

fn read_hex4(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Result<u16, String> {
    let mut v: u16 = 0;
    for n in 0..4 {
        match chars.peek().and_then(|c| c.to_digit(16)) {
            Some(d) => {
                chars.next();
                // Four hex digits always fit in 16 bits.
                v = (v << 4) | d as u16;
            }
            None => {
                return Err(format!(
                    "only {n} hex digit{} after \\u",
                    if n == 1 { "" } else { "s" }
                ))
            }
        }
    }
    Ok(v)
}

/// Parses a whole properties text.
pub(crate) fn parse(text: &str) -> Result<Properties, SyntaxError> {
    let mut props = Properties::default();
    let mut index: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for (line, logical) in logical_lines(text) {
        let (k, v) = split_key_value(&logical);
        let key = unescape(k, line)?;
        let value = unescape(v, line)?;
        match index.get(&key) {
            Some(&i) => {
                let entry = &mut props.entries[i];
                // The same value again changes nothing (files repeat `a1.channels = c1`).
                if entry.value != value {
                    props.duplicates.push(Duplicate {
                        key: key.clone(),
                        line,
                        previous_line: entry.line,
                    });
                }
                entry.value = value;
                entry.line = line;
            }
            None => {
                index.insert(key.clone(), props.entries.len());
                props.entries.push(Property { key, value, line });
            }
        }
    }
    Ok(props)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(text: &str) -> Vec<(String, String, usize)> {
        parse(text)
            .expect("parses")
            .entries
            .into_iter()
            .map(|p| (p.key, p.value, p.line))
            .collect()
    }

    fn one(text: &str) -> (String, String) {
        let v = kv(text);
        assert_eq!(v.len(), 1, "{text:?} gave {v:?}");
        (v[0].0.clone(), v[0].1.clone())
    }

    #[test]
    fn separators() {
        for text in [
            "a.b = c d",
            "a.b=c d",
            "a.b: c d",
            "a.b:c d",
            "a.b c d",
            "a.b\tc d",
            "a.b \t = \t c d",
            "a.b \t : c d",
            "   a.b = c d",
            "\t\x0ca.b=c d",
        ] {
            assert_eq!(one(text), ("a.b".into(), "c d".into()), "{text:?}");
        }
    }

    #[test]
    fn only_one_separator_is_skipped() {
        assert_eq!(one("k == v"), ("k".into(), "= v".into()));
        assert_eq!(one("k = : v"), ("k".into(), ": v".into()));
        assert_eq!(one("k  =v=w"), ("k".into(), "v=w".into()));
        // With whitespace as separator, one following `=` or `:` is still absorbed.
        assert_eq!(one("k : v"), ("k".into(), "v".into()));
        assert_eq!(one("k v = w"), ("k".into(), "v = w".into()));
    }

    #[test]
    fn empty_values_and_keys_alone() {
        assert_eq!(one("k"), ("k".into(), "".into()));
        assert_eq!(one("k ="), ("k".into(), "".into()));
        assert_eq!(one("k =   "), ("k".into(), "".into()));
        assert_eq!(one("=v"), ("".into(), "v".into()));
    }

    #[test]
    fn trailing_whitespace_of_values_is_kept() {
        assert_eq!(one("k = v  \t"), ("k".into(), "v  \t".into()));
        assert_eq!(one("k = v\\ "), ("k".into(), "v ".into()));
    }

    #[test]
    fn comments_and_blank_lines() {
        let text =
            "# comment\n! also a comment\n\n   \n  # indented comment\nk = v # not a comment\n";
        assert_eq!(kv(text), vec![("k".into(), "v # not a comment".into(), 6)]);
    }

    #[test]
    fn comment_lines_never_continue() {
        let text = "# comment \\\nk = v\n";
        assert_eq!(kv(text), vec![("k".into(), "v".into(), 2)]);
    }

    #[test]
    fn line_endings() {
        let text = "a=1\r\nb=2\rc=3\nd=4";
        assert_eq!(
            kv(text),
            vec![
                ("a".into(), "1".into(), 1),
                ("b".into(), "2".into(), 2),
                ("c".into(), "3".into(), 3),
                ("d".into(), "4".into(), 4),
            ]
        );
    }

    #[test]
    fn continuations() {
        let text = "k = one \\\n     two,\\\n\tthree\nnext = x\n";
        assert_eq!(
            kv(text),
            vec![
                ("k".into(), "one two,three".into(), 1),
                ("next".into(), "x".into(), 4),
            ]
        );
        // An even number of backslashes is an escaped backslash, not a continuation.
        assert_eq!(
            kv("k = a\\\\\nj = b"),
            vec![("k".into(), "a\\".into(), 1), ("j".into(), "b".into(), 2)]
        );
        // Three backslashes: one escaped backslash, then a continuation.
        assert_eq!(kv("k = a\\\\\\\n  b"), vec![("k".into(), "a\\b".into(), 1)]);
        // A continued line may start with `#`: it is content.
        assert_eq!(kv("k = a\\\n  # b"), vec![("k".into(), "a# b".into(), 1)]);
        // An empty continuation line ends the logical line.
        assert_eq!(
            kv("k = a\\\n   \nj = b"),
            vec![("k".into(), "a".into(), 1), ("j".into(), "b".into(), 3)]
        );
        // A backslash at the end of the file is dropped.
        assert_eq!(kv("k = a\\"), vec![("k".into(), "a".into(), 1)]);
        // The key itself may continue.
        assert_eq!(kv("a.\\\n  b = c"), vec![("a.b".into(), "c".into(), 1)]);
        // CRLF continuation.
        assert_eq!(kv("k = a\\\r\n  b\r\n"), vec![("k".into(), "ab".into(), 1)]);
    }

    #[test]
    fn escapes() {
        assert_eq!(
            one(r"k = a\tb\nc\rd\fe\\f"),
            ("k".into(), "a\tb\nc\rd\x0ce\\f".into())
        );
        assert_eq!(one(r"k = caf\u00e9 \u00E9"), ("k".into(), "café é".into()));
        assert_eq!(one(r"k = \uD83D\uDE00"), ("k".into(), "😀".into()));
        // Unknown escapes stand for the character itself.
        assert_eq!(one(r"k = \q\#\!\="), ("k".into(), "q#!=".into()));
        // Escaped separators and spaces inside keys.
        assert_eq!(one(r"a\=b\:c\ d = v"), ("a=b:c d".into(), "v".into()));
        // A leading escaped space in a value survives the whitespace skip.
        assert_eq!(one(r"k = \  v"), ("k".into(), "  v".into()));
        assert_eq!(one(r"k\u0041 = v"), ("kA".into(), "v".into()));
    }

    #[test]
    fn malformed_unicode_escapes_name_the_line() {
        for text in [
            "a=1\nk = \\u12",
            "a=1\nk = \\u12zz",
            "a=1\nk = \\uD83D",
            "a=1\nk = \\uDE00",
        ] {
            let err = parse(text).expect_err(text);
            assert_eq!(err.line, 2, "{text:?}");
            assert!(err.message.contains("\\uHHHH"), "{}", err.message);
        }
    }

    #[test]
    fn a_key_repeated_with_the_same_value_is_no_duplicate() {
        let p = parse("k = 1\nk = 1\n").expect("parses");
        assert_eq!(p.get("k"), Some("1"));
        assert!(p.duplicates.is_empty());
    }

    #[test]
    fn later_duplicates_win_and_are_recorded() {
        let p = parse("k = 1\nj = x\nk = 2\nk = 3\n").expect("parses");
        assert_eq!(p.get("k"), Some("3"));
        assert_eq!(p.entries[0].line, 4);
        assert_eq!(p.entries[0].key, "k");
        assert_eq!(
            p.duplicates,
            vec![
                Duplicate {
                    key: "k".into(),
                    line: 3,
                    previous_line: 1
                },
                Duplicate {
                    key: "k".into(),
                    line: 4,
                    previous_line: 3
                },
            ]
        );
    }

    #[test]
    fn non_ascii_text_is_kept() {
        assert_eq!(one("k = ünïcødé ✓"), ("k".into(), "ünïcødé ✓".into()));
    }
}
