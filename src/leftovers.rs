//! Files a `dht` process leaves while it works (a decompressed copy of a
//! source, a load's spill files) carry its process id in their names, and
//! go when it ends, unless it was killed. The next process that makes such
//! files removes those of processes that no longer run.

use std::path::Path;

/// True when no process `pid` runs (false when that cannot be told).
pub fn process_gone(pid: u32) -> bool {
    #[cfg(unix)]
    {
        let Ok(pid) = libc::pid_t::try_from(pid) else {
            return false;
        };
        // SAFETY: signal 0 sends nothing; it only asks whether the process
        // exists.
        let r = unsafe { libc::kill(pid, 0) };
        r != 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)
    }
    #[cfg(not(unix))]
    {
        let _ = pid;
        false
    }
}

/// Removes the entries of `dir` that `pid_of` recognises as left by a
/// process that no longer runs (directories with what they hold). Errors
/// are ignored: these are leftovers, and the current work does not depend
/// on them going.
pub fn sweep(dir: &Path, pid_of: impl Fn(&str) -> Option<u32>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(&pid_of) else {
            continue;
        };
        if pid == std::process::id() || !process_gone(pid) {
            continue;
        }
        let path = entry.path();
        let _ = if path.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_files_of_ended_processes_go() {
        let dir = tempfile::tempdir().unwrap();
        // A child that has ended and been reaped: its id names no process.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let ended = child.id();
        child.wait().unwrap();
        let me = std::process::id();
        for name in [format!("x-{ended}"), format!("x-{me}"), "other".into()] {
            std::fs::write(dir.path().join(name), b"").unwrap();
        }
        std::fs::create_dir(dir.path().join(format!("d-{ended}"))).unwrap();
        std::fs::write(dir.path().join(format!("d-{ended}/f")), b"").unwrap();
        sweep(dir.path(), |n| n.split('-').nth(1)?.parse().ok());
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, vec!["other".to_owned(), format!("x-{me}")]);
    }
}
