//! Successor-list replication: replica upkeep (pushes, anti-entropy, and
//! dropping what a node should no longer hold) and the replica writes of
//! each change.

use super::{me, unexpected};
use crate::chord::lookup::find_successor;
use crate::chord::message::{Request, Response};
use crate::chord::node::ReplicaPush;
use crate::chord::{NodeId, OpError, Transport, Unreachable};

/// How many replica upkeeps pass between anti-entropy digest checks.
pub const ANTI_ENTROPY_EVERY: u8 = 64;

/// Replica upkeep (successor-list replication, paper section 5.3): when the
/// predecessor or successor list changed since the last complete push, send
/// the entries in (pred, n] to the first r-1 live successors; each merges them
/// by version and answers with what it holds newer, which we merge in turn
/// (a write a successor accepted before it learned of us comes back this way).
/// Every [`ANTI_ENTROPY_EVERY`] upkeeps, even with nothing changed, it compares
/// digests of the range with each replica and pushes again on a difference.
/// Then hand every entry outside (preds[J], n], the range whose replicas
/// this node should hold (J = r-1 without virtual nodes), to the node now responsible for it, and drop it,
/// once the predecessor list is complete and every node in it answers.
/// Without a known predecessor it does nothing: it cannot tell which keys
/// are its own.
pub fn replicate<T: Transport>(t: &mut T, n: NodeId) -> Result<(), OpError> {
    let node = me(t, n)?;
    let Some(p) = node.pred else { return Ok(()) };
    let now = node.neighbourhood();
    node.upkeeps = node.upkeeps.wrapping_add(1);
    if node.replicated == now && node.upkeeps % ANTI_ENTROPY_EVERY == 0 {
        compare_with_replicas(t, n, p)?;
    }
    if std::mem::take(&mut me(t, n)?.suspect) {
        ask_primaries_to_compare(t, n)?;
    }
    if me(t, n)?.replicated != now {
        push_to_replicas(t, n, p, now)?;
    }
    drop_what_others_hold(t, n)
}

/// Anti-entropy at the primary: compare digests of our range (p, n] with
/// each replica and mark the replicas stale on any difference. A newer copy
/// can reach a replica by a path other than our pushes (a hand-over while
/// routing was unsettled); the two-way push brings it back to us.
fn compare_with_replicas<T: Transport>(t: &mut T, n: NodeId, p: NodeId) -> Result<(), OpError> {
    let node = me(t, n)?;
    let digest = node.store.digest_in(p.id(), n.id());
    let want = node.params.r() - 1;
    for tgt in node.replica_targets().into_iter().take(want) {
        let req = Request::Digest {
            from: p.id(),
            to: n.id(),
            digest,
        };
        if let Ok(Response::Matches(false)) = t.call(n, tgt, req) {
            me(t, n)?.mark_replicas_stale();
            break;
        }
    }
    Ok(())
}

/// Anti-entropy at a replica that learned something newer by a side path:
/// ask the primaries of the ranges it holds to compare digests; a primary
/// that differs pushes again (two-way) at its next upkeep.
fn ask_primaries_to_compare<T: Transport>(t: &mut T, n: NodeId) -> Result<(), OpError> {
    let node = me(t, n)?;
    let preds = node.preds.clone();
    let primaries = node
        .replicated_primaries()
        .unwrap_or(preds.len().saturating_sub(1));
    for w in preds.windows(2).take(primaries) {
        let (primary, before) = (w[0], w[1]);
        let digest = me(t, n)?.store.digest_in(before.id(), primary.id());
        let req = Request::Digest {
            from: before.id(),
            to: primary.id(),
            digest,
        };
        let _ = t.call(n, primary, req);
    }
    Ok(())
}

