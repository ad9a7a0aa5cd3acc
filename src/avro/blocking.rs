//! A blocking Avro RPC client connection over one `std::net::TcpStream`: what
//! `flumen avro-client` and the `avro` sink share. Drives the sans-I/O [`ClientConn`]: connects
//! with a timeout, sends one `appendBatch` at a time and waits for its answer with a deadline
//! (writing the resent call when the server answers the handshake NONE).
//!
//! Every [`RpcError`] names the peer as `host:port` and what was being done. After any error
//! the connection should be dropped: a late answer would be read as the next call's.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use super::zlib::{Deflater, Inflater, ZlibError};
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
    stream: TcpStream,
    conn: ClientConn,
    peer: String,
    timeouts: Timeouts,
    items: Vec<ClientItem>,
    buf: Vec<u8>,
    /// `compression-type = deflate`: the two zlib streams and a buffer of inflated bytes.
    zlib: Option<(Deflater, Inflater, Vec<u8>)>,
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
                    return Ok(BlockingClient {
                        stream,
                        conn: ClientConn::default(),
                        peer,
                        timeouts: timeouts.clone(),
                        items: Vec::new(),
                        buf: vec![0; 64 * 1024],
                        zlib: deflate.map(|level| {
                            (Deflater::new(level), Inflater::new(), vec![0; 64 * 1024])
                        }),
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
            // Inflate what was already read one chunk at a time, so the answers are looked at
            // before more is inflated.
            if let Some((_, inflater, plain)) = self.zlib.as_mut() {
                let m = inflater.inflate(plain).map_err(|e| RpcError::Zlib {
                    peer: self.peer.clone(),
                    context: format!("bad answer to {what}"),
                    source: e,
                })?;
                if m > 0 {
                    let mut items = std::mem::take(&mut self.items);
                    let fed = self.conn.feed(&plain[..m], &mut items);
                    self.items = items;
                    fed.map_err(|e| RpcError::Protocol {
                        peer: self.peer.clone(),
                        context: format!("bad answer to {what} (is it an avro source?)"),
                        source: e,
                    })?;
                    continue;
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(self.timed_out(what));
            }
            self.stream
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
                    return Err(self.timed_out(what))
                }
                Err(e) => return Err(self.io(&format!("reading the answer to {what}"), e)),
            };
            if let Some((_, inflater, _)) = self.zlib.as_mut() {
                inflater.push(&self.buf[..n]);
                continue;
            }
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
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
    }

    fn write(&mut self, frame: &[u8], what: &str) -> Result<(), RpcError> {
        let compressed;
        let frame = match self.zlib.as_mut() {
            Some((deflater, _, _)) => {
                compressed = deflater.compress(frame).map_err(|e| RpcError::Zlib {
                    peer: self.peer.clone(),
                    context: format!("sending {what}"),
                    source: e,
                })?;
                &compressed[..]
            }
            None => frame,
        };
        self.stream.write_all(frame).map_err(|e| {
            if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) {
                self.timed_out(what)
            } else {
                self.io(&format!("sending {what}"), e)
            }
        })
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
