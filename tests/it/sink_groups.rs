//! Sink groups through the `flumen agent` binary: a failover group whose primary's peer is
//! SIGKILLed mid-stream and restarted.
//!
//! ```text
//! test (netcat) ──▶ A: netcat -> file channel -> group g1 (failover)
//!                        ├─ k1 (avro, priority 10) ──▶ B1: avro -> file channel -> file_roll
//!                        └─ k2 (avro, priority 5)  ──▶ B2: avro -> file channel -> file_roll
//! ```
//!
//! A feeder thread sends numbered lines to A's netcat source, acknowledged one by one, never
//! beyond what the test allows. B1 is killed with SIGKILL while events flow; A must switch to
//! k2 (its log says so once, its metrics show k2 active), and once B1 is back on the same port
//! and directories, return to k1 (logged once, k1 active again). Every acknowledged event must
//! be in B1's or B2's output (duplicates are allowed and counted, losses are not).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::agent_proc::tcp_file_roll_config;
use crate::agent_proc::{complete_lines, free_port, get, json, newline_count};
use crate::agent_proc::{AgentProcess, DEADLINE, POLL};
use crate::avro_tier::fixed_port;

/// Lines per write before reading their acknowledgements.
const CHUNK: usize = 100;

/// A: netcat on `in_port` -> file channel -> failover group of avro sinks to `b1` (priority
/// 10) and `b2` (priority 5), penalties capped at 2 s so the return to k1 comes quickly.
fn a_config(dir: &Path, in_port: u16, b1: u16, b2: u16) -> PathBuf {
    let conf = dir.join("a.properties");
    let sink = |k: &str, port: u16| {
        format!(
            "a1.sinks.{k}.type = avro\n\
             a1.sinks.{k}.channel = c1\n\
             a1.sinks.{k}.hostname = 127.0.0.1\n\
             a1.sinks.{k}.port = {port}\n\
             a1.sinks.{k}.batch-size = 100\n\
             a1.sinks.{k}.connect-timeout = 1000\n\
             a1.sinks.{k}.request-timeout = 10000\n"
        )
    };
    let text = format!(
        "a1.sources = r1\n\
         a1.channels = c1\n\
         a1.sinks = k1 k2\n\
         a1.sinkgroups = g1\n\
         a1.sources.r1.type = netcat\n\
         a1.sources.r1.bind = 127.0.0.1\n\
         a1.sources.r1.port = {in_port}\n\
         a1.sources.r1.channels = c1\n\
         a1.channels.c1.type = file\n\
         a1.channels.c1.checkpointDir = {cp}\n\
         a1.channels.c1.dataDirs = {data}\n\
         a1.channels.c1.minimumRequiredSpace = 1048576\n\
         {k1}{k2}\
         a1.sinkgroups.g1.sinks = k1 k2\n\
         a1.sinkgroups.g1.processor.type = failover\n\
         a1.sinkgroups.g1.processor.priority.k1 = 10\n\
         a1.sinkgroups.g1.processor.priority.k2 = 5\n\
         a1.sinkgroups.g1.processor.maxpenalty = 2000\n",
        cp = dir.join("checkpoint").display(),
        data = dir.join("data").display(),
        k1 = sink("k1", b1),
        k2 = sink("k2", b2),
    );
    std::fs::write(&conf, text).expect("write A's config");
    conf
}

/// What the feeder may send (`allowed`) and what A acknowledged (`acked`).
#[derive(Default)]
struct Fed {
    allowed: AtomicUsize,
    acked: AtomicUsize,
    stop: AtomicBool,
    error: Mutex<Option<String>>,
}

/// Sends "0", "1", ... to A's netcat source in chunks, reading an `OK` per line, never
/// beyond `fed.allowed`, until `fed.stop`.
fn feed(port: u16, fed: &Fed) {
    let run = || -> std::io::Result<()> {
        let mut s = TcpStream::connect(("127.0.0.1", port))?;
        s.set_read_timeout(Some(DEADLINE))?;
        let mut next = 0;
        let give_up = Instant::now() + 4 * DEADLINE;
        while !fed.stop.load(Ordering::SeqCst) && Instant::now() < give_up {
            let allowed = fed.allowed.load(Ordering::SeqCst);
            if allowed <= next {
                std::thread::sleep(POLL);
                continue;
            }
            let end = (next + CHUNK).min(allowed);
            let mut text = String::new();
            for i in next..end {
                text.push_str(&format!("{i}\n"));
            }
            s.write_all(text.as_bytes())?;
            let mut acks = vec![0u8; 3 * (end - next)];
            s.read_exact(&mut acks)?;
            if acks.chunks(3).any(|a| a != b"OK\n") {
                return Err(std::io::Error::other(format!(
                    "not OK: {}",
                    String::from_utf8_lossy(&acks)
                )));
            }
            fed.acked.store(end, Ordering::SeqCst);
            next = end;
        }
        Ok(())
    };
    if let Err(e) = run() {
        *fed.error.lock().expect("lock") = Some(e.to_string());
    }
}

