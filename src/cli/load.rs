//! `dht load`: read the source's records (a bad row stops the load and
//! nothing is stored, unless --skip-bad-rows), create the ring if there is
//! none, insert each record through a Chord lookup with maintenance every K
//! records ([`dht::app::load`]), write the ring back in one transaction,
//! then show what the ring stores and a summary. A CSV file larger than
//! --part-size is read and stored part by part, the parts' copies kept on
//! disk rather than in memory ([`Spill`]), still in one transaction.

use super::{NewRing, commit, note};
use crate::output::{self, Format, Listed, LoadSummary};
use anyhow::Context;
use clap::{Args, ValueEnum};
use dht::app::build;
use dht::app::load::{self as loading, LoadPlan};

use dht::source::frame::CsvOptions;
use dht::source::input::{self, Input};
use dht::source::prepare::{Compression, TextEncoding};
use dht::source::select::Select;
use dht::source::{Batch, Columns, Record, frame, server};
use dht::state::{Access, Loaded, Scope, Spill, State};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

/// SQL database kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DbKind {
    /// PostgreSQL.
    Postgres,
    /// MySQL or MariaDB.
    Mysql,
    /// Microsoft SQL Server or Azure SQL (default port 1433, user sa,
    /// database master, tables in schema dbo).
    #[value(alias = "sqlserver")]
    Mssql,
    /// SQLite (a file: --database PATH).
    Sqlite,
}

/// Where records come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SourceKind {
    /// A CSV file (--path), with a header row unless --no-header.
    Csv,
    /// A tab-separated file: CSV with --delimiter '\t'.
    Tsv,
    /// A Parquet file (--path).
    Parquet,
    /// A JSON file (--path): one object whose members are the records, or an
    /// array of row objects read as a DataFrame.
    Json,
    /// A file of one JSON object per line (--path).
    Ndjson,
    /// A spreadsheet (--path): .xlsx, .xlsm, .xlsb, .xls or .ods, one sheet
    /// (--sheet), its first row naming the columns unless --no-header.
    #[value(alias = "xls", alias = "xlsb", alias = "ods", alias = "excel")]
    Xlsx,
    /// An Apache Arrow IPC file or stream (Feather v2) (--path).
    #[value(alias = "arrow", alias = "feather")]
    Ipc,
    /// A SQL table (--table) or query (--query) in the database at --url
    /// (default: the SQLite database shipped in data/items.db).
    Sql,
}

/// `--compression` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CompressionArg {
    /// Not compressed.
    None,
    /// gzip.
    Gzip,
    /// Zstandard.
    Zstd,
}

/// `--encoding` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EncodingArg {
    /// UTF-8.
    #[value(name = "utf8", alias = "utf-8")]
    Utf8,
    /// ISO-8859-1.
    #[value(name = "latin1", alias = "iso-8859-1")]
    Latin1,
    /// Windows-1252.
    #[value(name = "windows-1252", alias = "cp1252")]
    Windows1252,
    /// UTF-16.
    #[value(name = "utf16", alias = "utf-16")]
    Utf16,
}

/// A one-character option (`\t` and `tab` mean a tab), as a byte.
fn parse_char(s: &str) -> Result<u8, String> {
    match s {
        "\\t" | "tab" | "\t" => Ok(b'\t'),
        _ if s.len() == 1 && s.is_ascii() => Ok(s.as_bytes()[0]),
        _ => Err(format!("{s:?} is not one ASCII character")),
    }
}

/// A size in bytes: a number with an optional K, M, G or T suffix (powers
/// of 1024).
fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (digits, unit) = match t.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => t.split_at(i),
        None => (t, ""),
    };
    let scale: u64 = match unit.to_ascii_uppercase().trim_end_matches(['B', 'I']) {
        "" => 1,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        "T" => 1 << 40,
        _ => return Err(format!("{s:?} is not a size (say 500000, 64K, 64M or 1G)")),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{s:?} is not a size (say 500000, 64K, 64M or 1G)"))?;
    match n.checked_mul(scale) {
        Some(0) | None => Err(format!("{s:?}: the size must be between 1 byte and 2^64")),
        Some(v) => Ok(v),
    }
}

