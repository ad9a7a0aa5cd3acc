//! The agent: turns a Flume properties file into a typed [`AgentConfig`] ([`config`],
//! through the component [`registry`]), then into running components, and stops them in
//! order. This is the only layer that knows every component type.
//!
//! This is a minimal runtime on std threads: one thread per source, per sink group (its
//! sinks run on it, see [`GroupRunner`]) and per sink in no group (plus one per netcat
//! connection); there is no async runtime yet (tokio may come later). [`Agent::start`]
//! opens every channel (the file channel recovers its queue here), builds the sinks and
//! sources (binding ports), then starts the sink threads before the source threads.
//! [`Agent::shutdown`] reverses that: it stops the sources (and waits for them, so no put is
//! in flight), then stops the sinks (each finishes the batch in hand), then closes the
//! channels (the file channel writes its final checkpoint). Nothing committed to a file
//! channel is lost at any point, shutdown or crash; what a sink had not taken yet is
//! delivered after the next start. Each source puts through a [`ChannelProcessor`] holding
//! its interceptors, its channel selector and its channels (see [`crate::route`]).
//!
//! Monitoring: every agent keeps a [`Registry`] of its components' counters (Flume's names,
//! see [`crate::metrics`]) with their StartTime/StopTime; with [`AgentOptions::monitoring`]
//! set, an HTTP server serves it (`GET /metrics`, `GET /metrics/prometheus`) from just after
//! the components start until the end of shutdown.
//!
//! Reload: [`Agent::reload`] compares what runs with a new file ([`reload::Plan`]), stops
//! what changed or went away (sources, sinks, channels, as shutdown does; every thread has
//! its own stop flag) and starts what changed or is new (channels, sinks, sources, as start
//! does); the rest keeps running untouched. A component that fails to start is logged and
//! left out, never taking the others down; the next reload tries it again.
//!
//! [`run_reloading`] is what `flumen agent -f FILE` runs: start, reload on SIGHUP and when
//! the periodic check finds the file changed ([`watch::ConfigFile`]), shut down on SIGTERM or
//! SIGINT; a second stop signal during shutdown exits at once with code 130.
//! [`run_until_signal`] is the same for the built-in configuration, which has no file.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::channel::{Channel, ChannelError};
use crate::config::ConfigError;
use crate::interceptor::InterceptorChain;
use crate::metrics::{ChannelTimes, ComponentCounters, ComponentType, MetricsServer, Registry};
use crate::route::ChannelProcessor;
use crate::sink::group::GroupRunner;
use crate::sink::{SinkError, SinkRunner};
use crate::source::{Source, SourceContext, SourceError};

pub mod config;
pub mod registry;
pub mod reload;
pub mod watch;

pub use config::AgentConfig;
use config::SourceConfig;
use reload::{Fingerprints, Plan, Unit};
pub use watch::{ConfigFile, Loaded, Rejected};

