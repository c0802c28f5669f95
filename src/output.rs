//! Printers: an aligned table for people, and CSV, JSON and NDJSON for
//! scripts. Separate printers rather than format checks scattered through
//! the commands.

use crate::cli::Format;
use serde_json::Value;
use std::io::Write;

/// A table with a header, aligned on print.
pub struct Table {
    rows: Vec<Vec<String>>,
}

/// Control characters would break a table's lines: show them escaped.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

impl Table {
    /// A table with these column titles.
    pub fn new(header: &[&str]) -> Table {
        Table {
            rows: vec![header.iter().map(|h| (*h).to_owned()).collect()],
        }
    }

    /// Adds a row (cells are escaped).
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells.iter().map(|c| escape(c)).collect());
    }

    /// Writes the table to stdout.
    pub fn print(&self) -> std::io::Result<()> {
        let cols = self.rows[0].len();
        let mut width = vec![0usize; cols];
        for r in &self.rows {
            for (i, c) in r.iter().enumerate() {
                width[i] = width[i].max(c.chars().count().min(60));
            }
        }
        let mut out = std::io::stdout().lock();
        for r in &self.rows {
            let mut line = String::new();
            for (i, c) in r.iter().enumerate() {
                if i + 1 == cols {
                    line.push_str(c);
                } else {
                    let pad = width[i].saturating_sub(c.chars().count());
                    line.push_str(c);
                    line.push_str(&" ".repeat(pad + 2));
                }
            }
            writeln!(out, "{}", line.trim_end())?;
        }
        out.flush()
    }
}

/// One listed entry of `dump` or `load`.
pub struct Listed {
    pub key: std::sync::Arc<str>,
    pub value: std::sync::Arc<Value>,
    pub node: String,
    pub node_id: String,
    /// "primary" or "replica", shown when replicas are listed.
    pub role: Option<&'static str>,
}

/// Prints entries in the chosen format.
pub fn entries(format: Format, items: &[Listed]) -> anyhow::Result<()> {
    let with_role = items.iter().any(|i| i.role.is_some());
    match format {
        Format::Table => {
            // The value goes last: it is the one column that may be long.
            let mut h = vec!["KEY", "NODE", "NODE ID"];
            if with_role {
                h.push("ROLE");
            }
            h.push("VALUE");
            let mut t = Table::new(&h);
            for i in items {
                let mut row = vec![i.key.to_string(), i.node.clone(), i.node_id.clone()];
                if let Some(r) = i.role {
                    row.push(r.to_owned());
                }
                row.push(i.value.to_string());
                t.row(row);
            }
            t.print()?;
        }
        Format::Csv => {
            let mut w = csv::Writer::from_writer(std::io::stdout().lock());
            let mut h = vec!["key", "value", "node", "node_id"];
            if with_role {
                h.push("role");
            }
            w.write_record(&h)?;
            for i in items {
                let value = i.value.to_string();
                let mut row = vec![&*i.key, value.as_str(), i.node.as_str(), i.node_id.as_str()];
                if let Some(r) = i.role {
                    row.push(r);
                }
                w.write_record(&row)?;
            }
            w.flush()?;
        }
        Format::Json | Format::Ndjson => {
            let objs: Vec<Value> = items
                .iter()
                .map(|i| {
                    let mut o = serde_json::Map::new();
                    o.insert("key".into(), Value::String(i.key.to_string()));
                    o.insert("value".into(), (*i.value).clone());
                    o.insert("node".into(), Value::String(i.node.clone()));
                    o.insert("node_id".into(), Value::String(i.node_id.clone()));
                    if let Some(r) = i.role {
                        o.insert("role".into(), Value::String(r.into()));
                    }
                    Value::Object(o)
                })
                .collect();
            let mut out = std::io::stdout().lock();
            if format == Format::Json {
                serde_json::to_writer_pretty(&mut out, &objs)?;
                writeln!(out)?;
            } else {
                for o in objs {
                    serde_json::to_writer(&mut out, &o)?;
                    writeln!(out)?;
                }
            }
            out.flush()?;
        }
    }
    Ok(())
}
