//! `RedisStreamSink` against a real Redis (`LINKGATE_REDIS_URL`, default
//! `redis://127.0.0.1:6379/`), and against a `redis-server` of our own that we kill and restart.
//!
//! ```sh
//! cargo test --features redis-tests --test redis_sink
//! ```
#![cfg(feature = "redis-tests")]

#[path = "support/pipeline.rs"]
mod pipeline;
#[path = "support/redis_server.rs"]
mod redis_server;
use pipeline::{reconciles, wait_for};
use redis_server::{RedisServer, free_port, unique, url};

use std::collections::HashSet;
use std::time::Duration;

use http::HeaderValue;
use linkgate::{
    Click, ClickId, ClickIp, ClickRecorder, ClickSink, Recorded, RedisStreamSink, RetryPolicy,
    SinkError,
};

/// Failure guard only: every wait below ends on an event long before this.
const GUARD: Duration = Duration::from_secs(60);

/// A realistic click: headers, tags, an anonymised IP, and a unique id.
fn click(i: u64) -> Click {
    let id = ClickId::generate();
    let mut c = Click::new(
        id.timestamp_ms(),
        id,
        format!("/go/aff-{:05}", i % 5000),
        HeaderValue::from_static("https://store.example.com/p/123?ref=aff_01&utm=abcdefgh"),
        302,
    );
    c.ip = Some(ClickIp::Addr("203.0.113.0".parse().unwrap()));
    c.user_agent = Some(HeaderValue::from_static(
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    ));
    c.referer = Some(HeaderValue::from_static("https://blog.example.com/deals/"));
    c.tags = Some(vec![("campaign".into(), format!("c{}", i % 7).into())].into());
    c
}

/// Records `n` clicks from this thread; returns the ids of those that were queued.
fn record(rec: &ClickRecorder, from: u64, n: u64, queued: &mut HashSet<String>) {
    for i in from..from + n {
        let c = click(i);
        let id = c.click_id.to_string();
        if rec.record(c) == Recorded::Queued {
            assert!(queued.insert(id), "click ids are unique");
        }
    }
}

/// Every `click_id` in the stream, with repeats.
fn read_stream(url: &str, stream: &str) -> Vec<String> {
    let mut con = redis::Client::open(url)
        .unwrap()
        .get_connection_with_timeout(Duration::from_secs(5))
        .unwrap();
    let mut ids = Vec::new();
    let mut start = "-".to_string();
    loop {
        let page: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
            .arg(stream)
            .arg(&start)
            .arg("+")
            .arg("COUNT")
            .arg(10_000)
            .query(&mut con)
            .unwrap();
        let Some(last) = page.ids.last() else { break };
        start = format!("({}", last.id);
        for e in &page.ids {
            assert_eq!(e.map.len(), 1, "one field per entry: {:?}", e.map.keys());
            let json: String = e.get("json").expect("a json field");
            let v: serde_json::Value = serde_json::from_str(&json).unwrap();
            ids.push(v["click_id"].as_str().unwrap().to_owned());
        }
    }
    ids
}

fn del(url: &str, key: &str) {
    let mut con = redis::Client::open(url).unwrap().get_connection().unwrap();
    let _: () = redis::cmd("DEL").arg(key).query(&mut con).unwrap();
}

#[test]
fn hundred_thousand_clicks_reach_the_stream_exactly() {
    let url = url();
    let stream = unique("sink-100k");
    let sink = RedisStreamSink::new(&url, &stream).unwrap();
    assert!(!sink.is_connected(), "constructing does not connect");
    let (rec, guard) = ClickRecorder::builder(sink)
        .capacity(131_072)
        .max_batch(1024)
        .spawn()
        .unwrap();
    let mut queued = HashSet::new();
    record(&rec, 0, 100_000, &mut queued);
    let stats = guard.shutdown(GUARD);
    assert!(reconciles(&stats), "{stats:?}");
    assert_eq!((stats.recorded, stats.failed), (100_000, 0), "{stats:?}");
    assert_eq!(stats.delivered, queued.len() as u64, "{stats:?}");

    let ids = read_stream(&url, &stream);
    let in_stream: HashSet<String> = ids.iter().cloned().collect();
    assert_eq!(in_stream.len(), queued.len(), "distinct ids in the stream");
    assert!(
        in_stream == queued,
        "the stream holds exactly the queued clicks"
    );
    if stats.retries == 0 {
        assert_eq!(ids.len(), queued.len(), "no retry, so no duplicate");
    }
    del(&url, &stream);
}

#[test]
fn maxlen_trims_the_stream_approximately() {
    let url = url();
    let stream = unique("sink-maxlen");
    let mut sink = RedisStreamSink::new(&url, &stream)
        .unwrap()
        .max_len(Some(1000));
    let batch: Vec<Click> = (0..1000).map(click).collect();
    for _ in 0..10 {
        sink.write(&batch).unwrap();
    }
    let mut con = redis::Client::open(url.as_str())
        .unwrap()
        .get_connection()
        .unwrap();
    let len: u64 = redis::cmd("XLEN").arg(&stream).query(&mut con).unwrap();
    assert!((1000..10_000).contains(&len), "XLEN {len}");
    del(&url, &stream);
}

