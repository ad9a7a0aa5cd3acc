//! `replicating` (Flume's ReplicatingChannelSelector, the default): every event goes to every
//! channel of the source. Channels listed in `selector.optional` get it too, but a failure
//! there is logged and does not fail the put; every other channel is required.

use super::{indexes, ChannelSelector, NamedChannel, SelectorSpec, SelectorType, Targets};
use crate::config::{ConfigError, Keys, Registered, WarningKind};
use crate::event::Event;

/// `replicating` / Flume's ReplicatingChannelSelector.
pub const TYPE: SelectorType = Registered {
    alias: "replicating",
    class: Some("org.apache.flume.channel.ReplicatingChannelSelector"),
    parse,
    minimal: &[],
};

/// The selector's keys.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplicatingConfig {
    /// `selector.optional`: channels whose failures do not fail the put, with the line.
    pub optional: Vec<String>,
    pub optional_line: usize,
}

fn parse(keys: &mut Keys<'_>) -> Result<Box<dyn SelectorSpec>, ConfigError> {
    // The multiplexing selector's keys under a replicating one (often a forgotten
    // `selector.type`) would route nothing: say so, rather than guess at a typo.
    let mut theirs = keys.take_prefixed("mapping.");
    theirs.extend(keys.take_prefixed("optional."));
    for k in ["header", "default"] {
        if keys.has(k).is_some() {
            // Read as a prefix, so a longer key starting with the same word goes too (it is
            // unknown here either way).
            theirs.extend(keys.take_prefixed(k));
        }
    }
    for (key, v) in theirs {
        let advice = "a key of the `multiplexing` selector, ignored: this source's selector is \
                      `replicating` (every event to every channel). Set `selector.type = \
                      multiplexing` to route by a header"
            .to_string();
        keys.warn(v.line, &key, WarningKind::Surprise { advice });
    }
    keys.document_default("optional", "");
    let mut cfg = ReplicatingConfig::default();
    if let Some(v) = keys.get("optional") {
        cfg.optional_line = v.line;
        for name in v.value.split_whitespace() {
            if !cfg.optional.iter().any(|o| o == name) {
                cfg.optional.push(name.to_string());
            }
        }
    }
    Ok(Box::new(cfg))
}

impl SelectorSpec for ReplicatingConfig {
    fn named_channels(&self) -> Vec<NamedChannel> {
        self.optional
            .iter()
            .map(|c| NamedChannel {
                key: "selector.optional".to_string(),
                line: self.optional_line,
                channel: c.clone(),
            })
            .collect()
    }

    fn build(&self, channels: &[String]) -> Box<dyn ChannelSelector> {
        let optional = indexes(channels, &self.optional);
        let required = (0..channels.len())
            .filter(|i| !optional.contains(i))
            .collect();
        Box::new(Replicating { required, optional })
    }

    fn describe(&self, channels: &[String]) -> String {
        let required: Vec<&str> = channels
            .iter()
            .filter(|c| !self.optional.contains(c))
            .map(String::as_str)
            .collect();
        let mut s = format!("replicating to {}", list(&required));
        if !self.optional.is_empty() {
            let optional: Vec<&str> = self.optional.iter().map(String::as_str).collect();
            s.push_str(&format!(" (optional: {})", list(&optional)));
        }
        s
    }
}

/// Names as `a, b` (or `nothing`).
pub(crate) fn list(names: &[&str]) -> String {
    if names.is_empty() {
        "nothing".to_string()
    } else {
        names.join(", ")
    }
}

/// The built selector.
#[derive(Debug)]
pub struct Replicating {
    required: Vec<usize>,
    optional: Vec<usize>,
}

impl Replicating {
    /// Every one of `n` channels required.
    pub fn all_required(n: usize) -> Replicating {
        Replicating {
            required: (0..n).collect(),
            optional: Vec::new(),
        }
    }
}

impl ChannelSelector for Replicating {
    fn targets(&self, _event: &Event) -> Targets<'_> {
        Targets {
            required: &self.required,
            optional: &self.optional,
        }
    }

    fn sends_everything_everywhere(&self) -> bool {
        self.optional.is_empty()
    }
}
