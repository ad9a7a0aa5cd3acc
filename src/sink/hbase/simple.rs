//! Flume's simple HBase serializers (`SimpleHBase2EventSerializer`,
//! `SimpleHbaseEventSerializer`, `SimpleAsyncHbaseEventSerializer`; in Flume 1.11 the three
//! write the same cells): each event's body is put whole into one cell of a new row, and a
//! counter cell in one fixed row is incremented by one.
//!
//! Row keys are `rowPrefix` followed by the suffix Flume's `SimpleRowKeyGenerator` makes, as
//! text encoded in UTF-8: a random UUID (`uuid`, the default and what any other `suffix`
//! value gives), a random signed 64-bit number in decimal (`random`), the milliseconds since
//! the epoch (`timestamp`) or a monotonic nanosecond count (`nano`, Java's `System.nanoTime`,
//! whose origin is arbitrary in both). Invariant: the headers are never read.

use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::event::Event;
use crate::hbase::{IncrementCell, Mutation, PutCell};

/// The defaults of Flume 1.11's simple serializers (all three alike).
pub const DEFAULT_ROW_PREFIX: &str = "default";
pub const DEFAULT_INCREMENT_ROW: &str = "incRow";
pub const DEFAULT_SUFFIX: &str = "uuid";
pub const DEFAULT_PAYLOAD_COLUMN: &str = "pCol";
pub const DEFAULT_INCREMENT_COLUMN: &str = "iCol";

/// What follows `rowPrefix` in a row key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Suffix {
    Uuid,
    Random,
    Timestamp,
    Nano,
}

impl Suffix {
    /// Flume's reading of `suffix`: exact (case-sensitive) names, anything else a UUID.
    /// `None` for a value Flume silently reads as `uuid`, so the caller can say so.
    pub fn from_flume(s: &str) -> Option<Suffix> {
        match s {
            "uuid" => Some(Suffix::Uuid),
            "random" => Some(Suffix::Random),
            "timestamp" => Some(Suffix::Timestamp),
            "nano" => Some(Suffix::Nano),
            _ => None,
        }
    }

    /// The suffix for one row, as text.
    fn render(self) -> String {
        match self {
            Suffix::Uuid => uuid::Uuid::new_v4().hyphenated().to_string(),
            Suffix::Random => random_i64().to_string(),
            Suffix::Timestamp => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis())
                .to_string(),
            Suffix::Nano => nano_time().to_string(),
        }
    }
}

/// 64 random bits as Java's `Random.nextLong()` gives them (any sign), drawn from the OS
/// through the uuid crate: the fixed version and variant bits of one half are XORed with
/// random bits of the other.
fn random_i64() -> i64 {
    let (hi, lo) = uuid::Uuid::new_v4().as_u64_pair();
    i64::from_ne_bytes((hi ^ lo.rotate_left(17)).to_ne_bytes())
}

/// Nanoseconds on a monotonic clock: the wall clock at the first call plus the monotonic time
/// since, so values grow within a run and (unlike Java's, which restart at boot) across runs.
fn nano_time() -> i64 {
    static BASE: OnceLock<(Instant, i64)> = OnceLock::new();
    let (at, wall) = BASE.get_or_init(|| {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
        (Instant::now(), wall)
    });
    let since = i64::try_from(at.elapsed().as_nanos()).unwrap_or(i64::MAX);
    wall.saturating_add(since)
}

/// The simple serializers' settings (`serializer.*`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimpleConfig {
    /// `rowPrefix` (`default`).
    pub row_prefix: String,
    /// `suffix` (`uuid`).
    pub suffix: Suffix,
    /// `payloadColumn` (`pCol`) in UTF-8; `None`: no put.
    pub payload_column: Option<Vec<u8>>,
    /// `incrementColumn` (`iCol`) in UTF-8; `None`: no increment.
    pub increment_column: Option<Vec<u8>>,
    /// `incrementRow` (`incRow`) in UTF-8.
    pub increment_row: Vec<u8>,
}

impl SimpleConfig {
    /// The put of `event` (if `payloadColumn`), appended to `puts`, and its increment (if
    /// `incrementColumn`), appended to `incs`.
    pub fn serialize(
        &self,
        event: &Event,
        family: &[u8],
        puts: &mut Vec<Mutation>,
        incs: &mut Vec<Mutation>,
    ) {
        if let Some(col) = &self.payload_column {
            let mut row = self.row_prefix.clone();
            row.push_str(&self.suffix.render());
            puts.push(Mutation::Put {
                row: row.into_bytes(),
                cells: vec![PutCell {
                    family: family.to_vec(),
                    qualifier: col.clone(),
                    value: event.body().to_vec(),
                }],
            });
        }
        if let Some(col) = &self.increment_column {
            incs.push(Mutation::Increment {
                row: self.increment_row.clone(),
                cells: vec![IncrementCell {
                    family: family.to_vec(),
                    qualifier: col.clone(),
                    amount: 1,
                }],
            });
        }
    }
}