#[test]
fn error_replies_fail_the_batch_and_the_sink_recovers() {
    let url = url();
    let stream = unique("sink-wrongtype");
    let mut con = redis::Client::open(url.as_str())
        .unwrap()
        .get_connection()
        .unwrap();
    let _: () = redis::cmd("SET")
        .arg(&stream)
        .arg("not a stream")
        .query(&mut con)
        .unwrap();
    let mut sink = RedisStreamSink::new(&url, &stream).unwrap();
    let batch: Vec<Click> = (0..10).map(click).collect();
    match sink.write(&batch) {
        Err(SinkError::Transient(m)) => {
            assert!(m.contains("10 of 10") && m.contains("WRONGTYPE"), "{m}");
            assert!(m.contains(&stream) && m.contains("127.0.0.1"), "{m}");
        }
        other => panic!("{other:?}"),
    }
    del(&url, &stream);
    sink.write(&batch).unwrap();
    assert_eq!(read_stream(&url, &stream).len(), 10);
    del(&url, &stream);
}

#[test]
fn an_unreachable_server_is_a_transient_error_counted_failed() {
    let port = free_port();
    let sink = RedisStreamSink::new(&format!("redis://127.0.0.1:{port}/"), "clicks")
        .unwrap()
        .connect_timeout(Duration::from_millis(200));
    let (rec, guard) = ClickRecorder::builder(sink)
        .retry(RetryPolicy {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(5),
        })
        .spawn()
        .unwrap();
    let mut queued = HashSet::new();
    record(&rec, 0, 100, &mut queued);
    let stats = guard.shutdown(GUARD);
    assert!(reconciles(&stats), "{stats:?}");
    assert_eq!((stats.delivered, stats.failed), (0, 100), "{stats:?}");
    let err = stats.last_error.unwrap();
    assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
}

/// The server is SIGKILLed while the drain is writing, clicks are recorded while it is down, it
/// comes back on the same port (reloading its AOF, so "in the server" means what it
/// acknowledged before it died), and more clicks follow. Every click that was queued and not counted failed
/// must be in the stream; duplicates (a batch half-written when the server died) are allowed.
#[test]
fn server_killed_mid_stream_and_restarted_loses_nothing_acknowledged() {
    let mut server = RedisServer::start_persistent(free_port(), &unique("aof"), GUARD);
    let stream = unique("sink-outage");
    let sink = RedisStreamSink::new(&server.url(), &stream)
        .unwrap()
        .connect_timeout(Duration::from_millis(500))
        .io_timeout(Duration::from_secs(2));
    let (rec, guard) = ClickRecorder::builder(sink)
        .capacity(262_144)
        .max_batch(1024)
        .retry(RetryPolicy {
            max_attempts: 1000,
            initial_backoff: Duration::from_millis(5),
            max_backoff: Duration::from_millis(100),
        })
        .spawn()
        .unwrap();
    let mut queued = HashSet::new();

    // 1. A stream of clicks; the server dies while the drain is still writing them.
    record(&rec, 0, 100_000, &mut queued);
    wait_for(
        || guard.stats(),
        "a first part delivered",
        GUARD,
        |s| s.delivered >= 20_000,
    );
    server.kill();
    let at_kill = guard.stats();
    // 2. Clicks recorded during the outage.
    record(&rec, 100_000, 20_000, &mut queued);
    wait_for(
        || guard.stats(),
        "the sink to see the outage",
        GUARD,
        |s| s.retries > 0,
    );
    // 3. Back on the same port; the drain catches up; more clicks.
    server.restart();
    record(&rec, 120_000, 20_000, &mut queued);
    let stats = guard.shutdown(GUARD);

    assert!(
        at_kill.delivered < 100_000,
        "the kill was mid-stream: {at_kill:?}"
    );
    assert!(reconciles(&stats), "{stats:?}");
    assert!(stats.retries > 0, "{stats:?}");
    assert_eq!(stats.recorded, 140_000, "{stats:?}");
    assert_eq!(stats.recorded - stats.dropped, queued.len() as u64);
    assert_eq!(stats.failed, 0, "the retry policy rides out the outage");

    let ids = read_stream(&server.url(), &stream);
    let in_stream: HashSet<String> = ids.iter().cloned().collect();
    let missing = queued.difference(&in_stream).count();
    let foreign = in_stream.difference(&queued).count();
    assert_eq!((missing, foreign), (0, 0), "{stats:?}");
    assert!(ids.len() >= queued.len());
    eprintln!(
        "outage: {} queued, {} entries ({} duplicates), {} retries, delivered at kill {}",
        queued.len(),
        ids.len(),
        ids.len() - in_stream.len(),
        stats.retries,
        at_kill.delivered
    );
}
