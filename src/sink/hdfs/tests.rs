//! Unit tests of the hdfs sink on the local filesystem: buckets, rolling, renaming, and what
//! a failed batch leaves behind.

#![allow(clippy::unwrap_used)]

use std::path::Path;

use super::format::{Codec, FileType};
use super::*;
use crate::event::Headers;
use crate::sink::serializer::SerializerSpec;

fn local(dir: &Path, template: &str) -> HdfsSinkConfig {
    // file:// so that a HADOOP_CONF_DIR in the test's environment cannot move the files.
    let mut cfg = HdfsSinkConfig::new(&format!("file://{}/{template}", dir.display()));
    cfg.format.file_type = FileType::DataStream;
    cfg.time_zone = Some("UTC".into());
    cfg.roll_size = 0;
    cfg.roll_count = 0;
    cfg.roll_interval_secs = 0;
    cfg
}

fn ev(body: &str, headers: &[(&str, &str)]) -> Event {
    let h: Headers = headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Event::with_headers(h, body.as_bytes().to_vec())
}

/// Every file under `dir`, relative, sorted.
fn files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}

fn read_all(dir: &Path, names: &[String]) -> String {
    names
        .iter()
        .map(|n| std::fs::read_to_string(dir.join(n)).unwrap())
        .collect()
}

#[test]
fn rolls_by_count_renames_closed_files_and_closes_the_rest_at_stop() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = local(dir.path(), "out");
    cfg.roll_count = 3;
    let mut sink = HdfsSink::new("k1", &cfg).unwrap();
    let events: Vec<Event> = (0..7).map(|i| ev(&format!("e{i}"), &[])).collect();
    sink.process(&events).unwrap();
    let before = files(dir.path());
    assert_eq!(before.len(), 3, "{before:?}");
    assert_eq!(
        before.iter().filter(|f| f.ends_with(".tmp")).count(),
        1,
        "only the file still below rollCount is in use: {before:?}"
    );
    sink.stop().unwrap();
    let after = files(dir.path());
    assert!(after
        .iter()
        .all(|f| f.starts_with("out/FlumeData.") && !f.ends_with(".tmp")));
    // Counters increase, so sorting by name is sorting by age.
    let text = read_all(dir.path(), &after);
    assert_eq!(text, "e0\ne1\ne2\ne3\ne4\ne5\ne6\n");
}

#[test]
fn buckets_by_header_and_event_time_and_escapes_hostile_headers() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = local(dir.path(), "out/%{host}/%Y-%m-%d");
    let mut sink = HdfsSink::new("k1", &cfg).unwrap();
    let day1 = "1700000000000"; // 2023-11-14 UTC
    let day2 = "1700100000000"; // 2023-11-16 UTC
    sink.process(&[
        ev("a", &[("host", "web1"), ("timestamp", day1)]),
        ev("b", &[("host", "web2"), ("timestamp", day1)]),
        ev("c", &[("host", "web1"), ("timestamp", day2)]),
        ev("d", &[("host", "../../etc"), ("timestamp", day1)]),
    ])
    .unwrap();
    sink.stop().unwrap();
    let all = files(dir.path());
    let dirs: Vec<String> = all
        .iter()
        .map(|f| f.rsplit_once('/').unwrap().0.to_string())
        .collect();
    assert_eq!(
        dirs,
        [
            "out/..%2F..%2Fetc/2023-11-14",
            "out/web1/2023-11-14",
            "out/web1/2023-11-16",
            "out/web2/2023-11-14"
        ],
        "{all:?}"
    );
    assert!(!dir.path().join("etc").exists());
}

