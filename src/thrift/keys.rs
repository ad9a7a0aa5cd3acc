//! The keys the thrift source and the thrift sink share: `protocol` (compact or binary, as
//! Flume's ThriftSource and ThriftRpcClient read it) and `kerberos`, which flumen refuses.

use crate::config::{ConfigError, Keys};

use super::Protocol;

/// `protocol`: `compact` (the default) or `binary`, any case; anything else stops start-up, as
/// Flume's ThriftSource refuses it at configure time.
pub fn protocol(keys: &mut Keys<'_>) -> Result<Protocol, ConfigError> {
    keys.document_default("protocol", "compact");
    match keys.get("protocol") {
        None => Ok(Protocol::Compact),
        Some(v) => Protocol::parse(&v.value).ok_or_else(|| {
            keys.bad(
                "protocol",
                &v,
                "compact or binary (Thrift's compact or binary protocol; compact is Flume's default)",
            )
        }),
    }
}

/// `kerberos = true` (SASL/GSSAPI transport) is refused: flumen has no Kerberos. Its principal
/// and keytab are accepted and ignored without it, as Flume ignores them.
pub fn kerberos(keys: &mut Keys<'_>, principal_keys: &[&'static str]) -> Result<(), ConfigError> {
    if keys.boolean("kerberos", false)? {
        let line = keys.has("kerberos").unwrap_or(0);
        return Err(keys.unsupported(
            "kerberos",
            line,
            "Kerberos (SASL/GSSAPI) for Thrift RPC",
            "Set `kerberos = false` (or remove it) and protect the connection with `ssl = true`, \
             or keep Apache Flume for this hop",
        ));
    }
    for &key in principal_keys {
        keys.ignore(
            key,
            "only used with `kerberos = true`, which flumen does not support",
        );
    }
    Ok(())
}
