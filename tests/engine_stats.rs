//! Statistical guarantees of bucketing (issue 2, guarantees 2 and 5, holdouts and
//! layers): splits follow the weights, enrolment and variant choice are independent
//! draws, and experiments are independent of each other.
//!
//! Every test uses fixed unit ids, so each chi-square statistic is a constant; the
//! critical values are at p = 0.001 (see `support::engine::CHI2_P001`). The statistic is
//! printed so a regression shows by how much it failed.

mod support;

use cohortd::engine::bucket::{self, purpose, DrawKey};
use cohortd::engine::{EvalOptions, Reason};
use support::compile::compile;
use support::context::Unit;
use support::engine::{chi2_critical, chi_square, chi_square_independence, eval, unit_id, Kinds};

const TEMPLATE: &str = include_str!("../examples/configs/checkout.json");
const ELIGIBLE: &[(&str, &str)] = &[("region", "US"), ("accountType", "free")];

/// Counts of units per variant index among enrolled units of the template, plus
/// the number enrolled, over `n` eligible units.
fn template_split(n: u64) -> (Vec<u64>, u64) {
    let snap = compile(TEMPLATE);
    let e = snap.experiment("exp-checkout-flow-v3").unwrap();
    let mut counts = vec![0u64; e.variants.len()];
    let mut enrolled = 0;
    for i in 0..n {
        let id = unit_id(i);
        let ctx = Unit {
            key: "userId",
            id: &id,
            extra: ELIGIBLE,
        };
        let a = e.evaluate(&ctx, EvalOptions::default(), &mut ());
        if a.enrolled {
            assert_eq!(a.reason, Reason::Split);
            enrolled += 1;
            let idx = e
                .variants
                .iter()
                .position(|v| v.key == a.variant.key)
                .unwrap();
            counts[idx] += 1;
        } else {
            assert_eq!(a.reason, Reason::NotInTraffic);
            assert_eq!(&*a.variant.key, "control");
        }
    }
    (counts, enrolled)
}

/// Guarantee 2: at trafficAllocation 0.25 with three equal variants, each variant
/// gets a third of the enrolled units, and a quarter of the units are enrolled.
#[test]
fn quarter_traffic_splits_enrolled_units_into_thirds() {
    let n = 300_000;
    let (counts, enrolled) = template_split(n);
    let stat = chi_square(&counts, &[1.0, 1.0, 1.0]);
    println!(
        "counts {counts:?}, chi2 = {stat:.3} (df 2, critical {})",
        chi2_critical(2)
    );
    assert!(
        stat < chi2_critical(2),
        "variants not split in thirds: {counts:?}, chi2 {stat}"
    );
    let enrol = chi_square(&[enrolled, n - enrolled], &[0.25, 0.75]);
    println!("enrolled {enrolled} of {n}, chi2 = {enrol:.3}");
    assert!(
        enrol < chi2_critical(1),
        "enrolment is not 25%: {enrolled} of {n}"
    );
}

/// The naive scheme the issue warns about, run on the same units and draws: gate
/// on `h < traffic`, then pick `floor(h * n)` from the same `h`. It fails the very
/// check the engine passes above: every enrolled unit lands in variant 0.
#[test]
fn naive_scheme_fails_the_same_check() {
    let n = 300_000u64;
    let draw = DrawKey::derive(purpose::TRAFFIC, "prod-experiment-2024-q3", "");
    let mut counts = [0u64; 3];
    for i in 0..n {
        let h = bucket::slot(draw.draw(unit_id(i).as_bytes())) as f64 / bucket::SLOTS as f64;
        if h < 0.25 {
            counts[(h * 3.0).floor() as usize] += 1;
        }
    }
    let stat = chi_square(&counts, &[1.0, 1.0, 1.0]);
    println!("naive counts {counts:?}, chi2 = {stat:.1}");
    assert_eq!(
        counts[1] + counts[2],
        0,
        "naive scheme puts everyone in variant 0"
    );
    assert!(counts[0] > 70_000);
    assert!(
        stat > chi2_critical(2),
        "the naive scheme must fail the chi-square check"
    );
    // And ours, on the same units, passes it (see the test above for the numbers).
    let (ours, _) = template_split(n);
    assert!(chi_square(&ours, &[1.0, 1.0, 1.0]) < chi2_critical(2));
}