#[test]
fn a_missing_timestamp_fails_the_batch_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = local(dir.path(), "out/%Y");
    let mut sink = HdfsSink::new("k1", &cfg).unwrap();
    let e = sink
        .process(&[ev("a", &[("timestamp", "1700000000000")]), ev("b", &[])])
        .unwrap_err();
    assert!(e.to_string().contains("timestamp"), "{e}");
    // The same event fails the same way on every retry: only a fixed producer or
    // hdfs.useLocalTimeStamp helps.
    assert_eq!(e.retry(), Retry::Permanent);
    assert!(
        matches!(
            e.cause(),
            SinkCause::Render {
                key: "hdfs.path",
                source: path::PathError::MissingTimestamp { .. },
                ..
            }
        ),
        "{e:?}"
    );
    assert!(!dir.path().join("out").exists(), "{:?}", files(dir.path()));
    // With useLocalTimeStamp the same events go through.
    let mut cfg = local(dir.path(), "out/%Y");
    cfg.use_local_timestamp = true;
    let mut sink = HdfsSink::new("k1", &cfg).unwrap();
    sink.process(&[ev("b", &[])]).unwrap();
    sink.stop().unwrap();
    assert_eq!(files(dir.path()).len(), 1);
}

#[test]
fn max_open_files_closes_the_least_recently_used_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = local(dir.path(), "out/%{k}");
    cfg.max_open_files = 2;
    let mut sink = HdfsSink::new("k1", &cfg).unwrap();
    for k in ["a", "b", "a", "c"] {
        sink.process(&[ev(k, &[("k", k)])]).unwrap();
    }
    let open: Vec<String> = files(dir.path())
        .into_iter()
        .filter(|f| f.ends_with(".tmp"))
        .collect();
    assert_eq!(open.len(), 2, "{open:?}");
    assert!(open.iter().all(|f| !f.starts_with("out/b/")), "{open:?}");
    sink.stop().unwrap();
    assert!(files(dir.path()).iter().all(|f| !f.ends_with(".tmp")));
}

#[test]
fn files_opened_and_closed_are_counted_as_flume_counts_connections() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = local(dir.path(), "out");
    cfg.roll_count = 2;
    let mut sink = HdfsSink::new("k1", &cfg).unwrap();
    let counters = ComponentCounters::detached("k1", crate::metrics::ComponentType::Sink);
    sink.attach_counters(Arc::clone(&counters));
    let events: Vec<Event> = (0..5).map(|i| ev(&i.to_string(), &[])).collect();
    sink.process(&events).unwrap();
    assert_eq!(counters.get(Counter::ConnectionCreatedCount), 3);
    assert_eq!(counters.get(Counter::ConnectionClosedCount), 2);
    sink.stop().unwrap();
    assert_eq!(counters.get(Counter::ConnectionClosedCount), 3);
    assert_eq!(counters.get(Counter::ConnectionFailedCount), 0);
}

#[test]
fn a_batch_bringing_several_new_buckets_to_a_full_sink_goes_through() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = local(dir.path(), "out/%{k}");
    cfg.max_open_files = 2;
    let mut sink = HdfsSink::new("k1", &cfg).unwrap();
    sink.process(&[ev("x", &[("k", "x")]), ev("y", &[("k", "y")])])
        .unwrap();
    // Two new buckets at the limit: the old ones make room, not the new ones.
    sink.process(&[ev("a", &[("k", "a")]), ev("b", &[("k", "b")])])
        .unwrap();
    // More new buckets in one batch than the limit: the batch still goes through.
    let many: Vec<Event> = ["c", "d", "e"].iter().map(|k| ev(k, &[("k", k)])).collect();
    sink.process(&many).unwrap();
    sink.stop().unwrap();
    let text = read_all(dir.path(), &files(dir.path()));
    let mut lines: Vec<&str> = text.lines().collect();
    lines.sort_unstable();
    assert_eq!(lines, ["a", "b", "c", "d", "e", "x", "y"]);
}

