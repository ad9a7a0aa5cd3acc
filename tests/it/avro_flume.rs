//! flumen's avro source and sink against a real Apache Flume 1.11.0 agent (Flume's own
//! `Application`, see `flume_agent.rs`), both directions, through the `flumen agent` binary:
//!
//! - Flume -> flumen: Flume's seq source -> memory channel -> Flume's avro sink -> flumen's avro
//!   source -> file channel -> file_roll. Every number arrives exactly once in flumen's output.
//! - flumen -> Flume: flumen's seq source -> memory channel -> flumen's avro sink -> Flume's avro
//!   source -> memory channel -> Flume's file_roll (TEXT: body and a newline). Every number
//!   arrives exactly once in Flume's output; plain and with `compression-type = deflate` on
//!   both sides.
//!
//! Nothing fails on purpose here, so anything but exactly once is a bug on one side; each side's
//! own counters must agree with what arrived. Every wait is a condition with a deadline, and a
//! failure shows both agents' logs.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use crate::agent_proc::{complete_lines, newline_count};
use crate::agent_proc::{
    free_port, json, seq_to_avro_properties, tcp_file_roll_config, AgentProcess, DEADLINE, POLL,
};
use crate::flume_agent::FlumeAgent;

/// Events per test: a few seconds of transfer either way with a debug flumen on a loaded
/// 2-core machine. The rest of a test's wall time is the JVM's start-up (about 4 s) and, once
/// per test process, Maven resolving the classpath (10 to 20 s on a loaded machine).
const EVENTS: usize = 50_000;

/// A `flumen agent` killed when the test ends early (a failed assertion), so no agent outlives
/// its test; [`AgentProcess`] itself leaves that to its callers.
struct Flumen(Option<AgentProcess>);

impl Flumen {
    fn get(&mut self) -> &mut AgentProcess {
        self.0.as_mut().expect("flumen runs")
    }

    /// SIGTERM and wait for the exit (see [`AgentProcess::terminate`]).
    fn terminate(mut self) -> (std::process::ExitStatus, String) {
        self.0.take().expect("flumen runs").terminate()
    }
}

impl Drop for Flumen {
    fn drop(&mut self) {
        if let Some(a) = self.0.as_mut() {
            let _ = a.child.kill();
            let _ = a.child.wait();
        }
    }
}

/// Waits until `cond` holds while both agents run; on a timeout or an exit, fails with both
/// logs.
fn wait_both(
    what: &str,
    flume: &mut FlumeAgent,
    flumen: &mut AgentProcess,
    mut cond: impl FnMut() -> bool,
) {
    let end = Instant::now() + DEADLINE;
    while !cond() {
        flume.assert_running(what);
        if let Some(st) = flumen.child.try_wait().expect("try_wait") {
            flume.fail(&format!(
                "flumen exited with {st} while {what}:\n{}",
                flumen.log()
            ));
        }
        if Instant::now() > end {
            let _ = flumen.child.kill();
            flume.fail(&format!(
                "timed out after {DEADLINE:?} {what}; flumen's log:\n{}",
                flumen.log()
            ));
        }
        std::thread::sleep(POLL);
    }
}

/// Panics unless the complete lines in `out` are exactly "0".."n-1", once each.
fn assert_exactly_once(out: &Path, n: usize, flume: &mut FlumeAgent) {
    let counts = complete_lines(out);
    let want: BTreeMap<String, usize> = (0..n).map(|i| (i.to_string(), 1)).collect();
    if counts != want {
        let dups: Vec<_> = counts.iter().filter(|(_, c)| **c > 1).take(10).collect();
        let extra: Vec<_> = counts
            .keys()
            .filter(|k| !want.contains_key(*k))
            .take(10)
            .collect();
        let missing: Vec<_> = want
            .keys()
            .filter(|k| !counts.contains_key(*k))
            .take(10)
            .collect();
        flume.fail(&format!(
            "{} distinct lines of {n} in {}: duplicates {dups:?}, never sent {extra:?}, \
             missing {missing:?}",
            counts.len(),
            out.display()
        ));
    }
}

