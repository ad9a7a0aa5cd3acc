//! TCP framing of syslog, sans I/O: newline framing (Flume's) and RFC 6587 octet counting
//! (`LEN SP MSG`, what rsyslog and syslog-ng send with octet-counted forwarding), detected
//! once per connection from its first bytes: a connection starting with a non-zero digit,
//! up to nine more digits and a space counts octets; anything else is newline framed.
//! Flume knows newline framing only (an octet-counted stream becomes one long invalid event
//! per `eventSize` bytes there); flumen deliberately reads both.
//!
//! Invariants: no I/O; memory bounded by the cutter's message limit plus a 10-byte header;
//! a frame longer than the limit is cut like a long line (the cutter decides), never
//! buffered whole.

use super::parse::Raw;

/// Cuts message bytes into messages (the syslogtcp splitter, or the multiport line cutter).
pub trait Cutter {
    /// Takes more bytes of the stream; `newline_ends` is false inside an octet-counted frame.
    fn feed(&mut self, input: &[u8], newline_ends: bool, out: &mut Vec<Raw>);
    /// Ends the message in progress (end of a frame or of the connection).
    fn finish(&mut self) -> Option<Raw>;
}

impl Cutter for super::parse::Splitter {
    fn feed(&mut self, input: &[u8], newline_ends: bool, out: &mut Vec<Raw>) {
        if newline_ends {
            super::parse::Splitter::feed(self, input, out);
        } else {
            self.feed_unframed(input, out);
        }
    }

    fn finish(&mut self) -> Option<Raw> {
        super::parse::Splitter::finish(self)
    }
}

/// The most digits of an octet count (RFC 6587 allows any; ten cover 4 GiB).
const MAX_LEN_DIGITS: usize = 10;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// The first bytes of the connection, not yet telling.
    Detect,
    Newline,
    /// Between frames, reading the count's digits.
    Count {
        len: u64,
        digits: usize,
    },
    /// Inside a frame, `left` bytes to go.
    Frame {
        left: u64,
    },
}

/// Why an octet-counted stream cannot be read further.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("octet-counted framing broken: expected a length and a space, got byte {byte:#04x} after {digits} digits")]
pub struct FramingError {
    pub byte: u8,
    pub digits: usize,
}

/// One connection's framer.
#[derive(Debug)]
pub struct Framer<C> {
    state: State,
    head: Vec<u8>,
    pub cutter: C,
}

impl<C: Cutter> Framer<C> {
    pub fn new(cutter: C) -> Framer<C> {
        Framer {
            state: State::Detect,
            head: Vec::new(),
            cutter,
        }
    }

    /// Whether the connection was found to count octets.
    pub fn octet_counting(&self) -> bool {
        matches!(self.state, State::Count { .. } | State::Frame { .. })
    }

    /// Takes the next bytes of the connection, appending finished messages to `out`.
    pub fn feed(&mut self, mut input: &[u8], out: &mut Vec<Raw>) -> Result<(), FramingError> {
        if self.state == State::Detect {
            let before = self.head.len();
            self.head
                .extend_from_slice(&input[..input.len().min(MAX_LEN_DIGITS + 1)]);
            match detect(&self.head) {
                None => return Ok(()),
                Some(octets) => {
                    let head = std::mem::take(&mut self.head);
                    input = &input[(head.len() - before).min(input.len())..];
                    if octets {
                        self.state = State::Count { len: 0, digits: 0 };
                    } else {
                        self.state = State::Newline;
                    }
                    self.feed(&head, out)?;
                }
            }
        }
        while !input.is_empty() {
            match self.state {
                // Detection ended above; the state never returns to it.
                State::Detect => return Ok(()),
                State::Newline => {
                    self.cutter.feed(input, true, out);
                    return Ok(());
                }
                State::Count { len, digits } => {
                    let b = input[0];
                    input = &input[1..];
                    match b {
                        b'0'..=b'9' if digits < MAX_LEN_DIGITS => {
                            self.state = State::Count {
                                len: len * 10 + u64::from(b - b'0'),
                                digits: digits + 1,
                            }
                        }
                        b' ' if digits > 0 => {
                            self.state = State::Frame { left: len };
                            if len == 0 {
                                self.end_frame(out);
                            }
                        }
                        // Some senders end each frame with a newline too.
                        b'\n' | b'\r' if digits == 0 => {}
                        _ => return Err(FramingError { byte: b, digits }),
                    }
                }
                State::Frame { left } => {
                    let n = usize::try_from(left).unwrap_or(usize::MAX).min(input.len());
                    self.cutter.feed(&input[..n], false, out);
                    input = &input[n..];
                    let left = left - n as u64;
                    self.state = State::Frame { left };
                    if left == 0 {
                        self.end_frame(out);
                    }
                }
            }
        }
        Ok(())
    }

