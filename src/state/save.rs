//! Writing a ring back: changed node rows, the slices holding changed or
//! departed copies, and the world's counters; a new ring written whole.

use super::census::Census;
use super::open::classify;
use super::slice::{SliceBatch, encode_fresh, gather_slice, slice_holders, slice_of};
use super::{Held, Loaded, Saved, State, StateError, codec};
use crate::chord::NodeId;
use crate::sim::World;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

/// Slices to rewrite, each with the live nodes (row id, address) whose
/// stores hold copies in it.
type Dirty = BTreeMap<i64, BTreeSet<(i64, NodeId)>>;

/// A node row as a save wrote it: (address, row id, routing blob).
type Written = (NodeId, i64, Vec<u8>);

/// Node rows written per statement: at most four variables each, well
/// under SQLite's limit of 32,766.
const NODE_ROWS: usize = 1_000;

impl State {
    /// Writes back what changed since `load`: node rows added, changed or
    /// gone, the slices holding entries the stores journaled or copies of
    /// departed nodes (each rewritten whole from the stores of the nodes
    /// holding copies in it, which hold all of them: see [`Scope::Key`]),
    /// and the world's counters.
    ///
    /// Panics if nodes departed from a ring not loaded whole ([`Scope::All`]):
    /// their copies could be in slices never read.
    pub async fn save(&mut self, loaded: &mut Loaded) -> Result<Saved, StateError> {
        let mut saved = Saved::default();
        let (live, gone): (Vec<NodeId>, Vec<NodeId>) = changed_candidates(loaded)
            .into_iter()
            .partition(|id| is_member(&loaded.world, id));
        let departed = self.delete_departed(loaded, &gone, &mut saved).await?;
        let mut dirty = pending_slices(loaded);
        let (rewritten, joined) = self
            .write_node_rows(loaded, &live, &departed, &mut dirty, &mut saved)
            .await?;
        let rewritten_held = if loaded.fresh {
            let nodes = rewritten.iter().map(|(id, nid, _)| (*id, *nid)).collect();
            let (n, held) = self.write_fresh(loaded, nodes).await?;
            saved.slices += n;
            held
        } else {
            self.rewrite_slices(loaded, dirty, &departed, &mut saved)
                .await?
        };
        if joined || !departed.is_empty() {
            let bits = loaded.world.bits();
            self.set_census(&Census::of(bits, loaded.world.members().map(|id| id.id())))
                .await?;
        }
        let counters = serde_json::to_string(&loaded.world.counters()).expect("counters serialize");
        self.set_meta("counters", &counters).await?;
        remember_saved(loaded, &departed, rewritten, rewritten_held);
        Ok(saved)
    }

    /// Deletes the rows of the departed nodes among `gone` that the file
    /// holds; returns their row ids, sorted. Their copies leave their
    /// slices when those are rewritten.
    async fn delete_departed(
        &mut self,
        loaded: &Loaded,
        gone: &[NodeId],
        saved: &mut Saved,
    ) -> Result<Vec<i64>, StateError> {
        let mut departed: Vec<i64> = gone
            .iter()
            .filter_map(|id| loaded.nodes.get(id).map(|&(nid, _)| nid))
            .collect();
        assert!(
            departed.is_empty() || loaded.whole,
            "a ring whose members change is loaded whole (Scope::All)"
        );
        departed.sort_unstable();
        self.delete_rows("nodes", "nid", &departed).await?;
        saved.nodes += departed.len();
        Ok(departed)
    }

