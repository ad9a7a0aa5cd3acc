//! A collector for tests: an Avro RPC server (flumen's protocol layer over plain sockets) that
//! answers OK to every `append` and `appendBatch` and keeps every event it received, headers
//! and all, in arrival order. An avro sink of either Flume or flumen can deliver to it, so a
//! test can compare what two agents sent, event by event.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use flumen::avro::frame::FrameLimits;
use flumen::avro::protocol::Status;
use flumen::avro::server::{ServerConn, ServerItem};
use flumen::event::Event;

/// A running collector; stops (and drops its connections) when dropped.
pub struct Capture {
    pub port: u16,
    events: Arc<Mutex<Vec<Event>>>,
    stop: Arc<AtomicBool>,
    /// The listener's thread and each connection's, while they run.
    running: Arc<std::sync::atomic::AtomicUsize>,
}

impl Capture {
    /// Listens on an ephemeral port of 127.0.0.1.
    pub fn start() -> Capture {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the collector");
        listener.set_nonblocking(true).expect("non-blocking");
        let port = listener.local_addr().expect("addr").port();
        let events = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let running = Arc::new(std::sync::atomic::AtomicUsize::new(1));
        let (ev, st, run) = (Arc::clone(&events), Arc::clone(&stop), Arc::clone(&running));
        std::thread::spawn(move || {
            while !st.load(Ordering::Acquire) {
                match listener.accept() {
                    Ok((stream, peer)) => {
                        let (ev, st, run) = (Arc::clone(&ev), Arc::clone(&st), Arc::clone(&run));
                        run.fetch_add(1, Ordering::AcqRel);
                        std::thread::spawn(move || {
                            serve(stream, peer, &ev, &st);
                            run.fetch_sub(1, Ordering::AcqRel);
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
            drop(listener);
            run.fetch_sub(1, Ordering::AcqRel);
        });
        Capture {
            port,
            events,
            stop,
            running,
        }
    }

    /// Stops listening and closes every connection, and returns once they are closed, so
    /// that nothing reaches this collector afterwards (what it got stays readable).
    pub fn close(&self) {
        self.stop.store(true, Ordering::Release);
        let end = std::time::Instant::now() + Duration::from_secs(30);
        while self.running.load(Ordering::Acquire) > 0 {
            assert!(
                std::time::Instant::now() < end,
                "the collector did not stop"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Every event received so far.
    pub fn events(&self) -> Vec<Event> {
        self.events.lock().expect("capture lock").clone()
    }

    pub fn len(&self) -> usize {
        self.events.lock().expect("capture lock").len()
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}

fn serve(mut stream: TcpStream, _peer: SocketAddr, events: &Mutex<Vec<Event>>, stop: &AtomicBool) {
    let _ = stream.set_read_timeout(Some(Duration::from_millis(100)));
    let mut conn = ServerConn::new(FrameLimits::default());
    let mut buf = vec![0u8; 64 * 1024];
    let mut items = Vec::new();
    while !stop.load(Ordering::Acquire) {
        let n = match stream.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue
            }
            Err(_) => return,
        };
        items.clear();
        if conn.feed(&buf[..n], &mut items).is_err() {
            return;
        }
        for item in items.drain(..) {
            let response = match item {
                ServerItem::Answered(a) => a.response,
                ServerItem::Call(call) => {
                    events
                        .lock()
                        .expect("capture lock")
                        .extend(call.message.into_events());
                    call.reply.status(Status::Ok)
                }
            };
            if stream.write_all(&response).is_err() {
                return;
            }
        }
    }
}
