//! Opening a state file: identifying it, checking its format, the
//! transaction every command runs in, metadata, and the ring's settings.

use super::slice::CREATE_SLICES;
use super::{Access, FORMAT_NAME, FORMAT_VERSION, State, StateError};
use crate::chord::Params;
use crate::sim::Counters;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{ConnectOptions, Connection, SqliteConnection};
use std::path::Path;
use std::time::Duration;

impl State {
    pub(super) fn sql(&self) -> impl Fn(sqlx::Error) -> StateError + '_ {
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
    /// format version (FORMAT_VERSION for a file still empty).
    pub(super) async fn check_format(&mut self, access: Access) -> Result<u32, StateError> {
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
    pub(super) async fn set_meta(&mut self, key: &str, value: &str) -> Result<(), StateError> {
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
}

pub(super) fn classify(path: &Path, e: sqlx::Error) -> StateError {
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
