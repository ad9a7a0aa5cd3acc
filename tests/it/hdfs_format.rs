//! Hadoop's own readers read what flumen's HDFS format encoders write. Each test writes files
//! with the encoders, computes in Rust what a reader must see (record count and a CRC32 over
//! every record's serialized key and value, or over a stream's decompressed bytes), then runs
//! one JVM with `flumen.test.SeqCheck` (Hadoop 3.4's `SequenceFile.Reader` and
//! `CompressionCodecFactory`) over all of them and compares line by line. The mix covers every
//! value class, compression type and codec, empty and 1 MiB bodies, many blocks, sync
//! intervals and flushes mid-file (several blocks or compressed members per file).

use std::path::{Path, PathBuf};
use std::process::Command;

use flumen::event::Event;
use flumen::sink::hdfs::format::{
    write_vint, Codec, FileType, FormatSpec, SeqCompression, WriteFormat,
};

use crate::hdfs_cluster::{java_classpath, run_java};

/// A deterministic xorshift so every run writes the same bytes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn bytes(&mut self, len: usize, text: bool) -> Vec<u8> {
        (0..len)
            .map(|_| {
                let r = self.next();
                if text {
                    b"abcdefghij klmnopqrstuvwxyz"[(r % 27) as usize]
                } else {
                    r as u8
                }
            })
            .collect()
    }
}

/// Events with every key source (a valid, a malformed and no `timestamp` header) and body
/// sizes from 0 to 1 MiB + 17, then `small` short events. `text` keeps bodies to letters
/// (compressible, no newlines); otherwise bodies are random bytes.
fn events(seed: u64, small: usize, text: bool) -> Vec<Event> {
    let mut rng = Rng(seed);
    let mut out = Vec::new();
    for (i, len) in [0usize, 1, 2, 127, 128, 300, (1 << 20) + 17, 5]
        .into_iter()
        .enumerate()
    {
        let mut e = Event::new(rng.bytes(len, text));
        match i % 3 {
            0 => e.set_header("timestamp", (1_700_000_000_000 + i as i64).to_string()),
            1 => e.set_header("timestamp", "yesterday"),
            _ => {}
        }
        out.push(e);
    }
    for i in 0..small {
        let len = (rng.next() % 200) as usize;
        let mut e = Event::new(rng.bytes(len, text));
        if i % 2 == 0 {
            e.set_header("timestamp", (rng.next() >> 20).to_string());
        }
        out.push(e);
    }
    out
}

/// `now_ms` for the `i`th event, as a sink would pass the clock.
fn now_for(i: usize) -> i64 {
    1_600_000_000_000 + i as i64
}

struct Case {
    name: &'static str,
    spec: FormatSpec,
    events: Vec<Event>,
    /// Flush after every this many events (Flume flushes every batch).
    flush_every: usize,
}

impl Case {
    fn new(name: &'static str, spec: FormatSpec, events: Vec<Event>, flush_every: usize) -> Case {
        Case {
            name,
            spec,
            events,
            flush_every,
        }
    }

    /// Writes the file as the sink would (begin, append, flush per batch, finish) and
    /// returns its path with the extension Flume gives it.
    fn write(&self, dir: &Path) -> PathBuf {
        let path = dir.join(format!("{}{}", self.name, self.spec.default_extension()));
        self.spec.validate().expect("a valid spec");
        let mut enc = self.spec.encoder();
        let mut file = Vec::new();
        let mut out = Vec::new();
        enc.begin(&mut out);
        file.append(&mut out);
        for (i, e) in self.events.iter().enumerate() {
            enc.append(e, now_for(i), &mut out).expect("append");
            if (i + 1) % self.flush_every == 0 {
                enc.flush(&mut out).expect("flush");
            }
            // Drain as the sink does: the encoder must not depend on the caller's buffer.
            file.append(&mut out);
        }
        enc.finish(&mut out).expect("finish");
        file.append(&mut out);
        std::fs::write(&path, &file).expect("write the file");
        path
    }

