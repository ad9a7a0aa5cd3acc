//! The HDFS sink against an HA nameservice, end to end: a private HA MiniDFSCluster
//! (`MiniHdfs::start_ha`: nameservice `ns1`, NameNodes `nn1` and `nn2`, one DataNode), a
//! `HADOOP_CONF_DIR` written as an administrator would (core-site.xml, hdfs-site.xml with the
//! nameservice, both RPC addresses and `ConfiguredFailoverProxyProvider`), and a `flumen agent`
//! (seq source -> file channel -> hdfs sink, `hdfs.path = hdfs://ns1/...`) that finds the
//! NameNodes through that configuration only: `ns1` resolves nowhere else.
//!
//! Under load the active NameNode changes:
//! - gracefully, twice (`nn1` -> `nn2` -> `nn1`, as `hdfs haadmin -failover`: the old active
//!   becomes standby and answers `StandbyException`, which hdfs-native fails over on, writes
//!   included);
//! - by a crash (`nn1` shut down, `nn2` made active: calls in flight lose their connection,
//!   which hdfs-native does not retry for writes since they may have been applied, so batches
//!   may fail and be retried by the sink; new connections to `nn1` are refused, which it does
//!   fail over on).
//!
//! Each change must come while events are still flowing, and after each the sink must keep
//! committing (a next change waits for two more files' worth of events written through the new
//! active NameNode). After a clean shutdown every sequence number must be on HDFS at least once
//! (duplicates only from failed, rolled-back batches, at most one batch of 100 each) and every
//! file closed under its final name (files abandoned by a failed batch are lease-recovered
//! through the new active NameNode). Each test prints what it saw (`--nocapture`): the stall
//! after each change and the failed batches, if any.

use std::time::{Duration, Instant};

use crate::agent_proc::{free_port, AgentProcess};
use crate::hdfs_cluster::MiniHdfs;
use crate::hdfs_faults::{
    counter, drained, unclosed_and_recovered, write_config, write_fails, Outcome,
};

/// Events the seq source puts (bodies "0" to "N-1").
const TOTAL_EVENTS: u64 = 30_000;
/// Events the sink must commit through the new active NameNode before the next change: two
/// files' worth (`hdfs.rollCount = 2000`), so files were created, written, closed and renamed
/// through it.
const PROGRESS_BETWEEN_FAILOVERS: u64 = 4_000;

/// How the active NameNode changes.
#[derive(Clone, Copy, Debug)]
enum Change {
    /// `failover`: the active one becomes standby, the other one active.
    Graceful,
    /// `kill-active`: the active one is shut down, the other one made active.
    Crash,
}

/// Changes the active NameNode while the sink is busy and waits for the sink's next commit;
/// returns (the now active NameNode, events committed when the change was done, how long from
/// the change's start to the next commit).
fn change_under_load(
    hdfs: &MiniHdfs,
    agent: &mut AgentProcess,
    mport: u16,
    change: Change,
) -> (String, u64, Duration) {
    let t = Instant::now();
    let active = match change {
        Change::Graceful => hdfs.failover(),
        Change::Crash => hdfs.kill_active(),
    };
    let took = t.elapsed();
    let at = drained(agent, mport);
    assert!(
        at + 1_000 <= TOTAL_EVENTS,
        "the sink had committed {at} of {TOTAL_EVENTS} events when the {change:?} change to \
         {active} was done: too late to test anything"
    );
    let stall = agent.poll(
        &format!("waiting for a commit through {active} after the {change:?} change"),
        |a| (drained(a, mport) > at).then(|| t.elapsed()),
    );
    eprintln!(
        "{change:?} change to {active} took {took:?} with {at} events committed; next commit \
         {stall:?} after the change began"
    );
    (active, at, stall)
}

