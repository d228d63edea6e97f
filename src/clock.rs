//! Wall-clock access, kept in one place so the core builds without an OS clock.

/// Milliseconds since the Unix epoch from the OS clock.
#[cfg(feature = "os")]
pub fn system_now_ms() -> i64 {
    use std::time::{SystemTime, UNIX_EPOCH};
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_millis() as i64,
        Err(e) => -(e.duration().as_millis() as i64),
    }
}

/// Milliseconds since the Unix epoch for click timestamps: the OS clock, read through the CPU's
/// time-stamp counter.
///
/// `SystemTime::now` costs a `clock_gettime` (25–45 ns on the VMs this crate is benchmarked on);
/// this reads the counter through [`quanta`] (the invariant TSC on x86-64, the system counter on
/// aarch64) and adds the time since a per-thread anchor taken from the OS clock. Where quanta
/// finds no usable counter (x86-64 without an invariant TSC, as on some VMs; other targets) it
/// reads the OS monotonic clock instead, and this costs about what `SystemTime::now` does.
///
/// # Guarantees
/// - **Accuracy**: each thread re-reads the OS clock at most one second after its last anchor
///   (and whenever the counter reads below the anchor), so the result is the OS clock plus the
///   counter's calibration drift over at most one second (quanta calibrates its scale against
///   the OS clock at start-up): in practice the same millisecond, or one off at a millisecond
///   boundary (the test allows 5 ms, for a calibration disturbed by a busy machine). A step of
///   the OS clock (NTP, an operator) shows within one second.
/// - **Cost**: one counter read, one multiply, no system call and no lock; one OS clock read per
///   thread per second. The first call in the process calibrates the counter (0.5–200 ms, once);
///   [`Gate`](crate::Gate) makes that call when it is built.
/// - **Not monotonic** across re-anchors (it follows the OS clock, as `SystemTime` does);
///   [`ClickId`](crate::ClickId) keeps its own ids monotonic per thread.
///
/// ```
/// let (a, t, b) = (linkgate::system_now_ms(), linkgate::fast_now_ms(), linkgate::system_now_ms());
/// assert!(a - 5 <= t && t <= b + 5);
/// ```
#[cfg(feature = "os")]
#[inline]
pub fn fast_now_ms() -> i64 {
    fast::now_ms()
}

#[cfg(feature = "os")]
mod fast {
    use std::cell::Cell;
    use std::sync::OnceLock;
    use std::time::{SystemTime, UNIX_EPOCH};

    /// Longest a thread goes without re-reading the OS clock.
    const REANCHOR_NS: u64 = 1_000_000_000;

    static CLOCK: OnceLock<quanta::Clock> = OnceLock::new();

    thread_local! {
        /// (counter at the anchor, Unix ns at the anchor); counter 0 = no anchor yet.
        static ANCHOR: Cell<(u64, i64)> = const { Cell::new((0, 0)) };
    }

    fn system_now_ns() -> i64 {
        let ns = |d: std::time::Duration| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX);
        match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(d) => ns(d),
            Err(e) => -ns(e.duration()),
        }
    }

    #[inline]
    pub(super) fn now_ms() -> i64 {
        let clock = CLOCK.get_or_init(quanta::Clock::new);
        let raw = clock.raw();
        ANCHOR.with(|a| {
            let (at, ns) = a.get();
            let since = clock.delta_as_nanos(at, raw);
            // Re-anchor when due, and when the counter reads below the anchor (another core's
            // counter behind, or a counter reset by a VM migration or resume): never freeze.
            if at == 0 || raw < at || since >= REANCHOR_NS {
                let ns = system_now_ns();
                a.set((clock.raw(), ns));
                return ns.div_euclid(1_000_000);
            }
            // `since` < 1 s: no overflow before the year 2262.
            (ns + since as i64).div_euclid(1_000_000)
        })
    }
}

/// The default clock of a table: the OS clock with feature `os`, none without it.
pub(crate) fn default_clock() -> Option<fn() -> i64> {
    #[cfg(feature = "os")]
    {
        Some(fast_now_ms)
    }
    #[cfg(not(feature = "os"))]
    {
        None
    }
}

/// Parses an RFC 3339 UTC timestamp (`2026-12-01T00:00:00Z`, fractional seconds allowed) or an
/// integer of Unix seconds into Unix milliseconds.
pub(crate) fn parse_instant(s: &str) -> Result<i64, String> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<i64>() {
        return secs
            .checked_mul(1000)
            .ok_or_else(|| format!("`{s}` is out of range"));
    }
    let t = humantime::parse_rfc3339(s).map_err(|e| {
        format!("`{s}` is not an RFC 3339 UTC time like 2026-12-01T00:00:00Z or Unix seconds ({e})")
    })?;
    let d = t
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|_| format!("`{s}` is before 1970"))?;
    Ok(d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    /// The fast clock stays within a few milliseconds of the OS clock, across re-anchors (a
    /// unit or anchoring mistake would be off by far more).
    #[cfg(feature = "os")]
    #[test]
    fn fast_clock_follows_the_os_clock() {
        let end = std::time::Instant::now() + std::time::Duration::from_millis(2500);
        let mut reads = 0u64;
        while std::time::Instant::now() < end {
            let a = super::system_now_ms();
            let t = super::fast_now_ms();
            let b = super::system_now_ms();
            assert!(a - 5 <= t && t <= b + 5, "{a} <= {t} <= {b}");
            reads += 1;
            if reads % 1000 == 0 {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        }
        assert!(reads > 1000);
    }

    #[test]
    fn instants() {
        assert_eq!(
            super::parse_instant("1700000000").unwrap(),
            1_700_000_000_000
        );
        assert_eq!(
            super::parse_instant("1970-01-01T00:00:01.5Z").unwrap(),
            1500
        );
        assert!(super::parse_instant("yesterday").is_err());
        assert!(super::parse_instant("2026-12-01T00:00:00+01:00").is_err());
    }
}
