//! flumen's HBase client (`flumen::hbase`) against a real HBase (`hbase_cluster`), without an
//! agent: the typed errors an operator sees (missing table, missing column family, an
//! unreachable quorum, a wrong `znodeParent`), puts and increments read back cell by cell
//! with HBase's own Java client (one batch spanning the regions of a pre-split table,
//! batches pipelined with `submit`/`complete`, the region cache read once), and faults under
//! load on a private two-server cluster: a region split, a move of every region, a crash of
//! the region server holding `hbase:meta` and the table, and a new server taking the table,
//! while two writer threads write (one with `apply`, one keeping four batches in flight with
//! `submit`/`complete`, as the sink does); after each fault the same two `Client`s must go on
//! writing by themselves, and every batch they acknowledged must be in the table.
//!
//! Invariant checked throughout: `apply` returning `Ok` means every mutation of the batch is
//! stored; an `Err` the writer answers by sending the same batch again (as a sink does), so a
//! row may be written twice but never lost, and the table holds no row nobody sent.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use flumen::hbase::{
    zk, Client, ClientConfig, ClientStats, HBaseError, InFlight, IncrementCell, Mutation, PutCell,
};

use crate::hbase_cluster::{table_name, wait_until, Cell, HBaseCluster};

/// Shorter than the defaults so that a fault test that goes wrong fails in minutes.
const RPC_TIMEOUT: Duration = Duration::from_secs(10);
const OPERATION_TIMEOUT: Duration = Duration::from_secs(60);

fn config(quorum: &str) -> ClientConfig {
    let mut c = ClientConfig::new(quorum, "/hbase");
    c.rpc_timeout = RPC_TIMEOUT;
    c.operation_timeout = OPERATION_TIMEOUT;
    c
}

fn connect(hbase: &HBaseCluster) -> Client {
    Client::connect(config(&hbase.quorum())).expect("connect to the test HBase")
}

fn put(row: &str, cells: &[(&str, &str, &str)]) -> Mutation {
    Mutation::Put {
        row: row.as_bytes().to_vec(),
        cells: cells
            .iter()
            .map(|(f, q, v)| PutCell {
                family: f.as_bytes().to_vec(),
                qualifier: q.as_bytes().to_vec(),
                value: v.as_bytes().to_vec(),
            })
            .collect(),
    }
}

fn increment(row: &str, family: &str, qualifier: &str, amount: i64) -> Mutation {
    Mutation::Increment {
        row: row.as_bytes().to_vec(),
        cells: vec![IncrementCell {
            family: family.as_bytes().to_vec(),
            qualifier: qualifier.as_bytes().to_vec(),
            amount,
        }],
    }
}

/// A port nothing listens on (bound then released).
fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("its address").port()
}

/// `(row, family, qualifier) -> value` of a dump, as text (the tests write UTF-8 only).
fn cell_map(cells: &[Cell]) -> BTreeMap<(String, String, String), Vec<u8>> {
    cells
        .iter()
        .map(|c| {
            let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
            (
                (text(&c.row), text(&c.family), text(&c.qualifier)),
                c.value.clone(),
            )
        })
        .collect()
}

