//! `flumen config check -f FILE [-n AGENT]`: parses a Flume properties file exactly as
//! `flumen agent` would and reports, without starting anything, each agent's resolved
//! topology, its warnings and `ok` or its error.
//!
//! Without `-n` every agent the file defines (each `<agent>.sources|channels|sinks` key names
//! one) is checked; with it, only that one. The file is read once and each agent goes through
//! the agent's own parser (`agent::config::parse_with_env`, the process environment and the
//! `-D` properties, as `flumen agent` reads them), so what this prints is what `flumen agent`
//! would run or refuse. Everything, errors included, goes to stdout in order, so the report
//! reads top to bottom. Exit 0 when every checked agent parsed,
//! 1 when any did not (or the file could not be read). The parser stops at an agent's first
//! error, so one run shows at most one error per agent.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::CliError;
use crate::agent::config::{AgentConfig, SourceConfig};
use crate::config::ConfigError;
use crate::route::replicating::ReplicatingConfig;

/// `flumen config ...`
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Check a Flume properties file without starting anything: print each agent's topology,
    /// every warning, and `ok` or the error; exit 1 when any agent fails.
    Check(CheckArgs),
}

/// Options of `flumen config check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The Flume properties file to check.
    #[arg(short = 'f', long = "conf-file", value_name = "FILE")]
    pub conf_file: PathBuf,
    /// Check only this agent (default: every agent the file defines).
    #[arg(short = 'n', long = "name", value_name = "NAME")]
    pub name: Option<String>,
    /// System properties, as `flumen agent` takes them: `${sys:KEY}` references, and
    /// `-DpropertiesImplementation=org.apache.flume.node.EnvVarResolverProperties`.
    #[arg(short = 'D', value_name = "KEY=VALUE", action = clap::ArgAction::Append)]
    pub defines: Vec<String>,
}

/// Runs `flumen config ...`.
pub fn run(cmd: ConfigCommand) -> Result<ExitCode, CliError> {
    match cmd {
        ConfigCommand::Check(args) => check(&args),
    }
}