    /// Inserts the rows of new members and updates those whose routing
    /// changed, noting in `dirty` the slices of the entries each live
    /// node's store journaled. Returns the rows written and whether a node
    /// joined. `departed` (sorted) are the row ids this save deleted.
    async fn write_node_rows(
        &mut self,
        loaded: &mut Loaded,
        live: &[NodeId],
        departed: &[i64],
        dirty: &mut Dirty,
        saved: &mut Saved,
    ) -> Result<(Vec<Written>, bool), StateError> {
        let mut rewritten: Vec<Written> = Vec::new();
        let mut joining: Vec<(NodeId, Vec<u8>)> = Vec::new();
        for &id in live {
            let routing = codec::encode(loaded.world.node(id).expect("live node"));
            match loaded.nodes.get(&id) {
                Some((nid, old)) if *old != routing => rewritten.push((id, *nid, routing)),
                Some(_) => {}
                None => joining.push((id, routing)),
            }
        }
        self.update_node_rows(&rewritten).await?;
        let joined = !joining.is_empty();
        saved.nodes += rewritten.len() + joining.len();
        let above = departed.last().copied().unwrap_or(0);
        self.insert_node_rows(loaded, joining, above, &mut rewritten)
            .await?;
        if !loaded.fresh {
            let bits = loaded.world.bits();
            let written: BTreeMap<NodeId, i64> = rewritten.iter().map(|w| (w.0, w.1)).collect();
            for &id in live {
                let nid = match loaded.nodes.get(&id) {
                    Some(&(nid, _)) => nid,
                    None => written[&id],
                };
                let node = loaded.world.node_mut(id).expect("live node");
                for k in node.store.take_changes() {
                    dirty
                        .entry(slice_of(bits, k.id))
                        .or_default()
                        .insert((nid, id));
                }
            }
        }
        Ok((rewritten, joined))
    }

    /// Writes the changed routing of the node rows in `changed`, many per
    /// statement (a statement per row cost a maintenance round on 10^6
    /// nodes most of its save).
    async fn update_node_rows(&mut self, changed: &[Written]) -> Result<(), StateError> {
        for chunk in changed.chunks(NODE_ROWS) {
            let marks = vec!["(?, ?)"; chunk.len()].join(", ");
            let sql = format!(
                "UPDATE nodes SET routing = v.column2 FROM (VALUES {marks}) AS v \
                 WHERE nodes.nid = v.column1"
            );
            let mut q = sqlx::query(&sql);
            for (_, nid, routing) in chunk {
                q = q.bind(*nid).bind(routing);
            }
            q.execute(&mut self.conn)
                .await
                .map_err(|e| classify(&self.path, e))?;
        }
        Ok(())
    }

    /// Inserts the rows of the nodes `joining` (address, routing), many per
    /// statement, with row ids counted on from the largest in the file
    /// (this transaction holds the file) and above `above`, and adds them to
    /// `rewritten`. A statement per row cost a new ring of 10^6 nodes most
    /// of its save. A row id this save deleted is not given out again:
    /// [`update_held`] drops the departed ids after adding what this save
    /// wrote.
    async fn insert_node_rows(
        &mut self,
        loaded: &Loaded,
        joining: Vec<(NodeId, Vec<u8>)>,
        above: i64,
        rewritten: &mut Vec<Written>,
    ) -> Result<(), StateError> {
        if joining.is_empty() {
            return Ok(());
        }
        let largest: i64 = sqlx::query_scalar("SELECT coalesce(max(nid), 0) FROM nodes")
            .fetch_one(&mut self.conn)
            .await
            .map_err(|e| classify(&self.path, e))?;
        let mut next = largest.max(above) + 1;
        let mut rows = joining.into_iter().peekable();
        while rows.peek().is_some() {
            let chunk: Vec<(NodeId, Vec<u8>)> = rows.by_ref().take(NODE_ROWS).collect();
            let marks = vec!["(?, ?, ?, ?)"; chunk.len()].join(", ");
            let sql = format!("INSERT INTO nodes(nid, addr, name, routing) VALUES {marks}");
            let mut q = sqlx::query(&sql);
            for (i, (id, routing)) in chunk.iter().enumerate() {
                q = q
                    .bind(next + i as i64)
                    .bind(codec::node_id_bytes(*id))
                    .bind(loaded.world.name(*id))
                    .bind(routing);
            }
            q.execute(&mut self.conn)
                .await
                .map_err(|e| classify(&self.path, e))?;
            for (id, routing) in chunk {
                rewritten.push((id, next, routing));
                next += 1;
            }
        }
        Ok(())
    }

