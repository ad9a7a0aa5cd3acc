//! `flumen channel verify | inspect | repair`: thin front ends over `channel::file::tools`.
//!
//! They only parse arguments, check that the directories exist (so a typo gets a one-line
//! error rather than an empty report), call the tool and render its report: a table for people
//! or, with `--json`, one JSON object on one line of stdout. `verify` exits with 1 when it found
//! corruption (a torn final record is normal after a crash and does not count), 0 otherwise.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};

use super::CliError;
use crate::channel::file::tools::{self, CorruptSpot, InspectReport, RepairReport, VerifyReport};

/// `flumen channel ...`
#[derive(Debug, Subcommand)]
pub enum ChannelCommand {
    /// Check every record and checkpoint; print counts and each corrupt record with its file
    /// and offset. Exit code 1 when anything is corrupt.
    Verify(VerifyArgs),
    /// Show the queue as the checkpoint and segments describe it: depth, segments, bytes on
    /// disk, age of the oldest event. Read-only.
    Inspect(InspectArgs),
    /// Quarantine corrupt records (losing the events they hold) and write a fresh checkpoint,
    /// so the channel opens again. Prints exactly what was lost.
    Repair(RepairArgs),
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Channel directories (checkpoint and data dirs, or a directory holding them).
    #[arg(long = "dir", value_name = "DIR", required = true, num_args = 1..)]
    pub dirs: Vec<PathBuf>,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Channel directories (checkpoint and data dirs, or a directory holding them).
    #[arg(long = "dir", value_name = "DIR", required = true, num_args = 1..)]
    pub dirs: Vec<PathBuf>,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RepairArgs {
    /// The channel's checkpointDir.
    #[arg(long, value_name = "DIR")]
    pub checkpoint_dir: PathBuf,
    /// The channel's dataDirs.
    #[arg(long = "data-dir", value_name = "DIR", required = true, num_args = 1..)]
    pub data_dirs: Vec<PathBuf>,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Runs one `flumen channel` subcommand.
pub fn run(cmd: ChannelCommand) -> Result<ExitCode, CliError> {
    match cmd {
        ChannelCommand::Verify(a) => verify(&a),
        ChannelCommand::Inspect(a) => inspect(&a),
        ChannelCommand::Repair(a) => repair(&a),
    }
}

fn require_dirs<'a>(dirs: impl IntoIterator<Item = &'a PathBuf>) -> Result<(), CliError> {
    for d in dirs {
        match std::fs::metadata(d) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(CliError::Usage(format!(
                    "{} is not a directory",
                    d.display()
                )))
            }
            Err(e) => return Err(CliError::io("reading directory", d, e)),
        }
    }
    Ok(())
}

