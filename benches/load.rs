//! Load benchmark (a figure, not a timed test): `dht load` of N CSV rows
//! (default 10^6) into a 64-node ring with r = 3, next to a baseline measured
//! in the same run: polars reads the same file and the rows are written once
//! into an SQLite table in one transaction (the bare cost of storing the
//! data). Reports the load's split into read, route and persist, and the
//! wall time of `dht get` on the loaded ring (process start included).
//!
//! Run: `cargo bench --bench load` (`-- --rows 100000` for a quicker run,
//! `-- --reps N` for N repetitions instead of 3; medians are reported).

use dht::source::frame::{self, Format};
use sqlx::{Connection, SqliteConnection};
use std::process::Command;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let rows: usize = args
        .iter()
        .position(|a| a == "--rows")
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let reps: usize = args
        .iter()
        .position(|a| a == "--reps")
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(3)
        .max(1);
    let dir = tempfile::tempdir()?;
    let csv_path = dir.path().join("rows.csv");
    {
        let mut w = csv::Writer::from_path(&csv_path)?;
        w.write_record(["key", "value"])?;
        for i in 0..rows {
            w.write_record([
                format!("key-{i}"),
                format!("value number {i} with some text"),
            ])?;
        }
        w.flush()?;
    }
    let size = std::fs::metadata(&csv_path)?.len();
    println!("{rows} rows, {:.1} MB of CSV", size as f64 / 1e6);

    // Each repetition runs the baseline and then the load, back to back, so
    // both see the machine in the same state; the tables report medians.
    // The first run after a build is slower (the kernel compacts the memory
    // the build fragmented to hand out huge pages), which is why one run is
    // not enough.
    let mut base_runs: Vec<(f64, f64)> = Vec::new();
    let mut load_runs: Vec<(f64, serde_json::Value)> = Vec::new();
    let bin = env!("CARGO_BIN_EXE_dht");
    // Each load makes a new ring; the last one stays for the gets below.
    let state = dir.path().join("ring.db");
    let base_db = dir.path().join("baseline.db");
    for rep in 0..reps {
        base_runs.push(baseline(&csv_path, &base_db, rows)?);
        std::fs::remove_file(&base_db)?;
        if rep > 0 {
            std::fs::remove_file(&state)?;
        }
        let t = Instant::now();
        let out = Command::new(bin)
            .args([
                "--state",
                state.to_str().unwrap(),
                "load",
                "--source",
                "csv",
                "--path",
                csv_path.to_str().unwrap(),
            ])
            .args(["--nodes", "64", "--replicas", "3", "--show", "0", "--json"])
            .output()?;
        let wall = t.elapsed().as_secs_f64();
        if !out.status.success() {
            return Err(
                format!("dht load failed: {}", String::from_utf8_lossy(&out.stderr)).into(),
            );
        }
        load_runs.push((wall, serde_json::from_slice(&out.stdout)?));
        let ratio = wall / (base_runs[rep].0 + base_runs[rep].1);
        println!(
            "run {}: baseline {:.2} s, dht load {wall:.2} s, {ratio:.2}x",
            rep + 1,
            base_runs[rep].0 + base_runs[rep].1
        );
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let base_read = median(base_runs.iter().map(|r| r.0).collect());
    let base_write = median(base_runs.iter().map(|r| r.1).collect());
    let base = median(base_runs.iter().map(|r| r.0 + r.1).collect());
    let wall = median(load_runs.iter().map(|r| r.0).collect());
    let ratio = median(
        base_runs
            .iter()
            .zip(&load_runs)
            .map(|(b, l)| l.0 / (b.0 + b.1))
            .collect(),
    );
    let f = |k: &str| {
        median(
            load_runs
                .iter()
                .map(|r| r.1["seconds"][k].as_f64().unwrap_or(0.0))
                .collect(),
        )
    };
    let summary = &load_runs[load_runs.len() - 1].1;

    // dht get on the last loaded ring.
    let mut gets = Vec::new();
    for i in 0..20 {
        let key = format!("key-{}", (i * 48_271) % rows);
        let t = Instant::now();
        let o = Command::new(bin)
            .args(["--state", state.to_str().unwrap(), "get", &key])
            .output()?;
        gets.push(t.elapsed().as_secs_f64() * 1000.0);
        assert!(o.status.success(), "get {key}");
    }
    gets.sort_by(f64::total_cmp);
    let mean_get = gets.iter().sum::<f64>() / gets.len() as f64;

    println!();
    println!("| step | baseline s | dht load s |");
    println!("|---|---:|---:|");
    println!("| read (polars) | {base_read:.2} | {:.2} |", f("read"));
    println!(
        "| route (Chord lookups, r = 3 copies, maintenance every 1000) | - | {:.2} |",
        f("route")
    );
    println!(
        "| persist (SQLite, one transaction) | {base_write:.2} | {:.2} |",
        f("persist")
    );
    println!("| total (wall, incl. process start) | {base:.2} | {wall:.2} |");
    println!("(medians of {reps} runs)");
    println!();
    println!("load / baseline: {ratio:.2}x, the median of {reps} runs' ratios (goal: at most 4x)");
    println!(
        "mean hops {}, maintenance rounds {}",
        summary["mean_hops"], summary["maintenance_rounds"]
    );
    println!(
        "dht get: mean {mean_get:.1} ms, max {:.1} ms over {} keys (goal: under 100 ms)",
        gets[gets.len() - 1],
        gets.len()
    );
    println!(
        "state file: {:.1} MB",
        std::fs::metadata(&state)?.len() as f64 / 1e6
    );
    Ok(())
}

/// The baseline: polars reads the file, and the rows are written once into
/// an SQLite table at `db` in one transaction. Returns (read, write) seconds.
fn baseline(
    csv_path: &std::path::Path,
    db: &std::path::Path,
    rows: usize,
) -> Result<(f64, f64), Box<dyn std::error::Error>> {
    let t = Instant::now();
    let df = frame::read_frame(csv_path, Format::Csv)?;
    let base_read = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let keys = df.column("key")?.str()?.clone();
    let values = df.column("value")?.str()?.clone();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let url = format!("sqlite://{}?mode=rwc", db.display());
        let mut conn = SqliteConnection::connect(&url).await?;
        sqlx::query("PRAGMA journal_mode=WAL")
            .execute(&mut conn)
            .await?;
        sqlx::query("PRAGMA synchronous=NORMAL")
            .execute(&mut conn)
            .await?;
        sqlx::query("CREATE TABLE kv (key TEXT PRIMARY KEY, value TEXT) WITHOUT ROWID")
            .execute(&mut conn)
            .await?;
        let mut tx = conn.begin().await?;
        // The same batching dht uses, so the ratio is about the ring.
        const BATCH: usize = 500;
        let mut i = 0;
        while i < rows {
            let n = BATCH.min(rows - i);
            let mut sql = String::from("INSERT INTO kv(key, value) VALUES ");
            for j in 0..n {
                sql.push_str(if j == 0 { "(?, ?)" } else { ", (?, ?)" });
            }
            let mut q = sqlx::query(&sql);
            for j in i..i + n {
                q = q
                    .bind(keys.get(j).unwrap_or_default())
                    .bind(serde_json::Value::from(values.get(j).unwrap_or_default()).to_string());
            }
            q.execute(&mut *tx).await?;
            i += n;
        }
        tx.commit().await?;
        Ok::<_, sqlx::Error>(())
    })?;
    let base_write = t.elapsed().as_secs_f64();
    Ok((base_read, base_write))
}
