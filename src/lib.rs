//! `dht`: a Chord distributed hash table simulated in one process.
//!
//! - [`chord`] is the protocol: identifiers, nodes, messages, procedures and
//!   invariants, free of I/O, clocks and randomness (sans-IO).
//! - [`sim`] drives it: a network that can lose nodes and a seeded world.
//! - [`state`] keeps a ring between commands in SQLite.
//! - [`source`] reads records from DataFrame files, SQL and JSON objects.
//! - [`alloc`] is the allocator the binary and the benchmarks use.

pub mod alloc;
pub mod chord;
mod prefetch;
pub mod sim;
pub mod source;
pub mod state;
