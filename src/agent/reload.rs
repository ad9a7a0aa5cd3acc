//! What a configuration reload changes: each component's *fingerprint* (its keys as written,
//! after substitution and trimming, without line numbers, plus what it is bound to) and the
//! [`Plan`] that compares two sets of fingerprints to decide which components are restarted,
//! added, removed or kept. Sans-IO: [`super::Agent::reload`] carries the plan out.
//!
//! The rules (docs/CONFIG.md, "Reloading"):
//! - a component is *changed* when its own keys differ or what it is bound to differs (a
//!   source's channels, selector and interceptors; a sink's channel and sink group; a sink
//!   group's sinks and processor keys); moving or commenting lines changes nothing;
//! - a changed channel is closed and reopened (a file channel keeps its events on disk),
//!   except one [`Plan::new`] is told to keep (a memory channel: reopening it would lose its
//!   events, so it keeps running with its old settings until the agent restarts);
//! - everything bound to a restarted channel restarts too, and a sink group restarts (with
//!   all its sinks, which run on its thread) when any of its sinks does.
//!
//! Invariant: a plan never restarts a component bound to a channel it keeps open without
//! need, and never keeps one bound to a channel it closes.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use super::AgentConfig;
use crate::config::{self, ConfigError, Keys};

/// One component's keys and bindings, sorted, without line numbers.
type Print = Vec<(String, String)>;

/// Every component's fingerprint in one agent's configuration (see the module docs).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fingerprints {
    channels: BTreeMap<String, Print>,
    sources: BTreeMap<String, Print>,
    sinks: BTreeMap<String, Print>,
    groups: BTreeMap<String, Print>,
    /// Each sink group's sinks, in the order written.
    group_sinks: BTreeMap<String, Vec<String>>,
    /// Each source's channels.
    source_channels: BTreeMap<String, Vec<String>>,
    /// Each sink's channel.
    sink_channel: BTreeMap<String, String>,
}

/// Every key of `keys`, `prefix` before each name, sorted by name.
fn entries(prefix: &str, mut keys: Keys<'_>) -> Print {
    // These keys are a throwaway copy of the layout (the parsers read their own), so taking
    // them all leaves no unknown-key warning unreported.
    keys.take_prefixed("")
        .into_iter()
        .map(|(k, v)| (format!("{prefix}{k}"), v.value))
        .collect()
}

fn sorted(mut p: Print) -> Print {
    p.sort();
    p
}

