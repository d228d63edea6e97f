//! `AmqpSink` against a real RabbitMQ (`LINKGATE_AMQP_URL`, default
//! `amqp://guest:guest@127.0.0.1:5672/%2f`): every click read back from a bound queue, outages
//! made with `rabbitmqctl` (close_all_connections; stop_app / start_app), returns and nacks.
//!
//! ```sh
//! cargo test --features amqp-tests --test amqp_sink
//! ```
//! The outage tests run `rabbitmqctl` (root, or a user in the rabbitmq group) on the broker's
//! machine. The tests of this file run one at a time (they share the broker, and the outage
//! tests close every connection).
#![cfg(feature = "amqp-tests")]

#[path = "support/pipeline.rs"]
mod pipeline;

use std::collections::{HashMap, HashSet};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use futures_util::StreamExt;
use http::HeaderValue;
use lapin::options::{
    BasicConsumeOptions, ExchangeDeclareOptions, ExchangeDeleteOptions, QueueBindOptions,
    QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, Connection, ConnectionProperties, ExchangeKind};
use linkgate::{
    AmqpSink, Click, ClickId, ClickRecorder, ClickSink, FullPolicy, Recorded, RetryPolicy,
    SinkError, Stats,
};

/// Failure guard only: every wait below ends on an event long before this.
const GUARD: Duration = Duration::from_secs(120);

static SERIAL: Mutex<()> = Mutex::new(());

