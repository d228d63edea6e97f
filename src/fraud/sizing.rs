//! Shared pieces of the click-state filters ([`UniqueFilter`](super::UniqueFilter) and
//! [`FloodDetector`](super::FloodDetector)): time buckets, hashing, the configuration error and
//! the false-positive arithmetic of the unique filter.

use std::time::Duration;

/// Words per 64-byte block: one per time bucket, so all the buckets of one visitor or one
/// counter sit in a single cache line.
pub(crate) const SLOTS: usize = 8;

/// The largest memory a builder accepts (16 GiB): a guard against a unit mistake.
pub(crate) const MAX_MEMORY: usize = 16 << 30;

/// A 64-byte, cache-line aligned block of [`SLOTS`] atomic words.
#[derive(Default)]
#[repr(align(64))]
pub(crate) struct Line(pub(crate) [std::sync::atomic::AtomicU64; SLOTS]);

/// `count` zeroed lines, on 2 MiB pages where the kernel allows it.
///
/// With many distinct visitors every check lands on a random line of tens of MiB: a cache miss
/// and, with 4 KiB pages, a TLB miss whose page walk (two-level under a hypervisor) costs as
/// much again. On Linux the allocation is marked `MADV_HUGEPAGE` before it is first written,
/// so the kernel backs it with transparent huge pages when its policy is `always` or
/// `madvise` (BENCHMARKS.md, "Huge pages for the click state", has the figures). Elsewhere, or
/// when the kernel says no, the lines sit on ordinary pages; nothing else changes.
pub(crate) fn lines(count: usize) -> Box<[Line]> {
    let mut v: Vec<Line> = Vec::with_capacity(count);
    #[cfg(target_os = "linux")]
    advise_huge_pages(
        v.as_mut_ptr().cast(),
        v.capacity() * std::mem::size_of::<Line>(),
    );
    v.resize_with(count, Line::default);
    v.into_boxed_slice()
}

/// Asks the kernel to back the 2 MiB-aligned part of `[ptr, ptr + len)` with huge pages.
///
/// The crate's one `unsafe` block (a system call that takes a raw address). Measured win: see
/// [`lines`].
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn advise_huge_pages(ptr: *mut u8, len: usize) {
    const HUGE: usize = 2 << 20;
    let addr = ptr as usize;
    let start = addr.next_multiple_of(HUGE);
    let end = (addr + len) / HUGE * HUGE;
    if end <= start {
        return;
    }
    // SAFETY: `[start, end)` lies inside an allocation the caller owns and has not handed to
    // anything else (the spare capacity of a fresh `Vec`). `MADV_HUGEPAGE` neither reads,
    // writes nor frees memory: it only changes how the kernel backs pages faulted in later.
    // The result is ignored on purpose: on failure (THP compiled out, `never`) the memory
    // stays on 4 KiB pages, which is correct, only slower.
    let _ = unsafe {
        libc::madvise(
            ptr.wrapping_add(start - addr).cast(),
            end - start,
            libc::MADV_HUGEPAGE,
        )
    };
}

