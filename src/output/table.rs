//! The table printer: columns aligned by display width (comfy-table), so
//! wide characters (CJK, emoji) line up, two spaces between columns, no
//! borders, nothing after the last cell.

use super::escape;
use comfy_table::{CellAlignment, ContentArrangement, presets};
use std::io::Write;

/// A table with a header, aligned on print.
pub struct Table {
    inner: comfy_table::Table,
}

impl Table {
    /// A table with these column titles.
    pub fn new(header: &[&str]) -> Table {
        let mut inner = comfy_table::Table::new();
        inner
            .load_preset(presets::NOTHING)
            .set_content_arrangement(ContentArrangement::Disabled)
            .set_header(header.iter().copied());
        Table { inner }
    }

    /// Adds a row (cells are escaped).
    pub fn row(&mut self, cells: Vec<String>) {
        self.inner.add_row(cells.iter().map(|c| escape(c)));
    }

    /// Writes the table to `out`.
    pub fn write_to(mut self, out: &mut impl Write) -> std::io::Result<()> {
        for col in self.inner.column_iter_mut() {
            col.set_padding((0, 2));
            col.set_cell_alignment(CellAlignment::Left);
        }
        for line in self.inner.lines() {
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
