//! End-to-end tests of the `dht` binary on the files in `data/` and on
//! generated edge cases. Each test works in its own temporary directory.

use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        Env {
            dir: tempfile::tempdir().unwrap(),
        }
    }
    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }
    fn state(&self) -> PathBuf {
        self.path(".dht/ring.db")
    }
    fn dht(&self) -> Command {
        let mut c = Command::cargo_bin("dht").unwrap();
        c.current_dir(self.dir.path())
            .env_remove("DHT_STATE")
            .env_remove("DHT_DB_URL")
            .env_remove("RUST_LOG");
        c
    }
    fn ok(&self, args: &[&str]) -> String {
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
    fn fails(&self, args: &[&str]) -> String {
        let out = self.dht().args(args).output().unwrap();
        assert!(!out.status.success(), "dht {args:?} succeeded");
        String::from_utf8(out.stderr).unwrap()
    }
    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, text).unwrap();
        p
    }
    /// key -> value of `dump --format json`.
    fn dump(&self) -> BTreeMap<String, Value> {
        let v: Value = serde_json::from_str(&self.ok(&["dump", "--format", "json"])).unwrap();
        v.as_array()
            .unwrap()
            .iter()
            .map(|o| (o["key"].as_str().unwrap().to_owned(), o["value"].clone()))
            .collect()
    }
    /// Every stored copy, as `dump --replicas --format json` lists them.
    fn copies(&self) -> String {
        self.ok(&["dump", "--replicas", "--format", "json"])
    }
    fn get(&self, key: &str) -> Value {
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
    fn state_bytes(&self) -> Option<Vec<u8>> {
        std::fs::read(self.state()).ok()
    }
}

fn data(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data")
        .join(name)
        .display()
        .to_string()
}

#[test]
fn default_sql_load_then_dump_and_get() {
    let e = Env::new();
    let out = e.ok(&[
        "load",
        "--source",
        "sql",
        "--table",
        "items",
        "--url",
        &format!("sqlite://{}", data("items.db")),
    ]);
    assert!(out.contains("records read        35"), "{out}");
    assert!(out.contains("created a ring of 8 nodes"));
    let d = e.dump();
    assert_eq!(d.len(), 35);
    assert_eq!(d["apple"], json!(1.2));
    assert_eq!(e.get("banana"), json!(0.99));
    e.ok(&["check"]);
}

#[test]
fn sql_load_finds_the_shipped_database_by_default() {
    let e = Env::new();
    e.ok(&["load", "--source", "sql", "--table", "items"]);
    assert_eq!(e.dump().len(), 35);
}

