//! The spooldir source's unit tests: the deserializers (bounded lines, charsets, offsets) and
//! the source against a memory channel (delivery, rename, resume from a tracker).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::charset::{Charset, DecodeErrorPolicy};
use super::deserializer::{BlobReader, Body, LineReader, ReadError, Truncated, WINDOW};
use super::tracker::{Identity, Tracker, TrackerFile, VERSION};
use super::*;
use crate::source::lines::testing::{collect_until, memory};

fn lines(
    input: &[u8],
    cs: Charset,
    policy: DecodeErrorPolicy,
    max: usize,
) -> Result<Vec<(String, u64, Option<Truncated>)>, ReadError> {
    let mut r = LineReader::new(input, 0, cs, policy, max, Charset::Utf8);
    let mut out = Vec::new();
    while let Some(Body {
        bytes,
        end,
        truncated,
    }) = r.next_body()?
    {
        out.push((String::from_utf8(bytes).expect("utf8 out"), end, truncated));
    }
    Ok(out)
}

fn texts(input: &[u8], cs: Charset, policy: DecodeErrorPolicy) -> Vec<String> {
    lines(input, cs, policy, 2048)
        .expect("lines")
        .into_iter()
        .map(|(t, _, _)| t)
        .collect()
}

#[test]
fn lines_end_at_newline_keep_cr_and_report_the_next_offset() {
    let got = lines(b"a\r\n\nlast", Charset::Utf8, DecodeErrorPolicy::Fail, 10).expect("ok");
    assert_eq!(
        got,
        [
            ("a\r".to_string(), 3, None),
            (String::new(), 4, None),
            ("last".to_string(), 8, None)
        ]
    );
    assert!(texts(b"", Charset::Utf8, DecodeErrorPolicy::Fail).is_empty());
}

#[test]
fn a_long_line_is_truncated_and_its_rest_dropped_in_bounded_memory() {
    // Much longer than the read window: the rest is scanned, never held.
    let long = "x".repeat(WINDOW * 5 + 17);
    let input = format!("{long}\nshort\n{}\n", "é".repeat(12));
    let got = lines(input.as_bytes(), Charset::Utf8, DecodeErrorPolicy::Fail, 10).expect("ok");
    assert_eq!(got.len(), 3);
    assert_eq!(got[0].0, "x".repeat(10));
    assert_eq!(
        got[0].2,
        Some(Truncated {
            start: 0,
            length: long.len() as u64
        })
    );
    assert_eq!(got[0].1, long.len() as u64 + 1);
    assert_eq!((got[1].0.as_str(), got[1].2), ("short", None));
    assert_eq!(got[2].0, "é".repeat(10));
    // Exactly the limit is not a truncation.
    let got = lines(b"abc\n", Charset::Utf8, DecodeErrorPolicy::Fail, 3).expect("ok");
    assert_eq!(got, [("abc".to_string(), 4, None)]);
}

#[test]
fn decode_error_policies() {
    let bad = b"ok\nbad\xff\xfe here\nend\n";
    match lines(bad, Charset::Utf8, DecodeErrorPolicy::Fail, 100) {
        Err(ReadError::Malformed { offset, .. }) => assert_eq!(offset, 6),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        texts(bad, Charset::Utf8, DecodeErrorPolicy::Replace),
        ["ok", "bad\u{FFFD}\u{FFFD} here", "end"]
    );
    assert_eq!(
        texts(bad, Charset::Utf8, DecodeErrorPolicy::Ignore),
        ["ok", "bad here", "end"]
    );
    // Dropped bytes at the end are no line of their own.
    assert_eq!(
        texts(b"a\n\xff", Charset::Utf8, DecodeErrorPolicy::Ignore),
        ["a"]
    );
    assert_eq!(
        texts(b"caf\xe9\n", Charset::UsAscii, DecodeErrorPolicy::Replace),
        ["caf\u{FFFD}"]
    );
    assert_eq!(
        texts(b"caf\xe9\n", Charset::Latin1, DecodeErrorPolicy::Fail),
        ["café"]
    );
}

