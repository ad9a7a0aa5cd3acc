//! Streams: Flume's `DataStream` and `CompressedStream`: the events as the sink's
//! `serializer` writes them (`crate::sink::serializer`; by default `TEXT`, each event's body
//! followed by `\n`, headers dropped), plain or through a codec. The serializer is flushed
//! with every batch, so an Avro container ends in a whole block at each flush.
//!
//! A compressed file is a concatenation of complete members (gzip members, zlib or bzip2
//! streams, runs of Snappy blocks; see the codec module): Flume's
//! `HDFSCompressedDataStream.sync()` finishes the codec stream every batch, because Hadoop's
//! compression streams cannot flush mid-member, and starts a new member at the next event.
//! Hadoop's decompressor streams (and `gzip -d`, `bzip2 -d`) read such concatenations whole.
//! So after [`Encoder::flush`] the file holds only finished members and a reader sees every
//! event. An idle flush adds nothing, and a file that never had an event gets one empty
//! member at finish, as Flume's close leaves it.

use super::codec::{Codec, Member};
use super::{Encoder, FormatError};
use crate::event::Event;
use crate::sink::serializer::{Serializer, SerializerSpec};

/// The serializer's bytes, uncompressed; buffers only what the serializer does.
pub struct DataStreamEncoder {
    serializer: Box<dyn Serializer>,
}

impl DataStreamEncoder {
    /// Body-per-line text (TEXT).
    pub fn new() -> Self {
        Self::with_serializer(SerializerSpec::default().build())
    }

    pub fn with_serializer(serializer: Box<dyn Serializer>) -> Self {
        DataStreamEncoder { serializer }
    }
}

impl Default for DataStreamEncoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Encoder for DataStreamEncoder {
    fn begin(&mut self, out: &mut Vec<u8>) {
        self.serializer.begin(out);
    }

    fn append(
        &mut self,
        event: &Event,
        _now_ms: i64,
        out: &mut Vec<u8>,
    ) -> Result<(), FormatError> {
        Ok(self.serializer.append(event, out)?)
    }

    fn flush(&mut self, out: &mut Vec<u8>) -> Result<(), FormatError> {
        Ok(self.serializer.flush(out)?)
    }

    fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), FormatError> {
        Ok(self.serializer.finish(out)?)
    }
}

/// The serializer's bytes through a codec, one member per flushed batch.
pub struct CompressedStreamEncoder {
    serializer: Box<dyn Serializer>,
    /// The serializer's output not yet compressed (its opening bytes wait here for the
    /// first member).
    pending: Vec<u8>,
    codec: Codec,
    /// The member being written; `None` between a flush and the next event.
    member: Option<Member>,
    /// Whether this file has any member yet (an empty file is not a valid gzip file).
    wrote_member: bool,
}

impl CompressedStreamEncoder {
    /// Body-per-line text (TEXT) through `codec`.
    pub fn new(codec: Codec) -> Self {
        Self::with_serializer(codec, SerializerSpec::default().build())
    }

    pub fn with_serializer(codec: Codec, serializer: Box<dyn Serializer>) -> Self {
        CompressedStreamEncoder {
            serializer,
            pending: Vec::new(),
            codec,
            member: None,
            wrote_member: false,
        }
    }

    /// Compresses what the serializer emitted into the current member (started if need
    /// be); nothing when it emitted nothing.
    fn compress_pending(&mut self, out: &mut Vec<u8>) -> Result<(), FormatError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let member = self.member.get_or_insert_with(|| self.codec.member());
        member.write(&self.pending, out)?;
        self.pending.clear();
        Ok(())
    }

    fn end_member(&mut self, out: &mut Vec<u8>) -> Result<(), FormatError> {
        self.compress_pending(out)?;
        if let Some(member) = self.member.take() {
            member.finish(out)?;
            self.wrote_member = true;
        }
        Ok(())
    }
}

