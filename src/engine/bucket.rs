//! The bucketing primitives. This file *is* the assignment algorithm; the README
//! documents it byte for byte so other implementations can reproduce it.
//!
//! * A **draw** is `seahash_seeded(unit_id_bytes, [k0, k1, k2, k3])` where the
//!   four seeds are derived from a purpose tag, the salt and (for variants) the
//!   variant key. Different purposes give independent draws of the same unit.
//! * A **slot** is the draw's top 32 bits: a fixed partition of 2^32 slots, so a
//!   fraction `f` is the slots below `floor(f * 2^32)`; no modulo, no bias.
//! * The **variant** is chosen by weighted rendezvous hashing: every variant with
//!   weight `w > 0` scores `-ln(u) / w` with `u` uniform in (0, 1) from its own
//!   draw; the lowest score wins (ties: the smaller key). `ln` is `libm::log`,
//!   a pure-Rust implementation, so results are bit-identical on every platform.

/// Number of slots in the partition (2^32).
pub const SLOTS: u64 = 1 << 32;

/// The seeds of one independent draw, derived once when a snapshot is compiled.
///
/// Beside the four seeds it keeps `rest`, the xors of the seeds a short unit
/// id leaves untouched, also computed once: an id of at most 8 bytes updates
/// only the first of SeaHash's four lanes and one of 9 to 16 bytes the first
/// two, and SeaHash's final step xors all four lanes, so the untouched seeds
/// enter as one value ([`DrawKey::draw_unit`]).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct DrawKey {
    seeds: [u64; 4],
    /// `seeds[1] ^ seeds[2] ^ seeds[3]` and `seeds[2] ^ seeds[3]`.
    rest: [u64; 2],
}

/// The seeds only, as `DrawKey([k0, k1, k2, k3])` (the worked example in
/// docs/algorithm.md prints it): `rest` follows from them.
impl std::fmt::Debug for DrawKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("DrawKey").field(&self.seeds).finish()
    }
}

/// Purpose tags: each kind of draw gets its own seeds.
pub mod purpose {
    /// Traffic gating (enrolment).
    pub const TRAFFIC: &str = "traffic";
    /// One variant's rendezvous score.
    pub const VARIANT: &str = "variant";
    /// A layer's slot.
    pub const LAYER: &str = "layer";
    /// A holdout's slot.
    pub const HOLDOUT: &str = "holdout";
}

impl DrawKey {
    /// Derives the seeds for `purpose` from `salt` and `extra` (the variant key, or
    /// empty). Seed `i` is `seahash` of
    /// `"cohortd/v1" 0x00 purpose 0x00 u64le(i) u64le(len(salt)) salt u64le(len(extra)) extra`.
    pub fn derive(purpose: &str, salt: &str, extra: &str) -> DrawKey {
        DrawKey::from_seeds(seeds(purpose, salt, extra))
    }

    /// The key of these four seeds.
    pub fn from_seeds(seeds: [u64; 4]) -> DrawKey {
        let [_, b, c, d] = seeds;
        DrawKey {
            seeds,
            rest: [b ^ c ^ d, c ^ d],
        }
    }

    /// The draw for one unit id: SeaHash of its bytes with these seeds.
    #[inline]
    pub fn draw(&self, unit: &[u8]) -> u64 {
        seahash_seeded(unit, self.seeds)
    }

