//! `cohortd analyze` end to end: input formats, bad lines, the look ledger,
//! SRM halting, guardrails and rollback exit codes, sample size, the plot.

mod support;

use support::analysis::{
    analyze, at, config_dir, exposure, outcome, population, report, salt_fingerprint, to_csv,
    to_otlp, write_lines,
};
use support::rng::Rng;

fn config(extra: &str) -> String {
    format!(
        "experiments:\n  - key: checkout\n    status: running\n    variants: [control, treatment]\n    metrics:\n      primary: {{name: purchase, type: conversion}}\n      guardrails: [{{name: error_rate, threshold: 0.01, action: rollback}}]\n    rollback: {{enabled: true, conditions: [srm_detected, guardrail_breach]}}\n{extra}"
    )
}

fn s(p: &std::path::Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn bad_lines_are_reported_with_file_and_line_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config_dir(dir.path(), &config(""));
    let fp = salt_fingerprint(&cfg, "checkout");
    let input = dir.path().join("events.jsonl");
    let good = exposure(at(0, 1), "u1", "checkout", "control", 0, &fp);
    let truncated = &good[..good.len() / 2];
    std::fs::write(
        &input,
        format!("{good}\n{{\"type\": \"exposure\", \"time\": 1\n\n{good}\n{truncated}"),
    )
    .unwrap();
    let out = analyze(dir.path(), &["-c", s(&cfg), s(&input)]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let path = input.display().to_string();
    assert!(stderr.contains(&format!("{path}:2: ")), "{stderr}");
    assert!(stderr.contains(&format!("{path}:5: ")), "{stderr}");
    assert!(stderr.contains("2 bad input line(s)"), "{stderr}");
    // Tolerated, they are still counted and listed in the report.
    let out = analyze(
        dir.path(),
        &["-c", s(&cfg), "--json", "--max-bad-lines", "2", s(&input)],
    );
    let r = report(&out);
    assert_eq!(r["input"]["bad_lines"], 2);
    assert_eq!(r["input"]["bad_examples"][1]["line"], 5);
    assert_eq!(r["input"]["exposures"], 2);
}

#[test]
fn otlp_csv_and_flat_json_inputs_give_the_same_report() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config_dir(dir.path(), &config(""));
    let fp = salt_fingerprint(&cfg, "checkout");
    let lines = population(
        &mut Rng::new(3),
        &fp,
        "checkout",
        [300, 300],
        [0.1, 0.15],
        [0.01, 0.01],
    );
    let flat = dir.path().join("events.jsonl");
    write_lines(&flat, &lines);
    let otlp = dir.path().join("collector.json");
    write_lines(&otlp, &lines.iter().map(|l| to_otlp(l)).collect::<Vec<_>>());
    let csv = dir.path().join("events.csv");
    std::fs::write(&csv, to_csv(&lines)).unwrap();
    let experiments = |p: &std::path::Path| {
        report(&analyze(dir.path(), &["-c", s(&cfg), "--json", s(p)]))["experiments"].clone()
    };
    let want = experiments(&flat);
    assert_eq!(want[0]["integrity"]["units"], 600);
    assert_eq!(experiments(&otlp), want);
    assert_eq!(experiments(&csv), want);
}

#[test]
fn a_sample_ratio_mismatch_halts_effects_and_recommends_rollback() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config_dir(dir.path(), &config(""));
    let fp = salt_fingerprint(&cfg, "checkout");
    let input = dir.path().join("events.jsonl");
    write_lines(
        &input,
        &population(
            &mut Rng::new(4),
            &fp,
            "checkout",
            [1200, 800],
            [0.1, 0.3],
            [0.0, 0.0],
        ),
    );
    let out = analyze(dir.path(), &["-c", s(&cfg), "--json", s(&input)]);
    let r = report(&out);
    assert_eq!(out.status.code(), Some(4), "{r:#}");
    let e = &r["experiments"][0];
    assert_eq!(e["srm"][0]["mismatch"], true);
    assert_eq!(
        e["results"].as_array().unwrap().len(),
        0,
        "no effect is estimated"
    );
    assert!(e["winner"].is_null());
    assert!(e["decision"]
        .as_str()
        .unwrap()
        .starts_with("halted: sample ratio mismatch"));
    assert_eq!(e["rollback"], serde_json::json!(["srm_detected"]));
    // The table says the same.
    let out = analyze(dir.path(), &["-c", s(&cfg), s(&input)]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("MISMATCH") && text.contains("ROLLBACK RECOMMENDED: srm_detected"),
        "{text}"
    );
}

#[test]
fn a_guardrail_breach_is_reported_and_the_exit_code_says_rollback() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config_dir(dir.path(), &config(""));
    let fp = salt_fingerprint(&cfg, "checkout");
    let input = dir.path().join("events.jsonl");
    write_lines(
        &input,
        &population(
            &mut Rng::new(5),
            &fp,
            "checkout",
            [2000, 2000],
            [0.1, 0.1],
            [0.02, 0.10],
        ),
    );
    let out = analyze(dir.path(), &["-c", s(&cfg), "--json", s(&input)]);
    let r = report(&out);
    assert_eq!(out.status.code(), Some(4), "{r:#}");
    let e = &r["experiments"][0];
    let g = e["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["metric"] == "error_rate")
        .unwrap();
    assert_eq!(g["guardrail"]["breached"], true, "{g:#}");
    assert!(g["guardrail"]["degradation_bound"].as_f64().unwrap() > 0.01);
    assert_eq!(e["rollback"], serde_json::json!(["guardrail_breach"]));
    // Without the breach, exit 0.
    write_lines(
        &input,
        &population(
            &mut Rng::new(5),
            &fp,
            "checkout",
            [2000, 2000],
            [0.1, 0.1],
            [0.02, 0.02],
        ),
    );
    let out = analyze(dir.path(), &["-c", s(&cfg), "--json", s(&input)]);
    assert_eq!(out.status.code(), Some(0), "{:#}", report(&out));
}

