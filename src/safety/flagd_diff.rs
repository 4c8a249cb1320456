//! What a config change does to each flagd-format flag: added, removed, state,
//! default variant, variants, targeting, metadata, and for every `fractional`
//! split the fraction of units that change variant.
//!
//! Splits are paired by position: the n-th `fractional` of the old targeting
//! (document order) with the n-th of the new. When both bucket on the same
//! value and every variant name and weight is a literal, the fraction is exact
//! for the integer bucket walk of forms v2 and v3
//! ([`changed_fraction`]); for v1 (percentage buckets) it is the same formula
//! and only approximate. Weights or names that are JSONLogic, or a changed
//! bucketing value, have no fraction (`None`, with the reason).
//!
//! flagd has no epoch, so there is nothing to acknowledge a reshuffle with:
//! these changes are reported, never refused (the cohort guard is for cohortd
//! experiments).

use serde::Serialize;
use serde_json::Value;

use crate::config::flagd::FlagdState;
use crate::engine::flagd::fractional::changed_fraction;
use crate::engine::flagd::FractionalForm;
use crate::snapshot::flagd::{FlagdFlag, Logic, Op};
use crate::Snapshot;

/// Why a flagd flag's evaluations may differ between two configs.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FlagdCause {
    /// The flag is new.
    FlagAdded,
    /// The flag is gone (providers get FLAG_NOT_FOUND).
    FlagRemoved,
    /// `state` changed.
    StateChanged {
        /// Before (`ENABLED` or `DISABLED`).
        from: &'static str,
        /// After.
        to: &'static str,
    },
    /// `defaultVariant` changed (null: the caller's default).
    DefaultVariantChanged {
        /// Before.
        from: Option<String>,
        /// After.
        to: Option<String>,
    },
    /// A variant was added.
    VariantAdded {
        /// Variant name.
        key: String,
    },
    /// A variant was removed.
    VariantRemoved {
        /// Variant name.
        key: String,
    },
    /// A variant serves a different value (moves nobody).
    VariantValueChanged {
        /// Variant name.
        key: String,
    },
    /// Targeting changed outside the `fractional` splits (or splits were added
    /// or removed): who reaches which branch depends on real attributes; not
    /// estimated.
    TargetingChanged,
    /// Flag or flag-set metadata changed (moves nobody).
    MetadataChanged,
}

impl std::fmt::Display for FlagdCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "null".into());
        match self {
            FlagdCause::FlagAdded => write!(f, "flag added"),
            FlagdCause::FlagRemoved => write!(f, "flag removed"),
            FlagdCause::StateChanged { from, to } => write!(f, "state {from} -> {to}"),
            FlagdCause::DefaultVariantChanged { from, to } => {
                write!(f, "defaultVariant {} -> {}", opt(from), opt(to))
            }
            FlagdCause::VariantAdded { key } => write!(f, "variant `{key}` added"),
            FlagdCause::VariantRemoved { key } => write!(f, "variant `{key}` removed"),
            FlagdCause::VariantValueChanged { key } => {
                write!(f, "variant `{key}` serves a different value")
            }
            FlagdCause::TargetingChanged => write!(
                f,
                "targeting changed outside its fractional splits (effect depends on real attributes; not estimated)"
            ),
            FlagdCause::MetadataChanged => write!(f, "metadata changed"),
        }
    }
}

/// One distribution entry of a split with literal names and weights.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    /// The variant name the entry yields.
    pub variant: String,
    /// Its weight (absent: 1).
    pub weight: u64,
}

/// One `fractional` whose arguments changed.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SplitChange {
    /// Position among the targeting's `fractional` operators (0: the first in
    /// document order).
    pub index: usize,
    /// The old distribution, when names and weights are literals.
    pub before: Option<Vec<Entry>>,
    /// The new distribution, when names and weights are literals.
    pub after: Option<Vec<Entry>>,
    /// The fraction of units reaching this split whose variant changes.
    pub changed_fraction: Option<f64>,
    /// Whether `changed_fraction` is exact for the form in force.
    pub exact: bool,
    /// Why the fraction is missing or approximate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// One flagd flag that differs between two configs.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FlagdFlagDiff {
    /// The flag key.
    pub key: String,
    /// What changed.
    pub causes: Vec<FlagdCause>,
    /// The `fractional` splits whose arguments changed.
    pub splits: Vec<SplitChange>,
}

