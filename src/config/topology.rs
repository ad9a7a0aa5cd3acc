//! The shape of one agent: which sources, channels and sinks it lists, how they are bound
//! (`<source>.channels`, `<sink>.channel`), each source's channel selector and interceptor
//! list, its sink groups (`<agent>.sinkgroups`: each group's sinks and its processor's keys),
//! and each component's own keys, handed on untouched in a [`Keys`].
//!
//! This is Flume's key layout (`<agent>.<sources|channels|sinks>.<name>.<key>`) and the checks
//! that need only names: the agent exists, something is listed, every binding names a listed
//! channel, listed-twice and configured-but-unlisted components, channels nobody uses. Values
//! are `${env:...}`-substituted and trimmed here, once, as Flume does.
//!
//! Invariant: nothing here knows a component type. What a `type` means, and every key below
//! it, is for the component's own parser (the agent layer resolves types through its
//! registry).

use std::collections::HashMap;

use super::error::{ConfigError, ConfigWarning, WarningKind};
use super::keys::{Entry, Keys, Val};
use super::properties::Properties;
use super::subst::{self, Problem};
use super::values::{edit_distance, nearest};

/// The agent-level keys (`<agent>.<key>`).
const AGENT_KEYS: [&str; 5] = [
    "sources",
    "channels",
    "sinks",
    "sinkgroups",
    "configfilters",
];

/// A listed component and its keys.
#[derive(Debug)]
pub struct Node<'a> {
    pub name: String,
    /// Its keys, `type` included, topology keys already read.
    pub keys: Keys<'a>,
}

/// A listed source: its keys, the channels it puts into, its interceptors in order.
#[derive(Debug)]
pub struct SourceNode<'a> {
    pub name: String,
    pub keys: Keys<'a>,
    /// `channels`: every listed channel, in the order written (the replicating selector).
    pub channels: Vec<String>,
    /// `interceptors` with each one's `interceptors.<name>.*` keys, in list order.
    pub interceptors: Vec<Node<'a>>,
    /// The `selector.*` keys (`type` among them), when there are any.
    pub selector: Option<Node<'a>>,
}

/// A listed sink and the one channel it drains.
#[derive(Debug)]
pub struct SinkNode<'a> {
    pub name: String,
    pub keys: Keys<'a>,
    pub channel: String,
}

/// A listed sink group (`<agent>.sinkgroups.<name>.*`): the sinks its one runner drives and
/// its processor's keys.
#[derive(Debug)]
pub struct SinkGroupNode<'a> {
    pub name: String,
    /// `sinks`, in the order written; each a listed sink, in no other group.
    pub sinks: Vec<String>,
    /// The `processor.*` keys (`type`, `priority.k1`, `maxpenalty`, ...), `processor.`
    /// stripped: the processor's own parser reads them.
    pub processor: Keys<'a>,
}

/// One agent's components and bindings. Each list is in the order of `<agent>.sources`,
/// `.channels`, `.sinks`, `.sinkgroups`.
#[derive(Debug)]
pub struct Topology<'a> {
    pub agent: String,
    pub file: &'a str,
    pub sources: Vec<SourceNode<'a>>,
    pub channels: Vec<Node<'a>>,
    pub sinks: Vec<SinkNode<'a>>,
    pub sinkgroups: Vec<SinkGroupNode<'a>>,
    /// Warnings about the layout (the components' own come from their [`Keys`]).
    pub warnings: Vec<ConfigWarning>,
    /// Errors in the layout that did not stop the reading of the rest (a binding naming no
    /// channel, a value whose reference cannot be resolved, ...): the component concerned is
    /// left out, and the agent layer reports these with its own, all at once.
    pub errors: Vec<ConfigError>,
    /// Full keys left out because their value's references could not be substituted (their
    /// component may report them missing: the substitution error already says what to fix).
    pub unsubstituted: Vec<String>,
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

fn warn(warnings: &mut Vec<ConfigWarning>, file: &str, line: usize, key: &str, kind: WarningKind) {
    warnings.push(ConfigWarning {
        file: file.to_string(),
        line,
        key: key.to_string(),
        kind,
    })
}

