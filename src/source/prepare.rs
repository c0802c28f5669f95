//! Getting a source's bytes into a file the readers can map: a plain file
//! is used as it is; standard input (`--path -`) and compressed files
//! (`.gz`, `.zst`) are streamed into a temporary file first (decompressed on
//! the way, never whole in memory), removed when the read is done. Errors
//! name what the user gave, not the temporary file.

use super::{Batch, SourceError};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// How a source file is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Not compressed.
    None,
    /// gzip (`.gz`).
    Gzip,
    /// Zstandard (`.zst`).
    Zstd,
}

impl Compression {
    /// The compression a file name's last extension says.
    pub fn from_name(path: &Path) -> Compression {
        match path.extension().and_then(|e| e.to_str()) {
            Some("gz") => Compression::Gzip,
            Some("zst" | "zstd") => Compression::Zstd,
            _ => Compression::None,
        }
    }
}

/// A source file ready to read, and the name to show for it.
pub struct Prepared {
    /// The file the readers open.
    pub path: PathBuf,
    /// What the user gave (`-` for standard input).
    pub shown: String,
    /// The temporary copy to remove, if one was made.
    temp: Option<PathBuf>,
}

impl Drop for Prepared {
    fn drop(&mut self) {
        if let Some(t) = &self.temp {
            let _ = std::fs::remove_file(t);
        }
    }
}

/// The file at `path` (`-`: standard input) ready to read, decompressed as
/// `compression` says.
pub fn prepare(path: &Path, compression: Compression) -> Result<Prepared, SourceError> {
    let shown = if path == Path::new("-") {
        "standard input".to_owned()
    } else {
        path.display().to_string()
    };
    if path != Path::new("-") && compression == Compression::None {
        return Ok(Prepared {
            path: path.to_path_buf(),
            shown,
            temp: None,
        });
    }
    let open_err = |reason: String| SourceError::Open {
        path: shown.clone(),
        reason,
    };
    let input: Box<dyn Read> = if path == Path::new("-") {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(super::guard::open_file(path)?)
    };
    let input: Box<dyn Read> = match compression {
        Compression::None => input,
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(input)),
        Compression::Zstd => {
            Box::new(zstd::stream::read::Decoder::new(input).map_err(|e| open_err(e.to_string()))?)
        }
    };
    let temp = temp_path();
    let mut out = std::io::BufWriter::new(
        std::fs::File::create(&temp).map_err(|e| open_err(format!("temporary copy: {e}")))?,
    );
    let prepared = Prepared {
        path: temp.clone(),
        shown: shown.clone(),
        temp: Some(temp),
    };
    let mut input = input;
    std::io::copy(&mut input, &mut out).map_err(|e| match compression {
        Compression::None => open_err(e.to_string()),
        _ => SourceError::Format {
            path: shown.clone(),
            kind: if compression == Compression::Gzip {
                "gzip"
            } else {
                "Zstandard"
            },
            reason: e.to_string(),
        },
    })?;
    out.flush()
        .map_err(|e| open_err(format!("temporary copy: {e}")))?;
    Ok(prepared)
}

/// A fresh temporary file name for this process.
fn temp_path() -> PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    std::env::temp_dir().join(format!(
        "dht-source-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ))
}

impl Prepared {
    /// `e` with the temporary file's name replaced by the user's.
    pub fn rename_error(&self, e: SourceError) -> SourceError {
        if self.temp.is_none() {
            return e;
        }
        let from = self.path.display().to_string();
        let fix = |s: String| s.replace(&from, &self.shown);
        match e {
            SourceError::Open { path, reason } => SourceError::Open {
                path: fix(path),
                reason: fix(reason),
            },
            SourceError::Format { path, kind, reason } => SourceError::Format {
                path: fix(path),
                kind,
                reason: fix(reason),
            },
            SourceError::Columns { origin, reason } => SourceError::Columns {
                origin: fix(origin),
                reason: fix(reason),
            },
            SourceError::Row(mut b) => {
                b.source = fix(b.source);
                SourceError::Row(b)
            }
            SourceError::Sql(s) => SourceError::Sql(fix(s)),
        }
    }

    /// `batch` with the temporary file's name replaced in its skipped rows.
    pub fn rename_batch(&self, mut batch: Batch) -> Batch {
        if self.temp.is_some() {
            let from = self.path.display().to_string();
            for b in &mut batch.skipped {
                b.source = b.source.replace(&from, &self.shown);
            }
        }
        batch
    }
}
