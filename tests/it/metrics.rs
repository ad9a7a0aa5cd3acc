//! `flumen agent --monitoring-port P` end to end: netcat -> file channel -> file_roll with the
//! HTTP monitoring server on; `GET /metrics` (Flume's JSON) and `GET /metrics/prometheus`
//! answer with the counters moving as events flow, unknown paths get 404, and SIGTERM still
//! exits 0.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const DEADLINE: Duration = Duration::from_secs(60);

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
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn check_alive(&mut self) {
        if let Some(st) = self.child.try_wait().expect("try_wait") {
            panic!("agent exited early with {st}:\n{}", self.log());
        }
    }

    /// One HTTP request; `None` while the server does not answer yet.
    fn try_get(&mut self, port: u16, path: &str) -> Option<(u16, String)> {
        self.check_alive();
        let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
        s.set_read_timeout(Some(DEADLINE)).expect("timeout");
        s.write_all(format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").as_bytes())
            .ok()?;
        let mut resp = String::new();
        s.read_to_string(&mut resp).ok()?;
        let (head, body) = resp.split_once("\r\n\r\n")?;
        let status = head.split(' ').nth(1)?.parse().ok()?;
        assert!(head.contains("Connection: close"), "{head}");
        Some((status, body.to_string()))
    }

    /// Retries until the server answers (it starts with the agent).
    fn get(&mut self, port: u16, path: &str) -> (u16, String) {
        let end = Instant::now() + DEADLINE;
        loop {
            if let Some(r) = self.try_get(port, path) {
                return r;
            }
            assert!(
                Instant::now() < end,
                "no answer on {port}{path}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn json(&mut self, port: u16) -> serde_json::Value {
        let (status, body) = self.get(port, "/metrics");
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("bad JSON {e}: {body}"))
    }
}

#[test]
fn metrics_endpoints_count_events_as_they_flow() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let mport = free_port();
    let conf = write_config(dir.path(), port);
    let log = dir.path().join("agent.log");
    let child = Command::new(env!("CARGO_BIN_EXE_flumen"))
        .args(["agent", "-f"])
        .arg(&conf)
        .args([
            "-n",
            "a1",
            "--monitoring-bind",
            "127.0.0.1",
            "--monitoring-port",
        ])
        .arg(mport.to_string())
        .current_dir(dir.path())
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("create log"))
        .spawn()
        .expect("start flumen agent");
    let mut run = Run { child, log };

    let v = run.json(mport);
    assert_eq!(v["CHANNEL.c1"]["Type"], "CHANNEL", "{v}");
    assert_eq!(v["CHANNEL.c1"]["ChannelSize"], "0", "{v}");
    assert_eq!(v["CHANNEL.c1"]["Unhealthy"], "0", "{v}");
    assert_eq!(v["SOURCE.r1"]["Type"], "SOURCE", "{v}");
    assert_eq!(v["SOURCE.r1"]["EventAcceptedCount"], "0", "{v}");
    assert_eq!(v["SINK.k1"]["Type"], "SINK", "{v}");
    assert_ne!(v["SOURCE.r1"]["StartTime"], "0", "{v}");

    let stream = {
        let end = Instant::now() + DEADLINE;
        loop {
            run.check_alive();
            if let Ok(s) = TcpStream::connect(("127.0.0.1", port)) {
                break s;
            }
            assert!(
                Instant::now() < end,
                "netcat never listened:\n{}",
                run.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    stream.set_read_timeout(Some(DEADLINE)).expect("timeout");
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut w = stream;
    for i in 0..50 {
        w.write_all(format!("event-{i}\n").as_bytes())
            .expect("send");
        let mut reply = String::new();
        reader.read_line(&mut reply).expect("read the ack");
        assert_eq!(reply, "OK\n", "ack for line {i}");
    }

    let end = Instant::now() + DEADLINE;
    let v = loop {
        let v = run.json(mport);
        if v["SOURCE.r1"]["EventAcceptedCount"] == "50"
            && v["SINK.k1"]["EventDrainSuccessCount"] == "50"
            && v["CHANNEL.c1"]["EventPutSuccessCount"] == "50"
        {
            break v;
        }
        assert!(Instant::now() < end, "counters never reached 50: {v}");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(v["SOURCE.r1"]["EventReceivedCount"], "50", "{v}");
    assert_eq!(v["SOURCE.r1"]["OpenConnectionCount"], "1", "{v}");
    assert_eq!(v["CHANNEL.c1"]["ChannelSize"], "0", "{v}");
    assert_eq!(v["CHANNEL.c1"]["EventTakeSuccessCount"], "50", "{v}");
    assert_eq!(v["SINK.k1"]["EventDrainAttemptCount"], "50", "{v}");
    assert_eq!(v["SINK.k1"]["StopTime"], "0", "{v}");
    drop((reader, w));

    let (status, prom) = run.get(mport, "/metrics/prometheus");
    assert_eq!(status, 200, "{prom}");
    assert!(
        prom.contains("flumen_source_event_accepted_count{component=\"r1\"} 50\n"),
        "{prom}"
    );
    assert!(
        prom.contains("# TYPE flumen_channel_channel_size gauge\n"),
        "{prom}"
    );
    assert_eq!(run.get(mport, "/nope").0, 404);

    let pid = run.child.id().to_string();
    let st = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("run kill");
    assert!(st.success(), "kill -TERM {pid} failed");
    let end = Instant::now() + DEADLINE;
    let st = loop {
        if let Some(st) = run.child.try_wait().expect("try_wait") {
            break st;
        }
        if Instant::now() > end {
            let _ = run.child.kill();
            panic!("agent did not exit after SIGTERM:\n{}", run.log());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(st.code(), Some(0), "{}", run.log());
}
