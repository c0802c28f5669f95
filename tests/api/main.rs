//! `dht serve` against real requests on a loopback port: every endpoint,
//! every role against every endpoint, hostile input, the event stream, the
//! command line writing the same file meanwhile, and the safe defaults.

mod client;
mod formats;
mod page;
#[path = "../common/served.rs"]
mod served;
mod transport;

use client::{Events, call, send};
use serde_json::{Value, json};
use served::{Ring, ok, run as dht, serve, serve_with};
use std::path::Path;

/// A ring holding the items, and a token per role.
fn ring() -> Ring {
    served::ring(None)
}

/// Everything the ring stores, every copy, as the command line lists it.
fn contents(state: &Path) -> String {
    ok(state, &["dump", "--replicas", "--format", "json"]) + &ok(state, &["ring", "--json"])
}

#[test]
fn every_endpoint_answers_each_role_as_it_may() {
    let r = ring();
    let s = serve(&r.state, &[]);
    // (method, path, body, least role): 0 reader, 1 writer, 2 admin.
    let endpoints: Vec<(&str, String, String, usize)> = vec![
        ("GET", "/api/v1/keys/apple".into(), String::new(), 0),
        ("GET", "/api/v1/keys?limit=5".into(), String::new(), 0),
        ("GET", "/api/v1/ring?limit=3".into(), String::new(), 0),
        ("GET", "/api/v1/ring/node-1".into(), String::new(), 0),
        ("GET", "/api/v1/check".into(), String::new(), 0),
        ("GET", "/api/v1/circle?max_nodes=2".into(), String::new(), 0),
        ("GET", "/api/v1/circle/near?at=0.5".into(), String::new(), 0),
        (
            "GET",
            "/api/v1/circle/nodes?names=node-1".into(),
            String::new(),
            0,
        ),
        ("GET", "/api/v1/log".into(), String::new(), 0),
        ("PUT", "/api/v1/keys/fig".into(), "{\"price\": 3}".into(), 1),
        ("DELETE", "/api/v1/keys/fig".into(), String::new(), 1),
        (
            "POST",
            "/api/v1/nodes".into(),
            "{\"name\": \"zed\"}".into(),
            2,
        ),
        (
            "POST",
            "/api/v1/maintain".into(),
            "{\"until_stable\": true}".into(),
            2,
        ),
        ("POST", "/api/v1/nodes/zed/leave".into(), String::new(), 2),
        ("GET", "/api/v1/users".into(), String::new(), 2),
    ];
    let tokens = [r.reader.as_str(), r.writer.as_str(), r.admin.as_str()];
    for (method, path, body, least) in &endpoints {
        let before = contents(&r.state);
        let a = call(s.addr, method, path, None, body);
        assert_eq!(a.status, 401, "{method} {path} without a token");
        assert!(a.json()["error"].is_string());
        let a = call(s.addr, method, path, Some("dht_not_a_token"), body);
        assert_eq!(a.status, 401, "{method} {path} with an unknown token");
        for (role, token) in tokens.iter().enumerate().take(*least) {
            let a = call(s.addr, method, path, Some(token), body);
            assert_eq!(a.status, 403, "{method} {path} as role {role}");
            assert!(a.json()["error"].as_str().unwrap().contains("this needs"));
        }
        assert_eq!(
            contents(&r.state),
            before,
            "{method} {path}: refused requests changed the ring"
        );
        let a = call(s.addr, method, path, Some(tokens[*least]), body);
        assert!(
            a.status == 200,
            "{method} {path} as its least role: {} {}",
            a.status,
            String::from_utf8_lossy(&a.body)
        );
    }
    // The answers say what the command line says.
    let got = call(s.addr, "GET", "/api/v1/keys/apple", Some(&r.reader), "").json();
    assert_eq!(got["found"], true);
    assert!(got["hops"].is_number() && got["path"].is_array());
    let cli: Value = serde_json::from_str(&ok(&r.state, &["get", "apple", "--json"])).unwrap();
    assert_eq!(got["value"], cli["value"]);
    // Every change above was logged with its author, newest first.
    let log = call(s.addr, "GET", "/api/v1/log?limit=5", Some(&r.reader), "").json();
    let ops: Vec<(&str, &str)> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["op"].as_str().unwrap(), c["author"].as_str().unwrap()))
        .collect();
    assert_eq!(
        ops,
        [
            ("leave", "ada"),
            ("maintain", "ada"),
            ("join", "ada"),
            ("delete", "walt"),
            ("put", "walt")
        ]
    );
    // The OpenAPI document describes every endpoint.
    let doc = call(s.addr, "GET", "/api/v1/openapi.json", None, "").json();
    for p in [
        "/api/v1/keys/{key}",
        "/api/v1/keys",
        "/api/v1/ring",
        "/api/v1/check",
        "/api/v1/nodes",
        "/api/v1/nodes/{node}/fail",
        "/api/v1/maintain",
        "/api/v1/load",
        "/api/v1/events",
        "/api/v1/users",
        "/api/v1/log",
        "/api/v1/me",
        "/api/v1/circle",
        "/api/v1/circle/near",
        "/api/v1/circle/nodes",
        "/api/v1/ring/{node}/keys",
    ] {
        assert!(doc["paths"][p].is_object(), "openapi lacks {p}");
    }
}

