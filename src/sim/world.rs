//! The simulated world: one network, one seeded random generator, and the
//! verbs a test or the command line uses on a ring (join, leave, fail,
//! maintain, put, get, delete, check).
//!
//! Every random choice (which node starts a lookup, which node a newcomer
//! joins through, the order nodes maintain in) comes from the one generator,
//! so a seed replays a run exactly. The world keeps an observer's list of
//! live members for ordering and checking; the protocol never reads it.

use super::network::{NetStats, Network};
use crate::chord::invariants::{self, Violation};
use crate::chord::ops::{self, Lookup, OpError, Outcome, Transport};
use crate::chord::spec::Ideal;
use crate::chord::{Bits, Id, Key, Node, NodeId, Params};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Why a world verb was refused or failed. Variants other than `Op` are
/// refusals: nothing changed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WorldError {
    /// Two nodes may not share a name.
    #[error("a node named {0:?} is already in the ring")]
    NameTaken(String),
    /// Two nodes may not share an identifier (likely on small rings).
    #[error(
        "node {name:?} would have id {id}, already taken by {other:?}; choose another name or a wider ring (--bits)"
    )]
    IdTaken {
        /// The new node's name.
        name: String,
        /// The id, as shown on this ring.
        id: String,
        /// The node that has it.
        other: String,
    },
    /// No live node has this name.
    #[error("no live node named {0:?}")]
    NoSuchNode(String),
    /// The verb needs at least one node.
    #[error("the ring has no nodes")]
    Empty,
    /// A protocol procedure failed; its error says what changed.
    #[error(transparent)]
    Op(#[from] OpError),
    /// Maintenance did not reach a state where every invariant holds.
    #[error("maintenance did not converge within {rounds} rounds; first problem: {first}")]
    NotConverged {
        /// Rounds run.
        rounds: usize,
        /// The first violation still present.
        first: String,
    },
}

/// A protocol procedure run as one node.
type Procedure = fn(&mut Network, NodeId) -> Result<(), OpError>;

/// A node's periodic maintenance, in the order it runs.
const FULL_UPKEEP: [Procedure; 4] = [
    ops::stabilize,
    ops::check_predecessor,
    ops::fix_fingers,
    ops::replicate,
];

/// Counters of one maintenance round.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RoundStats {
    /// Procedures that failed (a node with no live successor, a lookup that
    /// could not finish); the ring may still heal in later rounds.
    pub failures: usize,
    /// Messages sent during the round.
    pub messages: u64,
}

/// What besides the nodes a world needs to resume exactly where it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Counters {
    /// The seed of the generator.
    pub seed: u64,
    /// How far the generator has advanced.
    pub rng_word_pos: u128,
    /// The last version handed to a write.
    pub clock: u64,
    /// The incarnation the next node gets.
    pub next_incarnation: u32,
}

/// A simulated Chord ring.
#[derive(Debug)]
pub struct World {
    params: Params,
    seed: u64,
    net: Network,
    rng: ChaCha8Rng,
    /// Live nodes, sorted: ring order, and O(1) choice by index.
    members: Vec<NodeId>,
    names: BTreeMap<NodeId, String>,
    by_name: BTreeMap<String, NodeId>,
    /// The client's logical clock: every write takes the next value, so
    /// versions order writes by the time they were issued.
    clock: u64,
    /// The incarnation the next node gets: never reused, so a newcomer at a
    /// departed node's position is a different address.
    next_incarnation: u32,
    /// Stores of new nodes journal their changes too (persistence).
    journaling: bool,
    /// The message counter when the last verb began.
    op_start: u64,
}

impl World {
    /// An empty ring with these settings, its randomness seeded by `seed`.
    pub fn new(params: Params, seed: u64) -> World {
        World {
            params,
            seed,
            net: Network::default(),
            rng: ChaCha8Rng::seed_from_u64(seed),
            members: Vec::new(),
            names: BTreeMap::new(),
            by_name: BTreeMap::new(),
            clock: 0,
            next_incarnation: 0,
            journaling: false,
            op_start: 0,
        }
    }

    /// Rebuilds a world from saved node states (persistence). The generator
    /// resumes at `word_pos` of the stream of `seed`.
    pub fn from_parts(params: Params, counters: Counters, nodes: Vec<(String, Node)>) -> World {
        let mut w = World::new(params, counters.seed);
        w.rng.set_word_pos(counters.rng_word_pos);
        w.clock = counters.clock;
        w.next_incarnation = counters.next_incarnation;
        for (name, node) in nodes {
            w.register(&name, node.id);
            w.net.insert(node);
        }
        w
    }

