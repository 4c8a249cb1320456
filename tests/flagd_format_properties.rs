//! Statistical and structural properties of flagd's `fractional` (forms v2 and v3),
//! the exact changed-fraction calculation, and robustness of the evaluator on
//! arbitrary input.

use std::path::Path;

use cohortd::config::flagd::parse_flagd_value;
use cohortd::engine::flagd::fractional::changed_fraction;
use cohortd::engine::flagd::FractionalForm;
use cohortd::snapshot::flagd::{compile_document, FlagdFlag, Logic};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

const UNITS: usize = 20_000;

fn split(weights: &[(&str, u64)]) -> FlagdFlag {
    let dist: Vec<Value> = weights.iter().map(|(v, w)| json!([v, w])).collect();
    let variants: Map<String, Value> = weights
        .iter()
        .map(|(v, _)| (v.to_string(), json!(v)))
        .collect();
    let doc = json!({ "flags": { "exp": {
        "state": "ENABLED", "variants": variants, "defaultVariant": weights[0].0,
        "targeting": { "fractional": dist }
    } } });
    let parsed = parse_flagd_value(Path::new("t.json"), &doc).unwrap();
    compile_document(Path::new("t.json"), &parsed)
        .unwrap()
        .remove(0)
}

fn unit(i: usize) -> Map<String, Value> {
    json!({ "targetingKey": format!("unit-{i}") })
        .as_object()
        .unwrap()
        .clone()
}

fn variant_of(f: &FlagdFlag, i: usize, form: FractionalForm) -> String {
    f.evaluate(&unit(i), 0, form)
        .unwrap()
        .variant
        .unwrap()
        .to_owned()
}

#[test]
fn shares_match_weights_by_chi_square() {
    let weights = [("a", 10), ("b", 20), ("c", 30), ("d", 40)];
    let f = split(&weights);
    for form in [FractionalForm::V1, FractionalForm::V2, FractionalForm::V3] {
        let mut counts = [0usize; 4];
        for i in 0..UNITS {
            let v = variant_of(&f, i, form);
            counts[weights.iter().position(|(n, _)| *n == v).unwrap()] += 1;
        }
        let chi2: f64 = weights
            .iter()
            .zip(counts)
            .map(|((_, w), c)| {
                let expected = UNITS as f64 * *w as f64 / 100.0;
                (c as f64 - expected).powi(2) / expected
            })
            .sum();
        // 3 degrees of freedom, p = 0.001.
        assert!(
            chi2 < 16.27,
            "{form:?}: chi-square {chi2:.2} for counts {counts:?}"
        );
    }
}

#[test]
fn appending_a_zero_weight_variant_moves_no_unit() {
    let before = split(&[("a", 30), ("b", 70)]);
    let after = split(&[("a", 30), ("b", 70), ("c", 0)]);
    for form in [FractionalForm::V2, FractionalForm::V3] {
        for i in 0..UNITS {
            assert_eq!(
                variant_of(&before, i, form),
                variant_of(&after, i, form),
                "{form:?} unit {i}"
            );
        }
    }
}

#[test]
fn changed_fraction_is_exact_and_matches_observed_moves() {
    assert_eq!(
        changed_fraction(&[("a", 50), ("b", 50)], &[("a", 50), ("b", 50)]),
        0.0
    );
    assert_eq!(
        changed_fraction(&[("a", 1), ("b", 1)], &[("a", 50), ("b", 50)]),
        0.0
    );
    assert_eq!(
        changed_fraction(&[("a", 50), ("b", 50)], &[("b", 50), ("a", 50)]),
        1.0
    );
    assert_eq!(
        changed_fraction(&[("a", 30), ("b", 70)], &[("a", 30), ("b", 70), ("c", 0)]),
        0.0
    );
    let f = changed_fraction(&[("a", 50), ("b", 50)], &[("a", 60), ("b", 40)]);
    assert!((f - 0.1).abs() < 1e-9, "{f}");
    // 50/50 -> 3 equal parts: a keeps [0, 1/3), b keeps [2/3, 1); 1/3 moves.
    let f = changed_fraction(&[("a", 1), ("b", 1)], &[("a", 1), ("c", 1), ("b", 1)]);
    assert!((f - 1.0 / 3.0).abs() < 1e-9, "{f}");

    let (wa, wb) = (
        [("a", 25), ("b", 25), ("c", 50)],
        [("c", 40), ("a", 35), ("b", 25)],
    );
    let exact = changed_fraction(&wa, &wb);
    let (fa, fb) = (split(&wa), split(&wb));
    let moved = (0..UNITS)
        .filter(|&i| {
            variant_of(&fa, i, FractionalForm::V3) != variant_of(&fb, i, FractionalForm::V3)
        })
        .count() as f64
        / UNITS as f64;
    // Binomial standard error at 20,000 units is under 0.004; allow 4 sigma.
    assert!(
        (moved - exact).abs() < 0.016,
        "observed {moved}, exact {exact}"
    );
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i32>().prop_map(Value::from),
        (-1e6f64..1e6).prop_map(Value::from),
        "[a-z$.]{0,6}".prop_map(Value::from),
        prop_oneof![
            Just("var"),
            Just("if"),
            Just("fractional"),
            Just("sem_ver"),
            Just("substr"),
            Just("reduce"),
            Just("map"),
            Just("in"),
            Just("missing_some"),
            Just("<"),
            Just("/"),
            Just("%"),
            Just("cat"),
            Just("merge"),
        ]
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(5, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            (
                prop_oneof![
                    Just("var"),
                    Just("if"),
                    Just("fractional"),
                    Just("sem_ver"),
                    Just("substr"),
                    Just("reduce"),
                    Just("map"),
                    Just("filter"),
                    Just("all"),
                    Just("in"),
                    Just("missing"),
                    Just("missing_some"),
                    Just("<"),
                    Just("<="),
                    Just("/"),
                    Just("%"),
                    Just("-"),
                    Just("cat"),
                    Just("merge"),
                    Just("=="),
                    Just("starts_with"),
                    Just("max"),
                ],
                inner.clone()
            )
                .prop_map(|(k, v)| json!({ k: v })),
            prop::collection::btree_map("[a-z]{1,3}", inner, 0..3)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// Whatever the targeting and the context, compiling and evaluating never panics,
    /// in any form.
    #[test]
    fn arbitrary_targeting_and_context_never_panic(logic in json_value(), data in json_value()) {
        if let Ok(compiled) = Logic::compile(&logic) {
            let flag = FlagdFlag {
                key: json!("k"),
                state: cohortd::config::flagd::FlagdState::Enabled,
                variants: Map::new(),
                default_variant: None,
                targeting: Some(compiled),
                metadata: Map::new(),
                uses_fractional: true,
            };
            let ctx = match data { Value::Object(m) => m, other => json!({ "targetingKey": other, "x": other }).as_object().unwrap().clone() };
            for form in [FractionalForm::V1, FractionalForm::V2, FractionalForm::V3] {
                let _ = flag.evaluate(&ctx, 0, form);
            }
        }
    }
}
