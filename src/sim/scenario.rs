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
use crate::sim::WorldError;
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
    /// Successor-list length when longer than r (0: r).
    pub successors: u8,
    /// Virtual nodes per physical node (0 or 1: none). Joins, leaves and
    /// crashes then act on whole physical nodes, and the departure limits
    /// count physical nodes.
    pub vnodes: u8,
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
            successors: 0,
            vnodes: 0,
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
    /// The default shape with any of `DHT_R`, `DHT_S`, `DHT_V`, `DHT_BITS`, `DHT_NODES`,
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
            successors: var("DHT_S", d.successors),
            vnodes: var("DHT_V", d.vnodes),
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
    let mut run = Run::new(seed, shape)?;
    run.grow()?;
    for period in 0..run.shape.periods {
        run.churn(period)?;
        run.quiet(period)?;
    }
    run.summary.keys = run.model.len();
    Ok(run.summary)
}

/// A scenario in progress: the ring, the generator of actions, and the
/// model of what every key should hold.
struct Run {
    seed: u64,
    shape: Shape,
    world: World,
    rng: ChaCha8Rng,
    /// The latest value of every live key.
    model: BTreeMap<String, Value>,
    /// Every value each key ever had: a read during churn may return any of
    /// them (or nothing), never anything else.
    history: BTreeMap<String, Vec<Value>>,
    summary: Summary,
    next_node: usize,
    next_key: usize,
}

impl Run {
    fn new(seed: u64, shape: Shape) -> Result<Run, String> {
        let bits = Bits::new(shape.bits).map_err(|e| e.to_string())?;
        let params = Params::of(bits, shape.replicas)
            .with_successors(shape.successors)
            .with_vnodes(shape.vnodes);
        Ok(Run {
            seed,
            world: World::new(params, seed),
            rng: ChaCha8Rng::seed_from_u64(seed ^ 0x5eed),
            shape,
            model: BTreeMap::new(),
            history: BTreeMap::new(),
            summary: Summary::default(),
            next_node: 0,
            next_key: 0,
        })
    }

    /// The error for `what`, with the seed and the line that replays it.
    fn fail(&self, what: String) -> String {
        let (seed, shape) = (self.seed, &self.shape);
        format!(
            "seed {seed}: {what}\n  replay: DHT_SEED={seed} DHT_R={} DHT_S={} DHT_V={} DHT_BITS={} DHT_NODES={} DHT_PERIODS={} DHT_ACTIONS={} cargo test --test properties replay_seed",
            shape.replicas,
            shape.successors,
            shape.vnodes,
            shape.bits,
            shape.initial_nodes,
            shape.periods,
            shape.actions
        )
    }

    /// The initial nodes, then maintenance until the ring converges.
    fn grow(&mut self) -> Result<(), String> {
        for _ in 0..self.shape.initial_nodes {
            self.world
                .join_host(&format!("node-{}", self.next_node), None)
                .map_err(|e| self.fail(e.to_string()))?;
            self.next_node += 1;
        }
        self.world
            .converge(self.shape.max_rounds)
            .map_err(|e| self.fail(format!("initial ring: {e}")))?;
        Ok(())
    }

    /// One churn period: random actions, each followed by a check of Zave's
    /// ring invariants. Fewer than r nodes depart in one period.
    fn churn(&mut self, period: usize) -> Result<(), String> {
        let mut departures = 0usize;
        for action in 0..self.shape.actions {
            let at = format!("period {period}, action {action}");
            let may_depart = self.world.host_names().len() > 2
                && departures + 1 < usize::from(self.shape.replicas);
            match self.rng.random_range(0..100) {
                0..8 => self.join(&at)?,
                8..12 if may_depart => departures += self.depart(&at, false)?,
                12..16 if may_depart => departures += self.depart(&at, true)?,
                16..40 => self.put(&at)?,
                40..46 if !self.model.is_empty() => self.delete(&at)?,
                46..60 if !self.model.is_empty() => self.get(&at)?,
                _ => {
                    self.world.random_step();
                    self.summary.steps += 1;
                }
            }
            self.trace(&at);
            if let Some(v) = self.world.check_ring().first() {
                return Err(self.fail(format!(
                    "{at}: Zave invariant broken: {}",
                    self.world.describe(v)
                )));
            }
        }
        Ok(())
    }

    /// A new node joins through a node the world picks. A join whose id is
    /// taken (likely on small rings) is skipped.
    fn join(&mut self, at: &str) -> Result<(), String> {
        let name = format!("node-{}", self.next_node);
        self.next_node += 1;
        match self.world.join_host(&name, None) {
            Ok(joined) => {
                for (id, l) in joined {
                    tracing::debug!(
                        "join {}@{} successor {:?}",
                        self.world.name(id),
                        self.world.bits().show(id.id()),
                        l.map(|l| self.world.name(l.successor))
                    );
                }
                self.summary.joins += 1;
                Ok(())
            }
            Err(WorldError::IdTaken { .. }) => Ok(()),
            Err(e) => Err(self.fail(format!("{at}: join {name}: {e}"))),
        }
    }

