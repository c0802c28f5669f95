//! Defences between hostile files and the readers: a directory or
//! unreadable path is named as such, JSON nested too deep to parse safely is
//! refused before any parser recurses into it, and a panic inside a
//! dependency reading a damaged file becomes an error naming the file.

use super::SourceError;
use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Deepest nesting of JSON arrays and objects a source may hold. serde_json
/// stops at 128; polars' readers and the drop of a parsed value recurse once
/// per level, and 20,000 levels overflow the stack.
pub const MAX_DEPTH: usize = 128;

/// Opens `path` for reading, saying plainly when it is a directory or
/// cannot be opened.
pub fn open_file(path: &Path) -> Result<std::fs::File, SourceError> {
    let shown = path.display().to_string();
    if path.is_dir() {
        return Err(SourceError::Open {
            path: shown,
            reason: "is a directory, not a file".into(),
        });
    }
    std::fs::File::open(path).map_err(|e| SourceError::Open {
        path: shown,
        reason: match e.kind() {
            std::io::ErrorKind::NotFound => "no such file".into(),
            std::io::ErrorKind::PermissionDenied => "permission denied".into(),
            _ => e.to_string(),
        },
    })
}

/// Refuses a JSON or NDJSON file whose arrays and objects nest deeper than
/// [`MAX_DEPTH`], naming the line. One pass over the bytes, skipping
/// strings; nothing is parsed.
pub fn check_depth(path: &Path) -> Result<(), SourceError> {
    let shown = path.display().to_string();
    let mut file = open_file(path)?;
    let mut buf = vec![0u8; 1 << 16];
    let (mut depth, mut line) = (0usize, 1usize);
    let (mut in_string, mut escaped) = (false, false);
    loop {
        let n = file.read(&mut buf).map_err(|e| SourceError::Open {
            path: shown.clone(),
            reason: e.to_string(),
        })?;
        if n == 0 {
            return Ok(());
        }
        for &b in &buf[..n] {
            if b == b'\n' {
                line += 1;
            }
            if in_string {
                match (escaped, b) {
                    (true, _) => escaped = false,
                    (false, b'\\') => escaped = true,
                    (false, b'"') => in_string = false,
                    _ => {}
                }
                continue;
            }
            match b {
                b'"' => in_string = true,
                b'[' | b'{' => {
                    depth += 1;
                    if depth > MAX_DEPTH {
                        return Err(SourceError::Format {
                            path: shown,
                            kind: "JSON",
                            reason: format!(
                                "line {line}: nested more than {MAX_DEPTH} levels deep"
                            ),
                        });
                    }
                }
                b']' | b'}' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
    }
}

/// Calls within [`no_panic`] in progress: while any is, panics are not
/// printed by the default hook (they become errors instead).
static GUARDED: AtomicUsize = AtomicUsize::new(0);

/// Runs `read`, turning a panic inside it (polars on a damaged file, in
/// this thread or a worker's) into an error naming the file.
pub fn no_panic<T>(
    path: &str,
    kind: &'static str,
    read: impl FnOnce() -> Result<T, SourceError>,
) -> Result<T, SourceError> {
    install_quiet_hook();
    GUARDED.fetch_add(1, Ordering::SeqCst);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(read));
    GUARDED.fetch_sub(1, Ordering::SeqCst);
    result.unwrap_or_else(|panic| {
        let why = panic
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| panic.downcast_ref::<&str>().copied())
            .unwrap_or("the reader failed");
        Err(SourceError::Format {
            path: path.to_owned(),
            kind,
            reason: format!("damaged or not a {kind} file ({why})"),
        })
    })
}

/// Wraps the panic hook once: panics inside [`no_panic`] are reported as
/// errors, so the default message (and backtrace advice) is not printed.
fn install_quiet_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if GUARDED.load(Ordering::SeqCst) == 0 {
                default(info);
            }
        }));
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_is_counted_outside_strings() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.json");
        std::fs::write(&p, format!("[{}]", "\"[[[[\\\"[[\"".repeat(200))).unwrap();
        check_depth(&p).unwrap();
        let deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        std::fs::write(&p, format!("{{}}\n{deep}\n")).unwrap();
        let e = check_depth(&p).unwrap_err().to_string();
        assert!(e.contains("line 2") && e.contains("nested"), "{e}");
    }

    #[test]
    fn a_panic_becomes_an_error() {
        let r: Result<(), _> = no_panic("f.parquet", "Parquet", || panic!("boom"));
        let e = r.unwrap_err().to_string();
        assert!(e.contains("f.parquet") && e.contains("boom"), "{e}");
    }

    #[test]
    fn directories_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let e = open_file(dir.path()).unwrap_err().to_string();
        assert!(e.contains("is a directory"), "{e}");
    }
}
