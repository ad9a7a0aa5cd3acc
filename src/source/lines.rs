//! The line pump the `exec` and `stdin` sources share: lines read on a helper thread
//! ([`spawn_line_reader`], bounded, so a slow channel stops the reading rather than growing a
//! buffer) turned into events and put in batches ([`LinePump`]), a partial batch once it has
//! waited its batch timeout, so a quiet input still arrives and the stop flag is seen while no
//! line comes.

use std::io::BufRead;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::{put_batch_counted, PutError};
use crate::event::Event;
use crate::metrics::ComponentCounters;
use crate::route::ChannelProcessor;

/// Longest the pump waits for a line before looking at the stop flag again.
const STOP_POLL: Duration = Duration::from_millis(50);

/// Drops a trailing `\n` or `\r\n` (as Java's `readLine` does).
pub(crate) fn trim_line_end(line: &mut Vec<u8>) {
    if line.last() == Some(&b'\n') {
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
    }
}

/// Reads `input` line by line on a new thread, sending each line (without its ending) into the
/// returned receiver, which holds at most `queue` lines: a slow consumer stops the reading
/// rather than growing a buffer. The thread ends at EOF, on a read error (logged), or once the
/// receiver is dropped and the next line is read. A last line without a newline is sent too.
pub(crate) fn spawn_line_reader(
    source: &str,
    mut input: impl BufRead + Send + 'static,
    queue: usize,
) -> std::io::Result<(Receiver<Vec<u8>>, JoinHandle<()>)> {
    let (tx, rx) = sync_channel::<Vec<u8>>(queue.max(1));
    let src = source.to_string();
    let handle = std::thread::Builder::new()
        .name(format!("{source}-lines"))
        .spawn(move || loop {
            let mut line = Vec::new();
            match input.read_until(b'\n', &mut line) {
                Ok(0) => return,
                Ok(_) => {
                    trim_line_end(&mut line);
                    if tx.send(line).is_err() {
                        return;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    tracing::warn!(source = %src, "source `{src}`: read error, input ends: {e}");
                    return;
                }
            }
        })?;
    Ok((rx, handle))
}

/// How [`LinePump::run`] ended.
pub(crate) enum Pumped {
    /// The input ended; everything read was put. `events` counts them.
    Ended { events: u64 },
    /// The stop flag was set; what was read was put, or abandoned if a channel had no room.
    Stopped,
    /// A channel refused a batch for good (logged).
    Failed,
}

/// Turns received lines into events, put in batches.
pub(crate) struct LinePump<'a> {
    /// The source name, for logs.
    pub source: &'a str,
    /// The source type, for logs.
    pub kind: &'static str,
    pub channels: &'a ChannelProcessor,
    /// Events per transaction.
    pub batch_size: usize,
    /// Longest a partial batch waits, counted from its first line.
    pub batch_timeout: Duration,
    /// Where the batches are counted.
    pub counters: &'a ComponentCounters,
}

impl LinePump<'_> {
    /// Puts each line of `rx` as an event, `batch_size` per transaction, or fewer once
    /// `batch_timeout` passed since the batch's first line, until the sender goes away or
    /// `stop` is set; the pending batch is put either way.
    pub fn run(&self, rx: &Receiver<Vec<u8>>, stop: &AtomicBool) -> Pumped {
        let batch_size = self.batch_size.max(1);
        let mut batch: Vec<Event> = Vec::with_capacity(batch_size);
        let mut deadline: Option<Instant> = None;
        let mut events = 0u64;
        loop {
            if stop.load(Ordering::Acquire) {
                return match self.flush(&mut batch, stop) {
                    Ok(()) => Pumped::Stopped,
                    Err(p) => p,
                };
            }
            let wait = deadline.map_or(STOP_POLL, |d| {
                d.saturating_duration_since(Instant::now()).min(STOP_POLL)
            });
            let full = match rx.recv_timeout(wait) {
                Ok(line) => {
                    if batch.is_empty() {
                        deadline = Some(Instant::now() + self.batch_timeout);
                    }
                    batch.push(Event::new(line));
                    batch.len() >= batch_size
                }
                Err(RecvTimeoutError::Timeout) => deadline.is_some_and(|d| Instant::now() >= d),
                Err(RecvTimeoutError::Disconnected) => {
                    events += batch.len() as u64;
                    return match self.flush(&mut batch, stop) {
                        Ok(()) => Pumped::Ended { events },
                        Err(p) => p,
                    };
                }
            };
            if full && !batch.is_empty() {
                let n = batch.len() as u64;
                if let Err(p) = self.flush(&mut batch, stop) {
                    return p;
                }
                events += n;
                deadline = None;
            }
        }
    }

    /// Puts `batch` (if any) and clears it.
    fn flush(&self, batch: &mut Vec<Event>, stop: &AtomicBool) -> Result<(), Pumped> {
        if batch.is_empty() {
            return Ok(());
        }
        let (src, kind) = (self.source, self.kind);
        match put_batch_counted(src, kind, self.channels, batch, stop, self.counters) {
            Ok(()) => {
                batch.clear();
                Ok(())
            }
            Err(PutError::Stopped) => {
                tracing::warn!(
                    source = %src,
                    "source `{src}` ({kind}): shutdown abandoned {} events read but not put",
                    batch.len()
                );
                Err(Pumped::Stopped)
            }
            Err(PutError::Failed(_)) => Err(Pumped::Failed),
        }
    }
}

/// What the line sources' tests share: a small memory channel and ways to read it back.
#[cfg(test)]
pub(crate) mod testing {
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use crate::channel::memory::{MemoryChannel, MemoryChannelConfig};
    use crate::channel::Channel;

    pub(crate) fn memory(capacity: u64, tx: usize) -> Arc<dyn Channel> {
        Arc::new(
            MemoryChannel::new(
                "c1",
                MemoryChannelConfig {
                    capacity,
                    transaction_capacity: tx,
                    byte_capacity: None,
                    keep_alive: Duration::from_millis(20),
                },
            )
            .expect("channel"),
        )
    }

    /// Takes everything committed so far into `got`.
    pub(crate) fn drain(ch: &dyn Channel, got: &mut Vec<String>) {
        loop {
            let mut tx = ch.take_transaction();
            let mut out = Vec::new();
            let n = tx.take_batch(10, &mut out).expect("take");
            tx.commit().expect("commit take");
            got.extend(
                out.iter()
                    .map(|e| String::from_utf8(e.body().to_vec()).expect("utf8")),
            );
            if n == 0 {
                return;
            }
        }
    }

    /// Drains `ch` until `cond` holds on what was taken, or panics after `secs`.
    pub(crate) fn collect_until(
        ch: &dyn Channel,
        secs: u64,
        what: &str,
        cond: impl Fn(&[String]) -> bool,
    ) -> Vec<String> {
        let end = Instant::now() + Duration::from_secs(secs);
        let mut got = Vec::new();
        loop {
            drain(ch, &mut got);
            if cond(&got) {
                return got;
            }
            assert!(
                Instant::now() < end,
                "timed out waiting for {what}: {got:?}"
            );
            ch.wait_available(Duration::from_millis(20));
        }
    }
}