#[test]
fn bad_input_gets_a_json_error_and_changes_nothing() {
    let r = ring();
    let s = serve(&r.state, &["--max-body", "1000", "--max-upload", "2000"]);
    let before = contents(&r.state);
    let w = Some(r.writer.as_str());
    let a = Some(r.admin.as_str());
    let cases: Vec<(u16, Answer)> = vec![
        (
            400,
            call(s.addr, "PUT", "/api/v1/keys/fig", w, "{\"price\": "),
        ),
        (
            413,
            call(
                s.addr,
                "PUT",
                "/api/v1/keys/fig",
                w,
                &format!("\"{}\"", "x".repeat(5000)),
            ),
        ),
        // Bytes that are not UTF-8, percent-encoded (raw ones are refused
        // by the HTTP layer before any handler, with a bare 400).
        (400, send(s.addr, "GET", b"/api/v1/keys/%FF%FE", w, b"")),
        (404, call(s.addr, "GET", "/api/v1/keys/no-such-key", w, "")),
        (
            404,
            call(s.addr, "GET", "/api/v1/keys/apple?from=nobody", w, ""),
        ),
        (
            404,
            call(s.addr, "DELETE", "/api/v1/keys/no-such-key", w, ""),
        ),
        (404, call(s.addr, "GET", "/api/v1/ring/nobody", w, "")),
        (400, call(s.addr, "GET", "/api/v1/keys?limit=0", w, "")),
        (400, call(s.addr, "GET", "/api/v1/keys?limit=many", w, "")),
        (
            400,
            call(s.addr, "POST", "/api/v1/nodes", a, "{\"name\": 7}"),
        ),
        (
            400,
            call(
                s.addr,
                "POST",
                "/api/v1/nodes",
                a,
                "{\"name\": \" padded \"}",
            ),
        ),
        (
            400,
            call(s.addr, "POST", "/api/v1/nodes", a, "{\"name\": \"node-1\"}"),
        ),
        (
            404,
            call(s.addr, "POST", "/api/v1/nodes/nobody/fail", a, ""),
        ),
        (
            404,
            call(s.addr, "POST", "/api/v1/nodes/nobody/leave", a, ""),
        ),
        (
            400,
            call(s.addr, "POST", "/api/v1/maintain", a, "{\"rounds\": 0}"),
        ),
        (
            400,
            call(s.addr, "POST", "/api/v1/load?format=xlsx", w, "a,b\n"),
        ),
        (
            400,
            call(
                s.addr,
                "POST",
                "/api/v1/load?format=csv",
                w,
                "key,value\n\"open,1\n",
            ),
        ),
        (
            413,
            call(
                s.addr,
                "POST",
                "/api/v1/load?format=csv",
                w,
                &format!("key,value\n{}", "k,1\n".repeat(1000)),
            ),
        ),
        (404, call(s.addr, "GET", "/api/v1/nothing-here", w, "")),
        (
            400,
            call(
                s.addr,
                "POST",
                "/api/v1/users",
                a,
                "{\"name\": \"x y\", \"role\": \"reader\"}",
            ),
        ),
        (
            400,
            call(
                s.addr,
                "POST",
                "/api/v1/users",
                a,
                "{\"name\": \"xy\", \"role\": \"root\"}",
            ),
        ),
        (
            409,
            call(
                s.addr,
                "POST",
                "/api/v1/users",
                a,
                "{\"name\": \"walt\", \"role\": \"reader\"}",
            ),
        ),
    ];
    for (i, (want, got)) in cases.iter().enumerate() {
        assert_eq!(
            got.status,
            *want,
            "case {i}: {}",
            String::from_utf8_lossy(&got.body)
        );
        let body: Value = serde_json::from_slice(&got.body).unwrap_or_else(|e| {
            panic!(
                "case {i}: not JSON ({e}): {:?}",
                String::from_utf8_lossy(&got.body)
            )
        });
        assert!(
            body["error"].as_str().is_some_and(|e| !e.is_empty()),
            "case {i}"
        );
    }
    assert_eq!(
        contents(&r.state),
        before,
        "a refused request changed the ring"
    );
    // A crash the policy refuses is 409, and changes nothing either.
    ok(
        &r.state,
        &["init", "--nodes", "2", "--replicas", "1", "--force"],
    );
    ok(&r.state, &["put", "solo", "1"]);
    let before = contents(&r.state);
    let holder = call(s.addr, "GET", "/api/v1/keys/solo", w, "").json()["node"]
        .as_str()
        .unwrap()
        .to_owned();
    let got = call(
        s.addr,
        "POST",
        &format!("/api/v1/nodes/{holder}/fail"),
        a,
        "",
    );
    assert_eq!(got.status, 409, "{}", String::from_utf8_lossy(&got.body));
    assert!(
        got.json()["error"]
            .as_str()
            .unwrap()
            .contains("only live copy")
    );
    assert_eq!(contents(&r.state), before);
}

