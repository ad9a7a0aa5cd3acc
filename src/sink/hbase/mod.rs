//! The HBase sinks: Flume 1.11's `hbase2` (HBase2Sink), `hbase` (HBaseSink) and `asynchbase`
//! (AsyncHBaseSink), one implementation over flumen's own HBase client ([`crate::hbase`]), which
//! speaks HBase's native protocol (ZooKeeper, then RPC to the region servers), so a Flume file
//! needs only its `zookeeperQuorum` and `znodeParent`, as with Flume.
//!
//! A batch: the serializer ([`serializer`]: Flume's simple or regex serializers, with their
//! exact row keys and cells) turns each event into puts and increments; every put, then every
//! increment (summed per cell with `coalesceIncrements`), is handed to the client at once
//! ([`Client::submit`]), and [`Client::complete`] later reads the answers, retrying what the
//! servers did not take. Up to [`MAX_IN_FLIGHT`] batches are in flight, each with its take
//! still open, so the servers work on one while the sink waits for another (a sink group uses
//! `process`, one batch at a time). `Ok` means the region servers acknowledged every
//! mutation, and only then may the runner commit that take. A failure rolls it back and is
//! retried with the runner's backoff: retryable when waiting can help (a quorum or region server down, a region
//! moving), permanent when someone must act (the table or family gone), as
//! [`HBaseError::is_retryable`] says. HBase has no multi-row atomicity, so after a failure some
//! mutations of the batch may have landed: the retry writes puts again with new generated row
//! keys (or the same, from `rowKeyIndex`) and counts increments again, as Flume's sinks do.
//!
//! Start-up, as Flume's `start()`: the sink connects and checks that the table and column
//! family exist, and a missing one stops the agent naming it. A quorum or cluster that cannot
//! be reached then is not fatal: the sink starts, says so, and connects on its first batch,
//! retried by the runner like any other failure. Each step of the check (ZooKeeper, then the
//! table) waits at most [`STARTUP_CHECK`].
//!
//! Counters: ConnectionCreatedCount when a client connects, ConnectionFailedCount when
//! connecting or the table check fails, ConnectionClosedCount when a client is dropped (at
//! stop, and after `maxConsecutiveFails` failed batches in a row, when a new client is made
//! for the next batch, as Flume's asynchbase sink renews its client).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use super::{Retry, Sink, SinkCause, SinkError, SinkSpec, SinkType};
use crate::config::{ConfigError, Keys, Registered};
use crate::event::Event;
use crate::hbase::{Client, HBaseError, InFlight};
use crate::metrics::{ComponentCounters, Counter};

pub mod config;
pub mod regex_serializer;
pub mod serializer;
pub mod simple;

pub use config::{Flavor, HBaseSinkConfig};

/// The fewest keys of an HBase sink, for the docs check.
const MINIMAL: &[(&str, &str)] = &[("table", "t"), ("columnFamily", "f")];

/// `hbase2` / Flume's HBase2Sink.
pub const HBASE2_TYPE: SinkType = Registered {
    alias: "hbase2",
    class: Some("org.apache.flume.sink.hbase2.HBase2Sink"),
    parse: parse_hbase2,
    minimal: MINIMAL,
};

/// `hbase` / Flume's HBaseSink (for HBase 1 in Flume; flumen's client speaks to HBase 1.x and
/// 2.x alike).
pub const HBASE_TYPE: SinkType = Registered {
    alias: "hbase",
    class: Some("org.apache.flume.sink.hbase.HBaseSink"),
    parse: parse_hbase,
    minimal: MINIMAL,
};

/// `asynchbase` / Flume's AsyncHBaseSink.
pub const ASYNC_TYPE: SinkType = Registered {
    alias: "asynchbase",
    class: Some("org.apache.flume.sink.hbase.AsyncHBaseSink"),
    parse: parse_async,
    minimal: MINIMAL,
};

fn parse_hbase2(keys: &mut Keys<'_>) -> Result<Box<dyn SinkSpec>, ConfigError> {
    Ok(Box::new(config::parse(keys, Flavor::HBase2)?))
}

fn parse_hbase(keys: &mut Keys<'_>) -> Result<Box<dyn SinkSpec>, ConfigError> {
    Ok(Box::new(config::parse(keys, Flavor::HBase)?))
}

