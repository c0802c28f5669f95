//! DataFrame files read through polars: CSV, Parquet, Arrow IPC (Feather),
//! JSON (an array of records) and NDJSON. Columns keep their types in the
//! stored values. Spreadsheets are named here too but read by `sheet.rs`.

use super::{Batch, Columns, Plan, SourceError, assemble, convert};
use polars::prelude::*;
use std::path::Path;

/// The DataFrame file formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Comma-separated with a header row.
    Csv,
    /// Apache Parquet.
    Parquet,
    /// A JSON array of objects.
    Json,
    /// One JSON object per line.
    Ndjson,
    /// Apache Arrow IPC, file (Feather v2) or stream format.
    Ipc,
    /// A spreadsheet workbook (xlsx, xlsm, xlsb, xls, ods), read through
    /// calamine rather than polars.
    Sheet,
}

impl Format {
    /// The format's name in messages.
    pub fn name(self) -> &'static str {
        match self {
            Format::Csv => "CSV",
            Format::Parquet => "Parquet",
            Format::Json => "JSON",
            Format::Ndjson => "NDJSON",
            Format::Ipc => "Arrow IPC",
            Format::Sheet => "spreadsheet",
        }
    }

    /// True for the formats whose files are bytes, not text: no text
    /// encoding applies to them.
    pub fn is_binary(self) -> bool {
        matches!(self, Format::Parquet | Format::Ipc | Format::Sheet)
    }
}

/// How a CSV file is written: what pandas users pass to `read_csv`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvOptions {
    /// The field separator (`,`; `\t` for TSV, `;` in many exports).
    pub delimiter: u8,
    /// The first row names the columns; without one they are `column_1`,
    /// `column_2`, ...
    pub header: bool,
    /// The quote character, or None when fields are never quoted.
    pub quote: Option<u8>,
    /// Lines starting with this are skipped.
    pub comment_prefix: Option<String>,
    /// Field texts that mean null (`NA`, `\N`, ...), besides an empty field
    /// in a typed column.
    pub null_values: Vec<String>,
}

impl Default for CsvOptions {
    fn default() -> CsvOptions {
        CsvOptions {
            delimiter: b',',
            header: true,
            quote: Some(b'"'),
            comment_prefix: None,
            null_values: Vec::new(),
        }
    }
}

/// Reads the whole file as a DataFrame. A file polars cannot read, even
/// one that makes it panic (a damaged Parquet file), is an error naming the
/// file; JSON nested deeper than [`super::guard::MAX_DEPTH`] is refused
/// before polars sees it.
pub fn read_frame(path: &Path, format: Format) -> Result<DataFrame, SourceError> {
    read_frame_with(path, format, &CsvOptions::default())
}

/// [`read_frame`] with the CSV written as `csv` says.
pub fn read_frame_with(
    path: &Path,
    format: Format,
    csv: &CsvOptions,
) -> Result<DataFrame, SourceError> {
    let shown = path.display().to_string();
    let file = super::guard::open_file(path)?;
    if matches!(format, Format::Json | Format::Ndjson) {
        super::guard::check_depth(path)?;
    }
    super::guard::no_panic(&shown, format.name(), || {
        read_frame_from(file, &shown, format, csv)
    })
    .map_err(|e| match e {
        // polars names no row for a CSV row with the wrong number of
        // fields, nor a line for NDJSON that does not parse: find it.
        SourceError::Format {
            path: p,
            kind,
            reason,
        } => SourceError::Format {
            reason: match format {
                Format::Csv => csv_culprit(path, csv, &reason),
                Format::Ndjson => bad_json_line(path),
                _ => None,
            }
            .unwrap_or(reason),
            path: p,
            kind,
        },
        e => e,
    })
}

/// The first non-blank line of an NDJSON file that is not a JSON object,
/// with serde_json's words for what is wrong.
fn bad_json_line(path: &Path) -> Option<String> {
    use std::io::BufRead;
    let file = std::io::BufReader::new(std::fs::File::open(path).ok()?);
    for (i, line) in file.split(b'\n').enumerate() {
        let line = line.ok()?;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        if let Some(why) = not_an_object(&line) {
            return Some(format!("line {}: {why}", i + 1));
        }
    }
    None
}

/// What is wrong with an NDJSON line that is not one JSON object.
fn not_an_object(line: &[u8]) -> Option<String> {
    match serde_json::from_slice::<serde_json::Value>(line) {
        Ok(serde_json::Value::Object(_)) => None,
        Ok(_) => Some("not a JSON object".to_owned()),
        Err(e) => Some(e.to_string()),
    }
}

/// What polars could not say about a CSV that failed to parse: the row with
/// the wrong number of fields, or the row and column of a value that does
/// not fit the type polars gave its column, numbered as the other errors
/// number rows.
pub(crate) fn csv_culprit(path: &Path, opts: &CsvOptions, reason: &str) -> Option<String> {
    ragged_row(path, opts).or_else(|| unparsable_row(path, opts, reason))
}

