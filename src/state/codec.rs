//! Compact binary forms for the state database: a node's routing state
//! (predecessor, successor and predecessor lists, fingers, upkeep counters),
//! and chunks of a node's stored entries.
//!
//! Binary rather than JSON because a ring may hold many nodes and millions of
//! entries and the form is internal; it carries its own length checks so a
//! damaged row is reported, never half-read.

use crate::chord::finger::FingerTable;
use crate::chord::store::{Key, Versioned};
use crate::chord::{Id, Node, NodeId, Params};

/// A routing blob did not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("damaged routing state: {0}")]
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
pub fn encode(node: &Node) -> Vec<u8> {
    let mut out = Vec::with_capacity(
        64 + NODE_ID_LEN * (node.succs.len() + node.preds.len() + node.fingers.runs().len()),
    );
    out.push(1); // codec version
    put_opt(&mut out, node.pred);
    put_opt(&mut out, node.pred_candidate);
    put_list(&mut out, &node.succs);
    put_list(&mut out, &node.preds);
    out.push(node.fingers.runs().len() as u8);
    for &(i, n) in node.fingers.runs() {
        out.push(i);
        put_node_id(&mut out, n);
    }
    out.push(node.next_finger);
    out.extend_from_slice(&node.replicated.to_le_bytes());
    out
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

/// Appends one stored entry to a chunk: position (20 bytes), version (8,
/// little-endian), key text (4-byte length, UTF-8), then 0 for a tombstone
/// or 1 and the value as JSON text (4-byte length). The JSON text keeps every
/// digit and member order (serde_json's arbitrary precision and preserved
/// order), so values come back exactly as stored.
pub fn put_entry(out: &mut Vec<u8>, pos: Id, text: &str, v: &Versioned) {
    out.extend_from_slice(&pos.to_bytes());
    out.extend_from_slice(&v.version.to_le_bytes());
    out.extend_from_slice(&(text.len() as u32).to_le_bytes());
    out.extend_from_slice(text.as_bytes());
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

/// Appends a chunk row's bytes for the entries `raw` (as [`put_entry`] wrote
/// them): a tag, 0 for raw entries or 1 for zstd (level 1) with the raw
/// length first. Entries of text columns compress to a third or less, and
/// the file's size is what a load spends its last second writing (twice:
/// SQLite's log, then its checkpoint).
pub fn seal_chunk(raw: &[u8], out: &mut Vec<u8>, z: &mut zstd::bulk::Compressor<'_>) {
    if raw.len() >= COMPRESS_FROM
        && let Ok(packed) = z.compress(raw)
    {
        out.push(1);
        out.extend_from_slice(&(raw.len() as u32).to_le_bytes());
        out.extend_from_slice(&packed);
        return;
    }
    out.push(0);
    out.extend_from_slice(raw);
}

/// A compressor for [`seal_chunk`].
pub fn chunk_compressor() -> zstd::bulk::Compressor<'static> {
    zstd::bulk::Compressor::new(1).expect("zstd accepts level 1")
}

/// Decodes a chunk row written by [`seal_chunk`], calling `each` per entry
/// in the order written. Stops at the first damage.
pub fn for_each_entry(chunk: &[u8], mut each: impl FnMut(Key, Versioned)) -> Result<(), Damaged> {
    let unpacked;
    let raw = match chunk.split_first() {
        Some((0, rest)) => rest,
        Some((1, rest)) => {
            let mut r = Reader(rest);
            let len = r.u32()? as usize;
            unpacked = zstd::bulk::decompress(r.0, len)
                .map_err(|_| Damaged("compressed entries do not decompress"))?;
            if unpacked.len() != len {
                return Err(Damaged("compressed entries have the wrong length"));
            }
            &unpacked[..]
        }
        _ => return Err(Damaged("unknown chunk encoding")),
    };
    let mut r = Reader(raw);
    while !r.0.is_empty() {
        let pos = Id::from_bytes(r.take(20)?.try_into().expect("20 bytes"));
        let version = u64::from_le_bytes(r.take(8)?.try_into().expect("8 bytes"));
        let len = r.u32()? as usize;
        let text: std::sync::Arc<str> = std::str::from_utf8(r.take(len)?)
            .map_err(|_| Damaged("key text is not UTF-8"))?
            .into();
        let value = match r.u8()? {
            0 => None,
            1 => {
                let len = r.u32()? as usize;
                Some(std::sync::Arc::new(
                    serde_json::from_slice(r.take(len)?)
                        .map_err(|_| Damaged("stored value is not valid JSON"))?,
                ))
            }
            _ => return Err(Damaged("bad value tag")),
        };
        each(Key::new(pos, text), Versioned { version, value });
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
    let mut r = Reader(blob);
    if r.u8()? != 1 {
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
    if fingers.first().is_some_and(|f| f.0 != 0) {
        return Err(Damaged("finger runs do not start at 0"));
    }
    node.fingers = FingerTable::from_runs(fingers);
    node.next_finger = r.u8()?;
    node.replicated = u64::from_le_bytes(r.take(8)?.try_into().expect("8 bytes"));
    if !r.0.is_empty() {
        return Err(Damaged("trailing bytes"));
    }
    Ok(node)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chord::Bits;
    use crate::sim::World;

    #[test]
    fn round_trips_every_node_of_a_ring() {
        let params = Params {
            bits: Bits::MAX,
            replicas: 3,
        };
        let w = World::bulk(params, 1, (0..50).map(|i| (format!("n{i}"), None))).unwrap();
        for n in w.nodes() {
            let back = decode(n.id, params, &encode(n)).unwrap();
            assert_eq!(
                (back.pred, &back.succs, &back.preds, &back.fingers),
                (n.pred, &n.succs, &n.preds, &n.fingers)
            );
            assert_eq!(decode_node_id(&node_id_bytes(n.id)).unwrap(), n.id);
        }
    }

    #[test]
    fn entries_round_trip_exactly() {
        let bits = Bits::MAX;
        let values = [
            Some(serde_json::from_str(r#"{"b": 1, "a": [1.50, "x\n\"y\""], "n": null}"#).unwrap()),
            Some(serde_json::from_str("123456789012345678901234567890.000").unwrap()),
            None,
            Some(serde_json::json!("")),
        ];
        let texts = ["plain", "", "ünïcödé, \"quoted\"\nline", "k"];
        let mut chunk = Vec::new();
        let mut want = Vec::new();
        for (i, (t, v)) in texts.iter().zip(values).enumerate() {
            let key = Key::new(bits.hash(t), *t);
            let v = Versioned {
                version: i as u64 * 1_000_003,
                value: v.map(std::sync::Arc::new),
            };
            put_entry(&mut chunk, key.id, &key.text, &v);
            want.push((key, v));
        }
        // Raw and compressed rows alike.
        let mut z = chunk_compressor();
        let mut sealed = Vec::new();
        seal_chunk(&chunk.repeat(3), &mut sealed, &mut z);
        assert_eq!(sealed[0], 1, "a chunk this long is compressed");
        let mut got = Vec::new();
        for_each_entry(&sealed, |k, v| got.push((k, v))).unwrap();
        assert_eq!(got, [want.clone(), want.clone(), want.clone()].concat());
        let mut small = Vec::new();
        seal_chunk(&chunk[..0], &mut small, &mut z);
        assert_eq!(small, vec![0]);
        for_each_entry(&small, |_, _| panic!("no entries")).unwrap();
        let mut raw = vec![0];
        raw.extend_from_slice(&chunk);
        got.clear();
        for_each_entry(&raw, |k, v| got.push((k, v))).unwrap();
        assert_eq!(got, want);
        // Same JSON text, digit for digit and member for member.
        assert_eq!(
            serde_json::to_string(&got[1].1.value).unwrap(),
            "123456789012345678901234567890.000"
        );
        assert_eq!(
            serde_json::to_string(&got[0].1.value).unwrap(),
            r#"{"b":1,"a":[1.50,"x\n\"y\""],"n":null}"#
        );
        for v in [
            serde_json::json!("plain text, with commas"),
            serde_json::json!("tab\there"),
            serde_json::json!("quote \" and backslash \\"),
            serde_json::json!("ünïcödé \u{7f} \u{1}"),
            serde_json::json!(""),
        ] {
            let mut a = Vec::new();
            write_json(&mut a, &v);
            assert_eq!(a, serde_json::to_vec(&v).unwrap(), "{v}");
        }
        for cut in [2, 19, 30, raw.len() - 1] {
            assert!(
                for_each_entry(&raw[..cut], |_, _| ()).is_err(),
                "cut at {cut}"
            );
        }
        for cut in [1, 3, 10, sealed.len() - 1] {
            assert!(
                for_each_entry(&sealed[..cut], |_, _| ()).is_err(),
                "cut at {cut}"
            );
        }
        assert!(for_each_entry(&[7, 1, 2], |_, _| ()).is_err());
    }

    #[test]
    fn damage_is_reported() {
        let params = Params {
            bits: Bits::MAX,
            replicas: 3,
        };
        let w = World::bulk(params, 1, (0..5).map(|i| (format!("n{i}"), None))).unwrap();
        let n = w.nodes().next().unwrap();
        let blob = encode(n);
        assert!(decode(n.id, params, &blob[..blob.len() - 3]).is_err());
        let mut extra = blob.clone();
        extra.push(0);
        assert!(decode(n.id, params, &extra).is_err());
        assert!(decode(n.id, params, &[9]).is_err());
    }
}
