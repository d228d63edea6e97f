//! `KafkaSinkBuilder`: configuration, validation and producer creation of a `KafkaSink`.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::error::KafkaError;

use super::stats::{Context, Inner};
use super::{KafkaProducer, KafkaSink};

/// Why a [`KafkaSink`] could not be built.
///
/// ```
/// use linkgate::{KafkaSink, KafkaSinkError};
/// let err = KafkaSink::builder("127.0.0.1:9092", "clicks/2026").build().unwrap_err();
/// assert!(matches!(err, KafkaSinkError::InvalidTopic(_)));
/// let err = KafkaSink::builder("127.0.0.1:9092", "clicks").set("acks", "maybe").build().unwrap_err();
/// assert!(matches!(err, KafkaSinkError::Client { .. }));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KafkaSinkError {
    /// librdkafka refused the configuration (an unknown property, a bad value...).
    #[error("Kafka producer for {brokers:?} (topic {topic:?})")]
    Client {
        /// `bootstrap.servers`.
        brokers: String,
        /// The topic.
        topic: String,
        /// librdkafka's error.
        #[source]
        source: Box<KafkaError>,
    },
    /// The topic name is empty, longer than 249 bytes or has characters Kafka refuses.
    #[error("invalid Kafka topic name {0:?} (1-249 of [a-zA-Z0-9._-])")]
    InvalidTopic(String),
}

/// Configures a [`KafkaSink`]; see its "Default values". Its `Debug` shows the names of the
/// librdkafka properties set, never their values (they may hold credentials).
///
/// ```
/// use std::time::Duration;
/// use linkgate::KafkaSink;
/// // Building connects in the background: no broker is needed to get a sink.
/// let sink = KafkaSink::builder("kafka-1:9092,kafka-2:9092", "clicks")
///     .message_timeout(Duration::from_secs(10))
///     .create_topic(12, 3)
///     .set("compression.type", "lz4")
///     .set("security.protocol", "plaintext")
///     .build()?;
/// assert_eq!(sink.topic(), "clicks");
/// # Ok::<(), linkgate::KafkaSinkError>(())
/// ```
#[must_use]
#[derive(Clone)]
pub struct KafkaSinkBuilder {
    brokers: String,
    topic: String,
    settings: Vec<(String, String)>,
    message_timeout: Duration,
    close_timeout: Duration,
    create_topic: Option<(i32, i32)>,
    max_batch: usize,
}

impl std::fmt::Debug for KafkaSinkBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let keys: Vec<&str> = self.settings.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("KafkaSinkBuilder")
            .field("brokers", &self.brokers)
            .field("topic", &self.topic)
            .field("settings", &keys)
            .field("message_timeout", &self.message_timeout)
            .field("close_timeout", &self.close_timeout)
            .field("create_topic", &self.create_topic)
            .field("max_batch", &self.max_batch)
            .finish()
    }
}

pub(super) fn queue_limit(max_batch: usize) -> usize {
    max_batch.saturating_mul(4).max(1024)
}

fn valid_topic(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 249
        && t != "."
        && t != ".."
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

impl KafkaSink {
    /// Starts configuring a sink writing to `topic` on the cluster at `brokers`
    /// (`bootstrap.servers`: `host:port[,host:port...]`).
    pub fn builder(brokers: impl Into<String>, topic: impl Into<String>) -> KafkaSinkBuilder {
        KafkaSinkBuilder {
            brokers: brokers.into(),
            topic: topic.into(),
            settings: Vec::new(),
            message_timeout: Duration::from_secs(30),
            close_timeout: Duration::from_secs(5),
            create_topic: None,
            max_batch: 1024,
        }
    }
}

impl KafkaSinkBuilder {
    /// Sets any librdkafka producer property (see librdkafka's `CONFIGURATION.md`), overriding
    /// the sink's defaults: e.g. `compression.type`, `linger.ms`, `security.protocol`.
    pub fn set(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.settings.push((key.into(), value.into()));
        self
    }

    /// How long librdkafka keeps trying to deliver a message (`message.timeout.ms`); a write
    /// waits at most this long (plus a 2 s margin for the last reports).
    pub fn message_timeout(mut self, d: Duration) -> Self {
        self.message_timeout = d.max(Duration::from_millis(1));
        self
    }

    /// Create the topic with `partitions` and `replication` factor when it is missing: before the
    /// first write and before any write that follows a failed one.
    pub fn create_topic(mut self, partitions: i32, replication: i32) -> Self {
        self.create_topic = Some((partitions.max(1), replication.max(1)));
        self
    }

    /// How long `flush` (outside a shutting-down pipeline) and `Drop` wait for unconfirmed
    /// messages.
    pub fn close_timeout(mut self, d: Duration) -> Self {
        self.close_timeout = d;
        self
    }

    /// Batch size the producer queue is sized for before the sink is attached to a pipeline
    /// (the pipeline's own `max_batch` replaces it then). Default 1 024.
    pub fn max_batch(mut self, n: usize) -> Self {
        self.max_batch = n.max(1);
        self
    }

    /// Creates the producer (it connects in the background: an unreachable broker is not an
    /// error here, it shows up as failed writes and in [`KafkaStats`](super::KafkaStats)).
    pub fn build(self) -> Result<KafkaSink, KafkaSinkError> {
        if !valid_topic(&self.topic) {
            return Err(KafkaSinkError::InvalidTopic(self.topic));
        }
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.brokers)
            .set("client.id", "linkgate")
            .set("acks", "all")
            .set("enable.idempotence", "true")
            .set("linger.ms", "1")
            .set(
                "message.timeout.ms",
                self.message_timeout
                    .as_millis()
                    .min(i32::MAX as u128)
                    .to_string(),
            )
            .set(
                "queue.buffering.max.messages",
                queue_limit(self.max_batch).to_string(),
            );
        let mut queue_set_by_user = false;
        let mut message_timeout = self.message_timeout;
        for (k, v) in &self.settings {
            queue_set_by_user |= k == "queue.buffering.max.messages";
            if k == "message.timeout.ms" || k == "delivery.timeout.ms" {
                if let Ok(ms) = v.parse::<u64>() {
                    message_timeout = Duration::from_millis(ms);
                }
            }
            config.set(k, v);
        }
        let inner = Arc::new(Inner::default());
        let producer = new_producer(&config, &inner, &self.brokers, &self.topic)?;
        Ok(KafkaSink {
            producer,
            config,
            inner,
            topic: self.topic,
            brokers: self.brokers,
            message_timeout,
            close_timeout: self.close_timeout,
            create_topic: self.create_topic,
            check_topic: self.create_topic.is_some(),
            queue_set_by_user,
            ctx: None,
            json: Vec::with_capacity(1024),
        })
    }
}

pub(super) fn new_producer(
    config: &ClientConfig,
    inner: &Arc<Inner>,
    brokers: &str,
    topic: &str,
) -> Result<KafkaProducer, KafkaSinkError> {
    config
        .create_with_context(Context(inner.clone()))
        .map_err(|source| KafkaSinkError::Client {
            brokers: brokers.to_string(),
            topic: topic.to_string(),
            source: Box::new(source),
        })
}