/// The traffic draw and the variant draw are independent: with full traffic, the
/// quartile of a unit's traffic slot tells nothing about its variant (4x3 table).
#[test]
fn traffic_slot_and_variant_are_independent() {
    let snap = compile(
        r#"{"key":"indep","status":"running","variants":["a","b","c"],
            "assignment":{"hashKey":"u"}}"#,
    );
    let e = snap.experiment("indep").unwrap();
    let mut table = vec![vec![0u64; 3]; 4];
    for i in 0..200_000 {
        let id = unit_id(i);
        let mut t = Kinds::default();
        let a = e.evaluate(
            &Unit {
                key: "u",
                id: &id,
                extra: &[],
            },
            EvalOptions::default(),
            &mut t,
        );
        let quartile = (t.traffic_slot.unwrap() >> 30) as usize;
        let v = e
            .variants
            .iter()
            .position(|v| v.key == a.variant.key)
            .unwrap();
        table[quartile][v] += 1;
    }
    let stat = chi_square_independence(&table);
    println!("table {table:?}, chi2 = {stat:.3} (df 6)");
    assert!(
        stat < chi2_critical(6),
        "traffic slot predicts the variant: {table:?}"
    );
}

/// Guarantee 5: unequal weights 1:2:7 are honoured.
#[test]
fn unequal_weights_are_honoured() {
    let snap = compile(
        r#"{"key":"w127","status":"running","assignment":{"hashKey":"u"},
            "variants":[{"key":"a","weight":1},{"key":"b","weight":2},{"key":"c","weight":7}]}"#,
    );
    let e = snap.experiment("w127").unwrap();
    let mut counts = [0u64; 3];
    for i in 0..300_000 {
        let (v, enrolled, _) = eval(e, "u", &unit_id(i));
        assert!(enrolled);
        counts[(v.as_bytes()[0] - b'a') as usize] += 1;
    }
    let stat = chi_square(&counts, &[1.0, 2.0, 7.0]);
    println!("counts {counts:?}, chi2 = {stat:.3}");
    assert!(stat < chi2_critical(2), "1:2:7 not honoured: {counts:?}");
}

/// Fractional and very unequal weights (0.5 : 0.01 : 3) are honoured too.
#[test]
fn fractional_weights_are_honoured() {
    let snap = compile(
        r#"{"key":"wfrac","status":"running","assignment":{"hashKey":"u"},
            "variants":[{"key":"a","weight":0.5},{"key":"b","weight":0.01},{"key":"c","weight":3}]}"#,
    );
    let e = snap.experiment("wfrac").unwrap();
    let mut counts = [0u64; 3];
    for i in 0..200_000 {
        let (v, _, _) = eval(e, "u", &unit_id(i));
        counts[(v.as_bytes()[0] - b'a') as usize] += 1;
    }
    let stat = chi_square(&counts, &[0.5, 0.01, 3.0]);
    println!("counts {counts:?}, chi2 = {stat:.3}");
    assert!(
        stat < chi2_critical(2),
        "0.5:0.01:3 not honoured: {counts:?}"
    );
}

/// Guarantee 5: experiments with near-identical keys (and so near-identical default
/// salts) assign independently: the 3x3 table of (exp-1 variant, exp-2 variant)
/// passes a chi-square test of independence, and so does enrolment at 50% traffic.
#[test]
fn near_identical_experiments_are_independent() {
    let snap = compile(
        r#"[{"key":"exp-1","status":"running","variants":["a","b","c"]},
            {"key":"exp-2","status":"running","variants":["a","b","c"]},
            {"key":"exp-3","status":"running","trafficAllocation":0.5,"variants":["a"]},
            {"key":"exp-4","status":"running","trafficAllocation":0.5,"variants":["a"]}]"#,
    );
    let (e1, e2) = (
        snap.experiment("exp-1").unwrap(),
        snap.experiment("exp-2").unwrap(),
    );
    let (e3, e4) = (
        snap.experiment("exp-3").unwrap(),
        snap.experiment("exp-4").unwrap(),
    );
    let mut variants = vec![vec![0u64; 3]; 3];
    let mut enrolment = vec![vec![0u64; 2]; 2];
    let idx = |v: &str| (v.as_bytes()[0] - b'a') as usize;
    for i in 0..200_000 {
        let id = unit_id(i);
        let (v1, _, _) = eval(e1, "targetingKey", &id);
        let (v2, _, _) = eval(e2, "targetingKey", &id);
        variants[idx(v1)][idx(v2)] += 1;
        let (_, in3, _) = eval(e3, "targetingKey", &id);
        let (_, in4, _) = eval(e4, "targetingKey", &id);
        enrolment[in3 as usize][in4 as usize] += 1;
    }
    let stat = chi_square_independence(&variants);
    println!("variants {variants:?}, chi2 = {stat:.3} (df 4)");
    assert!(
        stat < chi2_critical(4),
        "exp-1 and exp-2 are correlated: {variants:?}"
    );
    let stat = chi_square_independence(&enrolment);
    println!("enrolment {enrolment:?}, chi2 = {stat:.3} (df 1)");
    assert!(
        stat < chi2_critical(1),
        "exp-3 and exp-4 enrol together: {enrolment:?}"
    );
    // Each margin is uniform too.
    let row: Vec<u64> = variants.iter().map(|r| r.iter().sum()).collect();
    assert!(chi_square(&row, &[1.0; 3]) < chi2_critical(2), "{row:?}");
}

