//! Graceful leave: a node hands over its data and unlinks itself.

use super::me;
use super::replicate::replicate;
use crate::chord::message::Request;
use crate::chord::{NodeId, OpError, Transport};

/// Graceful leave (paper, section 4.4 of the ToN version, with Zave's list
/// splice): hand every entry this node holds (its own keys and its replicas)
/// to its first live successor, which takes our predecessor as its own; tell the predecessor,
/// and every other node in our predecessor list, to splice our successor
/// list into its own; then both run replica upkeep
/// so every key is again on r nodes before we go. The caller removes the
/// node from the network afterwards.
pub fn leave<T: Transport>(t: &mut T, n: NodeId) -> Result<(), OpError> {
    let node = me(t, n)?;
    let pred = node.pred.filter(|&p| p != n);
    // Everything we hold, replicas too: during churn a replica here may be
    // the last copy of a key. Versions make the extra harmless, and the
    // heir's garbage collection passes on what it should not keep.
    let entries = node.store.entries_in(n.id(), n.id());
    let succs = node.succs.clone();
    let mut heir = None;
    for &s in succs.iter().filter(|&&s| s != n) {
        let req = Request::HandOff {
            leaving: n,
            new_pred: pred,
            entries: entries.clone(),
        };
        if t.call(n, s, req).is_ok() {
            heir = Some(s);
            break;
        }
    }
    let heir = heir.ok_or(OpError::LastNode)?;
    // Every node that lists us as a successor (our predecessor list) splices
    // our list in; the paper tells only the predecessor, which leaves the
    // others with a dead entry that counts against their r.
    let mut told = vec![heir, n];
    let mut pred_told = false;
    for p in pred.into_iter().chain(me(t, n)?.preds.clone()) {
        if !told.contains(&p) {
            told.push(p);
            let ok = t
                .call(
                    n,
                    p,
                    Request::SuccessorLeaving {
                        leaving: n,
                        succs: succs.clone(),
                    },
                )
                .is_ok();
            pred_told |= ok && Some(p) == pred;
        }
    }
    // Restore replication now rather than at the next round. These run as
    // the neighbours, reacting to the messages they just received; a
    // neighbour that is gone meanwhile is left to maintenance.
    let _ = replicate(t, heir);
    if let (Some(p), true) = (pred, pred_told) {
        let _ = replicate(t, p);
    }
    Ok(())
}
