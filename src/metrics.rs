//! Monitoring: per-component counters with Flume's names, rendered as Flume's JSON
//! (`GET /metrics`, what `-Dflume.monitoring.type=http` serves) and as Prometheus text
//! (`GET /metrics/prometheus`), served by a tiny HTTP/1.1 server on a std thread.
//!
//! Sources and sinks count into a [`ComponentCounters`] (lock-free `AtomicU64`s) handed to
//! them by the agent; channels are not counted here but read through [`Channel::stats`] at
//! request time. The [`Registry`] holds both, plus each component's StartTime/StopTime
//! (milliseconds since the epoch, 0 while not started/stopped, as Flume reports them). The
//! server answers one request per connection (`Connection: close`), reads at most
//! [`MAX_REQUEST_BYTES`] of request head with a timeout, answers 400/404/405 to anything it
//! does not serve, never panics on input, and stops when [`MetricsServer::stop`] is called.

use std::fmt::Write as _;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::channel::Channel;

/// Flume's default monitoring port.
pub const DEFAULT_PORT: u16 = 41414;
/// Longest request head (request line and headers) the server reads.
pub const MAX_REQUEST_BYTES: usize = 8192;
const CLIENT_TIMEOUT: Duration = Duration::from_secs(2);

/// The counters of sources and sinks, by Flume's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    // Sources (Flume's SourceCounter).
    EventReceivedCount,
    EventAcceptedCount,
    AppendReceivedCount,
    AppendAcceptedCount,
    AppendBatchReceivedCount,
    AppendBatchAcceptedCount,
    OpenConnectionCount,
    EventReadFail,
    ChannelWriteFail,
    // Sinks (Flume's SinkCounter).
    ConnectionCreatedCount,
    ConnectionClosedCount,
    ConnectionFailedCount,
    BatchEmptyCount,
    BatchUnderflowCount,
    BatchCompleteCount,
    EventDrainAttemptCount,
    EventDrainSuccessCount,
    EventWriteFail,
    ChannelReadFail,
}

const COUNTER_SLOTS: usize = 19;

/// A source's counters, in the order they are rendered.
pub const SOURCE_COUNTERS: &[Counter] = &[
    Counter::EventReceivedCount,
    Counter::EventAcceptedCount,
    Counter::AppendReceivedCount,
    Counter::AppendAcceptedCount,
    Counter::AppendBatchReceivedCount,
    Counter::AppendBatchAcceptedCount,
    Counter::OpenConnectionCount,
    Counter::EventReadFail,
    Counter::ChannelWriteFail,
];

/// A sink's counters, in the order they are rendered.
pub const SINK_COUNTERS: &[Counter] = &[
    Counter::ConnectionCreatedCount,
    Counter::ConnectionClosedCount,
    Counter::ConnectionFailedCount,
    Counter::BatchEmptyCount,
    Counter::BatchUnderflowCount,
    Counter::BatchCompleteCount,
    Counter::EventDrainAttemptCount,
    Counter::EventDrainSuccessCount,
    Counter::EventWriteFail,
    Counter::ChannelReadFail,
];

impl Counter {
    /// Flume's name.
    pub fn name(self) -> &'static str {
        match self {
            Counter::EventReceivedCount => "EventReceivedCount",
            Counter::EventAcceptedCount => "EventAcceptedCount",
            Counter::AppendReceivedCount => "AppendReceivedCount",
            Counter::AppendAcceptedCount => "AppendAcceptedCount",
            Counter::AppendBatchReceivedCount => "AppendBatchReceivedCount",
            Counter::AppendBatchAcceptedCount => "AppendBatchAcceptedCount",
            Counter::OpenConnectionCount => "OpenConnectionCount",
            Counter::EventReadFail => "EventReadFail",
            Counter::ChannelWriteFail => "ChannelWriteFail",
            Counter::ConnectionCreatedCount => "ConnectionCreatedCount",
            Counter::ConnectionClosedCount => "ConnectionClosedCount",
            Counter::ConnectionFailedCount => "ConnectionFailedCount",
            Counter::BatchEmptyCount => "BatchEmptyCount",
            Counter::BatchUnderflowCount => "BatchUnderflowCount",
            Counter::BatchCompleteCount => "BatchCompleteCount",
            Counter::EventDrainAttemptCount => "EventDrainAttemptCount",
            Counter::EventDrainSuccessCount => "EventDrainSuccessCount",
            Counter::EventWriteFail => "EventWriteFail",
            Counter::ChannelReadFail => "ChannelReadFail",
        }
    }

    fn slot(self) -> usize {
        self as usize
    }

    /// Whether the value can go down (rendered as a Prometheus gauge).
    fn is_gauge(self) -> bool {
        self == Counter::OpenConnectionCount
    }
}