    /// Makes every store, present and future, journal its changes, so a
    /// persistent layer can write back only what a command changed.
    pub fn set_journaling(&mut self, on: bool) {
        self.journaling = on;
        if on {
            for id in self.members.clone() {
                if let Some(n) = self.net.get_mut(id) {
                    n.store.enable_journal();
                }
            }
        }
    }

    fn new_node(&self, id: NodeId) -> Node {
        let mut node = Node::create(id, self.params);
        if self.journaling {
            node.store.enable_journal();
        }
        node
    }

    /// The counters persistence must save to resume this world exactly.
    pub fn counters(&self) -> Counters {
        Counters {
            seed: self.seed,
            rng_word_pos: self.rng.get_word_pos(),
            clock: self.clock,
            next_incarnation: self.next_incarnation,
        }
    }

    fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }

    fn register(&mut self, name: &str, id: NodeId) {
        if let Err(pos) = self.members.binary_search(&id) {
            self.members.insert(pos, id);
        }
        self.names.insert(id, name.to_owned());
        self.by_name.insert(name.to_owned(), id);
    }

    fn unregister(&mut self, id: NodeId) {
        if let Ok(pos) = self.members.binary_search(&id) {
            self.members.remove(pos);
        }
        if let Some(name) = self.names.remove(&id) {
            self.by_name.remove(&name);
        }
    }

    /// Collects nodes the network's crash plan has killed.
    fn sync_crashes(&mut self) {
        for id in self.net.take_crashed() {
            self.unregister(id);
        }
    }

    /// Ring settings.
    pub fn params(&self) -> Params {
        self.params
    }

    /// Identifier width.
    pub fn bits(&self) -> Bits {
        self.params.bits
    }

    /// Message counters.
    pub fn stats(&self) -> NetStats {
        self.net.stats()
    }

    /// Messages sent by the last verb (join, leave, maintain, round,
    /// lookup, put, get, delete), for per-operation figures.
    pub fn last_op_messages(&self) -> u64 {
        self.net.stats().messages - self.op_start
    }

    fn begin_op(&mut self) {
        self.op_start = self.net.stats().messages;
    }

    /// Number of live nodes.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// True when the ring has no node.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Live node ids in ring order.
    pub fn members(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.members.iter().copied()
    }

    /// A live node's state.
    pub fn node(&self, id: NodeId) -> Option<&Node> {
        self.net.get(id)
    }

    /// A live node's state, for persistence.
    pub fn node_mut(&mut self, id: NodeId) -> Option<&mut Node> {
        self.net.get_mut(id)
    }

    /// Live nodes in ring order.
    pub fn nodes(&self) -> impl Iterator<Item = &Node> + '_ {
        self.members.iter().filter_map(|id| self.net.get(*id))
    }

    /// A node's name ("node-3" or the name it was given).
    pub fn name(&self, id: NodeId) -> String {
        self.names
            .get(&id)
            .cloned()
            .unwrap_or_else(|| format!("<{}>", self.bits().show(id.id())))
    }

    /// The live node with this name.
    pub fn find(&self, name: &str) -> Result<NodeId, WorldError> {
        self.by_name
            .get(name)
            .copied()
            .ok_or_else(|| WorldError::NoSuchNode(name.to_owned()))
    }

    /// The key for a text on this ring.
    pub fn key(&self, text: &str) -> Key {
        Key::new(self.bits().hash(text), text)
    }

    /// The ring position a node of this name gets.
    pub fn position_for(&self, name: &str) -> Id {
        self.bits().hash(name)
    }

    fn new_node_id(&mut self, pos: Id) -> NodeId {
        let id = NodeId::new(pos, self.next_incarnation);
        self.next_incarnation += 1;
        id
    }

    /// A live node chosen by the generator.
    pub fn pick(&mut self) -> Result<NodeId, WorldError> {
        if self.members.is_empty() {
            return Err(WorldError::Empty);
        }
        let i = self.rng.random_range(0..self.members.len());
        Ok(self.members[i])
    }

    fn check_new(&self, name: &str, pos: Id) -> Result<(), WorldError> {
        if self.by_name.contains_key(name) {
            return Err(WorldError::NameTaken(name.to_owned()));
        }
        let i = self.members.partition_point(|m| m.id() < pos);
        if let Some(other) = self.members.get(i).filter(|m| m.id() == pos) {
            return Err(WorldError::IdTaken {
                name: name.to_owned(),
                id: self.bits().show(pos),
                other: self.name(*other),
            });
        }
        Ok(())
    }

    /// Adds a node named `name` at `id` (default: the hash of the name). The
    /// first node creates the ring; later ones join through `via` (default: a
    /// node chosen by the generator) and are linked in by later maintenance.
    pub fn join(
        &mut self,
        name: &str,
        id: Option<Id>,
        via: Option<NodeId>,
    ) -> Result<(NodeId, Option<Lookup>), WorldError> {
        let pos = id.unwrap_or_else(|| self.position_for(name));
        self.check_new(name, pos)?;
        let id = self.new_node_id(pos);
        self.begin_op();
        if self.members.is_empty() {
            self.net.insert(self.new_node(id));
            self.register(name, id);
            return Ok((id, None));
        }
        let via = match via {
            Some(v) => v,
            None => self.pick()?,
        };
        self.net.insert(self.new_node(id));
        let result = ops::join(&mut self.net, id, via);
        self.sync_crashes();
        match result {
            Ok(lookup) => {
                self.register(name, id);
                Ok((id, Some(lookup)))
            }
            Err(e) => {
                self.net.remove(id);
                Err(e.into())
            }
        }
    }

    /// Graceful leave: the node hands its keys over and tells its neighbours,
    /// then disconnects.
    pub fn leave(&mut self, id: NodeId) -> Result<(), WorldError> {
        if self.members.binary_search(&id).is_err() {
            return Err(WorldError::NoSuchNode(self.name(id)));
        }
        self.begin_op();
        let result = ops::leave(&mut self.net, id);
        self.sync_crashes();
        result?;
        self.net.remove(id);
        self.unregister(id);
        Ok(())
    }

    /// Crash: the node vanishes without a word, its data with it.
    pub fn fail(&mut self, id: NodeId) -> Result<Node, WorldError> {
        let node = self
            .net
            .remove(id)
            .ok_or_else(|| WorldError::NoSuchNode(self.name(id)))?;
        self.unregister(id);
        Ok(node)
    }

    /// Zave's failure precondition, checked by the observer: removing `id`
    /// would leave some other live node with no live entry in its successor
    /// list, and with it no way back to the ring.
    pub fn would_isolate(&self, id: NodeId) -> Option<NodeId> {
        self.nodes()
            .filter(|n| n.id != id)
            .find(|n| !n.succs.iter().any(|s| *s != id && self.net.contains(*s)))
            .map(|n| n.id)
    }

    /// Keys whose only live copy is on `id` (tombstones aside): what a crash
    /// of `id` would lose for good. The observer's data precondition, next
    /// to Zave's pointer one ([`World::would_isolate`]): on a ring of fewer
    /// than r members, or while newcomers still wait for their replicas, a
    /// key can have fewer than r copies.
    pub fn sole_copies(&self, id: NodeId) -> usize {
        let Some(node) = self.net.get(id) else {
            return 0;
        };
        let mut alone: std::collections::BTreeSet<Key> =
            node.store.iter_live().map(|(k, _)| k).collect();
        for other in self.nodes().filter(|n| n.id != id) {
            if alone.is_empty() {
                break;
            }
            alone.retain(|k| other.store.get(k).is_none());
        }
        alone.len()
    }

    /// Crashes `id` just before the `after`-th message from now.
    pub fn fail_after_messages(&mut self, after: u64, id: NodeId) {
        self.net.crash_after(after, id);
    }

    /// One node's periodic maintenance: stabilize, check_predecessor,
    /// fix_fingers, replica upkeep. Returns how many of them failed.
    pub fn maintain(&mut self, id: NodeId) -> usize {
        self.maintain_with(id, &FULL_UPKEEP)
    }

    /// Runs `steps` at one node; returns how many failed.
    fn maintain_with(&mut self, id: NodeId, steps: &[Procedure]) -> usize {
        let mut failures = 0;
        for &step in steps {
            if !self.net.contains(id) {
                break;
            }
            let res = step(&mut self.net, id);
            if let Err(e) = res {
                tracing::debug!(node = %self.name(id), error = %e, "maintenance step failed");
                failures += 1;
            }
            self.sync_crashes();
        }
        failures
    }

    /// One maintenance round: every live node maintains once, in an order
    /// drawn from the generator.
    pub fn round(&mut self) -> RoundStats {
        self.round_with(&FULL_UPKEEP)
    }

    /// A round of routing upkeep only: stabilize, check_predecessor and
    /// fix_fingers at every live node, no replica upkeep. What a bulk load
    /// runs between records: each put writes its replicas itself, so the
    /// replica upkeep (pushes on neighbourhood change, anti-entropy digests
    /// of whole ranges, garbage collection) would only re-read data the
    /// load just wrote; the load ends with one full [`World::round`].
    pub fn routing_round(&mut self) -> RoundStats {
        self.round_with(&FULL_UPKEEP[..3])
    }

    fn round_with(&mut self, steps: &[Procedure]) -> RoundStats {
        self.begin_op();
        let before = self.net.stats().messages;
        let mut order: Vec<NodeId> = self.members.clone();
        order.shuffle(&mut self.rng);
        let mut failures = 0;
        for id in order {
            failures += self.maintain_with(id, steps);
        }
        RoundStats {
            failures,
            messages: self.net.stats().messages - before,
        }
    }

    /// One maintenance procedure at one node, both chosen by the generator:
    /// the finest interleaving the property tests explore.
    pub fn random_step(&mut self) {
        let Ok(id) = self.pick() else { return };
        let r = self.rng.random_range(0..4);
        let _ = match r {
            0 => ops::stabilize(&mut self.net, id),
            1 => ops::check_predecessor(&mut self.net, id),
            2 => ops::fix_fingers(&mut self.net, id),
            _ => ops::replicate(&mut self.net, id),
        };
        self.sync_crashes();
    }

    /// Runs rounds until every invariant, converged ones included, holds.
    /// Returns the number of rounds run.
    pub fn converge(&mut self, max_rounds: usize) -> Result<usize, WorldError> {
        for rounds in 0..=max_rounds {
            let v = self.check();
            if v.is_empty() {
                return Ok(rounds);
            }
            if rounds == max_rounds {
                return Err(WorldError::NotConverged {
                    rounds,
                    first: self.describe(&v[0]),
                });
            }
            self.round();
        }
        unreachable!()
    }

    fn start(&mut self, from: Option<NodeId>) -> Result<NodeId, WorldError> {
        match from {
            // The network's slot table holds exactly the members between
            // operations: one index instead of a search of the member list.
            Some(f) if self.net.contains(f) => Ok(f),
            Some(f) => Err(WorldError::NoSuchNode(self.name(f))),
            None => self.pick(),
        }
    }

    /// Finds successor(key) starting at `from` (default: a node chosen by the
    /// generator).
    pub fn lookup(&mut self, key: Id, from: Option<NodeId>) -> Result<Lookup, WorldError> {
        self.begin_op();
        let start = self.start(from)?;
        let r = ops::find_successor(&mut self.net, start, start, key);
        self.sync_crashes();
        Ok(r?)
    }

    /// Many lookups, each `(key, start node)`, with several in flight at
    /// once ([`ops::find_successors`]): the answers are those of
    /// [`World::lookup`] one by one, in the same order, and cost the same
    /// messages, only faster to simulate. A query whose start node is not a
    /// member answers `OpError::NotRunning` and sends nothing (checked as
    /// its first step runs, not in a pass of its own over every start:
    /// that pass would wait on memory once per query).
    pub fn lookup_many(&mut self, queries: &[(Id, NodeId)]) -> Vec<Result<Lookup, OpError>> {
        self.begin_op();
        let r = ops::find_successors(&mut self.net, queries.iter().map(|&(k, s)| (s, k)));
        self.sync_crashes();
        r
    }

    /// Stores `value` under `key`; returns the value it replaced.
    pub fn put(
        &mut self,
        key: &str,
        value: Value,
        from: Option<NodeId>,
    ) -> Result<Outcome<Option<Arc<Value>>>, WorldError> {
        self.put_shared(Arc::from(key), value, from)
    }

    /// [`World::put`] of a key text the caller already holds shared (a bulk
    /// load's records carry theirs so): the ring's copies use that text
    /// instead of a copy of it.
    pub fn put_shared(
        &mut self,
        key: Arc<str>,
        value: Value,
        from: Option<NodeId>,
    ) -> Result<Outcome<Option<Arc<Value>>>, WorldError> {
        self.begin_op();
        let start = self.start(from)?;
        let key = Key::new(self.bits().hash(&key), key);
        let version = self.tick();
        let r = ops::put(&mut self.net, start, &key, Arc::new(value), version);
        self.sync_crashes();
        Ok(r?)
    }

    /// Reads `key` from the first live node holding it.
    pub fn get(
        &mut self,
        key: &str,
        from: Option<NodeId>,
    ) -> Result<Outcome<Option<Arc<Value>>>, WorldError> {
        self.begin_op();
        let start = self.start(from)?;
        let key = self.key(key);
        let r = ops::get(&mut self.net, start, &key);
        self.sync_crashes();
        Ok(r?)
    }

    /// Removes `key`; returns the value it had.
    pub fn delete(
        &mut self,
        key: &str,
        from: Option<NodeId>,
    ) -> Result<Outcome<Option<Arc<Value>>>, WorldError> {
        self.begin_op();
        let start = self.start(from)?;
        let key = self.key(key);
        let version = self.tick();
        let r = ops::delete(&mut self.net, start, &key, version);
        self.sync_crashes();
        Ok(r?)
    }

    fn snapshot(&self) -> BTreeMap<NodeId, &Node> {
        self.members
            .iter()
            .filter_map(|id| self.net.get(*id).map(|n| (*id, n)))
            .collect()
    }

    /// Zave's invariants only: what must hold at every moment.
    pub fn check_ring(&self) -> Vec<Violation> {
        invariants::check_ring(&self.snapshot())
    }

    /// Every invariant, converged ones included.
    pub fn check(&self) -> Vec<Violation> {
        let snap = self.snapshot();
        let mut v = invariants::check_ring(&snap);
        v.extend(invariants::check_converged(&snap, self.params));
        v
    }

    /// A violation in words, with node names.
    pub fn describe(&self, v: &Violation) -> String {
        v.describe(&|n| self.name(n))
    }

    /// A converged ring built directly from the ideal (no messages): for
    /// simulations too large to grow one join at a time. Names are given with
    /// optional explicit ids.
    pub fn bulk(
        params: Params,
        seed: u64,
        nodes: impl IntoIterator<Item = (String, Option<Id>)>,
    ) -> Result<World, WorldError> {
        let mut w = World::new(params, seed);
        let mut all: Vec<(NodeId, String)> = nodes
            .into_iter()
            .map(|(name, id)| {
                let pos = id.unwrap_or_else(|| w.position_for(&name));
                (w.new_node_id(pos), name)
            })
            .collect();
        all.sort_unstable_by_key(|(n, _)| n.id());
        for pair in all.windows(2) {
            if pair[0].0.id() == pair[1].0.id() {
                return Err(if pair[0].1 == pair[1].1 {
                    WorldError::NameTaken(pair[0].1.clone())
                } else {
                    WorldError::IdTaken {
                        name: pair[1].1.clone(),
                        id: params.bits.show(pair[0].0.id()),
                        other: pair[0].1.clone(),
                    }
                });
            }
        }
        w.members = all.iter().map(|p| p.0).collect();
        for (id, name) in all {
            if w.by_name.insert(name.clone(), id).is_some() {
                return Err(WorldError::NameTaken(name));
            }
            w.names.insert(id, name);
        }
        let ids: Vec<NodeId> = w.members.clone();
        if ids.is_empty() {
            return Ok(w);
        }
        let ideal = Ideal::new(&ids, params);
        w.net.reserve_addresses(w.next_incarnation as usize);
        for &id in &ids {
            let mut node = Node::create(id, params);
            node.pred = ideal.pred(id);
            node.succs = ideal.succs(id);
            node.succs.shrink_to_fit();
            node.preds = ideal.preds(id);
            node.preds.shrink_to_fit();
            node.fingers = ideal.fingers(id);
            node.replicated = node.neighbourhood_fingerprint();
            w.net.insert(node);
        }
        Ok(w)
    }

    /// Bytes of routing state per node (nodes, their lists and fingers, and
    /// the network's table), excluding stored data and names.
    pub fn routing_bytes(&self) -> usize {
        self.nodes()
            .map(|n| n.routing_bytes() - std::mem::size_of::<Node>())
            .sum::<usize>()
            + self.net.table_bytes()
    }

    /// Gives procedures direct access, for tests that drive single steps.
    pub fn transport(&mut self) -> &mut impl Transport {
        &mut self.net
    }
}
