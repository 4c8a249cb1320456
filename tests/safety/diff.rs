//! `safety::diff`: one test per cause, and the exact fractions cross-checked
//! against a 200k-unit synthetic population run through the real engine.

use cohortd::safety::diff::{diff, Cause, ExperimentDiff};
use cohortd::safety::guard::{judge, Verdict};
use cohortd::safety::simulate::estimate;
use cohortd::Snapshot;

use crate::support::compile::compile;

const AT: i64 = 1_800_000_000;

fn one(old: &Snapshot, new: &Snapshot) -> ExperimentDiff {
    let d = diff(old, new, AT);
    assert_eq!(d.experiments.len(), 1, "{d:#?}");
    d.experiments.into_iter().next().unwrap()
}

fn pair(old: &str, new: &str) -> (ExperimentDiff, Verdict) {
    let d = one(&compile(old), &compile(new));
    let v = judge(&d).verdict;
    (d, v)
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

const BASE: &str =
    r#"{"key":"e","status":"running","trafficAllocation":0.5,"variants":["a","b","c"]}"#;

#[test]
fn identical_configs_differ_in_nothing() {
    let d = diff(&compile(BASE), &compile(BASE), AT);
    assert!(d.experiments.is_empty());
    // Reformatting is not a change either.
    let spaced = BASE.replace(',', ", ");
    assert!(diff(&compile(BASE), &compile(&spaced), AT)
        .experiments
        .is_empty());
}

#[test]
fn salt_change_redraws_everyone_and_is_refused_without_an_epoch_bump() {
    let new = BASE.replace(r#""variants""#, r#""assignment":{"salt":"s2"},"variants""#);
    let (d, v) = pair(BASE, &new);
    assert!(
        matches!(d.causes[0], Cause::SaltChanged { .. }),
        "{:?}",
        d.causes
    );
    assert_eq!(v, Verdict::Refused);
    // Traffic and variant draws are redone: 0.25 stay enrolled, 1/3 of them keep.
    assert!(close(d.impact.left, 0.25) && close(d.impact.joined, 0.25));
    assert!(close(d.impact.moved, 0.25 * (2.0 / 3.0)));
    assert!(close(d.impact.required_moved, 0.0));
    let acked = new.replace(r#""salt":"s2""#, r#""salt":"s2","epoch":1"#);
    let (d, v) = pair(BASE, &acked);
    assert_eq!(v, Verdict::Acknowledged);
    assert!(d.causes.contains(&Cause::EpochChanged { from: 0, to: 1 }));
}

#[test]
fn hash_key_change_is_refused() {
    let new = r#"{"key":"e","status":"running","trafficAllocation":0.5,"variants":["a","b","c"],"assignment":{"hashKey":"accountId"}}"#;
    let (d, v) = pair(BASE, new);
    assert_eq!(
        d.causes,
        vec![Cause::HashKeyChanged {
            from: "targetingKey".into(),
            to: "accountId".into()
        }]
    );
    assert_eq!(v, Verdict::Refused);
    assert!(close(d.impact.moved, 0.25 * (2.0 / 3.0)));
}

#[test]
fn reordering_variants_moves_nobody() {
    let pinned = BASE.replace(r#""variants""#, r#""defaultVariant":"a","variants""#);
    let new = pinned.replace(r#"["a","b","c"]"#, r#"["c","a","b"]"#);
    let (d, v) = pair(&pinned, &new);
    assert_eq!(d.causes, vec![Cause::VariantsReordered]);
    assert_eq!(v, Verdict::Safe);
    assert_eq!(
        (d.impact.moved, d.impact.left, d.impact.joined),
        (0.0, 0.0, 0.0)
    );
    // Without defaultVariant the first variant is the default: reordering changes
    // what units outside the experiment get, which is allowed with a warning.
    let new = BASE.replace(r#"["a","b","c"]"#, r#"["c","a","b"]"#);
    let (d, v) = pair(BASE, &new);
    assert_eq!(
        d.causes,
        vec![
            Cause::VariantsReordered,
            Cause::DefaultVariantChanged {
                from: "a".into(),
                to: "c".into()
            }
        ]
    );
    assert_eq!(v, Verdict::Warn);
    assert_eq!(
        (d.impact.moved, d.impact.left, d.impact.joined),
        (0.0, 0.0, 0.0)
    );
}

#[test]
fn adding_and_removing_variants_move_only_their_share() {
    let four = BASE.replace(r#""c"]"#, r#""c","d"]"#);
    let (d, v) = pair(BASE, &four);
    assert_eq!(d.causes, vec![Cause::VariantAdded { key: "d".into() }]);
    assert_eq!(v, Verdict::Warn, "allowed, with the moved share reported");
    assert!(close(d.moved_of_enrolled(), 0.25));
    assert!(close(d.impact.moved, d.impact.required_moved));
    let (d, v) = pair(&four, BASE);
    assert_eq!(d.causes, vec![Cause::VariantRemoved { key: "d".into() }]);
    assert_eq!(v, Verdict::Warn);
    assert!(close(d.moved_of_enrolled(), 0.25));
}

#[test]
fn reweighting_is_allowed_and_moves_the_rendezvous_amount() {
    let old = r#"{"key":"e","status":"running","variants":[{"key":"a","weight":1},{"key":"b","weight":2},{"key":"c","weight":1}]}"#;
    let new = r#"{"key":"e","status":"running","variants":[{"key":"a","weight":2},{"key":"b","weight":1},{"key":"c","weight":1}]}"#;
    let (d, v) = pair(old, new);
    assert_eq!(d.causes.len(), 2);
    assert!(matches!(d.causes[0], Cause::VariantReweighted { .. }));
    assert_eq!(v, Verdict::Warn);
    assert!(close(d.impact.moved, 0.3));
    assert!(close(d.impact.min_moved, 0.25));
}

#[test]
fn raising_traffic_only_adds_and_lowering_only_drops() {
    let up = BASE.replace("0.5", "0.8");
    let (d, v) = pair(BASE, &up);
    assert_eq!(d.causes.len(), 1);
    assert!(matches!(d.causes[0], Cause::TrafficRaised { .. }));
    assert_eq!(v, Verdict::Safe);
    assert!(close(d.impact.joined, 0.3) && d.impact.moved == 0.0 && d.impact.left == 0.0);
    let down = BASE.replace("0.5", "0.2");
    let (d, v) = pair(BASE, &down);
    assert!(matches!(d.causes[0], Cause::TrafficLowered { .. }));
    assert_eq!(v, Verdict::Warn);
    assert!(close(d.left_of_enrolled(), 0.6) && d.impact.moved == 0.0);
    assert!(judge(&d).reasons[0].contains("60.00% of enrolled units leave"));
}

#[test]
fn targeting_changes_are_reported_not_estimated() {
    let new = BASE.replace(
        r#""variants""#,
        r#""targeting":{"include":["region:US"]},"variants""#,
    );
    let (d, v) = pair(BASE, &new);
    assert_eq!(d.causes, vec![Cause::TargetingChanged]);
    assert_eq!(
        v,
        Verdict::Warn,
        "allowed; who leaves depends on attributes"
    );
    assert_eq!(d.impact.moved, 0.0);
}

#[test]
fn status_changes_stop_or_start_enrolment() {
    let stopped = BASE.replace("running", "stopped");
    let (d, v) = pair(BASE, &stopped);
    assert!(matches!(d.causes[0], Cause::StatusChanged { .. }));
    assert_eq!(v, Verdict::Warn);
    assert!(close(d.left_of_enrolled(), 1.0));
    let (d, v) = pair(&stopped, BASE);
    assert_eq!(v, Verdict::Safe);
    assert!(close(d.impact.joined, 0.5));
}

#[test]
fn experiments_added_and_removed() {
    let two = format!(
        "[{BASE},{}]",
        r#"{"key":"f","status":"running","variants":["x"]}"#
    );
    let d = diff(&compile(BASE), &compile(&two), AT);
    assert_eq!(d.experiments[0].key, "f");
    assert_eq!(d.experiments[0].causes, vec![Cause::ExperimentAdded]);
    assert_eq!(judge(&d.experiments[0]).verdict, Verdict::Safe);
    let d = diff(&compile(&two), &compile(BASE), AT);
    assert_eq!(d.experiments[0].causes, vec![Cause::ExperimentRemoved]);
    assert_eq!(judge(&d.experiments[0]).verdict, Verdict::Warn);
    assert!(close(d.experiments[0].impact.left, 1.0));
}

#[test]
fn values_defaults_and_winners_move_nobody() {
    let old = r#"{"key":"e","status":"running","variants":[{"key":"a","value":1},"b"]}"#;
    let new = r#"{"key":"e","status":"running","variants":[{"key":"a","value":2},"b"],"defaultVariant":"b"}"#;
    let (d, v) = pair(old, new);
    assert_eq!(
        d.causes,
        vec![
            Cause::VariantValueChanged { key: "a".into() },
            Cause::DefaultVariantChanged {
                from: "a".into(),
                to: "b".into()
            }
        ]
    );
    assert_eq!(v, Verdict::Warn, "the default changed for units outside");
}

fn layered(range: &str, salt: &str, holdout: f64, holdout_salt: &str) -> String {
    format!(
        r#"{{"layers":[{{"key":"L","salt":"{salt}"}}],
            "holdouts":[{{"key":"H","fraction":{holdout},"salt":"{holdout_salt}"}}],
            "experiments":[{{"key":"e","status":"running","variants":["a","b"],
                             "layer":{{"key":"L","range":{range}}},"holdout":"H"}}]}}"#
    )
}

#[test]
fn layer_changes_shrink_grow_or_replace_the_cohort() {
    let base = layered("[0.0, 0.4]", "s", 0.1, "h");
    let (d, v) = pair(&base, &layered("[0.0, 0.6]", "s", 0.1, "h"));
    assert!(matches!(
        d.causes[0],
        Cause::LayerChanged { redraw: false, .. }
    ));
    assert_eq!(v, Verdict::Safe);
    assert!(close(d.impact.joined, 0.9 * 0.2));
    // Moving the range replaces part of the cohort: refused.
    let (d, v) = pair(&base, &layered("[0.2, 0.6]", "s", 0.1, "h"));
    assert_eq!(v, Verdict::Refused);
    assert!(close(d.impact.left, 0.9 * 0.2) && close(d.impact.joined, 0.9 * 0.2));
    // Widening the range while raising the holdout drops some units and adds
    // others through different draws: each part is allowed, so the whole is.
    let (d, v) = pair(&base, &layered("[0.0, 0.6]", "s", 0.2, "h"));
    assert_eq!(v, Verdict::Warn);
    assert!(d.impact.left > 0.0 && d.impact.joined > 0.0);
    // A new layer salt redraws membership: refused.
    let (d, v) = pair(&base, &layered("[0.0, 0.4]", "s2", 0.1, "h"));
    assert!(matches!(
        d.causes[0],
        Cause::LayerChanged { redraw: true, .. }
    ));
    assert_eq!(v, Verdict::Refused);
    assert!(close(d.impact.left, 0.9 * (0.4 - 0.16)));
}

#[test]
fn holdout_changes_drop_or_redraw() {
    let base = layered("[0.0, 1.0]", "s", 0.1, "h");
    let (d, v) = pair(&base, &layered("[0.0, 1.0]", "s", 0.2, "h"));
    assert!(matches!(
        d.causes[0],
        Cause::HoldoutChanged { redraw: false, .. }
    ));
    assert_eq!(v, Verdict::Warn);
    assert!(close(d.impact.left, 0.1) && d.impact.joined == 0.0);
    let (d, v) = pair(&base, &layered("[0.0, 1.0]", "s", 0.1, "h2"));
    assert!(matches!(
        d.causes[0],
        Cause::HoldoutChanged { redraw: true, .. }
    ));
    assert_eq!(v, Verdict::Refused);
    assert!(close(d.impact.left, 0.9 * 0.1));
}

#[test]
fn a_running_experiment_with_nobody_enrolled_may_change_its_salt() {
    let zero = BASE.replace("0.5", "0");
    let new = zero.replace(r#""variants""#, r#""assignment":{"salt":"x"},"variants""#);
    let (d, v) = pair(&zero, &new);
    assert!(matches!(d.causes[0], Cause::SaltChanged { .. }));
    assert_eq!(v, Verdict::Safe);
}

#[test]
fn a_non_running_experiment_may_change_anything() {
    let paused = BASE.replace("running", "paused");
    let new = paused.replace(r#""variants""#, r#""assignment":{"salt":"x"},"variants""#);
    let (_, v) = pair(&paused, &new);
    assert_eq!(v, Verdict::Safe);
}

/// Exact fractions must agree with 200,000 synthetic units run through
/// `Experiment::evaluate`: within 4.5 binomial standard errors (a 99.999% band, so
/// a deterministic population passing it is strong evidence), and exactly 0 where
/// the formula says 0 (a structural guarantee, not a statistical one).
#[test]
fn exact_fractions_match_the_simulation() {
    let cases: Vec<(&str, String, String)> = vec![
        ("salt", BASE.into(), BASE.replace(r#""variants""#, r#""assignment":{"salt":"new"},"variants""#)),
        ("hashKey", BASE.into(), BASE.replace(r#""variants""#, r#""assignment":{"hashKey":"userId"},"variants""#)),
        ("add variant", BASE.into(), BASE.replace(r#""c"]"#, r#""c","d"]"#)),
        ("remove variant", BASE.into(), BASE.replace(r#","c"]"#, "]")),
        (
            "crossed reweight",
            r#"{"key":"e","status":"running","variants":[{"key":"a","weight":1},{"key":"b","weight":2},{"key":"c","weight":1}]}"#.into(),
            r#"{"key":"e","status":"running","variants":[{"key":"a","weight":2},{"key":"b","weight":1},{"key":"c","weight":1}]}"#.into(),
        ),
        (
            "reweight and add",
            r#"{"key":"e","status":"running","variants":[{"key":"a","weight":3},{"key":"b","weight":1}]}"#.into(),
            r#"{"key":"e","status":"running","variants":[{"key":"a","weight":1},{"key":"b","weight":1},{"key":"c","weight":2}]}"#.into(),
        ),
        ("traffic down", BASE.into(), BASE.replace("0.5", "0.3")),
        ("traffic up", BASE.into(), BASE.replace("0.5", "0.9")),
        ("layer move", layered("[0.0, 0.4]", "s", 0.1, "h"), layered("[0.2, 0.6]", "s", 0.1, "h")),
        ("layer salt", layered("[0.0, 0.4]", "s", 0.1, "h"), layered("[0.0, 0.4]", "t", 0.1, "h")),
        ("holdout", layered("[0.0, 0.5]", "s", 0.1, "h"), layered("[0.0, 0.5]", "s", 0.3, "h2")),
    ];
    const N: u64 = 200_000;
    for (name, old, new) in cases {
        let (o, n) = (compile(&old), compile(&new));
        let d = one(&o, &n);
        let est = estimate(o.experiment("e"), n.experiment("e"), AT, N);
        let before = d.before.as_ref().unwrap().enrolled;
        let after = d.after.as_ref().unwrap().enrolled;
        for (what, exact, sample) in [
            ("moved", d.impact.moved, est.moved),
            ("left", d.impact.left, est.left),
            ("joined", d.impact.joined, est.joined),
            ("enrolled before", before, est.enrolled_before),
            ("enrolled after", after, est.enrolled_after),
        ] {
            if exact == 0.0 {
                assert_eq!(sample.count, 0, "{name}: {what} must be exactly 0");
                continue;
            }
            let se = (exact * (1.0 - exact) / N as f64).sqrt();
            assert!(
                (sample.value - exact).abs() <= 4.5 * se + 1e-9,
                "{name}: {what} exact {exact} vs simulated {} (se {se})",
                sample.value
            );
        }
    }
}
