//! TLS (`ssl = true`) on the avro source and sink, against Apache Flume's own client and
//! agent. Each test makes its certificates with the JDK's `keytool` in its own temporary
//! directory: a PKCS#12 keystore for CN=localhost (SAN dns:localhost, ip:127.0.0.1), its
//! certificate exported as PEM and imported into a PKCS#12 truststore, plus a second, unrelated
//! identity whose truststore does not trust the first.
//!
//! - Flume's `RpcClient` (flume-ng-sdk 1.11.0, `AvroSend`) with `ssl = true` and a truststore
//!   sends 20,000 events to a flumen avro source with a keystore: all arrive exactly once with
//!   their headers; again with `compression-type = deflate` on both sides (Flume 1.11 puts TLS
//!   inside the zlib stream).
//! - flumen avro sink (ssl, truststore) -> flumen avro source (ssl): exactly once; also with
//!   `trust-all-certs`; a sink that does not trust the certificate fails each connection with
//!   a message saying what to set, and keeps the events.
//! - A plaintext client against the TLS source is closed with one warning naming it, and the
//!   agent keeps serving TLS clients.
//! - flumen avro sink with ssl -> a real Flume 1.11.0 agent's avro source with ssl (PKCS12
//!   keystore) -> file_roll.
//!
//! Every wait is a condition with a deadline; ports are free ports, files live in tempdirs.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use flumen::agent::Agent;

use crate::agent_proc::{free_port, tcp_file_roll_config, AgentProcess};
use crate::avro_sink::{sink_counter, wait_for};
use crate::avro_source::take_n;

pub(crate) const PASSWORD: &str = "changeit";
const DEADLINE: Duration = Duration::from_secs(120);

/// The key material of one test.
pub(crate) struct Certs {
    /// PKCS#12 keystore of CN=localhost.
    pub(crate) keystore: PathBuf,
    /// PKCS#12 truststore holding only the keystore's certificate.
    pub(crate) truststore: PathBuf,
    /// PKCS#12 truststore of another, unrelated certificate.
    pub(crate) other_truststore: PathBuf,
}

