//! The warehouse path: sql/analysis_stats.sql run in DuckDB over the same
//! events gives statistics from which `cohortd analyze --stats` writes the same
//! report as from the raw events (crossed-over units, foreign exposures, a
//! conversion and a continuous metric, outcomes before exposure, duplicates).

mod support;

use std::process::Command;

use serde_json::{json, Value};
use support::analysis::{
    analyze, at, config_dir, exposure, outcome, report, salt_fingerprint, to_csv,
};
use support::rng::Rng;
use support::runners::{python, script};

const CONFIG: &str = r#"
experiments:
  - key: checkout
    status: running
    variants: [control, treatment]
    metrics:
      primary: {name: purchase, type: conversion}
      secondary: [{name: revenue, type: continuous}]
    evaluation: {alpha: 0.05, correction: holm}
"#;

#[track_caller]
fn same(a: &Value, b: &Value, path: &str) {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            assert!(
                (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1e-300),
                "{path}: {x} vs {y}"
            );
        }
        (Value::Object(x), Value::Object(y)) => {
            assert_eq!(
                x.keys().collect::<Vec<_>>(),
                y.keys().collect::<Vec<_>>(),
                "{path}"
            );
            for (k, v) in x {
                same(v, &y[k], &format!("{path}.{k}"));
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            assert_eq!(x.len(), y.len(), "{path}");
            for (i, (v, w)) in x.iter().zip(y).enumerate() {
                same(v, w, &format!("{path}[{i}]"));
            }
        }
        _ => assert_eq!(a, b, "{path}"),
    }
}

#[test]
fn the_sql_statistics_give_the_same_report_as_the_raw_events() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let cfg = config_dir(dir.path(), CONFIG);
    let fp = salt_fingerprint(&cfg, "checkout");
    let mut rng = Rng::new(99);
    let mut lines = Vec::new();
    let mut event = 0;
    for u in 0..3000 {
        let unit = format!("u{u}");
        let day = rng.next_u64() % 5;
        let t = at(day, 1000 + rng.next_u64() % 50_000);
        let v = if rng.chance(0.5) {
            "treatment"
        } else {
            "control"
        };
        if rng.chance(0.1) {
            // An outcome before the first exposure: never counted.
            event += 1;
            lines.push(outcome(
                t - 500_000_000_000,
                &unit,
                "purchase",
                1.0,
                &format!("e{event}"),
            ));
        }
        lines.push(exposure(t, &unit, "checkout", v, 0, &fp));
        if rng.chance(0.1) {
            // Re-exposed after a salt rotation: crossed over for about half.
            let w = if rng.chance(0.5) {
                "treatment"
            } else {
                "control"
            };
            lines.push(exposure(
                at(6, 100),
                &unit,
                "checkout",
                w,
                1,
                "feedfacefeedface",
            ));
        }
        if u % 40 == 0 {
            // Only ever seen under the rotated salt.
            lines.push(exposure(
                at(6, 200),
                &format!("late{u}"),
                "checkout",
                v,
                1,
                "feedfacefeedface",
            ));
        }
        let rate = if v == "treatment" { 0.13 } else { 0.1 };
        for k in 0..3 {
            if rng.chance(rate) {
                event += 1;
                let id = format!("e{event}");
                let when = t + (k + 1) * 1_000_000_000;
                lines.push(outcome(when, &unit, "purchase", 1.0, &id));
                let amount = (20.0 + 5.0 * rng.normal()).max(0.0);
                lines.push(outcome(when, &unit, "revenue", amount, &format!("{id}r")));
                if rng.chance(0.05) {
                    lines.push(outcome(when, &unit, "revenue", amount, &format!("{id}r")));
                }
            }
        }
    }
    let events = dir.path().join("events.csv");
    std::fs::write(&events, to_csv(&lines)).unwrap();
    let plan = json!({
        "plan": [["checkout", "control", 0, fp], ["checkout", "treatment", 0, fp]],
        "metrics": [["checkout", "purchase", "conversion"], ["checkout", "revenue", "continuous"]],
    });
    let plan_path = dir.path().join("plan.json");
    std::fs::write(&plan_path, plan.to_string()).unwrap();
    let stats = dir.path().join("stats.csv");
    let out = Command::new(python)
        .arg(script("run_analysis_sql.py"))
        .args([&events, &plan_path, &stats])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "DuckDB run failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let raw = report(&analyze(
        dir.path(),
        &[
            "-c",
            cfg.to_str().unwrap(),
            "--json",
            events.to_str().unwrap(),
        ],
    ));
    let sql = report(&analyze(
        dir.path(),
        &[
            "-c",
            cfg.to_str().unwrap(),
            "--json",
            "--stats",
            stats.to_str().unwrap(),
        ],
    ));
    let (r, s) = (&raw["experiments"][0], &sql["experiments"][0]);
    assert!(
        r["integrity"]["crossed_over"].as_u64().unwrap() > 50,
        "{:#}",
        r["integrity"]
    );
    assert!(r["integrity"]["outcomes_before_exposure"].as_u64().unwrap() > 50);
    assert_eq!(
        r["results"].as_array().unwrap().len(),
        2,
        "purchase and revenue are compared"
    );
    for key in [
        "srm",
        "results",
        "decision",
        "winner",
        "rollback",
        "not_enough_data",
    ] {
        same(&r[key], &s[key], key);
    }
    for key in [
        "units",
        "crossed_over",
        "multi_cohort",
        "foreign_exposures",
        "foreign_only_units",
        "crossed_over_fraction",
        "flagged",
    ] {
        same(&r["integrity"][key], &s["integrity"][key], key);
    }
}
