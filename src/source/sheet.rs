//! Spreadsheets through calamine: one sheet of an xlsx, xlsm, xlsb, xls or
//! ods workbook. The sheet's first used row names the columns (or, without
//! a header, they are `column_1`, `column_2`, ...), each later row is a
//! record, and errors name the row as the spreadsheet numbers it.
//!
//! Cells map as the other sources map theirs: numbers as stored (a whole
//! number as an integer, others with the shortest digits that give back
//! the stored double), text, booleans, dates and times as ISO 8601 (a date
//! with no time of day as a date, a time with no date as a time), durations
//! as ISO 8601 durations, empty cells as null. A formula cell gives the
//! result the workbook saved with it. A merged cell's value is in its first
//! cell only; the others read as empty, as pandas reads them. A cell that
//! holds an error (`#DIV/0!`, `#N/A`) is a bad row naming row and column.

use super::{BadRow, Batch, Columns, Plan, SourceError, assemble};
use calamine::{Data, Reader, open_workbook_auto};
use serde_json::Value;
use std::path::Path;

/// Reads the sheet `sheet` (a name, or a position from 0; the first sheet
/// when None) of the workbook at `path`.
pub fn read(
    path: &Path,
    sheet: Option<&str>,
    header: bool,
    cols: &Columns,
    skip_bad: bool,
) -> Result<Batch, SourceError> {
    let shown = path.display().to_string();
    super::guard::open_file(path)?;
    let bad_file = |reason: String| SourceError::Format {
        path: shown.clone(),
        kind: "spreadsheet",
        reason,
    };
    let mut book = super::guard::no_panic(&shown, "spreadsheet", || {
        open_workbook_auto(path).map_err(|e| bad_file(e.to_string()))
    })?;
    let names = book.sheet_names();
    let name = pick(&names, sheet).map_err(&bad_file)?;
    let range = super::guard::no_panic(&shown, "spreadsheet", || {
        book.worksheet_range(&name)
            .map_err(|e| bad_file(format!("sheet {name:?}: {e}")))
    })?;
    let source = format!("{shown}, sheet {name:?}");
    let first_row = range.start().map_or(1, |(r, _)| r as usize + 1);
    let width = range.width();
    let mut rows = range.rows().enumerate();
    let columns: Vec<String> = if header {
        match rows.next() {
            Some((_, cells)) => cells
                .iter()
                .enumerate()
                .map(|(i, c)| header_name(c, i))
                .collect(),
            None => return Ok(Batch::default()),
        }
    } else {
        (0..width).map(|i| format!("column_{}", i + 1)).collect()
    };
    let plan = Plan::new(&source, columns, cols)?;
    let mut out = Batch::default();
    let mut values = Vec::with_capacity(width);
    for (i, cells) in rows {
        let row = first_row + i;
        if cells.iter().all(|c| matches!(c, Data::Empty)) {
            continue;
        }
        values.clear();
        let mut bad = None;
        for (c, cell) in cells.iter().enumerate() {
            match value(cell) {
                Ok(v) => values.push(v),
                Err(reason) => {
                    bad = Some(BadRow {
                        source: source.clone(),
                        row,
                        column: Some(plan.names[c].clone()),
                        reason,
                    });
                    break;
                }
            }
        }
        match bad {
            None => assemble(&source, &plan, row, &mut values, skip_bad, &mut out)?,
            Some(b) if skip_bad => out.skipped.push(b),
            Some(b) => return Err(SourceError::Row(b)),
        }
    }
    Ok(out)
}

/// The sheet asked for: a name first, else a position from 0 (as pandas'
/// `sheet_name` takes them); the first sheet by default.
fn pick(names: &[String], sheet: Option<&str>) -> Result<String, String> {
    let listed = || {
        names
            .iter()
            .map(|n| format!("{n:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match sheet {
        None => names
            .first()
            .cloned()
            .ok_or_else(|| "the workbook has no sheets".to_owned()),
        Some(s) if names.iter().any(|n| n == s) => Ok(s.to_owned()),
        Some(s) => match s.parse::<usize>() {
            Ok(i) if i < names.len() => Ok(names[i].clone()),
            _ => Err(format!(
                "no sheet {s:?}; the sheets are {} (or give a position from 0)",
                listed()
            )),
        },
    }
}

/// A header cell as a column name; an empty one is `column_N`.
fn header_name(cell: &Data, i: usize) -> String {
    match cell {
        Data::Empty => format!("column_{}", i + 1),
        Data::String(s) => s.clone(),
        other => match value(other) {
            Ok(Value::String(s)) => s,
            Ok(v) => v.to_string(),
            Err(_) => format!("column_{}", i + 1),
        },
    }
}

/// A cell as JSON; `Err` says why the cell cannot be stored.
pub fn value(cell: &Data) -> Result<Value, String> {
    Ok(match cell {
        Data::Empty => Value::Null,
        Data::Int(i) => Value::from(*i),
        Data::Float(f) => number(*f),
        Data::String(s) => Value::String(s.clone()),
        Data::Bool(b) => Value::Bool(*b),
        Data::DateTimeIso(s) | Data::DurationIso(s) => Value::String(s.clone()),
        Data::DateTime(dt) => {
            if dt.is_duration() {
                Value::String(format!("PT{}S", shortest(dt.as_f64() * 86_400.0)))
            } else {
                let at = dt
                    .as_datetime()
                    .ok_or_else(|| format!("date {} is out of range", dt.as_f64()))?;
                let days = dt.as_f64();
                Value::String(if (0.0..1.0).contains(&days) {
                    at.time().format("%H:%M:%S%.f").to_string()
                } else if at.time() == chrono::NaiveTime::MIN {
                    at.date().format("%Y-%m-%d").to_string()
                } else {
                    at.format("%Y-%m-%dT%H:%M:%S%.f").to_string()
                })
            }
        }
        Data::Error(e) => return Err(format!("the cell holds the error {e}")),
    })
}

/// A stored double as JSON: a whole number as an integer, any other with
/// the shortest digits that read back as the same double.
fn number(f: f64) -> Value {
    if f.fract() == 0.0 && f.abs() < 9_007_199_254_740_992.0 {
        return Value::from(f as i64);
    }
    serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)
}

/// The shortest text of a double that reads back as it.
fn shortest(f: f64) -> String {
    match number(f) {
        Value::Number(n) => n.to_string(),
        _ => "0".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_keep_their_stored_value() {
        assert_eq!(number(3.0), Value::from(3));
        assert_eq!(number(-0.5).to_string(), "-0.5");
        assert_eq!(number(0.1 + 0.2).to_string(), "0.30000000000000004");
        assert_eq!(number(1e300).to_string(), "1e+300");
    }

    #[test]
    fn an_error_cell_cannot_be_stored() {
        let e = value(&Data::Error(calamine::CellErrorType::Div0)).unwrap_err();
        assert!(e.contains("#DIV/0!"), "{e}");
        assert_eq!(value(&Data::Empty).unwrap(), Value::Null);
        assert_eq!(value(&Data::Float(2.0)).unwrap(), Value::from(2));
    }

    #[test]
    fn sheets_are_picked_by_name_then_position() {
        let names = vec!["Prices".to_owned(), "2024".to_owned()];
        assert_eq!(pick(&names, None).unwrap(), "Prices");
        assert_eq!(pick(&names, Some("2024")).unwrap(), "2024");
        assert_eq!(pick(&names, Some("1")).unwrap(), "2024");
        let e = pick(&names, Some("Costs")).unwrap_err();
        assert!(e.contains("\"Prices\", \"2024\""), "{e}");
        assert!(pick(&[], None).is_err());
    }
}