/// polars' "could not parse `TEXT` as dtype `TYPE` at column 'NAME'" said
/// with the row where TEXT first stands in that column.
fn unparsable_row(path: &Path, opts: &CsvOptions, reason: &str) -> Option<String> {
    let rest = reason.split_once("could not parse `")?.1;
    let (text, rest) = rest.split_once("` as dtype `")?;
    let (dtype, rest) = rest.split_once("` at column '")?;
    let column = rest.split_once('\'')?.0;
    let mut r = csv_reader(path, opts)?;
    let mut records = r.records();
    let index = if opts.header {
        let header = records.next()?.ok()?;
        header.iter().position(|h| h == column)?
    } else {
        column
            .strip_prefix("column_")?
            .parse::<usize>()
            .ok()?
            .checked_sub(1)?
    };
    for (i, rec) in records.enumerate() {
        if rec.ok()?.get(index) == Some(text) {
            return Some(format!(
                "row {}, column {column:?}: {text:?} does not fit the column's type, {dtype}, which polars inferred from the first {} rows",
                i + 1,
                super::parts::INFER_ROWS
            ));
        }
    }
    None
}

/// A reader of the CSV at `path` as `opts` describes it, every line a
/// record (the header too), rows of any length.
fn csv_reader(path: &Path, opts: &CsvOptions) -> Option<csv::Reader<std::fs::File>> {
    csv::ReaderBuilder::new()
        .flexible(true)
        .has_headers(false)
        .delimiter(opts.delimiter)
        .quoting(opts.quote.is_some())
        .quote(opts.quote.unwrap_or(b'"'))
        .comment(
            opts.comment_prefix
                .as_deref()
                .filter(|p| p.len() == 1)
                .map(|p| p.as_bytes()[0]),
        )
        .from_path(path)
        .ok()
}

/// The first data row whose field count differs from the header's, said
/// the way the other errors say rows (1-based, header not counted).
fn ragged_row(path: &Path, opts: &CsvOptions) -> Option<String> {
    let mut r = csv_reader(path, opts)?;
    let mut records = r.records();
    let want = records.next()?.ok()?.len();
    let first_data = if opts.header { 1 } else { 2 };
    for (i, rec) in records.enumerate() {
        let rec = rec.ok()?;
        if rec.len() != want {
            let what = if opts.header { "the header" } else { "row 1" };
            return Some(format!(
                "row {} has {} fields where {what} has {want}",
                i + first_data,
                rec.len()
            ));
        }
    }
    None
}

/// polars' CSV settings for a file written as `csv` says. An empty field
/// is an empty string in a text column (CSV has no null; keys and values
/// with empty text must round-trip), and null in a typed column, where it
/// cannot be anything else.
pub(crate) fn csv_read_options(csv: &CsvOptions) -> CsvReadOptions {
    CsvReadOptions::default()
        .with_has_header(csv.header)
        .with_infer_schema_length(Some(super::parts::INFER_ROWS))
        .map_parse_options(|o| {
            let nulls = (!csv.null_values.is_empty()).then(|| {
                NullValues::AllColumns(csv.null_values.iter().map(|v| v.as_str().into()).collect())
            });
            o.with_missing_is_null(false)
                .with_separator(csv.delimiter)
                .with_quote_char(csv.quote)
                .with_comment_prefix(csv.comment_prefix.as_deref())
                .with_null_values(nulls)
        })
}

fn read_frame_from(
    file: std::fs::File,
    shown: &str,
    format: Format,
    csv: &CsvOptions,
) -> Result<DataFrame, SourceError> {
    // polars' first line says what is wrong; later ones suggest polars
    // settings a dht user cannot reach.
    let bad = |e: PolarsError| SourceError::Format {
        path: shown.to_owned(),
        kind: format.name(),
        reason: e.to_string().lines().next().unwrap_or_default().to_owned(),
    };
    match format {
        Format::Csv => csv_read_options(csv)
            .into_reader_with_file_handle(file)
            .finish()
            .map_err(bad),
        Format::Parquet => ParquetReader::new(file).finish().map_err(bad),
        Format::Ipc => read_ipc(file).map_err(bad),
        Format::Sheet => Err(SourceError::Format {
            path: shown.to_owned(),
            kind: format.name(),
            reason: "a spreadsheet is not a DataFrame file (read it with sheet::read)".into(),
        }),
        Format::Json => JsonReader::new(file)
            .with_json_format(JsonFormat::Json)
            .finish()
            .map_err(bad),
        Format::Ndjson => JsonReader::new(file)
            .with_json_format(JsonFormat::JsonLines)
            .finish()
            .map_err(bad),
    }
}

/// An Arrow IPC file (the random-access format, also Feather v2), or else
/// an Arrow IPC stream (what `pyarrow.ipc.new_stream` writes).
fn read_ipc(file: std::fs::File) -> PolarsResult<DataFrame> {
    use std::io::{Seek, SeekFrom};
    let mut again = file.try_clone()?;
    match IpcReader::new(file).finish() {
        Ok(df) => Ok(df),
        Err(as_file) => {
            again.seek(SeekFrom::Start(0))?;
            IpcStreamReader::new(again).finish().map_err(|_| as_file)
        }
    }
}

