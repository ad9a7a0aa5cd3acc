//! The `file_roll` sink (Flume's RollingFileSink): writes events into files in
//! `sink.directory` through the serializer `sink.serializer` names (TEXT, each body followed
//! by a newline, by default; see [`super::serializer`]), flushed at the end of every batch.
//!
//! Files are named as Flume's default path manager names them:
//! `<prefix><startTimeMillis>-<counter>[.<extension>]`, where the time is when the sink
//! started and the counter counts files from 1. A new file is started when `rollInterval`
//! seconds have passed since the current one was opened (0 = never); the check is made when
//! a batch arrives, so an idle sink keeps its file and no empty files are made. A name that
//! already exists is never overwritten (the counter moves on).
//!
//! Durability: every batch is written, flushed and fdatasynced (and a new file's directory
//! entry fsynced) before [`Sink::process`] returns, and the runner commits the take only
//! then, so events of a committed take are on disk in the output. A failed write truncates
//! the file back to its last synced length and returns the error, so a retried batch is not
//! written twice.
//!
//! Failures say whether a retry can help ([`classify`]): a full disk or quota (ENOSPC,
//! EDQUOT) passes once space is freed, so it is retried with backoff; permission denied
//! (EACCES), a read-only filesystem (EROFS), a path component that is a file (ENOTDIR) or a
//! `sink.directory` that was removed (the sink makes it only at start, as Flume's) need an
//! operator, so the runner retries them slowly and reports them at ERROR once.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::error::io_retry;
use super::serializer::{self, Serializer, SerializerSpec};
use super::{Retry, Sink, SinkCause, SinkError, SinkSpec, SinkType};
use crate::config::{ConfigError, Keys, Registered, WarningKind};
use crate::event::Event;

/// `file_roll` / Flume's RollingFileSink.
pub const TYPE: SinkType = Registered {
    alias: "file_roll",
    class: Some("org.apache.flume.sink.RollingFileSink"),
    parse,
    minimal: &[("sink.directory", "/tmp/flumen-out")],
};

/// The file_roll sink's keys (docs/CONFIG.md, `file_roll`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileRollConfig {
    /// `sink.directory` (required).
    pub directory: PathBuf,
    /// `sink.rollInterval` (default 30 s; 0 = never roll).
    pub roll_interval: Duration,
    /// `sink.pathManager.prefix` (default empty).
    pub prefix: String,
    /// `sink.pathManager.extension` (default empty).
    pub extension: String,
    /// `sink.batchSize`, or `batchSize` (default 100).
    pub batch_size: usize,
    /// The key the batch size was read from, for messages.
    pub batch_key: &'static str,
    /// `sink.serializer` and `sink.serializer.*` (default TEXT).
    pub serializer: SerializerSpec,
}

impl FileRollConfig {
    /// Writing into `directory` with every other key at its default.
    pub fn new(directory: &Path) -> FileRollConfig {
        FileRollConfig {
            directory: directory.to_path_buf(),
            roll_interval: Duration::from_secs(30),
            prefix: String::new(),
            extension: String::new(),
            batch_size: 100,
            batch_key: "sink.batchSize",
            serializer: SerializerSpec::default(),
        }
    }
}

fn parse(keys: &mut Keys<'_>) -> Result<Box<dyn SinkSpec>, ConfigError> {
    let directory = keys.required("sink.directory", "the directory the sink writes files into")?;
    let d = FileRollConfig::new(Path::new(&directory.value));
    let roll_interval = keys.secs(
        "sink.rollInterval",
        d.roll_interval,
        0,
        "seconds (0 = never roll)",
    )?;
    if let Some(v) = keys.get("sink.pathManager") {
        if v.value.eq_ignore_ascii_case("rolltime") {
            return Err(keys.unsupported(
                "sink.pathManager",
                v.line,
                "the ROLLTIME path manager",
                "Remove the key to use DEFAULT (prefix + start time + counter + extension)",
            ));
        }
        if !v.value.eq_ignore_ascii_case("default") {
            return Err(keys.bad("sink.pathManager", &v, "DEFAULT"));
        }
    }
    let prefix = keys.text("sink.pathManager.prefix", &d.prefix);
    let extension = keys.text("sink.pathManager.extension", &d.extension);
    // Flume reads `sink.batchSize`; we also take `batchSize` like the other sinks.
    let batch_key = match (keys.has("sink.batchSize"), keys.has("batchSize")) {
        (Some(flume_line), Some(line)) => {
            keys.get("batchSize");
            keys.warn(
                line,
                "batchSize",
                WarningKind::IgnoredKey {
                    reason: format!("`sink.batchSize` (line {flume_line}) decides"),
                },
            );
            "sink.batchSize"
        }
        (None, Some(_)) => "batchSize",
        _ => "sink.batchSize",
    };
    keys.know("sink.batchSize");
    keys.know("batchSize");
    let batch_size = keys.size(batch_key, d.batch_size, 1, "events")?;
    let serializer = serializer::parse(keys, &serializer::FILE_ROLL_KEYS)?;
    Ok(Box::new(FileRollConfig {
        roll_interval,
        prefix,
        extension,
        batch_size,
        batch_key,
        serializer,
        ..d
    }))
}

