//! A load larger than memory: after each part of the source, what the
//! part's puts stored moves out of the nodes' stores into spill files
//! beside the state file (one per run of slices), and when the load ends
//! the spilled copies are merged into the slice rows, one slice at a time.
//! Memory then holds one part's copies, or one run of slices, never the
//! whole load; the spill files are removed however the load ends.

use super::codec;
use super::slice::{SLICE_BITS, SliceBatch, slice_of};
use super::{Loaded, State, StateError};
use crate::chord::store::{Entry, Key, Versioned};
use crate::chord::{Bits, Id, NodeId};
use std::collections::BTreeMap;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Copies a load moved out of memory, waiting to be merged into the file.
pub struct Spill {
    dir: PathBuf,
    files: Vec<Option<BufWriter<std::fs::File>>>,
    /// Entries written after this version are the load's.
    since: u64,
    bits: Bits,
    sealed: Vec<u8>,
    z: zstd::bulk::Compressor<'static>,
    /// The fragments on their way to one file (see [`Spill::write`]), and
    /// that file.
    block: Vec<u8>,
    block_file: Option<usize>,
}

/// What merging the spilled copies found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Merged {
    /// Distinct keys the load wrote.
    pub keys: u64,
    /// Writes of a key that a part before had written too: each is an
    /// overwrite that its put, finding the earlier part's copy moved out,
    /// took for an insert.
    pub rewrites: u64,
}

