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
//!   written (plus, with `serializer = avro_event`, one Avro block of at most
//!   `serializer.syncIntervalBytes`), and at most `hdfs.maxOpenFiles` files are open (the
//!   least recently used one is closed to make room).
//! - Header values can never move a write outside the configured base path: the path module
//!   escapes `/`, `..` and friends in substituted values, and every rendered directory is
//!   checked to lie under the template's static prefix. A rendered component longer than
//!   a file name may be (255 bytes) is shortened to its start and a hash of the whole, so a
//!   long value gets a bucket of its own instead of failing every retry and halting the sink.
//!
//! Failures say whether a retry can help ([`crate::sink::Retry`]): filesystem errors by
//! [`FsError::retry`] (a NameNode down, in safe mode or failing over, a broken DataNode
//! pipeline, a call timeout, a full disk or quota: retryable; permission denied, a path that
//! is a file, a read-only filesystem, failed authentication: permanent), and an event the
//! templates cannot place (no `timestamp` header without `hdfs.useLocalTimeStamp`, a
//! directory outside the base) is permanent, since it renders the same way on every retry.

mod closing;
mod config;
pub mod default_fs;
pub mod format;
pub mod fs;
pub mod path;

pub use config::{split_target, HdfsSinkConfig, SyncMode, Target, TYPE};

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use self::closing::Unclosed;
use self::default_fs::HadoopEnv;
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

/// Encoded bytes buffered per file before they are written (bounds memory per open file).
const WRITE_CHUNK: usize = 1 << 20;
/// How often time-based rolling is checked.
const TICK_EVERY: Duration = Duration::from_millis(200);
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

/// Where `hdfs.path` was set, for messages.
fn origin(cfg: &HdfsSinkConfig) -> String {
    if cfg.path_origin.is_empty() {
        format!("hdfs.path `{}`", cfg.path)
    } else {
        format!("{} = {}", cfg.path_origin, cfg.path)
    }
}

/// The HDFS URL the sink's files go to (`hdfs://nn:8020`, `hdfs://` for hdfs-native's own
/// default filesystem), or `None` for the local filesystem, with a warning where that may
/// surprise. A plain absolute path goes where
/// Hadoop would send it ([`default_fs`]); a relative one stays local (the built-in
/// configuration writes `./flumen-data/out`).
fn filesystem_of(
    name: &str,
    cfg: &HdfsSinkConfig,
    target: &Target,
    hadoop: &HadoopEnv,
) -> Result<Placement, SinkError> {
    let placed = |url: Option<String>, note: Option<String>| Placement { url, note };
    if target.hdfs_url.is_some() || cfg.path.starts_with("file://") {
        return Ok(placed(target.hdfs_url.clone(), None));
    }
    let err = |m: String| SinkError::new(name, m);
    let found = default_fs::resolve(hadoop, &cfg.hadoop_config)
        .map_err(|e| err(format!("{}: reading fs.defaultFS: {e}", origin(cfg))))?;
    let Some(default) = &found.default_fs else {
        let note = cfg.path.starts_with('/').then(|| {
            format!(
                "sink `{name}`: {} is a plain path and no default filesystem is configured \
                 ({}), so it is written to the local filesystem, as Hadoop would; set \
                 HADOOP_CONF_DIR, or write hdfs://namenode:8020{} or file://{} to say which",
                origin(cfg),
                found.looked_at,
                cfg.path,
                cfg.path
            )
        });
        return Ok(placed(None, note));
    };
    let url = split_target(default)
        .map_err(|m| {
            err(format!(
                "{}: the default filesystem ({}) is not usable: {m}",
                origin(cfg),
                found.looked_at
            ))
        })?
        .hdfs_url;
    Ok(match url {
        Some(url) if !cfg.path.starts_with('/') => {
            let note = format!(
                "sink `{name}`: {} is a relative path: flumen writes it to the local \
                 filesystem, Flume to the default filesystem {url} ({}); write an absolute path \
                 to use {url}",
                origin(cfg),
                found.looked_at
            );
            placed(None, Some(note))
        }
        Some(url) => {
            tracing::info!(
                sink = %name,
                "sink `{name}`: hdfs.path `{}` is on the default filesystem ({})",
                cfg.path,
                found.looked_at
            );
            placed(Some(url), None)
        }
        None => placed(None, None),
    })
}

/// Where the sink's files go ([`filesystem_of`]).
#[derive(Debug, PartialEq, Eq)]
struct Placement {
    /// The HDFS URL, `None` for the local filesystem.
    url: Option<String>,
    /// A warning for the operator: the files go somewhere Flume would not send them, or
    /// Hadoop's default was used for lack of a configuration.
    note: Option<String>,
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
        let hadoop = HadoopEnv::from_process();
        let placement = filesystem_of(name, cfg, &target, &hadoop)?;
        if let Some(note) = &placement.note {
            tracing::warn!(sink = %name, "{note}");
        }
        let fs: Box<dyn SinkFs> = match placement.url {
            Some(url) => Box::new(
                HdfsFs::connect(&url, call_timeout, &cfg.hadoop_config).map_err(|e| {
                    err(format!(
                        "{}: {e}; Hadoop configuration read: {}",
                        origin(cfg),
                        hadoop.files_read()
                    ))
                })?,
            ),
            None => Box::new(LocalFs),
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
        // A header value too long for a file name would fail every retry and halt the sink.
        path::shorten_components(&mut self.scratch_dir, path::MAX_COMPONENT_BYTES);
        // Room for what follows the prefix: `.`, the counter, `hdfs.fileSuffix`, the in-use
        // prefix and suffix.
        path::shorten_components(&mut self.scratch_name, path::MAX_COMPONENT_BYTES - 64);
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
mod tests;
