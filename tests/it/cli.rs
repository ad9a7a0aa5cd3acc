//! The channel tools through the real `flumen` binary, as an operator meets them after disk
//! damage: verify finds the corrupt record (exit 1), repair quarantines it and says how many
//! events were lost, verify is then clean, the channel opens with the default policy, and
//! inspect shows what is left; and a benchmark whose stderr is closed still reports.

use std::path::Path;
use std::process::Command;

use flumen::channel::file::FileChannel;
use flumen::channel::{Channel, ChannelError};
use flumen::io::IoKind;

use crate::common::{parse_segment, put_range, segment_files, test_config};

fn flumen(args: &[&str], dir: &Path) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_flumen"))
        .args(args)
        .arg(dir)
        .env("RUST_LOG", "off")
        .output()
        .expect("run the flumen binary");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn verify_repair_verify_then_open_and_inspect() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = test_config(dir.path(), IoKind::Std);
    let ch = FileChannel::open("ops", cfg.clone()).expect("open");
    let batches = 40u64;
    for b in 0..batches {
        put_range(&ch, b * 50..(b + 1) * 50, |_| 400).expect("put");
    }
    ch.close().expect("close");
    drop(ch);

    let data = dir.path().join("data");
    let segs = segment_files(&data);
    assert!(segs.len() >= 2, "expected a sealed segment: {segs:?}");
    let bytes = std::fs::read(&segs[0]).expect("read segment");
    let recs = parse_segment(&bytes);
    let victim = recs[recs.len() / 2].clone();
    assert_eq!(victim.kind, 1);
    let mut damaged = bytes.clone();
    damaged[(victim.offset + victim.len / 2) as usize] ^= 0x40;
    std::fs::write(&segs[0], &damaged).expect("damage");
    let name = segs[0]
        .file_name()
        .and_then(|n| n.to_str())
        .expect("segment name")
        .to_string();

    let (code, out) = flumen(&["channel", "verify", "--dir"], dir.path());
    assert_eq!(code, 1, "verify must fail on corruption:\n{out}");
    assert!(
        out.contains(&name) && out.contains(&victim.offset.to_string()),
        "verify must name the file and offset:\n{out}"
    );

    // Corruption before the checkpoint's replay point is met by a full replay.
    let (code, out) = Command::new(env!("CARGO_BIN_EXE_flumen"))
        .args(["channel", "repair", "--checkpoint-dir"])
        .arg(dir.path().join("checkpoint"))
        .arg("--data-dir")
        .arg(&data)
        .env("RUST_LOG", "off")
        .output()
        .map(|o| {
            (
                o.status.code().unwrap_or(-1),
                String::from_utf8_lossy(&o.stdout).into_owned(),
            )
        })
        .expect("run repair");
    assert_eq!(code, 0, "repair:\n{out}");
    assert!(
        out.contains(&format!("events lost:         {}", victim.seqs.len())),
        "repair must count exactly the damaged batch's events:\n{out}"
    );
    assert!(data
        .join("quarantine")
        .join(format!("seg-{}-{}.bin", &name[4..24], victim.offset))
        .exists());

    let (code, out) = flumen(&["channel", "verify", "--dir"], dir.path());
    assert_eq!(code, 0, "verify after repair:\n{out}");
    assert!(out.contains("quarantined"), "{out}");

    let expected = batches * 50 - victim.seqs.len() as u64;
    match FileChannel::open("ops", cfg) {
        Ok(ch) => {
            assert_eq!(ch.stats().size, expected);
            ch.close().expect("close");
        }
        Err(e @ ChannelError::Corrupt { .. }) => panic!("still corrupt after repair: {e}"),
        Err(e) => panic!("open after repair: {e}"),
    }
    let (code, out) = flumen(&["channel", "inspect", "--dir"], dir.path());
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&expected.to_string()),
        "inspect must show the queue depth:\n{out}"
    );
}

/// A benchmark whose progress nobody reads any more (`2>&1 | head`, a closed log pipe) still
/// finishes and prints its JSON result: writes to a closed stderr are dropped, not a panic.
#[test]
fn a_bench_with_its_stderr_closed_still_prints_its_result() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_flumen"))
        .args([
            "bench", "channel", "--events", "2000", "--warmup", "false", "--dir",
        ])
        .arg(dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run the flumen binary");
    drop(child.stderr.take());
    let out = child.wait_with_output().expect("wait for flumen");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{:?}: {stdout}", out.status);
    let last = stdout.lines().last().unwrap_or_default();
    assert!(
        last.starts_with('{') && last.contains("\"verified\":true"),
        "the JSON result is the last line: {stdout}"
    );
}
