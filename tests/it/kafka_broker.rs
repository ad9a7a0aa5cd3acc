//! A real Kafka broker for the tests: one single-node KRaft broker (Apache Kafka 3.9 from Maven
//! Central, `tests/kafka`) in a `java` child process, the way `hdfs_cluster` runs a
//! MiniDFSCluster. A machine without `java` or `mvn` fails these tests with a message that says
//! so: they never skip.
//!
//! `KafkaBroker::shared()` is one broker per test process: tests use topics of their own (see
//! `topic_name`), created with `create_topic`, because the broker does not create topics on
//! first use (`auto.create.topics.enable = false`, so that a missing topic can be tested).
//! `KafkaBroker::start()` is a private broker for tests that `kill()` and `restart()` it (same
//! ports, same log directory: topics and offsets survive, as after a real crash).
//!
//! Besides the plaintext listener (`bootstrap()`), every broker has a SASL_PLAINTEXT listener
//! (`sasl_bootstrap()`, mechanism PLAIN) where user `alice` / `alice-secret` logs in but has no
//! ACLs, so everything it does fails authorization: the ACL authorizer runs, and the plaintext
//! listener's anonymous user is a super user.
//!
//! The launcher halts when its stdin closes, so a test process that ends, even by kill -9,
//! takes its brokers with it; `Drop` closes stdin and waits. The broker's log (WARN and up) is
//! `<dir>/broker.log`, whose tail is in every panic message about the broker.
#![allow(dead_code)]

use std::fs::File;
use std::io::Read;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};

use crate::agent_proc::free_port;

/// How long a broker may take to start (about 4-8 s; a cold Maven build is not counted).
const READY_DEADLINE: Duration = Duration::from_secs(90);

/// The `java -cp` classpath of `tests/kafka`: the launcher, the broker and Kafka's tools.
pub fn kafka_classpath() -> &'static str {
    static CP: OnceLock<String> = OnceLock::new();
    CP.get_or_init(|| crate::java::maven_classpath("kafka"))
}

/// A running single-node KRaft broker.
pub struct KafkaBroker {
    child: Mutex<Option<(Child, ChildStdin)>>,
    dir: tempfile::TempDir,
    port: u16,
    sasl_port: u16,
    cluster_id: String,
}

/// A record as a test reads it back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Vec<u8>,
    /// Kafka record headers, in order.
    pub headers: Vec<(String, Vec<u8>)>,
    pub timestamp: Option<i64>,
}

