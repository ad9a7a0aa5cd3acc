//! The channel tools through the real `flumen` binary, as an operator meets them after disk
//! damage: verify finds the corrupt record (exit 1), repair quarantines it and says how many
//! events were lost, verify is then clean, the channel opens with the default policy, and
//! inspect shows what is left; a benchmark whose stderr is closed still reports; and
//! `flumen config check` reports topologies, warnings and errors of a file without running it.

use std::path::Path;
use std::process::Command;

use flumen::channel::file::FileChannel;
use flumen::channel::{Channel, ChannelError};
use flumen::io::IoKind;

use crate::common::{parse_segment, put_range, segment_files, test_config};

fn flumen(args: &[&str], dir: &Path) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_flumen"))
        .args(args)
        .arg(dir)
        .env("RUST_LOG", "off")
        .output()
        .expect("run the flumen binary");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn verify_repair_verify_then_open_and_inspect() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = test_config(dir.path(), IoKind::Std);
    let ch = FileChannel::open("ops", cfg.clone()).expect("open");
    let batches = 40u64;
    for b in 0..batches {
        put_range(&ch, b * 50..(b + 1) * 50, |_| 400).expect("put");
    }
    ch.close().expect("close");
    drop(ch);

    let data = dir.path().join("data");
    let segs = segment_files(&data);
    assert!(segs.len() >= 2, "expected a sealed segment: {segs:?}");
    let bytes = std::fs::read(&segs[0]).expect("read segment");
    let recs = parse_segment(&bytes);
    let victim = recs[recs.len() / 2].clone();
    assert_eq!(victim.kind, 1);
    let mut damaged = bytes.clone();
    damaged[(victim.offset + victim.len / 2) as usize] ^= 0x40;
    std::fs::write(&segs[0], &damaged).expect("damage");
    let name = segs[0]
        .file_name()
        .and_then(|n| n.to_str())
        .expect("segment name")
        .to_string();

    let (code, out) = flumen(&["channel", "verify", "--dir"], dir.path());
    assert_eq!(code, 1, "verify must fail on corruption:\n{out}");
    assert!(
        out.contains(&name) && out.contains(&victim.offset.to_string()),
        "verify must name the file and offset:\n{out}"
    );

    // Corruption before the checkpoint's replay point is met by a full replay.
    let (code, out) = Command::new(env!("CARGO_BIN_EXE_flumen"))
        .args(["channel", "repair", "--checkpoint-dir"])
        .arg(dir.path().join("checkpoint"))
        .arg("--data-dir")
        .arg(&data)
        .env("RUST_LOG", "off")
        .output()
        .map(|o| {
            (
                o.status.code().unwrap_or(-1),
                String::from_utf8_lossy(&o.stdout).into_owned(),
            )
        })
        .expect("run repair");
    assert_eq!(code, 0, "repair:\n{out}");
    assert!(
        out.contains(&format!("events lost:         {}", victim.seqs.len())),
        "repair must count exactly the damaged batch's events:\n{out}"
    );
    assert!(data
        .join("quarantine")
        .join(format!("seg-{}-{}.bin", &name[4..24], victim.offset))
        .exists());

    let (code, out) = flumen(&["channel", "verify", "--dir"], dir.path());
    assert_eq!(code, 0, "verify after repair:\n{out}");
    assert!(out.contains("quarantined"), "{out}");

    let expected = batches * 50 - victim.seqs.len() as u64;
    match FileChannel::open("ops", cfg) {
        Ok(ch) => {
            assert_eq!(ch.stats().size, expected);
            ch.close().expect("close");
        }
        Err(e @ ChannelError::Corrupt { .. }) => panic!("still corrupt after repair: {e}"),
        Err(e) => panic!("open after repair: {e}"),
    }
    let (code, out) = flumen(&["channel", "inspect", "--dir"], dir.path());
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&expected.to_string()),
        "inspect must show the queue depth:\n{out}"
    );
}