#[test]
fn roll_interval_and_idle_timeout_close_files_without_new_events() {
    for (interval, idle) in [(1, 0), (0, 1)] {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = local(dir.path(), "out");
        cfg.roll_interval_secs = interval;
        cfg.idle_timeout_secs = idle;
        let mut sink = HdfsSink::new("k1", &cfg).unwrap();
        sink.process(&[ev("x", &[])]).unwrap();
        assert!(files(dir.path())[0].ends_with(".tmp"));
        let deadline = Instant::now() + Duration::from_secs(10);
        while files(dir.path())[0].ends_with(".tmp") {
            assert!(
                Instant::now() < deadline,
                "not rolled: {:?}",
                files(dir.path())
            );
            sink.tick();
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(read_all(dir.path(), &files(dir.path())), "x\n");
    }
}

#[test]
fn compressed_stream_and_sequence_file_names_and_headers() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = local(dir.path(), "gz");
    cfg.format.file_type = FileType::CompressedStream;
    cfg.format.codec = Some(Codec::Gzip);
    let mut sink = HdfsSink::new("k1", &cfg).unwrap();
    sink.process(&[ev("a", &[])]).unwrap();
    sink.process(&[ev("b", &[])]).unwrap();
    sink.stop().unwrap();
    let f = files(dir.path());
    assert!(f[0].ends_with(".gz"), "{f:?}");
    let raw = std::fs::read(dir.path().join(&f[0])).unwrap();
    let mut text = String::new();
    std::io::Read::read_to_string(&mut flate2::read::MultiGzDecoder::new(&raw[..]), &mut text)
        .unwrap();
    assert_eq!(text, "a\nb\n");

    let mut cfg = local(dir.path(), "seq");
    cfg.format.file_type = FileType::SequenceFile;
    cfg.file_suffix = ".seq".into();
    let mut sink = HdfsSink::new("k1", &cfg).unwrap();
    sink.process(&[ev("a", &[])]).unwrap();
    sink.stop().unwrap();
    let f: Vec<String> = files(dir.path())
        .into_iter()
        .filter(|f| f.starts_with("seq/"))
        .collect();
    assert!(f[0].ends_with(".seq"), "{f:?}");
    let raw = std::fs::read(dir.path().join(&f[0])).unwrap();
    assert_eq!(&raw[..4], b"SEQ\x06");
}

#[test]
fn a_taken_name_is_skipped_not_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = local(dir.path(), "out");
    let mut sink = HdfsSink::new("k1", &cfg).unwrap();
    // Occupy the next few names the sink would pick.
    std::fs::create_dir_all(dir.path().join("out")).unwrap();
    for i in 1..=3 {
        let name = format!("out/FlumeData.{}", sink.counter + i);
        std::fs::write(dir.path().join(name), "old").unwrap();
    }
    sink.process(&[ev("new", &[])]).unwrap();
    sink.stop().unwrap();
    let f = files(dir.path());
    assert_eq!(f.len(), 4, "{f:?}");
    assert_eq!(read_all(dir.path(), &f), "oldoldoldnew\n");
}

/// What [`FaultyFs`] does to the next write and close.
#[derive(Default)]
struct Faults {
    /// The next write reaches the file only in part (about half), then fails, as a
    /// write cut by a DataNode outage.
    torn_write: bool,
    /// The next close fails, leaving the file open.
    failing_close: bool,
}

/// The local filesystem, with the faults `plan` asks for.
struct FaultyFs(Arc<parking_lot::Mutex<Faults>>);

struct FaultyFile(Box<dyn SinkFile>, Arc<parking_lot::Mutex<Faults>>);

impl SinkFs for FaultyFs {
    fn create(&mut self, path: &str) -> Result<Box<dyn SinkFile>, FsError> {
        Ok(Box::new(FaultyFile(LocalFs.create(path)?, self.0.clone())))
    }
    fn rename(&mut self, from: &str, to: &str) -> Result<(), FsError> {
        LocalFs.rename(from, to)
    }
    fn exists(&mut self, path: &str) -> Result<bool, FsError> {
        LocalFs.exists(path)
    }
    fn recover_lease(&mut self, path: &str) -> Result<bool, FsError> {
        LocalFs.recover_lease(path)
    }
    fn truncate(&mut self, path: &str, len: u64) -> Result<bool, FsError> {
        LocalFs.truncate(path, len)
    }
    fn delete(&mut self, path: &str) -> Result<(), FsError> {
        LocalFs.delete(path)
    }
    fn describe(&self) -> String {
        "a faulty local filesystem".into()
    }
}

