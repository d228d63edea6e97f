//! Unique-click and click-flood state benchmarks (see BENCHMARKS.md, "Unique clicks and floods").
//!
//! Run: `cargo bench --features fraud --bench fraud -- --warm-up-time 1 --measurement-time 3`
//!
//! Both structures are built with their defaults (UniqueFilter 56 MiB, FloodDetector 8 MiB) and
//! filled first: 10 M distinct visitors spread over 24 h, and 10 M distinct sources within the
//! last minute. Criterion group `fraud`, one call per iteration:
//! - `visitor_key_new` (hash address + 111-byte User-Agent + key) against `baseline_foldhash`
//!   (foldhash of the same bytes);
//! - `unique_new_visitor` (a fresh visitor each call: the block is a cache miss in 56 MiB) and
//!   `unique_repeat` (the same visitor: duplicate path, cache-resident) against
//!   `baseline_random_load` (one load at a random index of a 56 MiB `Vec<u64>`: the memory
//!   latency floor of any structure this size, overlapped across calls),
//!   `baseline_random_fetch_or` (one atomic `fetch_or` there: the floor of any lock-free
//!   structure that writes a random line; the lock prefix waits for the miss) and
//!   `baseline_hashset_insert` (foldhash
//!   `HashSet<u64>` insert into a set kept at 1 024 entries: cache-resident);
//! - `flood_new_source`, `flood_per_key_new_source` (fresh sources: 4 cache misses),
//!   `flood_rows2_new_source` (the same with `rows(2)`, filled the same way: 2 misses) and
//!   `flood_repeat` (one source, flagged) against the same baselines, and
//!   `flood_repeat_contended` (that source checked by a second thread at the same time).
//!
//! After the group, a custom section measures the same calls in alternating loops of 1 M calls
//! (5 passes, median) and prints each as a ratio to the `random_fetch_or` and `foldhash`
//! baselines of the same run; then the memory
//! (`memory_bytes()` and the heap counted by a global allocator) before and after filling, and
//! the time of one unique-filter rotation (clearing one generation).

mod common;
use common::filter_arg;

use std::collections::HashSet;
use std::hash::{BuildHasher, Hasher};
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use criterion::{Criterion, Throughput};
use linkgate::{FloodDetector, UniqueFilter, VisitorKey};

#[path = "common/counting_alloc.rs"]
mod counting_alloc;

const CHROME: &[u8] = b"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36";
const KEY: &[u8] = b"/go/summer-deal";
const HOUR: i64 = 3_600_000;
/// 2027-01-15 08:00 UTC, on a 4 h bucket boundary.
const T0: i64 = 1_800_000_000_000 / (4 * HOUR) * (4 * HOUR);
const VISITORS: u64 = 10_000_000;

