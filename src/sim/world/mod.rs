//! The simulated world: one network, one seeded random generator, and the
//! verbs a test or the command line uses on a ring (join, leave, fail,
//! maintain, put, get, delete, check).
//!
//! Every random choice (which node starts a lookup, which node a newcomer
//! joins through, the order nodes maintain in) comes from the one generator,
//! so a seed replays a run exactly. The world keeps an observer's list of
//! live members for ordering and checking; the protocol never reads it.

mod bulk;
mod client;
mod hosts;
mod partial;
mod upkeep;

pub use hosts::{VNODE_MARK, host_of};
pub use partial::Directory;
pub use upkeep::RoundStats;

use super::network::{NetStats, Network};
use crate::chord::invariants::{self, Violation};
use crate::chord::ops;
use crate::chord::{Bits, Id, Key, Node, NodeId, Params};
use crate::chord::{Lookup, OpError, Transport};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
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
    /// The name cannot be a node's name.
    #[error("{0:?} cannot name a node: {1}")]
    BadName(String, &'static str),
    /// No live node has this name.
    #[error("no live node named {0:?}")]
    NoSuchNode(String),
    /// A virtual node was named where a physical node is meant.
    #[error("{name:?} is a virtual node of {host:?}; name the physical node {host:?} instead")]
    VirtualNode {
        /// The name given.
        name: String,
        /// Its physical node.
        host: String,
    },
    /// The verb needs at least one node.
    #[error("the ring has no nodes")]
    Empty,
    /// A protocol procedure failed; its error says what changed.
    #[error(transparent)]
    Op(#[from] OpError),
    /// The ring is read on demand and this needed a part not read yet (see
    /// [`World::on_demand`]); whoever runs the world reads it and runs again.
    #[error("this needs a node of the ring not read yet")]
    NotRead,
    /// Maintenance did not reach a state where every invariant holds.
    #[error("maintenance did not converge within {rounds} rounds; first problem: {first}")]
    NotConverged {
        /// Rounds run.
        rounds: usize,
        /// The first violation still present.
        first: String,
    },
}

/// Longest node name, in characters.
pub const MAX_NAME: usize = 100;

/// A node name must show on one line of a table and be typed back on a
/// command line: 1 to [`MAX_NAME`] characters, no control characters, no
/// spaces at either end.
pub fn check_name(name: &str) -> Result<(), WorldError> {
    let bad = |why| Err(WorldError::BadName(name.to_owned(), why));
    if name.is_empty() {
        return bad("it is empty");
    }
    if name.chars().count() > MAX_NAME {
        return bad("it is longer than 100 characters");
    }
    if name.chars().any(char::is_control) {
        return bad("it holds a control character");
    }
    if name.trim() != name {
        return bad("it starts or ends with a space");
    }
    Ok(())
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
    /// Stores of new nodes record their changes too (persistence).
    journaling: bool,
    /// The message counter when the last verb began.
    op_start: u64,
    /// What a world holding only part of its ring knows of the rest.
    directory: Option<Directory>,
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
            directory: None,
        }
    }

    /// Rebuilds a world from saved node states (persistence). The generator
    /// resumes at `word_pos` of the stream of `seed`.
    pub fn from_parts(params: Params, counters: Counters, nodes: Vec<(String, Node)>) -> World {
        World::resumed(params, counters, Network::default(), nodes)
    }

    /// A world on `net` holding `nodes`, resuming `counters`.
    fn resumed(
        params: Params,
        counters: Counters,
        net: Network,
        nodes: Vec<(String, Node)>,
    ) -> World {
        let mut w = World::new(params, counters.seed);
        w.net = net;
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
    /// Also notes which nodes may change from now on (see
    /// [`World::take_touched`]).
    pub fn set_recording_changes(&mut self, on: bool) {
        self.journaling = on;
        if on {
            for id in self.members.clone() {
                if let Some(n) = self.net.get_mut(id) {
                    n.store.record_changes();
                }
            }
        }
        self.net.note_touched(on);
    }

    /// The nodes that may have changed (routing or store) since changes
    /// began to be recorded or since the last call; None when changes are
    /// not recorded. See [`Network::take_touched`].
    pub fn take_touched(&mut self) -> Option<Vec<NodeId>> {
        self.net.take_touched()
    }

    fn new_node(&self, id: NodeId) -> Node {
        let mut node = Node::create(id, self.params);
        if self.journaling {
            node.store.record_changes();
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

    /// Number of live nodes (of the whole ring, when only part is read).
    pub fn len(&self) -> usize {
        match &self.directory {
            Some(d) => d.members,
            None => self.members.len(),
        }
    }

    /// True when the ring has no node.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Live node ids in ring order, as a slice (for positions by index).
    pub fn member_ids(&self) -> &[NodeId] {
        &self.members
    }

    /// Live node ids in ring order (of the nodes read, when only part of
    /// the ring is).
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

    /// The live node with this name. On a ring read on demand a name not
    /// read yet is [`WorldError::NotRead`]; [`World::named`] reads it.
    pub fn find(&self, name: &str) -> Result<NodeId, WorldError> {
        if let Some(id) = self.by_name.get(name) {
            return Ok(*id);
        }
        match &self.directory {
            Some(d) if !d.unknown_names.contains(name) => Err(WorldError::NotRead),
            _ => Err(WorldError::NoSuchNode(name.to_owned())),
        }
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
        let n = self.len();
        if n == 0 {
            return Err(WorldError::Empty);
        }
        let i = self.rng.random_range(0..n);
        self.member_at(i)
    }

    fn check_new(&self, name: &str, pos: Id) -> Result<(), WorldError> {
        check_name(name)?;
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
        self.would_isolate_any(&[id])
    }

    /// Keys (in ring order) whose only live copy is on `id` (tombstones aside): what a crash
    /// of `id` would lose for good. The observer's data precondition, next
    /// to Zave's pointer one ([`World::would_isolate`]): on a ring of fewer
    /// than r members, or while newcomers still wait for their replicas, a
    /// key can have fewer than r copies.
    pub fn sole_copies(&self, id: NodeId) -> Vec<Arc<str>> {
        self.sole_copies_of(&[id])
    }

    /// Crashes `id` just before the `after`-th message from now.
    pub fn fail_after_messages(&mut self, after: u64, id: NodeId) {
        self.net.crash_after(after, id);
    }

    /// The node a client operation starts at: `from` if it is live, else
    /// one the generator picks.
    fn start(&mut self, from: Option<NodeId>) -> Result<NodeId, WorldError> {
        match from {
            // The network's slot table holds exactly the members between
            // operations: one index instead of a search of the member list.
            Some(f) if self.net.contains(f) => Ok(f),
            Some(f) => Err(WorldError::NoSuchNode(self.name(f))),
            None => self.pick(),
        }
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

    /// Gives procedures direct access, for tests that drive single steps.
    pub fn transport(&mut self) -> &mut impl Transport {
        &mut self.net
    }
}