impl Fingerprints {
    /// The fingerprints of agent `agent` in properties `text` (`file` names it in errors,
    /// `env` resolves references as for [`super::config::parse_with_env`]).
    pub fn read(
        text: &str,
        file: &str,
        agent: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Fingerprints, ConfigError> {
        let topo = config::topology(text, file, agent, env)?;
        let mut fp = Fingerprints::default();
        for c in topo.channels {
            fp.channels.insert(c.name, sorted(entries("", c.keys)));
        }
        let mut group_of = BTreeMap::new();
        for g in topo.sinkgroups {
            for s in &g.sinks {
                group_of.insert(s.clone(), g.name.clone());
            }
            let mut p = entries("processor.", g.processor);
            p.push(("<sinks>".into(), g.sinks.join(" ")));
            fp.groups.insert(g.name.clone(), sorted(p));
            fp.group_sinks.insert(g.name, g.sinks);
        }
        for s in topo.sources {
            let mut p = entries("", s.keys);
            p.push(("<channels>".into(), s.channels.join(" ")));
            if let Some(sel) = s.selector {
                p.extend(entries("selector.", sel.keys));
            }
            let names: Vec<&str> = s.interceptors.iter().map(|i| i.name.as_str()).collect();
            p.push(("<interceptors>".into(), names.join(" ")));
            for i in s.interceptors {
                let prefix = format!("interceptors.{}.", i.name);
                p.extend(entries(&prefix, i.keys));
            }
            fp.sources.insert(s.name.clone(), sorted(p));
            fp.source_channels.insert(s.name, s.channels);
        }
        for k in topo.sinks {
            let mut p = entries("", k.keys);
            p.push(("<channel>".into(), k.channel.clone()));
            let group = group_of.get(&k.name).cloned().unwrap_or_default();
            p.push(("<group>".into(), group));
            fp.sinks.insert(k.name.clone(), sorted(p));
            fp.sink_channel.insert(k.name, k.channel);
        }
        Ok(fp)
    }

    /// Fingerprints of `cfg` when what it was read from is unknown (an agent started from a
    /// configuration built in code): every component then differs from any file, so a
    /// reload restarts them all.
    pub fn unknown(cfg: &AgentConfig) -> Fingerprints {
        let unknown = || vec![("<unknown>".to_string(), String::new())];
        let mut fp = Fingerprints::default();
        for c in &cfg.channels {
            fp.channels.insert(c.name.clone(), unknown());
        }
        for s in &cfg.sources {
            fp.sources.insert(s.name.clone(), unknown());
            fp.source_channels
                .insert(s.name.clone(), s.channels.clone());
        }
        for k in &cfg.sinks {
            fp.sinks.insert(k.name.clone(), unknown());
            fp.sink_channel.insert(k.name.clone(), k.channel.clone());
        }
        for g in &cfg.sinkgroups {
            fp.groups.insert(g.name.clone(), unknown());
            fp.group_sinks.insert(g.name.clone(), g.sinks.clone());
        }
        fp
    }

    /// The sink group `sink` belongs to, if any.
    fn group_of(&self, sink: &str) -> Option<&str> {
        self.group_sinks
            .iter()
            .find(|(_, sinks)| sinks.iter().any(|s| s == sink))
            .map(|(g, _)| g.as_str())
    }

    /// The thread units: each sink group, and each sink in no group.
    fn units(&self) -> BTreeSet<Unit> {
        let mut u: BTreeSet<Unit> = self.groups.keys().cloned().map(Unit::Group).collect();
        for s in self.sinks.keys() {
            if self.group_of(s).is_none() {
                u.insert(Unit::Sink(s.clone()));
            }
        }
        u
    }

    /// Forgets channel `name` (it is not open), so the next plan opens it again.
    pub(super) fn forget_channel(&mut self, name: &str) {
        self.channels.remove(name);
    }

    /// Forgets source `name` (it is not running).
    pub(super) fn forget_source(&mut self, name: &str) {
        self.sources.remove(name);
        self.source_channels.remove(name);
    }

    /// Forgets a thread unit (it is not running): a sink, or a group and its sinks.
    pub(super) fn forget_unit(&mut self, unit: &Unit) {
        let sinks = match unit {
            Unit::Sink(s) => vec![s.clone()],
            Unit::Group(g) => {
                self.groups.remove(g);
                self.group_sinks.remove(g).unwrap_or_default()
            }
        };
        for s in sinks {
            self.sinks.remove(&s);
            self.sink_channel.remove(&s);
        }
    }

    /// Keeps `old`'s fingerprint of channel `name` (it runs with its old settings).
    pub(super) fn keep_channel_from(&mut self, old: &Fingerprints, name: &str) {
        if let Some(p) = old.channels.get(name) {
            self.channels.insert(name.to_string(), p.clone());
        }
    }
}

/// What one thread runs for the sinks: a sink group (with all its sinks) or a sink in no
/// group.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Unit {
    Group(String),
    Sink(String),
}

/// The fate of one kind of component in a reload, names sorted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// Stopped, then started with the new configuration.
    pub restarted: Vec<String>,
    /// New in the file: started.
    pub added: Vec<String>,
    /// Gone from the file: stopped.
    pub removed: Vec<String>,
    /// Unchanged: left running.
    pub kept: Vec<String>,
}

