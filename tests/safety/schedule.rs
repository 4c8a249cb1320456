//! Ramp schedules: validation, evaluation against the clock, and the guarantee
//! that a ramp never moves an enrolled unit.

use cohortd::config::{parse_sources, RawFile};
use cohortd::engine::bucket;
use cohortd::safety::diff::{diff, Cause};
use cohortd::safety::guard::{judge, Verdict};
use cohortd::snapshot::schedule::parse_time;
use cohortd::{EvalOptions, Snapshot};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

use crate::support::compile::compile;

fn ramp(base: f64, steps: &[(&str, f64)]) -> String {
    let steps: Vec<Value> = steps
        .iter()
        .map(|(at, f)| json!({"at": at, "trafficAllocation": f}))
        .collect();
    json!({"key": "r", "status": "running", "trafficAllocation": base,
           "variants": ["a", "b", "c"], "trafficSchedule": steps})
    .to_string()
}

fn ctx(unit: &str) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("targetingKey".into(), Value::String(unit.into()));
    m
}

fn at(opts_now: Option<i64>) -> EvalOptions<'static> {
    EvalOptions {
        now_unix_secs: opts_now,
        ..EvalOptions::default()
    }
}

#[test]
fn invalid_schedules_name_file_experiment_and_field() {
    let text = json!({"key": "r", "status": "running", "trafficAllocation": 0.5,
        "variants": ["a"], "trafficSchedule": [
            {"at": "2026-12-01T00:00:00Z", "trafficAllocation": 0.4},
            {"at": "2026-11-01T00:00:00Z", "trafficAllocation": 0.6},
            {"at": "next week", "trafficAllocation": 0.7}]})
    .to_string();
    let files = vec![RawFile {
        path: "ramp.json".into(),
        bytes: text.into_bytes(),
    }];
    let errs = Snapshot::compile(&parse_sources(&files).unwrap()).unwrap_err();
    let got: Vec<(String, String)> = errs
        .0
        .iter()
        .map(|e| {
            assert_eq!(e.file.to_str(), Some("ramp.json"));
            (e.experiment.clone().unwrap(), e.field.clone().unwrap())
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                "r".to_string(),
                "trafficSchedule[0].trafficAllocation".to_string()
            ),
            ("r".to_string(), "trafficSchedule[1].at".to_string()),
            ("r".to_string(), "trafficSchedule[2].at".to_string()),
        ]
    );
    // Unknown fields in a step are errors too (deny_unknown_fields).
    let typo = r#"{"key":"r","status":"running","variants":["a"],"trafficSchedule":[{"at":"2026-01-01T00:00:00Z","traffic":0.5}]}"#;
    let files = vec![RawFile {
        path: "t.json".into(),
        bytes: typo.as_bytes().to_vec(),
    }];
    assert!(parse_sources(&files).is_err());
}

#[test]
fn the_step_in_force_decides_enrolment() {
    let s = compile(&ramp(
        0.0,
        &[("2026-01-01T00:00:00Z", 0.5), ("2026-01-02T00:00:00Z", 1.0)],
    ));
    let e = s.experiment("r").unwrap();
    let t1 = parse_time("2026-01-01T00:00:00Z").unwrap();
    assert_eq!(e.traffic_at(Some(t1 - 1)), 0);
    assert_eq!(e.traffic_at(Some(t1)), bucket::threshold(0.5));
    assert_eq!(e.traffic_at(Some(t1 + 86_400)), bucket::SLOTS);
    let enrolled = |now| {
        (0..2000)
            .filter(|i| {
                s.assign("r", &ctx(&format!("u{i}")), at(now))
                    .unwrap()
                    .enrolled
            })
            .count()
    };
    assert_eq!(enrolled(Some(t1 - 1)), 0);
    let half = enrolled(Some(t1));
    assert!((850..1150).contains(&half), "{half}");
    assert_eq!(enrolled(Some(t1 + 86_400)), 2000);
}

#[test]
fn without_a_time_the_clock_decides() {
    let past = compile(&ramp(0.0, &[("2000-01-01T00:00:00Z", 1.0)]));
    let future = compile(&ramp(0.0, &[("2999-01-01T00:00:00Z", 1.0)]));
    let u = ctx("someone");
    assert!(past.assign("r", &u, at(None)).unwrap().enrolled);
    assert!(!future.assign("r", &u, at(None)).unwrap().enrolled);
}

#[test]
fn diff_and_guard_understand_schedules() {
    let old = compile(&ramp(0.1, &[]));
    let new = compile(&ramp(0.1, &[("2026-06-01T00:00:00Z", 0.5)]));
    let before = parse_time("2026-05-01T00:00:00Z").unwrap();
    let after = parse_time("2026-07-01T00:00:00Z").unwrap();
    let d = diff(&old, &new, before);
    assert_eq!(
        d.experiments[0].causes,
        vec![Cause::ScheduleChanged { lowers_from: None }]
    );
    assert_eq!(judge(&d.experiments[0]).verdict, Verdict::Safe);
    let d = diff(&old, &new, after);
    assert!(matches!(
        d.experiments[0].causes[0],
        Cause::TrafficRaised { .. }
    ));
    assert_eq!(judge(&d.experiments[0]).verdict, Verdict::Safe);
    // Replacing a ramp by a lower one drops enrolled units: allowed, with a warning.
    let lower = compile(&ramp(0.1, &[("2026-06-01T00:00:00Z", 0.2)]));
    let d = diff(&new, &lower, after);
    assert_eq!(judge(&d.experiments[0]).verdict, Verdict::Warn);
    assert!((d.experiments[0].left_of_enrolled() - 0.6).abs() < 1e-9);
    // Before the step nothing differs yet, but the diff sees the future drop.
    let d = diff(&new, &lower, before);
    assert_eq!(
        d.experiments[0].causes,
        vec![Cause::ScheduleChanged {
            lowers_from: Some("2026-06-01T00:00:00Z".into())
        }]
    );
    assert_eq!(d.experiments[0].impact.left, 0.0);
    assert_eq!(judge(&d.experiments[0]).verdict, Verdict::Warn);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Along any increasing ramp, a unit enrolled at one time is enrolled with the
    /// same variant at every later time.
    #[test]
    fn a_ramp_never_moves_an_enrolled_unit(
        base in 0.0f64..0.5,
        rises in proptest::collection::vec(0.0f64..0.3, 1..5),
        times in proptest::collection::vec(0i64..400_000, 2..6),
    ) {
        let t0 = 1_800_000_000i64;
        let mut level = base;
        let steps: Vec<(String, f64)> = rises.iter().enumerate().map(|(i, r)| {
            level = (level + r).min(1.0);
            let at = jiff::Timestamp::from_second(t0 + 86_400 * i as i64).unwrap();
            (at.to_string(), level)
        }).collect();
        let steps: Vec<(&str, f64)> = steps.iter().map(|(a, f)| (a.as_str(), *f)).collect();
        let s = compile(&ramp(base, &steps));
        let mut times = times;
        times.sort_unstable();
        for i in 0..300 {
            let u = ctx(&format!("unit-{i}"));
            let mut first: Option<String> = None;
            for &t in &times {
                let a = s.assign("r", &u, at(Some(t0 - 1000 + t))).unwrap();
                match (&first, a.enrolled) {
                    (Some(v), enrolled) => {
                        prop_assert!(enrolled, "unit-{i} left at {t}");
                        prop_assert_eq!(v.as_str(), &*a.variant.key);
                    }
                    (None, true) => first = Some(a.variant.key.to_string()),
                    (None, false) => {}
                }
            }
        }
    }
}
