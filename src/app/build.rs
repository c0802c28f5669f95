//! Building a new ring: the names (and optional ids) of its nodes, then the
//! ring itself, through the join protocol or directly in its converged state.

use crate::chord::{Bits, Id, Params};
use crate::sim::{World, WorldError};

/// Rings up to this size are built through the join protocol by default;
/// larger ones are computed converged directly (the same result, without
/// N² messages).
pub const PROTOCOL_BUILD_LIMIT: usize = 256;

/// The most nodes a ring may have: ten million, about 12 GB of memory
/// while a command runs (1.2 KB per node).
pub const MAX_NODES: usize = 10_000_000;

/// Maintenance rounds a protocol build may take to converge.
pub const CONVERGE_LIMIT: usize = 500;

/// Why a ring could not be built. Nothing was written anywhere.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// Zero nodes asked for.
    #[error("a ring needs at least one node (--nodes)")]
    NoNodes,
    /// More nodes than [`MAX_NODES`].
    #[error("a ring may have at most 10,000,000 nodes; {0} were asked for")]
    TooMany(usize),
    /// An explicit id that does not parse or fit.
    #[error("--ids: {given:?} is not an id that fits in {bits} bits")]
    BadId {
        /// The text given.
        given: String,
        /// The ring's width.
        bits: Bits,
    },
    /// A join or the bulk build was refused (a name or id taken twice).
    #[error(transparent)]
    World(#[from] WorldError),
    /// The protocol build did not converge.
    #[error("the new ring did not converge: {0}")]
    NotConverged(WorldError),
}

/// Names and optional explicit ids for a new ring: `node-0` ... for a count,
/// or `N<id>` for each id given (the paper's naming).
pub fn planned_nodes(
    bits: Bits,
    count: usize,
    ids: &[String],
) -> Result<Vec<(String, Option<Id>)>, BuildError> {
    if ids.is_empty() {
        if count == 0 {
            return Err(BuildError::NoNodes);
        }
        if count > MAX_NODES {
            return Err(BuildError::TooMany(count));
        }
        return Ok((0..count).map(|i| (format!("node-{i}"), None)).collect());
    }
    if ids.len() > MAX_NODES {
        return Err(BuildError::TooMany(ids.len()));
    }
    ids.iter()
        .map(|s| {
            let id = bits.parse_id(s).ok_or_else(|| BuildError::BadId {
                given: s.clone(),
                bits,
            })?;
            Ok((format!("N{}", s.trim()), Some(id)))
        })
        .collect()
}

/// How a ring was built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Built {
    /// Through the join protocol, converged after this many rounds.
    Protocol {
        /// Maintenance rounds until every invariant held.
        rounds: usize,
    },
    /// Computed in its converged state.
    Bulk,
}

/// Whether a ring of `n` nodes is built in bulk: `bulk` or `protocol` when
/// the user said so, else by size ([`PROTOCOL_BUILD_LIMIT`]).
pub fn use_bulk(n: usize, bulk: bool, protocol: bool) -> bool {
    bulk || (!protocol && n > PROTOCOL_BUILD_LIMIT)
}

/// Builds a ring: one node, the others joining through it with a maintenance
/// round after each, then rounds until every invariant holds; or, with
/// `bulk`, directly in its converged state.
pub fn build_ring(
    params: Params,
    seed: u64,
    nodes: Vec<(String, Option<Id>)>,
    bulk: bool,
) -> Result<(World, Built), BuildError> {
    if bulk {
        return Ok((World::bulk(params, seed, nodes)?, Built::Bulk));
    }
    let mut w = World::new(params, seed);
    let mut first = None;
    for (name, id) in nodes {
        let (n, _) = w.join(&name, id, first)?;
        first.get_or_insert(n);
        w.round();
    }
    let rounds = w
        .converge(CONVERGE_LIMIT)
        .map_err(BuildError::NotConverged)?;
    Ok((w, Built::Protocol { rounds }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_and_bulk_builds_agree() {
        let params = Params::new(8, 3);
        let nodes = planned_nodes(params.bits, 12, &[]).unwrap();
        let (p, how) = build_ring(params, 1, nodes.clone(), false).unwrap();
        assert!(matches!(how, Built::Protocol { .. }));
        let (b, how) = build_ring(params, 1, nodes, true).unwrap();
        assert_eq!(how, Built::Bulk);
        let ids = |w: &World| w.members().map(|n| n.id()).collect::<Vec<_>>();
        assert_eq!(ids(&p), ids(&b));
        assert!(p.check().is_empty() && b.check().is_empty());
    }

    #[test]
    fn bad_plans_are_refused() {
        let bits = Bits::new(6).unwrap();
        assert!(matches!(
            planned_nodes(bits, 0, &[]),
            Err(BuildError::NoNodes)
        ));
        assert!(matches!(
            planned_nodes(bits, 0, &["64".into()]),
            Err(BuildError::BadId { .. })
        ));
        let paper = planned_nodes(bits, 0, &["1".into(), "8".into()]).unwrap();
        assert_eq!(paper[1].0, "N8");
    }
}
