//! From parsed properties to a typed [`AgentConfig`]: Flume's key layout
//! (`<agent>.<sources|channels|sinks>.<name>.<key>`), its type aliases and class names, each
//! component's keys and defaults, and the checks Flume makes (or should have made).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use super::error::{ConfigError, ConfigWarning, WarningKind};
use super::properties::Properties;
use super::subst::{self, Problem};
use super::{
    AgentConfig, ChannelConfig, ChannelKind, FileRollSerializer, InterceptorConfig,
    InterceptorKind, SinkConfig, SinkKind, SourceConfig, SourceKind, DEFAULT_DATA_ROOT,
};
use crate::channel::file::{CorruptionPolicy, FileChannelConfig, FsyncPolicy, MAX_SEGMENT_SIZE};
use crate::channel::memory::MemoryChannelConfig;
use crate::channel::ChannelError;
use crate::io::IoKind;
use crate::sink::hdfs::{HdfsSinkConfig, SyncMode};

/// Flume's floor for `minimumRequiredSpace` (1 MiB); Flume raises smaller values silently.
const FLOOR_MINIMUM_REQUIRED_SPACE: u64 = 1024 * 1024;

/// The agent-level keys (`<agent>.<key>`).
const AGENT_KEYS: [&str; 5] = [
    "sources",
    "channels",
    "sinks",
    "sinkgroups",
    "configfilters",
];

/// Levenshtein distance over chars.
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let subst = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = subst.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// The candidate closest to `word` (the first of equals), if any.
pub(crate) fn nearest<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (edit_distance(word, c), c))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// One key of a component, value substituted and trimmed.
#[derive(Clone, Debug)]
struct Entry {
    /// The key below the component, e.g. `capacity` in `a1.channels.c1.capacity`.
    key: String,
    value: String,
    line: usize,
}

/// A value read from a component, with its line.
#[derive(Clone, Debug)]
struct Val {
    value: String,
    line: usize,
}

/// Reads one component's keys. Every key asked for becomes "known" (for the nearest-key
/// suggestion); every key read is consumed; [`Ctx::finish`] reports the rest as unknown.
struct Ctx<'a> {
    file: &'a str,
    /// `a1.channels.c1.`
    prefix: String,
    /// Where the component is listed, then (once read) the line of its `type`: missing and
    /// defaulted keys point here.
    home_line: usize,
    entries: Vec<Entry>,
    consumed: Vec<bool>,
    known: Vec<&'static str>,
    warnings: Vec<ConfigWarning>,
    /// The process environment (`${env:NAME}`, Flume's global SSL variables).
    env: &'a dyn Fn(&str) -> Option<String>,
}

impl<'a> Ctx<'a> {
    fn new(
        file: &'a str,
        prefix: String,
        decl_line: usize,
        entries: Vec<Entry>,
        env: &'a dyn Fn(&str) -> Option<String>,
    ) -> Self {
        let consumed = vec![false; entries.len()];
        Ctx {
            file,
            prefix,
            home_line: decl_line,
            entries,
            consumed,
            known: Vec::new(),
            warnings: Vec::new(),
            env,
        }
    }

    /// The component's `key`, else Flume's global SSL setting `global` (an environment
    /// variable, see [`GLOBAL_SSL`]), as Flume 1.9+ falls back per key.
    fn get_or_global(&mut self, key: &'static str, global: &str) -> Option<Val> {
        self.get(key).or_else(|| {
            (self.env)(global)
                .filter(|v| !v.is_empty())
                .map(|value| Val {
                    value,
                    line: self.home_line,
                })
        })
    }

    fn full(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    /// The line of `key` if set, else the component's `type` line.
    fn line_of(&self, key: &str) -> usize {
        self.entries
            .iter()
            .find(|e| e.key == key)
            .map_or(self.home_line, |e| e.line)
    }

    /// Makes `key` a candidate for nearest-key suggestions.
    fn know(&mut self, key: &'static str) {
        if !self.known.contains(&key) {
            self.known.push(key);
        }
    }

    fn get(&mut self, key: &'static str) -> Option<Val> {
        self.know(key);
        let i = self.entries.iter().position(|e| e.key == key)?;
        self.consumed[i] = true;
        Some(Val {
            value: self.entries[i].value.clone(),
            line: self.entries[i].line,
        })
    }

    /// Consumes every key starting with `prefix`, in line order.
    fn take_prefixed(&mut self, prefix: &str) -> Vec<(String, Val)> {
        let mut out = Vec::new();
        for (i, e) in self.entries.iter().enumerate() {
            if e.key.starts_with(prefix) {
                self.consumed[i] = true;
                out.push((
                    e.key.clone(),
                    Val {
                        value: e.value.clone(),
                        line: e.line,
                    },
                ));
            }
        }
        out.sort_by_key(|(_, v)| v.line);
        out
    }

    fn has(&self, key: &str) -> Option<usize> {
        self.entries.iter().find(|e| e.key == key).map(|e| e.line)
    }

    fn missing(&self, key: &str, hint: String) -> ConfigError {
        ConfigError::MissingKey {
            file: self.file.to_string(),
            line: self.home_line,
            key: self.full(key),
            hint,
        }
    }

    fn bad(&self, key: &str, v: &Val, expected: impl Into<String>) -> ConfigError {
        ConfigError::BadValue {
            file: self.file.to_string(),
            line: v.line,
            key: self.full(key),
            value: v.value.clone(),
            expected: expected.into(),
        }
    }

    fn unsupported(
        &self,
        key: &str,
        line: usize,
        feature: impl Into<String>,
        hint: impl Into<String>,
    ) -> ConfigError {
        ConfigError::Unsupported {
            file: self.file.to_string(),
            line,
            key: self.full(key),
            feature: feature.into(),
            hint: hint.into(),
        }
    }

    fn required(&mut self, key: &'static str, hint: &str) -> Result<Val, ConfigError> {
        self.get(key)
            .ok_or_else(|| self.missing(key, hint.to_string()))
    }

    fn parsed<T>(
        &mut self,
        key: &'static str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<Option<(T, Val)>, ConfigError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => match parse(&v.value) {
                Ok(t) => Ok(Some((t, v))),
                Err(expected) => Err(self.bad(key, &v, expected)),
            },
        }
    }

    /// A whole number of at least `min`.
    fn number(
        &mut self,
        key: &'static str,
        default: u64,
        min: u64,
        unit: &str,
    ) -> Result<u64, ConfigError> {
        Ok(self
            .parsed(key, |s| parse_u64(s, min, unit))?
            .map_or(default, |(n, _)| n))
    }

    fn opt_number(
        &mut self,
        key: &'static str,
        min: u64,
        unit: &str,
    ) -> Result<Option<u64>, ConfigError> {
        Ok(self
            .parsed(key, |s| parse_u64(s, min, unit))?
            .map(|(n, _)| n))
    }

    fn size(
        &mut self,
        key: &'static str,
        default: usize,
        min: u64,
        unit: &str,
    ) -> Result<usize, ConfigError> {
        let n = self.number(key, default as u64, min, unit)?;
        usize::try_from(n).map_err(|_| {
            let v = self.get(key).unwrap_or(Val {
                value: n.to_string(),
                line: self.home_line,
            });
            self.bad(
                key,
                &v,
                "a smaller number: it does not fit this machine's word size",
            )
        })
    }

    fn boolean(&mut self, key: &'static str, default: bool) -> Result<bool, ConfigError> {
        Ok(self.parsed(key, parse_bool)?.map_or(default, |(b, _)| b))
    }

    /// Warns that a Flume key is accepted but not acted on.
    fn ignore(&mut self, key: &'static str, reason: &str) {
        if let Some(v) = self.get(key) {
            self.warn(
                v.line,
                key,
                WarningKind::IgnoredKey {
                    reason: reason.to_string(),
                },
            );
        }
    }

    fn warn(&mut self, line: usize, key: &str, kind: WarningKind) {
        self.warnings.push(ConfigWarning {
            file: self.file.to_string(),
            line,
            key: self.full(key),
            kind,
        });
    }

    /// Accepts `key` only when it is absent or one of `accepted` (case-insensitively).
    fn only(
        &mut self,
        key: &'static str,
        accepted: &[&str],
        feature: &str,
    ) -> Result<(), ConfigError> {
        if let Some(v) = self.get(key) {
            if !accepted.iter().any(|a| a.eq_ignore_ascii_case(&v.value)) {
                return Err(self.unsupported(
                    key,
                    v.line,
                    format!("{feature} `{}`", v.value),
                    format!("Remove the key or set it to {}", accepted[0]),
                ));
            }
        }
        Ok(())
    }

    /// Reports unconsumed keys as unknown, naming the nearest known key.
    fn finish(mut self, warnings: &mut Vec<ConfigWarning>) {
        let unknown: Vec<(String, usize)> = self
            .entries
            .iter()
            .zip(&self.consumed)
            .filter(|(_, used)| !**used)
            .map(|(e, _)| (e.key.clone(), e.line))
            .collect();
        for (key, line) in unknown {
            let near = nearest(&key, self.known.iter().copied()).map(|k| self.full(k));
            self.warn(line, &key, WarningKind::UnknownKey { nearest: near });
        }
        warnings.append(&mut self.warnings);
    }
}

fn parse_u64(s: &str, min: u64, unit: &str) -> Result<u64, String> {
    let expected = || {
        if min == 0 {
            format!("a whole number of {unit} (0 or more)")
        } else {
            format!("a whole number of {unit}, at least {min}")
        }
    };
    match s.parse::<u64>() {
        Ok(n) if n >= min => Ok(n),
        _ => Err(expected()),
    }
}

fn parse_bool(s: &str) -> Result<bool, String> {
    if s.eq_ignore_ascii_case("true") {
        Ok(true)
    } else if s.eq_ignore_ascii_case("false") {
        Ok(false)
    } else {
        Err("true or false (Flume would read anything but `true` as false)".into())
    }
}

fn is_utf8_name(s: &str) -> bool {
    s.eq_ignore_ascii_case("utf-8") || s.eq_ignore_ascii_case("utf8")
}

/// Component types: ours (alias, Flume class name) and Flume's that we do not implement.
struct Types<T: 'static> {
    ours: &'static [(&'static str, Option<&'static str>, T)],
    flume_only: &'static [(&'static str, &'static str)],
}

