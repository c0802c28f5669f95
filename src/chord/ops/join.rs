//! Join: a new node enters the ring through any member.

use super::{me, unexpected};
use crate::chord::finger::FingerTable;
use crate::chord::lookup::{Lookup, resolve_avoiding};
use crate::chord::message::{Request, Response};
use crate::chord::{NodeId, OpError, Transport};

/// Join (Zave's version): the new node `j`, already reachable but linked from
/// nobody, finds its successor s through `via`, copies s's successor list
/// (s followed by s's list) so it never has fewer live successors than its
/// neighbours, and fetches from s every entry s holds outside (j, s]: its own
/// keys and the replicas it will hold. It becomes a ring member when its
/// predecessor's stabilize adopts it. The paper's join sets only the
/// successor, which Zave shows can leave a ring without enough live
/// successors after failures.
pub fn join<T: Transport>(t: &mut T, j: NodeId, via: NodeId) -> Result<Lookup, OpError> {
    // Stale pointers to a departed node with our id would lead the lookup to
    // us, not yet a member: route as if we were absent.
    let (lookup, ()) = resolve_avoiding(t, j, via, j.id(), vec![j], |t, s| t.ping(j, s))?;
    let s = lookup.successor;
    let s_list = match t
        .call(j, s, Request::GetNeighbours)
        .map_err(|_| OpError::Stuck)?
    {
        Response::Neighbours { succs, .. } => succs,
        other => return Err(unexpected(other)),
    };
    let entries = match t
        .call(
            j,
            s,
            Request::FetchRange {
                from: s.id(),
                to: j.id(),
            },
        )
        .map_err(|_| OpError::Stuck)?
    {
        Response::Entries(e) => e,
        other => return Err(unexpected(other)),
    };
    let node = me(t, j)?;
    node.succs = node.list_through(s, &s_list);
    node.fingers = FingerTable::all(s);
    node.pred = None;
    for (k, v) in entries {
        node.store.merge(k, v);
    }
    Ok(lookup)
}
