//! Help, completions, the man page and exit statuses.

use crate::{Env, data};
use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::json;

#[test]
fn help_explains_every_command() {
    for cmd in [
        "init",
        "load",
        "dump",
        "get",
        "put",
        "delete",
        "join",
        "leave",
        "fail",
        "maintain",
        "ring",
        "check",
        "completions",
        "man",
    ] {
        Command::cargo_bin("dht")
            .unwrap()
            .args([cmd, "--help"])
            .assert()
            .success()
            .stdout(predicate::str::contains("Example"));
    }
}

#[test]
fn completions_and_man_page() {
    let e = Env::new();
    for (shell, mark) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef dht"),
        ("fish", "complete -c dht"),
    ] {
        let script = e.ok(&["completions", shell]);
        assert!(script.contains(mark), "{shell}: {script}");
        assert!(script.contains("maintain"), "{shell} completes commands");
    }
    let man = e.ok(&["man"]);
    assert!(man.starts_with(".ie") || man.contains(".TH dht"), "{man}");
    assert!(man.contains("maintain"));
}

/// A command whose change committed but whose report cannot be written
/// (stdout is a full device) exits 3, not 101 (a panic) or 2 (an error that
/// changed nothing), and the change is there.
#[test]
fn a_report_that_cannot_be_written_after_a_commit_exits_3() {
    let e = Env::new();
    e.ok(&["init", "--nodes", "3"]);
    let full = || {
        std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap()
    };
    let run = |args: &[&str]| {
        std::process::Command::new(assert_cmd::cargo::cargo_bin("dht"))
            .current_dir(e.dir.path())
            .env_remove("DHT_STATE")
            .args(args)
            .stdout(full())
            .output()
            .unwrap()
    };
    let out = run(&["put", "q", "1"]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("committed"), "{err}");
    assert_eq!(e.get("q"), json!(1));
    // A read that cannot print is an error (2): it changed nothing.
    let out = run(&["get", "q"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let out = run(&["load", "--source", "csv", "--path", &data("items.csv")]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert!(e.dump().contains_key("apple"));
}

/// A database error is said once, not three times over as a chain that
/// repeats the driver's words; a directory given as the state file is
/// named as one.
#[test]
fn errors_are_said_once() {
    let e = Env::new();
    let err = e.fails(&["--state", "/proc/no-such-dir/x.db", "init"]);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    let words = "No such file or directory";
    assert!(err.matches(words).count() <= 1, "{err}");
    std::fs::create_dir(e.path("adir")).unwrap();
    let err = e.fails(&["--state", "adir", "dump"]);
    assert!(err.contains("is a directory"), "{err}");
}

/// Every command that changes or checks the ring prints one line of JSON
/// with `--json`, for scripts, and exits with the status it would without.
#[test]
fn changes_and_checks_print_json_for_scripts() {
    let e = Env::new();
    let parse = |s: String| -> serde_json::Value {
        assert_eq!(s.lines().count(), 1, "one line: {s}");
        serde_json::from_str(&s).unwrap()
    };
    let init = parse(e.ok(&["init", "--nodes", "5", "--replicas", "2", "--json"]));
    assert_eq!(
        (
            &init["nodes"],
            &init["replicas"],
            &init["bits"],
            &init["vnodes"]
        ),
        (&json!(5), &json!(2), &json!(160), &json!(1))
    );
    assert_eq!(init["physical_nodes"], json!(null));
    assert_eq!(init["built"], "protocol");
    assert!(init["rounds"].as_u64().is_some());
    assert!(init["state"].as_str().unwrap().ends_with("ring.db"));

    let put = parse(e.ok(&["put", "k", "1", "--json"]));
    assert_eq!(
        (&put["key"], &put["replaced"]),
        (&json!("k"), &json!(false))
    );
    let node = put["node"].as_str().unwrap().to_owned();
    assert_eq!(put["node_id"].as_str().unwrap().len(), 40);
    let again = parse(e.ok(&["put", "k", "2", "--json"]));
    assert_eq!(
        (&again["node"], &again["replaced"]),
        (&json!(node), &json!(true))
    );
    let del = parse(e.ok(&["delete", "k", "--json"]));
    assert_eq!(del["deleted"], true);
    let missing = e.dht().args(["delete", "k", "--json"]).output().unwrap();
    assert_eq!(missing.status.code(), Some(1));
    assert_eq!(
        parse(String::from_utf8(missing.stdout).unwrap())["deleted"],
        false
    );

    let joined = parse(e.ok(&["join", "extra", "--json"]));
    let joined = joined["joined"].as_array().unwrap();
    assert_eq!(joined.len(), 1);
    assert_eq!(joined[0]["name"], "extra");
    assert!(joined[0]["successor"]["name"].is_string());
    let m = parse(e.ok(&["maintain", "--until-stable", "--json"]));
    assert_eq!(
        (&m["stable"], &m["unsettled"]),
        (&json!(true), &json!(null))
    );
    let ok = parse(e.ok(&["check", "--json"]));
    assert_eq!((&ok["ok"], &ok["nodes"]), (&json!(true), &json!(6)));
    assert_eq!(ok["problems"], json!([]));

    e.ok(&["put", "kept", "1"]);
    let left = parse(e.ok(&["leave", "extra", "--json"]));
    assert!(
        left["node"].as_str().unwrap().starts_with("extra ("),
        "{left}"
    );
    assert!(left["entries"].as_u64().is_some());
    let failed = parse(e.ok(&["fail", "node-1", "--json"]));
    assert!(failed["node"].as_str().unwrap().starts_with("node-1 ("));
    assert_eq!(failed["lost"], json!([]));
    let after = e.dht().args(["check", "--json"]).output().unwrap();
    assert_eq!(after.status.code(), Some(1));
    let after = parse(String::from_utf8(after.stdout).unwrap());
    assert_eq!(after["ok"], false);
    assert!(!after["problems"].as_array().unwrap().is_empty());
    e.fails(&["check", "--json", "--repair"]);
}
