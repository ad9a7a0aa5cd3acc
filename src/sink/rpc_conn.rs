//! The connection an RPC sink (`avro`, `thrift`) keeps to its peer: made on the first batch,
//! replaced after any failure (its state is then unknown) and after
//! `reset-connection-interval`, with Flume's connection counters kept as it goes. The sinks
//! differ only in their client, how it connects and how its errors are classified.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::event::Event;
use crate::metrics::{ComponentCounters, Counter};

/// A blocking RPC client as the sinks use it.
pub(crate) trait RpcClient {
    type Error;
    /// One `appendBatch` call, answered OK or an error; `what` names it in errors.
    fn append_batch(&mut self, events: &[Event], what: &str) -> Result<(), Self::Error>;
    /// Closes the connection.
    fn close(self);
}

/// Where an RPC failed: making the connection, or the call on it.
pub(crate) enum Failed<E> {
    Connect(E),
    Call(E),
}

/// See the module docs.
pub(crate) struct RpcConnection<C> {
    sink: String,
    reset_every: Option<Duration>,
    conn: Option<(C, Instant)>,
    counters: Option<Arc<ComponentCounters>>,
}

impl<C: RpcClient> RpcConnection<C> {
    pub(crate) fn new(sink: &str, reset_every: Option<Duration>) -> Self {
        RpcConnection {
            sink: sink.to_string(),
            reset_every,
            conn: None,
            counters: None,
        }
    }

    pub(crate) fn attach_counters(&mut self, counters: Arc<ComponentCounters>) {
        self.counters = Some(counters);
    }

    fn count(&self, c: Counter) {
        if let Some(counters) = &self.counters {
            counters.inc(c);
        }
    }

    /// Closes the connection, if one is open.
    pub(crate) fn close(&mut self) {
        if let Some((client, _)) = self.conn.take() {
            client.close();
            self.count(Counter::ConnectionClosedCount);
        }
    }

    /// Sends `events` in one `appendBatch` on the open connection, made now with `connect` if
    /// there is none (or the old one is due for a reset). Any failure of the call closes the
    /// connection: the next batch starts afresh.
    pub(crate) fn append_batch(
        &mut self,
        events: &[Event],
        connect: impl FnOnce() -> Result<C, C::Error>,
    ) -> Result<(), Failed<C::Error>> {
        if let (Some((_, since)), Some(every)) = (&self.conn, self.reset_every) {
            if since.elapsed() >= every {
                tracing::debug!(sink = %self.sink, "reset-connection-interval: reconnecting");
                self.close();
            }
        }
        let client = match &mut self.conn {
            Some((client, _)) => client,
            None => match connect() {
                Ok(client) => {
                    self.count(Counter::ConnectionCreatedCount);
                    &mut self.conn.insert((client, Instant::now())).0
                }
                Err(e) => {
                    self.count(Counter::ConnectionFailedCount);
                    return Err(Failed::Connect(e));
                }
            },
        };
        let what = format!("appendBatch of {} events", events.len());
        client.append_batch(events, &what).map_err(|e| {
            self.close();
            Failed::Call(e)
        })
    }
}
