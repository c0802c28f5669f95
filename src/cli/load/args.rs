//! `dht load`'s flags: where records come from, how a file is written,
//! and the ring to create.

use super::super::NewRing;
use clap::{Args, ValueEnum};
use std::path::{Path, PathBuf};

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
pub(super) fn kind_from_name(path: &Path) -> Option<SourceKind> {
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
    /// A CSV file or a database table larger than this (bytes of text; K,
    /// M, G suffixes) is read and stored in parts of about this size: what
    /// the load wrote moves from memory to spill files beside the state
    /// file after each part and is merged into it at the end, so memory
    /// stays bounded however large the source (a part costs about 25 times
    /// its size while it is routed). A table's rows are stored as they
    /// stream in. Parquet, Arrow IPC and NDJSON files are read whole as
    /// DataFrames and stored in slices of rows of this size of columns;
    /// JSON files and workbooks are read whole. With the default a large
    /// CSV load peaks at about 2.4 GB of memory; a smaller size trades time
    /// for memory (16M: about 0.8 GB, each part's copies written out and
    /// merged back once more).
    #[arg(long, default_value = "64M", value_name = "SIZE", value_parser = parse_size)]
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
