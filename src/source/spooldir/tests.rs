//! The spooldir source's unit tests: the deserializers (bounded lines, charsets, offsets) and
//! the source against a memory channel (delivery, rename, resume from a tracker).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::charset::{Charset, DecodeErrorPolicy};
use super::deserializer::{BlobReader, Body, LineReader, ReadError, Split, WINDOW};
use super::tracker::{Identity, Tracker, TrackerFile, VERSION};
use super::*;
use crate::channel::Channel;
use crate::source::lines::testing::{collect_until, memory};

fn lines(
    input: &[u8],
    cs: Charset,
    policy: DecodeErrorPolicy,
    max: usize,
) -> Result<Vec<(String, u64, Option<Split>)>, ReadError> {
    let mut r = LineReader::new(input, 0, cs, policy, max, Charset::Utf8);
    let mut out = Vec::new();
    while let Some(Body { bytes, end, split }) = r.next_body()? {
        out.push((String::from_utf8(bytes).expect("utf8 out"), end, split));
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
fn a_long_line_comes_out_in_pieces_in_order_in_bounded_memory() {
    // Much longer than the read window, and not a multiple of the limit.
    let max = WINDOW + 3;
    let long: String = (0..WINDOW * 5 + 17)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let input = format!("{long}\nshort\n{}\n", "é".repeat(12));
    let got = lines(
        input.as_bytes(),
        Charset::Utf8,
        DecodeErrorPolicy::Fail,
        max,
    )
    .expect("ok");
    let pieces = long.len().div_ceil(max);
    assert_eq!(got.len(), pieces + 2);
    let mut at = 0;
    for (i, (text, end, split)) in got.iter().take(pieces).enumerate() {
        assert_eq!(*text, long[at..(at + max).min(long.len())], "piece {i}");
        at += text.len();
        // Each piece ends where the next starts; the last one takes the `\n`.
        let want_end = if i + 1 == pieces { at + 1 } else { at };
        assert_eq!(*end, want_end as u64, "piece {i}");
        // Said once per line, on its first piece, with the line's start.
        let want_split = (i == 0).then_some(Split { start: 0 });
        assert_eq!(*split, want_split, "piece {i}");
    }
    assert_eq!(at, long.len());
    assert_eq!(got[pieces].0, "short");
    assert_eq!(got[pieces].2, None);
    assert_eq!(got[pieces + 1].0, "é".repeat(12));
    // Multibyte characters: a limit of 10 characters gives 10 + 2, offsets in bytes.
    let got = lines(
        "é".repeat(12).as_bytes(),
        Charset::Utf8,
        DecodeErrorPolicy::Fail,
        10,
    )
    .expect("ok");
    assert_eq!(
        got,
        [
            ("é".repeat(10), 20, Some(Split { start: 0 })),
            ("é".repeat(2), 24, None)
        ]
    );
}

#[test]
fn a_piece_ending_at_the_limit_takes_the_newline_after_it() {
    // Exactly the limit: one event, no empty one after it, not split.
    let got = lines(b"abc\nde\n", Charset::Utf8, DecodeErrorPolicy::Fail, 3).expect("ok");
    assert_eq!(
        got,
        [("abc".to_string(), 4, None), ("de".to_string(), 7, None)]
    );
    // Twice the limit: two pieces, the second takes the `\n`, no empty third.
    let got = lines(b"abcdef\nx", Charset::Utf8, DecodeErrorPolicy::Fail, 3).expect("ok");
    assert_eq!(
        got,
        [
            ("abc".to_string(), 3, Some(Split { start: 0 })),
            ("def".to_string(), 7, None),
            ("x".to_string(), 8, None)
        ]
    );
    // Bytes dropped under IGNORE between the limit and the `\n` are no characters.
    let got = lines(b"abc\xff\nd", Charset::Utf8, DecodeErrorPolicy::Ignore, 3).expect("ok");
    assert_eq!(
        got,
        [("abc".to_string(), 5, None), ("d".to_string(), 6, None)]
    );
    // A `\r` before the `\n` is a character: it is the next piece, as in Flume.
    let got = lines(b"abc\r\n", Charset::Utf8, DecodeErrorPolicy::Fail, 3).expect("ok");
    assert_eq!(
        got,
        [
            ("abc".to_string(), 3, Some(Split { start: 0 })),
            ("\r".to_string(), 5, None)
        ]
    );
    // At the end of the file.
    let got = lines(b"abc", Charset::Utf8, DecodeErrorPolicy::Fail, 3).expect("ok");
    assert_eq!(got, [("abc".to_string(), 3, None)]);
}

#[test]
fn a_surrogate_pair_is_never_cut_in_two() {
    // 😀 is two UTF-16 units. With a limit of 1 it comes out alone (so reading goes on).
    for cs in [Charset::Utf8, Charset::Utf16Le] {
        let mut input = Vec::new();
        cs.encode("a😀😀b\n😀\n", &mut input);
        let w = if cs == Charset::Utf8 { 1 } else { 2 };
        let texts: Vec<(String, u64)> = lines(&input, cs, DecodeErrorPolicy::Fail, 1)
            .expect("ok")
            .into_iter()
            .map(|(t, end, _)| (t, end))
            .collect();
        let pair = 4;
        assert_eq!(
            texts,
            [
                ("a".to_string(), w),
                ("😀".to_string(), w + pair),
                ("😀".to_string(), w + 2 * pair),
                ("b".to_string(), 3 * w + 2 * pair),
                ("😀".to_string(), 4 * w + 3 * pair),
            ],
            "{cs:?}"
        );
        // With a limit of 2 after one unit, the pair starts the next piece.
        let got = lines(&input, cs, DecodeErrorPolicy::Fail, 2).expect("ok");
        let got: Vec<&str> = got.iter().map(|(t, _, _)| t.as_str()).collect();
        assert_eq!(got, ["a", "😀", "😀", "b", "😀"], "{cs:?}");
    }
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
        got.push((b.bytes, b.end, b.split.is_some()));
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
    assert!(r.next_body().expect("read").expect("one").split.is_none());
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
    // The tracker goes just after the rename (a kill in between is the renamed-file case of
    // the crash tests), so it is waited for, not expected at once.
    wait_until("the tracker's removal", || {
        !d.join(".flumespool").join(tracker::TRACKER_FILE).exists()
    });
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
