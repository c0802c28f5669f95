//! The simulated network: delivers each request to the live node it is
//! addressed to, or answers "unreachable" when that node has crashed or left.
//!
//! A node's address is its incarnation number, never reused: the network is
//! a vector of slots indexed by it, so delivery is one index, no hashing, and
//! a stale address finds an empty slot (or a node with another id) and is
//! unreachable.
//!
//! It counts messages, and it can crash a node after a given number of
//! further messages, so a test can kill a successor in the middle of
//! stabilize. It never chooses anything at random; the world does.
//!
//! A network can also hold only part of a ring ([`Network::on_demand`]): the
//! nodes a command has read from the state file so far, by address in a
//! map (the slot table would be as long as the highest address). A request
//! to a node it does not hold, and does not know to be gone, is a
//! [`Miss`]: the network answers it and every later request as
//! unreachable, so the command ends soon, and its driver reads the node and
//! runs the command again (see [`crate::state`]).

use crate::chord::message::{Request, Response, Step};
use crate::chord::{Id, Node, NodeId, Transport, Unreachable};
use rustc_hash::{FxHashMap, FxHashSet};

/// The bytes of a [`Node`] a lookup step reads: id, successor list and
/// finger table headers, which `Node` (`#[repr(C)]`) declares first.
const ROUTING_HEAD: usize = std::mem::offset_of!(Node, preds);

/// Message counters since the network was made.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetStats {
    /// Requests sent from one node to another (a node asking itself is free).
    pub messages: u64,
    /// Requests that found no live receiver.
    pub unreachable: u64,
}

/// Live nodes by address, and the counters.
#[derive(Debug, Default)]
pub struct Network {
    /// Slot i holds the node whose incarnation is i, while it lives.
    slots: Vec<Option<Node>>,
    live: usize,
    stats: NetStats,
    /// (message count at which to crash, node), soonest first.
    crash_plan: Vec<(u64, NodeId)>,
    /// Nodes the plan has crashed, not yet collected by the world.
    crashed: Vec<NodeId>,
    /// Slots announced by the last [`WARM_LAG`] `will_call` hints, a ring
    /// buffer, and where the next hint goes.
    warm: [(usize, Option<Id>); WARM_LAG],
    warm_at: usize,
    /// The part of a ring read so far, when the ring is read on demand
    /// (`slots` is then empty).
    demand: Option<Box<Partial>>,
    /// While noted: the nodes that may have changed since the last
    /// [`Network::take_touched`] (see there).
    touched: Option<Box<Touched>>,
}

/// Nodes noted as touched: each once, in the order first touched. Noting
/// is on the path of every request a load routes, so it is a bit test by
/// address (addresses are never reused) rather than a hash.
#[derive(Debug, Default)]
struct Touched {
    /// One bit per address, set while its node is in `ids`.
    seen: Vec<u64>,
    ids: Vec<NodeId>,
}

impl Touched {
    fn note(&mut self, id: NodeId) {
        let i = id.incarnation() as usize;
        let (word, bit) = (i / 64, 1u64 << (i % 64));
        if word >= self.seen.len() {
            self.seen.resize(word + 1, 0);
        }
        if self.seen[word] & bit == 0 {
            self.seen[word] |= bit;
            self.ids.push(id);
        }
    }

    fn take(&mut self) -> Vec<NodeId> {
        for id in &self.ids {
            let i = id.incarnation() as usize;
            self.seen[i / 64] &= !(1u64 << (i % 64));
        }
        std::mem::take(&mut self.ids)
    }
}

/// What a run on a partly read ring needed and did not have: the command
/// must be run again once it is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Miss {
    /// A request went to this node.
    Node(NodeId),
    /// The member at this rank in ring order (0 is the lowest id) was asked
    /// for: how the generator picks a start node.
    Rank(usize),
    /// The node with this name was asked for.
    Name(String),
}

/// The nodes of a partly read ring.
#[derive(Debug, Default)]
struct Partial {
    nodes: FxHashMap<NodeId, Node>,
    /// Addresses known to be no member (looked up and not found).
    gone: FxHashSet<NodeId>,
    /// The first miss of this run; from then on nothing answers.
    miss: Option<Miss>,
}

