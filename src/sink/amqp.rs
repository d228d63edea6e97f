//! `AmqpSink`: clicks published to RabbitMQ (AMQP 0-9-1) with publisher confirms.

use std::time::{Duration, Instant};

use lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions,
    QueueDeclareOptions,
};
use lapin::types::{FieldTable, ShortString};
use lapin::{
    BasicProperties, Channel, Confirmation, Connection, ConnectionProperties, ExchangeKind,
};

use super::redact::{redact_text, redact_url};
use super::{ClickSink, SinkError};
use crate::click::Click;

/// Publishes each click as one persistent JSON message to a RabbitMQ exchange, with publisher
/// confirms.
///
/// # The messages
/// One message per click: body = [`Click::write_json`], `content_type: application/json`,
/// `delivery_mode: 2` (persistent; see [`persistent`](AmqpSink::persistent)), `message_id` = the click id, `timestamp` = the click's time
/// in Unix seconds; published to [`exchange`](AmqpSink::exchange) (default `""`, the default
/// exchange) with [`routing_key`](AmqpSink::routing_key) (default `clicks`), `mandatory` set
/// unless turned off.
///
/// # Delivery semantics
/// **At-least-once.** A batch counts delivered only when the broker has confirmed (`basic.ack`)
/// every message of it — for a persistent message routed to a durable queue RabbitMQ confirms
/// once the message is written to disk. Anything else makes the whole batch a
/// [`SinkError::Transient`], so the drain publishes it again:
/// - a `basic.nack` for any message;
/// - a returned message (`mandatory` and no queue bound to take it: the error names the exchange,
///   routing key and reply, e.g. `312 NO_ROUTE`);
/// - a channel or connection error, or no confirm within [`confirm_timeout`](AmqpSink::confirm_timeout).
///
/// Messages of a failed batch that did reach a queue are published again: consumers see
/// duplicates and dedupe by `message_id` / `click_id`. Within one connection messages reach a
/// queue in batch order; a retried batch comes before any later one.
///
/// # Threads and blocking
/// lapin is asynchronous; the drain thread is not. The sink owns a **tokio runtime with one
/// worker thread** (`linkgate-amqp`), created at the first batch, and `block_on`s each batch on
/// it: all messages of the batch are published first (pipelined: their frames are queued in
/// order, no round trip between them), then all confirms are awaited. A multi-threaded runtime
/// with one worker rather than a current-thread one because lapin's I/O thread (`lapin-io-loop`)
/// and its heartbeats need the runtime's reactor to keep running while the drain thread parks
/// between batches. The request path never touches any of this.
///
/// # Connection
/// - **Lazy**: nothing is connected before the first batch.
/// - On connect it opens one channel, turns on confirms (`confirm.select`) and, if asked,
///   declares the exchange ([`declare_exchange`](AmqpSink::declare_exchange), durable) and a
///   durable queue bound with the routing key ([`bind_queue`](AmqpSink::bind_queue)).
/// - **Reconnect with backoff**: after a connection or channel error the connection is dropped and
///   the next batch reconnects. After a *failed* connect the sink does not dial again for
///   [`reconnect_backoff`](AmqpSink::reconnect_backoff) (100 ms doubling to 5 s by default,
///   reset by a success); a batch arriving earlier fails at once with `Transient` without
///   touching the network. How long a batch keeps trying overall is the drain's
///   [`RetryPolicy`](crate::RetryPolicy): size it for the broker outages to ride out.
/// - **Timeouts**: connecting (with channel setup and declarations) is bounded by
///   [`connect_timeout`](AmqpSink::connect_timeout) (5 s), a batch's publish-and-confirm by
///   [`confirm_timeout`](AmqpSink::confirm_timeout) (30 s): a dead broker cannot hang the drain.
/// - The password in the URL never appears in `Debug` output or errors.
///
/// ```no_run
/// use std::time::Duration;
/// use linkgate::{AmqpSink, ClickRecorder, RetryPolicy};
/// let sink = AmqpSink::new("amqp://guest:guest@127.0.0.1:5672/%2f")?
///     .exchange("clicks")
///     .declare_exchange("direct")
///     .routing_key("click")
///     .bind_queue("clicks.analytics");
/// let (recorder, guard) = ClickRecorder::builder(sink)
///     .max_batch(1024)
///     .retry(RetryPolicy { max_attempts: 30, initial_backoff: Duration::from_millis(100), max_backoff: Duration::from_secs(2) })
///     .spawn()?;
/// // ... recorder.record(click) on each redirect ...
/// let stats = guard.shutdown(Duration::from_secs(30));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct AmqpSink {
    url: String,
    exchange: String,
    routing_key: String,
    declare_exchange: Option<String>,
    bind_queue: Option<String>,
    mandatory: bool,
    persistent: bool,
    connection_name: String,
    connect_timeout: Duration,
    confirm_timeout: Duration,
    backoff: (Duration, Duration),
    runtime: Option<tokio::runtime::Runtime>,
    live: Option<Live>,
    /// After a failed connect: no new attempt before this instant; the current delay; the error.
    next_connect: Option<(Instant, Duration, String)>,
    buf: Vec<u8>,
    ends: Vec<usize>,
}

