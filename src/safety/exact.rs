//! Exact impact of a config change, computed from the two configs alone.
//!
//! The model is the one the algorithm is built on: every draw (traffic, layer,
//! holdout, one per variant) of a unit is an independent uniform number, and two
//! draws are *the same draw* exactly when their seeds (purpose, salt, variant key)
//! and the attribute they hash are equal. Under that model the fractions below are
//! exact expectations over the population of eligible units (those with a unit id
//! that pass targeting in both configs); a real population deviates from them only
//! by sampling noise.
//!
//! * **Enrolment** is the conjunction of independent gates, each a slot interval
//!   of one draw: not held out (`[end, 2^32)`), inside the layer range
//!   (`[start, end)`), inside traffic (`[0, threshold)`). For a pair of configs,
//!   the fraction enrolled in both is the product over gates of either the overlap
//!   of the two intervals (same draw) or the product of their lengths (different
//!   draws: independent). So raising traffic keeps everyone (`min(old, new)`
//!   stays) and a salt change keeps only `old * new`.
//! * **Variants**, for a unit enrolled in both, follow weighted rendezvous: variant
//!   `k` scores `E_k / w_k` with `E_k = -ln(u_k)` exponential(1), the lowest wins.
//!   When the variant draws are the same (same salt, unit attribute and strategy)
//!   and only weights change (`w` to `w'`, a missing variant having weight 0), a
//!   unit keeps variant `i` iff for every other `k`:
//!   `E_k > E_i * c_k` with `c_k = max(w_k / w_i, w'_k / w'_i)`. Conditioning on
//!   `E_i = x` and integrating `e^-x * prod_k e^(-x c_k)` gives
//!   `P(keep i) = 1 / (1 + sum_{k != i} c_k)`, and the kept fraction is the sum of
//!   that over variants with positive weight in both. With equal weights this is 1.
//!   When one variant gains weight at the expense of all others uniformly (or with
//!   two variants) it equals `1 - TV(p, p')`, the least any scheme could move; in
//!   general rendezvous moves slightly more than the total-variation distance
//!   (e.g. weights `1,2,1 -> 2,1,1` move 0.3 where TV is 0.25), and
//!   [`total_variation`] is reported beside it.
//! * When the variant draws change (salt, unit attribute or strategy), old and new
//!   choices are independent: the kept fraction is `sum_v p(v) p'(v)`.

use crate::engine::bucket::SLOTS;

/// A half-open slot interval `[start, end)` of one draw.
pub type Interval = (u64, u64);

/// The whole partition: a gate that everyone passes.
pub const FULL: Interval = (0, SLOTS);

/// The fraction of units whose slot falls in `i`.
pub fn length(i: Interval) -> f64 {
    i.1.saturating_sub(i.0) as f64 / SLOTS as f64
}

/// The fraction of units passing gate `a` in the old config and gate `b` in the new
/// one: their overlap when both use the same draw, otherwise independent.
pub fn both(a: Interval, b: Interval, same_draw: bool) -> f64 {
    if same_draw {
        let (s, e) = (a.0.max(b.0), a.1.min(b.1));
        length((s, e))
    } else {
        length(a) * length(b)
    }
}

/// Each variant's share of enrolled units (`w / sum w`), keyed by variant key.
pub fn shares<'a>(weights: &[(&'a str, f64)]) -> Vec<(&'a str, f64)> {
    let total: f64 = weights.iter().map(|(_, w)| w.max(0.0)).sum();
    weights
        .iter()
        .map(|&(k, w)| (k, if total > 0.0 { w.max(0.0) / total } else { 0.0 }))
        .collect()
}

fn weight_of(ws: &[(&str, f64)], key: &str) -> f64 {
    ws.iter()
        .find(|(k, _)| *k == key)
        .map_or(0.0, |&(_, w)| w.max(0.0))
}

