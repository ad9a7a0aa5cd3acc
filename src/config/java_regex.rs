//! Java regular expressions, as Flume users write them in their files, run by the `regex`
//! crate with Java's meaning, or refused.
//!
//! Flume's interceptors compile their patterns with `java.util.regex.Pattern`. The `regex`
//! crate reads most of that syntax the same way, but a few constructs it accepts mean
//! something else, and those would silently match different events. [`compile`] therefore
//! rewrites the constructs whose meaning differs into the crate's spelling of Java's meaning,
//! and refuses the ones it cannot render faithfully, saying why:
//!
//! | Java | Java's meaning | here |
//! |---|---|---|
//! | `\d \w \s` (and `\D \W \S`), `\b \B` | ASCII classes (their negations: any other character) and word boundary | classes written out (`[0-9]`, `[^0-9]`, ...), boundaries the crate's ASCII forms (the crate's own are Unicode) |
//! | `.` | any character but `\n`, `\r`, U+0085, U+2028, U+2029 | rewritten to that class (the crate's excludes `\n` only) |
//! | `\Q...\E` | the text between, quoted | rewritten as escaped text |
//! | `\p{..}`, `\P{..}` | POSIX and Java classes (`\p{Alpha}` is ASCII) | refused: the crate reads them as Unicode properties |
//! | `\v` | vertical whitespace | refused: a vertical tab to the crate |
//! | `[[:alpha:]]` | a class of `:`, `a`, `l`, ... | refused: an ASCII class to the crate |
//! | `(?i)`, `(?s)` and other inline flags | ASCII case folding, dot-all, ... | refused: the crate folds Unicode case, and `.` is rewritten as above |
//! | `a*+`, `a++`, `a?+`, `a{n}+` | possessive: never backtracks | refused: the crate reads a repetition of a repetition |
//! | look-around, back-references, atomic groups | | refused by the crate itself (it has none) |
//!
//! `matches` semantics (the whole input must match, as `Matcher.matches()`) are available
//! with [`JavaRegex::full`]. Invariant: a pattern is either run with Java's meaning or refused
//! at start-up; never run differently.

use regex::Regex;

/// A compiled Java pattern. See the module docs.
#[derive(Clone, Debug)]
pub struct JavaRegex {
    /// The pattern as the user wrote it.
    pub source: String,
    /// Matches anywhere (`Matcher.find()`).
    pub find: Regex,
    /// Matches the whole input only (`Matcher.matches()`).
    pub full: Regex,
}

