//! A real HBase for the tests: one single-JVM cluster (MiniZooKeeperCluster, one HMaster and N
//! region servers of HBase 2.6.1 from Maven Central, `tests/hbase`) in a `java` child process,
//! the way `hdfs_cluster` runs a MiniDFSCluster and `kafka_broker` a Kafka broker. A machine
//! without `java` or `mvn` fails these tests with a message that says so: they never skip.
//!
//! `HBaseCluster::shared()` is one cluster per test process (one region server): tests use
//! tables of their own (`table_name`), created with `create_table`, and must not split, move
//! or kill anything on it. `HBaseCluster::start(n)` is a private cluster with `n` region
//! servers for the tests that do. Clients reach it through ZooKeeper at `quorum()`
//! (`127.0.0.1:PORT`, what Flume's `zookeeperQuorum` holds); its region servers announce
//! themselves as `127.0.0.1:PORT`.
//!
//! Everything a test reads back goes through HBase's own Java client in that JVM: `dump`
//! (every cell), `count_rows`, `regions` (from hbase:meta). `bufmut` writes rows with HBase's
//! own `BufferedMutator` and returns its time, the Java baseline of `flumen bench hbase`.
//! The launcher is `flumen.test.HBaseMini`; its Javadoc is the protocol.
//!
//! The launcher deletes its directory and halts when its stdin closes, so a test process that
//! ends, even by kill -9, takes its clusters with it; `Drop` closes stdin and waits. The
//! cluster's log (WARN and up) is `<dir>/hbase.log`, whose tail is in every panic message about
//! the cluster. Every wait has a deadline.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long a cluster may take to start (about 13 s alone, more on a loaded 2-core machine; a
/// cold Maven build is not counted).
const READY_DEADLINE: Duration = Duration::from_secs(180);
/// How long one command may take: the launcher gives up its own waits (a split, a move, a
/// crash being processed) after 120 s and answers ERR, so this only catches a hung JVM.
const COMMAND_DEADLINE: Duration = Duration::from_secs(180);
/// How long the launcher may take to halt after its stdin closed.
const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(10);
/// Lines of the cluster's log in a failure message.
const LOG_TAIL_LINES: usize = 60;

/// What HBase 2.6 (server and client, netty and its unsafe access) needs on JDK 17, for every
/// JVM that runs HBase code: the cluster and Flume's agent with its hbase2 sink. The same set
/// `flumen bench hbase` starts its cluster and Flume with.
pub const JDK17_FLAGS: &[&str] = flumen::cli::bench_hbase::HBASE_JVM_FLAGS;

/// The `java -cp` classpath of `tests/hbase`: the launcher, HBase 2.6.1 (server, client,
/// testing util) and Apache Flume 1.11's agent with its hbase2 sink.
pub fn hbase_classpath() -> &'static str {
    static CP: OnceLock<String> = OnceLock::new();
    CP.get_or_init(|| crate::java::maven_classpath("hbase"))
}

/// One cell as HBase's own scanner returns it (the newest version).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cell {
    pub row: Vec<u8>,
    pub family: Vec<u8>,
    pub qualifier: Vec<u8>,
    pub value: Vec<u8>,
    pub timestamp: u64,
}

/// One region of a table as hbase:meta has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Region {
    pub encoded_name: String,
    /// Empty for the first region.
    pub start_key: Vec<u8>,
    /// Empty for the last region.
    pub end_key: Vec<u8>,
    /// `127.0.0.1:PORT` of the region server holding it; `None` while it is not assigned.
    pub server: Option<String>,
}

/// A running single-JVM HBase.
pub struct HBaseCluster {
    child: Mutex<Child>,
    /// stdin (None once closed) and the receiver of stdout lines, locked together so that
    /// concurrent commands never get each other's answers.
    io: Mutex<(Option<ChildStdin>, Receiver<String>)>,
    dir: PathBuf,
    zk_port: u16,
}

