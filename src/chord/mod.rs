//! The Chord protocol: identifiers, node state, messages, procedures, the
//! ideal ring and the invariants. No I/O, no clock, no randomness: the
//! simulator in [`crate::sim`] drives it.

pub mod finger;
pub mod id;
pub mod invariants;
pub mod lookup;
pub mod message;
pub mod node;
pub mod ops;
pub mod spec;
pub mod store;

pub use id::{Bits, Id, NodeId};
pub use node::{Node, Params};
pub use store::{Entry, Key};
