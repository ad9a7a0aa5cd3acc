//! The character sets the spooldir source reads (`inputCharset`) and writes event bodies in
//! (`deserializer.outputCharset`), and what a malformed byte sequence becomes
//! (`decodeErrorPolicy`), with Java's names and meaning.
//!
//! Decoding is one character at a time over a window of bytes ([`Charset::decode`]), so the
//! caller keeps only a bounded buffer and knows the byte length of every character: the
//! tracker's offsets are byte offsets into the file, whatever the charset. A malformed
//! sequence is reported with its length, as Java's `CharsetDecoder` reports it (for UTF-8 the
//! "maximal subpart" rule, which `std::str::from_utf8` follows too), so `REPLACE` yields one
//! U+FFFD where Java's decoder does. Pure functions: no I/O.

/// A character set flumen can decode and encode. See the module docs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Charset {
    Utf8,
    UsAscii,
    Latin1,
    /// `UTF-16`: big-endian unless the file starts with a byte-order mark (which is not a
    /// character of the text); encoding writes a big-endian mark first, as Java does.
    Utf16,
    Utf16Be,
    Utf16Le,
}

/// Java's names for the charsets above (and their common aliases), matched ignoring case.
const NAMES: &[(&str, Charset)] = &[
    ("UTF-8", Charset::Utf8),
    ("UTF8", Charset::Utf8),
    ("US-ASCII", Charset::UsAscii),
    ("ASCII", Charset::UsAscii),
    ("US_ASCII", Charset::UsAscii),
    ("ISO646-US", Charset::UsAscii),
    ("ISO-8859-1", Charset::Latin1),
    ("ISO8859-1", Charset::Latin1),
    ("ISO8859_1", Charset::Latin1),
    ("ISO_8859_1", Charset::Latin1),
    ("ISO-LATIN-1", Charset::Latin1),
    ("LATIN1", Charset::Latin1),
    ("L1", Charset::Latin1),
    ("UTF-16", Charset::Utf16),
    ("UTF16", Charset::Utf16),
    ("UTF_16", Charset::Utf16),
    ("UTF-16BE", Charset::Utf16Be),
    ("UTF_16BE", Charset::Utf16Be),
    ("UTF-16LE", Charset::Utf16Le),
    ("UTF_16LE", Charset::Utf16Le),
];

/// What one step of decoding found at the start of a window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decoded {
    /// A character and the bytes it took.
    Char(char, usize),
    /// A malformed (or unmappable) sequence of this many bytes.
    Malformed(usize),
    /// The window ends inside a character: more bytes are needed (never at end of input).
    NeedMore,
}

