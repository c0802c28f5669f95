//! Reading the ring out of the state file: every node's routing state and
//! the slices of entries a command needs.

use super::column;
use super::open::classify;
use super::slice::{read_slice, slice_of, slice_row};
use super::{Loaded, Scope, State, StateError, codec};
use crate::chord::{Node, Params};
use crate::sim::Counters;
use crate::sim::World;
use futures_util::TryStreamExt;
use std::collections::BTreeMap;

impl State {
    /// Reads the ring: every node, and the entries `scope` asks for. Every
    /// store journals its changes from here on, for [`State::save`].
    pub async fn load(&mut self, scope: Scope) -> Result<Loaded, StateError> {
        if !self.has_ring().await? {
            return Err(StateError::NoRing(self.path.clone()));
        }
        let params = self.params().await?;
        let counters = self.counters().await?;
        let mut by_nid: BTreeMap<i64, Node> = BTreeMap::new();
        let mut names: BTreeMap<i64, String> = BTreeMap::new();
        let mut snapshot = BTreeMap::new();
        let q = sqlx::query("SELECT nid, addr, name, routing FROM nodes");
        self.each_row(q, |row| {
            let r = node_row(row, params)?;
            snapshot.insert(r.node.id, (r.nid, r.routing));
            by_nid.insert(r.nid, r.node);
            names.insert(r.nid, r.name);
            Ok(())
        })
        .await?;
        let query = match scope {
            Scope::Routing => None,
            Scope::Key(_) => Some("SELECT slice, data FROM slices WHERE slice = ?"),
            Scope::All => Some("SELECT slice, data FROM slices"),
        };
        let mut held = super::Held::new();
        if let Some(q) = query {
            let mut q = sqlx::query(q);
            if let Scope::Key(id) = scope {
                q = q.bind(slice_of(params.bits, id));
            }
            let mut holders: Vec<i64> = Vec::new();
            self.each_row(q, |row| {
                let (slice, data) = slice_row(row)?;
                holders.clear();
                read_slice(slice, data, |key, v, nid| {
                    let node = by_nid.get_mut(&nid)?;
                    node.store.merge(key.clone(), v.clone());
                    if holders.last() != Some(&nid) {
                        holders.push(nid);
                    }
                    Some(())
                })?;
                holders.sort_unstable();
                holders.dedup();
                let addressed = holders
                    .iter()
                    .map(|&nid| (nid, by_nid.get(&nid).map(|n| n.id)));
                held.insert(slice, addressed.collect());
                Ok(())
            })
            .await?;
        }
        let nodes: Vec<(String, Node)> = by_nid
            .into_iter()
            .map(|(nid, node)| (names.remove(&nid).unwrap_or_default(), node))
            .collect();
        let mut world = World::from_parts(params, counters, nodes);
        world.set_recording_changes(true);
        Ok(Loaded {
            world,
            nodes: snapshot,
            held,
            whole: scope == Scope::All,
            fresh: false,
            kept: Vec::new(),
            pending: BTreeMap::new(),
        })
    }

    /// The ring's settings, for a command that lists the stored keys
    /// without the nodes' routing state (`dump`): what [`State::load`]
    /// would refuse for its settings it refuses too (no ring, damaged
    /// settings or counters); [`State::for_each_key`] checks the node rows
    /// as it reads them.
    pub async fn listing_settings(&mut self) -> Result<Params, StateError> {
        if !self.has_ring().await? {
            return Err(StateError::NoRing(self.path.clone()));
        }
        let params = self.params().await?;
        self.counters().await?;
        Ok(params)
    }

    /// Calls `each` with every row `q` selects, one row at a time (a
    /// million rows held at once cost most of a gigabyte), stopping at the
    /// first that `each` finds damaged and reporting it.
    pub(super) async fn each_row<'q>(
        &mut self,
        q: sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>>,
        mut each: impl FnMut(&sqlx::sqlite::SqliteRow) -> Result<(), String>,
    ) -> Result<(), StateError> {
        let mut rows = q.fetch(&mut self.conn);
        let mut bad = None;
        while let Some(row) = rows.try_next().await.map_err(|e| classify(&self.path, e))? {
            if let Err(what) = each(&row) {
                bad = Some(what);
                break;
            }
        }
        drop(rows);
        match bad {
            Some(what) => Err(self.damaged(what)),
            None => Ok(()),
        }
    }

    /// The world's saved counters.
    pub(super) async fn counters(&mut self) -> Result<Counters, StateError> {
        serde_json::from_str(&self.meta("counters").await?)
            .map_err(|e| self.damaged(format!("counters: {e}")))
    }
}

/// A row of the nodes table as read.
pub(super) struct NodeRow {
    /// Its row id.
    pub(super) nid: i64,
    /// The node's name.
    pub(super) name: String,
    /// The routing blob as stored, to tell on save whether it changed.
    pub(super) routing: Vec<u8>,
    /// The node, its store empty.
    pub(super) node: Node,
}

/// Checks a row of `SELECT nid, addr, name, routing FROM nodes` against
/// its checksum, or says what is damaged in it, as [`node_row`] would.
pub(super) fn routing_checked(row: &sqlx::sqlite::SqliteRow) -> Result<(), String> {
    let nid: i64 = column(row, 0).map_err(|e| format!("table nodes: {e}"))?;
    let in_row = |e: String| format!("table nodes, row {nid}: {e}");
    let addr: &[u8] = column(row, 1).map_err(in_row)?;
    let name: &str = column(row, 2).map_err(in_row)?;
    let routing: &[u8] = column(row, 3).map_err(in_row)?;
    let id =
        codec::decode_node_id(addr).map_err(|e| in_row(format!("node {name:?}: address: {e}")))?;
    codec::verify_routing(id, routing)
        .map_err(|e| in_row(format!("node {name:?}: routing state: {e}")))
}

/// Decodes a row of `SELECT nid, addr, name, routing FROM nodes`, or says
/// what is damaged in it.
pub(super) fn node_row(row: &sqlx::sqlite::SqliteRow, params: Params) -> Result<NodeRow, String> {
    let nid: i64 = column(row, 0).map_err(|e| format!("table nodes: {e}"))?;
    let in_row = |e: String| format!("table nodes, row {nid}: {e}");
    let addr: Vec<u8> = column(row, 1).map_err(in_row)?;
    let name: String = column(row, 2).map_err(in_row)?;
    let routing: Vec<u8> = column(row, 3).map_err(in_row)?;
    let id =
        codec::decode_node_id(&addr).map_err(|e| in_row(format!("node {name:?}: address: {e}")))?;
    let node = codec::decode(id, params, &routing)
        .map_err(|e| in_row(format!("node {name:?}: routing state: {e}")))?;
    Ok(NodeRow {
        nid,
        name,
        routing,
        node,
    })
}
