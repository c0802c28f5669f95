//! How procedures reach other nodes: the one seam between the protocol and
//! whatever carries its messages (the simulator's network today, a real
//! network driver later).

use super::id::{Id, NodeId};
use super::message::{Request, Response, Step};
use super::node::Node;

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
    /// `call(from, to, Request::FindStep { key, avoid })`. Seam for the
    /// lookup rate: lookups send more messages than anything else, so a
    /// transport may deliver this one without the envelopes.
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
    /// which every live node answers with Pong. Seam for the lookup rate,
    /// like [`Transport::find_step`]: every lookup ends with one.
    fn ping(&mut self, from: NodeId, to: NodeId) -> Result<(), Unreachable> {
        self.call(from, to, Request::Ping).map(|_| ())
    }
    /// A hint: a message to `to` follows soon, a lookup step for `key` if
    /// given. A transport may use it to get ready (the simulator fetches
    /// the node's state into cache; a real one could open a connection). It
    /// changes nothing observable.
    fn will_call(&mut self, _to: NodeId, _key: Option<Id>) {}
}