fn parse_async(keys: &mut Keys<'_>) -> Result<Box<dyn SinkSpec>, ConfigError> {
    Ok(Box::new(config::parse(keys, Flavor::Async)?))
}

impl SinkSpec for HBaseSinkConfig {
    fn batch_size(&self) -> Option<(usize, &'static str)> {
        Some((self.batch_size, "batchSize"))
    }

    fn build(&self, name: &str) -> Result<Box<dyn Sink>, SinkError> {
        let mut sink = HBaseSink::new(name, self.clone());
        sink.start()?;
        Ok(Box::new(sink))
    }
}

/// The longest the start-up check waits for HBase, so a cluster that does not answer delays
/// the agent's start by this much at most (the sink then connects on its first batch).
pub const STARTUP_CHECK: Duration = Duration::from_secs(15);

/// See the module docs.
pub struct HBaseSink {
    name: String,
    config: HBaseSinkConfig,
    client: Option<Client>,
    /// Whether the table and family were found on some connection.
    checked: bool,
    /// Failed batches in a row.
    failures_in_row: u32,
    /// The client is to be made anew before the next batch (after `maxConsecutiveFails`).
    renew: bool,
    /// Batches sent and not finished, oldest first.
    pending: VecDeque<Pending>,
    counters: Option<Arc<ComponentCounters>>,
    /// Counts made before the counters were attached (at start-up).
    early: Vec<Counter>,
}

impl HBaseSink {
    /// A sink that has not connected yet.
    pub fn new(name: &str, config: HBaseSinkConfig) -> HBaseSink {
        HBaseSink {
            name: name.to_string(),
            config,
            client: None,
            checked: false,
            failures_in_row: 0,
            renew: false,
            pending: VecDeque::new(),
            counters: None,
            early: Vec::new(),
        }
    }

    fn count(&mut self, c: Counter) {
        match &self.counters {
            Some(counters) => counters.inc(c),
            None => self.early.push(c),
        }
    }

    /// Where the sink writes, for messages.
    fn target(&self) -> String {
        format!(
            "HBase table `{}` (ZooKeeper quorum {}, znodeParent {})",
            self.config.table, self.config.quorum, self.config.znode_parent
        )
    }

    /// The sink's error for a client failure.
    fn error(&self, e: &HBaseError) -> SinkError {
        let retry = if e.is_retryable() {
            Retry::Retryable
        } else {
            Retry::Permanent
        };
        // The attempt count and time of a retried call change from batch to batch: the
        // message keeps the last failure only, so one cause is reported once.
        let mut last = e;
        while let HBaseError::RetriesExhausted { last: inner, .. } = last {
            last = inner;
        }
        let retried = if std::ptr::eq(last, e) {
            String::new()
        } else {
            format!(
                " (the client retried for up to {} s)",
                self.config.operation_timeout.as_secs()
            )
        };
        SinkError::with_retry(
            &self.name,
            retry,
            SinkCause::Other(format!("{}: {last}{retried}", self.target())),
        )
    }

    /// Flume's `start()`: connect and check the table and family (see the module docs).
    fn start(&mut self) -> Result<(), SinkError> {
        let real = self.config.client_config();
        let mut check = real.clone();
        check.rpc_timeout = check.rpc_timeout.min(STARTUP_CHECK);
        check.operation_timeout = check.operation_timeout.min(STARTUP_CHECK);
        let same = check.rpc_timeout == real.rpc_timeout
            && check.operation_timeout == real.operation_timeout;
        let checked = Client::connect(check).and_then(|mut client| {
            client
                .check_table(&self.config.table, &self.config.family)
                .map(|()| client)
        });
        match checked {
            Ok(client) => {
                self.checked = true;
                if same {
                    self.client = Some(client);
                    self.count(Counter::ConnectionCreatedCount);
                }
                Ok(())
            }
            Err(e) if e.is_retryable() => {
                self.count(Counter::ConnectionFailedCount);
                tracing::warn!(
                    sink = %self.name,
                    "sink `{}`: cannot check {} at start-up: {e}; the sink starts anyway and connects with its first batch, retried with backoff until HBase answers",
                    self.name,
                    self.target()
                );
                Ok(())
            }
            Err(e) => {
                self.count(Counter::ConnectionFailedCount);
                Err(self.error(&e))
            }
        }
    }

