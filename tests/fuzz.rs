//! Seeded fuzzing of what `dht` reads from outside: the state file and the
//! source files. Each case mutates a good file (bit flips, truncation, a
//! column set to another SQLite type) and runs the real binary on it. For
//! every mutant: no panic and no abort (exit status 0, 1 or 2 only), and
//! either a clear error with the ring unchanged or, for the state file,
//! exactly the unmutated file's answer (a mutation SQLite's own structure
//! absorbs, such as a flip in free space).
//!
//! `cargo test --test fuzz` runs 48 cases of each; `DHT_FUZZ_CASES=2000
//! cargo test --release --test fuzz` runs more. A failure prints the case's
//! seed (proptest's minimal failing input) so it can be replayed.

use assert_cmd::cargo::cargo_bin;
use proptest::prelude::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn cases() -> u32 {
    std::env::var("DHT_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(48)
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: cases(),
        rng_seed: proptest::test_runner::RngSeed::Fixed(20261202),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data")
        .join(name)
}

fn dht(dir: &Path, args: &[&str]) -> Output {
    Command::new(cargo_bin("dht"))
        .current_dir(dir)
        .env_remove("DHT_STATE")
        .env_remove("RUST_LOG")
        .args(args)
        .output()
        .unwrap()
}

/// The exit status is one `dht` documents, never a panic (101) or a signal.
fn assert_clean_exit(out: &Output, what: &str) {
    let code = out.status.code();
    assert!(
        matches!(code, Some(0..=2)),
        "{what}: exit {code:?}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    if code == Some(2) {
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim().lines().count(), 1, "{what}: {err}");
    }
}

/// A ring loaded from the shipped CSV, its state file's bytes, and its dump.
fn pristine() -> (tempfile::TempDir, Vec<u8>, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let csv = data("items.csv");
    let out = dht(
        dir.path(),
        &["load", "--source", "csv", "--path", csv.to_str().unwrap()],
    );
    assert!(out.status.success());
    let state = dir.path().join(".dht/ring.db");
    let bytes = std::fs::read(&state).unwrap();
    let dump = dht(dir.path(), &["dump", "--format", "ndjson", "--replicas"]).stdout;
    (dir, bytes, dump)
}

/// One way to damage a file.
#[derive(Debug, Clone)]
enum Mutation {
    /// Flip bit `bit` of the byte at this fraction of the file.
    Flip { at: f64, bit: u8 },
    /// Cut the file at this fraction of its length.
    Truncate { at: f64 },
    /// Set one column of the state database to another SQLite type.
    Retype { table: usize, value: usize },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        6 => (0.0..1.0f64, 0u8..8).prop_map(|(at, bit)| Mutation::Flip { at, bit }),
        1 => (0.0..1.0f64).prop_map(|at| Mutation::Truncate { at }),
        2 => (0usize..4, 0usize..4).prop_map(|(table, value)| Mutation::Retype { table, value }),
    ]
}

fn apply_to_bytes(bytes: &mut Vec<u8>, m: &Mutation) {
    match *m {
        Mutation::Flip { at, bit } => {
            let i = ((bytes.len() as f64 * at) as usize).min(bytes.len() - 1);
            bytes[i] ^= 1 << bit;
        }
        Mutation::Truncate { at } => bytes.truncate((bytes.len() as f64 * at) as usize),
        Mutation::Retype { .. } => {}
    }
}

fn retype(state: &Path, table: usize, value: usize) {
    let (table, column) = [
        ("nodes", "routing"),
        ("nodes", "addr"),
        ("slices", "data"),
        ("meta", "value"),
    ][table];
    let value = ["7", "'text'", "x'00ff'", "NULL"][value];
    let url = format!("sqlite://{}", state.display());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        use sqlx::Connection;
        let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
        // Some retypes break a constraint (NOT NULL, UNIQUE): then nothing
        // changed, which is a case too.
        let _ = sqlx::query(&format!(
            "UPDATE {table} SET {column} = {value} WHERE rowid = (SELECT min(rowid) FROM {table})"
        ))
        .execute(&mut c)
        .await;
        c.close().await.unwrap();
    });
}

proptest! {
    #![proptest_config(config())]

    /// A damaged state file: every command either reports an error (and
    /// leaves the file as it found it) or answers exactly as on the
    /// undamaged file.
    #[test]
    fn mutated_state_files(m in mutation()) {
        let (dir, bytes, want) = pristine();
        let state = dir.path().join(".dht/ring.db");
        match m {
            Mutation::Retype { table, value } => retype(&state, table, value),
            _ => {
                let mut b = bytes.clone();
                apply_to_bytes(&mut b, &m);
                std::fs::write(&state, &b).unwrap();
            }
        }
        let damaged = std::fs::read(&state).unwrap();
        for args in [
            &["dump", "--format", "ndjson", "--replicas"][..],
            &["get", "apple"][..],
            &["ring", "--json"][..],
            &["check"][..],
        ] {
            let out = dht(dir.path(), args);
            assert_clean_exit(&out, &format!("{m:?} {args:?}"));
            if args[0] == "dump" && out.status.success() {
                prop_assert_eq!(&out.stdout, &want, "{:?}: a dump that succeeds is exact", m);
            }
            if !out.status.success() {
                prop_assert_eq!(std::fs::read(&state).unwrap(), damaged.clone(), "{:?} {:?} changed the file", m, args);
            }
        }
        // A writer on a damaged file refuses or works; never crashes.
        let out = dht(dir.path(), &["put", "fuzz", "1"]);
        assert_clean_exit(&out, &format!("{m:?} put"));
    }

    /// A damaged source file: the load succeeds or fails with one line; a
    /// failed load leaves the ring unchanged.
    #[test]
    fn mutated_source_files(m in mutation(), which in 0usize..4) {
        let (file, source, key) = [
            ("items.csv", "csv", ""),
            ("items.json", "json", ""),
            ("items.ndjson", "ndjson", "sku"),
            ("items.parquet", "parquet", "sku"),
        ][which];
        let (dir, _, before) = pristine();
        let mut bytes = std::fs::read(data(file)).unwrap();
        if matches!(m, Mutation::Retype { .. }) {
            bytes.truncate(bytes.len() / 2);
        } else {
            apply_to_bytes(&mut bytes, &m);
        }
        let path = dir.path().join(format!("mutant-{file}"));
        std::fs::write(&path, &bytes).unwrap();
        let mut args = vec!["load", "--source", source, "--path", path.to_str().unwrap()];
        if !key.is_empty() {
            args.extend(["--key-col", key]);
        }
        let out = dht(dir.path(), &args);
        assert_clean_exit(&out, &format!("{file} {m:?}"));
        if !out.status.success() {
            let after = dht(dir.path(), &["dump", "--format", "ndjson", "--replicas"]).stdout;
            prop_assert_eq!(after, before, "{} {:?}: a failed load changed the ring", file, m);
        }
    }
}