impl Partial {
    /// The node at `id` as a receiver: a node not read is a miss.
    fn reach(&mut self, id: NodeId) -> Option<&mut Node> {
        if self.miss.is_some() {
            return None;
        }
        if !self.nodes.contains_key(&id) {
            if !self.gone.contains(&id) {
                self.miss = Some(Miss::Node(id));
            }
            return None;
        }
        self.nodes.get_mut(&id)
    }
}

impl Network {
    fn slot(id: NodeId) -> usize {
        id.incarnation() as usize
    }

    /// A network holding part of a ring: nodes are inserted as they are
    /// read; `gone` are addresses known to belong to no member.
    pub fn on_demand(gone: impl IntoIterator<Item = NodeId>) -> Network {
        Network {
            demand: Some(Box::new(Partial {
                gone: gone.into_iter().collect(),
                ..Partial::default()
            })),
            ..Network::default()
        }
    }

    /// True when this network holds part of a ring and knows `id` to be
    /// no member (looked up and not found, or departed).
    pub fn is_gone(&self, id: NodeId) -> bool {
        self.demand.as_ref().is_some_and(|d| d.gone.contains(&id))
    }

    /// Records what a run needed and the network did not hold (the first
    /// miss only); from now on every request is unreachable. No effect on
    /// a network holding the whole ring.
    pub fn note_miss(&mut self, miss: Miss) {
        if let Some(d) = &mut self.demand {
            d.miss.get_or_insert(miss);
        }
    }

    /// The first miss of this run, if any.
    pub fn take_miss(&mut self) -> Option<Miss> {
        self.demand.as_mut()?.miss.take()
    }

    /// Starts (`on`, with nothing noted yet) or stops noting which nodes
    /// may change, so that persistence writes back only those.
    pub fn note_touched(&mut self, on: bool) {
        self.touched = on.then(Box::default);
    }

    /// The nodes that may have changed since noting began or since the
    /// last call, each once, and starts afresh; None when not noting (any
    /// node may have changed). A node counts as touched when it was
    /// inserted, removed, handed out mutably, acted for itself
    /// ([`Transport::local`]) or handled a request that [`Node::answer`]
    /// does not answer.
    pub fn take_touched(&mut self) -> Option<Vec<NodeId>> {
        self.touched.as_mut().map(|t| t.take())
    }

    /// Notes `id`, a node this network holds, as touched.
    fn touch(&mut self, id: NodeId) {
        note(&mut self.touched, id);
    }

    /// Makes room for addresses up to `n` exactly (a bulk build knows how
    /// many nodes it makes).
    pub fn reserve_addresses(&mut self, n: usize) {
        self.slots.reserve_exact(n.saturating_sub(self.slots.len()));
    }

    /// Connects a node; it can be reached from now on.
    pub fn insert(&mut self, node: Node) {
        self.touch(node.id);
        if let Some(d) = &mut self.demand {
            d.gone.remove(&node.id);
            d.nodes.insert(node.id, node);
            return;
        }
        let i = Self::slot(node.id);
        if self.slots.len() <= i {
            self.slots.resize_with(i + 1, || None);
        }
        if self.slots[i].replace(node).is_none() {
            self.live += 1;
        }
    }

    /// Disconnects a node (crash or departure), returning its state.
    pub fn remove(&mut self, id: NodeId) -> Option<Node> {
        if let Some(d) = &mut self.demand {
            let node = d.nodes.remove(&id)?;
            d.gone.insert(id);
            self.touch(id);
            return Some(node);
        }
        let slot = self.slots.get_mut(Self::slot(id))?;
        if slot.as_ref().is_some_and(|n| n.id == id) {
            self.live -= 1;
            let node = slot.take();
            self.touch(id);
            node
        } else {
            None
        }
    }

    /// A live node's state, for observers.
    pub fn get(&self, id: NodeId) -> Option<&Node> {
        if let Some(d) = &self.demand {
            return d.nodes.get(&id);
        }
        self.slots
            .get(Self::slot(id))?
            .as_ref()
            .filter(|n| n.id == id)
    }

    /// A live node's state, for the simulator and persistence.
    pub fn get_mut(&mut self, id: NodeId) -> Option<&mut Node> {
        let node = match &mut self.demand {
            Some(d) => d.nodes.get_mut(&id),
            None => live_mut(&mut self.slots, id),
        }?;
        note(&mut self.touched, id);
        Some(node)
    }

