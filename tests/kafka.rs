//! `KafkaSink` against a real Kafka-protocol broker: tansu (in-memory engine), one per test on
//! a free port. `LINKGATE_KAFKA_BROKERS` points the 100 000-click test at another cluster; the
//! others stop/replace their broker or rely on tansu not auto-creating topics, so they always
//! spawn tansu (`LINKGATE_TANSU`, else `tansu` on `PATH`, else `~/.cargo/bin/tansu`).
//!
//! Run: `cargo test --features kafka-tests --test kafka` (`.ci/run` installs tansu).
#![cfg(feature = "kafka-tests")]

#[path = "support/pipeline.rs"]
mod pipeline;
#[path = "support/tansu.rs"]
mod tansu;

use std::collections::HashSet;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use http::HeaderValue;
use linkgate::{
    Click, ClickId, ClickRecorder, ClickSink, FullPolicy, KafkaSink, KafkaSinkError, RetryPolicy,
    SinkError, Stats,
};
use rdkafka::ClientConfig;
use rdkafka::Message;
use rdkafka::TopicPartitionList;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Headers;
use rdkafka::topic_partition_list::Offset;
use tansu::Tansu;

const PARTITIONS: i32 = 3;

/// A topic name no other test (or earlier run against an external cluster) uses.
fn topic(name: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "linkgate-{name}-{}-{}-{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn click(i: u64) -> Click {
    let key = format!("/go/link-{}", i % 97);
    let mut c = Click::new(
        1_764_378_123_456 + i as i64,
        ClickId::generate(),
        key,
        HeaderValue::from_static("https://store.example/p/123?ref=aff_01"),
        302,
    );
    c.user_agent = Some(HeaderValue::from_static(
        "Mozilla/5.0 (X11; Linux x86_64) linkgate-test",
    ));
    c
}

/// What a consumer read back from a topic.
struct ReadBack {
    /// Distinct click ids (from the `click_id` header).
    ids: HashSet<String>,
    /// Messages read (duplicates included).
    messages: usize,
}

/// Reads the topic from the beginning of every partition until every id in `want` was seen
/// (or 120 s pass), checking on each message that key, header and JSON agree.
fn read_back(brokers: &str, topic: &str, want: &HashSet<String>) -> ReadBack {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("{topic}-reader"))
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("consumer");
    let meta = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("metadata");
    let partitions = meta.topics()[0].partitions().len();
    assert!(partitions > 0, "topic {topic} has no partitions");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions as i32 {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&tpl).expect("assign");
    let mut got = ReadBack {
        ids: HashSet::new(),
        messages: 0,
    };
    let until = Instant::now() + Duration::from_secs(120);
    while !want.is_subset(&got.ids) && Instant::now() < until {
        let Some(msg) = consumer.poll(Duration::from_millis(500)) else {
            continue;
        };
        let msg = msg.expect("consumer error");
        let headers = msg.headers().expect("headers");
        let header = headers
            .iter()
            .find(|h| h.key == "click_id")
            .and_then(|h| h.value)
            .expect("click_id header");
        let id = std::str::from_utf8(header).unwrap().to_string();
        let json: serde_json::Value = serde_json::from_slice(msg.payload().unwrap()).unwrap();
        assert_eq!(
            json["click_id"],
            id.as_str(),
            "header and JSON click_id differ"
        );
        assert_eq!(
            json["key"].as_str().unwrap().as_bytes(),
            msg.key().unwrap(),
            "message key is the link key"
        );
        got.messages += 1;
        got.ids.insert(id);
    }
    got
}

fn assert_reconciles(s: &Stats) {
    assert_eq!(
        s.recorded,
        s.delivered + s.dropped + s.failed,
        "accounting: {s:?}"
    );
    assert_eq!(s.in_flight, 0, "{s:?}");
}

/// Waits (bounded) until `cond` holds on the pipeline's stats; returns them.
fn wait_stats(rec: &ClickRecorder, what: &str, cond: impl Fn(&Stats) -> bool) -> Stats {
    pipeline::wait_for(|| rec.stats(), what, Duration::from_secs(180), cond)
}

