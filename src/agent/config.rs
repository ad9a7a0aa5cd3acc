//! From a Flume properties file to a typed, checked [`AgentConfig`]: the configuration
//! layer reads the agent's layout ([`Topology`]), then each component's `type` is looked up
//! in the [registry](super::registry) and its own parser reads its keys. What needs two
//! components at once is checked here: a batch size against the channel's
//! `transactionCapacity` (Flume's rule), and channels that would share a directory.
//!
//! Invariant: no I/O beyond reading the file; nothing is bound, opened or started here (that
//! is [`super::Agent::start`]), so a configuration can be checked without running it.

use std::path::{Path, PathBuf};

use super::registry;
use crate::channel::ChannelSpec;
use crate::config::{
    self, resolve, AsAny, ConfigError, ConfigWarning, Keys, Node, Registered, Topology, Val,
    EMBEDDED_DEFAULT_PROPERTIES,
};
use crate::interceptor::InterceptorSpec;
use crate::route::replicating::ReplicatingConfig;
use crate::route::SelectorSpec;
use crate::sink::group::SinkProcessorSpec;
use crate::sink::SinkSpec;
use crate::source::SourceSpec;

/// One agent's components, each list in the order of `<agent>.sources`, `.channels`, `.sinks`.
#[derive(Debug)]
pub struct AgentConfig {
    pub name: String,
    pub sources: Vec<SourceConfig>,
    pub channels: Vec<ChannelConfig>,
    pub sinks: Vec<SinkConfig>,
    /// `<agent>.sinkgroups`: sinks driven together by one runner; a sink in no group runs on
    /// its own.
    pub sinkgroups: Vec<SinkGroupConfig>,
}

impl AgentConfig {
    /// The channel called `name`.
    pub fn channel(&self, name: &str) -> Option<&ChannelConfig> {
        self.channels.iter().find(|c| c.name == name)
    }
}

/// A source (`<agent>.sources.<name>.*`).
#[derive(Debug)]
pub struct SourceConfig {
    pub name: String,
    /// The type's alias (`netcat`), for logs.
    pub type_name: &'static str,
    /// `channels`: every channel it may put into, in the order written.
    pub channels: Vec<String>,
    /// `interceptors`, applied to every event in list order (empty when there are none).
    pub interceptors: Vec<InterceptorConfig>,
    /// `selector.*`: which of `channels` each event goes to.
    pub selector: SelectorConfig,
    /// The source's own keys, parsed by its module.
    pub spec: Box<dyn SourceSpec>,
}

/// One interceptor of a source (`<agent>.sources.<source>.interceptors.<name>.*`).
#[derive(Debug)]
pub struct InterceptorConfig {
    pub name: String,
    pub type_name: &'static str,
    pub spec: Box<dyn InterceptorSpec>,
}

/// A source's channel selector (`<agent>.sources.<source>.selector.*`).
#[derive(Debug)]
pub struct SelectorConfig {
    pub type_name: &'static str,
    pub spec: Box<dyn SelectorSpec>,
}

impl SelectorConfig {
    /// The selector's settings as its module's type `T` (e.g. `MultiplexingConfig`).
    pub fn settings<T: 'static>(&self) -> Option<&T> {
        downcast(self.spec.as_ref())
    }
}

/// A channel (`<agent>.channels.<name>.*`).
#[derive(Debug)]
pub struct ChannelConfig {
    pub name: String,
    pub type_name: &'static str,
    pub spec: Box<dyn ChannelSpec>,
}

/// A sink (`<agent>.sinks.<name>.*`).
#[derive(Debug)]
pub struct SinkConfig {
    pub name: String,
    pub type_name: &'static str,
    /// `channel` (singular): the one channel this sink drains.
    pub channel: String,
    pub spec: Box<dyn SinkSpec>,
}

/// A sink group (`<agent>.sinkgroups.<name>.*`).
#[derive(Debug)]
pub struct SinkGroupConfig {
    pub name: String,
    /// `sinks`: listed sinks, each in this group only, in the order written.
    pub sinks: Vec<String>,
    /// The processor type's alias (`failover`), for logs.
    pub type_name: &'static str,
    /// The `processor.*` keys, parsed by the processor's module.
    pub spec: Box<dyn SinkProcessorSpec>,
}

