//! The reconnect backoff shared by the network sinks.

use std::time::{Duration, Instant};

/// After a failed connect, the next attempts wait 50 ms, doubling to 1 s; a success resets it.
///
/// The drain already waits between attempts of one batch ([`RetryPolicy`](crate::RetryPolicy)),
/// so this only stops a sink from paying a whole connect timeout on *every* batch while its
/// server is unreachable: a write inside the backoff window fails at once (transient).
#[derive(Debug)]
pub(crate) struct Reconnect {
    not_before: Option<Instant>,
    delay: Duration,
}

impl Reconnect {
    const FIRST: Duration = Duration::from_millis(50);
    const MAX: Duration = Duration::from_secs(1);

    pub(crate) fn new() -> Reconnect {
        Reconnect {
            not_before: None,
            delay: Self::FIRST,
        }
    }

    /// How long until the next connect attempt is allowed (`None`: now).
    pub(crate) fn wait(&self) -> Option<Duration> {
        let until = self.not_before?;
        until.checked_duration_since(Instant::now())
    }

    /// A connect attempt failed: back off.
    pub(crate) fn failed(&mut self) {
        self.not_before = Some(Instant::now() + self.delay);
        self.delay = (self.delay * 2).min(Self::MAX);
    }

    /// Connected: the next failure starts from the shortest wait again.
    pub(crate) fn connected(&mut self) {
        self.not_before = None;
        self.delay = Self::FIRST;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backs_off_and_resets() {
        let mut r = Reconnect::new();
        assert_eq!(r.wait(), None);
        r.failed();
        let w = r.wait().expect("inside the window");
        assert!(w <= Reconnect::FIRST);
        for _ in 0..10 {
            r.failed();
        }
        assert_eq!(r.delay, Reconnect::MAX);
        r.connected();
        assert_eq!((r.wait(), r.delay), (None, Reconnect::FIRST));
    }
}
