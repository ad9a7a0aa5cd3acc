//! TLS (`ssl = true`) for the avro source and sink: turns Flume's keys (a keystore for the
//! source; trust-all-certs, a truststore or the system's CA roots for the sink; protocol and
//! cipher suite lists) into rustls configurations. What the bytes look like on the socket
//! (TLS inside deflate, as Flume 1.11 layers them) is [`super::transport`]'s job.
//!
//! Invariants:
//! - The settings types hold paths and passwords only (they live in the parsed
//!   configuration, which does no I/O); the files are read by [`server_config`] and
//!   [`client_config`] when the component is built, at agent start-up.
//! - Every [`TlsError`] names the key and the file it is about and says what to do; bad files,
//!   wrong passwords and missing keys never panic.
//! - Passwords never reach a log or an error message ([`Secret`]'s `Debug` hides them).
//! - JKS (and JCEKS) keystores are refused by their magic bytes whatever `*-type` says, with
//!   the `keytool -importkeystore` command that converts them: no well-kept Rust crate reads
//!   them, and keytool writes PKCS#12 by default since JDK 9.
//! - A key is used as the store holds it, except an EC key that keytool stored without its
//!   public key (ring needs it): the public key is added from the certificate, so
//!   keytool-made EC keystores work.
//! - Only TLS 1.2 and 1.3 exist here (rustls has nothing older), so Flume's default
//!   `exclude-protocols = SSLv3` and any older protocol named in a list change nothing.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig};
use rustls::{SignatureScheme, SupportedProtocolVersion};

/// A password: compared and cloned as a string, never printed.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// What a `keystore-type` / `truststore-type` says (the file's bytes have the last word).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreType {
    /// `PKCS12`: what keytool writes by default since JDK 9.
    Pkcs12,
    /// `PEM` (ours): PEM text; for a truststore, the CA certificates.
    Pem,
}

/// A keystore or truststore file and how to open it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Store {
    pub path: PathBuf,
    /// `None`: the key was not set (an empty password is tried).
    pub password: Option<Secret>,
    /// `None`: the key was not set; the type is told from the file's bytes.
    pub store_type: Option<StoreType>,
}

/// Where the source's certificate and private key come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Identity {
    /// Flume's `keystore`, `keystore-password`, `keystore-type`.
    Keystore(Store),
    /// Ours: `ssl-cert` (PEM certificate chain, leaf first) and `ssl-key` (PEM PKCS#8, RSA or
    /// EC private key).
    Pem { cert: PathBuf, key: PathBuf },
}

/// Flume 1.11's protocol and cipher suite lists (Java names, e.g. `TLSv1.3`,
/// `TLS_AES_128_GCM_SHA256`). `None`: the include key was not set (everything available).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filters {
    pub include_protocols: Option<Vec<String>>,
    pub exclude_protocols: Vec<String>,
    pub include_cipher_suites: Option<Vec<String>>,
    pub exclude_cipher_suites: Vec<String>,
}

impl Default for Filters {
    /// Flume's defaults: `exclude-protocols = SSLv3`, nothing else.
    fn default() -> Self {
        Filters {
            include_protocols: None,
            exclude_protocols: vec!["SSLv3".to_string()],
            include_cipher_suites: None,
            exclude_cipher_suites: Vec::new(),
        }
    }
}

/// The avro source's TLS settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerTls {
    pub identity: Identity,
    pub filters: Filters,
}

/// Whom the avro sink trusts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Trust {
    /// `trust-all-certs = true`: any certificate (Flume's PermissiveTrustManager). The
    /// handshake's signatures are still checked, so the peer must hold the key of the
    /// certificate it shows.
    All,
    /// `truststore`: the certificates in this file are the trust anchors.
    Store(Store),
    /// Neither: the system's CA roots (Flume: the JVM's default trust store).
    System,
}

/// The avro sink's TLS settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientTls {
    pub trust: Trust,
    /// Whether the certificate must name the host the sink connects to. `None`: as Flume
    /// (no check) with a truststore; checked with the system's roots, where without it any
    /// certificate a public CA issued to anyone would do.
    pub verify_hostname: Option<bool>,
    pub filters: Filters,
}

impl ClientTls {
    /// Whether the certificate's names are checked against `hostname` (see the field).
    pub fn verifies_hostname(&self) -> bool {
        self.verify_hostname
            .unwrap_or(matches!(self.trust, Trust::System))
    }
}