/// The source kind a file name says, compression suffix aside.
fn kind_from_name(path: &Path) -> Option<SourceKind> {
    let name = path.file_name()?.to_str()?.to_ascii_lowercase();
    let name = name
        .strip_suffix(".gz")
        .or_else(|| name.strip_suffix(".zst"))
        .unwrap_or(&name);
    let ext = Path::new(name).extension()?.to_str()?;
    Some(match ext {
        "csv" => SourceKind::Csv,
        "tsv" | "tab" => SourceKind::Tsv,
        "parquet" | "pq" => SourceKind::Parquet,
        "json" => SourceKind::Json,
        "ndjson" | "jsonl" => SourceKind::Ndjson,
        "xlsx" | "xlsm" | "xlsb" | "xls" | "ods" => SourceKind::Xlsx,
        "arrow" | "feather" | "ipc" | "arrows" => SourceKind::Ipc,
        _ => return None,
    })
}

#[derive(Debug, Args)]
pub struct LoadArgs {
    /// Kind of source. May be left out when the file's extension says it
    /// (.csv, .tsv, .parquet, .json, .ndjson, .jsonl, .xlsx, .xlsm, .xlsb,
    /// .xls, .ods, .arrow, .feather, .ipc, with .gz or .zst).
    #[arg(long, value_enum)]
    pub source: Option<SourceKind>,
    /// The file to read (csv, tsv, parquet, json, ndjson, xlsx, ipc); `-` reads
    /// standard input (for example `psql -c "COPY ... TO STDOUT CSV HEADER" |
    /// dht load --source csv --path -`). Several files and quoted globs
    /// (`--path 'exports/*.csv'`) load in order, the last value of a key
    /// winning.
    #[arg(long, value_name = "FILE", num_args = 1.., action = clap::ArgAction::Append)]
    pub path: Vec<PathBuf>,
    /// CSV field separator, one character (`,` by default; `\t` for tab,
    /// `;` as many exports use).
    #[arg(long, value_name = "CHAR", value_parser = parse_char)]
    pub delimiter: Option<u8>,
    /// The CSV file (or the sheet) has no header row: columns are named
    /// column_1, column_2, ... (usable in --key-col and --value-col).
    #[arg(long)]
    pub no_header: bool,
    /// The spreadsheet's sheet to read: its name, or its position counted
    /// from 0 (default: the first sheet).
    #[arg(long, value_name = "NAME|N")]
    pub sheet: Option<String>,
    /// CSV quote character (`"` by default).
    #[arg(long, value_name = "CHAR", value_parser = parse_char)]
    pub quote: Option<u8>,
    /// CSV lines starting with this text are comments and skipped.
    #[arg(long, value_name = "TEXT")]
    pub comment_prefix: Option<String>,
    /// A CSV field text that means null (repeatable: `--null-value NA
    /// --null-value '\N'`).
    #[arg(long, value_name = "TEXT")]
    pub null_value: Vec<String>,
    /// How the file is compressed (default: by its extension, .gz or .zst).
    #[arg(long, value_enum)]
    pub compression: Option<CompressionArg>,
    /// The text encoding of a CSV, JSON or NDJSON file (a UTF-8 byte-order
    /// mark is skipped; UTF-16 follows its byte-order mark, else
    /// little-endian).
    #[arg(long, value_enum, default_value_t = EncodingArg::Utf8)]
    pub encoding: EncodingArg,
    /// Table to read (sql): NAME or SCHEMA.NAME.
    #[arg(long, conflicts_with = "query")]
    pub table: Option<String>,
    /// A read-only SELECT to run instead of reading a whole table (sql).
    #[arg(long)]
    pub query: Option<String>,
    /// Database URL (sql): sqlite://FILE, postgres://USER@HOST:PORT/DB,
    /// mysql://USER@HOST:PORT/DB or mssql://USER@HOST:PORT/DB. Default: the
    /// SQLite database data/items.db. Put no password here if others can see
    /// your command line: use DHT_DB_PASSWORD.
    #[arg(long, env = "DHT_DB_URL", conflicts_with_all = ["db_kind", "host", "port", "user", "database"])]
    pub url: Option<String>,
    /// Server kind, with the connection given as separate flags (the
    /// password comes from DHT_DB_PASSWORD, or PGPASSWORD / MYSQL_PWD /
    /// SQLCMDPASSWORD).
    #[arg(long, value_enum)]
    pub db_kind: Option<DbKind>,
    /// Server host (default localhost).
    #[arg(long, requires = "db_kind")]
    pub host: Option<String>,
    /// Server port (default 5432 for PostgreSQL, 3306 for MySQL, 1433 for
    /// SQL Server).
    #[arg(long, requires = "db_kind")]
    pub port: Option<u16>,
    /// User name (default postgres / root / sa).
    #[arg(long, requires = "db_kind")]
    pub user: Option<String>,
    /// Database name (for SQLite: the file).
    #[arg(long, requires = "db_kind")]
    pub database: Option<String>,
    /// How much of a SQL Server connection is encrypted: on (all of it; the
    /// default), login (the login, and the rest if the server requires it)
    /// or off (nothing: for servers without TLS; the password is sent in the
    /// clear). In a URL: ?encrypt=...
    #[arg(long, value_name = "on|login|off")]
    pub encrypt: Option<String>,
    /// Accept a SQL Server's certificate without checking it (a fresh
    /// server's self-signed one). In a URL: ?trust_cert=true
    #[arg(long)]
    pub trust_cert: bool,
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
    /// A CSV file larger than this (bytes of text; K, M, G suffixes) is
    /// read and stored in parts of about this size: what the load wrote
    /// moves from memory to spill files beside the state file after each
    /// part and is merged into it at the end, so memory stays bounded
    /// however large the file (a part costs about 25 times its size while
    /// it is routed). Parquet, Arrow IPC and NDJSON files are read whole as
    /// DataFrames and stored in slices of rows of this size of columns; JSON
    /// files, workbooks and SQL tables are read whole.
    #[arg(long, default_value = "16M", value_name = "SIZE", value_parser = parse_size)]
    pub part_size: u64,
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

/// The source the flags describe.
fn input_from_args(a: &LoadArgs, path: Option<&Path>) -> anyhow::Result<Input> {
    let source = match (a.source, path) {
        (Some(s), _) => s,
        (None, Some(p)) => kind_from_name(p).with_context(|| {
            format!(
                "{}: cannot tell the kind of file from its name; say --source csv, tsv, parquet, json, ndjson, xlsx or ipc",
                p.display()
            )
        })?,
        (None, None) => anyhow::bail!("say where records come from: --source KIND, or --path FILE"),
    };
    if path.is_some() && source == SourceKind::Sql {
        anyhow::bail!("--path is for file sources; use --url (or --database) for SQL");
    }
    let mut csv = CsvOptions {
        header: !a.no_header,
        comment_prefix: a.comment_prefix.clone(),
        null_values: a.null_value.clone(),
        ..CsvOptions::default()
    };
    if source == SourceKind::Tsv {
        csv.delimiter = b'\t';
    }
    if let Some(d) = a.delimiter {
        csv.delimiter = d;
    }
    if let Some(q) = a.quote {
        csv.quote = Some(q);
    }
    let file = |format| -> anyhow::Result<Input> {
        let path = path.map(Path::to_path_buf).with_context(|| {
            format!(
                "--source {} needs --path FILE",
                format!("{source:?}").to_lowercase()
            )
        })?;
        let compression = match a.compression {
            Some(CompressionArg::None) => Compression::None,
            Some(CompressionArg::Gzip) => Compression::Gzip,
            Some(CompressionArg::Zstd) => Compression::Zstd,
            None => Compression::from_name(&path),
        };
        Ok(Input::File {
            path,
            format,
            csv: csv.clone(),
            compression,
            encoding: match a.encoding {
                EncodingArg::Utf8 => TextEncoding::Utf8,
                EncodingArg::Latin1 => TextEncoding::Latin1,
                EncodingArg::Windows1252 => TextEncoding::Windows1252,
                EncodingArg::Utf16 => TextEncoding::Utf16,
            },
            sheet: a.sheet.clone(),
        })
    };
    Ok(match source {
        SourceKind::Csv | SourceKind::Tsv => file(frame::Format::Csv)?,
        SourceKind::Parquet => file(frame::Format::Parquet)?,
        SourceKind::Json => file(frame::Format::Json)?,
        SourceKind::Ndjson => file(frame::Format::Ndjson)?,
        SourceKind::Xlsx => file(frame::Format::Sheet)?,
        SourceKind::Ipc => file(frame::Format::Ipc)?,
        SourceKind::Sql => {
            let select = match (&a.table, &a.query) {
                (Some(t), None) => Select::Table(t.clone()),
                (None, Some(q)) => Select::Query(q.clone()),
                _ => anyhow::bail!("--source sql needs --table NAME or --query SQL"),
            };
            let password = std::env::var("DHT_DB_PASSWORD")
                .ok()
                .filter(|p| !p.is_empty());
            let server_kind = match a.db_kind {
                Some(DbKind::Postgres) => Some(server::Kind::Postgres),
                Some(DbKind::Mysql) => Some(server::Kind::Mysql),
                Some(DbKind::Mssql) => Some(server::Kind::Mssql),
                Some(DbKind::Sqlite) | None => None,
            };
            let input = match (&a.url, server_kind) {
                (Some(url), _) if url.starts_with("sqlite:") => Input::Sqlite {
                    url: url.clone(),
                    select,
                },
                (Some(url), _) => Input::Server {
                    target: server::Target::from_url(url, password)?,
                    select,
                },
                (None, Some(kind)) => Input::Server {
                    target: server::Target::from_parts(
                        kind,
                        a.host.clone(),
                        a.port,
                        a.user.clone(),
                        a.database.clone(),
                        password,
                    ),
                    select,
                },
                (None, None) => Input::Sqlite {
                    url: match &a.database {
                        Some(file) => format!("sqlite://{file}"),
                        None => default_sqlite_url(),
                    },
                    select,
                },
            };
            with_tls(input, a)?
        }
    })
}

/// Applies --encrypt and --trust-cert, which only a SQL Server connection
/// has; given for any other source they are refused, not ignored.
fn with_tls(mut input: Input, a: &LoadArgs) -> anyhow::Result<Input> {
    if a.encrypt.is_none() && !a.trust_cert {
        return Ok(input);
    }
    match &mut input {
        Input::Server { target, .. } if target.kind == server::Kind::Mssql => {
            if let Some(e) = &a.encrypt {
                target.tls.encrypt = e
                    .parse()
                    .map_err(|e: String| anyhow::anyhow!("--encrypt: {e}"))?;
            }
            target.tls.trust_cert |= a.trust_cert;
            Ok(input)
        }
        _ => anyhow::bail!("--encrypt and --trust-cert apply to SQL Server (mssql://) only"),
    }
}

/// The files `--path` names, globs expanded (in name order), in the order
/// given.
fn expand_paths(given: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in given {
        let text = p.to_string_lossy();
        if !text.contains(['*', '?', '[']) || p.exists() {
            out.push(p.clone());
            continue;
        }
        let mut matched: Vec<PathBuf> = glob::glob(&text)
            .with_context(|| format!("--path {text:?} is not a valid pattern"))?
            .filter_map(Result::ok)
            .collect();
        if matched.is_empty() {
            anyhow::bail!("--path {text:?} matches no file");
        }
        matched.sort();
        out.extend(matched);
    }
    if out.len() > 1 && out.iter().any(|p| p == Path::new("-")) {
        anyhow::bail!("--path - (standard input) cannot be combined with other files");
    }
    Ok(out)
}

/// The records of every source, part by part, in order: each CSV file in
/// parts of about `--part-size` bytes of text, every other source whole.
struct Feed<'a> {
    a: &'a LoadArgs,
    cols: Columns,
    /// The sources still to open (None: the SQL source, which has no path).
    paths: std::vec::IntoIter<Option<PathBuf>>,
    current: Option<input::Parts>,
    /// Bad rows skipped so far.
    skipped: usize,
    /// Seconds spent reading.
    secs: f64,
}

