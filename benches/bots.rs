//! Bot-detection benchmarks for `BotDetector` (see BENCHMARKS.md, "Bot detection").
//!
//! Run: `cargo bench --bench bots -- --warm-up-time 1 --measurement-time 3`
//!
//! Criterion group `bots` (default detector: bundled patterns, case-sensitive):
//! - `chrome_desktop`, `iphone_safari`, `googlebot`: one `classify_ua` per iteration;
//! - `browser_list_952`: all 952 browser User-Agents of `tests/data` per iteration (divide by 952
//!   for the per-UA average, printed below);
//! - `ci_chrome_desktop`, `ci_browser_list_952`: the same with `case_insensitive(true)`;
//! - `no_prefilter_chrome_desktop`, `no_prefilter_browser_list_952`: `prefilter(false)`, i.e.
//!   the Aho-Corasick automaton and the `RegexSet` on every User-Agent.
//!
//! After the group, a custom section prints the per-UA average over the browser list and the
//! crawler instances, the build time of the bundled detector and its heap size (a counting
//! global allocator: bytes live after `build`, and after classifying both lists, which fills
//! the `RegexSet`'s lazy-DFA cache).

mod common;
use common::filter_arg;

use std::hint::black_box;
use std::time::Instant;

use criterion::{Criterion, Throughput};
use linkgate::{BotDetector, UaClass};

#[path = "common/counting_alloc.rs"]
mod counting_alloc;

const CHROME: &[u8] = b"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36";
const IPHONE: &[u8] = b"Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1";
const GOOGLEBOT: &[u8] =
    b"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";

fn browsers() -> Vec<&'static [u8]> {
    include_str!("../tests/data/browser-user-agents.txt")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::as_bytes)
        .collect()
}

fn crawler_instances() -> Vec<String> {
    let v: serde_json::Value =
        serde_json::from_str(include_str!("../tests/data/crawler-user-agents.json")).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e.get("instances").and_then(|i| i.as_array()))
        .flatten()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect()
}

fn per_ua_ns(d: &BotDetector, uas: &[&[u8]], passes: usize) -> f64 {
    let start = Instant::now();
    for _ in 0..passes {
        for ua in uas {
            black_box(d.classify_ua(black_box(ua)));
        }
    }
    start.elapsed().as_nanos() as f64 / (passes * uas.len()) as f64
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let d = BotDetector::default();
    let ci = BotDetector::builder()
        .case_insensitive(true)
        .build()
        .unwrap();
    let full = BotDetector::builder().prefilter(false).build().unwrap();
    let list = browsers();
    assert!(list.iter().all(|ua| d.classify_ua(ua).is_human()));
    assert_eq!(d.classify_ua(GOOGLEBOT).class, UaClass::Bot);

    let mut g = c.benchmark_group("bots");
    g.bench_function("chrome_desktop", |b| {
        b.iter(|| d.classify_ua(black_box(CHROME)))
    });
    g.bench_function("iphone_safari", |b| {
        b.iter(|| d.classify_ua(black_box(IPHONE)))
    });
    g.bench_function("googlebot", |b| {
        b.iter(|| d.classify_ua(black_box(GOOGLEBOT)))
    });
    g.bench_function("ci_chrome_desktop", |b| {
        b.iter(|| ci.classify_ua(black_box(CHROME)))
    });
    g.bench_function("no_prefilter_chrome_desktop", |b| {
        b.iter(|| full.classify_ua(black_box(CHROME)))
    });
    g.throughput(Throughput::Elements(list.len() as u64));
    g.bench_function("browser_list_952", |b| {
        b.iter(|| {
            for ua in &list {
                black_box(d.classify_ua(black_box(ua)));
            }
        })
    });
    g.bench_function("ci_browser_list_952", |b| {
        b.iter(|| {
            for ua in &list {
                black_box(ci.classify_ua(black_box(ua)));
            }
        })
    });
    g.bench_function("no_prefilter_browser_list_952", |b| {
        b.iter(|| {
            for ua in &list {
                black_box(full.classify_ua(black_box(ua)));
            }
        })
    });
    g.finish();
    c.final_summary();

    // Custom section: averages, build time, heap.
    if filter_arg().is_some_and(|f| !"summary".contains(f.as_str())) {
        return;
    }
    let instances = crawler_instances();
    let instances: Vec<&[u8]> = instances.iter().map(|s| s.as_bytes()).collect();
    let avg_len = list.iter().map(|u| u.len()).sum::<usize>() as f64 / list.len() as f64;
    for (name, det) in [
        ("case-sensitive", &d),
        ("case-insensitive", &ci),
        ("no prefilter", &full),
    ] {
        per_ua_ns(det, &list, 20);
        let b = per_ua_ns(det, &list, 300);
        per_ua_ns(det, &instances, 20);
        let i = per_ua_ns(det, &instances, 300);
        println!(
            "summary {name}: browser list {b:.1} ns/UA (avg {avg_len:.0} B), crawler instances {i:.1} ns/UA"
        );
    }

    let mut builds = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        black_box(BotDetector::builder().build().unwrap());
        builds.push(t.elapsed().as_secs_f64() * 1e3);
    }
    builds.sort_by(f64::total_cmp);
    println!("summary build (bundled list): median {:.1} ms", builds[2]);

    for ci_mode in [false, true] {
        let before = counting_alloc::live() as isize;
        let det = BotDetector::builder()
            .case_insensitive(ci_mode)
            .build()
            .unwrap();
        let built = counting_alloc::live() as isize - before;
        for ua in list.iter().chain(&instances) {
            black_box(det.classify_ua(ua));
        }
        let used = counting_alloc::live() as isize - before;
        println!(
            "summary heap (case_insensitive={ci_mode}): {:.2} MB after build, {:.2} MB after classifying both lists",
            built as f64 / 1e6,
            used as f64 / 1e6
        );
        drop(det);
    }
}
