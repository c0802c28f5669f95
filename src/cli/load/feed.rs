//! The sources `dht load`'s flags name, read part by part ([`Feed`]).

use super::super::note;
use super::args::{CompressionArg, DbKind, EncodingArg, LoadArgs, SourceKind, kind_from_name};
use anyhow::Context;
use dht::source::frame::CsvOptions;
use dht::source::input::{self, Input};
use dht::source::prepare::{Compression, TextEncoding};
use dht::source::select::Select;
use dht::source::{Batch, Columns, Record, frame, server};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::{Path, PathBuf};
use std::time::Instant;

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
    let source = source_kind(a, path)?;
    let format = match source {
        SourceKind::Csv | SourceKind::Tsv => frame::Format::Csv,
        SourceKind::Parquet => frame::Format::Parquet,
        SourceKind::Json => frame::Format::Json,
        SourceKind::Ndjson => frame::Format::Ndjson,
        SourceKind::Xlsx => frame::Format::Sheet,
        SourceKind::Ipc => frame::Format::Ipc,
        SourceKind::Sql => return with_tls(sql_input(a)?, a),
    };
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
    let encoding = match a.encoding {
        EncodingArg::Utf8 => TextEncoding::Utf8,
        EncodingArg::Latin1 => TextEncoding::Latin1,
        EncodingArg::Windows1252 => TextEncoding::Windows1252,
        EncodingArg::Utf16 => TextEncoding::Utf16,
    };
    Ok(Input::File {
        path,
        format,
        csv: csv_options(a, source),
        compression,
        encoding,
        sheet: a.sheet.clone(),
    })
}

/// The kind of source: `--source`, else what the file's name says.
fn source_kind(a: &LoadArgs, path: Option<&Path>) -> anyhow::Result<SourceKind> {
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
    Ok(source)
}

/// How to read a delimited file: the flags, tab-separated for `tsv`.
fn csv_options(a: &LoadArgs, source: SourceKind) -> CsvOptions {
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
    csv
}

/// The database `--url`, or `--db-kind` with its parts, names: an SQLite
/// file (the shipped items database by default) or a server.
fn sql_input(a: &LoadArgs) -> anyhow::Result<Input> {
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
    Ok(match (&a.url, server_kind) {
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
/// parts of about `--part-size` bytes of text, a database's rows in parts of
/// about that much text as they stream in, each Parquet, Arrow or NDJSON
/// file in slices of rows of about that size, every other source whole.
pub(super) struct Feed<'a> {
    pub(super) a: &'a LoadArgs,
    cols: Columns,
    /// The sources still to open (None: the SQL source, which has no path).
    paths: std::vec::IntoIter<Option<PathBuf>>,
    current: Option<input::Parts>,
    /// The spinner of the source being opened, until its first part is in.
    opening: Option<ProgressBar>,
    /// Bad rows skipped so far.
    pub(super) skipped: usize,
    /// Parts given out so far.
    pub(super) parts: usize,
    /// Seconds spent reading.
    pub(super) secs: f64,
}

impl<'a> Feed<'a> {
    pub(super) fn new(a: &'a LoadArgs) -> anyhow::Result<Feed<'a>> {
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
            opening: None,
            skipped: 0,
            parts: 0,
            secs: 0.0,
        })
    }

    /// True unless every source is known to be read to its end (an empty
    /// source still to open counts as more).
    pub(super) fn more(&self) -> bool {
        self.paths.len() > 0 || self.current.as_ref().is_some_and(|p| !p.finished())
    }

    /// The next part's records (None after the last source's last part);
    /// the bad rows it skipped are reported here.
    pub(super) async fn next(&mut self) -> anyhow::Result<Option<Vec<Record>>> {
        let started = Instant::now();
        let part = self.next_part().await;
        self.secs += started.elapsed().as_secs_f64();
        let Some(batch) = part? else { return Ok(None) };
        for bad in &batch.skipped {
            note(&format!("skipped {bad}"));
        }
        self.skipped += batch.skipped.len();
        self.parts += 1;
        Ok(Some(batch.records))
    }

    async fn next_part(&mut self) -> anyhow::Result<Option<Batch>> {
        loop {
            if let Some(parts) = &mut self.current {
                let next = parts.next(&self.cols, self.a.skip_bad_rows).await;
                if let Some(bar) = self.opening.take() {
                    bar.finish_and_clear();
                }
                if let Some(b) = next? {
                    return Ok(Some(b));
                }
                self.current = None;
            }
            let Some(path) = self.paths.next() else {
                return Ok(None);
            };
            let (parts, bar) = self.open(path.as_deref()).await?;
            self.current = Some(parts);
            self.opening = Some(bar);
        }
    }

    /// Opens one source (a CSV file's or a database's first part is read
    /// by the first [`Feed::next`]), with a spinner on stderr that stays
    /// until that first part is in.
    async fn open(&self, path: Option<&Path>) -> anyhow::Result<(input::Parts, ProgressBar)> {
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
        let shown = bar.clone();
        let parts = input::read_parts(
            &source,
            &self.cols,
            self.a.skip_bad_rows,
            self.a.part_size as usize,
            move |n| shown.set_position(n as u64),
        )
        .await;
        match parts {
            Ok(parts) => Ok((parts, bar)),
            Err(e) => {
                bar.finish_and_clear();
                Err(e.into())
            }
        }
    }
}
