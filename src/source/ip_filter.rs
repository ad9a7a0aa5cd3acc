//! The avro source's `ipFilter` / `ipFilterRules` (Flume's AvroSource, which hands the rules
//! to Netty's `IpFilterRuleHandler`).
//!
//! Syntax: a comma-separated list of `<allow|deny>:<ip|name>:<pattern>`, e.g.
//! `allow:ip:127.*,allow:name:localhost,deny:ip:*`. The pattern is a glob: `*` matches any run
//! of characters, `?` exactly one. `ip` patterns match the peer's textual address (`127.0.0.1`,
//! `::1`); `name` patterns match its host name from a reverse lookup (ASCII case-insensitive;
//! `name:localhost` also matches any loopback peer). Rules are checked in order and the first
//! matching rule decides; a peer no rule matches is allowed (Netty's handler accepts when no
//! rule matches).

use std::net::IpAddr;

/// Expected syntax, for error messages.
pub const SYNTAX: &str = "<allow|deny>:<ip|name>:<pattern>, e.g. allow:ip:127.*,deny:ip:*";

/// What a matching rule does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Allow,
    Deny,
}

/// What a rule's pattern is matched against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// The peer's textual address.
    Ip,
    /// The peer's host name (reverse lookup).
    Name,
}

/// One `<allow|deny>:<ip|name>:<pattern>` rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IpFilterRule {
    pub access: Access,
    pub target: Target,
    pub pattern: String,
}

impl std::fmt::Display for IpFilterRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let access = match self.access {
            Access::Allow => "allow",
            Access::Deny => "deny",
        };
        let target = match self.target {
            Target::Ip => "ip",
            Target::Name => "name",
        };
        write!(f, "{access}:{target}:{}", self.pattern)
    }
}

/// The decision for one peer: allowed or denied, and by which rule (`None`: no rule matched,
/// so allowed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict<'a> {
    pub allowed: bool,
    pub rule: Option<&'a IpFilterRule>,
}

/// An ordered list of rules (`ipFilterRules`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IpFilter {
    pub rules: Vec<IpFilterRule>,
}

/// Parses `ipFilterRules`. The error names the offending rule and the expected syntax.
pub fn parse(text: &str) -> Result<IpFilter, String> {
    let mut rules = Vec::new();
    for raw in text.split(',') {
        let rule = raw.trim();
        let bad = || format!("invalid rule `{rule}`: expected {SYNTAX}");
        let mut parts = rule.splitn(3, ':');
        let access = match parts.next() {
            Some("allow") => Access::Allow,
            Some("deny") => Access::Deny,
            _ => return Err(bad()),
        };
        let target = match parts.next() {
            Some("ip") => Target::Ip,
            Some("name") => Target::Name,
            _ => return Err(bad()),
        };
        let pattern = match parts.next() {
            Some(p) if !p.trim().is_empty() => p.trim().to_string(),
            _ => return Err(bad()),
        };
        rules.push(IpFilterRule {
            access,
            target,
            pattern,
        });
    }
    if rules.is_empty() {
        return Err(format!("no rules: expected {SYNTAX}"));
    }
    Ok(IpFilter { rules })
}

impl IpFilter {
    /// Decides for `peer`, looking its name up (once, only if a `name` rule is reached) with
    /// `lookup`. A failed lookup matches no `name` rule.
    pub fn check_with(
        &self,
        peer: IpAddr,
        mut lookup: impl FnMut(IpAddr) -> Option<String>,
    ) -> Verdict<'_> {
        let peer = peer.to_canonical();
        let text = peer.to_string();
        let mut name: Option<Option<String>> = None;
        for rule in &self.rules {
            let hit = match rule.target {
                Target::Ip => glob(&rule.pattern, &text, false),
                Target::Name => {
                    if rule.pattern.eq_ignore_ascii_case("localhost") && peer.is_loopback() {
                        true
                    } else {
                        let n = name.get_or_insert_with(|| lookup(peer));
                        n.as_deref().is_some_and(|n| glob(&rule.pattern, n, true))
                    }
                }
            };
            if hit {
                return Verdict {
                    allowed: rule.access == Access::Allow,
                    rule: Some(rule),
                };
            }
        }
        Verdict {
            allowed: true,
            rule: None,
        }
    }

    /// [`IpFilter::check_with`] using the system resolver for the reverse lookup.
    pub fn check(&self, peer: IpAddr) -> Verdict<'_> {
        self.check_with(peer, |ip| dns_lookup::lookup_addr(&ip).ok())
    }
}