/// The kind of a component, Flume's "Type".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ComponentType {
    Source,
    Channel,
    Sink,
}

impl ComponentType {
    /// `SOURCE`, `CHANNEL`, `SINK`.
    pub fn flume_name(self) -> &'static str {
        match self {
            ComponentType::Source => "SOURCE",
            ComponentType::Channel => "CHANNEL",
            ComponentType::Sink => "SINK",
        }
    }

    fn prom_name(self) -> &'static str {
        match self {
            ComponentType::Source => "source",
            ComponentType::Channel => "channel",
            ComponentType::Sink => "sink",
        }
    }
}

/// Milliseconds since the epoch (0 if the clock is before it).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Start and stop times of a component, ms since the epoch, 0 when not (yet) set.
#[derive(Debug, Default)]
pub struct Times {
    start: AtomicU64,
    stop: AtomicU64,
}

impl Times {
    /// Records the start now (and clears a previous stop).
    pub fn started(&self) {
        self.start.store(now_ms(), Ordering::Relaxed);
        self.stop.store(0, Ordering::Relaxed);
    }
    /// Records the stop now.
    pub fn stopped(&self) {
        self.stop.store(now_ms(), Ordering::Relaxed);
    }
    fn get(&self) -> (u64, u64) {
        (
            self.start.load(Ordering::Relaxed),
            self.stop.load(Ordering::Relaxed),
        )
    }
}

/// One source's or sink's counters. Cheap to update from any thread.
#[derive(Debug)]
pub struct ComponentCounters {
    name: String,
    ty: ComponentType,
    values: [AtomicU64; COUNTER_SLOTS],
    times: Times,
}

impl ComponentCounters {
    /// Counters of a component called `name`, not registered anywhere (what a source or sink
    /// built outside an agent counts into).
    pub fn detached(name: &str, ty: ComponentType) -> Arc<ComponentCounters> {
        Arc::new(ComponentCounters {
            name: name.to_string(),
            ty,
            values: std::array::from_fn(|_| AtomicU64::new(0)),
            times: Times::default(),
        })
    }

    /// The component name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Adds 1.
    pub fn inc(&self, c: Counter) {
        self.add(c, 1);
    }

    /// Adds `n`.
    pub fn add(&self, c: Counter, n: u64) {
        self.values[c.slot()].fetch_add(n, Ordering::Relaxed);
    }

    /// Subtracts 1, never below 0 (for gauges such as OpenConnectionCount).
    pub fn dec(&self, c: Counter) {
        let _ = self.values[c.slot()].fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
            Some(v.saturating_sub(1))
        });
    }

    /// The current value.
    pub fn get(&self, c: Counter) -> u64 {
        self.values[c.slot()].load(Ordering::Relaxed)
    }

    /// Start/stop times.
    pub fn times(&self) -> &Times {
        &self.times
    }

    fn counters(&self) -> &'static [Counter] {
        match self.ty {
            ComponentType::Sink => SINK_COUNTERS,
            _ => SOURCE_COUNTERS,
        }
    }
}

struct ChannelEntry {
    channel: Arc<dyn Channel>,
    /// File channels add EventPutErrorCount, EventTakeErrorCount and Unhealthy.
    is_file: bool,
    times: Times,
}

/// Every component's counters; what the HTTP server renders.
#[derive(Default)]
pub struct Registry {
    components: Mutex<Vec<Arc<ComponentCounters>>>,
    channels: Mutex<Vec<Arc<ChannelEntry>>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry").finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking holder cannot leave these vectors inconsistent; keep serving.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// One row of a rendering: the component's type and name and its (name, value) pairs.
struct Row {
    ty: ComponentType,
    name: String,
    values: Vec<(&'static str, Value)>,
}

#[derive(Clone, Copy)]
enum Value {
    Int(u64),
    Float(f64),
}

impl Value {
    fn render(self) -> String {
        match self {
            Value::Int(v) => v.to_string(),
            // Java's Double.toString for ordinary values: always a fraction part ("0.0").
            Value::Float(v) => format!("{v:?}"),
        }
    }
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Arc<Registry> {
        Arc::new(Registry::default())
    }

