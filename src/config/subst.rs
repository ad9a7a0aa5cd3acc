//! `${...}` substitution in values, as Flume 1.11 does it: every value goes through
//! commons-text's `StringSubstitutor` (Flume's `MapResolver`) with the lookups `env`, `sys`,
//! `java` and `date`, nested references resolved (`setEnableSubstitutionInVariables`), and a
//! plain `${NAME}` resolved by a default lookup.
//!
//! | Reference | Flume 1.11 | flumen |
//! |---|---|---|
//! | `${env:NAME}` | the variable; left as it is when unset | the variable; unset is an error naming the key (or `${env:NAME:-fallback}`) |
//! | `${sys:PROP}` | the JVM system property (`-DPROP=...`) | the `-DPROP=...` given to `flumen agent` / `flumen config check`, else the few JVM properties that have a meaning without a JVM (`user.home`, `user.name`, `user.dir`, `java.io.tmpdir`, the separators, `os.name`: `cli::agent::defines_env`); unset is an error |
//! | `${NAME}` | another property of the file, by its full key (`${a1.sources.r1.port}`); with `-DpropertiesImplementation=org.apache.flume.node.EnvVarResolverProperties`, else the environment variable `NAME` | the same; unresolved it is left as it is, with a warning (a shell can still expand it in an exec `command`), and a component refusing such a value says the reference was not resolved |
//! | `${a:-b}` | `b` when `a` does not resolve | the same |
//! | `${env:${X}}` | nested: the inner reference first | the same; messages quote the whole reference |
//! | `$${...}` | the literal `${...}` | the same |
//! | `${java:...}`, `${date:...}` | Java runtime facts, the date | errors: not supported |
//!
//! Values of environment variables and system properties are inserted as they are (Flume
//! would substitute inside them again); a property's value is substituted like any value, and a
//! reference loop (`a = ${b}`, `b = ${a}`) is an error. Keys are never substituted, as in Flume.
//!
//! Invariant: no I/O. The environment and the system properties come in through one function
//! ([`Lookups::env`]): a variable by its name, a system property as `sys:<name>`.

/// Flume's `-D` property that makes a plain `${NAME}` fall back to the environment.
pub const PROPERTIES_IMPLEMENTATION: &str = "propertiesImplementation";
/// Its value that does so.
pub const ENV_VAR_RESOLVER: &str = "org.apache.flume.node.EnvVarResolverProperties";

/// How deep references may nest or chain (a bound, not a Flume rule: a loop is reported
/// anyway, this keeps a long chain from recursing without end).
const MAX_DEPTH: usize = 32;

/// Why a value could not be substituted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Problem {
    /// `${env:NAME}` with `NAME` unset and no `:-` fallback.
    Unset { name: String },
    /// A reference that cannot be resolved (`reference` as written, nested parts included);
    /// `why` says why and what to do.
    Unresolved { reference: String, why: String },
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

/// Where references are looked up.
pub(crate) struct Lookups<'a> {
    /// An environment variable by its name; a system property (`-D`) as `sys:<name>`.
    pub env: &'a dyn Fn(&str) -> Option<String>,
    /// A property of the file by its full key, unsubstituted.
    pub property: &'a dyn Fn(&str) -> Option<String>,
}

impl Lookups<'_> {
    /// Whether `-DpropertiesImplementation=...EnvVarResolverProperties` was given.
    fn env_for_plain(&self) -> bool {
        (self.env)(&format!("sys:{PROPERTIES_IMPLEMENTATION}"))
            .is_some_and(|v| v == ENV_VAR_RESOLVER)
    }
}

/// The length of the text up to the `}` that closes a `${` whose body starts `body`, counting
/// nested `${`; `None` if it is not closed.
fn closing(body: &str) -> Option<usize> {
    let bytes = body.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'$' if bytes.get(i + 1) == Some(&b'{') => {
                depth += 1;
                i += 2;
                continue;
            }
            b'}' if depth == 0 => return Some(i),
            b'}' => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    None
}

