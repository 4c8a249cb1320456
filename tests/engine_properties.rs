//! Property tests of the bucketing guarantees that must hold for *every* unit and
//! config (issue 2, guarantees 3, 4 and 6), plus layers and sticky assignments.
//! Seeds are fixed (`support::engine::proptest_config`), so runs are deterministic.

mod support;

use cohortd::engine::{Attr, Context, EvalError, EvalOptions, Reason, Sticky};
use cohortd::snapshot::Experiment;
use cohortd::Snapshot;
use proptest::prelude::*;
use serde_json::{json, Value};
use support::compile::{compile, compile_value};
use support::context::Unit;
use support::engine::{chi2_critical, chi_square, eval, proptest_config, unit_id, Kinds};

/// Unit ids: a couple of hundred per case, mostly derived from a random prefix
/// (cheap to generate) plus a few arbitrary short and non-ASCII ones.
fn units() -> impl Strategy<Value = Vec<String>> {
    (
        "[a-zA-Z0-9_@.-]{1,24}",
        150..250usize,
        prop::collection::vec("\\PC{1,8}", 8),
    )
        .prop_map(|(prefix, n, odd)| (0..n).map(|i| format!("{prefix}{i}")).chain(odd).collect())
}

fn weights() -> impl Strategy<Value = Vec<f64>> {
    prop::collection::vec(0.01f64..10.0, 2..7)
}

fn variants(weights: &[f64]) -> Vec<Value> {
    weights
        .iter()
        .enumerate()
        .map(|(i, w)| json!({"key": format!("v{i}"), "weight": w}))
        .collect()
}

fn experiment(traffic: f64, variants: Vec<Value>) -> Snapshot {
    compile_value(&json!({
        "key": "prop", "status": "running", "trafficAllocation": traffic,
        "variants": variants, "assignment": {"hashKey": "u", "salt": "prop-salt"}
    }))
}

fn exp(s: &Snapshot) -> &Experiment {
    s.experiment("prop").unwrap()
}

/// `(variant, enrolled)` of each unit.
fn assign_all(s: &Snapshot, units: &[String]) -> Vec<(String, bool)> {
    units
        .iter()
        .map(|u| {
            let (v, enrolled, _) = eval(exp(s), "u", u);
            (v.to_owned(), enrolled)
        })
        .collect()
}

