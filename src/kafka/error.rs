//! librdkafka's failures as an operator reads them: what happened, to which topic on which
//! brokers, whether waiting can help, and what to do. The components wrap the result in their
//! own error types (`SinkError`, `ChannelError`, a source's log line).

use rdkafka::error::{KafkaError, RDKafkaErrorCode};

/// A Kafka failure described for the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Described {
    /// One sentence naming the brokers, the topic and what to do.
    pub message: String,
    /// Whether retrying later can succeed without anyone acting (a broker down, a leader
    /// moving, a timeout); false for what an operator must fix (a missing topic, ACLs, a
    /// record too large). Either way the components keep the events and retry with backoff.
    pub retryable: bool,
}

/// Describes `err` met while talking to `bootstrap` about `topic`.
pub fn describe(err: &KafkaError, bootstrap: &str, topic: &str) -> Described {
    let code = err.rdkafka_error_code();
    let permanent = |what: String| Described {
        message: what,
        retryable: false,
    };
    let transient = |what: String| Described {
        message: what,
        retryable: true,
    };
    match code {
        Some(RDKafkaErrorCode::UnknownTopicOrPartition) | Some(RDKafkaErrorCode::UnknownTopic) => {
            permanent(format!(
                "topic `{topic}` does not exist on the Kafka brokers {bootstrap}: create it (kafka-topics.sh --create --topic {topic}), or enable auto.create.topics.enable on the brokers"
            ))
        }
        Some(RDKafkaErrorCode::UnknownPartition) => permanent(format!(
            "topic `{topic}` on the Kafka brokers {bootstrap} has no such partition: partitionIdHeader or defaultPartitionId names a partition beyond the topic's partition count; fix the header or the key, or add partitions to the topic"
        )),
        Some(RDKafkaErrorCode::TopicAuthorizationFailed) => permanent(format!(
            "not authorized to use topic `{topic}` on the Kafka brokers {bootstrap}: grant this client's principal the ACL it needs (WRITE for a producer, READ for a consumer)"
        )),
        Some(RDKafkaErrorCode::GroupAuthorizationFailed) => permanent(format!(
            "not authorized to use the consumer group on the Kafka brokers {bootstrap} (topic `{topic}`): grant this client's principal READ on the group"
        )),
        Some(RDKafkaErrorCode::ClusterAuthorizationFailed)
        | Some(RDKafkaErrorCode::TransactionalIdAuthorizationFailed) => permanent(format!(
            "not authorized on the Kafka cluster {bootstrap} (topic `{topic}`): {err}; grant this client's principal the ACL"
        )),
        Some(RDKafkaErrorCode::Authentication) | Some(RDKafkaErrorCode::SaslAuthenticationFailed) => {
            permanent(format!(
                "the Kafka brokers {bootstrap} refused this client's login: {err}; check sasl.jaas.config (user name and password) and sasl.mechanism"
            ))
        }
        Some(RDKafkaErrorCode::MessageSizeTooLarge) | Some(RDKafkaErrorCode::InvalidMessageSize) => {
            permanent(format!(
                "an event is larger than the Kafka brokers {bootstrap} or this client accept for topic `{topic}`: raise message.max.bytes on the topic and kafka.producer.max.request.size, or send smaller events"
            ))
        }
        Some(RDKafkaErrorCode::AllBrokersDown)
        | Some(RDKafkaErrorCode::BrokerTransportFailure)
        | Some(RDKafkaErrorCode::Resolve)
        | Some(RDKafkaErrorCode::NetworkException) => transient(format!(
            "cannot reach the Kafka brokers {bootstrap} (topic `{topic}`): {err}; check that they run and that this host can connect"
        )),
        Some(RDKafkaErrorCode::MessageTimedOut)
        | Some(RDKafkaErrorCode::RequestTimedOut)
        | Some(RDKafkaErrorCode::OperationTimedOut) => transient(format!(
            "the Kafka brokers {bootstrap} did not acknowledge in time (topic `{topic}`): {err}; they may be down or overloaded"
        )),
        _ => transient(format!(
            "Kafka brokers {bootstrap}, topic `{topic}`: {err}"
        )),
    }
}
