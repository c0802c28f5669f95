//! The procedures a node runs on its own initiative: lookup, join, the
//! periodic maintenance (stabilize, check_predecessor, fix_fingers, replica
//! upkeep), graceful leave, and the client operations put/get/delete.
//!
//! Each procedure runs *as* one node: it reads and changes that node's state
//! through [`Transport::local`] and reaches every other node only through
//! [`Transport::call`]. There is no clock, randomness or I/O here; the
//! simulator (or, later, a real network driver) decides when each procedure
//! runs and whether a message arrives. Each doc says which version of Chord
//! it follows: the paper's (Stoica et al., ToN 2003) or Zave's correction
//! ("Reasoning about identifier spaces", TSE 2017).

use super::id::{Id, NodeId};
use super::lookup::resolve_avoiding;
pub use super::lookup::{Lookup, find_successor, find_successors, resolve};
use super::message::{Request, Response, Step};
use super::node::Node;
use super::store::{Key, Versioned};
use serde_json::Value;
use std::sync::Arc;

/// The receiver of a request did not answer: it has crashed or left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unreachable;

/// How procedures reach nodes. The simulator implements it; so could a real
/// network driver.
pub trait Transport {
    /// Delivers `req` from `from` to `to` and returns the answer.
    fn call(&mut self, from: NodeId, to: NodeId, req: Request) -> Result<Response, Unreachable>;
    /// The state of the node a procedure runs as, or None if it has crashed
    /// (for instance in the middle of the procedure).
    fn local(&mut self, id: NodeId) -> Option<&mut Node>;
    /// One `FindStep` from `from` to `to`: the same message as
    /// `call(from, to, Request::FindStep { key, avoid })`, without building
    /// the request and response envelopes. Lookups send more messages than
    /// anything else, so a transport may deliver this one directly.
    fn find_step(
        &mut self,
        from: NodeId,
        to: NodeId,
        key: Id,
        avoid: &[NodeId],
    ) -> Result<Step, Unreachable> {
        match self.call(
            from,
            to,
            Request::FindStep {
                key,
                avoid: avoid.to_vec(),
            },
        )? {
            Response::Step(s) => Ok(s),
            // A FindStep has only one kind of answer; a node that gives
            // another is treated as one that gave none, and routed around.
            _ => Err(Unreachable),
        }
    }
    /// A liveness check of `to` by `from`: `call(from, to, Request::Ping)`,
    /// which every live node answers with Pong. Every lookup ends with one,
    /// so a transport may answer it without the envelopes.
    fn ping(&mut self, from: NodeId, to: NodeId) -> Result<(), Unreachable> {
        self.call(from, to, Request::Ping).map(|_| ())
    }
    /// A hint: a message to `to` follows soon, a lookup step for `key` if
    /// given. A transport may use it to get ready (the simulator fetches
    /// the node's state into cache; a real one could open a connection). It
    /// changes nothing observable.
    fn will_call(&mut self, _to: NodeId, _key: Option<Id>) {}
}

/// Why a procedure could not finish. Each variant says what changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpError {
    /// The node the procedure runs as is gone. Nothing changed after it went.
    #[error("node {0:?} is not running")]
    NotRunning(NodeId),
    /// Every successor the lookup could try was unreachable. No state changed.
    #[error("lookup stuck: every successor known to the nodes asked is unreachable")]
    Stuck,
    /// The lookup did not converge within its step budget (a corrupted or
    /// partitioned ring). No state changed.
    #[error("lookup did not finish within {0} steps")]
    TooLong(usize),
    /// Data requests kept being redirected (the ring is not yet stable). No
    /// data changed.
    #[error("request redirected {0} times; run maintenance and retry")]
    Redirects(usize),
    /// The node has no live successor left (more than r consecutive failures).
    /// Its successor list was emptied of dead entries.
    #[error("node {0:?} has no live successor")]
    Isolated(NodeId),
    /// A node answered with a response that does not fit the request.
    #[error("protocol error: unexpected response {0}")]
    Protocol(String),
    /// The lone node of a ring cannot leave gracefully: its data has nowhere to go.
    #[error("the last node of a ring cannot leave: its keys would be lost")]
    LastNode,
}

fn me<T: Transport>(t: &mut T, n: NodeId) -> Result<&mut Node, OpError> {
    t.local(n).ok_or(OpError::NotRunning(n))
}