proptest! {
    #![proptest_config(proptest_config(128))]

    /// Guarantee 3: raising trafficAllocation never un-enrols a unit and never
    /// changes an enrolled unit's variant.
    #[test]
    fn ramping_up_keeps_every_enrolled_unit(
        a in 0.0f64..=1.0, b in 0.0f64..=1.0, w in weights(), units in units()
    ) {
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        let before = assign_all(&experiment(lo, variants(&w)), &units);
        let after = assign_all(&experiment(hi, variants(&w)), &units);
        for (u, (b, a)) in units.iter().zip(before.iter().zip(&after)) {
            if b.1 {
                prop_assert!(a.1, "unit {u:?} un-enrolled by ramping {lo} -> {hi}");
                prop_assert_eq!(&a.0, &b.0, "unit {:?} changed variant", u);
            }
        }
    }

    /// Guarantee 4: raising one variant's weight moves units only into it, and does
    /// not change who is enrolled.
    #[test]
    fn raising_a_weight_moves_units_only_into_it(
        w in weights(), pick in any::<prop::sample::Index>(), factor in 1.01f64..20.0,
        traffic in 0.1f64..=1.0, units in units()
    ) {
        let i = pick.index(w.len());
        let mut raised = w.clone();
        raised[i] *= factor;
        let before = assign_all(&experiment(traffic, variants(&w)), &units);
        let after = assign_all(&experiment(traffic, variants(&raised)), &units);
        let target = format!("v{i}");
        for (u, (b, a)) in units.iter().zip(before.iter().zip(&after)) {
            prop_assert_eq!(b.1, a.1, "enrolment of {:?} changed", u);
            if b.0 != a.0 {
                prop_assert_eq!(&a.0, &target, "unit {:?} moved {} -> {}", u, b.0, a.0);
            }
        }
    }

    /// Guarantee 4: adding a variant moves units only into the new one.
    #[test]
    fn adding_a_variant_moves_units_only_into_it(
        w in weights(), new_weight in 0.01f64..10.0, at in any::<prop::sample::Index>(),
        units in units()
    ) {
        let old = variants(&w);
        let mut new = old.clone();
        new.insert(at.index(old.len() + 1), json!({"key": "added", "weight": new_weight}));
        let before = assign_all(&experiment(1.0, old), &units);
        let after = assign_all(&experiment(1.0, new), &units);
        for (u, (b, a)) in units.iter().zip(before.iter().zip(&after)) {
            if b.0 != a.0 {
                prop_assert_eq!(a.0.as_str(), "added", "unit {:?} moved {} -> {}", u, b.0, a.0);
            }
        }
    }

    /// Guarantee 4: removing a variant moves only the units that had it.
    #[test]
    fn removing_a_variant_moves_only_its_units(
        w in prop::collection::vec(0.01f64..10.0, 3..7), pick in any::<prop::sample::Index>(),
        units in units()
    ) {
        let old = variants(&w);
        let i = pick.index(old.len());
        let mut new = old.clone();
        new.remove(i);
        let removed = format!("v{i}");
        let before = assign_all(&experiment(1.0, old), &units);
        let after = assign_all(&experiment(1.0, new), &units);
        for (u, (b, a)) in units.iter().zip(before.iter().zip(&after)) {
            if b.0 != removed {
                prop_assert_eq!(&a.0, &b.0, "unit {:?} moved although its variant stayed", u);
            } else {
                prop_assert_ne!(&a.0, &removed);
            }
        }
    }

    /// Guarantee 4: reordering the variants list moves nobody.
    #[test]
    fn reordering_variants_moves_nobody(
        shuffled in weights().prop_flat_map(|w| {
            let v = variants(&w);
            (Just(v.clone()), Just(v).prop_shuffle())
        }),
        traffic in 0.0f64..=1.0, units in units()
    ) {
        let (ordered, shuffled) = shuffled;
        let before = assign_all(&experiment(traffic, ordered.clone()), &units);
        let after = assign_all(&experiment(traffic, shuffled.clone()), &units);
        for (u, (b, a)) in units.iter().zip(before.iter().zip(&after)) {
            prop_assert_eq!(b.1, a.1);
            if b.1 {
                prop_assert_eq!(&a.0, &b.0, "unit {:?} moved by reordering", u);
            }
        }
    }

    /// Layers: adding an experiment in free space of a layer moves no unit of the
    /// experiments already there, and no unit is ever in two of them.
    #[test]
    fn adding_to_free_layer_space_moves_nobody(
        cuts in prop::collection::vec(0.01f64..0.99, 3), units in units()
    ) {
        let mut c = cuts;
        c.sort_by(f64::total_cmp);
        prop_assume!(c[0] < c[1] && c[1] < c[2]);
        let member = |key: &str, lo: f64, hi: f64| json!({
            "key": key, "status": "running", "variants": ["x", "y", "z"],
            "layer": {"key": "L", "range": [lo, hi]}
        });
        let two = compile_value(&json!([member("A", 0.0, c[0]), member("B", c[0], c[1])]));
        let three = compile_value(&json!([
            member("A", 0.0, c[0]), member("B", c[0], c[1]), member("C", c[1], c[2])
        ]));
        for u in &units {
            let mut inside = 0;
            for k in ["A", "B"] {
                let b = eval(two.experiment(k).unwrap(), "targetingKey", u);
                let a = eval(three.experiment(k).unwrap(), "targetingKey", u);
                prop_assert_eq!(a, b, "unit {:?} of {} moved", u, k);
                inside += a.1 as u32;
            }
            inside += eval(three.experiment("C").unwrap(), "targetingKey", u).1 as u32;
            prop_assert!(inside <= 1, "unit {u:?} is in {inside} experiments of one layer");
        }
    }
}

/// A context whose unit attribute is present but unusable, or absent.
struct Odd(Option<Attr<'static>>);

impl Context for Odd {
    fn get(&self, name: &str) -> Option<Attr<'_>> {
        match name {
            "userId" => self.0,
            "region" => Some(Attr::Str("US")),
            _ => None,
        }
    }
}

