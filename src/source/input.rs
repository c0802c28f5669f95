//! One entry point for every source: a description of where records come
//! from ([`Input`]) and [`read`], which picks the reader. The command line
//! builds an `Input` from its flags; a server builds one from a request.

use super::frame::CsvOptions;
use super::prepare::{Compression, TextEncoding, prepare};
use super::select::Select;
use super::server::Target;
use super::sink::{Sink, Streamed};
use super::{Batch, Columns, SourceError, dict, frame, guard, server, sql};
use std::path::{Path, PathBuf};
use tokio::sync::mpsc;

/// Where records come from.
#[derive(Clone)]
pub enum Input {
    /// A DataFrame file. A JSON file holding one object is read as a dict
    /// (each member a record); an array of rows as a DataFrame.
    File {
        /// The file; `-` is standard input.
        path: PathBuf,
        /// Its format.
        format: frame::Format,
        /// How a CSV file is written (ignored for other formats).
        csv: CsvOptions,
        /// How the file is compressed.
        compression: Compression,
        /// The text encoding (CSV, JSON, NDJSON).
        encoding: TextEncoding,
        /// A spreadsheet's sheet: its name, or its position from 0 (default:
        /// the first).
        sheet: Option<String>,
    },
    /// A table or query in an SQLite database (`sqlite://FILE`).
    Sqlite {
        /// The database URL.
        url: String,
        /// What to read.
        select: Select,
    },
    /// A table or query on a PostgreSQL or MySQL/MariaDB server.
    Server {
        /// Where to connect.
        target: Target,
        /// What to read.
        select: Select,
    },
}

/// Reads every record of `input`: the key and value from the columns `cols`
/// names, bad rows skipped (and listed in the batch) when `skip_bad`, else
/// the first one is the error. `progress` hears the rows read so far from
/// sources that stream (servers).
pub async fn read(
    input: &Input,
    cols: &Columns,
    skip_bad: bool,
    progress: impl FnMut(usize),
) -> Result<Batch, SourceError> {
    match input {
        Input::File {
            path,
            format,
            csv,
            compression,
            encoding,
            sheet,
        } => {
            let file = prepare_file(path, *format, *compression, *encoding)?;
            read_file(&file.path, *format, csv, sheet.as_deref(), cols, skip_bad)
                .map(|b| file.rename_batch(b))
                .map_err(|e| file.rename_error(e))
        }
        Input::Sqlite { .. } | Input::Server { .. } => {
            Sink::collect(progress, async |out| {
                read_rows(input, cols, skip_bad, out).await
            })
            .await
        }
    }
}

/// Reads every row of a database `input` into `out`; a file holds none
/// (its records come from [`read_file`] or its parts).
async fn read_rows(
    input: &Input,
    cols: &Columns,
    skip_bad: bool,
    out: &mut Sink<'_>,
) -> Result<(), SourceError> {
    match input {
        Input::Sqlite { url, select } => sql::read_sqlite(url, select, cols, skip_bad, out).await,
        Input::Server { target, select } => server::read(target, select, cols, skip_bad, out).await,
        Input::File { .. } => Ok(()),
    }
}

/// Reads a file ready to read. A JSON file holding one object is a dict.
fn read_file(
    path: &Path,
    format: frame::Format,
    csv: &CsvOptions,
    sheet: Option<&str>,
    cols: &Columns,
    skip_bad: bool,
) -> Result<Batch, SourceError> {
    if format == frame::Format::Sheet {
        return super::sheet::read(path, sheet, csv.header, cols, skip_bad);
    }
    if format != frame::Format::Json {
        return frame::read_with(path, format, csv, cols, skip_bad);
    }
    guard::open_file(path)?;
    if !dict::looks_like_object(path) {
        return frame::read(path, frame::Format::Json, cols, skip_bad);
    }
    if cols.key.is_some() || cols.value.is_some() {
        return Err(SourceError::Columns {
            origin: path.display().to_string(),
            reason: "a JSON object's members are the records; --key-col and --value-col apply to arrays of rows".into(),
        });
    }
    dict::read(path, skip_bad)
}

/// A source read part by part: a CSV file in parts of about a given size,
/// any other source whole, as one part.
pub enum Parts {
    /// A CSV file, and the prepared copy it is read from (kept until the
    /// last part).
    Csv(Box<(super::parts::CsvParts, super::prepare::Prepared)>),
    /// A DataFrame read whole (its columns are compact; the records and
    /// the ring's copies of them are what a large file makes large), turned
    /// into records a slice of rows at a time.
    Frame(Box<FrameParts>),
    /// The whole source, not yet taken.
    Whole(Option<Batch>),
    /// A database's rows, read a part ahead of the load.
    Stream(Box<Stream>),
}

/// A database's rows as they stream in: the reader hands parts on
/// ([`Sink::parts`]) and runs while the load waits for the next one.
pub struct Stream {
    from: mpsc::Receiver<Streamed>,
    /// None once it has read its last row.
    reader: Option<std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>>,
    /// True once the last part was taken.
    ended: bool,
}

