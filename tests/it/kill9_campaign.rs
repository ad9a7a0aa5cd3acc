//! The kill -9 campaign of docs/RELIABILITY.md, short: `benches/kill9.py` (the auditor, a
//! process outside the agent) runs netcat, avro (Apache Flume's own RpcClient) and taildir
//! (with rotation) agents through SIGKILLs at random moments and restarts, drains them and
//! audits what was acknowledged against what was delivered. The documented run does 1,000
//! cycles per source; this one does [`CYCLES`] per source on the debug binary.
//!
//! It holds the script to its own claims: 0 lost, 0 garbled, no panic in any agent's log, every
//! source loaded (something acknowledged), and the auditor's self-check (one delivery hidden
//! from it must be reported lost) caught, so a 0 could have been something else.

use crate::{campaign, java};

const CYCLES: u32 = 17;

#[test]
fn kill_9_campaign_loses_nothing_acknowledged_by_netcat_avro_or_taildir() {
    let classpath = java::maven_classpath("avro");
    let cycles = CYCLES.to_string();
    let run = campaign::run(
        "kill9.py",
        &[
            "--cycles",
            &cycles,
            "--progress",
            "0",
            "--avro-classpath",
            &classpath,
        ],
    );
    let report = &run.json;
    eprintln!("{}", run.stderr);
    for source in ["netcat", "avro", "taildir"] {
        let r = &report["sources"][source];
        assert!(
            r.get("error").is_none(),
            "{source}: harness failure: {}",
            r["error"]
        );
        assert_eq!(r["lost"], 0, "{source} lost acknowledged events: {r}");
        assert_eq!(r["garbled"], 0, "{source} delivered lines nobody sent: {r}");
        assert_eq!(r["panics"], 0, "{source}: an agent panicked: {r}");
        assert_eq!(r["cycles"], CYCLES, "{source}: {r}");
        assert!(
            r["acknowledged"].as_u64().unwrap_or(0) > 0,
            "{source}: nothing was acknowledged, so nothing was tested: {r}"
        );
        assert_eq!(
            r["self_check_caught"], true,
            "{source}: the auditor did not notice a hidden delivery: {r}"
        );
    }
    assert!(run.status.success(), "kill9.py exited {}", run.status);
}