fn odd_units() -> impl Strategy<Value = Option<Attr<'static>>> {
    prop_oneof![
        Just(None),
        Just(Some(Attr::Str(""))),
        Just(Some(Attr::Null)),
        Just(Some(Attr::Other)),
        any::<bool>().prop_map(|b| Some(Attr::Bool(b))),
        Just(Some(Attr::Num(f64::NAN))),
        Just(Some(Attr::Num(f64::INFINITY))),
        Just(Some(Attr::Num(f64::NEG_INFINITY))),
    ]
}

proptest! {
    #![proptest_config(proptest_config(64))]

    /// Guarantee 6: a unit without a usable hashKey is not enrolled, gets the
    /// default variant with reason MissingUnit, and is never hashed (no traffic,
    /// layer, holdout or score step runs), even at 100% traffic.
    #[test]
    fn missing_unit_is_never_bucketed(unit in odd_units(), traffic in 0.0f64..=1.0) {
        let snap = compile_value(&json!({"experiments": [{
            "key": "m", "status": "running", "trafficAllocation": traffic,
            "variants": ["a", "b"], "defaultVariant": "b",
            "assignment": {"hashKey": "userId"}, "holdout": "h",
            "layer": {"key": "L", "range": [0.0, 1.0]}
        }], "holdouts": [{"key": "h", "fraction": 0.0}]}));
        let e = snap.experiment("m").unwrap();
        let mut trace = Kinds::default();
        let a = e.evaluate(&Odd(unit), EvalOptions::default(), &mut trace);
        prop_assert_eq!(a.reason, Reason::MissingUnit);
        prop_assert!(!a.enrolled);
        prop_assert_eq!(&*a.variant.key, "b");
        prop_assert_eq!(trace.steps, vec!["status", "unit"]);
        // A sticky assignment does not rescue a unit that cannot be identified.
        let sticky = EvalOptions { sticky: Some(Sticky { variant: "a" }), ..EvalOptions::default() };
        let a = e.evaluate(&Odd(unit), sticky, &mut ());
        prop_assert_eq!(a.reason, Reason::MissingUnit);
    }
}

/// The empty string is not a unit: it is reported missing instead of landing in
/// whatever bucket `""` hashes to, while any non-empty id is bucketed.
#[test]
fn empty_string_is_missing_but_one_character_is_a_unit() {
    let snap = compile(
        r#"{"key":"m","status":"running","variants":["a","b"],"assignment":{"hashKey":"userId"}}"#,
    );
    let e = snap.experiment("m").unwrap();
    assert_eq!(eval(e, "userId", ""), ("a", false, Reason::MissingUnit));
    let (_, enrolled, reason) = eval(e, "userId", " ");
    assert!(enrolled);
    assert_eq!(reason, Reason::Split);
    // A unit under another attribute name is not this experiment's unit.
    assert_eq!(eval(e, "targetingKey", "u1").2, Reason::MissingUnit);
}

/// A layer (or holdout) declared with its own hashKey reports a unit missing when
/// that attribute is absent, even if the experiment's own attribute is present.
#[test]
fn layer_with_its_own_unit_attribute_needs_it() {
    let snap = compile(
        r#"{"layers":[{"key":"L","hashKey":"deviceId"}],
            "experiments":[{"key":"e","status":"running","variants":["a"],
                            "layer":{"key":"L","range":[0,1]}}]}"#,
    );
    let e = snap.experiment("e").unwrap();
    assert_eq!(eval(e, "targetingKey", "u1").2, Reason::MissingUnit);
    let ctx = Unit {
        key: "targetingKey",
        id: "u1",
        extra: &[("deviceId", "d1")],
    };
    let a = e.evaluate(&ctx, EvalOptions::default(), &mut ());
    assert_eq!(a.reason, Reason::Split);
}

/// Raising a weight really moves units (the property above is not vacuous): from
/// 1:1 to 1:2, about a sixth of all units move from `a` to `b`.
#[test]
fn raising_a_weight_moves_the_expected_share() {
    let before = experiment(1.0, variants(&[1.0, 1.0]));
    let after = experiment(1.0, variants(&[1.0, 2.0]));
    let n = 60_000;
    let moved = (0..n)
        .filter(|&i| {
            let id = unit_id(i);
            let (b, a) = (
                eval(exp(&before), "u", &id).0,
                eval(exp(&after), "u", &id).0,
            );
            assert!(b == a || (b == "v0" && a == "v1"));
            b != a
        })
        .count() as u64;
    let stat = chi_square(&[moved, n - moved], &[1.0, 5.0]);
    assert!(
        stat < chi2_critical(1),
        "{moved} of {n} moved, expected a sixth"
    );
}