/// Why TLS could not be set up. Every message names the key and file and says what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    #[error("`{key}` {}: cannot read the file: {source}", .path.display())]
    Read {
        key: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("`{key}` {path}: a Java {kind} keystore, which flumen cannot read. Convert it to PKCS#12 with `keytool -importkeystore -srckeystore {path} -destkeystore {path}.p12 -deststoretype PKCS12` and point `{key}` at {path}.p12 (and set `{key}-type = PKCS12`), or give the certificate chain and key as PEM files with `ssl-cert` and `ssl-key`", path = .path.display())]
    Jks {
        key: &'static str,
        kind: &'static str,
        path: PathBuf,
    },
    #[error("`{key}-password`: wrong password for {} (the PKCS#12 integrity check failed); set `{key}-password` to the store's password", .path.display())]
    WrongPassword { key: &'static str, path: PathBuf },
    #[error("`{key}` {}: not a readable PKCS#12 or PEM store ({detail}); give a PKCS#12 file (keytool -storetype PKCS12) or PEM", .path.display())]
    BadStore {
        key: &'static str,
        path: PathBuf,
        detail: String,
    },
    #[error("`{key}` {}: no private key with a certificate in the store; the source needs one (keytool -genkeypair, or import the key and its chain)", .path.display())]
    NoPrivateKey { key: &'static str, path: PathBuf },
    #[error("`{key}` {}: no certificate in the file", .path.display())]
    NoCertificate { key: &'static str, path: PathBuf },
    #[error("`{key}` {}: {detail}", .path.display())]
    BadKey {
        key: &'static str,
        path: PathBuf,
        detail: String,
    },
    #[error("`{key}`: {detail}")]
    Filter { key: &'static str, detail: String },
    #[error("no CA certificates found on this system ({detail}); set `truststore` to a store holding the source's CA, or `trust-all-certs = true`")]
    NoSystemRoots { detail: String },
    #[error("`truststore` {}: {detail}", .path.display())]
    BadTrust { path: PathBuf, detail: String },
}

impl TlsError {
    /// The configuration key the error is about.
    pub fn key(&self) -> &'static str {
        match self {
            TlsError::Read { key, .. }
            | TlsError::Jks { key, .. }
            | TlsError::BadStore { key, .. }
            | TlsError::NoPrivateKey { key, .. }
            | TlsError::NoCertificate { key, .. }
            | TlsError::BadKey { key, .. }
            | TlsError::Filter { key, .. } => key,
            TlsError::WrongPassword { key, .. } => {
                if *key == "keystore" {
                    "keystore-password"
                } else {
                    "truststore-password"
                }
            }
            TlsError::NoSystemRoots { .. } | TlsError::BadTrust { .. } => "truststore",
        }
    }
}

/// The first bytes of a Java KeyStore (JKS) and of a JCEKS file.
const JKS_MAGIC: [u8; 4] = [0xFE, 0xED, 0xFE, 0xED];
const JCEKS_MAGIC: [u8; 4] = [0xCE, 0xCE, 0xCE, 0xCE];

/// Reads a store file and tells what it holds from its bytes; JKS/JCEKS are refused.
fn read_store(key: &'static str, store: &Store) -> Result<(Vec<u8>, StoreType), TlsError> {
    let path = &store.path;
    let bytes = std::fs::read(path).map_err(|source| TlsError::Read {
        key,
        path: path.clone(),
        source,
    })?;
    let kind = if bytes.starts_with(&JKS_MAGIC) {
        Some("JKS")
    } else if bytes.starts_with(&JCEKS_MAGIC) {
        Some("JCEKS")
    } else {
        None
    };
    if let Some(kind) = kind {
        return Err(TlsError::Jks {
            key,
            kind,
            path: path.clone(),
        });
    }
    let looks_pem = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .is_some_and(|i| bytes[i..].starts_with(b"-----BEGIN"));
    // The bytes decide, as Flume's default type (JKS) is often left in files that point at
    // PKCS#12 stores (Java 9+ opens either whatever the type says).
    let t = if looks_pem {
        StoreType::Pem
    } else {
        StoreType::Pkcs12
    };
    Ok((bytes, t))
}

fn password(store: &Store) -> &str {
    store.password.as_ref().map_or("", |s| s.0.as_str())
}

fn pkcs12_error(key: &'static str, path: &Path, e: p12_keystore::error::Error) -> TlsError {
    match e {
        p12_keystore::error::Error::MacError(_) => TlsError::WrongPassword {
            key,
            path: path.to_path_buf(),
        },
        other => TlsError::BadStore {
            key,
            path: path.to_path_buf(),
            detail: other.to_string(),
        },
    }
}

/// The source's certificate chain and key.
fn load_identity(
    identity: &Identity,
) -> Result<
    (
        Vec<CertificateDer<'static>>,
        PrivateKeyDer<'static>,
        &'static str,
        PathBuf,
    ),
    TlsError,
> {
    match identity {
        Identity::Keystore(store) => {
            let key = "keystore";
            let path = store.path.clone();
            let (bytes, t) = read_store(key, store)?;
            if t == StoreType::Pem {
                let certs = pem_certs(key, &path, &bytes)?;
                let pk =
                    PrivateKeyDer::from_pem_slice(&bytes).map_err(|_| TlsError::NoPrivateKey {
                        key,
                        path: path.clone(),
                    })?;
                return Ok((certs, pk, key, path));
            }
            let ks = p12_keystore::KeyStore::from_pkcs12(
                &bytes,
                password(store),
                p12_keystore::Pkcs12ImportPolicy::Strict,
            )
            .map_err(|e| pkcs12_error(key, &path, e))?;
            let Some((_alias, chain)) = ks.private_key_chain() else {
                return Err(TlsError::NoPrivateKey { key, path });
            };
            let certs: Vec<CertificateDer<'static>> = chain
                .certs()
                .iter()
                .map(|c| CertificateDer::from(c.as_der().to_vec()))
                .collect();
            if certs.is_empty() {
                return Err(TlsError::NoPrivateKey { key, path });
            }
            let pk = PrivateKeyDer::Pkcs8(chain.key().as_der().to_vec().into());
            Ok((certs, pk, key, path))
        }
        Identity::Pem {
            cert,
            key: key_path,
        } => {
            let bytes = std::fs::read(cert).map_err(|source| TlsError::Read {
                key: "ssl-cert",
                path: cert.clone(),
                source,
            })?;
            let certs = pem_certs("ssl-cert", cert, &bytes)?;
            let kbytes = std::fs::read(key_path).map_err(|source| TlsError::Read {
                key: "ssl-key",
                path: key_path.clone(),
                source,
            })?;
            let pk = PrivateKeyDer::from_pem_slice(&kbytes).map_err(|e| TlsError::BadKey {
                key: "ssl-key",
                path: key_path.clone(),
                detail: format!(
                    "no PEM private key (PKCS#8, RSA or EC) found: {e}; an encrypted key must be decrypted first (openssl pkcs8 -nocrypt)"
                ),
            })?;
            Ok((certs, pk, "ssl-key", key_path.clone()))
        }
    }
}

fn pem_certs(
    key: &'static str,
    path: &Path,
    bytes: &[u8],
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let mut certs = Vec::new();
    for c in CertificateDer::pem_slice_iter(bytes) {
        certs.push(c.map_err(|e| TlsError::BadStore {
            key,
            path: path.to_path_buf(),
            detail: format!("bad PEM certificate: {e}"),
        })?);
    }
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            key,
            path: path.to_path_buf(),
        });
    }
    Ok(certs)
}

