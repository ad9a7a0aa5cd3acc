//! The event serializers against the Java implementations they copy: files `flumen agent`
//! writes with `AVRO_EVENT` (null, deflate and snappy codecs) through `file_roll`, and through the
//! hdfs sink into the shared MiniDFSCluster, are read by Apache Avro's own `DataFileReader`
//! (`flumen.test.AvroDump` in `tests/avro`), event by event, headers and body; and the
//! `HEADER_AND_TEXT` file flumen writes is compared byte for byte with the one Apache Flume
//! 1.11's own file_roll sink writes for the same events (sent to both by Flume's RpcClient).

use std::collections::BTreeMap;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::agent_proc::{free_port, json, start_monitored, AgentProcess};
use crate::avro_source::avro_send_with;
use crate::flume_agent::FlumeAgent;
use crate::hdfs_cluster::MiniHdfs;

/// Headers the client adds to `seq` and `k`, in this insertion order. With them an event has
/// 16 headers, so Java's HashMap has 32 buckets; none of these keys shares a bucket with a key
/// that sorts before it but was inserted after it, where flumen's order (sorted within a
/// bucket) and Flume's (insertion order within a bucket) would differ (docs/FORMAT.md).
const HEADERS: &str =
    "timestamp,host,zz,topic,partition,level,user,path,offset,type,region,service,trace,ip";
const EVENTS: usize = 600;
const BATCH: usize = 50;

/// The files of `dir`, sorted by name (file_roll names count up).
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| e.expect("entry").path())
        .collect();
    v.sort();
    v
}

