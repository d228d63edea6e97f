//! Click floods: more than N clicks per window from one source, counted in a count-min sketch.

use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;

use crate::ip::canonical;
use crate::notes::ClickNotes;

use super::sizing::{
    Line, MAX_MEMORY, SLOTS, StateConfigError, bucket, lines, millis, mix, random_seed, range,
};

/// Buckets before the current one that are counted: the window is 7 buckets long.
const PREVIOUS: u64 = SLOTS as u64 - 1;
const MAX_ROWS: usize = 8;
const DEFAULT_MEMORY: usize = 8 << 20;
const DEFAULT_ROWS: usize = 4;
const DEFAULT_LIMIT: u32 = 20;
const DEFAULT_WINDOW: Duration = Duration::from_secs(60);

/// Reason of a flagged click counted per source.
pub const FLOOD_SOURCE: &str = "flood:source";
/// Reason of a flagged click counted per source and key ([`FloodDetectorBuilder::per_key`]).
pub const FLOOD_SOURCE_KEY: &str = "flood:source+key";

/// The two flood reasons, in the order of [`flagged_notes`]'s arrays.
const FLOOD_REASONS: [&str; 2] = [FLOOD_SOURCE, FLOOD_SOURCE_KEY];

/// `notes` with each flood reason ([`FLOOD_SOURCE`], [`FLOOD_SOURCE_KEY`]) as its
/// `suspicious_reason`: built ahead (per routing label, and once for clicks without one) so that
/// flagging a click shares a label set instead of allocating one.
pub(crate) fn flagged_notes(notes: &ClickNotes) -> [Arc<ClickNotes>; 2] {
    FLOOD_REASONS.map(|r| {
        Arc::new(ClickNotes {
            suspicious_reason: Some(Bytes::from_static(r.as_bytes())),
            ..notes.clone()
        })
    })
}

/// [`flagged_notes`] of a click with no other label, built once per process.
pub(crate) fn flagged_only() -> &'static [Arc<ClickNotes>; 2] {
    static ONLY: OnceLock<[Arc<ClickNotes>; 2]> = OnceLock::new();
    ONLY.get_or_init(|| flagged_notes(&ClickNotes::default()))
}

/// The index of a flood reason in [`flagged_notes`]'s arrays, `None` for any other reason.
pub(crate) fn flood_reason_index(reason: &str) -> Option<usize> {
    FLOOD_REASONS.iter().position(|r| *r == reason)
}

/// What [`FloodDetector::check`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FloodVerdict {
    /// Clicks from this source (and key, per key) within the window, this one included: never
    /// below the true count while that is within the limit, see [`FloodDetector`] for how far
    /// above. Past the limit it says only "more than the limit": each bucket's counter stops at
    /// `limit + 1` (see *Saturation* there), so a source that sent 5 000 clicks in a minute may
    /// read anything from `limit + 1` up.
    pub count: u32,
    /// The configured limit.
    pub limit: u32,
    /// `count > limit`.
    pub flagged: bool,
    /// [`FLOOD_SOURCE`] or [`FLOOD_SOURCE_KEY`] when flagged, `None` otherwise.
    pub reason: Option<&'static str>,
}

