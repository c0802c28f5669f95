//! `dht sim`: the Chord papers' experiments ([`dht::experiments`]), each a
//! subcommand whose flags default to the paper's setup.

use crate::output::figure::{self, RunCost, SimFormat};
use crate::output::{plot, report};
use anyhow::Context;
use clap::{Args, Subcommand};
use dht::chord::Bits;
use dht::experiments::{
    self, Figure, Setup, churn, failures, load_balance, path_length, published, timeouts,
};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

/// The experiments.
#[derive(Debug, Subcommand)]
pub enum Experiment {
    /// Keys per node (SIGCOMM Fig. 8): N nodes, K keys in steps, 20 seeds;
    /// with --vnodes, keys per real node with V virtual nodes each (Fig. 9).
    #[command(after_help = "\
Examples:
  dht sim load-balance                                 the paper's setup: 10^4 nodes, 10^5..10^6 keys, 20 seeds
  dht sim load-balance --vnodes 1,2,5,10,20            Fig. 9: 10^6 keys over 10^4 real nodes
  dht sim load-balance --nodes 100 --keys 1000,5000 --seeds 2 --format csv")]
    LoadBalance(LoadBalanceArgs),
    /// Path length (SIGCOMM Fig. 10): rings of 2^3..2^14 nodes, 100·N
    /// lookups each from random nodes, and the density at 2^12.
    #[command(after_help = "\
Examples:
  dht sim path-length
  dht sim path-length --sizes 64,1024 --plot path.svg")]
    PathLength(PathLengthArgs),
    /// Lookups through dead nodes (ToN Table II): 1,000 nodes with
    /// successor lists of 20, each failing with probability p, no
    /// stabilization afterwards, 10^4 lookups: path length and timeouts.
    #[command(after_help = "\
Examples:
  dht sim timeouts
  dht sim timeouts --p 0,0.25,0.5 --format json")]
    Timeouts(TimeoutsArgs),
    /// Simultaneous failures (SIGCOMM Fig. 11): 10^4 nodes holding 10^6
    /// keys, a fraction p fails at once, the ring stabilizes, then every key
    /// is looked up: the fraction not found (about p with one copy, p^r
    /// with r).
    #[command(after_help = "\
Examples:
  dht sim failures                              the paper's setup (one copy of each key)
  dht sim failures --replicas 2                 what the paper predicts: about p^2
  dht sim failures --nodes 1000 --keys 100000 --p 0.1,0.2")]
    Failures(FailuresArgs),
    /// Lookups during churn, in virtual time (ToN Table III): from 1,000
    /// nodes with successor lists of 20, lookups at 1/s, joins and leaves
    /// each at rate R, every node maintaining at intervals uniform in
    /// [15, 45] s: path length, timeouts, failed lookups per 10^4.
    #[command(after_help = "\
Examples:
  dht sim churn                                  the paper's setup: R = 0.05 .. 0.40, 10^4 lookups each
  dht sim churn --rates 0.1,0.4 --lookups 2000 --plot churn.svg")]
    Churn(ChurnArgs),
    /// Every experiment above at the paper's sizes, written as a report: an
    /// SVG, a CSV and a JSON file per figure and index.html showing each
    /// figure with the paper's numbers beside ours and the difference.
    #[command(after_help = "\
Examples:
  dht sim paper --out report/              the paper's sizes (minutes in a release build)
  dht sim paper --out quick/ --scale 0.01  a hundredth of the nodes and keys: a quick look")]
    Paper(PaperArgs),
}

