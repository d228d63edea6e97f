//! The request path with click intelligence: `Gate::handle` for a link with 3 targeting rules, a
//! split, the bot check, and (last pair) the unique-visitor and flood checks at default sizes with
//! visitors from 1 M addresses, against the same gate on a plain link and against `resolve` alone,
//! all in one run (ratios are what to read on a shared machine). The `_ua_` pairs draw the
//! User-Agent from 952 real browser ones, to show the gate's per-thread User-Agent memo missing
//! (cycled) and under a skewed mix (Zipf). `_100k_per_min` runs the full gate on a clock that
//! advances 0.6 ms per request, so its unique and flood state sees 100 000 clicks per minute
//! (the flood sketch's design rate) rather than the millions per second of the loop, which
//! saturate the sketch: nearly every click of the other full-gate benches is flagged.
//!
//! `cargo bench --bench gate`

#[path = "common/click.rs"]
mod click;
use click::UA;
use std::hint::black_box;
use std::net::IpAddr;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use http::request::Parts;
use linkgate::{
    BotDetector, ClickRecorder, Decision, Device, FloodDetector, Gate, Link, LinkTable, Rule,
    UniqueFilter,
};

fn parts(path: &str) -> Parts {
    parts_ua(path, UA)
}

fn parts_ua(path: &str, ua: &str) -> Parts {
    http::Request::get(path)
        .header("host", "shop.example.com")
        .header(http::header::USER_AGENT, ua)
        .header(
            http::header::ACCEPT,
            "text/html,application/xhtml+xml,*/*;q=0.8",
        )
        .header(http::header::ACCEPT_LANGUAGE, "en-US,en;q=0.9")
        .header(http::header::REFERER, "https://news.example.org/article/1")
        .header("cf-ipcountry", "US")
        .body(())
        .unwrap()
        .into_parts()
        .0
}

fn table() -> LinkTable {
    let mut links: Vec<Link> = (0..100_000)
        .map(|i| {
            Link::new(
                format!("/go/l{i}"),
                format!("https://store.example/p/{i}?ref=aff"),
            )
            .unwrap()
        })
        .collect();
    links.push(Link::new("/go/plain", "https://store.example/p/plain?ref=aff_01").unwrap());
    // A desktop visitor from the US speaking English tries all three rules, then the split.
    links.push(
        Link::builder("/go/smart", "https://store.example/p/smart?ref=aff_01")
            .rule(Rule::new("ios", "https://apps.apple.com/app/id1").device(Device::Ios))
            .rule(
                Rule::new("android", "https://play.google.com/store/apps/details?id=x")
                    .device(Device::Android),
            )
            .rule(
                Rule::new("dach", "https://store.example/de/p/smart?ref=aff_01")
                    .country("DE")
                    .country("AT")
                    .country("CH")
                    .language("de"),
            )
            .variant("a", 50, "https://store.example/p/smart?ref=aff_01&v=a")
            .variant("b", 50, "https://store.example/p/smart?ref=aff_01&v=b")
            .build()
            .unwrap(),
    );
    LinkTable::from_links(links).unwrap()
}