    /// The physical node of a random node leaves gracefully, or crashes,
    /// unless that would cut another node off or (for a crash) lose a key's
    /// only live copy. Returns how many physical nodes departed (0 or 1).
    fn depart(&mut self, at: &str, crash: bool) -> Result<usize, String> {
        let id = self.world.pick().map_err(|e| self.fail(e.to_string()))?;
        let host = self.world.host_name(id);
        let ids = self
            .world
            .physical(&host)
            .map_err(|e| self.fail(e.to_string()))?;
        if self.world.would_isolate_any(&ids).is_some()
            || (crash && !self.world.sole_copies_of(&ids).is_empty())
        {
            return Ok(0);
        }
        if crash {
            self.world
                .fail_host(&ids)
                .map_err(|e| self.fail(e.to_string()))?;
            self.summary.crashes += 1;
        } else {
            self.world
                .leave_host(&ids)
                .map_err(|e| self.fail(format!("{at}: leave {host}: {e}")))?;
            self.summary.leaves += 1;
        }
        Ok(1)
    }

    /// A key of the model, chosen by the generator. Pre: the model is not
    /// empty.
    fn some_key(&mut self) -> String {
        let i = self.rng.random_range(0..self.model.len());
        self.model.keys().nth(i).cloned().expect("in range")
    }

    /// Writes a new key, or (three times in ten) a new value of a live one.
    fn put(&mut self, at: &str) -> Result<(), String> {
        let key = if self.model.is_empty() || self.rng.random_bool(0.7) {
            self.next_key += 1;
            format!("key-{}", self.next_key)
        } else {
            self.some_key()
        };
        let value = json!({ "n": self.next_key, "text": format!("v{}", self.rng.random::<u32>()) });
        self.world
            .put(&key, value.clone(), None)
            .map_err(|e| self.fail(format!("{at}: put {key}: {e}")))?;
        self.history
            .entry(key.clone())
            .or_default()
            .push(value.clone());
        self.model.insert(key, value);
        self.summary.puts += 1;
        Ok(())
    }

    /// Deletes a live key.
    fn delete(&mut self, at: &str) -> Result<(), String> {
        let key = self.some_key();
        self.world
            .delete(&key, None)
            .map_err(|e| self.fail(format!("{at}: delete {key}: {e}")))?;
        self.model.remove(&key);
        self.summary.deletes += 1;
        Ok(())
    }

    /// Reads a live key: during churn it may be stale, never invented.
    fn get(&mut self, at: &str) -> Result<(), String> {
        let key = self.some_key();
        let got = self
            .world
            .get(&key, None)
            .map_err(|e| self.fail(format!("{at}: get {key}: {e}")))?;
        if got.result.as_deref() != self.model.get(&key) {
            let known = got
                .result
                .as_ref()
                .is_none_or(|v| self.history[&key].contains(v));
            if !known {
                return Err(self.fail(format!(
                    "{at}: get {key} during churn gave {:?}, which was never written",
                    got.result
                )));
            }
            self.summary.stale_reads += 1;
        }
        self.summary.gets += 1;
        Ok(())
    }

    /// Logs the holders of the traced key, and at debug level every node's
    /// pointers.
    fn trace(&self, at: &str) {
        let world = &self.world;
        if let Some(k) = &self.shape.trace_key {
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
                "{at} {k}@{} held by {:?}",
                world.bits().show(key.id),
                holders
            );
        }
        if tracing::enabled!(tracing::Level::DEBUG) {
            tracing::debug!("after {at}");
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
    }

    /// The quiet period after churn: maintenance until every invariant
    /// holds, then every key must read back its latest value.
    fn quiet(&mut self, period: usize) -> Result<(), String> {
        self.world
            .converge(self.shape.max_rounds)
            .map_err(|e| self.fail(format!("quiet period after churn period {period}: {e}")))?;
        self.copies_on_distinct_hosts(period)?;
        for (key, want) in &self.model {
            let got = self
                .world
                .get(key, None)
                .map_err(|e| self.fail(format!("after period {period}: get {key}: {e}")))?;
            if got.result.as_deref() != Some(want) {
                return Err(self.fail(format!(
                    "after period {period}: get {key} gave {:?}, want {want}",
                    got.result
                )));
            }
        }
        Ok(())
    }

    /// After a quiet period, checked apart from the ideal ring the
    /// invariant checker compares with: every live key's copies are on
    /// min(r, hosts) nodes of as many distinct physical nodes, so crashing
    /// any one physical node loses nothing while r ≥ 2.
    fn copies_on_distinct_hosts(&self, period: usize) -> Result<(), String> {
        let w = &self.world;
        let params = w.params();
        let hosts = w.host_names().len();
        let want = params.r().min(hosts);
        for key in self.model.keys() {
            let k = w.key(key);
            let holders: Vec<u32> = w
                .nodes()
                .filter(|n| n.store.get(&k).is_some())
                .map(|n| params.host(n.id))
                .collect();
            let mut distinct = holders.clone();
            distinct.sort_unstable();
            distinct.dedup();
            if holders.len() != want || distinct.len() != want {
                return Err(self.fail(format!(
                    "after period {period}: key {key} has {} copies on {} physical nodes, want {want} on {want}",
                    holders.len(),
                    distinct.len()
                )));
            }
        }
        Ok(())
    }
}
