//! The HDFS sink end to end: a `flumen agent` process writes into a real HDFS (the shared
//! MiniDFSCluster of `hdfs_cluster.rs`), and the files are read back with Hadoop's own client
//! and readers (`SeqCheck`: SequenceFile.Reader, and the codec Hadoop picks for a compressed
//! stream). Each test writes under its own HDFS directory, `/t/<test>-<pid>`, so the tests
//! share one cluster and run in parallel.
//!
//! A test waits until the monitoring endpoint shows every sink's takes committed, then sends
//! SIGTERM and checks the files: every event exactly once, nothing left in use, and the files
//! where bucketing and rolling say they should be.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use crate::agent_proc::{json, AgentProcess};
use crate::hdfs_cluster::{run_java, HdfsEntry, MiniHdfs};

/// A directory of its own for one test.
fn test_dir(name: &str) -> String {
    format!("/t/{name}-{}", std::process::id())
}

/// A file channel `c` under `dir`, sized for the tests.
fn file_channel(c: &str, dir: &Path) -> String {
    format!(
        "a1.channels.{c}.type = file\n\
         a1.channels.{c}.checkpointDir = {cp}\n\
         a1.channels.{c}.dataDirs = {data}\n\
         a1.channels.{c}.minimumRequiredSpace = 1048576\n",
        cp = dir.join(c).join("checkpoint").display(),
        data = dir.join(c).join("data").display(),
    )
}

/// Starts the agent from `props` with the monitoring server on; returns it and the port.
fn start(dir: &Path, props: &str, tag: &str) -> (AgentProcess, u16) {
    start_env(dir, props, tag, &[])
}

/// [`start`] with extra environment variables.
fn start_env(dir: &Path, props: &str, tag: &str, env: &[(&str, &str)]) -> (AgentProcess, u16) {
    crate::agent_proc::start_monitored(dir, props, tag, env)
}

/// Waits until each sink in `sinks` has committed takes of `n` events.
fn wait_drained(run: &mut AgentProcess, mport: u16, sinks: &[&str], n: u64) {
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

/// SIGTERM; the agent must exit 0.
fn stop(run: AgentProcess) {
    let (status, log) = run.terminate();
    assert!(status.success(), "agent exit {status}:\n{log}");
}

/// The files under `dir`, all closed and none under an in-use name.
fn closed_files(hdfs: &MiniHdfs, dir: &str) -> Vec<HdfsEntry> {
    let files = hdfs.hadoop_ls(dir);
    assert!(!files.is_empty(), "no files under {dir}");
    for f in &files {
        assert!(
            f.closed && !f.path.ends_with(".tmp"),
            "{} still in use after a clean shutdown: {files:?}",
            f.path
        );
    }
    files
}

/// Counts each line of `text`.
fn count_lines(text: &str, counts: &mut BTreeMap<String, u32>) -> usize {
    let mut n = 0;
    for line in text.lines() {
        *counts.entry(line.to_string()).or_default() += 1;
        n += 1;
    }
    n
}

/// Asserts `counts` holds "0".."n-1" exactly once each.
fn assert_exactly_once(what: &str, counts: &BTreeMap<String, u32>, n: u64) {
    let dups: Vec<_> = counts.iter().filter(|(_, c)| **c > 1).take(5).collect();
    let missing: Vec<u64> = (0..n)
        .filter(|i| !counts.contains_key(&i.to_string()))
        .take(5)
        .collect();
    assert!(
        dups.is_empty() && missing.is_empty() && counts.len() as u64 == n,
        "{what}: {} distinct of {n}; duplicates (first 5) {dups:?}; missing (first 5) {missing:?}",
        counts.len()
    );
}

/// `SeqCheck` over `args`; its `OK` lines, in order (panics on any `ERR`).
fn seq_check(args: &[String]) -> Vec<String> {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run_java("flumen.test.SeqCheck", &args);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success() && !stdout.contains("\nERR") && !stdout.starts_with("ERR"),
        "SeqCheck failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<String> = stdout.lines().map(str::to_string).collect();
    assert_eq!(lines.len(), args.len(), "{stdout}");
    lines
}

/// The value of `key=` in a SeqCheck line.
fn field<'a>(line: &'a str, key: &str) -> &'a str {
    line.split(' ')
        .find_map(|w| w.strip_prefix(key).and_then(|w| w.strip_prefix('=')))
        .unwrap_or_else(|| panic!("no {key}= in {line}"))
}