/// Compares the flagd flags of two snapshots, bucketing as `form` does.
/// Unchanged flags are left out; the result is sorted by key.
pub fn diff_flagd(old: &Snapshot, new: &Snapshot, form: FractionalForm) -> Vec<FlagdFlagDiff> {
    let mut keys: Vec<&str> = old
        .flagd()
        .flags()
        .iter()
        .chain(new.flagd().flags())
        .map(FlagdFlag::key)
        .collect();
    keys.sort_unstable();
    keys.dedup();
    keys.into_iter()
        .filter_map(|k| {
            let d = diff_flag(k, old.flagd().get(k), new.flagd().get(k), form);
            (!d.causes.is_empty() || !d.splits.is_empty()).then_some(d)
        })
        .collect()
}

fn state(s: FlagdState) -> &'static str {
    match s {
        FlagdState::Enabled => "ENABLED",
        FlagdState::Disabled => "DISABLED",
    }
}

fn diff_flag(
    key: &str,
    o: Option<&FlagdFlag>,
    n: Option<&FlagdFlag>,
    form: FractionalForm,
) -> FlagdFlagDiff {
    let mut d = FlagdFlagDiff {
        key: key.to_owned(),
        causes: Vec::new(),
        splits: Vec::new(),
    };
    let (o, n) = match (o, n) {
        (Some(o), Some(n)) => (o, n),
        (None, _) => {
            d.causes.push(FlagdCause::FlagAdded);
            return d;
        }
        (_, None) => {
            d.causes.push(FlagdCause::FlagRemoved);
            return d;
        }
    };
    if o.state != n.state {
        d.causes.push(FlagdCause::StateChanged {
            from: state(o.state),
            to: state(n.state),
        });
    }
    if o.default_variant != n.default_variant {
        d.causes.push(FlagdCause::DefaultVariantChanged {
            from: o.default_variant.clone(),
            to: n.default_variant.clone(),
        });
    }
    for (k, v) in &o.variants {
        match n.variants.get(k) {
            None => d.causes.push(FlagdCause::VariantRemoved { key: k.clone() }),
            Some(w) if w != v => d
                .causes
                .push(FlagdCause::VariantValueChanged { key: k.clone() }),
            Some(_) => {}
        }
    }
    for k in n.variants.keys().filter(|k| !o.variants.contains_key(*k)) {
        d.causes.push(FlagdCause::VariantAdded { key: k.clone() });
    }
    let (mut a, mut b) = (Vec::new(), Vec::new());
    if let Some(t) = &o.targeting {
        splits_of(t, &mut a);
    }
    if let Some(t) = &n.targeting {
        splits_of(t, &mut b);
    }
    let same_shape = match (&o.targeting, &n.targeting) {
        (Some(x), Some(y)) => same_outside_splits(x, y),
        (None, None) => true,
        _ => false,
    };
    if !same_shape || a.len() != b.len() {
        d.causes.push(FlagdCause::TargetingChanged);
    }
    for (index, (x, y)) in a.iter().zip(&b).enumerate() {
        if x != y {
            d.splits.push(split_change(index, x, y, form));
        }
    }
    if o.metadata != n.metadata {
        d.causes.push(FlagdCause::MetadataChanged);
    }
    d
}

/// Every `fractional`'s arguments, in document order.
fn splits_of<'a>(l: &'a Logic, out: &mut Vec<&'a [Logic]>) {
    match l {
        Logic::Lit(_) => {}
        Logic::Array(items) => items.iter().for_each(|i| splits_of(i, out)),
        Logic::Var { default, .. } => {
            if let Some(d) = default {
                splits_of(d, out);
            }
        }
        Logic::VarDyn { path, default } => {
            splits_of(path, out);
            if let Some(d) = default {
                splits_of(d, out);
            }
        }
        Logic::Op { op, args } => {
            if *op == Op::Fractional {
                out.push(args);
            }
            args.iter().for_each(|a| splits_of(a, out));
        }
    }
}

