//! Config validation: every kind of mistake is an error naming the file, the
//! experiment and the field; `cohortd validate` prints them all and exits non-zero,
//! or prints a one-line summary and exits 0.

mod support;

use std::path::Path;
use std::process::Command;

use cohortd::config::{ConfigError, Correction, GuardrailAction, MetricKind, Status};
use cohortd::Snapshot;
use support::compile::{compile, try_compile};

/// The single error of a one-file config, which must be invalid.
fn only_error(name: &str, text: &str) -> ConfigError {
    let errs = try_compile(&[(name, text)])
        .expect_err("config must be rejected")
        .0;
    assert_eq!(errs.len(), 1, "expected one error, got {errs:?}");
    errs.into_iter().next().unwrap()
}

fn assert_located(
    e: &ConfigError,
    file: &str,
    experiment: Option<&str>,
    field: Option<&str>,
    words: &str,
) {
    assert_eq!(e.file, Path::new(file), "{e}");
    assert_eq!(e.experiment.as_deref(), experiment, "{e}");
    assert_eq!(e.field.as_deref(), field, "{e}");
    assert!(
        e.message.contains(words),
        "`{}` does not mention `{words}`",
        e.message
    );
    // The printed form carries all three.
    let shown = e.to_string();
    assert!(shown.starts_with(file), "{shown}");
    if let Some(x) = experiment {
        assert!(shown.contains(&format!("experiment `{x}`")), "{shown}");
    }
    if let Some(f) = field {
        assert!(shown.contains(&format!("field `{f}`")), "{shown}");
    }
}

#[test]
fn unknown_field_is_named() {
    let e = only_error(
        "flags.json",
        r#"{"key":"f","status":"running","trafficAlocation":0.5,"variants":["a"]}"#,
    );
    assert_located(
        &e,
        "flags.json",
        Some("f"),
        Some("trafficAlocation"),
        "unknown field",
    );
    let e = only_error(
        "flags.yaml",
        "key: f\nstatus: running\nvariants: [a]\nassignment: {hashkey: userId}\n",
    );
    assert_located(
        &e,
        "flags.yaml",
        Some("f"),
        Some("assignment.hashkey"),
        "unknown field",
    );
}

