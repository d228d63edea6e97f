//! Unique clicks: "has this visitor clicked this key within the window?" in bounded memory.

use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::net::IpAddr;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering, fence};
use std::time::Duration;

use crate::ip::{ClickIp, canonical};

use super::sizing::{
    Line, MAX_MEMORY, SLOTS, StateConfigError, best_k, bucket, lines, millis, mix, query_fp,
    random_seed, range,
};
use crate::ua_memo::ua_digest;

/// Buckets before the current one that are still checked: the window is 6 buckets long.
const PREVIOUS: u64 = 6;
/// Generations a query reads: the current bucket and the [`PREVIOUS`] ones.
const LIVE: u32 = PREVIOUS as u32 + 1;
/// A bucket more than this far ahead of a caller's is taken for a clock error and overwritten
/// (512 buckets: 85 days at the default window).
const FAR: u64 = 512;
/// Default memory: with the flood detector's 8 MiB, 64 MiB in all.
const DEFAULT_MEMORY: usize = 56 << 20;
const DEFAULT_VISITORS: u64 = 10_000_000;
const DEFAULT_WINDOW: Duration = Duration::from_secs(24 * 3600);

/// One visitor on one key, hashed to 64 bits: what a [`UniqueFilter`] remembers.
///
/// [`VisitorKey::new`] hashes the address, a 64-bit digest of the User-Agent (the one the gate
/// also keys its User-Agent memo with, so a request hashes its User-Agent once) and the link key
/// with foldhash, seeded randomly once per process; the filter then mixes the value with its
/// own seed. Two different visitors get the same key with probability about 2⁻⁶³ per pair (the
/// digests or the keys colliding).
///
/// ```
/// use linkgate::VisitorKey;
///
/// let ip = "203.0.113.0".parse().ok();  // as the gate's IP policy produced it
/// let a = VisitorKey::new(ip, b"Mozilla/5.0 (X11; Linux x86_64)", b"/go/deal");
/// assert_eq!(a, VisitorKey::new(ip, b"Mozilla/5.0 (X11; Linux x86_64)", b"/go/deal"));
/// assert_ne!(a, VisitorKey::new(ip, b"Mozilla/5.0 (X11; Linux x86_64)", b"/go/other"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VisitorKey(u64);

fn process_seed() -> u64 {
    static SEED: OnceLock<u64> = OnceLock::new();
    *SEED.get_or_init(random_seed)
}

impl VisitorKey {
    /// The visitor (address as the IP policy left it, or `None`, and User-Agent bytes) on the
    /// link `key`. An IPv4-mapped IPv6 address counts as the IPv4 address. Without an address
    /// every visitor with the same User-Agent is the same visitor.
    pub fn new(ip: Option<IpAddr>, user_agent: &[u8], key: &[u8]) -> VisitorKey {
        Self::with_digest(ip, ua_digest(user_agent), key)
    }

    fn with_digest(ip: Option<IpAddr>, user_agent: u64, key: &[u8]) -> VisitorKey {
        let mut h = foldhash::fast::FixedState::with_seed(process_seed()).build_hasher();
        match ip.map(canonical) {
            None => h.write_u8(0),
            Some(IpAddr::V4(v4)) => {
                h.write_u8(4);
                h.write_u32(u32::from(v4));
            }
            Some(IpAddr::V6(v6)) => {
                h.write_u8(6);
                h.write_u128(u128::from(v6));
            }
        }
        Self::finish(h, user_agent, key)
    }

    /// Like [`new`](Self::new) with the address as a [`Click`](crate::Click) records it, so a
    /// hashed address (`IpPolicy::Hash`) identifies visitors too.
    pub fn from_click_ip(ip: Option<&ClickIp>, user_agent: &[u8], key: &[u8]) -> VisitorKey {
        Self::from_click_ip_digest(ip, ua_digest(user_agent), key)
    }

