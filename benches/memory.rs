//! Bytes per link of a `LinkTable` of 1M realistic links, with a counting global allocator.
//!
//! Run: `cargo bench --bench memory`
//!
//! "Live bytes" are the bytes requested from the allocator and not yet freed (malloc's own
//! per-allocation header and rounding are not included; the number of live allocations is
//! printed so that overhead can be estimated: glibc adds at least 8 B per allocation and rounds
//! to 16 B).

use std::collections::HashMap as StdHashMap;
use std::sync::RwLock;

use linkgate::{Link, LinkTable};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

#[path = "common/counting_alloc.rs"]
mod counting_alloc;
use counting_alloc::{allocs, live, peak, reset_peak};

// Same data as benches/resolve.rs: keys ~19 B, targets ~61 B.
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

/// (key, target) pairs with exact-capacity strings.
fn pairs(n: usize) -> Vec<(String, String)> {
    let mut rng = StdRng::seed_from_u64(0x6c69_6e6b + n as u64);
    let keys: Vec<String> = (0..n).map(|i| key(i, &mut rng)).collect();
    (0..n)
        .map(|i| {
            (
                keys[i].as_str().to_owned(),
                target(i, &mut rng).as_str().to_owned(),
            )
        })
        .collect()
}

fn per_link(bytes: usize, n: usize) -> f64 {
    bytes as f64 / n as f64
}

fn main() {
    let bench_mode = std::env::args().any(|a| a == "--bench");
    let n: usize = if bench_mode { 1_000_000 } else { 10_000 };

    let raw: usize = pairs(n).iter().map(|(k, t)| k.len() + t.len()).sum();
    let raw_per = per_link(raw, n);
    let goal_per = 1.5 * raw_per + 48.0;
    println!(
        "memory: {n} links, raw key+target {raw_per:.1} B/link; goal <= 1.5 x raw + 48 = {goal_per:.1} B/link"
    );
    println!(
        "memory: {:<44} {:>10} {:>12} {:>10} {:>9}",
        "structure", "B/link", "vs goal", "allocs", "peak B/link"
    );

    let row = |name: &str, bytes: usize, allocs: usize, peak: Option<usize>| {
        let per = per_link(bytes, n);
        let peak = peak.map_or("-".to_string(), |p| format!("{:.1}", per_link(p, n)));
        let vs = if name.starts_with("input") {
            "-".to_string()
        } else {
            format!("{:.2}x", per / goal_per)
        };
        println!("memory: {name:<44} {per:>10.1} {vs:>12} {allocs:>10} {peak:>9}");
    };

    // --- linkgate: live bytes after the table is built and its input Vec<Link> consumed.
    let base = live();
    let base_allocs = allocs();
    let table = LinkTable::new();
    let links: Vec<Link> = pairs(n)
        .into_iter()
        .map(|(k, t)| Link::new(k, t).unwrap())
        .collect();
    let input = live() - base;
    row(
        "input Vec<Link> (consumed by the load)",
        input,
        allocs() - base_allocs,
        None,
    );
    reset_peak();
    let report = table.reload(links).unwrap();
    assert_eq!(report.links, n);
    let one = live() - base;
    let peak1 = peak() - base;
    row(
        "LinkTable, 1 load (serving + empty rollback)",
        one,
        allocs() - base_allocs,
        Some(peak1),
    );
    let links: Vec<Link> = pairs(n)
        .into_iter()
        .map(|(k, t)| Link::new(k, t).unwrap())
        .collect();
    reset_peak();
    table.reload(links).unwrap();
    let two = live() - base;
    let peak2 = peak() - base;
    row(
        "LinkTable, 2nd load (serving + rollback copy)",
        two,
        allocs() - base_allocs,
        Some(peak2),
    );
    drop(table);
    let leaked = live() as isize - base as isize;

    // --- bare hashbrown maps, same keys (and targets).
    let base = live();
    let base_allocs = allocs();
    let floor: hashbrown::HashMap<Box<str>, usize> = pairs(n)
        .into_iter()
        .enumerate()
        .map(|(i, (k, _))| (k.into_boxed_str(), i))
        .collect();
    row(
        "hashbrown::HashMap<Box<str>, usize> (floor)",
        live() - base,
        allocs() - base_allocs,
        None,
    );
    drop(floor);

    let base = live();
    let base_allocs = allocs();
    let kv: hashbrown::HashMap<Box<str>, Box<str>> = pairs(n)
        .into_iter()
        .map(|(k, t)| (k.into_boxed_str(), t.into_boxed_str()))
        .collect();
    row(
        "hashbrown::HashMap<Box<str>, Box<str>>",
        live() - base,
        allocs() - base_allocs,
        None,
    );
    drop(kv);

    let base = live();
    let base_allocs = allocs();
    let naive: RwLock<StdHashMap<String, String>> = RwLock::new(pairs(n).into_iter().collect());
    row(
        "RwLock<std HashMap<String, String>>",
        live() - base,
        allocs() - base_allocs,
        None,
    );
    drop(naive);

    println!(
        "memory: linkgate 1 load: {:.1} B/link = {:.2}x raw; goal {goal_per:.1} B/link: {}",
        per_link(one, n),
        one as f64 / raw as f64,
        if per_link(one, n) <= goal_per {
            "met"
        } else {
            "MISSED"
        }
    );
    println!("memory: bytes still live after dropping the table: {leaked}");
}
