//! Many lookups in flight at once: the simulator's way of running a batch of
//! `find_successor`s fast.
//!
//! Each lookup is a [`Resolver`]; [`find_successors`] keeps a dozen of them
//! open and advances each by one message per turn, round-robin, the way a
//! busy client has several lookups outstanding. Interleaving changes nothing
//! a node sees, since a lookup never changes node state, but it lets the
//! transport prepare for the next message of one lookup while it delivers the
//! others ([`Transport::will_call`]): in the simulator that hides most of the
//! memory latency of jumping between a hundred thousand nodes' tables.

use super::prefetch;
use crate::chord::lookup::{Lookup, ping};
use crate::chord::resolver::{PATH_CAPACITY, Progress, Resolver};
use crate::chord::{Id, NodeId, OpError, Transport, Unreachable};

/// How many lookups [`find_successors`] keeps in flight. Enough to cover
/// the memory latency of a step with the work of the others; more only
/// adds bookkeeping.
pub const IN_FLIGHT: usize = 12;

/// Many `find_successor(key)` lookups, each asked at its start node on that
/// node's behalf, with up to [`IN_FLIGHT`] in progress at once: each advances
/// one message per turn, round-robin. Answers come back in the order of
/// `queries`; each is what [`crate::chord::find_successor`] would have answered on the
/// same network (lookups do not change node state, so their interleaving
/// cannot change an answer, only the order of the network's messages).
pub fn find_successors<T: Transport>(
    t: &mut T,
    queries: impl IntoIterator<Item = (NodeId, Id)>,
) -> Vec<Result<Lookup, OpError>> {
    /// A lookup in the window: its index in `queries`, its resolver, and
    /// the successor to confirm, once named.
    struct Slot {
        index: usize,
        resolver: Resolver,
        confirm: Option<NodeId>,
    }
    let mut queries = queries.into_iter().enumerate();
    // Sized up front: growing it would move every answer so far.
    let mut out: Vec<Option<Result<Lookup, OpError>>> = Vec::with_capacity(queries.size_hint().0);
    let mut window: Vec<Slot> = Vec::with_capacity(IN_FLIGHT);
    let mut open = |t: &mut T, out: &mut Vec<Option<Result<Lookup, OpError>>>| {
        let (index, (start, key)) = queries.next()?;
        out.push(None);
        t.will_call(start, Some(key));
        let resolver = Resolver::new(start, start, key, Vec::new());
        // The path is fresh memory, usually long out of cache: fetch it
        // now rather than stall on the first steps' stores.
        prefetch::write(
            resolver.path().as_ptr().cast(),
            PATH_CAPACITY * std::mem::size_of::<NodeId>(),
        );
        Some(Slot {
            index,
            resolver,
            confirm: None,
        })
    };
    while window.len() < IN_FLIGHT {
        match open(t, &mut out) {
            Some(s) => window.push(s),
            None => break,
        }
    }
    let mut i = 0;
    while !window.is_empty() {
        let slot = &mut window[i];
        let done = match slot.confirm.take() {
            Some(s) => match ping(t, slot.resolver.asker(), s) {
                Ok(()) => Some(Ok(s)),
                Err(Unreachable) => slot.resolver.successor_unreachable(s).map(Err),
            },
            None => match slot.resolver.step(t) {
                Progress::Asking => None,
                // Confirmed at the lookup's next turn (`ping`; free when the
                // asker names itself).
                Progress::Found(s) => {
                    slot.confirm = Some(s);
                    None
                }
                Progress::Failed(e) => Some(Err(e)),
            },
        };
        match done {
            None => {
                match slot.confirm {
                    Some(s) => t.will_call(s, None),
                    None => t.will_call(slot.resolver.next(), Some(slot.resolver.key())),
                }
                i += 1;
            }
            Some(result) => {
                let finished = match open(t, &mut out) {
                    Some(next) => std::mem::replace(&mut window[i], next),
                    None => window.swap_remove(i),
                };
                out[finished.index] = Some(result.map(|s| finished.resolver.finish(s)));
                // The replacement (or the swapped-in slot) takes its turn in
                // the next lap, so every slot keeps the same lap length.
                i += 1;
            }
        }
        if i >= window.len() {
            i = 0;
        }
    }
    out.into_iter()
        .map(|r| r.expect("every lookup finished"))
        .collect()
}
