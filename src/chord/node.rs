//! One Chord node: its pointers, its fingers, its data, and how it answers
//! requests.
//!
//! [`Node::handle`] is a pure reaction to one request: it reads and changes
//! only this node and never calls out. The multi-message procedures a node
//! runs on its own initiative (stabilize, fix_fingers, ...) live in
//! [`crate::chord::ops`] and reach other nodes only through a transport.

use super::finger::FingerTable;
use super::hosts;
use super::id::{Id, NodeId};
use super::message::{Request, Response};
pub use super::params::Params;
use super::store::{Store, Versioned};

/// Which neighbourhood a node's replicas were last pushed for: a
/// fingerprint of (predecessor, successor list) at the last complete push,
/// or [`ReplicaPush::STALE`] when the next upkeep must push again. Replica
/// upkeep pushes whenever the node's current [`Node::neighbourhood`]
/// differs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplicaPush(u64);

impl ReplicaPush {
    /// Matches no neighbourhood (fingerprints are odd): push again.
    pub const STALE: ReplicaPush = ReplicaPush(0);

    /// The fingerprint as saved in the state file.
    pub fn to_bits(self) -> u64 {
        self.0
    }

    /// A fingerprint read back from the state file.
    pub fn from_bits(bits: u64) -> ReplicaPush {
        ReplicaPush(bits)
    }
}

/// A node's state. Fields are public to the crate's observers (the invariant
/// checker, persistence); protocol code changes them only in [`Node::handle`]
/// and in [`crate::chord::ops`] procedures running as this node.
#[derive(Clone, Debug)]
// Seam for the simulator's prefetching: fields in declared order, the three a lookup step reads first.
#[repr(C)]
pub struct Node {
    /// This node's identifier.
    pub id: NodeId,
    /// Successor list, nearest first, at most r entries; never empty (a lone
    /// node lists itself). On rings of r nodes or fewer it wraps and repeats.
    pub succs: Vec<NodeId>,
    /// Finger table.
    pub fingers: FingerTable,
    /// Predecessor list, nearest first, at most r entries: tells the node
    /// which replicas it should hold (those of the keys in (preds[r-1], self]).
    pub preds: Vec<NodeId>,
    /// Stored keys and replicas.
    pub store: Store,
    /// The neighbourhood the last complete replica push was made for.
    pub replicated: ReplicaPush,
    /// Predecessor, None when unknown (after create, join, or its failure).
    pub pred: Option<NodeId>,
    /// A notifier that could not be adopted because the current predecessor
    /// looked alive; adopted by `check_predecessor` if the old one is dead.
    /// This is Zave's `rectify` split across the message and the next tick.
    pub pred_candidate: Option<NodeId>,
    /// Ring settings.
    pub params: Params,
    /// The next finger fix_fingers refreshes.
    pub next_finger: u8,
    /// Replica upkeeps since the last anti-entropy digest check.
    pub upkeeps: u8,
    /// Something newer arrived other than by a primary's push (a hand-over
    /// or hand-off): at the next upkeep, ask the primaries of the ranges we
    /// replicate to compare digests with us.
    pub suspect: bool,
}

impl Node {
    /// The first node of a ring (the paper's `create`): its own successor, no
    /// predecessor.
    pub fn create(id: NodeId, params: Params) -> Node {
        Node {
            id,
            params,
            pred: None,
            pred_candidate: None,
            succs: vec![id],
            preds: Vec::new(),
            fingers: FingerTable::all(id),
            next_finger: 0,
            store: Store::for_bits(params.bits),
            replicated: ReplicaPush::STALE,
            upkeeps: 0,
            suspect: false,
        }
    }

    /// The nearest successor (first entry of the list).
    pub fn successor(&self) -> NodeId {
        self.succs[0]
    }

    /// True when `key` is this node's own (primary) responsibility as far as
    /// it knows: in (pred, self]. Without a predecessor it cannot tell and
    /// answers true, as the paper's node does.
    pub fn responsible_for(&self, key: Id) -> bool {
        self.responsible_unless_dead(key, &[])
    }

    /// As [`Node::responsible_for`], treating a predecessor the client found
    /// dead as unknown: this node is then the first live successor of the key.
    fn responsible_unless_dead(&self, key: Id, dead: &[NodeId]) -> bool {
        self.pred
            .filter(|p| !dead.contains(p))
            .is_none_or(|p| key.in_half_open(p.id(), self.id.id()))
    }

    /// Where to send a data request for `key`, or None to serve it here.
    /// Nodes the client found dead are never named.
    fn route_data(&self, key: Id, dead: &[NodeId]) -> Option<NodeId> {
        if self.responsible_unless_dead(key, dead) {
            return None;
        }
        let live_succ = self
            .succs
            .iter()
            .copied()
            .find(|s| *s != self.id && !dead.contains(s));
        match live_succ {
            Some(s) if key.in_half_open(self.id.id(), s.id()) => Some(s),
            _ => self.pred,
        }
    }

