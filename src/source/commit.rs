//! Group commit for network sources: everything a source's connections have read and not yet
//! acknowledged goes into as few channel transactions as the input allows, and each client is
//! acknowledged after the commit that holds its events.
//!
//! A connection (a thread, or a task on a runtime) hands what it has read to
//! [`Committer::submit`] as one request and gets a [`Ticket`] to wait on (blocking or
//! `.await`). One committer thread per source takes every request queued at that moment, in
//! arrival order, concatenates them up to the channels' smallest `transactionCapacity`, and
//! puts them with one [`ChannelProcessor::put`]: one transaction, one sync per channel, for
//! all of them. Then it answers each request's ticket.
//!
//! Invariants:
//! - A request is committed whole or not at all: it is never split across transactions, and
//!   a request that alone exceeds the capacity is put alone (and refused by the channel,
//!   naming the capacity), never cut.
//! - A ticket resolves `Ok` only after every required channel's commit holding its events
//!   returned; requests are committed in the order they were submitted, so a connection that
//!   submits several before waiting sees them complete in order.
//! - One request's bad events cannot fail its neighbours: when a grouped put fails for a
//!   reason that is not the channel being full, each request of the group is put alone, so
//!   only the one the channel refuses fails.
//! - Blocking commits happen only on the committer thread, never on a caller's runtime worker.
//!
//! The committer keeps the source's accepted and failure counters (EventAcceptedCount,
//! ChannelWriteFail); the received counters are the connection's, since it knows what a call
//! or a line is.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::oneshot;

use super::{put_with, PutError};
use crate::channel::ChannelError;
use crate::event::Event;
use crate::metrics::{ComponentCounters, Counter};
use crate::report::ReportPolicy;
use crate::route::ChannelProcessor;

/// How often an idle committer looks at the stop flag.
const IDLE_POLL: Duration = Duration::from_millis(50);
/// Longest wait between attempts on a full channel with [`WhenFull::Wait`].
const WAIT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// What the committer does when a channel is full (or below its free-space floor).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WhenFull {
    /// Retry with a growing backoff until there is room or the source stops; the clients
    /// wait for their acknowledgement (netcat, syslog, thrift).
    Wait,
    /// Answer [`CommitError::Full`] at once: the client is told to come back later (http's
    /// 503) or resends (avro's FAILED, after the channel's own keep-alive wait).
    Refuse,
}

/// Why a request was not committed.
#[derive(Clone, Debug, thiserror::Error)]
pub enum CommitError {
    /// A channel is full and the committer does not wait ([`WhenFull::Refuse`]).
    #[error("{0}")]
    Full(ChannelError),
    /// The source is stopping; the events were not committed.
    #[error("the source is stopping")]
    Stopped,
    /// A channel refused the events for a reason retrying will not fix (too many or too
    /// large events, a poisoned or closed channel).
    #[error("{0}")]
    Failed(ChannelError),
}

struct Request {
    events: Vec<Event>,
    done: oneshot::Sender<Result<(), CommitError>>,
}

/// The source's committer: cheap to clone, one per source, shared by its connections.
#[derive(Clone)]
pub struct Committer {
    queue: mpsc::Sender<Request>,
    max_batch: usize,
    thread: Arc<Mutex<Option<JoinHandle<()>>>>,
}

impl Committer {
    /// Starts the committer thread of source `source` putting through `channels`. It runs
    /// until `stop` is set (answering what is queued with [`CommitError::Stopped`]) or every
    /// clone of the committer is dropped.
    pub fn start(
        source: &str,
        channels: Arc<ChannelProcessor>,
        counters: Arc<ComponentCounters>,
        when_full: WhenFull,
        stop: Arc<AtomicBool>,
    ) -> std::io::Result<Committer> {
        let (queue, requests) = mpsc::channel();
        let max_batch = channels.max_batch();
        let worker = Worker {
            source: source.to_string(),
            channels,
            counters,
            when_full,
            stop,
            max_batch,
        };
        let thread = std::thread::Builder::new()
            .name(format!("{source}-commit"))
            .spawn(move || worker.run(&requests))?;
        Ok(Committer {
            queue,
            max_batch,
            thread: Arc::new(Mutex::new(Some(thread))),
        })
    }

    /// The most events one request should carry (the channels' smallest
    /// `transactionCapacity`): a connection that has read more submits several requests.
    pub fn max_batch(&self) -> usize {
        self.max_batch
    }

    /// Queues `events` to be committed (with whatever else is queued) and returns the ticket
    /// that resolves once they are. An empty request resolves at once.
    pub fn submit(&self, events: Vec<Event>) -> Ticket {
        let (done, rx) = oneshot::channel();
        if events.is_empty() {
            let _ = done.send(Ok(()));
        } else if let Err(mpsc::SendError(r)) = self.queue.send(Request { events, done }) {
            let _ = r.done.send(Err(CommitError::Stopped));
        }
        Ticket { rx }
    }

