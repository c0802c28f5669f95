//! Lookups through a ring with dead nodes in it (ToN Table II): N = 1,000
//! nodes with successor lists of 20, each node fails with probability p at
//! once, no stabilization runs afterwards (fingers to dead nodes stay),
//! then 10^4 lookups from random live nodes. Path length and timeouts
//! (requests sent to dead nodes, routed around) per lookup; every lookup
//! must still find the live successor of its key.

use super::{
    ExperimentError, Figure, Histogram, Measure, Point, Progress, converged_ring, flag_list,
    key_id, sweep,
};
use crate::chord::spec::Ideal;
use crate::chord::{Bits, Id, NodeId};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The setup; [`Setup::default`] is the paper's.
#[derive(Debug, Clone, PartialEq)]
pub struct Setup {
    /// Nodes N before the failures.
    pub nodes: usize,
    /// Successor-list length r.
    pub successors: u8,
    /// Failure probabilities p.
    pub probabilities: Vec<f64>,
    /// Lookups after the failures.
    pub lookups: u64,
    /// The seed of every ring and every choice.
    pub seed: u64,
    /// Identifier width.
    pub bits: Bits,
}

impl Default for Setup {
    fn default() -> Setup {
        Setup {
            nodes: 1_000,
            successors: 20,
            probabilities: (0..=5).map(|i| f64::from(i) / 10.0).collect(),
            lookups: 10_000,
            seed: 1,
            bits: Bits::MAX,
        }
    }
}

/// What the lookups at one p measured.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Path lengths.
    pub hops: Histogram,
    /// Timeouts per lookup.
    pub timeouts: Histogram,
    /// Lookups that failed or answered a node other than the key's live
    /// successor.
    pub failed: u64,
    /// Nodes that failed.
    pub dead: usize,
}

/// Fails each node with probability `p` and runs the lookups.
pub fn measure(
    s: &Setup,
    p: f64,
    round: u64,
    progress: &mut dyn FnMut(u64),
) -> Result<Outcome, ExperimentError> {
    // No keys are stored: one copy, and the successor list the setup says.
    let (mut world, _) = converged_ring(s.bits, s.seed, s.nodes, 1, 1, s.successors)?;
    let mut rng = ChaCha8Rng::seed_from_u64(s.seed.wrapping_add(round << 32));
    let all: Vec<NodeId> = world.member_ids().to_vec();
    let mut dead = 0;
    for id in all {
        // Keep one node alive whatever p is: a ring of none has no lookups.
        if rng.random::<f64>() < p && world.len() > 1 {
            world.fail(id)?;
            dead += 1;
        }
    }
    let live: Vec<NodeId> = world.member_ids().to_vec();
    let ideal = Ideal::new(&live, world.params());
    let mut out = Outcome {
        dead,
        ..Outcome::default()
    };
    let salt = s.seed ^ (round << 40) ^ 0x7469_6d65;
    let queries: Vec<(Id, NodeId)> = (0..s.lookups)
        .map(|j| {
            (
                key_id(s.bits, salt, j),
                live[rng.random_range(0..live.len())],
            )
        })
        .collect();
    for chunk in queries.chunks(1 << 12) {
        for (r, &(key, _)) in world.lookup_many(chunk).into_iter().zip(chunk) {
            match r {
                Ok(l) if l.successor == ideal.successor(key) => {
                    out.hops.add(l.hops() as u64);
                    out.timeouts.add(u64::from(l.timeouts));
                }
                _ => out.failed += 1,
            }
        }
        progress(chunk.len() as u64);
    }
    Ok(out)
}

/// Runs the experiment.
pub fn run(s: &Setup, progress: Progress) -> Result<Figure, ExperimentError> {
    if s.nodes == 0 || s.successors == 0 || s.probabilities.is_empty() {
        return Err(ExperimentError::Setup(
            "timeouts needs nodes, a successor list of at least 1 and a probability".into(),
        ));
    }
    if let Some(p) = s.probabilities.iter().find(|p| !(0.0..=1.0).contains(*p)) {
        return Err(ExperimentError::Setup(format!(
            "failure probability {p} is not between 0 and 1"
        )));
    }
    let runs = sweep(&s.probabilities, s.lookups, progress, |p, i, tally| {
        measure(s, p, i, tally)
    })?;
    let path = runs
        .iter()
        .map(|(p, o)| Point::summarised(*p, o.hops.summary()))
        .collect();
    let timeouts = runs
        .iter()
        .map(|(p, o)| Point::summarised(*p, o.timeouts.summary()))
        .collect();
    let failed = runs
        .iter()
        .map(|(p, o)| Point::mean_only(*p, o.failed as f64))
        .collect();
    Ok(Figure {
        experiment: "timeouts".into(),
        reproduces: "ToN 2003 Table II".into(),
        x_label: "failure probability p".into(),
        measures: vec![
            Measure {
                name: "path length".into(),
                points: path,
            },
            Measure {
                name: "timeouts".into(),
                points: timeouts,
            },
            Measure {
                name: "failed lookups".into(),
                points: failed,
            },
        ],
        pdf: None,
        setup: vec![
            ("nodes".to_owned(), s.nodes.to_string()),
            ("successors".to_owned(), s.successors.to_string()),
            ("p".to_owned(), flag_list(&s.probabilities)),
            ("lookups".to_owned(), s.lookups.to_string()),
            ("seed".to_owned(), s.seed.to_string()),
            ("bits".to_owned(), s.bits.to_string()),
        ],
    })
}