    /// [`from_click_ip`](Self::from_click_ip) with the User-Agent's `ua_digest`.
    pub(crate) fn from_click_ip_digest(
        ip: Option<&ClickIp>,
        user_agent: u64,
        key: &[u8],
    ) -> VisitorKey {
        match ip {
            None => Self::with_digest(None, user_agent, key),
            Some(ClickIp::Addr(a)) => Self::with_digest(Some(*a), user_agent, key),
            Some(ClickIp::Hashed(x)) => {
                let mut h = foldhash::fast::FixedState::with_seed(process_seed()).build_hasher();
                h.write_u8(1);
                h.write_u128(*x);
                Self::finish(h, user_agent, key)
            }
        }
    }

    fn finish(mut h: foldhash::fast::FoldHasher, user_agent: u64, key: &[u8]) -> VisitorKey {
        h.write_u64(user_agent);
        h.write(key);
        VisitorKey(h.finish())
    }

    /// A key from your own 64-bit identity hash (a cookie id, say). It should be uniformly
    /// distributed over most of its bits; sequential integers are fine, the filter mixes them.
    pub const fn from_hash(hash: u64) -> VisitorKey {
        VisitorKey(hash)
    }

    /// The 64-bit value.
    pub const fn hash(self) -> u64 {
        self.0
    }
}