/// The agents `props` defines: each key `<agent>.sources`, `<agent>.channels` or
/// `<agent>.sinks` (the lists that make an agent) names one, in order of first appearance.
/// Keys of other prefixes (a typo such as `agnet.sources.r1.type`) define no agent.
pub(crate) fn agents(props: &Properties) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for p in &props.entries {
        let Some((agent, list)) = p.key.trim().split_once('.') else {
            continue;
        };
        if agent.is_empty() || !["sources", "channels", "sinks"].contains(&list) {
            continue;
        }
        if !out.iter().any(|a| a == agent) {
            out.push(agent.to_string());
        }
    }
    out
}

/// The last parts of key names whose values are patterns, text put into events or file
/// names, or paths: there a trailing space may have been meant, and trimming it (as Flume
/// does) changes what the value says. Elsewhere (a type, a number, a list) it cannot matter.
const WHITESPACE_MATTERS: [&str; 14] = [
    "regex",
    "pattern",
    "matching",
    "replacestring",
    "value",
    "prefix",
    "suffix",
    "separator",
    "path",
    "dir",
    "dirs",
    "directory",
    "command",
    "file",
];

/// Whether `key`'s last part (`searchPattern` in `a1.sources.r1.interceptors.i1.searchPattern`)
/// ends with one of [`WHITESPACE_MATTERS`], in any case.
fn whitespace_may_matter(key: &str) -> bool {
    let last = key.rsplit('.').next().unwrap_or(key).to_ascii_lowercase();
    WHITESPACE_MATTERS.iter().any(|w| last.ends_with(w))
}

/// Warns about keys whose agent prefix is no agent of the file but is nearest to `agent` and
/// close to it (`agnet.sources.r1.type` beside `agent`): Flume ignores them silently. A
/// prefix is close when its edit distance to `agent`, ignoring case, is at most 2 and less
/// than the name's length (`a1` is not close to `b2`).
fn near_agent_typos(
    props: &Properties,
    file: &str,
    agent: &str,
    warnings: &mut Vec<ConfigWarning>,
) {
    let defined = agents(props);
    if !defined.iter().any(|a| a == agent) {
        return;
    }
    // Each prefix once: its first key and line, and how many keys it has.
    let mut seen: Vec<(String, String, usize, usize)> = Vec::new();
    for p in &props.entries {
        let key = p.key.trim();
        let Some((prefix, _)) = key.split_once('.') else {
            continue;
        };
        if prefix.is_empty() || defined.iter().any(|a| a == prefix) {
            continue;
        }
        match seen.iter_mut().find(|s| s.0 == prefix) {
            Some(s) => s.3 += 1,
            None => seen.push((prefix.to_string(), key.to_string(), p.line, 1)),
        }
    }
    for (prefix, key, line, count) in seen {
        if nearest(&prefix, defined.iter().map(String::as_str)) != Some(agent) {
            continue;
        }
        let d = edit_distance(&prefix.to_lowercase(), &agent.to_lowercase());
        if d <= 2 && d < agent.chars().count() {
            let kind = WarningKind::NearAgent {
                prefix,
                agent: agent.to_string(),
                count,
            };
            warn(warnings, file, line, &key, kind);
        }
    }
}

