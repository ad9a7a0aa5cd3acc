//! Configuration reload through `flumen agent`, as an operator does it: edit the file, then
//! SIGHUP (or wait for the periodic check). netcat -> file channel -> sink, one client
//! connection held open across every reload: the source must never be restarted when only
//! the sink changes (the connection would drop), events waiting in the channel must reach the
//! new sink, and a broken file must leave the agent running as it was.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;

use crate::agent_proc::{
    file_channel_to_file_roll, free_port, json, output_counts, AgentProcess, DEADLINE,
};

/// One netcat client that reads an `OK` after every line.
struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Client {
    fn new(stream: TcpStream) -> Client {
        stream.set_read_timeout(Some(DEADLINE)).expect("timeout");
        Client {
            reader: BufReader::new(stream.try_clone().expect("clone")),
            writer: stream,
        }
    }

    fn send(&mut self, lines: impl Iterator<Item = String>) {
        for line in lines {
            self.writer
                .write_all(format!("{line}\n").as_bytes())
                .expect("send (the source must still be serving this connection)");
            let mut reply = String::new();
            self.reader.read_line(&mut reply).expect("read the ack");
            assert_eq!(reply, "OK\n", "ack for {line}");
        }
    }
}

fn lines(tag: &str, n: usize) -> impl Iterator<Item = String> + '_ {
    (0..n).map(move |i| format!("{tag}-{i:03}"))
}

/// netcat on `port` -> file channel `c1` under `dir` -> `sink` (its lines, `a1.sinks.<name>`).
fn write_config(dir: &Path, port: u16, sinks: &str, sink_lines: &str) {
    let channel: String = file_channel_to_file_roll(dir, 7)
        .lines()
        .filter(|l| l.starts_with("a1.channels."))
        .map(|l| format!("{l}\n"))
        .collect();
    let text = format!(
        "a1.sources = r1\n\
         a1.channels = c1\n\
         a1.sinks = {sinks}\n\
         a1.sources.r1.type = netcat\n\
         a1.sources.r1.bind = 127.0.0.1\n\
         a1.sources.r1.port = {port}\n\
         a1.sources.r1.channels = c1\n\
         {channel}{sink_lines}"
    );
    // Written beside, then renamed over: the agent never reads a half-written file.
    let tmp = dir.join("agent.properties.new");
    std::fs::write(&tmp, text).expect("write config");
    std::fs::rename(&tmp, dir.join("agent.properties")).expect("rename config");
}

fn file_roll(name: &str, out: &Path) -> String {
    format!(
        "a1.sinks.{name}.type = file_roll\n\
         a1.sinks.{name}.channel = c1\n\
         a1.sinks.{name}.sink.directory = {}\n\
         a1.sinks.{name}.sink.rollInterval = 0\n\
         a1.sinks.{name}.sink.batchSize = 7\n",
        out.display()
    )
}

fn sighup(run: &AgentProcess) {
    let pid = run.child.id().to_string();
    let st = Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .expect("run kill");
    assert!(st.success(), "kill -HUP {pid} failed");
}

/// Waits until the log holds `n` lines containing `what`.
fn wait_logged(run: &mut AgentProcess, what: &str, n: usize) -> String {
    run.poll(&format!("waiting for {n} log lines with {what:?}"), |a| {
        let log = a.log();
        (log.matches(what).count() >= n).then_some(log)
    })
}

fn wait_lines(run: &mut AgentProcess, out: &Path, n: usize) -> BTreeMap<String, usize> {
    run.poll(
        &format!("waiting for {n} lines in {}", out.display()),
        |_| {
            let c = output_counts(out);
            (c.values().sum::<usize>() >= n).then_some(c)
        },
    )
}

fn assert_exactly_once(counts: &BTreeMap<String, usize>, want: &[String], log: &str) {
    let got: Vec<(&String, &usize)> = counts.iter().collect();
    let want: Vec<(&String, &usize)> = want.iter().map(|l| (l, &1)).collect();
    assert_eq!(got, want, "each line exactly once:\n{log}");
}

