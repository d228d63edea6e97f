//! Resolve, read scaling and reload benchmarks for `LinkTable` (see BENCHMARKS.md).
//!
//! Run: `cargo bench --bench resolve -- --warm-up-time 1 --measurement-time 3`
//!
//! Criterion groups (medians in `target/criterion/<group>/<bench>/new/estimates.json`):
//! - `hit_100k`, `miss_100k`, `hit_1m`, `miss_1m`: one lookup per iteration over a pre-shuffled
//!   key list (cycling index), for `linkgate` (`LinkTable::resolve`, owned `Redirect`),
//!   `linkgate_reader` (`TableReader::resolve`, borrowed `Resolved`), `hashbrown_floor`
//!   (`hashbrown::HashMap<Box<str>, usize>::get`) and `rwlock_std` (`RwLock<std HashMap<String,
//!   String>>` read lock + get), all built from the same keys in the same run; `_dep` variants
//!   make each key's index depend on the previous answer (latency-bound);
//! - `scaling_1m`: `iter_custom`, 1 vs 2 scoped threads each doing `iters` resolves over its own
//!   shuffled key order (throughput = resolves/s over both threads);
//! - `reload_1m`: `prepare` + `swap` of 1M links from a prebuilt `Vec<Link>` (clone not timed);
//!   `nginx_map_parse` (the same links as one nginx `map` text, parsed); and
//!   `nginx_map_parse_prepare_swap` (parse + prepare + swap, two maps with every target different
//!   taking turns: a file reload);
//! - `hit_100k_tagged`: `resolve` hits on a 100k table whose links each carry one tag.
//!
//! After the criterion groups a custom section prints resolve latency percentiles (per-resolve
//! ns of batches of 64 resolves) idle, beside a spinning thread (control for CPU contention) and
//! while another thread reloads 1M links in a loop; it runs unless a filter is given that is not a
//! substring of `p99_reload`. A `scaling_ab` section (same rule) alternates 1 and 2 threads in
//! pairs and prints each pair's ratio, beside the bare map as a control, with the CPU time other
//! processes used meanwhile (the bench machine is shared).

mod common;
use common::filter_arg;

use std::collections::HashMap as StdHashMap;
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Barrier, Mutex, RwLock};
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, SamplingMode, Throughput};
use linkgate::{Format, Link, LinkTable};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

const BATCH: usize = 64;

// ---------------------------------------------------------------------------------------------
// Data: keys ~19 B (`/go/aff-0123456-xyz`), targets ~61 B
// (`https://store.example.com/p/0123456?ref=aff_0042&utm=abcdefgh`).

fn letters(rng: &mut StdRng, n: usize) -> String {
    (0..n)
        .map(|_| rng.random_range(b'a'..=b'z') as char)
        .collect()
}

fn key(i: usize, rng: &mut StdRng) -> String {
    format!("/go/aff-{i:07}-{}", letters(rng, 3))
}

fn target(i: usize, rng: &mut StdRng) -> String {
    format!(
        "https://store.example.com/p/{i:07}?ref=aff_{:04}&utm={}",
        i % 10_000,
        letters(rng, 8)
    )
}

/// Fresh `String`s in a random order (allocated in that order, so the list itself is read
/// sequentially; only the table side is random access).
fn shuffled(keys: &[String], rng: &mut StdRng) -> Vec<String> {
    let mut idx: Vec<usize> = (0..keys.len()).collect();
    idx.shuffle(rng);
    idx.into_iter()
        .map(|i| keys[i].as_str().to_owned())
        .collect()
}

struct Data {
    n: usize,
    links: Vec<Link>,
    table: LinkTable,
    floor: hashbrown::HashMap<Box<str>, usize>,
    naive: RwLock<StdHashMap<String, String>>,
    /// Every key of the table, shuffled.
    hits: Vec<String>,
    /// The same keys in another shuffled order (second thread).
    hits2: Vec<String>,
    /// `n` keys of the same shape that are not in the table, shuffled.
    misses: Vec<String>,
    /// The miss keys in another shuffled order (second thread).
    misses2: Vec<String>,
}