impl Default for SimpleConfig {
    fn default() -> Self {
        SimpleConfig {
            row_prefix: DEFAULT_ROW_PREFIX.to_string(),
            suffix: Suffix::Uuid,
            payload_column: Some(DEFAULT_PAYLOAD_COLUMN.as_bytes().to_vec()),
            increment_column: Some(DEFAULT_INCREMENT_COLUMN.as_bytes().to_vec()),
            increment_row: DEFAULT_INCREMENT_ROW.as_bytes().to_vec(),
        }
    }
}

// Checked against Flume 1.11's SimpleHBase2EventSerializer on the same events: row
// `default<uuid>`, `p-<signed decimal>`, cells f:pCol = body and incRow f:iCol += 1.
#[cfg(test)]
mod tests {
    use super::*;

    fn run(c: &SimpleConfig, body: &str) -> (Vec<Mutation>, Vec<Mutation>) {
        let (mut puts, mut incs) = (Vec::new(), Vec::new());
        c.serialize(&Event::new(body.to_string()), b"cf", &mut puts, &mut incs);
        (puts, incs)
    }

    fn row_of(m: &Mutation) -> String {
        String::from_utf8(m.row().to_vec()).expect("row keys are text")
    }

    #[test]
    fn defaults_put_the_body_in_pcol_and_count_in_incrow_icol() {
        let (puts, incs) = run(&SimpleConfig::default(), "hello");
        assert_eq!(puts.len(), 1);
        let Mutation::Put { row, cells } = &puts[0] else {
            panic!("a put: {puts:?}");
        };
        let row = String::from_utf8(row.clone()).expect("text");
        let uuid = row.strip_prefix("default").expect("prefix `default`");
        assert_eq!(uuid.len(), 36, "{row}");
        assert!(uuid::Uuid::parse_str(uuid).is_ok(), "{row}");
        assert_eq!(uuid, uuid.to_lowercase(), "Java's UUID text is lower case");
        assert_eq!(
            cells,
            &vec![PutCell {
                family: b"cf".to_vec(),
                qualifier: b"pCol".to_vec(),
                value: b"hello".to_vec(),
            }]
        );
        assert_eq!(
            incs,
            vec![Mutation::Increment {
                row: b"incRow".to_vec(),
                cells: vec![IncrementCell {
                    family: b"cf".to_vec(),
                    qualifier: b"iCol".to_vec(),
                    amount: 1,
                }],
            }]
        );
    }

    #[test]
    fn suffixes_are_flumes_formats() {
        let mut c = SimpleConfig {
            row_prefix: "p-".into(),
            ..SimpleConfig::default()
        };
        c.suffix = Suffix::Timestamp;
        let before = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock")
            .as_millis();
        let row = row_of(&run(&c, "x").0[0]);
        let ms: u128 = row
            .strip_prefix("p-")
            .expect("prefix")
            .parse()
            .expect("millis");
        assert!(ms >= before && ms < before + 60_000, "{row}");

        c.suffix = Suffix::Random;
        let rows: Vec<i64> = (0..50)
            .map(|_| {
                row_of(&run(&c, "x").0[0])
                    .strip_prefix("p-")
                    .expect("prefix")
                    .parse()
                    .expect("a signed decimal number")
            })
            .collect();
        assert!(rows.iter().any(|n| *n < 0) && rows.iter().any(|n| *n > 0));

        c.suffix = Suffix::Nano;
        let a: i64 = row_of(&run(&c, "x").0[0])
            .strip_prefix("p-")
            .expect("prefix")
            .parse()
            .expect("nanos");
        let b: i64 = row_of(&run(&c, "x").0[0])
            .strip_prefix("p-")
            .expect("prefix")
            .parse()
            .expect("nanos");
        assert!(b > a, "{a} then {b}");
    }

    #[test]
    fn flumes_suffix_names_are_exact() {
        assert_eq!(Suffix::from_flume("nano"), Some(Suffix::Nano));
        assert_eq!(Suffix::from_flume("Timestamp"), None);
        assert_eq!(Suffix::from_flume("millis"), None);
    }

    #[test]
    fn columns_can_be_left_out() {
        let c = SimpleConfig {
            payload_column: None,
            increment_column: Some(b"n".to_vec()),
            increment_row: b"counts".to_vec(),
            ..SimpleConfig::default()
        };
        let (puts, incs) = run(&c, "x");
        assert!(puts.is_empty());
        assert_eq!(incs[0].row(), b"counts");
        let c = SimpleConfig {
            increment_column: None,
            ..SimpleConfig::default()
        };
        let (puts, incs) = run(&c, "");
        assert_eq!(puts.len(), 1, "an empty body is still put");
        assert!(incs.is_empty());
    }
}