/// A setting a builder refused. Every variant names the setting and the value.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum StateConfigError {
    /// `window` is shorter than one millisecond.
    #[error("{what}: window {window:?} is shorter than 1 ms")]
    Window {
        /// `"UniqueFilter"` or `"FloodDetector"`.
        what: &'static str,
        /// The window as given.
        window: Duration,
    },
    /// `memory_bytes` is too small for one block per row, or larger than 16 GiB.
    #[error("{what}: memory_bytes {given} is outside {min}..={max}")]
    Memory {
        /// `"UniqueFilter"` or `"FloodDetector"`.
        what: &'static str,
        /// The value as given.
        given: usize,
        /// The least this configuration needs.
        min: usize,
        /// The most a builder accepts (16 GiB).
        max: usize,
    },
    /// `false_positive_rate` is not in `(0, 1)`.
    #[error("UniqueFilter: false_positive_rate {given} is not in (0, 1)")]
    Rate {
        /// The value as given.
        given: f64,
    },
    /// `expected_visitors` is 0.
    #[error("UniqueFilter: expected_visitors is 0")]
    Visitors,
    /// The requested false-positive rate needs more memory than allowed: either than the
    /// `memory_bytes` given, or than 16 GiB when `memory_bytes` was not given.
    #[error(
        "UniqueFilter: false_positive_rate {rate} at {visitors} visitors per window needs more \
         than {memory} bytes (predicted rate at that size: {predicted:.3e})"
    )]
    Unachievable {
        /// The requested rate.
        rate: f64,
        /// `expected_visitors`.
        visitors: u64,
        /// The memory it would have to fit in.
        memory: usize,
        /// The predicted rate at that memory.
        predicted: f64,
    },
    /// `limit` is 0 (every click would be flagged) or `rows` is outside `1..=8`.
    #[error("FloodDetector: {setting} {given} is out of range ({range})")]
    Flood {
        /// `"limit"` or `"rows"`.
        setting: &'static str,
        /// The value as given.
        given: u64,
        /// The accepted range.
        range: &'static str,
    },
}

/// Milliseconds of a duration, saturating.
pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The bucket of `now_ms` (times before 1970 count as 0).
#[inline]
pub(crate) fn bucket(now_ms: i64, bucket_ms: u64) -> u64 {
    now_ms.max(0) as u64 / bucket_ms
}

