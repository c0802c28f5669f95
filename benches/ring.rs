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
//! Run: `cargo bench --bench ring` (add `-- --quick` to stop at 2^16, or
//! `-- --only N` for one size). Each size runs in a fresh process.

use dht::alloc::Allocator;
use dht::chord::{Id, NodeId, Params};
use dht::sim::World;
use dht::sim::in_flight::IN_FLIGHT;
use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

/// The allocator the `dht` binary uses, so the figures are the product's.
static GLOBAL: Allocator = Allocator;

/// Counts the bytes allocated while a ring is built, for the memory
/// figure. Only then: a locked add on every allocation of the timed lookups
/// would slow them by a few percent, a cost the product does not have.
struct Counting;
static LIVE: AtomicUsize = AtomicUsize::new(0);
static COUNTING: AtomicBool = AtomicBool::new(false);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            LIVE.fetch_add(l.size(), Ordering::Relaxed);
        }
        unsafe { GLOBAL.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        if COUNTING.load(Ordering::Relaxed) {
            LIVE.fetch_sub(l.size(), Ordering::Relaxed);
        }
        unsafe { GLOBAL.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            LIVE.fetch_add(new, Ordering::Relaxed);
            LIVE.fetch_sub(l.size(), Ordering::Relaxed);
        }
        unsafe { GLOBAL.realloc(p, l, new) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn main() {
    // As the `dht` binary does, so the figures are the product's.
    dht::alloc::keep_freed_memory();
    let quick = std::env::args().any(|a| a == "--quick");
    let params = Params::new(160, 3);
    let mut sizes: Vec<usize> = (4..=16).map(|k| 1usize << k).collect();
    // The lookup-rate goal is stated at 10^5 nodes.
    sizes.push(100_000);
    if !quick {
        sizes.push(1_000_000);
    }
    // `--only N` measures one size in this process; without it, each size
    // is measured by a fresh process of this benchmark (`--only N
    // --no-header`), as each `dht` command builds its one ring in a fresh
    // process. In one long process a large ring lands in memory the smaller
    // ones fragmented, which made 10^5 nodes' lookups about 14% slower.
    let args: Vec<String> = std::env::args().collect();
    let only: Option<usize> = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1)?.parse().ok());
    if !args.iter().any(|a| a == "--no-header") {
        println!(
            "| N | build s | mean hops | p99 hops | ½·log2 N | mean/½log2N | one at a time lookups/s | {IN_FLIGHT} in flight lookups/s | baseline lookups/s | ratio | routing B/node | total B/node |"
        );
        println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    }
    match only {
        Some(n) => sizes = vec![n],
        None => {
            let me = std::env::current_exe().expect("the benchmark's own path");
            for n in sizes {
                let status = std::process::Command::new(&me)
                    .args(["--bench", "--only", &n.to_string(), "--no-header"])
                    .status()
                    .expect("run the benchmark for one size");
                assert!(status.success(), "the run for {n} nodes failed");
            }
            return;
        }
    }
    for n in sizes {
        LIVE.store(0, Ordering::Relaxed);
        COUNTING.store(true, Ordering::Relaxed);
        let t = Instant::now();
        let mut w = World::bulk(params, 42, (0..n).map(|i| (format!("node-{i}"), None)))
            .expect("bulk build");
        let build = t.elapsed().as_secs_f64();
        COUNTING.store(false, Ordering::Relaxed);
        // Frees of blocks made before counting began subtract too; the
        // build frees only its own temporaries.
        let total = LIVE.load(Ordering::Relaxed);
        let routing = w.routing_bytes();

        let lookups = 200_000usize;
        let keys: Vec<_> = (0..lookups)
            .map(|i| w.bits().hash(&format!("key-{i}")))
            .collect();
        let starts: Vec<NodeId> = (0..lookups).map(|_| w.pick().expect("nodes")).collect();
        // Each pass times the three ways in turn on the same lookups, so a
        // noisy moment of the machine hits all three alike; the figures are
        // the medians over the passes, the ratio the median of the passes'
        // ratios.
        const REPS: usize = 7;
        let queries: Vec<(Id, NodeId)> = keys.iter().copied().zip(starts.iter().copied()).collect();
        // Bare ids (20 bytes each, no addresses): the tightest array a
        // single machine could search.
        let sorted: Vec<Id> = w.members().map(|n| n.id()).collect();
        let mut hops = Vec::with_capacity(lookups);
        let (mut serial, mut flight, mut base, mut ratio) = (vec![], vec![], vec![], vec![]);
        let mut sink = 0usize;
        for rep in 0..REPS {
            let t = Instant::now();
            for (k, s) in keys.iter().zip(&starts) {
                let h = w.lookup(*k, Some(*s)).expect("lookup").hops();
                if rep == 0 {
                    hops.push(h);
                }
            }
            serial.push(lookups as f64 / t.elapsed().as_secs_f64());

            // A client consumes answers as they come: batches of a few
            // thousand, not one vector of every path.
            let t = Instant::now();
            let mut same = true;
            for (q, h) in queries.chunks(4096).zip(hops.chunks(4096)) {
                let many = w.lookup_many(q);
                same &= many
                    .iter()
                    .zip(h)
                    .all(|(l, h)| l.as_ref().is_ok_and(|l| l.hops() == *h));
            }
            flight.push(lookups as f64 / t.elapsed().as_secs_f64());
            assert!(
                same,
                "lookups in flight must answer as lookups one at a time"
            );

            let t = Instant::now();
            for k in &keys {
                let i = sorted.partition_point(|n| n < k);
                sink = sink.wrapping_add(if i == sorted.len() { 0 } else { i });
            }
            base.push(lookups as f64 / t.elapsed().as_secs_f64());
            ratio.push(flight[rep] / base[rep]);
        }
        std::hint::black_box(sink);
        let (serial_rate, chord_rate, base_rate, ratio) =
            (median(serial), median(flight), median(base), median(ratio));

        hops.sort_unstable();
        let mean = hops.iter().sum::<usize>() as f64 / lookups as f64;
        let p99 = hops[lookups * 99 / 100];
        let half = 0.5 * (n as f64).log2();
        println!(
            "| {n} | {build:.2} | {mean:.2} | {p99} | {half:.2} | {:.3} | {serial_rate:.0} | {chord_rate:.0} | {base_rate:.0} | {:.3} | {:.0} | {:.0} |",
            mean / half,
            ratio,
            routing as f64 / n as f64,
            total as f64 / n as f64,
        );
        drop(w);
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}
