//! The data one node holds: its own keys and the replicas it keeps for the
//! nodes before it, ordered by ring position.
//!
//! Keys keep their original text; several texts may share a position (always
//! on a small teaching ring, never in practice at 160 bits), so each position
//! holds a small bucket. Ranges are ring intervals (a, b] with wrap-around, as
//! the protocol speaks of them. On request the store records which keys
//! changed ([`Store::record_changes`]), so whoever mirrors it (the state
//! file) can copy out only those.

mod map;

use super::id::{Bits, Id};
use map::{Bucket, Parts};
use serde_json::Value;
use std::collections::BTreeSet;
use std::sync::Arc;

use std::ops::Bound::{Excluded, Included, Unbounded};

/// A stored key: its ring position and its original text.
///
/// The text is shared, not copied, between the copies of a key (the r
/// replicas, messages, journals): cloning a key is a reference count.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    /// Where the key lives on the ring: SHA-1 of the text, mod 2^m.
    pub id: Id,
    /// The text as the user gave it, kept exactly.
    pub text: Arc<str>,
}

impl Key {
    /// A key at `id` with this text.
    pub fn new(id: Id, text: impl Into<Arc<str>>) -> Key {
        Key {
            id,
            text: text.into(),
        }
    }
}

/// A value with its version; `value` None is a tombstone left by a delete.
///
/// Values are shared between copies like key texts: the r copies of a write
/// are one allocation, which at a million keys is most of a load's memory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Versioned {
    /// Orders writes of one key: higher wins. Assigned by the client's
    /// logical clock.
    pub version: u64,
    /// The value, or None once deleted.
    pub value: Option<Arc<Value>>,
}

/// What [`Store::merge`] did with an incoming entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Merge {
    /// The entry held was as new or newer: nothing changed.
    Unchanged,
    /// The incoming entry was kept. `previous` is the live value it
    /// replaced: None when nothing, or a tombstone, was held.
    Took {
        /// The live value held before.
        previous: Option<Arc<Value>>,
    },
}

impl Merge {
    /// True when the store changed.
    pub fn changed(&self) -> bool {
        matches!(self, Merge::Took { .. })
    }
}

/// One key with its versioned value, as messages carry them.
pub type Entry = (Key, Versioned);

/// A node's stored data.
#[derive(Clone, Debug)]
pub struct Store {
    map: Parts,
    /// Entries held, tombstones included.
    entry_count: usize,
    /// Live (non-tombstone) entries.
    live_count: usize,
    journal: Journal,
}

/// Keys changed since the journal was last taken. Boxed so a store without
/// a journal costs 8 bytes, not 24: a million nodes keep one store each.
/// Appended to (cheap on the hot path), sorted and deduplicated when taken.
#[allow(clippy::box_collection)]
type Journal = Option<Box<Vec<Key>>>;

impl Default for Store {
    /// A store on a full-width (160-bit) ring.
    fn default() -> Store {
        Store::for_bits(Bits::MAX)
    }
}

impl Store {
    /// An empty store for a ring of width `bits`.
    pub fn for_bits(bits: Bits) -> Store {
        Store {
            map: Parts::new(bits),
            entry_count: 0,
            live_count: 0,
            journal: None,
        }
    }

    /// Starts recording changed keys (see [`Store::take_changes`]).
    pub fn record_changes(&mut self) {
        self.journal.get_or_insert_with(Default::default);
    }

    /// The keys inserted, replaced or removed since the journal was enabled or
    /// last taken.
    pub fn take_changes(&mut self) -> BTreeSet<Key> {
        self.journal
            .as_mut()
            .map(|j| std::mem::take(&mut **j))
            .unwrap_or_default()
            .into_iter()
            .collect()
    }

    /// Notes a changed key in the journal, if one is kept. An associated
    /// function on the journal field, so callers holding a borrow of the map
    /// can use it; the key's text is shared, not copied.
    fn touch(journal: &mut Journal, id: Id, text: &Arc<str>) {
        if let Some(j) = journal {
            j.push(Key {
                id,
                text: Arc::clone(text),
            });
        }
    }

    /// Number of live keys held (tombstones excluded).
    pub fn len(&self) -> usize {
        self.live_count
    }

