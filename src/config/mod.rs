//! Flume-compatible configuration, the part every component shares: a Java-properties file
//! read as Flume reads it, one agent's layout ([`Topology`]: agents, lists, bindings,
//! selectors, interceptor lists), and the tools each component parses its own keys with
//! ([`Keys`], typed value helpers, [`Registered`], [`ConfigError`] with file, line and key).
//!
//! ```text
//! a1.sources = r1
//! a1.channels = c1
//! a1.sinks = k1
//! a1.sources.r1.type = netcat
//! a1.sources.r1.bind = 127.0.0.1
//! a1.sources.r1.port = 44444
//! a1.sources.r1.channels = c1
//! a1.channels.c1.type = file
//! a1.sinks.k1.type = logger
//! a1.sinks.k1.channel = c1
//! ```
//!
//! Layers: `properties` reads the text exactly as `java.util.Properties::load` does (keys,
//! values, escapes, continuations, line numbers, later duplicates winning); `subst` replaces
//! `${env:NAME}` in values (Flume 1.10+); `topology` selects the agent, trims values (as Flume
//! does) and checks the layout; each component's own module then reads its keys from a
//! [`Keys`]. Turning a topology into typed, runnable components is the agent layer's job
//! (`crate::agent::config`, through its registry): nothing here knows a component.
//!
//! Where Flume silently drops a misconfigured component or ignores a mistake, flumen either
//! stops start-up with a [`ConfigError`] naming the file, line and key, or returns a
//! [`ConfigWarning`] the runtime logs. docs/CONFIG.md lists every component, key and default.

use std::path::Path;

pub mod charset;
mod component;
mod error;
pub mod flume_keys;
pub mod java_regex;
mod keys;
mod properties;
pub mod subst;
mod topology;
pub mod values;

pub use component::{resolve, AsAny, ParseFn, Registered};
pub use error::{ConfigError, ConfigWarning, WarningKind};
pub use keys::{Entry, Keys, KnownKey, Val};
pub use topology::{Node, SinkGroupNode, SinkNode, SourceNode, Topology};

/// Where channel directories go when `checkpointDir`/`dataDirs` are unset:
/// `./flumen-data/<channel>/checkpoint` and `./flumen-data/<channel>/data` (Flume uses
/// `~/.flume/file-channel/{checkpoint,data}`, shared by every channel that leaves them unset).
pub const DEFAULT_DATA_ROOT: &str = "./flumen-data";

/// Reads the configuration file at `path`. The text is read as UTF-8, or as ISO-8859-1 (what
/// Java's `Properties.load(InputStream)` assumes) when it is not valid UTF-8.
pub fn read_file(path: &Path) -> Result<String, ConfigError> {
    let bytes = std::fs::read(path).map_err(|source| ConfigError::Io {
        file: path.display().to_string(),
        source,
    })?;
    Ok(match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => e.into_bytes().iter().map(|&b| char::from(b)).collect(),
    })
}

/// Reads agent `agent`'s layout from properties `text`; `file` names the text in messages.
/// `env` resolves `${env:NAME}` (and, later, Flume's global SSL variables).
pub fn topology<'a>(
    text: &str,
    file: &'a str,
    agent: &str,
    env: &'a dyn Fn(&str) -> Option<String>,
) -> Result<Topology<'a>, ConfigError> {
    topology::read(&parse_properties(text, file)?, file, agent, env)
}

/// The agents properties `text` defines, in order of first appearance: the name before the
/// first dot of every `<agent>.sources`, `<agent>.channels` or `<agent>.sinks` key. `file`
/// names the text in messages.
pub fn agents(text: &str, file: &str) -> Result<Vec<String>, ConfigError> {
    Ok(topology::agents(&parse_properties(text, file)?))
}

fn parse_properties(text: &str, file: &str) -> Result<properties::Properties, ConfigError> {
    properties::parse(text).map_err(|e| ConfigError::Syntax {
        file: file.to_string(),
        line: e.line,
        message: e.message,
    })
}

/// The configuration `flumen agent` runs when given no file (`crate::agent::config::embedded_default`
/// parses it).
pub const EMBEDDED_DEFAULT_PROPERTIES: &str = "\
# flumen's built-in configuration, used when no --conf-file is given.
# netcat on 127.0.0.1:44444 -> file channel under ./flumen-data -> hdfs sink writing plain
# text files (DataStream) into the local directory ./flumen-data/out; point hdfs.path at
# hdfs://namenode:8020/... to write to HDFS instead.
a1.sources = r1
a1.channels = c1
a1.sinks = k1

a1.sources.r1.type = netcat
a1.sources.r1.bind = 127.0.0.1
a1.sources.r1.port = 44444
a1.sources.r1.channels = c1

a1.channels.c1.type = file
a1.channels.c1.checkpointDir = ./flumen-data/checkpoint
a1.channels.c1.dataDirs = ./flumen-data/data

a1.sinks.k1.type = hdfs
a1.sinks.k1.hdfs.path = ./flumen-data/out
a1.sinks.k1.hdfs.fileType = DataStream
a1.sinks.k1.hdfs.rollSize = 134217728
a1.sinks.k1.hdfs.rollCount = 0
a1.sinks.k1.channel = c1
";
