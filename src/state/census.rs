//! The census: how many members each part of the ring holds, kept in the
//! settings. The generator picks a start node by rank in ring order; with
//! the census that member is found by one indexed read of the nodes table
//! (within its part, a few hundred rows at most on a million-node ring)
//! instead of a count of the whole table.
//!
//! Its parts are the ring's 4,096 leading-bit prefixes ([`CENSUS_BITS`]),
//! coarser than the slices entries are stored in: every command that needs
//! a start node reads the census whole, so it is kept short.

use super::slice::{prefix_of, prefix_span};
use super::{State, StateError, codec};
use crate::chord::{Bits, Id};
use crate::sim::World;

/// Members are counted by this many leading bits of their position.
const CENSUS_BITS: u32 = 12;

/// The census part holding position `pos` on a ring of `bits`.
pub(super) fn part_of(bits: Bits, pos: Id) -> i64 {
    prefix_of(bits, CENSUS_BITS, pos)
}

/// The settings key holding the census.
const KEY: &str = "census";

/// Members per part: (part, members) in part order, empty parts left out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Census(Vec<(i64, u64)>);

impl Census {
    /// The census of a ring whose members are at `positions`, in any order.
    pub(super) fn of(bits: Bits, positions: impl IntoIterator<Item = Id>) -> Census {
        let mut slices: Vec<i64> = positions.into_iter().map(|p| part_of(bits, p)).collect();
        slices.sort_unstable();
        let mut out: Vec<(i64, u64)> = Vec::new();
        for s in slices {
            match out.last_mut() {
                Some((last, n)) if *last == s => *n += 1,
                _ => out.push((s, 1)),
            }
        }
        Census(out)
    }

    /// Members of the whole ring.
    pub(super) fn members(&self) -> usize {
        self.0.iter().map(|&(_, n)| n as usize).sum()
    }

    /// Where the member at `rank` (0 is the lowest id) is: the first
    /// position of its part, and how many members of that part come
    /// before it. None past the last member.
    pub(super) fn locate(&self, bits: Bits, rank: usize) -> Option<(i64, Id, usize)> {
        let mut before = 0usize;
        for &(slice, n) in &self.0 {
            let n = n as usize;
            if rank < before + n {
                return Some((
                    slice,
                    prefix_span(bits, CENSUS_BITS, slice).0,
                    rank - before,
                ));
            }
            before += n;
        }
        None
    }
}

impl State {
    /// The census as saved.
    pub(super) async fn census(&mut self) -> Result<Census, StateError> {
        let text = self.meta(KEY).await?;
        serde_json::from_str::<Vec<(i64, u64)>>(&text)
            .map(Census)
            .map_err(|e| self.damaged(format!("census: {e}")))
    }

    /// Saves `census`.
    pub(super) async fn set_census(&mut self, census: &Census) -> Result<(), StateError> {
        let text = serde_json::to_string(&census.0).expect("census serializes");
        self.set_meta(KEY, &text).await
    }

    /// What is wrong with the saved census of the ring `world` (read whole),
    /// if anything: a census that does not match the nodes would make the
    /// generator pick other start nodes than it does on the whole ring.
    pub async fn census_problem(&mut self, world: &World) -> Result<Option<String>, StateError> {
        let want = Census::of(world.bits(), world.members().map(|m| m.id()));
        Ok((self.census().await? != want).then(|| {
            "the census of members per part of the ring (settings key \"census\") does not match table nodes; `dht check --repair` recounts it".to_owned()
        }))
    }

    /// Counts the members in the nodes table and saves the census: for
    /// files from before the census, and `check --repair`.
    pub async fn recount_census(&mut self) -> Result<(), StateError> {
        let bits = self.params().await?.bits;
        let addrs: Vec<Vec<u8>> = sqlx::query_scalar("SELECT addr FROM nodes")
            .fetch_all(&mut self.conn)
            .await
            .map_err(self.sql())?;
        let mut positions = Vec::with_capacity(addrs.len());
        for a in addrs {
            let id = codec::decode_node_id(&a)
                .map_err(|e| self.damaged(format!("table nodes: address: {e}")))?;
            positions.push(id.id());
        }
        self.set_census(&Census::of(bits, positions)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locates_every_rank_in_ring_order() {
        let bits = Bits::new(16).unwrap();
        let mut ids: Vec<Id> = (0..300u128)
            .map(|i| bits.id_from_u128(i * 211 % 65536).unwrap())
            .collect();
        let census = Census::of(bits, ids.iter().copied());
        ids.sort();
        assert_eq!(census.members(), 300);
        for (rank, id) in ids.iter().enumerate() {
            let (slice, first, offset) = census.locate(bits, rank).unwrap();
            assert_eq!(slice, part_of(bits, *id));
            assert!(first <= *id);
            let same_slice_before = ids[..rank]
                .iter()
                .filter(|p| part_of(bits, **p) == slice)
                .count();
            assert_eq!(offset, same_slice_before);
        }
        assert_eq!(census.locate(bits, 300), None);
    }
}