/// Remembers which visitors clicked which key within a window, in fixed memory, and answers
/// "is this click unique?" in O(1) with one cache line.
///
/// ```
/// use linkgate::{UniqueFilter, VisitorKey};
/// use std::time::Duration;
///
/// let filter = UniqueFilter::builder()
///     .window(Duration::from_secs(24 * 3600))
///     .memory_bytes(1 << 20)
///     .build()?;
/// let v = VisitorKey::new("198.51.100.0".parse().ok(), b"Mozilla/5.0", b"/go/deal");
/// let t = 1_800_000_000_000; // ms since the epoch, from your clock
/// assert!(filter.check_and_insert(v, t));                 // first click: unique
/// assert!(!filter.check_and_insert(v, t + 3_600_000));    // an hour later: duplicate
/// assert!(filter.check_and_insert(v, t + 28 * 3_600_000)); // 28 h later: unique again
/// # Ok::<(), linkgate::StateConfigError>(())
/// ```
///
/// # Semantics
/// A click is unique when the same [`VisitorKey`] had no *unique* click within the window
/// before it: at most one unique click per visitor and key per window, the window starting
/// at that unique click (the usual "unique clicks per 24 h"). With
/// [`sliding(true)`](UniqueFilterBuilder::sliding) every click, unique or not, restarts the
/// window instead: a visitor who comes back every 12 h is then unique only once.
///
/// # Guarantees
/// Time is cut into buckets of `B = ⌈W / 6⌉` ms (W = the window), numbered `now_ms / B`. A
/// click is remembered in the generation of its bucket, and a query reads the current
/// generation and the 6 before it.
/// - **Effective window.** A click at `t0` is remembered at every `t < t0 + 6B` (so for at
///   least W) and forgotten at every `t ≥ t0 + 7B`; in between it depends on where `t0` fell in
///   its bucket. With the 24 h default: remembered for at least 24 h, never more than 28 h.
/// - **No false negatives** (a repeat click reported unique) within the effective window,
///   except for a caller whose `now_ms` lags another caller's across a bucket boundary: it may
///   miss entries of its oldest generation while another call recycles that generation (a
///   seqlock check makes it read "absent", never garbage).
/// - **False positives** (a first click reported duplicate) happen with a probability that
///   depends on the load. A visitor's hash picks a block (64 bytes, one 64-bit word per
///   generation) and a mask of `k` bits (k draws among 64, so `d ≤ k` distinct); its click sets
///   the mask in the word of its bucket's generation, and a query asks whether a live word
///   holds the whole mask (a register-blocked Bloom filter). With `λ = n_B / N` visitors per
///   word and generation (`n_B` = clicks inserted in a bucket, `N` = blocks = memory / 64):
///   `FP = Σ_d P_k(d) · [1 − (1 − c_d(λ))^7]`, where `P_k(d)` is the chance of `d` distinct
///   bits in `k` draws and `c_d(λ) = Σ_j Pois(j; λ) · P(k·j random bits cover d given ones)`,
///   about `7 ×` the rate of one word; exact for ideal hashing (tested within a few percent).
///   [`false_positive_rate`](Self::false_positive_rate) evaluates it for steady traffic
///   (`n_B = n · B / W` for `n` distinct visitors per window). Default sizing, 56 MiB and
///   `k = 8`: 1.6·10⁻⁶ at 1 M, 0.18 % at 10 M, 9.2 % at 30 M distinct visitors per 24 h (measured
///   in `tests/fraud_state.rs`: 0.171 % at 10 M against 0.176 % predicted).
/// - **Overload** (more visitors than sized for): the false-positive rate grows as above
///   (unique clicks are under-counted, never over-counted); memory does not grow. In the
///   default mode a click found present is not inserted, so `n_B` counts unique clicks only and
///   under overload the real rate stays below the formula evaluated at the arrivals.
/// - **Concurrency.** Two concurrent first clicks of the same visitor in the same bucket:
///   exactly one is unique (the insertion is one `fetch_or` on the visitor's word, and the
///   word's previous value says whether all `k` bits were already set).
/// - **Memory** is fixed at build: [`memory_bytes`](Self::memory_bytes), at most the
///   configured budget. All of it is touched (zeroed) in `build`. On Linux it is asked to sit
///   on 2 MiB pages (`MADV_HUGEPAGE`; the kernel grants it under the THP policies `always`
///   and `madvise`), which cut a new visitor's check to 0.49–0.73× on a VM (BENCHMARKS.md).
///
/// # Rotation
/// Generations rotate lazily, without a lock: each generation has an atomic tag (the bucket
/// it holds, or "being cleared for bucket x"), and a query ignores a generation whose tag is
/// not one of its 7 buckets. The first call that sees a new bucket `b` clears the generation
/// of bucket `b + 1` — the 8th word of every block, which nobody reads (it held bucket `b − 7`,
/// already outside the window) and nobody writes until `b + 1` starts: one 8-byte store per
/// 64-byte block, 2–12 ms at the default size (`benches/fraud.rs`). Other calls meanwhile go on
/// without waiting. When `b + 1` starts its generation is ready.
///
/// Two cases make a call wait (yielding) for a clearing to finish instead of going on: the
/// first call after a whole bucket without any call clears the current generation itself, and
/// calls of that bucket arriving meanwhile wait for it; and the same when a bucket is shorter
/// than a clearing (a window of well under a second at this size). Waiting keeps the
/// guarantees above: no click is ever left unrecorded. To keep even the one clearing call off
/// the request path, call [`rotate`](Self::rotate) from a housekeeping thread more often
/// than every `B`.
///
/// Callers' clocks must agree to within a bucket (they do when they read the same system
/// clock). A single call with a time far in the future (more than 512 buckets ahead) costs
/// the two generations it prepares, and the next call at the real time takes the filter
/// back. A caller 7 buckets behind could insert into a recycled generation
/// ([`missed_inserts`](Self::missed_inserts) counts the calls 8 or more buckets behind, which
/// are answered without being recorded).
pub struct UniqueFilter {
    blocks: Box<[Line]>,
    /// Per generation: 0 = never used (zero), `(bucket + 1) << 1` = holds that bucket,
    /// `… | 1` = being cleared for that bucket.
    tags: Line,
    /// `bucket + 1` of the latest bucket a call has seen (0 = none).
    current: AtomicU64,
    missed: AtomicU64,
    bucket_ms: u64,
    window: Duration,
    k: u32,
    seed: u64,
    sliding: bool,
}

const fn ready(x: u64) -> u64 {
    (x + 1) << 1
}

const fn clearing(x: u64) -> u64 {
    ready(x) | 1
}

impl UniqueFilter {
    /// A builder with the defaults (24 h window, 56 MiB, sized for 10 M visitors).
    pub fn builder() -> UniqueFilterBuilder {
        UniqueFilterBuilder::default()
    }