#[test]
fn utf16_lines_and_output_charset() {
    let mut input = Vec::new();
    Charset::Utf16Le.encode("un\ndeux\n", &mut input);
    assert_eq!(
        texts(&input, Charset::Utf16Le, DecodeErrorPolicy::Fail),
        ["un", "deux"]
    );
    let mut r = LineReader::new(
        &b"caf\xc3\xa9\n"[..],
        0,
        Charset::Utf8,
        DecodeErrorPolicy::Fail,
        100,
        Charset::Latin1,
    );
    assert_eq!(r.next_body().expect("ok").expect("line").bytes, b"caf\xe9");
}

#[test]
fn blobs_split_at_the_limit() {
    let mut r = BlobReader::new(&b"0123456789"[..], 0, 4);
    let mut got = Vec::new();
    while let Some(b) = r.next_body().expect("read") {
        got.push((b.bytes, b.end, b.truncated.is_some()));
    }
    assert_eq!(
        got,
        [
            (b"0123".to_vec(), 4, true),
            (b"4567".to_vec(), 8, true),
            (b"89".to_vec(), 10, false)
        ]
    );
    let mut r = BlobReader::new(&b"0123"[..], 0, 4);
    assert!(r
        .next_body()
        .expect("read")
        .expect("one")
        .truncated
        .is_none());
    assert!(r.next_body().expect("read").is_none());
}

// ---- The source against a memory channel. ----

fn start(
    cfg: &SpoolDirConfig,
    ch: &Arc<dyn Channel>,
) -> (Arc<AtomicBool>, std::thread::JoinHandle<()>) {
    let src = SpoolDirSource::new(SourceContext::detached("r1", vec![Arc::clone(ch)]), cfg)
        .expect("source");
    let stop = Arc::new(AtomicBool::new(false));
    let s = Arc::clone(&stop);
    let t = std::thread::spawn(move || Box::new(src).run(s));
    (stop, t)
}

fn wait_until(what: &str, cond: impl Fn() -> bool) {
    let end = Instant::now() + Duration::from_secs(30);
    while !cond() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn fast(dir: &std::path::Path) -> SpoolDirConfig {
    SpoolDirConfig {
        poll_delay: Duration::from_millis(20),
        batch_size: 3,
        file_header: true,
        basename_header: true,
        ..SpoolDirConfig::new(dir)
    }
}

#[test]
fn files_become_events_and_are_renamed_once_committed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    std::fs::write(d.join("a.log"), "1\n2\n3\n4\n5\n").expect("write");
    let ch = memory(100, 10);
    let (stop, t) = start(&fast(d), &ch);
    let got = collect_until(ch.as_ref(), 30, "5 lines", |g| g.len() >= 5);
    assert_eq!(got, ["1", "2", "3", "4", "5"]);
    wait_until("the rename", || d.join("a.log.COMPLETED").exists());
    assert!(!d.join("a.log").exists());
    assert!(!d.join(".flumespool").join(tracker::TRACKER_FILE).exists());
    stop.store(true, Ordering::Release);
    t.join().expect("source");
}

#[test]
fn events_carry_the_file_and_basename_headers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    std::fs::write(d.join("h.log"), "x\n").expect("write");
    let ch = memory(100, 10);
    let (stop, t) = start(&fast(d), &ch);
    wait_until("the rename", || d.join("h.log.COMPLETED").exists());
    stop.store(true, Ordering::Release);
    t.join().expect("source");
    let mut tx = ch.take_transaction();
    let mut out = Vec::new();
    tx.take_batch(10, &mut out).expect("take");
    tx.commit().expect("commit");
    assert_eq!(out.len(), 1);
    let abs = std::path::absolute(d.join("h.log")).expect("absolute");
    assert_eq!(
        out[0].header("file"),
        Some(abs.to_str().expect("utf8 path"))
    );
    assert_eq!(out[0].header("basename"), Some("h.log"));
}

fn tracker_for(path: &std::path::Path, committed: u64) -> Tracker {
    let m = std::fs::metadata(path).expect("stat");
    Tracker {
        version: VERSION,
        file: std::path::absolute(path).expect("absolute"),
        identity: Identity::of(&m),
        committed,
    }
}