fn injected(op: &'static str) -> FsError {
    FsError::Local {
        op,
        path: "injected".into(),
        source: std::io::Error::other("injected fault"),
    }
}

impl SinkFile for FaultyFile {
    fn write(&mut self, data: Bytes) -> Result<(), FsError> {
        if std::mem::take(&mut self.1.lock().torn_write) {
            // Mid-line, as a cut pipeline leaves it.
            self.0.write(data.slice(..data.len() / 2 + 3))?;
            self.0.sync()?;
            return Err(injected("writing"));
        }
        self.0.write(data)
    }
    fn sync(&mut self) -> Result<(), FsError> {
        self.0.sync()
    }
    fn close(&mut self) -> Result<(), FsError> {
        if std::mem::take(&mut self.1.lock().failing_close) {
            return Err(injected("closing"));
        }
        self.0.close()
    }
}

fn numbered(range: std::ops::Range<u32>) -> Vec<Event> {
    range.map(|i| ev(&format!("{i:05}"), &[])).collect()
}

/// Runs `first` (committed), then `failing` with `faults` (it must fail), then `failing`
/// again (the retry, which succeeds), then stops; returns the files left and their text.
fn batch_fails_midway(first: u32, faults: Faults) -> (Vec<String>, String) {
    let (dir, names) = batch_fails_midway_with(first, faults, SerializerSpec::default());
    let text = read_all(dir.path(), &names);
    (names, text)
}

/// [`batch_fails_midway`] writing with `serializer`; returns the directory and the files.
fn batch_fails_midway_with(
    first: u32,
    faults: Faults,
    serializer: SerializerSpec,
) -> (tempfile::TempDir, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = local(dir.path(), "out");
    cfg.format.serializer = serializer;
    let mut sink = HdfsSink::new("k1", &cfg).unwrap();
    let plan = Arc::new(parking_lot::Mutex::new(Faults::default()));
    sink.fs = Box::new(FaultyFs(plan.clone()));
    if first > 0 {
        sink.process(&numbered(0..first)).unwrap();
    }
    *plan.lock() = faults;
    let failing = numbered(first..first + 50);
    let e = sink
        .process(&failing)
        .expect_err("the injected fault fails the batch");
    // An I/O error of no known kind: retried, as a cut pipeline would be.
    assert!(e.is_retryable(), "{e}");
    sink.process(&failing).unwrap();
    sink.stop().unwrap();
    let names = files(dir.path());
    (dir, names)
}

/// With AVRO_EVENT, a file cut back after a failed batch is still a complete container file
/// (the cut falls after the last committed batch's block), and the retried batch's events
/// are the only copy.
#[test]
fn a_failed_batch_leaves_complete_avro_container_files() {
    use crate::sink::serializer::avro_event::tests::read_container;
    use crate::sink::serializer::{AvroCodec, AvroEventConfig};
    for (first, failing_close) in [(30, false), (30, true), (0, false)] {
        let faults = Faults {
            torn_write: true,
            failing_close,
        };
        let spec = SerializerSpec::AvroEvent(AvroEventConfig {
            codec: AvroCodec::Deflate,
            ..AvroEventConfig::default()
        });
        let (dir, names) = batch_fails_midway_with(first, faults, spec);
        let mut bodies = Vec::new();
        for n in &names {
            assert!(!n.ends_with(".tmp"), "{names:?}");
            let (_, events) = read_container(&std::fs::read(dir.path().join(n)).unwrap());
            bodies.extend(events.into_iter().map(|e| e.body().clone()));
        }
        bodies.sort();
        let expected: Vec<Bytes> = numbered(0..first + 50)
            .into_iter()
            .map(|e| e.body().clone())
            .collect();
        assert_eq!(
            bodies, expected,
            "first {first}, failing close {failing_close}"
        );
    }
}

