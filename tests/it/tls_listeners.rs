//! TLS on every listener flumen offers it on (the same set as Apache Flume 1.11: avro,
//! thrift, http, syslogtcp, multiport_syslogtcp), with Flume's keystore keys (`ssl`,
//! `keystore`, `keystore-password`, `keystore-type`). For each, against a real `flumen agent`
//! writing through a file channel to file_roll:
//!
//! - a plaintext client speaking the source's own protocol is closed, no event of it is
//!   accepted, and the agent's log names its address in a warning;
//! - a TLS client whose truststore does not hold the server's certificate fails its handshake,
//!   no event is accepted, and the log names it too;
//! - a good TLS client (flumen's own avro/thrift sink, or a rustls stream speaking HTTP or
//!   syslog) delivers its event afterwards: the positive control.
//!
//! No listener asks for client certificates (`with_no_client_auth`), as none of Flume's does
//! (its `SslContextAwareAbstractSource` never sets need/want client auth): TLS here gives the
//! client privacy and the server's identity, not the client's.
//!
//! And the thrift sink (the avro sink's twin is in avro_tls) that does not trust its peer's
//! certificate fails each connection and keeps every event in its channel.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use flumen::avro::tls::{ClientTls, Filters, Secret, Store, Trust};
use flumen::Event;

use crate::agent_proc::{complete_lines, file_channel_to_file_roll, free_port, AgentProcess};
use crate::avro_sink::{sink_counter, wait_for};
use crate::avro_tls::{make_certs, Certs, PASSWORD};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Avro,
    Thrift,
    Http,
    SyslogTcp,
    Multiport,
}

/// The source's lines: `kind` on 127.0.0.1:`port` with TLS from `certs`.
fn source_lines(kind: Kind, port: u16, certs: &Certs) -> String {
    let (ty, addr) = match kind {
        Kind::Avro => (
            "avro",
            format!("bind = 127.0.0.1\na1.sources.r1.port = {port}"),
        ),
        Kind::Thrift => (
            "thrift",
            format!("bind = 127.0.0.1\na1.sources.r1.port = {port}"),
        ),
        Kind::Http => (
            "http",
            format!("bind = 127.0.0.1\na1.sources.r1.port = {port}"),
        ),
        Kind::SyslogTcp => (
            "syslogtcp",
            format!("host = 127.0.0.1\na1.sources.r1.port = {port}"),
        ),
        Kind::Multiport => (
            "multiport_syslogtcp",
            format!("host = 127.0.0.1\na1.sources.r1.ports = {port}"),
        ),
    };
    format!(
        "a1.sources = r1\n\
         a1.channels = c1\n\
         a1.sinks = k1\n\
         a1.sources.r1.type = {ty}\n\
         a1.sources.r1.{addr}\n\
         a1.sources.r1.channels = c1\n\
         a1.sources.r1.ssl = true\n\
         a1.sources.r1.keystore = {ks}\n\
         a1.sources.r1.keystore-password = {PASSWORD}\n\
         a1.sources.r1.keystore-type = PKCS12\n",
        ks = certs.keystore.display()
    )
}

