//! Compact binary forms for the state database: a node's routing state
//! (predecessor, successor and predecessor lists, fingers, upkeep counters),
//! and slices of the ring's stored copies (format 3), or, in files of format
//! 2 being upgraded, chunks of one node's entries.
//!
//! Binary rather than JSON because a ring may hold many nodes and millions of
//! entries and the form is internal; it carries its own length checks so a
//! damaged row is reported, never half-read.

use crate::chord::finger::FingerTable;
use crate::chord::node::ReplicaPush;
use crate::chord::store::{Key, Versioned};
use crate::chord::{Id, Node, NodeId, Params};

/// A routing blob did not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Damaged(pub &'static str);

const NODE_ID_LEN: usize = 24;

fn put_node_id(out: &mut Vec<u8>, n: NodeId) {
    out.extend_from_slice(&n.id().to_bytes());
    out.extend_from_slice(&n.incarnation().to_le_bytes());
}

fn put_opt(out: &mut Vec<u8>, n: Option<NodeId>) {
    match n {
        Some(n) => {
            out.push(1);
            put_node_id(out, n);
        }
        None => out.push(0),
    }
}

fn put_list(out: &mut Vec<u8>, list: &[NodeId]) {
    out.push(list.len() as u8);
    for &n in list {
        put_node_id(out, n);
    }
}

/// The routing state of `node` (everything but its id, params and data).
///
/// Destructures the node, so a new field is a compile error here until the
/// codec decides what to do with it.
pub fn encode(node: &Node) -> Vec<u8> {
    let Node {
        id: _,     // the row's key column
        params: _, // the ring's settings row
        store: _,  // the slices table
        succs,
        fingers,
        preds,
        replicated,
        pred,
        pred_candidate,
        next_finger,
        upkeeps,
        suspect,
    } = node;
    let mut out =
        Vec::with_capacity(64 + NODE_ID_LEN * (succs.len() + preds.len() + fingers.runs().len()));
    out.push(NODE_CODEC);
    put_opt(&mut out, *pred);
    put_opt(&mut out, *pred_candidate);
    put_list(&mut out, succs);
    put_list(&mut out, preds);
    out.push(fingers.runs().len() as u8);
    for &(i, n) in fingers.runs() {
        out.push(i);
        put_node_id(&mut out, n);
    }
    out.push(*next_finger);
    out.extend_from_slice(&replicated.to_bits().to_le_bytes());
    out.push(*upkeeps);
    out.push(u8::from(*suspect));
    let s = node_sum(node.id, &out);
    out.extend_from_slice(&s);
    out
}

/// The checksum of a node's routing blob covers its address too (stored in
/// a column of its own), so a changed address is caught like a changed
/// pointer.
fn node_sum(id: NodeId, body: &[u8]) -> [u8; SUM_LEN] {
    let mut covered = node_id_bytes(id);
    covered.extend_from_slice(body);
    sum(&covered)
}

/// The routing blob of the node at `id`, its checksum verified.
fn verify_node_sum(id: NodeId, blob: &[u8]) -> Result<&[u8], Damaged> {
    checked(blob, |b| node_sum(id, b))
}

/// Checks the routing blob of the node at `id` against its checksum
/// without decoding it: for a command that reads past node rows it does
/// not use, and must still report them damaged.
pub fn verify_routing(id: NodeId, blob: &[u8]) -> Result<(), Damaged> {
    verify_node_sum(id, blob).map(|_| ())
}

/// A routing blob of a file before format 4 sealed with its checksum (one
/// already sealed is left as it is).
pub fn resealed_node(id: NodeId, old: &[u8]) -> Vec<u8> {
    resealed_with(old, |b| node_sum(id, b))
}

/// The version of the node routing blob [`encode`] writes. Version 1 (no
/// upkeep counter or anti-entropy flag) is still read.
const NODE_CODEC: u8 = 2;

/// Bytes of the checksum every stored blob (node routing, slice rows) ends
/// with: XXH3-64 of the bytes before it, little-endian.
pub const SUM_LEN: usize = 8;

