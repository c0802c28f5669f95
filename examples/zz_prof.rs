use dht::chord::{Bits, Id, NodeId, Params};
use dht::sim::World;
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
fn main() {
    let n: usize = std::env::args().nth(1).unwrap().parse().unwrap();
    let serial = std::env::args().nth(2).is_some();
    let params = Params {
        bits: Bits::MAX,
        replicas: 3,
    };
    let mut w = World::bulk(params, 42, (0..n).map(|i| (format!("node-{i}"), None))).unwrap();
    let lookups = 200_000usize;
    let q: Vec<(Id, NodeId)> = (0..lookups)
        .map(|i| (w.bits().hash(&format!("key-{i}")), w.pick().unwrap()))
        .collect();
    let t = std::time::Instant::now();
    let mut h = 0;
    for _ in 0..10 {
        if serial {
            for &(k, s) in &q {
                h += w.lookup(k, Some(s)).unwrap().hops();
            }
        } else {
            for c in q.chunks(4096) {
                h += w
                    .lookup_many(c)
                    .unwrap()
                    .iter()
                    .map(|l| l.as_ref().unwrap().hops())
                    .sum::<usize>();
            }
        }
    }
    let el = t.elapsed().as_secs_f64();
    eprintln!("{h} {:.0}/s", 10.0 * lookups as f64 / el);
}
