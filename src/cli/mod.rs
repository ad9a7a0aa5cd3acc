//! The `flumen` command line: argument parsing (clap derive) and dispatch to the subcommands.
//!
//! Contract with `main.rs`: [`run`] returns the process exit code for outcomes the command
//! itself reports (0 = fine, 1 = the command found a problem: corruption, a failed
//! benchmark verification), and `Err(CliError)` for anything that stopped the command from
//! doing its job (bad arguments beyond what clap checks, I/O errors, channel errors), which
//! `main` prints as one `error: ...` line with exit code 2. Nothing reachable from user input
//! panics. Machine-readable output (`--json`) goes to stdout alone; progress and notes go to
//! stderr so they never corrupt it.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::channel::ChannelError;

/// Progress and notes on stderr. Not `eprintln!`, which panics once stderr is gone (`2>&1 |
/// head`): a command's outcome must not depend on whether anyone still reads its progress.
macro_rules! progress {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

pub mod agent;
pub mod avro_client;
pub mod bench;
pub mod bench_agent;
pub mod bench_hbase;
pub mod bench_hdfs;
pub mod bench_kafka;
pub mod bench_load;
pub mod bench_net;
pub mod bench_reopen;
pub mod bench_taildir;
pub mod channel_cmd;
pub mod config_check;

/// flumen: a Flume-compatible ingestion agent built around a durable file channel.
#[derive(Debug, Parser)]
#[command(name = "flumen", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run an agent from a Flume properties file until SIGTERM or SIGINT.
    Agent(agent::AgentArgs),
    /// Send the lines of a file (or stdin) as events to an avro source, like
    /// `flume-ng avro-client`.
    AvroClient(avro_client::AvroClientArgs),
    /// Measure flumen's components on this machine.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Offline tools for a file channel's directories (the channel must not be running).
    #[command(subcommand)]
    Channel(channel_cmd::ChannelCommand),
    /// Tools for Flume properties files (nothing is started).
    #[command(subcommand)]
    Config(config_check::ConfigCommand),
}

/// `flumen bench ...`
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Producers put and consumers take N events through a channel, checking every event
    /// arrives exactly once, then a raw-disk baseline with the same bytes and sync cadence.
    Channel(bench::BenchArgs),
    /// Time reopening a channel that holds many untaken events, after a crash (full replay)
    /// and after a clean shutdown.
    Reopen(bench_reopen::ReopenArgs),
    /// Whole agents end to end (stress -> file channel -> null, netcat -> file channel ->
    /// file_roll) next to the bare file channel on the same shape.
    Agent(bench_agent::AgentBenchArgs),
    /// The HDFS sink (stress -> file channel -> hdfs sink) against Hadoop's own Java client
    /// writing the same bytes to the same HDFS (see benches/hdfs_vs_java.sh).
    Hdfs(bench_hdfs::HdfsBenchArgs),
    /// The hbase2 sink (stress -> file channel -> hbase2) against Apache Flume 1.11's hbase2
    /// sink and HBase's own Java BufferedMutator, on a single-JVM HBase the bench starts (see
    /// benches/hbase_vs_flume.sh).
    #[command(name = "hbase")]
    HBase(bench_hbase::HBaseBenchArgs),
    /// The Kafka sink (stress -> file channel -> kafka) and source (kafka -> file channel ->
    /// null) on a running broker, beside Kafka's own Java producer (see benches/compare.py for
    /// Flume's Kafka components on the same shapes).
    Kafka(bench_kafka::KafkaBenchArgs),
    /// The TAILDIR source on a log it writes first: TAILDIR -> file channel -> null and
    /// TAILDIR -> memory channel -> null, next to the bare file channel on the same events.
    Taildir(bench_taildir::TaildirBenchArgs),
    /// A load generator for a Flume-compatible network source (flumen's or Apache Flume's):
    /// netcat://, syslog+tcp:// or http://.
    Load(bench_load::LoadArgs),
    /// netcat -> file channel -> null, one connection keeping lines in flight, next to the
    /// bare file channel.
    Netcat(bench_net::NetBenchArgs),
    /// syslogtcp -> file channel -> null, many connections, next to the bare file channel.
    Syslog(bench_net::NetBenchArgs),
    /// http (JSON arrays) -> file channel -> null, many clients, next to the bare file channel.
    Http(bench_net::NetBenchArgs),
}