/// Structural equality that treats any two `fractional` nodes as equal.
fn same_outside_splits(a: &Logic, b: &Logic) -> bool {
    let opt = |x: &Option<Box<Logic>>, y: &Option<Box<Logic>>| match (x, y) {
        (Some(x), Some(y)) => same_outside_splits(x, y),
        (None, None) => true,
        _ => false,
    };
    let all = |p: &[Logic], q: &[Logic]| {
        p.len() == q.len() && p.iter().zip(q).all(|(x, y)| same_outside_splits(x, y))
    };
    match (a, b) {
        (
            Logic::Op {
                op: Op::Fractional, ..
            },
            Logic::Op {
                op: Op::Fractional, ..
            },
        ) => true,
        (Logic::Op { op: x, args: p }, Logic::Op { op: y, args: q }) => x == y && all(p, q),
        (Logic::Array(p), Logic::Array(q)) => all(p, q),
        (
            Logic::Var {
                path: p,
                default: x,
            },
            Logic::Var {
                path: q,
                default: y,
            },
        ) => p == q && opt(x, y),
        (
            Logic::VarDyn {
                path: p,
                default: x,
            },
            Logic::VarDyn {
                path: q,
                default: y,
            },
        ) => same_outside_splits(p, q) && opt(x, y),
        _ => a == b,
    }
}

/// A split's bucketing expression (`None`: the shorthand, flagKey with the
/// targeting key) and its distribution entries.
fn parts(args: &[Logic]) -> (Option<&Logic>, &[Logic]) {
    match args.first() {
        Some(Logic::Lit(Value::Array(_)) | Logic::Array(_)) | None => (None, args),
        Some(first) => (Some(first), &args[1..]),
    }
}

/// The literal distribution, or why there is none.
fn entries(dists: &[Logic], form: FractionalForm) -> Result<Vec<Entry>, &'static str> {
    dists
        .iter()
        .map(|d| {
            let Logic::Lit(Value::Array(e)) = d else {
                return Err("a variant name or weight is JSONLogic evaluated per request");
            };
            let variant = match e.first() {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Bool(b)) if form != FractionalForm::V1 => b.to_string(),
                Some(Value::Number(n)) if form != FractionalForm::V1 => n.to_string(),
                _ => return Err("an entry names no variant (the split yields null)"),
            };
            let weight = match e.get(1) {
                None => 1,
                Some(Value::Null) if form != FractionalForm::V3 => 1,
                Some(Value::Number(n)) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
                    (Some(w), _, _) => w,
                    (None, Some(_), _) if form == FractionalForm::V3 => 0,
                    (None, None, Some(f))
                        if form != FractionalForm::V3 && f.fract() == 0.0 && f >= 0.0 =>
                    {
                        f as u64
                    }
                    _ => return Err("a weight is not a whole number (the split yields null)"),
                },
                Some(_) => return Err("a weight is not a number (the split yields null)"),
            };
            Ok(Entry { variant, weight })
        })
        .collect()
}

