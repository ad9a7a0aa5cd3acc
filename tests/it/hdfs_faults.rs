//! The HDFS sink's failure tests, end to end through the `flumen agent` binary against a real
//! HDFS (a private MiniDFSCluster per test, see `hdfs_cluster`): seq source -> file channel ->
//! hdfs sink under load, then
//! - the NameNode stopped mid-stream: the sink's batches fail, the runner rolls them back and
//!   retries with backoff, the channel holds the events and no batch succeeds; the NameNode
//!   restarted: everything arrives;
//! - the same with the DataNode;
//! - the agent killed with SIGKILL mid-stream and restarted on the same channel and HDFS
//!   directory (the killed agent's open file is left under its in-use name).
//!
//! After a clean shutdown every sequence number must be on HDFS at least once (duplicates are
//! allowed after a failure: at least once is the contract), and after an outage every file must
//! be closed under its final name: files abandoned during the outage are lease-recovered and
//! renamed every `hdfs.retryInterval` once HDFS is back. Progress is read from the agent's
//! monitoring server (`EventDrainSuccessCount`, `ChannelSize`), the files with Hadoop's own
//! client. Each test prints what it saw (`--nocapture`).

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::agent_proc::{free_port, json, AgentProcess};
use crate::hdfs_cluster::{HdfsEntry, MiniHdfs};

/// Events the seq source puts (bodies "0" to "N-1").
const TOTAL_EVENTS: u64 = 30_000;
/// The sink's log line for a file whose close failed (it is lease-recovered and renamed later).
const UNCLOSED_LOG: &str = "could not close ";
/// The sink's log line for such a file once it is closed and renamed.
const RECOVERED_LOG: &str = "recovered and closed ";
/// The sink's log line for such a file once it is closed and deleted (it held only a failed
/// batch's events).
const DELETED_LOG: &str = "recovered and deleted ";

/// seq (`total` events) -> file channel in `dir` -> hdfs sink writing DataStream files into
/// `<url><hdfs_dir>`.
pub(crate) fn write_config(
    dir: &Path,
    url: &str,
    hdfs_dir: &str,
    total: u64,
    tag: &str,
) -> PathBuf {
    let conf = dir.join(format!("agent-{tag}.properties"));
    let text = format!(
        "a1.sources = r1\n\
         a1.channels = c1\n\
         a1.sinks = k1\n\
         a1.sources.r1.type = seq\n\
         a1.sources.r1.totalEvents = {total}\n\
         a1.sources.r1.batchSize = 100\n\
         a1.sources.r1.channels = c1\n\
         a1.channels.c1.type = file\n\
         a1.channels.c1.checkpointDir = {cp}\n\
         a1.channels.c1.dataDirs = {data}\n\
         a1.channels.c1.capacity = 100000\n\
         a1.channels.c1.transactionCapacity = 1000\n\
         a1.channels.c1.minimumRequiredSpace = 1048576\n\
         a1.sinks.k1.type = hdfs\n\
         a1.sinks.k1.channel = c1\n\
         a1.sinks.k1.hdfs.path = {url}{hdfs_dir}\n\
         a1.sinks.k1.hdfs.fileType = DataStream\n\
         a1.sinks.k1.hdfs.batchSize = 100\n\
         a1.sinks.k1.hdfs.rollCount = 2000\n\
         a1.sinks.k1.hdfs.rollSize = 0\n\
         a1.sinks.k1.hdfs.rollInterval = 0\n\
         a1.sinks.k1.hdfs.callTimeout = 3000\n\
         a1.sinks.k1.hdfs.retryInterval = 1\n",
        cp = dir.join("checkpoint").display(),
        data = dir.join("data").display(),
    );
    std::fs::write(&conf, text).expect("write config");
    conf
}

/// An agent with its monitoring server on a free port.
struct Agent {
    proc: AgentProcess,
    mport: u16,
}

impl Agent {
    fn start(dir: &Path, conf: &Path, tag: &str) -> Agent {
        let mport = free_port();
        let port = mport.to_string();
        let proc = AgentProcess::start_with(
            dir,
            conf,
            "a1",
            tag,
            &["--monitoring-bind", "127.0.0.1", "--monitoring-port", &port],
        );
        Agent { proc, mport }
    }
}

/// One counter of the agent's monitoring JSON, e.g. `("SINK.k1", "EventDrainSuccessCount")`.
pub(crate) fn counter(a: &mut AgentProcess, mport: u16, component: &str, name: &str) -> u64 {
    let v = json(a, mport);
    v[component][name]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no counter {component}.{name} in {v}"))
}