/// Java (keytool, up to at least JDK 17) stores an EC private key in PKCS#8 without its
/// public key, which the `[1] publicKey` field of SEC 1's ECPrivateKey may omit but ring
/// requires. When ring refuses such a key, it is rebuilt with the public key taken from the
/// leaf certificate (and the private scalar padded to the curve's size, which Java may also
/// shorten). Any other key is returned unchanged (rustls then says what is wrong with it).
fn with_ec_public_key(
    key: PrivateKeyDer<'static>,
    leaf: &CertificateDer<'_>,
) -> PrivateKeyDer<'static> {
    let PrivateKeyDer::Pkcs8(p) = &key else {
        return key;
    };
    if rustls::crypto::ring::sign::any_supported_type(&key).is_ok() {
        return key;
    }
    match add_ec_public_key(p.secret_pkcs8_der(), leaf.as_ref()) {
        Some(fixed) => PrivateKeyDer::Pkcs8(fixed.into()),
        None => key,
    }
}

/// One DER element: (tag, content, the whole element, what follows it in the input).
type DerElement<'a> = (u8, &'a [u8], &'a [u8], &'a [u8]);

/// The first DER element of `input`; `None` when it is cut short or its length is absurd.
fn der_next(input: &[u8]) -> Option<DerElement<'_>> {
    let (&tag, rest) = input.split_first()?;
    let (&l0, rest) = rest.split_first()?;
    let (len, rest) = if l0 < 0x80 {
        (usize::from(l0), rest)
    } else {
        let n = usize::from(l0 & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    let header = input.len() - rest.len();
    Some((tag, &rest[..len], &input[..header + len], &rest[len..]))
}

/// A DER element of `tag` around `content`.
fn der_encode(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let n = content.len();
    if n < 0x80 {
        out.push(n as u8);
    } else {
        let bytes = n.to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

/// The subjectPublicKey BIT STRING content (unused-bits byte first) of a certificate.
fn cert_public_key(cert: &[u8]) -> Option<&[u8]> {
    let (0x30, cert, _, _) = der_next(cert)? else {
        return None;
    };
    let (0x30, tbs, _, _) = der_next(cert)? else {
        return None;
    };
    let mut rest = tbs;
    // [0] version is optional (absent in v1 certificates).
    if let Some((0xA0, _, _, after)) = der_next(rest) {
        rest = after;
    }
    // serialNumber, signature, issuer, validity, subject.
    for _ in 0..5 {
        rest = der_next(rest)?.3;
    }
    let (0x30, spki, _, _) = der_next(rest)? else {
        return None;
    };
    let after_alg = der_next(spki)?.3;
    let (0x03, bits, _, _) = der_next(after_alg)? else {
        return None;
    };
    Some(bits)
}

/// The PKCS#8 EC key `pkcs8` with `[1] publicKey` from `cert` added (see
/// [`with_ec_public_key`]); `None` when it is not a P-256/P-384 key lacking one.
fn add_ec_public_key(pkcs8: &[u8], cert: &[u8]) -> Option<Vec<u8>> {
    const EC_PUBLIC_KEY: &[u8] = &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01];
    const P256: &[u8] = &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07];
    const P384: &[u8] = &[0x2B, 0x81, 0x04, 0x00, 0x22];
    let (0x30, pki, _, _) = der_next(pkcs8)? else {
        return None;
    };
    let (0x02, _, version, rest) = der_next(pki)? else {
        return None;
    };
    let (0x30, alg_content, alg, rest) = der_next(rest)? else {
        return None;
    };
    let (0x06, oid, _, curve_rest) = der_next(alg_content)? else {
        return None;
    };
    let (0x06, curve, _, _) = der_next(curve_rest)? else {
        return None;
    };
    let size = match (oid, curve) {
        (EC_PUBLIC_KEY, P256) => 32,
        (EC_PUBLIC_KEY, P384) => 48,
        _ => return None,
    };
    // What follows the key (PKCS#8 attributes) is dropped: ring accepts none.
    let (0x04, ec_der, _, _) = der_next(rest)? else {
        return None;
    };
    let (0x30, ec, _, _) = der_next(ec_der)? else {
        return None;
    };
    let (0x02, _, ec_version, rest) = der_next(ec)? else {
        return None;
    };
    let (0x04, d, _, mut rest) = der_next(rest)? else {
        return None;
    };
    let mut params = None;
    while !rest.is_empty() {
        let (tag, _, whole, after) = der_next(rest)?;
        match tag {
            0xA0 => params = Some(whole),
            // It has a public key already: ring refused it for another reason.
            0xA1 => return None,
            _ => {}
        }
        rest = after;
    }
    if d.len() > size {
        return None;
    }
    let mut scalar = vec![0u8; size - d.len()];
    scalar.extend_from_slice(d);
    let public = cert_public_key(cert)?;
    let mut ec_new = ec_version.to_vec();
    ec_new.extend(der_encode(0x04, &scalar));
    if let Some(p) = params {
        ec_new.extend_from_slice(p);
    }
    ec_new.extend(der_encode(0xA1, &der_encode(0x03, public)));
    let mut body = version.to_vec();
    body.extend_from_slice(alg);
    body.extend(der_encode(0x04, &der_encode(0x30, &ec_new)));
    Some(der_encode(0x30, &body))
}

/// Splits a Flume list value: Flume separates with spaces; commas are accepted too.
pub fn split_list(value: &str) -> Vec<String> {
    value
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// The Java name of a rustls cipher suite (`TLS13_AES_128_GCM_SHA256` is Java's
/// `TLS_AES_128_GCM_SHA256`; TLS 1.2 names are the same).
fn java_suite_name(s: &rustls::SupportedCipherSuite) -> String {
    let name = s
        .suite()
        .as_str()
        .map_or_else(|| format!("{:?}", s.suite()), str::to_string);
    match name.strip_prefix("TLS13_") {
        Some(rest) => format!("TLS_{rest}"),
        None => name,
    }
}

/// The protocol versions and the crypto provider (ring, with the cipher suites left by the
/// lists) the filters allow.
fn apply_filters(
    f: &Filters,
) -> Result<(Vec<&'static SupportedProtocolVersion>, Arc<CryptoProvider>), TlsError> {
    let has = |list: &[String], name: &str| list.iter().any(|n| n.eq_ignore_ascii_case(name));
    let mut versions = Vec::new();
    for (name, v) in [
        ("TLSv1.3", &rustls::version::TLS13),
        ("TLSv1.2", &rustls::version::TLS12),
    ] {
        let included = f.include_protocols.as_deref().is_none_or(|l| has(l, name));
        if included && !has(&f.exclude_protocols, name) {
            versions.push(v);
        }
    }
    if versions.is_empty() {
        return Err(TlsError::Filter {
            key: if f.include_protocols.is_some() {
                "include-protocols"
            } else {
                "exclude-protocols"
            },
            detail:
                "no protocol left: flumen speaks TLSv1.2 and TLSv1.3; include at least one of them"
                    .into(),
        });
    }
    let mut provider = rustls::crypto::ring::default_provider();
    let all: Vec<String> = provider.cipher_suites.iter().map(java_suite_name).collect();
    provider.cipher_suites.retain(|s| {
        let name = java_suite_name(s);
        f.include_cipher_suites
            .as_deref()
            .is_none_or(|l| has(l, &name))
            && !has(&f.exclude_cipher_suites, &name)
    });
    // A suite of each allowed version must remain, or the handshake can never succeed.
    let usable = provider
        .cipher_suites
        .iter()
        .any(|s| versions.iter().any(|v| s.version() == *v));
    if !usable {
        return Err(TlsError::Filter {
            key: if f.include_cipher_suites.is_some() {
                "include-cipher-suites"
            } else {
                "exclude-cipher-suites"
            },
            detail: format!(
                "no cipher suite left for the allowed protocols; flumen's suites are: {}",
                all.join(" ")
            ),
        });
    }
    Ok((versions, Arc::new(provider)))
}

/// Reads the source's key material and builds its rustls configuration.
pub fn server_config(s: &ServerTls) -> Result<Arc<ServerConfig>, TlsError> {
    let (versions, provider) = apply_filters(&s.filters)?;
    let (certs, key, key_name, key_path) = load_identity(&s.identity)?;
    let key = match certs.first() {
        Some(leaf) => with_ec_public_key(key, leaf),
        None => key,
    };
    let cfg = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&versions)
        .map_err(|e| TlsError::Filter {
            key: "include-protocols",
            detail: e.to_string(),
        })?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| TlsError::BadKey {
            key: key_name,
            path: key_path,
            detail: format!(
                "the private key cannot be used with its certificate: {e} (RSA, ECDSA P-256/P-384 and Ed25519 keys work)"
            ),
        })?;
    Ok(Arc::new(cfg))
}