impl KafkaBroker {
    /// The broker shared by the tests of this process.
    pub fn shared() -> &'static KafkaBroker {
        static SHARED: OnceLock<KafkaBroker> = OnceLock::new();
        SHARED.get_or_init(KafkaBroker::start)
    }

    /// A private broker, for tests that kill and restart it.
    pub fn start() -> KafkaBroker {
        kafka_classpath();
        let dir = tempfile::Builder::new()
            .prefix("flumen-kafka-")
            .tempdir()
            .expect("create the broker's directory");
        let port = free_port();
        let controller = free_port();
        let sasl_port = free_port();
        std::fs::write(
            dir.path().join("server.properties"),
            server_properties(dir.path(), port, controller, sasl_port),
        )
        .expect("write server.properties");
        let broker = KafkaBroker {
            child: Mutex::new(None),
            dir,
            port,
            sasl_port,
            cluster_id: cluster_id(),
        };
        broker.launch();
        broker
    }

    /// `127.0.0.1:PORT` of the plaintext listener (anonymous, allowed everything).
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `127.0.0.1:PORT` of the SASL_PLAINTEXT listener (PLAIN; `alice` has no ACLs).
    pub fn sasl_bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.sasl_port)
    }

    /// The broker's directory (its properties, log directory and `broker.log`).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The last lines of the broker's log, for panic messages.
    pub fn log_tail(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = File::open(self.dir.path().join("broker.log")) {
            let _ = f.read_to_string(&mut s);
        }
        let lines: Vec<&str> = s.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// Starts the broker process and waits until it answers metadata requests.
    fn launch(&self) {
        let log = File::create(self.dir.path().join("broker.log")).expect("create broker.log");
        let mut child = Command::new("java")
            .args([
                "-Xmx768m",
                "-XX:+UseSerialGC",
                "-XX:TieredStopAtLevel=1",
                "-cp",
                kafka_classpath(),
                "flumen.test.KafkaBroker",
            ])
            .arg(self.dir.path().join("server.properties"))
            .arg(&self.cluster_id)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start java (JDK 17 on PATH?)");
        let stdin = child.stdin.take().expect("piped stdin");
        *self.child.lock().unwrap_or_else(|e| e.into_inner()) = Some((child, stdin));
        self.wait_ready();
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + READY_DEADLINE;
        loop {
            if let Some((child, _)) = self
                .child
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .as_mut()
            {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!(
                        "the Kafka broker exited with {status} before it was ready; its log:\n{}",
                        self.log_tail()
                    );
                }
            }
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                let consumer: BaseConsumer = self.client_config().create().expect("consumer");
                if let Ok(md) = consumer.fetch_metadata(None, Duration::from_secs(2)) {
                    if !md.brokers().is_empty() {
                        return;
                    }
                }
            }
            assert!(
                Instant::now() < deadline,
                "the Kafka broker was not ready within {READY_DEADLINE:?}; its log:\n{}",
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Kills the broker with SIGKILL (a crash: nothing flushed) and waits for it to exit.
    pub fn kill(&self) {
        if let Some((mut child, stdin)) =
            self.child.lock().unwrap_or_else(|e| e.into_inner()).take()
        {
            let _ = child.kill();
            let _ = child.wait();
            drop(stdin);
        }
    }

    /// Starts the broker again on the same ports and log directory.
    pub fn restart(&self) {
        self.kill();
        self.launch();
    }

    /// A client configuration for the plaintext listener.
    pub fn client_config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", self.bootstrap())
            .set("log_level", "3");
        c
    }

    /// Creates `topic` with `partitions` partitions and waits until its leaders are known.
    pub fn create_topic(&self, topic: &str, partitions: i32) {
        let admin: AdminClient<DefaultClientContext> =
            self.client_config().create().expect("admin client");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let results = rt
            .block_on(admin.create_topics(
                &[NewTopic::new(topic, partitions, TopicReplication::Fixed(1))],
                &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))),
            ))
            .expect("create_topics");
        for r in results {
            if let Err((name, code)) = r {
                assert!(
                    code == rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists,
                    "creating topic {name} failed: {code}; broker log:\n{}",
                    self.log_tail()
                );
            }
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        let consumer: BaseConsumer = self.client_config().create().expect("consumer");
        loop {
            if let Ok(md) = consumer.fetch_metadata(Some(topic), Duration::from_secs(2)) {
                let ready = md.topics().iter().any(|t| {
                    t.name() == topic
                        && t.error().is_none()
                        && t.partitions().len() == partitions as usize
                        && t.partitions().iter().all(|p| p.leader() >= 0)
                });
                if ready {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "topic {topic} has no leaders after 30 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Produces `(key, value)` records to `topic` at acks=all and waits for every one.
    pub fn produce(&self, topic: &str, records: &[(Option<&[u8]>, &[u8])]) {
        let producer: ThreadedProducer<DefaultProducerContext> = self
            .client_config()
            .set("acks", "all")
            .set("partitioner", "murmur2_random")
            .create()
            .expect("producer");
        for (key, value) in records {
            let mut r = BaseRecord::<[u8], [u8]>::to(topic).payload(*value);
            if let Some(k) = key {
                r = r.key(*k);
            }
            producer
                .send(r)
                .map_err(|(e, _)| e)
                .expect("enqueue a record");
        }
        producer
            .flush(Duration::from_secs(30))
            .expect("every record acknowledged within 30 s");
    }

    /// Reads every record of `topic` from the start until `n` have arrived (or panics after
    /// `deadline`), ordered by partition then offset.
    pub fn read_all(&self, topic: &str, n: usize, deadline: Duration) -> Vec<Record> {
        let mut out = self.read_until(topic, deadline, |r| r.len() >= n, String::new);
        out.sort_by_key(|r| (r.partition, r.offset));
        out
    }

    /// Reads `topic` from the start, in arrival order, until `until` holds of the records
    /// read; after `deadline` fails the test with `context()` (an agent's log, say). A read
    /// error (a broker restarting) is printed and reading goes on: the consumer reconnects
    /// by itself.
    pub fn read_until(
        &self,
        topic: &str,
        deadline: Duration,
        until: impl Fn(&[Record]) -> bool,
        context: impl Fn() -> String,
    ) -> Vec<Record> {
        let consumer: BaseConsumer = self
            .client_config()
            .set("group.id", format!("reader-{}", unique()))
            .set("enable.auto.commit", "false")
            // Should a restarted broker answer "out of range" for a moment, start over
            // rather than skip to the end.
            .set("auto.offset.reset", "earliest")
            .create()
            .expect("consumer");
        let md = consumer
            .fetch_metadata(Some(topic), Duration::from_secs(10))
            .expect("topic metadata");
        let mut tpl = TopicPartitionList::new();
        for t in md.topics() {
            for p in t.partitions() {
                tpl.add_partition_offset(topic, p.id(), Offset::Beginning)
                    .expect("add partition");
            }
        }
        consumer.assign(&tpl).expect("assign partitions");
        let end = Instant::now() + deadline;
        let mut out = Vec::new();
        while !until(&out) {
            assert!(
                Instant::now() < end,
                "read {} records from {topic} within {deadline:?}, condition not met; {}",
                out.len(),
                context()
            );
            match consumer.poll(Duration::from_millis(200)) {
                Some(Ok(m)) => out.push(Record {
                    partition: m.partition(),
                    offset: m.offset(),
                    key: m.key().map(<[u8]>::to_vec),
                    value: m.payload().unwrap_or_default().to_vec(),
                    headers: m
                        .headers()
                        .map(|h| {
                            h.iter()
                                .map(|h| (h.key.to_string(), h.value.unwrap_or_default().to_vec()))
                                .collect()
                        })
                        .unwrap_or_default(),
                    timestamp: m.timestamp().to_millis(),
                }),
                Some(Err(e)) => eprintln!("reading {topic}: {e}"),
                None => {}
            }
        }
        out
    }

    /// How many records `topic` holds: the sum of its partitions' high watermarks (0 while
    /// the broker does not answer).
    pub fn record_count(&self, topic: &str) -> u64 {
        let consumer: BaseConsumer = self.client_config().create().expect("consumer");
        let Ok(md) = consumer.fetch_metadata(Some(topic), Duration::from_secs(5)) else {
            return 0;
        };
        let mut total = 0;
        for t in md.topics() {
            for p in t.partitions() {
                if let Ok((_, high)) =
                    consumer.fetch_watermarks(topic, p.id(), Duration::from_secs(5))
                {
                    total += u64::try_from(high).unwrap_or(0);
                }
            }
        }
        total
    }

    /// The committed offset of consumer group `group` on each partition of `topic`
    /// (`None` where it has committed nothing).
    pub fn committed(&self, group: &str, topic: &str) -> Vec<(i32, Option<i64>)> {
        let consumer: BaseConsumer = self
            .client_config()
            .set("group.id", group)
            .create()
            .expect("consumer");
        let md = consumer
            .fetch_metadata(Some(topic), Duration::from_secs(10))
            .expect("topic metadata");
        let mut tpl = TopicPartitionList::new();
        for t in md.topics() {
            for p in t.partitions() {
                tpl.add_partition(topic, p.id());
            }
        }
        let got = consumer
            .committed_offsets(tpl, Duration::from_secs(10))
            .expect("committed offsets");
        got.elements()
            .iter()
            .map(|e| {
                let off = match e.offset() {
                    Offset::Offset(o) => Some(o),
                    _ => None,
                };
                (e.partition(), off)
            })
            .collect()
    }
}

impl Drop for KafkaBroker {
    fn drop(&mut self) {
        let taken = self
            .child
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some((mut child, stdin)) = taken {
            drop(stdin);
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A topic (or group) name no other test of any process uses: `<prefix>-<pid>-<n>`.
pub fn topic_name(prefix: &str) -> String {
    format!("{prefix}-{}-{}", std::process::id(), unique())
}

fn unique() -> u64 {
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// A KRaft cluster id: 16 random bytes, base64url without padding (22 characters).
fn cluster_id() -> String {
    let mut bytes = [0u8; 16];
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos()
        ^ (u128::from(std::process::id()) << 64)
        ^ u128::from(unique());
    bytes.copy_from_slice(&seed.to_le_bytes());
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut bits = 0u32;
    let mut nbits = 0;
    let mut out = String::new();
    for b in bytes {
        bits = (bits << 8) | u32::from(b);
        nbits += 8;
        while nbits >= 6 {
            nbits -= 6;
            out.push(ALPHABET[((bits >> nbits) & 63) as usize] as char);
        }
    }
    if nbits > 0 {
        out.push(ALPHABET[((bits << (6 - nbits)) & 63) as usize] as char);
    }
    out
}

/// The broker's configuration: combined broker and controller, replication 1 everywhere, small
/// internal topics (fewer partitions to create on a 2-core machine), no automatic topics.
fn server_properties(dir: &Path, port: u16, controller: u16, sasl_port: u16) -> String {
    let logs: PathBuf = dir.join("logs");
    format!(
        "process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:{controller}
listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller},SASL://127.0.0.1:{sasl_port}
advertised.listeners=PLAINTEXT://127.0.0.1:{port},SASL://127.0.0.1:{sasl_port}
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL:SASL_PLAINTEXT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
sasl.enabled.mechanisms=PLAIN
listener.name.sasl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_alice=\"alice-secret\";
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
super.users=User:ANONYMOUS
log.dirs={logs}
num.partitions=1
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=4
log.segment.bytes=268435456
",
        logs = logs.display()
    )
}

#[test]
fn broker_starts_and_round_trips_records() {
    let broker = KafkaBroker::shared();
    let topic = topic_name("smoke");
    broker.create_topic(&topic, 2);
    broker.produce(&topic, &[(Some(b"k1"), b"v1"), (None, b"v2")]);
    let got = broker.read_all(&topic, 2, Duration::from_secs(30));
    let mut values: Vec<_> = got.iter().map(|r| r.value.clone()).collect();
    values.sort();
    assert_eq!(values, vec![b"v1".to_vec(), b"v2".to_vec()]);
}