fn unexpected(r: Response) -> OpError {
    OpError::Protocol(format!("{r:?}").chars().take(200).collect())
}

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
    node.fingers = super::finger::FingerTable::all(s);
    node.pred = None;
    for (k, v) in entries {
        node.store.merge(k, v);
    }
    Ok(lookup)
}

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
                node.replicated = 0;
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
            let list = node.list_through(p, &preds);
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
            node.replicated = 0;
            match alive {
                Some((c, preds)) => {
                    node.pred = Some(c);
                    node.preds = node.list_through(c, &preds);
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

/// How many replica upkeeps pass between anti-entropy digest checks.
pub const ANTI_ENTROPY_EVERY: u8 = 64;

/// Replica upkeep (successor-list replication, paper section 5.3): when the
/// predecessor or successor list changed since the last complete push, send
/// the entries in (pred, n] to the first r-1 live successors; each merges them
/// by version and answers with what it holds newer, which we merge in turn
/// (a write a successor accepted before it learned of us comes back this way).
/// Every [`ANTI_ENTROPY_EVERY`] upkeeps, even with nothing changed, it compares
/// digests of the range with each replica and pushes again on a difference.
/// Then hand every entry outside (preds[r-1], n], the range whose replicas
/// this node should hold, to the node now responsible for it, and drop it,
/// once the predecessor list is complete and every node in it answers.
/// Without a known predecessor it does nothing: it cannot tell which keys
/// are its own.
pub fn replicate<T: Transport>(t: &mut T, n: NodeId) -> Result<(), OpError> {
    let node = me(t, n)?;
    let Some(p) = node.pred else { return Ok(()) };
    let fp = node.neighbourhood_fingerprint();
    // Anti-entropy: every few upkeeps, compare digests of our range with
    // each replica and push again on any difference. A newer copy can reach
    // a replica by a path other than our pushes (a hand-over while routing
    // was unsettled); the two-way push brings it back to us.
    node.upkeeps = node.upkeeps.wrapping_add(1);
    if node.replicated == fp && node.upkeeps % ANTI_ENTROPY_EVERY == 0 {
        let digest = node.store.digest_in(p.id(), n.id());
        let want = node.params.r() - 1;
        for tgt in node.replica_targets().into_iter().take(want) {
            if let Ok(Response::Matches(false)) = t.call(
                n,
                tgt,
                Request::Digest {
                    from: p.id(),
                    to: n.id(),
                    digest,
                },
            ) {
                me(t, n)?.replicated = 0;
                break;
            }
        }
    }
    // A replica that learned something newer by a side path asks the
    // primaries of the ranges it holds to compare; a primary that differs
    // pushes again (two-way) at its next upkeep.
    let node = me(t, n)?;
    if std::mem::take(&mut node.suspect) {
        let preds = node.preds.clone();
        for w in preds.windows(2).take(node.params.r().saturating_sub(1)) {
            let (primary, before) = (w[0], w[1]);
            let digest = me(t, n)?.store.digest_in(before.id(), primary.id());
            let _ = t.call(
                n,
                primary,
                Request::Digest {
                    from: before.id(),
                    to: primary.id(),
                    digest,
                },
            );
        }
    }
    let node = me(t, n)?;
    if node.replicated != fp {
        let want = node.params.r() - 1;
        let entries = node.store.entries_in(p.id(), n.id());
        let targets = node.replica_targets();
        let mut pushed = 0;
        let mut missed = 0;
        let mut learned = false;
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
                        learned |= node.store.merge(k, v).is_some();
                    }
                }
                Ok(other) => return Err(unexpected(other)),
                Err(Unreachable) => missed += 1,
            }
        }
        // What a successor sent back has not reached the others yet: push
        // again at the next upkeep.
        me(t, n)?.replicated = if missed == 0 && !learned { fp } else { 0 };
    }
    let node = me(t, n)?;
    let r = node.params.r();
    let preds = node.preds.clone();
    let complete = preds.len() == r
        && node.pred == preds.first().copied()
        && !preds.contains(&n)
        && (1..r).all(|i| !preds[..i].contains(&preds[i]));
    if !complete || node.store.count_in(n.id(), preds[r - 1].id()) == 0 {
        return Ok(());
    }
    // Only a verified chain may shrink what we keep: each listed predecessor
    // must be alive and name the next as its own predecessor. A chain that
    // misses a newcomer errs towards keeping too much; one naming a dead or
    // misplaced node would drop replicas we must hold, and nobody would push
    // them again.
    for (i, &p) in preds.iter().enumerate() {
        match t.call(n, p, Request::GetNeighbours) {
            Ok(Response::Neighbours { pred, .. }) if i + 1 == r || pred == Some(preds[i + 1]) => {}
            _ => return Ok(()),
        }
    }
    // Hand every entry we no longer hold to the node responsible for it
    // before dropping it: after joins in front of a crashed node's range, we
    // may hold the only copies. One lookup per receiving node.
    let far = preds[r - 1];
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

/// The outcome of a client operation.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome<R> {
    /// How the responsible node was found.
    pub lookup: Lookup,
    /// The node that finally served the request (after any redirects).
    pub served_by: NodeId,
    /// What it answered.
    pub result: R,
}

