//! A blocking Thrift RPC client connection over one `std::net::TcpStream` (optionally TLS):
//! what the `thrift` sink uses. Connects with a timeout, sends one `appendBatch` at a time and
//! waits for its reply with a deadline, as Flume's `ThriftRpcClient` does.
//!
//! Every [`ThriftRpcError`] names the peer as `host:port` and what was being done. After any
//! error the connection should be dropped: a late reply would be read as the next call's.
//! This is the one module of [`crate::thrift`] that does I/O.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, StreamOwned};

use super::message::{decode_reply, encode_append_batch, Method, Reply};
use super::{FrameDecoder, Protocol, Status, ThriftError};
use crate::event::Event;

/// Largest reply accepted (a reply is a few bytes; an exception carries a message).
const MAX_REPLY_BYTES: u32 = 1 << 20;

/// Why a connection or a call failed. Every message names the peer (`host:port`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ThriftRpcError {
    /// The host name did not resolve.
    #[error("resolving {peer}: {detail}")]
    Resolve { peer: String, detail: String },
    /// No connection within `connect-timeout`.
    #[error("connecting to {peer}: no answer within {timeout:?} (connect-timeout)")]
    ConnectTimeout { peer: String, timeout: Duration },
    /// The connection was refused, unreachable, ...
    #[error("connecting to {peer}: {source}")]
    Connect {
        peer: String,
        source: std::io::Error,
    },
    /// The TLS handshake failed (an untrusted certificate, a peer without TLS).
    #[error("TLS with {peer}: {detail}")]
    Tls { peer: String, detail: String },
    /// The server answered FAILED, ERROR or UNKNOWN.
    #[error("{peer}: the thrift source answered {} to {what}", .status.name())]
    Refused {
        peer: String,
        status: Status,
        what: String,
    },
    /// The server answered a Thrift exception (it refused the call as such).
    #[error("{peer}: the thrift source answered an exception to {what}: {message}")]
    Exception {
        peer: String,
        what: String,
        message: String,
    },
    /// No reply within `request-timeout`.
    #[error("{peer}: no answer to {what} within {timeout:?} (request-timeout)")]
    Timeout {
        peer: String,
        what: String,
        timeout: Duration,
    },
    /// The server closed the connection before answering.
    #[error("{peer}: the thrift source closed the connection before answering {what}")]
    Closed { peer: String, what: String },
    /// Another I/O error.
    #[error("{peer}: {context}: {source}")]
    Io {
        peer: String,
        context: String,
        source: std::io::Error,
    },
    /// The reply could not be read, or the call could not be encoded.
    #[error("{peer}: {context}: {source}")]
    Protocol {
        peer: String,
        context: String,
        source: ThriftError,
    },
}

enum Stream {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Stream {
    fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(t) => &t.sock,
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(t) => t.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(t) => t.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(t) => t.flush(),
        }
    }
}

/// One blocking connection to a thrift source; see the module docs.
pub struct BlockingClient {
    stream: Stream,
    protocol: Protocol,
    peer: String,
    request_timeout: Duration,
    /// The last call's sequence id (Thrift Java's clients count from 1).
    seqid: i32,
    decoder: FrameDecoder,
    buf: BytesMut,
}

impl BlockingClient {
    /// Resolves `host` and connects to the first address that answers within
    /// `connect_timeout`; with `tls`, does the handshake too (within the same timeout).
    pub fn connect(
        host: &str,
        port: u16,
        protocol: Protocol,
        connect_timeout: Duration,
        request_timeout: Duration,
        tls: Option<&Arc<ClientConfig>>,
    ) -> Result<BlockingClient, ThriftRpcError> {
        let peer = format!("{host}:{port}");
        let addrs: Vec<SocketAddr> = (host, port)
            .to_socket_addrs()
            .map_err(|e| ThriftRpcError::Resolve {
                peer: peer.clone(),
                detail: e.to_string(),
            })?
            .collect();
        let mut last = None;
        for addr in &addrs {
            match TcpStream::connect_timeout(addr, connect_timeout) {
                Ok(tcp) => {
                    let io = |source| ThriftRpcError::Io {
                        peer: peer.clone(),
                        context: "setting up the connection".into(),
                        source,
                    };
                    tcp.set_nodelay(true).map_err(io)?;
                    tcp.set_write_timeout(Some(request_timeout)).map_err(io)?;
                    let stream = match tls {
                        None => Stream::Plain(tcp),
                        Some(cfg) => handshake(host, &peer, cfg, tcp, connect_timeout)?,
                    };
                    return Ok(BlockingClient {
                        stream,
                        protocol,
                        peer,
                        request_timeout,
                        seqid: 0,
                        decoder: FrameDecoder::new(MAX_REPLY_BYTES),
                        buf: BytesMut::new(),
                    });
                }
                Err(e) => last = Some(e),
            }
        }
        Err(match last {
            None => ThriftRpcError::Resolve {
                peer,
                detail: "no addresses".into(),
            },
            Some(e) if e.kind() == ErrorKind::TimedOut => ThriftRpcError::ConnectTimeout {
                peer,
                timeout: connect_timeout,
            },
            Some(source) => ThriftRpcError::Connect { peer, source },
        })
    }

    /// The peer as `host:port`.
    pub fn peer(&self) -> &str {
        &self.peer
    }

