//! SQL tables and queries through sqlx. SQLite is embedded (the default is
//! `data/items.db`, shipped with the project); server databases come later.
//!
//! A table name is checked as an identifier and quoted, so it can never
//! inject SQL; a query must be a single read-only SELECT (or WITH), and the
//! SQLite connection is opened read-only besides.

use super::{Batch, Columns, Plan, SourceError, assemble, convert};
use futures_util::TryStreamExt;
use serde_json::Value;
use sqlx::sqlite::{SqliteConnectOptions, SqliteRow};
use sqlx::{Column, Connection, Row, SqliteConnection, TypeInfo, ValueRef};
use std::str::FromStr;

/// What to read.
#[derive(Debug, Clone)]
pub enum Select {
    /// Every row of a table, `name` or `schema.name`.
    Table(String),
    /// A user's read-only query.
    Query(String),
}

/// Checks `name` or `schema.name` and quotes each part for SQL (double
/// quotes, as SQLite and PostgreSQL want).
pub fn quote_table(name: &str) -> Result<String, String> {
    quote_table_with(name, '"')
}

/// As [`quote_table`], with the server's identifier quote (MySQL: backtick).
/// The identifier check leaves no character that could close the quote.
pub fn quote_table_with(name: &str, q: char) -> Result<String, String> {
    let parts: Vec<&str> = name.split('.').collect();
    if parts.is_empty() || parts.len() > 2 {
        return Err(format!("table {name:?} must be NAME or SCHEMA.NAME"));
    }
    let mut out = Vec::new();
    for p in parts {
        let ok = !p.is_empty()
            && p.chars()
                .next()
                .is_some_and(|c| c.is_alphabetic() || c == '_')
            && p.chars()
                .all(|c| c.is_alphanumeric() || c == '_' || c == '$');
        if !ok {
            return Err(format!(
                "table name {name:?} is not a plain identifier (letters, digits, _ and $, not starting with a digit)"
            ));
        }
        out.push(format!("{q}{p}{q}"));
    }
    Ok(out.join("."))
}

/// Refuses anything but one read-only SELECT or WITH statement.
pub fn check_query(q: &str) -> Result<(), String> {
    let trimmed = q.trim().trim_end_matches(';').trim();
    let first = trimmed
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_ascii_uppercase();
    if first != "SELECT" && first != "WITH" {
        return Err(
            "--query must be a single read-only SELECT (or WITH ... SELECT) statement".into(),
        );
    }
    if trimmed.contains(';') {
        return Err("--query must be a single statement (it contains ';')".into());
    }
    Ok(())
}

impl Select {
    fn sql(&self) -> Result<String, String> {
        self.sql_quoted('"')
    }

    /// The statement for a server of this kind.
    pub fn sql_for(&self, kind: super::server::Kind) -> Result<String, String> {
        self.sql_quoted(match kind {
            super::server::Kind::Postgres => '"',
            super::server::Kind::Mysql => '`',
        })
    }

    fn sql_quoted(&self, q: char) -> Result<String, String> {
        match self {
            Select::Table(t) => Ok(format!("SELECT * FROM {}", quote_table_with(t, q)?)),
            Select::Query(q) => {
                check_query(q)?;
                Ok(q.trim().trim_end_matches(';').to_owned())
            }
        }
    }

    /// "table NAME" or "query", for messages.
    pub fn describe(&self) -> String {
        match self {
            Select::Table(t) => format!("table {t}"),
            Select::Query(_) => "query".into(),
        }
    }
}

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

/// Reads every row of `select` from the SQLite database at `url`.
pub async fn read_sqlite(
    url: &str,
    select: &Select,
    cols: &Columns,
    skip_bad: bool,
) -> Result<Batch, SourceError> {
    let sql = select.sql().map_err(SourceError::Sql)?;
    let opts = SqliteConnectOptions::from_str(url)
        .map_err(|e| SourceError::Sql(format!("{url}: {e}")))?
        .read_only(true)
        .create_if_missing(false);
    let mut conn = SqliteConnection::connect_with(&opts)
        .await
        .map_err(|e| SourceError::Sql(format!("cannot open SQLite database {url}: {e}")))?;
    let source = format!("{} in {url}", select.describe());
    let mut rows = sqlx::query(&sql).fetch(&mut conn);
    let mut out = Batch::default();
    let mut plan: Option<Plan> = None;
    let mut n = 0usize;
    while let Some(row) = rows
        .try_next()
        .await
        .map_err(|e| SourceError::Sql(format!("{source}: {e}")))?
    {
        n += 1;
        let plan = match &plan {
            Some(p) => p,
            None => {
                let names = row.columns().iter().map(|c| c.name().to_owned()).collect();
                plan.insert(Plan::new(&source, names, cols)?)
            }
        };
        let mut cells = Vec::with_capacity(plan.names.len());
        let mut bad = None;
        for i in 0..plan.names.len() {
            match sqlite_cell(&row, i, &plan.names[i]) {
                Ok(v) => cells.push(v),
                Err(reason) => {
                    bad = Some(super::BadRow {
                        source: source.clone(),
                        row: n,
                        column: Some(plan.names[i].clone()),
                        reason,
                    });
                    break;
                }
            }
        }
        match bad {
            Some(b) if skip_bad => out.skipped.push(b),
            Some(b) => return Err(SourceError::Row(b)),
            None => assemble(&source, plan, n, &mut cells, skip_bad, &mut out)?,
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_cannot_inject() {
        assert_eq!(quote_table("items").unwrap(), "\"items\"");
        assert_eq!(quote_table("public.items").unwrap(), "\"public\".\"items\"");
        for bad in [
            "items; DROP TABLE x",
            "a\"b",
            "1abc",
            "",
            "a.b.c",
            "it ems",
            "x--",
        ] {
            assert!(quote_table(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn only_single_selects_pass() {
        assert!(check_query("SELECT k, v FROM items").is_ok());
        assert!(check_query("with x as (select 1) select * from x;").is_ok());
        for bad in [
            "DELETE FROM items",
            "SELECT 1; DROP TABLE items",
            "PRAGMA writable_schema=1",
            "",
        ] {
            assert!(check_query(bad).is_err(), "{bad}");
        }
    }
}