struct Live {
    connection: Connection,
    channel: Channel,
}

/// Why an [`AmqpSink`] could not be configured.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AmqpConfigError {
    /// The URL is not an `amqp://` / `amqps://` URL lapin understands.
    #[error("AMQP URL {url:?} is invalid: {reason}")]
    BadUrl {
        /// The URL, password redacted.
        url: String,
        /// What the parser said.
        reason: String,
    },
}

impl std::fmt::Debug for AmqpSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AmqpSink")
            .field("url", &redact_url(&self.url))
            .field("exchange", &self.exchange)
            .field("routing_key", &self.routing_key)
            .field("declare_exchange", &self.declare_exchange)
            .field("bind_queue", &self.bind_queue)
            .field("mandatory", &self.mandatory)
            .field("persistent", &self.persistent)
            .field("connect_timeout", &self.connect_timeout)
            .field("confirm_timeout", &self.confirm_timeout)
            .field("connected", &self.live.is_some())
            .finish()
    }
}

impl AmqpSink {
    /// A sink for the broker at `url` (e.g. `amqp://guest:guest@127.0.0.1:5672/%2f`; the vhost is
    /// percent-encoded, `?heartbeat=10` and the other lapin URI options work). Nothing connects
    /// until the first batch.
    pub fn new(url: impl Into<String>) -> Result<Self, AmqpConfigError> {
        let url = url.into();
        if let Err(reason) = url.parse::<lapin::uri::AMQPUri>() {
            return Err(AmqpConfigError::BadUrl {
                url: redact_url(&url),
                reason: redact_text(&reason, &url),
            });
        }
        Ok(AmqpSink {
            url,
            exchange: String::new(),
            routing_key: "clicks".into(),
            declare_exchange: None,
            bind_queue: None,
            mandatory: true,
            persistent: true,
            connection_name: "linkgate".into(),
            connect_timeout: Duration::from_secs(5),
            confirm_timeout: Duration::from_secs(30),
            backoff: (Duration::from_millis(100), Duration::from_secs(5)),
            runtime: None,
            live: None,
            next_connect: None,
            buf: Vec::new(),
            ends: Vec::new(),
        })
    }

    /// The exchange to publish to (default `""`: the default exchange, which routes to the queue
    /// named by the routing key).
    pub fn exchange(mut self, name: impl Into<String>) -> Self {
        self.exchange = name.into();
        self
    }

    /// The routing key of every message (default `clicks`).
    pub fn routing_key(mut self, key: impl Into<String>) -> Self {
        self.routing_key = key.into();
        self
    }

    /// Declares the exchange (durable) with this type (`direct`, `topic`, `fanout`, `headers`
    /// or a plugin's type) on each connect. Ignored for the default exchange `""`.
    pub fn declare_exchange(mut self, kind: impl Into<String>) -> Self {
        self.declare_exchange = Some(kind.into());
        self
    }