    /// [`DrawKey::draw`] of a unit whose words were read once ([`Unit`]): the same
    /// value, computing only the lane updates and the final mix. An id of 1 to
    /// 8 bytes updates lane 0 only, so SeaHash is
    /// `diffuse(diffuse(seed_0 ^ word_0) ^ seed_1 ^ seed_2 ^ seed_3 ^ len)`;
    /// one of 9 to 16 bytes updates lanes 0 and 1. Those two cases take one
    /// test each and one load of `rest`, instead of a test per lane and a load
    /// per seed. Always inlined: called, its prologue and the caller's saved
    /// registers cost more than the tests save (measured: 38 instructions a
    /// draw as a call).
    #[inline(always)]
    pub fn draw_unit(&self, u: &Unit<'_>) -> u64 {
        let n = u.bytes.len();
        let [mut a, mut b, mut c, mut d] = self.seeds;
        let w = u.words;
        if n.wrapping_sub(1) < 8 {
            return diffuse(diffuse(a ^ w[0]) ^ self.rest[0] ^ n as u64);
        }
        if n.wrapping_sub(9) < 8 {
            return diffuse(diffuse(a ^ w[0]) ^ diffuse(b ^ w[1]) ^ self.rest[1] ^ n as u64);
        }
        if n > 32 {
            return seahash_seeded(u.bytes, self.seeds);
        }
        // One block of 17 to 32 bytes, or none: lane `i` is updated only when
        // word `i` exists.
        if n > 0 {
            a = diffuse(a ^ w[0]);
        }
        if n > 8 {
            b = diffuse(b ^ w[1]);
        }
        if n > 16 {
            c = diffuse(c ^ w[2]);
        }
        if n > 24 {
            d = diffuse(d ^ w[3]);
        }
        diffuse(a ^ b ^ c ^ d ^ n as u64)
    }
}

/// A unit id prepared for many draws: one evaluation draws it 2 to 6 times (and
/// an assign-all call thousands of times) with different seeds, while SeaHash
/// reads the same words each time. Ids up to 32 bytes (one SeaHash block: nearly
/// every id) have their zero-padded little-endian words read here, once.
#[derive(Debug, Clone, Copy)]
pub struct Unit<'a> {
    bytes: &'a [u8],
    words: [u64; 4],
}

impl<'a> Unit<'a> {
    /// Reads the words of `bytes` (all of them when it is at most 32 bytes long).
    #[inline]
    pub fn new(bytes: &'a [u8]) -> Unit<'a> {
        let mut words = [0u64; 4];
        if bytes.len() <= 32 {
            for (w, chunk) in words.iter_mut().zip(bytes.chunks(8)) {
                *w = word(chunk);
            }
        }
        Unit { bytes, words }
    }

    /// The unit id's bytes.
    #[inline]
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }
}

/// The seeds of `seahash::hash` (seahash 4.x, `buffer::hash`).
const SEAHASH_DEFAULT_SEEDS: [u64; 4] = [
    0x16f1_1fe8_9b0d_677c,
    0xb480_a793_d8e6_c86c,
    0x6fe2_e5aa_f078_ebc9,
    0x14f9_94a4_c525_9381,
];

const SEAHASH_P: u64 = 0x6eed_0e9d_a4d9_4a4f;

#[inline(always)]
fn diffuse(x: u64) -> u64 {
    let x = x.wrapping_mul(SEAHASH_P);
    let x = x ^ ((x >> 32) >> (x >> 60));
    x.wrapping_mul(SEAHASH_P)
}

/// Up to 8 bytes as a little-endian word, zero-padded, assembled in registers
/// (copying into a stack buffer and loading it back stalls store forwarding).
#[inline(always)]
pub(crate) fn word(w: &[u8]) -> u64 {
    let n = w.len();
    if let Ok(full) = <[u8; 8]>::try_from(w) {
        return u64::from_le_bytes(full);
    }
    if n >= 4 {
        // Two overlapping 4-byte reads: bytes [0, 4) and [n - 4, n).
        let lo = u32::from_le_bytes([w[0], w[1], w[2], w[3]]) as u64;
        let hi = u32::from_le_bytes([w[n - 4], w[n - 3], w[n - 2], w[n - 1]]) as u64;
        return lo | (hi << ((n - 4) * 8));
    }
    if n == 0 {
        return 0;
    }
    // One to three bytes: first, middle and last (some coincide).
    (w[0] as u64) | ((w[n / 2] as u64) << (n / 2 * 8)) | ((w[n - 1] as u64) << ((n - 1) * 8))
}

