//! The client verbs of a world: lookups (one or many in flight), put, get
//! and delete, each started at a given node or one the generator picks.

use super::World;
use super::WorldError;
use crate::chord::ops::{self, Outcome};
use crate::chord::{Id, Key, Lookup, NodeId, OpError};
use crate::sim::in_flight;
use serde_json::Value;
use std::sync::Arc;

impl World {
    /// Finds successor(key) starting at `from` (default: a node chosen by the
    /// generator).
    pub fn lookup(&mut self, key: Id, from: Option<NodeId>) -> Result<Lookup, WorldError> {
        self.begin_op();
        let start = self.start(from)?;
        let r = crate::chord::find_successor(&mut self.net, start, start, key);
        self.sync_crashes();
        Ok(r?)
    }

    /// Many lookups, each `(key, start node)`, with several in flight at
    /// once ([`in_flight::find_successors`]): the answers are those of
    /// [`World::lookup`] one by one, in the same order, and cost the same
    /// messages, only faster to simulate. A query whose start node is not a
    /// member answers `OpError::NotRunning` and sends nothing (checked as
    /// its first step runs, not in a pass of its own over every start:
    /// that pass would wait on memory once per query).
    pub fn lookup_many(&mut self, queries: &[(Id, NodeId)]) -> Vec<Result<Lookup, OpError>> {
        self.begin_op();
        let r = in_flight::find_successors(&mut self.net, queries.iter().map(|&(k, s)| (s, k)));
        self.sync_crashes();
        r
    }

    /// Stores `value` under `key`; returns the value it replaced.
    pub fn put(
        &mut self,
        key: &str,
        value: Value,
        from: Option<NodeId>,
    ) -> Result<Outcome<Option<Arc<Value>>>, WorldError> {
        self.put_shared(Arc::from(key), value, from)
    }

    /// [`World::put`] of a key text the caller already holds shared (a bulk
    /// load's records carry theirs so): the ring's copies use that text
    /// instead of a copy of it.
    pub fn put_shared(
        &mut self,
        key: Arc<str>,
        value: Value,
        from: Option<NodeId>,
    ) -> Result<Outcome<Option<Arc<Value>>>, WorldError> {
        self.begin_op();
        let start = self.start(from)?;
        let key = Key::new(self.bits().hash(&key), key);
        let version = self.tick();
        let r = ops::put(&mut self.net, start, &key, Arc::new(value), version);
        self.sync_crashes();
        Ok(r?)
    }

    /// Reads `key` from the first live node holding it.
    pub fn get(
        &mut self,
        key: &str,
        from: Option<NodeId>,
    ) -> Result<Outcome<Option<Arc<Value>>>, WorldError> {
        self.begin_op();
        let start = self.start(from)?;
        let key = self.key(key);
        let r = ops::get(&mut self.net, start, &key);
        self.sync_crashes();
        Ok(r?)
    }

    /// Removes `key`; returns the value it had.
    pub fn delete(
        &mut self,
        key: &str,
        from: Option<NodeId>,
    ) -> Result<Outcome<Option<Arc<Value>>>, WorldError> {
        self.begin_op();
        let start = self.start(from)?;
        let key = self.key(key);
        let version = self.tick();
        let r = ops::delete(&mut self.net, start, &key, version);
        self.sync_crashes();
        Ok(r?)
    }
}
