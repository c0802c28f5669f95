//! `dht load`: the old tool's flow. Read every record from the source (a bad
//! row stops the load before anything is stored, unless --skip-bad-rows),
//! create the ring if there is none, insert each record through a Chord
//! lookup with maintenance every K records, write the ring back in one
//! transaction, then show what the ring stores and a summary.

use super::{NewRing, ring::build_ring, ring::planned_nodes};
use crate::output::{self, Listed};
use anyhow::Context;
use clap::{Args, ValueEnum};
use dht::chord::{Bits, Params};
use dht::source::{self, Batch, Columns, frame, server, sql};
use dht::state::{Access, Loaded, Scope, State};
use indicatif::{ProgressBar, ProgressStyle};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

/// SQL database kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DbKind {
    /// PostgreSQL.
    Postgres,
    /// MySQL or MariaDB.
    Mysql,
    /// SQLite (a file: --database PATH).
    Sqlite,
}

/// Where records come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SourceKind {
    /// A CSV file with a header row (--path).
    Csv,
    /// A Parquet file (--path).
    Parquet,
    /// A JSON file (--path): one object whose members are the records, or an
    /// array of row objects read as a DataFrame.
    Json,
    /// A file of one JSON object per line (--path).
    Ndjson,
    /// A SQL table (--table) or query (--query) in the database at --url
    /// (default: the SQLite database shipped in data/items.db).
    Sql,
}

#[derive(Debug, Args)]
pub struct LoadArgs {
    /// Kind of source.
    #[arg(long, value_enum)]
    pub source: SourceKind,
    /// The file to read (csv, parquet, json, ndjson).
    #[arg(long, value_name = "FILE")]
    pub path: Option<PathBuf>,
    /// Table to read (sql): NAME or SCHEMA.NAME.
    #[arg(long, conflicts_with = "query")]
    pub table: Option<String>,
    /// A read-only SELECT to run instead of reading a whole table (sql).
    #[arg(long)]
    pub query: Option<String>,
    /// Database URL (sql): sqlite://FILE, postgres://USER@HOST:PORT/DB or
    /// mysql://USER@HOST:PORT/DB. Default: the SQLite database data/items.db.
    /// Put no password here if others can see your command line: use
    /// DHT_DB_PASSWORD.
    #[arg(long, env = "DHT_DB_URL", conflicts_with_all = ["db_kind", "host", "port", "user", "database"])]
    pub url: Option<String>,
    /// Server kind, with the connection given as separate flags (the
    /// password comes from DHT_DB_PASSWORD, or PGPASSWORD / MYSQL_PWD).
    #[arg(long, value_enum)]
    pub db_kind: Option<DbKind>,
    /// Server host (default localhost).
    #[arg(long, requires = "db_kind")]
    pub host: Option<String>,
    /// Server port (default 5432 for PostgreSQL, 3306 for MySQL).
    #[arg(long, requires = "db_kind")]
    pub port: Option<u16>,
    /// User name (default postgres / root).
    #[arg(long, requires = "db_kind")]
    pub user: Option<String>,
    /// Database name (for SQLite: the file).
    #[arg(long, requires = "db_kind")]
    pub database: Option<String>,
    /// Column holding the key (default: the first of exactly two columns).
    #[arg(long, value_name = "COLUMN")]
    pub key_col: Option<String>,
    /// Column holding the value (default: the second of two columns; with
    /// --key-col alone, the rest of the row as a JSON object).
    #[arg(long, value_name = "COLUMN")]
    pub value_col: Option<String>,
    /// Skip rows that cannot be stored (null or empty key, unmappable value),
    /// reporting each, instead of stopping the load.
    #[arg(long)]
    pub skip_bad_rows: bool,
    /// Every K records, every live node runs stabilize, check_predecessor
    /// and fix_fingers; one full round (replica upkeep too) follows the
    /// last record.
    #[arg(long, default_value_t = 1000, value_name = "K", value_parser = clap::value_parser!(u64).range(1..))]
    pub maintain_every: u64,
    /// Nodes of the ring created when there is none.
    #[arg(long)]
    pub nodes: Option<usize>,
    #[command(flatten)]
    pub ring: NewRing,
    /// How many stored entries to print afterwards (0: none).
    #[arg(long, default_value_t = 20, value_name = "N")]
    pub show: usize,
    /// Print the summary as one JSON object (and no entries).
    #[arg(long)]
    pub json: bool,
}

/// The default SQL source: data/items.db in the current directory, else the
/// one shipped beside this build's sources.
fn default_sqlite_url() -> String {
    let here = Path::new("data/items.db");
    let path = if here.exists() {
        here.to_path_buf()
    } else {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("data/items.db")
    };
    format!("sqlite://{}", path.display())
}

