//! The two Thrift protocols Flume offers, as a [`Reader`] over one frame's message and a
//! [`Writer`] into a byte vector: `compact` (`TCompactProtocol`, Flume's default: varints,
//! zigzag integers, field ids as deltas) and `binary` (`TBinaryProtocol`: fixed big-endian
//! integers; strict message headers written, both forms read, as Thrift Java does).
//! docs/FORMAT.md has both layouts.
//!
//! Invariants: the reader never panics and never allocates more than the message it reads:
//! every string or binary length is checked against the bytes left, every container count
//! against what the bytes left could hold (one byte per element at least, two per map entry),
//! and nesting (structures and containers, read or skipped) stops at [`MAX_DEPTH`]. Binary
//! values are slices of the frame (no copy).

use bytes::Bytes;

use super::ThriftError;

/// Deepest nesting of structures and containers read or skipped (Thrift Java's default
/// recursion limit is 64 as well).
pub const MAX_DEPTH: u32 = 64;

/// Message types of the envelope.
pub const CALL: u8 = 1;
pub const REPLY: u8 = 2;
pub const EXCEPTION: u8 = 3;
pub const ONEWAY: u8 = 4;

/// `protocol = compact | binary` (Flume's key on the thrift source and `ThriftRpcClient`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    /// `TCompactProtocol`: Flume's default.
    #[default]
    Compact,
    /// `TBinaryProtocol`.
    Binary,
}

impl Protocol {
    /// The key's value, as Flume spells it.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Compact => "compact",
            Protocol::Binary => "binary",
        }
    }

    /// The protocol named `s` (any case, as Flume compares), `None` for another name.
    pub fn parse(s: &str) -> Option<Protocol> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("compact") {
            Some(Protocol::Compact)
        } else if s.eq_ignore_ascii_case("binary") {
            Some(Protocol::Binary)
        } else {
            None
        }
    }
}

/// Thrift's value types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TType {
    Bool,
    Byte,
    Double,
    I16,
    I32,
    I64,
    /// `string` and `binary`.
    String,
    Struct,
    Map,
    Set,
    List,
    Uuid,
}

impl TType {
    /// The name in the IDL, for messages.
    pub fn name(self) -> &'static str {
        match self {
            TType::Bool => "bool",
            TType::Byte => "byte",
            TType::Double => "double",
            TType::I16 => "i16",
            TType::I32 => "i32",
            TType::I64 => "i64",
            TType::String => "string",
            TType::Struct => "struct",
            TType::Map => "map",
            TType::Set => "set",
            TType::List => "list",
            TType::Uuid => "uuid",
        }
    }

    fn binary_code(self) -> u8 {
        match self {
            TType::Bool => 2,
            TType::Byte => 3,
            TType::Double => 4,
            TType::I16 => 6,
            TType::I32 => 8,
            TType::I64 => 10,
            TType::String => 11,
            TType::Struct => 12,
            TType::Map => 13,
            TType::Set => 14,
            TType::List => 15,
            TType::Uuid => 16,
        }
    }

    fn from_binary(code: u8) -> Option<TType> {
        Some(match code {
            2 => TType::Bool,
            3 => TType::Byte,
            4 => TType::Double,
            6 => TType::I16,
            8 => TType::I32,
            10 => TType::I64,
            11 => TType::String,
            12 => TType::Struct,
            13 => TType::Map,
            14 => TType::Set,
            15 => TType::List,
            16 => TType::Uuid,
            _ => return None,
        })
    }

    /// The compact type code (for a boolean field, the header carries the value instead:
    /// 1 true, 2 false; in containers booleans are declared 1 and written as a byte).
    fn compact_code(self) -> u8 {
        match self {
            TType::Bool => 1,
            TType::Byte => 3,
            TType::I16 => 4,
            TType::I32 => 5,
            TType::I64 => 6,
            TType::Double => 7,
            TType::String => 8,
            TType::List => 9,
            TType::Set => 10,
            TType::Map => 11,
            TType::Struct => 12,
            TType::Uuid => 13,
        }
    }

    fn from_compact(code: u8) -> Option<TType> {
        Some(match code {
            1 | 2 => TType::Bool,
            3 => TType::Byte,
            4 => TType::I16,
            5 => TType::I32,
            6 => TType::I64,
            7 => TType::Double,
            8 => TType::String,
            9 => TType::List,
            10 => TType::Set,
            11 => TType::Map,
            12 => TType::Struct,
            13 => TType::Uuid,
            _ => return None,
        })
    }
}