/// Flags click floods: more than `limit` clicks within the window from one source — an IPv4
/// address or an IPv6 /64 (optionally per link key) — in fixed memory, lock-free.
///
/// ```
/// use linkgate::FloodDetector;
/// use std::time::Duration;
///
/// let flood = FloodDetector::builder()
///     .limit(3)
///     .window(Duration::from_secs(60))
///     .memory_bytes(1 << 20)
///     .build()?;
/// let ip = "2001:db8::1".parse()?;
/// let same_64 = "2001:db8::ffff".parse()?;
/// let t = 1_800_000_000_000;
/// for i in 0..3 {
///     assert!(!flood.check(ip, None, t + i).flagged);
/// }
/// let v = flood.check(same_64, None, t + 3); // the 4th click from the /64
/// assert!(v.flagged);
/// assert_eq!((v.count, v.reason), (4, Some("flood:source")));
/// assert!(!flood.check(ip, None, t + 70_000).flagged); // the window has passed
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// Pass the peer's full address (not the /24 or /48 a click records): the detector keeps
/// IPv4 addresses whole and cuts IPv6 to its /64, the unit one subscriber usually gets. It
/// stores no address, only counters.
///
/// # Guarantees
/// - **Window.** Time is cut into buckets of `B = ⌈W / 7⌉` ms; a check counts the clicks of
///   the current bucket and the 7 before it. So a click is counted for at least W (every `t <
///   t0 + 7B`) and never after `t0 + 8B`: with the 60 s default, between 60 and 69 s.
/// - **No under-count below the limit, so a real flood is always flagged**: every click
///   increments a counter in each of the `rows` rows (atomic `fetch_add`, never a lost
///   update) unless that counter already holds more than `limit` clicks for its bucket
///   (*Saturation*, below), and the count is the minimum over the rows, each of which is at
///   least `min(true count, limit + 1)`. Under concurrency the count a call returns is read
///   after all its increments: the i-th call (in the order they finish) sees at least
///   `min(i, limit + 1)`, so at most `limit` clicks of a source are left unflagged in a
///   window, as when calls are sequential. Races can only *over*-count: a call may also see
///   clicks of calls still in flight (at most one per other thread).
/// - **Saturation**: a counter that already holds more than `limit` clicks of its bucket is
///   only read, not incremented. Every source counted there is past the limit in that row
///   whatever the click adds (a row's count is the sum of its bucket counters), so every
///   click of a source past the limit is still flagged, and no click is flagged that counting
///   every click would not flag: an over-counted counter just stops growing into false flags
///   for light sources sharing it. What it buys: during a flood the source's cache lines stop
///   being written, so request threads serving it no longer bounce those lines between their
///   cores (2 threads on one flooding source: 0.09× the time per check, BENCHMARKS.md). What
///   it costs: past the limit, [`FloodVerdict::count`] no longer tells how far past.
/// - **Over-count from the sketch** (a count-min sketch, Cormode & Muthukrishnan 2005,
///   without conservative update, which could under-count under concurrent updates): with
///   `T` = all clicks counted in the window from all sources, the count exceeds the true one
///   by more than `ε·T` with probability at most `δ`, `ε = e / width`, `δ = e^−rows`, `width` =
///   memory / 64 bytes / rows. Default (8 MiB, 4 rows): width 32 767, ε = 8.3·10⁻⁵, δ = 1.8 %;
///   at 100 000 clicks per minute in all, ε·T ≈ 8. A light source is falsely flagged only if
///   its counter shares heavy hitters in every row: with `H` flooding sources about `(H /
///   width)^rows` (about 10⁻¹⁰ for 100 flooding sources).
/// - **Time granularity** is the other over-count: clicks up to `W + B` old still count.
/// - **Memory** is fixed at build: [`memory_bytes`](Self::memory_bytes). On Linux it is asked
///   to sit on 2 MiB pages (`MADV_HUGEPAGE`), like the [`UniqueFilter`](super::UniqueFilter)'s.
///
/// # Layout and rotation
/// A row holds `width` 64-byte cells; a cell holds one counter per bucket slot (8). Each
/// counter is one `u64`: 32 bits of bucket number and 32 bits of count. A counter whose
/// bucket number is not the caller's is reset by the first click that finds it (one
/// compare-exchange), so the state rotates with no clearing pass, no lock and no pause.
/// A check costs `rows` cache lines. The [`Gate`](crate::Gate) needs only the flag, so it stops
/// reading counts at the first row within the limit (the minimum is then within it too), and
/// takes a row whose newest bucket alone is past the limit as past it without reading its
/// other buckets: a click that is not part of a flood reads one row's counters (it still
/// counts in every row), and a flagged click of a flood one counter per row.
/// A counter holds at most `min(limit, 2³² − 2¹⁷) + 1` clicks per bucket, plus one per other
/// thread in flight, so it never overflows into its bucket number (and a limit above
/// 2³² − 2¹⁷ flags nothing); a bucket number repeats every 2³² buckets (over 1 000 years at
/// the default window); callers' clocks must agree to within a bucket.
pub struct FloodDetector {
    cells: Box<[Line]>,
    width: usize,
    rows: usize,
    limit: u32,
    window: Duration,
    bucket_ms: u64,
    per_key: bool,
    seed: u64,
}

impl FloodDetector {
    /// A builder with the defaults (20 clicks per 60 s per source, 8 MiB, 4 rows).
    pub fn builder() -> FloodDetectorBuilder {
        FloodDetectorBuilder::default()
    }