#[test]
fn a_restart_resumes_at_the_committed_offset() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let f = d.join("r.log");
    std::fs::write(&f, "one\ntwo\nthree\n").expect("write");
    std::fs::create_dir_all(d.join(".flumespool")).expect("tracker dir");
    let tf = TrackerFile::new(&d.join(".flumespool"));
    tf.store(&tracker_for(&f, 4), true).expect("store");
    let ch = memory(100, 10);
    let (stop, t) = start(&fast(d), &ch);
    wait_until("the rename", || d.join("r.log.COMPLETED").exists());
    let got = collect_until(ch.as_ref(), 30, "2 lines", |g| g.len() >= 2);
    assert_eq!(got, ["two", "three"]);
    stop.store(true, Ordering::Release);
    t.join().expect("source");
}

#[test]
fn a_fully_committed_file_is_renamed_without_being_read_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let f = d.join("done.log");
    std::fs::write(&f, "one\ntwo\n").expect("write");
    std::fs::create_dir_all(d.join(".flumespool")).expect("tracker dir");
    TrackerFile::new(&d.join(".flumespool"))
        .store(&tracker_for(&f, 8), true)
        .expect("store");
    let ch = memory(100, 10);
    let (stop, t) = start(&fast(d), &ch);
    wait_until("the rename", || d.join("done.log.COMPLETED").exists());
    stop.store(true, Ordering::Release);
    t.join().expect("source");
    let mut got = Vec::new();
    crate::source::lines::testing::drain(ch.as_ref(), &mut got);
    assert!(got.is_empty(), "{got:?}");
}

#[test]
fn a_missing_spool_dir_is_a_start_error_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("nope");
    let ch = memory(10, 10);
    let e = SpoolDirSource::new(
        SourceContext::detached("r1", vec![ch]),
        &SpoolDirConfig::new(&missing),
    )
    .err()
    .expect("missing dir");
    assert!(
        e.to_string().contains(&missing.display().to_string()),
        "{e}"
    );
}

#[test]
fn a_file_removed_while_read_is_logged_and_the_source_goes_on() {
    use crate::report::capture::{with_captured, Captured};
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    std::fs::write(d.join("a.log"), "1\n2\n3\n4\n5\n").expect("write");
    let ch = memory(100, 10);
    let mut cfg = fast(d);
    cfg.file_header = false;
    cfg.basename_header = false;
    let mut src = SpoolDirSource::new(SourceContext::detached("r1", vec![Arc::clone(&ch)]), &cfg)
        .expect("source");
    let stop = AtomicBool::new(false);
    let log = Captured::default();
    with_captured(&log, || {
        let mut cur = src.pick_next().expect("pick").expect("a.log");
        assert!(matches!(src.step(&mut cur, &stop), Ok(Step::More)));
        // Removed under the reader: the open descriptor still reads it to its end.
        std::fs::remove_file(d.join("a.log")).expect("remove");
        std::fs::write(d.join("b.log"), "6\n").expect("write b");
        loop {
            match src.step(&mut cur, &stop) {
                Ok(Step::More) => {}
                Ok(Step::Done) => break,
                _ => panic!("a removed file is not an error"),
            }
        }
        src.finish(cur).expect("finish a removed file");
        let mut cur = src.pick_next().expect("pick").expect("b.log");
        assert!(matches!(src.step(&mut cur, &stop), Ok(Step::Done)));
        src.finish(cur).expect("finish b");
    });
    assert_eq!(
        log.lines("WARN", "a.log was removed while it was read")
            .len(),
        1,
        "{}",
        log.text()
    );
    assert!(d.join("b.log.COMPLETED").exists());
    let mut got = Vec::new();
    crate::source::lines::testing::drain(ch.as_ref(), &mut got);
    assert_eq!(got, ["1", "2", "3", "4", "5", "6"]);
}

#[test]
fn a_utf16_file_with_a_byte_order_mark_is_read_without_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let mut bytes = Vec::new();
    Charset::Utf16Le.encode("\u{FEFF}été\nhiver\n", &mut bytes);
    std::fs::write(d.join("u16.log"), &bytes).expect("write");
    let mut cfg = fast(d);
    cfg.input_charset = Charset::Utf16;
    let ch = memory(100, 10);
    let (stop, t) = start(&cfg, &ch);
    let got = collect_until(ch.as_ref(), 30, "2 lines", |g| g.len() >= 2);
    assert_eq!(got, ["été", "hiver"]);
    wait_until("the rename", || d.join("u16.log.COMPLETED").exists());
    stop.store(true, Ordering::Release);
    t.join().expect("source");
}