#[derive(Clone, Copy, Debug)]
enum ChannelType {
    File,
    Memory,
}

#[derive(Clone, Copy, Debug)]
enum SourceType {
    Seq,
    Stress,
    Netcat,
    Avro,
    Exec,
    Stdin,
}

#[derive(Clone, Copy, Debug)]
enum SinkType {
    Logger,
    Null,
    FileRoll,
    Hdfs,
    Avro,
}

const CHANNEL_TYPES: Types<ChannelType> = Types {
    ours: &[
        (
            "file",
            Some("org.apache.flume.channel.file.FileChannel"),
            ChannelType::File,
        ),
        (
            "memory",
            Some("org.apache.flume.channel.MemoryChannel"),
            ChannelType::Memory,
        ),
    ],
    flume_only: &[
        ("jdbc", "org.apache.flume.channel.jdbc.JdbcChannel"),
        (
            "spillablememory",
            "org.apache.flume.channel.SpillableMemoryChannel",
        ),
        ("", "org.apache.flume.channel.kafka.KafkaChannel"),
        ("", "org.apache.flume.channel.PseudoTxnMemoryChannel"),
    ],
};

const SOURCE_TYPES: Types<SourceType> = Types {
    ours: &[
        (
            "seq",
            Some("org.apache.flume.source.SequenceGeneratorSource"),
            SourceType::Seq,
        ),
        (
            "stress",
            Some("org.apache.flume.source.StressSource"),
            SourceType::Stress,
        ),
        (
            "netcat",
            Some("org.apache.flume.source.NetcatSource"),
            SourceType::Netcat,
        ),
        (
            "avro",
            Some("org.apache.flume.source.AvroSource"),
            SourceType::Avro,
        ),
        (
            "exec",
            Some("org.apache.flume.source.ExecSource"),
            SourceType::Exec,
        ),
        ("stdin", None, SourceType::Stdin),
    ],
    flume_only: &[
        ("thrift", "org.apache.flume.source.ThriftSource"),
        ("syslogtcp", "org.apache.flume.source.SyslogTcpSource"),
        (
            "multiport_syslogtcp",
            "org.apache.flume.source.MultiportSyslogTCPSource",
        ),
        ("syslogudp", "org.apache.flume.source.SyslogUDPSource"),
        ("spooldir", "org.apache.flume.source.SpoolDirectorySource"),
        ("http", "org.apache.flume.source.http.HTTPSource"),
        ("jms", "org.apache.flume.source.jms.JMSSource"),
        ("taildir", "org.apache.flume.source.taildir.TaildirSource"),
        ("netcatudp", "org.apache.flume.source.NetcatUdpSource"),
        ("", "org.apache.flume.source.kafka.KafkaSource"),
    ],
};

const SINK_TYPES: Types<SinkType> = Types {
    ours: &[
        (
            "logger",
            Some("org.apache.flume.sink.LoggerSink"),
            SinkType::Logger,
        ),
        (
            "null",
            Some("org.apache.flume.sink.NullSink"),
            SinkType::Null,
        ),
        (
            "file_roll",
            Some("org.apache.flume.sink.RollingFileSink"),
            SinkType::FileRoll,
        ),
        (
            "hdfs",
            Some("org.apache.flume.sink.hdfs.HDFSEventSink"),
            SinkType::Hdfs,
        ),
        (
            "avro",
            Some("org.apache.flume.sink.AvroSink"),
            SinkType::Avro,
        ),
    ],
    flume_only: &[
        ("irc", "org.apache.flume.sink.irc.IRCSink"),
        ("thrift", "org.apache.flume.sink.ThriftSink"),
        (
            "elasticsearch",
            "org.apache.flume.sink.elasticsearch.ElasticSearchSink",
        ),
        ("hbase", "org.apache.flume.sink.hbase.HBaseSink"),
        ("asynchbase", "org.apache.flume.sink.hbase.AsyncHBaseSink"),
        ("hbase2", "org.apache.flume.sink.hbase2.HBase2Sink"),
        (
            "morphline_solr",
            "org.apache.flume.sink.solr.morphline.MorphlineSolrSink",
        ),
        ("hive", "org.apache.flume.sink.hive.HiveSink"),
        ("http", "org.apache.flume.sink.http.HttpSink"),
        ("", "org.apache.flume.sink.kafka.KafkaSink"),
    ],
};

#[derive(Clone, Copy, Debug)]
enum InterceptorType {
    Timestamp,
    Host,
    Static,
}

const INTERCEPTOR_TYPES: Types<InterceptorType> = Types {
    ours: &[
        (
            "timestamp",
            Some("org.apache.flume.interceptor.TimestampInterceptor$Builder"),
            InterceptorType::Timestamp,
        ),
        (
            "host",
            Some("org.apache.flume.interceptor.HostInterceptor$Builder"),
            InterceptorType::Host,
        ),
        (
            "static",
            Some("org.apache.flume.interceptor.StaticInterceptor$Builder"),
            InterceptorType::Static,
        ),
    ],
    flume_only: &[
        (
            "regex_filter",
            "org.apache.flume.interceptor.RegexFilteringInterceptor$Builder",
        ),
        (
            "regex_extractor",
            "org.apache.flume.interceptor.RegexExtractorInterceptor$Builder",
        ),
        (
            "remove_header",
            "org.apache.flume.interceptor.RemoveHeaderInterceptor$Builder",
        ),
        (
            "search_replace",
            "org.apache.flume.interceptor.SearchAndReplaceInterceptor$Builder",
        ),
        (
            "",
            "org.apache.flume.sink.solr.morphline.UUIDInterceptor$Builder",
        ),
        (
            "",
            "org.apache.flume.sink.solr.morphline.MorphlineInterceptor$Builder",
        ),
    ],
};

impl<T: Copy> Types<T> {
    fn aliases(&self) -> Vec<String> {
        self.ours.iter().map(|(a, _, _)| (*a).to_string()).collect()
    }

    /// Aliases match case-insensitively (Flume upper-cases them); class names exactly.
    fn resolve(&self, ctx: &Ctx<'_>, v: &Val, component: &'static str) -> Result<T, ConfigError> {
        let value = v.value.as_str();
        for (alias, class, t) in self.ours {
            if alias.eq_ignore_ascii_case(value) || *class == Some(value) {
                return Ok(*t);
            }
        }
        let flume = self.flume_only.iter().any(|(alias, class)| {
            (!alias.is_empty() && alias.eq_ignore_ascii_case(value)) || *class == value
        }) || value.starts_with("org.apache.flume.");
        if flume {
            return Err(ctx.unsupported(
                "type",
                v.line,
                format!("Flume's {component} type `{value}`"),
                format!(
                    "flumen's {component} types are: {}",
                    self.aliases().join(", ")
                ),
            ));
        }
        Err(ConfigError::UnknownType {
            file: ctx.file.to_string(),
            line: v.line,
            key: ctx.full("type"),
            component,
            value: value.to_string(),
            known: self.aliases(),
        })
    }
}

/// A channel as built, with what the batch-size checks need.
struct BuiltChannel {
    config: ChannelConfig,
    tc_line: usize,
    checkpoint_line: usize,
    data_line: usize,
}

/// A name listed in an agent-level list.
#[derive(Clone, Debug)]
struct Listed {
    name: String,
    line: usize,
}

/// Components of one kind: name → keys, in order of first appearance.
#[derive(Default)]
struct Components {
    order: Vec<String>,
    keys: HashMap<String, Vec<Entry>>,
}

impl Components {
    fn add(&mut self, name: &str, entry: Entry) {
        if !self.keys.contains_key(name) {
            self.order.push(name.to_string());
        }
        self.keys.entry(name.to_string()).or_default().push(entry);
    }

    fn take(&mut self, name: &str) -> Vec<Entry> {
        self.keys.remove(name).unwrap_or_default()
    }
}

