//! The HDFS sink (Flume's `hdfs` sink, HDFSEventSink): buckets events into files under a
//! templated path, writes them in Hadoop's formats (SequenceFile, DataStream,
//! CompressedStream), rolls and renames them, to HDFS through hdfs-native (no JVM) or to the
//! local filesystem (the embedded default).
//!
//! Data flow per batch ([`Sink::process`]): every event's bucket (directory and file name
//! prefix, rendered from `hdfs.path` and `hdfs.filePrefix`) is rendered first, so an event
//! that cannot be placed (a missing `timestamp` header) fails the batch before any byte is
//! written. Each event is then encoded into its bucket's open file (opened under its in-use
//! name, `<inUsePrefix><prefix>.<counter><suffix><inUseSuffix>`; a file that reached
//! `rollCount` events or `rollSize` body bytes is closed and a new one opened first). Finally
//! every file the batch touched is flushed (pending compressed blocks, sync markers) and, with
//! `hdfs.sync = hsync` (the default), made durable; only then does `process` return `Ok` and
//! the runner commit the take. A committed take's events are therefore on the DataNodes (or
//! the local disk).
//!
//! Invariants:
//! - A file is renamed from its in-use name to its final name only after it was closed
//!   successfully, so downstream jobs never see a half-written file under a final name.
//! - Any failure while a batch is written abandons every file the batch touched: each is closed
//!   (or, if closing fails, remembered and lease-recovered later, every `hdfs.retryInterval`),
//!   cut back to its length at its last committed batch (bytes of the failed batch that reached
//!   it are truncated away; a file with no committed event is deleted) and renamed, and the
//!   error rolls the take back, so the batch is retried into new files and nothing is lost. A
//!   final name never holds a torn event. (Events of a batch that rolled a full file before it
//!   failed stay in that complete file: the retry duplicates them, at least once, as Flume.) A
//!   writer is never dropped with its lease held and forgotten.
//! - With `hdfs.sync = none` a batch's bytes are handed to the filesystem but not synced
//!   before the take commits: events written since a file's last close can be lost in a crash
//!   of the agent or the DataNode. That is the documented price of the option.
//! - Memory: at most about 1 MiB of encoded bytes is buffered per open file before it is
//!   written, and at most `hdfs.maxOpenFiles` files are open (the least recently used one is
//!   closed to make room).
//! - Header values can never move a write outside the configured base path: the path module
//!   escapes `/`, `..` and friends in substituted values, and every rendered directory is
//!   checked to lie under the template's static prefix.
//!
//! Failures say whether a retry can help ([`crate::sink::Retry`]): filesystem errors by
//! [`FsError::retry`] (a NameNode down, in safe mode or failing over, a broken DataNode
//! pipeline, a call timeout, a full disk or quota: retryable; permission denied, a path that
//! is a file, a read-only filesystem, failed authentication: permanent), and an event the
//! templates cannot place (no `timestamp` header without `hdfs.useLocalTimeStamp`, a
//! directory outside the base) is permanent, since it renders the same way on every retry.

mod config;
pub mod format;
pub mod fs;
pub mod path;

pub use config::{split_target, HdfsSinkConfig, SyncMode, Target, TYPE};

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use self::format::{Encoder, FormatError};
use self::fs::{FsError, HdfsFs, LocalFs, SinkFile, SinkFs};
use self::path::{HostNames, PathTemplate, RenderContext};
use super::{Retry, Sink, SinkCause, SinkError};
use crate::event::Event;
use crate::metrics::{ComponentCounters, Counter};

/// The file a bucket is writing.
struct OpenFile {
    file: Box<dyn SinkFile>,
    encoder: Box<dyn Encoder>,
    in_use: String,
    target: String,
    opened: Instant,
    last_write: Instant,
    events: u64,
    body_bytes: u64,
    /// Encoded bytes not yet handed to the file.
    buf: Vec<u8>,
    /// Bytes handed to `file` so far.
    handed: u64,
    /// `handed` at the end of the last batch that succeeded: the file up to here holds
    /// committed events only, and anything after it belongs to a batch that failed or is
    /// still being written.
    committed: u64,
}

impl OpenFile {
    /// Hands the buffered bytes to the file; counted even if the write fails, since part of
    /// them may have reached it.
    fn write_buf(&mut self) -> Result<(), FsError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let bytes = Bytes::from(std::mem::take(&mut self.buf));
        self.handed += bytes.len() as u64;
        self.file.write(bytes)
    }

    /// What must go before the file gets its final name if the batch now being written
    /// fails (see [`Unclosed::trim_to`]): the bytes of that batch, retried into another file;
    /// or, with no committed event in it, the whole file (an empty or header-only file under
    /// a final name would only trip up readers).
    fn uncommitted_tail(&self) -> Option<u64> {
        (self.committed == 0 || self.handed > self.committed).then_some(self.committed)
    }
}

/// One directory + file-name prefix (Flume's BucketWriter).
struct Bucket {
    dir: String,
    name: String,
    file: Option<OpenFile>,
    /// For least-recently-used eviction.
    last_used: u64,
    /// The batch that last appended to this bucket.
    touched_in: u64,
}

/// A file whose close failed (or whose failed batch's bytes could not be cut off yet): its
/// lease is recovered, it is cut to `trim_to`, and it is renamed later.
struct Unclosed {
    in_use: String,
    target: String,
    /// The length holding only committed events, when bytes of a failed batch may follow
    /// it; 0 means no committed event at all, and the file is deleted instead of renamed.
    trim_to: Option<u64>,
    tries: u32,
    next_try: Instant,
}

/// Encoded bytes buffered per file before they are written (bounds memory per open file).
const WRITE_CHUNK: usize = 1 << 20;
/// How often time-based rolling is checked.
const TICK_EVERY: Duration = Duration::from_millis(200);
/// How soon to look again at a lease recovery HDFS has started but not finished.
const LEASE_POLL: Duration = Duration::from_secs(1);
/// Attempts at a fresh name when a file name is taken.
const NAME_ATTEMPTS: u32 = 100;

