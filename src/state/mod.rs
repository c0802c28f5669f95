//! The persistent ring: one SQLite database (via sqlx) holding the ring's
//! settings, every node's routing state, and every node's stored entries,
//! replicas included.
//!
//! Each command opens it, reads what it needs (a `get` reads the nodes and the
//! few entries at one key position, never the whole table), runs, and writes
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
use crate::chord::{Id, Node, NodeId, Params};
use crate::sim::{Counters, World};
use futures_util::TryStreamExt;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{ConnectOptions, Connection, Row, SqliteConnection};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The format this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
const FORMAT_NAME: &str = "dht-ring-state";

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
    /// Those at one key position (every copy of one key).
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
            fresh: true,
        }
    }
}

/// What a save wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Saved {
    /// Node rows inserted, updated or deleted.
    pub nodes: usize,
    /// Entry rows inserted, updated or deleted.
    pub entries: usize,
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
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(30))
            .pragma("cache_size", "-262144")
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
        state.check_format(access).await?;
        Ok(state)
    }

    async fn check_format(&mut self, access: Access) -> Result<(), StateError> {
        let tables: Vec<String> =
            sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table'")
                .fetch_all(&mut self.conn)
                .await
                .map_err(self.sql())?;
        if tables.is_empty() {
            if access == Access::Create {
                return Ok(());
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
        Ok(())
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
        for stmt in [
            "DROP TABLE IF EXISTS entries",
            "DROP TABLE IF EXISTS nodes",
            "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID",
            "CREATE TABLE nodes (
                nid INTEGER PRIMARY KEY,
                addr BLOB NOT NULL UNIQUE,
                name TEXT NOT NULL UNIQUE,
                routing BLOB NOT NULL)",
            // Keyed by position first: every copy of one key is one short
            // range (what `get` reads), and rows written in key order
            // append to the B-tree. A departed node's rows go by a scan.
            "CREATE TABLE entries (
                key_pos BLOB NOT NULL,
                key TEXT NOT NULL,
                nid INTEGER NOT NULL REFERENCES nodes(nid) ON DELETE CASCADE,
                version INTEGER NOT NULL,
                value TEXT,
                PRIMARY KEY (key_pos, key, nid)) WITHOUT ROWID",
        ] {
            sqlx::query(stmt)
                .execute(&mut self.conn)
                .await
                .map_err(self.sql())?;
        }
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
            Scope::Key(_) => {
                Some("SELECT nid, key_pos, key, version, value FROM entries WHERE key_pos = ?")
            }
            Scope::All => Some("SELECT nid, key_pos, key, version, value FROM entries"),
        };
        if let Some(q) = query {
            let mut q = sqlx::query(q);
            if let Scope::Key(id) = scope {
                q = q.bind(id.to_bytes().to_vec());
            }
            let mut rows = q.fetch(&mut self.conn);
            let mut bad = None;
            while let Some(row) = rows.try_next().await.map_err(|e| classify(&self.path, e))? {
                let nid: i64 = row.get(0);
                let pos: Vec<u8> = row.get(1);
                let text: String = row.get(2);
                let version: i64 = row.get(3);
                let value: Option<String> = row.get(4);
                let Ok(pos) = <[u8; 20]>::try_from(pos.as_slice()) else {
                    bad = Some(format!("entry {text:?} has a malformed position"));
                    break;
                };
                let value = match value.map(|v| serde_json::from_str(&v)).transpose() {
                    Ok(v) => v,
                    Err(e) => {
                        bad = Some(format!("entry {text:?} holds invalid JSON: {e}"));
                        break;
                    }
                };
                let Some(node) = by_nid.get_mut(&nid) else {
                    bad = Some(format!("entry {text:?} belongs to no node"));
                    break;
                };
                node.store.merge(
                    Key {
                        id: Id::from_bytes(pos),
                        text,
                    },
                    Versioned {
                        version: version as u64,
                        value,
                    },
                );
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
        Ok(Loaded {
            world,
            nodes: snapshot,
            fresh: false,
        })
    }

    /// Writes back what changed since `load`: node rows added, changed or
    /// gone, entries the stores journaled, and the world's counters.
    pub async fn save(&mut self, loaded: &mut Loaded) -> Result<Saved, StateError> {
        let mut saved = Saved::default();
        let live: Vec<NodeId> = loaded.world.members().collect();
        // Departed nodes go with their entries.
        for (id, (nid, _)) in &loaded.nodes {
            if live.binary_search(id).is_err() {
                sqlx::query("DELETE FROM nodes WHERE nid = ?")
                    .bind(nid)
                    .execute(&mut self.conn)
                    .await
                    .map_err(self.sql())?;
                saved.nodes += 1;
            }
        }
        let mut upserts: Vec<(i64, Key, Versioned)> = Vec::new();
        let mut deletes: Vec<(i64, Key)> = Vec::new();
        let mut nids: BTreeMap<NodeId, i64> = BTreeMap::new();
        for id in live {
            let name = loaded.world.name(id);
            let node = loaded.world.node_mut(id).expect("live node");
            let routing = codec::encode(node);
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
                    .bind(&name)
                    .bind(&routing)
                    .fetch_one(&mut self.conn)
                    .await
                    .map_err(|e| classify(&self.path, e))?;
                    saved.nodes += 1;
                    nid
                }
            };
            let node = loaded.world.node_mut(id).expect("live node");
            nids.insert(id, nid);
            for key in node.store.take_journal() {
                match node.store.get_versioned(&key) {
                    Some(v) => upserts.push((nid, key, v.clone())),
                    None => deletes.push((nid, key)),
                }
            }
        }
        if loaded.fresh {
            saved.entries = self.write_all_entries(&loaded.world, &nids).await?;
        }
        saved.entries += upserts.len() + deletes.len();
        for (nid, key) in deletes {
            sqlx::query("DELETE FROM entries WHERE key_pos = ? AND key = ? AND nid = ?")
                .bind(key.id.to_bytes().to_vec())
                .bind(&key.text)
                .bind(nid)
                .execute(&mut self.conn)
                .await
                .map_err(self.sql())?;
        }
        let mut rows: Vec<EntryRow<'_>> = upserts
            .iter()
            .map(|(n, k, v)| (k.id, k.text.as_str(), *n, v))
            .collect();
        self.insert_entries(&mut rows, true).await?;
        let counters = serde_json::to_string(&loaded.world.counters()).expect("counters serialize");
        self.set_meta("counters", &counters).await?;
        Ok(saved)
    }

    /// Writes every entry of every store, for a ring new to the file: plain
    /// inserts in primary-key order (references are sorted, not rows).
    async fn write_all_entries(
        &mut self,
        world: &World,
        nids: &BTreeMap<NodeId, i64>,
    ) -> Result<usize, StateError> {
        let mut rows: Vec<EntryRow<'_>> = Vec::new();
        for n in world.nodes() {
            let nid = nids[&n.id];
            rows.extend(n.store.iter_refs().map(|(id, text, v)| (id, text, nid, v)));
        }
        self.insert_entries(&mut rows, false).await?;
        Ok(rows.len())
    }

    /// Inserts entry rows (updating existing ones when `upsert`) in key
    /// order, so they append to the B-tree rather than land anywhere, 500
    /// rows a statement (2500 parameters, well under SQLite's limit).
    async fn insert_entries(
        &mut self,
        rows: &mut [EntryRow<'_>],
        upsert: bool,
    ) -> Result<(), StateError> {
        rows.sort_unstable_by(|a, b| (a.0, a.1, a.2).cmp(&(b.0, b.1, b.2)));
        const BATCH: usize = 500;
        for chunk in rows.chunks(BATCH) {
            let sql = insert_sql(chunk.len(), upsert);
            let mut q = sqlx::query(&sql);
            for (id, text, nid, v) in chunk {
                q = q
                    .bind(*nid)
                    .bind(id.to_bytes().to_vec())
                    .bind(*text)
                    .bind(v.version as i64)
                    .bind(v.value.as_ref().map(|x| x.to_string()));
            }
            q.execute(&mut self.conn).await.map_err(self.sql())?;
        }
        Ok(())
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

    /// Every stored entry (tombstones excluded) with the name and address of
    /// the node holding it, in key-position order; for `dump`.
    pub async fn entries(&mut self) -> Result<Vec<StoredCopy>, StateError> {
        let rows = sqlx::query(
            "SELECT e.key_pos, e.key, e.value, n.name, n.addr FROM entries e JOIN nodes n ON n.nid = e.nid
             WHERE e.value IS NOT NULL ORDER BY e.key_pos, e.key",
        )
        .fetch_all(&mut self.conn)
        .await
        .map_err(self.sql())?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let pos: Vec<u8> = row.get(0);
            let text: String = row.get(1);
            let value: String = row.get(2);
            let name: String = row.get(3);
            let addr: Vec<u8> = row.get(4);
            let pos = <[u8; 20]>::try_from(pos.as_slice())
                .map_err(|_| self.damaged("malformed key position"))?;
            let value = serde_json::from_str(&value)
                .map_err(|e| self.damaged(format!("entry {text:?}: {e}")))?;
            let node = codec::decode_node_id(&addr).map_err(|e| self.damaged(e.to_string()))?;
            out.push(StoredCopy {
                key: Key {
                    id: Id::from_bytes(pos),
                    text,
                },
                value,
                node_name: name,
                node,
            });
        }
        Ok(out)
    }

    /// Live keys held per node, for `ring`.
    pub async fn key_counts(&mut self) -> Result<BTreeMap<String, Vec<Id>>, StateError> {
        let rows: Vec<(String, Vec<u8>)> = sqlx::query_as(
            "SELECT n.name, e.key_pos FROM entries e JOIN nodes n ON n.nid = e.nid WHERE e.value IS NOT NULL",
        )
        .fetch_all(&mut self.conn)
        .await
        .map_err(self.sql())?;
        let mut out: BTreeMap<String, Vec<Id>> = BTreeMap::new();
        for (name, pos) in rows {
            let pos = <[u8; 20]>::try_from(pos.as_slice())
                .map_err(|_| self.damaged("malformed key position"))?;
            out.entry(name).or_default().push(Id::from_bytes(pos));
        }
        Ok(out)
    }
}

/// One stored copy of a key, as `dump` lists it.
#[derive(Debug, Clone)]
pub struct StoredCopy {
    /// The key.
    pub key: Key,
    /// Its value.
    pub value: serde_json::Value,
    /// The holding node's name.
    pub node_name: String,
    /// The holding node's address.
    pub node: NodeId,
}

/// One entry row to write: key position, key text, node row id, entry.
type EntryRow<'a> = (Id, &'a str, i64, &'a Versioned);

/// An insert of `rows` entries, updating existing rows when `upsert`.
fn insert_sql(rows: usize, upsert: bool) -> String {
    let mut sql = String::from("INSERT INTO entries(nid, key_pos, key, version, value) VALUES ");
    for i in 0..rows {
        sql.push_str(if i == 0 {
            "(?, ?, ?, ?, ?)"
        } else {
            ", (?, ?, ?, ?, ?)"
        });
    }
    if upsert {
        sql.push_str(
            " ON CONFLICT(key_pos, key, nid) DO UPDATE SET version = excluded.version, value = excluded.value",
        );
    }
    sql
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