/// Reads the sink's trust anchors and builds its rustls configuration.
pub fn client_config(s: &ClientTls) -> Result<Arc<ClientConfig>, TlsError> {
    let (versions, provider) = apply_filters(&s.filters)?;
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&versions)
        .map_err(|e| TlsError::Filter {
            key: "include-protocols",
            detail: e.to_string(),
        })?;
    let verifier: Arc<dyn ServerCertVerifier> = match &s.trust {
        Trust::All => Arc::new(TrustAll { provider }),
        Trust::Store(store) => {
            let roots = load_trust_store(store)?;
            let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| TlsError::BadTrust {
                    path: store.path.clone(),
                    detail: e.to_string(),
                })?;
            Arc::new(NameCheck {
                inner,
                verify_hostname: s.verifies_hostname(),
            })
        }
        Trust::System => {
            let found = rustls_native_certs::load_native_certs();
            let mut roots = RootCertStore::empty();
            let (added, _ignored) = roots.add_parsable_certificates(found.certs);
            if added == 0 {
                let detail = if found.errors.is_empty() {
                    "the system certificate store is empty".to_string()
                } else {
                    found
                        .errors
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("; ")
                };
                return Err(TlsError::NoSystemRoots { detail });
            }
            let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| TlsError::NoSystemRoots {
                    detail: e.to_string(),
                })?;
            Arc::new(NameCheck {
                inner,
                verify_hostname: s.verifies_hostname(),
            })
        }
    };
    let cfg = builder
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(Arc::new(cfg))
}

