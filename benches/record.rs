//! Click pipeline benchmarks (see BENCHMARKS.md, "Click pipeline").
//!
//! Run: `cargo bench --bench record -- --warm-up-time 1 --measurement-time 3`
//!
//! Criterion groups (medians in `target/criterion/<group>/<bench>/new/estimates.json`):
//! - `gate_vs_resolve`: one call per iteration, same table (10 000 static links, keys ~19 B,
//!   targets ~61 B) and the same `Parts` (built once: GET `/go/...`, desktop Chrome
//!   `User-Agent`, `Referer`, and the usual browser headers) in the same run:
//!   - `resolve_path`: `LinkTable::resolve(path)` (the floor);
//!   - `resolve_request`: `LinkTable::resolve_request(&parts)`;
//!   - `reader_request`: `TableReader::resolve_request(&parts)` (the borrowed answer);
//!   - `gate_static`: `Gate::handle(&parts, Some(ip))` for a static link — resolve, click id,
//!     click build, `ClickRecorder::record` — with the drain thread emptying the channel into the
//!     no-op sink `()` (capacity 262 144, so it never fills; the drop count is printed after the
//!     group);
//!   - `gate_static_unshared_headers`: `gate_static` with `&'static` header values, whose clones
//!     write no reference count (see `parts_static_headers`);
//!   - `gate_template_tagged`: the same for a link with a `{click_id}` template target and one tag.
//! - `tagged_table`: `resolve_path` and `gate_static` again on a table where every one of the
//!   10 000 links has one tag.
//! - `click_parts`: `click_clone` (clone + drop of a realistic `Click`: what the gate's zero-copy
//!   click build costs in refcounts) and `record_prebuilt` (clone + `record` of it).
//! - `click_id`: `ClickId::generate()` (clock + id), `ClickId::at(fixed_ms)`, and the two clocks
//!   alone: `fast_now_ms` (counter + per-thread anchor, what `generate` and the gate use) and
//!   `system_now_ms` (`SystemTime::now`).
//! - `json`: `Click::write_json` of one realistic click into a reused `Vec` (throughput = bytes).
//! - `jsonl_sink`: `ClickSink::write` of a batch of 1 024 realistic clicks to a `JsonLinesSink` on
//!   a temp file (page cache, no fsync; the file is truncated outside the timed region every
//!   64 MiB), throughput in clicks.
//!
//! After the criterion groups two custom sections run (unless a filter is given that is not a
//! substring of `flood` / `drain_cost`):
//! - `drain_cost`: one thread calls `gate.handle` in a loop for 3 s while the drain empties into
//!   `()`; prints ns per request on the request thread, the drain thread's CPU time per click and
//!   its context switches (from `/proc/self/task/<tid>`), and the final `Stats`.
//! - `flood`: 2 producer threads `record` prebuilt clicks as fast as they can for 3 s into a
//!   sink paced at `10 × t` per click (`t` = the measured wall time per recorded click of the
//!   two producers against a full pipeline, so the sink is ~10× slower than recording). Each
//!   `record` call is timed individually with `Instant` (the click clone is outside the timed
//!   region; the timer's own cost is measured and printed); prints p50/p90/p99/p99.9/max, the
//!   producer threads' context switches, the producers' own count of `Queued`/`Dropped` answers
//!   and the final `Stats`, and checks `dropped == recorded − delivered − failed`.

#[path = "common/click.rs"]
mod click;
mod common;
use click::{REFERER, STATIC_KEY, UA, realistic_click};
use common::filter_arg;

use std::hint::black_box;
use std::net::IpAddr;
use std::sync::Barrier;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use http::HeaderValue;
use http::request::Parts;
use linkgate::{
    Click, ClickId, ClickRecorder, ClickSink, Decision, Gate, JsonLinesSink, Link, LinkTable,
    Recorded, SinkError, Stats,
};

const TEMPLATE_KEY: &str = "/go/summer-deal";
const N_LINKS: usize = 10_000;
const FIXED_MS: i64 = 1_764_378_123_456;

