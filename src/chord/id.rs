//! Identifiers on the Chord ring and all ring arithmetic.
//!
//! Every comparison "is x between a and b on the ring" in the crate goes through
//! [`Id::in_open`] and [`Id::in_half_open`], and every sum or distance through
//! [`Bits`], so the wrap-around rules live in exactly one place. Nothing here
//! knows about nodes, messages or storage.
//!
//! An [`Id`] is stored as 20 big-endian bytes: derived ordering is then numeric
//! ordering, the type has alignment 1 (finger tables stay compact at a million
//! nodes), and the few places that add or subtract convert to
//! [`ruint::aliases::U160`] instead of hand-written bignum code.

use ruint::aliases::U160;
use sha1::{Digest, Sha1};
use std::fmt;

/// The width m of a ring of 2^m identifiers, from 1 to 160.
///
/// Small widths exist for teaching rings (the paper's m = 6 example); the
/// default, 160, is the full SHA-1 output.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "u8", into = "u8")]
pub struct Bits(u8);

/// A width outside 1..=160 was asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("ring width must be between 1 and 160 bits, got {0}")]
pub struct BadBits(pub u32);

impl Bits {
    /// The full SHA-1 width.
    pub const MAX: Bits = Bits(160);

    /// Checks the width; no state exists yet, so an error changes nothing.
    pub fn new(m: u32) -> Result<Bits, BadBits> {
        if (1..=160).contains(&m) {
            Ok(Bits(m as u8))
        } else {
            Err(BadBits(m))
        }
    }

    /// m as a number.
    pub fn get(self) -> u32 {
        u32::from(self.0)
    }

    /// 2^m - 1: every identifier is at most this.
    fn mask(self) -> U160 {
        if self.0 == 160 {
            U160::MAX
        } else {
            (U160::from(1u8) << usize::from(self.0)) - U160::from(1u8)
        }
    }

    /// `n + 2^i mod 2^m`, the start of finger `i` (0-based: the paper's finger
    /// `i+1`). Pre: `i < m`.
    pub fn finger_start(self, n: Id, i: u32) -> Id {
        debug_assert!(i < self.get());
        let sum = n.to_u160().wrapping_add(U160::from(1u8) << (i as usize));
        Id::from_u160(sum & self.mask())
    }

    /// `id + 1 mod 2^m`: the first position after `id`, so that ordering
    /// by [`Bits::distance`] from it puts a node at `id` itself first.
    pub fn next(self, id: Id) -> Id {
        self.finger_start(id, 0)
    }

    /// Clockwise distance from `a` to `b`, `b - a mod 2^m`; zero when a == b.
    pub fn distance(self, a: Id, b: Id) -> U160 {
        b.to_u160().wrapping_sub(a.to_u160()) & self.mask()
    }

    /// The largest finger index `i` with `2^i <= d`, or None when d == 0.
    ///
    /// Used to skip fingers that share a node: if f = successor(n + 2^i) then
    /// every finger `j` with `2^j <= distance(n, f)` also points at f.
    pub fn last_finger_within(self, d: U160) -> Option<u32> {
        if d.is_zero() {
            None
        } else {
            Some((d.bit_len() as u32 - 1).min(self.get() - 1))
        }
    }

    /// Hashes text with SHA-1 and keeps the low m bits.
    ///
    /// Names and keys both go through here, so the same name always lands at
    /// the same place on a ring of the same width.
    pub fn hash(self, text: &str) -> Id {
        let digest: [u8; 20] = Sha1::digest(text.as_bytes()).into();
        Id::from_u160(U160::from_be_bytes(digest) & self.mask())
    }

    /// An identifier from a number, refused when it does not fit in m bits.
    pub fn id_from_u128(self, v: u128) -> Option<Id> {
        let x = U160::from(v);
        (x <= self.mask()).then(|| Id::from_u160(x))
    }

    /// Parses a decimal number or a `0x` hexadecimal number that fits in m bits.
    pub fn parse_id(self, s: &str) -> Option<Id> {
        let s = s.trim();
        let x = if let Some(hex) = s.strip_prefix("0x") {
            U160::from_str_radix(hex, 16).ok()?
        } else {
            U160::from_str_radix(s, 10).ok()?
        };
        (x <= self.mask()).then(|| Id::from_u160(x))
    }

    /// Where `id` lies around the ring as a fraction of a turn (0 at the
    /// top, growing clockwise in pictures), to the precision of an f64.
    pub fn fraction(self, id: Id) -> f64 {
        let m = u32::from(self.0);
        let x = id.to_u160();
        if m > 64 {
            (x >> (m - 64) as usize).to::<u64>() as f64 / 2f64.powi(64)
        } else {
            x.to::<u64>() as f64 / 2f64.powi(m as i32)
        }
    }