#[derive(Debug, Args)]
pub struct PaperArgs {
    /// The directory to write (created if missing; files of the same names
    /// are replaced).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Multiply every node and key count by this (1: the paper's setup).
    /// The paper's numbers are shown only where a run's setup is the
    /// paper's: path length per N still is; the others are not.
    #[arg(long, default_value_t = 1.0)]
    pub scale: f64,
    /// Seed of every random choice.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// Flags every experiment has.
#[derive(Debug, Args)]
pub struct Common {
    /// Seed of every random choice: the same seed gives the same numbers.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Identifier width m (the papers do not give one; 160 is SHA-1's).
    #[arg(long, default_value_t = 160, value_parser = clap::value_parser!(u32).range(1..=160))]
    pub bits: u32,
    /// How to print the result.
    #[arg(long, value_enum, default_value_t = SimFormat::Table)]
    pub format: SimFormat,
    /// Also draw the figure, as the paper does, into this SVG file.
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct LoadBalanceArgs {
    #[command(flatten)]
    pub common: Common,
    /// Real nodes N.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub nodes: u64,
    /// Numbers of keys K (with --vnodes, the largest is used).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "100000,200000,300000,400000,500000,600000,700000,800000,900000,1000000"
    )]
    pub keys: Vec<u64>,
    /// Virtual nodes per real node to compare (Fig. 9), e.g. 1,2,5,10,20.
    #[arg(long, value_delimiter = ',')]
    pub vnodes: Vec<usize>,
    /// Independent rings to pool (default: 20 as in Fig. 8; 1 with --vnodes,
    /// where the paper gives no number).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub seeds: Option<u64>,
    /// The K whose density of keys per node is reported (Fig. 8b).
    #[arg(long, default_value_t = 500_000)]
    pub pdf_at: u64,
}

#[derive(Debug, Args)]
pub struct PathLengthArgs {
    #[command(flatten)]
    pub common: Common,
    /// Ring sizes N.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "8,16,32,64,128,256,512,1024,2048,4096,8192,16384"
    )]
    pub sizes: Vec<usize>,
    /// Lookups per node: 100·N keys, each looked up once.
    #[arg(long, default_value_t = 100)]
    pub keys_per_node: u64,
    /// The N whose density of path lengths is reported (Fig. 10b).
    #[arg(long, default_value_t = 4096)]
    pub pdf_at: usize,
    /// Successor-list length (the papers' simulator: 1 unless said).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=64))]
    pub successors: u8,
}

#[derive(Debug, Args)]
pub struct TimeoutsArgs {
    #[command(flatten)]
    pub common: Common,
    /// Nodes N before the failures.
    #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub nodes: u64,
    /// Successor-list length r.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u8).range(1..=64))]
    pub successors: u8,
    /// Failure probabilities p.
    #[arg(long, value_delimiter = ',', default_value = "0,0.1,0.2,0.3,0.4,0.5")]
    pub p: Vec<f64>,
    /// Lookups after the failures.
    #[arg(long, default_value_t = 10_000)]
    pub lookups: u64,
}

#[derive(Debug, Args)]
pub struct FailuresArgs {
    #[command(flatten)]
    pub common: Common,
    /// Nodes N before the failures.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(2..=10_000_000))]
    pub nodes: u64,
    /// Keys K stored (each looked up once after the failures).
    #[arg(long, default_value_t = 1_000_000)]
    pub keys: u64,
    /// Fractions p of the nodes that fail at once.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "0,0.02,0.04,0.06,0.08,0.1,0.12,0.14,0.16,0.18,0.2"
    )]
    pub p: Vec<f64>,
    /// Copies of each key r (the paper: 1).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=32))]
    pub replicas: u8,
    /// Successor-list length (default 2·⌈log2 N⌉, the ToN paper's rule).
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..))]
    pub successors: Option<u8>,
}

#[derive(Debug, Args)]
pub struct ChurnArgs {
    #[command(flatten)]
    pub common: Common,
    /// Nodes at the start.
    #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u64).range(2..=1_000_000))]
    pub nodes: u64,
    /// Successor-list length.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u8).range(1..))]
    pub successors: u8,
    /// Join rates R per second (leaves come at the same rate).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "0.05,0.1,0.15,0.2,0.25,0.3,0.35,0.4"
    )]
    pub rates: Vec<f64>,
    /// Lookups per rate.
    #[arg(long, default_value_t = 10_000)]
    pub lookups: u64,
    /// Lookups per second.
    #[arg(long, default_value_t = 1.0)]
    pub lookup_rate: f64,
    /// Each node maintains at intervals uniform in MIN,MAX seconds.
    #[arg(
        long,
        value_delimiter = ',',
        num_args = 2,
        default_value = "15,45",
        value_name = "MIN,MAX"
    )]
    pub stabilize: Vec<f64>,
    /// Mean one-way message delay, seconds (exponential).
    #[arg(long, default_value_t = 0.05)]
    pub delay: f64,
    /// Seconds a request to a dead node costs before it counts as failed.
    #[arg(long, default_value_t = 0.5)]
    pub timeout: f64,
}

