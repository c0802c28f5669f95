//! Streaming reads of the stored keys, one slice at a time, and of the
//! nodes, one row at a time: `dump`'s listing, and `ring`'s nodes and key
//! counts.

use super::column;
use super::load::{node_row, routing_checked};
use super::open::classify;
use super::slice::{read_slice, slice_of, slice_row};
use super::{Loaded, State, StateError, codec};
use crate::chord::store::Key;
use crate::chord::{Id, Node, NodeId, Params};
use futures_util::TryStreamExt;
use std::collections::{BTreeMap, HashMap};
use std::ops::ControlFlow;
use std::sync::Arc;

/// Node names and addresses by row id.
type Holders = BTreeMap<i64, (Arc<str>, NodeId)>;

impl State {
    /// Calls `each` with every stored live entry (tombstones excluded),
    /// with the holding node's name and address, slice by slice in position
    /// order; `check_routing` checks each node row against its checksum.
    async fn for_each_live_copy(
        &mut self,
        check_routing: bool,
        each: impl FnMut(&Arc<str>, NodeId, &Key, &Arc<serde_json::Value>),
    ) -> Result<(), StateError> {
        let nodes = self.holders(check_routing).await?;
        self.each_live_copy_of(&nodes, each).await
    }

    /// Every node's name and address by row id: the holders slice rows
    /// name. `check_routing` checks each node row against its checksum.
    async fn holders(&mut self, check_routing: bool) -> Result<Holders, StateError> {
        let mut nodes = Holders::new();
        self.each_name(check_routing, |nid, name, id| {
            nodes.insert(nid, (name.into(), id));
        })
        .await?;
        Ok(nodes)
    }

    /// [`State::for_each_live_copy`] with the holders already read.
    async fn each_live_copy_of(
        &mut self,
        nodes: &Holders,
        mut each: impl FnMut(&Arc<str>, NodeId, &Key, &Arc<serde_json::Value>),
    ) -> Result<(), StateError> {
        let q = sqlx::query("SELECT slice, data FROM slices ORDER BY slice");
        self.each_copy_of(q, |key, v, nid| {
            let (name, id) = nodes.get(&nid)?;
            if let Some(value) = &v.value {
                each(name, *id, key, value);
            }
            Some(())
        })
        .await
    }

