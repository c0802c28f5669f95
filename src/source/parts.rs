//! A CSV file read in parts of about a given size, so that a file of many
//! gigabytes never sits whole in memory: each part is whole records (a
//! quoted field's line breaks stay inside its part), parsed by polars with
//! the column types the first part settled, and turned into records
//! numbered as in the whole file.

use super::frame::{self, CsvOptions};
use super::{Batch, SourceError};
use polars::prelude::*;
use std::io::{BufRead, BufReader};
use std::path::Path;

/// Rows polars infers column types from; the first part holds at least
/// this many (when the file has them), so its types are the ones a read of
/// the whole file would settle.
pub const INFER_ROWS: usize = 10_000;

/// A CSV file being read part by part.
pub struct CsvParts {
    file: BufReader<std::fs::File>,
    /// The name errors show.
    shown: String,
    /// The file on disk (for finding a ragged row after a failed parse).
    path: std::path::PathBuf,
    csv: CsvOptions,
    /// Bytes per part (at least; a part ends at a record's end).
    part_bytes: usize,
    /// The header record's bytes, put before every later part.
    header: Vec<u8>,
    /// Column names and types, from the first part.
    schema: Option<SchemaRef>,
    /// Data rows in the parts read so far.
    rows_before: usize,
    done: bool,
}

impl CsvParts {
    /// Opens `path` (a plain UTF-8 file, as [`super::prepare::prepare`]
    /// leaves it) for reading in parts of about `part_bytes`; `shown` names
    /// it in errors.
    pub fn open(
        path: &Path,
        shown: &str,
        csv: &CsvOptions,
        part_bytes: usize,
    ) -> Result<CsvParts, SourceError> {
        let file = super::guard::open_file(path)?;
        Ok(CsvParts {
            file: BufReader::with_capacity(1 << 20, file),
            shown: shown.to_owned(),
            path: path.to_path_buf(),
            csv: csv.clone(),
            part_bytes: part_bytes.max(1),
            header: Vec::new(),
            schema: None,
            rows_before: 0,
            done: false,
        })
    }

    /// True when the file has been read to its end.
    pub fn finished(&self) -> bool {
        self.done
    }

    /// The next part's records (None after the last), columns chosen by
    /// `cols`, bad rows as `skip_bad` says.
    pub fn next(
        &mut self,
        cols: &super::Columns,
        skip_bad: bool,
    ) -> Result<Option<Batch>, SourceError> {
        if self.done {
            return Ok(None);
        }
        let first = self.schema.is_none();
        let mut text = Vec::with_capacity(self.part_bytes + (self.part_bytes >> 4));
        if !first {
            text.extend_from_slice(&self.header);
        }
        let want_header = first && self.csv.header;
        let min_rows = if first { INFER_ROWS } else { 0 };
        let cut = cut_records(
            &mut self.file,
            &self.csv,
            self.part_bytes,
            min_rows,
            want_header,
            &mut text,
        )
        .map_err(|e| SourceError::Open {
            path: self.shown.clone(),
            reason: e.to_string(),
        })?;
        if want_header {
            self.header = cut.header;
        }
        self.done = cut.at_end;
        if !first && cut.records == 0 {
            return Ok(None);
        }
        let df = self.parse(text)?;
        if first {
            self.schema = Some(df.schema().clone());
        }
        let rows = df.height();
        let batch = frame::records_from(&self.shown, &df, cols, skip_bad, self.rows_before + 1)?;
        self.rows_before += rows;
        Ok(Some(batch))
    }

    /// Parses one part with polars, with the first part's types for the
    /// later ones.
    fn parse(&self, text: Vec<u8>) -> Result<DataFrame, SourceError> {
        let bad = |e: PolarsError| SourceError::Format {
            path: self.shown.clone(),
            kind: "CSV",
            reason: e.to_string().lines().next().unwrap_or_default().to_owned(),
        };
        let opts = frame::csv_read_options(&self.csv).with_schema(self.schema.clone());
        let parsed = super::guard::no_panic(&self.shown, "CSV", || {
            opts.into_reader_with_file_handle(std::io::Cursor::new(text))
                .finish()
                .map_err(bad)
        });
        // polars names no row for a row with the wrong number of fields or
        // a value of the wrong type: find it in the file, numbered as in
        // the whole file.
        parsed.map_err(|e| match e {
            SourceError::Format { path, kind, reason } => SourceError::Format {
                reason: frame::csv_culprit(&self.path, &self.csv, &reason).unwrap_or(reason),
                path,
                kind,
            },
            e => e,
        })
    }
}