/// A message envelope: method name, message type ([`CALL`], [`REPLY`], ...) and sequence id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageHeader {
    pub name: String,
    pub kind: u8,
    pub seqid: i32,
}

/// Reads one message; see the module docs.
#[derive(Debug)]
pub struct Reader {
    proto: Protocol,
    buf: Bytes,
    pos: usize,
    /// Compact: the last field id of the structure being read, and those of the structures
    /// around it.
    last_field: i16,
    outer_fields: Vec<i16>,
    /// Compact: a boolean field's value, carried by its header.
    pending_bool: Option<bool>,
    depth: u32,
}

impl Reader {
    /// A reader at the start of `message` (one frame's bytes).
    pub fn new(proto: Protocol, message: Bytes) -> Reader {
        Reader {
            proto,
            buf: message,
            pos: 0,
            last_field: 0,
            outer_fields: Vec::new(),
            pending_bool: None,
            depth: 0,
        }
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<&[u8], ThriftError> {
        let available = self.remaining();
        if n > available {
            return Err(ThriftError::Truncated {
                what,
                needed: (n - available) as u64,
                available: available as u64,
            });
        }
        let start = self.pos;
        self.pos += n;
        self.buf
            .get(start..start + n)
            .ok_or(ThriftError::Truncated {
                what,
                needed: n as u64,
                available: 0,
            })
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], ThriftError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N, what)?);
        Ok(a)
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, ThriftError> {
        Ok(self.array::<1>(what)?[0])
    }

    fn varint(&mut self, what: &'static str, max_bytes: u32) -> Result<u64, ThriftError> {
        let mut v: u64 = 0;
        for i in 0..max_bytes {
            let b = self.u8(what)?;
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(ThriftError::VarintOverflow { what, max_bytes })
    }

    /// A compact varint32, as Thrift Java reads it (the bits of a 5-byte varint past 32 are
    /// dropped, so its sign is the wire's).
    fn varint32(&mut self, what: &'static str) -> Result<i32, ThriftError> {
        Ok(self.varint(what, 5)? as u32 as i32)
    }

    fn zigzag32(&mut self, what: &'static str) -> Result<i32, ThriftError> {
        let n = self.varint(what, 5)? as u32;
        Ok((n >> 1) as i32 ^ -((n & 1) as i32))
    }

    fn zigzag64(&mut self, what: &'static str) -> Result<i64, ThriftError> {
        let n = self.varint(what, 10)?;
        Ok((n >> 1) as i64 ^ -((n & 1) as i64))
    }

    /// A message envelope.
    pub fn message_begin(&mut self) -> Result<MessageHeader, ThriftError> {
        match self.proto {
            Protocol::Compact => {
                let bad = |detail: String| ThriftError::BadHeader {
                    protocol: "compact",
                    detail,
                };
                let id = self.u8("message header")?;
                if id != 0x82 {
                    return Err(bad(format!(
                        "first byte 0x{id:02x}, the compact protocol's is 0x82"
                    )));
                }
                let vt = self.u8("message header")?;
                if vt & 0x1f != 1 {
                    return Err(bad(format!("version {}, expected 1", vt & 0x1f)));
                }
                let seqid = self.varint32("message sequence id")?;
                let name = self.string("message name")?;
                Ok(MessageHeader {
                    name,
                    kind: (vt >> 5) & 0x07,
                    seqid,
                })
            }
            Protocol::Binary => {
                let size = i32::from_be_bytes(self.array::<4>("message header")?);
                if size < 0 {
                    let version = (size as u32) & 0xffff_0000;
                    if version != 0x8001_0000 {
                        return Err(ThriftError::BadHeader {
                            protocol: "binary",
                            detail: format!("version 0x{version:08x}, expected 0x80010000"),
                        });
                    }
                    let kind = (size & 0xff) as u8;
                    let name = self.string("message name")?;
                    let seqid = self.i32("message sequence id")?;
                    Ok(MessageHeader { name, kind, seqid })
                } else {
                    // The old, non-strict header: the name's length comes first.
                    let name = self.sized_string(i64::from(size), "message name")?;
                    let kind = self.u8("message type")?;
                    let seqid = self.i32("message sequence id")?;
                    Ok(MessageHeader { name, kind, seqid })
                }
            }
        }
    }

    fn enter(&mut self) -> Result<(), ThriftError> {
        if self.depth >= MAX_DEPTH {
            return Err(ThriftError::TooDeep { limit: MAX_DEPTH });
        }
        self.depth += 1;
        Ok(())
    }

    fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    /// Enters a structure.
    pub fn struct_begin(&mut self) -> Result<(), ThriftError> {
        self.enter()?;
        self.outer_fields.push(self.last_field);
        self.last_field = 0;
        Ok(())
    }

    /// Leaves a structure (after its stop field).
    pub fn struct_end(&mut self) {
        self.last_field = self.outer_fields.pop().unwrap_or(0);
        self.leave();
    }

    /// The next field's type and id, `None` at the structure's stop field.
    pub fn field_begin(&mut self) -> Result<Option<(TType, i16)>, ThriftError> {
        match self.proto {
            Protocol::Compact => {
                let b = self.u8("field header")?;
                if b == 0 {
                    return Ok(None);
                }
                let code = b & 0x0f;
                let ttype = TType::from_compact(code).ok_or(ThriftError::BadType {
                    what: "field type",
                    code,
                })?;
                let delta = i16::from(b >> 4);
                let id = if delta == 0 {
                    self.zigzag32("field id")? as i16
                } else {
                    self.last_field.wrapping_add(delta)
                };
                self.last_field = id;
                if ttype == TType::Bool {
                    self.pending_bool = Some(code == 1);
                }
                Ok(Some((ttype, id)))
            }
            Protocol::Binary => {
                let code = self.u8("field header")?;
                if code == 0 {
                    return Ok(None);
                }
                let ttype = TType::from_binary(code).ok_or(ThriftError::BadType {
                    what: "field type",
                    code,
                })?;
                let id = i16::from_be_bytes(self.array::<2>("field id")?);
                Ok(Some((ttype, id)))
            }
        }
    }

    /// Checks a container count against the bytes left (`min` bytes per element at least).
    fn count(&self, count: i64, min: usize, what: &'static str) -> Result<u32, ThriftError> {
        let available = self.remaining();
        match u32::try_from(count) {
            Ok(n) if (n as usize).saturating_mul(min) <= available => Ok(n),
            _ => Err(ThriftError::CountOutOfRange {
                what,
                count,
                available: available as u64,
            }),
        }
    }

    fn elem_type(&self, code: u8, what: &'static str) -> Result<TType, ThriftError> {
        match self.proto {
            Protocol::Compact => TType::from_compact(code),
            Protocol::Binary => TType::from_binary(code),
        }
        .ok_or(ThriftError::BadType { what, code })
    }

    /// A map's key and value types (`None` for an empty compact map, which declares none)
    /// and its checked entry count.
    pub fn map_begin(
        &mut self,
        what: &'static str,
    ) -> Result<(Option<(TType, TType)>, u32), ThriftError> {
        match self.proto {
            Protocol::Compact => {
                let n = self.varint32(what)?;
                if n == 0 {
                    return Ok((None, 0));
                }
                let kv = self.u8(what)?;
                let k = self.elem_type(kv >> 4, what)?;
                let v = self.elem_type(kv & 0x0f, what)?;
                Ok((Some((k, v)), self.count(i64::from(n), 2, what)?))
            }
            Protocol::Binary => {
                let [k, v] = self.array::<2>(what)?;
                let k = self.elem_type(k, what)?;
                let v = self.elem_type(v, what)?;
                let n = self.i32(what)?;
                Ok((Some((k, v)), self.count(i64::from(n), 2, what)?))
            }
        }
    }

    /// A list's (or set's) element type and checked count.
    pub fn list_begin(&mut self, what: &'static str) -> Result<(TType, u32), ThriftError> {
        match self.proto {
            Protocol::Compact => {
                let b = self.u8(what)?;
                let short = b >> 4;
                let n = if short == 15 {
                    i64::from(self.varint32(what)?)
                } else {
                    i64::from(short)
                };
                let t = self.elem_type(b & 0x0f, what)?;
                Ok((t, self.count(n, 1, what)?))
            }
            Protocol::Binary => {
                let t = self.u8(what)?;
                let t = self.elem_type(t, what)?;
                let n = self.i32(what)?;
                Ok((t, self.count(i64::from(n), 1, what)?))
            }
        }
    }

    fn sized(&mut self, len: i64, what: &'static str) -> Result<Bytes, ThriftError> {
        let available = self.remaining();
        let n = usize::try_from(len)
            .ok()
            .filter(|&n| n <= available)
            .ok_or(ThriftError::LengthOutOfRange {
                what,
                len,
                available: available as u64,
            })?;
        let start = self.pos;
        self.pos += n;
        Ok(self.buf.slice(start..start + n))
    }

    fn sized_string(&mut self, len: i64, what: &'static str) -> Result<String, ThriftError> {
        let b = self.sized(len, what)?;
        // Thrift Java decodes strings with `new String(bytes, UTF_8)`, which replaces bad
        // sequences: do the same, so a header reads as Flume would read it.
        Ok(String::from_utf8_lossy(&b).into_owned())
    }

    /// A `binary` value: a slice of the message.
    pub fn binary(&mut self, what: &'static str) -> Result<Bytes, ThriftError> {
        let len = match self.proto {
            Protocol::Compact => i64::from(self.varint32(what)?),
            Protocol::Binary => i64::from(self.i32(what)?),
        };
        self.sized(len, what)
    }

    /// A `string` value (invalid UTF-8 replaced, as Thrift Java does).
    pub fn string(&mut self, what: &'static str) -> Result<String, ThriftError> {
        let len = match self.proto {
            Protocol::Compact => i64::from(self.varint32(what)?),
            Protocol::Binary => i64::from(self.i32(what)?),
        };
        self.sized_string(len, what)
    }

    /// An `i32`.
    pub fn i32(&mut self, what: &'static str) -> Result<i32, ThriftError> {
        match self.proto {
            Protocol::Compact => self.zigzag32(what),
            Protocol::Binary => Ok(i32::from_be_bytes(self.array::<4>(what)?)),
        }
    }

    /// Skips one value of type `t` (and everything inside it).
    pub fn skip(&mut self, t: TType) -> Result<(), ThriftError> {
        let what = "skipped value";
        match (t, self.proto) {
            (TType::Bool, _) => {
                if self.pending_bool.take().is_none() {
                    self.take(1, what)?;
                }
            }
            (TType::Byte, _) => {
                self.take(1, what)?;
            }
            (TType::I16 | TType::I32, Protocol::Compact) => {
                self.zigzag32(what)?;
            }
            (TType::I64, Protocol::Compact) => {
                self.zigzag64(what)?;
            }
            (TType::I16, Protocol::Binary) => {
                self.take(2, what)?;
            }
            (TType::I32, Protocol::Binary) => {
                self.take(4, what)?;
            }
            (TType::I64 | TType::Double, _) => {
                self.take(8, what)?;
            }
            (TType::Uuid, _) => {
                self.take(16, what)?;
            }
            (TType::String, _) => {
                self.binary(what)?;
            }
            (TType::Struct, _) => {
                self.struct_begin()?;
                while let Some((ft, _)) = self.field_begin()? {
                    self.skip(ft)?;
                }
                self.struct_end();
            }
            (TType::Map, _) => {
                self.enter()?;
                let (types, n) = self.map_begin(what)?;
                if let Some((k, v)) = types {
                    for _ in 0..n {
                        self.skip(k)?;
                        self.skip(v)?;
                    }
                }
                self.leave();
            }
            (TType::List | TType::Set, _) => {
                self.enter()?;
                let (e, n) = self.list_begin(what)?;
                for _ in 0..n {
                    self.skip(e)?;
                }
                self.leave();
            }
        }
        // A field's boolean not read by its skip (a pending value only ever belongs to the
        // field just begun).
        self.pending_bool = None;
        Ok(())
    }
}

