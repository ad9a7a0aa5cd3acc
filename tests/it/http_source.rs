//! The http source through the `flumen agent` binary, driven by `curl` as a user would (a
//! machine without curl fails these tests, saying so), and against Apache Flume 1.11's own
//! HTTPSource.
//!
//! - JSON posts (headers, numbers as header values, UTF-8 and UTF-16 bodies) and morphline
//!   BlobHandler posts (query parameters as headers, binary bodies) arrive at an avro
//!   collector with their headers and bodies.
//! - Each refusal (a malformed array, an unsupported charset, a body over `max-body-bytes`,
//!   more events than the channel's transactionCapacity, TRACE/OPTIONS, a full channel) has
//!   its status code, reason and log line, and commits nothing: the channel holds exactly the
//!   accepted requests' events.
//! - Requests on one kept-alive connection are all answered on it; concurrent keep-alive
//!   clients (whose requests share commits) get every event delivered exactly once.
//! - TLS with Flume's deprecated key names (`enableSSL`, `keystorePassword`), checked by curl
//!   against the exported certificate; a plaintext client is named in the log.
//! - Hostile peers: an unfinished head and a stalled body are closed after
//!   `ServerConnector.idleTimeout` and named; connections over `max-connections` are closed at
//!   once; 10,000 held connections and byte-at-a-time heads leave memory bounded while a
//!   well-behaved client is served.
//! - kill -9 under load: every event of a request answered 200 reaches the sink after a
//!   restart (the test is the auditor, counting 200s).
//! - The same JSON posts, and the same blob posts to either of Flume's blob handlers, give
//!   the same events from flumen and from Flume 1.11's HTTPSource (each draining through an
//!   avro sink into a collector).
//!
//! Every wait is a condition with a deadline; ports are free ports, files live in tempdirs.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use flumen::event::Event;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::agent_proc::{
    complete_lines, free_port, json, start_monitored, tcp_file_roll_config, AgentProcess,
};
use crate::avro_capture::Capture;
use crate::flume_agent::FlumeAgent;

/// What curl saw: the status, the response headers (lower-cased names) and the body.
struct Answer {
    status: u16,
    head: String,
    body: String,
}

/// `curl` with `args` against `url`, its body from `data` (sent as is, `--data-binary`).
fn curl(dir: &Path, url: &str, data: Option<&[u8]>, args: &[&str]) -> Answer {
    let which = Command::new("which").arg("curl").output();
    assert!(
        which.is_ok_and(|o| o.status.success()),
        "these tests drive the http source with curl: install it (apt-get install curl)"
    );
    let id = free_port();
    let head = dir.join(format!("head-{id}"));
    let body = dir.join(format!("body-{id}"));
    let mut cmd = Command::new("curl");
    cmd.args(["-s", "-S", "--max-time", "60", "-o"])
        .arg(&body)
        .arg("-D")
        .arg(&head)
        .args(["-w", "%{http_code}"])
        .args(args);
    if let Some(d) = data {
        let file = dir.join(format!("data-{id}"));
        std::fs::write(&file, d).expect("write the request body");
        cmd.arg("--data-binary").arg(format!("@{}", file.display()));
    }
    let out = cmd.arg(url).output().expect("run curl");
    let code = String::from_utf8_lossy(&out.stdout).trim().to_string();
    Answer {
        status: code
            .parse()
            .unwrap_or_else(|_| panic!("curl printed no status: {code:?} {out:?}")),
        head: std::fs::read_to_string(&head)
            .unwrap_or_default()
            .to_lowercase(),
        body: std::fs::read_to_string(&body).unwrap_or_default(),
    }
}

fn post_json(dir: &Path, port: u16, body: &[u8], content_type: &str) -> Answer {
    curl(
        dir,
        &format!("http://127.0.0.1:{port}/"),
        Some(body),
        &["-H", &format!("Content-Type: {content_type}")],
    )
}

/// Waits until the agent's http source on `port` answers (a GET with no body is a 400).
fn wait_listening(run: &mut AgentProcess, port: u16) {
    run.poll(&format!("waiting for the http source on {port}"), |_| {
        TcpStream::connect(("127.0.0.1", port)).ok()
    });
}

fn counter(run: &mut AgentProcess, mport: u16, component: &str, name: &str) -> u64 {
    let v = json(run, mport);
    v[component][name]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no counter {component}.{name} in {v}"))
}