/// What `kind`'s clients send in clear for one event with body `marker`.
fn request(kind: Kind, marker: &str) -> Vec<u8> {
    let event = Event::new(marker.as_bytes().to_vec());
    match kind {
        Kind::Avro => {
            let mut client = flumen::avro::ClientConn::default();
            client.append_batch(&[event]).expect("encode avro").1
        }
        Kind::Thrift => flumen::thrift::message::encode_append_batch(
            flumen::thrift::Protocol::Compact,
            1,
            &[event],
        )
        .expect("encode thrift"),
        Kind::Http => {
            let body = format!("[{{\"headers\":{{}},\"body\":\"{marker}\"}}]");
            format!(
                "POST / HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
                 Content-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .into_bytes()
        }
        Kind::SyslogTcp | Kind::Multiport => {
            format!("<13>Jan  1 00:00:00 host {marker}\n").into_bytes()
        }
    }
}

/// A client TLS configuration trusting `truststore`.
fn client_tls(truststore: &Path) -> Arc<rustls::ClientConfig> {
    flumen::avro::tls::client_config(&ClientTls {
        trust: Trust::Store(Store {
            path: truststore.to_path_buf(),
            password: Some(Secret(PASSWORD.into())),
            store_type: None,
        }),
        verify_hostname: None,
        filters: Filters::default(),
    })
    .expect("client TLS config")
}

/// Sends `bytes` in clear and reads until the server closes; panics if it answers in its own
/// protocol (an Avro or Thrift reply, an HTTP status line).
fn plaintext_is_closed(port: u16, bytes: &[u8]) -> SocketAddr {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let local = s.local_addr().expect("local addr");
    let _ = s.write_all(bytes);
    s.set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    let mut got = Vec::new();
    match s.read_to_end(&mut got) {
        Ok(_) => {}
        Err(e) => assert!(
            matches!(
                e.kind(),
                std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
            ),
            "the connection stayed open: {e}"
        ),
    }
    // At most a TLS alert record (content type 21) comes back, never an answer in clear.
    assert!(
        got.is_empty() || got[0] == 21,
        "an answer in clear: {:?}",
        String::from_utf8_lossy(&got)
    );
    local
}

/// A TLS handshake with a client trusting `truststore`; returns the stream and its local
/// address, or the handshake's error.
fn tls_connect(
    port: u16,
    truststore: &Path,
) -> (
    SocketAddr,
    Result<rustls::StreamOwned<rustls::ClientConnection, TcpStream>, rustls::Error>,
) {
    let config = client_tls(truststore);
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    let conn = rustls::ClientConnection::new(config, name).expect("client connection");
    let sock = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    sock.set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    let local = sock.local_addr().expect("local addr");
    let mut stream = rustls::StreamOwned::new(conn, sock);
    while stream.conn.is_handshaking() {
        if let Err(e) = stream.conn.complete_io(&mut stream.sock) {
            let inner = e
                .get_ref()
                .and_then(|i| i.downcast_ref::<rustls::Error>())
                .cloned()
                .unwrap_or_else(|| rustls::Error::General(e.to_string()));
            return (local, Err(inner));
        }
    }
    (local, Ok(stream))
}

/// The good client: delivers one event with body `marker` over TLS.
fn deliver_over_tls(kind: Kind, port: u16, certs: &Certs, marker: &str) {
    let event = Event::new(marker.as_bytes().to_vec());
    match kind {
        Kind::Avro => {
            let mut sink = flumen::sink::avro::AvroSink::new(
                "good",
                flumen::sink::avro::AvroSinkOptions {
                    hostname: "127.0.0.1".into(),
                    port,
                    connect_timeout: Duration::from_secs(30),
                    request_timeout: Duration::from_secs(30),
                    reset_connection_interval: None,
                    deflate: None,
                    tls: Some(client_tls(&certs.truststore)),
                },
            );
            flumen::sink::Sink::process(&mut sink, &[event]).expect("avro over TLS");
        }
        Kind::Thrift => {
            let mut sink = thrift_sink(port, Some(client_tls(&certs.truststore)));
            flumen::sink::Sink::process(&mut sink, &[event]).expect("thrift over TLS");
        }
        Kind::Http => {
            let (_, stream) = tls_connect(port, &certs.truststore);
            let mut stream = stream.expect("TLS handshake with the http source");
            stream
                .write_all(&request(kind, marker))
                .expect("send over TLS");
            let mut answer = [0u8; 64];
            let n = stream.read(&mut answer).expect("read the answer");
            let answer = String::from_utf8_lossy(&answer[..n]);
            assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        }
        Kind::SyslogTcp | Kind::Multiport => {
            let (_, stream) = tls_connect(port, &certs.truststore);
            let mut stream = stream.expect("TLS handshake with the syslog source");
            stream
                .write_all(&request(kind, marker))
                .expect("send over TLS");
            stream.conn.send_close_notify();
            let _ = stream.flush();
        }
    }
}

fn thrift_sink(
    port: u16,
    tls: Option<Arc<rustls::ClientConfig>>,
) -> flumen::sink::thrift::ThriftSink {
    flumen::sink::thrift::ThriftSink::new(
        "k1",
        flumen::sink::thrift::ThriftSinkOptions {
            hostname: "127.0.0.1".into(),
            port,
            protocol: flumen::thrift::Protocol::Compact,
            connect_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(30),
            reset_connection_interval: None,
            tls,
        },
    )
}

/// Starts the agent: `kind` with TLS -> file channel -> file_roll into `dir/out`.
fn start_agent(dir: &Path, kind: Kind, certs: &Certs) -> (AgentProcess, u16) {
    let port = free_port();
    let conf = dir.join("agent.properties");
    let mut text = source_lines(kind, port, certs);
    text.push_str(&file_channel_to_file_roll(dir, 1));
    std::fs::write(&conf, text).expect("write config");
    let mut agent = AgentProcess::start(dir, &conf, "a1", &format!("{kind:?}"));
    drop(agent.connect(port));
    (agent, port)
}

fn lines_with(out: &Path, marker: &str) -> usize {
    complete_lines(out)
        .iter()
        .filter(|(l, _)| l.contains(marker))
        .map(|(_, c)| c)
        .sum()
}

fn a_warning_names(agent: &mut AgentProcess, peer: SocketAddr, what: &str) {
    let peer = peer.to_string();
    agent.wait_for(what, |a| {
        a.log()
            .lines()
            .any(|l| l.contains("WARN") && l.contains(&peer))
    });
}

fn refuses_plaintext_and_untrusted_clients(kind: Kind) {
    let dir = tempfile::tempdir().expect("tempdir");
    let certs = make_certs(dir.path());
    let (mut agent, port) = start_agent(dir.path(), kind, &certs);
    let out: PathBuf = dir.path().join("out");

    // (a) A plaintext client speaking the protocol.
    let plain = plaintext_is_closed(port, &request(kind, "plain-marker"));
    a_warning_names(&mut agent, plain, "a warning naming the plaintext peer");

    // (b) A TLS client that does not trust the server's certificate.
    let (untrusting, result) = tls_connect(port, &certs.other_truststore);
    let Err(e) = result else {
        panic!("the handshake with an untrusting client succeeded")
    };
    assert!(
        matches!(
            e,
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer)
                | rustls::Error::InvalidCertificate(_)
        ),
        "{e:?}"
    );
    a_warning_names(
        &mut agent,
        untrusting,
        "a warning naming the untrusting peer",
    );

    // The positive control, after both: a good TLS client is served.
    deliver_over_tls(kind, port, &certs, "tls-marker");
    agent.wait_for("the TLS client's event in the output", |_| {
        lines_with(&out, "tls-marker") == 1
    });
    let (st, log) = agent.terminate();
    assert!(st.success(), "{log}");
    assert_eq!(
        lines_with(&out, "plain-marker"),
        0,
        "a plaintext event was accepted"
    );
    assert_eq!(lines_with(&out, "tls-marker"), 1);
    assert!(!log.contains("panicked"), "{log}");
}

