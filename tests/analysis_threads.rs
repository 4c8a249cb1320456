//! `cohortd analyze` parses JSON lines on several threads and folds the
//! batches back in file order, so the report (every count, float sum, first
//! exposure, dedup decision, bad-line example and stratum) is byte for byte the
//! one a single thread gives, for flat and OTLP input spanning many chunks.

mod analysis_support;

use analysis_support::{
    analyze, at, config_dir, exposure, outcome, salt_fingerprint, to_otlp, write_lines, Rng,
};

const CONFIG: &str = "experiments:\n  - key: checkout\n    status: running\n    variants: [control, treatment]\n    srm: {strata: region}\n    metrics:\n      primary: {name: purchase, type: conversion}\n      secondary: [{name: revenue, type: continuous}]\n";

/// A population with every order-sensitive feature: crossed-over units with
/// equal timestamps, repeated event ids with different values, float values
/// whose sum depends on the order of addition, strata, and bad lines.
fn events(fp: &str) -> Vec<String> {
    let mut rng = Rng::new(11);
    let mut lines = Vec::new();
    for i in 0..5_000u64 {
        let unit = format!("unit-{i}");
        let region = ["eu", "us", "apac"][(i % 3) as usize];
        let variant = if rng.chance(0.5) {
            "control"
        } else {
            "treatment"
        };
        let t = at(0, rng.next_u64() % 80_000);
        let mut x: serde_json::Value =
            serde_json::from_str(&exposure(t, &unit, "checkout", variant, 0, fp)).unwrap();
        x["stratum"] = region.into();
        lines.push(x.to_string());
        if i % 7 == 0 {
            // Seen again in the other variant at the same instant: the first in
            // file order is the unit's variant.
            let other = if variant == "control" {
                "treatment"
            } else {
                "control"
            };
            lines.push(exposure(t, &unit, "checkout", other, 0, fp));
        }
        for k in 0..3 {
            let value = rng.uniform() * 1e3 + 1e-7 * rng.uniform();
            let id = format!("r{}", (i * 3 + k) / 2);
            lines.push(outcome(t + 1_000 + k, &unit, "revenue", value, &id));
        }
        if rng.chance(0.3) {
            lines.push(outcome(t + 5_000, &unit, "purchase", 1.0, &format!("p{i}")));
        }
        if i % 1_000 == 999 {
            lines.push(format!("{{\"type\": \"outcome\", \"unit\": \"{unit}\""));
        }
    }
    lines
}

#[test]
fn reports_are_identical_for_any_number_of_parsing_threads() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config_dir(dir.path(), CONFIG);
    let fp = salt_fingerprint(&cfg, "checkout");
    let lines = events(&fp);
    let flat = dir.path().join("events.jsonl");
    write_lines(&flat, &lines);
    let otlp = dir.path().join("collector.json");
    let otlp_lines: Vec<String> = lines
        .iter()
        .map(|l| match serde_json::from_str::<serde_json::Value>(l) {
            Ok(_) if l.ends_with('}') => to_otlp(l),
            _ => l.clone(),
        })
        .collect();
    write_lines(&otlp, &otlp_lines);
    assert!(
        std::fs::metadata(&flat).unwrap().len() > cohortd::analysis::input::CHUNK as u64,
        "the input spans several chunks"
    );
    for input in [&flat, &otlp] {
        let run = |threads: &str| {
            let out = analyze(
                dir.path(),
                &[
                    "-c",
                    cfg.to_str().unwrap(),
                    "--json",
                    "--max-bad-lines",
                    "100",
                    "--threads",
                    threads,
                    input.to_str().unwrap(),
                ],
            );
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8(out.stdout).unwrap()
        };
        let one = run("1");
        let r: serde_json::Value = serde_json::from_str(&one).unwrap();
        assert_eq!(r["input"]["bad_lines"], 5, "{}", r["input"]);
        assert!(r["unmatched"]["duplicate_outcomes"].as_u64().unwrap() > 0);
        let e = &r["experiments"][0];
        assert!(
            e["integrity"]["crossed_over"].as_u64().unwrap() > 500,
            "{e}"
        );
        assert_eq!(e["srm"].as_array().unwrap().len(), 4, "totals and 3 strata");
        assert_eq!(run("3"), one, "{} with 3 threads", input.display());
    }
}