    /// Entries held, tombstones included.
    pub fn entries(&self) -> usize {
        self.entry_count
    }

    /// True when no live key is held.
    pub fn is_empty(&self) -> bool {
        self.live_count == 0
    }

    /// The live value of a key, if held.
    pub fn get(&self, key: &Key) -> Option<&Arc<Value>> {
        self.get_versioned(key)?.value.as_ref()
    }

    /// The versioned entry of a key (tombstones too), if held.
    pub fn get_versioned(&self, key: &Key) -> Option<&Versioned> {
        self.map
            .get(&key.id)?
            .iter()
            .find(|(t, _)| *t == key.text)
            .map(|(_, v)| v)
    }

    /// Keeps `v` if it is newer than what is held (or nothing is held):
    /// versions decide, so a stale copy never overwrites a newer one.
    pub fn merge(&mut self, key: Key, v: Versioned) -> Merge {
        self.merge_inner(key, v, false).0
    }

    /// [`Store::merge`], answering with the live value held before it,
    /// whether the merge replaced it or (being as new or newer) kept it: a
    /// write's "what was there", in one search instead of two.
    pub fn merge_held(&mut self, key: Key, v: Versioned) -> Option<Arc<Value>> {
        match self.merge_inner(key, v, true) {
            (Merge::Took { previous }, _) => previous,
            (Merge::Unchanged, kept) => kept,
        }
    }

    /// Merge; when `want_kept`, a held entry that stays is cloned out too.
    fn merge_inner(
        &mut self,
        key: Key,
        v: Versioned,
        want_kept: bool,
    ) -> (Merge, Option<Arc<Value>>) {
        let bucket = self.map.entry(key.id);
        if let Some(slot) = bucket.iter_mut().find(|(t, _)| *t == key.text) {
            if slot.1.version >= v.version {
                let kept = if want_kept {
                    slot.1.value.clone()
                } else {
                    None
                };
                return (Merge::Unchanged, kept);
            }
            let old = std::mem::replace(&mut slot.1, v);
            self.live_count = self.live_count + usize::from(slot.1.value.is_some())
                - usize::from(old.value.is_some());
            Self::touch(&mut self.journal, key.id, &key.text);
            return (
                Merge::Took {
                    previous: old.value,
                },
                None,
            );
        }
        self.live_count += usize::from(v.value.is_some());
        self.entry_count += 1;
        Self::touch(&mut self.journal, key.id, &key.text);
        bucket.push((key.text, v));
        (Merge::Took { previous: None }, None)
    }

    /// Stores a live value at a version (a test and bulk-load convenience).
    pub fn insert(&mut self, key: Key, value: Value, version: u64) -> Merge {
        self.merge(
            key,
            Versioned {
                version,
                value: Some(Arc::new(value)),
            },
        )
    }

    /// Drops a key's entry entirely, tombstone or not (garbage collection).
    pub fn remove(&mut self, key: &Key) -> Option<Versioned> {
        let bucket = self.map.get_mut(&key.id)?;
        let pos = bucket.iter().position(|(t, _)| *t == key.text)?;
        let (_, v) = bucket.remove(pos);
        if bucket.is_empty() {
            self.map.remove(&key.id);
        }
        self.entry_count -= 1;
        self.live_count -= usize::from(v.value.is_some());
        Self::touch(&mut self.journal, key.id, &key.text);
        Some(v)
    }

    /// Removes and returns every entry written after `version` (a version
    /// from the writer's clock), in position order: how a long load moves
    /// what it wrote so far out of memory, leaving what was held before.
    pub fn take_newer_than(&mut self, version: u64) -> Vec<Entry> {
        let mut out = Vec::new();
        let (journal, entries, live) = (
            &mut self.journal,
            &mut self.entry_count,
            &mut self.live_count,
        );
        // One pass over the map, each bucket changed where it lies: a
        // load's spill takes most of a store this way.
        self.map.retain(|&id, bucket| {
            let mut i = 0;
            while i < bucket.len() {
                if bucket[i].1.version > version {
                    let (text, v) = bucket.remove(i);
                    *entries -= 1;
                    *live -= usize::from(v.value.is_some());
                    Self::touch(journal, id, &text);
                    out.push((Key { id, text }, v));
                } else {
                    i += 1;
                }
            }
            !bucket.is_empty()
        });
        out
    }

