//! Slices of the ring: the unit the state file stores entries in. A slice
//! is the positions sharing their leading [`SLICE_BITS`] bits; its row holds
//! every copy of every key in it, on whichever nodes.

use super::codec;
use crate::chord::store::{Key, Versioned};
use crate::chord::{Bits, Id, NodeId};
use crate::sim::World;
use ruint::aliases::U160;
use std::collections::BTreeMap;
use std::sync::Mutex;

/// Entries are stored by this many leading bits of their position: 65,536
/// slices of the ring, each about 15 keys (46 copies at r = 3) at a
/// million keys. A put rewrites its key's slice, so a slice is kept small;
/// a ring of few keys has few rows, since empty slices have none.
pub const SLICE_BITS: u32 = 16;

/// The slice holding position `pos` on a ring of `bits`: its leading
/// [`SLICE_BITS`] bits (on narrower rings, the position itself).
pub fn slice_of(bits: Bits, pos: Id) -> i64 {
    prefix_of(bits, SLICE_BITS, pos)
}

/// The positions slice `c` covers, first and last, in numeric order.
pub(super) fn slice_span(bits: Bits, c: i64) -> (Id, Id) {
    prefix_span(bits, SLICE_BITS, c)
}

/// The leading `width` bits of position `pos` on a ring of `bits` (on
/// narrower rings, the position itself).
pub(super) fn prefix_of(bits: Bits, width: u32, pos: Id) -> i64 {
    let shift = bits.get().saturating_sub(width);
    (pos.to_u160() >> shift as usize).to::<u64>() as i64
}

/// The positions whose leading `width` bits are `c`, first and last.
pub(super) fn prefix_span(bits: Bits, width: u32, c: i64) -> (Id, Id) {
    let shift = bits.get().saturating_sub(width) as usize;
    let lo = U160::from(c as u64) << shift;
    let hi = lo | ((U160::from(1u8) << shift) - U160::from(1u8));
    (Id::from_u160(lo), Id::from_u160(hi))
}

/// Slice rows on their way to the file: (slice, where its sealed bytes
/// start in `arena`); each ends where the next starts. The row being filled
/// collects its entries in `raw` and is sealed ([`codec::seal_row`]) when
/// the next row starts or the batch is written.
pub(super) struct SliceBatch {
    /// Sealed rows, back to back.
    pub(super) arena: Vec<u8>,
    /// (slice, start in `arena`) of each row.
    pub(super) rows: Vec<(i64, usize)>,
    /// The row being filled, not yet sealed.
    pub(super) raw: Vec<u8>,
    /// A row is being filled.
    open: bool,
    /// The compressor every row of the batch is sealed with.
    z: zstd::bulk::Compressor<'static>,
}

impl SliceBatch {
    /// Rows per statement (200 parameters).
    const ROWS: usize = 100;
    /// Bytes per statement.
    const BYTES: usize = 4 << 20;

    /// An empty batch.
    pub(super) fn new() -> SliceBatch {
        SliceBatch {
            arena: Vec::new(),
            rows: Vec::new(),
            raw: Vec::new(),
            open: false,
            z: codec::row_compressor(),
        }
    }

    /// True when the batch should be written before another row starts.
    pub(super) fn is_full(&self) -> bool {
        self.rows.len() >= Self::ROWS || self.arena.len() + self.raw.len() >= Self::BYTES
    }

    /// Starts a row; entries appended to `raw` from now on belong to it.
    pub(super) fn start(&mut self, slice: i64) {
        self.seal();
        self.rows.push((slice, self.arena.len()));
        self.open = true;
    }

    /// Seals the row being filled, if any.
    pub(super) fn seal(&mut self) {
        if std::mem::take(&mut self.open) {
            codec::seal_row(&self.raw, &mut self.arena, &mut self.z);
            self.raw.clear();
        }
    }
}

