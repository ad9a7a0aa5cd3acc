//! Flume's Kafka client keys, written for Kafka's Java client, as librdkafka settings.
//!
//! Flume passes every `kafka.producer.*` / `kafka.consumer.*` key to its Java client. flumen
//! runs librdkafka instead, whose settings mostly share the Java names and meanings but not
//! all: [`translate`] maps each Java key to the librdkafka setting that means the same
//! (`sasl.mechanism` is `sasl.mechanisms`, `fetch.max.wait.ms` is `fetch.wait.max.ms`, a JAAS
//! line becomes `sasl.username` / `sasl.password`), ignores with a warning the keys that only
//! make sense inside a JVM (serializers, `max.block.ms`), and refuses, naming what to write
//! instead, the ones whose meaning it cannot keep (a JKS truststore, Kerberos). A key that is
//! no Java client key flumen knows is handed to librdkafka as it is, so librdkafka's own
//! settings (`queue.buffering.max.messages`) work too.
//!
//! Invariant: every setting is checked by librdkafka when the configuration is read
//! ([`ClientSettings::check`]), so a bad value or an unknown property stops start-up naming the
//! file, line and key it came from.

use rdkafka::config::ClientConfig;

use crate::config::{ConfigError, Keys, Val, WarningKind};

/// Which client a component runs: the prefix of its keys and the defaults it starts from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Producer,
    Consumer,
}

impl Role {
    /// `kafka.producer.` or `kafka.consumer.`.
    pub fn prefix(self) -> &'static str {
        match self {
            Role::Producer => "kafka.producer.",
            Role::Consumer => "kafka.consumer.",
        }
    }
}

/// Kafka's Java producer's `delivery.timeout.ms` default: how long a record may wait for its
/// acknowledgement before it fails.
pub const JAVA_DELIVERY_TIMEOUT_MS: u64 = 120_000;

/// Where a setting came from, for errors: the full key and line, or none for a default.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Origin {
    /// The key below the component (`kafka.producer.acks`).
    key: String,
    value: Val,
}

/// One client's librdkafka settings, in the order they were set (later ones win).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientSettings {
    settings: Vec<(String, String, Option<Origin>)>,
}

impl ClientSettings {
    /// Settings holding only `bootstrap.servers`.
    pub fn new(bootstrap: &str) -> ClientSettings {
        let mut s = ClientSettings::default();
        s.set("bootstrap.servers", bootstrap);
        s
    }

    /// A producer's settings starting from the Java client's defaults where librdkafka's
    /// differ in ways a Flume user would notice, so a file behaves as under Flume: Kafka's
    /// Java partitioner for keyed records (murmur2 of the key; librdkafka's default hashes
    /// with CRC32 and would place keys elsewhere), no lingering (librdkafka's 5 ms would be
    /// added to every batch a sink or channel commit waits for), two minutes to deliver
    /// (librdkafka: five), Java's largest request (`max.request.size`) and reconnect backoff
    /// (one second at most; librdkafka: ten). `acks` is the
    /// component's.
    pub fn java_producer(bootstrap: &str) -> ClientSettings {
        let mut s = ClientSettings::new(bootstrap);
        s.set("partitioner", "murmur2_random");
        s.set("linger.ms", "0");
        s.set("delivery.timeout.ms", JAVA_DELIVERY_TIMEOUT_MS.to_string());
        s.set("message.max.bytes", "1048576");
        // Java's: a restarted broker is reconnected to within a second; librdkafka's 10 s
        // would hold every batch that long after the broker is back.
        s.set("reconnect.backoff.max.ms", "1000");
        s
    }

    /// Sets librdkafka's `key` (replacing an earlier value): a component's own default or a
    /// setting it derives from one of its keys.
    pub fn set(&mut self, key: &str, value: impl Into<String>) {
        self.put(key, value.into(), None);
    }

    /// Sets librdkafka's `key` from the component's key `from` (a pre-1.7 key such as
    /// `requiredAcks`, or a component key that derives a setting), so that a value librdkafka
    /// refuses is reported at that key and line, and [`ClientSettings::user_set`] holds.
    pub fn set_from(&mut self, key: &str, value: impl Into<String>, from: &str, val: &Val) {
        let origin = Origin {
            key: from.to_string(),
            value: val.clone(),
        };
        self.put(key, value.into(), Some(origin));
    }