fn keytool(args: &[&str], paths: &[(&str, &Path)]) {
    let mut c = Command::new("keytool");
    c.args(args);
    for (flag, p) in paths {
        c.arg(flag).arg(p);
    }
    let out = c
        .stdin(Stdio::null())
        .output()
        .expect("run keytool (the JDK must be installed)");
    assert!(
        out.status.success(),
        "keytool {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A key pair for CN=`cn` in `dir/<name>.p12`, its certificate in `dir/<name>.pem`, and a
/// truststore `dir/<name>-trust.p12` holding that certificate.
fn identity(dir: &Path, name: &str, cn: &str) -> (PathBuf, PathBuf) {
    identity_with(dir, name, cn, &["-keyalg", "RSA", "-keysize", "2048"])
}

/// [`identity`] with these keytool key options (e.g. an EC key).
fn identity_with(dir: &Path, name: &str, cn: &str, key: &[&str]) -> (PathBuf, PathBuf) {
    let ks = dir.join(format!("{name}.p12"));
    let pem = dir.join(format!("{name}.pem"));
    let ts = dir.join(format!("{name}-trust.p12"));
    let dname = format!("CN={cn}");
    let mut args = vec!["-genkeypair", "-alias", name];
    args.extend_from_slice(key);
    args.extend_from_slice(&[
        "-validity",
        "2",
        "-storetype",
        "PKCS12",
        "-storepass",
        PASSWORD,
        "-keypass",
        PASSWORD,
        "-dname",
        &dname,
        "-ext",
        "SAN=dns:localhost,ip:127.0.0.1",
    ]);
    keytool(&args, &[("-keystore", &ks)]);
    keytool(
        &[
            "-exportcert",
            "-rfc",
            "-alias",
            name,
            "-storepass",
            PASSWORD,
        ],
        &[("-keystore", &ks), ("-file", &pem)],
    );
    keytool(
        &[
            "-importcert",
            "-noprompt",
            "-alias",
            name,
            "-storetype",
            "PKCS12",
            "-storepass",
            PASSWORD,
        ],
        &[("-keystore", &ts), ("-file", &pem)],
    );
    (ks, ts)
}

pub(crate) fn make_certs(dir: &Path) -> Certs {
    let (keystore, truststore) = identity(dir, "flumen", "localhost");
    let (_, other_truststore) = identity(dir, "other", "someone-else");
    Certs {
        keystore,
        truststore,
        other_truststore,
    }
}

/// The avro source's TLS keys for `certs`.
fn source_tls_keys(certs: &Certs) -> String {
    format!(
        "a1.sources.r1.ssl = true\n\
         a1.sources.r1.keystore = {}\n\
         a1.sources.r1.keystore-password = {PASSWORD}\n\
         a1.sources.r1.keystore-type = PKCS12\n",
        certs.keystore.display()
    )
}

/// Runs Flume's `AvroSend` (batches of 100) with `props` (`-D` options); returns (success,
/// stdout, stderr).
fn avro_send(port: u16, first: usize, count: usize, props: &[String]) -> (bool, String, String) {
    crate::avro_source::avro_send_with(port, first, count, 100, props)
}

/// AvroSend's TLS options trusting `truststore`.
fn java_tls_props(truststore: &Path) -> Vec<String> {
    vec![
        "-Dflumen.ssl=true".into(),
        format!("-Dflumen.truststore={}", truststore.display()),
        format!("-Dflumen.truststore-password={PASSWORD}"),
        "-Dflumen.truststore-type=PKCS12".into(),
    ]
}

/// An in-process agent: avro source on 127.0.0.1:`port` with `extra` source keys -> memory
/// channel (room for everything), no sink.
fn start_receiver(port: u16, extra: &str) -> Agent {
    crate::avro_source::start_agent_with(
        port,
        extra,
        "a1.channels.c1.capacity = 100000\na1.channels.c1.transactionCapacity = 1000\n",
    )
}

/// An in-process agent: seq (`events` events) -> memory channel -> avro sink to `port` with
/// `extra` sink keys.
fn start_sender(port: u16, events: usize, extra: &str) -> Agent {
    let text = crate::agent_proc::seq_to_avro_properties(
        events,
        port,
        &format!("a1.sinks.k1.connect-timeout = 5000\na1.sinks.k1.ssl = true\n{extra}"),
    );
    let (cfg, warnings) = flumen::agent::config::parse(&text, "sender.conf", "a1").expect("config");
    assert!(warnings.is_empty(), "{warnings:?}");
    Agent::start(&cfg).expect("start the sending agent")
}

/// Checks `events` have the bodies `0..n` once each; with `headers`, also AvroSend's headers
/// (`seq` = the body, `k` = `v`).
fn assert_exactly_once(events: &[flumen::Event], n: usize, headers: bool) {
    let mut seen = BTreeMap::new();
    for e in events {
        let body = String::from_utf8_lossy(e.body()).into_owned();
        let i: usize = body.parse().unwrap_or_else(|_| panic!("body {body:?}"));
        assert!(i < n, "body {body:?}");
        if headers {
            assert_eq!(e.header("seq"), Some(body.as_str()), "{e:?}");
            assert_eq!(e.header("k"), Some("v"), "{e:?}");
        }
        *seen.entry(i).or_insert(0usize) += 1;
    }
    let dups: Vec<_> = seen.iter().filter(|(_, c)| **c > 1).take(10).collect();
    assert!(dups.is_empty(), "delivered more than once: {dups:?}");
    assert_eq!(seen.len(), n, "distinct bodies");
    assert_eq!(events.len(), n);
}

/// Flume's RpcClient over TLS (optionally deflate too) into a flumen TLS source.
fn flume_client_over_tls(deflate: bool) {
    const N: usize = 20_000;
    let dir = tempfile::tempdir().expect("tempdir");
    let certs = make_certs(dir.path());
    let port = free_port();
    let mut extra = source_tls_keys(&certs);
    let mut props = java_tls_props(&certs.truststore);
    if deflate {
        extra.push_str("a1.sources.r1.compression-type = deflate\n");
        props.push("-Dflumen.compression=deflate".into());
    }
    let agent = start_receiver(port, &extra);
    let ch = Arc::clone(&agent.channels()[0]);
    let (ok, out, err) = avro_send(port, 0, N, &props);
    assert!(ok, "AvroSend failed:\n{out}\n{err}");
    assert!(out.contains(&format!("SENT {N}")), "{out}\n{err}");
    let got = take_n(ch.as_ref(), N);
    assert_exactly_once(&got, N, true);
    assert!(!ch.wait_available(Duration::from_millis(200)));
    agent.shutdown().expect("shutdown");
}

#[test]
fn flume_rpc_client_over_tls_delivers_every_event_once() {
    flume_client_over_tls(false);
}

#[test]
fn flume_rpc_client_over_tls_and_deflate_delivers_every_event_once() {
    flume_client_over_tls(true);
}

/// Also an EC P-256 key, which keytool stores without its public key (flumen mends it).
#[test]
fn flume_rpc_client_with_trust_all_certs_and_an_ec_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (keystore, truststore) = identity_with(
        dir.path(),
        "ec",
        "localhost",
        &["-keyalg", "EC", "-groupname", "secp256r1"],
    );
    let certs = Certs {
        keystore,
        truststore: truststore.clone(),
        other_truststore: truststore,
    };
    let port = free_port();
    let agent = start_receiver(port, &source_tls_keys(&certs));
    let ch = Arc::clone(&agent.channels()[0]);
    let props = vec![
        "-Dflumen.ssl=true".to_string(),
        "-Dflumen.trust-all-certs=true".to_string(),
    ];
    let (ok, out, err) = avro_send(port, 0, 500, &props);
    assert!(ok, "AvroSend failed:\n{out}\n{err}");
    assert_exactly_once(&take_n(ch.as_ref(), 500), 500, true);
    agent.shutdown().expect("shutdown");
}

/// flumen -> flumen over TLS with `sink_keys` (the trust settings).
fn flumen_tier(sink_keys: &str, deflate: bool) {
    const N: usize = 5_000;
    let dir = tempfile::tempdir().expect("tempdir");
    let certs = make_certs(dir.path());
    let port = free_port();
    let mut source = source_tls_keys(&certs);
    let mut sink = sink_keys.replace("{truststore}", &certs.truststore.display().to_string());
    if deflate {
        source.push_str("a1.sources.r1.compression-type = deflate\n");
        sink.push_str("a1.sinks.k1.compression-type = deflate\n");
    }
    let b = start_receiver(port, &source);
    let b_ch = Arc::clone(&b.channels()[0]);
    let a = start_sender(port, N, &sink);
    let got = take_n(b_ch.as_ref(), N);
    assert_exactly_once(&got, N, false);
    let a_ch = Arc::clone(&a.channels()[0]);
    wait_for("A's channel to empty", || a_ch.stats().size == 0);
    assert_eq!(sink_counter(&a, "ConnectionFailedCount"), 0);
    assert_eq!(sink_counter(&a, "EventWriteFail"), 0);
    a.shutdown().expect("shutdown A");
    b.shutdown().expect("shutdown B");
}

#[test]
fn flumen_tier_over_tls_with_a_truststore() {
    flumen_tier(
        &format!(
            "a1.sinks.k1.truststore = {{truststore}}\n\
             a1.sinks.k1.truststore-password = {PASSWORD}\n\
             a1.sinks.k1.truststore-type = PKCS12\n"
        ),
        false,
    );
}

#[test]
fn flumen_tier_over_tls_and_deflate_with_host_names_checked() {
    // The certificate names localhost and 127.0.0.1, so the stricter check passes too.
    flumen_tier(
        &format!(
            "a1.sinks.k1.truststore = {{truststore}}\n\
             a1.sinks.k1.truststore-password = {PASSWORD}\n\
             a1.sinks.k1.verify-hostname = true\n"
        ),
        true,
    );
}

/// Standard base64 with padding, for writing a PEM file.
fn base64(data: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ABC[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Our PEM keys: the source's `ssl-cert`/`ssl-key` (the keystore's key written as PKCS#8 PEM,
/// the certificate as keytool exports it), and the sink's `truststore` as that PEM
/// certificate.
#[test]
fn flumen_tier_over_tls_with_pem_files() {
    const N: usize = 1_000;
    let dir = tempfile::tempdir().expect("tempdir");
    let certs = make_certs(dir.path());
    let store = p12_keystore::KeyStore::from_pkcs12(
        &std::fs::read(&certs.keystore).expect("read keystore"),
        PASSWORD,
        p12_keystore::Pkcs12ImportPolicy::Strict,
    )
    .expect("open keystore");
    let (_, chain) = store.private_key_chain().expect("a key");
    let b64 = base64(chain.key().as_der());
    let mut key_pem = String::from("-----BEGIN PRIVATE KEY-----\n");
    for line in b64.as_bytes().chunks(64) {
        key_pem.push_str(std::str::from_utf8(line).expect("ascii"));
        key_pem.push('\n');
    }
    key_pem.push_str("-----END PRIVATE KEY-----\n");
    let key = dir.path().join("key.pem");
    std::fs::write(&key, key_pem).expect("write key");
    let cert = dir.path().join("flumen.pem");
    let port = free_port();
    let b = start_receiver(
        port,
        &format!(
            "a1.sources.r1.ssl = true\na1.sources.r1.ssl-cert = {}\na1.sources.r1.ssl-key = {}\n",
            cert.display(),
            key.display()
        ),
    );
    let b_ch = Arc::clone(&b.channels()[0]);
    let a = start_sender(
        port,
        N,
        &format!("a1.sinks.k1.truststore = {}\n", cert.display()),
    );
    assert_exactly_once(&take_n(b_ch.as_ref(), N), N, false);
    assert_eq!(sink_counter(&a, "ConnectionFailedCount"), 0);
    a.shutdown().expect("shutdown A");
    b.shutdown().expect("shutdown B");
}

#[test]
fn flumen_tier_over_tls_with_trust_all_certs() {
    flumen_tier("a1.sinks.k1.trust-all-certs = true\n", false);
}

#[test]
fn an_untrusted_certificate_fails_the_sink_and_keeps_the_events() {
    const N: usize = 300;
    let dir = tempfile::tempdir().expect("tempdir");
    let certs = make_certs(dir.path());
    let port = free_port();
    let b = start_receiver(port, &source_tls_keys(&certs));
    let b_ch = Arc::clone(&b.channels()[0]);

    // The sink itself says what is wrong.
    let settings = flumen::avro::tls::ClientTls {
        trust: flumen::avro::tls::Trust::Store(flumen::avro::tls::Store {
            path: certs.other_truststore.clone(),
            password: Some(flumen::avro::tls::Secret(PASSWORD.into())),
            store_type: None,
        }),
        verify_hostname: None,
        filters: flumen::avro::tls::Filters::default(),
    };
    let tls = flumen::avro::tls::client_config(&settings).expect("client config");
    let mut sink = flumen::sink::avro::AvroSink::new(
        "k1",
        flumen::sink::avro::AvroSinkOptions {
            hostname: "127.0.0.1".into(),
            port,
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(10),
            reset_connection_interval: None,
            deflate: None,
            tls: Some(tls),
        },
    );
    let e = flumen::sink::Sink::process(&mut sink, &[flumen::Event::new(b"x".to_vec())])
        .expect_err("not trusted");
    // Nothing changes by retrying: the source's certificate or the sink's truststore must.
    assert!(!e.is_retryable(), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains(&format!(
            "the certificate of 127.0.0.1:{port} is not trusted"
        )),
        "{msg}"
    );
    assert!(
        msg.contains("truststore") && msg.contains("trust-all-certs"),
        "{msg}"
    );

    // An agent with that sink keeps every event in its channel.
    let a = start_sender(
        port,
        N,
        &format!(
            "a1.sinks.k1.truststore = {}\na1.sinks.k1.truststore-password = {PASSWORD}\n",
            certs.other_truststore.display()
        ),
    );
    let a_ch = Arc::clone(&a.channels()[0]);
    wait_for("two failed connections", || {
        sink_counter(&a, "ConnectionFailedCount") >= 2
    });
    wait_for("the seq source to put everything", || {
        a_ch.stats().put_successes == N as u64
    });
    assert_eq!(a_ch.stats().size, N as u64, "{:?}", a_ch.stats());
    assert_eq!(sink_counter(&a, "EventDrainSuccessCount"), 0);
    assert_eq!(b_ch.stats().size, 0);
    a.shutdown().expect("shutdown A");
    b.shutdown().expect("shutdown B");
}

#[test]
fn a_plaintext_client_is_closed_and_tls_clients_are_still_served() {
    let dir = tempfile::tempdir().expect("tempdir");
    let certs = make_certs(dir.path());
    let port = free_port();
    let conf = tcp_file_roll_config(dir.path(), "avro", port, 100);
    let mut text = std::fs::read_to_string(&conf).expect("read config");
    text.push_str(&source_tls_keys(&certs));
    // A short idle-timeout bounds a handshake that never comes.
    text.push_str("a1.sources.r1.idle-timeout = 2\n");
    std::fs::write(&conf, text).expect("write config");
    let mut agent = AgentProcess::start(dir.path(), &conf, "a1", "tls");
    // A port probe (connect, close, nothing sent) is not worth a warning.
    let probe = agent.connect(port);
    let probe_addr = probe.local_addr().expect("local addr");
    drop(probe);
    let mut s = agent.connect(port);
    let local = s.local_addr().expect("local addr");

    // An Avro request in clear: the source expects a TLS ClientHello.
    let mut client = flumen::avro::ClientConn::default();
    let (_, frame) = client
        .append_batch(&[flumen::Event::new(b"plain".to_vec())])
        .expect("encode");
    let _ = s.write_all(&frame);
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let mut buf = [0u8; 4096];
    let end = Instant::now() + DEADLINE;
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            // A TLS alert may come before the close; it is not an Avro answer.
            Ok(n) => assert_ne!(buf[0], 0, "an answer in clear: {:?}", &buf[..n]),
            Err(e) => {
                assert!(
                    matches!(
                        e.kind(),
                        std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
                    ),
                    "{e}"
                );
                break;
            }
        }
        assert!(Instant::now() < end, "the connection stayed open");
    }
    agent.wait_for("a warning naming the plaintext peer", |a| {
        a.log()
            .lines()
            .any(|l| l.contains("WARN") && l.contains(&format!("TLS with {local} failed")))
    });

    // A client that connects and never says anything is closed after idle-timeout.
    let mut silent = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let silent_addr = silent.local_addr().expect("local addr");
    silent
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    assert!(matches!(silent.read(&mut buf), Ok(0) | Err(_)));
    agent.wait_for("a warning naming the silent peer", |a| {
        a.log()
            .contains(&format!("{silent_addr} did not finish the TLS handshake"))
    });

    // The agent goes on serving TLS clients.
    let (ok, out, err) = avro_send(port, 0, 200, &java_tls_props(&certs.truststore));
    assert!(ok, "AvroSend failed:\n{out}\n{err}");
    let out_dir = dir.path().join("out");
    wait_for("200 lines in the output", || {
        crate::agent_proc::complete_lines(&out_dir).len() == 200
    });
    let lines = crate::agent_proc::complete_lines(&out_dir);
    assert!(lines.values().all(|&c| c == 1), "duplicates");
    assert!(!lines.contains_key("plain"));
    let (st, log) = agent.terminate();
    assert!(st.success(), "{log}");
    assert!(
        !log.lines()
            .any(|l| l.contains("WARN") && l.contains(&probe_addr.to_string())),
        "a warning for the port probe {probe_addr}:\n{log}"
    );
}

#[test]
fn flumen_sink_over_tls_into_a_real_flume_agent() {
    const N: usize = 3_000;
    let dir = tempfile::tempdir().expect("tempdir");
    let certs = make_certs(dir.path());
    let port = free_port();
    let out = dir.path().join("flume-out");
    std::fs::create_dir_all(&out).expect("mkdir");
    let props = format!(
        "a1.sources = r1\n\
         a1.channels = c1\n\
         a1.sinks = k1\n\
         a1.sources.r1.type = avro\n\
         a1.sources.r1.bind = 127.0.0.1\n\
         a1.sources.r1.port = {port}\n\
         a1.sources.r1.ssl = true\n\
         a1.sources.r1.keystore = {ks}\n\
         a1.sources.r1.keystore-password = {PASSWORD}\n\
         a1.sources.r1.keystore-type = PKCS12\n\
         a1.sources.r1.channels = c1\n\
         a1.channels.c1.type = memory\n\
         a1.channels.c1.capacity = 100000\n\
         a1.channels.c1.transactionCapacity = 1000\n\
         a1.sinks.k1.type = file_roll\n\
         a1.sinks.k1.sink.directory = {out}\n\
         a1.sinks.k1.sink.rollInterval = 0\n\
         a1.sinks.k1.channel = c1\n",
        ks = certs.keystore.display(),
        out = out.display(),
    );
    let mut flume = crate::flume_agent::FlumeAgent::start(dir.path(), "tls", &props);
    flume.wait_ready(&["SOURCE.r1", "SINK.k1"], Some(port));
    let a = start_sender(
        port,
        N,
        &format!(
            "a1.sinks.k1.truststore = {}\na1.sinks.k1.truststore-password = {PASSWORD}\n",
            certs.truststore.display()
        ),
    );
    let end = Instant::now() + DEADLINE;
    loop {
        let lines = crate::agent_proc::complete_lines(&out);
        if lines.len() == N {
            assert!(lines.values().all(|&c| c == 1), "duplicates");
            for i in 0..N {
                assert!(lines.contains_key(&i.to_string()), "missing {i}");
            }
            break;
        }
        if Instant::now() > end {
            flume.fail(&format!(
                "only {} of {N} events reached Flume's file_roll",
                lines.len()
            ));
        }
        flume.assert_running("receiving over TLS");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(sink_counter(&a, "ConnectionFailedCount"), 0);
    a.shutdown().expect("shutdown the flumen agent");
    flume.stop();
}

#[test]
fn flumen_avro_client_over_tls() {
    let dir = tempfile::tempdir().expect("tempdir");
    let certs = make_certs(dir.path());
    let port = free_port();
    let agent = start_receiver(port, &source_tls_keys(&certs));
    let ch = Arc::clone(&agent.channels()[0]);
    let input = dir.path().join("lines.txt");
    let text: String = (0..50).map(|i| format!("{i}\n")).collect();
    std::fs::write(&input, text).expect("write input");
    let run = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_flumen"))
            .args([
                "avro-client",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-F",
            ])
            .arg(&input)
            .args(extra)
            .stdin(Stdio::null())
            .output()
            .expect("run flumen avro-client")
    };
    let ts = certs.truststore.display().to_string();
    let out = run(&[
        "--ssl",
        "--truststore",
        &ts,
        "--truststore-password",
        PASSWORD,
    ]);
    assert!(out.status.success(), "{out:?}");
    assert_exactly_once(&take_n(ch.as_ref(), 50), 50, false);
    // Without --ssl the source closes the connection; with a truststore that does not hold
    // the certificate, the client says what to do.
    let out = run(&[]);
    assert!(!out.status.success(), "{out:?}");
    let other = certs.other_truststore.display().to_string();
    let out = run(&[
        "--ssl",
        "--truststore",
        &other,
        "--truststore-password",
        PASSWORD,
    ]);
    assert!(!out.status.success(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "the certificate of 127.0.0.1:{port} is not trusted"
        )),
        "{err}"
    );
    assert_eq!(ch.stats().size, 0);
    agent.shutdown().expect("shutdown");
}