    /// Rewrites each dirty slice, and each slice a departed node (row ids
    /// in `departed`, sorted) held copies in, whole from the stores of its
    /// holders; deletes the slices left empty. Returns the holders of every
    /// slice rewritten, as written (an empty list: the row went).
    async fn rewrite_slices(
        &mut self,
        loaded: &mut Loaded,
        mut dirty: Dirty,
        departed: &[i64],
        saved: &mut Saved,
    ) -> Result<Held, StateError> {
        if !departed.is_empty() {
            for (slice, holders) in &loaded.held {
                if holders.iter().any(|h| departed.binary_search(&h.0).is_ok()) {
                    dirty.entry(*slice).or_default();
                }
            }
        }
        // Every live node that held copies in a dirty slice when it was
        // read holds them still (or has journaled what changed).
        for (slice, holders) in dirty.iter_mut() {
            if let Some(had) = loaded.held.get(slice) {
                holders.extend(had.iter().filter_map(|&(nid, id)| {
                    id.filter(|id| is_member(&loaded.world, id))
                        .map(|id| (nid, id))
                }));
            }
        }
        let mut rewritten_held = Held::new();
        let mut batch = SliceBatch::new();
        let mut emptied: Vec<i64> = Vec::new();
        for (slice, holders) in dirty {
            if batch.is_full() {
                saved.slices += self.flush_slices(&mut batch, true).await?;
            }
            let mut copies: Vec<codec::SliceCopy> = Vec::new();
            gather_slice(&loaded.world, slice, holders.iter().copied(), &mut copies);
            // Copies of holders a ring read on demand did not read are as
            // they were.
            copies.extend(
                loaded
                    .kept
                    .iter()
                    .filter(|c| c.0 == slice)
                    .map(|(_, nid, k, v)| (k.id, &*k.text, v, *nid)),
            );
            if copies.is_empty() {
                emptied.push(slice);
                rewritten_held.insert(slice, Vec::new());
                continue;
            }
            let mut nids: Vec<i64> = copies.iter().map(|c| c.3).collect();
            nids.sort_unstable();
            nids.dedup();
            // A holder not read (a ring read on demand) is known by its row
            // id only.
            let now: Vec<(i64, Option<NodeId>)> = nids
                .into_iter()
                .map(|nid| (nid, holders.iter().find(|h| h.0 == nid).map(|h| h.1)))
                .collect();
            rewritten_held.insert(slice, now);
            batch.start(slice);
            codec::put_slice(&mut batch.raw, &mut copies);
        }
        saved.slices += self.flush_slices(&mut batch, true).await?;
        saved.slices += emptied.len();
        self.delete_rows("slices", "slice", &emptied).await?;
        Ok(rewritten_held)
    }

    /// Deletes the rows of `table` whose `key` is one of `keys`, many per
    /// statement: a load's last save may empty every slice, a round of
    /// churn remove many nodes.
    async fn delete_rows(
        &mut self,
        table: &str,
        key: &str,
        keys: &[i64],
    ) -> Result<(), StateError> {
        for chunk in keys.chunks(500) {
            let marks = vec!["?"; chunk.len()].join(", ");
            let sql = format!("DELETE FROM {table} WHERE {key} IN ({marks})");
            let mut q = sqlx::query(&sql);
            for k in chunk {
                q = q.bind(k);
            }
            q.execute(&mut self.conn).await.map_err(self.sql())?;
        }
        Ok(())
    }

