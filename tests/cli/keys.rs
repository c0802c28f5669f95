//! get, put, delete and dump, and how their output looks.

use crate::{Env, data};
use predicates::prelude::*;
use serde_json::{Value, json};

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

/// The table printer aligns by display width: CJK and emoji take two
/// columns each, so the node column starts at the same screen column on
/// every line.
#[test]
fn tables_align_wide_characters() {
    let e = Env::new();
    e.ok(&["init", "--nodes", "1"]);
    e.ok(&["put", "りんご", "1"]);
    e.ok(&["put", "🍎", "2"]);
    e.ok(&["put", "apple", "3"]);
    let table = e.ok(&["dump"]);
    let width = |s: &str| -> usize { s.chars().map(|c| if c.is_ascii() { 1 } else { 2 }).sum() };
    let node_columns: Vec<usize> = table
        .lines()
        .map(|l| {
            let at = l.find("node-0").or_else(|| l.find("NODE ")).unwrap();
            width(&l[..at])
        })
        .collect();
    assert_eq!(node_columns.len(), 4, "{table}");
    assert!(node_columns.windows(2).all(|w| w[0] == w[1]), "{table}");
}
