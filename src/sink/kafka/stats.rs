//! The producer context of a [`KafkaSink`](super::KafkaSink): delivery reports and client errors
//! land here (on rdkafka's polling thread), and its counters.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Instant;

use rdkafka::ClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::DeliveryResult;
use rdkafka::producer::ProducerContext;

/// Counters of a [`KafkaSink`](super::KafkaSink), readable while it runs (cheap to clone; all
/// clones and the sink share them). They count Kafka *messages* (one per click), including the
/// re-sends of retried batches, so they are the broker-side view; the pipeline's
/// [`Stats`](crate::Stats) stay the per-click truth.
///
/// ```
/// use linkgate::KafkaSink;
/// let sink = KafkaSink::builder("127.0.0.1:9092", "clicks").build()?;
/// let kafka = sink.stats(); // keep this; hand the sink to the pipeline
/// assert_eq!((kafka.delivered(), kafka.failed_reports(), kafka.errors()), (0, 0, 0));
/// # Ok::<(), linkgate::KafkaSinkError>(())
/// ```
#[derive(Clone, Default)]
pub struct KafkaStats {
    pub(super) inner: Arc<Inner>,
}

#[derive(Debug, Default)]
pub(super) struct Inner {
    delivered: AtomicU64,
    failed_reports: AtomicU64,
    stale_reports: AtomicU64,
    errors: AtomicU64,
    pub(super) queue_full: AtomicU64,
    pub(super) restarts: AtomicU64,
    pub(super) topic_creates: AtomicU64,
    pub(super) unconfirmed_at_close: AtomicU64,
    /// Set by a delivery report saying the idempotent producer's state is gone (e.g. the
    /// cluster came back empty): the next write rebuilds the producer.
    pub(super) needs_restart: AtomicBool,
    last_error: Mutex<Option<String>>,
    /// The last client-level error (error callback), kept apart from failed reports so that a
    /// failed write can name both (e.g. "message timed out" and "all brokers down").
    client_error: Mutex<Option<String>>,
    /// The batch being written, and the condition the drain thread waits on for its reports.
    batch: Mutex<Batch>,
    reported: Condvar,
    /// rdkafka 0.39's `BaseProducer::poll` hands every error event to the context twice (once in
    /// `Client::poll_event`, once in `handle_error_event`): remember the first of each pair.
    pending_duplicate: Mutex<Option<String>>,
}

/// Delivery progress of the current write attempt.
#[derive(Debug, Default)]
pub(super) struct Batch {
    /// Tag of the current attempt; reports carrying another tag are stale.
    pub(super) generation: usize,
    pub(super) expected: usize,
    pub(super) acked: usize,
    pub(super) failed: usize,
    pub(super) first_error: Option<String>,
}

impl Batch {
    pub(super) fn reported(&self) -> usize {
        self.acked + self.failed
    }
}

impl KafkaStats {
    /// Messages the broker acknowledged (successful delivery reports).
    pub fn delivered(&self) -> u64 {
        self.inner.delivered.load(Ordering::Relaxed)
    }
    /// Failed delivery reports (message timed out, broker refused it, purged...).
    pub fn failed_reports(&self) -> u64 {
        self.inner.failed_reports.load(Ordering::Relaxed)
    }
    /// Delivery reports (good or bad) that arrived for an earlier, abandoned write attempt.
    pub fn stale_reports(&self) -> u64 {
        self.inner.stale_reports.load(Ordering::Relaxed)
    }
    /// Client-level errors librdkafka reported (broker down, all brokers down, fatal...).
    pub fn errors(&self) -> u64 {
        self.inner.errors.load(Ordering::Relaxed)
    }
    /// Times a message could not be enqueued because the producer queue was full.
    pub fn queue_full(&self) -> u64 {
        self.inner.queue_full.load(Ordering::Relaxed)
    }
    /// Times the producer was rebuilt after a fatal error.
    pub fn restarts(&self) -> u64 {
        self.inner.restarts.load(Ordering::Relaxed)
    }
    /// Successful topic creations by the sink (see `create_topic`).
    pub fn topic_creates(&self) -> u64 {
        self.inner.topic_creates.load(Ordering::Relaxed)
    }
    /// Messages librdkafka still held, unconfirmed, when the sink was dropped or its producer
    /// rebuilt (librdkafka purges them then; their clicks were already counted `failed` or sent
    /// again by the pipeline).
    pub fn unconfirmed_at_close(&self) -> u64 {
        self.inner.unconfirmed_at_close.load(Ordering::Relaxed)
    }
    /// The last error librdkafka reported, a failed delivery or a client error.
    pub fn last_error(&self) -> Option<String> {
        lock(&self.inner.last_error).clone()
    }
}

