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
    /// Explicit ids on a ring with virtual nodes.
    #[error(
        "--ids places one node at each id; with virtual nodes a node's positions are the hashes of NAME#0 … NAME#V-1"
    )]
    IdsWithVnodes,
    /// A join or the bulk build was refused (a name or id taken twice).
    #[error(transparent)]
    World(#[from] WorldError),
    /// The protocol build did not converge.
    #[error("the new ring did not converge: {0}")]
    NotConverged(WorldError),
}

/// Names and optional explicit ids for a new ring: `node-0` ... for a count,
/// or `N<id>` for each id given (the paper's naming).
///
/// With virtual nodes these are the physical nodes, and the ring has V
/// times as many Chord nodes (at most [`MAX_NODES`] in all); explicit ids
/// are refused, since a virtual node's position is the hash of its name.
pub fn planned_nodes(
    params: Params,
    count: usize,
    ids: &[String],
) -> Result<Vec<(String, Option<Id>)>, BuildError> {
    let bits = params.bits;
    if params.has_vnodes() && !ids.is_empty() {
        return Err(BuildError::IdsWithVnodes);
    }
    if ids.is_empty() {
        if count == 0 {
            return Err(BuildError::NoNodes);
        }
        if count.saturating_mul(params.v() as usize) > MAX_NODES {
            return Err(BuildError::TooMany(
                count.saturating_mul(params.v() as usize),
            ));
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

/// A new ring's size in words: "8 nodes", or with virtual nodes "8
/// physical nodes of 4 virtual nodes each (32 Chord nodes)".
pub fn size_in_words(params: Params, physical: usize) -> String {
    match params.v() {
        1 => format!("{physical} nodes"),
        v => format!(
            "{physical} physical nodes of {v} virtual nodes each ({} Chord nodes)",
            physical * v as usize
        ),
    }
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
        // Virtual nodes in host order take consecutive incarnations: each
        // host's V nodes one block, as `World::join_host` gives them.
        let v = params.v();
        let all = nodes.into_iter().flat_map(|(name, id)| match v {
            1 => vec![(name, id)],
            _ => (0..v)
                .map(|i| (World::vnode_name(&name, i), None))
                .collect(),
        });
        return Ok((World::bulk(params, seed, all)?, Built::Bulk));
    }
    let mut w = World::new(params, seed);
    let mut first = None;
    for (name, id) in nodes {
        let joined = match id {
            Some(id) => vec![w.join(&name, Some(id), first)?],
            None => w.join_host(&name, first)?,
        };
        first.get_or_insert(joined[0].0);
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
        for params in [Params::new(8, 3), Params::new(20, 2).with_vnodes(3)] {
            let nodes = planned_nodes(params, 12, &[]).unwrap();
            let (p, how) = build_ring(params, 1, nodes.clone(), false).unwrap();
            assert!(matches!(how, Built::Protocol { .. }));
            let (b, how) = build_ring(params, 1, nodes, true).unwrap();
            assert_eq!(how, Built::Bulk);
            // The same addresses, hosts included.
            let ids = |w: &World| w.members().collect::<Vec<_>>();
            assert_eq!(ids(&p), ids(&b));
            assert_eq!(p.len(), 12 * params.v() as usize);
            assert!(p.check().is_empty(), "{:?}", p.check());
            assert!(b.check().is_empty(), "{:?}", b.check());
        }
    }

    #[test]
    fn bad_plans_are_refused() {
        let params = Params::new(6, 3);
        assert!(matches!(
            planned_nodes(params, 0, &[]),
            Err(BuildError::NoNodes)
        ));
        assert!(matches!(
            planned_nodes(params, 0, &["64".into()]),
            Err(BuildError::BadId { .. })
        ));
        let paper = planned_nodes(params, 0, &["1".into(), "8".into()]).unwrap();
        assert!(matches!(
            planned_nodes(params.with_vnodes(2), 0, &["1".into()]),
            Err(BuildError::IdsWithVnodes)
        ));
        assert_eq!(paper[1].0, "N8");
    }
}
