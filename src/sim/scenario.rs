//! Seeded random scenarios: joins, graceful leaves, crashes, puts, deletes and
//! gets interleaved with single maintenance steps, each churn period followed
//! by a quiet period of maintenance after which every invariant must hold and
//! every key must read back with its latest value.
//!
//! Departures respect Correct Chord's failure assumption: between two quiet
//! periods fewer than r nodes depart (crash or leave), so no r holders of a
//! key are ever lost before maintenance copies it again; no node crashes or leaves if that would leave another
//! node with no live successor (Zave's precondition); no node crashes while
//! it holds the only live copy of a key (on rings of fewer than r members, or
//! before newcomers get their replicas, keys have fewer than r copies); and
//! the ring never shrinks below two live nodes.
//! Everything random comes from the seed, so a failure names the seed that
//! replays it.

use super::world::World;
use crate::chord::{Bits, Params};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// Shape of a scenario.
#[derive(Debug, Clone)]
pub struct Shape {
    /// Identifier width.
    pub bits: u32,
    /// Replication factor.
    pub replicas: u8,
    /// Nodes before the first churn period.
    pub initial_nodes: usize,
    /// Churn periods, each followed by a quiet period.
    pub periods: usize,
    /// Actions per churn period.
    pub actions: usize,
    /// Maintenance rounds a quiet period may take before it counts as a failure.
    pub max_rounds: usize,
    /// A key whose holders are logged (at info level) after every action.
    pub trace_key: Option<String>,
}

impl Default for Shape {
    fn default() -> Self {
        Shape {
            bits: 32,
            replicas: 3,
            initial_nodes: 6,
            periods: 4,
            actions: 40,
            max_rounds: 60,
            trace_key: None,
        }
    }
}

/// What a passing scenario did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Joins, leaves, crashes, puts, deletes, gets, maintenance steps run.
    pub joins: usize,
    /// Graceful leaves.
    pub leaves: usize,
    /// Crashes.
    pub crashes: usize,
    /// Puts.
    pub puts: usize,
    /// Deletes.
    pub deletes: usize,
    /// Gets.
    pub gets: usize,
    /// Gets during churn that saw an older value or none: Chord promises
    /// nothing better while pointers are moving (a key's only live holder
    /// may be a newcomer not yet linked in); after the quiet period reads
    /// must be exact.
    pub stale_reads: usize,
    /// Single maintenance steps during churn.
    pub steps: usize,
    /// Keys live at the end.
    pub keys: usize,
}

impl Shape {
    /// The default shape with any of `DHT_R`, `DHT_BITS`, `DHT_NODES`,
    /// `DHT_PERIODS`, `DHT_ACTIONS` from the environment, as a failure's
    /// replay line sets them, and `DHT_TRACE_KEY` to follow one key.
    pub fn from_env() -> Shape {
        fn var<T: std::str::FromStr>(name: &str, default: T) -> T {
            std::env::var(name)
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(default)
        }
        let d = Shape::default();
        Shape {
            replicas: var("DHT_R", d.replicas),
            bits: var("DHT_BITS", d.bits),
            initial_nodes: var("DHT_NODES", d.initial_nodes),
            periods: var("DHT_PERIODS", d.periods),
            actions: var("DHT_ACTIONS", d.actions),
            max_rounds: d.max_rounds,
            trace_key: std::env::var("DHT_TRACE_KEY").ok(),
        }
    }
}

