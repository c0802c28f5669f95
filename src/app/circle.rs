//! The ring as a circle, for pictures: each node at the angle of its id
//! with the keys it serves, and where the keys lie, counted in bins so that
//! a ring of any size describes itself in bounded space. The web page draws
//! this from the API and `dht ring --svg` renders it (`output::svg`).

use crate::chord::{Id, Node, Params};
use crate::sim::World;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;

/// How many equal arcs the key positions are counted in: finer than a
/// picture shows, coarse enough to stay small for any number of keys.
pub const KEY_BINS: usize = 360;

/// How many equal arcs the nodes are counted in, for drawing a ring too
/// large to show a dot per node (two per degree: finer than a picture of
/// a few hundred pixels shows).
pub const NODE_BINS: usize = 720;

/// A ring as a picture needs it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Circle {
    /// Identifier width m.
    pub bits: u32,
    /// Replication factor r.
    pub replicas: u8,
    /// Live nodes in ring order; empty when the ring has more than the
    /// caller asked for (see [`Circle::summary`]).
    pub nodes: Vec<CircleNode>,
    /// Live nodes in all.
    pub node_count: usize,
    /// Live nodes whose position falls in each of [`NODE_BINS`] equal arcs,
    /// the first starting at id 0: a ring of any size drawn in bounded
    /// space.
    pub node_bins: Vec<u32>,
    /// Live keys in all.
    pub keys: usize,
    /// Live keys whose position falls in each of [`KEY_BINS`] equal arcs,
    /// the first starting at id 0.
    pub key_bins: Vec<u32>,
}

/// One node on the circle.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CircleNode {
    /// Its name.
    pub name: String,
    /// Its id, as the ring shows ids.
    pub id: String,
    /// Its angle as a fraction of a turn from id 0, clockwise.
    pub at: f64,
    /// The live keys it holds between the previous live node and itself.
    pub keys: usize,
}

impl Circle {
    /// The circle of `world`, where `held(node)` gives the positions of the
    /// live keys a node holds (its own and its replicas). A node counts the
    /// keys it holds between the previous live node and itself: the keys a
    /// `get` finds there, also just after a failure, before maintenance
    /// has told the node it took its dead predecessor's keys over.
    pub fn new<'a>(world: &'a World, mut held: impl FnMut(&'a Node) -> Vec<Id>) -> Circle {
        let nodes: Vec<&Node> = world.nodes().collect();
        let members: Vec<Id> = nodes.iter().map(|n| n.id.id()).collect();
        Circle::build(
            world.params(),
            &members,
            |i| world.name(nodes[i].id),
            |i| held(nodes[i]),
        )
    }

    /// The circle of a ring known by its members' positions and names
    /// alone, in ring order, with the positions of the live keys each holds
    /// counted apart, by name: what `dht ring --svg` draws without building
    /// the ring.
    pub fn of_members(
        params: Params,
        members: &[(Id, Arc<str>)],
        held: &BTreeMap<String, Vec<Id>>,
    ) -> Circle {
        let ids: Vec<Id> = members.iter().map(|(id, _)| *id).collect();
        Circle::build(
            params,
            &ids,
            |i| members[i].1.to_string(),
            |i| held.get(&*members[i].1).cloned().unwrap_or_default(),
        )
    }

    /// The circle of the members at positions `members` (ring order), the
    /// i-th named `name(i)` and holding live keys at `held(i)`.
    fn build(
        params: Params,
        members: &[Id],
        name: impl Fn(usize) -> String,
        mut held: impl FnMut(usize) -> Vec<Id>,
    ) -> Circle {
        let bits = params.bits;
        let mut key_bins = vec![0u32; KEY_BINS];
        let mut node_bins = vec![0u32; NODE_BINS];
        let mut keys = 0;
        let nodes = members
            .iter()
            .enumerate()
            .map(|(i, &at)| {
                // The arc from the previous live member, whatever the
                // node's own predecessor pointer says before maintenance
                // catches up with a failure.
                let prev = members[(i + members.len() - 1) % members.len()];
                let own: Vec<Id> = held(i)
                    .into_iter()
                    .filter(|k| k.in_half_open(prev, at))
                    .collect();
                for k in &own {
                    key_bins[bin(bits.fraction(*k), KEY_BINS)] += 1;
                }
                keys += own.len();
                let fraction = bits.fraction(at);
                node_bins[bin(fraction, NODE_BINS)] += 1;
                CircleNode {
                    name: name(i),
                    id: bits.show(at),
                    at: fraction,
                    keys: own.len(),
                }
            })
            .collect();
        Circle {
            bits: bits.get(),
            replicas: params.replicas,
            nodes,
            node_count: members.len(),
            node_bins,
            keys,
            key_bins,
        }
    }

    /// The circle of a ring held whole in memory, keys read from each
    /// node's store.
    pub fn in_memory(world: &World) -> Circle {
        Circle::new(world, |n| n.store.iter_live().map(|(k, _)| k.id).collect())
    }