    /// The checker's argument for this file.
    fn arg(&self, path: &Path) -> String {
        let kind = match self.spec.file_type {
            FileType::SequenceFile => "seq",
            _ => "stream",
        };
        format!("{kind}:{}", path.display())
    }

    /// The line SeqCheck must print (without the `syncs=` field, checked separately).
    fn expected(&self, path: &Path) -> String {
        let mut crc = crc32fast::Hasher::new();
        match self.spec.file_type {
            FileType::SequenceFile => {
                for (i, e) in self.events.iter().enumerate() {
                    let key = e
                        .header("timestamp")
                        .and_then(|t| t.parse::<i64>().ok())
                        .unwrap_or(now_for(i));
                    crc.update(&key.to_be_bytes());
                    let mut value = Vec::new();
                    match self.spec.write_format {
                        WriteFormat::Writable => {
                            value.extend_from_slice(&(e.body().len() as u32).to_be_bytes())
                        }
                        WriteFormat::Text => write_vint(&mut value, e.body().len() as i64),
                    }
                    value.extend_from_slice(e.body());
                    crc.update(&value);
                }
                let value_class = match self.spec.write_format {
                    WriteFormat::Writable => "org.apache.hadoop.io.BytesWritable",
                    WriteFormat::Text => "org.apache.hadoop.io.Text",
                };
                let compression = match (self.spec.codec, self.spec.seq_compression) {
                    (None, _) => "NONE",
                    (Some(_), SeqCompression::Record) => "RECORD",
                    (Some(_), SeqCompression::Block) => "BLOCK",
                };
                format!(
                    "OK {} key=org.apache.hadoop.io.LongWritable value={value_class} \
                     compression={compression} codec={} records={} crc={:x}",
                    path.display(),
                    self.spec.codec.map_or("none", |c| c.hadoop_class()),
                    self.events.len(),
                    crc.finalize()
                )
            }
            _ => {
                let mut bytes = 0;
                let mut lines = 0;
                for e in &self.events {
                    crc.update(e.body());
                    crc.update(b"\n");
                    bytes += e.body().len() + 1;
                    lines += 1 + e.body().iter().filter(|b| **b == b'\n').count();
                }
                // Hadoop picks a stream's codec by file extension, and `.deflate` maps to
                // DeflateCodec (the same zlib bytes as DefaultCodec).
                let codec = match self.spec.codec {
                    None => "none",
                    Some(Codec::Gzip) => "org.apache.hadoop.io.compress.GzipCodec",
                    Some(Codec::Default | Codec::Deflate) => {
                        "org.apache.hadoop.io.compress.DeflateCodec"
                    }
                    Some(c @ (Codec::Bzip2 | Codec::Snappy)) => c.hadoop_class(),
                };
                format!(
                    "OK {} codec={codec} bytes={bytes} lines={lines} crc={:x}",
                    path.display(),
                    crc.finalize()
                )
            }
        }
    }
}

fn seq(write_format: WriteFormat, codec: Option<Codec>, compression: SeqCompression) -> FormatSpec {
    FormatSpec {
        file_type: FileType::SequenceFile,
        write_format,
        codec,
        seq_compression: compression,
        ..FormatSpec::default()
    }
}

fn stream(codec: Option<Codec>) -> FormatSpec {
    FormatSpec {
        file_type: if codec.is_some() {
            FileType::CompressedStream
        } else {
            FileType::DataStream
        },
        codec,
        ..FormatSpec::default()
    }
}

/// Splits a checker line into its text without the `syncs=N` field, and N.
fn split_syncs(line: &str) -> (String, Option<u64>) {
    let mut syncs = None;
    let rest: Vec<&str> = line
        .split(' ')
        .filter(|f| match f.strip_prefix("syncs=") {
            Some(n) => {
                syncs = n.parse().ok();
                false
            }
            None => true,
        })
        .collect();
    (rest.join(" "), syncs)
}