fn union<'a>(a: &[(&'a str, f64)], b: &[(&'a str, f64)]) -> Vec<&'a str> {
    let mut keys: Vec<&str> = a.iter().chain(b).map(|&(k, _)| k).collect();
    keys.sort_unstable();
    keys.dedup();
    keys
}

/// The fraction of units enrolled in both configs that keep their variant when the
/// variant draws are unchanged and only the weights (or the set of variants) change.
pub fn rendezvous_keep(old: &[(&str, f64)], new: &[(&str, f64)]) -> f64 {
    let keys = union(old, new);
    let mut keep = 0.0;
    for &i in &keys {
        let (wi, vi) = (weight_of(old, i), weight_of(new, i));
        if wi <= 0.0 || vi <= 0.0 {
            continue;
        }
        let c: f64 = keys
            .iter()
            .filter(|&&k| k != i)
            .map(|&k| (weight_of(old, k) / wi).max(weight_of(new, k) / vi))
            .sum();
        keep += 1.0 / (1.0 + c);
    }
    keep.min(1.0)
}

/// The fraction keeping their variant when old and new variant draws are independent.
pub fn independent_keep(old: &[(&str, f64)], new: &[(&str, f64)]) -> f64 {
    let (p, q) = (shares(old), shares(new));
    p.iter()
        .map(|&(k, pk)| pk * q.iter().find(|(j, _)| *j == k).map_or(0.0, |&(_, qk)| qk))
        .sum()
}

/// Total-variation distance between the two normalised weight vectors: the least
/// fraction of enrolled units any assignment scheme must move for this change.
pub fn total_variation(old: &[(&str, f64)], new: &[(&str, f64)]) -> f64 {
    let (p, q) = (shares(old), shares(new));
    let keys = union(old, new);
    0.5 * keys
        .iter()
        .map(|&k| (weight_of(&p, k) - weight_of(&q, k)).abs())
        .sum::<f64>()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn gates_overlap_or_multiply() {
        let half = (0, SLOTS / 2);
        let quarter = (0, SLOTS / 4);
        assert!(close(both(half, quarter, true), 0.25));
        assert!(close(both(half, quarter, false), 0.125));
        assert!(close(both((0, SLOTS / 2), (SLOTS / 2, SLOTS), true), 0.0));
        assert!(close(both(FULL, quarter, true), 0.25));
    }

    #[test]
    fn equal_weights_keep_everyone_and_adding_a_variant_moves_its_share() {
        let ab = [("a", 1.0), ("b", 1.0)];
        assert!(close(rendezvous_keep(&ab, &ab), 1.0));
        // Reordering is the same set of weights.
        assert!(close(rendezvous_keep(&ab, &[("b", 1.0), ("a", 1.0)]), 1.0));
        // Adding c (1/3) moves exactly the units c takes.
        let abc = [("a", 1.0), ("b", 1.0), ("c", 1.0)];
        assert!(close(rendezvous_keep(&ab, &abc), 2.0 / 3.0));
        assert!(close(total_variation(&ab, &abc), 1.0 / 3.0));
        // Removing c sends its third back.
        assert!(close(rendezvous_keep(&abc, &ab), 2.0 / 3.0));
    }

    #[test]
    fn two_variant_reweight_moves_the_total_variation() {
        let old = [("a", 1.0), ("b", 1.0)];
        let new = [("a", 1.0), ("b", 2.0)];
        assert!(close(1.0 - rendezvous_keep(&old, &new), 1.0 / 6.0));
        assert!(close(total_variation(&old, &new), 1.0 / 6.0));
    }

    #[test]
    fn crossed_reweights_move_more_than_the_total_variation() {
        let old = [("a", 1.0), ("b", 2.0), ("c", 1.0)];
        let new = [("a", 2.0), ("b", 1.0), ("c", 1.0)];
        // keep a: 1/(1+max(2,.5)+max(1,.5)) = 1/4; b: 1/(1+max(.5,2)+max(.5,1)) = 1/4;
        // c: 1/(1+max(1,2)+max(2,1)) = 1/5.
        assert!(close(rendezvous_keep(&old, &new), 0.25 + 0.25 + 0.2));
        assert!(close(total_variation(&old, &new), 0.25));
    }

    #[test]
    fn independent_redraw_keeps_the_overlap_of_shares() {
        let ab = [("a", 1.0), ("b", 1.0)];
        assert!(close(independent_keep(&ab, &ab), 0.5));
        assert!(close(independent_keep(&[("a", 1.0)], &[("a", 1.0)]), 1.0));
        assert!(close(independent_keep(&ab, &[("c", 1.0)]), 0.0));
    }
}
