//! The offline commands on flagd-format files, through the real binary:
//! `cohortd validate` on a directory of flagd files only (summary, and errors
//! naming file, flag and field), `cohortd diff` (causes, and each changed
//! `fractional` split's exact changed fraction, held against the engine over
//! many units), and `cohortd schema` (the example flagd file validates, typos do
//! not).

use std::path::PathBuf;
use std::process::Command;

use cohortd::engine::flagd::FractionalForm;
use cohortd::engine::resolve::resolve;
use cohortd::{EvalOptions, Snapshot};

const BIN: &str = env!("CARGO_BIN_EXE_cohortd");

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn dir_with(name: &str, text: &str) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join(name), text).unwrap();
    d
}

fn p(d: &tempfile::TempDir) -> &str {
    d.path().to_str().unwrap()
}

#[test]
fn validate_accepts_a_flagd_only_directory_and_names_file_flag_and_field() {
    let example = root().join("examples/flagd");
    let (code, out, err) = run(&["validate", example.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("ok: 4 flagd flags (1 disabled, 2 with fractional) from 1 file\nin "),
        "{out}"
    );

    let bad = dir_with(
        "flags.json",
        r#"{"flags": {
            "typo": {"state": "ENABLED", "variants": {"a": 1}, "defaultVariant": "a",
                     "targeting": {"if": [true, {"fractionl": [["a", 1]]}]}},
            "state": {"state": "ON", "variants": {"a": 1}}
        }}"#,
    );
    let (code, out, err) = run(&["validate", p(&bad)]);
    assert_eq!((code, out.as_str()), (1, ""));
    let file = bad.path().join("flags.json");
    let file = file.display();
    assert_eq!(
        err,
        format!(
            "error: {file}: flag `state`: field `state`: must be \"ENABLED\" or \"DISABLED\", found \"ON\"\n\
             1 problem found; nothing was loaded\n"
        )
    );
    let bad = dir_with(
        "flags.yaml",
        "flags:\n  typo:\n    state: ENABLED\n    variants: {a: 1}\n    targeting: {if: [true, {fractionl: [[a, 1]]}]}\n",
    );
    let (code, _, err) = run(&["validate", p(&bad)]);
    assert_eq!(code, 1);
    assert!(
        err.starts_with(&format!(
            "error: {}: flag `typo`: field `targeting.if[1].fractionl`: unknown operator `fractionl`",
            bad.path().join("flags.yaml").display()
        )),
        "{err}"
    );
}

const OLD: &str = r#"{"flags": {
  "split": {"state": "ENABLED", "defaultVariant": "a", "variants": {"a": "A", "b": "B"},
            "targeting": {"fractional": [["a", 50], ["b", 50]]}},
  "gone": {"state": "ENABLED", "defaultVariant": "on", "variants": {"on": true}},
  "same": {"state": "ENABLED", "defaultVariant": "on", "variants": {"on": true}}
}}"#;

const NEW: &str = r#"{"flags": {
  "split": {"state": "ENABLED", "defaultVariant": "a", "variants": {"a": "A", "b": "B", "c": "C"},
            "targeting": {"fractional": [["a", 30], ["b", 50], ["c", 20]]}},
  "same": {"state": "ENABLED", "defaultVariant": "on", "variants": {"on": true}},
  "new": {"state": "DISABLED", "defaultVariant": "on", "variants": {"on": true}}
}}"#;

/// The share of `units` whose variant of `flag` differs between two snapshots,
/// evaluated by the engine.
fn moved(old: &Snapshot, new: &Snapshot, flag: &str, units: usize) -> f64 {
    let mut n = 0;
    for i in 0..units {
        let ctx = serde_json::json!({"targetingKey": format!("user-{i}")});
        let ctx = ctx.as_object().unwrap();
        let a = resolve(old, flag, ctx, EvalOptions::default()).unwrap();
        let b = resolve(new, flag, ctx, EvalOptions::default()).unwrap();
        n += usize::from(a.variant != b.variant);
    }
    n as f64 / units as f64
}