    /// Records the click of `visitor` at `now_ms` (ms since the epoch) and returns `true` if it
    /// is unique: the visitor had no unique click on this key within the window before (see
    /// the type docs for the exact window and error rates). O(1): one cache line, one atomic
    /// `fetch_or`; no lock, no allocation.
    #[inline]
    pub fn check_and_insert(&self, visitor: VisitorKey, now_ms: i64) -> bool {
        let b = bucket(now_ms, self.bucket_ms);
        self.advance_to(b);
        let (idx, mask) = self.locate(visitor);
        let block = &self.blocks[idx].0;
        let slot = (b % SLOTS as u64) as usize;
        let mut current = self.tags.0[slot].load(Ordering::Acquire) == ready(b);
        if !current {
            current = self.wait_ready(b, slot);
        }
        if !self.sliding {
            if current && block[slot].load(Ordering::Relaxed) & mask == mask {
                return false;
            }
            if self.seen_before(block, mask, b) {
                return false;
            }
        }
        if !current {
            self.missed.fetch_add(1, Ordering::Relaxed);
            return !self.sliding || !self.seen_before(block, mask, b);
        }
        let prev = block[slot].fetch_or(mask, Ordering::Relaxed);
        if prev & mask == mask {
            return false;
        }
        !self.sliding || !self.seen_before(block, mask, b)
    }

    /// Starts loading the cache line [`check_and_insert`](Self::check_and_insert) will need
    /// for `visitor`, without waiting for it: call it early in a request, do other work, then
    /// check. Changes nothing.
    #[inline]
    pub(crate) fn prefetch(&self, visitor: VisitorKey) {
        super::prefetch::prefetch(&self.blocks[self.locate(visitor).0]);
    }

    /// Whether a click of `visitor` at `now_ms` would be unique, without recording it (for a
    /// dry run: nothing changes, not even the rotation).
    pub fn would_be_unique(&self, visitor: VisitorKey, now_ms: i64) -> bool {
        let b = bucket(now_ms, self.bucket_ms);
        let (idx, mask) = self.locate(visitor);
        let block = &self.blocks[idx].0;
        let slot = (b % SLOTS as u64) as usize;
        let current = self.tags.0[slot].load(Ordering::Acquire) == ready(b);
        !(current && block[slot].load(Ordering::Relaxed) & mask == mask
            || self.seen_before(block, mask, b))
    }

    /// Does the rotation work for `now_ms` (see *Rotation* in the type docs) so that no
    /// request pays for it. Cheap when there is nothing to do: one atomic load.
    pub fn rotate(&self, now_ms: i64) {
        self.advance_to(bucket(now_ms, self.bucket_ms));
    }