impl Changes {
    /// Sorts `names` into the four fates: `restart(name)` decides for names in both.
    fn of<'a>(
        old: impl Iterator<Item = &'a String>,
        new: impl Iterator<Item = &'a String>,
        mut restart: impl FnMut(&str) -> bool,
    ) -> Changes {
        let old: BTreeSet<&String> = old.collect();
        let new: BTreeSet<&String> = new.collect();
        let mut c = Changes::default();
        for n in old.union(&new) {
            let list = match (old.contains(n), new.contains(n)) {
                (true, false) => &mut c.removed,
                (false, true) => &mut c.added,
                _ if restart(n) => &mut c.restarted,
                _ => &mut c.kept,
            };
            list.push((*n).clone());
        }
        c
    }

    /// The names to stop: restarted and removed.
    pub fn to_stop(&self) -> impl Iterator<Item = &String> {
        self.restarted.iter().chain(&self.removed)
    }

    /// The names to start: restarted and added.
    pub fn to_start(&self) -> impl Iterator<Item = &String> {
        self.restarted.iter().chain(&self.added)
    }

    fn is_empty(&self) -> bool {
        self.restarted.is_empty() && self.added.is_empty() && self.removed.is_empty()
    }
}

/// What a reload does, component by component.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub channels: Changes,
    /// Channels whose keys changed but which keep running with their old settings (see
    /// [`Plan::new`]); also listed in `channels.kept`.
    pub stale_channels: Vec<String>,
    pub sources: Changes,
    /// Sinks, each named; a sink in a restarted group is restarted.
    pub sinks: Changes,
    pub groups: Changes,
    /// The sink threads to stop and start: groups and sinks in no group.
    pub units: UnitChanges,
}

/// [`Changes`] of sink threads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnitChanges {
    pub stop: Vec<Unit>,
    pub start: Vec<Unit>,
}

impl Plan {
    /// Compares what runs (`old`) with the new file (`new`). A channel for which
    /// `keep_open(name)` holds is never reopened for a change of its keys (it is listed in
    /// `stale_channels`); it is still closed when removed.
    pub fn new(old: &Fingerprints, new: &Fingerprints, keep_open: &dyn Fn(&str) -> bool) -> Plan {
        let mut stale = Vec::new();
        let channels = Changes::of(old.channels.keys(), new.channels.keys(), |c| {
            if old.channels.get(c) == new.channels.get(c) {
                return false;
            }
            if keep_open(c) {
                stale.push(c.to_string());
                return false;
            }
            true
        });
        let reopened = |c: &str| channels.restarted.iter().any(|r| r == c);
        let sources = Changes::of(old.sources.keys(), new.sources.keys(), |s| {
            old.sources.get(s) != new.sources.get(s)
                || old
                    .source_channels
                    .get(s)
                    .into_iter()
                    .flatten()
                    .any(|c| reopened(c))
        });
        let sink_changed = |s: &str| {
            old.sinks.get(s) != new.sinks.get(s)
                || old.sink_channel.get(s).is_some_and(|c| reopened(c))
        };
        let groups = Changes::of(old.groups.keys(), new.groups.keys(), |g| {
            old.groups.get(g) != new.groups.get(g)
                || new
                    .group_sinks
                    .get(g)
                    .into_iter()
                    .flatten()
                    .any(|s| sink_changed(s))
        });
        let group_restarts = |g: &str| groups.restarted.iter().any(|r| r == g);
        let sinks = Changes::of(old.sinks.keys(), new.sinks.keys(), |s| {
            sink_changed(s) || new.group_of(s).is_some_and(group_restarts)
        });
        let (old_units, new_units) = (old.units(), new.units());
        let unit_restarts = |u: &Unit| match u {
            Unit::Group(g) => group_restarts(g),
            Unit::Sink(s) => sinks.restarted.contains(s),
        };
        let units = UnitChanges {
            stop: old_units
                .iter()
                .filter(|u| !new_units.contains(u) || unit_restarts(u))
                .cloned()
                .collect(),
            start: new_units
                .iter()
                .filter(|u| !old_units.contains(u) || unit_restarts(u))
                .cloned()
                .collect(),
        };
        Plan {
            channels,
            stale_channels: stale,
            sources,
            sinks,
            groups,
            units,
        }
    }