#[test]
fn wrong_type_is_named() {
    let e = only_error(
        "t.json",
        r#"{"key":"f","status":"running","trafficAllocation":"half","variants":["a"]}"#,
    );
    assert_located(
        &e,
        "t.json",
        Some("f"),
        Some("trafficAllocation"),
        "invalid type",
    );
    let e = only_error(
        "t.yaml",
        "key: f\nstatus: running\nvariants: [{key: a, weight: heavy}]\n",
    );
    assert_located(
        &e,
        "t.yaml",
        Some("f"),
        Some("variants[0].weight"),
        "invalid type",
    );
    let e = only_error("t.json", r#"{"key":"f","status":"live","variants":["a"]}"#);
    assert_located(
        &e,
        "t.json",
        Some("f"),
        Some("status"),
        "unknown status `live`",
    );
}

#[test]
fn duplicate_keys_across_files_are_errors() {
    let errs = try_compile(&[
        (
            "a.json",
            r#"{"key":"dup","status":"running","variants":["a"]}"#,
        ),
        (
            "b.yaml",
            "experiments:\n  - {key: dup, status: draft, variants: [x]}\n",
        ),
    ])
    .unwrap_err()
    .0;
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_located(
        &errs[0],
        "b.yaml",
        Some("dup"),
        Some("experimentId"),
        "a.json",
    );
}

#[test]
fn weights_summing_to_zero_are_errors() {
    let e = only_error(
        "w.json",
        r#"{"key":"w","status":"running","variants":[{"key":"a","weight":0},{"key":"b","weight":0}]}"#,
    );
    assert_located(&e, "w.json", Some("w"), Some("variants"), "sum to 0");
    let e = only_error(
        "w.json",
        r#"{"key":"w","status":"running","variants":[{"key":"a","weight":-1},{"key":"b"}]}"#,
    );
    assert_located(&e, "w.json", Some("w"), Some("variants[0].weight"), ">= 0");
}

#[test]
fn default_and_winner_must_be_variants() {
    let e = only_error(
        "d.json",
        r#"{"key":"d","status":"running","variants":["a","b"],"defaultVariant":"c"}"#,
    );
    assert_located(
        &e,
        "d.json",
        Some("d"),
        Some("defaultVariant"),
        "`c` is not one of the variants",
    );
    let e = only_error(
        "d.json",
        r#"{"key":"d","status":"stopped","variants":["a","b"],"winner":"B"}"#,
    );
    assert_located(
        &e,
        "d.json",
        Some("d"),
        Some("winner"),
        "`B` is not one of the variants",
    );
}

#[test]
fn unparseable_files_are_errors() {
    let e = only_error(
        "broken.json",
        r#"{"key":"x","status":"running","variants":["a"]"#,
    );
    assert_located(&e, "broken.json", None, None, "invalid JSON");
    let e = only_error("broken.yaml", "key: x\nvariants: [a\n");
    assert_located(&e, "broken.yaml", None, None, "invalid YAML");
    let e = only_error("n.json", "42");
    assert_located(&e, "n.json", None, None, "expected an experiment object");
    let errs = cohortd::config::parse_file(Path::new("bin.json"), &[0xff, 0x00]).unwrap_err();
    assert_located(&errs[0], "bin.json", None, None, "UTF-8");
}

#[test]
fn overlapping_layer_ranges_are_errors() {
    let e = only_error(
        "l.json",
        r#"[{"key":"a","status":"running","variants":["x"],"layer":{"key":"L","range":[0,0.5]}},
            {"key":"b","status":"running","variants":["x"],"layer":{"key":"L","range":[0.4,0.6]}},
            {"key":"c","status":"stopped","variants":["x"],"layer":{"key":"L","range":[0,1]}}]"#,
    );
    assert_located(
        &e,
        "l.json",
        Some("b"),
        Some("layer.range"),
        "overlaps experiment `a`",
    );
    // A range inside an earlier, longer one is caught too, not only neighbours.
    let errs = try_compile(&[(
        "l.json",
        r#"[{"key":"a","status":"running","variants":["x"],"layer":{"key":"L","range":[0,0.9]}},
            {"key":"b","status":"running","variants":["x"],"layer":{"key":"L","range":[0.1,0.2]}},
            {"key":"c","status":"paused","variants":["x"],"layer":{"key":"L","range":[0.3,0.4]}}]"#,
    )])
    .unwrap_err()
    .0;
    let flagged: Vec<_> = errs.iter().map(|e| e.experiment.clone().unwrap()).collect();
    assert_eq!(flagged, ["b", "c"], "{errs:?}");
    // Touching ranges do not overlap.
    try_compile(&[(
        "l.json",
        r#"[{"key":"a","status":"running","variants":["x"],"layer":{"key":"L","range":[0,0.3]}},
            {"key":"b","status":"running","variants":["x"],"layer":{"key":"L","range":[0.3,1]}}]"#,
    )])
    .unwrap();
    let e = only_error(
        "l.json",
        r#"{"key":"a","status":"running","variants":["x"],"layer":{"key":"L","range":[0.5,0.5]}}"#,
    );
    assert_located(&e, "l.json", Some("a"), Some("layer.range"), "start < end");
}

#[test]
fn layer_members_must_agree_on_the_unit() {
    let e = only_error(
        "l.json",
        r#"[{"key":"a","status":"running","variants":["x"],"layer":{"key":"L","range":[0,0.5]}},
            {"key":"b","status":"running","variants":["x"],"assignment":{"hashKey":"userId"},
             "layer":{"key":"L","range":[0.5,1]}}]"#,
    );
    assert_located(&e, "l.json", Some("b"), Some("layer.key"), "hashKey");
}

