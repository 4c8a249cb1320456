//! flagd's `fractional` operator in each of its released forms.
//!
//! flagd's bucketing changed twice, and providers and flagd releases are mid-way
//! through the second change, so each form is implemented exactly and the operator
//! picks one ([`FractionalForm`]):
//!
//! | form | bucketing input | bucket | used by |
//! |------|-----------------|--------|---------|
//! | v1 | string: first argument if a string, else flagKey + targetingKey | `abs(int32 murmur3) / MaxInt32 * 100` against cumulative percentages | flagd < 0.12 and providers of that era |
//! | v2 | same string | `(murmur3 * totalWeight) >> 32` walked over cumulative integer weights | flagd `core/pkg/evaluator/fractional.go` (high-precision ADR), flagd 0.12+ |
//! | v3 | canonical CBOR of the value (any JSON type, integral floats as integers); shorthand: `[flagKey, targetingKey]` | as v2 | PyPI `openfeature-flagd-core` 2.x (Python provider in-process) |
//!
//! murmur3 is x86_32 with seed 0 (the `murmur3` crate). Arguments reach the
//! operator already evaluated, as in flagd, so variant names and weights may be
//! nested JSONLogic.

use std::borrow::Borrow;
use std::io::Cursor;

use serde_json::Value;

use super::cbor;

/// Which released form of `fractional` to evaluate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum FractionalForm {
    /// Legacy percentage buckets (flagd before the high-precision change).
    V1,
    /// High-precision integer buckets over a string (flagd's Go evaluator).
    V2,
    /// Typed bucketing values hashed as canonical CBOR (openfeature-flagd-core 2.x),
    /// the newest released form, hence the default.
    #[default]
    V3,
}

impl FractionalForm {
    /// Parses `v1`, `v2` or `v3`.
    pub fn parse(s: &str) -> Option<FractionalForm> {
        match s {
            "v1" => Some(FractionalForm::V1),
            "v2" => Some(FractionalForm::V2),
            "v3" => Some(FractionalForm::V3),
            _ => None,
        }
    }
}

/// The sum of weights may not exceed this (flagd: MaxInt32).
pub const MAX_WEIGHT_SUM: u64 = i32::MAX as u64;

/// x86_32 murmur3, seed 0.
pub fn murmur3_32(bytes: &[u8]) -> u32 {
    // Reading from a slice cannot fail.
    murmur3::murmur3_32(&mut Cursor::new(bytes), 0).unwrap_or(0)
}

/// Maps a 32-bit hash into `[0, total)` and walks the cumulative weights: the index
/// of the chosen entry. `total` must equal the sum of `weights` and be > 0.
pub fn bucket_index(
    hash: u32,
    weights: impl IntoIterator<Item = u64>,
    total: u64,
) -> Option<usize> {
    let bucket = (u64::from(hash) * total) >> 32;
    let mut end = 0u64;
    for (i, w) in weights.into_iter().enumerate() {
        end += w;
        if bucket < end {
            return Some(i);
        }
    }
    None
}

/// What `fractional` chose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Picked {
    /// The distribution entry at this index of the arguments; its first element is
    /// the result.
    Entry(usize),
    /// flagd's Go evaluator returns "" when every weight is zero (v1, v2).
    EmptyString,
}

/// Evaluates `fractional` over its evaluated arguments. `None` means the operator
/// yields null (flagd logs and returns nil; the flag then resolves to its default).
pub fn evaluate<T: Borrow<Value>>(
    form: FractionalForm,
    args: &[T],
    flag_key: &str,
    targeting_key: Option<&Value>,
    scratch: &mut Vec<u8>,
) -> Option<Picked> {
    match form {
        FractionalForm::V3 => v3(args, flag_key, targeting_key, scratch),
        FractionalForm::V2 | FractionalForm::V1 => {
            string_form(form, args, flag_key, targeting_key, scratch)
        }
    }
}

fn v3<T: Borrow<Value>>(
    args: &[T],
    flag_key: &str,
    tk: Option<&Value>,
    buf: &mut Vec<u8>,
) -> Option<Picked> {
    let first = args.first()?.borrow();
    buf.clear();
    let skip = if let Value::Array(_) = first {
        // Shorthand: bucket by [flagKey, targetingKey]; needs a non-empty string key.
        let tk = tk.and_then(Value::as_str).filter(|s| !s.is_empty())?;
        cbor::write_head(buf, 4, 2);
        cbor::write_str(buf, flag_key);
        cbor::write_str(buf, tk);
        0
    } else {
        if first.is_null() {
            return None;
        }
        cbor::write_value(buf, first);
        1
    };
    let dists = &args[skip..];
    let hash = murmur3_32(buf);
    let mut total = 0u64;
    for d in dists {
        let Value::Array(entry) = d.borrow() else {
            return None;
        };
        if entry.is_empty() || entry.len() > 2 {
            return None;
        }
        total += match entry.get(1) {
            None => 1,
            // Python's int only: floats (even 50.0) and booleans are refused;
            // negative weights clamp to 0.
            Some(Value::Number(n)) if n.is_i64() || n.is_u64() => {
                n.as_i64().map_or(u64::MAX / 4, |i| i.max(0) as u64)
            }
            Some(_) => return None,
        };
        if total > MAX_WEIGHT_SUM {
            return None;
        }
    }
    if total == 0 {
        return None;
    }
    let weight = |d: &T| match d.borrow().get(1) {
        None => 1,
        Some(w) => w.as_i64().map_or(0, |i| i.max(0) as u64),
    };
    let i = bucket_index(hash, dists.iter().map(weight), total)?;
    Some(Picked::Entry(skip + i))
}