const STICKY: &str = r#"[
  {"key":"run","status":"running","trafficAllocation":0.01,"variants":["a","b","c"],
   "assignment":{"hashKey":"u"}, "targeting":{"include":["region:US"]}},
  {"key":"stopped","status":"stopped","variants":["a","b"],"assignment":{"hashKey":"u"}},
  {"key":"paused","status":"paused","variants":["a","b"],"defaultVariant":"b","assignment":{"hashKey":"u"}},
  {"key":"done","status":"completed","winner":"b","variants":["a","b"],"assignment":{"hashKey":"u"}},
  {"key":"draft","status":"draft","variants":["a"]}
]"#;

fn sticky(v: &str) -> EvalOptions<'_> {
    EvalOptions {
        sticky: Some(Sticky { variant: v }),
        ..EvalOptions::default()
    }
}

/// Sticky assignments are honoured while the experiment runs and the variant
/// exists, ignored when the variant is gone, and never override a stopped, paused
/// or completed experiment (default or winner) or targeting.
#[test]
fn sticky_assignments() {
    let snap = compile(STICKY);
    let us = [("region", "US")];
    let run = snap.experiment("run").unwrap();
    let mut honoured = 0;
    for i in 0..2_000 {
        let id = unit_id(i);
        let ctx = Unit {
            key: "u",
            id: &id,
            extra: &us,
        };
        let plain = run.evaluate(&ctx, EvalOptions::default(), &mut ());
        // Honoured, even for units the 1% traffic would leave out.
        let a = run.evaluate(&ctx, sticky("c"), &mut ());
        assert_eq!(
            (&*a.variant.key, a.enrolled, a.reason),
            ("c", true, Reason::Sticky)
        );
        honoured += (!plain.enrolled) as u32;
        // Ignored when the variant no longer exists: same as no sticky at all.
        let gone = run.evaluate(&ctx, sticky("removed"), &mut ());
        assert_eq!(
            (&*gone.variant.key, gone.enrolled, gone.reason),
            (&*plain.variant.key, plain.enrolled, plain.reason)
        );
        // Targeting still applies first.
        let eu = Unit {
            key: "u",
            id: &id,
            extra: &[("region", "EU")],
        };
        assert_eq!(
            run.evaluate(&eu, sticky("c"), &mut ()).reason,
            Reason::TargetingMiss
        );
        // Not running: default or winner, whatever the sticky says.
        for (key, want, reason) in [
            ("stopped", "a", Reason::Disabled),
            ("paused", "b", Reason::Disabled),
            ("done", "b", Reason::Winner),
        ] {
            let a = snap.assign(key, &ctx, sticky("a")).unwrap();
            assert_eq!(
                (&*a.variant.key, a.enrolled, a.reason),
                (want, false, reason),
                "{key}"
            );
        }
    }
    assert!(
        honoured > 1_900,
        "most of these units are outside the 1% traffic"
    );
    // Drafts are not served at all; unknown keys are errors.
    let ctx = Unit {
        key: "u",
        id: "x",
        extra: &[],
    };
    assert!(matches!(
        snap.assign("draft", &ctx, sticky("a")),
        Err(EvalError::Draft(_))
    ));
    assert!(matches!(
        snap.assign("nope", &ctx, EvalOptions::default()),
        Err(EvalError::NotFound(_))
    ));
}

/// Stopping an experiment serves the default to everyone; declaring a winner
/// serves the winner to everyone, targeted or not: "ship it" is one reload.
#[test]
fn stopped_experiments_serve_default_or_winner_to_everyone() {
    let snap = compile(STICKY);
    for i in 0..1_000 {
        let id = unit_id(i);
        assert_eq!(
            eval(snap.experiment("stopped").unwrap(), "u", &id),
            ("a", false, Reason::Disabled)
        );
        assert_eq!(
            eval(snap.experiment("done").unwrap(), "u", &id),
            ("b", false, Reason::Winner)
        );
        assert_eq!(
            eval(snap.experiment("done").unwrap(), "nobody", &id),
            ("b", false, Reason::Winner)
        );
    }
}
