//! The lone runner's loop for a sink that can have several batches in flight
//! ([`Sink::max_in_flight`] > 1: the kafka sink, whose records are acknowledged by the brokers
//! some time after they are handed over).
//!
//! Each batch is taken in its own take transaction and handed to the sink with
//! [`Sink::send`]; its transaction stays open until [`Sink::finish_oldest`] reports it done
//! (commit) or failed (rollback). Up to `max_in_flight` batches are open at once, so the wait
//! for one batch's acknowledgements overlaps the taking and sending of the next ones, where
//! `process` would wait for each in turn.
//!
//! Invariants, the same as the one-batch runner's: a take commits only after the sink said its
//! batch is done; a failed batch rolls back (its events return to the channel) and the runner
//! backs off. On a failure every batch still in flight is finished first (each committed or
//! rolled back on its own outcome) before the backoff, so nothing stays open while the runner
//! sleeps; batches that succeeded after one that failed stay committed, so a retried batch may
//! arrive after later ones (at-least-once, unordered across batches, as with Flume's sink
//! groups). At shutdown every batch in flight is finished.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::{Backoff, Drain, Outcome, RunnerPolicy, SinkRunner, Taken, IDLE_BACKOFF_START};
use crate::metrics::Counter;
use crate::stop::sleep_unless_stopped;

/// Runs `r` until `stop` is set, with up to its `max_in_flight` batches open at once.
pub(super) fn run(r: SinkRunner, stop: &AtomicBool, policy: RunnerPolicy) {
    let depth = r.sink.max_in_flight().max(1);
    let mut drain = Drain::new(r, policy);
    drain.counters().set(Counter::Active, 1);
    let mut in_flight: VecDeque<Taken> = VecDeque::with_capacity(depth);
    let mut idle = IDLE_BACKOFF_START;
    let mut backoff = Backoff::new(policy);
    while !stop.load(Ordering::Acquire) {
        drain.between_batches(Instant::now());
        // One backoff step per failed round, however many batches of it failed.
        let mut wait = None;
        let mut on_failure =
            |retryable: bool| *wait.get_or_insert_with(|| backoff.after_failure(retryable));
        let outcome = if in_flight.len() >= depth {
            finish_oldest(&mut drain, &mut in_flight, &mut on_failure)
        } else {
            match drain.take(&mut on_failure) {
                Ok(taken) => match drain.r.sink.send(&drain.events) {
                    Ok(()) => {
                        // Handed over: its outcome comes with a later `finish_oldest`.
                        in_flight.push_back(taken);
                        continue;
                    }
                    Err(e) => drain.settle(taken, Err(e), &mut on_failure),
                },
                // Nothing new to take: finish what is in flight rather than wait idle.
                Err(Outcome::Empty) if !in_flight.is_empty() => {
                    finish_oldest(&mut drain, &mut in_flight, &mut on_failure)
                }
                Err(outcome) => outcome,
            }
        };
        match outcome {
            Outcome::Closed => break,
            Outcome::Failed => {
                finish_all(&mut drain, &mut in_flight, &mut on_failure);
                let pause = wait.unwrap_or(Duration::ZERO);
                sleep_unless_stopped(pause, stop);
            }
            Outcome::Delivered => {
                idle = IDLE_BACKOFF_START;
                backoff.reset();
            }
            Outcome::Empty => idle = drain.wait_for_events(idle),
        }
    }
    let mut wait = None;
    let mut on_failure =
        |retryable: bool| *wait.get_or_insert_with(|| backoff.after_failure(retryable));
    finish_all(&mut drain, &mut in_flight, &mut on_failure);
    drain.finish();
}

/// Finishes the oldest batch in flight: commits or rolls back its take.
fn finish_oldest(
    drain: &mut Drain,
    in_flight: &mut VecDeque<Taken>,
    on_failure: &mut dyn FnMut(bool) -> Duration,
) -> Outcome {
    let Some(taken) = in_flight.pop_front() else {
        return Outcome::Empty;
    };
    let result = drain.r.sink.finish_oldest();
    drain.settle(taken, result, on_failure)
}