// ---------------------------------------------------------------------------------------------
// Data

/// `N_LINKS` static links plus the template link; with `tag_all`, every static link also
/// carries one tag (as affiliate tables typically do).
fn table_with(tag_all: bool) -> LinkTable {
    let mut links: Vec<Link> = (0..N_LINKS)
        .map(|i| {
            let k = if i == 4242 {
                STATIC_KEY.to_string()
            } else {
                format!("/go/aff-{i:07}-{}", ["abc", "xyz", "def", "mno"][i % 4])
            };
            let t = format!(
                "https://store.example.com/p/{i:07}?ref=aff_{:04}&utm=abcdefgh",
                i % 10_000
            );
            if tag_all {
                Link::builder(k, t)
                    .tag("partner", format!("p{:03}", i % 100))
                    .build()
                    .unwrap()
            } else {
                Link::new(k, t).unwrap()
            }
        })
        .collect();
    links.push(
        Link::builder(
            TEMPLATE_KEY,
            "https://store.example.com/p/123?ref=aff_01&sub={click_id}",
        )
        .tag("campaign", "summer-2025")
        .build()
        .unwrap(),
    );
    LinkTable::from_links(links).unwrap()
}

fn table() -> LinkTable {
    table_with(false)
}

fn parts(path: &str) -> Parts {
    http::Request::get(path)
        .header("host", "shop.example.com")
        .header(http::header::USER_AGENT, UA)
        .header(
            http::header::ACCEPT,
            "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8",
        )
        .header(http::header::ACCEPT_LANGUAGE, "en-US,en;q=0.9")
        .header(http::header::ACCEPT_ENCODING, "gzip, deflate, br, zstd")
        .header(http::header::REFERER, REFERER)
        .header("sec-fetch-site", "cross-site")
        .header("upgrade-insecure-requests", "1")
        .body(())
        .unwrap()
        .into_parts()
        .0
}

/// [`parts`] with every header value `&'static` (`HeaderValue::from_static`): cloning one into
/// the click writes no reference count. With [`parts`] the bench reuses one request, so the
/// drain thread decrements the very counts the request thread increments (two cores on the
/// same cache lines: User-Agent and Referer); a server gets fresh header buffers per
/// connection, which the drain touches long after. The two benches bracket that cost.
fn parts_static_headers(path: &str) -> Parts {
    let mut p = parts(path);
    for v in p.headers.values_mut() {
        let s: &'static str = String::from(v.to_str().unwrap()).leak();
        *v = HeaderValue::from_static(s);
    }
    p
}

fn ip() -> IpAddr {
    "203.0.113.77".parse().unwrap()
}

fn print_stats(label: &str, s: &Stats) {
    println!(
        "{label}: recorded={} delivered={} dropped={} dropped_closed={} failed={} in_flight={} \
         batches={} retries={} queue_len={} last_error={:?}",
        s.recorded,
        s.delivered,
        s.dropped,
        s.dropped_closed,
        s.failed,
        s.in_flight,
        s.batches,
        s.retries,
        s.queue_len,
        s.last_error
    );
}

// ---------------------------------------------------------------------------------------------
// Criterion groups

