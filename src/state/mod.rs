//! The persistent ring: one SQLite database (via sqlx) holding the ring's
//! settings, every node's routing state, and every node's stored entries,
//! replicas included.
//!
//! Entries are stored by slice of the ring ([`SLICE_BITS`] leading bits of
//! the position): one row per slice, holding every copy of every key in it,
//! whichever nodes hold them, each distinct write written once with the row
//! ids of its holders ([`codec::put_slice`]). A million-key load with three
//! copies writes 4096 rows and each key's text and value once, not three
//! million rows (row by row, SQLite spent more time than everything else in
//! the load) nor three copies of each; a `get` reads the one row of its
//! slice.
//!
//! Each command opens it, reads what it needs (a `get` reads the nodes and the
//! row of one slice, never the whole table), runs, and writes
//! its changes back in one transaction. Writers take SQLite's write lock up
//! front (`BEGIN IMMEDIATE`), so two processes changing the same ring
//! serialize instead of losing each other's writes, and WAL mode gives readers
//! a consistent snapshot: nobody sees half a command. A command that fails or
//! is killed commits nothing.
//!
//! A file that is not ours, is from a newer format, or is damaged is refused
//! with an error that says so; it is never overwritten.

pub mod codec;

use crate::chord::store::{Key, Versioned};
use crate::chord::{Bits, Id, Node, NodeId, Params};
use crate::sim::{Counters, World};
use futures_util::TryStreamExt;
use ruint::aliases::U160;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{ConnectOptions, Connection, Row, SqliteConnection};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The format this build writes and reads. Files of format 1 (an entry per
/// row) and 2 (a row per node and slice, each copy written out) are upgraded
/// to 3 (a row per slice, each write once) when opened.
pub const FORMAT_VERSION: u32 = 3;
const FORMAT_NAME: &str = "dht-ring-state";

/// Entries are stored by this many leading bits of their position: 4096
/// slices of the ring, each a few hundred keys at a million keys.
pub const SLICE_BITS: u32 = 12;

/// The slice holding position `pos` on a ring of `bits`: its leading
/// [`SLICE_BITS`] bits (on narrower rings, the position itself).
pub fn slice_of(bits: Bits, pos: Id) -> i64 {
    let shift = bits.get().saturating_sub(SLICE_BITS);
    (pos.to_u160() >> shift as usize).to::<u64>() as i64
}

/// The positions slice `c` covers, first and last, in numeric order.
fn slice_span(bits: Bits, c: i64) -> (Id, Id) {
    let shift = bits.get().saturating_sub(SLICE_BITS) as usize;
    let lo = U160::from(c as u64) << shift;
    let hi = lo | ((U160::from(1u8) << shift) - U160::from(1u8));
    (Id::from_u160(lo), Id::from_u160(hi))
}

/// Why the state could not be used. Every variant leaves the file as it was.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// No state file, or one without a ring yet.
    #[error("no ring at {0}: create one with `dht init` or `dht load`")]
    NoRing(PathBuf),
    /// `init` over an existing ring without `--force`.
    #[error("a ring already exists at {0}; pass --force to replace it")]
    Exists(PathBuf),
    /// The file is some other program's data.
    #[error(
        "{0} is not a dht state file (no dht metadata in it); refusing to touch it: choose another --state path"
    )]
    NotOurs(PathBuf),
    /// A later dht wrote it.
    #[error(
        "{path} was written by a newer dht (state format {found}, this build reads {FORMAT_VERSION}); upgrade dht"
    )]
    NewerFormat {
        /// The file.
        path: PathBuf,
        /// Its format version.
        found: u32,
    },
    /// Parts of it do not decode.
    #[error(
        "{path} is damaged: {what}; restore it from a copy or start again with `dht init --force`"
    )]
    Damaged {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
    /// Another process held the write lock for too long.
    #[error("{0} is busy: another dht command held it for more than 30 s")]
    Busy(PathBuf),
    /// The database itself failed.
    #[error("state database {path}: {source}")]
    Sql {
        /// The file.
        path: PathBuf,
        /// The driver's error.
        source: sqlx::Error,
    },
}

/// How a command uses the state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Reads only, from a consistent snapshot.
    Read,
    /// Reads and writes an existing state file.
    Write,
    /// Like `Write`, creating the file if it does not exist.
    Create,
}