/// The checksum of `bytes`.
fn sum(bytes: &[u8]) -> [u8; SUM_LEN] {
    xxhash_rust::xxh3::xxh3_64(bytes).to_le_bytes()
}

/// Appends the checksum of `out[from..]`, sealing the blob that starts at
/// `from`.
pub fn append_sum(out: &mut Vec<u8>, from: usize) {
    let s = sum(&out[from..]);
    out.extend_from_slice(&s);
}

/// The contents of a sealed blob, or damage when its checksum does not
/// match: any changed bit, however it got there, is caught here.
pub fn verify_sum(blob: &[u8]) -> Result<&[u8], Damaged> {
    checked(blob, sum)
}

/// The body of `blob` if its last [`SUM_LEN`] bytes are `sum_of(body)`.
fn checked(blob: &[u8], sum_of: impl Fn(&[u8]) -> [u8; SUM_LEN]) -> Result<&[u8], Damaged> {
    if blob.len() < SUM_LEN {
        return Err(Damaged("too short to hold its checksum"));
    }
    let (body, s) = blob.split_at(blob.len() - SUM_LEN);
    if sum_of(body) != s {
        return Err(Damaged(
            "checksum mismatch: changed outside dht, or damaged on disk",
        ));
    }
    Ok(body)
}

/// `old` sealed by `sum_of`, a checksum it already ends with replaced.
fn resealed_with(old: &[u8], sum_of: impl Fn(&[u8]) -> [u8; SUM_LEN] + Copy) -> Vec<u8> {
    let mut v = checked(old, sum_of).unwrap_or(old).to_vec();
    let s = sum_of(&v);
    v.extend_from_slice(&s);
    v
}

/// A blob of a file written before checksums (format 3 or older), as its
/// contents: a blob that already ends with a valid checksum (one a test or
/// a newer build wrote) loses it, any other is taken whole.
pub fn strip_sum_if_present(blob: &[u8]) -> &[u8] {
    verify_sum(blob).unwrap_or(blob)
}

/// An older blob sealed with its checksum, for a format upgrade.
pub fn resealed(old: &[u8]) -> Vec<u8> {
    resealed_with(old, sum)
}

/// Encodes a node address for an index column: 20 position bytes then the
/// incarnation.
pub fn node_id_bytes(n: NodeId) -> Vec<u8> {
    let mut v = Vec::with_capacity(NODE_ID_LEN);
    put_node_id(&mut v, n);
    v
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], Damaged> {
        if self.0.len() < n {
            return Err(Damaged("truncated"));
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8, Damaged> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, Damaged> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }
    fn node_id(&mut self) -> Result<NodeId, Damaged> {
        let b = self.take(NODE_ID_LEN)?;
        let id = Id::from_bytes(b[..20].try_into().expect("20 bytes"));
        let inc = u32::from_le_bytes(b[20..].try_into().expect("4 bytes"));
        Ok(NodeId::new(id, inc))
    }
    fn opt(&mut self) -> Result<Option<NodeId>, Damaged> {
        match self.u8()? {
            0 => Ok(None),
            1 => Ok(Some(self.node_id()?)),
            _ => Err(Damaged("bad option tag")),
        }
    }
    fn list(&mut self) -> Result<Vec<NodeId>, Damaged> {
        let n = self.u8()?;
        (0..n).map(|_| self.node_id()).collect()
    }
}

/// Appends one stored entry to a format-2 chunk (one node's entries):
/// position (20 bytes), version (8, little-endian), key text (4-byte length,
/// UTF-8), then 0 for a tombstone or 1 and the value as JSON text (4-byte
/// length). The JSON text keeps every digit and member order (serde_json's
/// arbitrary precision and preserved order), so values come back exactly as
/// stored. This build writes format 3 ([`put_slice`]); this stays for the
/// tests that make format-2 files to upgrade (feature `testkit`).
#[cfg(any(test, feature = "testkit"))]
pub fn put_entry(out: &mut Vec<u8>, pos: Id, text: &str, v: &Versioned) {
    out.extend_from_slice(&pos.to_bytes());
    out.extend_from_slice(&v.version.to_le_bytes());
    out.extend_from_slice(&(text.len() as u32).to_le_bytes());
    out.extend_from_slice(text.as_bytes());
    put_value(out, v);
}