    /// True if the node is live.
    pub fn contains(&self, id: NodeId) -> bool {
        self.get(id).is_some()
    }

    /// Number of live nodes.
    pub fn len(&self) -> usize {
        self.live + self.demand.as_ref().map_or(0, |d| d.nodes.len())
    }

    /// True when no node is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Counters so far.
    pub fn stats(&self) -> NetStats {
        self.stats
    }

    /// Crashes `node` just before the `after`-th message from now is delivered.
    pub fn crash_after(&mut self, after: u64, node: NodeId) {
        self.crash_plan.push((self.stats.messages + after, node));
        self.crash_plan.sort();
    }

    /// Nodes crashed by the plan since the last call.
    pub fn take_crashed(&mut self) -> Vec<NodeId> {
        std::mem::take(&mut self.crashed)
    }

    /// Bytes of the slot table itself, for the memory figure.
    pub fn table_bytes(&self) -> usize {
        self.slots.capacity() * std::mem::size_of::<Option<Node>>()
    }
}

impl Network {
    /// Counts a message from `from` to `to` (a node asking itself is free),
    /// runs the crash plan, and returns the receiver if it is live.
    #[inline]
    fn deliver(&mut self, from: NodeId, to: NodeId) -> Result<&mut Node, Unreachable> {
        if from != to {
            self.stats.messages += 1;
            while self
                .crash_plan
                .first()
                .is_some_and(|&(at, _)| at <= self.stats.messages)
            {
                let (_, victim) = self.crash_plan.remove(0);
                if self.remove(victim).is_some() {
                    self.crashed.push(victim);
                }
            }
        }
        // The slots, not `self.get_mut`: the receiver borrowed from the
        // slots leaves the counters free to update on the other path. A
        // partial ring's slots are empty: its nodes are found on that path.
        if let Some(node) = live_mut(&mut self.slots, to) {
            return Ok(node);
        }
        match self.demand.as_deref_mut().and_then(|d| d.reach(to)) {
            Some(node) => Ok(node),
            None => {
                self.stats.unreachable += 1;
                Err(Unreachable)
            }
        }
    }
}

impl Transport for Network {
    fn call(&mut self, from: NodeId, to: NodeId, req: Request) -> Result<Response, Unreachable> {
        let node = self.deliver(from, to)?;
        if let Some(answer) = node.answer(&req) {
            return Ok(answer);
        }
        let answer = node.change(req);
        self.touch(to);
        Ok(answer)
    }

    fn local(&mut self, id: NodeId) -> Option<&mut Node> {
        let node = match &mut self.demand {
            Some(d) => d.reach(id),
            None => live_mut(&mut self.slots, id),
        }?;
        note(&mut self.touched, id);
        Some(node)
    }

    fn ping(&mut self, from: NodeId, to: NodeId) -> Result<(), Unreachable> {
        self.deliver(from, to).map(|_| ())
    }

    fn find_step(
        &mut self,
        from: NodeId,
        to: NodeId,
        key: Id,
        avoid: &[NodeId],
    ) -> Result<Step, Unreachable> {
        self.deliver(from, to)
            .map(|node| node.find_step(key, avoid))
    }

    /// Pipelines memory: the receiver's slot is fetched now, and, for the
    /// lookup step announced [`WARM_LAG`] hints ago (whose slot has arrived
    /// by then), the successor list and the two finger runs that step will
    /// read, found from the key and the run starts kept inside the node.
    /// With a dozen lookups in flight, each step then finds its node's state
    /// in cache instead of waiting for main memory several times.
    fn will_call(&mut self, to: NodeId, key: Option<Id>) {
        let i = Self::slot(to);
        if let Some(slot) = self.slots.get(i) {
            // Option<Node> has no tag (the niche is in a Vec pointer), so
            // the node's head is the slot's head.
            // A ping (no key) reads only the id.
            let bytes = if key.is_some() {
                ROUTING_HEAD
            } else {
                std::mem::size_of::<NodeId>()
            };
            super::prefetch::read(std::ptr::from_ref(slot).cast(), bytes);
        }
        let (lagged, key) = std::mem::replace(&mut self.warm[self.warm_at], (i, key));
        self.warm_at = (self.warm_at + 1) % WARM_LAG;
        if let (Some(Some(node)), Some(key)) = (self.slots.get(lagged), key) {
            let succs = node.succs.as_slice();
            super::prefetch::read(succs.as_ptr().cast(), std::mem::size_of_val(succs));
            let runs = node.finger_candidates(key.offset_from(node.id.id()));
            let runs = &runs[runs.len().saturating_sub(2)..];
            super::prefetch::read(runs.as_ptr().cast(), std::mem::size_of_val(runs));
        }
    }
}

