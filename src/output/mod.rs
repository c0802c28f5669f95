//! Printers: an aligned table for people, and CSV, JSON and NDJSON for
//! scripts, one per kind of answer. Each writes to any `io::Write` (stdout
//! for the command line, a buffer in tests), so the commands never print
//! directly and the formats stay out of the logic.

mod entries;
pub mod figure;
pub mod plot;
pub mod report;
mod reports;
pub mod svg;
mod table;

pub use entries::{EntryWriter, Listed, entries};
pub use reports::{LoadSummary, RingTable, check, get, load_summary, ring};
pub use table::Table;

use clap::ValueEnum;

/// Output formats for listings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Aligned columns for people (control characters escaped).
    Table,
    /// RFC 4180 CSV with a header; values as JSON text.
    Csv,
    /// One JSON array.
    Json,
    /// One JSON object per line.
    Ndjson,
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
