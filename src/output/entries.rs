//! Listings of stored entries (`dump`, and `load`'s sample) in every format.
//! CSV, JSON and NDJSON stream; a table holds its rows to align them.

use super::{Format, Table};
use serde_json::Value;
use std::io::Write;

/// One listed entry of `dump` or `load`.
pub struct Listed {
    /// The key.
    pub key: std::sync::Arc<str>,
    /// Its value.
    pub value: std::sync::Arc<Value>,
    /// The node holding this copy.
    pub node: std::sync::Arc<str>,
    /// That node's id.
    pub node_id: String,
    /// "primary" or "replica", shown when replicas are listed.
    pub role: Option<&'static str>,
}

/// Writes `items` in `format` to `out`.
pub fn entries(out: &mut impl Write, format: Format, items: &[Listed]) -> anyhow::Result<()> {
    let mut w = EntryWriter::new(out, format, items.iter().any(|i| i.role.is_some()))?;
    for i in items {
        w.write(i)?;
    }
    w.finish()
}

/// Writes entries one at a time in a chosen format. CSV, JSON and NDJSON
/// stream: a dump of millions of keys holds one slice of the ring in
/// memory, not its whole output. A table must see every row to align its
/// columns, so it prints at the end.
pub struct EntryWriter<W: Write> {
    out: Out<W>,
    with_role: bool,
}

/// The printer of each format, holding its output.
enum Out<W: Write> {
    /// Rows kept until the end, to align them.
    Table(Table, W),
    /// CSV rows as they come.
    Csv(Box<csv::Writer<W>>),
    /// A pretty-printed array, opened at the first entry.
    Json {
        /// Where it goes.
        out: std::io::BufWriter<W>,
        /// No entry written yet.
        first: bool,
    },
    /// One object per line as they come.
    Ndjson(std::io::BufWriter<W>),
}

impl<W: Write> EntryWriter<W> {
    /// A writer to `out` in `format`, with a role column when `with_role`;
    /// CSV writes its header now.
    pub fn new(out: W, format: Format, with_role: bool) -> anyhow::Result<EntryWriter<W>> {
        let buffered = |w| std::io::BufWriter::with_capacity(1 << 16, w);
        let out = match format {
            Format::Table => {
                // The value goes last: it is the one column that may be long.
                let mut h = vec!["KEY", "NODE", "NODE ID"];
                if with_role {
                    h.push("ROLE");
                }
                h.push("VALUE");
                Out::Table(Table::new(&h), out)
            }
            Format::Csv => {
                let mut w = csv::Writer::from_writer(out);
                let mut h = vec!["key", "value", "node", "node_id"];
                if with_role {
                    h.push("role");
                }
                w.write_record(&h)?;
                Out::Csv(Box::new(w))
            }
            Format::Json => Out::Json {
                out: buffered(out),
                first: true,
            },
            Format::Ndjson => Out::Ndjson(buffered(out)),
        };
        Ok(EntryWriter { out, with_role })
    }

    /// Writes (or, for a table, keeps) one entry.
    pub fn write(&mut self, i: &Listed) -> anyhow::Result<()> {
        match &mut self.out {
            Out::Table(t, _) => {
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
            Out::Table(t, mut out) => {
                t.write_to(&mut out)?;
                out.flush()?;
            }
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