/// A batch whose write reached a file only in part (a DataNode outage mid-write) leaves
/// none of its bytes under a final name: the file is cut back to its committed events
/// before the rename (or deleted if it has none), so no torn line ever appears, and the
/// retried batch is the only copy of its events.
#[test]
fn a_failed_batchs_bytes_are_cut_off_before_the_file_gets_its_final_name() {
    let cases = [
        ("file with committed events, close works", 30, false),
        ("file with committed events, close fails", 30, true),
        ("file opened by the failed batch, close works", 0, false),
        ("file opened by the failed batch, close fails", 0, true),
    ];
    for (what, first, failing_close) in cases {
        let faults = Faults {
            torn_write: true,
            failing_close,
        };
        let (names, text) = batch_fails_midway(first, faults);
        assert!(
            names
                .iter()
                .all(|n| n.starts_with("out/FlumeData.") && !n.ends_with(".tmp")),
            "{what}: {names:?}"
        );
        let expected: String = (0..first + 50).map(|i| format!("{i:05}\n")).collect();
        assert_eq!(text, expected, "{what}: files {names:?}");
    }
}

/// A path whose parent is a regular file (ENOTDIR: refused to root too) fails every batch
/// permanently with one cause, whatever file name each attempt picks, and the sink writes
/// again once the file is moved away.
#[test]
fn a_path_under_a_regular_file_fails_permanently_until_it_is_moved_away() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("blocker");
    std::fs::write(&blocker, "not a directory").unwrap();
    let mut sink = HdfsSink::new("k1", &local(dir.path(), "blocker/out")).unwrap();
    let first = sink.process(&[ev("a", &[])]).unwrap_err();
    assert_eq!(first.retry(), Retry::Permanent, "{first}");
    assert!(
        matches!(first.cause(), SinkCause::Fs(FsError::Local { .. })),
        "{first:?}"
    );
    let second = sink.process(&[ev("a", &[])]).unwrap_err();
    assert_eq!(first.cause_key(), second.cause_key(), "{first} / {second}");
    std::fs::remove_file(&blocker).unwrap();
    sink.process(&[ev("a", &[])]).unwrap();
    sink.stop().unwrap();
    assert_eq!(read_all(dir.path(), &files(dir.path())), "a\n");
}

/// A template literal that climbs out of the base after an escape is refused per event,
/// permanently: no retry renders it differently.
#[test]
fn a_directory_outside_the_base_is_a_permanent_failure() {
    let dir = tempfile::tempdir().unwrap();
    let mut sink = HdfsSink::new("k1", &local(dir.path(), "out/%{k}/../..")).unwrap();
    let e = sink.process(&[ev("a", &[("k", "v")])]).unwrap_err();
    assert_eq!(e.retry(), Retry::Permanent, "{e}");
    assert!(
        matches!(
            e.cause(),
            SinkCause::Render {
                source: path::PathError::EscapesBase { .. },
                ..
            }
        ),
        "{e:?}"
    );
    assert!(files(dir.path()).is_empty());
}

#[test]
fn targets_split_into_filesystem_and_path() {
    let t = split_target("hdfs://nn:8020/flume/%Y").expect("hdfs");
    assert_eq!(t.hdfs_url.as_deref(), Some("hdfs://nn:8020"));
    assert_eq!(t.path, "/flume/%Y");
    let t = split_target("hdfs:///flume").expect("default fs");
    assert_eq!(t.hdfs_url.as_deref(), Some("hdfs://"));
    assert_eq!(t.path, "/flume");
    let t = split_target("file:///var/x").expect("file");
    assert_eq!((t.hdfs_url, t.path.as_str()), (None, "/var/x"));
    let t = split_target("data/out").expect("plain");
    assert_eq!((t.hdfs_url, t.path.as_str()), (None, "data/out"));
    assert!(split_target("hdfs://%{host}:8020/x").is_err());
    assert!(split_target("s3a://bucket/x").is_err());
    assert!(split_target("file://relative").is_err());
}

