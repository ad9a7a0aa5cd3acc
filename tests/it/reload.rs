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
/// Waits (bounded) until the files in `out` hold `n` distinct lines (library tests: no
/// process to watch).
fn wait_distinct(what: &str, out: &Path, n: usize) {
    crate::agent_proc::poll_process(
        &mut (),
        what,
        |_| (output_counts(out).len() == n).then_some(()),
        |_, _| {},
        |_| {},
    );
}

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

    // The lines are written before the take commits and is counted.
    let v = run.poll("waiting for the new sink to count 100 events", |a| {
        let v = json(a, mport);
        (v["SINK.k1"]["EventDrainSuccessCount"] == "100").then_some(v)
    });
    assert_eq!(v["SOURCE.r1"]["EventAcceptedCount"], "150", "{v}");
    assert_eq!(v["SOURCE.r1"]["OpenConnectionCount"], "1", "{v}");
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
    let v = run.poll("waiting for the new sink to count 10 events", |a| {
        let v = json(a, mport);
        (v["SINK.k2"]["EventDrainSuccessCount"] == "10").then_some(v)
    });
    assert!(
        v.get("SINK.k1").is_none(),
        "a removed sink leaves the metrics: {v}"
    );
    assert_eq!(v["SOURCE.r1"]["EventAcceptedCount"], "20", "{v}");
    drop(client);
    let (st, log) = run.terminate();
    assert_eq!(st.code(), Some(0), "{log}");
}

// ---- Through the library: `Agent::reload` and what it reports. ----

use flumen::agent::{Agent, AgentError, AgentOptions, ConfigFile, Loaded};

/// Writes `text` as the file and reads it back as a reload would.
fn reread(file: &mut ConfigFile, text: &str) -> Loaded {
    std::fs::write(file.path(), text).expect("write config");
    let text = file.read().expect("read config");
    file.parse(&text).expect("parses")
}

fn netcat(name: &str, port: u16) -> String {
    format!(
        "a1.sources.{name}.type = netcat\n\
         a1.sources.{name}.bind = 127.0.0.1\n\
         a1.sources.{name}.port = {port}\n\
         a1.sources.{name}.channels = c1\n"
    )
}

fn names(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_string()).collect()
}

/// A new source that cannot start (its spool directory is missing) does not; everything
/// else does, and the report names it with the reason. Once the directory exists, the next
/// reload of the same file starts it.
#[test]
fn a_component_that_cannot_start_is_reported_and_retried_at_the_next_reload() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p1 = free_port();
    let (out1, out2) = (dir.path().join("out1"), dir.path().join("out2"));
    let spool = dir.path().join("spool");
    let head = "a1.channels = c1\na1.sinks = k1\na1.channels.c1.type = memory\n";
    let first = format!(
        "a1.sources = r1\n{head}{}{}",
        netcat("r1", p1),
        file_roll("k1", &out1)
    );
    let path = dir.path().join("a.conf");
    std::fs::write(&path, &first).expect("write");
    let (mut file, loaded) = ConfigFile::load(&path, "a1", Box::new(|_| None)).expect("loads");
    let mut agent = Agent::start_loaded(&loaded, &AgentOptions::default()).expect("starts");

    let second = format!(
        "a1.sources = r1 r2\n{head}{}\
         a1.sources.r2.type = spooldir\n\
         a1.sources.r2.spoolDir = {}\n\
         a1.sources.r2.channels = c1\n{}",
        netcat("r1", p1),
        spool.display(),
        file_roll("k1", &out2)
    );
    let report = agent.reload(&reread(&mut file, &second)).expect("reloads");
    assert_eq!(report.plan.sources.added, names(&["r2"]));
    assert_eq!(report.plan.sources.kept, names(&["r1"]));
    assert_eq!(report.plan.sinks.restarted, names(&["k1"]));
    assert_eq!(report.failed.len(), 1, "{:?}", report.failed);
    assert!(
        report.failed[0].starts_with("source `r2`"),
        "{:?}",
        report.failed
    );
    assert!(report.failed[0].contains("spool"), "{:?}", report.failed);
    let mut c = Client::new(TcpStream::connect(("127.0.0.1", p1)).expect("r1 still listens"));
    c.send(lines("a", 3));
    wait_distinct("waiting for 3 lines in out2", &out2, 3);

    std::fs::create_dir(&spool).expect("mkdir spool");
    let text = file.read().expect("read");
    let report = agent
        .reload(&file.parse(&text).expect("parses"))
        .expect("reloads");
    assert_eq!(
        report.plan.sources.added,
        names(&["r2"]),
        "{:?}",
        report.plan
    );
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!(report.plan.sinks.kept, names(&["k1"]));
    // Complete before it appears in the spool directory, as spooldir requires.
    let staged = dir.path().join("f.txt");
    std::fs::write(&staged, "b-000\nb-001\n").expect("write a file");
    std::fs::rename(&staged, spool.join("f.txt")).expect("spool it");
    wait_distinct("waiting for the spooled lines in out2", &out2, 5);
    drop(c);
    agent.shutdown().expect("shutdown");
}