impl Drop for Spill {
    fn drop(&mut self) {
        self.files.clear();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Spill {
    /// How many spill files a load's copies are spread over, by their
    /// slices' leading bits: merging reads one file, 1/256 of the load, at
    /// a time.
    pub const FILES: usize = 256;

    /// A spill for a load into the ring of `loaded`, in a new directory
    /// beside the state file `state` (the file system that must hold the
    /// ring anyway). Entries written after the world's clock now are the
    /// load's.
    pub fn new(state: &Path, loaded: &Loaded) -> std::io::Result<Spill> {
        let parent = match state.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let name = state
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        // Spill files of loads that were killed go first.
        let prefix = format!(".{name}.load-");
        crate::leftovers::sweep(parent, |n| n.strip_prefix(&prefix)?.parse().ok());
        let dir = parent.join(format!("{prefix}{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        Ok(Spill {
            dir,
            files: (0..Spill::FILES).map(|_| None).collect(),
            since: loaded.world.counters().clock,
            bits: loaded.world.bits(),
            sealed: Vec::new(),
            z: codec::row_compressor(),
            block: Vec::new(),
            block_file: None,
        })
    }

    /// The spill file of `slice`.
    fn file_of(&self, slice: i64) -> usize {
        let slice_bits = SLICE_BITS.min(self.bits.get());
        let shift = slice_bits.saturating_sub(Spill::FILES.trailing_zeros());
        (slice >> shift) as usize
    }

    /// Adds one slice's copies to the block of its file. Slices come in
    /// order, so a file's fragments of one spill form one block, sealed
    /// (compressed, with its checksum) as a whole when the next file's
    /// start or [`Spill::end_block`]: one compression per file rather
    /// than one per slice.
    fn write(&mut self, slice: i64, copies: &mut [codec::SliceCopy<'_>]) -> std::io::Result<()> {
        let f = self.file_of(slice);
        if self.block_file != Some(f) {
            self.end_block()?;
            self.block_file = Some(f);
        }
        self.block.extend_from_slice(&slice.to_le_bytes());
        let len_at = self.block.len();
        self.block.extend_from_slice(&[0; 4]);
        codec::put_slice(&mut self.block, copies);
        let len = (self.block.len() - len_at - 4) as u32;
        self.block[len_at..len_at + 4].copy_from_slice(&len.to_le_bytes());
        Ok(())
    }

    /// Seals the block being filled and appends it to its file.
    fn end_block(&mut self) -> std::io::Result<()> {
        let Some(f) = self.block_file.take() else {
            return Ok(());
        };
        self.sealed.clear();
        codec::seal_row(&self.block, &mut self.sealed, &mut self.z);
        self.block.clear();
        if self.files[f].is_none() {
            let file = std::fs::File::create(self.dir.join(format!("{f:03}")))?;
            self.files[f] = Some(BufWriter::with_capacity(64 << 10, file));
        }
        let out = self.files[f].as_mut().expect("opened above");
        out.write_all(&(self.sealed.len() as u32).to_le_bytes())?;
        out.write_all(&self.sealed)
    }

    /// The fragments of spill file `f`: (slice, copies as
    /// [`codec::put_slice`] wrote them), in the order written.
    fn read_file(&self, f: usize) -> std::io::Result<Vec<(i64, Vec<u8>)>> {
        let mut bytes = Vec::new();
        match std::fs::File::open(self.dir.join(format!("{f:03}"))) {
            Ok(mut file) => file.read_to_end(&mut bytes)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let cut = || std::io::Error::other("a spill file ends in the middle");
        let mut out = Vec::new();
        let mut rest = &bytes[..];
        while !rest.is_empty() {
            let (len, after) = split_u32(rest).ok_or_else(cut)?;
            let (sealed, after) = after.split_at_checked(len).ok_or_else(cut)?;
            rest = after;
            let block = codec::unseal_row(sealed)
                .map_err(|e| std::io::Error::other(format!("a spill file is damaged: {e}")))?;
            let mut inner = &block[..];
            while !inner.is_empty() {
                let (slice, after) = inner.split_at_checked(8).ok_or_else(cut)?;
                let slice = i64::from_le_bytes(slice.try_into().expect("8 bytes"));
                let (len, after) = split_u32(after).ok_or_else(cut)?;
                let (raw, after) = after.split_at_checked(len).ok_or_else(cut)?;
                out.push((slice, raw.to_vec()));
                inner = after;
            }
        }
        Ok(out)
    }
}

/// A little-endian u32 length at the start of `b`, and the rest.
fn split_u32(b: &[u8]) -> Option<(usize, &[u8])> {
    let (n, rest) = b.split_at_checked(4)?;
    Some((
        u32::from_le_bytes(n.try_into().expect("4 bytes")) as usize,
        rest,
    ))
}

impl Loaded {
    /// Moves every copy the load wrote so far out of the stores into
    /// `spill`, and notes the slices the stores' other changes touch (for
    /// [`State::save`]). The ring's nodes must be in the file already (a
    /// new ring saved once before its load), since copies name their
    /// holders by row id. Every block it starts is written before it
    /// returns (see [`Spill::end_block`]).
    pub fn spill(&mut self, spill: &mut Spill) -> std::io::Result<()> {
        let bits = self.world.bits();
        let members: Vec<NodeId> = self.world.members().collect();
        let mut taken: Vec<(Entry, i64)> = Vec::new();
        for id in members {
            let nid = self
                .nodes
                .get(&id)
                .expect("nodes are saved before a spill")
                .0;
            let store = &mut self.world.node_mut(id).expect("live node").store;
            let entries = store.take_newer_than(spill.since);
            // What else changed (maintenance moving older copies) is saved
            // from the stores; the journal is emptied so it stays small.
            // It names every key taken too: its slices are found sorted,
            // each once, rather than a map lookup per key.
            let mut slices: Vec<i64> = store
                .take_changes()
                .into_iter()
                .map(|k| slice_of(bits, k.id))
                .collect();
            slices.sort_unstable();
            slices.dedup();
            for slice in slices {
                self.pending.entry(slice).or_default().insert(nid);
            }
            taken.extend(entries.into_iter().map(|e| (e, nid)));
        }
        taken.sort_unstable_by_key(|a| a.0.0.id);
        let mut copies: Vec<codec::SliceCopy<'_>> = Vec::new();
        for run in taken.chunk_by(|a, b| slice_of(bits, a.0.0.id) == slice_of(bits, b.0.0.id)) {
            copies.clear();
            copies.extend(run.iter().map(|((k, v), nid)| (k.id, &*k.text, v, *nid)));
            spill.write(slice_of(bits, run[0].0.0.id), &mut copies)?;
        }
        spill.end_block()
    }
}

impl State {
    /// Merges the spilled copies into the slice rows, after [`State::save`]
    /// wrote the ring itself: each slice's row is read, the spilled copies
    /// added (the newest write of a key on each holder wins), and written
    /// back. One spill file is in memory at a time; `progress` hears how
    /// many of the [`Spill::FILES`] are merged.
    pub async fn merge_spill(
        &mut self,
        mut spill: Spill,
        mut progress: impl FnMut(usize),
    ) -> Result<Merged, StateError> {
        let io = |path: &Path, e: std::io::Error| StateError::Sql {
            path: path.to_path_buf(),
            cause: sqlx::Error::Io(std::io::Error::new(
                e.kind(),
                format!("spill files of the load: {e}"),
            )),
        };
        for f in spill.files.iter_mut().flatten() {
            f.flush().map_err(|e| io(&self.path, e))?;
        }
        spill.files.iter_mut().for_each(|f| *f = None);
        let mut merged = Merged::default();
        let mut batch = SliceBatch::new();
        for f in 0..Spill::FILES {
            progress(f);
            let mut fragments = spill.read_file(f).map_err(|e| io(&self.path, e))?;
            // Stable: a slice's fragments stay in the order written.
            fragments.sort_by_key(|(slice, _)| *slice);
            let (Some(first), Some(last)) = (fragments.first(), fragments.last()) else {
                continue;
            };
            // The rows these fragments join, read with one query.
            let mut stored: BTreeMap<i64, Vec<(Key, Versioned, i64, bool)>> = BTreeMap::new();
            let bits = spill.bits;
            self.each_copy_between(first.0, last.0, |k, v, nid| {
                stored.entry(slice_of(bits, k.id)).or_default().push((
                    k.clone(),
                    v.clone(),
                    nid,
                    false,
                ))
            })
            .await?;
            for run in fragments.chunk_by(|a, b| a.0 == b.0) {
                let slice = run[0].0;
                let mut copies = stored.remove(&slice).unwrap_or_default();
                for (_, data) in run {
                    codec::for_each_raw_copy(data, |k, v, nid| {
                        copies.push((k.clone(), v.clone(), nid, true))
                    })
                    .map_err(|e| io(&self.path, std::io::Error::other(e.to_string())))?;
                }
                count_keys(&copies, &mut merged);
                // The newest write of each key on each holder.
                copies.sort_by(|a, b| {
                    (a.0.id, &a.0.text, a.2)
                        .cmp(&(b.0.id, &b.0.text, b.2))
                        .then(b.1.version.cmp(&a.1.version))
                });
                copies.dedup_by(|later, first| {
                    later.0.id == first.0.id && later.0.text == first.0.text && later.2 == first.2
                });
                if batch.is_full() {
                    self.flush_slices(&mut batch, true).await?;
                }
                let mut refs: Vec<codec::SliceCopy<'_>> = copies
                    .iter()
                    .map(|(k, v, nid, _)| (k.id, &*k.text, v, *nid))
                    .collect();
                batch.start(slice);
                codec::put_slice(&mut batch.raw, &mut refs);
            }
        }
        self.flush_slices(&mut batch, true).await?;
        progress(Spill::FILES);
        Ok(merged)
    }

    /// The first `show` live keys in the order a listing of the ring in
    /// memory gives them (node by node from the lowest id, each node's keys
    /// in position order), each with the value and address of the node
    /// responsible for it, read from the file: for a load whose keys are
    /// no longer in memory.
    pub async fn first_keys(
        &mut self,
        loaded: &Loaded,
        show: usize,
    ) -> Result<Vec<(Key, Arc<serde_json::Value>, NodeId)>, StateError> {
        let members: Vec<NodeId> = loaded.world.members().collect();
        let (Some(&first), Some(&last)) = (members.first(), members.last()) else {
            return Ok(Vec::new());
        };
        let bits = loaded.world.bits();
        let by_nid: std::collections::HashMap<i64, NodeId> = loaded
            .nodes
            .iter()
            .map(|(id, (nid, _))| (*nid, *id))
            .collect();
        let top = super::slice::slice_span(bits, (1i64 << SLICE_BITS.min(bits.get())) - 1).1;
        // The lowest node holds (last, top] and [0, first]: its keys in
        // position order are those up to `first`, then those past `last`.
        let spans = [
            (Id::ZERO, first.id(), true),
            (last.id(), top, false),
            (first.id(), last.id(), false),
        ];
        let mut out = Vec::new();
        for (lo, hi, closed) in spans {
            let (first, last) = (slice_of(bits, lo), slice_of(bits, hi));
            // Runs of slices, so a ring of few keys needs no query per
            // empty slice, and a full one is not read whole for a preview.
            for from in (first..=last).step_by(FIRST_KEYS_RUN as usize) {
                if out.len() >= show {
                    return Ok(out);
                }
                let to = (from + FIRST_KEYS_RUN - 1).min(last);
                let mut here = Vec::new();
                self.each_copy_between(from, to, |k, v, nid| {
                    let inside = if closed {
                        k.id <= hi
                    } else {
                        k.id > lo && k.id <= hi
                    };
                    if let (true, Some(value), Some(&holder)) = (inside, &v.value, by_nid.get(&nid))
                        && responsible(&members, k.id) == holder
                    {
                        here.push((k.clone(), Arc::clone(value), holder));
                    }
                })
                .await?;
                out.extend(here.into_iter().take(show - out.len()));
            }
        }
        Ok(out)
    }
}

/// Slices [`State::first_keys`] reads with one query.
const FIRST_KEYS_RUN: i64 = 256;

/// The member responsible for `pos`: the first at or after it.
fn responsible(members: &[NodeId], pos: Id) -> NodeId {
    let i = members.partition_point(|m| m.id() < pos);
    members[i % members.len()]
}

/// Counts, in one slice's copies, the keys the load wrote (those with a
/// spilled copy) and the writes of each beyond its first: a key's spilled
/// copies carry one version per part that wrote it.
fn count_keys(copies: &[(Key, Versioned, i64, bool)], merged: &mut Merged) {
    let mut spilled: Vec<(&Key, u64)> = copies
        .iter()
        .filter(|c| c.3)
        .map(|c| (&c.0, c.1.version))
        .collect();
    spilled.sort_unstable_by(|a, b| (a.0.id, &a.0.text, a.1).cmp(&(b.0.id, &b.0.text, b.1)));
    spilled.dedup();
    for versions in spilled.chunk_by(|a, b| a.0 == b.0) {
        merged.keys += 1;
        merged.rewrites += versions.len() as u64 - 1;
    }
}
