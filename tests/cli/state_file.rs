//! The state file: foreign, damaged and older-format files.

use crate::{Env, data};
use predicates::prelude::*;
use serde_json::{Value, json};
use std::collections::BTreeMap;

#[test]
fn damaged_or_foreign_state_is_refused_and_kept() {
    let e = Env::new();
    std::fs::create_dir_all(e.path(".dht")).unwrap();
    std::fs::write(
        e.state(),
        b"this is not a database at all, just some text that happens to be here",
    )
    .unwrap();
    let before = e.state_bytes();
    e.dht()
        .args(["dump"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("not a dht state file"));
    e.dht()
        .args(["init", "--force"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("not a dht state file"));
    e.dht()
        .args(["load", "--source", "csv", "--path", &data("items.csv")])
        .assert()
        .code(2);
    assert_eq!(e.state_bytes(), before);

    // Some other program's SQLite database.
    let e = Env::new();
    e.ok(&["load", "--source", "csv", "--path", &data("items.csv")]);
    let other = e.path("other.db");
    std::fs::copy(data("items.db"), &other).unwrap();
    e.dht()
        .args(["--state", other.to_str().unwrap(), "ring"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("not a dht state file"));

    // A newer format, and a damaged node row.
    let bump = |sql: &str| {
        e.with_db(async |c| {
            sqlx::query(sql).execute(c).await.unwrap();
        })
    };
    bump("UPDATE meta SET value = '99' WHERE key = 'version'");
    e.dht()
        .args(["get", "apple"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("newer dht"));
    bump(&format!(
        "UPDATE meta SET value = '{}' WHERE key = 'version'",
        dht::state::FORMAT_VERSION
    ));
    e.ok(&["get", "apple"]);
    // A slice of stored entries cut short.
    bump("UPDATE slices SET data = substr(data, 1, 30)");
    e.dht()
        .args(["dump"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("damaged"));
    bump("UPDATE nodes SET routing = x'0102' WHERE nid = (SELECT min(nid) FROM nodes)");
    e.dht()
        .args(["get", "apple"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("damaged"));
    e.dht()
        .args(["init"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("already exists"));
}

/// Every stored copy in the state file of `e` (format 3): (node row id,
/// key, versioned value).
async fn copies_in(
    c: &mut sqlx::SqliteConnection,
) -> Vec<(i64, dht::chord::store::Key, dht::chord::store::Versioned)> {
    use sqlx::Row;
    let rows = sqlx::query("SELECT data FROM slices")
        .fetch_all(&mut *c)
        .await
        .unwrap();
    let mut out = Vec::new();
    for row in rows {
        let data: Vec<u8> = row.get(0);
        dht::state::codec::for_each_copy(&data, |k, v, nid| out.push((nid, k.clone(), v.clone())))
            .unwrap();
    }
    assert!(!out.is_empty());
    out
}

/// Rewrites the state file of `e` as format 1 (one row per stored copy, as
/// the first release wrote it) from what format 3 holds.
fn downgrade_to_format_one(e: &Env) {
    e.with_db(async |c| {
        sqlx::query(
            "CREATE TABLE entries (
                key_pos BLOB NOT NULL,
                key TEXT NOT NULL,
                nid INTEGER NOT NULL REFERENCES nodes(nid) ON DELETE CASCADE,
                version INTEGER NOT NULL,
                value TEXT,
                PRIMARY KEY (key_pos, key, nid)) WITHOUT ROWID",
        )
        .execute(&mut *c)
        .await
        .unwrap();
        for (nid, k, v) in copies_in(c).await {
            sqlx::query("INSERT INTO entries VALUES (?, ?, ?, ?, ?)")
                .bind(k.id.to_bytes().to_vec())
                .bind(&*k.text)
                .bind(nid)
                .bind(v.version as i64)
                .bind(v.value.map(|x| x.to_string()))
                .execute(&mut *c)
                .await
                .unwrap();
        }
        for sql in [
            "DROP TABLE slices",
            "UPDATE meta SET value = '1' WHERE key = 'version'",
        ] {
            sqlx::query(sql).execute(&mut *c).await.unwrap();
        }
    });
}

/// Rewrites the state file of `e` as format 2 (a row per node and slice,
/// each node's copies written out, as the second release wrote it) from
/// what format 3 holds.
fn downgrade_to_format_two(e: &Env) {
    use dht::state::codec;
    e.with_db(async |c| {
        sqlx::query(
            "CREATE TABLE chunks (
                chunk INTEGER NOT NULL,
                nid INTEGER NOT NULL REFERENCES nodes(nid) ON DELETE CASCADE,
                data BLOB NOT NULL,
                PRIMARY KEY (chunk, nid))",
        )
        .execute(&mut *c)
        .await
        .unwrap();
        let bits = dht::chord::Bits::MAX;
        let mut rows: BTreeMap<(i64, i64), Vec<u8>> = BTreeMap::new();
        let mut copies = copies_in(c).await;
        copies.sort_by(|a, b| (a.1.id, &a.1.text).cmp(&(b.1.id, &b.1.text)));
        for (nid, k, v) in copies {
            let raw = rows
                .entry((dht::state::slice_of(bits, k.id), nid))
                .or_default();
            codec::put_entry(raw, k.id, &k.text, &v);
        }
        let mut z = codec::row_compressor();
        for ((chunk, nid), raw) in rows {
            let mut sealed = Vec::new();
            codec::seal_row(&raw, &mut sealed, &mut z);
            sqlx::query("INSERT INTO chunks VALUES (?, ?, ?)")
                .bind(chunk)
                .bind(nid)
                .bind(sealed)
                .execute(&mut *c)
                .await
                .unwrap();
        }
        for sql in [
            "DROP TABLE slices",
            "UPDATE meta SET value = '2' WHERE key = 'version'",
        ] {
            sqlx::query(sql).execute(&mut *c).await.unwrap();
        }
    });
}

/// The format version the state file of `e` records, and its tables.
fn format_and_tables(e: &Env) -> (String, Vec<String>) {
    e.with_db(async |c| {
        let version = sqlx::query_scalar("SELECT value FROM meta WHERE key = 'version'")
            .fetch_one(&mut *c)
            .await
            .unwrap();
        let tables =
            sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
                .fetch_all(&mut *c)
                .await
                .unwrap();
        (version, tables)
    })
}

/// The format version the state file of `e` records.
pub(crate) fn format_version(e: &Env) -> String {
    format_and_tables(e).0
}

/// A state file of format 1 is upgraded on first use by a reader, and reads
/// back exactly: every key, every copy, the same dump.
#[test]
fn format_one_state_is_upgraded_and_reads_back() {
    let e = Env::new();
    e.ok(&["load", "--source", "csv", "--path", &data("items.csv")]);
    let want = e.dump();
    let want_copies = e.copies();
    downgrade_to_format_one(&e);
    assert_eq!(format_version(&e), "1");
    // A reader upgrades it and sees the same data, every copy.
    assert_eq!(e.copies(), want_copies);
    assert_eq!(format_version(&e), dht::state::FORMAT_VERSION.to_string());
    assert_eq!(e.dump(), want);
    e.ok(&["get", "apple"]);
    // And it stays upgraded: writers work on it.
    e.ok(&["put", "fresh-key", "\"v\""]);
    e.ok(&["check"]);
    e.ok(&["get", "fresh-key"]);
}

/// A writer upgrades a format-1 file inside its own transaction: a writer
/// that fails leaves the file in format 1, untouched; one that succeeds
/// leaves it upgraded, with every old copy and its own change.
#[test]
fn format_one_state_is_upgraded_by_writers_in_their_transaction() {
    let e = Env::new();
    e.ok(&["load", "--source", "csv", "--path", &data("items.csv")]);
    let want_copies = e.copies();
    downgrade_to_format_one(&e);
    let before = format_and_tables(&e);
    assert_eq!(before.0, "1");
    assert!(before.1.contains(&"entries".to_owned()));
    // Fails after opening the file for writing (and upgrading it in its
    // transaction): the file is left in format 1.
    e.fails(&["leave", "no-such-node"]);
    assert_eq!(format_and_tables(&e), before);
    // Succeeds: upgraded, and the change is there with every old copy.
    e.ok(&["put", "fresh-key", "\"v\""]);
    assert_eq!(format_version(&e), dht::state::FORMAT_VERSION.to_string());
    e.ok(&["delete", "fresh-key"]);
    assert_eq!(e.copies(), want_copies);
    e.ok(&["check"]);
}

/// A state file of format 2 (a row per node and slice) is upgraded on first
/// use, and reads back exactly, every copy; writers work on it after.
#[test]
fn format_two_state_is_upgraded_and_reads_back() {
    let e = Env::new();
    e.ok(&["load", "--source", "csv", "--path", &data("items.csv")]);
    e.ok(&["fail", "node-3"]);
    let want_copies = e.copies();
    downgrade_to_format_two(&e);
    assert_eq!(format_version(&e), "2");
    assert_eq!(e.copies(), want_copies);
    assert_eq!(format_version(&e), dht::state::FORMAT_VERSION.to_string());
    e.ok(&["maintain", "--until-stable"]);
    e.ok(&["check"]);
    e.ok(&["put", "fresh-key", "\"v\""]);
    assert_eq!(e.get("fresh-key"), json!("v"));
}

/// Another program's SQLite database given as the state file is refused
/// by every command with its bytes unchanged: it is identified before its
/// journal mode or page size could change.
#[test]
fn a_foreign_database_is_not_touched() {
    let e = Env::new();
    let other = e.path("other.db");
    std::fs::copy(data("items.db"), &other).unwrap();
    let before = std::fs::read(&other).unwrap();
    let state = other.to_str().unwrap();
    for args in [
        &["dump"][..],
        &["get", "apple"][..],
        &["put", "k", "1"][..],
        &["ring"][..],
        &["check"][..],
        &["init", "--force"][..],
    ] {
        let mut all = vec!["--state", state];
        all.extend_from_slice(args);
        let err = e.fails(&all);
        assert!(err.contains("not a dht state file"), "{args:?}: {err}");
        assert_eq!(std::fs::read(&other).unwrap(), before, "{args:?}");
    }
    assert!(!e.path("other.db-wal").exists());
}

/// A command that fails while creating a ring leaves no state file behind.
#[test]
fn a_failed_init_or_load_leaves_no_file() {
    let e = Env::new();
    // Two ids that are the same position: refused after the file would
    // have been opened.
    let err = e.fails(&["init", "--bits", "6", "--ids", "5,69"]);
    assert!(err.contains("not an id that fits"), "{err}");
    let err = e.fails(&["init", "--bits", "6", "--ids", "5,5"]);
    assert!(err.contains("already") || err.contains("taken"), "{err}");
    let err = e.fails(&[
        "load",
        "--source",
        "csv",
        "--path",
        &data("items.csv"),
        "--nodes",
        "0",
    ]);
    assert!(err.contains("at least one node"), "{err}");
    let left: Vec<_> = std::fs::read_dir(e.path(".dht"))
        .map(|d| d.map(|f| f.unwrap().file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
    assert!(!e.state().exists());
}

/// A column holding the wrong SQLite type (set by another program) is
/// reported as damage naming the table and row, not a panic.
#[test]
fn wrongly_typed_columns_are_damage_not_panics() {
    for (sql, table) in [
        ("UPDATE nodes SET routing = 7", "table nodes, row"),
        (
            "UPDATE nodes SET addr = 'text' WHERE nid = (SELECT min(nid) FROM nodes)",
            "table nodes, row",
        ),
        ("UPDATE slices SET data = 42", "table slices, row"),
        ("UPDATE meta SET value = 3 WHERE key = 'params'", "damaged"),
    ] {
        let e = Env::new();
        e.ok(&["load", "--source", "csv", "--path", &data("items.csv")]);
        e.with_db(async |c| {
            sqlx::query(sql).execute(c).await.unwrap();
        });
        for cmd in [
            &["dump"][..],
            &["check"][..],
            &["ring"][..],
            &["ring", "--json"][..],
            &["ring", "--svg", "-"][..],
        ] {
            let out = e.dht().args(cmd).output().unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{sql} / {cmd:?}: {err}");
            assert!(err.contains("damaged"), "{sql} / {cmd:?}: {err}");
            assert!(
                err.contains(table) || !cmd.contains(&"dump"),
                "{sql} / {cmd:?}: {err}"
            );
        }
    }
}

/// A source SQLite database in WAL mode is read without leaving log files
/// beside it, and its bytes stay as they were.
#[test]
fn a_source_database_is_never_modified() {
    let e = Env::new();
    let src = e.path("src.db");
    std::fs::copy(data("items.db"), &src).unwrap();
    let url = format!("sqlite://{}", src.display());
    {
        // Switch it to WAL mode, as an application using it might have.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            use sqlx::Connection;
            let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
            sqlx::query("PRAGMA journal_mode = WAL")
                .execute(&mut c)
                .await
                .unwrap();
            c.close().await.unwrap();
        });
    }
    let before = std::fs::read(&src).unwrap();
    e.ok(&["load", "--source", "sql", "--url", &url, "--table", "items"]);
    assert_eq!(std::fs::read(&src).unwrap(), before);
    assert!(!e.path("src.db-wal").exists());
    assert!(!e.path("src.db-shm").exists());
}

/// Read-only commands work on a state file, in a directory, that the user
/// cannot write. Run as another user when the tests run as root (root can
/// write anything), else by taking write permission away.
#[test]
fn reads_work_without_write_permission() {
    use std::os::unix::fs::PermissionsExt;
    let e = Env::new();
    e.ok(&["load", "--source", "csv", "--path", &data("items.csv")]);
    let dir = e.path(".dht");
    let mode = |p: &std::path::Path, m: u32| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap()
    };
    let root = unsafe { libc_geteuid() } == 0;
    let runner: Vec<String> = if root {
        // The binary and the state must be reachable by `nobody`.
        let bin = e.path("dht");
        std::fs::copy(assert_cmd::cargo::cargo_bin("dht"), &bin).unwrap();
        mode(&bin, 0o755);
        mode(e.dir.path(), 0o755);
        vec![
            "setpriv".into(),
            "--reuid=65534".into(),
            "--regid=65534".into(),
            "--clear-groups".into(),
            bin.display().to_string(),
        ]
    } else {
        vec![assert_cmd::cargo::cargo_bin("dht").display().to_string()]
    };
    mode(&e.state(), 0o444);
    mode(&dir, 0o555);
    for args in [
        &["get", "apple"][..],
        &["dump", "--format", "json"][..],
        &["ring"][..],
        &["check"][..],
    ] {
        let out = std::process::Command::new(&runner[0])
            .args(&runner[1..])
            .args(args)
            .current_dir(e.dir.path())
            .env_remove("DHT_STATE")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    mode(&dir, 0o755);
}

unsafe extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}

/// Rewrites the state file of `e` as format 3: the same tables, no
/// checksums on blobs or settings.
fn downgrade_to_format_three(e: &Env) {
    e.with_db(async |c| {
        for sql in [
            "UPDATE slices SET data = substr(data, 1, length(data) - 8)",
            "UPDATE nodes SET routing = substr(routing, 1, length(routing) - 8)",
            "DELETE FROM meta WHERE key = 'checksum'",
            "DELETE FROM meta WHERE key = 'census'",
            "UPDATE meta SET value = '3' WHERE key = 'version'",
        ] {
            sqlx::query(sql).execute(&mut *c).await.unwrap();
        }
    });
}

/// Makes the file of `e` a format-5 file: slice rows of 12 leading bits
/// (each the 16 rows of format 6 it covers, merged) and version 5.
fn downgrade_to_format_five(e: &Env) {
    use dht::chord::store::{Key, Versioned};
    e.with_db(async |c| {
        let rows: Vec<(i64, Vec<u8>)> = sqlx::query_as("SELECT slice, data FROM slices")
            .fetch_all(&mut *c)
            .await
            .unwrap();
        let mut merged: BTreeMap<i64, Vec<(Key, Versioned, i64)>> = BTreeMap::new();
        for (slice, data) in rows {
            dht::state::codec::for_each_copy(&data, |k, v, nid| {
                merged
                    .entry(slice >> 4)
                    .or_default()
                    .push((k.clone(), v.clone(), nid))
            })
            .unwrap();
        }
        sqlx::query("DELETE FROM slices")
            .execute(&mut *c)
            .await
            .unwrap();
        let mut z = dht::state::codec::row_compressor();
        for (slice, copies) in merged {
            let mut refs: Vec<dht::state::codec::SliceCopy> = copies
                .iter()
                .map(|(k, v, nid)| (k.id, &*k.text, v, *nid))
                .collect();
            let (mut raw, mut sealed) = (Vec::new(), Vec::new());
            dht::state::codec::put_slice(&mut raw, &mut refs);
            dht::state::codec::seal_row(&raw, &mut sealed, &mut z);
            sqlx::query("INSERT INTO slices(slice, data) VALUES (?, ?)")
                .bind(slice)
                .bind(sealed)
                .execute(&mut *c)
                .await
                .unwrap();
        }
        sqlx::query("UPDATE meta SET value = '5' WHERE key = 'version'")
            .execute(&mut *c)
            .await
            .unwrap();
        crate::census::reseal_settings(c).await;
    });
}

/// A state file of format 5 (slices of 1/4,096 of the ring) is upgraded on
/// first use: its slices are split, every copy kept, and the ring reads
/// and works as before.
#[test]
fn format_five_state_is_upgraded_and_reads_back() {
    let e = Env::new();
    // Enough keys that slices of 1/4,096 of the ring hold several.
    let csv: String = std::iter::once("key,value\n".to_owned())
        .chain((0..3000).map(|i| format!("k{i},{i}\n")))
        .collect();
    let path = e.write("many.csv", &csv);
    e.ok(&["load", "--source", "csv", "--path", path.to_str().unwrap()]);
    e.ok(&["load", "--source", "csv", "--path", &data("items.csv")]);
    let want = e.dump();
    let want_copies = e.copies();
    let rows = |e: &Env| -> i64 {
        e.with_db(async |c| {
            sqlx::query_scalar("SELECT count(*) FROM slices")
                .fetch_one(c)
                .await
                .unwrap()
        })
    };
    let rows_now = rows(&e);
    downgrade_to_format_five(&e);
    assert_eq!(format_version(&e), "5");
    assert!(rows(&e) < rows_now, "slices merged");
    assert_eq!(e.copies(), want_copies);
    assert_eq!(format_version(&e), dht::state::FORMAT_VERSION.to_string());
    assert_eq!(rows(&e), rows_now, "slices split again");
    assert_eq!(e.dump(), want);
    e.ok(&["get", "apple"]);
    e.ok(&["put", "fresh-key", "1"]);
    e.ok(&["check"]);
}

/// A state file of format 3 (no checksums) is upgraded on first use and
/// reads back exactly; afterwards a changed bit anywhere is caught.
#[test]
fn format_three_state_is_upgraded_and_reads_back() {
    let e = Env::new();
    e.ok(&["load", "--source", "csv", "--path", &data("items.csv")]);
    let want = e.dump();
    let want_copies = e.copies();
    downgrade_to_format_three(&e);
    assert_eq!(format_version(&e), "3");
    assert_eq!(e.copies(), want_copies);
    assert_eq!(format_version(&e), dht::state::FORMAT_VERSION.to_string());
    assert_eq!(e.dump(), want);
    e.ok(&["put", "fresh-key", "1"]);
    e.ok(&["check"]);
}

/// One changed bit in any stored blob or setting is reported as damage
/// naming the table and row, by every command that reads it, where before
/// checksums it could silently turn `passion fruit` into `passioo fruit`.
#[test]
fn a_flipped_bit_anywhere_is_caught() {
    let e = Env::new();
    e.ok(&["load", "--source", "csv", "--path", &data("items.csv")]);
    let pristine = std::fs::read(e.state()).unwrap();
    // Each slice row, each node row, and the settings: flip one bit in the
    // middle of the stored value (SQLite's own structure stays intact).
    let rows: Vec<(String, i64)> = e.with_db(async |c| {
        let mut v: Vec<(String, i64)> = Vec::new();
        for (table, key) in [("slices", "slice"), ("nodes", "nid")] {
            let ids: Vec<i64> = sqlx::query_scalar(&format!("SELECT {key} FROM {table}"))
                .fetch_all(&mut *c)
                .await
                .unwrap();
            v.extend(ids.into_iter().map(|i| (table.to_owned(), i)));
        }
        v
    });
    assert!(rows.len() > 10);
    for (table, id) in rows.iter().chain([("meta".to_string(), 0)].iter()) {
        for log in ["-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{log}", e.state().display()));
        }
        std::fs::write(e.state(), &pristine).unwrap();
        let (col, key) = match table.as_str() {
            "slices" => ("data", "slice"),
            "nodes" => ("routing", "nid"),
            _ => ("value", "key"),
        };
        if table == "meta" {
            e.with_db(async |c| {
                // A digit of the clock, inside the counters' JSON.
                sqlx::query(
                    "UPDATE meta SET value = replace(value, '\"clock\":', '\"clock\":1') WHERE key = 'counters'",
                )
                .execute(c)
                .await
                .unwrap();
            });
        } else {
            flip(&e, table, col, key, *id);
        }
        for cmd in [
            &["dump", "--format", "csv"][..],
            &["check"][..],
            &["ring", "--svg", "-"][..],
        ] {
            let out = e.dht().args(cmd).output().unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{table} {id} {cmd:?}: {err}");
            assert!(err.contains("damaged"), "{table} {id}: {err}");
            if table != "meta" {
                assert!(err.contains(&format!("table {table}, row {id}")), "{err}");
            }
        }
    }
}

/// Flips one bit in the blob of `column` in `table` at the row `key` = `id`.
fn flip(e: &Env, table: &str, column: &str, key: &str, id: i64) {
    e.with_db(async |c| {
        let mut blob: Vec<u8> =
            sqlx::query_scalar(&format!("SELECT {column} FROM {table} WHERE {key} = ?"))
                .bind(id)
                .fetch_one(&mut *c)
                .await
                .unwrap();
        let mid = blob.len() / 2;
        blob[mid] ^= 0x10;
        sqlx::query(&format!("UPDATE {table} SET {column} = ? WHERE {key} = ?"))
            .bind(blob)
            .bind(id)
            .execute(&mut *c)
            .await
            .unwrap();
    });
}

/// `check --repair` rebuilds a node whose routing state is damaged (every
/// key then reads back) and drops a damaged slice (its keys are lost, the
/// others read back), saying which; `check` is then clean.
#[test]
fn check_repair_saves_what_can_be_saved() {
    let e = Env::new();
    e.ok(&["load", "--source", "csv", "--path", &data("items.csv")]);
    let want = e.dump();
    let nid: i64 = e.with_db(async |c| {
        sqlx::query_scalar("SELECT min(nid) FROM nodes")
            .fetch_one(c)
            .await
            .unwrap()
    });
    flip(&e, "nodes", "routing", "nid", nid);
    assert_eq!(
        e.dht().args(["check"]).output().unwrap().status.code(),
        Some(2)
    );
    let out = e.ok(&["check", "--repair"]);
    assert!(out.contains("rebuilt the routing state"), "{out}");
    e.ok(&["check"]);
    assert_eq!(e.dump(), want);
    assert!(e.ok(&["check", "--repair"]).contains("nothing to repair"));

    // A damaged slice: its keys are lost, every other key is intact.
    let slice: i64 = e.with_db(async |c| {
        sqlx::query_scalar("SELECT min(slice) FROM slices")
            .fetch_one(c)
            .await
            .unwrap()
    });
    flip(&e, "slices", "data", "slice", slice);
    let out = e.ok(&["check", "--repair"]);
    assert!(out.contains(&format!("dropped slice {slice}")), "{out}");
    e.ok(&["check"]);
    let after = e.dump();
    assert!(!after.is_empty() && after.len() < want.len());
    for (k, v) in &after {
        assert_eq!(want.get(k), Some(v), "{k}");
    }
}

/// `dht compact` rewrites a file of an older dht's 64 KiB pages in 16 KiB
/// pages, keeps every copy, stays in WAL mode, and refuses (changing
/// nothing) while another connection has the file open.
#[test]
fn compact_rewrites_older_pages_and_needs_the_file_alone() {
    let e = Env::new();
    e.load_items(&[]);
    e.ok(&["delete", "apple"]);
    e.with_db(async |c| {
        for q in [
            "PRAGMA journal_mode = DELETE",
            "PRAGMA page_size = 65536",
            "VACUUM",
            "PRAGMA journal_mode = WAL",
        ] {
            sqlx::query(q).execute(&mut *c).await.unwrap();
        }
    });
    let before = e.copies();
    let out: Value = serde_json::from_str(&e.ok(&["compact", "--json"])).unwrap();
    assert_eq!(out["page_size_before"], 65536, "{out}");
    assert_eq!(out["page_size_after"], 16384, "{out}");
    assert!(
        out["bytes_after"].as_u64() < out["bytes_before"].as_u64(),
        "{out}"
    );
    assert_eq!(e.copies(), before);
    assert!(e.ok(&["check"]).starts_with("ok"));
    let (mode, page): (String, i64) = e.with_db(async |c| {
        let mode = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&mut *c)
            .await
            .unwrap();
        let page = sqlx::query_scalar("PRAGMA page_size")
            .fetch_one(&mut *c)
            .await
            .unwrap();
        (mode, page)
    });
    assert_eq!((mode.as_str(), page), ("wal", 16384));
    let text = e.ok(&["compact"]);
    assert!(
        text.starts_with("compacted ") && text.contains("16.0 KiB -> 16.0 KiB"),
        "{text}"
    );

    // Another connection in a read: refused, nothing changed.
    let bytes = e.state_bytes();
    let out = e.with_db(async |c| {
        sqlx::query("BEGIN").execute(&mut *c).await.unwrap();
        sqlx::query("SELECT count(*) FROM nodes")
            .execute(&mut *c)
            .await
            .unwrap();
        let out = e.dht().arg("compact").output().unwrap();
        sqlx::query("ROLLBACK").execute(&mut *c).await.unwrap();
        out
    });
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("needs it alone"), "{err}");
    assert_eq!(e.state_bytes(), bytes);
    assert_eq!(e.copies(), before);
}
