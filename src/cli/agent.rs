//! `flumen agent [--conf-file F] [--name N]`: runs one agent of a Flume properties file (or
//! the built-in configuration, `config::embedded_default()`, when no file is given) until
//! SIGTERM or SIGINT. Configuration warnings are logged; a configuration error stops
//! start-up (exit code 2, via `CliError`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::CliError;
use crate::config;

/// Options of `flumen agent` (Flume's `flume-ng agent -f FILE -n NAME`).
#[derive(Debug, Args)]
pub struct AgentArgs {
    /// The Flume properties file; without it the built-in configuration runs (netcat on
    /// 127.0.0.1:44444, a file channel and a file_roll sink under ./flumen-data).
    #[arg(short = 'f', long = "conf-file", value_name = "FILE")]
    pub conf_file: Option<PathBuf>,
    /// The agent to run from the file.
    #[arg(short = 'n', long = "name", value_name = "NAME", default_value = "a1")]
    pub name: String,
}

/// Loads the configuration and runs the agent until a signal.
pub fn run(args: &AgentArgs) -> Result<ExitCode, CliError> {
    let cfg = match &args.conf_file {
        Some(path) => {
            let (cfg, warnings) = config::load(path, &args.name).map_err(Box::new)?;
            for w in &warnings {
                tracing::warn!("{w}");
            }
            tracing::info!(
                "configuration {} loaded for agent `{}`",
                path.display(),
                args.name
            );
            cfg
        }
        None => {
            tracing::info!("no --conf-file given: running the built-in configuration");
            config::embedded_default()
        }
    };
    crate::agent::run_until_signal(&cfg)?;
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
}
