//! The `TAILDIR` source's keys (Flume's TaildirSource, 1.11): parsed and checked once, with
//! Flume's defaults written here and nowhere else (docs/CONFIG.md, `TAILDIR`).

use std::path::PathBuf;
use std::time::Duration;

use super::TaildirSource;
use crate::config::java_regex::{self, JavaRegex};
use crate::config::{ConfigError, Keys, Registered, WarningKind};
use crate::event::Headers;
use crate::source::{Source, SourceContext, SourceError, SourceSpec, SourceType};

/// `TAILDIR` / Flume's TaildirSource.
pub const TYPE: SourceType = Registered {
    alias: "TAILDIR",
    class: Some("org.apache.flume.source.taildir.TaildirSource"),
    parse,
    minimal: &[
        ("filegroups", "f1"),
        ("filegroups.f1", "/var/log/app/.*\\.log"),
    ],
};

/// Flume's default position file; `~` is the agent user's home directory.
pub const DEFAULT_POSITION_FILE: &str = "~/.flume/taildir_position.json";

/// One file group: the files in `dir` whose names match `name` (the whole name, as Flume's
/// `regex:` path matcher), with headers added to each of their events.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileGroup {
    /// The group's name (`f1`).
    pub name: String,
    /// The directory, as written (Flume takes it literally; only the file name is a regex).
    pub dir: PathBuf,
    /// The file-name pattern.
    pub pattern: JavaRegex,
    /// `headers.<group>.<key>`.
    pub headers: Headers,
}

/// The `TAILDIR` source's keys (docs/CONFIG.md, `TAILDIR`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaildirConfig {
    /// `filegroups` with each `filegroups.<g>` and `headers.<g>.*`.
    pub groups: Vec<FileGroup>,
    /// `positionFile` (default `~/.flume/taildir_position.json`), `~` expanded.
    pub position_file: PathBuf,
    /// `batchSize` (default 100): lines per channel transaction.
    pub batch_size: usize,
    /// `maxBatchCount` (default unlimited): batches read from one file before the next file
    /// gets its turn.
    pub max_batch_count: u64,
    /// `skipToEnd` (default false): files not in the position file at start-up are read
    /// from their end.
    pub skip_to_end: bool,
    /// `idleTimeout` (default 120000 ms): a file that has not grown for this long is closed
    /// (its unterminated last line, if any, put as an event).
    pub idle_timeout: Duration,
    /// `writePosInterval` (default 3000 ms): how often the position file is also fsynced
    /// (it is rewritten after every committed batch).
    pub write_pos_interval: Duration,
    /// `backoffSleepIncrement` (default 1000 ms) and `maxBackoffSleep` (default 5000 ms): the
    /// wait when no file has new lines grows by the first up to the second (a change seen by
    /// inotify ends it at once).
    pub backoff_increment: Duration,
    pub max_backoff: Duration,
    /// `cachePatternMatching` (default true): list a group's directory again only when its
    /// modification time changed.
    pub cache_pattern_matching: bool,
    /// `byteOffsetHeader` (default false): header `byteoffset` with the line's offset.
    pub byte_offset_header: bool,
    /// `fileHeader` (default false) with `fileHeaderKey` (default `file`): the file's path.
    pub file_header: Option<String>,
    /// `maxLineLength` (flumen's, default 1 MiB): a longer line is cut to this many bytes and
    /// the rest up to its newline skipped, with a warning; Flume has no bound.
    pub max_line_length: usize,
}

impl TaildirConfig {
    /// `groups` with every other key at its default (`home` for `~`).
    pub fn new(groups: Vec<FileGroup>, home: Option<&str>) -> TaildirConfig {
        TaildirConfig {
            groups,
            position_file: expand_home(DEFAULT_POSITION_FILE, home),
            batch_size: 100,
            max_batch_count: i64::MAX as u64,
            skip_to_end: false,
            idle_timeout: Duration::from_millis(120_000),
            write_pos_interval: Duration::from_millis(3_000),
            backoff_increment: Duration::from_millis(1_000),
            max_backoff: Duration::from_millis(5_000),
            cache_pattern_matching: true,
            byte_offset_header: false,
            file_header: None,
            max_line_length: 1 << 20,
        }
    }
}