/// See the module docs.
pub struct HdfsSink {
    name: String,
    cfg: HdfsSinkConfig,
    fs: Box<dyn SinkFs>,
    dir_template: PathTemplate,
    prefix_template: PathTemplate,
    /// The part of the path before any escape: every rendered directory lies under it.
    base: String,
    suffix: String,
    ctx: RenderContext,
    buckets: HashMap<String, Bucket>,
    unclosed: Vec<Unclosed>,
    /// File counter: starts at the sink's start time in ms (as Flume's), +1 per file.
    counter: u64,
    batch_no: u64,
    use_clock: u64,
    next_tick: Instant,
    /// Scratch for rendering, reused across events.
    scratch_dir: String,
    scratch_name: String,
    scratch_key: String,
    keys: Vec<String>,
    /// Files opened (ConnectionCreatedCount), closed (ConnectionClosedCount) and failed to
    /// open or close (ConnectionFailedCount), as Flume's HDFS sink counts them.
    counters: Option<Arc<ComponentCounters>>,
    /// Neither `hdfs.path` nor `hdfs.filePrefix` has an escape.
    static_templates: bool,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl HdfsSink {
    /// Builds the sink; connects lazily (hdfs-native connects on the first call).
    pub fn new(name: &str, cfg: &HdfsSinkConfig) -> Result<HdfsSink, SinkError> {
        let err = |m: String| SinkError::new(name, m);
        let target = split_target(&cfg.path).map_err(|m| err(format!("hdfs.path {m}")))?;
        let dir_template = PathTemplate::parse(&target.path)
            .map_err(|e| err(format!("hdfs.path `{}`: {e}", cfg.path)))?;
        let prefix_template = PathTemplate::parse(&cfg.file_prefix)
            .map_err(|e| err(format!("hdfs.filePrefix `{}`: {e}", cfg.file_prefix)))?;
        cfg.format
            .validate()
            .map_err(|e| err(format!("hdfs.fileType/hdfs.codeC: {e}")))?;
        let tz = match &cfg.time_zone {
            Some(z) => path::parse_time_zone(z).map_err(|e| err(format!("hdfs.timeZone: {e}")))?,
            None => path::local_time_zone(),
        };
        let call_timeout = Duration::from_millis(cfg.call_timeout_ms.max(1));
        let fs: Box<dyn SinkFs> = match &target.hdfs_url {
            Some(url) => Box::new(
                HdfsFs::connect(url, call_timeout, &cfg.hadoop_config)
                    .map_err(|e| err(e.to_string()))?,
            ),
            None => {
                // In Flume a plain path means the default filesystem; here it means the local
                // one (the embedded default relies on that). Say so where it may surprise.
                if !cfg.path.starts_with("file://") && std::env::var_os("HADOOP_CONF_DIR").is_some()
                {
                    tracing::warn!(
                        sink = %name,
                        "sink `{name}`: hdfs.path `{}` is a local path (flumen writes plain paths \
                         to the local filesystem, Flume to fs.defaultFS); HADOOP_CONF_DIR is set: \
                         write hdfs://{}{} to use its default filesystem",
                        cfg.path,
                        if cfg.path.starts_with('/') { "" } else { "/" },
                        cfg.path
                    );
                }
                Box::new(LocalFs)
            }
        };
        let suffix = if cfg.file_suffix.is_empty() {
            cfg.format.default_extension().to_string()
        } else {
            cfg.file_suffix.clone()
        };
        let base = dir_template.static_prefix().to_string();
        let host = if dir_template.needs_host_names() || prefix_template.needs_host_names() {
            HostNames::detect()
        } else {
            HostNames::default()
        };
        let ctx = RenderContext::new(tz, cfg.round, cfg.use_local_timestamp, host);
        let static_templates = dir_template.is_static() && prefix_template.is_static();
        Ok(HdfsSink {
            name: name.to_string(),
            cfg: cfg.clone(),
            fs,
            dir_template,
            prefix_template,
            base,
            suffix,
            ctx,
            buckets: HashMap::new(),
            unclosed: Vec::new(),
            counter: u64::try_from(now_ms()).unwrap_or(0),
            batch_no: 0,
            use_clock: 0,
            next_tick: Instant::now() + TICK_EVERY,
            scratch_dir: String::new(),
            scratch_name: String::new(),
            scratch_key: String::new(),
            keys: Vec::new(),
            counters: None,
            static_templates,
        })
    }

    fn count(&self, c: Counter) {
        if let Some(counters) = &self.counters {
            counters.inc(c);
        }
    }

    fn err(&self, message: impl Into<String>) -> SinkError {
        SinkError::new(&self.name, message)
    }

    fn fs_err(&self, e: FsError) -> SinkError {
        SinkError::fs(&self.name, e)
    }

    /// An event that cannot be placed: the same headers render the same way on every retry,
    /// so only a fixed producer or configuration helps.
    fn render_err(&self, key: &'static str, template: &str, source: path::PathError) -> SinkError {
        SinkError::with_retry(
            &self.name,
            Retry::Permanent,
            SinkCause::Render {
                key,
                template: template.to_string(),
                source,
            },
        )
    }

    /// A format failure while `what` (encoding an event for, flushing, finishing) `file`.
    fn format_err(&self, what: &'static str, file: &str, source: FormatError) -> SinkError {
        SinkError::with_retry(
            &self.name,
            source.retry(),
            SinkCause::Format {
                what,
                file: file.to_string(),
                source,
            },
        )
    }

    /// Renders `event`'s directory and file-name prefix into the scratch strings and its
    /// bucket key into `scratch_key`.
    fn render(&mut self, event: &Event) -> Result<(), SinkError> {
        // Templates without escapes render the same for every event: once is enough.
        if self.static_templates && !self.scratch_key.is_empty() {
            return Ok(());
        }
        self.scratch_dir.clear();
        self.scratch_name.clear();
        let headers = event.headers();
        if let Err(e) = self
            .dir_template
            .render(headers, &mut self.ctx, &mut self.scratch_dir)
        {
            return Err(self.render_err("hdfs.path", &self.cfg.path, e));
        }
        if let Err(e) = self
            .prefix_template
            .render(headers, &mut self.ctx, &mut self.scratch_name)
        {
            return Err(self.render_err("hdfs.filePrefix", &self.cfg.file_prefix, e));
        }
        if let Err(e) = path::ensure_within(&self.scratch_dir, &self.base) {
            return Err(self.render_err("hdfs.path", &self.cfg.path, e));
        }
        if self.scratch_name.contains('/') {
            return Err(SinkError::with_retry(
                &self.name,
                Retry::Permanent,
                SinkCause::FileName {
                    template: self.cfg.file_prefix.clone(),
                    rendered: self.scratch_name.clone(),
                },
            ));
        }
        self.scratch_key.clear();
        self.scratch_key.push_str(&self.scratch_dir);
        self.scratch_key.push('\0');
        self.scratch_key.push_str(&self.scratch_name);
        Ok(())
    }

    /// Opens a new file for `bucket`.
    fn open(&mut self, key: &str) -> Result<(), SinkError> {
        let (dir, name) = match self.buckets.get(key) {
            Some(b) => (b.dir.clone(), b.name.clone()),
            None => return Err(self.err(format!("internal: no bucket for {key:?}"))),
        };
        let dir = dir.trim_end_matches('/');
        let mut attempt = 0;
        let (file, in_use, target) = loop {
            self.counter += 1;
            let full = format!("{name}.{}{}", self.counter, self.suffix);
            let in_use = format!(
                "{dir}/{}{full}{}",
                self.cfg.in_use_prefix, self.cfg.in_use_suffix
            );
            let target = format!("{dir}/{full}");
            // A final name from an earlier run must not be reused either: the rename at
            // close would fail.
            let taken = in_use != target && self.fs.exists(&target).map_err(|e| self.fs_err(e))?;
            if !taken {
                match self.fs.create(&in_use) {
                    Ok(file) => break (file, in_use, target),
                    Err(FsError::AlreadyExists { .. }) => {}
                    Err(e) => {
                        self.count(Counter::ConnectionFailedCount);
                        return Err(self.fs_err(e));
                    }
                }
            }
            attempt += 1;
            if attempt >= NAME_ATTEMPTS {
                return Err(self.err(format!(
                    "no free file name in {dir} after {NAME_ATTEMPTS} attempts (last: {in_use})"
                )));
            }
        };
        tracing::info!(sink = %self.name, "sink `{}`: creating {in_use}", self.name);
        self.count(Counter::ConnectionCreatedCount);
        let mut encoder = self.cfg.format.encoder();
        let mut buf = Vec::with_capacity(64 * 1024);
        encoder.begin(&mut buf);
        let now = Instant::now();
        if let Some(b) = self.buckets.get_mut(key) {
            b.file = Some(OpenFile {
                file,
                encoder,
                in_use,
                target,
                opened: now,
                last_write: now,
                events: 0,
                body_bytes: 0,
                buf,
                handed: 0,
                committed: 0,
            });
        }
        Ok(())
    }

    /// Finishes, closes and renames `bucket`'s file.
    fn close_file(&mut self, key: &str) -> Result<(), SinkError> {
        let Some(mut f) = self.buckets.get_mut(key).and_then(|b| b.file.take()) else {
            return Ok(());
        };
        // Taken before the format's closing bytes: those belong to no batch.
        let trim_to = f.uncommitted_tail();
        let mut result = f
            .encoder
            .finish(&mut f.buf)
            .map_err(|e| self.format_err("finishing", &f.in_use, e));
        if result.is_ok() {
            result = f.write_buf().map_err(|e| self.fs_err(e));
        }
        if result.is_ok() {
            result = f.file.close().map_err(|e| self.fs_err(e));
        }
        match result {
            Ok(()) => {
                self.count(Counter::ConnectionClosedCount);
                match self.finish_closed(&f.in_use, &f.target, None, "") {
                    Ok(_) => Ok(()),
                    Err(e) => {
                        self.remember_unclosed(f.in_use, f.target, None);
                        Err(self.fs_err(e))
                    }
                }
            }
            Err(e) => {
                self.count(Counter::ConnectionFailedCount);
                self.remember_unclosed(f.in_use, f.target, trim_to);
                Err(e)
            }
        }
    }

    /// Gives a closed file its final name, first cutting off the bytes of a failed batch
    /// (`trim_to`, see [`Unclosed`]), or deletes it if it holds no committed event, and logs
    /// what it did (`how` leads the message: "recovered and " after a lease recovery).
    /// `Ok(false)` while HDFS is still cutting the file: finish it once it is closed again.
    fn finish_closed(
        &mut self,
        in_use: &str,
        target: &str,
        trim_to: Option<u64>,
        how: &str,
    ) -> Result<bool, FsError> {
        match trim_to {
            Some(0) => {
                self.fs.delete(in_use)?;
                tracing::info!(sink = %self.name, "sink `{}`: {how}deleted {in_use} (it held only a failed batch's events, which are retried)", self.name);
                return Ok(true);
            }
            Some(len) => {
                if !self.fs.truncate(in_use, len)? {
                    return Ok(false);
                }
                tracing::info!(sink = %self.name, "sink `{}`: cut {in_use} to {len} bytes, its committed events (the failed batch is retried)", self.name);
            }
            None => {}
        }
        if in_use != target {
            self.fs.rename(in_use, target)?;
        }
        tracing::info!(sink = %self.name, "sink `{}`: {how}closed {target}", self.name);
        Ok(true)
    }

    /// Looks at a file whose lease recovery or trim HDFS is still running again soon, without
    /// counting a failed try.
    fn poll_closing(&mut self, in_use: String, target: String) {
        tracing::info!(
            sink = %self.name,
            "sink `{}`: could not close {in_use} yet: HDFS is cutting it back to its committed \
             events; it is renamed to {target} once that is done",
            self.name
        );
        self.unclosed.push(Unclosed {
            in_use,
            target,
            trim_to: None,
            tries: 1,
            next_try: Instant::now() + LEASE_POLL,
        });
    }

    fn remember_unclosed(&mut self, in_use: String, target: String, trim_to: Option<u64>) {
        if self.cfg.close_tries == 1 {
            tracing::error!(
                sink = %self.name,
                "sink `{}`: could not close {in_use}; hdfs.closeTries = 1, so it keeps its \
                 in-use name (HDFS recovers its lease within the hour)",
                self.name
            );
            return;
        }
        tracing::warn!(
            sink = %self.name,
            "sink `{}`: could not close {in_use}; will recover its lease and rename it to \
             {target} every {}s (hdfs.retryInterval)",
            self.name,
            self.cfg.retry_interval_secs
        );
        self.unclosed.push(Unclosed {
            in_use,
            target,
            trim_to,
            tries: 1,
            next_try: Instant::now() + Duration::from_secs(self.cfg.retry_interval_secs),
        });
    }

    /// Closes files whose close failed earlier: recover the lease, then rename.
    fn retry_unclosed(&mut self, force: bool) {
        let now = Instant::now();
        let mut pending = std::mem::take(&mut self.unclosed);
        pending.retain_mut(|u| {
            if !force && u.next_try > now {
                return true;
            }
            let done = match self.fs.recover_lease(&u.in_use) {
                Ok(true) => {
                    match self.finish_closed(&u.in_use, &u.target, u.trim_to, "recovered and ") {
                        Ok(true) => true,
                        Ok(false) => {
                            // HDFS cuts the last block in the background; the file is closed again
                            // (recover_lease says so) once it is done.
                            u.trim_to = None;
                            u.next_try = now + LEASE_POLL;
                            return true;
                        }
                        Err(e) => {
                            tracing::warn!(sink = %self.name, "sink `{}`: {e}", self.name);
                            false
                        }
                    }
                }
                Ok(false) => {
                    // Recovery started but is not finished: look again soon, and do not
                    // count it as a failed try.
                    u.next_try = now + LEASE_POLL;
                    return true;
                }
                Err(e) => {
                    tracing::warn!(sink = %self.name, "sink `{}`: {e}", self.name);
                    false
                }
            };
            if done {
                return false;
            }
            u.tries += 1;
            u.next_try = now + Duration::from_secs(self.cfg.retry_interval_secs);
            if self.cfg.close_tries > 0 && u.tries >= self.cfg.close_tries {
                tracing::error!(
                    sink = %self.name,
                    "sink `{}`: giving up on closing {} after {} tries (hdfs.closeTries); its \
                     data was synced but it keeps its in-use name",
                    self.name,
                    u.in_use,
                    self.cfg.close_tries
                );
                return false;
            }
            true
        });
        pending.append(&mut self.unclosed);
        self.unclosed = pending;
    }

    /// Abandons every file the current batch touched (see the module docs).
    fn abandon_touched(&mut self) {
        let keys: Vec<String> = self
            .buckets
            .iter()
            .filter(|(_, b)| b.touched_in == self.batch_no && b.file.is_some())
            .map(|(k, _)| k.clone())
            .collect();
        for key in keys {
            let Some(mut f) = self.buckets.get_mut(&key).and_then(|b| b.file.take()) else {
                continue;
            };
            // The unwritten tail belongs to the failed batch, which will be retried; so do
            // any of its bytes already written, which are cut off before the rename.
            f.buf.clear();
            let trim_to = f.uncommitted_tail();
            match f.file.close() {
                Ok(()) => {
                    self.count(Counter::ConnectionClosedCount);
                    match self.finish_closed(&f.in_use, &f.target, trim_to, "") {
                        Ok(true) => {}
                        Ok(false) => self.poll_closing(f.in_use, f.target),
                        Err(e) => {
                            tracing::warn!(sink = %self.name, "sink `{}`: {e}", self.name);
                            self.remember_unclosed(f.in_use, f.target, trim_to);
                        }
                    }
                }
                Err(e) => {
                    self.count(Counter::ConnectionFailedCount);
                    tracing::warn!(sink = %self.name, "sink `{}`: {e}", self.name);
                    self.remember_unclosed(f.in_use, f.target, trim_to);
                }
            }
        }
    }

    /// Closes the least recently used bucket's file and forgets the bucket.
    fn evict_one(&mut self) -> Result<(), SinkError> {
        let Some(key) = self
            .buckets
            .iter()
            .filter(|(_, b)| b.touched_in != self.batch_no)
            .min_by_key(|(_, b)| b.last_used)
            .map(|(k, _)| k.clone())
        else {
            return Ok(());
        };
        let result = self.close_file(&key);
        self.buckets.remove(&key);
        result
    }

    fn write_batch(&mut self, events: &[Event], now: i64) -> Result<(), SinkError> {
        // Render everything first: a bad event fails the batch before any byte is written.
        self.keys.clear();
        for event in events {
            self.render(event)?;
            self.keys.push(self.scratch_key.clone());
            if !self.buckets.contains_key(&self.scratch_key) {
                if self.buckets.len() >= self.cfg.max_open_files.max(1) {
                    self.evict_one()?;
                }
                self.buckets.insert(
                    self.scratch_key.clone(),
                    Bucket {
                        dir: self.scratch_dir.clone(),
                        name: self.scratch_name.clone(),
                        file: None,
                        last_used: 0,
                        // Created for this batch: never the one evicted to make room in it.
                        touched_in: self.batch_no,
                    },
                );
            }
        }
        let keys = std::mem::take(&mut self.keys);
        let result = self.append_all(events, &keys, now);
        self.keys = keys;
        result?;
        self.sync_touched()
    }

    fn append_all(&mut self, events: &[Event], keys: &[String], now: i64) -> Result<(), SinkError> {
        for (event, key) in events.iter().zip(keys) {
            self.use_clock += 1;
            let roll = match self.buckets.get_mut(key.as_str()) {
                Some(b) => {
                    b.last_used = self.use_clock;
                    b.touched_in = self.batch_no;
                    match &b.file {
                        None => None,
                        Some(f) => Some(
                            (self.cfg.roll_count > 0 && f.events >= self.cfg.roll_count)
                                || (self.cfg.roll_size > 0 && f.body_bytes >= self.cfg.roll_size),
                        ),
                    }
                }
                None => return Err(self.err(format!("internal: no bucket for {key:?}"))),
            };
            match roll {
                None => self.open(key)?,
                Some(true) => {
                    self.close_file(key)?;
                    self.open(key)?;
                }
                Some(false) => {}
            }
            let Some(f) = self
                .buckets
                .get_mut(key.as_str())
                .and_then(|b| b.file.as_mut())
            else {
                return Err(self.err("internal: bucket without a file after open"));
            };
            if let Err(e) = f.encoder.append(event, now, &mut f.buf) {
                let in_use = f.in_use.clone();
                return Err(self.format_err("encoding an event for", &in_use, e));
            }
            f.events += 1;
            f.body_bytes += event.body().len() as u64;
            if f.buf.len() >= WRITE_CHUNK {
                if let Err(e) = f.write_buf() {
                    return Err(SinkError::fs(&self.name, e));
                }
            }
        }
        Ok(())
    }

    /// Flushes and (with `hdfs.sync = hsync`) syncs every file the batch touched, then
    /// closes those that reached a size or count limit.
    fn sync_touched(&mut self) -> Result<(), SinkError> {
        let batch = self.batch_no;
        let sync = self.cfg.sync == SyncMode::Hsync;
        let mut full = Vec::new();
        let mut failure = None;
        for (key, b) in self.buckets.iter_mut() {
            if b.touched_in != batch {
                continue;
            }
            let Some(f) = b.file.as_mut() else { continue };
            // For hdfs.idleTimeout a batch counts as one write, at its end.
            f.last_write = Instant::now();
            if let Err(e) = f.encoder.flush(&mut f.buf) {
                let retry = e.retry();
                let cause = SinkCause::Format {
                    what: "flushing",
                    file: f.in_use.clone(),
                    source: e,
                };
                failure = Some(SinkError::with_retry(&self.name, retry, cause));
                break;
            }
            if let Err(e) = f.write_buf() {
                failure = Some(SinkError::fs(&self.name, e));
                break;
            }
            if sync {
                if let Err(e) = f.file.sync() {
                    failure = Some(SinkError::fs(&self.name, e));
                    break;
                }
            }
            if (self.cfg.roll_count > 0 && f.events >= self.cfg.roll_count)
                || (self.cfg.roll_size > 0 && f.body_bytes >= self.cfg.roll_size)
            {
                full.push(key.clone());
            }
        }
        if let Some(e) = failure {
            return Err(e);
        }
        for key in full {
            self.close_file(&key)?;
        }
        Ok(())
    }

    /// Time-based rolling: `rollInterval` since open, `idleTimeout` since the last write.
    fn roll_by_time(&mut self) {
        let now = Instant::now();
        let interval = Duration::from_secs(self.cfg.roll_interval_secs);
        let idle = Duration::from_secs(self.cfg.idle_timeout_secs);
        let mut due = Vec::new();
        for (key, b) in &self.buckets {
            let Some(f) = &b.file else { continue };
            let by_interval = !interval.is_zero() && now.duration_since(f.opened) >= interval;
            let by_idle = !idle.is_zero() && now.duration_since(f.last_write) >= idle;
            if by_interval || by_idle {
                due.push((key.clone(), by_idle));
            }
        }
        for (key, by_idle) in due {
            if let Err(e) = self.close_file(&key) {
                tracing::error!(sink = %self.name, "{e}");
            }
            if by_idle {
                self.buckets.remove(&key);
            }
        }
    }
}

impl Sink for HdfsSink {
    fn attach_counters(&mut self, counters: Arc<ComponentCounters>) {
        self.counters = Some(counters);
    }

