//! Where clicks go: the [`ClickSink`] trait and the built-in sinks (one file each).

#[cfg(feature = "amqp")]
mod amqp;
mod counting;
mod fanout;
mod func;
mod jsonl;
#[cfg(feature = "kafka")]
mod kafka;
mod memory;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(any(feature = "redis", feature = "postgres"))]
mod reconnect;
#[cfg(any(feature = "webhook", feature = "amqp"))]
mod redact;
#[cfg(feature = "redis")]
mod redis_stream;
#[cfg(feature = "webhook")]
mod signature;
#[cfg(feature = "webhook")]
mod webhook;

#[cfg(feature = "amqp")]
pub use amqp::{AmqpConfigError, AmqpSink};
pub use counting::CountingSink;
pub use fanout::{FanoutSink, FanoutStats};
pub use func::FnSink;
pub use jsonl::JsonLinesSink;
#[cfg(feature = "kafka")]
pub use kafka::{KafkaSink, KafkaSinkBuilder, KafkaSinkError, KafkaStats};
pub use memory::MemorySink;
#[cfg(feature = "postgres")]
pub use postgres::PostgresSink;
#[cfg(feature = "redis")]
pub use redis_stream::{RedisSinkConfigError, RedisStreamSink};
#[cfg(feature = "webhook")]
pub use signature::{SIGNATURE_HEADER, SignatureError, sign as sign_webhook, verify_signature};
#[cfg(feature = "webhook")]
pub use webhook::{BATCH_ID_HEADER, WebhookConfigError, WebhookSink};

use crate::click::Click;
pub use crate::drain::DrainContext;

/// Why a sink could not take a batch.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SinkError {
    /// An I/O error (retried).
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    /// A temporary failure (retried with backoff).
    #[error("{0}")]
    Transient(String),
    /// The destination refused the batch for good: counted `failed` at once, not retried.
    #[error("rejected, not retried: {0}")]
    Permanent(String),
}

impl SinkError {
    /// Whether retrying could help.
    pub fn is_retryable(&self) -> bool {
        !matches!(self, SinkError::Permanent(_))
    }
}

/// A destination for clicks, driven by the drain thread.
///
/// What a sink may assume:
/// - `write` and `flush` are called only on the drain thread (`linkgate-drain`), never
///   concurrently, never from a request.
/// - A batch holds 1 to `max_batch` clicks in record order per producing thread (clicks from
///   different threads interleave in the order they entered the channel).
/// - **At-least-once**: after an error, the *same* batch is written again (with backoff) until it
///   succeeds or the retry budget is spent (then it is counted failed, or, with a spool, written
///   to disk and sent again later, possibly after a restart). A sink that wrote part of a batch before failing will
///   see that part again: it must tolerate a redelivered batch (consumers dedupe by `click_id`).
/// - `flush` is called at shutdown (and after each batch if the sink wants durability per batch,
///   it does that inside `write`). A panic in `write` is caught: the batch is counted failed and
///   draining goes on (with a fresh sink if the pipeline has a factory).
///
/// `()` is a sink that accepts and discards everything; any
/// `FnMut(&[Click]) -> Result<(), SinkError> + Send + 'static` closure is a sink.
pub trait ClickSink: Send + 'static {
    /// Takes one batch. `Ok` means every click of it is delivered.
    fn write(&mut self, batch: &[Click]) -> Result<(), SinkError>;

    /// Makes delivered clicks durable (fsync, broker flush...). Default: nothing to do.
    fn flush(&mut self) -> Result<(), SinkError> {
        Ok(())
    }

    /// Called once on the drain thread before the first `write` (and again for a sink rebuilt by
    /// the pipeline's factory) with what the sink may want to know about its pipeline: the batch
    /// size, and the shutdown deadline once a shutdown has begun (a sink that waits inside
    /// `write`, e.g. for broker acknowledgements, stops waiting at that deadline). Default:
    /// nothing to do.
    fn attach(&mut self, _ctx: &DrainContext) {}
}

impl ClickSink for () {
    fn write(&mut self, _batch: &[Click]) -> Result<(), SinkError> {
        Ok(())
    }
}

impl<F> ClickSink for F
where
    F: FnMut(&[Click]) -> Result<(), SinkError> + Send + 'static,
{
    fn write(&mut self, batch: &[Click]) -> Result<(), SinkError> {
        self(batch)
    }
}

impl ClickSink for Box<dyn ClickSink> {
    fn write(&mut self, batch: &[Click]) -> Result<(), SinkError> {
        (**self).write(batch)
    }
    fn flush(&mut self) -> Result<(), SinkError> {
        (**self).flush()
    }
    fn attach(&mut self, ctx: &DrainContext) {
        (**self).attach(ctx)
    }
}
