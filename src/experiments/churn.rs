//! Lookups during churn (ToN Table III), in virtual time: a discrete-event
//! scheduler (a priority queue of timed events, one seeded generator)
//! drives the protocol code. From 1,000 nodes with successor lists of 20,
//! lookups arrive as a Poisson process at 1 per second, joins and graceful
//! leaves each as a Poisson process at rate R, and every node runs its
//! maintenance (stabilize, check_predecessor, one run of fix_fingers) at
//! intervals drawn uniformly from [15, 45] s. Lookups are not retried; one
//! fails when it errs or answers a node other than the key's successor
//! among the members at that moment.
//!
//! Each event runs whole at its time: a lookup does not interleave with
//! the churn around it. Message delays (exponential, mean 50 ms; a request
//! to a dead node costs the 500 ms timeout) give each lookup its latency.

use super::{
    ExperimentError, Figure, Histogram, Measure, Point, Progress, converged_ring, flag_list,
    key_id, sweep,
};
use crate::chord::spec::Ideal;
use crate::chord::{Bits, NodeId};
use crate::sim::World;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// The setup; [`Setup::default`] is the paper's.
#[derive(Debug, Clone, PartialEq)]
pub struct Setup {
    /// Nodes at the start.
    pub nodes: usize,
    /// Successor-list length.
    pub successors: u8,
    /// Join rates R (per second); leaves come at the same rate.
    pub rates: Vec<f64>,
    /// Lookups per rate (arriving at `lookup_rate` per second).
    pub lookups: u64,
    /// Lookups per second.
    pub lookup_rate: f64,
    /// Each node maintains at intervals uniform in this range (seconds).
    pub stabilize: (f64, f64),
    /// Mean one-way message delay (seconds).
    pub delay: f64,
    /// What a request to a dead node costs before it counts as failed
    /// (seconds).
    pub timeout: f64,
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
            rates: (1..=8).map(|i| f64::from(i) * 0.05).collect(),
            lookups: 10_000,
            lookup_rate: 1.0,
            stabilize: (15.0, 45.0),
            delay: 0.05,
            timeout: 0.5,
            seed: 1,
            bits: Bits::MAX,
        }
    }
}

/// What happens at a moment of virtual time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    /// A lookup arrives at a random node.
    Lookup,
    /// A new node joins through a random member.
    Join,
    /// A random member leaves gracefully.
    Leave,
    /// This node runs its maintenance, if still a member.
    Maintain(NodeId),
}

/// Virtual time in microseconds (an integer, so the queue orders exactly).
type Micros = u64;

fn micros(seconds: f64) -> Micros {
    (seconds * 1e6).round() as Micros
}

/// The seeded scheduler: events ordered by time, then by the order they
/// were scheduled in.
struct Scheduler {
    queue: BinaryHeap<Reverse<(Micros, u64, Event)>>,
    seq: u64,
    now: Micros,
    rng: ChaCha8Rng,
}

impl Scheduler {
    fn at(&mut self, t: Micros, e: Event) {
        self.seq += 1;
        self.queue.push(Reverse((t, self.seq, e)));
    }

    /// Schedules `e` after an exponential gap of mean 1/`rate` seconds.
    fn poisson(&mut self, rate: f64, e: Event) {
        let u: f64 = self.rng.random_range(f64::EPSILON..1.0);
        let gap = -u.ln() / rate;
        self.at(self.now + micros(gap), e);
    }

    fn uniform(&mut self, (lo, hi): (f64, f64), e: Event) {
        let gap = self.rng.random_range(lo..=hi);
        self.at(self.now + micros(gap), e);
    }

    fn exponential(&mut self, mean: f64) -> f64 {
        let u: f64 = self.rng.random_range(f64::EPSILON..1.0);
        -u.ln() * mean
    }

    fn next(&mut self) -> Option<Event> {
        let Reverse((t, _, e)) = self.queue.pop()?;
        self.now = t;
        Some(e)
    }
}

/// What the lookups at one rate measured.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    /// Path lengths of the lookups that succeeded.
    pub hops: Histogram,
    /// Timeouts per lookup.
    pub timeouts: Histogram,
    /// Latency per lookup, in milliseconds.
    pub latency_ms: Histogram,
    /// Lookups that failed.
    pub failed: u64,
    /// Of those, lookups whose key belongs to a newcomer its predecessor
    /// does not point to yet: they reach the previous owner.
    pub unlinked: u64,
    /// Lookups run.
    pub lookups: u64,
    /// Joins and leaves that happened.
    pub joins: u64,
    /// Leaves.
    pub leaves: u64,
    /// Virtual seconds simulated.
    pub seconds: f64,
}