#[test]
fn hadoop_reads_every_format_flumen_writes() {
    use SeqCompression::{Block, Record};
    use WriteFormat::{Text, Writable};
    let dir = tempfile::TempDir::new().expect("temp dir");
    // ~3,000 small events (~300 KB of records) cross several 100 KB sync intervals; ~12,000
    // (~1.2 MB plus the 1 MiB body) fill several 1 MB compression blocks.
    let cases = vec![
        Case::new(
            "seq_none_writable",
            seq(Writable, None, Block),
            events(1, 3000, false),
            500,
        ),
        Case::new(
            "seq_none_text",
            seq(Text, None, Block),
            events(2, 3000, false),
            1000,
        ),
        Case::new("seq_none_empty", seq(Writable, None, Block), Vec::new(), 1),
        Case::new(
            "seq_record_default",
            seq(Writable, Some(Codec::Default), Record),
            events(3, 3000, true),
            700,
        ),
        Case::new(
            "seq_record_gzip_text",
            seq(Text, Some(Codec::Gzip), Record),
            events(4, 500, true),
            100,
        ),
        Case::new(
            "seq_block_default",
            seq(Writable, Some(Codec::Default), Block),
            events(5, 12_000, false),
            5000,
        ),
        Case::new(
            "seq_block_default_text",
            seq(Text, Some(Codec::Default), Block),
            events(6, 12_000, true),
            1,
        ),
        Case::new(
            "seq_block_deflate",
            seq(Writable, Some(Codec::Deflate), Block),
            events(7, 3000, true),
            1000,
        ),
        Case::new(
            "seq_block_gzip",
            seq(Writable, Some(Codec::Gzip), Block),
            events(8, 12_000, true),
            4000,
        ),
        Case::new(
            "seq_block_empty",
            seq(Writable, Some(Codec::Default), Block),
            Vec::new(),
            1,
        ),
        Case::new(
            "seq_record_bzip2",
            seq(Writable, Some(Codec::Bzip2), Record),
            events(20, 1500, true),
            500,
        ),
        Case::new(
            "seq_block_bzip2",
            seq(Writable, Some(Codec::Bzip2), Block),
            events(21, 12_000, true),
            4000,
        ),
        Case::new(
            "seq_block_bzip2_text_binary",
            seq(Text, Some(Codec::Bzip2), Block),
            events(22, 3000, false),
            1000,
        ),
        Case::new(
            "seq_record_snappy",
            seq(Writable, Some(Codec::Snappy), Record),
            events(23, 3000, false),
            700,
        ),
        Case::new(
            "seq_record_snappy_text",
            seq(Text, Some(Codec::Snappy), Record),
            events(24, 500, true),
            100,
        ),
        Case::new(
            "seq_block_snappy",
            seq(Writable, Some(Codec::Snappy), Block),
            events(25, 12_000, false),
            5000,
        ),
        Case::new(
            "seq_block_snappy_text",
            seq(Text, Some(Codec::Snappy), Block),
            events(26, 12_000, true),
            3000,
        ),
        Case::new(
            "seq_block_snappy_empty",
            seq(Writable, Some(Codec::Snappy), Block),
            Vec::new(),
            1,
        ),
        Case::new("data_stream", stream(None), events(9, 3000, false), 100),
        Case::new(
            "stream_gzip",
            stream(Some(Codec::Gzip)),
            events(10, 3000, true),
            250,
        ),
        Case::new(
            "stream_gzip_one_member",
            stream(Some(Codec::Gzip)),
            events(11, 100, true),
            1000,
        ),
        Case::new(
            "stream_default",
            stream(Some(Codec::Default)),
            events(12, 3000, true),
            250,
        ),
        Case::new(
            "stream_deflate",
            stream(Some(Codec::Deflate)),
            events(13, 50, false),
            7,
        ),
        Case::new(
            "stream_bzip2",
            stream(Some(Codec::Bzip2)),
            events(27, 3000, true),
            250,
        ),
        Case::new(
            "stream_bzip2_binary",
            stream(Some(Codec::Bzip2)),
            events(28, 50, false),
            7,
        ),
        Case::new(
            "stream_snappy",
            stream(Some(Codec::Snappy)),
            events(29, 3000, true),
            250,
        ),
        Case::new(
            "stream_snappy_binary",
            stream(Some(Codec::Snappy)),
            events(30, 50, false),
            7,
        ),
        Case::new(
            "stream_bzip2_empty",
            stream(Some(Codec::Bzip2)),
            Vec::new(),
            1,
        ),
        Case::new(
            "stream_snappy_empty",
            stream(Some(Codec::Snappy)),
            Vec::new(),
            1,
        ),
        Case::new(
            "stream_gzip_empty",
            stream(Some(Codec::Gzip)),
            Vec::new(),
            1,
        ),
        Case::new(
            "stream_default_empty",
            stream(Some(Codec::Default)),
            Vec::new(),
            1,
        ),
    ];
    let paths: Vec<PathBuf> = cases.iter().map(|c| c.write(dir.path())).collect();
    let args: Vec<String> = cases.iter().zip(&paths).map(|(c, p)| c.arg(p)).collect();
    let arg_refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run_java("flumen.test.SeqCheck", &arg_refs);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "SeqCheck failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("OK ") || l.starts_with("ERR "))
        .collect();
    assert_eq!(lines.len(), cases.len(), "one line per file:\n{stdout}");
    for ((case, path), line) in cases.iter().zip(&paths).zip(lines) {
        let (seen, syncs) = split_syncs(line);
        assert_eq!(seen, case.expected(path), "{}", case.name);
        if case.spec.file_type == FileType::SequenceFile && case.events.len() > 1000 {
            // Hadoop saw sync markers inside the file, not only the header's.
            assert!(syncs.unwrap_or(0) >= 2, "{}: {line}", case.name);
        }
    }
}