    /// Waits for the committer thread to end (after the stop flag is set): the source's
    /// last commit has returned when this does. Later calls return at once.
    pub fn finish(&self) {
        let thread = self.thread.lock().take();
        if let Some(t) = thread {
            if t.join().is_err() {
                tracing::error!("a source's committer thread panicked");
            }
        }
    }
}

/// A submitted request's outcome, to wait on with [`Ticket::wait`] (threads) or `.await`.
#[must_use = "the events are acknowledged only once the ticket resolves Ok"]
pub struct Ticket {
    rx: oneshot::Receiver<Result<(), CommitError>>,
}

impl Ticket {
    /// Blocks until the request is committed or refused. Not for use on a runtime worker.
    pub fn wait(self) -> Result<(), CommitError> {
        self.rx.blocking_recv().unwrap_or(Err(CommitError::Stopped))
    }
}

impl Future for Ticket {
    type Output = Result<(), CommitError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.rx)
            .poll(cx)
            .map(|r| r.unwrap_or(Err(CommitError::Stopped)))
    }
}

struct Worker {
    source: String,
    channels: Arc<ChannelProcessor>,
    counters: Arc<ComponentCounters>,
    when_full: WhenFull,
    stop: Arc<AtomicBool>,
    max_batch: usize,
}

impl Worker {
    fn run(&self, requests: &mpsc::Receiver<Request>) {
        // A request that did not fit the previous group starts the next one.
        let mut carried: Option<Request> = None;
        let mut events: Vec<Event> = Vec::new();
        loop {
            let first = match carried.take() {
                Some(r) => r,
                None => match requests.recv_timeout(IDLE_POLL) {
                    Ok(r) => r,
                    Err(RecvTimeoutError::Timeout) => {
                        if self.stop.load(Ordering::Acquire) {
                            break;
                        }
                        continue;
                    }
                    Err(RecvTimeoutError::Disconnected) => return,
                },
            };
            if self.stop.load(Ordering::Acquire) {
                let _ = first.done.send(Err(CommitError::Stopped));
                break;
            }
            let mut group = vec![first];
            let mut n = group[0].events.len();
            while n < self.max_batch {
                match requests.try_recv() {
                    Ok(r) if n + r.events.len() <= self.max_batch => {
                        n += r.events.len();
                        group.push(r);
                    }
                    Ok(r) => {
                        carried = Some(r);
                        break;
                    }
                    Err(_) => break,
                }
            }
            self.commit(group, &mut events);
        }
        // Stopping: nothing queued is committed any more.
        for r in carried.into_iter().chain(requests.try_iter()) {
            let _ = r.done.send(Err(CommitError::Stopped));
        }
    }

    /// Puts the events of `group` in one transaction per channel and answers each request.
    fn commit(&self, group: Vec<Request>, events: &mut Vec<Event>) {
        events.clear();
        for r in &group {
            events.extend(r.events.iter().cloned());
        }
        let result = self.put(events);
        events.clear();
        match result {
            Err(CommitError::Failed(_)) if group.len() > 1 => {
                for r in group {
                    let alone = self.put(&r.events);
                    self.answer(r, alone);
                }
            }
            result => {
                for r in group {
                    self.answer(r, result.clone());
                }
            }
        }
    }

    fn put(&self, events: &[Event]) -> Result<(), CommitError> {
        let wait = self.when_full == WhenFull::Wait;
        match put_with(
            &self.source,
            &self.channels,
            events,
            &self.stop,
            ReportPolicy::default(),
            WAIT_BACKOFF_MAX,
            wait,
        ) {
            Ok(()) => Ok(()),
            Err(PutError::Stopped) => Err(CommitError::Stopped),
            Err(PutError::Failed(e)) if e.is_retryable() => Err(CommitError::Full(e)),
            Err(PutError::Failed(e)) => Err(CommitError::Failed(e)),
        }
    }

