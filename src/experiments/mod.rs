//! The Chord papers' experiments (Stoica et al., SIGCOMM 2001 §6 and
//! IEEE/ACM ToN 2003 §V), run on the real protocol code in a simulated
//! world: rings built with [`crate::sim::World`], lookups through
//! [`crate::chord::find_successor`], failures through the network.
//!
//! Each experiment takes its setup (the paper's by default) and returns a
//! [`Figure`]: the points the paper plots, measured, beside what the paper
//! published ([`published`]). Nothing here prints or reads a clock; a
//! caller passes a [`Progress`] callback to follow long runs.

pub mod churn;
pub mod failures;
pub mod load_balance;
pub mod path_length;
pub mod published;
pub mod stats;
pub mod timeouts;

use crate::chord::{Bits, Id};
use serde::Serialize;
pub use stats::{Histogram, Summary};

/// One measured point: at `x`, the mean and (where the paper shows them)
/// the 1st and 99th percentiles.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Point {
    /// Where on the x axis (keys, nodes, a fraction, a rate).
    pub x: f64,
    /// The mean.
    pub mean: f64,
    /// The 1st percentile, if the figure shows one.
    pub p1: Option<f64>,
    /// The 99th percentile, if the figure shows one.
    pub p99: Option<f64>,
}

impl Point {
    /// A point with a mean only (a fraction, a count).
    pub fn mean_only(x: f64, mean: f64) -> Point {
        Point {
            x,
            mean,
            p1: None,
            p99: None,
        }
    }

    /// A point with percentiles, from a summary.
    pub fn summarised(x: f64, s: Summary) -> Point {
        Point {
            x,
            mean: s.mean,
            p1: Some(s.p1),
            p99: Some(s.p99),
        }
    }
}

/// One quantity a figure plots against its x axis.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Measure {
    /// What was measured ("keys per node", "path length").
    pub name: String,
    /// One point per x.
    pub points: Vec<Point>,
}

/// A probability density, as the papers' (b) panels show.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Pdf {
    /// What it is the density of, and where ("keys per node, K = 500000").
    pub label: String,
    /// (value, probability) for every value from 0 to the largest seen.
    pub points: Vec<(u64, f64)>,
}

/// An experiment's result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Figure {
    /// The subcommand that made it (`load-balance`, ...).
    pub experiment: String,
    /// The paper's figure or table it reproduces.
    pub reproduces: String,
    /// What the x axis is.
    pub x_label: String,
    /// The measured quantities.
    pub measures: Vec<Measure>,
    /// A density, where the paper shows one.
    pub pdf: Option<Pdf>,
    /// The setup, flag by flag, so a reader can run it again.
    pub setup: Vec<(String, String)>,
}

/// Progress of a long run: `done` of `total` units of work (lookups,
/// mostly).
pub type Progress<'a> = &'a mut dyn FnMut(u64, u64);

/// Why an experiment could not run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExperimentError {
    /// A setting makes no sense (no nodes, a fraction above 1).
    #[error("{0}")]
    Setup(String),
    /// The simulated world refused something (ids collided on a narrow
    /// ring, ...).
    #[error("the simulation failed: {0}")]
    World(String),
}

impl From<crate::sim::WorldError> for ExperimentError {
    fn from(e: crate::sim::WorldError) -> Self {
        ExperimentError::World(e.to_string())
    }
}

/// Runs `measure(x, i, progress)` at every `x` of a sweep, each worth
/// `per_x` units of work, reporting progress over the whole sweep.
pub fn sweep<T>(
    xs: &[f64],
    per_x: u64,
    progress: Progress,
    mut measure: impl FnMut(f64, u64, &mut dyn FnMut(u64)) -> Result<T, ExperimentError>,
) -> Result<Vec<(f64, T)>, ExperimentError> {
    let total = per_x * xs.len() as u64;
    let mut done = 0;
    let mut out = Vec::with_capacity(xs.len());
    for (i, &x) in xs.iter().enumerate() {
        let o = measure(x, i as u64, &mut |k| {
            done += k;
            progress(done, total)
        })?;
        out.push((x, o));
    }
    Ok(out)
}

/// A ring's nodes as (name, id, real node index), sorted by id.
pub type RingIds = Vec<(String, Id, u32)>;

/// The names and ids of a ring's nodes for one seed: node `i` of seed `s` is
/// named `s{s}-n{i}`, its id the hash of the name (with virtual nodes,
/// `s{s}-n{i}#{v}`, as `dht init --vnodes` names them). Returns
/// (name, id, real node index), sorted by id.
pub fn ring_ids(bits: Bits, seed: u64, nodes: usize, vnodes: usize) -> RingIds {
    let mut out: Vec<(String, Id, u32)> = (0..nodes)
        .flat_map(|i| {
            (0..vnodes).map(move |v| {
                let name = if vnodes == 1 {
                    format!("s{seed}-n{i}")
                } else {
                    format!("s{seed}-n{i}#{v}")
                };
                (name, i as u32)
            })
        })
        .map(|(name, i)| {
            let id = bits.hash(&name);
            (name, id, i)
        })
        .collect();
    out.sort_unstable_by_key(|e| e.1);
    out.dedup_by_key(|e| e.1);
    out
}