impl HBaseCluster {
    /// The cluster shared by the tests of this process (one region server), started on first
    /// use. Tests use their own tables and never split, move or kill on it.
    pub fn shared() -> &'static HBaseCluster {
        static SHARED: OnceLock<HBaseCluster> = OnceLock::new();
        SHARED.get_or_init(|| HBaseCluster::start(1))
    }

    /// A private cluster with `region_servers` region servers, for tests that split, move or
    /// kill.
    pub fn start(region_servers: usize) -> HBaseCluster {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let cp = hbase_classpath(); // builds the Java project on first use: not start time
        let dir = std::env::temp_dir().join(format!(
            "flumen-hbase-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("create the cluster directory");
        let log = File::create(dir.join("hbase.log")).expect("create hbase.log");
        let started = Instant::now();
        let mut child = Command::new("java")
            .arg("-Xmx1g")
            .args(JDK17_FLAGS)
            .args(["-cp", cp, "flumen.test.HBaseMini"])
            .arg(region_servers.to_string())
            .arg(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start java flumen.test.HBaseMini (JDK 17 on PATH?)");
        let stdout = child.stdout.take().expect("the launcher's stdout");
        let stdin = child.stdin.take().expect("the launcher's stdin");
        let (tx, lines) = mpsc::channel();
        std::thread::Builder::new()
            .name("hbase-stdout".into())
            .spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            })
            .expect("spawn the stdout reader thread");
        let first = lines.recv_timeout(READY_DEADLINE);
        let port = first
            .as_deref()
            .ok()
            .and_then(|l| l.strip_prefix("READY "))
            .and_then(|p| p.trim().parse::<u16>().ok());
        let Some(zk_port) = port else {
            let _ = child.kill();
            let status = child.wait();
            let tail = log_tail(&dir);
            let _ = std::fs::remove_dir_all(&dir);
            panic!(
                "HBase did not become ready within {READY_DEADLINE:?} (first line: {first:?}, \
                 exit: {status:?}); its log:\n{tail}"
            );
        };
        eprintln!(
            "HBase ({region_servers} region servers, ZooKeeper 127.0.0.1:{zk_port}) ready in \
             {:?} ({})",
            started.elapsed(),
            dir.display()
        );
        HBaseCluster {
            child: Mutex::new(child),
            io: Mutex::new((Some(stdin), lines)),
            dir,
            zk_port,
        }
    }

    /// `127.0.0.1:PORT` of the cluster's ZooKeeper: Flume's `zookeeperQuorum`.
    pub fn quorum(&self) -> String {
        format!("127.0.0.1:{}", self.zk_port)
    }

    /// The ZooKeeper client port.
    pub fn zk_port(&self) -> u16 {
        self.zk_port
    }

    /// The last lines of the cluster's log, for panic messages.
    pub fn log_tail(&self) -> String {
        log_tail(&self.dir)
    }

    /// Sends one command (see `flumen.test.HBaseMini`) and returns its data lines and what
    /// followed `OK`, or the `ERR` line's message. Panics (with the log) if the launcher dies
    /// or does not answer within [`COMMAND_DEADLINE`].
    pub fn command(&self, cmd: &str) -> Result<(Vec<String>, String), String> {
        assert!(
            !cmd.contains(['\n', '\r']),
            "HBase command with a line break: {cmd:?}"
        );
        let mut io = self.io.lock().unwrap_or_else(|e| e.into_inner());
        let (stdin, lines) = &mut *io;
        let stdin = stdin.as_mut().expect("the launcher's stdin is closed");
        if let Err(e) = writeln!(stdin, "{cmd}").and_then(|()| stdin.flush()) {
            panic!(
                "HBase: sending {cmd:?} failed: {e}; its log:\n{}",
                self.log_tail()
            );
        }
        let end = Instant::now() + COMMAND_DEADLINE;
        let mut data = Vec::new();
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match lines.recv_timeout(left) {
                Ok(line) => {
                    if let Some(rest) = line.strip_prefix("OK") {
                        return Ok((data, rest.trim().to_string()));
                    }
                    if let Some(msg) = line.strip_prefix("ERR") {
                        return Err(msg.trim().to_string());
                    }
                    data.push(line);
                }
                Err(RecvTimeoutError::Timeout) => panic!(
                    "HBase: no answer to {cmd:?} within {COMMAND_DEADLINE:?}; its log:\n{}",
                    self.log_tail()
                ),
                Err(RecvTimeoutError::Disconnected) => panic!(
                    "HBase: the launcher exited while running {cmd:?}; its log:\n{}",
                    self.log_tail()
                ),
            }
        }
    }

    /// As [`command`](Self::command), panicking (with the log) on `ERR`.
    pub fn command_ok(&self, cmd: &str) -> (Vec<String>, String) {
        match self.command(cmd) {
            Ok(answer) => answer,
            Err(msg) => panic!(
                "HBase: {cmd:?} failed: {msg}; its log:\n{}",
                self.log_tail()
            ),
        }
    }

    /// Creates `table` with column `families`, pre-split at `split_keys`; returns once its
    /// regions are open.
    pub fn create_table(&self, table: &str, families: &[&str], split_keys: &[&[u8]]) {
        check_word(table);
        families.iter().for_each(|f| check_word(f));
        let mut cmd = format!("create {table} {}", families.join(","));
        for key in split_keys {
            cmd.push(' ');
            cmd.push_str(&hex(key));
        }
        self.command_ok(&cmd);
    }

    /// Every cell of `table` (newest versions), in scan order, read with HBase's own client.
    pub fn dump(&self, table: &str) -> Vec<Cell> {
        self.try_dump(table).unwrap_or_else(|e| {
            panic!(
                "HBase: dump {table} failed: {e}; its log:\n{}",
                self.log_tail()
            )
        })
    }

    /// As [`dump`](Self::dump), `Err` with HBase's message when the scan fails (for polling
    /// while a region is in transition).
    pub fn try_dump(&self, table: &str) -> Result<Vec<Cell>, String> {
        check_word(table);
        let (lines, count) = self.command(&format!("dump {table}"))?;
        let cells: Vec<Cell> = lines
            .iter()
            .map(|l| parse_cell(l).unwrap_or_else(|| panic!("HBase: bad dump line {l:?}")))
            .collect();
        assert_eq!(count, cells.len().to_string(), "HBase: dump {table}");
        Ok(cells)
    }

    /// How many rows `table` holds.
    pub fn count_rows(&self, table: &str) -> u64 {
        check_word(table);
        let (_, n) = self.command_ok(&format!("count {table}"));
        n.parse().expect("count: a number")
    }

    /// `table`'s regions as hbase:meta has them now (split parents left out), in key order.
    pub fn regions(&self, table: &str) -> Vec<Region> {
        check_word(table);
        let (lines, n) = self.command_ok(&format!("regions {table}"));
        let regions: Vec<Region> = lines
            .iter()
            .map(|l| parse_region(l).unwrap_or_else(|| panic!("HBase: bad region line {l:?}")))
            .collect();
        assert_eq!(n, regions.len().to_string(), "HBase: regions {table}");
        regions
    }

    /// Splits the region of `table` holding `row` at `row`; returns once both daughters are
    /// open.
    pub fn split(&self, table: &str, row: &[u8]) {
        check_word(table);
        self.command_ok(&format!("split {table} {}", hex(row)));
    }

    /// Moves every region of `table` to another live region server; returns once each is
    /// open there. Returns how many moved.
    pub fn move_regions(&self, table: &str) -> usize {
        check_word(table);
        let (_, n) = self.command_ok(&format!("move {table}"));
        n.parse().expect("move: a number")
    }

    /// The live region servers' `127.0.0.1:PORT`, in the order `kill_region_server` counts
    /// them.
    pub fn region_servers(&self) -> Vec<String> {
        let (lines, n) = self.command_ok("servers");
        let servers: Vec<String> = lines
            .iter()
            .map(|l| match l.strip_prefix("SERVER ") {
                Some(s) => s.to_string(),
                None => panic!("HBase: bad server line {l:?}"),
            })
            .collect();
        assert_eq!(n, servers.len().to_string(), "HBase: servers");
        servers
    }

    /// Aborts the `index`th live region server (see `region_servers`), as a crash (memstores not flushed, clients'
    /// connections severed); returns its `127.0.0.1:PORT` once the master has dropped it and,
    /// if another server is left, its regions are open again.
    pub fn kill_region_server(&self, index: usize) -> String {
        self.command_ok(&format!("kill-rs {index}")).1
    }

    /// Starts one more region server; returns its `127.0.0.1:PORT` once the master would
    /// assign it regions.
    pub fn start_region_server(&self) -> String {
        self.command_ok("start-rs").1
    }

    /// HBase's own `BufferedMutator` writes `n` rows (`default` + a random UUID, as Flume's
    /// default serializer makes them) of one `size`-byte cell `family:qualifier`, flushing
    /// after every `flush_every` puts; returns the time from the first put to the last flush,
    /// measured inside the JVM.
    pub fn bufmut(
        &self,
        table: &str,
        family: &str,
        qualifier: &str,
        n: usize,
        size: usize,
        flush_every: usize,
    ) -> Duration {
        for w in [table, family, qualifier] {
            check_word(w);
        }
        assert!(flush_every > 0, "bufmut: flush_every must be positive");
        let (_, nanos) = self.command_ok(&format!(
            "bufmut {table} {family} {qualifier} {n} {size} {flush_every}"
        ));
        Duration::from_nanos(nanos.parse().expect("bufmut: nanoseconds"))
    }
}