impl Charset {
    /// The charset Java calls `name` (ignoring case), if flumen has it.
    pub fn from_name(name: &str) -> Option<Charset> {
        NAMES
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.trim()))
            .map(|(_, c)| *c)
    }

    /// The canonical names, for error messages.
    pub fn supported() -> &'static str {
        "UTF-8, US-ASCII, ISO-8859-1, UTF-16, UTF-16BE, UTF-16LE"
    }

    /// Decodes the character at the start of `bytes`; `eof` says no bytes follow the window
    /// (so a cut character is malformed, not waiting for more). `bytes` must not be empty.
    pub fn decode(self, bytes: &[u8], eof: bool) -> Decoded {
        let Some(&b0) = bytes.first() else {
            return Decoded::NeedMore;
        };
        match self {
            Charset::Latin1 => Decoded::Char(char::from(b0), 1),
            Charset::UsAscii if b0 < 0x80 => Decoded::Char(char::from(b0), 1),
            Charset::UsAscii => Decoded::Malformed(1),
            Charset::Utf8 => decode_utf8(bytes, eof),
            // The byte-order mark was handled when the file was opened (see `Utf16`).
            Charset::Utf16 | Charset::Utf16Be => decode_utf16(bytes, eof, u16::from_be_bytes),
            Charset::Utf16Le => decode_utf16(bytes, eof, u16::from_le_bytes),
        }
    }

    /// Appends `text` encoded in this charset to `out`. A character the charset cannot hold
    /// becomes `?`, as Java's `String.getBytes` makes it.
    pub fn encode(self, text: &str, out: &mut Vec<u8>) {
        match self {
            Charset::Utf8 => out.extend_from_slice(text.as_bytes()),
            Charset::UsAscii => {
                out.extend(
                    text.chars()
                        .map(|c| if c.is_ascii() { c as u8 } else { b'?' }),
                )
            }
            Charset::Latin1 => out.extend(
                text.chars()
                    .map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?')),
            ),
            Charset::Utf16 => {
                out.extend_from_slice(&[0xFE, 0xFF]);
                out.extend(text.encode_utf16().flat_map(u16::to_be_bytes));
            }
            Charset::Utf16Be => out.extend(text.encode_utf16().flat_map(u16::to_be_bytes)),
            Charset::Utf16Le => out.extend(text.encode_utf16().flat_map(u16::to_le_bytes)),
        }
    }

    /// For `UTF-16` with a byte-order mark in the file's first two bytes: the charset the rest
    /// is in and the mark's length. Other charsets (and no mark) are returned unchanged.
    pub fn with_bom(self, first: &[u8]) -> (Charset, u64) {
        match (self, first) {
            (Charset::Utf16, [0xFE, 0xFF, ..]) => (Charset::Utf16Be, 2),
            (Charset::Utf16, [0xFF, 0xFE, ..]) => (Charset::Utf16Le, 2),
            (Charset::Utf16, _) => (Charset::Utf16Be, 0),
            (c, _) => (c, 0),
        }
    }
}

fn decode_utf8(bytes: &[u8], eof: bool) -> Decoded {
    let window = bytes.get(..bytes.len().min(4)).unwrap_or(bytes);
    let valid = match std::str::from_utf8(window) {
        Ok(s) => s,
        Err(e) if e.valid_up_to() > 0 => {
            // The first character is whole; only what follows it is in doubt.
            std::str::from_utf8(window.get(..e.valid_up_to()).unwrap_or_default())
                .unwrap_or_default()
        }
        Err(e) => {
            return match e.error_len() {
                Some(n) => Decoded::Malformed(n),
                None if eof => Decoded::Malformed(window.len()),
                None => Decoded::NeedMore,
            }
        }
    };
    match valid.chars().next() {
        Some(c) => Decoded::Char(c, c.len_utf8()),
        None => Decoded::NeedMore,
    }
}

fn decode_utf16(bytes: &[u8], eof: bool, unit: fn([u8; 2]) -> u16) -> Decoded {
    let at = |i: usize| -> Option<u16> {
        let b = bytes.get(i..i + 2)?;
        Some(unit([*b.first()?, *b.get(1)?]))
    };
    let Some(u0) = at(0) else {
        return if eof {
            Decoded::Malformed(bytes.len())
        } else {
            Decoded::NeedMore
        };
    };
    match u0 {
        0xD800..=0xDBFF => match at(2) {
            Some(u1 @ 0xDC00..=0xDFFF) => {
                let c = 0x10000 + ((u32::from(u0) - 0xD800) << 10) + (u32::from(u1) - 0xDC00);
                char::from_u32(c).map_or(Decoded::Malformed(4), |c| Decoded::Char(c, 4))
            }
            Some(_) => Decoded::Malformed(2),
            None if eof => Decoded::Malformed(bytes.len()),
            None => Decoded::NeedMore,
        },
        0xDC00..=0xDFFF => Decoded::Malformed(2),
        u => char::from_u32(u32::from(u)).map_or(Decoded::Malformed(2), |c| Decoded::Char(c, 2)),
    }
}

