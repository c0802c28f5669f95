//! The table printer: columns aligned by display width, so wide
//! characters (CJK, emoji) line up, two spaces between columns, no borders,
//! nothing after the last cell.

use super::escape;
use std::io::Write;
use unicode_width::UnicodeWidthStr;

/// What separates cells in a stored row: escaped cells never hold it.
const CELL_END: char = '\t';

/// A table with a header, aligned on print. Each row is kept as one string
/// and the widest cell of each column as rows arrive, so a listing of a
/// million rows costs little more than its text (a table crate's styled
/// cell per value cost gigabytes there).
pub struct Table {
    /// The widest cell of each column so far, in terminal columns.
    widths: Vec<usize>,
    /// The header, then each row: escaped cells separated by [`CELL_END`].
    rows: Vec<String>,
}

impl Table {
    /// A table with these column titles.
    pub fn new(header: &[&str]) -> Table {
        let mut t = Table {
            widths: Vec::with_capacity(header.len()),
            rows: Vec::new(),
        };
        t.row(header.iter().map(|h| h.to_string()).collect());
        t
    }

    /// Adds a row (cells are escaped).
    pub fn row(&mut self, cells: Vec<String>) {
        let mut line = String::new();
        for (i, cell) in cells.iter().enumerate() {
            let cell = escape(cell);
            if i > 0 {
                line.push(CELL_END);
            }
            match self.widths.get_mut(i) {
                Some(w) => *w = (*w).max(cell.width()),
                None => self.widths.push(cell.width()),
            }
            line.push_str(&cell);
        }
        self.rows.push(line);
    }

    /// Writes the table to `out`.
    pub fn write_to(self, out: &mut impl Write) -> std::io::Result<()> {
        let mut line = String::new();
        for row in &self.rows {
            line.clear();
            for (cell, width) in row.split(CELL_END).zip(&self.widths) {
                line.push_str(cell);
                let pad = width + 2 - cell.width();
                line.extend(std::iter::repeat_n(' ', pad));
            }
            writeln!(out, "{}", line.trim_end())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(t: Table) -> String {
        let mut out = Vec::new();
        t.write_to(&mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn columns_align_by_display_width() {
        let mut t = Table::new(&["KEY", "NODE", "VALUE"]);
        t.row(vec!["apple".into(), "node-1".into(), "1.2".into()]);
        t.row(vec!["りんご".into(), "node-2".into(), "\"赤\"".into()]);
        t.row(vec!["🍎🍏".into(), "n3".into(), "x".into()]);
        assert_eq!(
            render(t),
            "KEY     NODE    VALUE\n\
             apple   node-1  1.2\n\
             りんご  node-2  \"赤\"\n\
             🍎🍏    n3      x\n"
        );
    }

    #[test]
    fn control_characters_are_escaped_and_empty_tables_print_their_header() {
        let mut t = Table::new(&["A", "B"]);
        t.row(vec!["a\nb".into(), "".into()]);
        assert_eq!(render(t), "A     B\na\\nb\n");
        assert_eq!(render(Table::new(&["ONLY"])), "ONLY\n");
    }
}
