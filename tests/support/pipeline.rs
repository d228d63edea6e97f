//! A click pipeline's counters, as the sink tests check them.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use linkgate::Stats;

/// Every click recorded is accounted for and none is still in flight.
pub fn reconciles(s: &Stats) -> bool {
    s.in_flight == 0 && s.recorded == s.delivered + s.dropped + s.failed
}

/// Polls `stats` (usually the pipeline's [`Stats`], or readings built from them) until `cond`
/// holds and returns that reading, sleeping 5 ms between readings (a reading may take longer
/// itself); fails the test after `timeout`, naming `what` it waited for.
pub fn wait_for<T: std::fmt::Debug>(
    stats: impl Fn() -> T,
    what: &str,
    timeout: Duration,
    cond: impl Fn(&T) -> bool,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        let s = stats();
        if cond(&s) {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {s:?}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}
