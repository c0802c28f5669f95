//! Load balance (SIGCOMM Fig. 8 and 9): how many keys each node stores.
//!
//! Each seed builds a converged ring of N nodes (ids hashed from names, as
//! `dht` names them) and looks up K random keys from random start nodes;
//! the node each lookup answers stores the key. The key counts are read
//! off at every K of the sweep as the lookups pass it, so K = 10^5 … 10^6
//! costs one run of 10^6 lookups per seed: the first 10^5 keys are the
//! K = 10^5 case, and so on. Percentiles pool the nodes of every seed.
//!
//! With virtual nodes, each real node runs V Chord nodes and its keys are
//! those of all of them (Fig. 9).

use super::{
    ExperimentError, Figure, Histogram, Measure, Pdf, Point, Progress, converged_ring, flag_list,
    key_id,
};
use crate::chord::{Bits, Id, NodeId};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The setup; [`Setup::default`] is the paper's.
#[derive(Debug, Clone, PartialEq)]
pub struct Setup {
    /// Real nodes N.
    pub nodes: usize,
    /// The numbers of keys K to report (Fig. 8's x axis). With virtual
    /// nodes, the largest is used.
    pub keys: Vec<u64>,
    /// Virtual nodes per real node to compare (Fig. 9's x axis); empty for
    /// Fig. 8.
    pub vnodes: Vec<usize>,
    /// Independent rings (seeds `seed`, `seed + 1`, …).
    pub seeds: u64,
    /// The first seed.
    pub seed: u64,
    /// The K whose probability density is reported (Fig. 8b).
    pub pdf_at: u64,
    /// Identifier width.
    pub bits: Bits,
}

impl Default for Setup {
    fn default() -> Setup {
        Setup {
            nodes: 10_000,
            keys: (1..=10).map(|i| i * 100_000).collect(),
            vnodes: Vec::new(),
            seeds: 20,
            seed: 1,
            pdf_at: 500_000,
            bits: Bits::MAX,
        }
    }
}

/// Lookups sent into the world at once.
const BATCH: u64 = 1 << 15;

/// Key counts per real node after the first `checkpoints[i]` keys, for
/// every checkpoint, on the ring of `seed`.
pub fn key_counts(
    bits: Bits,
    seed: u64,
    nodes: usize,
    vnodes: usize,
    checkpoints: &[u64],
    progress: &mut dyn FnMut(u64),
) -> Result<Vec<Vec<u32>>, ExperimentError> {
    let (mut world, ids) = converged_ring(bits, seed, nodes, vnodes, 1, 1)?;
    let members: Vec<NodeId> = world.member_ids().to_vec();
    let owner_of = |id: Id| -> usize {
        let i = members
            .binary_search_by_key(&id, |m| m.id())
            .expect("a lookup answers a member");
        ids[i].2 as usize
    };
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut counts = vec![0u32; nodes];
    let mut snapshots = std::collections::BTreeMap::new();
    snapshots.insert(0, counts.clone());
    let mut stops: Vec<u64> = checkpoints.to_vec();
    stops.sort_unstable();
    stops.dedup();
    let mut j = 0u64;
    let mut queries = Vec::with_capacity(BATCH as usize);
    for &c in &stops {
        while j < c {
            let stop = c.min(j + BATCH);
            queries.clear();
            queries.extend((j..stop).map(|k| {
                let start = members[rng.random_range(0..members.len())];
                (key_id(bits, seed, k), start)
            }));
            for r in world.lookup_many(&queries) {
                let l = r.map_err(|e| ExperimentError::World(e.to_string()))?;
                counts[owner_of(l.successor.id())] += 1;
            }
            progress(stop - j);
            j = stop;
        }
        snapshots.insert(c, counts.clone());
    }
    Ok(checkpoints.iter().map(|c| snapshots[c].clone()).collect())
}

