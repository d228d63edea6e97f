//! `KafkaSink`: one Kafka message per click, through librdkafka (the `rdkafka` crate).
//!
//! # Linking librdkafka
//! The `kafka` feature depends on `rdkafka` 0.39 without default features, which builds the
//! librdkafka it bundles (2.12) from source with its own `configure` + `make` and links it
//! statically: a C compiler and `make` are all it needs (no cmake, no system librdkafka), and
//! every machine runs the same librdkafka. Debian bookworm's `librdkafka-dev` (2.0.2) is too old
//! for rdkafka 0.39's `dynamic-linking` (it requires the bundled version or newer). The first
//! build takes a few minutes. Compression codecs built in: lz4 and snappy; zlib and zstd need
//! rdkafka's `libz` / `zstd` features (enable them in your own `Cargo.toml`).

mod builder;
mod stats;
mod topic;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};

use super::{ClickSink, DrainContext, SinkError};
use crate::click::Click;
pub use builder::{KafkaSinkBuilder, KafkaSinkError};
use builder::{new_producer, queue_limit};
pub use stats::KafkaStats;
use stats::{Context, Inner};

type KafkaProducer = ThreadedProducer<Context>;

/// Extra time, past `message.timeout.ms`, a write waits for librdkafka's last delivery reports
/// (librdkafka scans for timed-out messages about once a second).
const REPORT_MARGIN: Duration = Duration::from_secs(2);