impl Stream {
    async fn next(&mut self) -> Result<Option<Batch>, SourceError> {
        if self.ended {
            return Ok(None);
        }
        let Stream { from, reader, .. } = self;
        let next = loop {
            let reading = async {
                match reader.as_mut() {
                    Some(r) => r.await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                next = from.recv() => break next,
                () = reading => *reader = None,
            }
        };
        // An error ends the stream too; so does a reader gone without
        // saying its part was the last.
        self.ended = !matches!(next, Some(Ok((_, false))));
        match next {
            Some(Ok((batch, _))) => Ok(Some(batch)),
            Some(Err(e)) => Err(e),
            None => Ok(None),
        }
    }
}

/// A DataFrame handed out in slices of rows.
pub struct FrameParts {
    df: polars::prelude::DataFrame,
    /// Rows per part.
    rows: usize,
    /// Rows handed out so far.
    done: usize,
    /// The file it came from (a prepared copy's name is fixed in errors).
    file: super::prepare::Prepared,
}

impl Parts {
    /// True when every part has been taken.
    pub fn finished(&self) -> bool {
        match self {
            Parts::Whole(b) => b.is_none(),
            Parts::Stream(s) => s.ended,
            Parts::Csv(c) => c.0.finished(),
            Parts::Frame(f) => f.done >= f.df.height(),
        }
    }

    /// The next part (None after the last). Errors name what the user gave.
    pub async fn next(
        &mut self,
        cols: &Columns,
        skip_bad: bool,
    ) -> Result<Option<Batch>, SourceError> {
        match self {
            Parts::Whole(b) => Ok(b.take()),
            Parts::Stream(s) => s.next().await,
            Parts::Frame(f) => {
                let start = f.done;
                if start >= f.df.height() && start > 0 {
                    return Ok(None);
                }
                let slice = f.df.slice(start as i64, f.rows);
                f.done += f.rows;
                frame::records_from(&f.file.shown, &slice, cols, skip_bad, start + 1)
                    .map(|b| Some(f.file.rename_batch(b)))
                    .map_err(|e| f.file.rename_error(e))
            }
            Parts::Csv(c) => {
                let (parts, file) = &mut **c;
                parts
                    .next(cols, skip_bad)
                    .map(|b| b.map(|b| file.rename_batch(b)))
                    .map_err(|e| file.rename_error(e))
            }
        }
    }
}

/// Opens `input` to be read in parts: a CSV file in parts of about
/// `part_bytes` of text, so that a file larger than memory can be loaded; a
/// database's rows as they stream in, in parts of about `part_bytes` of
/// text (read while the load waits for a part, one part ahead); a
/// Parquet, Arrow IPC or NDJSON file read whole as a DataFrame and turned
/// into records in slices of about `part_bytes` of columns; every other
/// source is read whole here and is one part. `progress` as for [`read`].
pub async fn read_parts(
    input: &Input,
    cols: &Columns,
    skip_bad: bool,
    part_bytes: usize,
    progress: impl FnMut(usize) + 'static,
) -> Result<Parts, SourceError> {
    use frame::Format::{Csv, Ipc, Ndjson, Parquet};
    let (path, format, csv, compression, encoding) = match input {
        Input::File {
            path,
            format,
            csv,
            compression,
            encoding,
            ..
        } => (path, format, csv, compression, encoding),
        Input::Sqlite { .. } | Input::Server { .. } => {
            let (input, cols) = (input.clone(), cols.clone());
            return Ok(stream(part_bytes, progress, async move |out| {
                read_rows(&input, &cols, skip_bad, out).await
            }));
        }
    };
    match format {
        Csv => {
            let file = prepare_file(path, *format, *compression, *encoding)?;
            let parts = super::parts::CsvParts::open(&file.path, &file.shown, csv, part_bytes)
                .map_err(|e| file.rename_error(e))?;
            Ok(Parts::Csv(Box::new((parts, file))))
        }
        // NDJSON with --skip-bad-rows drops bad lines before polars reads
        // the rest, and is read whole.
        Parquet | Ipc | Ndjson if !(skip_bad && *format == Ndjson) => {
            let file = prepare_file(path, *format, *compression, *encoding)?;
            let df = frame::read_frame_with(&file.path, *format, csv)
                .map_err(|e| file.rename_error(e))?;
            let per_row = (df.estimated_size() / df.height().max(1)).max(1);
            Ok(Parts::Frame(Box::new(FrameParts {
                rows: (part_bytes / per_row).max(1),
                df,
                done: 0,
                file,
            })))
        }
        _ => Ok(Parts::Whole(Some(
            read(input, cols, skip_bad, progress).await?,
        ))),
    }
}

/// The rows `read` puts into a sink (a database's), in parts of about
/// `part_bytes`, read while the load waits for them.
fn stream(
    part_bytes: usize,
    progress: impl FnMut(usize) + 'static,
    read: impl AsyncFnOnce(&mut Sink<'static>) -> Result<(), SourceError> + 'static,
) -> Parts {
    // One part waiting while the next is read: the reader stays at most a
    // part or two ahead of the load.
    let (to, from) = mpsc::channel(1);
    let reader = Box::pin(async move {
        let mut out = Sink::parts(part_bytes, to.clone(), progress);
        match read(&mut out).await {
            Ok(()) => {
                out.finish().await;
            }
            // Nobody receiving: the load stopped, nothing to tell.
            Err(e) => drop(to.send(Err(e)).await),
        }
    });
    Parts::Stream(Box::new(Stream {
        from,
        reader: Some(reader),
        ended: false,
    }))
}

/// The file at `path` ready for the readers of `format`: decompressed, and
/// transcoded unless the format is binary (no text encoding applies).
fn prepare_file(
    path: &Path,
    format: frame::Format,
    compression: Compression,
    encoding: TextEncoding,
) -> Result<super::prepare::Prepared, SourceError> {
    let encoding = if format.is_binary() {
        TextEncoding::Utf8
    } else {
        encoding
    };
    prepare(path, compression, encoding)
}
