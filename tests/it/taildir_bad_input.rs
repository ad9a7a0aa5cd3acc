//! TAILDIR against hostile files, through the `flumen agent` binary: a 1 GiB line, binary
//! garbage, a file deleted under the reader and a directory the agent may not list. Each gets
//! a clear log line, memory stays bounded, and the source keeps serving the other files.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::agent_proc::{
    complete_lines, newline_count, peak_rss_kib, unprivileged_prefix, AgentProcess,
};

fn open_to_all(p: &Path) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o777)).expect("chmod");
}

#[test]
fn taildir_survives_a_huge_line_garbage_a_deleted_file_and_an_unlistable_directory() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    open_to_all(dir);
    for d in ["big", "ok", "locked", "out", "pos"] {
        std::fs::create_dir(dir.join(d)).expect("mkdir");
        open_to_all(&dir.join(d));
    }
    // 1 GiB without a newline between two short lines; sparse, so it costs no disk.
    let huge = dir.join("big").join("huge.log");
    {
        let mut f = std::fs::File::create(&huge).expect("create");
        f.write_all(b"before\n").expect("write");
        f.set_len(7 + (1 << 30)).expect("extend");
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&huge)
            .expect("open");
        f.write_all(b"\nafter\n").expect("write");
    }
    // Binary garbage: every byte value, newlines included.
    let garbage: Vec<u8> = (0..64 * 1024u32).map(|i| (i * 7919 % 256) as u8).collect();
    let garbage_newlines = garbage.iter().filter(|&&b| b == b'\n').count();
    std::fs::write(dir.join("big").join("garbage.log"), &garbage).expect("write");
    std::fs::write(dir.join("locked").join("secret.log"), "secret\n").expect("write");
    let ok = dir.join("ok").join("app.log");
    std::fs::write(&ok, "ok-0\nok-1\n").expect("write");
    let doomed = dir.join("ok").join("doomed.log");
    std::fs::write(&doomed, "doomed-0\n").expect("write");
    for f in [&huge, &ok, &doomed] {
        open_to_all(f);
    }
    std::fs::set_permissions(dir.join("locked"), std::fs::Permissions::from_mode(0o000))
        .expect("chmod");
    let conf = dir.join("agent.properties");
    std::fs::write(
        &conf,
        format!(
            "a1.sources = r1\n\
             a1.channels = c1\n\
             a1.sinks = k1\n\
             a1.sources.r1.type = TAILDIR\n\
             a1.sources.r1.filegroups = big ok locked\n\
             a1.sources.r1.filegroups.big = {d}/big/.*\\\\.log\n\
             a1.sources.r1.filegroups.ok = {d}/ok/.*\\\\.log\n\
             a1.sources.r1.filegroups.locked = {d}/locked/.*\\\\.log\n\
             a1.sources.r1.positionFile = {d}/pos/taildir_position.json\n\
             a1.sources.r1.maxLineLength = 1000\n\
             a1.sources.r1.channels = c1\n\
             a1.channels.c1.type = memory\n\
             a1.channels.c1.capacity = 100000\n\
             a1.channels.c1.transactionCapacity = 1000\n\
             a1.sinks.k1.type = file_roll\n\
             a1.sinks.k1.channel = c1\n\
             a1.sinks.k1.sink.directory = {d}/out\n\
             a1.sinks.k1.sink.rollInterval = 0\n",
            d = dir.display()
        ),
    )
    .expect("write config");
    // Root lists any directory: the agent runs as `nobody` then, so the permission is real.
    let prefix = unprivileged_prefix();
    let mut agent = AgentProcess::start_prefixed(dir, &conf, "a1", "bad", &[], &[], prefix);
    let out = dir.join("out");
    agent.wait_for("the first lines of every readable file", |_| {
        let l = complete_lines(&out);
        l.contains_key("ok-1") && l.contains_key("doomed-0") && l.contains_key("before")
    });
    // Deleted under the reader: the other files keep flowing.
    std::fs::remove_file(&doomed).expect("delete");
    std::fs::OpenOptions::new()
        .append(true)
        .open(&ok)
        .expect("open")
        .write_all(b"ok-2\n")
        .expect("append");
    agent.wait_for("the line after the huge one, and ok-2", |_| {
        let l = complete_lines(&out);
        l.contains_key("after") && l.contains_key("ok-2")
    });
    agent.wait_for("every garbage line", |_| {
        // before, huge (cut), after, ok-0..2, doomed-0, and the garbage's lines (its last
        // bytes have no newline and stay held).
        newline_count(&out) >= 7 + garbage_newlines
    });
    let peak = peak_rss_kib(agent.child.id());
    let (_, log) = agent.terminate();
    let lines = complete_lines(&out);
    assert!(
        lines
            .keys()
            .any(|l| l.len() == 1000 && l.bytes().all(|b| b == 0)),
        "the 1 GiB line was not put cut to maxLineLength"
    );
    assert!(
        !lines.contains_key("secret"),
        "read a directory it may not list"
    );
    assert!(
        log.contains("longer than maxLineLength (1000 bytes) cut to it"),
        "no warning for the cut line:\n{log}"
    );
    assert!(
        log.contains("cannot list") && log.contains("locked"),
        "no log line for the unlistable directory:\n{log}"
    );
    // Reading 1 GiB kept at most a few 64 KiB chunks and the 1000-byte head.
    assert!(
        peak < 200 * 1024,
        "peak RSS {peak} KiB while reading a 1 GiB line"
    );
}