/// Sends each click to a Kafka topic as one message, and counts a batch delivered only when the
/// broker acknowledged every message of it.
///
/// ```no_run
/// use std::time::Duration;
/// use linkgate::{ClickRecorder, KafkaSink};
///
/// let sink = KafkaSink::builder("127.0.0.1:9092", "clicks")
///     .create_topic(6, 1) // create it if missing
///     .set("compression.type", "lz4")
///     .build()?;
/// let kafka = sink.stats(); // librdkafka's view, readable while the pipeline runs
/// let (recorder, guard) = ClickRecorder::builder(sink).max_batch(1024).spawn()?;
/// // ... serve requests; `recorder.record(click)` never waits for Kafka ...
/// let stats = guard.shutdown(Duration::from_secs(10));
/// assert_eq!(stats.recorded, stats.delivered + stats.dropped + stats.failed);
/// println!("acknowledged messages: {}, errors: {}", kafka.delivered(), kafka.errors());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Messages
/// - **value**: the click's JSON ([`Click::write_json`]); **key**: the link key
///   ([`Click::key`], the request path for unmatched clicks); **timestamp**: the click's time;
///   **header** `click_id`: the click id (26 characters, also in the JSON).
/// - **Ordering**: the default partitioner hashes the key, so all clicks of one link go to one
///   partition, in the order this sink sent them (the idempotent producer keeps that order
///   across librdkafka's own retries). Clicks of different links are not ordered relative to
///   each other. A popular link is a hot partition: pass `.set("partitioner", "random")` if you
///   need spread more than per-link order.
///
/// # Delivery
/// - `acks=all` and `enable.idempotence=true` by default: an acknowledged message is on every
///   in-sync replica, and librdkafka's internal retries never duplicate or reorder it.
/// - `write(batch)` enqueues every message of the batch, then **waits** (on the drain thread,
///   never on a request) until librdkafka has a delivery report for each of them: `Ok` only when
///   all of them succeeded. The wait is bounded by `message.timeout.ms` (librdkafka fails a
///   message it could not deliver by then; default here 30 s) plus a 2 s margin, and by the
///   pipeline's shutdown deadline. A write that hits that bound fails as "N of M messages
///   unconfirmed" (the idempotent producer does not time out a message already sent until its
///   request times out); their late reports are counted as stale and never confuse the next
///   attempt (each attempt tags its messages).
/// - Any failed report (broker down until the message timed out, topic missing, refused...) makes
///   the write fail with [`SinkError::Transient`] naming librdkafka's error, and the pipeline
///   retries **the whole batch**: **at-least-once**. Messages of the batch that did reach the
///   broker are sent again, so consumers must dedupe by the `click_id` header (or JSON field).
/// - A full producer queue (`QueueFull`) while enqueueing: the sink waits for room until the
///   write's deadline, then fails the write (retried). The queue limit
///   (`queue.buffering.max.messages`) is 4 × the pipeline's `max_batch` (at least 1 024): room
///   for the current batch and leftovers of an abandoned attempt; the sink sizes it itself when
///   the pipeline starts unless you set it.
/// - A fatal librdkafka error, or a delivery report saying the idempotent producer's state is
///   gone (`ProducerFenced`, `UnknownProducerId`, `OutOfOrderSequenceNumber`...: a cluster that
///   came back empty), fails the write; the next write rebuilds the producer
///   ([`KafkaStats::restarts`]).
/// - With [`create_topic`](KafkaSinkBuilder::create_topic), the sink creates the topic before
///   its first write and again before a write that follows a failed one (a broker that came
///   back empty). Without it, the topic must exist or be auto-created by the brokers.
///
/// # Threads and memory
/// - The producer is rdkafka's `ThreadedProducer`: besides librdkafka's own threads (one per
///   broker plus a few), one polling thread runs the delivery callbacks, which count the reports
///   of the current batch and wake the drain thread (a condition variable) when the last one
///   arrives. There is no async runtime, and nothing is polled on the drain thread.
/// - Each message is copied into librdkafka's queue (JSON ≈ 0.3–0.7 KB per click). The queue
///   holds at most `queue.buffering.max.messages` messages: with the defaults, 4 096 messages,
///   about 2–3 MB.
///
/// # Errors and counters
/// librdkafka's client errors (a broker down, all brokers down, fatal errors) and failed
/// delivery reports are counted in [`KafkaStats`] (from [`stats`](KafkaSink::stats), live while
/// a write waits) and carried into the error a failed write returns, hence the pipeline's
/// `last_error`. Nothing here ever blocks `record`: while a write waits, clicks queue in the
/// pipeline's channel (size its `capacity` for the longest broker outage to ride out:
/// `capacity ≈ clicks/s × message timeout`).
///
/// # Shutdown
/// librdkafka drops the messages still in its queue when a producer is destroyed. This sink
/// never lets that happen unnoticed: [`flush`](ClickSink::flush) (called by the pipeline at
/// shutdown) waits for the queue to empty until the pipeline's deadline (or the
/// [`close_timeout`](KafkaSinkBuilder::close_timeout) outside a pipeline) and returns an error
/// naming how many messages stayed unconfirmed; `Drop` does the same flush and counts what is
/// left in [`KafkaStats::unconfirmed_at_close`]. Because a write waits for its reports, those
/// leftovers can only be copies of clicks from a failed write, which the pipeline has already
/// counted `failed` or sent again: no click is lost uncounted.
///
/// # Building
/// librdkafka 2.12, bundled with `rdkafka` 0.39, is compiled from source and linked statically
/// (a C compiler and `make`; a few minutes on the first build). Debian's `librdkafka-dev` 2.0.2
/// is too old for `rdkafka`'s `dynamic-linking`. Built-in codecs: lz4 and snappy (gzip/zstd
/// through `rdkafka`'s `libz`/`zstd` features in your own `Cargo.toml`).
///
/// # Default values
/// | setting | default |
/// |---|---|
/// | `acks` | `all` |
/// | `enable.idempotence` | `true` |
/// | `linger.ms` | 1 (a batch is enqueued at once; waiting longer only adds latency) |
/// | `message.timeout.ms` | 30 000 ([`message_timeout`](KafkaSinkBuilder::message_timeout)) |
/// | `queue.buffering.max.messages` | 4 × the pipeline's `max_batch`, at least 1 024 |
/// | `client.id` | `linkgate` |
/// | topic creation | off ([`create_topic`](KafkaSinkBuilder::create_topic)) |
/// | `close_timeout` | 5 s |
pub struct KafkaSink {
    producer: KafkaProducer,
    config: ClientConfig,
    inner: Arc<Inner>,
    topic: String,
    brokers: String,
    message_timeout: Duration,
    close_timeout: Duration,
    create_topic: Option<(i32, i32)>,
    check_topic: bool,
    queue_set_by_user: bool,
    ctx: Option<DrainContext>,
    json: Vec<u8>,
}

impl std::fmt::Debug for KafkaSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSink")
            .field("brokers", &self.brokers)
            .field("topic", &self.topic)
            .field("message_timeout", &self.message_timeout)
            .finish_non_exhaustive()
    }
}

impl KafkaSink {
    /// The sink's counters (shared with the sink: read them while it runs, or after the pipeline
    /// has shut down and dropped it).
    pub fn stats(&self) -> KafkaStats {
        KafkaStats {
            inner: self.inner.clone(),
        }
    }