async fn read_source(a: &LoadArgs) -> anyhow::Result<Batch> {
    if a.path.is_some() && a.source == SourceKind::Sql {
        anyhow::bail!("--path is for file sources; use --url (or --database) for SQL");
    }
    let cols = Columns {
        key: a.key_col.clone(),
        value: a.value_col.clone(),
    };
    let need_path = || {
        a.path.clone().with_context(|| {
            format!(
                "--source {} needs --path FILE",
                format!("{:?}", a.source).to_lowercase()
            )
        })
    };
    let batch = match a.source {
        SourceKind::Csv => frame::read(&need_path()?, frame::Format::Csv, &cols, a.skip_bad_rows)?,
        SourceKind::Parquet => frame::read(
            &need_path()?,
            frame::Format::Parquet,
            &cols,
            a.skip_bad_rows,
        )?,
        SourceKind::Ndjson => {
            frame::read(&need_path()?, frame::Format::Ndjson, &cols, a.skip_bad_rows)?
        }
        SourceKind::Json => {
            let p = need_path()?;
            if !p.exists() {
                anyhow::bail!("{}: no such file", p.display());
            }
            if source::dict::looks_like_object(&p) {
                if a.key_col.is_some() || a.value_col.is_some() {
                    anyhow::bail!(
                        "{}: a JSON object's members are the records; --key-col and --value-col apply to arrays of rows",
                        p.display()
                    );
                }
                source::dict::read(&p, a.skip_bad_rows)?
            } else {
                frame::read(&p, frame::Format::Json, &cols, a.skip_bad_rows)?
            }
        }
        SourceKind::Sql => {
            let select = match (&a.table, &a.query) {
                (Some(t), None) => sql::Select::Table(t.clone()),
                (None, Some(q)) => sql::Select::Query(q.clone()),
                _ => anyhow::bail!("--source sql needs --table NAME or --query SQL"),
            };
            let password = std::env::var("DHT_DB_PASSWORD")
                .ok()
                .filter(|p| !p.is_empty());
            let target = match (&a.url, a.db_kind) {
                (Some(url), _) if url.starts_with("sqlite:") => None,
                (Some(url), _) => Some(server::Target::from_url(url, password)?),
                (None, Some(DbKind::Postgres)) => Some(server::Target::from_parts(
                    server::Kind::Postgres,
                    a.host.clone(),
                    a.port,
                    a.user.clone(),
                    a.database.clone(),
                    password,
                )),
                (None, Some(DbKind::Mysql)) => Some(server::Target::from_parts(
                    server::Kind::Mysql,
                    a.host.clone(),
                    a.port,
                    a.user.clone(),
                    a.database.clone(),
                    password,
                )),
                (None, Some(DbKind::Sqlite) | None) => None,
            };
            match target {
                Some(t) => {
                    let bar = ProgressBar::new_spinner();
                    bar.set_style(
                        ProgressStyle::with_template(
                            "{spinner} reading rows: {human_pos} ({elapsed})",
                        )
                        .expect("template"),
                    );
                    let batch = server::read(&t, &select, &cols, a.skip_bad_rows, |n| {
                        bar.set_position(n as u64)
                    })
                    .await;
                    bar.finish_and_clear();
                    batch?
                }
                None => {
                    let url = match (&a.url, &a.database) {
                        (Some(u), _) => u.clone(),
                        (None, Some(file)) => format!("sqlite://{file}"),
                        (None, None) => default_sqlite_url(),
                    };
                    sql::read_sqlite(&url, &select, &cols, a.skip_bad_rows).await?
                }
            }
        }
    };
    Ok(batch)
}

