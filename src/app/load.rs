//! Loading records into a ring: each record is stored through a Chord
//! lookup, with routing maintenance every few records and one full round
//! (replica upkeep too) after the last, as the original tool did.

use crate::sim::{World, WorldError};
use crate::source::Record;
use serde_json::Value;
use std::collections::HashSet;
use std::sync::Arc;

/// How a load runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadPlan {
    /// Every this many records, every live node runs stabilize,
    /// check_predecessor and fix_fingers. At least 1.
    pub maintain_every: u64,
    /// The ring was created for this load: a put that replaced a value can
    /// only have replaced one from this same source, so duplicates are
    /// counted from the puts' answers instead of a set of every key.
    pub fresh_ring: bool,
}

/// What routing the records did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Routed {
    /// Records stored under a key the ring did not hold.
    pub inserted: u64,
    /// Records that replaced a value.
    pub overwritten: u64,
    /// Records whose key appeared earlier in the same source (the last wins).
    pub duplicates: u64,
    /// Maintenance rounds run.
    pub rounds: u64,
    /// Lookup hops, summed over the records.
    pub hops: u64,
}

impl Routed {
    /// Records routed.
    pub fn records(&self) -> u64 {
        self.inserted + self.overwritten
    }

    /// Mean lookup hops per record (0 for none).
    pub fn mean_hops(&self) -> f64 {
        match self.records() {
            0 => 0.0,
            n => self.hops as f64 / n as f64,
        }
    }
}

/// A record could not be stored. The ring in memory is partly loaded; the
/// caller must not save it.
#[derive(Debug, thiserror::Error)]
#[error("storing row {row} (key {key:?}); nothing was saved")]
pub struct RecordError {
    /// The record's 1-based row in its source.
    pub row: usize,
    /// Its key.
    pub key: Arc<str>,
    /// Why the put failed.
    #[source]
    pub cause: WorldError,
}

/// Stores every record through a lookup, with maintenance as `plan` says,
/// and calls `progress` with the number of records done now and then.
/// Records are consumed: each key's text and value move into the ring (its
/// copies share them), nothing is copied.
pub fn route_records(
    world: &mut World,
    records: Vec<Record>,
    plan: LoadPlan,
    progress: impl FnMut(u64),
) -> Result<Routed, RecordError> {
    let mut routing = Routing::new(plan);
    routing.route(world, records, progress)?;
    Ok(routing.finish(world))
}

/// A load fed part by part ([`Routing::route`] for each part of the
/// source, then [`Routing::finish`]): maintenance runs every
/// `maintain_every` records counted across parts, as if the parts were one.
pub struct Routing {
    plan: LoadPlan,
    done: Routed,
    /// Records routed so far.
    count: u64,
    /// On an existing ring, the keys seen, to tell a duplicate from a key
    /// stored before (a fresh ring does not need it: see [`LoadPlan`]).
    /// Dropped when the load's copies leave memory ([`Routing::spilled`]).
    seen: Option<HashSet<Arc<str>, rustc_hash::FxBuildHasher>>,
}

impl Routing {
    /// A load about to start.
    pub fn new(plan: LoadPlan) -> Routing {
        Routing {
            plan,
            done: Routed::default(),
            count: 0,
            seen: (!plan.fresh_ring).then(HashSet::default),
        }
    }

    /// Records routed so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Routes one part's records; `progress` hears the records routed so
    /// far (across parts) now and then.
    pub fn route(
        &mut self,
        world: &mut World,
        records: Vec<Record>,
        mut progress: impl FnMut(u64),
    ) -> Result<(), RecordError> {
        let every = self.plan.maintain_every.max(1);
        if let Some(seen) = &mut self.seen {
            seen.reserve(records.len());
        }
        for r in records {
            if let Some(seen) = &mut self.seen
                && !seen.insert(Arc::clone(&r.key))
            {
                self.done.duplicates += 1;
            }
            let (row, key) = (r.row, Arc::clone(&r.key));
            let out = world
                .put_shared(r.key, r.value, None)
                .map_err(|cause| RecordError { row, key, cause })?;
            self.done.hops += out.lookup.hops() as u64;
            if out.result.is_some() {
                self.done.overwritten += 1;
                if self.plan.fresh_ring {
                    self.done.duplicates += 1;
                }
            } else {
                self.done.inserted += 1;
            }
            self.count += 1;
            if self.count % every == 0 {
                world.routing_round();
                self.done.rounds += 1;
            }
            if self.count % 1024 == 1 {
                progress(self.count);
            }
        }
        progress(self.count);
        Ok(())
    }

