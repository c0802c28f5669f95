//! A look at whether anyone committed to a state file, without a query.
//!
//! SQLite in WAL mode keeps a header in the shared-memory file beside the
//! database (`NAME-shm`, <https://www.sqlite.org/walformat.html>): two
//! copies of 48 bytes at its start, which every commit rewrites (the frame
//! count and a change counter grow, and the salts change when the log
//! starts over). A writer writes the second copy and then the first, and a
//! reader that finds the two equal has a header no writer was in the middle
//! of. So an unchanged header means nothing was committed since it was
//! read: a reader that read the header *before* it queried the file may
//! skip the next query while the header stays the same. That saves a query
//! through the SQLite driver's thread (two thread wake-ups) per look, which
//! a server answering tens of thousands of gets a second pays for.

use std::fs::File;
use std::path::{Path, PathBuf};

/// Bytes in one copy of the header.
const HEADER: usize = 48;

/// The last header read from a state file's shared-memory file.
#[derive(Debug)]
pub struct CommitMark {
    /// None when the file has no shared-memory file (an immutable
    /// connection, a file not in WAL mode) or it cannot be read: every look
    /// then says "maybe changed".
    shm: Option<File>,
    /// The header as last read, when its two copies agreed.
    seen: Option<[u8; HEADER]>,
    /// The state file.
    path: PathBuf,
}

impl CommitMark {
    /// Follows the shared-memory file of the state file at `path`. Keep a
    /// connection to the file open meanwhile, so the file stays (SQLite
    /// removes it when the last connection closes).
    pub fn open(path: &Path) -> CommitMark {
        let mut shm = path.as_os_str().to_os_string();
        shm.push("-shm");
        CommitMark {
            shm: File::open(shm).ok(),
            seen: None,
            path: path.to_path_buf(),
        }
    }

    /// Reads the header now and remembers it. Call it before the query
    /// whose answer stays valid while [`CommitMark::unchanged`] holds.
    pub fn mark(&mut self) {
        if self.shm.is_none() {
            // SQLite makes the file at a connection's first read.
            *self = CommitMark::open(&self.path);
        }
        self.seen = self.read();
    }

    /// True when the header reads as it did at the last [`CommitMark::mark`]:
    /// nothing was committed since. False whenever unsure.
    pub fn unchanged(&self) -> bool {
        match (self.seen, self.read()) {
            (Some(then), Some(now)) => then == now,
            _ => false,
        }
    }

    /// The header, when both copies agree.
    #[cfg(unix)]
    fn read(&self) -> Option<[u8; HEADER]> {
        use std::os::unix::fs::FileExt;
        let mut both = [0u8; 2 * HEADER];
        self.shm.as_ref()?.read_exact_at(&mut both, 0).ok()?;
        let (first, second) = both.split_at(HEADER);
        // An all-zero header is one SQLite has not yet built.
        (first == second && first.iter().any(|&b| b != 0)).then(|| first.try_into().expect("48"))
    }

    #[cfg(not(unix))]
    fn read(&self) -> Option<[u8; HEADER]> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::{Connection, SqliteConnection, sqlite::SqliteConnectOptions};

    async fn connect(path: &Path) -> SqliteConnection {
        let opts = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal);
        SqliteConnection::connect_with(&opts).await.expect("open")
    }

    #[tokio::test]
    async fn every_commit_changes_the_mark_and_reads_do_not() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("s.db");
        let mut writer = connect(&path).await;
        sqlx::query("CREATE TABLE t (v INTEGER)")
            .execute(&mut writer)
            .await
            .expect("create");
        let mut reader = connect(&path).await;
        let mut mark = CommitMark::open(&path);
        mark.mark();
        assert!(mark.unchanged(), "nothing committed yet");
        for i in 0..50 {
            sqlx::query("SELECT count(*) FROM t")
                .execute(&mut reader)
                .await
                .expect("read");
            assert!(mark.unchanged(), "a read is not a commit");
            sqlx::query("INSERT INTO t VALUES (?)")
                .bind(i)
                .execute(&mut writer)
                .await
                .expect("insert");
            assert!(!mark.unchanged(), "commit {i} went unnoticed");
            mark.mark();
            if i % 10 == 9 {
                // The log starts over after a full checkpoint: the next
                // commit writes frame 1 again, with new salts.
                sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                    .execute(&mut writer)
                    .await
                    .expect("checkpoint");
                mark.mark();
            }
        }
    }

    #[test]
    fn without_a_shared_memory_file_it_is_never_sure() {
        let dir = tempfile::tempdir().expect("dir");
        let mut mark = CommitMark::open(&dir.path().join("none.db"));
        mark.mark();
        assert!(!mark.unchanged());
    }
}