    /// Writes every slice of a ring new to the file. Two threads encode
    /// while this task writes: encoding is mostly waiting on memory (every
    /// entry's text and value live elsewhere), so it takes longer than the
    /// writes and splits well. The world is lent to the threads and comes
    /// back when they are done, error or not.
    pub(super) async fn write_fresh(
        &mut self,
        loaded: &mut Loaded,
        nodes: Vec<(NodeId, i64)>,
    ) -> Result<(usize, Held), StateError> {
        const ENCODERS: usize = 2;
        let params = loaded.world.params();
        let holders = slice_holders(&loaded.world, &nodes);
        let held: Held = holders
            .iter()
            .map(|(slice, hs)| {
                let mut hs: Vec<(i64, Option<NodeId>)> =
                    hs.iter().map(|&(nid, id)| (nid, Some(id))).collect();
                hs.sort_unstable();
                (*slice, hs)
            })
            .collect();
        let world = Arc::new(std::mem::replace(&mut loaded.world, World::new(params, 0)));
        let (full_tx, mut full_rx) = tokio::sync::mpsc::channel::<SliceBatch>(2 * ENCODERS);
        // Batches written come back here for reuse (buffers and compressor).
        let spares: Arc<Mutex<Vec<SliceBatch>>> = Arc::default();
        let mut encoders = Vec::new();
        let mut spawn_error = None;
        for e in 0..ENCODERS {
            // Runs of 64 slices in turn, so both threads have work to the end.
            let mine: Vec<(i64, Vec<(i64, NodeId)>)> = holders
                .iter()
                .filter(|(slice, _)| (*slice as usize / 64) % ENCODERS == e)
                .cloned()
                .collect();
            let (world, full_tx, spares) =
                (Arc::clone(&world), full_tx.clone(), Arc::clone(&spares));
            let spawned = std::thread::Builder::new()
                .name("dht-encode".into())
                .spawn(move || encode_fresh(&world, mine, &full_tx, &spares));
            match spawned {
                Ok(handle) => encoders.push(handle),
                Err(e) => {
                    spawn_error = Some(e);
                    break;
                }
            }
        }
        drop(full_tx);
        let mut written = match spawn_error {
            None => Ok(0),
            Some(e) => Err(StateError::Sql {
                path: self.path.clone(),
                cause: sqlx::Error::Io(e),
            }),
        };
        while written.is_ok()
            && let Some(mut batch) = full_rx.recv().await
        {
            match self.flush_slices(&mut batch, false).await {
                Ok(n) => {
                    if let Ok(w) = &mut written {
                        *w += n;
                    }
                    spares.lock().expect("no encoder panics").push(batch);
                }
                Err(e) => written = Err(e),
            }
        }
        // Encoders still sending stop when they find nobody receiving.
        drop(full_rx);
        for handle in encoders {
            handle.join().expect("the slice encoders do not panic");
        }
        loaded.world = Arc::try_unwrap(world)
            .unwrap_or_else(|_| unreachable!("every encoder has ended and dropped its share"));
        written.map(|n| (n, held))
    }
    /// Writes the batch's slice rows (replacing existing ones when
    /// `upsert`) in one statement and empties it, keeping its buffer.
    /// Returns the rows written.
    pub(super) async fn flush_slices(
        &mut self,
        batch: &mut SliceBatch,
        upsert: bool,
    ) -> Result<usize, StateError> {
        batch.seal();
        let n = batch.rows.len();
        if n == 0 {
            return Ok(0);
        }
        let mut sql = String::from("INSERT INTO slices(slice, data) VALUES ");
        for i in 0..n {
            sql.push_str(if i == 0 { "(?, ?)" } else { ", (?, ?)" });
        }
        if upsert {
            sql.push_str(" ON CONFLICT(slice) DO UPDATE SET data = excluded.data");
        }
        let mut q = sqlx::query(&sql);
        let ends = batch
            .rows
            .iter()
            .skip(1)
            .map(|r| r.1)
            .chain([batch.arena.len()]);
        for (&(slice, start), end) in batch.rows.iter().zip(ends) {
            q = q.bind(slice).bind(&batch.arena[start..end]);
        }
        q.execute(&mut self.conn).await.map_err(self.sql())?;
        batch.rows.clear();
        batch.arena.clear();
        Ok(n)
    }
}

