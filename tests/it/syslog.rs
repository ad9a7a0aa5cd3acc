//! The syslog sources through the `flumen agent` binary, where there is no Flume behaviour to
//! compare with (syslog_flume.rs does that): RFC 6587 octet-counted framing as `logger
//! --octet-count` and rsyslog's forwarding send it (Flume cannot read it), TLS with a PKCS#12
//! keystore made by keytool (and a plaintext client refused with one warning naming it), and
//! 2,000 idle connections held open while a well-behaved client is served.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Instant;

use flumen::event::Event;

use crate::agent_proc::{free_port, peak_rss_kib, DEADLINE, POLL};
use crate::avro_capture::Capture;
use crate::syslog_flume::{logger_bytes, properties, start_flumen, wait_listening, Flumen, Via};

/// Waits until `cap` holds `n` events (flumen must keep running).
fn wait_events(flumen: &mut Flumen, cap: &Capture, n: usize) -> Vec<Event> {
    flumen
        .get()
        .wait_for(&format!("{n} events"), |_| cap.len() >= n);
    cap.events()
}

#[test]
fn octet_counted_frames_are_read_as_messages() {
    let dir = tempfile::tempdir().expect("tempdir");
    for source_type in ["syslogtcp", "multiport_syslogtcp"] {
        let cap = Capture::start();
        let port = free_port();
        let port_key = if source_type == "syslogtcp" {
            "port"
        } else {
            "ports"
        };
        let mut flumen = start_flumen(
            dir.path(),
            source_type,
            &properties(
                source_type,
                &format!("a1.sources.r1.{port_key} = {port}\n"),
                cap.port,
            ),
        );
        wait_listening(&mut flumen, port);
        // What logger sends with octet counting, then rsyslog-style frames back to back, one
        // holding a newline (octet counting exists for that).
        let mut stream = logger_bytes(Via::Tcp, &["--octet-count", "--rfc5424"], "counted");
        assert!(
            stream.first().is_some_and(u8::is_ascii_digit),
            "logger --octet-count starts with a length: {:?}",
            String::from_utf8_lossy(&stream)
        );
        for m in [
            "<30>1 2024-03-01T10:00:00Z web1 nginx - - - GET / 200",
            "<30>1 2024-03-01T10:00:01Z web1 app - - - two\nlines",
        ] {
            stream.extend_from_slice(format!("{} {m}", m.len()).as_bytes());
        }
        let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        // A byte at a time at first: the framing is detected from the first bytes whatever
        // the reads.
        for b in &stream[..12] {
            s.write_all(&[*b]).expect("send");
            s.flush().expect("flush");
        }
        s.write_all(&stream[12..]).expect("send");
        drop(s);
        let events = wait_events(&mut flumen, &cap, 3);
        assert_eq!(events.len(), 3, "{source_type}");
        assert!(
            events[0].body().ends_with(b"counted"),
            "{source_type}: {:?}",
            String::from_utf8_lossy(events[0].body())
        );
        assert_eq!(
            &events[1].body()[..],
            b"nginx - - - GET / 200",
            "{source_type}"
        );
        assert_eq!(events[1].header("host"), Some("web1"));
        assert_eq!(events[1].header("timestamp"), Some("1709287200000"));
        assert_eq!(events[1].header("flume.syslog.status"), None);
        // The newline is data inside a frame; syslogtcp's patterns (Java's `.`) do not match
        // across it, so the message keeps its whole text there, as Flume keeps unmatched ones.
        assert!(
            events[2].body().ends_with(b"two\nlines"),
            "{source_type}: {:?}",
            String::from_utf8_lossy(events[2].body())
        );
    }
}