    /// The topic clicks go to.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Messages librdkafka holds that have no delivery report yet.
    pub fn unconfirmed(&self) -> usize {
        self.producer.in_flight_count().max(0) as usize
    }
}

impl KafkaSink {
    /// Replaces the producer (after a fatal error, or to resize its queue before any message).
    fn rebuild(&mut self) -> Result<(), SinkError> {
        let fresh = new_producer(&self.config, &self.inner, &self.brokers, &self.topic)
            .map_err(|e| SinkError::Transient(format!("{e}: {}", source_text(&e))))?;
        // The old producer purges what it still holds on drop: those reports arrive as failed
        // and stale (they belong to write attempts that already failed).
        let old = std::mem::replace(&mut self.producer, fresh);
        self.count_unconfirmed(&old);
        drop(old);
        Ok(())
    }

    fn count_unconfirmed(&self, producer: &KafkaProducer) {
        let left = producer.in_flight_count().max(0) as u64;
        if left > 0 {
            self.inner
                .unconfirmed_at_close
                .fetch_add(left, Ordering::Relaxed);
        }
    }

    /// When the current attempt must be over: the message timeout (plus margin), or the
    /// pipeline's shutdown deadline if sooner.
    fn deadline(&self, start: Instant) -> Instant {
        let own = start + self.message_timeout + REPORT_MARGIN;
        match self.ctx.as_ref().and_then(DrainContext::shutdown_deadline) {
            Some(d) if d < own => d,
            _ => own,
        }
    }

    fn shutting_down(&self) -> bool {
        self.ctx
            .as_ref()
            .and_then(DrainContext::shutdown_deadline)
            .is_some()
    }

    /// Appends the last client-level error librdkafka reported (broker down...), if any.
    fn with_last_error(&self, msg: String) -> String {
        match self.inner.client_error() {
            Some(e) if !msg.contains(&e) => format!("{msg}; last client error: {e}"),
            _ => msg,
        }
    }

    fn ensure_topic(&mut self, until: Instant) -> Result<(), SinkError> {
        let Some((partitions, replication)) = self.create_topic else {
            return Ok(());
        };
        if !self.check_topic {
            return Ok(());
        }
        match topic::create_topic(&self.config, &self.topic, partitions, replication, until) {
            Ok(created) => {
                if created == topic::Created::New {
                    self.inner.topic_creates.fetch_add(1, Ordering::Relaxed);
                }
                self.check_topic = false;
                Ok(())
            }
            Err(e) => {
                self.inner.set_error(e.clone());
                Err(SinkError::Transient(e))
            }
        }
    }

    fn write_batch(&mut self, batch: &[Click]) -> Result<(), SinkError> {
        let start = Instant::now();
        if self.deadline(start) <= start {
            // Past the pipeline's shutdown deadline the drain fails what is left: don't send.
            return Err(SinkError::Transient(
                "not sent: past the pipeline's shutdown deadline".into(),
            ));
        }
        let fatal = self.producer.client().fatal_error();
        if fatal.is_some() || self.inner.needs_restart.swap(false, Ordering::Relaxed) {
            if let Some((code, reason)) = fatal {
                self.inner
                    .set_error(format!("librdkafka fatal error {code}: {reason}"));
            }
            self.rebuild()?;
            self.inner.restarts.fetch_add(1, Ordering::Relaxed);
        }
        self.ensure_topic(self.deadline(start))?;

        let n = batch.len();
        let generation = self.inner.begin(n);
        for (i, click) in batch.iter().enumerate() {
            if let Err(e) = self.enqueue(click, generation, start) {
                // The first `i` are on their way; their reports arrive as stale for the retry.
                self.inner.expect(i);
                return Err(e);
            }
        }
        // Wait in slices, so that a shutdown that begins meanwhile cuts the wait at its deadline.
        let (acked, failed, first_error) = loop {
            let until = self.deadline(start);
            let state = self
                .inner
                .wait(until.min(Instant::now() + Duration::from_millis(50)));
            if state.reported() >= state.expected || Instant::now() >= until {
                break (state.acked, state.failed, state.first_error.clone());
            }
        };
        if failed > 0 {
            let e = first_error.unwrap_or_default();
            return Err(SinkError::Transient(self.with_last_error(format!(
                "{failed} of {n} Kafka messages failed: {e}"
            ))));
        }
        if acked < n {
            let why = if self.shutting_down() {
                "the pipeline's shutdown deadline"
            } else {
                "the message timeout"
            };
            return Err(SinkError::Transient(self.with_last_error(format!(
                "{} of {n} Kafka messages unconfirmed at {why} ({:?})",
                n - acked,
                start.elapsed()
            ))));
        }
        Ok(())
    }