/// Appends a value: 0 for a tombstone, or 1 and its JSON text with a 4-byte
/// length.
fn put_value(out: &mut Vec<u8>, v: &Versioned) {
    match &v.value {
        None => out.push(0),
        Some(value) => {
            out.push(1);
            let at = out.len();
            out.extend_from_slice(&[0; 4]);
            write_json(out, value);
            let len = (out.len() - at - 4) as u32;
            out[at..at + 4].copy_from_slice(&len.to_le_bytes());
        }
    }
}

/// Appends `value` as JSON text. A string with nothing to escape (the
/// common value of a text column) is copied between quotes directly; the
/// rest goes through serde_json. Same text either way.
fn write_json(out: &mut Vec<u8>, value: &serde_json::Value) {
    if let serde_json::Value::String(s) = value
        && s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\')
    {
        out.reserve(s.len() + 2);
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
        return;
    }
    serde_json::to_writer(&mut *out, value).expect("writing JSON to memory cannot fail");
}

/// Chunks this long or longer are compressed.
const COMPRESS_FROM: usize = 256;

/// Appends a stored row's bytes for the raw entries `raw` (as [`put_slice`],
/// or in format 2 [`put_entry`], wrote them): a tag, 0 for raw entries or 1
/// for zstd (level 1) with the raw length first. Entries of text columns
/// compress to a third or less, and the file's size is what a load spends
/// its last part writing (twice: SQLite's log, then its checkpoint).
pub fn seal_row(raw: &[u8], out: &mut Vec<u8>, z: &mut zstd::bulk::Compressor<'_>) {
    let start = out.len();
    let packed = if raw.len() >= COMPRESS_FROM {
        z.compress(raw).ok()
    } else {
        None
    };
    match packed {
        Some(packed) => {
            out.push(1);
            out.extend_from_slice(&(raw.len() as u32).to_le_bytes());
            out.extend_from_slice(&packed);
        }
        _ => {
            out.push(0);
            out.extend_from_slice(raw);
        }
    }
    append_sum(out, start);
}

/// A compressor for [`seal_row`].
pub fn row_compressor() -> zstd::bulk::Compressor<'static> {
    zstd::bulk::Compressor::new(1).expect("zstd accepts level 1")
}

thread_local! {
    /// A decompression context per thread, made once: rows are many and
    /// small, and a context made for each row is a cost large loads notice.
    static UNPACKER: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        std::cell::RefCell::new(zstd::bulk::Decompressor::new().ok());
}

/// `packed` decompressed, at most `len` bytes.
fn decompress(packed: &[u8], len: usize) -> std::io::Result<Vec<u8>> {
    UNPACKER.with(|u| match u.borrow_mut().as_mut() {
        Some(u) => u.decompress(packed, len),
        None => zstd::bulk::decompress(packed, len),
    })
}

/// The raw bytes of a row written by [`seal_row`], its checksum verified.
fn unseal(row: &[u8]) -> Result<std::borrow::Cow<'_, [u8]>, Damaged> {
    unseal_body(verify_sum(row)?)
}

/// The raw bytes of a sealed row's body (tag and contents).
fn unseal_body(row: &[u8]) -> Result<std::borrow::Cow<'_, [u8]>, Damaged> {
    match row.split_first() {
        Some((0, rest)) => Ok(std::borrow::Cow::Borrowed(rest)),
        Some((1, rest)) => {
            let mut r = Reader(rest);
            let len = r.u32()? as usize;
            let unpacked = decompress(r.0, len)
                .map_err(|_| Damaged("compressed entries do not decompress"))?;
            if unpacked.len() != len {
                return Err(Damaged("compressed entries have the wrong length"));
            }
            Ok(std::borrow::Cow::Owned(unpacked))
        }
        _ => Err(Damaged("unknown row encoding")),
    }
}

