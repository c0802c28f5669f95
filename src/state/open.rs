//! Opening a state file: identifying it, checking its format, the
//! transaction every command runs in, metadata, and the ring's settings.

use super::slice::CREATE_SLICES;
use super::{Access, FORMAT_NAME, FORMAT_VERSION, State, StateError};
use crate::chord::Params;
use crate::sim::Counters;
use sqlx::sqlite::{SqliteConnectOptions, SqliteSynchronous};
use sqlx::{ConnectOptions, Connection, SqliteConnection};
use std::path::Path;
use std::time::Duration;

/// The setting that holds the checksum of all the others.
const META_SUM: &str = "checksum";
/// Copies what the log holds into the database file as far as readers and
/// writers allow, without waiting for them.
pub(super) const PASSIVE_CHECKPOINT: &str = "PRAGMA wal_checkpoint(PASSIVE)";
/// The setting counting the commits of writing commands.
const GENERATION: &str = "generation";

/// The page size of the state files this build makes (see
/// [`State::open`]); `dht compact` rewrites older files to it.
pub(super) const PAGE_SIZE: u32 = 16384;

impl State {
    pub(super) fn sql(&self) -> impl Fn(sqlx::Error) -> StateError + '_ {
        |e| classify(&self.path, e)
    }
    /// Opens the state at `path` and starts a transaction: deferred for
    /// reads, immediate (taking the write lock, waiting up to 30 s for it)
    /// for writes.
    ///
    /// The file is identified before anything about it changes: a file that
    /// is not a dht state file is refused with its bytes untouched (WAL mode
    /// and page size are set only on our own files). A reader of a file or
    /// directory it cannot write still reads. With `Create` and no file, the
    /// ring is built in a new file beside `path` that [`State::commit`]
    /// links into place, so a command that fails leaves nothing behind.
    pub async fn open(path: &Path, access: Access) -> Result<State, StateError> {
        let path = path.to_path_buf();
        if path.is_dir() {
            return Err(StateError::IsDirectory(path));
        }
        let exists = path.exists();
        if !exists && access != Access::Create {
            return Err(StateError::NoRing(path));
        }
        let mut pending = None;
        let target: std::path::PathBuf = if exists {
            path.clone()
        } else {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| StateError::Sql {
                    path: path.clone(),
                    cause: e.into(),
                })?;
            }
            let tmp = pending_path(&path);
            remove_database_files(&tmp);
            pending = Some(PendingFile(tmp.clone()));
            tmp
        };
        let conn = connect(&target, access, !exists)
            .await
            .map_err(|e| classify(&path, e))?;
        let mut state = State {
            conn,
            path,
            pending,
            access,
        };
        // Identify it first, outside any transaction and changing nothing.
        let version = state.check_format(access).await?;
        let ours = version.is_some();
        if access != Access::Read {
            if !ours {
                // A new, empty file: 16 KiB pages. A slice row is kilobytes
                // and a bulk load writes tens of megabytes twice (log, then
                // checkpoint), which larger pages write in fewer pieces; but
                // every write rewrites whole pages into the log, and a
                // server's puts each touch one slice: 64 KiB pages cost it
                // four times the bytes per put for a few percent of load
                // time. Only possible before the first table.
                state
                    .run(&[&format!("PRAGMA page_size = {PAGE_SIZE}")])
                    .await?;
            }
            state.run(&["PRAGMA journal_mode = WAL"]).await?;
        }
        let begin = if access == Access::Read {
            "BEGIN DEFERRED"
        } else {
            "BEGIN IMMEDIATE"
        };
        state.run(&[begin]).await?;
        state.begun().await?;
        Ok(state)
    }

    /// Checks the file again once a transaction has begun: another process
    /// may have changed it between the first look and the lock.
    async fn begun(&mut self) -> Result<(), StateError> {
        if let Some(v) = self.check_format(self.access).await? {
            if v < FORMAT_VERSION {
                self.upgrade(self.access).await?;
            }
            self.verify_meta().await?;
        }
        Ok(())
    }

    /// Leaves checkpoints (copying the log into the file) to someone else:
    /// SQLite otherwise runs one inside the commit that grows the log past
    /// its limit, and that commit waits for it. A server checkpoints from
    /// its watcher instead ([`Watch::checkpoint`]), off its writes' path.
    /// The log file is cut back to 64 MiB whenever it starts over, so its
    /// size ([`log_size`]) tells the server how much log there is, and a
    /// burst of writes does not leave a large file behind.
    pub async fn defer_checkpoints(&mut self) -> Result<(), StateError> {
        self.run(&[
            "PRAGMA wal_autocheckpoint = 0",
            "PRAGMA journal_size_limit = 67108864",
        ])
        .await
    }

    /// Runs statements without parameters, in order.
    pub(super) async fn run(&mut self, stmts: &[&str]) -> Result<(), StateError> {
        for stmt in stmts {
            sqlx::query(stmt)
                .execute(&mut self.conn)
                .await
                .map_err(self.sql())?;
        }
        Ok(())
    }
    /// Checks the file is a dht state this build can read; returns its
    /// format version, or None for a file still empty (`Create` only).
    pub(super) async fn check_format(&mut self, access: Access) -> Result<Option<u32>, StateError> {
        let tables: Vec<String> =
            sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table'")
                .fetch_all(&mut self.conn)
                .await
                .map_err(self.sql())?;
        if tables.is_empty() {
            if access == Access::Create {
                return Ok(None);
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
        Ok(Some(version))
    }
    pub(super) fn damaged(&self, what: impl Into<String>) -> StateError {
        StateError::Damaged {
            path: self.path.clone(),
            what: what.into(),
        }
    }
    pub(super) async fn meta(&mut self, key: &str) -> Result<String, StateError> {
        let v: Option<String> = sqlx::query_scalar("SELECT value FROM meta WHERE key = ?")
            .bind(key)
            .fetch_optional(&mut self.conn)
            .await
            .map_err(self.sql())?;
        v.ok_or_else(|| self.damaged(format!("metadata {key:?} is missing")))
    }

    /// Writes one setting and reseals the settings' checksum.
    pub(super) async fn set_meta(&mut self, key: &str, value: &str) -> Result<(), StateError> {
        self.put_meta(key, value).await?;
        let sum = self.meta_sum().await?;
        self.put_meta(META_SUM, &sum).await
    }

    async fn put_meta(&mut self, key: &str, value: &str) -> Result<(), StateError> {
        sqlx::query("INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value")
            .bind(key)
            .bind(value)
            .execute(&mut self.conn)
            .await
            .map_err(self.sql())?;
        Ok(())
    }

    /// The checksum of every setting but the checksum itself: XXH3-64 of
    /// each key and value, zero-terminated, in key order, as hex.
    async fn meta_sum(&mut self) -> Result<String, StateError> {
        let rows: Vec<(String, String)> =
            sqlx::query_as("SELECT key, value FROM meta WHERE key <> ? ORDER BY key")
                .bind(META_SUM)
                .fetch_all(&mut self.conn)
                .await
                .map_err(self.sql())?;
        let mut bytes = Vec::new();
        for (k, v) in rows {
            bytes.extend_from_slice(k.as_bytes());
            bytes.push(0);
            bytes.extend_from_slice(v.as_bytes());
            bytes.push(0);
        }
        Ok(format!("{:016x}", xxhash_rust::xxh3::xxh3_64(&bytes)))
    }

    /// Checks the settings against their checksum (format 4 and later).
    pub(super) async fn verify_meta(&mut self) -> Result<(), StateError> {
        let want = self.meta_sum().await?;
        let have: Option<String> = sqlx::query_scalar("SELECT value FROM meta WHERE key = ?")
            .bind(META_SUM)
            .fetch_optional(&mut self.conn)
            .await
            .map_err(self.sql())?;
        if have.as_deref() != Some(want.as_str()) {
            return Err(self.damaged(
                "table meta: the settings do not match their checksum (changed outside dht, or damaged on disk)",
            ));
        }
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
        // Whether there is a row, not how many: a count reads them all.
        let any: Option<i64> = sqlx::query_scalar("SELECT 1 FROM nodes LIMIT 1")
            .fetch_optional(&mut self.conn)
            .await
            .map_err(self.sql())?;
        Ok(any.is_some())
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
            super::users::CREATE_USERS,
            super::log::CREATE_LOG,
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
        self.set_census(&super::census::Census::default()).await?;
        Ok(())
    }
    /// How many writing commands have committed to this file: each commit
    /// counts one, so a process holding the ring in memory tells from this
    /// number alone whether anyone else changed it.
    pub async fn generation(&mut self) -> Result<u64, StateError> {
        let v = generation_text(&mut self.conn).await.map_err(self.sql())?;
        match v {
            None => Ok(0),
            Some(v) => v
                .parse()
                .map_err(|_| self.damaged(format!("metadata {GENERATION:?} is not a number"))),
        }
    }

    /// The ring's settings.
    pub async fn params(&mut self) -> Result<Params, StateError> {
        let p = self.meta("params").await?;
        serde_json::from_str(&p).map_err(|e| self.damaged(format!("ring settings: {e}")))
    }
    /// Ends a read and closes the connection before returning. Dropping a
    /// `State` closes it later, on the SQLite driver's thread: a step that
    /// needs the file alone next (`dht compact`) could still find it open.
    pub async fn close(self) -> Result<(), StateError> {
        let State { conn, path, .. } = self;
        conn.close().await.map_err(|e| classify(&path, e))
    }

    /// Makes the transaction's changes durable and visible. A new state
    /// file is linked into place now, unless another process created one
    /// there meanwhile (then nothing is replaced and this is an error).
    pub async fn commit(mut self) -> Result<(), StateError> {
        if self.access != Access::Read {
            self.count_generation().await?;
        }
        let State {
            mut conn,
            path,
            pending,
            ..
        } = self;
        sqlx::query("COMMIT")
            .execute(&mut conn)
            .await
            .map_err(|e| classify(&path, e))?;
        // Closing checkpoints the log into the file, so a new file is
        // complete on its own when it is linked into place.
        conn.close().await.map_err(|e| classify(&path, e))?;
        if let Some(tmp) = &pending {
            match std::fs::hard_link(&tmp.0, &path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    return Err(StateError::Exists(path));
                }
                // No hard links on this file system: a rename instead.
                Err(_) => std::fs::rename(&tmp.0, &path).map_err(|e| StateError::Sql {
                    path: path.clone(),
                    cause: e.into(),
                })?,
            }
        }
        Ok(())
    }
}