    /// Counts a click from `ip` (on link `key`, used only with
    /// [`per_key(true)`](FloodDetectorBuilder::per_key); without a key the source alone is
    /// counted, with the reason [`FLOOD_SOURCE`]) at `now_ms` and returns the count within the
    /// window, this click included. O(rows) cache lines (their misses overlap); lock-free, no
    /// allocation.
    #[inline]
    pub fn check(&self, ip: IpAddr, key: Option<&[u8]>, now_ms: i64) -> FloodVerdict {
        let (b, idx, keyed) = self.count_click(ip, key, now_ms);
        let count = idx[..self.rows]
            .iter()
            .map(|&i| sum(&self.cells[i].0, b))
            .min()
            .unwrap_or(0);
        self.verdict(count, keyed)
    }

    /// [`check`](Self::check) for a caller that needs only the flag: the reason if flagged.
    /// The click is counted in every row all the same; only the reading stops early, at the
    /// first row whose count is within the limit (then so is the minimum), and a row whose
    /// newest bucket alone is past the limit is not summed further. So a click that is not
    /// part of a flood, nearly every click, reads one row's counters instead of all, and a
    /// click of a flood one counter per row.
    #[inline]
    pub(crate) fn check_flag(
        &self,
        ip: IpAddr,
        key: Option<&[u8]>,
        now_ms: i64,
    ) -> Option<&'static str> {
        let (b, idx, keyed) = self.count_click(ip, key, now_ms);
        let limit = u64::from(self.limit);
        idx[..self.rows]
            .iter()
            .all(|&i| exceeds(&self.cells[i].0, b, limit))
            .then_some(reason(keyed))
    }

    /// Adds the click to its counter in each row; returns the bucket, the rows' cells and
    /// whether the key was counted.
    #[inline]
    fn count_click(
        &self,
        ip: IpAddr,
        key: Option<&[u8]>,
        now_ms: i64,
    ) -> (u64, [usize; MAX_ROWS], bool) {
        let b = bucket(now_ms, self.bucket_ms);
        let (h, keyed) = self.hash(ip, key);
        let slot = (b % SLOTS as u64) as usize;
        let mut idx = [0usize; MAX_ROWS];
        let mut seen = [0u64; MAX_ROWS];
        // Plain loads first, so the rows' cache misses overlap; an atomic read-modify-write
        // would wait for each miss in turn.
        for r in 0..self.rows {
            idx[r] = self.cell(h, r);
            seen[r] = self.cells[idx[r]].0[slot].load(Ordering::Relaxed);
        }
        for r in 0..self.rows {
            bump(&self.cells[idx[r]].0[slot], b as u32, seen[r], self.limit);
        }
        (b, idx, keyed)
    }

    /// Starts loading the `rows` cache lines [`check`](Self::check) will need for this
    /// source, without waiting for them: call it early in a request, do other work, then
    /// check. Changes nothing.
    #[inline]
    pub(crate) fn prefetch(&self, ip: IpAddr, key: Option<&[u8]>) {
        let (h, _) = self.hash(ip, key);
        for r in 0..self.rows {
            super::prefetch::prefetch(&self.cells[self.cell(h, r)]);
        }
    }

    /// The verdict [`check`](Self::check) would return at `now_ms`, without counting the
    /// click (for a dry run).
    pub fn peek(&self, ip: IpAddr, key: Option<&[u8]>, now_ms: i64) -> FloodVerdict {
        let b = bucket(now_ms, self.bucket_ms);
        let (h, keyed) = self.hash(ip, key);
        let count = (0..self.rows)
            .map(|r| sum(&self.cells[self.cell(h, r)].0, b))
            .min()
            .unwrap_or(0);
        self.verdict(count + 1, keyed)
    }

    /// Bytes this detector occupies (heap and struct), fixed at build.
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Self>() + std::mem::size_of_val(&*self.cells)
    }

    /// The configured limit: a click is flagged when its count exceeds it.
    pub fn limit(&self) -> u32 {
        self.limit
    }

    /// The configured window.
    pub fn window(&self) -> Duration {
        self.window
    }

    /// The bucket length `B = ⌈W / 7⌉` in ms: a click counts for at least `7B` and at most
    /// `8B` ms.
    pub fn bucket_ms(&self) -> u64 {
        self.bucket_ms
    }

    /// Rows of the sketch (`d`).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Counters per row and bucket (`w`).
    pub fn width(&self) -> usize {
        self.width
    }

    /// `(ε, δ)`: the count exceeds the true one by more than `ε · T` (`T` = all clicks in the
    /// window) with probability at most `δ`.
    pub fn error_bound(&self) -> (f64, f64) {
        (
            std::f64::consts::E / self.width as f64,
            (-(self.rows as f64)).exp(),
        )
    }

    /// Whether clicks are counted per source and key.
    pub fn per_key(&self) -> bool {
        self.per_key
    }

    fn verdict(&self, count: u64, keyed: bool) -> FloodVerdict {
        let count = u32::try_from(count).unwrap_or(u32::MAX);
        let flagged = count > self.limit;
        FloodVerdict {
            count,
            limit: self.limit,
            flagged,
            reason: flagged.then_some(reason(keyed)),
        }
    }

    #[inline]
    fn cell(&self, h: u64, row: usize) -> usize {
        row * self.width
            + range(
                mix(h.wrapping_add((row as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15))),
                self.width,
            )
    }

    #[inline]
    fn hash(&self, ip: IpAddr, key: Option<&[u8]>) -> (u64, bool) {
        let mut h = foldhash::fast::FixedState::with_seed(self.seed).build_hasher();
        match canonical(ip) {
            IpAddr::V4(v4) => {
                h.write_u8(4);
                h.write_u32(u32::from(v4));
            }
            IpAddr::V6(v6) => {
                h.write_u8(6);
                h.write_u64((u128::from(v6) >> 64) as u64);
            }
        }
        let keyed = match key {
            Some(k) if self.per_key => {
                h.write_usize(k.len());
                h.write(k);
                true
            }
            _ => false,
        };
        (h.finish(), keyed)
    }
}

