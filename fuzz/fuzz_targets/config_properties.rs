//! Fuzzes the agent configuration path a `flume.conf` goes through: the Java properties
//! parser (escapes, continuations, separators, comments, duplicates) and `${...}`
//! substitution (`${env:NAME}`, `${sys:NAME}`, plain `${NAME}` references to other keys and,
//! with Flume's `EnvVarResolverProperties`, to the environment; nested and recursive ones), as
//! `flumen::config::agents` and `flumen::config::topology` drive them.
//!
//! The first input byte picks the environment the lookups see (whether plain references read
//! it, and whether its values hold references themselves); the rest is the file, read as
//! `config::read_file` reads one (UTF-8, else Latin-1). No panic, no hang on reference loops,
//! and every error and warning names the file.

#![no_main]

use std::hint::black_box;

use flumen::config::{self, subst};
use libfuzzer_sys::fuzz_target;

const FILE: &str = "fuzz.conf";

fuzz_target!(|data: &[u8]| {
    let Some((&flags, text)) = data.split_first() else {
        return;
    };
    let text = match std::str::from_utf8(text) {
        Ok(t) => t.to_owned(),
        Err(_) => text.iter().map(|&b| char::from(b)).collect(),
    };
    let env = move |name: &str| -> Option<String> {
        match name {
            n if n == format!("sys:{}", subst::PROPERTIES_IMPLEMENTATION) => {
                (flags & 1 != 0).then(|| subst::ENV_VAR_RESOLVER.to_owned())
            }
            "A" | "sys:A" => Some("a-value".into()),
            "EMPTY" => Some(String::new()),
            // Values that are references themselves, and loops of them.
            "NESTED" if flags & 2 != 0 => Some("${env:A}".into()),
            "LOOP" if flags & 2 != 0 => Some("${env:LOOP}".into()),
            "PLAIN" if flags & 2 != 0 => Some("${a1.sources}".into()),
            "DOLLARS" => Some("$${}{$".into()),
            _ => None,
        }
    };
    let mut agents = match config::agents(&text, FILE) {
        Ok(a) => a,
        Err(e) => {
            assert!(
                e.to_string().contains(FILE),
                "error does not name the file: {e}"
            );
            return;
        }
    };
    agents.truncate(3);
    if agents.is_empty() {
        agents.push("a1".into());
    }
    for agent in &agents {
        match config::topology(&text, FILE, agent, &env) {
            Ok(t) => {
                assert_eq!(&t.agent, agent);
                for e in &t.errors {
                    black_box(e.to_string());
                }
                for w in &t.warnings {
                    black_box(w.to_string());
                }
                black_box(format!("{t:?}"));
            }
            Err(e) => {
                black_box(e.to_string());
            }
        }
    }
});