    /// Bytes this filter occupies (heap and struct), fixed at build.
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Self>() + std::mem::size_of_val(&*self.blocks)
    }

    /// The configured window.
    pub fn window(&self) -> Duration {
        self.window
    }

    /// The bucket length `B = ⌈W / 6⌉` in ms: clicks are remembered for at least `6B` and at
    /// most `7B` ms.
    pub fn bucket_ms(&self) -> u64 {
        self.bucket_ms
    }

    /// Bits set per visitor in a 64-bit word (chosen at build for the expected load).
    pub fn hashes(&self) -> u32 {
        self.k
    }

    /// The predicted false-positive rate (a first click reported as a duplicate) when
    /// `visitors_per_window` distinct visitors click at a steady rate:
    /// `1 − (1 − f(λ))^7` with `λ = visitors · B / W / N` (see the type docs). This is the rate
    /// at the end of a bucket; averaged over a bucket it is slightly lower.
    pub fn false_positive_rate(&self, visitors_per_window: u64) -> f64 {
        let per_bucket =
            visitors_per_window as f64 * self.bucket_ms as f64 / millis(self.window).max(1) as f64;
        query_fp(per_bucket / self.blocks.len() as f64, self.k, LIVE)
    }

    /// Clicks answered without being recorded because their bucket's generation already held
    /// a later bucket (a caller's clock 8 or more buckets behind the others'; see *Rotation*).
    pub fn missed_inserts(&self) -> u64 {
        self.missed.load(Ordering::Relaxed)
    }

    /// The visitor's block and its `k`-bit mask.
    #[inline]
    fn locate(&self, v: VisitorKey) -> (usize, u64) {
        let h = mix(v.0 ^ self.seed);
        let idx = range(h, self.blocks.len());
        // The index uses the high bits of `h`; the bits come from a second, independent mix.
        let mut bits = mix(h ^ 0x9e37_79b9_7f4a_7c15);
        let mut mask = 0u64;
        for _ in 0..self.k {
            mask |= 1 << (bits & 63);
            bits >>= 6;
        }
        (idx, mask)
    }

    /// The slow path when the generation of bucket `b` is not ready: first use of the slot, or
    /// the call that entered `b` has not prepared it yet, so prepare it here (idempotent); if
    /// another call is clearing it, wait for that call. `false` only when the slot already holds
    /// a later bucket (this caller's clock lags by 8 buckets or more).
    #[cold]
    fn wait_ready(&self, b: u64, slot: usize) -> bool {
        self.prepare(b);
        loop {
            let t = self.tags.0[slot].load(Ordering::Acquire);
            if t == ready(b) {
                return true;
            }
            if t != clearing(b) {
                return false;
            }
            std::thread::yield_now();
        }
    }

    /// Whether one of the 6 generations before bucket `b` holds the mask.
    #[inline]
    fn seen_before(&self, block: &[AtomicU64; SLOTS], mask: u64, b: u64) -> bool {
        for x in b.saturating_sub(PREVIOUS)..b {
            let s = (x % SLOTS as u64) as usize;
            let tag = self.tags.0[s].load(Ordering::Acquire);
            if tag == ready(x) && block[s].load(Ordering::Relaxed) & mask == mask {
                // Seqlock check: the word was not being recycled while we read it.
                fence(Ordering::Acquire);
                if self.tags.0[s].load(Ordering::Relaxed) == tag {
                    return true;
                }
            }
        }
        false
    }

    #[inline]
    fn advance_to(&self, b: u64) {
        let mut cur = self.current.load(Ordering::Acquire);
        while cur < b + 1 || cur > b + 1 + FAR {
            match self.current.compare_exchange_weak(
                cur,
                b + 1,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    self.prepare(b);
                    self.prepare(b + 1);
                    return;
                }
                Err(c) => cur = c,
            }
        }
    }

    /// Makes the generation of bucket `x` empty and tagged `x`, unless it already holds `x` or
    /// a later bucket (up to [`FAR`] later), or someone else is clearing it.
    #[cold]
    fn prepare(&self, x: u64) {
        let s = (x % SLOTS as u64) as usize;
        let tag = &self.tags.0[s];
        loop {
            let t = tag.load(Ordering::Acquire);
            if t >= ready(x) && t < ready(x + FAR) {
                return;
            }
            if t == 0 {
                // Never used: the words are still zero.
                if tag
                    .compare_exchange(0, ready(x), Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
                {
                    return;
                }
                continue;
            }
            if tag
                .compare_exchange(t, clearing(x), Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                // Pairs with the reader's fence in `seen_before`: a reader that sees a zeroed
                // word sees the tag change too.
                fence(Ordering::Release);
                for block in self.blocks.iter() {
                    block.0[s].store(0, Ordering::Relaxed);
                }
                // A CAS, not a store: if a call took the slot over meanwhile (only possible
                // from a clock more than FAR buckets away), its tag stands.
                let _ = tag.compare_exchange(
                    clearing(x),
                    ready(x),
                    Ordering::Release,
                    Ordering::Relaxed,
                );
                return;
            }
        }
    }
}

impl Default for UniqueFilter {
    /// [`UniqueFilter::builder`]`().build()`: 24 h, 56 MiB, random seed.
    fn default() -> Self {
        UniqueFilter::builder()
            .build()
            .expect("the default configuration is valid")
    }
}

