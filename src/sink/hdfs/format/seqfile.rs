//! Hadoop SequenceFile version 6, as `SequenceFile.Writer` lays it out for Flume: key
//! `LongWritable` (the event time in ms), value `BytesWritable` or `Text` (the body), no
//! metadata, optionally RECORD- or BLOCK-compressed.
//!
//! ```text
//! header  "SEQ" 06 | Text keyClass | Text valueClass | bool compressed | bool blockCompressed
//!         | [Text codecClass] | i32 metadataCount (0) | sync[16]
//! record  i32 recordLen | i32 keyLen (8) | key i64 | value      (RECORD: value = a codec unit)
//! sync    i32 -1 | sync[16]
//! block   sync | VInt records | 4 x (VInt len | compressed unit) for key lengths, keys,
//!         value lengths, values
//! ```
//! A codec unit is what the codec's stream writes between Hadoop's `resetState()` and
//! `finish()` (a zlib or bzip2 stream, a gzip member, Snappy blocks; see the codec module).
//! Invariants kept here, as Hadoop's writer keeps them: a sync marker precedes the first
//! record written at or after `last sync + SYNC_INTERVAL`, and every explicit flush ends with
//! one (never two in a row); a block is emitted once its keys and values reach
//! `BLOCK_SIZE` bytes, so at most one block plus one event is buffered. All integers are
//! big-endian (Java `DataOutput`).

use super::codec::Codec;
use super::{fresh_sync_marker, Encoder, FormatError, SeqCompression, WriteFormat};
use crate::event::Event;

/// Bytes between sync markers: Hadoop 3's `SequenceFile.SYNC_INTERVAL` (5 KiB x 20 = 100 KiB).
pub const SYNC_INTERVAL: u64 = 5 * 1024 * 20;

/// Hadoop's `io.seqfile.compress.blocksize` default: a block is cut once its uncompressed keys
/// and values reach this many bytes.
pub const BLOCK_SIZE: usize = 1_000_000;

/// `SYNC_ESCAPE`: a record length of -1 announces a sync marker.
const SYNC_ESCAPE: [u8; 4] = [0xff; 4];

const KEY_CLASS: &str = "org.apache.hadoop.io.LongWritable";
const BYTES_CLASS: &str = "org.apache.hadoop.io.BytesWritable";
const TEXT_CLASS: &str = "org.apache.hadoop.io.Text";

/// A serialized `LongWritable`.
const KEY_LEN: usize = 8;

/// The largest body a record can carry: Hadoop's record and value lengths are Java ints, and
/// the record length also counts the key and the value's own length prefix.
const MAX_BODY: usize = i32::MAX as usize - KEY_LEN - 5;

/// Appends `v` as Hadoop's `WritableUtils.writeVLong`: -112..=127 as one byte, otherwise a
/// length byte (-113..=-120 positive, -121..=-128 negative with the magnitude's one's
/// complement) and the big-endian magnitude without leading zero bytes.
pub fn write_vint(out: &mut Vec<u8>, v: i64) {
    if (-112..=127).contains(&v) {
        out.push(v as u8);
        return;
    }
    let (magnitude, base) = if v < 0 { (!v, -120i64) } else { (v, -112i64) };
    let bytes = magnitude.to_be_bytes();
    let skip = (magnitude.leading_zeros() / 8) as usize;
    let n = bytes.len() - skip;
    out.push((base - n as i64) as u8);
    out.extend_from_slice(bytes.get(skip..).unwrap_or_default());
}

/// Appends a Hadoop `Text`/`Text.writeString`: VInt byte length and the bytes.
fn write_text(out: &mut Vec<u8>, bytes: &[u8]) {
    write_vint(out, bytes.len() as i64);
    out.extend_from_slice(bytes);
}

/// The record key: the `timestamp` header when it is a valid i64, else `now_ms`. Flume's
/// serializers throw on a malformed header, which would fail the batch forever; falling back
/// to the arrival time keeps the event.
fn event_key(event: &Event, now_ms: i64) -> i64 {
    event
        .header("timestamp")
        .and_then(|t| t.trim().parse::<i64>().ok())
        .unwrap_or(now_ms)
}

/// The four uncompressed buffers of a block in progress.
#[derive(Default)]
struct Block {
    records: u32,
    key_lens: Vec<u8>,
    keys: Vec<u8>,
    val_lens: Vec<u8>,
    vals: Vec<u8>,
}