    fn put(&mut self, key: &str, value: String, origin: Option<Origin>) {
        self.settings.retain(|(k, _, _)| k != key);
        self.settings.push((key.to_string(), value, origin));
    }

    /// The value of librdkafka's `key`, if set.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.settings
            .iter()
            .find(|(k, _, _)| k == key)
            .map(|(_, v, _)| v.as_str())
    }

    /// Whether the user set librdkafka's `key` through a `kafka.producer.*`/`kafka.consumer.*`
    /// key (a component's own default then gives way).
    pub fn user_set(&self, key: &str) -> bool {
        self.settings
            .iter()
            .any(|(k, _, o)| k == key && o.is_some())
    }

    /// `bootstrap.servers`, for messages naming the peer.
    pub fn bootstrap(&self) -> &str {
        self.get("bootstrap.servers").unwrap_or("")
    }

    /// The settings as librdkafka's configuration.
    pub fn client_config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        for (k, v, _) in &self.settings {
            c.set(k, v);
        }
        c
    }

    /// Every setting as `(librdkafka key, value)`, secrets included: for tests and logs that
    /// mask them.
    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.settings
            .iter()
            .map(|(k, v, _)| (k.as_str(), v.as_str()))
    }

    /// Checks every setting with librdkafka itself; an error names the Flume key and line the
    /// setting came from (or says it is flumen's own default, which would be a bug).
    pub fn check(&self, keys: &Keys<'_>) -> Result<(), ConfigError> {
        for (k, v, origin) in &self.settings {
            let mut one = ClientConfig::new();
            one.set(k, v);
            if let Err(e) = one.create_native_config() {
                let why = librdkafka_reason(&e);
                return Err(match origin {
                    Some(o) => keys.bad(
                        &o.key,
                        &o.value,
                        format!("a value librdkafka accepts for `{k}`: {why}"),
                    ),
                    None => ConfigError::BadValue {
                        file: keys.file().to_string(),
                        line: keys.home_line(),
                        key: keys.full("type"),
                        value: format!("{k}={v}"),
                        expected: format!("flumen's own Kafka setting was refused by librdkafka ({why}); please report this"),
                    },
                });
            }
        }
        Ok(())
    }
}

/// librdkafka's reason without the crate's wrapping.
fn librdkafka_reason(e: &rdkafka::error::KafkaError) -> String {
    match e {
        rdkafka::error::KafkaError::ClientConfig(_, desc, _, _) => desc.clone(),
        other => other.to_string(),
    }
}

/// Reads `kafka.bootstrap.servers`, or the pre-1.7 key `old` (`brokerList`) with a warning
/// naming the new key, as Flume does. Missing both is an error.
pub fn bootstrap_servers(
    keys: &mut Keys<'_>,
    old: Option<&'static str>,
) -> Result<String, ConfigError> {
    let new = keys.get("kafka.bootstrap.servers");
    let old_val = old.and_then(|o| keys.get(o).map(|v| (o, v)));
    match (new, old_val) {
        (Some(v), Some((o, ov))) => {
            keys.warn(
                ov.line,
                o,
                WarningKind::IgnoredKey {
                    reason: "`kafka.bootstrap.servers` is also set and wins (as in Flume); remove this deprecated key".into(),
                },
            );
            Ok(v.value)
        }
        (Some(v), None) => Ok(v.value),
        (None, Some((o, ov))) => {
            keys.warn(
                ov.line,
                o,
                WarningKind::Deprecated {
                    replacement: "kafka.bootstrap.servers".into(),
                },
            );
            Ok(ov.value)
        }
        (None, None) => Err(keys.missing(
            "kafka.bootstrap.servers",
            "the Kafka brokers to connect to, e.g. `broker1:9092,broker2:9092`",
        )),
    }
}

