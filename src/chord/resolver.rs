//! The iterative lookup as a state machine: each [`Resolver::step`] sends one
//! `FindStep` and digests the answer. [`crate::chord::lookup::resolve`]
//! drives one resolver to the end; the simulator drives many round-robin.

use super::error::OpError;
use super::id::{Id, NodeId};
use super::message::Step;
use super::transport::{Transport, Unreachable};

/// The result of a lookup: the node found and how it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lookup {
    /// successor(key) among the nodes that answered.
    pub successor: NodeId,
    /// The nodes asked, in order, from the start node to the key's
    /// predecessor (the node that answered "done").
    pub path: Vec<NodeId>,
    /// Requests that went unanswered and were routed around.
    pub timeouts: u32,
}

impl Lookup {
    /// Routing hops: nodes asked after the start (the paper's path length).
    pub fn hops(&self) -> usize {
        self.path.len() - 1
    }
}

/// Path entries a resolver allocates room for up front: lookups in a
/// million-node ring take about ten hops, so one allocation holds the path.
pub const PATH_CAPACITY: usize = 16;

/// Most `FindStep`s (and unanswered successors) one lookup may use: four
/// laps of the widest finger table plus slack. Only a corrupted or
/// partitioned ring gets near it.
const BUDGET: usize = 4 * 160 + 64;

/// What one step of a lookup produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// A node answered with the next node to ask (or one did not answer and
    /// the lookup backed off); step again.
    Asking,
    /// A node named this as the key's successor. The caller contacts it and
    /// reports [`Resolver::successor_unreachable`] if it does not answer.
    Found(NodeId),
    /// The lookup cannot finish.
    Failed(OpError),
}

/// One iterative lookup in progress (paper, ToN Fig. 5, with the successor
/// list searched by `closest_preceding_node` and dead nodes routed around).
#[derive(Debug, Clone)]
pub struct Resolver {
    asker: NodeId,
    key: Id,
    cur: NodeId,
    path: Vec<NodeId>,
    avoid: Vec<NodeId>,
    timeouts: u32,
    steps: usize,
    /// The next step asks again a node already on the path.
    retrying: bool,
}

impl Resolver {
    /// A lookup of `key` by `asker`, starting at `start`, never routed
    /// through a node in `avoid`.
    pub fn new(asker: NodeId, start: NodeId, key: Id, avoid: Vec<NodeId>) -> Resolver {
        Resolver {
            asker,
            key,
            cur: start,
            path: Vec::with_capacity(PATH_CAPACITY),
            avoid,
            timeouts: 0,
            steps: 0,
            retrying: false,
        }
    }

    /// The node the next step asks.
    pub fn next(&self) -> NodeId {
        self.cur
    }

    /// The node the lookup runs for.
    pub fn asker(&self) -> NodeId {
        self.asker
    }

    /// The position looked up.
    pub fn key(&self) -> Id {
        self.key
    }

    /// The nodes asked so far; its buffer holds [`PATH_CAPACITY`] entries
    /// from the start.
    pub fn path(&self) -> &[NodeId] {
        &self.path
    }

    /// Asks the current node one `FindStep` and moves on according to its
    /// answer. A node that does not answer is avoided from then on and the
    /// previous node is asked again.
    pub fn step<T: Transport>(&mut self, t: &mut T) -> Progress {
        if let Err(e) = self.spend() {
            return Progress::Failed(e);
        }
        let cur = self.cur;
        let step = match t.find_step(self.asker, cur, self.key, &self.avoid) {
            Ok(s) => s,
            // The asker itself is gone (or never was): no message left it.
            Err(Unreachable) if cur == self.asker && self.path.is_empty() => {
                return Progress::Failed(OpError::NotRunning(self.asker));
            }
            Err(Unreachable) => {
                self.timeouts += 1;
                self.avoid.push(cur);
                return self.back_off();
            }
        };
        // A node asked again after a backoff is on the path already.
        if !std::mem::take(&mut self.retrying) {
            self.path.push(cur);
        }
        match step {
            Step::Done(s) => Progress::Found(s),
            Step::Next(n) if n == cur => {
                Progress::Failed(OpError::Protocol("node named itself as next hop".into()))
            }
            Step::Next(n) => {
                self.cur = n;
                Progress::Asking
            }
            Step::Stuck => {
                self.avoid.push(cur);
                self.path.pop();
                self.back_off()
            }
        }
    }

    /// Counts one more message against the lookup's budget.
    fn spend(&mut self) -> Result<(), OpError> {
        if self.steps == BUDGET {
            return Err(OpError::TooLong(BUDGET));
        }
        self.steps += 1;
        Ok(())
    }

    /// Returns to the last node that answered, or fails if there is none.
    fn back_off(&mut self) -> Progress {
        match self.path.last() {
            Some(&p) => {
                self.cur = p;
                self.retrying = true;
                Progress::Asking
            }
            None => Progress::Failed(OpError::Stuck),
        }
    }

    /// The successor named by the last step did not answer: avoid it and
    /// ask the same node again (it will name the next live successor).
    pub fn successor_unreachable(&mut self, s: NodeId) -> Option<OpError> {
        if let Err(e) = self.spend() {
            return Some(e);
        }
        self.timeouts += 1;
        self.avoid.push(s);
        self.retrying = true;
        None
    }

    /// The finished lookup, with `successor` as its answer.
    pub fn finish(self, successor: NodeId) -> Lookup {
        Lookup {
            successor,
            path: self.path,
            timeouts: self.timeouts,
        }
    }
}
