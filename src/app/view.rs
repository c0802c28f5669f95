//! What commands show about a ring, as plain data: printers turn these into
//! tables or JSON, and a server can send them as they are.

use crate::chord::{Id, Node, NodeId, Params};
use crate::chord::{Lookup, ops::Outcome};
use crate::sim::World;
use crate::sim::world::host_of;
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// A node named for people: its name and its id as the ring shows ids.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeRef {
    /// The node's name.
    pub name: String,
    /// Its id (decimal on rings up to 64 bits, hex above).
    pub id: String,
}

impl NodeRef {
    /// `n` as `world` names it.
    pub fn of(world: &World, n: NodeId) -> NodeRef {
        NodeRef {
            name: world.name(n),
            id: world.bits().show(n.id()),
        }
    }
}

impl std::fmt::Display for NodeRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.name, self.id)
    }
}

/// One run of equal fingers: fingers `from` up to the next run's start
/// point at `node`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FingerRun {
    /// The first finger index of the run (0-based: the paper's finger 1 is 0).
    pub from: u8,
    /// The node's name.
    pub node: String,
}

/// One node of `dht ring`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeRow {
    /// The physical node it runs on, on a ring with virtual nodes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// The node's name.
    pub node: String,
    /// Its id.
    pub id: String,
    /// Its predecessor's name, if it knows one.
    pub predecessor: Option<String>,
    /// Its successor list, nearest first.
    pub successors: Vec<String>,
    /// Live keys it is responsible for.
    pub keys: usize,
    /// Live replicas it holds for other nodes.
    pub replicas: usize,
    /// Its finger table as runs.
    pub fingers: Vec<FingerRun>,
}

/// How a view names nodes: a whole [`World`], or the names of a ring read
/// row by row ([`ReadNames`]) when building the world would cost far more
/// than the listing.
pub trait Names {
    /// The ring's settings.
    fn params(&self) -> Params;
    /// The node's name, or its id in angle brackets for a node that is
    /// gone (a pointer maintenance has not dropped yet).
    fn name(&self, id: NodeId) -> String;
}

impl Names for World {
    fn params(&self) -> Params {
        World::params(self)
    }

    fn name(&self, id: NodeId) -> String {
        World::name(self, id)
    }
}

/// The names of every node of a ring, read without its routing state.
pub struct ReadNames {
    /// The ring's settings.
    pub params: Params,
    /// Every live node's name.
    pub names: HashMap<NodeId, Arc<str>>,
}

impl Names for ReadNames {
    fn params(&self) -> Params {
        self.params
    }

    fn name(&self, id: NodeId) -> String {
        match self.names.get(&id) {
            Some(name) => name.to_string(),
            None => format!("<{}>", self.params.bits.show(id.id())),
        }
    }
}

/// Every node in ring order, as `dht ring` shows it. `held` gives the
/// positions of the live keys each node holds, by node name (the state file
/// counts them without loading values).
///
/// With virtual nodes, rows are grouped under their physical node: hosts
/// in the ring order of their first node, each host's nodes in ring order.
pub fn ring_rows(world: &World, held: &BTreeMap<String, Vec<Id>>) -> Vec<NodeRow> {
    let rows = world
        .nodes()
        .map(|n| {
            let held = held
                .get(&world.name(n.id))
                .map(Vec::as_slice)
                .unwrap_or(&[]);
            node_row(world, n, held)
        })
        .collect();
    grouped_by_host(rows)
}

/// `rows` in ring order, grouped under their physical nodes when they have
/// hosts (see [`ring_rows`]).
pub fn grouped_by_host(mut rows: Vec<NodeRow>) -> Vec<NodeRow> {
    if rows.iter().any(|r| r.host.is_some()) {
        let mut order: BTreeMap<String, usize> = BTreeMap::new();
        for r in &rows {
            let next = order.len();
            order
                .entry(r.host.clone().unwrap_or_default())
                .or_insert(next);
        }
        rows.sort_by_key(|r| order[r.host.as_deref().unwrap_or_default()]);
    }
    rows
}