    /// Hands one click to librdkafka, waiting for room while the queue is full.
    fn enqueue(
        &mut self,
        click: &Click,
        generation: usize,
        start: Instant,
    ) -> Result<(), SinkError> {
        self.json.clear();
        click.write_json(&mut self.json);
        let id = click.click_id.encode();
        let headers = OwnedHeaders::new_with_capacity(1).insert(Header {
            key: "click_id",
            value: Some(&id[..]),
        });
        let mut record = BaseRecord::with_opaque_to(&self.topic, generation)
            .key(&click.key[..])
            .payload(&self.json[..])
            .timestamp(click.ts)
            .headers(headers);
        loop {
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    self.inner.queue_full.fetch_add(1, Ordering::Relaxed);
                    if Instant::now() >= self.deadline(start) {
                        let msg = format!(
                            "Kafka producer queue full ({} messages unconfirmed) until the write deadline",
                            self.unconfirmed()
                        );
                        self.inner.set_error(msg.clone());
                        return Err(SinkError::Transient(msg));
                    }
                    // Room appears as delivery reports arrive (on rdkafka's polling thread).
                    std::thread::sleep(Duration::from_millis(1));
                    record = back;
                }
                Err((e, _)) => {
                    let msg = format!("enqueueing a Kafka message for topic {:?}: {e}", self.topic);
                    self.inner.set_error(msg.clone());
                    return Err(match e.rdkafka_error_code() {
                        Some(RDKafkaErrorCode::MessageSizeTooLarge)
                        | Some(RDKafkaErrorCode::InvalidArgument) => SinkError::Permanent(msg),
                        _ => SinkError::Transient(msg),
                    });
                }
            }
        }
    }

    fn close_deadline(&self) -> Instant {
        match self.ctx.as_ref().and_then(DrainContext::shutdown_deadline) {
            Some(d) => d,
            None => Instant::now() + self.close_timeout,
        }
    }
}

impl ClickSink for KafkaSink {
    fn write(&mut self, batch: &[Click]) -> Result<(), SinkError> {
        if batch.is_empty() {
            return Ok(());
        }
        let result = self.write_batch(batch);
        if result.is_err() {
            // The cluster may have come back empty: check the topic before the retry.
            self.check_topic = self.create_topic.is_some();
        }
        result
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        if self.unconfirmed() == 0 {
            return Ok(());
        }
        let left = self
            .close_deadline()
            .saturating_duration_since(Instant::now());
        match self.producer.flush(left) {
            Ok(()) => Ok(()),
            Err(e) => {
                let n = self.unconfirmed();
                if n == 0 {
                    return Ok(());
                }
                let msg = format!(
                    "{n} Kafka messages still unconfirmed after flushing for {left:?} ({e}); \
                     they are copies from failed writes, whose clicks were counted failed or sent again"
                );
                self.inner.set_error(msg.clone());
                Err(SinkError::Transient(self.with_last_error(msg)))
            }
        }
    }

    fn attach(&mut self, ctx: &DrainContext) {
        let want = queue_limit(ctx.max_batch());
        self.ctx = Some(ctx.clone());
        if self.queue_set_by_user || self.unconfirmed() > 0 {
            return;
        }
        let current = self
            .config
            .get("queue.buffering.max.messages")
            .and_then(|v| v.parse::<usize>().ok());
        if current != Some(want) {
            self.config
                .set("queue.buffering.max.messages", want.to_string());
            // On failure the old producer (smaller queue) stays; writes still work.
            let _ = self.rebuild();
        }
    }
}

impl Drop for KafkaSink {
    fn drop(&mut self) {
        if self.unconfirmed() > 0 {
            let left = self
                .close_deadline()
                .saturating_duration_since(Instant::now());
            let _ = self.producer.flush(left);
            let n = self.unconfirmed();
            if n > 0 {
                self.inner.set_error(format!(
                    "{n} Kafka messages unconfirmed when the sink was dropped (purged by librdkafka)"
                ));
            }
            self.count_unconfirmed(&self.producer);
        }
    }
}

fn source_text(e: &KafkaSinkError) -> String {
    match e {
        KafkaSinkError::Client { source, .. } => source.to_string(),
        other => other.to_string(),
    }
}