/// Finishes every batch in flight, oldest first.
fn finish_all(
    drain: &mut Drain,
    in_flight: &mut VecDeque<Taken>,
    on_failure: &mut dyn FnMut(bool) -> Duration,
) {
    while !in_flight.is_empty() {
        finish_oldest(drain, in_flight, on_failure);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    use super::super::{Retry, RunnerPolicy, Sink, SinkCause, SinkError, SinkRunner};
    use crate::channel::memory::{MemoryChannel, MemoryChannelConfig};
    use crate::channel::Channel;
    use crate::event::Event;
    use crate::metrics::{ComponentCounters, ComponentType, Counter};
    use crate::report::ReportPolicy;

    /// What the test sink saw: bodies of batches finished Ok, the most batches it held at
    /// once, and how many `finish_oldest` calls to fail (the first ones).
    #[derive(Default)]
    struct Seen {
        delivered: Vec<String>,
        held: Vec<Vec<String>>,
        most_held: usize,
        fail_first: usize,
        finished: usize,
    }

    struct Pipelined(Arc<Mutex<Seen>>);

    impl Sink for Pipelined {
        fn process(&mut self, _: &[Event]) -> Result<(), SinkError> {
            panic!("a pipelined sink is driven with send and finish_oldest");
        }
        fn max_in_flight(&self) -> usize {
            3
        }
        fn send(&mut self, events: &[Event]) -> Result<(), SinkError> {
            let mut s = self.0.lock().expect("lock");
            let bodies = events
                .iter()
                .map(|e| String::from_utf8_lossy(e.body()).into_owned())
                .collect();
            s.held.push(bodies);
            s.most_held = s.most_held.max(s.held.len());
            Ok(())
        }
        fn finish_oldest(&mut self) -> Result<(), SinkError> {
            let mut s = self.0.lock().expect("lock");
            let batch = s.held.remove(0);
            s.finished += 1;
            if s.finished <= s.fail_first {
                return Err(SinkError::with_retry(
                    "k1",
                    Retry::Retryable,
                    SinkCause::Other("not acknowledged".into()),
                ));
            }
            s.delivered.extend(batch);
            Ok(())
        }
    }

    fn run(n: usize, fail_first: usize) -> (Seen, Arc<ComponentCounters>) {
        let ch = Arc::new(
            MemoryChannel::new(
                "c1",
                MemoryChannelConfig {
                    capacity: n as u64,
                    transaction_capacity: n,
                    ..MemoryChannelConfig::default()
                },
            )
            .expect("channel"),
        );
        let mut tx = ch.put_transaction();
        for i in 0..n {
            tx.put(Event::new(i.to_string().into_bytes())).expect("put");
        }
        tx.commit().expect("commit");
        let seen = Arc::new(Mutex::new(Seen {
            fail_first,
            ..Seen::default()
        }));
        let counters = ComponentCounters::detached("k1", ComponentType::Sink);
        let runner = SinkRunner {
            name: "k1".into(),
            type_name: "test",
            channel: ch.clone(),
            sink: Box::new(Pipelined(seen.clone())),
            batch_size: 10,
            counters: counters.clone(),
        };
        let stop = Arc::new(AtomicBool::new(false));
        let stopper = stop.clone();
        let policy = RunnerPolicy {
            backoff_start: Duration::from_millis(1),
            backoff_max: Duration::from_millis(5),
            report: ReportPolicy::default(),
        };
        let t = std::thread::spawn(move || runner.run_with(stopper, policy));
        let deadline = Instant::now() + Duration::from_secs(30);
        while ch.stats().size > 0 {
            assert!(Instant::now() < deadline, "the channel did not drain");
            std::thread::sleep(Duration::from_millis(2));
        }
        stop.store(true, std::sync::atomic::Ordering::Release);
        t.join().expect("runner thread");
        let seen = std::mem::take(&mut *seen.lock().expect("lock"));
        (seen, counters)
    }

    #[test]
    fn batches_overlap_and_every_event_is_delivered_once_its_batch_is_done() {
        let (seen, counters) = run(1000, 0);
        assert_eq!(seen.most_held, 3, "three batches in flight at once");
        let mut got: Vec<usize> = seen
            .delivered
            .iter()
            .map(|b| b.parse().expect("n"))
            .collect();
        assert_eq!(got.len(), 1000);
        got.sort_unstable();
        assert_eq!(got, (0..1000).collect::<Vec<_>>());
        assert_eq!(counters.get(Counter::EventDrainSuccessCount), 1000);
    }

    #[test]
    fn a_failed_batch_goes_back_to_the_channel_and_is_delivered_later() {
        let (seen, counters) = run(200, 2);
        let mut got: Vec<usize> = seen
            .delivered
            .iter()
            .map(|b| b.parse().expect("n"))
            .collect();
        got.sort_unstable();
        assert_eq!(
            got,
            (0..200).collect::<Vec<_>>(),
            "each event once, none lost"
        );
        assert_eq!(counters.get(Counter::EventWriteFail), 2);
        assert!(seen.held.is_empty(), "nothing left in flight at shutdown");
    }
}