/// Events the sink committed (each is on HDFS, synced).
pub(crate) fn drained(a: &mut AgentProcess, mport: u16) -> u64 {
    counter(a, mport, "SINK.k1", "EventDrainSuccessCount")
}

/// Batches the sink failed and the runner rolled back (its EventWriteFail counter: the log
/// reports a failure once per cause, not once per batch).
pub(crate) fn write_fails(a: &mut AgentProcess, mport: u16) -> u64 {
    counter(a, mport, "SINK.k1", "EventWriteFail")
}

/// The runner's reports of sink failures and recoveries, from its log.
fn failure_reports(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| l.contains("sink `k1` (hdfs)"))
        .filter(|l| l.contains(" failed") || l.contains("still failing") || l.contains("recovered"))
        .collect()
}

/// The files the sink could not close (their in-use names), and those of them it has since
/// lease-recovered and renamed (or deleted), from its log.
pub(crate) fn unclosed_and_recovered(log: &str) -> (Vec<String>, Vec<String>) {
    let after = |l: &str, marker: &str| -> Option<String> {
        let rest = &l[l.find(marker)? + marker.len()..];
        Some(rest.split([';', ' ']).next()?.to_string())
    };
    let unclosed: Vec<String> = log.lines().filter_map(|l| after(l, UNCLOSED_LOG)).collect();
    let recovered = log
        .lines()
        .filter_map(|l| after(l, RECOVERED_LOG))
        .collect::<Vec<_>>();
    let deleted = log
        .lines()
        .filter_map(|l| after(l, DELETED_LOG))
        .collect::<Vec<_>>();
    let done = unclosed
        .iter()
        .filter(|u| {
            recovered
                .iter()
                .any(|r| u.strip_suffix(".tmp") == Some(r.as_str()))
                || deleted.contains(u)
        })
        .cloned()
        .collect();
    (unclosed, done)
}

/// The numbers in the files under `hdfs_dir` (complete lines only), and any torn trailing
/// fragments (bytes of a file a killed agent was writing, past its last complete event).
pub(crate) fn hdfs_numbers(hdfs: &MiniHdfs, files: &[HdfsEntry]) -> (Vec<u64>, Vec<String>) {
    let mut nums = Vec::new();
    let mut torn = Vec::new();
    for f in files {
        let bytes = hdfs.hadoop_read(&f.path);
        let text = String::from_utf8(bytes).unwrap_or_else(|e| panic!("{}: {e}", f.path));
        let complete = text.rfind('\n').map_or(0, |i| i + 1);
        if complete < text.len() {
            torn.push(format!("{}: {:?}", f.path, &text[complete..]));
        }
        for line in text[..complete].lines() {
            let n = line
                .parse()
                .unwrap_or_else(|e| panic!("{}: line {line:?} is not a number: {e}", f.path));
            nums.push(n);
        }
    }
    (nums, torn)
}

/// Counts of each number below `total`: (missing numbers, numbers seen more than once,
/// extra copies in all). Panics on a number that was never generated.
pub(crate) fn tally(nums: &[u64], total: u64) -> (Vec<u64>, usize, u64) {
    let mut counts = vec![0u32; usize::try_from(total).expect("total fits usize")];
    for &n in nums {
        assert!(n < total, "number {n} was never generated");
        counts[n as usize] += 1;
    }
    let missing = (0..total).filter(|&n| counts[n as usize] == 0).collect();
    let dup_numbers = counts.iter().filter(|&&c| c > 1).count();
    let extra = counts.iter().map(|&c| u64::from(c.saturating_sub(1))).sum();
    (missing, dup_numbers, extra)
}

/// What a run left on HDFS after a clean shutdown, read back with Hadoop's client.
pub(crate) struct Outcome {
    pub(crate) files: Vec<HdfsEntry>,
    pub(crate) nums: Vec<u64>,
    pub(crate) torn: Vec<String>,
    pub(crate) missing: Vec<u64>,
    pub(crate) dup_numbers: usize,
    pub(crate) extra: u64,
    /// Batches the sink failed and rolled back (EventWriteFail).
    pub(crate) failures: u64,
}

impl Outcome {
    pub(crate) fn read(hdfs: &MiniHdfs, hdfs_dir: &str, total: u64, failures: u64) -> Outcome {
        let files = hdfs.hadoop_ls(hdfs_dir);
        let (nums, torn) = hdfs_numbers(hdfs, &files);
        let (missing, dup_numbers, extra) = tally(&nums, total);
        Outcome {
            files,
            nums,
            torn,
            missing,
            dup_numbers,
            extra,
            failures,
        }
    }

