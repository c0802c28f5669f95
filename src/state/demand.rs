//! Running a command on the nodes it touches, read from the file as it
//! reaches them: what makes `get`, `put` and `delete` cost O(log N) reads on
//! a ring of any size.
//!
//! The protocol's procedures are synchronous and the database is not, so a
//! procedure does not wait inside for a row. Instead a command runs on a
//! world holding the nodes read so far ([`World::on_demand`]); when it
//! reaches a node not read yet, that run stops getting answers and reports
//! the [`Miss`]; the node is read (one indexed query) and the command runs
//! again from the start, on a new world with one node more. The world
//! resumes the same counters and random stream each time, so every run
//! makes the same choices, and the last run, the one that needed nothing
//! more, is exactly the run on the whole ring: same answer, path, hops and
//! messages. Each row is read once, all inside the command's transaction.

use super::census::Census;
use super::load::{NodeRow, node_row};
use super::open::classify;
use super::slice::{read_slice, slice_of, slice_row};
use super::{Loaded, State, StateError, codec};
use crate::chord::store::{Key, Versioned};
use crate::chord::{Id, NodeId, Params};
use crate::sim::{Counters, Directory, Miss, World};
use std::collections::BTreeMap;

/// How a command that touches a few nodes reads the ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Reading {
    /// Only the nodes it reaches, as it reaches them ([`State::on_demand`]).
    #[default]
    OnDemand,
    /// Every node first ([`State::load`]): the same answers, at the cost of
    /// the whole ring; for comparison.
    Whole,
}

/// A node row by address, and by name.
const NODE_BY_ADDR: &str = "SELECT nid, addr, name, routing FROM nodes WHERE addr = ?";
const NODE_BY_NAME: &str = "SELECT nid, addr, name, routing FROM nodes WHERE name = ?";

/// Runs a command may take before it is deemed not to settle: each run
/// reads something new, so only a bug gets near it.
const MAX_RUNS: usize = 100_000;

/// What a command read so far.
struct Part {
    params: Params,
    counters: Counters,
    census: Census,
    /// Nodes read, with their rows.
    read: BTreeMap<NodeId, NodeRow>,
    directory: Directory,
    /// The slice the command's key is in, if it has one.
    slice: Option<i64>,
    /// Every copy in that slice, by holder row id.
    copies: BTreeMap<i64, Vec<(Key, Versioned)>>,
}

impl Part {
    /// A new world holding what was read, resuming the saved counters.
    fn world(&self) -> World {
        let nodes = self
            .read
            .values()
            .map(|r| (r.name.clone(), r.node.clone()))
            .collect();
        let mut w = World::on_demand(self.params, self.counters, nodes, self.directory.clone());
        w.set_recording_changes(true);
        w
    }

    /// Adds a node row read; its copies in the command's slice go into
    /// its store. Returns its address.
    fn add(&mut self, mut row: NodeRow) -> NodeId {
        let id = row.node.id;
        if !self.read.contains_key(&id) {
            for (key, v) in self.copies.get(&row.nid).into_iter().flatten() {
                row.node.store.merge(key.clone(), v.clone());
            }
            self.read.insert(id, row);
        }
        id
    }

    /// What the command's last run leaves to save.
    fn into_loaded(self, world: World) -> Loaded {
        let mut held = super::Held::new();
        let mut kept = Vec::new();
        let read: BTreeMap<i64, NodeId> = self.read.values().map(|r| (r.nid, r.node.id)).collect();
        if let Some(slice) = self.slice {
            let mut holders = Vec::new();
            for (nid, copies) in self.copies {
                let id = read.get(&nid).copied();
                holders.push((nid, id));
                if id.is_none() {
                    kept.extend(copies.into_iter().map(|(k, v)| (slice, nid, k, v)));
                }
            }
            if !holders.is_empty() {
                held.insert(slice, holders);
            }
        }
        let nodes = self
            .read
            .into_iter()
            .map(|(id, r)| (id, (r.nid, r.routing)))
            .collect();
        Loaded {
            world,
            nodes,
            held,
            whole: false,
            fresh: false,
            kept,
            pending: BTreeMap::new(),
        }
    }
}