/// The reason of a flagged click: counted per source and key, or per source.
fn reason(keyed: bool) -> &'static str {
    if keyed {
        FLOOD_SOURCE_KEY
    } else {
        FLOOD_SOURCE
    }
}

/// The most a counter is incremented to for a limit near `u32::MAX`, leaving room below 2³² for
/// one click in flight per thread.
const COUNT_CAP: u32 = u32::MAX - (1 << 17);

/// Adds one click of bucket `tag` to a counter, resetting it first if it holds an older bucket;
/// `v` is a recent value of the counter. A counter already past `limit` for this bucket is left
/// as it is: every source it counts is flagged whatever this click adds (see *Saturation* on
/// [`FloodDetector`]).
#[inline]
fn bump(w: &AtomicU64, tag: u32, mut v: u64, limit: u32) {
    loop {
        let t = (v >> 32) as u32;
        if t == tag {
            // `v` may be stale, but within a bucket a counter only grows: if it was past the
            // limit, it still is.
            if v as u32 <= limit.min(COUNT_CAP) {
                w.fetch_add(1, Ordering::SeqCst);
            }
            return;
        }
        if v != 0 && (1..=64 * SLOTS as u32).contains(&t.wrapping_sub(tag)) {
            // A newer bucket already: this caller's clock lags by 8 buckets or more.
            return;
        }
        match w.compare_exchange_weak(
            v,
            u64::from(tag) << 32 | 1,
            Ordering::SeqCst,
            Ordering::Relaxed,
        ) {
            Ok(_) => return,
            Err(x) => v = x,
        }
    }
}

/// The clicks of bucket `x` in a cell: its slot's count if the slot holds that bucket, else 0.
#[inline]
fn clicks_in(cell: &[AtomicU64; SLOTS], x: u64) -> u64 {
    let v = cell[(x % SLOTS as u64) as usize].load(Ordering::SeqCst);
    if (v >> 32) as u32 == x as u32 {
        v & 0xffff_ffff
    } else {
        0
    }
}

/// The clicks of a cell in buckets `b − 7 ..= b`.
#[inline]
fn sum(cell: &[AtomicU64; SLOTS], b: u64) -> u64 {
    (0..=PREVIOUS.min(b))
        .map(|age| clicks_in(cell, b - age))
        .sum()
}

/// `sum(cell, b) > limit`, looking at the newest bucket alone first: a flooding source's counter
/// for the current bucket is past the limit on its own (it saturates at `limit + 1`), so a
/// flagged click of a flood reads one counter per row instead of eight. Otherwise the whole
/// sum, as [`sum`] (a loop with an exit per bucket measured 3 % slower on the common path).
#[inline]
fn exceeds(cell: &[AtomicU64; SLOTS], b: u64, limit: u64) -> bool {
    clicks_in(cell, b) > limit || sum(cell, b) > limit
}