    /// The circle of a ring whose keys were counted apart from its nodes
    /// (the state file's positions of held keys, by node name).
    pub fn counted(world: &World, held: &BTreeMap<String, Vec<Id>>) -> Circle {
        Circle::new(world, |n| {
            held.get(&world.name(n.id)).cloned().unwrap_or_default()
        })
    }

    /// Where the node named `name` sits, if it is on the circle.
    pub fn at_of(&self, name: &str) -> Option<f64> {
        self.nodes.iter().find(|n| n.name == name).map(|n| n.at)
    }

    /// The circle as counts alone, without the node list: what a picture
    /// of a ring too large for a dot per node needs (a few kilobytes for
    /// any size, where a million nodes listed are a hundred megabytes).
    pub fn summary(&self) -> Circle {
        Circle {
            bits: self.bits,
            replicas: self.replicas,
            nodes: Vec::new(),
            node_count: self.node_count,
            node_bins: self.node_bins.clone(),
            keys: self.keys,
            key_bins: self.key_bins.clone(),
        }
    }

    /// The live node nearest the position `at` (a fraction of a turn),
    /// either way round: the node a pointer at that angle means.
    pub fn near(&self, at: f64) -> Option<&CircleNode> {
        let n = self.nodes.len();
        if n == 0 {
            return None;
        }
        let after = self.nodes.partition_point(|c| c.at < at);
        let gap = |c: &CircleNode| {
            let d = (c.at - at).abs();
            d.min(1.0 - d)
        };
        let next = &self.nodes[after % n];
        let prev = &self.nodes[(after + n - 1) % n];
        Some(if gap(next) <= gap(prev) { next } else { prev })
    }

    /// The node named `name`, known to sit at `at` (its id's fraction):
    /// found by position, so a million-node circle needs no index of names.
    pub fn named(&self, name: &str, at: f64) -> Option<&CircleNode> {
        let from = self.nodes.partition_point(|c| c.at < at);
        // Ids differing below an f64's precision share a position.
        self.nodes[from..]
            .iter()
            .take_while(|c| c.at == at)
            .find(|c| c.name == name)
    }
}

/// The bin of a position among `bins` equal arcs.
fn bin(at: f64, bins: usize) -> usize {
    ((at * bins as f64) as usize).min(bins - 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chord::Params;

    #[test]
    fn every_key_is_counted_once_at_its_node_and_in_its_bin() {
        let mut w = World::bulk(
            Params::new(16, 3),
            1,
            (0..6).map(|i| (format!("n{i}"), None)),
        )
        .unwrap();
        for i in 0..40 {
            w.put(&format!("k{i}"), serde_json::json!(i), None).unwrap();
        }
        let c = Circle::in_memory(&w);
        assert_eq!(c.nodes.len(), 6);
        assert_eq!(c.keys, 40);
        assert_eq!(c.nodes.iter().map(|n| n.keys).sum::<usize>(), 40);
        assert_eq!(c.key_bins.iter().sum::<u32>(), 40);
        assert!(c.nodes.windows(2).all(|p| p[0].at < p[1].at));
        assert!(c.nodes.iter().all(|n| (0.0..1.0).contains(&n.at)));
        let k = w.key("k7").id;
        assert!(c.key_bins[bin(w.bits().fraction(k), KEY_BINS)] > 0);
        assert_eq!(c.node_count, 6);
        assert_eq!(c.node_bins.iter().sum::<u32>(), 6);
        for node in &c.nodes {
            assert!(c.node_bins[bin(node.at, NODE_BINS)] > 0);
            assert_eq!(c.near(node.at).unwrap().name, node.name);
            assert_eq!(c.named(&node.name, node.at).unwrap().id, node.id);
        }
        let s = c.summary();
        assert!(s.nodes.is_empty());
        assert_eq!((s.node_count, s.keys), (6, 40));
        // Just after a crash, before maintenance: the dead node's keys are
        // counted at the replica holder that now serves them.
        let victim = w.nodes().next().unwrap().id;
        w.fail(victim).unwrap();
        let c = Circle::in_memory(&w);
        assert_eq!(c.nodes.len(), 5);
        assert_eq!(c.keys, 40);
        assert_eq!(c.nodes.iter().map(|n| n.keys).sum::<usize>(), 40);
    }

    #[test]
    fn the_node_near_a_position_is_found_either_way_round() {
        let node = |name: &str, at: f64| CircleNode {
            name: name.into(),
            id: String::new(),
            at,
            keys: 0,
        };
        let c = Circle {
            bits: 8,
            replicas: 1,
            nodes: vec![node("a", 0.1), node("b", 0.5), node("c", 0.95)],
            node_count: 3,
            node_bins: vec![0; NODE_BINS],
            keys: 0,
            key_bins: vec![0; KEY_BINS],
        };
        let near = |at| c.near(at).unwrap().name.clone();
        assert_eq!(near(0.04), "a");
        assert_eq!(near(0.02), "c", "across id 0");
        assert_eq!(near(0.99), "c");
        assert_eq!(near(0.29), "a");
        assert_eq!(near(0.31), "b");
        assert_eq!(c.named("b", 0.5).unwrap().name, "b");
        assert!(c.named("b", 0.1).is_none());
        assert!(c.named("x", 0.5).is_none());
    }
}
