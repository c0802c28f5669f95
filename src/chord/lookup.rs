//! Iterative `find_successor`: one lookup at a time, or many in flight at
//! once.
//!
//! A lookup is a small state machine, [`Resolver`]: each call of
//! [`Resolver::step`] sends one `FindStep` message and digests the answer.
//! [`resolve`] drives one resolver to the end; [`find_successors`] drives many
//! round-robin, the way a busy client (or a node serving many clients) has
//! several lookups outstanding. Interleaving changes nothing a node sees, since
//! a lookup never changes node state, but it lets the transport prepare for
//! the next message of one lookup while it delivers the others
//! ([`Transport::will_call`]): in the simulator that hides most of the memory
//! latency of jumping between a hundred thousand nodes' tables.

use super::id::{Id, NodeId};
use super::message::Step;
use super::ops::{OpError, Transport, Unreachable};

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
            // Lookups in a million-node ring take about ten hops: one
            // allocation for the whole path.
            path: Vec::with_capacity(16),
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

/// Iterative `find_successor`: asks nodes one after another, starting at
/// `start`, until one names the key's successor; then runs `at_successor`
/// there. If the successor, or any node on the way, does not answer, the
/// asker marks it dead for this lookup and asks the previous node again.
pub fn resolve<T: Transport, R>(
    t: &mut T,
    asker: NodeId,
    start: NodeId,
    key: Id,
    at_successor: impl FnMut(&mut T, NodeId) -> Result<R, Unreachable>,
) -> Result<(Lookup, R), OpError> {
    resolve_avoiding(t, asker, start, key, Vec::new(), at_successor)
}

/// [`resolve`], never routing through the nodes in `avoid`.
pub fn resolve_avoiding<T: Transport, R>(
    t: &mut T,
    asker: NodeId,
    start: NodeId,
    key: Id,
    avoid: Vec<NodeId>,
    mut at_successor: impl FnMut(&mut T, NodeId) -> Result<R, Unreachable>,
) -> Result<(Lookup, R), OpError> {
    let mut r = Resolver::new(asker, start, key, avoid);
    loop {
        match r.step(t) {
            Progress::Asking => {}
            Progress::Found(s) => match at_successor(t, s) {
                Ok(x) => return Ok((r.finish(s), x)),
                Err(Unreachable) => {
                    if let Some(e) = r.successor_unreachable(s) {
                        return Err(e);
                    }
                }
            },
            Progress::Failed(e) => return Err(e),
        }
    }
}

/// Confirms a lookup's answer is alive (Zave: never adopt an unchecked
/// pointer). Asking oneself is free.
fn ping<T: Transport>(t: &mut T, asker: NodeId, s: NodeId) -> Result<(), Unreachable> {
    if s == asker { Ok(()) } else { t.ping(asker, s) }
}

/// `find_successor(key)` asked at `start` on behalf of `asker`; the answer is
/// confirmed alive with a ping.
pub fn find_successor<T: Transport>(
    t: &mut T,
    asker: NodeId,
    start: NodeId,
    key: Id,
) -> Result<Lookup, OpError> {
    resolve(t, asker, start, key, |t, s| ping(t, asker, s)).map(|(l, ())| l)
}

/// How many lookups [`find_successors`] keeps in flight. Enough to cover
/// the memory latency of a step with the work of the others; more only
/// adds bookkeeping.
pub const IN_FLIGHT: usize = 12;

/// Many `find_successor(key)` lookups, each asked at its start node on that
/// node's behalf, with up to [`IN_FLIGHT`] in progress at once: each advances
/// one message per turn, round-robin. Answers come back in the order of
/// `queries`; each is what [`find_successor`] would have answered on the
/// same network (lookups do not change node state, so their interleaving
/// cannot change an answer, only the order of the network's messages).
pub fn find_successors<T: Transport>(
    t: &mut T,
    queries: impl IntoIterator<Item = (NodeId, Id)>,
) -> Vec<Result<Lookup, OpError>> {
    /// A lookup in the window: its index in `queries`, its resolver, and
    /// the successor to confirm, once named.
    struct Slot {
        index: usize,
        resolver: Resolver,
        confirm: Option<NodeId>,
    }
    let mut queries = queries.into_iter().enumerate();
    // Sized up front: growing it moved every answer so far (5% of the
    // time of a batch of 4096 lookups at 10^5 nodes).
    let mut out: Vec<Option<Result<Lookup, OpError>>> = Vec::with_capacity(queries.size_hint().0);
    let mut window: Vec<Slot> = Vec::with_capacity(IN_FLIGHT);
    let mut open = |t: &mut T, out: &mut Vec<Option<Result<Lookup, OpError>>>| {
        let (index, (start, key)) = queries.next()?;
        out.push(None);
        t.will_call(start, Some(key));
        let resolver = Resolver::new(start, start, key, Vec::new());
        // The path is fresh memory, usually long out of cache: fetch it
        // now rather than stall on the first steps' stores.
        let path = &resolver.path;
        crate::prefetch::write(
            path.as_ptr().cast(),
            path.capacity() * std::mem::size_of::<NodeId>(),
        );
        Some(Slot {
            index,
            resolver,
            confirm: None,
        })
    };
    while window.len() < IN_FLIGHT {
        match open(t, &mut out) {
            Some(s) => window.push(s),
            None => break,
        }
    }
    let mut i = 0;
    while !window.is_empty() {
        let slot = &mut window[i];
        let done = match slot.confirm.take() {
            Some(s) => match ping(t, slot.resolver.asker, s) {
                Ok(()) => Some(Ok(s)),
                Err(Unreachable) => slot.resolver.successor_unreachable(s).map(Err),
            },
            None => match slot.resolver.step(t) {
                Progress::Asking => None,
                // Confirmed at the lookup's next turn (`ping`; free when the
                // asker names itself).
                Progress::Found(s) => {
                    slot.confirm = Some(s);
                    None
                }
                Progress::Failed(e) => Some(Err(e)),
            },
        };
        match done {
            None => {
                match slot.confirm {
                    Some(s) => t.will_call(s, None),
                    None => t.will_call(slot.resolver.next(), Some(slot.resolver.key)),
                }
                i += 1;
            }
            Some(result) => {
                let finished = match open(t, &mut out) {
                    Some(next) => std::mem::replace(&mut window[i], next),
                    None => window.swap_remove(i),
                };
                out[finished.index] = Some(result.map(|s| finished.resolver.finish(s)));
                // The replacement (or the swapped-in slot) takes its turn in
                // the next lap, so every slot keeps the same lap length.
                i += 1;
            }
        }
        if i >= window.len() {
            i = 0;
        }
    }
    out.into_iter()
        .map(|r| r.expect("every lookup finished"))
        .collect()
}
