//! Loading from every source: files, SQLite, edge-case text, bad input.

use crate::{Env, data};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::PathBuf;

#[test]
fn default_sql_load_then_dump_and_get() {
    let e = Env::new();
    let out = e.load_items(&[]);
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
        &["no such table", "items; DROP TABLE items"],
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

/// Hostile files get one clear line naming the file, never a crash: JSON
/// nested 20,000 deep (a stack overflow before), a damaged Parquet file (a
/// panic inside polars before), a directory given as the file (once "No
/// such device"); and a ring size beyond the limit is refused up front.
#[test]
fn hostile_files_get_one_clear_line() {
    let e = Env::new();
    e.ok(&["load", "--source", "csv", "--path", &data("items.csv")]);
    let before = e.dump();
    let deep = format!("{}1{}", "[".repeat(20_000), "]".repeat(20_000));
    let json = e.write("deep.json", &format!("[{{\"k\": \"a\", \"v\": {deep}}}]"));
    let ndjson = e.write("deep.ndjson", &format!("{{\"k\": \"a\", \"v\": {deep}}}\n"));
    let dict = e.write("deep-dict.json", &format!("{{\"a\": {deep}}}"));
    let mut parquet = std::fs::read(data("items.parquet")).unwrap();
    let mid = parquet.len() / 2;
    for b in &mut parquet[mid..mid + 64] {
        *b ^= 0x5a;
    }
    let pq = e.path("damaged.parquet");
    std::fs::write(&pq, parquet).unwrap();
    let dir = e.path("a-directory");
    std::fs::create_dir(&dir).unwrap();
    for (source, path, says, key) in [
        ("json", &json, "nested", "k"),
        ("ndjson", &ndjson, "nested", "k"),
        ("json", &dict, "recursion limit", ""),
        ("parquet", &pq, "damaged.parquet", "sku"),
        ("csv", &dir, "is a directory", "k"),
    ] {
        let mut cmd = e.dht();
        cmd.args(["load", "--source", source, "--path"]).arg(path);
        if !key.is_empty() {
            cmd.args(["--key-col", key]);
        }
        let out = cmd.output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{source}: {err}");
        assert!(err.contains(says), "{source}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{source}: {err}");
    }
    assert_eq!(e.dump(), before);
    let err = e.fails(&["init", "--force", "--nodes", "18446744073709551615"]);
    assert!(err.contains("at most 10,000,000 nodes"), "{err}");
}

/// A `;` inside a string literal is part of the query, not a second
/// statement; a real second statement is still refused.
#[test]
fn queries_are_read_as_sql_not_text() {
    let e = Env::new();
    let out = e.ok(&[
        "load",
        "--source",
        "sql",
        "--query",
        "SELECT name || ';' AS k, price FROM items -- names; with a semicolon",
        "--json",
    ]);
    let summary: Value = serde_json::from_str(&out).unwrap();
    assert!(summary["inserted"].as_u64().unwrap() > 0, "{out}");
    assert!(e.dump().keys().all(|k| k.ends_with(';')));
    let err = e.fails(&[
        "load",
        "--source",
        "sql",
        "--query",
        "SELECT name, price FROM items; DELETE FROM items",
    ]);
    assert!(err.contains("single statement"), "{err}");
}

/// A CSV row with the wrong number of fields, and an NDJSON line that does
/// not parse, are named by number (polars named neither, and suggested a
/// setting of its own).
#[test]
fn ragged_rows_and_bad_lines_are_named() {
    let e = Env::new();
    let csv = e.write("ragged.csv", "key,value\na,1\nb,2\nc,3,extra\nd,4\n");
    let err = e.fails(&["load", "--source", "csv", "--path", csv.to_str().unwrap()]);
    assert!(
        err.contains("row 3 has 3 fields where the header has 2"),
        "{err}"
    );
    assert!(!err.contains("truncate_ragged_lines"), "{err}");
    let nd = e.write(
        "bad.ndjson",
        "{\"k\": \"a\", \"v\": 1}\n{\"k\": \"b\", \"v\": }\n",
    );
    let err = e.fails(&[
        "load",
        "--source",
        "ndjson",
        "--path",
        nd.to_str().unwrap(),
        "--key-col",
        "k",
    ]);
    assert!(err.contains("line 2"), "{err}");
    assert!(!e.state().exists());
}

/// With --skip-bad-rows, an NDJSON line that does not parse is skipped and
/// reported by its line number; the other lines load.
#[test]
fn skip_bad_rows_skips_bad_ndjson_lines() {
    let e = Env::new();
    let nd = e.write(
        "some-bad.ndjson",
        "{\"k\": \"a\", \"v\": 1}\n{\"k\": \"b\", \"v\": }\n\n[1, 2]\n{\"k\": null, \"v\": 3}\n{\"k\": \"c\", \"v\": 4}\n",
    );
    let out = e
        .dht()
        .args([
            "load",
            "--source",
            "ndjson",
            "--key-col",
            "k",
            "--value-col",
            "v",
        ])
        .args(["--skip-bad-rows", "--path", nd.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    for line in ["row 2", "row 4", "row 5"] {
        assert!(err.contains(line), "{line}: {err}");
    }
    let dump = e.dump();
    assert_eq!(dump.keys().cloned().collect::<Vec<_>>(), ["a", "c"]);
    assert_eq!(dump["c"], json!(4));
}

/// The files people have: other delimiters (with the delimiter inside
/// quotes), no header, comment lines, null markers, TSV, gzip and
/// Zstandard (the source kind taken from the name under the compression
/// suffix), and standard input, Parquet included.
#[test]
fn delimiters_headers_compression_and_stdin() {
    use std::io::Write;
    let e = Env::new();
    let semi = e.write(
        "export.csv",
        "name;price\n\"a;b\";1.50\n# a comment line\nc;NA\nd;\\N\n",
    );
    e.ok(&[
        "load",
        "--path",
        semi.to_str().unwrap(),
        "--delimiter",
        ";",
        "--comment-prefix",
        "#",
        "--null-value",
        "NA",
        "--null-value",
        "\\N",
    ]);
    let d = e.dump();
    assert_eq!(d["a;b"], json!(1.50));
    assert_eq!((&d["c"], &d["d"]), (&Value::Null, &Value::Null));
    assert_eq!(d.len(), 3, "the comment line is not a row: {d:?}");

    let e = Env::new();
    let gz = e.path("plain.tsv.gz");
    let mut z = flate2::write::GzEncoder::new(
        std::fs::File::create(&gz).unwrap(),
        flate2::Compression::default(),
    );
    z.write_all(b"k1\tv1\tx\nk2\tv2\ty\n").unwrap();
    z.finish().unwrap();
    e.ok(&[
        "load",
        "--path",
        gz.to_str().unwrap(),
        "--no-header",
        "--key-col",
        "column_1",
        "--value-col",
        "column_2",
    ]);
    assert_eq!(e.dump()["k2"], json!("v2"));

    let e = Env::new();
    let zst = e.path("rows.ndjson.zst");
    std::fs::write(
        &zst,
        zstd::encode_all(
            &b"{\"k\": \"z1\", \"v\": 1}\n{\"k\": \"z2\", \"v\": 2}\n"[..],
            3,
        )
        .unwrap(),
    )
    .unwrap();
    e.ok(&[
        "load",
        "--path",
        zst.to_str().unwrap(),
        "--key-col",
        "k",
        "--value-col",
        "v",
    ]);
    assert_eq!(e.dump()["z2"], json!(2));

    // Standard input: CSV from another program's pipe, and Parquet.
    let e = Env::new();
    e.dht()
        .args(["load", "--source", "csv", "--path", "-"])
        .write_stdin("key,value\nfrom-stdin,42\n")
        .assert()
        .success();
    assert_eq!(e.dump()["from-stdin"], json!(42));
    e.dht()
        .args([
            "load",
            "--source",
            "parquet",
            "--path",
            "-",
            "--key-col",
            "sku",
        ])
        .write_stdin(std::fs::read(data("items.parquet")).unwrap())
        .assert()
        .success();
    assert!(e.dump().len() > 1);

    // Errors name what the user gave, not a temporary copy.
    let bad = e.path("ragged.csv.gz");
    let mut z = flate2::write::GzEncoder::new(
        std::fs::File::create(&bad).unwrap(),
        flate2::Compression::default(),
    );
    z.write_all(b"k,v\na,1,2\n").unwrap();
    z.finish().unwrap();
    let err = e.fails(&["load", "--path", bad.to_str().unwrap()]);
    assert!(
        err.contains("ragged.csv.gz") && err.contains("row 1 has 3 fields"),
        "{err}"
    );
    let err = e.fails(&["load", "--path", "notes.txt"]);
    assert!(err.contains("cannot tell the kind of file"), "{err}");
}

/// Latin-1, Windows-1252 and UTF-16 files are read as what they say, a
/// UTF-8 byte-order mark is skipped, and bytes invalid in the chosen
/// encoding are an error naming the line.
#[test]
fn encodings_are_transcoded() {
    let e = Env::new();
    // Writes `bytes` as `name`, loads it in `encoding`, returns the ring.
    let load = |name: &str, bytes: &[u8], encoding: &str| {
        let p = e.path(name);
        std::fs::write(&p, bytes).unwrap();
        let path = p.to_str().unwrap();
        e.ok(&[
            "load",
            "--path",
            path,
            "--encoding",
            encoding,
            "--key-col",
            "key",
            "--value-col",
            "value",
        ]);
        e.dump()
    };
    let utf16 = |text: &str, tail: &[u8]| {
        let mut bytes = vec![0xff, 0xfe];
        for unit in text.encode_utf16() {
            bytes.extend_from_slice(&unit.to_le_bytes());
        }
        bytes.extend_from_slice(tail);
        bytes
    };
    let d = load("l1.csv", b"key,value\ncaf\xe9,cr\xe8me\n", "latin1");
    assert_eq!(d["café"], json!("crème"));
    let d = load("w.csv", b"key,value\neuro,\x80 5\n", "windows-1252");
    assert_eq!(d["euro"], json!("€ 5"));
    let d = load(
        "u16.csv",
        &utf16("key,value\nключ,значение\n", &[]),
        "utf16",
    );
    assert_eq!(d["ключ"], json!("значение"));
    // A byte-order mark is not part of the first column's name.
    let d = load("bom.csv", b"\xef\xbb\xbfkey,value\nbom,1\n", "utf8");
    assert_eq!(d["bom"], json!(1));
    // An unpaired surrogate on line 3.
    let bad = e.path("bad16.csv");
    std::fs::write(&bad, utf16("key,value\na,1\n", &[0x00, 0xd8, b'x', 0])).unwrap();
    let err = e.fails(&[
        "load",
        "--path",
        bad.to_str().unwrap(),
        "--encoding",
        "utf16",
    ]);
    assert!(err.contains("line 3") && err.contains("bad16.csv"), "{err}");
}

/// Several files and globs load in order (a later value of a key wins),
/// and an error names the file it is in, with nothing stored.
#[test]
fn several_files_and_globs() {
    let e = Env::new();
    std::fs::create_dir(e.path("exports")).unwrap();
    e.write("exports/day-1.csv", "key,value\na,1\nb,1\n");
    e.write("exports/day-2.csv", "key,value\nb,2\nc,2\n");
    e.write("extra.ndjson", "{\"key\": \"c\", \"value\": 3}\n");
    let glob = e.path("exports/day-*.csv");
    let out = e.ok(&[
        "load",
        "--path",
        glob.to_str().unwrap(),
        e.path("extra.ndjson").to_str().unwrap(),
        "--key-col",
        "key",
        "--value-col",
        "value",
        "--json",
    ]);
    let summary: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(summary["duplicates"], json!(2), "{out}");
    let d = e.dump();
    assert_eq!(
        (&d["a"], &d["b"], &d["c"]),
        (&json!(1), &json!(2), &json!(3))
    );

    let e2 = Env::new();
    std::fs::create_dir(e2.path("x")).unwrap();
    e2.write("x/1.csv", "key,value\nok,1\n");
    e2.write("x/2.csv", "key,value\n,2\n");
    let err = e2.fails(&["load", "--path", e2.path("x/*.csv").to_str().unwrap()]);
    assert!(err.contains("2.csv") && err.contains("row 1"), "{err}");
    assert!(!e2.state().exists());
    let err = e2.fails(&["load", "--path", e2.path("none/*.csv").to_str().unwrap()]);
    assert!(err.contains("matches no file"), "{err}");
}

/// SQLite: any table name loads, quoted `"..."` with `"` doubled inside; an
/// injection attempt is one odd name and table `y` stays intact.
#[test]
fn sqlite_loads_any_table_name() {
    let e = Env::new();
    let src = e.dir.path().join("odd.db");
    let url = format!("sqlite://{}", src.display());
    let tables = ["x; DROP TABLE y", "Odd \"Items\" ü", "a.b"];
    let mut sql =
        String::from("CREATE TABLE y (k text, v text); INSERT INTO y VALUES ('kept', 'yes');");
    for (i, t) in tables.iter().enumerate() {
        let q = format!("\"{}\"", t.replace('"', "\"\""));
        sql.push_str(&format!(
            "CREATE TABLE {q} (k text, v text); INSERT INTO {q} VALUES ('key{i}', 'from {i}');"
        ));
    }
    super::sqlite_run(&url, &sql);
    for (i, t) in tables.iter().enumerate() {
        // A dot in the name itself needs the user's quotes.
        let given = if t.contains('.') {
            format!("\"{t}\"")
        } else {
            (*t).to_owned()
        };
        e.ok(&["load", "--source", "sql", "--url", &url, "--table", &given]);
        assert_eq!(
            e.get(&format!("key{i}")),
            serde_json::json!(format!("from {i}"))
        );
    }
    e.ok(&[
        "load", "--source", "sql", "--url", &url, "--table", "main.y",
    ]);
    assert_eq!(e.get("kept"), serde_json::json!("yes"));
    bad_load(
        &e,
        &[
            "--source",
            "sql",
            "--url",
            &url,
            "--table",
            "y\"; DROP TABLE y; --",
        ],
        &["no such table"],
    );
    e.ok(&["load", "--source", "sql", "--url", &url, "--table", "y"]);
}
