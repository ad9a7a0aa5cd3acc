//! Where `hbase:meta` is served, read from ZooKeeper: the one thing HBase's clients ask
//! ZooKeeper (`<znodeParent>/meta-region-server`).
//!
//! Written by hand rather than with a ZooKeeper crate: the Rust clients (zookeeper-client,
//! zookeeper-async, tokio-zookeeper) are async session managers with watches, reconnects and
//! heartbeats, and need a runtime, where the client needs three short-lived requests in jute's
//! fixed big-endian layout (connect, getData, close) when it starts and when meta moves. The
//! layout is in docs/FORMAT.md ("ZooKeeper").
//!
//! Invariants: every frame length from the server is bounded ([`MAX_FRAME`]) before anything
//! is allocated, every read has the caller's deadline, and a malformed answer is an error that
//! names the server, never a panic.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use prost::Message;

use super::error::HBaseError;
use super::proto;

/// ZooKeeper's default client port, for quorum entries without one (as HBase's
/// `hbase.zookeeper.property.clientPort`).
pub const DEFAULT_PORT: u16 = 2181;
/// The largest frame read from ZooKeeper: its own `jute.maxbuffer` default is 1 MiB.
const MAX_FRAME: usize = 4 << 20;
/// The znode under `znodeParent` that holds the meta location (HBase's
/// `zookeeper.znode.metaserver` default).
const META_ZNODE: &str = "meta-region-server";
/// jute's op codes.
const OP_GET_DATA: i32 = 4;
const OP_CLOSE: i32 = -11;
/// ZooKeeper's `NONODE` error code.
const ERR_NO_NODE: i32 = -101;

/// A region server's address as HBase names it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServerAddr {
    pub host: String,
    pub port: u16,
}

impl std::fmt::Display for ServerAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

/// The `host:port` entries of a quorum string (`zk1:2181,zk2,zk3:2182`); an entry without a
/// port gets [`DEFAULT_PORT`].
pub fn quorum_hosts(quorum: &str) -> Result<Vec<(String, u16)>, String> {
    let mut out = Vec::new();
    for entry in quorum.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        match entry.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() => {
                let port = port
                    .parse::<u16>()
                    .map_err(|_| format!("`{entry}` has no valid port after `:`"))?;
                out.push((host.to_string(), port));
            }
            Some(_) => return Err(format!("`{entry}` has no host before `:`")),
            None => out.push((entry.to_string(), DEFAULT_PORT)),
        }
    }
    if out.is_empty() {
        return Err("no `host[:port]` entry".into());
    }
    Ok(out)
}

/// The server holding `hbase:meta`, read from the first quorum member that answers.
pub fn meta_location(
    quorum: &str,
    znode_parent: &str,
    timeout: Duration,
) -> Result<ServerAddr, HBaseError> {
    let hosts = quorum_hosts(quorum).map_err(|detail| HBaseError::Quorum {
        quorum: quorum.to_string(),
        detail,
    })?;
    let znode = format!("{}/{META_ZNODE}", znode_parent.trim_end_matches('/'));
    let mut failures = Vec::new();
    for (host, port) in &hosts {
        match read_znode(host, *port, &znode, timeout) {
            Ok(Some(data)) => {
                return parse_meta_znode(&data).map_err(|detail| HBaseError::Protocol {
                    peer: format!("ZooKeeper {host}:{port}"),
                    what: "meta location",
                    detail: format!("{znode}: {detail}"),
                })
            }
            Ok(None) => {
                return Err(HBaseError::NoMetaLocation {
                    quorum: quorum.to_string(),
                    znode,
                })
            }
            Err(e) => failures.push(format!("{host}:{port}: {e}")),
        }
    }
    Err(HBaseError::Quorum {
        quorum: quorum.to_string(),
        detail: failures.join("; "),
    })
}

