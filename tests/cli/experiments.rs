//! `dht sim`: each experiment at a reduced size, checked for what must hold
//! whatever the seed (several seeds each), and replayed: the same seed
//! gives the same numbers.

use super::Env;
use serde_json::Value;

fn sim(e: &Env, args: &[&str]) -> Value {
    let mut a = vec!["sim"];
    a.extend_from_slice(args);
    a.extend_from_slice(&["--format", "json"]);
    serde_json::from_str(&e.ok(&a)).unwrap()
}

/// (x, mean, p1, p99) of measure `i`.
fn points(v: &Value, i: usize) -> Vec<(f64, f64, f64, f64)> {
    v["figure"]["measures"][i]["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let f = |k: &str| p[k].as_f64().unwrap_or(f64::NAN);
            (f("x"), f("mean"), f("p1"), f("p99"))
        })
        .collect()
}

fn ordered(pts: &[(f64, f64, f64, f64)], seed: u64) {
    for &(x, mean, p1, p99) in pts {
        assert!(
            p1 <= mean && mean <= p99,
            "seed {seed}: at {x}: p1 {p1}, mean {mean}, p99 {p99} out of order"
        );
    }
}

fn pdf_sums_to_one(v: &Value, seed: u64) {
    let total: f64 = v["figure"]["pdf"]["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p[1].as_f64().unwrap())
        .sum();
    assert!(
        (total - 1.0).abs() < 1e-9,
        "seed {seed}: density sums to {total}"
    );
}

#[test]
fn load_balance_counts_every_key_once() {
    let e = Env::new();
    for seed in 1..=3u64 {
        let s = seed.to_string();
        let args = [
            "load-balance",
            "--nodes",
            "200",
            "--keys",
            "2000,10000",
            "--seeds",
            "3",
            "--pdf-at",
            "4000",
            "--seed",
            &s,
        ];
        let v = sim(&e, &args);
        let pts = points(&v, 0);
        ordered(&pts, seed);
        // Keys per node average K/N exactly: every key counted once.
        assert_eq!(
            pts.iter().map(|p| (p.0, p.1)).collect::<Vec<_>>(),
            [(2000.0, 10.0), (10000.0, 50.0)],
            "seed {seed}"
        );
        pdf_sums_to_one(&v, seed);
        assert_eq!(sim(&e, &args)["figure"], v["figure"], "seed {seed} replays");
    }
    // Virtual nodes even the load out per real node (Fig. 9).
    let v = sim(
        &e,
        &[
            "load-balance",
            "--nodes",
            "200",
            "--keys",
            "20000",
            "--vnodes",
            "1,10",
        ],
    );
    let pts = points(&v, 0);
    ordered(&pts, 1);
    assert!(pts[1].3 < pts[0].3 && pts[1].2 >= pts[0].2, "{pts:?}");
    assert!(pts.iter().all(|p| p.1 == 100.0));
}

#[test]
fn path_length_is_about_half_log2_n() {
    let e = Env::new();
    for seed in 1..=3u64 {
        let s = seed.to_string();
        let v = sim(
            &e,
            &[
                "path-length",
                "--sizes",
                "1024,4096",
                "--keys-per-node",
                "10",
                "--pdf-at",
                "1024",
                "--seed",
                &s,
            ],
        );
        let pts = points(&v, 0);
        ordered(&pts, seed);
        for &(n, mean, _, _) in &pts {
            let half = n.log2() / 2.0;
            assert!(
                (mean - half).abs() <= 0.1 * half,
                "seed {seed}: N = {n}: mean {mean} not within 10% of {half}"
            );
        }
        pdf_sums_to_one(&v, seed);
    }
}

#[test]
fn timeouts_none_without_failures_and_every_lookup_resolves() {
    let e = Env::new();
    for seed in 1..=3u64 {
        let s = seed.to_string();
        let args = [
            "timeouts",
            "--nodes",
            "300",
            "--successors",
            "10",
            "--p",
            "0,0.3",
            "--lookups",
            "2000",
            "--seed",
            &s,
        ];
        let v = sim(&e, &args);
        let path = points(&v, 0);
        let timeouts = points(&v, 1);
        let failed = points(&v, 2);
        ordered(&path, seed);
        ordered(&timeouts, seed);
        assert_eq!((timeouts[0].1, timeouts[0].3), (0.0, 0.0), "seed {seed}");
        assert!(timeouts[1].1 > 0.0, "seed {seed}: dead nodes cost timeouts");
        assert!(failed.iter().all(|p| p.1 == 0.0), "seed {seed}: {failed:?}");
        assert_eq!(sim(&e, &args)["figure"], v["figure"], "seed {seed} replays");
    }
}

#[test]
fn sim_draws_and_refuses_bad_setups() {
    let e = Env::new();
    let svg = e.dir.path().join("fig.svg");
    let out = e.ok(&[
        "sim",
        "timeouts",
        "--nodes",
        "100",
        "--successors",
        "5",
        "--lookups",
        "200",
        "--plot",
        svg.to_str().unwrap(),
    ]);
    assert!(out.contains("timeouts (ToN 2003 Table II)"), "{out}");
    let doc = std::fs::read_to_string(&svg).unwrap();
    assert!(doc.starts_with("<svg") && doc.contains("failure probability p"));
    // Another setup than the paper's: its numbers are not put beside ours.
    let out = e
        .dht()
        .args(["sim", "timeouts", "--nodes", "100", "--lookups", "100"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("paper mean"));
    assert!(text.contains("nodes 100 (the paper: 1000)"), "{text}");
    let missing = e.dir.path().join("no/such/dir/fig.svg");
    for (args, what) in [
        (
            vec!["timeouts", "--plot", missing.to_str().unwrap()],
            "no such directory",
        ),
        (
            vec!["paper", "--out", svg.to_str().unwrap(), "--scale", "0.01"],
            "not a directory",
        ),
        (vec!["timeouts", "--p", "1.5"], "not between 0 and 1"),
        (vec!["load-balance", "--vnodes", "0"], "at least 1"),
        (vec!["path-length", "--sizes", "0"], "at least one node"),
    ] {
        let out = e.dht().arg("sim").args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(what),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn sim_paper_writes_a_report() {
    let e = Env::new();
    let dir = e.dir.path().join("report");
    let out = e.ok(&[
        "sim",
        "paper",
        "--out",
        dir.to_str().unwrap(),
        "--scale",
        "0.005",
    ]);
    assert!(out.contains("wrote"), "{out}");
    let index = std::fs::read_to_string(dir.join("index.html")).unwrap();
    for name in ["fig8", "fig9", "fig10", "fig11", "table2", "table3"] {
        for ext in ["svg", "csv", "json"] {
            let f = dir.join(format!("{name}.{ext}"));
            assert!(f.exists(), "{} missing", f.display());
            assert!(
                index.contains(&format!("{name}.{ext}")),
                "index misses {name}.{ext}"
            );
        }
        let v: Value = serde_json::from_str(
            &std::fs::read_to_string(dir.join(format!("{name}.json"))).unwrap(),
        )
        .unwrap();
        // A scaled-down run is not the paper's setup and is not compared;
        // path length at each N is the paper's setup for that N whatever
        // the largest N run.
        assert_eq!(v["paper"].is_null(), name != "fig10", "{name}");
        assert!(v["run"]["seconds"].as_f64().unwrap() >= 0.0);
    }
    assert!(index.contains("Not compared with the paper"));
    let out = e
        .dht()
        .args([
            "sim",
            "paper",
            "--out",
            dir.to_str().unwrap(),
            "--scale",
            "2",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn failures_lose_about_p_with_one_copy_and_p_to_the_r_with_more() {
    let e = Env::new();
    for seed in 1..=2u64 {
        let s = seed.to_string();
        let one = [
            "failures",
            "--nodes",
            "300",
            "--keys",
            "20000",
            "--p",
            "0,0.1,0.3",
            "--seed",
            &s,
        ];
        let v = sim(&e, &one);
        let lost = points(&v, 0);
        assert_eq!(lost[0].1, 0.0, "seed {seed}: nothing lost without failures");
        for &(p, f, _, _) in &lost[1..] {
            assert!((f - p).abs() < 0.1, "seed {seed}: p = {p}, lost {f}");
        }
        let rounds = points(&v, 2);
        assert!(
            rounds[1].1 > 0.0,
            "seed {seed}: the ring stabilized after failures"
        );
        assert_eq!(sim(&e, &one)["figure"], v["figure"], "seed {seed} replays");
        let mut two = one.to_vec();
        two.extend_from_slice(&["--replicas", "2"]);
        let lost2 = points(&sim(&e, &two), 0);
        assert_eq!(lost2[0].1, 0.0);
        for (a, b) in lost.iter().zip(&lost2).skip(1) {
            assert!(b.1 < a.1, "seed {seed}: two copies lose less: {a:?} {b:?}");
        }
    }
}

#[test]
fn churn_runs_in_virtual_time_and_fails_nothing_without_churn() {
    let e = Env::new();
    for seed in 1..=2u64 {
        let s = seed.to_string();
        let args = [
            "churn",
            "--nodes",
            "150",
            "--successors",
            "8",
            "--rates",
            "0,0.3",
            "--lookups",
            "600",
            "--seed",
            &s,
        ];
        let v = sim(&e, &args);
        let path = points(&v, 0);
        let timeouts = points(&v, 1);
        let failed = points(&v, 2);
        let latency = points(&v, 4);
        ordered(&path, seed);
        ordered(&timeouts, seed);
        ordered(&latency, seed);
        assert_eq!(failed[0].1, 0.0, "seed {seed}: no churn, no failed lookup");
        assert_eq!(timeouts[0].3, 0.0, "seed {seed}: no churn, no timeout");
        assert!(latency[0].1 > 0.0, "seed {seed}: messages take time");
        assert_eq!(sim(&e, &args)["figure"], v["figure"], "seed {seed} replays");
    }
}
