//! A blocking Avro RPC client connection over one `std::net::TcpStream`: what
//! `flumen avro-client` and the `avro` sink share. Drives the sans-I/O [`ClientConn`]: connects
//! with a timeout, sends one `appendBatch` at a time and waits for its answer with a deadline
//! (writing the resent call when the server answers the handshake NONE).
//!
//! The socket is a [`Transport`]: with `compression-type = deflate` and/or TLS (`ssl = true`)
//! layered as Flume 1.11 does. The TLS handshake is done in [`BlockingClient::connect_tls`],
//! bounded by the connect timeout, so an untrusted certificate is a connection failure that
//! says what to set.
//!
//! Every [`RpcError`] names the peer as `host:port` and what was being done. After any error
//! the connection should be dropped: a late answer would be read as the next call's.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, StreamOwned};

use super::tls::explain_client_error;
use super::transport::{into_zlib_error, tls_error, zlib_error, Transport, Wire};
use super::zlib::ZlibError;
use super::{AvroError, ClientConn, ClientItem, Status};
use crate::event::Event;

/// Timeouts of one connection, with the names the user knows them by (for messages).
#[derive(Clone, Debug)]
pub struct Timeouts {
    /// How long to wait for the TCP connection.
    pub connect: Duration,
    /// How long to wait for the answer to one call (and for a write to go through).
    pub request: Duration,
    /// The option or key that sets `connect`, e.g. `--connect-timeout`.
    pub connect_name: &'static str,
    /// The option or key that sets `request`.
    pub request_name: &'static str,
}

/// Why a connection or a call failed. Every message names the peer (`host:port`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RpcError {
    /// The host name did not resolve.
    #[error("resolving {peer}: {detail}")]
    Resolve { peer: String, detail: String },
    /// No connection within the connect timeout.
    #[error("connecting to {peer}{via}: no answer within {timeout:?} ({name})")]
    ConnectTimeout {
        peer: String,
        via: String,
        timeout: Duration,
        name: &'static str,
    },
    /// The connection was refused, unreachable, ...
    #[error("connecting to {peer}{via}: {source}")]
    Connect {
        peer: String,
        via: String,
        source: std::io::Error,
    },
    /// The server answered FAILED or UNKNOWN.
    #[error("{peer}: the avro source answered {status} to {what}")]
    Refused {
        peer: String,
        status: &'static str,
        what: String,
    },
    /// The server answered an Avro error.
    #[error("{peer}: the avro source answered an error to {what}: {message}")]
    ErrorResponse {
        peer: String,
        what: String,
        message: String,
    },
    /// No answer within the request timeout.
    #[error("{peer}: no answer to {what} within {timeout:?} ({name})")]
    Timeout {
        peer: String,
        what: String,
        timeout: Duration,
        name: &'static str,
    },
    /// The server closed the connection before answering.
    #[error("{peer}: the avro source closed the connection before answering {what}")]
    Closed { peer: String, what: String },
    /// Another I/O error.
    #[error("{peer}: {context}: {source}")]
    Io {
        peer: String,
        context: String,
        source: std::io::Error,
    },
    /// The bytes were not a valid answer, or the call could not be encoded.
    #[error("{peer}: {context}: {source}")]
    Protocol {
        peer: String,
        context: String,
        source: AvroError,
    },
    /// The compressed stream (`compression-type = deflate`) was bad.
    #[error("{peer}: {context}: {source}")]
    Zlib {
        peer: String,
        context: String,
        source: ZlibError,
    },
    /// TLS could not be set up with the peer (an untrusted certificate, a handshake error).
    /// `detail` names the peer itself ("the certificate of host:port is not trusted ...").
    #[error("{detail}")]
    Tls { peer: String, detail: String },
    /// An answer to another call than the one waited for.
    #[error("{peer}: unexpected answer while waiting for call {serial} ({what}): {item}")]
    Unexpected {
        peer: String,
        serial: u32,
        what: String,
        item: String,
    },
}

/// One blocking connection to an avro source; see the module docs.
pub struct BlockingClient {
    stream: Transport<ClientConnection>,
    conn: ClientConn,
    peer: String,
    timeouts: Timeouts,
    items: Vec<ClientItem>,
    buf: Vec<u8>,
}

impl BlockingClient {
    /// Resolves `host` and connects to the first address that answers within the connect
    /// timeout.
    pub fn connect(host: &str, port: u16, timeouts: &Timeouts) -> Result<Self, RpcError> {
        Self::connect_with(host, port, timeouts, None)
    }