impl<'a> Feed<'a> {
    fn new(a: &'a LoadArgs) -> anyhow::Result<Feed<'a>> {
        let paths = expand_paths(&a.path)?;
        let paths: Vec<Option<PathBuf>> = if paths.is_empty() {
            vec![None]
        } else {
            paths.into_iter().map(Some).collect()
        };
        Ok(Feed {
            a,
            cols: Columns {
                key: a.key_col.clone(),
                value: a.value_col.clone(),
            },
            paths: paths.into_iter(),
            current: None,
            skipped: 0,
            secs: 0.0,
        })
    }

    /// True unless every source is known to be read to its end (an empty
    /// source still to open counts as more).
    fn more(&self) -> bool {
        self.paths.len() > 0 || self.current.as_ref().is_some_and(|p| !p.finished())
    }

    /// The next part's records (None after the last source's last part);
    /// the bad rows it skipped are reported here.
    async fn next(&mut self) -> anyhow::Result<Option<Vec<Record>>> {
        let started = Instant::now();
        let part = self.next_part().await;
        self.secs += started.elapsed().as_secs_f64();
        let Some(batch) = part? else { return Ok(None) };
        for bad in &batch.skipped {
            note(&format!("skipped {bad}"));
        }
        self.skipped += batch.skipped.len();
        Ok(Some(batch.records))
    }

    async fn next_part(&mut self) -> anyhow::Result<Option<Batch>> {
        loop {
            if let Some(parts) = &mut self.current {
                if let Some(b) = parts.next(&self.cols, self.a.skip_bad_rows)? {
                    return Ok(Some(b));
                }
                self.current = None;
            }
            let Some(path) = self.paths.next() else {
                return Ok(None);
            };
            self.current = Some(self.open(path.as_deref()).await?);
        }
    }

    /// Opens one source (a CSV file's first part is read by the first
    /// [`Feed::next`]), with a spinner on stderr.
    async fn open(&self, path: Option<&Path>) -> anyhow::Result<input::Parts> {
        let source = input_from_args(self.a, path)?;
        // A server's rows are counted as they arrive; a file is read (a
        // compressed one decompressed first) behind a spinner.
        let bar = ProgressBar::new_spinner();
        let template = match &source {
            Input::Server { .. } => "{spinner} reading rows: {human_pos} ({elapsed})".to_owned(),
            Input::File { path, .. } if path == Path::new("-") => {
                "{spinner} reading standard input ({elapsed})".to_owned()
            }
            Input::File { path, .. } => format!(
                "{{spinner}} reading {} ({{elapsed}})",
                path.display().to_string().replace(['{', '}'], "")
            ),
            Input::Sqlite { .. } => "{spinner} reading rows ({elapsed})".to_owned(),
        };
        bar.set_style(ProgressStyle::with_template(&template).expect("template"));
        bar.enable_steady_tick(std::time::Duration::from_millis(250));
        let parts = input::read_parts(
            &source,
            &self.cols,
            self.a.skip_bad_rows,
            self.a.part_size as usize,
            |n| bar.set_position(n as u64),
        )
        .await;
        bar.finish_and_clear();
        Ok(parts?)
    }
}

/// A spinner on stderr saying what is being written.
fn writing(state: &Path) -> ProgressBar {
    let saving = ProgressBar::new_spinner();
    saving.set_message(format!("writing the ring to {}", state.display()));
    saving.enable_steady_tick(std::time::Duration::from_millis(120));
    saving
}

/// What a load routed and what the ring holds afterwards.
struct Outcome {
    routed: loading::Routed,
    sample: Vec<Listed>,
    keys_stored: usize,
    route_secs: f64,
}

/// Loads a source that is one part: routed in memory, written in one save,
/// the listing taken from memory.
async fn load_whole(
    st: &mut State,
    loaded: &mut Loaded,
    records: Vec<Record>,
    plan: LoadPlan,
    a: &LoadArgs,
) -> anyhow::Result<Outcome> {
    let route_start = Instant::now();
    let bar = ProgressBar::new(records.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("routing {human_pos}/{human_len} [{bar:30}] eta {eta}")
            .expect("template")
            .progress_chars("=> "),
    );
    let routed = loading::route_records(&mut loaded.world, records, plan, |n| bar.set_position(n))?;
    bar.finish_and_clear();
    let route_secs = route_start.elapsed().as_secs_f64();
    // What to show, gathered before the world goes to the state file.
    let (sample, keys_stored) = loading::stored_sample(&loaded.world, a.show);
    let sample = sample
        .into_iter()
        .map(|e| Listed {
            key: e.key,
            value: e.value,
            node: e.node,
            node_id: e.node_id,
            role: None,
        })
        .collect();
    st.save(loaded).await?;
    // Keys once lost that this load wrote again are no longer lost.
    let written: Vec<String> = st
        .lost()
        .await?
        .into_iter()
        .map(|l| l.key)
        .filter(|k| {
            let key = loaded.world.key(k);
            loaded.world.nodes().any(|n| n.store.get(&key).is_some())
        })
        .collect();
    st.forget_lost_keys(&written).await?;
    Ok(Outcome {
        routed,
        sample,
        keys_stored,
        route_secs,
    })
}

/// Loads a source of several parts without holding it in memory: after
/// each part its copies move to spill files ([`Spill`]), merged into the
/// state file at the end; the listing is read back from the file.
async fn load_in_parts(
    st: &mut State,
    loaded: &mut Loaded,
    feed: &mut Feed<'_>,
    first: Vec<Record>,
    plan: LoadPlan,
    state: &Path,
) -> anyhow::Result<Outcome> {
    let spilling = |e: std::io::Error| {
        anyhow::anyhow!(
            "writing the load's spill files beside {}: {e}",
            state.display()
        )
    };
    // Copies name their holders by row id: a new ring's nodes go in first.
    st.save(loaded).await?;
    let mut spill = Spill::new(state, loaded).map_err(spilling)?;
    let mut routing = loading::Routing::new(plan);
    routing.spilled();
    let (route_start, read_before) = (Instant::now(), feed.secs);
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} routing {human_pos} records ({elapsed})")
            .expect("template"),
    );
    bar.enable_steady_tick(std::time::Duration::from_millis(250));
    // A part's copies leave memory before the next part is read; the
    // last part's stay for the final round's replica upkeep.
    let mut part = first;
    loop {
        routing.route(&mut loaded.world, part, |n| bar.set_position(n))?;
        if !feed.more() {
            break;
        }
        loaded.spill(&mut spill).map_err(spilling)?;
        match feed.next().await? {
            Some(next) => part = next,
            None => break,
        }
    }
    let routed = routing.finish(&mut loaded.world);
    loaded.spill(&mut spill).map_err(spilling)?;
    bar.finish_and_clear();
    let route_secs = route_start.elapsed().as_secs_f64() - (feed.secs - read_before);
    // Keys held before the load and not written by it are still in memory.
    let (_, untouched) = loading::stored_sample(&loaded.world, 0);
    let saving = writing(state);
    st.save(loaded).await?;
    saving.finish_and_clear();
    let merging = ProgressBar::new(Spill::FILES as u64);
    merging.set_style(
        ProgressStyle::with_template(
            "merging the load's copies into the state file [{bar:30}] {pos}/{len} ({elapsed})",
        )
        .expect("template")
        .progress_chars("=> "),
    );
    let merged = st
        .merge_spill(spill, |done| merging.set_position(done as u64))
        .await?;
    merging.finish_and_clear();
    let saving = writing(state);
    let routed = loading::Routing::settle(routed, plan.fresh_ring, merged.keys, merged.rewrites);
    let mut written = Vec::new();
    for lost in st.lost().await? {
        let key = loaded.world.key(&lost.key);
        if st.holds_key(loaded.world.bits(), &key).await? {
            written.push(lost.key);
        }
    }
    st.forget_lost_keys(&written).await?;
    let sample = st
        .first_keys(loaded, feed.a.show)
        .await?
        .into_iter()
        .map(|(key, value, node)| Listed {
            key: key.text,
            value,
            node: loaded.world.name(node).into(),
            node_id: loaded.world.bits().show(node.id()),
            role: None,
        })
        .collect();
    saving.finish_and_clear();
    Ok(Outcome {
        routed,
        sample,
        keys_stored: untouched + merged.keys as usize,
        route_secs,
    })
}

