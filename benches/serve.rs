//! Server benchmark (a figure, not a timed test): `dht serve` (the release
//! binary) on a ring of 10^6 keys (1,000 nodes, r = 3, unless told), with 64 concurrent
//! keep-alive connections on loopback: requests per second and p50/p99
//! latency for gets and for puts (each committed to the state file), next
//! to a baseline measured in the same run: the same requests to a bare axum
//! handler over an in-memory map, served by a process of its own (this
//! benchmark started again with `--baseline-server`), as `dht serve` is;
//! the same handler inside this process is reported too. A round of four
//! gets and four puts per connection warms every server up first.
//!
//! The measured requests run in rounds that alternate between `dht serve`
//! and the baseline (three by default), so both see the same machine; the
//! rate ratio is the median of the rounds'. Each server's CPU time per
//! request (from `/proc`) is reported too: unlike the rates, it does not
//! depend on how the two cores were shared with the clients.
//!
//! Run: `cargo bench --bench serve` (add `-- --keys N` and `--nodes N`
//! for another ring, `-- --requests N` for gets per connection per round, default 400,
//! `-- --rounds N`).

use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::routing::get;
use dht::chord::Params;
use dht::sim::World;

use serde_json::{Value, json};
use std::collections::HashMap;
use std::io::BufRead;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const DHT: &str = env!("CARGO_BIN_EXE_dht");
const CONNECTIONS: usize = 64;

/// Builds the ring: `keys` keys on `nodes` nodes, in a new state file.
async fn build(path: &Path, nodes: usize, keys: usize) {
    let params = Params::new(160, 3);
    let mut w =
        World::bulk(params, 1, (0..nodes).map(|i| (format!("node-{i}"), None))).expect("names");
    for i in 0..keys {
        w.put(&format!("key-{i}"), json!(i), None).expect("put");
    }
    dht::testkit::write_new_ring(path, w).await;
}

/// One keep-alive connection sending `requests` in turn; the latency of
/// each answer.
async fn connection(addr: SocketAddr, requests: Vec<Vec<u8>>) -> Vec<Duration> {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.set_nodelay(true).expect("nodelay");
    let mut lat = Vec::with_capacity(requests.len());
    let mut buf = Vec::with_capacity(4096);
    for req in requests {
        let t = Instant::now();
        s.write_all(&req).await.expect("send");
        buf.clear();
        // Headers, then Content-Length bytes of body.
        let (head_end, length) = loop {
            let mut chunk = [0u8; 4096];
            let n = s.read(&mut chunk).await.expect("read");
            assert!(n > 0, "the server closed the connection");
            buf.extend_from_slice(&chunk[..n]);
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                assert!(
                    head.starts_with("http/1.1 200"),
                    "{}",
                    String::from_utf8_lossy(&buf)
                );
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .map(|v| v.trim().parse().expect("length"))
                    .expect("a Content-Length");
                break (end + 4, length);
            }
        };
        while buf.len() < head_end + length {
            let mut chunk = [0u8; 4096];
            let n = s.read(&mut chunk).await.expect("read");
            assert!(n > 0, "the server closed the connection");
            buf.extend_from_slice(&chunk[..n]);
        }
        lat.push(t.elapsed());
    }
    lat
}

