//! The lists of a ring with virtual nodes, where one physical node (host)
//! runs V Chord nodes and a key's r copies must live on r distinct hosts,
//! so that losing one host never loses a key while r ≥ 2.
//!
//! The rules are pure functions of node addresses: a node tells the host of
//! any address from its incarnation ([`Params::host`]), so no message
//! carries more than on a ring without virtual nodes. Each rule builds a
//! node's list from its neighbour's the same way the plain lists are built
//! (stabilize, check_predecessor), and the ideal ring ([`super::spec`])
//! applies the same rules to the sorted members, so the converged state is
//! exactly the ideal.
//!
//! - Successor list: the immediate successor (whatever its host: routing
//!   needs it), then the first node of each host not yet counted, this
//!   node's own host counted from the start, until s other hosts are listed.
//!   Those other hosts, nearest first, are this node's replica targets.
//! - Predecessor chain: the predecessors, nearest first, until r distinct
//!   hosts appear. From it a node works out for how many of its
//!   predecessors it holds replicas ([`replicated_primaries`]).

use super::id::NodeId;
use super::node::Params;

/// Longest list a node keeps: the state file counts entries in one byte.
pub const MAX_LIST: usize = u8::MAX as usize;

/// The successor list of `me` from `candidates`, the nodes after it in ring
/// order (its successor, then that node's list): the first candidate, then
/// the first of each host not yet counted, until s hosts other than ours are
/// listed or the candidates come round to us again.
pub fn successor_list(
    params: Params,
    me: NodeId,
    candidates: impl IntoIterator<Item = NodeId>,
) -> Vec<NodeId> {
    let mut seen = vec![params.host(me)];
    let mut out: Vec<NodeId> = Vec::new();
    let mut others = 0;
    for x in one_lap(params, me, candidates, true) {
        if others == params.s() || out.len() == MAX_LIST {
            break;
        }
        let h = params.host(x);
        if !out.is_empty() && seen.contains(&h) {
            continue;
        }
        if !seen.contains(&h) {
            seen.push(h);
            others += 1;
        }
        out.push(x);
    }
    out
}

/// The candidates while each lies strictly farther from `me` than the one
/// before, clockwise (successors) or anticlockwise (predecessors): one lap.
/// A candidate no farther round comes from a neighbour's list that wrapped
/// past us, and with it a dead node's entry would circulate for ever.
fn one_lap(
    params: Params,
    me: NodeId,
    candidates: impl IntoIterator<Item = NodeId>,
    clockwise: bool,
) -> impl Iterator<Item = NodeId> {
    let bits = params.bits;
    candidates.into_iter().scan(None, move |last, x| {
        let d = match clockwise {
            true => bits.distance(me.id(), x.id()),
            false => bits.distance(x.id(), me.id()),
        };
        if last.is_some_and(|l| d <= l) {
            return None;
        }
        *last = Some(d);
        Some(x)
    })
}

/// The nodes that hold copies of `me`'s keys besides it: the entries of its
/// successor list on other hosts, one per host, nearest first.
pub fn replica_targets(params: Params, me: NodeId, succs: &[NodeId]) -> Vec<NodeId> {
    let mut seen = vec![params.host(me)];
    let mut out = Vec::new();
    for &s in succs {
        let h = params.host(s);
        if !seen.contains(&h) {
            seen.push(h);
            out.push(s);
        }
    }
    out
}

/// The r nodes that hold a key whose successor is `first`, given its
/// successor list (see [`successor_list`]): `first`, then the first r-1
/// replica targets of that list.
pub fn holders(params: Params, first: NodeId, list: &[NodeId]) -> Vec<NodeId> {
    let mut out = vec![first];
    out.extend(
        replica_targets(params, first, list)
            .into_iter()
            .take(params.r() - 1),
    );
    out
}

/// The predecessor chain of `me` from `candidates`, the nodes before it,
/// nearest first (its predecessor, then that node's chain): up to and
/// including the node where r distinct hosts have appeared, stopping short
/// of `me` itself (a ring of fewer hosts) and at [`MAX_LIST`] nodes.
///
/// The rule does not depend on `me`'s own host, so a predecessor's chain is
/// always long enough to extend: `me`'s chain is a prefix of its
/// predecessor followed by that node's chain.
pub fn predecessor_chain(
    params: Params,
    me: NodeId,
    candidates: impl IntoIterator<Item = NodeId>,
) -> Vec<NodeId> {
    let mut hosts: Vec<u32> = Vec::new();
    let mut out: Vec<NodeId> = Vec::new();
    for q in one_lap(params, me, candidates, false) {
        if q == me || out.len() == MAX_LIST {
            break;
        }
        out.push(q);
        let h = params.host(q);
        if !hosts.contains(&h) {
            hosts.push(h);
        }
        if hosts.len() >= params.r() {
            break;
        }
    }
    out
}

