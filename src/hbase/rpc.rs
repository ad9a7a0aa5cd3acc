//! One connection to an HBase server (a region server, or the one holding `hbase:meta`) over
//! HBase's native RPC, blocking, with calls pipelined: [`RpcConnection::send`] writes a call
//! and returns its id, [`RpcConnection::receive`] waits for the answer to one id, keeping
//! answers to other ids that arrive first (a server answers in the order its handlers finish,
//! not the order of the calls). Framing in docs/FORMAT.md ("HBase RPC").
//!
//! The connection opens with the preamble (`HBas`, version 0, SIMPLE authentication) and a
//! `ConnectionHeader` naming the user and `ClientService`, and no cell-block codec, so every
//! answer carries its cells inside the protobuf message.
//!
//! Invariants: a frame longer than [`MAX_RESPONSE`] is refused before it is allocated; every
//! read and write has the configured deadline; after any I/O or framing error the connection
//! is [`broken`](RpcConnection::is_broken) and the caller must drop it (calls in flight on it
//! have no answer and are failed by the caller).

use std::collections::HashMap;
use std::io::{BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use prost::Message;

use super::error::HBaseError;
use super::proto;
use super::zk::ServerAddr;

/// The largest answer read: a Multi answer is small, a meta scan of a table with thousands of
/// regions a few MiB.
pub const MAX_RESPONSE: usize = 64 << 20;
/// `HBas`, RPC version 0, auth SIMPLE (80).
const PREAMBLE: [u8; 6] = *b"HBas\x00\x50";
const SERVICE: &str = "ClientService";

/// An answer: the response message's bytes, or the exception the server threw for the call.
type Answer = Result<Vec<u8>, HBaseError>;

/// A connection to one server.
pub struct RpcConnection {
    server: ServerAddr,
    writer: TcpStream,
    reader: BufReader<TcpStream>,
    next_call_id: u32,
    /// Answers read while waiting for another call's.
    early: HashMap<u32, Answer>,
    broken: bool,
}

impl RpcConnection {
    /// Connects and sends the preamble and connection header.
    pub fn open(
        server: &ServerAddr,
        user: &str,
        timeout: Duration,
    ) -> Result<RpcConnection, HBaseError> {
        let fail = |detail: String| HBaseError::Connection {
            server: server.to_string(),
            detail,
        };
        let addrs: Vec<SocketAddr> = (server.host.as_str(), server.port)
            .to_socket_addrs()
            .map_err(|e| fail(format!("cannot resolve its host name: {e}")))?
            .collect();
        let mut last = String::from("the host name resolves to no address");
        let mut stream = None;
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, timeout) {
                Ok(s) => {
                    stream = Some(s);
                    break;
                }
                Err(e) => last = format!("cannot connect to {addr}: {e}"),
            }
        }
        let stream = stream.ok_or_else(|| fail(last))?;
        stream
            .set_nodelay(true)
            .and_then(|()| stream.set_read_timeout(Some(timeout)))
            .and_then(|()| stream.set_write_timeout(Some(timeout)))
            .map_err(|e| fail(e.to_string()))?;
        let header = proto::ConnectionHeader {
            user_info: Some(proto::UserInformation {
                effective_user: Some(user.to_string()),
                real_user: None,
            }),
            service_name: Some(SERVICE.to_string()),
            cell_block_codec_class: None,
            cell_block_compressor_class: None,
        };
        let body = header.encode_to_vec();
        let mut hello = Vec::with_capacity(PREAMBLE.len() + 4 + body.len());
        hello.extend_from_slice(&PREAMBLE);
        hello.extend_from_slice(&(body.len() as u32).to_be_bytes());
        hello.extend_from_slice(&body);
        let mut writer = stream.try_clone().map_err(|e| fail(e.to_string()))?;
        writer
            .write_all(&hello)
            .map_err(|e| fail(format!("sending the connection header: {e}")))?;
        Ok(RpcConnection {
            server: server.clone(),
            writer,
            reader: BufReader::with_capacity(64 << 10, stream),
            next_call_id: 0,
            early: HashMap::new(),
            broken: false,
        })
    }

    /// The server this connection talks to.
    pub fn server(&self) -> &ServerAddr {
        &self.server
    }

    /// Whether an error left the stream in an unknown state (drop the connection).
    pub fn is_broken(&self) -> bool {
        self.broken
    }

    /// Writes a call of `method` with `param`; returns its id for [`receive`](Self::receive).
    pub fn send<M: Message>(&mut self, method: &str, param: &M) -> Result<u32, HBaseError> {
        let call_id = self.next_call_id;
        self.next_call_id = self.next_call_id.wrapping_add(1);
        let header = proto::RequestHeader {
            call_id: Some(call_id),
            method_name: Some(method.to_string()),
            request_param: Some(true),
            priority: None,
            timeout: None,
        };
        let total = header.encoded_len()
            + prost::length_delimiter_len(header.encoded_len())
            + param.encoded_len()
            + prost::length_delimiter_len(param.encoded_len());
        let mut frame = Vec::with_capacity(4 + total);
        frame.extend_from_slice(&(total as u32).to_be_bytes());
        header
            .encode_length_delimited(&mut frame)
            .and_then(|()| param.encode_length_delimited(&mut frame))
            .map_err(|e| self.fail(format!("encoding a {method} call: {e}")))?;
        if let Err(e) = self.writer.write_all(&frame) {
            return Err(self.fail(format!("sending a {method} call: {e}")));
        }
        Ok(call_id)
    }

    /// Waits for the answer to `call_id` and decodes it as `R`. An exception the server threw
    /// for this call is [`HBaseError::Remote`] and leaves the connection usable.
    pub fn receive<R: Message + Default>(&mut self, call_id: u32) -> Result<R, HBaseError> {
        let bytes = match self.early.remove(&call_id) {
            Some(answer) => answer?,
            None => loop {
                let (id, answer) = self.read_answer()?;
                if id == call_id {
                    break answer?;
                }
                self.early.insert(id, answer);
            },
        };
        R::decode(bytes.as_slice()).map_err(|e| self.protocol("response", e.to_string()))
    }

    /// [`send`](Self::send) then [`receive`](Self::receive).
    pub fn call<M: Message, R: Message + Default>(
        &mut self,
        method: &str,
        param: &M,
    ) -> Result<R, HBaseError> {
        let id = self.send(method, param)?;
        self.receive(id)
    }

    /// Reads one answer frame: the call id and the response bytes or the exception.
    fn read_answer(&mut self) -> Result<(u32, Answer), HBaseError> {
        let mut len = [0u8; 4];
        if let Err(e) = self.reader.read_exact(&mut len) {
            return Err(self.fail(match e.kind() {
                std::io::ErrorKind::UnexpectedEof => {
                    "closed the connection with calls unanswered".to_string()
                }
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
                    "no answer within the RPC timeout".to_string()
                }
                _ => format!("reading an answer: {e}"),
            }));
        }
        let len = u32::from_be_bytes(len) as usize;
        if len > MAX_RESPONSE {
            return Err(self.protocol(
                "response frame",
                format!("{len} bytes, more than the {MAX_RESPONSE} this client accepts"),
            ));
        }
        let mut frame = vec![0u8; len];
        if let Err(e) = self.reader.read_exact(&mut frame) {
            return Err(self.fail(format!("reading an answer of {len} bytes: {e}")));
        }
        let mut rest = frame.as_slice();
        let header = proto::ResponseHeader::decode_length_delimited(&mut rest)
            .map_err(|e| self.protocol("response header", e.to_string()))?;
        if let Some(ex) = header.exception {
            let class = ex.exception_class_name.unwrap_or_default();
            let message = first_line(ex.stack_trace.as_deref().unwrap_or(""));
            let remote = HBaseError::Remote {
                server: self.server.to_string(),
                class,
                message,
            };
            // A FatalConnectionException names no call: the server closes the connection.
            let Some(id) = header.call_id else {
                self.broken = true;
                return Err(remote);
            };
            return Ok((id, Err(remote)));
        }
        let id = header
            .call_id
            .ok_or_else(|| self.protocol("response header", "no call id".into()))?;
        let body_len = prost::decode_length_delimiter(&mut rest)
            .map_err(|e| self.protocol("response", e.to_string()))?;
        let body = rest
            .get(..body_len)
            .ok_or_else(|| self.protocol("response", "longer than its frame".into()))?;
        Ok((id, Ok(body.to_vec())))
    }

    fn fail(&mut self, detail: String) -> HBaseError {
        self.broken = true;
        HBaseError::Connection {
            server: self.server.to_string(),
            detail,
        }
    }

    fn protocol(&mut self, what: &'static str, detail: String) -> HBaseError {
        self.broken = true;
        HBaseError::Protocol {
            peer: format!("HBase server {}", self.server),
            what,
            detail,
        }
    }
}