/// The identifier width an experiment's flags name.
fn bits(c: &Common) -> Bits {
    Bits::new(c.bits).expect("range checked by clap")
}

impl LoadBalanceArgs {
    /// The experiment these flags describe.
    fn setup(&self) -> Setup {
        Setup::LoadBalance(load_balance::Setup {
            nodes: self.nodes as usize,
            keys: self.keys.clone(),
            vnodes: self.vnodes.clone(),
            seeds: self
                .seeds
                .unwrap_or(if self.vnodes.is_empty() { 20 } else { 1 }),
            seed: self.common.seed,
            pdf_at: self.pdf_at,
            bits: bits(&self.common),
        })
    }
}

impl PathLengthArgs {
    /// The experiment these flags describe.
    fn setup(&self) -> Setup {
        Setup::PathLength(path_length::Setup {
            sizes: self.sizes.clone(),
            keys_per_node: self.keys_per_node,
            pdf_at: self.pdf_at,
            successors: self.successors,
            seed: self.common.seed,
            bits: bits(&self.common),
        })
    }
}

impl TimeoutsArgs {
    /// The experiment these flags describe.
    fn setup(&self) -> Setup {
        Setup::Timeouts(timeouts::Setup {
            nodes: self.nodes as usize,
            successors: self.successors,
            probabilities: self.p.clone(),
            lookups: self.lookups,
            seed: self.common.seed,
            bits: bits(&self.common),
        })
    }
}

impl FailuresArgs {
    /// The experiment these flags describe.
    fn setup(&self) -> Setup {
        Setup::Failures(failures::Setup {
            nodes: self.nodes as usize,
            keys: self.keys,
            fractions: self.p.clone(),
            replicas: self.replicas,
            successors: self.successors.unwrap_or(0),
            seed: self.common.seed,
            bits: bits(&self.common),
            ..failures::Setup::default()
        })
    }
}

impl ChurnArgs {
    /// The experiment these flags describe.
    fn setup(&self) -> Setup {
        Setup::Churn(churn::Setup {
            nodes: self.nodes as usize,
            successors: self.successors,
            rates: self.rates.clone(),
            lookups: self.lookups,
            lookup_rate: self.lookup_rate,
            stabilize: (self.stabilize[0], self.stabilize[1]),
            delay: self.delay,
            timeout: self.timeout,
            seed: self.common.seed,
            bits: bits(&self.common),
        })
    }
}

