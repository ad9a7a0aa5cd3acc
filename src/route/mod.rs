//! Routing: what happens between a source handing over a batch and the channels holding it
//! (Flume's ChannelProcessor). A source puts through one [`ChannelProcessor`], which runs the
//! source's interceptors once on the batch, asks the source's channel selector which channels
//! each event must reach (required) and may reach (optional), and puts every channel's share.
//! The selectors are components like any other, each in its own file ([`replicating`],
//! [`multiplexing`]) owning its keys; the agent's registry lists them.
//!
//! Invariants:
//! - The batch is one unit on its required channels: either every required channel commits its
//!   share, or (short of an I/O failure inside a commit, below) none does. Flume commits
//!   channel by channel, so a second channel that is full or refuses leaves the batch in the
//!   first, and the source's retry duplicates it there. Here every required channel's
//!   transaction is filled and its room reserved ([`PutTransaction::reserve`], which waits the
//!   channel's keep-alive for room) before any commits; a refusal at that stage rolls every
//!   transaction back, so a retry starts clean. Once reserved, a commit can fail only for an
//!   I/O error (a file channel that cannot write or sync poisons itself) or a channel
//!   closing; then the channels that committed keep the batch and the error says which.
//!   A commit refused for room despite the reservation (the disk below
//!   `minimumRequiredSpace`) is retried on that channel alone, never on the committed ones.
//! - Optional channels get their share after every required channel committed; their
//!   failures are logged (once per episode) and never fail the put, as in Flume.
//! - Interceptors run once per attempt, before routing, so a multiplexing selector sees the
//!   headers they set and every channel gets the same copy of an event. A batch retried after
//!   a refusal is intercepted again (as in Flume, where the source resubmits the batch).
//! - Events keep their order within each channel. An event the selector maps to no channel
//!   (multiplexing, no mapping and no `default`) is dropped, as Flume drops it.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;

use crate::channel::{Channel, ChannelError, PutTransaction};
use crate::config::{AsAny, Registered};
use crate::event::Event;
use crate::interceptor::InterceptorChain;
use crate::report::{count, human, FailureReporter, Report, ReportPolicy};

pub mod multiplexing;
pub mod replicating;

/// The channels one event goes to, as indexes into the source's channel list.
#[derive(Debug, Clone, Copy)]
pub struct Targets<'s> {
    pub required: &'s [usize],
    pub optional: &'s [usize],
}

/// A built channel selector: where each event goes.
pub trait ChannelSelector: fmt::Debug + Send + Sync {
    /// The channels `event` must reach and may reach (disjoint).
    fn targets(&self, event: &Event) -> Targets<'_>;

    /// True when every event goes to every channel, all required (replicating without
    /// optional channels): routing then needs no per-event work.
    fn sends_everything_everywhere(&self) -> bool {
        false
    }
}

/// A channel named by a selector key, for the agent to check against the source's channels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedChannel {
    /// The key below the source, e.g. `selector.mapping.CA`.
    pub key: String,
    pub line: usize,
    pub channel: String,
}

/// A selector's parsed configuration (its own keys, checked).
pub trait SelectorSpec: fmt::Debug + AsAny + Send + Sync {
    /// Every channel the selector's keys name: each must be one of the source's channels.
    fn named_channels(&self) -> Vec<NamedChannel>;

    /// Builds the selector for a source bound to `channels` (in the source's order), every
    /// named channel being among them.
    fn build(&self, channels: &[String]) -> Box<dyn ChannelSelector>;

    /// One line for `flumen config check`: where events go.
    fn describe(&self, channels: &[String]) -> String;
}

/// A selector type as the agent's registry lists it.
pub type SelectorType = Registered<dyn SelectorSpec>;

/// The index of each of `names` in `channels` (a name not there is skipped: the agent checked
/// them all before building).
pub(crate) fn indexes(channels: &[String], names: &[String]) -> Vec<usize> {
    let mut out = Vec::with_capacity(names.len());
    for n in names {
        if let Some(i) = channels.iter().position(|c| c == n) {
            if !out.contains(&i) {
                out.push(i);
            }
        }
    }
    out
}

/// Why a routed put did not reach every required channel.
#[derive(Debug, thiserror::Error)]
#[error("{error}{}", committed_note(.committed))]
pub struct RouteError {
    /// The channel's error that ended the put.
    pub error: ChannelError,
    /// Required channels that committed the batch before the failure (empty unless a commit
    /// itself failed after others had committed: see the module docs).
    pub committed: Vec<String>,
}