#[test]
fn every_file_source_loads() {
    let e = Env::new();
    e.ok(&["load", "--source", "csv", "--path", &data("items.csv")]);
    assert_eq!(e.get("cherry"), json!(7.9));
    let e = Env::new();
    e.ok(&[
        "load",
        "--source",
        "parquet",
        "--path",
        &data("items.parquet"),
        "--key-col",
        "sku",
        "--value-col",
        "price",
    ]);
    assert_eq!(e.get("C-300"), json!(7.9));
    let e = Env::new();
    e.ok(&[
        "load",
        "--source",
        "parquet",
        "--path",
        &data("items.parquet"),
        "--key-col",
        "sku",
    ]);
    assert_eq!(
        e.get("B-201"),
        json!({"name": "blackberry", "price": 4.5, "unit": "box", "in_stock": false, "origin": null})
    );
    let e = Env::new();
    e.ok(&["load", "--source", "json", "--path", &data("items.json")]);
    // Numbers keep the digits they were written with (5.20, not 5.2).
    let want: Value = serde_json::from_str(
        r#"{"sku": "F-500", "price": 5.20, "unit": "kg", "in_stock": true, "origin": "Greece"}"#,
    )
    .unwrap();
    assert_eq!(e.get("fig"), want);
    assert_eq!(
        e.ok(&["get", "fig"]).trim(),
        r#"{"sku":"F-500","price":5.20,"unit":"kg","in_stock":true,"origin":"Greece"}"#
    );
    let e = Env::new();
    e.ok(&[
        "load",
        "--source",
        "ndjson",
        "--path",
        &data("items.ndjson"),
        "--key-col",
        "name",
        "--value-col",
        "origin",
    ]);
    assert_eq!(e.get("quince"), Value::Null);
    assert_eq!(e.get("kiwi"), json!("New Zealand"));
    // A JSON array of rows is a DataFrame.
    let e = Env::new();
    let p = e.write("rows.json", r#"[{"k": "a", "v": 1}, {"k": "b", "v": 2}]"#);
    e.ok(&["load", "--source", "json", "--path", p.to_str().unwrap()]);
    assert_eq!(e.get("a"), json!(1));
}

#[test]
fn sql_query_and_typed_columns() {
    let e = Env::new();
    let url = format!("sqlite://{}", data("items.db"));
    e.ok(&[
        "load",
        "--source",
        "sql",
        "--url",
        &url,
        "--query",
        "SELECT sku, price_cents FROM catalog WHERE in_stock = 1",
    ]);
    let d = e.dump();
    assert_eq!(d["A-100"], json!(120));
    assert!(!d.contains_key("B-201"));
    let e = Env::new();
    e.ok(&[
        "load",
        "--source",
        "sql",
        "--url",
        &url,
        "--table",
        "catalog",
        "--key-col",
        "sku",
    ]);
    assert_eq!(e.get("Q-940")["origin"], Value::Null);
}

/// Keys and values that break naive formats.
fn nasty() -> Vec<(String, String)> {
    vec![
        ("plain".into(), "simple".into()),
        ("comma,key".into(), "a,b,c".into()),
        ("quote\"key".into(), "she said \"hi\"".into()),
        ("multi\nline".into(), "line1\nline2\r\nline3".into()),
        ("ünïcödé 鍵 🔑".into(), "値 ✓ émoji 🎉".into()),
        ("empty-value".into(), "".into()),
        ("  spaces  ".into(), "  kept  ".into()),
        ("tab\tkey".into(), "tab\tvalue".into()),
    ]
}

#[test]
fn edge_case_text_round_trips_through_load_dump_and_get() {
    let e = Env::new();
    let mut w = csv::Writer::from_path(e.path("nasty.csv")).unwrap();
    w.write_record(["key", "value"]).unwrap();
    for (k, v) in nasty() {
        w.write_record([&k, &v]).unwrap();
    }
    w.flush().unwrap();
    e.ok(&[
        "load",
        "--source",
        "csv",
        "--path",
        e.path("nasty.csv").to_str().unwrap(),
    ]);
    let want: BTreeMap<String, Value> = nasty()
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    assert_eq!(e.dump(), want);
    for (k, v) in &want {
        assert_eq!(&e.get(k), v, "get {k:?}");
    }
    // ndjson
    let nd: BTreeMap<String, Value> = e
        .ok(&["dump", "--format", "ndjson"])
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .map(|o| (o["key"].as_str().unwrap().to_owned(), o["value"].clone()))
        .collect();
    assert_eq!(nd, want);
    // csv: values are JSON text
    let text = e.ok(&["dump", "--format", "csv"]);
    let mut r = csv::Reader::from_reader(text.as_bytes());
    let got: BTreeMap<String, Value> = r
        .records()
        .map(|rec| rec.unwrap())
        .map(|rec| (rec[0].to_owned(), serde_json::from_str(&rec[1]).unwrap()))
        .collect();
    assert_eq!(got, want);
    // table: one line per key, control characters escaped
    let table = e.ok(&["dump"]);
    assert_eq!(table.lines().count(), want.len() + 1);
    assert!(table.contains("multi\\nline"));
}

#[test]
fn json_values_keep_types_and_digits() {
    let e = Env::new();
    let p = e.write(
        "d.json",
        r#"{"int": 12345678901234567890123, "dec": 1.10, "neg": -0.000001, "t": true, "n": null, "arr": [1, "x", {"y": []}], "obj": {"z": {"deep": "yes"}}}"#,
    );
    e.ok(&["load", "--source", "json", "--path", p.to_str().unwrap()]);
    assert_eq!(e.ok(&["get", "int"]).trim(), "12345678901234567890123");
    assert_eq!(e.ok(&["get", "dec"]).trim(), "1.10");
    assert_eq!(e.ok(&["get", "n"]).trim(), "null");
    assert_eq!(e.get("obj"), json!({"z": {"deep": "yes"}}));
    assert_eq!(e.get("arr"), json!([1, "x", {"y": []}]));
}

#[test]
fn put_get_delete() {
    let e = Env::new();
    e.ok(&["init", "--nodes", "5"]);
    e.ok(&["put", "a", "{\"x\": 1}"]);
    e.ok(&["put", "b", "hello"]);
    e.ok(&["put", "zip", "01234", "--text"]);
    assert_eq!(e.get("a"), json!({"x": 1}));
    assert_eq!(e.get("b"), json!("hello"));
    assert_eq!(e.get("zip"), json!("01234"));
    e.ok(&["put", "a", "2"]);
    assert_eq!(e.get("a"), json!(2));
    e.ok(&["delete", "a"]);
    e.dht()
        .args(["get", "a"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("not found"));
    e.dht().args(["delete", "a"]).assert().code(1);
    let j: Value =
        serde_json::from_str(&e.ok(&["get", "b", "--json", "--from", "node-2"])).unwrap();
    assert_eq!(j["path"][0]["name"], "node-2");
    assert_eq!(j["found"], true);
    e.ok(&["check"]);
}

fn hash6(text: &str) -> u128 {
    dht::chord::Bits::new(6)
        .unwrap()
        .hash(text)
        .to_u160()
        .to::<u128>()
}

#[test]
fn get_shows_the_path_on_the_papers_ring() {
    let e = Env::new();
    e.ok(&[
        "init",
        "--bits",
        "6",
        "--ids",
        "1,8,14,21,32,38,42,48,51,56",
    ]);
    // Key 54 in the paper: from N8 the lookup goes to N42, then N51, which
    // names N56. Our keys are hashed, so find a text that lands on 54.
    let text = (0..)
        .map(|i| format!("k{i}"))
        .find(|t| hash6(t) == 54)
        .unwrap();
    e.ok(&["put", &text, "1"]);
    let out = e.ok(&["get", &text, "--path", "--from", "N8"]);
    assert!(
        out.contains("path: N8 (8) -> N42 (42) -> N51 (51)\nsuccessor: N56 (56)"),
        "{out}"
    );
    assert!(out.contains("hops: 2"), "{out}");
    e.dht()
        .args(["get", "absent", "--path", "--from", "N8"])
        .assert()
        .code(1)
        .stdout(predicate::str::contains("path: N8"));
    let ring = e.ok(&["ring", "--fingers"]);
    assert!(
        ring.contains("N8 fingers  0+:N14  3+:N21  4+:N32  5+:N42"),
        "{ring}"
    );
}

#[test]
fn membership_changes_keep_every_key() {
    let e = Env::new();
    e.ok(&[
        "load",
        "--source",
        "sql",
        "--table",
        "items",
        "--url",
        &format!("sqlite://{}", data("items.db")),
        "--nodes",
        "10",
    ]);
    let before = e.dump();
    e.ok(&["join", "--count", "3"]);
    assert_eq!(e.dump().len(), before.len());
    for (k, v) in &before {
        assert_eq!(&e.get(k), v);
    }
    e.ok(&["maintain", "--until-stable"]);
    e.ok(&["leave", "node-4"]);
    e.ok(&["fail", "node-7"]);
    for (k, v) in &before {
        assert_eq!(&e.get(k), v, "{k} right after a crash");
    }
    e.dht().arg("check").assert().code(1);
    e.ok(&["maintain", "--until-stable"]);
    e.ok(&["check"]);
    assert_eq!(e.dump(), before);
    let j: Value = serde_json::from_str(&e.ok(&["ring", "--json"])).unwrap();
    assert_eq!(j.as_array().unwrap().len(), 11);
    let copies: usize = j
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["keys"].as_u64().unwrap() as usize + n["replicas"].as_u64().unwrap() as usize)
        .sum();
    assert_eq!(copies, 35 * 3);
}

#[test]
fn fail_refuses_to_isolate_a_node() {
    let e = Env::new();
    e.ok(&["init", "--nodes", "4", "--replicas", "2"]);
    let j: Value = serde_json::from_str(&e.ok(&["ring", "--json"])).unwrap();
    let succs = j[0]["successors"].as_array().unwrap();
    e.ok(&["fail", succs[0].as_str().unwrap()]);
    e.dht()
        .args(["fail", succs[1].as_str().unwrap()])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no live successor"));
}

#[test]
fn fail_refuses_to_lose_the_only_copy() {
    let e = Env::new();
    e.ok(&["init", "--nodes", "3", "--replicas", "1"]);
    e.ok(&["put", "solo", "1"]);
    let j: Value = serde_json::from_str(&e.ok(&["get", "solo", "--json"])).unwrap();
    let holder = j["node"].as_str().unwrap().to_owned();
    e.dht()
        .args(["fail", &holder])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("only live copy of 1 keys"));
    assert_eq!(e.get("solo"), json!(1));
    // Forced, the key is gone (and with r = 1 the ring is broken too: the
    // lookup may not even finish).
    e.ok(&["fail", &holder, "--force"]);
    e.dht().args(["get", "solo"]).assert().failure();
}

