//! flumen's HBase client (`flumen::hbase`) against a real HBase (`hbase_cluster`), without an
//! agent: the typed errors an operator sees (missing table, missing column family, an
//! unreachable quorum, a wrong `znodeParent`), puts and increments read back cell by cell
//! with HBase's own Java client (one batch spanning the regions of a pre-split table,
//! batches pipelined with `submit`/`complete`, the region cache read once), and faults under
//! load on a private two-server cluster: a region split, a move of every region, a crash of
//! the region server holding `hbase:meta` and the table, and a new server taking the table,
//! while a writer thread applies batches; after each the same `Client` must go on writing by
//! itself and every batch it acknowledged must be in the table.
//!
//! Invariant checked throughout: `apply` returning `Ok` means every mutation of the batch is
//! stored; an `Err` the writer answers by sending the same batch again (as a sink does), so a
//! row may be written twice but never lost, and the table holds no row nobody sent.

use std::collections::{BTreeMap, BTreeSet};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use flumen::hbase::{
    zk, Client, ClientConfig, ClientStats, HBaseError, IncrementCell, Mutation, PutCell,
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
            let (a, b) = (format!("value {n}"), format!("{n} in g"));
            expected.insert((row.clone(), "f".into(), "a".into()), a.clone().into());
            expected.insert((row.clone(), "g".into(), "b".into()), b.clone().into());
            batch.push(put(&row, &[("f", "a", &a), ("g", "b", &b)]));
            // A counter in the batch beside the puts, twice in one batch.
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

    // Rewrite the same rows with new values in three batches in flight at once.
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

/// What the writer thread has done, shared with the test's thread.
#[derive(Default)]
struct Progress {
    /// Batches `apply` returned `Ok` for, by number.
    acked: Vec<u64>,
    /// `Err`s answered by resending the batch, with the text of the first few.
    failures: u64,
    first_failures: Vec<String>,
    stats: ClientStats,
}

const BATCH: u64 = 100;

fn row_key(batch: u64, i: u64) -> String {
    format!("w{batch:07}-{i:03}")
}

fn writer_batch(batch: u64) -> Vec<Mutation> {
    (0..BATCH)
        .map(|i| {
            let row = row_key(batch, i);
            put(&row, &[("f", "v", &format!("{batch}/{i}"))])
        })
        .collect()
}

/// A writer thread that applies batches of [`BATCH`] puts with fresh rows from batch `next`
/// on until `stop`, resending a batch after an `Err` as a sink would; it hands the client back
/// when it ends so the next phase goes on with the same one.
struct Writer {
    stop: Arc<AtomicBool>,
    progress: Arc<Mutex<Progress>>,
    thread: JoinHandle<(Client, u64)>,
}

impl Writer {
    fn start(mut client: Client, table: String, mut next: u64) -> Writer {
        let stop = Arc::new(AtomicBool::new(false));
        let progress = Arc::new(Mutex::new(Progress::default()));
        let (s, p) = (stop.clone(), progress.clone());
        let thread = std::thread::Builder::new()
            .name("hbase-writer".into())
            .spawn(move || {
                while !s.load(Ordering::SeqCst) {
                    let batch = writer_batch(next);
                    let r = client.apply(&table, &batch);
                    let mut p = p.lock().expect("progress lock");
                    p.stats = client.stats();
                    match r {
                        Ok(()) => {
                            p.acked.push(next);
                            next += 1;
                        }
                        Err(e) => {
                            eprintln!("writer: batch {next} failed, resending it: {e}");
                            p.failures += 1;
                            if p.first_failures.len() < 5 {
                                p.first_failures.push(format!("batch {next}: {e}"));
                            }
                            drop(p);
                            // A sink's runner backs off before it retries a failed batch.
                            if !s.load(Ordering::SeqCst) {
                                std::thread::sleep(Duration::from_millis(200));
                            }
                            continue;
                        }
                    }
                    drop(p);
                    // Small pauses keep the table (and the dumps) at tens of thousands of
                    // rows; the writer still has a batch in flight most of the time.
                    std::thread::sleep(Duration::from_millis(20));
                }
                (client, next)
            })
            .expect("spawn the writer");
        Writer {
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
            "{} batches acknowledged, {} failures answered by resending (first: {:?}), client \
             stats {:?}",
            p.acked.len(),
            p.failures,
            p.first_failures,
            p.stats
        )
    }

    /// Stops the thread after its current batch; returns the client, the next batch number
    /// and what was done.
    fn stop(self) -> (Client, u64, Progress) {
        self.stop.store(true, Ordering::SeqCst);
        let (client, next) = self.thread.join().expect("the writer thread panicked");
        let mut p = Arc::try_unwrap(self.progress)
            .map_err(|_| "progress still shared")
            .expect("the writer has ended")
            .into_inner()
            .expect("progress lock");
        p.stats = client.stats();
        (client, next, p)
    }
}

/// Runs the writer from batch `next` while `fault` runs on this thread, waits until `more`
/// batches were acknowledged after the fault, stops the writer and checks that every row of
/// every acknowledged batch is in `table`, with no row nobody sent. Returns the client and
/// the next batch number.
fn phase(
    hbase: &HBaseCluster,
    table: &str,
    name: &str,
    client: Client,
    next: u64,
    all_acked: &mut BTreeSet<u64>,
    fault: impl FnOnce(&Writer),
) -> (Client, u64) {
    const MORE: usize = 5;
    let writer = Writer::start(client, table.to_string(), next);
    wait_until(
        &format!("{name}: the writer's first batches"),
        Duration::from_secs(60),
        || writer.acked() >= 3,
        || format!("{}\n{}", writer.summary(), hbase.log_tail()),
    );
    let started = Instant::now();
    fault(&writer);
    let fault_took = started.elapsed();
    let at_fault = writer.acked();
    wait_until(
        &format!("{name}: {MORE} more batches after the fault"),
        // Twice the operation timeout: one `apply` may give up once while the cluster is
        // still recovering and the writer's resend must then succeed.
        OPERATION_TIMEOUT * 2,
        || writer.acked() >= at_fault + MORE,
        || format!("{}\n{}", writer.summary(), hbase.log_tail()),
    );
    let recovered = started.elapsed();
    let (client, next, progress) = writer.stop();
    all_acked.extend(progress.acked.iter().copied());
    let report = format!(
        "{name}: fault took {fault_took:?}, writing again {recovered:?} after it began; \
         {} batches acknowledged in this phase ({} in all), {} failures answered by \
         resending (first: {:?}); client stats {:?}",
        progress.acked.len(),
        all_acked.len(),
        progress.failures,
        progress.first_failures,
        progress.stats
    );
    eprintln!("{report}");

    // Every acknowledged row is there with its value; every row there was sent (an
    // acknowledged batch or one the writer was still resending).
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
    let mut lost = Vec::new();
    for &b in all_acked.iter() {
        for i in 0..BATCH {
            let want = format!("{b}/{i}");
            match rows.get(&row_key(b, i)) {
                Some(v) if v == want.as_bytes() => {}
                other => lost.push((row_key(b, i), other.cloned())),
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
            let batch: Option<u64> = r
                .strip_prefix('w')
                .and_then(|r| r.split('-').next())
                .and_then(|b| b.parse().ok());
            batch.is_none_or(|b| !all_acked.contains(&b) && b + 1 != next)
        })
        .collect();
    assert!(
        stray.is_empty(),
        "rows nobody sent: {:?}\n{report}",
        &stray[..stray.len().min(5)]
    );
    assert_eq!(cells.len(), rows.len(), "one cell per row");
    (client, next)
}

#[test]
fn writes_survive_a_split_a_move_and_a_region_server_crash_under_load() {
    let hbase = HBaseCluster::start(2);
    let table = table_name("client_faults");
    hbase.create_table(&table, &["f"], &[]);
    let mut client = connect(&hbase);
    client
        .check_table(&table, b"f")
        .expect("the table and its family exist");
    let mut acked = BTreeSet::new();
    let context = |client: &Client| format!("client stats {:?}", client.stats());

    // (a) Split the table's one region inside the written range.
    let (client, next) = phase(&hbase, &table, "split", client, 0, &mut acked, |w| {
        wait_until(
            "rows on both sides of the split key",
            Duration::from_secs(60),
            || w.acked() >= 20,
            || w.summary(),
        );
        let key = row_key(10, 0);
        hbase.split(&table, key.as_bytes());
        let regions = hbase.regions(&table);
        assert_eq!(regions.len(), 2, "split at {key}: {regions:?}");
        assert_eq!(regions[0].end_key, key.as_bytes());
    });
    eprintln!("after the split: {}", context(&client));

    // (b) Move every region to the other server.
    let before = hbase.regions(&table);
    let (client, next) = phase(&hbase, &table, "move", client, next, &mut acked, |_| {
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
    eprintln!("after the move: {}", context(&client));

    // (c) Crash the server holding `hbase:meta`, with the table's regions moved onto it first,
    // so that the client must find both again: meta through ZooKeeper, the regions through
    // meta. They reopen on the other server, replayed from the write-ahead log.
    let servers = hbase.region_servers();
    assert_eq!(servers.len(), 2, "{servers:?}");
    let meta = zk::meta_location(&hbase.quorum(), "/hbase", RPC_TIMEOUT)
        .expect("the meta location in ZooKeeper");
    let index = servers
        .iter()
        .position(|s| s.rsplit_once(':').map(|(_, p)| p) == Some(&meta.port.to_string()))
        .unwrap_or_else(|| panic!("meta's server {meta} is not among {servers:?}"));
    let (client, next) = phase(&hbase, &table, "crash", client, next, &mut acked, |_| {
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
    eprintln!("after the crash: {}", context(&client));
    let (client, _) = phase(
        &hbase,
        &table,
        "new server",
        client,
        next,
        &mut acked,
        |_| {
            let started = hbase.start_region_server();
            hbase.move_regions(&table);
            let regions = hbase.regions(&table);
            assert!(
                regions
                    .iter()
                    .all(|r| r.server.as_deref() == Some(started.as_str())),
                "started {started}: {regions:?}"
            );
        },
    );
    let stats = client.stats();
    eprintln!("after the new server: client stats {stats:?}");
    assert!(
        stats.region_lookups >= 4,
        "meta was read again after each fault: {stats:?}"
    );
}