/// Builds agent `agent` from `props`.
pub(crate) fn build(
    props: &Properties,
    file: &str,
    agent: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(AgentConfig, Vec<ConfigWarning>), ConfigError> {
    let mut warnings = Vec::new();
    let warn = |warnings: &mut Vec<ConfigWarning>, line: usize, key: &str, kind: WarningKind| {
        warnings.push(ConfigWarning {
            file: file.to_string(),
            line,
            key: key.to_string(),
            kind,
        })
    };

    // Agents and the selected agent's keys (Flume: the agent name runs to the first dot).
    let mut agents: Vec<String> = Vec::new();
    let mut mine = Vec::new();
    for p in &props.entries {
        let key = p.key.trim();
        match key.split_once('.') {
            Some((a, _)) if !a.is_empty() => {
                if !agents.iter().any(|x| x == a) {
                    agents.push(a.to_string());
                }
                if a == agent {
                    mine.push(p);
                }
            }
            _ => warn(&mut warnings, p.line, key, WarningKind::NoAgentPrefix),
        }
    }
    if mine.is_empty() {
        return Err(ConfigError::UnknownAgent {
            file: file.to_string(),
            agent: agent.to_string(),
            found: agents,
        });
    }
    let first_line = mine.iter().map(|p| p.line).min().unwrap_or(1);
    let agent_prefix = format!("{agent}.");
    for d in &props.duplicates {
        if d.key.trim().starts_with(&agent_prefix) {
            warn(
                &mut warnings,
                d.line,
                d.key.trim(),
                WarningKind::DuplicateKey {
                    previous_line: d.previous_line,
                },
            );
        }
    }

    // Substitute, trim, and sort keys into lists and components.
    let mut lists: HashMap<&'static str, Val> = HashMap::new();
    let mut comps: HashMap<&'static str, Components> = HashMap::new();
    for p in mine {
        let key = p.key.trim();
        let rest = &key[agent_prefix.len()..];
        let value = match subst::substitute(&p.value, env) {
            Ok(s) => {
                for reference in s.untouched {
                    warn(
                        &mut warnings,
                        p.line,
                        key,
                        WarningKind::NotSubstituted { reference },
                    );
                }
                s.value
            }
            Err(Problem::Unset { name }) => {
                return Err(ConfigError::EnvVar {
                    file: file.to_string(),
                    line: p.line,
                    key: key.to_string(),
                    name,
                })
            }
            Err(Problem::Unsupported { reference, why }) => {
                return Err(ConfigError::Unsupported {
                    file: file.to_string(),
                    line: p.line,
                    key: key.to_string(),
                    feature: format!("the reference `{reference}`"),
                    hint: why.to_string(),
                })
            }
        };
        // Flume trims every value (and ignores empty ones) after substitution.
        let value = value.trim().to_string();
        if value.is_empty() {
            warn(&mut warnings, p.line, key, WarningKind::EmptyValue);
            continue;
        }
        if let Some(list) = AGENT_KEYS.iter().find(|k| **k == rest) {
            lists.insert(
                list,
                Val {
                    value,
                    line: p.line,
                },
            );
            continue;
        }
        let component = AGENT_KEYS.iter().find_map(|k| {
            let after = rest.strip_prefix(k)?.strip_prefix('.')?;
            Some((*k, after))
        });
        match component {
            Some((kind, after)) => match after.split_once('.') {
                Some((name, sub)) if !name.is_empty() && !sub.is_empty() => {
                    comps.entry(kind).or_default().add(
                        name,
                        Entry {
                            key: sub.to_string(),
                            value,
                            line: p.line,
                        },
                    );
                }
                _ => {
                    // `a1.sources.r1 = netcat`: a component key without a sub-key.
                    let suggestion = if after.is_empty() || after.ends_with('.') {
                        None
                    } else {
                        Some(format!("{key}.type"))
                    };
                    warn(
                        &mut warnings,
                        p.line,
                        key,
                        WarningKind::UnknownKey {
                            nearest: suggestion,
                        },
                    );
                }
            },
            None => {
                let (head, tail) = match rest.split_once('.') {
                    Some((h, t)) => (h, Some(t)),
                    None => (rest, None),
                };
                let near = nearest(head, AGENT_KEYS.iter().copied()).map(|n| match tail {
                    Some(t) => format!("{agent}.{n}.{t}"),
                    None => format!("{agent}.{n}"),
                });
                warn(
                    &mut warnings,
                    p.line,
                    key,
                    WarningKind::UnknownKey { nearest: near },
                );
            }
        }
    }

    // Features we do not have.
    if let Some(v) = lists.get("sinkgroups") {
        return Err(ConfigError::Unsupported {
            file: file.to_string(),
            line: v.line,
            key: format!("{agent}.sinkgroups"),
            feature: "sink groups (failover, load_balance)".into(),
            hint: "Remove the sink groups: each sink then drains its channel on its own".into(),
        });
    }
    if let Some(v) = lists.get("configfilters") {
        return Err(ConfigError::Unsupported {
            file: file.to_string(),
            line: v.line,
            key: format!("{agent}.configfilters"),
            feature: "config filters".into(),
            hint: "Use ${env:NAME} in values to read environment variables".into(),
        });
    }

    let listed =
        |which: &'static str, warnings: &mut Vec<ConfigWarning>| -> (Vec<Listed>, Option<usize>) {
            let Some(v) = lists.get(which) else {
                return (Vec::new(), None);
            };
            let mut out: Vec<Listed> = Vec::new();
            for name in v.value.split_whitespace() {
                if out.iter().any(|l| l.name == name) {
                    warn(
                        warnings,
                        v.line,
                        &format!("{agent}.{which}"),
                        WarningKind::DuplicateName {
                            name: name.to_string(),
                        },
                    );
                } else {
                    out.push(Listed {
                        name: name.to_string(),
                        line: v.line,
                    });
                }
            }
            (out, Some(v.line))
        };
    let (source_names, sources_line) = listed("sources", &mut warnings);
    let (channel_names, _) = listed("channels", &mut warnings);
    let (sink_names, sinks_line) = listed("sinks", &mut warnings);

    if source_names.is_empty() && sink_names.is_empty() {
        return Err(ConfigError::MissingKey {
            file: file.to_string(),
            line: first_line,
            key: format!("{agent}.sources"),
            hint: format!(
                "agent `{agent}` has no sources and no sinks, so there is nothing to run. List them: `{agent}.sources = r1`, `{agent}.sinks = k1`"
            ),
        });
    }
    if channel_names.is_empty() {
        return Err(ConfigError::MissingKey {
            file: file.to_string(),
            line: sources_line.or(sinks_line).unwrap_or(first_line),
            key: format!("{agent}.channels"),
            hint: format!(
                "sources and sinks exchange events through channels: list them, e.g. `{agent}.channels = c1`, and configure each (`{agent}.channels.c1.type = file`)"
            ),
        });
    }

    let mut src_comps = comps.remove("sources").unwrap_or_default();
    let mut ch_comps = comps.remove("channels").unwrap_or_default();
    let mut sink_comps = comps.remove("sinks").unwrap_or_default();

    // Channels.
    let mut channels: Vec<BuiltChannel> = Vec::new();
    for l in &channel_names {
        let entries = ch_comps.take(&l.name);
        let prefix = format!("{agent}.channels.{}.", l.name);
        let mut ctx = Ctx::new(file, prefix, l.line, entries, env);
        let built = build_channel(&mut ctx, &l.name)?;
        ctx.finish(&mut warnings);
        channels.push(built);
    }
    check_shared_dirs(file, agent, &channels)?;
    let channel_list: Vec<String> = channel_names.iter().map(|l| l.name.clone()).collect();
    let unlisted_channels: Vec<String> = ch_comps.order.clone();
    let lookup = |name: &str| channels.iter().find(|c| c.config.name == name);
    let unknown_channel = |key: String, line: usize, channel: &str| {
        let mut hint = String::new();
        if channel.contains(',') {
            hint.push_str("; channel lists are separated by spaces, not commas");
        } else if unlisted_channels.iter().any(|c| c == channel) {
            hint = format!("; `{channel}` has settings but is not listed in `{agent}.channels`");
        } else if let Some(n) = nearest(channel, channel_list.iter().map(String::as_str)) {
            hint = format!("; did you mean `{n}`?");
        }
        ConfigError::UnknownChannel {
            file: file.to_string(),
            line,
            key,
            channel: channel.to_string(),
            known: channel_list.clone(),
            hint: hint.into_boxed_str(),
        }
    };
    let over_capacity = |ctx: &Ctx<'_>, batch_key: &str, batch: usize, ch: &BuiltChannel| {
        let tc = ch.config.kind.transaction_capacity();
        if batch > tc {
            Err(ConfigError::BatchOverTransactionCapacity {
                file: file.to_string(),
                line: ctx.line_of(batch_key),
                key: ctx.full(batch_key),
                batch_size: batch as u64,
                channel_key: format!("{agent}.channels.{}.transactionCapacity", ch.config.name),
                channel_line: ch.tc_line,
                transaction_capacity: tc as u64,
            })
        } else {
            Ok(())
        }
    };

    // Sources.
    let mut sources = Vec::new();
    let mut used: HashSet<String> = HashSet::new();
    for l in &source_names {
        let entries = src_comps.take(&l.name);
        let prefix = format!("{agent}.sources.{}.", l.name);
        let mut ctx = Ctx::new(file, prefix, l.line, entries, env);
        let t = ctx.required(
            "type",
            &format!(
                "every listed source needs a type ({}); Flume would silently drop this source",
                SOURCE_TYPES.aliases().join(", ")
            ),
        )?;
        ctx.home_line = t.line;
        let kind = SOURCE_TYPES.resolve(&ctx, &t, "source")?;
        let hint = match ctx.has("channel") {
            Some(line) => format!(
                "sources take `channels` (plural, space-separated); line {line} sets `channel`"
            ),
            None => "name the channels this source puts into, separated by spaces".to_string(),
        };
        let ch = ctx.required("channels", &hint)?;
        let mut bound: Vec<String> = Vec::new();
        for name in ch.value.split_whitespace() {
            if bound.iter().any(|b| b == name) {
                ctx.warn(
                    ch.line,
                    "channels",
                    WarningKind::DuplicateName {
                        name: name.to_string(),
                    },
                );
                continue;
            }
            if lookup(name).is_none() {
                return Err(unknown_channel(ctx.full("channels"), ch.line, name));
            }
            bound.push(name.to_string());
        }
        let interceptors = source_common(&mut ctx)?;
        let kind = build_source(&mut ctx, kind)?;
        if let Some(batch) = kind.batch_size() {
            for name in &bound {
                if let Some(c) = lookup(name) {
                    over_capacity(&ctx, "batchSize", batch, c)?;
                }
            }
        }
        used.extend(bound.iter().cloned());
        ctx.finish(&mut warnings);
        sources.push(SourceConfig {
            name: l.name.clone(),
            channels: bound,
            kind,
            interceptors,
        });
    }

    // Sinks.
    let mut sinks = Vec::new();
    for l in &sink_names {
        let entries = sink_comps.take(&l.name);
        let prefix = format!("{agent}.sinks.{}.", l.name);
        let mut ctx = Ctx::new(file, prefix, l.line, entries, env);
        let t = ctx.required(
            "type",
            &format!(
                "every listed sink needs a type ({}); Flume would silently drop this sink",
                SINK_TYPES.aliases().join(", ")
            ),
        )?;
        ctx.home_line = t.line;
        let kind = SINK_TYPES.resolve(&ctx, &t, "sink")?;
        let hint = match ctx.has("channels") {
            Some(line) => {
                format!("sinks take one `channel` (singular); line {line} sets `channels`")
            }
            None => "name the one channel this sink drains".to_string(),
        };
        let ch = ctx.required("channel", &hint)?;
        if ch.value.split_whitespace().count() > 1 {
            return Err(ctx.bad(
                "channel",
                &ch,
                "one channel name: a sink drains exactly one channel (bind more sinks to drain more channels)",
            ));
        }
        let Some(channel) = lookup(&ch.value) else {
            return Err(unknown_channel(ctx.full("channel"), ch.line, &ch.value));
        };
        let (kind, batch_key) = build_sink(&mut ctx, kind)?;
        if let (Some(batch), Some(key)) = (kind.batch_size(), batch_key) {
            over_capacity(&ctx, key, batch, channel)?;
        }
        used.insert(ch.value.clone());
        ctx.finish(&mut warnings);
        sinks.push(SinkConfig {
            name: l.name.clone(),
            channel: ch.value,
            kind,
        });
    }

    // Components configured but not listed; channels nobody uses.
    for (kind, comps) in [
        ("sources", &src_comps),
        ("channels", &ch_comps),
        ("sinks", &sink_comps),
    ] {
        for name in &comps.order {
            if let Some(entries) = comps.keys.get(name) {
                let line = entries.iter().map(|e| e.line).min().unwrap_or(first_line);
                warn(
                    &mut warnings,
                    line,
                    &format!("{agent}.{kind}.{name}"),
                    WarningKind::UnlistedComponent {
                        list_key: format!("{agent}.{kind}"),
                    },
                );
            }
        }
    }
    for kind in ["sinkgroups", "configfilters"] {
        if let Some(comps) = comps.get(kind) {
            for name in &comps.order {
                if let Some(entries) = comps.keys.get(name) {
                    let line = entries.iter().map(|e| e.line).min().unwrap_or(first_line);
                    warn(
                        &mut warnings,
                        line,
                        &format!("{agent}.{kind}.{name}"),
                        WarningKind::UnlistedComponent {
                            list_key: format!("{agent}.{kind}"),
                        },
                    );
                }
            }
        }
    }
    for l in &channel_names {
        if !used.contains(&l.name) {
            warn(
                &mut warnings,
                l.line,
                &format!("{agent}.channels.{}", l.name),
                WarningKind::UnusedChannel,
            );
        }
    }

    warnings.sort_by_key(|w| w.line);
    Ok((
        AgentConfig {
            name: agent.to_string(),
            sources,
            channels: channels.into_iter().map(|c| c.config).collect(),
            sinks,
        },
        warnings,
    ))
}

