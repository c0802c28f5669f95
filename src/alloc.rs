//! The allocator of the `dht` binary and the benchmarks: mimalloc, called
//! directly.
//!
//! A load allocates millions of small keys, values and journal entries, and
//! every lookup allocates its path; mimalloc does that several times faster
//! than the system allocator. The `mimalloc` crate's wrapper sends every
//! request through mimalloc's aligned entry points, which in mimalloc 3 take
//! a general path costing about 200 instructions per allocation even for
//! alignments every block already has. This wrapper calls the plain entry
//! points for those, as the standard library's own system allocator does
//! with malloc.

use libmimalloc_sys as mi;
use std::alloc::{GlobalAlloc, Layout};
use std::ffi::c_void;

/// Every mimalloc block is aligned to at least a pointer's size.
const MIN_ALIGN: usize = std::mem::size_of::<usize>();

/// mimalloc as the global allocator: `#[global_allocator] static A:
/// Allocator = Allocator;`.
pub struct Allocator;

// SAFETY: each method forwards to the mimalloc function with the same
// contract; the plain (unaligned) functions are used only when the requested
// alignment is one every mimalloc block has.
unsafe impl GlobalAlloc for Allocator {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        unsafe {
            if layout.align() <= MIN_ALIGN {
                mi::mi_malloc(layout.size()).cast()
            } else {
                mi::mi_malloc_aligned(layout.size(), layout.align()).cast()
            }
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        unsafe {
            if layout.align() <= MIN_ALIGN {
                mi::mi_zalloc(layout.size()).cast()
            } else {
                mi::mi_zalloc_aligned(layout.size(), layout.align()).cast()
            }
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        unsafe { mi::mi_free(ptr.cast::<c_void>()) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        unsafe {
            if layout.align() <= MIN_ALIGN {
                mi::mi_realloc(ptr.cast::<c_void>(), new_size).cast()
            } else {
                mi::mi_realloc_aligned(ptr.cast::<c_void>(), new_size, layout.align()).cast()
            }
        }
    }
}

/// Keeps freed memory for the life of the process instead of returning it to
/// the OS after 10 ms: a load frees and reallocates hundreds of megabytes,
/// and the kernel zeroing pages handed back took a third of its time. A
/// `dht` command is short-lived, so holding on costs nothing. Call once,
/// first thing in `main`.
pub fn keep_freed_memory() {
    // mimalloc.h: the option enum's `mi_option_purge_delay`, index 15; -1
    // means never purge. (The -sys crate names options only up to 14.)
    const MI_OPTION_PURGE_DELAY: mi::mi_option_t = 15;
    // SAFETY: sets an allocator option; no memory is touched.
    unsafe { mi::mi_option_set(MI_OPTION_PURGE_DELAY, -1) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_have_the_alignment_asked_for() {
        let a = Allocator;
        for align in [1, 2, 4, 8, 16, 64, 4096] {
            for size in [1, 7, 8, 24, 100, 384, 5000] {
                let l = Layout::from_size_align(size, align).unwrap();
                // SAFETY: non-zero sizes; each block is freed once with its
                // layout.
                unsafe {
                    let p = a.alloc(l);
                    assert!(!p.is_null());
                    assert_eq!(p as usize % align, 0, "size {size} align {align}");
                    p.write_bytes(0xAB, size);
                    let q = a.realloc(p, l, size * 3);
                    assert_eq!(q as usize % align, 0, "realloc size {size} align {align}");
                    assert_eq!(*q, 0xAB);
                    a.dealloc(q, Layout::from_size_align(size * 3, align).unwrap());
                    let z = a.alloc_zeroed(l);
                    assert!(std::slice::from_raw_parts(z, size).iter().all(|&b| b == 0));
                    a.dealloc(z, l);
                }
            }
        }
    }
}