    /// Successor list of a node whose successor is `s` with list `s_list`:
    /// s followed by s's list, cut to s entries (the paper's and Zave's
    /// rule). With virtual nodes, the rule of [`hosts::successor_list`].
    pub fn list_through(&self, s: NodeId, s_list: &[NodeId]) -> Vec<NodeId> {
        self.successor_list(std::iter::once(s).chain(s_list.iter().copied()))
    }

    /// This node's successor list from `candidates`, the nodes after it in
    /// ring order.
    fn successor_list(&self, candidates: impl Iterator<Item = NodeId>) -> Vec<NodeId> {
        if self.params.has_vnodes() {
            return hosts::successor_list(self.params, self.id, candidates);
        }
        candidates.take(self.params.s()).collect()
    }

    /// A predecessor list through `p`: p, then p's own list, r in all (the
    /// predecessor list only says which replicas to keep). With virtual
    /// nodes, the chain of [`hosts::predecessor_chain`].
    pub fn preds_through(&self, p: NodeId, p_list: &[NodeId]) -> Vec<NodeId> {
        let candidates = std::iter::once(p).chain(p_list.iter().copied());
        if self.params.has_vnodes() {
            return hosts::predecessor_chain(self.params, self.id, candidates);
        }
        candidates.take(self.params.r()).collect()
    }

    /// How many predecessors (nearest first) this node holds replicas for,
    /// J: it keeps the keys in (preds[J], self]. None while the predecessor
    /// list cannot tell (incomplete, or naming this node or a node twice):
    /// only a settled list may shrink what a node keeps.
    pub fn replicated_primaries(&self) -> Option<usize> {
        let preds = &self.preds;
        let distinct = (1..preds.len()).all(|i| !preds[..i].contains(&preds[i]));
        if self.pred != preds.first().copied() || preds.contains(&self.id) || !distinct {
            return None;
        }
        if self.params.has_vnodes() {
            return hosts::replicated_primaries(self.params, self.id, preds);
        }
        let r = self.params.r();
        (preds.len() == r).then_some(r - 1)
    }

    /// Where the span of keys this node keeps copies of begins (exclusive):
    /// preds[J] once its predecessor list is settled, else the farthest
    /// predecessor it knows, else itself (the whole ring).
    pub fn kept_from(&self) -> NodeId {
        match self.replicated_primaries() {
            Some(j) => self.preds[j],
            None => self
                .preds
                .last()
                .or(self.pred.as_ref())
                .map_or(self.id, |p| *p),
        }
    }

    /// Distinct successors other than this node, nearest first: the nodes
    /// that should hold replicas of this node's keys (with virtual nodes,
    /// one per host other than ours).
    pub fn replica_targets(&self) -> Vec<NodeId> {
        if self.params.has_vnodes() {
            return hosts::replica_targets(self.params, self.id, &self.succs);
        }
        let mut out: Vec<NodeId> = Vec::new();
        for &s in &self.succs {
            if s != self.id && !out.contains(&s) {
                out.push(s);
            }
        }
        out
    }

    /// The neighbourhood (predecessor and successor list) as it is now, to
    /// compare with the one the last replica push was made for.
    pub fn neighbourhood(&self) -> ReplicaPush {
        use std::hash::{Hash, Hasher};
        let mut h = rustc_hash::FxHasher::default();
        self.pred.hash(&mut h);
        self.succs.hash(&mut h);
        ReplicaPush(h.finish() | 1)
    }

    /// Makes the next replica upkeep push this node's range to its replicas
    /// again: a replica write failed, the neighbours changed, or something
    /// newer arrived that the replicas may lack.
    pub fn mark_replicas_stale(&mut self) {
        self.replicated = ReplicaPush::STALE;
    }

    /// Forgets a node known to have left or failed, everywhere but the
    /// predecessor pointer (which `check_predecessor` owns).
    pub fn forget(&mut self, gone: NodeId) {
        self.fingers.forget(gone);
        self.preds.retain(|&p| p != gone);
        if self.succs.len() > 1 || self.succs[0] != gone {
            self.succs.retain(|&s| s != gone);
        }
        if self.succs.is_empty() || self.succs == [gone] {
            self.succs = vec![self.id];
        }
    }

