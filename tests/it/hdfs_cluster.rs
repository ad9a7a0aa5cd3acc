//! The Java side of the HDFS tests: builds the Maven project under `tests/hdfs` once per test
//! process (a file lock keeps parallel test processes from building it at the same time) and
//! runs its main classes with `java -cp`. A machine without `java` or `mvn` fails these tests
//! with a message that says so: they never skip silently.
//!
//! It also runs a real HDFS, `MiniHdfs` (a MiniDFSCluster in a `java` child process):
//! `MiniHdfs::shared()` for ordinary tests (one cluster per test process, one HDFS directory
//! per test such as `/t/<test name>`), `MiniHdfs::start()` for fault tests, which stop and
//! restart its NameNode or DataNode with `command("stop-namenode")` and the like. Tests read
//! files back with Hadoop's own client through `hadoop_ls(dir)` (path, length, closed or still
//! open) and `hadoop_read(path)` (bytes). `short_retry_config()` makes hdfs-native give up on a
//! stopped NameNode in about a second instead of about three minutes.
//!
//! `MiniHdfs::start_ha()` runs an HA nameservice instead (`hdfs://ns1`, NameNodes `nn1` and
//! `nn2`): `ha()` has what a client's `HADOOP_CONF_DIR` needs (`write_hadoop_conf`),
//! `failover()` swaps the active NameNode and `kill_active()` crashes it (the other one takes
//! over).
#![allow(dead_code)]

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The Maven project with the MiniDFSCluster launcher and the format checkers.
pub fn java_project_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("hdfs")
}

/// The `java -cp` classpath for the project's main classes: its compiled classes plus every
/// dependency jar. Builds the project on first use.
pub fn java_classpath() -> &'static str {
    static CP: OnceLock<String> = OnceLock::new();
    CP.get_or_init(|| crate::java::maven_classpath("hdfs"))
}

/// A `java` command for main class `class` of the project (JVM flags sized for tests).
pub fn java_command(class: &str) -> Command {
    let mut cmd = Command::new("java");
    cmd.args([
        "-Xmx512m",
        "-XX:+UseSerialGC",
        "-cp",
        java_classpath(),
        class,
    ]);
    cmd
}

/// Runs main class `class` with `args` to completion.
pub fn run_java(class: &str, args: &[&str]) -> Output {
    java_command(class).args(args).output().expect("run java")
}

// ---- The cluster harness: a MiniDFSCluster per test process, or a private one. ----
//
// `MiniHdfs::shared()` is one cluster per test process (tests use one HDFS directory each,
// e.g. `/t/<test name>`); `MiniHdfs::start()` is a private cluster for fault tests, which stop
// and restart its nodes with `command`. The launcher is `flumen.test.MiniHdfs` (its Javadoc
// lists the commands). Files can be read back with Hadoop's own client: `hadoop_ls(dir)` lists
// them (length, closed or still open) and `hadoop_read(path)` returns a file's bytes (up to
// the synced length of a file still open).
//
// The launcher shuts its cluster down and deletes its directory when its stdin closes, so a
// test process that ends, even by kill -9, takes its clusters with it; `Drop` closes stdin and
// waits. The launcher's stderr (Hadoop's log at WARN) goes to `<dir>/launcher.log`, whose tail
// is in every panic message about the cluster.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a cluster may take to start (about 3-10 s; a cold Maven build is not counted).
const READY_DEADLINE: Duration = Duration::from_secs(90);
/// How long a command may take (a NameNode restart takes about 4 s).
const COMMAND_DEADLINE: Duration = Duration::from_secs(120);
/// How long a clean shutdown may take before the launcher is killed.
const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(30);

/// A running MiniDFSCluster (one NameNode, one DataNode, replication 1, permissions off,
/// 16 MiB blocks) in a `java` child process.
pub struct MiniHdfs {
    child: Mutex<Child>,
    /// stdin (None once closed) and the receiver of stdout lines, locked together so that
    /// concurrent commands never get each other's answers.
    io: Mutex<(Option<ChildStdin>, Receiver<String>)>,
    url: String,
    dir: PathBuf,
    /// The nameservice of an HA cluster (`start_ha`).
    ha: Option<HaNameservice>,
}

