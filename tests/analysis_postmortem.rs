//! The post-mortem this project exists for, reproduced: a population with a
//! weekday/weekend effect, the salt rotated mid-way (epoch bump, and the new
//! config ramped treatment to 70%), outcomes that depend only on the day.
//! A naive join (each unit in the last variant it saw, every outcome counted)
//! shows a significant "win"; `cohortd analyze` flags the crossed-over units,
//! analyses first-assigned cohorts and declares no winner.
//!
//! Also: a clean experiment with a real effect is detected at the planned power,
//! and with no effect at about alpha (seeded simulations through the library).

mod analysis_support;

use std::collections::HashMap;

use analysis_support::{
    analyze, at, config_dir, exposure, outcome, report, salt_fingerprint, write_lines, Rng,
};
use cohortd::analysis::cohort::Cohorts;
use cohortd::analysis::evaluate::{evaluate, Look, Settings};
use cohortd::analysis::plan::Plan;
use cohortd::analysis::record::{Exposure, Outcome};
use cohortd::analysis::stats::{two_proportion, Group};

const CONFIG: &str = r#"
experiments:
  - key: checkout
    status: running
    variants: [control, treatment]
    metrics:
      primary: {name: purchase, type: conversion}
    evaluation: {alpha: 0.05, correction: holm}
    rollback: {enabled: true, conditions: [srm_detected, guardrail_breach]}
"#;

#[test]
fn the_salt_rotation_post_mortem_is_caught_and_no_winner_is_declared() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_dir(dir.path(), CONFIG);
    let fp = salt_fingerprint(&config, "checkout");
    let mut rng = Rng::new(20261102);
    let mut lines = Vec::new();
    // The naive pipeline's view: last variant seen, and whether the unit converted.
    let mut last: HashMap<String, (u64, String)> = HashMap::new();
    let mut converted: HashMap<String, bool> = HashMap::new();
    let mut event = 0u64;
    let n = 20_000;
    for u in 0..n {
        let unit = format!("u{u}");
        let weekend_user = rng.chance(0.4);
        // Week 1 (Mon-Fri): first visit under the original config, 50/50, epoch 0.
        let mut visits = vec![(rng.next_u64() % 5, 0u32)];
        // Day 7 on: the salt is rotated (epoch 1) and treatment ramped to 70%.
        if rng.chance(0.3) {
            visits.push((8, 1));
        }
        if weekend_user {
            visits.push((12, 1));
            visits.push((13, 1));
        }
        let mut any = false;
        for (day, epoch) in visits {
            let t = at(day, 3600 + rng.next_u64() % 36_000);
            let variant = if epoch == 0 {
                if rng.chance(0.5) {
                    "treatment"
                } else {
                    "control"
                }
            } else if rng.chance(0.7) {
                "treatment"
            } else {
                "control"
            };
            let salt = if epoch == 0 {
                fp.as_str()
            } else {
                "0123456789abcdef"
            };
            lines.push(exposure(t, &unit, "checkout", variant, epoch, salt));
            if last.get(&unit).is_none_or(|(lt, _)| t > *lt) {
                last.insert(unit.clone(), (t, variant.to_owned()));
            }
            // Purchases depend only on the day: 15% on weekends, 5% on weekdays.
            let weekend = day % 7 >= 5;
            if rng.chance(if weekend { 0.15 } else { 0.05 }) {
                event += 1;
                lines.push(outcome(
                    t + 60_000_000_000,
                    &unit,
                    "purchase",
                    1.0,
                    &format!("e{event}"),
                ));
                any = true;
            }
        }
        converted.insert(unit, any);
    }
    let input = dir.path().join("events.jsonl");
    write_lines(&input, &lines);

    // The naive join shows a significant win for treatment.
    let (mut c, mut t) = (
        Group {
            n: 0.0,
            sum: 0.0,
            sum_sq: 0.0,
        },
        Group {
            n: 0.0,
            sum: 0.0,
            sum_sq: 0.0,
        },
    );
    for (unit, (_, variant)) in &last {
        let g = if variant == "treatment" {
            &mut t
        } else {
            &mut c
        };
        let x = if converted[unit] { 1.0 } else { 0.0 };
        g.n += 1.0;
        g.sum += x;
        g.sum_sq += x;
    }
    let naive = two_proportion(&c, &t, 0.05).unwrap();
    assert!(
        naive.p_value < 0.001 && naive.abs_lift > 0.0,
        "the naive join should show the post-mortem's false win: {naive:?}"
    );

    // cohortd analyze does not.
    let out = analyze(
        dir.path(),
        &[
            "--config-dir",
            config.to_str().unwrap(),
            "--json",
            input.to_str().unwrap(),
        ],
    );
    let r = report(&out);
    assert_eq!(out.status.code(), Some(0), "{r:#}");
    let e = &r["experiments"][0];
    let integrity = &e["integrity"];
    assert_eq!(integrity["flagged"], true, "{integrity:#}");
    assert!(
        integrity["crossed_over"].as_u64().unwrap() > 1000,
        "{integrity:#}"
    );
    assert!(
        integrity["multi_cohort"].as_u64().unwrap() > 1000,
        "{integrity:#}"
    );
    assert!(
        integrity["foreign_exposures"].as_u64().unwrap() > 1000,
        "{integrity:#}"
    );
    // Every unit is analysed in its first-assigned (epoch 0) variant.
    assert_eq!(integrity["units"], n);
    assert_eq!(e["srm"][0]["mismatch"], false, "{:#}", e["srm"]);
    let primary = &e["results"][0];
    assert_eq!(primary["metric"], "purchase");
    let p = primary["comparison"]["p_value"].as_f64().unwrap();
    assert!(
        p > 0.05,
        "first-assigned cohorts show no effect, got p = {p}"
    );
    assert_eq!(primary["significant"], false);
    assert!(e["winner"].is_null());
    let decision = e["decision"].as_str().unwrap();
    assert!(
        decision.starts_with("no winner: cohort integrity flagged"),
        "{decision}"
    );
}

