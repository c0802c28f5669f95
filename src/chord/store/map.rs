//! The ordered map inside a store: positions to buckets of (text, entry),
//! one `BTreeMap`, split into 1,024 maps by leading position bits once it is
//! large, so that each insertion walks a shallower tree. Iterating the parts
//! in order gives the order of one map.

use super::Versioned;
use crate::chord::id::{Bits, Id};
use std::collections::BTreeMap;
use std::ops::Bound::{self, Excluded, Included, Unbounded};
use std::sync::Arc;

/// One stored text at a position and its entry.
pub(super) type Slot = (Arc<str>, Versioned);

/// The keys at one position: almost always one, kept inside the map's node
/// rather than in an allocation of its own, so finding, merging and
/// digesting an entry touch one place in memory, not two. 32 bytes (the
/// second variant lives beside the first's non-null pointer), so a map node
/// holds eleven in 640 bytes. Sorted by text; empty only in passing.
#[derive(Clone, Debug)]
pub(super) enum Bucket {
    One(Slot),
    Many(Vec<Slot>),
}

impl Default for Bucket {
    fn default() -> Bucket {
        Bucket::Many(Vec::new())
    }
}

impl std::ops::Deref for Bucket {
    type Target = [Slot];
    fn deref(&self) -> &[Slot] {
        match self {
            Bucket::One(s) => std::slice::from_ref(s),
            Bucket::Many(v) => v,
        }
    }
}

impl std::ops::DerefMut for Bucket {
    fn deref_mut(&mut self) -> &mut [Slot] {
        match self {
            Bucket::One(s) => std::slice::from_mut(s),
            Bucket::Many(v) => v,
        }
    }
}

impl<'a> IntoIterator for &'a Bucket {
    type Item = &'a Slot;
    type IntoIter = std::slice::Iter<'a, Slot>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl Bucket {
    /// Adds a text not yet here, keeping texts sorted.
    pub(super) fn push(&mut self, slot: Slot) {
        match self {
            Bucket::Many(v) if v.is_empty() => *self = Bucket::One(slot),
            Bucket::Many(v) => {
                let at = v.partition_point(|s| s.0 < slot.0);
                v.insert(at, slot);
            }
            Bucket::One(_) => {
                let Bucket::One(first) = std::mem::take(self) else {
                    unreachable!("matched One above")
                };
                let mut v = vec![first, slot];
                v.sort_by(|a, b| a.0.cmp(&b.0));
                *self = Bucket::Many(v);
            }
        }
    }

    /// Takes out the slot at `pos`.
    pub(super) fn remove(&mut self, pos: usize) -> Slot {
        match std::mem::take(self) {
            Bucket::One(s) => s,
            Bucket::Many(mut v) => {
                let s = v.remove(pos);
                *self = if v.len() == 1 {
                    Bucket::One(v.pop().expect("one left"))
                } else {
                    Bucket::Many(v)
                };
                s
            }
        }
    }
}

/// The ordered map of a store: one ordered map, split by the leading bits
/// of the position into 1,024 ordered maps, one after another around the
/// ring, once it holds [`Parts::SPLIT_AT`] positions.
///
/// One map of a node's tens of thousands of entries is deep, and every
/// insertion walks it from the root through cold memory; split, each walk
/// is shorter (at a million keys on 64 nodes, 137 positions per part: two
/// levels instead of four). The split waits for eight positions per part,
/// so the parts' nodes are not mostly empty, and happens once: regrowing
/// would move every entry each time. Small stores (a million-node ring
/// holds a few keys per node) stay one map. Iterating the parts in order
/// gives the same order as one map. README's benchmark section has the
/// measurements behind these numbers.
#[derive(Clone, Debug)]
pub(super) struct Parts {
    /// Ring width m.
    m: u32,
    /// Empty until the first entry (an empty store costs nothing more).
    pub(super) maps: Vec<BTreeMap<Id, Bucket>>,
}

impl Parts {
    /// Leading position bits that choose a part once split: 1,024 parts (2^m
    /// on rings narrower than 10 bits).
    const SPLIT_BITS: u32 = 10;
    /// Positions held before one map splits.
    pub(super) const SPLIT_AT: usize = 8192;

    pub(super) fn new(bits: Bits) -> Parts {
        Parts {
            m: bits.get(),
            maps: Vec::new(),
        }
    }

    fn index(&self, id: Id) -> usize {
        if self.maps.len() <= 1 {
            return 0;
        }
        // The leading SPLIT_BITS bits of an m-bit position. Positions are
        // below 2^m, so this is below the part count; the min only guards a
        // position from a wider ring.
        let shift = self.m - Self::SPLIT_BITS.min(self.m);
        ((id.to_u160() >> shift as usize).to::<u64>() as usize).min(self.maps.len() - 1)
    }

    /// Splits the one map into 2^SPLIT_BITS parts.
    fn split(&mut self) {
        let k = Self::SPLIT_BITS.min(self.m);
        let one = std::mem::take(&mut self.maps).pop().unwrap_or_default();
        self.maps = vec![BTreeMap::new(); 1 << k];
        for (id, b) in one {
            let i = self.index(id);
            self.maps[i].insert(id, b);
        }
    }

    pub(super) fn entry(&mut self, id: Id) -> &mut Bucket {
        match self.maps.len() {
            0 => self.maps.push(BTreeMap::new()),
            1 if self.maps[0].len() >= Self::SPLIT_AT => self.split(),
            _ => {}
        }
        let i = self.index(id);
        self.maps[i].entry(id).or_default()
    }

    pub(super) fn get(&self, id: &Id) -> Option<&Bucket> {
        self.maps.get(self.index(*id))?.get(id)
    }

    pub(super) fn get_mut(&mut self, id: &Id) -> Option<&mut Bucket> {
        let i = self.index(*id);
        self.maps.get_mut(i)?.get_mut(id)
    }

    pub(super) fn remove(&mut self, id: &Id) -> Option<Bucket> {
        let i = self.index(*id);
        self.maps.get_mut(i)?.remove(id)
    }

    /// Entries with positions within the bounds, in position order. Pre:
    /// the bounds are a valid `BTreeMap::range` (start not after end).
    pub(super) fn range(
        &self,
        lo: Bound<Id>,
        hi: Bound<Id>,
    ) -> impl Iterator<Item = (&Id, &Bucket)> + '_ {
        let first = match lo {
            Unbounded => 0,
            Included(x) | Excluded(x) => self.index(x),
        };
        let last = match hi {
            Unbounded => self.maps.len().saturating_sub(1),
            Included(x) | Excluded(x) => self.index(x),
        };
        let maps = if self.maps.is_empty() {
            &[][..]
        } else {
            &self.maps[first..=last]
        };
        maps.iter().flat_map(move |m| m.range((lo, hi)))
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = (&Id, &Bucket)> + '_ {
        self.maps.iter().flat_map(|m| m.iter())
    }

    /// Keeps the positions for which `keep` says true, in position order;
    /// `keep` may change a bucket as it goes.
    pub(super) fn retain(&mut self, mut keep: impl FnMut(&Id, &mut Bucket) -> bool) {
        for m in &mut self.maps {
            m.retain(&mut keep);
        }
    }
}
