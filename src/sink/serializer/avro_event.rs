//! `AVRO_EVENT` (Flume's `FlumeEventAvroEventSerializer`): an Avro object container file
//! (Avro 1.x specification, "Object Container Files") whose schema is Flume's event record,
//! `{"type":"record","name":"Event","fields":[{"name":"headers","type":{"type":"map",
//! "values":"string"}},{"name":"body","type":"bytes"}]}`, written as Avro's Java
//! `DataFileWriter` writes it:
//!
//! ```text
//! header  "Obj" 0x01
//!         metadata map: count 2, then in Java HashMap order "avro.schema" -> the schema
//!         JSON, "avro.codec" -> "null" | "deflate" | "snappy" (string keys, bytes values),
//!         then count 0
//!         16-byte sync marker (random per file)
//! block   long event count, long byte length of the data, the data (the events' binary
//!         encodings, concatenated, through the codec), the 16-byte sync marker
//! event   headers: map block (long count, then count x (string key, string value)) when
//!         not empty, then long 0; body: bytes (long length, bytes)
//! ```
//! Longs are zigzag varints, strings and bytes are a long length then the bytes. Codecs:
//! `null` (the data as it is), `deflate` (raw deflate, RFC 1951, no zlib header, level 6),
//! `snappy` (one raw Snappy block, then the CRC-32 of the uncompressed data, big-endian).
//!
//! A block is written when the buffered events reach `syncIntervalBytes` (after the event
//! that reached it, as Avro does) and at every [`Serializer::flush`], which the sinks call
//! once per batch (Flume's `flush()` is `DataFileWriter.flush()`). So the file always ends
//! with a whole block and its marker after a flush: a reader reads it whole, and a file cut
//! back to a flush point is a complete container file. Memory: one block of at most
//! `syncIntervalBytes` plus one event, and its compressed copy while it is written.
//!
//! The encoding is written here on the crate's own Avro binary writers (`crate::avro::binary`,
//! those of the RPC protocol) rather than with the apache-avro crate: the container adds a
//! header and a block frame to them, and the codecs come from crates already in the build.

use std::io::Write;

use super::{java_hash_map_order, Serializer, SerializerError};
use crate::avro::binary::{write_bytes, write_count, write_long, write_string};
use crate::event::{Event, Headers};

/// The container file's first four bytes.
pub const MAGIC: [u8; 4] = *b"Obj\x01";
/// Flume's event schema, as Avro's `Schema.toString()` prints it (the `avro.schema` value).
pub const SCHEMA: &str = r#"{"type":"record","name":"Event","fields":[{"name":"headers","type":{"type":"map","values":"string"}},{"name":"body","type":"bytes"}]}"#;
/// Avro's `DataFileWriter.setSyncInterval` bounds.
pub const MIN_SYNC_INTERVAL: u32 = 32;
pub const MAX_SYNC_INTERVAL: u32 = 1 << 30;

/// `compressionCodec`: the Avro block codec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AvroCodec {
    /// `null` (Flume's default): blocks as they are.
    #[default]
    Null,
    /// `deflate`: raw deflate at Avro's default level (6).
    Deflate,
    /// `snappy`: raw Snappy plus a big-endian CRC-32 of the uncompressed block.
    Snappy,
}

impl AvroCodec {
    /// Avro's name for it (`avro.codec`).
    pub fn name(self) -> &'static str {
        match self {
            AvroCodec::Null => "null",
            AvroCodec::Deflate => "deflate",
            AvroCodec::Snappy => "snappy",
        }
    }

    /// A codec from Avro's `CodecFactory` names (any case); the error says what to do.
    pub fn from_name(name: &str) -> Result<AvroCodec, String> {
        let n = name.trim().to_ascii_lowercase();
        match n.as_str() {
            "null" => Ok(AvroCodec::Null),
            "deflate" => Ok(AvroCodec::Deflate),
            "snappy" => Ok(AvroCodec::Snappy),
            "bzip2" | "xz" | "zstandard" => Err(format!(
                "flumen writes Avro blocks with null, deflate or snappy only; set \
                 compressionCodec to deflate (or snappy) instead of {n}"
            )),
            _ => Err(
                "Avro's codecs are null (the default), deflate, snappy, bzip2, xz and \
                      zstandard; flumen writes null, deflate or snappy"
                    .to_string(),
            ),
        }
    }
}

