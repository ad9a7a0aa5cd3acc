//! `flumen agent` end to end, as an operator runs it: netcat -> file channel -> file_roll,
//! lines acknowledged with `OK`, SIGTERM, restart, more lines, SIGTERM; every acknowledged
//! line must appear in the output files exactly once.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

const DEADLINE: Duration = Duration::from_secs(60);

/// A port that was free a moment ago (Flume's config cannot say "port 0").
fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local addr").port()
}

fn write_config(dir: &Path, port: u16) -> PathBuf {
    let conf = dir.join("agent.properties");
    let text = format!(
        "a1.sources = r1\n\
         a1.channels = c1\n\
         a1.sinks = k1\n\
         a1.sources.r1.type = netcat\n\
         a1.sources.r1.bind = 127.0.0.1\n\
         a1.sources.r1.port = {port}\n\
         a1.sources.r1.channels = c1\n\
         a1.channels.c1.type = file\n\
         a1.channels.c1.checkpointDir = {cp}\n\
         a1.channels.c1.dataDirs = {data}\n\
         a1.channels.c1.minimumRequiredSpace = 1048576\n\
         a1.sinks.k1.type = file_roll\n\
         a1.sinks.k1.channel = c1\n\
         a1.sinks.k1.sink.directory = {out}\n\
         a1.sinks.k1.sink.rollInterval = 0\n\
         a1.sinks.k1.sink.batchSize = 7\n",
        cp = dir.join("checkpoint").display(),
        data = dir.join("data").display(),
        out = dir.join("out").display(),
    );
    std::fs::write(&conf, text).expect("write config");
    conf
}

struct Run {
    child: Child,
    log: PathBuf,
}

impl Run {
    fn start(dir: &Path, conf: &Path, n: usize) -> Run {
        let log = dir.join(format!("agent-{n}.log"));
        let log_file = std::fs::File::create(&log).expect("create log");
        let child = Command::new(env!("CARGO_BIN_EXE_flumen"))
            .args(["agent", "-f"])
            .arg(conf)
            .args(["-n", "a1"])
            .current_dir(dir)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .expect("start flumen agent");
        Run { child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Connects once the agent listens; fails fast if the agent exited.
    fn connect(&mut self, port: u16) -> TcpStream {
        let end = Instant::now() + DEADLINE;
        loop {
            if let Some(st) = self.child.try_wait().expect("try_wait") {
                panic!("agent exited early with {st}:\n{}", self.log());
            }
            if let Ok(s) = TcpStream::connect(("127.0.0.1", port)) {
                return s;
            }
            assert!(
                Instant::now() < end,
                "agent never listened on {port}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn terminate(mut self) -> (ExitStatus, String) {
        let pid = self.child.id().to_string();
        let st = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("run kill");
        assert!(st.success(), "kill -TERM {pid} failed");
        let end = Instant::now() + DEADLINE;
        loop {
            if let Some(st) = self.child.try_wait().expect("try_wait") {
                return (st, self.log());
            }
            if Instant::now() > end {
                let _ = self.child.kill();
                panic!("agent did not exit after SIGTERM:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Sends `lines` over one connection, reading an `OK` after each.
fn send_lines(stream: TcpStream, lines: impl Iterator<Item = String>) {
    stream
        .set_read_timeout(Some(DEADLINE))
        .expect("set read timeout");
    let mut reader = BufReader::new(stream.try_clone().expect("clone stream"));
    let mut w = stream;
    for line in lines {
        w.write_all(format!("{line}\n").as_bytes()).expect("send");
        let mut reply = String::new();
        reader.read_line(&mut reply).expect("read the ack");
        assert_eq!(reply, "OK\n", "ack for {line}");
    }
}

/// How often each line appears across the output files.
fn output_counts(out: &Path) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    let Ok(entries) = std::fs::read_dir(out) else {
        return counts;
    };
    for e in entries {
        let text = std::fs::read_to_string(e.expect("dir entry").path()).expect("read output");
        for l in text.lines() {
            *counts.entry(l.to_string()).or_insert(0) += 1;
        }
    }
    counts
}

fn line(i: usize) -> String {
    format!("event-{i:04}")
}

#[test]
fn netcat_to_file_roll_survives_restart_exactly_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let conf = write_config(dir.path(), port);
    let out = dir.path().join("out");

    let mut run = Run::start(dir.path(), &conf, 1);
    let stream = run.connect(port);
    send_lines(stream, (0..200).map(line));
    let (st, log) = run.terminate();
    assert_eq!(st.code(), Some(0), "first run:\n{log}");

    let mut run = Run::start(dir.path(), &conf, 2);
    let stream = run.connect(port);
    send_lines(stream, (200..400).map(line));
    // Let the sink drain everything before stopping (what is left would wait for a third run).
    let end = Instant::now() + DEADLINE;
    while output_counts(&out).len() < 400 {
        assert!(
            Instant::now() < end,
            "only {} distinct lines reached the output:\n{}",
            output_counts(&out).len(),
            run.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let (st, log) = run.terminate();
    assert_eq!(st.code(), Some(0), "second run:\n{log}");

    let counts = output_counts(&out);
    for i in 0..400 {
        assert_eq!(
            counts.get(&line(i)).copied(),
            Some(1),
            "{} must appear exactly once:\n{log}",
            line(i)
        );
    }
    assert_eq!(counts.len(), 400, "unexpected lines: {counts:?}");
}
