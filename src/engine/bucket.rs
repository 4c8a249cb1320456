//! The bucketing primitives. This file *is* the assignment algorithm; the README
//! documents it byte for byte so other implementations can reproduce it.
//!
//! * A **draw** is `seahash::hash_seeded(unit_id_bytes, k0, k1, k2, k3)` where the
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
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DrawKey([u64; 4]);

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
        let mut k = [0u64; 4];
        for (i, slot) in k.iter_mut().enumerate() {
            let mut buf = Vec::with_capacity(32 + purpose.len() + salt.len() + extra.len());
            buf.extend_from_slice(b"cohortd/v1\0");
            buf.extend_from_slice(purpose.as_bytes());
            buf.push(0);
            buf.extend_from_slice(&(i as u64).to_le_bytes());
            buf.extend_from_slice(&(salt.len() as u64).to_le_bytes());
            buf.extend_from_slice(salt.as_bytes());
            buf.extend_from_slice(&(extra.len() as u64).to_le_bytes());
            buf.extend_from_slice(extra.as_bytes());
            *slot = seahash::hash(&buf);
        }
        DrawKey(k)
    }

    /// The draw for one unit id.
    #[inline]
    pub fn draw(&self, unit: &[u8]) -> u64 {
        seahash::hash_seeded(unit, self.0[0], self.0[1], self.0[2], self.0[3])
    }
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

/// A lower bound of [`rendezvous_score`]: `(1 - u) / w <= -ln(u) / w`, because
/// `ln(u) <= u - 1`. Costs a subtraction and a division instead of a logarithm.
#[inline]
pub fn score_lower_bound(draw: u64, weight: f64) -> f64 {
    (1.0 - unit_interval(draw)) / weight
}

/// Whether the computed `rendezvous_score(draw, weight)` is certainly greater than
/// `best`, so the logarithm need not be computed: the lower bound exceeds `best`
/// by a relative margin of 1e-9, a million times the combined rounding error of
/// the subtraction, the logarithm and the divisions (a few units in 2^-52).
/// Skipping such a variant cannot change the winner, nor a tie.
#[inline]
pub fn cannot_beat(draw: u64, weight: f64, best: f64) -> bool {
    score_lower_bound(draw, weight) * (1.0 - 1e-9) > best
}

/// A short, stable, one-way fingerprint of a salt, safe to export.
pub fn salt_fingerprint(salt: &str) -> String {
    let k = DrawKey::derive("salt-fingerprint", salt, "");
    format!("{:08x}", (k.0[0] >> 32) as u32)
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
                assert!(score_lower_bound(draw, w) <= score, "{draw:x} {w}");
                assert!(!cannot_beat(draw, w, score), "{draw:x} {w}");
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
