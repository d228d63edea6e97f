//! The cost of spooling (see BENCHMARKS.md, "Spool").
//!
//! Run: `cargo bench --features spool --bench spool` (env `RUNS`, default 3; `CLICKS`, default
//! 200 000).
//!
//! Each run measures, one after the other on the same machine, N realistic clicks (~600 B of
//! JSON each: user agent, referer, IP, a tag) recorded into a pipeline with `max_batch` 1 024
//! and a channel of N (no drops), from the first `record` to the end of `shutdown`:
//! - `unit`: the no-op sink `()` (the pipeline's own cost: the baseline);
//! - `jsonl`: `JsonLinesSink` on a file (page cache, no fsync);
//! - `jsonl_fsync`: `JsonLinesSink` with an `fsync` after every batch (what the spool promises);
//! - `spool_append`: a sink that is down (`SinkError::Transient`, one attempt), so every batch
//!   goes to the spool: JSON lines appended and `fdatasync`ed per batch;
//! - `spool_replay`: a new pipeline on that spool directory with the `()` sink, from `spawn`
//!   until the spool is empty (read, parse with `Click::from_json`, deliver, delete segments).
//!
//! Files live under `target/spool-bench/` (the disk the crate is on, not a tmpfs).

#[path = "common/click.rs"]
mod click;
use click::{REFERER, UA};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use http::HeaderValue;
use http::uri::PathAndQuery;
use linkgate::{
    Click, ClickId, ClickIp, ClickRecorder, ClickSink, JsonLinesSink, RetryPolicy, SinkError,
    SpoolConfig, Stats,
};

fn clicks(n: usize) -> Vec<Click> {
    let tags: linkgate::Tags = vec![("campaign".into(), "black-friday".into())].into();
    (0..n)
        .map(|i| {
            let ts = 1_795_914_123_456 + i as i64;
            let mut c = Click::new(
                ts,
                ClickId::at(ts),
                format!("/go/aff-{i:07}-kqz"),
                HeaderValue::from_static("https://store.example.com/p/123?ref=aff_01"),
                302,
            );
            c.ip = Some(ClickIp::Addr("203.0.113.0".parse().unwrap()));
            c.user_agent = Some(HeaderValue::from_static(UA));
            c.referer = Some(HeaderValue::from_static(REFERER));
            c.path_and_query = Some(PathAndQuery::from_static("/go/x?utm_source=newsletter"));
            c.tags = Some(tags.clone());
            c
        })
        .collect()
}

/// `JsonLinesSink` that fsyncs every batch.
struct Synced(JsonLinesSink);

impl ClickSink for Synced {
    fn write(&mut self, batch: &[Click]) -> Result<(), SinkError> {
        self.0.write(batch)?;
        self.0.flush()
    }
}

fn run_pipeline<S: ClickSink>(sink: S, spool: Option<&Path>, input: &[Click]) -> (Duration, Stats) {
    let mut b = ClickRecorder::builder(sink)
        .capacity(input.len())
        .max_batch(1024)
        .retry(RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        });
    if let Some(dir) = spool {
        b = b.spool(SpoolConfig::new(dir).probe_interval(Duration::from_secs(3600)));
    }
    let start = Instant::now();
    let (rec, guard) = b.spawn().unwrap();
    for c in input {
        rec.record(c.clone());
    }
    let stats = guard.shutdown(Duration::from_secs(600));
    (start.elapsed(), stats)
}

fn fresh(dir: &Path) -> PathBuf {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
    dir.to_path_buf()
}

fn main() {
    let runs: usize = std::env::var("RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let n: usize = std::env::var("CLICKS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let input = clicks(n);
    let bytes: usize = input.iter().map(|c| c.to_json().len() + 1).sum();
    println!(
        "{n} clicks, {:.0} B of JSON each, batch 1024, {runs} runs",
        bytes as f64 / n as f64
    );
    let root = PathBuf::from("target/spool-bench");
    let names = [
        "unit",
        "jsonl",
        "jsonl_fsync",
        "spool_append",
        "spool_replay",
    ];
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); names.len()];
    for run in 1..=runs {
        let mut r = Vec::new();
        let (t, s) = run_pipeline((), None, &input);
        assert_eq!(s.delivered, n as u64);
        r.push(t);
        let d = fresh(&root.join("jsonl"));
        let (t, s) = run_pipeline(
            JsonLinesSink::open(d.join("c.jsonl")).unwrap(),
            None,
            &input,
        );
        assert_eq!(s.delivered, n as u64);
        r.push(t);
        let d = fresh(&root.join("jsonl_fsync"));
        let sink = Synced(JsonLinesSink::open(d.join("c.jsonl")).unwrap().fsync(true));
        let (t, s) = run_pipeline(sink, None, &input);
        assert_eq!(s.delivered, n as u64);
        r.push(t);
        let spool = fresh(&root.join("spool"));
        let down = |_: &[Click]| Err::<(), _>(SinkError::Transient("down".into()));
        let (t, s) = run_pipeline(down, Some(&spool), &input);
        assert_eq!((s.spooled, s.failed), (n as u64, 0), "{s:?}");
        r.push(t);
        let start = Instant::now();
        let (_rec, guard) = ClickRecorder::builder(())
            .max_batch(1024)
            .spool(SpoolConfig::new(&spool))
            .spawn()
            .unwrap();
        let s = guard.shutdown(Duration::from_secs(600));
        let t = start.elapsed();
        assert_eq!((s.recovered, s.spool_bytes), (n as u64, 0), "{s:?}");
        r.push(t);
        print!("run {run}:");
        for (i, t) in r.iter().enumerate() {
            let rate = n as f64 / t.as_secs_f64();
            rates[i].push(rate);
            print!(" {}={:.0}k/s", names[i], rate / 1e3);
        }
        println!();
    }
    // Ratios are taken within each run (same machine state), then summarised.
    let summary = |v: Vec<f64>| {
        let mut v = v;
        v.sort_by(f64::total_cmp);
        (v[v.len() / 2], v[0], v[v.len() - 1])
    };
    let ratio = |i: usize, base: usize| -> Vec<f64> {
        rates[i]
            .iter()
            .zip(&rates[base])
            .map(|(a, b)| a / b)
            .collect()
    };
    println!();
    println!(
        "| what | clicks/s: median (min–max) of {runs} | × `()` | × `jsonl` | × `jsonl_fsync` |"
    );
    println!("|---|---|---|---|---|");
    for (i, name) in names.iter().enumerate() {
        let (m, lo, hi) = summary(rates[i].clone());
        let cell = |base: usize| {
            let (m, lo, hi) = summary(ratio(i, base));
            format!("{m:.2} ({lo:.2}–{hi:.2})")
        };
        println!(
            "| `{name}` | {:.0} k ({:.0}–{:.0} k) | {} | {} | {} |",
            m / 1e3,
            lo / 1e3,
            hi / 1e3,
            cell(0),
            cell(1),
            cell(2)
        );
    }
    let _ = std::fs::remove_dir_all(&root);
}