/// For every slice holding stored copies, the nodes (row id, address) whose
/// stores have entries in it, in slice order. Each store is searched once
/// per slice it has entries in, not read through.
pub(super) fn slice_holders(
    world: &World,
    nodes: &[(NodeId, i64)],
) -> Vec<(i64, Vec<(i64, NodeId)>)> {
    let bits = world.bits();
    let last = (1i64 << SLICE_BITS.min(bits.get())) - 1;
    let top = slice_span(bits, last).1;
    let mut by_slice: BTreeMap<i64, Vec<(i64, NodeId)>> = BTreeMap::new();
    for &(id, nid) in nodes {
        let store = &world.node(id).expect("live node").store;
        let mut from = Id::ZERO;
        while let Some((pos, _, _)) = store.entries_between(from, top).next() {
            let slice = slice_of(bits, pos);
            by_slice.entry(slice).or_default().push((nid, id));
            if slice == last {
                break;
            }
            from = slice_span(bits, slice + 1).0;
        }
    }
    by_slice.into_iter().collect()
}

/// One encoder of [`State::write_fresh`]: every slice given, gathered from
/// its holders' stores and sent in full batches. Stops early when the
/// writer stops receiving.
pub(super) fn encode_fresh(
    world: &World,
    slices: Vec<(i64, Vec<(i64, NodeId)>)>,
    full: &tokio::sync::mpsc::Sender<SliceBatch>,
    spares: &Mutex<Vec<SliceBatch>>,
) {
    let spare = || {
        spares
            .lock()
            .expect("no encoder panics")
            .pop()
            .unwrap_or_else(SliceBatch::new)
    };
    let mut batch = spare();
    let mut copies: Vec<codec::SliceCopy> = Vec::new();
    for (slice, holders) in slices {
        if batch.is_full()
            && full
                .blocking_send(std::mem::replace(&mut batch, spare()))
                .is_err()
        {
            return;
        }
        copies.clear();
        gather_slice(world, slice, holders, &mut copies);
        batch.start(slice);
        codec::put_slice(&mut batch.raw, &mut copies);
    }
    let _ = full.blocking_send(batch);
}

/// Appends to `copies` every entry in `slice` of the stores of `holders`
/// (node row id, address), each with its holder's row id: a slice row's
/// contents, for [`codec::put_slice`].
pub(super) fn gather_slice<'w>(
    world: &'w World,
    slice: i64,
    holders: impl IntoIterator<Item = (i64, NodeId)>,
    copies: &mut Vec<codec::SliceCopy<'w>>,
) {
    let (lo, hi) = slice_span(world.bits(), slice);
    for (nid, id) in holders {
        let store = &world.node(id).expect("live node").store;
        copies.extend(
            store
                .entries_between(lo, hi)
                .map(|(pos, text, v)| (pos, text, v, nid)),
        );
    }
}

/// The slices table: one row per slice of the ring holding any copy.
pub(super) const CREATE_SLICES: &str = "CREATE TABLE slices (
    slice INTEGER PRIMARY KEY,
    data BLOB NOT NULL)";

/// Decodes slice row `slice`, calling `each` with every copy and its
/// holder's row id; `each` answers None for a holder that is not a node.
/// Returns what is damaged: the row, or a copy held by no node.
pub(super) fn read_slice(
    slice: i64,
    data: &[u8],
    mut each: impl FnMut(&Key, &Versioned, i64) -> Option<()>,
) -> Result<(), String> {
    let mut orphan = None;
    codec::for_each_copy(data, |key, v, nid| {
        if orphan.is_none() && each(key, v, nid).is_none() {
            orphan = Some(nid);
        }
    })
    .map_err(|e| format!("table slices, row {slice}: stored entries: {e}"))?;
    match orphan {
        Some(nid) => Err(format!(
            "table slices, row {slice}: holds copies for no node (node row {nid})"
        )),
        None => Ok(()),
    }
}

/// The (slice, data) columns of a row of the slices table, or what is wrong
/// with them.
pub(super) fn slice_row(row: &sqlx::sqlite::SqliteRow) -> Result<(i64, &[u8]), String> {
    let slice: i64 = super::column(row, 0).map_err(|e| format!("table slices: {e}"))?;
    let data: &[u8] =
        super::column(row, 1).map_err(|e| format!("table slices, row {slice}: {e}"))?;
    Ok((slice, data))
}