#[test]
fn missing_tables_and_families_are_named_errors_that_say_what_to_do() {
    let hbase = HBaseCluster::shared();
    let table = table_name("client_errors");
    hbase.create_table(&table, &["f"], &[]);
    let mut client = connect(hbase);
    client
        .check_table(&table, b"f")
        .expect("the table and its family exist");

    let missing = table_name("client_missing");
    match client.check_table(&missing, b"f") {
        Err(HBaseError::TableNotFound { table: t }) => assert_eq!(t, missing),
        other => panic!("check_table of a missing table: {other:?}"),
    }
    let started = Instant::now();
    let err = client
        .apply(&missing, &[put("r1", &[("f", "q", "v")])])
        .expect_err("apply to a missing table fails");
    match &err {
        HBaseError::TableNotFound { table: t } => assert_eq!(t, &missing),
        other => panic!("apply to a missing table: {other:?}"),
    }
    assert!(!err.is_retryable(), "{err}");
    assert!(
        started.elapsed() < OPERATION_TIMEOUT / 6,
        "a missing table is not retried: took {:?}",
        started.elapsed()
    );
    let text = err.to_string();
    assert!(
        text.contains(&missing) && text.contains("create '"),
        "says how to create it: {text}"
    );

    match client.check_table(&table, b"nofam") {
        Err(HBaseError::NoSuchFamily {
            table: t,
            family: f,
        }) => {
            assert_eq!((t.as_str(), f.as_str()), (table.as_str(), "nofam"));
        }
        other => panic!("check_table of a missing family: {other:?}"),
    }
    let started = Instant::now();
    let err = client
        .apply(
            &table,
            &[
                put("r1", &[("nofam", "q", "v")]),
                increment("r2", "nofam", "c", 1),
            ],
        )
        .expect_err("apply to a missing family fails");
    let took = started.elapsed();
    match &err {
        HBaseError::NoSuchFamily {
            table: t,
            family: f,
        } => assert_eq!((t.as_str(), f.as_str()), (table.as_str(), "nofam")),
        other => panic!("apply to a missing family: {other:?}"),
    }
    // No retry can add a family: the call ends at once, not at the operation timeout.
    assert!(
        took < OPERATION_TIMEOUT / 6,
        "a missing family was retried: {took:?} ({:?})",
        client.stats()
    );
    assert_eq!(client.stats().retries, 0, "{:?}", client.stats());
    let text = err.to_string();
    assert!(
        text.contains(&table) && text.contains("nofam") && text.contains("alter '"),
        "says how to add it: {text}"
    );
    assert_eq!(hbase.count_rows(&table), 0, "nothing of the failed batch");

    // The client is still usable after the failures.
    client
        .apply(&table, &[put("r1", &[("f", "q", "v")])])
        .expect("a put to the right family");
    assert_eq!(hbase.count_rows(&table), 1);
}

#[test]
fn an_unreachable_quorum_and_a_wrong_znode_parent_are_named() {
    let port = free_port();
    let quorum = format!("127.0.0.1:{port}");
    let started = Instant::now();
    match Client::connect(config(&quorum)) {
        Err(e @ HBaseError::Quorum { .. }) => {
            let HBaseError::Quorum { quorum: q, detail } = &e else {
                unreachable!()
            };
            assert_eq!(q, &quorum);
            assert!(detail.contains(&quorum), "names the member: {detail}");
            let text = e.to_string();
            assert!(
                text.contains(&quorum) && text.contains("zookeeperQuorum"),
                "says what to check: {text}"
            );
        }
        Err(other) => panic!("connect to a closed port: {other}"),
        Ok(_) => panic!("connect to a closed port succeeded"),
    }
    assert!(
        started.elapsed() < RPC_TIMEOUT,
        "a refused connection fails at once: {:?}",
        started.elapsed()
    );

    let hbase = HBaseCluster::shared();
    let parent = "/not-hbase";
    match Client::connect(ClientConfig {
        znode_parent: parent.to_string(),
        ..config(&hbase.quorum())
    }) {
        Err(e @ HBaseError::NoMetaLocation { .. }) => {
            let HBaseError::NoMetaLocation { quorum: q, znode } = &e else {
                unreachable!()
            };
            assert_eq!(q, &hbase.quorum());
            assert_eq!(znode, "/not-hbase/meta-region-server");
            let text = e.to_string();
            assert!(
                text.contains("/not-hbase/meta-region-server") && text.contains("znodeParent"),
                "says what to check: {text}"
            );
        }
        Err(other) => panic!("connect with a wrong znodeParent: {other}"),
        Ok(_) => panic!("connect with a wrong znodeParent succeeded"),
    }
}

