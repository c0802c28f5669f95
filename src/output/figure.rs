//! An experiment's figure as a table beside the paper's numbers: aligned
//! for people, CSV for scripts, or JSON with everything (the density and
//! the setup included).

use super::Table;
use dht::experiments::published::Paper;
use dht::experiments::{Figure, Point};
use std::io::Write;

/// Formats for `dht sim`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SimFormat {
    /// Aligned columns, ours beside the paper's.
    Table,
    /// The same columns as CSV.
    Csv,
    /// One JSON object: the figure, the paper's numbers, the density, the
    /// setup and the run's cost.
    Json,
}

/// What running an experiment cost.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct RunCost {
    /// Wall-clock seconds.
    pub seconds: f64,
    /// Peak resident memory of the process, in bytes (0 where unknown).
    pub peak_bytes: u64,
}

/// A number as a table shows it: integers without a point, others to three
/// places.
pub fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v:.3}")
    }
}

/// The header and rows: x, then per measure ours (mean, p1, p99) and the
/// paper's where published.
pub fn rows(fig: &Figure, paper: Option<&Paper>) -> (Vec<String>, Vec<Vec<String>>) {
    let mut header = vec![fig.x_label.clone()];
    let opt = |v: Option<f64>| v.map(number).unwrap_or_default();
    for m in &fig.measures {
        let has_pct = m.points.iter().any(|p| p.p1.is_some());
        let published = paper.and_then(|p| p.measures.get(&m.name));
        header.push(format!("{} mean", m.name));
        if has_pct {
            header.push("p1".into());
            header.push("p99".into());
        }
        if published.is_some() {
            header.push("paper mean".into());
            if has_pct {
                header.push("paper p1".into());
                header.push("paper p99".into());
            }
        }
    }
    let xs: Vec<f64> = fig
        .measures
        .first()
        .map(|m| m.points.iter().map(|p| p.x).collect())
        .unwrap_or_default();
    let rows = xs
        .iter()
        .map(|&x| {
            let mut row = vec![number(x)];
            for m in &fig.measures {
                let has_pct = m.points.iter().any(|p| p.p1.is_some());
                let ours: Option<&Point> = m.points.iter().find(|p| p.x == x);
                row.push(opt(ours.map(|p| p.mean)));
                if has_pct {
                    row.push(opt(ours.and_then(|p| p.p1)));
                    row.push(opt(ours.and_then(|p| p.p99)));
                }
                if let Some(paper) = paper.filter(|p| p.measures.contains_key(&m.name)) {
                    let theirs = paper.at(&m.name, x);
                    row.push(opt(theirs.and_then(|p| p.mean)));
                    if has_pct {
                        row.push(opt(theirs.and_then(|p| p.p1)));
                        row.push(opt(theirs.and_then(|p| p.p99)));
                    }
                }
            }
            row
        })
        .collect();
    (header, rows)
}

/// Writes the figure in `format`.
pub fn write(
    fig: &Figure,
    paper: Option<&Paper>,
    cost: RunCost,
    format: SimFormat,
    out: &mut impl Write,
) -> std::io::Result<()> {
    match format {
        SimFormat::Table => {
            writeln!(out, "{} ({})", fig.experiment, fig.reproduces)?;
            let (header, rows) = rows(fig, paper);
            let h: Vec<&str> = header.iter().map(String::as_str).collect();
            let mut t = Table::new(&h);
            for r in rows {
                t.row(r);
            }
            t.write_to(out)?;
            if let Some(pdf) = &fig.pdf {
                let seen: Vec<&(u64, f64)> = pdf.points.iter().filter(|p| p.1 > 0.0).collect();
                if let (Some(lo), Some(hi), Some(mode)) = (
                    seen.first(),
                    seen.last(),
                    seen.iter().max_by(|a, b| a.1.total_cmp(&b.1)),
                ) {
                    writeln!(
                        out,
                        "density of {}: from {} to {}, most likely {} (p = {:.4}); --format json lists it",
                        pdf.label, lo.0, hi.0, mode.0, mode.1
                    )?;
                }
            }
            if let Some(p) = paper {
                writeln!(out, "paper: {} ({}): {}", p.source, p.kind, p.note)?;
            }
            writeln!(
                out,
                "run: {:.1} s, peak memory {} MB",
                cost.seconds,
                cost.peak_bytes / 1_000_000
            )
        }
        SimFormat::Csv => {
            let (header, rows) = rows(fig, paper);
            let mut w = csv::Writer::from_writer(out);
            w.write_record(&header)?;
            for r in rows {
                w.write_record(&r)?;
            }
            w.flush()
        }
        SimFormat::Json => {
            let v = serde_json::json!({
                "figure": fig,
                "paper": paper,
                "run": cost,
            });
            serde_json::to_writer_pretty(&mut *out, &v)?;
            writeln!(out)
        }
    }
}