/// Runs one scenario. The error says what broke, when, and the seed.
pub fn run(seed: u64, shape: Shape) -> Result<Summary, String> {
    let fail = |what: String| {
        format!(
            "seed {seed}: {what}\n  replay: DHT_SEED={seed} DHT_R={} DHT_BITS={} DHT_NODES={} DHT_PERIODS={} DHT_ACTIONS={} cargo test --test properties replay_seed",
            shape.replicas, shape.bits, shape.initial_nodes, shape.periods, shape.actions
        )
    };
    let params = Params {
        bits: Bits::new(shape.bits).map_err(|e| e.to_string())?,
        replicas: shape.replicas,
    };
    let mut world = World::new(params, seed);
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed);
    let mut model: BTreeMap<String, Value> = BTreeMap::new();
    // Every value each key ever had: a read during churn may return any of
    // them (or nothing), never anything else.
    let mut history: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    let mut s = Summary::default();
    let mut next_node = 0usize;
    let mut next_key = 0usize;
    for _ in 0..shape.initial_nodes {
        world
            .join(&format!("node-{next_node}"), None, None)
            .map_err(|e| fail(e.to_string()))?;
        next_node += 1;
    }
    world
        .converge(shape.max_rounds)
        .map_err(|e| fail(format!("initial ring: {e}")))?;

    for period in 0..shape.periods {
        let mut crashes = 0usize;
        for action in 0..shape.actions {
            let at = || format!("period {period}, action {action}");
            match rng.random_range(0..100) {
                0..8 => {
                    let name = format!("node-{next_node}");
                    next_node += 1;
                    match world.join(&name, None, None) {
                        Ok((id, l)) => {
                            tracing::debug!(
                                "join {name}@{} successor {:?}",
                                world.bits().show(id.id()),
                                l.map(|l| world.name(l.successor))
                            );
                            s.joins += 1
                        }
                        Err(crate::sim::WorldError::IdTaken { .. }) => {}
                        Err(e) => return Err(fail(format!("{}: join {name}: {e}", at()))),
                    }
                }
                8..12 if world.len() > 2 && crashes + 1 < usize::from(shape.replicas) => {
                    let id = world.pick().map_err(|e| fail(e.to_string()))?;
                    if world.would_isolate(id).is_some() {
                        continue;
                    }
                    world
                        .leave(id)
                        .map_err(|e| fail(format!("{}: leave {}: {e}", at(), world.name(id))))?;
                    crashes += 1;
                    s.leaves += 1;
                }
                12..16 if world.len() > 2 && crashes + 1 < usize::from(shape.replicas) => {
                    let id = world.pick().map_err(|e| fail(e.to_string()))?;
                    if world.would_isolate(id).is_some() || world.sole_copies(id) > 0 {
                        continue;
                    }
                    world.fail(id).map_err(|e| fail(e.to_string()))?;
                    crashes += 1;
                    s.crashes += 1;
                }
                16..40 => {
                    let key = if model.is_empty() || rng.random_bool(0.7) {
                        next_key += 1;
                        format!("key-{next_key}")
                    } else {
                        model
                            .keys()
                            .nth(rng.random_range(0..model.len()))
                            .cloned()
                            .expect("in range")
                    };
                    let value =
                        json!({ "n": next_key, "text": format!("v{}", rng.random::<u32>()) });
                    world
                        .put(&key, value.clone(), None)
                        .map_err(|e| fail(format!("{}: put {key}: {e}", at())))?;
                    history.entry(key.clone()).or_default().push(value.clone());
                    model.insert(key, value);
                    s.puts += 1;
                }
                40..46 if !model.is_empty() => {
                    let key = model
                        .keys()
                        .nth(rng.random_range(0..model.len()))
                        .cloned()
                        .expect("in range");
                    world
                        .delete(&key, None)
                        .map_err(|e| fail(format!("{}: delete {key}: {e}", at())))?;
                    model.remove(&key);
                    s.deletes += 1;
                }
                46..60 if !model.is_empty() => {
                    let key = model
                        .keys()
                        .nth(rng.random_range(0..model.len()))
                        .cloned()
                        .expect("in range");
                    let got = world
                        .get(&key, None)
                        .map_err(|e| fail(format!("{}: get {key}: {e}", at())))?;
                    if got.result.as_deref() != model.get(&key) {
                        let known = got
                            .result
                            .as_ref()
                            .is_none_or(|v| history[&key].contains(v));
                        if !known {
                            return Err(fail(format!(
                                "{}: get {key} during churn gave {:?}, which was never written",
                                at(),
                                got.result
                            )));
                        }
                        s.stale_reads += 1;
                    }
                    s.gets += 1;
                }
                _ => {
                    world.random_step();
                    s.steps += 1;
                }
            }
            if let Some(k) = &shape.trace_key {
                let key = world.key(k);
                let holders: Vec<String> = world
                    .nodes()
                    .filter_map(|n| {
                        n.store
                            .get(&key)
                            .map(|v| format!("{}={}", world.name(n.id), v["n"]))
                    })
                    .collect();
                tracing::info!(
                    "{} {k}@{} held by {:?}",
                    at(),
                    world.bits().show(key.id),
                    holders
                );
            }
            if tracing::enabled!(tracing::Level::DEBUG) {
                tracing::debug!("after {}", at());
                for n in world.nodes() {
                    tracing::debug!(
                        "{}@{} pred={:?} succs={:?}",
                        world.name(n.id),
                        world.bits().show(n.id.id()),
                        n.pred.map(|p| world.name(p)),
                        n.succs.iter().map(|s| world.name(*s)).collect::<Vec<_>>()
                    );
                }
            }
            let broken = world.check_ring();
            if let Some(v) = broken.first() {
                return Err(fail(format!(
                    "{}: Zave invariant broken: {}",
                    at(),
                    world.describe(v)
                )));
            }
        }
        world
            .converge(shape.max_rounds)
            .map_err(|e| fail(format!("quiet period after churn period {period}: {e}")))?;
        for (key, want) in &model {
            let got = world
                .get(key, None)
                .map_err(|e| fail(format!("after period {period}: get {key}: {e}")))?;
            if got.result.as_deref() != Some(want) {
                return Err(fail(format!(
                    "after period {period}: get {key} gave {:?}, want {want}",
                    got.result
                )));
            }
        }
    }
    s.keys = model.len();
    Ok(s)
}