    /// How people read identifiers on this ring: decimal up to 64 bits (the
    /// teaching rings of the paper), zero-padded hexadecimal above.
    pub fn show(self, id: Id) -> String {
        let x = id.to_u160();
        if self.0 <= 64 {
            x.to_string()
        } else {
            // The id's 40 hex digits, less the leading ones a narrower ring
            // never sets.
            const HEX: &[u8; 16] = b"0123456789abcdef";
            let digits = usize::from(self.0).div_ceil(4);
            let bytes = id.to_bytes();
            (40 - digits..40)
                .map(|i| {
                    let b = bytes[i / 2];
                    HEX[usize::from(if i % 2 == 0 { b >> 4 } else { b & 15 })] as char
                })
                .collect()
        }
    }
}

impl Default for Bits {
    fn default() -> Self {
        Bits::MAX
    }
}

impl TryFrom<u8> for Bits {
    type Error = BadBits;
    fn try_from(m: u8) -> Result<Self, BadBits> {
        Bits::new(u32::from(m))
    }
}

impl From<Bits> for u8 {
    fn from(b: Bits) -> u8 {
        b.0
    }
}

impl fmt::Display for Bits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A position on the ring: a key's hash or a node's identifier.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Id([u8; 20]);

impl Id {
    #[inline]
    fn words(&self) -> (u64, u64, u32) {
        let b = &self.0;
        (
            u64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]),
            u64::from_be_bytes([b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]]),
            u32::from_be_bytes([b[16], b[17], b[18], b[19]]),
        )
    }
}

/// Numeric order of the big-endian bytes, as three integer comparisons:
/// every ring interval test is a few of these, and the derived order would
/// call `memcmp` for each (a third of all lookup time).
impl Ord for Id {
    #[inline]
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.words().cmp(&other.words())
    }
}

impl PartialOrd for Id {
    #[inline]
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Id {
    /// Position zero.
    pub const ZERO: Id = Id([0; 20]);

    /// From a 160-bit number; the caller has already reduced it mod 2^m.
    pub fn from_u160(x: U160) -> Id {
        Id(x.to_be_bytes())
    }

    /// As a 160-bit number, for arithmetic.
    pub fn to_u160(self) -> U160 {
        U160::from_be_bytes(self.0)
    }

    /// The big-endian bytes, for storage.
    pub fn to_bytes(self) -> [u8; 20] {
        self.0
    }

    /// From big-endian bytes, as stored by [`Id::to_bytes`].
    pub fn from_bytes(b: [u8; 20]) -> Id {
        Id(b)
    }

    /// x ∈ (a, b) on the ring. When a == b the interval is the whole ring
    /// except a, so a lone node treats every other id as lying between itself
    /// and itself.
    #[inline(always)]
    pub fn in_open(self, a: Id, b: Id) -> bool {
        if a < b {
            a < self && self < b
        } else if a > b {
            self > a || self < b
        } else {
            self != a
        }
    }

    /// x ∈ (a, b] on the ring. When a == b the interval is the whole ring: a
    /// node that is its own successor is responsible for every key.
    #[inline(always)]
    pub fn in_half_open(self, a: Id, b: Id) -> bool {
        if a < b {
            a < self && self <= b
        } else if a > b {
            self > a || self <= b
        } else {
            true
        }
    }
}

/// A clockwise distance `x - origin mod 2^160`, as three words compared in
/// order: the ring's "how far round from here" in a form that compares in a
/// few integer instructions.
///
/// Routing compares many candidates against one key from one node; turning
/// each into its offset from that node makes every "does c fall between me
/// and the key" one subtraction and one comparison, instead of the three
/// case-split comparisons of [`Id::in_open`]. Offsets modulo 2^160 order
/// identifiers of a narrower ring (m < 160) the same way as offsets modulo
/// 2^m, since all of them lie below 2^m.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Offset(u64, u64, u32);

impl Offset {
    /// True for the offset of the origin itself.
    #[inline(always)]
    pub fn is_zero(self) -> bool {
        self == Offset(0, 0, 0)
    }

    /// The largest i with 2^i <= self, or None for zero: the highest finger
    /// whose start (origin + 2^i) does not pass this offset. On a ring
    /// narrower than 160 bits an offset that wraps is larger modulo 2^160
    /// than modulo 2^m, so this never understates.
    #[inline(always)]
    pub fn floor_log2(self) -> Option<u32> {
        if self.0 != 0 {
            Some(96 + 63 - self.0.leading_zeros())
        } else if self.1 != 0 {
            Some(32 + 63 - self.1.leading_zeros())
        } else if self.2 != 0 {
            Some(31 - self.2.leading_zeros())
        } else {
            None
        }
    }