use client::Answer;

#[test]
fn changes_stream_to_every_subscriber_whoever_makes_them() {
    let r = ring();
    let s = serve(&r.state, &[]);
    let mut events = Events::open(s.addr, Some(&r.reader));
    let put = call(
        s.addr,
        "PUT",
        "/api/v1/keys/fig",
        Some(&r.writer),
        "\"fresh\"",
    );
    assert_eq!(put.status, 200);
    let e = events.next();
    assert_eq!(
        (e["op"].as_str(), e["target"].as_str(), e["author"].as_str()),
        (Some("put"), Some("fig"), Some("walt"))
    );
    // A change made with the command line on the same file reaches the
    // stream too, and the server answers with it at once.
    ok(&r.state, &["put", "kiwi", "\"green\""]);
    let e = events.next();
    assert_eq!(e["op"], "put");
    assert_eq!(e["target"], "kiwi");
    assert!(e["author"].as_str().unwrap().starts_with("cli:"));
    let got = call(s.addr, "GET", "/api/v1/keys/kiwi", Some(&r.reader), "").json();
    assert_eq!(got["value"], json!("green"));
    // The server's own writes are there for the command line.
    assert_eq!(ok(&r.state, &["get", "fig"]).trim(), "\"fresh\"");
    let up = send(
        s.addr,
        "POST",
        b"/api/v1/load?format=csv",
        Some(&r.writer),
        b"key,value\nplum,1\npear,2\n",
    );
    assert_eq!(up.status, 200, "{}", String::from_utf8_lossy(&up.body));
    assert_eq!(
        up.json()["inserted"].as_u64().unwrap() + up.json()["overwritten"].as_u64().unwrap(),
        2
    );
    let e = events.next();
    assert_eq!(
        (e["op"].as_str(), e["detail"].as_str()),
        (Some("load"), Some("2 records"))
    );
    let crash = call(
        s.addr,
        "POST",
        "/api/v1/nodes/node-3/fail",
        Some(&r.admin),
        "",
    );
    assert_eq!(
        crash.status,
        200,
        "{}",
        String::from_utf8_lossy(&crash.body)
    );
    assert_eq!(events.next()["op"], "fail");
}

