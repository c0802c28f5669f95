//! Test support shared by the unit tests, `tests/`, the benchmarks and the
//! examples: the paper's ring, rings grown through the protocol or built in
//! bulk, and the checks tests make of them. Compiled for tests and with the
//! `testkit` feature only; the shipped library does not carry it.

use crate::chord::{Id, NodeId, Params};
use crate::sim::World;

/// The node ids of the paper's example ring (Stoica et al., SIGCOMM 2001,
/// Fig. 3): m = 6, ten nodes.
pub const PAPER_IDS: [u128; 10] = [1, 8, 14, 21, 32, 38, 42, 48, 51, 56];

/// The settings of the paper's ring: m = 6, r = 3.
pub fn paper_params() -> Params {
    Params::new(6, 3)
}

/// Position `v` on a ring of `params`. Panics if it does not fit.
pub fn id(params: Params, v: u128) -> Id {
    params
        .bits
        .id_from_u128(v)
        .unwrap_or_else(|| panic!("{v} does not fit in {} bits", params.bits))
}

/// The paper's ring as bare addresses (incarnation 0), for the ideal-ring
/// computations that need no world.
pub fn paper_node_ids() -> Vec<NodeId> {
    let p = paper_params();
    PAPER_IDS
        .iter()
        .map(|&v| NodeId::new(id(p, v), 0))
        .collect()
}

/// The paper's ring grown through the join protocol (nodes named `N<id>`,
/// each joining with a round of maintenance after it), converged.
pub fn paper_ring() -> World {
    let p = paper_params();
    let mut w = World::new(p, 1);
    for v in PAPER_IDS {
        w.join(&format!("N{v}"), Some(id(p, v)), None)
            .expect("paper ring join");
        w.round();
    }
    w.converge(100).expect("the paper ring converges");
    w
}

/// A ring of `n` nodes (`node-0` ...) grown one join at a time through the
/// protocol with a round after each, then converged. Panics, naming the
/// seed, if it does not converge in 200 rounds.
pub fn grown_ring(params: Params, seed: u64, n: usize) -> World {
    let mut w = World::new(params, seed);
    for i in 0..n {
        w.join(&format!("node-{i}"), None, None)
            .unwrap_or_else(|e| panic!("seed {seed}: join node-{i}: {e}"));
        w.round();
    }
    w.converge(200)
        .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    w
}

/// A converged ring of `n` nodes (`node-0` ...) computed directly.
pub fn bulk_ring(params: Params, seed: u64, n: usize) -> World {
    World::bulk(params, seed, (0..n).map(|i| (format!("node-{i}"), None))).expect("distinct names")
}

/// Panics, listing every violation, unless every invariant holds.
pub fn assert_clean(w: &World, what: &str) {
    let v = w.check();
    assert!(
        v.is_empty(),
        "{what}: {}",
        v.iter()
            .map(|x| w.describe(x))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// Writes `world` as the ring of a new state file at `path` (as `dht init`
/// does) and returns it loaded, matching the file, for later saves.
/// Panics on any error.
pub async fn write_new_ring(path: &std::path::Path, world: World) -> crate::state::Loaded {
    use crate::state::{Access, Loaded, State};
    let mut st = State::open(path, Access::Create)
        .await
        .expect("open a new state file");
    st.create(world.params(), world.counters())
        .await
        .expect("create the ring");
    let mut loaded = Loaded::fresh(world);
    st.save(&mut loaded).await.expect("save the ring");
    st.commit().await.expect("commit the ring");
    loaded
}
