//! `dht`: a Chord distributed hash table simulated in one process.
//!
//! - [`chord`] is the protocol: identifiers, nodes, messages, procedures and
//!   invariants, free of I/O, clocks and randomness (sans-IO).
//! - [`sim`] drives it: a network that can lose nodes and a seeded world.
//! - [`app`] is what users' operations do on a ring (build, load, fail, the
//!   views commands show), for the command line and the server.
//! - [`state`] keeps a ring between commands in SQLite.
//! - [`serve`] shares one ring over an HTTP/JSON API (`dht serve`).
//! - [`source`] reads records from DataFrame files, SQL and JSON objects.
//! - [`alloc`] is the allocator the binary and the benchmarks use.

#![warn(missing_docs)]

pub mod alloc;
pub mod app;
pub mod chord;
pub mod experiments;
pub mod leftovers;
pub mod serve;
pub mod sim;
pub mod source;
pub mod state;
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;
