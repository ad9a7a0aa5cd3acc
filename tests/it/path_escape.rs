//! Values from the data that reach file paths cannot escape their base directory, and no
//! event is lost to a hostile value. Each test runs a real `flumen agent`, feeds it hostile
//! values, stops it, then walks the whole test directory: every file lies under the directory
//! its component was given (canonicalized), nothing appeared beside the test directory or at
//! `/`, and every event was delivered exactly once.
//!
//! - hdfs (to a local `file://` path): `%{header}` in `hdfs.path` and `hdfs.filePrefix` with
//!   `../../x`, `/abs`, `..`, `.`, `%2e%2e`, backslashes, NUL, newlines, unicode, long
//!   values. Written with the value percent-encoded (src/sink/hdfs/path.rs).
//! - file_roll: no header reaches its path (the name is prefix, start time, counter,
//!   extension, all from the configuration); hostile headers change nothing.
//! - spooldir: the only data that reach a path are the spool files' own names (the done
//!   rename appends `fileSuffix` in the same directory; the tracker records the name inside
//!   its JSON, under `trackerDir`). Hostile names: `..`-laden, newlines, backslashes,
//!   unicode, bytes that are not UTF-8.
//! - taildir: file names reach only the position file's JSON; `headers.*` values are
//!   configuration and reach only event headers. The same hostile names.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::agent_proc::{free_port, json, start_monitored, AgentProcess};

/// Every regular file under `root`, recursively (symlinks not followed).
fn walk(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir") {
            let e = e.expect("dir entry");
            let t = e.file_type().expect("file type");
            if t.is_dir() {
                todo.push(e.path());
            } else {
                out.push(e.path());
            }
        }
    }
    out
}

/// Every file under `root` lies under one of `allowed` (canonicalized), and nothing named
/// with `tag` exists beside `root` or at `/`.
fn assert_contained(root: &Path, allowed: &[PathBuf], tag: &str) {
    let allowed: Vec<PathBuf> = allowed
        .iter()
        .map(|a| a.canonicalize().expect("canonicalize an allowed dir"))
        .collect();
    let root_c = root.canonicalize().expect("canonicalize root");
    for f in walk(root) {
        let c = f.canonicalize().expect("canonicalize a file");
        let top_level = c.parent() == Some(root_c.as_path());
        assert!(
            top_level || allowed.iter().any(|a| c.starts_with(a)),
            "{} is outside {allowed:?}",
            c.display()
        );
    }
    let parent = root_c.parent().expect("parent");
    for d in [parent, Path::new("/"), Path::new("/tmp")] {
        for e in std::fs::read_dir(d).expect("read_dir") {
            let name = e.expect("entry").file_name();
            assert!(
                !name.to_string_lossy().contains(tag),
                "{} appeared in {}",
                name.to_string_lossy(),
                d.display()
            );
        }
    }
}

/// Lines of every file under `dir` (`.tmp` files included), counted.
fn lines_under(dir: &Path) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for f in walk(dir) {
        let text = std::fs::read(&f).expect("read an output file");
        for l in text.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            *counts
                .entry(String::from_utf8_lossy(l).into_owned())
                .or_insert(0) += 1;
        }
    }
    counts
}

/// Header values an attacker would try; `tag` makes whatever they might create findable.
fn hostile_values(tag: &str) -> Vec<String> {
    vec![
        format!("../../x-{tag}"),
        format!("../x-{tag}"),
        format!("/abs-{tag}"),
        "..".into(),
        ".".into(),
        "...".into(),
        "%2e%2e".into(),
        format!("%2e%2e%2fx-{tag}"),
        format!("..\\..\\x-{tag}"),
        format!("a\u{0}b-{tag}"),
        format!("line\nbreak-{tag}"),
        format!("a/../../../x-{tag}"),
        "~".into(),
        "$HOME".into(),
        format!("ünïcødé-🚀-{tag}"),
        String::new(),
        "l".repeat(200),
        "L".repeat(5000),
    ]
}

/// POSTs one JSON event (header `h` = `value`, body `body`) to the http source.
fn post(port: u16, value: &str, body: &str) {
    let json_body = serde_json::json!([{ "headers": { "h": value }, "body": body }]).to_string();
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to the http source");
    s.set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    write!(
        s,
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nConnection: close\r\n\
         Content-Length: {}\r\n\r\n{json_body}",
        json_body.len()
    )
    .expect("send");
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{value:?}: {answer}");
}

fn http_source(port: u16) -> String {
    format!(
        "a1.sources = r1\n\
         a1.channels = c1\n\
         a1.sinks = k1\n\
         a1.sources.r1.type = http\n\
         a1.sources.r1.bind = 127.0.0.1\n\
         a1.sources.r1.port = {port}\n\
         a1.sources.r1.channels = c1\n\
         a1.channels.c1.type = memory\n\
         a1.channels.c1.capacity = 10000\n"
    )
}

