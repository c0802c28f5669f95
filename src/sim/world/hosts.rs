//! Physical nodes: on a ring with virtual nodes (V > 1) a name like `alpha`
//! stands for the V Chord nodes `alpha#0` … `alpha#V-1`, at the positions
//! those names hash to. Joining, leaving and crashing act on all of them at
//! once, as a machine joins, leaves or fails. On a ring without virtual
//! nodes a physical node is the one node of that name.

use super::{World, WorldError};
use crate::chord::{Lookup, NodeId, Params};
use std::sync::Arc;

/// What separates a physical node's name from its virtual node's number.
pub const VNODE_MARK: char = '#';

/// The physical node a virtual node's name belongs to (`host#i` runs on
/// `host`); a name without the mark is its own host.
pub fn host_of(name: &str) -> &str {
    name.rsplit_once(VNODE_MARK).map_or(name, |(host, _)| host)
}

impl World {
    /// The name of virtual node `i` of the physical node `host`.
    pub fn vnode_name(host: &str, i: u32) -> String {
        format!("{host}{VNODE_MARK}{i}")
    }

    /// The physical node `id` runs on, by name: its own name without
    /// virtual nodes, else its name without the `#i` suffix.
    pub fn host_name(&self, id: NodeId) -> String {
        let name = self.name(id);
        if !self.params.has_vnodes() {
            return name;
        }
        host_of(&name).to_owned()
    }

    /// The live nodes of the physical node `name`, in ring order. A virtual
    /// node's own name is refused: membership changes act on whole hosts.
    pub fn physical(&self, name: &str) -> Result<Vec<NodeId>, WorldError> {
        Self::physical_by(self.params, name, |n| self.find(n))
    }

    /// [`World::physical`], reading nodes first on a ring read on demand
    /// (see [`World::named`]).
    pub fn physical_named(&mut self, name: &str) -> Result<Vec<NodeId>, WorldError> {
        let params = self.params;
        Self::physical_by(params, name, |n| self.named(n))
    }

    /// The nodes of the physical node `name` on a ring of `params`, as
    /// `find` finds nodes by name.
    fn physical_by(
        params: Params,
        name: &str,
        mut find: impl FnMut(&str) -> Result<NodeId, WorldError>,
    ) -> Result<Vec<NodeId>, WorldError> {
        if !params.has_vnodes() {
            return Ok(vec![find(name)?]);
        }
        let mut ids = Self::vnodes_by(params.v(), name, &mut find)?;
        if ids.is_empty() {
            return Err(match find(name) {
                Ok(_) => WorldError::VirtualNode {
                    name: name.to_owned(),
                    host: host_of(name).to_owned(),
                },
                Err(e) => e,
            });
        }
        ids.sort_unstable();
        Ok(ids)
    }

    /// Checks `name` for a new physical node: a node name, and on a ring
    /// with virtual nodes one without the mark that numbers them.
    pub fn check_host_name(&self, name: &str) -> Result<(), WorldError> {
        super::check_name(name)?;
        if self.params.has_vnodes() && name.contains(VNODE_MARK) {
            return Err(WorldError::BadName(
                name.to_owned(),
                "on a ring with virtual nodes '#' separates a virtual node's number",
            ));
        }
        Ok(())
    }

