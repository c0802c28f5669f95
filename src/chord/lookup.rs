//! `find_successor` and `closest_preceding_node`, as the paper gives them,
//! made iterative, with the corrections documented on each.
//!
//! The paper (ToN 2003, Fig. 5):
//!
//! ```text
//! n.find_successor(id)
//!   if id ∈ (n, successor] return successor;
//!   else n' = closest_preceding_node(id); return n'.find_successor(id);
//!
//! n.closest_preceding_node(id)
//!   for i = m downto 1
//!     if finger[i] ∈ (n, id) return finger[i];
//!   return n;
//! ```
//!
//! Here the asker runs the recursion as a loop: it sends each node one
//! `FindStep` ([`Node::find_step`], the body of `find_successor` at that
//! node) and moves to the node named next, until one says "done". The loop
//! itself is [`Resolver`]; running many lookups at once is the simulator's
//! business (`sim::in_flight`).

use super::error::OpError;
use super::id::{Id, NodeId, Offset};
use super::message::Step;
use super::node::Node;
pub use super::resolver::Lookup;
use super::resolver::{Progress, Resolver};
use super::transport::{Transport, Unreachable};

/// `find_successor(key)` asked at `start` on behalf of `asker`. Corrections:
/// a node that does not answer is routed around (the asker asks the
/// previous node again, telling it whom to avoid), and the answer is
/// confirmed alive with a ping before it is returned (Zave: never adopt an
/// unchecked pointer).
pub fn find_successor<T: Transport>(
    t: &mut T,
    asker: NodeId,
    start: NodeId,
    key: Id,
) -> Result<Lookup, OpError> {
    resolve(t, asker, start, key, |t, s| ping(t, asker, s)).map(|(l, ())| l)
}

impl Node {
    /// One step of `find_successor(key)` at this node, from local state
    /// only: `Done(successor)` when key ∈ (n, successor], else the next node
    /// to ask, `closest_preceding_node(key)`. Successors in `avoid` (found
    /// dead by the asker) are skipped; with none left the node is `Stuck`.
    pub fn find_step(&self, key: Id, avoid: &[NodeId]) -> Step {
        let Some(s) = self.succs.iter().copied().find(|s| !avoid.contains(s)) else {
            return Step::Stuck;
        };
        // key ∈ (n, s], in offsets from n: a lone node (s == n) owns
        // everything.
        let me = self.id.id();
        let (end, ds) = (key.offset_from(me), s.id().offset_from(me));
        if ds.is_zero() || (!end.is_zero() && end <= ds) {
            return Step::Done(s);
        }
        Step::Next(self.closest_preceding_node(end, avoid).unwrap_or(s))
    }

    /// The paper's `closest_preceding_node` for the key at offset `end` from
    /// this node: the highest finger in (n, key), and (ToN version) the
    /// farthest successor-list entry in (n, key) if it is closer still.
    /// Nodes in `avoid` are skipped. None stands for the paper's "return n".
    pub fn closest_preceding_node(&self, end: Offset, avoid: &[NodeId]) -> Option<NodeId> {
        // "n' ∈ (n, key)" is one subtraction and one comparison in offsets
        // from n, and of two candidates the closer to the key is the one
        // with the larger offset.
        let me = self.id.id();
        let usable = |n: &NodeId, d: Offset| d.before(end) && !avoid.contains(n);
        let mut best: Option<(Offset, NodeId)> = None;
        // for i = m downto 1: runs of equal fingers, highest first.
        for (_, f) in self.finger_candidates(end).iter().rev() {
            let d = f.id().offset_from(me);
            if usable(f, d) {
                best = Some((d, *f));
                break;
            }
        }
        for s in self.succs.iter().rev() {
            let d = s.id().offset_from(me);
            if usable(s, d) {
                if best.is_none_or(|(bd, _)| d > bd) {
                    best = Some((d, *s));
                }
                break;
            }
        }
        best.map(|(_, n)| n)
    }

    /// The finger runs `closest_preceding_node` may use for the key at
    /// offset `end` from this node, lowest first.
    ///
    /// Fingers whose start lies past the key cannot precede it in a correct
    /// table (their node is at or after their start): the scan starts at the
    /// highest finger whose start does not pass the key, as the paper's loop
    /// would after its first failed tests. In a table still being fixed a
    /// skipped finger could have preceded the key; the lookup then takes a
    /// shorter step, never a wrong one, since every next hop lies in (n,
    /// key). A key at this node itself (end zero) searches the whole table.
    pub fn finger_candidates(&self, end: Offset) -> &[(u8, NodeId)] {
        let top = end.floor_log2().unwrap_or(u32::MAX);
        &self.fingers.runs()[..self.fingers.runs_up_to(top)]
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
pub fn ping<T: Transport>(t: &mut T, asker: NodeId, s: NodeId) -> Result<(), Unreachable> {
    if s == asker { Ok(()) } else { t.ping(asker, s) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{id, paper_params, paper_ring};

    #[test]
    fn closest_preceding_node_on_the_papers_ring() {
        // Fig. 3: N8's fingers are N14, N21, N32, N42; for key 54 the
        // closest preceding one is N42; for key 20, N14.
        let w = paper_ring();
        let p = paper_params();
        let n8 = w.node(w.find("N8").unwrap()).unwrap();
        let cpn = |k| {
            let end = id(p, k).offset_from(n8.id.id());
            n8.closest_preceding_node(end, &[]).map(|n| w.name(n))
        };
        assert_eq!(cpn(54).as_deref(), Some("N42"));
        assert_eq!(cpn(20).as_deref(), Some("N14"));
        // A key just after N8 has no node in (N8, key): the paper's "return n".
        assert_eq!(cpn(9), None);
        // Avoiding N42 falls back to the next finger below it.
        let n42 = w.find("N42").unwrap();
        let end = id(p, 54).offset_from(n8.id.id());
        let next = n8.closest_preceding_node(end, &[n42]).unwrap();
        assert_eq!(w.name(next), "N32");
    }

    #[test]
    fn find_step_is_done_within_the_successor_interval() {
        let w = paper_ring();
        let p = paper_params();
        let n8 = w.node(w.find("N8").unwrap()).unwrap();
        let n14 = w.find("N14").unwrap();
        assert_eq!(n8.find_step(id(p, 10), &[]), Step::Done(n14));
        assert_eq!(n8.find_step(id(p, 14), &[]), Step::Done(n14));
        assert!(matches!(n8.find_step(id(p, 15), &[]), Step::Next(_)));
        // With every successor avoided the node cannot help.
        let all = n8.succs.clone();
        assert_eq!(n8.find_step(id(p, 10), &all), Step::Stuck);
    }

    #[test]
    fn find_successor_routes_around_a_dead_node() {
        let mut w = paper_ring();
        let p = paper_params();
        let n8 = w.find("N8").unwrap();
        let n42 = w.find("N42").unwrap();
        w.fail(n42).unwrap();
        let l = find_successor(w.transport(), n8, n8, id(p, 54)).unwrap();
        assert_eq!(w.name(l.successor), "N56");
        assert!(l.timeouts >= 1);
        assert!(!l.path.contains(&n42));
    }
}