    /// As [`BlockingClient::connect`], with `compression-type = deflate` at level `deflate`
    /// when `Some` (the server must be set alike: there is no negotiation).
    pub fn connect_with(
        host: &str,
        port: u16,
        timeouts: &Timeouts,
        deflate: Option<u32>,
    ) -> Result<Self, RpcError> {
        Self::connect_tls(host, port, timeouts, deflate, None)
    }

    /// As [`BlockingClient::connect_with`], with TLS (`ssl = true`) when `tls` is `Some`: the
    /// handshake is done here, within the connect timeout. `host` is the name the certificate
    /// is checked against (when the configuration checks names) and sent as SNI.
    pub fn connect_tls(
        host: &str,
        port: u16,
        timeouts: &Timeouts,
        deflate: Option<u32>,
        tls: Option<&Arc<ClientConfig>>,
    ) -> Result<Self, RpcError> {
        let peer = format!("{host}:{port}");
        let addrs: Vec<SocketAddr> = (host, port)
            .to_socket_addrs()
            .map_err(|e| RpcError::Resolve {
                peer: peer.clone(),
                detail: e.to_string(),
            })?
            .collect();
        let mut last = None;
        for addr in &addrs {
            match TcpStream::connect_timeout(addr, timeouts.connect) {
                Ok(stream) => {
                    let io = |e| RpcError::Io {
                        peer: peer.clone(),
                        context: "setting up the connection".into(),
                        source: e,
                    };
                    stream.set_nodelay(true).map_err(io)?;
                    stream
                        .set_write_timeout(Some(timeouts.request))
                        .map_err(io)?;
                    let wire = Wire::new(stream, deflate);
                    let stream = match tls {
                        None => Transport::Plain(wire),
                        Some(cfg) => Self::handshake(host, &peer, cfg, wire, timeouts)?,
                    };
                    return Ok(BlockingClient {
                        stream,
                        conn: ClientConn::default(),
                        peer,
                        timeouts: timeouts.clone(),
                        items: Vec::new(),
                        buf: vec![0; 64 * 1024],
                    });
                }
                Err(e) => last = Some((addr, e)),
            }
        }
        let Some((addr, e)) = last else {
            return Err(RpcError::Resolve {
                peer,
                detail: "no addresses".into(),
            });
        };
        // The resolved address only when it says more than `peer` does.
        let via = if addr.to_string() == peer {
            String::new()
        } else {
            format!(" ({addr})")
        };
        Err(if e.kind() == ErrorKind::TimedOut {
            RpcError::ConnectTimeout {
                peer,
                via,
                timeout: timeouts.connect,
                name: timeouts.connect_name,
            }
        } else {
            RpcError::Connect {
                peer,
                via,
                source: e,
            }
        })
    }