fn url() -> String {
    std::env::var("LINKGATE_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

fn unique(name: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("linkgate-test.{name}.{}.{nanos}", std::process::id())
}

fn click(i: usize) -> Click {
    let mut c = Click::new(
        linkgate::system_now_ms(),
        ClickId::generate(),
        format!("/go/{}", i % 97),
        HeaderValue::from_static("https://store.example/p/1?ref=aff"),
        302,
    );
    c.user_agent = Some(HeaderValue::from_static("Mozilla/5.0 (X11; Linux x86_64)"));
    c
}

fn id_of(c: &Click) -> String {
    String::from_utf8(c.click_id.encode().to_vec()).unwrap()
}

/// A test-side connection on its own runtime; deletes the test's exchange and queues on drop.
struct Broker {
    rt: tokio::runtime::Runtime,
    conn: Connection,
    ch: Channel,
    exchanges: Vec<String>,
    queues: Vec<String>,
}

impl Broker {
    fn connect() -> Broker {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let (conn, ch) = rt.block_on(async {
            let conn = Connection::connect(&url(), ConnectionProperties::default())
                .await
                .expect("RabbitMQ reachable at LINKGATE_AMQP_URL");
            let ch = conn.create_channel().await.unwrap();
            (conn, ch)
        });
        Broker {
            rt,
            conn,
            ch,
            exchanges: Vec::new(),
            queues: Vec::new(),
        }
    }

    fn exchange(&mut self, name: &str) {
        let opts = ExchangeDeclareOptions {
            durable: true,
            ..Default::default()
        };
        self.rt
            .block_on(self.ch.exchange_declare(
                name.into(),
                ExchangeKind::Direct,
                opts,
                FieldTable::default(),
            ))
            .unwrap();
        self.exchanges.push(name.into());
    }

    /// Declares a durable queue bound to `exchange` with `key`.
    fn queue(&mut self, name: &str, exchange: &str, key: &str, args: FieldTable) {
        let opts = QueueDeclareOptions {
            durable: true,
            ..Default::default()
        };
        self.rt.block_on(async {
            self.ch
                .queue_declare(name.into(), opts, args)
                .await
                .unwrap();
            self.ch
                .queue_bind(
                    name.into(),
                    exchange.into(),
                    key.into(),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await
                .unwrap();
        });
        self.queues.push(name.into());
    }

    /// Takes every message in `queue`: click id (from `message_id`, checked against the body)
    /// → how many times it was there.
    fn consume_all(&mut self, queue: &str) -> HashMap<String, usize> {
        self.consume_all_mode(queue, 2)
    }

    /// `consume_all`, expecting `delivery_mode` `mode` (2 persistent, 1 transient).
    fn consume_all_mode(&mut self, queue: &str, mode: u8) -> HashMap<String, usize> {
        self.queues.push(queue.into());
        self.rt.block_on(async {
            let opts = QueueDeclareOptions {
                passive: true,
                ..Default::default()
            };
            let n = self
                .ch
                .queue_declare(queue.into(), opts, FieldTable::default())
                .await
                .unwrap()
                .message_count() as usize;
            let mut consumer = self
                .ch
                .basic_consume(
                    queue.into(),
                    "linkgate-test".into(),
                    BasicConsumeOptions {
                        no_ack: true,
                        ..Default::default()
                    },
                    FieldTable::default(),
                )
                .await
                .unwrap();
            let mut got = HashMap::new();
            for _ in 0..n {
                let d = tokio::time::timeout(GUARD, consumer.next())
                    .await
                    .expect("a message within the guard")
                    .expect("consumer open")
                    .expect("delivery");
                let p = &d.properties;
                assert_eq!(
                    p.content_type().as_ref().unwrap().as_str(),
                    "application/json"
                );
                assert_eq!(*p.delivery_mode(), Some(mode), "delivery_mode");
                let id = p.message_id().as_ref().unwrap().to_string();
                let body: serde_json::Value = serde_json::from_slice(&d.data).unwrap();
                assert_eq!(body["click_id"].as_str().unwrap(), id);
                *got.entry(id).or_insert(0) += 1;
            }
            got
        })
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.rt.block_on(async {
            let ch = match self.ch.status().connected() {
                true => self.ch.clone(),
                false => self.conn.create_channel().await?,
            };
            for q in &self.queues {
                let _ = ch
                    .queue_delete(q.as_str().into(), QueueDeleteOptions::default())
                    .await;
            }
            for e in &self.exchanges {
                let _ = ch
                    .exchange_delete(e.as_str().into(), ExchangeDeleteOptions::default())
                    .await;
            }
            self.conn.close(200, "bye".into()).await
        });
    }
}

/// Records `n` clicks (waiting for room rather than dropping), calling `mid` once after
/// `n / 2`; returns the recorded ids and the final stats, with the invariant checked. If `mid`
/// hands back a thread (an outage happening in the background), recording goes on, paced,
/// until that thread has finished, and then for [`AFTER`] more clicks: so the outage always
/// lands while clicks are flowing, and the sink has to write after it.
fn run(
    sink: AmqpSink,
    n: usize,
    retry: RetryPolicy,
    mid: impl FnOnce(&linkgate::DrainGuard) -> Option<std::thread::JoinHandle<()>>,
) -> (HashSet<String>, Stats) {
    let (recorder, guard) = ClickRecorder::builder(sink)
        .max_batch(1024)
        .capacity(16_384)
        .full_policy(FullPolicy::Block { timeout: GUARD })
        .retry(retry)
        .spawn()
        .unwrap();
    let mut ids = HashSet::with_capacity(n);
    let mut mid = Some(mid);
    let mut outage = None;
    let mut record = |i: usize| {
        let c = click(i);
        ids.insert(id_of(&c));
        assert_eq!(recorder.record(c), Recorded::Queued);
    };
    for i in 0..n {
        if i == n / 2 {
            outage = (mid.take().unwrap())(&guard);
        }
        record(i);
    }
    if let Some(outage) = outage {
        let mut i = n;
        while !outage.is_finished() {
            record(i);
            i += 1;
            std::thread::sleep(Duration::from_micros(50));
        }
        outage.join().expect("the outage thread");
        for _ in 0..AFTER {
            record(i);
            i += 1;
        }
    }
    let stats = guard.shutdown(GUARD);
    assert!(pipeline::reconciles(&stats), "{stats:?}");
    (ids, stats)
}

/// Clicks [`run`] records after a background outage has finished.
const AFTER: usize = 4_096;

fn sink(exchange: &str, queue: &str) -> AmqpSink {
    AmqpSink::new(url())
        .unwrap()
        .exchange(exchange)
        .declare_exchange("direct")
        .routing_key("click")
        .bind_queue(queue)
        .confirm_timeout(Duration::from_secs(10))
        .reconnect_backoff(Duration::from_millis(50), Duration::from_millis(500))
}

fn patient() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 400,
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(250),
    }
}

#[test]
fn hundred_thousand_clicks_reach_a_bound_queue() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let (ex, q) = (unique("ex"), unique("q"));
    let mut broker = Broker::connect();
    broker.exchanges.push(ex.clone());
    // The sink declares the exchange, the queue and the binding itself.
    let (ids, stats) = run(sink(&ex, &q), 100_000, RetryPolicy::default(), |_| None);
    assert_eq!(
        (stats.recorded, stats.delivered, stats.dropped, stats.failed),
        (100_000, 100_000, 0, 0),
        "{stats:?}"
    );
    let got = broker.consume_all(&q);
    let duplicates: usize = got.values().map(|c| c - 1).sum();
    eprintln!("retries {}, duplicates {duplicates}", stats.retries);
    if stats.retries == 0 {
        assert_eq!(duplicates, 0);
    }
    assert_eq!(got.into_keys().collect::<HashSet<_>>(), ids);
}

