//! What can stop start-up ([`ConfigError`]) and what is only reported ([`ConfigWarning`]).
//! Every message names the file, the line and the full key, and says what to do.

use std::fmt;

/// The agent part of a full key (`a1` in `a1.sources.r1.channels`).
fn agent_of(key: &str) -> &str {
    key.split('.').next().unwrap_or_default()
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "(none)".to_string()
    } else {
        items.join(", ")
    }
}

/// A configuration mistake that stops start-up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{file}: cannot read the configuration file: {source}")]
    Io {
        file: String,
        #[source]
        source: std::io::Error,
    },
    /// A malformed escape in the properties text.
    #[error("{file}:{line}: {message}")]
    Syntax {
        file: String,
        line: usize,
        message: String,
    },
    /// No key in the file starts with `<agent>.`.
    #[error("{file}: no configuration for agent `{agent}`; agents defined in this file: {}. Pass one of them with --name, or add `{agent}.sources`, `{agent}.channels` and `{agent}.sinks`", list(.found))]
    UnknownAgent {
        file: String,
        agent: String,
        found: Vec<String>,
    },
    /// A required key is absent.
    #[error("{file}:{line}: missing required key `{key}`: {hint}")]
    MissingKey {
        file: String,
        /// The component's `type` line, or where the component (or agent) is listed.
        line: usize,
        key: String,
        hint: String,
    },
    /// A value that cannot be used; `expected` lists what is accepted.
    #[error("{file}:{line}: bad value `{value}` for `{key}`: {expected}")]
    BadValue {
        file: String,
        line: usize,
        key: String,
        value: String,
        expected: String,
    },
    /// A source or sink bound to a channel not listed in `<agent>.channels`.
    #[error("{file}:{line}: `{key}` names channel `{channel}`, which is not in `{agent}.channels` (channels: {known}). Add it to `{agent}.channels` and configure it, or fix the name{hint}", agent = agent_of(.key), known = list(.known))]
    UnknownChannel {
        file: String,
        line: usize,
        /// The binding key, `<agent>.sources.<name>.channels` or `<agent>.sinks.<name>.channel`.
        key: String,
        channel: String,
        /// The channels the agent lists.
        known: Vec<String>,
        /// Extra advice (starts with "; "), or empty.
        hint: Box<str>,
    },
    /// A `type` that names no component we know.
    #[error("{file}:{line}: unknown {component} type `{value}` for `{key}`; flumen's {component} types are: {}. Flume class names are accepted where flumen has the component", list(.known))]
    UnknownType {
        file: String,
        line: usize,
        key: String,
        /// "source", "channel" or "sink".
        component: &'static str,
        value: String,
        known: Vec<String>,
    },
    /// A Flume feature or component flumen does not implement (yet).
    #[error("{file}:{line}: `{key}`: not supported yet: {feature}. {hint}")]
    Unsupported {
        file: String,
        line: usize,
        key: String,
        feature: String,
        hint: String,
    },
    /// A source or sink batch larger than its channel's transaction capacity (Flume's rule:
    /// such a batch can never commit, see FLUME-3107).
    #[error("{file}:{line}: `{key}` = {batch_size} exceeds `{channel_key}` = {transaction_capacity} (line {channel_line}): a batch must fit in one channel transaction. Lower `{key}` or raise `{channel_key}`")]
    BatchOverTransactionCapacity {
        file: String,
        /// Line of the batch size key (or of the component's type when defaulted).
        line: usize,
        key: String,
        batch_size: u64,
        channel_key: String,
        /// Line of the transactionCapacity key (or of the channel's type when defaulted).
        channel_line: usize,
        transaction_capacity: u64,
    },
    /// `${env:NAME}` with `NAME` unset.
    #[error("{file}:{line}: `{key}` uses ${{env:{name}}} but environment variable `{name}` is not set. Set it, or give a fallback: ${{env:{name}:-value}}")]
    EnvVar {
        file: String,
        line: usize,
        key: String,
        name: String,
    },
    /// A `${...}` reference that cannot be resolved: a system property not given with `-D`,
    /// a nested reference naming an unset variable, a reference loop, or a plain `${NAME}`
    /// left as it is in a value a component cannot use. `reference` is quoted whole.
    #[error(
        "{file}:{line}: `{key}` holds the reference `{reference}`, which is not resolved: {why}"
    )]
    Unresolved {
        file: String,
        line: usize,
        key: String,
        reference: String,
        why: String,
    },
    /// Several problems, each stopping the agent on its own; one run reports them all.
    #[error("{} problems, each below; flumen starts nothing until every one is fixed:{}", .errors.len(), each_line(.errors))]
    Many { errors: Vec<ConfigError> },
}

