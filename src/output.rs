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
    pub node: std::sync::Arc<str>,
    pub node_id: String,
    /// "primary" or "replica", shown when replicas are listed.
    pub role: Option<&'static str>,
}

/// Prints entries in the chosen format.
pub fn entries(format: Format, items: &[Listed]) -> anyhow::Result<()> {
    let mut w = EntryWriter::new(format, items.iter().any(|i| i.role.is_some()))?;
    for i in items {
        w.write(i)?;
    }
    w.finish()
}

/// Writes entries one at a time in a chosen format. CSV, JSON and NDJSON
/// stream: a dump of millions of keys holds one slice of the ring in
/// memory, not its whole output. A table must see every row to align its
/// columns, so it prints at the end.
pub struct EntryWriter {
    out: Out,
    with_role: bool,
}

enum Out {
    Table(Table),
    Csv(Box<csv::Writer<std::io::StdoutLock<'static>>>),
    /// A pretty-printed array, opened at the first entry.
    Json {
        out: std::io::BufWriter<std::io::StdoutLock<'static>>,
        first: bool,
    },
    Ndjson(std::io::BufWriter<std::io::StdoutLock<'static>>),
}

impl EntryWriter {
    /// A writer in `format`, with a role column when `with_role`; CSV
    /// writes its header now.
    pub fn new(format: Format, with_role: bool) -> anyhow::Result<EntryWriter> {
        let stdout = || std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
        let out = match format {
            Format::Table => {
                // The value goes last: it is the one column that may be long.
                let mut h = vec!["KEY", "NODE", "NODE ID"];
                if with_role {
                    h.push("ROLE");
                }
                h.push("VALUE");
                Out::Table(Table::new(&h))
            }
            Format::Csv => {
                let mut w = csv::Writer::from_writer(std::io::stdout().lock());
                let mut h = vec!["key", "value", "node", "node_id"];
                if with_role {
                    h.push("role");
                }
                w.write_record(&h)?;
                Out::Csv(Box::new(w))
            }
            Format::Json => Out::Json {
                out: stdout(),
                first: true,
            },
            Format::Ndjson => Out::Ndjson(stdout()),
        };
        Ok(EntryWriter { out, with_role })
    }

    /// Writes (or, for a table, keeps) one entry.
    pub fn write(&mut self, i: &Listed) -> anyhow::Result<()> {
        match &mut self.out {
            Out::Table(t) => {
                let mut row = vec![i.key.to_string(), i.node.to_string(), i.node_id.clone()];
                if self.with_role {
                    row.push(i.role.unwrap_or_default().to_owned());
                }
                row.push(i.value.to_string());
                t.row(row);
            }
            Out::Csv(w) => {
                let value = i.value.to_string();
                let mut row = vec![&*i.key, value.as_str(), &*i.node, i.node_id.as_str()];
                if self.with_role {
                    row.push(i.role.unwrap_or_default());
                }
                w.write_record(&row)?;
            }
            Out::Json { out, first } => {
                // The array serde_json would pretty-print: each object
                // indented one level. JSON text never holds a raw newline
                // inside a string, so indenting line by line is exact.
                out.write_all(if *first { b"[\n" } else { b",\n" })?;
                *first = false;
                let text = serde_json::to_string_pretty(&object(i))?;
                for (n, line) in text.lines().enumerate() {
                    if n > 0 {
                        out.write_all(b"\n")?;
                    }
                    out.write_all(b"  ")?;
                    out.write_all(line.as_bytes())?;
                }
            }
            Out::Ndjson(out) => {
                serde_json::to_writer(&mut *out, &object(i))?;
                out.write_all(b"\n")?;
            }
        }
        Ok(())
    }

    /// Ends the output: prints a table, closes a JSON array, flushes.
    pub fn finish(self) -> anyhow::Result<()> {
        match self.out {
            Out::Table(t) => t.print()?,
            Out::Csv(mut w) => w.flush()?,
            Out::Json { mut out, first } => {
                out.write_all(if first { b"[]\n" } else { b"\n]\n" })?;
                out.flush()?;
            }
            Out::Ndjson(mut out) => out.flush()?,
        }
        Ok(())
    }
}

/// An entry as a JSON object: key, value, node, node_id and (when listed)
/// role, in that order.
fn object(i: &Listed) -> Value {
    let mut o = serde_json::Map::new();
    o.insert("key".into(), Value::String(i.key.to_string()));
    o.insert("value".into(), (*i.value).clone());
    o.insert("node".into(), Value::String(i.node.to_string()));
    o.insert("node_id".into(), Value::String(i.node_id.clone()));
    if let Some(r) = i.role {
        o.insert("role".into(), Value::String(r.into()));
    }
    Value::Object(o)
}
