//! Maintenance: each node's periodic procedures (stabilize,
//! check_predecessor, fix_fingers, replica upkeep), rounds of them in an
//! order the generator draws, and running rounds until the ring converges.

use super::{World, WorldError};
use crate::chord::ops;
use crate::chord::{NodeId, OpError};
use crate::sim::network::Network;
use rand::Rng;
use rand::seq::SliceRandom;

/// A protocol procedure run as one node.
type Procedure = fn(&mut Network, NodeId) -> Result<(), OpError>;

/// A node's periodic maintenance, in the order it runs.
const FULL_UPKEEP: [Procedure; 4] = [
    ops::stabilize,
    ops::check_predecessor,
    ops::fix_fingers,
    ops::replicate,
];

/// Counters of one maintenance round.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RoundStats {
    /// Procedures that failed (a node with no live successor, a lookup that
    /// could not finish); the ring may still heal in later rounds.
    pub failures: usize,
    /// Messages sent during the round.
    pub messages: u64,
}

impl World {
    /// One node's periodic maintenance: stabilize, check_predecessor,
    /// fix_fingers, replica upkeep. Returns how many of them failed.
    pub fn maintain(&mut self, id: NodeId) -> usize {
        self.maintain_with(id, &FULL_UPKEEP)
    }

    /// Runs `steps` at one node; returns how many failed.
    fn maintain_with(&mut self, id: NodeId, steps: &[Procedure]) -> usize {
        let mut failures = 0;
        for &step in steps {
            if !self.net.contains(id) {
                break;
            }
            let res = step(&mut self.net, id);
            if let Err(e) = res {
                tracing::debug!(node = %self.name(id), error = %e, "maintenance step failed");
                failures += 1;
            }
            self.sync_crashes();
        }
        failures
    }

    /// One maintenance round: every live node maintains once, in an order
    /// drawn from the generator.
    pub fn round(&mut self) -> RoundStats {
        self.round_with(&FULL_UPKEEP)
    }

    /// A round of routing upkeep only: stabilize, check_predecessor and
    /// fix_fingers at every live node, no replica upkeep. What a bulk load
    /// runs between records: each put writes its replicas itself, so the
    /// replica upkeep (pushes on neighbourhood change, anti-entropy digests
    /// of whole ranges, garbage collection) would only re-read data the
    /// load just wrote; the load ends with one full [`World::round`].
    pub fn routing_round(&mut self) -> RoundStats {
        self.round_with(&FULL_UPKEEP[..3])
    }

    fn round_with(&mut self, steps: &[Procedure]) -> RoundStats {
        self.begin_op();
        let before = self.net.stats().messages;
        let mut order: Vec<NodeId> = self.members.clone();
        order.shuffle(&mut self.rng);
        let mut failures = 0;
        for id in order {
            failures += self.maintain_with(id, steps);
        }
        RoundStats {
            failures,
            messages: self.net.stats().messages - before,
        }
    }

    /// One maintenance procedure at one node, both chosen by the generator:
    /// the finest interleaving the property tests explore.
    pub fn random_step(&mut self) {
        let Ok(id) = self.pick() else { return };
        let r = self.rng.random_range(0..4);
        let _ = match r {
            0 => ops::stabilize(&mut self.net, id),
            1 => ops::check_predecessor(&mut self.net, id),
            2 => ops::fix_fingers(&mut self.net, id),
            _ => ops::replicate(&mut self.net, id),
        };
        self.sync_crashes();
    }

    /// Runs rounds until every invariant, converged ones included, holds.
    /// Returns the number of rounds run.
    pub fn converge(&mut self, max_rounds: usize) -> Result<usize, WorldError> {
        self.converge_with(max_rounds, |_| {})
    }

    /// [`World::converge`], calling `before_round` with the number of each
    /// round about to run (from 1), for progress on a big ring.
    pub fn converge_with(
        &mut self,
        max_rounds: usize,
        mut before_round: impl FnMut(usize),
    ) -> Result<usize, WorldError> {
        let mut rounds = 0;
        loop {
            let v = self.check();
            let Some(first) = v.first() else {
                return Ok(rounds);
            };
            if rounds == max_rounds {
                return Err(WorldError::NotConverged {
                    rounds,
                    first: self.describe(first),
                });
            }
            rounds += 1;
            before_round(rounds);
            self.round();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chord::Params;

    #[test]
    fn converge_counts_each_round_before_it_runs_and_stops_at_the_limit() {
        let mut w = World::new(Params::new(16, 2), 7);
        for i in 0..6 {
            w.join(&format!("n{i}"), None, None).unwrap();
        }
        let mut seen = Vec::new();
        let rounds = w.converge_with(100, |i| seen.push(i)).unwrap();
        assert!(rounds > 0);
        assert_eq!(seen, (1..=rounds).collect::<Vec<_>>());
        assert_eq!(w.converge(100).unwrap(), 0, "a stable ring needs no round");

        w.join("late", None, None).unwrap();
        let mut seen = Vec::new();
        let e = w.converge_with(0, |i| seen.push(i)).unwrap_err();
        assert!(
            matches!(e, WorldError::NotConverged { rounds: 0, .. }),
            "{e}"
        );
        assert!(seen.is_empty());
    }
}
