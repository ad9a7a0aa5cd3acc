//! The `static` interceptor (Flume's StaticInterceptor): sets a fixed header on every event.
//! (The file is not called `static.rs`: `static` is a Rust keyword.)

use super::{set_header, Interceptor, InterceptorSpec, InterceptorType};
use crate::config::{ConfigError, Keys, Registered};
use crate::event::Event;

/// `static` / Flume's `StaticInterceptor$Builder`.
pub const TYPE: InterceptorType = Registered {
    alias: "static",
    class: Some("org.apache.flume.interceptor.StaticInterceptor$Builder"),
    parse,
    minimal: &[],
};

/// The static interceptor's keys (docs/CONFIG.md, `static`); it is its own interceptor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StaticConfig {
    /// `key` (default `key`).
    pub key: String,
    /// `value` (default `value`).
    pub value: String,
    /// `preserveExisting` (default **true**, unlike Flume's other interceptors).
    pub preserve_existing: bool,
}

impl Default for StaticConfig {
    fn default() -> Self {
        StaticConfig {
            key: "key".into(),
            value: "value".into(),
            preserve_existing: true,
        }
    }
}

fn parse(keys: &mut Keys<'_>) -> Result<Box<dyn InterceptorSpec>, ConfigError> {
    let d = StaticConfig::default();
    Ok(Box::new(StaticConfig {
        key: keys.text("key", &d.key),
        value: keys.text("value", &d.value),
        preserve_existing: keys.boolean("preserveExisting", d.preserve_existing)?,
    }))
}

impl InterceptorSpec for StaticConfig {
    fn build(&self) -> Box<dyn Interceptor> {
        Box::new(self.clone())
    }
}

impl Interceptor for StaticConfig {
    fn intercept(&self, event: &mut Event) -> bool {
        set_header(event, &self.key, self.preserve_existing, || {
            self.value.clone()
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
        let got: StaticConfig = parse_as(parse, &[]).expect("defaults");
        assert_eq!(got, StaticConfig::default());
        let pairs = [
            ("key", "datacenter"),
            ("value", "NEW_YORK"),
            ("preserveExisting", "false"),
        ];
        let got: StaticConfig = parse_as(parse, &pairs).expect("set");
        let want = StaticConfig {
            key: "datacenter".into(),
            value: "NEW_YORK".into(),
            preserve_existing: false,
        };
        assert_eq!(got, want);
    }

    #[test]
    fn static_preserve_existing_both_ways() {
        let keep = StaticConfig {
            key: "datacenter".into(),
            value: "NEW_YORK".into(),
            preserve_existing: true,
        };
        let replace = StaticConfig {
            preserve_existing: false,
            ..keep.clone()
        };
        let mut e = event_with("datacenter", "LONDON");
        keep.intercept(&mut e);
        assert_eq!(e.header("datacenter"), Some("LONDON"));
        replace.intercept(&mut e);
        assert_eq!(e.header("datacenter"), Some("NEW_YORK"));
        let mut e = Event::new("x");
        keep.intercept(&mut e);
        assert_eq!(e.header("datacenter"), Some("NEW_YORK"));
    }
}