fn mix(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

/// The state after a steady day: 10 M visitors over the 24 h before `now`, and 10 M sources
/// over the minute before `now`.
fn filled() -> (UniqueFilter, FloodDetector, i64) {
    let unique = UniqueFilter::default();
    let flood = FloodDetector::default();
    let now = T0 + 24 * HOUR;
    for i in 0..VISITORS {
        let t = T0 + (i as i64 * 24 * HOUR) / VISITORS as i64;
        unique.check_and_insert(VisitorKey::from_hash(i), t);
    }
    for i in 0..VISITORS {
        let t = now - 60_000 + (i as i64 * 60_000) / VISITORS as i64;
        flood.check(IpAddr::V4(Ipv4Addr::from(i as u32)), None, t);
    }
    (unique, flood, now)
}

struct Baselines {
    array: Vec<u64>,
    atomics: Vec<AtomicU64>,
    set: HashSet<u64, foldhash::fast::FixedState>,
}

impl Baselines {
    fn new(bytes: usize) -> Self {
        Baselines {
            array: (0..bytes / 8).map(|i| i as u64).collect(),
            atomics: (0..bytes / 8).map(|_| AtomicU64::new(0)).collect(),
            set: HashSet::with_capacity_and_hasher(2048, foldhash::fast::FixedState::with_seed(1)),
        }
    }

    #[inline]
    fn random_load(&self, i: u64) -> u64 {
        let h = mix(i);
        let idx = ((u128::from(h) * self.array.len() as u128) >> 64) as usize;
        self.array[idx]
    }

    #[inline]
    fn random_fetch_or(&self, i: u64) -> u64 {
        let h = mix(i);
        let idx = ((u128::from(h) * self.atomics.len() as u128) >> 64) as usize;
        self.atomics[idx].fetch_or(h, Ordering::Relaxed)
    }

    #[inline]
    fn set_insert(&mut self, i: u64) -> bool {
        if self.set.len() >= 1024 {
            self.set.clear();
        }
        self.set.insert(i)
    }
}

fn foldhash_ua(seed: u64) -> u64 {
    let mut h = foldhash::fast::FixedState::with_seed(seed).build_hasher();
    h.write_u32(0xcb00_7100);
    h.write_usize(CHROME.len());
    h.write(CHROME);
    h.write(KEY);
    h.finish()
}

/// ns per call of `f(i)` over `n` calls with a fresh `i` each.
fn per_call(n: u64, start: u64, mut f: impl FnMut(u64)) -> f64 {
    let t = Instant::now();
    for i in start..start + n {
        f(i);
    }
    t.elapsed().as_nanos() as f64 / n as f64
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let before = counting_alloc::live() as isize;
    let (unique, flood, now) = filled();
    let heap_filled = counting_alloc::live() as isize - before;
    let mut base = Baselines::new(56 << 20);
    let ip = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 77));
    let repeat = VisitorKey::new(Some(ip), CHROME, KEY);
    unique.check_and_insert(repeat, now);

    let mut g = c.benchmark_group("fraud");
    g.throughput(Throughput::Elements(1));
    g.bench_function("visitor_key_new", |b| {
        b.iter(|| VisitorKey::new(black_box(Some(ip)), black_box(CHROME), black_box(KEY)))
    });
    g.bench_function("baseline_foldhash", |b| {
        b.iter(|| foldhash_ua(black_box(7)))
    });
    let mut next = 1u64 << 40;
    g.bench_function("unique_new_visitor", |b| {
        b.iter(|| {
            next += 1;
            unique.check_and_insert(VisitorKey::from_hash(black_box(next)), now)
        })
    });
    g.bench_function("unique_repeat", |b| {
        b.iter(|| unique.check_and_insert(black_box(repeat), now))
    });
    let mut i = 0u64;
    g.bench_function("baseline_random_load", |b| {
        b.iter(|| {
            i += 1;
            base.random_load(black_box(i))
        })
    });
    g.bench_function("baseline_random_fetch_or", |b| {
        b.iter(|| {
            i += 1;
            base.random_fetch_or(black_box(i))
        })
    });
    g.bench_function("baseline_hashset_insert", |b| {
        b.iter(|| {
            i += 1;
            base.set_insert(black_box(i))
        })
    });
    let mut src = 1u32 << 31;
    g.bench_function("flood_new_source", |b| {
        b.iter(|| {
            src = src.wrapping_add(1);
            flood.check(IpAddr::V4(Ipv4Addr::from(black_box(src))), None, now)
        })
    });
    let per_key = FloodDetector::builder().per_key(true).build().unwrap();
    g.bench_function("flood_per_key_new_source", |b| {
        b.iter(|| {
            src = src.wrapping_add(1);
            per_key.check(IpAddr::V4(Ipv4Addr::from(black_box(src))), Some(KEY), now)
        })
    });
    let rows2 = FloodDetector::builder().rows(2).build().unwrap();
    for i in 0..VISITORS {
        let t = now - 60_000 + (i as i64 * 60_000) / VISITORS as i64;
        rows2.check(IpAddr::V4(Ipv4Addr::from(i as u32)), None, t);
    }
    g.bench_function("flood_rows2_new_source", |b| {
        b.iter(|| {
            src = src.wrapping_add(1);
            rows2.check(IpAddr::V4(Ipv4Addr::from(black_box(src))), None, now)
        })
    });
    g.bench_function("flood_repeat", |b| {
        b.iter(|| flood.check(black_box(ip), None, now))
    });
    // The same flooding source checked from two threads at once, as when two request threads
    // serve one click flood: another thread checks it in a loop while this one is timed.
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                black_box(flood.check(black_box(ip), None, now));
            }
        });
        g.bench_function("flood_repeat_contended", |b| {
            b.iter(|| flood.check(black_box(ip), None, now))
        });
        stop.store(true, Ordering::Relaxed);
    });
    g.finish();
    c.final_summary();

    if filter_arg().is_some_and(|f| !"summary".contains(f.as_str())) {
        return;
    }
    summary(&unique, &flood, &per_key, &mut base, now, heap_filled);
}

