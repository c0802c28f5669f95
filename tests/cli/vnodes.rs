//! Rings with virtual nodes: each physical node runs V Chord nodes; join,
//! leave and fail act on whole physical nodes, `ring` groups by host, and a
//! key's copies live on distinct physical nodes, so a host's crash loses
//! nothing.

use crate::Env;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

fn ring(e: &Env) -> Vec<Value> {
    let j: Value = serde_json::from_str(&e.ok(&["ring", "--json"])).unwrap();
    j.as_array().unwrap().clone()
}

/// The physical node of every stored copy of every key.
fn copy_hosts(e: &Env) -> BTreeMap<String, Vec<String>> {
    let host_of: BTreeMap<String, String> = ring(e)
        .iter()
        .map(|n| {
            (
                n["node"].as_str().unwrap().to_owned(),
                n["host"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let copies: Value = serde_json::from_str(&e.copies()).unwrap();
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for c in copies.as_array().unwrap() {
        let node = c["node"].as_str().unwrap();
        out.entry(c["key"].as_str().unwrap().to_owned())
            .or_default()
            .push(host_of[node].clone());
    }
    out
}

#[test]
fn physical_nodes_join_leave_and_crash_whole() {
    let e = Env::new();
    let out = e.load_items(&["--nodes", "5", "--vnodes", "4", "--replicas", "2"]);
    assert!(
        out.contains("created a ring of 5 physical nodes of 4 virtual nodes each (20 Chord nodes)"),
        "{out}"
    );
    let before = e.dump();
    let rows = ring(&e);
    assert_eq!(rows.len(), 20);
    // Grouped by host: each host's four rows together.
    let hosts: Vec<&str> = rows.iter().map(|r| r["host"].as_str().unwrap()).collect();
    let mut runs = hosts.clone();
    runs.dedup();
    assert_eq!(runs.len(), 5, "{hosts:?}");
    let table = e.ok(&["ring"]);
    assert!(table.starts_with("HOST"), "{table}");
    assert!(table.contains("20 nodes on 5 physical nodes (4 virtual nodes each)"));
    // Two copies of every key, on two different physical nodes.
    for (key, on) in copy_hosts(&e) {
        let distinct: BTreeSet<&String> = on.iter().collect();
        assert_eq!((on.len(), distinct.len()), (2, 2), "{key}: {on:?}");
    }
    // A physical node's name shows its virtual nodes; a virtual node's,
    // that node alone.
    let host = e.ok(&["ring", "--node", "node-1"]);
    assert!(host.contains("4 of 20 nodes"), "{host}");
    let j: Value = serde_json::from_str(&e.ok(&["ring", "--node", "node-1", "--json"])).unwrap();
    assert_eq!(j.as_array().map(Vec::len), Some(4), "{j}");
    let j: Value = serde_json::from_str(&e.ok(&["ring", "--node", "node-1#2", "--json"])).unwrap();
    assert_eq!(j["host"], "node-1");
    let check = e.ok(&["check"]);
    assert!(
        check.contains("each on a different physical node"),
        "{check}"
    );

    // A virtual node cannot be crashed or made to leave on its own.
    let err = e.fails(&["fail", "node-2#1"]);
    assert!(err.contains("is a virtual node of \"node-2\""), "{err}");
    // Crashing a whole host loses nothing: its keys are elsewhere.
    let out = e.ok(&["fail", "node-2"]);
    assert!(out.contains("node-2 (4 virtual nodes) crashed"), "{out}");
    assert!(out.contains("replicas remain elsewhere"), "{out}");
    assert_eq!(ring(&e).len(), 16);
    // The listing read a row at a time groups hosts as the ring built
    // whole does, pointers to the crashed nodes included.
    for listing in [&["ring"][..], &["ring", "--fingers"], &["ring", "--json"]] {
        let whole: Vec<&str> = ["--whole-ring"].iter().chain(listing).copied().collect();
        assert_eq!(e.ok(listing), e.ok(&whole), "{listing:?}");
    }
    for (k, v) in &before {
        assert_eq!(&e.get(k), v, "{k} right after the crash");
    }
    e.ok(&["maintain", "--until-stable"]);
    e.ok(&["check"]);

    let out = e.ok(&["join", "carol"]);
    assert!(
        out.starts_with("joined carol as 4 virtual nodes: carol#0 ("),
        "{out}"
    );
    let err = e.fails(&["join", "bad#name"]);
    assert!(err.contains("'#' separates"), "{err}");
    e.ok(&["maintain", "--until-stable"]);
    e.ok(&["leave", "node-0"]);
    e.ok(&["maintain", "--until-stable"]);
    e.ok(&["check"]);
    assert_eq!(e.dump(), before);
    let hosts: BTreeSet<String> = ring(&e)
        .iter()
        .map(|r| r["host"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        hosts,
        ["carol", "node-1", "node-3", "node-4"]
            .map(String::from)
            .into()
    );
    for (key, on) in copy_hosts(&e) {
        let distinct: BTreeSet<&String> = on.iter().collect();
        assert_eq!((on.len(), distinct.len()), (2, 2), "{key}: {on:?}");
    }
}

#[test]
fn a_host_holding_sole_copies_is_not_crashed_without_force() {
    let e = Env::new();
    let init: Value = serde_json::from_str(&e.ok(&[
        "init",
        "--nodes",
        "3",
        "--vnodes",
        "2",
        "--replicas",
        "1",
        "--json",
    ]))
    .unwrap();
    // Chord nodes, and the physical nodes they run on.
    assert_eq!(
        (&init["nodes"], &init["physical_nodes"], &init["vnodes"]),
        (&json!(6), &json!(3), &json!(2))
    );
    e.ok(&["put", "solo", "1"]);
    let j: Value = serde_json::from_str(&e.ok(&["get", "solo", "--json"])).unwrap();
    let node = j["node"].as_str().unwrap();
    let host = node.rsplit_once('#').unwrap().0;
    let err = e.fails(&["fail", host]);
    assert!(err.contains("only live copy of 1 keys"), "{err}");
    assert_eq!(ring(&e).len(), 6, "a refused crash changes nothing");
}

#[test]
fn explicit_ids_and_virtual_nodes_do_not_mix() {
    let e = Env::new();
    let err = e.fails(&["init", "--bits", "6", "--ids", "1,8", "--vnodes", "2"]);
    assert!(err.contains("cannot be used with"), "{err}");
    assert!(!e.state().exists());
}