/// `~/x` with the home directory, as Flume's shell would have it; other paths unchanged.
fn expand_home(path: &str, home: Option<&str>) -> PathBuf {
    match (path.strip_prefix("~/"), home) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(path),
    }
}

fn parse(keys: &mut Keys<'_>) -> Result<Box<dyn SourceSpec>, ConfigError> {
    Ok(Box::new(parse_config(
        keys,
        std::env::var("HOME").ok().as_deref(),
    )?))
}

/// The keys of one `TAILDIR` source; `home` replaces a leading `~/` in `positionFile`.
pub fn parse_config(keys: &mut Keys<'_>, home: Option<&str>) -> Result<TaildirConfig, ConfigError> {
    let list = keys.required(
        "filegroups",
        "a space-separated list of file group names, e.g. `f1 f2`, each with `filegroups.<name>`",
    )?;
    let names: Vec<String> = list.value.split_whitespace().map(str::to_string).collect();
    if names.is_empty() {
        return Err(keys.bad("filegroups", &list, "at least one file group name"));
    }
    let mut headers_of: Vec<(String, crate::config::Val)> = keys.take_prefixed("headers.");
    keys.document_default("headers.<group>.<key>", "none");
    keys.document_default("filegroups.<group>", "required");
    let mut group_keys = keys.take_prefixed("filegroups.");
    let mut groups = Vec::new();
    for name in &names {
        let key = format!("filegroups.{name}");
        let Some(at) = group_keys.iter().position(|(k, _)| *k == key) else {
            return Err(keys.missing(
                &key,
                format!("the files of group `{name}`: a directory and a regular expression on the file name, e.g. /var/log/app/.*\\.log"),
            ));
        };
        let v = group_keys.remove(at);
        let path = v.1.value.trim();
        let Some((dir, pattern)) = path.rsplit_once('/') else {
            return Err(keys.bad(
                &key,
                &v.1,
                "a directory and a file-name pattern, e.g. /var/log/app/.*\\.log",
            ));
        };
        if pattern.is_empty() {
            return Err(keys.bad(
                &key,
                &v.1,
                "a file-name pattern after the last `/`, e.g. /var/log/app/.*\\.log",
            ));
        }
        let pattern = java_regex::compile(pattern).map_err(|e| keys.bad(&key, &v.1, e))?;
        let mut headers = Headers::new();
        let prefix = format!("headers.{name}.");
        headers_of.retain(|(k, hv)| match k.strip_prefix(&prefix) {
            Some(h) if !h.is_empty() => {
                headers.insert(h.to_string(), hv.value.clone());
                false
            }
            _ => true,
        });
        groups.push(FileGroup {
            name: name.clone(),
            dir: PathBuf::from(if dir.is_empty() { "/" } else { dir }),
            pattern,
            headers,
        });
    }
    for (k, v) in group_keys {
        keys.warn(
            v.line,
            &k,
            WarningKind::IgnoredKey {
                reason: format!(
                    "its group is not listed in `filegroups` ({})",
                    names.join(", ")
                ),
            },
        );
    }
    if let Some((k, v)) = headers_of.first() {
        return Err(keys.bad(
            k,
            v,
            format!(
                "`headers.<group>.<header>` for a group listed in `filegroups` ({})",
                names.join(", ")
            ),
        ));
    }
    let d = TaildirConfig::new(Vec::new(), home);
    keys.document_default("positionFile", DEFAULT_POSITION_FILE);
    let position_file = keys
        .get("positionFile")
        .map_or(d.position_file.clone(), |v| {
            expand_home(v.value.trim(), home)
        });
    let batch_size = keys.size("batchSize", d.batch_size, 1, "events")?;
    let max_batch_count = keys.number("maxBatchCount", d.max_batch_count, 1, "batches")?;
    let skip_to_end = keys.boolean("skipToEnd", d.skip_to_end)?;
    let idle_timeout = keys.millis("idleTimeout", d.idle_timeout, 1)?;
    let write_pos_interval = keys.millis("writePosInterval", d.write_pos_interval, 1)?;
    let backoff_increment = keys.millis("backoffSleepIncrement", d.backoff_increment, 1)?;
    let max_backoff = keys.millis("maxBackoffSleep", d.max_backoff, 1)?;
    let cache_pattern_matching = keys.boolean("cachePatternMatching", d.cache_pattern_matching)?;
    let byte_offset_header = keys.boolean("byteOffsetHeader", d.byte_offset_header)?;
    let file_header = keys.boolean("fileHeader", false)?;
    let file_header_key = keys.text("fileHeaderKey", "file");
    let max_line_length = keys.size("maxLineLength", d.max_line_length, 1, "bytes")?;
    Ok(TaildirConfig {
        groups,
        position_file,
        batch_size,
        max_batch_count,
        skip_to_end,
        idle_timeout,
        write_pos_interval,
        backoff_increment,
        max_backoff,
        cache_pattern_matching,
        byte_offset_header,
        file_header: file_header.then_some(file_header_key),
        max_line_length,
    })
}