/// A memory channel whose keys change keeps running with its events; a reload that would need
/// its new transactionCapacity is refused whole; the waiting events reach the next sink.
#[test]
fn a_changed_memory_channel_keeps_its_events_and_its_old_settings() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (port, dead) = (free_port(), free_port());
    let out = dir.path().join("out");
    let text = |channel: &str, sink: &str| {
        format!(
            "a1.sources = r1\na1.channels = c1\na1.sinks = k1\n{}\
             a1.channels.c1.type = memory\n{channel}{sink}",
            netcat("r1", port)
        )
    };
    let avro = |batch: usize| {
        format!(
            "a1.sinks.k1.type = avro\na1.sinks.k1.channel = c1\na1.sinks.k1.hostname = 127.0.0.1\n\
             a1.sinks.k1.port = {dead}\na1.sinks.k1.batch-size = {batch}\n"
        )
    };
    let path = dir.path().join("m.conf");
    std::fs::write(&path, text("", &avro(10))).expect("write");
    let (mut file, loaded) = ConfigFile::load(&path, "a1", Box::new(|_| None)).expect("loads");
    let mut agent = Agent::start_loaded(&loaded, &AgentOptions::default()).expect("starts");
    let mut c = Client::new(TcpStream::connect(("127.0.0.1", port)).expect("connect"));
    c.send(lines("a", 5));

    let report = agent
        .reload(&reread(
            &mut file,
            &text("a1.channels.c1.capacity = 500\n", &avro(10)),
        ))
        .expect("reloads");
    assert_eq!(report.plan.stale_channels, names(&["c1"]));
    assert!(report.plan.is_empty(), "{:?}", report.plan);
    assert_eq!(agent.channels()[0].stats().size, 5);

    // Valid as a file (500 <= 1000), but the running channel keeps its transactionCapacity of 100.
    let bigger = text(
        "a1.channels.c1.capacity = 5000\na1.channels.c1.transactionCapacity = 1000\n",
        &avro(500),
    );
    match agent.reload(&reread(&mut file, &bigger)) {
        Err(AgentError::Reload(problems)) => {
            assert!(problems[0].contains("sink `k1`"), "{problems:?}");
            assert!(problems[0].contains("(100)"), "{problems:?}");
        }
        other => panic!("expected the reload to be refused: {other:?}"),
    }
    c.send(lines("b", 5));

    let report = agent
        .reload(&reread(
            &mut file,
            &text("a1.channels.c1.capacity = 500\n", &file_roll("k1", &out)),
        ))
        .expect("reloads");
    assert_eq!(report.plan.sinks.restarted, names(&["k1"]));
    assert_eq!(report.plan.sources.kept, names(&["r1"]));
    wait_distinct("waiting for the 10 waiting events in out", &out, 10);
    drop(c);
    agent.shutdown().expect("shutdown");
}

/// A file channel whose keys change is closed and reopened: its events stay on disk and
/// reach the sink after the reload; the source and sink bound to it restart with it.
#[test]
fn a_changed_file_channel_is_reopened_with_its_events() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (port, dead) = (free_port(), free_port());
    let out = dir.path().join("out");
    let channel: String = file_channel_to_file_roll(dir.path(), 7)
        .lines()
        .filter(|l| l.starts_with("a1.channels."))
        .map(|l| format!("{l}\n"))
        .collect();
    let text = |extra: &str, sink: &str| {
        format!(
            "a1.sources = r1\na1.channels = c1\na1.sinks = k1\n{}{channel}{extra}{sink}",
            netcat("r1", port)
        )
    };
    let avro = format!(
        "a1.sinks.k1.type = avro\na1.sinks.k1.channel = c1\na1.sinks.k1.hostname = 127.0.0.1\n\
         a1.sinks.k1.port = {dead}\na1.sinks.k1.batch-size = 7\n"
    );
    let path = dir.path().join("f.conf");
    std::fs::write(&path, text("", &avro)).expect("write");
    let (mut file, loaded) = ConfigFile::load(&path, "a1", Box::new(|_| None)).expect("loads");
    let mut agent = Agent::start_loaded(&loaded, &AgentOptions::default()).expect("starts");
    let mut c = Client::new(TcpStream::connect(("127.0.0.1", port)).expect("connect"));
    c.send(lines("a", 5));
    drop(c);

    let report = agent
        .reload(&reread(
            &mut file,
            &text("a1.channels.c1.capacity = 50000\n", &file_roll("k1", &out)),
        ))
        .expect("reloads");
    assert_eq!(report.plan.channels.restarted, names(&["c1"]));
    assert_eq!(report.plan.sources.restarted, names(&["r1"]));
    assert_eq!(report.plan.sinks.restarted, names(&["k1"]));
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!(agent.channels()[0].stats().capacity, 50000);
    let mut c = Client::new(TcpStream::connect(("127.0.0.1", port)).expect("r1 listens again"));
    c.send(lines("b", 5));
    wait_distinct("waiting for the 10 events in out", &out, 10);
    drop(c);
    agent.shutdown().expect("shutdown");
    let want: Vec<String> = lines("a", 5).chain(lines("b", 5)).collect();
    assert_exactly_once(&output_counts(&out), &want, "");
}
