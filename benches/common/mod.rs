//! What more than one benchmark needs.

use std::process::Command;
use std::time::Instant;

/// Wall seconds and peak resident memory (MB) of one run of `bin` with
/// `args`, which must succeed: the maximum resident set `wait4` reports.
// The child is reaped by wait4, which also gives its resource usage.
#[allow(clippy::zombie_processes)]
pub fn measure(bin: &str, args: &[&str]) -> (f64, f64) {
    let t = Instant::now();
    let child = Command::new(bin)
        .args(args)
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("start the program");
    let mut status = 0;
    // SAFETY: a zeroed rusage is a valid value for wait4 to fill in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for our own child, writing only into the two locals.
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(pid, child.id() as i32, "wait4 failed");
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "{bin} {args:?} failed"
    );
    // ru_maxrss is in KiB on Linux.
    (secs, usage.ru_maxrss as f64 / 1024.0)
}
