//! Power loss on a real filesystem, short: benches/powerloss.py runs a `flumen agent` whose
//! file channel lives on a LazyFS mount, SIGKILLs it under load, drops every byte LazyFS holds
//! unsynced, and every create and rename whose directory was not fsynced (a power cut), and
//! restarts it; every line acknowledged before a cut must be delivered. Two controls show the
//! campaign can fail: with `fsync = never`, and with the directory fsyncs skipped, it must
//! lose acknowledged lines. LazyFS is built from tests/lazyfs once into `target/lazyfs`. Missing
//! Debian packages or /dev/fuse fail the test with what to install: this is not skipped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::agent_proc::POLL;

/// The whole short campaign (build of LazyFS included) takes well under this.
const CAMPAIGN_DEADLINE: Duration = Duration::from_secs(900);

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `target/` (or $CARGO_TARGET_DIR): the directory holding the flumen binary's profile dir.
fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_flumen"))
        .parent()
        .and_then(Path::parent)
        .expect("the flumen binary lives in <target>/<profile>/")
        .to_path_buf()
}

/// Builds LazyFS into `target/lazyfs` unless an identical build is there (build.sh compares a
/// hash of its inputs and locks against a concurrent build); returns that directory.
fn lazyfs_build() -> PathBuf {
    assert!(
        Path::new("/dev/fuse").exists(),
        "/dev/fuse is missing: the power-loss test runs the channel on LazyFS, a FUSE filesystem \
         (load the fuse module, or give the container --device /dev/fuse)"
    );
    let fusermount = Command::new("fusermount3")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        fusermount,
        "fusermount3 is missing: apt-get install fuse3 (.ci/run installs it)"
    );
    let dest = target_dir().join("lazyfs");
    let out = Command::new(repo().join("tests/lazyfs/build.sh"))
        .arg(&dest)
        .output()
        .expect("run tests/lazyfs/build.sh");
    assert!(
        out.status.success(),
        "building LazyFS failed (tests/lazyfs/build.sh {}):\n{}",
        dest.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    dest
}

/// The campaign's process and its work directory: dropping it (also when the test fails)
/// kills the campaign and detaches any LazyFS mount left under the directory.
struct Campaign {
    /// `None` once it has exited and been reaped.
    child: Option<Child>,
    work: tempfile::TempDir,
}

impl Campaign {
    fn run(extra: &[&str]) -> serde_json::Value {
        let build = lazyfs_build();
        let work = tempfile::tempdir().expect("tempdir");
        let child = Command::new("python3")
            .arg(repo().join("benches/powerloss.py"))
            .args(["--flumen", env!("CARGO_BIN_EXE_flumen")])
            .arg("--lazyfs-build")
            .arg(&build)
            .arg("--workdir")
            .arg(work.path())
            // 128 MiB of cache is far more than a short cycle writes; preallocating it is quick.
            .args(["--cache-size", "128mb"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start python3 benches/powerloss.py");
        let mut c = Campaign {
            child: Some(child),
            work,
        };
        // Its output goes to pipes read only after it exits: a short campaign writes a few
        // KiB to stderr (one line per cycle), far below a pipe's capacity.
        let end = Instant::now() + CAMPAIGN_DEADLINE;
        loop {
            let child = c.child.as_mut().expect("the campaign is running");
            if child.try_wait().expect("poll the campaign").is_some() {
                break;
            }
            assert!(
                Instant::now() < end,
                "the power-loss campaign did not finish in {CAMPAIGN_DEADLINE:?}"
            );
            std::thread::sleep(POLL);
        }
        let child = c.child.take().expect("the campaign exited");
        let out = child.wait_with_output().expect("campaign output");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let last = stdout.lines().rev().find(|l| l.starts_with('{'));
        let Some(last) = last else {
            panic!(
                "the campaign printed no JSON line ({}):\n{stderr}",
                out.status
            );
        };
        serde_json::from_str(last).expect("the campaign's last line is JSON")
    }
}

impl Drop for Campaign {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SIGTERM first: the script then kills its agent and unmounts LazyFS itself.
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let end = Instant::now() + Duration::from_secs(60);
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < end {
                std::thread::sleep(POLL);
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        // The script unmounts in its own cleanup; this covers a script that was killed.
        let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
            return;
        };
        for mount_point in info.lines().filter_map(|l| l.split(' ').nth(4)) {
            if Path::new(mount_point).starts_with(self.work.path()) {
                let _ = Command::new("fusermount3")
                    .args(["-uz", mount_point])
                    .status();
            }
        }
    }
}

fn figure(f: &serde_json::Value, key: &str) -> u64 {
    f[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} is missing from the campaign's figures: {f}"))
}

#[test]
fn power_loss_on_lazyfs_loses_no_acknowledged_line() {
    let f = Campaign::run(&["--cycles", "6"]);
    assert!(
        figure(&f, "acknowledged") > 0,
        "nothing was acknowledged: {f}"
    );
    assert_eq!(figure(&f, "lost"), 0, "acknowledged lines lost: {f}");
    assert_eq!(figure(&f, "garbled_lines"), 0, "{f}");
    assert_eq!(figure(&f, "failed_replies"), 0, "{f}");
}

/// The negative control: with `fsync = never` the same cuts must lose acknowledged lines, or
/// the harness is not dropping unsynced data and the test above proves nothing. No
/// checkpoint and no segment roll (each of which syncs) happens during the load.
#[test]
fn power_loss_without_fsync_loses_acknowledged_lines() {
    let f = Campaign::run(&[
        "--cycles",
        "3",
        "--fsync",
        "never",
        "--checkpoint-interval-ms",
        "600000",
        "--max-file-size",
        "1073741824",
        "--startup-kill-fraction",
        "0",
        "--kill-min",
        "1.0",
    ]);
    assert!(
        figure(&f, "lost") > 0,
        "LazyFS's clear-cache lost nothing under fsync = never: the harness does not drop unsynced writes: {f}"
    );
}

/// The directory-fsync control: with the agent's directory fsyncs turned into no-ops (an
/// LD_PRELOAD library, tests/lazyfs/skip_dir_fsync.c), LazyFS's namespace journal (patch
/// 0003) undoes the segment creations and renames at each cut, and acknowledged lines are
/// lost: the campaign checks the directory fsyncs, not only the data fsyncs.
#[test]
fn power_loss_without_directory_fsyncs_loses_acknowledged_lines() {
    let f = Campaign::run(&[
        "--cycles",
        "2",
        "--skip-dir-fsync",
        "--startup-kill-fraction",
        "0",
        "--kill-min",
        "1.0",
    ]);
    assert!(
        figure(&f, "lost") > 0,
        "cuts lost nothing with the directory fsyncs skipped: LazyFS does not undo unsynced renames and creates: {f}"
    );
    assert!(figure(&f, "namespace_ops_undone") > 0, "{f}");
}