fn string_form<T: Borrow<Value>>(
    form: FractionalForm,
    args: &[T],
    flag_key: &str,
    tk: Option<&Value>,
    buf: &mut Vec<u8>,
) -> Option<Picked> {
    if args.len() < 2 {
        return None;
    }
    buf.clear();
    let skip = match args[0].borrow() {
        Value::String(s) => {
            buf.extend_from_slice(s.as_bytes());
            1
        }
        first => {
            let Some(Value::String(tk)) = tk else {
                return None;
            };
            buf.extend_from_slice(flag_key.as_bytes());
            buf.extend_from_slice(tk.as_bytes());
            usize::from(first.is_null())
        }
    };
    let dists = &args[skip..];
    let mut total = 0u64;
    for d in dists {
        let Value::Array(entry) = d.borrow() else {
            return None;
        };
        let variant = entry.first()?;
        match (form, variant) {
            (FractionalForm::V1, Value::String(_)) => {}
            (FractionalForm::V1, _) => return None,
            (_, Value::String(_) | Value::Bool(_) | Value::Number(_) | Value::Null) => {}
            _ => return None,
        }
        total += weight_v2(entry.get(1))?;
    }
    if total > MAX_WEIGHT_SUM {
        return None;
    }
    let hash = murmur3_32(buf);
    let weights = dists
        .iter()
        .map(|d| weight_v2(d.borrow().get(1)).unwrap_or(0));
    if form == FractionalForm::V1 {
        let ratio = f64::from((hash as i32).unsigned_abs()) / f64::from(i32::MAX);
        let bucket = ratio * 100.0;
        let mut end = 0.0f64;
        for (i, w) in weights.enumerate() {
            end += if total == 0 {
                0.0
            } else {
                100.0 * w as f64 / total as f64
            };
            if bucket < end {
                return Some(Picked::Entry(skip + i));
            }
        }
        return Some(Picked::EmptyString);
    }
    if total == 0 {
        return Some(Picked::EmptyString);
    }
    bucket_index(hash, weights, total).map(|i| Picked::Entry(skip + i))
}

/// A v1/v2 weight: absent or null is 1, otherwise a whole number in [0, MaxInt32].
fn weight_v2(w: Option<&Value>) -> Option<u64> {
    match w {
        None | Some(Value::Null) => Some(1),
        Some(Value::Number(n)) => {
            let f = n.as_f64()?;
            if f.fract() != 0.0 || !(0.0..=MAX_WEIGHT_SUM as f64).contains(&f) {
                return None;
            }
            Some(f as u64)
        }
        Some(_) => None,
    }
}

/// For a change of a fractional split from `before` to `after` (variant, weight in
/// listed order), the exact fraction of units whose variant changes, for the v2/v3
/// integer bucket walk over a uniform 32-bit hash.
///
/// A unit with hash `h` lands in bucket `floor(h * total / 2^32)`, so a variant's
/// cumulative range `[a, b)` of weights owns the hashes `[ceil(a * 2^32 / total),
/// ceil(b * 2^32 / total))`. A unit keeps its variant exactly when its hash is in
/// the same variant's range before and after; summing those overlaps is exact.
pub fn changed_fraction<S: AsRef<str>>(before: &[(S, u64)], after: &[(S, u64)]) -> f64 {
    const SPACE: u128 = 1 << 32;
    fn ranges<S: AsRef<str>>(split: &[(S, u64)]) -> Vec<(&str, u128, u128)> {
        let total: u128 = split.iter().map(|(_, w)| u128::from(*w)).sum();
        if total == 0 {
            return Vec::new();
        }
        let edge = |c: u128| (c * SPACE).div_ceil(total);
        let mut acc = 0u128;
        split
            .iter()
            .map(|(v, w)| {
                let start = edge(acc);
                acc += u128::from(*w);
                (v.as_ref(), start, edge(acc))
            })
            .collect()
    }
    let (a, b) = (ranges(before), ranges(after));
    if a.is_empty() || b.is_empty() {
        return if a.is_empty() && b.is_empty() {
            0.0
        } else {
            1.0
        };
    }
    let mut kept = 0u128;
    for (va, sa, ea) in &a {
        for (vb, sb, eb) in &b {
            if va == vb {
                let (lo, hi) = ((*sa).max(*sb), (*ea).min(*eb));
                kept += hi.saturating_sub(lo);
            }
        }
    }
    1.0 - kept as f64 / SPACE as f64
}