fn bench_gate_vs_resolve(c: &mut Criterion) {
    println!(
        "size_of: Click {} B, Decision {} B",
        std::mem::size_of::<Click>(),
        std::mem::size_of::<Decision>()
    );
    let table = table();
    let (recorder, guard) = ClickRecorder::builder(())
        .capacity(1 << 18)
        .max_batch(1024)
        .spawn()
        .unwrap();
    let gate = Gate::builder(table.clone(), recorder.clone())
        .prefix("/go/")
        .build();
    let p_static = parts(STATIC_KEY);
    let p_template = parts(TEMPLATE_KEY);
    let ip = ip();
    // Sanity: both are served and recorded.
    for p in [&p_static, &p_template] {
        match gate.handle(p, Some(ip)) {
            Decision::Redirect(h) => assert_eq!(h.recorded, Some(Recorded::Queued)),
            d => panic!("{d:?}"),
        }
    }
    assert!(table.resolve(STATIC_KEY).matched());

    let mut g = c.benchmark_group("gate_vs_resolve");
    g.bench_function("resolve_path", |b| {
        b.iter(|| black_box(table.resolve(black_box(STATIC_KEY))))
    });
    g.bench_function("resolve_request", |b| {
        b.iter(|| black_box(table.resolve_request(black_box(&p_static))))
    });
    g.bench_function("reader_request", |b| {
        let mut reader = table.reader();
        b.iter(|| {
            let r = reader.resolve_request(black_box(&p_static));
            black_box(&r);
        })
    });
    g.bench_function("gate_static", |b| {
        b.iter(|| black_box(gate.handle(black_box(&p_static), Some(ip))))
    });
    let p_unshared = parts_static_headers(STATIC_KEY);
    g.bench_function("gate_static_unshared_headers", |b| {
        b.iter(|| black_box(gate.handle(black_box(&p_unshared), Some(ip))))
    });
    g.bench_function("gate_template_tagged", |b| {
        b.iter(|| black_box(gate.handle(black_box(&p_template), Some(ip))))
    });
    g.finish();
    print_stats("gate_vs_resolve stats before shutdown", &recorder.stats());
    drop(gate);
    drop(recorder);
    let s = guard.shutdown(Duration::from_secs(10));
    print_stats("gate_vs_resolve final stats", &s);
    if s.dropped > 0 {
        println!(
            "WARNING: {} clicks dropped during gate_vs_resolve: the drain did not keep up",
            s.dropped
        );
    }
}

/// The same comparison on a table where every link has a tag.
fn bench_tagged_table(c: &mut Criterion) {
    let table = table_with(true);
    let (recorder, guard) = ClickRecorder::builder(())
        .capacity(1 << 18)
        .max_batch(1024)
        .spawn()
        .unwrap();
    let gate = Gate::builder(table.clone(), recorder.clone())
        .prefix("/go/")
        .build();
    let p_static = parts(STATIC_KEY);
    let ip = ip();
    assert!(table.resolve(STATIC_KEY).matched());
    let mut g = c.benchmark_group("tagged_table");
    g.bench_function("resolve_path", |b| {
        b.iter(|| black_box(table.resolve(black_box(STATIC_KEY))))
    });
    g.bench_function("gate_static", |b| {
        b.iter(|| black_box(gate.handle(black_box(&p_static), Some(ip))))
    });
    g.finish();
    drop(gate);
    drop(recorder);
    let s = guard.shutdown(Duration::from_secs(10));
    print_stats("tagged_table final stats", &s);
}

fn bench_click_parts(c: &mut Criterion) {
    let (recorder, guard) = ClickRecorder::builder(())
        .capacity(1 << 18)
        .max_batch(1024)
        .spawn()
        .unwrap();
    let click = realistic_click(FIXED_MS);
    let mut g = c.benchmark_group("click_parts");
    g.bench_function("click_clone", |b| {
        b.iter(|| black_box(black_box(&click).clone()))
    });
    g.bench_function("record_prebuilt", |b| {
        b.iter(|| black_box(recorder.record(black_box(&click).clone())))
    });
    g.finish();
    drop(recorder);
    let s = guard.shutdown(Duration::from_secs(10));
    print_stats("click_parts final stats", &s);
}

fn bench_click_id(c: &mut Criterion) {
    let mut g = c.benchmark_group("click_id");
    g.bench_function("generate", |b| b.iter(|| black_box(ClickId::generate())));
    g.bench_function("at_fixed_ms", |b| {
        b.iter(|| black_box(ClickId::at(black_box(FIXED_MS))))
    });
    g.bench_function("clock_fast_now_ms", |b| {
        b.iter(|| black_box(linkgate::fast_now_ms()))
    });
    g.bench_function("clock_system_now_ms", |b| {
        b.iter(|| black_box(linkgate::system_now_ms()))
    });
    g.finish();
}