/// The three agents; dropping it (a failed test) kills whichever still runs.
struct Agents {
    a: AgentProcess,
    b1: Option<AgentProcess>,
    b2: AgentProcess,
    a_metrics: u16,
    b1_out: PathBuf,
    b2_out: PathBuf,
}

impl Drop for Agents {
    fn drop(&mut self) {
        for p in [Some(&mut self.a), self.b1.as_mut(), Some(&mut self.b2)]
            .into_iter()
            .flatten()
        {
            let _ = p.child.kill();
            let _ = p.child.wait();
        }
    }
}

impl Agents {
    /// Sink `k`'s `Active` gauge in A's JSON metrics.
    fn active(&mut self, k: &str) -> String {
        let port = self.a_metrics;
        let v = json(&mut self.a, port);
        v[format!("SINK.{k}")]["Active"]
            .as_str()
            .unwrap_or_else(|| panic!("no Active for {k} in {v}"))
            .to_string()
    }

    /// Sink `k`'s `Active` gauge in A's Prometheus text.
    fn prometheus_active(&mut self, k: &str) -> String {
        let port = self.a_metrics;
        let (status, text) = get(&mut self.a, port, "/metrics/prometheus");
        assert_eq!(status, 200, "{text}");
        let prefix = format!("flumen_sink_active{{component=\"{k}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("no {prefix}in:\n{text}"))
            .to_string()
    }

    /// Waits until k1's and k2's Active gauges read `k1` and `k2`.
    fn wait_active(&mut self, k1: &str, k2: &str) {
        let end = Instant::now() + DEADLINE;
        loop {
            let now = (self.active("k1"), self.active("k2"));
            if now == (k1.to_string(), k2.to_string()) {
                // The Prometheus rendering says the same (both read the one gauge).
                let prom = (self.prometheus_active("k1"), self.prometheus_active("k2"));
                if prom == now {
                    return;
                }
            }
            assert!(
                Instant::now() < end,
                "Active stayed (k1, k2) = {now:?}, wanted ({k1}, {k2}):\n{}",
                self.a.log()
            );
            std::thread::sleep(POLL);
        }
    }

    /// Every line of B1's and B2's outputs, with how often it occurs.
    fn union(&self) -> BTreeMap<String, usize> {
        let mut all = complete_lines(&self.b1_out);
        for (line, n) in complete_lines(&self.b2_out) {
            *all.entry(line).or_insert(0) += n;
        }
        all
    }

    fn delivered(&self, upto: usize) -> bool {
        if newline_count(&self.b1_out) + newline_count(&self.b2_out) < upto {
            return false;
        }
        let all = self.union();
        (0..upto).all(|i| all.contains_key(&i.to_string()))
    }

    fn wait(&mut self, what: &str, mut cond: impl FnMut(&mut Self) -> bool) {
        let end = Instant::now() + DEADLINE;
        while !cond(self) {
            self.a.assert_running(what);
            self.b2.assert_running(what);
            assert!(
                Instant::now() < end,
                "timed out {what}:\n--- A ---\n{}",
                self.a.log()
            );
            std::thread::sleep(POLL);
        }
    }
}

#[test]
fn failover_group_switches_to_the_backup_and_back_without_losing_events() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (a_dir, b1_dir, b2_dir) = (
        tmp.path().join("a"),
        tmp.path().join("b1"),
        tmp.path().join("b2"),
    );
    for d in [&a_dir, &b1_dir, &b2_dir] {
        std::fs::create_dir_all(d).expect("mkdir");
    }
    let (in_port, b1_port, b2_port, a_metrics) =
        (free_port(), fixed_port(), free_port(), free_port());
    let b1_conf = tcp_file_roll_config(&b1_dir, "avro", b1_port, 100);
    let b2_conf = tcp_file_roll_config(&b2_dir, "avro", b2_port, 100);
    let a_conf = a_config(&a_dir, in_port, b1_port, b2_port);