    /// Registers (and returns) the counters of a source or sink called `name`.
    pub fn component(&self, name: &str, ty: ComponentType) -> Arc<ComponentCounters> {
        let c = ComponentCounters::detached(name, ty);
        lock(&self.components).push(Arc::clone(&c));
        c
    }

    /// Registers a channel; its counters are read from [`Channel::stats`] when rendering.
    /// `is_file` adds the file channel's extra counters. Returns its start/stop times.
    pub fn channel(&self, channel: Arc<dyn Channel>, is_file: bool) -> Arc<ChannelTimes> {
        let e = Arc::new(ChannelEntry {
            channel,
            is_file,
            times: Times::default(),
        });
        lock(&self.channels).push(Arc::clone(&e));
        Arc::new(ChannelTimes(e))
    }

    fn rows(&self) -> Vec<Row> {
        let mut rows = Vec::new();
        for e in lock(&self.channels).iter() {
            let s = e.channel.stats();
            let fill = if s.capacity == 0 {
                0.0
            } else {
                s.size as f64 * 100.0 / s.capacity as f64
            };
            let mut values = vec![
                ("ChannelSize", Value::Int(s.size)),
                ("ChannelCapacity", Value::Int(s.capacity)),
                ("ChannelFillPercentage", Value::Float(fill)),
                ("EventPutAttemptCount", Value::Int(s.put_attempts)),
                ("EventPutSuccessCount", Value::Int(s.put_successes)),
                ("EventTakeAttemptCount", Value::Int(s.take_attempts)),
                ("EventTakeSuccessCount", Value::Int(s.take_successes)),
            ];
            if e.is_file {
                values.extend([
                    ("EventPutErrorCount", Value::Int(s.put_errors)),
                    ("EventTakeErrorCount", Value::Int(s.take_errors)),
                    ("Unhealthy", Value::Int(u64::from(s.poisoned))),
                ]);
            }
            values.extend([
                ("Commits", Value::Int(s.commits)),
                ("Fsyncs", Value::Int(s.fsyncs)),
                ("Checkpoints", Value::Int(s.checkpoints)),
            ]);
            push_times(&mut values, &e.times);
            rows.push(Row {
                ty: ComponentType::Channel,
                name: e.channel.name().to_string(),
                values,
            });
        }
        for c in lock(&self.components).iter() {
            let mut values: Vec<(&'static str, Value)> = c
                .counters()
                .iter()
                .map(|&k| (k.name(), Value::Int(c.get(k))))
                .collect();
            push_times(&mut values, &c.times);
            rows.push(Row {
                ty: c.ty,
                name: c.name.clone(),
                values,
            });
        }
        rows
    }

    /// Flume's JSON: `{"CHANNEL.c1": {"ChannelSize": "0", ..., "Type": "CHANNEL"}}`, every
    /// value a string.
    pub fn render_json(&self) -> String {
        let mut top = serde_json::Map::new();
        for r in self.rows() {
            let mut m = serde_json::Map::new();
            for (k, v) in r.values {
                m.insert(k.to_string(), serde_json::Value::String(v.render()));
            }
            m.insert(
                "Type".into(),
                serde_json::Value::String(r.ty.flume_name().into()),
            );
            top.insert(
                format!("{}.{}", r.ty.flume_name(), r.name),
                serde_json::Value::Object(m),
            );
        }
        serde_json::Value::Object(top).to_string()
    }

    /// Prometheus text format: `flumen_<type>_<counter_snake_case>{component="c1"} value`,
    /// one `# TYPE` line per metric.
    pub fn render_prometheus(&self) -> String {
        // Metric name -> (is gauge, lines), in first-seen order.
        let mut families: Vec<(String, bool, Vec<String>)> = Vec::new();
        for r in self.rows() {
            for (k, v) in r.values {
                let metric = format!("flumen_{}_{}", r.ty.prom_name(), snake_case(k));
                let line = format!(
                    "{metric}{{component=\"{}\"}} {}",
                    escape_label(&r.name),
                    v.render()
                );
                match families.iter_mut().find(|f| f.0 == metric) {
                    Some(f) => f.2.push(line),
                    None => families.push((metric, is_gauge(k), vec![line])),
                }
            }
        }
        let mut out = String::new();
        for (metric, gauge, lines) in families {
            let kind = if gauge { "gauge" } else { "counter" };
            let _ = writeln!(out, "# TYPE {metric} {kind}");
            for l in lines {
                out.push_str(&l);
                out.push('\n');
            }
        }
        out
    }
}

/// A channel's start/stop times, recorded by the agent.
pub struct ChannelTimes(Arc<ChannelEntry>);

impl ChannelTimes {
    /// The times.
    pub fn times(&self) -> &Times {
        &self.0.times
    }
}

fn push_times(values: &mut Vec<(&'static str, Value)>, t: &Times) {
    let (start, stop) = t.get();
    values.push(("StartTime", Value::Int(start)));
    values.push(("StopTime", Value::Int(stop)));
}

fn is_gauge(name: &str) -> bool {
    matches!(
        name,
        "ChannelSize"
            | "ChannelCapacity"
            | "ChannelFillPercentage"
            | "Unhealthy"
            | "StartTime"
            | "StopTime"
    ) || SOURCE_COUNTERS
        .iter()
        .chain(SINK_COUNTERS)
        .any(|c| c.name() == name && c.is_gauge())
}

/// `EventAcceptedCount` -> `event_accepted_count`.
fn snake_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for (i, ch) in name.chars().enumerate() {
        if ch.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(ch.to_ascii_lowercase());
        } else {
            out.push(ch);
        }
    }
    out
}

fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// An HTTP response: status line text, content type, body.
#[derive(Debug, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Error",
    }
}