    /// The live nodes among `host#0` … `host#V-1`, as `find` finds them by
    /// name (from memory, or read on demand), in the order of their numbers.
    pub fn vnodes_by(
        v: u32,
        host: &str,
        mut find: impl FnMut(&str) -> Result<NodeId, WorldError>,
    ) -> Result<Vec<NodeId>, WorldError> {
        let mut ids = Vec::new();
        for i in 0..v {
            match find(&Self::vnode_name(host, i)) {
                Ok(id) => ids.push(id),
                Err(WorldError::NoSuchNode(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(ids)
    }

    /// Names of the physical nodes, in the ring order of their first node.
    pub fn host_names(&self) -> Vec<String> {
        let mut seen = std::collections::BTreeSet::new();
        self.members()
            .map(|id| self.host_name(id))
            .filter(|h| seen.insert(h.clone()))
            .collect()
    }

    /// Adds the physical node `name`: one node without virtual nodes, else
    /// V nodes taking one block of incarnations (their host), each joining
    /// through `via` (default: a node the generator picks; the first ever
    /// creates the ring and the rest join through it). Every name and
    /// position is checked before any joins; if one join fails, those
    /// already made are taken out again (no other node links to a newcomer
    /// before maintenance), so the ring is as before.
    pub fn join_host(
        &mut self,
        name: &str,
        via: Option<NodeId>,
    ) -> Result<Vec<(NodeId, Option<Lookup>)>, WorldError> {
        if !self.params.has_vnodes() {
            return Ok(vec![self.join(name, None, via)?]);
        }
        self.check_host_name(name)?;
        if self.physical(name).is_ok() {
            return Err(WorldError::NameTaken(name.to_owned()));
        }
        let v = self.params.v();
        let names: Vec<String> = (0..v).map(|i| Self::vnode_name(name, i)).collect();
        let mut positions = Vec::with_capacity(names.len());
        for n in &names {
            let pos = self.position_for(n);
            self.check_new(n, pos)?;
            if let Some(k) = positions.iter().position(|&p| p == pos) {
                return Err(WorldError::IdTaken {
                    name: n.clone(),
                    id: self.bits().show(pos),
                    other: names[k].clone(),
                });
            }
            positions.push(pos);
        }
        let base = self.next_incarnation.div_ceil(v) * v;
        self.next_incarnation = base;
        let mut via = via;
        let mut joined: Vec<(NodeId, Option<Lookup>)> = Vec::new();
        for (n, pos) in names.iter().zip(positions) {
            match self.join(n, Some(pos), via) {
                Ok((id, lookup)) => {
                    via.get_or_insert(id);
                    joined.push((id, lookup));
                }
                Err(e) => {
                    for (id, _) in joined {
                        self.net.remove(id);
                        self.unregister(id);
                    }
                    return Err(e);
                }
            }
        }
        self.next_incarnation = base + v;
        Ok(joined)
    }

    /// The physical node of `ids` leaves gracefully: each of its nodes in
    /// turn hands its entries over and unlinks itself. The last host of a
    /// ring cannot leave (its last node has nobody to hand over to).
    pub fn leave_host(&mut self, ids: &[NodeId]) -> Result<(), WorldError> {
        if self.members().all(|m| ids.contains(&m)) {
            return Err(crate::chord::OpError::LastNode.into());
        }
        for &id in ids {
            self.leave(id)?;
        }
        Ok(())
    }

    /// Crashes every node of `ids` at once; returns the entries they held.
    pub fn fail_host(&mut self, ids: &[NodeId]) -> Result<usize, WorldError> {
        let mut entries = 0;
        for &id in ids {
            entries += self.fail(id)?.store.len();
        }
        Ok(entries)
    }

    /// Keys (in ring order) whose only live copies are on the nodes of
    /// `ids`: what crashing them together would lose.
    pub fn sole_copies_of(&self, ids: &[NodeId]) -> Vec<Arc<str>> {
        let mut alone: std::collections::BTreeSet<crate::chord::Key> = ids
            .iter()
            .filter_map(|&id| self.net.get(id))
            .flat_map(|n| n.store.iter_live().map(|(k, _)| k))
            .collect();
        for other in self.nodes().filter(|n| !ids.contains(&n.id)) {
            if alone.is_empty() {
                break;
            }
            alone.retain(|k| other.store.get(k).is_none());
        }
        alone.into_iter().map(|k| k.text).collect()
    }

    /// Zave's failure precondition for a whole host: a node not in `ids`
    /// whose successor list names no live node outside them.
    pub fn would_isolate_any(&self, ids: &[NodeId]) -> Option<NodeId> {
        self.nodes()
            .filter(|n| !ids.contains(&n.id))
            .find(|n| {
                !n.succs
                    .iter()
                    .any(|s| !ids.contains(s) && self.net.contains(*s))
            })
            .map(|n| n.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chord::Params;

    #[test]
    fn hosts_join_leave_and_crash_whole() {
        let params = Params::new(32, 2).with_vnodes(3);
        let mut w = World::new(params, 7);
        for h in ["a", "b", "c", "d"] {
            assert_eq!(w.join_host(h, None).unwrap().len(), 3);
        }
        w.converge(100).unwrap();
        assert_eq!(w.len(), 12);
        assert_eq!(w.host_names().len(), 4);
        let a = w.physical("a").unwrap();
        assert!(
            a.iter()
                .all(|&id| w.params().host(id) == w.params().host(a[0]))
        );
        assert!(matches!(
            w.physical("a#1"),
            Err(WorldError::VirtualNode { .. })
        ));
        assert!(matches!(
            w.join_host("a", None),
            Err(WorldError::NameTaken(_))
        ));
        for i in 0..40 {
            w.put(&format!("k{i}"), serde_json::json!(i), None).unwrap();
        }
        w.converge(100).unwrap();
        // Every key is on two hosts: crashing any one loses nothing.
        for h in w.host_names() {
            assert!(w.sole_copies_of(&w.physical(&h).unwrap()).is_empty(), "{h}");
        }
        w.fail_host(&a).unwrap();
        w.converge(100).unwrap();
        for i in 0..40 {
            let got = w.get(&format!("k{i}"), None).unwrap().result;
            assert_eq!(got.as_deref(), Some(&serde_json::json!(i)));
        }
        let b = w.physical("b").unwrap();
        w.leave_host(&b).unwrap();
        w.converge(100).unwrap();
        assert_eq!(w.len(), 6);
        for i in 0..40 {
            let got = w.get(&format!("k{i}"), None).unwrap().result;
            assert_eq!(got.as_deref(), Some(&serde_json::json!(i)));
        }
    }
}
