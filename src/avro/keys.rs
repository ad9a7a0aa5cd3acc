//! The keys the avro source and the avro sink share: `ssl = true` and its keystore,
//! truststore and protocol/cipher lists (each unset key falling back to Flume's global SSL
//! settings, [`GLOBAL_SSL`]), and `compression-type` / `compression-level`. Read into the
//! settings types of [`super::tls`] and checked here, so a mistake stops start-up naming the
//! key; the files themselves are read when the component is built.

use std::path::PathBuf;

use crate::config::values::parse_bool;
use crate::config::{ConfigError, Keys};

/// Flume's global SSL settings (Flume 1.9+): a component key left unset falls back to the
/// environment variable (flumen also takes Flume's system property form, `flumen agent
/// -Djavax.net.ssl.keyStore=...`, which `cli::agent` turns into the same names).
pub const GLOBAL_SSL: [(&str, &str); 10] = [
    ("javax.net.ssl.keyStore", "FLUME_SSL_KEYSTORE_PATH"),
    (
        "javax.net.ssl.keyStorePassword",
        "FLUME_SSL_KEYSTORE_PASSWORD",
    ),
    ("javax.net.ssl.keyStoreType", "FLUME_SSL_KEYSTORE_TYPE"),
    ("javax.net.ssl.trustStore", "FLUME_SSL_TRUSTSTORE_PATH"),
    (
        "javax.net.ssl.trustStorePassword",
        "FLUME_SSL_TRUSTSTORE_PASSWORD",
    ),
    ("javax.net.ssl.trustStoreType", "FLUME_SSL_TRUSTSTORE_TYPE"),
    ("flume.ssl.include.protocols", "FLUME_SSL_INCLUDE_PROTOCOLS"),
    ("flume.ssl.exclude.protocols", "FLUME_SSL_EXCLUDE_PROTOCOLS"),
    (
        "flume.ssl.include.cipherSuites",
        "FLUME_SSL_INCLUDE_CIPHERSUITES",
    ),
    (
        "flume.ssl.exclude.cipherSuites",
        "FLUME_SSL_EXCLUDE_CIPHERSUITES",
    ),
];

/// Flume 1.11's protocol and cipher suite list keys of the avro source and sink.
pub const TLS_FILTER_KEYS: [&str; 4] = [
    "exclude-protocols",
    "include-protocols",
    "include-cipher-suites",
    "exclude-cipher-suites",
];

/// The protocol and cipher suite lists (Java names, space- or comma-separated as Flume's).
/// Names flumen does not have (SSLv3, TLSv1, TLSv1.1, other suites) are simply never enabled,
/// as in Flume, which filters the engine's own list.
pub fn tls_filters(keys: &mut Keys<'_>) -> super::tls::Filters {
    use super::tls::split_list;
    let defaults = super::tls::Filters::default();
    super::tls::Filters {
        include_protocols: keys
            .get_or_global("include-protocols", "FLUME_SSL_INCLUDE_PROTOCOLS")
            .map(|v| split_list(&v.value)),
        exclude_protocols: keys
            .get_or_global("exclude-protocols", "FLUME_SSL_EXCLUDE_PROTOCOLS")
            .map_or(defaults.exclude_protocols, |v| split_list(&v.value)),
        include_cipher_suites: keys
            .get_or_global("include-cipher-suites", "FLUME_SSL_INCLUDE_CIPHERSUITES")
            .map(|v| split_list(&v.value)),
        exclude_cipher_suites: keys
            .get_or_global("exclude-cipher-suites", "FLUME_SSL_EXCLUDE_CIPHERSUITES")
            .map_or_else(Vec::new, |v| split_list(&v.value)),
    }
}