impl Default for FloodDetector {
    /// [`FloodDetector::builder`]`().build()`: 20 clicks per 60 s per source, 8 MiB.
    fn default() -> Self {
        FloodDetector::builder()
            .build()
            .expect("the default configuration is valid")
    }
}

impl fmt::Debug for FloodDetector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FloodDetector")
            .field("limit", &self.limit)
            .field("window", &self.window)
            .field("per_key", &self.per_key)
            .field("rows", &self.rows)
            .field("width", &self.width)
            .field("memory_bytes", &self.memory_bytes())
            .finish_non_exhaustive()
    }
}

/// Builds a [`FloodDetector`].
///
/// # Default values
/// | setting | default |
/// |---|---|
/// | `limit` | 20 clicks (the 21st is flagged) |
/// | `window` | 60 s |
/// | `per_key` | `false`: count per source across all links |
/// | `memory_bytes` | 8 MiB (with [`UniqueFilter`](crate::UniqueFilter)'s 56 MiB: 64 MiB) |
/// | `rows` | 4 |
/// | `seed` | random |
///
/// ```
/// use linkgate::FloodDetector;
///
/// let f = FloodDetector::builder().limit(100).per_key(true).memory_bytes(4 << 20).build()?;
/// assert!(f.memory_bytes() <= 4 << 20);
/// let (eps, delta) = f.error_bound();
/// assert!(eps < 2e-4 && delta < 0.02);
/// # Ok::<(), linkgate::StateConfigError>(())
/// ```
#[derive(Debug, Clone)]
pub struct FloodDetectorBuilder {
    limit: u32,
    window: Duration,
    per_key: bool,
    memory: usize,
    rows: usize,
    seed: Option<u64>,
}

impl Default for FloodDetectorBuilder {
    fn default() -> Self {
        FloodDetectorBuilder {
            limit: DEFAULT_LIMIT,
            window: DEFAULT_WINDOW,
            per_key: false,
            memory: DEFAULT_MEMORY,
            rows: DEFAULT_ROWS,
            seed: None,
        }
    }
}

impl FloodDetectorBuilder {
    /// Clicks allowed per window and source; more are flagged (at least 1).
    pub fn limit(mut self, limit: u32) -> Self {
        self.limit = limit;
        self
    }

    /// The window (at least 1 ms).
    pub fn window(mut self, window: Duration) -> Self {
        self.window = window;
        self
    }

    /// `true`: count per source and link key; `false` (default): per source.
    pub fn per_key(mut self, per_key: bool) -> Self {
        self.per_key = per_key;
        self
    }

    /// The memory budget in bytes, struct included (at least one cell per row).
    pub fn memory_bytes(mut self, bytes: usize) -> Self {
        self.memory = bytes;
        self
    }

    /// Rows of the sketch, `1..=8`: more rows, fewer false flags, more cache lines per check.
    pub fn rows(mut self, rows: usize) -> Self {
        self.rows = rows;
        self
    }

