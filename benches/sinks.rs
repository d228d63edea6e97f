//! Click sinks into real servers: Redis Streams and PostgreSQL, against the no-op `()` sink in
//! the same run (see BENCHMARKS.md, "Click sinks: Redis Streams and PostgreSQL").
//!
//! Run (Redis on `LINKGATE_REDIS_URL`, default `redis://127.0.0.1:6379/`; PostgreSQL on
//! `LINKGATE_POSTGRES`, default `host=127.0.0.1 user=postgres dbname=test`):
//!
//! ```sh
//! cargo bench --features redis,postgres --bench sinks
//! ```
//!
//! Sections (each sink in turn, `RUNS` rounds, sinks interleaved within a round so that
//! machine noise hits all of them alike):
//! - `throughput`: a fresh pipeline (`max_batch` 1024, capacity 262 144 so nothing is
//!   dropped) whose sink has already connected (one warm-up click delivered), then `N` prebuilt
//!   realistic clicks recorded from one thread as fast as it goes, then `shutdown`. Clicks/s =
//!   `N` / (first `record` → shutdown returned, i.e. everything delivered). Checks that
//!   `delivered = N + 1`, nothing dropped or failed.
//! - the same run also times every `record` call in blocks of 1000 (`Instant` per block, the
//!   clicks are moved in, no clone) while the drain is busy writing into the sink: median and
//!   p90 of ns per call over the 200 blocks.
//! - `pg sync_commit off`: the same PostgreSQL sink with `synchronous_commit(false)` (no WAL
//!   flush wait per batch).
//! - `pg_redelivered`: PostgreSQL again, but every batch is written twice (the second write
//!   takes the redelivery path: failed `COPY`, then staging table + `INSERT ... ON CONFLICT`).
//! - `copy_format`: 200 000 rows `COPY`ed out of the table the sink filled, in text and in
//!   binary format, then `COPY`ed into an empty copy of the table (primary key included), each
//!   format `RUNS` times: what the server pays per format for the same rows.
//! - `commit`: 200 autocommit one-row `INSERT`s into a small logged table, with
//!   `synchronous_commit` on and off, `RUNS` times: the cost of one durable commit (a WAL flush)
//!   on this machine's disk, which the sink pays once per batch.
//!
//! A first argument runs only the sections whose name contains it (`throughput`,
//! `copy_format`, `redelivered`, `commit`).

#[path = "common/click.rs"]
mod click;
use click::{REFERER, UA};
use std::collections::HashSet;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::HeaderValue;
use http::uri::PathAndQuery;
use linkgate::{
    Click, ClickId, ClickIp, ClickRecorder, ClickSink, PostgresSink, RedisStreamSink, SinkError,
};

const N: usize = 200_000;
const RUNS: usize = 5;
const BLOCK: usize = 1000;

fn redis_url() -> String {
    std::env::var("LINKGATE_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".into())
}

fn pg() -> String {
    std::env::var("LINKGATE_POSTGRES")
        .unwrap_or_else(|_| "host=127.0.0.1 user=postgres dbname=test".into())
}

/// Realistic clicks: desktop Chrome UA, referer, one tag, anonymised IP; every tenth with a
/// query and a bot verdict.
fn clicks(n: usize) -> Vec<Click> {
    (0..n)
        .map(|i| {
            let id = ClickId::generate();
            let mut c = Click::new(
                id.timestamp_ms(),
                id,
                Bytes::from(format!("/go/aff-{:07}-kqz", i % 10_000)),
                HeaderValue::from_str(&format!(
                    "https://store.example.com/p/{:07}?ref=aff_{:04}&utm=abcdefgh",
                    i % 10_000,
                    i % 97
                ))
                .unwrap(),
                302,
            );
            c.ip = Some(ClickIp::Addr("203.0.113.0".parse().unwrap()));
            c.user_agent = Some(HeaderValue::from_static(UA));
            c.referer = Some(HeaderValue::from_static(REFERER));
            c.tags = Some(vec![("campaign".into(), "summer".into())].into());
            if i % 10 == 0 {
                c.path_and_query = Some(PathAndQuery::from_static("/go/x?utm_source=news"));
                c.bot = Some(false);
            }
            c
        })
        .collect()
}

struct Run {
    clicks_per_s: f64,
    record_ns_p50: f64,
    record_ns_p90: f64,
}