#[test]
fn flume_avro_sink_to_flumen_every_event_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let out = dir.path().join("out");
    // Build the Java side (once per test process) before flumen starts, so a cold Maven build
    // is not spent with flumen waiting.
    crate::flume_agent::classpath();
    // flumen first and listening, so Flume's sink connects at its first attempt.
    let conf = tcp_file_roll_config(dir.path(), "avro", port, 100);
    let mut flumen = Flumen(Some(AgentProcess::start(dir.path(), &conf, "a1", "flumen")));
    drop(flumen.get().connect(port));
    let mut flume = FlumeAgent::start(dir.path(), "seq", &seq_to_avro_properties(EVENTS, port, ""));
    wait_both(
        "waiting for every event in flumen's output",
        &mut flume,
        flumen.get(),
        || newline_count(&out) >= EVENTS,
    );
    assert_exactly_once(&out, EVENTS, &mut flume);

    // Flume committed every take (it counts after the commit that follows our OK), and its
    // sink never had to reconnect.
    flume.poll("waiting for Flume's sink to count every event", |f| {
        (f.try_counter("SINK.k1", "EventDrainSuccessCount")? == EVENTS as u64).then_some(())
    });
    assert_eq!(flume.counter("SINK.k1", "ConnectionFailedCount"), 0);
    assert_eq!(flume.counter("SINK.k1", "EventWriteFail"), 0);
    assert_eq!(
        flume.counter("SOURCE.r1", "EventAcceptedCount"),
        EVENTS as u64
    );

    // Both shut down cleanly: Flume's sink closes its connection, flumen drains and exits 0,
    // and nothing more arrived.
    let st = flume.stop();
    assert_eq!(st.code(), Some(143), "Flume's exit after SIGTERM");
    let (st, log) = flumen.terminate();
    assert_eq!(st.code(), Some(0), "{log}");
    let counts = complete_lines(&out);
    assert_eq!(counts.len(), EVENTS, "{log}");
    assert!(
        counts.values().all(|&c| c == 1),
        "a duplicate after shutdown"
    );
}

/// flumen (seq, `EVENTS` numbers) -> memory channel -> avro sink -> Flume (avro source ->
/// memory channel -> file_roll); `compression` is the `compression-type` of both ends.
fn flumen_to_flume(compression: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let out = dir.path().join("flume-out");
    // Flume 1.11's RollingFileSink does not create its directory: every batch fails with
    // FileNotFoundException (and the avro source answers FAILED once the channel is full).
    std::fs::create_dir(&out).expect("create Flume's output directory");
    let mut flume = FlumeAgent::start(
        dir.path(),
        "avro",
        &format!(
            "a1.sources = r1\n\
             a1.channels = c1\n\
             a1.sinks = k1\n\
             a1.sources.r1.type = avro\n\
             a1.sources.r1.bind = 127.0.0.1\n\
             a1.sources.r1.port = {port}\n\
             a1.sources.r1.compression-type = {compression}\n\
             a1.sources.r1.channels = c1\n\
             a1.channels.c1.type = memory\n\
             a1.channels.c1.capacity = 10000\n\
             a1.channels.c1.transactionCapacity = 100\n\
             a1.sinks.k1.type = file_roll\n\
             a1.sinks.k1.channel = c1\n\
             a1.sinks.k1.sink.directory = {out}\n\
             a1.sinks.k1.sink.rollInterval = 0\n\
             a1.sinks.k1.sink.batchSize = 100\n",
            out = out.display()
        ),
    );
    flume.wait_ready(&["SOURCE.r1", "SINK.k1"], Some(port));

    let conf = dir.path().join("flumen.properties");
    std::fs::write(
        &conf,
        seq_to_avro_properties(
            EVENTS,
            port,
            &format!("a1.sinks.k1.compression-type = {compression}\n"),
        ),
    )
    .expect("write flumen's config");
    let mport = free_port();
    let mport_arg = mport.to_string();
    let mut flumen = Flumen(Some(AgentProcess::start_with(
        dir.path(),
        &conf,
        "a1",
        "flumen",
        &[
            "--monitoring-bind",
            "127.0.0.1",
            "--monitoring-port",
            &mport_arg,
        ],
    )));
    // Flume's file_roll flushes its stream after every batch, so the lines show up as they
    // are committed.
    wait_both(
        "waiting for every event in Flume's output",
        &mut flume,
        flumen.get(),
        || newline_count(&out) >= EVENTS,
    );
    // flumen counted every take as delivered: Flume answered OK to every batch, first time.
    let end = Instant::now() + DEADLINE;
    let v = loop {
        let v = json(flumen.get(), mport);
        let drained = v["SINK.k1"]["EventDrainSuccessCount"].as_str();
        if drained.and_then(|d| d.parse::<usize>().ok()) == Some(EVENTS) {
            break v;
        }
        if Instant::now() > end {
            let _ = flumen.get().child.kill();
            flume.fail(&format!("flumen's sink counters: {v}"));
        }
        std::thread::sleep(POLL);
    };
    assert_eq!(v["SINK.k1"]["EventWriteFail"], "0", "{v}");
    assert_eq!(v["SINK.k1"]["ConnectionFailedCount"], "0", "{v}");
    assert_eq!(v["SINK.k1"]["ConnectionCreatedCount"], "1", "{v}");
    // Everything is sent and acknowledged, so the output is final: check it.
    assert_exactly_once(&out, EVENTS, &mut flume);
    assert_eq!(
        flume.counter("SOURCE.r1", "AppendBatchAcceptedCount"),
        EVENTS.div_ceil(100) as u64
    );
    let (st, log) = flumen.terminate();
    assert_eq!(st.code(), Some(0), "{log}");
    // Flume is killed on drop: its avro source takes seconds to stop (Netty's graceful
    // shutdown), and its output was checked above.
}

#[test]
fn flumen_avro_sink_to_flume_every_event_once() {
    flumen_to_flume("none");
}

#[test]
fn flumen_avro_sink_to_flume_with_deflate_every_event_once() {
    flumen_to_flume("deflate");
}