/// The meta location inside the znode's bytes: HBase's metadata prefix (0xFF, a 4-byte id
/// length, the id), then `PBUF` and a `MetaRegionServer` message.
pub fn parse_meta_znode(data: &[u8]) -> Result<ServerAddr, String> {
    let mut rest = data;
    if rest.first() == Some(&0xFF) {
        let len = rest
            .get(1..5)
            .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
            .ok_or("the metadata prefix is cut short")?;
        let len = usize::try_from(len).map_err(|_| "a negative metadata length")?;
        rest = rest
            .get(5 + len..)
            .ok_or("the metadata prefix is longer than the znode")?;
    }
    let pb = rest
        .strip_prefix(b"PBUF")
        .ok_or("no `PBUF` magic (is this HBase 2 or later?)")?;
    let msg = proto::MetaRegionServer::decode(pb).map_err(|e| e.to_string())?;
    let server = msg.server.ok_or("no server in MetaRegionServer")?;
    let host = server
        .host_name
        .filter(|h| !h.is_empty())
        .ok_or("no host name")?;
    let port = server
        .port
        .and_then(|p| u16::try_from(p).ok())
        .ok_or("no valid port")?;
    Ok(ServerAddr { host, port })
}

/// The data of `path` on one ZooKeeper server, `None` if the znode does not exist.
fn read_znode(
    host: &str,
    port: u16,
    path: &str,
    timeout: Duration,
) -> Result<Option<Vec<u8>>, String> {
    let addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve: {e}"))?
        .collect();
    let mut stream = None;
    let mut last = String::from("no address");
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last = e.to_string(),
        }
    }
    let mut stream = stream.ok_or(last)?;
    stream
        .set_read_timeout(Some(timeout))
        .and_then(|()| stream.set_write_timeout(Some(timeout)))
        .and_then(|()| stream.set_nodelay(true))
        .map_err(|e| e.to_string())?;

    write_frame(&mut stream, &connect_request(timeout))?;
    let resp = read_frame(&mut stream)?;
    // protocolVersion, timeOut, sessionId, passwd: a zero timeout means the server refused
    // the session.
    if resp.len() < 16 {
        return Err(format!("a ConnectResponse of {} bytes", resp.len()));
    }
    if resp[4..8] == [0, 0, 0, 0] {
        return Err("the server refused the session".into());
    }

    write_frame(&mut stream, &get_data_request(1, path))?;
    let result = loop {
        let reply = read_frame(&mut stream)?;
        let mut r = Reader(&reply);
        let xid = r.i32()?;
        let _zxid = r.i64()?;
        let err = r.i32()?;
        // -2 is a ping answer, -1 a watch event: neither is ours.
        if xid < 0 {
            continue;
        }
        if xid != 1 {
            return Err(format!("an answer to request {xid}, expected 1"));
        }
        break match err {
            0 => Ok(Some(r.buffer()?)),
            ERR_NO_NODE => Ok(None),
            code => Err(format!(
                "getData({path}) failed with ZooKeeper error {code}"
            )),
        };
    };
    // Closing the session frees it on the server at once instead of at its timeout; the
    // answer does not matter.
    let _ = write_frame(&mut stream, &close_request(2));
    result
}

fn connect_request(timeout: Duration) -> Vec<u8> {
    let mut b = Vec::with_capacity(45);
    b.extend_from_slice(&0i32.to_be_bytes()); // protocolVersion
    b.extend_from_slice(&0i64.to_be_bytes()); // lastZxidSeen
    let ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
    b.extend_from_slice(&ms.to_be_bytes()); // timeOut
    b.extend_from_slice(&0i64.to_be_bytes()); // sessionId
    b.extend_from_slice(&16i32.to_be_bytes()); // passwd
    b.extend_from_slice(&[0u8; 16]);
    b.push(0); // readOnly
    b
}

fn get_data_request(xid: i32, path: &str) -> Vec<u8> {
    let mut b = Vec::with_capacity(13 + path.len());
    b.extend_from_slice(&xid.to_be_bytes());
    b.extend_from_slice(&OP_GET_DATA.to_be_bytes());
    let len = i32::try_from(path.len()).unwrap_or(i32::MAX);
    b.extend_from_slice(&len.to_be_bytes());
    b.extend_from_slice(path.as_bytes());
    b.push(0); // no watch
    b
}

fn close_request(xid: i32) -> Vec<u8> {
    let mut b = Vec::with_capacity(8);
    b.extend_from_slice(&xid.to_be_bytes());
    b.extend_from_slice(&OP_CLOSE.to_be_bytes());
    b
}

