//! Issue 15: the sink runner acts on whether a failure can pass by itself.
//!
//! `SinkError` used to be a string, so the runner treated a dead peer and a permission
//! problem alike and logged every retry of either at ERROR. These tests run a [`SinkRunner`]
//! on a thread whose log is captured (a thread-local subscriber, so tests may run in
//! parallel) and check that:
//! - a retryable failure (an avro sink whose next tier is not listening yet) is reported once
//!   at WARN however often it is retried, the events stay in the channel, and once the tier
//!   listens every event arrives, in order, and the recovery is reported once with the
//!   failure count;
//! - a permanent failure (an hdfs sink writing under a path whose parent is a regular file:
//!   ENOTDIR, which root meets too, unlike a permission) is reported once at ERROR with what
//!   to do, the events stay in the channel, and they flow once the file is moved away,
//!   without a restart;
//! - a change of cause is reported, at the level of the new cause.
//!
//! The runner's waits are shortened (`RunnerPolicy`) so many retries happen quickly; nothing
//! here measures time, every wait is a condition with a deadline.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use flumen::channel::memory::{MemoryChannel, MemoryChannelConfig};
use flumen::channel::Channel;
use flumen::metrics::{ComponentCounters, ComponentType, Counter};
use flumen::report::ReportPolicy;
use flumen::sink::{Retry, RunnerPolicy, Sink, SinkCause, SinkError, SinkRunner};
use flumen::Event;
use parking_lot::Mutex;

use crate::agent_proc::free_port;
use crate::avro_source::{start_agent_with, take_n};

const DEADLINE: Duration = Duration::from_secs(60);
/// Events each test sends (bodies "0" to "N-1").
const N: usize = 1000;

/// Short waits so a test sees many retries; no reminders and no settle time, so the lines a
/// test counts are the first report, changes and the recovery only.
fn fast() -> RunnerPolicy {
    RunnerPolicy {
        backoff_start: Duration::from_millis(5),
        backoff_max: Duration::from_millis(40),
        report: ReportPolicy {
            remind_every: Duration::from_secs(3600),
            settle: Duration::ZERO,
        },
    }
}

/// The log text a thread-local subscriber wrote.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock()).into_owned()
    }

    /// Lines at `level` (`WARN`, `ERROR`, `INFO`) containing `needle`.
    fn lines(&self, level: &str, needle: &str) -> Vec<String> {
        self.text()
            .lines()
            .filter(|l| l.contains(level) && l.contains(needle))
            .map(str::to_string)
            .collect()
    }
}

/// A runner on its own thread, with its log captured.
struct Running {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    log: Captured,
    counters: Arc<ComponentCounters>,
}

impl Running {
    fn start(
        channel: Arc<dyn Channel>,
        type_name: &'static str,
        mut sink: Box<dyn Sink>,
        batch_size: usize,
    ) -> Running {
        let counters = ComponentCounters::detached("k1", ComponentType::Sink);
        sink.attach_counters(Arc::clone(&counters));
        let runner = SinkRunner {
            name: "k1".into(),
            type_name,
            channel,
            sink,
            batch_size,
            counters: Arc::clone(&counters),
        };
        let stop = Arc::new(AtomicBool::new(false));
        let log = Captured::default();
        let (s, w) = (Arc::clone(&stop), log.clone());
        let thread = std::thread::spawn(move || {
            let subscriber = tracing_subscriber::fmt()
                .with_writer(move || w.clone())
                .with_ansi(false)
                .with_max_level(tracing::Level::INFO)
                .finish();
            tracing::subscriber::with_default(subscriber, || runner.run_with(s, fast()));
        });
        Running {
            stop,
            thread: Some(thread),
            log,
            counters,
        }
    }

    fn count(&self, c: Counter) -> u64 {
        self.counters.get(c)
    }