fn run_pipeline<S: ClickSink>(sink: S, batch: Vec<Click>) -> Run {
    let (rec, guard) = ClickRecorder::builder(sink)
        .capacity(262_144)
        .max_batch(1024)
        .spawn()
        .unwrap();
    // Warm-up: the sink connects (and creates its table) before the clock starts.
    rec.record(clicks(1).pop().unwrap());
    let deadline = Instant::now() + Duration::from_secs(30);
    while guard.stats().delivered + guard.stats().failed < 1 {
        assert!(Instant::now() < deadline, "warm-up click never delivered");
        std::thread::sleep(Duration::from_millis(1));
    }
    let mut it = batch.into_iter();
    let mut per_call = Vec::with_capacity(N / BLOCK);
    let start = Instant::now();
    loop {
        let t = Instant::now();
        let mut k = 0;
        for c in it.by_ref().take(BLOCK) {
            rec.record(c);
            k += 1;
        }
        if k == 0 {
            break;
        }
        per_call.push(t.elapsed().as_nanos() as f64 / k as f64);
    }
    let stats = guard.shutdown(Duration::from_secs(120));
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(
        (stats.delivered, stats.dropped, stats.failed),
        (N as u64 + 1, 0, 0),
        "{stats:?}"
    );
    per_call.sort_by(f64::total_cmp);
    Run {
        clicks_per_s: N as f64 / secs,
        record_ns_p50: per_call[per_call.len() / 2],
        record_ns_p90: per_call[per_call.len() * 9 / 10],
    }
}

fn pg_admin() -> postgres::Client {
    pg().parse::<postgres::Config>()
        .unwrap()
        .connect(postgres::NoTls)
        .unwrap()
}

fn pg_sink(table: &str) -> PostgresSink {
    PostgresSink::new(&pg()).unwrap().table(table).unwrap()
}

fn summary(name: &str, runs: &[Run], base: &[Run]) {
    let rates: Vec<f64> = runs.iter().map(|r| r.clicks_per_s).collect();
    let (lo, hi) = (
        rates.iter().cloned().fold(f64::MAX, f64::min),
        rates.iter().cloned().fold(0.0, f64::max),
    );
    let mut sorted = rates.clone();
    sorted.sort_by(f64::total_cmp);
    let med = sorted[sorted.len() / 2];
    let ratios: Vec<String> = runs
        .iter()
        .zip(base)
        .map(|(r, b)| format!("{:.3}", r.clicks_per_s / b.clicks_per_s))
        .collect();
    let p50: Vec<String> = runs
        .iter()
        .map(|r| format!("{:.0}", r.record_ns_p50))
        .collect();
    let p90: Vec<String> = runs
        .iter()
        .map(|r| format!("{:.0}", r.record_ns_p90))
        .collect();
    let rec_ratio: Vec<String> = runs
        .iter()
        .zip(base)
        .map(|(r, b)| format!("{:.2}", r.record_ns_p50 / b.record_ns_p50))
        .collect();
    println!(
        "{name:<18} clicks/s median {med:>9.0} (min {lo:.0}, max {hi:.0}); runs: {}",
        rates
            .iter()
            .map(|r| format!("{r:.0}"))
            .collect::<Vec<_>>()
            .join(" / ")
    );
    println!("{:<18}   ÷ () same round: {}", "", ratios.join(" / "));
    println!(
        "{:<18}   record ns/call p50: {}  p90: {}  p50 ÷ (): {}",
        "",
        p50.join(" / "),
        p90.join(" / "),
        rec_ratio.join(" / ")
    );
}

fn copy_format(table: &str) {
    let mut c = pg_admin();
    let copy = format!("{table}_fmt");
    c.batch_execute(&format!(
        "DROP TABLE IF EXISTS {copy}; CREATE TABLE {copy} (LIKE {table} INCLUDING ALL)"
    ))
    .unwrap();
    let mut data = Vec::new();
    for fmt in ["text", "binary"] {
        let mut out = Vec::new();
        let mut r = c
            .copy_out(&format!("COPY {table} TO STDOUT (FORMAT {fmt})"))
            .unwrap();
        std::io::copy(&mut r, &mut out).unwrap();
        drop(r);
        data.push((fmt, out));
    }
    let rows: i64 = c
        .query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .unwrap()
        .get(0);
    let mut times: Vec<(&str, Vec<f64>)> = data.iter().map(|(f, _)| (*f, Vec::new())).collect();
    for _ in 0..RUNS {
        for (i, (fmt, bytes)) in data.iter().enumerate() {
            c.batch_execute(&format!("TRUNCATE {copy}")).unwrap();
            let t = Instant::now();
            let mut w = c
                .copy_in(&format!("COPY {copy} FROM STDIN (FORMAT {fmt})"))
                .unwrap();
            std::io::Write::write_all(&mut w, bytes).unwrap();
            let n = w.finish().unwrap();
            times[i].1.push(n as f64 / t.elapsed().as_secs_f64());
            assert_eq!(n as i64, rows);
        }
    }
    for ((fmt, bytes), (_, rates)) in data.iter().zip(&times) {
        println!(
            "copy_format {fmt:<6} {rows} rows, {:.0} B/row: rows/s {}",
            bytes.len() as f64 / rows as f64,
            rates
                .iter()
                .map(|r| format!("{r:.0}"))
                .collect::<Vec<_>>()
                .join(" / ")
        );
    }
    c.batch_execute(&format!("DROP TABLE {copy}")).unwrap();
}