fn verify(a: &VerifyArgs) -> Result<ExitCode, CliError> {
    require_dirs(&a.dirs)?;
    let report = tools::verify(&a.dirs)?;
    let ok = report.corrupt.is_empty();
    let mut out = std::io::stdout().lock();
    if a.json {
        let mut v = serde_json::to_value(&report)?;
        if let Some(obj) = v.as_object_mut() {
            obj.insert("ok".into(), ok.into());
        }
        writeln!(out, "{}", serde_json::to_string(&v)?).map_err(CliError::Output)?;
    } else {
        write_verify(&mut out, &report).map_err(CliError::Output)?;
    }
    out.flush().map_err(CliError::Output)?;
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn spot(s: &CorruptSpot) -> String {
    format!("{} at offset {}: {}", s.file.display(), s.offset, s.reason)
}

fn write_verify(out: &mut impl Write, r: &VerifyReport) -> std::io::Result<()> {
    writeln!(out, "segments:          {}", r.segments)?;
    writeln!(out, "records:           {}", r.records)?;
    writeln!(out, "events put:        {}", r.events)?;
    writeln!(out, "events taken:      {}", r.events_taken)?;
    writeln!(out, "bytes:             {}", r.bytes)?;
    writeln!(out, "valid checkpoints: {}", r.checkpoints_valid)?;
    if let Some(t) = &r.torn_tail {
        writeln!(
            out,
            "torn tail:         {} (normal after a crash; opening the channel truncates it)",
            spot(t)
        )?;
    }
    if let Some(p) = &r.creation_cut_short {
        writeln!(
            out,
            "cut-short segment: {} (a crash cut its creation short; it holds no records and \
             opening the channel removes it)",
            p.display()
        )?;
    }
    if !r.quarantined.is_empty() {
        writeln!(
            out,
            "quarantined:       {} (skipped by an earlier repair; copies under quarantine/)",
            r.quarantined.len()
        )?;
        for q in &r.quarantined {
            writeln!(out, "  {}", spot(q))?;
        }
    }
    writeln!(out, "corrupt records:   {}", r.corrupt.len())?;
    for c in &r.corrupt {
        writeln!(out, "  {}", spot(c))?;
    }
    if r.corrupt.is_empty() {
        writeln!(out, "result: OK")
    } else {
        writeln!(
            out,
            "result: CORRUPT. `flumen channel repair --checkpoint-dir <dir> --data-dir <dir>...` \
             quarantines these records (their events are lost) so the channel opens again"
        )
    }
}

fn inspect(a: &InspectArgs) -> Result<ExitCode, CliError> {
    require_dirs(&a.dirs)?;
    let report = tools::inspect(&a.dirs)?;
    let mut out = std::io::stdout().lock();
    if a.json {
        let mut v = serde_json::to_value(&report)?;
        if let Some(obj) = v.as_object_mut() {
            // Seconds as a number are easier on scripts than serde's {secs, nanos}.
            let age = report.oldest_event_age.map(|d| d.as_secs_f64());
            obj.insert("oldest_event_age_secs".into(), age.into());
        }
        writeln!(out, "{}", serde_json::to_string(&v)?).map_err(CliError::Output)?;
    } else {
        write_inspect(&mut out, &report).map_err(CliError::Output)?;
    }
    out.flush().map_err(CliError::Output)?;
    Ok(ExitCode::SUCCESS)
}

fn human_age(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=59 => format!("{:.1}s", d.as_secs_f64()),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        3600..=86_399 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{:02}h", s / 86_400, s % 86_400 / 3600),
    }
}

fn write_inspect(out: &mut impl Write, r: &InspectReport) -> std::io::Result<()> {
    writeln!(
        out,
        "queue depth:      {} events ({} body bytes)",
        r.queue_depth, r.queue_bytes
    )?;
    match r.oldest_event_age {
        Some(age) => writeln!(out, "oldest event age: {}", human_age(age))?,
        None => writeln!(out, "oldest event age: - (queue empty)")?,
    }
    writeln!(out, "bytes on disk:    {}", r.bytes_on_disk)?;
    match &r.checkpoint {
        Some(c) => writeln!(out, "checkpoint:       {}", c.display())?,
        None => writeln!(
            out,
            "checkpoint:       - (recovery would replay every segment)"
        )?,
    }
    writeln!(out, "segments:         {}", r.segments.len())?;
    for (path, size) in &r.segments {
        writeln!(out, "  {size:>12}  {}", path.display())?;
    }
    let spare_bytes: u64 = r.spares.iter().map(|(_, size)| size).sum();
    writeln!(
        out,
        "spare segments:   {} ({spare_bytes} bytes: finished segments kept for reuse, old \
         bytes intact; not part of the queue)",
        r.spares.len()
    )?;
    Ok(())
}