/// An HA cluster's nameservice as a client configures it: the id and each NameNode's id and
/// RPC address (`127.0.0.1:PORT`, ephemeral).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HaNameservice {
    /// The nameservice id, `ns1`: the authority of `hdfs://ns1/...`.
    pub id: String,
    /// `(namenode id, host:port)`, in the order of `dfs.ha.namenodes.<id>`.
    pub namenodes: Vec<(String, String)>,
}

impl HaNameservice {
    /// Parses the launcher's `HA ns1 nn1=127.0.0.1:P1 nn2=127.0.0.1:P2` line.
    fn parse(line: &str) -> Option<HaNameservice> {
        let mut words = line.strip_prefix("HA ")?.split_whitespace();
        let id = words.next()?.to_string();
        let namenodes = words
            .map(|w| {
                w.split_once('=')
                    .map(|(nn, addr)| (nn.to_string(), addr.to_string()))
            })
            .collect::<Option<Vec<_>>>()?;
        (!namenodes.is_empty()).then_some(HaNameservice { id, namenodes })
    }

    /// `hdfs://<id>`.
    pub fn url(&self) -> String {
        format!("hdfs://{}", self.id)
    }

    /// Writes a Hadoop client configuration for this nameservice into `conf_dir` (created if
    /// missing), as an administrator would: core-site.xml with `fs.defaultFS = hdfs://<id>`,
    /// hdfs-site.xml with `dfs.nameservices`, `dfs.ha.namenodes.<id>`, each
    /// `dfs.namenode.rpc-address.<id>.<nn>` and `ConfiguredFailoverProxyProvider`, plus `extra`
    /// hdfs-site.xml properties.
    pub fn write_hadoop_conf(&self, conf_dir: &Path, extra: &[(&str, &str)]) {
        let id = &self.id;
        let ids: Vec<&str> = self.namenodes.iter().map(|(nn, _)| nn.as_str()).collect();
        let mut hdfs_site = vec![
            ("dfs.nameservices".to_string(), id.clone()),
            (format!("dfs.ha.namenodes.{id}"), ids.join(",")),
        ];
        for (nn, addr) in &self.namenodes {
            hdfs_site.push((format!("dfs.namenode.rpc-address.{id}.{nn}"), addr.clone()));
        }
        hdfs_site.push((
            format!("dfs.client.failover.proxy.provider.{id}"),
            "org.apache.hadoop.hdfs.server.namenode.ha.ConfiguredFailoverProxyProvider".into(),
        ));
        hdfs_site.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        std::fs::create_dir_all(conf_dir).expect("create the Hadoop conf dir");
        let core_site = [("fs.defaultFS".to_string(), self.url())];
        std::fs::write(conf_dir.join("core-site.xml"), hadoop_xml(&core_site))
            .expect("write core-site.xml");
        std::fs::write(conf_dir.join("hdfs-site.xml"), hadoop_xml(&hdfs_site))
            .expect("write hdfs-site.xml");
    }
}

/// A Hadoop `<configuration>` file with `props` (names and values need no XML escaping).
fn hadoop_xml(props: &[(String, String)]) -> String {
    let mut xml = String::from("<?xml version=\"1.0\"?>\n<configuration>\n");
    for (name, value) in props {
        assert!(
            !format!("{name}{value}").contains(['<', '>', '&']),
            "{name}={value} needs XML escaping"
        );
        xml.push_str(&format!(
            "  <property>\n    <name>{name}</name>\n    <value>{value}</value>\n  </property>\n"
        ));
    }
    xml.push_str("</configuration>\n");
    xml
}

/// A file as Hadoop's own client lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HdfsEntry {
    /// The absolute path inside HDFS, e.g. `/t/roll/FlumeData.1.tmp`.
    pub path: String,
    /// The length the NameNode reports (the synced length of a file still open).
    pub len: u64,
    /// False while the file is still open for writing (its lease not released).
    pub closed: bool,
}