impl fmt::Debug for UniqueFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UniqueFilter")
            .field("window", &self.window)
            .field("bucket_ms", &self.bucket_ms)
            .field("blocks", &self.blocks.len())
            .field("hashes", &self.k)
            .field("sliding", &self.sliding)
            .field("memory_bytes", &self.memory_bytes())
            .finish_non_exhaustive()
    }
}

/// Builds a [`UniqueFilter`].
///
/// # Default values
/// | setting | default |
/// |---|---|
/// | `window` | 24 h |
/// | `memory_bytes` | 56 MiB (with [`FloodDetector`](crate::FloodDetector)'s 8 MiB: 64 MiB) |
/// | `expected_visitors` | 10 000 000 distinct visitors per window (chooses `k`) |
/// | `false_positive_rate` | none: size by `memory_bytes` |
/// | `sliding` | `false`: the window starts at the unique click |
/// | `seed` | random |
///
/// Sizing: with `false_positive_rate(p)` and no `memory_bytes`, the filter takes the least
/// memory whose predicted rate at `expected_visitors` is at most `p`. With both, `build`
/// checks that the given memory achieves `p` and fails otherwise.
///
/// ```
/// use linkgate::UniqueFilter;
///
/// let f = UniqueFilter::builder().expected_visitors(1_000_000).false_positive_rate(0.001).build()?;
/// assert!(f.false_positive_rate(1_000_000) <= 0.001);
/// assert!(f.memory_bytes() < 8 << 20);
/// # Ok::<(), linkgate::StateConfigError>(())
/// ```
#[derive(Debug, Clone)]
pub struct UniqueFilterBuilder {
    window: Duration,
    memory: Option<usize>,
    visitors: u64,
    rate: Option<f64>,
    sliding: bool,
    seed: Option<u64>,
}

impl Default for UniqueFilterBuilder {
    fn default() -> Self {
        UniqueFilterBuilder {
            window: DEFAULT_WINDOW,
            memory: None,
            visitors: DEFAULT_VISITORS,
            rate: None,
            sliding: false,
            seed: None,
        }
    }
}

impl UniqueFilterBuilder {
    /// How long a visitor's click makes its next clicks on the key duplicates (at least 1 ms).
    pub fn window(mut self, window: Duration) -> Self {
        self.window = window;
        self
    }

    /// The memory budget in bytes, struct included.
    pub fn memory_bytes(mut self, bytes: usize) -> Self {
        self.memory = Some(bytes);
        self
    }

    /// Distinct visitors (visitor + key pairs) per window the filter is sized for.
    pub fn expected_visitors(mut self, visitors: u64) -> Self {
        self.visitors = visitors;
        self
    }

    /// The false-positive rate wanted at `expected_visitors`.
    pub fn false_positive_rate(mut self, rate: f64) -> Self {
        self.rate = Some(rate);
        self
    }

    /// `true`: every click restarts the visitor's window; `false` (default): only a unique
    /// click does.
    pub fn sliding(mut self, sliding: bool) -> Self {
        self.sliding = sliding;
        self
    }