fn request(method: &str, path: &str, token: &str, body: &str) -> Vec<u8> {
    format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// One timed run: its wall time and every request's latency.
struct Run {
    secs: f64,
    lat: Vec<Duration>,
}

/// Runs `per_conn` requests made by `make(connection, i)` on each of the
/// connections at once; each connection's latencies.
async fn connections(
    addr: SocketAddr,
    per_conn: usize,
    make: impl Fn(usize, usize) -> Vec<u8>,
) -> Vec<Vec<Duration>> {
    let tasks: Vec<_> = (0..CONNECTIONS)
        .map(|c| {
            let reqs: Vec<Vec<u8>> = (0..per_conn).map(|i| make(c, i)).collect();
            tokio::spawn(connection(addr, reqs))
        })
        .collect();
    let mut out = Vec::with_capacity(CONNECTIONS);
    for task in tasks {
        out.push(task.await.expect("a connection task"));
    }
    out
}

/// Runs `per_conn` requests made by `make(connection, i)` on each of the
/// connections.
async fn run(addr: SocketAddr, per_conn: usize, make: impl Fn(usize, usize) -> Vec<u8>) -> Run {
    let t = Instant::now();
    let lat = connections(addr, per_conn, make).await.concat();
    Run {
        secs: t.elapsed().as_secs_f64(),
        lat,
    }
}

/// Gets on three connections in four and puts on the fourth, all at
/// once: the latencies of the gets and of the puts, apart.
async fn run_mixed(
    addr: SocketAddr,
    per_conn: usize,
    get: impl Fn(usize, usize) -> Vec<u8>,
    put: impl Fn(usize, usize) -> Vec<u8>,
) -> (Vec<Duration>, Vec<Duration>) {
    let is_put = |c: usize| c % 4 == 3;
    let each = connections(addr, per_conn, |c, i| {
        if is_put(c) { put(c, i) } else { get(c, i) }
    })
    .await;
    let (mut gets, mut puts) = (Vec::new(), Vec::new());
    for (c, lat) in each.into_iter().enumerate() {
        if is_put(c) {
            puts.extend(lat)
        } else {
            gets.extend(lat)
        }
    }
    (gets, puts)
}

/// p50 and p99 of `lat` in ms.
fn percentiles(lat: &mut [Duration]) -> (f64, f64) {
    lat.sort();
    let n = lat.len();
    let pct = |p: f64| lat[((n as f64 * p) as usize).min(n - 1)].as_secs_f64() * 1e3;
    (pct(0.5), pct(0.99))
}

/// Runs against one server added up: wall time, latencies, and the CPU
/// time the server process spent on them.
#[derive(Default)]
struct Figures {
    secs: f64,
    cpu: f64,
    switches: u64,
    lat: Vec<Duration>,
}

impl Figures {
    /// Adds the run `f` makes against the server process `pid`; returns
    /// that run's rate (requests per second).
    fn add(&mut self, pid: u32, f: impl FnOnce() -> Run) -> f64 {
        let (before, switched) = (cpu_seconds(pid), switches(pid));
        let r = f();
        self.cpu += cpu_seconds(pid) - before;
        self.switches += switches(pid) - switched;
        self.secs += r.secs;
        let rate = r.lat.len() as f64 / r.secs;
        self.lat.extend(r.lat);
        rate
    }

    /// The server's context switches per request.
    fn switches_each(&self) -> f64 {
        self.switches as f64 / self.lat.len() as f64
    }

    /// Requests per second, p50 and p99 in ms, and the server's CPU time
    /// per request in µs.
    fn summary(&mut self) -> (f64, f64, f64, f64) {
        let n = self.lat.len();
        let (p50, p99) = percentiles(&mut self.lat);
        (n as f64 / self.secs, p50, p99, self.cpu * 1e6 / n as f64)
    }
}

/// Context switches (voluntary and not) of every thread of process `pid`
/// so far, from `/proc/PID/task/*/status` (threads that ended are lost).
fn switches(pid: u32) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("status")).ok())
        .flat_map(|status| {
            status
                .lines()
                .filter(|l| l.contains("ctxt_switches:"))
                .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                .collect::<Vec<_>>()
        })
        .sum()
}

/// CPU time (user and system, seconds) process `pid` has used so far,
/// from `/proc/PID/stat` (0 where there is no such file).
fn cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the command name, which ends at the last ')': state is
    // the first of them, utime the 12th and stime the 13th.
    let rest = &stat[stat.rfind(')').map_or(0, |i| i + 1)..];
    let f: Vec<f64> = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .map(|v| v.parse().unwrap_or(0.0))
        .collect();
    // SAFETY: sysconf only reads a configuration value.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    f.iter().sum::<f64>() / ticks
}

/// Starts a server process and returns it with the first line it prints
/// (where it listens), trimmed.
fn start_server(cmd: &mut Command) -> (std::process::Child, String) {
    let mut child = cmd.stdout(Stdio::piped()).spawn().expect("a server");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("the address");
    (child, line.trim().to_owned())
}