fn bench(c: &mut Criterion) {
    let table = table();
    let (recorder, guard) = ClickRecorder::builder(())
        .capacity(1 << 18)
        .spawn()
        .unwrap();
    let country = http::HeaderName::from_static("cf-ipcountry");
    let plain_gate = Gate::builder(table.clone(), recorder.clone())
        .prefix("/go/")
        .country_header(country.clone())
        .build();
    let smart_gate = Gate::builder(table.clone(), recorder.clone())
        .prefix("/go/")
        .country_header(country)
        .bots(BotDetector::builder().build().unwrap())
        .build();
    // Every check, at default sizes.
    let full = || {
        Gate::builder(table.clone(), recorder.clone())
            .prefix("/go/")
            .country_header(http::HeaderName::from_static("cf-ipcountry"))
            .bots(BotDetector::builder().build().unwrap())
            .unique(UniqueFilter::builder().build().unwrap())
            .flood(FloodDetector::builder().build().unwrap())
    };
    let full_gate = full().build();
    // The same gate on a clock that advances 0.6 ms per request: the unique and flood state
    // see 100 000 clicks per minute, the rate the flood sketch's documented error bound is
    // given for (ε·T ≈ 8 at the default 8 MiB), instead of the millions per second this loop
    // runs at. At that speed (T ≈ 10⁸ per window) the sketch over-counts every source far
    // past the limit of 20, so nearly every click of `gate_smart_all_checks_varying_ip` is
    // flagged, reads all four rows and takes the flagged label set.
    fn clock_100k_per_min() -> i64 {
        static TICKS: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);
        1_800_000_000_000 + TICKS.fetch_add(1, std::sync::atomic::Ordering::Relaxed) * 3 / 5
    }
    let paced_gate = full().clock(clock_100k_per_min).build();
    // 1 M visitors from different addresses, cycled: the unique and flood state is touched at
    // random places, as in real traffic (one address would keep it in cache).
    let ips: Vec<IpAddr> = (0..1_000_000u32)
        .map(|i| IpAddr::from(std::net::Ipv4Addr::from(i.wrapping_mul(2_654_435_761))))
        .collect();
    let mut at = 0usize;
    let mut next_ip = move || {
        at = (at + 1) % ips.len();
        ips[at]
    };
    let ip: IpAddr = "203.0.113.77".parse().unwrap();
    // The 952 distinct real browser User-Agents of `tests/data`, for the gate's per-thread
    // User-Agent memo: cycled (no User-Agent comes back before 951 others: every lookup
    // misses, the memo's worst case) and drawn Zipf(s = 1) by rank in the file (the first
    // ≈ 13 % of requests, the first ten ≈ 39 %, the first 256 ≈ 83 %).
    let ua_parts: Vec<Parts> = include_str!("../tests/data/browser-user-agents.txt")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|ua| parts_ua("/go/smart", ua))
        .collect();
    let zipf: Vec<u16> = {
        let h: Vec<f64> = (1..=ua_parts.len())
            .scan(0.0, |acc, r| {
                *acc += 1.0 / r as f64;
                Some(*acc)
            })
            .collect();
        let total = h[h.len() - 1];
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        (0..1 << 16)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let u = (x >> 11) as f64 / (1u64 << 53) as f64 * total;
                h.partition_point(|&c| c < u).min(h.len() - 1) as u16
            })
            .collect()
    };
    let (mut cyc, mut zi) = (0usize, 0usize);
    let p_plain = parts("/go/plain");
    let p_smart = parts("/go/smart");
    match smart_gate.handle(&p_smart, Some(ip)) {
        Decision::Redirect(h) => assert!(h.redirect.location().to_str().unwrap().contains("&v=")),
        d => panic!("{d:?}"),
    }

    let mut g = c.benchmark_group("gate_intel");
    g.bench_function("resolve_request_plain", |b| {
        b.iter(|| black_box(table.resolve_request(black_box(&p_plain))))
    });
    g.bench_function("gate_plain_no_checks", |b| {
        b.iter(|| black_box(plain_gate.handle(black_box(&p_plain), Some(ip))))
    });
    g.bench_function("gate_smart_rules_split_no_checks", |b| {
        b.iter(|| black_box(plain_gate.handle(black_box(&p_smart), Some(ip))))
    });
    g.bench_function("gate_smart_rules_split_bots", |b| {
        b.iter(|| black_box(smart_gate.handle(black_box(&p_smart), Some(ip))))
    });
    g.bench_function("gate_plain_no_checks_varying_ip", |b| {
        b.iter(|| black_box(plain_gate.handle(black_box(&p_plain), Some(next_ip()))))
    });
    // The same checks with their state in cache (one visitor): what the checks cost as work,
    // without memory latency.
    g.bench_function("gate_smart_all_checks_one_ip", |b| {
        b.iter(|| black_box(full_gate.handle(black_box(&p_smart), Some(ip))))
    });
    g.bench_function("gate_smart_all_checks_varying_ip", |b| {
        b.iter(|| black_box(full_gate.handle(black_box(&p_smart), Some(next_ip()))))
    });
    g.bench_function("gate_smart_all_checks_varying_ip_100k_per_min", |b| {
        b.iter(|| black_box(paced_gate.handle(black_box(&p_smart), Some(next_ip()))))
    });
    g.bench_function("gate_smart_all_checks_varying_ip_ua_cycled", |b| {
        b.iter(|| {
            cyc = (cyc + 1) % ua_parts.len();
            black_box(full_gate.handle(black_box(&ua_parts[cyc]), Some(next_ip())))
        })
    });
    g.bench_function("gate_smart_all_checks_varying_ip_ua_zipf", |b| {
        b.iter(|| {
            zi = (zi + 1) % zipf.len();
            let p = &ua_parts[usize::from(zipf[zi])];
            black_box(full_gate.handle(black_box(p), Some(next_ip())))
        })
    });
    g.finish();
    println!("gate stats (full): {:?}", full_gate.stats());
    println!(
        "gate stats (full, 100k/min clock): {:?}",
        paced_gate.stats()
    );
    // How much of the process's anonymous memory the kernel put on transparent huge pages
    // (the unique filter and flood sketch ask for them: `MADV_HUGEPAGE`).
    if let Ok(r) = std::fs::read_to_string("/proc/self/smaps_rollup") {
        for l in r.lines().filter(|l| l.starts_with("Anon")) {
            println!("smaps_rollup {l}");
        }
    }
    drop((plain_gate, smart_gate, full_gate, paced_gate, recorder));
    let s = guard.shutdown(Duration::from_secs(10));
    println!(
        "clicks recorded {} delivered {} dropped {} (drops mean the drain fell behind: the \
         figures then include no channel-full cost difference)",
        s.recorded, s.delivered, s.dropped
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = bench
}
criterion_main!(benches);
