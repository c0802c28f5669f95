//! The `dht` command: parses arguments, sets up logging, runs one command,
//! prints an error once with its causes, and exits with a meaningful status:
//! 0 done, 1 "not found" or "problems found", 2 error (nothing changed), 3
//! the change was committed but its report could not be written (stdout
//! full or closed). A closed pipe on stdout (`dht dump | head`) ends
//! quietly.

mod cli;
mod output;

use clap::Parser;
use std::io::Write;
use std::process::ExitCode;

#[global_allocator]
static GLOBAL: dht::alloc::Allocator = dht::alloc::Allocator;

fn main() -> ExitCode {
    // A reader that goes away (`dht dump | head`) ends us quietly, as it
    // ends any Unix filter, instead of a panic in the middle of printing.
    #[cfg(unix)]
    // SAFETY: restoring the default disposition of SIGPIPE before any thread
    // starts; no handler is installed.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    dht::alloc::keep_freed_memory();
    let args = cli::Cli::parse();
    // A server outlives whoever started it: its stdout may close long
    // before it stops, and a client going away must not stop it either.
    #[cfg(unix)]
    if matches!(args.command, cli::Command::Serve(_)) {
        // SAFETY: as above, before any thread starts.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        }
    }
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        // The SQL Server driver logs each server error it returns (dht says
        // it once, in its own words) and warns about `--encrypt off`, which
        // the user chose: its events stay out unless RUST_LOG asks.
        tracing_subscriber::EnvFilter::new(match args.verbose {
            0 => "warn,tiberius=off",
            1 => "dht=info",
            2 => "dht=debug",
            _ => "dht=trace",
        })
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colours for a terminal only: a log file or a pipe gets plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
    // A server answers many requests at once on every core; a command
    // runs one thing at a time.
    let mut builder = match args.command {
        cli::Command::Serve(_) => tokio::runtime::Builder::new_multi_thread(),
        _ => tokio::runtime::Builder::new_current_thread(),
    };
    let runtime = match builder.enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            cli::note(&format!("cannot start: {e}"));
            return ExitCode::from(2);
        }
    };
    let mut out = std::io::stdout().lock();
    let result = runtime
        .block_on(cli::run(args, &mut out))
        .and_then(|code| Ok(out.flush().map(|()| code)?));
    match result {
        Ok(code) => code,
        Err(e) => {
            let broken_pipe = e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            });
            if cli::committed() {
                if !broken_pipe {
                    cli::note(&format!(
                        "the change was committed, but its report could not be written: {e:#}"
                    ));
                }
                return ExitCode::from(3);
            }
            if broken_pipe {
                return ExitCode::SUCCESS;
            }
            cli::note(&format!("error: {e:#}"));
            ExitCode::from(2)
        }
    }
}
