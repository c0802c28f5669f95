//! What each user-facing operation does on a ring, between parsing a request
//! and printing its answer: building a new ring, loading records, crashing a
//! node under the safety policy, and the views of the ring that commands
//! show. The command line calls these; so will a server and the simulator's
//! experiments. Nothing here parses arguments or prints.

pub mod build;
pub mod circle;
pub mod fail;
pub mod load;
pub mod members;
pub mod pages;
pub mod view;

use crate::chord::NodeId;
use crate::sim::World;

/// A node as people see it: name and id (a [`view::NodeRef`] as text).
pub fn show_node(world: &World, n: NodeId) -> String {
    view::NodeRef::of(world, n).to_string()
}
