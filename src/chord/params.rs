//! Ring-wide settings: identifier width, replication, successor-list
//! length and virtual nodes per physical node, and what follows from them
//! (which host a node runs on).

use super::id::{Bits, NodeId};

/// Ring-wide settings every node is created with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Params {
    /// Identifier width m.
    pub bits: Bits,
    /// Replication factor r: a key lives on r nodes, and successor lists hold
    /// r entries (or [`Params::successors`], if more). Zave's stable base is
    /// s + 1 nodes for successor lists of s.
    pub replicas: u8,
    /// Successor-list length s when it is longer than r; 0 (the default,
    /// and what rings saved before this setting read back) means r. A longer
    /// list survives more simultaneous failures without storing more copies:
    /// the papers' failure experiments keep each key on one node with lists
    /// of 2·log2 N.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub successors: u8,
    /// Virtual nodes per physical node V; 0 (the default, and what rings
    /// saved before this setting read back) means 1. With V > 1 the nodes
    /// of one host take the V consecutive incarnations of one block (see
    /// [`Params::host`]), successor lists skip nodes of a host already
    /// counted, and a key's r copies live on r distinct hosts.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub vnodes: u8,
}

fn is_zero(v: &u8) -> bool {
    *v == 0
}

impl Params {
    /// Settings for a ring of width `m` bits with `r` copies of each key.
    ///
    /// Panics if m is outside 1..=160 or r is 0: this is for settings fixed in
    /// code (tests, examples, benchmarks); user input goes through
    /// [`Bits::new`], which reports the error.
    pub fn new(m: u32, r: u8) -> Params {
        assert!(r > 0, "a ring needs at least one copy of each key");
        Params::of(Bits::new(m).expect("ring width between 1 and 160"), r)
    }

    /// Settings for a ring of width `bits` with `r` copies of each key,
    /// successor lists of r and no virtual nodes; the `with_` methods
    /// change the rest.
    pub fn of(bits: Bits, r: u8) -> Params {
        Params {
            bits,
            replicas: r,
            successors: 0,
            vnodes: 0,
        }
    }

    /// These settings with `v` virtual nodes per physical node (1 if 0).
    pub fn with_vnodes(self, v: u8) -> Params {
        Params {
            vnodes: if v > 1 { v } else { 0 },
            ..self
        }
    }

    /// Virtual nodes per physical node, V.
    pub fn v(self) -> u32 {
        u32::from(self.vnodes.max(1))
    }

    /// True when physical nodes run several Chord nodes each: lists and
    /// replica placement then count hosts, not nodes.
    pub fn has_vnodes(self) -> bool {
        self.vnodes > 1
    }

    /// The physical node (host) `n` runs on. Every host takes a block of V
    /// consecutive incarnations, so any node can tell the host of any
    /// address it holds without asking; without virtual nodes every node is
    /// its own host.
    pub fn host(self, n: NodeId) -> u32 {
        n.incarnation() / self.v()
    }

    /// These settings with successor lists of `s` (at least r whatever `s`).
    pub fn with_successors(self, s: u8) -> Params {
        Params {
            successors: if s > self.replicas { s } else { 0 },
            ..self
        }
    }

    /// r as a count.
    pub fn r(self) -> usize {
        usize::from(self.replicas)
    }

    /// The successor-list length s: r, or longer if set so.
    pub fn s(self) -> usize {
        usize::from(self.successors.max(self.replicas))
    }
}