/// Routes a data request to the node responsible for `key` and follows
/// redirects from nodes that know better (during joins, the old successor
/// redirects to the new node). A redirect to a node that does not answer goes
/// back to the redirecting node with that node marked dead.
fn data_request<T: Transport>(
    t: &mut T,
    start: NodeId,
    key: &Key,
    req: impl Fn(Vec<NodeId>) -> Request,
) -> Result<(Lookup, NodeId, Response), OpError> {
    let (lookup, (mut at, mut resp)) = resolve(t, start, start, key.id, |t, s| {
        Ok((s, t.call(start, s, req(Vec::new()))?))
    })?;
    let mut dead: Vec<NodeId> = Vec::new();
    let limit = 8;
    for _ in 0..limit {
        tracing::trace!(?at, ?resp, "data request");
        match resp {
            Response::Redirect(next) if next != at && !dead.contains(&next) => {
                match t.call(start, next, req(dead.clone())) {
                    Ok(r) => {
                        at = next;
                        resp = r;
                    }
                    Err(Unreachable) => {
                        dead.push(next);
                        resp = t
                            .call(start, at, req(dead.clone()))
                            .map_err(|_| OpError::Stuck)?;
                    }
                }
            }
            Response::Redirect(_) => return Err(OpError::Redirects(limit)),
            other => return Ok((lookup, at, other)),
        }
    }
    Err(OpError::Redirects(limit))
}

/// Writes the replicas of a change at the first r-1 live successors of the
/// primary `p`, running as `p`. A missed successor marks `p` for a full
/// replica push at its next upkeep.
fn replicate_change<T: Transport>(t: &mut T, p: NodeId, req: Request) -> Result<(), OpError> {
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
            Err(Unreachable) => me(t, p)?.replicated = 0,
        }
    }
    Ok(())
}

/// `get`: the value of `key` from the first live node holding an entry for
/// it (value or tombstone), starting at the node responsible and moving down
/// its successor list, where replicas live, when that node holds nothing
/// (it may have just taken over the range).
pub fn get<T: Transport>(
    t: &mut T,
    start: NodeId,
    key: &Key,
) -> Result<Outcome<Option<Arc<Value>>>, OpError> {
    let (lookup, mut at, mut resp) = data_request(t, start, key, |dead| Request::Get {
        key: key.clone(),
        dead,
    })?;
    let mut asked = vec![at];
    loop {
        match resp {
            Response::Held { entry: Some(v), .. } => {
                return Ok(Outcome {
                    lookup,
                    served_by: at,
                    result: v.value,
                });
            }
            Response::Held { entry: None, succs } => {
                let r = me(t, start).map(|n| n.params.r()).unwrap_or(succs.len());
                let mut next = None;
                for s in succs {
                    if asked.len() >= r || asked.contains(&s) {
                        continue;
                    }
                    asked.push(s);
                    if let Ok(x) = t.call(
                        start,
                        s,
                        Request::Get {
                            key: key.clone(),
                            dead: vec![at],
                        },
                    ) {
                        next = Some((s, x));
                        break;
                    }
                }
                match next {
                    Some((s, Response::Held { entry, succs })) => {
                        at = s;
                        resp = Response::Held { entry, succs };
                    }
                    _ => {
                        return Ok(Outcome {
                            lookup,
                            served_by: asked[0],
                            result: None,
                        });
                    }
                }
            }
            other => return Err(unexpected(other)),
        }
    }
}

/// `put`: stores at the responsible node, which then writes r-1 replicas.
/// `version` orders this write against every other write of the key (the
/// client's logical clock). Returns the value it replaced.
pub fn put<T: Transport>(
    t: &mut T,
    start: NodeId,
    key: &Key,
    value: Arc<Value>,
    version: u64,
) -> Result<Outcome<Option<Arc<Value>>>, OpError> {
    let (lookup, at, resp) = data_request(t, start, key, |dead| Request::Put {
        key: key.clone(),
        value: value.clone(),
        version,
        dead,
    })?;
    let Response::Stored { replaced } = resp else {
        return Err(unexpected(resp));
    };
    replicate_change(
        t,
        at,
        Request::StoreReplica(
            key.clone(),
            Versioned {
                version,
                value: Some(value),
            },
        ),
    )?;
    Ok(Outcome {
        lookup,
        served_by: at,
        result: replaced,
    })
}

/// `delete`: leaves a tombstone at `version` on the responsible node and its
/// replicas. Returns the value removed, if any.
pub fn delete<T: Transport>(
    t: &mut T,
    start: NodeId,
    key: &Key,
    version: u64,
) -> Result<Outcome<Option<Arc<Value>>>, OpError> {
    let (lookup, at, resp) = data_request(t, start, key, |dead| Request::Delete {
        key: key.clone(),
        version,
        dead,
    })?;
    let Response::Deleted(old) = resp else {
        return Err(unexpected(resp));
    };
    replicate_change(
        t,
        at,
        Request::StoreReplica(
            key.clone(),
            Versioned {
                version,
                value: None,
            },
        ),
    )?;
    Ok(Outcome {
        lookup,
        served_by: at,
        result: old,
    })
}