/// `keystore-type` / `truststore-type` (else the `global` variable): PKCS12 (or PEM, ours); JKS
/// and JCEKS are refused with the command that converts the `store_key` file. `None` when
/// unset: the file's bytes decide.
fn store_type(
    keys: &mut Keys<'_>,
    key: &'static str,
    global: &str,
    store_key: &str,
    store_path: &str,
) -> Result<Option<super::tls::StoreType>, ConfigError> {
    use super::tls::StoreType;
    let from_env = keys.get(key).is_none();
    let Some(v) = keys.get_or_global(key, global) else {
        return Ok(None);
    };
    let origin = if from_env {
        format!(" (the value comes from {global}: the component sets no `{key}`)")
    } else {
        String::new()
    };
    let t = v.value.trim();
    if t.eq_ignore_ascii_case("PKCS12") || t.eq_ignore_ascii_case("PKCS#12") {
        Ok(Some(StoreType::Pkcs12))
    } else if t.eq_ignore_ascii_case("PEM") {
        Ok(Some(StoreType::Pem))
    } else if t.eq_ignore_ascii_case("JKS") || t.eq_ignore_ascii_case("JCEKS") {
        let pem = if store_key == "keystore" {
            "; or give the certificate chain and key as PEM files with `ssl-cert` and `ssl-key`"
        } else {
            "; or point it at a PEM file of the CA certificates"
        };
        Err(keys.unsupported(
            key,
            v.line,
            format!("{t} key stores (no well-kept Rust library reads them)"),
            format!(
                "Convert the store to PKCS#12: `keytool -importkeystore -srckeystore {store_path} -destkeystore {store_path}.p12 -deststoretype PKCS12`, point `{store_key}` at {store_path}.p12 and set `{key} = PKCS12`{pem}{origin}"
            ),
        ))
    } else {
        Err(keys.bad(
            key,
            &v,
            format!("PKCS12 (or PEM); JKS stores must be converted to PKCS12{origin}"),
        ))
    }
}

/// A TLS server's keys as every listening source takes them (avro, thrift, syslogtcp): with
/// `ssl = true`, [`server_tls`]; otherwise `None`, and the keystore keys are ignored with a
/// warning that they only apply with `ssl = true`.
pub fn optional_server_tls(
    keys: &mut Keys<'_>,
) -> Result<Option<super::tls::ServerTls>, ConfigError> {
    if keys.boolean("ssl", false)? {
        return Ok(Some(server_tls(keys)?));
    }
    ignore_server_tls(keys);
    Ok(None)
}

/// Ignores the keystore and protocol keys of a TLS server that is not on (`ssl = false`),
/// with a warning each.
pub fn ignore_server_tls(keys: &mut Keys<'_>) {
    for key in [
        "keystore",
        "keystore-password",
        "keystore-type",
        "ssl-cert",
        "ssl-key",
    ]
    .into_iter()
    .chain(TLS_FILTER_KEYS)
    {
        keys.ignore(key, "only used with `ssl = true`");
    }
}

/// The avro source's `ssl = true` keys: Flume's keystore, or our PEM `ssl-cert`/`ssl-key`.
pub fn server_tls(keys: &mut Keys<'_>) -> Result<super::tls::ServerTls, ConfigError> {
    use super::tls::{Identity, Secret, ServerTls, Store};
    let cert = keys.get("ssl-cert");
    let key = keys.get("ssl-key");
    // Flume's global keystore stands in only when the component names no key of its own.
    let keystore = if cert.is_none() && key.is_none() {
        keys.get_or_global("keystore", "FLUME_SSL_KEYSTORE_PATH")
    } else {
        keys.get("keystore")
    };
    let identity = match (keystore, cert, key) {
        (Some(ks), None, None) => {
            let store_type = store_type(
                keys,
                "keystore-type",
                "FLUME_SSL_KEYSTORE_TYPE",
                "keystore",
                &ks.value,
            )?;
            Identity::Keystore(Store {
                path: PathBuf::from(ks.value),
                password: keys
                    .get_or_global("keystore-password", "FLUME_SSL_KEYSTORE_PASSWORD")
                    .map(|v| Secret(v.value)),
                store_type,
            })
        }
        (None, Some(cert), Some(key)) => {
            for k in ["keystore-password", "keystore-type"] {
                keys.ignore(
                    k,
                    "the key and certificate come from `ssl-cert` and `ssl-key`",
                );
            }
            Identity::Pem {
                cert: PathBuf::from(cert.value),
                key: PathBuf::from(key.value),
            }
        }
        (Some(_), Some(v), _) => {
            return Err(keys.bad(
                "ssl-cert",
                &v,
                "set either `keystore` or `ssl-cert` and `ssl-key`, not both",
            ))
        }
        (Some(_), None, Some(v)) => {
            return Err(keys.bad(
                "ssl-key",
                &v,
                "set either `keystore` or `ssl-cert` and `ssl-key`, not both",
            ))
        }
        (None, Some(_), None) => {
            return Err(keys.missing(
                "ssl-key",
                "`ssl-cert` needs `ssl-key`: the PEM file of the certificate's private key",
            ))
        }
        (None, None, Some(_)) => {
            return Err(keys.missing(
                "ssl-cert",
                "`ssl-key` needs `ssl-cert`: the PEM file of the certificate chain, leaf first",
            ))
        }
        (None, None, None) => {
            return Err(keys.missing(
                "keystore",
                "`ssl = true` needs the source's key and certificate: `keystore` (a PKCS#12 \
                 file) with `keystore-password`, or `ssl-cert` and `ssl-key` (PEM files); or, \
                 for every component at once, Flume's global FLUME_SSL_KEYSTORE_PATH and \
                 FLUME_SSL_KEYSTORE_PASSWORD (or -Djavax.net.ssl.keyStore=...)",
            ))
        }
    };
    Ok(ServerTls {
        identity,
        filters: tls_filters(keys),
    })
}

