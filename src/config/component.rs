//! How a component type is named and registered: [`Registered`] pairs Flume's names for a
//! type (our alias, Flume's class name) with the function that parses its keys, and
//! [`resolve`] finds the type a `type` key names.
//!
//! Each component module defines its own `Registered` constant next to its parser; the
//! agent's registry lists those constants, and is the only other place a component is named.
//! `S` is the kind's spec trait object (`dyn SourceSpec`, `dyn SinkSpec`, ...), defined by the
//! kind's own layer, so this module knows no component and no kind.

use std::any::Any;

use super::error::ConfigError;
use super::keys::{Keys, Val};

/// Parses one component's keys into its typed configuration.
pub type ParseFn<S> = fn(&mut Keys<'_>) -> Result<Box<S>, ConfigError>;

/// A component type: its names and its parser.
pub struct Registered<S: ?Sized + 'static> {
    /// The alias written in Flume files (`netcat`), matched in any letter case as Flume does.
    pub alias: &'static str,
    /// Flume's class name (`org.apache.flume.source.NetcatSource`), matched exactly; `None`
    /// for our own types.
    pub class: Option<&'static str>,
    /// Reads the component's keys (everything but `type` and the topology keys).
    pub parse: ParseFn<S>,
    /// The fewest keys (besides `type`) that configure it: used by the docs check, which
    /// parses every registered type and holds the keys it reads against docs/CONFIG.md.
    pub minimal: &'static [(&'static str, &'static str)],
}

impl<S: ?Sized + 'static> Registered<S> {
    /// Whether `value` (a `type` key's value) names this type.
    pub fn is_named(&self, value: &str) -> bool {
        self.alias.eq_ignore_ascii_case(value) || self.class == Some(value)
    }
}

/// Upcasting to [`Any`], so tests (and tools) can look at a parsed spec's concrete type.
pub trait AsAny {
    fn as_any(&self) -> &dyn Any;
}

impl<T: Any> AsAny for T {
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// The type named by `v` (the `type` key read from `keys`) among `types`. A Flume type flumen
/// does not have (`flume_only`: alias, class; or any `org.apache.flume.` class) is
/// "not supported yet"; anything else is an unknown type. `kind` is "source", "sink", ...
pub fn resolve<'t, S: ?Sized>(
    types: &'t [Registered<S>],
    flume_only: &[(&str, &str)],
    keys: &Keys<'_>,
    v: &Val,
    kind: &'static str,
) -> Result<&'t Registered<S>, ConfigError> {
    let value = v.value.as_str();
    if let Some(t) = types.iter().find(|t| t.is_named(value)) {
        return Ok(t);
    }
    let aliases = || {
        types
            .iter()
            .map(|t| t.alias.to_string())
            .collect::<Vec<_>>()
    };
    let flume = flume_only.iter().any(|(alias, class)| {
        (!alias.is_empty() && alias.eq_ignore_ascii_case(value)) || *class == value
    }) || value.starts_with("org.apache.flume.");
    if flume {
        return Err(keys.unsupported(
            "type",
            v.line,
            format!("Flume's {kind} type `{value}`"),
            format!("flumen's {kind} types are: {}", aliases().join(", ")),
        ));
    }
    Err(ConfigError::UnknownType {
        file: keys.file().to_string(),
        line: v.line,
        key: keys.full("type"),
        component: kind,
        value: value.to_string(),
        known: aliases(),
    })
}
