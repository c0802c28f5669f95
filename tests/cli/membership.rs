//! join, leave, fail and concurrent writers.

use crate::Env;
use predicates::prelude::*;
use serde_json::{Value, json};

#[test]
fn membership_changes_keep_every_key() {
    let e = Env::new();
    e.load_items(&["--nodes", "10"]);
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

/// `fail --force` on the node holding a key's only copy says which keys are
/// now lost, instead of "replicas remain elsewhere".
#[test]
fn forced_fail_names_the_keys_it_lost() {
    let e = Env::new();
    e.ok(&["init", "--nodes", "3", "--replicas", "1"]);
    e.ok(&["put", "lonely", "1"]);
    let holder = e.ok(&["dump", "--format", "json"]);
    let v: Value = serde_json::from_str(&holder).unwrap();
    let node = v[0]["node"].as_str().unwrap().to_owned();
    let refused = e.fails(&["fail", &node]);
    assert!(refused.contains("\"lonely\""), "{refused}");
    let out = e.ok(&["fail", &node, "--force"]);
    assert!(out.contains("lost: \"lonely\""), "{out}");
    assert!(!out.contains("replicas remain"), "{out}");
    // check reports the loss (exit 1) until the key is written again.
    let out = e.dht().args(["check"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("key \"lonely\" is lost"), "{text}");
    e.ok(&["maintain", "--until-stable"]);
    assert!(e.dht().args(["check"]).output().unwrap().status.code() == Some(1));
    e.ok(&["put", "lonely", "2"]);
    e.ok(&["check"]);
}

/// Node names are validated (`join ""` used to add a nameless node) and
/// `join --count 0` is refused; neither changes the ring.
#[test]
fn bad_node_names_and_counts_are_refused() {
    let e = Env::new();
    e.ok(&["init", "--nodes", "2"]);
    let before = e.state_bytes();
    for (args, says) in [
        (&["join", ""][..], "empty"),
        (&["join", "a\tb"][..], "control character"),
        (&["join", " lead"][..], "space"),
        (&["join", "--count", "0"][..], "0"),
    ] {
        let err = e.fails(args);
        assert!(err.contains(says), "{args:?}: {err}");
    }
    assert_eq!(e.state_bytes(), before);
    let ring: Value = serde_json::from_str(&e.ok(&["ring", "--json"])).unwrap();
    assert_eq!(ring.as_array().unwrap().len(), 2);
}

/// `join`, `leave` and `fail` check the names they are given through the
/// nodes table's name index before reading the whole ring: on a ring with
/// one damaged node row far along the ring, a mistyped name is answered as
/// such (the damaged row is never read), while a real change reads the
/// whole ring and so reports the damage. Nothing changes either way.
#[test]
fn node_names_are_checked_before_the_whole_ring_is_read() {
    let e = Env::new();
    e.ok(&["init", "--nodes", "40"]);
    let ring: Value = serde_json::from_str(&e.ok(&["ring", "--json"])).unwrap();
    let far = ring[30]["node"].as_str().unwrap().to_owned();
    crate::sqlite_run(
        &format!("sqlite://{}", e.state().display()),
        &format!("UPDATE nodes SET routing = x'0102' WHERE name = '{far}'"),
    );
    let before = e.state_bytes();
    for (args, says) in [
        (
            &["leave", "nosuch"][..],
            "no live node named \"nosuch\" (the ring's nodes: ",
        ),
        (&["fail", "nosuch"][..], "no live node named \"nosuch\""),
        (
            &["join", "node-3"][..],
            "a node named \"node-3\" is already in the ring",
        ),
        (
            &["join", "--via", "nosuch", "x"][..],
            "no live node named \"nosuch\"",
        ),
        (&["join", ""][..], "empty"),
    ] {
        let err = e.fails(args);
        assert!(err.contains(says), "{args:?}: {err}");
    }
    let err = e.fails(&["leave", "node-3"]);
    assert!(err.contains("damaged"), "{err}");
    assert_eq!(e.state_bytes(), before);
}

/// The same on a ring with virtual nodes, where leave and fail name a
/// physical node (its `host#i` rows read by name) and a mistyped one is
/// answered with the first physical nodes in ring order, read by rank, in
/// the words the whole ring gives.
#[test]
fn physical_node_names_are_checked_before_the_whole_ring_is_read() {
    let e = Env::new();
    e.ok(&["init", "--nodes", "40", "--vnodes", "2"]);
    let ring: Value = serde_json::from_str(&e.ok(&["ring", "--json"])).unwrap();
    let rows = ring.as_array().unwrap();
    assert_eq!(rows.len(), 80);
    let mut hosts: Vec<String> = Vec::new();
    for row in rows {
        let host = row["host"].as_str().unwrap().to_owned();
        if !hosts.contains(&host) {
            hosts.push(host);
        }
    }
    let far = &rows[76];
    let far_host = far["host"].as_str().unwrap().to_owned();
    crate::sqlite_run(
        &format!("sqlite://{}", e.state().display()),
        &format!(
            "UPDATE nodes SET routing = x'0102' WHERE name = '{}'",
            far["node"].as_str().unwrap()
        ),
    );
    let live = hosts.iter().find(|h| **h != far_host).unwrap();
    let before = e.state_bytes();
    let listed = format!(
        "no live node named \"nosuch\" (the ring's nodes: {}, ...; `dht ring` lists them)",
        hosts[..8].join(", ")
    );
    let virtual_node = format!("{live}#1");
    let with_mark = "a#b".to_owned();
    for (args, says) in [
        (vec!["leave", "nosuch"], listed.clone()),
        (vec!["fail", "nosuch"], listed.clone()),
        (
            vec!["leave", &virtual_node],
            format!("\"{live}#1\" is a virtual node of \"{live}\""),
        ),
        (
            vec!["join", live],
            format!("a node named \"{live}\" is already in the ring"),
        ),
        (
            vec!["join", &with_mark],
            "'#' separates a virtual node's number".to_owned(),
        ),
        (
            vec!["join", "--via", "nosuch", "x"],
            "no live node named \"nosuch\"".to_owned(),
        ),
    ] {
        let err = e.fails(&args);
        assert!(err.contains(&says), "{args:?}: {err}\nexpected: {says}");
    }
    let err = e.fails(&["leave", live]);
    assert!(err.contains("damaged"), "{err}");
    assert_eq!(e.state_bytes(), before);
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