fn utf16_with_bom(text: &str) -> Vec<u8> {
    let mut out = vec![0xFE, 0xFF];
    for u in text.encode_utf16() {
        out.extend_from_slice(&u.to_be_bytes());
    }
    out
}

/// The JSON requests both agents get in the comparison, with their Content-Types.
fn json_requests() -> Vec<(Vec<u8>, &'static str)> {
    vec![
        (
            br#"[{"headers":{"host":"web1","n":"1"},"body":"GET /index.html 200"},{"headers":{},"body":"second"}]"#.to_vec(),
            "application/json",
        ),
        (
            br#"[{"headers":{"num":2.50,"flag":true,"neg":-7},"body":"numbers as header values"},{"body":"no headers"},{"headers":{"only":"headers"}}]"#.to_vec(),
            "application/json; charset=UTF-8",
        ),
        (
            r#"[{"headers":{"lang":"fr"},"body":"déjà vu ✓"},{"body":"é","extra":{"ignored":[1,2]}}]"#.as_bytes().to_vec(),
            "application/json",
        ),
        (
            utf16_with_bom(r#"[{"headers":{"cs":"utf16"},"body":"wide é"}]"#),
            "application/json; charset=UTF-16",
        ),
        (br#"[]"#.to_vec(), "application/json"),
        (
            br#"[{"headers":{"k":"v"},"body":12.0}]"#.to_vec(),
            "text/plain",
        ),
    ]
}

/// An event's headers and body, for comparing agents.
type Shape = (Vec<(String, String)>, Vec<u8>);

fn shape(events: &[Event]) -> Vec<Shape> {
    events
        .iter()
        .map(|e| {
            (
                e.headers()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                e.body().to_vec(),
            )
        })
        .collect()
}

/// An http source of `handler` on `port` (plus `extra` source keys) -> memory channel ->
/// avro sink into `sink_port`.
fn http_to_avro(port: u16, sink_port: u16, extra: &str) -> String {
    format!(
        "a1.sources = r1\n\
         a1.channels = c1\n\
         a1.sinks = k1\n\
         a1.sources.r1.type = http\n\
         a1.sources.r1.bind = 127.0.0.1\n\
         a1.sources.r1.port = {port}\n\
         a1.sources.r1.channels = c1\n\
         {extra}\
         a1.channels.c1.type = memory\n\
         a1.channels.c1.capacity = 1000\n\
         a1.channels.c1.transactionCapacity = 100\n\
         a1.sinks.k1.type = avro\n\
         a1.sinks.k1.hostname = 127.0.0.1\n\
         a1.sinks.k1.port = {sink_port}\n\
         a1.sinks.k1.batch-size = 10\n\
         a1.sinks.k1.channel = c1\n"
    )
}

fn wait_events(run: &mut AgentProcess, cap: &Capture, n: usize) -> Vec<Event> {
    run.poll(&format!("waiting for {n} events at the collector"), |_| {
        (cap.len() >= n).then(|| cap.events())
    })
}

#[test]
fn json_and_blob_posts_arrive_with_their_headers_and_bodies() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cap = Capture::start();
    let port = free_port();
    let (mut run, _) = start_monitored(dir.path(), &http_to_avro(port, cap.port, ""), "json", &[]);
    wait_listening(&mut run, port);
    let mut expected = 0;
    for (body, ct) in json_requests() {
        let a = post_json(dir.path(), port, &body, ct);
        assert_eq!(a.status, 200, "{} {}", a.head, a.body);
        expected += serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.as_array().map(Vec::len))
            .unwrap_or(1);
    }
    let got = wait_events(&mut run, &cap, expected);
    assert_eq!(got.len(), expected);
    assert_eq!(got[0].header("host"), Some("web1"));
    assert_eq!(&got[0].body()[..], b"GET /index.html 200");
    assert_eq!(got[2].header("num"), Some("2.50"));
    assert_eq!(got[2].header("flag"), Some("true"));
    assert_eq!(got[4].headers().len(), 1);
    assert_eq!(&got[4].body()[..], b"");
    assert_eq!(&got[5].body()[..], "déjà vu ✓".as_bytes());
    // UTF-16 in, UTF-16 out (Java's getBytes("UTF-16"): a byte order mark, big-endian).
    assert_eq!(&got[7].body()[..], &utf16_with_bom("wide é")[..]);
    assert_eq!(&got[8].body()[..], b"12.0");
    run.terminate();

    // The morphline BlobHandler: the body whole, the query string and Content-Type as headers.
    let cap = Capture::start();
    let port = free_port();
    let props = http_to_avro(
        port,
        cap.port,
        "a1.sources.r1.handler = org.apache.flume.sink.solr.morphline.BlobHandler\n",
    );
    let (mut run, _) = start_monitored(dir.path(), &props, "blob", &[]);
    wait_listening(&mut run, port);
    let blob: Vec<u8> = (0..=255u8).cycle().take(100_000).collect();
    let a = curl(
        dir.path(),
        &format!("http://127.0.0.1:{port}/upload?resourceName=sample%20one.avro&n=1&n=2"),
        Some(&blob),
        &["-H", "Content-Type: application/octet-stream"],
    );
    assert_eq!(a.status, 200, "{}", a.body);
    let got = wait_events(&mut run, &cap, 1);
    assert_eq!(got[0].body().len(), blob.len());
    assert!(got[0].body()[..] == blob[..], "the blob arrived altered");
    assert_eq!(got[0].header("resourceName"), Some("sample one.avro"));
    assert_eq!(got[0].header("n"), Some("1"));
    assert_eq!(
        got[0].header("Content-Type"),
        Some("application/octet-stream")
    );
    // curl's default Content-Type for a body is a form's: the body stays the event's body
    // (Flume would read it as form parameters and leave the body empty).
    let a = curl(
        dir.path(),
        &format!("http://127.0.0.1:{port}/?k=v"),
        Some(b"a=1&b=2"),
        &[],
    );
    assert_eq!(a.status, 200, "{}", a.body);
    let got = wait_events(&mut run, &cap, 2);
    assert_eq!(&got[1].body()[..], b"a=1&b=2");
    assert_eq!(got[1].header("k"), Some("v"));
    assert_eq!(got[1].header("a"), None);
    run.terminate();
}

