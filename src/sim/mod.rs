//! The simulator: a network that delivers or drops requests, and a seeded
//! world that decides what runs when. All nondeterminism of a run lives
//! here, and so do the tricks that make a big ring fast (cache prefetching,
//! many lookups in flight); the protocol in [`crate::chord`] knows nothing
//! of them.

pub mod in_flight;
pub mod network;
mod prefetch;
#[cfg(any(test, feature = "testkit"))]
pub mod scenario;
pub mod world;

pub use network::{Miss, NetStats, Network};
pub use world::{Counters, Directory, RoundStats, World, WorldError};