#[test]
fn puts_and_increments_round_trip_across_regions_with_one_meta_lookup() {
    let hbase = HBaseCluster::shared();
    let table = table_name("client_roundtrip");
    // Rows `row00`..`row29` and `incRow` fall in all four regions.
    hbase.create_table(&table, &["f", "g"], &[b"row10", b"row20", b"row25"]);
    assert_eq!(hbase.regions(&table).len(), 4);
    let mut client = connect(hbase);

    let mut expected: BTreeMap<(String, String, String), Vec<u8>> = BTreeMap::new();
    let mut counter = 0i64;
    let mut batch_of = |from: usize, to: usize, amount: i64| -> Vec<Mutation> {
        let mut batch = Vec::new();
        for n in from..to {
            let row = format!("row{n:02}");
            let (a, b) = (format!("value {n}, {amount}"), format!("{n} in g"));
            expected.insert((row.clone(), "f".into(), "a".into()), a.clone().into());
            expected.insert((row.clone(), "g".into(), "b".into()), b.clone().into());
            batch.push(put(&row, &[("f", "a", &a), ("g", "b", &b)]));
            // One counter cell incremented beside the puts, several times in one batch.
            if n % 5 == 0 {
                batch.push(increment("incRow", "f", "count", amount));
                counter += amount;
            }
        }
        batch
    };

    // One batch over every region, through apply.
    let first = batch_of(0, 30, 1);
    client.apply(&table, &first).expect("apply the first batch");
    assert_eq!(client.stats().mutations, first.len() as u64);

    // Rewrite the same rows (new values in `f:a`) in three batches in flight at once, each
    // also incrementing the counter.
    let batches = [
        batch_of(0, 10, 7),
        batch_of(10, 20, -2),
        batch_of(20, 30, 100),
    ];
    let sizes: u64 = batches.iter().map(|b| b.len() as u64).sum();
    let in_flight: Vec<_> = batches
        .iter()
        .map(|b| client.submit(&table, b.clone()))
        .collect();
    assert_eq!(in_flight.iter().map(|f| f.len() as u64).sum::<u64>(), sizes);
    for f in in_flight {
        client.complete(f).expect("complete a submitted batch");
    }
    // Many more small batches: the cache answers, meta is read once.
    for round in 0..20 {
        let row = format!("row{:02}", round % 30);
        client
            .apply(&table, &[increment(&row, "g", "hits", 1)])
            .expect("apply a one-increment batch");
        let hits = expected
            .entry((row, "g".into(), "hits".into()))
            .or_insert_with(|| 0i64.to_be_bytes().to_vec());
        let now = i64::from_be_bytes(hits.as_slice().try_into().expect("8 bytes")) + 1;
        *hits = now.to_be_bytes().to_vec();
    }
    expected.insert(
        ("incRow".into(), "f".into(), "count".into()),
        counter.to_be_bytes().to_vec(),
    );

    let stats = client.stats();
    assert_eq!(
        stats.region_lookups, 1,
        "the region cache serves every batch: {stats:?}"
    );
    assert_eq!(stats.retries, 0, "{stats:?}");
    // Meta and the table are on the shared cluster's one region server.
    assert_eq!(
        stats.connections_opened, 1,
        "one connection, reused: {stats:?}"
    );

    let cells = hbase.dump(&table);
    let got = cell_map(&cells);
    assert_eq!(got.len(), cells.len(), "one version of each cell");
    assert_eq!(got, expected, "every cell as written, nothing else");
    let count = got
        .get(&("incRow".to_string(), "f".to_string(), "count".to_string()))
        .expect("the counter");
    assert_eq!(
        i64::from_be_bytes(count.as_slice().try_into().expect("an 8-byte long")),
        6 + 2 * 7 + 2 * -2 + 2 * 100,
        "the counter is the sum of the increments"
    );
}

/// How a writer hands its batches to the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// One `apply` at a time.
    Apply,
    /// Up to this many batches `submit`ted before the oldest is `complete`d, as the sink does.
    Pipelined(usize),
}

/// One writer's client and where it is, carried from phase to phase: the same `Client` all
/// along, so that it must recover from every fault by itself.
struct Stream {
    /// The first bytes of its row keys (streams never share a row).
    prefix: &'static str,
    mode: Mode,
    client: Option<Client>,
    /// The next fresh batch number.
    next: u64,
    /// Batches that failed and were not acknowledged yet when the last phase stopped: resent
    /// first.
    retry: Vec<u64>,
    /// Every batch acknowledged, and every batch ever sent (acknowledged or not).
    acked: BTreeSet<u64>,
    sent: BTreeSet<u64>,
}

impl Stream {
    fn new(prefix: &'static str, mode: Mode, client: Client) -> Stream {
        Stream {
            prefix,
            mode,
            client: Some(client),
            next: 0,
            retry: Vec::new(),
            acked: BTreeSet::new(),
            sent: BTreeSet::new(),
        }
    }

    fn stats(&self) -> ClientStats {
        self.client.as_ref().map(Client::stats).unwrap_or_default()
    }
}

const BATCH: u64 = 100;

fn row_key(prefix: &str, batch: u64, i: u64) -> String {
    format!("{prefix}{batch:07}-{i:03}")
}

fn row_value(prefix: &str, batch: u64, i: u64) -> String {
    format!("{prefix}{batch}/{i}")
}