impl Block {
    fn clear(&mut self) {
        self.records = 0;
        self.key_lens.clear();
        self.keys.clear();
        self.val_lens.clear();
        self.vals.clear();
        // A one-off huge event must not pin its buffer for the life of the file.
        if self.vals.capacity() > 2 * BLOCK_SIZE {
            self.vals = Vec::new();
        }
    }
}

/// Writes one SequenceFile; see the module doc.
pub struct SequenceFileEncoder {
    value: WriteFormat,
    compression: Option<(Codec, SeqCompression)>,
    sync: [u8; 16],
    begun: bool,
    /// File offset of the next byte this encoder emits.
    pos: u64,
    /// File offset just after the last sync marker (0 before any, as in Hadoop, so the
    /// header counts towards the first interval).
    last_sync_end: u64,
    block: Block,
    /// Scratch for a serialized value, reused across records.
    scratch: Vec<u8>,
}

impl SequenceFileEncoder {
    /// An encoder for `value` records, uncompressed when `compression` is `None`.
    pub fn new(value: WriteFormat, compression: Option<(Codec, SeqCompression)>) -> Self {
        SequenceFileEncoder {
            value,
            compression,
            sync: fresh_sync_marker(),
            begun: false,
            pos: 0,
            last_sync_end: 0,
            block: Block::default(),
            scratch: Vec::new(),
        }
    }

    /// The current file's sync marker (for tests and tools that split files).
    pub fn sync_marker(&self) -> [u8; 16] {
        self.sync
    }

    fn value_class(&self) -> &'static str {
        match self.value {
            WriteFormat::Writable => BYTES_CLASS,
            WriteFormat::Text => TEXT_CLASS,
        }
    }

    /// Writes a sync marker unless one ends exactly here (Hadoop's `Writer.sync()`).
    fn sync_marker_into(&mut self, out: &mut Vec<u8>, start: usize) {
        let here = self.pos + (out.len() - start) as u64;
        if here != self.last_sync_end {
            out.extend_from_slice(&SYNC_ESCAPE);
            out.extend_from_slice(&self.sync);
            self.last_sync_end = here + 20;
        }
    }

    /// Serializes the value (BytesWritable: i32 length + bytes; Text: VInt length + bytes)
    /// into `buf`.
    fn serialize_value(value: WriteFormat, body: &[u8], buf: &mut Vec<u8>) {
        match value {
            WriteFormat::Writable => {
                buf.extend_from_slice(&(body.len() as u32).to_be_bytes());
                buf.extend_from_slice(body);
            }
            WriteFormat::Text => write_text(buf, body),
        }
    }

    /// Emits the pending block, preceded by its sync marker; nothing when it is empty.
    fn emit_block(
        &mut self,
        codec: Codec,
        out: &mut Vec<u8>,
        start: usize,
    ) -> Result<(), FormatError> {
        if self.block.records == 0 {
            return Ok(());
        }
        self.sync_marker_into(out, start);
        write_vint(out, i64::from(self.block.records));
        let block = &self.block;
        for buf in [&block.key_lens, &block.keys, &block.val_lens, &block.vals] {
            self.scratch.clear();
            codec.compress_unit(buf, &mut self.scratch)?;
            write_vint(out, self.scratch.len() as i64);
            out.extend_from_slice(&self.scratch);
        }
        self.block.clear();
        Ok(())
    }

    fn append_inner(
        &mut self,
        event: &Event,
        now_ms: i64,
        out: &mut Vec<u8>,
        start: usize,
    ) -> Result<(), FormatError> {
        let body = event.body();
        if body.len() > MAX_BODY {
            return Err(FormatError::EventTooLarge {
                len: body.len(),
                limit: MAX_BODY,
            });
        }
        let key = event_key(event, now_ms).to_be_bytes();
        match self.compression {
            Some((codec, SeqCompression::Block)) => {
                let b = &mut self.block;
                write_vint(&mut b.key_lens, KEY_LEN as i64);
                b.keys.extend_from_slice(&key);
                let before = b.vals.len();
                Self::serialize_value(self.value, body, &mut b.vals);
                write_vint(&mut b.val_lens, (b.vals.len() - before) as i64);
                b.records += 1;
                if b.keys.len() + b.vals.len() >= BLOCK_SIZE {
                    self.emit_block(codec, out, start)?;
                }
            }
            compression => {
                self.scratch.clear();
                let mut value = std::mem::take(&mut self.scratch);
                Self::serialize_value(self.value, body, &mut value);
                if let Some((codec, _)) = compression {
                    let mut packed = Vec::with_capacity(value.len() / 2 + 64);
                    codec.compress_unit(&value, &mut packed)?;
                    value = packed;
                }
                let record_len = KEY_LEN + value.len();
                // Compression can expand incompressible data slightly past the limit.
                let Ok(record_len) = i32::try_from(record_len) else {
                    return Err(FormatError::EventTooLarge {
                        len: body.len(),
                        limit: MAX_BODY,
                    });
                };
                if self.pos + (out.len() - start) as u64 >= self.last_sync_end + SYNC_INTERVAL {
                    self.sync_marker_into(out, start);
                }
                out.extend_from_slice(&record_len.to_be_bytes());
                out.extend_from_slice(&(KEY_LEN as i32).to_be_bytes());
                out.extend_from_slice(&key);
                out.extend_from_slice(&value);
                value.clear();
                self.scratch = value;
            }
        }
        Ok(())
    }

    /// Runs `f` with the position bookkeeping every emitting call needs.
    fn emitting<T>(
        &mut self,
        out: &mut Vec<u8>,
        f: impl FnOnce(&mut Self, &mut Vec<u8>, usize) -> T,
    ) -> T {
        let start = out.len();
        if !self.begun {
            self.write_header(out);
        }
        let result = f(self, out, start);
        self.pos += (out.len() - start) as u64;
        result
    }

    fn write_header(&mut self, out: &mut Vec<u8>) {
        self.begun = true;
        out.extend_from_slice(b"SEQ\x06");
        write_text(out, KEY_CLASS.as_bytes());
        write_text(out, self.value_class().as_bytes());
        let (compressed, block) = match self.compression {
            None => (false, false),
            Some((_, SeqCompression::Record)) => (true, false),
            Some((_, SeqCompression::Block)) => (true, true),
        };
        out.push(u8::from(compressed));
        out.push(u8::from(block));
        if let Some((codec, _)) = self.compression {
            write_text(out, codec.hadoop_class().as_bytes());
        }
        out.extend_from_slice(&0i32.to_be_bytes());
        out.extend_from_slice(&self.sync);
    }
}

