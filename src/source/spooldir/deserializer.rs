//! Turning a spooled file's bytes into event bodies: [`LineReader`] (Flume's LINE
//! deserializer) and [`BlobReader`] (BLOB), each reporting, with every body, the byte offset
//! just past it, which is what the tracker records once the body is committed.
//!
//! Invariant: memory is bounded whatever the file holds. Bytes are read through a fixed
//! window ([`WINDOW`]); a body holds at most `maxLineLength` characters (a longer line comes
//! out in several bodies, as in Flume); a blob is at most `maxBlobLength` bytes. Malformed
//! bytes follow the `decodeErrorPolicy` (see [`super::charset`]).

use std::io::{ErrorKind, Read};

use super::charset::{Charset, DecodeErrorPolicy, Decoded};

/// Bytes read from the file at a time.
pub const WINDOW: usize = 64 * 1024;

/// Why no body could be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Reading the file failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// Malformed bytes at `offset` under `decodeErrorPolicy = FAIL`.
    #[error("bytes at offset {offset} are not valid {charset:?}")]
    Malformed { offset: u64, charset: Charset },
}

/// One body read, and where the next one starts.
#[derive(Debug, PartialEq, Eq)]
pub struct Body {
    pub bytes: Vec<u8>,
    /// Offset of the first byte not part of this body (the next line's start).
    pub end: u64,
    /// Set when the input goes on past the limit and its rest follows as further bodies: on
    /// the first piece of a long line only (once per line), on every full blob.
    pub split: Option<Split>,
}

/// A line (or blob) split at the limit; see [`Body::split`].
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub struct Split {
    /// The file offset where the line (or blob) starts.
    pub start: u64,
}

/// A bounded window over `input`, which it reads from offset `offset` on.
struct Window<R> {
    input: R,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// File offset of `buf[start]`.
    offset: u64,
    eof: bool,
}

impl<R: Read> Window<R> {
    fn new(input: R, offset: u64) -> Self {
        Window {
            input,
            buf: vec![0; WINDOW],
            start: 0,
            end: 0,
            offset,
            eof: false,
        }
    }

    fn bytes(&self) -> &[u8] {
        self.buf.get(self.start..self.end).unwrap_or_default()
    }

    fn consume(&mut self, n: usize) {
        let n = n.min(self.end - self.start);
        self.start += n;
        self.offset += n as u64;
    }

