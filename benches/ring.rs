//! Ring benchmark (a figure, not a timed test): for N = 2^4 .. 2^16 and 10^6
//! nodes built in bulk, prints
//! - mean and 99th-percentile lookup hops next to ½·log2 N (the paper's result);
//! - Chord lookups per second next to a baseline measured in the same run: a
//!   sorted array of node ids searched by binary search, the lookup one
//!   machine with the full membership list would do;
//! - bytes per node: routing state (nodes, lists, fingers, the network's
//!   table) and everything the world allocated (names and member index too),
//!   excluding stored data.
//!
//! Run: `cargo bench --bench ring` (add `-- --quick` to stop at 2^16).

use dht::chord::{Bits, NodeId, Params};
use dht::sim::World;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

struct Counting;
static LIVE: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size(), Ordering::Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size(), Ordering::Relaxed);
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        LIVE.fetch_add(new, Ordering::Relaxed);
        LIVE.fetch_sub(l.size(), Ordering::Relaxed);
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let params = Params {
        bits: Bits::MAX,
        replicas: 3,
    };
    let mut sizes: Vec<usize> = (4..=16).map(|k| 1usize << k).collect();
    if !quick {
        sizes.push(1_000_000);
    }
    println!(
        "| N | build s | mean hops | p99 hops | ½·log2 N | mean/½log2N | Chord lookups/s | baseline lookups/s | ratio | routing B/node | total B/node |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for n in sizes {
        let before = LIVE.load(Ordering::Relaxed);
        let t = Instant::now();
        let mut w = World::bulk(params, 42, (0..n).map(|i| (format!("node-{i}"), None)))
            .expect("bulk build");
        let build = t.elapsed().as_secs_f64();
        let total = LIVE.load(Ordering::Relaxed) - before;
        let routing = w.routing_bytes();

        let lookups = 200_000usize;
        let keys: Vec<_> = (0..lookups)
            .map(|i| w.bits().hash(&format!("key-{i}")))
            .collect();
        let starts: Vec<NodeId> = (0..lookups).map(|_| w.pick().expect("nodes")).collect();
        let mut hops = Vec::with_capacity(lookups);
        let t = Instant::now();
        for (k, s) in keys.iter().zip(&starts) {
            hops.push(w.lookup(*k, Some(*s)).expect("lookup").hops());
        }
        let chord_rate = lookups as f64 / t.elapsed().as_secs_f64();

        let sorted: Vec<NodeId> = w.members().collect();
        let t = Instant::now();
        let mut sink = 0usize;
        for _ in 0..5 {
            for k in &keys {
                let i = sorted.partition_point(|n| n.id() < *k);
                sink = sink.wrapping_add(if i == sorted.len() { 0 } else { i });
            }
        }
        let base_rate = (5 * lookups) as f64 / t.elapsed().as_secs_f64();
        std::hint::black_box(sink);

        hops.sort_unstable();
        let mean = hops.iter().sum::<usize>() as f64 / lookups as f64;
        let p99 = hops[lookups * 99 / 100];
        let half = 0.5 * (n as f64).log2();
        println!(
            "| {n} | {build:.2} | {mean:.2} | {p99} | {half:.2} | {:.3} | {chord_rate:.0} | {base_rate:.0} | {:.3} | {:.0} | {:.0} |",
            mean / half,
            chord_rate / base_rate,
            routing as f64 / n as f64,
            total as f64 / n as f64,
        );
        drop(w);
    }
}