/// Two file channels must not share a directory (each holds its own lock and segments).
fn check_shared_dirs(
    file: &str,
    agent: &str,
    channels: &[BuiltChannel],
) -> Result<(), ConfigError> {
    let mut seen: Vec<(&Path, &str)> = Vec::new();
    for c in channels {
        let ChannelKind::File(f) = &c.config.kind else {
            continue;
        };
        let mut mine: Vec<(&Path, &'static str, usize)> = vec![(
            f.checkpoint_dir.as_path(),
            "checkpointDir",
            c.checkpoint_line,
        )];
        mine.extend(
            f.data_dirs
                .iter()
                .map(|d| (d.as_path(), "dataDirs", c.data_line)),
        );
        for (dir, key, line) in &mine {
            if let Some((_, other)) = seen.iter().find(|(p, _)| p == dir) {
                return Err(ConfigError::BadValue {
                    file: file.to_string(),
                    line: *line,
                    key: format!("{agent}.channels.{}.{key}", c.config.name),
                    value: dir.display().to_string(),
                    expected: format!(
                        "a directory of its own: channel `{other}` uses it too, and two file channels cannot share a directory"
                    ),
                });
            }
        }
        seen.extend(mine.iter().map(|(d, _, _)| (*d, c.config.name.as_str())));
    }
    Ok(())
}

fn build_channel(ctx: &mut Ctx<'_>, name: &str) -> Result<BuiltChannel, ConfigError> {
    let t = ctx.required(
        "type",
        &format!(
            "every listed channel needs a type ({}); Flume would silently drop this channel",
            CHANNEL_TYPES.aliases().join(", ")
        ),
    )?;
    ctx.home_line = t.line;
    let kind = match CHANNEL_TYPES.resolve(ctx, &t, "channel")? {
        ChannelType::File => ChannelKind::File(file_channel(ctx, name)?),
        ChannelType::Memory => ChannelKind::Memory(memory_channel(ctx, name)?),
    };
    Ok(BuiltChannel {
        config: ChannelConfig {
            name: name.to_string(),
            kind,
        },
        tc_line: ctx.line_of("transactionCapacity"),
        checkpoint_line: ctx.line_of("checkpointDir"),
        data_line: ctx.line_of("dataDirs"),
    })
}

/// Turns a channel's own bounds check into an error naming our line and key. `effective`
/// gives the value in force for keys that may have been defaulted.
fn channel_check(
    ctx: &mut Ctx<'_>,
    result: Result<(), ChannelError>,
    effective: &[(&str, String)],
) -> Result<(), ConfigError> {
    match result {
        Ok(()) => Ok(()),
        Err(ChannelError::Config { key, message, .. }) => {
            let line = ctx.line_of(key);
            let value = match ctx.entries.iter().find(|e| e.key == key) {
                Some(e) => e.value.clone(),
                None => match effective.iter().find(|(k, _)| *k == key) {
                    Some((_, v)) => format!("{v} (the default)"),
                    None => "(the default)".to_string(),
                },
            };
            let expected = if key == "transactionCapacity" || key == "capacity" {
                format!(
                    "{message}. transactionCapacity must be at least 1 and at most capacity (Flume's rule): lower one or raise the other"
                )
            } else {
                message
            };
            Err(ConfigError::BadValue {
                file: ctx.file.to_string(),
                line,
                key: ctx.full(key),
                value,
                expected,
            })
        }
        Err(other) => Err(ConfigError::BadValue {
            file: ctx.file.to_string(),
            line: ctx.home_line,
            key: ctx.full("type"),
            value: String::new(),
            expected: other.to_string(),
        }),
    }
}

fn from_str_key<T: FromStr<Err = String>>(
    ctx: &mut Ctx<'_>,
    key: &'static str,
) -> Result<Option<T>, ConfigError> {
    Ok(ctx.parsed(key, |s| s.parse::<T>())?.map(|(t, _)| t))
}

fn file_channel(ctx: &mut Ctx<'_>, name: &str) -> Result<FileChannelConfig, ConfigError> {
    let mut cfg = FileChannelConfig::new(&Path::new(DEFAULT_DATA_ROOT).join(name));

    // Flume's encryption is an error, not something to ignore: data would be stored in clear.
    if let Some((key, v)) = ctx.take_prefixed("encryption.").into_iter().next() {
        return Err(ConfigError::Unsupported {
            file: ctx.file.to_string(),
            line: v.line,
            key: ctx.full(&key),
            feature: "file channel encryption".into(),
            hint: "flumen would store events in clear. Remove the encryption.* keys and use an encrypted filesystem (e.g. dm-crypt) for the channel directories".into(),
        });
    }

    if let Some(v) = ctx.get("checkpointDir") {
        cfg.checkpoint_dir = PathBuf::from(&v.value);
    }
    if let Some(v) = ctx.get("dataDirs") {
        let dirs: Vec<PathBuf> = v
            .value
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(PathBuf::from)
            .collect();
        if dirs.is_empty() {
            return Err(ctx.bad(
                "dataDirs",
                &v,
                "one or more directories separated by commas",
            ));
        }
        cfg.data_dirs = dirs;
    }
    cfg.capacity = ctx.number("capacity", cfg.capacity, 1, "events")?;
    cfg.transaction_capacity =
        ctx.size("transactionCapacity", cfg.transaction_capacity, 1, "events")?;
    if let Some(s) = ctx.opt_number("keep-alive", 0, "seconds")? {
        cfg.keep_alive = Duration::from_secs(s);
    }
    if let Some((n, v)) = ctx.parsed("maxFileSize", |s| parse_u64(s, 64 * 1024, "bytes"))? {
        if n > MAX_SEGMENT_SIZE {
            return Err(ctx.bad(
                "maxFileSize",
                &v,
                format!(
                    "at most {MAX_SEGMENT_SIZE} bytes (2 GiB): record offsets in a segment are 32-bit. (Flume silently caps it at 1623195647, Integer.MAX_VALUE - 500 MiB)"
                ),
            ));
        }
        cfg.max_file_size = n;
    }
    if let Some((n, v)) = ctx.parsed("minimumRequiredSpace", |s| parse_u64(s, 0, "bytes"))? {
        if n < FLOOR_MINIMUM_REQUIRED_SPACE {
            return Err(ctx.bad(
                "minimumRequiredSpace",
                &v,
                format!(
                    "at least {FLOOR_MINIMUM_REQUIRED_SPACE} bytes (1 MiB, Flume's floor; Flume silently raises smaller values)"
                ),
            ));
        }
        cfg.minimum_required_space = n;
    }
    if let Some(ms) = ctx.opt_number("checkpointInterval", 1, "milliseconds")? {
        cfg.checkpoint_interval = Duration::from_millis(ms);
    }
    cfg.byte_capacity = ctx.opt_number("byteCapacity", 1, "bytes")?;
    if let Some(io) = from_str_key::<IoKind>(ctx, "io")? {
        cfg.io = io;
    }
    if let Some(direct) = ctx.parsed("directIo", parse_bool)? {
        cfg.direct_io = direct.0;
    }
    if let Some(n) = ctx.opt_number("spareSegments", 0, "segments")? {
        cfg.spare_segments = usize::try_from(n).unwrap_or(usize::MAX);
    }
    if let Some(p) = from_str_key::<CorruptionPolicy>(ctx, "corruptionPolicy")? {
        cfg.corruption_policy = p;
    }

    // fsync (ours) or Flume's fsyncPerTransaction + fsyncInterval.
    let ours = from_str_key::<FsyncPolicy>(ctx, "fsync")?;
    let per_txn = ctx.parsed("fsyncPerTransaction", parse_bool)?;
    let interval = ctx.parsed("fsyncInterval", |s| parse_u64(s, 1, "seconds"))?;
    match ours {
        Some(policy) => {
            cfg.fsync = policy;
            for (key, v) in [
                ("fsyncPerTransaction", per_txn.map(|p| p.1)),
                ("fsyncInterval", interval.map(|p| p.1)),
            ] {
                if let Some(v) = v {
                    ctx.warn(
                        v.line,
                        key,
                        WarningKind::IgnoredKey {
                            reason: format!(
                                "`fsync` (line {}) decides instead",
                                ctx.line_of("fsync")
                            ),
                        },
                    );
                }
            }
        }
        None => match per_txn {
            Some((false, _)) => {
                let secs = interval.map_or(5, |(s, _)| s);
                cfg.fsync = FsyncPolicy::Interval(Duration::from_secs(secs));
            }
            Some((true, _)) | None => {
                cfg.fsync = FsyncPolicy::EveryCommit;
                if let Some((_, v)) = interval {
                    ctx.warn(v.line, "fsyncInterval", WarningKind::IgnoredKey {
                        reason: "it applies only with fsyncPerTransaction = false (as in Flume); commits are synced every time".into(),
                    });
                }
            }
        },
    }

    ctx.ignore(
        "useDualCheckpoints",
        "flumen always keeps the two newest checkpoints in checkpointDir and falls back to the older one (or to replay) by itself",
    );
    ctx.ignore(
        "backupCheckpointDir",
        "no separate backup directory: the two newest checkpoints are kept in checkpointDir",
    );
    ctx.ignore(
        "compressBackupCheckpoint",
        "there is no backup checkpoint to compress",
    );
    ctx.ignore("checkpointOnClose", "flumen always checkpoints on close");
    ctx.ignore(
        "use-fast-replay",
        "flumen has one replay, which reads record headers, not event bodies",
    );
    ctx.ignore(
        "use-log-replay-v1",
        "flumen has one log format and one replay",
    );

    let validated = cfg.validate(name);
    let effective = [
        ("capacity", cfg.capacity.to_string()),
        ("transactionCapacity", cfg.transaction_capacity.to_string()),
        ("maxFileSize", cfg.max_file_size.to_string()),
    ];
    channel_check(ctx, validated, &effective)?;
    Ok(cfg)
}