/// The push itself: send the entries in (p, n] to the first r-1 live
/// successors, merge what each answers it holds newer, and record the
/// neighbourhood `now` as pushed for only if every replica took the push and
/// none had anything newer (what one sent back has not reached the others).
fn push_to_replicas<T: Transport>(
    t: &mut T,
    n: NodeId,
    p: NodeId,
    now: ReplicaPush,
) -> Result<(), OpError> {
    let node = me(t, n)?;
    let want = node.params.r() - 1;
    let entries = node.store.entries_in(p.id(), n.id());
    let targets = node.replica_targets();
    let (mut pushed, mut missed, mut learned) = (0, 0, false);
    for tgt in targets {
        if pushed == want {
            break;
        }
        let req = Request::SyncRange {
            from: p.id(),
            to: n.id(),
            entries: entries.clone(),
        };
        match t.call(n, tgt, req) {
            Ok(Response::Entries(newer)) => {
                pushed += 1;
                let node = me(t, n)?;
                for (k, v) in newer {
                    learned |= node.store.merge(k, v).changed();
                }
            }
            Ok(other) => return Err(unexpected(other)),
            Err(Unreachable) => missed += 1,
        }
    }
    me(t, n)?.replicated = if missed == 0 && !learned {
        now
    } else {
        ReplicaPush::STALE
    };
    Ok(())
}

/// Garbage collection: hand every entry outside (preds[J], n] to the node
/// now responsible for it, then drop it, where J is how many predecessors
/// we hold replicas for (r-1, or with virtual nodes as their hosts say).
/// Only a settled predecessor list, verified node by node, may shrink what
/// we keep.
fn drop_what_others_hold<T: Transport>(t: &mut T, n: NodeId) -> Result<(), OpError> {
    let node = me(t, n)?;
    let Some(j) = node.replicated_primaries() else {
        return Ok(());
    };
    let chain = node.preds[..=j].to_vec();
    let far = chain[j];
    if node.store.count_in(n.id(), far.id()) == 0 {
        return Ok(());
    }
    if !chain_verified(t, n, &chain) {
        return Ok(());
    }
    hand_over_and_drop(t, n, far)
}

/// Each listed predecessor is alive and names the next as its own
/// predecessor. A chain that misses a newcomer errs towards keeping too
/// much; one naming a dead or misplaced node would drop replicas we must
/// hold, and nobody would push them again.
fn chain_verified<T: Transport>(t: &mut T, n: NodeId, preds: &[NodeId]) -> bool {
    preds.iter().enumerate().all(|(i, &p)| {
        matches!(
            t.call(n, p, Request::GetNeighbours),
            Ok(Response::Neighbours { pred, .. }) if i + 1 == preds.len() || pred == Some(preds[i + 1])
        )
    })
}

/// Hands every entry in (n, far] to the node responsible for it (one lookup
/// per receiving node) and drops each once handed over unchanged: after
/// joins in front of a crashed node's range, we may hold the only copies.
/// Stops, keeping the rest, when routing is not settled yet.
fn hand_over_and_drop<T: Transport>(t: &mut T, n: NodeId, far: NodeId) -> Result<(), OpError> {
    let drop = me(t, n)?.store.entries_in(n.id(), far.id());
    let mut i = 0;
    let mut boundary = n.id();
    while i < drop.len() {
        let owner = find_successor(t, n, n, drop[i].0.id)?.successor;
        if owner == n {
            // Routing still sends these keys to us: keep them for now.
            return Ok(());
        }
        let mut batch = Vec::new();
        while i < drop.len() && drop[i].0.id.in_half_open(boundary, owner.id()) {
            batch.push(drop[i].clone());
            i += 1;
        }
        boundary = owner.id();
        if batch.is_empty() {
            // The owner lies before the next entry's position: routing is
            // not settled yet.
            return Ok(());
        }
        if t.call(n, owner, Request::Merge(batch.clone())).is_err() {
            return Ok(());
        }
        let node = me(t, n)?;
        for (k, v) in batch {
            if node.store.get_versioned(&k) == Some(&v) {
                node.store.remove(&k);
            }
        }
    }
    Ok(())
}

/// Writes the replicas of a change at the first r-1 live successors of the
/// primary `p`, running as `p`. A missed successor marks `p` for a full
/// replica push at its next upkeep.
pub(super) fn replicate_change<T: Transport>(
    t: &mut T,
    p: NodeId,
    req: Request,
) -> Result<(), OpError> {
    let node = me(t, p)?;
    let want = node.params.r() - 1;
    let targets = node.replica_targets();
    let mut done = 0;
    for tgt in targets {
        if done == want {
            break;
        }
        match t.call(p, tgt, req.clone()) {
            Ok(_) => done += 1,
            Err(Unreachable) => me(t, p)?.mark_replicas_stale(),
        }
    }
    Ok(())
}
