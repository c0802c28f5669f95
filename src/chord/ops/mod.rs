//! The procedures a node runs on its own initiative: join, the periodic
//! maintenance (stabilize, check_predecessor, fix_fingers, replica upkeep),
//! graceful leave, and the client operations put/get/delete. Lookup itself
//! is [`crate::chord::lookup`].
//!
//! Each procedure runs *as* one node: it reads and changes that node's state
//! through [`Transport::local`] and reaches every other node only through
//! [`Transport::call`]. There is no clock, randomness or I/O here; the
//! simulator (or, later, a real network driver) decides when each procedure
//! runs and whether a message arrives. Each doc says which version of Chord
//! it follows: the paper's (Stoica et al., ToN 2003) or Zave's correction
//! ("Reasoning about identifier spaces", TSE 2017).

mod client;
mod join;
mod leave;
mod maintain;
mod replicate;

pub use client::{Outcome, delete, get, put};
pub use join::join;
pub use leave::leave;
pub use maintain::{check_predecessor, fix_fingers, stabilize};
pub use replicate::{ANTI_ENTROPY_EVERY, replicate};

use super::message::Response;
use super::{Node, NodeId, OpError, Transport};

/// The state of the node a procedure runs as, or `NotRunning` if it is gone.
pub(super) fn me<T: Transport>(t: &mut T, n: NodeId) -> Result<&mut Node, OpError> {
    t.local(n).ok_or(OpError::NotRunning(n))
}

/// A response that does not fit its request, as an error (first 200 characters).
pub(super) fn unexpected(r: Response) -> OpError {
    OpError::Protocol(format!("{r:?}").chars().take(200).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chord::Key;
    use crate::testkit::{assert_clean, id, paper_params, paper_ring};
    use serde_json::json;

    fn key(v: u128) -> Key {
        Key::new(id(paper_params(), v), format!("k{v}"))
    }

    #[test]
    fn join_copies_the_successors_list_and_its_keys() {
        let mut w = paper_ring();
        let n8 = w.find("N8").unwrap();
        // Key 24 belongs to N32 now and to N26 once it joins.
        put(w.transport(), n8, &key(24), json!(24).into(), 1).unwrap();
        let (n26, _) = w
            .join("N26", Some(id(paper_params(), 26)), Some(n8))
            .unwrap();
        let node = w.node(n26).unwrap();
        let names: Vec<String> = node.succs.iter().map(|s| w.name(*s)).collect();
        assert_eq!(names, ["N32", "N38", "N42"]);
        assert!(node.store.get(&key(24)).is_some());
        assert_eq!(node.pred, None, "the predecessor comes from stabilize");
    }

    #[test]
    fn stabilize_links_a_newcomer_in() {
        let mut w = paper_ring();
        let n21 = w.find("N21").unwrap();
        let (n26, _) = w.join("N26", Some(id(paper_params(), 26)), None).unwrap();
        stabilize(w.transport(), n26).unwrap();
        assert_eq!(w.node(w.find("N32").unwrap()).unwrap().pred, Some(n26));
        stabilize(w.transport(), n21).unwrap();
        assert_eq!(w.node(n21).unwrap().successor(), n26);
    }

    #[test]
    fn fix_fingers_fills_a_run_per_call() {
        let mut w = paper_ring();
        let n8 = w.find("N8").unwrap();
        let before = w.node(n8).unwrap().fingers.clone();
        let node = w.node_mut(n8).unwrap();
        node.fingers = crate::chord::finger::FingerTable::all(node.successor());
        node.next_finger = 0;
        for _ in 0..4 {
            fix_fingers(w.transport(), n8).unwrap();
        }
        assert_eq!(w.node(n8).unwrap().fingers, before);
    }

    #[test]
    fn check_predecessor_clears_a_dead_predecessor() {
        let mut w = paper_ring();
        let n8 = w.find("N8").unwrap();
        let n14 = w.find("N14").unwrap();
        w.fail(n8).unwrap();
        check_predecessor(w.transport(), n14).unwrap();
        assert_eq!(w.node(n14).unwrap().pred, None);
    }

    #[test]
    fn leave_hands_keys_over_and_get_finds_them() {
        let mut w = paper_ring();
        let n1 = w.find("N1").unwrap();
        put(w.transport(), n1, &key(12), json!("twelve").into(), 1).unwrap();
        let n14 = w.find("N14").unwrap();
        leave(w.transport(), n14).unwrap();
        w.fail(n14).unwrap(); // gone from the network, as World::leave does
        let got = get(w.transport(), n1, &key(12)).unwrap();
        assert_eq!(got.result.as_deref(), Some(&json!("twelve")));
        assert_eq!(w.name(got.served_by), "N21");
        w.converge(20).unwrap();
        assert_clean(&w, "after leave");
    }

    #[test]
    fn delete_leaves_a_tombstone_that_older_writes_cannot_undo() {
        let mut w = paper_ring();
        let n1 = w.find("N1").unwrap();
        put(w.transport(), n1, &key(40), json!(1).into(), 1).unwrap();
        let gone = delete(w.transport(), n1, &key(40), 3).unwrap();
        assert_eq!(gone.result.as_deref(), Some(&json!(1)));
        put(w.transport(), n1, &key(40), json!(2).into(), 2).unwrap();
        assert_eq!(get(w.transport(), n1, &key(40)).unwrap().result, None);
    }

    #[test]
    fn replicate_restores_r_copies_after_a_crash() {
        let mut w = paper_ring();
        let n1 = w.find("N1").unwrap();
        put(w.transport(), n1, &key(30), json!(30).into(), 1).unwrap();
        let holders = |w: &crate::sim::World| {
            w.nodes()
                .filter(|n| n.store.get(&key(30)).is_some())
                .count()
        };
        assert_eq!(holders(&w), 3);
        w.fail(w.find("N32").unwrap()).unwrap();
        assert_eq!(holders(&w), 2);
        w.converge(20).unwrap();
        assert_eq!(holders(&w), 3);
        assert_clean(&w, "after a crash");
    }
}
