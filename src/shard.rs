//! A small per-thread index, used to spread shared counters and refcounts over several cache
//! lines so that request threads on different cores do not contend on one.

use std::sync::atomic::{AtomicUsize, Ordering};

/// How many shards sharded state has.
pub(crate) const SHARDS: usize = 8;

thread_local! {
    static SHARD: usize = {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS
    };
}

/// This thread's shard, in `0..SHARDS` (threads are spread round-robin).
pub(crate) fn index() -> usize {
    SHARD.with(|s| *s)
}