fn rabbitmqctl(args: &[&str]) {
    let out = Command::new("rabbitmqctl")
        .args(args)
        .output()
        .expect("rabbitmqctl runs");
    assert!(
        out.status.success(),
        "rabbitmqctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Waits (bounded) until the drain has delivered something, so the outage hits mid-stream.
fn wait_delivering(guard: &linkgate::DrainGuard) {
    let until = Instant::now() + GUARD;
    while guard.stats().delivered == 0 {
        assert!(
            Instant::now() < until,
            "nothing delivered: {:?}",
            guard.stats()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn outage_test(
    name: &str,
    outage: impl FnOnce(&linkgate::DrainGuard) -> Option<std::thread::JoinHandle<()>>,
    min_retries: u64,
) {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let (ex, q) = (unique(name), unique(name));
    let mut broker = Broker::connect();
    broker.exchange(&ex);
    broker.queue(&q, &ex, "click", FieldTable::default());
    drop(broker);
    let (ids, stats) = run(sink(&ex, &q), 60_000, patient(), outage);
    assert_eq!((stats.dropped, stats.failed), (0, 0), "{stats:?}");
    assert!(
        stats.retries >= min_retries,
        "the outage cost at least {min_retries} retries: {stats:?}"
    );
    let mut broker = Broker::connect();
    broker.exchanges.push(ex.clone());
    let got = broker.consume_all(&q);
    let duplicates: usize = got.values().map(|c| c - 1).sum();
    eprintln!(
        "{name}: recorded {}, delivered {}, retries {}, in queue {} ({} distinct, {duplicates} duplicates)",
        stats.recorded,
        stats.delivered,
        stats.retries,
        got.values().sum::<usize>(),
        got.len()
    );
    // Nothing was dropped or failed: every recorded click is in the queue, nothing else is.
    assert_eq!(got.into_keys().collect::<HashSet<_>>(), ids);
}

#[test]
fn connections_closed_mid_stream_lose_nothing() {
    // The close lands while clicks flow (`run` goes on recording until it has). The sink
    // may notice it in the middle of a batch (a retry) or before the next one (it reconnects
    // first, no retry): either way nothing may be lost, and the close must have hit the sink.
    outage_test(
        "closed",
        |guard| {
            wait_delivering(guard);
            Some(std::thread::spawn(|| {
                let out = Command::new("rabbitmqctl")
                    .args(["close_all_connections", "test"])
                    .output()
                    .expect("rabbitmqctl runs");
                let said = String::from_utf8_lossy(&out.stdout);
                assert!(
                    out.status.success() && !said.contains("Closed 0 connections"),
                    "close_all_connections closed the sink's connection: {said}"
                );
            }))
        },
        0,
    );
}

/// Starts the broker app again even if the test fails while it is stopped.
struct Restart;
impl Drop for Restart {
    fn drop(&mut self) {
        let _ = Command::new("rabbitmqctl").arg("start_app").output();
    }
}

#[test]
fn broker_stopped_for_seconds_mid_stream_loses_nothing() {
    outage_test(
        "stopped",
        |guard| {
            wait_delivering(guard);
            let restart = Restart;
            rabbitmqctl(&["stop_app"]);
            // The recording goes on while the broker is away; it comes back in the background.
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_secs(3));
                rabbitmqctl(&["start_app"]);
                rabbitmqctl(&["await_startup"]);
                drop(restart);
            });
            None
        },
        1,
    );
}

#[test]
fn returned_message_fails_the_batch_and_names_the_return() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let ex = unique("noroute");
    let mut broker = Broker::connect();
    broker.exchange(&ex); // no queue bound
    let mut sink = AmqpSink::new(url())
        .unwrap()
        .exchange(&ex)
        .routing_key("nowhere");
    let batch: Vec<Click> = (0..10).map(click).collect();
    let err = sink.write(&batch).unwrap_err();
    assert!(matches!(err, SinkError::Transient(_)), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("returned by the broker") && msg.contains("312 NO_ROUTE"),
        "{msg}"
    );
    assert!(msg.contains(&ex) && msg.contains("nowhere"), "{msg}");
    // Through a pipeline: retried, then counted failed with the reason.
    let (_, stats) = run(
        sink,
        50,
        RetryPolicy {
            max_attempts: 2,
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(1),
        },
        |_| None,
    );
    assert_eq!((stats.delivered, stats.failed), (0, 50), "{stats:?}");
    assert!(stats.last_error.unwrap().contains("312 NO_ROUTE"));
    // Without `mandatory` the broker drops unroutable messages and acks them: "delivered".
    let mut lax = AmqpSink::new(url())
        .unwrap()
        .exchange(&ex)
        .routing_key("nowhere")
        .mandatory(false);
    lax.write(&batch).unwrap();
}

#[test]
fn nacked_messages_fail_the_batch() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let (ex, q) = (unique("nack"), unique("nack"));
    let mut broker = Broker::connect();
    broker.exchange(&ex);
    // A queue that holds one message and rejects further publishes: the broker nacks them.
    let mut args = FieldTable::default();
    args.insert("x-max-length".into(), AMQPValue::LongInt(1));
    args.insert(
        "x-overflow".into(),
        AMQPValue::LongString("reject-publish".into()),
    );
    broker.queue(&q, &ex, "click", args);
    let mut sink = AmqpSink::new(url())
        .unwrap()
        .exchange(&ex)
        .routing_key("click");
    let batch: Vec<Click> = (0..10).map(click).collect();
    let err = sink.write(&batch).unwrap_err();
    assert!(matches!(err, SinkError::Transient(_)), "{err}");
    assert!(
        err.to_string().contains("broker nacked 9 of 10 message(s)"),
        "{err}"
    );
    // The channel survives a nack: the next batch goes through once there is room.
    let got = broker.consume_all(&q);
    assert_eq!(got.len(), 1);
    sink.write(&batch[..1]).unwrap();
}

#[test]
fn transient_messages_when_asked() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let (ex, q) = (unique("transient"), unique("transient"));
    let mut broker = Broker::connect();
    broker.exchanges.push(ex.clone());
    let mut sink = sink(&ex, &q).persistent(false);
    let batch: Vec<Click> = (0..10).map(click).collect();
    sink.write(&batch).unwrap();
    let got = broker.consume_all_mode(&q, 1);
    assert_eq!(
        got.into_keys().collect::<HashSet<_>>(),
        batch.iter().map(id_of).collect()
    );
}