/// Writes every batch twice: the second write takes the sink's redelivery path.
struct Twice(PostgresSink);

impl ClickSink for Twice {
    fn write(&mut self, batch: &[Click]) -> Result<(), SinkError> {
        self.0.write(batch)?;
        self.0.write(batch)
    }
}

fn commit_probe() {
    let mut c = pg_admin();
    let t = format!("lgb_commit_{}", std::process::id());
    c.batch_execute(&format!(
        "DROP TABLE IF EXISTS {t}; CREATE TABLE {t} (x int)"
    ))
    .unwrap();
    let ins = c.prepare(&format!("INSERT INTO {t} VALUES (1)")).unwrap();
    for sync in ["on", "off"] {
        c.batch_execute(&format!("SET synchronous_commit = {sync}"))
            .unwrap();
        let mut per = Vec::new();
        for _ in 0..RUNS {
            let start = Instant::now();
            for _ in 0..200 {
                c.execute(&ins, &[]).unwrap();
            }
            per.push(start.elapsed().as_secs_f64() * 1000.0 / 200.0);
        }
        println!(
            "commit synchronous_commit={sync:<3} ms per commit: {}",
            per.iter()
                .map(|m| format!("{m:.2}"))
                .collect::<Vec<_>>()
                .join(" / ")
        );
    }
    c.batch_execute(&format!("DROP TABLE {t}")).unwrap();
}

fn main() {
    let only = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let run = |section: &str| only.as_deref().is_none_or(|f| section.contains(f));
    if run("commit") {
        commit_probe();
    }
    if !run("throughput") && !run("copy_format") && !run("redelivered") {
        return;
    }
    let stream = format!("linkgate-bench:clicks:{}", std::process::id());
    let table = format!("lgb_clicks_{}", std::process::id());
    let mut admin = pg_admin();
    let mut redis = redis::Client::open(redis_url().as_str())
        .unwrap()
        .get_connection()
        .unwrap();
    let (mut base, mut rs, mut ps, mut pa, mut pt) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    println!("{N} clicks per run, max_batch 1024, {RUNS} rounds");
    for round in 0..RUNS {
        base.push(run_pipeline((), clicks(N)));

        let _: () = redis::cmd("DEL").arg(&stream).query(&mut redis).unwrap();
        rs.push(run_pipeline(
            RedisStreamSink::new(&redis_url(), &stream).unwrap(),
            clicks(N),
        ));
        let len: usize = redis::cmd("XLEN").arg(&stream).query(&mut redis).unwrap();
        assert_eq!(len, N + 1);
        let _: () = redis::cmd("DEL").arg(&stream).query(&mut redis).unwrap();

        admin
            .batch_execute(&format!("DROP TABLE IF EXISTS {table}"))
            .unwrap();
        ps.push(run_pipeline(pg_sink(&table), clicks(N)));
        let t_async = format!("{table}_async");
        admin
            .batch_execute(&format!("DROP TABLE IF EXISTS {t_async}"))
            .unwrap();
        pa.push(run_pipeline(
            pg_sink(&t_async).synchronous_commit(false),
            clicks(N),
        ));
        admin
            .batch_execute(&format!("DROP TABLE {t_async}"))
            .unwrap();
        if round + 1 < RUNS {
            admin.batch_execute(&format!("DROP TABLE {table}")).unwrap();
        }
        eprintln!("round {} done", round + 1);
    }
    summary("()", &base, &base);
    summary("redis stream", &rs, &base);
    summary("postgres COPY", &ps, &base);
    summary("pg sync_commit off", &pa, &base);

    // The table of the last round: its rows feed copy_format.
    let ids: HashSet<String> = admin
        .query(&format!("SELECT click_id FROM {table}"), &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(ids.len(), N + 1);
    if run("copy_format") {
        copy_format(&table);
    }

    let t2 = format!("{table}_twice");
    for _ in 0..if run("redelivered") { RUNS } else { 0 } {
        admin
            .batch_execute(&format!("DROP TABLE IF EXISTS {t2}"))
            .unwrap();
        pt.push(run_pipeline(Twice(pg_sink(&t2)), clicks(N)));
    }
    if !pt.is_empty() {
        summary("pg redelivered", &pt, &base);
    }
    admin
        .batch_execute(&format!("DROP TABLE IF EXISTS {t2}; DROP TABLE {table}"))
        .unwrap();
}