/// The first line of a Java stack trace: the exception and its message.
fn first_line(trace: &str) -> String {
    trace.lines().next().unwrap_or("").trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// A peer that reads the preamble, header and one call, then answers as `answer` says.
    fn peer(answer: impl FnOnce(&mut TcpStream) + Send + 'static) -> ServerAddr {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = l.local_addr().expect("addr").port();
        std::thread::spawn(move || {
            let (mut s, _) = l.accept().expect("accept");
            let mut pre = [0u8; 10];
            s.read_exact(&mut pre).expect("preamble and header length");
            assert_eq!(&pre[..6], b"HBas\x00\x50");
            let hl = u32::from_be_bytes([pre[6], pre[7], pre[8], pre[9]]) as usize;
            let mut h = vec![0u8; hl];
            s.read_exact(&mut h).expect("header");
            let header = proto::ConnectionHeader::decode(h.as_slice()).expect("decode header");
            assert_eq!(header.service_name.as_deref(), Some("ClientService"));
            let mut len = [0u8; 4];
            s.read_exact(&mut len).expect("call length");
            let mut call = vec![0u8; u32::from_be_bytes(len) as usize];
            s.read_exact(&mut call).expect("call");
            answer(&mut s);
        });
        ServerAddr {
            host: "127.0.0.1".into(),
            port,
        }
    }

    fn get() -> proto::GetRequest {
        proto::GetRequest::default()
    }

    #[test]
    fn a_server_closing_mid_call_is_a_named_connection_error() {
        let server = peer(|s| drop(s.shutdown(std::net::Shutdown::Both)));
        let mut c = RpcConnection::open(&server, "u", Duration::from_secs(5)).expect("open");
        match c.call::<_, proto::GetResponse>("Get", &get()) {
            Err(HBaseError::Connection { server: s, detail }) => {
                assert_eq!(s, server.to_string());
                assert!(detail.contains("closed the connection"), "{detail}");
            }
            other => panic!("expected a connection error, got {other:?}"),
        }
        assert!(c.is_broken());
    }

    #[test]
    fn an_oversized_answer_is_refused_before_allocation() {
        let server = peer(|s| {
            let _ = s.write_all(&u32::MAX.to_be_bytes());
        });
        let mut c = RpcConnection::open(&server, "u", Duration::from_secs(5)).expect("open");
        match c.call::<_, proto::GetResponse>("Get", &get()) {
            Err(HBaseError::Protocol { detail, .. }) => assert!(detail.contains("more than")),
            other => panic!("expected a protocol error, got {other:?}"),
        }
    }

    #[test]
    fn an_exception_answer_names_the_class_and_keeps_the_connection() {
        let server = peer(|s| {
            let header = proto::ResponseHeader {
                call_id: Some(0),
                exception: Some(proto::ExceptionResponse {
                    exception_class_name: Some(
                        "org.apache.hadoop.hbase.NotServingRegionException".into(),
                    ),
                    stack_trace: Some("NotServingRegionException: r1 is not online\n\tat x".into()),
                    ..Default::default()
                }),
            };
            let mut body = Vec::new();
            header
                .encode_length_delimited(&mut body)
                .expect("encode header");
            let mut frame = (body.len() as u32).to_be_bytes().to_vec();
            frame.extend_from_slice(&body);
            s.write_all(&frame).expect("answer");
        });
        let mut c = RpcConnection::open(&server, "u", Duration::from_secs(5)).expect("open");
        match c.call::<_, proto::GetResponse>("Get", &get()) {
            Err(HBaseError::Remote { class, message, .. }) => {
                assert!(class.ends_with("NotServingRegionException"));
                assert_eq!(message, "NotServingRegionException: r1 is not online");
            }
            other => panic!("expected a remote error, got {other:?}"),
        }
        assert!(!c.is_broken());
    }
}