/// Hadoop's `FsShell -text` (`hdfs dfs -text`) decodes the example record of the SequenceFile spec (timestamp 1700000000000, body "hello").
#[test]
fn fs_shell_text_prints_the_protocols_example() {
    let dir = tempfile::TempDir::new().expect("temp dir");
    let mut e = Event::new(&b"hello"[..]);
    e.set_header("timestamp", "1700000000000");
    let mut paths = Vec::new();
    for (name, write_format, codec) in [
        ("bytes.seq", WriteFormat::Writable, None),
        ("text.seq", WriteFormat::Text, Some(Codec::Default)),
    ] {
        let spec = seq(write_format, codec, SeqCompression::Block);
        let mut enc = spec.encoder();
        let mut file = Vec::new();
        enc.begin(&mut file);
        enc.append(&e, 0, &mut file).expect("append");
        enc.flush(&mut file).expect("flush");
        enc.finish(&mut file).expect("finish");
        let path = dir.path().join(name);
        std::fs::write(&path, &file).expect("write");
        paths.push(format!("file://{}", path.display()));
    }
    // FsShell refuses to start without a core-site.xml on its classpath, even for file://
    // paths; a minimal one naming the local file system serves.
    let conf_dir = dir.path().join("conf");
    std::fs::create_dir(&conf_dir).expect("create conf dir");
    std::fs::write(
        conf_dir.join("core-site.xml"),
        "<configuration><property><name>fs.defaultFS</name><value>file:///</value>\
         </property></configuration>\n",
    )
    .expect("write core-site.xml");
    let out = Command::new("java")
        .args(["-Xmx512m", "-XX:+UseSerialGC", "-cp"])
        .arg(format!("{}:{}", conf_dir.display(), java_classpath()))
        .args(["org.apache.hadoop.fs.FsShell", "-text"])
        .args(&paths)
        .output()
        .expect("run java");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "FsShell -text failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        stdout,
        "1700000000000\t68 65 6c 6c 6f\n1700000000000\thello\n"
    );
}
