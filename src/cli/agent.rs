//! `flumen agent [--conf-file F] [--name N] [--monitoring-port P]`: runs one agent of a
//! Flume properties file (or the built-in configuration, `agent::config::embedded_default()`, when
//! no file is given) until SIGTERM or SIGINT. Configuration warnings are logged; a
//! configuration error stops start-up (exit code 2, via `CliError`).
//!
//! Reload: the file is checked every `--reload-interval` seconds (30, as Flume) unless
//! `--no-reload-conf`, and read at once on SIGHUP; what changed is restarted
//! (`agent::reload`). A file that no longer parses is logged and the running configuration
//! stays.
//!
//! Monitoring: `--monitoring-port P` serves `GET /metrics` (Flume's JSON) and
//! `GET /metrics/prometheus` on `--monitoring-bind` (default 0.0.0.0, as Flume binds). Flume's
//! own form is accepted too: `-Dflume.monitoring.type=http -Dflume.monitoring.port=P` (the
//! port defaults to 41414, as in Flume). Flume's global SSL system properties
//! (`-Djavax.net.ssl.keyStore=...`, see `avro::keys::GLOBAL_SSL`) are read as Flume reads them,
//! before the matching `FLUME_SSL_*` environment variables;
//! `-DpropertiesImplementation=org.apache.flume.node.EnvVarResolverProperties` makes a plain
//! `${NAME}` in the file read the environment, as in Flume; any `-D` property can be referred
//! to as `${sys:NAME}` (`config::subst`).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use super::CliError;
use crate::agent::AgentOptions;

/// Options of `flumen agent` (Flume's `flume-ng agent -f FILE -n NAME`).
#[derive(Debug, Args)]
pub struct AgentArgs {
    /// The Flume properties file; without it the built-in configuration runs: netcat on
    /// 127.0.0.1:44444, a file channel under ./flumen-data and an hdfs sink writing DataStream
    /// (plain text) files into the local directory ./flumen-data/out.
    #[arg(short = 'f', long = "conf-file", value_name = "FILE")]
    pub conf_file: Option<PathBuf>,
    /// The agent to run from the file.
    #[arg(short = 'n', long = "name", value_name = "NAME", default_value = "a1")]
    pub name: String,
    /// Serve metrics over HTTP on this port: `GET /metrics` (Flume's JSON) and
    /// `GET /metrics/prometheus`.
    #[arg(long = "monitoring-port", value_name = "PORT")]
    pub monitoring_port: Option<u16>,
    /// The address the monitoring server binds.
    #[arg(
        long = "monitoring-bind",
        value_name = "ADDR",
        default_value_t = IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    )]
    pub monitoring_bind: IpAddr,
    /// Flume-style system properties, e.g. `-Dflume.monitoring.type=http
    /// -Dflume.monitoring.port=41414`; the file reads any of them as `${sys:KEY}`, and
    /// `-DpropertiesImplementation=org.apache.flume.node.EnvVarResolverProperties` makes a plain
    /// `${NAME}` read the environment, as in Flume.
    #[arg(short = 'D', value_name = "KEY=VALUE", action = clap::ArgAction::Append)]
    pub defines: Vec<String>,
    /// Do not check the file for changes (Flume's flag); SIGHUP still reloads it.
    #[arg(long = "no-reload-conf")]
    pub no_reload_conf: bool,
    /// How often to check the file for changes, in seconds (Flume checks every 30).
    #[arg(
        long = "reload-interval",
        value_name = "SECONDS",
        default_value_t = DEFAULT_RELOAD_INTERVAL_SECS,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub reload_interval: u64,
}

/// Flume's PollingPropertiesFileConfigurationProvider checks its file every 30 s.
pub const DEFAULT_RELOAD_INTERVAL_SECS: u64 = 30;

