//! What Flume's three Kafka components share: turning Flume's client keys (`kafka.bootstrap.servers`,
//! `kafka.producer.*`, `kafka.consumer.*`, written for Kafka's Java client) into librdkafka's
//! settings ([`client`]), and naming librdkafka's failures the way an operator can act on
//! them ([`error`]). The components themselves live with their kinds: `sink::kafka`,
//! `source::kafka`, `channel::kafka`.
//!
//! Invariants: a Java client key is either translated to the librdkafka setting with the same
//! meaning, refused with an error naming it and what to write instead, or ignored with a
//! warning saying why; never passed on to mean something else. Every setting is checked by
//! librdkafka itself when the configuration is read, so a bad value stops start-up (and
//! `flumen config check`) with the file, line and key, not the first connection.

pub mod client;
pub mod error;

pub use client::{ClientSettings, Role};
pub use error::{describe, Described};