impl std::fmt::Debug for KafkaStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaStats")
            .field("delivered", &self.delivered())
            .field("failed_reports", &self.failed_reports())
            .field("stale_reports", &self.stale_reports())
            .field("errors", &self.errors())
            .field("queue_full", &self.queue_full())
            .field("restarts", &self.restarts())
            .field("topic_creates", &self.topic_creates())
            .field("unconfirmed_at_close", &self.unconfirmed_at_close())
            .field("last_error", &self.last_error())
            .finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Inner {
    pub(super) fn set_error(&self, e: String) {
        *lock(&self.last_error) = Some(e);
    }

    pub(super) fn client_error(&self) -> Option<String> {
        lock(&self.client_error).clone()
    }

    /// Starts a write attempt of `expected` messages; returns its tag.
    pub(super) fn begin(&self, expected: usize) -> usize {
        let mut b = lock(&self.batch);
        b.generation = b.generation.wrapping_add(1);
        b.expected = expected;
        b.acked = 0;
        b.failed = 0;
        b.first_error = None;
        b.generation
    }

    /// Lowers the number of reports the current attempt waits for (messages never enqueued).
    pub(super) fn expect(&self, expected: usize) {
        lock(&self.batch).expected = expected;
    }

    /// Waits until every report of the current attempt arrived or `until`; returns the
    /// attempt's state.
    pub(super) fn wait(&self, until: Instant) -> MutexGuard<'_, Batch> {
        let mut b = lock(&self.batch);
        loop {
            let now = Instant::now();
            if b.reported() >= b.expected || now >= until {
                return b;
            }
            b = self
                .reported
                .wait_timeout(b, until - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }
}

/// The `ProducerContext` of the sink's producer: a handle on the shared counters.
#[derive(Debug)]
pub(super) struct Context(pub(super) Arc<Inner>);

impl ClientContext for Context {
    fn error(&self, error: KafkaError, reason: &str) {
        let text = format!("{error}: {reason}");
        {
            let mut pending = lock(&self.0.pending_duplicate);
            if pending.as_deref() == Some(&text) {
                *pending = None;
                return;
            }
            *pending = Some(text.clone());
        }
        self.0.errors.fetch_add(1, Ordering::Relaxed);
        let fatal = error.rdkafka_error_code() == Some(RDKafkaErrorCode::Fatal);
        let text = if fatal {
            format!("librdkafka fatal error (the producer is rebuilt on the next write): {text}")
        } else {
            format!("librdkafka: {text}")
        };
        *lock(&self.0.client_error) = Some(text.clone());
        self.0.set_error(text);
    }
}

impl ProducerContext for Context {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, generation: usize) {
        let failure = match result {
            Ok(_) => {
                self.0.delivered.fetch_add(1, Ordering::Relaxed);
                None
            }
            Err((e, _)) => {
                self.0.failed_reports.fetch_add(1, Ordering::Relaxed);
                if e.rdkafka_error_code().is_some_and(lost_idempotence) {
                    self.0.needs_restart.store(true, Ordering::Relaxed);
                }
                Some(e)
            }
        };
        let mut b = lock(&self.0.batch);
        if b.generation != generation {
            self.0.stale_reports.fetch_add(1, Ordering::Relaxed);
            return;
        }
        match failure {
            None => b.acked += 1,
            Some(e) => {
                b.failed += 1;
                if b.first_error.is_none() {
                    let text = format!("delivery failed: {e}");
                    self.0.set_error(text.clone());
                    b.first_error = Some(text);
                }
            }
        }
        if b.reported() >= b.expected {
            self.0.reported.notify_all();
        }
    }
}

/// Errors after which this producer's id/epoch/sequence state is no use: only a new producer
/// (a new producer id) gets messages through again.
fn lost_idempotence(code: RDKafkaErrorCode) -> bool {
    matches!(
        code,
        RDKafkaErrorCode::ProducerFenced
            | RDKafkaErrorCode::InvalidProducerEpoch
            | RDKafkaErrorCode::UnknownProducerId
            | RDKafkaErrorCode::OutOfOrderSequenceNumber
            | RDKafkaErrorCode::InvalidProducerIdMapping
            | RDKafkaErrorCode::Fatal
    )
}