    fn process(&mut self, events: &[Event]) -> Result<(), SinkError> {
        self.batch_no += 1;
        let now = now_ms();
        self.ctx.now_ms = now;
        let result = self.write_batch(events, now);
        match &result {
            Ok(()) => {
                let batch = self.batch_no;
                for b in self.buckets.values_mut() {
                    if b.touched_in == batch {
                        if let Some(f) = b.file.as_mut() {
                            f.committed = f.handed;
                        }
                    }
                }
            }
            Err(_) => self.abandon_touched(),
        }
        result
    }

    fn tick(&mut self) {
        let now = Instant::now();
        if now < self.next_tick {
            return;
        }
        self.next_tick = now + TICK_EVERY;
        self.roll_by_time();
        if !self.unclosed.is_empty() {
            self.retry_unclosed(false);
        }
    }

    fn stop(&mut self) -> Result<(), SinkError> {
        let keys: Vec<String> = self.buckets.keys().cloned().collect();
        let mut first_err = None;
        for key in keys {
            if let Err(e) = self.close_file(&key) {
                tracing::error!(sink = %self.name, "{e}");
                first_err.get_or_insert(e);
            }
        }
        self.buckets.clear();
        if !self.unclosed.is_empty() {
            self.retry_unclosed(true);
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::path::Path;

    use super::format::{Codec, FileType};
    use super::*;
    use crate::event::Headers;

    fn local(dir: &Path, template: &str) -> HdfsSinkConfig {
        let mut cfg = HdfsSinkConfig::new(&format!("{}/{template}", dir.display()));
        cfg.format.file_type = FileType::DataStream;
        cfg.time_zone = Some("UTC".into());
        cfg.roll_size = 0;
        cfg.roll_count = 0;
        cfg.roll_interval_secs = 0;
        cfg
    }

    fn ev(body: &str, headers: &[(&str, &str)]) -> Event {
        let h: Headers = headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Event::with_headers(h, body.as_bytes().to_vec())
    }

    /// Every file under `dir`, relative, sorted.
    fn files(dir: &Path) -> Vec<String> {
        let mut out = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    out.push(p.strip_prefix(dir).unwrap().display().to_string());
                }
            }
        }
        out.sort();
        out
    }

