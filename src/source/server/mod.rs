//! SQL servers: PostgreSQL and MySQL/MariaDB through sqlx (here), SQL
//! Server through tiberius ([`mssql`]).
//!
//! Rows are fetched with the text protocol (`raw_sql`), so the server renders
//! every value as text and NUMERIC/DECIMAL columns keep every digit; each
//! column's type then decides the JSON value. Reads run inside a read-only
//! transaction and stream: rows become records one at a time.
//!
//! The password never appears in an error or a log line: connection details
//! are described by kind, host, port, user and database only.

mod mssql;
mod target;

pub use target::{Encrypt, Kind, Target, Tls, redact};

use super::select::{Select, TableName};
use super::sink::Sink;
use super::{Columns, SourceError, convert};
use futures_util::TryStreamExt;
use serde_json::Value;
use sqlx::mysql::{MySqlConnectOptions, MySqlRow};
use sqlx::postgres::{PgConnectOptions, PgRow};
use sqlx::{Column, ConnectOptions, Connection, Row, TypeInfo, ValueRef};
use std::time::Duration;

/// A connection that could not be opened, in one line (every driver).
pub(super) fn refused(target: &Target, e: &std::io::Error) -> SourceError {
    let t = target.describe();
    SourceError::Sql(match e.kind() {
        std::io::ErrorKind::ConnectionRefused => {
            format!("cannot connect to {t}: connection refused (is the server running?)")
        }
        _ => format!("cannot connect to {t}: {e}"),
    })
}

/// One clear line for a failure to connect or read; the server's own words
/// are kept only where they cannot contain the password.
fn explain(target: &Target, what: &str, e: &sqlx::Error) -> SourceError {
    let t = target.describe();
    let msg = match e {
        sqlx::Error::Io(io) => return refused(target, io),
        sqlx::Error::Tls(_) => format!("cannot connect to {t}: TLS failed"),
        sqlx::Error::PoolTimedOut => format!("cannot connect to {t}: timed out"),
        sqlx::Error::Database(db) => {
            let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
            match (target.kind, code.as_str()) {
                (Kind::Postgres, "28P01") | (Kind::Postgres, "28000") | (Kind::Mysql, "28000") => {
                    format!("cannot log in to {t}: wrong user name or password")
                }
                (Kind::Postgres, "3D000") | (Kind::Mysql, "42000")
                    if db.message().contains("database") || code == "3D000" =>
                {
                    format!("{t}: the database does not exist")
                }
                (Kind::Postgres, "42P01") | (Kind::Mysql, "42S02") => {
                    format!("{t}: {what}: no such table")
                }
                _ => format!("{t}: {what}: {}", db.message()),
            }
        }
        other => format!("{t}: {what}: {other}"),
    };
    SourceError::Sql(msg)
}

/// How long to wait for a server to accept a connection and greet us:
/// `DHT_DB_CONNECT_TIMEOUT` seconds, default 15.
fn connect_timeout() -> Duration {
    seconds_from_env("DHT_DB_CONNECT_TIMEOUT", 15.0)
}

/// A duration in seconds from the environment variable `var` (fractions
/// allowed, at least 0.1 s, at most a day), `default` when unset or not a
/// number.
pub(super) fn seconds_from_env(var: &str, default: f64) -> Duration {
    let secs = std::env::var(var)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default);
    Duration::from_secs_f64(f64::clamp(secs, 0.1, 86_400.0))
}

/// A cell of a text-protocol row as JSON, by the column's type name.
fn cell(
    type_name: &str,
    text: Option<String>,
    bytes: impl FnOnce() -> Result<Vec<u8>, String>,
) -> Result<Value, String> {
    let t = type_name.to_ascii_uppercase();
    let text = match (text, t.as_str()) {
        (_, "BYTEA" | "BLOB" | "TINYBLOB" | "MEDIUMBLOB" | "LONGBLOB" | "BINARY" | "VARBINARY") => {
            let raw = bytes()?;
            // PostgreSQL's text form of bytea is \x followed by hex.
            if t == "BYTEA" && raw.starts_with(b"\\x") {
                return Ok(Value::String(
                    String::from_utf8_lossy(&raw[2..]).into_owned(),
                ));
            }
            return Ok(convert::hex(&raw));
        }
        (Some(s), _) => s,
        (None, _) => {
            return Err(format!(
                "values of type {type_name} could not be read as text"
            ));
        }
    };
    Ok(match t.as_str() {
        "BOOL" | "BOOLEAN" => Value::Bool(matches!(text.as_str(), "t" | "true" | "1")),
        "INT2" | "INT4" | "INT8" | "SMALLINT" | "INT" | "INTEGER" | "BIGINT" | "MEDIUMINT"
        | "TINYINT" | "OID" | "YEAR" | "TINYINT UNSIGNED" | "SMALLINT UNSIGNED"
        | "MEDIUMINT UNSIGNED" | "INT UNSIGNED" | "BIGINT UNSIGNED" => convert::number(&text),
        "NUMERIC" | "DECIMAL" | "FLOAT4" | "FLOAT8" | "FLOAT" | "DOUBLE" | "REAL" => {
            convert::number(&text)
        }
        "TEXT" | "VARCHAR" | "CHAR" | "BPCHAR" | "NAME" | "CITEXT" | "TINYTEXT" | "MEDIUMTEXT"
        | "LONGTEXT" | "ENUM" | "SET" | "UUID" | "DATE" | "TIME" | "TIMETZ" | "INTERVAL" => {
            Value::String(text)
        }
        "TIMESTAMP" | "TIMESTAMPTZ" | "DATETIME" => Value::String(text.replacen(' ', "T", 1)),
        "JSON" | "JSONB" => {
            serde_json::from_str(&text).map_err(|e| format!("invalid JSON from the server: {e}"))?
        }
        "BIT" | "VARBIT" => Value::String(text),
        _ => {
            return Err(format!(
                "values of type {type_name} cannot be stored (no JSON mapping)"
            ));
        }
    })
}