type Map = Arc<Mutex<HashMap<String, Value>>>;

/// The baseline: the same routes over a map, nothing else.
fn baseline(map: Map) -> Router {
    async fn get_key(State(m): State<Map>, UrlPath(k): UrlPath<String>) -> axum::Json<Value> {
        let v = m
            .lock()
            .expect("map")
            .get(&k)
            .cloned()
            .unwrap_or(Value::Null);
        axum::Json(json!({ "key": k, "found": true, "value": v }))
    }
    async fn put_key(
        State(m): State<Map>,
        UrlPath(k): UrlPath<String>,
        axum::Json(v): axum::Json<Value>,
    ) -> axum::Json<Value> {
        let replaced = m.lock().expect("map").insert(k.clone(), v).is_some();
        axum::Json(json!({ "key": k, "replaced": replaced }))
    }
    Router::new()
        .route("/api/v1/keys/{key}", get(get_key).put(put_key))
        .with_state(map)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let flag = |name: &str, default: usize| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1)?.parse().ok())
            .unwrap_or(default)
    };
    let keys = flag("--keys", 1_000_000);
    if args.iter().any(|a| a == "--baseline-server") {
        return baseline_server(keys);
    }
    let nodes = flag("--nodes", 1000);
    let gets = flag("--requests", 400);
    let rounds = flag("--rounds", 3).max(1);
    let puts = gets / 8;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("temporary directory");
    let state = dir.path().join("ring.db");
    let t = Instant::now();
    rt.block_on(build(&state, nodes, keys));
    eprintln!(
        "built {keys} keys on {nodes} nodes in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let token = Command::new(DHT)
        .arg("--state")
        .arg(&state)
        .args(["user", "add", "bench", "--role", "writer"])
        .stderr(Stdio::null())
        .output()
        .expect("dht user add");
    let token = String::from_utf8(token.stdout)
        .expect("a token")
        .trim()
        .to_owned();
    let (mut server, line) = start_server(Command::new(DHT).arg("--state").arg(&state).args([
        "serve",
        "--bind",
        "127.0.0.1:0",
    ]));
    let dht_addr: SocketAddr = line
        .trim_start_matches("listening on http://")
        .trim_end_matches("/api/v1/")
        .parse()
        .expect("an address");

    // The baseline in a process of its own, as `dht serve` is: a server
    // inside the client's process shares its runtime's threads and skips
    // the switches between processes that both real servers pay.
    let (mut base_server, line) = start_server(
        Command::new(std::env::current_exe().expect("this benchmark")).args([
            "--baseline-server",
            "--keys",
            &keys.to_string(),
        ]),
    );
    let base_addr: SocketAddr = line.parse().expect("an address");
    // The same handler inside this process, reported beside it.
    let map: Map = Arc::new(Mutex::new(
        (0..keys).map(|i| (format!("key-{i}"), json!(i))).collect(),
    ));
    let inproc_addr = rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("address");
        tokio::spawn(async move { axum::serve(listener, baseline(map)).await });
        addr
    });

    let get = |c: usize, i: usize| {
        request(
            "GET",
            &format!("/api/v1/keys/key-{}", (c * 7919 + i * 104_729) % keys),
            &token,
            "",
        )
    };
    let put = |tag: String| {
        let token = token.clone();
        move |c: usize, i: usize| {
            request(
                "PUT",
                &format!("/api/v1/keys/{tag}-{c}-{i}"),
                &token,
                &i.to_string(),
            )
        }
    };
    // Warm-up, not measured: a round of gets and puts on every connection
    // to each server, so the figures describe a server that has been
    // running (SQLite's page cache holding the pages writes touch), not
    // the first requests after it started.
    for addr in [dht_addr, base_addr, inproc_addr] {
        rt.block_on(run(addr, 4, get));
        rt.block_on(run(addr, 4, put("warm".into())));
    }
    println!(
        "| requests | rate /s | p50 ms | p99 ms | server CPU µs each | baseline rate /s | baseline p50 ms | baseline p99 ms | baseline CPU µs each | rate ratio | CPU ratio |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let (dht_pid, base_pid) = (server.id(), base_server.id());
    let mut inproc = Vec::new();
    let mut switched = Vec::new();
    for name in ["get", "put"] {
        let per = if name == "get" { gets } else { puts };
        // Rounds alternate between the two servers, so that both see the
        // same machine (two shared cores whose speed drifts over a run).
        let (mut mine, mut base, mut ratios) = (Figures::default(), Figures::default(), vec![]);
        for round in 0..rounds {
            let (a, b) = if name == "get" {
                (
                    mine.add(dht_pid, || rt.block_on(run(dht_addr, per, get))),
                    base.add(base_pid, || rt.block_on(run(base_addr, per, get))),
                )
            } else {
                let (ours, theirs) = (put(format!("dht{round}")), put(format!("base{round}")));
                (
                    mine.add(dht_pid, || rt.block_on(run(dht_addr, per, ours))),
                    base.add(base_pid, || rt.block_on(run(base_addr, per, theirs))),
                )
            };
            ratios.push(a / b);
        }
        let here = if name == "get" {
            rt.block_on(run(inproc_addr, per, get))
        } else {
            rt.block_on(run(inproc_addr, per, put("here".into())))
        };
        let mut here_figures = Figures::default();
        here_figures.add(0, || here);
        inproc.push((name, here_figures.summary(), mine.summary().0));
        ratios.sort_by(f64::total_cmp);
        switched.push((name, mine.switches_each(), base.switches_each()));
        let (m, b) = (mine.summary(), base.summary());
        println!(
            "| {name} ({} on {CONNECTIONS} connections, {rounds} rounds) | {:.0} | {:.2} | {:.2} | {:.1} | {:.0} | {:.2} | {:.2} | {:.1} | {:.2} | {:.2} |",
            CONNECTIONS * per * rounds,
            m.0,
            m.1,
            m.2,
            m.3,
            b.0,
            b.1,
            b.2,
            b.3,
            ratios[ratios.len() / 2],
            b.3 / m.3,
        );
    }
    // Gets while puts commit: the latency a reader sees when writers are
    // busy too.
    let mixed = |addr: SocketAddr, tag: &str| {
        let (mut g, mut p) = (Vec::new(), Vec::new());
        for round in 0..rounds {
            let (a, b) = rt.block_on(run_mixed(addr, puts, get, put(format!("{tag}{round}"))));
            g.extend(a);
            p.extend(b);
        }
        (percentiles(&mut g), percentiles(&mut p))
    };
    let ours = mixed(dht_addr, "mixd");
    let theirs = mixed(base_addr, "mixb");
    println!();
    println!(
        "mixed ({} connections getting, {} putting, {puts} requests each, {rounds} rounds): gets p50 {:.2} ms, p99 {:.2} ms; puts p50 {:.2} ms, p99 {:.2} ms (baseline gets p99 {:.2} ms, puts p99 {:.2} ms)",
        CONNECTIONS * 3 / 4,
        CONNECTIONS / 4,
        ours.0.0,
        ours.0.1,
        ours.1.0,
        ours.1.1,
        theirs.0.1,
        theirs.1.1,
    );
    println!();
    for (name, ours, theirs) in &switched {
        println!("context switches per {name}: dht serve {ours:.2}, baseline {theirs:.2}");
    }
    for (name, here, dht_rate) in inproc {
        println!(
            "baseline inside the benchmark's process, {name}: {:.0}/s, p50 {:.2} ms, p99 {:.2} ms (dht's rate {:.2} of it)",
            here.0,
            here.1,
            here.2,
            dht_rate / here.0
        );
    }
    let _ = server.kill();
    let _ = server.wait();
    let _ = base_server.kill();
    let _ = base_server.wait();
}

/// `--baseline-server`: the baseline handler over `keys` keys, in this
/// process alone, on a runtime like `dht serve`'s; prints its address and
/// serves until killed.
fn baseline_server(keys: usize) {
    let map: Map = Arc::new(Mutex::new(
        (0..keys).map(|i| (format!("key-{i}"), json!(i))).collect(),
    ));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        println!("{}", listener.local_addr().expect("address"));
        axum::serve(listener, baseline(map)).await.expect("serve");
    });
}