    fn end_frame(&mut self, out: &mut Vec<Raw>) {
        if let Some(r) = self.cutter.finish() {
            out.push(r);
        }
        self.state = State::Count { len: 0, digits: 0 };
    }

    /// The connection ended: the message in progress, if any (a last line without its
    /// newline, a frame cut short).
    pub fn finish(&mut self, out: &mut Vec<Raw>) {
        if self.state == State::Detect {
            self.state = State::Newline;
            let head = std::mem::take(&mut self.head);
            self.cutter.feed(&head, true, out);
        }
        if let Some(r) = self.cutter.finish() {
            out.push(r);
        }
    }
}

/// `Some(true)` for octet counting, `Some(false)` for newline framing, `None` while the first
/// bytes do not tell yet.
fn detect(head: &[u8]) -> Option<bool> {
    match head.first()? {
        b'1'..=b'9' => {}
        _ => return Some(false),
    }
    for (i, b) in head.iter().enumerate() {
        match b {
            b'0'..=b'9' if i < MAX_LEN_DIGITS => {}
            b' ' => return Some(true),
            _ => return Some(false),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::super::parse::Splitter;
    use super::*;

    fn frames(chunks: &[&[u8]]) -> (Vec<Vec<u8>>, bool) {
        let mut f = Framer::new(Splitter::new(100));
        let mut out = Vec::new();
        for c in chunks {
            f.feed(c, &mut out).expect("framing");
        }
        f.finish(&mut out);
        (
            out.into_iter().map(|r| r.bytes).collect(),
            f.octet_counting(),
        )
    }

    #[test]
    fn octet_counting_is_detected_and_keeps_newlines_inside_frames() {
        let (m, octets) = frames(&[b"9 <13>a\nb c5 <14>d"]);
        assert!(octets);
        assert_eq!(m, vec![b"<13>a\nb c".to_vec(), b"<14>d".to_vec()]);
    }

    #[test]
    fn detection_survives_one_byte_reads() {
        let input = b"5 <13>a6 <14>bc";
        let chunks: Vec<&[u8]> = input.chunks(1).collect();
        let (m, octets) = frames(&chunks);
        assert!(octets);
        assert_eq!(m, vec![b"<13>a".to_vec(), b"<14>bc".to_vec()]);
    }

    #[test]
    fn newline_framing_otherwise_and_last_unterminated_line_is_kept() {
        let (m, octets) = frames(&[b"<13>a\n123 not a count\n", b"<14>tail"]);
        assert!(!octets);
        assert_eq!(
            m,
            vec![
                b"<13>a".to_vec(),
                b"123 not a count".to_vec(),
                b"<14>tail".to_vec()
            ]
        );
        let (m, _) = frames(&[b"12"]);
        assert_eq!(m, vec![b"12".to_vec()]);
    }

    #[test]
    fn broken_count_is_an_error() {
        let mut f = Framer::new(Splitter::new(100));
        let mut out = Vec::new();
        assert!(f.feed(b"3 <1>", &mut out).is_ok());
        assert_eq!(
            f.feed(b"<", &mut out),
            Err(FramingError {
                byte: b'<',
                digits: 0
            })
        );
    }

    #[test]
    fn frame_over_the_limit_is_cut_not_buffered() {
        let mut f = Framer::new(Splitter::new(10));
        let mut out = Vec::new();
        f.feed(b"25 <13>aaaaaaaaaaaaaaaaaaaaa", &mut out)
            .expect("frame");
        assert!(f.cutter.pending() < 10);
        assert!(out[0].incomplete);
    }
}