/// Answers a request whose head (request line and headers, possibly truncated) is `head`.
pub fn respond(registry: &Registry, head: &[u8]) -> Response {
    let text = |status: u16, body: &str| Response {
        status,
        content_type: "text/plain; charset=utf-8",
        body: format!("{body}\n"),
    };
    let line_end = head.iter().position(|&b| b == b'\n').unwrap_or(head.len());
    let Ok(line) = std::str::from_utf8(&head[..line_end]) else {
        return text(400, "bad request");
    };
    let mut parts = line.trim_end_matches('\r').split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return text(400, "bad request");
    };
    if !version.starts_with("HTTP/1.") || method.is_empty() || !target.starts_with('/') {
        return text(400, "bad request");
    }
    if method != "GET" && method != "HEAD" {
        return text(405, "only GET is served");
    }
    let path = target.split('?').next().unwrap_or(target);
    match path {
        "/metrics" | "/metrics/" => Response {
            status: 200,
            content_type: "application/json",
            body: registry.render_json(),
        },
        "/metrics/prometheus" => Response {
            status: 200,
            content_type: "text/plain; version=0.0.4; charset=utf-8",
            body: registry.render_prometheus(),
        },
        _ => text(404, "not found: try /metrics or /metrics/prometheus"),
    }
}

/// The running HTTP server.
pub struct MetricsServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl MetricsServer {
    /// Binds `addr` and serves `registry` on a thread until [`MetricsServer::stop`].
    pub fn start(addr: SocketAddr, registry: Arc<Registry>) -> std::io::Result<MetricsServer> {
        let listener = TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("metrics-http".into())
            .spawn(move || serve(&listener, &registry, &stop2))?;
        tracing::info!("monitoring: serving http://{addr}/metrics and /metrics/prometheus");
        Ok(MetricsServer {
            addr,
            stop,
            thread: Some(thread),
        })
    }

    /// The address bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops serving and waits for the thread.
    pub fn stop(mut self) {
        self.stop_inner();
    }

    fn stop_inner(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            if t.join().is_err() {
                tracing::error!("monitoring: the HTTP server thread panicked");
            }
        }
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.stop_inner();
    }
}

fn serve(listener: &TcpListener, registry: &Registry, stop: &AtomicBool) {
    while !stop.load(Ordering::Acquire) {
        match listener.accept() {
            Ok((stream, peer)) => {
                if let Err(e) = handle(stream, registry) {
                    tracing::debug!("monitoring: request from {peer}: {e}");
                }
            }
            Err(e) => crate::net::after_failed_accept(listener, &e, |e| {
                tracing::warn!("monitoring: accept: {e}");
            }),
        }
    }
}