    /// The connected client, connecting (and checking the table, if start-up could not) now
    /// if there is none.
    fn client(&mut self) -> Result<&mut Client, SinkError> {
        if self.client.is_none() {
            let mut client = match Client::connect(self.config.client_config()) {
                Ok(c) => c,
                Err(e) => {
                    self.count(Counter::ConnectionFailedCount);
                    return Err(self.error(&e));
                }
            };
            if !self.checked {
                if let Err(e) = client.check_table(&self.config.table, &self.config.family) {
                    self.count(Counter::ConnectionFailedCount);
                    return Err(self.error(&e));
                }
                self.checked = true;
            }
            self.count(Counter::ConnectionCreatedCount);
            return Ok(self.client.insert(client));
        }
        // Present: checked just above.
        self.client.as_mut().ok_or_else(|| {
            SinkError::new(
                &self.name,
                "internal: the HBase client vanished".to_string(),
            )
        })
    }

    /// Drops the client (it is made anew for the next batch).
    fn drop_client(&mut self) {
        if self.client.take().is_some() {
            self.count(Counter::ConnectionClosedCount);
        }
    }
}

impl HBaseSink {
    /// The batch's mutations; an event the serializer cannot write fails it (permanently:
    /// the event stays at the head of the channel, as in Flume).
    fn serialize(&self, events: &[Event]) -> Result<Vec<crate::hbase::Mutation>, SinkError> {
        serializer::mutations(
            &self.config.serializer,
            events,
            &self.config.family,
            self.config.coalesce_increments,
        )
        .map_err(|u| {
            SinkError::with_retry(
                &self.name,
                Retry::Permanent,
                SinkCause::Other(format!(
                    "{}; the batch stays in the channel until that event is removed",
                    u.0
                )),
            )
        })
    }
}

/// A batch handed over with [`Sink::send`] and not finished yet.
enum Pending {
    /// The serializer wrote nothing for it (every event dropped): done already.
    Empty,
    /// Sent to the region servers; their answers are read by [`Client::complete`].
    Sent(InFlight),
}

/// Batches handed to the client and not yet acknowledged, at most: while the oldest waits for
/// its answers the runner takes, serializes and sends the next, so the region servers work on
/// one while the sink waits for another (each batch's take stays open until it is done).
const MAX_IN_FLIGHT: usize = 4;

impl Sink for HBaseSink {
    fn process(&mut self, events: &[Event]) -> Result<(), SinkError> {
        self.send(events)?;
        self.finish_oldest()
    }

    fn max_in_flight(&self) -> usize {
        MAX_IN_FLIGHT
    }

    fn send(&mut self, events: &[Event]) -> Result<(), SinkError> {
        if self.renew && self.pending.is_empty() {
            self.renew = false;
            tracing::debug!(
                sink = %self.name,
                "failed batches in a row: the HBase client is made anew"
            );
            self.drop_client();
        }
        let mutations = self.serialize(events)?;
        if mutations.is_empty() {
            self.pending.push_back(Pending::Empty);
            return Ok(());
        }
        let table = self.config.table.clone();
        let batch = self.client()?.submit(&table, mutations);
        self.pending.push_back(Pending::Sent(batch));
        Ok(())
    }

    fn finish_oldest(&mut self) -> Result<(), SinkError> {
        let Some(Pending::Sent(batch)) = self.pending.pop_front() else {
            return Ok(());
        };
        // The client is only dropped once no batch is in flight (see `send`).
        let Some(client) = self.client.as_mut() else {
            return Err(SinkError::new(
                &self.name,
                "internal: a batch in flight without its HBase client".to_string(),
            ));
        };
        match client.complete(batch) {
            Ok(()) => {
                self.failures_in_row = 0;
                Ok(())
            }
            Err(e) => {
                let err = self.error(&e);
                self.failures_in_row += 1;
                let max = self.config.max_consecutive_fails;
                if max > 0 && self.failures_in_row >= max {
                    // Renewed before the next batch once those in flight are finished.
                    self.failures_in_row = 0;
                    self.renew = true;
                }
                Err(err)
            }
        }
    }