/// Which stored entries a command loads with the nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// None: routing only.
    Routing,
    /// Every copy of the keys in the slice holding this position (so every
    /// copy of the key there, and what saving that slice needs).
    Key(Id),
    /// All of them.
    All,
}

/// An open state file, inside one transaction.
pub struct State {
    conn: SqliteConnection,
    path: PathBuf,
}

/// A ring read from the state, with what is needed to write back only changes.
pub struct Loaded {
    /// The ring, with every store journaling its changes.
    pub world: World,
    nodes: BTreeMap<NodeId, (i64, Vec<u8>)>,
    /// (slice, node row id) of every copy read, sorted and without repeats:
    /// which nodes' stores a rewritten slice must gather, and which slices
    /// lose copies when a node departs.
    held: Vec<(i64, i64)>,
    /// Every slice was read ([`Scope::All`]): only then may nodes depart,
    /// since their copies must leave every slice holding them.
    whole: bool,
    /// Nothing of this ring is in the file yet: save writes it whole, with
    /// no journal to keep and no existing rows to update.
    fresh: bool,
}

impl Loaded {
    /// A ring not yet in the file: everything in it will be written.
    pub fn fresh(mut world: World) -> Loaded {
        world.set_journaling(false);
        Loaded {
            world,
            nodes: BTreeMap::new(),
            held: Vec::new(),
            whole: true,
            fresh: true,
        }
    }
}

/// What a save wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Saved {
    /// Node rows inserted, updated or deleted.
    pub nodes: usize,
    /// Slice rows inserted, updated or deleted.
    pub slices: usize,
}

