//! `multiplexing` (Flume's MultiplexingChannelSelector): routes each event by the value of
//! one header. `selector.mapping.<value>` lists the channels an event with that value must
//! reach; an event without the header (or with a blank value), or with a value no mapping
//! names, goes to `selector.default`. `selector.optional.<value>` lists channels it may reach
//! as well (a failure there does not fail the put); channels that are already required for
//! that value are dropped from its optional list, as Flume drops them. Values are matched
//! exactly (case and spaces count).
//!
//! With no `default`, an event that matches no mapping goes nowhere: Flume drops it, and so
//! does flumen, with a start-up warning saying so.

use std::collections::HashMap;

use super::replicating::list;
use super::{indexes, ChannelSelector, NamedChannel, SelectorSpec, SelectorType, Targets};
use crate::config::{ConfigError, Keys, Registered, Val, WarningKind};
use crate::event::Event;

/// `multiplexing` / Flume's MultiplexingChannelSelector.
pub const TYPE: SelectorType = Registered {
    alias: "multiplexing",
    class: Some("org.apache.flume.channel.MultiplexingChannelSelector"),
    parse,
    minimal: &[("default", "c1")],
};

/// Flume's default for `selector.header`.
pub const DEFAULT_HEADER: &str = "flume.selector.header";

/// One header value's channels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    pub value: String,
    pub channels: Vec<String>,
    pub line: usize,
}

/// The selector's keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MultiplexingConfig {
    /// `selector.header`.
    pub header: String,
    /// `selector.mapping.<value>`, in line order.
    pub mapping: Vec<Mapping>,
    /// `selector.optional.<value>`, in line order.
    pub optional: Vec<Mapping>,
    /// `selector.default`, with its line (empty: none).
    pub default: Vec<String>,
    pub default_line: usize,
}

fn names(v: &Val) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for n in v.value.split_whitespace() {
        if !out.iter().any(|o| o == n) {
            out.push(n.to_string());
        }
    }
    out
}

fn mappings(keys: &mut Keys<'_>, prefix: &str) -> Vec<Mapping> {
    keys.take_prefixed(prefix)
        .into_iter()
        .filter_map(|(key, v)| {
            let value = key[prefix.len()..].to_string();
            (!value.is_empty()).then(|| Mapping {
                channels: names(&v),
                value,
                line: v.line,
            })
        })
        .collect()
}

fn parse(keys: &mut Keys<'_>) -> Result<Box<dyn SelectorSpec>, ConfigError> {
    let header = keys.text("header", DEFAULT_HEADER);
    keys.document_default("default", "");
    let (default, default_line) = match keys.get("default") {
        Some(v) => (names(&v), v.line),
        None => (Vec::new(), keys.home_line()),
    };
    keys.know("mapping.<value>");
    keys.know("optional.<value>");
    let mapping = mappings(keys, "mapping.");
    let optional = mappings(keys, "optional.");
    if default.is_empty() {
        let advice = format!(
            "no `default` channels: events whose `{header}` header is missing or matches no \
             `selector.mapping.<value>` go to no channel and are dropped (as in Flume). Set \
             `selector.default` to keep them"
        );
        keys.warn(keys.home_line(), "type", WarningKind::Surprise { advice });
    }
    Ok(Box::new(MultiplexingConfig {
        header,
        mapping,
        optional,
        default,
        default_line,
    }))
}

impl MultiplexingConfig {
    /// The channels required for header value `value` (Flume: its mapping, else default).
    fn required_for(&self, value: &str) -> &[String] {
        match self.mapping.iter().rev().find(|m| m.value == value) {
            Some(m) => &m.channels,
            None => &self.default,
        }
    }
}

impl SelectorSpec for MultiplexingConfig {
    fn named_channels(&self) -> Vec<NamedChannel> {
        let mut out = Vec::new();
        for (prefix, maps) in [("mapping", &self.mapping), ("optional", &self.optional)] {
            for m in maps {
                for c in &m.channels {
                    out.push(NamedChannel {
                        key: format!("selector.{prefix}.{}", m.value),
                        line: m.line,
                        channel: c.clone(),
                    });
                }
            }
        }
        for c in &self.default {
            out.push(NamedChannel {
                key: "selector.default".to_string(),
                line: self.default_line,
                channel: c.clone(),
            });
        }
        out
    }

    fn build(&self, channels: &[String]) -> Box<dyn ChannelSelector> {
        let mut by_value: HashMap<String, (Vec<usize>, Vec<usize>)> = HashMap::new();
        for m in &self.mapping {
            by_value.insert(
                m.value.clone(),
                (indexes(channels, &m.channels), Vec::new()),
            );
        }
        let default = indexes(channels, &self.default);
        for o in &self.optional {
            let required = indexes(channels, self.required_for(&o.value));
            let optional: Vec<usize> = indexes(channels, &o.channels)
                .into_iter()
                .filter(|c| !required.contains(c))
                .collect();
            let entry = by_value
                .entry(o.value.clone())
                .or_insert_with(|| (default.clone(), Vec::new()));
            entry.1 = optional;
        }
        Box::new(Multiplexing {
            header: self.header.clone(),
            by_value,
            default,
        })
    }

    fn describe(&self, _channels: &[String]) -> String {
        let mut parts = Vec::new();
        for m in &self.mapping {
            let names: Vec<&str> = m.channels.iter().map(String::as_str).collect();
            parts.push(format!("`{}` -> {}", m.value.escape_debug(), list(&names)));
        }
        for o in &self.optional {
            let names: Vec<&str> = o.channels.iter().map(String::as_str).collect();
            parts.push(format!(
                "`{}` -> optional {}",
                o.value.escape_debug(),
                list(&names)
            ));
        }
        let names: Vec<&str> = self.default.iter().map(String::as_str).collect();
        parts.push(format!("otherwise -> {}", list(&names)));
        format!(
            "multiplexing on header `{}`: {}",
            self.header,
            parts.join("; ")
        )
    }
}

/// The built selector.
#[derive(Debug)]
pub struct Multiplexing {
    header: String,
    /// Header value -> (required, optional).
    by_value: HashMap<String, (Vec<usize>, Vec<usize>)>,
    default: Vec<usize>,
}

impl ChannelSelector for Multiplexing {
    fn targets(&self, event: &Event) -> Targets<'_> {
        let value = event.header(&self.header);
        let found = value
            .filter(|v| !v.trim().is_empty())
            .and_then(|v| self.by_value.get(v));
        match found {
            Some((required, optional)) => Targets { required, optional },
            None => Targets {
                required: &self.default,
                optional: &[],
            },
        }
    }
}