fn repair(a: &RepairArgs) -> Result<ExitCode, CliError> {
    require_dirs(std::iter::once(&a.checkpoint_dir).chain(&a.data_dirs))?;
    let report = tools::repair(Path::new(&a.checkpoint_dir), &a.data_dirs)?;
    let mut out = std::io::stdout().lock();
    if a.json {
        writeln!(out, "{}", serde_json::to_string(&report)?).map_err(CliError::Output)?;
    } else {
        write_repair(&mut out, &report).map_err(CliError::Output)?;
    }
    out.flush().map_err(CliError::Output)?;
    Ok(ExitCode::SUCCESS)
}

fn write_repair(out: &mut impl Write, r: &RepairReport) -> std::io::Result<()> {
    writeln!(out, "quarantined regions: {}", r.quarantined.len())?;
    for q in &r.quarantined {
        writeln!(out, "  {}", spot(q))?;
    }
    writeln!(out, "events lost:         {}", r.events_lost)?;
    if let Some(t) = &r.torn_tail {
        writeln!(out, "torn tail truncated: {}", spot(t))?;
    }
    writeln!(out, "queue depth now:     {} events", r.queue_depth)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render<F: FnOnce(&mut Vec<u8>) -> std::io::Result<()>>(f: F) -> String {
        let mut buf = Vec::new();
        f(&mut buf).expect("writing to a Vec cannot fail");
        String::from_utf8(buf).expect("output is UTF-8")
    }

    #[test]
    fn verify_table_lists_each_corrupt_record() {
        let r = VerifyReport {
            segments: 2,
            records: 10,
            events: 900,
            bytes: 4096,
            checkpoints_valid: 1,
            corrupt: vec![CorruptSpot {
                file: PathBuf::from("/d/log-3"),
                offset: 8192,
                reason: "crc mismatch".into(),
            }],
            torn_tail: Some(CorruptSpot {
                file: PathBuf::from("/d/log-4"),
                offset: 100,
                reason: "short record".into(),
            }),
            ..VerifyReport::default()
        };
        let s = render(|b| write_verify(b, &r));
        assert!(s.contains("/d/log-3 at offset 8192: crc mismatch"), "{s}");
        assert!(s.contains("torn tail:"), "{s}");
        assert!(s.contains("result: CORRUPT"), "{s}");
        let ok = render(|b| write_verify(b, &VerifyReport::default()));
        assert!(ok.contains("result: OK"), "{ok}");
    }

    #[test]
    fn inspect_table_shows_age_and_segments() {
        let r = InspectReport {
            queue_depth: 5,
            queue_bytes: 50,
            segments: vec![(PathBuf::from("/d/log-1"), 1234)],
            bytes_on_disk: 1234,
            oldest_event_age: Some(Duration::from_secs(125)),
            spares: vec![(PathBuf::from("/d/spare-2"), 4096)],
            ..InspectReport::default()
        };
        let s = render(|b| write_inspect(b, &r));
        assert!(s.contains("5 events"), "{s}");
        // Spares keep their old bytes (they are not zeroed: see channel::file::spare).
        assert!(
            s.contains("old bytes intact") && !s.contains("zeroed"),
            "{s}"
        );
        assert!(s.contains("2m05s"), "{s}");
        assert!(s.contains("/d/log-1"), "{s}");
    }

    #[test]
    fn missing_dir_is_a_clean_error() {
        let err = require_dirs(&[PathBuf::from("/nonexistent/flumen-test-dir")])
            .expect_err("missing dir refused");
        assert!(err.to_string().contains("/nonexistent/flumen-test-dir"));
    }

    #[test]
    fn repair_table_lists_quarantined_regions() {
        let r = RepairReport {
            quarantined: vec![CorruptSpot {
                file: PathBuf::from("/d/log-7"),
                offset: 64,
                reason: "crc mismatch".into(),
            }],
            events_lost: 100,
            queue_depth: 5,
            ..RepairReport::default()
        };
        let s = render(|b| write_repair(b, &r));
        assert!(s.contains("/d/log-7 at offset 64: crc mismatch"), "{s}");
        assert!(s.contains("events lost:         100"), "{s}");
    }
}
