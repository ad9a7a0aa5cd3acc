//! The faults campaign of docs/RELIABILITY.md: `benches/faults.py` runs a real agent
//! (netcat -> file channel -> file_roll) with its channel on a loop-mounted ext4 of its own and
//! breaks the disk under load: filled to its last MiB, turned read-only by an ext4 error, a
//! segment deleted, every checkpoint rename failing, fdatasync returning EIO. The script is the
//! auditor (what was answered OK against what came out); each scenario also checks the
//! behaviour README's "When the disk fails" promises (refusal and drain on a full disk, poison
//! on a failed write or sync, a refusal to open without a segment that held events).
//!
//! Needs root (loop mounts), e2fsprogs and a C compiler for the fault shim: CI has them; a
//! machine without fails this test with the script's message.

use crate::campaign;

#[test]
fn faults_on_a_running_agent_do_what_readme_promises_and_lose_nothing() {
    let run = campaign::run("faults.py", &[]);
    let report = &run.json;
    for scenario in [
        "disk_full",
        "read_only",
        "segment_deleted",
        "checkpoint_rename_fails",
        "fdatasync_eio",
    ] {
        let r = &report["scenarios"][scenario];
        assert!(
            r.get("broken").is_none() && r.get("error").is_none(),
            "{scenario}: {}{}",
            r["broken"],
            r["error"]
        );
        assert_eq!(r["lost"], 0, "{scenario} lost acknowledged events: {r}");
        assert_eq!(r["garbled"], 0, "{scenario}: {r}");
        assert_eq!(r["panics"], 0, "{scenario}: an agent panicked: {r}");
        assert_eq!(r["self_check_caught"], true, "{scenario}: {r}");
        assert!(
            r["acknowledged"].as_u64().unwrap_or(0) > 0,
            "{scenario}: nothing acknowledged: {r}"
        );
    }
    assert!(
        report["scenarios"]["disk_full"]["drained_while_full"] == true
            && report["scenarios"]["disk_full"]["accepted_after_space_returned"]
                .as_u64()
                .unwrap_or(0)
                > 0,
        "{}",
        report["scenarios"]["disk_full"]
    );
    assert!(
        run.status.success(),
        "faults.py exited {}:\n{}",
        run.status,
        run.stderr
    );
}