impl Data {
    fn new(n: usize) -> Data {
        let mut rng = StdRng::seed_from_u64(0x6c69_6e6b + n as u64);
        let keys: Vec<String> = (0..n).map(|i| key(i, &mut rng)).collect();
        let targets: Vec<String> = (0..n).map(|i| target(i, &mut rng)).collect();
        let miss_keys: Vec<String> = (0..n).map(|i| key(n + i, &mut rng)).collect();
        let links: Vec<Link> = keys
            .iter()
            .zip(&targets)
            .map(|(k, t)| Link::new(k.as_str(), t.as_str()).unwrap())
            .collect();
        let table = LinkTable::new();
        table.reload(links.clone()).unwrap();
        let floor: hashbrown::HashMap<Box<str>, usize> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| (Box::from(k.as_str()), i))
            .collect();
        let naive: StdHashMap<String, String> =
            keys.iter().cloned().zip(targets.iter().cloned()).collect();
        let hits = shuffled(&keys, &mut rng);
        let hits2 = shuffled(&keys, &mut rng);
        let misses = shuffled(&miss_keys, &mut rng);
        let misses2 = shuffled(&miss_keys, &mut rng);
        // Sanity: every contender answers the same way.
        for k in hits.iter().take(1000) {
            assert!(table.resolve(k).matched());
            assert!(floor.contains_key(k.as_str()));
            assert!(naive.contains_key(k.as_str()));
        }
        for k in misses.iter().take(1000) {
            assert!(table.resolve(k).is_default());
            assert!(!floor.contains_key(k.as_str()));
        }
        Data {
            n,
            links,
            table,
            floor,
            naive: RwLock::new(naive),
            hits,
            hits2,
            misses,
            misses2,
        }
    }

    fn label(&self) -> &'static str {
        match self.n {
            100_000 => "100k",
            1_000_000 => "1m",
            _ => "n",
        }
    }
}

/// A cycling index over a key list; survives across criterion samples so every key is used.
struct Cycle<'a> {
    keys: &'a [String],
    i: usize,
}

impl<'a> Cycle<'a> {
    fn new(keys: &'a [String]) -> Self {
        Cycle { keys, i: 0 }
    }
    #[inline(always)]
    fn next(&mut self) -> &'a str {
        let k = &self.keys[self.i];
        self.i += 1;
        if self.i == self.keys.len() {
            self.i = 0;
        }
        k
    }
    /// Like `next`, with the index XORed with `dep` (always 0): a data dependency on the
    /// previous lookup's answer.
    #[inline(always)]
    fn next_dep(&mut self, dep: usize) -> &'a str {
        let k = &self.keys[self.i ^ dep];
        self.i += 1;
        if self.i == self.keys.len() {
            self.i = 0;
        }
        k
    }
}

// ---------------------------------------------------------------------------------------------
// Criterion groups.

fn bench_lookups(c: &mut Criterion, d: &Data) {
    for (kind, keys) in [("hit", &d.hits), ("miss", &d.misses)] {
        let mut g = c.benchmark_group(format!("{kind}_{}", d.label()));
        g.throughput(Throughput::Elements(1));
        g.bench_function("linkgate", |b| {
            let mut cy = Cycle::new(keys);
            b.iter(|| black_box(d.table.resolve(cy.next())))
        });
        g.bench_function("linkgate_reader", |b| {
            let mut cy = Cycle::new(keys);
            let mut reader = d.table.reader();
            b.iter(|| {
                let r = reader.resolve(cy.next());
                black_box((r.status(), r.location().as_bytes().as_ptr(), r.index()));
            })
        });
        g.bench_function("hashbrown_floor", |b| {
            let mut cy = Cycle::new(keys);
            b.iter(|| black_box(d.floor.get(cy.next()).copied()))
        });
        g.bench_function("rwlock_std", |b| {
            let mut cy = Cycle::new(keys);
            b.iter(|| {
                let k = cy.next();
                let map = d.naive.read().unwrap();
                black_box(map.get(k).map(|t| t.as_ptr()))
            })
        });
        if kind == "hit" {
            // Latency-bound variants: the next key's index depends on the previous answer (XOR
            // with `answer & mask`, mask = 0 hidden from the compiler), so the CPU cannot overlap
            // the cache misses of consecutive lookups.
            g.bench_function("linkgate_dep", |b| {
                let mask = black_box(0usize);
                let (mut cy, mut dep) = (Cycle::new(keys), 0usize);
                b.iter(|| {
                    let r = d.table.resolve(cy.next_dep(dep));
                    dep = r.location().len() & mask;
                    r
                })
            });
            g.bench_function("linkgate_reader_dep", |b| {
                let mask = black_box(0usize);
                let (mut cy, mut dep) = (Cycle::new(keys), 0usize);
                let mut reader = d.table.reader();
                b.iter(|| {
                    let r = reader.resolve(cy.next_dep(dep));
                    dep = r.location().len() & mask;
                    black_box((r.status(), r.location().as_bytes().as_ptr(), r.index()));
                })
            });
            g.bench_function("hashbrown_floor_dep", |b| {
                let mask = black_box(0usize);
                let (mut cy, mut dep) = (Cycle::new(keys), 0usize);
                b.iter(|| {
                    let v = d.floor.get(cy.next_dep(dep)).copied();
                    dep = v.unwrap_or(0) & mask;
                    v
                })
            });
        }
        g.finish();
    }
}