    /// Answers a request that only reads this node, or None for one that
    /// may change it (see [`Node::handle`]). Taking `&self` makes "this
    /// request leaves its receiver as it was" a fact of the types, which
    /// persistence relies on to save only nodes that may have changed.
    pub fn answer(&self, req: &Request) -> Option<Response> {
        Some(match req {
            Request::Ping => Response::Pong,
            Request::FindStep { key, avoid } => Response::Step(self.find_step(*key, avoid)),
            Request::GetNeighbours => Response::Neighbours {
                pred: self.pred,
                succs: self.succs.clone(),
                preds: self.preds.clone(),
            },
            Request::Get { key, dead } => match self.store.get_versioned(key) {
                Some(v) => Response::Held {
                    entry: Some(v.clone()),
                    succs: Vec::new(),
                },
                None => match self.route_data(key.id, dead) {
                    None => Response::Held {
                        entry: None,
                        succs: self.replica_targets(),
                    },
                    Some(next) => Response::Redirect(next),
                },
            },
            Request::FetchRange { from, to } => {
                Response::Entries(self.store.entries_in(*from, *to))
            }
            _ => return None,
        })
    }

    /// Reacts to one request. Pure: reads and changes only this node.
    pub fn handle(&mut self, req: Request) -> Response {
        match self.answer(&req) {
            Some(answer) => answer,
            None => self.change(req),
        }
    }

    /// Reacts to a request [`Node::answer`] does not take: one that may
    /// change this node.
    pub fn change(&mut self, req: Request) -> Response {
        match req {
            Request::Ping
            | Request::FindStep { .. }
            | Request::GetNeighbours
            | Request::Get { .. }
            | Request::FetchRange { .. } => unreachable!("answered by Node::answer"),
            Request::Notify { from } => self.rectify(from),
            Request::Put {
                key,
                value,
                version,
                dead,
            } => {
                if let Some(next) = self.route_data(key.id, &dead) {
                    return Response::Redirect(next);
                }
                let before = self.store.merge_held(
                    key,
                    Versioned {
                        version,
                        value: Some(value),
                    },
                );
                Response::Stored { replaced: before }
            }
            Request::Delete { key, version, dead } => {
                if let Some(next) = self.route_data(key.id, &dead) {
                    return Response::Redirect(next);
                }
                let before = self.store.get(&key).cloned();
                self.store.merge(
                    key,
                    Versioned {
                        version,
                        value: None,
                    },
                );
                Response::Deleted(before)
            }
            Request::StoreReplica(key, v) => {
                self.store.merge(key, v);
                Response::Ack
            }
            Request::Digest { from, to, digest } => {
                let matches = self.store.digest_in(from, to) == digest;
                if !matches {
                    // Push our range again; the push is two-way.
                    self.mark_replicas_stale();
                }
                Response::Matches(matches)
            }
            Request::SyncRange { from, to, entries } => {
                Response::Entries(self.store.sync_in(from, to, entries))
            }
            Request::Merge(entries) => {
                let mut learned = false;
                for (k, v) in entries {
                    learned |= self.store.merge(k, v).changed();
                }
                if learned {
                    self.mark_replicas_stale();
                    self.suspect = true;
                }
                Response::Ack
            }
            Request::HandOff {
                leaving,
                new_pred,
                entries,
            } => {
                for (k, v) in entries {
                    self.suspect |= self.store.merge(k, v).changed();
                }
                if self.pred == Some(leaving) {
                    self.pred = new_pred.filter(|&p| p != self.id);
                }
                self.forget(leaving);
                if self.pred.is_none() {
                    self.preds.clear();
                }
                self.mark_replicas_stale();
                Response::Ack
            }
            Request::SuccessorLeaving { leaving, succs } => {
                if let Some(pos) = self.succs.iter().position(|&s| s == leaving) {
                    let spliced = self.succs[..pos].iter().copied();
                    let mut list = self
                        .successor_list(spliced.chain(succs.into_iter().filter(|&s| s != leaving)));
                    if list.is_empty() {
                        list.push(self.id);
                    }
                    self.succs = list;
                }
                self.forget(leaving);
                if self.pred == Some(leaving) {
                    self.pred = None;
                    self.preds.clear();
                }
                self.mark_replicas_stale();
                Response::Ack
            }
        }
    }

    /// Zave's `rectify`, in place of the paper's `notify`: adopt the notifier
    /// if there is no predecessor or it lies between the current one and this
    /// node. Otherwise remember it: if the current predecessor turns out dead
    /// at the next `check_predecessor`, the notifier replaces it (rather than
    /// the paper's reset to nil, which lets any later notifier in).
    ///
    /// On adoption the keys the notifier now answers for go to it: puts that
    /// reached this node since the notifier joined would otherwise be missing
    /// there until its next replica push.
    fn rectify(&mut self, from: NodeId) -> Response {
        if from == self.id {
            return Response::Rectified {
                adopted: false,
                handoff: Vec::new(),
            };
        }
        let adopt = match self.pred {
            None => true,
            Some(p) => from.id().in_open(p.id(), self.id.id()),
        };
        if !adopt {
            if self.pred != Some(from) {
                self.pred_candidate = Some(from);
            }
            return Response::Rectified {
                adopted: false,
                handoff: Vec::new(),
            };
        }
        self.pred = Some(from);
        self.pred_candidate = None;
        self.preds = vec![from];
        self.mark_replicas_stale();
        // Everything outside (from, self]: the old predecessor may be dead,
        // and then its range is the notifier's too. Versions make the extra
        // harmless; the notifier's garbage collection passes on what it
        // should not keep.
        Response::Rectified {
            adopted: true,
            handoff: self.store.entries_in(self.id.id(), from.id()),
        }
    }

