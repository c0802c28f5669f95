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

/// The character encoding of a text source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextEncoding {
    /// UTF-8 (a byte-order mark at the start is skipped).
    Utf8,
    /// ISO-8859-1.
    Latin1,
    /// Windows-1252 (Latin-1 with printable characters in 0x80..0x9f).
    Windows1252,
    /// UTF-16, little-endian unless a byte-order mark says otherwise.
    Utf16,
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
/// `compression` says and, for text, transcoded from `encoding` to UTF-8.
pub fn prepare(
    path: &Path,
    compression: Compression,
    encoding: TextEncoding,
) -> Result<Prepared, SourceError> {
    let shown = if path == Path::new("-") {
        "standard input".to_owned()
    } else {
        path.display().to_string()
    };
    if path != Path::new("-")
        && compression == Compression::None
        && encoding == TextEncoding::Utf8
        && !starts_with_bom(path)
    {
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
    let copied = match encoding {
        TextEncoding::Utf8 => skip_bom_and_copy(&mut input, &mut out),
        other => transcode(&mut input, &mut out, other, &shown)?,
    };
    copied.map_err(|e| match compression {
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

/// True when the file starts with a UTF-8 byte-order mark.
fn starts_with_bom(path: &Path) -> bool {
    let mut head = [0u8; 3];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok()
        && head == [0xef, 0xbb, 0xbf]
}

/// Copies `input` to `out`, without a UTF-8 byte-order mark at the start.
fn skip_bom_and_copy(input: &mut dyn Read, out: &mut dyn Write) -> std::io::Result<u64> {
    let mut head = [0u8; 3];
    let mut n = 0;
    while n < 3 {
        let k = input.read(&mut head[n..])?;
        if k == 0 {
            break;
        }
        n += k;
    }
    if head[..n] != [0xef, 0xbb, 0xbf] {
        out.write_all(&head[..n])?;
    }
    Ok(std::io::copy(input, out)? + n as u64)
}

/// Streams `input` in `encoding` to `out` as UTF-8. Bytes that are not
/// valid in the encoding are an error naming the line.
fn transcode(
    input: &mut dyn Read,
    out: &mut dyn Write,
    encoding: TextEncoding,
    shown: &str,
) -> Result<std::io::Result<u64>, SourceError> {
    let enc = match encoding {
        TextEncoding::Utf8 => encoding_rs::UTF_8,
        // The WHATWG's latin1 is windows-1252, a superset in which every
        // byte is a character; ISO-8859-1 proper maps 0x80..0x9f to C1
        // controls, which encoding_rs spells x-user-defined-free: decode
        // those bytes by hand.
        TextEncoding::Latin1 => encoding_rs::WINDOWS_1252,
        TextEncoding::Windows1252 => encoding_rs::WINDOWS_1252,
        TextEncoding::Utf16 => encoding_rs::UTF_16LE,
    };
    let latin1 = encoding == TextEncoding::Latin1;
    let mut decoder = enc.new_decoder();
    let (mut buf, mut text) = (vec![0u8; 1 << 16], String::with_capacity(1 << 17));
    let (mut total, mut line) = (0u64, 1usize);
    loop {
        let n = match input.read(&mut buf) {
            Ok(n) => n,
            Err(e) => return Ok(Err(e)),
        };
        let last = n == 0;
        let mut chunk = &buf[..n];
        loop {
            text.clear();
            if latin1 {
                text.extend(chunk.iter().map(|&b| b as char));
                chunk = &[];
            } else {
                let (result, read) =
                    decoder.decode_to_string_without_replacement(chunk, &mut text, last);
                chunk = &chunk[read..];
                if let encoding_rs::DecoderResult::Malformed(_, _) = result {
                    line += text.matches('\n').count();
                    return Err(SourceError::Format {
                        path: shown.to_owned(),
                        kind: enc.name(),
                        reason: format!("line {line}: bytes that are not valid {}", enc.name()),
                    });
                }
            }
            line += text.matches('\n').count();
            if let Err(e) = out.write_all(text.as_bytes()) {
                return Ok(Err(e));
            }
            total += text.len() as u64;
            if chunk.is_empty() {
                break;
            }
        }
        if last {
            return Ok(Ok(total));
        }
    }
}

/// A fresh temporary file name for this process.
fn temp_path() -> PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    // Copies left by sources read by processes that were killed go first.
    if NEXT.load(Ordering::Relaxed) == 0 {
        crate::leftovers::sweep(&std::env::temp_dir(), |n| {
            n.strip_prefix("dht-source-")?
                .split('-')
                .next()?
                .parse()
                .ok()
        });
    }
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