    let mut b1 = AgentProcess::start(&b1_dir, &b1_conf, "a1", "b1-1");
    let mut b2 = AgentProcess::start(&b2_dir, &b2_conf, "a1", "b2");
    drop(b1.connect(b1_port));
    drop(b2.connect(b2_port));
    let metrics_arg = a_metrics.to_string();
    let mut a = AgentProcess::start_with(
        &a_dir,
        &a_conf,
        "a1",
        "a",
        &[
            "--monitoring-bind",
            "127.0.0.1",
            "--monitoring-port",
            &metrics_arg,
        ],
    );
    drop(a.connect(in_port));
    let mut agents = Agents {
        a,
        b1: Some(b1),
        b2,
        a_metrics,
        b1_out: b1_dir.join("out"),
        b2_out: b2_dir.join("out"),
    };
    agents.wait_active("1", "0");

    let fed = Arc::new(Fed::default());
    let feeder = {
        let fed = Arc::clone(&fed);
        std::thread::spawn(move || feed(in_port, &fed))
    };

    // Phase 1: k1 delivers; B1 is killed while more events are on their way.
    fed.allowed.store(10_000, Ordering::SeqCst);
    agents.wait("waiting for 3000 lines at B1", |g| {
        newline_count(&g.b1_out) >= 3_000
    });
    fed.allowed.store(20_000, Ordering::SeqCst);
    let (st, _) = agents.b1.take().expect("B1").kill_9();
    assert_eq!(st.code(), None, "SIGKILL ends B1 by the signal");

    // k2 takes over: logged, and shown in the metrics.
    agents.wait("waiting for the switch to k2", |g| {
        g.a.log().contains("switched from sink `k1` to `k2`")
    });
    agents.wait_active("0", "1");
    agents.wait("waiting for 1000 lines at B2", |g| {
        newline_count(&g.b2_out) >= 1_000
    });

    // B1 comes back on the same port and directories; k1 takes back the traffic once its
    // penalty is over and a batch goes to it: events are released 200 at a time until then.
    let mut b1 = AgentProcess::start(&b1_dir, &b1_conf, "a1", "b1-2");
    drop(b1.connect(b1_port));
    agents.b1 = Some(b1);
    let b1_before = newline_count(&agents.b1_out);
    let end = Instant::now() + DEADLINE;
    while !agents.a.log().contains("back to sink `k1` from `k2`") {
        assert!(
            Instant::now() < end,
            "A never returned to k1:\n{}",
            agents.a.log()
        );
        let allowed = fed.allowed.load(Ordering::SeqCst);
        let upto = fed.acked.load(Ordering::SeqCst);
        if upto >= allowed {
            fed.allowed.store(allowed + 200, Ordering::SeqCst);
        }
        agents.a.assert_running("waiting for the return to k1");
        std::thread::sleep(POLL);
    }
    agents.wait_active("1", "0");

    // The rest goes to k1.
    let total = fed.allowed.load(Ordering::SeqCst) + 5_000;
    fed.allowed.store(total, Ordering::SeqCst);
    agents.wait("waiting for every event to be acknowledged", |_| {
        fed.acked.load(Ordering::SeqCst) >= total || fed.error.lock().expect("lock").is_some()
    });
    fed.stop.store(true, Ordering::SeqCst);
    feeder.join().expect("feeder");
    if let Some(e) = fed.error.lock().expect("lock").take() {
        panic!("A refused events: {e}\n{}", agents.a.log());
    }
    agents.wait("waiting for every event at B1 or B2", |g| {
        g.delivered(total)
    });
    assert!(
        newline_count(&agents.b1_out) > b1_before,
        "B1 got nothing after its restart"
    );

    let log = agents.a.log();
    assert_eq!(
        log.matches("switched from sink `k1` to `k2`").count(),
        1,
        "{log}"
    );
    assert_eq!(
        log.matches("back to sink `k1` from `k2`").count(),
        1,
        "{log}"
    );

    let all = agents.union();
    let missing: Vec<usize> = (0..total)
        .filter(|i| !all.contains_key(&i.to_string()))
        .take(10)
        .collect();
    assert!(missing.is_empty(), "lost: {missing:?}");
    let never_sent: Vec<&String> = all
        .keys()
        .filter(|l| l.parse::<usize>().map_or(true, |i| i >= total))
        .take(10)
        .collect();
    assert!(never_sent.is_empty(), "lines never sent: {never_sent:?}");
    let duplicates = all.values().sum::<usize>() - all.len();
    eprintln!("failover: {total} events, {duplicates} duplicates");
    // The kill can cost the batch in flight to B1 and B1's uncommitted file_roll batch.
    assert!(duplicates <= 400, "{duplicates} duplicates for one kill");
}