    /// Does the TLS handshake over `wire`, waiting at most the connect timeout.
    fn handshake(
        host: &str,
        peer: &str,
        cfg: &Arc<ClientConfig>,
        wire: Wire,
        timeouts: &Timeouts,
    ) -> Result<Transport<ClientConnection>, RpcError> {
        let tls_err = |detail: String| RpcError::Tls {
            peer: peer.to_string(),
            detail,
        };
        let name = ServerName::try_from(host.to_string()).map_err(|e| {
            tls_err(format!(
                "{peer}: `{host}` cannot be used as a TLS server name: {e}"
            ))
        })?;
        let conn = ClientConnection::new(Arc::clone(cfg), name)
            .map_err(|e| tls_err(format!("{peer}: starting TLS: {e}")))?;
        let mut t = Transport::Tls(Box::new(StreamOwned::new(conn, wire)));
        let deadline = Instant::now() + timeouts.connect;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(tls_err(format!(
                    "{peer}: no TLS handshake within {:?} ({}): is its avro source set with `ssl = true`?",
                    timeouts.connect, timeouts.connect_name
                )));
            }
            t.tcp()
                .set_read_timeout(Some(left))
                .map_err(|e| RpcError::Io {
                    peer: peer.to_string(),
                    context: "setting the read timeout".into(),
                    source: e,
                })?;
            match t.complete_handshake() {
                Ok(()) => return Ok(t),
                Err(e) if matches!(e.kind(), ErrorKind::Interrupted) => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) => {
                    return Err(tls_err(match (tls_error(&e), zlib_error(&e)) {
                        (Some(te), _) => explain_client_error(peer, te),
                        (None, Some(z)) => format!(
                            "{peer}: bad compressed stream during the TLS handshake ({z}): is its avro source set with the same `compression-type`?"
                        ),
                        (None, None) if e.kind() == ErrorKind::UnexpectedEof => {
                            format!("{peer} closed the connection during the TLS handshake: is its avro source set with `ssl = true` and the same `compression-type`?")
                        }
                        (None, None) => format!("{peer}: TLS handshake: {e}"),
                    }))
                }
            }
        }
    }

    /// The peer as `host:port`.
    pub fn peer(&self) -> &str {
        &self.peer
    }

    /// Sends one `appendBatch` and waits for its answer; anything but OK is an error. `what`
    /// describes the call for messages (`appendBatch of 100 events`).
    pub fn append_batch(&mut self, events: &[Event], what: &str) -> Result<(), RpcError> {
        let (mut serial, frame) =
            self.conn
                .append_batch(events)
                .map_err(|e| RpcError::Protocol {
                    peer: self.peer.clone(),
                    context: format!("encoding {what}"),
                    source: e,
                })?;
        self.write(&frame, what)?;
        let deadline = Instant::now() + self.timeouts.request;
        loop {
            for item in std::mem::take(&mut self.items) {
                match item {
                    ClientItem::Resent {
                        replaces,
                        serial: new,
                        frame,
                    } if replaces == serial => {
                        serial = new;
                        self.write(&frame, what)?;
                    }
                    ClientItem::Response { serial: s, result } if s == serial => {
                        return match result {
                            Ok(Status::Ok) => Ok(()),
                            Ok(status) => Err(RpcError::Refused {
                                peer: self.peer.clone(),
                                status: status_name(status),
                                what: what.to_string(),
                            }),
                            Err(message) => Err(RpcError::ErrorResponse {
                                peer: self.peer.clone(),
                                what: what.to_string(),
                                message,
                            }),
                        };
                    }
                    other => {
                        return Err(RpcError::Unexpected {
                            peer: self.peer.clone(),
                            serial,
                            what: what.to_string(),
                            item: format!("{other:?}"),
                        })
                    }
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
            let n = match self.stream.read(&mut self.buf) {
                Ok(0) => {
                    return Err(RpcError::Closed {
                        peer: self.peer.clone(),
                        what: what.to_string(),
                    })
                }
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    // rustls answers WouldBlock when a read returned only part of a record:
                    // wait on until the deadline.
                    if Instant::now() >= deadline {
                        return Err(self.timed_out(what));
                    }
                    continue;
                }
                // The peer closed without TLS's close_notify.
                Err(e) if e.kind() == ErrorKind::UnexpectedEof => {
                    return Err(RpcError::Closed {
                        peer: self.peer.clone(),
                        what: what.to_string(),
                    })
                }
                Err(e) => return Err(self.read_error(what, e)),
            };
            let mut items = std::mem::take(&mut self.items);
            let fed = self.conn.feed(&self.buf[..n], &mut items);
            self.items = items;
            fed.map_err(|e| RpcError::Protocol {
                peer: self.peer.clone(),
                context: format!("bad answer to {what} (is it an avro source?)"),
                source: e,
            })?;
        }
    }

    /// Shuts the connection down (both directions); errors are ignored, as the peer may be
    /// gone already.
    pub fn close(self) {
        self.stream.close();
    }

    fn write(&mut self, frame: &[u8], what: &str) -> Result<(), RpcError> {
        let written = self
            .stream
            .write_all(frame)
            .and_then(|()| self.stream.flush());
        written.map_err(|e| {
            if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) {
                return self.timed_out(what);
            }
            match into_zlib_error(e) {
                Ok(z) => RpcError::Zlib {
                    peer: self.peer.clone(),
                    context: format!("sending {what}"),
                    source: z,
                },
                Err(e) => self.io(&format!("sending {what}"), e),
            }
        })
    }

    /// A read error other than a timeout or a close, classified for the message.
    fn read_error(&self, what: &str, e: std::io::Error) -> RpcError {
        let e = match into_zlib_error(e) {
            Ok(z) => {
                return RpcError::Zlib {
                    peer: self.peer.clone(),
                    context: format!("bad answer to {what}"),
                    source: z,
                }
            }
            Err(e) => e,
        };
        if let Some(t) = tls_error(&e) {
            return RpcError::Tls {
                peer: self.peer.clone(),
                detail: format!("{}: TLS error reading the answer to {what}: {t}", self.peer),
            };
        }
        self.io(&format!("reading the answer to {what}"), e)
    }

    fn io(&self, context: &str, source: std::io::Error) -> RpcError {
        RpcError::Io {
            peer: self.peer.clone(),
            context: context.to_string(),
            source,
        }
    }

    fn timed_out(&self, what: &str) -> RpcError {
        RpcError::Timeout {
            peer: self.peer.clone(),
            what: what.to_string(),
            timeout: self.timeouts.request,
            name: self.timeouts.request_name,
        }
    }
}

/// The status as Flume spells it.
pub fn status_name(s: Status) -> &'static str {
    match s {
        Status::Ok => "OK",
        Status::Failed => "FAILED",
        Status::Unknown => "UNKNOWN",
    }
}
