//! `dht load --source sql --url mssql://...` against the TDS responder
//! ([`super::tds`]), and against a real SQL Server when
//! `DHT_TEST_MSSQL_URL` is set (skipped otherwise: none can be installed on
//! these machines).

use super::tds::{Reply, Responder, Script, Ty, V};
use super::{Env, Server, num};
use serde_json::{Value, json};

const PASSWORD: &str = "Test-pässwörd-1";
const BEGIN: &str = "SET TRANSACTION ISOLATION LEVEL SNAPSHOT; BEGIN TRANSACTION";
const ROLLBACK: &str = "IF @@TRANCOUNT > 0 ROLLBACK TRANSACTION";

fn env() -> Env {
    Env::new(&Server {
        url: String::new(),
        password: PASSWORD.into(),
    })
}

fn responder(replies: Vec<(&str, Reply)>) -> Responder {
    Responder::start(Script {
        password: PASSWORD.into(),
        database: "shop".into(),
        replies: replies
            .into_iter()
            .map(|(s, r)| (s.to_owned(), r))
            .collect(),
        ..Script::default()
    })
}

fn two_columns(rows: &[(&str, &str)]) -> Reply {
    Reply::Rows(
        vec![("k".into(), Ty::NVarChar), ("v".into(), Ty::NVarChar)],
        rows.iter()
            .map(|(k, v)| vec![V::S((*k).into()), V::S((*v).into())])
            .collect(),
    )
}

/// Days from 0001-01-01 to `y-m-d`.
fn days(y: i32, m: u32, d: u32) -> u32 {
    let from = chrono::NaiveDate::from_ymd_opt(1, 1, 1).unwrap();
    (chrono::NaiveDate::from_ymd_opt(y, m, d).unwrap() - from).num_days() as u32
}

