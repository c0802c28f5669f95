//! Paged listings of a ring held in memory, for a server: its keys in ring
//! order and its nodes, a page at a time from a cursor, so a client of a
//! million-key ring asks for what it shows.

use super::view::{NodeRow, node_row};
use crate::chord::{Id, NodeId, hosts};
use crate::sim::World;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Most entries a page may hold.
pub const MAX_PAGE: usize = 1000;

/// One key of a listing, with the node serving it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KeyEntry {
    /// The key.
    pub key: String,
    /// Its value.
    pub value: Arc<Value>,
    /// The node a `get` would read it from.
    pub node: String,
}

/// A page of a listing.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Page<T> {
    /// The entries, in ring order.
    pub items: Vec<T>,
    /// The cursor of the next page, None after the last.
    pub next: Option<String>,
}

/// A key's value and the node serving it; None for a tombstone.
type Served = Option<(Arc<Value>, NodeId)>;

/// Up to `limit` live keys in ring order (by position, then text) after
/// the key `after` (from the start when None), each with the node a `get`
/// reads it from: the first of the r nodes from the key's successor on
/// that holds an entry for it (a tombstone there means the key is gone).
/// Copies held further away, not yet dropped by maintenance, are not
/// listed. Costs the page and the nodes it covers, not the ring.
pub fn keys(world: &World, after: Option<&str>, limit: usize) -> Page<KeyEntry> {
    keys_where(world, after, limit, &|_| true)
}

/// [`keys`] holding only the keys `keep` accepts: a page then costs the
/// keys scanned until it is full, up to the whole ring when few match.
pub fn keys_where(
    world: &World,
    after: Option<&str>,
    limit: usize,
    keep: &dyn Fn(&str) -> bool,
) -> Page<KeyEntry> {
    let members = world.member_ids();
    let n = members.len();
    let limit = limit.clamp(1, MAX_PAGE);
    let mut items = Vec::new();
    if n == 0 {
        return Page { items, next: None };
    }
    let r = world.params().r().min(n);
    let bits = world.bits();
    let top = Id::from_bytes([0xff; 20]);
    let cursor: Option<(Id, &str)> = after.map(|k| (world.key(k).id, k));
    // Segments of the id space in numeric order, each served by one
    // member: [0, m0], (m0, m1], ..., (m(n-2), m(n-1)], (m(n-1), top].
    let first = match cursor {
        Some((pos, _)) => members.partition_point(|m| m.id() < pos),
        None => 0,
    };
    for seg in first..=n {
        let lo = if seg == 0 {
            Id::ZERO
        } else {
            let prev = members[seg - 1].id();
            if prev == top {
                break;
            }
            bits.next(prev)
        };
        let (hi, owner) = if seg == n {
            (top, 0)
        } else {
            (members[seg].id(), seg)
        };
        let mut found: BTreeMap<(Id, Arc<str>), Served> = BTreeMap::new();
        let holders: Vec<NodeId> = if world.params().has_vnodes() {
            let after = (1..n).map(|k| members[(owner + k) % n]);
            let list = hosts::successor_list(world.params(), members[owner], after);
            hosts::holders(world.params(), members[owner], &list)
        } else {
            (0..r).map(|h| members[(owner + h) % n]).collect()
        };
        for holder in holders {
            let Some(node) = world.node(holder) else {
                continue;
            };
            for (pos, text, v) in node.store.entries_between(lo, hi) {
                found
                    .entry((pos, Arc::from(text)))
                    .or_insert_with(|| v.value.clone().map(|x| (x, holder)));
            }
        }
        for ((pos, text), entry) in found {
            if let Some((cpos, ctext)) = cursor
                && (pos, &*text) <= (cpos, ctext)
            {
                continue;
            }
            let Some((value, holder)) = entry else {
                continue;
            };
            if !keep(&text) {
                continue;
            }
            if items.len() == limit {
                let next = items.last().map(|e: &KeyEntry| e.key.clone());
                return Page { items, next };
            }
            items.push(KeyEntry {
                key: text.to_string(),
                value,
                node: world.name(holder),
            });
        }
    }
    Page { items, next: None }
}

/// A node's own keys (those it is responsible for), in ring order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeKeys {
    /// The node.
    pub node: String,
    /// How many live keys it is responsible for.
    pub total: usize,
    /// The first `limit` of them.
    pub items: Vec<NodeKey>,
}

/// One key of a node's.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeKey {
    /// The key.
    pub key: String,
    /// Its value.
    pub value: Arc<Value>,
}

/// The first `limit` live keys `node` is responsible for, in ring order
/// from just after its predecessor.
pub fn node_keys(world: &World, node: &crate::chord::Node, limit: usize) -> NodeKeys {
    let mut own: Vec<(Id, Arc<str>, Arc<Value>)> = node
        .store
        .iter_live()
        .filter(|(k, _)| node.responsible_for(k.id))
        .map(|(k, v)| (k.id, k.text, Arc::clone(v)))
        .collect();
    // Ring order from the predecessor: ids past the node come first.
    let me = node.id.id();
    own.sort_by(|a, b| ((a.0 <= me), a.0, &a.1).cmp(&((b.0 <= me), b.0, &b.1)));
    NodeKeys {
        node: world.name(node.id),
        total: own.len(),
        items: own
            .into_iter()
            .take(limit.clamp(1, MAX_PAGE))
            .map(|(_, key, value)| NodeKey {
                key: key.to_string(),
                value,
            })
            .collect(),
    }
}

/// Up to `limit` nodes in ring order after the node named `after` (from
/// the lowest id when None), as `dht ring` shows them (keys and replicas
/// counted from each node's own store).
pub fn nodes(world: &World, after: Option<NodeId>, limit: usize) -> Page<NodeRow> {
    let members = world.member_ids();
    let limit = limit.clamp(1, MAX_PAGE);
    let start = match after {
        Some(a) => members.partition_point(|m| m.id() <= a.id()),
        None => 0,
    };
    let mut items = Vec::new();
    for &m in members.iter().skip(start).take(limit) {
        if let Some(node) = world.node(m) {
            let held: Vec<Id> = node.store.iter_live().map(|(k, _)| k.id).collect();
            items.push(node_row(world, node, &held));
        }
    }
    let next = (start + items.len() < members.len())
        .then(|| items.last().map(|r| r.node.clone()))
        .flatten();
    Page { items, next }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chord::Params;

    #[test]
    fn pages_of_keys_cover_every_key_once_in_ring_order() {
        let mut w = World::bulk(
            Params::new(16, 3),
            3,
            (0..20).map(|i| (format!("n{i}"), None)),
        )
        .unwrap();
        for i in 0..250 {
            w.put(&format!("k{i}"), serde_json::json!(i), None).unwrap();
        }
        w.delete("k7", None).unwrap();
        let mut seen = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = keys(&w, after.as_deref(), 37);
            assert!(page.items.len() <= 37);
            seen.extend(page.items.iter().map(|e| (w.key(&e.key).id, e.key.clone())));
            match page.next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
        let mut want: Vec<(Id, String)> = (0..250)
            .filter(|i| *i != 7)
            .map(|i| (w.key(&format!("k{i}")).id, format!("k{i}")))
            .collect();
        want.sort();
        assert_eq!(seen, want);
        let page = nodes(&w, None, 8);
        assert_eq!(page.items.len(), 8);
        let rest = nodes(&w, w.find(page.next.as_deref().unwrap()).ok(), 100);
        assert_eq!(rest.items.len(), 12);
        assert_eq!(rest.next, None);
    }
}