#[test]
fn every_event_arrives_once_in_each_file_type_and_hadoop_reads_them() {
    let hdfs = MiniHdfs::shared();
    let dir = tempfile::tempdir().expect("tempdir");
    let base = test_dir("formats");
    let n: u64 = 20_000;
    let mut props = format!(
        "a1.sources = r1\n\
         a1.channels = c1 c2 c3\n\
         a1.sinks = k1 k2 k3\n\
         a1.sources.r1.type = seq\n\
         a1.sources.r1.totalEvents = {n}\n\
         a1.sources.r1.batchSize = 100\n\
         a1.sources.r1.channels = c1 c2 c3\n"
    );
    for (i, (file_type, extra)) in [
        ("DataStream", ""),
        ("SequenceFile", ""),
        ("CompressedStream", "a1.sinks.k3.hdfs.codeC = gzip\n"),
    ]
    .iter()
    .enumerate()
    {
        let (k, c) = (format!("k{}", i + 1), format!("c{}", i + 1));
        props.push_str(&file_channel(&c, dir.path()));
        props.push_str(&format!(
            "a1.sinks.{k}.type = hdfs\n\
             a1.sinks.{k}.channel = {c}\n\
             a1.sinks.{k}.hdfs.path = {url}{base}/{file_type}\n\
             a1.sinks.{k}.hdfs.fileType = {file_type}\n\
             a1.sinks.{k}.hdfs.batchSize = 100\n\
             a1.sinks.{k}.hdfs.rollCount = 3000\n\
             a1.sinks.{k}.hdfs.rollSize = 0\n\
             a1.sinks.{k}.hdfs.rollInterval = 0\n\
             {extra}",
            url = hdfs.url(),
        ));
    }
    let (mut run, mport) = start(dir.path(), &props, "formats");
    wait_drained(&mut run, mport, &["k1", "k2", "k3"], n);
    stop(run);

    // DataStream: the bodies, one per line, 3000 per file but the last.
    let files = closed_files(hdfs, &format!("{base}/DataStream"));
    assert_eq!(
        files.len(),
        7,
        "rollCount 3000 over 20000 events: {files:?}"
    );
    let mut counts = BTreeMap::new();
    for f in &files {
        let text = String::from_utf8(hdfs.hadoop_read(&f.path)).expect("utf-8");
        let lines = count_lines(&text, &mut counts);
        assert!(lines == 3000 || lines == 2000, "{}: {lines} lines", f.path);
    }
    assert_exactly_once("DataStream", &counts, n);

    // SequenceFile: Hadoop's SequenceFile.Reader sees Flume's classes and every body once.
    let files = closed_files(hdfs, &format!("{base}/SequenceFile"));
    let args: Vec<String> = files
        .iter()
        .flat_map(|f| {
            let uri = format!("{}{}", hdfs.url(), f.path);
            [format!("seq:{uri}"), format!("seqvalues:{uri}")]
        })
        .collect();
    let mut counts = BTreeMap::new();
    for pair in seq_check(&args).chunks(2) {
        assert_eq!(field(&pair[0], "key"), "org.apache.hadoop.io.LongWritable");
        assert_eq!(
            field(&pair[0], "value"),
            "org.apache.hadoop.io.BytesWritable"
        );
        assert_eq!(field(&pair[0], "compression"), "NONE");
        let values = field(&pair[1], "values").replace(',', "\n");
        let lines = count_lines(&values, &mut counts);
        assert_eq!(lines.to_string(), field(&pair[1], "records"));
    }
    assert_exactly_once("SequenceFile", &counts, n);

    // CompressedStream gzip: Hadoop's GzipCodec decompresses each file to what flate2 does.
    let files = closed_files(hdfs, &format!("{base}/CompressedStream"));
    assert!(files.iter().all(|f| f.path.ends_with(".gz")), "{files:?}");
    let args: Vec<String> = files
        .iter()
        .map(|f| format!("stream:{}{}", hdfs.url(), f.path))
        .collect();
    let checked = seq_check(&args);
    let mut counts = BTreeMap::new();
    for (f, line) in files.iter().zip(&checked) {
        assert_eq!(
            field(line, "codec"),
            "org.apache.hadoop.io.compress.GzipCodec"
        );
        let raw = hdfs.hadoop_read(&f.path);
        let mut text = String::new();
        flate2::read::MultiGzDecoder::new(&raw[..])
            .read_to_string(&mut text)
            .expect("gunzip");
        assert_eq!(
            field(line, "crc"),
            format!("{:x}", crc32fast::hash(text.as_bytes())),
            "{}",
            f.path
        );
        let lines = count_lines(&text, &mut counts);
        assert_eq!(lines.to_string(), field(line, "lines"));
    }
    assert_exactly_once("CompressedStream", &counts, n);
}

