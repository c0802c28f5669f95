//! Named invariants over a snapshot of every live node, checked by an
//! omniscient observer (tests, `dht check`), never by the protocol.
//!
//! [`check_ring`] holds Zave's properties, which Correct Chord keeps at all
//! times under its failure assumptions: at least one ring, at most one,
//! ordered, appendages connected, ordered successor lists. [`check_converged`]
//! holds ours, which must hold once maintenance has run to a fixpoint: every
//! pointer equals the ideal ring's, and every key is on exactly the r live
//! nodes that succeed it, with one value.

use super::id::NodeId;
use super::node::{Node, Params};
use super::spec::Ideal;
use super::store::Key;
use super::store::Versioned;
use std::collections::BTreeMap;

/// One broken property.
#[derive(Debug, Clone, PartialEq)]
pub enum Violation {
    /// A node's successor list names no live node (Zave: every member has a
    /// live successor).
    NoLiveSuccessor(NodeId),
    /// Following best successors from no node returns to it (AtLeastOneRing).
    NoRing,
    /// Following best successors leads to several disjoint cycles (AtMostOneRing).
    SeveralRings(usize),
    /// A ring member's best successor skips a member in between (OrderedRing).
    Disordered {
        /// The member.
        node: NodeId,
        /// Its best successor.
        succ: NodeId,
        /// The member it skipped.
        skipped: NodeId,
    },
    /// A successor list goes backwards around the ring (OrderedSuccessorLists).
    SuccessorListDisordered(NodeId, Vec<NodeId>),
    /// A pointer differs from the ideal ring's after convergence.
    WrongPointer {
        /// The node holding the pointer.
        node: NodeId,
        /// Which pointer: "predecessor", "successor list", "predecessor list", "finger i".
        what: String,
        /// What it holds.
        has: Vec<NodeId>,
        /// What the ideal ring says.
        want: Vec<NodeId>,
    },
    /// A key (or its tombstone) is not on exactly its r ideal holders.
    Misplaced {
        /// The key.
        key: Key,
        /// Nodes holding it.
        has: Vec<NodeId>,
        /// Nodes that should.
        want: Vec<NodeId>,
    },
    /// Holders of one key disagree on its value.
    Diverged {
        /// The key.
        key: Key,
        /// The holders.
        nodes: Vec<NodeId>,
    },
}

impl Violation {
    /// The nodes the problem is about, for marking them in a picture: the
    /// node whose pointer is wrong, or for a misplaced key the nodes that
    /// hold it but should not and those that should but do not.
    pub fn nodes(&self) -> Vec<NodeId> {
        match self {
            Violation::NoRing | Violation::SeveralRings(_) => Vec::new(),
            Violation::NoLiveSuccessor(n) | Violation::SuccessorListDisordered(n, _) => vec![*n],
            Violation::Disordered { node, .. } | Violation::WrongPointer { node, .. } => {
                vec![*node]
            }
            Violation::Misplaced { has, want, .. } => {
                let mut odd: Vec<NodeId> =
                    has.iter().filter(|n| !want.contains(n)).copied().collect();
                odd.extend(want.iter().filter(|n| !has.contains(n)));
                odd
            }
            Violation::Diverged { nodes, .. } => nodes.clone(),
        }
    }

    /// A sentence for people, with node names supplied by the caller.
    pub fn describe(&self, name: &dyn Fn(NodeId) -> String) -> String {
        let list = |v: &[NodeId]| v.iter().map(|&n| name(n)).collect::<Vec<_>>().join(", ");
        match self {
            Violation::NoLiveSuccessor(n) => {
                format!("{} has no live node in its successor list", name(*n))
            }
            Violation::NoRing => "no ring: following successors never returns to a node".into(),
            Violation::SeveralRings(k) => format!("the nodes form {k} separate rings"),
            Violation::Disordered {
                node,
                succ,
                skipped,
            } => format!(
                "ring out of order: {} points to {} but {} lies between them",
                name(*node),
                name(*succ),
                name(*skipped)
            ),
            Violation::SuccessorListDisordered(n, l) => {
                format!(
                    "successor list of {} is out of ring order: [{}]",
                    name(*n),
                    list(l)
                )
            }
            Violation::WrongPointer {
                node,
                what,
                has,
                want,
            } => {
                format!(
                    "{} {what} is [{}], should be [{}]",
                    name(*node),
                    list(has),
                    list(want)
                )
            }
            Violation::Misplaced { key, has, want } => {
                format!(
                    "key {:?} is on [{}], should be on [{}]",
                    key.text,
                    list(has),
                    list(want)
                )
            }
            Violation::Diverged { key, nodes } => {
                format!("copies of key {:?} on [{}] differ", key.text, list(nodes))
            }
        }
    }
}

/// The first live entry of a node's successor list (Zave's bestSucc).
fn best_succ(nodes: &BTreeMap<NodeId, &Node>, n: &Node) -> Option<NodeId> {
    n.succs.iter().copied().find(|s| nodes.contains_key(s))
}

