//! Avro binary encoding of the few types Flume's protocol uses (Avro spec, "Binary Encoding"):
//! zigzag varint `int`/`long`, `boolean`, `bytes`/`string`, `fixed(16)`, `enum` and union
//! indexes, and the block counts of `array`/`map`.
//!
//! Invariant: the reader works over one complete message held in memory, so every declared
//! length or count is checked against the bytes that remain *before* anything is allocated or
//! sliced: a string can be no longer than the rest of the message, and a block of `n` items can
//! hold no more than `remaining / min_item_bytes` items. A decoder therefore never allocates more
//! than the message it was given. Nothing here panics on any input.

use bytes::Bytes;

use super::AvroError;

/// Reads Avro values off the front of one message. Byte and string values are slices of the
/// message (`Bytes::slice`), not copies.
pub struct Reader<'a> {
    buf: &'a Bytes,
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `buf`.
    pub fn new(buf: &'a Bytes) -> Self {
        Reader { buf, pos: 0 }
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    /// Offset of the next byte to read, for error messages.
    pub fn position(&self) -> usize {
        self.pos
    }

    fn byte(&mut self, what: &'static str) -> Result<u8, AvroError> {
        let b = *self.buf.get(self.pos).ok_or(AvroError::Truncated {
            what,
            needed: 1,
            available: 0,
        })?;
        self.pos += 1;
        Ok(b)
    }

    /// A zigzag varint `long`. At most 10 bytes, and the 10th may only carry the 64th bit:
    /// anything longer or wider is refused rather than silently truncated.
    pub fn read_long(&mut self, what: &'static str) -> Result<i64, AvroError> {
        let mut raw: u64 = 0;
        for i in 0..10u32 {
            let b = self.byte(what)?;
            if i == 9 && b > 1 {
                return Err(AvroError::VarintOverflow { what, bits: 64 });
            }
            raw |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(zigzag_decode(raw));
            }
        }
        // Unreachable in practice: the 10th byte either ends the varint or fails the check above.
        Err(AvroError::VarintOverflow { what, bits: 64 })
    }

    /// A zigzag varint `int`: at most 5 bytes, the 5th carrying only the top 4 of 32 bits.
    pub fn read_int(&mut self, what: &'static str) -> Result<i32, AvroError> {
        let mut raw: u32 = 0;
        for i in 0..5u32 {
            let b = self.byte(what)?;
            if i == 4 && b > 0x0f {
                return Err(AvroError::VarintOverflow { what, bits: 32 });
            }
            raw |= u32::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                // Zigzag on 32 bits: (raw >> 1) ^ -(raw & 1).
                return Ok(((raw >> 1) as i32) ^ -((raw & 1) as i32));
            }
        }
        Err(AvroError::VarintOverflow { what, bits: 32 })
    }

    /// A `boolean`: one byte, 0 or 1 (anything else is refused).
    pub fn read_bool(&mut self, what: &'static str) -> Result<bool, AvroError> {
        match self.byte(what)? {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(AvroError::BadBoolean { what, byte: other }),
        }
    }

    /// An enum symbol or union branch index, checked to be below `count`.
    pub fn read_index(&mut self, what: &'static str, count: u32) -> Result<u32, AvroError> {
        let index = self.read_int(what)?;
        match u32::try_from(index) {
            Ok(i) if i < count => Ok(i),
            _ => Err(AvroError::BadIndex {
                what,
                index: i64::from(index),
                count,
            }),
        }
    }

    /// A length prefix, checked to be non-negative and to fit in what remains.
    fn read_len(&mut self, what: &'static str) -> Result<usize, AvroError> {
        let len = self.read_long(what)?;
        let available = self.remaining();
        match usize::try_from(len) {
            Ok(n) if n <= available => Ok(n),
            _ => Err(AvroError::LengthOutOfRange {
                what,
                len,
                available: available as u64,
            }),
        }
    }

    /// Exactly `n` raw bytes (a `fixed`, or a length-prefixed body).
    fn take(&mut self, what: &'static str, n: usize) -> Result<Bytes, AvroError> {
        let available = self.remaining();
        if n > available {
            return Err(AvroError::Truncated {
                what,
                needed: n as u64,
                available: available as u64,
            });
        }
        let out = self.buf.slice(self.pos..self.pos + n);
        self.pos += n;
        Ok(out)
    }

    /// `bytes`: a length, then that many bytes (a zero-copy slice of the message).
    pub fn read_bytes(&mut self, what: &'static str) -> Result<Bytes, AvroError> {
        let n = self.read_len(what)?;
        self.take(what, n)
    }

    /// `string`. Invalid UTF-8 is replaced with U+FFFD rather than refused, because that is
    /// what Flume does with a header (Avro's `Utf8.toString()` decodes lossily), so an event
    /// Flume accepts is accepted here with the same header text.
    pub fn read_string(&mut self, what: &'static str) -> Result<String, AvroError> {
        let n = self.read_len(what)?;
        let raw = self.take(what, n)?;
        Ok(String::from_utf8_lossy(&raw).into_owned())
    }

    /// `fixed(16)` (an MD5 hash in the handshake).
    pub fn read_fixed16(&mut self, what: &'static str) -> Result<[u8; 16], AvroError> {
        let raw = self.take(what, 16)?;
        let mut out = [0u8; 16];
        out.copy_from_slice(&raw);
        Ok(out)
    }

    /// The item count of the next block of an array or map; `0` ends the value. A negative
    /// count `-n` means `n` items preceded by the block's size in bytes, which is read and
    /// ignored (as Avro's Java decoder does). The count is refused when the remaining bytes
    /// cannot hold that many items of at least `min_item_bytes` each, so callers may reserve
    /// `count` slots without trusting the peer.
    pub fn read_block_count(
        &mut self,
        what: &'static str,
        min_item_bytes: usize,
    ) -> Result<usize, AvroError> {
        let raw = self.read_long(what)?;
        let count = if raw < 0 {
            let n = raw.checked_neg().ok_or(AvroError::CountOutOfRange {
                what,
                count: raw,
                available: self.remaining() as u64,
            })?;
            let size = self.read_long(what)?;
            if size < 0 {
                return Err(AvroError::LengthOutOfRange {
                    what,
                    len: size,
                    available: self.remaining() as u64,
                });
            }
            n
        } else {
            raw
        };
        let available = self.remaining();
        let max_items = available / min_item_bytes.max(1);
        match usize::try_from(count) {
            Ok(n) if n <= max_items => Ok(n),
            _ => Err(AvroError::CountOutOfRange {
                what,
                count: raw,
                available: available as u64,
            }),
        }
    }

    /// Fails unless every byte was read: trailing bytes after a request's parameters mean the
    /// peer encoded a different schema than the one we decoded with.
    pub fn finish(&self, what: &'static str) -> Result<(), AvroError> {
        match self.remaining() {
            0 => Ok(()),
            extra => Err(AvroError::TrailingBytes {
                what,
                extra: extra as u64,
            }),
        }
    }
}

