//! Seeded simulation tests of the ring core: the paper's hand-worked ring,
//! tiny rings, the failure cases other Chord implementations got wrong, the
//! protocol build against the bulk build, and a 100,000-node ring.

use dht::chord::{Id, NodeId, Params};
use dht::sim::World;
use dht::testkit::{assert_clean, grown_ring as grown, paper_ring};
use serde_json::json;
use std::sync::Arc;

fn params(bits: u32, r: u8) -> Params {
    Params::new(bits, r)
}

fn put_keys(w: &mut World, n: usize) {
    for i in 0..n {
        w.put(&format!("k{i}"), json!({ "i": i }), None).unwrap();
    }
}

fn all_keys_read_back(w: &mut World, n: usize, what: &str) {
    for i in 0..n {
        let got = w
            .get(&format!("k{i}"), None)
            .unwrap_or_else(|e| panic!("{what}: get k{i}: {e}"));
        assert_eq!(
            got.result.as_deref(),
            Some(&json!({ "i": i })),
            "{what}: k{i}"
        );
    }
}

#[test]
fn paper_ring_by_hand() {
    // Stoica et al., SIGCOMM 2001, Fig. 3: m = 6, ten nodes.
    let mut w = paper_ring();
    assert_clean(&w, "paper ring");
    let n8 = w.find("N8").unwrap();
    let bits = w.bits();
    let fingers: Vec<String> = (0..6)
        .map(|i| w.name(w.node(n8).unwrap().fingers.get(i).unwrap()))
        .collect();
    assert_eq!(fingers, ["N14", "N14", "N14", "N21", "N32", "N42"]);
    // lookup(54) from N8 goes N8 -> N42 -> N51, which names N56.
    let l = w.lookup(bits.id_from_u128(54).unwrap(), Some(n8)).unwrap();
    let path: Vec<String> = l.path.iter().map(|&n| w.name(n)).collect();
    assert_eq!(path, ["N8", "N42", "N51"]);
    assert_eq!(w.name(l.successor), "N56");
    assert_eq!(l.hops(), 2);
    // Two find steps to other nodes (N42, N51; N8 asks itself for free) and
    // a ping of the answer, N56.
    assert_eq!(w.last_op_messages(), 3);
    // Key 10 is stored at N14 and replicated on N21 and N32.
    let n14 = w.find("N14").unwrap();
    let key = dht::chord::Key {
        id: bits.id_from_u128(10).unwrap(),
        text: "ten".into(),
    };
    dht::chord::ops::put(w.transport(), n8, &key, Arc::new(json!(10)), 1).unwrap();
    let holders: Vec<String> = w
        .nodes()
        .filter(|n| n.store.get(&key).is_some())
        .map(|n| w.name(n.id))
        .collect();
    assert_eq!(holders, ["N14", "N21", "N32"]);
    assert_eq!(w.node(n14).unwrap().pred, Some(w.find("N8").unwrap()));
}

#[test]
fn protocol_build_equals_bulk_build() {
    for (bits, n, seed) in [(6, 10, 3), (16, 40, 4), (160, 64, 5)] {
        let p = params(bits, 3);
        let names: Vec<String> = (0..n).map(|i| format!("node-{i}")).collect();
        let grown = grown(p, seed, n);
        let bulk = World::bulk(p, seed, names.iter().map(|s| (s.clone(), None))).unwrap();
        assert_clean(&bulk, "bulk");
        let ids: Vec<NodeId> = bulk.members().collect();
        assert_eq!(grown.members().collect::<Vec<_>>(), ids);
        for id in ids {
            let (a, b) = (grown.node(id).unwrap(), bulk.node(id).unwrap());
            assert_eq!(a.pred, b.pred);
            assert_eq!(a.succs, b.succs);
            assert_eq!(a.preds, b.preds);
            assert_eq!(
                a.fingers,
                b.fingers,
                "fingers of {} (m={bits})",
                grown.name(id)
            );
        }
    }
}

#[test]
fn one_node_ring() {
    let mut w = World::new(params(160, 3), 9);
    let (a, _) = w.join("solo", None, None).unwrap();
    put_keys(&mut w, 20);
    w.converge(5).unwrap();
    all_keys_read_back(&mut w, 20, "lone node");
    assert_eq!(w.node(a).unwrap().store.len(), 20);
    assert_eq!(
        w.leave(a),
        Err(dht::sim::WorldError::Op(dht::chord::OpError::LastNode))
    );
}