/// Substitutes the references in `value`; see the module docs.
pub(crate) fn substitute(value: &str, lookups: &Lookups<'_>) -> Result<Substituted, Problem> {
    let mut untouched = Vec::new();
    let mut chain = Vec::new();
    let value = expand(value, lookups, &mut chain, &mut untouched)?;
    Ok(Substituted { value, untouched })
}

fn expand(
    text: &str,
    lookups: &Lookups<'_>,
    chain: &mut Vec<String>,
    untouched: &mut Vec<String>,
) -> Result<String, Problem> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
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
        let Some(end) = closing(after) else {
            // Unterminated: left as it is, as StringSubstitutor does.
            out.push_str(at);
            rest = "";
            break;
        };
        let whole = &at[..end + 3];
        let inner = &after[..end];
        rest = &after[end + 1..];
        if chain.len() >= MAX_DEPTH {
            return Err(Problem::Unresolved {
                reference: whole.to_string(),
                why: format!("references nest or chain more than {MAX_DEPTH} deep"),
            });
        }
        let name_expr = if inner.contains("${") {
            chain.push(whole.to_string());
            let e = expand(inner, lookups, chain, untouched);
            chain.pop();
            // Messages quote the outermost reference whole.
            e.map_err(|p| match p {
                Problem::Unset { name } => Problem::Unresolved {
                    reference: whole.to_string(),
                    why: format!("environment variable `{name}` is not set"),
                },
                Problem::Unresolved { reference, why } => Problem::Unresolved {
                    reference: whole.to_string(),
                    why: format!("`{reference}` in it: {why}"),
                },
                Problem::Unsupported { why, .. } => Problem::Unsupported {
                    reference: whole.to_string(),
                    why,
                },
            })?
        } else {
            inner.to_string()
        };
        let (name, fallback) = match name_expr.find(":-") {
            Some(k) => (&name_expr[..k], Some(&name_expr[k + 2..])),
            None => (name_expr.as_str(), None),
        };
        let nested = name_expr != inner;
        match resolve(name, whole, lookups, chain, untouched)? {
            Some(v) => out.push_str(&v),
            None => match fallback {
                Some(f) => out.push_str(f),
                None => {
                    if let Some(var) = name.strip_prefix("env:") {
                        if nested {
                            return Err(Problem::Unresolved {
                                reference: whole.to_string(),
                                why: format!(
                                    "it names environment variable `{var}`, which is not set"
                                ),
                            });
                        }
                        return Err(Problem::Unset {
                            name: var.to_string(),
                        });
                    }
                    if let Some(prop) = name.strip_prefix("sys:") {
                        return Err(Problem::Unresolved {
                            reference: whole.to_string(),
                            why: format!(
                                "system property `{prop}` is not set: pass -D{prop}=VALUE to \
                                 flumen, or give a fallback: ${{sys:{prop}:-value}}"
                            ),
                        });
                    }
                    out.push_str(whole);
                    untouched.push(whole.to_string());
                }
            },
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// The value `name` resolves to, `None` when nothing defines it.
fn resolve(
    name: &str,
    whole: &str,
    lookups: &Lookups<'_>,
    chain: &mut Vec<String>,
    untouched: &mut Vec<String>,
) -> Result<Option<String>, Problem> {
    if let Some(var) = name.strip_prefix("env:") {
        return Ok((lookups.env)(var));
    }
    if let Some(prop) = name.strip_prefix("sys:") {
        return Ok((lookups.env)(&format!("sys:{prop}")));
    }
    if name.starts_with("java:") || name.starts_with("date:") {
        return Err(Problem::Unsupported {
            reference: whole.to_string(),
            why: "The java: and date: lookups are not supported (there is no JVM); use \
                  ${env:NAME} or ${sys:NAME} with -DNAME=value",
        });
    }
    // Flume's default lookup: another property of the file, then (with
    // EnvVarResolverProperties) the environment.
    if let Some(raw) = (lookups.property)(name) {
        if chain.iter().any(|c| c == name) {
            return Err(Problem::Unresolved {
                reference: whole.to_string(),
                why: format!(
                    "it refers to itself through {}; break the loop",
                    chain.join(" -> ")
                ),
            });
        }
        chain.push(name.to_string());
        let v = expand(&raw, lookups, chain, untouched);
        chain.pop();
        // Flume trims every value.
        return v.map(|v| Some(v.trim().to_string()));
    }
    if lookups.env_for_plain() {
        return Ok((lookups.env)(name));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "PORT" => Some("4141".into()),
            "DIR" => Some("/var/lib/flumen".into()),
            "EMPTY" => Some(String::new()),
            "WHICH" => Some("PORT".into()),
            "HOME" => Some("/home/flume".into()),
            "sys:collector" => Some("c1.example:4545".into()),
            _ => None,
        }
    }

    fn env_resolver(name: &str) -> Option<String> {
        if name == "sys:propertiesImplementation" {
            return Some(ENV_VAR_RESOLVER.into());
        }
        env(name)
    }

    fn property(key: &str) -> Option<String> {
        match key {
            "a1.sources.r1.port" => Some(" 4545 ".into()),
            "base" => Some("${env:DIR}/x".into()),
            "loop.a" => Some("${loop.b}".into()),
            "loop.b" => Some("${loop.a}".into()),
            "which" => Some("DIR".into()),
            _ => None,
        }
    }

    fn sub_with(v: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Substituted, Problem> {
        substitute(
            v,
            &Lookups {
                env,
                property: &property,
            },
        )
    }

    fn sub(v: &str) -> Result<Substituted, Problem> {
        sub_with(v, &env)
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
        assert_eq!(ok("${NOPE:-x}"), "x");
        assert_eq!(ok("${sys:nope:-y}"), "y");
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
    fn plain_references_name_other_properties_else_stay() {
        assert_eq!(ok("${a1.sources.r1.port}"), "4545");
        assert_eq!(ok("${base}/y"), "/var/lib/flumen/x/y");
        let s = sub("tail -F ${HOME}/app.log ${X:-y}").expect("substitutes");
        assert_eq!(s.value, "tail -F ${HOME}/app.log y");
        assert_eq!(s.untouched, vec!["${HOME}".to_string()]);
    }

    #[test]
    fn env_var_resolver_properties_makes_plain_references_read_the_environment() {
        let s = sub_with("tail -F ${HOME}/app.log ${PORT}", &env_resolver).expect("subst");
        assert_eq!(s.value, "tail -F /home/flume/app.log 4141");
        assert!(s.untouched.is_empty());
        // A property still wins over a variable of the same name.
        let s = sub_with("${a1.sources.r1.port}", &env_resolver).expect("subst");
        assert_eq!(s.value, "4545");
        // Unset: left as it is, as without the switch.
        let s = sub_with("${NOPE}", &env_resolver).expect("subst");
        assert_eq!(s.untouched, vec!["${NOPE}".to_string()]);
    }

    #[test]
    fn system_properties_come_from_dash_d() {
        assert_eq!(ok("${sys:collector}"), "c1.example:4545");
        match sub("${sys:nope}") {
            Err(Problem::Unresolved { reference, why }) => {
                assert_eq!(reference, "${sys:nope}");
                assert!(why.contains("-Dnope=VALUE"), "{why}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn nested_references_resolve_the_inner_one_first() {
        assert_eq!(ok("${env:${which}}"), "/var/lib/flumen");
        assert_eq!(ok("${env:${env:WHICH}}"), "4141");
        match sub("x ${env:${env:NOPE:-ALSO_NOPE}} y") {
            Err(Problem::Unresolved { reference, why }) => {
                assert_eq!(reference, "${env:${env:NOPE:-ALSO_NOPE}}", "quoted whole");
                assert!(why.contains("ALSO_NOPE"), "{why}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn loops_and_other_lookups_are_errors() {
        assert!(
            matches!(sub("${loop.a}"), Err(Problem::Unresolved { ref why, .. }) if why.contains("loop")),
            "{:?}",
            sub("${loop.a}")
        );
        for v in ["${java:version}", "${date:yyyy}"] {
            assert!(
                matches!(sub(v), Err(Problem::Unsupported { .. })),
                "{v}: {:?}",
                sub(v)
            );
        }
    }
}