/// Same keys and targets, every link carrying one tag (`campaign=summer`, no time window):
/// affiliate tables usually tag their links.
fn bench_tagged(c: &mut Criterion, d: &Data) {
    let tagged: Vec<Link> = d
        .links
        .iter()
        .map(|l| {
            Link::builder(l.key(), l.target())
                .tag("campaign", "summer")
                .build()
                .unwrap()
        })
        .collect();
    let table = LinkTable::new();
    table.reload(tagged).unwrap();
    let mut g = c.benchmark_group(format!("hit_{}_tagged", d.label()));
    g.throughput(Throughput::Elements(1));
    g.bench_function("linkgate", |b| {
        let mut cy = Cycle::new(&d.hits);
        b.iter(|| black_box(table.resolve(cy.next())))
    });
    g.finish();
}

/// Runs `iters` lookups on each of `orders.len()` scoped threads, each over its own key order
/// from its own persistent position. Time = first start to last end (after a barrier; thread
/// spawn is not timed).
fn run_threads<F>(orders: &[&[String]], pos: &mut [usize], iters: u64, f: &F) -> Duration
where
    F: Fn(&str) + Sync,
{
    let barrier = Barrier::new(orders.len());
    let spans: Vec<(Instant, Instant)> = std::thread::scope(|s| {
        let handles: Vec<_> = orders
            .iter()
            .zip(pos.iter_mut())
            .map(|(keys, p)| {
                let barrier = &barrier;
                s.spawn(move || {
                    let mut cy = Cycle { keys, i: *p };
                    f(keys[0].as_str()); // registers this thread's arc-swap slot
                    barrier.wait();
                    let t0 = Instant::now();
                    for _ in 0..iters {
                        f(cy.next());
                    }
                    let t1 = Instant::now();
                    *p = cy.i;
                    (t0, t1)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let start = spans.iter().map(|s| s.0).min().unwrap();
    let end = spans.iter().map(|s| s.1).max().unwrap();
    end - start
}

fn bench_scaling(c: &mut Criterion, d: &Data) {
    let mut g = c.benchmark_group(format!("scaling_{}", d.label()));
    let resolve = |k: &str| {
        black_box(d.table.resolve(k));
    };
    let floor = |k: &str| {
        black_box(d.floor.get(k).copied());
    };
    for threads in [1usize, 2] {
        g.throughput(Throughput::Elements(threads as u64));
        let orders: Vec<&[String]> = [&d.hits[..], &d.hits2[..]][..threads].to_vec();
        g.bench_function(format!("linkgate_{threads}t"), |b| {
            let mut pos = vec![0usize; threads];
            b.iter_custom(|iters| run_threads(&orders, &mut pos, iters, &resolve))
        });
        g.bench_function(format!("hashbrown_floor_{threads}t"), |b| {
            let mut pos = vec![0usize; threads];
            b.iter_custom(|iters| run_threads(&orders, &mut pos, iters, &floor))
        });
        // Misses: every answer is the table's default redirect.
        let miss_orders: Vec<&[String]> = [&d.misses[..], &d.misses2[..]][..threads].to_vec();
        g.bench_function(format!("linkgate_miss_{threads}t"), |b| {
            let mut pos = vec![0usize; threads];
            b.iter_custom(|iters| run_threads(&miss_orders, &mut pos, iters, &resolve))
        });
    }
    g.finish();
}

fn bench_reload(c: &mut Criterion, d: &Data) {
    let mut g = c.benchmark_group(format!("reload_{}", d.label()));
    g.sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .throughput(Throughput::Elements(d.n as u64));
    g.bench_function("prepare_swap", |b| {
        b.iter_batched(
            || d.links.clone(),
            |links| {
                let snap = d.table.prepare(links).unwrap();
                d.table.swap(snap).unwrap()
            },
            BatchSize::PerIteration,
        )
    });
    // The path of a file reload (what the example servers do on SIGHUP or a changed file):
    // parse the nginx map, build, swap. Two maps with the same keys and every target different
    // take turns, so each reload changes every link (as in benches/http/run.sh).
    let maps = [map_text(d, "x"), map_text(d, "y")];
    g.bench_function("nginx_map_parse", |b| {
        b.iter_batched(
            || (),
            |()| Format::NginxMap.parse(maps[0].as_bytes()).unwrap(),
            BatchSize::PerIteration,
        )
    });
    let table = LinkTable::new();
    table
        .reload(Format::NginxMap.parse(maps[1].as_bytes()).unwrap())
        .unwrap();
    let mut turn = 0;
    g.bench_function("nginx_map_parse_prepare_swap", |b| {
        b.iter_batched(
            || {
                turn += 1;
                &maps[turn % 2]
            },
            |text| {
                let set = Format::NginxMap.parse(text.as_bytes()).unwrap();
                let snap = table.prepare(set).unwrap();
                table.swap(snap).unwrap()
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

/// The table's links as one nginx `map` block, `&v=<variant>` appended to every target.
fn map_text(d: &Data, variant: &str) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(d.n * 96);
    s.push_str("map $uri $affiliate_url {\n    default https://store.example.com/;\n");
    for l in &d.links {
        let _ = writeln!(s, "    {} {}&v={variant};", l.key(), l.target());
    }
    s.push_str("}\n");
    s
}

// ---------------------------------------------------------------------------------------------
// Latency percentiles: idle vs during reloads.

/// Per-resolve ns of consecutive batches of `BATCH` resolves, for `dur`.
fn sample_latency(table: &LinkTable, cy: &mut Cycle<'_>, dur: Duration) -> Vec<f64> {
    let mut out = Vec::with_capacity(1 << 20);
    let end = Instant::now() + dur;
    loop {
        let t0 = Instant::now();
        for _ in 0..BATCH {
            black_box(table.resolve(cy.next()));
        }
        let t1 = Instant::now();
        out.push((t1 - t0).as_nanos() as f64 / BATCH as f64);
        if t1 >= end {
            return out;
        }
    }
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    sorted[((p / 100.0) * (sorted.len() - 1) as f64).round() as usize]
}

fn summary(mut v: Vec<f64>) -> [f64; 6] {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    [
        pct(&v, 50.0),
        pct(&v, 90.0),
        pct(&v, 99.0),
        pct(&v, 99.9),
        *v.last().unwrap(),
        v.len() as f64,
    ]
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn latency_section(d: &Data, rounds: usize, dur: Duration) {
    println!();
    println!(
        "p99_reload: table of {} links; per-resolve ns = time of a batch of {BATCH} hits / {BATCH}",
        d.n
    );
    println!(
        "p99_reload: {rounds} rounds of {dur:?} each: idle, then beside a thread that only spins (control), then beside a thread reloading {} links in a loop",
        d.n
    );
    println!(
        "p99_reload: {:>5} {:>8} {:>7} {:>7} {:>7} {:>7} {:>9} {:>8}",
        "round", "phase", "p50", "p90", "p99", "p99.9", "max", "batches"
    );
    let mut cy = Cycle::new(&d.hits);
    let _ = sample_latency(&d.table, &mut cy, Duration::from_millis(300)); // warm-up
    let mut ratios = Vec::new();
    let reload_times: Mutex<Vec<(f64, f64, f64)>> = Mutex::new(Vec::new());
    for round in 1..=rounds {
        let c0 = cpu_sample();
        let idle = summary(sample_latency(&d.table, &mut cy, dur));
        let c1 = cpu_sample();
        // Control: another thread that only spins (CPU contention without any reload).
        let stop = AtomicBool::new(false);
        let spin = std::thread::scope(|s| {
            s.spawn(|| {
                let mut x = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    x = black_box(x.wrapping_add(1));
                }
            });
            std::thread::sleep(Duration::from_millis(20));
            let spin = summary(sample_latency(&d.table, &mut cy, dur));
            stop.store(true, Ordering::Relaxed);
            spin
        });
        let c2 = cpu_sample();
        let stop = AtomicBool::new(false);
        let (busy, reloads, c3, c4) = std::thread::scope(|s| {
            let h = s.spawn(|| {
                let mut count = 0;
                while !stop.load(Ordering::Relaxed) {
                    let links = d.links.clone();
                    let t0 = Instant::now();
                    let snap = d.table.prepare(links).unwrap();
                    let t1 = Instant::now();
                    d.table.swap(snap).unwrap();
                    let t2 = Instant::now();
                    count += 1;
                    reload_times.lock().unwrap().push((
                        (t1 - t0).as_secs_f64() * 1e3,
                        (t2 - t1).as_secs_f64() * 1e3,
                        (t2 - t0).as_secs_f64() * 1e3,
                    ));
                }
                count
            });
            // Let the first reload start before sampling.
            std::thread::sleep(Duration::from_millis(20));
            let c3 = cpu_sample();
            let busy = summary(sample_latency(&d.table, &mut cy, dur));
            let c4 = cpu_sample();
            stop.store(true, Ordering::Relaxed);
            (busy, h.join().unwrap(), c3, c4)
        });
        for (phase, s, extra) in [
            ("idle", idle, format!(" ({})", others(c0, c1))),
            ("spin", spin, format!(" ({})", others(c1, c2))),
            (
                "reload",
                busy,
                format!(" reloads={reloads} ({})", others(c3, c4)),
            ),
        ] {
            println!(
                "p99_reload: {round:>5} {phase:>8} {:>7.1} {:>7.1} {:>7.1} {:>7.1} {:>9.1} {:>8}{extra}",
                s[0], s[1], s[2], s[3], s[4], s[5]
            );
        }
        ratios.push((busy[0] / idle[0], busy[2] / idle[2], spin[2] / idle[2]));
    }
    for (i, (p50, p99, spin99)) in ratios.iter().enumerate() {
        println!(
            "p99_reload: round {} ratio reload/idle: p50 {p50:.2}x  p99 {p99:.2}x;  spin/idle p99 {spin99:.2}x",
            i + 1
        );
    }
    let t = reload_times.into_inner().unwrap();
    let (prep, swap, total): (Vec<f64>, Vec<f64>, Vec<f64>) = (
        t.iter().map(|x| x.0).collect(),
        t.iter().map(|x| x.1).collect(),
        t.iter().map(|x| x.2).collect(),
    );
    let mm = |v: &[f64]| {
        (
            v.iter().cloned().fold(f64::MAX, f64::min),
            v.iter().cloned().fold(0.0, f64::max),
        )
    };
    println!(
        "p99_reload: reloads while a reader runs ({}): prepare median {:.0} ms, swap median {:.0} ms, total median {:.0} ms (min {:.0}, max {:.0})",
        t.len(),
        median(prep.clone()),
        median(swap.clone()),
        median(total.clone()),
        mm(&total).0,
        mm(&total).1
    );
}

// ---------------------------------------------------------------------------------------------

/// CPU time of the whole machine and of this process, from /proc (Linux), to report how much
/// of the 2 cores other processes used during a measurement.
#[derive(Clone, Copy)]
struct CpuSample {
    busy: u64,
    steal: u64,
    total: u64,
    own: u64,
}

fn cpu_sample() -> Option<CpuSample> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let f: Vec<u64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .take(8)
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    let (user, nice, system, idle, iowait, irq, softirq, steal) =
        (f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7]);
    let me = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after = &me[me.rfind(')')? + 2..];
    let g: Vec<u64> = after
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    // Fields 14 and 15 of /proc/self/stat (utime, stime) are at 11 and 12 after the comm field.
    Some(CpuSample {
        busy: user + nice + system + irq + softirq,
        steal,
        total: user + nice + system + idle + iowait + irq + softirq + steal,
        own: g[11] + g[12],
    })
}

/// "others X.XX cores, steal Y.YY cores" between two samples.
fn others(a: Option<CpuSample>, b: Option<CpuSample>) -> String {
    let (Some(a), Some(b)) = (a, b) else {
        return String::from("others n/a");
    };
    let ncpu = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let total = (b.total - a.total).max(1) as f64;
    let other = (b.busy - a.busy).saturating_sub(b.own - a.own) as f64;
    format!(
        "others {:.2} cores, steal {:.2} cores",
        other / total * ncpu,
        (b.steal - a.steal) as f64 / total * ncpu
    )
}

/// 1 vs 2 threads, alternated (1t, 2t, 1t, 2t...) so both see the same background load; the
/// bare hashbrown map is run the same way as a control for what the machine can scale to.
fn scaling_ab(d: &Data, pairs: usize, per: Duration) {
    println!();
    println!(
        "scaling_ab: table of {} links; {pairs} alternating pairs, each run ~{per:?}; resolves/s summed over threads",
        d.n
    );
    let resolve = |k: &str| {
        black_box(d.table.resolve(k));
    };
    let floor = |k: &str| {
        black_box(d.floor.get(k).copied());
    };
    let orders: [&[String]; 2] = [&d.hits[..], &d.hits2[..]];
    for (name, f) in [
        ("linkgate", &resolve as &(dyn Fn(&str) + Sync)),
        ("hashbrown_floor", &floor),
    ] {
        let mut pos = [0usize; 2];
        // Calibrate: resolves per `per` on one thread.
        let t = run_threads(&orders[..1], &mut pos[..1], 200_000, &f);
        let n = ((200_000.0 / t.as_secs_f64()) * per.as_secs_f64()) as u64;
        let mut ratios = Vec::new();
        for pair in 1..=pairs {
            let c0 = cpu_sample();
            let t1 = run_threads(&orders[..1], &mut pos[..1], n, &f);
            let t2 = run_threads(&orders[..2], &mut pos[..2], n, &f);
            let c1 = cpu_sample();
            let (r1, r2) = (
                n as f64 / t1.as_secs_f64(),
                2.0 * n as f64 / t2.as_secs_f64(),
            );
            ratios.push(r2 / r1);
            println!(
                "scaling_ab: {name:<16} pair {pair}: 1t {:6.2} M/s  2t {:6.2} M/s  ratio {:.2}x  ({})",
                r1 / 1e6,
                r2 / 1e6,
                r2 / r1,
                others(c0, c1)
            );
        }
        let (lo, hi) = (
            ratios.iter().cloned().fold(f64::MAX, f64::min),
            ratios.iter().cloned().fold(0.0, f64::max),
        );
        println!(
            "scaling_ab: {name:<16} 2t/1t ratio median {:.2}x (min {lo:.2}, max {hi:.2})",
            median(ratios.clone())
        );
    }
}

fn main() {
    let bench_mode = std::env::args().any(|a| a == "--bench");
    let filter = filter_arg();
    let mut c = Criterion::default().configure_from_args();
    let sizes: &[usize] = if bench_mode {
        &[100_000, 1_000_000]
    } else {
        &[10_000]
    };
    for &n in sizes {
        let d = Data::new(n);
        bench_lookups(&mut c, &d);
        if n != 1_000_000 {
            bench_tagged(&mut c, &d);
        }
        if n == 1_000_000 || !bench_mode {
            bench_scaling(&mut c, &d);
            bench_reload(&mut c, &d);
            if filter.as_deref().is_none_or(|f| "scaling_ab".contains(f)) {
                if bench_mode {
                    scaling_ab(&d, 5, Duration::from_secs(1));
                } else {
                    scaling_ab(&d, 1, Duration::from_millis(50));
                }
            }
            let run_latency = filter.as_deref().is_none_or(|f| "p99_reload".contains(f));
            if run_latency {
                if bench_mode {
                    latency_section(&d, 3, Duration::from_secs(3));
                } else {
                    latency_section(&d, 1, Duration::from_millis(100));
                }
            }
        }
    }
    c.final_summary();
}
