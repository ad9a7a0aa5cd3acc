//! The character sets components take by Java name (`charset` keys of the regex HBase
//! serializers and the multiport syslog source): UTF-8, US-ASCII and ISO-8859-1, with Java's
//! names and aliases, and Java's lossy conversions. A component that needs another behaviour
//! (a strict decode) writes it beside itself.

/// A character set flumen decodes and encodes with, by Java's name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Charset {
    Utf8,
    Ascii,
    Latin1,
}

impl Charset {
    /// Java's names (and common aliases) for the charsets flumen has.
    pub fn from_java(name: &str) -> Option<Charset> {
        let n = name.trim().to_ascii_lowercase().replace('_', "-");
        match n.as_str() {
            "utf-8" | "utf8" => Some(Charset::Utf8),
            "us-ascii" | "ascii" | "iso646-us" => Some(Charset::Ascii),
            "iso-8859-1" | "iso8859-1" | "latin1" | "iso-latin-1" | "8859-1" => {
                Some(Charset::Latin1)
            }
            _ => None,
        }
    }

    /// `new String(bytes, charset)`: what cannot be decoded becomes U+FFFD.
    pub fn decode(self, bytes: &[u8]) -> String {
        match self {
            Charset::Utf8 => String::from_utf8_lossy(bytes).into_owned(),
            Charset::Ascii => bytes
                .iter()
                .map(|&b| {
                    if b.is_ascii() {
                        char::from(b)
                    } else {
                        '\u{FFFD}'
                    }
                })
                .collect(),
            Charset::Latin1 => bytes.iter().map(|&b| char::from(b)).collect(),
        }
    }

    /// `text.getBytes(charset)`: what the charset cannot hold becomes `?`.
    pub fn encode(self, text: &str) -> Vec<u8> {
        let limit = match self {
            Charset::Utf8 => return text.as_bytes().to_vec(),
            Charset::Ascii => 0x7F,
            Charset::Latin1 => 0xFF,
        };
        text.chars()
            .map(|c| {
                u8::try_from(u32::from(c))
                    .ok()
                    .filter(|b| u32::from(*b) <= limit)
                    .unwrap_or(b'?')
            })
            .collect()
    }
}