    fn answer(&self, r: Request, outcome: Result<(), CommitError>) {
        match &outcome {
            Ok(()) => self
                .counters
                .add(Counter::EventAcceptedCount, r.events.len() as u64),
            Err(CommitError::Stopped) => {}
            Err(_) => self.counters.inc(Counter::ChannelWriteFail),
        }
        // A connection that went away no longer waits for its answer.
        let _ = r.done.send(outcome);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::channel::memory::{MemoryChannel, MemoryChannelConfig};
    use crate::channel::Channel;
    use crate::metrics::ComponentType;

    fn memory(capacity: u64, transaction_capacity: usize) -> Arc<dyn Channel> {
        let cfg = MemoryChannelConfig {
            capacity,
            transaction_capacity,
            keep_alive: Duration::ZERO,
            ..MemoryChannelConfig::default()
        };
        Arc::new(MemoryChannel::new("c1", cfg).expect("channel"))
    }

    fn start(ch: &Arc<dyn Channel>, when_full: WhenFull) -> (Committer, Arc<AtomicBool>) {
        let stop = Arc::new(AtomicBool::new(false));
        let processor = Arc::new(ChannelProcessor::replicating("r1", vec![Arc::clone(ch)]));
        let counters = ComponentCounters::detached("r1", ComponentType::Source);
        let c = Committer::start("r1", processor, counters, when_full, Arc::clone(&stop))
            .expect("committer thread");
        (c, stop)
    }

    fn events(tag: &str, n: usize) -> Vec<Event> {
        (0..n).map(|i| Event::new(format!("{tag}-{i}"))).collect()
    }

    fn drain(ch: &dyn Channel) -> Vec<String> {
        let mut tx = ch.take_transaction();
        let mut out = Vec::new();
        tx.take_batch(usize::MAX, &mut out).expect("take");
        tx.commit().expect("commit take");
        out.iter()
            .map(|e| String::from_utf8_lossy(e.body()).into_owned())
            .collect()
    }

    #[test]
    fn requests_queued_together_share_one_transaction_and_keep_their_order() {
        let ch = memory(1000, 100);
        let (c, stop) = start(&ch, WhenFull::Wait);
        let tickets: Vec<Ticket> = (0..10)
            .map(|i| c.submit(events(&i.to_string(), 5)))
            .collect();
        for t in tickets {
            t.wait().expect("committed");
        }
        let bodies = drain(ch.as_ref());
        let expected: Vec<String> = (0..10)
            .flat_map(|i| (0..5).map(move |j| format!("{i}-{j}")))
            .collect();
        assert_eq!(bodies, expected);
        assert!(
            ch.stats().commits < 10,
            "10 requests queued at once took {} commits",
            ch.stats().commits
        );
        stop.store(true, Ordering::Release);
        c.finish();
    }

    #[test]
    fn a_request_the_channel_refuses_fails_alone() {
        // transactionCapacity 4: the request of 6 cannot be committed; its neighbours can.
        let ch = memory(100, 4);
        let (c, stop) = start(&ch, WhenFull::Wait);
        let a = c.submit(events("a", 2));
        let big = c.submit(events("big", 6));
        let b = c.submit(events("b", 2));
        a.wait().expect("a committed");
        match big.wait() {
            Err(CommitError::Failed(ChannelError::TransactionFull { .. })) => {}
            other => panic!("the oversized request: {other:?}"),
        }
        b.wait().expect("b committed");
        assert_eq!(drain(ch.as_ref()), ["a-0", "a-1", "b-0", "b-1"]);
        stop.store(true, Ordering::Release);
        c.finish();
    }

    #[test]
    fn refuse_answers_full_at_once_and_wait_waits_for_room() {
        let ch = memory(4, 4);
        let (refusing, stop1) = start(&ch, WhenFull::Refuse);
        refusing.submit(events("x", 4)).wait().expect("fills");
        match refusing.submit(events("y", 1)).wait() {
            Err(CommitError::Full(e)) => assert!(e.is_retryable()),
            other => panic!("a full channel under Refuse: {other:?}"),
        }
        let (waiting, stop2) = start(&ch, WhenFull::Wait);
        let t = waiting.submit(events("z", 1));
        // Room appears only after the put has been refused at least once.
        let deadline = Instant::now() + Duration::from_secs(30);
        while ch.stats().put_errors < 2 {
            assert!(Instant::now() < deadline, "the waiting put never tried");
            std::thread::sleep(Duration::from_millis(2));
        }
        assert_eq!(drain(ch.as_ref()).len(), 4);
        t.wait().expect("committed once there was room");
        assert_eq!(drain(ch.as_ref()), ["z-0"]);
        for (c, s) in [(refusing, stop1), (waiting, stop2)] {
            s.store(true, Ordering::Release);
            c.finish();
        }
    }

    #[test]
    fn stopping_answers_what_waits_with_stopped() {
        let ch = memory(2, 2);
        let (c, stop) = start(&ch, WhenFull::Wait);
        c.submit(events("x", 2)).wait().expect("fills");
        let t = c.submit(events("y", 1));
        let deadline = Instant::now() + Duration::from_secs(30);
        while ch.stats().put_errors < 1 {
            assert!(Instant::now() < deadline, "the waiting put never tried");
            std::thread::sleep(Duration::from_millis(2));
        }
        stop.store(true, Ordering::Release);
        assert!(matches!(t.wait(), Err(CommitError::Stopped)));
        c.finish();
        assert!(matches!(
            c.submit(events("late", 1)).wait(),
            Err(CommitError::Stopped)
        ));
        assert_eq!(drain(ch.as_ref()).len(), 2);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_ticket_can_be_awaited() {
        let ch = memory(10, 10);
        let (c, stop) = start(&ch, WhenFull::Wait);
        c.submit(events("a", 3)).await.expect("committed");
        assert_eq!(drain(ch.as_ref()).len(), 3);
        stop.store(true, Ordering::Release);
        c.finish();
    }
}
