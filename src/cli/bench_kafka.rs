//! `flumen bench kafka`: the Kafka sink and source on a running broker, beside Kafka's own Java
//! producer on the same broker, in one run.
//!
//! Each round, in turn:
//! * sink: an agent (stress source, N events of B bytes, batch K -> a fresh file channel with
//!   fsync on every commit -> kafka sink, `flumeBatchSize` K, `kafka.producer.acks` as given)
//!   into a fresh topic, timed from start until every event's take committed (every record
//!   acknowledged at that acks level);
//! * Java producer (with `--java-classpath`, the tests/kafka project): Kafka's own
//!   `ProducerPerformance` sends N records of B bytes at the same acks into another fresh
//!   topic, timed by the tool itself from its first send (JVM start-up is not counted);
//! * source: an agent (kafka source on the sink's topic from the earliest offset, a new
//!   consumer group, batchSize K -> a fresh file channel -> null sink), timed from start until
//!   N events' takes committed.
//!
//! The sink's topic is checked to hold N records afterwards (its partitions' end offsets).
//! Whole-process CPU time per event is reported for both agent shapes. Ratios are taken within
//! a round; medians are reported. benches/compare.py runs Apache Flume's Kafka sink and source
//! on the same shapes. Output: a table (unless `--json`), then one JSON object as the last
//! stdout line; progress goes to stderr.

use std::io::Write;
use std::path::Path;
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use clap::Args;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::ClientConfig;

use super::bench::RunDir;
use super::bench_agent::{drained, file_channel_props, per_sec, round3, start_agent, wait_for};
use super::bench_hdfs::{java_failed, median};
use super::bench_taildir::process_cpu;
use super::CliError;

/// The target: the sink at the Java producer's rate or better.
const TARGET_JAVA_RATIO: f64 = 1.0;

/// `flumen bench kafka` options.
#[derive(Debug, Args)]
pub struct KafkaBenchArgs {
    /// The broker(s) to use, `host:port[,host:port...]`. Topics named `flumen-bench-*` are
    /// created there (and left: delete them with kafka-topics.sh if the broker is not a
    /// throw-away one).
    #[arg(long, value_name = "HOST:PORT")]
    pub bootstrap: String,
    /// Classpath with Kafka's tools (tests/kafka: classes + dependencies): runs Kafka's own
    /// producer benchmark as the baseline. Without it only flumen is measured.
    #[arg(long, value_name = "CP")]
    pub java_classpath: Option<String>,
    /// Directory for the file channels (a fresh subdirectory is removed at the end).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<std::path::PathBuf>,
    /// Events per measurement.
    #[arg(long, default_value_t = 300_000)]
    pub events: u64,
    /// Body size in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 1024)]
    pub event_size: usize,
    /// Events per channel transaction, per sink batch and per source batch.
    #[arg(long, default_value_t = 100)]
    pub batch: usize,
    /// `acks` of the sink and of the Java producer: all, 1 or 0.
    #[arg(long, default_value = "all", value_parser = ["all", "-1", "1", "0"])]
    pub acks: String,
    /// Partitions of each topic the bench creates.
    #[arg(long, default_value_t = 4)]
    pub partitions: i32,
    /// Rounds.
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Print only the JSON line.
    #[arg(long)]
    pub json: bool,
}

/// What `flumen bench kafka` reports (the last stdout line).
#[derive(Debug, serde::Serialize)]
pub struct KafkaBenchReport {
    pub events: u64,
    pub event_size: usize,
    pub batch: usize,
    pub acks: String,
    pub partitions: i32,
    pub rounds: usize,
    pub sink_events_per_sec: f64,
    pub sink_cpu_us_per_event: f64,
    /// Kafka's own producer on the same broker (`null` without `--java-classpath`).
    pub java_producer_events_per_sec: Option<f64>,
    pub sink_vs_java_ratio: Option<f64>,
    pub sink_vs_java_ratios: Vec<f64>,
    pub source_events_per_sec: f64,
    pub source_cpu_us_per_event: f64,
    pub target_java_ratio: f64,
    pub meets_target: Option<bool>,
    /// Every round delivered every event: the sink's topic held N records and the source's
    /// channel took N.
    pub verified: bool,
}