pub async fn run(state: &Path, a: LoadArgs, out: &mut impl Write) -> anyhow::Result<ExitCode> {
    // The first part is read before the state is touched: a source that
    // cannot be read changes nothing and takes no lock. A later part's
    // error rolls the whole load back.
    let mut feed = Feed::new(&a)?;
    let first = feed.next().await?.unwrap_or_default();

    let mut st = State::open(state, Access::Create).await?;
    let mut created = None;
    let mut loaded = if st.has_ring().await? {
        if a.nodes.is_some() {
            note("the ring exists already; --nodes applies only to a new ring");
        }
        st.load(Scope::All).await?
    } else {
        let params = a.ring.params()?;
        let n = a.nodes.unwrap_or(8);
        let nodes = build::planned_nodes(params, n, &[])?;
        let (world, _) =
            build::build_ring(params, a.ring.seed, nodes, build::use_bulk(n, false, false))?;
        st.create(params, world.counters()).await?;
        created = Some(n);
        Loaded::fresh(world)
    };
    let plan = LoadPlan {
        maintain_every: a.maintain_every,
        fresh_ring: created.is_some(),
    };

    let persist_start = Instant::now();
    let done = if feed.more() {
        load_in_parts(&mut st, &mut loaded, &mut feed, first, plan, state).await?
    } else {
        load_whole(&mut st, &mut loaded, first, plan, &a).await?
    };
    let saving = writing(state);
    commit(
        st,
        "load",
        "",
        &format!("{} records", done.routed.records()),
    )
    .await?;
    saving.finish_and_clear();
    // The process ends right after: freeing millions of entries one by one
    // would only add seconds before the exit frees them at once.
    let nodes = loaded.world.len();
    let loaded_params = loaded.world.params();
    std::mem::forget(loaded);
    let persist_secs = (persist_start.elapsed().as_secs_f64() - done.route_secs).max(0.0);
    let done_route_secs = done.route_secs;
    let routed = done.routed;
    let read_secs = feed.secs;
    let keys_stored = done.keys_stored;
    let records = routed.records();
    let rejected = feed.skipped;

    let summary = LoadSummary {
        records_read: records + rejected as u64,
        routed,
        rejected,
        nodes,
        ring_created: created.is_some(),
        keys_stored,
        seconds: [read_secs, done_route_secs, persist_secs],
    };
    if a.json {
        output::load_summary(out, &summary, true)?;
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(n) = created {
        let size = build::size_in_words(loaded_params, n);
        writeln!(out, "created a ring of {size} at {}", state.display())?;
    }
    if !done.sample.is_empty() {
        let listing = done.sample;
        output::entries(out, Format::Table, &listing)?;
        if keys_stored > listing.len() {
            writeln!(
                out,
                "... and {} more keys (`dht dump` lists them all)",
                keys_stored - listing.len()
            )?;
        }
        writeln!(out)?;
    }
    output::load_summary(out, &summary, false)?;
    Ok(ExitCode::SUCCESS)
}