/// A write connection kept open between transactions, for a process that
/// writes often (a server's group commits): the next transaction skips
/// opening and identifying the file again, and SQLite's page cache, which
/// holds the pages the last writes touched, survives.
pub struct Idle {
    state: State,
    /// The file the connection has open, to notice one put in its place.
    file: Option<FileId>,
}

/// What identifies a file on its file system (device and inode).
type FileId = (u64, u64);

/// The identity of the file at `path`, where the platform gives one.
fn file_id(path: &Path) -> Option<FileId> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

impl State {
    /// Counts this transaction's commit in the file's generation.
    async fn count_generation(&mut self) -> Result<(), StateError> {
        let next = self.generation().await? + 1;
        self.set_meta(GENERATION, &next.to_string()).await
    }

    /// Commits like [`State::commit`] but keeps the connection for the next
    /// write transaction ([`Idle::begin`]). Only for writes to a file that
    /// already existed: a new file must be closed to be linked into place.
    pub async fn commit_keeping(mut self) -> Result<Idle, StateError> {
        assert!(
            self.access == Access::Write && self.pending.is_none(),
            "only writes to an existing file keep their connection"
        );
        self.count_generation().await?;
        self.run(&["COMMIT"]).await?;
        let file = file_id(&self.path);
        Ok(Idle { state: self, file })
    }
}