/// The avro sink's `ssl = true` keys: `trust-all-certs`, else `truststore`, else the system's
/// CA roots; `verify-hostname` (ours).
pub fn client_tls(keys: &mut Keys<'_>) -> Result<super::tls::ClientTls, ConfigError> {
    use super::tls::{ClientTls, Secret, Store, Trust};
    let trust_all = keys.boolean("trust-all-certs", false)?;
    let trust = if trust_all {
        for k in ["truststore", "truststore-password", "truststore-type"] {
            keys.ignore(k, "`trust-all-certs = true` trusts any certificate");
        }
        Trust::All
    } else if let Some(ts) = keys.get_or_global("truststore", "FLUME_SSL_TRUSTSTORE_PATH") {
        let store_type = store_type(
            keys,
            "truststore-type",
            "FLUME_SSL_TRUSTSTORE_TYPE",
            "truststore",
            &ts.value,
        )?;
        Trust::Store(Store {
            path: PathBuf::from(ts.value),
            password: keys
                .get_or_global("truststore-password", "FLUME_SSL_TRUSTSTORE_PASSWORD")
                .map(|v| Secret(v.value)),
            store_type,
        })
    } else {
        for k in ["truststore-password", "truststore-type"] {
            keys.ignore(
                k,
                "no `truststore` is set: the system's CA roots are trusted",
            );
        }
        Trust::System
    };
    let verify_hostname = match keys.parsed("verify-hostname", parse_bool)? {
        Some((true, v)) if trust_all => {
            return Err(keys.bad(
                "verify-hostname",
                &v,
                "false: with `trust-all-certs = true` no certificate is checked; set a `truststore` to check names",
            ))
        }
        other => other.map(|(b, _)| b),
    };
    Ok(ClientTls {
        trust,
        verify_hostname,
        filters: tls_filters(keys),
    })
}

/// `compression-type` (`none` or `deflate`, any case) and `compression-level` (0-9, default 6)
/// of the avro source and sink: the level when deflate, else `None`.
pub fn compression(keys: &mut Keys<'_>, feature: &str) -> Result<Option<u32>, ConfigError> {
    keys.document_default("compression-type", "none");
    keys.document_default("compression-level", super::zlib::DEFAULT_LEVEL.to_string());
    keys.only("compression-type", &["none", "deflate"], feature)?;
    let deflate = keys
        .get("compression-type")
        .is_some_and(|v| v.value.trim().eq_ignore_ascii_case("deflate"));
    if !deflate {
        keys.ignore(
            "compression-level",
            "only used with compression-type = deflate",
        );
        return Ok(None);
    }
    let level = keys.number(
        "compression-level",
        u64::from(super::zlib::DEFAULT_LEVEL),
        0,
        "zlib level",
    )?;
    match u32::try_from(level) {
        Ok(l) if l <= 9 => Ok(Some(l)),
        _ => Err(keys.bad_effective(
            "compression-level",
            level,
            "a zlib compression level, 0 (none) to 9 (best)",
        )),
    }
}
