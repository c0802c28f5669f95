//! Following a state file from a process that holds its ring in memory
//! (`dht serve`): whether anyone committed since the ring was read, how
//! large the log has grown, and checkpoints on a connection of their own.

use super::commit_mark::CommitMark;
use super::open::{PASSIVE_CHECKPOINT, classify, connect, generation_text};
use super::{Access, StateError};
use sqlx::SqliteConnection;
use std::path::Path;

/// The size in bytes of the log (write-ahead log) of the state file at
/// `path`: 0 when there is none.
pub fn log_size(path: &Path) -> u64 {
    let mut wal = path.to_path_buf().into_os_string();
    wal.push("-wal");
    std::fs::metadata(wal).map_or(0, |m| m.len())
}

/// A connection that only reads a state file's generation (see
/// [`State::generation`]): how a process holding the ring in memory tells,
/// with one small query outside any transaction, whether anyone committed
/// since it read the ring. The query is skipped while the log's header
/// shows no commit since the last one (see [`CommitMark`]).
pub struct Watch {
    conn: SqliteConnection,
    path: std::path::PathBuf,
    mark: CommitMark,
    /// The generation the last query read.
    known: Option<u64>,
}

impl Watch {
    /// Watches the state file at `path`, which must exist.
    pub async fn open(path: &Path) -> Result<Watch, StateError> {
        let conn = connect(path, Access::Read, false)
            .await
            .map_err(|e| classify(path, e))?;
        Ok(Watch {
            conn,
            path: path.to_path_buf(),
            mark: CommitMark::open(path),
            known: None,
        })
    }

    /// Copies what the log holds into the database file as far as readers
    /// and writers allow, without waiting for them (SQLite's passive
    /// checkpoint): for a server whose writes leave this to it (see
    /// [`State::defer_checkpoints`]).
    pub async fn checkpoint(&mut self) -> Result<(), StateError> {
        sqlx::query(PASSIVE_CHECKPOINT)
            .execute(&mut self.conn)
            .await
            .map_err(|e| classify(&self.path, e))?;
        Ok(())
    }

    /// The generation committed now.
    pub async fn generation(&mut self) -> Result<u64, StateError> {
        if let Some(known) = self.known
            && self.mark.unchanged()
        {
            return Ok(known);
        }
        // The header first: a commit after this look changes it.
        self.mark.mark();
        self.known = None;
        let v = generation_text(&mut self.conn)
            .await
            .map_err(|e| classify(&self.path, e))?;
        let generation = v.and_then(|v| v.parse().ok()).unwrap_or(0);
        self.known = Some(generation);
        Ok(generation)
    }
}
