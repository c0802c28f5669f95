//! The finger table, stored as runs of equal entries.
//!
//! The paper's table has m entries, but in a ring of N nodes only about
//! log2 N of them are distinct: every finger whose start falls before the
//! successor's id points at the successor, and so on. Storing one entry per
//! run (the first finger index it covers and the node) keeps a 160-bit table at
//! a million nodes to about twenty entries of 21 bytes, which is what makes the
//! one-kilobyte-per-node goal reachable. Nothing here does routing; this is a
//! container with the paper's indexing.

use super::id::NodeId;

/// Finger `i` (0-based: the paper's finger i+1) is successor(n + 2^i).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FingerTable {
    /// Runs in increasing order of their first index; run k covers indices
    /// `runs[k].0 .. runs[k+1].0`, the last run up to m-1. Fingers below the
    /// first run are not known: all of them while the table is empty, and
    /// the lowest ones when every finger was forgotten (its node died) and
    /// `fix_fingers` has refilled only some since.
    runs: Vec<(u8, NodeId)>,
    /// Seam for the lookup rate: the first indices of the highest
    /// [`TOP_STARTS`] runs, highest first, kept inline so a step finds its
    /// run without reading the heap. Kept in step by every change.
    top: [u8; TOP_STARTS],
    top_len: u8,
}

/// How many run starts a table keeps beside its runs: a million-node ring
/// has about 21 runs per node.
pub const TOP_STARTS: usize = 24;

impl FingerTable {
    /// A table whose every finger is `node`, as after `create` or `join`
    /// (the paper initialises fingers to the successor).
    pub fn all(node: NodeId) -> Self {
        FingerTable::from_runs(vec![(0, node)])
    }

    /// Builds a table from runs already in order. Pre: first indices strictly
    /// increase (the first may be above 0: see the `runs` field).
    pub fn from_runs(runs: Vec<(u8, NodeId)>) -> Self {
        debug_assert!(runs.windows(2).all(|w| w[0].0 < w[1].0));
        let mut t = FingerTable {
            runs,
            ..FingerTable::default()
        };
        t.merge_equal_neighbours();
        t.runs.shrink_to_fit();
        t
    }

    /// Finger `i`, or None before any finger is known.
    pub fn get(&self, i: u32) -> Option<NodeId> {
        let k = self.runs.partition_point(|r| u32::from(r.0) <= i);
        k.checked_sub(1).map(|k| self.runs[k].1)
    }

    /// Points fingers `from..=to` at `node`. Pre: from <= to < m <= 160.
    pub fn set_range(&mut self, from: u32, to: u32, node: NodeId, m: u32) {
        debug_assert!(from <= to && to < m);
        // The run that covers index to+1 keeps whatever covered it before.
        let after = if to + 1 < m { self.get(to + 1) } else { None };
        self.runs
            .retain(|r| u32::from(r.0) < from || u32::from(r.0) > to + 1);
        let pos = self.runs.partition_point(|r| u32::from(r.0) < from);
        self.runs.insert(pos, (from as u8, node));
        if let Some(a) = after {
            self.runs.insert(pos + 1, ((to + 1) as u8, a));
        }
        self.merge_equal_neighbours();
    }

    /// Every change ends here: equal neighbours merge, and the starts kept
    /// beside the runs follow.
    fn merge_equal_neighbours(&mut self) {
        self.runs.dedup_by(|later, earlier| later.1 == earlier.1);
        self.sync_top();
    }

    fn sync_top(&mut self) {
        let n = self.runs.len().min(TOP_STARTS);
        for (slot, run) in self.top.iter_mut().zip(self.runs.iter().rev()) {
            *slot = run.0;
        }
        self.top_len = n as u8;
    }

    /// How many runs start at or below finger index `i`: the runs a lookup
    /// whose key lies before `n + 2^(i+1)` may use are `runs()[..k]`. Reads
    /// the starts kept inside the table, not the runs, for the highest
    /// [`TOP_STARTS`] runs.
    #[inline]
    pub fn runs_up_to(&self, i: u32) -> usize {
        let len = self.runs.len();
        for (j, &start) in self.top[..usize::from(self.top_len)].iter().enumerate() {
            if u32::from(start) <= i {
                return len - j;
            }
        }
        let rest = len.saturating_sub(TOP_STARTS);
        self.runs[..rest]
            .iter()
            .rposition(|r| u32::from(r.0) <= i)
            .map_or(0, |k| k + 1)
    }

    /// The runs as (first index, node), lowest index first.
    pub fn runs(&self) -> &[(u8, NodeId)] {
        &self.runs
    }