/// Runs one simulated two-arm conversion experiment through the library
/// (cohort table, join, evaluation) and says whether treatment won.
fn simulated_win(
    rng: &mut Rng,
    plan: &Plan,
    n_per_arm: usize,
    p_control: f64,
    p_treatment: f64,
) -> bool {
    let mut cohorts = Cohorts::new(vec![plan.clone()], "v1");
    let mut outcomes = Vec::new();
    for i in 0..2 * n_per_arm {
        let treatment = i % 2 == 1;
        let unit = format!("u{i}");
        cohorts
            .expose(&Exposure {
                time_ns: 10,
                unit: unit.clone().into(),
                experiment: "clean".into(),
                variant: if treatment { "treatment" } else { "control" }.into(),
                version: "v1".into(),
                epoch: 0,
                salt_fingerprint: "".into(),
                stratum: None,
            })
            .unwrap();
        if rng.chance(if treatment { p_treatment } else { p_control }) {
            outcomes.push(Outcome {
                time_ns: 20,
                unit: unit.into(),
                metric: "purchase".into(),
                value: 1.0,
                event_id: "".into(),
                experiments: vec![],
            });
        }
    }
    cohorts.exposures_done();
    for o in &outcomes {
        cohorts.outcome(o).unwrap();
    }
    let (plans, summaries) = cohorts.finish();
    let look = Look {
        number: 1,
        planned: 1,
        nominal_alpha: plans[0].alpha,
        forced: false,
    };
    let r = evaluate(&plans[0], &summaries[0], look, &Settings::default());
    r.winner.as_deref() == Some("treatment")
}

#[test]
fn a_real_effect_is_detected_at_the_planned_power_and_no_effect_at_about_alpha() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_dir(
        dir.path(),
        "experiments:\n  - key: clean\n    status: running\n    variants: [control, treatment]\n    metrics: {primary: {name: purchase, type: conversion}}\n    evaluation: {alpha: 0.05}\n",
    );
    let snap = cohortd::Snapshot::load(&config).unwrap();
    let plan = Plan::of(snap.experiment("clean").unwrap());
    // 10% -> 12%: n per arm for 80% power at two-sided 0.05 (normal approximation):
    // (1.95996 + 0.84162)^2 (0.1 * 0.9 + 0.12 * 0.88) / 0.02^2 = 3838.
    let runs = 120;
    let mut rng = Rng::new(7);
    let wins = (0..runs)
        .filter(|_| simulated_win(&mut rng, &plan, 3838, 0.10, 0.12))
        .count();
    let power = wins as f64 / runs as f64;
    // Expected 0.80 (one-sided wins; the other tail is negligible); 3.5 standard errors.
    assert!(
        (0.67..=0.93).contains(&power),
        "power {power} over {runs} runs"
    );
    let false_wins = (0..runs)
        .filter(|_| simulated_win(&mut rng, &plan, 3838, 0.10, 0.10))
        .count();
    // Expected 0.025 (a win is significant in the good direction): 3 of 120.
    assert!(false_wins <= 10, "{false_wins} false wins of {runs}");
}
