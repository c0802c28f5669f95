//! Writing a ring back: changed node rows, the slices holding changed or
//! departed copies, and the world's counters; a new ring written whole.

use super::census::Census;
use super::open::classify;
use super::slice::{SliceBatch, encode_fresh, gather_slice, slice_holders, slice_of};
use super::{Loaded, Saved, State, StateError, codec};
use crate::chord::NodeId;
use crate::sim::World;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

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
        let bits = loaded.world.bits();
        let live: Vec<NodeId> = loaded.world.members().collect();
        // Departed nodes' rows go; their copies leave their slices below.
        let mut departed: Vec<i64> = Vec::new();
        for (id, (nid, _)) in &loaded.nodes {
            if live.binary_search(id).is_err() {
                assert!(
                    loaded.whole,
                    "a ring whose members change is loaded whole (Scope::All)"
                );
                sqlx::query("DELETE FROM nodes WHERE nid = ?")
                    .bind(nid)
                    .execute(&mut self.conn)
                    .await
                    .map_err(self.sql())?;
                saved.nodes += 1;
                departed.push(*nid);
            }
        }
        departed.sort_unstable();
        // Slices to rewrite, each with the live nodes (row ids) whose
        // stores hold copies in it.
        let mut dirty: BTreeMap<i64, BTreeSet<i64>> = std::mem::take(&mut loaded.pending);
        let mut by_nid: BTreeMap<i64, NodeId> = BTreeMap::new();
        let mut joined = false;
        // Node rows as now written, for the next save from this ring.
        let mut rewritten: Vec<(NodeId, i64, Vec<u8>)> = Vec::new();
        for &id in &live {
            let routing = codec::encode(loaded.world.node(id).expect("live node"));
            let nid = match loaded.nodes.get(&id) {
                Some((nid, old)) => {
                    let nid = *nid;
                    if *old != routing {
                        sqlx::query("UPDATE nodes SET routing = ? WHERE nid = ?")
                            .bind(&routing)
                            .bind(nid)
                            .execute(&mut self.conn)
                            .await
                            .map_err(|e| classify(&self.path, e))?;
                        saved.nodes += 1;
                        rewritten.push((id, nid, routing));
                    }
                    nid
                }
                None => {
                    let nid: i64 = sqlx::query_scalar(
                        "INSERT INTO nodes(addr, name, routing) VALUES (?, ?, ?) RETURNING nid",
                    )
                    .bind(codec::node_id_bytes(id))
                    .bind(loaded.world.name(id))
                    .bind(&routing)
                    .fetch_one(&mut self.conn)
                    .await
                    .map_err(|e| classify(&self.path, e))?;
                    saved.nodes += 1;
                    joined = true;
                    rewritten.push((id, nid, routing));
                    nid
                }
            };
            by_nid.insert(nid, id);
            if !loaded.fresh {
                let node = loaded.world.node_mut(id).expect("live node");
                for k in node.store.take_changes() {
                    dirty.entry(slice_of(bits, k.id)).or_default().insert(nid);
                }
            }
        }
        // The (slice, holder) pairs of every slice rewritten, as written.
        let mut rewritten_held: Vec<(i64, i64)> = Vec::new();
        let mut rewritten_slices: BTreeSet<i64> = BTreeSet::new();
        if loaded.fresh {
            let nodes: Vec<(NodeId, i64)> = by_nid.iter().map(|(&nid, &id)| (id, nid)).collect();
            let (n, held) = self.write_fresh(loaded, nodes).await?;
            saved.slices += n;
            rewritten_held = held;
        } else {
            for &(slice, nid) in &loaded.held {
                if departed.binary_search(&nid).is_ok() {
                    dirty.entry(slice).or_default();
                }
            }
            // Every live node that held copies in a dirty slice when it was
            // read holds them still (or has journaled what changed).
            for (slice, holders) in dirty.iter_mut() {
                let from = loaded.held.partition_point(|h| h.0 < *slice);
                holders.extend(
                    loaded.held[from..]
                        .iter()
                        .take_while(|h| h.0 == *slice)
                        .map(|h| h.1)
                        .filter(|nid| by_nid.contains_key(nid)),
                );
            }
            let mut batch = SliceBatch::new();
            let mut emptied: Vec<i64> = Vec::new();
            for (slice, holders) in dirty {
                if batch.is_full() {
                    saved.slices += self.flush_slices(&mut batch, true).await?;
                }
                let mut copies: Vec<codec::SliceCopy> = Vec::new();
                gather_slice(
                    &loaded.world,
                    slice,
                    holders.into_iter().map(|nid| (nid, by_nid[&nid])),
                    &mut copies,
                );
                // Copies of holders a ring read on demand did not read are
                // as they were.
                copies.extend(
                    loaded
                        .kept
                        .iter()
                        .filter(|c| c.0 == slice)
                        .map(|(_, nid, k, v)| (k.id, &*k.text, v, *nid)),
                );
                rewritten_slices.insert(slice);
                if copies.is_empty() {
                    emptied.push(slice);
                    continue;
                }
                let mut holders: Vec<i64> = copies.iter().map(|c| c.3).collect();
                holders.sort_unstable();
                holders.dedup();
                rewritten_held.extend(holders.into_iter().map(|nid| (slice, nid)));
                batch.start(slice);
                codec::put_slice(&mut batch.raw, &mut copies);
            }
            saved.slices += self.flush_slices(&mut batch, true).await?;
            saved.slices += emptied.len();
            for slice in emptied {
                sqlx::query("DELETE FROM slices WHERE slice = ?")
                    .bind(slice)
                    .execute(&mut self.conn)
                    .await
                    .map_err(self.sql())?;
            }
        }
        if joined || !departed.is_empty() {
            self.set_census(&Census::of(bits, live.iter().map(|id| id.id())))
                .await?;
        }
        let counters = serde_json::to_string(&loaded.world.counters()).expect("counters serialize");
        self.set_meta("counters", &counters).await?;
        // The ring in memory now matches the file (once this transaction
        // commits): a later save from it writes only what changes after.
        loaded
            .nodes
            .retain(|_, (nid, _)| departed.binary_search(nid).is_err());
        for (id, nid, routing) in rewritten {
            loaded.nodes.insert(id, (nid, routing));
        }
        if loaded.fresh {
            rewritten_held.sort_unstable();
            loaded.held = rewritten_held;
            loaded.fresh = false;
            loaded.world.set_recording_changes(true);
        } else {
            let old = std::mem::take(&mut loaded.held);
            loaded.held = merge_held(old, &rewritten_slices, &departed, rewritten_held);
        }
        loaded.kept.clear();
        Ok(saved)
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
    ) -> Result<(usize, Vec<(i64, i64)>), StateError> {
        const ENCODERS: usize = 2;
        let params = loaded.world.params();
        let holders = slice_holders(&loaded.world, &nodes);
        let held: Vec<(i64, i64)> = holders
            .iter()
            .flat_map(|(slice, hs)| hs.iter().map(move |&(nid, _)| (*slice, nid)))
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

/// The (slice, holder) pairs of `old` outside the `rewritten` slices and
/// not held by `departed` nodes, merged with `new`, the pairs of the
/// rewritten slices. Every list is sorted, and so is the result: one pass,
/// as a server saves often and a ring of many keys holds many pairs.
fn merge_held(
    old: Vec<(i64, i64)>,
    rewritten: &BTreeSet<i64>,
    departed: &[i64],
    new: Vec<(i64, i64)>,
) -> Vec<(i64, i64)> {
    debug_assert!(new.is_sorted() && old.is_sorted());
    let mut out = Vec::with_capacity(old.len() + new.len());
    let mut new = new.into_iter().peekable();
    let mut rewritten = rewritten.iter().peekable();
    for h in old {
        while rewritten.next_if(|&&r| r < h.0).is_some() {}
        if rewritten.peek() == Some(&&h.0) || departed.binary_search(&h.1).is_ok() {
            continue;
        }
        while let Some(n) = new.next_if(|n| *n < h) {
            out.push(n);
        }
        out.push(h);
    }
    out.extend(new);
    out
}

#[cfg(test)]
mod tests {
    use super::merge_held;
    use std::collections::BTreeSet;

    #[test]
    fn merge_held_replaces_rewritten_slices_and_drops_departed_nodes() {
        let old = vec![(1, 10), (1, 11), (2, 10), (3, 12), (5, 11), (5, 13)];
        let rewritten = BTreeSet::from([2, 4, 5]);
        let new = vec![(2, 11), (4, 10), (5, 13)];
        assert_eq!(
            merge_held(old, &rewritten, &[12], new),
            vec![(1, 10), (1, 11), (2, 11), (4, 10), (5, 13)]
        );
    }
}
