//! `dht serve` for the tests of the API and of the page: the command line
//! on a state file, a server as a child process on a loopback port, and a
//! ring holding the items with an account per role.

// Each test crate that includes this uses part of it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

pub const DHT: &str = env!("CARGO_BIN_EXE_dht");

/// `dht --state STATE ARGS`, whatever it answers.
pub fn run(state: &Path, args: &[&str]) -> Output {
    Command::new(DHT)
        .arg("--state")
        .arg(state)
        .args(args)
        .env_remove("DHT_STATE")
        .output()
        .unwrap()
}

/// `dht --state STATE ARGS`, which must succeed: its standard output.
pub fn ok(state: &Path, args: &[&str]) -> String {
    let o = run(state, args);
    assert!(
        o.status.success(),
        "dht {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

/// A running server, killed when dropped.
pub struct Served {
    pub child: Child,
    pub addr: SocketAddr,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Served {
    /// The page's address.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }
}

/// `dht serve` on `state` with `extra` arguments, on a port of its choosing
/// on 127.0.0.1 unless `extra` binds elsewhere.
pub fn serve(state: &Path, extra: &[&str]) -> Served {
    serve_with(state, extra, |_| {})
}

/// [`serve`], with `adjust` setting more on the command (environment,
/// where standard error goes) before it starts.
pub fn serve_with(state: &Path, extra: &[&str], adjust: impl FnOnce(&mut Command)) -> Served {
    let mut cmd = Command::new(DHT);
    cmd.arg("--state").arg(state).arg("serve");
    if !extra.contains(&"--bind") {
        cmd.args(["--bind", "127.0.0.1:0"]);
    }
    cmd.args(extra)
        .env_remove("DHT_STATE")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    adjust(&mut cmd);
    let mut child = cmd.spawn().unwrap();
    // Dropped after the first line: the server must not mind.
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on http://")
        .or_else(|| line.trim().strip_prefix("listening on https://"))
        .and_then(|s| s.strip_suffix("/api/v1/"))
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .parse()
        .unwrap();
    Served { child, addr }
}

/// A ring holding the items, and a token per role.
pub struct Ring {
    _dir: tempfile::TempDir,
    pub state: PathBuf,
    pub reader: String,
    pub writer: String,
    pub admin: String,
}

/// The items loaded on a new ring of `nodes` nodes (the default number
/// when None), and accounts rita (reader), walt (writer) and ada (admin).
pub fn ring(nodes: Option<usize>) -> Ring {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("ring.db");
    if let Some(n) = nodes {
        ok(&state, &["init", "--nodes", &n.to_string()]);
    }
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/items.csv");
    ok(
        &state,
        &["load", "--source", "csv", "--path", data.to_str().unwrap()],
    );
    let token = |name: &str, role: &str| {
        ok(&state, &["user", "add", name, "--role", role])
            .trim()
            .to_owned()
    };
    Ring {
        reader: token("rita", "reader"),
        writer: token("walt", "writer"),
        admin: token("ada", "admin"),
        _dir: dir,
        state,
    }
}
