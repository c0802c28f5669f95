//! `dht compact`: the state file rewritten compactly ([`dht::state::compact`]).

use clap::Args;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct CompactArgs {
    /// Print what was done as one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// Bytes as people read them.
fn human(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 => format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64),
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64),
        b if b >= 1 << 10 => format!("{:.1} KiB", b as f64 / (1u64 << 10) as f64),
        b => format!("{b} bytes"),
    }
}

pub async fn run(state: &Path, a: CompactArgs, out: &mut impl Write) -> anyhow::Result<ExitCode> {
    let done = dht::state::compact(state).await?;
    if a.json {
        let v = serde_json::json!({
            "bytes_before": done.bytes_before,
            "bytes_after": done.bytes_after,
            "page_size_before": done.page_before,
            "page_size_after": done.page_after,
        });
        writeln!(out, "{v}")?;
    } else {
        writeln!(
            out,
            "compacted {}: {} -> {}, pages of {} -> {}",
            state.display(),
            human(done.bytes_before),
            human(done.bytes_after),
            human(done.page_before),
            human(done.page_after)
        )?;
    }
    Ok(ExitCode::SUCCESS)
}