/// SeaHash (as in the `seahash` 4.x crate, bit for bit): the bytes, zero-padded to
/// a multiple of 8, are read as little-endian words; word `i` updates lane
/// `i mod 4` as `lane = diffuse(lane ^ word)`; the result is
/// `diffuse(a ^ b ^ c ^ d ^ byte_length)`. Written out here, safe and inlinable,
/// because the crate's version returns its state through memory and costs the hot
/// path a store-forwarding stall per draw. A test checks it against the crate.
#[inline]
pub fn seahash_seeded(bytes: &[u8], seeds: [u64; 4]) -> u64 {
    let [mut a, mut b, mut c, mut d] = seeds;
    let mut blocks = bytes.chunks_exact(32);
    for block in &mut blocks {
        a = diffuse(a ^ word(&block[0..8]));
        b = diffuse(b ^ word(&block[8..16]));
        c = diffuse(c ^ word(&block[16..24]));
        d = diffuse(d ^ word(&block[24..32]));
    }
    let mut lanes = [a, b, c, d];
    for (lane, w) in lanes.iter_mut().zip(blocks.remainder().chunks(8)) {
        *lane = diffuse(*lane ^ word(w));
    }
    let [a, b, c, d] = lanes;
    diffuse(a ^ b ^ c ^ d ^ bytes.len() as u64)
}

/// The slot of a draw: its top 32 bits, in `[0, 2^32)`.
#[inline]
pub fn slot(draw: u64) -> u32 {
    (draw >> 32) as u32
}

/// Slots below this threshold make up `fraction` of the partition:
/// `floor(fraction * 2^32)`, clamped to `[0, 2^32]`. Multiplying by a power of two
/// is exact in binary floating point, so this is reproducible everywhere.
pub fn threshold(fraction: f64) -> u64 {
    if fraction.is_nan() || fraction <= 0.0 {
        0
    } else if fraction >= 1.0 {
        SLOTS
    } else {
        (fraction * SLOTS as f64) as u64
    }
}

/// A uniform number in the open interval (0, 1) from a draw: the top 52 bits plus
/// one half, times 2^-52 (exact in an f64).
#[inline]
pub fn unit_interval(draw: u64) -> f64 {
    ((draw >> 12) as f64 + 0.5) * (1.0 / (1u64 << 52) as f64)
}

/// A variant's rendezvous score; the lowest wins.
#[inline]
pub fn rendezvous_score(draw: u64, weight: f64) -> f64 {
    -libm::log(unit_interval(draw)) / weight
}

/// A lower bound of [`rendezvous_score`] given `inv_weight = 1 / w`:
/// `2 (1 - u) / ((1 + u) w) <= -ln(u) / w`, because `ln x >= 2 (x - 1) / (x + 1)`
/// for `x = 1 / u >= 1`. Costs a division instead of a logarithm, and is within
/// 1% of the score for the scores that win (`u` above about 0.6).
#[inline]
pub fn score_lower_bound(draw: u64, inv_weight: f64) -> f64 {
    let u = unit_interval(draw);
    2.0 * (1.0 - u) / (1.0 + u) * inv_weight
}

/// An upper bound of [`rendezvous_score`] given `inv_weight = 1 / w`:
/// `(1 - u^2) / (2 u w) >= -ln(u) / w`, because `ln x <= (x - 1 / x) / 2` for
/// `x = 1 / u >= 1`.
#[inline]
pub fn score_upper_bound(draw: u64, inv_weight: f64) -> f64 {
    let u = unit_interval(draw);
    (1.0 - u) * (1.0 + u) / (2.0 * u) * inv_weight
}

/// Relative margin on every comparison of bounds: a million times the combined
/// rounding error of the bounds (a few operations), the reciprocal of the weight,
/// the logarithm and the division of the computed score (a few units in 2^-52).
const MARGIN: f64 = 1e-9;

/// Whether the computed `rendezvous_score(draw, w)` is certainly greater than
/// `best`, so the logarithm need not be computed (`inv_weight = 1 / w`): the lower
/// bound exceeds `best` by the relative [`MARGIN`]. Skipping such a variant cannot
/// change the winner, nor a tie.
#[inline]
pub fn cannot_beat(draw: u64, inv_weight: f64, best: f64) -> bool {
    certainly_above(score_lower_bound(draw, inv_weight), best)
}

/// [`cannot_beat`] for a lower bound already computed.
#[inline]
pub fn certainly_above(lower: f64, best: f64) -> bool {
    lower * (1.0 - MARGIN) > best
}

