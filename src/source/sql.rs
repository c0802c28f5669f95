//! SQLite tables and queries through sqlx: the embedded default (the
//! project ships `data/items.db`). Servers are [`super::server`]; both build
//! their statements with [`super::select`].
//!
//! The SQLite connection is opened read-only besides the checks on the
//! statement.

use super::select::{Quote, Select};
use super::sink::Sink;
use super::{Columns, SourceError, convert};
use futures_util::TryStreamExt;
use serde_json::Value;
use sqlx::sqlite::{SqliteConnectOptions, SqliteRow};
use sqlx::{Column, Connection, Row, SqliteConnection, TypeInfo, ValueRef};
use std::str::FromStr;

fn sqlite_cell(row: &SqliteRow, i: usize, column: &str) -> Result<Value, String> {
    let raw = row.try_get_raw(i).map_err(|e| e.to_string())?;
    if raw.is_null() {
        return Ok(Value::Null);
    }
    let ty = raw.type_info().name().to_ascii_uppercase();
    let get_err = |e: sqlx::Error| format!("column {column:?}: {e}");
    Ok(match ty.as_str() {
        "INTEGER" | "INT8" | "BIGINT" => Value::from(row.try_get::<i64, _>(i).map_err(get_err)?),
        "BOOLEAN" => Value::Bool(row.try_get::<bool, _>(i).map_err(get_err)?),
        "REAL" | "FLOAT" | "DOUBLE" => convert::float(row.try_get::<f64, _>(i).map_err(get_err)?),
        "TEXT" | "DATE" | "TIME" | "DATETIME" => {
            Value::String(row.try_get::<String, _>(i).map_err(get_err)?)
        }
        "BLOB" => convert::hex(&row.try_get::<Vec<u8>, _>(i).map_err(get_err)?),
        other => return Err(format!("values of SQLite type {other} cannot be stored")),
    })
}

/// Reads every row of `select` from the SQLite database at `url` into
/// `out`.
pub async fn read_sqlite(
    url: &str,
    select: &Select,
    cols: &Columns,
    skip_bad: bool,
    out: &mut Sink<'_>,
) -> Result<(), SourceError> {
    let sql = select
        .to_sql(Quote::Double, None)
        .map_err(SourceError::Sql)?;
    let opts = SqliteConnectOptions::from_str(url)
        .map_err(|e| SourceError::Sql(format!("{url}: {e}")))?
        .read_only(true)
        .create_if_missing(false);
    // A source is never modified, not even by the log files SQLite makes
    // beside a database in WAL mode: with no log file there (nothing
    // unwritten, no writer), open it as immutable; with one, another
    // program has it open and its log holds data, so read through it.
    let log = {
        let mut p = opts.get_filename().as_os_str().to_os_string();
        p.push("-wal");
        std::path::PathBuf::from(p)
    };
    let opts = if log.exists() {
        opts
    } else {
        opts.immutable(true)
    };
    let mut conn = SqliteConnection::connect_with(&opts)
        .await
        .map_err(|e| SourceError::Sql(format!("cannot open SQLite database {url}: {e}")))?;
    let source = format!("{} in {url}", select.describe());
    let mut rows = sqlx::query(&sql).fetch(&mut conn);
    while let Some(row) = rows
        .try_next()
        .await
        .map_err(|e| SourceError::Sql(format!("{source}: {e}")))?
    {
        out.take_row(
            &source,
            cols,
            skip_bad,
            || row.columns().iter().map(|c| c.name().to_owned()).collect(),
            |i| sqlite_cell(&row, i, row.columns()[i].name()),
        )
        .await?;
    }
    Ok(())
}
