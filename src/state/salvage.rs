//! `check --repair`: what can be saved from a damaged state file. Every row
//! is read on its own; a node row whose routing state is damaged is rebuilt
//! from the ideal ring of the surviving members (maintenance then corrects
//! it), a node row whose address or name is damaged is dropped (as if the
//! node had crashed), and a damaged slice row is dropped with every copy it
//! held: each key keeps all its copies, replicas included, in its slice's
//! one row, so replication inside the file cannot restore it. The caller
//! writes what is left as a new ring in the same file.

use super::column;
use super::open::classify;
use super::slice::{read_slice, slice_row, slice_span};
use super::{State, StateError, codec};
use crate::chord::spec::Ideal;
use crate::chord::{Node, NodeId};
use crate::sim::{Counters, World};
use futures_util::TryStreamExt;
use std::collections::BTreeMap;

/// What salvaging a state file did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Salvage {
    /// Nodes whose routing state was rebuilt, with what was wrong.
    pub rebuilt: Vec<(String, String)>,
    /// Node rows dropped (address or name unreadable), by row id.
    pub dropped_nodes: Vec<(i64, String)>,
    /// Slice rows dropped: the slice, the positions it covered (as the ring
    /// shows ids), and what was wrong. Every key there is lost.
    pub dropped_slices: Vec<(i64, String, String, String)>,
}

impl Salvage {
    /// True when nothing was damaged.
    pub fn is_clean(&self) -> bool {
        self.rebuilt.is_empty() && self.dropped_nodes.is_empty() && self.dropped_slices.is_empty()
    }
}

impl State {
    /// Reads everything readable: the ring that can be saved, and what could
    /// not. The settings must be intact (their checksum was verified when
    /// the file was opened); without them nothing can be read.
    pub async fn salvage(&mut self) -> Result<(World, Salvage), StateError> {
        if !self.has_ring().await? {
            return Err(StateError::NoRing(self.path.clone()));
        }
        let params = self.params().await?;
        let counters: Counters = serde_json::from_str(&self.meta("counters").await?)
            .map_err(|e| self.damaged(format!("counters: {e}")))?;
        let mut report = Salvage::default();
        let rows = sqlx::query("SELECT nid, addr, name, routing FROM nodes")
            .fetch_all(&mut self.conn)
            .await
            .map_err(self.sql())?;
        let mut nodes: BTreeMap<i64, (String, Option<Node>, NodeId)> = BTreeMap::new();
        for row in rows {
            let Ok(nid) = column::<i64>(&row, 0) else {
                continue;
            };
            let ident = column::<String>(&row, 2).and_then(|name| {
                let addr: Vec<u8> = column(&row, 1)?;
                let id = codec::decode_node_id(&addr).map_err(|e| e.to_string())?;
                Ok((name, id))
            });
            let (name, id) = match ident {
                Ok(x) => x,
                Err(why) => {
                    report.dropped_nodes.push((nid, why));
                    continue;
                }
            };
            let node = column::<Vec<u8>>(&row, 3)
                .and_then(|r| codec::decode(id, params, &r).map_err(|e| e.to_string()));
            match node {
                Ok(n) => {
                    nodes.insert(nid, (name, Some(n), id));
                }
                Err(why) => {
                    report.rebuilt.push((name.clone(), why));
                    nodes.insert(nid, (name, None, id));
                }
            }
        }
        // Damaged routing: the ideal ring of the members that survive.
        let members: Vec<NodeId> = nodes.values().map(|(_, _, id)| *id).collect();
        let ideal = (!members.is_empty()).then(|| Ideal::new(&members, params));
        for (_, node, id) in nodes.values_mut() {
            if node.is_none() {
                let ideal = ideal.as_ref().expect("a member exists");
                let mut n = Node::create(*id, params);
                n.pred = ideal.pred(*id);
                n.succs = ideal.succs(*id);
                n.preds = ideal.preds(*id);
                n.fingers = ideal.fingers(*id);
                *node = Some(n);
            }
        }
        let path = self.path.clone();
        let mut rows = sqlx::query("SELECT slice, data FROM slices").fetch(&mut self.conn);
        while let Some(row) = rows.try_next().await.map_err(|e| classify(&path, e))? {
            let (slice, data) = match slice_row(&row) {
                Ok(x) => x,
                Err(why) => {
                    report
                        .dropped_slices
                        .push((-1, String::new(), String::new(), why));
                    continue;
                }
            };
            // Decode into a scratch list first: a row damaged halfway must
            // not leave half its copies behind.
            let mut copies = Vec::new();
            let decoded = read_slice(slice, data, |key, v, nid| {
                copies.push((key.clone(), v.clone(), nid));
                Some(())
            });
            match decoded {
                Ok(()) => {
                    for (key, v, nid) in copies {
                        // Copies of a dropped node went with it.
                        if let Some((_, Some(node), _)) = nodes.get_mut(&nid) {
                            node.store.merge(key, v);
                        }
                    }
                }
                Err(why) => {
                    let (lo, hi) = slice_span(params.bits, slice);
                    report.dropped_slices.push((
                        slice,
                        params.bits.show(lo),
                        params.bits.show(hi),
                        why,
                    ));
                }
            }
        }
        drop(rows);
        let nodes: Vec<(String, Node)> = nodes
            .into_values()
            .filter_map(|(name, node, _)| node.map(|n| (name, n)))
            .collect();
        Ok((World::from_parts(params, counters, nodes), report))
    }
}
