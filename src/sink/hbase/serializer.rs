//! Which serializer an HBase sink runs (`serializer`, a Flume class name), its `serializer.*`
//! keys, and how a batch of events becomes the mutations the client applies: every put, in
//! event order, then every increment, in event order or, with `coalesceIncrements`, summed
//! per row, family and qualifier (one increment per row, rows and columns in byte order, as
//! Flume's HBase sinks coalesce them).
//!
//! Invariant: a class flumen does not have is refused at start-up naming it and listing the
//! ones it has; every setting is checked here, so an event can fail only for what it holds.

use std::collections::BTreeMap;

use super::regex_serializer::{self, Charset, RegexConfig, Unwritable};
use super::simple::{self, SimpleConfig, Suffix};
use crate::config::{ConfigError, Keys, WarningKind};
use crate::event::Event;
use crate::hbase::{IncrementCell, Mutation};

/// Flume's serializer classes flumen has: the simple ones, then the regex ones. Each Flume
/// sink type loads only its own family's; flumen takes any of them on any of its HBase sink
/// types, since they write the same cells.
pub const SIMPLE_CLASSES: &[&str] = &[
    "org.apache.flume.sink.hbase2.SimpleHBase2EventSerializer",
    "org.apache.flume.sink.hbase.SimpleHbaseEventSerializer",
    "org.apache.flume.sink.hbase.SimpleAsyncHbaseEventSerializer",
];
pub const REGEX_CLASSES: &[&str] = &[
    "org.apache.flume.sink.hbase2.RegexHBase2EventSerializer",
    "org.apache.flume.sink.hbase.RegexHbaseEventSerializer",
];

/// A serializer and its settings.
#[derive(Clone, Debug)]
pub enum Serializer {
    Simple(SimpleConfig),
    Regex(RegexConfig),
}

/// Reads `serializer` (`default_class` when unset) and its `serializer.*` keys.
pub fn parse(keys: &mut Keys<'_>, default_class: &'static str) -> Result<Serializer, ConfigError> {
    keys.document_default("serializer", default_class);
    let (class, line) = match keys.get("serializer") {
        Some(v) if !v.value.is_empty() => (v.value, v.line),
        _ => (default_class.to_string(), keys.home_line()),
    };
    if SIMPLE_CLASSES.contains(&class.as_str()) {
        let s = parse_simple(keys)?;
        other_serializers_keys(keys, &class, REGEX_KEYS, "regex", REGEX_CLASSES[0]);
        return Ok(Serializer::Simple(s));
    }
    if REGEX_CLASSES.contains(&class.as_str()) {
        let r = parse_regex(keys)?;
        other_serializers_keys(keys, &class, SIMPLE_KEYS, "simple", SIMPLE_CLASSES[0]);
        return Ok(Serializer::Regex(r));
    }
    // Its own keys are the class's business: they are not reported as unknown on top.
    keys.take_prefixed("serializer.");
    let all: Vec<&str> = SIMPLE_CLASSES
        .iter()
        .chain(REGEX_CLASSES)
        .copied()
        .collect();
    Err(keys.unsupported(
        "serializer",
        line,
        format!("the HBase serializer class `{class}` (flumen cannot load Java classes)"),
        format!(
            "flumen has Flume's own serializers: {}. Use one of them (the regex ones split the body into columns), or keep Apache Flume for this sink",
            all.join(", ")
        ),
    ))
}

/// The simple serializers' keys.
const SIMPLE_KEYS: &[&str] = &[
    "serializer.payloadColumn",
    "serializer.incrementColumn",
    "serializer.rowPrefix",
    "serializer.incrementRow",
    "serializer.suffix",
];
/// The regex serializers' keys.
const REGEX_KEYS: &[&str] = &[
    "serializer.regex",
    "serializer.regexIgnoreCase",
    "serializer.colNames",
    "serializer.rowKeyIndex",
    "serializer.depositHeaders",
    "serializer.charset",
];