/// A benchmark whose progress nobody reads any more (`2>&1 | head`, a closed log pipe) still
/// finishes and prints its JSON result: writes to a closed stderr are dropped, not a panic.
#[test]
fn a_bench_with_its_stderr_closed_still_prints_its_result() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_flumen"))
        .args([
            "bench", "channel", "--events", "2000", "--warmup", "false", "--dir",
        ])
        .arg(dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run the flumen binary");
    drop(child.stderr.take());
    let out = child.wait_with_output().expect("wait for flumen");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{:?}: {stdout}", out.status);
    let last = stdout.lines().last().unwrap_or_default();
    assert!(
        last.starts_with('{') && last.contains("\"verified\":true"),
        "the JSON result is the last line: {stdout}"
    );
}

/// `flumen config check -f FILE [-n AGENT]` on `text`, with the process's own environment.
fn config_check(text: &str, name: Option<&str>) -> (i32, String, String) {
    let args: Vec<&str> = name.map_or(Vec::new(), |n| vec!["-n", n]);
    config_check_with(text, &args, &[])
}

/// `flumen config check -f <text's file> ARGS` with extra environment variables `vars`.
fn config_check_with(text: &str, args: &[&str], vars: &[(&str, &str)]) -> (i32, String, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("check.conf");
    std::fs::write(&file, text).expect("write the config file");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_flumen"));
    cmd.args(["config", "check", "-f"]).arg(&file).args(args);
    cmd.envs(vars.iter().copied());
    let out = cmd
        .env("RUST_LOG", "off")
        .output()
        .expect("run the flumen binary");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const TWO_AGENTS: &str = "\
a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = seq
a1.sources.r1.channels = c1
a1.sources.r1.interceptors = i1 i2
a1.sources.r1.interceptors.i1.type = timestamp
a1.sources.r1.interceptors.i2.type = host
a1.channels.c1.type = memory
a1.sinks.k1.type = null
a1.sinks.k1.channel = c1

b2.sources = s
b2.channels = m
b2.sinks = log
b2.sources.s.type = seq
b2.sources.s.channels = m
b2.channels.m.type = memory
b2.sinks.log.type = logger
b2.sinks.log.channel = m
";

/// Without `-n`, every agent of the file is checked: both topologies, both `ok`, exit 0, and
/// nothing was started (the report is on stdout alone).
#[test]
fn config_check_prints_every_agents_topology() {
    let (code, out, err) = config_check(TWO_AGENTS, None);
    assert_eq!(code, 0, "{out}{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [
            "agent a1: source r1 (seq) -> interceptors i1 (timestamp), i2 (host) -> channel c1 (memory) -> sink k1 (null)",
            "agent a1: ok",
            "agent b2: source s (seq) -> channel m (memory) -> sink log (logger)",
            "agent b2: ok",
        ],
        "{out}"
    );
    // `-n` checks that agent alone.
    let (code, out, _) = config_check(TWO_AGENTS, Some("b2"));
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains("agent a1"), "{out}");
    assert!(out.contains("agent b2: ok"), "{out}");
}

/// A misspelt key is a warning naming the file, line and the nearest known key; the agent
/// still checks ok.
#[test]
fn config_check_warns_about_an_unknown_key() {
    let text = format!("{TWO_AGENTS}a1.channels.c1.capacty = 500\n");
    let (code, out, err) = config_check(&text, None);
    assert_eq!(code, 0, "{out}{err}");
    let warning = out
        .lines()
        .find(|l| l.starts_with("warning: "))
        .unwrap_or_else(|| panic!("no warning in:\n{out}"));
    assert!(
        warning.contains("check.conf:21:")
            && warning.contains("a1.channels.c1.capacty")
            && warning.contains("a1.channels.c1.capacity"),
        "{warning}"
    );
    assert!(
        out.contains("agent a1: ok") && out.contains("agent b2: ok"),
        "{out}"
    );
}

/// An agent that does not parse is reported with its error's line, the other agents are still
/// checked, and the exit status is 1.
#[test]
fn config_check_reports_an_error_with_its_line() {
    let text = TWO_AGENTS.replace(
        "b2.channels.m.type = memory",
        "b2.channels.m.type = memory\nb2.channels.m.capacity = lots",
    );
    let (code, out, err) = config_check(&text, None);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("agent a1: ok"), "{out}");
    let error = out
        .lines()
        .find(|l| l.starts_with("agent b2: error: "))
        .unwrap_or_else(|| panic!("no error for b2 in:\n{out}"));
    assert!(
        error.contains("check.conf:19:") && error.contains("b2.channels.m.capacity"),
        "{error}"
    );
    assert!(!out.contains("agent b2: ok"), "{out}");
}

