//! The Chord protocol: identifiers, node state, messages, procedures, the
//! ideal ring and the invariants. No I/O, no clock, no randomness: the
//! simulator in [`crate::sim`] drives it.
//!
//! Where to find the paper in it:
//! - [`id`]: ring arithmetic (intervals, finger starts) on m-bit ids;
//! - [`node`]: one node's state and its pure reaction to each request
//!   (`rectify` in place of `notify`);
//! - [`lookup`]: `find_successor` and `closest_preceding_node`, with
//!   [`resolver`] running the iterative loop one message at a time;
//! - [`ops`]: the procedures a node runs (join, stabilize,
//!   check_predecessor, fix_fingers, replica upkeep, leave, get/put/delete);
//! - [`spec`] and [`invariants`]: the ideal ring and how live state is
//!   checked against it.

pub mod error;
pub mod finger;
pub mod hosts;
pub mod id;
pub mod invariants;
pub mod lookup;
pub mod message;
pub mod node;
pub mod ops;
pub mod params;
pub mod resolver;
pub mod spec;
pub mod store;
pub mod transport;

pub use error::OpError;
pub use id::{Bits, Id, NodeId};
pub use lookup::{Lookup, find_successor};
pub use node::{Node, Params};
pub use store::{Entry, Key};
pub use transport::{Transport, Unreachable};
