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
//! [`run_until_signal`] is what `flumen agent` runs: start, wait for SIGTERM or SIGINT, shut
//! down; a second signal during shutdown exits at once with code 130.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use crate::channel::{Channel, ChannelError};
use crate::interceptor::InterceptorChain;
use crate::metrics::{ChannelTimes, ComponentCounters, ComponentType, MetricsServer, Registry};
use crate::route::ChannelProcessor;
use crate::sink::group::GroupRunner;
use crate::sink::{SinkError, SinkRunner};
use crate::source::{SourceContext, SourceError};

pub mod config;
pub mod registry;

pub use config::AgentConfig;

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
    /// The counters of what the thread runs: one source or sink, or a sink group's sinks.
    counters: Vec<Arc<ComponentCounters>>,
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
    channels: Vec<Arc<dyn Channel>>,
    sources: Vec<Running>,
    sinks: Vec<Running>,
    source_stop: Arc<AtomicBool>,
    sink_stop: Arc<AtomicBool>,
    metrics: Arc<Registry>,
    channel_times: Vec<Arc<ChannelTimes>>,
    server: Option<MetricsServer>,
}

impl Agent {
    /// Opens the channels, then starts the sinks and the sources. On an error, everything
    /// already started is stopped again before returning.
    pub fn start(cfg: &AgentConfig) -> Result<Agent, AgentError> {
        Agent::start_with(cfg, &AgentOptions::default())
    }

    /// [`Agent::start`], then the monitoring server if `opts` asks for it (a port in use
    /// stops the agent again and fails).
    pub fn start_with(cfg: &AgentConfig, opts: &AgentOptions) -> Result<Agent, AgentError> {
        let mut agent = Agent {
            name: cfg.name.clone(),
            channels: Vec::new(),
            sources: Vec::new(),
            sinks: Vec::new(),
            source_stop: Arc::new(AtomicBool::new(false)),
            sink_stop: Arc::new(AtomicBool::new(false)),
            metrics: Registry::new(),
            channel_times: Vec::new(),
            server: None,
        };
        let started = agent
            .start_components(cfg)
            .and_then(|()| agent.start_monitoring(opts));
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

    fn start_components(&mut self, cfg: &AgentConfig) -> Result<(), AgentError> {
        for c in &cfg.channels {
            let ch = c.spec.open(&c.name)?;
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
            self.channel_times.push(times);
            self.channels.push(ch);
        }
        // Build everything that can fail before starting any thread.
        let mut runners = Vec::new();
        for s in &cfg.sinks {
            let channel = self.channel(&s.name, &s.channel)?;
            let mut sink = s.spec.build(&s.name)?;
            let batch_size = s.spec.batch_size().map_or(1, |(n, _)| n.max(1));
            let counters = self.metrics.component(&s.name, ComponentType::Sink);
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
        let mut sources = Vec::new();
        for s in &cfg.sources {
            let chans = s
                .channels
                .iter()
                .map(|c| self.channel(&s.name, c))
                .collect::<Result<Vec<_>, _>>()?;
            let chain =
                InterceptorChain::new(s.interceptors.iter().map(|i| i.spec.build()).collect());
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
            let counters = self.metrics.component(&s.name, ComponentType::Source);
            let src = s.spec.build(SourceContext {
                name: s.name.clone(),
                channels: chans,
                counters: Arc::clone(&counters),
            })?;
            sources.push((s.name.clone(), s.type_name, src, counters));
        }
        // A sink group's sinks run on the group's thread; every other sink on its own.
        let mut groups = Vec::new();
        for g in &cfg.sinkgroups {
            let mut members = Vec::new();
            for sink in &g.sinks {
                match runners.iter().position(|(_, r)| r.name == *sink) {
                    Some(i) => members.push(runners.remove(i).1),
                    None => {
                        return Err(AgentError::UnknownSink {
                            group: g.name.clone(),
                            sink: sink.clone(),
                        })
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
            let stop = Arc::clone(&self.sink_stop);
            let thread = spawn(&format!("sink-{name}"), move || runner.run(stop))?;
            counters.times().started();
            tracing::info!(sink = %name, "sink `{name}` ({kind}) started");
            self.sinks.push(Running {
                role: "sink",
                name,
                kind,
                thread,
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
            let stop = Arc::clone(&self.sink_stop);
            let thread = spawn(&format!("sinkgroup-{name}"), move || group.run(stop))?;
            for c in &counters {
                c.times().started();
            }
            tracing::info!(group = %name, "sink group `{name}` ({kind}) started");
            self.sinks.push(Running {
                role: "sink group",
                name,
                kind,
                thread,
                counters,
            });
        }
        for (name, kind, src, counters) in sources {
            let stop = Arc::clone(&self.source_stop);
            let thread = spawn(&format!("source-{name}"), move || src.run(stop))?;
            counters.times().started();
            tracing::info!(source = %name, "source `{name}` ({kind}) started");
            self.sources.push(Running {
                role: "source",
                name,
                kind,
                thread,
                counters: vec![counters],
            });
        }
        Ok(())
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

    fn channel(&self, component: &str, name: &str) -> Result<Arc<dyn Channel>, AgentError> {
        self.channels
            .iter()
            .find(|c| c.name() == name)
            .cloned()
            .ok_or_else(|| AgentError::UnknownChannel {
                component: component.to_string(),
                channel: name.to_string(),
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
        self.source_stop.store(true, Ordering::Release);
        for s in self.sources.drain(..) {
            join(s, &mut errors);
        }
        self.sink_stop.store(true, Ordering::Release);
        for s in self.sinks.drain(..) {
            join(s, &mut errors);
        }
        for t in self.channel_times.drain(..) {
            t.times().stopped();
        }
        for c in self.channels.drain(..) {
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
        if let Some(server) = self.server.take() {
            server.stop();
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(AgentError::Shutdown(errors))
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

/// Starts the agent, runs it until SIGTERM or SIGINT, then shuts it down. A second signal
/// while shutting down exits the process at once with code 130 (committed events are safe
/// in a file channel either way). `opts` may start the monitoring server.
pub fn run_until_signal(cfg: &AgentConfig, opts: &AgentOptions) -> Result<(), AgentError> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    // Install the handlers before starting, so an early signal is not lost to the default
    // action.
    let mut signals =
        signal_hook::iterator::Signals::new([SIGTERM, SIGINT]).map_err(|cause| AgentError::Os {
            what: "installing SIGTERM/SIGINT handlers".into(),
            cause,
        })?;
    let (tx, rx) = std::sync::mpsc::channel::<i32>();
    spawn("signals", move || {
        let mut seen = 0;
        for sig in signals.forever() {
            seen += 1;
            if seen == 1 {
                tracing::info!("received signal {sig}; shutting down (send again to exit at once)");
                let _ = tx.send(sig);
            } else {
                tracing::warn!("received signal {sig} again; exiting at once");
                std::process::exit(130);
            }
        }
    })?;
    let agent = Agent::start_with(cfg, opts)?;
    // Err only if the signal thread died, which it does not; shut down either way.
    let _ = rx.recv();
    agent.shutdown()
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