    /// The buckets in the ring interval (a, b], in ring order starting after
    /// a, walked in place (no second lookup per position). When a == b the
    /// interval is the whole ring.
    fn range_in(&self, a: Id, b: Id) -> impl Iterator<Item = (&Id, &Bucket)> + '_ {
        let (first, second) = if a < b {
            (self.map.range(Excluded(a), Included(b)), None)
        } else {
            (
                self.map.range(Excluded(a), Unbounded),
                Some(self.map.range(Unbounded, Included(b))),
            )
        };
        first.chain(second.into_iter().flatten())
    }

    /// Positions in the ring interval (a, b], in ring order starting after a.
    /// When a == b the interval is the whole ring.
    fn ids_in(&self, a: Id, b: Id) -> Vec<Id> {
        self.range_in(a, b).map(|(id, _)| *id).collect()
    }

    /// Copies of the entries whose position is in (a, b].
    pub fn entries_in(&self, a: Id, b: Id) -> Vec<Entry> {
        let mut out = Vec::new();
        for (&id, bucket) in self.range_in(a, b) {
            for (t, v) in bucket {
                out.push((
                    Key {
                        id,
                        text: t.clone(),
                    },
                    v.clone(),
                ));
            }
        }
        out
    }

    /// Number of entries whose position is in (a, b].
    pub fn count_in(&self, a: Id, b: Id) -> usize {
        self.range_in(a, b).map(|(_, bucket)| bucket.len()).sum()
    }

    /// Removes every entry in (a, b], tombstones included; returns how many went.
    pub fn remove_in(&mut self, a: Id, b: Id) -> usize {
        let mut n = 0;
        for id in self.ids_in(a, b) {
            let bucket = self.map.remove(&id).unwrap_or_default();
            n += bucket.len();
            for (t, v) in &bucket {
                self.live_count -= usize::from(v.value.is_some());
                Self::touch(&mut self.journal, id, t);
            }
        }
        self.entry_count -= n;
        n
    }

    /// Merges entries and returns those of `entries`' range (a, b] that this
    /// store holds newer, or that `entries` lacks: what a replica push's
    /// sender is missing.
    pub fn sync_in(&mut self, a: Id, b: Id, entries: Vec<Entry>) -> Vec<Entry> {
        let mut theirs: std::collections::BTreeMap<Key, u64> = std::collections::BTreeMap::new();
        for (k, v) in entries {
            theirs.insert(k.clone(), v.version);
            self.merge(k, v);
        }
        self.entries_in(a, b)
            .into_iter()
            .filter(|(k, v)| theirs.get(k).is_none_or(|&ver| ver < v.version))
            .collect()
    }

    /// Count and order-free hash of the entries in (a, b], by position and
    /// version: two stores agree on a range exactly when these match (short
    /// of a hash collision), since versions are unique per write.
    pub fn digest_in(&self, a: Id, b: Id) -> (usize, u64) {
        use std::hash::{Hash, Hasher};
        let mut count = 0;
        let mut acc = 0u64;
        // Every write has its own version, so the versions held in a range
        // (with their positions) say what the range holds: the key texts need
        // not be read, which keeps this to one pass over the buckets.
        for (id, bucket) in self.range_in(a, b) {
            let pos = u64::from_be_bytes(id.to_bytes()[..8].try_into().expect("8 bytes"));
            for (_, v) in bucket {
                let mut h = rustc_hash::FxHasher::default();
                (pos, v.version).hash(&mut h);
                acc ^= h.finish().wrapping_mul(0x9e37_79b9_7f4a_7c15);
                count += 1;
            }
        }
        (count, acc)
    }

    /// Every entry in ring order from position zero, tombstones included.
    pub fn iter(&self) -> impl Iterator<Item = (Key, &Versioned)> + '_ {
        self.map.iter().flat_map(|(id, b)| {
            b.iter().map(move |(t, v)| {
                (
                    Key {
                        id: *id,
                        text: t.clone(),
                    },
                    v,
                )
            })
        })
    }

    /// Entries (tombstones too) at positions `lo..=hi` in numeric order (not
    /// ring order: no wrap-around), borrowed.
    pub fn entries_between(
        &self,
        lo: Id,
        hi: Id,
    ) -> impl Iterator<Item = (Id, &str, &Versioned)> + '_ {
        self.map
            .range(Included(lo), Included(hi))
            .flat_map(|(id, b)| b.iter().map(move |(t, v)| (*id, &**t, v)))
    }

    /// Live entries in ring order from position zero.
    pub fn iter_live(&self) -> impl Iterator<Item = (Key, &Arc<Value>)> + '_ {
        self.iter()
            .filter_map(|(k, v)| v.value.as_ref().map(|x| (k, x)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chord::id::Bits;
    use serde_json::json;
    use std::collections::BTreeMap;

    fn key(v: u128, t: &str) -> Key {
        Key {
            id: Bits::new(8).unwrap().id_from_u128(v).unwrap(),
            text: t.into(),
        }
    }

    #[test]
    fn take_newer_than_moves_out_only_later_writes_and_journals_them() {
        let mut s = Store::for_bits(Bits::new(8).unwrap());
        s.insert(key(5, "old"), json!(1), 3);
        s.insert(key(5, "new"), json!(2), 7);
        s.insert(key(9, "new2"), json!(3), 8);
        s.insert(key(9, "kept"), json!(4), 2);
        s.record_changes();
        let taken = s.take_newer_than(3);
        let texts: Vec<&str> = taken.iter().map(|(k, _)| &*k.text).collect();
        assert_eq!(texts, ["new", "new2"]);
        assert_eq!((s.len(), s.entries()), (2, 2));
        assert!(s.get(&key(5, "old")).is_some() && s.get(&key(9, "kept")).is_some());
        assert_eq!(s.take_changes().len(), 2);
        assert!(s.take_newer_than(3).is_empty());
    }
    fn id(v: u128) -> Id {
        Bits::new(8).unwrap().id_from_u128(v).unwrap()
    }

    fn ver(version: u64, v: serde_json::Value) -> Versioned {
        Versioned {
            version,
            value: Some(Arc::new(v)),
        }
    }

    #[test]
    fn colliding_positions_keep_both_texts() {
        let mut s = Store::default();
        let new = Merge::Took { previous: None };
        assert_eq!(s.insert(key(5, "a"), json!(1), 1), new);
        assert_eq!(s.insert(key(5, "b"), json!(2), 2), new);
        assert_eq!(
            s.insert(key(5, "a"), json!(3), 3),
            Merge::Took {
                previous: Some(Arc::new(json!(1)))
            }
        );
        assert_eq!(s.len(), 2);
        assert_eq!(s.get(&key(5, "b")), Some(&Arc::new(json!(2))));
        assert_eq!(
            s.remove(&key(5, "a")).unwrap().value,
            Some(Arc::new(json!(3)))
        );
        assert_eq!(s.remove(&key(5, "a")), None);
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn older_versions_never_overwrite_newer() {
        let mut s = Store::default();
        s.merge(key(5, "a"), ver(5, json!("new")));
        assert_eq!(s.merge(key(5, "a"), ver(4, json!("old"))), Merge::Unchanged);
        assert_eq!(s.get(&key(5, "a")), Some(&Arc::new(json!("new"))));
        // A tombstone hides the value and wins over older writes.
        s.merge(
            key(5, "a"),
            Versioned {
                version: 6,
                value: None,
            },
        );
        assert_eq!(s.get(&key(5, "a")), None);
        assert_eq!((s.len(), s.entries()), (0, 1));
        assert_eq!(s.merge(key(5, "a"), ver(5, json!("new"))), Merge::Unchanged);
        assert_eq!(s.get(&key(5, "a")), None);
    }

    /// The split map answers every query as one ordered map would, on ring
    /// widths with fewer positions than parts and with many.
    #[test]
    fn split_store_matches_one_ordered_map() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        for (m, steps) in [
            (1u32, 3000u64),
            (3, 3000),
            (6, 3000),
            (7, 3000),
            (8, 3000),
            (12, 6000),
            (16, 14_000),
            (40, 14_000),
        ] {
            let bits = Bits::new(m).unwrap();
            let top = (1u128 << m) - 1;
            let pos = |rng: &mut rand_chacha::ChaCha8Rng| {
                bits.id_from_u128(rng.random_range(0..=top)).unwrap()
            };
            let mut s = Store::for_bits(bits);
            let mut model: BTreeMap<(Id, String), u64> = BTreeMap::new();
            let every = if steps > 10_000 { 499 } else { 97 };
            for step in 0..steps {
                let id = pos(&mut rng);
                let text = format!("t{}", rng.random_range(0..3));
                let key = Key::new(id, text.as_str());
                if rng.random_bool(0.8) {
                    s.insert(key, json!(step), step + 1);
                    model.insert((id, text), step + 1);
                } else {
                    assert_eq!(s.remove(&key).map(|v| v.version), model.remove(&(id, text)));
                }
                // Queries now and then (the store splits after 8192 keys).
                if step % every != 0 && step != steps - 1 {
                    continue;
                }
                let (a, b) = (pos(&mut rng), pos(&mut rng));
                let want: Vec<(Id, u64)> = model
                    .iter()
                    .filter(|((p, _), _)| p.in_half_open(a, b))
                    .map(|((p, _), v)| (*p, *v))
                    .collect();
                // Ring order from after a: those after a first, then the wrap.
                let (mut after, before): (Vec<_>, Vec<_>) =
                    want.into_iter().partition(|(p, _)| *p > a);
                after.extend(before);
                let got: Vec<(Id, u64)> = s
                    .entries_in(a, b)
                    .into_iter()
                    .map(|(k, v)| (k.id, v.version))
                    .collect();
                assert_eq!(got, after, "m={m} step {step} range ({a:?}, {b:?}]");
                assert_eq!(s.count_in(a, b), got.len());
                let all: Vec<(Id, u64)> = s.iter().map(|(k, v)| (k.id, v.version)).collect();
                let want_all: Vec<(Id, u64)> = model.iter().map(|((p, _), v)| (*p, *v)).collect();
                assert_eq!(all, want_all, "m={m} step {step}: order");
            }
            let positions: BTreeSet<Id> = model.keys().map(|(p, _)| *p).collect();
            assert!(
                m < 16 || positions.len() > Parts::SPLIT_AT,
                "the wide rings split"
            );
            if positions.len() > Parts::SPLIT_AT {
                assert!(s.map.maps.len() > 1, "m={m}: a large store splits");
            }
        }
    }

    #[test]
    fn ranges_wrap_through_zero() {
        let mut s = Store::default();
        for v in [1, 100, 200, 250] {
            s.insert(key(v, "k"), json!(v as u64), 1);
        }
        let ids = |e: Vec<Entry>| e.into_iter().map(|(k, _)| k.id).collect::<Vec<_>>();
        assert_eq!(ids(s.entries_in(id(200), id(1))), vec![id(250), id(1)]);
        assert_eq!(ids(s.entries_in(id(1), id(200))), vec![id(100), id(200)]);
        assert_eq!(s.entries_in(id(7), id(7)).len(), 4);
        assert_eq!(s.count_in(id(250), id(100)), 2);
        assert_eq!(s.remove_in(id(240), id(50)), 2);
        assert_eq!(s.len(), 2);
    }

    #[test]
    fn sync_merges_and_returns_what_the_sender_lacks() {
        let mut s = Store::default();
        s.insert(key(10, "mine-newer"), json!(2), 9);
        s.insert(key(11, "only-mine"), json!(3), 1);
        s.insert(key(12, "theirs-newer"), json!(4), 1);
        s.record_changes();
        let back = s.sync_in(
            id(5),
            id(15),
            vec![
                (key(10, "mine-newer"), ver(3, json!(0))),
                (key(12, "theirs-newer"), ver(7, json!(5))),
            ],
        );
        let texts: Vec<_> = back.iter().map(|(k, _)| &*k.text).collect();
        assert_eq!(texts, vec!["mine-newer", "only-mine"]);
        assert_eq!(s.get(&key(12, "theirs-newer")), Some(&Arc::new(json!(5))));
        let j: Vec<_> = s.take_changes().into_iter().map(|k| k.text).collect();
        assert_eq!(j, vec![Arc::<str>::from("theirs-newer")]);
    }
}