/// Runs one experiment and prints (and draws) its figure.
pub fn run(e: Experiment, out: &mut impl Write) -> anyhow::Result<ExitCode> {
    let (setup, common) = match &e {
        Experiment::Paper(a) => return paper(a, out),
        Experiment::LoadBalance(a) => (a.setup(), &a.common),
        Experiment::PathLength(a) => (a.setup(), &a.common),
        Experiment::Timeouts(a) => (a.setup(), &a.common),
        Experiment::Failures(a) => (a.setup(), &a.common),
        Experiment::Churn(a) => (a.setup(), &a.common),
    };
    // A long run should not end in a file it cannot write: check the
    // picture's directory first.
    if let Some(dir) = common
        .plot
        .as_ref()
        .and_then(|f| f.parent())
        .filter(|d| !d.as_os_str().is_empty())
        && !dir.is_dir()
    {
        anyhow::bail!(
            "cannot write the figure into {}: no such directory",
            dir.display()
        );
    }
    let bar = lookup_bar();
    bar.set_message(setup.name());
    let start = Instant::now();
    let fig = setup.run(&mut |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    })?;
    bar.finish_and_clear();
    let cost = RunCost {
        seconds: start.elapsed().as_secs_f64(),
        peak_bytes: peak_memory(),
    };
    let (paper, differs) = compared(&fig);
    if let Some(file) = &common.plot {
        let doc = plot::svg(&fig, paper.as_ref())
            .map_err(|e| anyhow::anyhow!("cannot draw the figure: {e}"))?;
        super::ring::write_whole(file, doc.as_bytes())
            .with_context(|| format!("cannot write {}", file.display()))?;
    }
    figure::write(&fig, paper.as_ref(), cost, common.format, out)?;
    if !differs.is_empty() {
        let note = format!(
            "not compared with the paper: this setup differs: {}",
            differs.join(", ")
        );
        // A table's reader sees it below the table; a script's output stays
        // CSV or JSON.
        if common.format == SimFormat::Table {
            writeln!(out, "{note}")?;
        } else {
            eprintln!("{note}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A progress bar counting an experiment's lookups (its length is set as
/// the experiment reports it).
fn lookup_bar() -> ProgressBar {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{msg} {human_pos}/{human_len} lookups [{bar:30}] eta {eta}")
            .expect("template")
            .progress_chars("=> "),
    );
    bar
}

/// The paper's numbers for `fig`, shown only beside a run of the paper's
/// setup, and how the setup differed otherwise.
fn compared(fig: &Figure) -> (Option<published::Paper>, Vec<String>) {
    let found = published::for_figure(&fig.experiment, &fig.reproduces);
    let differs = found
        .as_ref()
        .map(|p| p.differences(&fig.setup))
        .unwrap_or_default();
    (found.filter(|_| differs.is_empty()), differs)
}

/// `dht sim paper`: every experiment, one after another, into a report.
fn paper(a: &PaperArgs, out: &mut impl Write) -> anyhow::Result<ExitCode> {
    if !(a.scale > 0.0 && a.scale <= 1.0) {
        anyhow::bail!("--scale must be above 0 and at most 1, not {}", a.scale);
    }
    if a.out.exists() && !a.out.is_dir() {
        anyhow::bail!("{} exists and is not a directory", a.out.display());
    }
    std::fs::create_dir_all(&a.out)
        .with_context(|| format!("cannot create {}", a.out.display()))?;
    let mut entries = Vec::new();
    let mut t = crate::output::Table::new(&["FIGURE", "REPRODUCES", "SECONDS", "PEAK MB"]);
    for (name, setup) in experiments::paper_runs(a.scale, a.seed) {
        let bar = lookup_bar();
        bar.set_message(name);
        reset_peak_memory();
        let start = Instant::now();
        let fig = setup.run(&mut |done, total| {
            bar.set_length(total);
            bar.set_position(done);
        })?;
        bar.finish_and_clear();
        let cost = RunCost {
            seconds: start.elapsed().as_secs_f64(),
            peak_bytes: peak_memory(),
        };
        let (paper, differs) = compared(&fig);
        let file = |ext: &str| a.out.join(format!("{name}.{ext}"));
        let write = |path: PathBuf, bytes: &[u8]| {
            super::ring::write_whole(&path, bytes)
                .with_context(|| format!("cannot write {}", path.display()))
        };
        let svg = plot::svg(&fig, paper.as_ref())
            .map_err(|e| anyhow::anyhow!("cannot draw {name}: {e}"))?;
        write(file("svg"), svg.as_bytes())?;
        for (ext, format) in [("csv", SimFormat::Csv), ("json", SimFormat::Json)] {
            let mut buf = Vec::new();
            figure::write(&fig, paper.as_ref(), cost, format, &mut buf)?;
            write(file(ext), &buf)?;
        }
        t.row(vec![
            name.to_owned(),
            fig.reproduces.clone(),
            format!("{:.1}", cost.seconds),
            (cost.peak_bytes / 1_000_000).to_string(),
        ]);
        entries.push(report::Entry {
            name: name.to_owned(),
            figure: fig,
            paper,
            differs,
            cost,
        });
    }
    let index = a.out.join("index.html");
    super::ring::write_whole(&index, report::index_html(&entries).as_bytes())
        .with_context(|| format!("cannot write {}", index.display()))?;
    t.write_to(out)?;
    writeln!(out, "wrote {}", index.display())?;
    Ok(ExitCode::SUCCESS)
}

/// Starts measuring peak memory afresh (Linux: clear_refs 5 resets the
/// high-water mark), so each experiment of a report has its own.
fn reset_peak_memory() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// The process's peak resident memory since the last reset, in bytes
/// (`VmHWM`; 0 where the system does not say).
fn peak_memory() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}
