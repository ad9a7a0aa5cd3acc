//! docs/CONFIG.md against the code: every registered component type has its section, and every
//! key its parser reads is in that section's key table (or in the table of Flume keys accepted
//! but not acted on), with the default the code really uses.
//!
//! The keys come from the parsers themselves: each type is parsed from its `minimal` keys, and
//! [`flumen::config::Keys::documented`] lists every key the parser asked for, with the default
//! it passed. So a key added to a component without a docs row, or a default changed in one
//! place only, fails here, naming the component and the key.

use std::collections::HashMap;
use std::path::Path;

use flumen::agent::registry;
use flumen::config::{ConfigError, Keys, KnownKey, Registered};

/// One documented key: the section's table row.
#[derive(Debug, Clone)]
struct Row {
    default: String,
}

/// Key tables by section: ("Channels" | "Sources" | "Sinks" | "Interceptors", alias) -> key
/// -> row; plus the keys of "Flume keys accepted but not acted on" and of "Not supported
/// (yet)", which document a key once for every component.
struct Docs {
    tables: HashMap<(String, String), HashMap<String, Row>>,
    ignored: Vec<String>,
}

/// The backticked words of a table cell: `a`, `b` -> [a, b].
fn backticked(cell: &str) -> Vec<String> {
    cell.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

fn cells(line: &str) -> Vec<&str> {
    line.trim()
        .trim_matches('|')
        .split(" | ")
        .map(str::trim)
        .collect()
}

fn read_docs() -> Docs {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/CONFIG.md");
    let text = std::fs::read_to_string(&path).expect("docs/CONFIG.md");
    let mut tables: HashMap<(String, String), HashMap<String, Row>> = HashMap::new();
    let mut ignored = Vec::new();
    let mut top = String::new();
    let mut part = String::new();
    let mut section: Option<(String, String)> = None;
    let mut in_ignored = false;
    for line in text.lines() {
        if let Some(h) = line.strip_prefix("## ") {
            top = h.trim().to_string();
            part = top.clone();
            section = None;
            in_ignored = top.starts_with("Flume keys accepted but not acted on")
                || top.starts_with("Not supported");
            continue;
        }
        if let Some(h) = line.strip_prefix("### ") {
            part = if ["Interceptors", "Channel selectors"].contains(&h.trim()) {
                h.trim().to_string()
            } else {
                top.clone()
            };
            section = backticked(h)
                .first()
                .map(|alias| (part.clone(), alias.clone()));
            continue;
        }
        if let Some(h) = line.strip_prefix("#### ") {
            section = backticked(h)
                .first()
                .map(|alias| (part.clone(), alias.clone()));
            continue;
        }
        if in_ignored && line.starts_with('|') {
            if let Some(keys) = cells(line).get(1) {
                ignored.extend(backticked(keys));
            }
            continue;
        }
        if !line.starts_with("| `") {
            continue;
        }
        let c = cells(line);
        let (Some(sec), Some(keys), Some(default)) = (&section, c.first(), c.get(1)) else {
            continue;
        };
        for key in backticked(keys) {
            tables.entry(sec.clone()).or_default().insert(
                key,
                Row {
                    default: default.to_string(),
                },
            );
        }
    }
    Docs { tables, ignored }
}

/// The keys a type's parser reads from its minimal configuration.
fn known<S: ?Sized>(t: &Registered<S>, kind: &str) -> Vec<KnownKey> {
    let mut keys = Keys::from_pairs(kind, "x", t.minimal);
    let parsed: Result<Box<S>, ConfigError> = (t.parse)(&mut keys);
    if let Err(e) = parsed {
        panic!(
            "{kind} `{}` does not parse from its minimal keys: {e}",
            t.alias
        );
    }
    keys.documented().to_vec()
}

/// Whether the docs' default cell says `default`.
fn says(cell: &str, default: &str) -> bool {
    // Bold (`**true**`) is emphasis; a lone `*` is text (a pattern's `\s*`).
    let cell = cell.replace("**", "").replace('`', "").to_lowercase();
    let default = default.to_lowercase();
    if default.is_empty() {
        return ["", "none", "empty"].contains(&cell.trim());
    }
    cell.contains(&default)
}

fn check<S: ?Sized>(docs: &Docs, part: &str, kind: &str, types: &[Registered<S>]) -> Vec<String> {
    check_prefixed(docs, part, kind, types, "")
}

/// [`check`] for types whose keys the docs write with `prefix` (a sink group's processor
/// reads `maxpenalty` from `<agent>.sinkgroups.<g>.processor.maxpenalty`).
fn check_prefixed<S: ?Sized>(
    docs: &Docs,
    part: &str,
    kind: &str,
    types: &[Registered<S>],
    prefix: &str,
) -> Vec<String> {
    let mut problems = Vec::new();
    for t in types {
        let Some(table) = docs.tables.get(&(part.to_string(), t.alias.to_string())) else {
            problems.push(format!(
                "docs/CONFIG.md has no `{}` section under \"{part}\"",
                t.alias
            ));
            continue;
        };
        for k in known(t, kind) {
            let key = format!("{prefix}{}", k.key);
            match table.get(&key) {
                None if docs.ignored.contains(&key) => {}
                None => problems.push(format!(
                    "{part} `{}`: key `{key}` is read by the code but not in its docs table",
                    t.alias
                )),
                Some(row) => {
                    if let Some(d) = &k.default {
                        if !says(&row.default, d) {
                            problems.push(format!(
                                "{part} `{}`: key `{key}` defaults to `{d}` in the code, the docs say `{}`",
                                t.alias, row.default
                            ));
                        }
                    }
                }
            }
        }
    }
    problems
}

#[test]
fn every_component_key_and_default_is_documented() {
    let docs = read_docs();
    let mut problems = Vec::new();
    problems.extend(check(&docs, "Channels", "channels", registry::CHANNELS));
    problems.extend(check(&docs, "Sources", "sources", registry::SOURCES));
    problems.extend(check(&docs, "Sinks", "sinks", registry::SINKS));
    problems.extend(check(
        &docs,
        "Interceptors",
        "sources",
        registry::INTERCEPTORS,
    ));
    problems.extend(check_prefixed(
        &docs,
        "Sink groups",
        "sinkgroups",
        registry::SINK_PROCESSORS,
        "processor.",
    ));
    problems.extend(check_prefixed(
        &docs,
        "Channel selectors",
        "sources",
        registry::SELECTORS,
        "selector.",
    ));
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The check itself: a key the docs lack and a default that differs are both caught.
#[test]
fn the_docs_check_catches_a_missing_key_and_a_wrong_default() {
    let mut docs = read_docs();
    let table = docs
        .tables
        .get_mut(&("Sinks".to_string(), "null".to_string()))
        .expect("null sink section");
    let row = table.get_mut("batchSize").expect("batchSize row");
    row.default = "99".into();
    let problems = check(&docs, "Sinks", "sinks", registry::SINKS);
    assert!(
        problems
            .iter()
            .any(|p| p.contains("`batchSize` defaults to `100`")),
        "{problems:?}"
    );
    docs.tables
        .get_mut(&("Sinks".to_string(), "logger".to_string()))
        .expect("logger sink section")
        .remove("maxBytesToLog");
    let problems = check(&docs, "Sinks", "sinks", registry::SINKS);
    assert!(
        problems.iter().any(|p| p.contains(
            "`logger`: key `maxBytesToLog` is read by the code but not in its docs table"
        )),
        "{problems:?}"
    );
}

/// Every key Flume 1.11 reads for a type flumen implements is either read by flumen's parser
/// or has its own note in `config::flume_keys` saying what flumen does instead: a user who
/// brings such a key gets that note, never the generic one.
#[test]
fn every_flume_key_flumen_does_not_read_has_a_note() {
    use flumen::config::flume_keys::{Kind, COMPONENTS};

    fn missing<S: ?Sized>(kind: Kind, word: &str, types: &[Registered<S>]) -> Vec<String> {
        let mut out = Vec::new();
        for t in types {
            let names: Vec<&str> = std::iter::once(t.alias).chain(t.class).collect();
            let Some(c) = COMPONENTS.iter().find(|c| {
                c.kind == kind
                    && c.names
                        .iter()
                        .any(|n| names.iter().any(|m| m.eq_ignore_ascii_case(n)))
            }) else {
                continue;
            };
            let known: Vec<&str> = known(t, word).iter().map(|k| k.key).collect();
            for fk in c.keys {
                let read = if fk.key.ends_with('.') {
                    known.iter().any(|k| k.starts_with(fk.key))
                } else {
                    known.contains(&fk.key)
                };
                if !read && fk.note.is_empty() {
                    out.push(format!("{word} `{}`: Flume's `{}`", t.alias, fk.key));
                }
            }
        }
        out
    }
    let mut problems = missing(Kind::Channel, "channels", registry::CHANNELS);
    problems.extend(missing(Kind::Source, "sources", registry::SOURCES));
    problems.extend(missing(Kind::Sink, "sinks", registry::SINKS));
    problems.extend(missing(
        Kind::Interceptor,
        "sources",
        registry::INTERCEPTORS,
    ));
    assert!(
        problems.is_empty(),
        "not read and without a note in config::flume_keys:\n{}",
        problems.join("\n")
    );
}
