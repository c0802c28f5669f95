//! What nodes say to each other. Every interaction between two nodes is one
//! [`Request`] answered by one [`Response`]; there is no other channel.
//!
//! The variants name the protocol step they serve; their docs say which
//! version of Chord (the paper's or Zave's correction) they follow.

use super::id::{Id, NodeId};
use super::store::{Entry, Key, Versioned};
use serde_json::Value;
use std::sync::Arc;

/// A request from one node to another.
#[derive(Clone, Debug)]
pub enum Request {
    /// Liveness check. The paper's failure detector; Zave: never adopt a
    /// pointer to a node without checking it is alive.
    Ping,
    /// One step of an iterative `find_successor(key)`: "is key between you and
    /// your successor, and if not, whom should I ask next?" Nodes in `avoid`
    /// have been found dead by the asker and must not be offered again.
    FindStep {
        /// The position looked up.
        key: Id,
        /// Nodes the asker found unreachable during this lookup.
        avoid: Vec<NodeId>,
    },
    /// Stabilize and predecessor-list upkeep read a neighbour's pointers.
    GetNeighbours,
    /// `notify` in the paper; handled as Zave's `rectify`.
    Notify {
        /// The node that believes it is the receiver's predecessor.
        from: NodeId,
    },
    /// Read a key at the node believed responsible for it (or holding it).
    /// `dead` lists nodes the client found unreachable: a receiver whose
    /// predecessor is among them is the first live successor of its range.
    Get {
        /// The key.
        key: Key,
        /// Nodes the client found unreachable.
        dead: Vec<NodeId>,
    },
    /// Write a key at the node responsible for it (the primary copy).
    Put {
        /// The key.
        key: Key,
        /// Its new value.
        value: Arc<Value>,
        /// The write's version, from the client's logical clock.
        version: u64,
        /// Nodes the client found unreachable.
        dead: Vec<NodeId>,
    },
    /// Delete a key at the node responsible for it (leaves a tombstone).
    Delete {
        /// The key.
        key: Key,
        /// The delete's version, from the client's logical clock.
        version: u64,
        /// Nodes the client found unreachable.
        dead: Vec<NodeId>,
    },
    /// Write a replica (value or tombstone), from the key's primary to one of
    /// its successors; merged by version.
    StoreReplica(Key, Versioned),
    /// Replica push from the node responsible for (from, to]: merge these,
    /// and answer with the entries of that range you hold newer or that are
    /// missing here (anti-entropy in both directions).
    SyncRange {
        /// Exclusive start of the range.
        from: Id,
        /// Inclusive end of the range: the sender's id.
        to: Id,
        /// Everything the sender holds in the range.
        entries: Vec<Entry>,
    },
    /// Garbage collection hands entries to the node now responsible for them
    /// before dropping them: merge by version, and push replicas again if
    /// anything was new.
    Merge(Vec<Entry>),
    /// Anti-entropy check from the node responsible for (from, to]: the
    /// count and order-free hash of what it holds there. The receiver
    /// answers whether its own copy of the range matches.
    Digest {
        /// Exclusive start of the range.
        from: Id,
        /// Inclusive end: the sender's id.
        to: Id,
        /// The sender's digest of the range.
        digest: (usize, u64),
    },
    /// A joining node asks its successor for the entries in (from, to].
    FetchRange {
        /// Exclusive start.
        from: Id,
        /// Inclusive end.
        to: Id,
    },
    /// Graceful leave, to the successor: take these keys, and `new_pred`
    /// (the leaver's predecessor) replaces the leaver as your predecessor.
    HandOff {
        /// The node that is leaving.
        leaving: NodeId,
        /// The leaver's predecessor, if it knew one.
        new_pred: Option<NodeId>,
        /// The leaver's own keys.
        entries: Vec<Entry>,
    },
    /// Graceful leave, to the predecessor: splice the leaver's successor list
    /// into yours in its place.
    SuccessorLeaving {
        /// The node that is leaving.
        leaving: NodeId,
        /// Its successor list.
        succs: Vec<NodeId>,
    },
}

/// The outcome of one [`Request::FindStep`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// The key lies between the asked node and this successor of it.
    Done(NodeId),
    /// Ask this node next: the closest predecessor of the key the asked node knows.
    Next(NodeId),
    /// Every successor the asked node knows is in `avoid`.
    Stuck,
}

/// The answer to a [`Request`].
#[derive(Clone, Debug)]
pub enum Response {
    /// To Ping.
    Pong,
    /// To FindStep.
    Step(Step),
    /// To GetNeighbours: the receiver's predecessor, successor list and
    /// predecessor list.
    Neighbours {
        /// Its predecessor, if known.
        pred: Option<NodeId>,
        /// Its successor list, nearest first.
        succs: Vec<NodeId>,
        /// Its predecessor list, nearest first.
        preds: Vec<NodeId>,
    },
    /// To Notify: whether the notifier became the predecessor, and the keys
    /// that move to it with that (those between the old predecessor and it).
    Rectified {
        /// The notifier is now the receiver's predecessor.
        adopted: bool,
        /// Keys the notifier is now responsible for.
        handoff: Vec<Entry>,
    },
    /// To Get: the entry if held (a tombstone says "deleted"); when nothing
    /// is held, the successor list, where replicas would be.
    Held {
        /// The entry, value or tombstone.
        entry: Option<Versioned>,
        /// The receiver's replica targets (where copies of its keys live),
        /// sent only when it holds nothing.
        succs: Vec<NodeId>,
    },
    /// To Put: the key is stored; `replaced` is the value it overwrote.
    Stored {
        /// The previous value, if the key existed.
        replaced: Option<Arc<Value>>,
    },
    /// To Delete: the value removed, if there was one.
    Deleted(Option<Arc<Value>>),
    /// To Get, Put or Delete at a node that knows it is not responsible for
    /// the key: try this node instead.
    Redirect(NodeId),
    /// To FetchRange, and to SyncRange (what the sender lacks).
    Entries(Vec<Entry>),
    /// To Digest: whether the receiver's copy matches.
    Matches(bool),
    /// To everything else.
    Ack,
}
