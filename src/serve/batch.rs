//! Group commit of puts and deletes. Many clients writing at once would
//! each wait for a transaction and a commit of their own; instead one task
//! takes every put and delete queued so far, applies them to the ring in
//! order, saves, logs each, and commits them in one transaction, then
//! answers each. A write that fails inside the protocol (the ring may be
//! half changed) rolls the batch back: its author gets the error, the ring
//! is read again, and the others run again in the next batch.

use super::error::ApiError;
use super::keys::Written;
use super::shared::Shared;
use crate::state::LogEntry;
use serde_json::Value;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// Writes one batch holds at most.
const MAX_BATCH: usize = 512;
/// A group answering at least this many writes makes the next one wait up
/// to [`LINGER`] for their authors' next writes.
const LINGER_FROM: usize = 8;
/// How long a group waits for more writes after a large one.
const LINGER: std::time::Duration = std::time::Duration::from_millis(2);

/// One queued put (a value) or delete (none).
pub struct KeyWrite {
    /// Who asks.
    pub author: String,
    /// The key.
    pub key: String,
    /// The value to store; None deletes.
    pub value: Option<Value>,
    /// Where the answer goes.
    pub reply: oneshot::Sender<Result<Written, ApiError>>,
}

/// How one write in a batch went.
enum Applied {
    /// Done: the answer, and the log entry's operation.
    Done(Written, &'static str),
    /// Refused before any change (a delete of a missing key).
    Refused(ApiError),
    /// Failed inside the protocol: the ring may be half changed.
    Failed(ApiError),
}

impl Shared {
    /// Applies batches from `queue` until every sender is gone.
    pub async fn run_key_writes(self: Arc<Self>, mut queue: mpsc::UnboundedReceiver<KeyWrite>) {
        let mut carried: Vec<KeyWrite> = Vec::new();
        // Writes the last group answered.
        let mut answered = 0;
        loop {
            if carried.is_empty() {
                match queue.recv().await {
                    Some(w) => carried.push(w),
                    None => return,
                }
            }
            while carried.len() < MAX_BATCH {
                match queue.try_recv() {
                    Ok(w) => carried.push(w),
                    Err(_) => break,
                }
            }
            // The authors of a large group just answered send their next
            // writes a moment later: wait briefly for them, or a small
            // group runs first and they wait for two.
            if answered >= LINGER_FROM {
                let until = tokio::time::Instant::now() + LINGER;
                while carried.len() < answered.min(MAX_BATCH) {
                    match tokio::time::timeout_at(until, queue.recv()).await {
                        Ok(Some(w)) => carried.push(w),
                        Ok(None) | Err(_) => break,
                    }
                }
            }
            let batch = std::mem::take(&mut carried);
            answered = batch.len();
            carried = self.commit_batch(batch).await;
            answered -= carried.len();
        }
    }

    /// Commits one batch; returns the writes to run again (after a
    /// failure rolled the batch back).
    async fn commit_batch(&self, batch: Vec<KeyWrite>) -> Vec<KeyWrite> {
        let started = std::time::Instant::now();
        let mut ring = self.ring.lock().await;
        let locked = started.elapsed();
        let mut st = match self.begin_write(&mut ring).await {
            Ok(st) => st,
            Err(e) => {
                for w in batch {
                    let _ = w.reply.send(Err(e.clone()));
                }
                return Vec::new();
            }
        };
        let begun = started.elapsed();
        let loaded = ring.loaded.as_mut().expect("caught up");
        let mut outcomes: Vec<Applied> = Vec::with_capacity(batch.len());
        let mut failed = None;
        for (i, w) in batch.iter().enumerate() {
            let applied = apply(&mut loaded.world, w);
            if matches!(applied, Applied::Failed(_)) {
                failed = Some(i);
                outcomes.push(applied);
                break;
            }
            outcomes.push(applied);
        }
        if let Some(i) = failed {
            // Nothing of this batch is committed: the ring is read again,
            // the failed write answered, the rest run again.
            ring.loaded = None;
            drop(st);
            let mut rest = batch;
            let failed_write = rest.remove(i);
            if let Some(Applied::Failed(e)) = outcomes.pop() {
                let _ = failed_write.reply.send(Err(e));
            }
            return rest;
        }
        let applied = started.elapsed();
        let mut saved = applied;
        let mut wrote = crate::state::Saved::default();
        let mut result: Result<(), ApiError> = async {
            wrote = st.save(loaded).await?;
            saved = started.elapsed();
            let keys: Vec<String> = batch.iter().map(|w| w.key.clone()).collect();
            st.forget_lost_keys(&keys).await?;
            let entries: Vec<LogEntry> = batch
                .iter()
                .zip(&outcomes)
                .filter_map(|(w, o)| match o {
                    Applied::Done(_, op) => Some(LogEntry {
                        author: &w.author,
                        op,
                        target: &w.key,
                        detail: "",
                    }),
                    _ => None,
                })
                .collect();
            st.log_changes(&entries).await?;
            Ok(())
        }
        .await;
        let logged = started.elapsed();
        if result.is_ok() {
            result = self.commit_and_announce(&mut ring, st).await;
        } else {
            ring.loaded = None;
        }
        tracing::debug!(
            writes = batch.len(),
            node_rows = wrote.nodes,
            slice_rows = wrote.slices,
            ?locked,
            ?begun,
            ?applied,
            ?saved,
            ?logged,
            committed = ?started.elapsed(),
            "write batch"
        );
        for (w, o) in batch.into_iter().zip(outcomes) {
            let answer = match (&result, o) {
                (Err(e), _) => Err(e.clone()),
                (Ok(()), Applied::Done(written, _)) => Ok(written),
                (Ok(()), Applied::Refused(e) | Applied::Failed(e)) => Err(e),
            };
            let _ = w.reply.send(answer);
        }
        Vec::new()
    }
}

/// Applies one write to the ring.
fn apply(world: &mut crate::sim::World, w: &KeyWrite) -> Applied {
    match &w.value {
        Some(value) => match world.put(&w.key, value.clone(), None) {
            Ok(put) => Applied::Done(
                Written {
                    key: w.key.clone(),
                    node: world.name(put.served_by),
                    replaced: put.result.is_some(),
                },
                "put",
            ),
            Err(e) => Applied::Failed(e.into()),
        },
        None => {
            // A delete of a missing key changes nothing.
            match world.get(&w.key, None) {
                Ok(got) if got.result.is_none() => {
                    return Applied::Refused(ApiError::not_found(format!(
                        "key {:?} not found",
                        w.key
                    )));
                }
                Ok(_) => {}
                Err(e) => return Applied::Refused(e.into()),
            }
            match world.delete(&w.key, None) {
                Ok(del) => Applied::Done(
                    Written {
                        key: w.key.clone(),
                        node: world.name(del.served_by),
                        replaced: del.result.is_some(),
                    },
                    "delete",
                ),
                Err(e) => Applied::Failed(e.into()),
            }
        }
    }
}