#[test]
fn mssql_types_unicode_nulls_and_duplicates() {
    use Ty::*;
    let cols: Vec<(String, Ty)> = [
        ("k", NVarChar),
        ("ti", TinyInt),
        ("si", SmallInt),
        ("i", Int),
        ("bi", BigInt),
        ("bit", Bit),
        ("r", Real),
        ("f", Float),
        ("dec", Decimal(38, 10)),
        ("m", Money),
        ("sm", SmallMoney),
        ("nv", NVarChar),
        ("vc", VarChar),
        ("nc", NChar),
        ("c", Char),
        ("tx", Text),
        ("ntx", NText),
        ("g", Guid),
        ("d", Date),
        ("t", Time(7)),
        ("dt2", DateTime2(3)),
        ("dto", DateTimeOffset(7)),
        ("dt", DateTime),
        ("sdt", SmallDateTime),
        ("vb", VarBinary),
        ("b", Binary),
    ]
    .into_iter()
    .map(|(n, t)| (n.to_owned(), t))
    .collect();
    let guid = hex("a0eebc999c0b4ef8bb6d6bb9bd380a11");
    let d = days(2024, 2, 29);
    let full = vec![
        V::S("full".into()),
        V::I(255),
        V::I(-32768),
        V::I(2147483647),
        V::I(i64::MIN as i128),
        V::I(1),
        V::F(1.5),
        V::F(0.1),
        // 12345678901234567890.0123456789 at scale 10: every digit.
        V::I(123456789012345678900123456789),
        // 99,999,999,999.9999 and -214,748.3648 (money is value * 10^4).
        V::I(999_999_999_999_999),
        V::I(-2_147_483_648),
        V::S("ünïcödé 鍵 \"q\", x 🍓".into()),
        V::S("café".into()),
        V::S("ñ".into()),
        V::S("c".into()),
        V::S("old text ½".into()),
        V::S("old ntext 鍵".into()),
        V::B(guid),
        V::At(d, 0, 0),
        // 13:14:15.5 at 10^-7 s.
        V::At(0, 476_555_000_000, 0),
        V::At(d, 11_045_678, 0),
        // 23:30 UTC shown at +02:00: the next day.
        V::At(d, 23 * 36_000_000_000 + 18_000_000_000, 120),
        // 1900-01-01 + 45,000 days, 03:04:05 + 1/300 s: .003 ms.
        V::Legacy(45_000, (3 * 3600 + 4 * 60 + 5) * 300 + 1),
        V::Legacy(45_000, 3 * 60 + 4),
        V::B(vec![0x00, 0xff, 0x10]),
        V::B(vec![0xde, 0xad]),
    ];
    let mut nulls = vec![V::S("nulls".into())];
    nulls.extend(std::iter::repeat_n(V::Null, cols.len() - 1));
    let named = |k: &str, v: &str| {
        let mut r = vec![V::S(k.into()), V::Null, V::Null, V::Null, V::Null, V::Null];
        r.extend(std::iter::repeat_n(V::Null, 5));
        r.push(V::S(v.into()));
        r.extend(std::iter::repeat_n(V::Null, cols.len() - r.len()));
        r
    };
    let rows = vec![
        full,
        nulls,
        named("dup", "first"),
        named("dup", "second"),
        named("鍵🔑", "emoji key"),
    ];
    let r = responder(vec![(
        "SELECT * FROM [dbo].[types]",
        Reply::Rows(cols, rows),
    )]);
    let e = env();
    let out = e.load(&r.url("dht", "shop"), "types", &["--key-col", "k"]);
    assert!(out.contains("duplicate keys      1"), "{out}");
    assert_eq!(
        r.batches(),
        [BEGIN, "SELECT * FROM [dbo].[types]", ROLLBACK],
        "a read is one rolled-back transaction"
    );
    let full = e.get("full");
    let expect = json!({
        "ti": 255, "si": -32768, "i": 2147483647, "bi": i64::MIN, "bit": true,
        "r": 1.5, "f": 0.1,
        "nv": "ünïcödé 鍵 \"q\", x 🍓", "vc": "café", "nc": "ñ", "c": "c",
        "tx": "old text ½", "ntx": "old ntext 鍵",
        "g": "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11",
        "d": "2024-02-29", "t": "13:14:15.5000000", "dt2": "2024-02-29T03:04:05.678",
        "dto": "2024-03-01T01:30:00.0000000+02:00",
        "dt": "2023-03-17T03:04:05.003", "sdt": "2023-03-17T03:04:00",
        "vb": "00ff10", "b": "dead",
    });
    for (k, v) in expect.as_object().unwrap() {
        assert_eq!(&full[k], v, "{k}");
    }
    // Exact decimals: compared as text, not as floats.
    assert_eq!(full["dec"], num("12345678901234567890.0123456789"));
    assert_eq!(full["m"], num("99999999999.9999"));
    assert_eq!(full["sm"], num("-214748.3648"));
    e.check_shared_rows("nv");
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn mssql_quotes_any_table_name_and_sends_exactly_that() {
    let r = responder(vec![
        (
            "SELECT * FROM [dbo].[Order Details]",
            two_columns(&[("o1", "ten")]),
        ),
        (
            "SELECT * FROM [sales].[Q1 ]]odd[ ü]",
            two_columns(&[("q1", "odd")]),
        ),
        (
            "SELECT * FROM [dbo].[x; DROP TABLE y]",
            Reply::Error(208, "Invalid object name 'dbo.x; DROP TABLE y'.".into()),
        ),
        (
            "SELECT k, v FROM items WHERE k LIKE N'a%'",
            two_columns(&[("apple", "red")]),
        ),
    ]);
    let url = r.url("dht", "shop");
    let e = env();
    e.ok(&["init", "--nodes", "4"]);
    e.load(&url, "Order Details", &[]);
    assert_eq!(e.get("o1"), json!("ten"));
    // The user's own quotes (any style) keep a dot or bracket in the name.
    e.ok(&[
        "load",
        "--source",
        "sql",
        "--url",
        &url,
        "--table",
        "\"sales\".[Q1 ]]odd[ ü]",
    ]);
    assert_eq!(e.get("q1"), json!("odd"));
    e.fails(
        &[
            "--source",
            "sql",
            "--url",
            &url,
            "--table",
            "x; DROP TABLE y",
        ],
        "no such table",
    );
    e.ok(&[
        "load",
        "--source",
        "sql",
        "--url",
        &url,
        "--query",
        "SELECT k, v FROM items WHERE k LIKE N'a%';",
    ]);
    assert_eq!(e.get("apple"), json!("red"));
    let sent: Vec<String> = r
        .batches()
        .into_iter()
        .filter(|b| b.starts_with("SELECT"))
        .collect();
    assert_eq!(
        sent,
        [
            "SELECT * FROM [dbo].[Order Details]",
            "SELECT * FROM [sales].[Q1 ]]odd[ ü]",
            "SELECT * FROM [dbo].[x; DROP TABLE y]",
            "SELECT k, v FROM items WHERE k LIKE N'a%'",
        ]
    );
    // Nothing else reached the server: each read is the transaction's
    // statements around one of the SELECTs above.
    for b in r.batches() {
        assert!(
            b == BEGIN || b == ROLLBACK || sent.contains(&b),
            "unexpected batch {b:?}"
        );
    }
    // The old tool's separate details: server, port, user, database.
    let e2 = env();
    e2.ok(&[
        "load",
        "--source",
        "sql",
        "--db-kind",
        "mssql",
        "--host",
        "127.0.0.1",
        "--port",
        &r.addr.port().to_string(),
        "--user",
        "dht",
        "--database",
        "shop",
        "--encrypt",
        "off",
        "--table",
        "Order Details",
    ]);
    assert_eq!(e2.get("o1"), json!("ten"));
}

#[test]
fn mssql_reads_at_read_committed_where_snapshot_is_not_allowed() {
    let r = Responder::start(Script {
        password: PASSWORD.into(),
        database: "shop".into(),
        replies: vec![(
            "SELECT * FROM [dbo].[items]".into(),
            two_columns(&[("a", "1")]),
        )],
        no_snapshot: true,
        ..Script::default()
    });
    let e = env();
    e.load(&r.url("dht", "shop"), "items", &[]);
    assert_eq!(e.get("a"), json!("1"));
    let b = r.batches();
    assert_eq!(b[0], BEGIN);
    assert!(b[2].contains("READ COMMITTED"), "{b:?}");
    assert_eq!(b[3], "SELECT * FROM [dbo].[items]");
    assert_eq!(b.last().unwrap(), ROLLBACK);
}

#[test]
fn mssql_failures_are_one_clear_line() {
    let r = responder(vec![
        ("SELECT * FROM [dbo].[items]", two_columns(&[("a", "1")])),
        (
            "SELECT * FROM [dbo].[odd]",
            Reply::Rows(
                vec![("k".into(), Ty::NVarChar), ("doc".into(), Ty::Xml)],
                vec![vec![V::S("a".into()), V::S("<a/>".into())]],
            ),
        ),
        // A reply that breaks the protocol: COLMETADATA naming a type id
        // that does not exist, then garbage.
        (
            "SELECT * FROM [dbo].[broken]",
            Reply::Raw(vec![0x81, 1, 0, 0, 0, 0, 0, 1, 0, 0x99, 0xff, 0xff, 0xff]),
        ),
        // Rows cut short: a ROW token with half a value.
        (
            "SELECT * FROM [dbo].[cut]",
            Reply::Raw({
                let mut b = vec![0x81, 1, 0, 0, 0, 0, 0, 1, 0, 0x26, 4, 1, b'k', 0];
                b.extend_from_slice(&[0xD1, 4, 1, 2]);
                b
            }),
        ),
        ("SELECT * FROM [dbo].[stalls]", Reply::Stall),
    ]);
    let url = r.url("dht", "shop");
    let e = env();
    e.ok(&["init", "--nodes", "4"]);
    let load = |url: &str, table: &str| -> Vec<String> {
        ["--source", "sql", "--url", url, "--table", table]
            .iter()
            .map(|s| s.to_string())
            .collect()
    };
    let fails = |args: Vec<String>, what: &str| {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        e.fails(&a, what);
    };
    fails(load(&url, "odd"), "\"doc\"");
    fails(load(&url, "odd"), "type xml");
    fails(load(&url, "broken"), "could not be read");
    fails(load(&url, "cut"), "closed the connection");
    let mut stalled = e.dht();
    stalled.env("DHT_DB_READ_TIMEOUT", "0.5").args([
        "load", "--source", "sql", "--url", &url, "--table", "stalls",
    ]);
    let out = stalled.output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("stopped answering"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    fails(load(&r.url("dht", "elsewhere"), "items"), "does not exist");
    // Unreachable: nothing listens on the port.
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = free.local_addr().unwrap().port();
    drop(free);
    fails(
        load(
            &format!("mssql://dht@127.0.0.1:{port}/shop?encrypt=off"),
            "items",
        ),
        "connection refused",
    );
    // Accepts and never answers: the connect times out.
    let silent = Responder::start(Script {
        silent: true,
        ..Script::default()
    });
    fails(load(&silent.url("dht", "shop"), "items"), "timed out");
    // The server has no TLS and the default asks for it.
    let tls_url = url.replace("?encrypt=off", "");
    fails(load(&tls_url, "items"), "does not encrypt");
    // Wrong password: the server's login error, never the password.
    let out = e
        .dht()
        .env("DHT_DB_PASSWORD", "not-the-password")
        .args(["load", "--source", "sql", "--url", &url, "--table", "items"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("wrong user name or password") && !err.contains("not-the-password"),
        "{err}"
    );
    // A password in the URL is never echoed either.
    let with_pw = url
        .replace("dht@", "dht:url-secret-pw@")
        .replace("/shop", "/nope");
    let out = e
        .dht()
        .env_remove("DHT_DB_PASSWORD")
        .args([
            "load", "--source", "sql", "--url", &with_pw, "--table", "items",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("url-secret-pw"), "{err}");
    assert!(err.contains("wrong user name or password"), "{err}");
    // TLS flags are SQL Server's only; elsewhere they are refused.
    let out = e
        .dht()
        .args([
            "load",
            "--source",
            "sql",
            "--table",
            "items",
            "--trust-cert",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("SQL Server"));
    // Nothing above panicked or touched the ring.
    e.ok(&["check"]);
}

/// Against a real server: `DHT_TEST_MSSQL_URL` (mssql://USER@HOST:PORT/DB,
/// with `?trust_cert=true` for a self-signed certificate) and
/// `DHT_TEST_MSSQL_PASSWORD`. Creates, reads and drops a table.
#[test]
fn mssql_real_server() {
    let (Ok(url), Ok(password)) = (
        std::env::var("DHT_TEST_MSSQL_URL"),
        std::env::var("DHT_TEST_MSSQL_PASSWORD"),
    ) else {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED mssql_real_server: DHT_TEST_MSSQL_URL and DHT_TEST_MSSQL_PASSWORD are not set (no SQL Server can be installed here)"
        );
        return;
    };
    let e = Env::new(&Server {
        url: url.clone(),
        password: password.clone(),
    });
    real::setup(&url, &password);
    let out = e.load(&url, "dht test.Order Details", &["--key-col", "k"]);
    assert!(out.contains("records read        2"), "{out}");
    let a = e.get("a");
    assert_eq!(a["n"], num("12345678901234567890.0123456789"));
    assert_eq!(a["m"], num("99999999999.9999"));
    assert_eq!(a["t"], json!("ünïcödé 鍵"));
    assert_eq!(a["d"], json!("2024-02-29T13:14:15.5000000+02:00"));
    assert_eq!(e.get("b")["n"], Value::Null);
    real::teardown(&url, &password);
}

/// Setup for [`mssql_real_server`] through tiberius directly.
mod real {
    use tiberius::{AuthMethod, Client, Config, EncryptionLevel};
    use tokio_util::compat::TokioAsyncWriteCompatExt;

    fn run(url: &str, password: &str, batch: &str) {
        let u = url::Url::parse(url).unwrap();
        let mut c = Config::new();
        c.host(u.host_str().unwrap());
        c.port(u.port().unwrap_or(1433));
        c.database(u.path().trim_start_matches('/'));
        c.authentication(AuthMethod::sql_server(u.username(), password));
        if url.contains("trust_cert=true") {
            c.trust_cert();
        }
        if url.contains("encrypt=off") {
            c.encryption(EncryptionLevel::NotSupported);
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let tcp =
                tokio::net::TcpStream::connect((u.host_str().unwrap(), u.port().unwrap_or(1433)))
                    .await
                    .unwrap();
            let mut client = Client::connect(c, tcp.compat_write()).await.unwrap();
            client
                .simple_query(batch)
                .await
                .unwrap()
                .into_results()
                .await
                .unwrap();
        });
    }

    pub fn setup(url: &str, password: &str) {
        teardown(url, password);
        run(url, password, "CREATE SCHEMA [dht test]");
        run(
            url,
            password,
            "CREATE TABLE [dht test].[Order Details] (k nvarchar(10), n decimal(38,10), m money, t nvarchar(20), d datetimeoffset(7));
             INSERT INTO [dht test].[Order Details] VALUES
               (N'a', 12345678901234567890.0123456789, 99999999999.9999, N'ünïcödé 鍵', '2024-02-29T13:14:15.5+02:00'),
               (N'b', NULL, NULL, NULL, NULL)",
        );
    }

    pub fn teardown(url: &str, password: &str) {
        run(
            url,
            password,
            "DROP TABLE IF EXISTS [dht test].[Order Details]; IF SCHEMA_ID('dht test') IS NOT NULL EXEC('DROP SCHEMA [dht test]')",
        );
    }
}

#[test]
fn mssql_rows_are_stored_in_parts_as_they_stream_in() {
    let rows: Vec<(String, String)> = (0..3000)
        .map(|i| (format!("k{i}"), format!("value {i}")))
        .collect();
    let rows: Vec<(&str, &str)> = rows.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut dumps = Vec::new();
    for size in ["1G", "8K"] {
        // SNAPSHOT refused first: the read starts again, nothing yet sent on.
        let r = Responder::start(Script {
            password: PASSWORD.into(),
            database: "shop".into(),
            replies: vec![("SELECT * FROM [dbo].[items]".into(), two_columns(&rows))],
            no_snapshot: true,
            ..Script::default()
        });
        let e = env();
        let out = e.load(
            &r.url("dht", "shop"),
            "items",
            &["--part-size", size, "--json"],
        );
        let summary: serde_json::Value = serde_json::from_str(&out).unwrap();
        let parts = summary["parts"].as_u64().unwrap();
        assert!(
            if size == "1G" { parts == 1 } else { parts > 2 },
            "{summary}"
        );
        assert_eq!(summary["keys_stored"], 3000);
        dumps.push(e.ok(&["dump", "--format", "json"]));
    }
    assert_eq!(dumps[0], dumps[1]);
}
