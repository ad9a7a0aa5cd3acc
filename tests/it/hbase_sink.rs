//! The hbase2, hbase and asynchbase sinks through `flumen agent` against a real HBase
//! (`hbase_cluster`), read back with HBase's own Java client: the cells each serializer writes,
//! compared with what Apache Flume 1.11's own hbase2 sink writes for the same events in the
//! same run; start-up errors that name the table or the family; and nothing acknowledged lost
//! while the table's region splits, its regions move, and a region server dies and returns.
//!
//! Row keys made of a UUID, a clock or a random number cannot be equal between two agents, so
//! for those the comparison is of their form (prefix, length, alphabet) and of everything else
//! in the cells; where the row key comes from the event (the regex serializer's
//! `rowKeyIndex`), rows are compared byte for byte.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use flumen::event::Event;

use crate::agent_proc::{start_monitored, AgentProcess, DEADLINE};
use crate::flume_agent::FlumeAgent;
use crate::hbase_cluster::{is_prefixed_uuid_row, table_name, wait_until, Cell, HBaseCluster};
use crate::kafka_sink::send;

/// One sink's serializer, as the properties lines under `a1.sinks.kN.`.
struct Variant {
    name: &'static str,
    serializer: &'static [(&'static str, &'static str)],
}

const HBASE2_VARIANTS: &[Variant] = &[
    Variant {
        name: "simple_uuid",
        serializer: &[
            (
                "serializer",
                "org.apache.flume.sink.hbase2.SimpleHBase2EventSerializer",
            ),
            ("serializer.rowPrefix", "r-"),
            ("serializer.incrementColumn", "iCol"),
        ],
    },
    Variant {
        name: "simple_timestamp",
        serializer: &[
            (
                "serializer",
                "org.apache.flume.sink.hbase2.SimpleHBase2EventSerializer",
            ),
            ("serializer.suffix", "timestamp"),
            ("serializer.payloadColumn", "body"),
            ("serializer.incrementColumn", "n"),
            ("serializer.incrementRow", "counter"),
        ],
    },
    Variant {
        name: "simple_nano",
        serializer: &[
            (
                "serializer",
                "org.apache.flume.sink.hbase2.SimpleHBase2EventSerializer",
            ),
            ("serializer.suffix", "nano"),
            ("coalesceIncrements", "true"),
        ],
    },
    Variant {
        name: "simple_random",
        serializer: &[
            (
                "serializer",
                "org.apache.flume.sink.hbase2.SimpleHBase2EventSerializer",
            ),
            ("serializer.suffix", "random"),
            ("serializer.rowPrefix", "x"),
        ],
    },
    Variant {
        name: "regex_row_key",
        serializer: &[
            (
                "serializer",
                "org.apache.flume.sink.hbase2.RegexHBase2EventSerializer",
            ),
            ("serializer.regex", "([^ ]+) ([^ ]+) ([^ ]+)"),
            ("serializer.colNames", "a,b,ROW_KEY"),
            ("serializer.rowKeyIndex", "2"),
        ],
    },
    Variant {
        name: "regex_headers",
        serializer: &[
            (
                "serializer",
                "org.apache.flume.sink.hbase2.RegexHBase2EventSerializer",
            ),
            ("serializer.regex", "(A[0-9]+) (b[0-9]+).*"),
            ("serializer.regexIgnoreCase", "true"),
            ("serializer.colNames", "first,second"),
            ("serializer.depositHeaders", "true"),
        ],
    },
];