impl Drop for HBaseCluster {
    fn drop(&mut self) {
        // Closing stdin is the launcher's signal to delete its directory and halt.
        let io = self.io.get_mut().unwrap_or_else(|e| e.into_inner());
        drop(io.0.take());
        let child = self.child.get_mut().unwrap_or_else(|e| e.into_inner());
        let deadline = Instant::now() + SHUTDOWN_DEADLINE;
        loop {
            match child.try_wait() {
                Ok(Some(_)) => break,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A table name no other test of any process uses: `<prefix>_<pid>_<n>` (HBase allows
/// letters, digits, `_`, `-` and `.`).
pub fn table_name(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{prefix}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Names go to the launcher as space-separated words.
fn check_word(w: &str) {
    assert!(
        !w.is_empty() && !w.contains(char::is_whitespace),
        "HBase name {w:?} is empty or holds whitespace"
    );
}

/// Lower-case hex; `-` for no bytes (the launcher's convention).
fn hex(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return "-".to_string();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s == "-" {
        return Some(Vec::new());
    }
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// `CELL <row> <family> <qualifier> <value> <timestamp>`.
fn parse_cell(line: &str) -> Option<Cell> {
    let mut w = line.strip_prefix("CELL ")?.split(' ');
    let cell = Cell {
        row: unhex(w.next()?)?,
        family: unhex(w.next()?)?,
        qualifier: unhex(w.next()?)?,
        value: unhex(w.next()?)?,
        timestamp: w.next()?.parse().ok()?,
    };
    w.next().is_none().then_some(cell)
}

/// `REGION <encoded name> <start> <end> <host:port or ->`.
fn parse_region(line: &str) -> Option<Region> {
    let mut w = line.strip_prefix("REGION ")?.split(' ');
    let region = Region {
        encoded_name: w.next()?.to_string(),
        start_key: unhex(w.next()?)?,
        end_key: unhex(w.next()?)?,
        server: match w.next()? {
            "-" => None,
            s => Some(s.to_string()),
        },
    };
    w.next().is_none().then_some(region)
}

/// The last lines of a cluster's log.
fn log_tail(dir: &std::path::Path) -> String {
    let path = dir.join("hbase.log");
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let mut tail: VecDeque<&str> = VecDeque::new();
    for line in text.lines() {
        if tail.len() == LOG_TAIL_LINES {
            tail.pop_front();
        }
        tail.push_back(line);
    }
    format!(
        "--- last {} lines of {} ---\n{}",
        tail.len(),
        path.display(),
        Vec::from(tail).join("\n")
    )
}

/// Polls `cond` every 200 ms until it holds; after `deadline` panics with `what` and
/// `context()` (logs).
pub fn wait_until(
    what: &str,
    deadline: Duration,
    mut cond: impl FnMut() -> bool,
    context: impl Fn() -> String,
) {
    let end = Instant::now() + deadline;
    while !cond() {
        assert!(
            Instant::now() < end,
            "timed out after {deadline:?} waiting for {what}\n{}",
            context()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Flume's `SimpleHBase2EventSerializer` row key with its default `uuid` suffix:
/// `<prefix>` then a 36-character UUID (8-4-4-4-12 lower-case hex digits).
pub fn is_prefixed_uuid_row(row: &[u8], prefix: &str) -> bool {
    let Some(rest) = row.strip_prefix(prefix.as_bytes()) else {
        return false;
    };
    rest.len() == 36
        && rest.iter().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => *b == b'-',
            _ => b.is_ascii_digit() || (b'a'..=b'f').contains(b),
        })
}

#[test]
fn shared_cluster_counts_and_dumps_buffered_mutator_rows() {
    let hbase = HBaseCluster::shared();
    let table = table_name("bufmut");
    hbase.create_table(&table, &["f"], &[]);
    let took = hbase.bufmut(&table, "f", "pCol", 1000, 100, 100);
    eprintln!("BufferedMutator: 1000 puts of 100 bytes in {took:?}");
    assert!(took > Duration::ZERO, "bufmut timed nothing");
    assert_eq!(hbase.count_rows(&table), 1000);
    let cells = hbase.dump(&table);
    assert_eq!(cells.len(), 1000, "one cell per row");
    let value = &cells[0].value;
    assert_eq!(value.len(), 100);
    for c in &cells {
        assert!(
            is_prefixed_uuid_row(&c.row, "default"),
            "row key {:?}",
            String::from_utf8_lossy(&c.row)
        );
        assert_eq!(c.family, b"f");
        assert_eq!(c.qualifier, b"pCol");
        assert_eq!(&c.value, value, "every put carries the same value");
        assert!(c.timestamp > 0);
    }
    // A failing command answers ERR and leaves the cluster serving.
    let missing = hbase.command(&format!("count {}", table_name("missing")));
    let err = missing.expect_err("counting a missing table fails");
    assert!(err.contains("TableNotFound"), "{err}");
    assert_eq!(hbase.count_rows(&table), 1000);
}

#[test]
fn flume_hbase2_sink_writes_simple_serializer_rows_and_increments() {
    const EVENTS: usize = 200;
    let hbase = HBaseCluster::shared();
    let table = table_name("flume_hbase2");
    hbase.create_table(&table, &["f"], &[]);
    let dir = tempfile::tempdir().expect("temp dir");
    let props = format!(
        "a1.sources = r1\n\
         a1.channels = c1\n\
         a1.sinks = k1\n\
         a1.sources.r1.type = seq\n\
         a1.sources.r1.totalEvents = {EVENTS}\n\
         a1.sources.r1.channels = c1\n\
         a1.channels.c1.type = memory\n\
         a1.channels.c1.capacity = 10000\n\
         a1.sinks.k1.type = hbase2\n\
         a1.sinks.k1.channel = c1\n\
         a1.sinks.k1.table = {table}\n\
         a1.sinks.k1.columnFamily = f\n\
         a1.sinks.k1.batchSize = 50\n\
         a1.sinks.k1.zookeeperQuorum = {quorum}\n\
         a1.sinks.k1.serializer = org.apache.flume.sink.hbase2.SimpleHBase2EventSerializer\n\
         a1.sinks.k1.serializer.incrementColumn = iCol\n",
        quorum = hbase.quorum()
    );
    let mut flume = crate::flume_agent::FlumeAgent::start_hbase(dir.path(), "hbase2", &props);
    let counter = |cells: &[Cell]| {
        cells
            .iter()
            .find(|c| c.row == b"incRow" && c.qualifier == b"iCol")
            .map(|c| u64::from_be_bytes(c.value.as_slice().try_into().expect("an 8-byte long")))
    };
    let end = Instant::now() + Duration::from_secs(120);
    let cells = loop {
        let cells = hbase.dump(&table);
        if cells.len() == EVENTS + 1 && counter(&cells) == Some(EVENTS as u64) {
            break cells;
        }
        flume.assert_running("writing to HBase");
        if Instant::now() > end {
            flume.fail(&format!(
                "{table} holds {} cells, incRow {:?}, after 120 s; HBase's log:\n{}",
                cells.len(),
                counter(&cells),
                hbase.log_tail()
            ));
        }
        std::thread::sleep(Duration::from_millis(300));
    };
    assert_eq!(
        flume.counter("SINK.k1", "EventDrainSuccessCount"),
        EVENTS as u64
    );
    flume.stop();

    let mut payloads = Vec::new();
    for c in cells.iter().filter(|c| c.row != b"incRow") {
        assert!(
            is_prefixed_uuid_row(&c.row, "default"),
            "row key {:?}",
            String::from_utf8_lossy(&c.row)
        );
        assert_eq!(c.family, b"f");
        assert_eq!(c.qualifier, b"pCol");
        payloads.push(String::from_utf8(c.value.clone()).expect("a UTF-8 payload"));
    }
    let incr = cells
        .iter()
        .find(|c| c.row == b"incRow")
        .expect("the increment row");
    assert_eq!(
        (incr.family.as_slice(), incr.qualifier.as_slice()),
        (&b"f"[..], &b"iCol"[..])
    );
    // Flume's seq source numbers its events from 0.
    payloads.sort_by_key(|p| p.parse::<u64>().expect("a sequence number"));
    let expected: Vec<String> = (0..EVENTS).map(|i| i.to_string()).collect();
    assert_eq!(
        payloads, expected,
        "each event once, body as the pCol value"
    );
}

#[test]
fn private_cluster_splits_moves_and_survives_a_region_server_crash() {
    let hbase = HBaseCluster::start(2);
    let table = table_name("admin");
    hbase.create_table(&table, &["f"], &[b"m"]);
    let regions = hbase.regions(&table);
    assert_eq!(regions.len(), 2, "pre-split at m: {regions:?}");
    assert_eq!(regions[0].end_key, b"m");
    hbase.bufmut(&table, "f", "pCol", 300, 10, 100);
    assert_eq!(hbase.count_rows(&table), 300);

    // Split the region holding the rows (`default` + UUID, all before "m") in their middle.
    hbase.split(&table, b"default8");
    let regions = hbase.regions(&table);
    let keys: Vec<(&[u8], &[u8])> = regions
        .iter()
        .map(|r| (r.start_key.as_slice(), r.end_key.as_slice()))
        .collect();
    assert_eq!(
        keys,
        vec![
            (&b""[..], &b"default8"[..]),
            (&b"default8"[..], &b"m"[..]),
            (&b"m"[..], &b""[..]),
        ],
        "{regions:?}"
    );
    assert!(regions.iter().all(|r| r.server.is_some()), "{regions:?}");
    assert_eq!(hbase.count_rows(&table), 300, "the split loses nothing");

    // Move: every region ends on another server than before.
    let moved = hbase.move_regions(&table);
    assert_eq!(moved, 3);
    let after = hbase.regions(&table);
    for (b, a) in regions.iter().zip(&after) {
        assert_eq!(b.encoded_name, a.encoded_name);
        assert!(
            a.server.is_some() && a.server != b.server,
            "{} stayed on {:?}",
            a.encoded_name,
            a.server
        );
    }

    // Kill one server: its regions reopen on the other, with every row (replayed from the WAL).
    let servers = hbase.region_servers();
    assert_eq!(servers.len(), 2, "{servers:?}");
    let killed = hbase.kill_region_server(1);
    assert_eq!(killed, servers[1]);
    assert_eq!(hbase.region_servers(), vec![servers[0].clone()]);
    let after_kill = hbase.regions(&table);
    assert!(
        after_kill
            .iter()
            .all(|r| r.server.is_some() && r.server.as_deref() != Some(killed.as_str())),
        "killed {killed}: {after_kill:?}"
    );
    let survivor = after_kill[0].server.clone();
    assert!(after_kill.iter().all(|r| r.server == survivor));
    assert_eq!(
        hbase.count_rows(&table),
        300,
        "the crash loses nothing acknowledged"
    );

    // A new server takes regions moved to it.
    let started = hbase.start_region_server();
    assert_ne!(started, killed);
    assert_eq!(hbase.region_servers().len(), 2);
    hbase.move_regions(&table);
    let last = hbase.regions(&table);
    assert!(
        last.iter()
            .all(|r| r.server.as_deref() == Some(started.as_str())),
        "started {started}: {last:?}"
    );
    assert_eq!(hbase.count_rows(&table), 300);
}
