//! A world holding only part of its ring (the nodes a command has read
//! from the state file so far) and what it knows of the rest: how it picks
//! members by rank, finds them by name, and reports what it lacks.

use super::{World, WorldError};
use crate::chord::{Node, NodeId, Params};
use crate::sim::network::{Miss, Network};
use crate::sim::world::Counters;
use std::collections::BTreeMap;

/// What a world holding only the nodes read so far knows of its whole ring
/// ([`World::on_demand`]): how many members it has, which member is at
/// which rank (ring order), and which names are no member's.
#[derive(Debug, Clone, Default)]
pub struct Directory {
    /// Members of the whole ring.
    pub members: usize,
    /// Members read by rank in ring order (0 holds the lowest id).
    pub ranks: BTreeMap<usize, NodeId>,
    /// Names looked up and found to be no member's.
    pub unknown_names: std::collections::BTreeSet<String>,
    /// Addresses looked up and found to be no member's.
    pub gone: Vec<NodeId>,
}

impl World {
    /// A world holding only part of its ring: the nodes read so far and
    /// what `directory` knows of the rest. It runs client verbs (lookups,
    /// put, get, delete) exactly as the whole ring would, as long as they
    /// touch only what was read; a verb that needs more gets nowhere (every
    /// request unreachable, or [`WorldError::NotRead`]) and [`World::take_miss`]
    /// says what to read before running it again on a new world. Verbs that
    /// change membership or run maintenance need the whole ring.
    pub fn on_demand(
        params: Params,
        counters: Counters,
        nodes: Vec<(String, Node)>,
        directory: Directory,
    ) -> World {
        let net = Network::on_demand(directory.gone.iter().copied());
        let mut w = World::resumed(params, counters, net, nodes);
        w.directory = Some(directory);
        w
    }

    /// What the last run needed and this partly read world did not hold
    /// (see [`World::on_demand`]); None when it had everything.
    pub fn take_miss(&mut self) -> Option<Miss> {
        self.net.take_miss()
    }

    fn not_read(&mut self, miss: Miss) -> WorldError {
        self.net.note_miss(miss);
        WorldError::NotRead
    }

    /// The live node at rank `i` in ring order (0 holds the lowest id).
    pub fn member_at(&mut self, i: usize) -> Result<NodeId, WorldError> {
        match &self.directory {
            None => self.members.get(i).copied().ok_or(WorldError::Empty),
            Some(d) => match d.ranks.get(&i) {
                Some(id) => Ok(*id),
                None if i < d.members => Err(self.not_read(Miss::Rank(i))),
                None => Err(WorldError::Empty),
            },
        }
    }

    /// A node's state as an observer sees it, None when it is not live; on
    /// a partly read ring a node not read yet is [`WorldError::NotRead`].
    pub fn look_at(&mut self, id: NodeId) -> Result<Option<&Node>, WorldError> {
        if self.net.contains(id) {
            return Ok(self.net.get(id));
        }
        if self.directory.is_some() && !self.net.is_gone(id) {
            return Err(self.not_read(Miss::Node(id)));
        }
        Ok(None)
    }

    /// [`World::find`], reading the node first on a ring read on demand
    /// (see [`World::on_demand`]).
    pub fn named(&mut self, name: &str) -> Result<NodeId, WorldError> {
        match self.find(name) {
            Err(WorldError::NotRead) => Err(self.not_read(Miss::Name(name.to_owned()))),
            other => other,
        }
    }
}
