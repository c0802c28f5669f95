//! A CSV file larger than `--part-size` is read and stored in parts, its
//! copies kept on disk between parts: everything it prints and stores is
//! what loading it whole gives, and a failure in a later part still
//! changes nothing.

use super::Env;
use serde_json::Value;
use std::io::Write;

/// A gzip CSV of `rows` rows (typed columns, quoted fields with commas,
/// doubled quotes and line breaks, keys repeated), seeded by `seed`.
fn big_csv(e: &Env, name: &str, rows: usize, seed: u64) -> String {
    let p = e.path(name);
    let mut z = flate2::write::GzEncoder::new(
        std::fs::File::create(&p).unwrap(),
        flate2::Compression::fast(),
    );
    writeln!(z, "name,qty,price,note").unwrap();
    let mut x = seed;
    for i in 0..rows {
        // A small linear congruential generator: the file is the same on
        // every run.
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let key = (x >> 33) % (rows as u64 * 3 / 4);
        let note = match (x >> 20) % 4 {
            0 => "plain".to_owned(),
            1 => "\"with, comma\"".to_owned(),
            2 => "\"say \"\"hi\"\"\"".to_owned(),
            _ => format!("\"line {i}\nbreak\""),
        };
        writeln!(z, "k{key},{i},{}.{:02},{note}", i % 997, i % 100).unwrap();
    }
    z.finish().unwrap();
    p.display().to_string()
}

/// A CSV `k,v` of `rows` rows `{prefix}{i},{i}` (i from 1), row `odd.0`
/// replaced by the line `odd.1`.
fn numbered_csv(prefix: &str, rows: usize, odd: (usize, &str)) -> String {
    let mut text = String::from("k,v\n");
    for i in 1..=rows {
        if i == odd.0 {
            text.push_str(odd.1);
            text.push('\n');
        } else {
            text.push_str(&format!("{prefix}{i},{i}\n"));
        }
    }
    text
}

/// The summary of `load --json` without its timings, and how many parts
/// the load read.
fn summary(out: &str) -> (Value, u64) {
    let mut v: Value = serde_json::from_str(out.trim()).unwrap();
    let parts = v["parts"].as_u64().unwrap();
    v.as_object_mut()
        .unwrap()
        .retain(|k, _| !k.contains("sec") && k != "parts");
    (v, parts)
}

/// What a load leaves beside the state file besides the file itself.
fn leftovers(e: &Env) -> Vec<String> {
    std::fs::read_dir(e.state().parent().unwrap())
        .unwrap()
        .map(|d| d.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".load-"))
        .collect()
}