/// Flume's global SSL settings, as a Flume 1.9+ user sets them once for every component: a
/// flumen avro source with `ssl = true` and no keystore key takes its keystore from
/// `FLUME_SSL_KEYSTORE_*` environment variables, and a flumen avro sink with `ssl = true` and no
/// truststore key takes its truststore from `-Djavax.net.ssl.trustStore...` system properties
/// (both agents real processes): every event arrives once, over TLS.
#[test]
fn flumes_global_ssl_settings_configure_the_avro_source_and_sink() {
    const N: usize = 2_000;
    let dir = tempfile::tempdir().expect("tempdir");
    let certs = make_certs(dir.path());
    let port = free_port();
    let conf = tcp_file_roll_config(dir.path(), "avro", port, 100);
    let mut text = std::fs::read_to_string(&conf).expect("read config");
    text.push_str("a1.sources.r1.ssl = true\n");
    std::fs::write(&conf, text).expect("write config");
    let keystore = certs.keystore.display().to_string();
    let mut receiver = AgentProcess::start_with_env(
        dir.path(),
        &conf,
        "a1",
        "global-ssl-receiver",
        &[],
        &[
            ("FLUME_SSL_KEYSTORE_PATH", keystore.as_str()),
            ("FLUME_SSL_KEYSTORE_PASSWORD", PASSWORD),
            ("FLUME_SSL_KEYSTORE_TYPE", "PKCS12"),
        ],
    );
    drop(receiver.connect(port));

    let sender_dir = dir.path().join("sender");
    std::fs::create_dir_all(&sender_dir).expect("mkdir");
    let sender_conf = sender_dir.join("sender.properties");
    std::fs::write(
        &sender_conf,
        crate::agent_proc::seq_to_avro_properties(N, port, "a1.sinks.k1.ssl = true\n"),
    )
    .expect("write config");
    let trust_store = format!("-Djavax.net.ssl.trustStore={}", certs.truststore.display());
    let trust_password = format!("-Djavax.net.ssl.trustStorePassword={PASSWORD}");
    let sender = AgentProcess::start_with(
        &sender_dir,
        &sender_conf,
        "a1",
        "global-ssl-sender",
        &[&trust_store, &trust_password],
    );

    let out_dir = dir.path().join("out");
    receiver.wait_for("every event in the receiver's output", |_| {
        crate::agent_proc::complete_lines(&out_dir)
            .values()
            .sum::<usize>()
            >= N
    });
    let lines = crate::agent_proc::complete_lines(&out_dir);
    assert_eq!(lines.len(), N, "distinct events");
    assert!(lines.values().all(|&c| c == 1), "duplicates");
    let (st, log) = sender.terminate();
    assert!(st.success(), "{log}");
    assert!(!log.contains("property not used"), "{log}");
    let (st, log) = receiver.terminate();
    assert!(st.success(), "{log}");
}