#[test]
fn two_node_ring_and_the_last_two_nodes() {
    let mut w = grown(params(160, 3), 10, 2);
    put_keys(&mut w, 50);
    w.converge(10).unwrap();
    assert_clean(&w, "two nodes");
    for n in w.nodes() {
        assert_eq!(n.store.len(), 50, "both nodes hold everything when N < r");
    }
    // One of the last two leaves: the other keeps every key.
    let gone = w.members().next().unwrap();
    w.leave(gone).unwrap();
    all_keys_read_back(&mut w, 50, "after leave");
    w.converge(10).unwrap();
    // And from two nodes again, one crashes: the survivor still has all.
    w.join("again", None, None).unwrap();
    w.converge(20).unwrap();
    let victim = w.members().next().unwrap();
    w.fail(victim).unwrap();
    all_keys_read_back(&mut w, 50, "after crash of one of two");
    w.converge(10).unwrap();
    assert_clean(&w, "lone survivor");
}

#[test]
fn teaching_rings_of_every_small_width() {
    for m in 1..=8u32 {
        let nodes = (1usize << m).min(12);
        let p = params(m, 2);
        let mut w = World::new(p, u64::from(m));
        let mut joined = 0;
        for i in 0..nodes {
            let id = p.bits.id_from_u128((i as u128 * 7) % (1 << m)).unwrap();
            if w.join(&format!("n{i}"), Some(id), None).is_ok() {
                joined += 1;
            }
            w.round();
        }
        w.converge(100).unwrap_or_else(|e| panic!("m={m}: {e}"));
        put_keys(&mut w, 30);
        w.converge(20).unwrap();
        assert_clean(&w, &format!("m={m}"));
        all_keys_read_back(&mut w, 30, &format!("m={m}"));
        assert!(joined >= 2);
    }
}

#[test]
fn several_joins_between_two_rounds() {
    let mut w = grown(params(32, 3), 11, 5);
    put_keys(&mut w, 200);
    for i in 0..6 {
        w.join(&format!("late-{i}"), None, None).unwrap();
    }
    all_keys_read_back(&mut w, 200, "before maintenance");
    let rounds = w.converge(100).unwrap();
    assert!(rounds > 0);
    assert_clean(&w, "after six simultaneous joins");
    all_keys_read_back(&mut w, 200, "after");
}

#[test]
fn r_minus_one_consecutive_crashes() {
    for r in 2..=4u8 {
        let mut w = grown(params(160, r), 12 + u64::from(r), 20);
        put_keys(&mut w, 300);
        w.converge(5).unwrap();
        let ids: Vec<NodeId> = w.members().collect();
        for k in 0..usize::from(r) - 1 {
            w.fail(ids[7 + k]).unwrap();
        }
        // Lookups route around the dead at once.
        all_keys_read_back(&mut w, 300, &format!("r={r} right after crashes"));
        w.converge(50).unwrap();
        assert_clean(&w, &format!("r={r} after recovery"));
        all_keys_read_back(&mut w, 300, &format!("r={r} after recovery"));
    }
}

#[test]
fn leave_next_to_a_join() {
    let mut w = grown(params(32, 3), 13, 8);
    put_keys(&mut w, 200);
    let ids: Vec<NodeId> = w.members().collect();
    // A new node lands right before ids[3] while ids[3] leaves.
    let target = ids[3].id().to_u160() - ruint::aliases::U160::from(1u8);
    let (_, _) = w
        .join("newcomer", Some(Id::from_u160(target)), None)
        .unwrap();
    w.leave(ids[3]).unwrap();
    all_keys_read_back(&mut w, 200, "leave next to join, before maintenance");
    w.converge(50).unwrap();
    assert_clean(&w, "leave next to join");
    all_keys_read_back(&mut w, 200, "leave next to join");
}

#[test]
fn get_while_keys_migrate() {
    let mut w = grown(params(32, 3), 14, 6);
    put_keys(&mut w, 300);
    w.join("mover", None, None).unwrap();
    // Every single maintenance step moves pointers or keys; reads stay right.
    for step in 0..200 {
        w.random_step();
        if step % 10 == 0 {
            all_keys_read_back(&mut w, 300, &format!("step {step}"));
        }
    }
    w.converge(50).unwrap();
    assert_clean(&w, "after migration");
}