/// Every certificate in a truststore is a trust anchor (Java trusts its trusted-certificate
/// entries and the certificates of its key entries; a store made by other tools may not mark
/// them, so all are taken).
fn load_trust_store(store: &Store) -> Result<RootCertStore, TlsError> {
    let key = "truststore";
    let path = &store.path;
    let (bytes, t) = read_store(key, store)?;
    let certs: Vec<CertificateDer<'static>> = if t == StoreType::Pem {
        pem_certs(key, path, &bytes)?
    } else {
        let archive = p12_keystore::Pkcs12Archive::from_pkcs12(&bytes, password(store))
            .map_err(|e| pkcs12_error(key, path, e))?;
        archive
            .certs
            .iter()
            .map(|c| CertificateDer::from(c.cert.as_der().to_vec()))
            .collect()
    };
    let mut roots = RootCertStore::empty();
    let (added, ignored) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(if ignored == 0 {
            TlsError::NoCertificate {
                key,
                path: path.clone(),
            }
        } else {
            TlsError::BadTrust {
                path: path.clone(),
                detail: format!("none of its {ignored} certificates can be used as a trust anchor"),
            }
        });
    }
    Ok(roots)
}

/// The sink's verifier over a truststore or the system roots: the chain is always checked;
/// the host name only when `verify_hostname` (Flume 1.11's client checks no name: its
/// SSLEngine is made without a peer host and without an endpoint identification algorithm).
#[derive(Debug)]
struct NameCheck {
    inner: Arc<WebPkiServerVerifier>,
    verify_hostname: bool,
}