impl ConfigError {
    /// The line the error points at, when it has one.
    pub fn line(&self) -> Option<usize> {
        match self {
            ConfigError::Io { .. } | ConfigError::UnknownAgent { .. } => None,
            ConfigError::Syntax { line, .. }
            | ConfigError::MissingKey { line, .. }
            | ConfigError::BadValue { line, .. }
            | ConfigError::UnknownChannel { line, .. }
            | ConfigError::UnknownType { line, .. }
            | ConfigError::Unsupported { line, .. }
            | ConfigError::BatchOverTransactionCapacity { line, .. }
            | ConfigError::EnvVar { line, .. }
            | ConfigError::Unresolved { line, .. } => Some(*line),
            ConfigError::Many { errors } => errors.first().and_then(ConfigError::line),
        }
    }

    /// The full key the error is about, when it names one.
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::MissingKey { key, .. }
            | ConfigError::BadValue { key, .. }
            | ConfigError::UnknownChannel { key, .. }
            | ConfigError::UnknownType { key, .. }
            | ConfigError::Unsupported { key, .. }
            | ConfigError::BatchOverTransactionCapacity { key, .. }
            | ConfigError::EnvVar { key, .. }
            | ConfigError::Unresolved { key, .. } => Some(key),
            _ => None,
        }
    }

    /// The single problems this error stands for: itself, or each of [`ConfigError::Many`].
    pub fn each(&self) -> Vec<&ConfigError> {
        match self {
            ConfigError::Many { errors } => errors.iter().flat_map(ConfigError::each).collect(),
            e => vec![e],
        }
    }
}

/// `errors`, each on a line of its own.
fn each_line(errors: &[ConfigError]) -> String {
    errors.iter().map(|e| format!("\n  {e}")).collect()
}

/// Something worth telling the operator that does not stop start-up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigWarning {
    pub file: String,
    pub line: usize,
    /// The full key (or component prefix, e.g. `a1.sources.r2`) the warning is about.
    pub key: String,
    pub kind: WarningKind,
}

/// The kinds of [`ConfigWarning`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum WarningKind {
    /// No component reads this key (Flume would ignore it silently). `nearest` is the known key
    /// closest by edit distance.
    UnknownKey { nearest: Option<String> },
    /// The key is defined again later; the later value wins (as in Java).
    DuplicateKey { previous_line: usize },
    /// A Flume key we accept but do not act on; `reason` says what flumen does instead.
    IgnoredKey { reason: String },
    /// A key with an empty value is ignored, as Flume ignores it.
    EmptyValue,
    /// A component has keys but is not listed in `list_key`, so it is not started.
    UnlistedComponent { list_key: String },
    /// A name listed twice in a list; the second mention is ignored.
    DuplicateName { name: String },
    /// A channel no source or sink is bound to.
    UnusedChannel,
    /// A plain `${NAME}` reference nothing resolves, left as it is (Flume leaves it too).
    NotSubstituted { reference: String },
    /// A key Flume 1.11 reads for this component's type and flumen does not; `note` says what
    /// flumen does instead and what to do (`config::flume_keys`).
    FlumeKeyNotImplemented { note: String },
    /// A key Flume reads only for another type (`other`) of this `kind`: Flume ignores it
    /// here too (a leftover of a changed `type`?).
    FlumeKeyOfOtherType { other: String, kind: String },
    /// A value whose trailing whitespace (`removed`, escaped) is trimmed away, as Flume trims
    /// it, on a key where that can change its meaning (a pattern, a path, text put into
    /// events or file names).
    TrailingWhitespace { removed: String },
    /// A key that is not of the form `<agent>.<...>`; Flume ignores it too.
    NoAgentPrefix,
    /// Keys whose agent prefix (`agnet`) is no agent of the file but close to `agent`, which
    /// is: `count` keys Flume (and flumen) ignore, most likely a typo.
    NearAgent {
        prefix: String,
        agent: String,
        count: usize,
    },
    /// A setting that works but probably not as meant; `advice` says why and what to do.
    Surprise { advice: String },
    /// A key Flume renamed (`brokerList`): its value is used for `replacement`, as Flume does,
    /// with a warning naming the new key.
    Deprecated { replacement: String },
}

