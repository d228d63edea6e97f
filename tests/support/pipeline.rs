//! A click pipeline's counters, as the sink tests check them.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use linkgate::Stats;

/// Every click recorded is accounted for and none is still in flight.
pub fn reconciles(s: &Stats) -> bool {
    s.in_flight == 0 && s.recorded == s.delivered + s.dropped + s.failed
}

/// Polls `stats` every 5 ms until `cond` holds and returns those stats; fails the test after
/// `timeout`, naming `what` it waited for.
pub fn wait_for(
    stats: impl Fn() -> Stats,
    what: &str,
    timeout: Duration,
    cond: impl Fn(&Stats) -> bool,
) -> Stats {
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
