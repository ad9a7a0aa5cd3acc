//! Running a campaign script of `benches/` (docs/RELIABILITY.md) from a test: the script's last
//! stdout line is its JSON report, which the tests hold to the campaign's claims.

use std::process::{Command, ExitStatus};

/// What a campaign script printed and how it exited.
pub struct Report {
    /// The last stdout line, parsed.
    pub json: serde_json::Value,
    /// The script's progress log, for failure messages.
    pub stderr: String,
    pub status: ExitStatus,
}

/// Runs `python3 benches/<script> --bin <this build's flumen> <args>`.
pub fn run(script: &str, args: &[&str]) -> Report {
    let root = env!("CARGO_MANIFEST_DIR");
    let out = Command::new("python3")
        .arg(format!("{root}/benches/{script}"))
        .args(["--bin", env!("CARGO_BIN_EXE_flumen")])
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("run python3 benches/{script} (python3 must be installed): {e}")
        });
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let last = stdout.lines().last().unwrap_or_default();
    let json = serde_json::from_str(last).unwrap_or_else(|e| {
        panic!("benches/{script}: no JSON last line ({e}):\n{stdout}\n{stderr}")
    });
    Report {
        json,
        stderr,
        status: out.status,
    }
}
