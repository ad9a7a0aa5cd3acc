//! The `uuid` interceptor (Flume's UUIDInterceptor, shipped in its morphline-solr sink module;
//! the alias `uuid` is flumen's, Flume has only the class name): sets a header to a prefix and
//! a random (version 4) UUID, as `java.util.UUID.randomUUID().toString()` writes it.

use super::{set_header, Interceptor, InterceptorSpec, InterceptorType};
use crate::config::{ConfigError, Keys, Registered};
use crate::event::Event;

/// `uuid` / Flume's `UUIDInterceptor$Builder`.
pub const TYPE: InterceptorType = Registered {
    alias: "uuid",
    class: Some("org.apache.flume.sink.solr.morphline.UUIDInterceptor$Builder"),
    parse,
    minimal: &[],
};

/// The uuid interceptor's keys (docs/CONFIG.md, `uuid`); it is its own interceptor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UuidConfig {
    /// `headerName` (default `id`).
    pub header_name: String,
    /// `preserveExisting` (default **true**): keep an id the event already has.
    pub preserve_existing: bool,
    /// `prefix` (default empty): put before the UUID.
    pub prefix: String,
}

impl Default for UuidConfig {
    fn default() -> Self {
        UuidConfig {
            header_name: "id".into(),
            preserve_existing: true,
            prefix: String::new(),
        }
    }
}

fn parse(keys: &mut Keys<'_>) -> Result<Box<dyn InterceptorSpec>, ConfigError> {
    let d = UuidConfig::default();
    Ok(Box::new(UuidConfig {
        header_name: keys.text("headerName", &d.header_name),
        preserve_existing: keys.boolean("preserveExisting", d.preserve_existing)?,
        prefix: keys.text("prefix", &d.prefix),
    }))
}

impl InterceptorSpec for UuidConfig {
    fn build(&self) -> Box<dyn Interceptor> {
        Box::new(self.clone())
    }
}

impl Interceptor for UuidConfig {
    fn intercept(&self, event: &mut Event) -> bool {
        set_header(event, &self.header_name, self.preserve_existing, || {
            format!("{}{}", self.prefix, uuid::Uuid::new_v4().hyphenated())
        });
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interceptor::testing::{event_with, parse_as};

    #[test]
    fn keys_and_defaults() {
        let got: UuidConfig = parse_as(parse, &[]).expect("defaults");
        assert_eq!(got, UuidConfig::default());
        let pairs = [
            ("headerName", "eventId"),
            ("preserveExisting", "false"),
            ("prefix", "host1-"),
        ];
        let got: UuidConfig = parse_as(parse, &pairs).expect("set");
        let want = UuidConfig {
            header_name: "eventId".into(),
            preserve_existing: false,
            prefix: "host1-".into(),
        };
        assert_eq!(got, want);
        assert!(parse_as::<UuidConfig>(parse, &[("preserveExisting", "yes")]).is_err());
    }

    #[test]
    fn sets_a_fresh_v4_uuid_after_the_prefix() {
        let c = UuidConfig {
            prefix: "p-".into(),
            ..UuidConfig::default()
        };
        let mut a = Event::new("x");
        let mut b = Event::new("x");
        c.intercept(&mut a);
        c.intercept(&mut b);
        let id = a.header("id").expect("set");
        let u = id.strip_prefix("p-").expect("prefix");
        let parsed = uuid::Uuid::parse_str(u).expect("a UUID");
        assert_eq!(parsed.get_version_num(), 4);
        assert_eq!(u, u.to_lowercase());
        assert_eq!(u.len(), 36);
        assert_ne!(a.header("id"), b.header("id"));
    }

    #[test]
    fn preserve_existing_both_ways() {
        let keep = UuidConfig::default();
        let replace = UuidConfig {
            preserve_existing: false,
            ..UuidConfig::default()
        };
        let mut e = event_with("id", "mine");
        keep.intercept(&mut e);
        assert_eq!(e.header("id"), Some("mine"));
        replace.intercept(&mut e);
        assert_ne!(e.header("id"), Some("mine"));
    }
}