fn kafka_failed(what: &str, bootstrap: &str, e: impl std::fmt::Display) -> CliError {
    CliError::Failed(format!("{what} on the Kafka brokers {bootstrap}: {e}"))
}

fn client(a: &KafkaBenchArgs) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &a.bootstrap);
    c
}

/// Creates `topic` with the bench's partitions and waits until every partition has a leader.
fn create_topic(a: &KafkaBenchArgs, topic: &str) -> Result<(), CliError> {
    let admin: AdminClient<DefaultClientContext> = client(a)
        .create()
        .map_err(|e| kafka_failed("creating an admin client", &a.bootstrap, e))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Failed(format!("starting a runtime: {e}")))?;
    let results = rt
        .block_on(admin.create_topics(
            &[NewTopic::new(
                topic,
                a.partitions,
                TopicReplication::Fixed(1),
            )],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))),
        ))
        .map_err(|e| kafka_failed("creating a topic", &a.bootstrap, e))?;
    for r in results {
        r.map_err(|(t, code)| kafka_failed(&format!("creating topic {t}"), &a.bootstrap, code))?;
    }
    let consumer: BaseConsumer = client(a)
        .create()
        .map_err(|e| kafka_failed("creating a consumer", &a.bootstrap, e))?;
    let ready = wait_for(
        &format!("topic {topic}"),
        Duration::from_secs(30),
        || "waiting for partition leaders".into(),
        || {
            consumer
                .fetch_metadata(Some(topic), Duration::from_secs(2))
                .is_ok_and(|md| {
                    md.topics().iter().any(|t| {
                        t.error().is_none()
                            && t.partitions().len() == a.partitions as usize
                            && t.partitions().iter().all(|p| p.leader() >= 0)
                    })
                })
        },
    );
    if ready {
        Ok(())
    } else {
        Err(kafka_failed(
            &format!("topic {topic} has no leaders after 30 s"),
            &a.bootstrap,
            "is the broker healthy?",
        ))
    }
}

/// Records in `topic`: the sum of its partitions' high watermarks.
fn topic_records(a: &KafkaBenchArgs, topic: &str) -> Result<u64, CliError> {
    let consumer: BaseConsumer = client(a)
        .create()
        .map_err(|e| kafka_failed("creating a consumer", &a.bootstrap, e))?;
    let mut total = 0u64;
    for p in 0..a.partitions {
        let (_, high) = consumer
            .fetch_watermarks(topic, p, Duration::from_secs(10))
            .map_err(|e| kafka_failed(&format!("reading {topic}'s offsets"), &a.bootstrap, e))?;
        total += high.max(0) as u64;
    }
    Ok(total)
}

fn channel_props(a: &KafkaBenchArgs, dir: &Path) -> String {
    file_channel_props(dir, a.events.max(1_000_000), a.batch.max(1000))
}

/// stress -> file channel -> kafka sink into `topic`.
pub fn sink_props(a: &KafkaBenchArgs, dir: &Path, topic: &str) -> String {
    format!(
        "a1.sources = r1\n\
         a1.sinks = k1\n\
         {channel}\
         a1.sources.r1.type = stress\n\
         a1.sources.r1.size = {size}\n\
         a1.sources.r1.maxTotalEvents = {n}\n\
         a1.sources.r1.batchSize = {k}\n\
         a1.sources.r1.channels = c1\n\
         a1.sinks.k1.type = org.apache.flume.sink.kafka.KafkaSink\n\
         a1.sinks.k1.kafka.bootstrap.servers = {bootstrap}\n\
         a1.sinks.k1.kafka.topic = {topic}\n\
         a1.sinks.k1.flumeBatchSize = {k}\n\
         a1.sinks.k1.kafka.producer.acks = {acks}\n\
         a1.sinks.k1.channel = c1\n",
        channel = channel_props(a, dir),
        size = a.event_size,
        n = a.events,
        k = a.batch,
        bootstrap = a.bootstrap,
        acks = a.acks,
    )
}

