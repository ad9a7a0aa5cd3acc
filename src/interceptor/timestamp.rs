//! The `timestamp` interceptor (Flume's TimestampInterceptor): sets a header to the time the
//! event passed, in milliseconds since the epoch (the header the hdfs sink's time escapes
//! read).

use super::{now_millis, set_header, Interceptor, InterceptorSpec, InterceptorType};
use crate::config::{ConfigError, Keys, Registered};
use crate::event::Event;

/// `timestamp` / Flume's `TimestampInterceptor$Builder`.
pub const TYPE: InterceptorType = Registered {
    alias: "timestamp",
    class: Some("org.apache.flume.interceptor.TimestampInterceptor$Builder"),
    parse,
    minimal: &[],
};

/// The timestamp interceptor's keys (docs/CONFIG.md, `timestamp`); it is its own interceptor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimestampConfig {
    /// `headerName` (default `timestamp`).
    pub header_name: String,
    /// `preserveExisting` (default false): keep a header the event already has.
    pub preserve_existing: bool,
}

impl Default for TimestampConfig {
    fn default() -> Self {
        TimestampConfig {
            header_name: "timestamp".into(),
            preserve_existing: false,
        }
    }
}

fn parse(keys: &mut Keys<'_>) -> Result<Box<dyn InterceptorSpec>, ConfigError> {
    let d = TimestampConfig::default();
    Ok(Box::new(TimestampConfig {
        header_name: keys.text("headerName", &d.header_name),
        preserve_existing: keys.boolean("preserveExisting", d.preserve_existing)?,
    }))
}

impl InterceptorSpec for TimestampConfig {
    fn build(&self) -> Box<dyn Interceptor> {
        Box::new(self.clone())
    }
}

impl Interceptor for TimestampConfig {
    fn intercept(&self, event: &mut Event) -> bool {
        set_header(event, &self.header_name, self.preserve_existing, || {
            now_millis().to_string()
        });
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Headers;

    fn event_with(key: &str, value: &str) -> Event {
        let mut h = Headers::new();
        h.insert(key.into(), value.into());
        Event::with_headers(h, "body")
    }

    #[test]
    fn keys_and_defaults() {
        let mut k = Keys::from_pairs("sources", "r1.interceptors.i1", &[]);
        let spec = parse(&mut k).expect("defaults");
        assert_eq!(
            (*spec).as_any().downcast_ref::<TimestampConfig>(),
            Some(&TimestampConfig::default())
        );
        let mut k = Keys::from_pairs(
            "sources",
            "r1.interceptors.i1",
            &[("headerName", "ts"), ("preserveExisting", "true")],
        );
        let spec = parse(&mut k).expect("set");
        let want = TimestampConfig {
            header_name: "ts".into(),
            preserve_existing: true,
        };
        assert_eq!(
            (*spec).as_any().downcast_ref::<TimestampConfig>(),
            Some(&want)
        );
        let mut k = Keys::from_pairs(
            "sources",
            "r1.interceptors.i1",
            &[("preserveExisting", "yes")],
        );
        assert!(parse(&mut k).is_err());
    }

    #[test]
    fn timestamp_sets_current_millis() {
        let i = TimestampConfig::default().build();
        let before = now_millis();
        let mut e = Event::new("x");
        assert!(i.intercept(&mut e));
        let after = now_millis();
        let ts: i64 = e.header("timestamp").expect("set").parse().expect("number");
        assert!(before <= ts && ts <= after, "{before} <= {ts} <= {after}");
        assert_eq!(&e.body()[..], b"x");
    }

    #[test]
    fn timestamp_preserve_existing_both_ways() {
        let keep = TimestampConfig {
            header_name: "ts".into(),
            preserve_existing: true,
        };
        let replace = TimestampConfig {
            header_name: "ts".into(),
            preserve_existing: false,
        };
        let mut e = event_with("ts", "42");
        keep.intercept(&mut e);
        assert_eq!(e.header("ts"), Some("42"));
        replace.intercept(&mut e);
        assert_ne!(e.header("ts"), Some("42"));
        // Preserving applies only to a header that is there.
        let mut e = Event::new("x");
        keep.intercept(&mut e);
        assert!(e.header("ts").is_some());
    }
}