fn check(args: &CheckArgs) -> Result<ExitCode, CliError> {
    let env = super::agent::defines_env(&args.defines);
    let mut out = std::io::stdout().lock();
    let lines = report(&args.conf_file, args.name.as_deref(), &env);
    for line in &lines.lines {
        writeln!(out, "{line}").map_err(CliError::Output)?;
    }
    out.flush().map_err(CliError::Output)?;
    Ok(if lines.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// What the check prints, and whether every checked agent parsed.
#[derive(Debug)]
struct Report {
    lines: Vec<String>,
    ok: bool,
}

fn report(
    path: &std::path::Path,
    only: Option<&str>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Report {
    let failed = |e: ConfigError| Report {
        lines: vec![format!("error: {e}")],
        ok: false,
    };
    let text = match crate::config::read_file(path) {
        Ok(t) => t,
        Err(e) => return failed(e),
    };
    let file = path.display().to_string();
    let defined = match crate::config::agents(&text, &file) {
        Ok(a) => a,
        Err(e) => return failed(e),
    };
    let agents: Vec<String> = match only {
        Some(a) => vec![a.to_string()],
        None if defined.is_empty() => {
            return Report {
                lines: vec![format!(
                    "error: {file}: defines no agent: no key has the form `<agent>.sources`, `<agent>.channels` or `<agent>.sinks`"
                )],
                ok: false,
            }
        }
        None => defined.clone(),
    };
    let mut rep = Report {
        lines: Vec::new(),
        ok: true,
    };
    for agent in &agents {
        let checked = crate::agent::config::check_with_env(&text, &file, agent, env);
        if let Some(cfg) = &checked.config {
            rep.lines.extend(topology_lines(cfg));
        }
        rep.lines
            .extend(checked.warnings.iter().map(|w| format!("warning: {w}")));
        for e in checked.errors {
            // The parser lists every prefix it saw; name only the agents the file defines.
            let e = match e {
                ConfigError::UnknownAgent { file, agent, .. } => ConfigError::UnknownAgent {
                    file,
                    agent,
                    found: defined.clone(),
                },
                e => e,
            };
            rep.lines.push(format!("agent {agent}: error: {e}"));
            rep.ok = false;
        }
        if checked.config.is_some() {
            rep.lines.push(format!("agent {agent}: ok"));
        }
    }
    rep
}

/// `name (type)`.
fn named(name: &str, type_name: &str) -> String {
    format!("{name} ({type_name})")
}

/// One line per path through agent `cfg`: each source, its interceptors, then each channel it
/// puts into with the sinks draining that channel; then each sink whose channel no source
/// feeds, after its channel.
fn topology_lines(cfg: &AgentConfig) -> Vec<String> {
    let channel = |name: &str| {
        let type_name = cfg.channel(name).map_or("?", |c| c.type_name);
        named(name, type_name)
    };
    let mut lines = Vec::new();
    for source in &cfg.sources {
        if source_routes(source) {
            lines.push(format!(
                "agent {}: source {} routes by selector: {}",
                cfg.name,
                source.name,
                source.selector.spec.describe(&source.channels)
            ));
        }
        for ch in &source.channels {
            lines.push(format!(
                "agent {}: {} -> channel {}{}",
                cfg.name,
                source_part(source),
                channel(ch),
                sinks_part(cfg, ch)
            ));
        }
    }
    for sink in &cfg.sinks {
        let fed = cfg
            .sources
            .iter()
            .any(|s| s.channels.contains(&sink.channel));
        if !fed {
            lines.push(format!(
                "agent {}: no source -> channel {} -> sink {}",
                cfg.name,
                channel(&sink.channel),
                named(&sink.name, sink.type_name)
            ));
        }
    }
    lines
}

/// `source r1 (netcat)`, with ` -> interceptors i1 (timestamp), i2 (host)` when it has any.
fn source_part(source: &SourceConfig) -> String {
    let mut s = format!("source {}", named(&source.name, source.type_name));
    if !source.interceptors.is_empty() {
        let list: Vec<String> = source
            .interceptors
            .iter()
            .map(|i| named(&i.name, i.type_name))
            .collect();
        s.push_str(&format!(" -> interceptors {}", list.join(", ")));
    }
    if source_routes(source) {
        s.push_str(&format!(" -> selector {}", source.selector.type_name));
    }
    s
}

/// Whether `source`'s selector does more than send every event to every channel.
fn source_routes(source: &SourceConfig) -> bool {
    let plain = source
        .selector
        .settings::<ReplicatingConfig>()
        .is_some_and(|r| r.optional.is_empty());
    !plain
}

/// ` -> sink k1 (hdfs)`, ` -> sinks k1 (hdfs), k2 (null)`, or ` -> no sink` for channel `ch`;
/// sinks of a sink group come after their group: ` -> sink group g1 (failover) -> sinks k1
/// (avro), k2 (avro)`, and further sinks after a `;`.
fn sinks_part(cfg: &AgentConfig, ch: &str) -> String {
    let mut parts: Vec<String> = Vec::new();
    let on_channel = |k: &&crate::agent::config::SinkConfig| k.channel == ch;
    for g in &cfg.sinkgroups {
        let members: Vec<String> = cfg
            .sinks
            .iter()
            .filter(on_channel)
            .filter(|k| g.sinks.contains(&k.name))
            .map(|k| named(&k.name, k.type_name))
            .collect();
        if !members.is_empty() {
            parts.push(format!(
                "sink group {} -> {}",
                named(&g.name, g.type_name),
                sinks_list(&members)
            ));
        }
    }
    let alone: Vec<String> = cfg
        .sinks
        .iter()
        .filter(on_channel)
        .filter(|k| !cfg.sinkgroups.iter().any(|g| g.sinks.contains(&k.name)))
        .map(|k| named(&k.name, k.type_name))
        .collect();
    if !alone.is_empty() {
        parts.push(sinks_list(&alone));
    }
    if parts.is_empty() {
        " -> no sink".to_string()
    } else {
        format!(" -> {}", parts.join("; "))
    }
}

/// `sink k1 (hdfs)` or `sinks k1 (hdfs), k2 (null)`.
fn sinks_list(sinks: &[String]) -> String {
    match sinks {
        [one] => format!("sink {one}"),
        _ => format!("sinks {}", sinks.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_of(text: &str) -> Vec<String> {
        let (cfg, _) =
            crate::agent::config::parse_with_env(text, "t.conf", "a1", &|_| None).expect("parses");
        topology_lines(&cfg)
    }

    #[test]
    fn a_source_with_interceptors_to_a_sink() {
        let lines = lines_of(
            "a1.sources = r1\na1.channels = c1\na1.sinks = k1\n\
             a1.sources.r1.type = seq\na1.sources.r1.channels = c1\n\
             a1.sources.r1.interceptors = i1 i2\n\
             a1.sources.r1.interceptors.i1.type = timestamp\n\
             a1.sources.r1.interceptors.i2.type = host\n\
             a1.channels.c1.type = memory\n\
             a1.sinks.k1.type = null\na1.sinks.k1.channel = c1\n",
        );
        assert_eq!(
            lines,
            [
                "agent a1: source r1 (seq) -> interceptors i1 (timestamp), i2 (host) -> channel c1 (memory) -> sink k1 (null)"
            ]
        );
    }

    #[test]
    fn fan_out_shared_channels_and_unfed_sinks() {
        let lines = lines_of(
            "a1.sources = r1\na1.channels = c1 c2 c3\na1.sinks = k1 k2 k3\n\
             a1.sources.r1.type = seq\na1.sources.r1.channels = c1 c2\n\
             a1.channels.c1.type = memory\na1.channels.c2.type = memory\n\
             a1.channels.c3.type = memory\n\
             a1.sinks.k1.type = null\na1.sinks.k1.channel = c1\n\
             a1.sinks.k2.type = logger\na1.sinks.k2.channel = c1\n\
             a1.sinks.k3.type = null\na1.sinks.k3.channel = c3\n",
        );
        assert_eq!(
            lines,
            [
                "agent a1: source r1 (seq) -> channel c1 (memory) -> sinks k1 (null), k2 (logger)",
                "agent a1: source r1 (seq) -> channel c2 (memory) -> no sink",
                "agent a1: no source -> channel c3 (memory) -> sink k3 (null)",
            ]
        );
    }

    #[test]
    fn sink_groups_come_between_the_channel_and_their_sinks() {
        let lines = lines_of(
            "a1.sources = r1\na1.channels = c1 c2\na1.sinks = k1 k2 k3 k4\n\
             a1.sinkgroups = g1\n\
             a1.sources.r1.type = seq\na1.sources.r1.channels = c1 c2\n\
             a1.channels.c1.type = memory\na1.channels.c2.type = memory\n\
             a1.sinks.k1.type = null\na1.sinks.k1.channel = c1\n\
             a1.sinks.k2.type = logger\na1.sinks.k2.channel = c1\n\
             a1.sinks.k3.type = null\na1.sinks.k3.channel = c1\n\
             a1.sinks.k4.type = null\na1.sinks.k4.channel = c2\n\
             a1.sinkgroups.g1.sinks = k1 k2\n\
             a1.sinkgroups.g1.processor.type = failover\n",
        );
        assert_eq!(
            lines,
            [
                "agent a1: source r1 (seq) -> channel c1 (memory) -> sink group g1 (failover) -> sinks k1 (null), k2 (logger); sink k3 (null)",
                "agent a1: source r1 (seq) -> channel c2 (memory) -> sink k4 (null)",
            ]
        );
    }

    #[test]
    fn agents_are_the_prefixes_of_list_keys() {
        let text = "b.sources.r1.type = seq\nx = 1\na1.sinks = k1\nagnet.sources.r1.type = seq\n\
                    b.channels = c1\na1.sources = r1\n";
        assert_eq!(
            crate::config::agents(text, "t.conf").expect("parses"),
            ["a1", "b"]
        );
    }

    #[test]
    fn check_options() {
        use crate::cli::{Cli, Command};
        use clap::Parser;
        let cli = Cli::try_parse_from(["flumen", "config", "check", "-f", "x.conf", "-n", "b2"])
            .expect("parses");
        let Command::Config(ConfigCommand::Check(a)) = cli.command else {
            panic!("expected config check");
        };
        assert_eq!(a.conf_file, PathBuf::from("x.conf"));
        assert_eq!(a.name.as_deref(), Some("b2"));
        let cli = Cli::try_parse_from(["flumen", "config", "check", "--conf-file", "x.conf"])
            .expect("parses");
        let Command::Config(ConfigCommand::Check(a)) = cli.command else {
            panic!("expected config check");
        };
        assert_eq!(a.name, None);
        assert!(Cli::try_parse_from(["flumen", "config", "check"]).is_err());
    }
}