    /// Declares a durable queue and binds it to the exchange with the routing key on each
    /// connect (for the default exchange only the queue is declared).
    pub fn bind_queue(mut self, queue: impl Into<String>) -> Self {
        self.bind_queue = Some(queue.into());
        self
    }

    /// Publish with the `mandatory` flag (default on): a message no queue takes is returned and
    /// its batch retried, instead of being dropped silently by the broker.
    pub fn mandatory(mut self, on: bool) -> Self {
        self.mandatory = on;
        self
    }

    /// Publish persistent messages (`delivery_mode: 2`, the default) or transient ones
    /// (`delivery_mode: 1`).
    ///
    /// **Trade-off**: RabbitMQ confirms a persistent message routed to a durable queue only once
    /// it is on disk, so it survives a broker restart; a transient one is confirmed once it is in
    /// the queue's memory and is lost if the broker stops before a consumer takes it. On the
    /// shared 2-core bench machine transient messages went 1.6–2× faster (BENCHMARKS.md, "Click
    /// sinks: RabbitMQ and webhooks").
    pub fn persistent(mut self, on: bool) -> Self {
        self.persistent = on;
        self
    }

    /// The connection name shown by `rabbitmqctl list_connections client_properties` and the
    /// management UI (default `linkgate`).
    pub fn connection_name(mut self, name: impl Into<String>) -> Self {
        self.connection_name = name.into();
        self
    }

    /// Longest a connect (with channel setup and declarations) may take (default 5 s).
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.connect_timeout = d;
        self
    }

    /// Longest a batch's publish and confirms may take (default 30 s).
    pub fn confirm_timeout(mut self, d: Duration) -> Self {
        self.confirm_timeout = d;
        self
    }

    /// Wait after a failed connect before dialing again: `initial`, doubling up to `max`
    /// (default 100 ms to 5 s).
    pub fn reconnect_backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.backoff = (initial, max.max(initial));
        self
    }

    fn err(&self, e: impl std::fmt::Display) -> SinkError {
        SinkError::Transient(format!(
            "AMQP {}: {}",
            redact_url(&self.url),
            redact_text(&e.to_string(), &self.url)
        ))
    }

    /// Connects if not connected (or if the connection or channel was closed).
    fn ensure_connected(&mut self) -> Result<(), SinkError> {
        if let Some(live) = &self.live {
            if live.connection.status().connected() && live.channel.status().connected() {
                return Ok(());
            }
            self.drop_connection();
        }
        if let Some((at, _, why)) = &self.next_connect {
            let now = Instant::now();
            if now < *at {
                return Err(SinkError::Transient(format!(
                    "AMQP {}: not reconnecting for another {} ms after: {why}",
                    redact_url(&self.url),
                    (*at - now).as_millis()
                )));
            }
        }
        if self.runtime.is_none() {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("linkgate-amqp")
                .enable_all()
                .build()?;
            self.runtime = Some(rt);
        }
        let rt = self.runtime.as_ref().expect("created above");
        let result = rt.block_on(async {
            tokio::time::timeout(self.connect_timeout, self.connect())
                .await
                .unwrap_or_else(|_| {
                    Err(format!(
                        "connect timed out after {:?}",
                        self.connect_timeout
                    ))
                })
        });
        match result {
            Ok(live) => {
                self.live = Some(live);
                self.next_connect = None;
                Ok(())
            }
            Err(why) => {
                let why = redact_text(&why, &self.url);
                let delay = match &self.next_connect {
                    Some((_, d, _)) => (*d * 2).min(self.backoff.1),
                    None => self.backoff.0,
                };
                self.next_connect = Some((Instant::now() + delay, delay, why.clone()));
                Err(SinkError::Transient(format!(
                    "AMQP {}: {why}",
                    redact_url(&self.url)
                )))
            }
        }
    }

    async fn connect(&self) -> Result<Live, String> {
        let props = ConnectionProperties::default()
            .with_connection_name(self.connection_name.as_str().into());
        let connection = Connection::connect(&self.url, props)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let channel = connection
            .create_channel()
            .await
            .map_err(|e| format!("open channel: {e}"))?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(|e| format!("confirm.select: {e}"))?;
        if let (Some(kind), false) = (&self.declare_exchange, self.exchange.is_empty()) {
            let kind = match kind.as_str() {
                "direct" => ExchangeKind::Direct,
                "fanout" => ExchangeKind::Fanout,
                "topic" => ExchangeKind::Topic,
                "headers" => ExchangeKind::Headers,
                other => ExchangeKind::Custom(other.to_string()),
            };
            let opts = ExchangeDeclareOptions {
                durable: true,
                ..Default::default()
            };
            channel
                .exchange_declare(
                    self.exchange.as_str().into(),
                    kind,
                    opts,
                    FieldTable::default(),
                )
                .await
                .map_err(|e| format!("declare exchange {:?}: {e}", self.exchange))?;
        }
        if let Some(queue) = &self.bind_queue {
            let opts = QueueDeclareOptions {
                durable: true,
                ..Default::default()
            };
            channel
                .queue_declare(queue.as_str().into(), opts, FieldTable::default())
                .await
                .map_err(|e| format!("declare queue {queue:?}: {e}"))?;
            if !self.exchange.is_empty() {
                channel
                    .queue_bind(
                        queue.as_str().into(),
                        self.exchange.as_str().into(),
                        self.routing_key.as_str().into(),
                        QueueBindOptions::default(),
                        FieldTable::default(),
                    )
                    .await
                    .map_err(|e| format!("bind queue {queue:?}: {e}"))?;
            }
        }
        Ok(Live {
            connection,
            channel,
        })
    }

    /// Forgets the connection; closing it (politely, bounded) happens on the runtime.
    fn drop_connection(&mut self) {
        if let (Some(live), Some(rt)) = (self.live.take(), &self.runtime) {
            rt.spawn(async move {
                let close = live.connection.close(200, "linkgate: reconnecting".into());
                let _ = tokio::time::timeout(Duration::from_secs(1), close).await;
            });
        }
    }
}