    /// Calls `each` with every copy in the slice rows `q` selects (slice,
    /// data), and its holder's row id; `each` answers None for a holder
    /// that is not a node, which is damage. Reports the first damaged row.
    pub(super) async fn each_copy_of<'q>(
        &mut self,
        q: sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>>,
        mut each: impl FnMut(&Key, &crate::chord::store::Versioned, i64) -> Option<()>,
    ) -> Result<(), StateError> {
        self.each_row(q, |row| {
            let (slice, data) = slice_row(row)?;
            read_slice(slice, data, &mut each)
        })
        .await
    }

    /// Calls `each` with every copy in slice row `slice` (none when the
    /// slice holds nothing) and its holder's row id.
    pub(super) async fn each_copy_in(
        &mut self,
        slice: i64,
        each: impl FnMut(&Key, &crate::chord::store::Versioned, i64),
    ) -> Result<(), StateError> {
        self.each_copy_between(slice, slice, each).await
    }

    /// Calls `each` with every copy in the slice rows `from` to `to`, in
    /// slice order, and its holder's row id.
    pub(super) async fn each_copy_between(
        &mut self,
        from: i64,
        to: i64,
        mut each: impl FnMut(&Key, &crate::chord::store::Versioned, i64),
    ) -> Result<(), StateError> {
        let q = sqlx::query(
            "SELECT slice, data FROM slices WHERE slice BETWEEN ? AND ? ORDER BY slice",
        )
        .bind(from)
        .bind(to);
        self.each_copy_of(q, |k, v, nid| {
            each(k, v, nid);
            Some(())
        })
        .await
    }

    /// Calls `each` with every key that has a live copy (tombstones
    /// excluded), in key-position order (then key text), and its live
    /// copies with the names and addresses of the nodes holding them, for
    /// `dump`. One slice is in memory at a time, so a dump of millions of
    /// keys streams; `each` may take the copies out of the vector. Each
    /// node row is checked against its checksum as its name is read, since
    /// no command before it decoded the routing state.
    pub async fn for_each_key(
        &mut self,
        mut each: impl FnMut(&Key, &mut Vec<StoredCopy>),
    ) -> Result<(), StateError> {
        // A slice holds each key's copies together, so a key's group ends
        // where another key starts.
        let mut group: Vec<StoredCopy> = Vec::new();
        self.for_each_live_copy(true, |name, node, key, value| {
            if group.first().is_some_and(|c| c.key != *key) {
                let done = group[0].key.clone();
                each(&done, &mut group);
                group.clear();
            }
            group.push(StoredCopy {
                key: key.clone(),
                value: Arc::clone(value),
                node_name: Arc::clone(name),
                node,
            });
        })
        .await?;
        if let Some(first) = group.first() {
            let done = first.key.clone();
            each(&done, &mut group);
        }
        Ok(())
    }

    /// Positions of the live keys node `id` of `loaded` holds in (from, to]
    /// on the ring (the whole ring when from == to), for `ring --node`:
    /// only the slices covering that span are read.
    pub async fn keys_held(
        &mut self,
        loaded: &Loaded,
        id: NodeId,
        from: Id,
        to: Id,
    ) -> Result<Vec<Id>, StateError> {
        let Some(&(nid, _)) = loaded.nodes.get(&id) else {
            return Ok(Vec::new());
        };
        let bits = loaded.world.bits();
        let (first, last) = (slice_of(bits, bits.next(from)), slice_of(bits, to));
        let query = if from < to && first <= last {
            "SELECT slice, data FROM slices WHERE slice BETWEEN ? AND ? ORDER BY slice"
        } else {
            "SELECT slice, data FROM slices WHERE slice >= ? OR slice <= ? ORDER BY slice"
        };
        let q = sqlx::query(query).bind(first).bind(last);
        let mut held = Vec::new();
        self.each_copy_of(q, |key, v, holder| {
            if holder == nid && v.value.is_some() && key.id.in_half_open(from, to) {
                held.push(key.id);
            }
            Some(())
        })
        .await?;
        Ok(held)
    }

    /// Calls `each` with every node's row id, name and address;
    /// `check_routing` checks each row's routing state against its
    /// checksum on the way.
    async fn each_name(
        &mut self,
        check_routing: bool,
        mut each: impl FnMut(i64, String, NodeId),
    ) -> Result<(), StateError> {
        let q = sqlx::query(if check_routing {
            "SELECT nid, addr, name, routing FROM nodes"
        } else {
            "SELECT nid, addr, name FROM nodes"
        });
        self.each_row(q, |row| {
            if check_routing {
                routing_checked(row)?;
            }
            let (nid, name, id) = name_row(row)?;
            each(nid, name, id);
            Ok(())
        })
        .await
    }

    /// Calls `each` with every node in ring order and its name, decoded one
    /// row at a time, until it answers `Break`: `ring` lists a million
    /// nodes without holding them, and stops when its reader goes away.
    pub async fn for_each_node(
        &mut self,
        params: Params,
        mut each: impl FnMut(&str, &Node) -> ControlFlow<()>,
    ) -> Result<(), StateError> {
        let q = sqlx::query("SELECT nid, addr, name, routing FROM nodes ORDER BY addr");
        let mut rows = q.fetch(&mut self.conn);
        let mut bad = None;
        while let Some(row) = rows.try_next().await.map_err(|e| classify(&self.path, e))? {
            match node_row(&row, params) {
                Ok(r) => {
                    if each(&r.name, &r.node).is_break() {
                        break;
                    }
                }
                Err(what) => {
                    bad = Some(what);
                    break;
                }
            }
        }
        drop(rows);
        bad.map_or(Ok(()), |what| Err(self.damaged(what)))
    }

    /// Live keys held per node, for `ring`.
    pub async fn key_counts(&mut self) -> Result<BTreeMap<String, Vec<Id>>, StateError> {
        let nodes = self.holders(false).await?;
        self.key_counts_of(&nodes).await
    }

    /// Every node's name by address and the live keys held per node, the
    /// node rows read once: what `ring` and `ring --svg` list without
    /// building the ring. `check_routing` checks each node row's routing
    /// state against its checksum on the way, for a command that reads no
    /// routing state otherwise.
    pub async fn names_and_key_counts(
        &mut self,
        check_routing: bool,
    ) -> Result<(HashMap<NodeId, Arc<str>>, BTreeMap<String, Vec<Id>>), StateError> {
        let nodes = self.holders(check_routing).await?;
        let counts = self.key_counts_of(&nodes).await?;
        let names = nodes.into_values().map(|(name, id)| (id, name)).collect();
        Ok((names, counts))
    }

    /// Live keys held per node, the holders already read.
    async fn key_counts_of(
        &mut self,
        nodes: &Holders,
    ) -> Result<BTreeMap<String, Vec<Id>>, StateError> {
        let mut out: BTreeMap<String, Vec<Id>> = BTreeMap::new();
        self.each_live_copy_of(nodes, |name, _, key, _| match out.get_mut(&**name) {
            Some(ids) => ids.push(key.id),
            None => {
                out.insert(name.to_string(), vec![key.id]);
            }
        })
        .await?;
        Ok(out)
    }
}

/// One stored copy of a key, as `dump` lists it.
#[derive(Debug, Clone)]
pub struct StoredCopy {
    /// The key.
    pub key: Key,
    /// Its value.
    pub value: Arc<serde_json::Value>,
    /// The holding node's name (shared by all its copies).
    pub node_name: Arc<str>,
    /// The holding node's address.
    pub node: NodeId,
}

/// A row of `SELECT nid, addr, name ... FROM nodes`: (row id, name, address),
/// or what is damaged in it.
fn name_row(row: &sqlx::sqlite::SqliteRow) -> Result<(i64, String, NodeId), String> {
    let nid: i64 = column(row, 0).map_err(|e| format!("table nodes: {e}"))?;
    let in_row = |e: String| format!("table nodes, row {nid}: {e}");
    let addr: &[u8] = column(row, 1).map_err(in_row)?;
    let name: String = column(row, 2).map_err(in_row)?;
    let id =
        codec::decode_node_id(addr).map_err(|e| in_row(format!("node {name:?}: address: {e}")))?;
    Ok((nid, name, id))
}