    /// True when an id at this offset lies in (origin, end) on the ring,
    /// `end` being the offset of the interval's end: [`Id::in_open`] with
    /// `a` the origin. An empty `end` (end == origin) means the whole ring
    /// but the origin.
    #[inline(always)]
    pub fn before(self, end: Offset) -> bool {
        !self.is_zero() && (self < end || end.is_zero())
    }
}

impl Id {
    /// `self - origin mod 2^160`: see [`Offset`].
    #[inline(always)]
    pub fn offset_from(self, origin: Id) -> Offset {
        let (a0, a1, a2) = self.words();
        let (b0, b1, b2) = origin.words();
        let (lo, borrow_lo) = a2.overflowing_sub(b2);
        let (mid, b1a) = a1.overflowing_sub(b1);
        let (mid, b1b) = mid.overflowing_sub(u64::from(borrow_lo));
        let hi = a0.wrapping_sub(b0).wrapping_sub(u64::from(b1a | b1b));
        Offset(hi, mid, lo)
    }
}

impl fmt::Debug for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Id({:x})", self.to_u160())
    }
}

/// A node's address: its position on the ring (the hash of its name, or an
/// id given for a teaching ring) and its incarnation.
///
/// The incarnation tells apart two nodes that held the same position at
/// different times: a node that left and a newcomer with the same name. Stale
/// pointers to the old one are unreachable rather than silently reaching the
/// newcomer, and neighbours see the change (a newcomer needs its replicas
/// pushed; the old node had them). A separate type from [`Id`], so a key's
/// position can never be passed where a node is meant.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct NodeId {
    id: Id,
    inc: u32,
}

impl NodeId {
    /// The node at `id` in its `inc`-th incarnation.
    pub fn new(id: Id, inc: u32) -> NodeId {
        NodeId { id, inc }
    }

    /// The node's position on the ring.
    #[inline]
    pub fn id(self) -> Id {
        self.id
    }

    /// Which node ever to hold this position it is.
    pub fn incarnation(self) -> u32 {
        self.inc
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Node({:x}#{})", self.id.to_u160(), self.inc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(m: u32) -> Bits {
        Bits::new(m).unwrap()
    }
    fn id(m: u32, v: u128) -> Id {
        b(m).id_from_u128(v).unwrap()
    }

    #[test]
    fn order_is_the_byte_order() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        for _ in 0..10_000 {
            let mut a = [0u8; 20];
            let mut b = [0u8; 20];
            rng.fill(&mut a);
            b.copy_from_slice(&a);
            let i = rng.random_range(0..20);
            b[i] = rng.random();
            assert_eq!(Id(a).cmp(&Id(b)), a.cmp(&b));
        }
    }

    #[test]
    fn widths_outside_range_are_refused() {
        assert!(Bits::new(0).is_err());
        assert!(Bits::new(161).is_err());
        assert!(Bits::new(1).is_ok());
        assert!(Bits::new(160).is_ok());
    }

    #[test]
    fn open_interval_edges() {
        let (a, x, c) = (id(8, 10), id(8, 20), id(8, 30));
        assert!(x.in_open(a, c));
        assert!(!a.in_open(a, c));
        assert!(!c.in_open(a, c));
        // wrap through zero
        assert!(id(8, 250).in_open(c, a) && id(8, 0).in_open(c, a) && id(8, 5).in_open(c, a));
        assert!(!x.in_open(c, a));
        // a == b: everything but a
        assert!(x.in_open(a, a));
        assert!(!a.in_open(a, a));
    }

    #[test]
    fn half_open_interval_edges() {
        let (a, c) = (id(8, 10), id(8, 30));
        assert!(c.in_half_open(a, c));
        assert!(!a.in_half_open(a, c));
        assert!(a.in_half_open(c, a));
        assert!(id(8, 0).in_half_open(id(8, 255), id(8, 0)));
        // a == b: the whole ring
        assert!(a.in_half_open(a, a) && c.in_half_open(a, a));
    }

