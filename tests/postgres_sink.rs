//! `PostgresSink` against a real PostgreSQL (`LINKGATE_POSTGRES`, default
//! `host=127.0.0.1 user=postgres dbname=test`).
//!
//! ```sh
//! cargo test --features postgres-tests --test postgres_sink
//! ```
#![cfg(feature = "postgres-tests")]

#[path = "support/postgres.rs"]
mod pg;
#[path = "support/pipeline.rs"]
mod pipeline;
use pg::{admin, conninfo};
use pipeline::{reconciles, wait_for};

use std::collections::HashSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::HeaderValue;
use http::uri::PathAndQuery;
use linkgate::{
    Click, ClickId, ClickIp, ClickRecorder, ClickSink, PostgresSink, Recorded, RetryPolicy,
    SinkError,
};
use postgres::Config;

/// Failure guard only: every wait below ends on an event long before this.
const GUARD: Duration = Duration::from_secs(60);

/// A table (and `application_name`) unique to this test; dropped on drop.
struct TestTable {
    name: String,
}

impl TestTable {
    fn new(tag: &str) -> TestTable {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        TestTable {
            name: format!("lgt_sink_{tag}_{}_{nanos}", std::process::id()),
        }
    }

    /// A sink on this table whose session is named `<table>-sink`.
    fn sink(&self) -> PostgresSink {
        let mut cfg: Config = conninfo().parse().unwrap();
        cfg.application_name(&self.name);
        PostgresSink::from_config(cfg).table(&self.name).unwrap()
    }

    fn ids(&self) -> Vec<String> {
        admin()
            .query(&format!("SELECT click_id FROM \"{}\"", self.name), &[])
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect()
    }

    /// Terminates the sink's session; returns how many backends were terminated.
    fn kill_sink(&self) -> usize {
        let rows = admin()
            .query(
                "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity \
                 WHERE application_name = $1",
                &[&format!("{}-sink", self.name)],
            )
            .unwrap();
        rows.iter().filter(|r| r.get::<_, bool>(0)).count()
    }
}

impl Drop for TestTable {
    fn drop(&mut self) {
        let _ = admin().batch_execute(&format!("DROP TABLE IF EXISTS \"{}\"", self.name));
    }
}

/// A realistic click with a unique id; every fourth one carries all the optional fields.
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
    c.tags = Some(vec![("campaign".into(), format!("c{}", i % 7).into())].into());
    if i % 4 == 0 {
        c.referer = Some(HeaderValue::from_bytes(b"https://blog.example.com/caf\xe9").unwrap());
        c.country = Some(HeaderValue::from_static("DE"));
        c.path_and_query = Some(PathAndQuery::from_static("/go/x?utm_source=news"));
        c.bot = Some(true);
        c.unique = Some(false);
        c.suspicious = Some(true);
        c.matched = false;
        let n = c.notes_mut();
        n.bot_reason = Some(Bytes::from_static(b"ua:googlebot"));
        n.suspicious_reason = Some(Bytes::from_static(b"flood:source"));
        n.rule = Some(Bytes::from_static(b"mobile"));
        n.variant = Some(Bytes::from_static(b"b"));
    }
    c
}

fn record(rec: &ClickRecorder, from: u64, n: u64, queued: &mut HashSet<String>) {
    for i in from..from + n {
        let c = click(i);
        let id = c.click_id.to_string();
        if rec.record(c) == Recorded::Queued {
            assert!(queued.insert(id), "click ids are unique");
        }
    }
}

#[test]
fn hundred_thousand_clicks_reach_the_table_exactly() {
    let t = TestTable::new("100k");
    let sink = t.sink();
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
    let ids = t.ids();
    let in_table: HashSet<String> = ids.iter().cloned().collect();
    assert_eq!(ids.len(), in_table.len(), "no duplicate rows");
    assert!(
        in_table == queued,
        "the table holds exactly the queued clicks"
    );
}

#[test]
fn every_field_round_trips_like_the_json() {
    let t = TestTable::new("fields");
    let mut sink = t.sink();
    let batch = vec![click(0), click(1)];
    sink.write(&batch).unwrap();
    for c in &batch {
        let json: serde_json::Value = serde_json::from_slice(&c.to_json()).unwrap();
        let row = admin()
            .query_one(
                &format!(
                    "SELECT (to_jsonb(c) - 'ts')::text AS j, \
                     to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') AS ts \
                     FROM \"{}\" c WHERE click_id = $1",
                    t.name
                ),
                &[&c.click_id.to_string()],
            )
            .unwrap();
        let mut got: serde_json::Value = serde_json::from_str(row.get("j")).unwrap();
        got["ts"] = serde_json::Value::String(row.get("ts"));
        assert_eq!(got, json, "the row equals the click's JSON, field by field");
    }
}