fn memory_channel(ctx: &mut Ctx<'_>, name: &str) -> Result<MemoryChannelConfig, ConfigError> {
    let mut cfg = MemoryChannelConfig::default();
    cfg.capacity = ctx.number("capacity", cfg.capacity, 1, "events")?;
    cfg.transaction_capacity =
        ctx.size("transactionCapacity", cfg.transaction_capacity, 1, "events")?;
    if let Some(s) = ctx.opt_number("keep-alive", 0, "seconds")? {
        cfg.keep_alive = Duration::from_secs(s);
    }
    cfg.byte_capacity = ctx.opt_number("byteCapacity", 1, "bytes")?;
    ctx.ignore(
        "byteCapacityBufferPercentage",
        "flumen's byteCapacity counts body bytes exactly and holds nothing back for headers (to mirror Flume, give 80% of Flume's byteCapacity)",
    );
    let validated = cfg.validate(name);
    let effective = [
        ("capacity", cfg.capacity.to_string()),
        ("transactionCapacity", cfg.transaction_capacity.to_string()),
    ];
    channel_check(ctx, validated, &effective)?;
    Ok(cfg)
}

/// Keys every source has besides `type` and `channels`: the selector and interceptors.
fn source_common(ctx: &mut Ctx<'_>) -> Result<Vec<InterceptorConfig>, ConfigError> {
    if let Some(v) = ctx.get("selector.type") {
        let t = v.value.as_str();
        let replicating = t.eq_ignore_ascii_case("replicating")
            || t == "org.apache.flume.channel.ReplicatingChannelSelector";
        if !replicating {
            let flume = ["multiplexing", "load_balancing"]
                .iter()
                .any(|k| k.eq_ignore_ascii_case(t))
                || t.starts_with("org.apache.flume.");
            if flume {
                return Err(ctx.unsupported(
                    "selector.type",
                    v.line,
                    format!("the `{t}` channel selector"),
                    "Only `replicating` (every event to every channel, the default) exists. Use one source per destination channel instead",
                ));
            }
            return Err(ctx.bad(
                "selector.type",
                &v,
                "replicating (the default and the only selector flumen has)",
            ));
        }
    }
    if let Some(v) = ctx.get("selector.optional") {
        return Err(ctx.unsupported(
            "selector.optional",
            v.line,
            "optional channels of the replicating selector",
            "Every bound channel is required: a put fails unless every channel accepts it. Remove the key, or give the optional channel its own source",
        ));
    }
    interceptors(ctx)
}

/// `interceptors` (names separated by spaces, run in that order) and each listed
/// interceptor's `interceptors.<name>.*` keys, read as Flume's ChannelProcessor reads them: a
/// listed interceptor without a `type` is an error; keys of interceptors the list does not
/// name are reported and ignored.
fn interceptors(ctx: &mut Ctx<'_>) -> Result<Vec<InterceptorConfig>, ConfigError> {
    let list = ctx.get("interceptors");
    let keys = ctx.take_prefixed("interceptors.");
    let mut claimed = vec![false; keys.len()];
    let mut out: Vec<InterceptorConfig> = Vec::new();
    if let Some(list) = &list {
        let mut names: Vec<&str> = Vec::new();
        for name in list.value.split_whitespace() {
            if names.contains(&name) {
                ctx.warn(
                    list.line,
                    "interceptors",
                    WarningKind::DuplicateName {
                        name: name.to_string(),
                    },
                );
            } else {
                names.push(name);
            }
        }
        for name in names {
            let own = format!("interceptors.{name}.");
            let mut entries = Vec::new();
            for (i, (key, v)) in keys.iter().enumerate() {
                if let Some(sub) = key.strip_prefix(&own).filter(|s| !s.is_empty()) {
                    claimed[i] = true;
                    entries.push(Entry {
                        key: sub.to_string(),
                        value: v.value.clone(),
                        line: v.line,
                    });
                }
            }
            let mut ic = Ctx::new(ctx.file, ctx.full(&own), list.line, entries, ctx.env);
            let built = interceptor(&mut ic, name);
            ic.finish(&mut ctx.warnings);
            out.push(built?);
        }
    }
    // What is left belongs to no listed interceptor: one warning per interceptor name.
    let mut unlisted: Vec<&str> = Vec::new();
    for ((key, v), _) in keys.iter().zip(&claimed).filter(|(_, c)| !**c) {
        let rest = &key["interceptors.".len()..];
        match rest.split_once('.') {
            Some((name, sub)) if !name.is_empty() && !sub.is_empty() => {
                if unlisted.contains(&name) {
                    continue;
                }
                unlisted.push(name);
                let kind = WarningKind::UnlistedComponent {
                    list_key: ctx.full("interceptors"),
                };
                ctx.warn(v.line, &format!("interceptors.{name}"), kind);
            }
            _ => {
                let nearest = (!rest.is_empty() && !rest.ends_with('.'))
                    .then(|| ctx.full(&format!("interceptors.{rest}.type")));
                ctx.warn(v.line, key, WarningKind::UnknownKey { nearest });
            }
        }
    }
    Ok(out)
}

/// One listed interceptor; `ic` holds its keys (`type`, ...) with the full prefix
/// `<agent>.sources.<source>.interceptors.<name>.`.
fn interceptor(ic: &mut Ctx<'_>, name: &str) -> Result<InterceptorConfig, ConfigError> {
    let t = ic.required(
        "type",
        &format!(
            "interceptor `{name}` is listed but has no type ({}); Flume refuses to start such a source too",
            INTERCEPTOR_TYPES.aliases().join(", ")
        ),
    )?;
    ic.home_line = t.line;
    let value = t.value.as_str();
    // Anything outside org.apache.flume is a user's own Java class, which flumen cannot load.
    if value.contains('.') && !value.starts_with("org.apache.flume.") {
        return Err(ic.unsupported(
            "type",
            t.line,
            format!("the custom interceptor class `{value}`"),
            format!(
                "flumen cannot load Java classes; its interceptor types are: {}. Remove interceptor `{name}` from the list",
                INTERCEPTOR_TYPES.aliases().join(", ")
            ),
        ));
    }
    let kind = match INTERCEPTOR_TYPES.resolve(ic, &t, "interceptor")? {
        InterceptorType::Timestamp => InterceptorKind::Timestamp {
            header_name: ic
                .get("headerName")
                .map_or_else(|| "timestamp".to_string(), |v| v.value),
            preserve_existing: ic.boolean("preserveExisting", false)?,
        },
        InterceptorType::Host => InterceptorKind::Host {
            host_header: ic
                .get("hostHeader")
                .map_or_else(|| "host".to_string(), |v| v.value),
            use_ip: ic.boolean("useIP", true)?,
            preserve_existing: ic.boolean("preserveExisting", false)?,
        },
        InterceptorType::Static => InterceptorKind::Static {
            key: ic.get("key").map_or_else(|| "key".to_string(), |v| v.value),
            value: ic
                .get("value")
                .map_or_else(|| "value".to_string(), |v| v.value),
            preserve_existing: ic.boolean("preserveExisting", true)?,
        },
    };
    Ok(InterceptorConfig {
        name: name.to_string(),
        kind,
    })
}