fn writer_batch(prefix: &str, batch: u64) -> Vec<Mutation> {
    (0..BATCH)
        .map(|i| {
            put(
                &row_key(prefix, batch, i),
                &[("f", "v", &row_value(prefix, batch, i))],
            )
        })
        .collect()
}

/// What a writer thread has done, shared with the test's thread.
#[derive(Default)]
struct Progress {
    /// Batches the client returned `Ok` for.
    acked: Vec<u64>,
    /// Batches sent (resends included once).
    sent: BTreeSet<u64>,
    /// `Err`s answered by resending the batch, with the text of the first few.
    failures: u64,
    first_failures: Vec<String>,
    stats: ClientStats,
}

/// What a writer thread hands back: its client, the next fresh batch number, the batches
/// not acknowledged when it stopped.
type WriterEnd = (Client, u64, Vec<u64>);

/// A thread writing batches of [`BATCH`] puts with fresh rows until told to stop, resending
/// a batch after an `Err` as a sink would.
struct Writer {
    prefix: &'static str,
    stop: Arc<AtomicBool>,
    progress: Arc<Mutex<Progress>>,
    thread: JoinHandle<WriterEnd>,
}

impl Writer {
    fn start(stream: &mut Stream, table: &str) -> Writer {
        let stop = Arc::new(AtomicBool::new(false));
        let progress = Arc::new(Mutex::new(Progress::default()));
        let (s, p) = (stop.clone(), progress.clone());
        let mut client = stream.client.take().expect("the stream's client");
        let (prefix, mode, table) = (stream.prefix, stream.mode, table.to_string());
        let mut next = stream.next;
        let mut retry: VecDeque<u64> = stream.retry.drain(..).collect();
        let thread = std::thread::Builder::new()
            .name(format!("hbase-writer-{prefix}"))
            .spawn(move || {
                let depth = match mode {
                    Mode::Apply => 1,
                    Mode::Pipelined(n) => n,
                };
                let mut in_flight: VecDeque<(u64, InFlight)> = VecDeque::new();
                loop {
                    let stopping = s.load(Ordering::SeqCst);
                    let mut batch_no = || {
                        retry.pop_front().unwrap_or_else(|| {
                            next += 1;
                            next - 1
                        })
                    };
                    let (b, result) = if mode == Mode::Apply {
                        if stopping {
                            break;
                        }
                        let b = batch_no();
                        p.lock().expect("progress lock").sent.insert(b);
                        (b, client.apply(&table, &writer_batch(prefix, b)))
                    } else {
                        while !stopping && in_flight.len() < depth {
                            let b = batch_no();
                            p.lock().expect("progress lock").sent.insert(b);
                            in_flight
                                .push_back((b, client.submit(&table, writer_batch(prefix, b))));
                        }
                        let Some((b, batch)) = in_flight.pop_front() else {
                            break;
                        };
                        (b, client.complete(batch))
                    };
                    let mut progress = p.lock().expect("progress lock");
                    progress.stats = client.stats();
                    match result {
                        Ok(()) => {
                            progress.acked.push(b);
                            drop(progress);
                            // Small pauses keep the table (and the dumps) at tens of
                            // thousands of rows; a batch is still in flight most of the time.
                            std::thread::sleep(Duration::from_millis(20));
                        }
                        Err(e) => {
                            eprintln!("writer {prefix}: batch {b} failed, resending it: {e}");
                            progress.failures += 1;
                            if progress.first_failures.len() < 5 {
                                progress.first_failures.push(format!("batch {b}: {e}"));
                            }
                            drop(progress);
                            retry.push_back(b);
                            // A sink's runner backs off before it retries a failed batch.
                            if !stopping {
                                std::thread::sleep(Duration::from_millis(200));
                            }
                        }
                    }
                }
                (client, next, retry.into_iter().collect())
            })
            .expect("spawn a writer");
        Writer {
            prefix,
            stop,
            progress,
            thread,
        }
    }

    fn acked(&self) -> usize {
        self.progress.lock().expect("progress lock").acked.len()
    }

    fn summary(&self) -> String {
        let p = self.progress.lock().expect("progress lock");
        format!(
            "writer {}: {} batches acknowledged, {} failures answered by resending (first: \
             {:?}), client stats {:?}",
            self.prefix,
            p.acked.len(),
            p.failures,
            p.first_failures,
            p.stats
        )
    }