    fn attach_counters(&mut self, counters: Arc<ComponentCounters>) {
        for c in self.early.drain(..) {
            counters.inc(c);
        }
        self.counters = Some(counters);
    }

    fn stop(&mut self) -> Result<(), SinkError> {
        // The runner has finished every batch in flight; any left were given up.
        self.pending.clear();
        self.drop_client();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::hbase::simple::SimpleConfig;

    fn config() -> HBaseSinkConfig {
        let mut k = Keys::from_pairs(
            "sinks",
            "k1",
            &[
                ("table", "ns:t"),
                ("columnFamily", "f"),
                ("zookeeperQuorum", "127.0.0.1:1"),
            ],
        );
        config::parse(&mut k, Flavor::HBase2).expect("parses")
    }

    #[test]
    fn the_spec_reports_its_batch_size_key() {
        let c = config();
        assert_eq!(c.batch_size(), Some((100, "batchSize")));
    }

    #[test]
    fn client_errors_name_the_table_and_quorum_and_keep_the_verdict() {
        let sink = HBaseSink::new("k1", config());
        let e = sink.error(&HBaseError::TableNotFound {
            table: "ns:t".into(),
        });
        assert!(!e.is_retryable());
        let text = e.to_string();
        assert!(
            text.contains("sink `k1`") && text.contains("`ns:t`"),
            "{text}"
        );
        assert!(text.contains("127.0.0.1:1"), "{text}");

        let inner = || HBaseError::Connection {
            server: "rs1:16020".into(),
            detail: "connection reset".into(),
        };
        let e1 = sink.error(&HBaseError::RetriesExhausted {
            attempts: 3,
            elapsed_ms: 900,
            last: Box::new(inner()),
        });
        let e2 = sink.error(&HBaseError::RetriesExhausted {
            attempts: 7,
            elapsed_ms: 60_000,
            last: Box::new(inner()),
        });
        assert!(e1.is_retryable());
        assert!(e1.to_string().contains("rs1:16020"), "{e1}");
        assert_eq!(e1.cause_key(), e2.cause_key(), "one cause, reported once");
    }

    #[test]
    fn an_unwritable_event_fails_the_batch_permanently_before_any_connection() {
        let mut c = config();
        let mut k = Keys::from_pairs(
            "sinks",
            "k1",
            &[
                ("serializer.regex", "(a)?(b)"),
                ("serializer.colNames", "x,y"),
            ],
        );
        c.serializer = serializer::parse(&mut k, serializer::REGEX_CLASSES[0]).expect("parses");
        let mut sink = HBaseSink::new("k1", c);
        let counters = ComponentCounters::detached("k1", crate::metrics::ComponentType::Sink);
        sink.attach_counters(Arc::clone(&counters));
        let e = sink
            .process(&[Event::new("b")])
            .expect_err("group 1 has no value");
        assert!(!e.is_retryable());
        assert!(e.to_string().contains("`x`"), "{e}");
        assert_eq!(counters.get(Counter::ConnectionCreatedCount), 0);
        assert_eq!(counters.get(Counter::ConnectionFailedCount), 0);
    }

    #[test]
    fn a_batch_the_serializer_drops_whole_needs_no_connection() {
        let mut c = config();
        c.serializer = serializer::Serializer::Simple(SimpleConfig {
            payload_column: None,
            increment_column: None,
            ..SimpleConfig::default()
        });
        let mut sink = HBaseSink::new("k1", c);
        sink.process(&[Event::new("x")]).expect("nothing to write");
        assert!(sink.client.is_none());
    }

    #[test]
    fn counts_made_at_start_up_are_kept_for_the_counters() {
        let mut sink = HBaseSink::new("k1", config());
        sink.count(Counter::ConnectionFailedCount);
        let counters = ComponentCounters::detached("k1", crate::metrics::ComponentType::Sink);
        sink.attach_counters(Arc::clone(&counters));
        assert_eq!(counters.get(Counter::ConnectionFailedCount), 1);
        sink.stop().expect("stops");
        assert_eq!(
            counters.get(Counter::ConnectionClosedCount),
            0,
            "nothing was open"
        );
    }
}