/// Zave's properties. `nodes` holds every live node.
pub fn check_ring(nodes: &BTreeMap<NodeId, &Node>) -> Vec<Violation> {
    let mut out = Vec::new();
    if nodes.is_empty() {
        return out;
    }
    let ids: Vec<NodeId> = nodes.keys().copied().collect();
    let index = |n: NodeId| ids.binary_search(&n).expect("live");
    let mut next: Vec<Option<usize>> = Vec::with_capacity(ids.len());
    for n in nodes.values() {
        let b = best_succ(nodes, n);
        if b.is_none() {
            out.push(Violation::NoLiveSuccessor(n.id));
        }
        next.push(b.map(index));
    }
    // Cycles of the best-successor graph: 0 = unseen, 1 = on current walk, 2 = done.
    let mut state = vec![0u8; ids.len()];
    let mut cycles: Vec<Vec<usize>> = Vec::new();
    for startn in 0..ids.len() {
        let mut walk = Vec::new();
        let mut cur = Some(startn);
        while let Some(c) = cur {
            if state[c] != 0 {
                if state[c] == 1 {
                    let pos = walk.iter().position(|&w| w == c).expect("on walk");
                    cycles.push(walk[pos..].to_vec());
                }
                break;
            }
            state[c] = 1;
            walk.push(c);
            cur = next[c];
        }
        for w in walk {
            state[w] = 2;
        }
    }
    // Zave's theorem assumes a stable base of more than r+1 ring members; at
    // or below it, a successor list spans the whole ring and one copied by a
    // newcomer wraps past the newcomer until stabilize repairs it.
    let members = cycles.iter().map(Vec::len).max().unwrap_or(0);
    let s = nodes.values().next().map_or(0, |n| n.params.s());
    if members > s + 1 {
        for n in nodes.values() {
            if !successor_list_ordered(n, nodes) {
                out.push(Violation::SuccessorListDisordered(n.id, n.succs.clone()));
            }
        }
    }
    match cycles.len() {
        0 => out.push(Violation::NoRing),
        1 => {}
        k => out.push(Violation::SeveralRings(k)),
    }
    for cycle in &cycles {
        let mut members = cycle.clone();
        members.sort_unstable();
        for (k, &c) in members.iter().enumerate() {
            let want = members[(k + 1) % members.len()];
            let has = next[c].expect("cycle member has a successor");
            if has != want {
                out.push(Violation::Disordered {
                    node: ids[c],
                    succ: ids[has],
                    skipped: ids[want],
                });
            }
        }
    }
    out
}

/// Live entries move strictly clockwise from the node. Dead entries are
/// left out: nothing uses them (best successor and routing skip them) and the
/// next stabilize drops them, but a list copied from a stale neighbour may
/// carry one out of place. A list that repeats an entry or names the node
/// itself is exempt: that happens only on rings of r nodes or fewer, below
/// Zave's stable base of r+1, where every list covers the whole ring and one
/// copied from a successor that does not yet know us wraps past us; stabilize
/// repairs it, and the converged check compares such lists with the ideal
/// ring exactly.
fn successor_list_ordered(n: &Node, nodes: &BTreeMap<NodeId, &Node>) -> bool {
    let bits = n.params.bits;
    let wraps = n
        .succs
        .iter()
        .enumerate()
        .any(|(i, s)| *s == n.id || n.succs[..i].contains(s));
    if wraps {
        return true;
    }
    let d: Vec<_> = n
        .succs
        .iter()
        .filter(|s| nodes.contains_key(s))
        .map(|s| bits.distance(n.id.id(), s.id()))
        .collect();
    d.windows(2).all(|w| w[0] < w[1])
}

/// Our converged-state properties: pointers equal the ideal ring's and every
/// key sits on exactly its r holders with one value.
pub fn check_converged(nodes: &BTreeMap<NodeId, &Node>, params: Params) -> Vec<Violation> {
    let mut out = Vec::new();
    if nodes.is_empty() {
        return out;
    }
    let ids: Vec<NodeId> = nodes.keys().copied().collect();
    let ideal = Ideal::new(&ids, params);
    let mut wrong = |node: NodeId, what: &str, has: Vec<NodeId>, want: Vec<NodeId>| {
        if has != want {
            out.push(Violation::WrongPointer {
                node,
                what: what.into(),
                has,
                want,
            });
        }
    };
    for n in nodes.values() {
        wrong(
            n.id,
            "predecessor",
            n.pred.into_iter().collect(),
            ideal.pred(n.id).into_iter().collect(),
        );
        wrong(n.id, "successor list", n.succs.clone(), ideal.succs(n.id));
        wrong(n.id, "predecessor list", n.preds.clone(), ideal.preds(n.id));
        let want = ideal.fingers(n.id);
        for i in 0..params.bits.get() {
            let (h, w) = (n.fingers.get(i), want.get(i));
            if h != w {
                wrong(
                    n.id,
                    &format!("finger {i}"),
                    h.into_iter().collect(),
                    w.into_iter().collect(),
                );
                break;
            }
        }
    }
    let mut copies: BTreeMap<Key, Vec<(NodeId, &Versioned)>> = BTreeMap::new();
    for n in nodes.values() {
        for (k, v) in n.store.iter() {
            copies.entry(k).or_default().push((n.id, v));
        }
    }
    for (key, holders) in copies {
        let mut has: Vec<NodeId> = holders.iter().map(|h| h.0).collect();
        let mut want = ideal.holders(key.id);
        has.sort();
        want.sort();
        if holders.iter().any(|h| h.1 != holders[0].1) {
            out.push(Violation::Diverged {
                key: key.clone(),
                nodes: has.clone(),
            });
        }
        if has != want {
            out.push(Violation::Misplaced { key, has, want });
        }
    }
    out
}