impl Encoder for SequenceFileEncoder {
    fn begin(&mut self, out: &mut Vec<u8>) {
        self.sync = fresh_sync_marker();
        self.pos = 0;
        self.last_sync_end = 0;
        self.block.clear();
        self.begun = false;
        self.emitting(out, |_, _, _| ());
    }

    fn append(&mut self, event: &Event, now_ms: i64, out: &mut Vec<u8>) -> Result<(), FormatError> {
        self.emitting(out, |s, out, start| {
            s.append_inner(event, now_ms, out, start)
        })
    }

    fn flush(&mut self, out: &mut Vec<u8>) -> Result<(), FormatError> {
        self.emitting(out, |s, out, start| match s.compression {
            // A block carries its own leading sync marker; with nothing buffered there is
            // nothing to mark, as in Hadoop's BlockCompressWriter.sync().
            Some((codec, SeqCompression::Block)) => s.emit_block(codec, out, start),
            _ => {
                s.sync_marker_into(out, start);
                Ok(())
            }
        })
    }

    fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), FormatError> {
        self.emitting(out, |s, out, start| match s.compression {
            Some((codec, SeqCompression::Block)) => s.emit_block(codec, out, start),
            _ => Ok(()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn vint(v: i64) -> Vec<u8> {
        let mut out = Vec::new();
        write_vint(&mut out, v);
        out
    }

    /// Reads a VInt back, as `WritableUtils.readVLong` does (test oracle).
    fn read_vint(buf: &[u8]) -> (i64, usize) {
        let first = buf[0] as i8;
        if first >= -112 {
            return (i64::from(first), 1);
        }
        let negative = first < -120;
        let n = if negative {
            -(first as i64 + 120)
        } else {
            -(first as i64 + 112)
        } as usize;
        let mut v: i64 = 0;
        for b in &buf[1..=n] {
            v = (v << 8) | i64::from(*b);
        }
        (if negative { !v } else { v }, n + 1)
    }

    #[test]
    fn vint_vectors() {
        assert_eq!(vint(0), [0x00]);
        assert_eq!(vint(127), [0x7f]);
        assert_eq!(vint(-112), [0x90]);
        assert_eq!(vint(128), [0x8f, 0x80]);
        assert_eq!(vint(255), [0x8f, 0xff]);
        assert_eq!(vint(256), [0x8e, 0x01, 0x00]);
        assert_eq!(vint(300), [0x8e, 0x01, 0x2c]);
        assert_eq!(vint(-113), [0x87, 0x70]);
        assert_eq!(vint(-256), [0x87, 0xff]);
        assert_eq!(vint(-257), [0x86, 0x01, 0x00]);
        assert_eq!(
            vint(i64::MAX),
            [0x88, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]
        );
        assert_eq!(
            vint(i64::MIN),
            [0x80, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]
        );
        for v in [
            -1_000_000i64,
            -129,
            -128,
            -1,
            1,
            1_000_000,
            1 << 40,
            i64::MIN,
            i64::MAX,
        ] {
            let bytes = vint(v);
            assert_eq!(read_vint(&bytes), (v, bytes.len()), "{v}");
        }
    }

    fn event(ts: Option<&str>, body: &[u8]) -> Event {
        let mut e = Event::new(body.to_vec());
        if let Some(ts) = ts {
            e.set_header("timestamp", ts);
        }
        e
    }

    fn header_len(enc: &SequenceFileEncoder) -> usize {
        let mut out = Vec::new();
        let mut probe = SequenceFileEncoder::new(enc.value, enc.compression);
        probe.begin(&mut out);
        out.len()
    }

    #[test]
    fn protocols_md_example_record() {
        let mut enc = SequenceFileEncoder::new(WriteFormat::Writable, None);
        let mut out = Vec::new();
        enc.begin(&mut out);
        let sync = enc.sync_marker();
        let mut expected = b"SEQ\x06\x21org.apache.hadoop.io.LongWritable\x22org.apache.hadoop.io.BytesWritable\x00\x00\x00\x00\x00\x00".to_vec();
        expected.extend_from_slice(&sync);
        assert_eq!(out, expected);
        out.clear();
        enc.append(&event(Some("1700000000000"), b"hello"), 0, &mut out)
            .expect("decode our own output");
        let record: Vec<u8> = [
            &[0, 0, 0, 0x11, 0, 0, 0, 8][..],
            &[0, 0, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x00],
            &[0, 0, 0, 5],
            b"hello",
        ]
        .concat();
        assert_eq!(out, record);
    }

    #[test]
    fn key_falls_back_to_now_and_text_values_use_vints() {
        let mut enc = SequenceFileEncoder::new(WriteFormat::Text, None);
        let mut out = Vec::new();
        enc.begin(&mut out);
        out.clear();
        enc.append(&event(Some("not a number"), b"hi"), 42, &mut out)
            .expect("decode our own output");
        enc.append(&event(None, b""), -7, &mut out)
            .expect("append to memory");
        let expected: Vec<u8> = [
            &[0, 0, 0, 11, 0, 0, 0, 8][..],
            &42i64.to_be_bytes(),
            &[2],
            b"hi",
            &[0, 0, 0, 9, 0, 0, 0, 8],
            &(-7i64).to_be_bytes(),
            &[0],
        ]
        .concat();
        assert_eq!(out, expected);
    }

    #[test]
    fn sync_markers_every_interval_and_on_flush_but_never_twice() {
        let mut enc = SequenceFileEncoder::new(WriteFormat::Writable, None);
        let mut file = Vec::new();
        enc.begin(&mut file);
        let marker: Vec<u8> = [&SYNC_ESCAPE[..], &enc.sync_marker()].concat();
        let body = vec![b'x'; 1000];
        // Each record is 4 + 4 + 8 + 4 + 1000 = 1020 bytes; drain `out` between calls, as a
        // sink does, to prove positions do not depend on the caller's buffer.
        for _ in 0..250 {
            let mut out = Vec::new();
            enc.append(&event(Some("1"), &body), 0, &mut out)
                .expect("append to memory");
            file.extend_from_slice(&out);
        }
        let positions: Vec<usize> = file
            .windows(20)
            .enumerate()
            .filter(|(_, w)| *w == &marker[..])
            .map(|(i, _)| i)
            .collect();
        let header = header_len(&enc);
        // The first record at or past offset 102400 gets the marker; then every interval.
        assert_eq!(positions.len(), 2, "{positions:?}");
        let first = positions[0];
        assert!(first as u64 >= SYNC_INTERVAL && first < SYNC_INTERVAL as usize + 1020);
        assert_eq!((first - header) % 1020, 0);
        assert!(positions[1] as u64 >= first as u64 + 20 + SYNC_INTERVAL);

        let mut out = Vec::new();
        enc.flush(&mut out).expect("flush to memory");
        assert_eq!(out, marker);
        out.clear();
        enc.flush(&mut out).expect("flush to memory");
        assert!(out.is_empty(), "no second marker right after one");
        enc.finish(&mut out).expect("finish to memory");
        assert!(out.is_empty(), "an uncompressed file needs no trailer");
    }

    fn inflate(buf: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::ZlibDecoder::new(buf)
            .read_to_end(&mut out)
            .expect("decode our own output");
        out
    }

    /// Parses a block-compressed body (after the header) into (records, values) per block.
    fn parse_blocks(mut rest: &[u8], sync: &[u8; 16]) -> Vec<(i64, Vec<u8>)> {
        let mut blocks = Vec::new();
        while !rest.is_empty() {
            assert_eq!(&rest[..4], &SYNC_ESCAPE);
            assert_eq!(&rest[4..20], sync);
            rest = &rest[20..];
            let (records, n) = read_vint(rest);
            rest = &rest[n..];
            let mut parts = Vec::new();
            for _ in 0..4 {
                let (len, n) = read_vint(rest);
                let len = len as usize;
                parts.push(inflate(&rest[n..n + len]));
                rest = &rest[n + len..];
            }
            assert_eq!(parts[0], vec![8u8; records as usize]);
            assert_eq!(parts[1].len(), 8 * records as usize);
            blocks.push((records, parts[3].clone()));
        }
        blocks
    }

    #[test]
    fn blocks_are_cut_at_block_size_and_on_flush() {
        let mut enc = SequenceFileEncoder::new(
            WriteFormat::Writable,
            Some((Codec::Default, SeqCompression::Block)),
        );
        let mut file = Vec::new();
        enc.begin(&mut file);
        let header = file.len();
        assert!(file.ends_with(&enc.sync_marker()));
        let body = vec![b'y'; 99_988]; // key 8 + value 4 + 99 988 = 100 000 bytes per record
        for i in 0..25 {
            let mut out = Vec::new();
            enc.append(&event(Some("5"), &body), 0, &mut out)
                .expect("append to memory");
            // The 10th record fills the block to exactly BLOCK_SIZE: emitted at once.
            assert_eq!(!out.is_empty(), i % 10 == 9, "record {i}");
            file.extend_from_slice(&out);
        }
        let mut out = Vec::new();
        enc.flush(&mut out).expect("flush to memory");
        assert!(!out.is_empty());
        file.extend_from_slice(&out);
        out.clear();
        enc.flush(&mut out).expect("flush to memory");
        enc.finish(&mut out).expect("finish to memory");
        assert!(out.is_empty(), "nothing pending after a flush");
        enc.append(&event(None, b"z"), 9, &mut out)
            .expect("append to memory");
        assert!(out.is_empty(), "buffered until the block closes");
        enc.finish(&mut out).expect("finish to memory");
        file.extend_from_slice(&out);

        let blocks = parse_blocks(&file[header..], &enc.sync_marker());
        let counts: Vec<i64> = blocks.iter().map(|b| b.0).collect();
        assert_eq!(counts, [10, 10, 5, 1]);
        assert_eq!(blocks[3].1, [0, 0, 0, 1, b'z']);
    }

    #[test]
    fn record_compression_compresses_each_value() {
        let mut enc = SequenceFileEncoder::new(
            WriteFormat::Text,
            Some((Codec::Default, SeqCompression::Record)),
        );
        let mut out = Vec::new();
        enc.begin(&mut out);
        assert!(out.ends_with(
            &[
                b"\x01\x00\x2aorg.apache.hadoop.io.compress.DefaultCodec\x00\x00\x00\x00",
                &enc.sync_marker()[..]
            ]
            .concat()
        ));
        out.clear();
        enc.append(&event(Some("3"), b"hello"), 0, &mut out)
            .expect("decode our own output");
        let record_len = i32::from_be_bytes(out[0..4].try_into().expect("4 bytes")) as usize;
        assert_eq!(out.len(), 4 + 4 + record_len);
        assert_eq!(&out[4..8], &[0, 0, 0, 8]);
        assert_eq!(&out[8..16], &3i64.to_be_bytes());
        assert_eq!(inflate(&out[16..]), b"\x05hello");
    }

    #[test]
    fn header_is_written_even_without_begin() {
        let mut enc = SequenceFileEncoder::new(WriteFormat::Writable, None);
        let mut out = Vec::new();
        enc.append(&event(None, b"a"), 1, &mut out)
            .expect("append to memory");
        assert!(out.starts_with(b"SEQ\x06"));
    }
}