impl SinkSpec for FileRollConfig {
    fn batch_size(&self) -> Option<(usize, &'static str)> {
        Some((self.batch_size, self.batch_key))
    }

    fn build(&self, name: &str) -> Result<Box<dyn Sink>, SinkError> {
        Ok(Box::new(
            FileRollSink::new(
                name,
                &self.directory,
                self.roll_interval,
                &self.prefix,
                &self.extension,
            )?
            .with_serializer(self.serializer),
        ))
    }
}

/// The file being written.
struct Current {
    file: File,
    path: PathBuf,
    opened: Instant,
    /// Bytes known to be synced.
    len: u64,
    /// This file's serializer; its opening bytes go out with the first batch.
    serializer: Box<dyn Serializer>,
}

/// See the module docs.
pub struct FileRollSink {
    name: String,
    directory: PathBuf,
    roll_interval: Duration,
    prefix: String,
    extension: String,
    start_millis: u128,
    counter: u64,
    current: Option<Current>,
    buf: Vec<u8>,
    serializer: SerializerSpec,
}

impl FileRollSink {
    /// Creates `directory` if needed.
    pub fn new(
        name: &str,
        directory: &Path,
        roll_interval: Duration,
        prefix: &str,
        extension: &str,
    ) -> Result<FileRollSink, SinkError> {
        std::fs::create_dir_all(directory).map_err(|e| {
            SinkError::new(
                name,
                format!("cannot create directory {}: {e}", directory.display()),
            )
        })?;
        let start_millis = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        Ok(FileRollSink {
            name: name.to_string(),
            directory: directory.to_path_buf(),
            roll_interval,
            prefix: prefix.to_string(),
            extension: extension.to_string(),
            start_millis,
            counter: 0,
            current: None,
            buf: Vec::new(),
            serializer: SerializerSpec::default(),
        })
    }

    /// Writes with `spec` instead of TEXT.
    pub fn with_serializer(mut self, spec: SerializerSpec) -> FileRollSink {
        self.serializer = spec;
        self
    }

    fn err(&self, op: &'static str, path: &Path, source: std::io::Error) -> SinkError {
        SinkError::with_retry(
            &self.name,
            classify(&source),
            SinkCause::File {
                op,
                path: path.to_path_buf(),
                source,
            },
        )
    }

    /// Opens the next file (create-new; skips names that exist) and fsyncs the directory.
    fn open_next(&mut self) -> Result<Current, SinkError> {
        loop {
            self.counter += 1;
            let ext = if self.extension.is_empty() {
                String::new()
            } else {
                format!(".{}", self.extension)
            };
            let path = self.directory.join(format!(
                "{}{}-{}{ext}",
                self.prefix, self.start_millis, self.counter
            ));
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(file) => {
                    File::open(&self.directory)
                        .and_then(|d| d.sync_all())
                        .map_err(|e| self.err("fsync of directory", &self.directory, e))?;
                    tracing::info!(sink = %self.name, "sink `{}` (file_roll) opened {}", self.name, path.display());
                    return Ok(Current {
                        file,
                        path,
                        opened: Instant::now(),
                        len: 0,
                        serializer: self.serializer.build(),
                    });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(self.err("cannot create", &path, e)),
            }
        }
    }