fn hadoop_conf(default_fs: &str) -> (tempfile::TempDir, default_fs::HadoopEnv) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("core-site.xml"),
        format!(
            "<configuration><property><name>fs.defaultFS</name><value>{default_fs}</value>\
             </property></configuration>"
        ),
    )
    .unwrap();
    let env = default_fs::HadoopEnv {
        conf_dir: Some(dir.path().to_path_buf()),
        home: None,
    };
    (dir, env)
}

/// A plain absolute hdfs.path goes where Hadoop would send it: fs.defaultFS of the Hadoop
/// configuration, else the local filesystem; a relative one stays local.
#[test]
fn a_plain_path_goes_to_the_default_filesystem() {
    let placement = |path: &str, env: &default_fs::HadoopEnv| {
        let cfg = HdfsSinkConfig::new(path);
        let target = split_target(path).unwrap();
        filesystem_of("k1", &cfg, &target, env)
    };
    let place = |path: &str, env: &default_fs::HadoopEnv| placement(path, env).map(|p| p.url);
    let (_d, hdfs) = hadoop_conf("hdfs://nn.example:8020/");
    assert_eq!(
        place("/user/flume/%Y", &hdfs).unwrap().as_deref(),
        Some("hdfs://nn.example:8020")
    );
    assert_eq!(place("./out", &hdfs).unwrap(), None, "relative stays local");
    assert_eq!(place("file:///out", &hdfs).unwrap(), None);
    assert_eq!(
        place("hdfs://other:9000/x", &hdfs).unwrap().as_deref(),
        Some("hdfs://other:9000")
    );
    let (_d, local) = hadoop_conf("file:///");
    let p = placement("/user/flume", &local).unwrap();
    assert_eq!(
        p,
        Placement {
            url: None,
            note: None
        },
        "Hadoop's own answer: local, silently"
    );

    // No Hadoop configuration: local, with a warning naming what was looked at.
    let p = placement("/user/flume", &default_fs::HadoopEnv::default()).unwrap();
    assert_eq!(p.url, None);
    let note = p.note.unwrap();
    assert!(
        note.contains("hdfs.path `/user/flume`")
            && note.contains("$HADOOP_CONF_DIR and $HADOOP_HOME are not set")
            && note.contains("file:///user/flume to say which")
            && !note.contains("  "),
        "{note}"
    );
    // A relative path with an HDFS default: local, and the warning says Flume differs.
    let note = placement("./out", &hdfs).unwrap().note.unwrap();
    assert!(
        note.contains("relative path") && note.contains("hdfs://nn.example:8020"),
        "{note}"
    );

    let (_d, s3) = hadoop_conf("s3a://bucket");
    let e = place("/user/flume", &s3).unwrap_err().to_string();
    assert!(e.contains("s3a") && e.contains("core-site.xml"), "{e}");
}

/// An HDFS client that cannot be built names where hdfs.path was set and the Hadoop files read.
#[test]
fn a_client_that_cannot_be_built_names_the_key_and_the_hadoop_files() {
    let (_d, env) = hadoop_conf("hdfs://");
    let mut cfg = HdfsSinkConfig::new("/user/flume");
    cfg.path_origin = "flume.conf:7: `a1.sinks.k1.hdfs.path`".into();
    // hdfs:// with no authority is not a usable default filesystem.
    let target = split_target(&cfg.path).unwrap();
    let url = filesystem_of("k1", &cfg, &target, &env).unwrap().url;
    assert_eq!(url.as_deref(), Some("hdfs://"));
    assert!(
        env.files_read().contains("core-site.xml"),
        "{}",
        env.files_read()
    );

    // The same through the sink, with the setting given as hdfs.config (the process's own
    // HADOOP_CONF_DIR is not touched).
    cfg.hadoop_config = vec![("fs.defaultFS".into(), "hdfs://".into())];
    let e = match HdfsSink::new("k1", &cfg) {
        Ok(_) => panic!("built a client for hdfs:// without a host"),
        Err(e) => e.to_string(),
    };
    assert!(
        e.contains("flume.conf:7: `a1.sinks.k1.hdfs.path` = /user/flume"),
        "{e}"
    );
    assert!(e.contains("Hadoop configuration read:"), "{e}");
}