/// kafka source on `topic` (group `group`, from the earliest offset) -> file channel -> null.
pub fn source_props(a: &KafkaBenchArgs, dir: &Path, topic: &str, group: &str) -> String {
    format!(
        "a1.sources = r1\n\
         a1.sinks = k1\n\
         {channel}\
         a1.sources.r1.type = org.apache.flume.source.kafka.KafkaSource\n\
         a1.sources.r1.kafka.bootstrap.servers = {bootstrap}\n\
         a1.sources.r1.kafka.topics = {topic}\n\
         a1.sources.r1.kafka.consumer.group.id = {group}\n\
         a1.sources.r1.kafka.consumer.auto.offset.reset = earliest\n\
         a1.sources.r1.batchSize = {k}\n\
         a1.sources.r1.channels = c1\n\
         a1.sinks.k1.type = null\n\
         a1.sinks.k1.batchSize = {k}\n\
         a1.sinks.k1.channel = c1\n",
        channel = channel_props(a, dir),
        k = a.batch,
        bootstrap = a.bootstrap,
    )
}

/// Runs one agent until its channel drained `n` events. Returns (elapsed, CPU used, drained).
fn run_agent(
    a: &KafkaBenchArgs,
    props: &str,
    what: &str,
    n: u64,
) -> Result<(Duration, Duration, bool), CliError> {
    let cpu0 = process_cpu()?;
    let started = Instant::now();
    let agent = start_agent(props, what)?;
    let ch = agent.channels()[0].clone();
    let deadline = Duration::from_secs(120).max(Duration::from_secs(
        n.saturating_mul(a.event_size as u64) / 2_000_000,
    ));
    let ok = wait_for(
        what,
        deadline,
        || {
            let s = ch.stats();
            format!("{} put, {} taken of {n}", s.put_successes, s.take_successes)
        },
        || drained(&ch.stats(), n),
    );
    let elapsed = started.elapsed();
    let cpu = process_cpu()?.saturating_sub(cpu0);
    drop(ch);
    agent.shutdown()?;
    Ok((elapsed, cpu, ok))
}

/// Kafka's own producer benchmark. Returns its events/s.
fn run_java(a: &KafkaBenchArgs, cp: &str, topic: &str) -> Result<f64, CliError> {
    let out = Command::new("java")
        .args([
            "-Xmx1g",
            "-cp",
            cp,
            "org.apache.kafka.tools.ProducerPerformance",
            "--topic",
            topic,
            "--num-records",
            &a.events.to_string(),
            "--record-size",
            &a.event_size.to_string(),
            "--throughput",
            "-1",
            "--producer-props",
            &format!("bootstrap.servers={}", a.bootstrap),
            &format!("acks={}", a.acks),
        ])
        .output()
        .map_err(|e| CliError::io("running", Path::new("java"), e))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    // The summary line: "N records sent, R records/sec (M MB/sec), ...".
    let rate = stdout
        .lines()
        .rev()
        .find(|l| l.contains("records sent,"))
        .and_then(|l| l.split(',').nth(1))
        .and_then(|f| f.split_whitespace().next())
        .and_then(|r| r.parse::<f64>().ok());
    match (out.status.success(), rate) {
        (true, Some(r)) => Ok(r),
        _ => Err(java_failed("Kafka's ProducerPerformance", &out)),
    }
}

fn cpu_us_per_event(cpu: Duration, n: u64) -> f64 {
    if n == 0 {
        0.0
    } else {
        cpu.as_secs_f64() * 1e6 / n as f64
    }
}

