//! `${env:NAME}` substitution in values, as Flume 1.10+ does it (Flume passes every value
//! through commons-text's `StringSubstitutor` before reading the configuration).
//!
//! - `${env:NAME}` becomes the value of environment variable `NAME`; if it is unset the
//!   caller reports an error naming the line (Flume would leave the text as it is).
//! - `${env:NAME:-fallback}` uses `fallback` when `NAME` is unset.
//! - `$${...}` is an escaped reference and becomes the literal `${...}`.
//! - `${sys:...}`, `${java:...}` and `${date:...}` (Flume's other lookups) are errors: there are
//!   no Java system properties here.
//! - A plain `${NAME}` is left as it is, with a warning: in Flume it names another property (or,
//!   with the deprecated `EnvVarResolverProperties`, an environment variable), and left alone
//!   it still reaches a shell intact (e.g. an exec source's `command`).
//! - Nested references (`${env:${X}}`) are errors.
//! - Keys are never substituted, as in Flume.

/// Why a value could not be substituted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Problem {
    /// `${env:NAME}` with `NAME` unset and no `:-` fallback.
    Unset { name: String },
    /// A reference form we do not implement.
    Unsupported {
        reference: String,
        why: &'static str,
    },
}

/// A substituted value, plus the plain `${NAME}` references left untouched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Substituted {
    pub value: String,
    pub untouched: Vec<String>,
}

/// Flume's lookups other than `env`.
const OTHER_LOOKUPS: [&str; 3] = ["sys", "java", "date"];

/// Substitutes `${env:NAME}` references in `value`, reading variables through `env`.
pub(crate) fn substitute(
    value: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Substituted, Problem> {
    let mut out = String::with_capacity(value.len());
    let mut untouched = Vec::new();
    let mut rest = value;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let at = &rest[i..];
        if let Some(after) = at.strip_prefix("$${") {
            out.push_str("${");
            rest = after;
            continue;
        }
        let Some(after) = at.strip_prefix("${") else {
            out.push('$');
            rest = &at[1..];
            continue;
        };
        let Some(end) = after.find('}') else {
            // Unterminated: left as it is, as StringSubstitutor does.
            out.push_str(at);
            rest = "";
            break;
        };
        let body = &after[..end];
        let whole = &at[..end + 3];
        rest = &after[end + 1..];
        if body.contains("${") {
            return Err(Problem::Unsupported {
                reference: format!("{whole}}}"),
                why: "Nested references are not supported; use one ${env:NAME}",
            });
        }
        let (name, fallback) = match body.find(":-") {
            Some(k) => (&body[..k], Some(&body[k + 2..])),
            None => (body, None),
        };
        if let Some(var) = name.strip_prefix("env:") {
            match (env(var), fallback) {
                (Some(v), _) => out.push_str(&v),
                (None, Some(f)) => out.push_str(f),
                (None, None) => {
                    return Err(Problem::Unset {
                        name: var.to_string(),
                    })
                }
            }
            continue;
        }
        if let Some((prefix, _)) = name.split_once(':') {
            if OTHER_LOOKUPS.contains(&prefix) {
                return Err(Problem::Unsupported {
                    reference: whole.to_string(),
                    why: "Only the env: lookup is supported (there are no Java system properties); use ${env:NAME}",
                });
            }
        }
        out.push_str(whole);
        untouched.push(whole.to_string());
    }
    out.push_str(rest);
    Ok(Substituted {
        value: out,
        untouched,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "PORT" => Some("4141".into()),
            "DIR" => Some("/var/lib/flumen".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    fn sub(v: &str) -> Result<Substituted, Problem> {
        substitute(v, &env)
    }

    fn ok(v: &str) -> String {
        sub(v).expect("substitutes").value
    }

    #[test]
    fn env_references() {
        assert_eq!(ok("${env:PORT}"), "4141");
        assert_eq!(
            ok("${env:DIR}/checkpoint,${env:DIR}/data"),
            "/var/lib/flumen/checkpoint,/var/lib/flumen/data"
        );
        assert_eq!(ok("x${env:EMPTY}y"), "xy");
        assert_eq!(ok("no references"), "no references");
        assert_eq!(ok("cost: $5 $$ $"), "cost: $5 $$ $");
    }

    #[test]
    fn fallbacks() {
        assert_eq!(ok("${env:NOPE:-8080}"), "8080");
        assert_eq!(ok("${env:PORT:-8080}"), "4141");
        assert_eq!(ok("${env:NOPE:-}"), "");
    }

    #[test]
    fn unset_is_an_error() {
        assert_eq!(
            sub("a ${env:NOPE} b"),
            Err(Problem::Unset {
                name: "NOPE".into()
            })
        );
    }

    #[test]
    fn escapes_and_unterminated() {
        assert_eq!(ok("$${env:PORT}"), "${env:PORT}");
        assert_eq!(ok("${env:PORT"), "${env:PORT");
    }

    #[test]
    fn plain_references_are_left_alone() {
        let s = sub("tail -F ${HOME}/app.log ${X:-y}").expect("substitutes");
        assert_eq!(s.value, "tail -F ${HOME}/app.log ${X:-y}");
        assert_eq!(
            s.untouched,
            vec!["${HOME}".to_string(), "${X:-y}".to_string()]
        );
    }

    #[test]
    fn other_lookups_and_nesting_are_errors() {
        for v in [
            "${sys:user.home}",
            "${java:version}",
            "${date:yyyy}",
            "${env:${X}}",
        ] {
            assert!(
                matches!(sub(v), Err(Problem::Unsupported { .. })),
                "{v}: {:?}",
                sub(v)
            );
        }
    }
}
