//! The monitoring server (`flumen agent --monitoring-port`) as an attacker on the network sees
//! it: only `/metrics` (and its `/metrics/` spelling) and `/metrics/prometheus` answer 200,
//! every other path 404 and every other method 405, with no file served and no directory
//! listed whatever `..` the path holds; and a flood (10,000 held connections, slowloris, huge
//! request heads, huge bodies, many concurrent scrapers) leaves the agent's memory bounded, a
//! well-behaved scrape answered and nothing panicking. The flood test prints one JSON line
//! with its figures (docs/RELIABILITY.md, "Security").

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use crate::agent_proc::{free_port, get, many_sockets, start_monitored, AgentProcess};

/// netcat on a free port -> memory channel -> null sink: an agent with nothing to do but
/// serve its metrics.
fn idle_agent(dir: &Path, tag: &str) -> (AgentProcess, u16) {
    let props = format!(
        "a1.sources = r1\n\
         a1.channels = c1\n\
         a1.sinks = k1\n\
         a1.sources.r1.type = netcat\n\
         a1.sources.r1.bind = 127.0.0.1\n\
         a1.sources.r1.port = {}\n\
         a1.sources.r1.channels = c1\n\
         a1.channels.c1.type = memory\n\
         a1.sinks.k1.type = null\n\
         a1.sinks.k1.channel = c1\n",
        free_port()
    );
    let (mut agent, port) = start_monitored(dir, &props, tag, &[]);
    let (status, body) = get(&mut agent, port, "/metrics");
    assert_eq!(status, 200, "{body}");
    (agent, port)
}

/// Sends `request` as is and returns the status and the whole answer; `None` if the server
/// closed without an answer.
fn raw(port: u16, request: &[u8]) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    // The server may answer and close before reading all of a large request.
    let _ = s.write_all(request);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text.split(' ').nth(1)?.parse().ok()?;
    Some((status, text))
}

fn status_of(port: u16, method: &str, target: &str) -> (u16, String) {
    raw(
        port,
        format!("{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").as_bytes(),
    )
    .unwrap_or_else(|| panic!("no answer to {method} {target}"))
}

#[test]
fn only_the_two_metrics_endpoints_answer() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Something for a traversal to find if the server ever served files.
    std::fs::write(dir.path().join("secret.txt"), "do-not-serve").expect("write");
    let (agent, port) = idle_agent(dir.path(), "endpoints");
    for ok in [
        "/metrics",
        "/metrics/",
        "/metrics/prometheus",
        "/metrics?x=1",
    ] {
        let (status, answer) = status_of(port, "GET", ok);
        assert_eq!(status, 200, "GET {ok}: {answer}");
    }
    let (status, answer) = status_of(port, "HEAD", "/metrics");
    assert_eq!(status, 200, "{answer}");
    assert!(answer.ends_with("\r\n\r\n"), "HEAD has no body: {answer}");
    for target in [
        "/",
        "/..",
        "/../",
        "/../../../../etc/passwd",
        "/metrics/../../../../etc/passwd",
        "/metrics/..",
        "/metrics/prometheus/..",
        "/..%2f..%2f..%2fetc%2fpasswd",
        "/%2e%2e/%2e%2e/etc/passwd",
        "//etc/passwd",
        "/etc/passwd",
        "/secret.txt",
        "/./secret.txt",
        "/agent-endpoints.log",
        "/endpoints.properties",
        "/metrics%00",
        "/metrics/prometheus/",
        "/Metrics",
        "/metrics/json",
        "/index.html",
        "/favicon.ico",
        "/.git/config",
        "/metrics\\..\\..\\etc\\passwd",
    ] {
        let (status, answer) = status_of(port, "GET", target);
        assert_eq!(status, 404, "GET {target}: {answer}");
        assert!(
            !answer.contains("do-not-serve")
                && !answer.contains("root:")
                && !answer.contains("a1.sources"),
            "GET {target} served a file: {answer}"
        );
    }
    for method in [
        "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT",
    ] {
        let (status, answer) = status_of(port, method, "/metrics");
        assert_eq!(status, 405, "{method} /metrics: {answer}");
    }
    // Absolute-form and asterisk targets are not paths of this server.
    for target in ["http://127.0.0.1/metrics", "*"] {
        let (status, answer) = status_of(port, "GET", target);
        assert_eq!(status, 400, "GET {target}: {answer}");
    }
    let (st, log) = agent.terminate();
    assert!(st.success(), "{log}");
    assert!(!log.contains("panicked"), "{log}");
}