#[test]
fn successor_dies_during_stabilize() {
    let mut w = grown(params(32, 3), 15, 8);
    put_keys(&mut w, 100);
    let ids: Vec<NodeId> = w.members().collect();
    let (n, s) = (ids[2], ids[3]);
    // The successor dies after answering GetNeighbours, before the notify.
    w.fail_after_messages(2, s);
    let _ = dht::chord::ops::stabilize(w.transport(), n);
    assert!(w.node(s).is_none() || w.members().all(|m| m != s));
    w.converge(50).unwrap();
    assert_clean(&w, "successor died mid-stabilize");
    all_keys_read_back(&mut w, 100, "successor died mid-stabilize");
}

#[test]
fn crash_loses_no_key_and_restores_r_copies() {
    let mut w = grown(params(160, 3), 16, 16);
    put_keys(&mut w, 500);
    let victim = w.members().nth(5).unwrap();
    let lost = w.fail(victim).unwrap().store.len();
    assert!(lost > 0);
    all_keys_read_back(&mut w, 500, "right after crash");
    w.converge(50).unwrap();
    let copies: usize = w.nodes().map(|n| n.store.len()).sum();
    assert_eq!(copies, 1500, "every key on exactly r = 3 nodes");
}

#[test]
fn same_seed_same_run() {
    let run = |seed| {
        let mut w = grown(params(160, 3), seed, 12);
        put_keys(&mut w, 50);
        let paths: Vec<_> = (0..20)
            .map(|i| w.get(&format!("k{i}"), None).unwrap().lookup.path)
            .collect();
        (w.stats(), paths)
    };
    assert_eq!(run(77), run(77));
    assert_ne!(run(77).1, run(78).1);
}

#[test]
fn deletes_remove_every_copy() {
    let mut w = grown(params(160, 3), 17, 10);
    put_keys(&mut w, 40);
    for i in 0..20 {
        let out = w.delete(&format!("k{i}"), None).unwrap();
        assert_eq!(out.result.as_deref(), Some(&json!({ "i": i })));
    }
    assert_eq!(w.get("k3", None).unwrap().result, None);
    assert_eq!(w.nodes().map(|n| n.store.len()).sum::<usize>(), 60);
    w.converge(5).unwrap();
}

#[test]
fn hundred_thousand_node_ring() {
    let n = 100_000;
    let p = params(160, 3);
    let w0 = World::bulk(p, 21, (0..n).map(|i| (format!("node-{i}"), None))).unwrap();
    let mut w = w0;
    assert_eq!(w.len(), n);
    assert!(w.check_ring().is_empty());
    let mut hops = 0usize;
    let lookups = 5_000;
    for i in 0..lookups {
        let key = w.bits().hash(&format!("key-{i}"));
        let l = w.lookup(key, None).unwrap();
        hops += l.hops();
    }
    let mean = hops as f64 / lookups as f64;
    let half_log = 0.5 * (n as f64).log2();
    assert!(
        (mean - half_log).abs() < 0.1 * half_log,
        "mean hops {mean} vs {half_log}"
    );
    // A few puts and gets, and one crash routed around.
    put_keys(&mut w, 100);
    let victim = w.members().nth(n / 2).unwrap();
    w.fail(victim).unwrap();
    all_keys_read_back(&mut w, 100, "100k ring after a crash");
}

