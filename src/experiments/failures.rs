//! Simultaneous failures (SIGCOMM Fig. 11): N = 10^4 nodes hold K = 10^6
//! keys, a fraction p of the nodes fails at once, the ring stabilizes, and
//! then every key is looked up (a `get` from a random live node): the
//! fraction that cannot be found.
//!
//! The keys start on their ideal holders, placed directly as
//! [`World::bulk`] places the routing state; from the failures on, all is
//! protocol: crashes through the network, maintenance rounds until every
//! invariant holds, gets through `find_successor`. With one copy per key
//! (the paper's setup) the failed fraction is the keys lost with their
//! node, about p; with r copies, about p^r (the paper predicts but does not
//! plot it).

use super::{
    ExperimentError, Figure, Measure, Point, Progress, converged_ring, flag_list, key_text, sweep,
};
use crate::chord::spec::Ideal;
use crate::chord::store::Key;
use crate::chord::{Bits, NodeId};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::Value;

/// The setup; [`Setup::default`] is the paper's.
#[derive(Debug, Clone, PartialEq)]
pub struct Setup {
    /// Nodes N before the failures.
    pub nodes: usize,
    /// Keys K stored.
    pub keys: u64,
    /// Fractions p of the nodes that fail.
    pub fractions: Vec<f64>,
    /// Copies of each key r (the paper: 1).
    pub replicas: u8,
    /// Successor-list length (0: 2·⌈log2 N⌉, the ToN paper's rule; the
    /// SIGCOMM paper does not give one).
    pub successors: u8,
    /// Maintenance rounds the ring may take to stabilize.
    pub max_rounds: usize,
    /// The seed of every ring and every choice.
    pub seed: u64,
    /// Identifier width.
    pub bits: Bits,
}

impl Default for Setup {
    fn default() -> Setup {
        Setup {
            nodes: 10_000,
            keys: 1_000_000,
            fractions: (0..=10).map(|i| f64::from(i) / 50.0).collect(),
            replicas: 1,
            successors: 0,
            max_rounds: 200,
            seed: 1,
            bits: Bits::MAX,
        }
    }
}

impl Setup {
    /// The successor-list length this setup uses.
    pub fn list_length(&self) -> u8 {
        if self.successors > 0 {
            return self.successors;
        }
        let log = usize::BITS - self.nodes.saturating_sub(1).leading_zeros();
        (2 * log).clamp(1, 255) as u8
    }
}

/// What one fraction measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Outcome {
    /// Nodes that failed.
    pub dead: usize,
    /// Maintenance rounds until every invariant held again.
    pub rounds: usize,
    /// Gets that found nothing (or failed).
    pub failed: u64,
    /// Gets run.
    pub lookups: u64,
}

/// Fails a fraction `p` of the nodes, stabilizes and looks every key up.
pub fn measure(
    s: &Setup,
    p: f64,
    round: u64,
    progress: &mut dyn FnMut(u64),
) -> Result<Outcome, ExperimentError> {
    let (mut world, _) = converged_ring(s.bits, s.seed, s.nodes, 1, s.replicas, s.list_length())?;
    let params = world.params();
    let members: Vec<NodeId> = world.member_ids().to_vec();
    {
        let ideal = Ideal::new(&members, params);
        for j in 0..s.keys {
            let text = key_text(s.seed, j);
            let key = Key::new(s.bits.hash(&text), text);
            for h in ideal.holders(key.id) {
                let node = world.node_mut(h).expect("a member");
                node.store.insert(key.clone(), Value::Null, 1);
            }
        }
    }
    let mut rng = ChaCha8Rng::seed_from_u64(s.seed.wrapping_add(round << 32));
    let mut order = members.clone();
    order.shuffle(&mut rng);
    let dead = ((p * s.nodes as f64).round() as usize).min(s.nodes.saturating_sub(1));
    for &id in &order[..dead] {
        world.fail(id)?;
    }
    let rounds = world.converge(s.max_rounds)?;
    let live: Vec<NodeId> = world.member_ids().to_vec();
    let mut failed = 0;
    for j in 0..s.keys {
        let start = live[rng.random_range(0..live.len())];
        match world.get(&key_text(s.seed, j), Some(start)) {
            Ok(o) if o.result.is_some() => {}
            _ => failed += 1,
        }
        if j % 4096 == 4095 {
            progress(4096);
        }
    }
    progress(s.keys % 4096);
    Ok(Outcome {
        dead,
        rounds,
        failed,
        lookups: s.keys,
    })
}

/// Runs the experiment.
pub fn run(s: &Setup, progress: Progress) -> Result<Figure, ExperimentError> {
    if s.nodes < 2 || s.keys == 0 || s.fractions.is_empty() || s.replicas == 0 {
        return Err(ExperimentError::Setup(
            "failures needs at least two nodes, one key, one fraction and one copy".into(),
        ));
    }
    if let Some(p) = s.fractions.iter().find(|p| !(0.0..1.0).contains(*p)) {
        return Err(ExperimentError::Setup(format!(
            "failing fraction {p} is not at least 0 and below 1"
        )));
    }
    let runs = sweep(&s.fractions, s.keys, progress, |p, i, tally| {
        measure(s, p, i, tally)
    })?;
    let points = |f: &dyn Fn(f64, &Outcome) -> f64| -> Vec<Point> {
        runs.iter()
            .map(|(p, o)| Point::mean_only(*p, f(*p, o)))
            .collect()
    };
    let failed = points(&|_, o| o.failed as f64 / o.lookups as f64);
    let predicted = points(&|p, _| p.powi(i32::from(s.replicas)));
    let rounds = points(&|_, o| o.rounds as f64);
    Ok(Figure {
        experiment: "failures".into(),
        reproduces: "SIGCOMM 2001 Fig. 11".into(),
        x_label: "failed fraction of nodes p".into(),
        measures: vec![
            Measure {
                name: "failed fraction".into(),
                points: failed,
            },
            Measure {
                name: "p^r (predicted)".into(),
                points: predicted,
            },
            Measure {
                name: "rounds to stabilize".into(),
                points: rounds,
            },
        ],
        pdf: None,
        setup: vec![
            ("nodes".to_owned(), s.nodes.to_string()),
            ("keys".to_owned(), s.keys.to_string()),
            ("p".to_owned(), flag_list(&s.fractions)),
            ("replicas".to_owned(), s.replicas.to_string()),
            ("successors".to_owned(), s.list_length().to_string()),
            ("seed".to_owned(), s.seed.to_string()),
            ("bits".to_owned(), s.bits.to_string()),
        ],
    })
}
