//! The byte stream an Avro RPC connection's frames travel on: a blocking `TcpStream`, with
//! `compression-type = deflate` and `ssl = true` layered as Flume 1.11 layers them. Flume
//! 1.10+ (Netty 4) puts its zlib handlers at the socket end of the pipeline and the SslHandler
//! after them, so on the wire the zlib stream is outermost and TLS records travel inside it:
//!
//! ```text
//! frames  ->  TLS (when ssl)  ->  zlib, one sync flush per write (when deflate)  ->  socket
//! ```
//!
//! [`Wire`] is the lower half (socket, or socket + zlib), [`Transport`] adds TLS. Both are
//! plain `Read + Write`, so the source's and the client's loops are the same with or without
//! either option.
//!
//! Invariants:
//! - A read that hits the socket's read timeout returns `WouldBlock`/`TimedOut` with nothing
//!   lost: bytes already read stay in the inflater or in rustls's buffers, and the next read
//!   goes on from there. This is what lets the source poll its stop flag and idle clock.
//! - A read returns at most what the caller's buffer holds and inflates at most that much, so
//!   a small compressed input never becomes a large buffer (the frame decoder's limits apply
//!   to what comes out).
//! - A write is complete on the socket when `write_all` + `flush` return: each deflate write
//!   is sync-flushed, and TLS records are pushed out by `flush`.

use std::io::{self, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::ops::DerefMut;

use rustls::{ConnectionCommon, SideData, StreamOwned};

use super::zlib::{Deflater, Inflater, ZlibError};

/// Bytes read from the socket at a time under the inflater.
const CHUNK: usize = 64 * 1024;

/// The socket, possibly with `compression-type = deflate` (one zlib stream per direction).
pub struct Wire {
    tcp: TcpStream,
    zlib: Option<Box<Zlib>>,
    /// Bytes read from the socket so far (compressed, encrypted: as they came).
    received: u64,
}

/// The two zlib streams of a compressed connection.
struct Zlib {
    deflater: Deflater,
    inflater: Inflater,
    chunk: Vec<u8>,
}

impl Wire {
    /// `deflate`: the compression level when `compression-type = deflate`.
    pub fn new(tcp: TcpStream, deflate: Option<u32>) -> Wire {
        Wire {
            tcp,
            zlib: deflate.map(|level| {
                Box::new(Zlib {
                    deflater: Deflater::new(level),
                    inflater: Inflater::new(),
                    chunk: vec![0; CHUNK],
                })
            }),
            received: 0,
        }
    }

    pub fn tcp(&self) -> &TcpStream {
        &self.tcp
    }

    /// Bytes read from the socket so far.
    pub fn received(&self) -> u64 {
        self.received
    }
}

/// The [`ZlibError`] inside an I/O error from a [`Wire`], if that is what it is.
pub fn zlib_error(e: &io::Error) -> Option<&ZlibError> {
    e.get_ref().and_then(|i| i.downcast_ref::<ZlibError>())
}

/// The [`ZlibError`] inside an I/O error from a [`Wire`], by value; the error itself when it
/// is another one.
pub fn into_zlib_error(e: io::Error) -> Result<ZlibError, io::Error> {
    if zlib_error(&e).is_none() {
        return Err(e);
    }
    let kind = e.kind();
    match e.into_inner() {
        Some(inner) => inner
            .downcast::<ZlibError>()
            .map(|b| *b)
            .map_err(|other| io::Error::new(kind, other)),
        None => Err(io::Error::from(kind)),
    }
}

/// The [`rustls::Error`] inside an I/O error from a [`Transport`], if that is what it is.
pub fn tls_error(e: &io::Error) -> Option<&rustls::Error> {
    e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>())
}

impl Read for Wire {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(z) = self.zlib.as_mut() else {
            let n = self.tcp.read(buf)?;
            self.received += n as u64;
            return Ok(n);
        };
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            let m = z
                .inflater
                .inflate(buf)
                .map_err(|e| io::Error::new(ErrorKind::InvalidData, e))?;
            if m > 0 {
                return Ok(m);
            }
            // A timeout here leaves everything pushed so far in the inflater.
            let n = self.tcp.read(&mut z.chunk)?;
            if n == 0 {
                return Ok(0);
            }
            self.received += n as u64;
            z.inflater.push(&z.chunk[..n]);
        }
    }
}

impl Write for Wire {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let Some(z) = self.zlib.as_mut() else {
            return self.tcp.write(buf);
        };
        // The compressed bytes of one write are written whole: a partial write would leave
        // the zlib stream in a state the caller cannot resume.
        let compressed = z
            .deflater
            .compress(buf)
            .map_err(|e| io::Error::new(ErrorKind::InvalidData, e))?;
        self.tcp.write_all(&compressed)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.tcp.flush()
    }
}

/// A [`Wire`], possibly with TLS inside it. `C` is `rustls::ServerConnection` for the source,
/// `rustls::ClientConnection` for the client.
pub enum Transport<C> {
    Plain(Wire),
    Tls(Box<StreamOwned<C, Wire>>),
}

