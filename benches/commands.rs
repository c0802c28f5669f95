//! Per-command cost benchmark (a figure, not a timed test): `dht get` and
//! `dht put` wall time (process start included) and peak memory on rings of
//! 10^4, 10^5 and 10^6 nodes built in bulk holding 10^5 keys, read on demand
//! (the default) next to the same commands with `--whole-ring` (every node
//! read first), measured in the same run. Also `dht --version`: what
//! starting the process alone costs. A second table does the same for the
//! listings that read every node: `ring` (read a row at a time, no ring
//! built), `ring --json` and `ring --svg FILE --path KEY` (names, key counts
//! and an on-demand lookup), each next to `--whole-ring`, which builds the
//! ring first.
//!
//! Each figure is the median of several runs of the real binary, each with
//! another key (gets of stored keys; puts of new ones); peak memory is the
//! process's maximum resident set (`wait4`). The rings are built with the
//! library as `dht init` builds them, with the keys stored by puts, in a
//! process of their own: a child forked from a process holding a big ring
//! starts with that process's resident set, which `wait4` would report.
//!
//! Run: `cargo bench --bench commands` (add `-- --quick` to stop at 10^5
//! nodes, `-- --runs N` for N runs per figure, default 7).

mod common;

use dht::chord::Params;
use dht::sim::World;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

/// The `dht` binary built with this benchmark.
const DHT: &str = env!("CARGO_BIN_EXE_dht");

/// Keys stored in every ring.
const KEYS: usize = 100_000;

/// Wall time in milliseconds and peak resident memory in MB of one run of
/// `dht` with `args`, which must succeed.
fn measure(args: &[&str]) -> (f64, f64) {
    let (secs, mb) = common::measure(DHT, args);
    (secs * 1e3, mb)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Builds a ring of `n` nodes holding [`KEYS`] keys in a new state file at
/// `path`, as `dht init --nodes N` and puts would.
fn build(path: &Path, n: usize) {
    let params = Params::new(160, 3);
    let mut w = World::bulk(params, 1, (0..n).map(|i| (format!("node-{i}"), None)))
        .expect("distinct names");
    for i in 0..KEYS {
        w.put(&format!("key-{i}"), serde_json::json!(i), None)
            .expect("put");
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(dht::testkit::write_new_ring(path, w));
}

/// Median wall ms and peak MB of `runs` runs of a command made by `args`
/// from the run's index.
fn figure(runs: usize, args: impl Fn(usize) -> Vec<String>) -> (f64, f64) {
    let (mut ms, mut mb) = (Vec::new(), Vec::new());
    for i in 0..runs {
        let a = args(i);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        let (t, m) = measure(&a);
        ms.push(t);
        mb.push(m);
    }
    (median(ms), median(mb))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--build") {
        let n: usize = args[i + 1].parse().expect("--build N PATH");
        build(Path::new(&args[i + 2]), n);
        return;
    }
    let quick = args.iter().any(|a| a == "--quick");
    let runs: usize = args
        .iter()
        .position(|a| a == "--runs")
        .and_then(|i| args.get(i + 1)?.parse().ok())
        .unwrap_or(7);
    let mut sizes = vec![10_000usize, 100_000];
    if !quick {
        sizes.push(1_000_000);
    }
    let (start_ms, start_mb) = figure(runs, |_| vec!["--version".into()]);
    println!("process start (`dht --version`): {start_ms:.1} ms, {start_mb:.1} MB\n");
    println!(
        "| N | file MB | get ms | get MB | put ms | put MB | whole-ring get ms | whole-ring get MB | whole-ring put ms | whole-ring put MB | get: whole/on demand |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut listings = Vec::new();
    for n in sizes {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("ring.db");
        let t = Instant::now();
        let me = std::env::current_exe().expect("the benchmark's own path");
        let status = Command::new(me)
            .args(["--bench", "--build", &n.to_string()])
            .arg(&path)
            .status()
            .expect("build the ring");
        assert!(status.success(), "building {n} nodes failed");
        eprintln!("built {n} nodes in {:.1} s", t.elapsed().as_secs_f64());
        let file_mb = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0) as f64 / 1e6;
        let state = path.display().to_string();
        let run = |whole: bool, cmd: &str, i: usize| {
            let mut a: Vec<String> = vec!["--state".into(), state.clone()];
            if whole {
                a.push("--whole-ring".into());
            }
            a.push(cmd.into());
            if cmd == "get" {
                a.push(format!("key-{}", (i * 7919) % KEYS));
            } else {
                let tag = if whole { "whole" } else { "demand" };
                a.push(format!("new-{tag}-{i}"));
                a.push(i.to_string());
            }
            a
        };
        let get = figure(runs, |i| run(false, "get", i));
        let put = figure(runs, |i| run(false, "put", i));
        let whole_get = figure(runs, |i| run(true, "get", i));
        let whole_put = figure(runs, |i| run(true, "put", i));
        println!(
            "| {n} | {file_mb:.0} | {:.1} | {:.1} | {:.1} | {:.1} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0}× |",
            get.0,
            get.1,
            put.0,
            put.1,
            whole_get.0,
            whole_get.1,
            whole_put.0,
            whole_put.1,
            whole_get.0 / get.0
        );
        // Listings take seconds at a million nodes: fewer runs.
        let picture = dir.path().join("ring.svg").display().to_string();
        for (name, args) in [
            ("ring", vec!["ring"]),
            ("ring --json", vec!["ring", "--json"]),
            (
                "ring --svg --path",
                vec!["ring", "--svg", &picture, "--path", "key-1"],
            ),
        ] {
            let run = |whole: bool| {
                let mut a: Vec<String> = vec!["--state".into(), state.clone()];
                if whole {
                    a.push("--whole-ring".into());
                }
                a.extend(args.iter().map(|s| s.to_string()));
                a
            };
            let by_row = figure(runs.min(3), |_| run(false));
            let whole = figure(runs.min(3), |_| run(true));
            listings.push(format!(
                "| {n} | `{name}` | {:.0} | {:.0} | {:.0} | {:.0} | {:.1}× | {:.1}× |",
                by_row.0,
                by_row.1,
                whole.0,
                whole.1,
                whole.0 / by_row.0,
                whole.1 / by_row.1
            ));
        }
    }
    println!();
    println!(
        "| N | command | ms | MB | whole-ring ms | whole-ring MB | time: whole/by row | memory: whole/by row |"
    );
    println!("|---:|---|---:|---:|---:|---:|---:|---:|");
    for row in listings {
        println!("{row}");
    }
}