impl State {
    /// Runs `op` on the ring, reading only the nodes it reaches (see the
    /// module's documentation), with every copy of the keys in the slice of
    /// `key` if given, as [`super::Scope::Key`] does for a ring read whole.
    /// `op` may run many times and must depend on nothing but the world;
    /// what its last run returns is returned with the ring to save.
    pub async fn on_demand<T>(
        &mut self,
        key: Option<Id>,
        mut op: impl FnMut(&mut World) -> T,
    ) -> Result<(Loaded, T), StateError> {
        if !self.has_ring().await? {
            return Err(StateError::NoRing(self.path.clone()));
        }
        let params = self.params().await?;
        let counters = self.counters().await?;
        let census = self.census().await?;
        let mut part = Part {
            params,
            counters,
            directory: Directory {
                members: census.members(),
                ..Directory::default()
            },
            census,
            read: BTreeMap::new(),
            slice: key.map(|k| slice_of(params.bits, k)),
            copies: BTreeMap::new(),
        };
        if let Some(slice) = part.slice {
            self.read_copies(slice, &mut part.copies).await?;
        }
        for _ in 0..MAX_RUNS {
            let mut world = part.world();
            let out = op(&mut world);
            match world.take_miss() {
                None => return Ok((part.into_loaded(world), out)),
                Some(miss) => self.read_missing(&mut part, miss).await?,
            }
        }
        unreachable!("a command read {MAX_RUNS} rows one at a time without settling")
    }

    /// Runs `op` on the ring read as `reading` says, with every copy of
    /// the keys in the slice of `key` if given: [`State::on_demand`], or
    /// [`State::load`] and one run.
    pub async fn with_ring<T>(
        &mut self,
        key: Option<Id>,
        reading: Reading,
        mut op: impl FnMut(&mut World) -> T,
    ) -> Result<(Loaded, T), StateError> {
        match reading {
            Reading::OnDemand => self.on_demand(key, op).await,
            Reading::Whole => {
                let scope = key.map_or(super::Scope::Routing, super::Scope::Key);
                let mut loaded = self.load(scope).await?;
                let out = op(&mut loaded.world);
                Ok((loaded, out))
            }
        }
    }

    /// Every copy in `slice`, by holder row id.
    async fn read_copies(
        &mut self,
        slice: i64,
        into: &mut BTreeMap<i64, Vec<(Key, Versioned)>>,
    ) -> Result<(), StateError> {
        let row = sqlx::query("SELECT slice, data FROM slices WHERE slice = ?")
            .bind(slice)
            .fetch_optional(&mut self.conn)
            .await
            .map_err(|e| classify(&self.path, e))?;
        let Some(row) = row else { return Ok(()) };
        let (slice, data) = slice_row(&row).map_err(|e| self.damaged(e))?;
        read_slice(slice, data, |key, v, nid| {
            into.entry(nid).or_default().push((key.clone(), v.clone()));
            Some(())
        })
        .map_err(|e| self.damaged(e))
    }

    /// The node row `q` selects, if any.
    async fn one_node<'q>(
        &mut self,
        q: sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>>,
        params: Params,
    ) -> Result<Option<NodeRow>, StateError> {
        let row = q.fetch_optional(&mut self.conn).await.map_err(self.sql())?;
        row.map(|row| node_row(&row, params).map_err(|e| self.damaged(e)))
            .transpose()
    }

    /// Reads what a run missed into `part`.
    async fn read_missing(&mut self, part: &mut Part, miss: Miss) -> Result<(), StateError> {
        const COLUMNS: &str = "SELECT nid, addr, name, routing FROM nodes";
        let params = part.params;
        match miss {
            Miss::Node(id) => {
                let q = sqlx::query(NODE_BY_ADDR).bind(codec::node_id_bytes(id));
                match self.one_node(q, params).await? {
                    Some(r) => {
                        part.add(r);
                    }
                    None => part.directory.gone.push(id),
                }
            }
            Miss::Name(name) => {
                let q = sqlx::query(NODE_BY_NAME).bind(name.clone());
                match self.one_node(q, params).await? {
                    Some(r) => {
                        part.add(r);
                    }
                    None => {
                        part.directory.unknown_names.insert(name);
                    }
                }
            }
            Miss::Rank(rank) => {
                let bits = params.bits;
                let census_wrong = |st: &State| {
                    st.damaged(format!(
                        "the census (settings key \"census\") does not match table nodes at rank {rank}; `dht check --repair` recounts it"
                    ))
                };
                let Some((census_part, first, offset)) = part.census.locate(bits, rank) else {
                    return Err(census_wrong(self));
                };
                let row = sqlx::query(&format!(
                    "{COLUMNS} WHERE addr >= ? ORDER BY addr LIMIT 1 OFFSET ?"
                ))
                .bind(first.to_bytes().to_vec())
                .bind(offset as i64)
                .fetch_optional(&mut self.conn)
                .await
                .map_err(self.sql())?;
                let Some(row) = row else {
                    return Err(census_wrong(self));
                };
                let r = node_row(&row, params).map_err(|e| self.damaged(e))?;
                if super::census::part_of(bits, r.node.id.id()) != census_part {
                    return Err(census_wrong(self));
                }
                let id = part.add(r);
                part.directory.ranks.insert(rank, id);
            }
        }
        Ok(())
    }
}