/// The nodes that may have changed since `loaded` was read or last saved,
/// in address order: those its world noted as touched, or, when it noted
/// none (or nothing of it is in the file yet), every node read and every
/// member. A server saves after every group of writes, and encoding every
/// node to find the few that changed was most of a save on a large ring.
fn changed_candidates(loaded: &mut Loaded) -> Vec<NodeId> {
    let mut all: Vec<NodeId> = match loaded.world.take_touched() {
        Some(touched) if !loaded.fresh => touched.into_iter().collect(),
        _ => loaded
            .nodes
            .keys()
            .copied()
            .chain(loaded.world.members())
            .collect(),
    };
    all.sort_unstable();
    all.dedup();
    all
}

/// Whether `id` is a member of the ring now.
fn is_member(world: &World, id: &NodeId) -> bool {
    world.member_ids().binary_search(id).is_ok()
}

/// The slices a load's spill noted as changed (emptying the journals),
/// each with the live holders its row ids name.
fn pending_slices(loaded: &mut Loaded) -> Dirty {
    let mut dirty = Dirty::new();
    let pending = std::mem::take(&mut loaded.pending);
    if pending.is_empty() {
        return dirty;
    }
    let address: BTreeMap<i64, NodeId> = loaded
        .nodes
        .iter()
        .map(|(&id, &(nid, _))| (nid, id))
        .collect();
    for (slice, nids) in pending {
        dirty.entry(slice).or_default().extend(
            nids.into_iter()
                .filter_map(|nid| Some((nid, *address.get(&nid)?))),
        );
    }
    dirty
}

/// Makes the ring in memory match the file as the save left it (once its
/// transaction commits), so that a later save from it writes only what
/// changes after.
fn remember_saved(loaded: &mut Loaded, departed: &[i64], rewritten: Vec<Written>, held: Held) {
    if !departed.is_empty() {
        loaded
            .nodes
            .retain(|_, (nid, _)| departed.binary_search(nid).is_err());
    }
    for (id, nid, routing) in rewritten {
        loaded.nodes.insert(id, (nid, routing));
    }
    if loaded.fresh {
        loaded.held = held;
        loaded.fresh = false;
        loaded.world.set_recording_changes(true);
    } else {
        update_held(&mut loaded.held, held, departed);
    }
    loaded.kept.clear();
    // This save's own look at the stores changed nothing.
    loaded.world.take_touched();
}

/// Brings `held` up to date after a save: the slices in `rewritten` hold
/// what it says (an empty list: the slice's row went), and `departed`
/// nodes (row ids, sorted) hold nothing.
fn update_held(held: &mut Held, rewritten: Held, departed: &[i64]) {
    for (slice, holders) in rewritten {
        if holders.is_empty() {
            held.remove(&slice);
        } else {
            held.insert(slice, holders);
        }
    }
    if !departed.is_empty() {
        held.retain(|_, holders| {
            holders.retain(|h| departed.binary_search(&h.0).is_err());
            !holders.is_empty()
        });
    }
}

#[cfg(test)]
mod tests {
    use super::{Held, update_held};

    fn held(rows: &[(i64, &[i64])]) -> Held {
        rows.iter()
            .map(|(slice, nids)| (*slice, nids.iter().map(|&n| (n, None)).collect()))
            .collect()
    }

    #[test]
    fn update_held_replaces_rewritten_slices_and_drops_departed_nodes() {
        let mut old = held(&[(1, &[10, 11]), (2, &[10]), (3, &[12]), (5, &[11, 13])]);
        let rewritten = held(&[(2, &[11]), (4, &[10]), (5, &[13]), (6, &[])]);
        update_held(&mut old, rewritten, &[12]);
        assert_eq!(
            old,
            held(&[(1, &[10, 11]), (2, &[11]), (4, &[10]), (5, &[13])])
        );
    }
}