#[test]
fn hundred_thousand_clicks_arrive_complete() {
    let local = tansu::external_brokers().is_none().then(Tansu::start);
    let brokers = tansu::external_brokers().unwrap_or_else(|| local.as_ref().unwrap().brokers());
    let topic = topic("bulk");
    let sink = KafkaSink::builder(&brokers, &topic)
        .create_topic(PARTITIONS, 1)
        .build()
        .unwrap();
    let kafka = sink.stats();
    let (rec, guard) = ClickRecorder::builder(sink)
        .max_batch(1024)
        .capacity(1 << 17)
        .spawn()
        .unwrap();
    let mut ids = HashSet::new();
    for i in 0..100_000 {
        let c = click(i);
        ids.insert(c.click_id.to_string());
        rec.record(c);
    }
    let s = guard.shutdown(Duration::from_secs(120));
    assert_reconciles(&s);
    assert_eq!((s.recorded, s.dropped, s.failed), (100_000, 0, 0), "{s:?}");
    assert_eq!(s.delivered, 100_000);
    assert!(
        kafka.delivered() >= 100_000,
        "acks counted: {}",
        kafka.delivered()
    );
    assert_eq!(kafka.unconfirmed_at_close(), 0);
    assert_eq!(kafka.topic_creates(), 1);

    let got = read_back(&brokers, &topic, &ids);
    let missing = ids.difference(&got.ids).count();
    assert_eq!(missing, 0, "{missing} click ids never arrived");
    assert_eq!(got.ids.len(), 100_000, "no foreign ids");
    // Every acknowledged message is in the topic (retries may add duplicates, never remove).
    assert!(got.messages as u64 >= kafka.delivered().min(100_000));
}

#[test]
fn direct_write_counts_and_missing_topic_error() {
    let broker = Tansu::start();
    // Without `create_topic` a missing topic fails the write with librdkafka's error (tansu does
    // not auto-create topics: the messages wait for the topic until the message timeout).
    let mut sink = KafkaSink::builder(broker.brokers(), topic("missing"))
        .message_timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let batch: Vec<Click> = (0..10).map(click).collect();
    let err = sink.write(&batch).unwrap_err();
    assert!(matches!(err, SinkError::Transient(_)), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("10 of 10 Kafka messages failed") && text.contains("MessageTimedOut"),
        "{text}"
    );
    assert_eq!(sink.stats().failed_reports(), 10);
    assert_eq!(sink.stats().delivered(), 0);

    // With it, the topic is created and the same batch goes through.
    let topic = topic("direct");
    let mut sink = KafkaSink::builder(broker.brokers(), &topic)
        .create_topic(PARTITIONS, 1)
        .build()
        .unwrap();
    sink.write(&batch).unwrap();
    sink.flush().unwrap();
    assert_eq!(sink.stats().delivered(), 10);
    assert_eq!(sink.unconfirmed(), 0);
    let want: HashSet<String> = batch.iter().map(|c| c.click_id.to_string()).collect();
    let got = read_back(&broker.brokers(), &topic, &want);
    assert_eq!(got.ids, want);
    assert_eq!(got.messages, 10, "a successful write is sent once");
}

