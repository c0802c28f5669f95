//! `dht ring --svg`: the circle drawn for reports, checked for structure
//! (one ring, one mark per node, the lookup's arrows between the nodes the
//! lookup asked), and its failures leaving nothing behind.

use crate::Env;
use serde_json::Value;

/// The `data-from`/`data-to` pairs of the picture's hop arrows.
fn hops(svg: &str) -> Vec<(String, String)> {
    let attr = |line: &str, name: &str| {
        let start = line.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
        line[start..][..line[start..].find('"').unwrap()].to_owned()
    };
    svg.lines()
        .filter(|l| l.starts_with("<line class=\"hop"))
        .map(|l| (attr(l, "data-from"), attr(l, "data-to")))
        .collect()
}

#[test]
fn the_picture_has_every_node_and_the_lookup_the_command_line_makes() {
    let env = Env::new();
    // The paper's ring (Fig. 3 of the SIGCOMM paper).
    env.ok(&[
        "init",
        "--bits",
        "6",
        "--ids",
        "1,8,14,21,32,38,42,48,51,56",
    ]);
    for k in ["a", "b", "c", "d", "e"] {
        env.ok(&["put", k, "1"]);
    }
    let svg = env.path("ring.svg");
    let said = env.ok(&[
        "ring",
        "--svg",
        svg.to_str().unwrap(),
        "--path",
        "c",
        "--from",
        "N8",
    ]);
    assert!(said.contains("drew 10 nodes and 5 keys"), "{said}");
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(text.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
    assert!(text.trim_end().ends_with("</svg>"));
    assert_eq!(text.matches("<circle class=\"ring\"").count(), 1);
    assert_eq!(text.matches("<circle class=\"node\"").count(), 10);
    for id in ["1", "8", "14", "21", "32", "38", "42", "48", "51", "56"] {
        assert!(text.contains(&format!("data-name=\"N{id}\" data-id=\"{id}\"")));
    }
    // The arrows follow `dht get --path` from the same start node.
    let got: Value =
        serde_json::from_str(&env.ok(&["get", "c", "--from", "N8", "--json"])).unwrap();
    let names: Vec<String> = got["path"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap().to_owned())
        .collect();
    let mut want: Vec<(String, String)> = names
        .windows(2)
        .map(|w| (w[0].clone(), w[1].clone()))
        .collect();
    let succ = got["successor"]["name"].as_str().unwrap().to_owned();
    if names.last() != Some(&succ) {
        want.push((names.last().unwrap().clone(), succ));
    }
    assert!(!want.is_empty());
    assert_eq!(hops(&text), want);
    assert!(text.contains(&format!("data-hops=\"{}\"", got["hops"])));

    // To standard output, and without a path.
    let out = env.ok(&["ring", "--svg", "-"]);
    assert_eq!(out.matches("<circle class=\"node\"").count(), 10);
    assert!(hops(&out).is_empty());
}

#[test]
fn a_picture_that_cannot_be_written_leaves_nothing() {
    let env = Env::new();
    env.ok(&["init", "--nodes", "4"]);
    let missing = env.path("no/such/dir/ring.svg");
    let err = env.fails(&["ring", "--svg", missing.to_str().unwrap()]);
    assert!(err.contains("cannot write"), "{err}");
    assert!(!env.path("no").exists());
    // --path needs --svg, --from needs --path, --svg excludes --json.
    env.fails(&["ring", "--path", "k"]);
    env.fails(&["ring", "--svg", "x.svg", "--from", "node-1"]);
    env.fails(&["ring", "--svg", "x.svg", "--json"]);
    assert!(!env.path("x.svg").exists());
    // An unknown start node is named.
    let err = env.fails(&["ring", "--svg", "x.svg", "--path", "k", "--from", "nobody"]);
    assert!(err.contains("nobody"), "{err}");
    assert!(!env.path("x.svg").exists());
}

/// A ring too big for a dot per node is drawn as a band counting its nodes
/// per arc, with dots for the nodes the lookup visits only; the picture is
/// the same whether the ring is built whole or read by names and lookups.
#[test]
fn a_big_ring_is_drawn_as_a_density_band_with_the_lookups_nodes() {
    let env = Env::new();
    env.ok(&["init", "--nodes", "10001", "--replicas", "1"]);
    env.ok(&["put", "k", "1"]);
    let svg = env.ok(&["ring", "--svg", "-", "--path", "k"]);
    assert!(svg.contains("data-nodes=\"10001\""));
    assert_eq!(svg.matches("<path class=\"node-density\"").count(), 1);
    assert!(svg.contains("<title>10001 nodes, counted per 0.5° of the ring</title>"));
    let got: Value = serde_json::from_str(&env.ok(&["get", "k", "--json"])).unwrap();
    let mut visited: Vec<&str> = got["path"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap())
        .collect();
    visited.push(got["successor"]["name"].as_str().unwrap());
    visited.sort_unstable();
    visited.dedup();
    assert_eq!(
        svg.matches("<circle class=\"node\"").count(),
        visited.len(),
        "dots for {visited:?}"
    );
    for name in &visited {
        assert!(svg.contains(&format!("data-name=\"{name}\"")), "{name}");
    }
    assert!(svg.len() < 200_000, "{} bytes", svg.len());
    assert_eq!(
        svg,
        env.ok(&["--whole-ring", "ring", "--svg", "-", "--path", "k"])
    );
}
