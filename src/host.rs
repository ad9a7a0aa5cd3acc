//! This host's names as Java's `InetAddress.getLocalHost()` reports them, looked up once per
//! process: the host name, the address it resolves to (IPv4 preferred) and the canonical name
//! a confirmed reverse lookup gives. Used by the hdfs sink's `%[localhost]`, `%[IP]`,
//! `%[FQDN]` escapes and by the `host` interceptor, so both report the same values.

use std::net::IpAddr;
use std::sync::OnceLock;

/// The values of `%[localhost]`, `%[IP]` and `%[FQDN]`, as Java's
/// `InetAddress.getLocalHost()` gives them: the host name, the address it resolves to, and the
/// canonical name found by reverse lookup of that address.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostNames {
    pub localhost: String,
    pub ip: String,
    pub fqdn: String,
}

impl HostNames {
    /// Looks the names up once per process (DNS can be slow; Flume caches them the same way).
    /// Never fails: an unresolvable host name gives `127.0.0.1`, and a failed or unconfirmed
    /// reverse lookup gives the address itself as the FQDN, as Java does. Call it only when a
    /// template [`needs_host_names`](PathTemplate::needs_host_names).
    pub fn detect() -> HostNames {
        static DETECTED: OnceLock<HostNames> = OnceLock::new();
        DETECTED.get_or_init(Self::detect_uncached).clone()
    }

    fn detect_uncached() -> HostNames {
        let localhost = dns_lookup::get_hostname()
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".to_owned());
        let addr = resolve(&localhost).unwrap_or(IpAddr::from([127, 0, 0, 1]));
        let ip = addr.to_string();
        // Java confirms the reverse answer by a forward lookup before trusting it.
        let fqdn = dns_lookup::lookup_addr(&addr)
            .ok()
            .filter(|name| {
                dns_lookup::lookup_host(name)
                    .map(|mut addrs| addrs.any(|a| a == addr))
                    .unwrap_or(false)
            })
            .unwrap_or_else(|| ip.clone());
        HostNames {
            localhost,
            ip,
            fqdn,
        }
    }
}

/// The first IPv4 address of `host`, else its first address (Java prefers IPv4 by default).
fn resolve(host: &str) -> Option<IpAddr> {
    let addrs: Vec<IpAddr> = dns_lookup::lookup_host(host).ok()?.collect();
    addrs
        .iter()
        .copied()
        .find(IpAddr::is_ipv4)
        .or_else(|| addrs.first().copied())
}