    /// Whether the reload changes nothing that runs.
    pub fn is_empty(&self) -> bool {
        self.channels.is_empty()
            && self.sources.is_empty()
            && self.sinks.is_empty()
            && self.groups.is_empty()
    }
}

/// One of the four lists of a [`Changes`].
type Pick = fn(&Changes) -> &Vec<String>;

impl fmt::Display for Plan {
    /// `restarted: sink k1; added: channel c2; removed: -; kept: source r1, channel c1`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kinds = [
            ("source", &self.sources),
            ("channel", &self.channels),
            ("sink group", &self.groups),
            ("sink", &self.sinks),
        ];
        let fates: [(&str, Pick); 4] = [
            ("restarted", |c| &c.restarted),
            ("added", |c| &c.added),
            ("removed", |c| &c.removed),
            ("kept", |c| &c.kept),
        ];
        for (i, (fate, pick)) in fates.iter().enumerate() {
            let names: Vec<String> = kinds
                .iter()
                .flat_map(|(kind, c)| pick(c).iter().map(move |n| format!("{kind} {n}")))
                .collect();
            let sep = if i == 0 { "" } else { "; " };
            let names = if names.is_empty() {
                "-".to_string()
            } else {
                names.join(", ")
            };
            write!(f, "{sep}{fate}: {names}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "\
a1.sources = r1 r2
a1.channels = c1 c2
a1.sinks = k1 k2 k3
a1.sources.r1.type = seq
a1.sources.r1.channels = c1
a1.sources.r2.type = seq
a1.sources.r2.channels = c2
a1.channels.c1.type = memory
a1.channels.c2.type = file
a1.channels.c2.checkpointDir = /tmp/cp
a1.channels.c2.dataDirs = /tmp/data
a1.sinks.k1.type = null
a1.sinks.k1.channel = c1
a1.sinks.k2.type = null
a1.sinks.k2.channel = c2
a1.sinks.k3.type = null
a1.sinks.k3.channel = c2
a1.sinkgroups = g1
a1.sinkgroups.g1.sinks = k2 k3
a1.sinkgroups.g1.processor.type = failover
";

    fn fp(text: &str) -> Fingerprints {
        Fingerprints::read(text, "test.conf", "a1", &|_| None).expect("parses")
    }

    fn plan(new: &str) -> Plan {
        Plan::new(&fp(BASE), &fp(new), &|c| c == "c1")
    }

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_string()).collect()
    }

    #[test]
    fn the_same_file_changes_nothing_even_with_lines_moved_and_comments() {
        let mut lines: Vec<&str> = BASE.lines().collect();
        lines.reverse();
        let moved = format!("# a comment\n\n{}\n", lines.join("\n"));
        let p = plan(&moved);
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(
            p.to_string(),
            "restarted: -; added: -; removed: -; kept: source r1, source r2, channel c1, \
             channel c2, sink group g1, sink k1, sink k2, sink k3"
        );
    }

    #[test]
    fn a_sink_s_own_keys_restart_that_sink_only() {
        let p = plan(&format!("{BASE}a1.sinks.k1.batchSize = 5\n"));
        assert_eq!(p.sinks.restarted, names(&["k1"]));
        assert_eq!(p.units.stop, vec![Unit::Sink("k1".into())]);
        assert_eq!(p.units.start, vec![Unit::Sink("k1".into())]);
        assert!(p.sources.restarted.is_empty() && p.channels.restarted.is_empty());
    }

    #[test]
    fn a_sink_in_a_group_restarts_the_whole_group() {
        let p = plan(&format!("{BASE}a1.sinks.k3.batchSize = 5\n"));
        assert_eq!(p.sinks.restarted, names(&["k2", "k3"]));
        assert_eq!(p.groups.restarted, names(&["g1"]));
        assert_eq!(p.units.start, vec![Unit::Group("g1".into())]);
    }

    #[test]
    fn a_file_channel_change_restarts_everything_bound_to_it() {
        let p = plan(&BASE.replace("/tmp/data", "/tmp/data2"));
        assert_eq!(p.channels.restarted, names(&["c2"]));
        assert_eq!(p.sources.restarted, names(&["r2"]));
        assert_eq!(p.sources.kept, names(&["r1"]));
        assert_eq!(p.sinks.restarted, names(&["k2", "k3"]));
        assert_eq!(p.sinks.kept, names(&["k1"]));
        assert_eq!(p.groups.restarted, names(&["g1"]));
    }

    #[test]
    fn a_memory_channel_change_keeps_it_and_its_components() {
        let p = plan(&format!("{BASE}a1.channels.c1.capacity = 5000\n"));
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(p.stale_channels, names(&["c1"]));
        assert!(p.channels.kept.contains(&"c1".to_string()));
    }

    #[test]
    fn bindings_selector_and_interceptors_restart_a_source() {
        let p = plan(&BASE.replace("r1.channels = c1", "r1.channels = c1 c2"));
        assert_eq!(p.sources.restarted, names(&["r1"]));
        let p = plan(&format!(
            "{BASE}a1.sources.r1.interceptors = i1\na1.sources.r1.interceptors.i1.type = timestamp\n"
        ));
        assert_eq!(p.sources.restarted, names(&["r1"]));
        let p = plan(&format!(
            "{BASE}a1.sources.r2.selector.type = replicating\n"
        ));
        assert_eq!(p.sources.restarted, names(&["r2"]));
        assert!(p.sinks.restarted.is_empty());
    }

    #[test]
    fn a_sink_moved_out_of_its_group_restarts_the_group_and_runs_alone() {
        let p = plan(&BASE.replace("g1.sinks = k2 k3", "g1.sinks = k2"));
        assert_eq!(p.groups.restarted, names(&["g1"]));
        assert_eq!(p.sinks.restarted, names(&["k2", "k3"]));
        assert_eq!(p.units.stop, vec![Unit::Group("g1".into())]);
        assert_eq!(
            p.units.start,
            vec![Unit::Group("g1".into()), Unit::Sink("k3".into())]
        );
    }

    #[test]
    fn added_and_removed_components() {
        let new = BASE
            .replace("a1.sources = r1 r2", "a1.sources = r1")
            .replace("a1.sinks = k1 k2 k3", "a1.sinks = k1 k2 k3 k4")
            .replace(
                "a1.sources.r2.type = seq\na1.sources.r2.channels = c2\n",
                "",
            )
            + "a1.sinks.k4.type = null\na1.sinks.k4.channel = c1\n";
        let p = plan(&new);
        assert_eq!(p.sources.removed, names(&["r2"]));
        assert_eq!(p.sinks.added, names(&["k4"]));
        assert_eq!(p.units.start, vec![Unit::Sink("k4".into())]);
        assert!(p.units.stop.is_empty());
        assert_eq!(
            p.to_string(),
            "restarted: -; added: sink k4; removed: source r2; kept: source r1, channel c1, \
             channel c2, sink group g1, sink k1, sink k2, sink k3"
        );
    }

    #[test]
    fn a_substituted_value_counts_as_written_after_substitution() {
        let text = format!("{BASE}a1.sinks.k1.batchSize = ${{env:B}}\n");
        let with = |v: &'static str| {
            Fingerprints::read(&text, "t", "a1", &move |n| {
                (n == "B").then(|| v.to_string())
            })
            .expect("parses")
        };
        let p = Plan::new(&with("5"), &with("6"), &|_| false);
        assert_eq!(p.sinks.restarted, names(&["k1"]));
        assert!(Plan::new(&with("5"), &with("5"), &|_| false).is_empty());
    }
}
