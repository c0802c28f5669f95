//! Building a converged ring directly from the ideal, for simulations too
//! large to grow one join at a time, and the memory figure of a ring.

use super::World;
use super::WorldError;
use crate::chord::spec::Ideal;
use crate::chord::{Id, Node, NodeId, Params};

impl World {
    /// A converged ring built directly from the ideal (no messages): for
    /// simulations too large to grow one join at a time. Names are given with
    /// optional explicit ids.
    pub fn bulk(
        params: Params,
        seed: u64,
        nodes: impl IntoIterator<Item = (String, Option<Id>)>,
    ) -> Result<World, WorldError> {
        let mut w = World::new(params, seed);
        let mut all: Vec<(NodeId, String)> = nodes
            .into_iter()
            .map(|(name, id)| {
                super::check_name(&name)?;
                let pos = id.unwrap_or_else(|| w.position_for(&name));
                Ok((w.new_node_id(pos), name))
            })
            .collect::<Result<_, WorldError>>()?;
        all.sort_unstable_by_key(|(n, _)| n.id());
        for pair in all.windows(2) {
            if pair[0].0.id() == pair[1].0.id() {
                return Err(if pair[0].1 == pair[1].1 {
                    WorldError::NameTaken(pair[0].1.clone())
                } else {
                    WorldError::IdTaken {
                        name: pair[1].1.clone(),
                        id: params.bits.show(pair[0].0.id()),
                        other: pair[0].1.clone(),
                    }
                });
            }
        }
        w.members = all.iter().map(|p| p.0).collect();
        for (id, name) in all {
            if w.by_name.insert(name.clone(), id).is_some() {
                return Err(WorldError::NameTaken(name));
            }
            w.names.insert(id, name);
        }
        let ids: Vec<NodeId> = w.members.clone();
        if ids.is_empty() {
            return Ok(w);
        }
        let ideal = Ideal::new(&ids, params);
        w.net.reserve_addresses(w.next_incarnation as usize);
        for &id in &ids {
            let mut node = Node::create(id, params);
            node.pred = ideal.pred(id);
            node.succs = ideal.succs(id);
            node.succs.shrink_to_fit();
            node.preds = ideal.preds(id);
            node.preds.shrink_to_fit();
            node.fingers = ideal.fingers(id);
            node.replicated = node.neighbourhood();
            w.net.insert(node);
        }
        Ok(w)
    }

    /// Bytes of routing state per node (nodes, their lists and fingers, and
    /// the network's table), excluding stored data and names.
    pub fn routing_bytes(&self) -> usize {
        self.nodes()
            .map(|n| n.routing_bytes() - std::mem::size_of::<Node>())
            .sum::<usize>()
            + self.net.table_bytes()
    }
}