fn split_change(index: usize, old: &[Logic], new: &[Logic], form: FractionalForm) -> SplitChange {
    let (ko, do_) = parts(old);
    let (kn, dn) = parts(new);
    let (before, after) = (entries(do_, form), entries(dn, form));
    let mut s = SplitChange {
        index,
        before: before.clone().ok(),
        after: after.clone().ok(),
        changed_fraction: None,
        exact: false,
        note: None,
    };
    if ko != kn {
        s.note =
            Some("the bucketing value changed: every unit is hashed anew (not computed)".into());
        return s;
    }
    match (before, after) {
        (Ok(b), Ok(a)) => {
            let pairs = |v: &[Entry]| {
                v.iter()
                    .map(|e| (e.variant.clone(), e.weight))
                    .collect::<Vec<_>>()
            };
            s.changed_fraction = Some(changed_fraction(&pairs(&b), &pairs(&a)));
            s.exact = form != FractionalForm::V1;
            if form == FractionalForm::V1 {
                s.note = Some(
                    "form v1 buckets by percentage: the integer-walk fraction is approximate"
                        .into(),
                );
            }
        }
        (Err(why), _) | (_, Err(why)) => s.note = Some(format!("{why} (not computed)")),
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{parse_sources, RawFile};

    fn snap(json: &str) -> Snapshot {
        let files = vec![RawFile {
            path: "flags.json".into(),
            bytes: json.as_bytes().to_vec(),
        }];
        Snapshot::compile(&parse_sources(&files).unwrap()).unwrap()
    }

    fn doc(targeting: &str, default: &str, extra_variant: bool) -> String {
        let c = if extra_variant { r#", "c": "C""# } else { "" };
        format!(
            r#"{{"flags": {{"f": {{"state": "ENABLED", "defaultVariant": {default},
                "variants": {{"a": "A", "b": "B"{c}}}, "targeting": {targeting}}}}}}}"#
        )
    }

    #[test]
    fn reweighted_split_reports_the_exact_fraction_and_the_causes() {
        let old = snap(&doc(
            r#"{"fractional": [["a", 50], ["b", 50]]}"#,
            "\"a\"",
            false,
        ));
        let new = snap(&doc(
            r#"{"fractional": [["a", 40], ["b", 40], ["c", 20]]}"#,
            "\"b\"",
            true,
        ));
        let d = diff_flagd(&old, &new, FractionalForm::V3);
        assert_eq!(d.len(), 1);
        assert_eq!(
            d[0].causes,
            vec![
                FlagdCause::DefaultVariantChanged {
                    from: Some("a".into()),
                    to: Some("b".into())
                },
                FlagdCause::VariantAdded { key: "c".into() },
            ]
        );
        let s = &d[0].splits[0];
        // a keeps [0, .4), b keeps [.5, .8): 30% change variant.
        assert!((s.changed_fraction.unwrap() - 0.3).abs() < 1e-9, "{s:?}");
        assert!(s.exact);
        let v1 = diff_flagd(&old, &new, FractionalForm::V1);
        assert!(!v1[0].splits[0].exact);
    }

    #[test]
    fn jsonlogic_weights_and_new_bucketing_values_are_not_computed() {
        let old = snap(&doc(
            r#"{"fractional": [["a", 50], ["b", 50]]}"#,
            "\"a\"",
            false,
        ));
        let computed = snap(&doc(
            r#"{"fractional": [["a", {"var": "w"}], ["b", 50]]}"#,
            "\"a\"",
            false,
        ));
        let s = &diff_flagd(&old, &computed, FractionalForm::V3)[0].splits[0];
        assert_eq!((s.changed_fraction, s.exact), (None, false));
        assert!(s.note.as_deref().unwrap().contains("JSONLogic"), "{s:?}");
        let rekeyed = snap(&doc(
            r#"{"fractional": [{"var": "email"}, ["a", 50], ["b", 50]]}"#,
            "\"a\"",
            false,
        ));
        let s = &diff_flagd(&old, &rekeyed, FractionalForm::V3)[0].splits[0];
        assert_eq!(s.changed_fraction, None);
        assert!(s.note.as_deref().unwrap().contains("bucketing value"));
        // Unchanged flags are not listed; a rule around the split is a cause.
        assert!(diff_flagd(&old, &old, FractionalForm::V3).is_empty());
        let wrapped = snap(&doc(
            r#"{"if": [{"==": [{"var": "tier"}, "gold"]}, "b", {"fractional": [["a", 50], ["b", 50]]}]}"#,
            "\"a\"",
            false,
        ));
        let d = diff_flagd(&old, &wrapped, FractionalForm::V3);
        assert_eq!(d[0].causes, vec![FlagdCause::TargetingChanged]);
        assert!(d[0].splits.is_empty());
    }
}