pub async fn run(state: &Path, a: LoadArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let batch = read_source(&a).await?;
    for bad in &batch.skipped {
        eprintln!("dht: skipped {bad}");
    }
    let read_secs = started.elapsed().as_secs_f64();

    let mut st = State::open(state, Access::Create).await?;
    let mut created = None;
    let mut loaded = if st.has_ring().await? {
        if a.nodes.is_some() {
            eprintln!("dht: the ring exists already; --nodes applies only to a new ring");
        }
        st.load(Scope::All).await?
    } else {
        let bits = Bits::new(a.ring.bits)?;
        let params = Params {
            bits,
            replicas: a.ring.replicas,
        };
        let n = a.nodes.unwrap_or(8);
        let nodes = planned_nodes(bits, n, &[])?;
        let (world, _) = build_ring(
            params,
            a.ring.seed,
            nodes,
            n > super::ring::PROTOCOL_BUILD_LIMIT,
        )?;
        st.create(params, world.counters()).await?;
        created = Some(n);
        Loaded::fresh(world)
    };

    let route_start = Instant::now();
    let total = batch.records.len() as u64;
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("routing {human_pos}/{human_len} [{bar:30}] eta {eta}")
            .expect("template")
            .progress_chars("=> "),
    );
    let w = &mut loaded.world;
    // Duplicate keys in the source: on a ring this load created, a put that
    // replaced a value can only have replaced one from this source, so the
    // put's answer counts them; on an existing ring a set of the keys seen
    // tells a duplicate from a key stored before (a million-key set is a
    // cache miss per record and 34 MB, spared where it is not needed).
    let fresh = created.is_some();
    let mut seen: HashSet<Arc<str>, rustc_hash::FxBuildHasher> = HashSet::with_capacity_and_hasher(
        if fresh { 0 } else { batch.records.len() },
        Default::default(),
    );
    let (mut inserted, mut overwritten, mut duplicates, mut rounds, mut hops) =
        (0u64, 0u64, 0u64, 0u64, 0u64);
    // Records are consumed as they go: each key's text and value move into
    // the ring (its copies share them), nothing is copied.
    for (i, r) in batch.records.into_iter().enumerate() {
        if !fresh && !seen.insert(Arc::clone(&r.key)) {
            duplicates += 1;
        }
        let (row, key) = (r.row, Arc::clone(&r.key));
        let out = w
            .put_shared(r.key, r.value, None)
            .with_context(|| format!("storing row {row} (key {key:?}); nothing was saved"))?;
        hops += out.lookup.hops() as u64;
        if out.result.is_some() {
            overwritten += 1;
            if fresh {
                duplicates += 1;
            }
        } else {
            inserted += 1;
        }
        if (i as u64 + 1) % a.maintain_every == 0 {
            w.routing_round();
            rounds += 1;
        }
        if i % 1024 == 0 {
            bar.set_position(i as u64);
        }
    }
    // Replica upkeep once, after the last record: it repairs any replica a
    // put could not write (the rounds between records ran routing upkeep).
    if total > 0 {
        w.round();
        rounds += 1;
    }
    bar.finish_and_clear();
    let route_secs = route_start.elapsed().as_secs_f64();

    // What to show, gathered before the world goes to the state file.
    let mut listing = Vec::new();
    let mut stored = 0usize;
    for n in w.nodes() {
        for (k, v) in n.store.iter_live() {
            if n.responsible_for(k.id) {
                stored += 1;
                if listing.len() < a.show {
                    listing.push(Listed {
                        key: k.text.clone(),
                        value: v.clone(),
                        node: w.name(n.id).into(),
                        node_id: w.bits().show(n.id.id()),
                        role: None,
                    });
                }
            }
        }
    }
    let nodes = w.len();
    let persist_start = Instant::now();
    let saving = ProgressBar::new_spinner();
    saving.set_message(format!("writing {} to {}", "the ring", state.display()));
    saving.enable_steady_tick(std::time::Duration::from_millis(120));
    st.save(&mut loaded).await?;
    st.commit().await?;
    saving.finish_and_clear();
    // The process ends right after: freeing millions of entries one by one
    // would only add seconds before the exit frees them at once.
    std::mem::forget(loaded);
    let persist_secs = persist_start.elapsed().as_secs_f64();
    let mean_hops = if total > 0 {
        hops as f64 / total as f64
    } else {
        0.0
    };

    if a.json {
        let summary = serde_json::json!({
            "records_read": total + batch.skipped.len() as u64,
            "inserted": inserted,
            "overwritten": overwritten,
            "duplicates": duplicates,
            "rejected": batch.skipped.len(),
            "maintenance_rounds": rounds,
            "mean_hops": (mean_hops * 100.0).round() / 100.0,
            "nodes": nodes,
            "ring_created": created.is_some(),
            "keys_stored": stored,
            "seconds": { "read": read_secs, "route": route_secs, "persist": persist_secs },
        });
        println!("{summary}");
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(n) = created {
        println!("created a ring of {n} nodes at {}", state.display());
    }
    if !listing.is_empty() {
        output::entries(super::Format::Table, &listing)?;
        if stored > listing.len() {
            println!(
                "... and {} more keys (`dht dump` lists them all)",
                stored - listing.len()
            );
        }
        println!();
    }
    println!("records read        {}", total + batch.skipped.len() as u64);
    println!("inserted            {inserted}");
    println!("overwritten         {overwritten}");
    println!("duplicate keys      {duplicates}");
    println!("rejected            {}", batch.skipped.len());
    println!("maintenance rounds  {rounds}");
    println!("mean hops           {mean_hops:.2}");
    println!("keys in the ring    {stored} on {nodes} nodes");
    println!(
        "time                read {read_secs:.2}s, route {route_secs:.2}s, persist {persist_secs:.2}s"
    );
    Ok(ExitCode::SUCCESS)
}