/// Publishes every message, then awaits every confirm.
/// `sink.buf` holds the batch's JSON bodies, `sink.ends` where each ends.
async fn publish_batch(
    sink: &AmqpSink,
    channel: &Channel,
    batch: &[Click],
) -> Result<(), BatchError> {
    let (buf, ends, persistent) = (&sink.buf, &sink.ends, sink.persistent);
    let opts = BasicPublishOptions {
        mandatory: sink.mandatory,
        immediate: false,
    };
    let exchange = ShortString::from(sink.exchange.as_str());
    let routing_key = ShortString::from(sink.routing_key.as_str());
    let mut start = 0;
    let publishes = batch.iter().zip(ends).map(|(click, &end)| {
        let body = &buf[start..end];
        start = end;
        let id = click.click_id.encode();
        let props = BasicProperties::default()
            .with_content_type("application/json".into())
            .with_delivery_mode(if persistent { 2 } else { 1 })
            .with_message_id(std::str::from_utf8(&id).unwrap_or_default().into())
            .with_timestamp(click.ts.div_euclid(1000).max(0) as u64);
        channel.basic_publish(exchange.clone(), routing_key.clone(), opts, body, props)
    });
    // `join_all` polls the publishes in order: each queues its frames (and takes its delivery
    // tag) on the first poll, so the batch goes out pipelined and in order.
    let confirms = futures_util::future::join_all(publishes).await;
    let (mut nacked, mut returned) = (0usize, None);
    for confirm in confirms {
        let confirm = confirm.map_err(|e| BatchError::Channel(format!("publish: {e}")))?;
        match confirm
            .await
            .map_err(|e| BatchError::Channel(format!("awaiting confirm: {e}")))?
        {
            Confirmation::Ack(None) => {}
            Confirmation::Ack(Some(msg)) | Confirmation::Nack(Some(msg)) => {
                returned.get_or_insert_with(|| {
                    format!(
                        "message {} returned by the broker: {} {} (exchange {:?}, routing key {:?})",
                        msg.delivery
                            .properties
                            .message_id()
                            .as_ref()
                            .map_or("?", |s| s.as_str()),
                        msg.reply_code,
                        msg.reply_text.as_str(),
                        msg.delivery.exchange.as_str(),
                        msg.delivery.routing_key.as_str(),
                    )
                });
            }
            Confirmation::Nack(None) => nacked += 1,
            Confirmation::NotRequested => {
                return Err(BatchError::Channel(
                    "the channel is not in confirm mode".into(),
                ));
            }
        }
    }
    match (returned, nacked) {
        (None, 0) => Ok(()),
        (Some(r), 0) => Err(BatchError::Broker(format!("{r}; batch not delivered"))),
        (Some(r), n) => Err(BatchError::Broker(format!(
            "{r}; {n} message(s) nacked; batch not delivered"
        ))),
        (None, n) => Err(BatchError::Broker(format!(
            "broker nacked {n} of {} message(s); batch not delivered",
            batch.len()
        ))),
    }
}