impl AgentArgs {
    /// The environment the configuration sees; see [`defines_env`].
    pub fn config_env(&self) -> impl Fn(&str) -> Option<String> + '_ {
        defines_env(&self.defines)
    }

    /// The monitoring port asked for, by `--monitoring-port` or by Flume's `-D` properties.
    pub fn monitoring_port(&self) -> Result<Option<u16>, CliError> {
        let mut mtype: Option<String> = None;
        let mut mport: Option<u16> = None;
        for d in &self.defines {
            let Some((key, value)) = d.split_once('=') else {
                return Err(CliError::Usage(format!(
                    "-D{d}: expected -DKEY=VALUE, e.g. -Dflume.monitoring.port=41414"
                )));
            };
            match key.trim() {
                "flume.monitoring.type" => mtype = Some(value.trim().to_string()),
                "flume.monitoring.port" => {
                    mport = Some(value.trim().parse().map_err(|_| {
                        CliError::Usage(format!("-D{d}: `{value}` is not a port number"))
                    })?)
                }
                k if crate::avro::keys::GLOBAL_SSL.iter().any(|(p, _)| *p == k) => {}
                crate::config::subst::PROPERTIES_IMPLEMENTATION => {
                    if value.trim() != crate::config::subst::ENV_VAR_RESOLVER {
                        tracing::warn!(
                            "-D{d}: only {} is understood (plain ${{NAME}} references then \
                             read the environment); ignored",
                            crate::config::subst::ENV_VAR_RESOLVER
                        );
                    }
                }
                _ => tracing::info!(
                    "-D{d}: a system property flumen reads only where the file refers to it \
                     as ${{sys:{}}}",
                    key.trim()
                ),
            }
        }
        if let Some(p) = self.monitoring_port {
            return Ok(Some(p));
        }
        match mtype.as_deref() {
            Some(t) if t.eq_ignore_ascii_case("http") => {
                Ok(Some(mport.unwrap_or(crate::metrics::DEFAULT_PORT)))
            }
            Some(t) => Err(CliError::Usage(format!(
                "-Dflume.monitoring.type={t}: only `http` monitoring is supported"
            ))),
            None => {
                if mport.is_some() {
                    tracing::warn!(
                        "-Dflume.monitoring.port is ignored without -Dflume.monitoring.type=http"
                    );
                }
                Ok(None)
            }
        }
    }
}

/// The JVM system properties that mean something without a JVM, from the environment `env`
/// and the process (`user.dir`). `None` for any other name.
fn derived_system_property(name: &str, env: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    match name {
        "user.home" => env("HOME"),
        "user.name" => env("USER").or_else(|| env("LOGNAME")),
        "user.dir" => std::env::current_dir()
            .ok()
            .map(|d| d.display().to_string()),
        "java.io.tmpdir" => Some("/tmp".into()),
        "file.separator" => Some("/".into()),
        "path.separator" => Some(":".into()),
        "line.separator" => Some("\n".into()),
        "os.name" => Some(
            match std::env::consts::OS {
                "linux" => "Linux",
                "macos" => "Mac OS X",
                other => other,
            }
            .into(),
        ),
        _ => None,
    }
}

/// The value of the last `-Dkey=value` for `key`.
fn define<'a>(defines: &'a [String], key: &str) -> Option<&'a str> {
    defines.iter().rev().find_map(|d| {
        let (k, v) = d.split_once('=')?;
        (k.trim() == key).then_some(v)
    })
}

/// The environment a configuration sees, given the `-D` properties `defines` (`flumen agent`
/// and `flumen config check` share it): a name `sys:<prop>` is the system property
/// `-Dprop=...` (`${sys:prop}`, `propertiesImplementation`), else
/// [`derived_system_property`]; Flume's global SSL system properties are
/// also answered under their `FLUME_SSL_*` variable names (a system property wins over the
/// variable, as in Flume); anything else is the process environment.
pub fn defines_env(defines: &[String]) -> impl Fn(&str) -> Option<String> + '_ {
    move |name: &str| {
        if let Some(prop) = name.strip_prefix("sys:") {
            return define(defines, prop)
                .map(str::to_string)
                .or_else(|| derived_system_property(prop, &|v| std::env::var(v).ok()));
        }
        let from_define = crate::avro::keys::GLOBAL_SSL
            .iter()
            .filter(|(_, var)| *var == name)
            .find_map(|(prop, _)| define(defines, prop));
        from_define
            .map(str::to_string)
            .or_else(|| std::env::var(name).ok())
    }
}

