//! The client operations get, put and delete: a lookup, then a data request
//! at the node responsible, following redirects.

use super::replicate::replicate_change;
use super::{me, unexpected};
use crate::chord::lookup::{Lookup, resolve};
use crate::chord::message::{Request, Response};
use crate::chord::store::{Key, Versioned};
use crate::chord::{NodeId, OpError, Transport, Unreachable};
use serde_json::Value;
use std::sync::Arc;

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