#[test]
fn concurrent_writers_serialize() {
    let e = Env::new();
    e.ok(&["init", "--nodes", "6"]);
    let children: Vec<_> = (0..6)
        .map(|p| {
            let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin("dht"));
            c.current_dir(e.dir.path());
            c.args(["load", "--source", "json", "--path"]);
            let path = e.write(
                &format!("p{p}.json"),
                &serde_json::to_string(
                    &(0..30)
                        .map(|i| (format!("p{p}-k{i}"), json!(i)))
                        .collect::<serde_json::Map<_, _>>(),
                )
                .unwrap(),
            );
            c.arg(path);
            c.stdout(std::process::Stdio::null());
            c.spawn().unwrap()
        })
        .collect();
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin("dht"));
            c.current_dir(e.dir.path())
                .args(["dump", "--format", "json"]);
            c.stdout(std::process::Stdio::piped());
            c.spawn().unwrap()
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    for r in readers {
        let out = r.wait_with_output().unwrap();
        assert!(out.status.success());
        // A reader sees whole loads only: a multiple of 30 keys.
        let n = serde_json::from_slice::<Value>(&out.stdout)
            .unwrap()
            .as_array()
            .unwrap()
            .len();
        assert_eq!(n % 30, 0, "reader saw {n} keys");
    }
    let d = e.dump();
    assert_eq!(d.len(), 180);
    e.ok(&["check"]);
}

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

