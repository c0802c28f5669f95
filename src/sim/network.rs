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

use crate::chord::message::{Request, Response, Step};
use crate::chord::{Id, Node, NodeId, Transport, Unreachable};

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
}

impl Network {
    fn slot(id: NodeId) -> usize {
        id.incarnation() as usize
    }

    /// Makes room for addresses up to `n` exactly (a bulk build knows how
    /// many nodes it makes).
    pub fn reserve_addresses(&mut self, n: usize) {
        self.slots.reserve_exact(n.saturating_sub(self.slots.len()));
    }

    /// Connects a node; it can be reached from now on.
    pub fn insert(&mut self, node: Node) {
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
        let slot = self.slots.get_mut(Self::slot(id))?;
        if slot.as_ref().is_some_and(|n| n.id == id) {
            self.live -= 1;
            slot.take()
        } else {
            None
        }
    }

    /// A live node's state, for observers.
    pub fn get(&self, id: NodeId) -> Option<&Node> {
        self.slots
            .get(Self::slot(id))?
            .as_ref()
            .filter(|n| n.id == id)
    }

    /// A live node's state, for the simulator and persistence.
    pub fn get_mut(&mut self, id: NodeId) -> Option<&mut Node> {
        live_mut(&mut self.slots, id)
    }

    /// True if the node is live.
    pub fn contains(&self, id: NodeId) -> bool {
        self.get(id).is_some()
    }

    /// Number of live nodes.
    pub fn len(&self) -> usize {
        self.live
    }

    /// True when no node is live.
    pub fn is_empty(&self) -> bool {
        self.live == 0
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
        // slots leaves the counters free to update on the other path.
        match live_mut(&mut self.slots, to) {
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
        self.deliver(from, to).map(|node| node.handle(req))
    }

    fn local(&mut self, id: NodeId) -> Option<&mut Node> {
        self.get_mut(id)
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
}