#[test]
fn anti_entropy_brings_a_newer_replica_back_to_the_primary() {
    let mut w = grown(params(32, 3), 18, 8);
    w.put("k", json!(1), None).unwrap();
    w.converge(5).unwrap();
    let key = w.key("k");
    let primary = w.lookup(key.id, None).unwrap().successor;
    let replica = w.node(primary).unwrap().succs[0];
    // The replica learns a newer version by another path than the primary's
    // pushes (as a hand-over does while routing is unsettled); nothing about
    // the neighbourhood changes, so only anti-entropy can notice.
    let newer = dht::chord::store::Versioned {
        version: 1_000,
        value: Some(Arc::new(json!(2))),
    };
    w.node_mut(replica).unwrap().store.merge(key.clone(), newer);
    assert!(!w.check().is_empty(), "the copies differ");
    let rounds = w
        .converge(3 * usize::from(dht::chord::ops::ANTI_ENTROPY_EVERY))
        .unwrap();
    assert!(rounds > 0);
    for n in w.nodes().filter(|n| n.store.get(&key).is_some()) {
        assert_eq!(
            n.store.get(&key).map(|v| &**v),
            Some(&json!(2)),
            "{}",
            w.name(n.id)
        );
    }
    assert_eq!(
        w.get("k", Some(primary)).unwrap().result.as_deref(),
        Some(&json!(2))
    );
    // The same by a hand-over message: the replica is suspect at once and
    // asks the primary to compare, so repair takes a few rounds, not 64.
    let newest = dht::chord::store::Versioned {
        version: 2_000,
        value: Some(Arc::new(json!(3))),
    };
    let req = dht::chord::message::Request::Merge(vec![(key.clone(), newest)]);
    dht::chord::Transport::call(w.transport(), primary, replica, req).unwrap();
    let rounds = w.converge(8).unwrap();
    assert!(rounds <= 4, "{rounds} rounds");
    assert_eq!(
        w.get("k", Some(primary)).unwrap().result.as_deref(),
        Some(&json!(3))
    );
}

#[test]
fn a_leave_hands_over_replicas_too() {
    let mut w = grown(params(32, 3), 19, 8);
    w.put("k", json!("last copy"), None).unwrap();
    w.converge(5).unwrap();
    let key = w.key("k");
    let holders: Vec<NodeId> = w
        .nodes()
        .filter(|n| n.store.get(&key).is_some())
        .map(|n| n.id)
        .collect();
    let primary = w.lookup(key.id, None).unwrap().successor;
    let replica = *holders.iter().find(|&&h| h != primary).unwrap();
    // Churn has left a replica as the only copy.
    for h in holders.iter().filter(|&&h| h != replica) {
        w.node_mut(*h).unwrap().store.remove(&key);
    }
    w.leave(replica).unwrap();
    w.converge(50).unwrap();
    assert_eq!(
        w.get("k", None).unwrap().result.as_deref(),
        Some(&json!("last copy"))
    );
    assert_eq!(w.nodes().filter(|n| n.store.get(&key).is_some()).count(), 3);
}

/// Lookups with many in flight (`lookup_many`) answer exactly as lookups one
/// at a time: same successor, same path, same timeouts, same message count.
/// Checked on a converged ring, right after crashes (dead nodes routed
/// around), and right after joins before any maintenance (stale fingers).
#[test]
fn lookups_in_flight_answer_as_lookups_one_at_a_time() {
    let p = params(160, 3);
    let mut w = grown(p, 31, 40);
    let compare = |w: &mut World, what: &str| {
        let members: Vec<NodeId> = w.members().collect();
        let queries: Vec<(Id, NodeId)> = (0..500)
            .map(|i| (w.bits().hash(&format!("q{i}")), members[i % members.len()]))
            .collect();
        let before = w.stats().messages;
        let one: Vec<_> = queries
            .iter()
            .map(|&(k, s)| w.lookup(k, Some(s)).map_err(|e| e.to_string()))
            .collect();
        let serial_messages = w.stats().messages - before;
        let many = w.lookup_many(&queries);
        assert_eq!(w.last_op_messages(), serial_messages, "{what}: messages");
        for (i, (a, b)) in one.iter().zip(&many).enumerate() {
            let b = b
                .clone()
                .map_err(|e| dht::sim::WorldError::from(e).to_string());
            assert_eq!(a, &b, "{what}: query {i}");
        }
    };
    compare(&mut w, "converged");
    let ids: Vec<NodeId> = w.members().collect();
    w.fail(ids[3]).unwrap();
    w.fail(ids[17]).unwrap();
    w.fail(ids[18]).unwrap();
    compare(&mut w, "after crashes");
    for i in 0..6 {
        w.join(&format!("late-{i}"), None, None).unwrap();
    }
    compare(&mut w, "after joins, before maintenance");
    // A start that is not a member answers NotRunning and sends nothing.
    let gone = ids[3];
    let before = w.stats().messages;
    let r = w.lookup_many(&[(w.bits().hash("q"), gone)]);
    assert_eq!(r, vec![Err(dht::chord::OpError::NotRunning(gone))]);
    assert_eq!(w.stats().messages, before);
}