/// What [`cut_records`] read.
struct Cut {
    /// The header record's bytes, when one was asked for.
    header: Vec<u8>,
    /// Data records read (comment lines and blank lines not counted).
    records: usize,
    /// The file ended.
    at_end: bool,
}

/// Appends whole records from `r` to `out` until at least `want` bytes and
/// `min_rows` records are there, or the file ends. A record ends at a line
/// break outside quotes; a line starting with the comment prefix is one
/// line whatever quotes it holds. With `header`, the first record is the
/// header: it is appended too, and returned.
fn cut_records(
    r: &mut impl BufRead,
    csv: &CsvOptions,
    want: usize,
    min_rows: usize,
    header: bool,
    out: &mut Vec<u8>,
) -> std::io::Result<Cut> {
    let start = out.len();
    let comment = csv.comment_prefix.as_deref().map(str::as_bytes);
    let mut cut = Cut {
        header: Vec::new(),
        records: 0,
        at_end: false,
    };
    let mut need_header = header;
    let mut in_quotes = false;
    let mut record_start = out.len();
    loop {
        let line_start = out.len();
        if r.read_until(b'\n', out)? == 0 {
            cut.at_end = true;
            // An unended quoted field: polars reports it.
            if in_quotes {
                cut.records += 1;
            }
            break;
        }
        let line = &out[line_start..];
        if !in_quotes {
            record_start = line_start;
            if comment.is_some_and(|c| !c.is_empty() && line.starts_with(c)) {
                continue;
            }
            if line.iter().all(|b| matches!(b, b'\r' | b'\n')) {
                continue;
            }
        }
        if let Some(q) = csv.quote {
            let quotes = line.iter().filter(|&&b| b == q).count();
            in_quotes ^= quotes % 2 == 1;
        }
        if in_quotes {
            continue;
        }
        if need_header {
            need_header = false;
            cut.header = out[record_start..].to_vec();
            continue;
        }
        cut.records += 1;
        if out.len() - start >= want && cut.records >= min_rows {
            break;
        }
    }
    Ok(cut)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cut_all(text: &str, csv: &CsvOptions, want: usize) -> (String, Vec<String>) {
        let mut r = std::io::Cursor::new(text.as_bytes().to_vec());
        let mut parts = Vec::new();
        let mut header = String::new();
        let mut first = true;
        loop {
            let mut out = Vec::new();
            let cut = cut_records(&mut r, csv, want, 0, first && csv.header, &mut out).unwrap();
            if first && csv.header {
                header = String::from_utf8(cut.header.clone()).unwrap();
            }
            first = false;
            if cut.records > 0 || !out.is_empty() {
                parts.push(String::from_utf8(out).unwrap());
            }
            if cut.at_end {
                break;
            }
        }
        (header, parts)
    }

    #[test]
    fn parts_end_at_record_ends_outside_quotes_and_comments() {
        let csv = CsvOptions {
            comment_prefix: Some("#".into()),
            ..CsvOptions::default()
        };
        let text = "k,v\n# a \"comment\n1,\"two\nlines\"\n2,b\n\n3,c";
        let (header, parts) = cut_all(text, &csv, 1);
        assert_eq!(header, "k,v\n");
        assert_eq!(
            parts,
            vec!["k,v\n# a \"comment\n1,\"two\nlines\"\n", "2,b\n", "\n3,c"]
        );
    }

    #[test]
    fn a_quote_pair_inside_a_field_does_not_open_a_quote() {
        let csv = CsvOptions::default();
        let (_, parts) = cut_all("k,v\n1,\"say \"\"hi\"\"\"\n2,x\n", &csv, 1);
        assert_eq!(parts, vec!["k,v\n1,\"say \"\"hi\"\"\"\n", "2,x\n"]);
    }
}
