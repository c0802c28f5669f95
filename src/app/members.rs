//! Membership changes as people see them: new nodes' default names, and
//! the sentences join, leave and fail answer with, the same from the
//! command line and the server.

use super::show_node;
use super::view::NodeRef;
use crate::chord::NodeId;
use crate::sim::{World, WorldError};
use serde::Serialize;

/// The first `count` names `node-<i>` no live physical node has, lowest
/// first.
pub fn free_names(world: &World, count: usize) -> Vec<String> {
    (0..)
        .map(|i| format!("node-{i}"))
        .filter(|n| world.physical(n).is_err())
        .take(count)
        .collect()
}

/// A physical node as people see it: the node itself, or with virtual
/// nodes its name and how many it runs.
pub fn show_host(world: &World, ids: &[NodeId]) -> String {
    match ids {
        [one] if !world.params().has_vnodes() => show_node(world, *one),
        _ => format!(
            "{} ({} virtual nodes)",
            ids.first()
                .map_or_else(String::new, |&id| world.host_name(id)),
            ids.len()
        ),
    }
}

/// A node that joined, and the successor its join lookup found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Joined {
    /// The new node.
    #[serde(flatten)]
    pub node: NodeRef,
    /// Its successor; None when it created the ring.
    pub successor: Option<NodeRef>,
}

/// Joins the physical node `name` through `via` (or a node the seed
/// picks): its one node, or its virtual nodes.
pub fn join_nodes(
    world: &mut World,
    name: &str,
    via: Option<NodeId>,
) -> Result<Vec<Joined>, WorldError> {
    let joined = world.join_host(name, via)?;
    Ok(joined
        .iter()
        .map(|(id, lookup)| Joined {
            node: NodeRef::of(world, *id),
            successor: lookup.as_ref().map(|l| NodeRef::of(world, l.successor)),
        })
        .collect())
}

/// What a join of the physical node `name` did, in words.
pub fn joined_sentence(world: &World, name: &str, joined: &[Joined]) -> String {
    if let [one] = joined
        && !world.params().has_vnodes()
    {
        let succ = one
            .successor
            .as_ref()
            .map_or_else(|| "itself".to_owned(), ToString::to_string);
        return format!("joined {}; successor {succ}", one.node);
    }
    let nodes: Vec<String> = joined.iter().map(|j| j.node.to_string()).collect();
    format!(
        "joined {name} as {} virtual nodes: {}",
        nodes.len(),
        nodes.join(", ")
    )
}

/// Joins the physical node `name` through `via` (or a node the seed picks)
/// and says so.
pub fn join(world: &mut World, name: &str, via: Option<NodeId>) -> Result<String, WorldError> {
    let joined = join_nodes(world, name, via)?;
    Ok(joined_sentence(world, name, &joined))
}

/// What a graceful leave did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Left {
    /// The physical node, as people see it.
    pub node: String,
    /// Stored entries (keys and replicas) it handed over.
    pub entries: usize,
}

impl std::fmt::Display for Left {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} left; its {} stored entries were handed over",
            self.node, self.entries
        )
    }
}

/// The physical node `ids` leaves gracefully, handing its entries over;
/// on failure, the node as shown and why.
pub fn leave_host(world: &mut World, ids: &[NodeId]) -> Result<Left, (String, WorldError)> {
    let entries: usize = ids
        .iter()
        .filter_map(|&id| world.node(id))
        .map(|n| n.store.len())
        .sum();
    let node = show_host(world, ids);
    match world.leave_host(ids) {
        Ok(()) => Ok(Left { node, entries }),
        Err(e) => Err((node, e)),
    }
}

/// The physical node `ids` leaves gracefully, handing its entries over,
/// and says so; on failure, the node as shown and why.
pub fn leave(world: &mut World, ids: &[NodeId]) -> Result<String, (String, WorldError)> {
    leave_host(world, ids).map(|left| left.to_string())
}

/// What a crash did, in words; `list_lost` names every lost key.
pub fn crashed(c: &super::fail::Crashed, list_lost: bool) -> String {
    let head = format!(
        "{} crashed, taking {} stored entries with it; ",
        c.node, c.entries
    );
    if c.lost.is_empty() {
        return head + "replicas remain elsewhere";
    }
    let mut s = format!("{head}{} keys had no other copy and are lost", c.lost.len());
    if list_lost {
        let keys: Vec<String> = c.lost.iter().map(|k| format!("{k:?}")).collect();
        s.push_str(": ");
        s.push_str(&keys.join(", "));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chord::Params;

    #[test]
    fn the_sentences_name_what_happened() {
        let mut w = World::bulk(
            Params::new(16, 1),
            1,
            ["node-0", "node-2"].map(|n| (n.to_owned(), None)),
        )
        .unwrap();
        assert_eq!(free_names(&w, 2), ["node-1", "node-3"]);
        let said = join(&mut w, "node-1", None).unwrap();
        assert!(
            said.starts_with("joined node-1 (") && said.contains("; successor "),
            "{said}"
        );
        w.converge(50).unwrap();
        w.put("k", serde_json::json!(1), None).unwrap();
        let holder = w.nodes().find(|n| n.store.len() == 1).unwrap().id;
        let c = crate::app::fail::crash(&mut w, &[holder], true).unwrap();
        let said = crashed(&c, true);
        assert!(
            said.ends_with("1 keys had no other copy and are lost: \"k\""),
            "{said}"
        );
        assert!(!crashed(&c, false).contains("\"k\""));
        let ids = w.physical("node-0").unwrap();
        let said = leave(&mut w, &ids).unwrap();
        assert!(
            said.contains(") left; its ") && said.ends_with("stored entries were handed over"),
            "{said}"
        );
    }
}