impl SourceSpec for TaildirConfig {
    fn batch_size(&self) -> Option<(usize, &'static str)> {
        Some((self.batch_size, "batchSize"))
    }

    fn build(&self, ctx: SourceContext) -> Result<Box<dyn Source>, SourceError> {
        Ok(Box::new(TaildirSource::new(ctx, self.clone())?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_pairs(pairs: &[(&str, &str)]) -> Result<TaildirConfig, ConfigError> {
        let mut keys = Keys::from_pairs("sources", "r1", pairs);
        parse_config(&mut keys, Some("/home/u"))
    }

    #[test]
    fn flume_defaults_and_groups() {
        let c = parse_pairs(&[
            ("filegroups", "f1 f2"),
            ("filegroups.f1", "/var/log/test1/example.log"),
            ("filegroups.f2", "/var/log/test2/.*log.*"),
            ("headers.f1.headerKey1", "value1"),
            ("headers.f2.headerKey1", "value2"),
            ("headers.f2.headerKey2", "value2-2"),
        ])
        .expect("parse");
        assert_eq!(
            c.position_file,
            PathBuf::from("/home/u/.flume/taildir_position.json")
        );
        assert_eq!(c.batch_size, 100);
        assert_eq!(c.idle_timeout, Duration::from_secs(120));
        assert_eq!(c.groups.len(), 2);
        assert_eq!(c.groups[0].dir, PathBuf::from("/var/log/test1"));
        assert!(c.groups[0].pattern.matches_whole("example.log"));
        assert!(!c.groups[0].pattern.matches_whole("exampleXlog.1"));
        assert!(c.groups[1].pattern.matches_whole("app.log.1"));
        assert_eq!(c.groups[1].headers.len(), 2);
        assert_eq!(c.groups[0].headers["headerKey1"], "value1");
        assert_eq!(c.file_header, None);
    }

    #[test]
    fn errors_name_the_key() {
        let e = parse_pairs(&[("filegroups", "f1")])
            .expect_err("an error")
            .to_string();
        assert!(e.contains("filegroups.f1"), "{e}");
        let e = parse_pairs(&[("filegroups", "f1"), ("filegroups.f1", "/d/(?i)x")])
            .expect_err("an error")
            .to_string();
        assert!(e.contains("filegroups.f1"), "{e}");
        let e = parse_pairs(&[
            ("filegroups", "f1"),
            ("filegroups.f1", "/d/x"),
            ("headers.f9.k", "v"),
        ])
        .expect_err("an error")
        .to_string();
        assert!(e.contains("headers.f9.k"), "{e}");
        let c = parse_pairs(&[
            ("filegroups", "f1"),
            ("filegroups.f1", "/d/x"),
            ("fileHeader", "true"),
            ("positionFile", "/p/pos.json"),
        ])
        .expect("parse");
        assert_eq!(c.file_header.as_deref(), Some("file"));
        assert_eq!(c.position_file, PathBuf::from("/p/pos.json"));
    }
}