#[test]
fn looks_are_numbered_in_the_ledger_and_one_beyond_max_peeks_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config_dir(
        dir.path(),
        &config("    evaluation: {alpha: 0.05, maxPeeks: 2}\n"),
    );
    let fp = salt_fingerprint(&cfg, "checkout");
    let input = dir.path().join("events.jsonl");
    write_lines(
        &input,
        &population(
            &mut Rng::new(6),
            &fp,
            "checkout",
            [500, 500],
            [0.1, 0.12],
            [0.0, 0.0],
        ),
    );
    let run = |extra: &[&str]| {
        let mut args = vec!["-c", s(&cfg), "--json"];
        args.extend_from_slice(extra);
        args.push(s(&input));
        analyze(dir.path(), &args)
    };
    let first = report(&run(&[]));
    let second = report(&run(&[]));
    let look = |r: &serde_json::Value| r["experiments"][0]["look"].clone();
    assert_eq!(look(&first)["number"], 1);
    assert_eq!(look(&second)["number"], 2);
    let (a1, a2) = (
        look(&first)["nominal_alpha"].as_f64().unwrap(),
        look(&second)["nominal_alpha"].as_f64().unwrap(),
    );
    assert!(
        a1 < 0.01 && a1 < a2 && a2 < 0.05,
        "O'Brien-Fleming spends little early: {a1} then {a2}"
    );
    let refused = run(&[]);
    assert_eq!(refused.status.code(), Some(5));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("checkout would be look 3 of maxPeeks 2"),
        "{stderr}"
    );
    let forced = run(&["--force-look"]);
    let r = report(&forced);
    assert_eq!(look(&r)["forced"], true);
    assert_eq!(look(&r)["nominal_alpha"], 0.0);
    let ledger: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("looks.json")).unwrap()).unwrap();
    assert_eq!(
        ledger["experiments"]["checkout"].as_array().unwrap().len(),
        3
    );
    // The split spends alpha / maxPeeks at every look.
    let other = dir.path().join("split.json");
    let split = report(&run(&["--spending", "split", "--ledger", s(&other)]));
    assert_eq!(look(&split)["number"], 1);
    let a = look(&split)["nominal_alpha"].as_f64().unwrap();
    assert!((a - 0.025).abs() < 1e-9, "{a}");
}

#[test]
fn below_min_sample_size_the_report_says_not_enough_data_and_gives_the_mde() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config_dir(
        dir.path(),
        &config("    evaluation: {minSampleSize: 5000}\n"),
    );
    let fp = salt_fingerprint(&cfg, "checkout");
    let input = dir.path().join("events.jsonl");
    write_lines(
        &input,
        &population(
            &mut Rng::new(8),
            &fp,
            "checkout",
            [400, 400],
            [0.1, 0.5],
            [0.0, 0.0],
        ),
    );
    let svg = dir.path().join("report.svg");
    let out = analyze(
        dir.path(),
        &["-c", s(&cfg), "--json", "--plot", s(&svg), s(&input)],
    );
    let r = report(&out);
    let e = &r["experiments"][0];
    assert_eq!(e["not_enough_data"], true);
    let d = e["decision"].as_str().unwrap();
    assert!(
        d.starts_with("not enough data: the smallest variant has 400 of minSampleSize 5000"),
        "{d}"
    );
    assert!(d.contains("minimum detectable effect"), "{d}");
    assert!(
        e["winner"].is_null(),
        "a large effect is still not read early"
    );
    let picture = std::fs::read_to_string(&svg).unwrap();
    assert!(
        picture.starts_with("<svg") && picture.contains("checkout"),
        "{}",
        &picture[..200.min(picture.len())]
    );
}

#[test]
fn outcomes_before_the_first_exposure_and_duplicates_are_not_counted() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config_dir(dir.path(), &config(""));
    let fp = salt_fingerprint(&cfg, "checkout");
    let input = dir.path().join("events.jsonl");
    write_lines(
        &input,
        &[
            outcome(at(0, 10), "u1", "purchase", 1.0, "e1"),
            exposure(at(0, 20), "u1", "checkout", "control", 0, &fp),
            outcome(at(0, 30), "u1", "purchase", 1.0, "e2"),
            outcome(at(0, 30), "u1", "purchase", 1.0, "e2"),
            outcome(at(0, 30), "stranger", "purchase", 1.0, "e3"),
            outcome(at(0, 30), "u1", "undeclared", 1.0, "e4"),
        ],
    );
    let r = report(&analyze(dir.path(), &["-c", s(&cfg), "--json", s(&input)]));
    let i = &r["experiments"][0]["integrity"];
    assert_eq!(i["outcomes_before_exposure"], 1);
    assert_eq!(i["outcomes_unexposed"], 1);
    assert_eq!(r["unmatched"]["duplicate_outcomes"], 1);
    assert_eq!(r["unmatched"]["outcomes_unknown_metric"], 1);
}
