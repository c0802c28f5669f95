//! End-to-end tests of the `dht` binary on the files in `data/` and on
//! generated edge cases. Each test works in its own temporary directory.
//! One test binary, one module per area; the helpers are here.

mod census;
mod commands;
mod experiments;
mod keys;
mod membership;
mod parts;
mod picture;
mod reading;
mod sources;
mod state_file;
mod vnodes;
mod workbooks;

use assert_cmd::Command;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub(crate) struct Env {
    pub(crate) dir: tempfile::TempDir,
}

impl Env {
    pub(crate) fn new() -> Env {
        Env {
            dir: tempfile::tempdir().unwrap(),
        }
    }
    pub(crate) fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }
    pub(crate) fn state(&self) -> PathBuf {
        self.path(".dht/ring.db")
    }
    pub(crate) fn dht(&self) -> Command {
        let mut c = Command::cargo_bin("dht").unwrap();
        c.current_dir(self.dir.path())
            .env_remove("DHT_STATE")
            .env_remove("DHT_DB_URL")
            .env_remove("RUST_LOG");
        c
    }
    pub(crate) fn ok(&self, args: &[&str]) -> String {
        let out = self.dht().args(args).output().unwrap();
        assert!(
            out.status.success(),
            "dht {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8(out.stdout).unwrap()
    }
    /// Runs a command that must fail; returns its stderr.
    pub(crate) fn fails(&self, args: &[&str]) -> String {
        let out = self.dht().args(args).output().unwrap();
        assert!(!out.status.success(), "dht {args:?} succeeded");
        String::from_utf8(out.stderr).unwrap()
    }
    pub(crate) fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, text).unwrap();
        p
    }
    /// `dht load` of the `items` table of `data/items.db`, with `extra`
    /// flags; its output.
    pub(crate) fn load_items(&self, extra: &[&str]) -> String {
        let url = format!("sqlite://{}", data("items.db"));
        let mut args = vec!["load", "--source", "sql", "--table", "items", "--url", &url];
        args.extend_from_slice(extra);
        self.ok(&args)
    }
    /// key -> value of `dump --format json`.
    pub(crate) fn dump(&self) -> BTreeMap<String, Value> {
        let v: Value = serde_json::from_str(&self.ok(&["dump", "--format", "json"])).unwrap();
        v.as_array()
            .unwrap()
            .iter()
            .map(|o| (o["key"].as_str().unwrap().to_owned(), o["value"].clone()))
            .collect()
    }
    /// Every stored copy, as `dump --replicas --format json` lists them.
    pub(crate) fn copies(&self) -> String {
        self.ok(&["dump", "--replicas", "--format", "json"])
    }
    pub(crate) fn get(&self, key: &str) -> Value {
        serde_json::from_str(self.ok(&["get", "--", key]).trim()).unwrap()
    }
    /// Runs `f` on a connection of its own to the state file, as another
    /// program would, and closes it.
    fn with_db<T>(&self, f: impl AsyncFnOnce(&mut sqlx::SqliteConnection) -> T) -> T {
        use sqlx::Connection;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let url = format!("sqlite://{}", self.state().display());
            let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
            let out = f(&mut c).await;
            c.close().await.unwrap();
            out
        })
    }
    pub(crate) fn state_bytes(&self) -> Option<Vec<u8>> {
        std::fs::read(self.state()).ok()
    }
}

pub(crate) fn data(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data")
        .join(name)
        .display()
        .to_string()
}

/// Runs `sql` (statements separated by `;`) on the SQLite database at
/// `url` (`sqlite://FILE`), made if missing: a source for `--source sql`.
pub fn sqlite_run(url: &str, sql: &str) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        use sqlx::Connection;
        let mut c = sqlx::SqliteConnection::connect(&format!("{url}?mode=rwc"))
            .await
            .unwrap();
        sqlx::raw_sql(sql)
            .execute(&mut c)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        c.close().await.unwrap();
    });
}
