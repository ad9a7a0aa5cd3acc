//! The `host` interceptor (Flume's HostInterceptor): sets a header to the agent host's
//! address or name, looked up once when the interceptor is built.

use super::{set_header, Interceptor, InterceptorSpec, InterceptorType};
use crate::config::{ConfigError, Keys, Registered};
use crate::event::Event;

/// `host` / Flume's `HostInterceptor$Builder`.
pub const TYPE: InterceptorType = Registered {
    alias: "host",
    class: Some("org.apache.flume.interceptor.HostInterceptor$Builder"),
    parse,
    minimal: &[],
};

/// The host interceptor's keys (docs/CONFIG.md, `host`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostConfig {
    /// `hostHeader` (default `host`).
    pub host_header: String,
    /// `useIP` (default true): the address; false: the host name.
    pub use_ip: bool,
    /// `preserveExisting` (default false).
    pub preserve_existing: bool,
}

impl Default for HostConfig {
    fn default() -> Self {
        HostConfig {
            host_header: "host".into(),
            use_ip: true,
            preserve_existing: false,
        }
    }
}

fn parse(keys: &mut Keys<'_>) -> Result<Box<dyn InterceptorSpec>, ConfigError> {
    let d = HostConfig::default();
    Ok(Box::new(HostConfig {
        host_header: keys.text("hostHeader", &d.host_header),
        use_ip: keys.boolean("useIP", d.use_ip)?,
        preserve_existing: keys.boolean("preserveExisting", d.preserve_existing)?,
    }))
}

impl InterceptorSpec for HostConfig {
    /// Flume's: the local host's address, or its canonical (reverse-looked-up) name. The
    /// lookup never fails: an unresolvable host is 127.0.0.1, as in the hdfs sink's %[IP].
    fn build(&self) -> Box<dyn Interceptor> {
        let host = crate::host::HostNames::detect();
        Box::new(HostInterceptor {
            header: self.host_header.clone(),
            value: Some(if self.use_ip { host.ip } else { host.fqdn }),
            preserve_existing: self.preserve_existing,
        })
    }
}

/// A built host interceptor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostInterceptor {
    header: String,
    /// `None` when the host could not be found; then, as in Flume, nothing is set.
    value: Option<String>,
    preserve_existing: bool,
}

impl Interceptor for HostInterceptor {
    fn intercept(&self, event: &mut Event) -> bool {
        if let Some(value) = &self.value {
            set_header(event, &self.header, self.preserve_existing, || {
                value.clone()
            });
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interceptor::testing::{event_with, parse_as};

    #[test]
    fn keys_and_defaults() {
        let got: HostConfig = parse_as(parse, &[]).expect("defaults");
        assert_eq!(got, HostConfig::default());
        let pairs = [("hostHeader", "hostname"), ("useIP", "false")];
        let got: HostConfig = parse_as(parse, &pairs).expect("set");
        let want = HostConfig {
            host_header: "hostname".into(),
            use_ip: false,
            preserve_existing: false,
        };
        assert_eq!(got, want);
    }

    #[test]
    fn host_preserve_existing_both_ways_and_unknown_host() {
        let mk = |preserve_existing, value: Option<&str>| HostInterceptor {
            header: "host".into(),
            value: value.map(str::to_string),
            preserve_existing,
        };
        let mut e = event_with("host", "web1");
        mk(true, Some("10.0.0.1")).intercept(&mut e);
        assert_eq!(e.header("host"), Some("web1"));
        mk(false, Some("10.0.0.1")).intercept(&mut e);
        assert_eq!(e.header("host"), Some("10.0.0.1"));
        // A host that could not be found sets nothing and leaves what is there.
        mk(false, None).intercept(&mut e);
        assert_eq!(e.header("host"), Some("10.0.0.1"));
        let mut e = Event::new("x");
        mk(false, None).intercept(&mut e);
        assert!(e.headers().is_empty());
    }

    #[test]
    fn host_use_ip_false_gives_the_canonical_host_name() {
        let i = HostConfig {
            host_header: "hostname".into(),
            use_ip: false,
            preserve_existing: false,
        }
        .build();
        let mut e = Event::new("x");
        i.intercept(&mut e);
        let want = crate::host::HostNames::detect().fqdn;
        assert_eq!(e.header("hostname"), Some(want.as_str()));
    }

    #[test]
    fn host_use_ip_true_gives_an_address() {
        let i = HostConfig::default().build();
        let mut e = Event::new("x");
        i.intercept(&mut e);
        let v = e.header("host").expect("set");
        assert!(v.parse::<std::net::IpAddr>().is_ok(), "not an address: {v}");
    }
}
