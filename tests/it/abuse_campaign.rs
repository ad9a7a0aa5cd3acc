//! The abuse campaign of docs/RELIABILITY.md, small: `benches/abuse.py` runs one agent with
//! every listening source (netcat, avro, syslogtcp, http, thrift) and its metrics server, and
//! for each listener in turn measures a well-behaved client of its protocol alone, then while
//! hostile peers hold connections, send a byte at a time, send oversized input and garbage.
//! The documented run holds 10,000 connections per listener; this one holds 2,000.
//!
//! The rate ratio is a benchmark figure (docs/RELIABILITY.md), not asserted here. Asserted:
//! every well-behaved client is still served while its listener is abused, the peers of the
//! garbage and of the oversized input are named in the log, memory stays bounded, the agent
//! exits cleanly and nothing panics.

use crate::{campaign, java};

/// Peak RSS bound for the agent over the whole campaign.
const RSS_BOUND_MIB: f64 = 512.0;

#[test]
fn every_listener_keeps_serving_a_well_behaved_client_under_abuse() {
    let classpath = java::maven_classpath("avro");
    let run = campaign::run(
        "abuse.py",
        &[
            "--held",
            "2000",
            "--seconds",
            "2",
            "--min-ratio",
            "0",
            "--avro-classpath",
            &classpath,
        ],
    );
    let r = &run.json;
    eprintln!("{r}");
    assert!(r.get("error").is_none(), "{}\n{}", r["error"], run.stderr);
    for listener in ["netcat", "avro", "syslogtcp", "http", "thrift", "metrics"] {
        let l = &r["listeners"][listener];
        assert!(
            l["abused_per_s"].as_f64().unwrap_or(0.0) > 0.0,
            "{listener}: the well-behaved client got nothing through under abuse: {l}"
        );
        assert_eq!(l["garbage_peer_named"], true, "{listener}: {l}");
        assert_eq!(l["oversized_peer_named"], true, "{listener}: {l}");
    }
    assert!(
        r["peak_rss_mib"].as_f64().unwrap_or(f64::MAX) < RSS_BOUND_MIB,
        "peak RSS {} MiB",
        r["peak_rss_mib"]
    );
    assert_eq!(r["exit_code"], 0, "{r}");
    assert_eq!(r["panics"], 0, "{r}");
    assert!(run.status.success(), "abuse.py exited {}", run.status);
}