#[test]
fn a_redelivered_batch_adds_only_the_missing_rows() {
    let t = TestTable::new("redeliver");
    let mut sink = t.sink();
    let first: Vec<Click> = (0..500).map(click).collect();
    sink.write(&first).unwrap();
    sink.write(&first).unwrap(); // the same batch again: nothing new
    let mut mixed = first[..250].to_vec();
    mixed.extend((500..800).map(click));
    sink.write(&mixed).unwrap(); // half old, half new
    sink.write(&mixed).unwrap();
    let ids = t.ids();
    let distinct: HashSet<&String> = ids.iter().collect();
    assert_eq!((ids.len(), distinct.len()), (800, 800));
}

#[test]
fn data_the_server_refuses_is_permanent_and_a_lost_table_is_recreated() {
    let t = TestTable::new("refuse");
    let mut sink = t.sink();
    sink.write(&[click(0)]).unwrap();
    admin()
        .batch_execute(&format!(
            "ALTER TABLE \"{}\" ADD CHECK (status <> 418)",
            t.name
        ))
        .unwrap();
    let mut teapot = click(1);
    teapot.status = 418;
    match sink.write(&[click(2), teapot]) {
        Err(SinkError::Permanent(m)) => assert!(m.contains(&t.name), "{m}"),
        other => panic!("{other:?}"),
    }
    // The table disappears: transient, and the next connect creates it again.
    admin()
        .batch_execute(&format!("DROP TABLE \"{}\"", t.name))
        .unwrap();
    assert!(matches!(
        sink.write(&[click(3)]),
        Err(SinkError::Transient(_))
    ));
    sink.write(&[click(4)]).unwrap();
    assert_eq!(t.ids().len(), 1);
}

#[test]
fn an_unreachable_server_is_transient_and_counted_failed() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let sink = PostgresSink::new(&format!(
        "host=127.0.0.1 port={port} user=postgres dbname=x"
    ))
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
    assert!(
        err.contains("127.0.0.1/x") && err.contains("clicks"),
        "{err}"
    );
}

/// The sink's backend is terminated (`pg_terminate_backend`, found by `application_name`)
/// three times while the drain is writing, with clicks recorded in between. Every click queued
/// and not counted failed is in the table, exactly once.
#[test]
fn terminated_connection_mid_stream_loses_and_duplicates_nothing() {
    let t = TestTable::new("terminate");
    let (rec, guard) = ClickRecorder::builder(t.sink())
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
    record(&rec, 0, 100_000, &mut queued);
    let mut kills = 0;
    let mut delivered_at_kills = Vec::new();
    for (round, at) in [10_000u64, 40_000, 70_000].into_iter().enumerate() {
        wait_for(|| guard.stats(), "progress", GUARD, |s| s.delivered >= at);
        delivered_at_kills.push(guard.stats().delivered);
        kills += t.kill_sink();
        // Clicks recorded while the sink reconnects.
        record(&rec, 100_000 + round as u64 * 5000, 5000, &mut queued);
    }
    let stats = guard.shutdown(GUARD);
    assert!(kills >= 3, "the sink's session was terminated: {kills}");
    assert!(
        delivered_at_kills.iter().any(|&d| d < stats.delivered),
        "the kills were mid-stream: {delivered_at_kills:?}"
    );
    assert!(reconciles(&stats), "{stats:?}");
    assert!(stats.retries > 0, "{stats:?}");
    assert_eq!(stats.recorded, 115_000, "{stats:?}");
    assert_eq!(stats.failed, 0, "{stats:?}");
    assert_eq!(stats.recorded - stats.dropped, queued.len() as u64);
    let ids = t.ids();
    let in_table: HashSet<String> = ids.iter().cloned().collect();
    assert_eq!(ids.len(), in_table.len(), "no duplicate rows");
    assert!(in_table == queued, "every queued click is in the table");
    eprintln!(
        "terminate: {} rows, {} retries, delivered at kills {delivered_at_kills:?}",
        ids.len(),
        stats.retries
    );
}