impl ServerCertVerifier for NameCheck {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            // webpki checks the name only after the chain, validity and usage passed, so this
            // error means everything but the name was right.
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !self.verify_hostname => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// `trust-all-certs = true`: any certificate is accepted (as Flume's PermissiveTrustManager),
/// but the handshake signatures are verified against it, so the connection is still private
/// to whoever holds that certificate's key.
#[derive(Debug)]
struct TrustAll {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for TrustAll {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// What to tell the user about a failed client handshake with `peer` (`host:port`).
pub fn explain_client_error(peer: &str, e: &rustls::Error) -> String {
    match e {
        rustls::Error::InvalidCertificate(
            CertificateError::UnknownIssuer | CertificateError::BadSignature,
        ) => format!(
            "the certificate of {peer} is not trusted ({e}): set `truststore` to a store holding its CA (or the certificate itself), or `trust-all-certs = true`"
        ),
        rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ) => format!(
            "the certificate of {peer} does not name the host the sink connects to ({e}): set `hostname` to a name in the certificate, or `verify-hostname = false`"
        ),
        rustls::Error::InvalidCertificate(
            CertificateError::Expired | CertificateError::ExpiredContext { .. },
        ) => format!("the certificate of {peer} has expired ({e}): renew it on the source"),
        rustls::Error::InvalidCertificate(other) => {
            format!("the certificate of {peer} was refused: {other:?}")
        }
        other => format!(
            "TLS handshake with {peer} failed: {other} (is its avro source set with `ssl = true` and the same `compression-type`?)"
        ),
    }
}

/// Keystores for tests, made by the JDK's keytool (the project's tests need Java anyway).
#[cfg(test)]
pub(crate) mod test_keys {
    use std::path::{Path, PathBuf};