fn bench_json(c: &mut Criterion) {
    let click = realistic_click(FIXED_MS);
    let mut buf = Vec::with_capacity(1024);
    click.write_json(&mut buf);
    println!(
        "json: one realistic click = {} bytes: {}",
        buf.len(),
        String::from_utf8_lossy(&buf)
    );
    let mut g = c.benchmark_group("json");
    g.throughput(Throughput::Bytes(buf.len() as u64));
    g.bench_function("write_json", |b| {
        b.iter(|| {
            buf.clear();
            black_box(&click).write_json(&mut buf);
            black_box(buf.len())
        })
    });
    g.finish();
}

fn bench_jsonl_sink(c: &mut Criterion) {
    let path = std::env::temp_dir().join(format!("linkgate-bench-{}.jsonl", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let mut sink = JsonLinesSink::open(&path).unwrap();
    let trunc = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    let batch: Vec<Click> = (0..1024).map(|i| realistic_click(FIXED_MS + i)).collect();
    let mut g = c.benchmark_group("jsonl_sink");
    g.throughput(Throughput::Elements(batch.len() as u64));
    g.bench_function("write_1024", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                if std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0) > 64 << 20 {
                    trunc.set_len(0).unwrap();
                }
                let t = Instant::now();
                sink.write(black_box(&batch)).unwrap();
                total += t.elapsed();
            }
            total
        })
    });
    g.finish();
    let _ = std::fs::remove_file(&path);
}

// ---------------------------------------------------------------------------------------------
// Custom sections