#[test]
fn refusals_answer_their_status_and_commit_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    // No sink: the channel keeps what was committed, so partial commits would show.
    let props = format!(
        "a1.sources = r1\n\
         a1.channels = c1\n\
         a1.sources.r1.type = http\n\
         a1.sources.r1.bind = 127.0.0.1\n\
         a1.sources.r1.port = {port}\n\
         a1.sources.r1.max-body-bytes = 2048\n\
         a1.sources.r1.channels = c1\n\
         a1.channels.c1.type = memory\n\
         a1.channels.c1.capacity = 6\n\
         a1.channels.c1.transactionCapacity = 4\n\
         a1.channels.c1.keep-alive = 1\n"
    );
    let (mut run, mport) = start_monitored(dir.path(), &props, "refusals", &[]);
    wait_listening(&mut run, port);

    let a = post_json(
        dir.path(),
        port,
        b"[{\"body\":\"ok\"},\n {\"body\": }]",
        "application/json",
    );
    assert_eq!(a.status, 400);
    assert!(a.body.contains("line 2 column 11"), "{}", a.body);

    let a = post_json(dir.path(), port, br#"{"body":"x"}"#, "application/json");
    assert_eq!(a.status, 400);
    assert!(a.body.contains("expected a JSON array"), "{}", a.body);

    let a = post_json(
        dir.path(),
        port,
        br#"[{"body":"x"}]"#,
        "application/json; charset=ISO-8859-1",
    );
    assert_eq!(a.status, 415);
    assert!(a.body.contains("ISO-8859-1"), "{}", a.body);

    let a = post_json(
        dir.path(),
        port,
        b"[{\"body\":\"\xFF\"}]",
        "application/json",
    );
    assert_eq!(a.status, 400);
    assert!(
        a.body.contains("not valid UTF-8") && a.body.contains("byte 10"),
        "{}",
        a.body
    );

    let big = format!(r#"[{{"body":"{}"}}]"#, "x".repeat(4000));
    let a = post_json(dir.path(), port, big.as_bytes(), "application/json");
    assert_eq!(a.status, 413);
    assert!(a.body.contains("2048"), "{}", a.body);

    let five = br#"[{"body":"1"},{"body":"2"},{"body":"3"},{"body":"4"},{"body":"5"}]"#;
    let a = post_json(dir.path(), port, five, "application/json");
    assert_eq!(a.status, 413);
    assert!(a.body.contains("transactionCapacity"), "{}", a.body);

    for method in ["TRACE", "OPTIONS"] {
        let a = curl(
            dir.path(),
            &format!("http://127.0.0.1:{port}/"),
            None,
            &["-X", method],
        );
        assert_eq!(a.status, 403, "{method}");
    }
    let a = curl(
        dir.path(),
        &format!("http://127.0.0.1:{port}/"),
        None,
        &["-X", "DELETE"],
    );
    assert_eq!(a.status, 405);
    assert!(a.head.contains("allow: post, get, head"), "{}", a.head);

    // Four events fit; four more do not (capacity 6): the 503 leaves the channel exactly as
    // it was, and two more fit again.
    let four = br#"[{"body":"a"},{"body":"b"},{"body":"c"},{"body":"d"}]"#;
    let a = post_json(dir.path(), port, four, "application/json");
    assert_eq!(a.status, 200, "{}", a.body);
    let a = post_json(dir.path(), port, four, "application/json");
    assert_eq!(a.status, 503, "{}", a.body);
    assert!(a.head.contains("retry-after: 1"), "{}", a.head);
    assert!(a.body.contains("full"), "{}", a.body);
    let a = post_json(
        dir.path(),
        port,
        br#"[{"body":"e"},{"body":"f"}]"#,
        "application/json",
    );
    assert_eq!(a.status, 200, "{}", a.body);

    assert_eq!(counter(&mut run, mport, "CHANNEL.c1", "ChannelSize"), 6);
    assert_eq!(
        counter(&mut run, mport, "SOURCE.r1", "EventAcceptedCount"),
        6
    );
    assert_eq!(
        counter(&mut run, mport, "SOURCE.r1", "AppendBatchAcceptedCount"),
        2
    );
    let log = run.log();
    for line in [
        "answered 400 Bad Request to 127.0.0.1:",
        "invalid JSON: expected value at line 2 column 11",
        "answered 415 Unsupported Media Type to 127.0.0.1:",
        "answered 413 Payload Too Large to 127.0.0.1:",
        "answered 403 Forbidden to 127.0.0.1:",
        "channel `c1` is full",
    ] {
        assert!(log.contains(line), "no `{line}` in the log:\n{log}");
    }
    run.terminate();
}

/// A client connection that posts JSON requests one after another on one socket.
struct KeptAlive {
    s: TcpStream,
    r: BufReader<TcpStream>,
}

impl KeptAlive {
    fn connect(port: u16) -> KeptAlive {
        let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(60)))
            .expect("timeout");
        let r = BufReader::new(s.try_clone().expect("clone"));
        KeptAlive { s, r }
    }

    /// Posts `body` and reads the whole response; returns its status.
    fn post(&mut self, body: &str) -> u16 {
        self.try_post(body)
            .unwrap_or_else(|e| panic!("posting on a kept-alive connection: {e}"))
    }

    /// [`post`](Self::post), or the I/O error that broke the connection.
    fn try_post(&mut self, body: &str) -> std::io::Result<u16> {
        let req = format!(
            "POST /x HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        self.s.write_all(req.as_bytes())?;
        let mut status = String::new();
        self.r.read_line(&mut status)?;
        let Some(code) = status.split(' ').nth(1).and_then(|c| c.parse().ok()) else {
            return Err(std::io::Error::other(format!("status line {status:?}")));
        };
        let mut len = 0usize;
        loop {
            let mut line = String::new();
            if self.r.read_line(&mut line)? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            if line == "\r\n" {
                break;
            }
            if let Some(v) = line.to_lowercase().strip_prefix("content-length:") {
                len = v.trim().parse().map_err(std::io::Error::other)?;
            }
        }
        let mut rest = vec![0; len];
        self.r.read_exact(&mut rest)?;
        Ok(code)
    }
}