/// `AvroDump` over `files`: each file's codec, and every record as `sorted headers \t hex
/// body`, in file order. Panics if Avro cannot read a file whole.
pub(crate) fn avro_dump(files: &[PathBuf]) -> (Vec<String>, Vec<String>) {
    let out = Command::new("java")
        .args(["-Xmx256m", "-XX:+UseSerialGC"])
        .args(["-cp", crate::flume_agent::classpath()])
        .arg("flumen.test.AvroDump")
        .args(files)
        .output()
        .expect("run java");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "Avro's reader refused {files:?}:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (mut codecs, mut records) = (Vec::new(), Vec::new());
    for line in stdout.lines() {
        match line.strip_prefix("CODEC ") {
            Some(c) => codecs.push(c.to_string()),
            None => records.push(line.to_string()),
        }
    }
    (codecs, records)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What AvroDump prints for event `i` as `AvroSend` with [`HEADERS`] builds it.
fn expected_record(i: usize) -> String {
    let mut h = BTreeMap::new();
    h.insert("seq".to_string(), i.to_string());
    h.insert("k".to_string(), "v".to_string());
    for name in HEADERS.split(',') {
        h.insert(name.to_string(), format!("{name}-{i}"));
    }
    let headers: Vec<String> = h.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{}\t{}", headers.join("&"), hex(i.to_string().as_bytes()))
}

fn wait_listening(run: &mut AgentProcess, port: u16) {
    run.wait_for(&format!("the avro source to listen on {port}"), |_| {
        TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
}

/// Waits until each of `sinks` committed `n` events.
fn wait_drained(run: &mut AgentProcess, mport: u16, sinks: &[&str], n: usize) {
    let want = n.to_string();
    run.poll(
        &format!("waiting for {sinks:?} to commit {n} events"),
        |r| {
            let v = json(r, mport);
            sinks
                .iter()
                .all(|s| v[format!("SINK.{s}")]["EventDrainSuccessCount"] == want.as_str())
                .then_some(())
        },
    );
}

#[test]
fn avro_event_files_read_by_avro_and_header_and_text_as_flume_writes_it() {
    crate::flume_agent::classpath();
    let dir = tempfile::tempdir().expect("tempdir");
    let out = |name: &str| dir.path().join(name);

    // flumen: one avro source replicated to four file_roll sinks.
    let port = free_port();
    let mut props = format!(
        "a1.sources = r1\n\
         a1.channels = c1 c2 c3 c4\n\
         a1.sinks = k1 k2 k3 k4\n\
         a1.sources.r1.type = avro\n\
         a1.sources.r1.bind = 127.0.0.1\n\
         a1.sources.r1.port = {port}\n\
         a1.sources.r1.channels = c1 c2 c3 c4\n"
    );
    for (k, sink_dir, serializer) in [
        ("1", "avro-null", "avro_event\n"),
        (
            "2",
            "avro-deflate",
            // A small sync interval: several blocks per batch as well as one per batch.
            "AVRO_EVENT\na1.sinks.k2.sink.serializer.compressionCodec = deflate\n\
             a1.sinks.k2.sink.serializer.syncIntervalBytes = 2000\n",
        ),
        ("3", "text", "header_and_text\n"),
        (
            "4",
            "avro-snappy",
            "org.apache.flume.serialization.FlumeEventAvroEventSerializer$Builder\n\
             a1.sinks.k4.sink.serializer.compressionCodec = snappy\n",
        ),
    ] {
        props.push_str(&format!(
            "a1.channels.c{k}.type = memory\n\
             a1.channels.c{k}.capacity = 10000\n\
             a1.sinks.k{k}.type = file_roll\n\
             a1.sinks.k{k}.channel = c{k}\n\
             a1.sinks.k{k}.sink.directory = {}\n\
             a1.sinks.k{k}.sink.rollInterval = 0\n\
             a1.sinks.k{k}.sink.serializer = {serializer}",
            out(sink_dir).display()
        ));
    }
    let (mut run, mport) = start_monitored(dir.path(), &props, "serializers", &[]);

    // Apache Flume: the same source into its own file_roll with HEADER_AND_TEXT.
    let flume_port = free_port();
    // Flume's file_roll does not make its directory.
    std::fs::create_dir(out("flume-text")).expect("mkdir");
    let mut flume = FlumeAgent::start(
        dir.path(),
        "text",
        &format!(
            "a1.sources = r1\n\
             a1.channels = c1\n\
             a1.sinks = k1\n\
             a1.sources.r1.type = avro\n\
             a1.sources.r1.bind = 127.0.0.1\n\
             a1.sources.r1.port = {flume_port}\n\
             a1.sources.r1.channels = c1\n\
             a1.channels.c1.type = memory\n\
             a1.channels.c1.capacity = 10000\n\
             a1.sinks.k1.type = file_roll\n\
             a1.sinks.k1.channel = c1\n\
             a1.sinks.k1.sink.directory = {}\n\
             a1.sinks.k1.sink.rollInterval = 0\n\
             a1.sinks.k1.sink.serializer = header_and_text\n",
            out("flume-text").display()
        ),
    );
    flume.wait_ready(&["SOURCE.r1", "SINK.k1"], Some(flume_port));
    wait_listening(&mut run, port);

    let props = [format!("-Dflumen.headers={HEADERS}")];
    for p in [port, flume_port] {
        let (ok, stdout, stderr) = avro_send_with(p, 0, EVENTS, BATCH, &props);
        assert!(ok, "AvroSend to {p} failed:\n{stdout}\n{stderr}");
    }
    wait_drained(&mut run, mport, &["k1", "k2", "k3", "k4"], EVENTS);
    flume.poll("waiting for Flume's sink to commit every event", |f| {
        (f.try_counter("SINK.k1", "EventDrainSuccessCount")? == EVENTS as u64).then_some(())
    });
    let (status, log) = run.terminate();
    assert!(status.success(), "agent exit {status}:\n{log}");
    flume.stop();

    let want: Vec<String> = (0..EVENTS).map(expected_record).collect();
    for (sink_dir, codec) in [
        ("avro-null", "null"),
        ("avro-deflate", "deflate"),
        ("avro-snappy", "snappy"),
    ] {
        let f = files(&out(sink_dir));
        assert_eq!(f.len(), 1, "{f:?}");
        let (codecs, records) = avro_dump(&f);
        assert_eq!(codecs, [codec], "{sink_dir}");
        assert_eq!(records.len(), EVENTS, "{sink_dir}");
        for (got, want) in records.iter().zip(&want) {
            assert_eq!(got, want, "{sink_dir}");
        }
    }

    let read_all = |d: &Path| -> String {
        files(d)
            .iter()
            .map(|f| std::fs::read_to_string(f).expect("utf-8 text"))
            .collect()
    };
    let ours = read_all(&out("text"));
    let flumes = read_all(&out("flume-text"));
    assert_eq!(ours.lines().count(), EVENTS);
    let first = ours.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("{zz=zz-0, offset=offset-0, ") && first.ends_with("} 0"),
        "{first}"
    );
    for (i, (a, b)) in ours.lines().zip(flumes.lines()).enumerate() {
        assert_eq!(a, b, "line {i}: flumen, then Flume");
    }
    assert_eq!(ours, flumes, "the whole files");
}

/// The hdfs sink with AVRO_EVENT: a DataStream file still open is readable by Avro up to its
/// last hsync (every committed event), and closed files, rolled or not, plain or gzipped, are
/// complete container files.
#[test]
fn hdfs_avro_event_files_read_by_avro_while_open_and_once_closed() {
    let hdfs = MiniHdfs::shared();
    crate::flume_agent::classpath();
    let dir = tempfile::tempdir().expect("tempdir");
    let base = format!("/t/avro-event-{}", std::process::id());
    let n = 5000;
    let mut props = format!(
        "a1.sources = r1\n\
         a1.channels = c1 c2\n\
         a1.sinks = k1 k2\n\
         a1.sources.r1.type = seq\n\
         a1.sources.r1.totalEvents = {n}\n\
         a1.sources.r1.batchSize = 100\n\
         a1.sources.r1.channels = c1 c2\n"
    );
    for (k, sub, extra) in [
        (
            "1",
            "open",
            "a1.sinks.k1.hdfs.fileType = DataStream\n\
             a1.sinks.k1.serializer.compressionCodec = deflate\n\
             a1.sinks.k1.hdfs.rollCount = 0\n",
        ),
        (
            "2",
            "gz",
            "a1.sinks.k2.hdfs.fileType = CompressedStream\n\
             a1.sinks.k2.hdfs.codeC = gzip\n\
             a1.sinks.k2.hdfs.rollCount = 2000\n",
        ),
    ] {
        props.push_str(&format!(
            "a1.channels.c{k}.type = memory\n\
             a1.channels.c{k}.capacity = 10000\n\
             a1.sinks.k{k}.type = hdfs\n\
             a1.sinks.k{k}.channel = c{k}\n\
             a1.sinks.k{k}.hdfs.path = {url}{base}/{sub}\n\
             a1.sinks.k{k}.hdfs.batchSize = 100\n\
             a1.sinks.k{k}.hdfs.rollSize = 0\n\
             a1.sinks.k{k}.hdfs.rollInterval = 0\n\
             a1.sinks.k{k}.serializer = avro_event\n\
             {extra}",
            url = hdfs.url(),
        ));
    }
    let (mut run, mport) = start_monitored(dir.path(), &props, "hdfs-avro", &[]);
    wait_drained(&mut run, mport, &["k1", "k2"], n);
    let want: Vec<String> = (0..n)
        .map(|i| format!("\t{}", hex(i.to_string().as_bytes())))
        .collect();
    let local = |name: &str, bytes: Vec<u8>| -> PathBuf {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).expect("write a local copy");
        p
    };

    // Still open (rollCount 0, no interval): what the last hsync covers is every committed event.
    let open = hdfs.hadoop_ls(&format!("{base}/open"));
    assert_eq!(open.len(), 1, "{open:?}");
    assert!(!open[0].closed, "{open:?}");
    let copy = local("open.avro", hdfs.hadoop_read(&open[0].path));
    let (codecs, records) = avro_dump(&[copy]);
    assert_eq!(codecs, ["deflate"]);
    assert_eq!(records, want, "the open file up to its last hsync");

    let (status, log) = run.terminate();
    assert!(status.success(), "agent exit {status}:\n{log}");

    let closed = hdfs.hadoop_ls(&format!("{base}/open"));
    assert!(closed.len() == 1 && closed[0].closed, "{closed:?}");
    let copy = local("closed.avro", hdfs.hadoop_read(&closed[0].path));
    assert_eq!(avro_dump(&[copy]).1, want, "the closed file");

    let gz = hdfs.hadoop_ls(&format!("{base}/gz"));
    assert_eq!(gz.len(), 3, "rollCount 2000 over {n} events: {gz:?}");
    let mut copies = Vec::new();
    for (i, f) in gz.iter().enumerate() {
        assert!(f.closed && f.path.ends_with(".gz"), "{gz:?}");
        let mut plain = Vec::new();
        std::io::Read::read_to_end(
            &mut flate2::read::MultiGzDecoder::new(&hdfs.hadoop_read(&f.path)[..]),
            &mut plain,
        )
        .expect("gunzip");
        copies.push(local(&format!("gz-{i}.avro"), plain));
    }
    let (codecs, mut records) = avro_dump(&copies);
    assert_eq!(codecs, ["null", "null", "null"]);
    // Files are named by a counter that starts at the sink's start time: sorted by path is
    // written order only within one run; compare as sets of bodies.
    records.sort();
    let mut sorted = want.clone();
    sorted.sort();
    assert_eq!(records, sorted, "the rolled gzip files");
}