    /// A fixed hash seed (tests). Default: random per detector.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Builds the detector, allocating and zeroing its memory.
    pub fn build(self) -> Result<FloodDetector, StateConfigError> {
        let window_ms = millis(self.window);
        if window_ms == 0 {
            return Err(StateConfigError::Window {
                what: "FloodDetector",
                window: self.window,
            });
        }
        if self.limit == 0 {
            return Err(StateConfigError::Flood {
                setting: "limit",
                given: 0,
                range: "1..",
            });
        }
        if !(1..=MAX_ROWS).contains(&self.rows) {
            return Err(StateConfigError::Flood {
                setting: "rows",
                given: self.rows as u64,
                range: "1..=8",
            });
        }
        let overhead = std::mem::size_of::<FloodDetector>();
        let min = overhead + 64 * self.rows;
        if !(min..=MAX_MEMORY).contains(&self.memory) {
            return Err(StateConfigError::Memory {
                what: "FloodDetector",
                given: self.memory,
                min,
                max: MAX_MEMORY,
            });
        }
        let width = (self.memory - overhead) / 64 / self.rows;
        Ok(FloodDetector {
            cells: lines(width * self.rows),
            width,
            rows: self.rows,
            limit: self.limit,
            window: self.window,
            bucket_ms: window_ms.div_ceil(PREVIOUS),
            per_key: self.per_key,
            seed: mix(self.seed.unwrap_or_else(random_seed)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bump_resets_stale_and_keeps_newer() {
        let w = AtomicU64::new(0);
        let bump = |w: &AtomicU64, tag| bump(w, tag, w.load(Ordering::Relaxed), u32::MAX - 1);
        bump(&w, 5);
        bump(&w, 5);
        assert_eq!(w.load(Ordering::Relaxed), 5 << 32 | 2);
        bump(&w, 13); // 8 buckets later: reset
        assert_eq!(w.load(Ordering::Relaxed), 13 << 32 | 1);
        bump(&w, 5); // a lagging caller does not wipe the newer bucket
        assert_eq!(w.load(Ordering::Relaxed), 13 << 32 | 1);
        // Bucket numbers wrap: u32::MAX → 7 is 8 buckets later.
        let w = AtomicU64::new(u64::from(u32::MAX) << 32 | 9);
        bump(&w, 7);
        assert_eq!(w.load(Ordering::Relaxed), 7 << 32 | 1);
    }

    #[test]
    fn bump_stops_past_the_limit_and_resets_in_a_new_bucket() {
        let w = AtomicU64::new(0);
        let bump = |w: &AtomicU64, tag, limit| bump(w, tag, w.load(Ordering::Relaxed), limit);
        for _ in 0..10 {
            bump(&w, 5, 3);
        }
        assert_eq!(w.load(Ordering::Relaxed), 5 << 32 | 4, "stops at limit + 1");
        // A stale read within the limit still counts (the counter only grows meanwhile).
        super::bump(&w, 5, 5 << 32 | 2, 3);
        assert_eq!(w.load(Ordering::Relaxed), 5 << 32 | 5);
        bump(&w, 6, 3); // the next bucket's counter starts over
        assert_eq!(w.load(Ordering::Relaxed), 6 << 32 | 1);
        // A limit near u32::MAX: the count never reaches the bucket number's bits.
        let w = AtomicU64::new(5 << 32 | u64::from(COUNT_CAP));
        bump(&w, 5, u32::MAX);
        bump(&w, 5, u32::MAX);
        assert_eq!(
            w.load(Ordering::Relaxed),
            5 << 32 | u64::from(COUNT_CAP + 1)
        );
    }

    #[test]
    fn check_flag_flags_exactly_what_check_flags() {
        // Two detectors with the same seed see the same clicks, one through `check`, one
        // through `check_flag`. A tiny sketch (64 cells per row, 150 sources, a 200 ms
        // window) makes rows collide, so the rows' counts differ and the early stop is
        // exercised both ways; per-key counting and the window passing are in the mix.
        for per_key in [false, true] {
            let build = || {
                FloodDetector::builder()
                    .limit(5)
                    .rows(4)
                    .per_key(per_key)
                    .window(Duration::from_millis(200))
                    .memory_bytes(std::mem::size_of::<FloodDetector>() + 64 * 4 * 64)
                    .seed(7)
                    .build()
                    .unwrap()
            };
            let (full, flag) = (build(), build());
            let (mut flagged, mut unflagged) = (0, 0);
            let mut x = 0x9E37_79B9_7F4A_7C15u64;
            for i in 0..20_000i64 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let ip = IpAddr::from([10, 0, 0, (x % 150) as u8]);
                let key = [b'k', (x >> 8) as u8 % 3];
                let t = 1_800_000_000_000 + i;
                let v = full.check(ip, Some(&key), t);
                assert_eq!(flag.check_flag(ip, Some(&key), t), v.reason, "click {i}");
                if v.flagged {
                    flagged += 1;
                } else {
                    unflagged += 1;
                }
            }
            assert!(flagged > 100 && unflagged > 100, "{flagged} / {unflagged}");
        }
    }

    #[test]
    fn sum_reads_only_live_buckets() {
        let cell: [AtomicU64; SLOTS] = Default::default();
        for x in 0..20u64 {
            let w = &cell[(x % 8) as usize];
            bump(w, x as u32, w.load(Ordering::Relaxed), u32::MAX - 1);
        }
        // Buckets 12..=19 are live at 19, one click each.
        assert_eq!(sum(&cell, 19), 8);
        // At 25, buckets 18 and 19 only.
        assert_eq!(sum(&cell, 25), 2);
        assert_eq!(sum(&cell, 40), 0);
        for b in [19, 25, 40] {
            for limit in 0..10 {
                assert_eq!(
                    exceeds(&cell, b, limit),
                    sum(&cell, b) > limit,
                    "{b} {limit}"
                );
            }
        }
    }
}
