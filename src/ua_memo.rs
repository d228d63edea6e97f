//! A per-thread memo of what a gate works out from a `User-Agent` alone.
//!
//! The bot classification (about 1 000 instructions for a 110-byte desktop Chrome User-Agent,
//! most of it the prefilter's scan) and the device of the targeting rules (about 300: two
//! substring searches) depend only on the User-Agent's bytes and on the gate's detector, which
//! never changes. Real traffic repeats a few User-Agents over and over: since User-Agent
//! reduction, Chrome and Edge send `Chrome/131.0.0.0` whatever the build, so one string covers
//! every desktop Chrome of a version and platform. Each thread that calls `Gate::handle` keeps
//! the answers for the User-Agents it sees again and again.
//!
//! - **Exact.** An entry answers only for the same gate and the same bytes (compared in full,
//!   not only by hash): a hit returns exactly what computing would. A miss computes, then
//!   stores; answers the request did not need (a device when no rule asks) stay uncomputed.
//! - **Bounded.** [`SLOTS`] direct-mapped entries per thread, each holding a User-Agent of up
//!   to [`MAX_UA`] bytes inline (longer ones are computed every time): 86 KiB per thread,
//!   allocated on the thread's first store and freed when the thread ends. A User-Agent that
//!   misses twice in a row at its slot (no other miss there in between) replaces the entry;
//!   one seen once only leaves its hash. So a flood of one-off User-Agents neither evicts the
//!   common ones nor pays for copying itself in.
//! - **No sharing, no locks.** Threads never see each other's entries.

use std::cell::RefCell;
use std::hash::BuildHasher;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::rules::Device;

/// Entries per thread (a power of two).
const SLOTS: usize = 256;
/// The longest User-Agent memoised, in bytes (every browser User-Agent of `tests/data` fits).
const MAX_UA: usize = 304;
const _: () = assert!(MAX_UA <= u16::MAX as usize); // `Entry::len`

/// What a User-Agent alone decides, as far as computed (`None`: not yet).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct UaFacts {
    /// The bot detector's matching entry (`Some(None)`: no pattern matches).
    #[cfg(feature = "fraud")]
    pub(crate) bot: Option<Option<u32>>,
    /// The device the targeting rules see.
    pub(crate) device: Option<Option<Device>>,
}

/// One gate's view of the per-thread memo.
#[derive(Debug, Clone)]
pub(crate) struct UaMemo {
    /// Unique per gate (never reused), part of every entry's key.
    owner: u64,
}

/// Where a User-Agent lives in the memo, from [`UaMemo::get`] for [`UaMemo::put`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ticket {
    hash: u64,
}

/// A 64-bit digest of a User-Agent (its length and bytes; foldhash with a seed drawn once per
/// process): the memo's key, and the User-Agent's part of a unique-filter `VisitorKey`, so a
/// request hashes its User-Agent once.
pub(crate) fn ua_digest(ua: &[u8]) -> u64 {
    static SEED: OnceLock<u64> = OnceLock::new();
    let seed = *SEED.get_or_init(crate::click_id::seed);
    foldhash::fast::FixedState::with_seed(seed).hash_one(ua)
}

struct Entry {
    owner: u64,
    hash: u64,
    /// The hash of the last User-Agent that missed here: one seen a second time replaces the
    /// entry, one seen once does not (a stream of one-off User-Agents leaves the entries of the
    /// common ones alone, and costs only this write).
    pending: u64,
    facts: UaFacts,
    len: u16,
    ua: [u8; MAX_UA],
}

const EMPTY: Entry = Entry {
    owner: 0,
    hash: 0,
    pending: 0,
    facts: UaFacts {
        #[cfg(feature = "fraud")]
        bot: None,
        device: None,
    },
    len: 0,
    ua: [0; MAX_UA],
};

thread_local! {
    static MEMO: RefCell<Vec<Entry>> = const { RefCell::new(Vec::new()) };
}

impl UaMemo {
    pub(crate) fn new() -> UaMemo {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        UaMemo {
            owner: NEXT.fetch_add(1, Ordering::Relaxed),
        }
    }

    /// What this thread remembers of `ua` (whose [`ua_digest`] is `digest`) for this gate, and
    /// the ticket to store more. A User-Agent too long to memoise gets nothing and no ticket.
    #[inline]
    pub(crate) fn get(&self, ua: &[u8], digest: impl FnOnce() -> u64) -> (UaFacts, Option<Ticket>) {
        if ua.len() > MAX_UA {
            return (UaFacts::default(), None);
        }
        // Each gate its own arrangement of the slots, so gates sharing a thread collide less.
        let hash = digest() ^ self.owner.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let facts = MEMO
            .try_with(|m| {
                let m = m.try_borrow().ok()?;
                let e = m.get(slot(hash))?;
                self.holds(e, hash, ua).then_some(e.facts)
            })
            .ok()
            .flatten()
            .unwrap_or_default();
        (facts, Some(Ticket { hash }))
    }