#[test]
fn keep_alive_serves_requests_on_one_connection() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cap = Capture::start();
    let port = free_port();
    let (mut run, mport) =
        start_monitored(dir.path(), &http_to_avro(port, cap.port, ""), "ka", &[]);
    wait_listening(&mut run, port);
    let mut conn = KeptAlive::connect(port);
    for n in 0..3 {
        let status = conn.post(&format!(r#"[{{"body":"kept {n}"}}]"#));
        assert_eq!(status, 200);
    }
    assert_eq!(
        counter(&mut run, mport, "SOURCE.r1", "OpenConnectionCount"),
        1
    );
    let got = wait_events(&mut run, &cap, 3);
    assert_eq!(&got[2].body()[..], b"kept 2");
    run.terminate();
}

#[test]
fn concurrent_clients_each_event_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cap = Capture::start();
    let port = free_port();
    let (mut run, _) = start_monitored(dir.path(), &http_to_avro(port, cap.port, ""), "many", &[]);
    wait_listening(&mut run, port);
    const CLIENTS: usize = 8;
    const REQUESTS: usize = 25;
    const EVENTS: usize = 10;
    let threads: Vec<_> = (0..CLIENTS)
        .map(|c| {
            std::thread::spawn(move || {
                let mut conn = KeptAlive::connect(port);
                for r in 0..REQUESTS {
                    let events: Vec<String> = (0..EVENTS)
                        .map(|e| format!(r#"{{"headers":{{"c":"{c}"}},"body":"{c}-{r}-{e}"}}"#))
                        .collect();
                    // A full channel (capacity 1000) is answered 503: retry, as a client should.
                    loop {
                        match conn.post(&format!("[{}]", events.join(","))) {
                            200 => break,
                            503 => std::thread::sleep(Duration::from_millis(100)),
                            other => panic!("status {other}"),
                        }
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("client thread");
    }
    let n = CLIENTS * REQUESTS * EVENTS;
    let got = wait_events(&mut run, &cap, n);
    let mut bodies: Vec<Vec<u8>> = got.iter().map(|e| e.body().to_vec()).collect();
    bodies.sort();
    bodies.dedup();
    assert_eq!(bodies.len(), n, "an event was lost or duplicated");
    assert_eq!(got.len(), n);
    run.terminate();
}

#[test]
fn json_posts_give_the_events_flume_gives() {
    let dir = tempfile::tempdir().expect("tempdir");
    let flume_cap = Capture::start();
    let flume_port = free_port();
    let mut flume = FlumeAgent::start(
        dir.path(),
        "http",
        &http_to_avro(flume_port, flume_cap.port, ""),
    );
    let ours_cap = Capture::start();
    let ours_port = free_port();
    let (mut run, _) = start_monitored(
        dir.path(),
        &http_to_avro(ours_port, ours_cap.port, ""),
        "ours",
        &[],
    );
    wait_listening(&mut run, ours_port);
    flume.wait_ready(&["SOURCE.r1", "SINK.k1"], Some(flume_port));

    let mut n = 0;
    for (body, ct) in json_requests() {
        let theirs = post_json(dir.path(), flume_port, &body, ct);
        let ours = post_json(dir.path(), ours_port, &body, ct);
        assert_eq!(theirs.status, 200, "Flume: {}", theirs.body);
        assert_eq!(ours.status, 200, "flumen: {}", ours.body);
        n += serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.as_array().map(Vec::len))
            .unwrap_or(1);
    }
    // A malformed array: both refuse it with 400 and keep nothing of it.
    let bad = br#"[{"body":"kept?"},{"body":]"#;
    assert_eq!(
        post_json(dir.path(), flume_port, bad, "application/json").status,
        400
    );
    assert_eq!(
        post_json(dir.path(), ours_port, bad, "application/json").status,
        400
    );

    let ours = wait_events(&mut run, &ours_cap, n);
    let theirs = flume.poll("waiting for Flume's events at its collector", |_| {
        (flume_cap.len() >= n).then(|| flume_cap.events())
    });
    assert_eq!(shape(&ours), shape(&theirs));
    run.terminate();
    flume.stop();
}

/// A PKCS#12 keystore for CN=localhost (SAN localhost, 127.0.0.1) and its certificate as PEM,
/// made with the JDK's keytool.
fn keystore(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let ks = dir.join("http.p12");
    let pem = dir.join("http.pem");
    let run = |args: &[&str]| {
        let out = Command::new("keytool")
            .args(args)
            .output()
            .expect("run keytool (the JDK must be installed)");
        assert!(out.status.success(), "keytool {args:?}: {out:?}");
    };
    let ks_s = ks.to_str().expect("utf-8 path");
    run(&[
        "-genkeypair",
        "-alias",
        "http",
        "-keyalg",
        "EC",
        "-groupname",
        "secp256r1",
        "-dname",
        "CN=localhost",
        "-ext",
        "san=dns:localhost,ip:127.0.0.1",
        "-validity",
        "2",
        "-storetype",
        "PKCS12",
        "-keystore",
        ks_s,
        "-storepass",
        "changeit",
        "-keypass",
        "changeit",
    ]);
    run(&[
        "-exportcert",
        "-rfc",
        "-alias",
        "http",
        "-keystore",
        ks_s,
        "-storepass",
        "changeit",
        "-file",
        pem.to_str().expect("utf-8 path"),
    ]);
    (ks, pem)
}

#[test]
fn tls_with_flumes_deprecated_keys_and_a_plaintext_client_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (ks, pem) = keystore(dir.path());
    let cap = Capture::start();
    let port = free_port();
    let extra = format!(
        "a1.sources.r1.enableSSL = true\n\
         a1.sources.r1.keystore = {}\n\
         a1.sources.r1.keystorePassword = changeit\n\
         a1.sources.r1.keystore-type = PKCS12\n",
        ks.display()
    );
    let (mut run, _) = start_monitored(
        dir.path(),
        &http_to_avro(port, cap.port, &extra),
        "tls",
        &[],
    );
    wait_listening(&mut run, port);
    let resolve = format!("localhost:{port}:127.0.0.1");
    let a = curl(
        dir.path(),
        &format!("https://localhost:{port}/"),
        Some(br#"[{"headers":{"tls":"yes"},"body":"over TLS"}]"#),
        &[
            "--cacert",
            pem.to_str().expect("utf-8 path"),
            "--resolve",
            &resolve,
            "-H",
            "Content-Type: application/json",
        ],
    );
    assert_eq!(a.status, 200, "{}\n{}", a.body, run.log());
    let got = wait_events(&mut run, &cap, 1);
    assert_eq!(got[0].header("tls"), Some("yes"));
    assert_eq!(&got[0].body()[..], b"over TLS");

    // Plain HTTP to the TLS port: no answer, one warning naming the peer.
    let a = curl(
        dir.path(),
        &format!("http://127.0.0.1:{port}/"),
        Some(b"[]"),
        &[],
    );
    assert_ne!(a.status, 200);
    run.wait_for("the plaintext client's warning", |r| {
        r.log().contains("TLS handshake with 127.0.0.1:")
    });
    run.terminate();
}

/// Reads until the server closes the connection (or resets it); returns what it sent.
fn read_to_close(s: &mut TcpStream) -> String {
    s.set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    String::from_utf8_lossy(&got).into_owned()
}

#[test]
fn slow_clients_are_closed_and_named_while_others_are_served() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cap = Capture::start();
    let port = free_port();
    let extra = "a1.sources.r1.ServerConnector.idleTimeout = 1000\n";
    let (mut run, _) = start_monitored(
        dir.path(),
        &http_to_avro(port, cap.port, extra),
        "slow",
        &[],
    );
    wait_listening(&mut run, port);

    // A head that never ends, and a body that stops: closed after the idle timeout.
    let mut head = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    head.write_all(b"POST / HTTP/1.1\r\nHost: x\r\n")
        .expect("send");
    let head_peer = head.local_addr().expect("addr");
    let mut body = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    body.write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n[{")
        .expect("send");
    let body_peer = body.local_addr().expect("addr");
    // Meanwhile a well-behaved client is served.
    let a = post_json(
        dir.path(),
        port,
        br#"[{"body":"served"}]"#,
        "application/json",
    );
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(read_to_close(&mut head), "");
    assert!(read_to_close(&mut body).starts_with("HTTP/1.1 408"));
    run.wait_for("both slow clients named in the log", |r| {
        let log = r.log();
        log.contains(&format!(
            "closed the connection from {head_peer}: a request head unfinished"
        )) && log.contains(&format!("answered 408 Request Timeout to {body_peer}"))
    });

    let got = wait_events(&mut run, &cap, 1);
    assert_eq!(&got[0].body()[..], b"served");
    run.terminate();
}

#[test]
fn connections_over_max_connections_are_closed_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cap = Capture::start();
    let port = free_port();
    // The default idle timeout (30 s) keeps the idle connections open for the whole test.
    let extra = "a1.sources.r1.max-connections = 3\n";
    let (mut run, mport) = start_monitored(
        dir.path(),
        &http_to_avro(port, cap.port, extra),
        "surplus",
        &[],
    );
    // Not wait_listening: its probe connection could still hold a slot when the idle ones
    // arrive. The log line is written once the listener is served.
    run.wait_for("the http source to listen", |r| {
        r.log()
            .contains(&format!("(http) listening on 127.0.0.1:{port}"))
    });
    let open = |n: &str| {
        let n = n.to_string();
        move |_: &AgentProcess| {
            crate::agent_proc::try_get(mport, "/metrics").is_some_and(|(_, b)| {
                serde_json::from_str::<serde_json::Value>(&b).is_ok_and(|v| {
                    v["SOURCE.r1"]["OpenConnectionCount"].as_str() == Some(n.as_str())
                })
            })
        }
    };
    // Three idle connections fill max-connections: a fourth is closed at once.
    let idle: Vec<TcpStream> = (0..3)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).expect("connect"))
        .collect();
    run.wait_for("three open connections", open("3"));
    let mut surplus = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    assert_eq!(read_to_close(&mut surplus), "");
    assert!(run
        .log()
        .contains("3 connections are open (max-connections)"));
    drop(idle);
    // The server sees them close; then clients are served again.
    run.poll("a request served after the idle connections closed", |_| {
        let a = post_json(
            dir.path(),
            port,
            br#"[{"body":"again"}]"#,
            "application/json",
        );
        (a.status == 200).then_some(())
    });
    let got = wait_events(&mut run, &cap, 1);
    assert_eq!(&got[0].body()[..], b"again");
    run.terminate();
}

#[test]
fn ten_thousand_held_connections_and_slow_clients_leave_memory_bounded() {
    let _sockets = crate::agent_proc::many_sockets();
    const HELD: usize = 10_000;
    /// The agent with every connection slot taken: hyper's per-connection state and read
    /// buffer, the runtime, the memory channel.
    const RSS_BOUND_KIB: u64 = 512 * 1024;
    let dir = tempfile::tempdir().expect("tempdir");
    let cap = Capture::start();
    let port = free_port();
    // Idle connections are held for the whole test however slow the machine (Jetty's default
    // idle timeout, 30 s, could close the first before the last are open), and half of them
    // are over max-connections.
    let extra = "a1.sources.r1.ServerConnector.idleTimeout = 600000\n\
                 a1.sources.r1.max-connections = 5000\n";
    let (mut run, _) = start_monitored(
        dir.path(),
        &http_to_avro(port, cap.port, extra),
        "held",
        &[],
    );
    wait_listening(&mut run, port);
    // The well-behaved client connects first and keeps its connection.
    let mut good = KeptAlive::connect(port);
    assert_eq!(good.post(r#"[{"body":"good 0"}]"#), 200);

    // Slow clients: a request head a byte at a time, never finished.
    let mut slow: Vec<TcpStream> = (0..20)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).expect("connect"))
        .collect();
    for b in b"POST / HTTP/1.1\r\nHost: slow\r\n" {
        for s in &mut slow {
            s.write_all(&[*b]).expect("a slow byte");
        }
    }
    // Then every other slot, and more: the surplus is closed at once, the rest held.
    // The well-behaved client posts every 1,000 connections, and is served each time.
    let mut held = Vec::with_capacity(HELD);
    let mut good_posts = 1;
    for i in 0..HELD {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(s) => held.push(s),
            Err(e) => panic!("connection {} refused: {e}", held.len()),
        }
        if i % 1000 == 999 {
            assert_eq!(good.post(&format!(r#"[{{"body":"good {i}"}}]"#)), 200);
            good_posts += 1;
        }
    }
    let got = wait_events(&mut run, &cap, good_posts);
    assert_eq!(&got[good_posts - 1].body()[..], b"good 9999");
    let rss = crate::agent_proc::peak_rss_kib(run.child.id());
    println!("http source: peak RSS {rss} KiB with {HELD} connections held");
    assert!(rss < RSS_BOUND_KIB, "peak RSS {rss} KiB");
    // The surplus may still wait in the listen backlog when the last connect returns.
    run.wait_for("the surplus connections reported", |r| {
        r.log().contains("connections are open (max-connections)")
    });
    drop(held);
    drop(slow);
    run.terminate();
}

/// Posts requests of 10 events `y{cycle}-c{client}-{request}-{event}` until the connection
/// breaks; returns how many requests were answered 200 (in order, so a prefix).
fn crash_client(port: u16, client: usize, cycle: usize, acked: Arc<AtomicU64>) -> u64 {
    let Ok(s) = TcpStream::connect(("127.0.0.1", port)) else {
        return 0;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(60)));
    let Ok(r) = s.try_clone().map(BufReader::new) else {
        return 0;
    };
    let mut conn = KeptAlive { s, r };
    let mut done = 0u64;
    loop {
        let events: Vec<String> = (0..10)
            .map(|e| format!(r#"{{"body":"y{cycle}-c{client}-{done}-{e}"}}"#))
            .collect();
        match conn.try_post(&format!("[{}]", events.join(","))) {
            Ok(200) => {
                done += 1;
                acked.fetch_add(1, Ordering::Relaxed);
            }
            Ok(503) => std::thread::sleep(Duration::from_millis(50)),
            Ok(other) => panic!("client {client}: status {other}"),
            // The agent was killed: what was answered 200 is what it owes.
            Err(_) => return done,
        }
    }
}

#[test]
fn kill_minus_nine_loses_no_request_answered_200() {
    const CLIENTS: usize = 4;
    const CYCLES: usize = 2;
    const ACKED_BEFORE_KILL: u64 = 300;
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let conf = tcp_file_roll_config(dir.path(), "http", port, 100);
    let mut owed: BTreeMap<String, ()> = BTreeMap::new();
    for cycle in 0..CYCLES {
        let mut agent = AgentProcess::start(dir.path(), &conf, "a1", &format!("run{cycle}"));
        wait_listening(&mut agent, port);
        let acked = Arc::new(AtomicU64::new(0));
        let clients: Vec<_> = (0..CLIENTS)
            .map(|c| {
                let acked = Arc::clone(&acked);
                std::thread::spawn(move || crash_client(port, c, cycle, acked))
            })
            .collect();
        agent.wait_for("requests answered 200 before the kill", |_| {
            acked.load(Ordering::Relaxed) >= ACKED_BEFORE_KILL
        });
        agent.kill_9();
        for (c, t) in clients.into_iter().enumerate() {
            let done = t.join().expect("client thread");
            for r in 0..done {
                for e in 0..10 {
                    owed.insert(format!("y{cycle}-c{c}-{r}-{e}"), ());
                }
            }
        }
    }
    let mut agent = AgentProcess::start(dir.path(), &conf, "a1", "drain");
    let out = dir.path().join("out");
    let mut missing: Vec<String> = Vec::new();
    agent.poll("every event of a 200 to reach the sink", |_| {
        let got = complete_lines(&out);
        missing = owed
            .keys()
            .filter(|k| !got.contains_key(*k))
            .take(5)
            .cloned()
            .collect();
        missing.is_empty().then_some(())
    });
    agent.terminate();
    assert!(owed.len() as u64 >= CYCLES as u64 * ACKED_BEFORE_KILL * 10);
}

#[test]
fn blob_posts_give_the_events_flume_gives() {
    let dir = tempfile::tempdir().expect("tempdir");
    let blob: Vec<u8> = (0..=255u8).cycle().take(5000).collect();
    let posts: [(&str, &[u8], &str); 3] = [
        (
            "/?resourceName=a%20b.avro&n=1&n=2",
            &blob,
            "application/octet-stream",
        ),
        (
            "/upload?id=7&flag&empty=",
            b"plain text body",
            "text/plain; charset=UTF-8",
        ),
        ("/?id=8&x=%C3%A9+y", b"", "application/octet-stream"),
    ];
    for (tag, handler) in [
        (
            "morphline",
            "org.apache.flume.sink.solr.morphline.BlobHandler",
        ),
        ("core", "org.apache.flume.source.http.BLOBHandler"),
    ] {
        let mut extra = format!("a1.sources.r1.handler = {handler}\n");
        // Flume's core BLOBHandler refuses every request unless mandatoryParameters names
        // something (see docs/CONFIG.md).
        if tag == "core" {
            extra.push_str("a1.sources.r1.handler.mandatoryParameters = id\n");
        }
        let flume_cap = Capture::start();
        let flume_port = free_port();
        let mut flume = FlumeAgent::start(
            dir.path(),
            &format!("blob-{tag}"),
            &http_to_avro(flume_port, flume_cap.port, &extra),
        );
        let ours_cap = Capture::start();
        let ours_port = free_port();
        let (mut run, _) = start_monitored(
            dir.path(),
            &http_to_avro(ours_port, ours_cap.port, &extra),
            &format!("blob-{tag}"),
            &[],
        );
        wait_listening(&mut run, ours_port);
        flume.wait_ready(&["SOURCE.r1", "SINK.k1"], Some(flume_port));
        let mut n = 0;
        for (path, body, ct) in posts {
            if tag == "core" && !path.contains("id=") {
                continue;
            }
            for port in [flume_port, ours_port] {
                let a = curl(
                    dir.path(),
                    &format!("http://127.0.0.1:{port}{path}"),
                    Some(body),
                    &["-H", &format!("Content-Type: {ct}")],
                );
                assert_eq!(a.status, 200, "{tag} on {port}: {}", a.body);
            }
            n += 1;
        }
        let ours = wait_events(&mut run, &ours_cap, n);
        let theirs = flume.poll("waiting for Flume's blob events", |_| {
            (flume_cap.len() >= n).then(|| flume_cap.events())
        });
        assert_eq!(shape(&ours), shape(&theirs), "{tag}");
        run.terminate();
        flume.stop();
    }
}