/// Runs the agent against a fresh HA cluster, makes `changes` under load (each expecting the
/// NameNode id in its pair to be active after it), and checks what landed on HDFS.
fn ha_under_load(hdfs_dir: &str, changes: &[(Change, &str)]) {
    let started = Instant::now();
    let hdfs = MiniHdfs::start_ha();
    let ns = hdfs.ha().expect("an HA cluster").clone();
    assert_eq!(hdfs.url(), ns.url());
    let dir = tempfile::tempdir().expect("tempdir");
    let conf_dir = dir.path().join("hadoop-conf");
    ns.write_hadoop_conf(&conf_dir, &[]);
    let conf_dir = conf_dir.display().to_string();
    let conf = write_config(dir.path(), &ns.url(), hdfs_dir, TOTAL_EVENTS, "1");
    let mport = free_port();
    let port = mport.to_string();
    let mut agent = AgentProcess::start_with_env(
        dir.path(),
        &conf,
        "a1",
        "1",
        &["--monitoring-bind", "127.0.0.1", "--monitoring-port", &port],
        &[("HADOOP_CONF_DIR", conf_dir.as_str())],
    );

    // Through nn1 (active at start) until the first batch is committed.
    let first = agent.poll("waiting for the sink's first committed batch", |a| {
        let n = drained(a, mport);
        (n > 0).then_some(n)
    });
    let t_first = started.elapsed();
    let mut seen: Vec<(String, u64, Duration)> = Vec::new();
    for (i, &(change, want)) in changes.iter().enumerate() {
        if i > 0 {
            let (_, at, _) = seen[i - 1];
            let goal = (at + PROGRESS_BETWEEN_FAILOVERS).min(TOTAL_EVENTS);
            agent.poll(
                "waiting for two files' worth of events through the new active",
                |a| (drained(a, mport) >= goal).then_some(()),
            );
        }
        let (active, at, stall) = change_under_load(&hdfs, &mut agent, mport, change);
        assert_eq!(
            active, want,
            "the NameNode active after the {change:?} change"
        );
        seen.push((active, at, stall));
    }

    agent.poll("waiting for every event to be committed", |a| {
        (drained(a, mport) == TOTAL_EVENTS).then_some(())
    });
    let t_drained = started.elapsed();
    // A batch that failed during a change abandons its files; they are lease-recovered and
    // renamed every hdfs.retryInterval (1 s) while the agent runs. A clean shutdown makes one
    // last attempt only, so wait for them here.
    let unclosed = agent.poll("waiting for the abandoned files to be recovered", |a| {
        let (unclosed, done) = unclosed_and_recovered(&a.log());
        (unclosed.len() == done.len()).then_some(unclosed)
    });
    let t_recovered = started.elapsed();
    let held = counter(&mut agent, mport, "CHANNEL.c1", "ChannelSize");
    let failures = write_fails(&mut agent, mport);
    let (st, log) = agent.terminate();
    assert_eq!(st.code(), Some(0), "{log}");
    assert!(!log.contains("panicked"), "{log}");
    assert_eq!(held, 0, "the channel still holds events");

    let o = Outcome::read(&hdfs, hdfs_dir, TOTAL_EVENTS, failures);
    eprintln!(
        "HA {hdfs_dir}: first commit ({first} events) at {t_first:?}; changes (active, events \
         committed, stall) {seen:?}; all drained at {t_drained:?}; {} abandoned files \
         recovered at {t_recovered:?}; {} files, {} events read, {} numbers duplicated ({} \
         extra copies), {} failed batches, total {:?}",
        unclosed.len(),
        o.files.len(),
        o.nums.len(),
        o.dup_numbers,
        o.extra,
        o.failures,
        started.elapsed()
    );
    o.assert_nothing_lost(&log);
}

#[test]
fn ha_nameservice_graceful_failover_and_back_under_load_loses_nothing() {
    ha_under_load(
        "/t/ha-graceful",
        &[(Change::Graceful, "nn2"), (Change::Graceful, "nn1")],
    );
}

#[test]
fn ha_nameservice_active_namenode_crash_under_load_loses_nothing() {
    ha_under_load("/t/ha-crash", &[(Change::Crash, "nn2")]);
}