/// What a malformed sequence becomes (`decodeErrorPolicy`, Flume's names).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeErrorPolicy {
    /// Stop reading the file, naming it and the byte offset (Flume stops the source).
    Fail,
    /// U+FFFD, one per malformed sequence.
    Replace,
    /// The bytes are dropped.
    Ignore,
}

impl DecodeErrorPolicy {
    /// Flume's `FAIL`, `REPLACE`, `IGNORE` (any case).
    pub fn from_name(s: &str) -> Option<DecodeErrorPolicy> {
        match s.trim().to_ascii_uppercase().as_str() {
            "FAIL" => Some(DecodeErrorPolicy::Fail),
            "REPLACE" => Some(DecodeErrorPolicy::Replace),
            "IGNORE" => Some(DecodeErrorPolicy::Ignore),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(cs: Charset, mut bytes: &[u8]) -> Vec<Decoded> {
        let mut out = Vec::new();
        while !bytes.is_empty() {
            let d = cs.decode(bytes, true);
            out.push(d);
            let n = match d {
                Decoded::Char(_, n) | Decoded::Malformed(n) => n,
                Decoded::NeedMore => panic!("need more at eof"),
            };
            bytes = &bytes[n..];
        }
        out
    }

    #[test]
    fn names_are_java_names_in_any_case() {
        assert_eq!(Charset::from_name("utf-8"), Some(Charset::Utf8));
        assert_eq!(Charset::from_name("ISO-8859-1"), Some(Charset::Latin1));
        assert_eq!(Charset::from_name("us-ascii"), Some(Charset::UsAscii));
        assert_eq!(Charset::from_name("UTF-16LE"), Some(Charset::Utf16Le));
        assert_eq!(Charset::from_name("EBCDIC"), None);
    }

    #[test]
    fn utf8_reports_maximal_subparts_and_waits_for_cut_characters() {
        use Decoded::*;
        assert_eq!(
            all(Charset::Utf8, b"a\xc3\xa9\xff\xe2\x82z"),
            [
                Char('a', 1),
                Char('é', 2),
                Malformed(1),
                Malformed(2),
                Char('z', 1)
            ]
        );
        assert_eq!(Charset::Utf8.decode(b"\xe2\x82", false), NeedMore);
        assert_eq!(Charset::Utf8.decode(b"\xe2\x82", true), Malformed(2));
        assert_eq!(Charset::Utf8.decode("😀".as_bytes(), false), Char('😀', 4));
    }

    #[test]
    fn ascii_latin1_and_utf16() {
        use Decoded::*;
        assert_eq!(
            all(Charset::UsAscii, b"a\xe9"),
            [Char('a', 1), Malformed(1)]
        );
        assert_eq!(all(Charset::Latin1, b"a\xe9"), [Char('a', 1), Char('é', 1)]);
        let mut le = Vec::new();
        Charset::Utf16Le.encode("a😀", &mut le);
        assert_eq!(all(Charset::Utf16Le, &le), [Char('a', 2), Char('😀', 4)]);
        assert_eq!(
            all(Charset::Utf16Be, &[0xDC, 0x00, 0x00, 0x41, 0x00]),
            [Malformed(2), Char('A', 2), Malformed(1)]
        );
        assert_eq!(
            Charset::Utf16.with_bom(&[0xFF, 0xFE]),
            (Charset::Utf16Le, 2)
        );
        assert_eq!(
            Charset::Utf16.with_bom(&[0x00, 0x41]),
            (Charset::Utf16Be, 0)
        );
    }

    #[test]
    fn encoding_replaces_what_the_charset_cannot_hold() {
        let mut out = Vec::new();
        Charset::UsAscii.encode("aé", &mut out);
        assert_eq!(out, b"a?");
        out.clear();
        Charset::Latin1.encode("é€", &mut out);
        assert_eq!(out, b"\xe9?");
        out.clear();
        Charset::Utf16.encode("A", &mut out);
        assert_eq!(out, [0xFE, 0xFF, 0x00, 0x41]);
    }
}