/// The sink changes twice under a running source: to a sink that cannot deliver (events wait
/// in the channel), then to file_roll in a new directory, which receives the waiting events
/// and the new ones. The client's connection stays open throughout, and the source's counters
/// keep counting.
#[test]
fn sighup_restarts_only_the_changed_sink_and_the_channel_keeps_its_events() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (port, mport) = (free_port(), free_port());
    let (out1, out2) = (dir.path().join("out1"), dir.path().join("out2"));
    write_config(dir.path(), port, "k1", &file_roll("k1", &out1));
    let conf = dir.path().join("agent.properties");
    let mport_arg = mport.to_string();
    let mut run = AgentProcess::start_with(
        dir.path(),
        &conf,
        "a1",
        "sighup",
        &[
            "--monitoring-port",
            &mport_arg,
            "--monitoring-bind",
            "127.0.0.1",
        ],
    );
    let mut client = Client::new(run.connect(port));
    client.send(lines("a", 50));
    wait_lines(&mut run, &out1, 50);

    // An avro sink to a port nobody listens on: every batch fails and stays in the channel.
    let dead = free_port();
    write_config(
        dir.path(),
        port,
        "k1",
        &format!(
            "a1.sinks.k1.type = avro\n\
             a1.sinks.k1.channel = c1\n\
             a1.sinks.k1.hostname = 127.0.0.1\n\
             a1.sinks.k1.port = {dead}\n\
             a1.sinks.k1.batch-size = 7\n"
        ),
    );
    sighup(&run);
    let log = wait_logged(&mut run, "configuration reloaded", 1);
    assert!(
        log.contains("restarted: sink k1; added: -; removed: -; kept: source r1, channel c1"),
        "{log}"
    );
    client.send(lines("b", 50));

    write_config(dir.path(), port, "k1", &file_roll("k1", &out2));
    sighup(&run);
    wait_logged(&mut run, "configuration reloaded", 2);
    client.send(lines("c", 50));
    let got = wait_lines(&mut run, &out2, 100);

    let v = json(&mut run, mport);
    assert_eq!(v["SOURCE.r1"]["EventAcceptedCount"], "150", "{v}");
    assert_eq!(v["SOURCE.r1"]["OpenConnectionCount"], "1", "{v}");
    assert_eq!(v["SINK.k1"]["EventDrainSuccessCount"], "100", "{v}");
    drop(client);
    let (st, log) = run.terminate();
    assert_eq!(st.code(), Some(0), "{log}");
    let a: Vec<String> = lines("a", 50).collect();
    assert_exactly_once(&output_counts(&out1), &a, &log);
    let bc: Vec<String> = lines("b", 50).chain(lines("c", 50)).collect();
    assert_exactly_once(&got, &bc, &log);
    assert_exactly_once(&output_counts(&out2), &bc, &log);
}

/// A file that no longer parses is logged (naming the file and the key) and changes
/// nothing; fixing it and sending SIGHUP again applies it.
#[test]
fn a_broken_file_keeps_the_agent_running_as_it_was() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let (out1, out2) = (dir.path().join("out1"), dir.path().join("out2"));
    write_config(dir.path(), port, "k1", &file_roll("k1", &out1));
    let conf = dir.path().join("agent.properties");
    let mut run = AgentProcess::start(dir.path(), &conf, "a1", "broken");
    let mut client = Client::new(run.connect(port));
    client.send(lines("a", 20));
    wait_lines(&mut run, &out1, 20);

    let broken = file_roll("k1", &out2).replace("type = file_roll", "type = no_such_sink");
    write_config(dir.path(), port, "k1", &broken);
    sighup(&run);
    let log = wait_logged(&mut run, "not applied, the running configuration stays", 1);
    assert!(log.contains("a1.sinks.k1.type"), "{log}");
    assert!(log.contains("agent.properties"), "{log}");
    assert!(!log.contains("configuration reloaded"), "{log}");
    client.send(lines("b", 20));
    wait_lines(&mut run, &out1, 40);

    write_config(dir.path(), port, "k1", &file_roll("k1", &out2));
    sighup(&run);
    wait_logged(&mut run, "configuration reloaded", 1);
    client.send(lines("c", 20));
    wait_lines(&mut run, &out2, 20);
    drop(client);
    let (st, log) = run.terminate();
    assert_eq!(st.code(), Some(0), "{log}");
    let ab: Vec<String> = lines("a", 20).chain(lines("b", 20)).collect();
    assert_exactly_once(&output_counts(&out1), &ab, &log);
    let c: Vec<String> = lines("c", 20).collect();
    assert_exactly_once(&output_counts(&out2), &c, &log);
}

/// Without SIGHUP: the periodic check (`--reload-interval 1`) finds the new file. The sink is
/// renamed, so the metrics lose the old one and gain the new one.
#[test]
fn the_periodic_check_picks_up_a_changed_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (port, mport) = (free_port(), free_port());
    let (out1, out2) = (dir.path().join("out1"), dir.path().join("out2"));
    write_config(dir.path(), port, "k1", &file_roll("k1", &out1));
    let conf = dir.path().join("agent.properties");
    let mport_arg = mport.to_string();
    let mut run = AgentProcess::start_with(
        dir.path(),
        &conf,
        "a1",
        "poll",
        &[
            "--reload-interval",
            "1",
            "--monitoring-port",
            &mport_arg,
            "--monitoring-bind",
            "127.0.0.1",
        ],
    );
    let mut client = Client::new(run.connect(port));
    client.send(lines("a", 10));
    wait_lines(&mut run, &out1, 10);
    assert!(json(&mut run, mport).get("SINK.k1").is_some());

    write_config(dir.path(), port, "k2", &file_roll("k2", &out2));
    let log = wait_logged(&mut run, "configuration reloaded", 1);
    assert!(log.contains("changed: reloading"), "{log}");
    assert!(
        log.contains("added: sink k2; removed: sink k1; kept: source r1, channel c1"),
        "{log}"
    );
    client.send(lines("b", 10));
    wait_lines(&mut run, &out2, 10);
    let v = json(&mut run, mport);
    assert!(
        v.get("SINK.k1").is_none(),
        "a removed sink leaves the metrics: {v}"
    );
    assert_eq!(v["SINK.k2"]["EventDrainSuccessCount"], "10", "{v}");
    assert_eq!(v["SOURCE.r1"]["EventAcceptedCount"], "20", "{v}");
    drop(client);
    let (st, log) = run.terminate();
    assert_eq!(st.code(), Some(0), "{log}");
}