fn vm_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} in /proc/{pid}/status"))
}

/// A well-behaved scrape: answered 200 with the JSON counters (retried within the deadline,
/// since a flood may have just closed its connection to make room).
fn scrape(agent: &mut AgentProcess, port: u16) {
    let (status, body) = get(agent, port, "/metrics");
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("JSON counters");
    assert!(v.get("SOURCE.r1").is_some(), "{body}");
}

#[test]
fn a_flood_leaves_memory_bounded_and_scrapes_answered() {
    const HELD: usize = 10_000;
    let _sockets = many_sockets();
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut agent, port) = idle_agent(dir.path(), "flood");
    let pid = agent.child.id();
    let rss_before = vm_kib(pid, "VmRSS:");

    // 1. 10,000 connections opened and held, a third of them with half a request
    //    (slowloris: the rest of the head never comes).
    let mut held = Vec::with_capacity(HELD);
    for i in 0..HELD {
        let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect a held connection");
        if i % 3 == 0 {
            let _ = s.write_all(b"GET /metrics HTTP/1.1\r\nX-Slow: aaaa");
        }
        held.push(s);
    }
    let last_held = held
        .last()
        .expect("held connections")
        .local_addr()
        .expect("local addr");
    scrape(&mut agent, port);
    let rss_held = vm_kib(pid, "VmRSS:");
    // Slowloris proper: one more header byte at a time, to every held connection, a few
    // rounds; the server's whole-request deadline closes them anyway.
    for _ in 0..3 {
        for s in held.iter_mut().step_by(3) {
            let _ = s.write_all(b"a");
        }
        scrape(&mut agent, port);
    }
    agent.wait_for("a warning naming a silent peer", |a| {
        a.log()
            .contains(&format!("monitoring: {last_held} did not send"))
    });
    drop(held);

    // 2. Huge request heads and huge bodies, from 16 threads at once.
    std::thread::scope(|scope| {
        for t in 0..16 {
            scope.spawn(move || {
                let mut head = b"GET /metrics HTTP/1.1\r\n".to_vec();
                while head.len() < 1 << 20 {
                    head.extend_from_slice(b"X-Huge: ");
                    head.extend(std::iter::repeat_n(b'h', 4000));
                    head.extend_from_slice(b"\r\n");
                }
                head.extend_from_slice(b"\r\n");
                if let Some((status, answer)) = raw(port, &head) {
                    assert_eq!(status, 400, "thread {t}: {answer}");
                }
                let mut body =
                    b"POST /metrics HTTP/1.1\r\nContent-Length: 1073741824\r\n\r\n".to_vec();
                body.extend(std::iter::repeat_n(b'b', 4 << 20));
                if let Some((status, answer)) = raw(port, &body) {
                    assert_eq!(status, 405, "thread {t}: {answer}");
                }
                let garbage: Vec<u8> = (0..65_536u32).map(|i| (i * 7919 % 251) as u8).collect();
                if let Some((status, answer)) = raw(port, &garbage) {
                    assert_eq!(status, 400, "thread {t}: {answer}");
                }
            });
        }
    });
    scrape(&mut agent, port);

    // 3. Many concurrent well-behaved scrapers: every one answered.
    std::thread::scope(|scope| {
        for _ in 0..32 {
            scope.spawn(move || {
                for _ in 0..50 {
                    let (status, answer) = status_of(port, "GET", "/metrics/prometheus");
                    assert_eq!(status, 200, "{answer}");
                }
            });
        }
    });
    scrape(&mut agent, port);

    let rss_after = vm_kib(pid, "VmRSS:");
    let hwm = vm_kib(pid, "VmHWM:");
    println!(
        "{{\"held_connections\":{HELD},\"rss_before_kib\":{rss_before},\"rss_held_kib\":{rss_held},\"rss_after_kib\":{rss_after},\"vm_hwm_kib\":{hwm}}}"
    );
    // Generous: the server keeps at most 256 connections of at most 8 KiB of head each.
    assert!(
        hwm < rss_before + 64 * 1024,
        "peak RSS {hwm} KiB, {rss_before} KiB before the flood"
    );
    let (st, log) = agent.terminate();
    assert!(st.success(), "{log}");
    assert!(!log.contains("panicked"), "a panic under the flood");
}