impl State {
    fn sql(&self) -> impl Fn(sqlx::Error) -> StateError + '_ {
        |e| classify(&self.path, e)
    }

    /// Opens the state at `path` and starts a transaction: deferred for
    /// reads, immediate (taking the write lock, waiting up to 30 s for it)
    /// for writes.
    pub async fn open(path: &Path, access: Access) -> Result<State, StateError> {
        let path = path.to_path_buf();
        if access != Access::Create && !path.exists() {
            return Err(StateError::NoRing(path));
        }
        if access == Access::Create
            && let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        {
            std::fs::create_dir_all(dir).map_err(|e| StateError::Sql {
                path: path.clone(),
                source: e.into(),
            })?;
        }
        let opts = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(access == Access::Create)
            // Large pages: slice rows are kilobytes, and a million-key load
            // writes tens of megabytes twice (log, then checkpoint), one page
            // per write; 64 KiB pages make that sixteen times fewer writes. Applies to files this creates; SQLite keeps an existing
            // file's page size.
            .page_size(65536)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(30))
            // 32 MiB of page cache: commands read slices once and write
            // them once, so a larger cache only costs memory the kernel
            // must zero first.
            .pragma("cache_size", "-32768")
            // Large loads run long statements by design; they are not news.
            .disable_statement_logging();
        let mut conn = SqliteConnection::connect_with(&opts)
            .await
            .map_err(|e| classify(&path, e))?;
        let begin = if access == Access::Read {
            "BEGIN DEFERRED"
        } else {
            "BEGIN IMMEDIATE"
        };
        sqlx::query(begin)
            .execute(&mut conn)
            .await
            .map_err(|e| classify(&path, e))?;
        let mut state = State { conn, path };
        if state.check_format(access).await? < FORMAT_VERSION {
            state.upgrade(access).await?;
        }
        Ok(state)
    }

    /// Rewrites a file of an older format in this one, in its own
    /// transaction for a reader (which then reads on as usual) and inside the
    /// command's for a writer (so a failed command leaves the file as it
    /// was). Format 1 held an entry per row; format 2 a row per node and
    /// slice, with each node's copies written out.
    async fn upgrade(&mut self, access: Access) -> Result<(), StateError> {
        if access == Access::Read {
            self.run(&["ROLLBACK", "BEGIN IMMEDIATE"]).await?;
        }
        // Another process may have upgraded it while we waited for the lock.
        let version: u32 = self.meta("version").await?.parse().unwrap_or(0);
        if version < FORMAT_VERSION {
            tracing::info!(path = %self.path.display(), "upgrading state format {version} to {FORMAT_VERSION}");
            let bits = self.params().await?.bits;
            // Every copy, with its slice and holder.
            let mut copies: Vec<(i64, Key, Versioned, i64)> = Vec::new();
            let old_table = if version == 1 { "entries" } else { "chunks" };
            {
                let query = if version == 1 {
                    "SELECT nid, key_pos, key, version, value FROM entries"
                } else {
                    "SELECT nid, data FROM chunks"
                };
                let mut rows = sqlx::query(query).fetch(&mut self.conn);
                let mut bad = None;
                while let Some(row) = rows.try_next().await.map_err(|e| classify(&self.path, e))? {
                    let nid: i64 = row.get(0);
                    if version == 1 {
                        match format_one_entry(&row) {
                            Ok((key, v)) => copies.push((slice_of(bits, key.id), key, v, nid)),
                            Err(what) => {
                                bad = Some(what);
                                break;
                            }
                        }
                    } else {
                        let data: &[u8] = row.get(1);
                        if let Err(e) = codec::for_each_entry(data, |key, v| {
                            copies.push((slice_of(bits, key.id), key, v, nid))
                        }) {
                            bad = Some(format!("stored entries of node row {nid}: {e}"));
                            break;
                        }
                    }
                }
                drop(rows);
                if let Some(what) = bad {
                    return Err(self.damaged(what));
                }
            }
            self.run(&[CREATE_SLICES]).await?;
            copies.sort_unstable_by_key(|c| c.0);
            let mut batch = SliceBatch::new();
            for group in copies.chunk_by(|a, b| a.0 == b.0) {
                if batch.is_full() {
                    self.flush_slices(&mut batch, false).await?;
                }
                batch.start(group[0].0);
                let mut refs: Vec<codec::Copy> = group
                    .iter()
                    .map(|c| (c.1.id, &*c.1.text, &c.2, c.3))
                    .collect();
                codec::put_slice(&mut batch.raw, &mut refs);
            }
            self.flush_slices(&mut batch, false).await?;
            self.run(&[&format!("DROP TABLE {old_table}")]).await?;
            self.set_meta("version", &FORMAT_VERSION.to_string())
                .await?;
        }
        if access == Access::Read {
            self.run(&["COMMIT", "BEGIN DEFERRED"]).await?;
        }
        Ok(())
    }

    /// Runs statements without parameters, in order.
    async fn run(&mut self, stmts: &[&str]) -> Result<(), StateError> {
        for stmt in stmts {
            sqlx::query(stmt)
                .execute(&mut self.conn)
                .await
                .map_err(self.sql())?;
        }
        Ok(())
    }

    /// Checks the file is a dht state this build can read; returns its
    /// format version (FORMAT_VERSION for a file still empty).
    async fn check_format(&mut self, access: Access) -> Result<u32, StateError> {
        let tables: Vec<String> =
            sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table'")
                .fetch_all(&mut self.conn)
                .await
                .map_err(self.sql())?;
        if tables.is_empty() {
            if access == Access::Create {
                return Ok(FORMAT_VERSION);
            }
            return Err(StateError::NoRing(self.path.clone()));
        }
        if !tables.iter().any(|t| t == "meta") {
            return Err(StateError::NotOurs(self.path.clone()));
        }
        let format: Option<String> =
            sqlx::query_scalar("SELECT value FROM meta WHERE key = 'format'")
                .fetch_optional(&mut self.conn)
                .await
                .map_err(self.sql())?;
        if format.as_deref() != Some(FORMAT_NAME) {
            return Err(StateError::NotOurs(self.path.clone()));
        }
        let version: u32 = self
            .meta("version")
            .await?
            .parse()
            .map_err(|_| self.damaged("unreadable format version"))?;
        if version > FORMAT_VERSION {
            return Err(StateError::NewerFormat {
                path: self.path.clone(),
                found: version,
            });
        }
        Ok(version)
    }

    fn damaged(&self, what: impl Into<String>) -> StateError {
        StateError::Damaged {
            path: self.path.clone(),
            what: what.into(),
        }
    }

    async fn meta(&mut self, key: &str) -> Result<String, StateError> {
        let v: Option<String> = sqlx::query_scalar("SELECT value FROM meta WHERE key = ?")
            .bind(key)
            .fetch_optional(&mut self.conn)
            .await
            .map_err(self.sql())?;
        v.ok_or_else(|| self.damaged(format!("metadata {key:?} is missing")))
    }

    async fn set_meta(&mut self, key: &str, value: &str) -> Result<(), StateError> {
        sqlx::query("INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value")
            .bind(key)
            .bind(value)
            .execute(&mut self.conn)
            .await
            .map_err(self.sql())?;
        Ok(())
    }

    /// True when the file holds a ring.
    pub async fn has_ring(&mut self) -> Result<bool, StateError> {
        let exists: Option<String> = sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'nodes'",
        )
        .fetch_optional(&mut self.conn)
        .await
        .map_err(self.sql())?;
        if exists.is_none() {
            return Ok(false);
        }
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM nodes")
            .fetch_one(&mut self.conn)
            .await
            .map_err(self.sql())?;
        Ok(n > 0)
    }

    /// Makes the file hold an empty ring with these settings, replacing any
    /// ring it held (the caller has checked `--force`).
    pub async fn create(&mut self, params: Params, counters: Counters) -> Result<(), StateError> {
        self.run(&[
            "DROP TABLE IF EXISTS entries",
            "DROP TABLE IF EXISTS chunks",
            "DROP TABLE IF EXISTS slices",
            "DROP TABLE IF EXISTS nodes",
            "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID",
            "CREATE TABLE nodes (
                nid INTEGER PRIMARY KEY,
                addr BLOB NOT NULL UNIQUE,
                name TEXT NOT NULL UNIQUE,
                routing BLOB NOT NULL)",
            CREATE_SLICES,
        ])
        .await?;
        self.set_meta("format", FORMAT_NAME).await?;
        self.set_meta("version", &FORMAT_VERSION.to_string())
            .await?;
        self.set_meta(
            "params",
            &serde_json::to_string(&params).expect("params serialize"),
        )
        .await?;
        self.set_meta(
            "counters",
            &serde_json::to_string(&counters).expect("counters serialize"),
        )
        .await?;
        Ok(())
    }

    /// The ring's settings.
    pub async fn params(&mut self) -> Result<Params, StateError> {
        let p = self.meta("params").await?;
        serde_json::from_str(&p).map_err(|e| self.damaged(format!("ring settings: {e}")))
    }

    /// Reads the ring: every node, and the entries `scope` asks for. Every
    /// store journals its changes from here on, for [`State::save`].
    pub async fn load(&mut self, scope: Scope) -> Result<Loaded, StateError> {
        if !self.has_ring().await? {
            return Err(StateError::NoRing(self.path.clone()));
        }
        let params = self.params().await?;
        let counters: Counters = serde_json::from_str(&self.meta("counters").await?)
            .map_err(|e| self.damaged(format!("counters: {e}")))?;
        let rows = sqlx::query("SELECT nid, addr, name, routing FROM nodes")
            .fetch_all(&mut self.conn)
            .await
            .map_err(self.sql())?;
        let mut by_nid: BTreeMap<i64, Node> = BTreeMap::new();
        let mut names: BTreeMap<i64, String> = BTreeMap::new();
        let mut snapshot = BTreeMap::new();
        for row in rows {
            let nid: i64 = row.get(0);
            let addr: Vec<u8> = row.get(1);
            let name: String = row.get(2);
            let routing: Vec<u8> = row.get(3);
            let id = codec::decode_node_id(&addr)
                .map_err(|e| self.damaged(format!("node {name:?}: {e}")))?;
            let node = codec::decode(id, params, &routing)
                .map_err(|e| self.damaged(format!("node {name:?}: {e}")))?;
            snapshot.insert(id, (nid, routing));
            by_nid.insert(nid, node);
            names.insert(nid, name);
        }
        let query = match scope {
            Scope::Routing => None,
            Scope::Key(_) => Some("SELECT slice, data FROM slices WHERE slice = ?"),
            Scope::All => Some("SELECT slice, data FROM slices"),
        };
        let mut held: Vec<(i64, i64)> = Vec::new();
        if let Some(q) = query {
            let mut q = sqlx::query(q);
            if let Scope::Key(id) = scope {
                q = q.bind(slice_of(params.bits, id));
            }
            let mut rows = q.fetch(&mut self.conn);
            let mut bad = None;
            let mut holders: Vec<i64> = Vec::new();
            while let Some(row) = rows.try_next().await.map_err(|e| classify(&self.path, e))? {
                let slice: i64 = row.get(0);
                let data: &[u8] = row.get(1);
                holders.clear();
                let decoded = read_slice(slice, data, |key, v, nid| {
                    let node = by_nid.get_mut(&nid)?;
                    node.store.merge(key.clone(), v.clone());
                    if holders.last() != Some(&nid) {
                        holders.push(nid);
                    }
                    Some(())
                });
                if let Err(what) = decoded {
                    bad = Some(what);
                    break;
                }
                holders.sort_unstable();
                holders.dedup();
                held.extend(holders.iter().map(|&nid| (slice, nid)));
            }
            drop(rows);
            if let Some(what) = bad {
                return Err(self.damaged(what));
            }
        }
        let nodes: Vec<(String, Node)> = by_nid
            .into_iter()
            .map(|(nid, node)| (names.remove(&nid).unwrap_or_default(), node))
            .collect();
        let mut world = World::from_parts(params, counters, nodes);
        world.set_journaling(true);
        held.sort_unstable();
        Ok(Loaded {
            world,
            nodes: snapshot,
            held,
            whole: scope == Scope::All,
            fresh: false,
        })
    }

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
        let mut dirty: BTreeMap<i64, BTreeSet<i64>> = BTreeMap::new();
        let mut by_nid: BTreeMap<i64, NodeId> = BTreeMap::new();
        for id in live {
            let routing = codec::encode(loaded.world.node(id).expect("live node"));
            let nid = match loaded.nodes.get(&id) {
                Some((nid, old)) => {
                    if *old != routing {
                        sqlx::query("UPDATE nodes SET routing = ? WHERE nid = ?")
                            .bind(&routing)
                            .bind(nid)
                            .execute(&mut self.conn)
                            .await
                            .map_err(|e| classify(&self.path, e))?;
                        saved.nodes += 1;
                    }
                    *nid
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
                    nid
                }
            };
            by_nid.insert(nid, id);
            if !loaded.fresh {
                let node = loaded.world.node_mut(id).expect("live node");
                for k in node.store.take_journal() {
                    dirty.entry(slice_of(bits, k.id)).or_default().insert(nid);
                }
            }
        }
        if loaded.fresh {
            let nodes: Vec<(NodeId, i64)> = by_nid.iter().map(|(&nid, &id)| (id, nid)).collect();
            saved.slices += self.write_fresh(loaded, nodes).await?;
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
                let mut copies: Vec<codec::Copy> = Vec::new();
                gather_slice(
                    &loaded.world,
                    slice,
                    holders.into_iter().map(|nid| (nid, by_nid[&nid])),
                    &mut copies,
                );
                if copies.is_empty() {
                    emptied.push(slice);
                    continue;
                }
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
        let counters = serde_json::to_string(&loaded.world.counters()).expect("counters serialize");
        self.set_meta("counters", &counters).await?;
        Ok(saved)
    }

    /// Writes every slice of a ring new to the file. Two threads encode
    /// while this task writes: encoding is mostly waiting on memory (every
    /// entry's text and value live elsewhere), so it takes longer than the
    /// writes and splits well. The world is lent to the threads and comes
    /// back when they are done, error or not.
    async fn write_fresh(
        &mut self,
        loaded: &mut Loaded,
        nodes: Vec<(NodeId, i64)>,
    ) -> Result<usize, StateError> {
        const ENCODERS: usize = 2;
        let params = loaded.world.params();
        let holders = slice_holders(&loaded.world, &nodes);
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
                source: sqlx::Error::Io(e),
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
        written
    }

    /// Writes the batch's slice rows (replacing existing ones when
    /// `upsert`) in one statement and empties it, keeping its buffer.
    /// Returns the rows written.
    async fn flush_slices(
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

    /// Makes the transaction's changes durable and visible.
    pub async fn commit(mut self) -> Result<(), StateError> {
        sqlx::query("COMMIT")
            .execute(&mut self.conn)
            .await
            .map_err(|e| classify(&self.path, e))?;
        self.conn
            .close()
            .await
            .map_err(|e| classify(&self.path, e))?;
        Ok(())
    }

    /// Calls `each` with every stored live entry (tombstones excluded),
    /// with the holding node's name and address, slice by slice in position
    /// order.
    async fn for_each_live_copy(
        &mut self,
        mut each: impl FnMut(&Arc<str>, NodeId, &Key, &Arc<serde_json::Value>),
    ) -> Result<(), StateError> {
        let mut nodes: BTreeMap<i64, (Arc<str>, NodeId)> = BTreeMap::new();
        for row in sqlx::query("SELECT nid, name, addr FROM nodes")
            .fetch_all(&mut self.conn)
            .await
            .map_err(self.sql())?
        {
            let name: String = row.get(1);
            let addr: &[u8] = row.get(2);
            let id = codec::decode_node_id(addr)
                .map_err(|e| self.damaged(format!("node {name:?}: {e}")))?;
            nodes.insert(row.get(0), (name.into(), id));
        }
        let mut rows =
            sqlx::query("SELECT slice, data FROM slices ORDER BY slice").fetch(&mut self.conn);
        let mut bad = None;
        while let Some(row) = rows.try_next().await.map_err(|e| classify(&self.path, e))? {
            let slice: i64 = row.get(0);
            let data: &[u8] = row.get(1);
            let decoded = read_slice(slice, data, |key, v, nid| {
                let (name, id) = nodes.get(&nid)?;
                if let Some(value) = &v.value {
                    each(name, *id, key, value);
                }
                Some(())
            });
            if let Err(what) = decoded {
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

    /// Calls `each` with every key that has a live copy (tombstones
    /// excluded), in key-position order (then key text), and its live
    /// copies with the names and addresses of the nodes holding them, for
    /// `dump`. One slice is in memory at a time, so a dump of millions of
    /// keys streams; `each` may take the copies out of the vector.
    pub async fn for_each_key(
        &mut self,
        mut each: impl FnMut(&Key, &mut Vec<StoredCopy>),
    ) -> Result<(), StateError> {
        // A slice holds each key's copies together, so a key's group ends
        // where another key starts.
        let mut group: Vec<StoredCopy> = Vec::new();
        self.for_each_live_copy(|name, node, key, value| {
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

    /// Live keys held per node, for `ring`.
    pub async fn key_counts(&mut self) -> Result<BTreeMap<String, Vec<Id>>, StateError> {
        let mut out: BTreeMap<String, Vec<Id>> = BTreeMap::new();
        self.for_each_live_copy(|name, _, key, _| match out.get_mut(&**name) {
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

/// Slice rows on their way to the file: (slice, where its sealed bytes
/// start in `arena`); each ends where the next starts. The row being filled
/// collects its entries in `raw` and is sealed ([`codec::seal_row`]) when
/// the next row starts or the batch is written.
struct SliceBatch {
    arena: Vec<u8>,
    rows: Vec<(i64, usize)>,
    raw: Vec<u8>,
    open: bool,
    z: zstd::bulk::Compressor<'static>,
}

impl SliceBatch {
    /// Rows per statement (200 parameters), and bytes per statement.
    const ROWS: usize = 100;
    const BYTES: usize = 4 << 20;

    fn new() -> SliceBatch {
        SliceBatch {
            arena: Vec::new(),
            rows: Vec::new(),
            raw: Vec::new(),
            open: false,
            z: codec::row_compressor(),
        }
    }

    fn is_full(&self) -> bool {
        self.rows.len() >= Self::ROWS || self.arena.len() + self.raw.len() >= Self::BYTES
    }

    /// Starts a row; entries appended to `raw` from now on belong to it.
    fn start(&mut self, slice: i64) {
        self.seal();
        self.rows.push((slice, self.arena.len()));
        self.open = true;
    }

    /// Seals the row being filled, if any.
    fn seal(&mut self) {
        if std::mem::take(&mut self.open) {
            codec::seal_row(&self.raw, &mut self.arena, &mut self.z);
            self.raw.clear();
        }
    }
}

/// For every slice holding stored copies, the nodes (row id, address) whose
/// stores have entries in it, in slice order. Each store is searched once
/// per slice it has entries in, not read through.
fn slice_holders(world: &World, nodes: &[(NodeId, i64)]) -> Vec<(i64, Vec<(i64, NodeId)>)> {
    let bits = world.bits();
    let last = (1i64 << SLICE_BITS.min(bits.get())) - 1;
    let top = slice_span(bits, last).1;
    let mut by_slice: BTreeMap<i64, Vec<(i64, NodeId)>> = BTreeMap::new();
    for &(id, nid) in nodes {
        let store = &world.node(id).expect("live node").store;
        let mut from = Id::ZERO;
        while let Some((pos, _, _)) = store.iter_refs_between(from, top).next() {
            let slice = slice_of(bits, pos);
            by_slice.entry(slice).or_default().push((nid, id));
            if slice == last {
                break;
            }
            from = slice_span(bits, slice + 1).0;
        }
    }
    by_slice.into_iter().collect()
}

/// One encoder of [`State::write_fresh`]: every slice given, gathered from
/// its holders' stores and sent in full batches. Stops early when the
/// writer stops receiving.
fn encode_fresh(
    world: &World,
    slices: Vec<(i64, Vec<(i64, NodeId)>)>,
    full: &tokio::sync::mpsc::Sender<SliceBatch>,
    spares: &Mutex<Vec<SliceBatch>>,
) {
    let spare = || {
        spares
            .lock()
            .expect("no encoder panics")
            .pop()
            .unwrap_or_else(SliceBatch::new)
    };
    let mut batch = spare();
    let mut copies: Vec<codec::Copy> = Vec::new();
    for (slice, holders) in slices {
        if batch.is_full()
            && full
                .blocking_send(std::mem::replace(&mut batch, spare()))
                .is_err()
        {
            return;
        }
        copies.clear();
        gather_slice(world, slice, holders, &mut copies);
        batch.start(slice);
        codec::put_slice(&mut batch.raw, &mut copies);
    }
    let _ = full.blocking_send(batch);
}

/// Appends to `copies` every entry in `slice` of the stores of `holders`
/// (node row id, address), each with its holder's row id: a slice row's
/// contents, for [`codec::put_slice`].
fn gather_slice<'w>(
    world: &'w World,
    slice: i64,
    holders: impl IntoIterator<Item = (i64, NodeId)>,
    copies: &mut Vec<codec::Copy<'w>>,
) {
    let (lo, hi) = slice_span(world.bits(), slice);
    for (nid, id) in holders {
        let store = &world.node(id).expect("live node").store;
        copies.extend(
            store
                .iter_refs_between(lo, hi)
                .map(|(pos, text, v)| (pos, text, v, nid)),
        );
    }
}

/// The slices table: one row per slice of the ring holding any copy.
const CREATE_SLICES: &str = "CREATE TABLE slices (
    slice INTEGER PRIMARY KEY,
    data BLOB NOT NULL)";

/// Decodes slice row `slice`, calling `each` with every copy and its
/// holder's row id; `each` answers None for a holder that is not a node.
/// Returns what is damaged: the row, or a copy held by no node.
fn read_slice(
    slice: i64,
    data: &[u8],
    mut each: impl FnMut(&Key, &Versioned, i64) -> Option<()>,
) -> Result<(), String> {
    let mut orphan = None;
    codec::for_each_copy(data, |key, v, nid| {
        if orphan.is_none() && each(key, v, nid).is_none() {
            orphan = Some(nid);
        }
    })
    .map_err(|e| format!("stored entries of slice {slice}: {e}"))?;
    match orphan {
        Some(nid) => Err(format!(
            "slice {slice} holds copies for no node (row id {nid})"
        )),
        None => Ok(()),
    }
}

/// A format-1 entry row (nid, key_pos, key, version, value) as a key and
/// its versioned value, or what is damaged about it.
fn format_one_entry(row: &sqlx::sqlite::SqliteRow) -> Result<(Key, Versioned), String> {
    let pos: &[u8] = row.get(1);
    let text: &str = row.get(2);
    let version: i64 = row.get(3);
    let value: Option<&str> = row.get(4);
    let pos = <[u8; 20]>::try_from(pos)
        .map(Id::from_bytes)
        .map_err(|_| format!("entry {text:?} has a malformed position"))?;
    let value = value
        .map(serde_json::from_str)
        .transpose()
        .map_err(|e| format!("entry {text:?} holds invalid JSON: {e}"))?;
    Ok((
        Key::new(pos, text),
        Versioned {
            version: version as u64,
            value,
        },
    ))
}

fn classify(path: &Path, e: sqlx::Error) -> StateError {
    if let sqlx::Error::Database(db) = &e {
        let code = db.code().unwrap_or_default();
        // SQLITE_NOTADB (26) and SQLITE_CORRUPT (11), with extended codes.
        let primary = code.parse::<i64>().map(|c| c & 0xff).unwrap_or(-1);
        if primary == 26 {
            return StateError::NotOurs(path.to_path_buf());
        }
        if primary == 11 {
            return StateError::Damaged {
                path: path.to_path_buf(),
                what: db.message().to_owned(),
            };
        }
        if primary == 5 || primary == 6 {
            return StateError::Busy(path.to_path_buf());
        }
    }
    StateError::Sql {
        path: path.to_path_buf(),
        source: e,
    }
}
