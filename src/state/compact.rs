//! Rewriting a state file compactly: SQLite's `VACUUM` into pages of the
//! size this build makes (files made before kept 64 KiB pages, which make
//! every served put write four times the bytes), giving back the space of
//! deleted keys and departed nodes. The rewrite needs the file alone: a
//! file in WAL mode can only change its page size out of WAL mode.

use super::open::PAGE_SIZE;
use super::{Access, State, StateError, log_size};
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::{ConnectOptions, Connection};
use std::path::Path;
use std::time::Duration;

/// What a compaction did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compacted {
    /// Bytes of the file and its log before.
    pub bytes_before: u64,
    /// Bytes of the file after (its log is empty).
    pub bytes_after: u64,
    /// Page size before.
    pub page_before: u64,
    /// Page size after.
    pub page_after: u64,
}

/// The size of `path` and of its log, if any.
fn size_with_log(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len()) + log_size(path)
}

/// Rewrites the ring's state file at `path` compactly, with this build's
/// page size. The file is checked first as every command checks it (ours,
/// a format this build reads), changing nothing. Refused with
/// [`StateError::InUse`] while another connection has it open (a server,
/// a command running); the file is then as it was. A failure midway leaves
/// SQLite's journal, which the next opening rolls back.
pub async fn compact(path: &Path) -> Result<Compacted, StateError> {
    // Identified as every command identifies a file, changing nothing.
    State::open(path, Access::Read).await?.close().await?;
    let bytes_before = size_with_log(path);
    let sql = |e: sqlx::Error| super::open::classify(path, e);
    let opts = SqliteConnectOptions::new()
        .filename(path)
        .busy_timeout(Duration::from_secs(2))
        .disable_statement_logging();
    let mut c = SqliteConnection::connect_with(&opts).await.map_err(sql)?;
    let page_before: i64 = sqlx::query_scalar("PRAGMA page_size")
        .fetch_one(&mut c)
        .await
        .map_err(sql)?;
    // Leaving WAL mode needs every other connection gone: SQLite answers
    // busy, or leaves the mode as it was.
    let mode: Result<String, _> = sqlx::query_scalar("PRAGMA journal_mode = DELETE")
        .fetch_one(&mut c)
        .await;
    match mode {
        Ok(m) if m.eq_ignore_ascii_case("delete") => {}
        Ok(_) => return Err(StateError::InUse(path.to_path_buf())),
        Err(e) => {
            return Err(match sql(e) {
                StateError::Busy(p) => StateError::InUse(p),
                other => other,
            });
        }
    }
    let rewritten = async {
        sqlx::query(&format!("PRAGMA page_size = {PAGE_SIZE}"))
            .execute(&mut c)
            .await?;
        sqlx::query("VACUUM").execute(&mut c).await?;
        Ok::<_, sqlx::Error>(())
    }
    .await;
    // Back to WAL mode whatever happened: every command expects it.
    let back = sqlx::query_scalar::<_, String>("PRAGMA journal_mode = WAL")
        .fetch_one(&mut c)
        .await;
    rewritten.map_err(sql)?;
    back.map_err(sql)?;
    let page_after: i64 = sqlx::query_scalar("PRAGMA page_size")
        .fetch_one(&mut c)
        .await
        .map_err(sql)?;
    c.close().await.map_err(sql)?;
    Ok(Compacted {
        bytes_before,
        bytes_after: size_with_log(path),
        page_before: page_before as u64,
        page_after: page_after as u64,
    })
}