#[test]
fn sixteen_clients_and_the_command_line_lose_no_write() {
    let r = ring();
    let s = serve(&r.state, &[]);
    let addr = s.addr;
    let cli_state = r.state.clone();
    let cli = std::thread::spawn(move || {
        for i in 0..40 {
            ok(&cli_state, &["put", &format!("cli-{i}"), &i.to_string()]);
        }
    });
    let clients: Vec<_> = (0..16)
        .map(|c| {
            let token = r.writer.clone();
            std::thread::spawn(move || {
                for i in 0..200 {
                    let a = call(
                        addr,
                        "PUT",
                        &format!("/api/v1/keys/c{c}-{i}"),
                        Some(&token),
                        &i.to_string(),
                    );
                    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
                }
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    cli.join().unwrap();
    let dump: Value = serde_json::from_str(&ok(&r.state, &["dump", "--format", "json"])).unwrap();
    let keys: std::collections::BTreeSet<String> = dump
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["key"].as_str().unwrap().to_owned())
        .collect();
    for c in 0..16 {
        for i in 0..200 {
            let k = format!("c{c}-{i}");
            assert!(keys.contains(&k), "{k} lost");
        }
        let a = call(
            addr,
            "GET",
            &format!("/api/v1/keys/c{c}-199"),
            Some(&r.reader),
            "",
        );
        assert_eq!(a.json()["value"], json!(199));
    }
    for i in 0..40 {
        assert!(keys.contains(&format!("cli-{i}")), "cli-{i} lost");
        let a = call(
            addr,
            "GET",
            &format!("/api/v1/keys/cli-{i}"),
            Some(&r.reader),
            "",
        );
        assert_eq!(a.json()["value"], json!(i));
    }
}

#[test]
fn unsafe_binds_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("ring.db");
    ok(&state, &["init", "--nodes", "4"]);
    let o = dht(&state, &["serve", "--bind", "0.0.0.0:0"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no user exists"));
    ok(&state, &["user", "add", "ada", "--role", "admin"]);
    let o = dht(&state, &["serve", "--bind", "0.0.0.0:0"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--insecure-http"));
    // Public reads without a token, writes still need one.
    let s = serve(&state, &["--public-read"]);
    assert_eq!(call(s.addr, "GET", "/api/v1/check", None, "").status, 200);
    assert_eq!(call(s.addr, "PUT", "/api/v1/keys/a", None, "1").status, 401);
}

/// Runs a get and a put on a server whose `RUST_LOG` is `filter` (unset
/// when None), stops it, and returns what it wrote to standard error.
fn server_log(r: &Ring, filter: Option<&str>) -> String {
    let log = r
        .state
        .with_file_name(format!("serve-{}.log", filter.is_some()));
    let s = serve_with(&r.state, &[], |cmd| {
        cmd.env_remove("RUST_LOG")
            .stderr(std::fs::File::create(&log).unwrap());
        if let Some(filter) = filter {
            cmd.env("RUST_LOG", filter);
        }
    });
    let got = call(s.addr, "GET", "/api/v1/keys/apple", Some(&r.reader), "");
    assert_eq!(got.status, 200);
    let put = call(s.addr, "PUT", "/api/v1/keys/fig", Some(&r.writer), "3");
    assert_eq!(put.status, 200);
    drop(s);
    std::fs::read_to_string(log).unwrap()
}

#[test]
fn requests_are_traced_when_asked_and_tokens_never_are() {
    let r = ring();
    let traced = server_log(&r, Some("tower_http=debug"));
    for wanted in ["/api/v1/keys/apple", "/api/v1/keys/fig", "status=200"] {
        assert!(
            traced.contains(wanted),
            "{wanted:?} not in the log:\n{traced}"
        );
    }
    assert!(
        !traced.contains('\x1b'),
        "colour codes in a log file:\n{traced}"
    );
    let quiet = server_log(&r, None);
    assert!(!quiet.contains("/api/v1/keys/apple"), "{quiet}");
    for log in [&traced, &quiet] {
        for token in [&r.reader, &r.writer, &r.admin] {
            assert!(!log.contains(token.as_str()), "a token in the log:\n{log}");
        }
    }
}

#[test]
fn the_next_request_sees_what_the_command_line_committed() {
    let r = ring();
    let s = serve(&r.state, &[]);
    let get = |key: &str| {
        call(
            s.addr,
            "GET",
            &format!("/api/v1/keys/{key}"),
            Some(&r.reader),
            "",
        )
    };
    for i in 0..12 {
        // The server has just looked at the file (and found it unchanged).
        assert_eq!(get("apple").status, 200);
        ok(&r.state, &["put", "kiwi", &i.to_string()]);
        assert_eq!(get("kiwi").json()["value"], json!(i), "round {i}");
        if i % 4 == 3 {
            // A pause lets the server's watcher copy the log into the file,
            // after which the next write may start the log over.
            std::thread::sleep(std::time::Duration::from_millis(300));
            ok(&r.state, &["delete", "kiwi"]);
            assert_eq!(get("kiwi").status, 404, "round {i}");
        }
    }
}