fn drained(agent: &mut AgentProcess, mport: u16, n: usize) {
    agent.wait_for("the sink to drain every event", |_| {
        crate::agent_proc::try_get(mport, "/metrics").is_some_and(|(_, body)| {
            serde_json::from_str::<serde_json::Value>(&body).is_ok_and(|v| {
                v["SINK.k1"]["EventDrainSuccessCount"].as_str() == Some(&n.to_string())
            })
        })
    });
}

fn tag() -> String {
    format!("esc{}", std::process::id() ^ (free_port() as u32))
}

#[test]
fn hdfs_header_values_cannot_escape_hdfs_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tag = tag();
    let base = dir.path().join("base");
    let port = free_port();
    let props = format!(
        "{}\
         a1.sinks.k1.type = hdfs\n\
         a1.sinks.k1.channel = c1\n\
         a1.sinks.k1.hdfs.path = file://{}/%{{h}}/d\n\
         a1.sinks.k1.hdfs.filePrefix = p-%{{h}}\n\
         a1.sinks.k1.hdfs.fileType = DataStream\n\
         a1.sinks.k1.hdfs.rollCount = 0\n\
         a1.sinks.k1.hdfs.rollSize = 0\n\
         a1.sinks.k1.hdfs.rollInterval = 0\n\
         a1.sinks.k1.hdfs.batchSize = 1\n",
        http_source(port),
        base.display()
    );
    let (mut agent, mport) = start_monitored(dir.path(), &props, "hdfs", &[]);
    json(&mut agent, mport);
    let values = hostile_values(&tag);
    for (i, v) in values.iter().enumerate() {
        post(port, v, &format!("ev-{i}"));
    }
    drained(&mut agent, mport, values.len());
    let (st, log) = agent.terminate();
    assert!(st.success(), "{log}");
    assert_contained(dir.path(), std::slice::from_ref(&base), &tag);
    let lines = lines_under(&base);
    for i in 0..values.len() {
        assert_eq!(lines.get(&format!("ev-{i}")), Some(&1), "{lines:?}\n{log}");
    }
    assert_eq!(lines.len(), values.len(), "{lines:?}");
}

#[test]
fn file_roll_paths_take_no_header() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tag = tag();
    let out = dir.path().join("out");
    let port = free_port();
    let props = format!(
        "{}\
         a1.sinks.k1.type = file_roll\n\
         a1.sinks.k1.channel = c1\n\
         a1.sinks.k1.sink.directory = {}\n\
         a1.sinks.k1.sink.rollInterval = 0\n",
        http_source(port),
        out.display()
    );
    let (mut agent, mport) = start_monitored(dir.path(), &props, "file_roll", &[]);
    json(&mut agent, mport);
    let values = hostile_values(&tag);
    for (i, v) in values.iter().enumerate() {
        post(port, v, &format!("ev-{i}"));
    }
    drained(&mut agent, mport, values.len());
    let (st, log) = agent.terminate();
    assert!(st.success(), "{log}");
    assert_contained(dir.path(), std::slice::from_ref(&out), &tag);
    // One file, directly in the directory, named from the configuration only.
    let files = walk(&out);
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(files[0].parent(), Some(out.as_path()));
    assert!(!files[0].to_string_lossy().contains(&tag));
    let lines = lines_under(&out);
    for i in 0..values.len() {
        assert_eq!(lines.get(&format!("ev-{i}")), Some(&1), "{lines:?}");
    }
}

/// File names an attacker who can drop files would try (a name cannot hold `/` or NUL).
fn hostile_names(tag: &str) -> Vec<Vec<u8>> {
    vec![
        format!("..{tag}").into_bytes(),
        format!("{tag}..").into_bytes(),
        format!("...{tag}").into_bytes(),
        format!("a..b{tag}").into_bytes(),
        format!("line\nbreak{tag}").into_bytes(),
        format!("..\\..\\{tag}").into_bytes(),
        format!("ünïcødé-🚀-{tag}").into_bytes(),
        format!("quote\"{{}}[]{tag}").into_bytes(),
        [b"not-utf8-\xff\xfe-".as_slice(), tag.as_bytes()].concat(),
        format!("{tag}{}", "n".repeat(200)).into_bytes(),
        // 250 bytes: a name, but not once `.COMPLETED` is added.
        format!("{tag}{}", "m".repeat(250 - tag.len())).into_bytes(),
    ]
}