/// Zigzag decoding: 0, 1, 2, 3, 4 -> 0, -1, 1, -2, 2.
pub fn zigzag_decode(raw: u64) -> i64 {
    ((raw >> 1) as i64) ^ -((raw & 1) as i64)
}

/// Zigzag encoding: 0, -1, 1, -2, 2 -> 0, 1, 2, 3, 4.
pub fn zigzag_encode(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// Appends a zigzag varint `long` (1 to 10 bytes).
pub fn write_long(out: &mut Vec<u8>, v: i64) {
    let mut raw = zigzag_encode(v);
    while raw >= 0x80 {
        out.push((raw as u8 & 0x7f) | 0x80);
        raw >>= 7;
    }
    out.push(raw as u8);
}

/// Appends a zigzag varint `int` (same bytes as the `long` of the same value).
pub fn write_int(out: &mut Vec<u8>, v: i32) {
    write_long(out, i64::from(v));
}

/// Appends a `boolean`.
pub fn write_bool(out: &mut Vec<u8>, v: bool) {
    out.push(u8::from(v));
}

/// Appends `bytes`: length then contents.
pub fn write_bytes(out: &mut Vec<u8>, v: &[u8]) {
    // A slice is never longer than isize::MAX, so the length always fits an i64.
    write_long(out, v.len() as i64);
    out.extend_from_slice(v);
}

/// Appends a `string` (its UTF-8 bytes).
pub fn write_string(out: &mut Vec<u8>, v: &str) {
    write_bytes(out, v.as_bytes());
}

/// Appends an array or map block count (`0` ends the value). Writers here always use positive
/// counts, as Avro's Java `BinaryEncoder` does.
pub fn write_count(out: &mut Vec<u8>, n: usize) {
    write_long(out, n as i64);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader_of(bytes: &[u8]) -> Bytes {
        Bytes::copy_from_slice(bytes)
    }

    #[test]
    fn zigzag_vectors() {
        for (v, raw) in [
            (0i64, 0u64),
            (-1, 1),
            (1, 2),
            (-2, 3),
            (2, 4),
            (i64::MAX, u64::MAX - 1),
            (i64::MIN, u64::MAX),
        ] {
            assert_eq!(zigzag_encode(v), raw, "encode {v}");
            assert_eq!(zigzag_decode(raw), v, "decode {raw}");
        }
    }

    #[test]
    fn long_vectors_and_boundaries() {
        let cases: &[(i64, &[u8])] = &[
            (0, &[0x00]),
            (-1, &[0x01]),
            (1, &[0x02]),
            (-64, &[0x7f]),
            (64, &[0x80, 0x01]),
            (8192, &[0x80, 0x80, 0x01]),
            (
                i64::MAX,
                &[0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
            ),
            (
                i64::MIN,
                &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
            ),
        ];
        for &(v, enc) in cases {
            let mut out = Vec::new();
            write_long(&mut out, v);
            assert_eq!(out, enc, "encode {v}");
            let buf = reader_of(enc);
            let mut r = Reader::new(&buf);
            assert_eq!(r.read_long("v"), Ok(v));
            assert_eq!(r.remaining(), 0);
        }
    }

    #[test]
    fn long_overflow_is_refused() {
        // 10th byte carrying more than the 64th bit.
        let buf = reader_of(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02]);
        assert_eq!(
            Reader::new(&buf).read_long("x"),
            Err(AvroError::VarintOverflow {
                what: "x",
                bits: 64
            })
        );
        // 11 bytes with continuation bits.
        let buf = reader_of(&[0xff; 11]);
        assert!(matches!(
            Reader::new(&buf).read_long("x"),
            Err(AvroError::VarintOverflow { .. })
        ));
        // A varint cut short.
        let buf = reader_of(&[0x80, 0x80]);
        assert!(matches!(
            Reader::new(&buf).read_long("x"),
            Err(AvroError::Truncated { .. })
        ));
    }

    #[test]
    fn int_vectors_and_overflow() {
        for v in [0i32, -1, 1, 63, -64, 64, i32::MAX, i32::MIN] {
            let mut out = Vec::new();
            write_int(&mut out, v);
            let buf = Bytes::from(out);
            assert_eq!(Reader::new(&buf).read_int("v"), Ok(v));
        }
        // i32::MAX + 1 as a long does not fit an int.
        let mut out = Vec::new();
        write_long(&mut out, i64::from(i32::MAX) + 1);
        let buf = Bytes::from(out);
        assert_eq!(
            Reader::new(&buf).read_int("x"),
            Err(AvroError::VarintOverflow {
                what: "x",
                bits: 32
            })
        );
    }

    #[test]
    fn bytes_length_is_checked_before_slicing() {
        // Declares 2^62 bytes with three bytes behind it.
        let mut out = Vec::new();
        write_long(&mut out, 1 << 62);
        out.extend_from_slice(b"abc");
        let buf = Bytes::from(out);
        assert_eq!(
            Reader::new(&buf).read_bytes("body"),
            Err(AvroError::LengthOutOfRange {
                what: "body",
                len: 1 << 62,
                available: 3
            })
        );
        // Negative length.
        let buf = reader_of(&[0x01]);
        assert!(matches!(
            Reader::new(&buf).read_string("s"),
            Err(AvroError::LengthOutOfRange { len: -1, .. })
        ));
    }

    #[test]
    fn string_is_lossy_like_java() {
        let buf = reader_of(&[0x04, 0xff, b'a']);
        assert_eq!(Reader::new(&buf).read_string("s"), Ok("\u{fffd}a".into()));
    }

    #[test]
    fn block_counts_positive_negative_and_bounded() {
        // -2 items, block size 4, then four bytes, then end.
        let buf = reader_of(&[0x03, 0x08, 0, 0, 0, 0, 0x00]);
        let mut r = Reader::new(&buf);
        assert_eq!(r.read_block_count("a", 2), Ok(2));
        assert_eq!(r.position(), 2);
        // Positive count too large for what remains (1 byte left, 2 bytes per item).
        let buf = reader_of(&[0x02, 0x00]);
        assert!(matches!(
            Reader::new(&buf).read_block_count("a", 2),
            Err(AvroError::CountOutOfRange { count: 1, .. })
        ));
        // i64::MIN cannot be negated.
        let mut out = Vec::new();
        write_long(&mut out, i64::MIN);
        let buf = Bytes::from(out);
        assert!(matches!(
            Reader::new(&buf).read_block_count("a", 1),
            Err(AvroError::CountOutOfRange { .. })
        ));
        // Huge declared count.
        let mut out = Vec::new();
        write_long(&mut out, 2_000_000_000);
        let buf = Bytes::from(out);
        assert!(matches!(
            Reader::new(&buf).read_block_count("a", 1),
            Err(AvroError::CountOutOfRange { .. })
        ));
    }

    #[test]
    fn bool_and_index() {
        let buf = reader_of(&[0x00, 0x01, 0x02]);
        let mut r = Reader::new(&buf);
        assert_eq!(r.read_bool("b"), Ok(false));
        assert_eq!(r.read_bool("b"), Ok(true));
        assert_eq!(
            r.read_bool("b"),
            Err(AvroError::BadBoolean { what: "b", byte: 2 })
        );
        let buf = reader_of(&[0x04, 0x06, 0x01]);
        let mut r = Reader::new(&buf);
        assert_eq!(r.read_index("e", 3), Ok(2));
        assert!(matches!(
            r.read_index("e", 3),
            Err(AvroError::BadIndex { index: 3, .. })
        ));
        assert!(matches!(
            r.read_index("e", 3),
            Err(AvroError::BadIndex { index: -1, .. })
        ));
    }
}