/// One node as `dht ring` shows it, holding live keys at positions `held`.
pub fn node_row(names: &(impl Names + ?Sized), n: &Node, held: &[Id]) -> NodeRow {
    let mut row = node_row_without_fingers(names, n, held);
    row.fingers = n
        .fingers
        .runs()
        .iter()
        .map(|&(from, f)| FingerRun {
            from,
            node: names.name(f),
        })
        .collect();
    row
}

/// [`node_row`] with no fingers: what the table of `dht ring` shows
/// unless asked for fingers, at a fraction of the memory on a big ring.
pub fn node_row_without_fingers(names: &(impl Names + ?Sized), n: &Node, held: &[Id]) -> NodeRow {
    let own = held.iter().filter(|k| n.responsible_for(**k)).count();
    let params = names.params();
    let node = names.name(n.id);
    NodeRow {
        host: params.has_vnodes().then(|| host_of(&node).to_owned()),
        id: params.bits.show(n.id.id()),
        predecessor: n.pred.map(|p| names.name(p)),
        successors: n.succs.iter().map(|s| names.name(*s)).collect(),
        keys: own,
        replicas: held.len() - own,
        fingers: Vec::new(),
        node,
    }
}

/// The nodes `n` names (predecessor, successors, fingers): what a view of
/// it needs the names of.
pub fn named_by(n: &Node) -> impl Iterator<Item = NodeId> + '_ {
    n.pred
        .into_iter()
        .chain(n.succs.iter().copied())
        .chain(n.fingers.runs().iter().map(|&(_, f)| f))
}

/// The answer to a `get`: the value, and how the lookup found it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GetReport {
    /// The key asked for.
    pub key: String,
    /// Its position on the ring (the ring's way of showing ids).
    pub key_id: String,
    /// True when a live value was found.
    pub found: bool,
    /// The value, or null.
    pub value: Option<Arc<Value>>,
    /// The node that served the read; JSON gives its name as `node`.
    #[serde(rename = "node", serialize_with = "name_only")]
    pub served_by: NodeRef,
    /// The nodes asked, from the start node to the key's predecessor.
    pub path: Vec<NodeRef>,
    /// The key's successor, as the lookup found it.
    pub successor: NodeRef,
    /// Forwards along the path (the paper's path length).
    pub hops: usize,
    /// Every request the get sent to another node.
    pub messages: u64,
}

/// A node as its name alone.
fn name_only<S: serde::Serializer>(n: &NodeRef, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&n.name)
}

impl GetReport {
    /// The report of `out`, a get of `key` just run on `world`.
    pub fn new(world: &World, key: &str, out: &Outcome<Option<Arc<Value>>>) -> GetReport {
        let Lookup {
            path, successor, ..
        } = &out.lookup;
        GetReport {
            key: key.to_owned(),
            key_id: world.bits().show(world.key(key).id),
            found: out.result.is_some(),
            value: out.result.clone(),
            served_by: NodeRef::of(world, out.served_by),
            path: path.iter().map(|n| NodeRef::of(world, *n)).collect(),
            successor: NodeRef::of(world, *successor),
            hops: out.lookup.hops(),
            messages: world.last_op_messages(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chord::Params;

    #[test]
    fn ring_rows_count_keys_and_replicas() {
        let mut w = World::bulk(
            Params::new(16, 2),
            1,
            (0..4).map(|i| (format!("n{i}"), None)),
        )
        .unwrap();
        w.put("k", serde_json::json!(1), None).unwrap();
        let mut held: BTreeMap<String, Vec<Id>> = BTreeMap::new();
        for n in w.nodes() {
            held.insert(
                w.name(n.id),
                n.store.iter_live().map(|(k, _)| k.id).collect(),
            );
        }
        let rows = ring_rows(&w, &held);
        assert_eq!(rows.len(), 4);
        assert_eq!(rows.iter().map(|r| r.keys).sum::<usize>(), 1);
        assert_eq!(rows.iter().map(|r| r.replicas).sum::<usize>(), 1);
        let json = serde_json::to_value(&rows[0]).unwrap();
        assert!(json["fingers"][0]["node"].is_string());
    }
}