/// Whether `text` matches the glob `pattern` (`*` any run, `?` one character).
pub fn glob(pattern: &str, text: &str, ignore_case: bool) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let eq = |a: char, b: char| {
        if ignore_case {
            a.eq_ignore_ascii_case(&b)
        } else {
            a == b
        }
    };
    // Iterative matching with backtracking to the last `*`.
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || (p[pi] != '*' && eq(p[pi], t[ti]))) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("an address")
    }

    #[test]
    fn parses_good_rules_in_order() {
        let f = parse(" allow:ip:127.* , allow:name:localhost,deny:ip:*,allow:ip:fe80::*")
            .expect("parses");
        let shown: Vec<String> = f.rules.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "allow:ip:127.*",
                "allow:name:localhost",
                "deny:ip:*",
                "allow:ip:fe80::*"
            ]
        );
        assert_eq!(f.rules[2].access, Access::Deny);
        assert_eq!(f.rules[1].target, Target::Name);
    }

    #[test]
    fn refuses_bad_rules_naming_them() {
        for bad in [
            "",
            "allow",
            "allow:ip",
            "allow:ip:",
            "permit:ip:*",
            "Allow:ip:*",
            "allow:host:*",
            "allow:ip:*,,deny:ip:*",
            "allow:ip:*,deny",
        ] {
            let e = parse(bad).expect_err("refused");
            assert!(e.contains(SYNTAX), "{bad:?}: {e}");
        }
        let e = parse("allow:ip:1.*,permit:ip:*").expect_err("refused");
        assert!(e.contains("`permit:ip:*`"), "{e}");
    }

    #[test]
    fn globs() {
        assert!(glob("127.*", "127.0.0.1", false));
        assert!(glob("*", "", false));
        assert!(glob("10.?.0.1", "10.5.0.1", false));
        assert!(!glob("10.?.0.1", "10.55.0.1", false));
        assert!(glob("*.example.com", "a.b.example.com", false));
        assert!(!glob("*.example.com", "example.com", false));
        assert!(glob("a*b*c", "axxbyyc", false));
        assert!(!glob("a*b*c", "axxbyy", false));
        assert!(!glob("127.*", "10.127.0.1", false));
        assert!(glob("HOST*", "host1", true));
        assert!(!glob("HOST*", "host1", false));
    }

    #[test]
    fn first_match_wins() {
        let f = parse("allow:ip:127.*,deny:ip:*").expect("parses");
        let v = f.check_with(ip("127.0.0.1"), |_| None);
        assert!(v.allowed);
        assert_eq!(v.rule.expect("a rule").to_string(), "allow:ip:127.*");
        let v = f.check_with(ip("10.0.0.1"), |_| None);
        assert!(!v.allowed);
        assert_eq!(v.rule.expect("a rule").to_string(), "deny:ip:*");

        let f = parse("deny:ip:127.*,allow:ip:*").expect("parses");
        assert!(!f.check_with(ip("127.0.0.1"), |_| None).allowed);
        // IPv4-mapped IPv6 peers are matched as IPv4.
        assert!(!f.check_with(ip("::ffff:127.0.0.1"), |_| None).allowed);
    }

    #[test]
    fn nothing_matching_allows() {
        let f = parse("deny:ip:10.*,deny:name:*.bad.example").expect("parses");
        let v = f.check_with(ip("192.168.1.2"), |_| Some("ok.example".into()));
        assert!(v.allowed);
        assert_eq!(v.rule, None);
        // A failed lookup matches no name rule.
        assert!(f.check_with(ip("192.168.1.2"), |_| None).allowed);
    }

    #[test]
    fn name_rules_use_the_lookup_once_and_localhost_means_loopback() {
        let f = parse("deny:name:*.BAD.example,allow:name:good*,deny:ip:*").expect("parses");
        let mut calls = 0;
        let v = f.check_with(ip("192.168.1.2"), |_| {
            calls += 1;
            Some("good1.lan".into())
        });
        assert!(v.allowed);
        assert_eq!(calls, 1);
        assert!(
            !f.check_with(ip("192.168.1.3"), |_| Some("x.bad.example".into()))
                .allowed
        );

        let f = parse("allow:name:localhost,deny:ip:*").expect("parses");
        assert!(f.check_with(ip("127.0.0.1"), |_| None).allowed);
        assert!(f.check_with(ip("::1"), |_| None).allowed);
        assert!(!f.check_with(ip("10.1.1.1"), |_| None).allowed);
    }
}