    /// Ends the current file with its serializer's closing bytes (nothing for the
    /// serializers here, which flush every batch) and forgets it.
    fn close_current(&mut self) {
        if let Some(mut cur) = self.current.take() {
            self.buf.clear();
            let closing = cur.serializer.finish(&mut self.buf);
            if closing.is_ok() && !self.buf.is_empty() {
                // Only reachable by a serializer that buffers past a flush (none here does):
                // its closing bytes hold no event, so a failure loses none.
                if let Err(e) = cur
                    .file
                    .write_all(&self.buf)
                    .and_then(|()| cur.file.sync_data())
                {
                    tracing::warn!(sink = %self.name, "sink `{}` (file_roll): writing the closing bytes of {}: {e}", self.name, cur.path.display());
                }
            }
            tracing::info!(sink = %self.name, "sink `{}` (file_roll) closed {}", self.name, cur.path.display());
        }
    }
}

/// Whether retrying after the I/O error `e` can help without anyone acting: as
/// [`io_retry`], except that a missing directory stays missing (the sink makes
/// `sink.directory` only at start, as Flume's does), so only an operator can bring it back.
pub fn classify(e: &std::io::Error) -> Retry {
    match e.kind() {
        std::io::ErrorKind::NotFound => Retry::Permanent,
        _ => io_retry(e),
    }
}

impl Sink for FileRollSink {
    fn process(&mut self, events: &[Event]) -> Result<(), SinkError> {
        let roll = self.current.as_ref().is_some_and(|c| {
            !self.roll_interval.is_zero() && c.opened.elapsed() >= self.roll_interval
        });
        if roll {
            self.close_current();
        }
        let mut cur = match self.current.take() {
            Some(c) => c,
            None => self.open_next()?,
        };
        self.buf.clear();
        if cur.len == 0 {
            // A file's opening bytes (the Avro header) go out with its first batch and are
            // written again if that batch fails, since the failure cuts the file back to 0.
            cur.serializer.begin(&mut self.buf);
        }
        let encoded = events
            .iter()
            .try_for_each(|e| cur.serializer.append(e, &mut self.buf))
            .and_then(|()| cur.serializer.flush(&mut self.buf));
        if let Err(e) = encoded {
            cur.serializer.discard();
            // Only an in-memory compressor fails here; the retry encodes the batch afresh.
            let err = SinkError::with_retry(
                &self.name,
                Retry::Retryable,
                SinkCause::Other(format!("encoding a batch for {}: {e}", cur.path.display())),
            );
            self.current = Some(cur);
            return Err(err);
        }
        let written = cur
            .file
            .write_all(&self.buf)
            .and_then(|()| cur.file.flush())
            .and_then(|()| cur.file.sync_data());
        match written {
            Ok(()) => {
                cur.len += self.buf.len() as u64;
                self.current = Some(cur);
                Ok(())
            }
            Err(e) => {
                cur.serializer.discard();
                let err = self.err("writing", &cur.path, e);
                // Undo a partial write so the retried batch appears once; if even that fails,
                // start a new file next time rather than append after garbage.
                if cur.file.set_len(cur.len).is_ok() {
                    use std::io::Seek;
                    if cur.file.seek(std::io::SeekFrom::Start(cur.len)).is_ok() {
                        self.current = Some(cur);
                    }
                }
                Err(err)
            }
        }
    }