enum BatchError {
    /// The broker answered (nack, return): the channel is fine.
    Broker(String),
    /// The channel or connection failed: reconnect.
    Channel(String),
}

impl ClickSink for AmqpSink {
    fn write(&mut self, batch: &[Click]) -> Result<(), SinkError> {
        self.ensure_connected()?;
        self.buf.clear();
        self.ends.clear();
        for click in batch {
            click.write_json(&mut self.buf);
            self.ends.push(self.buf.len());
        }
        let (Some(rt), Some(live)) = (&self.runtime, &self.live) else {
            return Err(SinkError::Transient("AMQP: not connected".into()));
        };
        let publish = publish_batch(self, &live.channel, batch);
        let timeout = self.confirm_timeout;
        match rt.block_on(async { tokio::time::timeout(timeout, publish).await }) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(BatchError::Broker(why))) => Err(self.err(why)),
            Ok(Err(BatchError::Channel(why))) => {
                self.drop_connection();
                Err(self.err(why))
            }
            Err(_) => {
                self.drop_connection();
                Err(self.err(format!(
                    "no confirms for a batch of {} within {timeout:?}",
                    batch.len()
                )))
            }
        }
    }
}

impl Drop for AmqpSink {
    fn drop(&mut self) {
        if let (Some(live), Some(rt)) = (self.live.take(), &self.runtime) {
            let close = async move {
                let close = live.connection.close(200, "linkgate: shutting down".into());
                tokio::time::timeout(Duration::from_secs(2), close).await
            };
            // Dropped inside some async runtime (not on the drain thread): `block_on` would
            // panic there, so close in the background of our own runtime instead.
            if tokio::runtime::Handle::try_current().is_err() {
                let _ = rt.block_on(close);
            } else {
                rt.spawn(close);
            }
        }
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config() {
        let bad = AmqpSink::new("http://u:pw@h/").unwrap_err();
        assert!(!bad.to_string().contains("pw"), "{bad}");
        let sink = AmqpSink::new("amqp://guest:s3cr3t@127.0.0.1:5672/%2f")
            .unwrap()
            .exchange("x")
            .routing_key("k");
        let dbg = format!("{sink:?}");
        assert!(
            !dbg.contains("s3cr3t") && dbg.contains("guest:***@"),
            "{dbg}"
        );
    }

    #[test]
    fn unreachable_broker_is_transient_and_backs_off() {
        // A port nothing listens on: bind one, then free it.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut sink = AmqpSink::new(format!("amqp://guest:s3cr3t@127.0.0.1:{port}/%2f"))
            .unwrap()
            .reconnect_backoff(Duration::from_secs(60), Duration::from_secs(60));
        let click = Click::new(
            0,
            crate::ClickId::from(1),
            "/k",
            http::HeaderValue::from_static("/t"),
            302,
        );
        let first = sink.write(std::slice::from_ref(&click)).unwrap_err();
        assert!(matches!(first, SinkError::Transient(_)), "{first}");
        assert!(!first.to_string().contains("s3cr3t"), "{first}");
        // Within the backoff the sink does not dial again and says why.
        let second = sink.write(std::slice::from_ref(&click)).unwrap_err();
        assert!(
            second.to_string().contains("not reconnecting for another"),
            "{second}"
        );
    }
}
