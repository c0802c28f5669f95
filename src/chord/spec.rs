//! The ideal ring: what every pointer should be, computed directly from the
//! set of live node ids. Used two ways: as the reference the invariant
//! checker compares live state against, and as the bulk build that creates a
//! converged ring of a million nodes without running the protocol.
//!
//! Pure functions of a sorted id list; nothing here sees a network.

use super::finger::FingerTable;
use super::hosts;
use super::id::{Bits, Id, NodeId};
use super::node::Params;

/// The live members, sorted by id, and the ring settings.
#[derive(Clone, Copy, Debug)]
pub struct Ideal<'a> {
    ids: &'a [NodeId],
    params: Params,
    /// Distinct hosts among the members (with virtual nodes; else unused).
    hosts: usize,
}

impl<'a> Ideal<'a> {
    /// Pre: `ids` is sorted, without duplicates, and not empty.
    pub fn new(ids: &'a [NodeId], params: Params) -> Self {
        debug_assert!(!ids.is_empty());
        debug_assert!(ids.windows(2).all(|w| w[0] < w[1]));
        let hosts = if params.has_vnodes() {
            let mut h: Vec<u32> = ids.iter().map(|&n| params.host(n)).collect();
            h.sort_unstable();
            h.dedup();
            h.len()
        } else {
            0
        };
        Ideal { ids, params, hosts }
    }

    /// The members after n in ring order, once round (n excluded).
    fn after(&self, n: NodeId) -> impl Iterator<Item = NodeId> + '_ {
        let i = self.index_of(n);
        let len = self.ids.len();
        (1..len).map(move |k| self.ids[(i + k) % len])
    }

    /// The members before n, nearest first, once round (n excluded).
    fn before(&self, n: NodeId) -> impl Iterator<Item = NodeId> + '_ {
        let i = self.index_of(n);
        let len = self.ids.len();
        (1..len).map(move |k| self.ids[(i + len - k) % len])
    }

    fn bits(&self) -> Bits {
        self.params.bits
    }

    /// Index of the first node at or after `key`, wrapping to 0.
    fn successor_index(&self, key: Id) -> usize {
        let i = self.ids.partition_point(|n| n.id() < key);
        if i == self.ids.len() { 0 } else { i }
    }

    fn index_of(&self, n: NodeId) -> usize {
        self.ids.binary_search(&n).expect("node is a member")
    }

    /// successor(key): the first live node at or after key.
    pub fn successor(&self, key: Id) -> NodeId {
        self.ids[self.successor_index(key)]
    }

    /// The s nodes after n, cyclically (repeating on rings of s nodes or
    /// fewer).
    ///
    /// With virtual nodes, the list of [`hosts::successor_list`]: the next
    /// node, then the first node of each host not yet counted. The walk
    /// stops once every host is counted, which leaves the list as it is.
    pub fn succs(&self, n: NodeId) -> Vec<NodeId> {
        if self.params.has_vnodes() {
            if self.ids.len() == 1 {
                return vec![n];
            }
            let (params, all) = (self.params, self.hosts);
            let mut seen = vec![params.host(n)];
            let mut first = true;
            let walk = self.after(n).take_while(move |&x| {
                let more = std::mem::take(&mut first) || seen.len() < all;
                let h = params.host(x);
                if !seen.contains(&h) {
                    seen.push(h);
                }
                more
            });
            return hosts::successor_list(params, n, walk);
        }
        let i = self.index_of(n);
        let len = self.ids.len();
        (1..=self.params.s())
            .map(|k| self.ids[(i + k) % len])
            .collect()
    }

    /// The predecessor; None for a lone node, whose protocol state never
    /// learns one.
    pub fn pred(&self, n: NodeId) -> Option<NodeId> {
        if self.ids.len() == 1 {
            return None;
        }
        let i = self.index_of(n);
        Some(self.ids[(i + self.ids.len() - 1) % self.ids.len()])
    }

    /// The r nodes before n, cyclically; empty for a lone node. With
    /// virtual nodes, the chain of [`hosts::predecessor_chain`].
    pub fn preds(&self, n: NodeId) -> Vec<NodeId> {
        if self.ids.len() == 1 {
            return Vec::new();
        }
        if self.params.has_vnodes() {
            return hosts::predecessor_chain(self.params, n, self.before(n));
        }
        let i = self.index_of(n);
        let len = self.ids.len();
        (1..=self.params.r())
            .map(|k| self.ids[(i + len * self.params.r() - k) % len])
            .collect()
    }

    /// The whole finger table of n, found with one binary search per distinct
    /// finger: finger i is successor(n + 2^i), and every later finger whose
    /// start does not pass that node shares it.
    pub fn fingers(&self, n: NodeId) -> FingerTable {
        let m = self.bits().get();
        let mut runs = Vec::new();
        let mut i = 0;
        while i < m {
            let f = self.successor(self.bits().finger_start(n.id(), i));
            let last = self
                .bits()
                .last_finger_within(self.bits().distance(n.id(), f.id()))
                .unwrap_or(m - 1)
                .max(i);
            runs.push((i as u8, f));
            i = last + 1;
        }
        FingerTable::from_runs(runs)
    }

    /// The nodes that should hold `key`: its successor and the next r-1
    /// distinct nodes (all nodes, on a ring of fewer than r).
    ///
    /// With virtual nodes: its successor and the first r-1 replica targets
    /// of that node, one per host.
    pub fn holders(&self, key: Id) -> Vec<NodeId> {
        if self.params.has_vnodes() {
            let first = self.successor(key);
            return hosts::holders(self.params, first, &self.succs(first));
        }
        let i = self.successor_index(key);
        let len = self.ids.len();
        (0..self.params.r().min(len))
            .map(|k| self.ids[(i + k) % len])
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paper() -> (Vec<NodeId>, Params) {
        (
            crate::testkit::paper_node_ids(),
            crate::testkit::paper_params(),
        )
    }

    #[test]
    fn paper_figure_finger_table_of_node_8() {
        // Stoica et al., Fig. 3(a): N8's fingers are N14, N14, N14, N21, N32, N42.
        let (ids, params) = paper();
        let ideal = Ideal::new(&ids, params);
        let f = ideal.fingers(ids[1]);
        let got: Vec<u128> = (0..6)
            .map(|i| f.get(i).unwrap().id().to_u160().to::<u128>())
            .collect();
        assert_eq!(got, vec![14, 14, 14, 21, 32, 42]);
        // Key 54 lives on N56, key 10 on N14 (Fig. 3(b)).
        let key = |v| params.bits.id_from_u128(v).unwrap();
        assert_eq!(ideal.successor(key(54)), ids[9]);
        assert_eq!(ideal.successor(key(10)), ids[2]);
        assert_eq!(ideal.successor(key(60)), ids[0]);
    }

    #[test]
    fn small_rings_repeat_in_lists() {
        let (ids, params) = paper();
        let two = &ids[..2];
        let ideal = Ideal::new(two, params);
        assert_eq!(ideal.succs(two[0]), vec![two[1], two[0], two[1]]);
        assert_eq!(ideal.preds(two[0]), vec![two[1], two[0], two[1]]);
        assert_eq!(ideal.holders(two[0].id()), vec![two[0], two[1]]);
        let one = &ids[..1];
        let ideal = Ideal::new(one, params);
        assert_eq!(ideal.pred(one[0]), None);
        assert_eq!(ideal.fingers(one[0]).runs(), &[(0, one[0])]);
    }
}