/// Reads agent `agent`'s layout from `props` (read from `file`). `env` resolves
/// `${env:NAME}` and Flume's global SSL variables.
pub(crate) fn read<'a>(
    props: &Properties,
    file: &'a str,
    agent: &str,
    env: &'a dyn Fn(&str) -> Option<String>,
) -> Result<Topology<'a>, ConfigError> {
    let mut warnings = Vec::new();

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
            _ => warn(&mut warnings, file, p.line, key, WarningKind::NoAgentPrefix),
        }
    }
    near_agent_typos(props, file, agent, &mut warnings);
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
            let kind = WarningKind::DuplicateKey {
                previous_line: d.previous_line,
            };
            warn(&mut warnings, file, d.line, d.key.trim(), kind);
        }
    }

    // Substitute, trim, and sort keys into lists and components. A plain `${key}` names any
    // property of the file (the last definition, as java.util.Properties keeps).
    let raw: HashMap<&str, &str> = props
        .entries
        .iter()
        .map(|p| (p.key.trim(), p.value.as_str()))
        .collect();
    // Keys read through a reference: a key outside any agent that a value reads is used.
    let read: std::cell::RefCell<Vec<String>> = std::cell::RefCell::new(Vec::new());
    let property = |k: &str| {
        let v = raw.get(k).map(|v| (*v).to_string());
        if v.is_some() {
            read.borrow_mut().push(k.to_string());
        }
        v
    };
    let lookups = subst::Lookups {
        env,
        property: &property,
    };
    let mut lists: HashMap<&'static str, Val> = HashMap::new();
    let mut comps: HashMap<&'static str, Components> = HashMap::new();
    let mut errors: Vec<ConfigError> = Vec::new();
    let mut unsubstituted: Vec<String> = Vec::new();
    for p in mine {
        let key = p.key.trim();
        let rest = &key[agent_prefix.len()..];
        let value = match subst::substitute(&p.value, &lookups) {
            Ok(s) => {
                for reference in s.untouched {
                    let kind = WarningKind::NotSubstituted { reference };
                    warn(&mut warnings, file, p.line, key, kind);
                }
                s.value
            }
            // The key is left out; the component's parser may then report it missing, which
            // says the same from the component's side.
            Err(Problem::Unset { name }) => {
                unsubstituted.push(key.to_string());
                errors.push(ConfigError::EnvVar {
                    file: file.to_string(),
                    line: p.line,
                    key: key.to_string(),
                    name,
                });
                continue;
            }
            Err(Problem::Unresolved { reference, why }) => {
                unsubstituted.push(key.to_string());
                errors.push(ConfigError::Unresolved {
                    file: file.to_string(),
                    line: p.line,
                    key: key.to_string(),
                    reference,
                    why,
                });
                continue;
            }
            Err(Problem::Unsupported { reference, why }) => {
                unsubstituted.push(key.to_string());
                errors.push(ConfigError::Unsupported {
                    file: file.to_string(),
                    line: p.line,
                    key: key.to_string(),
                    feature: format!("the reference `{reference}`"),
                    hint: why.to_string(),
                });
                continue;
            }
        };
        // Flume trims every value (and ignores empty ones) after substitution.
        let trimmed = value.trim();
        if trimmed.is_empty() {
            warn(&mut warnings, file, p.line, key, WarningKind::EmptyValue);
            continue;
        }
        let trailing = &value[value.trim_end().len()..];
        // A number or a boolean reads the same either way (`hdfs.roundValue = 10 `).
        let plain = trimmed.parse::<f64>().is_ok()
            || trimmed.eq_ignore_ascii_case("true")
            || trimmed.eq_ignore_ascii_case("false");
        if !trailing.is_empty() && !plain && whitespace_may_matter(key) {
            let kind = WarningKind::TrailingWhitespace {
                removed: trailing.escape_default().to_string(),
            };
            warn(&mut warnings, file, p.line, key, kind);
        }
        let value = trimmed.to_string();
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
                    let kind = WarningKind::UnknownKey {
                        nearest: suggestion,
                    };
                    warn(&mut warnings, file, p.line, key, kind);
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
                let kind = WarningKind::UnknownKey { nearest: near };
                warn(&mut warnings, file, p.line, key, kind);
            }
        }
    }

    // A key outside any agent that a reference read is no stray key.
    let read = read.into_inner();
    warnings.retain(|w| !(w.kind == WarningKind::NoAgentPrefix && read.contains(&w.key)));

    // Features we do not have.
    if let Some(v) = lists.get("configfilters") {
        errors.push(ConfigError::Unsupported {
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
                    let kind = WarningKind::DuplicateName {
                        name: name.to_string(),
                    };
                    warn(warnings, file, v.line, &format!("{agent}.{which}"), kind);
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
    let (mut sink_names, sinks_line) = listed("sinks", &mut warnings);
    let (group_names, _) = listed("sinkgroups", &mut warnings);
    // A group's name in the sinks list, with no sink keys: Flume drops that "sink" with a
    // warning and runs the group; so does flumen.
    sink_names.retain(|l| {
        let configured = comps
            .get("sinks")
            .is_some_and(|c| c.keys.contains_key(&l.name));
        if configured || !group_names.iter().any(|g| g.name == l.name) {
            return true;
        }
        let kind = WarningKind::Surprise {
            advice: format!(
                "`{}` is a sink group, not a sink, and has no sink settings: ignored here (as Flume does); list it only in `{agent}.sinkgroups`",
                l.name
            ),
        };
        warn(&mut warnings, file, l.line, &format!("{agent}.sinks"), kind);
        false
    });

    if source_names.is_empty() && sink_names.is_empty() {
        errors.push(ConfigError::MissingKey {
            file: file.to_string(),
            line: first_line,
            key: format!("{agent}.sources"),
            hint: format!(
                "agent `{agent}` has no sources and no sinks, so there is nothing to run. List them: `{agent}.sources = r1`, `{agent}.sinks = k1`"
            ),
        });
    }
    if channel_names.is_empty() && !(source_names.is_empty() && sink_names.is_empty()) {
        errors.push(ConfigError::MissingKey {
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
    let mut group_comps = comps.remove("sinkgroups").unwrap_or_default();

    let channels: Vec<Node<'a>> = channel_names
        .iter()
        .map(|l| Node {
            name: l.name.clone(),
            keys: Keys::new(
                file,
                format!("{agent}.channels.{}.", l.name),
                &l.name,
                l.line,
                ch_comps.take(&l.name),
                env,
            ),
        })
        .collect();
    let channel_list: Vec<String> = channel_names.iter().map(|l| l.name.clone()).collect();
    let unlisted_channels: Vec<String> = ch_comps.order.clone();
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
    let mut used: Vec<String> = Vec::new();

    // Sources: their bindings, selector and interceptor lists.
    let mut sources = Vec::new();
    for l in &source_names {
        let mut keys = Keys::new(
            file,
            format!("{agent}.sources.{}.", l.name),
            &l.name,
            l.line,
            src_comps.take(&l.name),
            env,
        );
        if let Some(line) = keys.has("type") {
            keys.set_home_line(line);
        }
        let hint = match keys.has("channel") {
            Some(line) => format!(
                "sources take `channels` (plural, space-separated); line {line} sets `channel`"
            ),
            None => "name the channels this source puts into, separated by spaces".to_string(),
        };
        // A binding error is recorded and the source still goes on to its parser (with the
        // channels that do exist), so that its own errors are reported in the same run.
        let ch = match keys.required("channels", &hint) {
            Ok(ch) => ch,
            Err(e) => {
                errors.push(e);
                Val {
                    value: String::new(),
                    line: keys.home_line(),
                }
            }
        };
        let mut bound: Vec<String> = Vec::new();
        for name in ch.value.split_whitespace() {
            if bound.iter().any(|b| b == name) {
                let kind = WarningKind::DuplicateName {
                    name: name.to_string(),
                };
                keys.warn(ch.line, "channels", kind);
                continue;
            }
            if !channel_list.iter().any(|c| c == name) {
                // With no channels listed at all, that one error says it.
                if !channel_list.is_empty() {
                    errors.push(unknown_channel(keys.full("channels"), ch.line, name));
                }
                continue;
            }
            bound.push(name.to_string());
        }
        let selector = selector(&mut keys, env);
        let interceptors = interceptors(&mut keys, env);
        used.extend(bound.iter().cloned());
        sources.push(SourceNode {
            name: l.name.clone(),
            keys,
            channels: bound,
            interceptors,
            selector,
        });
    }

    // Sinks: the one channel each drains.
    let mut sinks = Vec::new();
    for l in &sink_names {
        let mut keys = Keys::new(
            file,
            format!("{agent}.sinks.{}.", l.name),
            &l.name,
            l.line,
            sink_comps.take(&l.name),
            env,
        );
        if let Some(line) = keys.has("type") {
            keys.set_home_line(line);
        }
        let hint = match keys.has("channels") {
            Some(line) => {
                format!("sinks take one `channel` (singular); line {line} sets `channels`")
            }
            None => "name the one channel this sink drains".to_string(),
        };
        // As for sources, a binding error still lets the sink's parser report its own.
        let channel = match keys.required("channel", &hint) {
            Err(e) => {
                errors.push(e);
                String::new()
            }
            Ok(ch) if ch.value.split_whitespace().count() > 1 => {
                errors.push(keys.bad(
                    "channel",
                    &ch,
                    "one channel name: a sink drains exactly one channel (bind more sinks to drain more channels)",
                ));
                String::new()
            }
            Ok(ch) if !channel_list.contains(&ch.value) => {
                if !channel_list.is_empty() {
                    errors.push(unknown_channel(keys.full("channel"), ch.line, &ch.value));
                }
                String::new()
            }
            Ok(ch) => ch.value,
        };
        if !channel.is_empty() {
            used.push(channel.clone());
        }
        sinks.push(SinkNode {
            name: l.name.clone(),
            keys,
            channel,
        });
    }

    let sink_list: Vec<String> = sink_names.iter().map(|l| l.name.clone()).collect();
    let mut sinkgroups: Vec<SinkGroupNode<'a>> = Vec::new();
    for l in &group_names {
        let keys = Keys::new(
            file,
            format!("{agent}.sinkgroups.{}.", l.name),
            &l.name,
            l.line,
            group_comps.take(&l.name),
            env,
        );
        match sink_group(keys, &sink_list, &sinkgroups, env, &mut warnings) {
            Ok(group) => sinkgroups.push(group),
            Err(e) => errors.push(e),
        }
    }
    for l in &group_names {
        let grouped = sinkgroups.iter().any(|g| g.sinks.contains(&l.name));
        if sink_list.contains(&l.name) && !grouped {
            let kind = WarningKind::Surprise {
                advice: format!(
                    "this sink group has the name of sink `{}`, which is in no group: flumen runs both, but Flume would run only one of them (it keys its sink runners by name); rename the group",
                    l.name
                ),
            };
            warn(
                &mut warnings,
                file,
                l.line,
                &format!("{agent}.sinkgroups.{}", l.name),
                kind,
            );
        }
    }

    // Components configured but not listed; channels nobody uses.
    let mut leftovers = vec![
        ("sources", &src_comps),
        ("channels", &ch_comps),
        ("sinks", &sink_comps),
        ("sinkgroups", &group_comps),
    ];
    if let Some(c) = comps.get("configfilters") {
        leftovers.push(("configfilters", c));
    }
    for (kind, comps) in leftovers {
        for name in &comps.order {
            if let Some(entries) = comps.keys.get(name) {
                let line = entries.iter().map(|e| e.line).min().unwrap_or(first_line);
                let warning = WarningKind::UnlistedComponent {
                    list_key: format!("{agent}.{kind}"),
                };
                warn(
                    &mut warnings,
                    file,
                    line,
                    &format!("{agent}.{kind}.{name}"),
                    warning,
                );
            }
        }
    }
    for l in &channel_names {
        if !used.contains(&l.name) {
            let key = format!("{agent}.channels.{}", l.name);
            warn(
                &mut warnings,
                file,
                l.line,
                &key,
                WarningKind::UnusedChannel,
            );
        }
    }

    Ok(Topology {
        agent: agent.to_string(),
        file,
        sources,
        channels,
        sinks,
        sinkgroups,
        warnings,
        errors,
        unsubstituted,
    })
}

/// One listed sink group, read as Flume's FlumeConfiguration and SinkGroupConfiguration read
/// it, but strict where Flume quietly runs something else than written: Flume drops a group
/// without `sinks`, and drops from a group a sink that is not listed in `<agent>.sinks` or
/// that an earlier group already has (logging a warning), so a failover group may run
/// without its backup; flumen refuses each of these with the key to fix.
fn sink_group<'a>(
    mut keys: Keys<'a>,
    sink_list: &[String],
    earlier: &[SinkGroupNode<'a>],
    env: &'a dyn Fn(&str) -> Option<String>,
    warnings: &mut Vec<ConfigWarning>,
) -> Result<SinkGroupNode<'a>, ConfigError> {
    let name = keys.name().to_string();
    let v = keys.required(
        "sinks",
        "name the sinks this group drives, separated by spaces (each one listed in the agent's `sinks`); Flume would drop the group",
    )?;
    let mut sinks: Vec<String> = Vec::new();
    for sink in v.value.split_whitespace() {
        if sinks.iter().any(|s| s == sink) {
            let kind = WarningKind::DuplicateName {
                name: sink.to_string(),
            };
            keys.warn(v.line, "sinks", kind);
            continue;
        }
        if !sink_list.iter().any(|s| s == sink) {
            let near = nearest(sink, sink_list.iter().map(String::as_str))
                .map(|n| format!(" (did you mean `{n}`?)"))
                .unwrap_or_default();
            return Err(keys.bad(
                "sinks",
                &v,
                format!(
                    "sinks listed in the agent's `sinks` ({}); `{sink}` is not{near}. Flume would drop it from the group with only a log warning",
                    sink_list.join(", ")
                ),
            ));
        }
        if let Some(other) = earlier.iter().find(|g| g.sinks.iter().any(|s| s == sink)) {
            return Err(keys.bad(
                "sinks",
                &v,
                format!(
                    "sinks in no other group: `{sink}` is already in group `{}` (a sink runs under one group's runner; Flume would leave it out of this group)",
                    other.name
                ),
            ));
        }
        sinks.push(sink.to_string());
    }
    let entries = keys
        .take_prefixed("processor.")
        .into_iter()
        .map(|(key, val)| Entry {
            key: key["processor.".len()..].to_string(),
            value: val.value,
            line: val.line,
        })
        .collect();
    let mut processor = Keys::new(
        keys.file(),
        keys.full("processor."),
        &name,
        v.line,
        entries,
        env,
    );
    if let Some(line) = processor.has("type") {
        processor.set_home_line(line);
    }
    keys.finish(warnings);
    Ok(SinkGroupNode {
        name,
        sinks,
        processor,
    })
}

/// The source's `selector.*` keys, handed on whole to the selector's own parser (the agent
/// resolves its `type`, replicating when absent).
fn selector<'a>(keys: &mut Keys<'a>, env: &'a dyn Fn(&str) -> Option<String>) -> Option<Node<'a>> {
    let taken = keys.take_prefixed("selector.");
    let line = taken.first().map(|(_, v)| v.line)?;
    let entries = taken
        .into_iter()
        .map(|(key, v)| Entry {
            key: key["selector.".len()..].to_string(),
            value: v.value,
            line: v.line,
        })
        .collect();
    Some(Node {
        name: "selector".to_string(),
        keys: Keys::new(
            keys.file(),
            keys.full("selector."),
            "selector",
            line,
            entries,
            env,
        ),
    })
}

/// `interceptors` (names separated by spaces, run in that order) and each listed
/// interceptor's `interceptors.<name>.*` keys, read as Flume's ChannelProcessor reads them;
/// keys of interceptors the list does not name are reported and ignored. (A listed
/// interceptor without a `type` is its parser's error.)
fn interceptors<'a>(keys: &mut Keys<'a>, env: &'a dyn Fn(&str) -> Option<String>) -> Vec<Node<'a>> {
    let list = keys.get("interceptors");
    let taken = keys.take_prefixed("interceptors.");
    let mut claimed = vec![false; taken.len()];
    let mut out: Vec<Node<'a>> = Vec::new();
    if let Some(list) = &list {
        let mut names: Vec<&str> = Vec::new();
        for name in list.value.split_whitespace() {
            if names.contains(&name) {
                let kind = WarningKind::DuplicateName {
                    name: name.to_string(),
                };
                keys.warn(list.line, "interceptors", kind);
            } else {
                names.push(name);
            }
        }
        for name in names {
            let own = format!("interceptors.{name}.");
            let mut entries = Vec::new();
            for (i, (key, v)) in taken.iter().enumerate() {
                if let Some(sub) = key.strip_prefix(&own).filter(|s| !s.is_empty()) {
                    claimed[i] = true;
                    entries.push(Entry {
                        key: sub.to_string(),
                        value: v.value.clone(),
                        line: v.line,
                    });
                }
            }
            out.push(Node {
                name: name.to_string(),
                keys: Keys::new(keys.file(), keys.full(&own), name, list.line, entries, env),
            });
        }
    }
    // What is left belongs to no listed interceptor: one warning per interceptor name.
    let mut unlisted: Vec<&str> = Vec::new();
    for ((key, v), _) in taken.iter().zip(&claimed).filter(|(_, c)| !**c) {
        let rest = &key["interceptors.".len()..];
        match rest.split_once('.') {
            Some((name, sub)) if !name.is_empty() && !sub.is_empty() => {
                if unlisted.contains(&name) {
                    continue;
                }
                unlisted.push(name);
                let kind = WarningKind::UnlistedComponent {
                    list_key: keys.full("interceptors"),
                };
                keys.warn(v.line, &format!("interceptors.{name}"), kind);
            }
            _ => {
                let nearest = (!rest.is_empty() && !rest.ends_with('.'))
                    .then(|| keys.full(&format!("interceptors.{rest}.type")));
                keys.warn(v.line, key, WarningKind::UnknownKey { nearest });
            }
        }
    }
    out
}
