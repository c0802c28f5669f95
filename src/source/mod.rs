//! Where records come from: DataFrame files through polars (CSV, Parquet,
//! Arrow IPC, JSON, NDJSON), spreadsheets through calamine, SQL tables
//! through sqlx, and JSON objects (a dict). Each
//! yields `(key, value)` records with the row each came from, so an error
//! can name the file or table, the row and the column.
//!
//! Nothing here touches the ring; the loader feeds it.

pub mod convert;
pub mod dict;
pub mod frame;
pub mod guard;
pub mod input;
pub mod parts;
pub mod prepare;
pub mod select;
pub mod server;
pub mod sheet;
pub mod sink;
pub mod sql;

use serde_json::Value;
use std::fmt;
use std::sync::Arc;

/// One record to store.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// The key, as text: shared, since the ring's copies of the key (and
    /// its journal) hold this same text.
    pub key: Arc<str>,
    /// The value, typed as the source typed it.
    pub value: Value,
    /// The 1-based data row it came from (headers not counted).
    pub row: usize,
}

/// A row the source could not turn into a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRow {
    /// Where: a file path or `table NAME`.
    pub source: String,
    /// 1-based data row (in a spreadsheet, the row number it shows).
    pub row: usize,
    /// The column at fault, when one is.
    pub column: Option<String>,
    /// What is wrong.
    pub reason: String,
}

impl fmt::Display for BadRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}, row {}", self.source, self.row)?;
        if let Some(c) = &self.column {
            write!(f, ", column {c:?}")?;
        }
        write!(f, ": {}", self.reason)
    }
}

/// Why a source could not be read at all. Nothing has been stored when one
/// of these is returned.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The file does not exist or cannot be opened.
    #[error("{path}: {reason}")]
    Open {
        /// The file.
        path: String,
        /// The OS's reason.
        reason: String,
    },
    /// The file is not what its source kind says.
    #[error("{path}: not a readable {kind} file: {reason}")]
    Format {
        /// The file.
        path: String,
        /// The kind asked for.
        kind: &'static str,
        /// The parser's words.
        reason: String,
    },
    /// The frame's columns do not fit the options.
    #[error("{origin}: {reason}")]
    Columns {
        /// The file or table.
        origin: String,
        /// What is wrong.
        reason: String,
    },
    /// A row is bad and `--skip-bad-rows` was not given.
    #[error("{0}")]
    Row(BadRow),
    /// The database could not be reached or queried.
    #[error("{0}")]
    Sql(String),
}

/// Which columns hold the key and the value.
#[derive(Debug, Clone, Default)]
pub struct Columns {
    /// The key column; default: the first of exactly two columns.
    pub key: Option<String>,
    /// The value column; default: the second of exactly two columns, or the
    /// rest of the row as a JSON object when a key column is named.
    pub value: Option<String>,
}

/// Records read, and rows skipped when skipping was asked for.
#[derive(Debug, Default)]
pub struct Batch {
    /// Good records in source order.
    pub records: Vec<Record>,
    /// Rows that were skipped, each with its reason.
    pub skipped: Vec<BadRow>,
}

/// How a table's columns map to key and value: indices into the columns.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub key: usize,
    /// A single value column, or None for "all others as an object".
    pub value: Option<usize>,
    pub names: Vec<String>,
}

impl Plan {
    /// Resolves the options against the column names of `source`.
    pub(crate) fn new(
        source: &str,
        names: Vec<String>,
        cols: &Columns,
    ) -> Result<Plan, SourceError> {
        let find = |want: &str| {
            names
                .iter()
                .position(|n| n == want)
                .ok_or_else(|| SourceError::Columns {
                    origin: source.to_owned(),
                    reason: format!(
                        "column {want:?} not found; the columns are {}",
                        quoted(&names)
                    ),
                })
        };
        let key = match &cols.key {
            Some(k) => find(k)?,
            None if names.len() == 2 => 0,
            None if names.len() < 2 => {
                return Err(SourceError::Columns {
                    origin: source.to_owned(),
                    reason: format!(
                        "needs two columns (key, value) but has {}: {}",
                        names.len(),
                        quoted(&names)
                    ),
                });
            }
            None => {
                return Err(SourceError::Columns {
                    origin: source.to_owned(),
                    reason: format!(
                        "has {} columns ({}); say which is the key with --key-col (and the value with --value-col, or the rest of the row becomes the value)",
                        names.len(),
                        quoted(&names)
                    ),
                });
            }
        };
        let value = match &cols.value {
            Some(v) => Some(find(v)?),
            None if cols.key.is_none() => Some(1),
            None => None,
        };
        if value == Some(key) {
            return Err(SourceError::Columns {
                origin: source.to_owned(),
                reason: format!("the key and value columns are both {:?}", names[key]),
            });
        }
        Ok(Plan { key, value, names })
    }
}

fn quoted(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("{n:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Checks a key and turns the source's cell into key text: null and empty
/// keys are refused.
pub(crate) fn key_text(v: &Value) -> Result<Arc<str>, String> {
    match v {
        Value::Null => Err("the key is null".into()),
        Value::String(s) if s.is_empty() => Err("the key is empty".into()),
        Value::String(s) => Ok(Arc::from(s.as_str())),
        Value::Number(n) => Ok(Arc::from(n.to_string())),
        Value::Bool(b) => Ok(Arc::from(b.to_string())),
        other => Err(format!(
            "the key must be text or a number, not {}",
            convert::kind(other)
        )),
    }
}

/// Turns a row of cells into a record, applying the plan, collecting or
/// failing on a bad row. The cells are moved out (left empty), so the caller
/// can reuse the vector for the next row.
pub(crate) fn assemble(
    source: &str,
    plan: &Plan,
    row: usize,
    cells: &mut Vec<Value>,
    skip_bad: bool,
    out: &mut Batch,
) -> Result<(), SourceError> {
    let bad = |column: Option<&str>, reason: String| BadRow {
        source: source.to_owned(),
        row,
        column: column.map(str::to_owned),
        reason,
    };
    let result = match key_text(&cells[plan.key]) {
        Err(reason) => Err(bad(Some(&plan.names[plan.key]), reason)),
        Ok(key) => {
            let value = match plan.value {
                Some(v) => std::mem::take(&mut cells[v]),
                None => Value::Object(
                    cells
                        .drain(..)
                        .enumerate()
                        .filter(|(i, _)| *i != plan.key)
                        .map(|(i, c)| (plan.names[i].clone(), c))
                        .collect(),
                ),
            };
            Ok(Record { key, value, row })
        }
    };
    match result {
        Ok(r) => out.records.push(r),
        Err(b) if skip_bad => out.skipped.push(b),
        Err(b) => return Err(SourceError::Row(b)),
    }
    Ok(())
}