    fn read_all(dir: &Path, names: &[String]) -> String {
        names
            .iter()
            .map(|n| std::fs::read_to_string(dir.join(n)).unwrap())
            .collect()
    }

    #[test]
    fn rolls_by_count_renames_closed_files_and_closes_the_rest_at_stop() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = local(dir.path(), "out");
        cfg.roll_count = 3;
        let mut sink = HdfsSink::new("k1", &cfg).unwrap();
        let events: Vec<Event> = (0..7).map(|i| ev(&format!("e{i}"), &[])).collect();
        sink.process(&events).unwrap();
        let before = files(dir.path());
        assert_eq!(before.len(), 3, "{before:?}");
        assert_eq!(
            before.iter().filter(|f| f.ends_with(".tmp")).count(),
            1,
            "only the file still below rollCount is in use: {before:?}"
        );
        sink.stop().unwrap();
        let after = files(dir.path());
        assert!(after
            .iter()
            .all(|f| f.starts_with("out/FlumeData.") && !f.ends_with(".tmp")));
        // Counters increase, so sorting by name is sorting by age.
        let text = read_all(dir.path(), &after);
        assert_eq!(text, "e0\ne1\ne2\ne3\ne4\ne5\ne6\n");
    }

    #[test]
    fn buckets_by_header_and_event_time_and_escapes_hostile_headers() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = local(dir.path(), "out/%{host}/%Y-%m-%d");
        let mut sink = HdfsSink::new("k1", &cfg).unwrap();
        let day1 = "1700000000000"; // 2023-11-14 UTC
        let day2 = "1700100000000"; // 2023-11-16 UTC
        sink.process(&[
            ev("a", &[("host", "web1"), ("timestamp", day1)]),
            ev("b", &[("host", "web2"), ("timestamp", day1)]),
            ev("c", &[("host", "web1"), ("timestamp", day2)]),
            ev("d", &[("host", "../../etc"), ("timestamp", day1)]),
        ])
        .unwrap();
        sink.stop().unwrap();
        let all = files(dir.path());
        let dirs: Vec<String> = all
            .iter()
            .map(|f| f.rsplit_once('/').unwrap().0.to_string())
            .collect();
        assert_eq!(
            dirs,
            [
                "out/..%2F..%2Fetc/2023-11-14",
                "out/web1/2023-11-14",
                "out/web1/2023-11-16",
                "out/web2/2023-11-14"
            ],
            "{all:?}"
        );
        assert!(!dir.path().join("etc").exists());
    }

    #[test]
    fn a_missing_timestamp_fails_the_batch_before_anything_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = local(dir.path(), "out/%Y");
        let mut sink = HdfsSink::new("k1", &cfg).unwrap();
        let e = sink
            .process(&[ev("a", &[("timestamp", "1700000000000")]), ev("b", &[])])
            .unwrap_err();
        assert!(e.to_string().contains("timestamp"), "{e}");
        // The same event fails the same way on every retry: only a fixed producer or
        // hdfs.useLocalTimeStamp helps.
        assert_eq!(e.retry(), Retry::Permanent);
        assert!(
            matches!(
                e.cause(),
                SinkCause::Render {
                    key: "hdfs.path",
                    source: path::PathError::MissingTimestamp { .. },
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(!dir.path().join("out").exists(), "{:?}", files(dir.path()));
        // With useLocalTimeStamp the same events go through.
        let mut cfg = local(dir.path(), "out/%Y");
        cfg.use_local_timestamp = true;
        let mut sink = HdfsSink::new("k1", &cfg).unwrap();
        sink.process(&[ev("b", &[])]).unwrap();
        sink.stop().unwrap();
        assert_eq!(files(dir.path()).len(), 1);
    }

    #[test]
    fn max_open_files_closes_the_least_recently_used_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = local(dir.path(), "out/%{k}");
        cfg.max_open_files = 2;
        let mut sink = HdfsSink::new("k1", &cfg).unwrap();
        for k in ["a", "b", "a", "c"] {
            sink.process(&[ev(k, &[("k", k)])]).unwrap();
        }
        let open: Vec<String> = files(dir.path())
            .into_iter()
            .filter(|f| f.ends_with(".tmp"))
            .collect();
        assert_eq!(open.len(), 2, "{open:?}");
        assert!(open.iter().all(|f| !f.starts_with("out/b/")), "{open:?}");
        sink.stop().unwrap();
        assert!(files(dir.path()).iter().all(|f| !f.ends_with(".tmp")));
    }

    #[test]
    fn files_opened_and_closed_are_counted_as_flume_counts_connections() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = local(dir.path(), "out");
        cfg.roll_count = 2;
        let mut sink = HdfsSink::new("k1", &cfg).unwrap();
        let counters = ComponentCounters::detached("k1", crate::metrics::ComponentType::Sink);
        sink.attach_counters(Arc::clone(&counters));
        let events: Vec<Event> = (0..5).map(|i| ev(&i.to_string(), &[])).collect();
        sink.process(&events).unwrap();
        assert_eq!(counters.get(Counter::ConnectionCreatedCount), 3);
        assert_eq!(counters.get(Counter::ConnectionClosedCount), 2);
        sink.stop().unwrap();
        assert_eq!(counters.get(Counter::ConnectionClosedCount), 3);
        assert_eq!(counters.get(Counter::ConnectionFailedCount), 0);
    }

    #[test]
    fn a_batch_bringing_several_new_buckets_to_a_full_sink_goes_through() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = local(dir.path(), "out/%{k}");
        cfg.max_open_files = 2;
        let mut sink = HdfsSink::new("k1", &cfg).unwrap();
        sink.process(&[ev("x", &[("k", "x")]), ev("y", &[("k", "y")])])
            .unwrap();
        // Two new buckets at the limit: the old ones make room, not the new ones.
        sink.process(&[ev("a", &[("k", "a")]), ev("b", &[("k", "b")])])
            .unwrap();
        // More new buckets in one batch than the limit: the batch still goes through.
        let many: Vec<Event> = ["c", "d", "e"].iter().map(|k| ev(k, &[("k", k)])).collect();
        sink.process(&many).unwrap();
        sink.stop().unwrap();
        let text = read_all(dir.path(), &files(dir.path()));
        let mut lines: Vec<&str> = text.lines().collect();
        lines.sort_unstable();
        assert_eq!(lines, ["a", "b", "c", "d", "e", "x", "y"]);
    }

    #[test]
    fn roll_interval_and_idle_timeout_close_files_without_new_events() {
        for (interval, idle) in [(1, 0), (0, 1)] {
            let dir = tempfile::tempdir().unwrap();
            let mut cfg = local(dir.path(), "out");
            cfg.roll_interval_secs = interval;
            cfg.idle_timeout_secs = idle;
            let mut sink = HdfsSink::new("k1", &cfg).unwrap();
            sink.process(&[ev("x", &[])]).unwrap();
            assert!(files(dir.path())[0].ends_with(".tmp"));
            let deadline = Instant::now() + Duration::from_secs(10);
            while files(dir.path())[0].ends_with(".tmp") {
                assert!(
                    Instant::now() < deadline,
                    "not rolled: {:?}",
                    files(dir.path())
                );
                sink.tick();
                std::thread::sleep(Duration::from_millis(20));
            }
            assert_eq!(read_all(dir.path(), &files(dir.path())), "x\n");
        }
    }

    #[test]
    fn compressed_stream_and_sequence_file_names_and_headers() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = local(dir.path(), "gz");
        cfg.format.file_type = FileType::CompressedStream;
        cfg.format.codec = Some(Codec::Gzip);
        let mut sink = HdfsSink::new("k1", &cfg).unwrap();
        sink.process(&[ev("a", &[])]).unwrap();
        sink.process(&[ev("b", &[])]).unwrap();
        sink.stop().unwrap();
        let f = files(dir.path());
        assert!(f[0].ends_with(".gz"), "{f:?}");
        let raw = std::fs::read(dir.path().join(&f[0])).unwrap();
        let mut text = String::new();
        std::io::Read::read_to_string(&mut flate2::read::MultiGzDecoder::new(&raw[..]), &mut text)
            .unwrap();
        assert_eq!(text, "a\nb\n");

        let mut cfg = local(dir.path(), "seq");
        cfg.format.file_type = FileType::SequenceFile;
        cfg.file_suffix = ".seq".into();
        let mut sink = HdfsSink::new("k1", &cfg).unwrap();
        sink.process(&[ev("a", &[])]).unwrap();
        sink.stop().unwrap();
        let f: Vec<String> = files(dir.path())
            .into_iter()
            .filter(|f| f.starts_with("seq/"))
            .collect();
        assert!(f[0].ends_with(".seq"), "{f:?}");
        let raw = std::fs::read(dir.path().join(&f[0])).unwrap();
        assert_eq!(&raw[..4], b"SEQ\x06");
    }

    #[test]
    fn a_taken_name_is_skipped_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = local(dir.path(), "out");
        let mut sink = HdfsSink::new("k1", &cfg).unwrap();
        // Occupy the next few names the sink would pick.
        std::fs::create_dir_all(dir.path().join("out")).unwrap();
        for i in 1..=3 {
            let name = format!("out/FlumeData.{}", sink.counter + i);
            std::fs::write(dir.path().join(name), "old").unwrap();
        }
        sink.process(&[ev("new", &[])]).unwrap();
        sink.stop().unwrap();
        let f = files(dir.path());
        assert_eq!(f.len(), 4, "{f:?}");
        assert_eq!(read_all(dir.path(), &f), "oldoldoldnew\n");
    }

    /// What [`FaultyFs`] does to the next write and close.
    #[derive(Default)]
    struct Faults {
        /// The next write reaches the file only in part (about half), then fails, as a
        /// write cut by a DataNode outage.
        torn_write: bool,
        /// The next close fails, leaving the file open.
        failing_close: bool,
    }

    /// The local filesystem, with the faults `plan` asks for.
    struct FaultyFs(Arc<parking_lot::Mutex<Faults>>);

    struct FaultyFile(Box<dyn SinkFile>, Arc<parking_lot::Mutex<Faults>>);

    impl SinkFs for FaultyFs {
        fn create(&mut self, path: &str) -> Result<Box<dyn SinkFile>, FsError> {
            Ok(Box::new(FaultyFile(LocalFs.create(path)?, self.0.clone())))
        }
        fn rename(&mut self, from: &str, to: &str) -> Result<(), FsError> {
            LocalFs.rename(from, to)
        }
        fn exists(&mut self, path: &str) -> Result<bool, FsError> {
            LocalFs.exists(path)
        }
        fn recover_lease(&mut self, path: &str) -> Result<bool, FsError> {
            LocalFs.recover_lease(path)
        }
        fn truncate(&mut self, path: &str, len: u64) -> Result<bool, FsError> {
            LocalFs.truncate(path, len)
        }
        fn delete(&mut self, path: &str) -> Result<(), FsError> {
            LocalFs.delete(path)
        }
        fn describe(&self) -> String {
            "a faulty local filesystem".into()
        }
    }

    fn injected(op: &'static str) -> FsError {
        FsError::Local {
            op,
            path: "injected".into(),
            source: std::io::Error::other("injected fault"),
        }
    }

    impl SinkFile for FaultyFile {
        fn write(&mut self, data: Bytes) -> Result<(), FsError> {
            if std::mem::take(&mut self.1.lock().torn_write) {
                // Mid-line, as a cut pipeline leaves it.
                self.0.write(data.slice(..data.len() / 2 + 3))?;
                self.0.sync()?;
                return Err(injected("writing"));
            }
            self.0.write(data)
        }
        fn sync(&mut self) -> Result<(), FsError> {
            self.0.sync()
        }
        fn close(&mut self) -> Result<(), FsError> {
            if std::mem::take(&mut self.1.lock().failing_close) {
                return Err(injected("closing"));
            }
            self.0.close()
        }
    }

    fn numbered(range: std::ops::Range<u32>) -> Vec<Event> {
        range.map(|i| ev(&format!("{i:05}"), &[])).collect()
    }

    /// Runs `first` (committed), then `failing` with `faults` (it must fail), then `failing`
    /// again (the retry, which succeeds), then stops; returns the files left and their text.
    fn batch_fails_midway(first: u32, faults: Faults) -> (Vec<String>, String) {
        let dir = tempfile::tempdir().unwrap();
        let mut sink = HdfsSink::new("k1", &local(dir.path(), "out")).unwrap();
        let plan = Arc::new(parking_lot::Mutex::new(Faults::default()));
        sink.fs = Box::new(FaultyFs(plan.clone()));
        if first > 0 {
            sink.process(&numbered(0..first)).unwrap();
        }
        *plan.lock() = faults;
        let failing = numbered(first..first + 50);
        let e = sink
            .process(&failing)
            .expect_err("the injected fault fails the batch");
        // An I/O error of no known kind: retried, as a cut pipeline would be.
        assert!(e.is_retryable(), "{e}");
        sink.process(&failing).unwrap();
        sink.stop().unwrap();
        let names = files(dir.path());
        let text = read_all(dir.path(), &names);
        (names, text)
    }

    /// A batch whose write reached a file only in part (a DataNode outage mid-write) leaves
    /// none of its bytes under a final name: the file is cut back to its committed events
    /// before the rename (or deleted if it has none), so no torn line ever appears, and the
    /// retried batch is the only copy of its events.
    #[test]
    fn a_failed_batchs_bytes_are_cut_off_before_the_file_gets_its_final_name() {
        let cases = [
            ("file with committed events, close works", 30, false),
            ("file with committed events, close fails", 30, true),
            ("file opened by the failed batch, close works", 0, false),
            ("file opened by the failed batch, close fails", 0, true),
        ];
        for (what, first, failing_close) in cases {
            let faults = Faults {
                torn_write: true,
                failing_close,
            };
            let (names, text) = batch_fails_midway(first, faults);
            assert!(
                names
                    .iter()
                    .all(|n| n.starts_with("out/FlumeData.") && !n.ends_with(".tmp")),
                "{what}: {names:?}"
            );
            let expected: String = (0..first + 50).map(|i| format!("{i:05}\n")).collect();
            assert_eq!(text, expected, "{what}: files {names:?}");
        }
    }

    /// A path whose parent is a regular file (ENOTDIR: refused to root too) fails every batch
    /// permanently with one cause, whatever file name each attempt picks, and the sink writes
    /// again once the file is moved away.
    #[test]
    fn a_path_under_a_regular_file_fails_permanently_until_it_is_moved_away() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("blocker");
        std::fs::write(&blocker, "not a directory").unwrap();
        let mut sink = HdfsSink::new("k1", &local(dir.path(), "blocker/out")).unwrap();
        let first = sink.process(&[ev("a", &[])]).unwrap_err();
        assert_eq!(first.retry(), Retry::Permanent, "{first}");
        assert!(
            matches!(first.cause(), SinkCause::Fs(FsError::Local { .. })),
            "{first:?}"
        );
        let second = sink.process(&[ev("a", &[])]).unwrap_err();
        assert_eq!(first.cause_key(), second.cause_key(), "{first} / {second}");
        std::fs::remove_file(&blocker).unwrap();
        sink.process(&[ev("a", &[])]).unwrap();
        sink.stop().unwrap();
        assert_eq!(read_all(dir.path(), &files(dir.path())), "a\n");
    }

    /// A template literal that climbs out of the base after an escape is refused per event,
    /// permanently: no retry renders it differently.
    #[test]
    fn a_directory_outside_the_base_is_a_permanent_failure() {
        let dir = tempfile::tempdir().unwrap();
        let mut sink = HdfsSink::new("k1", &local(dir.path(), "out/%{k}/../..")).unwrap();
        let e = sink.process(&[ev("a", &[("k", "v")])]).unwrap_err();
        assert_eq!(e.retry(), Retry::Permanent, "{e}");
        assert!(
            matches!(
                e.cause(),
                SinkCause::Render {
                    source: path::PathError::EscapesBase { .. },
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(files(dir.path()).is_empty());
    }

    #[test]
    fn targets_split_into_filesystem_and_path() {
        let t = split_target("hdfs://nn:8020/flume/%Y").expect("hdfs");
        assert_eq!(t.hdfs_url.as_deref(), Some("hdfs://nn:8020"));
        assert_eq!(t.path, "/flume/%Y");
        let t = split_target("hdfs:///flume").expect("default fs");
        assert_eq!(t.hdfs_url.as_deref(), Some("hdfs://"));
        assert_eq!(t.path, "/flume");
        let t = split_target("file:///var/x").expect("file");
        assert_eq!((t.hdfs_url, t.path.as_str()), (None, "/var/x"));
        let t = split_target("data/out").expect("plain");
        assert_eq!((t.hdfs_url, t.path.as_str()), (None, "data/out"));
        assert!(split_target("hdfs://%{host}:8020/x").is_err());
        assert!(split_target("s3a://bucket/x").is_err());
        assert!(split_target("file://relative").is_err());
    }
}
