//! Cache prefetch hints: ask the CPU to start loading memory that will be
//! needed soon, so the work in between hides the wait.
//!
//! Used where the simulator knows ahead of time which memory a step will
//! touch: the next node's routing state (`Network::will_call`) and the path
//! a new lookup will write. Hints only: they change nothing the program can
//! observe, and they compile to nothing off x86-64.

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::{_MM_HINT_ET0, _MM_HINT_T0, _mm_prefetch};

/// Starts loading every 64-byte line of `len` bytes at `p` for reading.
#[inline]
pub(crate) fn read(p: *const u8, len: usize) {
    #[cfg(target_arch = "x86_64")]
    each_line::<_MM_HINT_T0>(p, len);
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (p, len);
}

/// Starts loading every line of `len` bytes at `p` with intent to write:
/// a store to a line not in cache otherwise waits for it in the store
/// buffer, and enough such stores stall everything behind them.
#[inline]
pub(crate) fn write(p: *const u8, len: usize) {
    #[cfg(target_arch = "x86_64")]
    each_line::<_MM_HINT_ET0>(p, len);
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (p, len);
}

/// Prefetches, with hint `HINT`, every 64-byte line the range touches.
#[cfg(target_arch = "x86_64")]
#[inline]
fn each_line<const HINT: i32>(p: *const u8, len: usize) {
    let mut line = p.wrapping_sub(p as usize % 64);
    let end = p.wrapping_add(len);
    while line < end {
        // SAFETY: prefetching never faults and reads nothing the program
        // can observe.
        unsafe { _mm_prefetch::<HINT>(line.cast()) };
        line = line.wrapping_add(64);
    }
}