/// Runs a failing load and checks that the error says `what` and that the
/// ring is exactly as before.
fn bad_load(e: &Env, args: &[&str], what: &[&str]) {
    let before = e.state_bytes().map(|_| e.dump());
    let out = e.dht().arg("load").args(args).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "load {args:?} should fail: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    for w in what {
        assert!(
            err.contains(w),
            "load {args:?}: error {err:?} should mention {w:?}"
        );
    }
    assert_eq!(
        e.state_bytes().map(|_| e.dump()),
        before,
        "load {args:?} changed the ring"
    );
}

#[test]
fn bad_input_names_file_row_and_column_and_commits_nothing() {
    let e = Env::new();
    e.ok(&["load", "--source", "csv", "--path", &data("items.csv")]);
    let nullkey = e.write("nullkey.csv", "k,v\na,1\n,2\nc,3\n");
    let p = |x: &PathBuf| x.to_str().unwrap().to_owned();
    bad_load(
        &e,
        &["--source", "csv", "--path", &p(&nullkey)],
        &["nullkey.csv", "row 2", "\"k\"", "empty"],
    );
    let nullkey2 = e.write(
        "nullkey.ndjson",
        "{\"k\": \"a\", \"v\": 1}\n{\"k\": null, \"v\": 2}\n",
    );
    bad_load(
        &e,
        &["--source", "ndjson", "--path", &p(&nullkey2)],
        &["nullkey.ndjson", "row 2", "\"k\"", "null"],
    );
    let emptykey = e.write("emptykey.json", r#"{"a": 1, "": 2}"#);
    bad_load(
        &e,
        &["--source", "json", "--path", &p(&emptykey)],
        &["emptykey.json", "row 2", "empty"],
    );
    bad_load(
        &e,
        &["--source", "csv", "--path", "missing.csv"],
        &["missing.csv"],
    );
    bad_load(
        &e,
        &["--source", "parquet", "--path", &data("items.csv")],
        &["items.csv", "Parquet"],
    );
    bad_load(
        &e,
        &["--source", "json", "--path", &data("items.csv")],
        &["items.csv"],
    );
    bad_load(
        &e,
        &[
            "--source",
            "csv",
            "--path",
            &data("items.csv"),
            "--key-col",
            "nope",
        ],
        &["items.csv", "\"nope\"", "\"name\", \"price\""],
    );
    bad_load(
        &e,
        &["--source", "parquet", "--path", &data("items.parquet")],
        &["items.parquet", "6 columns", "--key-col"],
    );
    let ragged = e.write("ragged.csv", "k,v\na,1\nb,2,3,4\n");
    bad_load(
        &e,
        &["--source", "csv", "--path", &p(&ragged)],
        &["ragged.csv"],
    );
    let url = format!("sqlite://{}", data("items.db"));
    bad_load(
        &e,
        &["--source", "sql", "--url", &url, "--table", "nosuch"],
        &["nosuch"],
    );
    bad_load(
        &e,
        &[
            "--source",
            "sql",
            "--url",
            &url,
            "--table",
            "items; DROP TABLE items",
        ],
        &["not a plain identifier"],
    );
    bad_load(
        &e,
        &[
            "--source",
            "sql",
            "--url",
            &url,
            "--query",
            "DELETE FROM items",
        ],
        &["read-only SELECT"],
    );
    bad_load(
        &e,
        &[
            "--source",
            "sql",
            "--url",
            "sqlite:///no/such/dir/x.db",
            "--table",
            "items",
        ],
        &["/no/such/dir/x.db"],
    );

    // With --skip-bad-rows the good rows load and each bad one is reported.
    let out = e
        .dht()
        .args([
            "load",
            "--source",
            "csv",
            "--path",
            &p(&nullkey),
            "--skip-bad-rows",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("skipped"));
    assert!(String::from_utf8_lossy(&out.stdout).contains("rejected            1"));
    assert_eq!(e.get("c"), json!(3));
}

#[test]
fn duplicate_keys_last_wins_and_are_counted() {
    let e = Env::new();
    let p = e.write("dup.csv", "k,v\na,1\nb,2\na,3\n");
    let out = e.ok(&["load", "--source", "csv", "--path", p.to_str().unwrap()]);
    assert!(out.contains("duplicate keys      1"), "{out}");
    assert!(out.contains("overwritten         1"), "{out}");
    assert_eq!(e.get("a"), json!(3));
    let j: Value = serde_json::from_str(&e.ok(&[
        "load",
        "--source",
        "csv",
        "--path",
        p.to_str().unwrap(),
        "--json",
    ]))
    .unwrap();
    // On the existing ring every row replaces a stored value, and the one
    // repeated key is still told apart as a duplicate.
    assert_eq!(j["overwritten"], 3);
    assert_eq!(j["duplicates"], 1);
    assert_eq!(j["inserted"], 0);
}

#[test]
fn help_explains_every_command() {
    for cmd in [
        "init", "load", "dump", "get", "put", "delete", "join", "leave", "fail", "maintain",
        "ring", "check",
    ] {
        Command::cargo_bin("dht")
            .unwrap()
            .args([cmd, "--help"])
            .assert()
            .success()
            .stdout(predicate::str::contains("Example"));
    }
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
fn format_version(e: &Env) -> String {
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
    assert_eq!(format_version(&e), "3");
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
    assert_eq!(format_version(&e), "3");
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
    assert_eq!(format_version(&e), "3");
    e.ok(&["maintain", "--until-stable"]);
    e.ok(&["check"]);
    e.ok(&["put", "fresh-key", "\"v\""]);
    assert_eq!(e.get("fresh-key"), json!("v"));
}

/// `dump` streams its output; what it prints is still exactly what a
/// printer holding the whole listing would: the JSON array as serde_json
/// pretty-prints it, and on an empty ring an empty array, no NDJSON lines,
/// and the CSV and table headers alone.
#[test]
fn dump_output_is_exact_whether_empty_or_not() {
    let e = Env::new();
    e.ok(&["init", "--nodes", "4"]);
    assert_eq!(e.ok(&["dump", "--format", "json"]), "[]\n");
    assert_eq!(e.ok(&["dump", "--format", "ndjson"]), "");
    assert_eq!(
        e.ok(&["dump", "--format", "csv"]),
        "key,value,node,node_id\n"
    );
    assert_eq!(
        e.ok(&["dump", "--format", "csv", "--replicas"])
            .lines()
            .count(),
        1
    );
    assert_eq!(e.ok(&["dump"]).lines().count(), 1);
    e.ok(&["load", "--source", "json", "--path", &data("items.json")]);
    for args in [
        &["dump", "--format", "json"][..],
        &["dump", "--format", "json", "--replicas"][..],
    ] {
        let text = e.ok(args);
        let parsed: Value = serde_json::from_str(&text).unwrap();
        assert!(parsed.as_array().is_some_and(|a| !a.is_empty()));
        assert_eq!(text, serde_json::to_string_pretty(&parsed).unwrap() + "\n");
    }
}