    /// Replaces every finger that points at `dead` with the finger below it
    /// (or drops it at index 0), so routing stops trying a node known to be gone.
    pub fn forget(&mut self, dead: NodeId) {
        let mut i = 0;
        while i < self.runs.len() {
            if self.runs[i].1 == dead {
                if i == 0 {
                    self.runs.remove(0);
                    if let Some(first) = self.runs.first_mut() {
                        first.0 = 0;
                    }
                } else {
                    self.runs.remove(i);
                }
            } else {
                i += 1;
            }
        }
        self.merge_equal_neighbours();
    }

    /// Heap bytes held, for the memory figure.
    pub fn heap_bytes(&self) -> usize {
        self.runs.capacity() * std::mem::size_of::<(u8, NodeId)>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chord::id::Bits;

    fn n(v: u128) -> NodeId {
        NodeId::new(Bits::new(8).unwrap().id_from_u128(v).unwrap(), 0)
    }

    #[test]
    fn empty_table_knows_nothing() {
        assert_eq!(FingerTable::default().get(0), None);
    }

    #[test]
    fn set_range_splits_and_merges_runs() {
        let mut t = FingerTable::all(n(1));
        t.set_range(3, 4, n(2), 8);
        let got: Vec<_> = (0..8).map(|i| t.get(i).unwrap()).collect();
        assert_eq!(got, vec![n(1), n(1), n(1), n(2), n(2), n(1), n(1), n(1)]);
        assert_eq!(t.runs().len(), 3);
        t.set_range(3, 4, n(1), 8);
        assert_eq!(t.runs(), &[(0, n(1))]);
        t.set_range(7, 7, n(9), 8);
        assert_eq!(t.get(7), Some(n(9)));
        assert_eq!(t.get(6), Some(n(1)));
        t.set_range(0, 7, n(5), 8);
        assert_eq!(t.runs(), &[(0, n(5))]);
    }

    #[test]
    fn starts_kept_beside_the_runs_cover_long_tables() {
        // More runs than the starts kept inside: the rest are searched.
        let runs: Vec<(u8, NodeId)> = (0..40u8).map(|i| (i * 3, n(u128::from(i)))).collect();
        let t = FingerTable::from_runs(runs);
        for i in 0..120u32 {
            let want = t.runs().partition_point(|r| u32::from(r.0) <= i);
            assert_eq!(t.runs_up_to(i), want, "index {i}");
        }
    }

    #[test]
    fn a_table_refilled_after_forgetting_everything_knows_only_what_was_set() {
        let mut t = FingerTable::all(n(1));
        t.forget(n(1));
        assert_eq!(t.runs(), &[]);
        t.set_range(5, 5, n(7), 8);
        assert_eq!(t.runs(), &[(5, n(7))]);
        assert_eq!(t.get(4), None);
        assert_eq!(t.get(5), Some(n(7)));
        assert_eq!(t.get(7), Some(n(7)));
        assert_eq!(t.runs_up_to(4), 0);
        assert_eq!(t.runs_up_to(6), 1);
        assert_eq!(FingerTable::from_runs(t.runs().to_vec()), t);
    }

    #[test]
    fn forget_falls_back_to_lower_fingers() {
        let mut t = FingerTable::from_runs(vec![(0, n(1)), (2, n(2)), (5, n(3))]);
        t.forget(n(2));
        assert_eq!(t.runs(), &[(0, n(1)), (5, n(3))]);
        t.forget(n(1));
        assert_eq!(t.runs(), &[(0, n(3))]);
        t.forget(n(3));
        assert_eq!(t.get(0), None);
    }

    #[test]
    fn matches_a_plain_array_under_random_updates() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        for _ in 0..200 {
            let m = rng.random_range(1..=12u32);
            let mut plain = vec![n(0); m as usize];
            let mut t = FingerTable::all(n(0));
            for _ in 0..20 {
                let a = rng.random_range(0..m);
                let b = rng.random_range(a..m);
                let v = n(rng.random_range(0..4));
                plain[a as usize..=b as usize].fill(v);
                t.set_range(a, b, v, m);
                let got: Vec<_> = (0..m).map(|i| t.get(i).unwrap()).collect();
                assert_eq!(got, plain);
                assert!(t.runs().windows(2).all(|w| w[0].1 != w[1].1));
                for i in 0..m {
                    let want = t.runs().partition_point(|r| u32::from(r.0) <= i);
                    assert_eq!(t.runs_up_to(i), want, "index {i}");
                }
            }
        }
    }
}