fn pg_cell(row: &PgRow, i: usize) -> Result<Value, String> {
    let raw = row.try_get_raw(i).map_err(|e| e.to_string())?;
    if raw.is_null() {
        return Ok(Value::Null);
    }
    let ty = raw.type_info().name().to_owned();
    let text = row.try_get_unchecked::<String, _>(i).ok();
    cell(&ty, text, || {
        row.try_get_unchecked::<String, _>(i)
            .map(String::into_bytes)
            .map_err(|e| e.to_string())
    })
}

/// What the table's own metadata says a MySQL column holds. The wire
/// protocol flags every column with a binary collation (`utf8mb4_bin`) as
/// binary, and MariaDB sends JSON columns as LONGTEXT, so for tables we ask
/// information_schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MyColumn {
    /// A character type: text, whatever its collation.
    Text,
    /// JSON (MySQL's type, or MariaDB's LONGTEXT with a json_valid check).
    Json,
    /// Bytes.
    Binary,
}

async fn mysql_columns(
    conn: &mut sqlx::MySqlConnection,
    table: &TableName,
) -> Result<Vec<(String, MyColumn)>, sqlx::Error> {
    let (schema, name) = (table.schema.as_deref(), table.name.as_str());
    let cols: Vec<(String, String, Option<String>)> = sqlx::query_as(
        "SELECT CAST(column_name AS CHAR), CAST(data_type AS CHAR), CAST(character_set_name AS CHAR) FROM information_schema.columns
         WHERE table_schema = COALESCE(?, DATABASE()) AND table_name = ? ORDER BY ordinal_position",
    )
    .bind(schema)
    .bind(name)
    .fetch_all(&mut *conn)
    .await?;
    let checks: Vec<(String,)> = sqlx::query_as(
        "SELECT CAST(check_clause AS CHAR) FROM information_schema.check_constraints
         WHERE constraint_schema = COALESCE(?, DATABASE()) AND table_name = ?",
    )
    .bind(schema)
    .bind(name)
    .fetch_all(&mut *conn)
    .await
    .unwrap_or_default();
    Ok(cols
        .into_iter()
        .filter_map(|(col, ty, charset)| {
            let json_check = checks.iter().any(|(c,)| {
                c.to_ascii_lowercase()
                    .contains(&format!("json_valid(`{}`)", col.to_ascii_lowercase()))
            });
            let binary = [
                "binary",
                "varbinary",
                "blob",
                "tinyblob",
                "mediumblob",
                "longblob",
            ]
            .iter()
            .any(|b| ty.eq_ignore_ascii_case(b));
            let kind = if ty.eq_ignore_ascii_case("json") || json_check {
                Some(MyColumn::Json)
            } else if charset.is_some() {
                Some(MyColumn::Text)
            } else if binary {
                Some(MyColumn::Binary)
            } else {
                None
            };
            kind.map(|k| (col, k))
        })
        .collect())
}

fn mysql_cell(row: &MySqlRow, i: usize, meta: Option<MyColumn>) -> Result<Value, String> {
    let raw = row.try_get_raw(i).map_err(|e| e.to_string())?;
    if raw.is_null() {
        return Ok(Value::Null);
    }
    let ty = raw.type_info().name().to_owned();
    let binary_flagged = matches!(
        ty.as_str(),
        "BINARY" | "VARBINARY" | "BLOB" | "TINYBLOB" | "MEDIUMBLOB" | "LONGBLOB"
    );
    let bytes = || {
        row.try_get_unchecked::<Vec<u8>, _>(i)
            .map_err(|e| e.to_string())
    };
    match (meta, binary_flagged) {
        (Some(MyColumn::Json), _) => {
            let b = bytes()?;
            serde_json::from_slice(&b).map_err(|e| format!("invalid JSON from the server: {e}"))
        }
        (Some(MyColumn::Text), true) => Ok(Value::String(
            String::from_utf8(bytes()?).map_err(|e| e.to_string())?,
        )),
        (Some(MyColumn::Binary), _) => Ok(convert::hex(&bytes()?)),
        // A query: no metadata; binary-flagged values that are UTF-8 are
        // taken as text (a binary collation), others as bytes.
        (None, true) => {
            let b = bytes()?;
            Ok(match String::from_utf8(b) {
                Ok(s) => Value::String(s),
                Err(e) => convert::hex(e.as_bytes()),
            })
        }
        _ => {
            let text = row.try_get_unchecked::<String, _>(i).ok();
            cell(&ty, text, bytes)
        }
    }
}