/// MurmurHash3's 64-bit finaliser: a bijection with full avalanche, so sequential or
/// structured inputs spread over the table.
#[inline]
pub(crate) fn mix(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

/// `h` mapped to `0..n` by a multiply-high (Lemire's fast range reduction).
#[inline]
pub(crate) fn range(h: u64, n: usize) -> usize {
    ((u128::from(h) * n as u128) >> 64) as usize
}

/// A random seed from the OS (a clock-and-address mix if the OS has no randomness).
pub(crate) fn random_seed() -> u64 {
    let mut b = [0u8; 8];
    if getrandom::fill(&mut b).is_err() {
        let t = crate::clock::system_now_ms() as u64;
        return mix(t ^ (&b as *const _ as u64));
    }
    u64::from_le_bytes(b)
}

/// The distribution of the number of distinct bits among `k` uniform draws from 64:
/// `P_{m+1}(s) = P_m(s)·s/64 + P_m(s−1)·(65−s)/64`.
fn distinct_bits(k: u32) -> [f64; 11] {
    let mut p = [0.0f64; 11];
    p[0] = 1.0;
    for _ in 0..k {
        let mut next = [0.0f64; 11];
        for s in 0..10 {
            next[s] += p[s] * s as f64 / 64.0;
            next[s + 1] += p[s] * (64 - s) as f64 / 64.0;
        }
        p = next;
    }
    p
}

/// `c_d(λ)` for `d` in `0..=k`: the probability that a word holding a Poisson(`λ`) number of
/// visitors, each of which set `k` bits drawn uniformly (with replacement) among 64, has `d`
/// given bits all set. Summed over the number `j` of visitors in the word, with the exact
/// distribution of how many of the `d` bits `k·j` draws cover (all terms positive: stable at
/// any load).
fn cover(lambda: f64, k: u32) -> [f64; 11] {
    let mut out = [0.0f64; 11];
    if lambda <= 0.0 {
        out[0] = 1.0;
        return out;
    }
    if lambda > 2000.0 {
        // Thousands of visitors per 64-bit word: every word is full.
        return [1.0; 11];
    }
    let ln_l = lambda.ln();
    let mut ln_fact = 0.0f64;
    let mut mass = 0.0;
    // state[d][c]: probability that c of the d given bits are covered after the draws so far.
    let mut state = [[0.0f64; 11]; 11];
    for row in state.iter_mut() {
        row[0] = 1.0;
    }
    for j in 0u32.. {
        if j > 0 {
            ln_fact += f64::from(j).ln();
            for (d, row) in state.iter_mut().enumerate().take(k as usize + 1) {
                for _ in 0..k {
                    for c in (0..d).rev() {
                        let hit = row[c] * (d - c) as f64 / 64.0;
                        row[c] -= hit;
                        row[c + 1] += hit;
                    }
                }
            }
        }
        let pois = (f64::from(j) * ln_l - lambda - ln_fact).exp();
        for (d, row) in state.iter().enumerate().take(k as usize + 1) {
            out[d] += pois * row[d];
        }
        mass += pois;
        if f64::from(j) > lambda && (1.0 - mass < 1e-13 || pois < 1e-20) {
            break;
        }
    }
    out.map(|c| c.min(1.0))
}

/// The probability that a visitor not in the filter is reported present by one word holding a
/// Poisson(`lambda`) number of visitors: `Σ_d P_k(d) · c_d(λ)`.
#[cfg(test)]
pub(crate) fn word_fp(lambda: f64, k: u32) -> f64 {
    let p = distinct_bits(k);
    let c = cover(lambda, k);
    (1..=k as usize).map(|d| p[d] * c[d]).sum()
}

/// The false-positive rate of a query against `live` generations that each hold `lambda`
/// visitors per word: `Σ_d P_k(d) · [1 − (1 − c_d(λ))^live]`. Exact for ideal hashing: given
/// the query's bits, the generations (disjoint sets of visitors) are independent.
pub(crate) fn query_fp(lambda: f64, k: u32, live: u32) -> f64 {
    let p = distinct_bits(k);
    let c = cover(lambda, k);
    (1..=k as usize)
        .map(|d| p[d] * (1.0 - (1.0 - c[d]).powi(live as i32)))
        .sum::<f64>()
        .min(1.0)
}

/// The number of bits per visitor (1..=10) that minimises [`query_fp`] at `lambda`.
pub(crate) fn best_k(lambda: f64, live: u32) -> (u32, f64) {
    (1..=10)
        .map(|k| (k, query_fp(lambda, k, live)))
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .expect("non-empty")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_fp_single_visitor_single_bit() {
        // One other visitor with one bit: the query's one bit matches with probability 1/64.
        // With Poisson(λ) visitors: Σ Pois(j) (1 − (63/64)^j).
        let l = 0.5f64;
        let expected = 1.0 - (-l / 64.0).exp();
        assert!(
            (word_fp(l, 1) - expected).abs() < 1e-12,
            "{}",
            word_fp(l, 1)
        );
    }

    #[test]
    fn cover_matches_inclusion_exclusion() {
        // c_d(λ) = Σ_i (−1)^i C(d,i) exp(−λ(1 − (1 − i/64)^k)) (Poisson generating function);
        // exact in closed form, checked where cancellation is harmless.
        for (l, k) in [(0.5, 3u32), (2.0, 8), (6.0, 8), (20.0, 5)] {
            let c = cover(l, k);
            for (d, &cd) in c.iter().enumerate().take(k as usize + 1) {
                let mut closed = 0.0;
                let mut binom = 1.0;
                for i in 0..=d {
                    let sign = if i % 2 == 0 { 1.0 } else { -1.0 };
                    closed +=
                        sign * binom * (-l * (1.0 - (1.0 - i as f64 / 64.0).powi(k as i32))).exp();
                    binom = binom * (d - i) as f64 / (i + 1) as f64;
                }
                assert!(
                    (cd - closed).abs() < 1e-9,
                    "λ={l} k={k} d={d}: {cd} vs {closed}"
                );
            }
        }
    }

    #[test]
    fn word_fp_grows_with_load_and_is_a_probability() {
        let mut last = 0.0;
        for l in [0.01, 0.1, 0.5, 1.0, 2.0, 5.0, 20.0, 100.0] {
            let f = word_fp(l, 8);
            assert!(f > last && f <= 1.0, "λ={l}: {f}");
            last = f;
        }
        assert!(word_fp(100.0, 8) > 0.99);
    }

    #[test]
    fn range_and_bucket() {
        assert_eq!(range(0, 10), 0);
        assert_eq!(range(u64::MAX, 10), 9);
        assert_eq!(bucket(-5, 10), 0);
        assert_eq!(bucket(19, 10), 1);
    }
}