fn keytool(args: &[&str]) {
    let out = Command::new("keytool")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run keytool (the JDK must be installed)");
    assert!(
        out.status.success(),
        "keytool {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Sends `lines` over TLS with `openssl s_client` (which ends when its input does).
fn tls_send(port: u16, lines: &str) {
    let mut child = Command::new("openssl")
        .args(["s_client", "-quiet", "-no_ign_eof", "-connect"])
        .arg(format!("127.0.0.1:{port}"))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run openssl s_client (OpenSSL must be installed)");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(lines.as_bytes())
        .expect("write to openssl");
    let end = Instant::now() + DEADLINE;
    while child.try_wait().expect("try_wait").is_none() {
        assert!(Instant::now() < end, "openssl s_client did not finish");
        std::thread::sleep(POLL);
    }
}

#[test]
fn syslogtcp_over_tls_with_a_pkcs12_keystore() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ks = dir.path().join("syslog.p12");
    let ks_s = ks.display().to_string();
    keytool(&[
        "-genkeypair",
        "-alias",
        "syslog",
        "-keyalg",
        "RSA",
        "-keysize",
        "2048",
        "-validity",
        "2",
        "-storetype",
        "PKCS12",
        "-storepass",
        "changeit",
        "-keypass",
        "changeit",
        "-dname",
        "CN=localhost",
        "-ext",
        "SAN=dns:localhost,ip:127.0.0.1",
        "-keystore",
        &ks_s,
    ]);
    let cap = Capture::start();
    let port = free_port();
    let keys = format!(
        "a1.sources.r1.port = {port}\n\
         a1.sources.r1.ssl = true\n\
         a1.sources.r1.keystore = {ks_s}\n\
         a1.sources.r1.keystore-password = changeit\n\
         a1.sources.r1.keystore-type = PKCS12\n"
    );
    let mut flumen = start_flumen(dir.path(), "tls", &properties("syslogtcp", &keys, cap.port));
    wait_listening(&mut flumen, port);
    // A plaintext client: refused, one warning naming it; the source goes on.
    let mut plain = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let local = plain.local_addr().expect("addr");
    plain
        .write_all(b"<13>Oct 11 22:14:15 host plaintext\n")
        .expect("send");
    plain.set_read_timeout(Some(DEADLINE)).expect("timeout");
    let mut sink = Vec::new();
    let _ = plain.read_to_end(&mut sink);
    tls_send(
        port,
        "<13>Oct 11 22:14:15 host over tls\n<14>1 2024-01-01T00:00:00Z h app - - - second\n",
    );
    let events = wait_events(&mut flumen, &cap, 2);
    let bodies: Vec<&[u8]> = events.iter().map(|e| &e.body()[..]).collect();
    assert_eq!(bodies, vec![&b"over tls"[..], b"app - - - second"]);
    let log = flumen.get().log();
    let warnings = log
        .lines()
        .filter(|l| l.contains("TLS handshake") && l.contains(&local.to_string()))
        .count();
    assert_eq!(warnings, 1, "one warning naming {local}:\n{log}");
}

/// The agent's resident memory now (VmRSS), in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

#[test]
fn two_thousand_idle_connections_do_not_stop_a_well_behaved_client() {
    let _sockets = crate::agent_proc::many_sockets();
    const IDLE: usize = 2000;
    let dir = tempfile::tempdir().expect("tempdir");
    let cap = Capture::start();
    let port = free_port();
    let mut flumen = start_flumen(
        dir.path(),
        "idle",
        &properties(
            "syslogtcp",
            &format!("a1.sources.r1.port = {port}\n"),
            cap.port,
        ),
    );
    wait_listening(&mut flumen, port);
    let pid = flumen.get().child.id();
    let before = rss_kib(pid);
    let mut idle = Vec::with_capacity(IDLE);
    for i in 0..IDLE {
        let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect an idle client");
        // Half of them leave a message half sent (slowloris).
        if i % 2 == 0 {
            s.write_all(b"<13>Oct 11 22:14:15 host never fin")
                .expect("send");
        }
        idle.push(s);
    }
    let mut good = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    for i in 0..100 {
        good.write_all(format!("<13>Oct 11 22:14:15 host line {i}\n").as_bytes())
            .expect("send");
    }
    let events = wait_events(&mut flumen, &cap, 100);
    assert_eq!(&events[99].body()[..], b"line 99");
    let after = rss_kib(pid);
    let peak = peak_rss_kib(pid);
    eprintln!(
        "syslogtcp with {IDLE} idle connections: RSS {before} KiB before, {after} KiB after, peak {peak} KiB"
    );
    // Bounded: an idle connection costs its socket and a parked task, no read buffer.
    assert!(
        after.saturating_sub(before) < 64 * 1024,
        "{IDLE} idle connections cost {} KiB",
        after.saturating_sub(before)
    );
    drop(idle);
    drop(good);
}