/// Keys of the serializer not chosen (`serializer.colNames` with the default, simple one: a
/// forgotten `serializer` line, most likely) are ignored, as Flume ignores them, with a
/// warning saying why.
fn other_serializers_keys(
    keys: &mut Keys<'_>,
    class: &str,
    other: &[&'static str],
    kind: &str,
    example: &str,
) {
    for &key in other {
        // Only a key that is set is read, so the other serializer's keys stay out of this
        // sink's documented keys.
        if keys.has(key).is_none() {
            continue;
        }
        if let Some(v) = keys.get(key) {
            keys.warn(
                v.line,
                key,
                WarningKind::Surprise {
                    advice: format!(
                        "a key of the {kind} serializers, but this sink runs `{class}`, which does not read it (Flume ignores it too); set `serializer` (e.g. to {example}) or remove the key"
                    ),
                },
            );
        }
    }
}

fn parse_simple(keys: &mut Keys<'_>) -> Result<SimpleConfig, ConfigError> {
    let column = |keys: &mut Keys<'_>, key: &'static str, default: &str| {
        let v = keys.text(key, default);
        (!v.is_empty()).then(|| v.into_bytes())
    };
    let payload_column = column(
        keys,
        "serializer.payloadColumn",
        simple::DEFAULT_PAYLOAD_COLUMN,
    );
    let increment_column = column(
        keys,
        "serializer.incrementColumn",
        simple::DEFAULT_INCREMENT_COLUMN,
    );
    let row_prefix = keys.text("serializer.rowPrefix", simple::DEFAULT_ROW_PREFIX);
    let increment_row = keys
        .text("serializer.incrementRow", simple::DEFAULT_INCREMENT_ROW)
        .into_bytes();
    keys.document_default("serializer.suffix", simple::DEFAULT_SUFFIX);
    let suffix = match keys.get("serializer.suffix") {
        None => Suffix::Uuid,
        Some(v) => Suffix::from_flume(&v.value).unwrap_or_else(|| {
            keys.warn(
                v.line,
                "serializer.suffix",
                WarningKind::Surprise {
                    advice: format!(
                        "`{}` is none of `uuid`, `random`, `timestamp`, `nano` (exact, lower case), so row keys end in a UUID, as Flume makes them; write one of those",
                        v.value
                    ),
                },
            );
            Suffix::Uuid
        }),
    };
    Ok(SimpleConfig {
        row_prefix,
        suffix,
        payload_column,
        increment_column,
        increment_row,
    })
}

fn parse_regex(keys: &mut Keys<'_>) -> Result<RegexConfig, ConfigError> {
    keys.document_default("serializer.regex", regex_serializer::DEFAULT_REGEX);
    let regex_val = keys.get("serializer.regex");
    let ignore_case = keys.boolean("serializer.regexIgnoreCase", false)?;
    let source = regex_val
        .as_ref()
        .map_or(regex_serializer::DEFAULT_REGEX, |v| v.value.as_str())
        .to_string();
    let regex = regex_serializer::compile(&source, ignore_case).map_err(|e| match &regex_val {
        Some(v) => keys.bad("serializer.regex", v, e),
        None => keys.bad_effective("serializer.regex", &source, e),
    })?;
    let deposit_headers = keys.boolean("serializer.depositHeaders", false)?;

    keys.document_default("serializer.charset", "UTF-8");
    let charset = match keys.get("serializer.charset") {
        None => Charset::Utf8,
        Some(v) => Charset::from_java(&v.value).ok_or_else(|| {
            keys.unsupported(
                "serializer.charset",
                v.line,
                format!("the charset `{}`", v.value),
                "flumen's regex serializer decodes and encodes UTF-8, US-ASCII and ISO-8859-1; set one of those",
            )
        })?,
    };

    keys.document_default("serializer.colNames", regex_serializer::DEFAULT_COL_NAMES);
    let cols_val = keys.get("serializer.colNames");
    let cols = regex_serializer::java_split_commas(
        cols_val
            .as_ref()
            .map_or(regex_serializer::DEFAULT_COL_NAMES, |v| v.value.as_str()),
    );
    let groups = regex.captures_len() - 1;
    if groups != cols.len() {
        let what = format!(
            "as many names as serializer.regex `{source}` has groups ({groups}); with {} names Flume would drop every event (it writes an event only when the counts agree)",
            cols.len()
        );
        return Err(match &cols_val {
            Some(v) => keys.bad("serializer.colNames", v, what),
            None => keys.bad_effective(
                "serializer.colNames",
                regex_serializer::DEFAULT_COL_NAMES,
                what,
            ),
        });
    }

    keys.document_default("serializer.rowKeyIndex", "-1");
    let row_key_index = match keys.get("serializer.rowKeyIndex") {
        None => None,
        Some(v) => {
            let n = v.value.trim().parse::<i32>().map_err(|_| {
                keys.bad(
                    "serializer.rowKeyIndex",
                    &v,
                    "a whole number: the 0-based index in colNames of the ROW_KEY column, or -1 for generated row keys",
                )
            })?;
            match usize::try_from(n) {
                Err(_) => None,
                Ok(i) if i >= cols.len() => {
                    return Err(keys.bad(
                        "serializer.rowKeyIndex",
                        &v,
                        format!(
                            "an index below the number of colNames ({}), 0-based",
                            cols.len()
                        ),
                    ))
                }
                Ok(i) if !cols[i].eq_ignore_ascii_case(regex_serializer::ROW_KEY_NAME) => {
                    return Err(keys.bad(
                        "serializer.rowKeyIndex",
                        &v,
                        format!(
                            "the index of the column named ROW_KEY in colNames (0-based); column {i} is `{}`",
                            cols[i]
                        ),
                    ))
                }
                Ok(i) => Some(i),
            }
        }
    };
    Ok(RegexConfig {
        source,
        regex,
        ignore_case,
        col_names: cols.iter().map(|c| charset.encode(c)).collect(),
        row_key_index,
        deposit_headers,
        charset,
    })
}

/// The mutations for a batch of events (see the module docs).
pub fn mutations(
    serializer: &Serializer,
    events: &[Event],
    family: &[u8],
    coalesce: bool,
) -> Result<Vec<Mutation>, Unwritable> {
    let mut puts = Vec::with_capacity(events.len());
    let mut incs = Vec::new();
    for e in events {
        match serializer {
            Serializer::Simple(s) => s.serialize(e, family, &mut puts, &mut incs),
            Serializer::Regex(r) => r.serialize(e, family, &mut puts)?,
        }
    }
    if coalesce {
        incs = coalesce_increments(incs);
    }
    puts.append(&mut incs);
    Ok(puts)
}

/// One row's increments: (family, qualifier) -> amount, in byte order.
type Sums = BTreeMap<(Vec<u8>, Vec<u8>), i64>;

/// Sums the increments of the same row, family and qualifier; one increment per row. Sums
/// wrap as Java's `long` addition does.
pub fn coalesce_increments(incs: Vec<Mutation>) -> Vec<Mutation> {
    let mut rows: BTreeMap<Vec<u8>, Sums> = BTreeMap::new();
    let mut others = Vec::new();
    for m in incs {
        match m {
            Mutation::Increment { row, cells } => {
                let cols = rows.entry(row).or_default();
                for c in cells {
                    let sum = cols.entry((c.family, c.qualifier)).or_insert(0);
                    *sum = sum.wrapping_add(c.amount);
                }
            }
            put @ Mutation::Put { .. } => others.push(put),
        }
    }
    others.extend(rows.into_iter().map(|(row, cols)| {
        Mutation::Increment {
            row,
            cells: cols
                .into_iter()
                .map(|((family, qualifier), amount)| IncrementCell {
                    family,
                    qualifier,
                    amount,
                })
                .collect(),
        }
    }));
    others
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConfigWarning;

    fn parsed(pairs: &[(&str, &str)]) -> (Result<Serializer, ConfigError>, Vec<ConfigWarning>) {
        let mut k = Keys::from_pairs("sinks", "k1", pairs);
        let r = parse(&mut k, SIMPLE_CLASSES[0]);
        let mut w = Vec::new();
        k.finish(&mut w);
        (r, w)
    }

    fn inc(row: &str, q: &str, n: i64) -> Mutation {
        Mutation::Increment {
            row: row.as_bytes().to_vec(),
            cells: vec![IncrementCell {
                family: b"f".to_vec(),
                qualifier: q.as_bytes().to_vec(),
                amount: n,
            }],
        }
    }

    #[test]
    fn every_flume_class_is_known_and_others_are_refused_by_name() {
        for class in SIMPLE_CLASSES {
            let (r, _) = parsed(&[("serializer", class)]);
            assert!(matches!(r, Ok(Serializer::Simple(_))), "{class}");
        }
        for class in REGEX_CLASSES {
            let (r, _) = parsed(&[("serializer", class)]);
            assert!(matches!(r, Ok(Serializer::Regex(_))), "{class}");
        }
        let (r, w) = parsed(&[
            ("serializer", "com.example.MySerializer"),
            ("serializer.foo", "bar"),
        ]);
        let e = r.expect_err("refused").to_string();
        assert!(e.contains("`com.example.MySerializer`"), "{e}");
        assert!(e.contains("a1.sinks.k1.serializer`"), "{e}");
        assert!(e.contains(":1:"), "{e}");
        assert!(
            e.contains(REGEX_CLASSES[1]) && e.contains(SIMPLE_CLASSES[2]),
            "{e}"
        );
        assert!(w.is_empty(), "the class's own keys are not reported: {w:?}");
    }

    #[test]
    fn simple_keys_and_their_defaults() {
        let (r, w) = parsed(&[]);
        assert!(w.is_empty(), "{w:?}");
        let Ok(Serializer::Simple(s)) = r else {
            panic!("simple: {r:?}");
        };
        assert_eq!(s, SimpleConfig::default());
        let (r, w) = parsed(&[
            ("serializer.payloadColumn", "body"),
            ("serializer.incrementColumn", "n"),
            ("serializer.rowPrefix", "ev-"),
            ("serializer.incrementRow", "counter"),
            ("serializer.suffix", "timestamp"),
        ]);
        assert!(w.is_empty(), "{w:?}");
        let Ok(Serializer::Simple(s)) = r else {
            panic!("simple: {r:?}");
        };
        assert_eq!(
            s,
            SimpleConfig {
                row_prefix: "ev-".into(),
                suffix: Suffix::Timestamp,
                payload_column: Some(b"body".to_vec()),
                increment_column: Some(b"n".to_vec()),
                increment_row: b"counter".to_vec(),
            }
        );
    }

    #[test]
    fn keys_of_the_other_serializer_are_named_as_such() {
        let (r, w) = parsed(&[
            ("serializer.colNames", "a,b"),
            ("serializer.payloadColum", "x"),
        ]);
        assert!(matches!(r, Ok(Serializer::Simple(_))));
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(w[0].to_string().contains("regex serializers"), "{}", w[0]);
        assert!(
            w[1].to_string().contains("serializer.payloadColumn"),
            "the nearest key: {}",
            w[1]
        );
        let (r, w) = parsed(&[
            ("serializer", REGEX_CLASSES[1]),
            ("serializer.suffix", "nano"),
        ]);
        assert!(matches!(r, Ok(Serializer::Regex(_))));
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].to_string().contains("simple serializers"), "{}", w[0]);
    }

    #[test]
    fn an_unknown_suffix_is_a_uuid_with_a_warning() {
        let (r, w) = parsed(&[("serializer.suffix", "Timestamp")]);
        let Ok(Serializer::Simple(s)) = r else {
            panic!("simple: {r:?}");
        };
        assert_eq!(s.suffix, Suffix::Uuid);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].to_string().contains("UUID"), "{}", w[0]);
    }

    #[test]
    fn regex_keys_are_read_and_checked() {
        let (r, w) = parsed(&[
            ("serializer", REGEX_CLASSES[0]),
            ("serializer.regex", r"^([^\t]+)\t([^\t]+)\t([^\t]+)$"),
            ("serializer.rowKeyIndex", "2"),
            ("serializer.colNames", "col1,col2,row_key"),
            ("serializer.depositHeaders", "true"),
            ("serializer.regexIgnoreCase", "true"),
            ("serializer.charset", "ISO-8859-1"),
        ]);
        assert!(w.is_empty(), "{w:?}");
        let Ok(Serializer::Regex(c)) = r else {
            panic!("regex: {r:?}");
        };
        assert_eq!(c.row_key_index, Some(2));
        assert!(c.deposit_headers && c.ignore_case);
        assert_eq!(c.charset, Charset::Latin1);
        assert_eq!(
            c.col_names,
            vec![b"col1".to_vec(), b"col2".to_vec(), b"row_key".to_vec()]
        );

        let (r, _) = parsed(&[
            ("serializer", REGEX_CLASSES[1]),
            ("serializer.rowKeyIndex", "-5"),
        ]);
        let Ok(Serializer::Regex(c)) = r else {
            panic!("regex: {r:?}");
        };
        assert_eq!(
            c.row_key_index, None,
            "any negative index means generated keys"
        );
        assert_eq!(c.source, "(.*)");
        assert_eq!(c.col_names, vec![b"payload".to_vec()]);

        for (pairs, key, fragment) in [
            (
                vec![("serializer.regex", "(a)(b)"), ("serializer.colNames", "x")],
                "serializer.colNames",
                "groups (2)",
            ),
            (
                vec![("serializer.regex", "(a")],
                "serializer.regex",
                "regular expression",
            ),
            (
                vec![("serializer.rowKeyIndex", "1")],
                "serializer.rowKeyIndex",
                "below",
            ),
            (
                vec![("serializer.rowKeyIndex", "0")],
                "serializer.rowKeyIndex",
                "ROW_KEY",
            ),
            (
                vec![("serializer.rowKeyIndex", "x")],
                "serializer.rowKeyIndex",
                "whole number",
            ),
            (
                vec![("serializer.charset", "UTF-16")],
                "serializer.charset",
                "UTF-16",
            ),
            (
                vec![
                    ("serializer.regex", "(é)"),
                    ("serializer.regexIgnoreCase", "true"),
                ],
                "serializer.regex",
                "ASCII",
            ),
        ] {
            let mut all = vec![("serializer", REGEX_CLASSES[0])];
            all.extend(pairs);
            let (r, _) = parsed(&all);
            let e = r.expect_err("refused").to_string();
            assert!(e.contains(&format!("a1.sinks.k1.{key}")), "{key}: {e}");
            assert!(e.contains(fragment), "{key}: {e}");
        }
    }

    #[test]
    fn puts_come_first_then_increments_in_event_order() {
        let s = Serializer::Simple(SimpleConfig::default());
        let events = [Event::new("a"), Event::new("b")];
        let m = mutations(&s, &events, b"f", false).expect("serializes");
        let kinds: Vec<bool> = m
            .iter()
            .map(|m| matches!(m, Mutation::Put { .. }))
            .collect();
        assert_eq!(kinds, vec![true, true, false, false]);
        let m = mutations(&s, &events, b"f", true).expect("serializes");
        assert_eq!(m.len(), 3);
        assert_eq!(
            m[2],
            Mutation::Increment {
                row: b"incRow".to_vec(),
                cells: vec![IncrementCell {
                    family: b"f".to_vec(),
                    qualifier: b"iCol".to_vec(),
                    amount: 2,
                }],
            }
        );
    }

    #[test]
    fn coalescing_sums_per_cell_one_increment_per_row_in_byte_order() {
        let got = coalesce_increments(vec![
            inc("r2", "b", 1),
            inc("r1", "x", 5),
            inc("r2", "a", 2),
            inc("r2", "b", 3),
            inc("r1", "x", -1),
            inc("r3", "z", i64::MAX),
            inc("r3", "z", 1),
        ]);
        let cells = |m: &Mutation| -> (String, Vec<(String, i64)>) {
            let Mutation::Increment { row, cells } = m else {
                panic!("increments only");
            };
            (
                String::from_utf8_lossy(row).into_owned(),
                cells
                    .iter()
                    .map(|c| (String::from_utf8_lossy(&c.qualifier).into_owned(), c.amount))
                    .collect(),
            )
        };
        let got: Vec<_> = got.iter().map(cells).collect();
        assert_eq!(
            got,
            vec![
                ("r1".into(), vec![("x".into(), 4)]),
                ("r2".into(), vec![("a".into(), 2), ("b".into(), 4)]),
                ("r3".into(), vec![("z".into(), i64::MIN)]),
            ]
        );
    }
}