/// Why the agent could not start or stop cleanly.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// Opening or closing a channel failed (the error names the channel).
    #[error(transparent)]
    Channel(#[from] ChannelError),
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Sink(#[from] SinkError),
    /// A component refers to a channel that was not built (the configuration layer checks
    /// this, so it means a programming error).
    #[error("{component}: channel `{channel}` is not defined")]
    UnknownChannel { component: String, channel: String },
    /// A sink group names a sink that was not built (the configuration layer checks this,
    /// so it means a programming error).
    #[error("sink group `{group}`: sink `{sink}` is not defined")]
    UnknownSink { group: String, sink: String },
    /// A component's channel is configured but not open: it failed to open in the same
    /// reload (logged before).
    #[error("{component}: channel `{channel}` is not open (it failed to open, see above)")]
    ChannelNotOpen { component: String, channel: String },
    /// A reload asked for what cannot be done without a restart; nothing was changed.
    #[error("{}", .0.join("; "))]
    Reload(Vec<String>),
    /// A thread could not be started or setting up signal handling failed.
    #[error("{what}: {cause}")]
    Os { what: String, cause: std::io::Error },
    /// Some components failed while stopping; each message names its component.
    #[error("shutdown: {}", .0.join("; "))]
    Shutdown(Vec<String>),
}

/// A running component.
struct Running {
    /// `source`, `sink` or `sink group`, for log lines.
    role: &'static str,
    name: String,
    kind: &'static str,
    thread: JoinHandle<()>,
    /// Set to stop this thread alone (a reload stops some components and keeps others).
    stop: Arc<AtomicBool>,
    /// The counters of what the thread runs: one source or sink, or a sink group's sinks.
    counters: Vec<Arc<ComponentCounters>>,
}

impl Running {
    /// The sink thread unit this runs, if it is one.
    fn unit(&self) -> Option<Unit> {
        match self.role {
            "sink" => Some(Unit::Sink(self.name.clone())),
            "sink group" => Some(Unit::Group(self.name.clone())),
            _ => None,
        }
    }
}

/// An open channel and what the agent keeps about it.
struct OpenChannel {
    channel: Arc<dyn Channel>,
    times: Arc<ChannelTimes>,
    type_name: &'static str,
    /// A memory channel: a reload never reopens it for a change of its keys (its events
    /// would be lost), see [`reload`].
    keep_open: bool,
    /// Its `transactionCapacity` when opened, which a reload checks new batch sizes against
    /// while it keeps the channel with its old settings.
    transaction_capacity: usize,
}

/// How to run an agent beyond its configuration.
#[derive(Debug, Clone, Default)]
pub struct AgentOptions {
    /// Serve the metrics over HTTP on this address (Flume's
    /// `-Dflume.monitoring.type=http -Dflume.monitoring.port=P`).
    pub monitoring: Option<SocketAddr>,
}

/// A started agent. Dropping it without [`Agent::shutdown`] leaves its threads running.
pub struct Agent {
    name: String,
    /// Open channels, in configuration order; `channel_state` runs in parallel.
    channels: Vec<Arc<dyn Channel>>,
    channel_state: Vec<OpenChannel>,
    sources: Vec<Running>,
    sinks: Vec<Running>,
    metrics: Arc<Registry>,
    server: Option<MetricsServer>,
    /// What runs, as a reload compares it with a new file.
    fingerprints: Fingerprints,
}

/// A part of a configuration that [`Agent::start_components`] may start.
enum Part<'a> {
    Channel(&'a str),
    Source(&'a str),
    Unit(&'a Unit),
}

/// A component that did not start, and why.
struct Failure {
    part: Failed,
    error: AgentError,
}

enum Failed {
    Channel(String),
    Source(String),
    Unit(Unit),
}

impl Agent {
    /// Opens the channels, then starts the sinks and the sources. On an error, everything
    /// already started is stopped again before returning.
    pub fn start(cfg: &AgentConfig) -> Result<Agent, AgentError> {
        Agent::start_with(cfg, &AgentOptions::default())
    }

    /// [`Agent::start`], then the monitoring server if `opts` asks for it (a port in use
    /// stops the agent again and fails). A later [`Agent::reload`] restarts every component,
    /// since what `cfg` was read from is unknown; [`Agent::start_loaded`] knows it.
    pub fn start_with(cfg: &AgentConfig, opts: &AgentOptions) -> Result<Agent, AgentError> {
        Agent::start_fingerprinted(cfg, Fingerprints::unknown(cfg), opts)
    }

    /// [`Agent::start_with`] a configuration read by [`ConfigFile::load`], so that a reload
    /// restarts only what changed.
    pub fn start_loaded(loaded: &Loaded, opts: &AgentOptions) -> Result<Agent, AgentError> {
        Agent::start_fingerprinted(&loaded.config, loaded.fingerprints.clone(), opts)
    }

    fn start_fingerprinted(
        cfg: &AgentConfig,
        fingerprints: Fingerprints,
        opts: &AgentOptions,
    ) -> Result<Agent, AgentError> {
        let mut agent = Agent {
            name: cfg.name.clone(),
            channels: Vec::new(),
            channel_state: Vec::new(),
            sources: Vec::new(),
            sinks: Vec::new(),
            metrics: Registry::new(),
            server: None,
            fingerprints,
        };
        let started = match agent
            .start_components(cfg, &|_| true, true)
            .into_iter()
            .next()
        {
            Some(f) => Err(f.error),
            None => agent.start_monitoring(opts),
        };
        match started {
            Ok(()) => {
                tracing::info!(agent = %agent.name, "agent `{}` started", agent.name);
                Ok(agent)
            }
            Err(e) => {
                if let Err(stop_err) = agent.shutdown_inner() {
                    tracing::error!(agent = %cfg.name, "{stop_err}");
                }
                Err(e)
            }
        }
    }

    /// Opens the channels and starts the sinks and sources of `cfg` for which `want` holds
    /// (a sink as part of its thread unit: a sink group or the sink alone). With
    /// `all_or_nothing` (start-up) the first failure ends it before any thread starts; else
    /// (a reload) a failed component is skipped and what does not depend on it starts.
    fn start_components(
        &mut self,
        cfg: &AgentConfig,
        want: &dyn Fn(Part<'_>) -> bool,
        all_or_nothing: bool,
    ) -> Vec<Failure> {
        let mut failures = Vec::new();
        for c in &cfg.channels {
            if !want(Part::Channel(&c.name)) {
                continue;
            }
            let ch = match c.spec.open(&c.name) {
                Ok(ch) => ch,
                Err(e) => {
                    failures.push(Failure {
                        part: Failed::Channel(c.name.clone()),
                        error: e.into(),
                    });
                    if all_or_nothing {
                        return failures;
                    }
                    continue;
                }
            };
            tracing::info!(
                channel = %c.name,
                "channel `{}` ({}) opened with {} events",
                c.name,
                c.type_name,
                ch.stats().size
            );
            let times = self
                .metrics
                .channel(Arc::clone(&ch), c.spec.has_file_counters());
            times.times().started();
            self.channels.push(ch);
            self.channel_state.push(OpenChannel {
                channel: Arc::clone(self.channels.last().expect("just pushed")),
                times,
                type_name: c.type_name,
                keep_open: c.type_name == crate::channel::memory::TYPE.alias,
                transaction_capacity: c.spec.transaction_capacity(),
            });
        }
        let unit_of = |sink: &str| {
            cfg.sinkgroups
                .iter()
                .find(|g| g.sinks.iter().any(|s| s == sink))
                .map_or_else(
                    || Unit::Sink(sink.to_string()),
                    |g| Unit::Group(g.name.clone()),
                )
        };
        // Build everything that can fail before starting any thread.
        let mut runners = Vec::new();
        let mut failed_units: Vec<Unit> = Vec::new();
        for s in &cfg.sinks {
            let unit = unit_of(&s.name);
            if !want(Part::Unit(&unit)) || failed_units.contains(&unit) {
                continue;
            }
            let built = self
                .channel(cfg, &s.name, &s.channel)
                .and_then(|channel| Ok((channel, s.spec.build(&s.name)?)));
            let (channel, mut sink) = match built {
                Ok(b) => b,
                Err(error) => {
                    failed_units.push(unit.clone());
                    failures.push(Failure {
                        part: Failed::Unit(unit),
                        error,
                    });
                    continue;
                }
            };
            let batch_size = s.spec.batch_size().map_or(1, |(n, _)| n.max(1));
            let counters = ComponentCounters::detached(&s.name, ComponentType::Sink);
            sink.attach_counters(Arc::clone(&counters));
            runners.push((
                s.type_name,
                SinkRunner {
                    name: s.name.clone(),
                    type_name: s.type_name,
                    channel,
                    sink,
                    batch_size,
                    counters,
                },
            ));
        }
        // A unit whose sink failed starts none of its sinks.
        runners.retain(|(_, r)| !failed_units.contains(&unit_of(&r.name)));
        if all_or_nothing && !failures.is_empty() {
            return failures;
        }
        let mut sources = Vec::new();
        for s in &cfg.sources {
            if !want(Part::Source(&s.name)) {
                continue;
            }
            match self.build_source(cfg, s) {
                Ok(src) => sources.push((s.name.clone(), s.type_name, src.0, src.1)),
                Err(error) => {
                    failures.push(Failure {
                        part: Failed::Source(s.name.clone()),
                        error,
                    });
                    if all_or_nothing {
                        return failures;
                    }
                }
            }
        }
        // A sink group's sinks run on the group's thread; every other sink on its own.
        let mut groups = Vec::new();
        'groups: for g in &cfg.sinkgroups {
            let unit = Unit::Group(g.name.clone());
            if !want(Part::Unit(&unit)) || failed_units.contains(&unit) {
                continue;
            }
            let mut members = Vec::new();
            for sink in &g.sinks {
                match runners.iter().position(|(_, r)| r.name == *sink) {
                    Some(i) => members.push(runners.remove(i).1),
                    None => {
                        failures.push(Failure {
                            part: Failed::Unit(unit.clone()),
                            error: AgentError::UnknownSink {
                                group: g.name.clone(),
                                sink: sink.clone(),
                            },
                        });
                        if all_or_nothing {
                            return failures;
                        }
                        continue 'groups;
                    }
                }
            }
            let processor = g.spec.build(&g.name, &g.sinks);
            tracing::info!(
                group = %g.name,
                "sink group `{}` drives sinks {} with processor {}",
                g.name,
                g.sinks.join(", "),
                processor.describe()
            );
            groups.push((
                g.type_name,
                GroupRunner {
                    name: g.name.clone(),
                    processor,
                    sinks: members,
                },
            ));
        }
        for (kind, runner) in runners {
            let name = runner.name.clone();
            let counters = Arc::clone(&runner.counters);
            let stop = Arc::new(AtomicBool::new(false));
            let flag = Arc::clone(&stop);
            let thread = match spawn(&format!("sink-{name}"), move || runner.run(flag)) {
                Ok(t) => t,
                Err(error) => {
                    failures.push(Failure {
                        part: Failed::Unit(Unit::Sink(name)),
                        error,
                    });
                    continue;
                }
            };
            self.metrics.register(Arc::clone(&counters));
            counters.times().started();
            tracing::info!(sink = %name, "sink `{name}` ({kind}) started");
            self.sinks.push(Running {
                role: "sink",
                name,
                kind,
                thread,
                stop,
                counters: vec![counters],
            });
        }
        for (kind, group) in groups {
            let name = group.name.clone();
            let counters: Vec<_> = group
                .sinks
                .iter()
                .map(|s| Arc::clone(&s.counters))
                .collect();
            let stop = Arc::new(AtomicBool::new(false));
            let flag = Arc::clone(&stop);
            let thread = match spawn(&format!("sinkgroup-{name}"), move || group.run(flag)) {
                Ok(t) => t,
                Err(error) => {
                    failures.push(Failure {
                        part: Failed::Unit(Unit::Group(name)),
                        error,
                    });
                    continue;
                }
            };
            for c in &counters {
                self.metrics.register(Arc::clone(c));
                c.times().started();
            }
            tracing::info!(group = %name, "sink group `{name}` ({kind}) started");
            self.sinks.push(Running {
                role: "sink group",
                name,
                kind,
                thread,
                stop,
                counters,
            });
        }
        for (name, kind, src, counters) in sources {
            let stop = Arc::new(AtomicBool::new(false));
            let flag = Arc::clone(&stop);
            let thread = match spawn(&format!("source-{name}"), move || src.run(flag)) {
                Ok(t) => t,
                Err(error) => {
                    failures.push(Failure {
                        part: Failed::Source(name),
                        error,
                    });
                    continue;
                }
            };
            self.metrics.register(Arc::clone(&counters));
            counters.times().started();
            tracing::info!(source = %name, "source `{name}` ({kind}) started");
            self.sources.push(Running {
                role: "source",
                name,
                kind,
                thread,
                stop,
                counters: vec![counters],
            });
        }
        failures
    }

    /// Builds source `s` (binding its port) with its channel processor and counters.
    fn build_source(
        &self,
        cfg: &AgentConfig,
        s: &SourceConfig,
    ) -> Result<(Box<dyn Source>, Arc<ComponentCounters>), AgentError> {
        let chans = s
            .channels
            .iter()
            .map(|c| self.channel(cfg, &s.name, c))
            .collect::<Result<Vec<_>, _>>()?;
        let chain = InterceptorChain::new(s.interceptors.iter().map(|i| i.spec.build()).collect());
        if !s.interceptors.is_empty() {
            let names: Vec<String> = s
                .interceptors
                .iter()
                .map(|i| format!("{} ({})", i.name, i.type_name))
                .collect();
            tracing::info!(
                source = %s.name,
                "source `{}` intercepts with {}",
                s.name,
                names.join(", ")
            );
        }
        let selector = s.selector.spec.build(&s.channels);
        if s.selector.type_name != crate::route::replicating::TYPE.alias {
            tracing::info!(
                source = %s.name,
                "source `{}`: {}",
                s.name,
                s.selector.spec.describe(&s.channels)
            );
        }
        let chans = Arc::new(ChannelProcessor::new(&s.name, chans, chain, selector));
        let counters = ComponentCounters::detached(&s.name, ComponentType::Source);
        let src = s.spec.build(SourceContext {
            name: s.name.clone(),
            channels: chans,
            counters: Arc::clone(&counters),
        })?;
        Ok((src, counters))
    }

    fn start_monitoring(&mut self, opts: &AgentOptions) -> Result<(), AgentError> {
        if let Some(addr) = opts.monitoring {
            let server =
                MetricsServer::start(addr, Arc::clone(&self.metrics)).map_err(|cause| {
                    AgentError::Os {
                        what: format!("monitoring: cannot serve HTTP on {addr}"),
                        cause,
                    }
                })?;
            self.server = Some(server);
        }
        Ok(())
    }

    /// The agent's counters (what the monitoring server serves).
    pub fn metrics(&self) -> &Arc<Registry> {
        &self.metrics
    }

    /// The address the monitoring server listens on, if it runs.
    pub fn monitoring_addr(&self) -> Option<SocketAddr> {
        self.server.as_ref().map(MetricsServer::local_addr)
    }

    /// The open channel `name`, for `component`; a channel `cfg` has but that is not open
    /// failed to open (a reload goes on without what needs it).
    fn channel(
        &self,
        cfg: &AgentConfig,
        component: &str,
        name: &str,
    ) -> Result<Arc<dyn Channel>, AgentError> {
        if let Some(c) = self.channels.iter().find(|c| c.name() == name) {
            return Ok(Arc::clone(c));
        }
        let (component, channel) = (component.to_string(), name.to_string());
        Err(if cfg.channel(name).is_some() {
            AgentError::ChannelNotOpen { component, channel }
        } else {
            AgentError::UnknownChannel { component, channel }
        })
    }

    /// The agent's channels, in configuration order.
    pub fn channels(&self) -> &[Arc<dyn Channel>] {
        &self.channels
    }

    /// Stops the sources, then the sinks (each finishing its batch), then closes the
    /// channels. Errors of every component are collected; the first does not stop the rest.
    pub fn shutdown(mut self) -> Result<(), AgentError> {
        tracing::info!(agent = %self.name, "agent `{}` shutting down", self.name);
        let r = self.shutdown_inner();
        tracing::info!(agent = %self.name, "agent `{}` stopped", self.name);
        r
    }

    fn shutdown_inner(&mut self) -> Result<(), AgentError> {
        let mut errors = Vec::new();
        let sources: Vec<Running> = self.sources.drain(..).collect();
        stop_all(sources, &mut errors);
        let sinks: Vec<Running> = self.sinks.drain(..).collect();
        stop_all(sinks, &mut errors);
        let channels: Vec<String> = self.channels.iter().map(|c| c.name().to_string()).collect();
        for c in channels {
            self.close_channel(&c, &mut errors);
        }
        if let Some(server) = self.server.take() {
            server.stop();
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(AgentError::Shutdown(errors))
        }
    }

    /// Closes channel `name` (a file channel writes its final checkpoint) and takes it out
    /// of the agent and its metrics. Nothing may use it any more.
    fn close_channel(&mut self, name: &str, errors: &mut Vec<String>) {
        let Some(i) = self.channels.iter().position(|c| c.name() == name) else {
            return;
        };
        self.channels.remove(i);
        let state = self.channel_state.remove(i);
        state.times.times().stopped();
        self.metrics.unregister_channel(&state.times);
        let c = state.channel;
        let size = c.stats().size;
        match c.close() {
            Ok(()) => tracing::info!(
                channel = c.name(),
                "channel `{}` closed with {size} events left",
                c.name()
            ),
            Err(e) => errors.push(e.to_string()),
        }
    }
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> Result<JoinHandle<()>, AgentError> {
    std::thread::Builder::new()
        .name(name.to_string())
        .spawn(f)
        .map_err(|cause| AgentError::Os {
            what: format!("starting thread {name}"),
            cause,
        })
}

/// Tells every thread of `running` to stop, then waits for each: they stop in parallel.
fn stop_all(running: Vec<Running>, errors: &mut Vec<String>) {
    for r in &running {
        r.stop.store(true, Ordering::Release);
    }
    for r in running {
        join(r, errors);
    }
}

fn join(r: Running, errors: &mut Vec<String>) {
    let role = r.role;
    let joined = r.thread.join();
    for c in &r.counters {
        c.times().stopped();
    }
    match joined {
        Ok(()) => tracing::info!("{role} `{}` ({}) stopped", r.name, r.kind),
        Err(_) => errors.push(format!("{role} `{}` ({}) panicked", r.name, r.kind)),
    }
}

impl Agent {
    /// Applies a new configuration: stops what changed or went away (sources, then sinks,
    /// then channels, as [`Agent::shutdown`] does), then opens and starts what changed or is
    /// new (channels, then sinks, then sources, as [`Agent::start`] does), leaving the rest
    /// running. The rules of what "changed" means are [`reload`]'s. A component that fails
    /// to start is logged and left out (the next reload tries it again) while everything
    /// else runs. Logs one INFO line naming what was restarted, added, removed and kept.
    ///
    /// Fails, changing nothing, when the new file needs what a reload cannot do: a batch
    /// larger than the `transactionCapacity` of a memory channel kept with its old settings.
    pub fn reload(&mut self, loaded: &Loaded) -> Result<ReloadReport, AgentError> {
        let cfg = &loaded.config;
        let keep_open = |name: &str| {
            self.channel_state
                .iter()
                .any(|c| c.channel.name() == name && c.keep_open)
        };
        let plan = Plan::new(&self.fingerprints, &loaded.fingerprints, &keep_open);
        let mut problems = Vec::new();
        for name in &plan.stale_channels {
            let Some(state) = self.channel_state.iter().find(|c| c.channel.name() == name) else {
                continue;
            };
            tracing::warn!(
                channel = %name,
                "channel `{name}` ({}): its settings changed, but a memory channel keeps its old \
                 settings until the agent restarts (reopening it would lose the {} events it holds)",
                state.type_name,
                state.channel.stats().size
            );
            let tc = state.transaction_capacity;
            let batches = cfg
                .sources
                .iter()
                .filter(|s| s.channels.contains(name))
                .map(|s| (format!("source `{}`", s.name), s.spec.batch_size()))
                .chain(
                    cfg.sinks
                        .iter()
                        .filter(|s| s.channel == *name)
                        .map(|s| (format!("sink `{}`", s.name), s.spec.batch_size())),
                );
            for (who, batch) in batches {
                if let Some((n, key)) = batch.filter(|(n, _)| *n > tc) {
                    problems.push(format!(
                        "{who}: {key} = {n} is above the transactionCapacity ({tc}) that \
                         channel `{name}` keeps until the agent restarts"
                    ));
                }
            }
        }
        if !problems.is_empty() {
            return Err(AgentError::Reload(problems));
        }
        let mut errors = Vec::new();
        let stop = |list: &mut Vec<Running>, pick: &dyn Fn(&Running) -> bool| {
            let (gone, kept): (Vec<Running>, Vec<Running>) = list.drain(..).partition(pick);
            *list = kept;
            gone
        };
        let sources = stop(&mut self.sources, &|r| {
            plan.sources.to_stop().any(|n| *n == r.name)
        });
        let sinks = stop(&mut self.sinks, &|r| {
            r.unit().is_some_and(|u| plan.units.stop.contains(&u))
        });
        for r in sources.iter().chain(&sinks) {
            for c in &r.counters {
                self.metrics.unregister(c);
            }
        }
        stop_all(sources, &mut errors);
        stop_all(sinks, &mut errors);
        for name in plan.channels.to_stop() {
            if let Some(state) = self.channel_state.iter().find(|c| c.channel.name() == name) {
                let size = state.channel.stats().size;
                if state.keep_open && size > 0 && plan.channels.removed.contains(name) {
                    tracing::warn!(
                        channel = %name,
                        "channel `{name}` ({}) removed from the configuration: its {size} \
                         events are lost",
                        state.type_name
                    );
                }
            }
            self.close_channel(name, &mut errors);
        }
        let want = |part: Part<'_>| match part {
            Part::Channel(c) => plan.channels.to_start().any(|n| n == c),
            Part::Source(s) => plan.sources.to_start().any(|n| n == s),
            Part::Unit(u) => plan.units.start.contains(u),
        };
        let failures = self.start_components(cfg, &want, false);
        // Channels in the file's order, as after a start.
        let order = |c: &Arc<dyn Channel>| {
            cfg.channels
                .iter()
                .position(|k| k.name == c.name())
                .unwrap_or(usize::MAX)
        };
        self.channel_state.sort_by_key(|s| order(&s.channel));
        self.channels.sort_by_key(order);
        let mut fingerprints = loaded.fingerprints.clone();
        for c in &plan.stale_channels {
            fingerprints.keep_channel_from(&self.fingerprints, c);
        }
        let mut failed = Vec::new();
        for f in failures {
            let what = match &f.part {
                Failed::Channel(c) => {
                    fingerprints.forget_channel(c);
                    format!("channel `{c}`")
                }
                Failed::Source(s) => {
                    fingerprints.forget_source(s);
                    format!("source `{s}`")
                }
                Failed::Unit(u) => {
                    fingerprints.forget_unit(u);
                    match u {
                        Unit::Sink(s) => format!("sink `{s}`"),
                        Unit::Group(g) => format!("sink group `{g}`"),
                    }
                }
            };
            tracing::error!(
                agent = %self.name,
                "reload: {what} did not start and is not running (the next reload tries again): {}",
                f.error
            );
            failed.push(format!("{what}: {}", f.error));
        }
        // A component also goes down with a channel of its that did not open; forgetting
        // its fingerprint above makes the next reload start it.
        self.fingerprints = fingerprints;
        for e in &errors {
            tracing::error!(agent = %self.name, "reload: while stopping: {e}");
        }
        tracing::info!(agent = %self.name, "configuration reloaded: {plan}");
        Ok(ReloadReport {
            plan,
            failed,
            stop_errors: errors,
        })
    }
}

/// What one [`Agent::reload`] did.
#[derive(Debug)]
pub struct ReloadReport {
    pub plan: Plan,
    /// Components that did not start (each with why); they are not running.
    pub failed: Vec<String>,
    /// What went wrong while stopping components (e.g. a channel's final checkpoint).
    pub stop_errors: Vec<String>,
}

/// What the signal-handling thread tells the agent's thread.
enum Signal {
    /// SIGTERM or SIGINT: shut down.
    Stop,
    /// SIGHUP: reload the configuration file now.
    Reload,
}

/// Starts the agent, runs it until SIGTERM or SIGINT, then shuts it down. A second stop
/// signal while shutting down exits the process at once with code 130 (committed events are
/// safe in a file channel either way). `opts` may start the monitoring server. There is no
/// file to reload: SIGHUP only says so.
pub fn run_until_signal(cfg: &AgentConfig, opts: &AgentOptions) -> Result<(), AgentError> {
    let rx = signals()?;
    let agent = Agent::start_with(cfg, opts)?;
    // Err only if the signal thread died, which it does not; shut down either way.
    while let Ok(Signal::Reload) = rx.recv() {
        tracing::info!(
            "received SIGHUP: the agent runs the built-in configuration, there is no file to \
             reload"
        );
    }
    agent.shutdown()
}

/// [`run_until_signal`] for a configuration read from `file` (already loaded as
/// `loaded`): SIGHUP reloads it at once, and with `poll` set the file is checked that often
/// and reloaded when its contents change (Flume's default provider checks every 30 s).
pub fn run_reloading(
    mut file: ConfigFile,
    loaded: &Loaded,
    opts: &AgentOptions,
    poll: Option<Duration>,
) -> Result<(), AgentError> {
    let rx = signals()?;
    let mut agent = Agent::start_loaded(loaded, opts)?;
    let mut next_poll = poll.map(|p| Instant::now() + p);
    loop {
        let msg = match next_poll {
            Some(at) => rx.recv_timeout(at.saturating_duration_since(Instant::now())),
            None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        match msg {
            Ok(Signal::Stop) | Err(RecvTimeoutError::Disconnected) => break,
            Ok(Signal::Reload) => {
                tracing::info!("received SIGHUP: reloading {}", file.path().display());
                reload_from(&mut agent, file.read(), &file);
            }
            Err(RecvTimeoutError::Timeout) => {
                if let Some(text) = file.changed() {
                    tracing::info!("{} changed: reloading", file.path().display());
                    reload_from(&mut agent, text, &file);
                }
                next_poll = poll.map(|p| Instant::now() + p);
            }
        }
    }
    agent.shutdown()
}

/// Parses the new text `read` of `file` and reloads `agent` with it; anything wrong is
/// logged, and the running configuration stays.
fn reload_from(agent: &mut Agent, read: Result<String, ConfigError>, file: &ConfigFile) {
    let path = file.path().display();
    let loaded = read
        .map_err(Rejected::from)
        .and_then(|text| file.parse(&text));
    let loaded = match loaded {
        Ok(l) => l,
        Err(Rejected { error: e, warnings }) => {
            for w in &warnings {
                tracing::warn!("{w}");
            }
            tracing::error!(
                "reload: {path} not applied, the running configuration stays (fix the file; \
                 the next change or SIGHUP reads it again): {e}"
            );
            return;
        }
    };
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    if let Err(e) = agent.reload(&loaded) {
        tracing::error!(
            "reload: {path} not applied, the running configuration stays (fix the file; the \
             next change or SIGHUP reads it again): {e}"
        );
    }
}

/// Installs the SIGTERM, SIGINT and SIGHUP handlers (before anything starts, so an early
/// signal is not lost to its default action) on a thread of their own; a second stop signal
/// exits at once.
fn signals() -> Result<mpsc::Receiver<Signal>, AgentError> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals =
        signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGHUP]).map_err(|cause| {
            AgentError::Os {
                what: "installing SIGTERM/SIGINT/SIGHUP handlers".into(),
                cause,
            }
        })?;
    let (tx, rx) = mpsc::channel::<Signal>();
    spawn("signals", move || {
        let mut stops = 0;
        for sig in signals.forever() {
            if sig == SIGHUP {
                let _ = tx.send(Signal::Reload);
                continue;
            }
            stops += 1;
            if stops == 1 {
                tracing::info!("received signal {sig}; shutting down (send again to exit at once)");
                let _ = tx.send(Signal::Stop);
            } else {
                tracing::warn!("received signal {sig} again; exiting at once");
                std::process::exit(130);
            }
        }
    })?;
    Ok(rx)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::config::{ChannelConfig, SinkConfig, SourceConfig};
    use super::*;
    use crate::channel::memory::MemoryChannelConfig;
    use crate::sink::file_roll::FileRollConfig;
    use crate::source::seq::SeqConfig;

    fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
        let end = Instant::now() + Duration::from_secs(30);
        while !cond() {
            assert!(Instant::now() < end, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn read_lines(dir: &std::path::Path) -> Vec<String> {
        let mut out = vec![];
        let Ok(rd) = std::fs::read_dir(dir) else {
            return out;
        };
        for e in rd {
            let text = std::fs::read_to_string(e.expect("entry").path()).expect("read");
            out.extend(text.lines().map(str::to_string));
        }
        out
    }

    #[test]
    fn seq_through_memory_channel_into_file_roll_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("out");
        let cfg = AgentConfig {
            name: "t".into(),
            sources: vec![SourceConfig {
                name: "r1".into(),
                type_name: "seq",
                channels: vec!["c1".into()],
                interceptors: Vec::new(),
                selector: config::SelectorConfig {
                    type_name: "replicating",
                    spec: Box::new(crate::route::replicating::ReplicatingConfig::default()),
                },
                spec: Box::new(SeqConfig {
                    total_events: Some(1000),
                    batch_size: 7,
                }),
            }],
            channels: vec![ChannelConfig {
                name: "c1".into(),
                type_name: "memory",
                spec: Box::new(MemoryChannelConfig::default()),
            }],
            sinks: vec![SinkConfig {
                name: "k1".into(),
                type_name: "file_roll",
                channel: "c1".into(),
                spec: Box::new(FileRollConfig {
                    roll_interval: Duration::ZERO,
                    batch_size: 13,
                    ..FileRollConfig::new(&out)
                }),
            }],
            sinkgroups: Vec::new(),
        };
        let agent = Agent::start(&cfg).expect("start");
        wait_until("1000 lines", || read_lines(&out).len() >= 1000);
        agent.shutdown().expect("shutdown");
        let want: Vec<String> = (0..1000).map(|i: u32| i.to_string()).collect();
        assert_eq!(read_lines(&out), want);
    }
}