/// Sequential and numeric-looking unit ids are as well spread as random ones.
#[test]
fn numeric_unit_ids_are_uniform() {
    let snap = compile(r#"{"key":"num","status":"running","variants":["a","b","c","d"]}"#);
    let e = snap.experiment("num").unwrap();
    let mut counts = [0u64; 4];
    for i in 0..200_000u64 {
        let (v, _, _) = eval(e, "targetingKey", &i.to_string());
        counts[(v.as_bytes()[0] - b'a') as usize] += 1;
    }
    let stat = chi_square(&counts, &[1.0; 4]);
    println!("counts {counts:?}, chi2 = {stat:.3}");
    assert!(stat < chi2_critical(3), "{counts:?}");
}

const LAYERED: &str = r#"{
  "holdouts": [{"key": "h", "fraction": 0.1}],
  "layers": [{"key": "L", "salt": "layer-salt"}],
  "experiments": [
    {"key": "A", "status": "running", "variants": ["x", "y"], "layer": {"key": "L", "range": [0.0, 0.2]}, "holdout": "h"},
    {"key": "B", "status": "running", "variants": ["x", "y"], "layer": {"key": "L", "range": [0.2, 0.5]}, "holdout": "h"},
    {"key": "C", "status": "running", "variants": ["x", "y"], "layer": {"key": "L", "range": [0.5, 0.6]}},
    {"key": "D", "status": "running", "variants": ["x", "y"], "holdout": "h"}
  ]
}"#;

/// Layers: no unit is enrolled in two experiments of one layer, and each
/// experiment gets the share of the layer its range covers.
#[test]
fn layer_members_never_share_a_unit() {
    let snap = compile(LAYERED);
    let exps: Vec<_> = ["A", "B", "C"]
        .iter()
        .map(|k| snap.experiment(k).unwrap())
        .collect();
    // Rows: in A, in B, in C, in none (free space [0.6, 1) or held out).
    let mut counts = [0u64; 4];
    let n = 200_000u64;
    for i in 0..n {
        let id = unit_id(i);
        let mut inside = None;
        for (j, e) in exps.iter().enumerate() {
            let (_, enrolled, reason) = eval(e, "targetingKey", &id);
            if enrolled {
                assert!(
                    inside.is_none(),
                    "unit {id} is in two experiments of layer L"
                );
                inside = Some(j);
            } else {
                assert!(
                    matches!(reason, Reason::NotInLayer | Reason::Holdout),
                    "{reason:?}"
                );
            }
        }
        counts[inside.unwrap_or(3)] += 1;
    }
    // A and B respect the 10% holdout; C does not.
    let expect = [0.2 * 0.9, 0.3 * 0.9, 0.1, 1.0 - 0.2 * 0.9 - 0.3 * 0.9 - 0.1];
    let stat = chi_square(&counts, &expect);
    println!("layer counts {counts:?}, chi2 = {stat:.3} (df 3)");
    assert!(stat < chi2_critical(3), "layer shares are off: {counts:?}");
}

/// A holdout keeps its fraction out of every experiment that opts in: the same
/// units in each, about 10% of them, and experiments that do not opt in ignore it.
#[test]
fn holdout_keeps_its_fraction_out_everywhere() {
    let snap = compile(LAYERED);
    let (a, d, c) = (
        snap.experiment("A").unwrap(),
        snap.experiment("D").unwrap(),
        snap.experiment("C").unwrap(),
    );
    let n = 200_000u64;
    let mut held = 0u64;
    for i in 0..n {
        let id = unit_id(i);
        let (_, _, ra) = eval(a, "targetingKey", &id);
        let (vd, ed, rd) = eval(d, "targetingKey", &id);
        let (_, _, rc) = eval(c, "targetingKey", &id);
        assert_ne!(rc, Reason::Holdout, "C does not opt in to the holdout");
        assert_eq!(ra == Reason::Holdout, rd == Reason::Holdout, "unit {id}");
        if rd == Reason::Holdout {
            held += 1;
            assert!(!ed);
            assert_eq!(vd, "x", "held-out units get the default variant");
        } else {
            assert!(ed);
        }
    }
    let stat = chi_square(&[held, n - held], &[0.1, 0.9]);
    println!("held out {held} of {n}, chi2 = {stat:.3}");
    assert!(stat < chi2_critical(1), "holdout is not 10%: {held} of {n}");
}