#[test]
fn avro_source_refuses_plaintext_and_untrusted_clients() {
    refuses_plaintext_and_untrusted_clients(Kind::Avro);
}

#[test]
fn thrift_source_refuses_plaintext_and_untrusted_clients() {
    refuses_plaintext_and_untrusted_clients(Kind::Thrift);
}

#[test]
fn http_source_refuses_plaintext_and_untrusted_clients() {
    refuses_plaintext_and_untrusted_clients(Kind::Http);
}

#[test]
fn syslogtcp_source_refuses_plaintext_and_untrusted_clients() {
    refuses_plaintext_and_untrusted_clients(Kind::SyslogTcp);
}

#[test]
fn multiport_syslogtcp_source_refuses_plaintext_and_untrusted_clients() {
    refuses_plaintext_and_untrusted_clients(Kind::Multiport);
}

/// A thrift sink whose truststore does not hold the source's certificate: the sink says so
/// (not retryable: only a configuration change helps), and an agent with it keeps every
/// event in its channel.
#[test]
fn an_untrusting_thrift_sink_fails_and_keeps_its_events() {
    const N: usize = 300;
    let dir = tempfile::tempdir().expect("tempdir");
    let certs = make_certs(dir.path());
    let (receiver, port) = start_agent(dir.path(), Kind::Thrift, &certs);

    let mut sink = thrift_sink(port, Some(client_tls(&certs.other_truststore)));
    let e = flumen::sink::Sink::process(&mut sink, &[Event::new(b"x".to_vec())])
        .expect_err("not trusted");
    let msg = e.to_string();
    assert!(msg.contains(&port.to_string()), "names the peer: {msg}");
    assert!(msg.contains("truststore"), "says what to set: {msg}");

    let text = format!(
        "a1.sources = r1\n\
         a1.channels = c1\n\
         a1.sinks = k1\n\
         a1.sources.r1.type = seq\n\
         a1.sources.r1.totalEvents = {N}\n\
         a1.sources.r1.channels = c1\n\
         a1.channels.c1.type = memory\n\
         a1.channels.c1.capacity = 10000\n\
         a1.sinks.k1.type = thrift\n\
         a1.sinks.k1.hostname = 127.0.0.1\n\
         a1.sinks.k1.port = {port}\n\
         a1.sinks.k1.connect-timeout = 5000\n\
         a1.sinks.k1.ssl = true\n\
         a1.sinks.k1.truststore = {ts}\n\
         a1.sinks.k1.truststore-password = {PASSWORD}\n\
         a1.sinks.k1.truststore-type = PKCS12\n\
         a1.sinks.k1.channel = c1\n",
        ts = certs.other_truststore.display()
    );
    let (cfg, warnings) = flumen::agent::config::parse(&text, "sender.conf", "a1").expect("config");
    assert!(warnings.is_empty(), "{warnings:?}");
    let a = flumen::agent::Agent::start(&cfg).expect("start the sending agent");
    let ch = Arc::clone(&a.channels()[0]);
    wait_for("two failed connections", || {
        sink_counter(&a, "ConnectionFailedCount") >= 2
    });
    wait_for("the seq source to put everything", || {
        ch.stats().put_successes == N as u64
    });
    assert_eq!(ch.stats().size, N as u64, "{:?}", ch.stats());
    assert_eq!(sink_counter(&a, "EventDrainSuccessCount"), 0);
    a.shutdown().expect("shutdown the sender");
    let (st, log) = receiver.terminate();
    assert!(st.success(), "{log}");
    assert_eq!(
        lines_with(&dir.path().join("out"), ""),
        0,
        "nothing delivered"
    );
}