    /// Remembers `facts` for `ua` (the User-Agent `ticket` came from) on this thread: updates
    /// its entry, or takes its slot if `ua` missed there last too (see `Entry::pending`).
    pub(crate) fn put(&self, ticket: Ticket, ua: &[u8], facts: UaFacts) {
        if ua.len() > MAX_UA {
            return; // no ticket is given for one (see `get`)
        }
        // A thread being torn down, or a re-entrant call: forget rather than fail.
        let _ = MEMO.try_with(|m| {
            let Ok(mut m) = m.try_borrow_mut() else {
                return;
            };
            if m.is_empty() {
                *m = (0..SLOTS).map(|_| EMPTY).collect();
            }
            let e = &mut m[slot(ticket.hash)];
            if self.holds(e, ticket.hash, ua) {
                e.facts = facts; // more of the same User-Agent's answers
            } else if e.pending != ticket.hash {
                e.pending = ticket.hash; // first sighting: remember only that
            } else {
                e.owner = self.owner;
                e.hash = ticket.hash;
                e.facts = facts;
                e.len = ua.len() as u16; // at most MAX_UA
                e.ua[..ua.len()].copy_from_slice(ua);
            }
        });
    }
}

impl UaMemo {
    /// Whether `e` is this gate's entry for `ua` (with memo hash `hash`).
    #[inline]
    fn holds(&self, e: &Entry, hash: u64, ua: &[u8]) -> bool {
        e.owner == self.owner && e.hash == hash && e.ua[..usize::from(e.len)] == *ua
    }
}

#[inline]
fn slot(hash: u64) -> usize {
    (hash >> (64 - SLOTS.trailing_zeros())) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(m: &UaMemo, ua: &[u8]) -> (UaFacts, Option<Ticket>) {
        m.get(ua, || ua_digest(ua))
    }

    fn device(d: Device) -> UaFacts {
        UaFacts {
            device: Some(Some(d)),
            ..UaFacts::default()
        }
    }

    #[test]
    fn answers_only_the_same_gate_and_bytes() {
        let (a, b) = (UaMemo::new(), UaMemo::new());
        let ua = b"Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X)";
        let (f, t) = get(&a, ua);
        assert_eq!(f, UaFacts::default());
        // Seen once: only its hash is kept. Seen again: stored.
        a.put(t.unwrap(), ua, device(Device::Ios));
        assert_eq!(get(&a, ua).0, UaFacts::default());
        a.put(t.unwrap(), ua, device(Device::Ios));
        assert_eq!(get(&a, ua).0, device(Device::Ios));
        // Another gate, or other bytes (one byte or one length apart), are not answered.
        assert_eq!(get(&b, ua).0, UaFacts::default());
        assert_eq!(get(&a, &ua[..ua.len() - 1]).0, UaFacts::default());
        let mut other = *ua;
        other[20] = b'X';
        assert_eq!(get(&a, &other).0, UaFacts::default());
        // Another thread has its own memo.
        std::thread::scope(|s| {
            s.spawn(|| assert_eq!(get(&a, ua).0, UaFacts::default()));
        });
        // Too long to memoise: no ticket, nothing remembered.
        let long = vec![b'a'; MAX_UA + 1];
        assert!(get(&a, &long).1.is_none());
        let fits = vec![b'a'; MAX_UA];
        a.put(get(&a, &fits).1.unwrap(), &fits, device(Device::Desktop));
        a.put(get(&a, &fits).1.unwrap(), &fits, device(Device::Desktop));
        assert_eq!(get(&a, &fits).0, device(Device::Desktop));
    }

    #[test]
    fn memory_is_as_documented() {
        // `Gate`'s docs and the module docs say 86 KiB per thread.
        assert_eq!(std::mem::size_of::<Entry>() * SLOTS, 86 << 10);
    }

    #[test]
    fn a_colliding_user_agent_replaces_the_entry() {
        let m = UaMemo::new();
        // Find two User-Agents that share a slot.
        let ua = |i: u32| format!("agent/{i}").into_bytes();
        let (first, t0) = (ua(0), get(&m, &ua(0)).1.unwrap());
        let second = (1..)
            .map(ua)
            .find(|u| slot(get(&m, u).1.unwrap().hash) == slot(t0.hash))
            .unwrap();
        m.put(t0, &first, device(Device::Android));
        m.put(t0, &first, device(Device::Android));
        assert_eq!(get(&m, &first).0, device(Device::Android));
        let t1 = get(&m, &second).1.unwrap();
        assert_eq!(get(&m, &second).0, UaFacts::default());
        // One miss of the other User-Agent leaves the entry; a second in a row takes it.
        m.put(t1, &second, device(Device::Desktop));
        assert_eq!(get(&m, &first).0, device(Device::Android));
        m.put(t1, &second, device(Device::Desktop));
        assert_eq!(get(&m, &second).0, device(Device::Desktop));
        assert_eq!(get(&m, &first).0, UaFacts::default());
        // More answers for a stored User-Agent update its entry at once.
        let more = UaFacts {
            device: Some(Some(Device::Ios)),
            ..UaFacts::default()
        };
        m.put(t1, &second, more);
        assert_eq!(get(&m, &second).0, more);
    }
}