#[test]
fn ranges_and_references_are_checked() {
    let cases = [
        (r#""trafficAllocation":1.5"#, "trafficAllocation", "[0, 1]"),
        (r#""holdout":"nope""#, "holdout", "unknown holdout"),
        (
            r#""targeting":{"include":["region"]}"#,
            "targeting.include[0]",
            "attribute:value",
        ),
        (
            r#""targeting":{"segments":["nope"]}"#,
            "targeting.segments[0]",
            "unknown segment",
        ),
        (
            r#""targeting":{"rules":[{"attribute":"v","op":"semver_gt","value":"one"}]}"#,
            "targeting.rules[0]",
            "semantic version",
        ),
        (
            r#""targeting":{"rules":[{"attribute":"v","op":"matches","value":"("}]}"#,
            "targeting.rules[0]",
            "regular expression",
        ),
        (
            r#""evaluation":{"alpha":1.5}"#,
            "evaluation.alpha",
            "0 < alpha < 1",
        ),
        (
            r#""evaluation":{"maxPeeks":0}"#,
            "evaluation.maxPeeks",
            "at least 1",
        ),
        (
            r#""assignment":{"salt":""}"#,
            "assignment.salt",
            "must not be empty",
        ),
        (
            r#""assignment":{"strategy":"random"}"#,
            "assignment.strategy",
            "unknown strategy `random`",
        ),
    ];
    for (extra, field, words) in cases {
        let text = format!(r#"{{"key":"k","status":"running","variants":["a"],{extra}}}"#);
        let e = only_error("r.json", &text);
        assert_located(&e, "r.json", Some("k"), Some(field), words);
    }
}

/// The issue's template loads unchanged, and its metadata is kept.
#[test]
fn the_template_loads_unchanged_with_its_metadata() {
    let snap = compile(include_str!("../examples/configs/checkout.json"));
    let e = snap.experiment("exp-checkout-flow-v3").unwrap();
    assert_eq!(e.status, Status::Running);
    assert_eq!(e.traffic, 1 << 30);
    assert_eq!(&*e.hash_key, "userId");
    assert_eq!(e.salt(), "prod-experiment-2024-q3");
    let keys: Vec<_> = e.variants.iter().map(|v| &*v.key).collect();
    assert_eq!(keys, ["control", "variant-a", "variant-b"]);
    let c = &e.config;
    assert_eq!(c.name.as_deref(), Some("Checkout Flow Optimization"));
    let m = c.metrics.as_ref().unwrap();
    assert_eq!(
        m.primary.as_ref().unwrap().kind,
        Some(MetricKind::Conversion)
    );
    assert_eq!(m.guardrails[0].threshold, 0.02);
    assert_eq!(m.guardrails[0].action, Some(GuardrailAction::Rollback));
    let ev = c.evaluation.as_ref().unwrap();
    assert_eq!(ev.correction, Some(Correction::Bonferroni));
    assert_eq!(ev.max_peeks, Some(5));
    assert_eq!(ev.min_sample_size, Some(15_000));
    let r = c.rollback.as_ref().unwrap();
    assert!(r.enabled && !r.auto_deploy);
    assert_eq!(r.conditions, ["guardrail_breach", "srm_detected"]);
}

fn validate(path: &Path) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_cohortd"))
        .arg("validate")
        .arg(path)
        .output()
        .expect("run cohortd");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// `cohortd validate` on a directory with several broken files prints every
/// problem (parse errors and semantic errors alike) and exits non-zero.
#[test]
fn validate_cli_prints_every_problem() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
    write(
        "a.json",
        r#"{"key":"a","status":"running","variants":["x"],"trafficAlocation":1}"#,
    );
    write("b.yaml", "key: b\nstatus: running\nvariants: [x\n");
    write(
        "c.json",
        r#"[{"key":"c","status":"running","variants":["x"],"defaultVariant":"y"},
                        {"key":"d","status":"running","variants":[{"key":"x","weight":0}]}]"#,
    );
    write("d.yml", "key: c\nstatus: draft\nvariants: [x]\n");
    write("ignored.txt", "not a config");
    write(".hidden.json", "{");
    let (code, out, err) = validate(dir.path());
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.is_empty(), "{out}");
    let lines: Vec<&str> = err.lines().collect();
    let expect = [
        ("a.json", "experiment `a`: field `trafficAlocation`"),
        ("b.yaml", "invalid YAML"),
        ("c.json", "experiment `c`: field `defaultVariant`"),
        ("c.json", "experiment `d`: field `variants`"),
        ("d.yml", "experiment `c`: field `experimentId`"),
    ];
    for (file, words) in expect {
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("error: ") && l.contains(file) && l.contains(words)),
            "missing {file} / {words} in:\n{err}"
        );
    }
    assert!(err.contains("5 problems found"), "{err}");
    assert!(
        !err.contains("ignored.txt") && !err.contains(".hidden"),
        "{err}"
    );
}

/// A valid directory: exit 0 and exactly one summary line.
#[test]
fn validate_cli_summarises_a_valid_config() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/configs");
    let (code, out, err) = validate(&examples);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 1, "{out}");
    let snap = Snapshot::load(&examples).unwrap();
    assert!(
        out.starts_with(&format!("ok: {} experiments", snap.experiments().len())),
        "{out}"
    );
    assert!(out.contains(snap.version()), "{out}");
    // A single file works too.
    let (code, out, _) = validate(&examples.join("checkout.json"));
    assert_eq!(code, 0);
    assert!(out.starts_with("ok: 1 experiments"), "{out}");
    // A missing path is an error, not a panic.
    let (code, _, err) = validate(Path::new("/nonexistent/cohortd"));
    assert_eq!(code, 1);
    assert!(err.contains("cannot read"), "{err}");
}