/// `utime + stime` (clock ticks) and voluntary/involuntary context switches of the thread named
/// `name` in this process.
fn thread_cpu(name: &str) -> Option<(u64, u64, u64)> {
    for e in std::fs::read_dir("/proc/self/task").ok()? {
        let dir = e.ok()?.path();
        let comm = std::fs::read_to_string(dir.join("comm")).ok()?;
        if comm.trim() != name {
            continue;
        }
        let stat = std::fs::read_to_string(dir.join("stat")).ok()?;
        let rest = &stat[stat.rfind(')')? + 2..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        // After `comm`: field 3 is index 0; utime = field 14, stime = field 15.
        let ticks = f[11].parse::<u64>().ok()? + f[12].parse::<u64>().ok()?;
        let status = std::fs::read_to_string(dir.join("status")).ok()?;
        let get = |k: &str| {
            status
                .lines()
                .find(|l| l.starts_with(k))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        return Some((
            ticks,
            get("voluntary_ctxt_switches:"),
            get("nonvoluntary_ctxt_switches:"),
        ));
    }
    None
}

fn drain_cost(dur: Duration) {
    println!("\n== drain_cost: gate.handle(static) on one thread for {dur:?}, drain into () ==");
    let table = table();
    let (recorder, guard) = ClickRecorder::builder(())
        .capacity(1 << 18)
        .max_batch(1024)
        .spawn()
        .unwrap();
    let gate = Gate::builder(table, recorder.clone())
        .prefix("/go/")
        .build();
    let p = parts(STATIC_KEY);
    let ip = ip();
    // Warm up.
    for _ in 0..100_000 {
        black_box(gate.handle(&p, Some(ip)));
    }
    std::thread::sleep(Duration::from_millis(200));
    let before = thread_cpu("linkgate-drain");
    let s0 = recorder.stats();
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < dur {
        for _ in 0..1024 {
            black_box(gate.handle(black_box(&p), Some(ip)));
        }
        n += 1024;
    }
    let el = start.elapsed();
    // Let the drain catch up before reading its CPU time.
    while recorder.stats().queue_len > 0 {
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(150));
    let after = thread_cpu("linkgate-drain");
    let s1 = recorder.stats();
    println!(
        "request thread: {n} requests in {:.3} s = {:.1} ns/request ({:.2} M req/s)",
        el.as_secs_f64(),
        el.as_nanos() as f64 / n as f64,
        n as f64 / el.as_secs_f64() / 1e6
    );
    if let (Some(b), Some(a)) = (before, after) {
        let tick_ns = 1e9 / 100.0; // USER_HZ = 100 on Linux
        let cpu_ns = (a.0 - b.0) as f64 * tick_ns;
        println!(
            "drain thread: {:.0} ms CPU = {:.1} ns CPU per click (10 ms tick resolution); \
             {} voluntary + {} involuntary context switches ({:.0}/s); {} batches ({:.0} clicks/batch)",
            cpu_ns / 1e6,
            cpu_ns / n as f64,
            a.1 - b.1,
            a.2 - b.2,
            (a.1 - b.1 + a.2 - b.2) as f64 / el.as_secs_f64(),
            s1.batches - s0.batches,
            (s1.delivered - s0.delivered) as f64 / (s1.batches - s0.batches).max(1) as f64
        );
    } else {
        println!("drain thread: /proc/self/task not readable");
    }
    drop(gate);
    drop(recorder);
    let s = guard.shutdown(Duration::from_secs(10));
    print_stats("drain_cost final stats", &s);
}

/// Latency histogram: 1 ns buckets up to 100 µs, then an overflow count and the max.
struct Hist {
    b: Vec<u64>,
    over: u64,
    max: u64,
    n: u64,
}

impl Hist {
    const LIMIT: usize = 100_000;
    fn new() -> Hist {
        Hist {
            b: vec![0; Self::LIMIT],
            over: 0,
            max: 0,
            n: 0,
        }
    }
    fn add(&mut self, ns: u64) {
        self.n += 1;
        self.max = self.max.max(ns);
        match self.b.get_mut(ns as usize) {
            Some(c) => *c += 1,
            None => self.over += 1,
        }
    }
    fn merge(&mut self, o: &Hist) {
        for (a, b) in self.b.iter_mut().zip(&o.b) {
            *a += b;
        }
        self.over += o.over;
        self.max = self.max.max(o.max);
        self.n += o.n;
    }
    fn pct(&self, p: f64) -> String {
        let want = ((self.n as f64) * p).ceil() as u64;
        let mut acc = 0;
        for (ns, c) in self.b.iter().enumerate() {
            acc += c;
            if acc >= want {
                return format!("{ns} ns");
            }
        }
        format!("> {} µs", Self::LIMIT / 1000)
    }
}

struct Producer {
    hist: Hist,
    queued: u64,
    dropped: u64,
    closed: u64,
    /// Context switches of the producer thread during the run (voluntary = it blocked).
    voluntary: u64,
    involuntary: u64,
}

/// `threads` producers recording clones of `click` into `recorder` until `stop`.
fn produce(
    recorder: &ClickRecorder,
    click: &Click,
    stop: &AtomicBool,
    start: &Barrier,
    timed: bool,
) -> Producer {
    let mut p = Producer {
        hist: Hist::new(),
        queued: 0,
        dropped: 0,
        closed: 0,
        voluntary: 0,
        involuntary: 0,
    };
    start.wait();
    let before = ctx_switches("/proc/thread-self/status");
    while !stop.load(Ordering::Relaxed) {
        for _ in 0..256 {
            let c = click.clone();
            let r = if timed {
                let t = Instant::now();
                let r = recorder.record(c);
                p.hist.add(t.elapsed().as_nanos() as u64);
                r
            } else {
                recorder.record(c)
            };
            match r {
                Recorded::Queued => p.queued += 1,
                Recorded::Dropped => p.dropped += 1,
                _ => p.closed += 1,
            }
        }
    }
    let after = ctx_switches("/proc/thread-self/status");
    p.voluntary = after.0.saturating_sub(before.0);
    p.involuntary = after.1.saturating_sub(before.1);
    p
}

/// (voluntary, involuntary) context switches from a `/proc/.../status` file.
fn ctx_switches(status: &str) -> (u64, u64) {
    let s = std::fs::read_to_string(status).unwrap_or_default();
    let get = |k: &str| {
        s.lines()
            .find(|l| l.starts_with(k))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    (
        get("voluntary_ctxt_switches:"),
        get("nonvoluntary_ctxt_switches:"),
    )
}

fn run_producers(
    recorder: &ClickRecorder,
    click: &Click,
    threads: usize,
    dur: Duration,
    timed: bool,
) -> (Vec<Producer>, Duration) {
    let stop = AtomicBool::new(false);
    let start = Barrier::new(threads + 1);
    std::thread::scope(|s| {
        let hs: Vec<_> = (0..threads)
            .map(|_| s.spawn(|| produce(recorder, click, &stop, &start, timed)))
            .collect();
        start.wait();
        let t = Instant::now();
        std::thread::sleep(dur);
        stop.store(true, Ordering::Relaxed);
        let ps: Vec<Producer> = hs.into_iter().map(|h| h.join().unwrap()).collect();
        (ps, t.elapsed())
    })
}

fn flood(dur: Duration) {
    println!("\n== flood: 2 producers, sink ~10x slower than recording, {dur:?} ==");
    let click = realistic_click(FIXED_MS);

    // Timer overhead: an empty Instant pair.
    let mut h = Hist::new();
    for _ in 0..1_000_000 {
        let t = Instant::now();
        h.add(black_box(t).elapsed().as_nanos() as u64);
    }
    println!(
        "timer overhead (empty Instant::now + elapsed): p50 {} p99 {}",
        h.pct(0.5),
        h.pct(0.99)
    );

    // Calibration: the same 2 producers, timed the same way, against a pipeline that is full
    // almost all the time (capacity 1 024, a sink that sleeps 50 ms per batch): the rate at which
    // they record when the sink cannot keep up, which the slow sink is then set against.
    let (rec, guard) = ClickRecorder::builder(|_: &[Click]| -> Result<(), SinkError> {
        std::thread::sleep(Duration::from_millis(50));
        Ok(())
    })
    .capacity(1024)
    .max_batch(1024)
    .spawn()
    .unwrap();
    let (ps, el) = run_producers(&rec, &click, 2, Duration::from_millis(500), true);
    drop(rec);
    let cal = guard.shutdown(Duration::from_secs(10));
    let n: u64 = ps.iter().map(|p| p.queued + p.dropped + p.closed).sum();
    let mut hc = Hist::new();
    for p in &ps {
        hc.merge(&p.hist);
    }
    let per_click = el.as_nanos() as f64 / n as f64;
    println!(
        "calibration (full pipeline): {n} records in {:.3} s = {:.1} ns wall per click over both \
         producers ({:.2} M/s); per-call p50 {} p99 {}; dropped {} of {}",
        el.as_secs_f64(),
        per_click,
        n as f64 / el.as_secs_f64() / 1e6,
        hc.pct(0.5),
        hc.pct(0.99),
        cal.dropped,
        cal.recorded
    );

    // The same producers with a large channel and a no-op sink: the Queued path, for reference.
    let (rec, guard) = ClickRecorder::builder(())
        .capacity(1 << 18)
        .spawn()
        .unwrap();
    let (ps, el) = run_producers(&rec, &click, 2, Duration::from_millis(500), true);
    drop(rec);
    let q = guard.shutdown(Duration::from_secs(10));
    let mut hq = Hist::new();
    for p in &ps {
        hq.merge(&p.hist);
    }
    println!(
        "reference (no-op sink, never full): {:.2} M records/s over both producers; per-call p50 {} \
         p99 {} p99.9 {}; dropped {}",
        hq.n as f64 / el.as_secs_f64() / 1e6,
        hq.pct(0.5),
        hq.pct(0.99),
        hq.pct(0.999),
        q.dropped
    );

    // The slow sink: 10 × per_click per click of each batch, paced against a running deadline
    // (sleep until `due`, then push `due` on by the batch's share), so oversleeping and the
    // drain's own overhead do not make it slower than intended.
    let sink_ns_per_click = 10.0 * per_click;
    let mut due: Option<Instant> = None;
    let sink = move |batch: &[Click]| -> Result<(), SinkError> {
        let now = Instant::now();
        let d = due.get_or_insert(now);
        *d += Duration::from_nanos((sink_ns_per_click * batch.len() as f64) as u64);
        if *d > now {
            std::thread::sleep(*d - now);
        }
        Ok(())
    };
    let (rec, guard) = ClickRecorder::builder(sink).spawn().unwrap(); // defaults: 65 536 / 1 024
    let (ps, el) = run_producers(&rec, &click, 2, dur, true);
    let at_stop = rec.stats();
    drop(rec);
    let t = Instant::now();
    let s = guard.shutdown(Duration::from_secs(30));
    let shutdown = t.elapsed();
    let mut hist = Hist::new();
    let (mut queued, mut dropped, mut closed) = (0, 0, 0);
    for p in &ps {
        hist.merge(&p.hist);
        queued += p.queued;
        dropped += p.dropped;
        closed += p.closed;
    }
    let secs = el.as_secs_f64();
    println!(
        "sink: paced at {:.0} ns per click (10 x {:.1} ns); default capacity 65 536, max_batch 1 024",
        sink_ns_per_click, per_click
    );
    println!(
        "producers: {} records in {:.3} s ({:.2} M/s); delivered by the stop {} ({:.3} M/s) -> \
         recording/delivery ratio {:.1}x",
        hist.n,
        secs,
        hist.n as f64 / secs / 1e6,
        at_stop.delivered,
        at_stop.delivered as f64 / secs / 1e6,
        (hist.n as f64) / (at_stop.delivered.max(1) as f64)
    );
    println!(
        "record latency per call (Instant around each call, timer overhead included): \
         p50 {} p90 {} p99 {} p99.9 {} p99.99 {} max {} ns; > 1 µs: {} calls ({:.4}%)",
        hist.pct(0.5),
        hist.pct(0.9),
        hist.pct(0.99),
        hist.pct(0.999),
        hist.pct(0.9999),
        hist.max,
        hist.b[1001..].iter().sum::<u64>() + hist.over,
        (hist.b[1001..].iter().sum::<u64>() + hist.over) as f64 * 100.0 / hist.n as f64
    );
    println!("producers saw: Queued {queued}, Dropped {dropped}, Closed {closed}");
    println!(
        "producer threads' context switches during the run: voluntary {} (a blocking record would \
         show here), involuntary {} (preemption)",
        ps.iter().map(|p| p.voluntary).sum::<u64>(),
        ps.iter().map(|p| p.involuntary).sum::<u64>()
    );
    println!("shutdown took {:.1} ms", shutdown.as_secs_f64() * 1e3);
    print_stats("flood final stats", &s);
    let ok = s.dropped == s.recorded - s.delivered - s.failed
        && s.in_flight == 0
        && s.recorded == queued + dropped + closed
        && s.dropped == dropped + closed
        && s.delivered == queued;
    println!(
        "check: dropped ({}) == recorded - delivered - failed ({} - {} - {} = {}); in_flight 0; \
         producers' counts match Stats: {}",
        s.dropped,
        s.recorded,
        s.delivered,
        s.failed,
        s.recorded - s.delivered - s.failed,
        if ok { "OK" } else { "MISMATCH" }
    );
}

// ---------------------------------------------------------------------------------------------

fn main() {
    let bench_mode = std::env::args().any(|a| a == "--bench");
    let filter = filter_arg();
    let mut c = Criterion::default().configure_from_args();
    bench_gate_vs_resolve(&mut c);
    bench_tagged_table(&mut c);
    bench_click_parts(&mut c);
    bench_click_id(&mut c);
    bench_json(&mut c);
    bench_jsonl_sink(&mut c);
    let runs = |name: &str| filter.as_deref().is_none_or(|f| name.contains(f));
    let dur = if bench_mode {
        Duration::from_secs(3)
    } else {
        Duration::from_millis(100)
    };
    if runs("drain_cost") {
        drain_cost(dur);
    }
    if runs("flood") {
        flood(dur);
    }
    c.final_summary();
}