impl Reader<'_> {
    fn pos(&mut self) -> Result<Id, Damaged> {
        Ok(Id::from_bytes(self.take(20)?.try_into().expect("20 bytes")))
    }
    fn version(&mut self) -> Result<u64, Damaged> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }
    fn text(&mut self) -> Result<std::sync::Arc<str>, Damaged> {
        let len = self.u32()? as usize;
        Ok(std::str::from_utf8(self.take(len)?)
            .map_err(|_| Damaged("key text is not UTF-8"))?
            .into())
    }
    fn value(&mut self) -> Result<Option<std::sync::Arc<serde_json::Value>>, Damaged> {
        match self.u8()? {
            0 => Ok(None),
            1 => {
                let len = self.u32()? as usize;
                Ok(Some(std::sync::Arc::new(
                    serde_json::from_slice(self.take(len)?)
                        .map_err(|_| Damaged("stored value is not valid JSON"))?,
                )))
            }
            _ => Err(Damaged("bad value tag")),
        }
    }
    fn varint(&mut self) -> Result<u64, Damaged> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(Damaged("overlong number"))
    }
}

/// Decodes a format-2 chunk row (one node's entries, [`put_entry`] sealed by
/// [`seal_row`]), calling `each` per entry in the order written. Stops at
/// the first damage. Only the upgrade of format-2 files reads these.
pub fn for_each_entry(chunk: &[u8], mut each: impl FnMut(Key, Versioned)) -> Result<(), Damaged> {
    // Format 2 wrote no checksums.
    let raw = unseal_body(strip_sum_if_present(chunk))?;
    let mut r = Reader(&raw);
    while !r.0.is_empty() {
        let pos = r.pos()?;
        let version = r.version()?;
        let text = r.text()?;
        let value = r.value()?;
        each(Key::new(pos, text), Versioned { version, value });
    }
    Ok(())
}

/// One stored copy on its way into a slice row: its position, key text and
/// versioned value, and the row id of the node holding it.
pub type SliceCopy<'a> = (Id, &'a str, &'a Versioned, i64);

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// True when two copies hold the same write (the same version of the same
/// value): they are stored once, with both holders.
fn same_write(a: &Versioned, b: &Versioned) -> bool {
    a.version == b.version
        && match (&a.value, &b.value) {
            (None, None) => true,
            (Some(x), Some(y)) => std::sync::Arc::ptr_eq(x, y) || x == y,
            _ => false,
        }
}

/// Appends the raw entries of one slice row (format 3): every stored copy of
/// every key in the slice, whichever node holds it. Each key is written
/// once: position (20 bytes), key text (4-byte length, UTF-8), the number of
/// distinct writes held (4 bytes), then per write its version (8 bytes),
/// value (0 for a tombstone, or 1 and the JSON text with a 4-byte length, as
/// in [`put_entry`]) and the row ids of the nodes holding it (a count, then
/// each id; LEB128 varints). A converged ring holds r identical copies of
/// each key, so this writes a key's text and value once instead of r times.
/// Sorts `copies` (by key, then version and holder), so rows are
/// deterministic and keys come out in ring order.
pub fn put_slice(out: &mut Vec<u8>, copies: &mut [SliceCopy<'_>]) {
    // Copies come as sorted runs, one per holder: a stable sort merges them.
    copies.sort_by(|a, b| (a.0, a.1, a.2.version, a.3).cmp(&(b.0, b.1, b.2.version, b.3)));
    let mut i = 0;
    while i < copies.len() {
        let (pos, text) = (copies[i].0, copies[i].1);
        let end = i + copies[i..]
            .iter()
            .take_while(|c| c.0 == pos && c.1 == text)
            .count();
        out.extend_from_slice(&pos.to_bytes());
        out.extend_from_slice(&(text.len() as u32).to_le_bytes());
        out.extend_from_slice(text.as_bytes());
        let count_at = out.len();
        out.extend_from_slice(&[0; 4]);
        let mut writes = 0u32;
        let mut j = i;
        while j < end {
            let v = copies[j].2;
            let k = j + copies[j..end]
                .iter()
                .take_while(|c| same_write(c.2, v))
                .count();
            out.extend_from_slice(&v.version.to_le_bytes());
            put_value(out, v);
            put_varint(out, (k - j) as u64);
            for c in &copies[j..k] {
                put_varint(out, c.3 as u64);
            }
            writes += 1;
            j = k;
        }
        out[count_at..count_at + 4].copy_from_slice(&writes.to_le_bytes());
        i = end;
    }
}

/// Decodes a slice row ([`put_slice`] sealed by [`seal_row`]), calling
/// `each` with every copy and the row id of its holder, keys in ring order.
/// The copies of one write share their key text and value. Stops at the
/// first damage.
pub fn for_each_copy(slice: &[u8], each: impl FnMut(&Key, &Versioned, i64)) -> Result<(), Damaged> {
    for_each_raw_copy(&unseal(slice)?, each)
}

/// The contents of a row sealed by [`seal_row`], checked against its
/// checksum.
pub fn unseal_row(row: &[u8]) -> Result<std::borrow::Cow<'_, [u8]>, Damaged> {
    unseal(row)
}