/// For how many of its predecessors (nearest first along `chain`) `me`
/// holds replicas: the largest J such that `me` is among the first r-1
/// replica targets of each of chain[0..J]. `me` holds the keys in
/// (chain[J], me]. None when the chain ends before it settles J (it is
/// still being learned).
///
/// `me` is a target of the j-th predecessor q exactly when no node between
/// q and `me` (nor q) is on `me`'s host, and fewer than r-1 hosts other
/// than q's appear between them. Once either fails it fails for every
/// farther predecessor, so J is where it first fails: at a node of our own
/// host, or once r hosts have appeared.
pub fn replicated_primaries(params: Params, me: NodeId, chain: &[NodeId]) -> Option<usize> {
    let r = params.r();
    let mine = params.host(me);
    let mut hosts: Vec<u32> = Vec::new();
    for (i, &q) in chain.iter().enumerate() {
        let h = params.host(q);
        let others = hosts.iter().filter(|&&x| x != h).count();
        if h == mine || others + 2 > r {
            return Some(i);
        }
        if !hosts.contains(&h) {
            hosts.push(h);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chord::id::Bits;

    /// Nodes at positions 0, 10, 20, ... with the given hosts, V = 4.
    fn ring(hosts: &[u32]) -> (Params, Vec<NodeId>) {
        let params = Params::new(16, 3).with_vnodes(4);
        let bits = Bits::new(16).unwrap();
        let mut used = std::collections::BTreeMap::<u32, u32>::new();
        let ids = hosts
            .iter()
            .enumerate()
            .map(|(i, &h)| {
                let k = used.entry(h).or_default();
                *k += 1;
                NodeId::new(bits.id_from_u128(10 * i as u128).unwrap(), h * 4 + *k - 1)
            })
            .collect();
        (params, ids)
    }

    #[test]
    fn successor_lists_keep_the_next_node_then_count_hosts() {
        let (p, ids) = ring(&[0, 0, 1, 0, 2, 1, 3, 2]);
        let after = |i: usize| (1..8).map(move |k| (i + k) % 8);
        let list = successor_list(p, ids[0], after(0).map(|i| ids[i]));
        // The next node is ours, kept; then hosts 1, 2 and 3 once each.
        assert_eq!(list, vec![ids[1], ids[2], ids[4], ids[6]]);
        assert_eq!(
            replica_targets(p, ids[0], &list),
            vec![ids[2], ids[4], ids[6]]
        );
        let list = successor_list(p, ids[2], after(2).map(|i| ids[i]));
        assert_eq!(list, vec![ids[3], ids[4], ids[6]]);
    }

    #[test]
    fn a_node_holds_replicas_for_the_primaries_that_count_it() {
        let (p, ids) = ring(&[0, 0, 1, 0, 2, 1, 3, 2]);
        let ids = &ids;
        let before = |i: usize| (1..ids.len()).map(move |k| ids[(i + 8 - k) % 8]);
        // Node 4 (host 2): predecessors 3, 2, 1, 0 (hosts 0, 1, 0, 0), then
        // 7, of its own host, where the third host appears.
        let chain = predecessor_chain(p, ids[4], before(4));
        assert_eq!(chain, vec![ids[3], ids[2], ids[1], ids[0], ids[7]]);
        // Each of 3, 2, 1 and 0 names node 4 among its first two targets;
        // 7 shares its host.
        assert_eq!(replicated_primaries(p, ids[4], &chain), Some(4));
        // Check against the targets directly for every node and primary.
        for n in 0..8 {
            let chain = predecessor_chain(p, ids[n], before(n));
            let j = replicated_primaries(p, ids[n], &chain).expect("settled");
            for (k, &q) in chain.iter().enumerate() {
                let qi = ids.iter().position(|&x| x == q).unwrap();
                let list = successor_list(p, q, (1..8).map(|d| ids[(qi + d) % 8]));
                let holds = replica_targets(p, q, &list)
                    .into_iter()
                    .take(p.r() - 1)
                    .any(|t| t == ids[n]);
                assert_eq!(holds, k < j, "node {n}, primary {qi}");
            }
        }
    }
}
