//! The periodic routing upkeep every node runs: stabilize,
//! check_predecessor and fix_fingers.

use super::{me, unexpected};
use crate::chord::lookup::find_successor;
use crate::chord::message::{Request, Response};
use crate::chord::{NodeId, OpError, Transport, Unreachable};

/// Stabilize (Zave's version): take the first successor that answers,
/// dropping dead ones; adopt its successor list; if its predecessor lies
/// between us, check that node is alive before adopting it as successor
/// (the paper adopts it unchecked); then notify the successor, which runs
/// rectify and may hand over keys we are now responsible for.
pub fn stabilize<T: Transport>(t: &mut T, n: NodeId) -> Result<(), OpError> {
    let succs = me(t, n)?.succs.clone();
    let mut found = None;
    for s in succs {
        match t.call(n, s, Request::GetNeighbours) {
            Ok(Response::Neighbours { pred, succs, .. }) => {
                found = Some((s, pred, succs));
                break;
            }
            Ok(other) => return Err(unexpected(other)),
            Err(Unreachable) => me(t, n)?.forget(s),
        }
    }
    let Some((mut s, s_pred, mut s_list)) = found else {
        return Err(OpError::Isolated(n));
    };
    if let Some(x) = s_pred
        && x.id().in_open(n.id(), s.id())
        && let Ok(Response::Neighbours { succs, .. }) = t.call(n, x, Request::GetNeighbours)
    {
        s = x;
        s_list = succs;
    }
    let node = me(t, n)?;
    let list = node.list_through(s, &s_list);
    node.succs = list;
    if s == n {
        return Ok(());
    }
    match t.call(n, s, Request::Notify { from: n }) {
        Ok(Response::Rectified { handoff, .. }) => {
            let node = me(t, n)?;
            if !handoff.is_empty() {
                node.mark_replicas_stale();
            }
            for (k, v) in handoff {
                node.store.merge(k, v);
            }
            Ok(())
        }
        Ok(other) => Err(unexpected(other)),
        Err(Unreachable) => Ok(()), // died since; the next round drops it
    }
}

/// check_predecessor, completing Zave's rectify: if the predecessor is dead,
/// adopt the notifier remembered by rectify (if it answers), else clear the
/// pointer. While the predecessor lives, refresh the predecessor list from
/// it (its list, with it in front), which tells us which replicas to keep.
pub fn check_predecessor<T: Transport>(t: &mut T, n: NodeId) -> Result<(), OpError> {
    let node = me(t, n)?;
    let Some(p) = node.pred else { return Ok(()) };
    let candidate = node.pred_candidate.take();
    match t.call(n, p, Request::GetNeighbours) {
        Ok(Response::Neighbours { preds, .. }) => {
            let node = me(t, n)?;
            let list = node.preds_through(p, &preds);
            node.preds = list;
            Ok(())
        }
        Ok(other) => Err(unexpected(other)),
        Err(Unreachable) => {
            let alive = match candidate {
                Some(c) if c != p && c != n => match t.call(n, c, Request::GetNeighbours) {
                    Ok(Response::Neighbours { preds, .. }) => Some((c, preds)),
                    _ => None,
                },
                _ => None,
            };
            let node = me(t, n)?;
            node.forget(p);
            node.mark_replicas_stale();
            match alive {
                Some((c, preds)) => {
                    node.pred = Some(c);
                    node.preds = node.preds_through(c, &preds);
                    // As in rectify, the keys the new predecessor now answers
                    // for move to it; versions make sending extra harmless.
                    let handoff = node.store.entries_in(n.id(), c.id());
                    if !handoff.is_empty() {
                        let _ = t.call(n, c, Request::Merge(handoff));
                    }
                }
                None => {
                    node.pred = None;
                    node.preds.clear();
                }
            }
            Ok(())
        }
    }
}

/// fix_fingers (paper), refreshing one run of equal fingers per call: look up
/// successor(n + 2^i), and since every finger j with n + 2^j in
/// (n + 2^i, that successor] has the same answer, set those too and move on
/// to the first finger past them. A full refresh takes about log2 N calls
/// instead of m.
pub fn fix_fingers<T: Transport>(t: &mut T, n: NodeId) -> Result<(), OpError> {
    let node = me(t, n)?;
    let bits = node.params.bits;
    let m = bits.get();
    let i = u32::from(node.next_finger) % m;
    let start = bits.finger_start(n.id(), i);
    let f = find_successor(t, n, n, start)?.successor;
    let last = bits
        .last_finger_within(bits.distance(n.id(), f.id()))
        .unwrap_or(m - 1)
        .max(i);
    let node = me(t, n)?;
    node.fingers.set_range(i, last, f, m);
    node.next_finger = if last + 1 >= m { 0 } else { (last + 1) as u8 };
    Ok(())
}