    fn stop(&mut self) -> Result<(), SinkError> {
        self.close_current();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(dir: &Path) -> Vec<PathBuf> {
        let mut v: Vec<_> = std::fs::read_dir(dir)
            .expect("read_dir")
            .map(|e| e.expect("entry").path())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn writes_bodies_one_per_line_with_flume_names() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("out");
        let mut s = FileRollSink::new("k1", &out, Duration::ZERO, "pre-", "txt").expect("new");
        s.process(&[Event::new("a"), Event::new("b")])
            .expect("process");
        s.process(&[Event::new("c")]).expect("process");
        s.stop().expect("stop");
        let f = files(&out);
        assert_eq!(f.len(), 1, "{f:?}");
        let name = f[0].file_name().and_then(|n| n.to_str()).expect("name");
        assert!(
            name.starts_with("pre-") && name.ends_with("-1.txt"),
            "{name}"
        );
        assert_eq!(std::fs::read_to_string(&f[0]).expect("read"), "a\nb\nc\n");
    }

    #[test]
    fn writes_through_the_configured_serializer_and_each_file_is_complete() {
        use crate::event::Headers;
        use crate::sink::serializer::avro_event::tests::read_container;
        use crate::sink::serializer::{AvroCodec, AvroEventConfig};
        let dir = tempfile::tempdir().expect("tempdir");
        let mut h = Headers::new();
        h.insert("host".into(), "web1".into());
        let e = Event::with_headers(h, "body");
        let mut s = FileRollSink::new("k1", dir.path(), Duration::ZERO, "", "")
            .expect("new")
            .with_serializer(SerializerSpec::AvroEvent(AvroEventConfig {
                codec: AvroCodec::Deflate,
                ..AvroEventConfig::default()
            }));
        s.process(&[e.clone(), Event::new("b")]).expect("process");
        let f = files(dir.path());
        let (codec, events) = read_container(&std::fs::read(&f[0]).expect("read"));
        assert_eq!(codec, "deflate");
        assert_eq!(
            events,
            [e.clone(), Event::new("b")],
            "readable after a batch"
        );
        s.process(&[Event::new("c")]).expect("process");
        s.stop().expect("stop");
        let (_, events) = read_container(&std::fs::read(&f[0]).expect("read"));
        assert_eq!(events.len(), 3);

        let text = tempfile::tempdir().expect("tempdir");
        let mut s = FileRollSink::new("k1", text.path(), Duration::ZERO, "", "")
            .expect("new")
            .with_serializer(SerializerSpec::HeaderAndText {
                append_newline: true,
            });
        s.process(&[e]).expect("process");
        s.stop().expect("stop");
        let f = files(text.path());
        assert_eq!(
            std::fs::read_to_string(&f[0]).expect("read"),
            "{host=web1} body\n"
        );
    }

    #[test]
    fn a_full_disk_is_retried_and_access_or_path_problems_are_permanent() {
        use rustix::io::Errno;
        let os = |errno: Errno| std::io::Error::from_raw_os_error(errno.raw_os_error());
        for errno in [Errno::NOSPC, Errno::DQUOT] {
            assert_eq!(classify(&os(errno)), Retry::Retryable, "{errno:?}");
        }
        for errno in [Errno::ACCESS, Errno::ROFS, Errno::NOTDIR, Errno::NOENT] {
            assert_eq!(classify(&os(errno)), Retry::Permanent, "{errno:?}");
        }
    }

    /// `sink.directory` replaced by a regular file (ENOTDIR, which root meets too): every
    /// batch fails permanently with the same cause, and the sink writes again once the
    /// directory is back.
    #[test]
    fn a_directory_replaced_by_a_file_fails_permanently_until_it_is_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("out");
        let mut s = FileRollSink::new("k1", &out, Duration::ZERO, "", "").expect("new");
        std::fs::remove_dir(&out).expect("rmdir");
        std::fs::write(&out, "not a directory").expect("write");
        let e = s.process(&[Event::new("a")]).expect_err("ENOTDIR");
        assert_eq!(e.retry(), Retry::Permanent, "{e}");
        let again = s.process(&[Event::new("a")]).expect_err("still ENOTDIR");
        assert_eq!(e.cause_key(), again.cause_key(), "{e} / {again}");
        let msg = e.to_string();
        assert!(
            msg.starts_with("sink `k1`: cannot create ") && msg.contains("regular file"),
            "{msg}"
        );
        std::fs::remove_file(&out).expect("rm");
        std::fs::create_dir(&out).expect("mkdir");
        s.process(&[Event::new("a")]).expect("process");
        s.stop().expect("stop");
        let f = files(&out);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(std::fs::read_to_string(&f[0]).expect("read"), "a\n");
    }

    #[test]
    fn rolls_after_the_interval_and_never_overwrites() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut s =
            FileRollSink::new("k1", dir.path(), Duration::from_millis(1), "", "").expect("new");
        // A file with the name the sink would pick first is skipped, not overwritten.
        let taken = dir.path().join(format!("{}-1", s.start_millis));
        std::fs::write(&taken, "old\n").expect("write");
        s.process(&[Event::new("1")]).expect("process");
        // The 1 ms roll interval must have passed before the next batch: wait for exactly that.
        let since = std::time::Instant::now();
        while since.elapsed() <= Duration::from_millis(1) {
            std::hint::spin_loop();
        }
        s.process(&[Event::new("2")]).expect("process");
        let f = files(dir.path());
        assert_eq!(f.len(), 3, "{f:?}");
        assert_eq!(std::fs::read_to_string(&taken).expect("read"), "old\n");
        let all: Vec<String> = f
            .iter()
            .map(|p| std::fs::read_to_string(p).expect("read"))
            .collect();
        assert!(all.contains(&"1\n".to_string()) && all.contains(&"2\n".to_string()));
    }
}