/// What one Java client key becomes.
#[derive(Debug, PartialEq, Eq)]
pub enum Translation {
    /// librdkafka settings with the same meaning.
    Set(Vec<(&'static str, String)>),
    /// A librdkafka setting of the same name (a key flumen does not know as a Java key).
    PassThrough,
    /// Accepted and not acted on; the reason says why.
    Ignore(String),
    /// Refused: what is accepted instead.
    Refuse(String),
}

/// Java client keys whose librdkafka setting has the same name and meaning.
const SAME: &[&str] = &[
    "client.id",
    "security.protocol",
    "metadata.max.age.ms",
    "reconnect.backoff.ms",
    "reconnect.backoff.max.ms",
    "connections.max.idle.ms",
    "retry.backoff.ms",
    "retry.backoff.max.ms",
    "socket.connection.setup.timeout.ms",
    "socket.connection.setup.timeout.max.ms",
    "client.dns.lookup",
    "ssl.keystore.location",
    "ssl.keystore.password",
    "ssl.key.password",
    "ssl.cipher.suites",
    "sasl.kerberos.service.name",
    // Producer.
    "acks",
    "linger.ms",
    "batch.size",
    "request.timeout.ms",
    "delivery.timeout.ms",
    "max.in.flight.requests.per.connection",
    "enable.idempotence",
    "retries",
    "transactional.id",
    "transaction.timeout.ms",
    // Consumer.
    "group.id",
    "group.instance.id",
    "session.timeout.ms",
    "heartbeat.interval.ms",
    "max.poll.interval.ms",
    "fetch.min.bytes",
    "fetch.max.bytes",
    "max.partition.fetch.bytes",
    "isolation.level",
    "client.rack",
    "allow.auto.create.topics",
    "check.crcs",
];

/// Java client keys with a librdkafka setting of another name and the same meaning.
const RENAMED: &[(&str, &str)] = &[
    ("sasl.mechanism", "sasl.mechanisms"),
    ("max.request.size", "message.max.bytes"),
    ("fetch.max.wait.ms", "fetch.wait.max.ms"),
];

/// Java client keys that mean something only inside a JVM, and why they are ignored.
const JVM_ONLY: &[(&str, &str)] = &[
    ("key.serializer", "the sink sends the key and value as bytes itself (Flume sets these too)"),
    ("value.serializer", "the sink sends the key and value as bytes itself (Flume sets these too)"),
    ("key.deserializer", "events are read as bytes (Flume sets these too)"),
    ("value.deserializer", "events are read as bytes (Flume sets these too)"),
    ("max.block.ms", "librdkafka never blocks a send on metadata; delivery.timeout.ms bounds the wait for acknowledgements"),
    ("metric.reporters", "a Java class; use flumen's metrics instead"),
    ("metrics.num.samples", "Java client metrics; use flumen's metrics instead"),
    ("metrics.sample.window.ms", "Java client metrics; use flumen's metrics instead"),
    ("metrics.recording.level", "Java client metrics; use flumen's metrics instead"),
    ("enable.auto.commit", "offsets are committed only after the channel commits (Flume forces this off too)"),
    ("auto.commit.interval.ms", "offsets are committed only after the channel commits"),
    ("max.poll.records", "batchSize bounds the records of one transaction"),
    ("default.api.timeout.ms", "a Java client timeout with no librdkafka equivalent"),
    ("exclude.internal.topics", "internal topics are never subscribed by name"),
    ("ssl.protocol", "OpenSSL negotiates TLS 1.2 or 1.3"),
    ("ssl.enabled.protocols", "OpenSSL negotiates TLS 1.2 or 1.3"),
    ("ssl.keymanager.algorithm", "a JVM security setting"),
    ("ssl.trustmanager.algorithm", "a JVM security setting"),
    ("ssl.secure.random.implementation", "a JVM security setting"),
    ("security.providers", "a JVM security setting"),
    ("sasl.login.class", "a JVM class; PLAIN and SCRAM logins come from sasl.jaas.config"),
    ("sasl.login.callback.handler.class", "a JVM class"),
    ("sasl.client.callback.handler.class", "a JVM class"),
];

/// Translates one Java client key (below `kafka.producer.`/`kafka.consumer.`) and its value.
pub fn translate(role: Role, key: &str, value: &str) -> Translation {
    let set = |k: &'static str, v: &str| Translation::Set(vec![(k, v.to_string())]);
    if let Some(k) = SAME.iter().find(|k| **k == key) {
        return set(k, value);
    }
    if let Some((_, to)) = RENAMED.iter().find(|(k, _)| *k == key) {
        return set(to, value);
    }
    if let Some((_, why)) = JVM_ONLY.iter().find(|(k, _)| *k == key) {
        return Translation::Ignore((*why).to_string());
    }
    match key {
        "bootstrap.servers" => Translation::Refuse(
            "set `kafka.bootstrap.servers` on the component instead (Flume overrides this one with it too)".into(),
        ),
        "compression.type" => match value {
            "none" | "gzip" | "snappy" | "lz4" | "zstd" => set("compression.type", value),
            _ => Translation::Refuse("one of none, gzip, snappy, lz4, zstd".into()),
        },
        // Java: -1 is the operating system's default; librdkafka: 0.
        "receive.buffer.bytes" | "send.buffer.bytes" => {
            let to = if key == "receive.buffer.bytes" {
                "socket.receive.buffer.bytes"
            } else {
                "socket.send.buffer.bytes"
            };
            set(to, if value == "-1" { "0" } else { value })
        }
        "buffer.memory" => match value.parse::<u64>() {
            Ok(bytes) => set(
                "queue.buffering.max.kbytes",
                &bytes.div_ceil(1024).clamp(1, 2_147_483_647).to_string(),
            ),
            Err(_) => Translation::Refuse("a number of bytes".into()),
        },
        "ssl.endpoint.identification.algorithm" => match value {
            "" => set("ssl.endpoint.identification.algorithm", "none"),
            "https" | "HTTPS" => set("ssl.endpoint.identification.algorithm", "https"),
            _ => Translation::Refuse("`https` or empty (no host name check)".into()),
        },
        "auto.offset.reset" if role == Role::Consumer => match value {
            "earliest" | "latest" => set("auto.offset.reset", value),
            "none" => set("auto.offset.reset", "error"),
            _ => Translation::Refuse("earliest, latest or none".into()),
        },
        "partition.assignment.strategy" if role == Role::Consumer => assignors(value),
        "sasl.jaas.config" => jaas(value),
        // Flume's own key among the client's (KafkaSSLUtil): `true` turns off the host name
        // check, as an empty ssl.endpoint.identification.algorithm does.
        "ssl.disableTLSHostnameVerification" => match value {
            "true" => set("ssl.endpoint.identification.algorithm", "none"),
            "false" => set("ssl.endpoint.identification.algorithm", "https"),
            _ => Translation::Refuse("true or false".into()),
        },
        "ssl.keystore.type" | "ssl.truststore.type" => match value {
            "PKCS12" | "pkcs12" | "PEM" | "pem" => Translation::Ignore(
                "the store's format is read from the file itself".into(),
            ),
            _ => Translation::Refuse(format!(
                "PKCS12 or PEM: librdkafka cannot read a {value} store; convert it with `keytool -importkeystore -srckeystore <file> -destkeystore <file>.p12 -deststoretype PKCS12`"
            )),
        },
        "ssl.truststore.location" => Translation::Refuse(
            "a PEM file of CA certificates in `ssl.ca.location` instead: librdkafka reads no Java truststore (export one with `keytool -exportcert -rfc -alias <ca> -keystore <truststore> > ca.pem`)".into(),
        ),
        "ssl.truststore.password" => Translation::Ignore(
            "set with ssl.truststore.location, which flumen refuses: use ssl.ca.location".into(),
        ),
        "interceptor.classes" => Translation::Refuse(
            "nothing: Kafka client interceptors are Java classes, which flumen cannot run; use a Flume interceptor on the source instead".into(),
        ),
        "partitioner.class" if role == Role::Producer => Translation::Refuse(
            "nothing: a Java partitioner class cannot run in flumen; keyed records already land where Kafka's default partitioner puts them, and partitionIdHeader / defaultPartitionId choose a partition".into(),
        ),
        _ => Translation::PassThrough,
    }
}

/// `partition.assignment.strategy`: Java assignor classes as librdkafka's names.
fn assignors(value: &str) -> Translation {
    let mut names = Vec::new();
    for class in value.split(',').map(str::trim).filter(|c| !c.is_empty()) {
        let short = class.rsplit('.').next().unwrap_or(class);
        let name = match short {
            "RangeAssignor" | "range" => "range",
            "RoundRobinAssignor" | "roundrobin" => "roundrobin",
            "CooperativeStickyAssignor" | "cooperative-sticky" => "cooperative-sticky",
            _ => {
                return Translation::Refuse(format!(
                    "RangeAssignor, RoundRobinAssignor or CooperativeStickyAssignor (librdkafka has no `{short}`)"
                ))
            }
        };
        names.push(name);
    }
    if names.is_empty() {
        return Translation::Refuse("one or more assignor classes".into());
    }
    Translation::Set(vec![("partition.assignment.strategy", names.join(","))])
}

/// `sasl.jaas.config`: a PLAIN or SCRAM login's user name and password; Kerberos and OAuth
/// need what librdkafka was not built with here.
fn jaas(value: &str) -> Translation {
    let module = value.split_whitespace().next().unwrap_or("");
    let short = module.rsplit('.').next().unwrap_or(module);
    match short {
        "PlainLoginModule" | "ScramLoginModule" => {
            let (mut user, mut password) = (None, None);
            for (k, v) in jaas_options(value) {
                match k.as_str() {
                    "username" => user = Some(v),
                    "password" => password = Some(v),
                    _ => {}
                }
            }
            match (user, password) {
                (Some(u), Some(p)) => Translation::Set(vec![
                    ("sasl.username", u),
                    ("sasl.password", p),
                ]),
                _ => Translation::Refuse(format!(
                    "`{module} required username=\"...\" password=\"...\";`"
                )),
            }
        }
        "Krb5LoginModule" => Translation::Refuse(
            "nothing flumen can do: Kerberos (GSSAPI) is not built into flumen's Kafka client; use SASL PLAIN or SCRAM".into(),
        ),
        _ => Translation::Refuse(format!(
            "a PlainLoginModule or ScramLoginModule line (`{module}` is not supported)"
        )),
    }
}

/// The `name="value"` options of a JAAS line (values may be quoted; `\"` escapes a quote).
fn jaas_options(value: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = value;
    while let Some(eq) = rest.find('=') {
        let name = rest[..eq]
            .rsplit(|c: char| c.is_whitespace())
            .next()
            .unwrap_or("")
            .to_string();
        let after = &rest[eq + 1..];
        let (val, remaining) = if let Some(q) = after.strip_prefix('"') {
            let mut v = String::new();
            let mut chars = q.char_indices();
            let mut end = q.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, n)) = chars.next() {
                            v.push(n);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    _ => v.push(c),
                }
            }
            (v, &q[end.min(q.len())..])
        } else {
            let end = after
                .find(|c: char| c.is_whitespace() || c == ';')
                .unwrap_or(after.len());
            (after[..end].to_string(), &after[end..])
        };
        out.push((name, val));
        rest = remaining;
    }
    out
}

