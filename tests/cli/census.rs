//! The census of members per part of the ring (state format 5): counted when a
//! format-4 file is upgraded, and a wrong one found and recounted.

use crate::state_file::format_version;
use crate::{Env, data};

/// Seals the settings of the state file on `c` as dht does: XXH3-64 of every
/// key and value but the checksum, zero-terminated, in key order.
pub(crate) async fn reseal_settings(c: &mut sqlx::SqliteConnection) {
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT key, value FROM meta WHERE key <> 'checksum' ORDER BY key")
            .fetch_all(&mut *c)
            .await
            .unwrap();
    let mut bytes = Vec::new();
    for (k, v) in rows {
        bytes.extend_from_slice(k.as_bytes());
        bytes.push(0);
        bytes.extend_from_slice(v.as_bytes());
        bytes.push(0);
    }
    let sum = format!("{:016x}", xxhash_rust::xxh3::xxh3_64(&bytes));
    sqlx::query("UPDATE meta SET value = ? WHERE key = 'checksum'")
        .bind(sum)
        .execute(&mut *c)
        .await
        .unwrap();
}

/// A state file of format 4 (no census) is upgraded on first use: the
/// census is counted, and commands pick the same start nodes as before.
#[test]
fn format_four_state_gets_its_census() {
    let e = Env::new();
    e.ok(&["init", "--nodes", "300"]);
    e.ok(&["load", "--source", "csv", "--path", &data("items.csv")]);
    let want = e.ok(&["get", "apple", "--json"]);
    e.with_db(async |c| {
        for sql in [
            "DELETE FROM meta WHERE key = 'census'",
            "UPDATE meta SET value = '4' WHERE key = 'version'",
        ] {
            sqlx::query(sql).execute(&mut *c).await.unwrap();
        }
        reseal_settings(c).await;
    });
    assert_eq!(format_version(&e), "4");
    assert_eq!(e.ok(&["get", "apple", "--json"]), want);
    assert_eq!(format_version(&e), dht::state::FORMAT_VERSION.to_string());
    e.ok(&["check"]);
}

/// A census that does not match the nodes (edited, with the settings
/// resealed) is reported by `check`, refused rather than followed by a
/// command that picks a start node by it, and recounted by `check --repair`.
#[test]
fn a_wrong_census_is_found_and_recounted() {
    let e = Env::new();
    e.ok(&["init", "--nodes", "300"]);
    e.ok(&["put", "apple", "1"]);
    let want = e.ok(&["get", "apple", "--json"]);
    e.with_db(async |c| {
        sqlx::query("UPDATE meta SET value = '[[4095,1]]' WHERE key = 'census'")
            .execute(&mut *c)
            .await
            .unwrap();
        reseal_settings(c).await;
    });
    let err = e.fails(&["get", "apple"]);
    assert!(err.contains("census"), "{err}");
    e.dht()
        .args(["check"])
        .assert()
        .code(1)
        .stdout(predicates::str::contains("census"));
    let repaired = e.ok(&["check", "--repair"]);
    assert!(repaired.contains("recounted the census"), "{repaired}");
    e.ok(&["check"]);
    assert_eq!(e.ok(&["get", "apple", "--json"]), want);
}