fn build_source(ctx: &mut Ctx<'_>, t: SourceType) -> Result<SourceKind, ConfigError> {
    Ok(match t {
        SourceType::Seq => SourceKind::Seq {
            batch_size: ctx.size("batchSize", 1, 1, "events")?,
            total_events: ctx.opt_number("totalEvents", 0, "events")?,
        },
        SourceType::Stress => {
            let size = ctx.size("size", 500, 0, "bytes")?;
            // Flume's default and "no limit" is -1; a negative number means the same.
            let max_total_events = ctx
                .parsed("maxTotalEvents", |s| match s.parse::<i64>() {
                    Ok(n) if n < 0 => Ok(None),
                    Ok(n) => Ok(Some(n as u64)),
                    Err(_) => Err("a whole number of events, or -1 for no limit".to_string()),
                })?
                .and_then(|(n, _)| n);
            ctx.ignore(
                "maxSuccessfulEvents",
                "flumen's stress source retries a full channel instead of failing events, so \
                 maxTotalEvents already counts only successful events",
            );
            let batch_size = ctx.size("batchSize", 1, 1, "events")?;
            let max_events_per_second = ctx
                .parsed("maxEventsPerSecond", |s| match s.parse::<i64>() {
                    Ok(n) if n <= 0 => Ok(0),
                    Ok(n) => Ok(n as u64),
                    Err(_) => Err("a whole number of events a second, 0 for no limit".to_string()),
                })?
                .map_or(0, |(n, _)| n);
            SourceKind::Stress {
                size,
                max_total_events,
                batch_size,
                max_events_per_second,
            }
        }
        SourceType::Netcat => {
            let bind = ctx.required(
                "bind",
                "the address to listen on, e.g. 0.0.0.0 or 127.0.0.1",
            )?;
            let port = ctx.required("port", "the TCP port to listen on, e.g. 44444")?;
            let port = port
                .value
                .parse::<u16>()
                .map_err(|_| ctx.bad("port", &port, "a TCP port number, 0 to 65535"))?;
            let max_line_length = ctx.size("max-line-length", 512, 1, "bytes")?;
            let ack_every_event = ctx.boolean("ack-every-event", true)?;
            ctx.only("encoding", &["utf-8", "utf8"], "the netcat encoding")?;
            SourceKind::Netcat {
                bind: bind.value,
                port,
                max_line_length,
                ack_every_event,
            }
        }
        SourceType::Avro => {
            let bind = ctx.required(
                "bind",
                "the address to listen on, e.g. 0.0.0.0 or 127.0.0.1",
            )?;
            let port = ctx.required("port", "the TCP port to listen on, e.g. 41414")?;
            let port = port
                .value
                .parse::<u16>()
                .map_err(|_| ctx.bad("port", &port, "a TCP port number, 0 to 65535"))?;
            let threads = ctx
                .opt_number("threads", 1, "threads")?
                .map(|n| usize::try_from(n).unwrap_or(usize::MAX));
            let max_connections = ctx.size("max-connections", 256, 1, "connections")?;
            let max_frame_bytes = ctx.number("max-frame-bytes", 64 << 20, 1024, "bytes")?;
            if max_frame_bytes > u64::from(u32::MAX) {
                let v = ctx.get("max-frame-bytes").unwrap_or(Val {
                    value: max_frame_bytes.to_string(),
                    line: ctx.home_line,
                });
                return Err(ctx.bad(
                    "max-frame-bytes",
                    &v,
                    format!("a whole number of bytes, at most {}", u32::MAX),
                ));
            }
            let deflate = avro_compression(ctx, "the avro source compression-type")?;
            let ssl = if ctx.boolean("ssl", false)? {
                Some(avro_server_tls(ctx)?)
            } else {
                for key in [
                    "keystore",
                    "keystore-password",
                    "keystore-type",
                    "ssl-cert",
                    "ssl-key",
                ]
                .into_iter()
                .chain(TLS_FILTER_KEYS)
                {
                    ctx.ignore(key, "only used with `ssl = true`");
                }
                None
            };
            let ip_filter = if ctx.boolean("ipFilter", false)? {
                // Flume's AvroSource refuses `ipFilter = true` without rules at configure time.
                let rules = ctx
                    .get("ipFilterRules")
                    .filter(|v| !v.value.trim().is_empty());
                let Some(rules) = rules else {
                    return Err(ctx.missing(
                        "ipFilterRules",
                        format!(
                            "`ipFilter = true` needs rules: {}",
                            crate::source::ip_filter::SYNTAX
                        ),
                    ));
                };
                Some(
                    crate::source::ip_filter::parse(&rules.value)
                        .map_err(|e| ctx.bad("ipFilterRules", &rules, e))?,
                )
            } else {
                ctx.ignore("ipFilterRules", "they apply only with `ipFilter = true`");
                None
            };
            let idle_timeout_secs = ctx.number("idle-timeout", 60, 1, "seconds")?;
            SourceKind::Avro {
                bind: bind.value,
                port,
                threads,
                max_connections,
                max_frame_bytes,
                deflate,
                ip_filter,
                idle_timeout_secs,
                ssl,
            }
        }
        SourceType::Exec => {
            let command = ctx.required(
                "command",
                "the command to run, e.g. `tail -F /var/log/app.log`",
            )?;
            let shell = ctx.get("shell").map(|v| v.value);
            let restart = ctx.boolean("restart", false)?;
            let restart_throttle_ms = ctx.number("restartThrottle", 10_000, 0, "milliseconds")?;
            let batch_size = ctx.size("batchSize", 20, 1, "events")?;
            let batch_timeout_ms = ctx.number("batchTimeout", 3_000, 1, "milliseconds")?;
            let log_stderr = ctx.boolean("logStdErr", false)?;
            if let Some(v) = ctx.get("charset") {
                if !is_utf8_name(&v.value) {
                    return Err(ctx.unsupported(
                        "charset",
                        v.line,
                        format!("the exec charset `{}`", v.value),
                        "Output is read as UTF-8 bytes; remove the key or set it to UTF-8",
                    ));
                }
            }
            SourceKind::Exec {
                command: command.value,
                shell,
                restart,
                restart_throttle_ms,
                batch_size,
                batch_timeout_ms,
                log_stderr,
            }
        }
        SourceType::Stdin => SourceKind::Stdin {
            batch_size: ctx.size("batchSize", 100, 1, "events")?,
        },
    })
}

