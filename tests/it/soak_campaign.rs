//! The soak of docs/RELIABILITY.md, two minutes long: `benches/soak.py` measures the peak of
//! stress -> file channel -> hdfs sink into a real HDFS (a MiniDFSCluster it starts), then runs
//! at half of it while sampling the agent's RSS, open descriptors and channel bytes on disk,
//! and finally counts the events in HDFS's closed files. The documented run lasts an hour.
//!
//! The script's verdicts are the assertions: RSS and descriptors flat (last quarter of the run
//! against the second), disk bounded by the channel's capacity, every event in HDFS, a clean
//! exit, no panic.

use crate::{campaign, java};

#[test]
fn two_minute_soak_stays_flat_and_delivers_every_event_to_hdfs() {
    let classpath = java::maven_classpath("hdfs");
    let run = campaign::run(
        "soak.py",
        &[
            "--seconds",
            "120",
            "--every",
            "2",
            "--peak-seconds",
            "5",
            "--hdfs-classpath",
            &classpath,
        ],
    );
    let r = &run.json;
    eprintln!("{}{r}", run.stderr);
    assert!(r.get("error").is_none(), "harness failure: {}", r["error"]);
    assert!(
        r["events_sent"].as_u64().unwrap_or(0) > 0,
        "nothing was sent: {r}"
    );
    assert_eq!(r["every_event_delivered"], true, "{r}");
    assert_eq!(r["events_in_hdfs"], r["events_sent"], "{r}");
    assert_eq!(r["rss_flat"], true, "RSS grew: {}", r["rss_mib"]);
    assert_eq!(r["fds_flat"], true, "descriptors grew: {}", r["fds"]);
    assert_eq!(r["disk_bounded"], true, "disk: {}", r["disk_mib"]);
    assert_eq!(r["exit_code"], 0, "{r}");
    assert_eq!(r["panics"], 0, "{r}");
    assert!(run.status.success(), "soak.py exited {}", run.status);
}