/// `-n` naming an agent the file does not define fails and lists the agents it does define.
#[test]
fn config_check_of_an_agent_the_file_does_not_define() {
    let (code, out, err) = config_check(TWO_AGENTS, Some("a2"));
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains("agent a2: error:") && out.contains("`a2`") && out.contains("a1, b2"),
        "{out}"
    );
    let (code, out, _) = config_check(TWO_AGENTS, None);
    assert_eq!(code, 0, "{out}");
}

/// A file that cannot be read is one error line and exit 1.
#[test]
fn config_check_of_a_missing_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("nope.conf");
    let out = Command::new(env!("CARGO_BIN_EXE_flumen"))
        .args(["config", "check", "-f"])
        .arg(&missing)
        .env("RUST_LOG", "off")
        .output()
        .expect("run the flumen binary");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(
        stdout.starts_with("error: ") && stdout.contains("nope.conf"),
        "{stdout}"
    );
}

/// Flume's `-D` switches reach the file as they do in Flume: a plain `${CAP}` is not an
/// environment variable until `-DpropertiesImplementation=...EnvVarResolverProperties` says so
/// (until then the error names the key and the reference, not "bad value"), and `${sys:KEY}`
/// reads `-DKEY=value`.
#[test]
fn config_check_takes_flumes_dash_d_properties() {
    let text = TWO_AGENTS.replace(
        "a1.channels.c1.type = memory",
        "a1.channels.c1.type = memory\na1.channels.c1.capacity = ${CAP}\n\
         a1.channels.c1.transactionCapacity = ${sys:tx}",
    );
    let vars = [("CAP", "500")];
    let (code, out, err) = config_check_with(&text, &["-n", "a1", "-Dtx=100"], &vars);
    assert_eq!(code, 1, "{out}{err}");
    let error = out
        .lines()
        .find(|l| l.starts_with("agent a1: error: "))
        .unwrap_or_else(|| panic!("no error in:\n{out}"));
    assert!(
        error.contains("check.conf:")
            && error.contains("`a1.channels.c1.capacity`")
            && error.contains("`${CAP}`")
            && error.contains("not resolved"),
        "{error}"
    );

    let resolver = "-DpropertiesImplementation=org.apache.flume.node.EnvVarResolverProperties";
    let (code, out, err) = config_check_with(&text, &["-n", "a1", "-Dtx=100", resolver], &vars);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("agent a1: ok"), "{out}");

    // Without -Dtx the system property is missing: the error says how to give it.
    let (code, out, _) = config_check_with(&text, &["-n", "a1", resolver], &vars);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("`${sys:tx}`") && out.contains("-Dtx=VALUE"),
        "{out}"
    );
}

/// A key whose agent prefix is a near miss of an agent of the file is reported with the agent
/// it most likely meant (Flume ignores such keys without a word).
#[test]
fn config_check_suggests_the_agent_for_a_misspelt_prefix() {
    let text = format!("{TWO_AGENTS}a11.sinks.k1.batchSize = 5\n");
    let (code, out, err) = config_check(&text, None);
    assert_eq!(code, 0, "{out}{err}");
    let warnings: Vec<&str> = out.lines().filter(|l| l.starts_with("warning: ")).collect();
    assert_eq!(warnings.len(), 1, "{out}");
    assert!(
        warnings[0].contains("check.conf:21:")
            && warnings[0].contains("`a11` is not an agent of this file")
            && warnings[0].contains("did you mean `a1`?"),
        "{out}"
    );
}