#[test]
fn a_file_loaded_in_parts_stores_and_prints_what_a_whole_load_does() {
    let (whole, parts) = (Env::new(), Env::new());
    let first = big_csv(&whole, "first.csv.gz", 30_000, 1);
    let second = big_csv(&whole, "second.csv.gz", 20_000, 2);
    for (e, size) in [(&whole, None), (&parts, Some("64K"))] {
        let load = |path: &str, json: bool| {
            let mut args = vec!["load", "--path", path, "--key-col", "name", "--show", "7"];
            args.extend(["--nodes", "40", "--maintain-every", "500"]);
            if json {
                args.push("--json");
            }
            if let Some(s) = size {
                args.extend(["--part-size", s]);
            }
            e.ok(&args)
        };
        // A new ring, then more into the same ring.
        let out = load(&first, false);
        e.write("out1.txt", &out);
        let out = load(&second, true);
        e.write("out2.json", &out);
        assert!(leftovers(e).is_empty(), "{:?}", leftovers(e));
        let check = e.ok(&["check"]);
        assert!(check.starts_with("ok"), "{check}");
    }
    let read = |e: &Env, f: &str| std::fs::read_to_string(e.path(f)).unwrap();
    let strip_time = |s: String| {
        s.lines()
            .filter(|l| !l.starts_with("time"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(
        strip_time(read(&parts, "out1.txt")),
        strip_time(read(&whole, "out1.txt"))
    );
    let ((w, whole_parts), (p, parts_read)) = (
        summary(&read(&whole, "out2.json")),
        summary(&read(&parts, "out2.json")),
    );
    assert_eq!(p, w);
    assert_eq!(whole_parts, 1);
    assert!(parts_read > 2, "{parts_read} parts");
    assert!(w["duplicates"].as_u64().unwrap() > 0, "{w}");
    assert_eq!(parts.copies(), whole.copies());
    assert_eq!(parts.ok(&["ring"]), whole.ok(&["ring"]));
}

#[test]
fn a_bad_row_in_a_later_part_commits_nothing_and_is_named_by_its_row() {
    let e = Env::new();
    e.ok(&["init", "--nodes", "5"]);
    e.ok(&["put", "before", "1"]);
    let path = e.write("late.csv", &numbered_csv("key", 20_000, (17_321, ",17321")));
    let path = path.to_str().unwrap();
    let before = e.copies();
    let err = e.fails(&["load", "--path", path, "--part-size", "16K"]);
    assert!(err.contains("row 17321"), "{err}");
    assert_eq!(e.copies(), before, "the failed load changed the ring");
    assert!(leftovers(&e).is_empty());

    let out = e
        .dht()
        .args([
            "load",
            "--path",
            path,
            "--part-size",
            "16K",
            "--skip-bad-rows",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("skipped") && err.contains("row 17321"),
        "{err}"
    );
    let dump = e.dump();
    assert_eq!(dump.len(), 20_000);
    assert_eq!(dump["key20000"], Value::from(20000));

    // A row with too many fields, far into the file.
    let path = e.write("ragged.csv", &numbered_csv("x", 15_001, (15_001, "x,1,2")));
    let before = e.copies();
    let err = e.fails(&[
        "load",
        "--path",
        path.to_str().unwrap(),
        "--part-size",
        "8K",
    ]);
    assert!(err.contains("row 15001 has 3 fields"), "{err}");
    assert_eq!(e.copies(), before);
}

#[test]
fn part_sizes_are_checked() {
    let e = Env::new();
    for bad in ["0", "12Q", "-5", "M"] {
        let err = e.fails(&["load", "--path", "x.csv", &format!("--part-size={bad}")]);
        assert!(err.contains("--part-size"), "{bad}: {err}");
    }
}

#[test]
fn spill_files_of_a_killed_load_are_removed_by_the_next() {
    let e = Env::new();
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let ended = child.id();
    child.wait().unwrap();
    let stale = e
        .state()
        .parent()
        .unwrap()
        .join(format!(".ring.db.load-{ended}"));
    std::fs::create_dir_all(&stale).unwrap();
    std::fs::write(stale.join("007"), b"left by a killed load").unwrap();
    let csv = big_csv(&e, "rows.csv.gz", 15_000, 3);
    e.ok(&[
        "load",
        "--path",
        &csv,
        "--key-col",
        "name",
        "--part-size",
        "64K",
    ]);
    assert!(!stale.exists());
    assert!(leftovers(&e).is_empty());
}

#[test]
fn a_value_of_another_type_than_its_column_is_named_by_row_and_column() {
    let e = Env::new();
    let text = numbered_csv("k", 14_000, (12_345, "k12345,twelve"));
    let path = e.write("typed.csv", &text);
    let path = path.to_str().unwrap();
    for size in ["1G", "16K"] {
        let err = e.fails(&["load", "--path", path, "--part-size", size]);
        assert!(
            err.contains("typed.csv")
                && err.contains(
                    "row 12345, column \"v\": \"twelve\" does not fit the column's type, i64"
                ),
            "{size}: {err}"
        );
    }
    assert!(e.state_bytes().is_none(), "a failed first load made a ring");
}

/// Parquet and NDJSON files are read whole as DataFrames and stored a
/// slice of rows at a time: the same copies and summary as one part.
#[test]
fn frames_stored_in_slices_of_rows_match_a_whole_load() {
    use polars::prelude::*;
    let (whole, parts) = (Env::new(), Env::new());
    let rows = 20_000usize;
    let keys: Vec<String> = (0..rows)
        .map(|i| format!("k{}", (i * 7919) % 15_000))
        .collect();
    let qty: Vec<i64> = (0..rows as i64).collect();
    let note: Vec<String> = (0..rows)
        .map(|i| format!("note \"{i}\", with comma"))
        .collect();
    let mut df = df!("name" => &keys, "qty" => &qty, "note" => &note).unwrap();
    let parquet = whole.path("rows.parquet");
    ParquetWriter::new(std::fs::File::create(&parquet).unwrap())
        .finish(&mut df)
        .unwrap();
    let mut ndjson = String::new();
    for i in 0..rows {
        let row = serde_json::json!({"name": keys[i], "qty": qty[i], "note": note[i]});
        ndjson.push_str(&format!("{row}\n"));
    }
    let ndjson = whole.write("rows.ndjson", &ndjson);
    for file in [parquet, ndjson] {
        let file = file.to_str().unwrap();
        let mut summaries = Vec::new();
        for (e, size) in [(&whole, "1G"), (&parts, "64K")] {
            let out = e.ok(&[
                "load",
                "--path",
                file,
                "--key-col",
                "name",
                "--part-size",
                size,
                "--json",
            ]);
            summaries.push(summary(&out));
        }
        assert_eq!(summaries[0].0, summaries[1].0, "{file}");
        assert_eq!(summaries[0].1, 1, "{file}");
        assert!(summaries[1].1 > 2, "{file}: {} parts", summaries[1].1);
        assert_eq!(parts.copies(), whole.copies(), "{file}");
    }
    assert!(leftovers(&parts).is_empty());
}

/// An SQLite database `name` beside the state with table `t (k, v)` of
/// `rows` rows `key{i}, i` (i from 1), the key of row `null_key` (if any)
/// NULL; its URL.
fn sqlite_table(e: &Env, name: &str, rows: usize, null_key: Option<usize>) -> String {
    let url = format!("sqlite://{}", e.path(name).display());
    super::sqlite_run(
        &url,
        &format!(
            "CREATE TABLE t (k text, v integer);
             INSERT INTO t WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < {rows})
             SELECT CASE WHEN i = {} THEN NULL ELSE 'key' || i END, i FROM c;",
            null_key.unwrap_or(0)
        ),
    );
    url
}

/// `dht load` of table `t` keyed by `k` from the SQLite database at `url`,
/// in parts of `size`.
fn sql_load<'a>(url: &'a str, size: &'a str) -> [&'a str; 11] {
    [
        "load",
        "--source",
        "sql",
        "--url",
        url,
        "--table",
        "t",
        "--key-col",
        "k",
        "--part-size",
        size,
    ]
}

#[test]
fn a_database_table_is_stored_in_parts_as_its_rows_stream_in() {
    let (whole, parts) = (Env::new(), Env::new());
    let url = sqlite_table(&whole, "src.db", 30_000, None);
    let mut summaries = Vec::new();
    for (e, size) in [(&whole, "1G"), (&parts, "32K")] {
        e.ok(&["init", "--nodes", "12"]);
        e.ok(&["put", "key7", "\"held before\""]);
        let out = e.ok(&[&sql_load(&url, size)[..], &["--json"]].concat());
        summaries.push(summary(&out));
        assert!(leftovers(e).is_empty(), "{:?}", leftovers(e));
    }
    let [(w, whole_parts), (p, parts_read)] = <[_; 2]>::try_from(summaries).unwrap();
    assert_eq!(p, w);
    assert_eq!(whole_parts, 1);
    assert!(parts_read > 2, "{parts_read} parts");
    assert_eq!(w["overwritten"], 1, "{w}");
    assert_eq!(parts.copies(), whole.copies());
    assert_eq!(parts.ok(&["ring"]), whole.ok(&["ring"]));
    assert_eq!(parts.dump()["key7"]["v"], Value::from(7));

    // A NULL key far into the table: the whole load is refused.
    let bad = sqlite_table(&parts, "bad.db", 20_000, Some(17_321));
    let before = parts.copies();
    let err = parts.fails(&sql_load(&bad, "16K"));
    assert!(err.contains("row 17321"), "{err}");
    assert_eq!(parts.copies(), before, "the failed load changed the ring");
    assert!(leftovers(&parts).is_empty());
}
