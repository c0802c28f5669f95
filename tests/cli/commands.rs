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