impl<C, S> Transport<C>
where
    C: DerefMut<Target = ConnectionCommon<S>>,
    S: SideData,
{
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Transport::Plain(w) => w.tcp(),
            Transport::Tls(s) => s.sock.tcp(),
        }
    }

    /// Bytes read from the socket so far.
    pub fn received(&self) -> u64 {
        match self {
            Transport::Plain(w) => w.received(),
            Transport::Tls(s) => s.sock.received(),
        }
    }

    /// Whether a TLS handshake is still under way (the source bounds it by `idle-timeout`).
    pub fn is_handshaking(&self) -> bool {
        match self {
            Transport::Plain(_) => false,
            Transport::Tls(s) => s.conn.is_handshaking(),
        }
    }

    /// Drives the TLS handshake to its end (a no-op without TLS); the socket's read timeout
    /// bounds each wait, and a timeout can be retried.
    pub fn complete_handshake(&mut self) -> io::Result<()> {
        if let Transport::Tls(s) = self {
            let StreamOwned { conn, sock } = &mut **s;
            while conn.is_handshaking() {
                conn.complete_io(sock)?;
            }
            // Our last handshake message (a TLS 1.3 client's Finished) may still be queued.
            while conn.wants_write() {
                conn.write_tls(sock)?;
            }
            sock.flush()?;
        }
        Ok(())
    }

    /// Sends TLS's close_notify (if any TLS) and shuts the socket down; errors are ignored, as
    /// the peer may be gone.
    pub fn close(mut self) {
        if let Transport::Tls(s) = &mut self {
            s.conn.send_close_notify();
            let StreamOwned { conn, sock } = &mut **s;
            while conn.wants_write() {
                if !matches!(conn.write_tls(sock), Ok(n) if n > 0) {
                    break;
                }
            }
            let _ = sock.flush();
        }
        let _ = self.tcp().shutdown(std::net::Shutdown::Both);
    }
}

impl<C, S> Read for Transport<C>
where
    C: DerefMut<Target = ConnectionCommon<S>>,
    S: SideData,
{
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Transport::Plain(w) => w.read(buf),
            Transport::Tls(s) => s.read(buf),
        }
    }
}

impl<C, S> Write for Transport<C>
where
    C: DerefMut<Target = ConnectionCommon<S>>,
    S: SideData,
{
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Transport::Plain(w) => w.write(buf),
            Transport::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Transport::Plain(w) => w.flush(),
            Transport::Tls(s) => s.flush(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::avro::tls::{self, ClientTls, Filters, Identity, Secret, ServerTls, Store, Trust};
    use rustls::pki_types::ServerName;
    use rustls::{ClientConnection, ServerConnection};
    use std::net::TcpListener;
    use std::time::Duration;

    /// keytool's EC P-256 keystore (see `tls::test_keys`).
    fn keystore(dir: &std::path::Path) -> std::path::PathBuf {
        crate::avro::tls::test_keys::keytool_keystore(dir, "EC", "changeit")
    }

    /// A TLS record split in two with a pause longer than the server's read timeout between
    /// the halves (inside deflate, as with both options on): the server's read times out in
    /// the middle of the record, is retried, and gets the whole message.
    #[test]
    fn a_read_timeout_in_the_middle_of_a_record_loses_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let server_cfg = tls::server_config(&ServerTls {
            identity: Identity::Keystore(Store {
                path: keystore(dir.path()),
                password: Some(Secret("changeit".into())),
                store_type: None,
            }),
            filters: Filters::default(),
        })
        .expect("server config");
        let client_cfg = tls::client_config(&ClientTls {
            trust: Trust::All,
            verify_hostname: None,
            filters: Filters::default(),
        })
        .expect("client config");
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let timeouts = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let seen = std::sync::Arc::clone(&timeouts);
        let server = std::thread::spawn(move || {
            let (tcp, _) = listener.accept().expect("accept");
            tcp.set_read_timeout(Some(Duration::from_millis(50)))
                .expect("timeout");
            let conn = ServerConnection::new(server_cfg).expect("server conn");
            let mut t = Transport::Tls(Box::new(StreamOwned::new(conn, Wire::new(tcp, Some(6)))));
            let mut got = Vec::new();
            let mut buf = [0u8; 64];
            while got.len() < 10 {
                match t.read(&mut buf) {
                    Ok(0) => panic!("closed early"),
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                    Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                        seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                    Err(e) => panic!("read: {e}"),
                }
            }
            t.write_all(&got).and_then(|()| t.flush()).expect("echo");
            got
        });

        let tcp = TcpStream::connect(addr).expect("connect");
        tcp.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let name = ServerName::try_from("localhost").expect("name");
        let conn = ClientConnection::new(client_cfg, name).expect("client conn");
        let mut t = Transport::Tls(Box::new(StreamOwned::new(conn, Wire::new(tcp, Some(6)))));
        t.complete_handshake().expect("handshake");
        let Transport::Tls(s) = &mut t else {
            panic!("not TLS")
        };
        // The record's bytes, written in two halves through the zlib layer.
        s.conn.writer().write_all(b"0123456789").expect("buffer");
        let mut record = Vec::new();
        while s.conn.wants_write() {
            s.conn.write_tls(&mut record).expect("encrypt");
        }
        let half = record.len() / 2;
        let before = timeouts.load(std::sync::atomic::Ordering::SeqCst);
        s.sock.write_all(&record[..half]).expect("first half");
        // Two more timeouts: the second began after the half was in the socket, so the server
        // timed out holding half a record.
        let end = std::time::Instant::now() + Duration::from_secs(10);
        while timeouts.load(std::sync::atomic::Ordering::SeqCst) < before + 2 {
            assert!(
                std::time::Instant::now() < end,
                "the server's read never timed out"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        s.sock.write_all(&record[half..]).expect("second half");
        let mut echo = [0u8; 10];
        t.read_exact(&mut echo).expect("echo");
        assert_eq!(&echo, b"0123456789");
        let got = server.join().expect("server thread");
        assert_eq!(got, b"0123456789");
    }
}
