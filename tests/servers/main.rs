//! `dht load --source sql` against real PostgreSQL and MariaDB/MySQL servers,
//! and SQL Server through a TDS responder in the test process ([`mssql`]).
//!
//! `.ci/run` starts both and exports DHT_TEST_PG_URL, DHT_TEST_MYSQL_URL and
//! DHT_TEST_DB_PASSWORD (locally: `eval "$(.ci/servers.sh)"` as root). Without
//! them these tests say they were skipped; when CI is set they fail instead.

mod mssql;
mod tds;

use assert_cmd::Command;
use serde_json::{Value, json};
use sqlx::Connection;
use std::collections::BTreeMap;

struct Server {
    url: String,
    password: String,
}

fn server(var: &str) -> Option<Server> {
    match (std::env::var(var), std::env::var("DHT_TEST_DB_PASSWORD")) {
        (Ok(url), Ok(password)) => Some(Server { url, password }),
        _ if std::env::var_os("CI").is_some() => {
            panic!(
                "{var} and DHT_TEST_DB_PASSWORD must be set in CI (.ci/run sets them from .ci/servers.sh)"
            )
        }
        _ => {
            // Straight to stderr: the test harness hides eprintln! of passing tests.
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED {}: {var} is not set; run `eval \"$(.ci/servers.sh)\"` (as root) to test against a real server",
                std::thread::current().name().unwrap_or("?")
            );
            None
        }
    }
}

fn with_password(url: &str, password: &str) -> String {
    url.replacen("://dht@", &format!("://dht:{password}@"), 1)
}

/// Runs SQL statements as the test user (setup only).
fn setup(s: &Server, statements: &[String]) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let url = with_password(&s.url, &s.password);
        if url.starts_with("postgres") {
            let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
            for st in statements {
                sqlx::raw_sql(st)
                    .execute(&mut c)
                    .await
                    .unwrap_or_else(|e| panic!("{st}: {e}"));
            }
        } else {
            let mut c = sqlx::MySqlConnection::connect(&url).await.unwrap();
            for st in statements {
                sqlx::raw_sql(st)
                    .execute(&mut c)
                    .await
                    .unwrap_or_else(|e| panic!("{st}: {e}"));
            }
        }
    });
}

struct Env {
    dir: tempfile::TempDir,
    password: String,
}