    /// The load's copies are leaving memory part by part: keys seen in an
    /// earlier part are no longer found by later puts, so the counts are
    /// settled from the spilled copies instead ([`Routing::settle`]).
    pub fn spilled(&mut self) {
        self.seen = None;
    }

    /// Ends the load: replica upkeep once, after the last record, repairs
    /// any replica a put could not write (the rounds between records ran
    /// routing upkeep only).
    pub fn finish(mut self, world: &mut World) -> Routed {
        if self.count > 0 {
            world.round();
            self.done.rounds += 1;
        }
        self.done
    }

    /// The counts of a load whose copies left memory part by part,
    /// corrected by what merging them found: `keys` distinct keys written,
    /// `rewrites` puts that took for an insert a key an earlier part had
    /// written.
    pub fn settle(mut done: Routed, fresh_ring: bool, keys: u64, rewrites: u64) -> Routed {
        done.inserted -= rewrites;
        done.overwritten += rewrites;
        done.duplicates = if fresh_ring {
            done.overwritten
        } else {
            done.records() - keys
        };
        done
    }
}

/// One stored key as a listing shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEntry {
    /// The key.
    pub key: Arc<str>,
    /// Its value.
    pub value: Arc<Value>,
    /// The node responsible for it.
    pub node: Arc<str>,
    /// That node's id.
    pub node_id: String,
}

/// The first `show` keys the ring stores (node by node in ring order, then
/// by key position), and how many keys it stores in all (primary copies).
pub fn stored_sample(world: &World, show: usize) -> (Vec<StoredEntry>, usize) {
    let mut listing = Vec::new();
    let mut stored = 0usize;
    for n in world.nodes() {
        for (k, v) in n.store.iter_live() {
            if n.responsible_for(k.id) {
                stored += 1;
                if listing.len() < show {
                    listing.push(StoredEntry {
                        key: k.text.clone(),
                        value: v.clone(),
                        node: world.name(n.id).into(),
                        node_id: world.bits().show(n.id.id()),
                    });
                }
            }
        }
    }
    (listing, stored)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chord::Params;
    use serde_json::json;

    fn records(keys: &[&str]) -> Vec<Record> {
        keys.iter()
            .enumerate()
            .map(|(i, k)| Record {
                key: (*k).into(),
                value: json!(i),
                row: i + 1,
            })
            .collect()
    }

    #[test]
    fn duplicates_are_counted_on_fresh_and_existing_rings() {
        for fresh_ring in [true, false] {
            let mut w = World::bulk(
                Params::new(32, 3),
                1,
                (0..5).map(|i| (format!("n{i}"), None)),
            )
            .unwrap();
            if !fresh_ring {
                w.put("b", json!("before"), None).unwrap();
            }
            let plan = LoadPlan {
                maintain_every: 2,
                fresh_ring,
            };
            let mut last = 0;
            let r =
                route_records(&mut w, records(&["a", "b", "a", "c"]), plan, |n| last = n).unwrap();
            assert_eq!(last, 4);
            assert_eq!(r.duplicates, 1, "fresh ring {fresh_ring}");
            assert_eq!(r.rounds, 3);
            assert_eq!(r.records(), 4);
            let (sample, stored) = stored_sample(&w, 2);
            assert_eq!((sample.len(), stored), (2, 3));
            assert_eq!(*w.get("a", None).unwrap().result.unwrap(), json!(2));
        }
    }
}
