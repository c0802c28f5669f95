//! One entry point for every source: a description of where records come
//! from ([`Input`]) and [`read`], which picks the reader. The command line
//! builds an `Input` from its flags; a server builds one from a request.

use super::select::Select;
use super::server::Target;
use super::{Batch, Columns, SourceError, dict, frame, server, sql};
use std::path::PathBuf;

/// Where records come from.
#[derive(Clone)]
pub enum Input {
    /// A DataFrame file. A JSON file holding one object is read as a dict
    /// (each member a record); an array of rows as a DataFrame.
    File {
        /// The file.
        path: PathBuf,
        /// Its format.
        format: frame::Format,
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
            format: frame::Format::Json,
        } => {
            if !path.exists() {
                return Err(SourceError::Open {
                    path: path.display().to_string(),
                    reason: "no such file".into(),
                });
            }
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
        Input::File { path, format } => frame::read(path, *format, cols, skip_bad),
        Input::Sqlite { url, select } => sql::read_sqlite(url, select, cols, skip_bad).await,
        Input::Server { target, select } => {
            server::read(target, select, cols, skip_bad, progress).await
        }
    }
}