impl Env {
    fn new(s: &Server) -> Env {
        Env {
            dir: tempfile::tempdir().unwrap(),
            password: s.password.clone(),
        }
    }
    fn dht(&self) -> Command {
        let mut c = Command::cargo_bin("dht").unwrap();
        c.current_dir(self.dir.path())
            .env_remove("DHT_STATE")
            .env_remove("DHT_DB_URL")
            .env_remove("PGPASSWORD")
            .env_remove("MYSQL_PWD")
            .env("DHT_DB_PASSWORD", &self.password)
            .env("DHT_DB_CONNECT_TIMEOUT", "3");
        c
    }
    fn ok(&self, args: &[&str]) -> String {
        let out = self.dht().args(args).output().unwrap();
        assert!(
            out.status.success(),
            "dht {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }
    /// `dht load` of `table` at `url` with `more` arguments, which must
    /// succeed: what it printed.
    fn load(&self, url: &str, table: &str, more: &[&str]) -> String {
        let mut args = vec!["load", "--source", "sql", "--url", url, "--table", table];
        args.extend(more);
        self.ok(&args)
    }
    /// The rows every server's type test stores besides `full`: `nulls`
    /// all null, the second `dup` kept, the Unicode key, four keys in all
    /// (`text` names the text column).
    fn check_shared_rows(&self, text: &str) {
        assert!(
            self.get("nulls")
                .as_object()
                .unwrap()
                .values()
                .all(Value::is_null)
        );
        assert_eq!(self.get("dup")[text], json!("second"));
        assert_eq!(self.get("鍵🔑")[text], json!("emoji key"));
        assert_eq!(self.dump().len(), 4);
    }
    fn get(&self, key: &str) -> Value {
        let j: Value = serde_json::from_str(&self.ok(&["get", "--json", "--", key])).unwrap();
        assert_eq!(j["found"], true, "{key}");
        j["value"].clone()
    }
    fn dump(&self) -> BTreeMap<String, Value> {
        let v: Value = serde_json::from_str(&self.ok(&["dump", "--format", "json"])).unwrap();
        v.as_array()
            .unwrap()
            .iter()
            .map(|o| (o["key"].as_str().unwrap().to_owned(), o["value"].clone()))
            .collect()
    }
    /// A failing load: one clear line naming `what`, no password, no change.
    fn fails(&self, args: &[&str], what: &str) {
        let before = self
            .dht()
            .args(["dump", "--format", "json"])
            .output()
            .unwrap()
            .stdout;
        let out = self.dht().arg("load").args(args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(2),
            "load {args:?} should fail: {err}"
        );
        assert!(
            err.contains(what),
            "load {args:?}: {err:?} should say {what:?}"
        );
        assert!(!err.contains(&self.password), "the password leaked: {err}");
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
        let after = self
            .dht()
            .args(["dump", "--format", "json"])
            .output()
            .unwrap()
            .stdout;
        assert_eq!(before, after, "the ring changed");
    }
}

fn num(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

/// Loads `table` (made by `create`: rows `full`, `nulls`, `dup` twice and
/// `鍵🔑`, keyed by column `k`) and checks what every server must give: one
/// duplicate counted, the last `dup` kept, Unicode keys, nulls as null.
/// Returns the environment and the `full` row's value, whose columns each
/// server's test checks.
fn load_types(s: &Server, table: &str, create: &[String]) -> (Env, Value) {
    setup(s, create);
    let e = Env::new(s);
    let out = e.load(&s.url, table, &["--key-col", "k"]);
    assert!(out.contains("duplicate keys      1"), "{out}");
    e.check_shared_rows("t");
    let d = e.dump();
    let full = e.get("full");
    assert_eq!(d["full"], full);
    assert_eq!(full["t"], json!("ünïcödé 鍵 \"q\", x"));
    assert_eq!(full["nothing"], Value::Null);
    (e, full)
}

#[test]
fn postgres_types_unicode_nulls_and_duplicates() {
    let Some(s) = server("DHT_TEST_PG_URL") else {
        return;
    };
    let (_e, full) = load_types(
        &s,
        "pg_types",
        &[
            "DROP TABLE IF EXISTS pg_types".into(),
            "CREATE TABLE pg_types (k text, t text, vc varchar(20), i2 smallint, i4 integer, i8 bigint, n numeric(40,10),
               f4 real, f8 double precision, b boolean, d date, tm time, ts timestamp, tz timestamptz,
               j json, jb jsonb, u uuid, by bytea, nothing text)"
                .into(),
            "INSERT INTO pg_types VALUES
              ('full', 'ünïcödé 鍵 \"q\", x', 'vc', -32768, 2147483647, -9223372036854775808, 12345678901234567890.0123456789,
               1.5, 2.25, true, '2024-02-29', '13:14:15.5', '2024-01-02 03:04:05.678', '2024-01-02 03:04:05+00',
               '{\"a\": [1, 2.50]}', '{\"b\": null}', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '\\x00ff10', NULL),
              ('nulls', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
              ('dup', 'first', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
              ('dup', 'second', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
              ('鍵🔑', 'emoji key', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)"
                .into(),
        ],
    );
    assert_eq!(full["i2"], json!(-32768));
    assert_eq!(full["i8"], json!(i64::MIN));
    assert_eq!(full["n"], num("12345678901234567890.0123456789"));
    assert_eq!(full["f4"], json!(1.5));
    assert_eq!(full["b"], json!(true));
    assert_eq!(full["d"], json!("2024-02-29"));
    assert_eq!(full["tm"], json!("13:14:15.5"));
    assert_eq!(full["ts"], json!("2024-01-02T03:04:05.678"));
    assert_eq!(full["tz"], json!("2024-01-02T03:04:05+00"));
    assert_eq!(full["j"], num(r#"{"a": [1, 2.50]}"#));
    assert_eq!(full["jb"], json!({"b": null}));
    assert_eq!(full["u"], json!("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"));
    assert_eq!(full["by"], json!("00ff10"));
    // The old tool's separate details work too.
    let e2 = Env::new(&s);
    let port = s
        .url
        .rsplit(':')
        .next()
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    e2.ok(&[
        "load",
        "--source",
        "sql",
        "--db-kind",
        "postgres",
        "--host",
        "127.0.0.1",
        "--port",
        &port,
        "--user",
        "dht",
        "--database",
        "dht_test",
        "--table",
        "public.pg_types",
        "--key-col",
        "k",
        "--value-col",
        "t",
    ]);
    assert_eq!(e2.get("dup"), json!("second"));
}

#[test]
fn mysql_types_unicode_nulls_and_duplicates() {
    let Some(s) = server("DHT_TEST_MYSQL_URL") else {
        return;
    };
    let (_e, full) = load_types(
        &s,
        "my_types",
        &[
            "DROP TABLE IF EXISTS my_types".into(),
            "CREATE TABLE my_types (k varchar(40) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin, t text, i bigint, u bigint unsigned,
               dec1 decimal(30,8), f double, b boolean, d date, dt datetime(3), ts timestamp NULL, j json, bl blob,
               e enum('a','b'), nothing text) CHARACTER SET utf8mb4"
                .into(),
            "INSERT INTO my_types VALUES
              ('full', 'ünïcödé 鍵 \"q\", x', -9223372036854775808, 18446744073709551615, 1234567890123456789012.12345678,
               2.25, true, '2024-02-29', '2024-01-02 03:04:05.678', '2024-01-02 03:04:05', '{\"x\": [1, 2.5]}', x'00ff', 'b', NULL),
              ('nulls', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
              ('dup', 'first', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
              ('dup', 'second', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
              ('鍵🔑', 'emoji key', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)"
                .into(),
        ],
    );
    assert_eq!(full["i"], json!(i64::MIN));
    assert_eq!(full["u"], json!(u64::MAX));
    assert_eq!(full["dec1"], num("1234567890123456789012.12345678"));
    assert_eq!(full["f"], json!(2.25));
    assert_eq!(full["b"], json!(true));
    assert_eq!(full["d"], json!("2024-02-29"));
    assert_eq!(full["dt"], json!("2024-01-02T03:04:05.678"));
    assert_eq!(full["ts"], json!("2024-01-02T03:04:05"));
    assert_eq!(full["j"], json!({"x": [1, 2.5]}));
    assert_eq!(full["bl"], json!("00ff"));
    assert_eq!(full["e"], json!("b"));
}

fn large(s: &Server, table: &str, create: &[String]) {
    setup(s, create);
    let e = Env::new(s);
    let out = e.load(&s.url, table, &["--json"]);
    let summary: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(summary["records_read"], 100_000);
    // A routing round every 1000 records, and one full round at the end.
    assert_eq!(summary["maintenance_rounds"], 101);
    let d = e.dump();
    assert_eq!(d.len(), 100_000);
    assert_eq!(d["k42"], json!("value 42"));
    assert_eq!(e.get("k99999"), json!("value 99999"));
    assert_eq!(summary["parts"], 1);
    // In parts as the rows stream in: the same ring.
    let p = Env::new(s);
    let out = p.load(&s.url, table, &["--json", "--part-size", "256K"]);
    let in_parts: Value = serde_json::from_str(&out).unwrap();
    assert!(in_parts["parts"].as_u64().unwrap() > 3, "{in_parts}");
    assert_eq!(in_parts["keys_stored"], 100_000);
    assert_eq!(p.dump(), d);
    assert_eq!(p.ok(&["ring"]), e.ok(&["ring"]));
}

#[test]
fn postgres_hundred_thousand_rows() {
    let Some(s) = server("DHT_TEST_PG_URL") else {
        return;
    };
    large(
        &s,
        "pg_large",
        &[
            "DROP TABLE IF EXISTS pg_large".into(),
            "CREATE TABLE pg_large AS SELECT 'k' || i AS k, 'value ' || i AS v FROM generate_series(0, 99999) AS i".into(),
        ],
    );
}

#[test]
fn mysql_hundred_thousand_rows() {
    let Some(s) = server("DHT_TEST_MYSQL_URL") else {
        return;
    };
    large(
        &s,
        "my_large",
        &[
            "DROP TABLE IF EXISTS my_large".into(),
            "CREATE TABLE my_large (k varchar(20), v varchar(40))".into(),
            // MariaDB caps recursive CTEs at 1000 rows: cross-join digits.
            "DROP TABLE IF EXISTS my_digits".into(),
            "CREATE TABLE my_digits (d int)".into(),
            "INSERT INTO my_digits VALUES (0), (1), (2), (3), (4), (5), (6), (7), (8), (9)".into(),
            "INSERT INTO my_large SELECT CONCAT('k', n), CONCAT('value ', n) FROM
               (SELECT a.d + 10 * b.d + 100 * c.d + 1000 * d.d + 10000 * e.d AS n
                FROM my_digits a, my_digits b, my_digits c, my_digits d, my_digits e) x"
                .into(),
        ],
    );
}

fn failures(s: &Server, kind: &str, bad_type_table: &str, bad_type_column: &str, bad_type: &str) {
    let e = Env::new(s);
    e.ok(&["init", "--nodes", "4"]);
    let base = s.url.rsplit_once(':').unwrap().0.to_owned(); // scheme://dht@127.0.0.1
    let db = s.url.rsplit('/').next().unwrap();
    e.fails(
        &[
            "--source",
            "sql",
            "--url",
            &format!("{base}:1/{db}"),
            "--table",
            "t",
        ],
        "connection refused",
    );
    // A port that accepts but never answers: the connect times out.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    e.fails(
        &[
            "--source",
            "sql",
            "--url",
            &format!("{base}:{port}/{db}"),
            "--table",
            "t",
        ],
        "timed out",
    );
    drop(silent);
    let mut wrong = e.dht();
    wrong.env("DHT_DB_PASSWORD", "not-the-password");
    let out = wrong
        .args(["load", "--source", "sql", "--url", &s.url, "--table", "t"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("wrong user name or password") && !err.contains("not-the-password"),
        "{err}"
    );
    let no_db = format!("{}/no_such_db", s.url.rsplit_once('/').unwrap().0);
    e.fails(
        &["--source", "sql", "--url", &no_db, "--table", "t"],
        "does not exist",
    );
    e.fails(
        &[
            "--source",
            "sql",
            "--url",
            &s.url,
            "--table",
            "no_such_table",
        ],
        "no such table",
    );
    e.fails(
        &[
            "--source",
            "sql",
            "--url",
            &s.url,
            "--table",
            "t; DROP TABLE x",
        ],
        "no such table",
    );
    e.fails(
        &[
            "--source",
            "sql",
            "--url",
            &s.url,
            "--query",
            "DELETE FROM x",
        ],
        "read-only SELECT",
    );
    e.fails(
        &[
            "--source",
            "sql",
            "--url",
            &s.url,
            "--table",
            bad_type_table,
            "--key-col",
            "k",
        ],
        bad_type_column,
    );
    e.fails(
        &[
            "--source",
            "sql",
            "--url",
            &s.url,
            "--table",
            bad_type_table,
            "--key-col",
            "k",
        ],
        bad_type,
    );
    // A password in the URL is never echoed either.
    let with_pw = with_password(&format!("{base}:1/{db}"), "url-secret-pw");
    let out = e
        .dht()
        .args(["load", "--source", "sql", "--url", &with_pw, "--table", "t"])
        .output()
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("url-secret-pw"),
        "{kind}: password in URL leaked"
    );
}

#[test]
fn postgres_failures_are_one_clear_line() {
    let Some(s) = server("DHT_TEST_PG_URL") else {
        return;
    };
    setup(
        &s,
        &[
            "DROP TABLE IF EXISTS pg_odd".into(),
            "CREATE TABLE pg_odd (k text, p point)".into(),
            "INSERT INTO pg_odd VALUES ('a', '(1,2)')".into(),
        ],
    );
    failures(&s, "postgres", "pg_odd", "\"p\"", "POINT");
}

#[test]
fn mysql_failures_are_one_clear_line() {
    let Some(s) = server("DHT_TEST_MYSQL_URL") else {
        return;
    };
    setup(
        &s,
        &[
            "DROP TABLE IF EXISTS my_odd".into(),
            "CREATE TABLE my_odd (k varchar(10), g geometry)".into(),
            "INSERT INTO my_odd VALUES ('a', POINT(1, 2))".into(),
        ],
    );
    failures(&s, "mysql", "my_odd", "\"g\"", "GEOMETRY");
}

/// Any name the server allows loads, quoted the server's way; an injection
/// attempt is one (odd) table name and table `y` stays intact.
fn odd_names(s: &Server, q: char) {
    let quote = |name: &str| format!("{q}{}{q}", name.replace(q, &format!("{q}{q}")));
    let tables = ["x; DROP TABLE y", "Odd \"Items\" ü", "back`tick"];
    let mut statements = vec![
        "DROP TABLE IF EXISTS y".to_owned(),
        "CREATE TABLE y (k varchar(20), v varchar(20))".to_owned(),
        "INSERT INTO y VALUES ('kept', 'yes')".to_owned(),
    ];
    for (i, t) in tables.iter().enumerate() {
        statements.push(format!("DROP TABLE IF EXISTS {}", quote(t)));
        statements.push(format!(
            "CREATE TABLE {} (k varchar(20), v varchar(20))",
            quote(t)
        ));
        statements.push(format!(
            "INSERT INTO {} VALUES ('key{i}', 'from {i}')",
            quote(t)
        ));
    }
    setup(s, &statements);
    let e = Env::new(s);
    for (i, t) in tables.iter().enumerate() {
        e.load(&s.url, t, &[]);
        assert_eq!(e.get(&format!("key{i}")), json!(format!("from {i}")), "{t}");
    }
    // The schema part, given quoted in any server's style, and a dot
    // inside quotes belonging to the name.
    let schema = if q == '"' {
        "public".to_owned()
    } else {
        s.url.rsplit('/').next().unwrap().to_owned()
    };
    let e = Env::new(s);
    e.ok(&[
        "load",
        "--source",
        "sql",
        "--url",
        &s.url,
        "--table",
        &format!("[{schema}].x; DROP TABLE y"),
    ]);
    assert_eq!(e.get("key0"), json!("from 0"));
    e.fails(
        &[
            "--source",
            "sql",
            "--url",
            &s.url,
            "--table",
            "x\"; DROP TABLE y; --",
        ],
        "no such table",
    );
    e.load(&s.url, "y", &[]);
    assert_eq!(e.get("kept"), json!("yes"));
}

#[test]
fn postgres_loads_any_table_name() {
    let Some(s) = server("DHT_TEST_PG_URL") else {
        return;
    };
    odd_names(&s, '"');
}

#[test]
fn mysql_loads_any_table_name() {
    let Some(s) = server("DHT_TEST_MYSQL_URL") else {
        return;
    };
    odd_names(&s, '`');
}