/// Loads the configuration and runs the agent until a signal.
pub fn run(args: &AgentArgs) -> Result<ExitCode, CliError> {
    let opts = AgentOptions {
        monitoring: args
            .monitoring_port()?
            .map(|p| SocketAddr::new(args.monitoring_bind, p)),
    };
    match &args.conf_file {
        Some(path) => {
            let defines = args.defines.clone();
            let env: crate::agent::watch::Env =
                Box::new(move |name: &str| defines_env(&defines)(name));
            // Every warning, then every error, of the whole file in one run.
            let (file, loaded) = match crate::agent::ConfigFile::load(path, &args.name, env) {
                Ok(l) => l,
                Err(rejected) => {
                    for w in &rejected.warnings {
                        tracing::warn!("{w}");
                    }
                    return Err(rejected.error.into());
                }
            };
            for w in &loaded.warnings {
                tracing::warn!("{w}");
            }
            let poll = (!args.no_reload_conf).then(|| Duration::from_secs(args.reload_interval));
            match poll {
                Some(p) => tracing::info!(
                    "configuration {} loaded for agent `{}`; checked for changes every {}s \
                     (SIGHUP reloads it at once)",
                    path.display(),
                    args.name,
                    p.as_secs()
                ),
                None => tracing::info!(
                    "configuration {} loaded for agent `{}`; not checked for changes \
                     (--no-reload-conf; SIGHUP reloads it)",
                    path.display(),
                    args.name
                ),
            }
            crate::agent::run_reloading(file, &loaded, &opts, poll)?;
        }
        None => {
            tracing::info!("no --conf-file given: running the built-in configuration");
            let cfg = crate::agent::config::embedded_default().map_err(Box::new)?;
            crate::agent::run_until_signal(&cfg, &opts)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use crate::cli::{Cli, Command};

    #[test]
    fn agent_options_and_defaults() {
        let cli = Cli::try_parse_from(["flumen", "agent"]).expect("parses");
        let Command::Agent(a) = cli.command else {
            panic!("expected agent");
        };
        assert_eq!((a.conf_file, a.name.as_str()), (None, "a1"));
        for args in [
            ["flumen", "agent", "-f", "x.conf", "-n", "b2"],
            ["flumen", "agent", "--conf-file", "x.conf", "--name", "b2"],
        ] {
            let cli = Cli::try_parse_from(args).expect("parses");
            let Command::Agent(a) = cli.command else {
                panic!("expected agent");
            };
            assert_eq!(a.conf_file, Some(std::path::PathBuf::from("x.conf")));
            assert_eq!(a.name, "b2");
        }
    }

    /// `flumen agent --help` describes the built-in configuration that actually runs without
    /// `--conf-file`: its sink's type and output directory come from `embedded_default()`, so
    /// the text cannot drift from the configuration again (it once named a file_roll sink).
    #[test]
    fn help_describes_the_built_in_configuration() {
        use clap::CommandFactory;
        let mut cmd = Cli::command();
        let agent = cmd
            .find_subcommand_mut("agent")
            .expect("an agent subcommand");
        // Whitespace-normalised, so the assertion does not depend on how clap wraps lines.
        let help = agent
            .render_long_help()
            .to_string()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        let cfg = crate::agent::config::embedded_default().expect("the built-in configuration");
        let [sink] = cfg.sinks.as_slice() else {
            panic!("the built-in configuration has one sink: {:?}", cfg.sinks);
        };
        let Some(hdfs) = sink.settings::<crate::sink::hdfs::HdfsSinkConfig>() else {
            panic!("the built-in sink is not hdfs: {sink:?}");
        };
        let sink_phrase = format!("an {} sink", sink.type_name);
        assert!(
            help.contains(&sink_phrase),
            "no {sink_phrase:?} in:\n{help}"
        );
        assert!(help.contains(&hdfs.path), "no {:?} in:\n{help}", hdfs.path);
        assert!(help.contains("DataStream"), "{help}");
        assert!(!help.contains("file_roll"), "{help}");
    }

    /// The file is checked every 30 s unless `--no-reload-conf` (Flume's flag);
    /// `--reload-interval` takes whole seconds, at least 1.
    #[test]
    fn reload_flags() {
        let a = agent_args(&["flumen", "agent", "-f", "x.conf"]);
        assert_eq!((a.no_reload_conf, a.reload_interval), (false, 30));
        let a = agent_args(&[
            "flumen",
            "agent",
            "-f",
            "x.conf",
            "--no-reload-conf",
            "--reload-interval",
            "5",
        ]);
        assert_eq!((a.no_reload_conf, a.reload_interval), (true, 5));
        for bad in ["0", "-1", "1.5", "x"] {
            assert!(
                Cli::try_parse_from(["flumen", "agent", "--reload-interval", bad]).is_err(),
                "{bad}"
            );
        }
    }

    fn agent_args(args: &[&str]) -> super::AgentArgs {
        let cli = Cli::try_parse_from(args).expect("parses");
        let Command::Agent(a) = cli.command else {
            panic!("expected agent");
        };
        a
    }

    /// Flume's global SSL system properties reach the configuration under their `FLUME_SSL_*`
    /// names (the last one given wins); other names come from the process environment.
    #[test]
    fn global_ssl_system_properties_become_the_configs_environment() {
        let a = agent_args(&[
            "flumen",
            "agent",
            "-Djavax.net.ssl.keyStore=/first.p12",
            "-Djavax.net.ssl.keyStore=/ks.p12",
            "-Djavax.net.ssl.trustStorePassword=pw=with=equals",
        ]);
        assert!(a.monitoring_port().is_ok());
        let env = a.config_env();
        assert_eq!(env("FLUME_SSL_KEYSTORE_PATH").as_deref(), Some("/ks.p12"));
        assert_eq!(
            env("FLUME_SSL_TRUSTSTORE_PASSWORD").as_deref(),
            Some("pw=with=equals")
        );
        assert_eq!(env("PATH"), std::env::var("PATH").ok());
    }

    #[test]
    fn monitoring_port_forms() {
        let port = |args: &[&str]| {
            agent_args(args)
                .monitoring_port()
                .map_err(|e| e.to_string())
        };
        assert_eq!(port(&["flumen", "agent"]), Ok(None));
        assert_eq!(
            port(&["flumen", "agent", "--monitoring-port", "4000"]),
            Ok(Some(4000))
        );
        assert_eq!(
            port(&[
                "flumen",
                "agent",
                "-Dflume.monitoring.type=http",
                "-Dflume.monitoring.port=4001"
            ]),
            Ok(Some(4001))
        );
        assert_eq!(
            port(&["flumen", "agent", "-D", "flume.monitoring.type=http"]),
            Ok(Some(41414))
        );
        assert_eq!(
            port(&["flumen", "agent", "-Dflume.monitoring.port=4001"]),
            Ok(None)
        );
        assert!(port(&["flumen", "agent", "-Dflume.monitoring.type=ganglia"]).is_err());
        assert!(port(&["flumen", "agent", "-Dflume.monitoring.port=x"]).is_err());
        assert!(port(&["flumen", "agent", "-Dnoequals"]).is_err());
        let a = agent_args(&["flumen", "agent", "--monitoring-bind", "127.0.0.1"]);
        assert_eq!(a.monitoring_bind.to_string(), "127.0.0.1");
    }
}
