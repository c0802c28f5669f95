//! The simulator: a network that delivers or drops requests, and a seeded
//! world that decides what runs when. All nondeterminism of a run lives here.

pub mod network;
pub mod scenario;
pub mod world;

pub use network::{NetStats, Network};
pub use world::{Counters, RoundStats, World, WorldError};