impl fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: `{}`: ", self.file, self.line, self.key)?;
        match &self.kind {
            WarningKind::UnknownKey { nearest: Some(n) } => {
                write!(f, "unknown key, ignored; the nearest known key is `{n}`")
            }
            WarningKind::UnknownKey { nearest: None } => write!(f, "unknown key, ignored"),
            WarningKind::DuplicateKey { previous_line } => write!(
                f,
                "defined again; this value replaces the one on line {previous_line}"
            ),
            WarningKind::IgnoredKey { reason } => {
                write!(f, "accepted for Flume compatibility but not acted on: {reason}")
            }
            WarningKind::EmptyValue => {
                write!(f, "empty value, key ignored (as Flume does); remove it or give a value")
            }
            WarningKind::UnlistedComponent { list_key } => write!(
                f,
                "configured but not listed in `{list_key}`, so not started; add it to `{list_key}` or remove its keys"
            ),
            WarningKind::DuplicateName { name } => {
                write!(f, "`{name}` is listed twice; the second mention is ignored")
            }
            WarningKind::UnusedChannel => {
                write!(f, "no source or sink is bound to this channel")
            }
            WarningKind::NotSubstituted { reference } => write!(
                f,
                "`{reference}` is left as it is: no property of the file has that name (Flume resolves a plain ${{NAME}} to the environment only with -DpropertiesImplementation=org.apache.flume.node.EnvVarResolverProperties; or write ${{env:NAME}}, or $${{...}} to keep it literally)"
            ),
            WarningKind::NearAgent {
                prefix,
                agent,
                count,
            } => write!(
                f,
                "`{prefix}` is not an agent of this file (it has no `{prefix}.sources`, `{prefix}.channels` or `{prefix}.sinks`), so this key{} {} ignored; did you mean `{agent}`?",
                if *count > 1 { format!(" and {} more with that prefix", count - 1) } else { String::new() },
                if *count > 1 { "are" } else { "is" },
            ),
            WarningKind::FlumeKeyNotImplemented { note } => {
                write!(f, "Flume's key, not implemented by flumen: {note}")
            }
            WarningKind::FlumeKeyOfOtherType { other, kind } => write!(
                f,
                "a key of Flume's `{other}` {kind}, which this {kind}'s type does not read (in Flume either), so it is ignored; remove it (left over from an earlier `type`?)"
            ),
            WarningKind::TrailingWhitespace { removed } => write!(
                f,
                "the value ends with whitespace (\"{removed}\"), which is removed (Flume removes it too), so the value used ends before it; if a path or pattern was meant without it, delete it; if it was meant, no properties escape keeps it: in a pattern write `[ ]` or `\\s` instead"
            ),
            WarningKind::NoAgentPrefix => write!(
                f,
                "not of the form <agent>.<sources|channels|sinks>...: no component reads it (a `${{...}}` reference in a value may)"
            ),
            WarningKind::Surprise { advice } => f.write_str(advice),
            WarningKind::Deprecated { replacement } => write!(
                f,
                "deprecated (Flume 1.7 renamed it); its value is used for `{replacement}`: rename the key"
            ),
        }
    }
}