#[test]
fn diff_reports_flagd_changes_and_the_exact_fraction_the_engine_reproduces() {
    let (old, new) = (dir_with("f.json", OLD), dir_with("f.json", NEW));
    let (code, out, err) = run(&["diff", p(&old), p(&new), "--samples", "0"]);
    assert_eq!(code, 0, "flagd changes are reported, never refused: {err}");
    let section = out.split_once("\nflagd flags").expect(&out).1;
    assert_eq!(
        section,
        " (fractional form v3; reported only: flagd has no epoch, nothing is refused)\n\
         gone\n    cause: flag removed\n\
         new\n    cause: flag added\n\
         split\n    cause: variant `c` added\n\
         \x20   fractional #1: a 50 / b 50 -> a 30 / b 50 / c 20: 40.00% of units reaching it change variant (exact)\n"
    );

    // By hand: a keeps [0, .3), b keeps [.5, .8) of the hash space: 40% move.
    for (form, name) in [(FractionalForm::V3, "v3"), (FractionalForm::V2, "v2")] {
        let (_, out, _) = run(&[
            "diff",
            p(&old),
            p(&new),
            "--json",
            "--flagd-fractional",
            name,
        ]);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        let flags = v["flagdFlags"].as_array().unwrap();
        let keys: Vec<&str> = flags.iter().map(|f| f["key"].as_str().unwrap()).collect();
        assert_eq!(keys, ["gone", "new", "split"]);
        let split = &flags[2]["splits"][0];
        assert_eq!(split["exact"], true);
        let exact = split["changedFraction"].as_f64().unwrap();
        assert!((exact - 0.4).abs() < 1e-9, "{exact}");
        // The engine over many units agrees within sampling error (4.5 sigma).
        let load = |d: &tempfile::TempDir| Snapshot::load(d.path()).unwrap().with_flagd_form(form);
        let units = 20_000;
        let seen = moved(&load(&old), &load(&new), "split", units);
        let sigma = (exact * (1.0 - exact) / units as f64).sqrt();
        assert!(
            (seen - exact).abs() < 4.5 * sigma,
            "form {name}: engine moved {seen}, diff says {exact}"
        );
    }
    // v1 buckets by percentage: the same number, marked approximate.
    let (_, out, _) = run(&[
        "diff",
        p(&old),
        p(&new),
        "--samples",
        "0",
        "--flagd-fractional",
        "v1",
    ]);
    assert!(
        out.contains(
            "about 40.00% of units reaching it change variant; form v1 buckets by percentage"
        ),
        "{out}"
    );
}

#[test]
fn schema_covers_flagd_documents() {
    let (code, out, _) = run(&["schema"]);
    assert_eq!(code, 0);
    let schema: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        schema["$defs"]["FlagdFlag"]["properties"]["state"]["enum"],
        serde_json::json!(["ENABLED", "DISABLED"])
    );
    assert!(schema["anyOf"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["$ref"] == "#/$defs/FlagdDocument"));
    let Ok(python) = std::env::var("COHORTD_PYTHON") else {
        eprintln!("skipped the jsonschema check: COHORTD_PYTHON is not set (.ci/test.sh sets it)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let schema_file = dir.path().join("schema.json");
    std::fs::write(&schema_file, &out).unwrap();
    let typo = dir.path().join("typo.json");
    std::fs::write(
        &typo,
        r#"{"flags": {"f": {"state": "ENABLED", "variants": {"a": 1}, "targetting": {}}}}"#,
    )
    .unwrap();
    let bad_state = dir.path().join("state.json");
    std::fs::write(
        &bad_state,
        r#"{"flags": {"f": {"state": "ON", "variants": {"a": 1}}}}"#,
    )
    .unwrap();
    let files: Vec<PathBuf> = vec![
        root().join("examples/flagd/flags.flagd.json"),
        root().join("tests/vectors/flagd/all_operators.flagd.json"),
        typo,
        bad_state,
    ];
    let script = r#"
import json, sys, jsonschema
v = jsonschema.Draft202012Validator(json.load(open(sys.argv[1])))
for path in sys.argv[2:]:
    print("invalid" if list(v.iter_errors(json.load(open(path)))) else "valid")
"#;
    let out = Command::new(python)
        .arg("-c")
        .arg(script)
        .arg(&schema_file)
        .args(files.iter().map(|f| f.as_path()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "valid\nvalid\ninvalid\ninvalid\n"
    );
}