/// Runs the experiment.
pub fn run(s: &Setup, progress: Progress) -> Result<Figure, ExperimentError> {
    if s.nodes == 0 || s.keys.is_empty() || s.seeds == 0 {
        return Err(ExperimentError::Setup(
            "load-balance needs at least one node, one K and one seed".into(),
        ));
    }
    if s.vnodes.contains(&0) {
        return Err(ExperimentError::Setup(
            "--vnodes counts must be at least 1".into(),
        ));
    }
    let mut setup = vec![
        ("nodes".to_owned(), s.nodes.to_string()),
        ("seeds".to_owned(), s.seeds.to_string()),
        ("seed".to_owned(), s.seed.to_string()),
        ("bits".to_owned(), s.bits.to_string()),
    ];
    if s.vnodes.is_empty() {
        run_keys(s, setup, progress)
    } else {
        let k = *s.keys.iter().max().expect("not empty");
        setup.push(("keys".to_owned(), k.to_string()));
        let total = s.seeds * k * s.vnodes.len() as u64;
        let mut done = 0;
        let mut points = Vec::new();
        for &v in &s.vnodes {
            let mut h = Histogram::new();
            for seed in s.seed..s.seed + s.seeds {
                let counts = key_counts(s.bits, seed, s.nodes, v, &[k], &mut |n| {
                    done += n;
                    progress(done, total)
                })?;
                counts[0].iter().for_each(|&c| h.add(u64::from(c)));
            }
            points.push(Point::summarised(v as f64, h.summary()));
        }
        setup.push(("vnodes".to_owned(), flag_list(&s.vnodes)));
        Ok(Figure {
            experiment: "load-balance".into(),
            reproduces: "SIGCOMM 2001 Fig. 9".into(),
            x_label: "virtual nodes per real node".into(),
            measures: vec![Measure {
                name: "keys per real node".into(),
                points,
            }],
            pdf: None,
            setup,
        })
    }
}

/// Fig. 8: keys per node for each K, and the density at `pdf_at`.
fn run_keys(
    s: &Setup,
    mut setup: Vec<(String, String)>,
    progress: Progress,
) -> Result<Figure, ExperimentError> {
    let mut checkpoints = s.keys.clone();
    checkpoints.push(s.pdf_at);
    let total = s.seeds * checkpoints.iter().copied().max().unwrap_or(0);
    let mut hists = vec![Histogram::new(); checkpoints.len()];
    let mut done = 0;
    for seed in s.seed..s.seed + s.seeds {
        let counts = key_counts(s.bits, seed, s.nodes, 1, &checkpoints, &mut |n| {
            done += n;
            progress(done, total)
        })?;
        for (h, c) in hists.iter_mut().zip(&counts) {
            c.iter().for_each(|&k| h.add(u64::from(k)));
        }
    }
    let pdf = hists.pop().expect("pdf_at was pushed");
    setup.push(("keys".to_owned(), flag_list(&s.keys)));
    setup.push(("pdf-at".to_owned(), s.pdf_at.to_string()));
    Ok(Figure {
        experiment: "load-balance".into(),
        reproduces: "SIGCOMM 2001 Fig. 8".into(),
        x_label: "keys K".into(),
        measures: vec![Measure {
            name: "keys per node".into(),
            points: s
                .keys
                .iter()
                .zip(&hists)
                .map(|(&k, h)| Point::summarised(k as f64, h.summary()))
                .collect(),
        }],
        pdf: Some(Pdf {
            label: format!("keys per node, K = {}", s.pdf_at),
            points: pdf.pdf(),
        }),
        setup,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_sum_to_k_and_grow_with_it() {
        let bits = Bits::new(32).unwrap();
        let c = key_counts(bits, 7, 50, 1, &[300, 0, 1000, 300], &mut |_| {}).unwrap();
        let sums: Vec<u64> = c
            .iter()
            .map(|v| v.iter().map(|&x| u64::from(x)).sum())
            .collect();
        assert_eq!(sums, [300, 0, 1000, 300]);
        assert!(c[0].iter().zip(&c[2]).all(|(a, b)| a <= b));
        // Virtual nodes: counts per real node, still summing to K.
        let v = key_counts(bits, 7, 50, 5, &[1000], &mut |_| {}).unwrap();
        assert_eq!(v[0].len(), 50);
        assert_eq!(v[0].iter().map(|&x| u64::from(x)).sum::<u64>(), 1000);
    }
}
