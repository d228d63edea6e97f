//! `ClickId`: unique, time-sortable 128-bit ids in the ULID layout.
//!
//! Layout: 48-bit Unix milliseconds, then 80 random bits, rendered as 26 Crockford base32
//! characters (`01JDQ...`). Each thread draws from its own generator, seeded once from the OS
//! (`getrandom`), so making an id takes no lock and no system call. Within one thread ids are
//! strictly increasing (monotonic ULIDs): in the same millisecond the random part is incremented;
//! if the clock steps back, the last timestamp is kept. Across threads, processes and machines,
//! uniqueness rests on the 80 random bits: two ids from different generators in the same
//! millisecond collide with probability about 2^-80 per pair.

use std::cell::Cell;
use std::fmt;
use std::str::FromStr;

/// A click id (ULID layout). `Ord` is time order.
///
/// Held as two `u64` halves (high first, so the derived `Ord` is numeric order) rather than a
/// `u128`: that keeps its alignment at 8, so it does not pad every `Click` and `Redirect` to 16.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClickId([u64; 2]);

const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const RANDOM_MASK: u128 = (1 << 80) - 1;

thread_local! {
    static STATE: Cell<(u64, u128, u64)> = const { Cell::new((0, 0, 0)) };
}

#[cfg(not(feature = "os"))]
fn seed() -> u64 {
    // No OS randomness in this build: the thread-local's address and a constant. Ids stay unique
    // per generator but are predictable; enable `os` where uniqueness across machines matters.
    let b = 0u8;
    (&b as *const u8 as u64).rotate_left(17) ^ 0x9E37_79B9_7F4A_7C15
}

/// A random odd 64-bit value from the OS (the clock and a stack address if the OS has no
/// randomness): the seed of each thread's id generator, and of `ua_memo::ua_digest`.
#[cfg(feature = "os")]
pub(crate) fn seed() -> u64 {
    let mut b = [0u8; 8];
    if getrandom::fill(&mut b).is_err() {
        // No OS randomness: fall back to the clock and the thread's stack address.
        let t = crate::clock::system_now_ms() as u64;
        let addr = &b as *const _ as u64;
        return t.rotate_left(32) ^ addr ^ 0x9E37_79B9_7F4A_7C15;
    }
    u64::from_le_bytes(b) | 1
}

/// wyrand: a fast, statistically solid 64-bit generator (not for secrets).
fn wyrand(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0xa076_1d64_78bd_642f);
    let t = u128::from(*state) * u128::from(*state ^ 0xe703_7ed1_a0b4_28db);
    (t >> 64) as u64 ^ t as u64
}

impl ClickId {
    /// A new id stamped with the OS clock (read through [`fast_now_ms`](crate::fast_now_ms)).
    #[cfg(feature = "os")]
    #[inline]
    pub fn generate() -> ClickId {
        ClickId::at(crate::clock::fast_now_ms())
    }

    /// A new id stamped with `unix_ms` (monotonic per thread: never below the thread's last id).
    #[inline]
    pub fn at(unix_ms: i64) -> ClickId {
        STATE.with(|s| {
            let (mut last_ms, mut random, mut rng) = s.get();
            if rng == 0 {
                rng = seed();
            }
            let ms = (unix_ms.max(0) as u64) & ((1 << 48) - 1);
            if ms > last_ms {
                last_ms = ms;
                random = (u128::from(wyrand(&mut rng)) << 16 | u128::from(wyrand(&mut rng) as u16))
                    & RANDOM_MASK;
                // Leave room to increment within the millisecond without overflow.
                random &= !(1 << 79);
            } else {
                random += 1;
                if random > RANDOM_MASK {
                    // 2^79 ids in one millisecond: borrow the next millisecond.
                    last_ms += 1;
                    random = 0;
                }
            }
            s.set((last_ms, random, rng));
            ClickId::from(u128::from(last_ms) << 80 | random)
        })
    }

    /// The id as a 128-bit number.
    pub fn as_u128(self) -> u128 {
        u128::from(self.0[0]) << 64 | u128::from(self.0[1])
    }

    /// The millisecond timestamp in the id.
    pub fn timestamp_ms(self) -> i64 {
        (self.0[0] >> 16) as i64
    }

    /// The 26-character Crockford base32 form.
    pub fn encode(self) -> [u8; 26] {
        let mut out = [0u8; 26];
        let mut v = self.as_u128();
        for i in (0..26).rev() {
            out[i] = ALPHABET[(v & 31) as usize];
            v >>= 5;
        }
        out
    }
}

impl From<u128> for ClickId {
    fn from(v: u128) -> Self {
        ClickId([(v >> 64) as u64, v as u64])
    }
}

impl fmt::Display for ClickId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.encode();
        f.write_str(std::str::from_utf8(&b).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for ClickId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClickId({self})")
    }
}

/// A string that is not a 26-character Crockford base32 ULID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a click id (26 Crockford base32 characters): `{0}`")]
pub struct ParseClickIdError(String);

impl FromStr for ClickId {
    type Err = ParseClickIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseClickIdError(s.chars().take(40).collect());
        if s.len() != 26 || s.as_bytes()[0] > b'7' {
            return Err(err());
        }
        let mut v: u128 = 0;
        for c in s.bytes() {
            let c = c.to_ascii_uppercase();
            let d = match c {
                b'O' => 0,
                b'I' | b'L' => 1,
                _ => ALPHABET.iter().position(|&a| a == c).ok_or_else(err)? as u128,
            };
            v = v << 5 | d;
        }
        Ok(ClickId::from(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_and_round_trip() {
        let id = ClickId::at(1_700_000_000_123);
        assert_eq!(id.timestamp_ms(), 1_700_000_000_123);
        let s = id.to_string();
        assert_eq!(s.len(), 26);
        assert_eq!(s.parse::<ClickId>().unwrap(), id);
        assert!("not-an-id".parse::<ClickId>().is_err());
        assert_eq!(ClickId::from(0).to_string(), "00000000000000000000000000");
        assert_eq!(
            ClickId::from(u128::MAX).to_string(),
            "7ZZZZZZZZZZZZZZZZZZZZZZZZZ"
        );
    }

    #[test]
    fn monotonic_even_when_the_clock_steps_back() {
        let a = ClickId::at(5_000);
        let b = ClickId::at(5_000);
        let c = ClickId::at(4_000);
        let d = ClickId::at(6_000);
        assert!(a < b && b < c && c < d);
        assert_eq!(c.timestamp_ms(), 5_000);
        // Time order survives encoding.
        assert!(a.to_string() < d.to_string());
    }
}
