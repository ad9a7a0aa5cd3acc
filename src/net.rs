//! Accept loops over non-blocking listeners (the TCP sources and the monitoring server). Each
//! loop must notice its stop flag within [`ACCEPT_POLL`], yet a client that connects must be
//! accepted at once, not after a fixed sleep: so between accepts the loop waits in `poll(2)`
//! for the listener to become readable, bounded by [`ACCEPT_POLL`].

use std::net::TcpListener;
use std::time::Duration;

use rustix::event::{poll, PollFd, PollFlags, Timespec};

/// The longest an accept loop waits before looking at its stop flag again.
pub(crate) const ACCEPT_POLL: Duration = Duration::from_millis(50);

/// Returns when `listener` has a connection waiting (true), or after [`ACCEPT_POLL`] without
/// one (false).
pub(crate) fn wait_for_connection(listener: &TcpListener) -> bool {
    let mut fds = [PollFd::new(listener, PollFlags::IN)];
    let timeout = Timespec {
        tv_sec: 0,
        tv_nsec: ACCEPT_POLL.subsec_nanos().into(),
    };
    match poll(&mut fds, Some(&timeout)) {
        Ok(n) => n > 0,
        Err(rustix::io::Errno::INTR) => false,
        Err(_) => {
            // Cannot happen for a valid listener; wait as long as poll would have, so the
            // caller's loop cannot spin.
            std::thread::sleep(ACCEPT_POLL);
            false
        }
    }
}

/// What an accept loop does after `accept` on its non-blocking listener failed with `e`:
/// `WouldBlock` waits for the next connection (at most [`ACCEPT_POLL`]), `EINTR` retries at
/// once, and anything else (EMFILE, ENFILE, ENOBUFS: the process or the system ran out of
/// something) is reported through `warn` and then waits [`ACCEPT_POLL`], a fixed back-off, so
/// that the loop neither spins nor floods the log while the shortage lasts.
pub(crate) fn after_failed_accept(
    listener: &TcpListener,
    e: &std::io::Error,
    warn: impl FnOnce(&std::io::Error),
) {
    match e.kind() {
        std::io::ErrorKind::WouldBlock => {
            wait_for_connection(listener);
        }
        std::io::ErrorKind::Interrupted => {}
        _ => {
            warn(e);
            std::thread::sleep(ACCEPT_POLL);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn returns_when_a_client_connects_and_times_out_without_one() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("non-blocking");
        // Nothing pending: it waits (the loop does not spin) and says so.
        let t = Instant::now();
        assert!(!wait_for_connection(&listener));
        assert!(t.elapsed() >= ACCEPT_POLL - Duration::from_millis(5));

        // A pending connection wakes it: poll reports the listener readable.
        let _client =
            std::net::TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        assert!(wait_for_connection(&listener));
        assert!(listener.accept().is_ok());
    }
}