    /// Sends one `appendBatch` and waits for its reply; anything but OK is an error. `what`
    /// describes the call for messages (`appendBatch of 100 events`).
    pub fn append_batch(&mut self, events: &[Event], what: &str) -> Result<(), ThriftRpcError> {
        self.seqid = self.seqid.wrapping_add(1);
        let seqid = self.seqid;
        let frame = encode_append_batch(self.protocol, seqid, events).map_err(|source| {
            ThriftRpcError::Protocol {
                peer: self.peer.clone(),
                context: format!("encoding {what}"),
                source,
            }
        })?;
        self.stream
            .write_all(&frame)
            .and_then(|()| self.stream.flush())
            .map_err(|e| {
                if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) {
                    self.timed_out(what)
                } else {
                    self.io(&format!("sending {what}"), e)
                }
            })?;
        let reply = self.read_frame(what)?;
        match decode_reply(self.protocol, reply, Method::AppendBatch, seqid) {
            Ok(Reply::Status(Status::Ok)) => Ok(()),
            Ok(Reply::Status(status)) => Err(ThriftRpcError::Refused {
                peer: self.peer.clone(),
                status,
                what: what.to_string(),
            }),
            Ok(Reply::Exception { message, .. }) => Err(ThriftRpcError::Exception {
                peer: self.peer.clone(),
                what: what.to_string(),
                message,
            }),
            Err(source) => Err(ThriftRpcError::Protocol {
                peer: self.peer.clone(),
                context: format!(
                    "bad reply to {what} (is it a thrift source with the same protocol?)"
                ),
                source,
            }),
        }
    }

    /// Reads until one whole reply frame is in, or the request timeout passes.
    fn read_frame(&mut self, what: &str) -> Result<bytes::Bytes, ThriftRpcError> {
        let deadline = Instant::now() + self.request_timeout;
        let mut chunk = [0u8; 4096];
        loop {
            match self.decoder.decode(&mut self.buf) {
                Ok(Some(f)) => return Ok(f),
                Ok(None) => {}
                Err(e) => {
                    return Err(ThriftRpcError::Protocol {
                        peer: self.peer.clone(),
                        context: format!("bad reply to {what} (is it a thrift source?)"),
                        source: e.into(),
                    })
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(self.timed_out(what));
            }
            self.stream
                .tcp()
                .set_read_timeout(Some(left))
                .map_err(|e| self.io("setting the read timeout", e))?;
            match self.stream.read(&mut chunk) {
                Ok(0) => {
                    return Err(ThriftRpcError::Closed {
                        peer: self.peer.clone(),
                        what: what.to_string(),
                    })
                }
                Ok(n) => self
                    .buf
                    .extend_from_slice(chunk.get(..n).unwrap_or_default()),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                // A socket timeout, or rustls waiting for the rest of a record.
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == ErrorKind::UnexpectedEof => {
                    return Err(ThriftRpcError::Closed {
                        peer: self.peer.clone(),
                        what: what.to_string(),
                    })
                }
                Err(e) => return Err(self.io(&format!("reading the reply to {what}"), e)),
            }
        }
    }

    /// Shuts the connection down; errors are ignored, as the peer may be gone already.
    pub fn close(mut self) {
        if let Stream::Tls(t) = &mut self.stream {
            t.conn.send_close_notify();
            let _ = t.flush();
        }
        let _ = self.stream.tcp().shutdown(std::net::Shutdown::Both);
    }

    fn io(&self, context: &str, source: std::io::Error) -> ThriftRpcError {
        ThriftRpcError::Io {
            peer: self.peer.clone(),
            context: context.to_string(),
            source,
        }
    }

    fn timed_out(&self, what: &str) -> ThriftRpcError {
        ThriftRpcError::Timeout {
            peer: self.peer.clone(),
            what: what.to_string(),
            timeout: self.request_timeout,
        }
    }
}

/// The TLS handshake over `tcp`, within `timeout`.
fn handshake(
    host: &str,
    peer: &str,
    cfg: &Arc<ClientConfig>,
    tcp: TcpStream,
    timeout: Duration,
) -> Result<Stream, ThriftRpcError> {
    let tls_err = |detail: String| ThriftRpcError::Tls {
        peer: peer.to_string(),
        detail,
    };
    let name = ServerName::try_from(host.to_string())
        .map_err(|e| tls_err(format!("`{host}` cannot be used as a TLS server name: {e}")))?;
    let conn = ClientConnection::new(Arc::clone(cfg), name)
        .map_err(|e| tls_err(format!("starting TLS: {e}")))?;
    let mut s = StreamOwned::new(conn, tcp);
    let deadline = Instant::now() + timeout;
    while s.conn.is_handshaking() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(tls_err(format!(
                "no TLS handshake within {timeout:?} (connect-timeout): is the thrift source set with `ssl = true`?"
            )));
        }
        s.sock
            .set_read_timeout(Some(left))
            .map_err(|e| tls_err(format!("setting the read timeout: {e}")))?;
        match s.conn.complete_io(&mut s.sock) {
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::Interrupted | ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == ErrorKind::UnexpectedEof => {
                return Err(tls_err(
                    "the peer closed the connection during the TLS handshake: is the thrift source set with `ssl = true`?".into(),
                ))
            }
            Err(e) => {
                let hint = match e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
                    Some(rustls::Error::InvalidCertificate(_)) => {
                        ": its certificate is not trusted; set truststore to a store holding its CA (or the certificate itself), or trust-all-certs = true"
                    }
                    Some(rustls::Error::InvalidMessage(_)) => {
                        ": the peer does not speak TLS; is the thrift source set with `ssl = true`?"
                    }
                    _ => "",
                };
                return Err(tls_err(format!("handshake: {e}{hint}")));
            }
        }
    }
    Ok(Stream::Tls(Box::new(s)))
}
