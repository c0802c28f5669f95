//! Commands read on demand (the default) and with `--whole-ring` print the
//! same, on a ring changed by joins, a leave and a crash left unrepaired
//! (the listing of `ring`, read a row at a time, too); `ring --node` shows
//! one node as `ring` does.

use crate::{Env, data};
use std::process::Output;

/// Everything a command shows: status, stdout and stderr.
fn shown(o: Output) -> (Option<i32>, String, String) {
    (
        o.status.code(),
        String::from_utf8(o.stdout).unwrap(),
        String::from_utf8(o.stderr).unwrap(),
    )
}

/// A 40-node ring holding the items, then churned without repair.
fn churned() -> Env {
    let e = Env::new();
    e.ok(&["init", "--nodes", "40"]);
    e.ok(&["load", "--source", "csv", "--path", &data("items.csv")]);
    e.ok(&["join", "--count", "3"]);
    e.ok(&["maintain", "--rounds", "1"]);
    e.ok(&["leave", "node-5"]);
    e.ok(&["fail", "node-9"]);
    e
}

#[test]
fn reads_on_demand_print_what_whole_ring_reads_print() {
    let e = churned();
    let keys = ["apple", "banana", "passion fruit", "no such key"];
    for key in keys {
        for extra in [
            &[][..],
            &["--path"][..],
            &["--json"][..],
            &["--path", "--from", "node-3"][..],
            &["--from", "node-9"][..],
            &["--from", "nobody"][..],
        ] {
            let mut args = vec!["get", key];
            args.extend_from_slice(extra);
            let lazy = shown(e.dht().args(&args).output().unwrap());
            args.insert(0, "--whole-ring");
            let whole = shown(e.dht().args(&args).output().unwrap());
            assert_eq!(lazy, whole, "dht {args:?}");
        }
    }
    for listing in [
        &[][..],
        &["--fingers"][..],
        &["--json"][..],
        &["--svg", "-", "--path", "apple"][..],
        &["--svg", "-", "--path", "kiwi", "--from", "node-3"][..],
        &["--svg", "-", "--path", "kiwi", "--from", "node-9"][..],
    ] {
        let mut args = vec!["ring"];
        args.extend_from_slice(listing);
        let by_row = shown(e.dht().args(&args).output().unwrap());
        args.insert(0, "--whole-ring");
        let whole = shown(e.dht().args(&args).output().unwrap());
        assert_eq!(by_row, whole, "dht {args:?}");
    }
    for name in ["node-3", "new-1", "node-9"] {
        for extra in [&[][..], &["--fingers"][..], &["--json"][..]] {
            let mut args = vec!["ring", "--node", name];
            args.extend_from_slice(extra);
            let lazy = shown(e.dht().args(&args).output().unwrap());
            args.insert(0, "--whole-ring");
            let whole = shown(e.dht().args(&args).output().unwrap());
            assert_eq!(lazy, whole, "dht {args:?}");
        }
    }
}

#[test]
fn writes_on_demand_leave_the_file_a_whole_ring_write_leaves() {
    let a = churned();
    let b = Env::new();
    std::fs::create_dir_all(b.path(".dht")).unwrap();
    std::fs::copy(a.state(), b.state()).unwrap();
    let script: [&[&str]; 6] = [
        &["put", "apple", "{\"color\": \"green\"}"],
        &["put", "kiwi", "7"],
        &["delete", "banana"],
        &["delete", "no such key"],
        &["put", "passion fruit", "sweet"],
        &["delete", "kiwi"],
    ];
    for cmd in script {
        let lazy = shown(a.dht().args(cmd).output().unwrap());
        let mut whole_args = vec!["--whole-ring"];
        whole_args.extend_from_slice(cmd);
        let whole = shown(b.dht().args(&whole_args).output().unwrap());
        assert_eq!(lazy, whole, "dht {cmd:?}");
        assert_eq!(a.copies(), b.copies(), "after dht {cmd:?}");
    }
    assert_eq!(
        a.ok(&["ring", "--json"]),
        b.ok(&["ring", "--json"]),
        "the two rings differ"
    );
}

/// After maintenance, `ring --node` shows exactly the node's row of `ring`.
#[test]
fn ring_node_shows_the_nodes_row() {
    let e = churned();
    e.ok(&["maintain", "--until-stable"]);
    let all: serde_json::Value = serde_json::from_str(&e.ok(&["ring", "--json"])).unwrap();
    for row in all.as_array().unwrap().iter().step_by(7) {
        let name = row["node"].as_str().unwrap();
        let one: serde_json::Value =
            serde_json::from_str(&e.ok(&["ring", "--node", name, "--json"])).unwrap();
        assert_eq!(&one, row, "ring --node {name}");
    }
    let err = e.fails(&["ring", "--node", "nobody"]);
    assert!(err.contains("no live node named \"nobody\""), "{err}");
    assert!(err.contains("the ring's nodes: "), "{err}");
}