impl SinkGroupConfig {
    /// The processor's settings as its module's type `T` (e.g. `FailoverConfig`).
    pub fn settings<T: 'static>(&self) -> Option<&T> {
        downcast(self.spec.as_ref())
    }
}

/// The parsed configuration of type `T`, if the spec is one (tests and tools look inside).
fn downcast<T: 'static>(spec: &dyn AsAny) -> Option<&T> {
    spec.as_any().downcast_ref()
}

impl SourceConfig {
    /// The source's settings as its module's type `T` (e.g. `NetcatConfig`).
    pub fn settings<T: 'static>(&self) -> Option<&T> {
        downcast(self.spec.as_ref())
    }
}

impl InterceptorConfig {
    /// The interceptor's settings as its module's type `T`.
    pub fn settings<T: 'static>(&self) -> Option<&T> {
        downcast(self.spec.as_ref())
    }
}

impl ChannelConfig {
    /// The channel's settings as its module's type `T` (e.g. `FileChannelConfig`).
    pub fn settings<T: 'static>(&self) -> Option<&T> {
        downcast(self.spec.as_ref())
    }
}

impl SinkConfig {
    /// The sink's settings as its module's type `T` (e.g. `HdfsSinkConfig`).
    pub fn settings<T: 'static>(&self) -> Option<&T> {
        downcast(self.spec.as_ref())
    }
}

/// Reads `path` and builds agent `agent` (Flume's `--name`).
pub fn load(path: &Path, agent: &str) -> Result<(AgentConfig, Vec<ConfigWarning>), ConfigError> {
    load_with_env(path, agent, &|name| std::env::var(name).ok())
}

/// [`load`] with the environment supplied by the caller (the agent adds Flume's global SSL
/// system properties given as `-D`).
pub fn load_with_env(
    path: &Path,
    agent: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(AgentConfig, Vec<ConfigWarning>), ConfigError> {
    let text = config::read_file(path)?;
    parse_with_env(&text, &path.display().to_string(), agent, env)
}

/// Builds agent `agent` from properties `text`; `file` names the text in messages (usually
/// the file path). `${env:NAME}` reads the process environment.
pub fn parse(
    text: &str,
    file: &str,
    agent: &str,
) -> Result<(AgentConfig, Vec<ConfigWarning>), ConfigError> {
    parse_with_env(text, file, agent, &|name| std::env::var(name).ok())
}

/// [`parse`] with the environment supplied by the caller.
pub fn parse_with_env(
    text: &str,
    file: &str,
    agent: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(AgentConfig, Vec<ConfigWarning>), ConfigError> {
    check_with_env(text, file, agent, env).into_result()
}

/// The configuration `flumen agent` runs when given no file: [`EMBEDDED_DEFAULT_PROPERTIES`]
/// (netcat on 127.0.0.1:44444 -> a file channel under `./flumen-data` -> an hdfs sink writing
/// DataStream files into the local directory `./flumen-data/out`).
pub fn embedded_default() -> Result<AgentConfig, ConfigError> {
    let (cfg, _) = parse_with_env(
        EMBEDDED_DEFAULT_PROPERTIES,
        "(built-in configuration)",
        "a1",
        &|_| None,
    )?;
    Ok(cfg)
}

/// Reads `keys`' `type` and finds it among `types`. `kind` is "source", "sink", ...
fn component_type<'t, S: ?Sized>(
    keys: &mut Keys<'_>,
    types: &'t [Registered<S>],
    flume_only: &[(&str, &str)],
    kind: &'static str,
) -> Result<&'t Registered<S>, ConfigError> {
    let aliases: Vec<&str> = types.iter().map(|t| t.alias).collect();
    let t = keys.required(
        "type",
        &format!(
            "every listed {kind} needs a type ({}); Flume would silently drop this {kind}",
            aliases.join(", ")
        ),
    )?;
    keys.set_home_line(t.line);
    resolve(types, flume_only, keys, &t, kind)
}

/// What checking one agent of a file found: its configuration when nothing stops it, and
/// every error and warning, each list in line order. Nothing stops at the first error: each
/// component is read on its own, so one run of `flumen agent` or `flumen config check` shows
/// everything to fix.
#[derive(Debug)]
pub struct Checked {
    pub config: Option<AgentConfig>,
    pub errors: Vec<ConfigError>,
    pub warnings: Vec<ConfigWarning>,
}