fn write_frame(stream: &mut TcpStream, body: &[u8]) -> Result<(), String> {
    let len = u32::try_from(body.len()).map_err(|_| "a request too large")?;
    let mut frame = Vec::with_capacity(4 + body.len());
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(body);
    stream.write_all(&frame).map_err(|e| format!("write: {e}"))
}

fn read_frame(stream: &mut TcpStream) -> Result<Vec<u8>, String> {
    let mut len = [0u8; 4];
    stream
        .read_exact(&mut len)
        .map_err(|e| format!("read: {e}"))?;
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(format!(
            "a frame of {len} bytes (more than {MAX_FRAME}): is this a ZooKeeper server?"
        ));
    }
    let mut body = vec![0u8; len];
    stream
        .read_exact(&mut body)
        .map_err(|e| format!("read: {e}"))?;
    Ok(body)
}

/// Reads jute's big-endian fields, every one bounds-checked.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        if self.0.len() < n {
            return Err("an answer cut short".into());
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn i32(&mut self) -> Result<i32, String> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn i64(&mut self) -> Result<i64, String> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(i64::from_be_bytes(a))
    }

    /// A jute buffer: a length (-1 for null) and that many bytes.
    fn buffer(&mut self) -> Result<Vec<u8>, String> {
        let len = self.i32()?;
        if len < 0 {
            return Ok(Vec::new());
        }
        Ok(self.take(len as usize)?.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn znode(id: &[u8], host: &str, port: u32) -> Vec<u8> {
        let mut d = vec![0xFF];
        d.extend_from_slice(&(id.len() as i32).to_be_bytes());
        d.extend_from_slice(id);
        d.extend_from_slice(b"PBUF");
        let msg = proto::MetaRegionServer {
            server: Some(proto::ServerName {
                host_name: Some(host.into()),
                port: Some(port),
                start_code: Some(1),
            }),
            rpc_version: Some(0),
            state: Some(3),
        };
        d.extend_from_slice(&msg.encode_to_vec());
        d
    }

    #[test]
    fn meta_location_is_read_after_the_metadata_prefix() {
        let d = znode(b"master:16000", "rs1.example", 16020);
        assert_eq!(
            parse_meta_znode(&d).expect("parse"),
            ServerAddr {
                host: "rs1.example".into(),
                port: 16020
            }
        );
    }

    #[test]
    fn malformed_meta_znodes_are_errors_not_panics() {
        let good = znode(b"id", "h", 1);
        for cut in 0..good.len() {
            let _ = parse_meta_znode(&good[..cut]);
        }
        assert!(parse_meta_znode(b"").is_err());
        assert!(parse_meta_znode(&[0xFF, 0x7F, 0xFF, 0xFF, 0xFF]).is_err());
        assert!(parse_meta_znode(&[0xFF, 0xFF, 0xFF, 0xFF, 0xFF]).is_err());
        assert!(parse_meta_znode(b"host:16020").is_err());
        assert!(parse_meta_znode(&znode(b"", "h", 70000)).is_err());
    }

    #[test]
    fn quorum_entries_take_the_default_port() {
        assert_eq!(
            quorum_hosts("zk1:2182, zk2 ,zk3").expect("parse"),
            vec![
                ("zk1".to_string(), 2182),
                ("zk2".to_string(), 2181),
                ("zk3".to_string(), 2181)
            ]
        );
        assert!(quorum_hosts("").is_err());
        assert!(quorum_hosts("zk1:port").is_err());
        assert!(quorum_hosts(":2181").is_err());
    }

    #[test]
    fn an_unreachable_quorum_names_every_member() {
        // A port nothing listens on: bind one, note it, drop the listener.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("bind")
            .local_addr()
            .expect("addr")
            .port();
        let q = format!("127.0.0.1:{port}");
        match meta_location(&q, "/hbase", Duration::from_secs(2)) {
            Err(HBaseError::Quorum { quorum, detail }) => {
                assert_eq!(quorum, q);
                assert!(detail.contains(&q), "{detail}");
            }
            other => panic!("expected a quorum error, got {other:?}"),
        }
    }
}