/// Reads every `kafka.producer.*` / `kafka.consumer.*` key (by `role`) into `settings`, over
/// the component's defaults already there, then checks the result with librdkafka. Warns for
/// each ignored key.
pub fn read_client_keys(
    keys: &mut Keys<'_>,
    role: Role,
    settings: &mut ClientSettings,
) -> Result<(), ConfigError> {
    for (key, val) in keys.take_prefixed(role.prefix()) {
        let java = &key[role.prefix().len()..];
        match translate(role, java, &val.value) {
            Translation::Set(pairs) => {
                for (k, v) in pairs {
                    let origin = Origin {
                        key: key.clone(),
                        value: val.clone(),
                    };
                    settings.put(k, v, Some(origin));
                }
            }
            Translation::PassThrough => {
                let origin = Origin {
                    key: key.clone(),
                    value: val.clone(),
                };
                settings.put(java, val.value.clone(), Some(origin));
            }
            Translation::Ignore(reason) => {
                keys.warn(val.line, &key, WarningKind::IgnoredKey { reason });
            }
            Translation::Refuse(expected) => return Err(keys.bad(&key, &val, expected)),
        }
    }
    settings.check(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(pairs: &[(&str, &str)]) -> Keys<'static> {
        Keys::from_pairs("sink", "k1", pairs)
    }

    #[test]
    fn java_keys_become_librdkafka_settings_of_the_same_meaning() {
        let mut k = keys(&[
            ("kafka.producer.acks", "all"),
            ("kafka.producer.sasl.mechanism", "PLAIN"),
            ("kafka.producer.receive.buffer.bytes", "-1"),
            ("kafka.producer.buffer.memory", "33554432"),
            ("kafka.producer.queue.buffering.max.messages", "1000"),
            ("kafka.producer.ssl.disableTLSHostnameVerification", "true"),
            (
                "kafka.producer.sasl.jaas.config",
                r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="alice" password="a\"b";"#,
            ),
        ]);
        let mut s = ClientSettings::new("b:9092");
        read_client_keys(&mut k, Role::Producer, &mut s).expect("accepted");
        assert_eq!(s.get("acks"), Some("all"));
        assert_eq!(s.get("sasl.mechanisms"), Some("PLAIN"));
        assert_eq!(s.get("socket.receive.buffer.bytes"), Some("0"));
        assert_eq!(s.get("queue.buffering.max.kbytes"), Some("32768"));
        assert_eq!(s.get("queue.buffering.max.messages"), Some("1000"));
        assert_eq!(s.get("ssl.endpoint.identification.algorithm"), Some("none"));
        assert_eq!(s.get("sasl.username"), Some("alice"));
        assert_eq!(s.get("sasl.password"), Some("a\"b"));
        assert!(s.user_set("acks"));
    }

    #[test]
    fn jvm_only_keys_are_ignored_with_a_warning() {
        let mut k = keys(&[(
            "kafka.producer.key.serializer",
            "org.apache.kafka.common.serialization.StringSerializer",
        )]);
        let mut s = ClientSettings::new("b:9092");
        read_client_keys(&mut k, Role::Producer, &mut s).expect("accepted");
        let mut warnings = Vec::new();
        k.finish(&mut warnings);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0]
            .to_string()
            .contains("sends the key and value as bytes"));
        assert_eq!(s.get("key.serializer"), None);
    }

    #[test]
    fn a_value_librdkafka_refuses_names_the_key_and_line() {
        let mut k = keys(&[("kafka.producer.acks", "several")]);
        let mut s = ClientSettings::new("b:9092");
        let e = read_client_keys(&mut k, Role::Producer, &mut s)
            .expect_err("refused")
            .to_string();
        assert!(e.contains("kafka.producer.acks"), "{e}");
        assert!(e.contains("several"), "{e}");
    }

    #[test]
    fn an_unknown_property_is_refused_naming_the_key() {
        let mut k = keys(&[("kafka.consumer.no.such.thing", "1")]);
        let mut s = ClientSettings::new("b:9092");
        let e = read_client_keys(&mut k, Role::Consumer, &mut s)
            .expect_err("refused")
            .to_string();
        assert!(e.contains("kafka.consumer.no.such.thing"), "{e}");
    }

    #[test]
    fn stores_and_logins_librdkafka_cannot_read_are_refused_with_what_to_do() {
        for (key, value, hint) in [
            (
                "kafka.consumer.ssl.truststore.location",
                "/x.jks",
                "ssl.ca.location",
            ),
            (
                "kafka.consumer.ssl.keystore.type",
                "JKS",
                "keytool -importkeystore",
            ),
            (
                "kafka.consumer.sasl.jaas.config",
                "com.sun.security.auth.module.Krb5LoginModule required;",
                "Kerberos",
            ),
            (
                "kafka.consumer.auto.offset.reset",
                "smallest",
                "earliest, latest or none",
            ),
        ] {
            let mut k = keys(&[(key, value)]);
            let mut s = ClientSettings::new("b:9092");
            let e = read_client_keys(&mut k, Role::Consumer, &mut s)
                .expect_err("refused")
                .to_string();
            assert!(e.contains(key) && e.contains(hint), "{key}: {e}");
        }
    }

    #[test]
    fn assignor_classes_map_to_librdkafka_names() {
        assert_eq!(
            translate(
                Role::Consumer,
                "partition.assignment.strategy",
                "org.apache.kafka.clients.consumer.RoundRobinAssignor, org.apache.kafka.clients.consumer.RangeAssignor"
            ),
            Translation::Set(vec![(
                "partition.assignment.strategy",
                "roundrobin,range".to_string()
            )])
        );
    }

    #[test]
    fn the_old_broker_list_key_is_used_with_a_warning_naming_the_new_one() {
        let mut k = keys(&[("brokerList", "h:9092")]);
        assert_eq!(
            bootstrap_servers(&mut k, Some("brokerList")).expect("accepted"),
            "h:9092"
        );
        let mut warnings = Vec::new();
        k.finish(&mut warnings);
        assert!(
            warnings[0].to_string().contains("kafka.bootstrap.servers"),
            "{warnings:?}"
        );
        let mut k = keys(&[]);
        let e = bootstrap_servers(&mut k, Some("brokerList"))
            .expect_err("refused")
            .to_string();
        assert!(e.contains("kafka.bootstrap.servers"), "{e}");
    }
}