/// Runs the lookups at join and leave rate `rate`.
pub fn measure(
    s: &Setup,
    rate: f64,
    round: u64,
    progress: &mut dyn FnMut(u64),
) -> Result<Outcome, ExperimentError> {
    let (mut world, _) = converged_ring(s.bits, s.seed, s.nodes, 1, 1, s.successors)?;
    let mut sched = Scheduler {
        queue: BinaryHeap::new(),
        seq: 0,
        now: 0,
        rng: ChaCha8Rng::seed_from_u64(s.seed.wrapping_add(round << 32)),
    };
    for &id in world.member_ids().to_vec().iter() {
        sched.uniform(s.stabilize, Event::Maintain(id));
    }
    sched.poisson(s.lookup_rate, Event::Lookup);
    if rate > 0.0 {
        sched.poisson(rate, Event::Join);
        sched.poisson(rate, Event::Leave);
    }
    let mut out = Outcome::default();
    let mut next_name = 0u64;
    let salt = s.seed ^ (round << 40) ^ 0x6368_7572;
    while out.lookups < s.lookups {
        let Some(event) = sched.next() else { break };
        match event {
            Event::Maintain(id) => {
                if world.node(id).is_some() {
                    world.maintain(id);
                    sched.uniform(s.stabilize, Event::Maintain(id));
                }
            }
            Event::Join => {
                let name = format!("s{}-j{round}-{next_name}", s.seed);
                next_name += 1;
                if let Ok((id, _)) = world.join(&name, None, None) {
                    out.joins += 1;
                    sched.uniform(s.stabilize, Event::Maintain(id));
                }
                sched.poisson(rate, Event::Join);
            }
            Event::Leave => {
                // Keep a ring to look things up in.
                if world.len() > usize::from(s.successors) + 1 {
                    let i = sched.rng.random_range(0..world.len());
                    let id = world.member_ids()[i];
                    if world.leave(id).is_ok() {
                        out.leaves += 1;
                    }
                }
                sched.poisson(rate, Event::Leave);
            }
            Event::Lookup => {
                let key = key_id(s.bits, salt, out.lookups);
                let members = world.member_ids();
                let start = members[sched.rng.random_range(0..members.len())];
                let owner = Ideal::new(members, world.params()).successor(key);
                match world.lookup(key, Some(start)) {
                    Ok(l) if l.successor == owner => {
                        out.hops.add(l.hops() as u64);
                        out.timeouts.add(u64::from(l.timeouts));
                        // Each hop is a request and its answer; each
                        // timeout waits out the timer.
                        let mut secs = f64::from(l.timeouts) * s.timeout;
                        for _ in 0..2 * (l.hops() + 1) {
                            secs += sched.exponential(s.delay);
                        }
                        out.latency_ms.add((secs * 1000.0).round() as u64);
                    }
                    Ok(l) => {
                        out.failed += 1;
                        out.timeouts.add(u64::from(l.timeouts));
                        if !linked_in(&world, owner) {
                            out.unlinked += 1;
                        }
                    }
                    Err(_) => out.failed += 1,
                }
                out.lookups += 1;
                if out.lookups % 256 == 0 {
                    progress(256);
                }
                sched.poisson(s.lookup_rate, Event::Lookup);
            }
        }
    }
    progress(out.lookups % 256);
    out.seconds = sched.now as f64 / 1e6;
    Ok(out)
}

/// Whether the member before `n` has `n` as its successor: a newcomer is
/// not linked in until its predecessor stabilizes.
fn linked_in(world: &World, n: NodeId) -> bool {
    Ideal::new(world.member_ids(), world.params())
        .pred(n)
        .and_then(|p| world.node(p))
        .and_then(|p| p.succs.first())
        .is_some_and(|&s| s == n)
}

/// Runs the experiment.
pub fn run(s: &Setup, progress: Progress) -> Result<Figure, ExperimentError> {
    if s.nodes < 2 || s.successors == 0 || s.rates.is_empty() || s.lookups == 0 {
        return Err(ExperimentError::Setup(
            "churn needs at least two nodes, a successor list, a rate and a lookup".into(),
        ));
    }
    if s.rates.iter().any(|r| !(r.is_finite() && *r >= 0.0))
        || !(s.lookup_rate > 0.0 && s.stabilize.0 > 0.0 && s.stabilize.0 <= s.stabilize.1)
    {
        return Err(ExperimentError::Setup(
            "rates must be at least 0, the lookup rate above 0, and the stabilization interval a range of positive seconds".into(),
        ));
    }
    let runs = sweep(&s.rates, s.lookups, progress, |r, i, tally| {
        measure(s, r, i, tally)
    })?;
    let points = |f: &dyn Fn(f64, &Outcome) -> Point| -> Vec<Point> {
        runs.iter().map(|(r, o)| f(*r, o)).collect()
    };
    let per_10k = |n: u64, o: &Outcome| n as f64 * 10_000.0 / o.lookups as f64;
    let path = points(&|r, o| Point::summarised(r, o.hops.summary()));
    let timeouts = points(&|r, o| Point::summarised(r, o.timeouts.summary()));
    let failed = points(&|r, o| Point::mean_only(r, per_10k(o.failed, o)));
    let unlinked = points(&|r, o| Point::mean_only(r, per_10k(o.unlinked, o)));
    let latency = points(&|r, o| {
        let ms = o.latency_ms.summary();
        Point {
            x: r,
            mean: ms.mean / 1000.0,
            p1: Some(ms.p1 / 1000.0),
            p99: Some(ms.p99 / 1000.0),
        }
    });
    Ok(Figure {
        experiment: "churn".into(),
        reproduces: "ToN 2003 Table III".into(),
        x_label: "join and leave rate R (per second)".into(),
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
                name: "failed lookups per 10^4".into(),
                points: failed,
            },
            Measure {
                name: "of which to an unlinked newcomer's keys".into(),
                points: unlinked,
            },
            Measure {
                name: "lookup latency (s)".into(),
                points: latency,
            },
        ],
        pdf: None,
        setup: vec![
            ("nodes".to_owned(), s.nodes.to_string()),
            ("successors".to_owned(), s.successors.to_string()),
            ("rates".to_owned(), flag_list(&s.rates)),
            ("lookups".to_owned(), s.lookups.to_string()),
            ("seed".to_owned(), s.seed.to_string()),
            ("bits".to_owned(), s.bits.to_string()),
        ],
    })
}