/// Reads `path` and turns every row into a record.
pub fn read(
    path: &Path,
    format: Format,
    cols: &Columns,
    skip_bad: bool,
) -> Result<Batch, SourceError> {
    read_with(path, format, &CsvOptions::default(), cols, skip_bad)
}

/// [`read`] with the CSV written as `csv` says.
pub fn read_with(
    path: &Path,
    format: Format,
    csv: &CsvOptions,
    cols: &Columns,
    skip_bad: bool,
) -> Result<Batch, SourceError> {
    if format == Format::Ndjson && skip_bad {
        return read_ndjson_skipping(path, cols);
    }
    let df = read_frame_with(path, format, csv)?;
    records(&path.display().to_string(), &df, cols, skip_bad)
}

/// NDJSON with `--skip-bad-rows`: lines that are not JSON objects are
/// skipped (and reported) before polars reads the rest, which it could only
/// refuse whole. Rows are then numbered by their line in the file.
fn read_ndjson_skipping(path: &Path, cols: &Columns) -> Result<Batch, SourceError> {
    use std::io::BufRead;
    let shown = path.display().to_string();
    super::guard::check_depth(path)?;
    let file = std::io::BufReader::new(super::guard::open_file(path)?);
    let (mut good, mut lines, mut skipped) = (Vec::new(), Vec::new(), Vec::new());
    for (i, line) in file.split(b'\n').enumerate() {
        let line = line.map_err(|e| SourceError::Open {
            path: shown.clone(),
            reason: e.to_string(),
        })?;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match not_an_object(&line) {
            None => {
                good.extend_from_slice(&line);
                good.push(b'\n');
                lines.push(i + 1);
            }
            Some(reason) => skipped.push(super::BadRow {
                source: shown.clone(),
                row: i + 1,
                column: None,
                reason,
            }),
        }
    }
    let df = super::guard::no_panic(&shown, "NDJSON", || {
        JsonReader::new(std::io::Cursor::new(good))
            .with_json_format(JsonFormat::JsonLines)
            .finish()
            .map_err(|e| SourceError::Format {
                path: shown.clone(),
                kind: "NDJSON",
                reason: e.to_string().lines().next().unwrap_or_default().to_owned(),
            })
    })?;
    let mut batch = records(&shown, &df, cols, true)?;
    let line_of = |row: usize| lines.get(row - 1).copied().unwrap_or(row);
    for r in &mut batch.records {
        r.row = line_of(r.row);
    }
    for b in &mut batch.skipped {
        b.row = line_of(b.row);
    }
    batch.skipped.extend(skipped);
    batch.skipped.sort_by_key(|b| b.row);
    Ok(batch)
}

/// Turns a frame's rows into records, naming `source` in errors.
pub fn records(
    source: &str,
    df: &DataFrame,
    cols: &Columns,
    skip_bad: bool,
) -> Result<Batch, SourceError> {
    records_from(source, df, cols, skip_bad, 1)
}

/// [`records`] of a frame whose first row is row `first_row` of its
/// source (a later part of a file read in parts).
pub fn records_from(
    source: &str,
    df: &DataFrame,
    cols: &Columns,
    skip_bad: bool,
    first_row: usize,
) -> Result<Batch, SourceError> {
    let names: Vec<String> = df.columns().iter().map(|c| c.name().to_string()).collect();
    let plan = Plan::new(source, names, cols)?;
    let mut out = Batch::default();
    if df.height() == 0 {
        return Ok(out);
    }
    // Column by column, each walked by its own iterator: a cell fetched by
    // row index searches the column's chunks and dispatches on its type
    // every time, which on a million-row frame cost more than the reading.
    let mut cols: Vec<_> = df
        .columns()
        .iter()
        .map(|c| c.as_materialized_series().iter())
        .collect();
    out.records.reserve(df.height());
    let mut cells = Vec::with_capacity(cols.len());
    for i in 0..df.height() {
        let row = i + first_row;
        let mut bad = None;
        cells.clear();
        for (c, col) in cols.iter_mut().enumerate() {
            let av = col.next().ok_or_else(|| SourceError::Format {
                path: source.to_owned(),
                kind: "DataFrame",
                reason: format!("column {:?} ends before row {row}", plan.names[c]),
            })?;
            // After a bad cell the row's other cells are still stepped over,
            // so every column stays at the same row.
            if bad.is_some() {
                continue;
            }
            match convert::any_value(&av) {
                Ok(v) => cells.push(v),
                Err(reason) => {
                    bad = Some(super::BadRow {
                        source: source.to_owned(),
                        row,
                        column: Some(plan.names[c].clone()),
                        reason,
                    })
                }
            }
        }
        match bad {
            None => assemble(source, &plan, row, &mut cells, skip_bad, &mut out)?,
            Some(b) if skip_bad => out.skipped.push(b),
            Some(b) => return Err(SourceError::Row(b)),
        }
    }
    Ok(out)
}
