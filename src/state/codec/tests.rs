//! Tests of [`super`].

use super::*;
use crate::chord::Bits;
use crate::sim::World;

/// A converged full-width ring of `n` nodes with r = 3, and its params.
fn ring(n: usize) -> (Params, World) {
    let params = Params::new(160, 3);
    let w = World::bulk(params, 1, (0..n).map(|i| (format!("n{i}"), None))).unwrap();
    (params, w)
}

#[test]
fn round_trips_every_node_of_a_ring() {
    let (params, w) = ring(50);
    for (i, n) in w.nodes().enumerate() {
        // Every routing field, the upkeep counter and anti-entropy flag
        // included (codec 1 dropped those two).
        let mut n = n.clone();
        n.upkeeps = i as u8;
        n.suspect = i % 2 == 0;
        n.next_finger = (i % 7) as u8;
        n.pred_candidate = Some(n.succs[0]);
        let back = decode(n.id, params, &encode(&n)).unwrap();
        assert_eq!(
            (
                back.pred,
                back.pred_candidate,
                &back.succs,
                &back.preds,
                &back.fingers,
                back.replicated,
                back.next_finger,
                back.upkeeps,
                back.suspect
            ),
            (
                n.pred,
                n.pred_candidate,
                &n.succs,
                &n.preds,
                &n.fingers,
                n.replicated,
                n.next_finger,
                n.upkeeps,
                n.suspect
            )
        );
        assert_eq!(decode_node_id(&node_id_bytes(n.id)).unwrap(), n.id);
    }
}

#[test]
fn codec_one_blobs_still_read() {
    // A routing blob of codec 1 (before the upkeep counter and the flag),
    // sealed as an upgrade seals it.
    let (params, w) = ring(4);
    let n = w.nodes().next().unwrap();
    let mut blob = encode(n);
    blob.truncate(blob.len() - SUM_LEN - 2);
    blob[0] = 1;
    let back = decode(n.id, params, &resealed_node(n.id, &blob)).unwrap();
    assert_eq!(
        (back.succs, back.upkeeps, back.suspect),
        (n.succs.clone(), 0, false)
    );
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
    let mut z = row_compressor();
    let mut sealed = Vec::new();
    seal_row(&chunk.repeat(3), &mut sealed, &mut z);
    assert_eq!(sealed[0], 1, "a chunk this long is compressed");
    let mut got = Vec::new();
    for_each_entry(&sealed, |k, v| got.push((k, v))).unwrap();
    assert_eq!(got, [want.clone(), want.clone(), want.clone()].concat());
    let mut small = Vec::new();
    seal_row(&chunk[..0], &mut small, &mut z);
    assert_eq!(small.len(), 1 + SUM_LEN);
    assert_eq!(verify_sum(&small).unwrap(), &[0]);
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
fn slices_write_each_write_once_and_give_back_every_copy() {
    use std::sync::Arc;
    let bits = Bits::MAX;
    let a = Key::new(bits.hash("a"), "a");
    let b = Key::new(bits.hash("b, \"quoted\"\n"), "b, \"quoted\"\n");
    let shared = Arc::new(serde_json::json!({"n": 2, "s": "latest-value"}));
    let new = Versioned {
        version: 7,
        value: Some(Arc::clone(&shared)),
    };
    // An equal value in another allocation is the same write.
    let new_again = Versioned {
        version: 7,
        value: Some(Arc::new((*shared).clone())),
    };
    let stale = Versioned {
        version: 3,
        value: Some(Arc::new(serde_json::json!("old"))),
    };
    let gone = Versioned {
        version: 9,
        value: None,
    };
    // Three holders of a's latest write, one with a stale copy; b deleted
    // on two holders.
    let mut copies: Vec<SliceCopy> = vec![
        (a.id, &a.text, &new, 12),
        (b.id, &b.text, &gone, 4),
        (a.id, &a.text, &stale, 5),
        (a.id, &a.text, &new_again, 3),
        (b.id, &b.text, &gone, 300),
        (a.id, &a.text, &new, 7),
    ];
    let mut raw = Vec::new();
    put_slice(&mut raw, &mut copies);
    let mut z = row_compressor();
    let mut sealed = Vec::new();
    seal_row(&raw, &mut sealed, &mut z);
    let mut got = Vec::new();
    for_each_copy(&sealed, |k, v, nid| got.push((k.clone(), v.clone(), nid))).unwrap();
    let mut want: Vec<(Key, Versioned, i64)> = vec![
        (a.clone(), new.clone(), 3),
        (a.clone(), new.clone(), 7),
        (a.clone(), new.clone(), 12),
        (a.clone(), stale.clone(), 5),
        (b.clone(), gone.clone(), 4),
        (b.clone(), gone.clone(), 300),
    ];
    let order = |x: &(Key, Versioned, i64)| (x.0.id, x.0.text.clone(), x.1.version, x.2);
    want.sort_by_key(order);
    got.sort_by_key(order);
    assert_eq!(got, want);
    // Each key's text once, and the latest value of a once.
    let text = String::from_utf8_lossy(&raw);
    assert_eq!(text.matches("quoted").count(), 1);
    assert_eq!(text.matches("latest-value").count(), 1);
    // Damage is reported, never half-read.
    for cut in [1, 20, 30, raw.len() - 1] {
        let mut short = vec![0];
        short.extend_from_slice(&raw[..cut]);
        assert!(for_each_copy(&short, |_, _, _| ()).is_err(), "cut at {cut}");
    }
}

#[test]
fn a_finger_table_known_only_from_some_index_round_trips() {
    // After every finger was forgotten and fix_fingers refilled one:
    // the fingers below it are unknown, and so they come back.
    let (params, w) = ring(5);
    let mut n = w.nodes().next().unwrap().clone();
    let f = n.fingers.get(0).unwrap();
    n.fingers = FingerTable::default();
    n.fingers.set_range(9, 20, f, 160);
    let back = decode(n.id, params, &encode(&n)).unwrap();
    assert_eq!(back.fingers, n.fingers);
    assert_eq!(back.fingers.get(3), None);
}

#[test]
fn damage_is_reported() {
    let (params, w) = ring(5);
    let n = w.nodes().next().unwrap();
    let blob = encode(n);
    assert!(decode(n.id, params, &blob[..blob.len() - 3]).is_err());
    let mut extra = blob.clone();
    extra.push(0);
    assert!(decode(n.id, params, &extra).is_err());
    assert!(decode(n.id, params, &[9]).is_err());
}