    /// Heap and inline bytes of routing state, excluding stored data: the
    /// figure the benchmark reports per node.
    pub fn routing_bytes(&self) -> usize {
        std::mem::size_of::<Node>()
            + self.succs.capacity() * std::mem::size_of::<NodeId>()
            + self.preds.capacity() * std::mem::size_of::<NodeId>()
            + self.fingers.heap_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chord::message::Step;
    use crate::chord::store::Key;

    fn p() -> Params {
        Params::new(6, 3)
    }
    fn n(v: u128) -> NodeId {
        NodeId::new(p().bits.id_from_u128(v).unwrap(), 0)
    }

    #[test]
    fn lone_node_is_done_for_every_key() {
        let a = Node::create(n(8), p());
        for k in 0..64 {
            let key = p().bits.id_from_u128(k).unwrap();
            assert_eq!(a.find_step(key, &[]), Step::Done(n(8)));
        }
    }

    #[test]
    fn rectify_adopts_closer_notifier_and_hands_off_its_keys() {
        let mut s = Node::create(n(32), p());
        s.pred = Some(n(8));
        let key = Key {
            id: p().bits.id_from_u128(10).unwrap(),
            text: "k".into(),
        };
        s.store.insert(key.clone(), serde_json::json!(1), 1);
        let Response::Rectified { adopted, handoff } = s.handle(Request::Notify { from: n(14) })
        else {
            panic!()
        };
        assert!(adopted);
        assert_eq!(
            handoff,
            vec![(
                key,
                Versioned {
                    version: 1,
                    value: Some(std::sync::Arc::new(serde_json::json!(1)))
                }
            )]
        );
        assert_eq!(s.pred, Some(n(14)));
        // A farther notifier is only remembered.
        let Response::Rectified { adopted, .. } = s.handle(Request::Notify { from: n(8) }) else {
            panic!()
        };
        assert!(!adopted);
        assert_eq!((s.pred, s.pred_candidate), (Some(n(14)), Some(n(8))));
    }

    #[test]
    fn data_requests_outside_the_range_are_redirected() {
        let mut s = Node::create(n(32), p());
        s.pred = Some(n(21));
        s.succs = vec![n(38), n(42), n(48)];
        let k = |v| Key {
            id: p().bits.id_from_u128(v).unwrap(),
            text: "x".into(),
        };
        assert!(matches!(
            s.handle(Request::Put {
                key: k(26),
                value: std::sync::Arc::new(1.into()),
                version: 1,
                dead: vec![]
            }),
            Response::Stored { .. }
        ));
        assert!(
            matches!(s.handle(Request::Put { key: k(10), value: std::sync::Arc::new(1.into()), version: 1, dead: vec![] }), Response::Redirect(r) if r == n(21))
        );
        assert!(
            matches!(s.handle(Request::Get { key: k(36), dead: vec![] }), Response::Redirect(r) if r == n(38))
        );
        assert!(matches!(
            s.handle(Request::Get {
                key: k(26),
                dead: vec![]
            }),
            Response::Held { entry: Some(_), .. }
        ));
        assert!(matches!(
            s.handle(Request::Get {
                key: k(30),
                dead: vec![]
            }),
            Response::Held { entry: None, .. }
        ));
        // A client that found the predecessor dead is served here.
        let dead = vec![n(21)];
        assert!(matches!(
            s.handle(Request::Put {
                key: k(10),
                value: std::sync::Arc::new(1.into()),
                version: 2,
                dead
            }),
            Response::Stored { .. }
        ));
    }

    #[test]
    fn successor_leaving_splices_its_list() {
        let mut a = Node::create(n(1), p());
        a.succs = vec![n(8), n(14), n(21)];
        a.handle(Request::SuccessorLeaving {
            leaving: n(8),
            succs: vec![n(14), n(21), n(32)],
        });
        assert_eq!(a.succs, vec![n(14), n(21), n(32)]);
        // The last other node leaving a two-node ring leaves a lone node.
        let mut b = Node::create(n(1), p());
        b.succs = vec![n(8), n(1), n(8)];
        b.handle(Request::SuccessorLeaving {
            leaving: n(8),
            succs: vec![n(1), n(8), n(1)],
        });
        assert_eq!(b.succs[0], n(1));
    }
}
