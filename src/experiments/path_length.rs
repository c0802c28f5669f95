//! Path length (SIGCOMM Fig. 10): how many nodes a lookup visits as the
//! ring grows. For each N = 2^3 … 2^14, a converged ring of N nodes and
//! 100·N lookups of random keys, each from a random node; the path length
//! is the number of nodes asked after the start ([`crate::chord::Lookup::hops`]).

use super::{
    ExperimentError, Figure, Histogram, Measure, Pdf, Point, Progress, converged_ring, flag_list,
    key_id,
};
use crate::chord::{Bits, NodeId};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The setup; [`Setup::default`] is the paper's.
#[derive(Debug, Clone, PartialEq)]
pub struct Setup {
    /// Ring sizes N.
    pub sizes: Vec<usize>,
    /// Lookups per node (the paper: 100·N keys).
    pub keys_per_node: u64,
    /// The N whose probability density is reported (Fig. 10b).
    pub pdf_at: usize,
    /// Successor-list length, which `closest_preceding_node` also routes
    /// with (the papers' simulator: 1 unless said).
    pub successors: u8,
    /// The seed of every ring and every choice.
    pub seed: u64,
    /// Identifier width.
    pub bits: Bits,
}

impl Default for Setup {
    fn default() -> Setup {
        Setup {
            sizes: (3..=14).map(|k| 1 << k).collect(),
            keys_per_node: 100,
            pdf_at: 1 << 12,
            successors: 1,
            seed: 1,
            bits: Bits::MAX,
        }
    }
}

/// Lookups sent into the world at once.
const BATCH: u64 = 1 << 15;

/// The hop counts of `lookups` lookups on a converged ring of `nodes`.
pub fn hops(
    bits: Bits,
    successors: u8,
    seed: u64,
    nodes: usize,
    lookups: u64,
    progress: &mut dyn FnMut(u64),
) -> Result<Histogram, ExperimentError> {
    // No keys are stored: one copy, and the successor list the setup says.
    let (mut world, _) = converged_ring(bits, seed, nodes, 1, 1, successors)?;
    let members: Vec<NodeId> = world.member_ids().to_vec();
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ nodes as u64);
    let mut h = Histogram::new();
    let mut j = 0;
    let mut queries = Vec::with_capacity(BATCH as usize);
    while j < lookups {
        let stop = lookups.min(j + BATCH);
        queries.clear();
        queries.extend((j..stop).map(|k| {
            let start = members[rng.random_range(0..members.len())];
            (key_id(bits, seed ^ nodes as u64, k), start)
        }));
        for r in world.lookup_many(&queries) {
            let l = r.map_err(|e| ExperimentError::World(e.to_string()))?;
            h.add(l.hops() as u64);
        }
        progress(stop - j);
        j = stop;
    }
    Ok(h)
}

/// Runs the experiment.
pub fn run(s: &Setup, progress: Progress) -> Result<Figure, ExperimentError> {
    if s.sizes.is_empty() || s.sizes.contains(&0) || s.successors == 0 {
        return Err(ExperimentError::Setup(
            "path-length needs ring sizes of at least one node and a successor list of at least 1"
                .into(),
        ));
    }
    let total: u64 = s
        .sizes
        .iter()
        .chain(std::iter::once(&s.pdf_at).filter(|n| !s.sizes.contains(n)))
        .map(|&n| n as u64 * s.keys_per_node)
        .sum();
    let mut done = 0;
    let mut points = Vec::new();
    let mut pdf = None;
    let mut sizes = s.sizes.clone();
    if !sizes.contains(&s.pdf_at) {
        sizes.push(s.pdf_at);
    }
    for &n in &sizes {
        let h = hops(
            s.bits,
            s.successors,
            s.seed,
            n,
            n as u64 * s.keys_per_node,
            &mut |k| {
                done += k;
                progress(done, total)
            },
        )?;
        if n == s.pdf_at {
            pdf = Some(Pdf {
                label: format!("path length, N = {n}"),
                points: h.pdf(),
            });
        }
        if s.sizes.contains(&n) {
            points.push(Point::summarised(n as f64, h.summary()));
        }
    }
    Ok(Figure {
        experiment: "path-length".into(),
        reproduces: "SIGCOMM 2001 Fig. 10".into(),
        x_label: "nodes N".into(),
        measures: vec![Measure {
            name: "path length".into(),
            points,
        }],
        pdf,
        setup: vec![
            ("sizes".to_owned(), flag_list(&s.sizes)),
            ("keys-per-node".to_owned(), s.keys_per_node.to_string()),
            ("pdf-at".to_owned(), s.pdf_at.to_string()),
            ("successors".to_owned(), s.successors.to_string()),
            ("seed".to_owned(), s.seed.to_string()),
            ("bits".to_owned(), s.bits.to_string()),
        ],
    })
}
