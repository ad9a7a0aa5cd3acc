//! Sink processors against Apache Flume 1.11 itself: one properties file run by `flumen
//! agent` and by Flume's `Application`, the same events sent to each (an avro source fed by the
//! test), each sink an avro sink delivering to its own collector (`avro_capture.rs`), so where
//! every event went is known exactly.
//!
//! - failover: while the primary's collector runs, every event reaches it and none the backup;
//!   once it is gone, every later event reaches the backup.
//! - load_balance (round_robin): both sinks get a share; once one collector is gone, every
//!   later event reaches the other.
//!
//! Both agents must route every event the same way, and neither may lose one.

use std::collections::BTreeSet;

use flumen::event::Event;

use crate::agent_proc::{free_port, AgentProcess};
use crate::avro_capture::Capture;
use crate::flume_agent::FlumeAgent;
use crate::routing_flume::send_all;

/// The agent: avro source on `port` -> memory channel -> group g1 (`processor`) of k1 -> `k1`'s
/// collector and k2 -> `k2`'s.
fn properties(port: u16, k1: u16, k2: u16, processor: &str) -> String {
    let mut p = format!(
        "a1.sources = r1\n\
         a1.channels = c1\n\
         a1.sinks = k1 k2\n\
         a1.sinkgroups = g1\n\
         a1.sources.r1.type = avro\n\
         a1.sources.r1.bind = 127.0.0.1\n\
         a1.sources.r1.port = {port}\n\
         a1.sources.r1.channels = c1\n\
         a1.channels.c1.type = memory\n\
         a1.channels.c1.capacity = 10000\n\
         a1.channels.c1.transactionCapacity = 100\n\
         a1.sinkgroups.g1.sinks = k1 k2\n\
         {processor}"
    );
    for (k, target) in [("k1", k1), ("k2", k2)] {
        p.push_str(&format!(
            "a1.sinks.{k}.type = avro\n\
             a1.sinks.{k}.hostname = 127.0.0.1\n\
             a1.sinks.{k}.port = {target}\n\
             a1.sinks.{k}.batch-size = 20\n\
             a1.sinks.{k}.connect-timeout = 2000\n\
             a1.sinks.{k}.request-timeout = 5000\n\
             a1.sinks.{k}.channel = c1\n"
        ));
    }
    p
}

fn events(from: usize, to: usize) -> Vec<Event> {
    (from..to)
        .map(|n| Event::new(format!("event {n}")))
        .collect()
}

fn bodies(c: &Capture) -> BTreeSet<String> {
    c.events()
        .iter()
        .map(|e| String::from_utf8_lossy(e.body()).into_owned())
        .collect()
}

fn names(from: usize, to: usize) -> BTreeSet<String> {
    (from..to).map(|n| format!("event {n}")).collect()
}

/// One agent (flumen or Flume) with its two collectors.
struct Side {
    port: u16,
    k1: Capture,
    k2: Capture,
}

impl Side {
    fn new() -> Side {
        Side {
            port: free_port(),
            k1: Capture::start(),
            k2: Capture::start(),
        }
    }

    fn props(&self, processor: &str) -> String {
        properties(self.port, self.k1.port, self.k2.port, processor)
    }
}

/// Runs `processor` on both agents: `first` events while both collectors run (checked by
/// `while_both`), then k1's collector is stopped and `second` more are sent, every one of which
/// must reach k2.
fn compare(
    tag: &str,
    processor: &str,
    while_both: impl Fn(&str, &BTreeSet<String>, &BTreeSet<String>),
) {
    let dir = tempfile::tempdir().expect("tempdir");
    crate::flume_agent::classpath();
    let (first, second) = (200, 200);
    let ours = Side::new();
    let theirs = Side::new();

    let conf = dir.path().join("flumen.properties");
    std::fs::write(&conf, ours.props(processor)).expect("write config");
    let mut flumen = AgentProcess::start(dir.path(), &conf, "a1", tag);
    flumen.poll("waiting for flumen's avro source", |_| {
        std::net::TcpStream::connect(("127.0.0.1", ours.port)).ok()
    });
    let mut flume = FlumeAgent::start(dir.path(), tag, &theirs.props(processor));
    flume.wait_ready(&["SOURCE.r1", "SINK.k1", "SINK.k2"], Some(theirs.port));

    // Both collectors up.
    send_all(ours.port, &events(0, first));
    send_all(theirs.port, &events(0, first));
    let all_first = names(0, first);
    let delivered = |s: &Side, want: &BTreeSet<String>| {
        let mut got = bodies(&s.k1);
        got.extend(bodies(&s.k2));
        want.is_subset(&got)
    };
    flumen.poll("waiting for flumen to deliver the first events", |_| {
        delivered(&ours, &all_first).then_some(())
    });
    flume.poll("waiting for Flume to deliver the first events", |_| {
        delivered(&theirs, &all_first).then_some(())
    });
    for (who, s) in [("flumen", &ours), ("Flume", &theirs)] {
        while_both(who, &bodies(&s.k1), &bodies(&s.k2));
    }

    // k1's collector goes away (every connection to it closed): every later event must reach
    // k2.
    ours.k1.close();
    theirs.k1.close();
    send_all(ours.port, &events(first, first + second));
    send_all(theirs.port, &events(first, first + second));
    let all_second = names(first, first + second);
    flumen.poll("waiting for flumen to deliver the rest through k2", |_| {
        all_second.is_subset(&bodies(&ours.k2)).then_some(())
    });
    flume.poll("waiting for Flume to deliver the rest through k2", |_| {
        all_second.is_subset(&bodies(&theirs.k2)).then_some(())
    });

    let _ = flume.stop();
    let (st, log) = flumen.terminate();
    assert_eq!(st.code(), Some(0), "{log}");
}

#[test]
fn failover_routes_like_apache_flume() {
    compare(
        "failover",
        "a1.sinkgroups.g1.processor.type = failover\n\
         a1.sinkgroups.g1.processor.priority.k1 = 10\n\
         a1.sinkgroups.g1.processor.priority.k2 = 5\n\
         a1.sinkgroups.g1.processor.maxpenalty = 10000\n",
        |who, k1, k2| {
            assert_eq!(k1, &names(0, 200), "{who}: everything to the primary");
            assert!(k2.is_empty(), "{who}: nothing to the backup: {k2:?}");
        },
    );
}

#[test]
fn load_balance_routes_like_apache_flume() {
    compare(
        "load-balance",
        "a1.sinkgroups.g1.processor.type = load_balance\n\
         a1.sinkgroups.g1.processor.selector = round_robin\n\
         a1.sinkgroups.g1.processor.backoff = true\n",
        |who, k1, k2| {
            assert!(
                !k1.is_empty() && !k2.is_empty(),
                "{who}: both sinks get a share"
            );
            assert!(k1.is_disjoint(k2), "{who}: no event through both");
        },
    );
}