    /// Nothing lost, no torn line, duplicates only from failed batches (at most one batch of
    /// 100 each), and every file closed under its final name.
    pub(crate) fn assert_nothing_lost(&self, log: &str) {
        let (missing, files, extra, failures) =
            (&self.missing, &self.files, self.extra, self.failures);
        assert!(
            missing.is_empty(),
            "{} events lost, first {:?}; files {files:?}\n{log}",
            missing.len(),
            &missing[..missing.len().min(20)]
        );
        assert!(
            self.torn.is_empty(),
            "torn lines after a clean shutdown: {:?}",
            self.torn
        );
        assert!(
            extra <= 100 * failures,
            "{extra} extra copies, more than {failures} failed batches of 100 can explain\n{log}"
        );
        let left: Vec<&HdfsEntry> = files
            .iter()
            .filter(|f| !f.closed || f.path.ends_with(".tmp"))
            .collect();
        assert!(
            left.is_empty(),
            "files still open or under their in-use name after a clean shutdown: {left:?}\n{log}"
        );
    }
}

/// A NameNode or DataNode outage while the sink is writing (see the module docs).
fn outage_under_load(node: &str, hdfs_dir: &str) {
    let started = Instant::now();
    let hdfs = MiniHdfs::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let conf = write_config(dir.path(), hdfs.url(), hdfs_dir, TOTAL_EVENTS, "1");
    let Agent {
        proc: mut agent,
        mport,
    } = Agent::start(dir.path(), &conf, "1");

    // The outage starts as soon as the sink has committed its first batch.
    let first = agent.poll("waiting for the sink's first committed batch", |a| {
        let n = drained(a, mport);
        (n > 0).then_some(n)
    });
    let t_stop = started.elapsed();
    hdfs.command_ok(&format!("stop-{node}"));
    let t_stopped = started.elapsed();

    // The sink fails, the runner rolls the batch back and retries with backoff; while the node
    // is down no batch succeeds and the channel holds the events.
    let failures = agent.poll("waiting for the sink to fail and roll back", |a| {
        let n = write_fails(a, mport);
        (n > 0).then_some(n)
    });
    let t_failed = started.elapsed();
    let stuck = drained(&mut agent, mport);
    assert!(
        stuck < TOTAL_EVENTS,
        "the sink delivered all {TOTAL_EVENTS} events before the {node} stopped: the outage \
         came too late to test anything"
    );
    agent.poll("waiting for three more retries", |a| {
        (write_fails(a, mport) >= failures + 3).then_some(())
    });
    let still = drained(&mut agent, mport);
    let held = counter(&mut agent, mport, "CHANNEL.c1", "ChannelSize");
    let log = agent.log();
    let reports = failure_reports(&log);
    eprintln!(
        "{node} outage: first commit ({first} events) at {t_stop:?}, {node} stopped at \
         {t_stopped:?}, first failure at {t_failed:?} with {stuck} events drained; then \
         {still} drained, {held} held by the channel, {} failed batches; reported as \
         {reports:#?}",
        write_fails(&mut agent, mport)
    );
    // A node that is down is expected back: the outage is reported as retryable (WARN),
    // never as something only an operator can fix.
    assert!(!reports.is_empty(), "the outage was not reported:\n{log}");
    assert!(
        !log.contains("retrying will not help"),
        "the {node} outage was classified permanent:\n{log}"
    );
    assert_eq!(
        still, stuck,
        "a batch was committed while the {node} was down:\n{log}"
    );
    assert!(held > 0, "the channel should hold the undelivered events");

    hdfs.command_ok(&format!("start-{node}"));
    let t_restarted = started.elapsed();
    agent.poll(
        "waiting for every event to be committed after the restart",
        |a| (drained(a, mport) == TOTAL_EVENTS).then_some(()),
    );
    let t_drained = started.elapsed();
    // Files abandoned during the outage are lease-recovered and renamed every
    // hdfs.retryInterval (1 s) while the agent runs. That can take about 30 s more: a
    // recoverLease that reaches the restarted NameNode before the DataNode has re-registered
    // finds no live replica ("initializeBlockRecovery: No blocks found"), and the NameNode
    // then holds that block's recovery for 30 heartbeats before it accepts another attempt.
    // A clean shutdown makes one last attempt only, so the test waits for them here.
    let unclosed = agent.poll("waiting for the abandoned files to be recovered", |a| {
        let (unclosed, done) = unclosed_and_recovered(&a.log());
        (unclosed.len() == done.len()).then_some(unclosed)
    });
    let t_recovered = started.elapsed();
    let failures = write_fails(&mut agent, mport);
    let (st, log) = agent.terminate();
    assert_eq!(st.code(), Some(0), "{log}");
    assert!(!log.contains("panicked"), "{log}");
    assert!(
        log.contains("sink `k1` (hdfs) recovered"),
        "no recovery line after the {node} came back:\n{log}"
    );

    let o = Outcome::read(&hdfs, hdfs_dir, TOTAL_EVENTS, failures);
    eprintln!(
        "{node} restarted at {t_restarted:?}, all drained at {t_drained:?}, {} abandoned \
         files recovered at {t_recovered:?}; {} files, {} events read, {} numbers duplicated \
         ({} extra copies), {} failed batches, total {:?}",
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
fn namenode_outage_under_load_loses_nothing() {
    outage_under_load("namenode", "/t/nn");
}

#[test]
fn datanode_outage_under_load_loses_nothing() {
    outage_under_load("datanode", "/t/dn");
}

#[test]
fn agent_killed_mid_stream_and_restarted_loses_nothing() {
    let started = Instant::now();
    let hdfs = MiniHdfs::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let hdfs_dir = "/t/kill";

    // Run 1: the source puts every event into the file channel, the sink is SIGKILLed while
    // it is still draining them.
    let conf = write_config(dir.path(), hdfs.url(), hdfs_dir, TOTAL_EVENTS, "1");
    let Agent {
        proc: mut agent,
        mport,
    } = Agent::start(dir.path(), &conf, "1");
    let before_kill = agent.poll(
        "waiting for the source to finish and the sink to be busy",
        |a| {
            let put = counter(a, mport, "SOURCE.r1", "EventAcceptedCount");
            let n = drained(a, mport);
            (put == TOTAL_EVENTS && n >= 3_000).then_some(n)
        },
    );
    let t_kill = started.elapsed();
    let (st, log1) = agent.kill_9();
    assert!(st.code().is_none(), "expected death by signal, got {st}");
    assert!(
        before_kill + 5_000 <= TOTAL_EVENTS,
        "the sink had drained {before_kill} of {TOTAL_EVENTS} events before the kill: too late \
         to test anything"
    );

    // Run 2: the same channel and HDFS directory, a source that puts nothing
    // (`totalEvents = 0`): it only drains what run 1 left in the channel.
    let conf = write_config(dir.path(), hdfs.url(), hdfs_dir, 0, "2");
    let Agent {
        proc: mut agent,
        mport,
    } = Agent::start(dir.path(), &conf, "2");
    let drained2 = agent.poll(
        "waiting for the restarted agent to drain the channel",
        |a| {
            if !a.log().contains("agent `a1` started") {
                return None;
            }
            let left = counter(a, mport, "CHANNEL.c1", "ChannelSize");
            let n = drained(a, mport);
            (left == 0 && n > 0).then_some(n)
        },
    );
    let t_drained = started.elapsed();
    let (st, log2) = agent.terminate();
    assert_eq!(st.code(), Some(0), "{log2}");
    assert!(!log2.contains("panicked"), "{log2}");

    let files = hdfs.hadoop_ls(hdfs_dir);
    let (nums, torn) = hdfs_numbers(&hdfs, &files);
    let (missing, dup_numbers, extra) = tally(&nums, TOTAL_EVENTS);
    // Run 1's open file keeps its in-use name and stays open: the killed agent's lease expires
    // only after HDFS's hard limit (an hour), and nothing in flumen recovers files another
    // process left behind (neither does Flume). Its synced events are readable all the same.
    let left: Vec<&HdfsEntry> = files
        .iter()
        .filter(|f| !f.closed || f.path.ends_with(".tmp"))
        .collect();
    eprintln!(
        "killed at {t_kill:?} after {before_kill} events drained; run 2 drained {drained2} by \
         {t_drained:?}; {} files ({} left open by the killed agent: {left:?}), {} events read, \
         {dup_numbers} numbers duplicated ({extra} extra copies), torn tails {torn:?}, total \
         {:?}",
        files.len(),
        left.len(),
        nums.len(),
        started.elapsed()
    );
    assert!(
        missing.is_empty(),
        "{} events lost, first {:?}; files {files:?}\nrun 1:\n{log1}\nrun 2:\n{log2}",
        missing.len(),
        &missing[..missing.len().min(20)]
    );
    // The only events delivered twice are those of the batch in flight at the kill: written
    // (maybe synced) but not committed, so run 2 takes and writes them again.
    assert!(
        extra <= 100,
        "{extra} extra copies, more than the one batch (100) in flight at the kill explains"
    );
    assert!(
        left.iter().all(|f| f.path.ends_with(".tmp")),
        "an open file under a final name: {left:?}"
    );
    assert!(
        left.len() <= 1,
        "only run 1's last file may be left open: {left:?}"
    );
}