    #[test]
    fn offsets_decide_intervals_as_in_open_does() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        for m in [1, 2, 3, 8, 63, 64, 65, 128, 159, 160] {
            let w = b(m);
            // Random ids, plus the edges: zero and the top.
            let top = w.mask();
            let pick = |rng: &mut rand_chacha::ChaCha8Rng| match rng.random_range(0..4) {
                0 => Id::ZERO,
                1 => Id::from_u160(top),
                _ => Id::from_u160(
                    U160::from_limbs([rng.random(), rng.random(), u64::from(rng.random::<u32>())])
                        & top,
                ),
            };
            for _ in 0..2000 {
                let (x, a, e) = (pick(&mut rng), pick(&mut rng), pick(&mut rng));
                assert_eq!(
                    x.offset_from(a).before(e.offset_from(a)),
                    x.in_open(a, e),
                    "m={m} x={x:?} a={a:?} b={e:?}"
                );
                let (dx, de) = (x.offset_from(a), e.offset_from(a));
                assert_eq!(dx.is_zero(), x == a);
                let want = w.last_finger_within(w.distance(a, x));
                if m == 160 {
                    assert_eq!(dx.floor_log2(), want, "floor_log2 of {dx:?}");
                } else {
                    assert!(dx.floor_log2() >= want, "floor_log2 of {dx:?}");
                }
                // Wider offsets are further round from a.
                if !dx.is_zero() && !de.is_zero() && dx != de {
                    assert_eq!(dx < de, x.in_open(a, e));
                }
            }
        }
    }

    #[test]
    fn one_bit_ring() {
        let m = b(1);
        let (z, o) = (id(1, 0), id(1, 1));
        assert_eq!(m.finger_start(z, 0), o);
        assert_eq!(m.finger_start(o, 0), z);
        assert!(o.in_half_open(z, o) && z.in_half_open(o, z));
        assert!(!z.in_open(z, o) && !o.in_open(z, o));
        assert_eq!(m.distance(o, z), U160::from(1u8));
        assert!(m.parse_id("2").is_none());
    }

    #[test]
    fn full_width_wraps_through_zero() {
        let m = Bits::MAX;
        let top = Id::from_u160(U160::MAX);
        assert_eq!(m.finger_start(top, 0), Id::ZERO);
        assert_eq!(
            m.finger_start(Id::ZERO, 159).to_u160(),
            U160::from(1u8) << 159
        );
        assert_eq!(m.distance(top, Id::ZERO), U160::from(1u8));
        assert_eq!(m.distance(Id::ZERO, top), U160::MAX);
        assert!(Id::ZERO.in_half_open(top, Id::from_u160(U160::from(1u8))));
    }

    #[test]
    fn finger_starts_match_the_paper() {
        // m = 6, node 8: starts 9, 10, 12, 16, 24, 40 (Fig. 3 of the paper).
        let m = b(6);
        let starts: Vec<u128> = (0..6)
            .map(|i| m.finger_start(id(6, 8), i).to_u160().to::<u128>())
            .collect();
        assert_eq!(starts, vec![9, 10, 12, 16, 24, 40]);
        assert_eq!(m.finger_start(id(6, 56), 4).to_u160().to::<u128>(), 8);
    }

    #[test]
    fn last_finger_within_distance() {
        let m = b(6);
        assert_eq!(m.last_finger_within(U160::ZERO), None);
        assert_eq!(m.last_finger_within(U160::from(1u8)), Some(0));
        assert_eq!(m.last_finger_within(U160::from(6u8)), Some(2));
        assert_eq!(m.last_finger_within(U160::from(63u8)), Some(5));
    }

    #[test]
    fn hash_is_sha1_reduced_mod_2_to_the_m() {
        // SHA-1("abc") = a9993e364706816aba3e25717850c26c9cd0d89d
        let full = Bits::MAX.hash("abc");
        assert_eq!(
            Bits::MAX.show(full),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert_eq!(b(8).hash("abc"), id(8, 0x9d));
        assert_eq!(b(6).hash("abc"), id(6, 0x9d & 63));
    }

    #[test]
    fn parse_and_show_round_trip() {
        assert_eq!(b(6).show(id(6, 42)), "42");
        // Above 64 bits: hex, as many digits as the width needs.
        assert_eq!(b(70).show(id(70, 0x2a)), format!("{:0>18}", "2a"));
        let shown = format!("0x{}", b(70).show(id(70, 0x2a)));
        assert_eq!(b(70).parse_id(&shown), Some(id(70, 0x2a)));
        assert_eq!(b(6).parse_id("42"), Some(id(6, 42)));
        assert_eq!(b(6).parse_id("64"), None);
        let x = Bits::MAX.hash("node-0");
        assert_eq!(
            Bits::MAX.parse_id(&format!("0x{}", Bits::MAX.show(x))),
            Some(x)
        );
    }

    #[test]
    fn fraction_is_the_share_of_a_turn() {
        let m6 = Bits::new(6).unwrap();
        assert_eq!(m6.fraction(id(6, 0)), 0.0);
        assert_eq!(m6.fraction(id(6, 16)), 0.25);
        assert_eq!(m6.fraction(id(6, 32)), 0.5);
        let m160 = Bits::MAX;
        let half = Id::from_u160(U160::from(1u8) << 159usize);
        assert_eq!(m160.fraction(half), 0.5);
        assert!(m160.fraction(Id::from_bytes([0xff; 20])) <= 1.0);
    }
}
