//! Why a protocol procedure could not finish.

use super::id::NodeId;

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