impl Checked {
    /// The configuration, or the error (several as [`ConfigError::Many`]); the warnings are
    /// dropped on an error.
    pub fn into_result(self) -> Result<(AgentConfig, Vec<ConfigWarning>), ConfigError> {
        let mut errors = self.errors;
        match (self.config, errors.len()) {
            (Some(cfg), 0) => Ok((cfg, self.warnings)),
            (_, 1) => Err(errors.remove(0)),
            (_, _) => Err(ConfigError::Many { errors }),
        }
    }
}

/// [`parse_with_env`] without stopping at the first error.
pub fn check_with_env(
    text: &str,
    file: &str,
    agent: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Checked {
    match config::topology(text, file, agent, env) {
        Ok(topo) => resolve_topology(topo),
        Err(e) => Checked {
            config: None,
            errors: vec![e],
            warnings: Vec::new(),
        },
    }
}

/// [`load_with_env`] without stopping at the first error; `Err` only when the file cannot be
/// read.
pub fn load_checked(
    path: &Path,
    agent: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Checked, ConfigError> {
    let text = config::read_file(path)?;
    Ok(check_with_env(
        &text,
        &path.display().to_string(),
        agent,
        env,
    ))
}

/// Runs `parse` on `keys`: on success hands over the component's warnings (unread keys
/// included) and returns what it built; on an error records it, hands over the warnings
/// gathered before it, and returns `None`.
fn component<'a, T>(
    mut keys: Keys<'a>,
    warnings: &mut Vec<ConfigWarning>,
    errors: &mut Vec<ConfigError>,
    parse: impl FnOnce(&mut Keys<'a>) -> Result<T, ConfigError>,
) -> Option<T> {
    match parse(&mut keys) {
        Ok(t) => {
            keys.finish(warnings);
            Some(t)
        }
        Err(e) => {
            keys.abandon(warnings);
            errors.push(e);
            None
        }
    }
}

/// The checks between components, then the components' own parsers. A component with an
/// error is left out and the rest are still read, so that every error is found.
fn resolve_topology(topo: Topology<'_>) -> Checked {
    let Topology {
        agent,
        file,
        sources: source_nodes,
        channels: channel_nodes,
        sinks: sink_nodes,
        sinkgroups: group_nodes,
        mut warnings,
        mut errors,
        unsubstituted,
    } = topo;

    // Channels, with the lines their capacity and directories came from.
    struct Built {
        config: ChannelConfig,
        tc_line: usize,
        dirs: Vec<(&'static str, PathBuf, usize)>,
    }
    let mut channels: Vec<Built> = Vec::new();
    // Channels that failed to parse: bindings to them are not errors of their own.
    let mut broken_channels: Vec<String> = Vec::new();
    for node in channel_nodes {
        let built = component(node.keys, &mut warnings, &mut errors, |keys| {
            let t = component_type(
                keys,
                registry::CHANNELS,
                registry::FLUME_ONLY_CHANNELS,
                "channel",
            )?;
            let spec = (t.parse)(keys)?;
            let dirs = spec
                .directories()
                .into_iter()
                .map(|(key, dir)| (key, dir, keys.line_of(key)))
                .collect();
            let tc_line = keys.line_of("transactionCapacity");
            Ok((t.alias, spec, dirs, tc_line))
        });
        match built {
            Some((type_name, spec, dirs, tc_line)) => channels.push(Built {
                config: ChannelConfig {
                    name: node.name,
                    type_name,
                    spec,
                },
                tc_line,
                dirs,
            }),
            None => broken_channels.push(node.name),
        }
    }

    // No two channels may share a directory (each holds its own lock and segments).
    let mut seen: Vec<(&Path, &str)> = Vec::new();
    for c in &channels {
        for (key, dir, line) in &c.dirs {
            if let Some((_, other)) = seen.iter().find(|(p, _)| *p == dir.as_path()) {
                errors.push(ConfigError::BadValue {
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
        seen.extend(
            c.dirs
                .iter()
                .map(|(_, d, _)| (d.as_path(), c.config.name.as_str())),
        );
    }

    let lookup = |name: &str| channels.iter().find(|c| c.config.name == name);
    // Flume's rule (FLUME-3107): a batch larger than the channel's transaction can never
    // commit.
    let over_capacity = |keys: &Keys<'_>, batch: Option<(usize, &'static str)>, channel: &str| {
        let (Some((batch, key)), Some(ch)) = (batch, lookup(channel)) else {
            return Ok(());
        };
        let tc = ch.config.spec.transaction_capacity();
        if batch <= tc {
            return Ok(());
        }
        Err(ConfigError::BatchOverTransactionCapacity {
            file: file.to_string(),
            line: keys.line_of(key),
            key: keys.full(key),
            batch_size: batch as u64,
            channel_key: format!("{agent}.channels.{}.transactionCapacity", ch.config.name),
            channel_line: ch.tc_line,
            transaction_capacity: tc as u64,
        })
    };

    let channel_names: Vec<String> = channels
        .iter()
        .map(|c| c.config.name.clone())
        .chain(broken_channels.iter().cloned())
        .collect();
    let mut sources = Vec::new();
    for node in source_nodes {
        let mut interceptors = Vec::new();
        let mut broken = false;
        for i in node.interceptors {
            match interceptor(i.name, i.keys, &mut warnings) {
                Ok(i) => interceptors.push(i),
                Err(e) => {
                    errors.push(e);
                    broken = true;
                }
            }
        }
        let selector = match selector(node.selector, &node.channels, &channel_names, &mut warnings)
        {
            Ok(s) => Some(s),
            Err(e) => {
                errors.push(e);
                None
            }
        };
        let parsed = component(node.keys, &mut warnings, &mut errors, |keys| {
            let t = component_type(
                keys,
                registry::SOURCES,
                registry::FLUME_ONLY_SOURCES,
                "source",
            )?;
            let spec = (t.parse)(keys)?;
            for ch in &node.channels {
                over_capacity(keys, spec.batch_size(), ch)?;
            }
            Ok((t.alias, spec))
        });
        if let (Some((type_name, spec)), Some(selector), false) = (parsed, selector, broken) {
            sources.push(SourceConfig {
                name: node.name,
                type_name,
                channels: node.channels,
                interceptors,
                selector,
                spec,
            });
        }
    }

    let mut sinks = Vec::new();
    for node in sink_nodes {
        let parsed = component(node.keys, &mut warnings, &mut errors, |keys| {
            let t = component_type(keys, registry::SINKS, registry::FLUME_ONLY_SINKS, "sink")?;
            let spec = (t.parse)(keys)?;
            over_capacity(keys, spec.batch_size(), &node.channel)?;
            Ok((t.alias, spec))
        });
        if let Some((type_name, spec)) = parsed {
            sinks.push(SinkConfig {
                name: node.name,
                type_name,
                channel: node.channel,
                spec,
            });
        }
    }

    let mut sinkgroups = Vec::new();
    for node in group_nodes {
        match sink_group(node.name, node.sinks, node.processor, &mut warnings) {
            Ok(g) => sinkgroups.push(g),
            Err(e) => errors.push(e),
        }
    }

    // A key whose value could not be substituted was left out, so its component may report
    // it missing or wrong as well: the substitution error alone says what to fix.
    // The substitution errors come first (the topology's), so the first error per key is kept.
    let mut reported: Vec<String> = Vec::new();
    errors.retain(|e| {
        let Some(k) = e.key().filter(|k| unsubstituted.iter().any(|u| u == k)) else {
            return true;
        };
        let first = !reported.iter().any(|r| r == k);
        if first {
            reported.push(k.to_string());
        }
        first
    });
    warnings.sort_by_key(|w| w.line);
    errors.sort_by_key(|e| e.line().unwrap_or(0));
    let config = errors.is_empty().then(|| AgentConfig {
        name: agent,
        sources,
        channels: channels.into_iter().map(|c| c.config).collect(),
        sinks,
        sinkgroups,
    });
    Checked {
        config,
        errors,
        warnings,
    }
}

/// The type `v` (a `type` key of `keys`) names among `types`. A dotted name outside
/// `org.apache.flume.` is a Java class of the user's own, which flumen cannot load: refused,
/// listing the aliases `kind` has, then `instead` (what to do).
fn class_or_type<'t, S: ?Sized>(
    keys: &mut Keys<'_>,
    v: &Val,
    types: &'t [Registered<S>],
    flume_only: &[(&str, &str)],
    kind: &'static str,
    instead: &str,
) -> Result<&'t Registered<S>, ConfigError> {
    keys.set_home_line(v.line);
    let value = v.value.as_str();
    if value.contains('.') && !value.starts_with("org.apache.flume.") {
        let aliases: Vec<&str> = types.iter().map(|t| t.alias).collect();
        return Err(keys.unsupported(
            "type",
            v.line,
            format!("the custom {kind} class `{value}`"),
            format!(
                "flumen cannot load Java classes; its {kind} types are: {}. {instead}",
                aliases.join(", ")
            ),
        ));
    }
    resolve(types, flume_only, keys, v, kind)
}

/// A source's channel selector: `replicating` (every channel required) when it has no
/// `selector.*` keys or no `selector.type`. Every channel the selector names must be one the
/// source puts into (`bound`), as Flume requires.
fn selector(
    node: Option<Node<'_>>,
    bound: &[String],
    agent_channels: &[String],
    warnings: &mut Vec<ConfigWarning>,
) -> Result<SelectorConfig, ConfigError> {
    let Some(node) = node else {
        return Ok(SelectorConfig {
            type_name: crate::route::replicating::TYPE.alias,
            spec: Box::new(ReplicatingConfig::default()),
        });
    };
    let mut keys = node.keys;
    let ty = match keys.get("type") {
        None => &crate::route::replicating::TYPE,
        Some(t) => class_or_type(
            &mut keys,
            &t,
            registry::SELECTORS,
            &[],
            "channel selector",
            "multiplexing routes by a header's value; remove `selector.type` to replicate every event to every channel",
        )?,
    };
    let spec = (ty.parse)(&mut keys)?;
    let channels_key = keys
        .full("channels")
        .replace(".selector.channels", ".channels");
    for n in spec.named_channels() {
        if bound.contains(&n.channel) {
            continue;
        }
        let why = if agent_channels.contains(&n.channel) {
            "it is a channel of the agent but this source does not put into it: add it to"
        } else {
            "no such channel; a selector can only name channels listed in"
        };
        return Err(ConfigError::BadValue {
            file: keys.file().to_string(),
            line: n.line,
            key: keys.full(n.key.trim_start_matches("selector.")),
            value: n.channel,
            expected: format!("{why} `{channels_key}` ({})", bound.join(" ")),
        });
    }
    keys.finish(warnings);
    Ok(SelectorConfig {
        type_name: ty.alias,
        spec,
    })
}

/// One listed interceptor, read as Flume's ChannelProcessor reads it: a listed interceptor
/// without a `type` is an error, and a Java class of the user's own cannot be loaded.
fn interceptor(
    name: String,
    mut keys: Keys<'_>,
    warnings: &mut Vec<ConfigWarning>,
) -> Result<InterceptorConfig, ConfigError> {
    let aliases: Vec<&str> = registry::INTERCEPTORS.iter().map(|t| t.alias).collect();
    let t = keys.required(
        "type",
        &format!(
            "interceptor `{name}` is listed but has no type ({}); Flume refuses to start such a source too",
            aliases.join(", ")
        ),
    )?;
    let ty = class_or_type(
        &mut keys,
        &t,
        registry::INTERCEPTORS,
        registry::FLUME_ONLY_INTERCEPTORS,
        "interceptor",
        &format!("Remove interceptor `{name}` from the list"),
    )?;
    let spec = (ty.parse)(&mut keys)?;
    keys.finish(warnings);
    Ok(InterceptorConfig {
        name,
        type_name: ty.alias,
        spec,
    })
}

/// One sink group's processor: `processor.type` (Flume's `default` when unset) resolved
/// through the registry, its keys parsed and checked against the group's sinks.
fn sink_group(
    name: String,
    sinks: Vec<String>,
    mut keys: Keys<'_>,
    warnings: &mut Vec<ConfigWarning>,
) -> Result<SinkGroupConfig, ConfigError> {
    let t = match keys.get("type") {
        None => &crate::sink::group::default::TYPE,
        Some(v) => class_or_type(
            &mut keys,
            &v,
            registry::SINK_PROCESSORS,
            &[],
            "sink processor",
            "Remove `processor.type` for the default processor",
        )?,
    };
    let spec = (t.parse)(&mut keys)?;
    spec.check(&mut keys, &sinks)?;
    keys.finish(warnings);
    Ok(SinkGroupConfig {
        name,
        sinks,
        type_name: t.alias,
        spec,
    })
}

#[cfg(test)]
mod tests;