    /// A PKCS#12 keystore `ks.p12` in `dir` for CN=localhost, its key `keyalg` (`RSA`, or
    /// `EC` for P-256: keytool stores an EC key without its public key, which
    /// `server_config` must mend for ring), store and key password `password`.
    pub(crate) fn keytool_keystore(dir: &Path, keyalg: &str, password: &str) -> PathBuf {
        let ks = dir.join("ks.p12");
        let key: &[&str] = if keyalg == "EC" {
            &["-keyalg", "EC", "-groupname", "secp256r1"]
        } else {
            &["-keyalg", keyalg, "-keysize", "2048"]
        };
        let status = std::process::Command::new("keytool")
            .args(["-genkeypair", "-alias", "flumen"])
            .args(key)
            .args(["-dname", "CN=localhost", "-validity", "2"])
            .args(["-storetype", "PKCS12", "-keystore"])
            .arg(&ks)
            .args(["-storepass", password, "-keypass", password])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .expect("run keytool (the JDK must be installed)");
        assert!(status.success(), "keytool -genkeypair failed");
        ks
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_keep_tls12_and_13_and_drop_excluded() {
        let (v, p) = apply_filters(&Filters::default()).expect("defaults");
        assert_eq!(v.len(), 2);
        let n = p.cipher_suites.len();
        let f = Filters {
            include_protocols: Some(vec!["TLSv1.2".into()]),
            exclude_cipher_suites: vec!["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256".into()],
            ..Filters::default()
        };
        let (v, p) = apply_filters(&f).expect("tls 1.2");
        assert_eq!(v.len(), 1);
        assert_eq!(p.cipher_suites.len(), n - 1);
        let none = Filters {
            exclude_protocols: vec!["TLSv1.2".into(), "TLSv1.3".into()],
            ..Filters::default()
        };
        let e = apply_filters(&none).expect_err("nothing left");
        assert_eq!(e.key(), "exclude-protocols");
        let only13 = Filters {
            include_protocols: Some(vec!["TLSv1.3".into()]),
            include_cipher_suites: Some(vec!["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256".into()]),
            ..Filters::default()
        };
        let e = apply_filters(&only13).expect_err("no 1.3 suite");
        assert!(e.to_string().contains("TLS_AES_128_GCM_SHA256"), "{e}");
    }

    #[test]
    fn der_helpers_never_panic_on_bad_input() {
        // A PKCS#8 header for P-256 followed by junk, every prefix of it, and noise.
        let mut input = vec![0x30, 0x81, 0x90, 0x02, 0x01, 0x00, 0x30, 0x13, 0x06, 0x07];
        input.extend_from_slice(&[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01, 0x06, 0x08]);
        input.extend((0..200u32).map(|i| (i.wrapping_mul(197) >> 3) as u8));
        for n in 0..input.len() {
            assert!(add_ec_public_key(&input[..n], &input[n..]).is_none());
            let _ = cert_public_key(&input[..n]);
        }
        assert_eq!(der_encode(0x04, &[0; 200])[..3], [0x04, 0x81, 200]);
        let (tag, content, whole, rest) = der_next(&[0x02, 0x01, 0x05, 0xFF]).expect("int");
        assert_eq!(
            (tag, content, whole, rest),
            (2, &[5u8][..], &[2u8, 1, 5][..], &[0xFFu8][..])
        );
    }

    #[test]
    fn jks_is_refused_with_the_keytool_command() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ks.jks");
        std::fs::write(&path, [0xFE, 0xED, 0xFE, 0xED, 0, 0, 0, 2]).expect("write");
        let s = ServerTls {
            identity: Identity::Keystore(Store {
                path: path.clone(),
                password: None,
                store_type: Some(StoreType::Pkcs12),
            }),
            filters: Filters::default(),
        };
        let e = server_config(&s).expect_err("jks");
        let msg = e.to_string();
        assert!(msg.contains("keytool -importkeystore"), "{msg}");
        assert!(msg.contains(&path.display().to_string()), "{msg}");
        assert_eq!(e.key(), "keystore");
    }

    #[test]
    fn missing_and_garbage_files_name_the_key_and_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("nope.p12");
        let s = ServerTls {
            identity: Identity::Keystore(Store {
                path: path.clone(),
                // Long and odd enough never to appear in the random tempdir path by chance.
                password: Some(Secret("Hunter2-not-in-any-path".into())),
                store_type: None,
            }),
            filters: Filters::default(),
        };
        let e = server_config(&s).expect_err("missing");
        assert!(e.to_string().contains("nope.p12"), "{e}");
        std::fs::write(&path, b"garbage").expect("write");
        let e = server_config(&s).expect_err("garbage");
        assert!(e.to_string().contains("not a readable PKCS#12"), "{e}");
        assert!(
            !format!("{s:?}").contains("Hunter2"),
            "password leaked in Debug"
        );
    }
}