/// Notes `id` in `touched` while noting (a free function, so a caller
/// still holding a node from the slots may note it).
fn note(touched: &mut Option<Box<Touched>>, id: NodeId) {
    if let Some(t) = touched {
        t.note(id);
    }
}

/// The live node at address `id` in `slots`: its slot, if it still holds
/// the node with that id.
fn live_mut(slots: &mut [Option<Node>], id: NodeId) -> Option<&mut Node> {
    slots
        .get_mut(Network::slot(id))?
        .as_mut()
        .filter(|n| n.id == id)
}

/// How many [`Transport::will_call`] hints pass between fetching a node's
/// slot and fetching the tables it points to: long enough for the slot to
/// arrive from memory, short enough that the tables arrive before use.
const WARM_LAG: usize = 4;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chord::Params;

    fn node(v: u128, inc: u32) -> Node {
        let p = Params::new(8, 2);
        Node::create(NodeId::new(p.bits.id_from_u128(v).unwrap(), inc), p)
    }

    #[test]
    fn delivers_counts_and_reports_the_unreachable() {
        let mut net = Network::default();
        let (a, b) = (node(10, 0), node(20, 1));
        let (ia, ib) = (a.id, b.id);
        net.insert(a);
        net.insert(b);
        assert_eq!(net.len(), 2);
        assert!(matches!(
            net.call(ia, ib, Request::Ping),
            Ok(Response::Pong)
        ));
        // Asking oneself is free.
        net.ping(ia, ia).unwrap();
        assert_eq!(net.stats().messages, 1);
        net.remove(ib);
        assert_eq!(net.ping(ia, ib), Err(Unreachable));
        assert_eq!(net.stats().unreachable, 1);
        // A stale address (same slot, another node) is unreachable too.
        let c = node(20, 1);
        let stale = NodeId::new(c.id.id(), 7);
        net.insert(c);
        assert_eq!(net.ping(ia, stale), Err(Unreachable));
    }

    #[test]
    fn crash_plan_strikes_before_the_named_message() {
        let mut net = Network::default();
        let (a, b) = (node(10, 0), node(20, 1));
        let (ia, ib) = (a.id, b.id);
        net.insert(a);
        net.insert(b);
        net.crash_after(2, ib);
        assert!(net.ping(ia, ib).is_ok());
        assert_eq!(net.ping(ia, ib), Err(Unreachable));
        assert_eq!(net.take_crashed(), vec![ib]);
        assert!(net.take_crashed().is_empty());
    }

    #[test]
    fn notes_the_nodes_a_request_may_change_and_not_the_ones_it_reads() {
        let mut net = Network::default();
        let (a, b) = (node(10, 0), node(20, 1));
        let (ia, ib) = (a.id, b.id);
        net.insert(a);
        assert_eq!(net.take_touched(), None, "not noting yet");
        net.note_touched(true);
        net.insert(b);
        assert_eq!(net.take_touched(), Some(vec![ib]));
        let key = crate::chord::Key::new(ib.id(), "k");
        for read in [
            Request::Ping,
            Request::GetNeighbours,
            Request::Get {
                key: key.clone(),
                dead: Vec::new(),
            },
        ] {
            net.call(ia, ib, read).unwrap();
        }
        net.find_step(ia, ib, ib.id(), &[]).unwrap();
        assert_eq!(net.take_touched(), Some(vec![]));
        net.call(ia, ib, Request::Notify { from: ia }).unwrap();
        net.get_mut(ia);
        net.call(ia, ib, Request::Notify { from: ia }).unwrap();
        assert_eq!(net.take_touched(), Some(vec![ib, ia]), "each once");
        // A stale address (another node's slot) is not noted.
        net.get_mut(NodeId::new(ia.id(), 7));
        net.remove(ib);
        assert_eq!(net.take_touched(), Some(vec![ib]));
        net.note_touched(false);
        net.get_mut(ia);
        assert_eq!(net.take_touched(), None);
    }
}