/// A converged ring of `nodes` (times `vnodes`) for `seed` with `replicas`
/// copies of each key and successor lists of `successors` (at least the
/// replicas), built directly (no messages), and the ring's
/// (name, id, real node) triples from [`ring_ids`].
pub fn converged_ring(
    bits: Bits,
    seed: u64,
    nodes: usize,
    vnodes: usize,
    replicas: u8,
    successors: u8,
) -> Result<(crate::sim::World, RingIds), ExperimentError> {
    let ids = ring_ids(bits, seed, nodes, vnodes);
    let params = crate::chord::Params::of(bits, replicas).with_successors(successors);
    let world = crate::sim::World::bulk(
        params,
        seed,
        ids.iter().map(|(name, id, _)| (name.clone(), Some(*id))),
    )?;
    Ok((world, ids))
}

/// A list flag's value as the command line takes it: `1,2,5`.
pub fn flag_list<T: ToString>(values: &[T]) -> String {
    values
        .iter()
        .map(T::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// The id of key `j` of seed `s`: the hash of `s{s}-k{j}`.
pub fn key_id(bits: Bits, seed: u64, j: u64) -> Id {
    bits.hash(&key_text(seed, j))
}

/// The text of key `j` of seed `s`: `s{s}-k{j}`.
pub fn key_text(seed: u64, j: u64) -> String {
    format!("s{seed}-k{j}")
}

/// Any experiment's setup, for running several in one go.
#[derive(Debug, Clone, PartialEq)]
pub enum Setup {
    /// Keys per node (Fig. 8, or Fig. 9 with virtual nodes).
    LoadBalance(load_balance::Setup),
    /// Path length (Fig. 10).
    PathLength(path_length::Setup),
    /// Lookups through dead nodes (Table II).
    Timeouts(timeouts::Setup),
    /// Keys lost to simultaneous failures (Fig. 11).
    Failures(failures::Setup),
    /// Lookups during churn, in virtual time (Table III).
    Churn(churn::Setup),
}

impl Setup {
    /// The experiment's subcommand name.
    pub fn name(&self) -> &'static str {
        match self {
            Setup::LoadBalance(_) => "load-balance",
            Setup::PathLength(_) => "path-length",
            Setup::Timeouts(_) => "timeouts",
            Setup::Failures(_) => "failures",
            Setup::Churn(_) => "churn",
        }
    }

    /// Runs it.
    pub fn run(&self, progress: Progress) -> Result<Figure, ExperimentError> {
        match self {
            Setup::LoadBalance(s) => load_balance::run(s, progress),
            Setup::PathLength(s) => path_length::run(s, progress),
            Setup::Timeouts(s) => timeouts::run(s, progress),
            Setup::Failures(s) => failures::run(s, progress),
            Setup::Churn(s) => churn::run(s, progress),
        }
    }
}

/// The paper's experiments, each under a short name (`fig8`, `fig9`,
/// `fig10`, `fig11`, `table2`, `table3`), at the paper's sizes times `scale` (node and key
/// counts; 1 is the paper's setup).
pub fn paper_runs(scale: f64, seed: u64) -> Vec<(&'static str, Setup)> {
    let n = |x: usize| ((x as f64 * scale).round() as usize).max(2);
    let k = |x: u64| ((x as f64 * scale).round() as u64).max(1);
    let lb = load_balance::Setup::default();
    let fig8 = load_balance::Setup {
        nodes: n(lb.nodes),
        keys: lb.keys.iter().map(|&x| k(x)).collect(),
        pdf_at: k(lb.pdf_at),
        seed,
        ..lb.clone()
    };
    let fig9 = load_balance::Setup {
        keys: vec![k(1_000_000)],
        vnodes: vec![1, 2, 5, 10, 20],
        seeds: 1,
        ..fig8.clone()
    };
    let pl = path_length::Setup::default();
    // Fig. 10's sizes are 2^3 … 2^14; a smaller scale drops the largest.
    let sizes: Vec<usize> = pl
        .sizes
        .iter()
        .copied()
        .filter(|&s| s as f64 <= (pl.sizes[pl.sizes.len() - 1] as f64 * scale).max(8.0))
        .collect();
    let fig10 = path_length::Setup {
        pdf_at: if sizes.contains(&pl.pdf_at) {
            pl.pdf_at
        } else {
            sizes[sizes.len() - 1]
        },
        sizes,
        seed,
        ..pl
    };
    let to = timeouts::Setup::default();
    let table2 = timeouts::Setup {
        nodes: n(to.nodes).max(usize::from(to.successors) + 1),
        lookups: k(to.lookups),
        seed,
        ..to
    };
    let fa = failures::Setup::default();
    let fig11 = failures::Setup {
        nodes: n(fa.nodes),
        keys: k(fa.keys),
        seed,
        ..fa
    };
    let ch = churn::Setup::default();
    let table3 = churn::Setup {
        nodes: n(ch.nodes).max(usize::from(ch.successors) + 2),
        lookups: k(ch.lookups),
        seed,
        ..ch
    };
    vec![
        ("fig8", Setup::LoadBalance(fig8)),
        ("fig9", Setup::LoadBalance(fig9)),
        ("fig10", Setup::PathLength(fig10)),
        ("fig11", Setup::Failures(fig11)),
        ("table2", Setup::Timeouts(table2)),
        ("table3", Setup::Churn(table3)),
    ]
}