/// `AVRO_EVENT`'s keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AvroEventConfig {
    /// `compressionCodec` (`null`).
    pub codec: AvroCodec,
    /// `syncIntervalBytes` (2048000, Flume's): uncompressed bytes of events after which a
    /// block is written.
    pub sync_interval_bytes: u32,
}

impl Default for AvroEventConfig {
    fn default() -> Self {
        AvroEventConfig {
            codec: AvroCodec::Null,
            sync_interval_bytes: 2_048_000,
        }
    }
}

/// See the module docs.
pub struct AvroEvent {
    cfg: AvroEventConfig,
    sync: [u8; 16],
    /// The encoded events of the block being built.
    block: Vec<u8>,
    count: u64,
}

impl AvroEvent {
    pub fn new(cfg: AvroEventConfig) -> Self {
        AvroEvent {
            cfg,
            sync: [0; 16],
            block: Vec::new(),
            count: 0,
        }
    }

    /// [`Serializer::begin`] with a given sync marker (tests pin the bytes with it).
    fn begin_with_marker(&mut self, sync: [u8; 16], out: &mut Vec<u8>) {
        self.sync = sync;
        self.block.clear();
        self.count = 0;
        out.extend_from_slice(&MAGIC);
        let mut meta = Headers::new();
        meta.insert("avro.codec".into(), self.cfg.codec.name().into());
        meta.insert("avro.schema".into(), SCHEMA.into());
        write_count(out, meta.len());
        for (k, v) in java_hash_map_order(&meta) {
            write_string(out, k);
            write_bytes(out, v.as_bytes());
        }
        write_count(out, 0);
        out.extend_from_slice(&self.sync);
    }

    fn write_block(&mut self, out: &mut Vec<u8>) -> Result<(), SerializerError> {
        if self.count == 0 {
            return Ok(());
        }
        let compressed;
        let data: &[u8] = match self.cfg.codec {
            AvroCodec::Null => &self.block,
            AvroCodec::Deflate => {
                let mut enc = flate2::write::DeflateEncoder::new(
                    Vec::with_capacity(self.block.len() / 2),
                    flate2::Compression::default(),
                );
                compressed = enc
                    .write_all(&self.block)
                    .and_then(|()| enc.finish())
                    .map_err(|source| SerializerError::Compression {
                        codec: "deflate",
                        source,
                    })?;
                &compressed
            }
            AvroCodec::Snappy => {
                let mut c = snap::raw::Encoder::new()
                    .compress_vec(&self.block)
                    .map_err(|e| SerializerError::Compression {
                        codec: "snappy",
                        source: std::io::Error::other(e),
                    })?;
                c.extend_from_slice(&crc32fast::hash(&self.block).to_be_bytes());
                compressed = c;
                &compressed
            }
        };
        // Counts and lengths of in-memory buffers always fit an i64.
        write_long(out, self.count as i64);
        write_long(out, data.len() as i64);
        out.extend_from_slice(data);
        out.extend_from_slice(&self.sync);
        self.block.clear();
        self.count = 0;
        Ok(())
    }
}

impl Serializer for AvroEvent {
    fn begin(&mut self, out: &mut Vec<u8>) {
        self.begin_with_marker(*uuid::Uuid::new_v4().as_bytes(), out);
    }

