//! The `flumen` binary: sets up logging, parses the command line and runs it.
//!
//! Exit codes: 0 success; 1 when a command completed but found a problem it reports
//! (corruption from `channel verify`, a failed benchmark verification); 2 for errors that
//! stopped the command (including bad arguments, which clap reports itself), printed as one
//! `error: ...` line on stderr. Logs go to stderr (filter from `RUST_LOG`, default `info`) so
//! stdout carries only the command's output.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use flumen::cli::{self, Cli};

fn main() -> ExitCode {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Escape codes only where someone will see colours, not in captured logs.
        .with_ansi(std::io::stderr().is_terminal())
        // Its report of a failed write goes through eprintln!, which panics when stderr is
        // gone (`2>&1 | head`); a log line that cannot be written is dropped instead.
        .log_internal_errors(false)
        // With the tracing-log feature this also forwards `log` records (hdfs-native's) into
        // the same subscriber and filter.
        .init();

    let args = Cli::parse();
    match cli::run(args) {
        Ok(code) => code,
        Err(e) => {
            // Not eprintln!, which panics when stderr cannot be written (a log file on a full
            // disk): the exit code must still say what happened.
            let _ = writeln!(std::io::stderr(), "error: {e}");
            ExitCode::from(2)
        }
    }
}