/// avro source on `port` -> one memory channel per sink (replicating) -> one `sink_type` sink
/// per variant, each into its own table.
fn properties(port: u16, quorum: &str, sink_type: &str, sinks: &[(&Variant, String)]) -> String {
    let n = sinks.len();
    let names = |p: &str| {
        (1..=n)
            .map(|i| format!("{p}{i}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut s = format!(
        "a1.sources = r1\n\
         a1.channels = {}\n\
         a1.sinks = {}\n\
         a1.sources.r1.type = avro\n\
         a1.sources.r1.bind = 127.0.0.1\n\
         a1.sources.r1.port = {port}\n\
         a1.sources.r1.channels = {}\n",
        names("c"),
        names("k"),
        names("c"),
    );
    for (i, (v, table)) in sinks.iter().enumerate() {
        let i = i + 1;
        s.push_str(&format!(
            "a1.channels.c{i}.type = memory\n\
             a1.channels.c{i}.capacity = 10000\n\
             a1.channels.c{i}.transactionCapacity = 1000\n\
             a1.sinks.k{i}.type = {sink_type}\n\
             a1.sinks.k{i}.channel = c{i}\n\
             a1.sinks.k{i}.table = {table}\n\
             a1.sinks.k{i}.columnFamily = f\n\
             a1.sinks.k{i}.zookeeperQuorum = {quorum}\n\
             a1.sinks.k{i}.batchSize = 40\n"
        ));
        for (k, val) in v.serializer {
            s.push_str(&format!("a1.sinks.k{i}.{k} = {val}\n"));
        }
    }
    s
}

/// Events whose bodies the regex variants split (`a7 b7 key7`; every fifth one matches no
/// regex), each with two headers.
fn events(n: usize) -> Vec<Event> {
    (0..n)
        .map(|i| {
            let body = if i % 5 == 4 {
                format!("unmatched-{i}")
            } else {
                format!("a{i} b{i} key{i}")
            };
            Event::with_headers(
                [
                    ("h1".to_string(), format!("v{i}")),
                    ("src".to_string(), "test".to_string()),
                ]
                .into_iter()
                .collect(),
                body.into_bytes(),
            )
        })
        .collect()
}

/// A cell as two agents must agree on it: row (or empty), family, qualifier, value.
type CellKey = (Vec<u8>, Vec<u8>, Vec<u8>, Vec<u8>);

/// Cells without their timestamps and, where `keep_rows` is false, without their row keys:
/// what two agents writing the same events must agree on, as a multiset.
fn comparable(cells: &[Cell], keep_rows: bool) -> BTreeMap<CellKey, usize> {
    let mut out = BTreeMap::new();
    for c in cells {
        let row = if keep_rows { c.row.clone() } else { Vec::new() };
        *out.entry((row, c.family.clone(), c.qualifier.clone(), c.value.clone()))
            .or_insert(0) += 1;
    }
    out
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Every row key that is not `counter_row` has the form `suffix` makes after `prefix`.
fn assert_row_forms(
    who: &str,
    variant: &str,
    cells: &[Cell],
    prefix: &str,
    suffix: &str,
    counter_row: &[u8],
) {
    for c in cells.iter().filter(|c| c.row != counter_row) {
        let rest = c.row.strip_prefix(prefix.as_bytes()).unwrap_or_else(|| {
            panic!(
                "{who} {variant}: row `{}` lacks prefix `{prefix}`",
                text(&c.row)
            )
        });
        let ok = match suffix {
            "uuid" => is_prefixed_uuid_row(&c.row, prefix),
            // Java's currentTimeMillis, nanoTime and Random.nextLong as decimal text.
            "timestamp" => rest.len() == 13 && rest.iter().all(u8::is_ascii_digit),
            "nano" => !rest.is_empty() && rest.iter().all(u8::is_ascii_digit),
            _ => {
                let digits = rest.strip_prefix(b"-").unwrap_or(rest);
                !digits.is_empty() && digits.len() <= 19 && digits.iter().all(u8::is_ascii_digit)
            }
        };
        assert!(
            ok,
            "{who} {variant}: row `{}` is not `{prefix}` + a {suffix} suffix",
            text(&c.row)
        );
    }
}

/// `<millis>-<10 letters or digits>-<nonce>`: the row key Flume's regex serializer makes when
/// `rowKeyIndex` is unset.
fn is_generated_regex_row(row: &[u8]) -> bool {
    let s = text(row);
    let parts: Vec<&str> = s.splitn(3, '-').collect();
    parts.len() == 3
        && parts[0].len() == 13
        && parts[0].bytes().all(|b| b.is_ascii_digit())
        && parts[1].len() == 10
        && parts[1].bytes().all(|b| b.is_ascii_alphanumeric())
        && parts[2]
            .trim_start_matches('-')
            .bytes()
            .all(|b| b.is_ascii_digit())
}

/// Waits until `channel` of flumen's agent has had `n` takes committed.
fn wait_taken(run: &mut AgentProcess, mport: u16, channel: &str, n: u64) {
    run.poll(&format!("flumen's {channel} to drain"), |r| {
        let m = crate::agent_proc::json(r, mport);
        let done: u64 = m[channel]["EventTakeSuccessCount"].as_str()?.parse().ok()?;
        (done >= n).then_some(())
    });
}

fn dump_when(
    hb: &HBaseCluster,
    table: &str,
    rows: u64,
    what: &str,
    log: impl Fn() -> String,
) -> Vec<Cell> {
    wait_until(what, DEADLINE, || hb.count_rows(table) >= rows, log);
    hb.dump(table)
}

#[test]
fn every_hbase2_serializer_writes_the_cells_flumes_own_sink_writes() {
    let hb = HBaseCluster::shared();
    let dir = tempfile::tempdir().expect("tempdir");
    let n = 60;
    let evs = events(n);
    let mut sides = Vec::new();
    for who in ["flumen", "flume"] {
        let sinks: Vec<(&Variant, String)> = HBASE2_VARIANTS
            .iter()
            .map(|v| (v, table_name(&format!("{who}_{}", v.name))))
            .collect();
        for (_, t) in &sinks {
            hb.create_table(t, &["f"], &[]);
        }
        let port = crate::agent_proc::free_port();
        let props = properties(port, &hb.quorum(), "hbase2", &sinks);
        sides.push((who, port, props, sinks));
    }
    let (_, fport, fprops, _) = &sides[0];
    let (mut flumen, fmport) = start_monitored(dir.path(), fprops, "hbase2-serializers", &[]);
    send(&mut Some(&mut flumen), *fport, &evs);
    let (_, jport, jprops, _) = &sides[1];
    let mut flume = FlumeAgent::start_hbase(dir.path(), "hbase2-serializers", jprops);
    flume.wait_ready(&["SOURCE.r1"], Some(*jport));
    send(&mut None, *jport, &evs);

    // Every sink has taken every event: a take commits only after the region server answered
    // (Flume's EventDrainSuccessCount counts puts, not events, so the channels tell).
    for i in 1..=HBASE2_VARIANTS.len() {
        let channel = format!("CHANNEL.c{i}");
        wait_taken(&mut flumen, fmport, &channel, n as u64);
        flume.poll(&format!("Flume's {channel} to drain"), |f| {
            (f.try_counter(&channel, "EventTakeSuccessCount")? >= n as u64).then_some(())
        });
    }
    for (i, v) in HBASE2_VARIANTS.iter().enumerate() {
        let ft = &sides[0].3[i].1;
        let jt = &sides[1].3[i].1;
        // Every take committed, so the tables are final. (Millisecond row keys collide, a
        // later put overwriting an earlier one, in Flume as in flumen.)
        let mine = hb.dump(ft);
        let theirs = hb.dump(jt);
        println!(
            "{}: flumen wrote {} cells, Flume {}",
            v.name,
            mine.len(),
            theirs.len()
        );
        assert!(!mine.is_empty(), "{}: flumen wrote nothing", v.name);
        let keep_rows = v.name == "regex_row_key";
        if v.name == "simple_timestamp" {
            let bodies: BTreeSet<Vec<u8>> = evs.iter().map(|e| e.body().to_vec()).collect();
            for (who, cells) in [("flumen", &mine), ("Flume", &theirs)] {
                let counter = cells
                    .iter()
                    .find(|c| c.row == b"counter")
                    .expect("counter row");
                assert_eq!(counter.value, (n as i64).to_be_bytes(), "{who}'s counter");
                assert!(cells
                    .iter()
                    .filter(|c| c.row != b"counter")
                    .all(|c| c.qualifier == b"body" && bodies.contains(&c.value)));
            }
        } else {
            assert_eq!(
                comparable(&mine, keep_rows),
                comparable(&theirs, keep_rows),
                "{}: flumen's cells (left) differ from Apache Flume 1.11's (right)",
                v.name
            );
        }
        let opt = |k: &str, d: &'static str| {
            v.serializer
                .iter()
                .find(|(key, _)| *key == k)
                .map_or(d, |(_, val)| *val)
        };
        match v.name {
            "regex_row_key" => {}
            "regex_headers" => {
                for (who, cells) in [("flumen", &mine), ("Flume", &theirs)] {
                    assert!(
                        cells.iter().all(|c| is_generated_regex_row(&c.row)),
                        "{who}: regex row keys {:?}",
                        cells.iter().map(|c| text(&c.row)).collect::<BTreeSet<_>>()
                    );
                }
            }
            _ => {
                let prefix = opt("serializer.rowPrefix", "default");
                let suffix = opt("serializer.suffix", "uuid");
                let inc_row = opt("serializer.incrementRow", "incRow");
                for (who, cells) in [("flumen", &mine), ("Flume", &theirs)] {
                    assert_row_forms(who, v.name, cells, prefix, suffix, inc_row.as_bytes());
                }
            }
        }
    }
    // The counter: one increment per event, as an 8-byte big-endian long.
    let counter = hb
        .dump(&sides[0].3[0].1)
        .into_iter()
        .find(|c| c.row == b"incRow")
        .expect("flumen's incRow");
    assert_eq!(counter.qualifier, b"iCol");
    assert_eq!(counter.value, (n as i64).to_be_bytes());
    let _ = flume.stop();
    flumen.terminate();
}

#[test]
fn hbase_and_asynchbase_types_write_their_serializers_cells() {
    let hb = HBaseCluster::shared();
    let dir = tempfile::tempdir().expect("tempdir");
    let n = 30;
    for (sink_type, serializer) in [
        (
            "hbase",
            "org.apache.flume.sink.hbase.SimpleHbaseEventSerializer",
        ),
        (
            "org.apache.flume.sink.hbase.HBaseSink",
            "org.apache.flume.sink.hbase.RegexHbaseEventSerializer",
        ),
        (
            "asynchbase",
            "org.apache.flume.sink.hbase.SimpleAsyncHbaseEventSerializer",
        ),
    ] {
        let table = table_name("types");
        hb.create_table(&table, &["f"], &[]);
        let v = Variant {
            name: "types",
            serializer: &[],
        };
        let port = crate::agent_proc::free_port();
        let mut props = properties(port, &hb.quorum(), sink_type, &[(&v, table.clone())]);
        props.push_str(&format!("a1.sinks.k1.serializer = {serializer}\n"));
        let (mut run, mport) =
            start_monitored(dir.path(), &props, &format!("types-{}", table), &[]);
        let evs: Vec<Event> = (0..n)
            .map(|i| Event::new(format!("payload {i}").into_bytes()))
            .collect();
        send(&mut Some(&mut run), port, &evs);
        wait_taken(&mut run, mport, "CHANNEL.c1", n as u64);
        let regex = serializer.contains("Regex");
        let rows = if regex { n as u64 } else { n as u64 + 1 };
        let cells = dump_when(hb, &table, rows, sink_type, || run.log());
        let values: BTreeSet<String> = cells
            .iter()
            .filter(|c| c.row != b"incRow")
            .map(|c| text(&c.value))
            .collect();
        let want: BTreeSet<String> = (0..n).map(|i| format!("payload {i}")).collect();
        assert_eq!(values, want, "{sink_type} with {serializer}");
        if regex {
            // The default regex `(.*)` into the default column `payload`, a generated key.
            assert!(cells
                .iter()
                .all(|c| c.qualifier == b"payload" && is_generated_regex_row(&c.row)));
        } else {
            assert_row_forms(sink_type, serializer, &cells, "default", "uuid", b"incRow");
            let inc = cells.iter().find(|c| c.row == b"incRow").expect("incRow");
            assert_eq!(
                (inc.qualifier.as_slice(), inc.value.clone()),
                (b"iCol".as_slice(), (n as i64).to_be_bytes().to_vec())
            );
        }
        run.terminate();
    }
}

/// The agent's exit (or its log while it keeps running) for a sink that cannot start.
fn start_failure(dir: &Path, props: &str, tag: &str) -> String {
    let (run, _) = start_monitored(dir, props, tag, &[]);
    let (status, log) = run.wait_exit(tag);
    assert!(
        !status.success(),
        "{tag}: the agent should not start\n{log}"
    );
    log
}

#[test]
fn a_missing_table_or_family_stops_start_up_naming_it() {
    let hb = HBaseCluster::shared();
    let dir = tempfile::tempdir().expect("tempdir");
    let v = Variant {
        name: "errors",
        serializer: &[],
    };
    let missing = table_name("missing");
    let props = properties(
        crate::agent_proc::free_port(),
        &hb.quorum(),
        "hbase2",
        &[(&v, missing.clone())],
    );
    let log = start_failure(dir.path(), &props, "missing-table");
    assert!(
        log.contains(&missing) && log.contains("does not exist"),
        "{log}"
    );

    let table = table_name("nofamily");
    hb.create_table(&table, &["other"], &[]);
    let props = properties(
        crate::agent_proc::free_port(),
        &hb.quorum(),
        "hbase2",
        &[(&v, table.clone())],
    );
    let log = start_failure(dir.path(), &props, "missing-family");
    assert!(
        log.contains(&table) && log.contains("column family `f`"),
        "{log}"
    );
}

#[test]
fn acknowledged_events_survive_a_split_a_move_and_a_region_server_crash() {
    let hb = HBaseCluster::start(2);
    let dir = tempfile::tempdir().expect("tempdir");
    let table = table_name("rs_crash");
    // Row keys are `x` and a UUID: split at `x8` so both servers hold rows.
    hb.create_table(&table, &["f"], &[b"x8"]);
    let port = crate::agent_proc::free_port();
    let props = format!(
        "a1.sources = r1\n\
         a1.channels = c1\n\
         a1.sinks = k1\n\
         a1.sources.r1.type = avro\n\
         a1.sources.r1.bind = 127.0.0.1\n\
         a1.sources.r1.port = {port}\n\
         a1.sources.r1.channels = c1\n\
         a1.channels.c1.type = file\n\
         a1.channels.c1.checkpointDir = {cp}\n\
         a1.channels.c1.dataDirs = {data}\n\
         a1.sinks.k1.type = hbase2\n\
         a1.sinks.k1.channel = c1\n\
         a1.sinks.k1.table = {table}\n\
         a1.sinks.k1.columnFamily = f\n\
         a1.sinks.k1.zookeeperQuorum = {q}\n\
         a1.sinks.k1.batchSize = 50\n\
         a1.sinks.k1.serializer.rowPrefix = x\n",
        cp = dir.path().join("cp").display(),
        data = dir.path().join("data").display(),
        q = hb.quorum(),
    );
    let (mut run, mport) = start_monitored(dir.path(), &props, "rs-crash", &[]);
    let batch = |k: usize| -> Vec<Event> {
        (0..50)
            .map(|i| Event::new(format!("event {k:03}-{i:02}").into_bytes()))
            .collect()
    };
    // Each `send` returns once the source acknowledged (committed to the file channel).
    // Between bursts of load: a split, a move of every region, the crash of a region server
    // and a new one started.
    for k in 0..10 {
        send(&mut Some(&mut run), port, &batch(k));
    }
    hb.split(&table, b"xc");
    for k in 10..20 {
        send(&mut Some(&mut run), port, &batch(k));
    }
    hb.move_regions(&table);
    for k in 20..30 {
        send(&mut Some(&mut run), port, &batch(k));
    }
    let victim = hb.kill_region_server(0);
    for k in 30..50 {
        send(&mut Some(&mut run), port, &batch(k));
    }
    hb.start_region_server();
    for k in 50..60 {
        send(&mut Some(&mut run), port, &batch(k));
    }
    let want: BTreeSet<String> = (0..60)
        .flat_map(|k| batch(k).into_iter().map(|e| text(e.body())))
        .collect();
    let payloads = || -> BTreeMap<String, usize> {
        let mut m = BTreeMap::new();
        // The counter row (`incRow`, one increment per event) is not an event.
        for c in hb.try_dump(&table).unwrap_or_default() {
            if c.row == b"incRow" {
                continue;
            }
            *m.entry(text(&c.value)).or_insert(0) += 1;
        }
        m
    };
    wait_until(
        "every acknowledged event in HBase after the split, the move and the crash",
        Duration::from_secs(240),
        || want.iter().all(|p| payloads().contains_key(p)),
        || format!("killed {victim}\n{}\n{}", run.log(), hb.log_tail()),
    );
    let got = payloads();
    let extra: Vec<&String> = got.keys().filter(|p| !want.contains(*p)).collect();
    assert!(extra.is_empty(), "rows that were never sent: {extra:?}");
    // A duplicate can only come from a batch the sink retried after a failure it could not
    // tell from a loss (the take rolled back, the serializer drew new row keys).
    let duplicates: usize = got.values().map(|n| n - 1).sum();
    let m = crate::agent_proc::json(&mut run, mport);
    let failures: u64 = m["SINK.k1"]["EventWriteFail"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    println!(
        "split, moved, region server {victim} killed and replaced: {} events acknowledged, all in HBase, {duplicates} duplicates, {failures} failed sink batches",
        want.len()
    );
    assert!(
        duplicates == 0 || failures > 0,
        "{duplicates} duplicates without a failed batch to explain them"
    );
    assert!(
        duplicates as u64 <= failures * 50,
        "{duplicates} duplicates from {failures} failed batches of at most 50"
    );
    run.terminate();
}
