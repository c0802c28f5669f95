//! `dht`: a Chord distributed hash table simulated in one process.
//!
//! - [`chord`] is the protocol: identifiers, nodes, messages, procedures and
//!   invariants, free of I/O, clocks and randomness (sans-IO).
//! - [`sim`] drives it: a network that can lose nodes and a seeded world.

pub mod chord;
pub mod sim;