#[test]
fn files_land_in_buckets_by_header_and_event_time_and_headers_cannot_escape() {
    let hdfs = MiniHdfs::shared();
    let dir = tempfile::tempdir().expect("tempdir");
    let base = test_dir("buckets");
    let n: u64 = 500;
    let mut props = String::from(
        "a1.sources = r1 r2 r3\n\
         a1.channels = c1\n\
         a1.sinks = k1\n",
    );
    props.push_str(&file_channel("c1", dir.path()));
    // Each source stamps its events with a data centre and a fixed event time (2023-11-14
    // 22:13:20 UTC and 2023-11-16 02:00:00 UTC), so the expected buckets are exact.
    for (r, dc, ts) in [
        ("r1", "east", "1700000000000"),
        ("r2", "west", "1700100000000"),
        ("r3", "../../escape", "1700000000000"),
    ] {
        props.push_str(&format!(
            "a1.sources.{r}.type = seq\n\
             a1.sources.{r}.totalEvents = {n}\n\
             a1.sources.{r}.batchSize = 50\n\
             a1.sources.{r}.channels = c1\n\
             a1.sources.{r}.interceptors = dc ts\n\
             a1.sources.{r}.interceptors.dc.type = static\n\
             a1.sources.{r}.interceptors.dc.key = dc\n\
             a1.sources.{r}.interceptors.dc.value = {dc}\n\
             a1.sources.{r}.interceptors.ts.type = static\n\
             a1.sources.{r}.interceptors.ts.key = timestamp\n\
             a1.sources.{r}.interceptors.ts.value = {ts}\n"
        ));
    }
    props.push_str(&format!(
        "a1.sinks.k1.type = hdfs\n\
         a1.sinks.k1.channel = c1\n\
         a1.sinks.k1.hdfs.path = {url}{base}/%{{dc}}/%Y-%m-%d/%H\n\
         a1.sinks.k1.hdfs.filePrefix = events-%{{dc}}\n\
         a1.sinks.k1.hdfs.timeZone = UTC\n\
         a1.sinks.k1.hdfs.fileType = DataStream\n\
         a1.sinks.k1.hdfs.rollCount = 0\n\
         a1.sinks.k1.hdfs.rollSize = 0\n\
         a1.sinks.k1.hdfs.rollInterval = 0\n",
        url = hdfs.url(),
    ));
    let (mut run, mport) = start(dir.path(), &props, "buckets");
    wait_drained(&mut run, mport, &["k1"], 3 * n);
    stop(run);

    let files = closed_files(hdfs, &base);
    let mut by_dir: BTreeMap<String, u64> = BTreeMap::new();
    for f in &files {
        let rel = f
            .path
            .strip_prefix(&format!("{base}/"))
            .expect("under base");
        let (d, name) = rel.rsplit_once('/').expect("a directory");
        let dc = d.split('/').next().expect("dc");
        assert!(name.starts_with(&format!("events-{dc}.")), "{name} in {d}");
        let text = String::from_utf8(hdfs.hadoop_read(&f.path)).expect("utf-8");
        *by_dir.entry(d.to_string()).or_default() += text.lines().count() as u64;
    }
    let expected: BTreeMap<String, u64> = [
        ("..%2F..%2Fescape/2023-11-14/22", n),
        ("east/2023-11-14/22", n),
        ("west/2023-11-16/02", n),
    ]
    .into_iter()
    .map(|(d, c)| (d.to_string(), c))
    .collect();
    assert_eq!(by_dir, expected, "{files:?}");
    assert!(hdfs.hadoop_ls("/escape").is_empty());
    assert!(hdfs.hadoop_ls("/t/escape").is_empty());
}