/// Whether a computed score known to be at most `upper` (from
/// [`score_upper_bound`]) is certainly smaller than every computed score whose
/// lower bound is `lower`: then that variant wins without any logarithm, and
/// no tie is possible.
#[inline]
pub fn certainly_below(upper: f64, lower: f64) -> bool {
    upper * (1.0 + MARGIN) < lower * (1.0 - MARGIN)
}

/// A short, stable, one-way fingerprint of a salt, safe to export: the top
/// half of the first seed [`DrawKey::derive`] would give (the others are not
/// computed: a reload makes one per compiled experiment).
pub fn salt_fingerprint(salt: &str) -> String {
    let [k0] = seeds::<1>("salt-fingerprint", salt, "");
    format!("{:08x}", (k0 >> 32) as u32)
}

/// The first `N` seeds of [`DrawKey::derive`]'s formula: all four for a draw
/// key, only the first for a salt fingerprint (which reads no other).
fn seeds<const N: usize>(purpose: &str, salt: &str, extra: &str) -> [u64; N] {
    // One buffer for the four seeds (only `i` differs), on the stack for
    // usual salts, hashed with the inlined SeaHash: a reload derives five
    // keys per experiment, and four heap buffers and the crate's hash per
    // key were a sixth of compiling 10,000 experiments (callgrind,
    // `reload_time`). The parts are copied into place at offsets known from
    // their lengths (`SmallVec::extend_from_slice` per part was another 12 M
    // instructions per compile of 10,000). The bytes and the hash are those
    // of `DrawKey::derive`'s formula (`derive_matches_the_formula` checks
    // against the crate).
    const PREFIX: &[u8] = b"cohortd/v1\0";
    let len = PREFIX.len() + purpose.len() + 1 + 8 + 8 + salt.len() + 8 + extra.len();
    let mut stack = [0u8; 160];
    let mut heap = Vec::new();
    let buf: &mut [u8] = if len <= stack.len() {
        &mut stack[..len]
    } else {
        heap.resize(len, 0);
        &mut heap
    };
    let mut w = 0;
    for part in [
        PREFIX,
        purpose.as_bytes(),
        &[0],
        &[0; 8],
        &(salt.len() as u64).to_le_bytes(),
        salt.as_bytes(),
        &(extra.len() as u64).to_le_bytes(),
        extra.as_bytes(),
    ] {
        buf[w..w + part.len()].copy_from_slice(part);
        w += part.len();
    }
    let at = PREFIX.len() + purpose.len() + 1;
    let mut k = [0u64; N];
    for (i, slot) in k.iter_mut().enumerate() {
        buf[at..at + 8].copy_from_slice(&(i as u64).to_le_bytes());
        *slot = seahash_seeded(buf, SEAHASH_DEFAULT_SEEDS);
    }
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threshold_is_exact_and_clamped() {
        assert_eq!(threshold(0.0), 0);
        assert_eq!(threshold(-1.0), 0);
        assert_eq!(threshold(f64::NAN), 0);
        assert_eq!(threshold(1.0), SLOTS);
        assert_eq!(threshold(0.25), SLOTS / 4);
        assert_eq!(threshold(0.5), SLOTS / 2);
        assert!(threshold(0.1) < threshold(0.1000001));
    }

    #[test]
    fn unit_interval_stays_open() {
        assert!(unit_interval(0) > 0.0);
        assert!(unit_interval(u64::MAX) < 1.0);
        assert!(rendezvous_score(u64::MAX, 1.0) > 0.0);
        assert!(rendezvous_score(0, 1.0).is_finite());
    }

    #[test]
    fn lower_bound_never_exceeds_the_score() {
        let mut d = 0x9e37_79b9_7f4a_7c15u64;
        for i in 0..200_000u64 {
            // Spread draws over the whole range, including both ends.
            d = d
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let draw = match i {
                0 => 0,
                1 => u64::MAX,
                2 => 1 << 63,
                _ => d,
            };
            for w in [1e-6, 0.01, 0.5, 1.0, 3.0, 7.0, 1e6] {
                let score = rendezvous_score(draw, w);
                assert!(score_lower_bound(draw, 1.0 / w) <= score, "{draw:x} {w}");
                assert!(score_upper_bound(draw, 1.0 / w) >= score, "{draw:x} {w}");
                assert!(!cannot_beat(draw, 1.0 / w, score), "{draw:x} {w}");
                let upper = score_upper_bound(draw, 1.0 / w);
                assert!(!certainly_below(upper, score), "{draw:x} {w}");
            }
        }
    }

    #[test]
    fn seahash_matches_the_crate() {
        let data: Vec<u8> = (0..200u32).map(|i| (i * 131 + 7) as u8).collect();
        let seeds = [
            [1, 2, 3, 4],
            [u64::MAX, 0, 0x6eed_0e9d_a4d9_4a4f, 42],
            DrawKey::derive(purpose::VARIANT, "s", "v").seeds,
        ];
        for len in 0..=data.len() {
            for start in [0, 1, 3] {
                let bytes = &data[start.min(len)..len];
                for k in seeds {
                    assert_eq!(
                        seahash_seeded(bytes, k),
                        seahash::hash_seeded(bytes, k[0], k[1], k[2], k[3]),
                        "len {} seeds {k:?}",
                        bytes.len()
                    );
                }
            }
        }
    }

    /// The documented formula, written out with the crate's `seahash::hash`.
    fn derive_by_formula(purpose: &str, salt: &str, extra: &str) -> [u64; 4] {
        let mut k = [0u64; 4];
        for (i, slot) in k.iter_mut().enumerate() {
            let mut buf = b"cohortd/v1\0".to_vec();
            buf.extend_from_slice(purpose.as_bytes());
            buf.push(0);
            buf.extend_from_slice(&(i as u64).to_le_bytes());
            buf.extend_from_slice(&(salt.len() as u64).to_le_bytes());
            buf.extend_from_slice(salt.as_bytes());
            buf.extend_from_slice(&(extra.len() as u64).to_le_bytes());
            buf.extend_from_slice(extra.as_bytes());
            *slot = seahash::hash(&buf);
        }
        k
    }

    #[test]
    fn derive_matches_the_formula() {
        // Salts shorter and longer than the stack buffer, every length mod 32.
        for n in (0..40).chain([100, 127, 128, 129, 200, 1000]) {
            let salt: String = (0..n).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
            for (p, extra) in [
                (purpose::TRAFFIC, ""),
                (purpose::VARIANT, "variant-a"),
                ("salt-fingerprint", ""),
            ] {
                assert_eq!(
                    DrawKey::derive(p, &salt, extra).seeds,
                    derive_by_formula(p, &salt, extra),
                    "salt length {n}, purpose {p}"
                );
            }
            let first = derive_by_formula("salt-fingerprint", &salt, "")[0];
            assert_eq!(
                salt_fingerprint(&salt),
                format!("{:08x}", (first >> 32) as u32),
                "salt length {n}"
            );
        }
    }

    #[test]
    fn prepared_units_draw_like_bytes() {
        let data: Vec<u8> = (0..80u32).map(|i| (i * 37 + 11) as u8).collect();
        let keys = [
            DrawKey::from_seeds([1, 2, 3, 4]),
            DrawKey::derive(purpose::TRAFFIC, "salt", ""),
        ];
        for len in 0..=data.len() {
            let u = Unit::new(&data[..len]);
            for k in &keys {
                assert_eq!(k.draw_unit(&u), k.draw(&data[..len]), "len {len}");
            }
        }
    }

    #[test]
    fn purposes_and_salts_give_different_seeds() {
        let a = DrawKey::derive(purpose::TRAFFIC, "s", "");
        let b = DrawKey::derive(purpose::VARIANT, "s", "");
        let c = DrawKey::derive(purpose::TRAFFIC, "t", "");
        // Length prefixes keep ("ab","c") and ("a","bc") apart.
        let d = DrawKey::derive(purpose::VARIANT, "ab", "c");
        let e = DrawKey::derive(purpose::VARIANT, "a", "bc");
        assert_ne!(a, b);
        assert_ne!(a, c);
        assert_ne!(d, e);
    }
}
