//! The change log: who changed what, and when. Every command that changes
//! the ring, on the command line or through a server, appends one entry in
//! its transaction; a server streams new entries to its clients as events.
//! The log keeps the newest [`LOG_LIMIT`] entries.

use super::users::now;
use super::{State, StateError};

/// Entries the log keeps.
pub const LOG_LIMIT: i64 = 10_000;

/// The log table (format 5). Sequence numbers only grow, so a reader asks
/// for what came after the last one it saw.
pub(super) const CREATE_LOG: &str = "CREATE TABLE IF NOT EXISTS log (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    author TEXT NOT NULL,
    op TEXT NOT NULL,
    target TEXT NOT NULL,
    detail TEXT NOT NULL)";

/// One change.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Change {
    /// Its place in the log: later changes have larger numbers.
    pub seq: i64,
    /// When it was committed (RFC 3339, UTC).
    pub at: String,
    /// Who made it: a user of a server, or `cli:NAME` for the command line.
    pub author: String,
    /// What was done: put, delete, load, join, leave, fail, maintain, init,
    /// repair, user-add, user-remove.
    pub op: String,
    /// What it was done to: a key, a node, or empty.
    pub target: String,
    /// More, in words (a load's record count, a crash's lost keys).
    pub detail: String,
}

/// One change to record: who made it, the operation, what it was on, and
/// more in words.
#[derive(Debug, Clone, Copy)]
pub struct LogEntry<'a> {
    /// Who made the change.
    pub author: &'a str,
    /// put, delete, load, join, ...
    pub op: &'a str,
    /// The key or node, or empty.
    pub target: &'a str,
    /// More, in words.
    pub detail: &'a str,
}

impl State {
    /// Appends a change to the log, in this command's transaction, and
    /// drops the entries beyond [`LOG_LIMIT`].
    pub async fn log_change(
        &mut self,
        author: &str,
        op: &str,
        target: &str,
        detail: &str,
    ) -> Result<(), StateError> {
        self.log_changes(&[LogEntry {
            author,
            op,
            target,
            detail,
        }])
        .await
    }

    /// Records several changes at once, in order: one statement for all
    /// of them and one to trim the log (a server's group commit logs each
    /// write of the group).
    pub async fn log_changes(&mut self, entries: &[LogEntry<'_>]) -> Result<(), StateError> {
        let at = now();
        // Well under SQLite's limit of 32,766 bound values per statement.
        for chunk in entries.chunks(1000) {
            let mut sql = String::from("INSERT INTO log(at, author, op, target, detail) VALUES ");
            for i in 0..chunk.len() {
                sql.push_str(if i == 0 {
                    "(?, ?, ?, ?, ?)"
                } else {
                    ", (?, ?, ?, ?, ?)"
                });
            }
            let mut q = sqlx::query(&sql);
            for e in chunk {
                q = q
                    .bind(at.as_str())
                    .bind(e.author)
                    .bind(e.op)
                    .bind(e.target)
                    .bind(e.detail);
            }
            q.execute(&mut self.conn).await.map_err(self.sql())?;
        }
        sqlx::query("DELETE FROM log WHERE seq <= (SELECT max(seq) FROM log) - ?")
            .bind(LOG_LIMIT)
            .execute(&mut self.conn)
            .await
            .map_err(self.sql())?;
        Ok(())
    }

    /// Changes after `after`, oldest first, at most `limit`.
    pub async fn changes_after(
        &mut self,
        after: i64,
        limit: i64,
    ) -> Result<Vec<Change>, StateError> {
        let rows: Vec<(i64, String, String, String, String, String)> = sqlx::query_as(
            "SELECT seq, at, author, op, target, detail FROM log WHERE seq > ? ORDER BY seq LIMIT ?",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(&mut self.conn)
        .await
        .map_err(self.sql())?;
        Ok(rows.into_iter().map(change).collect())
    }

    /// The newest `limit` changes, newest first.
    pub async fn recent_changes(&mut self, limit: i64) -> Result<Vec<Change>, StateError> {
        let rows: Vec<(i64, String, String, String, String, String)> = sqlx::query_as(
            "SELECT seq, at, author, op, target, detail FROM log ORDER BY seq DESC LIMIT ?",
        )
        .bind(limit)
        .fetch_all(&mut self.conn)
        .await
        .map_err(self.sql())?;
        Ok(rows.into_iter().map(change).collect())
    }

    /// The number of the newest change, 0 before any.
    pub async fn last_change(&mut self) -> Result<i64, StateError> {
        let seq: Option<i64> = sqlx::query_scalar("SELECT max(seq) FROM log")
            .fetch_one(&mut self.conn)
            .await
            .map_err(self.sql())?;
        Ok(seq.unwrap_or(0))
    }
}

fn change(
    (seq, at, author, op, target, detail): (i64, String, String, String, String, String),
) -> Change {
    Change {
        seq,
        at,
        author,
        op,
        target,
        detail,
    }
}