    /// A fixed hash seed (tests, reproducible layouts). Default: random per filter.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Builds the filter, allocating and zeroing its memory.
    pub fn build(self) -> Result<UniqueFilter, StateConfigError> {
        let window_ms = millis(self.window);
        if window_ms == 0 {
            return Err(StateConfigError::Window {
                what: "UniqueFilter",
                window: self.window,
            });
        }
        if self.visitors == 0 {
            return Err(StateConfigError::Visitors);
        }
        match self.rate {
            Some(r) if !(r > 0.0 && r < 1.0) => return Err(StateConfigError::Rate { given: r }),
            _ => {}
        }
        let bucket_ms = window_ms.div_ceil(PREVIOUS);
        let overhead = std::mem::size_of::<UniqueFilter>();
        let min = overhead + 64;
        let per_bucket = self.visitors as f64 * bucket_ms as f64 / window_ms as f64;
        let predicted = |blocks: usize| best_k(per_bucket / blocks as f64, LIVE);
        let memory = match (self.memory, self.rate) {
            (Some(m), _) => m,
            (None, None) => DEFAULT_MEMORY,
            (None, Some(rate)) => {
                let max_blocks = (MAX_MEMORY - overhead) / 64;
                if predicted(max_blocks).1 > rate {
                    return Err(StateConfigError::Unachievable {
                        rate,
                        visitors: self.visitors,
                        memory: MAX_MEMORY,
                        predicted: predicted(max_blocks).1,
                    });
                }
                let (mut lo, mut hi) = (1usize, max_blocks);
                while lo < hi {
                    let mid = lo + (hi - lo) / 2;
                    if predicted(mid).1 <= rate {
                        hi = mid;
                    } else {
                        lo = mid + 1;
                    }
                }
                overhead + lo * 64
            }
        };
        if !(min..=MAX_MEMORY).contains(&memory) {
            return Err(StateConfigError::Memory {
                what: "UniqueFilter",
                given: memory,
                min,
                max: MAX_MEMORY,
            });
        }
        let blocks = (memory - overhead) / 64;
        let (k, fp) = predicted(blocks);
        match self.rate {
            Some(rate) if fp > rate => {
                return Err(StateConfigError::Unachievable {
                    rate,
                    visitors: self.visitors,
                    memory,
                    predicted: fp,
                });
            }
            _ => {}
        }
        Ok(UniqueFilter {
            blocks: lines(blocks),
            tags: Line::default(),
            current: AtomicU64::new(0),
            missed: AtomicU64::new(0),
            bucket_ms,
            window: self.window,
            k,
            seed: mix(self.seed.unwrap_or_else(random_seed)),
            sliding: self.sliding,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000;

    fn filter() -> UniqueFilter {
        UniqueFilter::builder()
            .memory_bytes(64 << 10)
            .seed(7)
            .build()
            .unwrap()
    }

    #[test]
    fn window_edges_follow_the_bucket_formula() {
        let f = filter();
        assert_eq!(f.bucket_ms(), 4 * H as u64);
        let v = VisitorKey::from_hash(1);
        // t0 at the start of a bucket: remembered until t0 + 7B − 1.
        let t0 = 100 * 4 * H;
        assert!(f.check_and_insert(v, t0));
        assert!(!f.check_and_insert(v, t0 + 28 * H - 1));
        assert!(f.check_and_insert(v, t0 + 28 * H));
        // t0 at the end of a bucket: remembered until the end of bucket + 6, i.e. 24 h + 1 ms.
        let v = VisitorKey::from_hash(2);
        let t0 = 200 * 4 * H - 1;
        assert!(f.check_and_insert(v, t0));
        assert!(!f.check_and_insert(v, t0 + 24 * H));
        assert!(f.check_and_insert(v, t0 + 24 * H + 1));
    }

    #[test]
    fn tags_skip_idle_buckets() {
        let f = filter();
        let v = VisitorKey::from_hash(3);
        assert!(f.check_and_insert(v, 0));
        // 100 buckets later the generation slot is reused: the old bits are cleared.
        assert!(f.check_and_insert(v, 100 * 4 * H));
        assert!(!f.check_and_insert(v, 100 * 4 * H + 1));
        assert_eq!(f.missed_inserts(), 0);
    }

    #[test]
    fn would_be_unique_changes_nothing() {
        let f = filter();
        let v = VisitorKey::from_hash(4);
        assert!(f.would_be_unique(v, 5));
        assert!(f.would_be_unique(v, 5));
        assert!(f.check_and_insert(v, 5));
        assert!(!f.would_be_unique(v, 6));
    }

    #[test]
    fn mask_has_at_most_k_bits() {
        let f = filter();
        for i in 0..1000 {
            let (idx, mask) = f.locate(VisitorKey::from_hash(i));
            assert!(idx < f.blocks.len());
            assert!((1..=f.k).contains(&mask.count_ones()));
        }
    }
}