/// `flumen bench kafka`.
pub fn run(a: &KafkaBenchArgs) -> Result<ExitCode, CliError> {
    if a.events == 0 || a.batch == 0 || a.rounds == 0 || a.partitions < 1 {
        return Err(CliError::Usage(
            "--events, --batch, --rounds and --partitions must be at least 1".into(),
        ));
    }
    let parent = a.dir.clone().unwrap_or_else(std::env::temp_dir);
    let run_dir = RunDir::create(&parent)?;
    let tag = format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default()
    );
    if let Some(cp) = &a.java_classpath {
        // A fresh broker's first writes are slow: warm it up untimed.
        progress!("warm-up: Kafka's producer, untimed ...");
        let warm = format!("flumen-bench-{tag}-warmup");
        create_topic(a, &warm)?;
        run_java(a, cp, &warm)?;
    }
    let n = a.events;
    let (mut sink_eps, mut sink_cpu, mut java_eps, mut ratios) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut source_eps, mut source_cpu) = (Vec::new(), Vec::new());
    let mut verified = true;
    for round in 0..a.rounds {
        let topic = format!("flumen-bench-{tag}-sink-{round}");
        create_topic(a, &topic)?;
        let dir = run_dir.0.join(format!("sink-{round}"));
        std::fs::create_dir_all(&dir).map_err(|e| CliError::io("creating", &dir, e))?;
        progress!(
            "round {}: stress -> file channel -> kafka sink ...",
            round + 1
        );
        let (t, cpu, ok) = run_agent(a, &sink_props(a, &dir, &topic), "kafka sink", n)?;
        let records = topic_records(a, &topic)?;
        if records != n {
            progress!("kafka sink: topic {topic} holds {records} records, expected {n}");
        }
        verified &= ok && records == n;
        let eps = per_sec(n as f64, t);
        sink_eps.push(eps);
        sink_cpu.push(cpu_us_per_event(cpu, n));

        if let Some(cp) = &a.java_classpath {
            let jt = format!("flumen-bench-{tag}-java-{round}");
            create_topic(a, &jt)?;
            progress!("round {}: Kafka's ProducerPerformance ...", round + 1);
            let j = run_java(a, cp, &jt)?;
            progress!(
                "round {}: sink {eps:.0} events/s, Java producer {j:.0} events/s, ratio {:.3}",
                round + 1,
                eps / j
            );
            java_eps.push(j);
            ratios.push(round3(eps / j));
        }

        let dir = run_dir.0.join(format!("source-{round}"));
        std::fs::create_dir_all(&dir).map_err(|e| CliError::io("creating", &dir, e))?;
        progress!(
            "round {}: kafka source -> file channel -> null ...",
            round + 1
        );
        let group = format!("flumen-bench-{tag}-{round}");
        let (t, cpu, ok) = run_agent(a, &source_props(a, &dir, &topic, &group), "kafka source", n)?;
        verified &= ok;
        source_eps.push(per_sec(n as f64, t));
        source_cpu.push(cpu_us_per_event(cpu, n));
        progress!(
            "round {}: source {:.0} events/s",
            round + 1,
            per_sec(n as f64, t)
        );
    }
    let java = (!java_eps.is_empty()).then(|| median(&java_eps).round());
    let ratio = (!ratios.is_empty()).then(|| round3(median(&ratios)));
    let report = KafkaBenchReport {
        events: n,
        event_size: a.event_size,
        batch: a.batch,
        acks: a.acks.clone(),
        partitions: a.partitions,
        rounds: a.rounds,
        sink_events_per_sec: median(&sink_eps).round(),
        sink_cpu_us_per_event: round3(median(&sink_cpu)),
        java_producer_events_per_sec: java,
        sink_vs_java_ratio: ratio,
        sink_vs_java_ratios: ratios,
        source_events_per_sec: median(&source_eps).round(),
        source_cpu_us_per_event: round3(median(&source_cpu)),
        target_java_ratio: TARGET_JAVA_RATIO,
        meets_target: ratio.map(|r| r >= TARGET_JAVA_RATIO),
        verified,
    };
    let mut out = std::io::stdout().lock();
    if !a.json {
        writeln!(
            out,
            "kafka bench: {} events × {} B, batch {}, acks {}, {} partitions, {} rounds\n  \
             sink   (stress -> file -> kafka) {:>10.0} events/s  {:>6.2} us CPU/event\n  \
             source (kafka -> file -> null)   {:>10.0} events/s  {:>6.2} us CPU/event",
            a.events,
            a.event_size,
            a.batch,
            a.acks,
            a.partitions,
            a.rounds,
            report.sink_events_per_sec,
            report.sink_cpu_us_per_event,
            report.source_events_per_sec,
            report.source_cpu_us_per_event,
        )
        .map_err(CliError::Output)?;
        if let (Some(j), Some(r)) = (java, ratio) {
            writeln!(
                out,
                "  Kafka's Java producer            {j:>10.0} events/s  (sink ratio {r:.3})"
            )
            .map_err(CliError::Output)?;
        }
    }
    writeln!(out, "{}", serde_json::to_string(&report)?).map_err(CliError::Output)?;
    out.flush().map_err(CliError::Output)?;
    drop(run_dir);
    Ok(if report.verified {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