fn committed_note(committed: &[String]) -> String {
    if committed.is_empty() {
        String::new()
    } else {
        format!(
            " (the batch was already committed to {}: a resend duplicates it there)",
            committed
                .iter()
                .map(|c| format!("`{c}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    }
}

/// What a source puts through: its interceptors, its selector and its channels.
pub struct ChannelProcessor {
    source: String,
    channels: Vec<Arc<dyn Channel>>,
    chain: InterceptorChain,
    selector: Box<dyn ChannelSelector>,
    /// Failures of each optional channel, reported once per episode.
    optional_failures: Vec<Mutex<FailureReporter<std::mem::Discriminant<ChannelError>>>>,
}

impl fmt::Debug for ChannelProcessor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChannelProcessor")
            .field("source", &self.source)
            .field(
                "channels",
                &self.channels.iter().map(|c| c.name()).collect::<Vec<_>>(),
            )
            .field("selector", &self.selector)
            .finish_non_exhaustive()
    }
}

/// One channel's share of a batch: all of it, or the events at these indexes.
enum Share {
    All,
    Some(Vec<u32>),
}

impl Share {
    fn events<'e>(&'e self, batch: &'e [Event]) -> Box<dyn Iterator<Item = &'e Event> + 'e> {
        match self {
            Share::All => Box::new(batch.iter()),
            Share::Some(ix) => Box::new(ix.iter().map(move |&i| &batch[i as usize])),
        }
    }
}

impl ChannelProcessor {
    /// Puts from `source` go through `chain`, then to the channels `selector` picks among
    /// `channels` (the selector's indexes are into this list).
    pub fn new(
        source: &str,
        channels: Vec<Arc<dyn Channel>>,
        chain: InterceptorChain,
        selector: Box<dyn ChannelSelector>,
    ) -> ChannelProcessor {
        let optional_failures = channels
            .iter()
            .map(|_| Mutex::new(FailureReporter::new(ReportPolicy::default())))
            .collect();
        ChannelProcessor {
            source: source.to_string(),
            channels,
            chain,
            selector,
            optional_failures,
        }
    }

    /// Every event to every channel, no interceptors: Flume's default.
    pub fn replicating(source: &str, channels: Vec<Arc<dyn Channel>>) -> ChannelProcessor {
        let selector = replicating::Replicating::all_required(channels.len());
        ChannelProcessor::new(
            source,
            channels,
            InterceptorChain::default(),
            Box::new(selector),
        )
    }

    /// The most events one [`ChannelProcessor::put`] may carry: the smallest
    /// `transactionCapacity` among the channels (a selector may send a batch to any of them).
    pub fn max_batch(&self) -> usize {
        self.channels
            .iter()
            .map(|c| c.transaction_capacity())
            .min()
            .unwrap_or(usize::MAX)
            .max(1)
    }

    /// The source's channels, in its `channels` order.
    pub fn channels(&self) -> &[Arc<dyn Channel>] {
        &self.channels
    }

    /// Puts `events`: intercepts, routes, reserves room on every required channel, then
    /// commits each (see the module docs). When a channel refuses with a retryable error
    /// (full, or below its free-space floor), `retry(channel, error)` is asked whether to try
    /// again (after waiting as it sees fit): `false` gives up with that error. Nothing is
    /// committed anywhere by an attempt that gives up before its commits.
    pub fn put(
        &self,
        events: &[Event],
        retry: &mut dyn FnMut(&Arc<dyn Channel>, &ChannelError) -> bool,
    ) -> Result<(), RouteError> {
        let fail = |error, committed| Err(RouteError { error, committed });
        loop {
            let batch = self.intercept(events);
            let (required, optional) = self.route(&batch);
            // Fill and reserve on every required channel before committing any.
            let mut prepared = Vec::with_capacity(required.len());
            let mut refused = None;
            for (ch, share) in &required {
                match self.prepare(*ch, share, &batch) {
                    Ok(tx) => prepared.push((*ch, share, tx)),
                    Err(e) => {
                        refused = Some((*ch, e));
                        break;
                    }
                }
            }
            if let Some((ch, e)) = refused {
                drop(prepared);
                if e.is_retryable() && retry(&self.channels[ch], &e) {
                    continue;
                }
                return fail(e, Vec::new());
            }
            // Commits one after the other: one thread per extra channel measured no faster at
            // batches of 100 or 1,000 events (`flumen bench agent`, benches/compare.py). A
            // failure leaves the channels after it uncommitted (their transactions roll back).
            let mut committed: Vec<String> = Vec::new();
            for (ch, share, tx) in prepared {
                let mut result = tx.commit();
                // Only this channel is retried: the ones before it hold the batch already.
                while let Err(e) = result {
                    if !(e.is_retryable() && retry(&self.channels[ch], &e)) {
                        if !committed.is_empty() {
                            tracing::error!(
                                source = %self.source,
                                "source `{}`: channel `{}` failed to commit a batch that channels {} committed: {e}",
                                self.source,
                                self.channels[ch].name(),
                                committed.join(", ")
                            );
                        }
                        return fail(e, committed);
                    }
                    result = self.prepare(ch, share, &batch).and_then(|tx| tx.commit());
                }
                committed.push(self.channels[ch].name().to_string());
            }
            for (ch, share) in &optional {
                self.put_optional(*ch, share, &batch);
            }
            return Ok(());
        }
    }

    /// The batch after the interceptors (borrowed when there are none).
    fn intercept<'e>(&self, events: &'e [Event]) -> Cow<'e, [Event]> {
        if self.chain.is_empty() {
            return Cow::Borrowed(events);
        }
        let mut out = Vec::with_capacity(events.len());
        for e in events {
            let mut e = e.clone();
            if self.chain.intercept(&mut e) {
                out.push(e);
            }
        }
        Cow::Owned(out)
    }

    /// Each required and optional channel's share of `batch`, channels in source order;
    /// channels with no events are left out.
    #[allow(clippy::type_complexity)]
    fn route(&self, batch: &[Event]) -> (Vec<(usize, Share)>, Vec<(usize, Share)>) {
        if batch.is_empty() {
            return (Vec::new(), Vec::new());
        }
        if self.selector.sends_everything_everywhere() {
            let all = (0..self.channels.len()).map(|c| (c, Share::All)).collect();
            return (all, Vec::new());
        }
        let n = self.channels.len();
        let mut req: Vec<Vec<u32>> = vec![Vec::new(); n];
        let mut opt: Vec<Vec<u32>> = vec![Vec::new(); n];
        for (i, e) in batch.iter().enumerate() {
            let t = self.selector.targets(e);
            for &c in t.required {
                req[c].push(i as u32);
            }
            for &c in t.optional {
                opt[c].push(i as u32);
            }
        }
        let shares = |v: Vec<Vec<u32>>| {
            v.into_iter()
                .enumerate()
                .filter(|(_, ix)| !ix.is_empty())
                .map(|(c, ix)| {
                    let share = if ix.len() == batch.len() {
                        Share::All
                    } else {
                        Share::Some(ix)
                    };
                    (c, share)
                })
                .collect()
        };
        (shares(req), shares(opt))
    }

    /// A transaction on channel `ch` holding its share, with room reserved.
    fn prepare(
        &self,
        ch: usize,
        share: &Share,
        batch: &[Event],
    ) -> Result<Box<dyn PutTransaction>, ChannelError> {
        let mut tx = self.channels[ch].put_transaction();
        for e in share.events(batch) {
            tx.put(e.clone())?;
        }
        tx.reserve()?;
        Ok(tx)
    }

    /// Puts an optional channel's share once; a failure is logged, never returned.
    fn put_optional(&self, ch: usize, share: &Share, batch: &[Event]) {
        let r = self.prepare(ch, share, batch).and_then(|tx| tx.commit());
        let name = self.channels[ch].name();
        let source = &self.source;
        let now = Instant::now();
        let mut reporter = self.optional_failures[ch].lock();
        match r {
            Ok(()) => {
                if let Some(rec) = reporter.success(now) {
                    tracing::info!(
                        source = %source,
                        "source `{source}`: optional channel `{name}` accepts puts again after {} over {}",
                        count(rec.failures, "failed put", "failed puts"),
                        human(rec.lasted)
                    );
                }
            }
            Err(e) => match reporter.failure(std::mem::discriminant(&e), now) {
                Report::Quiet => {
                    tracing::debug!(source = %source, "source `{source}`: optional channel `{name}`: {e}")
                }
                Report::Reminder {
                    failures, total, ..
                } => tracing::warn!(
                    source = %source,
                    "source `{source}`: optional channel `{name}` still fails: {} more, {total} in all; latest: {e}",
                    count(failures, "failed put", "failed puts")
                ),
                Report::First { .. } | Report::Changed { .. } => tracing::warn!(
                    source = %source,
                    "source `{source}`: optional channel `{name}` did not take a batch (the put goes on without it, as the selector says): {e}"
                ),
            },
        }
    }
}

#[cfg(test)]
mod tests;