impl Encoder for CompressedStreamEncoder {
    fn begin(&mut self, _out: &mut Vec<u8>) {
        // A new file: whatever a previous file left unfinished is not part of this one.
        self.member = None;
        self.wrote_member = false;
        self.pending.clear();
        self.serializer.begin(&mut self.pending);
    }

    fn append(
        &mut self,
        event: &Event,
        _now_ms: i64,
        out: &mut Vec<u8>,
    ) -> Result<(), FormatError> {
        self.serializer.append(event, &mut self.pending)?;
        // The member must exist once an event went in, even one that wrote no bytes (an
        // empty body without newline): a flush then ends a member, as Flume's finish() does.
        self.member.get_or_insert_with(|| self.codec.member());
        self.compress_pending(out)
    }

    fn flush(&mut self, out: &mut Vec<u8>) -> Result<(), FormatError> {
        self.serializer.flush(&mut self.pending)?;
        if self.member.is_none() && !self.pending.is_empty() && !self.wrote_member {
            // The serializer's opening bytes with no event yet wait for the first member.
            return Ok(());
        }
        self.end_member(out)
    }

    fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), FormatError> {
        self.serializer.finish(&mut self.pending)?;
        if self.member.is_none() && !self.wrote_member {
            self.member = Some(self.codec.member());
        }
        self.end_member(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn data_stream_is_bodies_and_newlines() {
        let mut enc = DataStreamEncoder::new();
        let mut out = Vec::new();
        enc.begin(&mut out);
        for body in [&b"a"[..], b"", b"bc"] {
            enc.append(&Event::new(body.to_vec()), 0, &mut out)
                .expect("append to memory");
        }
        enc.flush(&mut out).expect("flush to memory");
        enc.finish(&mut out).expect("finish to memory");
        assert_eq!(out, b"a\n\nbc\n");
    }

    fn gunzip(buf: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(buf)
            .read_to_end(&mut out)
            .expect("decode our own output");
        out
    }

    #[test]
    fn every_flush_leaves_a_readable_file() {
        let mut enc = CompressedStreamEncoder::new(Codec::Gzip);
        let mut file = Vec::new();
        enc.begin(&mut file);
        let mut expected = Vec::new();
        for batch in 0..3 {
            for i in 0..100 {
                let line = format!("batch {batch} event {i}");
                enc.append(&Event::new(line.clone()), 0, &mut file)
                    .expect("append to memory");
                expected.extend_from_slice(line.as_bytes());
                expected.push(b'\n');
            }
            enc.flush(&mut file).expect("flush to memory");
            assert_eq!(gunzip(&file), expected, "after batch {batch}");
            let len = file.len();
            enc.flush(&mut file).expect("flush to memory");
            assert_eq!(file.len(), len, "an idle flush adds no empty member");
        }
        enc.finish(&mut file).expect("finish to memory");
        assert_eq!(gunzip(&file), expected);
        let members = file.windows(3).filter(|w| *w == [0x1f, 0x8b, 0x08]).count();
        assert_eq!(members, 3);
    }

    #[test]
    fn an_empty_file_is_still_a_valid_compressed_file() {
        let mut enc = CompressedStreamEncoder::new(Codec::Default);
        let mut file = Vec::new();
        enc.begin(&mut file);
        enc.flush(&mut file).expect("flush to memory");
        assert!(file.is_empty());
        enc.finish(&mut file).expect("finish to memory");
        let mut out = Vec::new();
        flate2::read::ZlibDecoder::new(&file[..])
            .read_to_end(&mut out)
            .expect("decode our own output");
        assert!(out.is_empty() && !file.is_empty());
    }

    /// Decodes a whole file the way Hadoop's reader for `codec` does (test oracle).
    fn decode(codec: Codec, file: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        match codec {
            Codec::Gzip => out = gunzip(file),
            Codec::Bzip2 => {
                bzip2::read::MultiBzDecoder::new(file)
                    .read_to_end(&mut out)
                    .expect("decode our own output");
            }
            Codec::Snappy => {
                let mut rest = file;
                let int =
                    |b: &[u8]| i32::from_be_bytes(b[..4].try_into().expect("4 bytes")) as usize;
                while !rest.is_empty() {
                    let total = int(rest);
                    rest = &rest[4..];
                    let start = out.len();
                    while out.len() - start < total {
                        let len = int(rest);
                        let piece = snap::raw::Decoder::new()
                            .decompress_vec(&rest[4..4 + len])
                            .expect("decode our own output");
                        out.extend_from_slice(&piece);
                        rest = &rest[4 + len..];
                    }
                    if total == 0 {
                        // Hadoop's reader stops at an empty block.
                        assert!(rest.is_empty(), "an empty block only ends an empty file");
                    }
                }
            }
            Codec::Default | Codec::Deflate => {
                flate2::read::ZlibDecoder::new(file)
                    .read_to_end(&mut out)
                    .expect("decode our own output");
            }
        }
        out
    }

    #[test]
    fn bzip2_and_snappy_files_read_whole_after_every_flush() {
        for codec in [Codec::Bzip2, Codec::Snappy] {
            let mut enc = CompressedStreamEncoder::new(codec);
            let mut file = Vec::new();
            enc.begin(&mut file);
            let mut expected = Vec::new();
            for batch in 0..3 {
                // A body past Snappy's block limit in the middle batch.
                let size = if batch == 1 { 300_000 } else { 10 };
                for i in 0..50 {
                    let line = format!("{codec} batch {batch} event {i} {}", "x".repeat(size));
                    enc.append(&Event::new(line.clone()), 0, &mut file)
                        .expect("append to memory");
                    expected.extend_from_slice(line.as_bytes());
                    expected.push(b'\n');
                }
                enc.flush(&mut file).expect("flush to memory");
                assert_eq!(
                    decode(codec, &file),
                    expected,
                    "{codec} after batch {batch}"
                );
                let len = file.len();
                enc.flush(&mut file).expect("flush to memory");
                assert_eq!(file.len(), len, "{codec}: an idle flush adds nothing");
            }
            enc.finish(&mut file).expect("finish to memory");
            assert_eq!(decode(codec, &file), expected, "{codec}");
            if codec == Codec::Bzip2 {
                assert_eq!(file.windows(4).filter(|w| *w == b"BZh9").count(), 3);
            }

            let mut empty = Vec::new();
            let mut enc = CompressedStreamEncoder::new(codec);
            enc.begin(&mut empty);
            enc.flush(&mut empty).expect("flush to memory");
            assert!(empty.is_empty());
            enc.finish(&mut empty).expect("finish to memory");
            assert!(
                !empty.is_empty(),
                "{codec}: an empty file is one empty member"
            );
            assert!(decode(codec, &empty).is_empty());
        }
    }

    #[test]
    fn avro_events_through_a_codec_read_back_after_every_flush() {
        use crate::sink::serializer::avro_event::tests::read_container;
        use crate::sink::serializer::AvroEventConfig;
        let spec = SerializerSpec::AvroEvent(AvroEventConfig::default());
        let mut enc = CompressedStreamEncoder::with_serializer(Codec::Gzip, spec.build());
        let mut file = Vec::new();
        enc.begin(&mut file);
        let mut expected = Vec::new();
        for batch in 0..3 {
            for i in 0..10 {
                let e = Event::new(format!("batch {batch} event {i}"));
                enc.append(&e, 0, &mut file).expect("append to memory");
                expected.push(e);
            }
            enc.flush(&mut file).expect("flush to memory");
            assert_eq!(read_container(&gunzip(&file)).1, expected, "batch {batch}");
        }
        enc.finish(&mut file).expect("finish to memory");
        assert_eq!(read_container(&gunzip(&file)).1, expected);

        let mut plain = DataStreamEncoder::with_serializer(spec.build());
        let mut file = Vec::new();
        plain.begin(&mut file);
        plain
            .append(&Event::new("x"), 0, &mut file)
            .expect("append");
        plain.flush(&mut file).expect("flush");
        assert_eq!(read_container(&file).1, [Event::new("x")]);
    }
}