/// Writes messages; see the module docs.
#[derive(Debug)]
pub struct Writer<'a> {
    proto: Protocol,
    out: &'a mut Vec<u8>,
    last_field: i16,
    outer_fields: Vec<i16>,
}

impl<'a> Writer<'a> {
    /// A writer appending to `out`.
    pub fn new(proto: Protocol, out: &'a mut Vec<u8>) -> Writer<'a> {
        Writer {
            proto,
            out,
            last_field: 0,
            outer_fields: Vec::new(),
        }
    }

    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.out.push((v as u8 & 0x7f) | 0x80);
            v >>= 7;
        }
        self.out.push(v as u8);
    }

    fn zigzag32(&mut self, v: i32) {
        self.varint(u64::from(((v << 1) ^ (v >> 31)) as u32));
    }

    /// A message envelope (binary: the strict form, as Thrift Java writes by default).
    pub fn message_begin(&mut self, name: &str, kind: u8, seqid: i32) {
        match self.proto {
            Protocol::Compact => {
                self.out.push(0x82);
                self.out.push(1 | (kind << 5));
                self.varint(u64::from(seqid as u32));
                self.string(name);
            }
            Protocol::Binary => {
                let v = 0x8001_0000u32 | u32::from(kind);
                self.out.extend_from_slice(&v.to_be_bytes());
                self.string(name);
                self.out.extend_from_slice(&seqid.to_be_bytes());
            }
        }
    }

    /// Enters a structure.
    pub fn struct_begin(&mut self) {
        self.outer_fields.push(self.last_field);
        self.last_field = 0;
    }

    /// Ends a structure: its stop field.
    pub fn struct_end(&mut self) {
        self.out.push(0);
        self.last_field = self.outer_fields.pop().unwrap_or(0);
    }

    /// A field header (not for boolean fields: this crate writes none).
    pub fn field_begin(&mut self, t: TType, id: i16) {
        match self.proto {
            Protocol::Compact => {
                let delta = i32::from(id) - i32::from(self.last_field);
                if id > self.last_field && delta <= 15 {
                    self.out.push(((delta as u8) << 4) | t.compact_code());
                } else {
                    self.out.push(t.compact_code());
                    self.zigzag32(i32::from(id));
                }
                self.last_field = id;
            }
            Protocol::Binary => {
                self.out.push(t.binary_code());
                self.out.extend_from_slice(&id.to_be_bytes());
            }
        }
    }

    /// A map header.
    pub fn map_begin(&mut self, k: TType, v: TType, n: u32) {
        match self.proto {
            Protocol::Compact => {
                if n == 0 {
                    self.out.push(0);
                } else {
                    self.varint(u64::from(n));
                    self.out.push((k.compact_code() << 4) | v.compact_code());
                }
            }
            Protocol::Binary => {
                self.out.push(k.binary_code());
                self.out.push(v.binary_code());
                self.out.extend_from_slice(&n.to_be_bytes());
            }
        }
    }

    /// A list header.
    pub fn list_begin(&mut self, e: TType, n: u32) {
        match self.proto {
            Protocol::Compact => {
                if n < 15 {
                    self.out.push(((n as u8) << 4) | e.compact_code());
                } else {
                    self.out.push(0xf0 | e.compact_code());
                    self.varint(u64::from(n));
                }
            }
            Protocol::Binary => {
                self.out.push(e.binary_code());
                self.out.extend_from_slice(&n.to_be_bytes());
            }
        }
    }

    /// A `binary` value. Callers keep `b` under 2 GiB (a frame cannot hold more).
    pub fn binary(&mut self, b: &[u8]) {
        match self.proto {
            Protocol::Compact => self.varint(b.len() as u64),
            Protocol::Binary => self.out.extend_from_slice(&(b.len() as u32).to_be_bytes()),
        }
        self.out.extend_from_slice(b);
    }

    /// A `string` value.
    pub fn string(&mut self, s: &str) {
        self.binary(s.as_bytes());
    }

    /// An `i32`.
    pub fn i32(&mut self, v: i32) {
        match self.proto {
            Protocol::Compact => self.zigzag32(v),
            Protocol::Binary => self.out.extend_from_slice(&v.to_be_bytes()),
        }
    }
}