/// Why a command could not do its job. Shown as `error: <message>`.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Channel(#[from] ChannelError),
    #[error(transparent)]
    Config(#[from] Box<crate::config::ConfigError>),
    #[error(transparent)]
    Agent(#[from] crate::agent::AgentError),
    #[error("{operation} {path}: {cause}")]
    Io {
        operation: &'static str,
        path: PathBuf,
        cause: std::io::Error,
    },
    /// Writing our own output failed (for example stdout closed by `| head`).
    #[error("writing output: {0}")]
    Output(std::io::Error),
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Failed(String),
}

impl CliError {
    pub(crate) fn io(
        operation: &'static str,
        path: impl Into<PathBuf>,
        cause: std::io::Error,
    ) -> Self {
        CliError::Io {
            operation,
            path: path.into(),
            cause,
        }
    }
}

impl From<serde_json::Error> for CliError {
    fn from(e: serde_json::Error) -> Self {
        CliError::Failed(format!("encoding JSON output: {e}"))
    }
}

/// Runs a parsed command line. See the module docs for the meaning of the result.
pub fn run(cli: Cli) -> Result<ExitCode, CliError> {
    match cli.command {
        Command::Agent(args) => agent::run(&args),
        Command::AvroClient(args) => avro_client::run(&args),
        Command::Bench(BenchCommand::Channel(args)) => bench::run(&args),
        Command::Bench(BenchCommand::Reopen(args)) => bench_reopen::run(&args),
        Command::Bench(BenchCommand::Agent(args)) => bench_agent::run(&args),
        Command::Bench(BenchCommand::Hdfs(args)) => bench_hdfs::run(&args),
        Command::Bench(BenchCommand::HBase(args)) => bench_hbase::run(&args),
        Command::Bench(BenchCommand::Kafka(args)) => bench_kafka::run(&args),
        Command::Bench(BenchCommand::Taildir(args)) => bench_taildir::run(&args),
        Command::Bench(BenchCommand::Load(args)) => bench_load::run(&args),
        Command::Bench(BenchCommand::Netcat(args)) => {
            bench_net::run(bench_net::Shape::Netcat, &args)
        }
        Command::Bench(BenchCommand::Syslog(args)) => {
            bench_net::run(bench_net::Shape::Syslog, &args)
        }
        Command::Bench(BenchCommand::Http(args)) => bench_net::run(bench_net::Shape::Http, &args),
        Command::Channel(cmd) => channel_cmd::run(cmd),
        Command::Config(cmd) => config_check::run(cmd),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn bench_defaults() {
        let cli = Cli::try_parse_from(["flumen", "bench", "channel"]).expect("parses");
        let Command::Bench(BenchCommand::Channel(a)) = cli.command else {
            panic!("expected bench channel");
        };
        assert_eq!(a.events, 200_000);
        assert_eq!(a.event_size, 1024);
        assert_eq!(a.batch, 100);
        assert_eq!(a.producers, 4);
        assert_eq!(a.consumers, 1);
        assert_eq!(a.channel, bench::ChannelKind::File);
        assert_eq!(a.io, crate::io::IoKind::Std);
        assert_eq!(a.fsync, crate::channel::file::FsyncPolicy::EveryCommit);
        assert!(!a.json);
        assert!(a.dir.is_none());
    }

    #[test]
    fn bench_agent_defaults() {
        let cli = Cli::try_parse_from(["flumen", "bench", "agent"]).expect("parses");
        let Command::Bench(BenchCommand::Agent(a)) = cli.command else {
            panic!("expected bench agent");
        };
        assert_eq!((a.events, a.event_size, a.batch), (500_000, 1024, 1000));
        assert!(!a.json);
        assert!(a.dir.is_none());
    }

    #[test]
    fn bench_taildir_defaults() {
        let cli = Cli::try_parse_from(["flumen", "bench", "taildir"]).expect("parses");
        let Command::Bench(BenchCommand::Taildir(a)) = cli.command else {
            panic!("expected bench taildir");
        };
        assert_eq!((a.gb, a.event_size, a.batch, a.files), (2.0, 200, 100, 1));
        assert!(!a.json);
        assert!(a.dir.is_none());
    }

    #[test]
    fn bench_parses_every_option() {
        let cli = Cli::try_parse_from([
            "flumen",
            "bench",
            "channel",
            "--dir",
            "/tmp/x",
            "--events",
            "10",
            "--event-size",
            "64",
            "--batch",
            "5",
            "--producers",
            "2",
            "--consumers",
            "3",
            "--io",
            "uring",
            "--channel",
            "memory",
            "--fsync",
            "interval:20",
            "--json",
        ])
        .expect("parses");
        let Command::Bench(BenchCommand::Channel(a)) = cli.command else {
            panic!("expected bench channel");
        };
        assert_eq!(a.dir, Some(PathBuf::from("/tmp/x")));
        assert_eq!((a.events, a.event_size, a.batch), (10, 64, 5));
        assert_eq!((a.producers, a.consumers), (2, 3));
        assert_eq!(a.io, crate::io::IoKind::Uring);
        assert_eq!(a.channel, bench::ChannelKind::Memory);
        assert_eq!(
            a.fsync,
            crate::channel::file::FsyncPolicy::Interval(std::time::Duration::from_millis(20))
        );
        assert!(a.json);
    }

    #[test]
    fn bad_values_are_usage_errors() {
        for args in [
            &["flumen", "bench", "channel", "--fsync", "sometimes"][..],
            &["flumen", "bench", "channel", "--io", "aio"][..],
            &["flumen", "bench", "channel", "--channel", "kafka"][..],
            &["flumen", "channel", "verify"][..],
            &["flumen", "channel", "repair", "--data-dir", "/d"][..],
        ] {
            assert!(
                Cli::try_parse_from(args).is_err(),
                "{args:?} must be refused"
            );
        }
    }

    #[test]
    fn channel_tools_take_several_dirs() {
        let cli = Cli::try_parse_from([
            "flumen", "channel", "verify", "--dir", "/a", "--dir", "/b", "--json",
        ])
        .expect("parses");
        match cli.command {
            Command::Channel(channel_cmd::ChannelCommand::Verify(v)) => {
                assert_eq!(v.dirs, vec![PathBuf::from("/a"), PathBuf::from("/b")]);
                assert!(v.json);
            }
            other => panic!("unexpected {other:?}"),
        }
        let cli = Cli::try_parse_from([
            "flumen",
            "channel",
            "repair",
            "--checkpoint-dir",
            "/c",
            "--data-dir",
            "/d1",
            "/d2",
        ])
        .expect("parses");
        match cli.command {
            Command::Channel(channel_cmd::ChannelCommand::Repair(r)) => {
                assert_eq!(r.checkpoint_dir, PathBuf::from("/c"));
                assert_eq!(
                    r.data_dirs,
                    vec![PathBuf::from("/d1"), PathBuf::from("/d2")]
                );
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}