#[test]
fn spooldir_file_names_cannot_escape_the_spool_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tag = tag();
    let spool = dir.path().join("spool");
    let out = dir.path().join("out");
    std::fs::create_dir_all(&spool).expect("mkdir spool");
    let names = hostile_names(&tag);
    for (i, n) in names.iter().enumerate() {
        std::fs::write(spool.join(OsStr::from_bytes(n)), format!("sp-{i}\n")).expect("write");
    }
    let props = format!(
        "a1.sources = r1\n\
         a1.channels = c1\n\
         a1.sinks = k1\n\
         a1.sources.r1.type = spooldir\n\
         a1.sources.r1.spoolDir = {}\n\
         a1.sources.r1.includePattern = [\\\\s\\\\S]*\n\
         a1.sources.r1.fileHeader = true\n\
         a1.sources.r1.basenameHeader = true\n\
         a1.sources.r1.channels = c1\n\
         a1.channels.c1.type = memory\n\
         a1.sinks.k1.type = file_roll\n\
         a1.sinks.k1.channel = c1\n\
         a1.sinks.k1.sink.directory = {}\n\
         a1.sinks.k1.sink.rollInterval = 0\n",
        spool.display(),
        out.display()
    );
    // Hidden names (a leading `.`) are skipped, as Flume skips them; so is a name that has
    // no room for `.COMPLETED`, with an error naming it (its rename would fail, and stop the
    // source, after its events were delivered).
    let too_long = |n: &[u8]| n.len() + ".COMPLETED".len() > 255;
    let read: Vec<usize> = (0..names.len())
        .filter(|&i| names[i][0] != b'.' && !too_long(&names[i]))
        .collect();
    let (mut agent, mport) = start_monitored(dir.path(), &props, "spooldir", &[]);
    drained(&mut agent, mport, read.len());
    agent.wait_for("every file marked done", |_| {
        read.iter().map(|&i| &names[i]).all(|n| {
            let mut done = n.clone();
            done.extend_from_slice(b".COMPLETED");
            spool.join(OsStr::from_bytes(&done)).exists()
        })
    });
    let (st, log) = agent.terminate();
    assert!(st.success(), "{log}");
    assert_contained(dir.path(), &[spool.clone(), out.clone()], &tag);
    let lines = lines_under(&out);
    for &i in &read {
        assert_eq!(lines.get(&format!("sp-{i}")), Some(&1), "{lines:?}\n{log}");
    }
    assert_eq!(lines.len(), read.len(), "{lines:?}");
    for n in names.iter().filter(|n| n[0] == b'.' || too_long(n)) {
        assert!(
            spool.join(OsStr::from_bytes(n)).exists(),
            "a skipped file was touched"
        );
    }
    let errors: Vec<&str> = log.lines().filter(|l| l.contains("ERROR")).collect();
    assert_eq!(errors.len(), 1, "{log}");
    assert!(
        errors[0].contains("skipping")
            && errors[0].contains("mmmm")
            && errors[0].contains("rename it shorter"),
        "{log}"
    );
}

#[test]
fn taildir_file_names_and_headers_cannot_escape() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tag = tag();
    let logs = dir.path().join("logs");
    let out = dir.path().join("out");
    let pos = dir.path().join("pos");
    std::fs::create_dir_all(&logs).expect("mkdir logs");
    let names = hostile_names(&tag);
    for (i, n) in names.iter().enumerate() {
        std::fs::write(logs.join(OsStr::from_bytes(n)), format!("td-{i}\n")).expect("write");
    }
    let props = format!(
        "a1.sources = r1\n\
         a1.channels = c1\n\
         a1.sinks = k1\n\
         a1.sources.r1.type = TAILDIR\n\
         a1.sources.r1.filegroups = f1\n\
         a1.sources.r1.filegroups.f1 = {}/[\\\\s\\\\S]*\n\
         a1.sources.r1.positionFile = {}/taildir.json\n\
         a1.sources.r1.headers.f1.h = ../../x-{tag}\n\
         a1.sources.r1.fileHeader = true\n\
         a1.sources.r1.channels = c1\n\
         a1.channels.c1.type = memory\n\
         a1.sinks.k1.type = file_roll\n\
         a1.sinks.k1.channel = c1\n\
         a1.sinks.k1.sink.directory = {}\n\
         a1.sinks.k1.sink.rollInterval = 0\n",
        logs.display(),
        pos.display(),
        out.display()
    );
    let (mut agent, mport) = start_monitored(dir.path(), &props, "taildir", &[]);
    drained(&mut agent, mport, names.len());
    agent.wait_for("a position file", |_| pos.join("taildir.json").exists());
    let (st, log) = agent.terminate();
    assert!(st.success(), "{log}");
    assert_contained(dir.path(), &[logs.clone(), out.clone(), pos.clone()], &tag);
    let lines = lines_under(&out);
    for i in 0..names.len() {
        assert_eq!(lines.get(&format!("td-{i}")), Some(&1), "{lines:?}\n{log}");
    }
    assert!(!log.contains("ERROR"), "{log}");
    // The position file still parses: Flume's array first.
    let text = std::fs::read_to_string(pos.join("taildir.json")).expect("read positions");
    let mut values = serde_json::Deserializer::from_str(&text).into_iter::<serde_json::Value>();
    let first = values
        .next()
        .expect("a JSON value")
        .expect("the position array parses");
    assert!(first.is_array(), "{text}");
}
