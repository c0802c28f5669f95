//! Crashing a node on purpose, with the safety policy the command line and
//! the server share: refuse a crash that would lose keys or cut a node off
//! the ring, unless forced, and say exactly which keys a forced crash lost.

use super::members::show_host;
use super::show_node;
use crate::chord::NodeId;
use crate::sim::{World, WorldError};
use std::sync::Arc;

/// Why a crash was refused. Nothing changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The node holds the only live copy of these keys.
    #[error(
        "{node} holds the only live copy of {count} keys ({sample}); crashing it now loses them (run `dht maintain` so replicas catch up, or pass --force)",
        count = keys.len(), sample = sample(keys)
    )]
    SoleCopies {
        /// The node, as people see it.
        node: String,
        /// The keys it alone holds.
        keys: Vec<Arc<str>>,
    },
    /// Zave's failure precondition: another node would have no live
    /// successor left.
    #[error(
        "crashing {node} would leave {victim} with no live successor; run `dht maintain` first, or pass --force"
    )]
    Isolates {
        /// The node, as people see it.
        node: String,
        /// The node that would be cut off.
        victim: String,
    },
    /// The last node: every key would go.
    #[error("{node} is the last node: crashing it loses every key; pass --force to do it anyway")]
    LastNode {
        /// The node, as people see it.
        node: String,
    },
}

/// The first few keys of a list, quoted, for a message.
fn sample(keys: &[Arc<str>]) -> String {
    let mut s: Vec<String> = keys.iter().take(5).map(|k| format!("{k:?}")).collect();
    if keys.len() > 5 {
        s.push("...".into());
    }
    s.join(", ")
}

/// Why crashing the physical node `ids` now is unsafe, if it is: the data
/// precondition first (keys it alone holds), then Zave's pointer
/// precondition, then the last node.
pub fn refusal(world: &World, ids: &[NodeId]) -> Option<Refusal> {
    refusal_given(world, ids, world.sole_copies_of(ids))
}

/// [`refusal`], with the keys `ids` alone hold already known (finding them
/// reads every node's store).
fn refusal_given(world: &World, ids: &[NodeId], keys: Vec<Arc<str>>) -> Option<Refusal> {
    if !keys.is_empty() {
        return Some(Refusal::SoleCopies {
            node: show_host(world, ids),
            keys,
        });
    }
    if let Some(victim) = world.would_isolate_any(ids) {
        return Some(Refusal::Isolates {
            node: show_host(world, ids),
            victim: show_node(world, victim),
        });
    }
    if world.len() == ids.len() {
        return Some(Refusal::LastNode {
            node: show_host(world, ids),
        });
    }
    None
}

/// What a crash did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crashed {
    /// The node, as people see it.
    pub node: String,
    /// Live entries it held (its own keys and replicas).
    pub entries: usize,
    /// Keys whose only live copy it held: lost for good.
    pub lost: Vec<Arc<str>>,
}

/// Why [`crash`] did nothing.
#[derive(Debug, thiserror::Error)]
pub enum CrashError {
    /// The policy refused it; `force` overrides.
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// No such node.
    #[error(transparent)]
    World(#[from] WorldError),
}

/// Crashes the physical node `ids` (all its virtual nodes at once) unless
/// [`refusal`] objects (or `force`), and says what was lost.
pub fn crash(world: &mut World, ids: &[NodeId], force: bool) -> Result<Crashed, CrashError> {
    let lost = world.sole_copies_of(ids);
    if !force && let Some(r) = refusal_given(world, ids, lost.clone()) {
        return Err(r.into());
    }
    let node = show_host(world, ids);
    let entries = world.fail_host(ids)?;
    Ok(Crashed {
        node,
        entries,
        lost,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chord::Params;

    #[test]
    fn refuses_to_lose_the_only_copy_and_names_what_force_loses() {
        // r = 1: every key has one copy.
        let mut w = World::bulk(
            Params::new(16, 1),
            1,
            (0..4).map(|i| (format!("n{i}"), None)),
        )
        .unwrap();
        w.put("k", serde_json::json!(1), None).unwrap();
        let holder = w.nodes().find(|n| n.store.len() == 1).unwrap().id;
        let Err(CrashError::Refused(Refusal::SoleCopies { keys, .. })) =
            crash(&mut w, &[holder], false)
        else {
            panic!("crash of the only copy allowed")
        };
        assert_eq!(keys, vec![Arc::<str>::from("k")]);
        assert_eq!(w.len(), 4, "a refused crash changes nothing");
        let done = crash(&mut w, &[holder], true).unwrap();
        assert_eq!(done.lost, vec![Arc::<str>::from("k")]);
        assert_eq!(w.len(), 3);
    }

    #[test]
    fn refuses_the_last_node() {
        let mut w = World::bulk(Params::new(8, 3), 1, [("a".to_string(), None)]).unwrap();
        let a = w.find("a").unwrap();
        assert!(matches!(
            crash(&mut w, &[a], false),
            Err(CrashError::Refused(Refusal::LastNode { .. }))
        ));
    }
}
