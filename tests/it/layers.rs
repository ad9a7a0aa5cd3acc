//! The module layering docs/ARCHITECTURE.md states, held against the code: every `crate::`
//! path in `src/` names a module of the same or a lower layer, so there are no import loops
//! between modules and lower layers never import higher ones; and a component (a source,
//! sink, interceptor or channel module) never names another component of its kind.
//!
//! The check reads the source as text (each `crate::<module>` and, inside a kind's directory,
//! each `super::<sibling>`), so it needs no tool beyond the test itself. Test modules may reach
//! further (a test may build a memory channel to drive a sink), so `#[cfg(test)]` items at the
//! end of a file are not read.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Layers, lowest first; a module may use its own layer and those below it.
const LAYERS: &[&[&str]] = &[
    &["event", "io", "net", "host", "stop", "report", "config"],
    &["format", "avro", "kafka", "thrift", "hbase"],
    &["channel"],
    &["metrics"],
    &["interceptor"],
    &["route"],
    &["source", "sink"],
    &["agent"],
    &["cli"],
];

/// Top-level modules that are not in a layer of their own (the crate root re-exports).
const ROOT_FILES: &[&str] = &["lib.rs", "main.rs"];

/// The modules of each component kind's directory that are shared by its components, not
/// components: every other module there is one component.
const SHARED: &[(&str, &[&str])] = &[
    ("source", &["mod", "lines", "ip_filter", "commit"]),
    ("sink", &["mod", "error", "retry", "rpc_conn", "serializer"]),
    ("interceptor", &["mod"]),
];

/// The components of `kind`: the modules of `src/<kind>/` but the shared ones.
fn components(src: &Path, kind: &str) -> Vec<String> {
    let shared = SHARED
        .iter()
        .find(|(k, _)| *k == kind)
        .map_or(&[][..], |(_, s)| *s);
    let mut out: Vec<String> = std::fs::read_dir(src.join(kind))
        .expect("a kind's directory")
        .map(|e| {
            e.expect("entry")
                .file_name()
                .to_string_lossy()
                .trim_end_matches(".rs")
                .to_string()
        })
        .filter(|m| !shared.contains(&m.as_str()))
        .collect();
    out.sort();
    out
}

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read src")
        .map(|e| e.expect("entry").path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// The text of `path` without its trailing test module and without comments.
fn code_of(path: &Path) -> String {
    let text = std::fs::read_to_string(path).expect("read a source file");
    let body = match text.find("#[cfg(test)]\nmod tests") {
        Some(i) => &text[..i],
        None => &text,
    };
    let body = match body.find("#[cfg(test)]\npub(crate) mod testing") {
        Some(i) => &body[..i],
        None => body,
    };
    body.lines()
        .filter(|l| {
            let t = l.trim_start();
            !(t.starts_with("//") || t.starts_with("///") || t.starts_with("//!"))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The top-level modules `code` names through `crate::`.
fn crate_paths(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() {
            out.push(name);
        }
    }
    // `use crate::{a, b}` names several at once.
    let mut rest = code;
    while let Some(i) = rest.find("crate::{") {
        rest = &rest[i + "crate::{".len()..];
        let end = rest.find('}').unwrap_or(rest.len());
        for part in rest[..end].split(',') {
            let name: String = part
                .trim()
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                out.push(name);
            }
        }
    }
    out
}

/// For a file of a component kind's directory (`src/source/netcat.rs`), the kind and the
/// component (`netcat`); `None` for the kind's shared files (`mod.rs`, helpers) and others.
fn component_of(rel: &Path) -> Option<(String, String)> {
    let parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let kind = parts.first()?.clone();
    let shared = SHARED.iter().find(|(k, _)| *k == kind)?.1;
    let name = parts.get(1)?.trim_end_matches(".rs").to_string();
    (!shared.contains(&name.as_str())).then_some((kind, name))
}

#[test]
fn lower_layers_never_import_higher_ones_and_components_not_each_other() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let kinds: BTreeMap<&str, Vec<String>> = SHARED
        .iter()
        .map(|(k, _)| (*k, components(&src, k)))
        .collect();
    let mut problems = Vec::new();
    for path in &files {
        let rel = path.strip_prefix(&src).expect("under src");
        let first = rel
            .components()
            .next()
            .map(|c| {
                c.as_os_str()
                    .to_string_lossy()
                    .trim_end_matches(".rs")
                    .to_string()
            })
            .unwrap_or_default();
        if ROOT_FILES.contains(&rel.to_string_lossy().as_ref()) {
            continue;
        }
        let Some(own) = layer_of(&first) else {
            problems.push(format!(
                "{}: module `{first}` is in no layer",
                rel.display()
            ));
            continue;
        };
        let code = code_of(path);
        for used in crate_paths(&code) {
            match layer_of(&used) {
                Some(l) if l > own => problems.push(format!(
                    "{}: `{first}` (layer {own}) uses crate::{used} (layer {l}, higher)",
                    rel.display()
                )),
                Some(l) if l == own && used != first => problems.push(format!(
                    "{}: `{first}` uses its neighbour crate::{used}: share through a lower layer",
                    rel.display()
                )),
                _ => {}
            }
        }
        if let Some((kind, name)) = component_of(rel) {
            let others = kinds.get(kind.as_str()).cloned().unwrap_or_default();
            for other in others.iter().filter(|o| **o != name) {
                for needle in [
                    format!("crate::{kind}::{other}::"),
                    format!("super::{other}::"),
                ] {
                    if code.contains(&needle) {
                        problems.push(format!(
                            "{}: component `{kind}::{name}` uses component `{kind}::{other}`",
                            rel.display()
                        ));
                    }
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The check itself: an upward import and a component naming another are both caught.
#[test]
fn the_layer_check_reads_crate_paths_and_groups() {
    assert_eq!(
        crate_paths("use crate::agent::Agent;\nlet x = crate::sink::null::TYPE;"),
        ["agent", "sink"]
    );
    assert_eq!(
        crate_paths("use crate::{channel, config::Keys};"),
        ["channel", "config"]
    );
    assert_eq!(layer_of("config"), Some(0));
    assert!(layer_of("agent") > layer_of("sink"));
    assert_eq!(
        component_of(Path::new("source/netcat.rs")),
        Some(("source".into(), "netcat".into()))
    );
    assert_eq!(component_of(Path::new("channel/file/mod.rs")), None);
    assert_eq!(component_of(Path::new("sink/mod.rs")), None);
    // Sink groups are checked as a component: the group runner and its processors drive any
    // sink through the `Sink` trait and must never name a sink type.
    assert_eq!(
        component_of(Path::new("sink/group/failover.rs")),
        Some(("sink".into(), "group".into()))
    );
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let sinks = components(&src, "sink");
    assert!(sinks.contains(&"hdfs".to_string()) && !sinks.contains(&"mod".to_string()));
}