/// [`for_each_copy`] on copies as [`put_slice`] wrote them, not sealed.
pub fn for_each_raw_copy(
    raw: &[u8],
    mut each: impl FnMut(&Key, &Versioned, i64),
) -> Result<(), Damaged> {
    let mut r = Reader(raw);
    while !r.0.is_empty() {
        let pos = r.pos()?;
        let key = Key::new(pos, r.text()?);
        let writes = r.u32()?;
        if writes == 0 {
            return Err(Damaged("a key with no copies"));
        }
        for _ in 0..writes {
            let version = r.version()?;
            let v = Versioned {
                version,
                value: r.value()?,
            };
            let holders = r.varint()?;
            if holders == 0 {
                return Err(Damaged("a write with no holder"));
            }
            for _ in 0..holders {
                let nid = i64::try_from(r.varint()?).map_err(|_| Damaged("bad node row id"))?;
                each(&key, &v, nid);
            }
        }
    }
    Ok(())
}

/// Decodes a node address written by [`node_id_bytes`].
pub fn decode_node_id(b: &[u8]) -> Result<NodeId, Damaged> {
    let mut r = Reader(b);
    let n = r.node_id()?;
    if !r.0.is_empty() {
        return Err(Damaged("trailing bytes in node id"));
    }
    Ok(n)
}

/// Rebuilds a node from its id, the ring's params and its routing blob. Its
/// store starts empty; the caller loads data separately.
pub fn decode(id: NodeId, params: Params, blob: &[u8]) -> Result<Node, Damaged> {
    let mut r = Reader(verify_node_sum(id, blob)?);
    let codec = r.u8()?;
    if codec != 1 && codec != NODE_CODEC {
        return Err(Damaged("unknown codec version"));
    }
    let mut node = Node::create(id, params);
    node.pred = r.opt()?;
    node.pred_candidate = r.opt()?;
    node.succs = r.list()?;
    if node.succs.is_empty() {
        return Err(Damaged("empty successor list"));
    }
    node.preds = r.list()?;
    let runs = r.u8()?;
    let mut fingers = Vec::with_capacity(usize::from(runs));
    for _ in 0..runs {
        let i = r.u8()?;
        if u32::from(i) >= params.bits.get() || fingers.last().is_some_and(|&(p, _)| p >= i) {
            return Err(Damaged("finger runs out of order"));
        }
        fingers.push((i, r.node_id()?));
    }
    node.fingers = FingerTable::from_runs(fingers);
    node.next_finger = r.u8()?;
    node.replicated =
        ReplicaPush::from_bits(u64::from_le_bytes(r.take(8)?.try_into().expect("8 bytes")));
    if codec >= 2 {
        node.upkeeps = r.u8()?;
        node.suspect = match r.u8()? {
            0 => false,
            1 => true,
            _ => return Err(Damaged("anti-entropy flag not 0 or 1")),
        };
    }
    if !r.0.is_empty() {
        return Err(Damaged("trailing bytes"));
    }
    Ok(node)
}

#[cfg(test)]
mod tests;