    /// Stops the thread once its batches in flight are done, and records them in `stream`
    /// (which gets its client back). Returns what was done.
    fn stop(self, stream: &mut Stream) -> Progress {
        self.stop.store(true, Ordering::SeqCst);
        let (client, next, retry) = self.thread.join().expect("a writer thread panicked");
        let mut p = Arc::try_unwrap(self.progress)
            .map_err(|_| "progress still shared")
            .expect("the writer has ended")
            .into_inner()
            .expect("progress lock");
        p.stats = client.stats();
        stream.client = Some(client);
        stream.next = next;
        stream.retry = retry;
        stream.acked.extend(p.acked.iter().copied());
        stream.sent.extend(p.sent.iter().copied());
        p
    }
}

fn summaries(writers: &[Writer]) -> String {
    writers
        .iter()
        .map(Writer::summary)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Runs a writer per stream while `fault` runs on this thread, waits until each has had a
/// few more batches acknowledged after the fault, stops them and checks that every row of
/// every acknowledged batch is in `table` with its value, and that every row there was sent.
fn phase(
    hbase: &HBaseCluster,
    table: &str,
    name: &str,
    streams: &mut [Stream],
    fault: impl FnOnce(&[Writer]),
) {
    const MORE: usize = 5;
    let lookups_before: Vec<u64> = streams.iter().map(|s| s.stats().region_lookups).collect();
    let writers: Vec<Writer> = streams
        .iter_mut()
        .map(|s| Writer::start(s, table))
        .collect();
    wait_until(
        &format!("{name}: every writer's first batches"),
        Duration::from_secs(60),
        || writers.iter().all(|w| w.acked() >= 3),
        || format!("{}\n{}", summaries(&writers), hbase.log_tail()),
    );
    let started = Instant::now();
    fault(&writers);
    let fault_took = started.elapsed();
    let at_fault: Vec<usize> = writers.iter().map(Writer::acked).collect();
    wait_until(
        &format!("{name}: {MORE} more batches of every writer after the fault"),
        // Twice the operation timeout: one call may give up while the cluster is still
        // recovering, and the writer's resend must then succeed.
        OPERATION_TIMEOUT * 2,
        || {
            writers
                .iter()
                .zip(&at_fault)
                .all(|(w, &n)| w.acked() >= n + MORE)
        },
        || format!("{}\n{}", summaries(&writers), hbase.log_tail()),
    );
    let recovered = started.elapsed();
    let mut report = format!(
        "{name}: the fault took {fault_took:?}, every writer had {MORE} more batches \
         acknowledged {recovered:?} after it began"
    );
    for (w, s) in writers.into_iter().zip(streams.iter_mut()) {
        let p = w.stop(s);
        report.push_str(&format!(
            "\n  writer {} ({:?}): {} batches acknowledged in this phase ({} in all), {} \
             failures answered by resending (first: {:?}), {} not acknowledged at the end; \
             client stats {:?}",
            s.prefix,
            s.mode,
            p.acked.len(),
            s.acked.len(),
            p.failures,
            p.first_failures,
            s.retry.len(),
            p.stats
        ));
    }
    eprintln!("{report}");
    for (s, before) in streams.iter().zip(lookups_before) {
        assert!(
            s.stats().region_lookups > before,
            "writer {}'s client read meta again after the fault\n{report}",
            s.prefix
        );
    }

    let cells = hbase.dump(table);
    let rows: BTreeMap<String, Vec<u8>> = cells
        .iter()
        .map(|c| {
            (
                String::from_utf8_lossy(&c.row).into_owned(),
                c.value.clone(),
            )
        })
        .collect();
    assert_eq!(cells.len(), rows.len(), "one cell per row\n{report}");
    let mut lost = Vec::new();
    for s in streams.iter() {
        for &b in &s.acked {
            for i in 0..BATCH {
                let key = row_key(s.prefix, b, i);
                match rows.get(&key) {
                    Some(v) if v == row_value(s.prefix, b, i).as_bytes() => {}
                    other => {
                        lost.push((key, other.map(|v| String::from_utf8_lossy(v).into_owned())))
                    }
                }
            }
        }
    }
    assert!(
        lost.is_empty(),
        "{} acknowledged rows missing or wrong, e.g. {:?}\n{report}",
        lost.len(),
        &lost[..lost.len().min(5)]
    );
    let stray: Vec<&String> = rows
        .keys()
        .filter(|r| {
            !streams.iter().any(|s| {
                r.strip_prefix(s.prefix)
                    .and_then(|r| r.split('-').next())
                    .and_then(|b| b.parse::<u64>().ok())
                    .is_some_and(|b| s.sent.contains(&b))
            })
        })
        .collect();
    assert!(
        stray.is_empty(),
        "rows nobody sent: {:?}\n{report}",
        &stray[..stray.len().min(5)]
    );
}

#[test]
fn writes_survive_a_split_a_move_and_a_region_server_crash_under_load() {
    let hbase = HBaseCluster::start(2);
    let table = table_name("client_faults");
    hbase.create_table(&table, &["f"], &[]);
    let mut check = connect(&hbase);
    check
        .check_table(&table, b"f")
        .expect("the table and its family exist");
    // One writer as a plain caller (`apply`), one as the sink (batches in flight); each keeps
    // its one client through every fault.
    let mut streams = [
        Stream::new("a", Mode::Apply, check),
        Stream::new("p", Mode::Pipelined(4), connect(&hbase)),
    ];

    // (a) Split the table's one region inside the rows written.
    phase(&hbase, &table, "split", &mut streams, |w| {
        wait_until(
            "rows on both sides of the split key",
            Duration::from_secs(60),
            || w[0].acked() >= 20,
            || summaries(w),
        );
        let key = row_key("a", 10, 0);
        hbase.split(&table, key.as_bytes());
        let regions = hbase.regions(&table);
        assert_eq!(regions.len(), 2, "split at {key}: {regions:?}");
        assert_eq!(regions[0].end_key, key.as_bytes());
    });

    // (b) Move every region to the other server.
    let before = hbase.regions(&table);
    phase(&hbase, &table, "move", &mut streams, |_| {
        assert_eq!(hbase.move_regions(&table), before.len());
        let after = hbase.regions(&table);
        for (b, a) in before.iter().zip(&after) {
            assert!(
                a.server.is_some() && a.server != b.server,
                "{} stayed on {:?}",
                a.encoded_name,
                a.server
            );
        }
    });

    // (c) Crash the server holding `hbase:meta`, with the table's regions moved onto it first,
    // so that the clients must find both again: meta through ZooKeeper, the regions through
    // meta. They reopen on the other server, replayed from the write-ahead log.
    let servers = hbase.region_servers();
    assert_eq!(servers.len(), 2, "{servers:?}");
    let meta = zk::meta_location(&hbase.quorum(), "/hbase", RPC_TIMEOUT)
        .expect("the meta location in ZooKeeper");
    let index = servers
        .iter()
        .position(|s| s.rsplit_once(':').map(|(_, p)| p) == Some(&meta.port.to_string()))
        .unwrap_or_else(|| panic!("meta's server {meta} is not among {servers:?}"));
    phase(&hbase, &table, "crash", &mut streams, |_| {
        if hbase.regions(&table)[0].server.as_deref() != Some(servers[index].as_str()) {
            hbase.move_regions(&table);
        }
        let regions = hbase.regions(&table);
        assert!(
            regions
                .iter()
                .all(|r| r.server.as_deref() == Some(servers[index].as_str())),
            "the table's regions beside meta on {}: {regions:?}",
            servers[index]
        );
        let killed = hbase.kill_region_server(index);
        assert_eq!(killed, servers[index]);
        let after = hbase.regions(&table);
        assert!(
            after
                .iter()
                .all(|r| r.server.is_some() && r.server.as_deref() != Some(killed.as_str())),
            "killed {killed}: {after:?}"
        );
        let moved = zk::meta_location(&hbase.quorum(), "/hbase", RPC_TIMEOUT)
            .expect("the meta location in ZooKeeper");
        assert_ne!(moved, meta, "meta reopened elsewhere");
    });

    // (d) A new server, and the table moved onto it.
    phase(&hbase, &table, "new server", &mut streams, |_| {
        let started = hbase.start_region_server();
        hbase.move_regions(&table);
        let regions = hbase.regions(&table);
        assert!(
            regions
                .iter()
                .all(|r| r.server.as_deref() == Some(started.as_str())),
            "started {started}: {regions:?}"
        );
    });
    for s in &streams {
        eprintln!(
            "writer {} ({:?}) at the end: {} batches acknowledged, client stats {:?}",
            s.prefix,
            s.mode,
            s.acked.len(),
            s.stats()
        );
    }
}