    fn append(&mut self, event: &Event, out: &mut Vec<u8>) -> Result<(), SerializerError> {
        let headers = event.headers();
        if !headers.is_empty() {
            write_count(&mut self.block, headers.len());
            for (k, v) in java_hash_map_order(headers) {
                write_string(&mut self.block, k);
                write_string(&mut self.block, v);
            }
        }
        write_count(&mut self.block, 0);
        write_bytes(&mut self.block, event.body());
        self.count += 1;
        if self.block.len() >= self.cfg.sync_interval_bytes as usize {
            self.write_block(out)?;
        }
        Ok(())
    }

    fn flush(&mut self, out: &mut Vec<u8>) -> Result<(), SerializerError> {
        self.write_block(out)
    }

    fn discard(&mut self) {
        self.block.clear();
        self.count = 0;
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::io::Read;

    /// A cursor over Avro binary data (test oracle; the integration tests use Avro's own
    /// Java reader).
    struct Cursor<'a>(&'a [u8]);

    impl<'a> Cursor<'a> {
        fn long(&mut self) -> i64 {
            let (mut raw, mut shift) = (0u64, 0);
            loop {
                let b = self.0[0];
                self.0 = &self.0[1..];
                raw |= u64::from(b & 0x7f) << shift;
                shift += 7;
                if b < 0x80 {
                    return crate::avro::binary::zigzag_decode(raw);
                }
            }
        }
        fn take(&mut self, n: usize) -> &'a [u8] {
            let (a, b) = self.0.split_at(n);
            self.0 = b;
            a
        }
        fn bytes(&mut self) -> &'a [u8] {
            let n = self.long() as usize;
            self.take(n)
        }
        fn string(&mut self) -> String {
            String::from_utf8(self.bytes().to_vec()).expect("utf-8")
        }
    }

    /// Reads a container file of Flume events back: its codec and events.
    pub(crate) fn read_container(file: &[u8]) -> (String, Vec<Event>) {
        let mut r = Cursor(file);
        assert_eq!(r.take(4), &MAGIC, "magic");
        let mut codec = String::new();
        let mut schema = String::new();
        loop {
            let n = r.long();
            if n == 0 {
                break;
            }
            for _ in 0..n {
                let k = r.string();
                let v = r.string();
                match k.as_str() {
                    "avro.codec" => codec = v,
                    "avro.schema" => schema = v,
                    other => panic!("unexpected metadata {other}"),
                }
            }
        }
        assert_eq!(schema, SCHEMA);
        let sync = r.take(16);
        let mut events = Vec::new();
        while !r.0.is_empty() {
            let count = r.long();
            let data = r.bytes();
            assert_eq!(r.take(16), sync, "block marker");
            let plain = match codec.as_str() {
                "null" => data.to_vec(),
                "deflate" => {
                    let mut out = Vec::new();
                    flate2::read::DeflateDecoder::new(data)
                        .read_to_end(&mut out)
                        .expect("inflate");
                    out
                }
                "snappy" => {
                    let (body, crc) = data.split_at(data.len() - 4);
                    let out = snap::raw::Decoder::new()
                        .decompress_vec(body)
                        .expect("snappy");
                    assert_eq!(crc, crc32fast::hash(&out).to_be_bytes());
                    out
                }
                other => panic!("codec {other}"),
            };
            let mut d = Cursor(&plain);
            for _ in 0..count {
                let mut headers = Headers::new();
                loop {
                    let n = d.long();
                    if n == 0 {
                        break;
                    }
                    for _ in 0..n {
                        let k = d.string();
                        let v = d.string();
                        headers.insert(k, v);
                    }
                }
                let body = d.bytes().to_vec();
                events.push(Event::with_headers(headers, body));
            }
            assert!(d.0.is_empty(), "a block holds exactly its count of events");
        }
        (codec, events)
    }

    fn sample() -> Vec<Event> {
        let mut h = Headers::new();
        h.insert("host".into(), "web1".into());
        h.insert("timestamp".into(), "1700000000000".into());
        vec![
            Event::with_headers(h, "with headers"),
            Event::new(""),
            Event::new(vec![0u8, 255, 10]),
        ]
    }

    #[test]
    fn the_bytes_of_a_small_file() {
        let mut s = AvroEvent::new(AvroEventConfig::default());
        let mut out = Vec::new();
        s.begin_with_marker([7; 16], &mut out);
        let mut h = Headers::new();
        h.insert("k".into(), "v".into());
        s.append(&Event::with_headers(h, "ab"), &mut out)
            .expect("in memory");
        assert_eq!(
            out.len(),
            4 + 1 + 1 + 11 + 2 + SCHEMA.len() + 1 + 10 + 1 + 4 + 1 + 16
        );
        s.flush(&mut out).expect("in memory");
        let mut want = b"Obj\x01\x04".to_vec();
        // avro.schema first, as Java's HashMap iterates the two keys.
        want.push(22);
        want.extend_from_slice(b"avro.schema");
        write_long(&mut want, SCHEMA.len() as i64);
        want.extend_from_slice(SCHEMA.as_bytes());
        want.push(20);
        want.extend_from_slice(b"avro.codec\x08null\x00");
        want.extend_from_slice(&[7; 16]);
        // A block of 1 event in 9 bytes: map count 1, "k", "v", end, body "ab".
        want.extend_from_slice(b"\x02\x12\x02\x02k\x02v\x00\x04ab");
        want.extend_from_slice(&[7; 16]);
        assert_eq!(out, want);
    }

    #[test]
    fn every_codec_reads_back_after_each_flush() {
        for codec in [AvroCodec::Null, AvroCodec::Deflate, AvroCodec::Snappy] {
            let mut s = AvroEvent::new(AvroEventConfig {
                codec,
                sync_interval_bytes: 64,
            });
            let mut out = Vec::new();
            s.begin(&mut out);
            assert_eq!(read_container(&out).1, Vec::new());
            let mut all = Vec::new();
            for batch in 0..3 {
                if batch == 1 {
                    // A batch that failed: the sink cuts the file back to where the batch
                    // began and the serializer forgets what it buffered.
                    let mark = out.len();
                    for e in sample() {
                        s.append(&e, &mut out).expect("in memory");
                    }
                    s.discard();
                    out.truncate(mark);
                }
                for e in sample() {
                    s.append(&e, &mut out).expect("in memory");
                    all.push(e);
                }
                s.flush(&mut out).expect("in memory");
                let (name, events) = read_container(&out);
                assert_eq!(name, codec.name());
                assert_eq!(events, all, "{codec:?} after batch {batch}");
                let len = out.len();
                s.flush(&mut out).expect("in memory");
                assert_eq!(out.len(), len, "an idle flush writes no empty block");
            }
            s.finish(&mut out).expect("in memory");
            assert_eq!(read_container(&out).1, all);
        }
    }

    #[test]
    fn a_block_is_written_once_the_sync_interval_is_reached() {
        let mut s = AvroEvent::new(AvroEventConfig {
            codec: AvroCodec::Null,
            sync_interval_bytes: 100,
        });
        let mut out = Vec::new();
        s.begin(&mut out);
        let header = out.len();
        s.append(&Event::new(vec![b'x'; 50]), &mut out)
            .expect("in memory");
        assert_eq!(out.len(), header, "below the interval: buffered");
        s.append(&Event::new(vec![b'x'; 50]), &mut out)
            .expect("in memory");
        assert!(out.len() > header, "reached: a block is out");
        assert_eq!(read_container(&out).1.len(), 2);
    }

    #[test]
    fn unsupported_codecs_say_what_to_use() {
        let e = AvroCodec::from_name("zstandard").expect_err("refused");
        assert!(e.contains("deflate"), "{e}");
        assert_eq!(AvroCodec::from_name("Snappy"), Ok(AvroCodec::Snappy));
    }
}