impl PartialEq for JavaRegex {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Eq for JavaRegex {}

impl JavaRegex {
    /// Whether the whole of `s` matches, as Java's `Pattern.matcher(s).matches()`.
    pub fn matches_whole(&self, s: &str) -> bool {
        self.full.is_match(s)
    }
}

/// Java's `.`: anything but its line terminators.
const JAVA_DOT: &str = r"[^\n\r\x{85}\x{2028}\x{2029}]";

/// Compiles Java `pattern`; the error says what is refused and why.
pub fn compile(pattern: &str) -> Result<JavaRegex, String> {
    let translated = translate(pattern)?;
    let build = |p: &str| {
        Regex::new(p).map_err(|e| {
            format!(
                "a Java regular expression the `regex` crate can run with Java's meaning: {}",
                first_line(&e.to_string())
            )
        })
    };
    Ok(JavaRegex {
        source: pattern.to_string(),
        find: build(&translated)?,
        full: build(&format!(r"\A(?:{translated})\z"))?,
    })
}

fn first_line(s: &str) -> String {
    s.lines()
        .filter(|l| l.starts_with("error:"))
        .map(str::to_string)
        .next()
        .unwrap_or_else(|| s.replace('\n', " "))
}

/// Java's syntax to the crate's, construct by construct (see the module docs).
fn translate(p: &str) -> Result<String, String> {
    let refuse = |what: &str, why: &str| Err(format!("no `{what}` ({why})"));
    let chars: Vec<char> = p.chars().collect();
    let mut out = String::with_capacity(p.len() + 16);
    let mut i = 0;
    // Depth of `[...]`, Java classes nest; whether each open one is negated (`[^`).
    let mut class = 0usize;
    let mut negated: Vec<bool> = Vec::new();
    // Whether the previous token was a quantifier (`*`, `+`, `?`, `{n,m}`): a `+` after one
    // makes it possessive in Java, which the crate would read as a repetition of a repetition.
    let mut after_quantifier = false;
    while let Some(&c) = chars.get(i) {
        let quantifier = class == 0 && matches!(c, '*' | '+' | '?' | '}');
        if c == '+' && after_quantifier {
            return refuse(
                "possessive quantifiers (*+, ++, ?+, {n}+)",
                "the crate would repeat the repetition instead of never backtracking",
            );
        }
        after_quantifier = quantifier;
        match c {
            '\\' => {
                let Some(&e) = chars.get(i + 1) else {
                    return Err("a pattern that does not end in a lone `\\`".into());
                };
                after_quantifier = false;
                match e {
                    'Q' => {
                        // Quoted text runs to `\E` or the end, as in Java.
                        let start = i + 2;
                        let mut end = start;
                        while end < chars.len()
                            && !(chars[end] == '\\' && chars.get(end + 1) == Some(&'E'))
                        {
                            end += 1;
                        }
                        let quoted: String = chars[start..end].iter().collect();
                        out.push_str(&regex::escape(&quoted));
                        i = if end < chars.len() { end + 2 } else { end };
                        continue;
                    }
                    'd' | 'w' | 's' if class > 0 => out.push_str(match e {
                        'd' => "0-9",
                        'w' => "0-9A-Za-z_",
                        _ => r" \t\n\x0B\f\r",
                    }),
                    // In a class that is not negated, a negated class is a union with
                    // a nested class in both (`[\s\S]`: anything). Under a `[^`, Java 8
                    // and Java 9+ disagree on what the `^` applies to (JDK-6609854).
                    'D' | 'W' | 'S' if class > 0 && negated.contains(&true) => {
                        return refuse(
                            &format!("\\{e}"),
                            "a negated class inside [^...]: Java 8 and 9 read it differently; write the class out",
                        )
                    }
                    'D' | 'W' | 'S' if class > 0 => out.push_str(match e {
                        'D' => "[^0-9]",
                        'W' => "[^0-9A-Za-z_]",
                        _ => r"[^ \t\n\x0B\f\r]",
                    }),
                    // Classes written out: the crate's ASCII forms of the negated ones
                    // (`(?-u:\S)`) match bytes, which a pattern run on text may not.
                    'd' => out.push_str("[0-9]"),
                    'D' => out.push_str("[^0-9]"),
                    'w' => out.push_str("[0-9A-Za-z_]"),
                    'W' => out.push_str("[^0-9A-Za-z_]"),
                    's' => out.push_str(r"[ \t\n\x0B\f\r]"),
                    'S' => out.push_str(r"[^ \t\n\x0B\f\r]"),
                    'b' | 'B' => {
                        out.push_str("(?-u:\\");
                        out.push(e);
                        out.push(')');
                    }
                    'p' | 'P' => {
                        return refuse(
                            &format!("\\{e}{{...}}"),
                            "Java's property classes are ASCII, the crate's Unicode: write the class out, e.g. [A-Za-z]",
                        )
                    }
                    'v' => {
                        return refuse(
                            "\\v",
                            "Java's vertical whitespace class is a single vertical tab to the crate",
                        )
                    }
                    _ => {
                        out.push('\\');
                        out.push(e);
                    }
                }
                i += 2;
                continue;
            }
            '[' => {
                if chars.get(i + 1) == Some(&':') && class > 0 {
                    return refuse("[:", "the crate reads [[:name:]] as an ASCII class, Java as the characters of name");
                }
                if chars.get(i + 1) == Some(&':') {
                    return refuse("[:", "the crate reads [:name:] as an ASCII class, Java as the characters of name");
                }
                class += 1;
                out.push('[');
                // A `]` right after `[` or `[^` is a literal in both.
                let negates = chars.get(i + 1) == Some(&'^');
                negated.push(negates);
                if negates {
                    out.push('^');
                    i += 1;
                }
                if chars.get(i + 1) == Some(&']') {
                    out.push_str("\\]");
                    i += 1;
                }
            }
            ']' if class > 0 => {
                class -= 1;
                negated.pop();
                out.push(']');
            }
            '.' if class == 0 => out.push_str(JAVA_DOT),
            '(' if class == 0 && chars.get(i + 1) == Some(&'?') => {
                let next = chars.get(i + 2).copied();
                let named =
                    next == Some('<') && chars.get(i + 3).is_some_and(|c| c.is_ascii_alphabetic());
                if next == Some(':') || named {
                    out.push_str("(?");
                    i += 2;
                    continue;
                }
                if next.is_some_and(|c| c.is_ascii_alphabetic() || c == '-') {
                    return refuse(
                        "(?flags)",
                        "inline flags: Java folds ASCII case and its `.` and `^`/`$` know more line terminators",
                    );
                }
                // Look-around and atomic groups: the crate refuses them itself.
                out.push('(');
            }
            _ => out.push(c),
        }
        i += 1;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_keep_javas_ascii_meaning() {
        let r = compile(r"h\d+").expect("compiles");
        assert!(r.matches_whole("h42"));
        // Arabic-Indic digits are \d to the crate, not to Java.
        assert!(!r.matches_whole("h\u{663}"));
        let r = compile(r"[\w-]+").expect("compiles");
        assert!(r.matches_whole("a_b-9"));
        assert!(!r.matches_whole("é"));
        let r = compile(r"\s").expect("compiles");
        assert!(!r.find.is_match("\u{a0}"));
        // The negated classes match any other character, non-ASCII included, as in Java.
        let r = compile(r"(\S+) (\D+) (\W+)").expect("compiles");
        let c = r.find.captures("héllo ab-é +é").expect("a match");
        assert_eq!((&c[1], &c[2], &c[3]), ("héllo", "ab-é", "+é"));
        assert!(!compile(r"\S").expect("compiles").find.is_match(" \t"));
    }

    #[test]
    fn a_negated_class_inside_a_class_is_a_union_as_in_java() {
        let r = compile(r"^[\s\S]{3}$").expect("compiles");
        assert!(r.find.is_match("a\nü"));
        let r = compile(r"^[a\D]+$").expect("compiles");
        assert!(r.find.is_match("ax-") && !r.find.is_match("a1"));
        let r = compile(r"^[\W_]+$").expect("compiles");
        assert!(r.find.is_match("-_ ") && !r.find.is_match("x"));
    }

    #[test]
    fn dot_stops_at_javas_line_terminators() {
        let r = compile("a.b").expect("compiles");
        assert!(r.matches_whole("axb"));
        assert!(!r.matches_whole("a\rb"));
        assert!(!r.matches_whole("a\u{2028}b"));
        // In a class a dot is a dot.
        assert!(compile("[.]").expect("compiles").matches_whole("."));
    }

    #[test]
    fn quoting_full_match_and_groups() {
        let r = compile(r"\Qa.b*\Ec").expect("compiles");
        assert!(r.matches_whole("a.b*c"));
        assert!(!r.matches_whole("axbbc"));
        let r = compile("(?<h>x-)?(?:y|z)").expect("compiles");
        assert!(r.matches_whole("x-y") && r.matches_whole("z"));
        assert!(!r.matches_whole("x-yz"));
        assert!(r.find.is_match("x-yz"));
    }

    #[test]
    fn constructs_that_would_mean_something_else_are_refused() {
        for (p, says) in [
            (r"\p{Alpha}", "property classes"),
            (r"a\vb", "vertical"),
            ("[[:alpha:]]", "[:name:]"),
            ("(?i)abc", "inline flags"),
            (r"[^\D]", "negated class"),
            ("a*+", "possessive"),
            ("x{2}+", "possessive"),
        ] {
            let e = compile(p).expect_err(p);
            assert!(e.contains(says), "{p}: {e} (wanted {says})");
        }
        // What the crate cannot do at all, it refuses itself.
        for p in ["a(?=b)", r"(a)\1", "(?>a)"] {
            let e = compile(p).expect_err(p);
            assert!(e.contains("the `regex` crate"), "{p}: {e}");
        }
    }
}