/// A key Flume reads but flumen does not says exactly that, with what to do, instead of a
/// nearest-key guess; a key of another Flume type (kafka.* left on a memory channel) says
/// whose key it is.
#[test]
fn config_check_names_flumes_keys_flumen_does_not_implement() {
    let text = TWO_AGENTS
        .replace(
            "a1.sinks.k1.type = null",
            "a1.sinks.k1.type = hdfs\na1.sinks.k1.hdfs.path = file:///tmp/flumen-check\n\
             a1.sinks.k1.hdfs.txnEventMax = 100",
        )
        .replace(
            "a1.channels.c1.type = memory",
            "a1.channels.c1.type = memory\na1.channels.c1.kafka.topic = events",
        );
    let (code, out, err) = config_check(&text, Some("a1"));
    assert_eq!(code, 0, "{out}{err}");
    let warning = |key: &str| {
        out.lines()
            .find(|l| l.starts_with("warning: ") && l.contains(key))
            .unwrap_or_else(|| panic!("no warning about {key} in:\n{out}"))
            .to_string()
    };
    let txn = warning("a1.sinks.k1.hdfs.txnEventMax");
    assert!(
        txn.contains("Flume's key, not implemented by flumen")
            && txn.contains("hdfs.batchSize")
            && !txn.contains("nearest"),
        "{txn}"
    );
    let kafka = warning("a1.channels.c1.kafka.topic");
    assert!(
        kafka.contains("a key of Flume's `kafka` channel") && !kafka.contains("nearest"),
        "{kafka}"
    );
}

/// A file with a problem in every kind of component (and a warning): one run of `config check`
/// and one of `agent` each report every one, in line order, and the agent starts nothing.
const EVERY_PROBLEM: &str = "\
a1.sources = r1 r2 r3
a1.channels = c1 c2
a1.sinks = k1 k2 k3
a1.sources.r1.type = netcat
a1.sources.r1.bind = 127.0.0.1
a1.sources.r1.port = 99999
a1.sources.r1.channels = c1
a1.sources.r2.type = org.apache.flume.source.jms.JMSSource
a1.sources.r2.channels = c1 c9
a1.sources.r3.type = seq
a1.sources.r3.channels = c2
a1.sources.r3.interceptors = i1
a1.sources.r3.interceptors.i1.type = com.example.MyInterceptor$Builder
a1.channels.c1.type = memory
a1.channels.c1.capacity = abc
a1.channels.c2.type = memory
a1.sinks.k1.type = hive
a1.sinks.k1.channel = c1
a1.sinks.k2.type = elasticsearch
a1.sinks.k2.channel = c2
a1.sinks.k3.type = logger
a1.sinks.k3.channel = c2
a1.sinks.k3.maxBytesToLg = 5
";

/// The `file:line` of every error line of `text` (as `config check` or `agent` print them).
fn error_lines(text: &str) -> Vec<usize> {
    text.lines()
        .filter_map(|l| {
            let at = l.find("check.conf:")? + "check.conf:".len();
            let rest = &l[at..];
            let n: String = rest.chars().take_while(char::is_ascii_digit).collect();
            (l.contains("error: ") || l.starts_with("  ")).then(|| n.parse().ok())?
        })
        .collect()
}

#[test]
fn config_check_reports_every_error_of_the_file_in_one_run() {
    let (code, out, err) = config_check(EVERY_PROBLEM, None);
    assert_eq!(code, 1, "{out}{err}");
    assert_eq!(error_lines(&out), [6, 8, 9, 13, 15, 17, 19], "{out}");
    for says in [
        "`a1.sources.r1.port`",
        "Flume's source type `org.apache.flume.source.jms.JMSSource`",
        "names channel `c9`",
        "the custom interceptor class `com.example.MyInterceptor$Builder`",
        "`a1.channels.c1.capacity`",
        "Flume's sink type `hive`",
        "Flume's sink type `elasticsearch`",
    ] {
        assert!(out.contains(says), "missing `{says}` in:\n{out}");
    }
    assert!(
        out.contains("warning: ") && out.contains("maxBytesToLog"),
        "the warning comes in the same run:\n{out}"
    );
    assert!(!out.contains("agent a1: ok"), "{out}");
}

#[test]
fn the_agent_reports_every_error_and_warning_in_one_run_and_starts_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("check.conf");
    std::fs::write(&file, EVERY_PROBLEM).expect("write the config file");
    let out = Command::new(env!("CARGO_BIN_EXE_flumen"))
        .args(["agent", "-n", "a1", "-f"])
        .arg(&file)
        .current_dir(dir.path())
        .env("RUST_LOG", "warn")
        .output()
        .expect("run the flumen binary");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("7 problems"), "{err}");
    assert_eq!(error_lines(&err), [6, 8, 9, 13, 15, 17, 19], "{err}");
    assert!(
        err.contains("maxBytesToLog"),
        "the warning is printed too:\n{err}"
    );
    assert!(!err.contains("started"), "nothing starts:\n{err}");
}