/// Waits for a sqlx connection, at most `DHT_DB_CONNECT_TIMEOUT` seconds.
async fn connect<C>(
    target: &Target,
    what: &str,
    attempt: impl std::future::Future<Output = Result<C, sqlx::Error>>,
) -> Result<C, SourceError> {
    within_connect_timeout(target, async {
        attempt.await.map_err(|e| explain(target, what, &e))
    })
    .await
}

/// Runs a connection `attempt` of any driver for at most
/// `DHT_DB_CONNECT_TIMEOUT` seconds.
pub(super) async fn within_connect_timeout<C>(
    target: &Target,
    attempt: impl std::future::Future<Output = Result<C, SourceError>>,
) -> Result<C, SourceError> {
    tokio::time::timeout(connect_timeout(), attempt)
        .await
        .map_err(|_| {
            SourceError::Sql(format!(
                "cannot connect to {}: timed out",
                target.describe()
            ))
        })?
}

/// Connection options of either driver from a target; the two option types
/// share these method names but no trait.
macro_rules! options {
    ($ty:ty, $target:expr) => {{
        let t: &Target = $target;
        let mut o = <$ty>::new()
            .host(&t.host)
            .port(t.port)
            .username(&t.user)
            .database(&t.database)
            .disable_statement_logging();
        if let Some(p) = t.password() {
            o = o.password(p);
        }
        o
    }};
}

/// Streams the rows of `$sql` on `$conn` into the sink `$out`, converting cells with
/// `$cell` (a macro: the connection types of the two drivers share no trait
/// that makes a generic function short).
macro_rules! stream_rows {
    ($conn:expr, $sql:expr, $cell:expr, $target:expr, $what:expr, $origin:expr, $cols:expr, $skip_bad:expr, $out:expr) => {{
        let mut rows = sqlx::raw_sql($sql).fetch(&mut $conn);
        while let Some(row) = rows
            .try_next()
            .await
            .map_err(|e| explain($target, $what, &e))?
        {
            $out.take_row(
                $origin,
                $cols,
                $skip_bad,
                || row.columns().iter().map(|c| c.name().to_owned()).collect(),
                |i| $cell(&row, i),
            )
            .await?;
        }
    }};
}

/// Reads every row of `select` from the server into `out`, streaming,
/// inside a read-only transaction.
pub async fn read(
    target: &Target,
    select: &Select,
    cols: &Columns,
    skip_bad: bool,
    out: &mut Sink<'_>,
) -> Result<(), SourceError> {
    let sql = select
        .to_sql(target.kind.quote(), target.kind.default_schema())
        .map_err(SourceError::Sql)?;
    let what = select.describe();
    let origin = format!("{what} in {}", target.describe());
    let failed = |e: sqlx::Error| explain(target, &what, &e);
    match target.kind {
        Kind::Postgres => {
            let o = options!(PgConnectOptions, target);
            let mut conn = connect(target, &what, sqlx::PgConnection::connect_with(&o)).await?;
            sqlx::raw_sql("BEGIN READ ONLY")
                .execute(&mut conn)
                .await
                .map_err(failed)?;
            stream_rows!(
                conn, &sql, &pg_cell, target, &what, &origin, cols, skip_bad, out
            );
            let _ = sqlx::raw_sql("ROLLBACK").execute(&mut conn).await;
        }
        Kind::Mysql => {
            let o = options!(MySqlConnectOptions, target);
            let mut conn = connect(target, &what, sqlx::MySqlConnection::connect_with(&o)).await?;
            sqlx::raw_sql("START TRANSACTION READ ONLY")
                .execute(&mut conn)
                .await
                .map_err(failed)?;
            let meta: Vec<(String, MyColumn)> = match select {
                Select::Table(t) => {
                    let name = TableName::parse(t).map_err(SourceError::Sql)?;
                    mysql_columns(&mut conn, &name).await.map_err(failed)?
                }
                Select::Query(_) => Vec::new(),
            };
            let cell = |row: &MySqlRow, i: usize| {
                let name = row.columns()[i].name();
                mysql_cell(row, i, meta.iter().find(|m| m.0 == name).map(|m| m.1))
            };
            stream_rows!(
                conn, &sql, &cell, target, &what, &origin, cols, skip_bad, out
            );
            let _ = sqlx::raw_sql("ROLLBACK").execute(&mut conn).await;
        }
        Kind::Mssql => {
            return mssql::read(target, &sql, &what, cols, skip_bad, out).await;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
