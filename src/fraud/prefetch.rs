//! A cache-line prefetch hint, so that the unique and flood checks' memory misses overlap the
//! rest of a request instead of following it.

/// Asks the CPU to start loading the cache line that holds `at` into its caches, and returns at
/// once. A hint only: it changes no value and cannot fault, so it never changes what the
/// program does, only how long a later access to the line waits. A no-op where the target has
/// no stable prefetch instruction (everything but x86-64).
#[inline(always)]
pub(crate) fn prefetch<T>(at: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `prefetcht0` reads no value and cannot fault (the CPU drops a prefetch of an
    // invalid address), and `at` is a live reference anyway; SSE is part of x86-64. Rust made
    // `_mm_prefetch` a safe function after this crate's minimum version (1.85), so the block is
    // needed there and unused on newer compilers.
    #[allow(unsafe_code, unused_unsafe)]
    unsafe {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        _mm_prefetch::<_MM_HINT_T0>(std::ptr::from_ref(at).cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = at;
}