impl Idle {
    /// Starts the next write transaction on the kept connection, checking
    /// the file as [`State::open`] does. None when the connection cannot
    /// serve it (another file now stands at the path, or the file is
    /// refused): the caller opens the file again, which reports any error.
    pub async fn begin(mut self) -> Option<State> {
        let same = self.file.is_some() && file_id(&self.state.path) == self.file;
        if !same {
            return None;
        }
        // Dropping the state on an error rolls back what began.
        self.state.run(&["BEGIN IMMEDIATE"]).await.ok()?;
        self.state.begun().await.ok()?;
        Some(self.state)
    }

    /// Copies the log into the file from the writer's own connection,
    /// between its transactions. A checkpoint from another connection
    /// while writes keep coming never catches up with the last of them, and
    /// the log only starts over (and is cut back, see
    /// [`State::defer_checkpoints`]) once a checkpoint has caught up.
    pub async fn checkpoint(&mut self) -> Result<(), StateError> {
        self.state.run(&[PASSIVE_CHECKPOINT]).await
    }
}

/// Opens a connection to the database at `path` without changing anything
/// persistent about it. Readers fall back to a read-only connection, and
/// then to an immutable one, when the file or its directory cannot be
/// written (SQLite's log needs a shared-memory file beside the database).
pub(super) async fn connect(
    path: &Path,
    access: Access,
    create: bool,
) -> Result<SqliteConnection, sqlx::Error> {
    let opts = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(create)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(30))
        // Applies to this connection only, as does the cache size.
        .synchronous(SqliteSynchronous::Normal)
        // 32 MiB of page cache: commands read slices once and write them
        // once, so a larger cache only costs memory the kernel must zero.
        .pragma("cache_size", "-32768")
        // Statement journals (a multi-row upsert in a transaction keeps the
        // pages it changes) in memory, not in a temporary file.
        .pragma("temp_store", "memory")
        // Large loads run long statements by design; they are not news.
        .disable_statement_logging();
    let first = SqliteConnection::connect_with(&opts).await;
    if access != Access::Read || first.is_ok() {
        return first;
    }
    let read_only = opts.clone().read_only(true);
    if let Ok(mut c) = SqliteConnection::connect_with(&read_only).await {
        // A read-only file in WAL mode may still fail at the first read
        // when the shared-memory file cannot be made.
        if sqlx::query("SELECT count(*) FROM sqlite_master")
            .execute(&mut c)
            .await
            .is_ok()
        {
            return Ok(c);
        }
    }
    SqliteConnection::connect_with(&read_only.immutable(true)).await
}