    /// Reads more (moving what is left to the front); sets `eof` when the input ends.
    fn fill(&mut self) -> std::io::Result<()> {
        if self.eof {
            return Ok(());
        }
        self.buf.copy_within(self.start..self.end, 0);
        self.end -= self.start;
        self.start = 0;
        loop {
            let Some(room) = self.buf.get_mut(self.end..) else {
                return Ok(());
            };
            if room.is_empty() {
                return Ok(());
            }
            match self.input.read(room) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(());
                }
                Ok(n) => {
                    self.end += n;
                    return Ok(());
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

/// Flume's LINE deserializer. See the module docs.
pub struct LineReader<R> {
    win: Window<R>,
    charset: Charset,
    policy: DecodeErrorPolicy,
    /// In Java chars (UTF-16 units), as Flume counts.
    max_units: usize,
    output: Charset,
    /// The last body ended at the limit inside a line: the next one continues that line, so
    /// it is not reported as split again (one warning per line).
    continuing: bool,
}

/// Why [`LineReader::next_body`] stopped adding characters to a body.
enum Stop {
    /// At `\n` (consumed) or at the end of the input: the line is complete.
    LineEnd,
    /// At the limit, with more of the line behind it: the rest is the next body.
    Full,
}

impl<R: Read> LineReader<R> {
    /// Reads lines from `input`, positioned at byte `offset` of the file, in `charset`;
    /// `charset` must already be resolved for a byte-order mark ([`Charset::with_bom`]).
    pub fn new(
        input: R,
        offset: u64,
        charset: Charset,
        policy: DecodeErrorPolicy,
        max_line_length: usize,
        output: Charset,
    ) -> Self {
        LineReader {
            win: Window::new(input, offset),
            charset,
            policy,
            max_units: max_line_length.max(1),
            output,
            continuing: false,
        }
    }

    /// The next line (or piece of a long line) as a body in the output charset, or `None` at
    /// the end of the file.
    ///
    /// As Flume: only `\n` ends a line, an empty line is an empty event, and a last line
    /// without `\n` is an event too; bytes dropped under `IGNORE` are not characters, so a
    /// file ending in them yields no extra event. A line longer than `maxLineLength` comes
    /// out in pieces of at most that many characters, as Flume's reader stops at the limit
    /// and the next read goes on from there. Unlike Flume, a piece that ends exactly at the
    /// limit takes the `\n` right after it (Flume emits an empty event for that `\n`), and a
    /// surrogate pair is never cut in two (a piece ends before it, or with `maxLineLength = 1`
    /// holds it alone).
    pub fn next_body(&mut self) -> Result<Option<Body>, ReadError> {
        let start = self.win.offset;
        let ascii_compatible = matches!(
            self.charset,
            Charset::Utf8 | Charset::UsAscii | Charset::Latin1
        );
        let mut text = String::new();
        let mut units: usize = 0;
        let mut seen = false;
        let stop = loop {
            if self.win.bytes().len() < 4 && !self.win.eof {
                self.win.fill()?;
                continue;
            }
            let bytes = self.win.bytes();
            if bytes.is_empty() {
                break Stop::LineEnd;
            }
            let room = self.max_units.saturating_sub(units);
            if room == 0 {
                // The body is full: only a `\n` (or the end) right here completes the line.
                match self.charset.decode(bytes, self.win.eof) {
                    Decoded::NeedMore => self.win.fill()?,
                    Decoded::Char('\n', n) => {
                        self.win.consume(n);
                        break Stop::LineEnd;
                    }
                    Decoded::Malformed(n) if self.policy == DecodeErrorPolicy::Ignore => {
                        self.win.consume(n);
                    }
                    // A character, or malformed bytes the next call replaces or reports.
                    Decoded::Char(..) | Decoded::Malformed(_) => break Stop::Full,
                }
                continue;
            }
            if ascii_compatible {
                // The common case: a run of ASCII (not `\n`) is copied as one slice.
                let run = bytes
                    .iter()
                    .take(room)
                    .take_while(|&&b| b.is_ascii() && b != b'\n')
                    .count();
                if run > 0 {
                    seen = true;
                    if let Some(s) = bytes.get(..run) {
                        text.push_str(std::str::from_utf8(s).unwrap_or_default());
                    }
                    units += run;
                    self.win.consume(run);
                    continue;
                }
            }
            match self.charset.decode(bytes, self.win.eof) {
                Decoded::NeedMore => self.win.fill()?,
                Decoded::Char('\n', n) => {
                    self.win.consume(n);
                    seen = true;
                    break Stop::LineEnd;
                }
                Decoded::Char(c, n) => {
                    seen = true;
                    let width = c.len_utf16();
                    // A pair that does not fit starts the next body; an empty body takes it
                    // even past the limit, so every call makes progress.
                    if width > room && units > 0 {
                        break Stop::Full;
                    }
                    text.push(c);
                    units += width;
                    self.win.consume(n);
                }
                Decoded::Malformed(n) => {
                    match self.policy {
                        DecodeErrorPolicy::Fail => {
                            return Err(ReadError::Malformed {
                                offset: self.win.offset,
                                charset: self.charset,
                            })
                        }
                        DecodeErrorPolicy::Replace => {
                            seen = true;
                            text.push(char::REPLACEMENT_CHARACTER);
                            units += 1;
                        }
                        DecodeErrorPolicy::Ignore => {}
                    }
                    self.win.consume(n);
                }
            }
        };
        if !seen {
            return Ok(None);
        }
        let mut bytes = Vec::with_capacity(text.len());
        self.output.encode(&text, &mut bytes);
        let full = matches!(stop, Stop::Full);
        let split = (full && !self.continuing).then_some(Split { start });
        self.continuing = full;
        Ok(Some(Body {
            bytes,
            end: self.win.offset,
            split,
        }))
    }
}

/// Flume's BLOB deserializer: the file's bytes in bodies of at most `max` bytes.
pub struct BlobReader<R> {
    win: Window<R>,
    max: usize,
}

impl<R: Read> BlobReader<R> {
    /// Reads `input`, positioned at byte `offset` of the file.
    pub fn new(input: R, offset: u64, max_blob_length: usize) -> Self {
        BlobReader {
            win: Window::new(input, offset),
            max: max_blob_length.max(1),
        }
    }

    /// The next blob, or `None` at the end of the file. A blob that reaches the limit with
    /// more bytes behind it is marked split (its rest is the next blob, as in Flume).
    pub fn next_body(&mut self) -> Result<Option<Body>, ReadError> {
        let start = self.win.offset;
        let mut bytes = Vec::new();
        loop {
            if self.win.bytes().is_empty() {
                if self.win.eof {
                    break;
                }
                self.win.fill()?;
                continue;
            }
            if bytes.len() >= self.max {
                break;
            }
            let avail = self.win.bytes();
            let take = avail.len().min(self.max - bytes.len());
            bytes.extend_from_slice(avail.get(..take).unwrap_or_default());
            self.win.consume(take);
        }
        if bytes.is_empty() {
            return Ok(None);
        }
        // The loop ends at the limit only when a byte follows (it filled the window first).
        let split = (!self.win.bytes().is_empty()).then_some(Split { start });
        Ok(Some(Body {
            bytes,
            end: self.win.offset,
            split,
        }))
    }
}
