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

use crate::chord::message::{Request, Response};
use crate::chord::ops::{Transport, Unreachable};
use crate::chord::{Node, NodeId};

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
        self.slots
            .get_mut(Self::slot(id))?
            .as_mut()
            .filter(|n| n.id == id)
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

impl Transport for Network {
    fn call(&mut self, from: NodeId, to: NodeId, req: Request) -> Result<Response, Unreachable> {
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
        match self.get_mut(to) {
            Some(node) => Ok(node.handle(req)),
            None => {
                self.stats.unreachable += 1;
                Err(Unreachable)
            }
        }
    }

    fn local(&mut self, id: NodeId) -> Option<&mut Node> {
        self.get_mut(id)
    }
}