/// The generation setting as stored (None before the first commit that
/// counts one).
pub(super) async fn generation_text(
    conn: &mut SqliteConnection,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT value FROM meta WHERE key = ?")
        .bind(GENERATION)
        .fetch_optional(conn)
        .await
}

/// Where a new state file is built before [`State::commit`] links it into
/// place: beside it, so the link stays on one file system.
fn pending_path(path: &Path) -> std::path::PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".new-{}", std::process::id()));
    path.with_file_name(name)
}

/// Removes a database file and its log files, if present.
pub(super) fn remove_database_files(path: &Path) {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut p = path.as_os_str().to_os_string();
        p.push(suffix);
        let _ = std::fs::remove_file(p);
    }
}

/// A state file being built at a temporary path: removed, with its log
/// files, when dropped (after it was linked into place, or when the command
/// failed).
pub(super) struct PendingFile(std::path::PathBuf);

impl Drop for PendingFile {
    fn drop(&mut self) {
        remove_database_files(&self.0);
    }
}

pub(super) fn classify(path: &Path, e: sqlx::Error) -> StateError {
    if let sqlx::Error::ColumnDecode { index, source } = &e {
        return StateError::Damaged {
            path: path.to_path_buf(),
            what: format!("column {index} holds the wrong type ({source})"),
        };
    }
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
        cause: e,
    }
}