/// Returns the sink and the key its batch size is read from (for error messages).
fn build_sink(
    ctx: &mut Ctx<'_>,
    t: SinkType,
) -> Result<(SinkKind, Option<&'static str>), ConfigError> {
    Ok(match t {
        SinkType::Logger => (
            SinkKind::Logger {
                max_bytes_to_log: ctx.size("maxBytesToLog", 16, 0, "bytes")?,
            },
            None,
        ),
        SinkType::Null => {
            let batch_size = ctx.size("batchSize", 100, 1, "events")?;
            ctx.ignore(
                "logEveryNEvents",
                "the null sink logs nothing per event; use the metrics instead",
            );
            (SinkKind::Null { batch_size }, Some("batchSize"))
        }
        SinkType::FileRoll => {
            let directory =
                ctx.required("sink.directory", "the directory the sink writes files into")?;
            let roll_interval_secs =
                ctx.number("sink.rollInterval", 30, 0, "seconds (0 = never roll)")?;
            if let Some(v) = ctx.get("sink.pathManager") {
                if v.value.eq_ignore_ascii_case("rolltime") {
                    return Err(ctx.unsupported(
                        "sink.pathManager",
                        v.line,
                        "the ROLLTIME path manager",
                        "Remove the key to use DEFAULT (prefix + start time + counter + extension)",
                    ));
                }
                if !v.value.eq_ignore_ascii_case("default") {
                    return Err(ctx.bad("sink.pathManager", &v, "DEFAULT"));
                }
            }
            let prefix = ctx
                .get("sink.pathManager.prefix")
                .map_or_else(String::new, |v| v.value);
            let extension = ctx
                .get("sink.pathManager.extension")
                .map_or_else(String::new, |v| v.value);
            // Flume reads `sink.batchSize`; we also take `batchSize` like the other sinks.
            let batch_key = match (ctx.has("sink.batchSize"), ctx.has("batchSize")) {
                (Some(flume_line), Some(line)) => {
                    ctx.get("batchSize");
                    ctx.warn(
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
            ctx.know("sink.batchSize");
            ctx.know("batchSize");
            let batch_size = ctx.size(batch_key, 100, 1, "events")?;
            let serializer = match ctx.get("sink.serializer") {
                None => FileRollSerializer::Text,
                Some(v) => {
                    let s = v.value.as_str();
                    if s.eq_ignore_ascii_case("text")
                        || s == "org.apache.flume.serialization.BodyTextEventSerializer$Builder"
                    {
                        FileRollSerializer::Text
                    } else if s.eq_ignore_ascii_case("header_and_text")
                        || s.eq_ignore_ascii_case("avro_event")
                        || s.starts_with("org.apache.flume.")
                    {
                        return Err(ctx.unsupported(
                            "sink.serializer",
                            v.line,
                            format!("the `{s}` serializer"),
                            "Only TEXT (each body followed by a newline) exists; remove the key or set it to TEXT",
                        ));
                    } else {
                        return Err(ctx.bad("sink.serializer", &v, "TEXT"));
                    }
                }
            };
            if let Some((false, v)) = ctx.parsed("sink.serializer.appendNewline", parse_bool)? {
                return Err(ctx.unsupported(
                    "sink.serializer.appendNewline",
                    v.line,
                    "appendNewline = false",
                    "The TEXT serializer always ends each body with a newline; remove the key",
                ));
            }
            (
                SinkKind::FileRoll {
                    directory: PathBuf::from(directory.value),
                    roll_interval_secs,
                    prefix,
                    extension,
                    batch_size,
                    serializer,
                },
                Some(batch_key),
            )
        }
        SinkType::Hdfs => (
            SinkKind::Hdfs(Box::new(build_hdfs_sink(ctx)?)),
            Some("hdfs.batchSize"),
        ),
        SinkType::Avro => (build_avro_sink(ctx)?, Some("batch-size")),
    })
}

/// Flume's AvroSink keys (docs/CONFIG.md).
fn build_avro_sink(ctx: &mut Ctx<'_>) -> Result<SinkKind, ConfigError> {
    let hostname = ctx.required("hostname", "the host of the avro source to send to")?;
    let port = ctx.required("port", "the port of the avro source to send to, e.g. 41414")?;
    let port = port
        .value
        .parse::<u16>()
        .map_err(|_| ctx.bad("port", &port, "a TCP port number, 1 to 65535"))
        .and_then(|p| {
            if p == 0 {
                Err(ctx.bad("port", &port, "a TCP port number, 1 to 65535"))
            } else {
                Ok(p)
            }
        })?;
    let batch_size = ctx.size("batch-size", 100, 1, "events")?;
    let connect_timeout_ms = ctx.number("connect-timeout", 20_000, 1, "milliseconds")?;
    let request_timeout_ms = ctx.number("request-timeout", 20_000, 1, "milliseconds")?;
    let reset_connection_interval_secs = ctx.number(
        "reset-connection-interval",
        0,
        0,
        "seconds (0 = never reset)",
    )?;
    let deflate = avro_compression(ctx, "the avro sink compression-type")?;
    let ssl = if ctx.boolean("ssl", false)? {
        Some(avro_client_tls(ctx)?)
    } else {
        for key in [
            "trust-all-certs",
            "truststore",
            "truststore-password",
            "truststore-type",
            "verify-hostname",
        ]
        .into_iter()
        .chain(TLS_FILTER_KEYS)
        {
            ctx.ignore(key, "only used with `ssl = true`");
        }
        None
    };
    ctx.ignore(
        "maxIoWorkers",
        "flumen's avro sink uses one blocking connection",
    );
    Ok(SinkKind::Avro {
        hostname: hostname.value,
        port,
        batch_size,
        connect_timeout_ms,
        request_timeout_ms,
        reset_connection_interval_secs,
        deflate,
        ssl,
    })
}

/// Flume's global SSL settings (Flume 1.9+): a component key left unset falls back to the
/// environment variable (flumen also takes Flume's system property form, `flumen agent
/// -Djavax.net.ssl.keyStore=...`, which `cli::agent` turns into the same names).
pub const GLOBAL_SSL: [(&str, &str); 10] = [
    ("javax.net.ssl.keyStore", "FLUME_SSL_KEYSTORE_PATH"),
    (
        "javax.net.ssl.keyStorePassword",
        "FLUME_SSL_KEYSTORE_PASSWORD",
    ),
    ("javax.net.ssl.keyStoreType", "FLUME_SSL_KEYSTORE_TYPE"),
    ("javax.net.ssl.trustStore", "FLUME_SSL_TRUSTSTORE_PATH"),
    (
        "javax.net.ssl.trustStorePassword",
        "FLUME_SSL_TRUSTSTORE_PASSWORD",
    ),
    ("javax.net.ssl.trustStoreType", "FLUME_SSL_TRUSTSTORE_TYPE"),
    ("flume.ssl.include.protocols", "FLUME_SSL_INCLUDE_PROTOCOLS"),
    ("flume.ssl.exclude.protocols", "FLUME_SSL_EXCLUDE_PROTOCOLS"),
    (
        "flume.ssl.include.cipherSuites",
        "FLUME_SSL_INCLUDE_CIPHERSUITES",
    ),
    (
        "flume.ssl.exclude.cipherSuites",
        "FLUME_SSL_EXCLUDE_CIPHERSUITES",
    ),
];

/// Flume 1.11's protocol and cipher suite list keys of the avro source and sink.
const TLS_FILTER_KEYS: [&str; 4] = [
    "exclude-protocols",
    "include-protocols",
    "include-cipher-suites",
    "exclude-cipher-suites",
];

/// The protocol and cipher suite lists (Java names, space- or comma-separated as Flume's).
/// Names flumen does not have (SSLv3, TLSv1, TLSv1.1, other suites) are simply never enabled,
/// as in Flume, which filters the engine's own list.
fn tls_filters(ctx: &mut Ctx<'_>) -> crate::avro::tls::Filters {
    use crate::avro::tls::split_list;
    let defaults = crate::avro::tls::Filters::default();
    crate::avro::tls::Filters {
        include_protocols: ctx
            .get_or_global("include-protocols", "FLUME_SSL_INCLUDE_PROTOCOLS")
            .map(|v| split_list(&v.value)),
        exclude_protocols: ctx
            .get_or_global("exclude-protocols", "FLUME_SSL_EXCLUDE_PROTOCOLS")
            .map_or(defaults.exclude_protocols, |v| split_list(&v.value)),
        include_cipher_suites: ctx
            .get_or_global("include-cipher-suites", "FLUME_SSL_INCLUDE_CIPHERSUITES")
            .map(|v| split_list(&v.value)),
        exclude_cipher_suites: ctx
            .get_or_global("exclude-cipher-suites", "FLUME_SSL_EXCLUDE_CIPHERSUITES")
            .map_or_else(Vec::new, |v| split_list(&v.value)),
    }
}

/// `keystore-type` / `truststore-type` (else the `global` variable): PKCS12 (or PEM, ours); JKS
/// and JCEKS are refused with the command that converts the `store_key` file. `None` when
/// unset: the file's bytes decide.
fn tls_store_type(
    ctx: &mut Ctx<'_>,
    key: &'static str,
    global: &str,
    store_key: &str,
    store_path: &str,
) -> Result<Option<crate::avro::tls::StoreType>, ConfigError> {
    use crate::avro::tls::StoreType;
    let from_env = ctx.get(key).is_none();
    let Some(v) = ctx.get_or_global(key, global) else {
        return Ok(None);
    };
    let origin = if from_env {
        format!(" (the value comes from {global}: the component sets no `{key}`)")
    } else {
        String::new()
    };
    let t = v.value.trim();
    if t.eq_ignore_ascii_case("PKCS12") || t.eq_ignore_ascii_case("PKCS#12") {
        Ok(Some(StoreType::Pkcs12))
    } else if t.eq_ignore_ascii_case("PEM") {
        Ok(Some(StoreType::Pem))
    } else if t.eq_ignore_ascii_case("JKS") || t.eq_ignore_ascii_case("JCEKS") {
        let pem = if store_key == "keystore" {
            "; or give the certificate chain and key as PEM files with `ssl-cert` and `ssl-key`"
        } else {
            "; or point it at a PEM file of the CA certificates"
        };
        Err(ctx.unsupported(
            key,
            v.line,
            format!("{t} key stores (no well-kept Rust library reads them)"),
            format!(
                "Convert the store to PKCS#12: `keytool -importkeystore -srckeystore {store_path} -destkeystore {store_path}.p12 -deststoretype PKCS12`, point `{store_key}` at {store_path}.p12 and set `{key} = PKCS12`{pem}{origin}"
            ),
        ))
    } else {
        Err(ctx.bad(
            key,
            &v,
            format!("PKCS12 (or PEM); JKS stores must be converted to PKCS12{origin}"),
        ))
    }
}

/// The avro source's `ssl = true` keys: Flume's keystore, or our PEM `ssl-cert`/`ssl-key`.
fn avro_server_tls(ctx: &mut Ctx<'_>) -> Result<crate::avro::tls::ServerTls, ConfigError> {
    use crate::avro::tls::{Identity, Secret, ServerTls, Store};
    let cert = ctx.get("ssl-cert");
    let key = ctx.get("ssl-key");
    // Flume's global keystore stands in only when the component names no key of its own.
    let keystore = if cert.is_none() && key.is_none() {
        ctx.get_or_global("keystore", "FLUME_SSL_KEYSTORE_PATH")
    } else {
        ctx.get("keystore")
    };
    let identity = match (keystore, cert, key) {
        (Some(ks), None, None) => {
            let store_type = tls_store_type(
                ctx,
                "keystore-type",
                "FLUME_SSL_KEYSTORE_TYPE",
                "keystore",
                &ks.value,
            )?;
            Identity::Keystore(Store {
                path: PathBuf::from(ks.value),
                password: ctx
                    .get_or_global("keystore-password", "FLUME_SSL_KEYSTORE_PASSWORD")
                    .map(|v| Secret(v.value)),
                store_type,
            })
        }
        (None, Some(cert), Some(key)) => {
            for k in ["keystore-password", "keystore-type"] {
                ctx.ignore(
                    k,
                    "the key and certificate come from `ssl-cert` and `ssl-key`",
                );
            }
            Identity::Pem {
                cert: PathBuf::from(cert.value),
                key: PathBuf::from(key.value),
            }
        }
        (Some(_), Some(v), _) => {
            return Err(ctx.bad(
                "ssl-cert",
                &v,
                "set either `keystore` or `ssl-cert` and `ssl-key`, not both",
            ))
        }
        (Some(_), None, Some(v)) => {
            return Err(ctx.bad(
                "ssl-key",
                &v,
                "set either `keystore` or `ssl-cert` and `ssl-key`, not both",
            ))
        }
        (None, Some(_), None) => {
            return Err(ctx.missing(
                "ssl-key",
                "`ssl-cert` needs `ssl-key`: the PEM file of the certificate's private key".into(),
            ))
        }
        (None, None, Some(_)) => {
            return Err(ctx.missing(
                "ssl-cert",
                "`ssl-key` needs `ssl-cert`: the PEM file of the certificate chain, leaf first"
                    .into(),
            ))
        }
        (None, None, None) => {
            return Err(ctx.missing(
                "keystore",
                "`ssl = true` needs the source's key and certificate: `keystore` (a PKCS#12 \
                 file) with `keystore-password`, or `ssl-cert` and `ssl-key` (PEM files); or, \
                 for every component at once, Flume's global FLUME_SSL_KEYSTORE_PATH and \
                 FLUME_SSL_KEYSTORE_PASSWORD (or -Djavax.net.ssl.keyStore=...)"
                    .into(),
            ))
        }
    };
    Ok(ServerTls {
        identity,
        filters: tls_filters(ctx),
    })
}

/// The avro sink's `ssl = true` keys: `trust-all-certs`, else `truststore`, else the system's
/// CA roots; `verify-hostname` (ours).
fn avro_client_tls(ctx: &mut Ctx<'_>) -> Result<crate::avro::tls::ClientTls, ConfigError> {
    use crate::avro::tls::{ClientTls, Secret, Store, Trust};
    let trust_all = ctx.boolean("trust-all-certs", false)?;
    let trust = if trust_all {
        for k in ["truststore", "truststore-password", "truststore-type"] {
            ctx.ignore(k, "`trust-all-certs = true` trusts any certificate");
        }
        Trust::All
    } else if let Some(ts) = ctx.get_or_global("truststore", "FLUME_SSL_TRUSTSTORE_PATH") {
        let store_type = tls_store_type(
            ctx,
            "truststore-type",
            "FLUME_SSL_TRUSTSTORE_TYPE",
            "truststore",
            &ts.value,
        )?;
        Trust::Store(Store {
            path: PathBuf::from(ts.value),
            password: ctx
                .get_or_global("truststore-password", "FLUME_SSL_TRUSTSTORE_PASSWORD")
                .map(|v| Secret(v.value)),
            store_type,
        })
    } else {
        for k in ["truststore-password", "truststore-type"] {
            ctx.ignore(
                k,
                "no `truststore` is set: the system's CA roots are trusted",
            );
        }
        Trust::System
    };
    let verify_hostname = match ctx.parsed("verify-hostname", parse_bool)? {
        Some((true, v)) if trust_all => {
            return Err(ctx.bad(
                "verify-hostname",
                &v,
                "false: with `trust-all-certs = true` no certificate is checked; set a `truststore` to check names",
            ))
        }
        other => other.map(|(b, _)| b),
    };
    Ok(ClientTls {
        trust,
        verify_hostname,
        filters: tls_filters(ctx),
    })
}

/// `compression-type` (`none` or `deflate`, any case) and `compression-level` (0-9, default 6)
/// of the avro source and sink: the level when deflate, else `None`.
fn avro_compression(ctx: &mut Ctx<'_>, feature: &str) -> Result<Option<u32>, ConfigError> {
    ctx.only("compression-type", &["none", "deflate"], feature)?;
    let deflate = ctx
        .get("compression-type")
        .is_some_and(|v| v.value.trim().eq_ignore_ascii_case("deflate"));
    if !deflate {
        ctx.ignore(
            "compression-level",
            "only used with compression-type = deflate",
        );
        return Ok(None);
    }
    let level = ctx.number(
        "compression-level",
        u64::from(crate::avro::zlib::DEFAULT_LEVEL),
        0,
        "zlib level",
    )?;
    match u32::try_from(level) {
        Ok(l) if l <= 9 => Ok(Some(l)),
        _ => {
            let v = ctx.get("compression-level").unwrap_or(Val {
                value: level.to_string(),
                line: ctx.home_line,
            });
            Err(ctx.bad(
                "compression-level",
                &v,
                "a zlib compression level, 0 (none) to 9 (best)",
            ))
        }
    }
}

/// Flume's `hdfs.*` keys (docs/CONFIG.md). Templates, the time zone and the codec are checked
/// here, so a mistake stops start-up with the key and line rather than failing every batch.
fn build_hdfs_sink(ctx: &mut Ctx<'_>) -> Result<HdfsSinkConfig, ConfigError> {
    use crate::sink::hdfs::format::{Codec, FileType, SeqCompression, WriteFormat};
    use crate::sink::hdfs::path::{self as hpath, PathTemplate, RoundUnit, Rounding};

    let path = ctx.required(
        "hdfs.path",
        "the directory to write into: hdfs://namenode:8020/dir, file:///dir or a local path",
    )?;
    let target = crate::sink::hdfs::split_target(&path.value)
        .map_err(|m| ctx.bad("hdfs.path", &path, format!("a usable path: {m}")))?;
    if let Err(e) = PathTemplate::parse(&target.path) {
        return Err(ctx.bad("hdfs.path", &path, format!("a valid template: {e}")));
    }
    let mut cfg = HdfsSinkConfig::new(&path.value);
    let text = |ctx: &mut Ctx<'_>, key: &'static str, default: &str| {
        ctx.get(key)
            .map_or_else(|| default.to_string(), |v| v.value)
    };
    cfg.file_prefix = text(ctx, "hdfs.filePrefix", "FlumeData");
    if let Err(e) = PathTemplate::parse(&cfg.file_prefix) {
        let v = ctx.get("hdfs.filePrefix").unwrap_or(Val {
            value: cfg.file_prefix.clone(),
            line: ctx.home_line,
        });
        return Err(ctx.bad("hdfs.filePrefix", &v, format!("a valid template: {e}")));
    }
    if cfg.file_prefix.contains('/') {
        let v = ctx.get("hdfs.filePrefix").unwrap_or(Val {
            value: cfg.file_prefix.clone(),
            line: ctx.home_line,
        });
        return Err(ctx.unsupported(
            "hdfs.filePrefix",
            v.line,
            "a `/` in hdfs.filePrefix",
            "Put directories in hdfs.path and keep hdfs.filePrefix a file name",
        ));
    }
    cfg.file_suffix = text(ctx, "hdfs.fileSuffix", "");
    cfg.in_use_prefix = text(ctx, "hdfs.inUsePrefix", "");
    cfg.in_use_suffix = text(ctx, "hdfs.inUseSuffix", ".tmp");
    for (key, value) in [
        ("hdfs.fileSuffix", &cfg.file_suffix),
        ("hdfs.inUsePrefix", &cfg.in_use_prefix),
        ("hdfs.inUseSuffix", &cfg.in_use_suffix),
    ] {
        if value.contains('/') {
            let v = Val {
                value: value.clone(),
                line: ctx.line_of(key),
            };
            return Err(ctx.bad(key, &v, "a file name part without `/`"));
        }
    }
    cfg.roll_interval_secs = ctx.number("hdfs.rollInterval", 30, 0, "seconds (0 = never)")?;
    cfg.roll_size = ctx.number("hdfs.rollSize", 1024, 0, "bytes (0 = never)")?;
    cfg.roll_count = ctx.number("hdfs.rollCount", 10, 0, "events (0 = never)")?;
    cfg.idle_timeout_secs = ctx.number("hdfs.idleTimeout", 0, 0, "seconds (0 = never)")?;
    cfg.batch_size = ctx.size("hdfs.batchSize", 100, 1, "events")?;
    cfg.max_open_files = ctx.size("hdfs.maxOpenFiles", 5000, 1, "files")?;
    cfg.call_timeout_ms = ctx.number("hdfs.callTimeout", 10_000, 1, "milliseconds")?;
    cfg.close_tries = u32::try_from(ctx.number("hdfs.closeTries", 0, 0, "tries (0 = forever)")?)
        .unwrap_or(u32::MAX);
    cfg.retry_interval_secs = ctx.number("hdfs.retryInterval", 180, 0, "seconds")?;

    let file_type = match ctx.get("hdfs.fileType") {
        None => FileType::SequenceFile,
        Some(v) => match v.value.parse::<FileType>() {
            Ok(t) => t,
            Err(_) => {
                return Err(ctx.bad(
                    "hdfs.fileType",
                    &v,
                    "SequenceFile, DataStream or CompressedStream",
                ))
            }
        },
    };
    let write_format = match ctx.get("hdfs.writeFormat") {
        None => WriteFormat::Writable,
        Some(v) => match v.value.parse::<WriteFormat>() {
            Ok(f) => f,
            Err(_) => return Err(ctx.bad("hdfs.writeFormat", &v, "Writable or Text")),
        },
    };
    let codec = match ctx.get("hdfs.codeC") {
        None => None,
        Some(v) => match Codec::from_flume_name(&v.value) {
            Ok(c) => c,
            Err(e) => {
                return Err(ctx.unsupported(
                    "hdfs.codeC",
                    v.line,
                    format!("the codec `{}`", v.value),
                    e.to_string(),
                ))
            }
        },
    };
    let seq_compression = match ctx.get("hdfs.compressionType") {
        None => SeqCompression::Block,
        Some(v) => match v.value.to_ascii_lowercase().as_str() {
            "block" => SeqCompression::Block,
            "record" => SeqCompression::Record,
            _ => return Err(ctx.bad("hdfs.compressionType", &v, "BLOCK or RECORD")),
        },
    };
    cfg.format = crate::sink::hdfs::format::FormatSpec {
        file_type,
        write_format,
        codec,
        seq_compression,
    };
    if let Err(e) = cfg.format.validate() {
        let key = if ctx.has("hdfs.codeC").is_some() {
            "hdfs.codeC"
        } else {
            "hdfs.fileType"
        };
        let line = ctx.line_of(key);
        return Err(ctx.unsupported(key, line, e.to_string(), "See docs/CONFIG.md, hdfs sink"));
    }
    // Flume reads the serializer keys without the `hdfs.` prefix.
    if let Some(v) = ctx.get("serializer") {
        if !(v.value.eq_ignore_ascii_case("text")
            || v.value == "org.apache.flume.serialization.BodyTextEventSerializer$Builder")
        {
            return Err(ctx.unsupported(
                "serializer",
                v.line,
                format!("the `{}` serializer", v.value),
                "Only TEXT (each body followed by a newline) exists; remove the key",
            ));
        }
    }
    if let Some((false, v)) = ctx.parsed("serializer.appendNewline", parse_bool)? {
        return Err(ctx.unsupported(
            "serializer.appendNewline",
            v.line,
            "appendNewline = false",
            "The TEXT serializer always ends each body with a newline; remove the key",
        ));
    }

    if ctx.boolean("hdfs.round", false)? {
        let value = ctx.number("hdfs.roundValue", 1, 1, "units")?;
        let unit = match ctx.get("hdfs.roundUnit") {
            None => RoundUnit::Second,
            Some(v) => match RoundUnit::parse(&v.value) {
                Ok(u) => u,
                Err(_) => return Err(ctx.bad("hdfs.roundUnit", &v, "second, minute or hour")),
            },
        };
        match Rounding::new(i64::try_from(value).unwrap_or(i64::MAX), unit) {
            Ok(r) => cfg.round = Some(r),
            Err(e) => {
                let v = ctx.get("hdfs.roundValue").unwrap_or(Val {
                    value: value.to_string(),
                    line: ctx.home_line,
                });
                return Err(ctx.bad("hdfs.roundValue", &v, e.to_string()));
            }
        }
    } else {
        ctx.ignore("hdfs.roundValue", "hdfs.round is not true");
        ctx.ignore("hdfs.roundUnit", "hdfs.round is not true");
    }
    if let Some(v) = ctx.get("hdfs.timeZone") {
        if let Err(e) = hpath::parse_time_zone(&v.value) {
            return Err(ctx.bad("hdfs.timeZone", &v, format!("a time zone name: {e}")));
        }
        cfg.time_zone = Some(v.value);
    }
    cfg.use_local_timestamp = ctx.boolean("hdfs.useLocalTimeStamp", false)?;
    cfg.sync = match ctx.get("hdfs.sync") {
        None => SyncMode::Hsync,
        Some(v) => match v.value.to_ascii_lowercase().as_str() {
            "hsync" => SyncMode::Hsync,
            "none" => SyncMode::None,
            _ => return Err(ctx.bad("hdfs.sync", &v, "hsync or none")),
        },
    };
    for (key, v) in ctx.take_prefixed("hdfs.config.") {
        let name = key.trim_start_matches("hdfs.config.").to_string();
        cfg.hadoop_config.push((name, v.value));
    }
    for key in [
        "hdfs.kerberosPrincipal",
        "hdfs.kerberosKeytab",
        "hdfs.proxyUser",
    ] {
        if let Some(v) = ctx.get(key) {
            return Err(ctx.unsupported(
                key,
                v.line,
                "Kerberos and proxy users",
                "Remove the key; flumen's HDFS sink connects as HADOOP_USER_NAME (or the OS user)",
            ));
        }
    }
    for key in [
        "hdfs.threadsPoolSize",
        "hdfs.rollTimerPoolSize",
        "hdfs.minBlockReplicas",
    ] {
        ctx.ignore(
            key,
            "flumen's HDFS sink has no thread pools and leaves replication to HDFS",
        );
    }
    Ok(cfg)
}