/// Reads the request head (bounded, with a timeout) and writes the response.
fn handle(mut stream: TcpStream, registry: &Registry) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(CLIENT_TIMEOUT))?;
    stream.set_write_timeout(Some(CLIENT_TIMEOUT))?;
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    let mut too_long = false;
    loop {
        if head.windows(4).any(|w| w == b"\r\n\r\n") || head.windows(2).any(|w| w == b"\n\n") {
            break;
        }
        if head.len() >= MAX_REQUEST_BYTES {
            too_long = true;
            break;
        }
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => head.extend_from_slice(&buf[..n.min(MAX_REQUEST_BYTES + 1 - head.len())]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let is_head = head.starts_with(b"HEAD ");
    let resp = if too_long {
        Response {
            status: 400,
            content_type: "text/plain; charset=utf-8",
            body: "request head too long\n".into(),
        }
    } else {
        respond(registry, &head)
    };
    let mut out = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        resp.status,
        reason(resp.status),
        resp.content_type,
        resp.body.len()
    )
    .into_bytes();
    if !is_head {
        out.extend_from_slice(resp.body.as_bytes());
    }
    stream.write_all(&out)?;
    stream.flush()?;
    let _ = stream.shutdown(std::net::Shutdown::Write);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::memory::{MemoryChannel, MemoryChannelConfig};
    use crate::event::Event;

    fn registry() -> (
        Arc<Registry>,
        Arc<ComponentCounters>,
        Arc<ComponentCounters>,
    ) {
        let reg = Registry::new();
        let ch: Arc<dyn Channel> =
            Arc::new(MemoryChannel::new("c1", MemoryChannelConfig::default()).expect("channel"));
        let mut tx = ch.put_transaction();
        tx.put(Event::new(b"x".to_vec())).expect("put");
        tx.commit().expect("commit");
        reg.channel(ch, false).times().started();
        let src = reg.component("r1", ComponentType::Source);
        let sink = reg.component("k1", ComponentType::Sink);
        src.add(Counter::EventReceivedCount, 3);
        src.add(Counter::EventAcceptedCount, 2);
        src.inc(Counter::OpenConnectionCount);
        src.dec(Counter::OpenConnectionCount);
        src.dec(Counter::OpenConnectionCount);
        sink.add(Counter::EventDrainSuccessCount, 7);
        (reg, src, sink)
    }

    #[test]
    fn json_has_flumes_shape() {
        let (reg, _, _) = registry();
        let v: serde_json::Value = serde_json::from_str(&reg.render_json()).expect("json");
        let c1 = &v["CHANNEL.c1"];
        assert_eq!(c1["Type"], "CHANNEL");
        assert_eq!(c1["ChannelSize"], "1");
        assert_eq!(c1["ChannelCapacity"], "100");
        assert_eq!(c1["ChannelFillPercentage"], "1.0");
        assert_eq!(c1["EventPutSuccessCount"], "1");
        assert!(c1.get("Unhealthy").is_none(), "memory channel: {c1}");
        assert_ne!(c1["StartTime"], "0");
        assert_eq!(c1["StopTime"], "0");
        let r1 = &v["SOURCE.r1"];
        assert_eq!(r1["Type"], "SOURCE");
        assert_eq!(r1["EventReceivedCount"], "3");
        assert_eq!(r1["EventAcceptedCount"], "2");
        assert_eq!(r1["OpenConnectionCount"], "0");
        assert_eq!(r1["AppendBatchAcceptedCount"], "0");
        let k1 = &v["SINK.k1"];
        assert_eq!(k1["Type"], "SINK");
        assert_eq!(k1["EventDrainSuccessCount"], "7");
        assert_eq!(k1["BatchEmptyCount"], "0");
        // Every value a string.
        for comp in v.as_object().expect("object").values() {
            for val in comp.as_object().expect("object").values() {
                assert!(val.is_string(), "{val}");
            }
        }
    }

    #[test]
    fn prometheus_text() {
        let (reg, _, _) = registry();
        let text = reg.render_prometheus();
        for want in [
            "# TYPE flumen_channel_channel_size gauge\nflumen_channel_channel_size{component=\"c1\"} 1\n",
            "# TYPE flumen_channel_channel_fill_percentage gauge\n",
            "# TYPE flumen_channel_event_put_success_count counter\n",
            "flumen_source_event_accepted_count{component=\"r1\"} 2\n",
            "# TYPE flumen_source_open_connection_count gauge\n",
            "# TYPE flumen_sink_event_drain_success_count counter\nflumen_sink_event_drain_success_count{component=\"k1\"} 7\n",
        ] {
            assert!(text.contains(want), "missing {want:?} in:\n{text}");
        }
        // One TYPE line per metric.
        let types = text.lines().filter(|l| l.starts_with("# TYPE ")).count();
        let metrics: std::collections::HashSet<&str> = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split('{').next())
            .collect();
        assert_eq!(types, metrics.len());
    }

    #[test]
    fn routes_and_malformed_requests() {
        let (reg, _, _) = registry();
        assert_eq!(respond(&reg, b"GET /metrics HTTP/1.1\r\n\r\n").status, 200);
        let p = respond(&reg, b"GET /metrics/prometheus HTTP/1.0\r\nHost: x\r\n\r\n");
        assert_eq!(
            (p.status, p.content_type.starts_with("text/plain")),
            (200, true)
        );
        assert_eq!(respond(&reg, b"GET /nope HTTP/1.1\r\n\r\n").status, 404);
        assert_eq!(respond(&reg, b"POST /metrics HTTP/1.1\r\n\r\n").status, 405);
        for bad in [
            &b""[..],
            b"\r\n\r\n",
            b"garbage",
            b"GET\r\n\r\n",
            b"GET /metrics\r\n\r\n",
            b"GET metrics HTTP/1.1\r\n\r\n",
            b"GET /metrics HTTP/1.1 extra\r\n\r\n",
            b"GET /metrics SMTP\r\n\r\n",
            b"\xff\xfe /metrics HTTP/1.1\r\n\r\n",
        ] {
            assert_eq!(respond(&reg, bad).status, 400, "{bad:?}");
        }
    }

    fn http(addr: SocketAddr, request: &[u8]) -> String {
        let mut s = TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        s.write_all(request).expect("write");
        let _ = s.shutdown(std::net::Shutdown::Write);
        let mut out = String::new();
        s.read_to_string(&mut out).expect("read");
        out
    }

    #[test]
    fn server_answers_and_survives_bad_input() {
        let (reg, src, _) = registry();
        let server =
            MetricsServer::start("127.0.0.1:0".parse().expect("addr"), reg).expect("start");
        let addr = server.local_addr();
        let ok = http(addr, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
        assert!(ok.contains("Connection: close\r\n"), "{ok}");
        let body = ok.split("\r\n\r\n").nth(1).expect("body");
        let v: serde_json::Value = serde_json::from_str(body).expect("json");
        assert_eq!(v["SOURCE.r1"]["EventAcceptedCount"], "2");
        src.add(Counter::EventAcceptedCount, 40);
        let prom = http(addr, b"GET /metrics/prometheus HTTP/1.1\r\n\r\n");
        assert!(
            prom.contains("flumen_source_event_accepted_count{component=\"r1\"} 42\n"),
            "{prom}"
        );
        assert!(http(addr, b"\x00\x01garbage\r\n\r\n").starts_with("HTTP/1.1 400 "));
        assert!(http(addr, b"").starts_with("HTTP/1.1 400 "));
        let huge = vec![b'A'; MAX_REQUEST_BYTES * 4];
        let mut s = TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        // The server may close before reading it all; only its answer matters.
        let _ = s.write_all(&huge);
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        assert!(out.is_empty() || out.starts_with("HTTP/1.1 400 "), "{out}");
        assert!(http(addr, b"GET /nope HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404 "));
        // Still serving after all that.
        assert!(http(addr, b"GET /metrics HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 200 "));
        server.stop();
        assert!(
            TcpStream::connect(addr).is_err(),
            "still listening after stop"
        );
    }

    #[test]
    fn snake_case_names() {
        assert_eq!(snake_case("EventAcceptedCount"), "event_accepted_count");
        assert_eq!(
            snake_case("ChannelFillPercentage"),
            "channel_fill_percentage"
        );
    }
}