#[test]
fn outage_clicks_arrive_at_the_fresh_broker() {
    let mut broker = Tansu::start();
    let port = broker.port;
    let topic = topic("outage");
    let sink = KafkaSink::builder(broker.brokers(), &topic)
        .create_topic(PARTITIONS, 1)
        .message_timeout(Duration::from_secs(3))
        .build()
        .unwrap();
    let kafka = sink.stats();
    let (rec, guard) = ClickRecorder::builder(sink)
        .max_batch(1024)
        .capacity(1 << 16)
        .retry(RetryPolicy {
            max_attempts: 10_000,
            initial_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_millis(500),
        })
        .spawn()
        .unwrap();
    for i in 0..2_000 {
        rec.record(click(i));
    }
    wait_stats(&rec, "first clicks delivered", |s| s.delivered == 2_000);

    broker.stop();
    let mut outage = HashSet::new();
    for i in 0..5_000 {
        let c = click(i);
        outage.insert(c.click_id.to_string());
        rec.record(c);
    }
    // The outage is seen: writes fail and are retried.
    let during = wait_stats(&rec, "a failed write retried", |s| s.retries > 0);
    assert!(kafka.failed_reports() > 0 || kafka.errors() > 0);
    // librdkafka's error reaches the pipeline's last_error.
    let err = during.last_error.unwrap_or_default();
    eprintln!("last_error during the outage: {err}");
    assert!(
        err.contains("Kafka messages") || err.contains("creating topic"),
        "{err}"
    );

    let fresh = Tansu::start_on(port);
    let s = wait_stats(&rec, "outage clicks delivered", |s| s.in_flight == 0);
    assert_eq!((s.dropped, s.failed), (0, 0), "{s:?}");
    let s = guard.shutdown(Duration::from_secs(30));
    assert_reconciles(&s);
    assert_eq!((s.recorded, s.delivered), (7_000, 7_000), "{s:?}");
    assert!(
        kafka.topic_creates() >= 2,
        "the topic was created again on the fresh broker"
    );

    eprintln!("{kafka:?}");
    let got = read_back(&fresh.brokers(), &topic, &outage);
    let missing = outage.difference(&got.ids).count();
    assert_eq!(missing, 0, "{missing} outage clicks never arrived");
}

#[test]
fn shutdown_with_the_broker_gone_counts_every_unconfirmed_click() {
    let mut broker = Tansu::start();
    let sink = KafkaSink::builder(broker.brokers(), topic("gone"))
        .create_topic(PARTITIONS, 1)
        .message_timeout(Duration::from_secs(120))
        .build()
        .unwrap();
    let kafka = sink.stats();
    let (rec, guard) = ClickRecorder::builder(sink)
        .max_batch(1024)
        .full_policy(FullPolicy::DropNewest)
        .spawn()
        .unwrap();
    for i in 0..1_000 {
        rec.record(click(i));
    }
    wait_stats(&rec, "first clicks delivered", |s| s.delivered == 1_000);
    broker.stop();
    for i in 0..3_000 {
        rec.record(click(i));
    }
    // The drain has taken a batch and waits for acknowledgements that cannot come (it takes
    // no other batch meanwhile, so the queue stays as it is). The queue must have stopped
    // shrinking: a reading taken while the drain is still moving clicks into its batch
    // would undercount what it holds.
    let held = pipeline::wait_for(
        || {
            let before = rec.stats().queue_len;
            std::thread::sleep(Duration::from_millis(300));
            (before, rec.stats())
        },
        "the drain holding a batch",
        Duration::from_secs(180),
        |(before, s)| s.recorded == 4_000 && s.queue_len < 3_000 && s.queue_len == *before,
    )
    .1;
    let held = 3_000 - held.queue_len;

    let s = guard.shutdown(Duration::from_secs(1));
    assert_reconciles(&s);
    assert_eq!(s.delivered, 1_000, "{s:?}");
    assert_eq!(
        s.failed, 3_000,
        "every unconfirmed click is counted failed: {s:?}"
    );
    let err = s.last_error.as_deref().unwrap_or("");
    assert!(err.contains("unconfirmed"), "last_error names it: {err}");
    // librdkafka still held the batch's messages when the sink closed: counted, never dropped
    // silently (the rest of the clicks never left the pipeline's channel).
    assert_eq!(kafka.unconfirmed_at_close(), held);
}

#[test]
fn bad_configuration_is_a_typed_error() {
    let err = KafkaSink::builder("127.0.0.1:9", "bad topic name")
        .build()
        .unwrap_err();
    assert!(matches!(err, KafkaSinkError::InvalidTopic(_)), "{err}");
    let err = KafkaSink::builder("127.0.0.1:9", "clicks")
        .set("no.such.property", "1")
        .build()
        .unwrap_err();
    assert!(matches!(err, KafkaSinkError::Client { .. }), "{err}");
    assert!(std::error::Error::source(&err).is_some());
}