impl MiniHdfs {
    /// The cluster shared by every test of this process, started on first use. Tests must not
    /// stop or restart its nodes (use `start()` for that) and should each use their own
    /// directory.
    pub fn shared() -> &'static MiniHdfs {
        static SHARED: OnceLock<MiniHdfs> = OnceLock::new();
        SHARED.get_or_init(MiniHdfs::start)
    }

    /// Starts a private cluster on ephemeral ports (for tests that stop or restart nodes).
    pub fn start() -> MiniHdfs {
        MiniHdfs::launch(false)
    }

    /// Starts a private HA cluster: nameservice `ns1` (`url()` is `hdfs://ns1`), NameNodes
    /// `nn1` (active) and `nn2` (standby) on ephemeral ports, one DataNode. `hadoop_ls` and
    /// `hadoop_read` go through Hadoop's HA client; `failover()` swaps the active NameNode.
    pub fn start_ha() -> MiniHdfs {
        MiniHdfs::launch(true)
    }

    fn launch(ha: bool) -> MiniHdfs {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "flumen-minihdfs-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("create the cluster directory");
        let log = File::create(dir.join("launcher.log")).expect("create launcher.log");
        java_classpath(); // builds the Java project on first use: not part of the start time
        let started = Instant::now();
        let mut child = java_command("flumen.test.MiniHdfs")
            .arg(&dir)
            .args(ha.then_some("--ha"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn java flumen.test.MiniHdfs");
        let stdout = child.stdout.take().expect("the launcher's stdout");
        let stdin = child.stdin.take().expect("the launcher's stdin");
        let (tx, lines) = mpsc::channel();
        std::thread::Builder::new()
            .name("minihdfs-stdout".into())
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
        // An HA launcher follows READY with its nameservice line at once.
        let second = if ha {
            lines.recv_timeout(READY_DEADLINE).ok()
        } else {
            None
        };
        let nameservice = second.as_deref().and_then(HaNameservice::parse);
        let url = match first.as_deref().map(|l| l.strip_prefix("READY ")) {
            Ok(Some(url)) if ha == nameservice.is_some() => url.to_string(),
            _ => {
                let _ = child.kill();
                let status = child.wait();
                let tail = log_tail(&dir);
                let _ = std::fs::remove_dir_all(&dir);
                panic!(
                    "MiniHdfs did not become ready within {READY_DEADLINE:?} (first line: \
                     {first:?}, HA line: {second:?}, exit: {status:?}); launcher log \
                     tail:\n{tail}"
                );
            }
        };
        eprintln!(
            "MiniHdfs {url} ready in {:?} ({})",
            started.elapsed(),
            dir.display()
        );
        MiniHdfs {
            child: Mutex::new(child),
            io: Mutex::new((Some(stdin), lines)),
            url,
            dir,
            ha: nameservice,
        }
    }

    /// The cluster's URL, `hdfs://127.0.0.1:PORT` (stable across NameNode restarts), or
    /// `hdfs://ns1` for an HA cluster.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// An HA cluster's nameservice (`start_ha`); `None` for a single-NameNode cluster.
    pub fn ha(&self) -> Option<&HaNameservice> {
        self.ha.as_ref()
    }

    /// HA only: makes the active NameNode standby and the other one active (a graceful
    /// failover, as `hdfs haadmin -failover`); returns the id of the now active NameNode.
    pub fn failover(&self) -> String {
        self.ha_command("failover")
    }

    /// HA only: shuts the active NameNode down (calls in flight lose their connection, its
    /// port is refused from then on) and makes the other one active, as after a crash; returns
    /// the id of the now active NameNode. The killed one stays down.
    pub fn kill_active(&self) -> String {
        self.ha_command("kill-active")
    }

    /// `failover` or `kill-active`; the now active NameNode's id.
    fn ha_command(&self, cmd: &str) -> String {
        let answer = self.command_ok(cmd);
        match answer.strip_prefix("active=") {
            Some(nn) => nn.to_string(),
            None => panic!("MiniHdfs: {cmd} answered {answer:?}"),
        }
    }

    /// Sends one launcher command (`stop-namenode`, `start-namenode`, `stop-datanode`,
    /// `start-datanode`, `failover`, `kill-active`, `ls`, `get`, `ping`; arguments separated by tabs) and returns its
    /// one-line answer, which starts with `OK` or `ERR`. Panics if no answer comes within
    /// two minutes or the launcher died.
    pub fn command(&self, cmd: &str) -> String {
        let mut io = self.io.lock().unwrap_or_else(|e| e.into_inner());
        let (stdin, lines) = &mut *io;
        let stdin = stdin.as_mut().expect("the launcher's stdin is closed");
        if let Err(e) = writeln!(stdin, "{cmd}").and_then(|()| stdin.flush()) {
            panic!(
                "MiniHdfs: sending {cmd:?} failed: {e}; launcher log tail:\n{}",
                log_tail(&self.dir)
            );
        }
        match lines.recv_timeout(COMMAND_DEADLINE) {
            Ok(answer) => answer,
            Err(RecvTimeoutError::Timeout) => panic!(
                "MiniHdfs: no answer to {cmd:?} within {COMMAND_DEADLINE:?}; launcher log \
                 tail:\n{}",
                log_tail(&self.dir)
            ),
            Err(RecvTimeoutError::Disconnected) => panic!(
                "MiniHdfs: the launcher exited while running {cmd:?}; launcher log tail:\n{}",
                log_tail(&self.dir)
            ),
        }
    }

    /// Like `command`, but panics unless the answer starts with `OK`; returns the rest.
    pub fn command_ok(&self, cmd: &str) -> String {
        let answer = self.command(cmd);
        match answer.strip_prefix("OK") {
            Some(rest) => rest.trim_start_matches([' ', '\t']).to_string(),
            None => panic!("MiniHdfs: {cmd:?} answered {answer:?}"),
        }
    }

    /// The files under `dir` (recursively), as Hadoop's own client lists them, sorted by path;
    /// empty if `dir` does not exist.
    pub fn hadoop_ls(&self, dir: &str) -> Vec<HdfsEntry> {
        assert!(
            !dir.contains(['\t', '\n']),
            "HDFS path with a tab or newline: {dir:?}"
        );
        let answer = self.command_ok(&format!("ls\t{dir}"));
        if answer.is_empty() {
            return Vec::new();
        }
        let fields: Vec<&str> = answer.split('\t').collect();
        assert!(
            fields.len().is_multiple_of(3),
            "MiniHdfs: bad ls answer {answer:?}"
        );
        let mut entries: Vec<HdfsEntry> = fields
            .chunks(3)
            .map(|f| HdfsEntry {
                path: f[0].to_string(),
                len: f[1].parse().expect("ls: a length"),
                closed: f[2] == "closed",
            })
            .collect();
        entries.sort_by(|a, b| a.path.cmp(&b.path));
        entries
    }

    /// The bytes of HDFS file `path` as Hadoop's own reader sees them (up to the synced
    /// length for a file still being written). Panics if the file cannot be read.
    pub fn hadoop_read(&self, path: &str) -> Vec<u8> {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        assert!(
            !path.contains(['\t', '\n']),
            "HDFS path with a tab or newline: {path:?}"
        );
        let local = self
            .dir
            .join(format!("get-{}", SEQ.fetch_add(1, Ordering::Relaxed)));
        let answer = self.command_ok(&format!("get\t{path}\t{}", local.display()));
        let bytes = std::fs::read(&local).expect("read the file the launcher copied");
        let _ = std::fs::remove_file(&local);
        assert_eq!(answer, bytes.len().to_string(), "MiniHdfs: get {path}");
        bytes
    }
}

impl Drop for MiniHdfs {
    fn drop(&mut self) {
        // Closing stdin is the launcher's signal to shut the cluster down and delete its dir.
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
                    eprintln!(
                        "MiniHdfs {}: no clean shutdown within {SHUTDOWN_DEADLINE:?}, killing it",
                        self.url
                    );
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// hdfs-native settings for tests that stop the NameNode: the defaults retry a refused
/// NameNode connection for about 180 s; these make a call fail within a second or so.
pub fn short_retry_config() -> Vec<(&'static str, &'static str)> {
    vec![
        ("dfs.client.failover.max.attempts", "1"),
        ("dfs.client.failover.sleep.base.millis", "50"),
        ("dfs.client.failover.sleep.max.millis", "200"),
    ]
}

/// The last 60 lines of a cluster's launcher log.
fn log_tail(dir: &Path) -> String {
    let text = std::fs::read_to_string(dir.join("launcher.log")).unwrap_or_default();
    let mut tail: VecDeque<&str> = VecDeque::new();
    for line in text.lines() {
        if tail.len() == 60 {
            tail.pop_front();
        }
        tail.push_back(line);
    }
    Vec::from(tail).join("\n")
}