fn summary(
    unique: &UniqueFilter,
    flood: &FloodDetector,
    per_key: &FloodDetector,
    base: &mut Baselines,
    now: i64,
    heap_filled: isize,
) {
    const N: u64 = 1_000_000;
    let ip = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 77));
    let repeat = VisitorKey::new(Some(ip), CHROME, KEY);
    let names = [
        "random_load",
        "random_fetch_or (baseline)",
        "hashset_insert",
        "foldhash (baseline)",
        "visitor_key_new",
        "unique_new_visitor",
        "unique_repeat",
        "flood_new_source",
        "flood_per_key_new_source",
        "flood_repeat",
    ];
    let mut runs: Vec<Vec<f64>> = vec![Vec::new(); names.len()];
    let mut fresh = 1u64 << 50;
    for _ in 0..5 {
        let r = [
            per_call(N, fresh, |i| {
                black_box(base.random_load(i));
            }),
            per_call(N, fresh, |i| {
                black_box(base.random_fetch_or(i));
            }),
            per_call(N, fresh, |i| {
                black_box(base.set_insert(i));
            }),
            per_call(N, fresh, |i| {
                black_box(foldhash_ua(i));
            }),
            per_call(N, fresh, |i| {
                black_box(VisitorKey::new(Some(ip), CHROME, &i.to_le_bytes()));
            }),
            per_call(N, fresh, |i| {
                black_box(unique.check_and_insert(VisitorKey::from_hash(i), now));
            }),
            per_call(N, fresh, |_| {
                black_box(unique.check_and_insert(black_box(repeat), now));
            }),
            per_call(N, fresh, |i| {
                // Sources the fill never used (it used 0..10 M).
                let src = IpAddr::V4(Ipv4Addr::from(i as u32 | 0x8000_0000));
                black_box(flood.check(src, None, now));
            }),
            per_call(N, fresh, |i| {
                let src = IpAddr::V4(Ipv4Addr::from(i as u32 | 0x8000_0000));
                black_box(per_key.check(src, Some(KEY), now));
            }),
            per_call(N, fresh, |_| {
                black_box(flood.check(black_box(ip), None, now));
            }),
        ];
        fresh += N;
        for (k, v) in r.into_iter().enumerate() {
            runs[k].push(v);
        }
    }
    let median = |v: &Vec<f64>| {
        let mut v = v.clone();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let rmw = median(&runs[1]);
    let fh = median(&runs[3]);
    for (name, v) in names.iter().zip(&runs) {
        let m = median(v);
        println!(
            "summary {name:26} {m:6.1} ns/call  ×{:.2} random_fetch_or  ×{:.2} foldhash",
            m / rmw,
            m / fh
        );
    }

    let mb = |b: usize| b as f64 / (1 << 20) as f64;
    println!(
        "summary memory: UniqueFilter {:.3} MiB + FloodDetector {:.3} MiB = {:.3} MiB (memory_bytes, \
         constant after 10 M visitors / 10 M sources); heap counted at build+fill: {:.3} MiB",
        mb(unique.memory_bytes()),
        mb(flood.memory_bytes()),
        mb(unique.memory_bytes() + flood.memory_bytes()),
        heap_filled as f64 / (1 << 20) as f64
    );
    println!(
        "summary unique FP predicted at 10 M/24 h: {:.3} %; flood ε = {:.2e}, δ = {:.3}",
        unique.false_positive_rate(10_000_000) * 100.0,
        flood.error_bound().0,
        flood.error_bound().1
    );

    // Rotation: the call that enters a new bucket clears one generation (one store per block).
    let mut times = Vec::new();
    for r in 1..=5 {
        let t = Instant::now();
        unique.rotate(now + r * 4 * HOUR);
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    println!(
        "summary unique rotation (clear one generation of {:.0} MiB): median {:.2} ms, max {:.2} ms (once per 4 h)",
        mb(unique.memory_bytes()),
        times[2],
        times[4]
    );
}
