//! A JSON file holding one object: each member is a key and its value, nested
//! values kept as they are (a "dictionary" source).

use super::{BadRow, Batch, Record, SourceError};
use serde_json::Value;
use std::path::Path;

/// Reads a JSON object file. A file whose top level is an array of records is
/// not a dict; the caller reads it as a DataFrame instead.
pub fn read(path: &Path, skip_bad: bool) -> Result<Batch, SourceError> {
    let shown = path.display().to_string();
    super::guard::open_file(path)?;
    let text = std::fs::read_to_string(path).map_err(|e| SourceError::Open {
        path: shown.clone(),
        reason: e.to_string(),
    })?;
    let parsed: Value = serde_json::from_str(&text).map_err(|e| SourceError::Format {
        path: shown.clone(),
        kind: "JSON",
        reason: e.to_string(),
    })?;
    let Value::Object(map) = parsed else {
        return Err(SourceError::Format {
            path: shown,
            kind: "JSON object",
            reason: format!(
                "the top level is {}, not an object of key: value members",
                super::convert::kind(&parsed)
            ),
        });
    };
    let mut out = Batch::default();
    for (i, (key, value)) in map.into_iter().enumerate() {
        let row = i + 1;
        if key.is_empty() {
            let bad = BadRow {
                source: shown.clone(),
                row,
                column: None,
                reason: "the key is empty".into(),
            };
            if skip_bad {
                out.skipped.push(bad);
                continue;
            }
            return Err(SourceError::Row(bad));
        }
        out.records.push(Record {
            key: key.into(),
            value,
            row,
        });
    }
    Ok(out)
}

/// True when the file's first non-blank character opens an object.
pub fn looks_like_object(path: &Path) -> bool {
    use std::io::Read;
    let mut buf = [0u8; 4096];
    let n = std::fs::File::open(path)
        .and_then(|mut f| f.read(&mut buf))
        .unwrap_or(0);
    let text = String::from_utf8_lossy(&buf[..n]);
    text.trim_start_matches('\u{feff}')
        .trim_start()
        .starts_with('{')
}
