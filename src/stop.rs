//! The stop flag every component thread watches: an `AtomicBool` the agent sets at shutdown.
//! Waits in sources and sinks (backoff, idle polls) go through [`sleep_unless_stopped`], so a
//! shutdown is never held up by a backoff of up to seconds.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Sleeps for `d`, waking early (within 50 ms) once `stop` is set.
pub(crate) fn sleep_unless_stopped(d: Duration, stop: &AtomicBool) {
    let step = Duration::from_millis(50);
    let mut left = d;
    while !left.is_zero() && !stop.load(Ordering::Acquire) {
        let s = left.min(step);
        std::thread::sleep(s);
        left -= s;
    }
}