#[test]
fn files_roll_by_count_by_size_and_by_interval() {
    let hdfs = MiniHdfs::shared();
    let dir = tempfile::tempdir().expect("tempdir");
    let base = test_dir("rolling");
    let n: u64 = 3000;
    // 100-byte bodies at 1500 events/s: about 2 s of traffic, so the 1 s interval rolls.
    let mut props = format!(
        "a1.sources = r1\n\
         a1.channels = c1 c2 c3\n\
         a1.sinks = count size interval\n\
         a1.sources.r1.type = stress\n\
         a1.sources.r1.size = 100\n\
         a1.sources.r1.maxTotalEvents = {n}\n\
         a1.sources.r1.maxEventsPerSecond = 1500\n\
         a1.sources.r1.batchSize = 50\n\
         a1.sources.r1.channels = c1 c2 c3\n"
    );
    for (k, c, roll) in [
        ("count", "c1", "rollCount = 500\na1.sinks.count.hdfs.rollSize = 0\na1.sinks.count.hdfs.rollInterval = 0"),
        ("size", "c2", "rollSize = 20000\na1.sinks.size.hdfs.rollCount = 0\na1.sinks.size.hdfs.rollInterval = 0"),
        ("interval", "c3", "rollInterval = 1\na1.sinks.interval.hdfs.rollCount = 0\na1.sinks.interval.hdfs.rollSize = 0"),
    ] {
        props.push_str(&file_channel(c, dir.path()));
        props.push_str(&format!(
            "a1.sinks.{k}.type = hdfs\n\
             a1.sinks.{k}.channel = {c}\n\
             a1.sinks.{k}.hdfs.path = {url}{base}/{k}\n\
             a1.sinks.{k}.hdfs.fileType = SequenceFile\n\
             a1.sinks.{k}.hdfs.batchSize = 50\n\
             a1.sinks.{k}.hdfs.{roll}\n",
            url = hdfs.url(),
        ));
    }
    let (mut run, mport) = start(dir.path(), &props, "rolling");
    wait_drained(&mut run, mport, &["count", "size", "interval"], n);
    stop(run);

    let records = |sink: &str| -> Vec<u64> {
        let files = closed_files(hdfs, &format!("{base}/{sink}"));
        let args: Vec<String> = files
            .iter()
            .map(|f| format!("seq:{}{}", hdfs.url(), f.path))
            .collect();
        seq_check(&args)
            .iter()
            .map(|l| field(l, "records").parse().expect("records"))
            .collect()
    };
    // rollCount 500: six files of exactly 500 events.
    assert_eq!(records("count"), vec![500; 6]);
    // rollSize 20000 body bytes: a file is closed once its bodies reach 20000 bytes, i.e.
    // after 200 bodies of 100 bytes.
    assert_eq!(records("size"), vec![200; 15]);
    // rollInterval 1 s over about 2 s of traffic: several files, every event once.
    let by_time = records("interval");
    assert!(
        by_time.len() >= 2,
        "one file for 2 s of events: {by_time:?}"
    );
    assert_eq!(by_time.iter().sum::<u64>(), n, "{by_time:?}");
}

#[test]
fn hdfs_without_a_host_means_the_default_filesystem_of_hadoop_conf_dir() {
    default_filesystem("hdfs://", "HADOOP_CONF_DIR", "hadoop-conf", "defaultfs");
}

/// A plain `hdfs.path` goes where Hadoop sends it: with only `HADOOP_HOME` set, to the
/// `fs.defaultFS` of `$HADOOP_HOME/etc/hadoop/core-site.xml` (it used to be written locally
/// without a word).
#[test]
fn a_plain_path_means_the_default_filesystem_of_hadoop_home() {
    default_filesystem("", "HADOOP_HOME", "hadoop-home/etc/hadoop", "plainpath");
}

/// Runs 1000 events into `<scheme><base>` with a core-site.xml naming the test cluster in
/// `<dir>/<conf_sub>`, found through the environment variable `var` (set to `conf_sub`'s
/// first component), and checks each arrived once on the cluster.
fn default_filesystem(scheme: &str, var: &str, conf_sub: &str, name: &str) {
    let hdfs = MiniHdfs::shared();
    let dir = tempfile::tempdir().expect("tempdir");
    let conf_dir = dir.path().join(conf_sub);
    std::fs::create_dir_all(&conf_dir).expect("mkdir");
    std::fs::write(
        conf_dir.join("core-site.xml"),
        format!(
            "<?xml version=\"1.0\"?>\n<configuration>\n  <property>\n    \
             <name>fs.defaultFS</name>\n    <value>{}</value>\n  </property>\n\
             </configuration>\n",
            hdfs.url()
        ),
    )
    .expect("write core-site.xml");
    let base = test_dir(name);
    let n: u64 = 1000;
    let props = format!(
        "a1.sources = r1\n\
         a1.channels = c1\n\
         a1.sinks = k1\n\
         a1.sources.r1.type = seq\n\
         a1.sources.r1.totalEvents = {n}\n\
         a1.sources.r1.batchSize = 100\n\
         a1.sources.r1.channels = c1\n\
         {channel}\
         a1.sinks.k1.type = hdfs\n\
         a1.sinks.k1.channel = c1\n\
         a1.sinks.k1.hdfs.path = {scheme}{base}\n\
         a1.sinks.k1.hdfs.fileType = DataStream\n\
         a1.sinks.k1.hdfs.rollCount = 0\n\
         a1.sinks.k1.hdfs.rollSize = 0\n\
         a1.sinks.k1.hdfs.rollInterval = 0\n",
        channel = file_channel("c1", dir.path()),
    );
    let top = conf_sub.split('/').next().unwrap_or(conf_sub);
    let var_value = dir.path().join(top).display().to_string();
    let (mut run, mport) = start_env(dir.path(), &props, name, &[(var, var_value.as_str())]);
    wait_drained(&mut run, mport, &["k1"], n);
    stop(run);
    let mut counts = BTreeMap::new();
    for f in closed_files(hdfs, &base) {
        let text = String::from_utf8(hdfs.hadoop_read(&f.path)).expect("utf-8");
        count_lines(&text, &mut counts);
    }
    assert_exactly_once(&format!("`{scheme}{base}` with {var}"), &counts, n);
}