    /// Waits until `cond` holds; fails with the captured log after the deadline.
    fn wait(&self, what: &str, mut cond: impl FnMut(&Running) -> bool) {
        let end = Instant::now() + DEADLINE;
        while !cond(self) {
            assert!(
                Instant::now() < end,
                "timed out waiting for {what}; log:\n{}",
                self.log.text()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Waits until all `N` events' takes committed, stops the runner, and returns the failed
    /// batches it counted and its log.
    fn drain_and_stop(self) -> (u64, Captured) {
        self.wait("every take committed", |r| {
            r.count(Counter::EventDrainSuccessCount) == N as u64
        });
        let failures = self.count(Counter::EventWriteFail);
        let log = self.stop();
        eprintln!(
            "{failures} failed batches; the runner's log:\n{}",
            log.text()
        );
        (failures, log)
    }

    /// Stops the runner (it finishes its batch and stops the sink) and returns its log.
    fn stop(mut self) -> Captured {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            t.join().expect("runner thread");
        }
        self.log.clone()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}

/// A memory channel holding the bodies "0" to "n-1", in order.
fn channel_with(n: usize) -> Arc<dyn Channel> {
    let cfg = MemoryChannelConfig {
        capacity: 100_000,
        transaction_capacity: 100,
        ..MemoryChannelConfig::default()
    };
    let ch: Arc<dyn Channel> = Arc::new(MemoryChannel::new("c1", cfg).expect("channel"));
    for first in (0..n).step_by(100) {
        let mut tx = ch.put_transaction();
        for i in first..(first + 100).min(n) {
            tx.put(Event::new(i.to_string())).expect("put");
        }
        tx.commit().expect("commit");
    }
    ch
}

/// Checks `bodies` hold every number below `n` and that their first appearances are in
/// order: what Flume promises (at least once, in order; a batch retried after a failure may
/// repeat).
fn assert_at_least_once_in_order(bodies: &[String], n: usize) {
    let mut next = 0usize;
    let mut repeats = 0usize;
    for b in bodies {
        let i: usize = b.parse().unwrap_or_else(|_| panic!("body {b:?}"));
        if i == next {
            next += 1;
        } else {
            assert!(i < next, "{i} arrived before {next}");
            repeats += 1;
        }
    }
    assert_eq!(next, n, "only 0..{next} of 0..{n} arrived");
    eprintln!("{} events, {repeats} repeated", bodies.len());
}

/// The number in "after {n} failed attempts" of a recovery line.
fn failures_in(line: &str) -> u64 {
    let rest = &line[line.find("after ").expect("after") + 6..];
    rest.split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in {line}"))
}

#[test]
fn a_retryable_failure_is_reported_once_and_every_event_arrives_in_order_once_it_passes() {
    let port = free_port();
    let ch = channel_with(N);
    let sink = flumen::sink::avro::AvroSink::new(
        "k1",
        flumen::sink::avro::AvroSinkOptions {
            hostname: "127.0.0.1".into(),
            port,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
            reset_connection_interval: None,
            deflate: None,
            tls: None,
        },
    );
    let run = Running::start(Arc::clone(&ch), "avro", Box::new(sink), 100);

    // Nobody listens: connection refused, again and again.
    run.wait("five failed batches", |r| {
        r.count(Counter::EventWriteFail) >= 5
    });
    let failed = run.log.lines("WARN", "sink `k1` (avro) failed");
    assert_eq!(failed.len(), 1, "reported once:\n{}", run.log.text());
    assert!(
        failed[0].contains(&format!("127.0.0.1:{port}")),
        "{failed:?}"
    );
    assert!(
        run.log.lines("ERROR", "").is_empty(),
        "a peer that is not listening yet is not an error only an operator can fix:\n{}",
        run.log.text()
    );
    assert_eq!(ch.stats().size, N as u64, "the channel keeps every event");
    assert_eq!(run.count(Counter::EventDrainSuccessCount), 0);

    // The next tier starts listening.
    let tier = start_agent_with(
        port,
        "",
        "a1.channels.c1.capacity = 100000\na1.channels.c1.transactionCapacity = 100\n",
    );
    let got = take_n(tier.channels()[0].as_ref(), N);
    let bodies: Vec<String> = got
        .iter()
        .map(|e| String::from_utf8_lossy(e.body()).into_owned())
        .collect();
    assert_at_least_once_in_order(&bodies, N);
    let (failures, log) = run.drain_and_stop();
    let recovered = log.lines("INFO", "sink `k1` (avro) recovered");
    assert_eq!(recovered.len(), 1, "{}", log.text());
    // The recovery counts every failed batch of the outage, and none came after it.
    assert_eq!(failures_in(&recovered[0]), failures, "{}", log.text());
    assert_eq!(
        log.lines("WARN", "sink `k1` (avro) failed").len(),
        1,
        "{}",
        log.text()
    );
    assert_eq!(ch.stats().size, 0);
    tier.shutdown().expect("shutdown the tier");
}

#[test]
fn a_permanent_failure_is_reported_once_keeps_the_events_and_they_flow_once_fixed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let blocker = dir.path().join("blocker");
    std::fs::write(&blocker, "a regular file where the sink wants a directory").expect("write");
    let out = blocker.join("out");
    let text = format!(
        "a1.channels = c1\n\
         a1.sinks = k1\n\
         a1.channels.c1.type = memory\n\
         a1.sinks.k1.type = hdfs\n\
         a1.sinks.k1.channel = c1\n\
         a1.sinks.k1.hdfs.path = {}\n\
         a1.sinks.k1.hdfs.fileType = DataStream\n\
         a1.sinks.k1.hdfs.batchSize = 100\n\
         a1.sinks.k1.hdfs.rollCount = 0\n\
         a1.sinks.k1.hdfs.rollSize = 0\n\
         a1.sinks.k1.hdfs.rollInterval = 0\n",
        out.display()
    );
    let (cfg, warnings) = flumen::agent::config::parse(&text, "hdfs.conf", "a1").expect("config");
    assert!(warnings.is_empty(), "{warnings:?}");
    let spec = &cfg.sinks[0].spec;
    let sink = spec.build(&cfg.sinks[0].name).expect("build the sink");
    let batch = spec.batch_size().map_or(1, |(n, _)| n);
    let ch = channel_with(N);
    let run = Running::start(Arc::clone(&ch), cfg.sinks[0].type_name, sink, batch);

    run.wait("five failed batches", |r| {
        r.count(Counter::EventWriteFail) >= 5
    });
    let reported = run.log.lines("ERROR", "sink `k1` (hdfs) failed");
    assert_eq!(reported.len(), 1, "reported once:\n{}", run.log.text());
    let line = &reported[0];
    assert!(line.contains("retrying will not help"), "{line}");
    assert!(line.contains(&blocker.display().to_string()), "{line}");
    // What the operator can do.
    assert!(line.contains("regular file"), "{line}");
    assert!(
        run.log.lines("WARN", "sink `k1`").is_empty(),
        "{}",
        run.log.text()
    );
    assert_eq!(ch.stats().size, N as u64, "the channel keeps every event");

    // The operator moves the file away; no restart.
    std::fs::remove_file(&blocker).expect("remove the blocker");
    let (failures, log) = run.drain_and_stop();
    assert_eq!(
        log.lines("ERROR", "sink `k1` (hdfs) failed").len(),
        1,
        "{}",
        log.text()
    );
    let recovered = log.lines("INFO", "sink `k1` (hdfs) recovered");
    assert_eq!(recovered.len(), 1, "{}", log.text());
    assert_eq!(failures_in(&recovered[0]), failures, "{}", log.text());
    assert_eq!(ch.stats().size, 0);

    // Every event, once and in order, in closed files under their final names.
    let mut names: Vec<_> = std::fs::read_dir(&out)
        .expect("read the output directory")
        .map(|e| e.expect("entry").path())
        .collect();
    names.sort();
    assert!(
        names
            .iter()
            .all(|p| !p.display().to_string().ends_with(".tmp")),
        "{names:?}"
    );
    let text: String = names
        .iter()
        .map(|p| std::fs::read_to_string(p).expect("read"))
        .collect();
    let bodies: Vec<String> = text.lines().map(str::to_string).collect();
    assert_at_least_once_in_order(&bodies, N);
    assert_eq!(bodies.len(), N, "nothing was written before the fix");
}

/// A sink that fails as its script says, batch by batch, then delivers; it keeps what it
/// delivered.
struct Scripted {
    script: Vec<(Retry, &'static str)>,
    delivered: Arc<Mutex<Vec<String>>>,
}

impl Sink for Scripted {
    fn process(&mut self, events: &[Event]) -> Result<(), SinkError> {
        if !self.script.is_empty() {
            let (retry, cause) = self.script.remove(0);
            return Err(SinkError::with_retry(
                "k1",
                retry,
                SinkCause::Other(cause.to_string()),
            ));
        }
        let mut d = self.delivered.lock();
        d.extend(
            events
                .iter()
                .map(|e| String::from_utf8_lossy(e.body()).into_owned()),
        );
        Ok(())
    }
}

#[test]
fn a_change_of_cause_is_reported_at_the_level_of_the_new_cause() {
    let delivered = Arc::new(Mutex::new(Vec::new()));
    let script = vec![
        (Retry::Retryable, "the peer is restarting"),
        (Retry::Retryable, "the peer is restarting"),
        (Retry::Retryable, "the peer is restarting"),
        (Retry::Permanent, "the peer refuses this user"),
        (Retry::Permanent, "the peer refuses this user"),
    ];
    let sink = Scripted {
        script,
        delivered: Arc::clone(&delivered),
    };
    let ch = channel_with(N);
    let run = Running::start(Arc::clone(&ch), "scripted", Box::new(sink), 100);
    run.wait("every take committed", |r| {
        r.count(Counter::EventDrainSuccessCount) == N as u64
    });
    let log = run.stop();
    let text = log.text();
    let first = log.lines("WARN", "sink `k1` (scripted) failed");
    assert_eq!(first.len(), 1, "{text}");
    assert!(first[0].contains("the peer is restarting"), "{text}");
    let changed = log.lines("ERROR", "sink `k1` (scripted) failed differently");
    assert_eq!(changed.len(), 1, "{text}");
    assert!(
        changed[0].contains("after 3 failures") && changed[0].contains("refuses this user"),
        "{text}"
    );
    assert_eq!(log.lines("ERROR", "").len(), 1, "{text}");
    let recovered = log.lines("INFO", "sink `k1` (scripted) recovered");
    assert_eq!(recovered.len(), 1, "{text}");
    assert_eq!(failures_in(&recovered[0]), 5, "{text}");
    assert_at_least_once_in_order(&delivered.lock(), N);
}
